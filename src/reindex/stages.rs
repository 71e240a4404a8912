//! The stages of a re-index job: prepare → copy → switch → drop.

use std::collections::HashSet;

use uuid::Uuid;

use crate::context::{Context, collection_lock_key, keyed_hash};
use crate::domain::CollectionSpec;
use crate::error::{LetheError, Result};
use crate::store::reindex::{self, ReindexRow};
use crate::store::{StoreError, holds, lineage};
use crate::vector_store::{Selector, VectorPoint};

const BATCH: i64 = 500;

pub(super) async fn collection_of(ctx: &Context, job: &ReindexRow) -> Result<CollectionSpec> {
    lineage::list_collections(&ctx.pool, job.tenant_id)
        .await?
        .into_iter()
        .find(|c| c.collection_id == job.collection_id)
        .ok_or_else(|| LetheError::NotFound("collection of the re-index".into()))
}

fn staging_of(spec: &CollectionSpec, job: &ReindexRow) -> Result<CollectionSpec> {
    let name = job.staging_name.clone().ok_or_else(|| LetheError::Unexpected(anyhow::anyhow!("no staging yet")))?;
    Ok(CollectionSpec { backend_name: name, ..spec.clone() })
}

/// Creates the next generation and counts what it should hold.
pub(super) async fn prepare(ctx: &Context, job: &ReindexRow) -> Result<String> {
    let spec = collection_of(ctx, job).await?;
    let suffix = format!("r{}", &job.job_id.simple().to_string()[..8]);
    let staging = ctx.stores.get(&spec)?.create_staging(&spec, &suffix).await?;
    let total = count_live(ctx, &spec).await?;
    // The copy's start is recorded once every write in flight to the
    // collection has finished (they hold its lock shared from their lineage
    // to their vector write): a write whose lineage is older than the start
    // has its vector in the store before the copy reads it, and a later one
    // is caught up at the switch. Without the lock, a write whose lineage
    // committed just before the start and whose vector came after the
    // copy's read was promoted with its old vector.
    let mut guard = ctx.pool.begin().await.map_err(StoreError::from)?;
    lineage::lock_subject_exclusive(&mut guard, collection_lock_key(spec.collection_id)).await?;
    fenced(reindex::prepared(&mut *guard, job.job_id, job.lease_epoch, &staging.backend_name, total).await?)?;
    guard.commit().await.map_err(StoreError::from)?;
    Ok(format!("staging {} for {total} live chunks", staging.backend_name))
}

async fn count_live(ctx: &Context, spec: &CollectionSpec) -> Result<i64> {
    let mut n = 0;
    let mut after = None;
    loop {
        let page = reindex::live_chunks(&ctx.pool, spec.tenant_id, spec.collection_id, after, None, 10_000).await?;
        n += i64::try_from(page.len()).unwrap_or(0);
        match page.last() {
            Some((id, _)) if page.len() == 10_000 => after = Some(*id),
            _ => return Ok(n),
        }
    }
}

/// Copies (or re-embeds) chunks into `staging`; returns (copied, missing in live).
async fn copy_chunks(
    ctx: &Context,
    job: &ReindexRow,
    spec: &CollectionSpec,
    staging: &CollectionSpec,
    chunks: &[(Uuid, Option<String>)],
) -> Result<(i64, i64)> {
    let store = ctx.stores.get(spec)?;
    let ids: Vec<Uuid> = chunks.iter().map(|(id, _)| *id).collect();
    let live = store.retrieve(spec, &ids, true).await?;
    let missing = i64::try_from(ids.len() - live.len()).unwrap_or(0);
    let mut points: Vec<VectorPoint> = live
        .into_iter()
        .filter_map(|p| p.vector.map(|vector| VectorPoint { id: p.id, vector, payload: p.payload }))
        .collect();
    // A source lineage knows under its alias (its id named someone erased)
    // is copied under it, whatever the live payload still says (a relabel
    // a crash left undone: `ingest::sources::relabel_points`).
    let aliased: std::collections::HashMap<Uuid, String> = crate::store::lineage::sources_of_chunks(&ctx.pool, spec.tenant_id, &ids)
        .await?
        .into_iter()
        .filter(|r| crate::ingest::is_alias(&r.3))
        .map(|r| (r.1, r.3))
        .collect();
    for p in &mut points {
        if let Some(alias) = aliased.get(&p.id) {
            p.payload.source_id.clone_from(alias);
        }
    }
    if job.mode == "reembed" {
        let texts: std::collections::HashMap<Uuid, &Option<String>> = chunks.iter().map(|(i, t)| (*i, t)).collect();
        let with_text: Vec<usize> =
            (0..points.len()).filter(|&i| texts.get(&points[i].id).is_some_and(|t| t.is_some())).collect();
        let inputs = with_text.iter().map(|&i| texts[&points[i].id].clone().unwrap_or_default()).collect();
        for (i, v) in with_text.into_iter().zip(ctx.embedder.embed(inputs).await?) {
            points[i].vector = v;
        }
    }
    store.upsert(staging, &points).await?;
    Ok((i64::try_from(points.len()).unwrap_or(0), missing))
}

