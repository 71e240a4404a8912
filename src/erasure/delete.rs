//! The erase job's destructive stages on the person's own data: delete
//! (by tag and lineage ids), verify (count again, delete again) and forget
//! lineage. Each reads the legal holds in its transaction (see `holds`).

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::holds::{Holds, own_hold_note, withheld_note};
use super::stages::{StageError, StageResult, collection_guard, count_three, held, planned};
use crate::context::Context;
use crate::domain::{Backend, CollectionSpec, Stage};
use crate::store::jobs::{self, JobRow, Lease, Planned};
use crate::store::{StoreError, holds, lineage, progress};
use crate::vector_store::{Keep, Selector};

fn tag(job: &JobRow) -> Option<&str> {
    job.subject_tag.as_deref().filter(|t| !t.is_empty())
}

pub(super) async fn delete(ctx: &Context, job: &JobRow, lease: Lease) -> StageResult {
    let collections = planned(ctx, job, true).await?;
    let mut guard = collection_guard(ctx, &collections).await?;
    let holds = Holds::read(&mut guard, job).await?;
    if let Some(reason) = holds.own {
        // Asked of the table, under the hold's lock: the row read at the
        // claim predates a delete this stage made before (a batch's shared
        // delete that failed halfway and left its jobs to run it alone).
        if !jobs::deleting_started(&mut *guard, job.job_id).await? {
            return Err(StageError::Refused(reason));
        }
        let note = own_hold_note(Stage::Delete, "Nothing more was deleted");
        held(progress::set_note(&mut *guard, job.job_id, lease, &note).await?)?;
        guard.commit().await.map_err(StoreError::from)?;
        return Ok("the subject is under legal hold: nothing more was deleted".into());
    }
    // Committed before the first delete: a hold seen after this cannot
    // claim that nothing was deleted.
    let durable = collections.iter().any(|p| p.spec.backend != Backend::Pgvector);
    held(!jobs::mark_deleting_started(&ctx.pool, &[(job.job_id, lease)], durable).await?.is_empty())?;
    for p in &collections {
        let keep = holds.keep(ctx, job, &p.points).await?;
        delete_in(ctx, job, &p.spec, &p.points, &keep).await?;
    }
    guard.commit().await.map_err(StoreError::from)?;
    Ok("deleted by tag and by lineage ids".into())
}

async fn delete_in(ctx: &Context, job: &JobRow, spec: &CollectionSpec, ids: &[Uuid], keep: &Keep) -> Result<(), StageError> {
    let store = ctx.stores.get(spec)?;
    let mut tag = tag(job).map(str::to_owned);
    if !keep.is_empty() {
        // Another subject on hold shares some of these points (rare): one request.
        store.delete_keeping(spec, &Selector { tag, ids: ids.to_vec() }, keep).await?;
        return Ok(());
    }
    // The tag travels with the first batch of ids: one round trip for a small subject.
    for batch in ids.chunks(store.ids_per_request(ctx.settings.erasure.delete_batch_size).max(1)) {
        store.delete(spec, &Selector { tag: tag.take(), ids: batch.to_vec() }).await?;
    }
    if let Some(tag) = tag {
        store.delete(spec, &Selector::by_tag(&tag)).await?;
    }
    Ok(())
}

/// [`count_three`] without the points `keep` selects.
async fn count_three_keeping(
    ctx: &Context,
    spec: &CollectionSpec,
    tag: Option<&str>,
    ids: &[Uuid],
    keep: &Keep,
) -> Result<[u64; 3], StageError> {
    if keep.is_empty() {
        return Ok(count_three(ctx, spec, tag.unwrap_or_default(), ids).await?);
    }
    let store = ctx.stores.get(spec)?;
    let by_tag = match tag {
        Some(t) => store.count_keeping(spec, &Selector::by_tag(t), keep).await?,
        None => 0,
    };
    let by_ids = store.count_keeping(spec, &Selector::by_ids(ids.to_vec()), keep).await?;
    let both = store.count_keeping(spec, &Selector { tag: tag.map(str::to_owned), ids: ids.to_vec() }, keep).await?;
    Ok([by_tag, by_ids, both])
}

