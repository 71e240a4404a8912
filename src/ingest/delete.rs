//! `DeletePoints`: a pipeline removes points it no longer wants (a document
//! changed or was deleted, LangChain's `index()` cleaning up, LlamaIndex's
//! `delete_ref_doc`), so that lineage keeps matching the store.
//!
//! Collections Lethe created: the points are deleted from the backend
//! (counted before and after), then their lineage is forgotten. Attached
//! collections: Lethe never alters the store, so the framework deletes its
//! points first; the lineage of those no longer in the store is forgotten,
//! that of points still there is kept. Either way, a chunk whose lineage tags
//! a subject on legal hold is neither deleted nor forgotten. A failure
//! between the backend delete and the lineage delete leaves lineage naming
//! points that are gone, which a retry forgets.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::context::{Context, collection_lock_key};
use crate::domain::{CollectionSpec, ExternalId, NativeId};
use crate::error::{LetheError, Result};
use crate::store::{StoreError, attach as attached_ids, holds, lineage};
use crate::vector_store::Selector;

/// A DeletePoints request, validated (point ids are parsed against the
/// collection's id type here).
#[derive(Debug, Clone)]
pub struct DeleteInput {
    pub point_ids: Vec<String>,
    pub source_ids: Vec<ExternalId>,
}

/// What DeletePoints did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Points deleted from the backend (collections Lethe created).
    pub deleted: u64,
    /// Chunks removed from lineage.
    pub forgotten: u64,
    /// Attached collections: points still in the store (lineage kept).
    pub kept: u64,
    /// Points kept with their lineage under a legal hold.
    pub held: u64,
}

/// Points handled per transaction: a source may hold any number of chunks.
const BATCH: usize = 1000;

/// How long a batch waits for the collection's writes and erasure stages in
/// flight to end before it gives up (UNAVAILABLE).
const EXCLUSIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Deletes the points (and every chunk of the sources) named by `input`, in
/// batches of [`BATCH`], each under its own locks and transaction: a failure
/// leaves the batches before it done and the rest untouched, and a retry
/// finishes.
///
/// # Errors
/// `InvalidArgument` for a point id that is not of the collection's id type;
/// backend and database failures.
pub async fn delete_points(ctx: &Context, spec: &CollectionSpec, input: &DeleteInput) -> Result<DeleteOutcome> {
    let natives: Vec<NativeId> = match spec.mapping.as_deref() {
        Some(m) => input
            .point_ids
            .iter()
            .enumerate()
            .map(|(i, s)| NativeId::parse_in(spec.backend, m.id_kind, s).map_err(|msg| LetheError::invalid(format!("point_ids[{i}]"), msg)))
            .collect::<Result<_>>()?,
        None => input
            .point_ids
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Uuid::parse_str(s)
                    .map(NativeId::Uuid)
                    .map_err(|_| LetheError::invalid(format!("point_ids[{i}]"), "must be a UUID"))
            })
            .collect::<Result<_>>()?,
    };
    // Text ids of attached stores are found through their lookup rows, as Track finds them.
    let looked_up: HashMap<Uuid, String> =
        natives.iter().filter(|n| n.needs_lookup()).map(|n| (n.key(spec.collection_id), n.as_string())).collect();
    let mut keys: Vec<Uuid> = natives.iter().map(|n| n.key(spec.collection_id)).collect();
    let mut seen: HashSet<Uuid> = keys.iter().copied().collect();
    let given: Vec<&str> = input.source_ids.iter().map(ExternalId::as_str).collect();
    if !given.is_empty() {
        // A source an erasure unnamed is found by its alias too.
        let secret = ctx.tenant_secret(spec.tenant_id).await?;
        let named = super::sources::with_aliases(&secret, &given);
        let sources: Vec<&str> = named.iter().map(String::as_str).collect();
        for id in lineage::source_chunks(&ctx.pool, spec.tenant_id, spec.collection_id, &sources).await? {
            if seen.insert(id) {
                keys.push(id);
            }
        }
    }
    let mut out = DeleteOutcome::default();
    for batch in keys.chunks(BATCH) {
        delete_batch(ctx, spec, batch, &looked_up, &mut out).await?;
    }
    tracing::debug!(collection = %spec.name, deleted = out.deleted, forgotten = out.forgotten, kept = out.kept, held = out.held, "points deleted");
    Ok(out)
}

