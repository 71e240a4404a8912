//! Semantic residual search: exact nearest neighbours of the subject's own
//! chunks (captured before deletion) and of their identifiers.
//!
//! Similarity alone does not say "derived from this person": e-mail header
//! blocks, templates and newsletters are as close to one another as an
//! excerpt is to its source. So a neighbour of the person's own chunks is a
//! candidate only when most of its words are the person's own words (word
//! 5-grams of the text they authored, quoted and forwarded parts cut off), or
//! when it is a near copy of one of their chunks. Neighbours of identifier
//! embeddings only add evidence to chunks that name the person.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use uuid::Uuid;

use super::Probe;
use crate::context::Context;
use crate::domain::CollectionSpec;
use crate::error::Result;
use crate::store::lineage;

/// A chunk near one of the probes.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub collection_id: Uuid,
    pub point_id: Uuid,
    pub source_id: String,
    /// Cosine similarity to the closest probe.
    pub similarity: f32,
    pub probe: usize,
    /// Share of the chunk's words that are the person's own (0..=1).
    pub coverage: f32,
}

/// Words per shingle: long enough that common phrases rarely repeat by chance.
const SHINGLE: usize = 5;

/// Where a reply or forward begins: what follows was written by someone else.
const QUOTE_MARKERS: &[&str] = &[
    "-----Original Message",
    "----- Original Message",
    "----- Forwarded by",
    "---------------------- Forwarded",
    "-----Forwarded",
    "Begin forwarded message",
    "\n>",
];

/// The text a person wrote, as word shingles.
#[derive(Debug, Default)]
pub struct OwnWords {
    shingles: HashSet<u64>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn shingle_hash(words: &[String]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    words.hash(&mut h);
    h.finish()
}

/// The part of a message its sender wrote: up to the first quote or forward marker.
pub fn authored(text: &str) -> &str {
    let cut = QUOTE_MARKERS.iter().filter_map(|m| text.find(m)).min().unwrap_or(text.len());
    &text[..cut]
}

impl OwnWords {
    /// From the person's own documents, each in full (chunks joined in order).
    pub fn from_documents<'a>(documents: impl IntoIterator<Item = &'a str>) -> Self {
        let mut shingles = HashSet::new();
        for doc in documents {
            let w = words(authored(doc));
            shingles.extend(w.windows(SHINGLE).map(shingle_hash));
        }
        Self { shingles }
    }

    /// Share of the text's words inside a shingle the person wrote.
    pub fn coverage(&self, text: &str) -> f32 {
        let w = words(text);
        if w.len() < SHINGLE || self.shingles.is_empty() {
            return 0.0;
        }
        let mut covered = vec![false; w.len()];
        for (i, win) in w.windows(SHINGLE).enumerate() {
            if self.shingles.contains(&shingle_hash(win)) {
                covered[i..i + SHINGLE].iter_mut().for_each(|c| *c = true);
            }
        }
        covered.iter().filter(|c| **c).count() as f32 / w.len() as f32
    }
}

/// The person's own documents from lineage (their chunks joined per source in
/// order); the probes' texts when lineage holds no text.
///
/// # Errors
/// Database failures.
pub async fn own_words(ctx: &Context, own_chunks: &[Uuid], probes: &[Probe]) -> Result<OwnWords> {
    let rows = lineage::chunk_texts_in_order(&ctx.pool, own_chunks).await?;
    let mut docs: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for (source, text) in rows {
        let Some(text) = text else { continue };
        match (&last, docs.last_mut()) {
            (Some(s), Some(doc)) if *s == source => {
                doc.push_str("\n\n");
                doc.push_str(&text);
            }
            _ => docs.push(text),
        }
        last = Some(source);
    }
    if docs.is_empty() {
        docs = probes.iter().filter_map(|p| p.text.clone()).collect();
    }
    Ok(OwnWords::from_documents(docs.iter().map(String::as_str)))
}

/// Exact neighbours of the probes in one collection, at least `floor` similar,
/// the `pool` closest, with their coverage by the person's own words.
///
/// # Errors
/// Backend failures.
pub async fn neighbours(
    ctx: &Context,
    spec: &CollectionSpec,
    probes: &[Vec<f32>],
    own: &OwnWords,
    floor: f32,
    pool: usize,
) -> Result<Vec<Neighbour>> {
    let usable: Vec<Vec<f32>> = probes.iter().filter(|p| p.len() == spec.dimension).cloned().collect();
    if usable.is_empty() {
        return Ok(Vec::new());
    }
    let store = ctx.stores.get(spec.backend)?;
    let hits = store.search_exact(spec, spec.tenant_id, &usable, floor, pool).await?;
    let missing: Vec<Uuid> = hits.iter().filter(|h| h.payload.text.is_none()).map(|h| h.id).collect();
    let lineage_texts: std::collections::HashMap<Uuid, Option<String>> =
        if missing.is_empty() { Default::default() } else { lineage::chunk_texts(&ctx.pool, &missing).await?.into_iter().collect() };
    Ok(hits
        .into_iter()
        .map(|h| {
            let text = h.payload.text.clone().or_else(|| lineage_texts.get(&h.id).cloned().flatten()).unwrap_or_default();
            Neighbour {
                collection_id: spec.collection_id,
                point_id: h.id,
                source_id: h.payload.source_id,
                similarity: h.score,
                probe: h.probe,
                coverage: own.coverage(&text),
            }
        })
        .collect())
}

/// Embeds the identifiers (names, addresses) once, as probes for evidence.
///
/// # Errors
/// Embedding failures.
pub async fn identifier_probes(ctx: &Context, identifiers: &[crate::domain::Identifier]) -> Result<Vec<Vec<f32>>> {
    let texts: Vec<String> = identifiers.iter().map(|i| i.value.clone()).collect();
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ctx.embedder.embed(texts).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_the_persons_own_words_only() {
        let own = OwnWords::from_documents([
            "We should file the comments with the commission by Friday and ask for a hearing.\n\
             -----Original Message-----\nFrom: someone\nPlease send me the draft of the tariff filing today.",
        ]);
        // An excerpt of the authored part: fully covered.
        assert!((own.coverage("file the comments with the commission by Friday") - 1.0).abs() < 1e-6);
        // The quoted part is someone else's.
        assert_eq!(own.coverage("Please send me the draft of the tariff filing today."), 0.0);
        // Half own words, half new.
        let half = own.coverage("we should file the comments with totally different words in this sentence");
        assert!(half > 0.3 && half < 0.7, "{half}");
        // Too short to say.
        assert_eq!(own.coverage("by Friday"), 0.0);
    }

    #[test]
    fn authored_text_stops_at_the_first_quote_marker() {
        assert_eq!(authored("mine\n> theirs"), "mine");
        assert_eq!(authored("mine ----- Forwarded by X"), "mine ");
        assert_eq!(authored("all mine"), "all mine");
    }
}
