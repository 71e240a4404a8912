//! What a running erase job records beyond its stage: the residual stage's
//! candidates and per-collection progress, and the job's notes. Every write
//! is conditional on the job's lease (see `jobs::HELD`).

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;
use super::jobs::{HELD, Lease};
use crate::domain::JobNote;

/// Adds a note to the job, replacing one with the same code and stage (a
/// stage that runs again after a retry says it once); false when `lease`
/// no longer holds the job.
pub async fn set_note(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, note: &JobNote) -> Result<bool> {
    let note = serde_json::to_value(note).map_err(|e| super::StoreError::Unexpected(sqlx::Error::Decode(e.into())))?;
    let done = sqlx::query(&format!(
        r#"
        UPDATE erasure_jobs SET notes = COALESCE((
            SELECT jsonb_agg(n ORDER BY i) FROM jsonb_array_elements(notes) WITH ORDINALITY AS x(n, i)
            WHERE NOT (n->>'code' = $4::jsonb->>'code' AND n->>'stage' = $4::jsonb->>'stage')), '[]') || jsonb_build_array($4::jsonb)
        WHERE job_id = $1 AND {HELD}
        "#
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(note)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One job's residual search, for [`record_residual_searches`].
#[derive(Debug, Clone, Copy)]
pub struct ResidualSearch<'a> {
    pub job_id: Uuid,
    pub lease: Lease,
    /// The candidates, with the actions the stage will take.
    pub residuals: &'a serde_json::Value,
    /// Per collection: id, name, backend, candidates found, and whether
    /// nothing is to be done there (such a collection is marked applied at
    /// once, with no residual deleted, redacted or withheld).
    pub found: &'a [(Uuid, String, String, i64, bool)],
}

/// Stores several jobs' residual searches, in one statement of the caller's
/// transaction, and marks each search done: the jobs (each once) whose
/// lease still holds them, and whose search is recorded. A job whose lease
/// is lost gets nothing written, not even its counts.
pub async fn record_residual_searches(tx: &mut Transaction<'_, Postgres>, searches: &[ResidualSearch<'_>]) -> Result<Vec<Uuid>> {
    let jobs: Vec<Uuid> = searches.iter().map(|s| s.job_id).collect();
    let owners: Vec<Uuid> = searches.iter().map(|s| s.lease.owner).collect();
    let epochs: Vec<i64> = searches.iter().map(|s| s.lease.epoch).collect();
    let residuals: Vec<&serde_json::Value> = searches.iter().map(|s| s.residuals).collect();
    let found = || searches.iter().flat_map(|s| s.found.iter().map(move |f| (s.job_id, f)));
    let of: Vec<Uuid> = found().map(|(job, _)| job).collect();
    let ids: Vec<Uuid> = found().map(|(_, f)| f.0).collect();
    let names: Vec<&str> = found().map(|(_, f)| f.1.as_str()).collect();
    let backends: Vec<&str> = found().map(|(_, f)| f.2.as_str()).collect();
    let counts: Vec<i64> = found().map(|(_, f)| f.3).collect();
    let applied: Vec<bool> = found().map(|(_, f)| f.4).collect();
    // Candidates reported at ingest (screening) stay. A collection created
    // after the plan has no counts row yet: it gets one. The search is
    // recorded once (a retry reads the stored candidates), so no collection
    // has been applied yet.
    Ok(sqlx::query_scalar(
        r#"
        WITH done AS (
            UPDATE erasure_jobs j
            SET residuals = r.residuals || COALESCE((SELECT jsonb_agg(c) FROM jsonb_array_elements(j.residuals) c
                                                   WHERE c->>'action' = 'reported_at_ingest'), '[]'::jsonb),
                residual_searched_at = clock_timestamp()
            FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::jsonb[]) AS r(job_id, owner, epoch, residuals)
            WHERE j.job_id = r.job_id AND j.lease_owner = r.owner AND j.lease_epoch = r.epoch AND j.status = 'in_progress'
            RETURNING j.job_id
        ),
        counts AS (
            INSERT INTO erasure_counts (job_id, collection_id, collection_name, backend, residual_found, residual_applied)
            SELECT x.job, c, n, b, f, a
            FROM UNNEST($5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::bigint[], $10::bool[]) AS x(job, c, n, b, f, a)
            WHERE x.job IN (SELECT job_id FROM done)
            ON CONFLICT (job_id, collection_id) DO UPDATE
            SET residual_found = EXCLUDED.residual_found, residual_applied = EXCLUDED.residual_applied
        )
        SELECT job_id FROM done
        "#,
    )
    .bind(&jobs)
    .bind(&owners)
    .bind(&epochs)
    .bind(&residuals)
    .bind(&of)
    .bind(&ids)
    .bind(&names)
    .bind(&backends)
    .bind(&counts)
    .bind(&applied)
    .fetch_all(&mut **tx)
    .await?)
}

