//! The pgvector measurements. Every Lethe figure has its raw counterpart
//! measured in the same run on the same table (or an identical one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lethe::grpc::pb;
use lethe::vector_store::{PgVectorStore, VectorStore};
use pgvector::Vector;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Args;
use crate::client::{LetheSide, calls_per_second, erase_all, generations, lethe_erase, own_share_row, terminal, track};
use crate::data::{DIM, DataSet, vector};
use crate::report::{Row, Stats};
use crate::setup::{Env, req};

const BACKEND: &str = "pgvector";

pub async fn pgvector(args: &Args, env: &mut Env, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<()> {
    if args.runs("erase") {
        erase_one(args, env, env.data.big, "erase one subject: the large subject (N/100)", rows, notes).await?;
        let small = *env.data.tens.last().expect("subjects of 10");
        erase_one(args, env, small, "erase one subject: 10 vectors", rows, notes).await?;
        verify_log(args, env, rows).await?;
    }
    if args.runs("throughput") {
        throughput(args, env, rows).await?;
    }
    if args.runs("ingest") {
        ingest(args, env, rows).await?;
        crate::residual::ingest_text(args, env, rows).await?;
    }
    if args.runs("screening") {
        screening(args, env, rows, notes).await?;
    }
    if args.runs("search") {
        search(args, env, rows, notes).await?;
    }
    if args.runs("residual") {
        residual(args, env, rows).await?;
        crate::residual::residual(args, env, rows).await?;
    }
    if args.runs("embed") {
        embed(args, env, rows, notes).await?;
    }
    if args.runs("reindex") {
        reindex(args, env, rows).await?;
    }
    Ok(())
}

/// VerifyDeletionLog of the data set's tenant, after the erasures above:
/// the whole chain in one snapshot, its signed head, every certificate's
/// claim (no raw counterpart).
async fn verify_log(args: &Args, env: &Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mut ms = Vec::new();
    let mut entries = 0;
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        let v = env
            .client
            .clone()
            .verify_deletion_log(req(&env.ak, pb::VerifyDeletionLogRequest::default()))
            .await?
            .into_inner();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(v.valid, "the benchmark's log does not verify: {}", v.problem);
        entries = v.entries_checked;
    }
    eprintln!("    verify the deletion log: {entries} entries, median {:.0} ms", Stats::of(&ms).median);
    rows.push(
        Row::new(BACKEND, &format!("verify the deletion log: {entries} entries and their certificates"), "ms", &ms, None)
            .note("VerifyDeletionLog: every entry's hash and link recomputed in one snapshot, the signed head, every certificate's claimed entry (an anti-join in PostgreSQL)"),
    );
    Ok(())
}

/// The raw backend doing the bare minimum: count, delete by tag, count.
async fn raw_erase(pool: &PgPool, table: &str, tag: &str, expected: i64) -> anyhow::Result<f64> {
    let count = format!("SELECT count(*) FROM \"{table}\" WHERE subjects @> ARRAY[$1]::text[]");
    let t = Instant::now();
    let before: i64 = sqlx::query_scalar(&count).bind(tag).fetch_one(pool).await?;
    sqlx::query(&format!("DELETE FROM \"{table}\" WHERE subjects @> ARRAY[$1]::text[]"))
        .bind(tag)
        .execute(pool)
        .await?;
    let after: i64 = sqlx::query_scalar(&count).bind(tag).fetch_one(pool).await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(before == expected && after == 0, "raw erase of {tag}: {before} before, {after} after");
    Ok(ms)
}

