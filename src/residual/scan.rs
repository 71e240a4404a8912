//! One pass over the tenant's chunk texts for both kinds of text evidence:
//! identifiers (lexical) and the person's own words (derived content).
//!
//! Lineage text is read in pages of chunk ids, only the chunks the residual
//! index (`index`) proposes: those holding a word of an identifier's forms
//! or one of the person's own 5-grams. Collections whose lineage holds no
//! text are read through the backend's payloads instead.
//!
//! Memory is bounded by what is returned, not by what is read: of the chunks
//! that name the person only the best `limit` are kept while scanning (and
//! as many that name them weakly), each with at most `lexical::MAX_MATCHES`
//! matches. A hundred common words over a million chunks would otherwise
//! keep tens of millions of matches. The scan stops at the query's deadline.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Instant;

use uuid::Uuid;

use super::index;
use super::lexical::{self, Matcher};
use super::ResidualQuery;
use super::semantic::{self, Overlap, OwnWords};
use crate::context::Context;
use crate::domain::CollectionSpec;
use crate::error::{LetheError, Result};
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
    pub lexical: TopHits,
    /// Chunks that share at least one 5-gram with the person's own words.
    pub overlaps: Vec<(ChunkRef, Overlap)>,
    /// Collections with chunks whose lineage holds no text.
    pub textless: Vec<Uuid>,
    /// Chunk texts read (from lineage and from payloads).
    pub read: usize,
}

/// Rows per page of the lineage scan.
const PAGE: i64 = 2000;

/// Index keys per statement: bounds one statement's array (the GIN lookups
/// cost about 30 µs per key however they are grouped).
const KEYS_PER_QUERY: usize = 1024;

/// Points per page of a payload scan.
const SCROLL_PAGE: usize = 512;

impl Scanned {
    fn add(&mut self, matcher: &Matcher, own: &OwnWords, chunk: ChunkRef, text: &str) {
        self.read += 1;
        let lower = text.to_lowercase();
        if matcher.may_match(&lower)
            && let Some(hit) = matcher.hit(chunk.collection_id, chunk.point_id, &chunk.source_id, text, &lower)
        {
            self.lexical.push(hit);
        }
        if let Some(o) = own.overlap(text) {
            self.overlaps.push((chunk, o));
        }
    }

    /// The person's 5-grams that are boilerplate in what was read so far
    /// (as `ranking` will judge them: sources that name the person do not count).
    fn common_shingles(&self) -> HashSet<u64> {
        let named = self.lexical.named_sources();
        semantic::common_shingles(self.overlaps.iter().map(|(c, o)| (c.source_id.as_str(), o)), &named)
    }
}

/// The best lexical hits seen so far: at most `cap` that name the person
/// (score ≥ `lexical::MIN_SCORE`) and `cap` that name them weakly, the
/// highest scores first and, among equal scores, the lowest point ids (so
/// that what is kept does not depend on the order of the scan).
#[derive(Debug, Default)]
pub struct TopHits {
    cap: usize,
    strong: BinaryHeap<Ranked>,
    weak: BinaryHeap<Ranked>,
    /// Strong hits dropped to keep the cap: candidates that qualified but
    /// were not kept (a capped list says so).
    dropped_strong: usize,
}

/// A hit ordered worst first, so that a max-heap's top is the one to drop.
#[derive(Debug)]
struct Ranked(lexical::Hit);

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.score.total_cmp(&self.0.score).then(self.0.point_id.cmp(&other.0.point_id))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl TopHits {
    pub fn new(cap: usize) -> Self {
        Self { cap, strong: BinaryHeap::new(), weak: BinaryHeap::new(), dropped_strong: 0 }
    }

    fn push(&mut self, hit: lexical::Hit) {
        let strong = hit.score >= lexical::MIN_SCORE;
        let heap = if strong { &mut self.strong } else { &mut self.weak };
        let hit = Ranked(hit);
        if heap.len() < self.cap {
            heap.push(hit);
            return;
        }
        if heap.peek().is_some_and(|worst| hit < *worst) {
            heap.pop();
            heap.push(hit);
        }
        self.dropped_strong += usize::from(strong);
    }

    /// The sources of the hits kept that name the person.
    fn named_sources(&self) -> HashSet<&str> {
        self.strong.iter().map(|r| r.0.source_id.as_str()).collect()
    }

    /// Strong hits that qualified but were dropped for the cap.
    pub fn dropped_strong(&self) -> usize {
        self.dropped_strong
    }

    /// Hits kept.
    pub fn count(&self) -> usize {
        self.strong.len() + self.weak.len()
    }

    /// Every kept hit, in no particular order.
    pub fn into_hits(self) -> impl Iterator<Item = lexical::Hit> {
        self.strong.into_iter().chain(self.weak).map(|r| r.0)
    }
}

