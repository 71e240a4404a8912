//! The stages of an erase job. Each is idempotent: running it again after a
//! crash gives the same result, because what it needs from earlier stages
//! (counts before, lineage ids, probes) was persisted by them.

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// Times a stage runs again at once when PostgreSQL rolled it back for a
/// conflict with another job's (`LetheError::is_conflict`).
const CONFLICT_RETRIES: u32 = 2;

/// Runs one stage under `lease`; returns a short message for the job's
/// event stream. Its writes of the job's rows are conditional on the lease.
///
/// A stage chosen as a deadlock's victim runs again at once (every stage is
/// idempotent, and its failed transaction wrote nothing), instead of waiting
/// for the job's retry: two erasures of people who share a chunk can
/// deadlock in forget lineage, one deleting the chunk and then the other's
/// tag on it, the other its own tag and then the chunk.
pub(super) async fn run(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage) -> StageResult {
    let mut again = 0;
    loop {
        match run_once(ctx, job, lease, stage).await {
            Err(StageError::Transient(e)) if again < CONFLICT_RETRIES && e.is_conflict() => {
                again += 1;
                tracing::info!(job_id = %job.job_id, stage = stage.as_str(), "rolled back for a conflict; running the stage again");
            }
            other => return other,
        }
    }
}

async fn run_once(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage) -> StageResult {
    let subject_id = match job.target() {
        JobTarget::Subject(subject_id) => subject_id,
        JobTarget::Retention { collection_id } => return super::retention::run(ctx, job, lease, stage, collection_id).await,
    };
    match stage {
        Stage::Freeze => freeze(ctx, job, lease, subject_id).await,
        Stage::Plan => plan(ctx, job, lease).await,
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

async fn freeze(ctx: &Context, job: &JobRow, lease: Lease, subject_id: Uuid) -> StageResult {
    freeze_many(ctx, &[(job, lease, subject_id)]).await?.remove(&job.job_id).unwrap_or(Err(StageError::LeaseLost))
}

/// The freeze stage of several subject jobs (`(job, subject)`, a batch's):
/// their subjects read, frozen and checked for holds in three statements,
/// whatever their number. Each job's result is the one it would get alone.
pub(super) async fn freeze_many(ctx: &Context, batch: &[(&JobRow, Lease, Uuid)]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    let ids: Vec<Uuid> = batch.iter().map(|(_, _, subject_id)| *subject_id).collect();
    let subjects = lineage::subjects_by_ids(&ctx.pool, &ids).await?;
    let keys: Vec<(Uuid, i64, Uuid, Lease)> = batch
        .iter()
        .filter_map(|(job, lease, id)| subjects.get(id).map(|s| (s.subject_id, subject_lock_key(&s.subject_hash), job.job_id, *lease)))
        .collect();
    // Waits for in-flight writes that checked the subjects before the freeze.
    // A subject on hold is not frozen, and its job is refused.
    lineage::freeze_subjects(&ctx.pool, &keys).await?;
    let mut held = crate::store::holds::own_holds(&ctx.pool, &ids).await?;
    Ok(batch
        .iter()
        .map(|(job, _, subject_id)| {
            let result = if !subjects.contains_key(subject_id) {
                // As before batches: a subject row that is gone is the database's
                // "no row" (retried, then failed).
                Err(StoreError::from(sqlx::Error::RowNotFound).into())
            } else if let Some(reason) = held.remove(subject_id) {
                Err(StageError::Refused(reason))
            } else {
                Ok("ingestion for the subject is suppressed".into())
            };
            (job.job_id, result)
        })
        .collect())
}

async fn plan(ctx: &Context, job: &JobRow, lease: Lease) -> StageResult {
    plan_many(ctx, &[(job, lease)]).await?.remove(&job.job_id).unwrap_or(Err(StageError::LeaseLost))
}

/// The plan stage of several subject jobs (a batch's): their chunks read
/// at once, each collection counted once for all of them, and one
/// transaction recording every plan. Each job's plan is the one it would
/// make alone; a job whose lease no longer holds it gets `LeaseLost` and
/// nothing is written for it.
pub(super) async fn plan_many(ctx: &Context, batch: &[(&JobRow, Lease)]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    // Before anything is read: credits given after it may be of points the
    // reads below count (`plans::credit_points`).
    let counted_from = jobs::database_now(&ctx.pool).await?;
    let subjects: Vec<Uuid> = batch.iter().filter_map(|(job, _)| job.subject_id).collect();
    let chunks = lineage::subjects_chunks(&ctx.pool, &subjects).await?;
    // Every job has a plan, if only of no collection (a tenant without any).
    let mut plans: HashMap<Uuid, Plan> = batch.iter().map(|(job, _)| (job.job_id, Plan::default())).collect();
    let tenants: BTreeSet<Uuid> = batch.iter().map(|(job, _)| job.tenant_id).collect();
    for tenant_id in tenants {
        let of: Vec<&JobRow> = batch.iter().map(|(job, _)| *job).filter(|job| job.tenant_id == tenant_id).collect();
        for spec in lineage::list_collections(&ctx.pool, tenant_id).await? {
            let here = |job: &JobRow| -> Vec<lineage::SubjectChunk> {
                let mine = job.subject_id.and_then(|s| chunks.get(&s)).map_or(&[][..], Vec::as_slice);
                mine.iter().filter(|c| c.collection_id == spec.collection_id).copied().collect()
            };
            let of_jobs: Vec<Vec<lineage::SubjectChunk>> = of.iter().map(|job| here(job)).collect();
            let ids: Vec<Vec<Uuid>> = of_jobs.iter().map(|cs| cs.iter().map(|c| c.chunk_id).collect()).collect();
            let subjects: Vec<(Option<&str>, &[Uuid])> =
                of.iter().zip(&ids).map(|(job, ids)| (Some(tag(job)).filter(|t| !t.is_empty()), ids.as_slice())).collect();
            let store = ctx.stores.get(&spec)?;
            // Points in chunks shared with other subjects, in the backend now:
            // another erasure may count them too (see `plans::credit_points`);
            // so may a retention job, of a source old enough for the
            // collection's rules. Read before the counts, so that a point
            // counted is one read here (a point deleted in between is left to
            // the other job's credit).
            let aged: HashSet<Uuid> = crate::store::retention::within_reach(&ctx.pool, &spec, &ids.concat()).await?.into_iter().collect();
            let contestable = |c: &lineage::SubjectChunk| c.shared || aged.contains(&c.chunk_id);
            let candidates: Vec<Uuid> = of_jobs.iter().flatten().filter(|c| contestable(c)).map(|c| c.chunk_id).collect();
            let present: HashSet<Uuid> = if candidates.is_empty() {
                HashSet::new()
            } else {
                store.retrieve(&spec, &candidates, false).await?.into_iter().map(|p| p.id).collect()
            };
            let contested: Vec<Vec<Uuid>> = of_jobs
                .iter()
                .map(|cs| cs.iter().filter(|c| contestable(c) && present.contains(&c.chunk_id)).map(|c| c.chunk_id).collect())
                .collect();
            let counts = match subjects.as_slice() {
                [(tag, ids)] => vec![store.count_tag_and_ids(&spec, *tag, ids).await?],
                _ => store.count_tag_and_ids_many(&spec, &subjects).await?,
            };
            // Probes serve only the semantic residual search.
            let mut wanted: Vec<(Uuid, &[Uuid])> = Vec::new();
            for (job, ids) in of.iter().zip(&ids) {
                let plan = plans.entry(job.job_id).or_default();
                let room = MAX_PROBES.saturating_sub(plan.probes.len());
                if ctx.settings.residual.semantic && room > 0 && !ids.is_empty() {
                    wanted.push((job.job_id, &ids[..ids.len().min(room)]));
                }
            }
            let captured = capture_probes(ctx, &spec, &wanted.iter().flat_map(|(_, ids)| ids.iter().copied()).collect::<Vec<_>>()).await?;
            for (job_id, ids) in wanted {
                let probes = &mut plans.entry(job_id).or_default().probes;
                probes.extend(ids.iter().filter_map(|id| captured.get(id).cloned()));
            }
            for (((job, ids), counts), contested) in of.iter().zip(ids).zip(counts).zip(contested) {
                plans.entry(job.job_id).or_default().collections.push(PlannedIn { spec: spec.clone(), counts, ids, contested });
            }
        }
    }
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // Counts taken by a worker whose claim has been superseded may predate
    // (or follow) the new holder's deletes: they must not replace its plan.
    let leases: Vec<(Uuid, Lease)> = batch.iter().map(|(job, lease)| (job.job_id, *lease)).collect();
    let held: HashSet<Uuid> = jobs::hold_many(&mut tx, &leases).await?.into_iter().collect();
    plans.retain(|job_id, _| held.contains(job_id));
    // Durable even on the workers' asynchronous-commit pool when a Qdrant
    // collection is planned: the counts before must survive a server crash,
    // because the deletes that follow in Qdrant are not in Postgres' WAL and
    // would not be rolled back with them. pgvector's deletes are in the same
    // WAL, after this commit: a crash cannot keep them and lose the plan.
    if plans.values().flat_map(|p| &p.collections).any(|p| p.spec.backend != crate::domain::Backend::Pgvector) {
        jobs::require_durable_commit(&mut tx).await?;
    }
    let before = |n: [u64; 3]| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let rows: Vec<jobs::PlanRow<'_>> = plans
        .iter()
        .flat_map(|(job_id, plan)| {
            plan.collections.iter().map(|p| jobs::PlanRow {
                job_id: *job_id,
                collection_id: p.spec.collection_id,
                collection_name: p.spec.name.as_str(),
                backend: p.spec.backend.as_str(),
                before: before(p.counts),
                point_ids: &p.ids,
                contested: &p.contested,
            })
        })
        .collect();
    jobs::record_plans(&mut tx, &rows, counted_from).await?;
    let probes: Vec<(Uuid, &[ProbeRow])> = plans
        .iter()
        .filter(|(_, plan)| !plan.probes.is_empty() || ctx.settings.residual.semantic)
        .map(|(job_id, plan)| (*job_id, plan.probes.as_slice()))
        .collect();
    jobs::record_probes_many(&mut tx, &probes).await?;
    // The residual stage deletes them: dead rows of the person.
    let with_probes: Vec<(Uuid, Lease, Vec<&str>)> = leases
        .iter()
        .filter(|(job_id, _)| plans.get(job_id).is_some_and(|p| !p.probes.is_empty()))
        .map(|(job_id, lease)| (*job_id, *lease, vec!["erasure_probes"]))
        .collect();
    if crate::store::progress::add_rewrite_tables_many(&mut *tx, &with_probes).await?.len() < with_probes.len() {
        return Err(StageError::LeaseLost);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(leases
        .iter()
        .map(|(job_id, _)| {
            let result = match plans.get(job_id) {
                Some(plan) => {
                    let total: u64 = plan.collections.iter().map(|p| p.counts[2]).sum();
                    Ok(format!("{total} vectors in {} collections to delete", plan.collections.len()))
                }
                None => Err(StageError::LeaseLost),
            };
            (*job_id, result)
        })
        .collect())
}

/// What the plan stage found for one job: per collection the counts before
/// and the lineage point ids, and the probes.
#[derive(Default)]
struct Plan {
    collections: Vec<PlannedIn>,
    probes: Vec<ProbeRow>,
}

/// One collection of a plan: counts before, lineage ids, and the contested
/// ones among them (in chunks shared with other subjects, in the backend).
struct PlannedIn {
    spec: CollectionSpec,
    counts: [u64; 3],
    ids: Vec<Uuid>,
    contested: Vec<Uuid>,
}

/// The subject's own vectors and texts, kept until the residual stage has
/// used them, by point id.
async fn capture_probes(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid]) -> Result<HashMap<Uuid, ProbeRow>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let points = ctx.stores.get(spec)?.retrieve(spec, ids, true).await?;
    let texts: HashMap<Uuid, Option<String>> = lineage::chunk_texts(&ctx.pool, spec.tenant_id, ids).await?.into_iter().collect();
    Ok(points
        .into_iter()
        .filter_map(|p| {
            let text = texts.get(&p.id).cloned().flatten().or(p.payload.text);
            p.vector.map(|vector| (p.id, ProbeRow { collection_id: spec.collection_id, text, vector }))
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
    credit_contested(ctx, &mut tx, &leases).await?;
    let completed: std::collections::HashMap<Uuid, jobs::Completed> =
        jobs::complete_many(&mut *tx, &leases).await?.into_iter().map(|c| (c.job_id, c)).collect();
    // Everything that does not need the log head first: appends of a tenant
    // queue on its head from `append` to commit. The ledger keeps the deleted
    // points as keyed hashes (restore guard) before the plan forgets their ids.
    let ended: Vec<&JobRow> = batch.iter().map(|(job, _)| job).filter(|job| completed.contains_key(&job.job_id)).collect();
    let subject_ids: Vec<Uuid> = ended.iter().filter_map(|job| job.subject_id).collect();
    let mut subjects = lineage::subjects_by_ids(&mut *tx, &subject_ids).await?;
    let ended_ids: Vec<Uuid> = ended.iter().map(|job| job.job_id).collect();
    // The counts as this lease holder's stages left them.
    let mut counts = jobs::counts_many(&mut *tx, &ended_ids).await?;
    let mut ready = Vec::with_capacity(ended.len());
    let mut erased = Vec::with_capacity(ended.len());
    for job in ended {
        let (Some(done), JobTarget::Subject(subject_id)) = (completed.get(&job.job_id), job.target()) else { continue };
        let subject = subjects.remove(&subject_id).ok_or_else(|| StoreError::from(sqlx::Error::RowNotFound))?;
        erased.push((job, subject_id));
        ready.push((job, done, subject.subject_hash, counts.remove(&job.job_id).unwrap_or_default()));
    }
    let erased: Vec<(&JobRow, Uuid, &[u8])> =
        erased.iter().zip(&ready).map(|((job, subject_id), (.., hash, _))| (*job, *subject_id, hash.as_slice())).collect();
    crate::restore::record_erasures(ctx, &mut tx, &erased).await?;
    let ended: Vec<Uuid> = ready.iter().map(|(job, ..)| job.job_id).collect();
    jobs::delete_plan_points(&mut *tx, &ended).await?;
    jobs::scrub_residuals(&mut *tx, &ended).await?;
    // Heads are taken tenant by tenant, in the same order in every batch, so
    // that two batches cannot wait on each other's heads; each tenant's
    // entries are appended in the batch's order, in one append.
    ready.sort_by_key(|(job, ..)| job.tenant_id);
    let mut messages = std::collections::HashMap::with_capacity(ready.len());
    let mut certificates = Vec::with_capacity(ready.len());
    for of in ready.chunk_by(|a, b| a.0.tenant_id == b.0.tenant_id) {
        let tenant_id = of[0].0.tenant_id;
        let (mut new, mut reported) = (Vec::with_capacity(of.len()), Vec::with_capacity(of.len()));
        for (job, done, subject_hash, counts) in of {
            let notes: Vec<crate::domain::JobNote> = serde_json::from_value(done.notes.clone()).unwrap_or_default();
            let lineage_physical = (done.lineage_physical_status.clone(), done.lineage_physical_detail.clone());
            let outcome = erasure_outcome(subject_hash, counts, &notes, &lineage_physical);
            let body = serde_json::to_string(&report::erasure_body(job, &outcome)).map_err(|e| StageError::Fatal(e.to_string()))?;
            new.push(crate::audit::NewEntry { kind: "erasure", job_id: Some(job.job_id), subject_hash: Some(subject_hash), body });
            reported.push((notes, lineage_physical));
        }
        let (appended, _) = crate::audit::append_many(&mut tx, &ctx.signer, tenant_id, new).await?;
        for (((job, _, subject_hash, counts), (notes, lineage_physical)), entry) in of.iter().zip(&reported).zip(&appended) {
            let outcome = erasure_outcome(subject_hash, counts, notes, lineage_physical);
            certificates.push((job.tenant_id, report::certificate(ctx, job, &outcome, entry)));
            messages.insert(job.job_id, format!("log entry {} appended and certificate signed; completed", entry.seq));
        }
    }
    let certs: Vec<(Uuid, &crate::store::log::CertificateRow)> = certificates.iter().map(|(t, c)| (*t, c)).collect();
    crate::store::log::insert_certificates(&mut tx, &certs).await?;
    let events: Vec<(Uuid, &str)> = ended.iter().filter_map(|id| messages.get(id).map(|m| (*id, m.as_str()))).collect();
    jobs::insert_events(&mut *tx, &events, Stage::Log.as_str(), JobStatus::Completed.as_str()).await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Credits no plan can ask for any more go, after the commit (inside it,
    // the delete could wait on another log stage's credit rows while that
    // one waits on this one's). Best effort: the next log stage tries again.
    if let Err(e) = crate::store::plans::prune_credits(&ctx.pool).await {
        tracing::warn!(error.cause_chain = ?e, "cannot prune point credits");
    }
    Ok(batch.iter().map(|(job, _)| messages.remove(&job.job_id)).collect())
}

/// Credits each job of the batch whose lease holds it with the contested
/// points it counted that are gone, unless another erasure logged since it
/// counted them is credited (`plans::credit_points`); the others are noted
/// as deleted elsewhere. Jobs are taken in the batch's order: of two in it
/// that share a point, the first is credited.
pub(super) async fn credit_contested(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    leases: &[(Uuid, Lease)],
) -> std::result::Result<(), StageError> {
    let ids: Vec<Uuid> = leases.iter().map(|(id, _)| *id).collect();
    let contested = jobs::contested_many(&mut **tx, &ids).await?;
    if contested.is_empty() {
        return Ok(());
    }
    let holding: HashSet<Uuid> = jobs::hold_many(tx, leases).await?.into_iter().collect();
    let mut elsewhere: HashMap<Uuid, i64> = HashMap::new();
    for (job_id, lease) in leases.iter().filter(|(id, _)| holding.contains(id)) {
        for c in contested.iter().filter(|c| c.job_id == *job_id) {
            let Some(spec) = crate::store::collections::collection_by_id(&mut **tx, c.tenant_id, c.collection_id).await? else { continue };
            let present: HashSet<Uuid> = ctx.stores.get(&spec)?.retrieve(&spec, &c.points, false).await?.into_iter().map(|p| p.id).collect();
            let gone: Vec<Uuid> = c.points.iter().copied().filter(|p| !present.contains(p)).collect();
            *elsewhere.entry(*job_id).or_default() += jobs::credit_points(tx, c, &gone).await?;
        }
        if let Some(n) = elsewhere.get(job_id).filter(|n| **n > 0) {
            let note = crate::domain::JobNote::new(
                "deleted_by_another_erasure",
                Stage::Log,
                format!(
                    "{n} points counted before were deleted by another erasure running at the same time (of a subject \
                     they are shared with, or a retention job of their source), whose certificate counts them: they \
                     are not in `deleted` here"
                ),
            );
            held(crate::store::progress::set_note(&mut **tx, *job_id, *lease, &note).await?)?;
        }
    }
    Ok(())
}

/// What an erasure's log entry and certificate report.
fn erasure_outcome<'a>(
    subject_hash: &'a [u8],
    counts: &'a [jobs::CountRow],
    notes: &'a [crate::domain::JobNote],
    lineage_physical: &'a (String, String),
) -> report::Outcome<'a> {
    report::Outcome { subject_hash: Some(subject_hash), counts, notes, lineage_physical, retention: None }
}
