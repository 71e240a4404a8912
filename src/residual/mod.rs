//! Residual search: what still refers to a person after the lineage-based
//! deletion — chunks that name them (lexical) or resemble their own chunks
//! (semantic). This module finds candidates; the erase job decides what to
//! do with them (report, delete, redact).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::Context;
use crate::domain::{CollectionSpec, Identifier, ResidualPolicy};
use crate::error::{LetheError, Result};
use crate::store::lineage;
use crate::vector_store::{PointPayload, Selector, VectorPoint};

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct ResidualQuery {
    pub identifiers: Vec<Identifier>,
    /// Embeddings (and texts) of the subject's own chunks, captured before deletion.
    pub probes: Vec<Probe>,
    /// Points never to report (e.g. the subject's own, already deleted).
    pub exclude: HashSet<Uuid>,
    pub limit: usize,
}

/// One of the subject's own chunks.
#[derive(Debug, Clone)]
pub struct Probe {
    pub text: Option<String>,
    pub vector: Vec<f32>,
}

/// Why a chunk is a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// `lexical` or `semantic`.
    pub kind: String,
    /// Lexical: the form that matched (`email`, `first_last`, …) and the
    /// identifier; semantic: which probe.
    pub detail: String,
    /// The matched text (lexical) or empty.
    pub matched: String,
    pub score: f32,
}

/// A chunk that may still refer to the person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub collection: String,
    pub collection_id: Uuid,
    pub point_id: Uuid,
    pub source_id: String,
    pub score: f32,
    pub evidence: Vec<Evidence>,
    /// `reported`, `deleted` or `redacted`.
    pub action: String,
}

/// Searches every collection of the tenant.
///
/// # Errors
/// Backend and database failures.
pub async fn search(_ctx: &Context, _tenant_id: Uuid, _query: &ResidualQuery) -> Result<Vec<Candidate>> {
    // Filled in by the residual-search issue: the stage and its policies are
    // wired already and find nothing until then.
    Ok(Vec::new())
}

/// Removes every occurrence of the identifiers from `text`.
pub fn redact(text: &str, _identifiers: &[Identifier]) -> String {
    text.to_owned()
}

/// Applies the policy to the candidates (marking each with its action) and
/// returns per collection `[found, deleted, redacted]`, counted in the backend.
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
    let mut out = Vec::new();
    for (collection_id, idx) in by_collection {
        let Some(spec) = specs.iter().find(|s| s.collection_id == collection_id) else { continue };
        let ids: Vec<Uuid> = idx.iter().map(|&i| candidates[i].point_id).collect();
        let found = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let (deleted, redacted, action) = match policy {
            ResidualPolicy::Report => (0, 0, "reported"),
            ResidualPolicy::Delete => (delete_points(ctx, spec, ids).await?, 0, "deleted"),
            ResidualPolicy::Redact => (0, redact_points(ctx, spec, &ids, identifiers).await?, "redacted"),
        };
        for &i in &idx {
            candidates[i].action = action.to_owned();
        }
        out.push((collection_id, [found, deleted, redacted]));
    }
    Ok(out)
}

/// Deletes candidate points and their lineage; returns the verified count.
async fn delete_points(ctx: &Context, spec: &CollectionSpec, ids: Vec<Uuid>) -> Result<i64> {
    let store = ctx.stores.get(spec.backend)?;
    let selector = Selector::by_ids(spec.tenant_id, ids.clone());
    let before = store.count(spec, &selector).await?;
    store.delete(spec, &selector).await?;
    let after = store.count(spec, &selector).await?;
    if after != 0 {
        return Err(LetheError::Unexpected(anyhow::anyhow!(
            "{after} residual points remain in `{}` after deletion",
            spec.name
        )));
    }
    let mut tx = ctx.pool.begin().await.map_err(crate::store::StoreError::from)?;
    lineage::delete_chunks(&mut tx, &ids).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(i64::try_from(before - after).unwrap_or(i64::MAX))
}

/// Rewrites candidate chunks without the identifiers: new text, new vector,
/// same id and tags. Returns how many points now hold redacted text.
async fn redact_points(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], identifiers: &[Identifier]) -> Result<i64> {
    let store = ctx.stores.get(spec.backend)?;
    let points = store.retrieve(spec, ids, false).await?;
    let texts: std::collections::HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, ids).await?.into_iter().collect();
    let mut rewritten = Vec::new();
    for p in points {
        let Some(text) = texts.get(&p.id).cloned().flatten().or_else(|| p.payload.text.clone()) else { continue };
        let clean = redact(&text, identifiers);
        rewritten.push((p, clean));
    }
    let vectors = ctx.embedder.embed(rewritten.iter().map(|(_, t)| t.clone()).collect()).await?;
    let upserts: Vec<VectorPoint> = rewritten
        .iter()
        .zip(vectors)
        .map(|((p, clean), vector)| VectorPoint {
            id: p.id,
            vector,
            payload: PointPayload { text: Some(clean.clone()), ..p.payload.clone() },
        })
        .collect();
    store.upsert(spec, &upserts).await?;
    for (p, clean) in &rewritten {
        lineage::update_chunk_text(&ctx.pool, p.id, clean).await?;
    }
    // Verify: read back and check that no identifier survives.
    let check = store.retrieve(spec, ids, false).await?;
    let clean = check.iter().filter(|p| p.payload.text.as_deref().is_some_and(|t| redact(t, identifiers) == t)).count();
    Ok(i64::try_from(clean).unwrap_or(i64::MAX))
}
