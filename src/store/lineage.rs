//! Lineage: sources, chunks and chunk ↔ subject tags, and the chunk texts
//! residual search reads. Collections (`collections`) and subjects
//! (`subjects`) have files of their own and are re-exported here.

use std::collections::HashSet;

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;
use crate::residual::index;
// Collections and subjects live in their own files; lineage is where
// callers find all three.
pub use super::collections::*;
pub use super::subjects::*;

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
    /// When the point was written, if the store says (attached stores with a
    /// mapped timestamp): its source's time goes back to the oldest.
    pub written_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Records sources, chunks and tags in one statement each. Returns false when
/// a chunk id is already used by another collection or source of the tenant
/// (nothing is written then if the caller rolls back). Chunk ids are keyed
/// per tenant (migration 30): another tenant's use of an id is neither seen
/// nor touched.
///
/// Every insert takes its rows in one order (sources by caller id, chunks
/// by id, tags by chunk and subject; subjects by keyed hash before them,
/// `upsert_subjects`): two writes of overlapping rows wait for each other
/// in that order and cannot deadlock, whatever order their requests list
/// the rows in. After the chunks, the sources they were written into that
/// existed before are locked ([`lock_used_sources`]), as a deleter locks
/// them after deleting chunks: chunks before sources on both sides.
/// pgvector's vectors are written after all of them, in the same
/// transaction (`ingest`).
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
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        r#"
        INSERT INTO sources (source_id, tenant_id, collection_id, external_id, uri, kind)
        SELECT DISTINCT ON (e) id, $1, $2, e, u, k
        FROM UNNEST($3::text[], $4::text[], $5::text[], $6::uuid[]) AS s(e, u, k, id)
        ORDER BY e
        ON CONFLICT (collection_id, external_id) DO NOTHING
        RETURNING source_id
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(&ext)
    .bind(&uris)
    .bind(&kinds)
    .bind(&source_ids)
    .fetch_all(&mut **tx)
    .await?;
    let ids: Vec<Uuid> = chunks.iter().map(|c| c.chunk_id).collect();
    let ordinals: Vec<i32> = chunks.iter().map(|c| c.ordinal).collect();
    let texts: Vec<Option<&str>> = chunks.iter().map(|c| c.text.as_deref()).collect();
    // The residual index's keys travel with the text, in the same statement,
    // binary: one flat int[] of every chunk's keys and each chunk's slice of
    // it (UNNEST cannot take an array of arrays). As array literals, a
    // thousand chunks of real text (~300 keys each) cost ~45 ms more to
    // parse and three times the bytes.
    let keys = ChunkKeys::of(tenant_id, chunks);
    let shared: Vec<bool> = chunks.iter().map(|c| c.tags.len() > 1).collect();
    // A rewritten chunk keeps its earlier tags and may gain others: shared
    // from then on (conservative; see `forget_subject_chunks`). The sources
    // are looked up by the batch's own ids (`= ANY`, through the unique key):
    // a join on the collection alone hashed every source of the collection
    // for every batch.
    let written: Vec<Uuid> = sqlx::query_scalar(
        r#"
        INSERT INTO chunks (chunk_id, tenant_id, collection_id, source_id, ordinal, text, shared, terms)
        SELECT c.id, $1, $2, s.source_id, c.ord, c.txt, c.shared,
               CASE WHEN c.txt IS NOT NULL THEN COALESCE(($8::int[])[c.start + 1 : c.start + c.len], '{}') END
        FROM UNNEST($3::uuid[], $4::text[], $5::int[], $6::text[], $7::bool[], $9::int[], $10::int[])
            AS c(id, ext, ord, txt, shared, start, len)
        JOIN (SELECT source_id, external_id FROM sources WHERE collection_id = $2 AND external_id = ANY($4)) s
          ON s.external_id = c.ext
        ORDER BY c.id
        ON CONFLICT (tenant_id, chunk_id) DO UPDATE
        SET text = EXCLUDED.text, terms = EXCLUDED.terms, ordinal = EXCLUDED.ordinal, updated_at = now(),
            shared = true
        WHERE chunks.collection_id = EXCLUDED.collection_id AND chunks.source_id = EXCLUDED.source_id
        RETURNING source_id
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(&ids)
    .bind(&ext)
    .bind(&ordinals)
    .bind(&texts)
    .bind(&shared)
    .bind(&keys.flat)
    .bind(&keys.starts)
    .bind(&keys.lens)
    .fetch_all(&mut **tx)
    .await?;
    if written.len() != chunks.len() || !lock_used_sources(tx, written, &inserted).await? {
        return Ok(false);
    }
    backdate_sources(tx, collection_id, chunks).await?;
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
        ORDER BY c, s
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

/// Locks the sources the write's chunks went into that it did not insert
/// itself (`FOR KEY SHARE`, in the order deleters take them: by caller id)
/// until it commits, and says whether all of them are still there. A
/// deleter of chunks locks their sources `FOR UPDATE` and only then looks
/// for chunks left ([`delete_empty_sources`]): it waits for this write and
/// sees its chunks, or it came first and deleted a source this write's
/// chunk insert still saw, and then the lock finds it gone: false, and the
/// caller records the write again (`ingest`). Sources the write inserted
/// are its own until it commits: no statement for a write of new sources
/// only.
async fn lock_used_sources(tx: &mut Transaction<'_, Postgres>, mut used: Vec<Uuid>, inserted: &[Uuid]) -> Result<bool> {
    let inserted: std::collections::HashSet<&Uuid> = inserted.iter().collect();
    used.sort_unstable();
    used.dedup();
    used.retain(|s| !inserted.contains(s));
    if used.is_empty() {
        return Ok(true);
    }
    let locked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM sources WHERE source_id = ANY($1) ORDER BY collection_id, external_id FOR KEY SHARE) l",
    )
    .bind(&used)
    .fetch_one(&mut **tx)
    .await?;
    Ok(usize::try_from(locked).unwrap_or(0) == used.len())
}

