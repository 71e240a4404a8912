//! Stages of several small subject jobs of a batch, together, where a job
//! alone makes about ten statements per stage:
//!
//! - freeze (`stages::freeze_many`, which a job alone runs too): the
//!   subjects read, locked in key order and frozen, and their holds read, in
//!   three statements for all of them;
//! - plan (`stages::plan_many`, which a job alone runs too): the subjects'
//!   chunks read at once, each collection counted once for all of them, one
//!   transaction recording every plan and probe;
//! - delete and verify: one read of their plans, one transaction holding
//!   the collections' and the tenants' hold locks, one fenced write and one
//!   backend call per collection for all of them;
//! - residual (`residual::run_many`, for jobs that have not searched yet):
//!   their inputs read at once, each tenant's collections once for all of
//!   their searches, one transaction recording every search; each job then
//!   applies its candidates alone (under `report`, nothing to apply);
//! - forget lineage: one transaction forgetting all their lineage;
//! - physical, for jobs without the guarantee: one statement recording it.
//!
//! After the plan, only jobs with nothing to tell apart go this way:
//! subject jobs whose tenant has no subject on legal hold (so nothing of
//! theirs is kept, and no hold of their own can refuse or stop them) and
//! whose plan holds at most [`SMALL`] points per collection; for verify,
//! only those of which nothing is left (a job with points left deletes
//! again alone, with its retries and its failure); for forget lineage, only
//! those with no point left in a backend. Every other job of the batch runs
//! its stage alone, as does every job when anything here fails or a lease
//! is lost mid-way: the stages are idempotent, and what this writes is what
//! each job alone writes, fenced by each job's own lease.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::stages::{StageError, StageResult, guard_collections};
use super::{physical, report};
use crate::context::Context;
use crate::domain::{Backend, Stage};
use crate::store::jobs::{self, After, JobRow, JobTarget, Lease, Planned};
use crate::store::progress::{self, PhysicalRecord};
use crate::store::{StoreError, holds, lineage};
use crate::vector_store::{Keep, Selector};

/// Most points per collection of a job taken through a stage with others:
/// a larger subject runs alone, through the statements tuned for it.
pub(super) const SMALL: usize = 1_000;

/// The stages several jobs of a batch can run together.
pub(super) const STAGES: [Stage; 7] =
    [Stage::Freeze, Stage::Plan, Stage::Delete, Stage::Verify, Stage::Residual, Stage::ForgetLineage, Stage::Physical];

/// A job taken through the stage with the others.
struct Member<'a> {
    job: &'a JobRow,
    lease: Lease,
    planned: Vec<Planned>,
}

impl Member<'_> {
    fn selector(&self, p: &Planned) -> Selector {
        Selector { tag: self.job.subject_tag.clone().filter(|t| !t.is_empty()), ids: p.points.clone() }
    }
}

