//! Re-index jobs and the lineage reads a re-index needs.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::lease::{self, Lease, Queue};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReindexRow {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub collection_id: Uuid,
    pub mode: String,
    pub status: String,
    pub stage: String,
    pub staging_name: Option<String>,
    pub retired_name: Option<String>,
    pub copy_started_at: Option<DateTime<Utc>>,
    pub copy_cursor: Option<Uuid>,
    pub total: i64,
    pub copied: i64,
    pub missing: i64,
    pub excluded: i64,
    pub final_count: Option<i64>,
    pub attempts: i32,
    pub error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The epoch of the job's latest claim; see [`Lease`].
    pub lease_epoch: i64,
    /// Unseen generations the drop stage found and dropped.
    pub orphans_dropped: i64,
    /// What the new generation holds of the points its switch left out.
    pub physical_detail: String,
}

const COLUMNS: &str = "job_id, tenant_id, collection_id, mode, status, stage, staging_name, retired_name, \
     copy_started_at, copy_cursor, total, copied, missing, excluded, final_count, attempts, error, received_at, \
     started_at, completed_at, lease_epoch, orphans_dropped, physical_detail";

/// Inserts a job unless one is active for the collection; returns the active one then.
/// An active job that ends between the two statements is no conflict: the
/// insert is tried again.
pub async fn insert(
    ex: impl PgExecutor<'_> + Copy,
    tenant_id: Uuid,
    collection_id: Uuid,
    mode: &str,
    claimed_by: Option<Uuid>,
) -> Result<(ReindexRow, bool)> {
    loop {
        let row: Option<ReindexRow> = sqlx::query_as(&format!(
            r#"
            INSERT INTO reindex_jobs (job_id, tenant_id, collection_id, mode, status, stage, lease_owner,
                                      lease_expires_at, started_at, attempts)
            VALUES ($1, $2, $3, $4, CASE WHEN $5::uuid IS NULL THEN 'queued' ELSE 'in_progress' END, 'prepare', $5,
                    CASE WHEN $5::uuid IS NULL THEN NULL ELSE now() + interval '60 seconds' END,
                    CASE WHEN $5::uuid IS NULL THEN NULL ELSE now() END,
                    CASE WHEN $5::uuid IS NULL THEN 0 ELSE 1 END)
            ON CONFLICT (collection_id) WHERE status IN ('queued', 'in_progress') DO NOTHING
            RETURNING {COLUMNS}
            "#
        ))
        .bind(Uuid::new_v4())
        .bind(tenant_id)
        .bind(collection_id)
        .bind(mode)
        .bind(claimed_by)
        .fetch_optional(ex)
        .await?;
        if let Some(r) = row {
            return Ok((r, true));
        }
        let active: Option<ReindexRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reindex_jobs WHERE collection_id = $1 AND status IN ('queued', 'in_progress')"
        ))
        .bind(collection_id)
        .fetch_optional(ex)
        .await?;
        if let Some(r) = active {
            return Ok((r, false));
        }
    }
}

pub async fn get(ex: impl PgExecutor<'_>, tenant_id: Uuid, job_id: Uuid) -> Result<Option<ReindexRow>> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM reindex_jobs WHERE tenant_id = $1 AND job_id = $2"))
        .bind(tenant_id)
        .bind(job_id)
        .fetch_optional(ex)
        .await?)
}

pub async fn list(ex: impl PgExecutor<'_>, tenant_id: Uuid, limit: i64) -> Result<Vec<ReindexRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reindex_jobs WHERE tenant_id = $1 ORDER BY received_at DESC LIMIT $2"
    ))
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Claims the oldest runnable job whose lease is free or expired, under a new lease epoch.
pub async fn claim(ex: impl PgExecutor<'_>, owner: Uuid, lease_secs: f64) -> Result<Option<ReindexRow>> {
    lease::claim(ex, Queue::Reindex, COLUMNS, owner, lease_secs).await
}

/// Claims the given job if its lease is free or expired, under a new lease epoch.
pub async fn claim_one(ex: impl PgExecutor<'_>, job_id: Uuid, owner: Uuid, lease_secs: f64) -> Result<Option<ReindexRow>> {
    lease::claim_one(ex, Queue::Reindex, COLUMNS, job_id, owner, lease_secs).await
}

/// Frees the job's lease at once (between two steps); false when `lease` no longer holds it.
pub async fn give_back(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease) -> Result<bool> {
    lease::give_back(ex, Queue::Reindex, job_id, lease).await
}

/// Extends the job's lease; false when `lease` no longer holds it.
pub async fn renew(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, lease_secs: f64) -> Result<bool> {
    lease::renew(ex, Queue::Reindex, job_id, lease, lease_secs).await
}

// The stage writes below are fenced by the claim's epoch (the row the stage
// runs from was read after its claim): a worker whose job was claimed again
// since writes nothing (false).
const FENCE: &str = "job_id = $1 AND lease_epoch = $2 AND status = 'in_progress'";

/// Saves what the prepare stage decided.
pub async fn prepared(ex: impl PgExecutor<'_>, job_id: Uuid, epoch: i64, staging: &str, total: i64) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE reindex_jobs SET staging_name = $3, total = $4, copy_started_at = COALESCE(copy_started_at, now()) \
         WHERE {FENCE}"
    ))
    .bind(job_id)
    .bind(epoch)
    .bind(staging)
    .bind(total)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn progress(ex: impl PgExecutor<'_>, job_id: Uuid, epoch: i64, cursor: Uuid, copied: i64, missing: i64) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE reindex_jobs SET copy_cursor = $3, copied = copied + $4, missing = missing + $5 WHERE {FENCE}"
    ))
    .bind(job_id)
    .bind(epoch)
    .bind(cursor)
    .bind(copied)
    .bind(missing)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn switched(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    epoch: i64,
    retired: &str,
    (final_count, excluded): (i64, i64),
    physical_detail: &str,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE reindex_jobs SET retired_name = $3, final_count = $4, excluded = $5, physical_detail = $6 WHERE {FENCE}"
    ))
    .bind(job_id)
    .bind(epoch)
    .bind(retired)
    .bind(final_count)
    .bind(excluded)
    .bind(physical_detail)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records how many unseen generations the drop stage dropped.
