//! A job's plan: per-collection counts (before, after, residual, withheld,
//! physical status) and the lineage point ids captured at planning.

use std::collections::HashMap;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::jobs::HELD;
use super::lease::Lease;

/// Per-collection counts of a job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CountRow {
    pub collection_id: Uuid,
    pub collection_name: String,
    pub backend: String,
    pub before_by_tag: i64,
    pub before_by_ids: i64,
    pub before_total: i64,
    pub after_by_tag: Option<i64>,
    pub after_by_ids: Option<i64>,
    pub after_total: Option<i64>,
    pub residual_found: i64,
    pub residual_deleted: i64,
    pub residual_redacted: i64,
    /// Candidates a redaction wrote back, redacted in the end or not.
    pub residual_rewritten: i64,
    pub physical_status: String,
    pub physical_detail: String,
    /// The residual stage is done with this collection (its counts are final).
    pub residual_applied: bool,
    /// Points of the subject left in place (in `after_total`) because they
    /// are shared with a subject on legal hold.
    pub withheld: i64,
    /// Residual candidates not acted on because of a legal hold.
    pub residual_withheld: i64,
    /// Points counted before that another erasure (of a subject sharing
    /// them) deleted and is credited with: not in `deleted`.
    pub deleted_elsewhere: i64,
}

/// A collection of a job's plan: where it lives, its counts so far and,
/// when asked for, the lineage point ids captured by the plan.
#[derive(Debug, Clone)]
pub struct Planned {
    pub spec: crate::domain::CollectionSpec,
    pub counts: CountRow,
    pub points: Vec<Uuid>,
}

#[derive(sqlx::FromRow)]
struct PlannedRow {
    #[sqlx(flatten)]
    collection: super::collections::CollectionRow,
    #[sqlx(flatten)]
    counts: CountRow,
    plan_points: Vec<Uuid>,
}

/// The job's planned collections with their counts (and point ids when
/// `with_points`), in one query: every stage after the plan starts here.
pub async fn planned(ex: impl PgExecutor<'_>, job_id: Uuid, with_points: bool) -> Result<Vec<Planned>> {
    Ok(planned_many(ex, &[job_id], with_points).await?.remove(&job_id).unwrap_or_default())
}

#[derive(sqlx::FromRow)]
struct PlannedOfJob {
    job_id: Uuid,
    #[sqlx(flatten)]
    planned: PlannedRow,
}

/// [`planned`] for several jobs in one query, by job (a job without a plan
/// is absent).
pub async fn planned_many(ex: impl PgExecutor<'_>, job_ids: &[Uuid], with_points: bool) -> Result<HashMap<Uuid, Vec<Planned>>> {
    let rows: Vec<PlannedOfJob> = sqlx::query_as(
        r#"
        SELECT e.job_id, k.collection_id, k.tenant_id, k.name, k.backend, k.backend_name, k.dimension, k.distance,
               k.embedding_model, k.store_text, k.retention_days, k.screening, k.created_at, k.mapping,
               e.collection_name, e.before_by_tag, e.before_by_ids, e.before_total, e.after_by_tag,
               e.after_by_ids, e.after_total, e.residual_found, e.residual_deleted, e.residual_redacted, e.residual_rewritten,
               e.physical_status, e.physical_detail, e.residual_applied, e.withheld, e.residual_withheld,
               e.deleted_elsewhere, CASE WHEN $2 THEN e.plan_points ELSE '{}' END AS plan_points
        FROM erasure_counts e JOIN collections k USING (collection_id)
        WHERE e.job_id = ANY($1)
        ORDER BY e.job_id, e.collection_name
        "#,
    )
    .bind(job_ids)
    .bind(with_points)
    .fetch_all(ex)
    .await?;
    let mut planned: HashMap<Uuid, Vec<Planned>> = HashMap::with_capacity(job_ids.len());
    for PlannedOfJob { job_id, planned: r } in rows {
        let p = Planned { spec: r.collection.into_spec()?, counts: r.counts, points: r.plan_points };
        planned.entry(job_id).or_default().push(p);
    }
    Ok(planned)
}

