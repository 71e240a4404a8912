//! The write path: `Ingest` (Lethe embeds), `Track` (the pipeline wrote the
//! vectors), `DeletePoints` (the pipeline removes points), subjects and legal holds.
//!
//! Ordering guarantees (DESIGN.md "Write path"):
//! - lineage is committed before the vectors are written (Qdrant), or with
//!   them (pgvector, whose tables are in Lethe's Postgres: one transaction),
//!   so a crash leaves at worst a lineage row without a vector, never an
//!   untracked vector;
//! - a shared advisory lock per tagged subject is held from the suppression
//!   check until the vectors are written; the erase job's freeze takes it
//!   exclusively, so no write can slip past a starting erasure.

mod delete;
mod sources;
mod subjects;
pub(crate) use subjects::rekey_before_tombstone;
mod suppression;

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

pub use self::delete::{DeleteInput, DeleteOutcome, delete_points};
pub use self::sources::{
    ALIAS_PREFIX, Forgotten, Mentioned, SourceRenames, erased_alias, is_alias, list_candidate_sources, relabel_points, relabel_points_after_rename,
    rename_candidate_sources,
    unname_listed_sources, unname_sources, unname_sources_naming_the_erased,
};
pub use self::subjects::{
    Named, PutMode, PutOutcome, hold_reason_to_keep, identifier_hash, key_hashes, put_subject_for_erasure, put_subjects,
    put_subject_or_refuse, refuse_texts_naming, set_legal_hold,
};
use self::suppression::{Screened, Tagged, blocked_subjects, delete_unwanted_points, report_screened, screen};
use crate::context::{Context, collection_lock_key, keyed_hash, subject_lock_key};
use crate::domain::{CollectionSpec, ExternalId, Identifier, Role};
use crate::error::{LetheError, Result};
use crate::store::{StoreError, lineage};
use crate::vector_store::{PointPayload, VectorPoint};

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
    /// When the point was written, if earlier than now (an attached store's
    /// mapped timestamp): the source counts from its oldest point's.
    pub written_at: Option<chrono::DateTime<chrono::Utc>>,
    /// An attached store's text id behind `point_id` (a hash of it): its
    /// lookup row is written again in the lineage transaction, so that a
    /// concurrent call that forgets the rows it added cannot leave this
    /// chunk's lineage without one.
    pub native_id: Option<String>,
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
    if spec.is_attached() && (mode == WriteMode::Embed || chunks.iter().any(|c| c.vector.is_some())) {
        // Refused before anything is embedded or recorded.
        return Err(LetheError::precondition(
            "attached_collection",
            format!(
                "`{}` is attached: its framework writes its vectors; Track it with point ids only",
                spec.name
            ),
        ));
    }
    // Everything a request can be refused for is checked before the first
    // write (a subject stored, a suppressed point deleted and logged): a
    // refused request records nothing. Point ids held elsewhere are checked
    // here only when such a write comes before lineage (`check_ids_free`);
    // otherwise the lineage write refuses them, rolling back alone.
    check_ids_unique(spec, &chunks, mode)?;
    check_vectors(spec, &chunks, mode)?;
    if let WriteMode::Track { verify_points: true } = mode
        && chunks.iter().all(|c| c.vector.is_none())
    {
        verify_tracked(ctx, spec, &chunks).await?;
    }
    // A document whose id named an erased person is written into its alias.
    let mut chunks = chunks;
    sources::write_into_aliases(ctx, spec, &mut chunks).await?;
    // The request's point ids with their sources, in its order (its fields).
    let requested: Vec<(Uuid, String)> = chunks.iter().map(|c| (point_id(spec, c), c.source_id.as_str().to_owned())).collect();
    let mut ids_checked = false;
    if subjects.iter().any(|s| !s.identifiers.is_empty()) {
        check_ids_free(ctx, spec, &requested, mode).await?;
        ids_checked = true;
    }
    if mode == WriteMode::Embed && spec.dimension != ctx.embedder.dimension() {
        return Err(LetheError::invalid(
            "collection",
            format!("has dimension {}, the embedding model gives {}", spec.dimension, ctx.embedder.dimension()),
        ));
    }
    // Embedded before any lock or connection is taken (a thousand chunks
    // take ~20 s on 2 cores): an erasure's freeze waits for writes holding
    // its subject's lock, and a write's turn at the pool is for its
    // statements. A chunk suppressed below was embedded for nothing.
    let mut embedded: HashMap<Uuid, Vec<f32>> = match mode {
        WriteMode::Embed => {
            let texts = chunks.iter().map(|c| c.text.clone().unwrap_or_default()).collect();
            chunks.iter().map(|c| point_id(spec, c)).zip(ctx.embedder.embed(texts).await?).collect()
        }
        WriteMode::Track { .. } => HashMap::new(),
    };
    // A turn at the pool (`Context::slot`): the guard's connection is held
    // while the statements below take another.
    let _turn = ctx.slot().await;
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
    // All or none: a refused one fails the request with nothing stored.
    let with_identifiers: Vec<&SubjectInput> = subjects.iter().filter(|s| !s.identifiers.is_empty()).collect();
    put_subjects(ctx, tenant_id, &with_identifiers, PutMode::Write).await?;
    let Tagged { blocked, known } = blocked_subjects(ctx, tenant_id, &tagged).await?;
    // Each chunk's tags by keyed hash, for the legal-hold check below.
    let tag_hashes: HashMap<Uuid, Vec<&[u8]>> = chunks
        .iter()
        .map(|c| (point_id(spec, c), c.tags.iter().filter_map(|(s, _)| tagged.get(s.as_str()).map(Vec::as_slice)).collect()))
        .collect();
    // Only a point the pipeline wrote itself (`Track` without a vector) can
    // hold what is refused below. Elsewhere Lethe writes the vectors and
    // does not write these: the point at such an id, if any, is an earlier
    // write (another person's chunk, perhaps under hold), not this one.
    let pipeline_written: HashSet<Uuid> = match mode {
        WriteMode::Track { .. } => chunks.iter().filter(|c| c.vector.is_none()).map(|c| point_id(spec, c)).collect(),
        WriteMode::Embed => HashSet::new(),
    };
    let (accepted, suppressed): (Vec<ChunkInput>, Vec<ChunkInput>) =
        chunks.into_iter().partition(|c| !c.tags.iter().any(|(s, _)| blocked.contains_key(s.as_str())));
    // Points not to keep, with the subject whose erasure they follow up.
    let mut unwanted: Vec<(Uuid, Uuid)> = suppressed
        .iter()
        .filter_map(|c| c.tags.iter().find_map(|(s, _)| blocked.get(s.as_str())).map(|by| (point_id(spec, c), *by)))
        .collect();
    let Screened { accepted, reports, count: screened, redacted } = screen(ctx, spec, accepted, mode, &mut unwanted).await?;
    unwanted.retain(|(p, _)| pipeline_written.contains(p));
    if !redacted.is_empty() {
        // Embedded before screening: the vectors of the texts as given, which
        // name the person. Embedded again from the redacted texts (under the
        // locks, but only the few chunks redaction rewrote).
        let again: Vec<&ChunkInput> = accepted.iter().filter(|c| redacted.binary_search(&point_id(spec, c)).is_ok()).collect();
        let texts = again.iter().map(|c| c.text.clone().unwrap_or_default()).collect();
        let vectors = ctx.embedder.embed(texts).await?;
        embedded.extend(again.iter().map(|c| point_id(spec, c)).zip(vectors));
    }
    if !unwanted.is_empty() {
        // Legal holds are read under the tenant's hold lock (as every step
        // that destroys data reads them), and only when something would be
        // destroyed: a point tagged with a subject on hold is kept.
        crate::store::holds::lock_shared(&mut guard, tenant_id).await?;
        let wanted: Vec<&[u8]> = unwanted.iter().flat_map(|(p, _)| tag_hashes.get(p).into_iter().flatten().copied()).collect();
        let on_hold: HashSet<Vec<u8>> =
            crate::store::holds::held_among(&mut *guard, tenant_id, &wanted).await?.into_iter().collect();
        unwanted.retain(|(p, _)| !tag_hashes.get(p).is_some_and(|hs| hs.iter().any(|h| on_hold.contains(*h))));
        // And one whose lineage (the chunk written there before, which the
        // pipeline's point replaced) tags a subject on hold.
        let ids: Vec<Uuid> = unwanted.iter().map(|(p, _)| *p).collect();
        let held: HashSet<Uuid> =
            crate::store::holds::held_chunks(&mut *guard, tenant_id, Some(spec.collection_id), &ids, Uuid::nil()).await?.into_iter().collect();
        unwanted.retain(|(p, _)| !held.contains(p));
    }
    if !unwanted.is_empty() && !ids_checked {
        check_ids_free(ctx, spec, &requested, mode).await?;
    }
    let suppressed_deleted = delete_unwanted_points(ctx, spec, &unwanted).await?;
    let points = vectors_for(spec, &accepted, mode, &mut embedded)?;

    let ids: Vec<Uuid> = accepted.iter().map(|c| point_id(spec, c)).collect();
    let to_write: Vec<VectorPoint> = points
        .map(|vectors| {
            accepted
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
                .collect()
        })
        .unwrap_or_default();
    // Where the backend's tables are in Lethe's Postgres (pgvector), the
    // vectors are written in the lineage's transaction, after its rows: the
    // two become visible together, and two writes of the same points write
    // both in the lineage's row order (a vector write after the lineage
    // commit could overtake another write's and leave lineage and vectors
    // disagreeing: `track_lineage::writes_of_the_same_points_at_once_…`).
    // Elsewhere (Qdrant) they are written after the lineage commit.
    // A blocked tag is not made a subject (its id may be the person's
    // address: a pipeline tagging by address).
    let tagged: BTreeMap<String, Vec<u8>> = tagged.into_iter().filter(|(id, _)| !blocked.contains_key(id)).collect();
    let mut lineage = match record_lineage(ctx, spec, &accepted, &tagged, known.clone()).await {
        Ok(lineage) => lineage,
        // No point id of the request is held elsewhere now: a source its
        // chunks went into was deleted as empty before the write could lock
        // it (`lineage::lock_used_sources`), or a write that held an id
        // rolled back. A second attempt inserts the source again. Once:
        // after that the caller is told to retry (`refused`).
        Err(RecordError::IdTaken) if check_ids_free(ctx, spec, &requested, mode).await.is_ok() => {
            match record_lineage(ctx, spec, &accepted, &tagged, known).await {
                Ok(lineage) => lineage,
                Err(e) => return Err(refused(ctx, spec, &requested, mode, e).await),
            }
        }
        Err(e) => return Err(refused(ctx, spec, &requested, mode, e).await),
    };
    let store = if to_write.is_empty() { None } else { Some(ctx.stores.get(spec)?) };
    let written = match &store {
        Some(store) => store.upsert_in(&mut lineage.tx, spec, &to_write).await?,
        None => true,
    };
    lineage.tx.commit().await.map_err(StoreError::from)?;
    if let (Some(store), false) = (&store, written) {
        store.upsert(spec, &to_write).await?;
    }
    let subject_ids = lineage.subjects;
    report_screened(ctx, spec, &reports).await?;
    guard.commit().await.map_err(StoreError::from)?;
    crate::metrics::add_suppressed(suppressed.len() as u64);
    tracing::debug!(accepted = ids.len(), suppressed = suppressed.len(), subjects = subject_ids, "write done");
    Ok(WriteOutcome {
        accepted: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        suppressed: u32::try_from(suppressed.len()).unwrap_or(u32::MAX),
        suppressed_deleted,
        screened,
        point_ids: ids,
    })
}

