//! What the erase job does with residual candidates: report them, delete
//! them (counted in the backend before and after), or redact them (the
//! identifiers replaced in the text, re-embedded, lineage text rewritten,
//! and read back to check that no identifier is left).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::{Candidate, lexical::Matcher};
use crate::context::Context;
use crate::domain::{CollectionSpec, Identifier, ResidualPolicy};
use crate::error::Result;
use crate::store::{StoreError, lineage};
use crate::vector_store::{PointPayload, Selector, VectorPoint};

/// What the job did (or will do) with a candidate: `Candidate::action`.
pub mod action {
    pub const REPORTED: &str = "reported";
    pub const DELETED: &str = "deleted";
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
/// The chunks are locked first (as writes and redactions take them) and
/// stay locked until the caller commits: a redaction of one of them
/// (another job's) writes its point back before this delete, or finds the
/// chunk gone and writes nothing back. Unlocked, a redaction's write landing
/// between the count and the chunks' delete left a point that still names
/// the person, without lineage.
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
    lineage::lock_chunks(tx, spec.tenant_id, chunk_ids).await?;
    store.delete(spec, &selector).await?;
    let after = store.count(spec, &selector).await?;
    if after == 0 {
        lineage::delete_chunks(tx, spec.tenant_id, spec.collection_id, chunk_ids).await?;
    }
    Ok(after)
}

/// Rewrites candidate chunks without the identifiers: new text, new vector,
/// same id and tags. Returns how many of them now hold text without any
/// identifier (read back from the backend and lineage). Idempotent: a text
/// redacted by an earlier attempt is only checked again.
///
/// # Errors
/// Backend, embedding and database failures.
pub async fn redact_points(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], identifiers: &[Identifier]) -> Result<i64> {
    redact_with(ctx, spec, ids, &Matcher::new(identifiers)).await
}

/// How often a redaction reads its chunks again when writes keep changing
/// them between its read and its lock; what is left is not counted
/// redacted unless its text holds no identifier.
const REDACT_ROUNDS: usize = 3;

async fn redact_with(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], matcher: &Matcher) -> Result<i64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut pending = ids.to_vec();
    for _ in 0..REDACT_ROUNDS {
        if pending.is_empty() {
            break;
        }
        pending = redact_round(ctx, spec, &pending, matcher).await?;
    }
    if !pending.is_empty() {
        tracing::warn!(collection = %spec.name, chunks = pending.len(), "chunks kept changing while they were redacted; left as written");
    }
    // Verify in the backend and in lineage: no identifier survives. A
    // candidate whose vector is not in the backend counts by its lineage
    // text; one with neither is gone, not redacted.
    let check = ctx.stores.get(spec)?.retrieve(spec, ids, false).await?;
    let lineage_after: HashMap<Uuid, Option<String>> =
        lineage::chunk_texts(&ctx.pool, spec.tenant_id, ids).await?.into_iter().collect();
    let clean_in_lineage = |id: &Uuid| lineage_after.get(id).cloned().flatten().is_none_or(|t| matcher.find(&t).is_empty());
    let in_backend: HashSet<Uuid> = check.iter().map(|p| p.id).collect();
    let clean = check
        .iter()
        .filter(|p| p.payload.text.as_deref().is_none_or(|t| matcher.find(t).is_empty()) && clean_in_lineage(&p.id))
        .count()
        + lineage_after
            .iter()
            .filter(|(id, text)| !in_backend.contains(*id) && text.as_deref().is_some_and(|t| matcher.find(t).is_empty()))
            .count();
    Ok(i64::try_from(clean).unwrap_or(i64::MAX))
}

/// One pass of [`redact_with`]: returns the ids a write changed between
/// this pass's read and its lock, to be read again.
///
/// The texts are read, redacted and embedded outside any lock (the model
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
async fn redact_round(ctx: &Context, spec: &CollectionSpec, ids: &[Uuid], matcher: &Matcher) -> Result<Vec<Uuid>> {
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

    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let locked: HashMap<Uuid, lineage::ChunkVersion> =
        lineage::chunk_versions(&mut *tx, spec.tenant_id, ids, true).await?.into_iter().map(|c| (c.chunk_id, c)).collect();
    // The same row version, or no chunk then and none now (a point
    // without lineage).
    let as_read = |id: &Uuid| read.get(id) == locked.get(id);
    let again: Vec<Uuid> = ids.iter().copied().filter(|id| locked.contains_key(id) && !as_read(id)).collect();
    for (id, clean) in lineage_only.iter().filter(|(id, _)| as_read(id)) {
        lineage::update_chunk_text(&mut *tx, spec.tenant_id, *id, clean).await?;
    }
    let upserts: Vec<VectorPoint> = rewritten
        .iter()
        .zip(vectors)
        .filter(|((p, _), _)| as_read(&p.id))
        .map(|((p, clean), vector)| VectorPoint {
            id: p.id,
            vector,
            // Text goes back into the payload only where the payload held text.
            payload: PointPayload { text: p.payload.text.as_ref().map(|_| clean.clone()), ..p.payload.clone() },
        })
        .collect();
    // With the lineage (pgvector), or else while its locks are held.
    if !upserts.is_empty() && !store.upsert_in(&mut tx, spec, &upserts).await? {
        store.upsert(spec, &upserts).await?;
    }
    let mut payload_only = Vec::new();
    for (p, clean) in rewritten.iter().filter(|(p, _)| as_read(&p.id)) {
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
    Ok(again)
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
