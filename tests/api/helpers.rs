//! `spawn_app`: a real Lethe on port 0 against a fresh database in the test
//! Postgres (DATABASE_URL), with Qdrant when QDRANT_URL is set, and typed
//! helpers for the calls tests make.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lethe::config::{EmbeddingProvider, Settings};
use lethe::embedding::Embedder;
use lethe::grpc::pb::{self, lethe_client::LetheClient};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};
use tonic::transport::Channel;
use tonic::{Request, Status};
use uuid::Uuid;

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// The web view's address (`web.enabled`).
    pub web: Option<std::net::SocketAddr>,
    pub client: LetheClient<Channel>,
    pub pool: PgPool,
    /// The pool the app's workers run on (`startup::worker_pool`).
    pub workers: PgPool,
    pub keys: Keys,
    pub settings: Settings,
    /// The app's context: tests that drive a worker themselves call
    /// `lethe::erasure::try_execute_job` with it.
    pub ctx: lethe::context::Context,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
pub struct Keys {
    pub tenant_id: Uuid,
    pub sk: String,
    pub pk: String,
    pub ak: String,
}

/// How a test wants its app.
#[derive(Default, Clone, Copy)]
pub struct Options {
    /// The real embedding model instead of the hashing embedder.
    pub real_model: bool,
    pub stage_pause_ms: u64,
    /// No erase workers: jobs stay queued until the test runs them.
    pub no_workers: bool,
    /// `erasure.lease_secs`; 0 keeps the configured value.
    pub lease_secs: u64,
    /// `residual.search_timeout_ms`; 0 keeps the configured one.
    pub search_timeout_ms: u64,
    /// Changes any other setting.
    pub settings: Option<fn(&mut Settings)>,
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL must point at the test Postgres (scripts/test.sh sets it)")
}

pub fn qdrant_url() -> Option<String> {
    std::env::var("QDRANT_URL").ok().filter(|u| !u.is_empty())
}