/// Runs `stage` (one of [`STAGES`]) for the jobs of `batch` that can share
/// it; returns their results by job id. The others, absent, run it alone.
///
/// # Errors
/// Any failure: then every job runs the stage alone.
pub(super) async fn run(ctx: &Context, stage: Stage, batch: &[(&JobRow, Lease)]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    let subject_jobs: Vec<&(&JobRow, Lease)> = batch.iter().filter(|(job, _)| matches!(job.target(), JobTarget::Subject(_))).collect();
    if matches!(stage, Stage::Freeze | Stage::Plan | Stage::Residual) {
        let jobs: Vec<(&JobRow, Lease)> = subject_jobs.into_iter().copied().collect();
        return match stage {
            _ if jobs.len() < 2 => Ok(HashMap::new()),
            Stage::Freeze => {
                let subjects: Vec<(&JobRow, Lease, Uuid)> =
                    jobs.iter().filter_map(|(job, lease)| job.subject_id.map(|s| (*job, *lease, s))).collect();
                super::stages::freeze_many(ctx, &subjects).await
            }
            Stage::Plan => super::stages::plan_many(ctx, &jobs).await,
            _ => super::residual::run_many(ctx, &jobs).await,
        };
    }
    let ids: Vec<Uuid> = subject_jobs.iter().map(|(job, _)| job.job_id).collect();
    let mut plans = jobs::planned_many(&ctx.pool, &ids, matches!(stage, Stage::Delete | Stage::Verify)).await?;
    let mut members: Vec<Member<'_>> = Vec::with_capacity(subject_jobs.len());
    for (job, lease) in subject_jobs {
        let Some(planned) = plans.remove(&job.job_id) else { continue };
        let small = planned.iter().all(|p| {
            let per_request = ctx.stores.get(&p.spec).map_or(0, |s| s.ids_per_request(ctx.settings.erasure.delete_batch_size));
            p.points.len() <= SMALL.min(per_request)
        });
        if small {
            members.push(Member { job, lease: *lease, planned });
        }
    }
    if members.len() < 2 {
        return Ok(HashMap::new());
    }
    let tenants: Vec<Uuid> = members.iter().map(|m| m.job.tenant_id).collect::<BTreeSet<_>>().into_iter().collect();
    match stage {
        Stage::ForgetLineage => return forget(ctx, members, &tenants).await,
        Stage::Physical => return physical(ctx, members).await,
        _ => {}
    }
    let collections: BTreeSet<Uuid> = members.iter().flat_map(|m| m.planned.iter().map(|p| p.spec.collection_id)).collect();
    let mut guard = guard_collections(ctx, &collections.into_iter().collect::<Vec<_>>()).await?;
    let on_hold: HashSet<Uuid> = holds::lock_shared_many(&mut guard, &tenants).await?.into_iter().collect();
    members.retain(|m| !on_hold.contains(&m.job.tenant_id));
    let results = match stage {
        Stage::Delete => delete(ctx, &members).await?,
        Stage::Verify => verify(ctx, &members).await?,
        _ => HashMap::new(),
    };
    guard.commit().await.map_err(StoreError::from)?;
    Ok(results)
}