/// `Err(DeadlineExceeded)` once `deadline` has passed.
///
/// # Errors
/// `DeadlineExceeded`.
pub fn check_deadline(deadline: Option<Instant>) -> Result<()> {
    match deadline {
        Some(at) if Instant::now() >= at => Err(deadline_exceeded()),
        Some(_) | None => Ok(()),
    }
}

pub fn deadline_exceeded() -> LetheError {
    LetheError::DeadlineExceeded {
        message: "the residual search did not finish within residual.search_timeout_ms; give fewer or more \
                  specific identifiers"
            .into(),
    }
}

/// The residual index keys one search looks up: the keys of the forms'
/// words (every chunk holding one is read), all of the keys of one of
/// `all_of` (the words of a form of several words), and the keys of the
/// person's 5-grams with the 5-gram each stands for (read as
/// [`read_proposed`] says).
#[derive(Debug, Default)]
pub struct Terms {
    words: Vec<i32>,
    all_of: Vec<Vec<i32>>,
    shingles: Vec<(i32, u64)>,
}

impl Terms {
    /// The keys a search with `matcher` and `own` looks up (none when the
    /// index is not used, or there is nothing to look for).
    pub fn of(ctx: &Context, tenant_id: Uuid, matcher: &Matcher, own: &OwnWords) -> Self {
        if !ctx.settings.residual.use_index || (matcher.is_empty() && own.is_empty()) {
            return Self::default();
        }
        // A form of one word is found by any chunk holding it; a form of
        // several, by chunks holding all of them.
        let (mut words, mut all_of): (Vec<i32>, Vec<Vec<i32>>) = (Vec::new(), Vec::new());
        for keys in matcher.index_words().0.iter().flat_map(|group| index::form_keys(tenant_id, group)) {
            match keys.as_slice() {
                [key] => words.push(*key),
                _ => all_of.push(keys),
            }
        }
        words.sort_unstable();
        words.dedup();
        let own_shingles: Vec<u64> = own.query_shingles().collect();
        let shingles = index::shingle_keys(tenant_id, own_shingles.iter().copied()).into_iter().zip(own_shingles).collect();
        Self { words, all_of, shingles }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.all_of.is_empty() && self.shingles.is_empty()
    }

