//! What the write path refuses to write: chunks tagged with a subject that is
//! being or has been erased (or with an id whose identifiers name one), and,
//! by the collection's screening policy, chunks whose text names such a
//! person. Points of such chunks already in the backend are deleted and the
//! deletion logged as a follow-up of the erasure.

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::{ChunkInput, WriteMode, point_id};
use crate::context::Context;
use crate::domain::{CollectionSpec, Screening};
use crate::error::{LetheError, Result};
use crate::screening;
use crate::store::{StoreError, lineage};
use crate::vector_store::Selector;

/// What the write path knows of its tagged subjects after one query.
pub(super) struct Tagged {
    /// Tagged subjects whose chunks must not be written, by caller id, with
    /// the subject that suppresses them: themselves when they are being or
    /// have been erased (or are suppressed aliases), else an erased or
    /// pending subject that one of their identifiers names (the same person
    /// under another id, kind or spelling; see `identity`).
    pub(super) blocked: HashMap<String, Uuid>,
    /// The ids of the tagged subjects that exist, by keyed hash: lineage
    /// creates only the others.
    pub(super) known: HashMap<Vec<u8>, Uuid>,
}

pub(super) async fn blocked_subjects(
    ctx: &Context,
    tenant_id: Uuid,
    tagged: &BTreeMap<String, Vec<u8>>,
) -> Result<Tagged> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    // A tag with invisible characters (or full-width ones) is also read as
    // identifiers are, and unescaped (`identity::id_readings`): `ps1\u{200B}`
    // and `ps%2D1` are blocked with `ps1` and `ps-1`. Rare: no hash more for
    // a plain tag.
    let readable: Vec<(&String, Vec<u8>)> = tagged
        .keys()
        .flat_map(|id| crate::identity::id_readings(id).into_iter().map(move |r| (id, r)))
        .map(|(id, r)| (id, crate::context::keyed_hash(&secret, &r)))
        .collect();
    // One query for every tagged subject: a batch of 1,000 chunks may tag as many.
    let hashes: Vec<&[u8]> = tagged.values().chain(readable.iter().map(|(_, h)| h)).map(Vec::as_slice).collect();
    let rows = lineage::tagged_subjects(&ctx.pool, tenant_id, &hashes).await?;
    let by_hash: HashMap<&[u8], Uuid> =
        rows.iter().filter_map(|(h, _, by)| by.map(|by| (h.as_slice(), by))).collect();
    let mut blocked: HashMap<String, Uuid> =
        tagged.iter().filter_map(|(id, h)| by_hash.get(h.as_slice()).map(|by| (id.clone(), *by))).collect();
    for (id, h) in &readable {
        if let Some(by) = by_hash.get(h.as_slice()) {
            blocked.entry((*id).clone()).or_insert(*by);
        }
    }
    // A tag that is itself an identifier of an erased person (a pipeline
    // tagging by address: `xavier@ex.com`, or by name), by its keys as a
    // text's mentions are read: one more query, only when a tag has any.
    let keys: Vec<(&String, Vec<Vec<u8>>)> = tagged
        .keys()
        .filter(|id| !blocked.contains_key(*id))
        .map(|id| (id, crate::screening::mention_hashes(&secret, id)))
        .filter(|(_, k)| !k.is_empty())
        .collect();
    if !keys.is_empty() {
        let all: Vec<Vec<u8>> = keys.iter().flat_map(|(_, k)| k.iter().cloned()).collect();
        let erased: HashMap<Vec<u8>, Uuid> = lineage::erased_subjects_by_keys(&ctx.pool, tenant_id, &all).await?.into_iter().collect();
        for (id, k) in keys {
            if let Some(by) = k.iter().find_map(|h| erased.get(h)) {
                blocked.insert(id.clone(), *by);
            }
        }
    }
    let known = rows.into_iter().map(|(h, id, _)| (h, id)).collect();
    Ok(Tagged { blocked, known })
}

