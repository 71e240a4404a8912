//! Retention: the rules (a collection's `retention_days` and rules per
//! source kind), which sources a sweep finds past them, the retention jobs
//! it queues with their target sources, and when each collection is swept.
//!
//! A source's age is the time lineage recorded it (`sources.created_at`, set
//! by the first Ingest or Track of the source). A source is withheld when
//! one of its chunks is tagged with a subject under legal hold.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;
use crate::domain::CollectionSpec;
use super::jobs::{JOB_COLUMNS, JobRow};

/// The advisory-lock class of a collection's sweep (two-key form; see `holds`).
const SWEEP_LOCK_CLASS: i32 = 0x4C52_544E;

fn collection_key(collection_id: Uuid) -> i32 {
    let b = collection_id.as_bytes();
    i32::from_le_bytes([b[12], b[13], b[14], b[15]])
}

/// Holds the collection's sweep lock until the transaction ends: two sweeps
/// of one collection (two replicas, or a scheduled one and `SweepRetention`)
/// choose their sources one after the other, so the second sees the jobs of
/// the first and leaves their sources out.
pub async fn lock_sweep(tx: &mut Transaction<'_, Postgres>, collection_id: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(SWEEP_LOCK_CLASS)
        .bind(collection_key(collection_id))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The sources of a collection past its rules: `$1` the collection, `$2`
/// its own days (0: none), `$3` the tenant, `$4` the fewest days of any of
/// its rules (so that the scan reads only sources older than that, through
/// `sources_collection_created_idx`), with `held` (a chunk is tagged with a
/// subject on hold), `in_flight` (a queued or running retention job has it)
/// and `failed` (a retention job of it failed less than `$R` seconds ago,
/// `$R` being the query's parameter given to [`due`]: it is not queued again
/// before, so a source that cannot be erased is retried once per window
/// instead of at every sweep).
fn due(retry_param: &str) -> String {
    DUE.replace("$R", retry_param)
}

const DUE: &str = r#"
    held AS (
        SELECT DISTINCT c.source_id
        FROM subjects j
        JOIN chunk_subjects cs ON cs.subject_id = j.subject_id
        JOIN chunks c ON c.tenant_id = cs.tenant_id AND c.chunk_id = cs.chunk_id
        WHERE j.tenant_id = $3 AND j.legal_hold AND cs.collection_id = $1
    ),
    due AS (
        SELECT s.source_id, s.created_at,
               s.source_id IN (SELECT source_id FROM held) AS held,
               EXISTS (SELECT 1 FROM retention_targets t JOIN erasure_jobs e USING (job_id)
                       WHERE t.source_id = s.source_id AND e.status IN ('queued', 'in_progress')) AS in_flight,
               EXISTS (SELECT 1 FROM retention_targets t JOIN erasure_jobs e USING (job_id)
                       WHERE t.source_id = s.source_id AND e.status = 'failed'
                         AND e.completed_at > now() - make_interval(secs => $R::float8)) AS failed
        FROM sources s
        LEFT JOIN retention_rules r ON r.collection_id = s.collection_id AND r.source_kind = s.kind
        WHERE s.collection_id = $1
          AND s.created_at < now() - make_interval(days => $4)
          AND COALESCE(r.days, $2) > 0
          AND s.created_at < now() - make_interval(days => COALESCE(r.days, $2))
    )
"#;

/// What a sweep of one collection would find now.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DueCounts {
    /// Sources past their rule that the next sweep erases, and their chunks.
    pub sources: i64,
    pub chunks: i64,
    /// Sources past their rule kept because of a legal hold, and their chunks.
    pub withheld_sources: i64,
    pub withheld_chunks: i64,
    /// Sources past their rule that a queued or running retention job erases.
    pub in_flight_sources: i64,
    /// Sources past their rule whose retention job failed recently (see
    /// `due`): queued again once the retry window has passed.
    pub failed_sources: i64,
    /// When lineage recorded the oldest source the next sweep erases.
    pub oldest: Option<DateTime<Utc>>,
}

/// A collection's rules as the sweep's queries take them.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The collection's own days (0: none).
    pub days: i32,
    /// The fewest days of any rule of more than 0 (the collection's or a kind's).
    pub min_days: i32,
    /// Seconds before the sources of a failed retention job are queued again
    /// (`retention.retry_failed_after_secs`).
    pub retry_failed_secs: f64,
}

