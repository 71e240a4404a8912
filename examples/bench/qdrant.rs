//! The Qdrant side: the same figures as the pgvector side (`measure.rs`),
//! each against raw `qdrant-client` doing the bare minimum, in the same run.
//!
//! Target: `QDRANT_URL` (gRPC, port 6334; `QDRANT_API_KEY` if it needs one)
//! — a real Qdrant: the figures are real; the data set is kept in it and
//! reused — or else the stand-in
//! `qdrant-standin/target/debug/qdrant-standin` on a temporary data directory
//! (Qdrant's engine, qdrant-edge, in a debug build behind Qdrant's gRPC API:
//! the figures are indicative only, and the data set is rebuilt every run).
//!
//! Lethe runs in-process a second time, with the Qdrant URL set, on its own
//! lineage database `lethe_bench_qdrant_<n>` (n = the Qdrant data set's size).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use lethe::config::Settings;
use lethe::domain::CollectionSpec;
use lethe::grpc::pb::{self, lethe_client::LetheClient};
use lethe::vector_store::{QdrantStore, VectorStore};
use qdrant_client::Qdrant;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, KeywordIndexParamsBuilder, ListValue, OptimizersConfigDiffBuilder, PointId,
    PointStruct, UpdateResult, UpdateStatus, UpsertPointsBuilder, Value, VectorParamsBuilder, Vectors,
    WalConfigDiffBuilder,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::io::AsyncBufReadExt;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::Args;
use crate::client::{LetheSide, erase_all, generations, lethe_erase, own_share_row, track};
use crate::data::{DIM, DataSet, vector};
use crate::report::{Row, Stats};
use crate::setup::req;

const BACKEND: &str = "qdrant";
/// GetErasure polling while one job runs (as on the pgvector side).
/// The stand-in's data set is capped at this size unless `--qdrant-size` says otherwise.
const STANDIN_CAP: usize = 100_000;
/// Client-side deadline of Lethe's and the raw client's Qdrant requests.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Where the Qdrant figures come from.
struct Target {
    url: String,
    /// The stand-in process and its temporary data directory (`None` with `QDRANT_URL`).
    standin: Option<(tokio::process::Child, tempfile::TempDir)>,
    version: String,
}

impl Target {
    fn is_standin(&self) -> bool {
        self.standin.is_some()
    }