/// Each collection's points of every member, in one delete per collection.
async fn delete(ctx: &Context, members: &[Member<'_>]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    let leases: Vec<(Uuid, Lease)> = members.iter().map(|m| (m.job.job_id, m.lease)).collect();
    // Committed before the first delete, as alone: a hold seen after this
    // cannot claim that nothing was deleted (durably before Qdrant's).
    let durable = members.iter().flat_map(|m| &m.planned).any(|p| p.spec.backend != Backend::Pgvector);
    let held: HashSet<Uuid> = jobs::mark_deleting_started(&ctx.pool, &leases, durable).await?.into_iter().collect();
    let members: Vec<&Member<'_>> = members.iter().filter(|m| held.contains(&m.job.job_id)).collect();
    for (spec, of) in by_collection(&members) {
        let selectors: Vec<Selector> = of.iter().map(|(m, p)| m.selector(p)).collect();
        ctx.stores.get(spec)?.delete_many(spec, &selectors).await?;
    }
    Ok(results(&leases, &held, "deleted by tag and by lineage ids"))
}

/// Counts every member's points in each collection at once; those of which
/// nothing is left record their counts after, the others run alone.
async fn verify(ctx: &Context, members: &[Member<'_>]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    let all: Vec<&Member<'_>> = members.iter().collect();
    // What these counts find gone is what forget lineage may forget.
    let every: Vec<(Uuid, Lease)> = all.iter().map(|m| (m.job.job_id, m.lease)).collect();
    jobs::mark_verified_before(&ctx.pool, &every, None).await?;
    let mut after = Vec::new();
    let mut left: HashSet<Uuid> = HashSet::new();
    for (spec, of) in by_collection(&all) {
        let subjects: Vec<(Option<&str>, &[Uuid])> =
            of.iter().map(|(m, p)| (m.job.subject_tag.as_deref().filter(|t| !t.is_empty()), p.points.as_slice())).collect();
        let counts = ctx.stores.get(spec)?.count_tag_and_ids_many(spec, &subjects).await?;
        for ((m, _), counts) in of.iter().zip(counts) {
            if counts != [0, 0, 0] {
                left.insert(m.job.job_id);
            }
            let after_i = counts.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            after.push(After { job_id: m.job.job_id, lease: m.lease, collection_id: spec.collection_id, after: after_i, withheld: 0 });
        }
    }
    after.retain(|a| !left.contains(&a.job_id));
    let leases: Vec<(Uuid, Lease)> = all.iter().filter(|m| !left.contains(&m.job.job_id)).map(|m| (m.job.job_id, m.lease)).collect();
    let written: HashSet<Uuid> = jobs::set_after_many(&ctx.pool, &after).await?.into_iter().collect();
    // A job without collections has nothing to write and holds its lease
    // as far as this stage can tell (its advance is fenced).
    let held: HashSet<Uuid> =
        leases.iter().map(|(id, _)| *id).filter(|id| written.contains(id) || !after.iter().any(|a| a.job_id == *id)).collect();
    Ok(results(&leases, &held, "verified: no vector of the subject remains"))
}

/// Forgets every member's lineage and tombstones their subjects in one
/// transaction, as each would alone (`delete::forget_lineage`). Members
/// with points still in a backend (withheld, or left under a hold) run
/// alone: their chunks are kept.
async fn forget(ctx: &Context, mut members: Vec<Member<'_>>, tenants: &[Uuid]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    members.retain(|m| m.planned.iter().all(|p| p.counts.withheld == 0 && p.counts.after_total == Some(0)));
    let subject = |m: &Member<'_>| m.job.subject_id.unwrap_or_default();
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let on_hold: HashSet<Uuid> = holds::lock_shared_many(&mut tx, tenants).await?.into_iter().collect();
    members.retain(|m| !on_hold.contains(&m.job.tenant_id) && m.job.subject_id.is_some());
    if members.len() < 2 {
        return Ok(HashMap::new());
    }
    let subjects: Vec<Uuid> = members.iter().map(subject).collect();
    // Read before the tombstone clears them; recorded in the same transaction.
    let plaintext = lineage::holds_plaintext_many(&mut *tx, &subjects).await?;
    let forget: Vec<lineage::ForgetSubject> = members
        .iter()
        .map(|m| lineage::ForgetSubject { tenant_id: m.job.tenant_id, subject_id: subject(m), job_id: m.job.job_id })
        .collect();
    let result = lineage::forget_subjects_chunks(&mut tx, &forget, &[]).await?;
    // No member has a hold in its tenant (those run alone): nothing to keep.
    let tags: HashMap<Uuid, &str> =
        members.iter().filter_map(|m| Some((subject(m), m.job.subject_tag.as_deref().filter(|t| !t.is_empty())?))).collect();
    let settled = super::delete::settle_changed(ctx, &mut tx, &result.changed, &tags, &Keep::default()).await?;
    lineage::delete_empty_sources(&mut tx, &result.sources).await?;
    let people: Vec<crate::ingest::Forgotten<'_>> = members
        .iter()
        .map(|m| crate::ingest::Forgotten {
            tenant_id: m.job.tenant_id,
            subject_id: subject(m),
            tag: m.job.subject_tag.as_deref().unwrap_or_default(),
        })
        .collect();
    let unnamed = crate::ingest::unname_sources(ctx, &mut tx, &result.sources, &people).await?;
    let rewritten: HashSet<Uuid> = result.changed.iter().map(|(_, s, _)| *s).collect();
    let forgotten: HashMap<Uuid, u64> = subjects
        .iter()
        .map(|s| (*s, result.per_subject.get(s).copied().unwrap_or(0) + settled.forgotten(*s)))
        .collect();
    let tables: Vec<(Uuid, Lease, Vec<&str>)> = members
        .iter()
        .map(|m| {
            let (identifiers, external_id) = plaintext.get(&subject(m)).copied().unwrap_or_default();
            let written = forgotten[&subject(m)] > 0 || rewritten.contains(&subject(m));
            let mut tables = super::delete::personal_tables(written, identifiers, external_id);
            // Which member's kind it was is not told apart: every member's.
            if unnamed.dropped_rules > 0 {
                tables.push("retention_rules");
            }
            (m.job.job_id, m.lease, tables)
        })
        .collect();
    let held = progress::add_rewrite_tables_many(&mut *tx, &tables).await?;
    if held.len() < members.len() {
        // A member's lease was lost: nothing of this is written (the
        // transaction is dropped); the others forget alone.
        return Err(StageError::LeaseLost);
    }
    if crate::ingest::rekey_before_tombstone(ctx, &mut tx, &subjects).await? > 0 {
        // Other ids of these people were cleared: their old row versions
        // too (every member's job: which twin was whose is not kept).
        let tables: Vec<(Uuid, Lease, Vec<&str>)> =
            members.iter().map(|m| (m.job.job_id, m.lease, vec!["subjects", "subject_identifiers"])).collect();
        progress::add_rewrite_tables_many(&mut *tx, &tables).await?;
    }
    lineage::tombstone_subjects(&mut tx, &subjects).await?;
    let ids: Vec<Uuid> = members.iter().map(|m| m.job.job_id).collect();
    jobs::clear_subject_tags(&mut *tx, &ids).await?;
    tx.commit().await.map_err(StoreError::from)?;
    crate::ingest::relabel_points_after_rename(ctx, &unnamed.renamed).await;
    // After the commit: a rewrite that starts later finds the dead rows.
    let leases: Vec<(Uuid, Lease)> = members.iter().map(|m| (m.job.job_id, m.lease)).collect();
    let held: HashSet<Uuid> = progress::set_forgotten_many(&ctx.pool, &leases).await?.into_iter().collect();
    Ok(members
        .iter()
        .map(|m| {
            let n = forgotten.get(&subject(m)).copied().unwrap_or(0);
            let message = format!("{n} lineage chunks forgotten{}; the subject is a keyed-hash tombstone", settled.note(subject(m)));
            (m.job.job_id, if held.contains(&m.job.job_id) { Ok(message) } else { Err(StageError::LeaseLost) })
        })
        .collect())
}

/// Records the physical statuses of the members that did not ask for the
/// guarantee (nothing to reclaim or wait for: every collection pending, as
/// the backend leaves it, and Lethe's own tables as their job left them) in
/// one statement. The others run alone.
async fn physical(ctx: &Context, mut members: Vec<Member<'_>>) -> Result<HashMap<Uuid, StageResult>, StageError> {
    members.retain(|m| !m.job.guarantee_physical);
    if members.len() < 2 {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = members.iter().map(|m| m.job.job_id).collect();
    let mut tables = progress::rewrite_tables_many(&ctx.pool, &ids).await?;
    let mut records = Vec::with_capacity(members.len());
    for m in &members {
        let tables = tables.remove(&m.job.job_id).unwrap_or_default();
        // Always Some without the guarantee.
        let Some(lethe_tables) = physical::lethe_tables_without_rewrite(m.job, &tables) else { continue };
        let collections = m.planned.iter().map(|p| (p.spec.collection_id, physical::PENDING, report::pending_detail(p.spec.backend).to_owned())).collect();
        records.push(PhysicalRecord { job_id: m.job.job_id, lease: m.lease, collections, lethe_tables });
    }
    let held: HashSet<Uuid> = progress::record_physical_many(&ctx.pool, &records).await?.into_iter().collect();
    Ok(records
        .iter()
        .map(|r| {
            let message = physical::message(0, r.collections.len(), r.lethe_tables.0);
            (r.job_id, if held.contains(&r.job_id) { Ok(message) } else { Err(StageError::LeaseLost) })
        })
        .collect())
}

/// The members' planned collections, each with the members that planned it.
fn by_collection<'m, 'j>(members: &'m [&'m Member<'j>]) -> Vec<(&'m crate::domain::CollectionSpec, Vec<(&'m Member<'j>, &'m Planned)>)> {
    let mut grouped: Vec<(&crate::domain::CollectionSpec, Vec<(&Member<'j>, &Planned)>)> = Vec::new();
    for m in members {
        for p in &m.planned {
            match grouped.iter_mut().find(|(spec, _)| spec.collection_id == p.spec.collection_id) {
                Some((_, of)) => of.push((m, p)),
                None => grouped.push((&p.spec, vec![(m, p)])),
            }
        }
    }
    grouped
}

/// Each job's result: the message when its lease held it, else lease lost.
fn results(leases: &[(Uuid, Lease)], held: &HashSet<Uuid>, message: &str) -> HashMap<Uuid, StageResult> {
    leases
        .iter()
        .map(|(id, _)| (*id, if held.contains(id) { Ok(message.to_owned()) } else { Err(StageError::LeaseLost) }))
        .collect()
}
