//! Operators' metrics in the Prometheus text format (`/metrics` on the web
//! port). Hand-written exposition: a handful of families does not need a
//! client crate. Process-local counters and histograms live here; job,
//! log and residual totals are read from the database at scrape time, so
//! every replica reports the same truth and a restart loses nothing.
//!
//! Nothing here names a subject, a tenant or a key: labels are job kinds,
//! statuses, stages, backends and error classes only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use sqlx::PgPool;

use crate::store::{Result, metrics as queries};

/// Upper bounds (seconds) of the stage latency buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    stages: Mutex<BTreeMap<&'static str, Histogram>>,
    backend_errors: Mutex<BTreeMap<(&'static str, String), u64>>,
    suppressed_chunks: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// Records how long an erasure stage ran (successful or not).
pub fn observe_stage(stage: &'static str, took: Duration) {
    let secs = took.as_secs_f64();
    if let Ok(mut stages) = REGISTRY.stages.lock() {
        let h = stages.entry(stage).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }
}

/// Counts chunks a write refused because they name an erased subject.
pub fn add_suppressed(chunks: u64) {
    REGISTRY.suppressed_chunks.fetch_add(chunks, Ordering::Relaxed);
}

/// Counts a vector backend error by class (`unavailable`, `backend`, …) and backend.
pub fn backend_error(class: &'static str, backend: &str) {
    if let Ok(mut errors) = REGISTRY.backend_errors.lock() {
        *errors.entry((class, backend.to_owned())).or_default() += 1;
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values here are fixed words from Lethe's own code and schema
/// (statuses, stages, backends); escaped anyway, as the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition: the database's figures as `database` holds them
/// ([`render_database`], read now or kept for a while by the caller), then
/// this process's counters.
pub fn render(database: &str) -> String {
    let mut out = database.to_owned();
    render_process(&mut out);
    out
}

/// The job, log and residual figures, read from the database now, across
/// every tenant; `read` numbers the read (the caller's count, shown in a
/// comment line, which scrapers ignore).
///
/// # Errors
/// Database failures.
pub async fn render_database(pool: &PgPool, read: u64) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "# lethe: database figures of read {read} since this service started");
    family(&mut out, "lethe_jobs", "gauge", "Jobs by kind (erasure, reindex, attach) and status.");
    for j in queries::jobs_by_status(pool).await? {
        let _ = writeln!(out, "lethe_jobs{{kind=\"{}\",status=\"{}\"}} {}", label(&j.kind), label(&j.status), j.jobs);
    }
    family(&mut out, "lethe_erasure_jobs_overdue", "gauge", "Erasure jobs past their deadline and not finished.");
    let _ = writeln!(out, "lethe_erasure_jobs_overdue {}", queries::overdue_jobs(pool).await?);
    family(&mut out, "lethe_deletion_log_entries", "gauge", "Deletion log entries (all tenants) by kind.");
    for (kind, n) in queries::log_entries_by_kind(pool).await? {
        let _ = writeln!(out, "lethe_deletion_log_entries{{kind=\"{}\"}} {n}", label(&kind));
    }
    family(&mut out, "lethe_residual_candidates_found_total", "counter", "Residual candidates found by erasure jobs, by backend.");
    for (backend, n) in queries::residual_found_by_backend(pool).await? {
        let _ = writeln!(out, "lethe_residual_candidates_found_total{{backend=\"{}\"}} {n}", label(&backend));
    }
    Ok(out)
}

/// This process's counters and histograms.
fn render_process(out: &mut String) {
    family(out, "lethe_suppressed_chunks_total", "counter", "Chunks refused on write because they name an erased subject (this process).");
    let _ = writeln!(out, "lethe_suppressed_chunks_total {}", REGISTRY.suppressed_chunks.load(Ordering::Relaxed));
    family(out, "lethe_backend_errors_total", "counter", "Vector backend errors by class and backend (this process).");
    if let Ok(errors) = REGISTRY.backend_errors.lock() {
        for ((class, backend), n) in errors.iter() {
            let _ = writeln!(out, "lethe_backend_errors_total{{class=\"{}\",backend=\"{}\"}} {n}", label(class), label(backend));
        }
    }
    family(out, "lethe_erasure_stage_seconds", "histogram", "How long erasure stages ran (this process).");
    let stages = REGISTRY.stages.lock().map(|s| s.clone()).unwrap_or_default();
    for (stage, h) in &stages {
        let stage = label(stage);
        for (le, n) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(out, "lethe_erasure_stage_seconds_bucket{{stage=\"{stage}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "lethe_erasure_stage_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "lethe_erasure_stage_seconds_sum{{stage=\"{stage}\"}} {}", h.sum);
        let _ = writeln!(out, "lethe_erasure_stage_seconds_count{{stage=\"{stage}\"}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        observe_stage("test_stage", Duration::from_millis(20));
        let mut out = String::new();
        render_process(&mut out);
        assert!(out.contains("lethe_erasure_stage_seconds_bucket{stage=\"test_stage\",le=\"0.01\"} 0"), "{out}");
        assert!(out.contains("lethe_erasure_stage_seconds_bucket{stage=\"test_stage\",le=\"0.025\"} 1"), "{out}");
        assert!(out.contains("lethe_erasure_stage_seconds_bucket{stage=\"test_stage\",le=\"+Inf\"} 1"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