/// What a write whose lineage was not recorded answers: for a point id
/// another collection or source holds, which one, named as the request's
/// field (one more read, only for a refused request).
async fn refused(ctx: &Context, spec: &CollectionSpec, requested: &[(Uuid, String)], mode: WriteMode, e: RecordError) -> LetheError {
    match e {
        RecordError::IdTaken => {
            if let Err(named) = check_ids_free(ctx, spec, requested, mode).await {
                return named;
            }
            // No id is taken now: a write that held one has rolled back, or
            // a source went under this write twice. Nothing is wrong with the
            // request; the same request again is safe.
            LetheError::Unavailable(anyhow::anyhow!(
                "a concurrent write or delete changed this write's points or sources while it was recorded"
            ))
        }
        RecordError::Other(e) => e,
    }
}

/// The request's field of its `i`th chunk: Ingest's `chunks`, Track's `points`.
fn field(mode: WriteMode, i: usize) -> String {
    match mode {
        WriteMode::Embed => format!("chunks[{i}]"),
        WriteMode::Track { .. } => format!("points[{i}]"),
    }
}

fn check_ids_unique(spec: &CollectionSpec, chunks: &[ChunkInput], mode: WriteMode) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, c) in chunks.iter().enumerate() {
        if !seen.insert(point_id(spec, c)) {
            return Err(LetheError::invalid(field(mode, i), "repeats the point id of an earlier chunk"));
        }
    }
    Ok(())
}