async fn erase_one(
    args: &Args,
    env: &Env,
    subject: u32,
    figure: &str,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let large = (subject == env.data.big).then_some(args.large_size).flatten();
    let size = large.unwrap_or(env.data.members[subject as usize].len());
    let points = |g| match large {
        Some(m) => env.data.sized_points(subject, m, g),
        None => env.data.subject_points(subject, g),
    };
    eprintln!("==> {figure} ({size} vectors), {} runs", args.runs);
    let first = generations(&env.raw, 3 * args.runs as u32).await?;
    let (mut lethe, mut raw, mut floor, mut splits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut floor_steps: [Vec<f64>; 5] = Default::default();
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in 0..args.runs as u32 {
        let g = first + 3 * r;
        track(env, &env.sk, "bench", points(g), 2).await?;
        // Neither erasure beside the residual index's merge of what was just tracked.
        crate::setup::settle_residual_index(&env.raw).await?;
        let (ms, st, split) = lethe_erase(env, &DataSet::tag(subject, g)).await?;
        for (s, v) in st {
            stages.entry(s).or_default().push(v);
        }
        lethe.push(ms);
        splits.push((ms, split));
        track(env, &env.sk, "bench", points(g + 1), 2).await?;
        crate::setup::settle_residual_index(&env.raw).await?;
        raw.push(raw_erase(&env.raw, &env.table, &DataSet::tag(subject, g + 1), size as i64).await?);
        track(env, &env.sk, "bench", points(g + 2), 2).await?;
        crate::setup::settle_residual_index(&env.raw).await?;
        let tag = DataSet::tag(subject, g + 2);
        let id = crate::floor::subject_ids(&env.raw, env.tenant_id, std::slice::from_ref(&tag)).await?[&tag];
        let (ms_floor, steps) = crate::floor::erase(&env.raw, &env.table, env.tenant_id, id, &tag, size as i64).await?;
        floor.push(ms_floor);
        for (all, step) in floor_steps.iter_mut().zip(steps) {
            all.push(step);
        }
        eprintln!("    run {r}: Lethe {ms:.1} ms, raw {:.1} ms, the guarantees' floor {:.1} ms", raw[raw.len() - 1], floor[floor.len() - 1]);
    }
    let breakdown: Vec<String> = stages.iter().map(|(s, v)| format!("{s} {:.1}", Stats::of(v).median)).collect();
    notes.push(format!("{figure}: median ms per stage (from the job's events): {}", breakdown.join(", ")));
    let names = ["lineage ids", "counts before", "delete", "counts after", "lineage deleted"];
    let floor_breakdown: Vec<String> = names.iter().zip(&floor_steps).map(|(n, v)| format!("{n} {:.1}", Stats::of(v).median)).collect();
    notes.push(format!("{figure}: the guarantees' floor, median ms per step: {}", floor_breakdown.join(", ")));
    let what = format!("{} ({size} vectors)", figure.trim_start_matches("erase one subject: "));
    let figure = format!("{figure} ({size} vectors), ms");
    let goal = if size >= 1000 { "ratio ≤ 1.5" } else { "" };
    rows.push(
        Row::new(BACKEND, &figure, "ms", &lethe, Some(&raw))
            .goal(goal)
            .note("Lethe: the Erase call + the job's stages from its events (claim to log entry written), without the residual and physical stages; raw: count → DELETE WHERE tag → count"),
    );
    rows.push(own_share_row(BACKEND, &what, &splits, "vector-store calls are SQL on the workers' pool; "));
    let lethe_to_floor = Stats::of(&lethe).median / Stats::of(&floor).median;
    rows.push(
        Row::new(BACKEND, &format!("the guarantees' floor of erasing {what}, ms"), "ms", &floor, Some(&raw))
            .goal(if size >= 1000 { "what ratio ≤ 1.5 leaves" } else { "" })
            .note(format!(
                "plain SQL of what the issue requires, no Lethe code: lineage ids read, counts by tag and by ids before and after, delete by both, \
                 chunks + tags + emptied sources deleted and the subject tombstoned in one transaction (its id looked up before the clock); \
                 no log, fencing or locks; ratio: floor / raw; Lethe / floor {lethe_to_floor:.1}"
            )),
    );
    Ok(())
}

/// Small erasures in bulk, each run three ways on fresh subjects: Lethe with
/// `erasure.batch_size` 1 (one job per worker at a time), Lethe with the
/// configured batches, and the raw count → delete → count.
async fn throughput(args: &Args, env: &mut Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let jobs = args.jobs.unwrap_or(1000).min(env.data.tens.len() - 1);
    let subjects = env.data.tens[..jobs].to_vec();
    let workers = env.settings.erasure.workers;
    let batched = env.settings.clone();
    let batch = batched.erasure.batch_size;
    let mut single = batched.clone();
    single.erasure.batch_size = 1;
    eprintln!(
        "==> throughput: {jobs} subjects of 10 vectors erased concurrently, {workers} workers, batches of 1 and {batch}, {} runs",
        args.runs
    );
    // Per run: one generation for each of the two settings, one for raw, and
    // one for each service's warm-up, one for the guarantees' floor.
    let first = generations(&env.raw, 6 * args.runs as u32).await?;
    let warm = &subjects[..crate::client::WARM_UP.min(jobs)];
    let (mut lethe, mut one, mut raw, mut floor) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..args.runs as u32 {
        let g = first + 6 * r;
        for (settings, rates, g, w) in [(&single, &mut one, g, g + 3), (&batched, &mut lethe, g + 1, g + 4)] {
            env.restart(settings.clone()).await?;
            let points = warm.iter().flat_map(|&s| env.data.subject_points(s, w)).collect();
            let tags: Vec<String> = warm.iter().map(|&s| DataSet::tag(s, w)).collect();
            crate::client::warm_up(env, points, &tags).await?;
            let points = subjects.iter().flat_map(|&s| env.data.subject_points(s, g)).collect();
            track(env, &env.sk, "bench", points, 2).await?;
            crate::setup::settle_residual_index(&env.raw).await?;
            let tags: Vec<String> = subjects.iter().map(|&s| DataSet::tag(s, g)).collect();
            rates.push(erase_all(env, &tags).await?);
        }

        let points = subjects.iter().flat_map(|&s| env.data.subject_points(s, g + 2)).collect();
        track(env, &env.sk, "bench", points, 2).await?;
        crate::setup::settle_residual_index(&env.raw).await?;
        let env = &*env;
        let erasures = subjects.iter().map(|&s| async move { raw_erase(&env.raw, &env.table, &DataSet::tag(s, g + 2), 10).await });
        raw.push(calls_per_second(workers, erasures).await?);

        let points = subjects.iter().flat_map(|&s| env.data.subject_points(s, g + 5)).collect();
        track(env, &env.sk, "bench", points, 2).await?;
        crate::setup::settle_residual_index(&env.raw).await?;
        let tags: Vec<String> = subjects.iter().map(|&s| DataSet::tag(s, g + 5)).collect();
        let ids = crate::floor::subject_ids(&env.raw, env.tenant_id, &tags).await?;
        let erasures = tags.iter().map(|tag| crate::floor::erase(&env.raw, &env.table, env.tenant_id, ids[tag], tag, 10));
        floor.push(calls_per_second(workers, erasures).await?);
        eprintln!(
            "    run {r}: Lethe {:.1} jobs/s in batches of {batch}, {:.1} one at a time; raw {:.1} erasures/s; the guarantees' floor {:.1} erasures/s",
            lethe[lethe.len() - 1],
            one[one.len() - 1],
            raw[raw.len() - 1],
            floor[floor.len() - 1]
        );
    }
    let one = Stats::of(&one).median;
    rows.push(
        Row::new(
            BACKEND,
            &format!("erasure throughput: {jobs} subjects of 10 vectors at once, {workers} workers, batches of {batch}"),
            "jobs/s",
            &lethe,
            Some(&raw),
        )
        .goal("≥ 100 jobs/s")
        .note(format!(
            "Lethe: submit all, poll ListErasures until none is queued or running (then check each completed), with verification, log and certificate, residual search off, \
             each service warmed up first by {} untimed erasures; \
             one job at a time per worker (erasure.batch_size 1), other subjects, same run: {one:.1} jobs/s (batches {:.2}× that); \
             raw: count → delete → count per subject, {workers} connections",
            warm.len(),
            Stats::of(&lethe).median / one
        )),
    );
    let floor_over_lethe = Stats::of(&floor).median / Stats::of(&lethe).median;
    rows.push(
        Row::new(BACKEND, &format!("the guarantees' floor of erasure throughput: {jobs} subjects of 10 vectors"), "jobs/s", &floor, Some(&raw)).note(format!(
            "the floor of the erase rows (plain SQL: lineage ids, counts by tag and ids before and after, delete, lineage removed and the subject tombstoned; \
             no log, residual search, fencing or locks), one subject's statements at a time (not batched as Lethe's jobs are) on {workers} connections at once; \
             ratio: raw / floor (slowdown); floor / Lethe {floor_over_lethe:.1}"
        )),
    );
    Ok(())
}

/// One run of an ingest figure, in seconds.
pub(crate) struct Ingested {
    pub lethe: f64,
    /// Lethe's until Track returned (before the residual index's merge).
    pub tracked: f64,
    pub raw: f64,
    /// The guarantees' floor, and the part of it computing the residual index's keys.
    pub floor: (f64, f64),
}

/// Columns of the raw upsert.
pub(crate) struct RawBatch {
    pub ids: Vec<Uuid>,
    pub sources: Vec<String>,
    pub tags: Vec<String>,
    pub texts: Vec<String>,
    pub vectors: Vec<Vector>,
}

pub(crate) fn raw_batches(points: &[pb::TrackedPoint]) -> Vec<RawBatch> {
    points
        .chunks(1000)
        .map(|b| RawBatch {
            ids: b.iter().map(|p| p.point_id.parse().expect("uuid")).collect(),
            sources: b.iter().map(|p| p.source_id.clone()).collect(),
            tags: b.iter().map(|p| p.tags[0].subject_id.clone()).collect(),
            texts: b.iter().map(|p| p.text.clone()).collect(),
            vectors: b.iter().map(|p| Vector::from(p.vector.clone())).collect(),
        })
        .collect()
}

pub(crate) async fn raw_upsert(pool: &PgPool, table: &str, tenant: Uuid, batches: &[RawBatch]) -> anyhow::Result<()> {
    for b in batches {
        raw_upsert_one(pool, table, tenant, b).await?;
    }
    Ok(())
}

/// The raw statement for one batch.
pub(crate) async fn raw_upsert_one(ex: impl sqlx::PgExecutor<'_>, table: &str, tenant: Uuid, b: &RawBatch) -> anyhow::Result<()> {
    let sql = format!(
        r#"
        INSERT INTO "{table}" (point_id, tenant_id, source_id, subjects, text, embedding)
        SELECT id, $1, src, ARRAY[tag], txt, emb
        FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::vector[]) AS p(id, src, tag, txt, emb)
        ON CONFLICT (point_id) DO UPDATE
        SET source_id = EXCLUDED.source_id, subjects = EXCLUDED.subjects, text = EXCLUDED.text, embedding = EXCLUDED.embedding
        "#
    );
    sqlx::query(&sql)
        .bind(tenant)
        .bind(&b.ids)
        .bind(&b.sources)
        .bind(&b.tags)
        .bind(&b.texts)
        .bind(&b.vectors)
        .execute(ex)
        .await?;
    Ok(())
}

