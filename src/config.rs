//! Configuration: `configuration/base.yaml`, then `configuration/<LETHE_ENVIRONMENT>.yaml`
//! (default `local`), then `LETHE_<SECTION>__<KEY>` environment variables.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

/// Every setting of a Lethe process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub application: ApplicationSettings,
    pub database: DatabaseSettings,
    pub qdrant: QdrantSettings,
    pub embedding: EmbeddingSettings,
    pub erasure: ErasureSettings,
    pub audit: AuditSettings,
    pub keys: KeySettings,
    pub residual: ResidualSettings,
    pub ingest: IngestSettings,
    pub attach: AttachSettings,
    pub retention: RetentionSettings,
    pub log: LogSettings,
    pub web: WebSettings,
    pub restore_guard: RestoreGuardSettings,
}

/// The restore guard (issue 16): the scheduled Reconcile and the ledger's
/// export and import (`restore`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreGuardSettings {
    /// Seconds between scheduled reconcile runs of a tenant that has erased
    /// subjects (the first one this long after its first erasure); 0: only
    /// the Reconcile rpc and `lethe reconcile` run them.
    pub reconcile_interval_secs: u64,
    /// How often a replica looks for tenants whose scheduled run is due.
    pub schedule_check_secs: u64,
    /// Points per page when a run scrolls a collection.
    pub page_size: usize,
    /// Largest ledger ImportLedger accepts (bytes).
    pub max_ledger_bytes: usize,
}

/// The auditor's web view and `/metrics` (`web`).
///
/// A port of its own rather than the gRPC port: browsers speak HTTP/1.1 and
/// tonic's server is tuned for HTTP/2 (keepalive pings, stream limits, a
/// request timeout that would cut a long chain verification), and a separate
/// listener lets an operator expose the page, or the scrape endpoint, to a
/// different network than the API, or not at all (`enabled: false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub enabled: bool,
    pub host: String,
    /// 0 binds a free port (tests).
    pub port: u16,
    /// A signed-in session ends this long after sign-in.
    pub session_ttl_secs: u64,
    /// Require a signed-in session (or an `ak_`/`sk_` bearer key) for
    /// `/metrics`. Off by default: scrapers rarely carry keys, and the
    /// metrics hold no subject data (counts and latencies across tenants).
    pub metrics_require_key: bool,
    /// How long (ms) the database's figures of a `/metrics` answer serve
    /// the next scrapes too (`web::metrics`): they are counts over every
    /// job and log entry ever made, so however many scrape, a replica
    /// reads them at most once in that time. 0: at every scrape.
    #[serde(default = "metrics_reuse")]
    pub metrics_reuse_ms: u64,
}

fn metrics_reuse() -> u64 {
    5_000
}

/// Attaching stores that Lethe did not create (issue 13).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachSettings {
    /// The stores a tenant's secret key may attach, as `pgvector:<schema>.<table>`
    /// or `qdrant:<collection>` patterns where `*` matches any run of
    /// characters (`pgvector:public.data_*`, `*`). Empty: Attach is refused.
    /// Every tenant may attach every listed store: list only stores whose
    /// points any tenant of this server may erase.
    pub allowed: Vec<String>,
    /// Seconds between rescans of an adopted store (new points the framework
    /// wrote); 0: no rescans (Track with point ids only teaches Lethe new points).
    pub rescan_interval_secs: u64,
    /// Points per page of the adoption scan.
    pub page_size: usize,
}

