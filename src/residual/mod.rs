//! Residual search: what still refers to a person after the lineage-based
//! deletion — chunks that name them (lexical) or repeat their own words
//! (semantic). This module finds candidates and applies a policy to them; the
//! erase job decides when. It never builds SQL (that is `store::lineage`) and
//! never talks to a backend except through `VectorStore`.
//!
//! - [`lexical`]: identifiers in the forms people write them, matched in the
//!   chunk text of every collection; redaction.
//! - [`semantic`]: content derived from the subject's own chunks: chunks
//!   made of their own words, near copies among the exact nearest neighbours.
//! - [`scan`]: one pass over the tenant's chunk texts for both.
//! - [`policy`]: report, delete or redact.

mod lexical;
mod names;
mod nicknames;
mod policy;
mod scan;
mod semantic;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::policy::apply;
use crate::context::Context;
use crate::domain::{CollectionSpec, Identifier};
use crate::error::Result;
use crate::store::lineage;

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct ResidualQuery {
    pub identifiers: Vec<Identifier>,
    /// Embeddings (and texts) of the subject's own chunks, captured before deletion.
    pub probes: Vec<Probe>,
    /// Points never to report (the subject's own, already deleted); their
    /// lineage text, while it lasts, tells which words are the person's own.
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
    /// `lexical`, `semantic` (near the subject's own chunks) or `identifier`
    /// (near an embedding of an identifier).
    pub kind: String,
    /// Lexical: the form (`email`, `first_last`, …), the identifier's kind
    /// and index, and the byte position; semantic: which probe, similarity
    /// and share of the person's own words.
    pub detail: String,
    /// The matched text (lexical) or empty.
    pub matched: String,
    pub score: f32,
    /// Byte offset of the match in the chunk text (lexical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
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

/// Lexical evidence kept per candidate (the strongest first).
const MAX_EVIDENCE: usize = 8;

/// Score of an excerpt made only of the person's own words (below a full
/// name or address: the words are theirs, but nothing names them).
const EXCERPT_WEIGHT: f32 = 0.9;

/// Searches every collection of the tenant and returns one list, best first,
/// at most `query.limit`, without the `exclude` points.
///
/// # Errors
/// Backend, embedding and database failures.
pub async fn search(ctx: &Context, tenant_id: Uuid, query: &ResidualQuery) -> Result<Vec<Candidate>> {
    let s = &ctx.settings.residual;
    let specs = lineage::list_collections(&ctx.pool, tenant_id).await?;
    let matcher = lexical::Matcher::new(if s.lexical { &query.identifiers } else { &[] });
    let own = if s.semantic && !(query.probes.is_empty() && query.exclude.is_empty()) {
        let own_ids: Vec<Uuid> = query.exclude.iter().copied().collect();
        semantic::own_words(ctx, &own_ids, &query.probes).await?
    } else {
        semantic::OwnWords::default()
    };
    let scanned = scan::scan(ctx, tenant_id, &specs, &matcher, &own, &query.exclude).await?;
    let mut found = Found::default();
    for hit in scanned.lexical {
        found.lexical(&query.identifiers, hit);
    }
    if s.semantic {
        found.excerpts(&scanned.overlaps, s.derived_min_coverage);
        let vectors: Vec<Vec<f32>> = query.probes.iter().map(|p| p.vector.clone()).collect();
        for spec in &specs {
            for n in semantic::neighbours(ctx, spec, &vectors, s.own_chunk_threshold, s.semantic_pool).await? {
                if !query.exclude.contains(&n.point_id) {
                    found.neighbour(n, s.near_copy_threshold);
                }
            }
        }
        identifier_evidence(ctx, &specs, &query.identifiers, &mut found).await?;
    }
    Ok(found.ranked(&specs, query.limit, s.max_semantic))
}

/// Chunks that name the person only weakly (a lone surname) are compared
/// with embeddings of the identifiers: close ones become candidates.
async fn identifier_evidence(ctx: &Context, specs: &[CollectionSpec], identifiers: &[Identifier], found: &mut Found) -> Result<()> {
    let weak = found.weak();
    if weak.is_empty() || identifiers.is_empty() {
        return Ok(());
    }
    let names = ctx.embedder.embed(identifiers.iter().map(|i| i.value.clone()).collect()).await?;
    for spec in specs {
        let ids: Vec<Uuid> = weak.iter().filter(|(c, _)| *c == spec.collection_id).map(|(_, p)| *p).collect();
        if ids.is_empty() {
            continue;
        }
        for p in ctx.stores.get(spec.backend)?.retrieve(spec, &ids, true).await? {
            let Some(v) = p.vector else { continue };
            let best = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.len() == v.len())
                .map(|(i, n)| (i, cosine(n, &v)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, sim)) = best.filter(|(_, sim)| *sim >= ctx.settings.residual.identifier_threshold) {
                found.identifier(p.id, i, sim);
            }
        }
    }
    Ok(())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let n = norm(a) * norm(b);
    if n == 0.0 { 0.0 } else { dot / n }
}

/// Candidates being assembled, by point.
#[derive(Default)]
struct Found {
    by_point: HashMap<Uuid, Building>,
}

struct Building {
    collection_id: Uuid,
    source_id: String,
    lexical: f32,
    semantic: f32,
    identifier: f32,
    evidence: Vec<Evidence>,
}

impl Found {
    fn entry(&mut self, collection_id: Uuid, point_id: Uuid, source_id: &str) -> &mut Building {
        self.by_point.entry(point_id).or_insert_with(|| Building {
            collection_id,
            source_id: source_id.to_owned(),
            lexical: 0.0,
            semantic: 0.0,
            identifier: 0.0,
            evidence: Vec::new(),
        })
    }

