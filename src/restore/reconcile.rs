//! One reconcile run: every collection of the tenant, one after the other.
//!
//! Per collection, under the collection's lock and the tenant's hold lock
//! (both shared: a re-index cannot switch generations and a legal hold
//! cannot be placed in the middle), the store is scrolled once and each
//! point is matched three ways: its tags hashed with the tenant key against
//! the tombstones (**by tag**), its id against the lineage of erased
//! subjects that a restore of Lethe's database brought back (**by
//! lineage**), its keyed hash against the erased points (**by ledger**).
//! A point tagged with, or shared in lineage with, a subject on legal hold
//! is left alone (`withheld`). The matches are counted in the backend
//! (before), stored with the count before the first delete (a resumed run
//! deletes and counts the same points), deleted in batches, counted again
//! (after, which must be 0), and then, in one transaction: the ledger learns
//! their hashes, the lineage of the deleted points and the erased subjects'
//! restored tags in the collection are forgotten, the `reconcile` log entry
//! is appended (also when nothing came back: then its counts are 0), and the
//! collection is marked done.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::PointHasher;
use crate::context::{Context, collection_lock_key, keyed_hash};
use crate::domain::CollectionSpec;
use crate::error::{LetheError, Result};
use crate::store::ledger::{self, ErasedPoint};
use crate::store::lease::Lease;
use crate::store::reconcile::{self as runs, CollectionRow, RunRow};
use crate::store::{StoreError, holds, jobs, lineage};
use crate::vector_store::{Selector, VectorStore};

type Store = std::sync::Arc<dyn VectorStore>;

/// Runs (or resumes) `run`; false when its lease was lost on the way.
pub(super) async fn execute(ctx: &Context, run: &RunRow, lease: Lease) -> Result<bool> {
    let secret = ctx.tenant_secret(run.tenant_id).await?;
    let done = runs::collections(&ctx.pool, run.job_id).await?;
    for spec in lineage::list_collections(&ctx.pool, run.tenant_id).await? {
        let earlier = done.iter().find(|c| c.collection_id == spec.collection_id);
        if earlier.is_some_and(|c| c.log_seq.is_some()) {
            continue;
        }
        if !collection(ctx, run, lease, &secret, &spec, earlier).await? {
            return Ok(false);
        }
    }
    let (held, scrubbed) = scrub(ctx, run.tenant_id).await?;
    Ok(runs::finish(&ctx.pool, run.job_id, lease, "completed", None, &held, scrubbed).await?)
}

fn lease_secs(ctx: &Context) -> f64 {
    ctx.settings.erasure.lease_secs as f64
}

/// Reconciles one collection; false when the lease was lost.
async fn collection(
    ctx: &Context,
    run: &RunRow,
    lease: Lease,
    secret: &[u8],
    spec: &CollectionSpec,
    earlier: Option<&CollectionRow>,
) -> Result<bool> {
    let store = ctx.stores.get(spec)?.clone();
    let mut guard = ctx.pool.begin().await.map_err(StoreError::from)?;
    lineage::lock_subject_shared(&mut guard, &[collection_lock_key(spec.collection_id)]).await?;
    holds::lock_shared(&mut guard, run.tenant_id).await?;
    // A resumed run deletes what it planned, unless a hold placed since then
    // covers some of it: then it plans again (holds are read at every
    // destructive step, as an erase job's are).
    let earlier = match earlier {
        Some(plan) if held_since(&mut guard, run.tenant_id, spec, plan).await? => {
            tracing::info!(run_id = %run.job_id, collection = %spec.name, "a legal hold changed since the plan: planning again");
            None
        }
        other => other,
    };
    let plan = match earlier {
        Some(plan) => plan.clone(),
        None => {
            let Some(plan) = plan(ctx, run, lease, secret, spec, &store, &mut guard).await? else { return Ok(false) };
            if !runs::record_plan(&ctx.pool, run.job_id, lease, &plan).await? {
                return Ok(false);
            }
            plan
        }
    };
    let after = delete(ctx, &store, spec, &plan.points).await?;
    let applied = record(ctx, run, lease, secret, spec, &plan, &mut guard).await?;
    guard.commit().await.map_err(StoreError::from)?;
    if applied {
        tracing::info!(run_id = %run.job_id, collection = %spec.name, came_back = plan.before, after, "collection reconciled");
    }
    Ok(applied && runs::renew(&ctx.pool, run.job_id, lease, lease_secs(ctx)).await?)
}

