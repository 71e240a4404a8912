//! The pgvector side's setup: the bench database, Lethe in-process on port 0,
//! and the data set loaded through `Track` once (then reused).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use futures::StreamExt;
use lethe::config::{EmbeddingProvider, Settings};
use lethe::grpc::pb::{self, lethe_client::LetheClient};
use lethe::vector_store::CallLog;
use secrecy::SecretString;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tonic::Request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::Args;
use crate::data::{DIM, DataSet};

/// Everything the measurements need.
pub struct Env {
    pub client: LetheClient<Channel>,
    pub sk: String,
    pub ak: String,
    pub tenant_id: Uuid,
    /// The pgvector table of the `bench` collection.
    pub table: String,
    /// A pool of the benchmark's own, for the raw baseline and housekeeping.
    pub raw: PgPool,
    pub data: DataSet,
    pub settings: Settings,
    pub postgres_version: String,
    pub notes: Vec<String>,
    /// The service's vector-store calls.
    pub calls: Arc<CallLog>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn req<T>(key: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ascii key"));
    r
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Lethe's settings for the benchmark: hashing embedder, residual searches
/// off (residual is measured separately), the given database and workers.
pub fn settings(db_url: &str, args: &Args) -> anyhow::Result<Settings> {
    let mut s = lethe::config::load(&root().join("configuration"))?;
    s.database.url = SecretString::from(db_url.to_owned());
    s.application.port = 0;
    s.web.port = 0;
    s.qdrant.url = String::new();
    s.embedding.provider = EmbeddingProvider::Hashing;
    for p in [&mut s.embedding.model_dir, &mut s.embedding.ort_dylib_path] {
        if p.is_relative() {
            *p = root().join(&*p);
        }
    }
    s.residual.lexical = false;
    s.residual.semantic = false;
    s.audit.signing_key_file = root().join(".lethe/bench/signing_key.pem");
    s.audit.create_signing_key = true;
    s.keys.master_key_file = root().join(".lethe/bench/master_keys.json");
    if let Some(w) = args.workers {
        s.erasure.workers = w;
    }
    s.log.filter = "warn".into();
    Ok(s)
}

/// How far an earlier run got with the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loaded {
    Nothing,
    /// Vectors tracked, HNSW index not built yet.
    Vectors,
    Complete,
}

/// Creates `lethe_bench_<N>` unless an earlier run tracked its vectors.
async fn database(n: usize) -> anyhow::Result<(String, Loaded)> {
    let base = std::env::var("DATABASE_URL").context("DATABASE_URL (run `. scripts/env.sh`)")?;
    let (prefix, _) = base.rsplit_once('/').context("DATABASE_URL has a database name")?;
    let name = format!("lethe_bench_{n}");
    let url = format!("{prefix}/{name}");
    let mut admin = PgConnection::connect(&base).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if exists {
        let mut c = PgConnection::connect(&url).await?;
        let loaded: Option<bool> = sqlx::query_scalar(
            "SELECT (value->>'loaded')::bool FROM bench_meta WHERE key = 'dataset'",
        )
        .fetch_optional(&mut c)
        .await
        .unwrap_or(None);
        c.close().await?;
        match loaded {
            Some(true) => return Ok((url, Loaded::Complete)),
            Some(false) => return Ok((url, Loaded::Vectors)),
            None => {}
        }
        eprintln!("==> {name} exists but its load did not finish: dropping it");
        sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).execute(&mut admin).await?;
    }
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await?;
    Ok((url, Loaded::Nothing))
}

