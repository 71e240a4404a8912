//! Erase jobs: rows, claims with leases, stage transitions, events and
//! residual lists. A job's plan and counts (`plans`) and what it holds of the
//! person while it runs (`probes`) have files of their own, re-exported here.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::lease::{self, Queue};
pub use super::lease::Lease;
pub use super::plans::*;
pub use super::probes::*;

/// A job as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    /// The subject a `subject` job erases; None for a `retention` job.
    pub subject_id: Option<Uuid>,
    pub subject_tag: Option<String>,
    pub requested_by: String,
    pub reason: String,
    pub idempotency_key: Option<String>,
    pub residual_policy: String,
    pub guarantee_physical: bool,
    pub status: String,
    pub stage: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deadline: DateTime<Utc>,
    pub residuals: serde_json::Value,
    /// SHA-256 of the request's canonical fields, which its idempotency key
    /// is bound to; None for jobs from before issue 11.
    pub request_fingerprint: Option<Vec<u8>>,
    /// The epoch of the job's latest claim; see [`Lease`].
    pub lease_epoch: i64,
    /// When the residual stage stored its candidates and planned actions;
    /// from then on it only applies them (see `store::progress`).
    pub residual_searched_at: Option<DateTime<Utc>>,
    /// [`crate::domain::JobNote`]s as a JSON array.
    pub notes: serde_json::Value,
    /// When the delete stage first changed a backend (see `mark_deleting_started`).
    pub deleting_started_at: Option<DateTime<Utc>>,
    /// Physical erasure in Lethe's own tables: `confirmed`, `pending` or `not_requested`.
    pub lineage_physical_status: String,
    pub lineage_physical_detail: String,
    /// `subject` (an Erase request) or `retention` (the sources in
    /// `retention_targets` of `collection_id`, from a retention sweep).
    pub kind: String,
    /// The collection a `retention` job erases sources of.
    pub collection_id: Option<Uuid>,
}

impl JobRow {
    /// The job's target as the stages branch on it.
    pub fn target(&self) -> JobTarget {
        match (self.kind.as_str(), self.subject_id, self.collection_id) {
            ("retention", _, Some(collection_id)) => JobTarget::Retention { collection_id },
            (_, Some(subject_id), _) => JobTarget::Subject(subject_id),
            // The table's check constraint admits no other row.
            _ => JobTarget::Subject(Uuid::nil()),
        }
    }

    pub fn is_retention(&self) -> bool {
        matches!(self.target(), JobTarget::Retention { .. })
    }
}

/// What an erase job erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTarget {
    /// Everything of a subject, in every collection.
    Subject(Uuid),
    /// The sources listed in `retention_targets`, in one collection.
    Retention { collection_id: Uuid },
}

pub(super) const JOB_COLUMNS: &str = "job_id, tenant_id, subject_id, subject_tag, requested_by, reason, idempotency_key, residual_policy, \
     guarantee_physical, status, stage, attempts, error, received_at, started_at, completed_at, deadline, residuals, \
     request_fingerprint, lease_epoch, residual_searched_at, notes, deleting_started_at, lineage_physical_status, \
     lineage_physical_detail, kind, collection_id";

/// The condition under which a write of a running job's rows is applied:
/// `$1` is the job, `$2` and `$3` the owner and epoch of the writer's lease.
/// A statement that began before another claim committed may still apply;
/// the new holder re-runs the stage after its claim, so its writes come later.
pub(super) const HELD: &str = "EXISTS (SELECT 1 FROM erasure_jobs h WHERE h.job_id = $1 AND h.lease_owner = $2 \
     AND h.lease_epoch = $3 AND h.status = 'in_progress')";

/// What a new job needs.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub tenant_id: Uuid,
    pub subject_id: Uuid,
    pub subject_tag: &'a str,
    pub requested_by: &'a str,
    pub reason: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub request_fingerprint: &'a [u8],
    pub residual_policy: &'a str,
    pub guarantee_physical: bool,
    pub status: &'a str,
    pub stage: &'a str,
    pub error: Option<&'a str>,
    pub deadline_days: i32,
}

