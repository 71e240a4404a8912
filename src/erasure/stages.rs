//! The stages of an erase job. Each is idempotent: running it again after a
//! crash gives the same result, because what it needs from earlier stages
//! (counts before, lineage ids, probes) was persisted by them.

use uuid::Uuid;

use super::report;
use crate::context::{Context, collection_lock_key, subject_lock_key};
use crate::domain::{CollectionSpec, JobStatus, Stage};
use crate::error::{LetheError, Result};
use crate::store::jobs::{self, JobRow, JobTarget, Lease, Planned, ProbeRow};
use crate::store::{StoreError, lineage};

/// Why a stage did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Try again later (backend or database unavailable, …).
    #[error(transparent)]
    Transient(#[from] LetheError),
    /// The job cannot succeed; fail it with this reason.
    #[error("{0}")]
    Fatal(String),
    /// Another worker has claimed the job since: stop, write nothing more.
    #[error("the job's lease is held by another claim")]
    LeaseLost,
    /// The subject is under legal hold and nothing has been deleted: refuse
    /// the job (the hold's reason).
    #[error("legal hold: {0}")]
    Refused(String),
}

/// `Ok` when a fenced write was applied, `LeaseLost` when it was refused.
pub(super) fn held(applied: bool) -> std::result::Result<(), StageError> {
    if applied { Ok(()) } else { Err(StageError::LeaseLost) }
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        Self::Transient(e.into())
    }
}

impl From<crate::vector_store::VectorStoreError> for StageError {
    fn from(e: crate::vector_store::VectorStoreError) -> Self {
        Self::Transient(e.into())
    }
}

pub(super) type StageResult = std::result::Result<String, StageError>;

/// Most of a subject's own chunks kept as probes for the semantic residual search.
const MAX_PROBES: usize = 256;

/// Runs one stage under `lease`; returns a short message for the job's
/// event stream. Its writes of the job's rows are conditional on the lease.
pub(super) async fn run(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage) -> StageResult {
    let subject_id = match job.target() {
        JobTarget::Subject(subject_id) => subject_id,
        JobTarget::Retention { collection_id } => return super::retention::run(ctx, job, lease, stage, collection_id).await,
    };
    match stage {
        Stage::Freeze => freeze(ctx, subject_id).await,
        Stage::Plan => plan(ctx, job, lease, subject_id).await,
        Stage::Delete => super::delete::delete(ctx, job, lease).await,
        Stage::Verify => super::delete::verify(ctx, job, lease).await,
        Stage::Residual => super::residual::run(ctx, job, lease, subject_id).await,
        Stage::ForgetLineage => super::delete::forget_lineage(ctx, job, lease, subject_id).await,
        Stage::Physical => super::physical::physical(ctx, job, lease).await,
        Stage::Log => log(ctx, job, lease).await,
        Stage::Done => Ok(String::new()),
    }
}

fn tag(job: &JobRow) -> &str {
    job.subject_tag.as_deref().unwrap_or_default()
}

/// Counts by tag, by ids, and both (union), exactly, in one collection.
pub(super) async fn count_three(ctx: &Context, spec: &CollectionSpec, tag: &str, ids: &[Uuid]) -> Result<[u64; 3]> {
    let store = ctx.stores.get(spec)?;
    let tag = (!tag.is_empty()).then_some(tag);
    Ok(store.count_tag_and_ids(spec, tag, ids).await?)
}

async fn freeze(ctx: &Context, subject_id: Uuid) -> StageResult {
    let subject = lineage::subject_by_id(&ctx.pool, subject_id).await?;
    // Waits for in-flight writes that checked the subject before the freeze.
    // A subject on hold is not frozen, and its job is refused.
    lineage::freeze_subject(&ctx.pool, subject_id, subject_lock_key(&subject.subject_hash)).await?;
    if let Some(reason) = crate::store::holds::own_hold(&ctx.pool, subject_id).await? {
        return Err(StageError::Refused(reason));
    }
    Ok("ingestion for the subject is suppressed".into())
}