/// Whether a subject or chunk of `plan` is on hold now.
async fn held_since(
    guard: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant: Uuid,
    spec: &CollectionSpec,
    plan: &CollectionRow,
) -> Result<bool> {
    let held: HashSet<Vec<u8>> = holds::held_hashes(&mut **guard, tenant).await?.into_iter().collect();
    if plan.point_subjects.iter().any(|s| held.contains(s)) {
        return Ok(true);
    }
    let held_chunks: HashSet<Uuid> =
        holds::held_chunks_in_collection(&mut **guard, tenant, spec.collection_id).await?.into_iter().collect();
    Ok(plan.points.iter().any(|p| held_chunks.contains(p)))
}

/// What a run looks for, as the guard's transaction sees it.
struct Wanted {
    /// Tombstones to re-apply: erased, not on hold, not being erased again.
    erased: HashSet<Vec<u8>>,
    /// Keyed hashes of every subject on hold now.
    held: HashSet<Vec<u8>>,
    held_chunks: HashSet<Uuid>,
    /// Restored lineage: chunk → its erased subject.
    lineage: HashMap<Uuid, Vec<u8>>,
    /// The ledger's points of the collection: point hash → (subject, since
    /// when the point is known erased).
    ledger: HashMap<Vec<u8>, (Vec<u8>, DateTime<Utc>)>,
}

async fn wanted(guard: &mut sqlx::Transaction<'static, sqlx::Postgres>, spec: &CollectionSpec) -> Result<Wanted> {
    let tenant = spec.tenant_id;
    let erased = reconcilable(guard, tenant).await?;
    let held: HashSet<Vec<u8>> = holds::held_hashes(&mut **guard, tenant).await?.into_iter().collect();
    let held_chunks: HashSet<Uuid> = holds::held_chunks_in_collection(&mut **guard, tenant, spec.collection_id).await?.into_iter().collect();
    let lineage = runs::erased_lineage(&mut **guard, tenant, spec.collection_id)
        .await?
        .into_iter()
        .filter(|(chunk, _)| !held_chunks.contains(chunk))
        .collect();
    let ledger = ledger_of(guard, spec, &erased).await?;
    Ok(Wanted { erased, held, held_chunks, lineage, ledger })
}

/// Tombstones to re-apply: erased, not on hold, not being erased again.
async fn reconcilable(guard: &mut sqlx::Transaction<'static, sqlx::Postgres>, tenant_id: Uuid) -> Result<HashSet<Vec<u8>>> {
    let subjects = runs::erased_subjects(&mut **guard, tenant_id).await?;
    Ok(subjects.into_iter().filter(|s| !s.legal_hold && !s.busy).map(|s| s.subject_hash).collect())
}

/// The ledger's points of the collection that belong to `erased`: point
/// hash → (subject, since when the point is known erased).
async fn ledger_of(
    guard: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    spec: &CollectionSpec,
    erased: &HashSet<Vec<u8>>,
) -> Result<HashMap<Vec<u8>, (Vec<u8>, DateTime<Utc>)>> {
    Ok(ledger::collection_points(&mut **guard, spec.tenant_id, spec.collection_id)
        .await?
        .into_iter()
        .filter(|(_, subject, _)| erased.contains(subject))
        .map(|(point, subject, since)| (point, (subject, since)))
        .collect())
}

