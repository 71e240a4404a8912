//! What a collection is: where its vectors live and how they compare.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::{CollectionName, Mapping};

/// A vector backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Pgvector,
    Qdrant,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pgvector => "pgvector",
            Self::Qdrant => "qdrant",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pgvector" => Ok(Self::Pgvector),
            "qdrant" => Ok(Self::Qdrant),
            other => Err(format!("unknown backend `{other}`")),
        }
    }
}

/// Vector similarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    Cosine,
    Dot,
    Euclid,
}

impl Distance {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::Dot => "dot",
            Self::Euclid => "euclid",
        }
    }
}

impl FromStr for Distance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cosine" => Ok(Self::Cosine),
            "dot" => Ok(Self::Dot),
            "euclid" => Ok(Self::Euclid),
            other => Err(format!("unknown distance `{other}`")),
        }
    }
}

/// What the write path does with a chunk whose text names a person who is
/// being or has been erased (in any form suppression recognises; see
/// `screening`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Screening {
    /// Written as given (no screening).
    Accept,
    /// Written, and listed as a residual of the person's erasure.
    Report,
    /// The mention replaced by `[redacted]` before embedding (Ingest);
    /// rejected on Track, where the vector is the pipeline's.
    Redact,
    /// Not written (on Track, a point the pipeline wrote is deleted).
    Reject,
}

impl Screening {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Report => "report",
            Self::Redact => "redact",
            Self::Reject => "reject",
        }
    }
}

impl FromStr for Screening {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accept" => Ok(Self::Accept),
            "report" => Ok(Self::Report),
            "redact" => Ok(Self::Redact),
            "reject" => Ok(Self::Reject),
            other => Err(format!("unknown screening policy `{other}`")),
        }
    }
}

/// A registered collection, as the vector stores need it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub collection_id: Uuid,
    pub tenant_id: Uuid,
    pub name: CollectionName,
    pub backend: Backend,
    /// The backend's own name (pgvector table, Qdrant collection or alias).
    pub backend_name: String,
    pub dimension: usize,
    pub distance: Distance,
    pub embedding_model: String,
    pub store_text: bool,
    pub retention_days: u32,
    pub screening: Screening,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Where an attached store keeps ids, vectors, text, sources and tags;
    /// `None` for the collections Lethe created (its own layout).
    pub mapping: Option<std::sync::Arc<Mapping>>,
}

impl CollectionSpec {
    /// Whether the collection is a store Lethe attached rather than created.
    pub fn is_attached(&self) -> bool {
        self.mapping.is_some()
    }
}
