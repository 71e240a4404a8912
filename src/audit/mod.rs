//! The deletion log and certificates: what auditors rely on.
//!
//! Each entry's hash (version 2) covers every column an auditor is shown:
//! `SHA-256("lethe-log/2\n" tenant "\n" seq "\n" kind "\n" job_id "\n"
//! hex(subject_hash) "\n" created_at "\n" hex(prev_hash) "\n" body)`
//! ([`entry_hash_v2`]); entries written before it (version 1) hash
//! `hex(prev_hash) "\n" body` only. The first entry's `prev_hash` is 32 zero
//! bytes. Subjects appear only as keyed hashes. Every append signs the new
//! head ([`SignedHead`]); certificates are Ed25519 signatures over their JSON
//! body. Both are made by the [`Signer`], whose key auditors pin.

mod head;
mod signer;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

pub use head::SignedHead;
pub use signer::{Signer, key_id, rotate as rotate_signing_key, verify_certificate, verify_pinned};

use crate::store::log::{self, LogRow};
use crate::store::{Result, StoreError};

/// How new entries are hashed.
pub const HASH_VERSION: i16 = 2;

/// Version 2: the hash of everything an entry shows.
pub fn entry_hash_v2(tenant_id: Uuid, e: &LogRow) -> Vec<u8> {
    let mut h = Sha256::new();
    let job = e.job_id.map(|j| j.to_string()).unwrap_or_default();
    let subject = e.subject_hash.as_deref().map(hex::encode).unwrap_or_default();
    let at = e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let prev = hex::encode(&e.prev_hash);
    h.update(format!("lethe-log/2\n{tenant_id}\n{}\n{}\n{job}\n{subject}\n{at}\n{prev}\n", e.seq, e.kind).as_bytes());
    h.update(e.body.as_bytes());
    h.finalize().to_vec()
}

/// The hash an entry must have, by its version.
pub fn expected_hash(tenant_id: Uuid, e: &LogRow) -> Vec<u8> {
    if e.hash_version >= 2 { entry_hash_v2(tenant_id, e) } else { entry_hash(&e.prev_hash, &e.body) }
}

/// Version 1 (entries written before version 2): predecessor and body only.
pub fn entry_hash(prev_hash: &[u8], body: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(hex::encode(prev_hash).as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().to_vec()
}

/// Appends an entry to the tenant's chain inside the caller's transaction
/// and signs the new head.
///
/// # Errors
/// Database failures; a body that cannot be serialised is a bug and reported as unexpected.
pub async fn append(
    tx: &mut Transaction<'_, Postgres>,
    signer: &Signer,
    tenant_id: Uuid,
    kind: &str,
    job_id: Option<Uuid>,
    subject_hash: Option<&[u8]>,
    body: &impl Serialize,
) -> Result<(LogRow, SignedHead)> {
    let body = serde_json::to_string(body).map_err(|e| StoreError::Unexpected(sqlx::Error::Decode(e.into())))?;
    let (mut entries, head) = append_many(tx, signer, tenant_id, vec![NewEntry { kind, job_id, subject_hash, body }]).await?;
    let entry = entries.pop().ok_or_else(|| StoreError::Unexpected(sqlx::Error::RowNotFound))?;
    Ok((entry, head))
}

/// An entry to append: its body already serialised.
#[derive(Debug)]
pub struct NewEntry<'a> {
    pub kind: &'a str,
    pub job_id: Option<Uuid>,
    pub subject_hash: Option<&'a [u8]>,
    pub body: String,
}

/// Appends entries to the tenant's chain in their order, inside the
/// caller's transaction, in two statements (the head locked, then every
/// entry written and the head moved to the last), and signs the new head.
/// Each entry chains to the one before it exactly as one append at a time.
///
/// # Errors
/// Database failures.
pub async fn append_many(
    tx: &mut Transaction<'_, Postgres>,
    signer: &Signer,
    tenant_id: Uuid,
    new: Vec<NewEntry<'_>>,
) -> Result<(Vec<LogRow>, SignedHead)> {
    let (mut seq, mut prev_hash) = log::lock_head(tx, tenant_id).await?;
    let mut entries = Vec::with_capacity(new.len());
    for NewEntry { kind, job_id, subject_hash, body } in new {
        seq += 1;
        let mut entry = LogRow {
            seq,
            kind: kind.to_owned(),
            job_id,
            subject_hash: subject_hash.map(<[u8]>::to_vec),
            entry_hash: Vec::new(),
            prev_hash: std::mem::take(&mut prev_hash),
            body,
            // Microsecond precision, as Postgres stores it.
            created_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now),
            hash_version: HASH_VERSION,
        };
        entry.entry_hash = entry_hash_v2(tenant_id, &entry);
        prev_hash.clone_from(&entry.entry_hash);
        entries.push(entry);
    }
    let head = SignedHead::sign(signer, tenant_id, seq, &prev_hash);
    let signature = log::HeadSignature { signed_at: head.signed_at, key_id: &head.key_id, signature: &head.signature };
    log::insert_entries(tx, tenant_id, &entries, &signature).await?;
    Ok((entries, head))
}

/// The outcome of a chain verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    pub entries_checked: u64,
    pub first_bad_seq: u64,
    pub problem: String,
    pub head_hash: String,
    /// The stored head, as signed.
    pub head: Option<SignedHead>,
}

