//! Adoption jobs of attached collections (`attach_jobs`): one per
//! collection, leased like erase and re-index jobs, repeated as a rescan.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::lease::{self, Lease, Queue};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachRow {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub collection_id: Uuid,
    pub status: String,
    /// The next page's first point key (the scan resumes there).
    pub cursor: Option<Uuid>,
    pub total: i64,
    pub scanned: i64,
    pub tracked: i64,
    pub untagged: i64,
    pub suppressed: i64,
    pub subjects: i64,
    pub rescans: i32,
    pub attempts: i32,
    pub error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub lease_epoch: i64,
}

const COLUMNS: &str = "job_id, tenant_id, collection_id, status, cursor, total, scanned, tracked, untagged, \
     suppressed, subjects, rescans, attempts, error, received_at, completed_at, lease_epoch";

/// The collection's job, created queued when it has none.
pub async fn ensure(ex: impl PgExecutor<'_> + Copy, tenant_id: Uuid, collection_id: Uuid) -> Result<AttachRow> {
    sqlx::query(
        "INSERT INTO attach_jobs (job_id, tenant_id, collection_id, status) VALUES ($1, $2, $3, 'queued') \
         ON CONFLICT (collection_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(collection_id)
    .execute(ex)
    .await?;
    by_collection(ex, tenant_id, collection_id).await?.ok_or(super::StoreError::Unexpected(sqlx::Error::RowNotFound))
}

pub async fn by_collection(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid) -> Result<Option<AttachRow>> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM attach_jobs WHERE tenant_id = $1 AND collection_id = $2"))
        .bind(tenant_id)
        .bind(collection_id)
        .fetch_optional(ex)
        .await?)
}

