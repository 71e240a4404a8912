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
    pub residual: ResidualSettings,
    pub ingest: IngestSettings,
    pub log: LogSettings,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub run_migrations: bool,
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
    pub signing_key_file: PathBuf,
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
    /// Under `delete` or `redact`, an identifier that matches more chunks
    /// than this is too common to act on: candidates found only through it
    /// are reported, not deleted or redacted.
    pub max_destructive_per_identifier: usize,
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
    let settings: Settings = config::Config::builder()
        .add_source(config::File::from(dir.join("base.yaml")))
        .add_source(config::File::from(dir.join(format!("{environment}.yaml"))).required(false))
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
    settings.validate()?;
    Ok(settings)
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
        anyhow::ensure!((1..=4096).contains(&self.embedding.dimension), "embedding.dimension must be 1..=4096");
        anyhow::ensure!(self.embedding.batch_size > 0, "embedding.batch_size must be positive");
        anyhow::ensure!(self.erasure.workers > 0, "erasure.workers must be positive");
        anyhow::ensure!(self.erasure.lease_secs > 0, "erasure.lease_secs must be positive");
        anyhow::ensure!(self.erasure.delete_batch_size > 0, "erasure.delete_batch_size must be positive");
        anyhow::ensure!(self.erasure.default_deadline_days > 0, "erasure.default_deadline_days must be positive");
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
    }
}
