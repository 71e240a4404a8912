//! What the log and the certificate say about a job. Bodies are serialised
//! once and stored as they are, so the bytes that are hashed and signed are
//! the bytes an auditor reads.

use base64::Engine;
use serde::Serialize;

use crate::context::Context;
use crate::domain::{Backend, JobNote};
use crate::store::jobs::{CountRow, JobRow};
use crate::store::log::{CertificateRow, LogRow};

/// What no erasure by Lethe can reach; stated in every entry and certificate.
pub const OUT_OF_REACH: &str = "Copies outside the live backends are not erased by Lethe: PostgreSQL WAL and \
     archives, base backups and replicas, and the files of a rewrite (VACUUM FULL) cut off by a PostgreSQL \
     crash, which PostgreSQL leaves in its data directory unreferenced; Qdrant WAL segments until truncated, \
     snapshots and replicas; application caches and exports. Erase or expire them by their own retention.";

#[derive(Serialize)]
pub struct CollectionReport<'a> {
    collection: &'a str,
    backend: &'a str,
    before_by_tag: i64,
    before_by_ids: i64,
    before_total: i64,
    /// Counted before, deleted by this job: `before_total - after_total -
    /// deleted_by_other_erasures`.
    deleted: i64,
    /// Counted before and deleted by another erasure running at the same
    /// time (of a subject they are shared with), which is credited with
    /// them: each deletion is in one certificate. Absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    deleted_by_other_erasures: i64,
    after_by_tag: i64,
    after_by_ids: i64,
    after_total: i64,
    residual_found: i64,
    residual_deleted: i64,
    residual_redacted: i64,
    /// Points of the subject left in place (counted in `after_total`)
    /// because they are shared with subjects on legal hold.
    withheld: i64,
    /// Residual candidates reported but neither deleted nor redacted
    /// because of a legal hold.
    residual_withheld: i64,
    physical_status: &'a str,
    physical_detail: &'a str,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn collections(counts: &[CountRow]) -> Vec<CollectionReport<'_>> {
    counts
        .iter()
        .map(|c| {
            let after = c.after_total.unwrap_or(0);
            CollectionReport {
                collection: &c.collection_name,
                backend: &c.backend,
                before_by_tag: c.before_by_tag,
                before_by_ids: c.before_by_ids,
                before_total: c.before_total,
                deleted: c.before_total - after - c.deleted_elsewhere,
                deleted_by_other_erasures: c.deleted_elsewhere,
                after_by_tag: c.after_by_tag.unwrap_or(0),
                after_by_ids: c.after_by_ids.unwrap_or(0),
                after_total: after,
                residual_found: c.residual_found,
                residual_deleted: c.residual_deleted,
                residual_redacted: c.residual_redacted,
                withheld: c.withheld,
                residual_withheld: c.residual_withheld,
                physical_status: &c.physical_status,
                physical_detail: &c.physical_detail,
            }
        })
        .collect()
}

#[derive(Serialize)]
pub struct ErasureBody<'a> {
    kind: &'static str,
    job_id: String,
    tenant_id: String,
    /// None for a retention job (no subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_hash: Option<String>,
    /// A retention job's collection, rule and sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<RetentionReport<'a>>,
    requested_by: &'a str,
    reason: &'a str,
    residual_policy: &'a str,
    guarantee_physical: bool,
    received_at: String,
    deadline: String,
    logged_at: String,
    collections: Vec<CollectionReport<'a>>,
    /// Lethe's own tables (lineage texts, identifiers, probes).
    lineage_physical: LineagePhysical<'a>,
    /// What was withheld or capped, and why (see [`JobNote`]).
    notes: &'a [JobNote],
    out_of_reach: &'static str,
}

/// Physical erasure in Lethe's own tables.
#[derive(Serialize, Clone, Copy)]
pub struct LineagePhysical<'a> {
    status: &'a str,
    detail: &'a str,
}

