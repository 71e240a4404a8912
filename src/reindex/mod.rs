//! Re-index in full: build a new generation of a collection from lineage
//! (copying live vectors or re-embedding stored text), leaving out every
//! subject that is being or has been erased, verify it, switch readers
//! atomically, and drop the old generation. The strongest guarantee that
//! nothing of an erased person remains in the backend's index structures.
//!
//! Concurrent writes and erasures are neither lost nor resurrected:
//! - writes (`ingest::write`) hold a shared advisory lock on the collection
//!   while they write lineage and vectors, and erasures hold it while they
//!   delete and verify; the switch stage holds it exclusively;
//! - under that lock the switch re-copies every chunk written since the copy
//!   began, removes from the new generation whatever lineage no longer has,
//!   and every point tagged with a suppressed subject (by keyed hash), then
//!   counts and switches. So a write either landed before the switch (and is
//!   copied) or lands after it (in the new generation), and an erasure either
//!   finished before (and its subject is excluded) or runs after (on the new one).

mod stages;
mod worker;

use uuid::Uuid;

pub use worker::run_worker_until_stopped;

use crate::context::Context;
use crate::domain::CollectionSpec;
use crate::error::{LetheError, Result};
use crate::store::reindex::{self, ReindexRow};

/// How the new generation gets its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReindexMode {
    /// Copy the live vectors.
    Copy,
    /// Embed the stored chunk text again (e.g. after a model change).
    Reembed,
}

impl ReindexMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::Reembed => "reembed",
        }
    }
}

/// Queues a re-index of a collection; returns the active job if one of
/// the same mode runs.
///
/// # Errors
/// `NotFound` for an unknown collection; `FailedPrecondition` while one of
/// another mode runs; database failures.
pub async fn submit(
    ctx: &Context,
    tenant_id: Uuid,
    collection: &crate::domain::CollectionName,
    mode: ReindexMode,
) -> Result<ReindexRow> {
    let spec = crate::catalog::collection(ctx, tenant_id, collection).await?;
    if spec.is_attached() {
        // A new generation would be a Lethe table or collection, not the
        // framework's: its retriever would keep reading the old one.
        return Err(LetheError::precondition(
            "attached_collection",
            format!("`{collection}` is attached: re-index cannot keep its framework's schema (erasure deletes from it in place)"),
        ));
    }
    if mode == ReindexMode::Reembed && spec.dimension != ctx.embedder.dimension() {
        return Err(LetheError::invalid("mode", "the embedding model's dimension differs from the collection's"));
    }
    let (row, created) = reindex::insert(&ctx.pool, tenant_id, spec.collection_id, mode.as_str(), None).await?;
    if !created && row.mode != mode.as_str() {
        // The active job is the answer only to the same request again: a
        // re-index of another mode was not queued, and saying so is the truth.
        return Err(LetheError::precondition(
            "reindex_in_progress",
            format!("re-index {} (mode {}) of `{collection}` is running; ask again when it has ended", row.job_id, row.mode),
        ));
    }
    ctx.wake.reindex.notify_waiters();
    Ok(row)
}

/// # Errors
/// `NotFound` for an unknown job.
pub async fn get(ctx: &Context, tenant_id: Uuid, job_id: Uuid) -> Result<ReindexRow> {
    reindex::get(&ctx.pool, tenant_id, job_id).await?.ok_or_else(|| LetheError::NotFound(format!("re-index job {job_id}")))
}

/// # Errors
/// Database failures.
pub async fn list(ctx: &Context, tenant_id: Uuid, limit: u32) -> Result<Vec<ReindexRow>> {
    Ok(reindex::list(&ctx.pool, tenant_id, i64::from(limit)).await?)
}

/// Runs the next stage of a re-index job now, in the caller's task, if no
/// worker holds it: claims it, runs one stage, and gives it back (or ends it
/// after its last stage). For operators and tests that step through a
/// re-index; returns the job as the stage left it.
///
/// # Errors
/// `FailedPrecondition` when a worker holds the job or it has ended; the
/// stage's own failure (the job records it and is released for a retry, or failed).
pub async fn step(ctx: &Context, tenant_id: Uuid, job_id: Uuid) -> Result<ReindexRow> {
    let owner = Uuid::new_v4();
    let lease_secs = ctx.settings.erasure.lease_secs as f64;
    let job = get(ctx, tenant_id, job_id).await?;
    let Some(job) = reindex::claim_one(&ctx.pool, job.job_id, owner, lease_secs).await? else {
        return Err(LetheError::precondition("reindex_busy", "the re-index is held by a worker or has ended"));
    };
    worker::run_stages(ctx, owner, job, 1).await?;
    get(ctx, tenant_id, job_id).await
}

/// Runs a copy re-index of `spec` now, in the caller's task (the erase job's
/// physical stage uses it where rebuilding is the only physical guarantee).
/// The job is recorded like any other; if this process dies, a worker resumes it.
///
/// # Errors
/// When a stage fails; the job records why.
pub async fn run_inline(ctx: &Context, spec: &CollectionSpec) -> Result<ReindexRow> {
    let owner = Uuid::new_v4();
    let (row, created) =
        reindex::insert(&ctx.pool, spec.tenant_id, spec.collection_id, ReindexMode::Copy.as_str(), Some(owner)).await?;
    if created {
        worker::run_job(ctx, owner, row.clone()).await?;
        return get(ctx, spec.tenant_id, row.job_id).await;
    }
    // One is running already: it excludes the erased subject too if it has
    // not switched yet; wait for it and then rebuild once more to be sure.
    loop {
        let r = get(ctx, spec.tenant_id, row.job_id).await?;
        if r.status == "completed" || r.status == "failed" {
            return Box::pin(run_inline(ctx, spec)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