/// The retention scheduler (issue 16): sweeps each collection with a rule
/// every `interval_secs` and queues its sources past the rule as
/// `retention` erase jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Run the scheduler in this process. Off: rules are kept and
    /// `SweepRetention` still sweeps on request. Every replica may run it:
    /// each collection's sweep is claimed by one of them per interval.
    pub enabled: bool,
    /// Seconds between two sweeps of a collection.
    pub interval_secs: u64,
    /// Sources per retention job (its plan holds their point ids).
    pub sources_per_job: usize,
    /// At most `sources_per_job × max_jobs_per_sweep` sources of a collection
    /// are queued or running at once; a sweep queues what leaves room for,
    /// the rest waits for the next (at the next tick while a backlog lasts).
    pub max_jobs_per_sweep: usize,
    /// Retention jobs ask for guaranteed physical erasure (a rewrite of the
    /// collection's table or a Qdrant rebuild, and of Lethe's own tables).
    pub guarantee_physical: bool,
    /// The sources of a retention job that failed are queued again only this
    /// long after it ended (not at every sweep: one that cannot be erased
    /// would fail again every interval).
    pub retry_failed_after_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// The screening policy of collections created without one.
    pub screening: crate::domain::Screening,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSettings {
    pub host: String,
    /// 0 binds a free port (tests).
    pub port: u16,
    /// How often the health service probes Postgres and the vector
    /// backends (NOT_SERVING while one does not answer).
    pub health_check_interval_ms: u64,
    pub tls: TlsSettings,
    /// Serve plaintext gRPC on an address other than loopback. Off: such a
    /// server refuses to start without TLS, because secret keys travel in
    /// every request. Waive only where TLS ends in front of Lethe on a
    /// network nobody else reads (a sidecar proxy on the same host).
    pub allow_plaintext_off_loopback: bool,
    /// gRPC server reflection (`grpcurl` without the protos): it lists
    /// every rpc and message to anyone who connects.
    pub reflection: bool,
    pub limits: LimitSettings,
}

/// The gRPC server's certificate (rustls). Empty paths: no TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate.
    pub key_file: PathBuf,
    /// PEM CA certificate(s): when set, clients must present a certificate
    /// signed by one of them (mutual TLS).
    pub client_ca_file: PathBuf,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty() || !self.key_file.as_os_str().is_empty()
    }
}

/// Limits of the gRPC server: what one client or connection can hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Longest a request may take to be answered (a unary rpc, or a stream's
    /// first response); the client's `grpc-timeout` wins when shorter.
    pub request_timeout_secs: u64,
    /// Requests served at once per connection; more wait for a free slot.
    pub concurrency_per_connection: usize,
    /// HTTP/2 streams a client may open at once on one connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 ping (and TCP keepalive) interval on idle connections.
    pub keepalive_interval_secs: u64,
    /// A connection whose ping is not answered in this time is closed.
    pub keepalive_timeout_secs: u64,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The service's connection. In production, a role that may only do
    /// what the service needs (README "Running in production").
    pub url: SecretString,
    /// The connection migrations run on: the role that owns Lethe's tables.
    /// Empty: migrations run on `url`. When set, the role of `url` is given
    /// exactly the service's privileges after every migration run.
    pub migration_url: SecretString,
    /// Refuse to start when `url`'s role could alter the deletion log
    /// (superuser, or owner of `deletion_log`): on in production.
    pub require_service_role: bool,
    pub max_connections: u32,
    pub run_migrations: bool,
    /// PostgreSQL's `plan_cache_mode` on the workers' connections
    /// (`startup::worker_pool`). Generic by default; `auto` is the way back
    /// should a generic plan be worse on some data than planning each call.
    pub worker_plan_cache_mode: PlanCacheMode,
}

/// Values of PostgreSQL's `plan_cache_mode`, spelled as PostgreSQL spells
/// them (a mistake is refused at start with the three listed).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum PlanCacheMode {
    Auto,
    ForceGenericPlan,
    ForceCustomPlan,
}

impl PlanCacheMode {
    const ALL: [Self; 3] = [Self::Auto, Self::ForceGenericPlan, Self::ForceCustomPlan];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ForceGenericPlan => "force_generic_plan",
            Self::ForceCustomPlan => "force_custom_plan",
        }
    }
}

impl TryFrom<String> for PlanCacheMode {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == value)
            .ok_or_else(|| format!("`{value}` is not one of auto, force_generic_plan, force_custom_plan"))
    }
}

