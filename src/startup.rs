//! Builds a running Lethe from settings: pool, migrations, backends,
//! embedder, signer, the gRPC server on a bound listener, and the workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::audit::Signer;
use crate::config::{EmbeddingProvider, Settings, TlsSettings};
use crate::context::Context;
use crate::embedding::{Embedder, FastEmbedder, HashingEmbedder};
use crate::vector_store::{
    AttachedPgStore, AttachedQdrantStore, PgVectorStore, QdrantStore, Vanishable, VectorStore, VectorStores,
};

/// A built, not yet running, Lethe.
/// How long a stopping server waits for open streams (a client watching a
/// job) before it closes them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<ServerTlsConfig>,
    ctx: Context,
    /// `ctx` with the workers' pool (see [`worker_pool`]).
    worker_ctx: Context,
    /// The web view's listener (`web.enabled`), and its TLS when `application.tls` is on.
    web: Option<(TcpListener, Option<tokio_rustls::TlsAcceptor>)>,
}

/// Connects to Postgres (lazily, so a late database only delays requests).
///
/// # Errors
/// When the URL is invalid.
pub fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(pool_options(settings).connect_lazy_with(settings.database.connect_options()?))
}

/// A connection idle longer than this is pinged before it is handed out
/// (see [`pool_options`]).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

/// Options of both pools. sqlx pings every idle connection before it hands
/// it out (`test_before_acquire`): one round trip more for each statement
/// outside a transaction and each transaction (a small erasure makes ~60
/// statements, most outside one). Only a connection idle for a while is
/// pinged here: one in steady use has just answered, and a connection that
/// breaks anyway fails its statement as unavailable, which the job's retry
/// or the client's call repeats on a fresh one. Measured in
/// docs/benchmarks.md (thirty-first session): nothing beyond the spread on
/// localhost; a saved ping is a network round trip elsewhere.
fn pool_options(settings: &Settings) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Runs the migrations as `database.migration_url`'s role when set (then
/// grants the service role of `database.url` what it needs), else on `pool`.
///
/// # Errors
/// When a migration or a grant fails.
pub async fn migrate(settings: &Settings, pool: &PgPool) -> anyhow::Result<()> {
    let Some(options) = settings.database.migration_options()? else {
        return crate::store::migrate(pool).await.context("Failed to run migrations");
    };
    let owner = PgPoolOptions::new().max_connections(1).connect_with(options).await.context("Failed to connect as database.migration_url")?;
    crate::store::migrate(&owner).await.context("Failed to run migrations")?;
    let role = settings.database.connect_options()?.get_username().to_owned();
    crate::store::role::grant_service_role(&owner, &role)
        .await
        .with_context(|| format!("Failed to grant the service role `{role}` its privileges"))?;
    owner.close().await;
    Ok(())
}

/// The deletion log is append-only only for a role that can neither drop
/// its trigger nor bypass it.
async fn refuse_log_owner(settings: &Settings, pool: &PgPool) -> anyhow::Result<()> {
    if crate::store::role::can_alter_log(pool).await.context("Failed to read the service role's privileges")? {
        let role = settings.database.connect_options()?.get_username().to_owned();
        anyhow::bail!(
            "database.url connects as `{role}`, a superuser or owner of deletion_log, which could disable the \
             log's append-only trigger: connect as the service role and run migrations as database.migration_url \
             (README \"Running in production\"), or set database.require_service_role: false"
        );
    }
    Ok(())
}