/// What a retention job's log entry and certificate say of its target.
#[derive(Serialize, Clone, Copy)]
pub struct RetentionReport<'a> {
    /// The collection whose sources were erased.
    pub collection: &'a str,
    /// Sources the sweep found past the rule and gave the job.
    pub sources: i64,
    /// Of those, sources kept because one of their chunks is tagged with a
    /// subject under legal hold.
    pub withheld_sources: i64,
}

/// The log entry's body of a job: `erasure` (a subject) or `retention`.
pub fn erasure_body<'a>(job: &'a JobRow, outcome: &Outcome<'a>) -> ErasureBody<'a> {
    let Outcome { subject_hash, counts, notes, lineage_physical, retention } = *outcome;
    ErasureBody {
        kind: if retention.is_some() { "retention" } else { "erasure" },
        job_id: job.job_id.to_string(),
        tenant_id: job.tenant_id.to_string(),
        subject_hash: subject_hash.map(hex::encode),
        retention,
        requested_by: &job.requested_by,
        reason: &job.reason,
        residual_policy: &job.residual_policy,
        guarantee_physical: job.guarantee_physical,
        received_at: job.received_at.to_rfc3339(),
        deadline: job.deadline.to_rfc3339(),
        logged_at: chrono::Utc::now().to_rfc3339(),
        collections: collections(counts),
        lineage_physical: LineagePhysical { status: &lineage_physical.0, detail: &lineage_physical.1 },
        notes,
        out_of_reach: OUT_OF_REACH,
    }
}

/// The log entry of a job that failed after its deletion began: what it
/// had counted before, so that an auditor sees the deletion happened even
/// though no certificate says how it ended.
#[derive(Serialize)]
pub struct FailureBody<'a> {
    kind: &'static str,
    job_id: String,
    tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_hash: Option<String>,
    requested_by: &'a str,
    reason: &'a str,
    received_at: String,
    failed_at: String,
    /// The stage at which the job failed.
    stage: &'a str,
    collections: Vec<FailedCollection<'a>>,
    what_it_means: &'static str,
    out_of_reach: &'static str,
}

/// A collection's counts before, as the failed job's plan took them.
#[derive(Serialize)]
pub struct FailedCollection<'a> {
    collection: &'a str,
    backend: &'a str,
    before_by_tag: i64,
    before_by_ids: i64,
    before_total: i64,
}

const FAILED_AFTER_DELETING: &str = "The job failed after it began deleting: some or all of the points counted \
     before may be gone, and no count after was certified. Erase the subject again: the new job counts, deletes \
     and certifies what remains.";

pub fn failure_body<'a>(job: &'a JobRow, subject_hash: Option<&[u8]>, stage: &'a str, counts: &'a [CountRow]) -> FailureBody<'a> {
    FailureBody {
        kind: "failure",
        job_id: job.job_id.to_string(),
        tenant_id: job.tenant_id.to_string(),
        subject_hash: subject_hash.map(hex::encode),
        requested_by: &job.requested_by,
        reason: &job.reason,
        received_at: job.received_at.to_rfc3339(),
        failed_at: chrono::Utc::now().to_rfc3339(),
        stage,
        collections: counts
            .iter()
            .map(|c| FailedCollection {
                collection: &c.collection_name,
                backend: &c.backend,
                before_by_tag: c.before_by_tag,
                before_by_ids: c.before_by_ids,
                before_total: c.before_total,
            })
            .collect(),
        what_it_means: FAILED_AFTER_DELETING,
        out_of_reach: OUT_OF_REACH,
    }
}

#[derive(Serialize)]
pub struct RefusalBody<'a> {
    kind: &'static str,
    job_id: String,
    tenant_id: String,
    subject_hash: String,
    requested_by: &'a str,
    reason: &'a str,
    refused_because: &'a str,
    received_at: String,
}