/// A failed job runs again from where it stopped (Attach again): the job
/// as queued, or None when it was no longer failed.
pub async fn retry_failed(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<Option<AttachRow>> {
    let sql = format!(
        "UPDATE attach_jobs SET status = 'queued', attempts = 0, lease_owner = NULL, lease_expires_at = NULL \
         WHERE job_id = $1 AND status = 'failed' RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql).bind(job_id).fetch_optional(ex).await?)
}

/// Queues the rescans that are due: each starts from the first point.
pub async fn queue_due_rescans(ex: impl PgExecutor<'_>) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE attach_jobs SET status = 'queued', cursor = NULL, total = 0, scanned = 0, tracked = 0, untagged = 0, \
         attempts = 0, error = NULL, next_scan_at = NULL \
         WHERE status = 'completed' AND next_scan_at IS NOT NULL AND next_scan_at <= now()",
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

pub async fn claim(ex: impl PgExecutor<'_>, owner: Uuid, lease_secs: f64) -> Result<Option<AttachRow>> {
    lease::claim(ex, Queue::Attach, COLUMNS, owner, lease_secs).await
}

pub async fn renew(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, lease_secs: f64) -> Result<bool> {
    lease::renew(ex, Queue::Attach, job_id, lease, lease_secs).await
}

pub async fn release(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, error: &str, backoff_secs: f64) -> Result<bool> {
    lease::release(ex, Queue::Attach, job_id, lease, error, backoff_secs).await
}

/// Ends the leases `owners` hold on running scans (a stopping service's
/// workers): the next claim takes them at once. Returns how many.
pub async fn release_leases_of(ex: impl PgExecutor<'_>, owners: &[Uuid]) -> Result<u64> {
    lease::release_leases_of(ex, Queue::Attach, owners).await
}

// Writes of a running scan are fenced by its lease (see `store::lease`).
const FENCE: &str = "job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'";

/// What one page of the scan did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageCounts {
    pub scanned: i64,
    pub tracked: i64,
    pub untagged: i64,
    pub suppressed: i64,
}

/// Sets the number of points the scan will read (when it starts).
pub async fn started(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, total: i64) -> Result<bool> {
    let done = sqlx::query(&format!("UPDATE attach_jobs SET total = $4 WHERE {FENCE}"))
        .bind(job_id)
        .bind(lease.owner)
        .bind(lease.epoch)
        .bind(total)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a page and where the next one starts.
pub async fn advance(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, next: Option<Uuid>, page: PageCounts) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE attach_jobs SET cursor = $4, scanned = scanned + $5, tracked = tracked + $6, \
         untagged = untagged + $7, suppressed = suppressed + $8, error = NULL WHERE {FENCE}"
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(next)
    .bind(page.scanned)
    .bind(page.tracked)
    .bind(page.untagged)
    .bind(page.suppressed)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a scan: lineage is built; the next rescan is due at `next_scan_at`.
pub async fn complete(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    lease: Lease,
    subjects: i64,
    next_scan_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE attach_jobs SET status = 'completed', completed_at = now(), subjects = $4, next_scan_at = $5, \
         rescans = rescans + CASE WHEN completed_at IS NULL THEN 0 ELSE 1 END, \
         lease_owner = NULL, lease_expires_at = NULL, error = NULL WHERE {FENCE}"
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(subjects)
    .bind(next_scan_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn fail(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, error: &str) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE attach_jobs SET status = 'failed', error = $4, lease_owner = NULL, lease_expires_at = NULL WHERE {FENCE}"
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(error)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Distinct subjects tagged on the collection's points in lineage.
pub async fn subjects_in(ex: impl PgExecutor<'_>, collection_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(DISTINCT subject_id) FROM chunk_subjects WHERE collection_id = $1")
        .bind(collection_id)
        .fetch_one(ex)
        .await?)
}

/// Remembers the ids behind the keys of text point ids (see
/// `domain::NativeId::key`); returns the keys whose rows this call added
/// (for [`forget_unlinked_point_ids`] once the call is over). Rows that
/// exist already are marked as in use (their time refreshed, and locked
/// until the transaction ends), so that [`sweep_unlinked_point_ids`] never
/// takes a row a call is using or whose lineage is being written. The ids
/// must be distinct (an upsert may not touch one row twice): requests are
/// refused with a repeated id before this (`grpc::convert`). In key order,
/// as the write's other lineage rows (`lineage::record_chunks`).
pub async fn record_point_ids(ex: impl PgExecutor<'_>, collection_id: Uuid, ids: &[(Uuid, String)]) -> Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (keys, natives): (Vec<Uuid>, Vec<&str>) = ids.iter().map(|(k, n)| (*k, n.as_str())).unzip();
    // `xmax = 0` tells the rows this statement inserted from those it updated.
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(
        "INSERT INTO attached_point_ids AS a (collection_id, point_key, native_id) \
         SELECT $1, k, n FROM UNNEST($2::uuid[], $3::text[]) AS t(k, n) ORDER BY k \
         ON CONFLICT (collection_id, point_key) DO UPDATE SET recorded_at = now() \
         RETURNING a.point_key, (a.xmax = 0) AS inserted",
    )
    .bind(collection_id)
    .bind(&keys)
    .bind(&natives)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().filter(|(_, inserted)| *inserted).map(|(k, _)| k).collect())
}

/// Forgets the rows of `keys` that no lineage chunk stands behind: the ids
/// a Track or DeletePoints recorded so that the store could read their
/// points, once the call is over, whether it failed (a backend error after
/// the rows were written), found no point, or recorded no lineage (a
/// suppressed point). A text id may name a person; it is kept only while
/// lineage needs it to reach the point.
pub async fn forget_unlinked_point_ids(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    keys: &[Uuid],
) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        r#"
        DELETE FROM attached_point_ids a
        WHERE a.collection_id = $2 AND a.point_key = ANY($3)
          AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.tenant_id = $1 AND c.chunk_id = a.point_key)
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(keys)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Forgets the lookup rows of `collection` (every attached collection when
/// None) that no lineage chunk stands behind and that were neither written
/// nor read for `older_than_secs`: what a Track or DeletePoints cut off by a
/// crash between writing its rows and forgetting them left (a call still
/// running marked its rows moments ago). How many were forgotten.
///
/// Two statements, not `$1 IS NULL OR collection_id = $1`: the attach
/// workers plan generically (`startup::worker_pool`), and a generic plan
/// would read every collection's rows to sweep one.
pub async fn sweep_unlinked_point_ids(ex: impl PgExecutor<'_>, collection: Option<Uuid>, older_than_secs: f64) -> Result<u64> {
    let one = if collection.is_some() { "a.collection_id = $2 AND" } else { "" };
    let sql = format!(
        "DELETE FROM attached_point_ids a USING collections k \
         WHERE {one} k.collection_id = a.collection_id \
           AND a.recorded_at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.tenant_id = k.tenant_id AND c.chunk_id = a.point_key)"
    );
    let query = sqlx::query(&sql).bind(older_than_secs);
    let query = match collection {
        Some(collection_id) => query.bind(collection_id),
        None => query,
    };
    Ok(query.execute(ex).await?.rows_affected())
}

/// Forgets the ids behind `keys` (points that are not, or no longer, in the store).
pub async fn forget_point_ids(ex: impl PgExecutor<'_>, collection_id: Uuid, keys: &[Uuid]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM attached_point_ids WHERE collection_id = $1 AND point_key = ANY($2)")
        .bind(collection_id)
        .bind(keys)
        .execute(ex)
        .await?;
    Ok(())
}
