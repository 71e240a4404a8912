//! The `lethe` command line: serve, migrate, and operator tasks (tenants,
//! keys, offline certificate verification).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Parser)]
#[command(name = "lethe", version, about = "Lethe: the erasure layer for vector databases")]
pub struct Cli {
    /// Directory holding base.yaml and <LETHE_ENVIRONMENT>.yaml.
    #[arg(long, env = "LETHE_CONFIG_DIR", default_value = "configuration", global = true)]
    pub config_dir: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC service and the erasure workers (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Revoke an API key (give the whole key, or set `LETHE_REVOKE_KEY`:
    /// a command line is seen by every user of the machine and kept in
    /// shell histories).
    RevokeKey {
        #[arg(env = "LETHE_REVOKE_KEY", hide_env_values = true)]
        key: String,
    },
    /// Print the id and public key (base64) of the key that signs
    /// certificates and log heads: pin it wherever you verify them.
    SigningKey {
        /// Create the key file if it does not exist (once, before the first
        /// start; then give every replica the same file).
        #[arg(long)]
        create: bool,
        /// Replace the key by a new one; prints the old public key, to add to
        /// `audit.retired_public_keys` so that what it signed still verifies.
        #[arg(long, conflicts_with = "create")]
        rotate: bool,
    },
    /// The master keys that wrap the tenants' HMAC keys (`keys.master_key_file`).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Re-index a collection through a running service and follow it with a
    /// progress bar (`--key` is a secret key; `LETHE_SK` works too).
    Reindex {
        #[arg(long)]
        collection: String,
        /// `copy` (the live vectors) or `reembed` (the stored text, with the service's model).
        #[arg(long, default_value = "copy")]
        mode: String,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true)]
        key: String,
    },
    /// Attach an existing store (LangChain, LlamaIndex, hand-made) through a
    /// running service and follow its adoption with a progress bar, e.g.
    /// `lethe attach --name docs --preset langchain-pgvector --target my_docs --tag-key user_id`.
    Attach {
        /// Lethe's name for the collection.
        #[arg(long)]
        name: String,
        /// langchain-pgvector, langchain-pgvector-store, llamaindex-pgvector,
        /// langchain-qdrant or llamaindex-qdrant.
        #[arg(long)]
        preset: String,
        /// The LangChain collection name, the table, or the Qdrant collection.
        #[arg(long)]
        target: String,
        /// The metadata key that holds the person's id (`user_id`, `metadata.user_id`).
        #[arg(long)]
        tag_key: String,
        /// Create the index the tag filter needs when it is missing.
        #[arg(long)]
        create_indexes: bool,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true)]
        key: String,
    },
    /// Export everything Lethe and the backends hold about a subject (GDPR
    /// Art. 15) through a running service: a zip of `<part>.jsonl` files and
    /// `manifest.json` (records and SHA-256 per part), checked against the
    /// manifest as it is written, e.g. `lethe export --subject ann > ann.zip`.
    /// A secret key exports everything; an auditor key only what Lethe did
    /// and the manifest.
    Export {
        #[arg(long)]
        subject: String,
        #[arg(long, value_enum, default_value = "zip")]
        format: crate::export::bundle::Format,
        /// A file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true)]
        key: String,
    },
    /// Re-apply every past erasure after a restore (README "Restore guard"):
    /// queues a reconcile of the tenant through a running service, waits for
    /// it and prints what came back per collection (`--key` is a secret key).
    Reconcile {
        /// Recorded with the run (who asks, a ticket).
        #[arg(long, default_value = "")]
        requested_by: String,
        /// Print the run id and return at once.
        #[arg(long)]
        no_wait: bool,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true)]
        key: String,
    },
    /// The erasure ledger (tombstones and erased point hashes, signed):
    /// export it beside every database backup, import it after restoring
    /// Lethe's database from one, then `lethe reconcile`.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Retention rules and sweeps through a running service (`--key`: a
    /// secret key; an auditor key may `list` and `preview`), e.g.
    /// `lethe retention set --collection docs --days 30`, `lethe retention sweep --wait`.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051", global = true)]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true, global = true)]
        key: Option<String>,
    },
    /// Verify a certificate offline: a JSON file with `body` and `signature`
    /// (as GetCertificate returns it), against the service key(s) you pinned.
    VerifyCertificate {
        file: PathBuf,
        /// A pinned public key (base64, from `lethe signing-key`); repeat for
        /// retired keys. The key inside the file is never trusted.
        #[arg(long = "pin", env = "LETHE_SIGNING_PUBKEY", value_delimiter = ',')]
        pins: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Write the tenant's ledger to a file (`-`: stdout).
    Export {
        #[arg(long, short, default_value = "-")]
        out: PathBuf,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true)]
        key: String,
    },
    /// Import a ledger written by `export` (`-`: stdin); checked in full first.
    Import {
        file: PathBuf,
        #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, env = "LETHE_SK", hide_env_values = true)]
        key: String,
    },
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Every collection's rules, and when the scheduler sweeps it next.
    List,
    /// Set a collection's rule (days 0: off), or a source kind's (days 0:
    /// kept for ever; `--clear`: follow the collection's rule again).
    Set {
        #[arg(long)]
        collection: String,
        #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
        days: i32,
        #[arg(long, default_value = "")]
        source_kind: String,
        #[arg(long)]
        clear: bool,
    },
    /// What a sweep would erase now (counts; nothing changes).
    Preview {
        /// One collection; all with a rule when omitted.
        #[arg(long, default_value = "")]
        collection: String,
    },
    /// Sweep now: queue the sources past their rules as retention jobs.
    Sweep {
        #[arg(long, default_value = "")]
        collection: String,
        /// Only say what would be erased (as `preview`).
        #[arg(long)]
        dry_run: bool,
        /// Wait for the queued jobs to end and print their counts.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its three keys (shown once).
    Create {
        name: String,
        /// `text` for people, `env` for scripts (LETHE_SK=… lines).
        #[arg(long, default_value = "text")]
        format: String,
    },
}