pub(super) async fn verify(ctx: &Context, job: &JobRow, lease: Lease) -> StageResult {
    let retries = ctx.settings.erasure.verify_retries;
    let collections = planned(ctx, job, true).await?;
    let mut guard = collection_guard(ctx, &collections).await?;
    let holds = Holds::read(&mut guard, job).await?;
    let (mut withheld, mut left_under_own_hold) = (0, 0);
    for Planned { spec, points: ids, .. } in &collections {
        let keep = holds.keep(ctx, job, ids).await?;
        let mut attempt = 0;
        let left = loop {
            // What this count finds gone is what forget lineage may forget.
            jobs::mark_verified_before(&ctx.pool, &[(job.job_id, lease)], Some(spec.collection_id)).await?;
            let left = count_three_keeping(ctx, spec, tag(job), ids, &keep).await?;
            if left == [0, 0, 0] || attempt >= retries || holds.own.is_some() {
                break left;
            }
            attempt += 1;
            tracing::warn!(job_id = %job.job_id, collection = %spec.name, ?left, attempt, "points remain; deleting again");
            delete_in(ctx, job, spec, ids, &keep).await?;
        };
        // The truth after: every point of the subject still there, the
        // ones kept under another subject's hold among them.
        let after = if keep.is_empty() { left } else { count_three(ctx, spec, tag(job).unwrap_or_default(), ids).await? };
        let kept = i64::try_from(after[2].saturating_sub(left[2])).unwrap_or(i64::MAX);
        let after_i = after.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        held(jobs::set_after(&ctx.pool, job.job_id, lease, spec.collection_id, after_i, kept).await?)?;
        withheld += kept;
        if left != [0, 0, 0] && holds.own.is_some() {
            left_under_own_hold += left[2];
        } else if left != [0, 0, 0] {
            return Err(StageError::Fatal(format!(
                "verification failed in collection `{}`: {} points remain ({} by tag, {} by lineage ids) after {} retries",
                spec.name, left[2], left[0], left[1], retries
            )));
        }
    }
    if withheld > 0 {
        let note = if job.is_retention() {
            super::retention::withheld_note(withheld)
        } else {
            withheld_note(Stage::Verify, format!("{withheld} points of the subject were kept (withheld, per collection)"))
        };
        held(progress::set_note(&mut *guard, job.job_id, lease, &note).await?)?;
    }
    if left_under_own_hold > 0 {
        let what = format!("{left_under_own_hold} points of the subject that remained were not deleted again");
        held(progress::set_note(&mut *guard, job.job_id, lease, &own_hold_note(Stage::Verify, &what)).await?)?;
    }
    guard.commit().await.map_err(StoreError::from)?;
    let whose = if job.is_retention() { "of the sources" } else { "of the subject" };
    Ok(match (withheld, left_under_own_hold) {
        (0, 0) => format!("verified: no vector {whose} remains"),
        (w, 0) => format!("verified: no vector {whose} remains but {w} withheld under legal hold"),
        (_, n) => format!("the subject is under legal hold: {n} of its vectors remain"),
    })
}

