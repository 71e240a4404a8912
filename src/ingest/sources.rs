//! Source ids that spell an erased person. A pipeline may name a document
//! after someone (`mailbox:zora@corp.example/msg-1`); when the person is
//! erased and the source keeps other people's chunks (a thread with
//! replies), its caller id and uri would keep them in clear. Forget lineage
//! gives such a source a keyed alias instead (`lethe:erased-source:<HMAC>`),
//! and clears its uri and its kind when those name them too. The pipeline still knows
//! the document by its own id: a write into it and `DeletePoints` by it
//! reach the alias, found by the same HMAC, so nothing of the pipeline's
//! changes and the id is never written back in clear. The points of the
//! source left in the backend (Lethe's own collections) get the alias as
//! their payload's source id too ([`relabel_points`]), after the rename
//! commits; a reconcile does it again for every aliased source.

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::ChunkInput;
use crate::context::{Context, keyed_hash};
use crate::domain::{CollectionSpec, ExternalId, Identifier};
use crate::error::Result;
use crate::identity::Person;
use crate::residual::Candidate;
use crate::screening;
use crate::store::lineage::SourceRename;
use crate::store::{StoreError, holds, lineage, retention, subjects};

/// What every alias begins with: a caller may not give a source id that does.
pub const ALIAS_PREFIX: &str = "lethe:erased-source:";

/// The alias a source with caller id `external_id` gets when its id names
/// an erased person.
pub fn erased_alias(secret: &[u8], external_id: &str) -> String {
    format!("{ALIAS_PREFIX}{}", hex::encode(keyed_hash(secret, &format!("source:{external_id}"))))
}

/// The caller ids as given, each followed by its alias: what `DeletePoints`
/// by source looks up.
pub fn with_aliases(secret: &[u8], external_ids: &[&str]) -> Vec<String> {
    external_ids.iter().flat_map(|id| [(*id).to_owned(), erased_alias(secret, id)]).collect()
}

/// Points the chunks of a write at the aliases of their sources where the
/// collection has one: a later write of a document whose id was unnamed
/// goes into that source, and its id is not stored in clear again. One
/// statement per write.
///
/// # Errors
/// Database failures.
pub(super) async fn write_into_aliases(ctx: &Context, spec: &CollectionSpec, chunks: &mut [ChunkInput]) -> Result<()> {
    let secret = ctx.tenant_secret(spec.tenant_id).await?;
    let aliases: HashMap<String, String> = chunks
        .iter()
        .map(|c| c.source_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|id| (erased_alias(&secret, id), id.to_owned()))
        .collect();
    let wanted: Vec<&str> = aliases.keys().map(String::as_str).collect();
    let found = lineage::existing_source_ids(&ctx.pool, spec.collection_id, &wanted).await?;
    if found.is_empty() {
        return Ok(());
    }
    let by_id: HashMap<&str, ExternalId> = found
        .iter()
        .filter_map(|alias| Some((aliases.get(alias)?.as_str(), ExternalId::parse("source_id", alias).ok()?)))
        .collect();
    for c in chunks.iter_mut() {
        if let Some(alias) = by_id.get(c.source_id.as_str()) {
            // The point id a chunk without one derives from its source id
            // is the one it had before: fixed from the id as given.
            c.point_id = Some(super::point_id(spec, c));
            c.source_id = alias.clone();
        }
    }
    Ok(())
}

/// A person an erasure forgets: the sources of their chunks are checked
/// against their id and identifiers.
#[derive(Debug, Clone, Copy)]
pub struct Forgotten<'a> {
    pub tenant_id: Uuid,
    pub subject_id: Uuid,
    /// The caller's id for them (empty when the job no longer has it).
    pub tag: &'a str,
}

/// What [`unname_sources`] changed.
#[derive(Debug, Default)]
pub struct Unnamed {
    /// The sources renamed (for [`relabel_points`] after the commit).
    pub renamed: Vec<Uuid>,
    /// Retention rules dropped: their source kind names one of the people
    /// (`crate::retention::drop_rules_naming`).
    pub dropped_rules: u64,
}