/// Track's vectors: one for every point or for none, each of the
/// collection's dimension.
fn check_vectors(spec: &CollectionSpec, chunks: &[ChunkInput], mode: WriteMode) -> Result<()> {
    if mode == WriteMode::Embed {
        return Ok(());
    }
    let given = chunks.iter().filter(|c| c.vector.is_some()).count();
    if given != 0 && given != chunks.len() {
        return Err(LetheError::invalid("points", "give a vector for every point or for none"));
    }
    for (i, v) in chunks.iter().enumerate().filter_map(|(i, c)| c.vector.as_ref().map(|v| (i, v))) {
        if v.len() != spec.dimension {
            return Err(LetheError::invalid(
                format!("{}.vector", field(mode, i)),
                format!("has {} dimensions, the collection {}", v.len(), spec.dimension),
            ));
        }
    }
    Ok(())
}

/// A point id is the tenant's for one chunk: of one source in one
/// collection. An id lineage holds for another is refused, naming the
/// request's field: before the first write that precedes lineage, or when
/// the lineage write has refused it (which nothing else then checks: one
/// read fewer per request).
async fn check_ids_free(ctx: &Context, spec: &CollectionSpec, requested: &[(Uuid, String)], mode: WriteMode) -> Result<()> {
    let wanted: Vec<(Uuid, &str)> = requested.iter().map(|(id, source)| (*id, source.as_str())).collect();
    let taken = lineage::ids_taken_elsewhere(&ctx.pool, spec.tenant_id, spec.collection_id, &wanted).await?;
    match wanted.iter().position(|(id, _)| taken.contains(id)) {
        Some(i) => Err(LetheError::invalid(format!("{}.point_id", field(mode, i)), "is already used by another collection or source")),
        None => Ok(()),
    }
}