pub(super) async fn forget_lineage(ctx: &Context, job: &JobRow, lease: Lease, subject_id: Uuid) -> StageResult {
    let keep_in_backend = kept_points(ctx, job).await?;
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let holds = Holds::read(&mut tx, job).await?;
    if holds.own.is_some() {
        let what = "The subject's lineage (its chunks, their texts and tags, its identifiers) is kept and it stays frozen";
        held(progress::set_note(&mut *tx, job.job_id, lease, &own_hold_note(Stage::ForgetLineage, what)).await?)?;
        tx.commit().await.map_err(StoreError::from)?;
        held(progress::set_forgotten(&ctx.pool, job.job_id, lease).await?)?;
        return Ok("the subject is under legal hold: its lineage is kept".into());
    }
    // Chunks kept in the backends keep their lineage: what a re-index
    // rebuilds from, and what a later erasure of the subject finds. The
    // subject's chunk ids are read only when another subject is on hold.
    let mut keep = if holds.others_on_hold() {
        let chunk_ids: Vec<Uuid> = lineage::subject_chunks(&mut *tx, subject_id).await?.into_iter().map(|(_, c)| c).collect();
        holds::held_chunks(&mut *tx, job.tenant_id, None, &chunk_ids, subject_id).await?
    } else {
        Vec::new()
    };
    keep.extend(keep_in_backend);
    keep.sort_unstable();
    keep.dedup();
    let subject = lineage::ForgetSubject { tenant_id: job.tenant_id, subject_id, job_id: job.job_id };
    let result = lineage::forget_subject_chunks(&mut tx, subject, &keep).await?;
    let tags: HashMap<Uuid, &str> = tag(job).map(|t| (subject_id, t)).into_iter().collect();
    let changed_ids: Vec<Uuid> = result.changed.iter().map(|(_, _, c)| *c).collect();
    let held_in_backend = if changed_ids.is_empty() { Keep::default() } else { holds.keep(ctx, job, &changed_ids).await? };
    let settled = settle_changed(ctx, &mut tx, &result.changed, &tags, &held_in_backend).await?;
    lineage::delete_empty_sources(&mut tx, &result.sources).await?;
    // Sources kept for other people's chunks whose id spells this person.
    let person = crate::ingest::Forgotten { tenant_id: job.tenant_id, subject_id, tag: tag(job).unwrap_or_default() };
    let unnamed = crate::ingest::unname_sources(ctx, &mut tx, &result.sources, &[person]).await?;
    let forgotten = result.per_subject.get(&subject_id).copied().unwrap_or(0) + settled.forgotten(subject_id);
    // Read before the tombstone clears them; recorded in the same transaction.
    let (identifiers, external_id) = lineage::holds_plaintext(&ctx.pool, subject_id).await?;
    // A chunk held back was written again: its row before, with the
    // person's text, is a dead row of `chunks` too.
    let mut tables = personal_tables(forgotten > 0 || !result.changed.is_empty(), identifiers, external_id);
    if unnamed.dropped_rules > 0 {
        tables.push("retention_rules");
    }
    held(progress::add_rewrite_tables(&mut *tx, job.job_id, lease, &tables).await?)?;
    if crate::ingest::rekey_before_tombstone(ctx, &mut tx, &[subject_id]).await? > 0 {
        // Other ids of the person were cleared: their old row versions too.
        held(progress::add_rewrite_tables(&mut *tx, job.job_id, lease, &["subjects", "subject_identifiers"]).await?)?;
    }
    lineage::tombstone_subject(&mut tx, subject_id).await?;
    // The caller's id for the person is not needed after this stage: the
    // job row forgets it now, before any rewrite, not when it is logged.
    jobs::clear_subject_tag(&mut *tx, job.job_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    crate::ingest::relabel_points_after_rename(ctx, &unnamed.renamed).await;
    // After the commit: a rewrite that starts later finds the dead rows.
    held(progress::set_forgotten(&ctx.pool, job.job_id, lease).await?)?;
    let mut kept = if keep.is_empty() { String::new() } else { format!(" ({} kept under legal hold)", keep.len()) };
    kept.push_str(&settled.note(subject_id));
    Ok(format!("{forgotten} lineage chunks forgotten{kept}; the subject is a keyed-hash tombstone"))
}

/// What [`settle_changed`] did with the chunks forget held back.
#[derive(Debug, Default)]
pub(super) struct Settled {
    /// Chunks whose point was gone, forgotten, by subject.
    forgotten: HashMap<Uuid, u64>,
    /// Chunks whose point a later write put back (their lineage stays), by subject.
    rewritten: HashMap<Uuid, u64>,
    /// Chunks whose point was put back with the subject's tag and is kept
    /// there by a legal hold (their lineage stays), by subject.
    held: HashMap<Uuid, u64>,
}

impl Settled {
    pub(super) fn forgotten(&self, subject_id: Uuid) -> u64 {
        self.forgotten.get(&subject_id).copied().unwrap_or(0)
    }

    /// For the subject's stage message: empty when no chunk was written again.
    pub(super) fn note(&self, subject_id: Uuid) -> String {
        let of = |m: &HashMap<Uuid, u64>| m.get(&subject_id).copied().unwrap_or(0);
        let mut note = match of(&self.rewritten) {
            0 => String::new(),
            n => format!(" ({n} written again after the count: their points are in the store and keep their lineage)"),
        };
        if let n @ 1.. = of(&self.held) {
            note.push_str(&format!(
                " ({n} put back after the count with the subject's tag and kept under legal hold, with their lineage)"
            ));
        }
        note
    }
}

/// Chunks `(tenant, subject, chunk)` that forget lineage held back because
/// their row was written after the verify stage counted their points gone
/// (a write of the point since then, a redaction). Each is locked, so that
/// no write of it commits meanwhile, and looked up in its backend:
/// - a point that is gone is forgotten like the others, with its text;
/// - a point that is there and still carries the subject's tag (`tags`, by
///   subject: the caller's id, in its payload) is the subject's own, put back
///   by a write that kept its old payload (a redaction's upsert of a point
///   the delete had just removed): it is deleted again (but what `keep`
///   holds) and forgotten;
/// - any other point holds what a later write put there (frozen writes of
///   the subject are refused) and keeps its lineage: deleting its chunk
///   would leave a vector that no source or retention rule reaches.
pub(super) async fn settle_changed(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    changed: &[(Uuid, Uuid, Uuid)],
    tags: &HashMap<Uuid, &str>,
    keep: &Keep,
) -> Result<Settled, StageError> {
    let mut settled = Settled::default();
    let mut by_tenant: BTreeMap<Uuid, Vec<(Uuid, Uuid)>> = BTreeMap::new();
    for &(tenant, subject, chunk) in changed {
        by_tenant.entry(tenant).or_default().push((chunk, subject));
    }
    for (tenant, chunks) in by_tenant {
        let ids: Vec<Uuid> = chunks.iter().map(|(c, _)| *c).collect();
        let mut by_collection: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (collection, chunk) in lineage::lock_chunks(tx, tenant, &ids).await? {
            by_collection.entry(collection).or_default().push(chunk);
        }
        for (collection, ids) in by_collection {
            let Looked { present, gone, held } = match lineage::collection_by_id(&mut **tx, tenant, collection).await? {
                Some(spec) => look_up_changed(ctx, &spec, &ids, tags, keep).await?,
                None => Looked { gone: ids.iter().copied().collect(), ..Looked::default() },
            };
            if !gone.is_empty() {
                lineage::delete_chunks(tx, tenant, collection, &gone.iter().copied().collect::<Vec<_>>()).await?;
            }
            for (chunk, subject) in &chunks {
                let tally = if held.contains(chunk) {
                    &mut settled.held
                } else if present.contains(chunk) {
                    &mut settled.rewritten
                } else if gone.contains(chunk) {
                    &mut settled.forgotten
                } else {
                    continue;
                };
                *tally.entry(*subject).or_default() += 1;
            }
        }
    }
    Ok(settled)
}

/// What [`look_up_changed`] found.
#[derive(Debug, Default)]
struct Looked {
    /// Points in the store: their chunks keep their lineage.
    present: HashSet<Uuid>,
    /// Points gone: their chunks are forgotten.
    gone: HashSet<Uuid>,
    /// Of `present`, points carrying one of the subjects' tags that a legal
    /// hold kept from being deleted again.
    held: HashSet<Uuid>,
}

/// [`settle_changed`]'s look at one collection: the points there that keep
/// their lineage, and those gone (the ones found carrying one of `tags`,
/// the subjects' own, are deleted first).
async fn look_up_changed(
    ctx: &Context,
    spec: &CollectionSpec,
    ids: &[Uuid],
    tags: &HashMap<Uuid, &str>,
    keep: &Keep,
) -> Result<Looked, StageError> {
    let store = ctx.stores.get(spec)?;
    let batch = store.ids_per_request(ctx.settings.erasure.delete_batch_size).max(1);
    let mut found = Vec::new();
    for part in ids.chunks(batch) {
        found.extend(store.retrieve(spec, part, false).await?);
    }
    // Any subject's of the call: in a batch, a point put back with another
    // member's tag is that member's own.
    let own_tags: HashSet<&str> = tags.values().copied().collect();
    let own: Vec<Uuid> =
        found.iter().filter(|p| p.payload.subjects.iter().any(|t| own_tags.contains(t.as_str()))).map(|p| p.id).collect();
    let mut present: HashSet<Uuid> = found.into_iter().map(|p| p.id).collect();
    let mut held = HashSet::new();
    if !own.is_empty() {
        tracing::warn!(collection = %spec.name, points = own.len(), "points of the subject were put back after the count; deleting them again");
        for part in own.chunks(batch) {
            if keep.is_empty() {
                store.delete(spec, &Selector::by_ids(part.to_vec())).await?;
            } else {
                store.delete_keeping(spec, &Selector::by_ids(part.to_vec()), keep).await?;
            }
        }
        // The chunks are locked: no write puts them back meanwhile. Those
        // a legal hold kept are still there.
        let mut still = HashSet::new();
        for part in own.chunks(batch) {
            still.extend(store.retrieve(spec, part, false).await?.into_iter().map(|p| p.id));
        }
        for id in &own {
            if still.contains(id) {
                held.insert(*id);
            } else {
                present.remove(id);
            }
        }
    }
    let gone: HashSet<Uuid> = ids.iter().copied().filter(|c| !present.contains(c)).collect();
    Ok(Looked { present, gone, held })
}

/// Lethe's tables in which forgetting the subject leaves dead rows of the
/// person: the chunks with their texts (when any are forgotten), the clear
/// identifiers and the caller's id (when the subject still has them).
pub(super) fn personal_tables(forgets_chunks: bool, identifiers: bool, external_id: bool) -> Vec<&'static str> {
    // The job's own row held the caller's id for the person (until the
    // tombstone) in every row version written before.
    let mut tables = vec!["erasure_jobs"];
    if forgets_chunks {
        tables.extend(["chunks", "sources", "chunk_subjects"]);
    }
    if identifiers {
        tables.push("subject_identifiers");
    }
    if external_id {
        tables.push("subjects");
    }
    tables
}

/// The person's planned points still in the backends because they were
/// withheld under another subject's hold (a retention job's: under a hold
/// on a subject its sources' chunks are tagged with).
pub(super) async fn kept_points(ctx: &Context, job: &JobRow) -> Result<Vec<Uuid>, StageError> {
    let mut kept = Vec::new();
    // Withheld under a hold, or left by the subject's own hold that came
    // after the delete began: their lineage stays while they do.
    for p in planned(ctx, job, true).await?.into_iter().filter(|p| p.counts.withheld > 0 || p.counts.after_total.unwrap_or(0) > 0) {
        kept.extend(ctx.stores.get(&p.spec)?.retrieve(&p.spec, &p.points, false).await?.into_iter().map(|p| p.id));
    }
    Ok(kept)
}
