//! Reconcile runs (`reconcile_runs`, `reconcile_collections`): queued by
//! the Reconcile rpc or the schedule, leased like the other jobs, with what
//! each run did per collection. Also the lineage queries a run needs.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::lease::{self, Lease, Queue};

/// A run as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub trigger: String,
    pub requested_by: String,
    pub status: String,
    pub lease_epoch: i64,
    pub attempts: i32,
    pub error: Option<String>,
    pub held_subjects: Vec<Vec<u8>>,
    pub subjects_scrubbed: i32,
    pub received_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "job_id, tenant_id, trigger, requested_by, status, lease_epoch, attempts, error, held_subjects, \
     subjects_scrubbed, received_at, started_at, completed_at";

/// Writes of a running run are fenced by its lease (see `store::lease`).
const FENCE: &str = "job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'";
const HELD: &str = "EXISTS (SELECT 1 FROM reconcile_runs r WHERE r.job_id = $1 AND r.lease_owner = $2 \
     AND r.lease_epoch = $3 AND r.status = 'in_progress')";

/// Queues a run for the tenant, or returns the one already queued or running
/// (at most one per tenant: the partial unique index decides between
/// concurrent requests). The bool is true for a new run.
pub async fn request(ex: impl PgExecutor<'_> + Copy, tenant_id: Uuid, trigger: &str, requested_by: &str) -> Result<(RunRow, bool)> {
    // The active run may end between the two statements: then ask again.
    for _ in 0..3 {
        let inserted: Option<RunRow> = sqlx::query_as(&format!(
            r#"
            INSERT INTO reconcile_runs (job_id, tenant_id, trigger, requested_by, status)
            VALUES ($1, $2, $3, $4, 'queued')
            ON CONFLICT (tenant_id) WHERE status IN ('queued', 'in_progress') DO NOTHING
            RETURNING {COLUMNS}
            "#
        ))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(trigger)
        .bind(requested_by)
        .fetch_optional(ex)
        .await?;
        if let Some(run) = inserted {
            return Ok((run, true));
        }
        let active: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reconcile_runs WHERE tenant_id = $1 AND status IN ('queued', 'in_progress')"
        ))
        .bind(tenant_id)
        .fetch_optional(ex)
        .await?;
        if let Some(run) = active {
            return Ok((run, false));
        }
    }
    Err(super::StoreError::Unavailable(sqlx::Error::PoolTimedOut))
}

