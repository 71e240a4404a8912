//! Restore-guard commands that talk to a running service: `lethe reconcile`
//! (queues a run and waits for it, printing a line per collection) and
//! `lethe ledger export|import`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::grpc::pb::{self, lethe_client::LetheClient};

fn with_key<T>(key: &str, msg: T) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse().context("the key is not ASCII")?);
    Ok(req)
}

async fn connect(url: &str) -> anyhow::Result<LetheClient<tonic::transport::Channel>> {
    LetheClient::connect(url.to_owned()).await.with_context(|| format!("Failed to connect to {url}"))
}

/// A status for people and for the gRPC error it came from.
fn refused(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

/// The run's table: one line per collection, then the totals.
pub fn report(run: &pb::ReconcileRun) -> String {
    let mut out = String::new();
    for c in &run.collections {
        let backend = pb::Backend::try_from(c.backend).map_or("?", |b| b.as_str_name());
        out.push_str(&format!(
            "{:<24} {:<16} scanned {:>8}  came back {:>6} (tag {}, lineage {}, ledger {})  deleted {:>6}  after {}  lineage forgotten {}  withheld {}  log #{}\n",
            c.collection,
            backend.trim_start_matches("BACKEND_").to_lowercase(),
            c.scanned,
            c.before,
            c.found_by_tag,
            c.found_by_lineage,
            c.found_by_ledger,
            c.deleted,
            c.after,
            c.lineage_forgotten,
            c.withheld,
            c.log_seq,
        ));
    }
    out.push_str(&format!(
        "run {}: {} points came back and were deleted, {} lineage chunks forgotten, {} subjects scrubbed",
        run.run_id, run.came_back, run.lineage_forgotten, run.subjects_scrubbed
    ));
    if !run.held_subject_hashes.is_empty() {
        out.push_str(&format!(
            "\nnot reconciled, under legal hold: {} erased subjects ({})",
            run.held_subject_hashes.len(),
            run.held_subject_hashes.join(", ")
        ));
    }
    out
}

/// Queues a reconcile and waits until it ends (`--no-wait`: prints the run id).
///
/// # Errors
/// When the service cannot be reached, refuses, or the run fails.
pub async fn reconcile(url: &str, key: &str, requested_by: &str, wait: bool) -> anyhow::Result<()> {
    let mut client = connect(url).await?;
    let req = pb::ReconcileRequest { requested_by: requested_by.to_owned() };
    let mut run = client.reconcile(with_key(key, req)?).await.map_err(refused)?.into_inner();
    eprintln!("reconcile {} {}", run.run_id, if run.already_running { "was already running" } else { "queued" });
    if !wait {
        println!("{}", run.run_id);
        return Ok(());
    }
    let started = Instant::now();
    let terminal = [pb::JobStatus::Completed as i32, pb::JobStatus::Failed as i32];
    while !terminal.contains(&run.status) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let get = pb::GetReconcileRequest { run_id: run.run_id.clone() };
        run = client.get_reconcile(with_key(key, get)?).await.map_err(refused)?.into_inner();
        let done = run.collections.iter().filter(|c| c.done).count();
        eprint!("\r{done} collections reconciled, {:.0} s", started.elapsed().as_secs_f64());
        std::io::stderr().flush().ok();
    }
    eprintln!();
    println!("{}", report(&run));
    anyhow::ensure!(run.status == pb::JobStatus::Completed as i32, "reconcile failed: {}", run.error);
    Ok(())
}

/// Writes the tenant's ledger to `out` (`-`: stdout).
///
/// # Errors
/// When the service cannot be reached or refuses, or the file cannot be written.
pub async fn export_ledger(url: &str, key: &str, out: &Path) -> anyhow::Result<()> {
    let mut client = connect(url).await?;
    let mut stream = client.export_ledger(with_key(key, pb::ExportLedgerRequest {})?).await.map_err(refused)?.into_inner();
    // A one-shot command: plain blocking writes are fine here.
    let mut sink: Box<dyn Write> = if out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(out).with_context(|| format!("Failed to create {}", out.display()))?)
    };
    let mut bytes = 0usize;
    while let Some(chunk) = stream.message().await.map_err(refused)? {
        bytes += chunk.data.len();
        sink.write_all(&chunk.data).context("Failed to write the ledger")?;
    }
    sink.flush().context("Failed to write the ledger")?;
    eprintln!("ledger exported: {bytes} bytes (signed; keep it with the database backups)");
    Ok(())
}

/// Sends the ledger in `file` (`-`: stdin) to ImportLedger.
///
/// # Errors
/// When the file cannot be read, the service cannot be reached, or refuses the ledger.
pub async fn import_ledger(url: &str, key: &str, file: &Path) -> anyhow::Result<()> {
    let bytes = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("Failed to read stdin")?;
        b
    } else {
        std::fs::read(file).with_context(|| format!("Failed to read {}", file.display()))?
    };
    let chunks: Vec<pb::LedgerChunk> = bytes.chunks(1 << 20).map(|c| pb::LedgerChunk { data: c.to_vec() }).collect();
    let mut client = connect(url).await?;
    let out = client.import_ledger(with_key(key, tokio_stream::iter(chunks))?).await.map_err(refused)?.into_inner();
    println!(
        "ledger imported: {} subjects ({} new tombstones, {} restored subjects erased again, {} known, {} under legal hold), \
         {} points ({} new){}",
        out.subjects,
        out.tombstones_created,
        out.subjects_re_erased,
        out.subjects_known,
        out.held_subject_hashes.len(),
        out.points,
        out.points_added,
        if out.log_seq > 0 { format!("; logged as entry {}", out.log_seq) } else { "; nothing changed".into() },
    );
    println!("next: `lethe reconcile` deletes what the restore brought back");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_a_line_per_collection_and_names_held_subjects_by_hash() {
        let run = pb::ReconcileRun {
            run_id: "r".into(),
            came_back: 3,
            collections: vec![pb::ReconcileCollection {
                collection: "mail".into(),
                backend: pb::Backend::Pgvector as i32,
                before: 3,
                deleted: 3,
                log_seq: 7,
                done: true,
                ..Default::default()
            }],
            held_subject_hashes: vec!["ab12".into()],
            ..Default::default()
        };
        let text = report(&run);
        assert!(text.contains("mail") && text.contains("pgvector") && text.contains("log #7"), "{text}");
        assert!(text.contains("3 points came back"), "{text}");
        assert!(text.contains("under legal hold: 1 erased subjects (ab12)"), "{text}");
    }
}
