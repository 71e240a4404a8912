//! The operator's view of a re-index or an adoption: starts it over gRPC
//! and draws a progress bar with an ETA on stderr until it ends.

use std::io::Write;
use std::time::Instant;

use anyhow::Context as _;

use crate::grpc::pb::{self, lethe_client::LetheClient};

fn with_key<T>(key: &str, msg: T) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse().context("the key is not ASCII")?);
    Ok(req)
}

/// One line: `[#####.....]  45% 4500/10000 copied, ETA 12 s (copy)`.
pub fn bar(job: &pb::ReindexJob, elapsed_secs: f64) -> String {
    line(job.copied, job.total, "copied", &job.stage, elapsed_secs)
}

/// One line: `[#####.....]  45% 4500/10000 scanned, ETA 12 s (in_progress)`.
pub fn attach_bar(job: &pb::AttachJob, elapsed_secs: f64) -> String {
    line(job.scanned, job.total, "scanned", &job.status, elapsed_secs)
}

fn line(done: u64, total: u64, what: &str, state: &str, elapsed_secs: f64) -> String {
    let shown_total = total;
    let total = total.max(1);
    let done_capped = done.min(total);
    let fraction = done_capped as f64 / total as f64;
    let filled = (fraction * 30.0).round() as usize;
    let eta = if done_capped == 0 || fraction >= 1.0 {
        "-".to_owned()
    } else {
        format!("{:.0} s", elapsed_secs * (1.0 - fraction) / fraction)
    };
    format!(
        "[{}{}] {:>3.0}% {}/{} {what}, ETA {eta} ({state})",
        "#".repeat(filled),
        ".".repeat(30 - filled),
        fraction * 100.0,
        done,
        shown_total,
    )
}

/// # Errors
/// When the service cannot be reached, refuses, or the adoption fails.
pub async fn attach(url: &str, key: &str, req: pb::AttachRequest) -> anyhow::Result<()> {
    let mut client = LetheClient::connect(url.to_owned()).await.with_context(|| format!("Failed to connect to {url}"))?;
    let name = req.name.clone();
    let done = client.attach(with_key(key, req)?).await?.into_inner();
    if done.already_attached {
        eprintln!("`{name}` was attached before with this mapping");
    }
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    for c in &done.indexes_created {
        eprintln!("created: {c}");
    }
    let started = Instant::now();
    let mut stream = client.watch_attach(with_key(key, pb::GetAttachRequest { collection: name.clone() })?).await?.into_inner();
    let mut last = None;
    while let Some(j) = stream.message().await? {
        eprint!("\r{}", attach_bar(&j, started.elapsed().as_secs_f64()));
        std::io::stderr().flush().ok();
        last = Some(j);
    }
    eprintln!();
    let last = last.context("no progress received")?;
    if last.status == "completed" {
        println!(
            "adopted `{name}`: {} points with subject tags, {} without, {} subjects, {} deleted as already erased, in {:.1} s",
            last.tracked,
            last.untagged,
            last.subjects,
            last.suppressed,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        anyhow::bail!("adoption failed: {}", last.error)
    }
}

/// # Errors
/// When the service cannot be reached, refuses, or the job fails.
pub async fn reindex(url: &str, key: &str, collection: &str, mode: &str) -> anyhow::Result<()> {
    let mode = match mode {
        "copy" => pb::ReindexMode::Copy,
        "reembed" => pb::ReindexMode::Reembed,
        other => anyhow::bail!("unknown mode `{other}` (copy or reembed)"),
    };
    let mut client = LetheClient::connect(url.to_owned()).await.with_context(|| format!("Failed to connect to {url}"))?;
    let req = pb::ReindexRequest { collection: collection.to_owned(), mode: mode as i32 };
    let job = client.reindex(with_key(key, req)?).await?.into_inner();
    eprintln!("re-index {} of `{collection}` started", job.job_id);
    let started = Instant::now();
    let mut stream = client.watch_reindex(with_key(key, pb::GetReindexRequest { job_id: job.job_id })?).await?.into_inner();
    let mut last = None;
    while let Some(j) = stream.message().await? {
        eprint!("\r{}", bar(&j, started.elapsed().as_secs_f64()));
        std::io::stderr().flush().ok();
        last = Some(j);
    }
    eprintln!();
    let last = last.context("no progress received")?;
    if last.status == pb::JobStatus::Completed as i32 {
        println!(
            "completed: {} points in the new generation, {} excluded, {} missing, in {:.1} s",
            last.final_count,
            last.excluded,
            last.missing,
            started.elapsed().as_secs_f64()
        );
        if !last.physical_detail.is_empty() {
            println!("{}", last.physical_detail);
        }
        Ok(())
    } else {
        anyhow::bail!("re-index failed: {}", last.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_progress_and_an_eta() {
        let job = pb::ReindexJob { total: 200, copied: 50, stage: "copy".into(), ..Default::default() };
        let line = bar(&job, 10.0);
        assert!(line.contains(" 25% 50/200"), "{line}");
        assert!(line.contains("ETA 30 s"), "{line}");
        let done = pb::ReindexJob { total: 200, copied: 200, stage: "done".into(), ..Default::default() };
        assert!(bar(&done, 10.0).contains("100%"));
    }
}