/// Counts what a sweep of the collection would erase and withhold now;
/// the chunks of the sources it would erase only when `with_chunks` (the
/// costly part: 1.7 s of 2 s for 100,000 due sources of 200,000; a sweep
/// counts the chunks of what it queues instead).
pub async fn due_counts(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    rules: Rules,
    with_chunks: bool,
) -> Result<DueCounts> {
    let chunks = if with_chunks {
        "(SELECT count(*) FROM due d JOIN chunks c ON c.source_id = d.source_id WHERE NOT d.in_flight AND NOT d.failed AND NOT d.held)"
    } else {
        "0::bigint"
    };
    Ok(sqlx::query_as(&format!(
        r#"
        WITH {due}
        SELECT
            count(*) FILTER (WHERE NOT in_flight AND NOT failed AND NOT held) AS sources,
            {chunks} AS chunks,
            count(*) FILTER (WHERE NOT in_flight AND held) AS withheld_sources,
            (SELECT count(*) FROM due d JOIN chunks c ON c.source_id = d.source_id WHERE NOT d.in_flight AND d.held) AS withheld_chunks,
            count(*) FILTER (WHERE in_flight) AS in_flight_sources,
            count(*) FILTER (WHERE failed AND NOT in_flight AND NOT held) AS failed_sources,
            min(created_at) FILTER (WHERE NOT in_flight AND NOT failed AND NOT held) AS oldest
        FROM due
        "#,
        due = due("$5")
    ))
    .bind(collection_id)
    .bind(rules.days)
    .bind(tenant_id)
    .bind(rules.min_days)
    .bind(rules.retry_failed_secs)
    .fetch_one(ex)
    .await?)
}

/// The sources the sweep erases now (not held, not in flight, not failed
/// recently), oldest first, at most `limit`.
pub async fn due_sources(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    collection_id: Uuid,
    rules: Rules,
    limit: i64,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(&format!(
        r#"
        WITH {due}
        SELECT source_id FROM due WHERE NOT in_flight AND NOT failed AND NOT held ORDER BY created_at, source_id LIMIT $5
        "#,
        due = due("$6")
    ))
    .bind(collection_id)
    .bind(rules.days)
    .bind(tenant_id)
    .bind(rules.min_days)
    .bind(limit)
    .bind(rules.retry_failed_secs)
    .fetch_all(&mut **tx)
    .await?)
}

/// Chunks lineage records for the given sources.
pub async fn chunk_count(ex: impl PgExecutor<'_>, sources: &[Uuid]) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM chunks WHERE source_id = ANY($1)").bind(sources).fetch_one(ex).await?)
}

/// What a new retention job needs.
#[derive(Debug, Clone)]
pub struct NewRetentionJob<'a> {
    pub tenant_id: Uuid,
    pub collection_id: Uuid,
    pub requested_by: &'a str,
    pub reason: &'a str,
    pub guarantee_physical: bool,
    pub deadline_days: i32,
    pub sources: &'a [Uuid],
}

/// Queues a retention job of the given sources with its first event.
pub async fn insert_job(tx: &mut Transaction<'_, Postgres>, job: &NewRetentionJob<'_>) -> Result<JobRow> {
    let row: JobRow = sqlx::query_as(&format!(
        r#"
        INSERT INTO erasure_jobs (job_id, tenant_id, kind, collection_id, requested_by, reason, residual_policy,
                                  guarantee_physical, status, stage, deadline)
        VALUES ($1, $2, 'retention', $3, $4, $5, 'report', $6, 'queued', 'freeze', now() + make_interval(days => $7))
        RETURNING {JOB_COLUMNS}
        "#
    ))
    .bind(Uuid::now_v7())
    .bind(job.tenant_id)
    .bind(job.collection_id)
    .bind(job.requested_by)
    .bind(job.reason)
    .bind(job.guarantee_physical)
    .bind(job.deadline_days)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO retention_targets (job_id, source_id) SELECT $1, UNNEST($2::uuid[])")
        .bind(row.job_id)
        .bind(job.sources)
        .execute(&mut **tx)
        .await?;
    Ok(row)
}

/// The sources a retention job erases.
pub async fn targets(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar("SELECT source_id FROM retention_targets WHERE job_id = $1 ORDER BY source_id")
        .bind(job_id)
        .fetch_all(ex)
        .await?)
}

