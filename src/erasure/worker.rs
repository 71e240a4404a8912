//! The job worker: claims runnable jobs (`FOR UPDATE SKIP LOCKED` with a
//! lease), runs their stages in order, renews the lease while a stage runs,
//! and retries transient failures with back-off. Several workers, in one or
//! many processes, share the queue.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use super::stages::{self, StageError};
use crate::context::Context;
use crate::domain::{JobStatus, Stage};
use crate::store::jobs::{self, JobRow, Lease};
use crate::store::{StoreError, holds, lineage};

/// Attempts before a job that keeps failing transiently is failed.
const MAX_ATTEMPTS: i32 = 20;

/// What one attempt to run a job did.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecutionOutcome {
    JobRan,
    EmptyQueue,
}

/// Runs `erasure.workers` workers until `shutdown` resolves. A job cut off by
/// the shutdown keeps its persisted stage and is resumed when its lease expires.
pub async fn run_worker_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..ctx.settings.erasure.workers {
        let ctx = ctx.clone();
        set.spawn(async move { worker_loop(ctx).await });
    }
    shutdown.await;
    set.shutdown().await;
}

async fn worker_loop(ctx: Context) {
    let owner = Uuid::new_v4();
    let poll = Duration::from_millis(ctx.settings.erasure.poll_interval_ms);
    loop {
        match try_execute_job(&ctx, owner).await {
            Ok(ExecutionOutcome::JobRan) => {}
            Ok(ExecutionOutcome::EmptyQueue) => {
                let _ = tokio::time::timeout(poll, ctx.wake.erasure.notified()).await;
            }
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, "worker cannot reach the job queue");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

/// Claims one job and runs it to the end, to a failure, or until its lease is
/// lost. Once another claim has taken the job, this worker writes nothing more.
///
/// # Errors
/// When the queue itself cannot be read.
pub async fn try_execute_job(ctx: &Context, owner: Uuid) -> Result<ExecutionOutcome, StoreError> {
    let Some(job) = jobs::claim_job(&ctx.pool, owner, lease_secs(ctx)).await? else {
        return Ok(ExecutionOutcome::EmptyQueue);
    };
    let lease = Lease { owner, epoch: job.lease_epoch };
    let span = tracing::info_span!("erasure_job", job_id = %job.job_id, attempt = job.attempts);
    run_job(ctx, lease, job).instrument(span).await?;
    Ok(ExecutionOutcome::JobRan)
}

fn lease_secs(ctx: &Context) -> f64 {
    // Lease durations are seconds in configuration; a few thousand at most.
    ctx.settings.erasure.lease_secs as f64
}

async fn run_job(ctx: &Context, lease: Lease, job: JobRow) -> Result<(), StoreError> {
    let mut stage: Stage = job.stage.parse().unwrap_or(Stage::Freeze);
    while stage != Stage::Done {
        pause(ctx).await;
        let started = std::time::Instant::now();
        let result = with_lease(ctx, &job, lease, stages::run(ctx, &job, lease, stage)).await;
        crate::metrics::observe_stage(stage.as_str(), started.elapsed());
        match result {
            Some(Ok(message)) => {
                tracing::info!(job_id = %job.job_id, stage = stage.as_str(), %message, "stage done");
                let next = stage.next();
                if next != Stage::Done {
                    let event = (stage.as_str(), JobStatus::InProgress.as_str(), message.as_str());
                    if !jobs::advance_with_event(&ctx.pool, job.job_id, lease, next.as_str(), lease_secs(ctx), event).await? {
                        tracing::warn!(job_id = %job.job_id, "lease lost; another worker resumes the job");
                        return Ok(());
                    }
                }
                stage = next;
            }
            Some(Err(StageError::Fatal(reason))) => return fail(ctx, &job, lease, stage, &reason).await,
            Some(Err(StageError::Refused(reason))) => return refuse(ctx, &job, lease, stage, &reason).await,
            Some(Err(StageError::LeaseLost)) | None => {
                tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), "lease lost; another worker resumes the job");
                return Ok(());
            }
            Some(Err(StageError::Transient(e))) => {
                tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), error.cause_chain = ?e, "stage failed; will retry");
                if job.attempts >= MAX_ATTEMPTS {
                    return fail(ctx, &job, lease, stage, &format!("gave up after {MAX_ATTEMPTS} attempts: {e}")).await;
                }
                let backoff = f64::from(2u32.saturating_pow(job.attempts.clamp(0, 6).unsigned_abs())).min(60.0);
                let error = format!("{}: {e}", stage.as_str());
                if !jobs::release_for_retry(&ctx.pool, job.job_id, lease, &error, backoff).await? {
                    tracing::warn!(job_id = %job.job_id, "lease lost; another worker resumes the job");
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Runs a stage while renewing the lease; None when the lease was lost.
async fn with_lease<T>(ctx: &Context, job: &JobRow, lease: Lease, stage: impl Future<Output = T>) -> Option<T> {
    let every = Duration::from_secs_f64((lease_secs(ctx) / 3.0).max(0.2));
    tokio::pin!(stage);
    loop {
        tokio::select! {
            out = &mut stage => return Some(out),
            () = tokio::time::sleep(every) => {
                match jobs::renew_lease(&ctx.pool, job.job_id, lease, lease_secs(ctx)).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => tracing::warn!(error.cause_chain = ?e, "cannot renew the lease"),
                }
            }
        }
    }
}

/// Fails the job, unless another claim has taken it (then nothing is written).
async fn fail(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage, reason: &str) -> Result<(), StoreError> {
    let mut tx = ctx.pool.begin().await?;
    jobs::require_durable_commit(&mut tx).await?;
    let message = format!("{}: {reason}", stage.as_str());
    // What the job held of the person goes with it (under the lease: a
    // stale worker's transaction is dropped below): probes, the request's
    // identifiers, matched texts, planned ids.
    jobs::delete_probes(&mut *tx, job.job_id, lease).await?;
    jobs::delete_request_identifiers(&mut *tx, job.job_id, lease).await?;
    jobs::scrub_residuals(&mut *tx, job.job_id).await?;
    jobs::delete_plan_points(&mut *tx, job.job_id).await?;
    if !jobs::finish(&mut *tx, job.job_id, lease, JobStatus::Failed.as_str(), Some(&message)).await? {
        tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), reason, "lease lost; the failure is not recorded");
        return Ok(());
    }
    tracing::error!(job_id = %job.job_id, stage = stage.as_str(), reason, "erasure failed");
    jobs::insert_event(&mut *tx, job.job_id, Stage::Done.as_str(), JobStatus::Failed.as_str(), &message).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the job as refused because its subject was placed under legal hold
/// before anything was deleted: nothing of the person is touched, what the
/// job captured (probes, identifiers, planned ids) goes, the subject is
/// unfrozen, and the refusal is logged, as at `Erase`. Nothing is written
/// when another claim has taken the job.
async fn refuse(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage, reason: &str) -> Result<(), StoreError> {
    // Only a subject's own hold refuses a job; a retention job has no subject.
    let Some(subject_id) = job.subject_id else {
        return fail(ctx, job, lease, stage, &format!("refused without a subject: {reason}")).await;
    };
    let subject = lineage::subject_by_id(&ctx.pool, subject_id).await?;
    let mut tx = ctx.pool.begin().await?;
    jobs::require_durable_commit(&mut tx).await?;
    jobs::delete_probes(&mut *tx, job.job_id, lease).await?;
    jobs::delete_request_identifiers(&mut *tx, job.job_id, lease).await?;
    let error = format!("legal_hold: {reason}");
    if !jobs::finish(&mut *tx, job.job_id, lease, JobStatus::Refused.as_str(), Some(&error)).await? {
        tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), "lease lost; the refusal is not recorded");
        return Ok(());
    }
    tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), "erasure refused: legal hold");
    jobs::delete_plan_points(&mut *tx, job.job_id).await?;
    holds::unfreeze_subject(&mut *tx, subject_id).await?;
    let message = format!("{}: refused: the subject was placed under legal hold before anything was deleted", stage.as_str());
    jobs::insert_event(&mut *tx, job.job_id, Stage::Done.as_str(), JobStatus::Refused.as_str(), &message).await?;
    let refused = JobRow { status: JobStatus::Refused.as_str().to_owned(), error: Some(error), ..job.clone() };
    let body = super::report::refusal_body(&refused, &subject.subject_hash);
    crate::audit::append(&mut tx, &ctx.signer, job.tenant_id, "refusal", Some(job.job_id), Some(&subject.subject_hash), &body).await?;
    tx.commit().await?;
    Ok(())
}

async fn pause(ctx: &Context) {
    let ms = ctx.settings.erasure.stage_pause_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}