    fn lexical(&mut self, identifiers: &[Identifier], hit: lexical::Hit) {
        let b = self.entry(hit.collection_id, hit.point_id, &hit.source_id);
        b.lexical = b.lexical.max(hit.score);
        let mut matches = hit.matches;
        matches.sort_by(|a, c| c.form.weight().total_cmp(&a.form.weight()).then(a.start.cmp(&c.start)));
        for m in matches.into_iter().take(MAX_EVIDENCE) {
            let kind = identifiers.get(m.identifier).map_or("identifier", |i| i.kind.as_str());
            b.evidence.push(Evidence {
                kind: "lexical".into(),
                detail: format!("{} of {kind} #{} at {}", m.form.as_str(), m.identifier, m.start),
                matched: m.text,
                score: m.form.weight(),
                position: Some(m.start),
            });
        }
    }

    /// Chunks mostly made of the person's own words (5-grams common to
    /// several other sources not counted).
    fn excerpts(&mut self, overlaps: &[(scan::ChunkRef, semantic::Overlap)], min_share: f32) {
        let named: HashSet<String> =
            self.by_point.values().filter(|b| b.lexical >= lexical::MIN_SCORE).map(|b| b.source_id.clone()).collect();
        let named_refs: HashSet<&str> = named.iter().map(String::as_str).collect();
        let common = semantic::common_shingles(overlaps.iter().map(|(c, o)| (c.source_id.as_str(), o)), &named_refs);
        for (chunk, o) in overlaps {
            let own = o.own_words(&common);
            let share = own as f32 / o.words.max(1) as f32;
            if own >= semantic::MIN_OWN_WORDS && share >= min_share {
                let b = self.entry(chunk.collection_id, chunk.point_id, &chunk.source_id);
                b.semantic = b.semantic.max(EXCERPT_WEIGHT * share);
                b.evidence.push(Evidence {
                    kind: "semantic".into(),
                    detail: format!("excerpt: {own} of {} words are the person's own", o.words),
                    matched: String::new(),
                    score: share,
                    position: None,
                });
            }
        }
    }

    /// A near copy of one of the person's chunks is a candidate; a more
    /// distant neighbour only adds its similarity to a chunk already found.
    fn neighbour(&mut self, n: semantic::Neighbour, near_copy: f32) {
        let is_copy = n.similarity >= near_copy;
        if !is_copy && !self.by_point.contains_key(&n.point_id) {
            return;
        }
        let b = self.entry(n.collection_id, n.point_id, &n.source_id);
        if is_copy {
            b.semantic = b.semantic.max(n.similarity);
        }
        let what = if is_copy { "near copy of" } else { "near" };
        b.evidence.push(Evidence {
            kind: "semantic".into(),
            detail: format!("{what} own chunk #{}: similarity {:.3}", n.probe, n.similarity),
            matched: String::new(),
            score: n.similarity,
            position: None,
        });
    }

    /// Points that name the person only weakly, by collection.
    fn weak(&self) -> Vec<(Uuid, Uuid)> {
        self.by_point
            .iter()
            .filter(|(_, b)| b.lexical > 0.0 && b.lexical < lexical::MIN_SCORE && b.semantic == 0.0)
            .map(|(p, b)| (b.collection_id, *p))
            .collect()
    }

    fn identifier(&mut self, point_id: Uuid, identifier: usize, similarity: f32) {
        if let Some(b) = self.by_point.get_mut(&point_id) {
            b.identifier = b.identifier.max(similarity);
            b.evidence.push(Evidence {
                kind: "identifier".into(),
                detail: format!("near identifier #{identifier}: similarity {similarity:.3}"),
                matched: String::new(),
                score: similarity,
                position: None,
            });
        }
    }

    /// Keeps chunks that name the person, or repeat their words, or name them
    /// weakly and resemble an identifier; semantic-only ones capped at
    /// `max_semantic`. Best first, at most `limit`.
    fn ranked(self, specs: &[CollectionSpec], limit: usize, max_semantic: usize) -> Vec<Candidate> {
        let mut out: Vec<(bool, Candidate)> = self
            .by_point
            .into_iter()
            .filter(|(_, b)| b.lexical >= lexical::MIN_SCORE || b.semantic > 0.0 || (b.lexical > 0.0 && b.identifier > 0.0))
            .filter_map(|(point_id, b)| {
                let spec = specs.iter().find(|s| s.collection_id == b.collection_id)?;
                // Noisy-or of the kinds of evidence; identifier similarity counts half.
                let score = 1.0 - (1.0 - b.lexical) * (1.0 - b.semantic) * (1.0 - 0.5 * b.identifier);
                let semantic_only = b.lexical == 0.0;
                Some((semantic_only, Candidate {
                    collection: spec.name.to_string(),
                    collection_id: b.collection_id,
                    point_id,
                    source_id: b.source_id,
                    score,
                    evidence: b.evidence,
                    action: "reported".into(),
                }))
            })
            .collect();
        out.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.1.point_id.cmp(&b.1.point_id)));
        let mut semantic_kept = 0;
        out.retain(|(semantic_only, _)| {
            semantic_kept += usize::from(*semantic_only);
            !*semantic_only || semantic_kept <= max_semantic
        });
        out.into_iter().take(limit).map(|(_, c)| c).collect()
    }
}

/// Removes every occurrence of the identifiers from `text` (each becomes
/// `[redacted]`). Idempotent: redacting a redacted text changes nothing.
pub fn redact(text: &str, identifiers: &[Identifier]) -> String {
    lexical::Matcher::new(identifiers).redact(text)
}
