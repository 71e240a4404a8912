//! Leases on queued jobs, the same for erase, re-index, adoption and reconcile jobs: a worker
//! claims the oldest runnable job with `FOR UPDATE SKIP LOCKED`, and every
//! claim bumps the job's lease epoch. Every write of a running job names
//! the [`Lease`] it runs under and changes nothing once another claim has
//! taken the job, so a worker that stalled past its lease cannot advance,
//! release, finish or log a job another worker now runs.

use sqlx::PgExecutor;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::Result;

/// Who runs a job: the worker and the epoch of its claim. The epoch tells
/// two claims by the same worker id apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: Uuid,
    pub epoch: i64,
}

/// A table of leased jobs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Queue {
    Erasure,
    Reindex,
    Attach,
    Reconcile,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Self::Erasure => "erasure_jobs",
            Self::Reindex => "reindex_jobs",
            Self::Attach => "attach_jobs",
            Self::Reconcile => "reconcile_runs",
        }
    }
}

/// What a claim writes: `$1` the owner, `$2` the lease in seconds.
/// Jobs and their leases as the three array parameters of a fenced batch
/// statement (`UNNEST($ids, $owners, $epochs)`): `(ids, owners, epochs)`.
pub(super) fn lease_columns(jobs: &[(Uuid, Lease)]) -> (Vec<Uuid>, Vec<Uuid>, Vec<i64>) {
    let ids = jobs.iter().map(|(id, _)| *id).collect();
    let owners = jobs.iter().map(|(_, l)| l.owner).collect();
    let epochs = jobs.iter().map(|(_, l)| l.epoch).collect();
    (ids, owners, epochs)
}

/// Sets `assignment` (columns of `erasure_jobs j`) on the jobs their leases
/// still hold, in one statement; returns those jobs.
pub(super) async fn update_held_jobs(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease)], assignment: &str) -> Result<Vec<Uuid>> {
    let (ids, owners, epochs) = lease_columns(jobs);
    Ok(sqlx::query_scalar(&format!(
        "UPDATE erasure_jobs j SET {assignment} \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS l(job_id, owner, epoch) \
         WHERE j.job_id = l.job_id AND j.lease_owner = l.owner AND j.lease_epoch = l.epoch AND j.status = 'in_progress' \
         RETURNING j.job_id"
    ))
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .fetch_all(ex)
    .await?)
}

const CLAIMED: &str = "lease_owner = $1, lease_epoch = lease_epoch + 1, lease_expires_at = now() + make_interval(secs => $2), \
     status = 'in_progress', started_at = COALESCE(started_at, now()), attempts = attempts + 1";

/// A job a claim may take: queued or in progress, its lease free or expired.
const RUNNABLE: &str = "status IN ('queued', 'in_progress') AND (lease_expires_at IS NULL OR lease_expires_at < now())";

/// Claims the oldest runnable job whose lease is free or expired, as
/// `owner`, under a new epoch; returns `columns` of it.
pub(super) async fn claim<R>(ex: impl PgExecutor<'_>, queue: Queue, columns: &str, owner: Uuid, lease_secs: f64) -> Result<Option<R>>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let table = queue.table();
    Ok(sqlx::query_as(&format!(
        r#"
        UPDATE {table} SET {CLAIMED}
        WHERE job_id = (
            SELECT job_id FROM {table}
            WHERE {RUNNABLE}
            ORDER BY received_at
            FOR UPDATE SKIP LOCKED
            LIMIT 1
        )
        RETURNING {columns}
        "#
    ))
    .bind(owner)
    .bind(lease_secs)
    .fetch_optional(ex)
    .await?)
}

/// Claims up to `max` of the oldest runnable jobs, each under a new epoch,
/// but no more than the runnable jobs divided by `workers` (at least one):
/// a short queue spreads over every worker instead of filling the first
/// worker's batch. Returns `columns` of the jobs claimed in no particular
/// order (RETURNING keeps none): the caller sorts them.
pub(super) async fn claim_many<R>(
    ex: impl PgExecutor<'_>,
    queue: Queue,
    columns: &str,
    (owner, lease_secs): (Uuid, f64),
    (max, workers): (i64, i64),
) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let table = queue.table();
    Ok(sqlx::query_as(&format!(
        r#"
        UPDATE {table} SET {CLAIMED}
        WHERE job_id IN (
            SELECT job_id FROM {table}
            WHERE {RUNNABLE}
            ORDER BY received_at
            FOR UPDATE SKIP LOCKED
            LIMIT LEAST($3, GREATEST(1, (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {RUNNABLE} LIMIT $3 * $4) r) / $4))
        )
        RETURNING {columns}
        "#
    ))
    .bind(owner)
    .bind(lease_secs)
    .bind(max)
    .bind(workers)
    .fetch_all(ex)
    .await?)
}