impl DatabaseSettings {
    /// # Errors
    /// When the URL is not a Postgres URL.
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        self.url
            .expose_secret()
            .parse()
            .context("database.url is not a valid Postgres URL")
    }

    /// Where migrations run when that is another role than the service's.
    ///
    /// # Errors
    /// When the URL is not a Postgres URL.
    pub fn migration_options(&self) -> anyhow::Result<Option<PgConnectOptions>> {
        let url = self.migration_url.expose_secret();
        if url.is_empty() || url == self.url.expose_secret() {
            return Ok(None);
        }
        Ok(Some(url.parse().context("database.migration_url is not a valid Postgres URL")?))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantSettings {
    /// gRPC URL (port 6334); `https://` enables TLS. Empty disables Qdrant.
    pub url: String,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    pub timeout_secs: u64,
    /// Prefix of the Qdrant collections that Lethe creates.
    pub collection_prefix: String,
}

/// Which embedder `Ingest` and residual search use.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    Fastembed,
    Hashing,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSettings {
    pub provider: EmbeddingProvider,
    pub model_name: String,
    pub model_dir: PathBuf,
    pub ort_dylib_path: PathBuf,
    pub dimension: usize,
    pub batch_size: usize,
    pub max_length: usize,
    pub threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureSettings {
    pub workers: usize,
    /// Most jobs one worker claims at once and runs stage by stage together
    /// (one claim, one lease renewal and one stage advance per batch, one
    /// log transaction for the batch's subject jobs); 1 runs one job at a time.
    pub batch_size: usize,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub default_deadline_days: u32,
    pub verify_retries: u32,
    pub delete_batch_size: usize,
    pub stage_pause_ms: u64,
    /// Least time between two rewrites (`VACUUM FULL`) of Lethe's own
    /// tables, which every tenant shares; jobs wait and share the next one.
    pub lineage_rewrite_interval_secs: u64,
    /// Longest wait of a guaranteed physical erasure for what is in its way
    /// (older snapshots, a re-index in flight) before it says `pending`.
    pub physical_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// The Ed25519 key that signs certificates and log heads. A relative
    /// path is relative to the directory that holds `configuration/` (not to
    /// the working directory).
    pub signing_key_file: PathBuf,
    /// Create the key when it is missing (a development convenience; in
    /// production create it once with `lethe signing-key --create` and give
    /// every replica the same file).
    #[serde(default)]
    pub create_signing_key: bool,
    /// Public keys (base64) of keys rotated out: what they signed still verifies.
    #[serde(default)]
    pub retired_public_keys: Vec<String>,
}

/// Where the master keys live that wrap the tenants' HMAC keys (`keys`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyProviderKind {
    /// `master_key_file`, created on first start.
    File,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub provider: KeyProviderKind,
    /// The master key file (JSON, mode 0600). Keep it out of database
    /// backups; every replica must read the same file.
    pub master_key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidualSettings {
    pub lexical: bool,
    pub semantic: bool,
    /// Cosine similarity from which a chunk counts as a neighbour of the
    /// subject's own chunks (examined where words cannot decide: chunks
    /// stored without text).
    pub own_chunk_threshold: f32,
    /// Cosine similarity from which a chunk that names the person weakly
    /// counts as near one of their identifiers.
    pub identifier_threshold: f32,
    pub max_candidates: usize,
    /// Share (0..=1) of a chunk's non-boilerplate words that must be the
    /// person's own for it to be reported as derived from their documents.
    pub derived_min_coverage: f32,
    /// Cosine similarity from which a neighbour is a near copy of one of the
    /// subject's own chunks.
    pub near_copy_threshold: f32,
    /// Closest neighbours examined per collection.
    pub semantic_pool: usize,
    /// Most candidates found by meaning alone (no identifier in the text).
    pub max_semantic: usize,
    /// How long a `SearchResiduals` call may search before it fails with
    /// DEADLINE_EXCEEDED (the erase job's residual stage is not limited).
    pub search_timeout_ms: u64,
    /// Under `delete` or `redact`, an identifier that matches more chunks
    /// than this is too common to act on: candidates found only through it
    /// are reported, not deleted or redacted.
    pub max_destructive_per_identifier: usize,
    /// Read only the chunks the residual index proposes (`residual::index`).
    /// Off: every chunk text of the tenant, as before the index (kept to
    /// compare the two in `examples/bench` and to rule the index out).
    #[serde(default = "enabled")]
    pub use_index: bool,
    /// Which of the person's own 5-grams the residual index is asked for
    /// (derived content): the smallest of every `derived_query_window`
    /// consecutive ones (winnowing), so that a chunk sharing that many
    /// consecutive 5-grams (window + 4 words) with their text is always
    /// read; 1 asks for every 5-gram. A long chunk written since the index
    /// winnows its own 5-grams (`residual::index::INDEX_WINDOW`, 12) is
    /// always read from runs of max(window, 12) + 4 words. What is read is
    /// then compared with all of them, as before.
    #[serde(default = "one")]
    pub derived_query_window: usize,
    /// Chunks read for one of the person's 5-grams before it is taken for
    /// boilerplate (0: no limit). A 5-gram held by this many chunks is read
    /// as a sample; if the sample shows it in `COMMON_SOURCES` other sources
    /// it counts neither for nor against, so the rest need not be read; if
    /// not, every chunk that holds it is read, as without the limit.
    #[serde(default)]
    pub common_key_sample: usize,
    /// How often (ms) the residual index's pending list is merged when it was
    /// empty at the last look (`residual::merger`); 0 leaves it to
    /// autovacuum and to the write that finds it full (16 MB: that write
    /// merges it all, and every lookup reads it meanwhile; not advised).
    #[serde(default = "merge_every")]
    pub index_merge_interval_ms: u64,
    /// Whether the service re-keys the texts an upgrade listed
    /// (`chunks_rekey`) from its start, in the background
    /// (`residual::merger`). Off: they stay listed, and every residual
    /// search reads them whole, until a replica with it on re-keys them
    /// (e.g. at a quieter hour).
    #[serde(default = "yes")]
    pub rekey_listed: bool,
}

fn merge_every() -> u64 {
    200
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

fn enabled() -> bool {
    true
}

/// Log output: `pretty` for people, `json` for collectors.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

/// Reads the layered configuration from `dir` (usually `./configuration`).
///
/// # Errors
/// When a file is malformed, a key is unknown, or a value fails validation.
pub fn load(dir: &Path) -> anyhow::Result<Settings> {
    let environment = std::env::var("LETHE_ENVIRONMENT").unwrap_or_else(|_| "local".into());
    let file = dir.join(format!("{environment}.yaml"));
    // A misspelt environment (`prodution`) would run on base.yaml alone:
    // plaintext, no service-role check. Only `local` may be absent.
    anyhow::ensure!(
        environment == "local" || file.is_file(),
        "LETHE_ENVIRONMENT={environment}: {} does not exist (environments here: {})",
        file.display(),
        environments(dir).join(", ")
    );
    refuse_misspelt_variables(dir)?;
    let mut settings: Settings = config::Config::builder()
        .add_source(config::File::from(dir.join("base.yaml")))
        .add_source(config::File::from(file).required(false))
        .add_source(
            config::Environment::with_prefix("LETHE")
                .prefix_separator("_")
                .separator("__")
                // Only LETHE_<SECTION>__<KEY>: other LETHE_* variables
                // (LETHE_ENVIRONMENT, script settings) are not configuration keys.
                .source(Some(section_variables())),
        )
        .build()
        .context("Failed to read configuration")?
        .try_deserialize()
        .context("Failed to parse configuration")?;
    // Key files are relative to the project, whatever the working directory:
    // a key found relative to the current directory would be another key.
    let root = dir.canonicalize().ok().and_then(|d| d.parent().map(Path::to_path_buf)).unwrap_or_default();
    for path in [&mut settings.audit.signing_key_file, &mut settings.keys.master_key_file] {
        if path.is_relative() {
            *path = root.join(&*path);
        }
    }
    settings.validate()?;
    Ok(settings)
}

/// Refuses a log filter with a directive that is neither a level nor
/// `target=level` (`degub`): `tracing` takes a bare word for a target,
/// and a typo would silence every log line, errors included. A bare
/// module path (`lethe::erasure`) or span filter is taken as written.
fn check_log_filter(name: &str, filter: &str) -> anyhow::Result<()> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    for d in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = d.rsplit_once('=').map_or(d, |(_, l)| l);
        let bare = !d.contains('=') && !d.contains("::") && !d.contains('[');
        let known = LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim()));
        anyhow::ensure!(
            known || (!bare && !d.contains('=')),
            "{name}: `{d}` is neither a level ({}) nor target=level",
            LEVELS.join(", ")
        );
        tracing_subscriber::EnvFilter::try_new(d).map_err(|e| anyhow::anyhow!("{name}: `{d}`: {e}"))?;
    }
    Ok(())
}