pub fn refusal_body<'a>(job: &'a JobRow, subject_hash: &[u8]) -> RefusalBody<'a> {
    RefusalBody {
        kind: "refusal",
        job_id: job.job_id.to_string(),
        tenant_id: job.tenant_id.to_string(),
        subject_hash: hex::encode(subject_hash),
        requested_by: &job.requested_by,
        reason: &job.reason,
        refused_because: job.error.as_deref().unwrap_or("legal_hold"),
        received_at: job.received_at.to_rfc3339(),
    }
}

#[derive(Serialize)]
struct CertificateBody<'a> {
    certificate_version: u32,
    algorithm: &'static str,
    /// `retention` for a retention job; absent for a subject's erasure.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    job_id: String,
    tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<RetentionReport<'a>>,
    requested_by: &'a str,
    received_at: String,
    completed_at: String,
    deadline: String,
    collections: Vec<CollectionReport<'a>>,
    lineage_physical: LineagePhysical<'a>,
    residual_policy: &'a str,
    notes: &'a [JobNote],
    log_seq: i64,
    log_entry_hash: String,
    out_of_reach: &'static str,
    /// The signing key's id (SHA-256 of the public key, 16 hex digits).
    key_id: String,
}

/// What the job's log entry and certificate are made of.
#[derive(Clone, Copy)]
pub struct Outcome<'a> {
    /// The erased subject's keyed hash; None for a retention job.
    pub subject_hash: Option<&'a [u8]>,
    pub counts: &'a [CountRow],
    pub notes: &'a [JobNote],
    /// Physical status and detail of Lethe's own tables.
    pub lineage_physical: &'a (String, String),
    /// A retention job's target.
    pub retention: Option<RetentionReport<'a>>,
}

/// The signed certificate of a job, anchored to its log entry. Version 2
/// added `notes` (what was withheld or capped, and why), `lineage_physical`
/// and the `withheld` counts.
pub fn certificate(ctx: &Context, job: &JobRow, outcome: &Outcome<'_>, entry: &LogRow) -> CertificateRow {
    let Outcome { subject_hash, counts, notes, lineage_physical, retention } = *outcome;
    let body = CertificateBody {
        certificate_version: 2,
        algorithm: "Ed25519",
        kind: retention.is_some().then_some("retention"),
        job_id: job.job_id.to_string(),
        tenant_id: job.tenant_id.to_string(),
        subject_hash: subject_hash.map(hex::encode),
        retention,
        requested_by: &job.requested_by,
        received_at: job.received_at.to_rfc3339(),
        completed_at: chrono::Utc::now().to_rfc3339(),
        deadline: job.deadline.to_rfc3339(),
        collections: collections(counts),
        lineage_physical: LineagePhysical { status: &lineage_physical.0, detail: &lineage_physical.1 },
        residual_policy: &job.residual_policy,
        notes,
        log_seq: entry.seq,
        log_entry_hash: hex::encode(&entry.entry_hash),
        out_of_reach: OUT_OF_REACH,
        key_id: ctx.signer.key_id(),
    };
    // Serialising plain strings and numbers cannot fail.
    let body = serde_json::to_string(&body).unwrap_or_default();
    CertificateRow {
        job_id: job.job_id,
        signature: ctx.signer.sign(&body).to_vec(),
        public_key: ctx.signer.public_key().to_vec(),
        key_id: Some(ctx.signer.key_id()),
        body,
    }
}

/// Base64 as certificates present keys and signatures.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Why physical erasure is pending when no guarantee was asked for.
pub fn pending_detail(backend: Backend) -> &'static str {
    match backend {
        Backend::Pgvector => {
            "deleted rows are dead tuples until (auto)VACUUM prunes them; ask for guaranteed physical erasure to rewrite the table now"
        }
        Backend::Qdrant => {
            "Qdrant soft-deletes points; their vectors stay in segment files until the optimizer rewrites the segment; ask for guaranteed physical erasure to rebuild the collection"
        }
    }
}