async fn plan(ctx: &Context, job: &JobRow, lease: Lease, subject_id: Uuid) -> StageResult {
    let chunks = lineage::subject_chunks(&ctx.pool, subject_id).await?;
    let collections = lineage::list_collections(&ctx.pool, job.tenant_id).await?;
    let mut planned = Vec::with_capacity(collections.len());
    let mut probes = Vec::new();
    for spec in collections {
        let ids: Vec<Uuid> = chunks.iter().filter(|(c, _)| *c == spec.collection_id).map(|(_, p)| *p).collect();
        let before = count_three(ctx, &spec, tag(job), &ids).await?;
        // Probes serve only the semantic residual search.
        if ctx.settings.residual.semantic && probes.len() < MAX_PROBES && !ids.is_empty() {
            probes.extend(capture_probes(ctx, &spec, &ids[..ids.len().min(MAX_PROBES - probes.len())]).await?);
        }
        planned.push((spec, before, ids));
    }
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // Counts taken by a worker whose claim has been superseded may predate
    // (or follow) the new holder's deletes: they must not replace its plan.
    held(jobs::hold(&mut tx, job.job_id, lease).await?)?;
    // Durable even on the workers' asynchronous-commit pool when a Qdrant
    // collection is planned: the counts before must survive a server crash,
    // because the deletes that follow in Qdrant are not in Postgres' WAL and
    // would not be rolled back with them. pgvector's deletes are in the same
    // WAL, after this commit: a crash cannot keep them and lose the plan.
    if planned.iter().any(|(spec, _, _)| spec.backend != crate::domain::Backend::Pgvector) {
        jobs::require_durable_commit(&mut tx).await?;
    }
    let mut total = 0;
    for (spec, before, ids) in &planned {
        let before = before.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        total += before[2];
        let (name, backend) = (spec.name.as_str(), spec.backend.as_str());
        jobs::record_plan(&mut tx, job.job_id, spec.collection_id, name, backend, before, ids).await?;
    }
    if !probes.is_empty() || ctx.settings.residual.semantic {
        jobs::record_probes(&mut tx, job.job_id, &probes).await?;
    }
    if !probes.is_empty() {
        // The residual stage deletes them: dead rows of the person.
        held(crate::store::progress::add_rewrite_tables(&mut *tx, job.job_id, lease, &["erasure_probes"]).await?)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(format!("{total} vectors in {} collections to delete", planned.len()))
}

/// The subject's own vectors and texts, kept until the residual stage has used them.
async fn capture_probes(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid]) -> Result<Vec<ProbeRow>> {
    let points = ctx.stores.get(spec)?.retrieve(spec, ids, true).await?;
    let texts: std::collections::HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, spec.tenant_id, ids).await?.into_iter().collect();
    Ok(points
        .into_iter()
        .filter_map(|p| {
            let text = texts.get(&p.id).cloned().flatten().or(p.payload.text);
            p.vector.map(|vector| ProbeRow { collection_id: spec.collection_id, text, vector })
        })
        .collect())
}

/// The collections of the plan with their counts (and point ids if asked).
pub(super) async fn planned(ctx: &Context, job: &JobRow, with_points: bool) -> std::result::Result<Vec<Planned>, StageError> {
    Ok(jobs::planned(&ctx.pool, job.job_id, with_points).await?)
}

