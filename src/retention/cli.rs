//! `lethe retention list|set|preview|sweep`: the retention rpcs from the
//! command line, against a running service, printed for people.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::Channel;

use crate::grpc::pb::{self, lethe_client::LetheClient};

/// What `lethe retention` does.
#[derive(Debug, Clone)]
pub enum Action {
    List,
    Set { collection: String, days: i32, source_kind: String, clear: bool },
    Preview { collection: String },
    /// With `wait`: until the queued jobs end, with their counts.
    Sweep { collection: String, wait: bool },
}

fn with_key<T>(key: &str, msg: T) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse().context("the key is not ASCII")?);
    Ok(req)
}

fn when(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

/// Runs `action` against the service at `url` with `key`; prints the result.
///
/// # Errors
/// When the service cannot be reached or refuses (the status is shown).
pub async fn run(url: &str, key: &str, action: Action) -> anyhow::Result<()> {
    let mut client = LetheClient::connect(url.to_owned()).await.with_context(|| format!("Failed to connect to {url}"))?;
    let out = match action {
        Action::List => {
            let r = client.list_retention(with_key(key, pb::ListRetentionRequest {})?).await?.into_inner();
            list_text(&r)
        }
        Action::Set { collection, days, source_kind, clear } => {
            let req = pb::SetRetentionRequest { collection, days, source_kind, clear };
            let c = client.set_retention(with_key(key, req)?).await?.into_inner();
            let mut s = String::new();
            collection_line(&mut s, &c);
            s
        }
        Action::Preview { collection } => {
            let r = client.preview_retention(with_key(key, pb::PreviewRetentionRequest { collection })?).await?.into_inner();
            sweep_text(&r.collections, "would erase")
        }
        Action::Sweep { collection, wait } => {
            let r = client.sweep_retention(with_key(key, pb::SweepRetentionRequest { collection })?).await?.into_inner();
            let mut s = sweep_text(&r.collections, "queued");
            if wait {
                for id in r.collections.iter().flat_map(|c| c.job_ids.iter()) {
                    let j = wait_for(&mut client, key, id).await?;
                    job_line(&mut s, &j);
                }
            }
            s
        }
    };
    print!("{out}");
    Ok(())
}

async fn wait_for(client: &mut LetheClient<Channel>, key: &str, job_id: &str) -> anyhow::Result<pb::ErasureJob> {
    loop {
        let j = client.get_erasure(with_key(key, pb::GetErasureRequest { job_id: job_id.to_owned() })?).await?.into_inner();
        let ended = [pb::JobStatus::Completed, pb::JobStatus::Failed, pb::JobStatus::Refused].iter().any(|s| *s as i32 == j.status);
        if ended {
            return Ok(j);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn collection_line(s: &mut String, c: &pb::CollectionRetention) {
    let days = if c.days > 0 { format!("{} days", c.days) } else { "off".to_owned() };
    let _ = write!(s, "{:<24} {days:<10}", c.collection);
    for k in &c.source_kinds {
        let d = if k.days > 0 { format!("{} days", k.days) } else { "kept".to_owned() };
        let _ = write!(s, " kind {}: {d};", k.source_kind);
    }
    if !c.supported {
        s.push_str(" (attached: not supported)");
    }
    let _ = writeln!(s, " last swept {}, next {}", when(c.last_swept_at.as_ref()), when(c.next_sweep_at.as_ref()));
}

/// `ListRetention` as a table.
pub fn list_text(r: &pb::ListRetentionResponse) -> String {
    let mut s = if r.scheduler_enabled {
        format!("scheduler on, every {} s\n", r.interval_secs)
    } else {
        "scheduler off on this server (SweepRetention still sweeps)\n".to_owned()
    };
    for c in &r.collections {
        collection_line(&mut s, c);
    }
    s
}

/// Preview or sweep results, one line per collection.
pub fn sweep_text(collections: &[pb::RetentionSweep], verb: &str) -> String {
    let mut s = String::new();
    if collections.is_empty() {
        s.push_str("no collection has a retention rule\n");
    }
    for c in collections {
        let _ = write!(
            s,
            "{}: {verb} {} sources ({} chunks); withheld under legal hold {} sources ({} chunks); in flight {}",
            c.collection, c.sources, c.chunks, c.withheld_sources, c.withheld_chunks, c.in_flight_sources
        );
        if c.failed_sources > 0 {
            let _ = write!(s, "; {} whose job failed, retried later", c.failed_sources);
        }
        if c.deferred_sources > 0 {
            let _ = write!(s, "; {} more at the next sweep", c.deferred_sources);
        }
        if c.oldest.is_some() {
            let _ = write!(s, "; oldest recorded {}", when(c.oldest.as_ref()));
        }
        s.push('\n');
        for id in &c.job_ids {
            let _ = writeln!(s, "  job {id}");
        }
    }
    s
}

fn job_line(s: &mut String, j: &pb::ErasureJob) {
    let (before, deleted, after, withheld) = j.counts.iter().fold((0, 0, 0, 0), |(b, d, a, w), c| {
        (b + c.before_total, d + c.deleted, a + c.after_total, w + c.withheld)
    });
    let status = pb::JobStatus::try_from(j.status)
        .map_or_else(|_| "unknown".to_owned(), |s| s.as_str_name().trim_start_matches("JOB_STATUS_").to_lowercase());
    let _ = write!(s, "job {}: {status}, {before} vectors before, {deleted} deleted, {after} after ({withheld} withheld)", j.job_id);
    if !j.error.is_empty() {
        let _ = write!(s, ": {}", j.error);
    }
    s.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_read_as_counts_per_collection() {
        let c = pb::RetentionSweep {
            collection: "docs".into(),
            sources: 3,
            chunks: 7,
            withheld_sources: 1,
            withheld_chunks: 2,
            deferred_sources: 5,
            job_ids: vec!["j1".into()],
            ..Default::default()
        };
        let text = sweep_text(&[c], "queued");
        assert!(text.starts_with("docs: queued 3 sources (7 chunks); withheld under legal hold 1 sources (2 chunks)"), "{text}");
        assert!(text.contains("5 more at the next sweep") && text.contains("  job j1"), "{text}");
        assert_eq!(sweep_text(&[], "queued"), "no collection has a retention rule\n");
    }
}