/// The job's target sources, and how many were withheld under legal hold.
pub async fn target_counts(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<(i64, i64)> {
    Ok(sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE withheld) FROM retention_targets WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(ex)
        .await?)
}

/// Marks the job's sources that were kept under legal hold (`sources`), and
/// only those (a retry recomputes them).
pub async fn set_withheld(ex: impl PgExecutor<'_>, job_id: Uuid, sources: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE retention_targets SET withheld = (source_id = ANY($2)) WHERE job_id = $1")
        .bind(job_id)
        .bind(sources)
        .execute(ex)
        .await?;
    Ok(())
}

/// The chunks lineage records for the given sources of the collection, in id order.
pub async fn source_chunks(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid, sources: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT chunk_id FROM chunks WHERE tenant_id = $1 AND collection_id = $2 AND source_id = ANY($3) ORDER BY chunk_id",
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(sources)
    .fetch_all(ex)
    .await?)
}

/// Of the collection's `chunk_ids`, those whose source a retention sweep
/// may target while an erasure that counts them is in flight: older than
/// the collection's shortest rule (its own or a kind's), less a day for a
/// source that comes of age meanwhile. None without a rule.
///
/// The rule is read first, alone: without one (the usual case) the ids are
/// not sent at all. In one statement the ids were bound and planned even so
/// (a 10,000-chunk subject's plan spent 15 ms on it, 2026-12-02). Two
/// statements, so it takes the pool rather than one executor.
pub async fn within_reach(pool: &sqlx::PgPool, spec: &CollectionSpec, chunk_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    if chunk_ids.is_empty() {
        return Ok(Vec::new());
    }
    let days: Option<i32> = sqlx::query_scalar(
        r#"
        SELECT min(d) FROM (
            SELECT retention_days AS d FROM collections WHERE collection_id = $1
            UNION ALL SELECT days FROM retention_rules WHERE collection_id = $1
        ) r WHERE d > 0
        "#,
    )
    .bind(spec.collection_id)
    .fetch_one(pool)
    .await?;
    let Some(days) = days else { return Ok(Vec::new()) };
    // By the chunks' primary key (tenant, id): without the tenant the planner
    // read every chunk of the collection in parallel workers (the plan stage
    // of a small job went from 21 to 51 ms).
    Ok(sqlx::query_scalar(
        r#"
        SELECT c.chunk_id FROM chunks c JOIN sources s ON s.source_id = c.source_id
        WHERE c.tenant_id = $3 AND c.chunk_id = ANY($2) AND c.collection_id = $1
          AND s.created_at < now() - make_interval(days => $4 - 1)
        "#,
    )
    .bind(spec.collection_id)
    .bind(chunk_ids)
    .bind(spec.tenant_id)
    .bind(days)
    .fetch_all(pool)
    .await?)
}

/// Of `chunk_ids`, those tagged with any subject (the ones an erasure of a
/// subject can count too).
pub async fn tagged_chunks(ex: impl PgExecutor<'_>, tenant_id: Uuid, chunk_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    if chunk_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Chunk ids are per tenant: another tenant's tag on the same id is not one.
    Ok(sqlx::query_scalar("SELECT DISTINCT chunk_id FROM chunk_subjects WHERE chunk_id = ANY($1) AND tenant_id = $2 ORDER BY 1")
        .bind(chunk_ids)
        .bind(tenant_id)
        .fetch_all(ex)
        .await?)
}

/// Of the tenant's `chunk_ids`, those whose source has a chunk tagged with
/// a subject on hold (a held source is kept whole), with those sources.
pub async fn held_source_chunks(ex: impl PgExecutor<'_>, tenant_id: Uuid, chunk_ids: &[Uuid]) -> Result<(Vec<Uuid>, Vec<Uuid>)> {
    if chunk_ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        r#"
        WITH mine AS (SELECT chunk_id, source_id FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2)),
        held AS (
            SELECT DISTINCT c.source_id
            FROM chunks c
            JOIN chunk_subjects cs ON cs.tenant_id = c.tenant_id AND cs.chunk_id = c.chunk_id
            JOIN subjects j ON j.subject_id = cs.subject_id
            WHERE c.tenant_id = $1 AND c.source_id IN (SELECT source_id FROM mine) AND j.legal_hold
        )
        SELECT chunk_id, source_id FROM mine WHERE source_id IN (SELECT source_id FROM held) ORDER BY chunk_id
        "#,
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .fetch_all(ex)
    .await?;
    let chunks = rows.iter().map(|(c, _)| *c).collect();
    let mut sources: Vec<Uuid> = rows.into_iter().map(|(_, s)| s).collect();
    sources.sort_unstable();
    sources.dedup();
    Ok((chunks, sources))
}

