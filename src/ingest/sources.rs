//! Source ids that spell an erased person. A pipeline may name a document
//! after someone (`mailbox:zora@corp.example/msg-1`); when the person is
//! erased and the source keeps other people's chunks (a thread with
//! replies), its caller id and uri would keep them in clear. Forget lineage
//! gives such a source a keyed alias instead (`lethe:erased-source:<HMAC>`),
//! and clears its uri when that names them too. The pipeline still knows
//! the document by its own id: a write into it and `DeletePoints` by it
//! reach the alias, found by the same HMAC, so nothing of the pipeline's
//! changes and the id is never written back in clear.

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::ChunkInput;
use crate::context::{Context, keyed_hash};
use crate::domain::{CollectionSpec, ExternalId, Identifier};
use crate::error::Result;
use crate::identity::Person;
use crate::residual::Candidate;
use crate::store::{lineage, subjects};

const ALIAS_PREFIX: &str = "lethe:erased-source:";

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

/// Of `sources` (those of the chunks forget deleted, locked by the
/// caller), the ones still there whose caller id or uri names one of the
/// people (`identity::names_person`: their id as a token, an identifier as
/// residual search reads it) get their alias. Call before the tombstone
/// drops the identifiers' values. Returns how many were renamed.
///
/// # Errors
/// Database and key failures.
pub async fn unname_sources(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    sources: &[Uuid],
    people: &[Forgotten<'_>],
) -> Result<usize> {
    let left = lineage::sources_of(&mut **tx, sources).await?;
    if left.is_empty() || people.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = people.iter().map(|p| p.subject_id).collect();
    let mut identifiers: HashMap<Uuid, Vec<Identifier>> = HashMap::new();
    for (subject, _, kind, value) in subjects::identifier_values_many(&mut **tx, &ids).await? {
        identifiers.entry(subject).or_default().extend(Identifier::from_row((kind, value)));
    }
    let readers: Vec<(Uuid, Person)> = people
        .iter()
        .map(|p| (p.tenant_id, Person::new(p.tag, identifiers.get(&p.subject_id).map_or(&[][..], Vec::as_slice))))
        .collect();
    let names = |text: &str, tenant: Uuid| {
        !text.is_empty() && readers.iter().filter(|(t, _)| *t == tenant).any(|(_, p)| p.named_in(text))
    };
    let mut renames = Vec::new();
    for (source_id, tenant_id, external_id, uri) in left {
        if let Some(rename) = rename(ctx, tenant_id, source_id, external_id, &uri, |t| names(t, tenant_id)).await? {
            renames.push(rename);
        }
    }
    lineage::rename_sources(&mut **tx, &renames).await?;
    Ok(renames.len())
}

/// The rename of a source whose id or uri `names` (see [`unname_sources`]),
/// or None.
async fn rename(
    ctx: &Context,
    tenant_id: Uuid,
    source_id: Uuid,
    external_id: String,
    uri: &str,
    names: impl Fn(&str) -> bool,
) -> Result<Option<(Uuid, String, bool)>> {
    if external_id.starts_with(ALIAS_PREFIX) && !names(uri) {
        return Ok(None);
    }
    let id_names = !external_id.starts_with(ALIAS_PREFIX) && names(&external_id);
    let uri_names = names(uri);
    if !(id_names || uri_names) {
        return Ok(None);
    }
    // A uri that names no one stays; an id that does not, too (its uri cleared).
    let name = if id_names { erased_alias(&ctx.tenant_secret(tenant_id).await?, &external_id) } else { external_id };
    Ok(Some((source_id, name, uri_names)))
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
}

/// A residual candidate whose source's id or uri names the person it was
/// found for: the source gets its alias (its uri cleared where that names
/// them), as the person's own sources do at forget lineage, and the
/// candidate lists the alias, so that neither the job nor lineage keeps
/// the id in clear. A candidate outside lineage (an attached collection)
/// only lists the alias. One read of the candidates' sources for all the
/// searches. Returns how many sources were renamed.
///
/// # Errors
/// Database and key failures.
pub async fn unname_candidate_sources(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    searches: &mut [Mentioned<'_>],
) -> Result<usize> {
    let points: Vec<Uuid> = searches.iter().flat_map(|s| s.candidates.iter().map(|c| c.point_id)).collect();
    if points.is_empty() {
        return Ok(0);
    }
    let by_chunk: HashMap<Uuid, (Uuid, String, String)> = lineage::sources_of_chunks(&mut **tx, &points)
        .await?
        .into_iter()
        .map(|(chunk, source, external_id, uri)| (chunk, (source, external_id, uri)))
        .collect();
    let mut renames: HashMap<Uuid, (String, bool)> = HashMap::new();
    for s in searches.iter_mut() {
        let person = Person::new(s.tag, s.identifiers);
        let names = |text: &str| !text.is_empty() && person.named_in(text);
        let secret = ctx.tenant_secret(s.tenant_id).await?;
        let mut seen = HashSet::new();
        for c in s.candidates.iter_mut() {
            if let Some((source, external_id, uri)) = by_chunk.get(&c.point_id)
                && seen.insert(*source)
                && let Some((_, name, clear)) = rename(ctx, s.tenant_id, *source, external_id.clone(), uri, names).await?
            {
                // Two people's searches may rename one source: the alias
                // (of its id) and a cleared uri, whichever either asks for.
                let entry = renames.entry(*source).or_insert_with(|| (external_id.clone(), false));
                if name != *external_id {
                    entry.0 = name;
                }
                entry.1 |= clear;
            }
            if !c.source_id.starts_with(ALIAS_PREFIX) && names(&c.source_id) {
                c.source_id = erased_alias(&secret, &c.source_id);
            }
        }
    }
    let mut renames: Vec<(Uuid, String, bool)> = renames.into_iter().map(|(id, (name, clear))| (id, name, clear)).collect();
    // One order for every writer of these rows.
    renames.sort_by_key(|r| r.0);
    lineage::rename_sources(&mut **tx, &renames).await?;
    Ok(renames.len())
}