pub async fn orphans_dropped(ex: impl PgExecutor<'_>, job_id: Uuid, epoch: i64, dropped: i64) -> Result<bool> {
    let done = sqlx::query(&format!("UPDATE reindex_jobs SET orphans_dropped = $3 WHERE {FENCE}"))
        .bind(job_id)
        .bind(epoch)
        .bind(dropped)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the job to `stage`; false, and nothing written, when `lease` no longer holds it.
pub async fn advance(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, stage: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE reindex_jobs SET stage = $4 \
         WHERE job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'",
    )
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(stage)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends the job; false, and nothing written, when `lease` no longer holds it.
pub async fn finish(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, status: &str, error: Option<&str>) -> Result<bool> {
    let done = sqlx::query(
        r#"
        UPDATE reindex_jobs SET status = $4, error = $5, completed_at = now(),
               stage = CASE WHEN $4 = 'completed' THEN 'done' ELSE stage END,
               lease_owner = NULL, lease_expires_at = NULL
        WHERE job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'
        "#,
    )
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(status)
    .bind(error)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the job back after a transient failure; false when `lease` no longer holds it.
pub async fn release_for_retry(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, error: &str, backoff_secs: f64) -> Result<bool> {
    lease::release(ex, Queue::Reindex, job_id, lease, error, backoff_secs).await
}

/// Ends the leases `owners` hold on running jobs (a stopping service's
/// workers): the next claim takes them at once. Returns how many. Not at
/// the switch: its table swap is one statement the backend may still be
/// waiting to run for a lock after the stage was dropped (the swap is not
/// fenced by the lease), and a claim that switched again meanwhile would
/// find the new table gone and fail the job; that lease runs out.
pub async fn release_leases_of(ex: impl PgExecutor<'_>, owners: &[Uuid]) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE reindex_jobs SET lease_expires_at = now() \
         WHERE lease_owner = ANY($1) AND status = 'in_progress' AND lease_expires_at > now() AND stage <> 'switch'",
    )
    .bind(owners)
    .execute(ex)
    .await?
    .rows_affected())
}

/// Which subjects a re-index leaves out of its new generation (`s` is the
/// subject row): the erased, and those whose erasure has begun deleting. A
/// subject frozen for an erasure that has deleted nothing yet is kept: a
/// legal hold placed now refuses that erasure ("nothing was deleted"), so
/// its data must still be there; if the erasure goes on, its delete finds
/// the points in the new generation.
const LEFT_OUT: &str = "(s.state = 'erased' OR (s.state = 'pending_erasure' AND EXISTS ( \
     SELECT 1 FROM erasure_jobs j WHERE j.subject_id = s.subject_id AND j.status = 'in_progress' \
     AND j.deleting_started_at IS NOT NULL)))";

/// The collection's live chunks (none tagged with a subject left out, see
/// [`LEFT_OUT`], unless also with a subject on legal hold: those are
/// kept), in id order after `after`, with their stored text.
pub async fn live_chunks(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    after: Option<Uuid>,
    changed_since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<(Uuid, Option<String>)>> {
    Ok(sqlx::query_as(&format!(
        r#"
        SELECT c.chunk_id, c.text FROM chunks c
        WHERE c.tenant_id = $5 AND c.collection_id = $1
          AND {after}
          -- An index range in a generic plan too, as `after`.
          AND c.updated_at >= coalesce($3, '-infinity'::timestamptz)
          AND (NOT EXISTS (
                   SELECT 1 FROM chunk_subjects cs JOIN subjects s USING (subject_id)
                   WHERE cs.chunk_id = c.chunk_id AND cs.tenant_id = c.tenant_id AND {LEFT_OUT})
               OR EXISTS (
                   SELECT 1 FROM chunk_subjects cs JOIN subjects s USING (subject_id)
                   WHERE cs.chunk_id = c.chunk_id AND cs.tenant_id = c.tenant_id AND s.legal_hold))
        ORDER BY c.chunk_id
        LIMIT $4
        "#,
        after = super::after_cursor("c.chunk_id", "$2")
    ))
    .bind(collection_id)
    .bind(after)
    .bind(changed_since)
    .bind(limit)
    .bind(tenant_id)
    .fetch_all(ex)
    .await?)
}

/// The collection's re-index in flight whose staging generation exists
/// (it may hold copies of rows deleted since its copy began), if any.
pub async fn in_flight_with_staging(ex: impl PgExecutor<'_>, collection_id: Uuid) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT job_id FROM reindex_jobs
        WHERE collection_id = $1 AND status IN ('queued', 'in_progress') AND staging_name IS NOT NULL
        "#,
    )
    .bind(collection_id)
    .fetch_optional(ex)
    .await?)
}

/// Keyed hashes of the tenant's subjects a re-index leaves out ([`LEFT_OUT`]).
pub async fn suppressed_hashes(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar(&format!("SELECT subject_hash FROM subjects s WHERE tenant_id = $1 AND {LEFT_OUT}"))
        .bind(tenant_id)
        .fetch_all(ex)
        .await?)
}
