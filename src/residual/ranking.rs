//! Evidence merged per chunk into candidates: which chunks qualify, their
//! score (a noisy-or of the kinds of evidence), and one list, best first,
//! with chunks found by meaning alone capped so they cannot flood the report.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{Candidate, Evidence, lexical, scan, semantic};
use crate::domain::{CollectionSpec, Identifier};

/// Score of an excerpt made only of the person's own words (below a full
/// name or address: the words are theirs, but nothing names them).
const EXCERPT_WEIGHT: f32 = 0.9;

/// Candidates being assembled, by point.
#[derive(Default)]
pub struct Found {
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

    pub fn lexical(&mut self, identifiers: &[Identifier], hit: lexical::Hit) {
        let b = self.entry(hit.collection_id, hit.point_id, &hit.source_id);
        b.lexical = b.lexical.max(hit.score);
        // At most `lexical::MAX_MATCHES`, the strongest first.
        for m in hit.matches {
            let kind = identifiers.get(m.identifier).map_or("identifier", |i| i.kind.as_str());
            b.evidence.push(Evidence {
                kind: "lexical".into(),
                detail: format!("{} of {kind} #{} at {}", m.form.as_str(), m.identifier, m.start),
                matched: m.text,
                score: m.form.weight(),
                position: Some(m.start),
                identifier: Some(m.identifier),
            });
        }
    }

    /// Chunks mostly made of the person's own words (5-grams common to
    /// several other sources not counted).
    pub fn excerpts(&mut self, overlaps: &[(scan::ChunkRef, semantic::Overlap)], min_share: f32) {
        let named = self.named_sources();
        let named_refs: HashSet<&str> = named.iter().map(String::as_str).collect();
        let common = semantic::common_shingles(overlaps.iter().map(|(c, o)| (c.source_id.as_str(), o)), &named_refs);
        for (chunk, o) in overlaps {
            let (own, boilerplate) = o.own_words(&common);
            let share = own as f32 / (o.words - boilerplate).max(1) as f32;
            if own >= semantic::MIN_OWN_WORDS && share >= min_share {
                let b = self.entry(chunk.collection_id, chunk.point_id, &chunk.source_id);
                b.semantic = b.semantic.max(EXCERPT_WEIGHT * share);
                b.evidence.push(Evidence {
                    kind: "semantic".into(),
                    detail: format!(
                        "excerpt: {own} of {} words are the person's own ({boilerplate} boilerplate or header)",
                        o.words
                    ),
                    matched: String::new(),
                    score: share,
                    position: None,
                    identifier: None,
                });
            }
        }
    }

    /// Where words cannot tell (the chunk has no stored text, or the person's
    /// own text is unknown), a near copy of one of the person's chunks is a
    /// candidate, unless that chunk has near copies in `COMMON_SOURCES` or
    /// more other sources (a disclaimer, a header block, a mass mailing: not
    /// theirs). Otherwise a neighbour only adds its similarity as evidence to
    /// a chunk found already: similar text someone else wrote, or forwarded,
    /// is not the person's.
    pub fn neighbours(&mut self, all: Vec<semantic::Neighbour>, near_copy: f32, words_known: bool) {
        let named = self.named_sources();
        let mut copies_of: HashMap<usize, HashSet<&str>> = HashMap::new();
        for n in all.iter().filter(|n| n.similarity >= near_copy && !named.contains(&n.source_id)) {
            copies_of.entry(n.probe).or_default().insert(n.source_id.as_str());
        }
        let common: HashSet<usize> =
            copies_of.into_iter().filter(|(_, s)| s.len() >= semantic::COMMON_SOURCES).map(|(p, _)| p).collect();
        for n in all {
            let is_copy = n.similarity >= near_copy && !common.contains(&n.probe) && !(words_known && n.has_text);
            if !is_copy && !self.by_point.contains_key(&n.point_id) {
                continue;
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
                identifier: None,
            });
        }
    }

    /// Sources of chunks that name the person.
    fn named_sources(&self) -> HashSet<String> {
        self.by_point.values().filter(|b| b.lexical >= lexical::MIN_SCORE).map(|b| b.source_id.clone()).collect()
    }

    /// Points that name the person only weakly, by collection.
    pub fn weak(&self) -> Vec<(Uuid, Uuid)> {
        self.by_point
            .iter()
            .filter(|(_, b)| b.lexical > 0.0 && b.lexical < lexical::MIN_SCORE && b.semantic == 0.0)
            .map(|(p, b)| (b.collection_id, *p))
            .collect()
    }

    pub fn identifier(&mut self, point_id: Uuid, identifier: usize, similarity: f32) {
        if let Some(b) = self.by_point.get_mut(&point_id) {
            b.identifier = b.identifier.max(similarity);
            b.evidence.push(Evidence {
                kind: "identifier".into(),
                detail: format!("near identifier #{identifier}: similarity {similarity:.3}"),
                matched: String::new(),
                score: similarity,
                position: None,
                identifier: Some(identifier),
            });
        }
    }

    /// Keeps chunks that name the person, or repeat their words, or name them
    /// weakly and resemble an identifier; semantic-only ones capped at
    /// `max_semantic`. Best first, at most `limit`; with the number that
    /// qualified before either cap.
    pub fn ranked(self, specs: &[CollectionSpec], limit: usize, max_semantic: usize) -> (Vec<Candidate>, usize) {
        let mut out: Vec<(bool, Candidate)> = self
            .by_point
            .into_iter()
            .filter(|(_, b)| {
                b.lexical >= lexical::MIN_SCORE || b.semantic > 0.0 || (b.lexical > 0.0 && b.identifier > 0.0)
            })
            .filter_map(|(point_id, b)| {
                let spec = specs.iter().find(|s| s.collection_id == b.collection_id)?;
                // Noisy-or of the kinds of evidence; identifier similarity counts half.
                let score = 1.0 - (1.0 - b.lexical) * (1.0 - b.semantic) * (1.0 - 0.5 * b.identifier);
                let semantic_only = b.lexical == 0.0;
                Some((
                    semantic_only,
                    Candidate {
                        collection: spec.name.to_string(),
                        collection_id: b.collection_id,
                        point_id,
                        source_id: b.source_id,
                        score,
                        evidence: b.evidence,
                        action: "reported".into(),
                    },
                ))
            })
            .collect();
        out.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.1.point_id.cmp(&b.1.point_id)));
        let qualified = out.len();
        let mut semantic_kept = 0;
        out.retain(|(semantic_only, _)| {
            semantic_kept += usize::from(*semantic_only);
            !*semantic_only || semantic_kept <= max_semantic
        });
        (out.into_iter().take(limit).map(|(_, c)| c).collect(), qualified)
    }
}
