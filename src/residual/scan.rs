//! One pass over the tenant's chunk texts for both kinds of text evidence:
//! identifiers (lexical) and the person's own words (derived content).
//!
//! Lineage text is read in pages of chunk ids. Without own words to look
//! for, only chunks that contain a surname or local part are read (`ILIKE`
//! in SQL); with them, every chunk is. Collections whose lineage holds no
//! text are read through the backend's payloads instead.

use std::collections::HashSet;

use uuid::Uuid;

use super::lexical::{self, Matcher};
use super::semantic::{Overlap, OwnWords};
use crate::context::Context;
use crate::domain::CollectionSpec;
use crate::error::Result;
use crate::store::lineage;

/// A chunk, where it lives.
#[derive(Debug, Clone)]
pub struct ChunkRef {
    pub collection_id: Uuid,
    pub point_id: Uuid,
    pub source_id: String,
}

/// What the pass found.
#[derive(Debug, Default)]
pub struct Scanned {
    pub lexical: Vec<lexical::Hit>,
    /// Chunks that share at least one 5-gram with the person's own words.
    pub overlaps: Vec<(ChunkRef, Overlap)>,
    /// Collections with chunks whose lineage holds no text.
    pub textless: Vec<Uuid>,
}

/// Rows per page of the lineage scan.
const PAGE: i64 = 2000;

/// Points per page of a payload scan.
const SCROLL_PAGE: usize = 512;

impl Scanned {
    fn add(&mut self, matcher: &Matcher, own: &OwnWords, chunk: ChunkRef, text: &str) {
        if matcher.may_match(&text.to_lowercase()) {
            self.lexical.extend(matcher.hit(chunk.collection_id, chunk.point_id, &chunk.source_id, text));
        }
        if let Some(o) = own.overlap(text) {
            self.overlaps.push((chunk, o));
        }
    }
}

/// Reads every chunk text of the tenant that may hold evidence, except `exclude`.
///
/// # Errors
/// Database and backend failures.
pub async fn scan(
    ctx: &Context,
    tenant_id: Uuid,
    specs: &[CollectionSpec],
    matcher: &Matcher,
    own: &OwnWords,
    exclude: &HashSet<Uuid>,
) -> Result<Scanned> {
    let mut out = Scanned::default();
    if matcher.is_empty() && own.is_empty() {
        return Ok(out);
    }
    let patterns: Vec<String> = if own.is_empty() {
        matcher.literals().iter().map(|l| format!("%{}%", lexical::like_escape(l))).collect()
    } else {
        vec!["%".to_owned()]
    };
    let excluded: Vec<Uuid> = exclude.iter().copied().collect();
    let textless = lineage::collections_without_text(&ctx.pool, tenant_id).await?;
    // Points of those collections already read from lineage are not read again.
    let mut skip = exclude.clone();
    let mut after = None;
    loop {
        let page = lineage::chunks_matching(&ctx.pool, tenant_id, &patterns, &excluded, after, PAGE).await?;
        after = page.last().map(|c| c.chunk_id);
        let full = i64::try_from(page.len()).unwrap_or(0) == PAGE;
        for c in page {
            if textless.contains(&c.collection_id) {
                skip.insert(c.chunk_id);
            }
            let chunk = ChunkRef { collection_id: c.collection_id, point_id: c.chunk_id, source_id: c.source_id };
            out.add(matcher, own, chunk, &c.text);
        }
        if !full {
            break;
        }
    }
    for collection_id in &textless {
        if let Some(spec) = specs.iter().find(|s| s.collection_id == *collection_id) {
            scan_payloads(ctx, spec, matcher, own, &skip, &mut out).await?;
        }
    }
    out.textless = textless;
    Ok(out)
}

/// Reads the payload text of every point of a collection (one scroll).
async fn scan_payloads(
    ctx: &Context,
    spec: &CollectionSpec,
    matcher: &Matcher,
    own: &OwnWords,
    skip: &HashSet<Uuid>,
    out: &mut Scanned,
) -> Result<()> {
    let store = ctx.stores.get(spec.backend)?;
    let mut offset = None;
    loop {
        let (points, next) = store.scroll(spec, offset, SCROLL_PAGE, false).await?;
        for p in points.into_iter().filter(|p| !skip.contains(&p.id)) {
            let Some(text) = p.payload.text else { continue };
            let chunk = ChunkRef { collection_id: spec.collection_id, point_id: p.id, source_id: p.payload.source_id };
            out.add(matcher, own, chunk, &text);
        }
        match next {
            Some(n) => offset = Some(n),
            None => return Ok(()),
        }
    }
}
