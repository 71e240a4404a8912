//! The residual-search evaluation of `../shared/data/README.md`, against a
//! running Lethe over gRPC:
//!
//! 1. ingests the corpus as a pipeline would (one source per message, header
//!    lines + body, chunks of ≤ ~1,000 characters on paragraph boundaries,
//!    each chunk tagged with its sender only, role owner), once: a second run
//!    reuses the ingested collection and continues where the last one stopped;
//! 2. adds derived sources for each person (excerpts of their own sentences
//!    without any identifier, owned by someone else) to `<collection>_derived`;
//! 3. erases each person (address + display name) with residual policy
//!    `report`, scores the report at the level of sources, and restores the
//!    person's own messages under a fresh subject id so the next person (and
//!    the next run) sees the whole corpus again;
//! 4. prints the table (Markdown) and writes it with the details as JSON.
//!
//! ```text
//! . scripts/env.sh
//! cargo build --release --bin lethe --example residual_eval
//! target/release/lethe tenant create residual-eval --format env > .lethe/eval.env   # LETHE_SK=… LETHE_AK=…
//! LETHE_APPLICATION__PORT=50061 LETHE_ERASURE__WORKERS=2 target/release/lethe serve &
//! set -a; . .lethe/eval.env; set +a
//! LETHE_URL=http://127.0.0.1:50061 target/release/examples/residual_eval --corpus ../shared/data/enron-dev.jsonl
//! ```
//!
//! The first run ingests the corpus (about 33,000 chunks: 15–60 minutes on two
//! cores); later runs with the same tenant and `--out-dir` reuse it.

mod client;
mod corpus;
mod score;
mod truth;

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Parser;
use lethe::grpc::pb;

use self::client::{Chunk, Lethe};
use self::score::Score;
use self::truth::{Derived, Person, Sources};

/// The development subjects of the README.
const DEV_SUBJECTS: &[&str] = &[
    "jeff.dasovich@enron.com=Jeff Dasovich",
    "chris.germany@enron.com=Chris Germany",
    "mike.grigsby@enron.com=Mike Grigsby",
    "drew.fossum@enron.com=Drew Fossum",
    "lynn.blair@enron.com=Lynn Blair",
    "robert.badeer@enron.com=Robert Badeer",
    "mary.cook@enron.com=Mary Cook",
    "david.oxley@enron.com=David Oxley",
];

#[derive(Parser, Debug)]
#[command(about = "Residual-search evaluation (../shared/data/README.md)")]
struct Args {
    /// People to evaluate, as `address=Display Name` (default: the README's development subjects).
    subjects: Vec<String>,
    /// The corpus (JSON lines: id, from, to, cc, date, subject, body).
    #[arg(long, env = "RESIDUAL_EVAL_CORPUS", default_value = "../shared/data/enron-dev.jsonl")]
    corpus: PathBuf,
    /// Only the first N messages of the corpus.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, env = "LETHE_URL", default_value = "http://127.0.0.1:50051")]
    url: String,
    /// Secret key of the evaluation tenant.
    #[arg(long, env = "LETHE_SK", hide_env_values = true)]
    sk: String,
    /// Auditor key of the evaluation tenant.
    #[arg(long, env = "LETHE_AK", hide_env_values = true)]
    ak: String,
    /// Collection of the corpus; derived sources go to `<collection>_derived`.
    #[arg(long, default_value = "enron_eval")]
    collection: String,
    #[arg(long, value_parser = ["pgvector", "qdrant"], default_value = "pgvector")]
    backend: String,
    /// Derived sources per person.
    #[arg(long, default_value_t = 10)]
    derived_per_person: usize,
    /// Chunks per Ingest request.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Ingest (or finish ingesting) and stop.
    #[arg(long)]
    ingest_only: bool,
    /// Where the ingest progress and the report are kept.
    #[arg(long, default_value = "target/residual_eval")]
    out_dir: PathBuf,
}

