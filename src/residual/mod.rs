//! Residual search: what still refers to a person after the lineage-based
//! deletion — chunks that name them (lexical) or repeat their own words
//! (semantic). This module finds candidates and applies a policy to them; the
//! erase job decides when. It never builds SQL (that is `store::lineage`) and
//! never talks to a backend except through `VectorStore`.
//!
//! - [`lexical`]: identifiers in the forms people write them, matched in the
//!   chunk text of every collection; redaction.
//! - [`semantic`]: exact nearest neighbours of the subject's own chunks,
//!   confirmed by the share of the person's own words they contain.
//! - [`policy`]: report, delete or redact.

mod lexical;
mod names;
mod nicknames;
mod policy;
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

/// Searches every collection of the tenant and returns one list, best first,
/// at most `query.limit`, without the `exclude` points.
///
/// # Errors
/// Backend, embedding and database failures.
pub async fn search(ctx: &Context, tenant_id: Uuid, query: &ResidualQuery) -> Result<Vec<Candidate>> {
    let settings = &ctx.settings.residual;
    let specs = lineage::list_collections(&ctx.pool, tenant_id).await?;
    let mut found = Found::default();
    let matcher = lexical::Matcher::new(&query.identifiers);
    if settings.lexical {
        for hit in lexical::search(ctx, tenant_id, &specs, &matcher, &query.exclude).await? {
            found.lexical(&query.identifiers, hit);
        }
    }
    if settings.semantic {
        semantic_search(ctx, &specs, query, &mut found).await?;
    }
    Ok(found.ranked(&specs, query.limit, settings.max_semantic))
}

/// Neighbours of the probes (confirmed by own words) and of the identifiers.
async fn semantic_search(ctx: &Context, specs: &[CollectionSpec], query: &ResidualQuery, found: &mut Found) -> Result<()> {
    let s = &ctx.settings.residual;
    let vectors: Vec<Vec<f32>> = query.probes.iter().map(|p| p.vector.clone()).collect();
    let own_ids: Vec<Uuid> = query.exclude.iter().copied().collect();
    let own = if vectors.is_empty() { semantic::OwnWords::default() } else { semantic::own_words(ctx, &own_ids, &query.probes).await? };
    let names = if found.is_empty() { Vec::new() } else { semantic::identifier_probes(ctx, &query.identifiers).await? };
    for spec in specs {
        for n in semantic::neighbours(ctx, spec, &vectors, &own, s.own_chunk_threshold, s.semantic_pool).await? {
            let derived = n.coverage >= s.derived_min_coverage;
            let near_copy = n.similarity >= s.near_copy_threshold;
            if (derived || near_copy) && !query.exclude.contains(&n.point_id) {
                found.semantic(n, near_copy);
            }
        }
        let none = semantic::OwnWords::default();
        for n in semantic::neighbours(ctx, spec, &names, &none, s.identifier_threshold, s.semantic_pool).await? {
            found.identifier(&n);
        }
    }
    Ok(())
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
    fn is_empty(&self) -> bool {
        self.by_point.is_empty()
    }

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

    fn semantic(&mut self, n: semantic::Neighbour, near_copy: bool) {
        let score = if near_copy { n.similarity } else { n.similarity.max(n.coverage) };
        let b = self.entry(n.collection_id, n.point_id, &n.source_id);
        b.semantic = b.semantic.max(score);
        b.evidence.push(Evidence {
            kind: "semantic".into(),
            detail: format!(
                "{} of own chunk #{}: similarity {:.3}, own words {:.2}",
                if near_copy { "near copy" } else { "excerpt" },
                n.probe,
                n.similarity,
                n.coverage
            ),
            matched: String::new(),
            score,
            position: None,
        });
    }

    /// Identifier neighbours only strengthen chunks already found.
    fn identifier(&mut self, n: &semantic::Neighbour) {
        if let Some(b) = self.by_point.get_mut(&n.point_id) {
            b.identifier = b.identifier.max(n.similarity);
            b.evidence.push(Evidence {
                kind: "identifier".into(),
                detail: format!("near identifier #{}: similarity {:.3}", n.probe, n.similarity),
                matched: String::new(),
                score: n.similarity,
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
