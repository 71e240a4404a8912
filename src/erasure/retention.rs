//! The stages of a retention job: an erase job whose target is "these
//! sources of this collection" (fixed by the sweep that queued it, in
//! `retention_targets`) instead of "this subject". It runs under the same
//! worker, leases, fencing and retries as a subject's erasure, and shares its
//! delete, verify and physical stages:
//!
//! - freeze: nothing to freeze (no subject); states the target;
//! - plan: the sources' chunks in lineage, counted in the backend by id
//!   (counts before);
//! - delete / verify: by lineage ids; a source one of whose chunks is tagged
//!   with a subject under legal hold is kept whole (`holds`), counted as
//!   withheld;
//! - residual: none (a retention job erases documents, not a person);
//! - forget lineage: the deleted chunks with their texts, residual keys,
//!   tags and sources left empty;
//! - physical: as for a subject;
//! - log: a `retention` entry in the tenant's hash chain and a certificate.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::delete::kept_points;
use super::holds::Holds;
use super::report::{self, RetentionReport};
use super::stages::{StageError, StageResult, count_three, held, planned};
use crate::context::Context;
use crate::domain::{Backend, JobNote, JobStatus, Stage};
use crate::store::jobs::{self, JobRow, Lease};
use crate::store::{StoreError, lineage, progress, retention};
use crate::vector_store::Keep;

pub(super) async fn run(ctx: &Context, job: &JobRow, lease: Lease, stage: Stage, collection_id: Uuid) -> StageResult {
    match stage {
        Stage::Freeze => freeze(ctx, job).await,
        Stage::Plan => plan(ctx, job, lease, collection_id).await,
        Stage::Delete => super::delete::delete(ctx, job, lease).await,
        Stage::Verify => super::delete::verify(ctx, job, lease).await,
        Stage::Residual => Ok("no residual search: a retention job erases sources, not a person".into()),
        Stage::ForgetLineage => forget_lineage(ctx, job, lease, collection_id).await,
        Stage::Physical => super::physical::physical(ctx, job, lease).await,
        Stage::Log => log(ctx, job, lease, collection_id).await,
        Stage::Done => Ok(String::new()),
    }
}

async fn freeze(ctx: &Context, job: &JobRow) -> StageResult {
    let (sources, _) = retention::target_counts(&ctx.pool, job.job_id).await?;
    Ok(format!("{sources} sources past retention; no subject to freeze"))
}

async fn plan(ctx: &Context, job: &JobRow, lease: Lease, collection_id: Uuid) -> StageResult {
    let spec = lineage::collection_by_id(&ctx.pool, job.tenant_id, collection_id)
        .await?
        .ok_or_else(|| StageError::Fatal("the collection is no longer registered".into()))?;
    // Before anything is read (see `stages::plan_many`).
    let counted_from = jobs::database_now(&ctx.pool).await?;
    let sources = retention::targets(&ctx.pool, job.job_id).await?;
    let ids = retention::source_chunks(&ctx.pool, job.tenant_id, collection_id, &sources).await?;
    // The tagged ones in the backend now: an erasure of a subject may count
    // them too, and of the two jobs only the first logged is credited with a
    // point (see `plans::credit_points`; the subject's plan marks its chunks
    // of sources this old). Read before the counts, as a subject's plan does.
    let tagged = retention::tagged_chunks(&ctx.pool, job.tenant_id, &ids).await?;
    let contested: Vec<Uuid> = if tagged.is_empty() {
        Vec::new()
    } else {
        let mut present: Vec<Uuid> = ctx.stores.get(&spec)?.retrieve(&spec, &tagged, false).await?.into_iter().map(|p| p.id).collect();
        present.sort_unstable();
        present
    };
    // By lineage ids only: the points carry no tag that names a source.
    let before = count_three(ctx, &spec, "", &ids).await?;
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    held(jobs::hold(&mut tx, job.job_id, lease).await?)?;
    // Durable before Qdrant's deletes, as a subject's plan (see `stages::plan`).
    if spec.backend != Backend::Pgvector {
        jobs::require_durable_commit(&mut tx).await?;
    }
    let before_i = before.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let row = jobs::PlanRow {
        job_id: job.job_id,
        collection_id: spec.collection_id,
        collection_name: spec.name.as_str(),
        backend: spec.backend.as_str(),
        before: before_i,
        point_ids: &ids,
        contested: &contested,
    };
    jobs::record_plans(&mut tx, &[row], counted_from).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(format!("{} vectors of {} sources in `{}` to delete", before[2], sources.len(), spec.name))
}

/// The note of a job that kept sources under legal hold.
pub(super) fn withheld_note(points: i64) -> JobNote {
    JobNote::new(
        "legal_hold_withheld",
        Stage::Verify,
        format!(
            "{points} points were kept (withheld, per collection), because their sources hold chunks tagged with \
             subjects under legal hold; a sweep after the holds are lifted erases them."
        ),
    )
}