/// The vectors to write for `chunks`: `embedded` before (Ingest), given
/// (Track), or none (Track of points the pipeline wrote).
fn vectors_for(
    spec: &CollectionSpec,
    chunks: &[ChunkInput],
    mode: WriteMode,
    embedded: &mut HashMap<Uuid, Vec<f32>>,
) -> Result<Option<Vec<Vec<f32>>>> {
    match mode {
        WriteMode::Embed => Ok(Some(chunks.iter().map(|c| embedded.remove(&point_id(spec, c)).unwrap_or_default()).collect())),
        // Checked before anything was written (`check_vectors`, `verify_tracked`).
        WriteMode::Track { .. } if chunks.iter().all(|c| c.vector.is_none()) => Ok(None),
        WriteMode::Track { .. } => Ok(Some(chunks.iter().map(|c| c.vector.clone().unwrap_or_default()).collect())),
    }
}

/// Tracked points must exist and carry their tags.
async fn verify_tracked(ctx: &Context, spec: &CollectionSpec, chunks: &[ChunkInput]) -> Result<()> {
    let ids: Vec<Uuid> = chunks.iter().map(|c| point_id(spec, c)).collect();
    let found = ctx.stores.get(spec)?.retrieve(spec, &ids, false).await?;
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
        // Named by its place in the request, not its value: a subject id may
        // be the person's address, and error texts travel through clients' logs.
        if let Some(k) = c.tags.iter().position(|(s, _)| !payload.subjects.iter().any(|p| p == s.as_str())) {
            return Err(LetheError::precondition(
                "point_tag_missing",
                format!("point {id} does not carry the chunk's tag #{k} (in request order) in its `subjects` payload"),
            ));
        }
    }
    Ok(())
}

