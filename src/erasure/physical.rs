//! The erase job's physical stage: what each backend, and Lethe's own
//! tables, still hold of the person's deleted or rewritten rows, and what
//! the job did about it. `confirmed` only when it is true; otherwise
//! `pending` with the reason.
//!
//! Lethe's own tables (lineage, identifiers, probes) are shared by every
//! tenant, and `VACUUM FULL` locks a table exclusively while it rewrites it.
//! So they are rewritten only where the job left dead rows of the person
//! (`rewrite_tables`, recorded by the stages that delete or change them),
//! and one rewrite serves every job waiting: a job waits for the first
//! rewrite that starts after its forget-lineage stage and covers its tables;
//! one worker at a time runs one, at most once per
//! `erasure.lineage_rewrite_interval_secs`, for the tables of every job
//! waiting when it starts.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::report;
use super::stages::{StageError, StageResult, held, planned};
use crate::context::Context;
use crate::domain::{Backend, JobNote, Stage};
use crate::store::jobs::{self, JobRow, Lease, Planned};
use crate::store::rewrite::{self, RewriteRow};
use crate::store::{StoreError, progress};
use crate::vector_store::PhysicalOutcome;

const CONFIRMED: &str = "confirmed";
pub(super) const PENDING: &str = "pending";

pub(super) async fn physical(ctx: &Context, job: &JobRow, lease: Lease) -> StageResult {
    let collections = planned(ctx, job, false).await?;
    let (mut pending, mut confirmed) = (Vec::new(), 0);
    for p in &collections {
        let (status, detail) = collection(ctx, job, p).await?;
        confirmed += usize::from(status == CONFIRMED);
        if status == PENDING {
            pending.push(format!("collection `{}`: {detail}", p.spec.name));
        }
        held(jobs::set_physical(&ctx.pool, job.job_id, lease, p.spec.collection_id, status, &detail).await?)?;
    }
    let (status, detail, rewrite_id) = lethe_tables(ctx, job).await?;
    if status == PENDING {
        pending.push(format!("Lethe's own tables: {detail}"));
    }
    held(progress::set_lineage_physical(&ctx.pool, job.job_id, lease, (status, &detail), rewrite_id).await?)?;
    if job.guarantee_physical && !pending.is_empty() {
        let note = JobNote::new("physical_pending", Stage::Physical, pending.join(" "));
        held(progress::set_note(&ctx.pool, job.job_id, lease, &note).await?)?;
    }
    Ok(message(confirmed, collections.len(), status))
}

/// One collection: what the job deleted or rewrote there, and whether its
/// old bytes are gone.
async fn collection(ctx: &Context, job: &JobRow, p: &Planned) -> Result<(&'static str, String), StageError> {
    let c = &p.counts;
    let deleted = c.before_total - c.after_total.unwrap_or(0) + c.residual_deleted;
    // A redaction overwrites a point: its old text and vector are dead rows
    // (pgvector) or soft-deleted (Qdrant) until reclaimed, like a deletion;
    // so does one written back and then erased with its owner before the
    // redaction read it back (rewritten, not counted redacted).
    let changed = deleted + c.residual_redacted.max(c.residual_rewritten);
    if !job.guarantee_physical {
        return Ok((PENDING, report::pending_detail(p.spec.backend).to_owned()));
    }
    if changed == 0 {
        return Ok((CONFIRMED, "nothing of the person was deleted or rewritten in this collection".to_owned()));
    }
    if p.spec.is_attached() {
        // Attached: no re-index (the framework owns the schema); the store
        // says what its own reclaim guarantees (VACUUM FULL of the table).
        return Ok(match ctx.stores.get(&p.spec)?.reclaim(&p.spec, true).await? {
            PhysicalOutcome::Confirmed(d) => (CONFIRMED, d),
            PhysicalOutcome::Pending(d) => (PENDING, d),
        });
    }
    if p.spec.backend == Backend::Qdrant {
        // Qdrant only soft-deletes; rebuilding the collection from lineage
        // into a new one and deleting the old one is the guarantee.
        let r = crate::reindex::run_inline(ctx, &p.spec).await?;
        return Ok(if r.status == "completed" {
            let detail = format!(
                "collection rebuilt from lineage by re-index {} ({} points); the old collection and its segments were deleted",
                r.job_id,
                r.final_count.unwrap_or(0)
            );
            (CONFIRMED, detail)
        } else {
            (PENDING, format!("re-index {} did not complete: {}", r.job_id, r.error.unwrap_or_default()))
        });
    }
    // A re-index in flight copied rows before they were deleted into its
    // staging table: it leaves them out (as dead rows) at its switch, and
    // the rewrite below must come after that to reach them.
    if let Some(reindex) = wait_for_reindex(ctx, p).await? {
        return Ok((
            PENDING,
            format!(
                "re-index {reindex} of the collection was still running after {}s: its staging table may hold \
                 copies of the deleted rows until its switch leaves them out and the table is rewritten (a \
                 guaranteed erasure or re-index after it does)",
                ctx.settings.erasure.physical_wait_secs
            ),
        ));
    }
    Ok(match ctx.stores.get(&p.spec)?.reclaim(&p.spec, true).await? {
        PhysicalOutcome::Confirmed(d) => (CONFIRMED, d),
        PhysicalOutcome::Pending(d) => (PENDING, d),
    })
}