/// The partial unique index that admits one queued or in-progress job per subject.
const ONE_ACTIVE_PER_SUBJECT: &str = "erasure_jobs_one_active_per_subject";

/// What inserting a job did.
#[derive(Debug)]
pub enum Inserted {
    Created(JobRow),
    /// The idempotency key already names this job; nothing was inserted.
    KeyTaken(JobRow),
    /// The subject has a queued or in-progress job. The statement failed, so
    /// the transaction must be rolled back.
    SubjectBusy,
}

/// Inserts a job unless its idempotency key is taken or its subject already
/// has an active job (the database enforces both, so concurrent inserts
/// cannot both succeed).
pub async fn insert_job(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, job: &NewJob<'_>) -> Result<Inserted> {
    let inserted: std::result::Result<Option<JobRow>, sqlx::Error> = sqlx::query_as(&format!(
        r#"
        INSERT INTO erasure_jobs (job_id, tenant_id, subject_id, requested_by, reason, idempotency_key,
                                  residual_policy, guarantee_physical, status, stage, error, deadline,
                                  completed_at, subject_tag, request_fingerprint)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + make_interval(days => $12),
                CASE WHEN $9 = 'refused' THEN now() END, CASE WHEN $9 = 'refused' THEN NULL ELSE $13 END, $14)
        ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
        RETURNING {JOB_COLUMNS}
        "#
    ))
    .bind(Uuid::new_v4())
    .bind(job.tenant_id)
    .bind(job.subject_id)
    .bind(job.requested_by)
    .bind(job.reason)
    .bind(job.idempotency_key)
    .bind(job.residual_policy)
    .bind(job.guarantee_physical)
    .bind(job.status)
    .bind(job.stage)
    .bind(job.error)
    .bind(job.deadline_days)
    .bind(job.subject_tag)
    .bind(job.request_fingerprint)
    .fetch_optional(&mut **tx)
    .await;
    match inserted {
        Ok(Some(row)) => return Ok(Inserted::Created(row)),
        Ok(None) => {}
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(ONE_ACTIVE_PER_SUBJECT) => return Ok(Inserted::SubjectBusy),
        Err(e) => return Err(e.into()),
    }
    let existing: JobRow = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM erasure_jobs WHERE tenant_id = $1 AND idempotency_key = $2"
    ))
    .bind(job.tenant_id)
    .bind(job.idempotency_key)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Inserted::KeyTaken(existing))
}

/// The job an idempotency key names, if any: kept as `key` (its keyed
/// hash), or as `legacy` (the key as given, as jobs made before kept it).
pub async fn job_by_key(ex: impl PgExecutor<'_>, tenant_id: Uuid, key: &str, legacy: &str) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM erasure_jobs WHERE tenant_id = $1 AND idempotency_key IN ($2, $3) \
         ORDER BY idempotency_key = $2 DESC LIMIT 1"
    ))
    .bind(tenant_id)
    .bind(key)
    .bind(legacy)
    .fetch_optional(ex)
    .await?)
}

pub async fn job(ex: impl PgExecutor<'_>, tenant_id: Uuid, job_id: Uuid) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM erasure_jobs WHERE tenant_id = $1 AND job_id = $2"))
        .bind(tenant_id)
        .bind(job_id)
        .fetch_optional(ex)
        .await?)
}

