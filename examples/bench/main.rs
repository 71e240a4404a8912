//! Lethe's benchmark: erasure, throughput, ingest overhead, exact search and
//! embedding, each against the raw backend doing the bare minimum, measured
//! in the same run.
//!
//! ```text
//! . scripts/env.sh
//! cargo run --release --example bench -- --size 1000000 [--backend pgvector|qdrant|both] [--json out.json]
//! ```
//!
//! The data set (N vectors, N/10 subjects) lives in its own database
//! `lethe_bench_<N>` in the Postgres of DATABASE_URL and is built once: a
//! `bench_meta` row marks it loaded, and later runs reuse it. Lethe runs
//! in-process on port 0 and is called over gRPC like any client would.

mod client;
mod data;
mod floor;
mod measure;
mod qdrant;
mod report;
mod residual;
mod setup;
// The evaluation's reading and chunking of the corpus, shared.
#[path = "../residual_eval/corpus.rs"]
mod corpus;

use std::time::Instant;

use clap::Parser;

use crate::report::{Machine, Row};

#[derive(Parser, Debug, Clone)]
#[command(about = "Lethe benchmark against the raw backends")]
pub struct Args {
    /// Vectors in the data set (at least 2000).
    #[arg(long)]
    pub size: usize,
    #[arg(long, default_value = "pgvector")]
    pub backend: String,
    /// Vectors in the Qdrant data set (default: N with QDRANT_URL, min(N, 100000) on the stand-in).
    #[arg(long)]
    pub qdrant_size: Option<usize>,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Repetitions per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Erase workers (default: erasure.workers from configuration).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Vectors tracked per ingest run (default: min(100000, N); may exceed N).
    #[arg(long)]
    pub ingest_vectors: Option<usize>,
    /// Repetitions of the ingest figure (default: --runs).
    #[arg(long)]
    pub ingest_runs: Option<usize>,
    /// Keep the HNSW index during the ingest figure (slow: HNSW inserts dominate both sides).
    #[arg(long)]
    pub ingest_hnsw: bool,
    /// Chunks of the realistic (mail) text tracked per run of the ingest section's text row
    /// (default min(N, 20000); 0 skips the row; needs the corpus).
    #[arg(long)]
    pub ingest_text_chunks: Option<usize>,
    /// Vectors in the re-indexed collection (default: min(20000, N); may exceed N).
    #[arg(long)]
    pub reindex_vectors: Option<usize>,
    /// Vectors of the large subject in the erase section (default N/100, its size in the
    /// data set); another size erases a subject of that many fresh points with its tag
    /// (e.g. 10,000 at N = 100,000, the 1M figure's subject size on a smaller table).
    #[arg(long)]
    pub large_size: Option<usize>,
    /// Small subjects erased concurrently (default: min(1000, subjects of 10)).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Sections to skip: erase, throughput, ingest, screening, reindex, search, residual, embed;
    /// within residual: residual-old (the old way for comparison), residual-throughput.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Do not build the HNSW index when loading (it takes about an hour at
    /// 1M on 2 busy cores; erasure, counts and exact search do not use it).
    #[arg(long)]
    pub skip_hnsw: bool,
    /// Chunks of realistic text for the residual section (default: min(N, 100000)).
    #[arg(long)]
    pub residual_chunks: Option<usize>,
    /// The corpus the residual section's text comes from (default ../shared/data/enron-dev.jsonl).
    #[arg(long)]
    pub corpus: Option<std::path::PathBuf>,
    /// Load the data set (if needed) and stop.
    #[arg(long)]
    pub load_only: bool,
}

impl Args {
    pub fn runs(&self, section: &str) -> bool {
        !self.skip.iter().any(|s| s == section)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.size >= 2000, "--size must be at least 2000");
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut machine = None;

    if args.backend == "pgvector" || args.backend == "both" {
        let mut env = setup::pgvector(&args).await?;
        machine = Some(Machine::probe(env.postgres_version.clone()));
        notes.extend(env.notes.clone());
        if !args.load_only {
            // The peak from here on: Lethe serving and working through every
            // section, not the benchmark's generation of its data set.
            report::reset_peak_rss();
            measure::pgvector(&args, &mut env, &mut rows, &mut notes).await?;
            if let Some(peak) = report::peak_rss_mib() {
                rows.push(
                    Row::new("pgvector", "peak resident memory of the process running Lethe, over every section above", "MiB", &[peak], None)
                        .goal("≤ 1024 MiB")
                        .note("VmHWM of the benchmark's process, reset before the first section: Lethe in-process (its gRPC server, workers, pools, residual searches) and the benchmark's client, so an upper bound: the ingest section holds its points and raw batches at once (~450 MB at 100,000 vectors of 384), the realistic text's senders and point ids are held (~100 MB at 1M); the other data sets are generated as they are sent"),
                );
            }
        }
    }
    if (args.backend == "qdrant" || args.backend == "both") && !args.load_only {
        let postgres = qdrant::run(&args, &mut rows, &mut notes).await?;
        if machine.is_none() {
            machine = postgres.map(Machine::probe);
        }
    }
    compare_own_shares(&mut notes, &rows);
    let machine = machine.unwrap_or_else(|| Machine::probe("Postgres not used".into()));
    notes.push(format!("whole benchmark took {:.0} s", started.elapsed().as_secs_f64()));
    let table = report::markdown(&machine, args.size, &date, &rows, &notes);
    println!("\n{table}");
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "date": date, "n": args.size, "machine": machine, "rows": rows, "notes": notes, "markdown": table,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Lethe's own share of the same erasure on both backends, side by side.
fn compare_own_shares(notes: &mut Vec<String>, rows: &[Row]) {
    let own = |backend: &'static str| rows.iter().filter(move |r| r.backend == backend && r.figure.starts_with(client::OWN_SHARE));
    for q in own("qdrant") {
        if let Some(p) = own("pgvector").find(|p| p.figure == q.figure) {
            notes.push(format!(
                "{}: Qdrant {:.1} ms, pgvector {:.1} ms (medians; Qdrant / pgvector {:.2}); vector-store calls {:.1} vs {:.1} ms",
                q.figure,
                q.lethe.median,
                p.lethe.median,
                q.lethe.median / p.lethe.median,
                q.raw.as_ref().map_or(f64::NAN, |r| r.median),
                p.raw.as_ref().map_or(f64::NAN, |r| r.median),
            ));
        }
    }
}