    async fn start() -> anyhow::Result<Self> {
        if let Some(url) = std::env::var("QDRANT_URL").ok().filter(|u| !u.is_empty()) {
            return Ok(Self { url, standin: None, version: String::new() });
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("qdrant-standin");
        let bin = root.join("target/debug/qdrant-standin");
        if !bin.exists() {
            eprintln!("==> building the Qdrant stand-in (a cold build takes long)");
            let status = tokio::process::Command::new("cargo")
                .args(["build", "--bin", "qdrant-standin"])
                .current_dir(&root)
                .status()
                .await?;
            anyhow::ensure!(status.success(), "building qdrant-standin failed");
        }
        let dir = tempfile::Builder::new().prefix("lethe-bench-qdrant-").tempdir()?;
        let stderr = std::fs::File::create(dir.path().join("standin.log"))?;
        let mut child = tokio::process::Command::new(&bin)
            .args(["--port", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stand-in stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the stand-in did not start within 60 s")??
            .context("the stand-in exited before listening")?;
        let addr = line
            .strip_prefix("qdrant-standin listening on ")
            .with_context(|| format!("unexpected stand-in output: {line}"))?
            .trim()
            .to_owned();
        // Keep reading stdout so that the stand-in never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        eprintln!("==> Qdrant stand-in on {addr} (data in {})", dir.path().display());
        Ok(Self { url: format!("http://{addr}"), standin: Some((child, dir)), version: String::new() })
    }

    async fn stop(mut self) {
        if let Some((mut child, dir)) = self.standin.take() {
            let _ = child.kill().await;
            drop(dir);
        }
    }
}

/// Everything the Qdrant measurements need.
struct QEnv {
    client: LetheClient<Channel>,
    sk: String,
    ak: String,
    tenant_id: Uuid,
    /// Lethe's `bench` collection (its `backend_name` is the alias).
    spec: Option<CollectionSpec>,
    /// The physical collection behind the alias: what the raw side addresses.
    physical: String,
    /// Lineage database of this Lethe instance, for housekeeping.
    pool: PgPool,
    /// Lethe's own Qdrant backend, for `search_exact` and cleanup.
    store: QdrantStore,
    /// The raw baseline's client.
    raw: Qdrant,
    data: Option<DataSet>,
    n: usize,
    settings: Settings,
    standin: bool,
    /// The service's vector-store calls.
    calls: std::sync::Arc<lethe::vector_store::CallLog>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl QEnv {
    fn adopt(&mut self, found: Found) {
        self.sk = found.sk;
        self.ak = found.ak;
        self.tenant_id = found.tenant_id;
        self.physical = found.physical;
        self.spec = Some(found.spec);
    }

    fn data(&self) -> &DataSet {
        self.data.as_ref().expect("data set loaded")
    }

    fn spec(&self) -> &CollectionSpec {
        self.spec.as_ref().expect("data set loaded")
    }

    /// Every Qdrant row's note starts with this.
    fn caveat(&self) -> String {
        if self.standin {
            format!(
                "**stand-in** (qdrant-edge 0.7.2 debug build behind Qdrant's gRPC API, not a Qdrant server): indicative only; Qdrant N = {}. ",
                self.n
            )
        } else {
            format!("Qdrant N = {}. ", self.n)
        }
    }
}

/// Runs the Qdrant figures; returns the Postgres version of the lineage database.
pub async fn run(args: &Args, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let sections = ["erase", "throughput", "ingest", "search"];
    if !sections.iter().any(|s| args.runs(s)) {
        return Ok(None);
    }
    let mut target = Target::start().await?;
    let outcome = measure(args, &mut target, rows, notes).await;
    target.stop().await;
    outcome
}

async fn measure(
    args: &Args,
    target: &mut Target,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<String>> {
    let n = args.qdrant_size.unwrap_or(if target.is_standin() { args.size.min(STANDIN_CAP) } else { args.size });
    anyhow::ensure!(n >= 2000, "--qdrant-size must be at least 2000");
    let mut env = start(args, target, n).await?;
    let postgres: String =
        sqlx::query_scalar("SELECT 'PostgreSQL ' || current_setting('server_version')").fetch_one(&env.pool).await?;
    notes.push(format!(
        "Qdrant: {} at {} (server version {}); N = {n} for the Qdrant figures{}; lineage in Postgres database lethe_bench_qdrant_{n}",
        if env.standin { "stand-in (qdrant-edge 0.7.2, debug build)" } else { "QDRANT_URL" },
        target.url,
        target.version,
        if env.standin && args.qdrant_size.is_none() && n < args.size {
            format!(" (capped at {STANDIN_CAP} on the stand-in; --qdrant-size to change)")
        } else {
            String::new()
        },
    ));
    if ["erase", "throughput", "search"].iter().any(|s| args.runs(s)) {
        load(&mut env, notes).await?;
    }
    if args.runs("erase") {
        let big = env.data().big;
        erase_one(args, &env, big, "erase one subject: the large subject (N/100)", rows, notes).await?;
        let small = *env.data().tens.last().expect("subjects of 10");
        erase_one(args, &env, small, "erase one subject: 10 vectors", rows, notes).await?;
    }
    if args.runs("throughput") {
        throughput(args, &env, rows).await?;
    }
    if args.runs("ingest") {
        ingest(args, &env, rows).await?;
    }
    if args.runs("search") {
        search(args, &env, rows).await?;
    }
    Ok(Some(postgres))
}

/// The lineage database, Lethe in-process with the Qdrant URL, and the clients.
async fn start(args: &Args, target: &mut Target, n: usize) -> anyhow::Result<QEnv> {
    let base = std::env::var("DATABASE_URL").context("DATABASE_URL (run `. scripts/env.sh`)")?;
    let (prefix, _) = base.rsplit_once('/').context("DATABASE_URL has a database name")?;
    let name = format!("lethe_bench_qdrant_{n}");
    let url = format!("{prefix}/{name}");
    let api_key = std::env::var("QDRANT_API_KEY").ok().filter(|k| !k.is_empty() && !target.is_standin());
    let store = QdrantStore::connect(&target.url, api_key.clone(), TIMEOUT).await?;
    let mut admin = PgConnection::connect(&base).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    // The stand-in's data is gone with its temporary directory, so the
    // lineage goes too; a real Qdrant's data set is kept while it is whole.
    let keep = exists && !target.is_standin() && {
        let pool = PgPoolOptions::new().max_connections(1).connect(&url).await?;
        let whole = find_dataset(&pool, &store, n).await?.is_some();
        if !whole {
            eprintln!("==> {name}: no complete Qdrant data set of an earlier run; building it anew");
            drop_qdrant_collections(&pool, &store).await;
        }
        pool.close().await;
        whole
    };
    if exists && !keep {
        sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).execute(&mut admin).await?;
    }
    if !keep {
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await?;
    }
    admin.close().await?;

    let mut settings = crate::setup::settings(&url, args)?;
    settings.qdrant.url.clone_from(&target.url);
    settings.qdrant.timeout_secs = TIMEOUT.as_secs();
    settings.qdrant.api_key = api_key.clone().map(secrecy::SecretString::from);
    if let Some(dir) = settings.audit.signing_key_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let calls = std::sync::Arc::new(lethe::vector_store::CallLog::default());
    let (client, stop) = crate::setup::serve(&settings, &calls).await?;
    let pool = PgPoolOptions::new().max_connections(4).connect(&url).await?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        .execute(&pool)
        .await?;
    let builder = Qdrant::from_url(&target.url).api_key(api_key).timeout(TIMEOUT);
    let raw = tokio::task::spawn_blocking(move || builder.build()).await??;
    target.version = raw.health_check().await?.version;
    Ok(QEnv {
        client,
        sk: String::new(),
        ak: String::new(),
        tenant_id: Uuid::nil(),
        spec: None,
        physical: String::new(),
        pool,
        store,
        raw,
        data: None,
        n,
        settings,
        standin: target.is_standin(),
        calls,
        _stop: stop,
    })
}

/// Tracks the data set (2 requests in flight, 1,000 points each) into a new
/// Qdrant collection `bench` of its own tenant, unless a real Qdrant still
/// holds it from an earlier run.
async fn load(env: &mut QEnv, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let t = Instant::now();
    let data = DataSet::new(env.n);
    eprintln!(
        "==> Qdrant data set: {} vectors, {} subjects (largest {}, {} of exactly 10), generated in {:.1} s",
        data.n,
        data.subjects(),
        data.members[data.big as usize].len(),
        data.tens.len(),
        t.elapsed().as_secs_f64()
    );
    env.data = Some(data);

    if let Some((meta, found)) = find_dataset(&env.pool, &env.store, env.n).await? {
        env.adopt(found);
        notes.push(format!(
            "Qdrant data set built {} (reused): Track of {} vectors through Lethe took {:.0} s",
            meta["built_at"].as_str().unwrap_or_default(),
            env.n,
            meta["load_secs"].as_f64().unwrap_or(f64::NAN)
        ));
        return Ok(());
    }

    let tenant = lethe::auth::create_tenant(&env.pool, &format!("bench-qdrant-{}", env.n)).await?;
    env.client
        .create_collection(req(
            &tenant.secret_key,
            pb::CreateCollectionRequest {
                name: "bench".into(),
                backend: pb::Backend::Qdrant as i32,
                dimension: DIM as u32,
                ..Default::default()
            },
        ))
        .await?;
    let t = Instant::now();
    let n = env.n;
    let data = env.data();
    let mut counters = vec![0u32; data.subjects()];
    let ordinal: Vec<u32> = data
        .owner
        .iter()
        .map(|&s| {
            counters[s as usize] += 1;
            counters[s as usize] - 1
        })
        .collect();
    let total = n.div_ceil(1000);
    let mut done = 0;
    let mut stream = futures::stream::iter((0..n).step_by(1000))
        .map(|start| {
            let mut c = env.client.clone();
            let points: Vec<pb::TrackedPoint> = (start..(start + 1000).min(n))
                .map(|i| DataSet::point(data.owner[i], i as u32, ordinal[i] as usize, 0))
                .collect();
            let r =
                req(&tenant.secret_key, pb::TrackRequest { collection: "bench".into(), points, ..Default::default() });
            async move { c.track(r).await }
        })
        .buffer_unordered(2);
    while let Some(r) = stream.next().await {
        r?;
        done += 1;
        if done % 50 == 0 || done == total {
            eprintln!("    tracked {} / {n} vectors in {:.0} s", (done * 1000).min(n), t.elapsed().as_secs_f64());
        }
    }
    drop(stream);
    let load_secs = t.elapsed().as_secs_f64();
    // As on the pgvector side (`setup::build_hnsw`): the lineage freshly
    // loaded is vacuumed and analyzed before anything is measured, or its
    // statements run on a fresh database's plans (forget lineage took twice
    // pgvector's before this).
    sqlx::raw_sql("VACUUM ANALYZE").execute(&env.pool).await?;
    let meta = serde_json::json!({
        "loaded": true, "n": n, "sk": tenant.secret_key, "ak": tenant.auditor_key,
        "tenant_id": tenant.tenant_id.to_string(), "load_secs": load_secs,
        "built_at": chrono::Utc::now().to_rfc3339(),
    });
    sqlx::query(
        "INSERT INTO bench_meta (key, value) VALUES ('dataset', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
    )
    .bind(&meta)
    .execute(&env.pool)
    .await?;
    let (_, found) = find_dataset(&env.pool, &env.store, n)
        .await?
        .with_context(|| format!("the Qdrant collection does not hold the {n} tracked vectors"))?;
    env.adopt(found);
    notes.push(format!(
        "Qdrant data set built this run: Track of {n} vectors through Lethe (2 requests of 1,000 in flight) took {load_secs:.0} s{}",
        if env.standin { " (stand-in: rebuilt every run, its data directory is temporary)" } else { "" }
    ));
    Ok(())
}

/// The data set of an earlier run (or of this one) in `bench_meta`.
struct Found {
    sk: String,
    ak: String,
    tenant_id: Uuid,
    spec: CollectionSpec,
    physical: String,
}

/// The loaded data set recorded in `bench_meta`, if its Qdrant collection
/// still holds all its vectors (an exact count).
async fn find_dataset(
    pool: &PgPool,
    store: &QdrantStore,
    n: usize,
) -> anyhow::Result<Option<(serde_json::Value, Found)>> {
    // No table (a database from before this program): nothing loaded.
    let meta: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT value FROM bench_meta WHERE key = 'dataset' AND (value->>'loaded')::bool")
            .fetch_optional(pool)
            .await
            .unwrap_or(None);
    let Some(meta) = meta else { return Ok(None) };
    let s = |k: &str| meta[k].as_str().unwrap_or_default().to_owned();
    let Ok(tenant_id) = s("tenant_id").parse::<Uuid>() else {
        return Ok(None);
    };
    let Some(spec) = lethe::store::lineage::collection_by_name(pool, tenant_id, "bench").await? else {
        return Ok(None);
    };
    let Some(physical) = store.resolve_alias(&spec.backend_name).await? else {
        return Ok(None);
    };
    if store.count_all(&spec).await? < n as u64 {
        return Ok(None);
    }
    let found = Found { sk: s("sk"), ak: s("ak"), tenant_id, spec, physical };
    Ok(Some((meta, found)))
}

/// Drops the Qdrant collections recorded in a lineage database that is about
/// to be dropped (best effort: a real Qdrant would keep them otherwise).
async fn drop_qdrant_collections(pool: &PgPool, store: &QdrantStore) {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, name FROM collections").fetch_all(pool).await.unwrap_or_default();
    for (tenant_id, name) in rows {
        if let Ok(Some(spec)) = lethe::store::lineage::collection_by_name(pool, tenant_id, &name).await
            && let Err(e) = store.drop_collection(&spec).await
        {
            eprintln!("    could not drop Qdrant collection {}: {e}", spec.backend_name);
        }
    }
}

/// `subjects` holds the tag (exact keyword match, never full text).
fn tag_filter(tag: &str) -> Filter {
    Filter::must([Condition::matches("subjects", MatchValue::Keyword(tag.to_owned()))])
}

async fn raw_count(raw: &Qdrant, collection: &str, filter: Option<&Filter>) -> anyhow::Result<u64> {
    let mut request = CountPointsBuilder::new(collection).exact(true);
    if let Some(f) = filter {
        request = request.filter(f.clone());
    }
    let r = raw.count(request).await?;
    Ok(r.result.context("count without a result")?.count)
}

fn completed(result: Option<UpdateResult>, what: &str) -> anyhow::Result<()> {
    let status = result.map(|r| r.status).unwrap_or_default();
    anyhow::ensure!(status == UpdateStatus::Completed as i32, "{what}: status {status}, not completed");
    Ok(())
}

/// The raw backend doing the bare minimum: exact count, delete by filter
/// (wait), exact count.
async fn raw_erase(raw: &Qdrant, collection: &str, tag: &str, expected: u64) -> anyhow::Result<f64> {
    let filter = tag_filter(tag);
    let t = Instant::now();
    let before = raw_count(raw, collection, Some(&filter)).await?;
    let r = raw.delete_points(DeletePointsBuilder::new(collection).points(filter.clone()).wait(true)).await?;
    completed(r.result, "raw delete")?;
    let after = raw_count(raw, collection, Some(&filter)).await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(before == expected && after == 0, "raw erase of {tag}: {before} before, {after} after");
    Ok(ms)
}

async fn erase_one(
    args: &Args,
    env: &QEnv,
    subject: u32,
    figure: &str,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let data = env.data();
    let size = data.members[subject as usize].len();
    eprintln!("==> Qdrant: {figure} ({size} vectors), {} runs", args.runs);
    let first = generations(&env.pool, 2 * args.runs as u32).await?;
    let (mut lethe, mut raw, mut splits) = (Vec::new(), Vec::new(), Vec::new());
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in 0..args.runs as u32 {
        let g = first + 2 * r;
        track(env, &env.sk, "bench", data.subject_points(subject, g), 2).await?;
        let (ms, st, split) = lethe_erase(env, &DataSet::tag(subject, g)).await?;
        for (s, v) in st {
            stages.entry(s).or_default().push(v);
        }
        lethe.push(ms);
        splits.push((ms, split));
        track(env, &env.sk, "bench", data.subject_points(subject, g + 1), 2).await?;
        raw.push(raw_erase(&env.raw, &env.physical, &DataSet::tag(subject, g + 1), size as u64).await?);
        eprintln!("    run {r}: Lethe {ms:.1} ms, raw {:.1} ms", raw[raw.len() - 1]);
    }
    let breakdown: Vec<String> = stages.iter().map(|(s, v)| format!("{s} {:.1}", Stats::of(v).median)).collect();
    notes.push(format!("Qdrant, {figure}: median ms per stage (from the job's events): {}", breakdown.join(", ")));
    let what = format!("{} ({size} vectors)", figure.trim_start_matches("erase one subject: "));
    let figure = format!("{figure} ({size} vectors; Qdrant N = {}), ms", env.n);
    let goal = if size >= 1000 { "ratio ≤ 1.3" } else { "" };
    rows.push(Row::new(BACKEND, &figure, "ms", &lethe, Some(&raw)).goal(goal).note(format!(
        "{}Lethe: the Erase call + the job's stages from its events (claim to log entry written), without the residual and physical stages; \
         raw qdrant-client: count (exact) → delete by filter subjects = tag (wait) → count",
        env.caveat()
    )));
    rows.push(own_share_row(BACKEND, &what, &splits, &env.caveat()));
    Ok(())
}

async fn throughput(args: &Args, env: &QEnv, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let data = env.data();
    let jobs = args.jobs.unwrap_or(1000).min(data.tens.len() - 1);
    let subjects = &data.tens[..jobs];
    let workers = env.settings.erasure.workers;
    eprintln!(
        "==> Qdrant throughput: {jobs} subjects of 10 vectors erased concurrently, {workers} workers, {} runs",
        args.runs
    );
    let first = generations(&env.pool, 2 * args.runs as u32 + 1).await?;
    let warm = &subjects[..crate::client::WARM_UP.min(jobs)];
    let w = first + 2 * args.runs as u32;
    let points = warm.iter().flat_map(|&s| data.subject_points(s, w)).collect();
    let tags: Vec<String> = warm.iter().map(|&s| DataSet::tag(s, w)).collect();
    crate::client::warm_up(env, points, &tags).await?;
    let (mut lethe, mut raw) = (Vec::new(), Vec::new());
    for r in 0..args.runs as u32 {
        let g = first + 2 * r;
        let points = subjects.iter().flat_map(|&s| data.subject_points(s, g)).collect();
        track(env, &env.sk, "bench", points, 2).await?;
        let tags: Vec<String> = subjects.iter().map(|&s| DataSet::tag(s, g)).collect();
        let rate = erase_all(env, &tags).await?;
        lethe.push(rate);

        let points = subjects.iter().flat_map(|&s| data.subject_points(s, g + 1)).collect();
        track(env, &env.sk, "bench", points, 2).await?;
        let erasures = subjects.iter().map(|&s| async move { raw_erase(&env.raw, &env.physical, &DataSet::tag(s, g + 1), 10).await });
        raw.push(crate::client::calls_per_second(workers, erasures).await?);
        eprintln!("    run {r}: Lethe {rate:.1} jobs/s, raw {:.1} erasures/s", raw[raw.len() - 1]);
    }
    rows.push(
        Row::new(
            BACKEND,
            &format!(
                "erasure throughput: {jobs} subjects of 10 vectors at once, {workers} workers (Qdrant N = {})",
                env.n
            ),
            "jobs/s",
            &lethe,
            Some(&raw),
        )
        .goal("≥ 100 jobs/s")
        .note(format!(
            "{}Lethe: submit all, poll ListErasures until none is queued or running (then check each completed), \
             with verification, log and certificate, residual search off, the service warmed up first by {} untimed erasures; \
             raw qdrant-client: count → delete by filter (wait) → count per subject, {workers} at a time",
            env.caveat(),
            warm.len()
        )),
    );
    Ok(())
}

fn string_value(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_owned())) }
}

/// The points as Lethe writes them (src/vector_store/qdrant.rs `upsert`):
/// UUID string id, the dense vector, payload `tenant_id`, `source_id`,
/// `subjects` (keyword array) and `text`.
fn raw_points(tenant_id: Uuid, points: &[pb::TrackedPoint]) -> Vec<PointStruct> {
    let tenant = tenant_id.to_string();
    points
        .iter()
        .map(|p| {
            let mut payload = std::collections::HashMap::with_capacity(4);
            payload.insert("tenant_id".to_owned(), string_value(&tenant));
            payload.insert("source_id".to_owned(), string_value(&p.source_id));
            payload.insert(
                "subjects".to_owned(),
                Value {
                    kind: Some(Kind::ListValue(ListValue {
                        values: p.tags.iter().map(|t| string_value(&t.subject_id)).collect(),
                    })),
                },
            );
            payload.insert("text".to_owned(), string_value(&p.text));
            PointStruct {
                id: Some(PointId::from(p.point_id.clone())),
                payload,
                vectors: Some(Vectors::from(p.vector.clone())),
            }
        })
        .collect()
}

/// A collection like the ones Lethe creates (src/vector_store/qdrant.rs
/// `create_physical`): same vector params, optimizer and WAL settings, and
/// keyword indexes.
async fn create_raw_collection(raw: &Qdrant, name: &str) -> anyhow::Result<()> {
    // Left over by an interrupted run.
    if raw.collection_exists(name).await? {
        raw.delete_collection(name).await?;
    }
    raw.create_collection(
        CreateCollectionBuilder::new(name)
            .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine))
            .optimizers_config(
                OptimizersConfigDiffBuilder::default().deleted_threshold(0.0).vacuum_min_vector_number(100),
            )
            .wal_config(WalConfigDiffBuilder::default().wal_capacity_mb(1)),
    )
    .await?;
    for (field, is_tenant) in [("tenant_id", true), ("subjects", false), ("source_id", false)] {
        let mut request = CreateFieldIndexCollectionBuilder::new(name, field, FieldType::Keyword).wait(true);
        if is_tenant {
            request = request.field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true).build());
        }
        completed(raw.create_field_index(request).await?.result, "creating a field index")?;
    }
    Ok(())
}

