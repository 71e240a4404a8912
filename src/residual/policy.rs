//! What the erase job does with residual candidates: report them, delete
//! them (counted in the backend before and after), or redact them (the
//! identifiers replaced in the text, re-embedded, lineage text rewritten,
//! and read back to check that no identifier is left).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::{Candidate, lexical::Matcher};
use crate::context::{Context, keyed_hash, subject_lock_key};
use crate::domain::{CollectionSpec, Identifier, ResidualPolicy};
use crate::error::Result;
use crate::store::{StoreError, lineage};
use crate::vector_store::{PointPayload, Selector, StoredPoint, VectorPoint};

/// What the job did (or will do) with a candidate: `Candidate::action`.
pub mod action {
    pub const REPORTED: &str = "reported";
    pub const DELETED: &str = "deleted";
    /// Gone when the job deleted: another erasure deleted the point after
    /// this job had found it, and is credited with it (not counted here).
    pub const DELETED_ELSEWHERE: &str = "deleted_elsewhere";
    pub const REDACTED: &str = "redacted";
    /// Planned and stored before the collection's deletes began; a job that
    /// stopped half-way shows what it had not yet done.
    pub const PENDING_DELETE: &str = "pending_delete";
    pub const PENDING_REDACT: &str = "pending_redact";
    /// Tagged with a subject on legal hold (or the erased subject was placed
    /// under hold): reported, neither deleted nor redacted.
    pub const WITHHELD_LEGAL_HOLD: &str = "withheld_legal_hold";
    /// Found only through an identifier that matches too many chunks to act
    /// on without a person looking (see [`super::hold_back_too_common`]).
    pub const WITHHELD_TOO_COMMON: &str = "withheld_too_common";
}

/// An identifier that named more chunks than a destructive policy may act
/// on, and how many candidates were held back because of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooCommon {
    /// Index of the identifier in the query's order.
    pub identifier: usize,
    pub kind: &'static str,
    /// Candidates whose text it matched.
    pub matched: usize,
    /// Candidates found only through it (or other too common ones), now
    /// `withheld_too_common`.
    pub withheld: usize,
}

/// Under `delete` or `redact`: an identifier whose text matched more than
/// `max` candidates (a common name, a shared mailbox) is too common to act
/// on automatically. Candidates found only through such identifiers (no
/// other identifier matched, no evidence by meaning) are held back: their
/// planned action becomes `withheld_too_common` and they stay reported.
pub fn hold_back_too_common(candidates: &mut [Candidate], identifiers: &[Identifier], max: usize) -> Vec<TooCommon> {
    let lexical = |c: &Candidate| -> BTreeSet<usize> {
        c.evidence.iter().filter(|e| e.kind == "lexical").filter_map(|e| e.identifier).collect()
    };
    let mut matched: BTreeMap<usize, usize> = BTreeMap::new();
    for c in candidates.iter() {
        for i in lexical(c) {
            *matched.entry(i).or_default() += 1;
        }
    }
    let common: BTreeSet<usize> = matched.iter().filter(|(_, n)| **n > max).map(|(i, _)| *i).collect();
    if common.is_empty() {
        return Vec::new();
    }
    let mut withheld: BTreeMap<usize, usize> = BTreeMap::new();
    for c in candidates.iter_mut().filter(|c| c.action == action::PENDING_DELETE || c.action == action::PENDING_REDACT) {
        let named_by = lexical(c);
        let by_meaning = c.evidence.iter().any(|e| e.kind == "semantic");
        if !named_by.is_empty() && named_by.is_subset(&common) && !by_meaning {
            c.action = action::WITHHELD_TOO_COMMON.to_owned();
            for i in named_by {
                *withheld.entry(i).or_default() += 1;
            }
        }
    }
    common
        .into_iter()
        .map(|i| TooCommon {
            identifier: i,
            kind: identifiers.get(i).map_or("identifier", |id| id.kind.as_str()),
            matched: matched[&i],
            withheld: withheld.get(&i).copied().unwrap_or(0),
        })
        .collect()
}

/// Marks each candidate with the action the policy will take. Under
/// `redact`, only candidates whose text names the person can be rewritten;
/// candidates found by meaning alone carry no identifier to remove and stay
/// `reported`.
pub fn plan(policy: ResidualPolicy, candidates: &mut [Candidate]) {
    for c in candidates {
        c.action = match policy {
            ResidualPolicy::Report => action::REPORTED,
            ResidualPolicy::Delete => action::PENDING_DELETE,
            ResidualPolicy::Redact if c.evidence.iter().any(|e| e.kind == "lexical") => action::PENDING_REDACT,
            ResidualPolicy::Redact => action::REPORTED,
        }
        .to_owned();
    }
}