/// Chunk size of the pipeline, in bytes.
const CHUNK_SIZE: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let specs: Vec<&str> = if args.subjects.is_empty() {
        DEV_SUBJECTS.to_vec()
    } else {
        args.subjects.iter().map(String::as_str).collect()
    };
    let people = specs.into_iter().map(Person::parse).collect::<anyhow::Result<Vec<_>>>()?;
    let backend = if args.backend == "qdrant" { pb::Backend::Qdrant } else { pb::Backend::Pgvector };
    let messages = corpus::read(&args.corpus, args.limit)?;
    let lethe = Lethe::connect(&args.url, args.sk.clone(), args.ak.clone()).await?;
    std::fs::create_dir_all(&args.out_dir)?;

    ingest_corpus(&lethe, &args, backend, &messages).await?;
    if args.ingest_only {
        return Ok(());
    }
    let derived_collection = format!("{}_derived", args.collection);
    lethe.ensure_collection(&derived_collection, backend).await?;
    let mut derived = Vec::new();
    for p in &people {
        let own: Vec<&corpus::Message> = messages.iter().filter(|m| m.from == p.address).collect();
        let mut d = truth::derived_sources(p, &own, args.derived_per_person);
        d.extend(truth::as_mail(p, &d));
        // Always written (a few short texts): re-ingesting overwrites the same points.
        lethe.ingest(&derived_collection, derived_chunks(&d), args.batch).await?;
        derived.push(d);
    }
    let mut held: Sources = messages.iter().map(|m| (m.id.clone(), m.text())).collect();
    held.extend(held_derived(&args, &derived)?);

    let mut scores = Vec::new();
    for (p, d) in people.iter().zip(&derived) {
        let s = evaluate(&lethe, &args, p, d, &messages, &held).await?;
        eprintln!(
            "{:<28} must {:>4} recall {:.3}  derived {:>3} recall {:.3} (as mail {:.3})  candidates {:>4} precision {:.3}  {:.1}s",
            p.name,
            s.must,
            s.recall(),
            s.derived,
            s.recall_derived(),
            s.recall_derived_mail(),
            s.candidates,
            s.precision(),
            s.seconds_total
        );
        scores.push(s);
    }
    let table = score::table(&scores);
    println!("{table}");
    let report = serde_json::json!({
        "corpus": args.corpus, "messages": messages.len(), "collection": args.collection,
        "backend": args.backend, "people": scores, "overall": Score::total(&scores), "table": table,
    });
    let path = args.out_dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    eprintln!("details: {}", path.display());
    Ok(())
}

fn message_chunks(m: &corpus::Message, owner: &str) -> Vec<Chunk> {
    corpus::chunks(&m.text(), CHUNK_SIZE)
        .into_iter()
        .enumerate()
        .map(|(i, text)| Chunk {
            source_id: m.id.clone(),
            ordinal: u32::try_from(i).unwrap_or(u32::MAX),
            text,
            owner: owner.to_owned(),
        })
        .collect()
}

/// Every derived source in the tenant: this run's, and those earlier runs
/// wrote for other people (kept in `<out_dir>/<collection>.derived.json`,
/// or they would count as unexplained candidates).
fn held_derived(args: &Args, derived: &[Vec<Derived>]) -> anyhow::Result<Sources> {
    let path = args.out_dir.join(format!("{}.derived.json", args.collection));
    let mut all: Sources = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    all.extend(derived.iter().flatten().map(|d| (d.source_id.clone(), d.text.clone())));
    std::fs::write(&path, serde_json::to_vec_pretty(&all)?)?;
    Ok(all)
}

/// A bare excerpt is one chunk; one stored as mail is chunked like a message.
fn derived_chunks(d: &[Derived]) -> Vec<Chunk> {
    d.iter()
        .flat_map(|d| {
            let texts = if d.as_mail { corpus::chunks(&d.text, CHUNK_SIZE) } else { vec![d.text.clone()] };
            texts.into_iter().enumerate().map(|(i, text)| Chunk {
                source_id: d.source_id.clone(),
                ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                text,
                owner: d.owner.clone(),
            })
        })
        .collect()
}