/// The environments whose files are in `dir` (every `*.yaml` but base).
fn environments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".yaml").map(str::to_owned))
                .filter(|n| n != "base")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Refuses `LETHE_<SECTION>_<KEY>` with one underscore where two belong
/// (`LETHE_DATABASE_URL`): ignored, it would leave the setting at its
/// default (another database) without a word.
fn refuse_misspelt_variables(dir: &Path) -> anyhow::Result<()> {
    let base = config::Config::builder()
        .add_source(config::File::from(dir.join("base.yaml")))
        .build()
        .context("Failed to read configuration")?;
    let sections: Vec<String> =
        base.try_deserialize::<std::collections::HashMap<String, config::Value>>().map(|t| t.into_keys().collect()).unwrap_or_default();
    match misspelt(&sections, std::env::vars().map(|(k, _)| k)) {
        Some(message) => anyhow::bail!(message),
        None => Ok(()),
    }
}

/// The first of `names` that is `LETHE_<SECTION>_<KEY>` for one of
/// `sections`, with what to write instead.
fn misspelt(sections: &[String], names: impl Iterator<Item = String>) -> Option<String> {
    for name in names.filter(|k| k.starts_with("LETHE_") && !k.contains("__")) {
        let rest = name["LETHE_".len()..].to_lowercase();
        if let Some(section) = sections.iter().find(|s| rest.strip_prefix(s.as_str()).is_some_and(|r| r.starts_with('_'))) {
            let key = &rest[section.len() + 1..];
            return Some(format!(
                "{name} is not read: configuration variables are LETHE_<SECTION>__<KEY>, with two underscores \
                 (LETHE_{}__{})",
                section.to_uppercase(),
                key.to_uppercase()
            ));
        }
    }
    None
}

