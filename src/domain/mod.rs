//! Domain types: validated names and ids, the vocabulary of collections,
//! subjects and erase jobs. No I/O here, and no wire or SQL types.

mod collection;
mod erasure;
mod mapping;
mod names;
mod subject;

pub use collection::{Backend, CollectionSpec, Distance, Screening};
pub use mapping::{Field, FieldKind, IdKind, Mapping, NativeId, Scope, int_of_key, parse_timestamp};
pub use erasure::{JobNote, JobStatus, ResidualPolicy, Stage};
pub use names::{CollectionName, ExternalId, InvalidInput, bounded_text, invisible, optional_text};
pub use subject::{Identifier, IdentifierKind, Role, SubjectState};