/// Copies the live chunks in id order, persisting the cursor after each batch.
pub(super) async fn copy(ctx: &Context, job: &ReindexRow) -> Result<String> {
    let spec = collection_of(ctx, job).await?;
    let staging = staging_of(&spec, job)?;
    let mut cursor = job.copy_cursor;
    loop {
        let page = reindex::live_chunks(&ctx.pool, spec.tenant_id, spec.collection_id, cursor, None, BATCH).await?;
        let Some((last, _)) = page.last() else { break };
        let last = *last;
        let (copied, missing) = copy_chunks(ctx, job, &spec, &staging, &page).await?;
        fenced(reindex::progress(&ctx.pool, job.job_id, job.lease_epoch, last, copied, missing).await?)?;
        cursor = Some(last);
    }
    Ok("copied".into())
}

/// Catches up, reconciles and verifies under the exclusive collection lock,
/// then switches readers to the new generation.
pub(super) async fn switch(ctx: &Context, job: &ReindexRow) -> Result<String> {
    let spec = collection_of(ctx, job).await?;
    let staging = staging_of(&spec, job)?;
    let store = ctx.stores.get(&spec)?;
    // Before the lock: the copies of people erased since the copy began
    // are left out, and a pgvector table rewritten, while writes go on.
    let (early, early_detail) = if store.is_promoted(&spec, &staging).await? {
        (0, String::new())
    } else {
        leave_out_erased(ctx, &spec, &staging, store.as_ref()).await?
    };
    let mut guard = ctx.pool.begin().await.map_err(StoreError::from)?;
    lineage::lock_subject_exclusive(&mut guard, collection_lock_key(spec.collection_id)).await?;
    // Leaving out erased subjects' points destroys data: legal holds are
    // read under their lock, as by an erasure's destructive steps.
    holds::lock_shared(&mut guard, spec.tenant_id).await?;
    if store.is_promoted(&spec, &staging).await? {
        // Cut off between promoting and recording it: the new generation
        // is live (everything before the promote was done under the lock).
        // The old one is found by the drop stage's sweep.
        let count = i64::try_from(store.count_all(&spec).await?).unwrap_or(i64::MAX);
        fenced(reindex::switched(&ctx.pool, job.job_id, job.lease_epoch, "", (count, job.excluded), &job.physical_detail).await?)?;
        guard.commit().await.map_err(StoreError::from)?;
        return Ok(format!("the new generation ({count} points) was already live: the switch is recorded"));
    }

    // 1. Everything written since the copy began, again.
    let mut after = None;
    loop {
        let page =
            reindex::live_chunks(&ctx.pool, spec.tenant_id, spec.collection_id, after, job.copy_started_at, BATCH).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        copy_chunks(ctx, job, &spec, &staging, &page).await?;
    }
    // 2. The new generation holds exactly the live lineage that has vectors.
    let mut live: HashSet<Uuid> = HashSet::new();
    let mut after = None;
    loop {
        let page = reindex::live_chunks(&ctx.pool, spec.tenant_id, spec.collection_id, after, None, 10_000).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        live.extend(page.iter().map(|(id, _)| *id));
    }
    let suppressed: HashSet<Vec<u8>> = reindex::suppressed_hashes(&ctx.pool, spec.tenant_id).await?.into_iter().collect();
    // What the live generation still holds: a copy of a point deleted since
    // (a retention job's, whose sources' lineage is live until its forget
    // stage) is not promoted.
    let mut in_live: HashSet<Uuid> = HashSet::new();
    let mut offset = None;
    loop {
        let (page, next) = store.scroll(&spec, offset, 1000, false).await?;
        in_live.extend(page.into_iter().map(|p| p.id));
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    // A point tagged with an erased subject and with one on legal hold
    // (in lineage or in its payload) is kept: the hold protects it.
    let on_hold: HashSet<Vec<u8>> = holds::held_hashes(&mut *guard, spec.tenant_id).await?.into_iter().collect();
    let held_chunks: HashSet<Uuid> =
        holds::held_chunks_in_collection(&mut *guard, spec.tenant_id, spec.collection_id).await?.into_iter().collect();
    let secret = ctx.tenant_secret(spec.tenant_id).await?;
    let (mut present, mut stray) = (HashSet::new(), Vec::new());
    let mut offset = None;
    loop {
        let (page, next) = store.scroll(&staging, offset, 1000, false).await?;
        for p in page {
            let hashes: Vec<Vec<u8>> = p.payload.subjects.iter().map(|s| keyed_hash(&secret, s)).collect();
            let held = held_chunks.contains(&p.id) || hashes.iter().any(|h| on_hold.contains(h));
            let erased = !held && hashes.iter().any(|h| suppressed.contains(h));
            if erased || !live.contains(&p.id) || !in_live.contains(&p.id) {
                stray.push(p.id);
            } else {
                present.insert(p.id);
            }
        }
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    let late = i64::try_from(stray.len()).unwrap_or(0);
    for batch in stray.chunks(1000) {
        store.delete(&staging, &Selector::by_ids(batch.to_vec())).await?;
    }
    let excluded = early + late;
    let physical_detail = left_out_detail(spec.backend, (early, &early_detail), late);
    let absent: Vec<Uuid> = live.iter().filter(|id| !present.contains(id)).copied().collect();
    let mut expected = i64::try_from(present.len()).unwrap_or(0);
    for batch in absent.chunks(BATCH as usize) {
        let chunks = lineage::chunk_texts(&ctx.pool, spec.tenant_id, batch).await?;
        expected += copy_chunks(ctx, job, &spec, &staging, &chunks).await?.0;
    }
    // 3. Verify, then switch.
    let count = i64::try_from(store.count_all(&staging).await?).unwrap_or(i64::MAX);
    if count != expected {
        return Err(LetheError::Unexpected(anyhow::anyhow!(
            "new generation holds {count} points, live lineage with vectors is {expected}"
        )));
    }
    let retired = store.promote(&spec, &staging).await?;
    fenced(reindex::switched(&ctx.pool, job.job_id, job.lease_epoch, &retired, (count, excluded), &physical_detail).await?)?;
    guard.commit().await.map_err(StoreError::from)?;
    Ok(format!("switched to a generation of {count} points ({excluded} excluded); retired {retired}"))
}

/// Before the switch takes the collection's lock: deletes from the new
/// generation the copies of points whose person was erased since the copy
/// began (not under legal hold; read under the holds' lock, as at the
/// switch), and on pgvector rewrites the new table when it deleted any:
/// `VACUUM FULL`, which nobody else's work waits for (no one reads or
/// writes the new table yet). A switch cut off between the deletes and the
/// rewrite finds nothing to leave out when resumed: those rows stay dead
/// (not said in the detail; rare, and left for now). Returns how many it left out and what the
/// rewrite says.
async fn leave_out_erased(
    ctx: &Context,
    spec: &CollectionSpec,
    staging: &CollectionSpec,
    store: &dyn crate::vector_store::VectorStore,
) -> Result<(i64, String)> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    holds::lock_shared(&mut tx, spec.tenant_id).await?;
    let suppressed: HashSet<Vec<u8>> = reindex::suppressed_hashes(&mut *tx, spec.tenant_id).await?.into_iter().collect();
    let on_hold: HashSet<Vec<u8>> = holds::held_hashes(&mut *tx, spec.tenant_id).await?.into_iter().collect();
    let held_chunks: HashSet<Uuid> =
        holds::held_chunks_in_collection(&mut *tx, spec.tenant_id, spec.collection_id).await?.into_iter().collect();
    let secret = ctx.tenant_secret(spec.tenant_id).await?;
    let mut erased = Vec::new();
    let mut offset = None;
    loop {
        let (page, next) = store.scroll(staging, offset, 1000, false).await?;
        for p in page {
            let hashes: Vec<Vec<u8>> = p.payload.subjects.iter().map(|s| keyed_hash(&secret, s)).collect();
            let held = held_chunks.contains(&p.id) || hashes.iter().any(|h| on_hold.contains(h));
            if !held && hashes.iter().any(|h| suppressed.contains(h)) {
                erased.push(p.id);
            }
        }
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    for batch in erased.chunks(1000) {
        store.delete(staging, &Selector::by_ids(batch.to_vec())).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    let left_out = i64::try_from(erased.len()).unwrap_or(i64::MAX);
    // Only when it left some out: a rewrite waits for older snapshots
    // (up to a minute) and copies the whole table.
    if staging.backend != crate::domain::Backend::Pgvector || left_out == 0 {
        return Ok((left_out, String::new()));
    }
    Ok(match store.reclaim(staging, true).await? {
        crate::vector_store::PhysicalOutcome::Confirmed(d) => (left_out, format!("rewritten: {d}")),
        crate::vector_store::PhysicalOutcome::Pending(d) => (left_out, format!("its rewrite is pending: {d}")),
    })
}

/// What the new generation holds of the points left out of it (its
/// `physical_detail`): `early` before the switch's lock (with what the
/// rewrite said), `late` under it (deleted then, not rewritten: the
/// collection's writes wait while the lock is held). Empty when none was.
fn left_out_detail(backend: crate::domain::Backend, (early, rewrite): (i64, &str), late: i64) -> String {
    if backend == crate::domain::Backend::Pgvector {
        let mut parts = Vec::new();
        if early > 0 || !rewrite.is_empty() {
            parts.push(format!("{early} points of people erased while the re-index copied were deleted from the new table, which was then {rewrite}"));
        }
        if late > 0 {
            parts.push(format!(
                "{late} points left out at the switch itself (erased or deleted just before it) are dead rows in the new \
                 table until (auto)VACUUM prunes them; an erasure with guaranteed physical erasure, or another re-index, \
                 rewrites it"
            ));
        }
        return parts.join("; ");
    }
    let excluded = early + late;
    if excluded == 0 {
        return String::new();
    }
    format!(
        "{excluded} points left out (their person was erased, or they were deleted, after they were copied) were \
         deleted from the new generation, and Qdrant's deletes are soft: their copies stay in its segment files \
         until an optimizer rewrites them. Another re-index (or an erasure with guaranteed physical erasure, which \
         runs one) copies the collection without them and deletes this generation"
    )
}

/// Drops the retired generation, then every other generation of the
/// collection that readers do not see: left behind by a re-index cut off
/// after promoting (this one's old generation, when its switch was resumed)
/// or by an interrupted one. They may hold dead data of erased people.
pub(super) async fn drop_retired(ctx: &Context, job: &ReindexRow) -> Result<String> {
    let spec = collection_of(ctx, job).await?;
    let store = ctx.stores.get(&spec)?;
    if let Some(retired) = job.retired_name.as_deref().filter(|r| !r.is_empty()) {
        store.drop_physical(retired).await?;
    }
    let orphans = store.orphans(&spec).await?;
    for name in &orphans {
        tracing::warn!(job_id = %job.job_id, generation = %name, "dropping a generation readers do not see");
        store.drop_physical(name).await?;
    }
    fenced(reindex::orphans_dropped(&ctx.pool, job.job_id, job.lease_epoch, i64::try_from(orphans.len()).unwrap_or(i64::MAX)).await?)?;
    Ok(format!("old generation dropped; {} unseen generations dropped", orphans.len()))
}

/// `Ok` when a fenced write was applied; the job was claimed again since
/// when not: this worker stops (the new holder resumes the stage).
fn fenced(applied: bool) -> Result<()> {
    if applied { Ok(()) } else { Err(LetheError::Unavailable(anyhow::anyhow!("re-index lease lost"))) }
}
