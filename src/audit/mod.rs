//! The deletion log and certificates: what auditors rely on.
//!
//! Each entry's hash is `SHA-256(hex(prev_hash) || "\n" || body)`, where
//! `body` is the entry's canonical JSON as stored; the first entry's
//! `prev_hash` is 32 zero bytes. Subjects appear only as keyed hashes.
//! Certificates are Ed25519 signatures over their JSON body (see `signer`).

mod signer;

use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

pub use signer::{Signer, verify_certificate};

use crate::store::log::{self, LogRow};
use crate::store::{Result, StoreError};

/// The hash of an entry given its predecessor's hash and its body.
pub fn entry_hash(prev_hash: &[u8], body: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(hex::encode(prev_hash).as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().to_vec()
}

/// Appends an entry to the tenant's chain inside the caller's transaction.
///
/// # Errors
/// Database failures; a body that cannot be serialised is a bug and reported as unexpected.
pub async fn append(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    kind: &str,
    job_id: Option<Uuid>,
    subject_hash: Option<&[u8]>,
    body: &impl Serialize,
) -> Result<LogRow> {
    let body = serde_json::to_string(body).map_err(|e| StoreError::Unexpected(sqlx::Error::Decode(e.into())))?;
    let (seq, prev_hash) = log::lock_head(tx, tenant_id).await?;
    let entry = LogRow {
        seq: seq + 1,
        kind: kind.to_owned(),
        job_id,
        subject_hash: subject_hash.map(<[u8]>::to_vec),
        entry_hash: entry_hash(&prev_hash, &body),
        prev_hash,
        body,
        // Microsecond precision, as Postgres stores it.
        created_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now),
    };
    log::insert_entry(tx, tenant_id, &entry).await?;
    Ok(entry)
}

/// The outcome of a chain verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    pub entries_checked: u64,
    pub first_bad_seq: u64,
    pub problem: String,
    pub head_hash: String,
}

/// Recomputes the tenant's chain from the first entry: every hash, every
/// link, the sequence without gaps, the stored head, and every hash a
/// certificate claims.
///
/// # Errors
/// Database failures.
pub async fn verify(pool: &PgPool, tenant_id: Uuid) -> Result<Verification> {
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 1i64;
    let mut checked = 0u64;
    let mut seen = std::collections::HashSet::new();
    let bad = |seq: i64, checked: u64, problem: String| Verification {
        valid: false,
        entries_checked: checked,
        first_bad_seq: u64::try_from(seq).unwrap_or(0),
        problem,
        head_hash: String::new(),
    };
    loop {
        let page = log::entries(pool, tenant_id, expected_seq - 1, 1000).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            if e.seq != expected_seq {
                return Ok(bad(expected_seq, checked, format!("entry {expected_seq} is missing")));
            }
            if e.prev_hash != prev {
                return Ok(bad(e.seq, checked, "link to the previous entry is broken".into()));
            }
            if entry_hash(&e.prev_hash, &e.body) != e.entry_hash {
                return Ok(bad(e.seq, checked, "entry content does not match its hash".into()));
            }
            seen.insert(hex::encode(&e.entry_hash));
            prev = e.entry_hash;
            expected_seq += 1;
            checked += 1;
        }
    }
    let (head_seq, head_hash) = log::head(pool, tenant_id).await?.unwrap_or((0, vec![0u8; 32]));
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Ok(bad(expected_seq, checked, format!("the chain ends before its recorded head (entry {head_seq})")));
    }
    for (job_id, claimed) in log::certified_heads(pool, tenant_id).await? {
        if !seen.contains(&claimed) {
            return Ok(bad(0, checked, format!("the log entry certified for job {job_id} is not in the chain")));
        }
    }
    Ok(Verification {
        valid: true,
        entries_checked: checked,
        first_bad_seq: 0,
        problem: String::new(),
        head_hash: hex::encode(prev),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_hash_depends_on_predecessor_and_body() {
        let zero = [0u8; 32];
        let a = entry_hash(&zero, "{\"a\":1}");
        assert_eq!(a.len(), 32);
        assert_eq!(a, entry_hash(&zero, "{\"a\":1}"));
        assert_ne!(a, entry_hash(&zero, "{\"a\":2}"));
        assert_ne!(a, entry_hash(&a, "{\"a\":1}"));
    }
}