/// Checks a certificate as GetCertificate returns it (JSON with `body` and
/// `signature`) against pinned public keys; returns the id of the key that
/// signed it. The key the file carries is not trusted: anyone can make a key
/// pair and sign a body with it.
///
/// # Errors
/// Not JSON, no pin, no pinned key verifies the signature, or the signed
/// body is not a certificate of the job the file names.
pub fn verify_certificate_json(text: &str, pins: &[String]) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_str(text).context("Not JSON")?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    let key_id = crate::audit::verify_pinned(&field("body"), &field("signature"), pins)?;
    // The same key signs other statements (log heads, ledger exports): a
    // body is a certificate only when it says so, for one job, by this key.
    let body: serde_json::Value = serde_json::from_str(&field("body")).context("The signed body is not JSON")?;
    anyhow::ensure!(
        body.get("certificate_version").and_then(serde_json::Value::as_u64).is_some_and(|n| n >= 1),
        "The signed body is not an erasure certificate (it has no certificate_version)"
    );
    let job = body.get("job_id").and_then(serde_json::Value::as_str).unwrap_or_default();
    anyhow::ensure!(!job.is_empty(), "The signed body is not an erasure certificate (it names no job_id)");
    let outer = field("job_id");
    anyhow::ensure!(outer.is_empty() || outer == job, "The certificate is for job {job}, not {outer}");
    let signed_by = body.get("key_id").and_then(serde_json::Value::as_str);
    anyhow::ensure!(signed_by.is_none_or(|k| k == key_id), "The body names key {}, but was verified by {key_id}", signed_by.unwrap_or_default());
    Ok(key_id)
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum KeysCommand {
    /// Add a master key version, make it current and re-wrap every tenant key under it.
    Rotate,
    /// Remove the master key versions that no tenant key is wrapped under anymore.
    Retire,
}

