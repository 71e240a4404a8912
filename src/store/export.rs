//! What an access export reads: a subject's identifiers, the chunks lineage
//! ties to them (a page at a time), their erasure jobs and the log entries
//! that name their keyed hash.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::log::LogRow;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubjectDetail {
    pub created_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
}

pub async fn subject_detail(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Option<SubjectDetail>> {
    Ok(sqlx::query_as("SELECT created_at, erased_at FROM subjects WHERE subject_id = $1")
        .bind(subject_id)
        .fetch_optional(ex)
        .await?)
}

/// The identifiers still held in plaintext (kind, value), in a stable order.
pub async fn identifiers(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT kind, value FROM subject_identifiers WHERE subject_id = $1 AND value IS NOT NULL ORDER BY kind, value",
    )
    .bind(subject_id)
    .fetch_all(ex)
    .await?)
}

/// One chunk of the subject with its source.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportChunk {
    pub collection_id: Uuid,
    pub chunk_id: Uuid,
    pub role: String,
    /// Tagged with other subjects too (its text may concern them).
    pub shared: bool,
    pub ordinal: i32,
    pub text: Option<String>,
    pub created_at: DateTime<Utc>,
    pub source_id: Uuid,
    pub source_external_id: String,
    pub source_uri: String,
    pub source_kind: String,
    pub source_created_at: DateTime<Utc>,
    /// The point's own id in an attached store when it is not a UUID Lethe can derive.
    pub native_id: Option<String>,
}

/// The subject's chunks after `(collection_id, chunk_id)`, in that order
/// (the `chunk_subjects_subject_idx` order), at most `limit`.
pub async fn chunks_after(
    ex: impl PgExecutor<'_>,
    subject_id: Uuid,
    after: Option<(Uuid, Uuid)>,
    limit: i64,
) -> Result<Vec<ExportChunk>> {
    let (after_collection, after_chunk) = after.unwrap_or((Uuid::nil(), Uuid::nil()));
    Ok(sqlx::query_as(
        "SELECT cs.collection_id, cs.chunk_id, cs.role, k.shared, k.ordinal, k.text, k.created_at, s.source_id, \
                s.external_id AS source_external_id, s.uri AS source_uri, s.kind AS source_kind, \
                s.created_at AS source_created_at, ap.native_id \
         FROM chunk_subjects cs \
         JOIN chunks k ON k.tenant_id = cs.tenant_id AND k.chunk_id = cs.chunk_id \
         JOIN sources s ON s.source_id = k.source_id \
         LEFT JOIN attached_point_ids ap ON ap.collection_id = cs.collection_id AND ap.point_key = cs.chunk_id \
         WHERE cs.subject_id = $1 AND (cs.collection_id, cs.chunk_id) > ($2, $3) \
         ORDER BY cs.collection_id, cs.chunk_id LIMIT $4",
    )
    .bind(subject_id)
    .bind(after_collection)
    .bind(after_chunk)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportJob {
    pub job_id: Uuid,
    pub status: String,
    pub stage: String,
    pub requested_by: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deadline: DateTime<Utc>,
}

pub async fn jobs(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Vec<ExportJob>> {
    Ok(sqlx::query_as(
        "SELECT job_id, status, stage, requested_by, reason, received_at, completed_at, deadline \
         FROM erasure_jobs WHERE subject_id = $1 ORDER BY received_at, job_id",
    )
    .bind(subject_id)
    .fetch_all(ex)
    .await?)
}

/// The tenant's log entries that name `subject_hash`, oldest first: by the
/// entry's subject column, and the `reconcile` entries (one per collection,
/// for several people) that list it among their `subjects`. Two branches,
/// each through its index (the subject's, and the tenant's reconcile
/// entries): as one `OR`, every entry of the tenant's log was read.
pub async fn log_entries(ex: impl PgExecutor<'_>, tenant_id: Uuid, subject_hash: &[u8]) -> Result<Vec<LogRow>> {
    Ok(sqlx::query_as(
        "SELECT seq, kind, job_id, subject_hash, body, prev_hash, entry_hash, created_at, hash_version \
         FROM deletion_log WHERE tenant_id = $1 AND subject_hash = $2 \
         UNION ALL \
         SELECT seq, kind, job_id, subject_hash, body, prev_hash, entry_hash, created_at, hash_version \
         FROM deletion_log WHERE kind = 'reconcile' AND tenant_id = $1 \
           AND subject_hash IS DISTINCT FROM $2 AND jsonb_exists(body::jsonb -> 'subjects', $3) \
         ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(subject_hash)
    .bind(hex::encode(subject_hash))
    .fetch_all(ex)
    .await?)
}