/// Ingests the messages not ingested yet (progress kept in `<out_dir>/<collection>.ingested`).
async fn ingest_corpus(
    lethe: &Lethe,
    args: &Args,
    backend: pb::Backend,
    messages: &[corpus::Message],
) -> anyhow::Result<()> {
    let progress = args.out_dir.join(format!("{}.ingested", args.collection));
    let existed = lethe.ensure_collection(&args.collection, backend).await?;
    let mut done: usize = if existed {
        std::fs::read_to_string(&progress).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    } else {
        0
    };
    let start = std::time::Instant::now();
    let (mut chunks_done, total) = (0usize, messages.len());
    while done < total {
        let mut batch = Vec::new();
        let mut end = done;
        while end < total && batch.len() < args.batch {
            batch.extend(message_chunks(&messages[end], &messages[end].from));
            end += 1;
        }
        chunks_done += batch.len();
        lethe.ingest(&args.collection, batch, 1000).await?;
        done = end;
        std::fs::write(&progress, done.to_string())?;
        let rate = chunks_done as f64 / start.elapsed().as_secs_f64().max(0.001);
        eprintln!("ingested {done}/{total} messages ({chunks_done} chunks this run, {rate:.0} chunks/s)");
    }
    Ok(())
}

/// The subject id under which the person's own messages are live, restoring
/// them under a fresh id when an earlier run erased them.
async fn live_tag(lethe: &Lethe, args: &Args, p: &Person, own: &[&corpus::Message]) -> anyhow::Result<(String, usize)> {
    for k in 1..1000 {
        let tag = restored_tag(p, k);
        let (state, live) = lethe.subject(&tag).await?;
        if state != "unknown" && state != "active" {
            continue;
        }
        let expected: usize = own.iter().map(|m| corpus::chunks(&m.text(), CHUNK_SIZE).len()).sum();
        if usize::try_from(live).unwrap_or(0) != expected {
            restore(lethe, args, &tag, own).await?;
        }
        return Ok((tag, k));
    }
    anyhow::bail!("no usable subject id for {}", p.address)
}

/// The subject id of the person's messages: their address (a pipeline
/// tagging by address), then, once erased, one that does not name them. A
/// tag that holds an erased person's address (`addr#2`) is suppressed: it
/// is one of their identifiers, as a text's mentions are read.
fn restored_tag(p: &Person, k: usize) -> String {
    if k == 1 { p.address.clone() } else { format!("restored-{}-{k}", p.name.to_lowercase().replace(' ', "-")) }
}

async fn restore(lethe: &Lethe, args: &Args, tag: &str, own: &[&corpus::Message]) -> anyhow::Result<()> {
    let chunks: Vec<Chunk> = own.iter().flat_map(|m| message_chunks(m, tag)).collect();
    let (_, suppressed) = lethe.ingest(&args.collection, chunks, args.batch).await?;
    anyhow::ensure!(suppressed == 0, "restoring the messages of `{tag}`: {suppressed} chunks suppressed");
    Ok(())
}

async fn evaluate(
    lethe: &Lethe,
    args: &Args,
    p: &Person,
    derived: &[Derived],
    messages: &[corpus::Message],
    held: &Sources,
) -> anyhow::Result<Score> {
    let own: Vec<&corpus::Message> = messages.iter().filter(|m| m.from == p.address).collect();
    let own_ids: BTreeSet<String> = own.iter().map(|m| m.id.clone()).collect();
    let (tag, k) = live_tag(lethe, args, p, &own).await?;
    let done = lethe.erase_and_wait(&tag, &p.address, &p.name).await?;
    let found: BTreeSet<String> = done.job.residuals.iter().map(|c| c.source_id.clone()).collect();
    // Put the person's messages back for whoever comes next.
    if !own.is_empty() {
        restore(lethe, args, &restored_tag(p, k + 1), &own).await?;
    }
    let expected = truth::expected(p, held, &own_ids, derived);
    Ok(Score::new(&p.name, &expected, &found, done.total, done.residual))
}
