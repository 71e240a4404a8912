//! Residual search: what still refers to a person after the lineage-based
//! deletion — chunks that name them (lexical) or repeat their own words
//! (semantic). This module finds candidates and applies a policy to them; the
//! erase job decides when. It never builds SQL (that is `store::lineage`) and
//! never talks to a backend except through `VectorStore`.
//!
//! - [`lexical`]: identifiers in the forms people write them, matched in the
//!   chunk text of every collection; redaction.
//! - [`semantic`]: content derived from the subject's own chunks: chunks
//!   made of their own words; where words cannot decide, near copies among
//!   the exact nearest neighbours of their vectors.
//! - [`index`]: the keys a chunk's text is found by (written with the text).
//! - [`scan`]: one pass over the chunks the index proposes, for both.
//! - [`ranking`]: evidence merged per chunk into one ranked list.
//! - [`policy`]: report, delete or redact.

pub mod index;
pub mod merger;
mod lexical;
pub(crate) mod names;
pub(crate) mod nicknames;
mod policy;
mod ranking;
mod scan;
mod semantic;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::lexical::REDACTED;
pub use self::policy::{Redaction, TooCommon, action, delete_points, hold_back_too_common, plan, redact_points};
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
    /// Candidates to return; also how many are kept while scanning.
    pub limit: usize,
    /// When to give up with `DeadlineExceeded` (`SearchResiduals`). The
    /// erase job's search has none: a residual stage that stopped half-way
    /// would certify less than it claims, so it runs to the end.
    pub deadline: Option<std::time::Instant>,
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
    /// Index of the identifier that matched (lexical), in the query's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<usize>,
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

/// Searches every collection of the tenant and returns one list, best first,
/// at most `query.limit`, without the `exclude` points, or fails once the
/// query's deadline has passed.
///
/// # Errors
/// Backend, embedding and database failures; `DeadlineExceeded`.
pub async fn search(ctx: &Context, tenant_id: Uuid, query: &ResidualQuery) -> Result<Vec<Candidate>> {
    Ok(search_counted(ctx, tenant_id, query).await?.candidates)
}

/// What a search found.
#[derive(Debug, Clone, Default)]
pub struct Searched {
    /// Best first, at most the query's limit.
    pub candidates: Vec<Candidate>,
    /// How many qualified before `limit` and `residual.max_semantic` were
    /// applied: more than `candidates.len()` means the list was capped.
    pub qualified: usize,
    /// Chunk texts read to find them.
    pub read: usize,
    /// The tenant's collections, as the search read them.
    pub collections: Vec<CollectionSpec>,
}

/// [`search`], also saying how many candidates qualified before the caps.
///
/// # Errors
/// Backend, embedding and database failures; `DeadlineExceeded`.
pub async fn search_counted(ctx: &Context, tenant_id: Uuid, query: &ResidualQuery) -> Result<Searched> {
    let search = async { Ok(search_together(ctx, &Tenant::read(ctx, tenant_id).await?, &[query]).await?.remove(0)) };
    match query.deadline {
        // The scan checks the deadline between chunks (its work is CPU);
        // the timeout ends a wait on a database or backend call as well.
        Some(at) => tokio::time::timeout_at(at.into(), search).await.unwrap_or_else(|_| Err(scan::deadline_exceeded())),
        None => search.await,
    }
}

/// What every search in a tenant reads first: its collections, and which of
/// them hold chunks without text. Read once for the searches of a batch of
/// erase jobs ([`search_many`]).
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant_id: Uuid,
    pub collections: Vec<CollectionSpec>,
    /// Whether any chunk text was written before the residual index (it is
    /// read the old way).
    texts_unindexed: bool,
    /// Collections with chunks whose lineage holds no text.
    textless: Vec<Uuid>,
    /// Chunks whose index keys an upgrade listed to be computed again (the
    /// startup re-key, [`index::rekey_listed`]), sorted: each search reads
    /// their texts whole until then. Read before the index is looked up,
    /// so that a chunk re-keyed meanwhile is either still in this list or
    /// found by its new keys.
    listed: Vec<Uuid>,
}

impl Tenant {
    /// # Errors
    /// Database failures.
    pub async fn read(ctx: &Context, tenant_id: Uuid) -> Result<Self> {
        let collections = lineage::list_collections(&ctx.pool, tenant_id).await?;
        let lineage::BesideIndex { texts_unindexed, textless, listed } = lineage::beside_the_index(&ctx.pool, tenant_id).await?;
        Ok(Self { tenant_id, collections, texts_unindexed, textless, listed })
    }
}

