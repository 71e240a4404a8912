//! The write path: `Ingest` (Lethe embeds), `Track` (the pipeline wrote the
//! vectors), subjects and legal holds.
//!
//! Ordering guarantees (DESIGN.md "Write path"):
//! - lineage is committed before the vectors are written, so a crash leaves
//!   at worst a lineage row without a vector, never an untracked vector;
//! - a shared advisory lock per tagged subject is held from the suppression
//!   check until the vectors are written; the erase job's freeze takes it
//!   exclusively, so no write can slip past a starting erasure.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::context::{Context, collection_lock_key, keyed_hash, subject_lock_key};
use crate::domain::{CollectionSpec, ExternalId, Identifier, Role, Screening, SubjectState};
use crate::{identity, screening};
use crate::error::{LetheError, Result};
use crate::store::{StoreError, lineage};
use crate::vector_store::{PointPayload, Selector, VectorPoint, VectorStores};

/// A subject with identifiers, as a request names it.
#[derive(Debug, Clone)]
pub struct SubjectInput {
    pub id: ExternalId,
    pub identifiers: Vec<Identifier>,
}

/// One chunk to write (Ingest) or track (Track).
#[derive(Debug, Clone)]
pub struct ChunkInput {
    pub source_id: ExternalId,
    pub source_uri: String,
    pub source_kind: String,
    pub text: Option<String>,
    pub tags: Vec<(ExternalId, Role)>,
    pub point_id: Option<Uuid>,
    pub ordinal: u32,
    /// Ingest: None (Lethe embeds). Track: the vector to write, or None when
    /// the pipeline wrote it.
    pub vector: Option<Vec<f32>>,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub accepted: u32,
    pub suppressed: u32,
    /// Points of suppressed chunks that were in the backend (a pipeline
    /// wrote them before calling `Track`) and that Lethe deleted.
    pub suppressed_deleted: u64,
    /// Chunks whose text names an erased person (see `screening`).
    pub screened: u32,
    pub point_ids: Vec<Uuid>,
}

/// How the write gets its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Embed every chunk's text.
    Embed,
    /// Vectors come with the chunks or already live in the backend.
    Track { verify_points: bool },
}

/// The point id of a chunk: given, or derived from source id and ordinal so
/// that re-ingesting the same chunk overwrites it.
pub fn point_id(spec: &CollectionSpec, chunk: &ChunkInput) -> Uuid {
    chunk.point_id.unwrap_or_else(|| {
        Uuid::new_v5(&spec.collection_id, format!("{}#{}", chunk.source_id, chunk.ordinal).as_bytes())
    })
}

