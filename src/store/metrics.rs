//! Aggregates for `/metrics`, across every tenant: counts only, never a
//! subject, a tenant's name or a key.

use sqlx::PgExecutor;

use super::Result;

/// Jobs of one kind (`erasure`, `reindex`, `attach`) in one status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobCount {
    pub kind: String,
    pub status: String,
    pub jobs: i64,
}

/// How many jobs of each kind are in each status.
///
/// # Errors
/// Database failures.
pub async fn jobs_by_status(ex: impl PgExecutor<'_>) -> Result<Vec<JobCount>> {
    Ok(sqlx::query_as(
        r#"
        SELECT 'erasure' AS kind, status, COUNT(*) AS jobs FROM erasure_jobs GROUP BY status
        UNION ALL
        SELECT 'reindex', status, COUNT(*) FROM reindex_jobs GROUP BY status
        UNION ALL
        SELECT 'attach', status, COUNT(*) FROM attach_jobs GROUP BY status
        ORDER BY 1, 2
        "#,
    )
    .fetch_all(ex)
    .await?)
}

/// Erasure jobs past their deadline and not finished.
///
/// # Errors
/// Database failures.
pub async fn overdue_jobs(ex: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT COUNT(*)
        FROM erasure_jobs
        WHERE deadline < now()
          AND status NOT IN ('completed', 'refused')
        "#,
    )
    .fetch_one(ex)
    .await?)
}

/// Deletion log entries by kind.
///
/// # Errors
/// Database failures.
pub async fn log_entries_by_kind(ex: impl PgExecutor<'_>) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT kind, COUNT(*)
        FROM deletion_log
        GROUP BY kind
        ORDER BY kind
        "#,
    )
    .fetch_all(ex)
    .await?)
}

/// Residual candidates found by erasure jobs, by backend.
///
/// # Errors
/// Database failures.
pub async fn residual_found_by_backend(ex: impl PgExecutor<'_>) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT backend, COALESCE(SUM(residual_found), 0)::BIGINT
        FROM erasure_counts
        GROUP BY backend
        ORDER BY backend
        "#,
    )
    .fetch_all(ex)
    .await?)
}