/// `m` vectors as tracked points of generation `g` (as on the pgvector side).
fn points(data: &DataSet, m: usize, g: u32) -> Vec<pb::TrackedPoint> {
    let mut ordinal = vec![0usize; data.subjects()];
    (0..m)
        .map(|i| {
            let s = data.owner[i % data.n];
            ordinal[s as usize] += 1;
            DataSet::point(s, i as u32, ordinal[s as usize] - 1, g)
        })
        .collect()
}

/// Track of M pre-computed vectors into a new, empty Qdrant collection (its
/// own tenant) against raw upserts of the same batches into an identical
/// collection.
async fn ingest(args: &Args, env: &QEnv, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let m = args.ingest_vectors.unwrap_or_else(|| env.n.min(100_000));
    let runs = args.ingest_runs.unwrap_or(args.runs);
    eprintln!("==> Qdrant ingest: {m} vectors in batches of 1,000, {runs} runs");
    let generated;
    let data = if let Some(d) = &env.data {
        d
    } else {
        generated = DataSet::new(env.n);
        &generated
    };
    let first = generations(&env.pool, runs as u32).await?;
    let (mut lethe, mut raw) = (Vec::new(), Vec::new());
    for r in 0..runs as u32 {
        let g = first + r;
        let points = points(data, m, g);
        let tenant = lethe::auth::create_tenant(&env.pool, &format!("bench-ingest-{}", Uuid::new_v4())).await?;
        env.client
            .clone()
            .create_collection(req(
                &tenant.secret_key,
                pb::CreateCollectionRequest {
                    name: "ingest".into(),
                    backend: pb::Backend::Qdrant as i32,
                    dimension: DIM as u32,
                    ..Default::default()
                },
            ))
            .await?;
        let raw_name = format!("lethe_bench_raw_ingest_{}", env.n);
        create_raw_collection(&env.raw, &raw_name).await?;
        let batches: Vec<Vec<PointStruct>> = points.chunks(1000).map(|b| raw_points(tenant.tenant_id, b)).collect();
        let lethe_points = points.clone();
        let lethe_run = async {
            let t = Instant::now();
            track(env, &tenant.secret_key, "ingest", lethe_points, 1).await?;
            anyhow::Ok(t.elapsed().as_secs_f64())
        };
        let raw_run = async {
            let t = Instant::now();
            for b in batches {
                completed(
                    env.raw.upsert_points(UpsertPointsBuilder::new(&raw_name, b).wait(true)).await?.result,
                    "raw upsert",
                )?;
            }
            anyhow::Ok(t.elapsed().as_secs_f64())
        };
        let (l, w) = crate::client::in_turn(r, lethe_run, raw_run).await?;
        eprintln!("    run {r}: Lethe {l:.1} s, raw {w:.1} s");
        lethe.push(l);
        raw.push(w);
        let raw_count = raw_count(&env.raw, &raw_name, None).await?;
        anyhow::ensure!(raw_count == m as u64, "raw ingest holds {raw_count} of {m}");
        env.raw.delete_collection(raw_name.as_str()).await?;
        if let Some(spec) = lethe::store::lineage::collection_by_name(&env.pool, tenant.tenant_id, "ingest").await? {
            let count = env.store.count_all(&spec).await?;
            anyhow::ensure!(count == m as u64, "Lethe's ingest collection holds {count} of {m}");
            env.store.drop_collection(&spec).await?;
        }
        sqlx::query("DELETE FROM tenants WHERE tenant_id = $1").bind(tenant.tenant_id).execute(&env.pool).await?;
    }
    rows.push(
        Row::new(
            BACKEND,
            &format!("ingest: Track of {m} vectors with vectors, 1,000 per request (Qdrant N = {})", env.n),
            "s",
            &lethe,
            Some(&raw),
        )
        .goal("ratio ≤ 1.2")
        .note(format!(
            "{}into an empty collection; raw qdrant-client: upsert (wait) of the same 1,000-point batches with Lethe's payload \
             (tenant_id, source_id, subjects, text) into an identical collection (same vector params, optimizer/WAL config, keyword indexes){}",
            env.caveat(),
            if env.standin { "; the stand-in has no background optimizer, so no HNSW is built on either side" } else { "" }
        )),
    );
    Ok(())
}