/// Writes chunks with lineage, suppressing those tagged with a subject that
/// is being or has been erased.
///
/// # Errors
/// `NotFound` (collection), `InvalidArgument` (dimension, duplicate ids),
/// `FailedPrecondition` (tracked points missing), backend and database failures.
pub async fn write(
    ctx: &Context,
    spec: &CollectionSpec,
    chunks: Vec<ChunkInput>,
    subjects: &[SubjectInput],
    mode: WriteMode,
) -> Result<WriteOutcome> {
    check_ids_unique(spec, &chunks)?;
    if mode == WriteMode::Embed && spec.dimension != ctx.embedder.dimension() {
        return Err(LetheError::invalid(
            "collection",
            format!("has dimension {}, the embedding model gives {}", spec.dimension, ctx.embedder.dimension()),
        ));
    }
    let tenant_id = spec.tenant_id;
    // Every tagged subject, by caller id → keyed hash.
    let secret = ctx.tenant_secret(tenant_id).await?;
    let names = chunks.iter().flat_map(|c| &c.tags).map(|(s, _)| s).chain(subjects.iter().map(|s| &s.id));
    let tagged: BTreeMap<String, Vec<u8>> =
        names.map(|id| (id.as_str().to_owned(), keyed_hash(&secret, id.as_str()))).collect();
    let mut lock_keys: Vec<i64> = tagged.values().map(|h| subject_lock_key(h)).collect();
    lock_keys.push(collection_lock_key(spec.collection_id));
    let mut guard = ctx.pool.begin().await.map_err(StoreError::from)?;
    lineage::lock_subject_shared(&mut guard, &lock_keys).await?;

    // Subjects the request names with identifiers are stored first (or
    // become suppressed aliases when an identifier names an erased person),
    // so that the tag check below sees them either way.
    for s in subjects.iter().filter(|s| !s.identifiers.is_empty()) {
        put_subject(ctx, tenant_id, s, PutMode::Write).await?;
    }
    let blocked = blocked_subjects(ctx, tenant_id, &tagged).await?;
    let (accepted, suppressed): (Vec<ChunkInput>, Vec<ChunkInput>) =
        chunks.into_iter().partition(|c| !c.tags.iter().any(|(s, _)| blocked.contains_key(s.as_str())));
    // Points not to keep, with the subject whose erasure they follow up.
    let mut unwanted: Vec<(Uuid, Uuid)> = suppressed
        .iter()
        .filter_map(|c| c.tags.iter().find_map(|(s, _)| blocked.get(s.as_str())).map(|by| (point_id(spec, c), *by)))
        .collect();
    let Screened { accepted, reports, count: screened } = screen(ctx, spec, accepted, mode, &mut unwanted).await?;
    let suppressed_deleted = delete_unwanted_points(ctx, spec, &unwanted).await?;
    let mut points = vectors_for(ctx, spec, &accepted, mode).await?;

    let subject_ids = record_lineage(ctx, spec, &accepted, &tagged).await?;
    let ids: Vec<Uuid> = accepted.iter().map(|c| point_id(spec, c)).collect();
    if let Some(vectors) = points.take() {
        let store = ctx.stores.get(spec.backend)?;
        let to_write: Vec<VectorPoint> = accepted
            .iter()
            .zip(vectors)
            .zip(&ids)
            .map(|((c, vector), id)| VectorPoint {
                id: *id,
                vector,
                payload: PointPayload {
                    tenant_id,
                    source_id: c.source_id.as_str().to_owned(),
                    subjects: c.tags.iter().map(|(s, _)| s.as_str().to_owned()).collect(),
                    text: if spec.store_text { c.text.clone() } else { None },
                },
            })
            .collect();
        store.upsert(spec, &to_write).await?;
    }
    report_screened(ctx, spec, &reports).await?;
    guard.commit().await.map_err(StoreError::from)?;
    tracing::debug!(accepted = ids.len(), suppressed = suppressed.len(), subjects = subject_ids, "write done");
    Ok(WriteOutcome {
        accepted: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        suppressed: u32::try_from(suppressed.len()).unwrap_or(u32::MAX),
        suppressed_deleted,
        screened,
        point_ids: ids,
    })
}

fn check_ids_unique(spec: &CollectionSpec, chunks: &[ChunkInput]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, c) in chunks.iter().enumerate() {
        if !seen.insert(point_id(spec, c)) {
            return Err(LetheError::invalid(format!("chunks[{i}]"), "repeats the point id of an earlier chunk"));
        }
    }
    Ok(())
}

/// Tagged subjects whose chunks must not be written, by caller id, with the
/// subject that suppresses them: themselves when they are being or have
/// been erased (or are suppressed aliases), else an erased or pending
/// subject that one of their identifiers names (the same person under
/// another id, kind or spelling; see `identity`).
async fn blocked_subjects(
    ctx: &Context,
    tenant_id: Uuid,
    tagged: &BTreeMap<String, Vec<u8>>,
) -> Result<HashMap<String, Uuid>> {
    // One query for every tagged subject: a batch of 1,000 chunks may tag as many.
    let hashes: Vec<&[u8]> = tagged.values().map(Vec::as_slice).collect();
    let rows = lineage::suppressed_subjects(&ctx.pool, tenant_id, &hashes).await?;
    let by_hash: HashMap<&[u8], Uuid> = rows.iter().map(|(h, by)| (h.as_slice(), *by)).collect();
    Ok(tagged.iter().filter_map(|(id, h)| by_hash.get(h.as_slice()).map(|by| (id.clone(), *by))).collect())
}

/// What screening left to write.
struct Screened {
    accepted: Vec<ChunkInput>,
    /// Chunks written that name an erased person: (point id, source id, subject).
    reports: Vec<(Uuid, String, Uuid)>,
    count: u32,
}