/// Moves the time lineage recorded a source back to its oldest point's
/// written time where a chunk carries one (never forward; retention counts a
/// source's age from it). Nothing to do, and no statement, for writes
/// without times (everything but attached stores with a mapped timestamp).
async fn backdate_sources(tx: &mut Transaction<'_, Postgres>, collection_id: Uuid, chunks: &[NewChunk]) -> Result<()> {
    let (ext, times): (Vec<&str>, Vec<chrono::DateTime<chrono::Utc>>) =
        chunks.iter().filter_map(|c| c.written_at.map(|t| (c.source_external_id.as_str(), t))).unzip();
    if ext.is_empty() {
        return Ok(());
    }
    sqlx::query(
        r#"
        UPDATE sources s SET created_at = w.t
        FROM (SELECT e, min(t) AS t FROM UNNEST($2::text[], $3::timestamptz[]) AS x(e, t) GROUP BY e) w
        WHERE s.collection_id = $1 AND s.external_id = w.e AND w.t < s.created_at
        "#,
    )
    .bind(collection_id)
    .bind(&ext)
    .bind(&times)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// (collection id, chunk id) of every chunk tagged with the subject, in
/// that order (one index-only scan).
/// The `(collection, chunk)` pairs of several subjects, by subject, in one query.
/// A chunk of a subject's lineage: its collection, its id, and whether it
/// may be shared with another subject (`chunks.shared`, conservative).
#[derive(Debug, Clone, Copy)]
pub struct SubjectChunk {
    pub collection_id: Uuid,
    pub chunk_id: Uuid,
    pub shared: bool,
}

/// The chunks of several subjects, by subject.
pub async fn subjects_chunks(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, Vec<SubjectChunk>>> {
    // `chunks_shared_idx` (shared chunks only) answers the EXISTS.
    let rows: Vec<(Uuid, Uuid, Uuid, Option<bool>)> = sqlx::query_as(
        "SELECT cs.subject_id, cs.collection_id, cs.chunk_id, \
                EXISTS (SELECT 1 FROM chunks k WHERE k.tenant_id = cs.tenant_id AND k.chunk_id = cs.chunk_id AND k.shared) \
         FROM chunk_subjects cs WHERE cs.subject_id = ANY($1) ORDER BY cs.subject_id, cs.collection_id, cs.chunk_id",
    )
    .bind(subject_ids)
    .fetch_all(ex)
    .await?;
    let mut chunks: std::collections::HashMap<Uuid, Vec<SubjectChunk>> = std::collections::HashMap::new();
    for (subject, collection_id, chunk_id, shared) in rows {
        chunks.entry(subject).or_default().push(SubjectChunk { collection_id, chunk_id, shared: shared.unwrap_or(false) });
    }
    Ok(chunks)
}

pub async fn subject_chunks(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT collection_id, chunk_id FROM chunk_subjects WHERE subject_id = $1 ORDER BY collection_id, chunk_id",
    )
    .bind(subject_id)
    .fetch_all(ex)
    .await?)
}

/// The chunks of the collection's sources with these caller ids.
pub async fn source_chunks(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    external_ids: &[&str],
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT c.chunk_id FROM sources s JOIN chunks c ON c.source_id = s.source_id
        WHERE s.collection_id = $2 AND s.external_id = ANY($3) AND s.tenant_id = $1 AND c.tenant_id = $1
        ORDER BY c.chunk_id
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(external_ids)
    .fetch_all(ex)
    .await?)
}

/// Of `chunks` (point id, source's external id) to be written in
/// `collection_id`, the ids lineage already holds for another collection or
/// another source of the tenant (`record_chunks` would refuse them).
pub async fn ids_taken_elsewhere(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    chunks: &[(Uuid, &str)],
) -> Result<HashSet<Uuid>> {
    let (ids, ext): (Vec<Uuid>, Vec<&str>) = chunks.iter().copied().unzip();
    let taken: Vec<Uuid> = sqlx::query_scalar(
        r#"
        SELECT c.chunk_id
        FROM UNNEST($2::uuid[], $3::text[]) AS w(id, ext)
        JOIN chunks c ON c.tenant_id = $1 AND c.chunk_id = w.id
        JOIN sources s ON s.source_id = c.source_id
        WHERE c.collection_id <> $4 OR s.external_id <> w.ext
        "#,
    )
    .bind(tenant_id)
    .bind(&ids)
    .bind(&ext)
    .bind(collection_id)
    .fetch_all(ex)
    .await?;
    Ok(taken.into_iter().collect())
}

/// Deletes the given chunks of one collection of the tenant with all their
/// tags, and sources left empty. An id of a chunk in another collection is
/// not touched: a chunk id is unique in its tenant, so a call naming one
/// collection with another's id (DeletePoints does, for a client's ids)
/// would otherwise forget lineage whose vector it never deleted. Set-wise
/// statements (the tables have no per-row foreign-key cascades): chunks,
/// tags, the ids of attached stores, then the sources left empty.
pub async fn delete_chunks(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid, collection_id: Uuid, chunk_ids: &[Uuid]) -> Result<u64> {
    // Chunks before their tags, the order a write takes them in.
    let deleted: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "DELETE FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) AND collection_id = $3 \
         RETURNING chunk_id, collection_id, source_id",
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .bind(collection_id)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM chunk_subjects WHERE chunk_id = ANY($2) AND tenant_id = $1 AND collection_id = $3")
        .bind(tenant_id)
        .bind(chunk_ids)
        .bind(collection_id)
        .execute(&mut **tx)
        .await?;
    forget_point_ids(tx, deleted.iter().map(|(c, k, _)| (*k, *c))).await?;
    let mut sources: Vec<Uuid> = deleted.iter().map(|(_, _, s)| *s).collect();
    sources.sort_unstable();
    sources.dedup();
    delete_empty_sources(tx, &sources).await?;
    Ok(deleted.len() as u64)
}