async fn delete_batch(
    ctx: &Context,
    spec: &CollectionSpec,
    keys: &[Uuid],
    looked_up: &HashMap<Uuid, String>,
    out: &mut DeleteOutcome,
) -> Result<()> {
    // A turn at the pool (`Context::slot`): the guard's connection is held
    // while the statements below take another.
    let _turn = ctx.slot().await;
    let mut guard = ctx.pool.begin().await.map_err(StoreError::from)?;
    // Exclusive, as a re-index's switch takes it: writes hold it shared
    // until their vectors are written (and erasure stages while they touch
    // the backend), so a Track of these points ends before this batch
    // starts or starts after it ends.
    // (Shared, a Track could commit lineage between the backend delete and
    // the lineage delete below, or upsert to Qdrant after both, leaving a
    // vector without lineage; and the two took chunk and tag rows in
    // opposite orders.) A point is deleted either before a re-index's new
    // generation is reconciled or in it. The wait is bounded (the writes
    // that come after this request wait behind it): a long erasure stage in
    // the collection makes the call UNAVAILABLE, to be retried.
    lineage::lock_exclusive_within(&mut guard, collection_lock_key(spec.collection_id), EXCLUSIVE_WAIT).await?;
    holds::lock_shared(&mut guard, spec.tenant_id).await?;
    let held: HashSet<Uuid> = holds::held_chunks(&mut *guard, spec.tenant_id, Some(spec.collection_id), keys, Uuid::nil()).await?.into_iter().collect();
    out.held += held.len() as u64;
    let targets: Vec<Uuid> = keys.iter().copied().filter(|k| !held.contains(k)).collect();
    if targets.is_empty() {
        guard.commit().await.map_err(StoreError::from)?;
        return Ok(());
    }
    let store = ctx.stores.get(spec)?;
    let gone: Vec<Uuid> = if spec.is_attached() {
        let lookups: Vec<(Uuid, String)> =
            targets.iter().filter_map(|k| looked_up.get(k).map(|n| (*k, n.clone()))).collect();
        // The store reads a text id's point through its lookup row; what
        // this batch added is forgotten again unless lineage stands behind
        // it (also when the store fails here: the id may name a person).
        let added = attached_ids::record_point_ids(&ctx.pool, spec.collection_id, &lookups).await?;
        let present = store.retrieve(spec, &targets, false).await;
        if present.is_err()
            && let Err(e) = attached_ids::forget_unlinked_point_ids(&ctx.pool, spec.tenant_id, spec.collection_id, &added).await
        {
            // The store's error is the one to report; the rows go with the next call.
            tracing::warn!(error.cause_chain = ?e, rows = added.len(), "lookup rows of text ids not forgotten");
        }
        let present: HashSet<Uuid> = present?.into_iter().map(|p| p.id).collect();
        out.kept += present.len() as u64;
        let absent: Vec<Uuid> = targets.iter().copied().filter(|k| !present.contains(k)).collect();
        // Lookup rows of ids that name no point (lineage's are removed with
        // it), and of points still there that lineage does not know.
        attached_ids::forget_point_ids(&ctx.pool, spec.collection_id, &absent).await?;
        let untracked: Vec<Uuid> = added.iter().copied().filter(|k| present.contains(k)).collect();
        attached_ids::forget_unlinked_point_ids(&ctx.pool, spec.tenant_id, spec.collection_id, &untracked).await?;
        absent
    } else {
        let selector = Selector::by_ids(targets.clone());
        let before = store.count(spec, &selector).await?;
        store.delete(spec, &selector).await?;
        let after = store.count(spec, &selector).await?;
        if after != 0 {
            return Err(LetheError::Unavailable(anyhow::anyhow!(
                "{after} of {before} points are still in `{}` after the delete; their lineage is kept, retry",
                spec.name
            )));
        }
        out.deleted += before;
        targets
    };
    out.forgotten += lineage::delete_chunks(&mut guard, spec.tenant_id, spec.collection_id, &gone).await?;
    guard.commit().await.map_err(StoreError::from)?;
    Ok(())
}
