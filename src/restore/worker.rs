//! The reconcile worker: queues the scheduled runs that are due (every
//! `restore_guard.reconcile_interval_secs` per tenant with erased subjects),
//! then claims queued runs, the Reconcile rpc's and the schedule's alike.
//!
//! Several replicas run it side by side without doing the work twice: a
//! tenant has at most one queued or running run (a partial unique index, so
//! two replicas that find the same run due insert one), runs are claimed
//! with `FOR UPDATE SKIP LOCKED` under a lease whose epoch fences every
//! write (`store::lease`), and a collection that a run has logged is not
//! reconciled again when another claim resumes the run.

use std::future::Future;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::context::Context;
use crate::error::{LetheError, Result};
use crate::store::lease::Lease;
use crate::store::reconcile as runs;

/// Attempts of a run before it fails for good.
const MAX_ATTEMPTS: i32 = 10;

/// One reconcile worker until `shutdown` resolves; queues the scheduled
/// runs that are due every `restore_guard.schedule_check_secs`. Off with the
/// erase workers (`erasure.workers: 0`).
pub async fn run_worker_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let owner = Uuid::new_v4();
    let next_check = std::sync::Mutex::new(Instant::now());
    let (ctx, next_check) = (&ctx, &next_check);
    let step = || {
        let due = {
            let mut next = next_check.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = Instant::now() >= *next;
            if due {
                *next = Instant::now() + Duration::from_secs(ctx.settings.restore_guard.schedule_check_secs.max(1));
            }
            due
        };
        async move {
            if due && let Err(e) = queue_due(ctx).await {
                tracing::error!(error.cause_chain = ?e, "cannot queue scheduled reconcile runs");
            }
            step(ctx, owner).await
        }
    };
    crate::queue::run_until_stopped(ctx, "reconcile", &ctx.wake.reconcile, step, shutdown).await;
    // As the erase workers do: the run this worker held is free for the next
    // claim now, not when its lease runs out (a restart resumes it at once).
    // The run was dropped with the loop, and a new claim fences it.
    match runs::release_leases_of(&ctx.pool, &[owner]).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, "stopping: the running reconcile's lease is released"),
        Err(e) => tracing::warn!(error.cause_chain = ?e, "stopping: cannot release the running reconcile's lease; it expires"),
    }
}

/// Queues the scheduled runs that are due; none when the schedule is off.
///
/// # Errors
/// Database failures.
pub async fn queue_due(ctx: &Context) -> Result<u64> {
    let every = ctx.settings.restore_guard.reconcile_interval_secs;
    if every == 0 {
        return Ok(0);
    }
    let queued = runs::queue_due(&ctx.pool, every as f64).await?;
    if queued > 0 {
        tracing::info!(queued, "scheduled reconcile runs queued");
    }
    Ok(queued)
}

/// Claims and runs one queued run; false when there was none.
///
/// # Errors
/// When the queue cannot be read.
pub async fn step(ctx: &Context, owner: Uuid) -> Result<bool> {
    // A turn at the pool while the run runs (`Context::slot`).
    let _turn = ctx.slot().await;
    let lease_secs = ctx.settings.erasure.lease_secs as f64;
    let Some(run) = runs::claim(&ctx.pool, owner, lease_secs).await? else { return Ok(false) };
    let lease = Lease { owner, epoch: run.lease_epoch };
    match super::reconcile::execute(ctx, &run, lease).await {
        Ok(true) => tracing::info!(run_id = %run.job_id, "reconcile completed"),
        Ok(false) => tracing::warn!(run_id = %run.job_id, "reconcile run taken over by another claim"),
        Err(e) => {
            // Kept in the run and the service's log after the run: no value a
            // backend's error quoted (a text point id) outlives it.
            let message = crate::attach::worker::without_values(&e.to_string());
            tracing::warn!(run_id = %run.job_id, error = %message, "reconcile stopped");
            let transient = matches!(e, LetheError::Unavailable(_) | LetheError::Unexpected(_));
            if transient && run.attempts < MAX_ATTEMPTS {
                let backoff = f64::from(run.attempts.clamp(1, 6)).exp2();
                runs::release(&ctx.pool, run.job_id, lease, &message, backoff).await?;
            } else {
                runs::finish(&ctx.pool, run.job_id, lease, "failed", Some(&message), &[], 0).await?;
            }
        }
    }
    Ok(true)
}