/// The ids behind forgotten chunks of attached stores (`attached_point_ids`:
/// a text id may name the person), also when the framework deleted the
/// point itself before Lethe could.
async fn forget_point_ids(tx: &mut Transaction<'_, Postgres>, chunks: impl Iterator<Item = (Uuid, Uuid)>) -> Result<()> {
    let (collections, keys): (Vec<Uuid>, Vec<Uuid>) = chunks.unzip();
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM attached_point_ids a USING UNNEST($1::uuid[], $2::uuid[]) AS f(c, k)          WHERE a.collection_id = f.c AND a.point_key = f.k",
    )
    .bind(&collections)
    .bind(&keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes every chunk tagged with the subject, with its text and its tags,
/// and the ids behind it (`attached_point_ids`) in one statement (the
/// caller then deletes the sources left empty, [`Forgotten::sources`]): the chunks are found
/// through the subject index (one range scan), the subject's own tags go
/// with the same scan, the tag table is probed chunk by chunk only for
/// chunks that may also carry other subjects' tags, and only the deleted
/// chunks' sources travel to the client and back.
///
/// A chunk is deleted only if its row was written by a transaction older
/// than any still running when the job's verify stage counted its
/// collection (`plans::mark_verified_before`): a chunk written since (a
/// write of the point, a redaction) may have its vector back in the store.
/// Such a chunk loses the subject's tag only and comes back in
/// [`Forgotten::changed`], for the caller to look up in the backend.
///
/// Chunks in `keep` (withheld under another subject's legal hold, or still
/// in a backend) keep their text and every tag, the subject's own too: a
/// later erasure finds them when the hold is lifted.
pub async fn forget_subject_chunks(
    tx: &mut Transaction<'_, Postgres>,
    subject: ForgetSubject,
    keep: &[Uuid],
) -> Result<Forgotten> {
    forget_subjects_chunks(tx, &[subject], keep).await
}

/// The age of the oldest transaction that was running when the job's verify
/// stage counted a collection (`erasure_counts e`, recorded by
/// `plans::mark_verified_before`; NULL when it recorded none): a chunk row
/// whose `age(xmin)` is greater was written by a transaction that had
/// committed before the count. 64-bit transaction ids are cut to the
/// 32-bit `xid` that `age` takes; one expression for both of its readers
/// ([`forget_subjects_chunks`], [`lock_written_since_count`]).
macro_rules! counted_age {
    () => {
        "age((e.verified_before % 4294967296)::text::xid)"
    };
}

/// A subject whose lineage an erasure job forgets.
#[derive(Debug, Clone, Copy)]
pub struct ForgetSubject {
    pub tenant_id: Uuid,
    pub subject_id: Uuid,
    /// The job whose verify stage counted the subject's points gone.
    pub job_id: Uuid,
}

/// What [`forget_subjects_chunks`] did.
#[derive(Debug, Default)]
pub struct Forgotten {
    /// How many chunks each subject lost.
    pub per_subject: std::collections::HashMap<Uuid, u64>,
    /// `(tenant, subject, chunk)` of chunks kept because their row was
    /// written after the verify stage's count began; the subject's tag is
    /// gone from them.
    pub changed: Vec<(Uuid, Uuid, Uuid)>,
    /// The sources of the chunks deleted: the caller deletes those left
    /// empty ([`delete_empty_sources`]) after it has settled `changed`, so
    /// that it locks chunks before sources, as writes do.
    pub sources: Vec<Uuid>,
}

/// A row of the forget statement: (kind, subject, count, source or chunk, tenant).
type ForgetRow = (i16, Option<Uuid>, i64, Option<Uuid>, Option<Uuid>);

/// [`forget_subject_chunks`] of several subjects in one statement. A chunk
/// two of them share counts for each (counted by the tags deleted, not by
/// the chunk's one deleted row): each job must know that its person's text
/// is in dead rows.
pub async fn forget_subjects_chunks(
    tx: &mut Transaction<'_, Postgres>,
    subjects: &[ForgetSubject],
    keep: &[Uuid],
) -> Result<Forgotten> {
    let tenants: Vec<Uuid> = subjects.iter().map(|s| s.tenant_id).collect();
    let ids: Vec<Uuid> = subjects.iter().map(|s| s.subject_id).collect();
    let jobs: Vec<Uuid> = subjects.iter().map(|s| s.job_id).collect();
    // The rows are each subject's count (kind 0), the sources of the chunks
    // deleted (kind 1): those left empty are deleted by statements of their
    // own after a lock (`delete_empty_sources`, by the caller: in this one, a
    // chunk a write added to one of them meanwhile would not be seen), and the chunks held
    // back because their row is newer than the count (kind 2; a tag of the
    // subject without a row is the lineage of nothing: the caller finds none
    // to lock). Ids are compared by `age` (transactions between an id and
    // this one, 32-bit): a row written before the count is older than the
    // oldest transaction then running. Exact for every row not frozen (those
    // are within 2^31 of now); a frozen row's old id may come out younger,
    // which only holds the chunk back. A chunk of a collection the job did
    // not count (or counted before `verified_before` existed) is held back. `NOT IN`, not `NOT
    // EXISTS`: it cannot become an anti-join, whose nested loop over the two
    // CTEs (no statistics) took 3.2 s for a subject of 10,000 chunks; it is
    // one hashed lookup per tag (hashed because the CTE's estimate, a
    // subject's average chunks, fits in `work_mem`). `age` wraps after 2^31
    // transactions between the count and this statement: not within a job.
    let rows: Vec<ForgetRow> = sqlx::query_as(concat!(
        r#"
        WITH s AS (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $4::uuid[]) AS s(tenant_id, subject_id, job_id)),
        counted AS MATERIALIZED (
            SELECT s.subject_id, e.collection_id, "#,
        counted_age!(),
        r#" AS age
            FROM s JOIN erasure_counts e ON e.job_id = s.job_id
        ),
        gone AS (
            DELETE FROM chunks c USING chunk_subjects cs, s, counted k
            WHERE cs.subject_id = s.subject_id AND c.tenant_id = s.tenant_id AND c.chunk_id = cs.chunk_id
              AND NOT (c.chunk_id = ANY($3))
              AND k.subject_id = s.subject_id AND k.collection_id = c.collection_id AND age(c.xmin) > k.age
            RETURNING c.chunk_id, c.source_id, c.shared, c.collection_id, c.tenant_id, cs.subject_id
        ),
        own_tags AS (
            DELETE FROM chunk_subjects cs USING s WHERE cs.subject_id = s.subject_id AND NOT (cs.chunk_id = ANY($3))
            RETURNING cs.tenant_id, cs.chunk_id, cs.subject_id
        ),
        shared_tags AS (
            DELETE FROM chunk_subjects cs USING gone g
            WHERE g.shared AND cs.chunk_id = g.chunk_id AND cs.tenant_id = g.tenant_id AND cs.subject_id <> g.subject_id
        ),
        point_ids AS (
            DELETE FROM attached_point_ids a USING gone g
            WHERE a.collection_id = g.collection_id AND a.point_key = g.chunk_id
        )
        SELECT 0::int2, t.subject_id, count(*), NULL::uuid, NULL::uuid
        FROM own_tags t JOIN gone g ON g.tenant_id = t.tenant_id AND g.chunk_id = t.chunk_id
        GROUP BY t.subject_id
        UNION ALL
        SELECT 1::int2, NULL, 0, source_id, NULL FROM (SELECT DISTINCT source_id FROM gone) g
        UNION ALL
        SELECT 2::int2, t.subject_id, 0, t.chunk_id, t.tenant_id FROM own_tags t
        WHERE (t.tenant_id, t.chunk_id) NOT IN (SELECT tenant_id, chunk_id FROM gone)
        "#,
    ))
    .bind(&tenants)
    .bind(&ids)
    .bind(keep)
    .bind(&jobs)
    .fetch_all(&mut **tx)
    .await?;
    let mut forgotten = Forgotten::default();
    for (kind, subject, n, id, tenant) in rows {
        match (kind, subject, id, tenant) {
            (0, Some(subject), _, _) => {
                forgotten.per_subject.insert(subject, u64::try_from(n).unwrap_or(0));
            }
            (1, _, Some(source), _) => forgotten.sources.push(source),
            (2, Some(subject), Some(chunk), Some(tenant)) => forgotten.changed.push((tenant, subject, chunk)),
            _ => {}
        }
    }
    Ok(forgotten)
}