/// Track of M pre-computed vectors into a new, empty collection (its own
/// tenant) against the raw upsert of the same vectors into an identical table
/// (`LIKE … INCLUDING ALL`: same columns, GIN, btree and HNSW indexes).
async fn ingest(args: &Args, env: &Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let m = args.ingest_vectors.unwrap_or_else(|| env.data.n.min(100_000));
    let runs = args.ingest_runs.unwrap_or(args.runs);
    eprintln!("==> ingest: {m} vectors in batches of 1,000, {runs} runs");
    let first = generations(&env.raw, runs as u32).await?;
    let (mut lethe, mut raw, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs as u32 {
        let g = first + r;
        let points = points(env, m, g);
        let batches = raw_batches(&points);
        let run = ingest_once(args, env, "ingest", points, &batches, g, r).await?;
        lethe.push(run.lethe);
        raw.push(run.raw);
        floor.push(run.floor);
    }
    rows.push(
        Row::new(BACKEND, &format!("ingest: Track of {m} vectors with vectors, 1,000 per request"), "s", &lethe, Some(&raw))
            .goal("ratio ≤ 1.3")
            .note(if args.ingest_hnsw {
                "into an empty collection with its HNSW index; raw: INSERT … SELECT FROM UNNEST … ON CONFLICT, 1,000 rows per statement, into an identical table"
            } else {
                "into an empty collection whose HNSW index was dropped (same GIN/btree indexes); Lethe until its residual index's pending list is merged too; raw: INSERT … SELECT FROM UNNEST … ON CONFLICT, 1,000 rows per statement, into an identical table"
            }),
    );
    rows.push(crate::floor::ingest_row(BACKEND, &format!("Track of {m} vectors"), &lethe, &floor, &raw));
    Ok(())
}

/// One run of an ingest figure: `points` tracked into a new collection
/// `name` of a new tenant (generation `g`), against the raw upsert of
/// `batches` (the same rows, built before the clock starts) into an
/// identical table; the order alternates with `run`, so that neither side
/// always runs on a warmer cache. Lethe's time runs until the residual
/// index's pending list is merged too: its merger works in the background,
/// and would otherwise do it beside the raw run that follows. Returns
/// seconds, with the guarantees' floor (`floor::ingest`) of the same rows
/// measured after both.
pub(crate) async fn ingest_once(
    args: &Args,
    env: &Env,
    name: &str,
    points: Vec<pb::TrackedPoint>,
    batches: &[RawBatch],
    g: u32,
    run: u32,
) -> anyhow::Result<Ingested> {
    let (tenant, lethe_table) = fresh_collection(env, name, 0, g).await?;
    if !args.ingest_hnsw {
        // Both tables without HNSW: its insert cost is the same on both
        // sides and would hide Lethe's own overhead.
        sqlx::raw_sql(&format!("DROP INDEX \"{lethe_table}_hnsw\"")).execute(&env.raw).await?;
    }
    let raw_table = format!("bench_raw_{name}");
    sqlx::raw_sql(&format!(
        "DROP TABLE IF EXISTS {raw_table}; CREATE TABLE {raw_table} (LIKE \"{lethe_table}\" INCLUDING ALL)"
    ))
    .execute(&env.raw)
    .await?;
    let lethe_run = async {
        let t = Instant::now();
        track(env, &tenant.secret_key, name, points, 1).await?;
        let tracked = t.elapsed().as_secs_f64();
        crate::setup::settle_residual_index(&env.raw).await?;
        anyhow::Ok((t.elapsed().as_secs_f64(), tracked))
    };
    let raw_run = async {
        let t = Instant::now();
        raw_upsert(&env.raw, &raw_table, tenant.tenant_id, batches).await?;
        anyhow::Ok(t.elapsed().as_secs_f64())
    };
    let ((l, lt), w) = crate::client::in_turn(run, lethe_run, raw_run).await?;
    sqlx::raw_sql(&format!("DROP TABLE {raw_table}")).execute(&env.raw).await?;
    drop_tenant(env, tenant.tenant_id).await?;
    // The floor into a tenant and collection of its own, as Lethe's: the
    // same tables beside the data set's chunks.
    let (floor_tenant, floor_table) = fresh_collection(env, name, 0, g).await?;
    let floor = async {
        if !args.ingest_hnsw {
            sqlx::raw_sql(&format!("DROP INDEX \"{floor_table}_hnsw\"")).execute(&env.raw).await?;
        }
        let collection: Uuid = sqlx::query_scalar("SELECT collection_id FROM collections WHERE tenant_id = $1")
            .bind(floor_tenant.tenant_id)
            .fetch_one(&env.raw)
            .await?;
        crate::floor::ingest(&env.raw, &floor_table, floor_tenant.tenant_id, collection, batches).await
    }
    .await;
    drop_tenant(env, floor_tenant.tenant_id).await?;
    let floor = floor?;
    eprintln!(
        "    run {run}: Lethe {l:.1} s (Track returned after {lt:.1} s), raw {w:.1} s, the guarantees' floor {:.1} s ({:.1} s of it computing keys)",
        floor.0, floor.1
    );
    Ok(Ingested { lethe: l, tracked: lt, raw: w, floor })
}

/// Ingest-time screening (issue 10): Track of the same texts into a
/// collection with screening `report` and one with `accept`, alternating, in
/// a tenant with an erased person whom 1% of the texts name. Track embeds
/// nothing, so this is the worst case for the ratio; the CPU cost per chunk
/// is set beside the real model's embedding time in a note.
async fn screening(args: &Args, env: &Env, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let m = env.data.n.min(10_000);
    eprintln!("==> screening: Track of {m} vectors with text, report vs accept, {} runs", args.runs);
    let tenant = lethe::auth::create_tenant(&env.raw, &format!("bench-screening-{}", Uuid::new_v4())).await?;
    let sk = tenant.secret_key.as_str();
    let mut client = env.client.clone();
    for (name, policy) in [("screen_accept", pb::Screening::Accept), ("screen_report", pb::Screening::Report)] {
        let r = pb::CreateCollectionRequest {
            name: name.into(),
            backend: pb::Backend::Pgvector as i32,
            dimension: DIM as u32,
            screening: policy as i32,
            ..Default::default()
        };
        client.create_collection(req(sk, r)).await?;
    }
    let person = pb::SubjectRef {
        id: "erased-person".into(),
        identifiers: vec![
            pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Xavier Xu".into() },
            pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "xavier.xu@example.com".into() },
        ],
    };
    let job = client
        .erase(req(sk, pb::EraseRequest { subject: Some(person), requested_by: "bench".into(), ..Default::default() }))
        .await?
        .into_inner();
    loop {
        let j = client.get_erasure(req(sk, pb::GetErasureRequest { job_id: job.job_id.clone() })).await?.into_inner();
        if terminal(j.status) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    const PEOPLE: &[&str] = &["Ann Lee", "Bob Stone", "Cyd Marsh", "Dee Park", "Eve Quinn", "Fay Ortiz", "Gus Hale"];
    let text = |i: usize| {
        let who = if i.is_multiple_of(100) { "Xavier Xu" } else { PEOPLE[i % PEOPLE.len()] };
        let mail = who.to_lowercase().replace(' ', ".");
        format!("From: {who} <{mail}@example.com>\nTo: Team Desk\nSubject: Q3 numbers\n\n{}", sentence(i))
    };
    let batch = |run: &str| -> Vec<pb::TrackedPoint> {
        (0..m)
            .map(|i| {
                let mut p = DataSet::point(env.data.owner[i % env.data.n], i as u32, i, 0);
                p.point_id = crate::data::point_id(i as u32, 0, run).to_string();
                p.text = text(i);
                p
            })
            .collect()
    };
    let (mut report, mut accept) = (Vec::new(), Vec::new());
    for r in 0..args.runs as u32 {
        // Fresh ids every run and every invocation (chunk ids are global keys).
        let run_id = Uuid::new_v4().simple().to_string();
        let (a, b) = (batch(&format!("sa{run_id}")), batch(&format!("sr{run_id}")));
        let run = |name: &'static str, points: Vec<pb::TrackedPoint>| async move {
            let t = Instant::now();
            track(env, sk, name, points, 1).await?;
            anyhow::Ok(t.elapsed().as_secs_f64())
        };
        let (acc, rep) = crate::client::in_turn(r, run("screen_accept", a), run("screen_report", b)).await?;
        eprintln!("    run {r}: report {rep:.2} s, accept {acc:.2} s");
        report.push(rep);
        accept.push(acc);
    }
    rows.push(
        Row::new(BACKEND, &format!("ingest screening: Track of {m} vectors with text, policy report"), "s", &report, Some(&accept))
            .goal("ratio ≤ 1.1")
            .note("baseline: the same Track into a collection with screening accept; 1% of the texts name an erased person (listed as residuals)"),
    );
    // The CPU side alone: candidate mentions and their keyed hashes.
    let texts: Vec<String> = (0..m).map(text).collect();
    let t = Instant::now();
    let mut keys = 0usize;
    for t in &texts {
        for mention in lethe::screening::mentions(t) {
            for k in &mention.keys {
                std::hint::black_box(lethe::context::keyed_hash(b"bench-secret", k));
                keys += 1;
            }
        }
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / m as f64;
    notes.push(format!(
        "screening reads a chunk in {us:.1} µs of CPU ({:.1} keyed hashes per chunk), against some milliseconds \
         for the real model to embed it (embedding row): Ingest's drop is well under 1%",
        keys as f64 / m as f64
    ));
    // The tenant keeps its (append-only) deletion log; its vectors and lineage go.
    let tables: Vec<String> = sqlx::query_scalar("SELECT backend_name FROM collections WHERE tenant_id = $1")
        .bind(tenant.tenant_id)
        .fetch_all(&env.raw)
        .await?;
    for t in tables {
        sqlx::raw_sql(&format!("TRUNCATE \"{t}\"")).execute(&env.raw).await?;
    }
    sqlx::raw_sql(&format!(
        "DELETE FROM chunk_subjects WHERE tenant_id = '{0}'; DELETE FROM chunks WHERE tenant_id = '{0}'",
        tenant.tenant_id
    ))
    .execute(&env.raw)
    .await?;
    Ok(())
}

/// A fresh tenant with one pgvector collection holding `m` tracked vectors
/// (generation `g`); returns the tenant and the collection's table.
async fn fresh_collection(env: &Env, name: &str, m: usize, g: u32) -> anyhow::Result<(lethe::auth::NewTenant, String)> {
    let tenant = lethe::auth::create_tenant(&env.raw, &format!("bench-{name}-{}", Uuid::new_v4())).await?;
    let c = env
        .client
        .clone()
        .create_collection(req(
            &tenant.secret_key,
            pb::CreateCollectionRequest {
                name: name.into(),
                backend: pb::Backend::Pgvector as i32,
                dimension: DIM as u32,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    if m > 0 {
        track(env, &tenant.secret_key, name, points(env, m, g), 2).await?;
    }
    Ok((tenant, c.backend_name))
}

/// `m` vectors as tracked points of generation `g`: the data set's own for
/// the first N, then further vectors of the same stream (their owners cycle).
fn points(env: &Env, m: usize, g: u32) -> Vec<pb::TrackedPoint> {
    let mut ordinal = vec![0usize; env.data.subjects()];
    (0..m)
        .map(|i| {
            let s = env.data.owner[i % env.data.n];
            ordinal[s as usize] += 1;
            DataSet::point(s, i as u32, ordinal[s as usize] - 1, g)
        })
        .collect()
}

/// Drops a benchmark tenant with its lineage and its collection tables.
async fn drop_tenant(env: &Env, tenant_id: Uuid) -> anyhow::Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE ANY (\
         SELECT backend_name || '%' FROM collections WHERE tenant_id = $1)",
    )
    .bind(tenant_id)
    .fetch_all(&env.raw)
    .await?;
    for t in tables {
        sqlx::raw_sql(&format!("DROP TABLE IF EXISTS \"{t}\"")).execute(&env.raw).await?;
    }
    // Chunks and tags have no foreign keys (migration 7): delete them first.
    sqlx::raw_sql(&format!(
        "DELETE FROM chunk_subjects WHERE tenant_id = '{tenant_id}'; DELETE FROM chunks WHERE tenant_id = '{tenant_id}'; \
         DELETE FROM tenants WHERE tenant_id = '{tenant_id}'"
    ))
    .execute(&env.raw)
    .await?;
    Ok(())
}

/// Re-index in copy mode of a collection of M vectors against the raw copy
/// of its table into an identical one (`LIKE … INCLUDING ALL` + INSERT … SELECT).
async fn reindex(args: &Args, env: &Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let m = args.reindex_vectors.unwrap_or_else(|| env.data.n.min(20_000));
    eprintln!("==> re-index (copy) of a collection of {m} vectors, {} runs", args.runs);
    let first = generations(&env.raw, args.runs as u32).await?;
    let (mut lethe, mut raw) = (Vec::new(), Vec::new());
    for r in 0..args.runs as u32 {
        let (tenant, table) = fresh_collection(env, "reindex", m, first + r).await?;
        let t = Instant::now();
        let job = env
            .client
            .clone()
            .reindex(req(
                &tenant.secret_key,
                pb::ReindexRequest { collection: "reindex".into(), mode: pb::ReindexMode::Copy as i32 },
            ))
            .await?
            .into_inner();
        loop {
            let j = env
                .client
                .clone()
                .get_reindex(req(&tenant.secret_key, pb::GetReindexRequest { job_id: job.job_id.clone() }))
                .await?
                .into_inner();
            if terminal(j.status) {
                anyhow::ensure!(j.status == pb::JobStatus::Completed as i32, "re-index failed: {}", j.error);
                anyhow::ensure!(j.final_count == m as u64, "re-index kept {} of {m}", j.final_count);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let l = m as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        sqlx::raw_sql(&format!(
            "DROP TABLE IF EXISTS bench_raw_copy; CREATE TABLE bench_raw_copy (LIKE \"{table}\" INCLUDING ALL); \
             INSERT INTO bench_raw_copy SELECT * FROM \"{table}\""
        ))
        .execute(&env.raw)
        .await?;
        let w = m as f64 / t.elapsed().as_secs_f64();
        sqlx::raw_sql("DROP TABLE bench_raw_copy").execute(&env.raw).await?;
        drop_tenant(env, tenant.tenant_id).await?;
        eprintln!("    run {r}: Lethe {l:.0} vectors/s, raw {w:.0} vectors/s");
        lethe.push(l);
        raw.push(w);
    }
    rows.push(
        Row::new(BACKEND, &format!("re-index (copy) of a collection of {m} vectors"), "vectors/s", &lethe, Some(&raw))
            .note("Lethe: Reindex → GetReindex completed (new generation verified and switched in); raw: CREATE TABLE … (LIKE … INCLUDING ALL) + INSERT … SELECT"),
    );
    Ok(())
}

/// `search_exact` through the VectorStore trait (what residual search calls)
/// over the whole data set, with 1 and 32 probes.
async fn search(args: &Args, env: &Env, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let spec = lethe::store::lineage::collection_by_name(&env.raw, env.tenant_id, "bench")
        .await?
        .ok_or_else(|| anyhow::anyhow!("collection bench missing"))?;
    let store = PgVectorStore::new(env.raw.clone());
    for probes in [1usize, 32] {
        eprintln!("==> exact search, {probes} probes, {} runs", args.runs);
        let vectors: Vec<Vec<f32>> = (0..probes as u64).map(|k| vector(7, k)).collect();
        let mut ms = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            let hits = store.search_exact(&spec, &vectors, 0.5, 1000).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(hits.len() <= 1000);
        }
        eprintln!("    median {:.0} ms", Stats::of(&ms).median);
        rows.push(
            Row::new(
                BACKEND,
                &format!("exact search over N, {probes} probe(s) (residual stage's query)"),
                "ms",
                &ms,
                None,
            )
            .note("VectorStore::search_exact, threshold 0.5"),
        );
    }
    notes.push(
        "exact search: what the residual stage runs only for collections without stored text (words decide \
         elsewhere); the residual stage itself is the `residual search` row"
            .into(),
    );
    Ok(())
}

/// The residual stage's search for one subject, as the stage runs it
/// (`residual::search` with the subject's identifiers, its own chunks as
/// probes and its lineage ids excluded), over the whole data set, lexical
/// and semantic on. Subjects of 10 vectors in a fresh generation each time.
async fn residual(args: &Args, env: &Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mut settings = env.settings.clone();
    settings.residual.lexical = true;
    settings.residual.semantic = true;
    let ctx = lethe::context::Context::new(
        env.raw.clone(),
        lethe::startup::vector_stores(&settings, env.raw.clone()).await?,
        lethe::startup::embedder(&settings)?,
        std::sync::Arc::new(lethe::audit::Signer::load(&settings.audit.signing_key_file, true, &[])?),
        lethe::keys::provider(&settings.keys)?,
        settings,
    );
    let spec = lethe::store::lineage::collection_by_name(&env.raw, env.tenant_id, "bench")
        .await?
        .ok_or_else(|| anyhow::anyhow!("collection bench missing"))?;
    let store = PgVectorStore::new(env.raw.clone());
    let searches = (args.runs * 4).max(5);
    eprintln!("==> residual search for one subject (10 vectors, 1 e-mail), lexical and semantic, {searches} subjects");
    let first = generations(&env.raw, searches as u32).await?;
    let subjects = &env.data.tens[..searches.min(env.data.tens.len())];
    let mut ms = Vec::new();
    for (k, &subject) in subjects.iter().enumerate() {
        let g = first + k as u32;
        let tag = DataSet::tag(subject, g);
        track(env, &env.sk, "bench", env.data.subject_points(subject, g), 1).await?;
        let own: Vec<Uuid> =
            env.data.subject_points(subject, g).iter().map(|p| p.point_id.parse()).collect::<Result<_, _>>()?;
        let t = Instant::now();
        let probes = store
            .retrieve(&spec, &own, true)
            .await?
            .into_iter()
            .filter_map(|p| p.vector.map(|v| lethe::residual::Probe { text: p.payload.text, vector: v }))
            .collect();
        let query = lethe::residual::ResidualQuery {
            identifiers: vec![lethe::domain::Identifier {
                kind: lethe::domain::IdentifierKind::Email,
                value: format!("{tag}@bench.example"),
            }],
            probes,
            exclude: own.iter().copied().collect(),
            limit: ctx.settings.residual.max_candidates,
            // As in the erase job's residual stage.
            deadline: None,
        };
        let found = lethe::residual::search(&ctx, env.tenant_id, &query).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        raw_erase(&env.raw, &env.table, &tag, 10).await?;
        eprintln!("    {tag}: {:.0} ms, {} candidates", ms[ms.len() - 1], found.len());
    }
    let st = Stats::of(&ms);
    rows.push(
        Row::new(BACKEND, &format!("residual search for one subject over N (p50; p95 {:.0} ms)", st.p95), "ms", &ms, None)
            .note("residual::search as the residual stage calls it: 1 e-mail, the subject's 10 own chunks as probes, lexical and semantic on, through the residual index (synthetic one-line texts: see the row over chunks of text)"),
    );
    Ok(())
}

fn sentence(k: usize) -> String {
    const WORDS: &[&str] = &[
        "pipeline", "review", "meeting", "contract", "invoice", "customer", "shipment", "Thursday", "account",
        "storage", "numbers", "limit", "report", "expense", "trip", "draft", "clause", "legal", "desk", "model",
    ];
    let mut rng = crate::data::Rng::new(k as u64);
    (0..60).map(|_| WORDS[rng.below(WORDS.len())]).collect::<Vec<_>>().join(" ")
}

async fn embed(args: &Args, env: &Env, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let mut s = env.settings.clone();
    s.embedding.provider = lethe::config::EmbeddingProvider::Fastembed;
    let model = match lethe::startup::embedder(&s) {
        Ok(m) => m,
        Err(e) => {
            notes.push(format!("embedding throughput not measured: {e:#}"));
            return Ok(());
        }
    };
    // Fewer chunks at small sizes keep the CI run short.
    let chunks = if env.data.n < 100_000 { 64 } else { 256 };
    let texts: Vec<String> = (0..chunks).map(sentence).collect();
    model.embed(texts[..32].to_vec()).await?;
    eprintln!(
        "==> embedding: {} chunks of 60 words, batch {}, {} runs",
        texts.len(),
        s.embedding.batch_size,
        args.runs
    );
    let mut rates = Vec::new();
    for _ in 0..args.runs {
        let t = Instant::now();
        model.embed(texts.clone()).await?;
        rates.push(texts.len() as f64 / t.elapsed().as_secs_f64());
    }
    rows.push(
        Row::new(
            "–",
            &format!(
                "embedding: {} ({} threads), batch {}",
                s.embedding.model_name, s.embedding.threads, s.embedding.batch_size
            ),
            "chunks/s",
            &rates,
            None,
        )
        .note(format!("{chunks} chunks of 60 words; shares the CPU with everything else on the machine")),
    );
    Ok(())
}

impl LetheSide for Env {
    fn client(&self) -> &lethe::grpc::pb::lethe_client::LetheClient<tonic::transport::Channel> {
        &self.client
    }
    fn sk(&self) -> &str {
        &self.sk
    }
    fn ak(&self) -> &str {
        &self.ak
    }
    fn calls(&self) -> &lethe::vector_store::CallLog {
        &self.calls
    }
}
