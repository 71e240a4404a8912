//! The demo client: registers a collection, ingests chunks about three
//! people, erases one, watches the job, and prints the verified deletion log
//! entry and certificate. Run by `scripts/demo.sh`, which starts the service.
//!
//! Environment: `LETHE_URL` (default http://127.0.0.1:50051), `LETHE_SK`,
//! `LETHE_AK` (keys from `lethe tenant create`).

use std::time::Duration;

use lethe::grpc::pb::{self, lethe_client::LetheClient};
use tonic::Request;
use tonic::transport::Channel;

fn with_key<T>(key: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    let value = format!("Bearer {key}").parse().expect("a key is ASCII");
    req.metadata_mut().insert("authorization", value);
    req
}

async fn connect(url: &str) -> anyhow::Result<LetheClient<Channel>> {
    for _ in 0..240 {
        if let Ok(c) = LetheClient::connect(url.to_owned()).await {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("Lethe did not come up at {url}")
}

fn person(id: &str, email: &str, name: &str) -> pb::SubjectRef {
    let ident = |kind: pb::IdentifierKind, value: &str| pb::Identifier { kind: kind as i32, value: value.into() };
    pb::SubjectRef {
        id: id.into(),
        identifiers: vec![ident(pb::IdentifierKind::Email, email), ident(pb::IdentifierKind::Name, name)],
    }
}

const CORPUS: &[(&str, &str, &str)] = &[
    ("alice", "mail-1", "Alice Martin asked to move the quarterly pipeline review to Thursday afternoon."),
    ("alice", "mail-1", "She also wants the gas storage numbers for the Houston hub before the meeting."),
    ("alice", "mail-2", "Alice's notes: the west desk overran its credit limit twice in October."),
    ("alice", "mail-3", "Reminder from Alice: expense reports for the Calgary trip are due Friday."),
    ("bob", "mail-4", "Bob Chen shared the draft contract for the Portland transmission line."),
    ("bob", "mail-4", "Legal comments on clause 7 are attached; Bob needs them back by Monday."),
    ("bob", "mail-5", "Bob is out of office next week; for urgent issues ask Martin, Alice or the trading desk."),
    ("carol", "mail-6", "Carol Diaz published the updated risk model with the new volatility inputs."),
    ("carol", "mail-6", "The model now prices swing options daily instead of weekly."),
    ("carol", "mail-7", "Carol will present the regulatory filing timeline at the all-hands."),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("LETHE_URL").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let sk = std::env::var("LETHE_SK")?;
    let ak = std::env::var("LETHE_AK")?;
    let mut client = connect(&url).await?;
    let collection = format!("demo_mail_{}", std::process::id());

    let c = client
        .create_collection(with_key(&sk, pb::CreateCollectionRequest {
            name: collection.clone(),
            backend: pb::Backend::Pgvector as i32,
            dimension: 384,
            ..Default::default()
        }))
        .await?
        .into_inner();
    println!("registered collection {} → pgvector table {}", c.name, c.backend_name);

    let chunks = CORPUS
        .iter()
        .enumerate()
        .map(|(i, (who, src, text))| pb::IngestChunk {
            source_id: (*src).into(),
            text: (*text).into(),
            ordinal: u32::try_from(i).unwrap_or(0),
            tags: vec![pb::SubjectTag { subject_id: (*who).into(), role: pb::TagRole::Owner as i32 }],
            ..Default::default()
        })
        .collect();
    let subjects = vec![
        person("alice", "alice.martin@example.com", "Alice Martin"),
        person("bob", "bob.chen@example.com", "Bob Chen"),
        person("carol", "carol.diaz@example.com", "Carol Diaz"),
    ];
    let w = client
        .ingest(with_key(&sk, pb::IngestRequest { collection: collection.clone(), chunks, subjects }))
        .await?
        .into_inner();
    println!("ingested {} chunks (embedded with all-MiniLM-L6-v2), {} suppressed", w.accepted, w.suppressed);

    let counts = |client: LetheClient<Channel>, ak: String| async move {
        let mut client = client;
        let mut line = Vec::new();
        for who in ["alice", "bob", "carol"] {
            let r = client
                .count_subject(with_key(&ak, pb::CountSubjectRequest { subject_id: who.into() }))
                .await?
                .into_inner();
            let n: u64 = r.counts.iter().map(|c| c.before_total).sum();
            line.push(format!("{who}={n} ({})", r.subject_state));
        }
        anyhow::Ok(line.join(", "))
    };
    println!("live vectors before: {}", counts(client.clone(), ak.clone()).await?);

    let job = client
        .erase(with_key(&sk, pb::EraseRequest {
            subject: Some(person("alice", "alice.martin@example.com", "Alice Martin")),
            requested_by: "dpo@example.com".into(),
            reason: "GDPR Art. 17 request #2026-001".into(),
            idempotency_key: format!("demo-{}", std::process::id()),
            ..Default::default()
        }))
        .await?
        .into_inner();
    println!("erasure job {} queued (deadline in 30 days)", job.job_id);

    let mut events = client
        .watch_erasure(with_key(&ak, pb::GetErasureRequest { job_id: job.job_id.clone() }))
        .await?
        .into_inner();
    while let Some(e) = events.message().await? {
        println!("  [{}] {}", pb::Stage::try_from(e.stage).map_or("?", |s| s.as_str_name()), e.message);
    }
    let done = client.get_erasure(with_key(&ak, pb::GetErasureRequest { job_id: job.job_id.clone() })).await?.into_inner();
    println!("job status: {:?}", pb::JobStatus::try_from(done.status)?);
    for c in &done.counts {
        println!(
            "  {}: before {} (tag {}, lineage {}) → deleted {} → after {}; physical: {}",
            c.collection, c.before_total, c.before_by_tag, c.before_by_ids, c.deleted, c.after_total, c.physical_status
        );
    }
    println!("live vectors after:  {}", counts(client.clone(), ak.clone()).await?);
    for r in &done.residuals {
        // The matched texts were dropped when the job was logged: only the form and position stay.
        let how: Vec<String> = r.evidence.iter().map(|e| format!("{} {}", e.kind, e.detail)).collect();
        println!("  residual (untagged, reported): source {} score {:.2}: {}", r.source_id, r.score, how.join("; "));
    }

    let log = client.list_deletion_log(with_key(&ak, pb::ListDeletionLogRequest { after_seq: 0, limit: 1000 })).await?;
    let log = log.into_inner();
    let head = log.head.clone().ok_or_else(|| anyhow::anyhow!("the log has no signed head"))?;
    let entry = log.entries.into_iter().rev().find(|e| e.job_id == job.job_id);
    let entry = entry.ok_or_else(|| anyhow::anyhow!("no log entry for the job"))?;
    let body: serde_json::Value = serde_json::from_str(&entry.body)?;
    println!("deletion log entry #{} (hash {}):\n{}", entry.seq, entry.entry_hash, serde_json::to_string_pretty(&body)?);

    // An auditor keeps the signed head and pins it: a log shortened or
    // rewritten before it would no longer verify.
    let pins: Vec<String> = std::env::var("LETHE_SIGNING_PUBKEY").ok().into_iter().collect();
    let head_ok = lethe::audit::verify_pinned(&head.statement, &head.signature, &pins);
    println!("signed log head: {} entries, head {}, key {}: {:?}", head.size, head.head_hash, head.key_id, head_ok.is_ok());
    let pinned = pb::VerifyDeletionLogRequest { pinned_size: head.size, pinned_head_hash: head.head_hash.clone() };
    let v = client.verify_deletion_log(with_key(&ak, pinned)).await?.into_inner();
    println!("log chain verified against the pinned head: {} ({} entries, head {})", v.valid, v.entries_checked, v.head_hash);
    let cert = client.get_certificate(with_key(&ak, pb::GetCertificateRequest { job_id: job.job_id })).await?.into_inner();
    let json = serde_json::json!({ "body": cert.body, "signature": cert.signature }).to_string();
    let cert_ok = lethe::cli::verify_certificate_json(&json, &pins);
    println!("certificate signature ({}, key {}) checked against the pinned service key: {cert_ok:?}", cert.algorithm, cert.key_id);
    anyhow::ensure!(
        v.valid && head_ok.is_ok() && cert_ok.is_ok() && done.status == pb::JobStatus::Completed as i32,
        "demo did not verify"
    );
    Ok(())
}