/// The database's clock now (a plan's `counted_from`).
pub async fn database_now(ex: impl PgExecutor<'_>) -> Result<chrono::DateTime<chrono::Utc>> {
    Ok(sqlx::query_scalar("SELECT now()").fetch_one(ex).await?)
}

/// One collection's plan of one job, for [`record_plans`].
#[derive(Debug, Clone, Copy)]
pub struct PlanRow<'a> {
    pub job_id: Uuid,
    pub collection_id: Uuid,
    pub collection_name: &'a str,
    pub backend: &'a str,
    pub before: [i64; 3],
    pub point_ids: &'a [Uuid],
    /// Of `point_ids`, those another job may count too (in chunks shared
    /// with other subjects, or, between a subject's erasure and a retention
    /// job, of sources old enough for a sweep) that were in the backend when
    /// the counts were taken (see [`credit_points`]).
    pub contested: &'a [Uuid],
}

/// Records the plans of several collections and jobs in one statement:
/// counts before and the lineage ids (in id order), one row each; running a
/// plan stage again replaces them (idempotent). The point ids travel as one
/// flat array, each row taking its slice.
///
/// `counted_from` is the database's time before the plan read anything
/// ([`database_now`]): a credit given after it is another job's deletion of
/// what this plan may have counted (see [`credit_points`]).
pub async fn record_plans(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rows: &[PlanRow<'_>],
    counted_from: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&PlanRow<'_>) -> i64| -> Vec<i64> { rows.iter().map(f).collect() };
    let (mut starts, mut lens, mut flat) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::new());
    let (mut c_starts, mut c_lens, mut c_flat) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::new());
    for r in rows {
        starts.push(i32::try_from(flat.len()).unwrap_or(i32::MAX));
        lens.push(i32::try_from(r.point_ids.len()).unwrap_or(i32::MAX));
        flat.extend_from_slice(r.point_ids);
        c_starts.push(i32::try_from(c_flat.len()).unwrap_or(i32::MAX));
        c_lens.push(i32::try_from(r.contested.len()).unwrap_or(i32::MAX));
        c_flat.extend_from_slice(r.contested);
    }
    sqlx::query(
        r#"
        INSERT INTO erasure_counts (job_id, collection_id, collection_name, backend,
                                    before_by_tag, before_by_ids, before_total, plan_points, contested_points, planned_at)
        SELECT r.job_id, r.collection_id, r.name, r.backend, r.by_tag, r.by_ids, r.total,
               COALESCE(($8::uuid[])[r.start + 1 : r.start + r.len], '{}'),
               COALESCE(($11::uuid[])[r.c_start + 1 : r.c_start + r.c_len], '{}'), LEAST($14::timestamptz, now())
        FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $9::int[], $10::int[],
                    $12::int[], $13::int[])
             AS r(job_id, collection_id, name, backend, by_tag, by_ids, total, start, len, c_start, c_len)
        ON CONFLICT (job_id, collection_id) DO UPDATE
        SET before_by_tag = EXCLUDED.before_by_tag, before_by_ids = EXCLUDED.before_by_ids,
            before_total = EXCLUDED.before_total, plan_points = EXCLUDED.plan_points,
            contested_points = EXCLUDED.contested_points, planned_at = EXCLUDED.planned_at
        "#,
    )
    .bind(rows.iter().map(|r| r.job_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.collection_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.collection_name).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.backend).collect::<Vec<_>>())
    .bind(column(|r| r.before[0]))
    .bind(column(|r| r.before[1]))
    .bind(column(|r| r.before[2]))
    .bind(&flat)
    .bind(&starts)
    .bind(&lens)
    .bind(&c_flat)
    .bind(&c_starts)
    .bind(&c_lens)
    .bind(counted_from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A collection's contested points of a job (see [`PlanRow::contested`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Contested {
    pub job_id: Uuid,
    pub collection_id: Uuid,
    pub tenant_id: Uuid,
    pub points: Vec<Uuid>,
    pub planned_at: chrono::DateTime<chrono::Utc>,
}