/// The erase workers' pool: their progress writes (stage advances, events,
/// counts, deletes) commit without waiting for the WAL flush. A crash can
/// then lose the last few of them, and the job resumes at an earlier stage —
/// stages are idempotent and WAL is replayed in order, so nothing later
/// survives what was lost. The log stage commits synchronously
/// (`jobs::require_durable_commit`), which flushes everything before it: no
/// certificate is issued for work that is not durable. Profiling showed
/// commits waiting on the WAL flush as the main cost of small erasures.
///
/// Its statements are also planned once per connection, not at every
/// execution (`plan_cache_mode = force_generic_plan`): the stages' statements
/// take arrays (`= ANY($1)`, `UNNEST`), for which PostgreSQL keeps making a
/// custom plan each time, and planning was half of PostgreSQL's time in a
/// run of small erasures (docs/benchmarks.md, thirty-second and
/// thirty-third sessions: a lone small erasure a sixth to a quarter
/// faster, a batch within the spread). Not for the service's pool:
/// ingest's screening and index writes want their custom plans. A
/// statement run here must not hide an index condition behind a parameter
/// (`$1 IS NULL OR id > $1`: see `store::after_cursor`; a boolean choosing
/// a partial index): a generic plan cannot use it. The mode is
/// `database.worker_plan_cache_mode`, so that an operator can go back to
/// PostgreSQL's `auto` without a new build should some data of theirs
/// plan badly once for all.
///
/// # Errors
/// When the URL is invalid.
pub fn worker_pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let mode = settings.database.worker_plan_cache_mode.as_str();
    let options = settings.database.connect_options()?.options([("synchronous_commit", "off"), ("plan_cache_mode", mode)]);
    Ok(pool_options(settings).connect_lazy_with(options))
}

/// The configured embedder.
///
/// # Errors
/// When the model or runtime cannot be loaded.
pub fn embedder(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let e = &settings.embedding;
    Ok(match e.provider {
        EmbeddingProvider::Hashing => Arc::new(HashingEmbedder::new(e.dimension)),
        EmbeddingProvider::Fastembed => {
            let model =
                FastEmbedder::load(&e.model_name, &e.model_dir, &e.ort_dylib_path, e.max_length, e.threads, e.batch_size)
                    .context("Failed to load the embedding model (run scripts/setup.sh)")?;
            anyhow::ensure!(
                model.dimension() == e.dimension,
                "embedding.dimension is {} but the model gives {}",
                e.dimension,
                model.dimension()
            );
            Arc::new(model)
        }
    })
}

/// The configured vector backends.
///
/// # Errors
/// When Qdrant is configured and unreachable.
pub async fn vector_stores(settings: &Settings, pool: PgPool) -> anyhow::Result<VectorStores> {
    let qdrant: Option<QdrantStore> = if settings.qdrant.url.is_empty() {
        None
    } else {
        let key = settings.qdrant.api_key.as_ref().map(|k| secrecy::ExposeSecret::expose_secret(k).to_owned());
        let store = QdrantStore::connect(&settings.qdrant.url, key, Duration::from_secs(settings.qdrant.timeout_secs))
            .await
            .with_context(|| format!("Failed to connect to Qdrant at {}", settings.qdrant.url))?;
        Some(store)
    };
    Ok(VectorStores {
        pgvector: Arc::new(PgVectorStore::new(pool.clone())),
        attached_pgvector: Arc::new(Vanishable::new(Arc::new(AttachedPgStore::new(pool)))),
        attached_qdrant: qdrant
            .clone()
            .map(|q| Arc::new(Vanishable::new(Arc::new(AttachedQdrantStore::new(q)))) as Arc<dyn VectorStore>),
        qdrant: qdrant.map(|q| Arc::new(q) as Arc<dyn VectorStore>),
    })
}

/// The server's TLS configuration from `application.tls`, None when off.
///
/// # Errors
/// When a file cannot be read.
pub fn tls_config(tls: &TlsSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    if !tls.enabled() {
        return Ok(None);
    }
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("Failed to read the TLS {what} {} (application.tls)", path.display()))
    };
    let identity = Identity::from_pem(read(&tls.cert_file, "certificate")?, read(&tls.key_file, "private key")?);
    // A TLS handshake that has not finished in 10 s is not a client worth waiting for.
    let mut config = ServerTlsConfig::new().identity(identity).timeout(Duration::from_secs(10));
    if !tls.client_ca_file.as_os_str().is_empty() {
        config = config.client_ca_root(Certificate::from_pem(read(&tls.client_ca_file, "client CA")?));
    }
    Ok(Some(config))
}