/// Waits (at most `erasure.physical_wait_secs`) for the collection's
/// re-index in flight to end; the one still running then, if any.
async fn wait_for_reindex(ctx: &Context, p: &Planned) -> Result<Option<uuid::Uuid>, StageError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(ctx.settings.erasure.physical_wait_secs);
    loop {
        let running = crate::store::reindex::in_flight_with_staging(&ctx.pool, p.spec.collection_id).await?;
        if running.is_none() || tokio::time::Instant::now() >= deadline {
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lethe's own tables: status, detail, and the rewrite that served the job.
async fn lethe_tables(ctx: &Context, job: &JobRow) -> Result<(&'static str, String, Option<i64>), StageError> {
    let (tables, forgotten_at) = progress::rewrite_state(&ctx.pool, job.job_id).await?;
    if let Some((status, detail)) = lethe_tables_without_rewrite(job, &tables) {
        return Ok((status, detail, None));
    }
    let since = forgotten_at.unwrap_or_else(Utc::now);
    let r = await_rewrite(ctx, &tables, since).await?;
    let when = r.started_at.to_rfc3339();
    Ok(match r.blocker_pid {
        Some(pid) => (
            PENDING,
            format!(
                "rewrite {} (VACUUM FULL of {}, started {when}) ran while session {pid} held a snapshot older than \
                 the deletion: the deleted rows may have been copied into the new files; a later rewrite reclaims them",
                r.rewrite_id,
                r.tables.join(", ")
            ),
            Some(r.rewrite_id),
        ),
        None => (
            CONFIRMED,
            format!(
                "rewrite {} (VACUUM FULL of {}, started {when}, after this job's rows were deleted) put the tables \
                 in new files; WAL, base backups and replicas are outside Lethe's reach",
                r.rewrite_id,
                r.tables.join(", ")
            ),
            Some(r.rewrite_id),
        ),
    })
}

/// Lethe's own tables when the job needs no rewrite of them: it left no
/// dead row of the person in `tables`, or did not ask for the guarantee.
pub(super) fn lethe_tables_without_rewrite(job: &JobRow, tables: &[String]) -> Option<(&'static str, String)> {
    if tables.is_empty() {
        return Some((CONFIRMED, "the job deleted or changed no row of the person in Lethe's own tables".into()));
    }
    (!job.guarantee_physical).then(|| {
        let detail = format!(
            "old versions of the person's rows in {} stay in the table files until (auto)VACUUM prunes them and \
             their space is reused; ask for guaranteed physical erasure to rewrite them",
            tables.join(", ")
        );
        (PENDING, detail)
    })
}

/// The stage's message.
pub(super) fn message(confirmed: usize, collections: usize, lethe_tables: &str) -> String {
    format!("physical erasure confirmed in {confirmed} of {collections} collections; Lethe's own tables: {lethe_tables}")
}

/// The first rewrite that starts after `since` and covers `tables`: one run
/// by another job, or by this one when no other is running and the
/// interval since the last has passed.
async fn await_rewrite(ctx: &Context, tables: &[String], since: DateTime<Utc>) -> Result<RewriteRow, StageError> {
    let interval = ctx.settings.erasure.lineage_rewrite_interval_secs as f64;
    loop {
        if let Some(done) = rewrite::covering(&ctx.pool, since, tables).await? {
            return Ok(done);
        }
        let mut lock = ctx.pool.begin().await.map_err(StoreError::from)?;
        if rewrite::try_lock(&mut lock).await? {
            // Finished meanwhile by the rewriter before us?
            if let Some(done) = rewrite::covering(&mut *lock, since, tables).await? {
                return Ok(done);
            }
            let wait = rewrite::seconds_until_allowed(&mut *lock, interval).await?;
            if wait <= 0.0 {
                let r = rewrite_now(ctx, tables).await;
                lock.rollback().await.map_err(StoreError::from)?;
                return r;
            }
            lock.rollback().await.map_err(StoreError::from)?;
            tokio::time::sleep(Duration::from_secs_f64(wait.min(1.0))).await;
        } else {
            drop(lock);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Rewrites the tables of every job waiting, and this one's: once no
/// session holds a snapshot older than now (or the wait is over; then the
/// rewrite says which session was in the way).
async fn rewrite_now(ctx: &Context, mine: &[String]) -> Result<RewriteRow, StageError> {
    let mut tables = rewrite::waiting_tables(&ctx.pool).await?;
    tables.extend(mine.iter().cloned());
    tables.sort_unstable();
    tables.dedup();
    let started = rewrite::start(&ctx.pool, &tables).await?;
    let wait = Duration::from_secs(ctx.settings.erasure.physical_wait_secs);
    let blocker = crate::store::wait_for_older_snapshots(&ctx.pool, wait).await?;
    rewrite::vacuum_full(&ctx.pool, &tables).await?;
    tracing::info!(rewrite_id = started.rewrite_id, tables = ?tables, blocker, "Lethe's personal tables rewritten");
    Ok(rewrite::finish(&ctx.pool, started.rewrite_id, blocker).await?)
}
