//! The job worker: claims runnable jobs (`FOR UPDATE SKIP LOCKED` with a
//! lease), runs their stages in order, renews the lease while a stage runs,
//! and retries transient failures with back-off. Several workers, in one or
//! many processes, share the queue.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use super::bulk;
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
/// the shutdown keeps its persisted stage; its lease is released, so the next
/// claim (a restart) resumes it at once.
pub async fn run_worker_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let mut set = tokio::task::JoinSet::new();
    let owners: Vec<Uuid> = (0..ctx.settings.erasure.workers).map(|_| Uuid::new_v4()).collect();
    for owner in &owners {
        let (ctx, owner) = (ctx.clone(), *owner);
        set.spawn(async move { worker_loop(ctx, owner).await });
    }
    shutdown.await;
    set.shutdown().await;
    // The jobs these workers held are free for the next claim now, not when
    // their leases run out (a restart resumes them at once). Their stages
    // were stopped: nothing of them writes any more, and a new claim fences
    // them anyway.
    match jobs::release_leases_of(&ctx.pool, &owners).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "stopping: the running jobs' leases are released"),
        Err(e) => tracing::warn!(error.cause_chain = ?e, "stopping: cannot release the running jobs' leases; they expire"),
    }
}

async fn worker_loop(ctx: Context, owner: Uuid) {
    let poll = Duration::from_millis(ctx.settings.erasure.poll_interval_ms);
    loop {
        match try_execute_batch(&ctx, owner).await {
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
    // A turn at the pool while the job runs (`Context::slot`).
    let _turn = ctx.slot().await;
    let Some(job) = jobs::claim_job(&ctx.pool, owner, lease_secs(ctx)).await? else {
        return Ok(ExecutionOutcome::EmptyQueue);
    };
    let lease = Lease { owner, epoch: job.lease_epoch };
    let span = tracing::info_span!("erasure_job", job_id = %job.job_id, attempt = job.attempts);
    run_job(ctx, lease, job).instrument(span).await?;
    Ok(ExecutionOutcome::JobRan)
}

/// Claims up to `erasure.batch_size` jobs (no more than this worker's share
/// of the runnable ones: they are divided among this process's workers that
/// are idle, itself included) and runs them stage by stage together: each stage
/// of each job as [`try_execute_job`] would, then one statement moves every
/// job that finished it on, and the subject jobs at the log stage are logged
/// in one transaction. One statement renews every lease of the batch. A job
/// that fails, is refused or must be retried leaves the batch alone, as it
/// would alone; so does a job whose lease is lost (nothing more is written
/// for it). Every guarantee of a single job holds per job: its stage is
/// persisted, its writes are fenced by its own lease, and a crash mid-batch
/// leaves each job where its last advance put it.
///
/// # Errors
/// When the queue itself cannot be read.
pub async fn try_execute_batch(ctx: &Context, owner: Uuid) -> Result<ExecutionOutcome, StoreError> {
    // A turn at the pool while the batch runs (`Context::slot`).
    let _turn = ctx.slot().await;
    let settings = &ctx.settings.erasure;
    // A burst arrives a few jobs at a time: dividing the queue by every
    // worker gave each of the first claims one job (at four times a batched
    // job's statements) while most workers were already busy with theirs.
    let idle = settings.workers.saturating_sub(ctx.busy_workers.load(Ordering::Relaxed));
    let claimed = jobs::claim_jobs(&ctx.pool, owner, lease_secs(ctx), settings.batch_size, idle).await?;
    if claimed.is_empty() {
        return Ok(ExecutionOutcome::EmptyQueue);
    }
    let _busy = Busy::start(&ctx.busy_workers);
    let span = tracing::info_span!("erasure_batch", jobs = claimed.len());
    Batch::new(ctx, owner, &claimed).run(claimed).instrument(span).await?;
    Ok(ExecutionOutcome::JobRan)
}

/// One of [`Context::busy_workers`] while it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn start(busy: &'a AtomicUsize) -> Self {
        busy.fetch_add(1, Ordering::Relaxed);
        Self(busy)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A claimed job of a batch, at its persisted stage.
struct Member {
    job: JobRow,
    lease: Lease,
    stage: Stage,
}

/// Jobs one worker runs together.
struct Batch<'a> {
    ctx: &'a Context,
    owner: Uuid,
    /// The batch's jobs with the epochs of their claims, while this worker
    /// holds them: a job leaves when it ends, leaves the batch (a failure,
    /// a retry) or its lease is lost.
    held: std::collections::HashMap<Uuid, i64>,
    /// When every lease of the batch is renewed next.
    renew_at: tokio::time::Instant,
}

impl<'a> Batch<'a> {
    fn new(ctx: &'a Context, owner: Uuid, claimed: &[JobRow]) -> Self {
        let held = claimed.iter().map(|job| (job.job_id, job.lease_epoch)).collect();
        Self { ctx, owner, held, renew_at: tokio::time::Instant::now() + renew_every(ctx) }
    }

    async fn run(mut self, claimed: Vec<JobRow>) -> Result<(), StoreError> {
        let mut members: Vec<Member> = Vec::with_capacity(claimed.len());
        for job in claimed {
            let member = Member { lease: Lease { owner: self.owner, epoch: job.lease_epoch }, stage: job.stage.parse().unwrap_or(Stage::Freeze), job };
            if let Some(reason) = abandoned(&member.job) {
                self.held.remove(&member.job.job_id);
                fail(self.ctx, &member.job, member.lease, member.stage, &reason).await?;
                continue;
            }
            members.push(member);
        }
        while !members.is_empty() {
            pause(self.ctx).await;
            let (to_log, others): (Vec<Member>, Vec<Member>) =
                std::mem::take(&mut members).into_iter().partition(|m| m.stage == Stage::Log && !m.job.is_retention());
            let mut done = Vec::with_capacity(others.len());
            let mut together = self.together(&others).await;
            for member in others {
                if !self.holds(&member) {
                    continue;
                }
                let result = match together.remove(&member.job.job_id) {
                    Some(result) => Some(result),
                    None => {
                        let span = tracing::info_span!("erasure_job", job_id = %member.job.job_id, attempt = member.job.attempts);
                        let started = std::time::Instant::now();
                        let stage = stages::run(self.ctx, &member.job, member.lease, member.stage);
                        let result = self.with_leases(&[member.job.job_id], stage).instrument(span).await;
                        crate::metrics::observe_stage(member.stage.as_str(), started.elapsed());
                        result
                    }
                };
                match result {
                    Some(Ok(message)) => done.push((member, message)),
                    outcome => self.leave(&member, outcome).await?,
                }
            }
            members = self.advance(done).await?;
            self.log(to_log).await?;
        }
        Ok(())
    }

    /// Runs the stages that several members share (`bulk`) for them
    /// together; their results by job id. Members absent run their stage
    /// alone: every one of them when the shared run failed.
    async fn together(&mut self, members: &[Member]) -> HashMap<Uuid, stages::StageResult> {
        let mut results = HashMap::new();
        for stage in bulk::STAGES {
            let at: Vec<(&JobRow, Lease)> = members
                .iter()
                .filter(|m| m.stage == stage && self.held.contains_key(&m.job.job_id))
                .map(|m| (&m.job, m.lease))
                .collect();
            if at.len() < 2 {
                continue;
            }
            let ids: Vec<Uuid> = at.iter().map(|(job, _)| job.job_id).collect();
            let started = std::time::Instant::now();
            let span = tracing::info_span!("erasure_jobs", stage = stage.as_str(), jobs = at.len());
            match self.with_leases(&ids, bulk::run(self.ctx, stage, &at)).instrument(span).await {
                Some(Ok(ran)) => {
                    for _ in 0..ran.len() {
                        crate::metrics::observe_stage(stage.as_str(), started.elapsed());
                    }
                    results.extend(ran);
                }
                Some(Err(e)) => tracing::warn!(error.cause_chain = ?e, stage = stage.as_str(), "the batch's shared stage failed; its jobs run it one by one"),
                None => {}
            }
        }
        results
    }

    /// Whether the member is still this worker's; when not, says so once.
    fn holds(&self, member: &Member) -> bool {
        let holds = self.held.contains_key(&member.job.job_id);
        if !holds {
            tracing::warn!(job_id = %member.job.job_id, "lease lost; another worker resumes the job");
        }
        holds
    }

    /// Ends the member's part in the batch after a stage that did not complete.
    async fn leave(&mut self, member: &Member, outcome: Option<stages::StageResult>) -> Result<(), StoreError> {
        self.held.remove(&member.job.job_id);
        after_stage(self.ctx, &member.job, member.lease, member.stage, outcome).await
    }

    /// Runs a stage of the jobs `ids` while renewing every lease of the
    /// batch on time (`queue::beside_renewals`); None when the leases of all
    /// of `ids` were lost. Members whose lease was lost leave the batch.
    async fn with_leases<T>(&mut self, ids: &[Uuid], stage: impl Future<Output = T>) -> Option<T> {
        let Self { ctx, owner, held, renew_at } = self;
        let (pool, owner) = (&ctx.pool, *owner);
        let leases: Vec<(Uuid, i64)> = held.iter().map(|(id, epoch)| (*id, *epoch)).collect();
        let renew = || jobs::renew_leases(pool, owner, &leases, lease_secs(ctx));
        let still_held = |renewed: Result<Vec<Uuid>, StoreError>| {
            match renewed {
                Ok(renewed) => held.retain(|id, _| renewed.contains(id)),
                Err(e) => tracing::warn!(error.cause_chain = ?e, "cannot renew the batch's leases"),
            }
            ids.iter().any(|id| held.contains_key(id))
        };
        crate::queue::beside_renewals(stage, renew_at, renew_every(ctx), renew, still_held).await
    }

    /// Moves every member that finished its stage on, in one statement; the
    /// log stage ends a job itself.
    async fn advance(&mut self, done: Vec<(Member, String)>) -> Result<Vec<Member>, StoreError> {
        for (member, message) in &done {
            tracing::info!(job_id = %member.job.job_id, stage = member.stage.as_str(), %message, "stage done");
        }
        let (ended, moving): (Vec<_>, Vec<_>) = done.into_iter().partition(|(m, _)| m.stage.next() == Stage::Done);
        for (member, _) in ended {
            self.held.remove(&member.job.job_id);
        }
        if moving.is_empty() {
            return Ok(Vec::new());
        }
        let advances: Vec<jobs::Advance<'_>> = moving
            .iter()
            .map(|(m, message)| jobs::Advance {
                job_id: m.job.job_id,
                lease: m.lease,
                next_stage: m.stage.next().as_str(),
                done_stage: m.stage.as_str(),
                message,
            })
            .collect();
        let moved = jobs::advance_many(&self.ctx.pool, &advances, lease_secs(self.ctx)).await?;
        let mut next = Vec::with_capacity(moving.len());
        for (mut member, _) in moving {
            if moved.contains(&member.job.job_id) {
                member.stage = member.stage.next();
                next.push(member);
            } else {
                self.held.remove(&member.job.job_id);
                tracing::warn!(job_id = %member.job.job_id, "lease lost; another worker resumes the job");
            }
        }
        Ok(next)
    }

    /// Logs the members at the log stage in one transaction; if that fails,
    /// each alone, so that one job's trouble does not hold back the others.
    async fn log(&mut self, to_log: Vec<Member>) -> Result<(), StoreError> {
        let to_log: Vec<Member> = to_log.into_iter().filter(|m| self.holds(m)).collect();
        if to_log.is_empty() {
            return Ok(());
        }
        let batch: Vec<(JobRow, Lease)> = to_log.iter().map(|m| (m.job.clone(), m.lease)).collect();
        let started = std::time::Instant::now();
        match stages::log_batch(self.ctx, &batch).await {
            Ok(messages) => {
                crate::metrics::observe_stage(Stage::Log.as_str(), started.elapsed());
                for (member, message) in to_log.iter().zip(messages) {
                    self.held.remove(&member.job.job_id);
                    match message {
                        Some(message) => tracing::info!(job_id = %member.job.job_id, stage = "log", %message, "stage done"),
                        None => tracing::warn!(job_id = %member.job.job_id, "lease lost; another worker resumes the job"),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, jobs = to_log.len(), "the batch's log transaction failed; logging its jobs one by one");
                for member in to_log {
                    let stage = stages::run(self.ctx, &member.job, member.lease, Stage::Log);
                    match self.with_leases(&[member.job.job_id], stage).await {
                        Some(Ok(message)) => {
                            self.held.remove(&member.job.job_id);
                            tracing::info!(job_id = %member.job.job_id, stage = "log", %message, "stage done");
                        }
                        outcome => self.leave(&member, outcome).await?,
                    }
                }
            }
        }
        Ok(())
    }
}

fn renew_every(ctx: &Context) -> Duration {
    Duration::from_secs_f64((lease_secs(ctx) / 3.0).max(0.2))
}

fn lease_secs(ctx: &Context) -> f64 {
    // Lease durations are seconds in configuration; a few thousand at most.
    ctx.settings.erasure.lease_secs as f64
}

/// Why a claimed job is failed before it runs: claimed again and again
/// without ending (a stage that stops the process, out of memory or the
/// like, never reports a failure, and its job came back forever).
fn abandoned(job: &JobRow) -> Option<String> {
    (job.attempts > MAX_ATTEMPTS).then(|| format!("abandoned after {} claims without ending", job.attempts - 1))
}

async fn run_job(ctx: &Context, lease: Lease, job: JobRow) -> Result<(), StoreError> {
    let mut stage: Stage = job.stage.parse().unwrap_or(Stage::Freeze);
    if let Some(reason) = abandoned(&job) {
        return fail(ctx, &job, lease, stage, &reason).await;
    }
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
                    let advance = jobs::Advance {
                        job_id: job.job_id,
                        lease,
                        next_stage: next.as_str(),
                        done_stage: stage.as_str(),
                        message: &message,
                    };
                    if jobs::advance_many(&ctx.pool, &[advance], lease_secs(ctx)).await?.is_empty() {
                        tracing::warn!(job_id = %job.job_id, "lease lost; another worker resumes the job");
                        return Ok(());
                    }
                }
                stage = next;
            }
            outcome => return after_stage(ctx, &job, lease, stage, outcome).await,
        }
    }
    Ok(())
}

