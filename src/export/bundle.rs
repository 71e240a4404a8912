//! `lethe export`: an access export fetched over gRPC and written as a zip
//! (`<part>.jsonl` per part, then `manifest.json`) or as JSON lines
//! (`{"part": …, "record": …}` per record). Each part is hashed as it is
//! written and checked against the manifest the service sends last: a
//! bundle that does not match its manifest is an error, not a file.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::grpc::pb::{self, lethe_client::LetheClient};

/// How the bundle is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A zip of `<part>.jsonl` files and `manifest.json`.
    Zip,
    /// One JSON object per line: `{"part": …, "record": …}`.
    Jsonl,
}

/// What was written: records per part.
#[derive(Debug, Default)]
pub struct Written {
    pub records: BTreeMap<String, u64>,
    pub complete: bool,
}

enum Sink<W: Write> {
    Zip(Box<ZipWriter<zip::write::StreamWriter<W>>>),
    Lines(W),
}

/// Fetches the export of `subject` from the service at `url` and writes it to `out`.
///
/// # Errors
/// When the service cannot be reached or refuses, the stream fails, or the
/// bundle does not match the manifest.
pub async fn download<W: Write>(url: &str, key: &str, subject: &str, format: Format, out: W) -> anyhow::Result<Written> {
    let mut client = LetheClient::connect(url.to_owned()).await.with_context(|| format!("Failed to connect to {url}"))?;
    let mut req = tonic::Request::new(pb::ExportSubjectRequest { subject_id: subject.to_owned() });
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse().context("the key is not ASCII")?);
    let mut stream = client.export_subject(req).await.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();

    let mut sink = match format {
        Format::Zip => Sink::Zip(Box::new(ZipWriter::new_stream(out))),
        Format::Jsonl => Sink::Lines(out),
    };
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    let mut hashes: BTreeMap<String, Sha256> = BTreeMap::new();
    let mut written = Written::default();
    let mut current = String::new();
    let mut manifest = None;
    while let Some(record) = stream.next().await {
        let record = record.map_err(|s| anyhow::anyhow!("the export stopped: {}: {}", s.code(), s.message()))?;
        if record.part == "manifest" {
            manifest = Some(record.json);
            break;
        }
        let line = format!("{}\n", record.json);
        hashes.entry(record.part.clone()).or_default().update(line.as_bytes());
        *written.records.entry(record.part.clone()).or_default() += 1;
        match &mut sink {
            Sink::Zip(zip) => {
                if record.part != current {
                    zip.start_file(format!("{}.jsonl", record.part), options)?;
                    current.clone_from(&record.part);
                }
                zip.write_all(line.as_bytes())?;
            }
            Sink::Lines(w) => {
                let record_json: serde_json::Value = serde_json::from_str(&record.json).context("a record is not JSON")?;
                writeln!(w, "{}", serde_json::json!({ "part": record.part, "record": record_json }))?;
            }
        }
    }
    let Some(manifest) = manifest else { bail!("the export ended without its manifest") };
    check(&manifest, &hashes, &written)?;
    match sink {
        Sink::Zip(zip) => {
            let mut zip = *zip;
            zip.start_file("manifest.json", options)?;
            zip.write_all(manifest.as_bytes())?;
            zip.finish()?.into_inner().flush()?;
        }
        Sink::Lines(mut w) => {
            let m: serde_json::Value = serde_json::from_str(&manifest).context("the manifest is not JSON")?;
            writeln!(w, "{}", serde_json::json!({ "part": "manifest", "record": m }))?;
            w.flush()?;
        }
    }
    written.complete = true;
    Ok(written)
}

/// Every part the manifest says was included has the records and hash received.
fn check(manifest: &str, hashes: &BTreeMap<String, Sha256>, written: &Written) -> anyhow::Result<()> {
    let m: serde_json::Value = serde_json::from_str(manifest).context("the manifest is not JSON")?;
    let parts = m["parts"].as_array().context("the manifest lists no parts")?;
    for p in parts.iter().filter(|p| p["included"] == serde_json::json!(true)) {
        let name = p["name"].as_str().unwrap_or_default();
        let got = hashes.get(name).map_or_else(|| hex::encode(Sha256::digest(b"")), |h| hex::encode(h.clone().finalize()));
        let records = written.records.get(name).copied().unwrap_or(0);
        if p["sha256"].as_str() != Some(got.as_str()) || p["records"].as_u64() != Some(records) {
            bail!("part `{name}` does not match the manifest ({records} records received, sha256 {got})");
        }
    }
    Ok(())
}