/// The searches of several erase jobs (no deadline: see
/// [`ResidualQuery::deadline`]), each as [`search_counted`] makes it: the
/// searches of one tenant together ([`search_together`]), its collections
/// read once for all of them.
///
/// # Errors
/// Backend, embedding and database failures: of any one search.
pub async fn search_many(ctx: &Context, queries: &[(Uuid, ResidualQuery)]) -> Result<Vec<Searched>> {
    let mut tenants: Vec<(Uuid, Vec<usize>)> = Vec::new();
    for (i, (tenant_id, _)) in queries.iter().enumerate() {
        match tenants.iter_mut().find(|(t, _)| t == tenant_id) {
            Some((_, members)) => members.push(i),
            None => tenants.push((*tenant_id, vec![i])),
        }
    }
    let mut searched: Vec<Option<Searched>> = queries.iter().map(|_| None).collect();
    for (tenant_id, members) in tenants {
        let tenant = Tenant::read(ctx, tenant_id).await?;
        let together: Vec<&ResidualQuery> = members.iter().map(|&i| &queries[i].1).collect();
        for (i, s) in members.into_iter().zip(search_together(ctx, &tenant, &together).await?) {
            searched[i] = Some(s);
        }
    }
    // Every search was made: the jobs take their results by position.
    searched.into_iter().collect::<Option<Vec<Searched>>>().ok_or_else(|| {
        crate::error::LetheError::Unexpected(anyhow::anyhow!("a residual search of the batch was not made"))
    })
}

/// Searches of one tenant, each finding what it would alone, with their
/// reads of lineage made together: the person's own texts in one
/// statement, the residual index's lookups in one transaction
/// ([`scan::propose`]) and the texts they propose in pages of all of them
/// ([`scan::read_proposed`]); then each search's own further reads and
/// ranking.
async fn search_together(ctx: &Context, tenant: &Tenant, queries: &[&ResidualQuery]) -> Result<Vec<Searched>> {
    let started = std::time::Instant::now();
    let s = &ctx.settings.residual;
    let matchers: Vec<lexical::Matcher> =
        queries.iter().map(|q| lexical::Matcher::new(if s.lexical { &q.identifiers } else { &[] })).collect();
    let owns = own_words(ctx, tenant.tenant_id, queries, &matchers).await?;
    let terms: Vec<scan::Terms> =
        matchers.iter().zip(&owns).map(|(m, own)| scan::Terms::of(ctx, tenant.tenant_id, m, own)).collect();
    let asked: Vec<(&scan::Terms, &HashSet<Uuid>)> = terms.iter().zip(queries).map(|(t, q)| (t, &q.exclude)).collect();
    let proposed = scan::propose(ctx, tenant.tenant_id, &asked).await?;
    let mut scans: Vec<scan::Scan<'_>> = queries
        .iter()
        .zip(matchers.iter().zip(&owns))
        .zip(terms.iter().zip(proposed))
        .map(|((query, (matcher, own)), (terms, proposed))| scan::Scan::new(tenant, (matcher, own), (terms, proposed), query))
        .collect();
    scan::read_proposed(ctx, tenant.tenant_id, &mut scans).await?;
    let together_ms = started.elapsed().as_millis();
    let mut searched = Vec::with_capacity(queries.len());
    for ((scan, query), own) in scans.into_iter().zip(queries).zip(&owns) {
        searched.push(search_in(ctx, tenant, query, own, scan, together_ms).await?);
    }
    Ok(searched)
}