/// A new, migrated database; returns its URL.
pub async fn fresh_database() -> String {
    let base = database_url();
    let name = format!("lethe_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&base).await.expect("connect to the test Postgres");
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("DATABASE_URL has a database name");
    format!("{prefix}/{name}")
}

pub fn test_settings(db_url: &str, dir: &std::path::Path, opts: Options) -> Settings {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut s = lethe::config::load(&root.join("configuration")).expect("configuration loads");
    s.database.url = SecretString::from(db_url.to_owned());
    s.database.max_connections = 20;
    s.application.port = 0;
    s.web.port = 0;
    s.erasure.poll_interval_ms = 50;
    s.application.health_check_interval_ms = 200;
    s.erasure.stage_pause_ms = opts.stage_pause_ms;
    if opts.no_workers {
        s.erasure.workers = 0;
    }
    if opts.lease_secs > 0 {
        s.erasure.lease_secs = opts.lease_secs;
    }
    if opts.search_timeout_ms > 0 {
        s.residual.search_timeout_ms = opts.search_timeout_ms;
    }
    s.audit.signing_key_file = dir.join("signing_key.pem");
    s.audit.create_signing_key = true;
    s.keys.master_key_file = dir.join("master_keys.json");
    s.qdrant.url = qdrant_url().unwrap_or_default();
    s.qdrant.collection_prefix = format!("t{}_", &Uuid::new_v4().simple().to_string()[..8]);
    s.embedding.provider = if opts.real_model { EmbeddingProvider::Fastembed } else { EmbeddingProvider::Hashing };
    let model = root.join(".lethe/model");
    if s.embedding.model_dir.is_relative() {
        s.embedding.model_dir = model;
    }
    if s.embedding.ort_dylib_path.is_relative() {
        s.embedding.ort_dylib_path = root.join(&s.embedding.ort_dylib_path);
    }
    if let Some(change) = opts.settings {
        change(&mut s);
    }
    s
}

fn real_embedder(s: &Settings) -> Arc<dyn Embedder> {
    static MODEL: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    MODEL.get_or_init(|| lethe::startup::embedder(s).expect("the real model loads (scripts/setup.sh)")).clone()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    spawn_app_configured(opts, |_| {}).await
}

/// `spawn_app_with`, with the settings changed by `configure` first. With
/// TLS on, `client` is a plaintext channel that fails: tests connect their own.
pub async fn spawn_app_configured(opts: Options, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_at_configured(&fresh_database().await, qdrant_url().as_deref(), opts, configure).await
}

/// A real Lethe on a database that exists already (a copy restored from a
/// dump, another replica's), with the settings changed by `configure` (e.g.
/// the key files of the app whose database it is).
pub async fn spawn_app_on(db_url: &str, opts: Options, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_at_configured(db_url, qdrant_url().as_deref(), opts, configure).await
}

/// A real Lethe on port 0 against the database at `db_url` and the Qdrant
/// at `qdrant_url` (if any): e.g. through proxies a test can cut.
pub async fn spawn_app_at(db_url: &str, qdrant_url: Option<&str>, opts: Options) -> TestApp {
    spawn_app_at_configured(db_url, qdrant_url, opts, |_| {}).await
}

pub async fn spawn_app_at_configured(
    db_url: &str,
    qdrant_url: Option<&str>,
    opts: Options,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_embedding(db_url, qdrant_url, opts, configure, |e| e).await
}

/// `spawn_app_with`, embedding through `wrap` of the embedder it would use
/// (e.g. one that holds a batch until the test lets it go).
pub async fn spawn_app_wrapping_embedder(opts: Options, wrap: impl FnOnce(Arc<dyn Embedder>) -> Arc<dyn Embedder>) -> TestApp {
    spawn_app_embedding(&fresh_database().await, qdrant_url().as_deref(), opts, |_| {}, wrap).await
}

async fn spawn_app_embedding(
    db_url: &str,
    qdrant_url: Option<&str>,
    opts: Options,
    configure: impl FnOnce(&mut Settings),
    wrap: impl FnOnce(Arc<dyn Embedder>) -> Arc<dyn Embedder>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(db_url, dir.path(), opts);
    settings.qdrant.url = qdrant_url.unwrap_or_default().to_owned();
    configure(&mut settings);
    let embedder = wrap(if opts.real_model {
        real_embedder(&settings)
    } else {
        lethe::startup::embedder(&settings).expect("hashing embedder")
    });
    let app = lethe::startup::Application::build_with_embedder(settings.clone(), embedder).await.expect("app builds");
    let addr = app.addr();
    let web = app.web_addr();
    let ctx = app.context().clone();
    let pool = ctx.pool.clone();
    let workers = app.worker_context().pool.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let keys = new_tenant(&pool).await;
    let client = if settings.application.tls.enabled() {
        LetheClient::new(Channel::from_shared(format!("http://{addr}")).expect("uri").connect_lazy())
    } else {
        LetheClient::connect(format!("http://{addr}")).await.expect("connect")
    };
    TestApp { addr, web, client, pool, workers, keys, settings, ctx, _shutdown: tx, _dir: dir }
}

pub async fn new_tenant(pool: &PgPool) -> Keys {
    let t = lethe::auth::create_tenant(pool, &format!("tenant-{}", Uuid::new_v4())).await.expect("tenant");
    Keys { tenant_id: t.tenant_id, sk: t.secret_key, pk: t.publishable_key, ak: t.auditor_key }
}

pub fn req<T>(key: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ascii key"));
    r
}

pub fn person(id: &str) -> pb::SubjectRef {
    pb::SubjectRef { id: id.into(), identifiers: vec![] }
}

pub fn chunk(source: &str, ordinal: u32, text: &str, subjects: &[&str]) -> pb::IngestChunk {
    pb::IngestChunk {
        source_id: source.into(),
        text: text.into(),
        ordinal,
        tags: subjects
            .iter()
            .map(|s| pb::SubjectTag { subject_id: (*s).into(), role: pb::TagRole::Owner as i32 })
            .collect(),
        ..Default::default()
    }
}

impl TestApp {
    /// The app's own directory: its signing key, master keys.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A plain channel to the app, for other services (health, reflection).
    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).expect("uri").connect_lazy()
    }

    pub async fn create_collection(&self, name: &str, backend: pb::Backend) -> pb::Collection {
        self.client
            .clone()
            .create_collection(req(&self.keys.sk, pb::CreateCollectionRequest {
                name: name.into(),
                backend: backend as i32,
                dimension: u32::try_from(self.settings.embedding.dimension).expect("small"),
                ..Default::default()
            }))
            .await
            .expect("create collection")
            .into_inner()
    }

    pub async fn ingest(&self, collection: &str, chunks: Vec<pb::IngestChunk>) -> Result<pb::WriteResponse, Status> {
        self.client
            .clone()
            .ingest(req(&self.keys.sk, pb::IngestRequest { collection: collection.into(), chunks, subjects: vec![] }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Ingests `n` chunks for each subject, one source per chunk.
    pub async fn ingest_people(&self, collection: &str, people: &[(&str, u32)]) {
        let mut chunks = Vec::new();
        for (who, n) in people {
            for i in 0..*n {
                chunks.push(chunk(&format!("{who}-doc-{i}"), 0, &format!("note {i} written by {who} about topic {i}"), &[who]));
            }
        }
        let w = self.ingest(collection, chunks).await.expect("ingest");
        assert_eq!(w.suppressed, 0);
    }

    pub async fn erase(&self, subject: &str) -> pb::ErasureJob {
        self.erase_with(pb::EraseRequest { subject: Some(person(subject)), ..Default::default() }).await.expect("erase")
    }

    pub async fn erase_with(&self, mut r: pb::EraseRequest) -> Result<pb::ErasureJob, Status> {
        if r.requested_by.is_empty() {
            r.requested_by = "tests@lethe".into();
        }
        self.client.clone().erase(req(&self.keys.sk, r)).await.map(tonic::Response::into_inner)
    }

    pub async fn job(&self, job_id: &str) -> pb::ErasureJob {
        self.client
            .clone()
            .get_erasure(req(&self.keys.ak, pb::GetErasureRequest { job_id: job_id.into() }))
            .await
            .expect("get erasure")
            .into_inner()
    }

    /// Polls until the job is terminal (30 s at most).
    pub async fn wait_for_job(&self, job_id: &str) -> pb::ErasureJob {
        wait_for_job(&self.client, &self.keys.ak, job_id).await
    }

    pub async fn count_subject(&self, subject: &str) -> pb::CountSubjectResponse {
        self.client
            .clone()
            .count_subject(req(&self.keys.ak, pb::CountSubjectRequest { subject_id: subject.into() }))
            .await
            .expect("count subject")
            .into_inner()
    }

    /// Vectors carrying the subject's tag, counted in the pgvector table itself.
    pub async fn pg_rows_tagged(&self, collection: &pb::Collection, subject: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE subjects @> ARRAY[$1]", collection.backend_name))
            .bind(subject)
            .fetch_one(&self.pool)
            .await
            .expect("count rows")
    }

    /// Lineage has no foreign keys on its hot tables (migration 7): the code
    /// keeps it whole. Chunks are keyed per tenant (migration 30). Panics on
    /// a tag without its chunk or subject, a tag whose collection differs
    /// from its chunk's, or a chunk without its source.
    pub async fn assert_lineage_consistent(&self) {
        let orphans: (i64, i64, i64, i64) = sqlx::query_as(
            r#"
            SELECT
              (SELECT count(*) FROM chunk_subjects cs
               WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.tenant_id = cs.tenant_id AND c.chunk_id = cs.chunk_id)),
              (SELECT count(*) FROM chunk_subjects cs WHERE NOT EXISTS (SELECT 1 FROM subjects s WHERE s.subject_id = cs.subject_id)),
              (SELECT count(*) FROM chunk_subjects cs JOIN chunks c USING (tenant_id, chunk_id) WHERE c.collection_id <> cs.collection_id),
              (SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.source_id = c.source_id))
            "#,
        )
        .fetch_one(&self.pool)
        .await
        .expect("lineage consistency");
        assert_eq!(orphans, (0, 0, 0, 0), "orphan tags, tags without subject, tags in the wrong collection, chunks without source");
    }

    /// Whether the tenant has a subject row for this caller id.
    pub async fn subject_exists(&self, subject: &str) -> bool {
        let hash = self.ctx.keyed_hash(self.keys.tenant_id, subject).await.expect("keyed hash");
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM subjects WHERE tenant_id = $1 AND subject_hash = $2)")
            .bind(self.keys.tenant_id)
            .bind(hash)
            .fetch_one(&self.pool)
            .await
            .expect("look the subject up")
    }

    /// The job's certificate body (its signature checked) and its log entry's body.
    pub async fn certified(&self, job_id: &str) -> (serde_json::Value, serde_json::Value) {
        let mut client = self.client.clone();
        let cert = client
            .get_certificate(req(&self.keys.ak, pb::GetCertificateRequest { job_id: job_id.into() }))
            .await
            .expect("certificate")
            .into_inner();
        assert!(lethe::audit::verify_certificate(&cert.body, &cert.signature, &cert.public_key));
        let log = client
            .list_deletion_log(req(&self.keys.ak, pb::ListDeletionLogRequest { after_seq: 0, limit: 1000 }))
            .await
            .expect("log")
            .into_inner()
            .entries;
        let entry = log.into_iter().find(|e| e.job_id == job_id).expect("the job's log entry");
        (serde_json::from_str(&cert.body).expect("json"), serde_json::from_str(&entry.body).expect("json"))
    }

    /// A write in flight, as far as the collection's lock goes: a
    /// transaction holding the lock shared, as a write does until its
    /// vectors are written. Commit or drop it to let the write "end".
    pub async fn write_in_flight(&self, collection: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let spec = lethe::store::lineage::collection_by_name(&self.pool, self.keys.tenant_id, collection)
            .await
            .expect("read collection")
            .expect("collection exists");
        let mut write = self.pool.begin().await.expect("begin");
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(lethe::context::collection_lock_key(spec.collection_id))
            .execute(&mut *write)
            .await
            .expect("take the collection's lock shared");
        write
    }

    pub async fn lineage_chunks_of(&self, subject: &str) -> i64 {
        let hash = self.ctx.keyed_hash(self.keys.tenant_id, subject).await.expect("keyed hash");
        sqlx::query_scalar(
            "SELECT count(*) FROM chunk_subjects cs JOIN subjects s USING (subject_id) WHERE s.subject_hash = $1",
        )
        .bind(hash)
        .fetch_one(&self.pool)
        .await
        .expect("count lineage")
    }
}