/// Locks `chunk_ids` (of one collection of the tenant; `FOR UPDATE`, in id
/// order, as writes take them: a write of one waits until the caller
/// commits) and returns those whose row was written by a transaction not
/// older than the oldest one running when the job's verify stage counted the
/// collection (`plans::mark_verified_before`), or all of them when it
/// recorded none: their vectors may be back in the store (see
/// [`forget_subjects_chunks`]). The lock first: a write in flight on one of
/// them is waited for and its row then judged, not deleted behind it.
pub async fn lock_written_since_count(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    job_id: Uuid,
    collection_id: Uuid,
    chunk_ids: &[Uuid],
) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(concat!(
        r#"
        WITH counted AS MATERIALIZED (
            SELECT "#,
        counted_age!(),
        r#" AS age
            FROM erasure_counts e WHERE job_id = $2 AND collection_id = $3 AND verified_before IS NOT NULL
        )
        SELECT c.chunk_id, NOT EXISTS (SELECT 1 FROM counted k WHERE age(c.xmin) > k.age)
        FROM chunks c
        WHERE c.tenant_id = $1 AND c.chunk_id = ANY($4) AND c.collection_id = $3
        ORDER BY c.chunk_id
        FOR UPDATE OF c
        "#,
    ))
    .bind(tenant_id)
    .bind(job_id)
    .bind(collection_id)
    .bind(chunk_ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().filter_map(|(chunk, since)| since.then_some(chunk)).collect())
}

/// Locks the given chunks of a tenant (`FOR UPDATE`, in id order: a write
/// of one of them waits until the caller commits) and returns
/// `(collection, chunk)` of those still there.
pub async fn lock_chunks(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid, chunk_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT collection_id, chunk_id FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) ORDER BY chunk_id FOR UPDATE",
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .fetch_all(&mut **tx)
    .await?)
}

/// Deletes those of `sources` that hold no chunk any more, after the
/// caller's chunk deletes. Two statements, in this order: the sources are
/// locked first (`FOR UPDATE`, which waits for every write holding one:
/// `lock_used_sources`), and only then, in a snapshot taken after
/// those writes committed, is each looked for chunks. In one statement the
/// look would use a snapshot from before the wait and delete a source a
/// write had just added a chunk to. Two deleters of one source's last
/// chunks take turns in the same way, and the second deletes it.
pub async fn delete_empty_sources(tx: &mut Transaction<'_, Postgres>, sources: &[Uuid]) -> Result<()> {
    if sources.is_empty() {
        return Ok(());
    }
    // In the writes' order (by caller id within a collection), so that a
    // write and a deleter wait for each other's source locks in one order.
    sqlx::query("SELECT 1 FROM sources WHERE source_id = ANY($1) ORDER BY collection_id, external_id FOR UPDATE")
        .bind(sources)
        .execute(&mut **tx)
        .await?;
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

/// Of these sources, those still there: (source, tenant, caller id, uri, kind).
pub async fn sources_of(ex: impl PgExecutor<'_>, source_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid, String, String, String)>> {
    if source_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as("SELECT source_id, tenant_id, external_id, uri, kind FROM sources WHERE source_id = ANY($1) ORDER BY source_id")
        .bind(source_ids)
        .fetch_all(ex)
        .await?)
}

/// The sources of the tenant's chunks: (collection, chunk, source, caller id, uri, kind).
pub async fn sources_of_chunks(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    chunk_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid, Uuid, String, String, String)>> {
    if chunk_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT c.collection_id, c.chunk_id, s.source_id, s.external_id, s.uri, s.kind FROM chunks c JOIN sources s USING (source_id) \
         WHERE c.tenant_id = $1 AND c.chunk_id = ANY($2)",
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .fetch_all(ex)
    .await?)
}