/// The sources of the given chunks (for what a job kept).
pub async fn sources_of(ex: impl PgExecutor<'_>, tenant_id: Uuid, chunk_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar("SELECT DISTINCT source_id FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) ORDER BY 1")
        .bind(tenant_id)
        .bind(chunk_ids)
        .fetch_all(ex)
        .await?)
}

/// A rule for one source kind of a collection.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KindRule {
    pub collection_id: Uuid,
    pub source_kind: String,
    pub days: i32,
    pub updated_at: DateTime<Utc>,
}

/// The tenant's rules per source kind.
pub async fn kind_rules(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<KindRule>> {
    Ok(sqlx::query_as(
        "SELECT collection_id, source_kind, days, updated_at FROM retention_rules WHERE tenant_id = $1 \
         ORDER BY collection_id, source_kind",
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await?)
}

/// A collection's source-kind rules, locked `FOR SHARE` until the
/// transaction ends: an erasure dropping one (its kind names the person)
/// waits for the sweep that names it in its jobs' reasons, then rewrites
/// those reasons too.
pub async fn kind_rules_for_share(ex: impl PgExecutor<'_>, collection_id: Uuid) -> Result<Vec<KindRule>> {
    Ok(sqlx::query_as(
        "SELECT collection_id, source_kind, days, updated_at FROM retention_rules WHERE collection_id = $1 \
         ORDER BY source_kind FOR SHARE",
    )
    .bind(collection_id)
    .fetch_all(ex)
    .await?)
}

/// The source-kind rules of these tenants: (tenant, collection, kind).
pub async fn kind_rules_of_tenants(ex: impl PgExecutor<'_>, tenant_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid, String)>> {
    Ok(sqlx::query_as("SELECT tenant_id, collection_id, source_kind FROM retention_rules WHERE tenant_id = ANY($1)")
        .bind(tenant_ids)
        .fetch_all(ex)
        .await?)
}

/// Drops these (tenant, collection, kind) rules: their kinds name someone erased.
/// The reasons of the collections' retention jobs not yet logged name each
/// such kind by a fixed text instead (a job's reason goes into its log
/// entry and certificate when it ends). Returns how many rules were dropped.
pub async fn drop_kind_rules(ex: &mut sqlx::PgConnection, rules: &[(Uuid, Uuid, String)]) -> Result<u64> {
    if rules.is_empty() {
        return Ok(0);
    }
    // In one order (collection, kind): two erasures dropping rules and
    // rewriting the same jobs take their rows in the same order.
    let mut rules = rules.to_vec();
    rules.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
    let collections: Vec<Uuid> = rules.iter().map(|r| r.1).collect();
    let kinds: Vec<&str> = rules.iter().map(|r| r.2.as_str()).collect();
    let dropped = sqlx::query(
        "DELETE FROM retention_rules r USING UNNEST($1::uuid[], $2::text[]) AS d(collection_id, kind) \
         WHERE r.collection_id = d.collection_id AND r.source_kind = d.kind",
    )
    .bind(&collections)
    .bind(&kinds)
    .execute(&mut *ex)
    .await?
    .rows_affected();
    for (tenant_id, collection_id, kind) in &rules {
        sqlx::query(
            "UPDATE erasure_jobs SET reason = replace(reason, $3, $4) WHERE tenant_id = $1 AND status IN ('queued', 'in_progress') \
             AND collection_id = $2 AND kind = 'retention' AND strpos(reason, $3) > 0",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(format!("kind `{kind}`"))
        .bind(format!("kind ({ERASED_KIND})"))
        .execute(&mut *ex)
        .await?;
    }
    Ok(dropped)
}

/// What a job's reason says of a rule dropped because its kind named
/// someone erased.
pub const ERASED_KIND: &str = "a kind dropped because it named an erased person";

/// Sets a collection's own rule.
pub async fn set_collection_days(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid, days: i32) -> Result<()> {
    sqlx::query("UPDATE collections SET retention_days = $3 WHERE tenant_id = $1 AND collection_id = $2")
        .bind(tenant_id)
        .bind(collection_id)
        .bind(days)
        .execute(ex)
        .await?;
    Ok(())
}

/// Sets (or, with None, removes) the rule of a source kind of a collection.
pub async fn set_kind_rule(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    source_kind: &str,
    days: Option<i32>,
    max_rules: i64,
) -> Result<bool> {
    match days {
        Some(days) => {
            // A new kind only while the collection has fewer than `max_rules`.
            let done = sqlx::query(
                r#"
                INSERT INTO retention_rules (collection_id, tenant_id, source_kind, days)
                SELECT $1, $2, $3, $4
                WHERE (SELECT count(*) FROM retention_rules WHERE collection_id = $1 AND source_kind <> $3) < $5
                ON CONFLICT (collection_id, source_kind) DO UPDATE SET days = EXCLUDED.days, updated_at = now()
                "#,
            )
            .bind(collection_id)
            .bind(tenant_id)
            .bind(source_kind)
            .bind(days)
            .bind(max_rules)
            .execute(ex)
            .await?;
            return Ok(done.rows_affected() == 1);
        }
        None => {
            sqlx::query("DELETE FROM retention_rules WHERE collection_id = $1 AND tenant_id = $2 AND source_kind = $3")
                .bind(collection_id)
                .bind(tenant_id)
                .bind(source_kind)
                .execute(ex)
                .await?;
        }
    }
    Ok(true)
}

/// When a collection was swept last and is due next.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SweepRow {
    pub collection_id: Uuid,
    pub last_swept_at: Option<DateTime<Utc>>,
    pub next_sweep_at: Option<DateTime<Utc>>,
}

pub async fn sweeps(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<SweepRow>> {
    Ok(sqlx::query_as("SELECT collection_id, last_swept_at, next_sweep_at FROM retention_sweeps WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(ex)
        .await?)
}

/// Claims up to `limit` collections (of every tenant) whose sweep is due
/// (a rule of more than 0 days, and never swept or due by now): moves their
/// next sweep `interval_secs` ahead and returns (tenant, collection). Two
/// replicas claiming at once never both get a collection: the second's
/// update finds it no longer due. Attached collections without a timestamp
/// have no rule (SetRetention refuses them).
pub async fn claim_due(ex: impl PgExecutor<'_>, interval_secs: f64, limit: i64) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        r#"
        WITH due AS (
            SELECT c.collection_id, c.tenant_id
            FROM collections c
            LEFT JOIN retention_sweeps s USING (collection_id)
            WHERE (c.retention_days > 0
                   OR EXISTS (SELECT 1 FROM retention_rules r WHERE r.collection_id = c.collection_id AND r.days > 0))
              AND (s.next_sweep_at IS NULL OR s.next_sweep_at <= now())
            ORDER BY s.next_sweep_at NULLS FIRST
            LIMIT $2
        )
        INSERT INTO retention_sweeps AS s (collection_id, tenant_id, last_swept_at, next_sweep_at)
        SELECT collection_id, tenant_id, now(), now() + make_interval(secs => $1) FROM due
        ON CONFLICT (collection_id) DO UPDATE
        SET last_swept_at = EXCLUDED.last_swept_at, next_sweep_at = EXCLUDED.next_sweep_at
        WHERE s.next_sweep_at IS NULL OR s.next_sweep_at <= now()
        RETURNING tenant_id, collection_id
        "#,
    )
    .bind(interval_secs)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Records a sweep run on request (`SweepRetention`): its time, and the
/// next scheduled one pushed `interval_secs` ahead.
pub async fn record_swept(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid, interval_secs: f64) -> Result<()> {
    sqlx::query(
        r#"
        INSERT INTO retention_sweeps AS s (collection_id, tenant_id, last_swept_at, next_sweep_at)
        VALUES ($1, $2, now(), now() + make_interval(secs => $3))
        ON CONFLICT (collection_id) DO UPDATE SET last_swept_at = now(), next_sweep_at = EXCLUDED.next_sweep_at
        "#,
    )
    .bind(collection_id)
    .bind(tenant_id)
    .bind(interval_secs)
    .execute(ex)
    .await?;
    Ok(())
}