/// Scrolls the collection and counts what belongs to erased subjects; None
/// when the lease was lost.
async fn plan(
    ctx: &Context,
    run: &RunRow,
    lease: Lease,
    secret: &[u8],
    spec: &CollectionSpec,
    store: &Store,
    guard: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> Result<Option<CollectionRow>> {
    let wanted = wanted(guard, spec).await?;
    let mut m = Matcher::new(secret, &wanted);
    if !wanted.erased.is_empty() {
        let page = ctx.settings.restore_guard.page_size.max(1);
        let mut cursor = None;
        loop {
            let (points, next) = store.scroll(spec, cursor, page, false).await?;
            for p in &points {
                m.examine(spec.collection_id, p.id, &p.payload.subjects);
            }
            if next.is_none() || points.is_empty() {
                break;
            }
            cursor = next;
            if !runs::renew(&ctx.pool, run.job_id, lease, lease_secs(ctx)).await? {
                return Ok(None);
            }
        }
    }
    // A point only the ledger names, which lineage holds again (not as an
    // erased subject's: `wanted.lineage` would have named it) written after
    // the erasure (a source re-ingested under the same point ids, without
    // the person), is not a restore's copy: left alone. Lineage restored
    // with the database (a colleague's note that named the person, deleted
    // by the residual stage) was written before: a restore's copy.
    let rewritten = lineage::chunks_written_since(&mut **guard, spec.tenant_id, spec.collection_id, &m.ledger_only).await?;
    for id in &rewritten {
        if m.found.remove(id).is_some() {
            m.by_ledger -= 1;
        }
    }
    let (points, point_subjects): (Vec<Uuid>, Vec<Vec<u8>>) = std::mem::take(&mut m.found).into_iter().unzip();
    let before = count_ids(ctx, store, spec, &points).await?;
    Ok(Some(CollectionRow {
        collection_id: spec.collection_id,
        collection_name: spec.name.to_string(),
        backend: spec.backend.as_str().to_owned(),
        scanned: m.scanned,
        by_tag: m.by_tag,
        by_lineage: m.by_lineage,
        by_ledger: m.by_ledger,
        withheld: m.withheld,
        before: i64::try_from(before).unwrap_or(i64::MAX),
        after: None,
        lineage_forgotten: 0,
        log_seq: None,
        points,
        point_subjects,
    }))
}

/// Matches points read back from a store against what is wanted.
struct Matcher<'a> {
    secret: &'a [u8],
    wanted: &'a Wanted,
    hasher: PointHasher,
    /// Each distinct tag's keyed hash is computed once.
    tags: HashMap<String, Vec<u8>>,
    found: BTreeMap<Uuid, Vec<u8>>,
    scanned: i64,
    by_tag: i64,
    by_lineage: i64,
    by_ledger: i64,
    withheld: i64,
    /// Points found by the ledger alone (no erased tag, no restored lineage),
    /// with since when they are known erased.
    ledger_only: Vec<(Uuid, DateTime<Utc>)>,
}

impl<'a> Matcher<'a> {
    fn new(secret: &'a [u8], wanted: &'a Wanted) -> Self {
        Self {
            secret,
            wanted,
            hasher: PointHasher::new(secret),
            tags: HashMap::new(),
            found: BTreeMap::new(),
            scanned: 0,
            by_tag: 0,
            by_lineage: 0,
            by_ledger: 0,
            withheld: 0,
            ledger_only: Vec::new(),
        }
    }

    fn examine(&mut self, collection_id: Uuid, id: Uuid, tags: &[String]) {
        self.scanned += 1;
        let mut by_tag = None;
        let mut held = self.wanted.held_chunks.contains(&id);
        for t in tags {
            let secret = self.secret;
            let h = self.tags.entry(t.clone()).or_insert_with(|| keyed_hash(secret, t));
            held |= self.wanted.held.contains(h);
            if by_tag.is_none() && self.wanted.erased.contains(h) {
                by_tag = Some(h.clone());
            }
        }
        let by_lineage = self.wanted.lineage.get(&id);
        let by_ledger = self.wanted.ledger.get(&self.hasher.hash(collection_id, id));
        let Some(subject) = by_tag.clone().or_else(|| by_lineage.or(by_ledger.map(|(s, _)| s)).cloned()) else { return };
        if held {
            self.withheld += 1;
            return;
        }
        self.by_tag += i64::from(by_tag.is_some());
        self.by_lineage += i64::from(by_lineage.is_some());
        self.by_ledger += i64::from(by_ledger.is_some());
        if let (None, None, Some((_, since))) = (&by_tag, by_lineage, by_ledger) {
            self.ledger_only.push((id, *since));
        }
        self.found.insert(id, subject);
    }
}

/// Exact number of the points among `ids` in the store, in batches.
async fn count_ids(ctx: &Context, store: &Store, spec: &CollectionSpec, ids: &[Uuid]) -> Result<u64> {
    let mut n = 0;
    for batch in ids.chunks(store.ids_per_request(ctx.settings.erasure.delete_batch_size).max(1)) {
        n += store.count(spec, &Selector::by_ids(batch.to_vec())).await?;
    }
    Ok(n)
}

/// Deletes `ids` and counts again until none is left (`erasure.verify_retries`
/// more attempts); returns the count after (0).
async fn delete(ctx: &Context, store: &Store, spec: &CollectionSpec, ids: &[Uuid]) -> Result<i64> {
    let batch = store.ids_per_request(ctx.settings.erasure.delete_batch_size).max(1);
    let mut left = 0;
    for _ in 0..=ctx.settings.erasure.verify_retries {
        for b in ids.chunks(batch) {
            store.delete(spec, &Selector::by_ids(b.to_vec())).await?;
        }
        left = count_ids(ctx, store, spec, ids).await?;
        if left == 0 {
            return Ok(0);
        }
    }
    Err(LetheError::Unexpected(anyhow::anyhow!(
        "{left} of {} points of erased subjects remain in collection `{}` after reconcile deleted them",
        ids.len(),
        spec.name
    )))
}