/// Secret keys travel in every request: plaintext is for loopback only,
/// unless the operator says TLS ends in front of Lethe.
///
/// # Errors
/// When `addr` is not loopback, TLS is off and plaintext is not allowed.
pub fn refuse_plaintext_off_loopback(addr: SocketAddr, tls: bool, allowed: bool) -> anyhow::Result<()> {
    if tls || allowed || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve plaintext gRPC on {addr}: API keys would cross the network in clear. Set \
         application.tls.cert_file and application.tls.key_file (PEM), or bind a loopback address, or set \
         application.allow_plaintext_off_loopback: true if TLS ends in front of Lethe on a network nobody else reads"
    )
}

impl Application {
    /// # Errors
    /// When a dependency cannot be set up or the port cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let embedder = embedder(&settings)?;
        Self::build_with_embedder(settings, embedder).await
    }

    /// Like `build`, with an embedder given (tests share one loaded model).
    ///
    /// # Errors
    /// When a dependency cannot be set up or the port cannot be bound.
    pub async fn build_with_embedder(settings: Settings, embedder: Arc<dyn Embedder>) -> anyhow::Result<Self> {
        let pool = pool(&settings)?;
        if settings.database.run_migrations {
            migrate(&settings, &pool).await?;
        }
        if settings.database.require_service_role {
            refuse_log_owner(&settings, &pool).await?;
        }
        let stores = vector_stores(&settings, pool.clone()).await?;
        let a = &settings.audit;
        let signer = Arc::new(Signer::load(&a.signing_key_file, a.create_signing_key, &a.retired_public_keys)?);
        let signed = crate::audit::sign_unsigned_heads_once(&pool, &signer).await.context("Failed to sign the logs' unsigned heads")?;
        if signed > 0 {
            tracing::info!(tenants = signed, "signed the heads of deletion logs that ended before heads were signed");
        }
        let keys = crate::keys::checked_provider(&pool, &settings.keys).await.context("Failed to load the master keys (keys.*)")?;
        // Moves plaintext keys of earlier versions out, re-wraps keys of
        // older master versions, makes missing ones.
        let sealed = crate::keys::seal_all(&pool, &*keys).await.context("Failed to wrap the tenants' HMAC keys")?;
        if sealed > 0 {
            tracing::info!(tenants = sealed, version = keys.current_version(), "wrapped tenant HMAC keys under the current master key");
        }
        let address = format!("{}:{}", settings.application.host, settings.application.port);
        let listener = TcpListener::bind(&address).await.with_context(|| format!("Failed to bind {address}"))?;
        let addr = listener.local_addr()?;
        let tls = tls_config(&settings.application.tls)?;
        refuse_plaintext_off_loopback(addr, tls.is_some(), settings.application.allow_plaintext_off_loopback)?;
        let web = if settings.web.enabled {
            let address = format!("{}:{}", settings.web.host, settings.web.port);
            let web = TcpListener::bind(&address).await.with_context(|| format!("Failed to bind {address} (web)"))?;
            // The sign-in form carries a key: the same rule as gRPC's, and
            // the same certificate.
            let web_tls = crate::web::tls::acceptor(&settings.application.tls)?;
            refuse_plaintext_off_loopback(web.local_addr()?, web_tls.is_some(), settings.application.allow_plaintext_off_loopback)
                .context("web.host")?;
            Some((web, web_tls))
        } else {
            None
        };
        let wpool = worker_pool(&settings)?;
        let ctx = Context::new(pool, stores, embedder, signer, keys, settings);
        let mut worker_ctx = ctx.clone();
        worker_ctx.stores.pgvector = Arc::new(PgVectorStore::new(wpool.clone()));
        worker_ctx.stores.attached_pgvector = Arc::new(Vanishable::new(Arc::new(AttachedPgStore::new(wpool.clone()))));
        worker_ctx.pool = wpool;
        worker_ctx.slots = crate::context::slots(worker_ctx.settings.database.max_connections);
        Ok(Self { listener, addr, tls, ctx, worker_ctx, web })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the web view listens (None when `web.enabled` is off).
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The context the workers run with: the same, on the workers' pool
    /// ([`worker_pool`]).
    pub fn worker_context(&self) -> &Context {
        &self.worker_ctx
    }

    /// Records every vector-store call of the service and its workers in
    /// `log` (see [`Timed`](crate::vector_store::Timed)); off unless called.
    pub fn time_vector_stores(&mut self, log: &Arc<crate::vector_store::CallLog>) {
        self.ctx.stores = self.ctx.stores.timed(log);
        self.worker_ctx.stores = self.worker_ctx.stores.timed(log);
    }

    /// Serves gRPC and runs the workers until `shutdown` resolves (open
    /// streams get [`SHUTDOWN_GRACE`] to end).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (router, health) = crate::grpc::router(self.ctx.clone(), self.tls).await?;
        tracing::info!(addr = %self.addr, "Lethe is serving");
        let mut health_stop = stop_rx.clone();
        let health = tokio::spawn(health.run_until_stopped(async move {
            let _ = health_stop.wait_for(|s| *s).await;
        }));
        let mut worker_stop = stop_rx.clone();
        let worker = tokio::spawn(crate::erasure::run_worker_until_stopped(self.worker_ctx.clone(), async move {
            let _ = worker_stop.wait_for(|s| *s).await;
        }));
        let mut reindex_stop = stop_rx.clone();
        let reindexer = tokio::spawn(crate::reindex::run_worker_until_stopped(self.ctx.clone(), async move {
            let _ = reindex_stop.wait_for(|s| *s).await;
        }));
        let mut attach_stop = stop_rx.clone();
        let adopter = tokio::spawn(crate::attach::worker::run_worker_until_stopped(self.worker_ctx.clone(), async move {
            let _ = attach_stop.wait_for(|s| *s).await;
        }));
        let mut reconcile_stop = stop_rx.clone();
        let reconciler = tokio::spawn(crate::restore::run_worker_until_stopped(self.ctx.clone(), async move {
            let _ = reconcile_stop.wait_for(|s| *s).await;
        }));
        let mut retention_stop = stop_rx.clone();
        let sweeper = tokio::spawn(crate::retention::scheduler::run_until_stopped(self.ctx.clone(), async move {
            let _ = retention_stop.wait_for(|s| *s).await;
        }));
        let mut merger_stop = stop_rx.clone();
        let merger = tokio::spawn(crate::residual::merger::run_until_stopped(self.ctx.clone(), async move {
            let _ = merger_stop.wait_for(|s| *s).await;
        }));
        let web = self.web.map(|(listener, tls)| {
            let mut web_stop = stop_rx.clone();
            tokio::spawn(crate::web::run_until_stopped(listener, self.ctx.clone(), tls, async move {
                let _ = web_stop.wait_for(|s| *s).await;
            }))
        });
        let stop_rx_for_grace = stop_rx.clone();
        let mut server_stop = stop_rx;
        // Accepted connections without Nagle's algorithm: small responses
        // otherwise wait for the client's delayed ACK (~40 ms per call, seen as
        // GetErasure taking 40 ms on an idle machine).
        // TCP keepalive too: a peer that vanished without a FIN (a NAT
        // dropped it) is noticed even on a connection HTTP/2 does not ping.
        let keepalive = Duration::from_secs(self.ctx.settings.application.limits.keepalive_interval_secs);
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true)).with_keepalive(Some(keepalive));
        let server = router.serve_with_incoming_shutdown(incoming, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        // The server's graceful stop waits for open streams, and a client
        // watching a job that will not end now (its worker stopped) would
        // hold it for ever: after a grace period the streams are cut.
        let mut grace_stop = stop_rx_for_grace;
        let grace = async move {
            let _ = grace_stop.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            served = server => served.context("gRPC server failed")?,
            () = grace => tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "streams still open after the grace period: closed"),
        }
        worker.await.context("worker panicked")?;
        reindexer.await.context("re-index worker panicked")?;
        adopter.await.context("adoption worker panicked")?;
        reconciler.await.context("reconcile worker panicked")?;
        sweeper.await.context("retention scheduler panicked")?;
        merger.await.context("residual index merger panicked")?;
        health.await.context("health checker panicked")?;
        if let Some(web) = web {
            web.await.context("web view panicked")?.context("web view failed")?;
        }
        Ok(())
    }
}
