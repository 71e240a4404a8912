//! What the erase job does with residual candidates: report them, delete
//! them (counted in the backend before and after), or redact them (the
//! identifiers replaced in the text, re-embedded, lineage text rewritten,
//! and read back to check that no identifier is left).

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::{Candidate, lexical::Matcher};
use crate::context::Context;
use crate::domain::{CollectionSpec, Identifier, ResidualPolicy};
use crate::error::{LetheError, Result};
use crate::store::{StoreError, lineage};
use crate::vector_store::{PointPayload, Selector, VectorPoint};

/// Applies the policy to the candidates (marking each with its action) and
/// returns per collection `[found, deleted, redacted]`, counted in the backend.
///
/// Under `redact`, only candidates whose text names the person are rewritten;
/// candidates found by meaning alone carry no identifier to remove and stay
/// `reported`.
///
/// # Errors
/// Backend and database failures.
pub async fn apply(
    ctx: &Context,
    tenant_id: Uuid,
    policy: ResidualPolicy,
    identifiers: &[Identifier],
    candidates: &mut [Candidate],
) -> Result<Vec<(Uuid, [i64; 3])>> {
    let mut by_collection: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_collection.entry(c.collection_id).or_default().push(i);
    }
    let specs = lineage::list_collections(&ctx.pool, tenant_id).await?;
    let matcher = Matcher::new(identifiers);
    let mut out = Vec::new();
    for (collection_id, idx) in by_collection {
        let Some(spec) = specs.iter().find(|s| s.collection_id == collection_id) else { continue };
        let found = i64::try_from(idx.len()).unwrap_or(i64::MAX);
        let (deleted, redacted) = match policy {
            ResidualPolicy::Report => {
                mark(candidates, &idx, "reported");
                (0, 0)
            }
            ResidualPolicy::Delete => {
                let ids: Vec<Uuid> = idx.iter().map(|&i| candidates[i].point_id).collect();
                let deleted = delete_points(ctx, spec, ids).await?;
                mark(candidates, &idx, "deleted");
                (deleted, 0)
            }
            ResidualPolicy::Redact => {
                let (named, unnamed): (Vec<usize>, Vec<usize>) =
                    idx.iter().partition(|&&i| candidates[i].evidence.iter().any(|e| e.kind == "lexical"));
                let ids: Vec<Uuid> = named.iter().map(|&i| candidates[i].point_id).collect();
                let redacted = redact_points(ctx, spec, &ids, &matcher).await?;
                mark(candidates, &named, "redacted");
                mark(candidates, &unnamed, "reported");
                (0, redacted)
            }
        };
        out.push((collection_id, [found, deleted, redacted]));
    }
    Ok(out)
}

fn mark(candidates: &mut [Candidate], idx: &[usize], action: &str) {
    for &i in idx {
        candidates[i].action = action.to_owned();
    }
}

/// Deletes candidate points and their lineage; returns the verified count.
async fn delete_points(ctx: &Context, spec: &CollectionSpec, ids: Vec<Uuid>) -> Result<i64> {
    let store = ctx.stores.get(spec.backend)?;
    let selector = Selector::by_ids(ids.clone());
    let before = store.count(spec, &selector).await?;
    store.delete(spec, &selector).await?;
    let after = store.count(spec, &selector).await?;
    if after != 0 {
        return Err(LetheError::Unexpected(anyhow::anyhow!(
            "{after} residual points remain in `{}` after deletion",
            spec.name
        )));
    }
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    lineage::delete_chunks(&mut tx, spec.tenant_id, &ids).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(i64::try_from(before - after).unwrap_or(i64::MAX))
}

/// Rewrites candidate chunks without the identifiers: new text, new vector,
/// same id and tags. Returns how many of them now hold text without any
/// identifier (read back from the backend).
async fn redact_points(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], matcher: &Matcher) -> Result<i64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let store = ctx.stores.get(spec.backend)?;
    let points = store.retrieve(spec, ids, false).await?;
    let texts: HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, spec.tenant_id, ids).await?.into_iter().collect();
    let mut rewritten = Vec::new();
    for p in points {
        let Some(text) = texts.get(&p.id).cloned().flatten().or_else(|| p.payload.text.clone()) else { continue };
        let clean = matcher.redact(&text);
        // Text redacted by an earlier attempt of the stage needs no new vector.
        let payload_stale = p.payload.text.as_deref().is_some_and(|t| t != clean);
        if clean != text || payload_stale {
            rewritten.push((p, clean));
        }
    }
    let vectors = ctx.embedder.embed(rewritten.iter().map(|(_, t)| t.clone()).collect()).await?;
    let upserts: Vec<VectorPoint> = rewritten
        .iter()
        .zip(vectors)
        .map(|((p, clean), vector)| VectorPoint {
            id: p.id,
            vector,
            // Text goes back into the payload only where the payload held text.
            payload: PointPayload { text: p.payload.text.as_ref().map(|_| clean.clone()), ..p.payload.clone() },
        })
        .collect();
    store.upsert(spec, &upserts).await?;
    for (p, clean) in &rewritten {
        if texts.get(&p.id).is_some_and(Option::is_some) {
            lineage::update_chunk_text(&ctx.pool, spec.tenant_id, p.id, clean).await?;
        }
    }
    // Verify in the backend and in lineage: no identifier survives.
    let check = store.retrieve(spec, ids, false).await?;
    let lineage_after: HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, spec.tenant_id, ids).await?.into_iter().collect();
    let clean = check
        .iter()
        .filter(|p| {
            let in_payload = p.payload.text.as_deref().is_none_or(|t| matcher.find(t).is_empty());
            let in_lineage = lineage_after.get(&p.id).cloned().flatten().is_none_or(|t| matcher.find(&t).is_empty());
            in_payload && in_lineage
        })
        .count();
    Ok(i64::try_from(clean).unwrap_or(i64::MAX))
}
