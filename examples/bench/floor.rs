//! The guarantees' floor: what Lethe's promises cost the database when
//! written as plainly as SQL allows, with none of Lethe's own code (no
//! fencing, no locks against concurrent writes, no log entry or
//! certificate, no events, no gRPC). Set beside Lethe and the raw
//! baseline, it splits a ratio into what the promise costs and what Lethe
//! adds to it.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::PgPool;
use uuid::Uuid;

use crate::measure::RawBatch;

/// Lineage's ids of the subjects tagged `tags` (their external ids) in the
/// tenant. Looked up before the clock starts: `external_id` has no index
/// (Lethe finds a subject by its keyed hash, through a unique key), so
/// timing this lookup would charge the floor a scan Lethe never makes.
pub async fn subject_ids(pool: &PgPool, tenant_id: Uuid, tags: &[String]) -> anyhow::Result<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT external_id, subject_id FROM subjects WHERE tenant_id = $1 AND external_id = ANY($2)")
            .bind(tenant_id)
            .bind(tags)
            .fetch_all(pool)
            .await?;
    anyhow::ensure!(rows.len() == tags.len(), "{} of {} subjects found in lineage", rows.len(), tags.len());
    Ok(rows.into_iter().collect())
}

/// The floor of erasing one subject (`subject`, tagged `tag`, with
/// `expected` points, each its own chunk): its lineage ids read, its
/// points counted by tag and by those ids, deleted by both, counted again
/// both ways; then in one transaction its chunks (with their texts), its
/// tags and the sources left empty deleted, and the subject made a
/// tombstone (its caller's id and other ids cleared). Each statement
/// alone. Checks the counts, and that the lineage statements removed what
/// they should.
/// Returns the total ms and each step's: ids, counts before, delete, counts
/// after, lineage.
pub async fn erase(pool: &PgPool, table: &str, tenant_id: Uuid, subject: Uuid, tag: &str, expected: i64) -> anyhow::Result<(f64, [f64; 5])> {
    let count = format!(
        "SELECT (SELECT count(*) FROM \"{table}\" WHERE subjects @> ARRAY[$1]::text[]), \
                (SELECT count(*) FROM \"{table}\" WHERE point_id = ANY($2))"
    );
    let t = Instant::now();
    let mut steps = [0.0; 5];
    let mut lap = {
        let mut last = Instant::now();
        move || {
            let ms = last.elapsed().as_secs_f64() * 1e3;
            last = Instant::now();
            ms
        }
    };
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT chunk_id FROM chunk_subjects WHERE subject_id = $1")
        .bind(subject)
        .fetch_all(pool)
        .await?;
    steps[0] = lap();
    let before: (i64, i64) = sqlx::query_as(&count).bind(tag).bind(&ids).fetch_one(pool).await?;
    steps[1] = lap();
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DELETE FROM \"{table}\" WHERE subjects @> ARRAY[$1]::text[]")).bind(tag).execute(&mut *tx).await?;
    sqlx::query(&format!("DELETE FROM \"{table}\" WHERE point_id = ANY($1)")).bind(&ids).execute(&mut *tx).await?;
    tx.commit().await?;
    steps[2] = lap();
    let after: (i64, i64) = sqlx::query_as(&count).bind(tag).bind(&ids).fetch_one(pool).await?;
    steps[3] = lap();
    let mut tx = pool.begin().await?;
    let sources: Vec<Uuid> = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) RETURNING source_id) SELECT source_id FROM gone",
    )
    .bind(tenant_id)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let tags = sqlx::query("DELETE FROM chunk_subjects WHERE subject_id = $1").bind(subject).execute(&mut *tx).await?.rows_affected();
    let chunks = i64::try_from(sources.len())?;
    let mut sources = sources;
    sources.sort_unstable();
    sources.dedup();
    let emptied = sqlx::query("DELETE FROM sources s WHERE s.source_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.source_id = s.source_id)")
        .bind(&sources)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // The person's other ids go with the caller's: no plaintext left.
    let tombstoned = sqlx::query(
        "WITH cleared AS (UPDATE subject_identifiers SET value = NULL WHERE subject_id = $1) \
         UPDATE subjects SET external_id = NULL, state = 'erased', erased_at = now() WHERE subject_id = $1",
    )
        .bind(subject)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    steps[4] = lap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        before == (expected, expected) && after == (0, 0),
        "floor erase of {tag}: {before:?} before, {after:?} after"
    );
    anyhow::ensure!(
        chunks == expected && i64::try_from(tags)? == expected && emptied > 0 && tombstoned == 1,
        "floor erase of {tag}: {chunks} chunks, {tags} tags, {emptied} sources, {tombstoned} tombstones"
    );
    Ok((ms, steps))
}

