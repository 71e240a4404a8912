//! Lineage: collections, subjects and their identifiers, sources, chunks and
//! chunk ↔ subject tags. All SQL on those tables.

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;
use crate::domain::{Backend, CollectionName, CollectionSpec, Distance, Screening, SubjectState};

#[derive(sqlx::FromRow)]
pub(super) struct CollectionRow {
    collection_id: Uuid,
    tenant_id: Uuid,
    name: String,
    backend: String,
    backend_name: String,
    dimension: i32,
    distance: String,
    embedding_model: String,
    store_text: bool,
    retention_days: i32,
    screening: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl CollectionRow {
    pub(super) fn into_spec(self) -> Result<CollectionSpec> {
        let bad = |m: String| super::StoreError::Unexpected(sqlx::Error::Decode(m.into()));
        Ok(CollectionSpec {
            collection_id: self.collection_id,
            tenant_id: self.tenant_id,
            name: CollectionName::parse("name", &self.name).map_err(|e| bad(e.to_string()))?,
            backend: self.backend.parse::<Backend>().map_err(bad)?,
            backend_name: self.backend_name,
            dimension: usize::try_from(self.dimension).unwrap_or(0),
            distance: self.distance.parse::<Distance>().map_err(bad)?,
            embedding_model: self.embedding_model,
            store_text: self.store_text,
            retention_days: u32::try_from(self.retention_days).unwrap_or(0),
            screening: self.screening.parse::<Screening>().map_err(bad)?,
            created_at: self.created_at,
        })
    }
}

const COLLECTION_COLUMNS: &str = "collection_id, tenant_id, name, backend, backend_name, dimension, distance, \
     embedding_model, store_text, retention_days, screening, created_at";

/// Inserts a collection unless the tenant has one of that name; returns the stored one.
pub async fn insert_collection(ex: impl PgExecutor<'_> + Copy, spec: &CollectionSpec) -> Result<CollectionSpec> {
    sqlx::query(
        r#"
        INSERT INTO collections (collection_id, tenant_id, name, backend, backend_name, dimension,
                                 distance, embedding_model, store_text, retention_days, screening)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (tenant_id, name) DO NOTHING
        "#,
    )
    .bind(spec.collection_id)
    .bind(spec.tenant_id)
    .bind(spec.name.as_str())
    .bind(spec.backend.as_str())
    .bind(&spec.backend_name)
    .bind(i32::try_from(spec.dimension).unwrap_or(i32::MAX))
    .bind(spec.distance.as_str())
    .bind(&spec.embedding_model)
    .bind(spec.store_text)
    .bind(i32::try_from(spec.retention_days).unwrap_or(i32::MAX))
    .bind(spec.screening.as_str())
    .execute(ex)
    .await?;
    collection_by_name(ex, spec.tenant_id, spec.name.as_str())
        .await?
        .ok_or_else(|| super::StoreError::Unexpected(sqlx::Error::RowNotFound))
}

pub async fn collection_by_name(ex: impl PgExecutor<'_>, tenant_id: Uuid, name: &str) -> Result<Option<CollectionSpec>> {
    let row: Option<CollectionRow> =
        sqlx::query_as(&format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 AND name = $2"))
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(ex)
            .await?;
    row.map(CollectionRow::into_spec).transpose()
}

pub async fn list_collections(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<CollectionSpec>> {
    let rows: Vec<CollectionRow> =
        sqlx::query_as(&format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 ORDER BY name"))
            .bind(tenant_id)
            .fetch_all(ex)
            .await?;
    rows.into_iter().map(CollectionRow::into_spec).collect()
}

/// A subject as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubjectRow {
    pub subject_id: Uuid,
    pub external_id: Option<String>,
    pub subject_hash: Vec<u8>,
    pub state: String,
    pub legal_hold: bool,
    pub legal_hold_reason: Option<String>,
}

impl SubjectRow {
    pub fn state(&self) -> SubjectState {
        // The CHECK constraint admits only known states.
        self.state.parse().unwrap_or(SubjectState::Erased)
    }
}

const SUBJECT_COLUMNS: &str = "subject_id, external_id, subject_hash, state, legal_hold, legal_hold_reason";

/// Finds or creates subjects by keyed hash. An erased subject keeps its
/// tombstone: its external id is not written back. Existing subjects are read,
/// not rewritten (an upsert would write a new row version for every tagged
/// subject of every batch).
pub async fn upsert_subjects(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subjects: &[(String, Vec<u8>)],
) -> Result<Vec<SubjectRow>> {
    // Time-ordered ids: new subjects append to the key's btree instead of
    // landing on random pages of a large index (see `record_chunks`).
    let ids: Vec<Uuid> = subjects.iter().map(|_| Uuid::now_v7()).collect();
    let externals: Vec<&str> = subjects.iter().map(|(e, _)| e.as_str()).collect();
    let hashes: Vec<&[u8]> = subjects.iter().map(|(_, h)| h.as_slice()).collect();
    // The rows inserted here and the rows that existed when the statement
    // began; a subject inserted by a concurrent write after that is neither
    // (its insert conflicts), so it is read again by a second statement.
    let mut rows: Vec<SubjectRow> = sqlx::query_as(&format!(
        r#"
        WITH inserted AS (
            INSERT INTO subjects (subject_id, tenant_id, external_id, subject_hash)
            SELECT s.id, $1, s.ext, s.h FROM UNNEST($2::uuid[], $3::text[], $4::bytea[]) AS s(id, ext, h)
            WHERE NOT EXISTS (SELECT 1 FROM subjects x WHERE x.tenant_id = $1 AND x.subject_hash = s.h)
            ON CONFLICT (tenant_id, subject_hash) DO NOTHING
            RETURNING {SUBJECT_COLUMNS}
        )
        SELECT {SUBJECT_COLUMNS} FROM inserted
        UNION ALL
        SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = $1 AND subject_hash = ANY($4)
        "#
    ))
    .bind(tenant_id)
    .bind(&ids)
    .bind(&externals)
    .bind(&hashes)
    .fetch_all(&mut **tx)
    .await?;
    if rows.len() < subjects.len() {
        let found: std::collections::HashSet<&[u8]> = rows.iter().map(|r| r.subject_hash.as_slice()).collect();
        let missing: Vec<&[u8]> = hashes.iter().copied().filter(|h| !found.contains(h)).collect();
        if !missing.is_empty() {
            let more = subjects_by_hashes(&mut **tx, tenant_id, &missing).await?;
            rows.extend(more);
        }
    }
    Ok(rows)
}

pub async fn subject_by_hash(ex: impl PgExecutor<'_>, tenant_id: Uuid, hash: &[u8]) -> Result<Option<SubjectRow>> {
    Ok(sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = $1 AND subject_hash = $2"))
        .bind(tenant_id)
        .bind(hash)
        .fetch_optional(ex)
        .await?)
}

/// Subjects by keyed hash in one query; hashes without a subject are skipped.
pub async fn subjects_by_hashes(ex: impl PgExecutor<'_>, tenant_id: Uuid, hashes: &[&[u8]]) -> Result<Vec<SubjectRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = $1 AND subject_hash = ANY($2)"
    ))
    .bind(tenant_id)
    .bind(hashes)
    .fetch_all(ex)
    .await?)
}