/// Queues a scheduled run for every tenant that has erased subjects and
/// whose last run (or, before the first, its first erasure) was received
/// at least `interval_secs` ago. Several replicas may call this at once:
/// the one-active-run index lets one insert per tenant through.
pub async fn queue_due(ex: impl PgExecutor<'_>, interval_secs: f64) -> Result<u64> {
    let done = sqlx::query(
        r#"
        INSERT INTO reconcile_runs (job_id, tenant_id, trigger, status)
        SELECT gen_random_uuid(), t.tenant_id, 'schedule', 'queued'
        FROM tenants t
        WHERE COALESCE(
                (SELECT max(r.received_at) FROM reconcile_runs r WHERE r.tenant_id = t.tenant_id),
                (SELECT min(s.erased_at) FROM subjects s WHERE s.tenant_id = t.tenant_id AND s.state = 'erased')
              ) <= now() - make_interval(secs => $1)
          AND EXISTS (SELECT 1 FROM subjects s WHERE s.tenant_id = t.tenant_id AND s.state = 'erased')
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind(interval_secs)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

pub async fn claim(ex: impl PgExecutor<'_>, owner: Uuid, lease_secs: f64) -> Result<Option<RunRow>> {
    lease::claim(ex, Queue::Reconcile, COLUMNS, owner, lease_secs).await
}

pub async fn renew(ex: impl PgExecutor<'_>, run_id: Uuid, lease: Lease, lease_secs: f64) -> Result<bool> {
    lease::renew(ex, Queue::Reconcile, run_id, lease, lease_secs).await
}

pub async fn release(ex: impl PgExecutor<'_>, run_id: Uuid, lease: Lease, error: &str, backoff_secs: f64) -> Result<bool> {
    lease::release(ex, Queue::Reconcile, run_id, lease, error, backoff_secs).await
}

/// Ends the leases `owners` hold on runs in progress (a stopping service's
/// workers): the next claim takes them at once. Returns how many.
pub async fn release_leases_of(ex: impl PgExecutor<'_>, owners: &[Uuid]) -> Result<u64> {
    lease::release_leases_of(ex, Queue::Reconcile, owners).await
}

/// Ends the run (`completed` or `failed`); false when `lease` no longer holds it.
pub async fn finish(
    pool: &sqlx::PgPool,
    run_id: Uuid,
    lease: Lease,
    status: &str,
    error: Option<&str>,
    held_subjects: &[Vec<u8>],
    subjects_scrubbed: i32,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(&format!(
        "UPDATE reconcile_runs SET status = $4, error = $5, held_subjects = $6, subjects_scrubbed = $7, \
         completed_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE {FENCE}"
    ))
    .bind(run_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(status)
    .bind(error)
    .bind(held_subjects)
    .bind(subjects_scrubbed)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // A run that ends without finishing a collection keeps none of its
    // planned point keys (a key can be a UUIDv5 of a person-named id).
    sqlx::query("UPDATE reconcile_collections SET points = '{}', point_subjects = '{}' WHERE job_id = $1 AND log_seq IS NULL")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn run(ex: impl PgExecutor<'_>, tenant_id: Uuid, run_id: Uuid) -> Result<Option<RunRow>> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM reconcile_runs WHERE tenant_id = $1 AND job_id = $2"))
        .bind(tenant_id)
        .bind(run_id)
        .fetch_optional(ex)
        .await?)
}

/// What a run did (or is doing) in one collection.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CollectionRow {
    pub collection_id: Uuid,
    pub collection_name: String,
    pub backend: String,
    pub scanned: i64,
    pub by_tag: i64,
    pub by_lineage: i64,
    pub by_ledger: i64,
    pub withheld: i64,
    pub before: i64,
    /// None until the collection is done.
    pub after: Option<i64>,
    pub lineage_forgotten: i64,
    pub log_seq: Option<i64>,
    pub points: Vec<Uuid>,
    pub point_subjects: Vec<Vec<u8>>,
}

pub async fn collections(ex: impl PgExecutor<'_>, run_id: Uuid) -> Result<Vec<CollectionRow>> {
    Ok(sqlx::query_as(
        r#"
        SELECT collection_id, collection_name, backend, scanned, by_tag, by_lineage, by_ledger, withheld, before,
               after, lineage_forgotten, log_seq, points, point_subjects
        FROM reconcile_collections WHERE job_id = $1 ORDER BY collection_name
        "#,
    )
    .bind(run_id)
    .fetch_all(ex)
    .await?)
}

/// Records a collection's plan (what the scan found, the count before and
/// the points to delete) before its first delete; a new plan (a hold placed
/// since the earlier attempt's) replaces the earlier one until the collection
/// is done. False when `lease` no longer holds the run.
pub async fn record_plan(ex: impl PgExecutor<'_> + Copy, run_id: Uuid, lease: Lease, c: &CollectionRow) -> Result<bool> {
    let done = sqlx::query(&format!(
        r#"
        INSERT INTO reconcile_collections (job_id, collection_id, collection_name, backend, scanned, by_tag,
                                           by_lineage, by_ledger, withheld, before, points, point_subjects)
        SELECT $1, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
        WHERE {HELD}
        ON CONFLICT (job_id, collection_id) DO UPDATE SET
            scanned = EXCLUDED.scanned, by_tag = EXCLUDED.by_tag, by_lineage = EXCLUDED.by_lineage,
            by_ledger = EXCLUDED.by_ledger, withheld = EXCLUDED.withheld, before = EXCLUDED.before,
            points = EXCLUDED.points, point_subjects = EXCLUDED.point_subjects
        WHERE reconcile_collections.log_seq IS NULL
        "#
    ))
    .bind(run_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(c.collection_id)
    .bind(&c.collection_name)
    .bind(&c.backend)
    .bind(c.scanned)
    .bind(c.by_tag)
    .bind(c.by_lineage)
    .bind(c.by_ledger)
    .bind(c.withheld)
    .bind(c.before)
    .bind(&c.points)
    .bind(&c.point_subjects)
    .execute(ex)
    .await?;
    // Nothing inserted under a valid lease: an earlier attempt's plan is there.
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    Ok(sqlx::query_scalar::<_, bool>(&format!("SELECT {HELD}"))
        .bind(run_id)
        .bind(lease.owner)
        .bind(lease.epoch)
        .fetch_one(ex)
        .await?)
}

/// Completes a collection: counts after, lineage forgotten, the log entry;
/// forgets the points. False when `lease` no longer holds the run.
pub async fn complete_collection(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    lease: Lease,
    collection_id: Uuid,
    after: i64,
    lineage_forgotten: i64,
    log_seq: i64,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE reconcile_collections SET after = $5, lineage_forgotten = $6, log_seq = $7, points = '{{}}', \
         point_subjects = '{{}}' WHERE job_id = $1 AND collection_id = $4 AND {HELD}"
    ))
    .bind(run_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(collection_id)
    .bind(after)
    .bind(lineage_forgotten)
    .bind(log_seq)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An erased subject of the tenant as a run sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ErasedSubject {
    pub subject_hash: Vec<u8>,
    pub legal_hold: bool,
    /// A queued or running erasure (a follow-up) handles the subject now.
    pub busy: bool,
}

pub async fn erased_subjects(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<ErasedSubject>> {
    Ok(sqlx::query_as(
        r#"
        SELECT s.subject_hash, s.legal_hold,
               EXISTS (SELECT 1 FROM erasure_jobs j WHERE j.subject_id = s.subject_id
                       AND j.status IN ('queued', 'in_progress')) AS busy
        FROM subjects s
        WHERE s.tenant_id = $1 AND s.state = 'erased'
        "#,
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await?)
}

/// Lineage of erased subjects in one collection: (chunk id, subject hash)
/// of every tag of a subject that is neither on legal hold nor being erased
/// again. Their erasure forgot such tags, except on chunks withheld under
/// another subject's hold (the caller leaves those alone): the rest came
/// back with a restore of Lethe's database.
pub async fn erased_lineage(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid) -> Result<Vec<(Uuid, Vec<u8>)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT cs.chunk_id, s.subject_hash
        FROM subjects s JOIN chunk_subjects cs USING (subject_id)
        WHERE s.tenant_id = $1 AND s.state = 'erased' AND NOT s.legal_hold AND cs.collection_id = $2
          AND NOT EXISTS (SELECT 1 FROM erasure_jobs j WHERE j.subject_id = s.subject_id
                          AND j.status IN ('queued', 'in_progress'))
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .fetch_all(ex)
    .await?)
}