/// The floor of ingest: per batch of 1,000 points one transaction
/// inserting the subjects and sources not there yet (`ON CONFLICT DO
/// NOTHING`), the chunks with their texts and residual index keys
/// (`lethe::residual::index::terms`, computed inside the clock: every
/// write needs them), their tags, and the vectors (the raw statement);
/// then the residual index's pending list merged
/// (`setup::settle_residual_index`), as Lethe's figure is timed. Into
/// Lethe's own tables (their indexes, their size, their foreign keys),
/// for a tenant and collection of its own (`tenant_id`,
/// `collection_id`, whose pgvector table is `vector_table`), which the
/// caller drops afterwards. The subject and source ids of a batch are
/// known to the caller (one writer, a new tenant); Lethe looks them up.
/// Returns seconds: the whole, and the part spent computing the keys.
pub async fn ingest(
    pool: &PgPool,
    vector_table: &str,
    tenant_id: Uuid,
    collection_id: Uuid,
    batches: &[RawBatch],
) -> anyhow::Result<(f64, f64)> {
    let (mut subjects, mut sources): (HashMap<&str, Uuid>, HashMap<&str, Uuid>) = Default::default();
    let t = Instant::now();
    let mut keys_secs = 0.0;
    for batch in batches {
        let mut new_subjects: (Vec<Uuid>, Vec<&str>) = Default::default();
        let mut new_sources: (Vec<Uuid>, Vec<&str>) = Default::default();
        let (mut source_ids, mut tag_subjects, mut ordinals) = (Vec::new(), Vec::new(), Vec::new());
        let (mut flat, mut starts, mut lens) = (Vec::new(), Vec::new(), Vec::new());
        for (k, ((source, tag), text)) in batch.sources.iter().zip(&batch.tags).zip(&batch.texts).enumerate() {
            source_ids.push(*sources.entry(source).or_insert_with(|| {
                let id = Uuid::now_v7();
                new_sources.0.push(id);
                new_sources.1.push(source);
                id
            }));
            tag_subjects.push(*subjects.entry(tag).or_insert_with(|| {
                let id = Uuid::now_v7();
                new_subjects.0.push(id);
                new_subjects.1.push(tag);
                id
            }));
            let k0 = Instant::now();
            let keys = lethe::residual::index::terms(tenant_id, text);
            keys_secs += k0.elapsed().as_secs_f64();
            starts.push(i32::try_from(flat.len())?);
            lens.push(i32::try_from(keys.len())?);
            flat.extend(keys);
            ordinals.push(i32::try_from(k)?);
        }
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO subjects (subject_id, tenant_id, external_id, subject_hash) \
             SELECT id, $1, ext, convert_to(ext, 'UTF8') FROM UNNEST($2::uuid[], $3::text[]) AS s(id, ext) \
             ON CONFLICT (tenant_id, subject_hash) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(&new_subjects.0)
        .bind(&new_subjects.1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sources (source_id, tenant_id, collection_id, external_id) \
             SELECT id, $1, $2, ext FROM UNNEST($3::uuid[], $4::text[]) AS s(id, ext) \
             ON CONFLICT (collection_id, external_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(&new_sources.0)
        .bind(&new_sources.1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO chunks (chunk_id, tenant_id, collection_id, source_id, ordinal, text, shared, terms) \
             SELECT c.id, $1, $2, c.src, c.ord, c.txt, false, COALESCE(($7::int[])[c.start + 1 : c.start + c.len], '{}') \
             FROM UNNEST($3::uuid[], $4::uuid[], $5::int[], $6::text[], $8::int[], $9::int[]) AS c(id, src, ord, txt, start, len)",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(&batch.ids)
        .bind(&source_ids)
        .bind(&ordinals)
        .bind(&batch.texts)
        .bind(&flat)
        .bind(&starts)
        .bind(&lens)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO chunk_subjects (chunk_id, subject_id, tenant_id, collection_id, role) \
             SELECT c, s, $1, $2, 'owner' FROM UNNEST($3::uuid[], $4::uuid[]) AS t(c, s)",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(&batch.ids)
        .bind(&tag_subjects)
        .execute(&mut *tx)
        .await?;
        crate::measure::raw_upsert_one(&mut *tx, vector_table, tenant_id, batch).await?;
        tx.commit().await?;
    }
    crate::setup::settle_residual_index(pool).await?;
    Ok((t.elapsed().as_secs_f64(), keys_secs))
}

/// The ingest floor's row: its slowdown against raw, with Lethe's against it.
pub fn ingest_row(backend: &str, what: &str, lethe: &[f64], floor: &[(f64, f64)], raw: &[f64]) -> crate::report::Row {
    use crate::report::{Row, Stats};
    let keys = Stats::of(&floor.iter().map(|f| f.1).collect::<Vec<_>>()).median;
    let floor: Vec<f64> = floor.iter().map(|f| f.0).collect();
    let lethe_to_floor = Stats::of(lethe).median / Stats::of(&floor).median;
    Row::new(backend, &format!("the guarantees' floor of ingest: {what}"), "s", &floor, Some(raw)).goal("what ratio ≤ 1.3 leaves").note(format!(
        "plain SQL of what lineage requires, no Lethe code: per 1,000 points one transaction of new subjects, new sources, chunks with texts and \
         residual index keys (computed in the clock: {keys:.2} s of it), tags and the raw vector statement, into Lethe's own tables for a tenant \
         and collection of its own, then the residual index's pending list merged; no screening, suppression check, locks or gRPC; \
         ratio: floor / raw; Lethe / floor {lethe_to_floor:.1}"
    ))
}
