//! What the erase job does with residual candidates: report them, delete
//! them (counted in the backend before and after), or redact them (the
//! identifiers replaced in the text, re-embedded, lineage text rewritten,
//! and read back to check that no identifier is left).

use std::collections::HashMap;

use uuid::Uuid;

use super::{Candidate, lexical::Matcher};
use crate::context::Context;
use crate::domain::{CollectionSpec, Identifier, ResidualPolicy};
use crate::error::Result;
use crate::store::{StoreError, lineage};
use crate::vector_store::{PointPayload, Selector, VectorPoint};

/// What the job did (or will do) with a candidate: `Candidate::action`.
pub mod action {
    pub const REPORTED: &str = "reported";
    pub const DELETED: &str = "deleted";
    pub const REDACTED: &str = "redacted";
    /// Planned and stored before the collection's deletes began; a job that
    /// stopped half-way shows what it had not yet done.
    pub const PENDING_DELETE: &str = "pending_delete";
    pub const PENDING_REDACT: &str = "pending_redact";
    /// Tagged with a subject on legal hold (or the erased subject was placed
    /// under hold): reported, neither deleted nor redacted.
    pub const WITHHELD_LEGAL_HOLD: &str = "withheld_legal_hold";
}

/// Marks each candidate with the action the policy will take. Under
/// `redact`, only candidates whose text names the person can be rewritten;
/// candidates found by meaning alone carry no identifier to remove and stay
/// `reported`.
pub fn plan(policy: ResidualPolicy, candidates: &mut [Candidate]) {
    for c in candidates {
        c.action = match policy {
            ResidualPolicy::Report => action::REPORTED,
            ResidualPolicy::Delete => action::PENDING_DELETE,
            ResidualPolicy::Redact if c.evidence.iter().any(|e| e.kind == "lexical") => action::PENDING_REDACT,
            ResidualPolicy::Redact => action::REPORTED,
        }
        .to_owned();
    }
}

/// Deletes the points `targets` from the backend and the chunks
/// `chunk_ids` (targets and candidates without a vector) from lineage;
/// returns how many of the targets are still in the backend afterwards.
///
/// # Errors
/// Backend and database failures.
pub async fn delete_points(ctx: &Context, spec: &CollectionSpec, targets: &[Uuid], chunk_ids: &[Uuid]) -> Result<u64> {
    let store = ctx.stores.get(spec.backend)?;
    let selector = Selector::by_ids(targets.to_vec());
    store.delete(spec, &selector).await?;
    let after = store.count(spec, &selector).await?;
    if after == 0 {
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        lineage::delete_chunks(&mut tx, chunk_ids).await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(after)
}

/// Rewrites candidate chunks without the identifiers: new text, new vector,
/// same id and tags. Returns how many of them now hold text without any
/// identifier (read back from the backend and lineage). Idempotent: a text
/// redacted by an earlier attempt is only checked again.
///
/// # Errors
/// Backend, embedding and database failures.
pub async fn redact_points(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], identifiers: &[Identifier]) -> Result<i64> {
    redact_with(ctx, spec, ids, &Matcher::new(identifiers)).await
}

async fn redact_with(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], matcher: &Matcher) -> Result<i64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let store = ctx.stores.get(spec.backend)?;
    let points = store.retrieve(spec, ids, false).await?;
    let texts: HashMap<Uuid, Option<String>> = lineage::chunk_texts(&ctx.pool, ids).await?.into_iter().collect();
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
            lineage::update_chunk_text(&ctx.pool, p.id, clean).await?;
        }
    }
    // Verify in the backend and in lineage: no identifier survives.
    let check = store.retrieve(spec, ids, false).await?;
    let lineage_after: HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, ids).await?.into_iter().collect();
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