/// The contested points of these jobs' plans, where there are any.
pub async fn contested_many(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<Vec<Contested>> {
    Ok(sqlx::query_as(
        "SELECT e.job_id, e.collection_id, k.tenant_id, e.contested_points AS points, e.planned_at \
         FROM erasure_counts e JOIN collections k USING (collection_id) \
         WHERE e.job_id = ANY($1) AND cardinality(e.contested_points) > 0 ORDER BY e.job_id, e.collection_id",
    )
    .bind(job_ids)
    .fetch_all(ex)
    .await?)
}

/// Credits the job with the deletion of `gone` (contested points it counted
/// that are no longer in the backend) where no other job has been credited
/// with them since `c.planned_at`: a job credited before this one counted
/// them deleted them before, so the points this one counted are new ones
/// under the same ids. Records and returns how many were deleted by another
/// erasure (counted here, credited there). In the log stage's transaction:
/// a job logged at the same time waits for this one's credits to commit.
pub async fn credit_points(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, c: &Contested, gone: &[Uuid]) -> Result<i64> {
    let mut gone = gone.to_vec();
    gone.sort_unstable();
    gone.dedup();
    let credited = credit_residual_points(tx, c.job_id, c.tenant_id, c.collection_id, c.planned_at, &gone).await?;
    let elsewhere = i64::try_from(gone.len().saturating_sub(credited.len())).unwrap_or(i64::MAX);
    sqlx::query("UPDATE erasure_counts SET deleted_elsewhere = $3, contested_points = '{}' WHERE job_id = $1 AND collection_id = $2")
        .bind(c.job_id)
        .bind(c.collection_id)
        .bind(elsewhere)
        .execute(&mut **tx)
        .await?;
    Ok(elsewhere)
}

/// Credits the job with the residual deletion of `gone` (targets it stored
/// at `stored_at`, no longer in the backend) where no other job has been
/// credited with them since: that job deleted the point this one saw (this
/// one's attempt that stored them failed before its delete, and was retried
/// after). Returns the points credited to this job. In the transaction
/// holding the chunks' locks, which commits with the job's counts. Also the
/// statement of [`credit_points`], with the plan's time as `stored_at`.
pub async fn credit_residual_points(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    job_id: Uuid,
    tenant_id: Uuid,
    collection_id: Uuid,
    stored_at: chrono::DateTime<chrono::Utc>,
    gone: &[Uuid],
) -> Result<Vec<Uuid>> {
    let mut gone = gone.to_vec();
    gone.sort_unstable();
    gone.dedup();
    Ok(sqlx::query_scalar(
        r#"
        INSERT INTO erasure_point_credits (collection_id, point_id, tenant_id, job_id, credited_at)
        SELECT $1, p, $3, $4, clock_timestamp() FROM UNNEST($2::uuid[]) AS p
        ON CONFLICT (collection_id, point_id) DO UPDATE SET job_id = EXCLUDED.job_id, credited_at = EXCLUDED.credited_at
        WHERE erasure_point_credits.credited_at < $5 OR erasure_point_credits.job_id = EXCLUDED.job_id
        RETURNING point_id
        "#,
    )
    .bind(collection_id)
    .bind(&gone)
    .bind(tenant_id)
    .bind(job_id)
    .bind(stored_at)
    .fetch_all(&mut **tx)
    .await?)
}

/// Forgets the credits no job can ask for any more: older than the oldest
/// plan still holding contested points and the oldest residual targets of a
/// job still running, less an hour (a plan being written now has its
/// transaction's start as `planned_at`). Point ids of erased people's
/// chunks are not kept longer than their erasures need them.
pub async fn prune_credits(ex: impl PgExecutor<'_>) -> Result<u64> {
    Ok(sqlx::query(
        r#"
        DELETE FROM erasure_point_credits
        WHERE credited_at < LEAST(
            now(),
            (SELECT min(planned_at) FROM erasure_counts WHERE cardinality(contested_points) > 0),
            (SELECT min(e.residual_targets_at) FROM erasure_counts e JOIN erasure_jobs j USING (job_id)
             WHERE e.residual_targets_at IS NOT NULL AND j.status IN ('queued', 'in_progress'))
        ) - interval '1 hour'
        "#,
    )
    .execute(ex)
    .await?
    .rows_affected())
}

/// Every point the plans of several jobs hold (the subjects' own), in one
/// query, by job id (a job without plan points is absent).
pub async fn all_plan_points_many(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    let rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT job_id, unnest(plan_points) FROM erasure_counts WHERE job_id = ANY($1)")
            .bind(job_ids)
            .fetch_all(ex)
            .await?;
    let mut by_job: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (job_id, point) in rows {
        by_job.entry(job_id).or_default().push(point);
    }
    Ok(by_job)
}

/// Records, for each of the jobs, the oldest transaction still running now
/// (`verified_before`) in every collection of its plan, or in `collection`
/// only, in one statement. The verify stage calls it just before it counts
/// the backend: a chunk row written by an older transaction had committed
/// before the count, and on pgvector its vector with it (the write's
/// transaction holds both), so the count found that vector gone; any later
/// write of the point, or of the chunk, is a newer transaction, so
/// `lineage::forget_subjects_chunks` holds back exactly the chunks whose
/// vectors may be back. On Qdrant a write's vector follows its lineage's
/// commit, so a write racing the erasure there can still end without
/// lineage (README: one writer of a point at a time). A job whose lease is
/// lost is left as it was (its next write, fenced too, reports the loss).
pub async fn mark_verified_before(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease)], collection: Option<Uuid>) -> Result<()> {
    let (ids, owners, epochs) = super::lease::lease_columns(jobs);
    sqlx::query(
        r#"
        UPDATE erasure_counts e SET verified_before = pg_snapshot_xmin(pg_current_snapshot())::text::bigint
        FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS l(job_id, owner, epoch), erasure_jobs h
        WHERE e.job_id = l.job_id AND h.job_id = l.job_id AND ($4::uuid IS NULL OR e.collection_id = $4)
          AND h.lease_owner = l.owner AND h.lease_epoch = l.epoch AND h.status = 'in_progress'
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .bind(collection)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records the counts after deletion, and how many of the points left are
/// withheld under legal hold; false when `lease` no longer holds the job.
pub async fn set_after(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    lease: Lease,
    collection_id: Uuid,
    after: [i64; 3],
    withheld: i64,
) -> Result<bool> {
    let row = After { job_id, lease, collection_id, after, withheld };
    Ok(!set_after_many(ex, &[row]).await?.is_empty())
}

/// A collection's counts after deletion, for [`set_after_many`].
#[derive(Debug, Clone, Copy)]
pub struct After {
    pub job_id: Uuid,
    pub lease: Lease,
    pub collection_id: Uuid,
    pub after: [i64; 3],
    pub withheld: i64,
}

/// [`set_after`] of several collections and jobs in one statement: the
/// jobs (each once) whose lease still holds them and whose rows were written.
pub async fn set_after_many(ex: impl PgExecutor<'_>, rows: &[After]) -> Result<Vec<Uuid>> {
    let column = |f: fn(&After) -> i64| -> Vec<i64> { rows.iter().map(f).collect() };
    let job_ids: Vec<Uuid> = rows.iter().map(|r| r.job_id).collect();
    let owners: Vec<Uuid> = rows.iter().map(|r| r.lease.owner).collect();
    let collections: Vec<Uuid> = rows.iter().map(|r| r.collection_id).collect();
    Ok(sqlx::query_scalar(
        r#"
        WITH written AS (
            UPDATE erasure_counts e
            SET after_by_tag = a.by_tag, after_by_ids = a.by_ids, after_total = a.total, withheld = a.withheld
            FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
                 AS a(job_id, owner, epoch, collection_id, by_tag, by_ids, total, withheld),
                 erasure_jobs h
            WHERE e.job_id = a.job_id AND e.collection_id = a.collection_id
              AND h.job_id = a.job_id AND h.lease_owner = a.owner AND h.lease_epoch = a.epoch AND h.status = 'in_progress'
            RETURNING e.job_id
        )
        SELECT DISTINCT job_id FROM written
        "#,
    )
    .bind(&job_ids)
    .bind(&owners)
    .bind(column(|r| r.lease.epoch))
    .bind(&collections)
    .bind(column(|r| r.after[0]))
    .bind(column(|r| r.after[1]))
    .bind(column(|r| r.after[2]))
    .bind(column(|r| r.withheld))
    .fetch_all(ex)
    .await?)
}

/// Records that the delete stage of each job is about to change a backend
/// (once), in one statement: the jobs whose lease still holds them.
pub async fn set_deleting_started_many(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease)]) -> Result<Vec<Uuid>> {
    super::lease::update_held_jobs(ex, jobs, "deleting_started_at = COALESCE(j.deleting_started_at, clock_timestamp())").await
}