/// Deletes the points `targets` from the backend and the chunks
/// `chunk_ids` (targets and candidates without a vector) from lineage, in
/// `tx`, the caller's transaction; returns how many of the targets are
/// still in the backend afterwards.
///
/// The caller has locked the chunks in `tx` (`lineage::lock_chunks`) before
/// it chose them, and they stay locked until it commits: a redaction of one
/// of them (another job's) writes its point back before this delete, or
/// finds the chunk gone and writes nothing back. Unlocked, a redaction's
/// write landing between the count and the chunks' delete left a point that
/// still names the person, without lineage.
///
/// # Errors
/// Backend and database failures.
pub async fn delete_points(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    spec: &CollectionSpec,
    targets: &[Uuid],
    chunk_ids: &[Uuid],
) -> Result<u64> {
    let store = ctx.stores.get(spec)?;
    let selector = Selector::by_ids(targets.to_vec());
    store.delete(spec, &selector).await?;
    let after = store.count(spec, &selector).await?;
    if after == 0 {
        lineage::delete_chunks(tx, spec.tenant_id, spec.collection_id, chunk_ids).await?;
    }
    Ok(after)
}

/// Rewrites candidate chunks without the identifiers: new text, new vector,
/// same id and tags. Returns those of `ids` that now hold text and none of
/// it names the person (read back from the backend and lineage): the ones
/// to report redacted. Idempotent: a text redacted by an earlier attempt is
/// only checked again. Not among them: a candidate gone since its search
/// (erased with its owner), one whose point carries the tag of a subject
/// being or already erased (its erasure deletes it; written back, it would
/// outlive that erasure's count), and one that writes kept changing.
///
/// # Errors
/// Backend, embedding and database failures.
pub async fn redact_points(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], identifiers: &[Identifier]) -> Result<Redaction> {
    redact_with(ctx, spec, ids, &Matcher::new(identifiers)).await
}

/// What [`redact_points`] did.
#[derive(Debug, Default)]
pub struct Redaction {
    /// The candidates to report redacted: read back, each has a text and
    /// none of its texts names the person.
    pub clean: HashSet<Uuid>,
    /// How many candidates it wrote back (text, vector or both), clean in
    /// the end or not: one rewritten and then erased by its owner before the
    /// read-back is not clean, but its old row is there to reclaim all the
    /// same (the physical stage counts these).
    pub rewritten: usize,
}

/// How often a redaction reads its chunks again when writes keep changing
/// them between its read and its lock; what is left is not counted
/// redacted unless its text holds no identifier.
const REDACT_ROUNDS: usize = 3;

async fn redact_with(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], matcher: &Matcher) -> Result<Redaction> {
    if ids.is_empty() {
        return Ok(Redaction::default());
    }
    let mut pending = ids.to_vec();
    let mut written: HashSet<Uuid> = HashSet::new();
    for _ in 0..REDACT_ROUNDS {
        if pending.is_empty() {
            break;
        }
        let round = redact_round(ctx, spec, &pending, matcher).await?;
        written.extend(round.written);
        pending = round.again;
    }
    if !pending.is_empty() {
        tracing::warn!(collection = %spec.name, chunks = pending.len(), "chunks kept changing while they were redacted; left as written");
    }
    // Read back from the backend and lineage: every text a candidate still
    // has (its point's payload, its chunk's) is without identifier, and it
    // has one.
    let points: HashMap<Uuid, Option<String>> =
        ctx.stores.get(spec)?.retrieve(spec, ids, false).await?.into_iter().map(|p| (p.id, p.payload.text)).collect();
    let chunks: HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, spec.tenant_id, ids).await?.into_iter().collect();
    let clean = |text: &Option<String>| text.as_deref().is_none_or(|t| matcher.find(t).is_empty());
    let clean = ids
        .iter()
        .copied()
        .filter(|id| {
            let texts = [points.get(id), chunks.get(id)];
            texts.iter().flatten().any(|t| t.is_some()) && texts.iter().flatten().all(|t| clean(t))
        })
        .collect();
    Ok(Redaction { clean, rewritten: written.len() })
}