/// A page of a collection's sources after caller id `after`, in caller-id
/// order (its unique key): (source, caller id, uri, kind).
pub async fn sources_page(
    ex: impl PgExecutor<'_>,
    collection_id: Uuid,
    after: &str,
    limit: i64,
) -> Result<Vec<(Uuid, String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT source_id, external_id, uri, kind FROM sources WHERE collection_id = $1 AND external_id > $2 ORDER BY external_id LIMIT $3",
    )
    .bind(collection_id)
    .bind(after)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// A source's new caller id, and whether its uri and its kind are cleared
/// (they named someone erased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRename {
    pub source_id: Uuid,
    pub external_id: String,
    pub clear_uri: bool,
    pub clear_kind: bool,
}

/// Gives sources another caller id, and clears the uri and the kind of
/// those marked ([`SourceRename`]). The rows are locked first in
/// the order writes lock sources (collection, caller id). A source whose
/// new id another source of its collection has already (a document
/// written under its id again after an earlier rename, while that rename
/// ran) is merged into that one: its chunks move there and it is deleted.
/// Returns the sources that hold the new ids (the renamed ones, and for a
/// merge the one it went into).
pub async fn rename_sources(ex: &mut sqlx::PgConnection, renames: &[SourceRename]) -> Result<Vec<Uuid>> {
    if renames.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = renames.iter().map(|r| r.source_id).collect();
    let names: Vec<&str> = renames.iter().map(|r| r.external_id.as_str()).collect();
    let clear_uri: Vec<bool> = renames.iter().map(|r| r.clear_uri).collect();
    let clear_kind: Vec<bool> = renames.iter().map(|r| r.clear_kind).collect();
    // The sources already holding a new id (the same collection, by its
    // unique key): (renamed source, the one holding its new id).
    let taken = || {
        sqlx::query_as::<_, (Uuid, Uuid)>(
            r#"
            SELECT s.source_id, a.source_id
            FROM UNNEST($1::uuid[], $2::text[]) AS r(id, name)
            JOIN sources s ON s.source_id = r.id
            JOIN sources a ON a.collection_id = s.collection_id AND a.external_id = r.name AND a.source_id <> s.source_id
            "#,
        )
        .bind(&ids)
        .bind(&names)
    };
    let holders: Vec<Uuid> = taken().fetch_all(&mut *ex).await?.into_iter().map(|(_, a)| a).collect();
    sqlx::query("SELECT 1 FROM sources WHERE source_id = ANY($1) OR source_id = ANY($2) ORDER BY collection_id, external_id FOR UPDATE")
        .bind(&ids)
        .bind(&holders)
        .execute(&mut *ex)
        .await?;
    // Read again under the locks.
    let merges: Vec<(Uuid, Uuid)> = taken().fetch_all(&mut *ex).await?;
    if !merges.is_empty() {
        let from: Vec<Uuid> = merges.iter().map(|m| m.0).collect();
        let into: Vec<Uuid> = merges.iter().map(|m| m.1).collect();
        sqlx::query("UPDATE chunks c SET source_id = m.into_id FROM UNNEST($1::uuid[], $2::uuid[]) AS m(from_id, into_id) WHERE c.source_id = m.from_id")
            .bind(&from)
            .bind(&into)
            .execute(&mut *ex)
            .await?;
        // The merged row goes with its uri; the alias row keeps its own.
        sqlx::query("DELETE FROM sources WHERE source_id = ANY($1)").bind(&from).execute(&mut *ex).await?;
    }
    sqlx::query(
        r#"
        UPDATE sources s SET external_id = r.name,
            uri = CASE WHEN r.clear_uri THEN '' ELSE s.uri END,
            kind = CASE WHEN r.clear_kind THEN '' ELSE s.kind END
        FROM UNNEST($1::uuid[], $2::text[], $3::bool[], $4::bool[]) AS r(id, name, clear_uri, clear_kind)
        WHERE s.source_id = r.id
        "#,
    )
    .bind(&ids)
    .bind(&names)
    .bind(&clear_uri)
    .bind(&clear_kind)
    .execute(&mut *ex)
    .await?;
    let mut holding: Vec<Uuid> = ids.iter().filter(|id| !merges.iter().any(|m| m.0 == **id)).copied().collect();
    holding.extend(merges.iter().map(|m| m.1));
    holding.sort_unstable();
    holding.dedup();
    Ok(holding)
}

/// The chunks of these sources with each source's tenant, collection and
/// caller id: (tenant, collection, caller id, chunk).
pub async fn chunks_of_sources(ex: impl PgExecutor<'_>, source_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid, String, Uuid)>> {
    if source_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT s.tenant_id, s.collection_id, s.external_id, c.chunk_id FROM sources s JOIN chunks c USING (source_id) \
         WHERE s.source_id = ANY($1)",
    )
    .bind(source_ids)
    .fetch_all(ex)
    .await?)
}

/// Of these caller ids, those a source of the collection has.
pub async fn existing_source_ids(ex: impl PgExecutor<'_>, collection_id: Uuid, external_ids: &[&str]) -> Result<Vec<String>> {
    if external_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT external_id FROM sources WHERE collection_id = $1 AND external_id = ANY($2)")
        .bind(collection_id)
        .bind(external_ids)
        .fetch_all(ex)
        .await?)
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

/// A chunk's text with its row version (`xmin`): two reads of the same
/// version saw the same row, whatever wrote the chunk in between.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChunkVersion {
    pub chunk_id: Uuid,
    pub text: Option<String>,
    pub version: String,
}

/// The tenant's chunks among `chunk_ids` with their texts and row versions;
/// with `lock`, locked as [`lock_chunks`] locks them (only the rows
/// returned are locked: a chunk inserted after this read is not).
pub async fn chunk_versions(ex: impl PgExecutor<'_>, tenant_id: Uuid, chunk_ids: &[Uuid], lock: bool) -> Result<Vec<ChunkVersion>> {
    let sql = if lock {
        "SELECT chunk_id, text, xmin::text AS version FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) ORDER BY chunk_id FOR UPDATE"
    } else {
        "SELECT chunk_id, text, xmin::text AS version FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2)"
    };
    Ok(sqlx::query_as(sql).bind(tenant_id).bind(chunk_ids).fetch_all(ex).await?)
}