/// The collection's log entry, ledger points and forgotten lineage, in one
/// transaction with the collection marked done; false when the lease was lost.
async fn record(
    ctx: &Context,
    run: &RunRow,
    lease: Lease,
    secret: &[u8],
    spec: &CollectionSpec,
    plan: &CollectionRow,
    guard: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> Result<bool> {
    let held_chunks: HashSet<Uuid> = holds::held_chunks_in_collection(&mut **guard, spec.tenant_id, spec.collection_id).await?.into_iter().collect();
    let mut restored: Vec<(Uuid, Vec<u8>)> = runs::erased_lineage(&mut **guard, spec.tenant_id, spec.collection_id)
        .await?
        .into_iter()
        .filter(|(chunk, _)| !held_chunks.contains(chunk))
        .collect();
    restored.extend(ledger_lineage(guard, secret, spec, &held_chunks).await?);
    // A point of that lineage still in the backend that the run did not
    // delete was withheld (its payload names a subject on hold) or written
    // since the scroll: its lineage stays with it.
    let planned: HashSet<Uuid> = plan.points.iter().copied().collect();
    let unplanned: Vec<Uuid> = restored.iter().map(|(c, _)| *c).filter(|c| !planned.contains(c)).collect();
    if !unplanned.is_empty() {
        let store = ctx.stores.get(spec)?;
        let mut present = HashSet::new();
        for batch in unplanned.chunks(store.ids_per_request(ctx.settings.erasure.delete_batch_size).max(1)) {
            present.extend(store.retrieve(spec, batch, false).await?.into_iter().map(|p| p.id));
        }
        restored.retain(|(c, _)| !present.contains(c));
    }
    let mut forget: Vec<Uuid> = plan.points.iter().copied().chain(restored.iter().map(|(c, _)| *c)).collect();
    forget.sort_unstable();
    forget.dedup();
    let mut subjects: Vec<&[u8]> = plan.point_subjects.iter().chain(restored.iter().map(|(_, s)| s)).map(Vec::as_slice).collect();
    subjects.sort_unstable();
    subjects.dedup();
    let hasher = PointHasher::new(secret);
    let erased: Vec<ErasedPoint> = plan
        .points
        .iter()
        .zip(&plan.point_subjects)
        .map(|(p, s)| ErasedPoint {
            collection_id: spec.collection_id,
            point_hash: hasher.hash(spec.collection_id, *p),
            subject_hash: s.clone(),
            job_id: None,
            cause: "reconcile".into(),
        })
        .collect();
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    jobs::require_durable_commit(&mut tx).await?;
    ledger::record_points(&mut *tx, spec.tenant_id, &erased).await?;
    let forgotten = i64::try_from(lineage::delete_chunks(&mut tx, spec.tenant_id, spec.collection_id, &forget).await?).unwrap_or(i64::MAX);
    // A deleted point without lineage (its erasure forgot it) may still have
    // its text id here, written when the scroll handed the point out.
    crate::store::attach::forget_point_ids(&mut *tx, spec.collection_id, &plan.points).await?;
    let body = Body::new(run, spec, plan, forgotten, &subjects);
    let (entry, _) = crate::audit::append(&mut tx, &ctx.signer, spec.tenant_id, "reconcile", None, None, &body).await?;
    if !runs::complete_collection(&mut *tx, run.job_id, lease, spec.collection_id, 0, forgotten, entry.seq).await? {
        return Ok(false); // dropped: rolled back
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(true)
}

/// Lineage that only the ledger names as an erased subject's: chunks of the
/// collection whose point the ledger holds, written no later than the point
/// is known erased (a colleague's note the residual stage deleted, brought
/// back with Lethe's database; its text names the person). Not a chunk
/// under a hold. Every chunk id of the collection is hashed: one read of
/// its ids, only when the ledger has points of the collection.
async fn ledger_lineage(
    guard: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    secret: &[u8],
    spec: &CollectionSpec,
    held_chunks: &HashSet<Uuid>,
) -> Result<Vec<(Uuid, Vec<u8>)>> {
    let erased = reconcilable(guard, spec.tenant_id).await?;
    let ledger = ledger_of(guard, spec, &erased).await?;
    if ledger.is_empty() {
        return Ok(Vec::new());
    }
    let hasher = PointHasher::new(secret);
    Ok(lineage::collection_chunk_times(&mut **guard, spec.tenant_id, spec.collection_id)
        .await?
        .into_iter()
        .filter(|(chunk, _)| !held_chunks.contains(chunk))
        .filter_map(|(chunk, written)| match ledger.get(&hasher.hash(spec.collection_id, chunk)) {
            Some((subject, since)) if written <= *since => Some((chunk, subject.clone())),
            _ => None,
        })
        .collect())
}

/// A collection's `reconcile` entry in the deletion log. People appear only
/// as keyed hashes; no tag, id or text of theirs.
#[derive(Serialize)]
struct Body<'a> {
    kind: &'static str,
    run_id: String,
    trigger: &'a str,
    /// Who asked (Reconcile's `requested_by`; `schedule` for a scheduled run).
    requested_by: &'a str,
    tenant_id: String,
    collection: &'a str,
    backend: &'a str,
    /// Points read back from the store.
    scanned: i64,
    /// Points of erased subjects found, by how (a point may match several ways).
    found_by_tag: i64,
    found_by_lineage: i64,
    found_by_ledger: i64,
    /// Points of erased subjects that came back (counted in the backend before deletion).
    came_back: i64,
    before: i64,
    deleted: i64,
    after: i64,
    /// Lineage chunks (restored tags of erased subjects, lineage of the deleted points) forgotten.
    lineage_forgotten: i64,
    /// Points of erased subjects left in place because they are shared with a subject on legal hold.
    withheld_legal_hold: i64,
    /// Keyed hashes of the erased subjects whose points or lineage came back.
    subjects: Vec<String>,
    cause: &'static str,
    logged_at: String,
}

impl<'a> Body<'a> {
    fn new(run: &'a RunRow, spec: &'a CollectionSpec, plan: &CollectionRow, forgotten: i64, subjects: &[&[u8]]) -> Self {
        Self {
            kind: "reconcile",
            run_id: run.job_id.to_string(),
            trigger: &run.trigger,
            requested_by: if run.trigger == "schedule" { "schedule" } else { &run.requested_by },
            tenant_id: spec.tenant_id.to_string(),
            collection: spec.name.as_str(),
            backend: spec.backend.as_str(),
            scanned: plan.scanned,
            found_by_tag: plan.by_tag,
            found_by_lineage: plan.by_lineage,
            found_by_ledger: plan.by_ledger,
            came_back: plan.before,
            before: plan.before,
            deleted: plan.before,
            after: 0,
            lineage_forgotten: forgotten,
            withheld_legal_hold: plan.withheld,
            subjects: subjects.iter().map(hex::encode).collect(),
            cause: "a restore (backup, snapshot, point-in-time recovery) brought back points or lineage of erased \
                    subjects; Lethe deleted them again",
            logged_at: chrono::Utc::now().to_rfc3339(),
        }
    }
}

/// Tenant-wide, after the collections: erased subjects that hold something
/// in clear again (a restore of Lethe's database without an import, or of a
/// backup taken while their erasure ran) are tombstones again. Returns the
/// keyed hashes of erased subjects on hold (left alone) and how many
/// subjects were scrubbed.
async fn scrub(ctx: &Context, tenant_id: Uuid) -> Result<(Vec<Vec<u8>>, i32)> {
    let held: Vec<Vec<u8>> =
        runs::erased_subjects(&ctx.pool, tenant_id).await?.into_iter().filter(|s| s.legal_hold).map(|s| s.subject_hash).collect();
    let dirty: Vec<Uuid> =
        ledger::erased_with_plaintext(&ctx.pool, tenant_id).await?.into_iter().filter(|(_, h)| !h).map(|(id, _)| id).collect();
    // Documents named after erased people had aliases before a restore (or
    // were written under such ids since): aliases again.
    crate::ingest::unname_sources_naming_the_erased(ctx, tenant_id).await?;
    crate::ingest::unname_listed_sources(ctx, tenant_id).await?;
    if !dirty.is_empty() {
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        ledger::clear_erased_plaintext(&mut *tx, &dirty).await?;
        ledger::scrub_finished_jobs(&mut *tx, &dirty).await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok((held, i32::try_from(dirty.len()).unwrap_or(i32::MAX)))
}