/// Applies the collection's screening policy to chunks about to be written
/// (see `screening`): report keeps them and remembers them, redact rewrites
/// their text before it is embedded, reject (and redact on Track, whose
/// vectors Lethe did not compute) moves them to `unwanted`.
async fn screen(
    ctx: &Context,
    spec: &CollectionSpec,
    mut chunks: Vec<ChunkInput>,
    mode: WriteMode,
    unwanted: &mut Vec<(Uuid, Uuid)>,
) -> Result<Screened> {
    if spec.screening == Screening::Accept || chunks.iter().all(|c| c.text.is_none()) {
        return Ok(Screened { accepted: chunks, reports: Vec::new(), count: 0 });
    }
    let texts: Vec<Option<&str>> = chunks.iter().map(|c| c.text.as_deref()).collect();
    let findings = screening::screen(ctx, spec.tenant_id, &texts).await?;
    let count = u32::try_from(findings.len()).unwrap_or(u32::MAX);
    let mut reports = Vec::new();
    let mut rejected = HashSet::new();
    for f in findings {
        let c = &mut chunks[f.chunk];
        match (spec.screening, mode) {
            (Screening::Accept, _) => {}
            (Screening::Report, _) => reports.push((point_id(spec, c), c.source_id.as_str().to_owned(), f.subject_id)),
            (Screening::Redact, WriteMode::Embed) => {
                c.text = c.text.as_deref().map(|t| screening::redact(t, &f.spans));
            }
            (Screening::Reject, _) | (Screening::Redact, WriteMode::Track { .. }) => {
                unwanted.push((point_id(spec, c), f.subject_id));
                rejected.insert(f.chunk);
            }
        }
    }
    let accepted = chunks.into_iter().enumerate().filter(|(i, _)| !rejected.contains(i)).map(|(_, c)| c).collect();
    Ok(Screened { accepted, reports, count })
}