/// The candidate points of a collection that were present in the backend
/// when the residual stage began acting on it, if it has begun.
pub async fn residual_targets(ex: impl PgExecutor<'_>, job_id: Uuid, collection_id: Uuid) -> Result<Option<ResidualTargets>> {
    type Row = (Option<Vec<Uuid>>, Option<chrono::DateTime<chrono::Utc>>);
    let row: Option<Row> =
        sqlx::query_as("SELECT residual_targets, residual_targets_at FROM erasure_counts WHERE job_id = $1 AND collection_id = $2")
            .bind(job_id)
            .bind(collection_id)
            .fetch_optional(ex)
            .await?;
    Ok(row.and_then(|(points, at)| Some(ResidualTargets { points: points?, stored_at: at.unwrap_or(chrono::DateTime::UNIX_EPOCH) })))
}

/// A collection's residual targets and when they were stored (the epoch for
/// targets stored before that was recorded).
#[derive(Debug, Clone)]
pub struct ResidualTargets {
    pub points: Vec<Uuid>,
    pub stored_at: chrono::DateTime<chrono::Utc>,
}

/// The database's clock now (not the transaction's start).
pub async fn clock(ex: impl PgExecutor<'_>) -> Result<chrono::DateTime<chrono::Utc>> {
    Ok(sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(ex).await?)
}

/// Stores a collection's residual targets before anything of them is
/// changed, with the time their reading began (from [`clock`], taken before
/// the backend was asked: a credit given after it may be of a point the
/// reading saw); false when `lease` no longer holds the job.
pub async fn set_residual_targets(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    lease: Lease,
    collection_id: Uuid,
    targets: &[Uuid],
    read_at: chrono::DateTime<chrono::Utc>,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE erasure_counts SET residual_targets = $5, residual_targets_at = $6 \
         WHERE job_id = $1 AND collection_id = $4 AND {HELD}"
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(collection_id)
    .bind(targets)
    .bind(read_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What the residual stage did in one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResidualCounts {
    pub deleted: i64,
    pub redacted: i64,
    /// Candidates not acted on because of a legal hold.
    pub withheld: i64,
    /// Candidates a redaction wrote back, counted redacted or not (their
    /// old rows are for the physical guarantee to reclaim).
    pub rewritten: i64,
}

/// Records a collection's residual counts as final, with the candidates'
/// actions as they now stand, in one statement each of the caller's
/// transaction; false when `lease` no longer holds the job.
pub async fn record_residual_applied(
    tx: &mut Transaction<'_, Postgres>,
    job_id: Uuid,
    lease: Lease,
    collection_id: Uuid,
    counts: ResidualCounts,
    residuals: &serde_json::Value,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        r#"
        UPDATE erasure_counts SET residual_deleted = $5, residual_redacted = $6, residual_withheld = $7,
               residual_rewritten = $8, residual_applied = true
        WHERE job_id = $1 AND collection_id = $4 AND {HELD}
        "#
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(collection_id)
    .bind(counts.deleted)
    .bind(counts.redacted)
    .bind(counts.withheld)
    .bind(counts.rewritten)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::jobs::set_residuals(&mut **tx, job_id, lease, residuals).await
}

/// The job's notes, in the order they were written.
pub async fn notes(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<Vec<JobNote>> {
    let stored: serde_json::Value =
        sqlx::query_scalar("SELECT notes FROM erasure_jobs WHERE job_id = $1").bind(job_id).fetch_one(ex).await?;
    Ok(serde_json::from_value(stored).unwrap_or_default())
}

/// Adds tables that held rows of the job's person it deleted or changed
/// (for the physical stage's rewrite); false when `lease` no longer holds the job.
pub async fn add_rewrite_tables(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, tables: &[&str]) -> Result<bool> {
    Ok(!add_rewrite_tables_many(ex, &[(job_id, lease, tables.to_vec())]).await?.is_empty())
}

/// [`add_rewrite_tables`] of several jobs in one statement: the jobs whose
/// lease still holds them.
pub async fn add_rewrite_tables_many(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease, Vec<&str>)]) -> Result<Vec<Uuid>> {
    let leases: Vec<(Uuid, Lease)> = jobs.iter().map(|(id, lease, _)| (*id, *lease)).collect();
    let (ids, owners, epochs) = super::lease::lease_columns(&leases);
    // Table names are identifiers: a comma never occurs in one.
    let tables: Vec<String> = jobs.iter().map(|(.., t)| t.join(",")).collect();
    Ok(sqlx::query_scalar(
        r#"
        UPDATE erasure_jobs j
        SET rewrite_tables = ARRAY(SELECT DISTINCT t FROM unnest(j.rewrite_tables || string_to_array(l.tables, ',')) AS t
                                   WHERE t <> '' ORDER BY t)
        FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[]) AS l(job_id, owner, epoch, tables)
        WHERE j.job_id = l.job_id AND j.lease_owner = l.owner AND j.lease_epoch = l.epoch AND j.status = 'in_progress'
        RETURNING j.job_id
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .bind(&tables)
    .fetch_all(ex)
    .await?)
}

/// Records (once) that the forget-lineage stage is done; false when `lease`
/// no longer holds the job.
pub async fn set_forgotten(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease) -> Result<bool> {
    Ok(!set_forgotten_many(ex, &[(job_id, lease)]).await?.is_empty())
}

/// [`set_forgotten`] of several jobs in one statement: those whose lease
/// still holds them.
pub async fn set_forgotten_many(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease)]) -> Result<Vec<Uuid>> {
    super::lease::update_held_jobs(ex, jobs, "forgotten_at = COALESCE(j.forgotten_at, clock_timestamp())").await
}