/// The stored head as a signed head (None when it was never signed).
fn signed_head(tenant_id: Uuid, h: log::HeadRow) -> Option<SignedHead> {
    Some(SignedHead {
        tenant_id,
        size: h.seq,
        head_hash: h.entry_hash,
        signed_at: h.signed_at?,
        key_id: h.key_id?,
        signature: h.signature?,
    })
}

/// The tenant's current head as stored (None before the first signed append).
///
/// # Errors
/// Database failures.
pub async fn current_head(pool: &PgPool, tenant_id: Uuid) -> Result<Option<SignedHead>> {
    Ok(log::head(pool, tenant_id).await?.and_then(|h| signed_head(tenant_id, h)))
}

/// A head an auditor kept: the log had `size` entries ending in `head_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedHead {
    pub size: i64,
    pub head_hash: Vec<u8>,
}

/// Recomputes the tenant's chain from the first entry: every hash (over every
/// column shown), every link, the sequence without gaps, the stored head and
/// its signature, every hash a certificate claims, and, when given, that the
/// chain still reaches a head the auditor pinned (a shortened or rewritten
/// log does not).
///
/// # Errors
/// Database failures.
pub async fn verify(pool: &PgPool, signer: &Signer, tenant_id: Uuid, pinned: Option<&PinnedHead>) -> Result<Verification> {
    // One snapshot for the entries, the head and the certificates: an append
    // committed between two of those reads was reported as tampering (the
    // chain "ending before its head", a certified entry "not in the chain").
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 1i64;
    let mut checked = 0u64;
    let bad = |seq: i64, checked: u64, problem: String| Verification {
        valid: false,
        entries_checked: checked,
        first_bad_seq: u64::try_from(seq).unwrap_or(0),
        problem,
        head_hash: String::new(),
        head: None,
    };
    let mut last_version = 0i16;
    let mut at_pin: Option<Vec<u8>> = None;
    loop {
        let page = log::entries(&mut *tx, tenant_id, expected_seq - 1, 1000).await?;
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
            if !(1..=HASH_VERSION).contains(&e.hash_version) {
                let problem = format!("entry claims hash version {}, which this verifier does not know", e.hash_version);
                return Ok(bad(e.seq, checked, problem));
            }
            if expected_hash(tenant_id, &e) != e.entry_hash {
                return Ok(bad(e.seq, checked, "entry content does not match its hash".into()));
            }
            if e.hash_version < last_version {
                return Ok(bad(e.seq, checked, "entry claims an older hash version than its predecessor".into()));
            }
            last_version = e.hash_version;
            if pinned.is_some_and(|p| p.size == e.seq) {
                at_pin = Some(e.entry_hash.clone());
            }
            prev = e.entry_hash;
            expected_seq += 1;
            checked += 1;
        }
    }
    let stored = log::head(&mut *tx, tenant_id).await?;
    let (head_seq, head_hash) = stored.as_ref().map_or((0, vec![0u8; 32]), |h| (h.seq, h.entry_hash.clone()));
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Ok(bad(expected_seq, checked, format!("the chain ends before its recorded head (entry {head_seq})")));
    }
    if let Some(p) = pinned {
        if p.size > head_seq {
            return Ok(bad(
                head_seq + 1,
                checked,
                format!("the log was shortened: the pinned head has {} entries, the chain ends at {head_seq}", p.size),
            ));
        }
        if p.size > 0 && at_pin.as_deref() != Some(p.head_hash.as_slice()) {
            return Ok(bad(p.size, checked, format!("entry {} differs from the pinned head", p.size)));
        }
    }
    // Every non-empty log's head is signed (those that ended before heads
    // were signed were signed once at the upgrade: `sign_unsigned_heads_once`).
    let head = stored.and_then(|h| signed_head(tenant_id, h));
    if head_seq > 0 && !head.as_ref().is_some_and(|h| h.verifies(signer)) {
        return Ok(bad(head_seq, checked, "the recorded head is not signed by this service's key".into()));
    }
    if let Some(job_id) = log::certificate_off_the_log(&mut *tx, tenant_id).await? {
        return Ok(bad(0, checked, format!("the log entry certified for job {job_id} is not in the chain")));
    }
    Ok(Verification {
        valid: true,
        entries_checked: checked,
        first_bad_seq: 0,
        problem: String::new(),
        head_hash: hex::encode(prev),
        head,
    })
}

/// Signs, once per database, the heads of logs that ended before heads
/// were signed (their last entry of hash version 1): from then on every
/// non-empty log's head must verify. Recorded in `audit_upgrades`, so that
/// a head unsigned later (by someone rewriting the log) is never signed by
/// a restart. Returns how many heads were signed.
///
/// # Errors
/// Database failures.
pub async fn sign_unsigned_heads_once(pool: &PgPool, signer: &Signer) -> Result<usize> {
    let mut tx = pool.begin().await?;
    if !log::record_upgrade(&mut tx, "unsigned_heads_signed").await? {
        return Ok(0);
    }
    let heads = log::unsigned_heads(&mut tx).await?;
    for (tenant_id, seq, hash) in &heads {
        let signed = head::SignedHead::sign(signer, *tenant_id, *seq, hash);
        let sig = log::HeadSignature { signed_at: signed.signed_at, key_id: &signed.key_id, signature: &signed.signature };
        log::sign_head(&mut tx, *tenant_id, &sig).await?;
    }
    tx.commit().await?;
    Ok(heads.len())
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