/// Replaces a chunk's stored text (redaction) and its residual index keys
/// (the old words must not find it any more), and marks it changed: a
/// re-index whose copy has passed the chunk copies it again at its switch.
pub async fn update_chunk_text(ex: impl PgExecutor<'_>, tenant_id: Uuid, chunk_id: Uuid, text: &str) -> Result<()> {
    sqlx::query(
        "UPDATE chunks SET text = $3, terms = $4, updated_at = clock_timestamp() WHERE tenant_id = $1 AND chunk_id = $2",
    )
    .bind(tenant_id)
    .bind(chunk_id)
    .bind(text)
    .bind(index::terms(tenant_id, text))
    .execute(ex)
        .await?;
    Ok(())
}

/// Whether any chunk of any tenant is listed for a re-key (taken by a
/// replica's batch not yet committed, or not yet taken).
pub async fn any_listed_for_rekey(ex: impl PgExecutor<'_>) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM chunks_rekey)").fetch_one(ex).await?)
}

/// Re-keys up to `limit` of the chunks listed in `chunks_rekey` (keys
/// computed before texts were read unescaped; migration `20261204000010`),
/// in one transaction: the entries are taken (`SKIP LOCKED`: replicas
/// starting together share the list), each chunk's row locked in id order
/// as writes lock them, and its keys computed again from its text. A chunk
/// gone or without text just leaves the list. The text and `updated_at`
/// stay: only the keys change. Returns how many entries it took (0: the
/// list is empty).
pub async fn rekey_listed(pool: &sqlx::PgPool, limit: i64) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let taken: Vec<(Uuid, Uuid)> = sqlx::query_as(
        r#"
        DELETE FROM chunks_rekey
        WHERE (tenant_id, chunk_id) IN (
            SELECT tenant_id, chunk_id FROM chunks_rekey ORDER BY tenant_id, chunk_id LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        RETURNING tenant_id, chunk_id
        "#,
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if taken.is_empty() {
        return Ok(0);
    }
    let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = taken.iter().copied().unzip();
    let texts: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        r#"
        SELECT c.tenant_id, c.chunk_id, c.text
        FROM chunks c JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(t, c) ON c.tenant_id = k.t AND c.chunk_id = k.c
        WHERE c.text IS NOT NULL
        ORDER BY c.chunk_id
        FOR UPDATE OF c
        "#,
    )
    .bind(&tenants)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let (mut flat, mut starts, mut lens) = (Vec::new(), Vec::with_capacity(texts.len()), Vec::with_capacity(texts.len()));
    for (tenant_id, _, text) in &texts {
        let terms = index::terms(*tenant_id, text);
        starts.push(i32::try_from(flat.len()).unwrap_or(i32::MAX));
        lens.push(i32::try_from(terms.len()).unwrap_or(i32::MAX));
        flat.extend(terms);
    }
    let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = texts.iter().map(|(t, c, _)| (*t, *c)).unzip();
    sqlx::query(
        r#"
        UPDATE chunks c SET terms = COALESCE(($3::int[])[k.start + 1 : k.start + k.len], '{}')
        FROM UNNEST($1::uuid[], $2::uuid[], $4::int[], $5::int[]) AS k(t, c, start, len)
        WHERE c.tenant_id = k.t AND c.chunk_id = k.c
        "#,
    )
    .bind(&tenants)
    .bind(&ids)
    .bind(&flat)
    .bind(&starts)
    .bind(&lens)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(taken.len() as u64)
}

/// Every chunk of a collection with when it was last written.
pub async fn collection_chunk_times(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
) -> Result<Vec<(Uuid, chrono::DateTime<chrono::Utc>)>> {
    Ok(sqlx::query_as("SELECT chunk_id, updated_at FROM chunks WHERE tenant_id = $1 AND collection_id = $2")
        .bind(tenant_id)
        .bind(collection_id)
        .fetch_all(ex)
        .await?)
}

/// Of `(chunk, since)`, the chunks lineage holds in the collection that
/// were written (or rewritten) after their `since`.
pub async fn chunks_written_since(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
    chunks: &[(Uuid, chrono::DateTime<chrono::Utc>)],
) -> Result<Vec<Uuid>> {
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, since): (Vec<Uuid>, Vec<chrono::DateTime<chrono::Utc>>) = chunks.iter().copied().unzip();
    Ok(sqlx::query_scalar(
        "SELECT c.chunk_id FROM chunks c JOIN UNNEST($3::uuid[], $4::timestamptz[]) AS w(chunk_id, since) \
         ON c.chunk_id = w.chunk_id \
         WHERE c.tenant_id = $1 AND c.collection_id = $2 AND c.updated_at > w.since",
    )
    .bind(tenant_id)
    .bind(collection_id)
    .bind(&ids)
    .bind(&since)
    .fetch_all(ex)
    .await?)
}