/// Holds the collections' locks shared for the life of the guard, so that a
/// re-index cannot switch generations in the middle of a stage's changes.
pub(super) async fn collection_guard(
    ctx: &Context,
    collections: &[Planned],
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, StageError> {
    let ids: Vec<Uuid> = collections.iter().map(|p| p.spec.collection_id).collect();
    guard_collections(ctx, &ids).await
}

/// [`collection_guard`] by collection id.
pub(super) async fn guard_collections(
    ctx: &Context,
    ids: &[Uuid],
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, StageError> {
    let mut guard = ctx.pool.begin().await.map_err(StoreError::from)?;
    let keys: Vec<i64> = ids.iter().map(|id| collection_lock_key(*id)).collect();
    lineage::lock_subject_shared(&mut guard, &keys).await?;
    Ok(guard)
}

async fn log(ctx: &Context, job: &JobRow, lease: Lease) -> StageResult {
    let mut logged = log_batch(ctx, &[(job.clone(), lease)]).await?;
    logged.pop().flatten().ok_or(StageError::LeaseLost)
}

/// The log stage of several subject jobs in one transaction (one durable
/// commit): each job still gets its own log entry and certificate, appended
/// in the order of `batch` within a tenant. Returns each job's event message,
/// None for a job whose lease no longer holds it (nothing is written for it).
/// Any failure writes nothing for any of them.
pub(super) async fn log_batch(ctx: &Context, batch: &[(JobRow, Lease)]) -> std::result::Result<Vec<Option<String>>, StageError> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    jobs::require_durable_commit(&mut tx).await?;
    // The jobs end first, under their leases: a worker whose claim has been
    // superseded writes nothing for that job, and the jobs' rows stay locked
    // until commit.
    let leases: Vec<(Uuid, Lease)> = batch.iter().map(|(job, lease)| (job.job_id, *lease)).collect();
    let completed: std::collections::HashMap<Uuid, jobs::Completed> =
        jobs::complete_many(&mut *tx, &leases).await?.into_iter().map(|c| (c.job_id, c)).collect();
    // Everything that does not need the log head first: appends of a tenant
    // queue on its head from `append` to commit. The ledger keeps the deleted
    // points as keyed hashes (restore guard) before the plan forgets their ids.
    let mut ready = Vec::with_capacity(completed.len());
    for (job, _) in batch {
        let (Some(done), JobTarget::Subject(subject_id)) = (completed.get(&job.job_id), job.target()) else { continue };
        let subject = lineage::subject_by_id(&mut *tx, subject_id).await?;
        // The counts as this lease holder's stages left them.
        let counts = jobs::counts(&mut *tx, job.job_id).await?;
        crate::restore::record_erasure(ctx, &mut tx, job, subject_id, &subject.subject_hash).await?;
        ready.push((job, done, subject.subject_hash, counts));
    }
    let ended: Vec<Uuid> = ready.iter().map(|(job, ..)| job.job_id).collect();
    jobs::delete_plan_points(&mut *tx, &ended).await?;
    jobs::scrub_residuals(&mut *tx, &ended).await?;
    // Heads are taken tenant by tenant, in the same order in every batch, so
    // that two batches cannot wait on each other's heads.
    ready.sort_by_key(|(job, ..)| job.tenant_id);
    let mut messages = std::collections::HashMap::with_capacity(ready.len());
    for (job, done, subject_hash, counts) in &ready {
        let notes: Vec<crate::domain::JobNote> = serde_json::from_value(done.notes.clone()).unwrap_or_default();
        let lineage_physical = (done.lineage_physical_status.clone(), done.lineage_physical_detail.clone());
        let outcome = report::Outcome {
            subject_hash: Some(subject_hash),
            counts,
            notes: &notes,
            lineage_physical: &lineage_physical,
            retention: None,
        };
        let body = report::erasure_body(job, &outcome);
        let (entry, _) = crate::audit::append(
            &mut tx,
            &ctx.signer,
            job.tenant_id,
            "erasure",
            Some(job.job_id),
            Some(subject_hash),
            &body,
        )
        .await?;
        let cert = report::certificate(ctx, job, &outcome, &entry);
        crate::store::log::insert_certificate(&mut tx, job.tenant_id, &cert).await?;
        let message = format!("log entry {} appended and certificate signed; completed", entry.seq);
        jobs::insert_event(&mut *tx, job.job_id, Stage::Log.as_str(), JobStatus::Completed.as_str(), &message).await?;
        messages.insert(job.job_id, message);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(batch.iter().map(|(job, _)| messages.remove(&job.job_id)).collect())
}