/// The person's own words for each search that looks for derived content
/// (see [`semantic::own_words`]): their chunks' lineage texts, while it
/// lasts, read for all of the searches in one statement.
async fn own_words(
    ctx: &Context,
    tenant_id: Uuid,
    queries: &[&ResidualQuery],
    matchers: &[lexical::Matcher],
) -> Result<Vec<semantic::OwnWords>> {
    let s = &ctx.settings.residual;
    let wanted = |q: &ResidualQuery| s.semantic && !(q.probes.is_empty() && q.exclude.is_empty());
    let mut ids: Vec<Uuid> = queries.iter().filter(|q| wanted(q)).flat_map(|q| q.exclude.iter().copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    let texts = if ids.is_empty() { Vec::new() } else { lineage::chunk_texts_in_order(&ctx.pool, tenant_id, &ids).await? };
    Ok(queries
        .iter()
        .zip(matchers)
        .map(|(q, matcher)| {
            if !wanted(q) {
                return semantic::OwnWords::default();
            }
            let own = texts.iter().filter(|(id, _, _)| q.exclude.contains(id)).map(|(_, source, text)| (source.as_str(), text.as_deref()));
            semantic::own_words(own, &q.probes, |t| matcher.strip(t), s.derived_query_window)
        })
        .collect())
}

/// One search of [`search_together`], from its reads after the proposed
/// texts on (`together_ms`: how long the reads made for all of them took).
async fn search_in(
    ctx: &Context,
    tenant: &Tenant,
    query: &ResidualQuery,
    own: &semantic::OwnWords,
    scan: scan::Scan<'_>,
    together_ms: u128,
) -> Result<Searched> {
    let started = std::time::Instant::now();
    let s = &ctx.settings.residual;
    let specs = tenant.collections.clone();
    let mut scanned = scan.finish(ctx).await?;
    let scan_ms = started.elapsed().as_millis();
    let (named, overlapping, read) = (scanned.lexical.count(), scanned.overlaps.len(), scanned.read);
    let dropped_while_scanning = scanned.lexical.dropped_strong();
    let mut found = ranking::Found::default();
    for hit in std::mem::take(&mut scanned.lexical).into_hits() {
        found.lexical(&query.identifiers, hit);
    }
    if s.semantic {
        found.excerpts(&scanned.overlaps, s.derived_min_coverage);
        // Exact neighbours of the person's own vectors decide only where words
        // cannot: chunks without stored text, or no own text to compare with.
        let vectors: Vec<Vec<f32>> = query.probes.iter().map(|p| p.vector.clone()).collect();
        // Exact search reads every vector of a collection (~0.6 s per probe at
        // a million): only where there is no text, theirs or the chunk's.
        let words_known = own.text_known();
        let mut near = Vec::new();
        for spec in specs.iter().filter(|c| !words_known || scanned.textless.contains(&c.collection_id)) {
            scan::check_deadline(query.deadline)?;
            near.extend(semantic::neighbours(ctx, spec, &vectors, s.own_chunk_threshold, s.semantic_pool).await?);
        }
        near.retain(|n| !query.exclude.contains(&n.point_id));
        found.neighbours(near, s.near_copy_threshold, words_known);
        identifier_evidence(ctx, &specs, &query.identifiers, &mut found).await?;
    }
    let (ranked, qualified) = found.ranked(&specs, query.limit, s.max_semantic);
    let qualified = qualified + dropped_while_scanning;
    tracing::info!(
        collections = specs.len(),
        probes = query.probes.len(),
        named,
        overlapping,
        read,
        candidates = ranked.len(),
        qualified,
        together_ms,
        scan_ms,
        total_ms = started.elapsed().as_millis(),
        "residual search"
    );
    Ok(Searched { candidates: ranked, qualified, read, collections: specs })
}

/// Chunks that name the person only weakly (a lone surname) are compared
/// with embeddings of the identifiers: close ones become candidates.
async fn identifier_evidence(
    ctx: &Context,
    specs: &[CollectionSpec],
    identifiers: &[Identifier],
    found: &mut ranking::Found,
) -> Result<()> {
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
        for p in ctx.stores.get(spec)?.retrieve(spec, &ids, true).await? {
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

/// Removes every occurrence of the identifiers from `text` (each becomes
/// `[redacted]`). Idempotent: redacting a redacted text changes nothing.
pub fn redact(text: &str, identifiers: &[Identifier]) -> String {
    lexical::Matcher::new(identifiers).redact(text)
}

/// Whether `text` names the person as residual search would report it: a
/// match of one of the identifiers scoring `lexical::MIN_SCORE` (an address,
/// a full name in any order; not a lone surname).
pub fn names(text: &str, identifiers: &[Identifier]) -> bool {
    Naming::new(identifiers).names(text)
}

/// [`names`] for many texts, the identifiers' matcher built once.
pub struct Naming(lexical::Matcher);

impl Naming {
    #[must_use]
    pub fn new(identifiers: &[Identifier]) -> Self {
        Self(lexical::Matcher::new(identifiers))
    }

    /// See [`names`].
    #[must_use]
    pub fn names(&self, text: &str) -> bool {
        let matches = self.0.find(text);
        !matches.is_empty() && self.0.score(text, &matches) >= lexical::MIN_SCORE
    }
}