pub async fn list_jobs(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    overdue_only: bool,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>> {
    // Statements of their own rather than `$3 IS NULL OR status = $3` or
    // `$2 = false OR …`: a prepared statement's generic plan could not use
    // the (tenant, status) index, nor the unfinished jobs' partial index
    // (without it, the overdue listing read every finished job of the tenant).
    let by_status = if status.is_some() { "AND status = $2" } else { "AND $2::text IS NULL" };
    let overdue = if overdue_only { "AND deadline < now() AND status NOT IN ('completed', 'refused')" } else { "" };
    Ok(sqlx::query_as(&format!(
        r#"
        SELECT {JOB_COLUMNS} FROM erasure_jobs
        WHERE tenant_id = $1 {overdue} {by_status}
        ORDER BY received_at DESC
        LIMIT $3
        "#
    ))
    .bind(tenant_id)
    .bind(status)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Claims the oldest runnable job whose lease is free or expired, under a
/// new lease epoch (`lease_epoch` of the row returned).
pub async fn claim_job(ex: impl PgExecutor<'_>, owner: Uuid, lease_secs: f64) -> Result<Option<JobRow>> {
    lease::claim(ex, Queue::Erasure, JOB_COLUMNS, owner, lease_secs).await
}

/// Claims up to `max` runnable jobs at once, oldest first, each under a new
/// epoch; no more than the runnable jobs divided by `workers`, the workers
/// that share them (at least one).
pub async fn claim_jobs(ex: impl PgExecutor<'_>, owner: Uuid, lease_secs: f64, max: usize, workers: usize) -> Result<Vec<JobRow>> {
    // None (tests that drive the queue themselves, or every worker busy) claims as one.
    let limits = (i64::try_from(max.max(1)).unwrap_or(i64::MAX), i64::try_from(workers.max(1)).unwrap_or(i64::MAX));
    let mut claimed: Vec<JobRow> = lease::claim_many(ex, Queue::Erasure, JOB_COLUMNS, (owner, lease_secs), limits).await?;
    claimed.sort_by_key(|j| (j.received_at, j.job_id));
    Ok(claimed)
}

/// Extends the leases of `owner`'s jobs (id, epoch) in one statement;
/// returns the jobs it still holds.
pub async fn renew_leases(ex: impl PgExecutor<'_>, owner: Uuid, jobs: &[(Uuid, i64)], lease_secs: f64) -> Result<Vec<Uuid>> {
    lease::renew_many(ex, Queue::Erasure, owner, jobs, lease_secs).await
}

/// One job's move to its next stage, with the event of the stage just done.
#[derive(Debug, Clone)]
pub struct Advance<'a> {
    pub job_id: Uuid,
    pub lease: Lease,
    pub next_stage: &'a str,
    pub done_stage: &'a str,
    pub message: &'a str,
}

/// Moves jobs to their next stages in one statement: each moves on, its
/// lease renewed and the event of the stage it finished recorded, only if
/// its lease still holds it (nothing is written for one that it does not).
/// Returns the jobs that moved.
pub async fn advance_many(ex: impl PgExecutor<'_>, advances: &[Advance<'_>], lease_secs: f64) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = advances.iter().map(|a| a.job_id).collect();
    let owners: Vec<Uuid> = advances.iter().map(|a| a.lease.owner).collect();
    let epochs: Vec<i64> = advances.iter().map(|a| a.lease.epoch).collect();
    let next: Vec<&str> = advances.iter().map(|a| a.next_stage).collect();
    let done: Vec<&str> = advances.iter().map(|a| a.done_stage).collect();
    let messages: Vec<&str> = advances.iter().map(|a| a.message).collect();
    Ok(sqlx::query_scalar(
        r#"
        WITH advanced AS (
            UPDATE erasure_jobs j SET stage = l.next_stage, lease_expires_at = now() + make_interval(secs => $7)
            FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[])
                 AS l(job_id, owner, epoch, next_stage, done_stage, message)
            WHERE j.job_id = l.job_id AND j.lease_owner = l.owner AND j.lease_epoch = l.epoch AND j.status = 'in_progress'
            RETURNING j.job_id, l.done_stage, l.message
        )
        INSERT INTO erasure_events (job_id, stage, status, message, at)
        SELECT job_id, done_stage, 'in_progress', message, clock_timestamp() FROM advanced
        RETURNING job_id
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .bind(&next)
    .bind(&done)
    .bind(&messages)
    .bind(lease_secs)
    .fetch_all(ex)
    .await?)
}