/// What one [`redact_round`] did.
struct Round {
    /// Chunks a write changed between the round's read and its lock.
    again: Vec<Uuid>,
    /// Candidates written back.
    written: Vec<Uuid>,
}

/// One pass of [`redact_with`]: what it wrote back, and the ids a write
/// changed between this pass's read and its lock, to be read again.
///
/// The texts are read, redacted and embedded without the chunks' locks (the model
/// can take seconds), then written back under the chunks' lineage locks
/// (`FOR UPDATE`, in id order, as writes take them), held until the new
/// texts and vectors are in, and only where the chunk is still the row
/// version read:
/// - a chunk gone since the read was forgotten with its point (an erasure
///   of its owner, another job's residual delete): its point is not
///   written back, where it would stay without lineage;
/// - a chunk written since the read is read again in the next pass;
/// - an erasure of the owner that deletes the point after the read and
///   reaches forget lineage while this pass holds the lock waits for it,
///   finds the chunk written since its count, and deletes the point
///   written back here again (`lineage::forget_subjects_chunks`).
async fn redact_round(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], matcher: &Matcher) -> Result<Round> {
    let store = ctx.stores.get(spec)?;
    let read: HashMap<Uuid, lineage::ChunkVersion> =
        lineage::chunk_versions(&ctx.pool, spec.tenant_id, ids, false).await?.into_iter().map(|c| (c.chunk_id, c)).collect();
    let points = store.retrieve(spec, ids, false).await?;
    // A candidate found through its lineage text whose vector is not in the
    // backend (a crash between lineage and vector, a point the pipeline
    // deleted without DeletePoints): only its text to rewrite.
    let in_backend: HashSet<Uuid> = points.iter().map(|p| p.id).collect();
    let lineage_only: Vec<(Uuid, String)> = read
        .values()
        .filter(|c| !in_backend.contains(&c.chunk_id))
        .filter_map(|c| c.text.as_deref().map(|t| (c.chunk_id, t, matcher.redact(t))))
        .filter(|(_, text, clean)| clean != text)
        .map(|(id, _, clean)| (id, clean))
        .collect();
    let mut rewritten = Vec::new();
    for p in points {
        let Some(text) = read.get(&p.id).and_then(|c| c.text.clone()).or_else(|| p.payload.text.clone()) else { continue };
        let clean = matcher.redact(&text);
        // Text redacted by an earlier attempt of the stage needs no new vector.
        let payload_stale = p.payload.text.as_deref().is_some_and(|t| t != clean);
        if clean != text || payload_stale {
            rewritten.push((p, clean));
        }
    }
    let vectors = ctx.embedder.embed(rewritten.iter().map(|(_, t)| t.clone()).collect()).await?;
    let mut rewritten: Vec<(StoredPoint, String, Vec<f32>)> = rewritten.into_iter().zip(vectors).map(|((p, t), v)| (p, t, v)).collect();

    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // A point written back is a write of its tags: like the write path,
    // under its subjects' locks (an erasure's freeze waits for them) and not
    // for a subject being or already erased, whose erasure deletes the point
    // (written back after its delete, it would outlive its count).
    let blocked = blocked_tags(ctx, &mut tx, spec.tenant_id, rewritten.iter().flat_map(|(p, _, _)| &p.payload.subjects)).await?;
    rewritten.retain(|(p, _, _)| !p.payload.subjects.iter().any(|t| blocked.contains(t)));
    let locked: HashMap<Uuid, lineage::ChunkVersion> =
        lineage::chunk_versions(&mut *tx, spec.tenant_id, ids, true).await?.into_iter().map(|c| (c.chunk_id, c)).collect();
    // The same row version, or no chunk then and none now (a point
    // without lineage).
    let as_read = |id: &Uuid| read.get(id) == locked.get(id);
    let again: Vec<Uuid> = ids.iter().copied().filter(|id| locked.contains_key(id) && !as_read(id)).collect();
    let mut written = Vec::new();
    for (id, clean) in lineage_only.iter().filter(|(id, _)| as_read(id)) {
        lineage::update_chunk_text(&mut *tx, spec.tenant_id, *id, clean).await?;
        written.push(*id);
    }
    let upserts: Vec<VectorPoint> = rewritten
        .iter()
        .filter(|(p, _, _)| as_read(&p.id))
        .map(|(p, clean, vector)| VectorPoint {
            id: p.id,
            vector: vector.clone(),
            // Text goes back into the payload only where the payload held text.
            payload: PointPayload { text: p.payload.text.as_ref().map(|_| clean.clone()), ..p.payload.clone() },
        })
        .collect();
    // With the lineage (pgvector), or else while its locks are held.
    if !upserts.is_empty() && !store.upsert_in(&mut tx, spec, &upserts).await? {
        store.upsert(spec, &upserts).await?;
    }
    let mut payload_only = Vec::new();
    for (p, clean, _) in rewritten.iter().filter(|(p, _, _)| as_read(&p.id)) {
        match locked.get(&p.id) {
            Some(c) if c.text.is_some() => lineage::update_chunk_text(&mut *tx, spec.tenant_id, p.id, clean).await?,
            Some(_) => payload_only.push(p.id),
            None => {}
        }
    }
    // Marked changed too: a re-index whose copy has passed them copies them
    // again at its switch, rather than promoting the text before redaction.
    lineage::mark_chunks_changed(&mut *tx, spec.tenant_id, spec.collection_id, &payload_only).await?;
    tx.commit().await.map_err(StoreError::from)?;
    written.extend(upserts.iter().map(|p| p.id));
    Ok(Round { again, written })
}