pub async fn subject_by_id(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<SubjectRow> {
    Ok(sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE subject_id = $1"))
        .bind(subject_id)
        .fetch_one(ex)
        .await?)
}

/// Adds identifiers (kind, clear value, keyed hash of the normalised value).
/// Values of an erased subject are not stored, only their hashes.
pub async fn add_identifiers(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    subject_id: Uuid,
    identifiers: &[(String, String, Vec<u8>)],
) -> Result<()> {
    if identifiers.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = identifiers.iter().map(|(k, _, _)| k.as_str()).collect();
    let values: Vec<&str> = identifiers.iter().map(|(_, v, _)| v.as_str()).collect();
    let hashes: Vec<&[u8]> = identifiers.iter().map(|(_, _, h)| h.as_slice()).collect();
    sqlx::query(
        r#"
        INSERT INTO subject_identifiers (subject_id, tenant_id, kind, value, value_hash)
        SELECT $1, $2, k, CASE WHEN s.state = 'erased' THEN NULL ELSE v END, h
        FROM UNNEST($3::text[], $4::text[], $5::bytea[]) AS i(k, v, h)
        JOIN subjects s ON s.subject_id = $1
        ON CONFLICT (subject_id, kind, value_hash) DO NOTHING
        "#,
    )
    .bind(subject_id)
    .bind(tenant_id)
    .bind(&kinds)
    .bind(&values)
    .bind(&hashes)
    .execute(ex)
    .await?;
    Ok(())
}

/// The subject's identifiers in clear (kind, value); empty once erased.
pub async fn identifiers(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT kind, value FROM subject_identifiers WHERE subject_id = $1 AND value IS NOT NULL ORDER BY kind, value",
    )
    .bind(subject_id)
    .fetch_all(ex)
    .await?)
}