pub async fn pgvector(args: &Args) -> anyhow::Result<Env> {
    let (url, loaded) = database(args.size).await?;
    let settings = settings(&url, args)?;
    if std::env::var_os("RUST_LOG").is_some() {
        // What the in-process service logs, e.g. RUST_LOG=lethe::residual=info.
        lethe::telemetry::init(&settings.log);
    }
    if let Some(dir) = settings.audit.signing_key_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let t = Instant::now();
    let data = DataSet::new(args.size);
    eprintln!(
        "==> data set: {} vectors, {} subjects (largest {}, {} of exactly 10), generated in {:.1} s",
        data.n,
        data.subjects(),
        data.members[data.big as usize].len(),
        data.tens.len(),
        t.elapsed().as_secs_f64()
    );
    let calls = Arc::new(CallLog::default());
    let (client, stop) = serve(&settings, &calls).await?;
    let raw = PgPoolOptions::new().max_connections(8).connect(&url).await?;
    let postgres_version: String = sqlx::query_scalar(
        "SELECT 'PostgreSQL ' || current_setting('server_version') || ' + pgvector ' || \
         (SELECT extversion FROM pg_extension WHERE extname = 'vector') || ', shared_buffers ' || current_setting('shared_buffers')",
    )
    .fetch_one(&raw)
    .await?;
    let mut env = Env {
        client,
        sk: String::new(),
        ak: String::new(),
        tenant_id: Uuid::nil(),
        table: String::new(),
        raw,
        data,
        settings,
        postgres_version,
        notes: Vec::new(),
        calls,
        _stop: stop,
    };
    if loaded == Loaded::Nothing {
        load(&mut env).await?;
    }
    if loaded != Loaded::Complete {
        build_hnsw(&env, args.skip_hnsw).await?;
    }
    let merged = settle_residual_index(&env.raw).await?;
    if merged > 0.5 {
        eprintln!("    the residual index's pending list merged in {merged:.0} s");
    }
    let meta: serde_json::Value = sqlx::query_scalar("SELECT value FROM bench_meta WHERE key = 'dataset'")
        .fetch_one(&env.raw)
        .await?;
    let s = |k: &str| meta[k].as_str().unwrap_or_default().to_owned();
    env.sk = s("sk");
    env.ak = s("ak");
    env.table = s("table");
    env.tenant_id = s("tenant_id").parse()?;
    let hnsw = meta["hnsw_secs"]
        .as_f64()
        .map_or_else(|| s("hnsw"), |secs| format!("HNSW build (m 16, ef_construction 64, cosine) took {secs:.0} s"));
    env.notes.push(format!(
        "pgvector data set built {}: Track of {} vectors through Lethe (HNSW index dropped meanwhile) took {:.0} s; {hnsw}",
        s("built_at"),
        args.size,
        meta["load_secs"].as_f64().unwrap_or(f64::NAN),
    ));
    Ok(env)
}

/// Lethe in-process with `settings` on port 0, its vector-store calls
/// recorded in `calls`: a client, and the sender that stops it (when sent
/// or dropped).
pub async fn serve(
    settings: &Settings,
    calls: &Arc<CallLog>,
) -> anyhow::Result<(LetheClient<Channel>, tokio::sync::oneshot::Sender<()>)> {
    let embedder = lethe::startup::embedder(settings)?;
    let mut app = lethe::startup::Application::build_with_embedder(settings.clone(), embedder).await?;
    app.time_vector_stores(calls);
    let addr = app.addr();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = LetheClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    Ok((client, stop))
}

impl Env {
    /// Stops the in-process Lethe and starts another on the same database
    /// with `settings` (its workers are then the only ones claiming jobs).
    pub async fn restart(&mut self, settings: Settings) -> anyhow::Result<()> {
        let (client, stop) = serve(&settings, &self.calls).await?;
        // Dropping the old sender stops the old service and its workers.
        self._stop = stop;
        self.client = client;
        self.settings = settings;
        // Let the old workers' shutdown finish before the new ones are measured.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        Ok(())
    }
}