/// Of `tags` (caller ids, as payloads carry them), those of subjects being
/// or already erased, read under the subjects' locks, taken shared in `tx`
/// as the write path takes them.
async fn blocked_tags<'a>(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant_id: Uuid,
    tags: impl Iterator<Item = &'a String>,
) -> Result<HashSet<String>> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let hashed: BTreeMap<&String, Vec<u8>> = tags.map(|t| (t, keyed_hash(&secret, t))).collect();
    if hashed.is_empty() {
        return Ok(HashSet::new());
    }
    let keys: Vec<i64> = hashed.values().map(|h| subject_lock_key(h)).collect();
    lineage::lock_subject_shared(tx, &keys).await?;
    let hashes: Vec<&[u8]> = hashed.values().map(Vec::as_slice).collect();
    let blocked: HashSet<Vec<u8>> =
        lineage::tagged_subjects(&mut **tx, tenant_id, &hashes).await?.into_iter().filter(|(_, _, by)| by.is_some()).map(|(h, _, _)| h).collect();
    Ok(hashed.into_iter().filter(|(_, h)| blocked.contains(h)).map(|(t, _)| t.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdentifierKind;
    use crate::residual::Evidence;

    fn candidate(lexical: &[usize], semantic: bool) -> Candidate {
        let mut evidence: Vec<Evidence> = lexical
            .iter()
            .map(|&i| Evidence {
                kind: "lexical".into(),
                detail: String::new(),
                matched: String::new(),
                score: 1.0,
                position: Some(0),
                identifier: Some(i),
            })
            .collect();
        if semantic {
            evidence.push(Evidence {
                kind: "semantic".into(),
                detail: String::new(),
                matched: String::new(),
                score: 0.9,
                position: None,
                identifier: None,
            });
        }
        Candidate {
            collection: "c".into(),
            collection_id: Uuid::nil(),
            point_id: Uuid::new_v4(),
            source_id: "s".into(),
            score: 1.0,
            evidence,
            action: action::PENDING_DELETE.into(),
        }
    }

    #[test]
    fn candidates_found_only_through_a_too_common_identifier_are_held_back() {
        let ids = [
            Identifier { kind: IdentifierKind::Name, value: "John Smith".into() },
            Identifier { kind: IdentifierKind::Email, value: "jsmith@x.example".into() },
        ];
        // The name matches 4 chunks (> 3), the address 2.
        let mut cs = vec![
            candidate(&[0], false),
            candidate(&[0], false),
            candidate(&[0, 1], false),
            candidate(&[0], true),
            candidate(&[1], false),
        ];
        let common = hold_back_too_common(&mut cs, &ids, 3);
        assert_eq!(common, vec![TooCommon { identifier: 0, kind: "name", matched: 4, withheld: 2 }]);
        let actions: Vec<&str> = cs.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["withheld_too_common", "withheld_too_common", "pending_delete", "pending_delete", "pending_delete"]);
        // At the limit nothing is held back.
        let mut cs = vec![candidate(&[0], false), candidate(&[0], false)];
        assert!(hold_back_too_common(&mut cs, &ids, 2).is_empty());
        assert!(cs.iter().all(|c| c.action == action::PENDING_DELETE));
    }
}