pub async fn count_identifiers(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM subject_identifiers WHERE subject_id = $1")
        .bind(subject_id)
        .fetch_one(ex)
        .await?)
}

/// Adds a subject's match keys (keyed hashes of `identity::match_keys`).
pub async fn add_keys(ex: impl PgExecutor<'_>, tenant_id: Uuid, subject_id: Uuid, keys: &[Vec<u8>]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        r#"
        INSERT INTO subject_keys (tenant_id, key_hash, subject_id)
        SELECT $1, k, $2 FROM UNNEST($3::bytea[]) AS k
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind(tenant_id)
    .bind(subject_id)
    .bind(keys)
    .execute(ex)
    .await?;
    Ok(())
}

/// A subject other than `except` that is being or has been erased and
/// shares one of the match keys.
pub async fn suppressor_by_keys(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    keys: &[Vec<u8>],
    except: Option<Uuid>,
) -> Result<Option<Uuid>> {
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        r#"
        SELECT s.subject_id
        FROM subject_keys k JOIN subjects s USING (subject_id)
        WHERE k.tenant_id = $1 AND k.key_hash = ANY($2) AND s.state IN ('pending_erasure', 'erased')
          AND s.subject_id IS DISTINCT FROM $3
        LIMIT 1
        "#,
    )
    .bind(tenant_id)
    .bind(keys)
    .bind(except)
    .fetch_optional(ex)
    .await?)
}

/// Of the subjects with these hashes, those whose writes are suppressed,
/// with the subject that suppresses them: themselves when they are being
/// or have been erased, else such a subject that shares one of their match
/// keys (the same person under another id; for a suppressed alias, the
/// person it names), else a suppressed alias itself. Only erasures
/// suppress: an alias's keys do not spread further. One query per batch.
pub async fn suppressed_subjects(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    hashes: &[&[u8]],
) -> Result<Vec<(Vec<u8>, Uuid)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT subject_hash, blocker FROM (
            SELECT s.subject_hash,
                   CASE WHEN s.state IN ('pending_erasure', 'erased') THEN s.subject_id ELSE COALESCE((
                       SELECT o.subject_id
                       FROM subject_keys mine
                       JOIN subject_keys other
                         ON other.tenant_id = mine.tenant_id AND other.key_hash = mine.key_hash
                        AND other.subject_id <> mine.subject_id
                       JOIN subjects o
                         ON o.subject_id = other.subject_id AND o.state IN ('pending_erasure', 'erased')
                       WHERE mine.subject_id = s.subject_id
                       LIMIT 1),
                       CASE WHEN s.state = 'suppressed' THEN s.subject_id END)
                   END AS blocker
            FROM subjects s
            WHERE s.tenant_id = $1 AND s.subject_hash = ANY($2)
        ) b
        WHERE blocker IS NOT NULL
        "#,
    )
    .bind(tenant_id)
    .bind(hashes)
    .fetch_all(ex)
    .await?)
}

/// Subjects being or having been erased that have any of the keys, by key
/// (ingest-time screening).
pub async fn erased_subjects_by_keys(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    keys: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Uuid)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT k.key_hash, k.subject_id
        FROM subject_keys k JOIN subjects s USING (subject_id)
        WHERE k.tenant_id = $1 AND k.key_hash = ANY($2) AND s.state IN ('pending_erasure', 'erased')
        "#,
    )
    .bind(tenant_id)
    .bind(keys)
    .fetch_all(ex)
    .await?)
}