/// Lists chunks that were written although they name an erased person as
/// residuals of that person's erasure (policy `report`). Only ids: the
/// residual carries no text.
async fn report_screened(ctx: &Context, spec: &CollectionSpec, reports: &[(Uuid, String, Uuid)]) -> Result<()> {
    for (point_id, source_id, subject_id) in reports {
        let Some(job) = lineage::latest_erasure(&ctx.pool, *subject_id).await? else { continue };
        let residual = crate::residual::Candidate {
            collection: spec.name.to_string(),
            collection_id: spec.collection_id,
            point_id: *point_id,
            source_id: source_id.clone(),
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
/// that suppressed them, so that the erasure's "0 remain" stays true.
async fn delete_unwanted_points(ctx: &Context, spec: &CollectionSpec, unwanted: &[(Uuid, Uuid)]) -> Result<u64> {
    let mut by_blocker: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (point, by) in unwanted {
        by_blocker.entry(*by).or_default().push(*point);
    }
    if by_blocker.is_empty() {
        return Ok(0);
    }
    let store = ctx.stores.get(spec.backend)?;
    let mut total = 0;
    for (blocker, ids) in by_blocker {
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
        let subject = lineage::subject_by_id(&ctx.pool, blocker).await?;
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
struct FollowUpBody<'a> {
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

/// The keyed hash of an identifier as earlier versions stored it (the
/// `subject_identifiers` row's key).
///
/// # Errors
/// Database failures.
pub async fn identifier_hash(ctx: &Context, tenant_id: Uuid, identifier: &Identifier) -> Result<Vec<u8>> {
    ctx.keyed_hash(tenant_id, &identity::legacy_key(identifier)).await
}

/// The keyed hashes of every match key of the identifiers.
///
/// # Errors
/// Database failures.
pub async fn key_hashes(ctx: &Context, tenant_id: Uuid, identifiers: &[Identifier]) -> Result<Vec<Vec<u8>>> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let mut keys: Vec<Vec<u8>> =
        identifiers.iter().flat_map(identity::match_keys).map(|k| keyed_hash(&secret, &k)).collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

async fn vectors_for(
    ctx: &Context,
    spec: &CollectionSpec,
    chunks: &[ChunkInput],
    mode: WriteMode,
) -> Result<Option<Vec<Vec<f32>>>> {
    match mode {
        WriteMode::Embed => {
            let texts = chunks.iter().map(|c| c.text.clone().unwrap_or_default()).collect();
            Ok(Some(ctx.embedder.embed(texts).await?))
        }
        WriteMode::Track { verify_points } => {
            let given = chunks.iter().filter(|c| c.vector.is_some()).count();
            if given != 0 && given != chunks.len() {
                return Err(LetheError::invalid("points", "give a vector for every point or for none"));
            }
            if given == 0 {
                if verify_points {
                    verify_tracked(ctx, spec, chunks).await?;
                }
                return Ok(None);
            }
            let vectors: Vec<Vec<f32>> = chunks.iter().map(|c| c.vector.clone().unwrap_or_default()).collect();
            // Checked before lineage is written, so a bad vector writes nothing.
            for v in &vectors {
                VectorStores::check_dimension(spec, v)?;
            }
            Ok(Some(vectors))
        }
    }
}

/// Tracked points must exist and carry their tags.
async fn verify_tracked(ctx: &Context, spec: &CollectionSpec, chunks: &[ChunkInput]) -> Result<()> {
    let ids: Vec<Uuid> = chunks.iter().map(|c| point_id(spec, c)).collect();
    let found = ctx.stores.get(spec.backend)?.retrieve(spec, &ids, false).await?;
    let by_id: std::collections::HashMap<Uuid, _> = found.into_iter().map(|p| (p.id, p.payload)).collect();
    for (c, id) in chunks.iter().zip(&ids) {
        let Some(payload) = by_id.get(id) else {
            return Err(LetheError::precondition("point_not_found", format!("point {id} is not in the collection")));
        };
        // A point is its collection's owner's whatever its payload says (that
        // is how it is erased), but a point that names another tenant is a
        // pipeline's mistake worth stopping at.
        if payload.tenant_id != spec.tenant_id {
            return Err(LetheError::precondition(
                "point_tenant_mismatch",
                format!("point {id} carries a `tenant_id` other than this collection's tenant"),
            ));
        }
        if let Some((missing, _)) = c.tags.iter().find(|(s, _)| !payload.subjects.iter().any(|p| p == s.as_str())) {
            return Err(LetheError::precondition(
                "point_tag_missing",
                format!("point {id} does not carry the tag `{missing}` in its `subjects` payload"),
            ));
        }
    }
    Ok(())
}

/// Upserts subjects and records sources, chunks and tags in one transaction.
async fn record_lineage(
    ctx: &Context,
    spec: &CollectionSpec,
    chunks: &[ChunkInput],
    tagged: &BTreeMap<String, Vec<u8>>,
) -> Result<usize> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let pairs: Vec<(String, Vec<u8>)> = tagged.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let rows = lineage::upsert_subjects(&mut tx, spec.tenant_id, &pairs).await?;
    let by_hash: std::collections::HashMap<Vec<u8>, Uuid> =
        rows.iter().map(|r| (r.subject_hash.clone(), r.subject_id)).collect();
    let subject_of = |id: &str| tagged.get(id).and_then(|h| by_hash.get(h)).copied();
    let new_chunks: Vec<lineage::NewChunk> = chunks
        .iter()
        .map(|c| lineage::NewChunk {
            chunk_id: point_id(spec, c),
            source_external_id: c.source_id.as_str().to_owned(),
            source_uri: c.source_uri.clone(),
            source_kind: c.source_kind.clone(),
            ordinal: i32::try_from(c.ordinal).unwrap_or(i32::MAX),
            text: if spec.store_text { c.text.clone() } else { None },
            tags: c.tags.iter().filter_map(|(s, r)| subject_of(s.as_str()).map(|id| (id, r.as_str()))).collect(),
        })
        .collect();
    if !new_chunks.is_empty() && !lineage::record_chunks(&mut tx, spec.tenant_id, spec.collection_id, &new_chunks).await? {
        return Err(LetheError::invalid("point_id", "a point id is already used by another collection or source"));
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(rows.len())
}

/// Who is storing a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// The write path (`PutSubject`, `Ingest`, `Track`): identifiers of a
    /// subject that is not active cannot change, and identifiers that name
    /// an erased person make the subject a suppressed alias.
    Write,
    /// `Erase`: always stores (an erased subject's values as hashes only).
    Erase,
}

/// What storing a subject did.
#[derive(Debug, Clone)]
pub enum PutOutcome {
    Stored(lineage::SubjectRow),
    /// Nothing of the request was stored but the subject's keyed hashes:
    /// writes tagged with it are suppressed from now on.
    Suppressed { state: SubjectState },
}

/// Creates or updates a subject and adds identifiers.
///
/// # Errors
/// Database failures.
pub async fn put_subject(ctx: &Context, tenant_id: Uuid, subject: &SubjectInput, mode: PutMode) -> Result<PutOutcome> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let outcome = put_subject_in(ctx, &mut tx, tenant_id, subject, mode).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(outcome)
}

/// `put_subject` in the caller's transaction, which the caller commits.
async fn put_subject_in(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subject: &SubjectInput,
    mode: PutMode,
) -> Result<PutOutcome> {
    let hash = ctx.keyed_hash(tenant_id, subject.id.as_str()).await?;
    let mut identifiers = Vec::with_capacity(subject.identifiers.len());
    for i in &subject.identifiers {
        identifiers.push((i.kind.as_str().to_owned(), i.value.trim().to_owned(), identifier_hash(ctx, tenant_id, i).await?));
    }
    let keys = key_hashes(ctx, tenant_id, &subject.identifiers).await?;
    let mut rows = lineage::upsert_subjects(tx, tenant_id, &[(subject.id.as_str().to_owned(), hash)]).await?;
    let row = rows.pop().ok_or_else(|| LetheError::Unexpected(anyhow::anyhow!("upsert returned no subject")))?;
    if mode == PutMode::Write && !identifiers.is_empty() {
        if row.state() != SubjectState::Active {
            // The subject's identifiers are frozen: adding one to a subject
            // being erased would widen (or, to an erased one, revive) it. The
            // upsert found the row, so it wrote nothing.
            return Ok(PutOutcome::Suppressed { state: row.state() });
        }
        if lineage::suppressor_by_keys(&mut **tx, tenant_id, &keys, Some(row.subject_id)).await?.is_some() {
            lineage::suppress_subject(&mut **tx, row.subject_id).await?;
            lineage::add_keys(&mut **tx, tenant_id, row.subject_id, &keys).await?;
            return Ok(PutOutcome::Suppressed { state: SubjectState::Suppressed });
        }
    }
    lineage::add_identifiers(&mut **tx, tenant_id, row.subject_id, &identifiers).await?;
    lineage::add_keys(&mut **tx, tenant_id, row.subject_id, &keys).await?;
    Ok(PutOutcome::Stored(row))
}

/// `put_subject` where a suppressed subject is an error: `PutSubject`.
///
/// # Errors
/// `FailedPrecondition(subject_suppressed)`, database failures.
pub async fn put_subject_or_refuse(ctx: &Context, tenant_id: Uuid, subject: &SubjectInput) -> Result<lineage::SubjectRow> {
    match put_subject(ctx, tenant_id, subject, PutMode::Write).await? {
        PutOutcome::Stored(row) => Ok(row),
        PutOutcome::Suppressed { state: SubjectState::Suppressed } => Err(LetheError::precondition(
            "subject_suppressed",
            "an identifier of this subject names a person who is being or has been erased: no identifier was \
             stored, and writes tagged with this subject id are suppressed from now on",
        )),
        PutOutcome::Suppressed { state } => Err(LetheError::precondition(
            "subject_suppressed",
            format!("the subject is {}: its identifiers cannot change; nothing was stored", state.as_str()),
        )),
    }
}

/// Stores a subject for `Erase` in the caller's transaction: an Erase that
/// is refused after this (a running erasure, a reused idempotency key)
/// rolls it back and leaves no subject behind.
///
/// # Errors
/// Database failures.
pub async fn put_subject_for_erasure(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subject: &SubjectInput,
) -> Result<lineage::SubjectRow> {
    match put_subject_in(ctx, tx, tenant_id, subject, PutMode::Erase).await? {
        PutOutcome::Stored(row) => Ok(row),
        PutOutcome::Suppressed { .. } => Err(LetheError::Unexpected(anyhow::anyhow!("an erasure's subject was suppressed"))),
    }
}

/// Places or lifts a legal hold. Waits for erasure steps in flight that
/// may destroy data (see `erasure::holds`).
///
/// # Errors
/// Database failures.
pub async fn set_legal_hold(
    ctx: &Context,
    tenant_id: Uuid,
    subject: &ExternalId,
    hold: bool,
    reason: Option<&str>,
) -> Result<lineage::SubjectRow> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // Waits for the destructive steps of erasures in flight: each has read
    // the holds and acts on what it read; the hold applies from the next one.
    crate::store::holds::lock_exclusive(&mut tx, tenant_id).await?;
    let row = put_subject_for_erasure(ctx, &mut tx, tenant_id, &SubjectInput { id: subject.clone(), identifiers: Vec::new() })
        .await?;
    lineage::set_legal_hold(&mut *tx, row.subject_id, hold, reason).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(lineage::subject_by_id(&ctx.pool, row.subject_id).await?)
}