/// [`set_deleting_started_many`], committed durably (`synchronous_commit`
/// on, which also flushes the stage moves committed before it) when
/// `durable`: the deletes that follow are in a store outside PostgreSQL's
/// WAL (Qdrant), which a crash of the server would not roll back with them.
/// Lost, the job would resume at its plan and count zero points before.
pub async fn mark_deleting_started(pool: &sqlx::PgPool, jobs: &[(Uuid, Lease)], durable: bool) -> Result<Vec<Uuid>> {
    if !durable {
        return set_deleting_started_many(pool, jobs).await;
    }
    let mut tx = pool.begin().await?;
    super::jobs::require_durable_commit(&mut tx).await?;
    let held = set_deleting_started_many(&mut *tx, jobs).await?;
    tx.commit().await?;
    Ok(held)
}

/// Whether the job's delete stage has changed a backend, as the table says
/// now (a job row read at the claim may predate it).
pub async fn deleting_started(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT deleting_started_at IS NOT NULL FROM erasure_jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_optional(ex)
        .await?
        .unwrap_or(false))
}

/// Records a collection's physical status; false when `lease` no longer holds the job.
pub async fn set_physical(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    lease: Lease,
    collection_id: Uuid,
    status: &str,
    detail: &str,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE erasure_counts SET physical_status = $5, physical_detail = $6 \
         WHERE job_id = $1 AND collection_id = $4 AND {HELD}"
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(collection_id)
    .bind(status)
    .bind(detail)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn counts(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<Vec<CountRow>> {
    Ok(counts_many(ex, &[job_id]).await?.remove(&job_id).unwrap_or_default())
}

#[derive(sqlx::FromRow)]
struct CountsOfJob {
    job_id: Uuid,
    #[sqlx(flatten)]
    counts: CountRow,
}

/// [`counts`] of several jobs in one query, by job.
pub async fn counts_many(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<CountRow>>> {
    let rows: Vec<CountsOfJob> = sqlx::query_as(
        r#"
        SELECT job_id, collection_id, collection_name, backend, before_by_tag, before_by_ids, before_total,
               after_by_tag, after_by_ids, after_total, residual_found, residual_deleted,
               residual_redacted, residual_rewritten, physical_status, physical_detail, residual_applied, withheld, residual_withheld,
               deleted_elsewhere
        FROM erasure_counts WHERE job_id = ANY($1) ORDER BY job_id, collection_name
        "#,
    )
    .bind(job_ids)
    .fetch_all(ex)
    .await?;
    let mut counts: HashMap<Uuid, Vec<CountRow>> = HashMap::with_capacity(job_ids.len());
    for r in rows {
        counts.entry(r.job_id).or_default().push(r.counts);
    }
    Ok(counts)
}

/// Forgets the plan's point ids (and the contested ones among them) once
/// the job is logged, failed or refused (they are lineage too).
pub async fn delete_plan_points(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE erasure_counts SET plan_points = '{}', contested_points = '{}', residual_targets_at = NULL WHERE job_id = ANY($1)")
        .bind(job_ids)
        .execute(ex)
        .await?;
    Ok(())
}