pub async fn wait_for_job(client: &LetheClient<Channel>, key: &str, job_id: &str) -> pb::ErasureJob {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let j = client
            .clone()
            .get_erasure(req(key, pb::GetErasureRequest { job_id: job_id.into() }))
            .await
            .expect("get erasure")
            .into_inner();
        let terminal = [pb::JobStatus::Completed, pb::JobStatus::Failed, pb::JobStatus::Refused]
            .iter()
            .any(|s| *s as i32 == j.status);
        if terminal {
            return j;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {job_id} did not finish: {j:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reason in a status' ErrorInfo.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

/// A value of a status' ErrorInfo metadata.
pub fn error_metadata(status: &Status, key: &str) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_error_details().error_info().and_then(|i| i.metadata.get(key).cloned())
}

/// Rows in a table of the app's database.
pub async fn rows(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.expect("count rows")
}

/// Runs the queued job `job_id` in this process (an app with `no_workers`)
/// until its stage is one of `stages`, stops it there as a crash would, and
/// has it claimed a twenty-first time: abandoned, it is failed.
pub async fn abandon_job_at(app: &TestApp, job_id: Uuid, stages: &[&str]) {
    let ctx = app.ctx.clone();
    let running = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let stage: String =
                sqlx::query_scalar("SELECT stage FROM erasure_jobs WHERE job_id = $1").bind(job_id).fetch_one(&app.pool).await.unwrap();
            if stages.contains(&stage.as_str()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the job reaches {stages:?}"));
    running.abort();
    sqlx::query("UPDATE erasure_jobs SET attempts = 20, lease_expires_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await.unwrap();
}