fn section_variables() -> std::collections::HashMap<String, String> {
    std::env::vars().filter(|(k, _)| k.starts_with("LETHE_") && k.contains("__")).collect()
}

impl Settings {
    /// Rejects settings that would fail later in a less obvious way.
    ///
    /// # Errors
    /// Names the first invalid setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.database.max_connections >= 2, "database.max_connections must be at least 2");
        anyhow::ensure!(
            self.application.health_check_interval_ms > 0,
            "application.health_check_interval_ms must be positive"
        );
        let (tls, limits) = (&self.application.tls, &self.application.limits);
        anyhow::ensure!(
            tls.cert_file.as_os_str().is_empty() == tls.key_file.as_os_str().is_empty(),
            "application.tls needs both cert_file and key_file"
        );
        anyhow::ensure!(
            tls.enabled() || tls.client_ca_file.as_os_str().is_empty(),
            "application.tls.client_ca_file needs cert_file and key_file"
        );
        for (name, v) in [
            ("application.limits.request_timeout_secs", limits.request_timeout_secs),
            ("application.limits.concurrency_per_connection", limits.concurrency_per_connection as u64),
            ("application.limits.max_concurrent_streams", u64::from(limits.max_concurrent_streams)),
            ("application.limits.keepalive_interval_secs", limits.keepalive_interval_secs),
            ("application.limits.keepalive_timeout_secs", limits.keepalive_timeout_secs),
            ("application.limits.max_message_bytes", limits.max_message_bytes as u64),
        ] {
            anyhow::ensure!(v > 0, "{name} must be positive");
        }
        anyhow::ensure!((1..=4096).contains(&self.embedding.dimension), "embedding.dimension must be 1..=4096");
        anyhow::ensure!((1..=8192).contains(&self.embedding.max_length), "embedding.max_length must be 1..=8192 (tokens)");
        check_log_filter("log.filter", &self.log.filter)?;
        if let Ok(env) = std::env::var("RUST_LOG") {
            check_log_filter("RUST_LOG", &env)?;
        }
        anyhow::ensure!(self.embedding.threads <= 1024, "embedding.threads must be at most 1024 (0: the runtime's default)");
        anyhow::ensure!(self.erasure.poll_interval_ms >= 10, "erasure.poll_interval_ms must be at least 10");
        anyhow::ensure!(self.qdrant.timeout_secs > 0, "qdrant.timeout_secs must be positive");
        // Durations are added to timestamps in SQL: beyond a few years they
        // overflow there (every job failing at runtime behind a healthy service).
        const YEAR_SECS: u64 = 366 * 24 * 3600;
        for (name, secs) in [
            ("erasure.lease_secs", self.erasure.lease_secs),
            ("erasure.lineage_rewrite_interval_secs", self.erasure.lineage_rewrite_interval_secs),
            ("erasure.physical_wait_secs", self.erasure.physical_wait_secs),
            ("erasure.poll_interval_ms", self.erasure.poll_interval_ms / 1000),
            ("erasure.stage_pause_ms", self.erasure.stage_pause_ms / 1000),
            ("restore_guard.reconcile_interval_secs", self.restore_guard.reconcile_interval_secs),
            ("restore_guard.schedule_check_secs", self.restore_guard.schedule_check_secs),
            ("retention.interval_secs", self.retention.interval_secs),
            ("retention.retry_failed_after_secs", self.retention.retry_failed_after_secs),
            ("residual.search_timeout_ms", self.residual.search_timeout_ms / 1000),
            ("residual.index_merge_interval_ms", self.residual.index_merge_interval_ms / 1000),
            ("application.limits.request_timeout_secs", self.application.limits.request_timeout_secs),
            ("qdrant.timeout_secs", self.qdrant.timeout_secs),
        ] {
            anyhow::ensure!(secs <= 10 * YEAR_SECS, "{name} must be at most ten years");
        }
        anyhow::ensure!(self.embedding.batch_size > 0, "embedding.batch_size must be positive");
        anyhow::ensure!(self.erasure.workers > 0, "erasure.workers must be positive");
        anyhow::ensure!((1..=256).contains(&self.erasure.batch_size), "erasure.batch_size must be 1..=256");
        anyhow::ensure!(self.erasure.lease_secs > 0, "erasure.lease_secs must be positive");
        anyhow::ensure!(self.erasure.delete_batch_size > 0, "erasure.delete_batch_size must be positive");
        anyhow::ensure!(self.erasure.default_deadline_days > 0, "erasure.default_deadline_days must be positive");
        anyhow::ensure!(self.residual.search_timeout_ms > 0, "residual.search_timeout_ms must be positive");
        anyhow::ensure!(self.restore_guard.page_size > 0, "restore_guard.page_size must be positive");
        anyhow::ensure!(self.restore_guard.max_ledger_bytes > 0, "restore_guard.max_ledger_bytes must be positive");
        anyhow::ensure!(self.retention.interval_secs > 0, "retention.interval_secs must be positive");
        anyhow::ensure!(self.retention.sources_per_job > 0, "retention.sources_per_job must be positive");
        anyhow::ensure!(self.retention.max_jobs_per_sweep > 0, "retention.max_jobs_per_sweep must be positive");
        anyhow::ensure!(self.residual.derived_query_window > 0, "residual.derived_query_window must be positive");
        anyhow::ensure!(
            self.residual.max_destructive_per_identifier > 0,
            "residual.max_destructive_per_identifier must be positive"
        );
        for (name, t) in [
            ("residual.own_chunk_threshold", self.residual.own_chunk_threshold),
            ("residual.identifier_threshold", self.residual.identifier_threshold),
            ("residual.derived_min_coverage", self.residual.derived_min_coverage),
            ("residual.near_copy_threshold", self.residual.near_copy_threshold),
        ] {
            anyhow::ensure!((0.0..=1.0).contains(&t), "{name} must be within 0..=1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_configuration_loads_and_validates() {
        let settings = load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configuration"));
        let settings = settings.expect("base.yaml must load");
        assert_eq!(settings.embedding.dimension, 384);
        assert_eq!(settings.erasure.default_deadline_days, 30);
        assert_eq!(settings.database.worker_plan_cache_mode, PlanCacheMode::ForceGenericPlan);
    }

    #[test]
    fn the_workers_plan_cache_mode_takes_postgres_own_values_and_names_itself_otherwise() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configuration");
        let parse = |value: &str| {
            config::Config::builder()
                .add_source(config::File::from(dir.join("base.yaml")))
                .set_override("database.worker_plan_cache_mode", value)
                .and_then(|b| b.build())
                .and_then(config::Config::try_deserialize::<Settings>)
        };
        for mode in PlanCacheMode::ALL {
            assert_eq!(parse(mode.as_str()).expect("PostgreSQL's own spelling").database.worker_plan_cache_mode, mode);
        }
        for bad in ["generic", "FORCE_GENERIC_PLAN", ""] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("worker_plan_cache_mode") && e.contains("force_generic_plan"), "{bad}: {e}");
        }
    }

    #[test]
    fn operator_mistakes_are_refused_with_the_setting_named() {
        let sections: Vec<String> = ["database", "erasure", "restore_guard"].map(String::from).to_vec();
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>().into_iter();
        let m = misspelt(&sections, names(&["LETHE_PG_PORT", "LETHE_DATABASE_URL"])).expect("one underscore");
        assert!(m.contains("LETHE_DATABASE__URL"), "{m}");
        assert!(misspelt(&sections, names(&["LETHE_RESTORE_GUARD_PAGE_SIZE"])).is_some());
        assert!(misspelt(&sections, names(&["LETHE_DATABASE__URL", "LETHE_SK", "LETHE_ENVIRONMENT", "LETHE_PG_BIN"])).is_none());
        for bad in ["degub", "info,lethe=verbose", "warn,foo"] {
            assert!(check_log_filter("log.filter", bad).is_err(), "{bad}");
        }
        for good in ["info,sqlx=warn", "lethe::residual=info", "lethe::erasure", "WARN", "off"] {
            assert!(check_log_filter("log.filter", good).is_ok(), "{good}");
        }
        let mut settings = load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configuration")).expect("base.yaml loads");
        settings.embedding.max_length = 0;
        assert!(settings.validate().unwrap_err().to_string().contains("embedding.max_length"));
        settings.embedding.max_length = 256;
        settings.erasure.lease_secs = u64::MAX;
        assert!(settings.validate().unwrap_err().to_string().contains("erasure.lease_secs"));
        settings.erasure.lease_secs = 30;
        settings.erasure.poll_interval_ms = 0;
        assert!(settings.validate().unwrap_err().to_string().contains("erasure.poll_interval_ms"));
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configuration");
        assert_eq!(environments(&dir), ["local", "production"]);
    }

    #[test]
    fn an_erase_batch_of_no_jobs_or_of_more_than_256_is_refused_at_start() {
        let mut settings = load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configuration")).expect("base.yaml loads");
        for (size, valid) in [(0, false), (1, true), (256, true), (257, false)] {
            settings.erasure.batch_size = size;
            let outcome = settings.validate();
            assert_eq!(outcome.is_ok(), valid, "batch_size {size}: {outcome:?}");
            if let Err(e) = outcome {
                assert!(e.to_string().contains("erasure.batch_size"), "{e}");
            }
        }
    }

    #[test]
    fn production_configuration_turns_reflection_off_and_binds_every_interface() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configuration");
        let read = |file: &str| {
            config::Config::builder()
                .add_source(config::File::from(dir.join("base.yaml")))
                .add_source(config::File::from(dir.join(file)))
                .build()
                .and_then(config::Config::try_deserialize::<Settings>)
                .expect("configuration parses")
        };
        let production = read("production.yaml");
        assert!(!production.application.reflection);
        assert!(!production.application.allow_plaintext_off_loopback);
        assert_eq!(production.application.host, "0.0.0.0");
        assert!(production.application.tls.enabled(), "every interface with TLS, the web view's too");
        assert_eq!(production.web.host, "0.0.0.0");
        assert!(production.web.metrics_require_key);
        assert!(read("local.yaml").application.reflection);
    }
}