/// Forgets the lineage of the chunks the job deleted: their rows (texts,
/// residual index keys), tags, the ids of attached stores, and sources left
/// empty. Chunks still in the backend (their source held) keep theirs; their
/// sources are recorded as withheld. Idempotent: a second run finds nothing
/// more to forget and the same sources kept.
async fn forget_lineage(ctx: &Context, job: &JobRow, lease: Lease, collection_id: Uuid) -> StageResult {
    let ids: Vec<Uuid> = planned(ctx, job, true).await?.into_iter().flat_map(|p| p.points).collect();
    let in_backend = kept_points(ctx, job).await?;
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // Under the lease first: with nothing to forget, no write below checks it,
    // and a superseded worker's view of the holds would be recorded.
    held(jobs::hold(&mut tx, job.job_id, lease).await?)?;
    // Under the tenant's hold lock: a hold placed now waits for the commit.
    Holds::read(&mut tx, job).await?;
    let (mut keep, _) = retention::held_source_chunks(&mut *tx, job.tenant_id, &ids).await?;
    keep.extend(in_backend);
    keep.sort_unstable();
    keep.dedup();
    let forget: Vec<Uuid> = ids.iter().copied().filter(|c| keep.binary_search(c).is_err()).collect();
    let kept_sources = retention::sources_of(&mut *tx, job.tenant_id, &keep).await?;
    retention::set_withheld(&mut *tx, job.job_id, &kept_sources).await?;
    if !forget.is_empty() {
        // Their texts are dead rows until a rewrite (physical stage).
        held(progress::add_rewrite_tables(&mut *tx, job.job_id, lease, &["chunks", "sources", "chunk_subjects"]).await?)?;
    }
    // As an erasure's forget: a chunk written since the verify stage's
    // count is looked up in the backend before its lineage goes (its point
    // may be back); the others are forgotten at once.
    let since: HashSet<Uuid> =
        lineage::lock_written_since_count(&mut tx, job.tenant_id, job.job_id, collection_id, &forget).await?.into_iter().collect();
    let now: Vec<Uuid> = forget.iter().copied().filter(|c| !since.contains(c)).collect();
    let mut forgotten = lineage::delete_chunks(&mut tx, job.tenant_id, collection_id, &now).await?;
    // No subject: the chunks' tally goes under the nil id, and no tag marks
    // a point found as the job's own.
    let changed: Vec<(Uuid, Uuid, Uuid)> = since.iter().map(|c| (job.tenant_id, Uuid::nil(), *c)).collect();
    let settled = super::delete::settle_changed(ctx, &mut tx, &changed, &HashMap::new(), &Keep::default()).await?;
    forgotten += settled.forgotten(Uuid::nil());
    tx.commit().await.map_err(StoreError::from)?;
    held(progress::set_forgotten(&ctx.pool, job.job_id, lease).await?)?;
    let mut kept = if kept_sources.is_empty() {
        String::new()
    } else {
        format!(" ({} chunks of {} sources kept under legal hold)", keep.len(), kept_sources.len())
    };
    kept.push_str(&settled.note(Uuid::nil()));
    Ok(format!("{forgotten} lineage chunks forgotten with their texts{kept}"))
}

async fn log(ctx: &Context, job: &JobRow, lease: Lease, collection_id: Uuid) -> StageResult {
    let collection = lineage::collection_by_id(&ctx.pool, job.tenant_id, collection_id)
        .await?
        .map(|c| c.name.to_string())
        .unwrap_or_default();
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    jobs::require_durable_commit(&mut tx).await?;
    super::stages::credit_contested(ctx, &mut tx, &[(job.job_id, lease)]).await?;
    // As a subject's log stage: the job ends first, under the lease.
    held(jobs::finish(&mut *tx, job.job_id, lease, JobStatus::Completed.as_str(), None).await?)?;
    // The reason as stored now, under the row's lock (an erasure's rewrite
    // of it waits, or came first): not the one read when the job was claimed.
    let job = &JobRow { reason: jobs::reason(&mut *tx, job.job_id).await?, ..job.clone() };
    let counts = jobs::counts(&mut *tx, job.job_id).await?;
    let notes = progress::notes(&mut *tx, job.job_id).await?;
    let lineage_physical = progress::lineage_physical(&mut *tx, job.job_id).await?;
    let (sources, withheld_sources) = retention::target_counts(&mut *tx, job.job_id).await?;
    jobs::delete_plan_points(&mut *tx, &[job.job_id]).await?;
    let target = RetentionReport { collection: &collection, sources, withheld_sources };
    let outcome = report::Outcome {
        subject_hash: None,
        counts: &counts,
        notes: &notes,
        lineage_physical: &lineage_physical,
        retention: Some(target),
    };
    let body = report::erasure_body(job, &outcome);
    let (entry, _) = crate::audit::append(&mut tx, &ctx.signer, job.tenant_id, "retention", Some(job.job_id), None, &body).await?;
    let cert = report::certificate(ctx, job, &outcome, &entry);
    crate::store::log::insert_certificate(&mut tx, job.tenant_id, &cert).await?;
    let message = format!("log entry {} appended and certificate signed; completed", entry.seq);
    jobs::insert_event(&mut *tx, job.job_id, Stage::Log.as_str(), JobStatus::Completed.as_str(), &message).await?;
    tx.commit().await.map_err(StoreError::from)?;
    // As a subject's log stage, after the commit and best effort.
    if let Err(e) = crate::store::plans::prune_credits(&ctx.pool).await {
        tracing::warn!(error.cause_chain = ?e, "cannot prune point credits");
    }
    Ok(message)
}