/// Why lineage was not recorded.
enum RecordError {
    /// A point id is held by another collection or source (nothing written).
    IdTaken,
    Other(LetheError),
}

impl<E: Into<LetheError>> From<E> for RecordError {
    fn from(e: E) -> Self {
        Self::Other(e.into())
    }
}

/// Creates the tagged subjects not in `known` (read by the suppression
/// check, under the subjects' locks) and records sources, chunks and tags,
/// in one transaction, which the caller commits.
async fn record_lineage(
    ctx: &Context,
    spec: &CollectionSpec,
    chunks: &[ChunkInput],
    tagged: &BTreeMap<String, Vec<u8>>,
    mut by_hash: HashMap<Vec<u8>, Uuid>,
) -> std::result::Result<Recorded, RecordError> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let missing: Vec<(String, Vec<u8>)> =
        tagged.iter().filter(|(_, h)| !by_hash.contains_key(*h)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if !missing.is_empty() {
        let rows = lineage::upsert_subjects(&mut tx, spec.tenant_id, &missing).await?;
        // A new subject whose id is an address, a phone or a handle is
        // keyed by it, as by an identifier: that person's erasure finds it
        // as a twin and clears the id (`subjects::rekey_before_tombstone`).
        let secret = ctx.tenant_secret(spec.tenant_id).await?;
        let id_of: HashMap<&[u8], &str> = missing.iter().map(|(id, h)| (h.as_slice(), id.as_str())).collect();
        let keys: Vec<(Uuid, Uuid, Vec<u8>)> = rows
            .iter()
            .filter(|r| r.state() == crate::domain::SubjectState::Active)
            .filter_map(|r| id_of.get(r.subject_hash.as_slice()).map(|id| (r.subject_id, *id)))
            .flat_map(|(subject, id)| crate::screening::id_key_hashes(&secret, id).into_iter().map(move |k| (spec.tenant_id, subject, k)))
            .collect();
        lineage::add_keys_many(&mut *tx, &keys).await?;
        by_hash.extend(rows.into_iter().map(|r| (r.subject_hash, r.subject_id)));
    }
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
            written_at: c.written_at,
        })
        .collect();
    if !new_chunks.is_empty() && !lineage::record_chunks(&mut tx, spec.tenant_id, spec.collection_id, &new_chunks).await? {
        // Rolled back here, not when dropped (in the background): a second
        // attempt must not wait for this one's rows.
        tx.rollback().await.map_err(StoreError::from)?;
        return Err(RecordError::IdTaken);
    }
    let lookups: Vec<(Uuid, String)> =
        chunks.iter().filter_map(|c| c.native_id.clone().map(|n| (point_id(spec, c), n))).collect();
    // Again in the lineage transaction: added if a concurrent forget removed
    // them, and locked until lineage stands behind them.
    crate::store::attach::record_point_ids(&mut *tx, spec.collection_id, &lookups).await?;
    Ok(Recorded { tx, subjects: by_hash.len() })
}

/// Lineage written, not yet committed: the caller commits it before the
/// vectors are visible, or with them.
struct Recorded {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    /// Subjects the chunks are tagged with.
    subjects: usize,
}