/// Ends a stage that did not complete: fails, refuses or releases the job
/// for a retry, or leaves it to the claim that took it.
async fn after_stage(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage, outcome: Option<stages::StageResult>) -> Result<(), StoreError> {
    match outcome {
        Some(Ok(_)) => Ok(()),
        Some(Err(StageError::Fatal(reason))) => fail(ctx, job, lease, stage, &reason).await,
        Some(Err(StageError::Refused(reason))) => refuse(ctx, job, lease, stage, &reason).await,
        Some(Err(StageError::LeaseLost)) | None => {
            tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), "lease lost; another worker resumes the job");
            Ok(())
        }
        Some(Err(StageError::Transient(e))) => {
            tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), error.cause_chain = ?e, "stage failed; will retry");
            let said = e.public_message();
            if job.attempts >= MAX_ATTEMPTS {
                return fail(ctx, job, lease, stage, &format!("gave up after {MAX_ATTEMPTS} attempts: {said}")).await;
            }
            let backoff = f64::from(2u32.saturating_pow(job.attempts.clamp(0, 6).unsigned_abs())).min(60.0);
            let error = format!("{}: {said}", stage.as_str());
            if !jobs::release_for_retry(&ctx.pool, job.job_id, lease, &error, backoff).await? {
                tracing::warn!(job_id = %job.job_id, "lease lost; another worker resumes the job");
            }
            Ok(())
        }
    }
}