/// What screening left to write.
pub(super) struct Screened {
    pub(super) accepted: Vec<ChunkInput>,
    /// Chunks written that name an erased person: (point id, source id, subject).
    pub(super) reports: Vec<(Uuid, String, Uuid)>,
    pub(super) count: u32,
    /// Chunks whose text redaction rewrote (Ingest): embedded again.
    pub(super) redacted: Vec<Uuid>,
}

/// Applies the collection's screening policy to chunks about to be written
/// (see `screening`): report keeps them and remembers them, redact rewrites
/// their text before it is embedded, reject (and redact on Track, whose
/// vectors Lethe did not compute) moves them to `unwanted`.
pub(super) async fn screen(
    ctx: &Context,
    spec: &CollectionSpec,
    mut chunks: Vec<ChunkInput>,
    mode: WriteMode,
    unwanted: &mut Vec<(Uuid, Uuid)>,
) -> Result<Screened> {
    if spec.screening == Screening::Accept || chunks.iter().all(|c| c.text.is_none()) {
        return Ok(Screened { accepted: chunks, reports: Vec::new(), count: 0, redacted: Vec::new() });
    }
    let texts: Vec<Option<&str>> = chunks.iter().map(|c| c.text.as_deref()).collect();
    let findings = screening::screen(ctx, spec.tenant_id, &texts).await?;
    let count = u32::try_from(findings.len()).unwrap_or(u32::MAX);
    let mut reports = Vec::new();
    let mut rejected = HashSet::new();
    let mut redacted = Vec::new();
    for f in findings {
        let c = &mut chunks[f.chunk];
        match (spec.screening, mode) {
            (Screening::Accept, _) => {}
            (Screening::Report, _) => reports.push((point_id(spec, c), c.source_id.as_str().to_owned(), f.subject_id)),
            (Screening::Redact, WriteMode::Embed) => {
                c.text = c.text.as_deref().map(|t| screening::redact(t, &f.spans));
                redacted.push(point_id(spec, c));
            }
            (Screening::Reject, _) | (Screening::Redact, WriteMode::Track { .. }) => {
                unwanted.push((point_id(spec, c), f.subject_id));
                rejected.insert(f.chunk);
            }
        }
    }
    let accepted = chunks.into_iter().enumerate().filter(|(i, _)| !rejected.contains(i)).map(|(_, c)| c).collect();
    redacted.sort_unstable();
    redacted.dedup();
    Ok(Screened { accepted, reports, count, redacted })
}

/// Lists chunks that were written although they name an erased person as
/// residuals of that person's erasure (policy `report`). Only ids: the
/// residual carries no text.
///
/// A source id that names a person being or having been erased
/// ([`screening::name_hashes`]: among their keys, or their caller id) is listed as its alias
/// (`ingest::sources`): the job is kept for ever.
pub(super) async fn report_screened(ctx: &Context, spec: &CollectionSpec, reports: &[(Uuid, String, Uuid)]) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let secret = ctx.tenant_secret(spec.tenant_id).await?;
    let keys: HashMap<&str, Vec<Vec<u8>>> =
        reports.iter().map(|(_, source_id, _)| (source_id.as_str(), screening::name_hashes(&secret, source_id))).collect();
    let all: Vec<Vec<u8>> = keys.values().flatten().cloned().collect();
    let mut erased: HashSet<Vec<u8>> = if all.is_empty() {
        HashSet::new()
    } else {
        lineage::erased_subjects_by_keys(&ctx.pool, spec.tenant_id, &all).await?.into_iter().map(|(h, _)| h).collect()
    };
    if !all.is_empty() {
        erased.extend(crate::store::subjects::erased_id_hashes(&ctx.pool, spec.tenant_id, &all).await?);
    }
    for (point_id, source_id, subject_id) in reports {
        let Some(job) = lineage::latest_erasure(&ctx.pool, *subject_id).await? else { continue };
        let named = keys.get(source_id.as_str()).is_some_and(|k| k.iter().any(|h| erased.contains(h)));
        let residual = crate::residual::Candidate {
            collection: spec.name.to_string(),
            collection_id: spec.collection_id,
            point_id: *point_id,
            source_id: if named { super::sources::erased_alias(&secret, source_id) } else { source_id.clone() },
            score: 1.0,
            evidence: vec![crate::residual::Evidence {
                kind: "screening".into(),
                detail: "written after the erasure; its text names the person".into(),
                matched: String::new(),
                score: 1.0,
                position: None,
                identifier: None,
            }],
            action: "reported_at_ingest".into(),
        };
        let json = serde_json::to_value(&residual).map_err(|e| LetheError::Unexpected(e.into()))?;
        crate::store::jobs::append_residual(&ctx.pool, job, &json).await?;
    }
    Ok(())
}