/// Extends the leases of `owner`'s jobs (id, epoch) in one statement;
/// returns the jobs whose lease still holds.
///
/// Never waits for a job's row: a row another transaction has locked for
/// update (`SKIP LOCKED`) keeps its lease this time and is still reported
/// held when the lease is `owner`'s. That transaction is usually the job's
/// own stage, on the same worker, open while the worker renews: a renewal
/// that waited for it would wait forever, since the worker does not go on
/// with the stage until the renewal returns (it did: two crash tests hung
/// on a loaded machine, each worker's renewal blocked behind its own
/// residual stage's transaction). The next renewal, a third of the lease
/// later, extends it.
pub(super) async fn renew_many(ex: impl PgExecutor<'_>, queue: Queue, owner: Uuid, jobs: &[(Uuid, i64)], lease_secs: f64) -> Result<Vec<Uuid>> {
    let (ids, epochs): (Vec<Uuid>, Vec<i64>) = jobs.iter().copied().unzip();
    let table = queue.table();
    Ok(sqlx::query_scalar(&format!(
        r#"
        WITH held AS (
            SELECT t.job_id
            FROM {table} t
            JOIN unnest($1::uuid[], $2::bigint[]) AS l(job_id, epoch) ON t.job_id = l.job_id AND t.lease_epoch = l.epoch
            WHERE t.lease_owner = $3 AND t.status = 'in_progress'
        ),
        free AS (
            SELECT job_id FROM {table} WHERE job_id IN (SELECT job_id FROM held) FOR NO KEY UPDATE SKIP LOCKED
        ),
        renewed AS (
            UPDATE {table} t SET lease_expires_at = now() + make_interval(secs => $4)
            FROM unnest($1::uuid[], $2::bigint[]) AS l(job_id, epoch)
            WHERE t.job_id IN (SELECT job_id FROM free)
              AND t.job_id = l.job_id AND t.lease_owner = $3 AND t.lease_epoch = l.epoch AND t.status = 'in_progress'
        )
        SELECT job_id FROM held
        "#
    ))
    .bind(&ids)
    .bind(&epochs)
    .bind(owner)
    .bind(lease_secs)
    .fetch_all(ex)
    .await?)
}

/// Extends a lease; false when it is no longer held. As [`renew_many`]:
/// never waits for the job's row.
pub(super) async fn renew(ex: impl PgExecutor<'_>, queue: Queue, job_id: Uuid, lease: Lease, lease_secs: f64) -> Result<bool> {
    Ok(!renew_many(ex, queue, lease.owner, &[(job_id, lease.epoch)], lease_secs).await?.is_empty())
}

/// Gives the job back after a transient failure, claimable again after
/// `backoff_secs`; false (and nothing written) when the lease is no longer held.
pub(super) async fn release(
    ex: impl PgExecutor<'_>,
    queue: Queue,
    job_id: Uuid,
    lease: Lease,
    error: &str,
    backoff_secs: f64,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        r#"
        UPDATE {} SET error = $4, lease_owner = NULL, lease_expires_at = now() + make_interval(secs => $5)
        WHERE job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'
        "#,
        queue.table()
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(error)
    .bind(backoff_secs)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Frees the lease at once without a retry delay or an error: the job is
/// claimable again (a stepped job between two steps); false when the lease
/// is no longer held.
pub(super) async fn give_back(ex: impl PgExecutor<'_>, queue: Queue, job_id: Uuid, lease: Lease) -> Result<bool> {
    let done = sqlx::query(&format!(
        r#"
        UPDATE {} SET lease_owner = NULL, lease_expires_at = now()
        WHERE job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'
        "#,
        queue.table()
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends the leases `owners` hold on running jobs (a stopping service's
/// workers): the next claim takes them at once. A lease that has run out
/// already is left as it is (another claim may hold the job). Returns how many.
pub(super) async fn release_leases_of(ex: impl PgExecutor<'_>, queue: Queue, owners: &[Uuid]) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE {} SET lease_expires_at = now() WHERE lease_owner = ANY($1) AND status = 'in_progress' AND lease_expires_at > now()",
        queue.table()
    ))
    .bind(owners)
    .execute(ex)
    .await?
    .rows_affected())
}

/// Claims one given job (not the oldest) if it is runnable and its lease is
/// free or expired, as `owner`, under a new epoch; returns `columns` of it.
pub(super) async fn claim_one<R>(
    ex: impl PgExecutor<'_>,
    queue: Queue,
    columns: &str,
    job_id: Uuid,
    owner: Uuid,
    lease_secs: f64,
) -> Result<Option<R>>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let table = queue.table();
    Ok(sqlx::query_as(&format!(
        r#"
        UPDATE {table} SET {CLAIMED}
        WHERE job_id = $3 AND {RUNNABLE}
        RETURNING {columns}
        "#
    ))
    .bind(owner)
    .bind(lease_secs)
    .bind(job_id)
    .fetch_optional(ex)
    .await?)
}
