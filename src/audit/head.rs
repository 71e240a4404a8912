//! Signed log heads, as Certificate Transparency's signed tree heads: after
//! every append the service signs "the tenant's log has `size` entries and
//! ends in `head_hash`, at `signed_at`". Anyone who keeps one (a refusal's
//! requester, an auditor, a certificate's holder) can later show that the log
//! was shortened or rewritten before that point: `VerifyDeletionLog` with the
//! head pinned checks that the chain still reaches it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Signer;

/// A signed statement of the log's size and last hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    pub tenant_id: Uuid,
    pub size: i64,
    pub head_hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    pub signature: Vec<u8>,
}

#[derive(Serialize)]
struct Statement<'a> {
    log: &'static str,
    tenant_id: String,
    size: i64,
    head_hash: String,
    signed_at: String,
    key_id: &'a str,
}

impl SignedHead {
    /// Signs the head of `size` entries ending in `head_hash`, now.
    pub fn sign(signer: &Signer, tenant_id: Uuid, size: i64, head_hash: &[u8]) -> Self {
        // Microsecond precision, as Postgres stores it, so that the statement
        // rebuilt from the stored head is the one that was signed.
        let signed_at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now);
        let mut head =
            Self { tenant_id, size, head_hash: head_hash.to_vec(), signed_at, key_id: signer.key_id(), signature: Vec::new() };
        head.signature = signer.sign(&head.statement()).to_vec();
        head
    }

    /// The exact text that is signed: canonical JSON with the fields in this
    /// order, `head_hash` in hex, `signed_at` RFC 3339 with microseconds.
    pub fn statement(&self) -> String {
        let s = Statement {
            log: "lethe.dev/deletion-log/v1",
            tenant_id: self.tenant_id.to_string(),
            size: self.size,
            head_hash: hex::encode(&self.head_hash),
            signed_at: self.signed_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            key_id: &self.key_id,
        };
        // Strings and numbers only: serialising cannot fail.
        serde_json::to_string(&s).unwrap_or_default()
    }

    /// Whether the signature is the service's (current or retired key).
    pub fn verifies(&self, signer: &Signer) -> bool {
        signer.verify(&self.key_id, &self.statement(), &self.signature)
    }
}
