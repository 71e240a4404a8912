//! Rewrites of Lethe's own tables that held people's data (`VACUUM FULL`),
//! shared by the jobs that wait for them: one rewrite at a time (an
//! advisory lock), at most one per interval, covering the tables of every
//! job waiting when it starts.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use super::Result;

/// Lethe's tables that hold people's data in clear, the only ones a rewrite touches.
pub const PERSONAL_TABLES: [&str; 9] = [
    "chunks",
    "sources",
    "chunk_subjects",
    "subject_identifiers",
    "subjects",
    "erasure_probes",
    "erasure_identifiers",
    "erasure_jobs",
    "retention_rules",
];

/// The advisory-lock class of rewrites (two-key form; see `holds`).
const REWRITE_LOCK_CLASS: i32 = 0x4C52_5752;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RewriteRow {
    pub rewrite_id: i64,
    pub tables: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub blocker_pid: Option<i32>,
}

const COLUMNS: &str = "rewrite_id, tables, started_at, finished_at, blocker_pid";

/// The first finished rewrite that started after `since` and covered `tables`.
pub async fn covering(ex: impl PgExecutor<'_>, since: DateTime<Utc>, tables: &[String]) -> Result<Option<RewriteRow>> {
    Ok(sqlx::query_as(&format!(
        r#"
        SELECT {COLUMNS} FROM lineage_rewrites
        WHERE finished_at IS NOT NULL AND started_at > $1 AND tables @> $2
        ORDER BY rewrite_id
        LIMIT 1
        "#
    ))
    .bind(since)
    .bind(tables)
    .fetch_optional(ex)
    .await?)
}

/// Becomes the rewriter until the transaction ends, unless another is.
pub async fn try_lock(tx: &mut Transaction<'_, Postgres>) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, 0)").bind(REWRITE_LOCK_CLASS).fetch_one(&mut **tx).await?)
}

/// Seconds until the next rewrite may start (0 when it may now).
pub async fn seconds_until_allowed(ex: impl PgExecutor<'_>, interval_secs: f64) -> Result<f64> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT COALESCE(GREATEST(0, EXTRACT(EPOCH FROM max(started_at) + make_interval(secs => $1) - clock_timestamp()))::float8, 0)
        FROM lineage_rewrites
        "#,
    )
    .bind(interval_secs)
    .fetch_one(ex)
    .await?)
}

/// The tables of every job waiting for a rewrite now.
pub async fn waiting_tables(ex: impl PgExecutor<'_>) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT DISTINCT t FROM erasure_jobs, unnest(rewrite_tables) AS t
        WHERE status = 'in_progress' AND stage = 'physical' AND guarantee_physical AND rewrite_id IS NULL
        "#,
    )
    .fetch_all(ex)
    .await?)
}

/// Records the start of a rewrite of `tables`, now.
pub async fn start(ex: impl PgExecutor<'_>, tables: &[String]) -> Result<RewriteRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO lineage_rewrites (tables, started_at) VALUES ($1, clock_timestamp()) RETURNING {COLUMNS}"
    ))
    .bind(tables)
    .fetch_one(ex)
    .await?)
}

pub async fn finish(ex: impl PgExecutor<'_>, rewrite_id: i64, blocker_pid: Option<i32>) -> Result<RewriteRow> {
    Ok(sqlx::query_as(&format!(
        "UPDATE lineage_rewrites SET finished_at = clock_timestamp(), blocker_pid = $2 WHERE rewrite_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(rewrite_id)
    .bind(blocker_pid)
    .fetch_one(ex)
    .await?)
}

/// Rewrites the given personal tables into new files (`VACUUM FULL`, one
/// statement each: VACUUM cannot run in a transaction). Names outside
/// [`PERSONAL_TABLES`] are ignored.
///
/// # Errors
/// When the connected role may not rewrite one of them (`VACUUM` would skip
/// it with a mere warning: they are handed to the service role when
/// migrations run as `database.migration_url`), database failures.
pub async fn vacuum_full(pool: &sqlx::PgPool, tables: &[String]) -> Result<()> {
    let wanted: Vec<&str> = PERSONAL_TABLES.iter().copied().filter(|t| tables.iter().any(|x| x == t)).collect();
    let refused = super::role::not_vacuumable(pool, &wanted).await?;
    if !refused.is_empty() {
        return Err(super::StoreError::Unexpected(sqlx::Error::Configuration(
            format!("the database role cannot VACUUM FULL {}: it must own them", refused.join(", ")).into(),
        )));
    }
    for table in PERSONAL_TABLES.iter().filter(|t| tables.iter().any(|x| x == *t)) {
        super::vacuum_bounded(pool, &format!("VACUUM (FULL) {table}")).await?;
    }
    Ok(())
}