/// A job [`complete_many`] ended, with what its log entry reports from its row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Completed {
    pub job_id: Uuid,
    pub notes: serde_json::Value,
    pub lineage_physical_status: String,
    pub lineage_physical_detail: String,
}

/// Ends jobs as completed, as [`finish`] does, in one statement: only those
/// their lease (id, lease) still holds. Their rows stay locked until the
/// transaction ends.
pub async fn complete_many(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease)]) -> Result<Vec<Completed>> {
    let (ids, owners, epochs) = super::lease::lease_columns(jobs);
    Ok(sqlx::query_as(
        r#"
        UPDATE erasure_jobs j SET status = 'completed', error = NULL, completed_at = now(), stage = 'done',
               lease_owner = NULL, lease_expires_at = NULL, subject_tag = NULL
        FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS l(job_id, owner, epoch)
        WHERE j.job_id = l.job_id AND j.lease_owner = l.owner AND j.lease_epoch = l.epoch AND j.status = 'in_progress'
        RETURNING j.job_id, j.notes, j.lineage_physical_status, j.lineage_physical_detail
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .fetch_all(ex)
    .await?)
}

/// Locks the job's row against claims (not against lease renewal) until
/// the transaction ends, if `lease` still holds it: the transaction's
/// writes then cannot race another worker's claim. False when it does not.
pub async fn hold(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, job_id: Uuid, lease: Lease) -> Result<bool> {
    Ok(!hold_many(tx, &[(job_id, lease)]).await?.is_empty())
}

/// [`hold`] of several jobs in one statement: those their lease still holds.
pub async fn hold_many(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, jobs: &[(Uuid, Lease)]) -> Result<Vec<Uuid>> {
    let (ids, owners, epochs) = super::lease::lease_columns(jobs);
    Ok(sqlx::query_scalar(
        r#"
        SELECT j.job_id FROM erasure_jobs j
        JOIN UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS l(job_id, owner, epoch)
          ON j.job_id = l.job_id AND j.lease_owner = l.owner AND j.lease_epoch = l.epoch
        WHERE j.status = 'in_progress'
        ORDER BY j.job_id
        FOR KEY SHARE OF j
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .fetch_all(&mut **tx)
    .await?)
}

/// Makes the transaction's commit wait for the WAL flush even on the erase
/// workers' pool, whose progress writes do not (`startup::worker_pool`): a
/// job's end, its log entry and certificate are promised to callers.
pub async fn require_durable_commit(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
    sqlx::query("SET LOCAL synchronous_commit = on").execute(&mut **tx).await?;
    Ok(())
}

/// Extends the job's lease; false when `lease` no longer holds it.
pub async fn renew_lease(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, lease_secs: f64) -> Result<bool> {
    lease::renew(ex, Queue::Erasure, job_id, lease, lease_secs).await
}

/// Ends the job (completed or failed), frees the lease and forgets the tag.
/// False, and nothing written, when `lease` no longer holds the job; when
/// true, the job's row stays locked until the transaction ends.
pub async fn finish(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, status: &str, error: Option<&str>) -> Result<bool> {
    let done = sqlx::query(
        r#"
        UPDATE erasure_jobs SET status = $4, error = $5, completed_at = now(),
               stage = CASE WHEN $4 = 'completed' THEN 'done' ELSE stage END,
               lease_owner = NULL, lease_expires_at = NULL, subject_tag = NULL
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

/// Ends the leases `owners` hold on running jobs (a stopping service's
/// workers): the next claim takes them at once. Returns how many.
pub async fn release_leases_of(ex: impl PgExecutor<'_>, owners: &[Uuid]) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE erasure_jobs SET lease_expires_at = now() WHERE lease_owner = ANY($1) AND status = 'in_progress' \
         AND lease_expires_at > now()",
    )
    .bind(owners)
    .execute(ex)
    .await?
    .rows_affected())
}

/// The job's reason as stored now: an erasure may have rewritten a retention
/// job's reason (a source kind naming its person) after a worker read the
/// job. Read after [`finish`] locked the row, it is the one the log keeps.
pub async fn reason(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT reason FROM erasure_jobs WHERE job_id = $1").bind(job_id).fetch_one(ex).await?)
}

/// Gives the job back after a transient failure: another attempt after
/// `backoff_secs`. False, and nothing written, when `lease` no longer holds it.
pub async fn release_for_retry(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, error: &str, backoff_secs: f64) -> Result<bool> {
    lease::release(ex, Queue::Erasure, job_id, lease, error, backoff_secs).await
}

/// Stores the residual candidates; false when `lease` no longer holds the job.
pub async fn set_residuals(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, residuals: &serde_json::Value) -> Result<bool> {
    let done = sqlx::query(
        // Chunks screened at ingest while the job ran stay listed, once: a
        // retry's candidates (read from the job) hold the earlier ones too.
        "UPDATE erasure_jobs SET residuals = COALESCE((SELECT jsonb_agg(c) FROM jsonb_array_elements($4) c WHERE c->>'action' IS DISTINCT FROM 'reported_at_ingest'), '[]'::jsonb) \
         || COALESCE((SELECT jsonb_agg(c) FROM jsonb_array_elements(erasure_jobs.residuals) c WHERE c->>'action' = 'reported_at_ingest'), '[]'::jsonb) \
         WHERE job_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'in_progress'",
    )
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(residuals)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes the matched texts (the person's identifiers as written) from the
/// job's residual evidence; form, identifier index and position stay. Run
/// when the job is logged: from then on no table holds them in clear.
/// The residual stage stores its candidates without them already, so only a
/// row that holds one is written (one of an earlier version's jobs): a
/// rewrite of every job's candidates was 4 ms of a batch's log stage.
pub async fn scrub_residuals(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        r#"
        UPDATE erasure_jobs SET residuals = COALESCE((
            SELECT jsonb_agg(CASE WHEN jsonb_typeof(c->'evidence') = 'array' THEN jsonb_set(c, '{evidence}', COALESCE((
                SELECT jsonb_agg(CASE WHEN e ? 'matched' THEN jsonb_set(e, '{matched}', '""') ELSE e END)
                FROM jsonb_array_elements(c->'evidence') e), '[]')) ELSE c END)
            FROM jsonb_array_elements(residuals) c), '[]')
        WHERE job_id = ANY($1) AND jsonb_typeof(residuals) = 'array'
          AND jsonb_path_exists(residuals, '$[*].evidence[*].matched ? (@.type() != "string" || @ != "")')
        "#,
    )
    .bind(job_ids)
    .execute(ex)
    .await?;
    Ok(())
}

/// A page of the tenant's ended erase jobs that list residual candidates,
/// newest first, received before `before` (received at, job): (job,
/// received at, candidates).
pub async fn residual_lists_page(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<(Uuid, DateTime<Utc>, serde_json::Value)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT job_id, received_at, residuals FROM erasure_jobs
        WHERE tenant_id = $1 AND status NOT IN ('queued', 'in_progress')
          AND jsonb_typeof(residuals) = 'array' AND residuals <> '[]'::jsonb
          AND (received_at, job_id) < (COALESCE($2, 'infinity'::timestamptz), COALESCE($3, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))
        ORDER BY received_at DESC, job_id DESC LIMIT $4
        "#,
    )
    .bind(tenant_id)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Replaces an ended job's candidates when they are still `old` (one a
/// screened write appended to meanwhile is left for the next time).
pub async fn replace_residuals(ex: impl PgExecutor<'_>, job_id: Uuid, old: &serde_json::Value, new: &serde_json::Value) -> Result<bool> {
    let done = sqlx::query("UPDATE erasure_jobs SET residuals = $3 WHERE job_id = $1 AND residuals = $2")
        .bind(job_id)
        .bind(old)
        .bind(new)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets the caller's id for the job's subject (the tag in the backends),
/// once its lineage is forgotten.
pub async fn clear_subject_tag(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<()> {
    clear_subject_tags(ex, &[job_id]).await
}

/// [`clear_subject_tag`] of several jobs in one statement.
pub async fn clear_subject_tags(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE erasure_jobs SET subject_tag = NULL WHERE job_id = ANY($1)").bind(job_ids).execute(ex).await?;
    Ok(())
}

/// Chunks screened at ingest listed on one job at most: a pipeline that
/// writes the same mentions every night would grow the job past what
/// `GetErasure` can send. The screening metric counts them all.
pub const MAX_SCREENED_LISTED: i64 = 1000;

/// Adds a residual found after the job ran (a chunk screened at ingest that
/// names the person), to the job's list: once per point, and not past
/// [`MAX_SCREENED_LISTED`].
pub async fn append_residual(ex: impl PgExecutor<'_>, job_id: Uuid, residual: &serde_json::Value) -> Result<()> {
    sqlx::query(
        r#"
        UPDATE erasure_jobs j SET residuals = j.residuals || jsonb_build_array($2::jsonb)
        FROM (SELECT count(*) FILTER (WHERE c->>'action' = 'reported_at_ingest') AS listed,
                     count(*) FILTER (WHERE c->>'action' = 'reported_at_ingest'
                                        AND c->>'collection_id' = $2::jsonb->>'collection_id'
                                        AND c->>'point_id' = $2::jsonb->>'point_id') AS same
              FROM erasure_jobs, jsonb_array_elements(residuals) c
              WHERE job_id = $1 AND jsonb_typeof(residuals) = 'array') r
        WHERE j.job_id = $1 AND r.same = 0 AND r.listed < $3
        "#,
    )
    .bind(job_id)
    .bind(residual)
    .bind(MAX_SCREENED_LISTED)
    .execute(ex)
    .await?;
    Ok(())
}

/// A stage event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub event_id: i64,
    pub job_id: Uuid,
    pub stage: String,
    pub status: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

pub async fn insert_event(ex: impl PgExecutor<'_>, job_id: Uuid, stage: &str, status: &str, message: &str) -> Result<()> {
    insert_events(ex, &[(job_id, message)], stage, status).await
}

/// [`insert_event`] of several jobs `(job, message)` at the same stage and status, in one statement.
pub async fn insert_events(ex: impl PgExecutor<'_>, events: &[(Uuid, &str)], stage: &str, status: &str) -> Result<()> {
    // The time of the event itself, not of its transaction's start: the log
    // stage's event is the last statement of a longer transaction.
    sqlx::query(
        "INSERT INTO erasure_events (job_id, stage, status, message, at) \
         SELECT e.job_id, $3, $4, e.message, clock_timestamp() FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS e(job_id, message, n) \
         ORDER BY e.n",
    )
    .bind(events.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, m)| *m).collect::<Vec<_>>())
    .bind(stage)
    .bind(status)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn events_after(ex: impl PgExecutor<'_>, job_id: Uuid, after: i64) -> Result<Vec<EventRow>> {
    Ok(sqlx::query_as(
        "SELECT event_id, job_id, stage, status, message, at FROM erasure_events \
         WHERE job_id = $1 AND event_id > $2 ORDER BY event_id",
    )
    .bind(job_id)
    .bind(after)
    .fetch_all(ex)
    .await?)
}

/// The subject's queued or in-progress job, if any (at most one exists).
pub async fn active_job_for_subject(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM erasure_jobs WHERE subject_id = $1 AND status IN ('queued', 'in_progress')"
    ))
    .bind(subject_id)
    .fetch_optional(ex)
    .await?)
}
