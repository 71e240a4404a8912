//! The Qdrant side. Uses QDRANT_URL, or starts the stand-in
//! (qdrant-standin/target/debug/qdrant-standin) whose figures are indicative only.

use crate::Args;
use crate::report::Row;

pub async fn run(args: &Args, _rows: &mut Vec<Row>, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let url = std::env::var("QDRANT_URL").ok().filter(|u| !u.is_empty());
    let Some(url) = url else {
        notes.push("Qdrant: not measured (QDRANT_URL not set; stand-in figures are not wired into this run)".into());
        return Ok(());
    };
    let probe = lethe::vector_store::QdrantStore::connect(&url, None, std::time::Duration::from_secs(10)).await;
    if let Err(e) = probe {
        notes.push(format!("Qdrant at {url}: not measured, Lethe's Qdrant backend is not available in this build ({e})"));
        return Ok(());
    }
    let _ = args;
    notes.push("Qdrant: the Lethe-side measurement is not written yet".into());
    Ok(())
}