/// Runs a stage while renewing the lease; None when the lease was lost.
async fn with_lease<T>(ctx: &Context, job: &JobRow, lease: Lease, stage: impl Future<Output = T>) -> Option<T> {
    let every = renew_every(ctx);
    let renew = || jobs::renew_lease(&ctx.pool, job.job_id, lease, lease_secs(ctx));
    let still_held = |renewed: Result<bool, StoreError>| {
        renewed.unwrap_or_else(|e| {
            tracing::warn!(error.cause_chain = ?e, "cannot renew the lease");
            true
        })
    };
    crate::queue::beside_renewals(stage, &mut (tokio::time::Instant::now() + every), every, renew, still_held).await
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
    if !jobs::finish(&mut *tx, job.job_id, lease, JobStatus::Failed.as_str(), Some(&message)).await? {
        tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), reason, "lease lost; the failure is not recorded");
        return Ok(());
    }
    tracing::error!(job_id = %job.job_id, stage = stage.as_str(), reason, "erasure failed");
    jobs::insert_event(&mut *tx, job.job_id, Stage::Done.as_str(), JobStatus::Failed.as_str(), &message).await?;
    if jobs::deleting_started(&mut *tx, job.job_id).await? {
        let subject = match job.subject_id {
            Some(id) => Some((id, lineage::subject_by_id(&mut *tx, id).await?.subject_hash)),
            None => None,
        };
        // What it deleted and no longer has lineage for (the lineage of its
        // points once forgotten, its residual deletions) goes into the
        // restore ledger as a completed erasure's does: a restore must not
        // bring it back unseen. Read before the planned ids are dropped.
        if let Some((subject_id, hash)) = &subject {
            crate::restore::record_erasures(ctx, &mut tx, &[(job, *subject_id, hash.as_slice())])
                .await
                .map_err(|e| {
                    // A tenant key that cannot be read: the failure is recorded later.
                    tracing::warn!(error.cause_chain = ?e, "cannot record a failed erasure's points in the ledger");
                    StoreError::Unavailable(sqlx::Error::Protocol(e.public_message()))
                })?;
        }
        // Points were deleted: the log says so, with the counts before (the
        // reason stays in the job: a backend's words are not the log's).
        let mut counts = jobs::counts_many(&mut *tx, &[job.job_id]).await?;
        let counts = counts.remove(&job.job_id).unwrap_or_default();
        let subject_hash = subject.map(|(_, hash)| hash);
        // The reason as stored now (see `jobs::reason`).
        let job = &JobRow { reason: jobs::reason(&mut *tx, job.job_id).await?, ..job.clone() };
        let body = super::report::failure_body(job, subject_hash.as_deref(), stage.as_str(), &counts);
        crate::audit::append(&mut tx, &ctx.signer, job.tenant_id, "failure", Some(job.job_id), subject_hash.as_deref(), &body).await?;
    }
    // What the job held of the person goes with it: matched texts, planned ids.
    jobs::scrub_residuals(&mut *tx, &[job.job_id]).await?;
    jobs::delete_plan_points(&mut *tx, &[job.job_id]).await?;
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
    // The reason as the hold gave it, unless it names the person.
    // Without the tenant key the reason cannot be checked against the
    // person's match keys: it is not copied (the record outlives them).
    let shown = match ctx.tenant_secret(job.tenant_id).await {
        Ok(secret) => {
            let who = crate::ingest::Named { row: &subject, id: subject.external_id.as_deref().unwrap_or_default(), given: &[] };
            crate::ingest::hold_reason_to_keep(&mut tx, &secret, who, reason).await?
        }
        Err(e) => {
            tracing::warn!(job_id = %job.job_id, error.cause_chain = ?e, "tenant key unavailable: the hold's reason is not copied");
            "(the hold's reason could not be checked: not copied)".to_owned()
        }
    };
    let error = format!("legal_hold: {shown}");
    if !jobs::finish(&mut *tx, job.job_id, lease, JobStatus::Refused.as_str(), Some(&error)).await? {
        tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), "lease lost; the refusal is not recorded");
        return Ok(());
    }
    tracing::warn!(job_id = %job.job_id, stage = stage.as_str(), "erasure refused: legal hold");
    jobs::delete_plan_points(&mut *tx, &[job.job_id]).await?;
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