/// `search_exact` through the VectorStore trait (what residual search calls)
/// over the whole Qdrant data set, with 1 and 32 probes.
async fn search(args: &Args, env: &QEnv, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    for probes in [1usize, 32] {
        eprintln!("==> Qdrant exact search, {probes} probes, {} runs", args.runs);
        let vectors: Vec<Vec<f32>> = (0..probes as u64).map(|k| vector(7, k)).collect();
        let mut ms = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            let hits = env.store.search_exact(env.spec(), &vectors, 0.5, 1000).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(hits.len() <= 1000);
        }
        let stats = Stats::of(&ms);
        eprintln!("    median {:.0} ms, p95 {:.0} ms", stats.median, stats.p95);
        rows.push(
            Row::new(
                BACKEND,
                &format!(
                    "exact search over N = {}, {probes} probe(s) (residual stage's query): median {:.0} ms, p95 {:.0} ms",
                    env.n, stats.median, stats.p95
                ),
                "ms",
                &ms,
                None,
            )
            .note(format!(
                "{}VectorStore::search_exact (QdrantStore: Query, exact = true, tenant filter), threshold 0.5, limit 1000; p95 over {} runs{}",
                env.caveat(),
                args.runs,
                if env.standin { "; the stand-in has no QueryBatch, so one Query per probe" } else { "" }
            )),
        );
    }
    Ok(())
}

impl LetheSide for QEnv {
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
