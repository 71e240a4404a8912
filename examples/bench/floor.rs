//! The guarantees' floor: what Lethe's promises cost the database when
//! written as plainly as SQL allows, with none of Lethe's own code (no
//! fencing, no locks against concurrent writes, no log entry or
//! certificate, no events). Set beside Lethe and the raw baseline, it splits
//! a ratio into what the promise costs and what Lethe adds to it.

use std::collections::HashMap;
use std::time::Instant;

use lethe::grpc::pb;
use sqlx::PgPool;
use uuid::Uuid;

use crate::measure::RawBatch;

/// What the guarantees cost the database before any of Lethe's own
/// work: the subject's lineage ids read, its points counted by tag and by
/// those ids, deleted by both, counted again both ways, and its lineage
/// (chunks with their texts, its tags, the sources left empty) deleted in
/// one transaction. Each statement alone, as plainly as SQL allows; no log
/// entry, no certificate, no fencing, no locks against concurrent writes.
/// The subject's id (`subject_ids`) is looked up before the clock starts.
/// Returns the total ms and each step's: ids, counts before, delete, counts
/// after, lineage.
/// Lineage's ids of the subjects tagged `tags` (their external ids) in the tenant.
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
    let sources: Vec<Uuid> =
        sqlx::query_scalar("WITH gone AS (DELETE FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2) RETURNING source_id) SELECT DISTINCT source_id FROM gone")
            .bind(tenant_id)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM chunk_subjects WHERE subject_id = $1").bind(subject).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM sources s WHERE s.source_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.source_id = s.source_id)")
        .bind(&sources)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    steps[4] = lap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        before == (expected, expected) && after == (0, 0),
        "floor erase of {tag}: {before:?} before, {after:?} after"
    );
    Ok((ms, steps))
}


/// Scratch tables of the ingest floor, `LIKE` Lethe's (columns, indexes and
/// their storage options, the residual index's GIN among them; no foreign
/// keys), and the vector table `LIKE` the collection's.
const LINEAGE: [&str; 4] = ["subjects", "sources", "chunks", "chunk_subjects"];