    /// The 5-grams' keys, sorted, distinct.
    fn shingle_keys(&self) -> Vec<i32> {
        let mut keys: Vec<i32> = self.shingles.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// What the residual index proposed to one search ([`propose`]): the
/// chunks to read (sorted, without its own), and the keys of the person's
/// 5-grams of which only a sample was read.
#[derive(Debug, Default)]
pub struct Proposed {
    ids: Vec<Uuid>,
    sampled: Vec<i32>,
}

/// Looks up, for several searches of a tenant at once, the chunks the
/// residual index proposes to each (`searches`: its [`Terms`] and the
/// points it excludes): every chunk holding the words of one of its forms,
/// and for each of its 5-grams the chunks holding it, but at most
/// `residual.common_key_sample` of them at first (0: all). Each search
/// gets what it would alone; the lookups of all of them are made in one
/// transaction, a few statements for the whole batch instead of a few per
/// search, and [`read_proposed`] reads the texts.
///
/// A 5-gram held by `common_key_sample` chunks is usually boilerplate (a
/// newsletter, a quoted thread, a signature: a newsletter's 5-grams are
/// held by tens of thousands of chunks at a million), which counts
/// neither for nor against (`semantic::common_shingles`): reading its
/// sample settles that, and the rest of its chunks could not change it.
/// A sampled 5-gram the sample does not show as boilerplate (the chunks
/// that hold it name the person, or come from fewer sources, or only
/// share its 32-bit key) is read in full, as without the limit
/// (`Pass::read_unproven`).
///
/// Where this can differ from reading every proposed chunk:
/// - unread are chunks that hold none of the person's forms and whose
///   queried 5-grams are all boilerplate: their own words outside the
///   boilerplate come in runs shorter than the winnowing guarantee
///   (`residual.derived_query_window` + 4 words, at least 16 in a long
///   chunk, which keeps its own 5-grams winnowed: `index::INDEX_WINDOW`),
///   since a longer run holds a queried 5-gram that is not boilerplate
///   (in a long chunk: the run's smallest, which both sides select);
/// - boilerplate is judged on what was read: a 5-gram of theirs that is
///   not queried and is found in other sources only among the unread
///   chunks still counts as theirs in the chunks read, so a chunk read
///   may qualify where reading everything would call it boilerplate (one
///   more candidate; a chunk read never loses one). Measured: the same
///   candidates at 1M for 12 people and on both evaluations.
///
/// # Errors
/// Database failures.
pub async fn propose(ctx: &Context, tenant_id: Uuid, searches: &[(&Terms, &HashSet<Uuid>)]) -> Result<Vec<Proposed>> {
    let mut proposed: Vec<Proposed> = searches.iter().map(|_| Proposed::default()).collect();
    if searches.iter().all(|(terms, _)| terms.is_empty()) {
        return Ok(proposed);
    }
    let cap = ctx.settings.residual.common_key_sample;
    // The forms' words and sets of words, each looked up once for all the
    // searches that ask for it.
    let mut words: Vec<i32> = searches.iter().flat_map(|(terms, _)| terms.words.iter().copied()).collect();
    words.sort_unstable();
    words.dedup();
    let mut sets: Vec<Vec<i32>> = searches.iter().flat_map(|(terms, _)| terms.all_of.iter().cloned()).collect();
    sets.sort_unstable();
    sets.dedup();
    // The 5-grams' chunks are each search's own: it excludes its own points
    // (in the statement: a person's own chunk holds every one of their keys).
    let mut shingle_keys: Vec<(i32, i32)> = Vec::new();
    let mut excluded: Vec<(i32, Uuid)> = Vec::new();
    for (n, (terms, exclude)) in (0_i32..).zip(searches) {
        let keys = terms.shingle_keys();
        if !keys.is_empty() {
            shingle_keys.extend(keys.into_iter().map(|k| (n, k)));
            excluded.extend(exclude.iter().map(|id| (n, *id)));
        }
    }
    let mut tx = lineage::index_lookups(&ctx.pool).await?;
    let per_word = lineage::chunks_per_key(&mut tx, tenant_id, &words, KEYS_PER_QUERY).await?;
    let per_set = lineage::chunks_per_key_set(&mut tx, tenant_id, &sets).await?;
    let per_shingle = if shingle_keys.is_empty() {
        Vec::new()
    } else {
        let limit = if cap == 0 { usize::MAX } else { cap };
        lineage::chunk_ids_per_term(&mut tx, tenant_id, &shingle_keys, &excluded, limit, KEYS_PER_QUERY).await?
    };
    tx.commit().await.map_err(crate::store::StoreError::from)?;

    let mut by_word: HashMap<i32, Vec<Uuid>> = HashMap::new();
    for (key, id) in per_word {
        by_word.entry(key).or_default().push(id);
    }
    let mut by_set: HashMap<usize, Vec<Uuid>> = HashMap::new();
    for (n, id) in per_set {
        by_set.entry(n).or_default().push(id);
    }
    for (p, (terms, _)) in proposed.iter_mut().zip(searches) {
        p.ids = terms.words.iter().filter_map(|k| by_word.get(k)).flatten().copied().collect();
        for set in &terms.all_of {
            if let Ok(n) = sets.binary_search(set) {
                p.ids.extend(by_set.get(&n).into_iter().flatten());
            }
        }
    }
    let mut held: Vec<HashMap<i32, usize>> = searches.iter().map(|_| HashMap::new()).collect();
    for (n, key, id) in per_shingle {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if let (Some(held), Some(p)) = (held.get_mut(n), proposed.get_mut(n)) {
            *held.entry(key).or_default() += 1;
            p.ids.push(id);
        }
    }
    for ((p, held), (terms, exclude)) in proposed.iter_mut().zip(held).zip(searches) {
        if cap > 0 {
            p.sampled = held.into_iter().filter(|(_, n)| *n >= cap).map(|(k, _)| k).collect();
        }
        p.ids.sort_unstable();
        p.ids.dedup();
        p.ids.retain(|id| !exclude.contains(id));
        tracing::debug!(
            words = terms.words.len() + terms.all_of.len(),
            shingles = terms.shingle_keys().len(),
            read = p.ids.len(),
            sampled = p.sampled.len(),
            "residual index read"
        );
    }
    Ok(proposed)
}

/// Reads the texts the residual index proposed to each scan, in pages of
/// all of theirs, each page in chunk id order and given to every scan that
/// asked for its chunks while it is held: each scan takes its own in the
/// order it would alone, and no more than a page of texts is held at once
/// however many were proposed.
///
/// # Errors
/// Database failures; `DeadlineExceeded`.
pub async fn read_proposed(ctx: &Context, tenant_id: Uuid, scans: &mut [Scan<'_>]) -> Result<()> {
    // Chunks waiting for their re-key are proposed to every search that
    // reads through the index and looks for anything (but those it
    // excludes): their keys may miss the person. Without the index every
    // text is read anyway (`Scan::finish`).
    let wants_listed = |s: &Scan<'_>| ctx.settings.residual.use_index && !(s.matcher.is_empty() && s.own.is_empty());
    let listed: &[Uuid] = scans.iter().find(|s| wants_listed(s)).map_or(&[], |s| &s.tenant.listed);
    let mut all: Vec<Uuid> = scans.iter().flat_map(|s| s.proposed.iter().copied()).chain(listed.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    for page in all.chunks(usize::try_from(PAGE).unwrap_or(2000)) {
        let texts = lineage::chunk_texts_with_source(&ctx.pool, tenant_id, page).await?;
        for scan in scans.iter_mut() {
            let listed = if wants_listed(scan) { listed } else { &[] };
            let (proposed, exclude) = (&scan.proposed, &scan.query.exclude);
            let mine = texts.iter().filter(|t| {
                proposed.binary_search(&t.chunk_id).is_ok()
                    || (listed.binary_search(&t.chunk_id).is_ok() && !exclude.contains(&t.chunk_id))
            });
            scan.pass.take(mine, scan.query, &mut scan.out)?;
        }
    }
    Ok(())
}

/// One search's pass over every chunk text of the tenant that may hold
/// evidence, except the query's `exclude`, keeping its best `limit`
/// lexical hits (see [`TopHits`]), until its deadline.
///
/// First the chunks the residual index proposed ([`propose`], read by
/// [`read_proposed`] for the scans of a batch together): all the words of
/// one of the forms, or one of the person's own 5-grams. Then, in
/// [`Scan::finish`], forms no word can find (phone numbers) with `ILIKE`
/// over every text, texts written before the index (without keys) the old
/// way (every one of them when there are own words, else those that
/// contain a literal), the payloads of collections without lineage text,
/// and the sampled 5-grams the sample did not show as boilerplate.
pub struct Scan<'a> {
    tenant: &'a super::Tenant,
    matcher: &'a Matcher,
    own: &'a OwnWords,
    terms: &'a Terms,
    query: &'a ResidualQuery,
    /// The chunks the index proposed, sorted.
    proposed: Vec<Uuid>,
    pass: Pass<'a>,
    out: Scanned,
}

impl<'a> Scan<'a> {
    pub fn new(
        tenant: &'a super::Tenant,
        (matcher, own): (&'a Matcher, &'a OwnWords),
        (terms, proposed): (&'a Terms, Proposed),
        query: &'a ResidualQuery,
    ) -> Self {
        let pass = Pass {
            matcher,
            own,
            textless: &tenant.textless,
            skip: query.exclude.clone(),
            seen: HashSet::new(),
            sampled: proposed.sampled,
        };
        let out = Scanned { lexical: TopHits::new(query.limit), ..Scanned::default() };
        Self { tenant, matcher, own, terms, query, proposed: proposed.ids, pass, out }
    }

    /// The scan's reads after the proposed texts, and what it found.
    ///
    /// # Errors
    /// Database and backend failures; `DeadlineExceeded`.
    pub async fn finish(mut self, ctx: &Context) -> Result<Scanned> {
        let Self { tenant, matcher, own, terms, query, .. } = self;
        if matcher.is_empty() && own.is_empty() {
            return Ok(self.out);
        }
        let (tenant_id, specs) = (tenant.tenant_id, &tenant.collections);
        let like = |literals: &[String]| -> Vec<String> {
            literals.iter().map(|l| format!("%{}%", lexical::like_escape(l))).collect()
        };
        let everything = || if own.is_empty() { like(matcher.literals()) } else { vec!["%".to_owned()] };
        let unindexed = like(&matcher.index_words().1);
        let reads = if !ctx.settings.residual.use_index {
            vec![Like { patterns: everything(), unindexed_only: false }]
        } else if tenant.texts_unindexed {
            vec![Like { patterns: unindexed, unindexed_only: false }, Like { patterns: everything(), unindexed_only: true }]
        } else {
            vec![Like { patterns: unindexed, unindexed_only: false }]
        };
        for read in reads.iter().filter(|r| !r.patterns.is_empty()) {
            self.pass.read(ctx, tenant_id, read, query, &mut self.out).await?;
        }
        for collection_id in &tenant.textless {
            if let Some(spec) = specs.iter().find(|s| s.collection_id == *collection_id) {
                self.pass.read_payloads(ctx, spec, query.deadline, &mut self.out).await?;
            }
        }
        self.pass.read_unproven(ctx, tenant_id, &terms.shingles, query, &mut self.out).await?;
        self.out.textless = tenant.textless.clone();
        Ok(self.out)
    }
}

/// Lineage texts matching any of these `ILIKE` patterns (only those without
/// index keys when `unindexed_only`).
struct Like {
    patterns: Vec<String>,
    unindexed_only: bool,
}

/// The state of one scan across its reads.
struct Pass<'a> {
    matcher: &'a Matcher,
    own: &'a OwnWords,
    textless: &'a [Uuid],
    /// Points not to read from payloads (excluded, or read from lineage).
    skip: HashSet<Uuid>,
    /// Chunks read already (a chunk proposed by two reads counts once).
    seen: HashSet<Uuid>,
    /// Keys of the person's 5-grams of which only a sample was read.
    sampled: Vec<i32>,
}

impl Pass<'_> {
    async fn read(&mut self, ctx: &Context, tenant_id: Uuid, read: &Like, query: &ResidualQuery, out: &mut Scanned) -> Result<()> {
        let excluded: Vec<Uuid> = query.exclude.iter().copied().collect();
        let mut after = None;
        loop {
            let page = lineage::chunks_matching(
                &ctx.pool,
                tenant_id,
                &read.patterns,
                read.unindexed_only,
                &excluded,
                after,
                PAGE,
            )
            .await?;
            after = page.last().map(|c| c.chunk_id);
            let full = i64::try_from(page.len()).unwrap_or(0) == PAGE;
            self.take(&page, query, out)?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Once everything else is read (what is boilerplate depends on all of
    /// it, and on which sources name the person): every chunk of each
    /// sampled 5-gram that is not boilerplate (see [`read_proposed`]).
    async fn read_unproven(
        &mut self,
        ctx: &Context,
        tenant_id: Uuid,
        shingles: &[(i32, u64)],
        query: &ResidualQuery,
        out: &mut Scanned,
    ) -> Result<()> {
        if self.sampled.is_empty() {
            return Ok(());
        }
        let common = out.common_shingles();
        let unproven: Vec<i32> = self
            .sampled
            .iter()
            .copied()
            .filter(|k| shingles.iter().any(|(key, s)| key == k && !common.contains(s)))
            .collect();
        if unproven.is_empty() {
            return Ok(());
        }
        let mut tx = lineage::index_lookups(&ctx.pool).await?;
        let ids = lineage::chunk_ids_with_terms(&mut tx, tenant_id, &unproven, KEYS_PER_QUERY).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        let more = self.read_ids(ctx, tenant_id, ids, query, out).await?;
        tracing::debug!(sampled = self.sampled.len(), unproven = unproven.len(), more, "residual index read in full");
        Ok(())
    }

    /// Reads the payload text of every point of a collection (one scroll),
    /// except `skip`; the points read go into `seen`.
    async fn read_payloads(
        &mut self,
        ctx: &Context,
        spec: &CollectionSpec,
        deadline: Option<Instant>,
        out: &mut Scanned,
    ) -> Result<()> {
        let store = ctx.stores.get(spec)?;
        let mut offset = None;
        loop {
            let (points, next) = store.scroll(spec, offset, SCROLL_PAGE, false).await?;
            for p in points.into_iter().filter(|p| !self.skip.contains(&p.id)) {
                check_deadline(deadline)?;
                let Some(text) = p.payload.text else { continue };
                self.seen.insert(p.id);
                let chunk = ChunkRef { collection_id: spec.collection_id, point_id: p.id, source_id: p.payload.source_id };
                out.add(self.matcher, self.own, chunk, &text);
            }
            match next {
                Some(n) => offset = Some(n),
                None => return Ok(()),
            }
        }
    }

    /// Reads the texts of chunks by id (not excluded, not read yet), in
    /// pages: how many were read.
    async fn read_ids(
        &mut self,
        ctx: &Context,
        tenant_id: Uuid,
        mut ids: Vec<Uuid>,
        query: &ResidualQuery,
        out: &mut Scanned,
    ) -> Result<usize> {
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| !query.exclude.contains(id) && !self.seen.contains(id));
        for page in ids.chunks(usize::try_from(PAGE).unwrap_or(2000)) {
            let texts = lineage::chunk_texts_with_source(&ctx.pool, tenant_id, page).await?;
            self.take(&texts, query, out)?;
        }
        Ok(ids.len())
    }

    fn take<'t>(
        &mut self,
        page: impl IntoIterator<Item = &'t lineage::ChunkText>,
        query: &ResidualQuery,
        out: &mut Scanned,
    ) -> Result<()> {
        for c in page {
            check_deadline(query.deadline)?;
            if !self.seen.insert(c.chunk_id) {
                continue;
            }
            if self.textless.contains(&c.collection_id) {
                self.skip.insert(c.chunk_id);
            }
            let chunk = ChunkRef { collection_id: c.collection_id, point_id: c.chunk_id, source_id: c.source_id.clone() };
            out.add(self.matcher, self.own, chunk, &c.text);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: u128, score: f32) -> lexical::Hit {
        lexical::Hit {
            collection_id: Uuid::nil(),
            point_id: Uuid::from_u128(n),
            source_id: String::new(),
            score,
            matches: Vec::new(),
        }
    }

    #[test]
    fn top_hits_keep_the_best_of_each_kind_whatever_the_order() {
        let mut top = TopHits::new(3);
        for (n, score) in [(1, 0.6), (2, 0.9), (3, 0.3), (4, 0.6), (5, 1.0), (6, 0.2), (7, 0.4), (8, 0.1), (9, 0.6)] {
            top.push(hit(n, score));
        }
        assert_eq!(top.count(), 6);
        let mut kept: Vec<u128> = top.into_hits().map(|h| h.point_id.as_u128()).collect();
        kept.sort_unstable();
        // Strong: 1.0, 0.9 and the lowest id of the 0.6s; weak: 0.4, 0.3, 0.2.
        assert_eq!(kept, [1, 2, 3, 5, 6, 7]);
    }
}