/// Marks an active subject suppressed: it names a person who is being or
/// has been erased. Its caller id goes (only the keyed hash stays).
pub async fn suppress_subject(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE subjects SET state = 'suppressed', external_id = NULL WHERE subject_id = $1 AND state = 'active'")
        .bind(subject_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The latest erasure job of a subject that was not refused (a follow-up
/// deletion is attributed to it).
pub async fn latest_erasure(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT job_id FROM erasure_jobs WHERE subject_id = $1 AND status <> 'refused' ORDER BY received_at DESC LIMIT 1",
    )
    .bind(subject_id)
    .fetch_optional(ex)
    .await?)
}

pub async fn set_legal_hold(ex: impl PgExecutor<'_>, subject_id: Uuid, hold: bool, reason: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE subjects SET legal_hold = $2, legal_hold_reason = $3 WHERE subject_id = $1")
        .bind(subject_id)
        .bind(hold)
        .bind(reason)
        .execute(ex)
        .await?;
    Ok(())
}

/// Serialises ingestion and erasure of one subject: ingest holds the shared
/// lock from its state check until its vectors are written; the erase job's
/// freeze takes it exclusively, so it waits for in-flight writes.
pub async fn lock_subject_shared(tx: &mut Transaction<'_, Postgres>, keys: &[i64]) -> Result<()> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock_shared(k) FROM UNNEST($1::bigint[]) AS k")
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn lock_subject_exclusive(tx: &mut Transaction<'_, Postgres>, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    Ok(())
}

/// Freezes a subject for erasure in one statement (its own transaction): takes
/// the subject's lock exclusively, which waits for every in-flight write that
/// holds it shared, then marks the subject pending erasure. Writes that take
/// the lock after this commits see the new state and are suppressed. A
/// subject on legal hold is not frozen (the row lock orders this against
/// `SetLegalHold`: the hold either came first, or finds the subject frozen).
pub async fn freeze_subject(ex: impl PgExecutor<'_>, subject_id: Uuid, key: i64) -> Result<()> {
    sqlx::query(
        r#"
        WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock($2))
        UPDATE subjects SET state = 'pending_erasure'
        FROM locked
        WHERE subject_id = $1 AND state <> 'erased' AND NOT legal_hold
        "#,
    )
    .bind(subject_id)
    .bind(key)
    .execute(ex)
    .await?;
    Ok(())
}

/// A chunk to record.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub chunk_id: Uuid,
    pub source_external_id: String,
    pub source_uri: String,
    pub source_kind: String,
    pub ordinal: i32,
    pub text: Option<String>,
    /// (subject id, role)
    pub tags: Vec<(Uuid, &'static str)>,
}

/// Records sources, chunks and tags in one statement each. Returns false when
/// a chunk id is already used by another collection or source of the tenant
/// (nothing is written then if the caller rolls back). Chunk ids are keyed
/// per tenant (migration 30): another tenant's use of an id is neither seen
/// nor touched.
pub async fn record_chunks(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    collection_id: Uuid,
    chunks: &[NewChunk],
) -> Result<bool> {
    let ext: Vec<&str> = chunks.iter().map(|c| c.source_external_id.as_str()).collect();
    let uris: Vec<&str> = chunks.iter().map(|c| c.source_uri.as_str()).collect();
    let kinds: Vec<&str> = chunks.iter().map(|c| c.source_kind.as_str()).collect();
    // Time-ordered source ids (UUIDv7): the sources key and the chunks'
    // source index grow at their end, so at millions of rows an ingest
    // touches their last pages rather than random ones.
    let source_ids: Vec<Uuid> = chunks.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        r#"
        INSERT INTO sources (source_id, tenant_id, collection_id, external_id, uri, kind)
        SELECT DISTINCT ON (e) id, $1, $2, e, u, k
        FROM UNNEST($3::text[], $4::text[], $5::text[], $6::uuid[]) AS s(e, u, k, id)
        ON CONFLICT (collection_id, external_id) DO NOTHING
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(&ext)
    .bind(&uris)
    .bind(&kinds)
    .bind(&source_ids)
    .execute(&mut **tx)
    .await?;
    let ids: Vec<Uuid> = chunks.iter().map(|c| c.chunk_id).collect();
    let ordinals: Vec<i32> = chunks.iter().map(|c| c.ordinal).collect();
    let texts: Vec<Option<&str>> = chunks.iter().map(|c| c.text.as_deref()).collect();
    let shared: Vec<bool> = chunks.iter().map(|c| c.tags.len() > 1).collect();
    // A rewritten chunk keeps its earlier tags and may gain others: shared
    // from then on (conservative; see `forget_subject_chunks`).
    let written = sqlx::query(
        r#"
        INSERT INTO chunks (chunk_id, tenant_id, collection_id, source_id, ordinal, text, shared)
        SELECT c.id, $1, $2, s.source_id, c.ord, c.txt, c.shared
        FROM UNNEST($3::uuid[], $4::text[], $5::int[], $6::text[], $7::bool[]) AS c(id, ext, ord, txt, shared)
        JOIN sources s ON s.collection_id = $2 AND s.external_id = c.ext
        ON CONFLICT (tenant_id, chunk_id) DO UPDATE
        SET text = EXCLUDED.text, ordinal = EXCLUDED.ordinal, updated_at = now(), shared = true
        WHERE chunks.collection_id = EXCLUDED.collection_id AND chunks.source_id = EXCLUDED.source_id
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(&ids)
    .bind(&ext)
    .bind(&ordinals)
    .bind(&texts)
    .bind(&shared)
    .execute(&mut **tx)
    .await?;
    if usize::try_from(written.rows_affected()).unwrap_or(0) != chunks.len() {
        return Ok(false);
    }
    let (tag_chunks, tag_subjects, tag_roles): (Vec<Uuid>, Vec<Uuid>, Vec<&str>) = chunks
        .iter()
        .flat_map(|c| c.tags.iter().map(move |(s, r)| (c.chunk_id, *s, *r)))
        .fold((Vec::new(), Vec::new(), Vec::new()), |(mut a, mut b, mut r), (c, s, role)| {
            a.push(c);
            b.push(s);
            r.push(role);
            (a, b, r)
        });
    sqlx::query(
        r#"
        INSERT INTO chunk_subjects (chunk_id, subject_id, tenant_id, collection_id, role)
        SELECT c, s, $1, $5, r FROM UNNEST($2::uuid[], $3::uuid[], $4::text[]) AS t(c, s, r)
        ON CONFLICT (chunk_id, subject_id) DO NOTHING
        "#,
    )
    .bind(tenant_id)
    .bind(&tag_chunks)
    .bind(&tag_subjects)
    .bind(&tag_roles)
    .bind(collection_id)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// (collection id, chunk id) of every chunk tagged with the subject, in
/// that order (one index-only scan).
pub async fn subject_chunks(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT collection_id, chunk_id FROM chunk_subjects WHERE subject_id = $1 ORDER BY collection_id, chunk_id",
    )
    .bind(subject_id)
    .fetch_all(ex)
    .await?)
}

/// Deletes the given chunks of the tenant with all their tags, and sources
/// left empty. Three set-wise statements: the tables have no per-row
/// foreign-key cascades.
pub async fn delete_chunks(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid, chunk_ids: &[Uuid]) -> Result<u64> {
    sqlx::query("DELETE FROM chunk_subjects WHERE chunk_id = ANY($2) AND tenant_id = $1")
        .bind(tenant_id)
        .bind(chunk_ids)
        .execute(&mut **tx)
        .await?;
    let sources: Vec<Uuid> =
        sqlx::query_scalar("DELETE FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) RETURNING source_id")
            .bind(tenant_id)
            .bind(chunk_ids)
            .fetch_all(&mut **tx)
            .await?;
    delete_empty_sources(tx, &sources).await?;
    Ok(sources.len() as u64)
}

/// Deletes a subject's chunks (`chunk_ids`: every chunk tagged with it) with
/// their tags, and sources left empty. The subject's own tags go through the
/// subject index in one range scan; the tag table is probed chunk by chunk
/// only for chunks that may also carry other subjects' tags (a probe per
/// chunk cost ~10 ms per 1,000 chunks at a million, mostly index pages read).
///
/// Chunks in `keep` (withheld under another subject's legal hold) keep
/// their text and every tag, the subject's own too: a later erasure finds
/// them when the hold is lifted.
pub async fn forget_subject_chunks(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subject_id: Uuid,
    chunk_ids: &[Uuid],
    keep: &[Uuid],
) -> Result<u64> {
    let deleted: Vec<(Uuid, Uuid, bool)> = sqlx::query_as(
        "DELETE FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) AND NOT (chunk_id = ANY($3)) \
         RETURNING chunk_id, source_id, shared",
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .bind(keep)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM chunk_subjects WHERE subject_id = $1 AND NOT (chunk_id = ANY($2))")
        .bind(subject_id)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    let shared: Vec<Uuid> = deleted.iter().filter(|(_, _, s)| *s).map(|(c, _, _)| *c).collect();
    if !shared.is_empty() {
        sqlx::query("DELETE FROM chunk_subjects WHERE chunk_id = ANY($2) AND tenant_id = $1")
            .bind(tenant_id)
            .bind(&shared)
            .execute(&mut **tx)
            .await?;
    }
    let mut sources: Vec<Uuid> = deleted.iter().map(|(_, s, _)| *s).collect();
    sources.sort_unstable();
    sources.dedup();
    delete_empty_sources(tx, &sources).await?;
    Ok(deleted.len() as u64)
}

async fn delete_empty_sources(tx: &mut Transaction<'_, Postgres>, sources: &[Uuid]) -> Result<()> {
    sqlx::query(
        r#"
        DELETE FROM sources s
        WHERE s.source_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.source_id = s.source_id)
        "#,
    )
    .bind(sources)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Turns the subject into a tombstone: external id and identifier values
/// removed, hashes kept, state erased.
pub async fn tombstone_subject(tx: &mut Transaction<'_, Postgres>, subject_id: Uuid) -> Result<()> {
    sqlx::query(
        r#"
        WITH cleared AS (UPDATE subject_identifiers SET value = NULL WHERE subject_id = $1)
        UPDATE subjects SET external_id = NULL, state = 'erased', erased_at = COALESCE(erased_at, now())
        WHERE subject_id = $1
        "#,
    )
    .bind(subject_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tenant's chunk texts by id (for residual search and redaction).
pub async fn chunk_texts(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    chunk_ids: &[Uuid],
) -> Result<Vec<(Uuid, Option<String>)>> {
    Ok(sqlx::query_as("SELECT chunk_id, text FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2)")
        .bind(tenant_id)
        .bind(chunk_ids)
        .fetch_all(ex)
        .await?)
}

/// Replaces a chunk's stored text (redaction) and marks it changed: a
/// re-index whose copy has passed the chunk copies it again at its switch.
pub async fn update_chunk_text(ex: impl PgExecutor<'_>, tenant_id: Uuid, chunk_id: Uuid, text: &str) -> Result<()> {
    sqlx::query("UPDATE chunks SET text = $3, updated_at = clock_timestamp() WHERE tenant_id = $1 AND chunk_id = $2")
        .bind(tenant_id)
        .bind(chunk_id)
        .bind(text)
        .execute(ex)
        .await?;
    Ok(())
}

/// A chunk's lineage text with where it lives (lexical residual search).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChunkText {
    pub chunk_id: Uuid,
    pub collection_id: Uuid,
    /// The caller's source id.
    pub source_id: String,
    pub text: String,
}

/// One page of the lexical residual scan: the tenant's chunks whose text
/// matches any of the `ILIKE` patterns, not in `exclude`, in chunk id order
/// after `after`, at most `limit`.
pub async fn chunks_matching(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    patterns: &[String],
    exclude: &[Uuid],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ChunkText>> {
    Ok(sqlx::query_as(
        r#"
        SELECT c.chunk_id, c.collection_id, s.external_id AS source_id, c.text
        FROM chunks c
        JOIN sources s USING (source_id)
        WHERE c.tenant_id = $1
          AND c.text ILIKE ANY($2)
          AND NOT (c.chunk_id = ANY($3))
          AND ($4::uuid IS NULL OR c.chunk_id > $4)
        ORDER BY c.chunk_id
        LIMIT $5
        "#,
    )
    .bind(tenant_id)
    .bind(patterns)
    .bind(exclude)
    .bind(after)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// The tenant's collections with chunks whose text lineage does not hold
/// (their text, if any, is only in the backend's payload).
pub async fn collections_without_text(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT k.collection_id
        FROM collections k
        WHERE k.tenant_id = $1
          AND EXISTS (SELECT 1 FROM chunks c WHERE c.collection_id = k.collection_id AND c.text IS NULL)
        "#,
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await?)
}

/// Texts of the given chunks with their source's id, ordered by source and
/// ordinal (a document's chunks in order: the residual search's own words).
pub async fn chunk_texts_in_order(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    chunk_ids: &[Uuid],
) -> Result<Vec<(String, Option<String>)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT s.external_id, c.text
        FROM chunks c
        JOIN sources s USING (source_id)
        WHERE c.tenant_id = $1 AND c.chunk_id = ANY($2)
        ORDER BY c.source_id, c.ordinal
        "#,
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .fetch_all(ex)
    .await?)
}