/// Registers the collection, tracks every vector (2 requests in flight, 1,000
/// points each) with the HNSW index dropped, then builds the index.
async fn load(env: &mut Env) -> anyhow::Result<()> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        .execute(&env.raw)
        .await?;
    let tenant = lethe::auth::create_tenant(&env.raw, &format!("bench-{}", env.data.n)).await?;
    let collection = env
        .client
        .create_collection(req(&tenant.secret_key, pb::CreateCollectionRequest {
            name: "bench".into(),
            backend: pb::Backend::Pgvector as i32,
            dimension: DIM as u32,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let table = collection.backend_name.clone();
    sqlx::raw_sql(&format!("DROP INDEX \"{table}_hnsw\"")).execute(&env.raw).await?;

    let t = Instant::now();
    let n = env.data.n;
    let mut counters = vec![0u32; env.data.subjects()];
    let ordinal: Vec<u32> = env
        .data
        .owner
        .iter()
        .map(|&s| {
            counters[s as usize] += 1;
            counters[s as usize] - 1
        })
        .collect();
    let ordinal = std::sync::Arc::new(ordinal);
    let owner = std::sync::Arc::new(env.data.owner.clone());
    let total = n.div_ceil(1000);
    let client = env.client.clone();
    let sk = tenant.secret_key.clone();
    let mut done = 0;
    let mut stream = futures::stream::iter((0..n).step_by(1000))
        .map(|start| {
            let mut c = client.clone();
            let sk = sk.clone();
            let (ordinal, owner) = (ordinal.clone(), owner.clone());
            async move {
                let points: Vec<pb::TrackedPoint> = (start..(start + 1000).min(n))
                    .map(|i| DataSet::point(owner[i], i as u32, ordinal[i] as usize, 0))
                    .collect();
                c.track(req(&sk, pb::TrackRequest { collection: "bench".into(), points, ..Default::default() })).await
            }
        })
        .buffer_unordered(2);
    while let Some(r) = stream.next().await {
        r?;
        done += 1;
        if done % 50 == 0 || done == total {
            eprintln!("    tracked {} / {n} vectors in {:.0} s", done * 1000, t.elapsed().as_secs_f64());
        }
    }
    let load_secs = t.elapsed().as_secs_f64();

    let meta = serde_json::json!({
        "loaded": false, "n": n, "sk": tenant.secret_key, "ak": tenant.auditor_key,
        "tenant_id": tenant.tenant_id.to_string(), "table": table, "load_secs": load_secs,
        "built_at": chrono::Utc::now().to_rfc3339(),
    });
    sqlx::query("INSERT INTO bench_meta (key, value) VALUES ('dataset', $1) ON CONFLICT (key) DO UPDATE SET value = $1")
        .bind(meta)
        .execute(&env.raw)
        .await?;
    Ok(())
}

/// Builds the collection's HNSW index (or records that it was skipped) and
/// marks the data set complete. A cancelled build is resumed by the next run.
async fn build_hnsw(env: &Env, skip: bool) -> anyhow::Result<()> {
    let table: String = sqlx::query_scalar("SELECT value->>'table' FROM bench_meta WHERE key = 'dataset'")
        .fetch_one(&env.raw)
        .await?;
    let n = env.data.n;
    let t = Instant::now();
    let mut c = env.raw.acquire().await?;
    let outcome = if skip {
        serde_json::json!({ "hnsw": "HNSW index not built (--skip-hnsw): erasure, counts and exact search do not use it" })
    } else {
        eprintln!("==> building the HNSW index on {n} vectors (slow on 2 cores)");
        sqlx::raw_sql("SET maintenance_work_mem = '6GB'; SET max_parallel_maintenance_workers = 1")
            .execute(&mut *c)
            .await?;
        sqlx::raw_sql(&format!(
            "CREATE INDEX IF NOT EXISTS \"{table}_hnsw\" ON \"{table}\" USING hnsw (embedding vector_cosine_ops)"
        ))
        .execute(&mut *c)
        .await?;
        sqlx::raw_sql("RESET maintenance_work_mem; RESET max_parallel_maintenance_workers").execute(&mut *c).await?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!("    HNSW built in {secs:.0} s");
        serde_json::json!({ "hnsw_secs": secs })
    };
    sqlx::raw_sql(&format!("VACUUM ANALYZE \"{table}\"")).execute(&mut *c).await?;
    sqlx::raw_sql("ANALYZE").execute(&mut *c).await?;
    sqlx::query("UPDATE bench_meta SET value = value || $1 || '{\"loaded\": true}' WHERE key = 'dataset'")
        .bind(outcome)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Waits until the residual index's pending list is merged (the service's
/// merger does it in the background after a load; this merges what is left),
/// so that no section measures beside a merge of the load's keys. Seconds.
pub async fn settle_residual_index(pool: &PgPool) -> anyhow::Result<f64> {
    let t = std::time::Instant::now();
    while lethe::store::lineage::merge_residual_index(pool).await? > 0 {}
    Ok(t.elapsed().as_secs_f64())
}
