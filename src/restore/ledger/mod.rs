//! The erasure ledger's export and import: for the case where Lethe's own
//! database is restored from a backup older than some erasures (its
//! tombstones then no longer know them).
//!
//! Format (JSON lines, `lethe-erasure-ledger/1`): a `header` line (tenant,
//! time, the id of the signing key, and `key_check`, a keyed hash of a
//! constant that tells whether two ledgers were made under the same tenant
//! HMAC key without showing it), one `subject` line per tombstone (its keyed
//! hash, match keys and identifier hashes), `points` lines (keyed hashes of
//! erased points, grouped by collection, subject, job and cause), and an
//! `end` line with the SHA-256 of every byte before it and an Ed25519
//! signature, by the service's signing key, over the format, the tenant, that
//! digest and the counts. Nothing in it is plaintext of a person.
//!
//! An import checks everything before it writes anything: the digest and
//! the signature (a changed, added or removed byte fails: INVALID_ARGUMENT),
//! a key this service signs with or signed with before (else
//! FAILED_PRECONDITION `ledger_signed_by_another_key`), the tenant
//! (`ledger_of_another_tenant`) and its HMAC key
//! (`ledger_of_another_tenant_key`: the hashes would match nobody). It is
//! idempotent: what the database already knows is left as it is, and an
//! import that changes nothing appends no log entry.

mod export;
mod import;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::keyed_hash;

pub use export::{Exported, STALL, export};
pub use import::{ImportOutcome, Verified, import, verify};

pub const FORMAT: &str = "lethe-erasure-ledger/1";
/// Point hashes per `points` line.
const POINTS_PER_LINE: usize = 1000;
const CAUSES: [&str; 5] = ["erasure", "residual", "follow_up", "reconcile", "import"];

/// One line of a ledger.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Line {
    Header { format: String, tenant_id: Uuid, exported_at: DateTime<Utc>, key_check: String, signing_key_id: String },
    Subject {
        subject_hash: String,
        erased_at: Option<DateTime<Utc>>,
        job_id: Option<Uuid>,
        keys: Vec<String>,
        /// (kind, keyed hash of the normalised value).
        identifiers: Vec<(String, String)>,
    },
    Points { collection_id: Uuid, subject_hash: String, job_id: Option<Uuid>, cause: String, points: Vec<String> },
    End { subjects: u64, points: u64, sha256: String, key_id: String, signature: String },
}

/// Tells ledgers made under the tenant's HMAC key from others: a keyed
/// hash of a constant (it shows nothing of the key or of anyone).
pub fn key_check(tenant_secret: &[u8]) -> String {
    hex::encode(&keyed_hash(tenant_secret, "lethe-erasure-ledger/key-check")[..16])
}

/// What the end line's signature covers.
fn statement(tenant_id: Uuid, sha256: &str, subjects: u64, points: u64) -> String {
    format!("{FORMAT}\n{tenant_id}\n{sha256}\n{subjects}\n{points}")
}