/// The tables to rewrite for the job and when its forget-lineage stage was done.
pub async fn rewrite_state(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<(Vec<String>, Option<DateTime<Utc>>)> {
    Ok(sqlx::query_as("SELECT rewrite_tables, forgotten_at FROM erasure_jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(ex)
        .await?)
}

/// The tables to rewrite of several jobs, by job.
pub async fn rewrite_tables_many(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, Vec<String>>> {
    let rows: Vec<(Uuid, Vec<String>)> = sqlx::query_as("SELECT job_id, rewrite_tables FROM erasure_jobs WHERE job_id = ANY($1)")
        .bind(job_ids)
        .fetch_all(ex)
        .await?;
    Ok(rows.into_iter().collect())
}

/// A job's physical statuses, for [`record_physical_many`]: per collection
/// `(collection, status, detail)`, and Lethe's own tables `(status, detail)`.
#[derive(Debug, Clone)]
pub struct PhysicalRecord {
    pub job_id: Uuid,
    pub lease: Lease,
    pub collections: Vec<(Uuid, &'static str, String)>,
    pub lethe_tables: (&'static str, String),
}

/// Records the physical statuses of several jobs (no rewrite served them)
/// in one statement: only for the jobs whose lease still holds them, which
/// it returns.
pub async fn record_physical_many(ex: impl PgExecutor<'_>, records: &[PhysicalRecord]) -> Result<Vec<Uuid>> {
    let leases: Vec<(Uuid, Lease)> = records.iter().map(|r| (r.job_id, r.lease)).collect();
    let (ids, owners, epochs) = super::lease::lease_columns(&leases);
    let statuses: Vec<&str> = records.iter().map(|r| r.lethe_tables.0).collect();
    let details: Vec<&str> = records.iter().map(|r| r.lethe_tables.1.as_str()).collect();
    let (mut c_jobs, mut c_ids, mut c_statuses, mut c_details) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in records {
        for (collection_id, status, detail) in &r.collections {
            c_jobs.push(r.job_id);
            c_ids.push(*collection_id);
            c_statuses.push(*status);
            c_details.push(detail.as_str());
        }
    }
    Ok(sqlx::query_scalar(
        r#"
        WITH lineage AS (
            UPDATE erasure_jobs j SET lineage_physical_status = l.status, lineage_physical_detail = l.detail, rewrite_id = NULL
            FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[]) AS l(job_id, owner, epoch, status, detail)
            WHERE j.job_id = l.job_id AND j.lease_owner = l.owner AND j.lease_epoch = l.epoch AND j.status = 'in_progress'
            RETURNING j.job_id
        ),
        collections AS (
            UPDATE erasure_counts e SET physical_status = c.status, physical_detail = c.detail
            FROM UNNEST($6::uuid[], $7::uuid[], $8::text[], $9::text[]) AS c(job_id, collection_id, status, detail)
            JOIN lineage USING (job_id)
            WHERE e.job_id = c.job_id AND e.collection_id = c.collection_id
        )
        SELECT job_id FROM lineage
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .bind(&statuses)
    .bind(&details)
    .bind(&c_jobs)
    .bind(&c_ids)
    .bind(&c_statuses)
    .bind(&c_details)
    .fetch_all(ex)
    .await?)
}

/// Records the physical status of Lethe's own tables for the job (and the
/// rewrite that served it); false when `lease` no longer holds the job.
pub async fn set_lineage_physical(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    lease: Lease,
    (status, detail): (&str, &str),
    rewrite_id: Option<i64>,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        r#"
        UPDATE erasure_jobs SET lineage_physical_status = $4, lineage_physical_detail = $5, rewrite_id = $6
        WHERE job_id = $1 AND {HELD}
        "#
    ))
    .bind(job_id)
    .bind(lease.owner)
    .bind(lease.epoch)
    .bind(status)
    .bind(detail)
    .bind(rewrite_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The physical status of Lethe's own tables for the job, and its detail.
pub async fn lineage_physical(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<(String, String)> {
    Ok(sqlx::query_as("SELECT lineage_physical_status, lineage_physical_detail FROM erasure_jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(ex)
        .await?)
}