/// Marks chunks of a collection changed now (their point was rewritten
/// outside lineage: a redaction of text held only in the payload), as
/// [`update_chunk_text`] does, for a re-index's catch-up.
pub async fn mark_chunks_changed(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid, chunk_ids: &[Uuid]) -> Result<()> {
    if chunk_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE chunks SET updated_at = clock_timestamp() WHERE tenant_id = $1 AND collection_id = $2 AND chunk_id = ANY($3)")
        .bind(tenant_id)
        .bind(collection_id)
        .bind(chunk_ids)
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

/// A transaction for residual index lookups ([`chunk_ids_with_terms`],
/// [`chunks_per_key`], [`chunks_per_key_set`], [`chunk_ids_per_term`]): one
/// for all of the lookups of a batch of searches.
///
/// Always through the GIN index: the planner's estimate for `&&` with
/// hundreds of rare keys is most of the table, so it picks a sequential
/// scan (or the tenant's primary-key range) and tests every row's array
/// (6 s per query over 33,000 chunks, against 12 ms through the index);
/// sequential scans are off in the transaction and the tenant is checked
/// after the index scan (the keys are keyed with the tenant already).
pub async fn index_lookups(pool: &sqlx::PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await?;
    Ok(tx)
}

/// The tenant's chunks whose keys hold any of `keys` (`residual::index`):
/// their ids, sorted, distinct, `batch` keys per statement. In an
/// [`index_lookups`] transaction.
pub async fn chunk_ids_with_terms(tx: &mut sqlx::PgConnection, tenant_id: Uuid, keys: &[i32], batch: usize) -> Result<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = Vec::new();
    for keys in keys.chunks(batch.max(1)) {
        let found: Vec<Uuid> = sqlx::query_scalar(
            "SELECT chunk_id FROM (SELECT chunk_id, tenant_id FROM chunks WHERE terms && $2 OFFSET 0) c WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .bind(keys)
        .fetch_all(&mut *tx)
        .await?;
        ids.extend(found);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// For each of `keys`, every chunk of the tenant that holds it, as (key,
/// chunk id) pairs, `batch` keys per statement: the lookups of several
/// searches in one statement, each search taking the pairs of its own keys.
/// In an [`index_lookups`] transaction (one bitmap of the GIN index per key).
pub async fn chunks_per_key(tx: &mut sqlx::PgConnection, tenant_id: Uuid, keys: &[i32], batch: usize) -> Result<Vec<(i32, Uuid)>> {
    let mut out = Vec::new();
    for keys in keys.chunks(batch.max(1)) {
        let found: Vec<(i32, Uuid)> = sqlx::query_as(
            r#"
            SELECT k.key, c.chunk_id
            FROM unnest($2::int4[]) AS k(key)
            CROSS JOIN LATERAL (
                SELECT x.chunk_id
                FROM (SELECT chunk_id, tenant_id FROM chunks WHERE terms && ARRAY[k.key] OFFSET 0) x
                WHERE x.tenant_id = $1
            ) c
            "#,
        )
        .bind(tenant_id)
        .bind(keys)
        .fetch_all(&mut *tx)
        .await?;
        out.extend(found);
    }
    Ok(out)
}

/// For each set of `sets`, every chunk of the tenant whose keys hold all of
/// it (the words of a form of several words), as (index of the set, chunk
/// id) pairs, in one statement: the GIN index intersects each set's posting
/// lists. In an [`index_lookups`] transaction.
pub async fn chunks_per_key_set(tx: &mut sqlx::PgConnection, tenant_id: Uuid, sets: &[Vec<i32>]) -> Result<Vec<(usize, Uuid)>> {
    if sets.is_empty() {
        return Ok(Vec::new());
    }
    let (of, keys): (Vec<i32>, Vec<i32>) = sets
        .iter()
        .enumerate()
        .flat_map(|(n, set)| set.iter().map(move |k| (i32::try_from(n).unwrap_or(i32::MAX), *k)))
        .unzip();
    let found: Vec<(i32, Uuid)> = sqlx::query_as(
        r#"
        WITH s AS (SELECT n, array_agg(key) AS keys FROM unnest($2::int4[], $3::int4[]) AS u(n, key) GROUP BY n)
        SELECT s.n, c.chunk_id
        FROM s
        CROSS JOIN LATERAL (
            SELECT x.chunk_id
            FROM (SELECT chunk_id, tenant_id FROM chunks WHERE terms @> s.keys OFFSET 0) x
            WHERE x.tenant_id = $1
        ) c
        "#,
    )
    .bind(tenant_id)
    .bind(&of)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    Ok(found.into_iter().map(|(n, id)| (usize::try_from(n).unwrap_or(usize::MAX), id)).collect())
}

/// For each (search, key) of `keys`, at most `cap` of the tenant's chunks
/// that hold the key (`residual::index`), other than the search's own
/// `exclude` (search, chunk id), as (search, key, chunk id), `batch` keys
/// per statement: a key with `cap` chunks may be held by more. The samples
/// of several searches in one statement, each as it would be alone. In an
/// [`index_lookups`] transaction, through the GIN index: one bitmap of the
/// index per key (GIN reads a key's whole posting list), and at most `cap`
/// rows of the table read for it. `exclude` is looked up in a hash built
/// once per statement (`NOT IN` a subquery, hashed also for a row of two
/// columns): `<> ALL` of an array compares every row with every element
/// (30 µs a row for a subject of 10,000 chunks, against 0.4).
pub async fn chunk_ids_per_term(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    keys: &[(i32, i32)],
    exclude: &[(i32, Uuid)],
    cap: usize,
    batch: usize,
) -> Result<Vec<(i32, i32, Uuid)>> {
    let (excluded_of, excluded): (Vec<i32>, Vec<Uuid>) = exclude.iter().copied().unzip();
    let mut out = Vec::new();
    for keys in keys.chunks(batch.max(1)) {
        let (of, keys): (Vec<i32>, Vec<i32>) = keys.iter().copied().unzip();
        let found: Vec<(i32, i32, Uuid)> = sqlx::query_as(
            r#"
            SELECT k.n, k.key, c.chunk_id
            FROM unnest($2::int4[], $3::int4[]) AS k(n, key)
            CROSS JOIN LATERAL (
                SELECT x.chunk_id
                FROM (SELECT chunk_id, tenant_id FROM chunks WHERE terms && ARRAY[k.key] OFFSET 0) x
                WHERE x.tenant_id = $1 AND (k.n, x.chunk_id) NOT IN (SELECT * FROM unnest($5::int4[], $6::uuid[]))
                LIMIT $4
            ) c
            "#,
        )
        .bind(tenant_id)
        .bind(&of)
        .bind(&keys)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .bind(&excluded_of)
        .bind(&excluded)
        .fetch_all(&mut *tx)
        .await?;
        out.extend(found);
    }
    Ok(out)
}

/// The given chunks of the tenant that hold text, with where they live.
pub async fn chunk_texts_with_source(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    chunk_ids: &[Uuid],
) -> Result<Vec<ChunkText>> {
    Ok(sqlx::query_as(
        r#"
        SELECT c.chunk_id, c.collection_id, s.external_id AS source_id, c.text
        FROM chunks c
        JOIN sources s ON s.source_id = c.source_id
        WHERE c.tenant_id = $1 AND c.chunk_id = ANY($2) AND c.text IS NOT NULL
        ORDER BY c.chunk_id
        "#,
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .fetch_all(ex)
    .await?)
}

/// One page of the residual scan without the index: the tenant's chunks
/// whose text matches any of the `ILIKE` patterns (only those written
/// before the index, without keys, when `unindexed_only`), not in
/// `exclude`, in chunk id order after `after`, at most `limit`.
///
/// Two statement texts (with and without `terms IS NULL`), not `NOT $6 OR
/// terms IS NULL`: a generic plan (the workers' pool,
/// `startup::worker_pool`) cannot pick the partial index
/// `chunks_unindexed_idx` by a parameter.
pub async fn chunks_matching(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    patterns: &[String],
    unindexed_only: bool,
    exclude: &[Uuid],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ChunkText>> {
    let sql = format!(
        r#"
        SELECT c.chunk_id, c.collection_id, s.external_id AS source_id, c.text
        FROM chunks c
        JOIN sources s USING (source_id)
        WHERE c.tenant_id = $1
          AND c.text IS NOT NULL {unindexed}
          AND c.text ILIKE ANY($2)
          AND NOT (c.chunk_id = ANY($3))
          AND {after}
        ORDER BY c.chunk_id
        LIMIT $5
        "#,
        unindexed = if unindexed_only { "AND c.terms IS NULL" } else { "" },
        after = super::after_cursor("c.chunk_id", "$4"),
    );
    Ok(sqlx::query_as(&sql).bind(tenant_id).bind(patterns).bind(exclude).bind(after).bind(limit).fetch_all(ex).await?)
}

/// Every chunk's residual index keys in one flat array, with each chunk's
/// start and length in it (a chunk without text has none).
struct ChunkKeys {
    flat: Vec<i32>,
    starts: Vec<i32>,
    lens: Vec<i32>,
}

impl ChunkKeys {
    fn of(tenant_id: Uuid, chunks: &[NewChunk]) -> Self {
        let n = chunks.len();
        let mut k = Self { flat: Vec::new(), starts: Vec::with_capacity(n), lens: Vec::with_capacity(n) };
        for c in chunks {
            let terms = c.text.as_deref().map(|t| index::terms(tenant_id, t)).unwrap_or_default();
            k.starts.push(i32::try_from(k.flat.len()).unwrap_or(i32::MAX));
            k.lens.push(i32::try_from(terms.len()).unwrap_or(i32::MAX));
            k.flat.extend(terms);
        }
        k
    }
}

/// What a residual search must read besides the index ([`beside_the_index`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BesideIndex {
    /// Whether the tenant has chunk texts written before the residual index
    /// (without keys; migration 80), which the index cannot find.
    pub texts_unindexed: bool,
    /// Its collections with chunks whose text lineage does not hold (their
    /// text, if any, is only in the backend's payload), and attached
    /// collections whose adoption has not completed (queued, running or
    /// failed: lineage holds only part of them, or nothing).
    pub textless: Vec<Uuid>,
    /// Its chunks listed for new index keys (`chunks_rekey`, [`rekey_listed`]),
    /// sorted: until their re-key a search reads them whole. Empty but in
    /// the minutes after an upgrade that listed texts.
    pub listed: Vec<Uuid>,
}

/// [`BesideIndex`] of a tenant, in one statement, each part through an index.
pub async fn beside_the_index(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<BesideIndex> {
    Ok(sqlx::query_as(
        r#"
        SELECT EXISTS (SELECT 1 FROM chunks WHERE tenant_id = $1 AND text IS NOT NULL AND terms IS NULL) AS texts_unindexed,
               ARRAY(
                   SELECT k.collection_id
                   FROM collections k
                   WHERE k.tenant_id = $1
                     AND (EXISTS (SELECT 1 FROM chunks c WHERE c.collection_id = k.collection_id AND c.text IS NULL)
                          OR EXISTS (SELECT 1 FROM attach_jobs a WHERE a.collection_id = k.collection_id
                                     AND a.status <> 'completed'))
               ) AS textless,
               ARRAY(SELECT chunk_id FROM chunks_rekey WHERE tenant_id = $1 ORDER BY chunk_id) AS listed
        "#,
    )
    .bind(tenant_id)
    .fetch_one(ex)
    .await?)
}

/// Texts of the given chunks with their ids and their source's id, ordered
/// by source and ordinal (a document's chunks in order: the residual
/// search's own words), then id: the chunks of several searches in one
/// statement, each search taking its own in the order it would alone.
pub async fn chunk_texts_in_order(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    chunk_ids: &[Uuid],
) -> Result<Vec<(Uuid, String, Option<String>)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT c.chunk_id, s.external_id, c.text
        FROM chunks c
        JOIN sources s USING (source_id)
        WHERE c.tenant_id = $1 AND c.chunk_id = ANY($2)
        ORDER BY c.source_id, c.ordinal, c.chunk_id
        "#,
    )
    .bind(tenant_id)
    .bind(chunk_ids)
    .fetch_all(ex)
    .await?)
}

/// Merges the residual index's pending list (the keys of chunks written since
/// the last merge; migration `20261202000080`) into the index; returns how
/// many pending pages it emptied (0: nothing was pending). Waits while
/// another session merges it. The role must own the index: the owner of
/// `chunks`, as migrations or the service role (`store::role`) leave it.
pub async fn merge_residual_index(ex: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT gin_clean_pending_list('chunks_terms_idx'::regclass)").fetch_one(ex).await?)
}