/// Of `sources` (those of the chunks forget deleted, locked by the
/// caller), the ones still there whose caller id or uri names one of the
/// people (`identity::names_person`: their id as a token, an identifier as
/// residual search reads it) get their alias, and their kind is cleared
/// where it names them; so are the people's tenants' retention rules for
/// such a kind dropped. Call before the tombstone drops the identifiers'
/// values.
///
/// # Errors
/// Database and key failures.
pub async fn unname_sources(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    sources: &[Uuid],
    people: &[Forgotten<'_>],
) -> Result<Unnamed> {
    if people.is_empty() {
        return Ok(Unnamed::default());
    }
    let left = lineage::sources_of(&mut **tx, sources).await?;
    let mut tenants: Vec<Uuid> = people.iter().map(|p| p.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let rules = retention::kind_rules_of_tenants(&mut **tx, &tenants).await?;
    if left.is_empty() && rules.is_empty() {
        return Ok(Unnamed::default());
    }
    let ids: Vec<Uuid> = people.iter().map(|p| p.subject_id).collect();
    let mut identifiers: HashMap<Uuid, Vec<Identifier>> = HashMap::new();
    for (subject, _, kind, value) in subjects::identifier_values_many(&mut **tx, &ids).await? {
        identifiers.entry(subject).or_default().extend(Identifier::from_row((kind, value)));
    }
    let readers: Vec<(Uuid, Person)> = people
        .iter()
        .map(|p| (p.tenant_id, Person::naming_sources(p.tag, identifiers.get(&p.subject_id).map_or(&[][..], Vec::as_slice))))
        .collect();
    let names = |text: &str, tenant: Uuid| {
        !text.is_empty() && readers.iter().filter(|(t, _)| *t == tenant).any(|(_, p)| p.named_in(text))
    };
    let mut renames = Vec::new();
    for (source_id, tenant_id, external_id, uri, kind) in left {
        if let Some(rename) = rename(ctx, tenant_id, source_id, external_id, [&uri, &kind], |t| names(t, tenant_id)).await? {
            renames.push(rename);
        }
    }
    let renamed = lineage::rename_sources(tx, &renames).await?;
    let dropped_rules = crate::retention::drop_rules_naming(tx, &rules, names).await?;
    Ok(Unnamed { renamed, dropped_rules })
}

/// Every source of the tenant whose id, uri or kind names an erased person
/// not under legal hold, by their keys (an address, a name, a phone) or by
/// their caller id as written (its keyed hash: [`screening::name_hashes`]),
/// gets its alias: after a restore of Lethe's database brought back ids
/// that forget lineage and the residual stage had aliased, and for a
/// document written under such an id since. Reads the tenant's sources a
/// page at a time (one key lookup per page): for an import and a
/// reconcile, not an erasure. Returns how many were renamed.
///
/// # Errors
/// Database and key failures.
pub async fn unname_sources_naming_the_erased(ctx: &Context, tenant_id: Uuid) -> Result<usize> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let mut renamed = 0;
    // Collection by collection, along each one's unique key.
    for collection in crate::store::collections::list_collections(&ctx.pool, tenant_id).await? {
        let mut after = String::new();
        loop {
            let page = lineage::sources_page(&ctx.pool, collection.collection_id, &after, 5_000).await?;
            let Some(last) = page.last().map(|r| r.1.clone()) else { break };
            after = last;
            // Per source: the keys its id, its uri and its kind mention.
            let hashes: Vec<[Vec<Vec<u8>>; 3]> = page
                .iter()
                .map(|(_, id, uri, kind)| {
                    let id = if is_alias(id) { Vec::new() } else { screening::name_hashes(&secret, id) };
                    [id, screening::name_hashes(&secret, uri), screening::name_hashes(&secret, kind)]
                })
                .collect();
            let page_aliases: Vec<Uuid> = page.iter().filter(|(_, id, _, _)| is_alias(id)).map(|(source, ..)| *source).collect();
            let all = unique(hashes.iter().flatten().flatten());
            if all.is_empty() {
                relabel_points_after_rename(ctx, &page_aliases).await;
                continue;
            }
            let (mut tx, erased) = erased_under_hold_lock(ctx, tenant_id, &all).await?;
            let names = |keys: &[Vec<u8>]| keys.iter().any(|h| erased.contains(h));
            let renames: Vec<SourceRename> = page
                .into_iter()
                .zip(&hashes)
                .filter(|(_, keys)| keys.iter().any(|k| names(k)))
                .map(|((source_id, id, _, _), [id_keys, uri_keys, kind_keys])| SourceRename {
                    source_id,
                    external_id: if names(id_keys) { erased_alias(&secret, &id) } else { id },
                    clear_uri: names(uri_keys),
                    clear_kind: names(kind_keys),
                })
                .collect();
            let mut aliased = lineage::rename_sources(&mut tx, &renames).await?;
            tx.commit().await.map_err(StoreError::from)?;
            renamed += renames.len();
            // Every aliased source of the page, renamed now or before (a
            // crash or a backend failure after an earlier rename's commit).
            // A backend that fails here must not stop the renames and
            // scrubs that follow (they are Lethe's own plaintext): logged,
            // and done again by the next run.
            aliased.extend(page_aliases);
            relabel_points_after_rename(ctx, &aliased).await;
        }
    }
    // Retention rules whose source kind names them (a restore brought back
    // rules an erasure dropped, or a rule a sweep has not read since).
    crate::retention::drop_rules_naming_the_erased(ctx, tenant_id).await?;
    Ok(renamed)
}

/// The residual lists of the tenant's ended erase jobs (kept for ever)
/// list a candidate whose source id names a person erased since, not under
/// legal hold, by their keys, under the id's alias instead: ann's job
/// listed `mailbox:zora@…/7` before zora was erased. A page of jobs at a
/// time (one key lookup per page), for a reconcile, not an erasure.
/// Returns how many jobs were rewritten.
///
/// # Errors
/// Database and key failures.
pub async fn unname_listed_sources(ctx: &Context, tenant_id: Uuid) -> Result<usize> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let (mut before, mut rewritten) = (None, 0);
    loop {
        let page = crate::store::jobs::residual_lists_page(&ctx.pool, tenant_id, before, 100).await?;
        let Some(last) = page.last() else { break };
        before = Some((last.1, last.0));
        let source_of = |c: &serde_json::Value| c.get("source_id").and_then(serde_json::Value::as_str).map(str::to_owned);
        let mut keys: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (_, _, list) in &page {
            for id in list.as_array().into_iter().flatten().filter_map(source_of).filter(|id| !is_alias(id)) {
                keys.entry(id).or_insert_with_key(|id| screening::name_hashes(&secret, id));
            }
        }
        let all = unique(keys.values().flatten());
        if all.is_empty() {
            continue;
        }
        let (mut tx, erased) = erased_under_hold_lock(ctx, tenant_id, &all).await?;
        let named = |id: &str| keys.get(id).is_some_and(|k| k.iter().any(|h| erased.contains(h)));
        for (job_id, _, list) in page {
            let mut new = list.clone();
            let mut changed = false;
            for c in new.as_array_mut().into_iter().flatten() {
                if let Some(id) = source_of(c).filter(|id| named(id)) {
                    c["source_id"] = serde_json::Value::String(erased_alias(&secret, &id));
                    changed = true;
                }
            }
            if changed && crate::store::jobs::replace_residuals(&mut *tx, job_id, &list, &new).await? {
                rewritten += 1;
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(rewritten)
}

/// A transaction holding the tenant's hold lock, and of `keys` those of
/// erased people not on hold, read under it: the renames made in the
/// transaction act on holds as they stand until it commits.
async fn erased_under_hold_lock(
    ctx: &Context,
    tenant_id: Uuid,
    keys: &[Vec<u8>],
) -> Result<(Transaction<'static, Postgres>, HashSet<Vec<u8>>)> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    holds::lock_shared(&mut tx, tenant_id).await?;
    let erased = subjects::erased_keys_not_held(&mut *tx, tenant_id, keys).await?.into_iter().collect();
    Ok((tx, erased))
}

/// The rename of a source whose id, uri or kind `names` (see
/// [`unname_sources`]), or None.
async fn rename(
    ctx: &Context,
    tenant_id: Uuid,
    source_id: Uuid,
    external_id: String,
    [uri, kind]: [&str; 2],
    names: impl Fn(&str) -> bool,
) -> Result<Option<SourceRename>> {
    let id_names = !is_alias(&external_id) && names(&external_id);
    let (clear_uri, clear_kind) = (names(uri), names(kind));
    if !(id_names || clear_uri || clear_kind) {
        return Ok(None);
    }
    // What names no one stays: an id that does not keeps it (its uri or
    // kind cleared), a uri or a kind that does not is kept.
    let external_id = if id_names { erased_alias(&ctx.tenant_secret(tenant_id).await?, &external_id) } else { external_id };
    Ok(Some(SourceRename { source_id, external_id, clear_uri, clear_kind }))
}

/// What residual search found of one person being erased: other people's
/// chunks that mention them.
pub struct Mentioned<'a> {
    pub tenant_id: Uuid,
    /// The caller's id for them (empty when the job no longer has it).
    pub tag: &'a str,
    /// What the search looked for.
    pub identifiers: &'a [Identifier],
    pub candidates: &'a mut [Candidate],
    /// Whether their own legal hold keeps everything: then nothing is renamed.
    pub held: bool,
}

/// The sources [`list_candidate_sources`] found named after the person of
/// search `i`: (search, rename).
pub type SourceRenames = Vec<(usize, SourceRename)>;

/// A residual candidate whose source's id or uri names the person it was
/// found for is listed under the source's alias, and its source is to get
/// that alias (its uri and kind cleared where they name them: [`rename_candidate_sources`]),
/// as the person's own sources do at forget lineage; so neither the job nor
/// lineage keeps the id in clear. A listed id that names anyone else
/// erased and not under hold (their keys or their caller id: [`screening::name_hashes`]) is
/// listed, and renamed, as its alias too, and a source lineage already knows under its
/// alias is listed under it (a payload may still hold the id). A candidate
/// outside lineage (an attached collection) is only listed under the alias.
/// One read of the candidates' sources for all the searches, and one of
/// the erased people's keys when a listed id holds an address or a name.
///
/// # Errors
/// Database and key failures.
pub async fn list_candidate_sources(
    ctx: &Context,
    ex: &mut sqlx::PgConnection,
    searches: &mut [Mentioned<'_>],
) -> Result<SourceRenames> {
    let mut renames = SourceRenames::new();
    if searches.iter().all(|s| s.candidates.is_empty()) {
        return Ok(renames);
    }
    let mut by_chunk: HashMap<(Uuid, Uuid), (Uuid, String, [String; 2])> = HashMap::new();
    for tenant in searches.iter().map(|s| s.tenant_id).collect::<HashSet<_>>() {
        let points: Vec<Uuid> =
            searches.iter().filter(|s| s.tenant_id == tenant).flat_map(|s| s.candidates.iter().map(|c| c.point_id)).collect();
        for (collection, chunk, source, external_id, uri, kind) in lineage::sources_of_chunks(&mut *ex, tenant, &points).await? {
            by_chunk.insert((collection, chunk), (source, external_id, [uri, kind]));
        }
    }
    for (i, s) in searches.iter_mut().enumerate() {
        let person = Person::naming_sources(s.tag, s.identifiers);
        let names = |text: &str| !text.is_empty() && person.named_in(text);
        let secret = ctx.tenant_secret(s.tenant_id).await?;
        let mut seen = HashSet::new();
        for c in s.candidates.iter_mut() {
            let source = by_chunk.get(&(c.collection_id, c.point_id));
            if let Some((source, external_id, [uri, kind])) = source
                && seen.insert(*source)
                && !s.held
                && let Some(rename) = rename(ctx, s.tenant_id, *source, external_id.clone(), [uri, kind], names).await?
            {
                renames.push((i, rename));
            }
            match source {
                Some((_, external_id, _)) if is_alias(external_id) => c.source_id.clone_from(external_id),
                _ if !is_alias(&c.source_id) && names(&c.source_id) => c.source_id = erased_alias(&secret, &c.source_id),
                _ => {}
            }
        }
    }
    // Ids naming anyone else erased: their keys are all that is left of
    // them. Lineage's source is renamed too. One key lookup per tenant.
    let mut keys: Vec<HashMap<String, Vec<Vec<u8>>>> = Vec::with_capacity(searches.len());
    for s in searches.iter() {
        let secret = ctx.tenant_secret(s.tenant_id).await?;
        keys.push(
            s.candidates
                .iter()
                .filter(|c| !is_alias(&c.source_id))
                .map(|c| (c.source_id.clone(), screening::name_hashes(&secret, &c.source_id)))
                .filter(|(_, k)| !k.is_empty())
                .collect(),
        );
    }
    let mut erased: HashMap<Uuid, HashSet<Vec<u8>>> = HashMap::new();
    for tenant in searches.iter().map(|s| s.tenant_id).collect::<HashSet<_>>() {
        let all = unique(searches.iter().zip(&keys).filter(|(s, _)| s.tenant_id == tenant).flat_map(|(_, k)| k.values().flatten()));
        if !all.is_empty() {
            erased.insert(tenant, subjects::erased_keys_not_held(&mut *ex, tenant, &all).await?.into_iter().collect());
        }
    }
    for (i, (s, keys)) in searches.iter_mut().zip(&keys).enumerate() {
        let Some(erased) = erased.get(&s.tenant_id) else { continue };
        let secret = ctx.tenant_secret(s.tenant_id).await?;
        for c in s.candidates.iter_mut() {
            if !keys.get(&c.source_id).is_some_and(|k| k.iter().any(|h| erased.contains(h))) {
                continue;
            }
            let alias = erased_alias(&secret, &c.source_id);
            if let Some((source, external_id, _)) = by_chunk.get(&(c.collection_id, c.point_id))
                && *external_id == c.source_id
                && !s.held
            {
                renames.push((i, SourceRename { source_id: *source, external_id: alias.clone(), clear_uri: false, clear_kind: false }));
            }
            c.source_id = alias;
        }
    }
    Ok(renames)
}

/// Gives the sources [`list_candidate_sources`] found their aliases, for the
/// searches in `recorded` (those whose job still holds its lease: their
/// record was written in `tx`), and returns how many were renamed. Two
/// people's searches may rename one source: the alias of its id and a
/// cleared uri or kind, whichever either asks for. Returns the renamed
/// sources (for [`relabel_points`] after the commit).
///
/// # Errors
/// Database failures.
pub async fn rename_candidate_sources(
    tx: &mut Transaction<'_, Postgres>,
    renames: &SourceRenames,
    recorded: impl Fn(usize) -> bool,
) -> Result<Vec<Uuid>> {
    let mut merged: HashMap<Uuid, SourceRename> = HashMap::new();
    for (_, r) in renames.iter().filter(|r| recorded(r.0)) {
        let entry = merged.entry(r.source_id).or_insert_with(|| r.clone());
        if is_alias(&r.external_id) {
            entry.external_id.clone_from(&r.external_id);
        }
        entry.clear_uri |= r.clear_uri;
        entry.clear_kind |= r.clear_kind;
    }
    let renames: Vec<SourceRename> = merged.into_values().collect();
    Ok(lineage::rename_sources(tx, &renames).await?)
}

/// Gives the points of these sources that are aliases the alias as their
/// payload's source id, in the collections Lethe created (an attached
/// store's metadata is the framework's). Reads lineage, then one backend
/// call per source and 1,000 points; a point already labelled is not
/// written again. Returns how many points were looked at.
///
/// # Errors
/// Database and backend failures.
pub async fn relabel_points(ctx: &Context, sources: &[Uuid]) -> Result<usize> {
    let mut by_source: std::collections::BTreeMap<(Uuid, Uuid, String), Vec<Uuid>> = std::collections::BTreeMap::new();
    for (tenant, collection, external_id, chunk) in lineage::chunks_of_sources(&ctx.pool, sources).await? {
        if is_alias(&external_id) {
            by_source.entry((tenant, collection, external_id)).or_default().push(chunk);
        }
    }
    let mut relabelled = 0;
    let mut specs: HashMap<Uuid, Option<crate::domain::CollectionSpec>> = HashMap::new();
    for ((tenant_id, collection_id, alias), ids) in by_source {
        let spec = match specs.entry(collection_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(crate::store::collections::collection_by_id(&ctx.pool, tenant_id, collection_id).await?)
            }
        };
        let Some(spec) = spec.as_ref().filter(|s| !s.is_attached()) else { continue };
        let store = ctx.stores.get(spec)?;
        for page in ids.chunks(1_000) {
            store.relabel_source(spec, page, &alias).await?;
        }
        relabelled += ids.len();
    }
    Ok(relabelled)
}

/// [`relabel_points`] after a rename has committed (an erasure stage's, a
/// reconcile's, an import's): a failure is logged and left to the next
/// reconcile, which relabels every aliased source (the work that committed
/// is done and must not run again, and what follows it must still run).
pub async fn relabel_points_after_rename(ctx: &Context, sources: &[Uuid]) {
    if sources.is_empty() {
        return;
    }
    if let Err(e) = relabel_points(ctx, sources).await {
        tracing::warn!(error = %e, sources = sources.len(), "the points of renamed sources keep their old source id until the next reconcile");
    }
}

/// The keys, each once: a page's sources share most of theirs (a domain,
/// a common word), and each is a parameter of the lookup.
fn unique<'a>(keys: impl Iterator<Item = &'a Vec<u8>>) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = keys.cloned().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Whether a caller id is an alias Lethe gave.
pub fn is_alias(external_id: &str) -> bool {
    external_id.starts_with(ALIAS_PREFIX)
}
