//! Claims re-index jobs and runs their stages, like the erasure worker.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use super::stages;
use crate::context::Context;
use crate::error::{LetheError, Result};
use crate::store::lease::Lease;
use crate::store::reindex::{self, ReindexRow};

const STAGES: [&str; 4] = ["prepare", "copy", "switch", "drop"];
const MAX_ATTEMPTS: i32 = 10;

/// One worker for re-index jobs until `shutdown` resolves (re-indexes are
/// long and few; one at a time per process keeps erasures responsive). A job
/// cut off by the shutdown keeps its persisted stage; its lease is released
/// (not at the switch: `store::reindex::release_leases_of`).
pub async fn run_worker_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    if ctx.settings.erasure.workers == 0 {
        // No workers at all (tests that drive jobs themselves, see `super::step`).
        shutdown.await;
        return;
    }
    let owner = Uuid::new_v4();
    let poll = Duration::from_millis(ctx.settings.erasure.poll_interval_ms);
    let work = async {
        loop {
            // A turn at the pool while the job runs (`Context::slot`).
            let turn = ctx.slot().await;
            match reindex::claim(&ctx.pool, owner, lease_secs(&ctx)).await {
                Ok(Some(job)) => {
                    if let Err(e) = run_job(&ctx, owner, job).await {
                        tracing::warn!(error.cause_chain = ?e, "re-index attempt failed");
                    }
                }
                Ok(None) => {
                    drop(turn);
                    let _ = tokio::time::timeout(poll, ctx.wake.reindex.notified()).await;
                }
                Err(e) => {
                    drop(turn);
                    tracing::error!(error.cause_chain = ?e, "cannot read the re-index queue");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    };
    tokio::select! {
        () = work => {},
        () = shutdown => {},
    }
    // As the erase workers do: the job this worker held is free for the
    // next claim now, not when its lease runs out (a restart resumes it at
    // once). Its stage was dropped with `work`, and a new claim fences it.
    match reindex::release_leases_of(&ctx.pool, &[owner]).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "stopping: the running re-index's lease is released"),
        Err(e) => tracing::warn!(error.cause_chain = ?e, "stopping: cannot release the running re-index's lease; it expires"),
    }
}

fn lease_secs(ctx: &Context) -> f64 {
    ctx.settings.erasure.lease_secs as f64
}

/// Runs the job's remaining stages. Transient failures release the job for a
/// later attempt; after too many, or on a failed verification, it fails.
/// Once another claim has taken the job, its state is not written any more.
///
/// # Errors
/// When the job cannot be completed now, or the lease was lost.
pub(super) async fn run_job(ctx: &Context, owner: Uuid, job: ReindexRow) -> Result<()> {
    run_stages(ctx, owner, job, STAGES.len()).await
}

/// Runs at most `limit` of the job's remaining stages; when stages remain,
/// gives the lease back so that the job can be claimed again at once.
pub(super) async fn run_stages(ctx: &Context, owner: Uuid, job: ReindexRow, limit: usize) -> Result<()> {
    let lease = Lease { owner, epoch: job.lease_epoch };
    let start = STAGES.iter().position(|s| *s == job.stage).unwrap_or(0);
    for stage in STAGES.iter().skip(start).take(limit) {
        run_one(ctx, lease, &job, stage).await?;
    }
    if start + limit < STAGES.len() {
        return held(reindex::give_back(&ctx.pool, job.job_id, lease).await?);
    }
    held(reindex::finish(&ctx.pool, job.job_id, lease, "completed", None).await?)
}

/// Runs one stage and advances the job past it, or records its failure.
async fn run_one(ctx: &Context, lease: Lease, job: &ReindexRow, stage: &str) -> Result<()> {
    // Re-read the row: earlier stages persisted what later ones need.
    let current = super::get(ctx, job.tenant_id, job.job_id).await?;
    match with_lease(ctx, &current, lease, run_stage(ctx, &current, stage)).await {
        Ok(message) => {
            tracing::info!(job_id = %job.job_id, stage, %message, "re-index stage done");
            let next = STAGES.iter().skip_while(|s| **s != stage).nth(1).copied().unwrap_or("done");
            held(reindex::advance(&ctx.pool, job.job_id, lease, next).await?)
        }
        Err(e) => {
            let fatal = matches!(e, LetheError::Unexpected(_) | LetheError::NotFound(_)) && stage == "switch"
                || job.attempts >= MAX_ATTEMPTS;
            tracing::warn!(job_id = %job.job_id, stage, error.cause_chain = ?e, "re-index stage failed");
            let msg = format!("{stage}: {}", e.public_message());
            if fatal {
                // Only the lease holder may drop the staging generation.
                if reindex::finish(&ctx.pool, job.job_id, lease, "failed", Some(&msg)).await? {
                    abandon(ctx, &current).await;
                }
            } else {
                reindex::release_for_retry(&ctx.pool, job.job_id, lease, &msg, 2.0).await?;
            }
            Err(e)
        }
    }
}

/// `Ok` when a write under the lease was applied; an error that stops the worker when it was refused.
fn held(applied: bool) -> Result<()> {
    if applied { Ok(()) } else { Err(lease_lost()) }
}

fn lease_lost() -> LetheError {
    LetheError::Unavailable(anyhow::anyhow!("lease lost"))
}

async fn run_stage(ctx: &Context, job: &ReindexRow, stage: &str) -> Result<String> {
    match stage {
        "prepare" => stages::prepare(ctx, job).await,
        "copy" => stages::copy(ctx, job).await,
        "switch" => stages::switch(ctx, job).await,
        _ => stages::drop_retired(ctx, job).await,
    }
}

/// A failed re-index leaves the live collection as it was: drop the staging.
/// Not once switched (the staging is the live generation then), which the
/// backend itself is asked: the row read before the stage may predate a
/// promote whose recording failed.
async fn abandon(ctx: &Context, job: &ReindexRow) {
    let (Some(staging), Ok(spec)) = (&job.staging_name, stages::collection_of(ctx, job).await) else { return };
    let Ok(store) = ctx.stores.get(&spec) else { return };
    if job.retired_name.is_some() {
        return;
    }
    let staging_spec = crate::domain::CollectionSpec { backend_name: staging.clone(), ..spec.clone() };
    if matches!(store.is_promoted(&spec, &staging_spec).await, Ok(false)) {
        let _ = store.drop_physical(staging).await;
    }
}

async fn with_lease<T>(ctx: &Context, job: &ReindexRow, lease: Lease, stage: impl Future<Output = Result<T>>) -> Result<T> {
    let every = Duration::from_secs_f64((lease_secs(ctx) / 3.0).max(0.2));
    let renew = || reindex::renew(&ctx.pool, job.job_id, lease, lease_secs(ctx));
    // A renewal that cannot reach the database ends the stage, as it did
    // (the job is retried); a lost lease too.
    let mut failed = None;
    let still_held = |renewed: std::result::Result<bool, crate::store::StoreError>| match renewed {
        Ok(held) => held,
        Err(e) => {
            failed = Some(e);
            false
        }
    };
    let out = crate::queue::beside_renewals(stage, &mut (tokio::time::Instant::now() + every), every, renew, still_held).await;
    match (out, failed) {
        (Some(out), _) => out,
        (None, Some(e)) => Err(e.into()),
        (None, None) => Err(lease_lost()),
    }
}