/// What the lineage guarantees cost ingest, written plainly: per request of
/// 1,000 points one transaction inserting the new subjects, the new
/// sources, the chunks with their texts and residual index keys
/// (`lethe::residual::index::terms`, computed inside the clock: every
/// write needs them), their tags, and the vectors (the raw statement), then
/// the residual index's pending list merged, as Lethe's figure is timed.
/// Returns seconds: the whole, and the part spent computing the keys.
pub async fn ingest(
    pool: &PgPool,
    vector_table: &str,
    tenant_id: Uuid,
    points: &[pb::TrackedPoint],
    batches: &[RawBatch],
) -> anyhow::Result<(f64, f64)> {
    let scratch = |t: &str| format!("bench_floor_{t}");
    let mut ddl = String::new();
    for t in LINEAGE {
        ddl.push_str(&format!("DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (LIKE {t} INCLUDING ALL);", scratch(t)));
    }
    ddl.push_str(&format!(
        "DROP TABLE IF EXISTS bench_floor_vectors; CREATE TABLE bench_floor_vectors (LIKE \"{vector_table}\" INCLUDING ALL);"
    ));
    sqlx::raw_sql(&ddl).execute(pool).await?;
    let collection_id = Uuid::now_v7();
    let (mut subjects, mut sources): (HashMap<String, Uuid>, HashMap<String, Uuid>) = Default::default();
    let t = Instant::now();
    let mut keys_secs = 0.0;
    for (points, batch) in points.chunks(1000).zip(batches) {
        let mut new_subjects: (Vec<Uuid>, Vec<String>) = Default::default();
        let mut new_sources: (Vec<Uuid>, Vec<String>) = Default::default();
        let (mut ids, mut source_ids, mut ordinals, mut texts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut flat, mut starts, mut lens) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tag_chunks, mut tag_subjects, mut roles) = (Vec::new(), Vec::new(), Vec::new());
        for (k, p) in points.iter().enumerate() {
            let chunk: Uuid = p.point_id.parse()?;
            let source = *sources.entry(p.source_id.clone()).or_insert_with(|| {
                let id = Uuid::now_v7();
                new_sources.0.push(id);
                new_sources.1.push(p.source_id.clone());
                id
            });
            let k0 = Instant::now();
            let keys = lethe::residual::index::terms(tenant_id, &p.text);
            keys_secs += k0.elapsed().as_secs_f64();
            starts.push(i32::try_from(flat.len())?);
            lens.push(i32::try_from(keys.len())?);
            flat.extend(keys);
            ids.push(chunk);
            source_ids.push(source);
            ordinals.push(i32::try_from(k)?);
            texts.push(p.text.as_str());
            for tag in &p.tags {
                let subject = *subjects.entry(tag.subject_id.clone()).or_insert_with(|| {
                    let id = Uuid::now_v7();
                    new_subjects.0.push(id);
                    new_subjects.1.push(tag.subject_id.clone());
                    id
                });
                tag_chunks.push(chunk);
                tag_subjects.push(subject);
                roles.push("owner");
            }
        }
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO bench_floor_subjects (subject_id, tenant_id, external_id, subject_hash) \
             SELECT id, $1, ext, convert_to(ext, 'UTF8') FROM UNNEST($2::uuid[], $3::text[]) AS s(id, ext)",
        )
        .bind(tenant_id)
        .bind(&new_subjects.0)
        .bind(&new_subjects.1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bench_floor_sources (source_id, tenant_id, collection_id, external_id) \
             SELECT id, $1, $2, ext FROM UNNEST($3::uuid[], $4::text[]) AS s(id, ext)",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(&new_sources.0)
        .bind(&new_sources.1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bench_floor_chunks (chunk_id, tenant_id, collection_id, source_id, ordinal, text, shared, terms) \
             SELECT c.id, $1, $2, c.src, c.ord, c.txt, false, COALESCE(($7::int[])[c.start + 1 : c.start + c.len], '{}') \
             FROM UNNEST($3::uuid[], $4::uuid[], $5::int[], $6::text[], $8::int[], $9::int[]) AS c(id, src, ord, txt, start, len)",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(&ids)
        .bind(&source_ids)
        .bind(&ordinals)
        .bind(&texts)
        .bind(&flat)
        .bind(&starts)
        .bind(&lens)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bench_floor_chunk_subjects (chunk_id, subject_id, tenant_id, collection_id, role) \
             SELECT c, s, $1, $2, r FROM UNNEST($3::uuid[], $4::uuid[], $5::text[]) AS t(c, s, r)",
        )
        .bind(tenant_id)
        .bind(collection_id)
        .bind(&tag_chunks)
        .bind(&tag_subjects)
        .bind(&roles)
        .execute(&mut *tx)
        .await?;
        crate::measure::raw_upsert_one(&mut *tx, "bench_floor_vectors", tenant_id, batch).await?;
        tx.commit().await?;
    }
    let terms_index: String = sqlx::query_scalar(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'bench_floor_chunks'::regclass \
         AND pg_get_indexdef(indexrelid) LIKE '%gin (terms)%'",
    )
    .fetch_one(pool)
    .await?;
    sqlx::query("SELECT gin_clean_pending_list($1::regclass)").bind(&terms_index).execute(pool).await?;
    let secs = t.elapsed().as_secs_f64();
    let mut ddl = "DROP TABLE bench_floor_vectors;".to_owned();
    for t in LINEAGE {
        ddl.push_str(&format!("DROP TABLE {};", scratch(t)));
    }
    sqlx::raw_sql(&ddl).execute(pool).await?;
    Ok((secs, keys_secs))
}

/// The ingest floor's row: floor against raw, with Lethe against the floor.
pub fn ingest_row(backend: &str, what: &str, lethe: &[f64], floor: &[(f64, f64)], raw: &[f64]) -> crate::report::Row {
    use crate::report::{Row, Stats};
    let keys = Stats::of(&floor.iter().map(|f| f.1).collect::<Vec<_>>()).median;
    let floor: Vec<f64> = floor.iter().map(|f| f.0).collect();
    let floor = floor.as_slice();
    let lethe_to_floor = Stats::of(lethe).median / Stats::of(floor).median;
    Row::new(backend, &format!("the guarantees' floor of ingest: {what}"), "s", floor, Some(raw)).goal("what ratio ≤ 1.3 leaves").note(format!(
        "plain SQL of what lineage requires, no Lethe code: per 1,000 points one transaction of new subjects, new sources, chunks with texts and \
         residual index keys (computed in the clock: {keys:.2} s of it), tags and the raw vector statement, into scratch tables LIKE Lethe's (no foreign keys), \
         then the residual index's pending list merged; no screening, suppression check, locks or gRPC; ratio: floor / raw; Lethe / floor {lethe_to_floor:.1}"
    ))
}