/// Runs an operator command that does not need the server.
///
/// # Errors
/// Whatever the command reports.
pub async fn run_admin(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => unreachable!("serve is run by main"),
        Command::Migrate => {
            let pool = crate::startup::pool(&settings)?;
            crate::startup::migrate(&settings, &pool).await?;
            println!("migrations applied");
        }
        Command::Tenant { command: TenantCommand::Create { name, format } } => {
            let pool = crate::startup::pool(&settings)?;
            crate::startup::migrate(&settings, &pool).await?;
            let t = crate::auth::create_tenant(&pool, &name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if format == "env" {
                println!("LETHE_TENANT_ID={}\nLETHE_SK={}\nLETHE_PK={}\nLETHE_AK={}", t.tenant_id, t.secret_key, t.publishable_key, t.auditor_key);
            } else {
                println!("tenant {name} ({})", t.tenant_id);
                println!("  secret key      {}", t.secret_key);
                println!("  publishable key {}", t.publishable_key);
                println!("  auditor key     {}", t.auditor_key);
                println!("Keys are stored hashed and cannot be shown again.");
            }
        }
        Command::RevokeKey { key } => {
            let pool = crate::startup::pool(&settings)?;
            crate::auth::revoke_key(&pool, &key).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("revoked");
        }
        Command::SigningKey { create, rotate } => {
            let path = &settings.audit.signing_key_file;
            if rotate {
                let (old, new) = crate::audit::rotate_signing_key(path)?;
                println!("rotated {}", path.display());
                println!("  new key {} {}", crate::audit::key_id(&new), crate::erasure::b64(&new));
                println!("  old key {} {}", crate::audit::key_id(&old), crate::erasure::b64(&old));
                println!("Add the old public key to audit.retired_public_keys, then restart every replica with the new file.");
            } else {
                let signer = crate::audit::Signer::load(path, create, &settings.audit.retired_public_keys)?;
                println!("{} {}", signer.key_id(), crate::erasure::b64(&signer.public_key()));
            }
        }
        Command::Keys { command } => {
            let pool = crate::startup::pool(&settings)?;
            let path = settings.keys.master_key_file.display();
            if command == KeysCommand::Rotate {
                let (version, n) = crate::keys::rotate(&pool, &settings.keys).await?;
                println!("master key version {version} is current in {path}; {n} tenant keys re-wrapped under it");
            } else {
                match crate::keys::retire(&pool, &settings.keys).await? {
                    (removed, Some(kept)) => {
                        println!("removed master key versions {removed:?} from {path}; they are kept in {}", kept.display());
                        println!(
                            "No tenant key of this database uses them. Delete that file once every other database this \
                             master key file serves has started with it (a database whose keys it holds would not start)."
                        );
                    }
                    (_, None) => println!("no master key version to remove from {path}"),
                }
            }
        }
        Command::Reindex { collection, mode, url, key } => crate::progress::reindex(&url, &key, &collection, &mode).await?,
        Command::Attach { name, preset, target, tag_key, create_indexes, url, key } => {
            let req = crate::grpc::pb::AttachRequest { name, preset, target, tag_key, create_indexes, ..Default::default() };
            crate::progress::attach(&url, &key, req).await?;
        }
        Command::Export { subject, format, out, url, key } => {
            let written = match &out {
                Some(path) => {
                    // Written beside the file and moved over it only once it
                    // matches its manifest: a failed export neither leaves a
                    // half bundle nor destroys a file that was there.
                    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| std::path::Path::new("."));
                    let mut spool = tempfile::NamedTempFile::new_in(dir)
                        .with_context(|| format!("Failed to create a temporary file in {}", dir.display()))?;
                    let downloaded =
                        crate::export::bundle::download(&url, &key, &subject, format, std::io::BufWriter::new(spool.as_file_mut())).await;
                    if downloaded.is_ok() {
                        spool.persist(path).with_context(|| format!("Failed to write {}", path.display()))?;
                    }
                    downloaded
                }
                None => {
                    // Standard output cannot be taken back: the bundle is
                    // written to a temporary file first and copied out only
                    // once it matches its manifest (a half bundle is no file).
                    let mut spool = tempfile::tempfile().context("Failed to create a temporary file")?;
                    let downloaded =
                        crate::export::bundle::download(&url, &key, &subject, format, std::io::BufWriter::new(&mut spool)).await;
                    if downloaded.is_ok() {
                        use std::io::Seek as _;
                        spool.rewind()?;
                        std::io::copy(&mut spool, &mut std::io::stdout().lock()).context("Failed to write the bundle")?;
                    }
                    downloaded
                }
            };
            let written = written?;
            let parts: Vec<String> = written.records.iter().map(|(p, n)| format!("{p} {n}")).collect();
            eprintln!("exported: {}; checked against the manifest", parts.join(", "));
        }
        Command::Reconcile { requested_by, no_wait, url, key } => {
            crate::operator::reconcile(&url, &key, &requested_by, !no_wait).await?;
        }
        Command::Ledger { command: LedgerCommand::Export { out, url, key } } => {
            crate::operator::export_ledger(&url, &key, &out).await?;
        }
        Command::Ledger { command: LedgerCommand::Import { file, url, key } } => {
            crate::operator::import_ledger(&url, &key, &file).await?;
        }
        Command::Retention { command, url, key } => {
            use crate::retention::cli::Action;
            let key = key.context("give --key (or LETHE_SK): a secret key, or an auditor key for list and preview")?;
            let action = match command {
                RetentionCommand::List => Action::List,
                RetentionCommand::Set { collection, days, source_kind, clear } => Action::Set { collection, days, source_kind, clear },
                RetentionCommand::Preview { collection } | RetentionCommand::Sweep { collection, dry_run: true, .. } => {
                    Action::Preview { collection }
                }
                RetentionCommand::Sweep { collection, wait, .. } => Action::Sweep { collection, wait },
            };
            crate::retention::cli::run(&url, &key, action).await?;
        }
        Command::VerifyCertificate { file, pins } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("Failed to read {}", file.display()))?;
            let key_id = verify_certificate_json(&text, &pins)?;
            println!("valid: Ed25519 signature by the pinned key {key_id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["lethe", "ledger", "import", "l.jsonl", "--key", "sk_x"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::Ledger { command: LedgerCommand::Import { .. } })));
        let cli = Cli::try_parse_from(["lethe", "reconcile", "--no-wait", "--key", "sk_x"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::Reconcile { no_wait: true, .. })));
    }
}