/// A point that must not be kept may already be in the backend: `Track` of
/// a point the pipeline wrote after (or during) the person's erasure, or a
/// rejected one. Such points are deleted, counted before and after, and each
/// deletion is appended to the deletion log as a follow-up of the erasure
/// that suppressed them, so that the erasure's "0 remain" stays true. Only
/// points the pipeline wrote itself come here (`Track` without vectors):
/// the lineage of a chunk written at such an id before (which the point
/// replaced) is forgotten with the log entry.
pub(super) async fn delete_unwanted_points(ctx: &Context, spec: &CollectionSpec, unwanted: &[(Uuid, Uuid)]) -> Result<u64> {
    let mut by_blocker: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (point, by) in unwanted {
        by_blocker.entry(*by).or_default().push(*point);
    }
    if by_blocker.is_empty() {
        return Ok(0);
    }
    let store = ctx.stores.get(spec)?;
    let mut total = 0;
    for (blocker, ids) in by_blocker {
        let subject = lineage::subject_by_id(&ctx.pool, blocker).await?;
        if subject.legal_hold {
            // The suppressing person is under legal hold: nothing of theirs is destroyed.
            continue;
        }
        let selector = Selector::by_ids(ids);
        let before = store.count(spec, &selector).await?;
        if before == 0 {
            continue;
        }
        store.delete(spec, &selector).await?;
        let after = store.count(spec, &selector).await?;
        if after != 0 {
            return Err(LetheError::Unexpected(anyhow::anyhow!(
                "{after} of {before} suppressed points remain in collection `{}` after deletion",
                spec.name
            )));
        }
        let job = lineage::latest_erasure(&ctx.pool, blocker).await?;
        let body = FollowUpBody {
            kind: "follow_up",
            follows_job: job.map(|j| j.to_string()),
            tenant_id: spec.tenant_id.to_string(),
            subject_hash: hex::encode(&subject.subject_hash),
            collection: spec.name.as_str(),
            backend: spec.backend.as_str(),
            cause: "points of a suppressed or screened chunk were tracked after the erasure began; Lethe deleted them",
            before,
            deleted: before - after,
            after,
            logged_at: chrono::Utc::now().to_rfc3339(),
        };
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        // Durable on the workers' asynchronous-commit pool too (an attach
        // adoption writes through it): the delete above is done for good.
        crate::store::jobs::require_durable_commit(&mut tx).await?;
        let scope = (spec.tenant_id, spec.collection_id);
        crate::restore::record_deleted(ctx, &mut *tx, scope, &selector.ids, &subject.subject_hash, (job, "follow_up")).await?;
        lineage::delete_chunks(&mut tx, spec.tenant_id, spec.collection_id, &selector.ids).await?;
        crate::audit::append(&mut tx, &ctx.signer, spec.tenant_id, "follow_up", job, Some(&subject.subject_hash), &body)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(collection = %spec.name, deleted = before, follows = ?job, "suppressed points deleted");
        total += before;
    }
    Ok(total)
}

/// A follow-up deletion as the deletion log records it.
#[derive(serde::Serialize)]
pub(super) struct FollowUpBody<'a> {
    kind: &'static str,
    /// The erasure of the suppressing subject (none for a subject that was
    /// never erased itself).
    follows_job: Option<String>,
    tenant_id: String,
    subject_hash: String,
    collection: &'a str,
    backend: &'a str,
    cause: &'static str,
    before: u64,
    deleted: u64,
    after: u64,
    logged_at: String,
}
