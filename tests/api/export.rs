//! Access export (ExportSubject, `lethe export`): what is held about a
//! person, from lineage and live from the backends; the manifest's hashes;
//! what an auditor key sees; the export logged without content; bad input.

use std::collections::BTreeMap;
use std::io::Read;

use lethe::grpc::pb;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::helpers::*;

async fn export_stream(
    mut client: lethe::grpc::pb::lethe_client::LetheClient<tonic::transport::Channel>,
    key: &str,
    subject: &str,
) -> Result<tonic::Streaming<pb::ExportRecord>, tonic::Status> {
    Ok(client.export_subject(req(key, pb::ExportSubjectRequest { subject_id: subject.into() })).await?.into_inner())
}

/// The stream's records, in order, as (part, JSON).
async fn export(app: &TestApp, key: &str, subject: &str) -> Result<Vec<(String, Value)>, tonic::Status> {
    let mut stream = export_stream(app.client.clone(), key, subject).await?;
    let mut out = Vec::new();
    while let Some(r) = stream.message().await? {
        out.push((r.part, serde_json::from_str(&r.json).expect("each record is JSON")));
    }
    Ok(out)
}

fn part<'a>(records: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    records.iter().filter(|(p, _)| p == name).map(|(_, v)| v).collect()
}

fn manifest(records: &[(String, Value)]) -> &Value {
    let (p, m) = records.last().expect("records");
    assert_eq!(p, "manifest", "the manifest comes last");
    m
}

fn manifest_part<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["parts"].as_array().expect("parts").iter().find(|p| p["name"] == json!(name)).expect("part in the manifest")
}

/// SHA-256 of a part's JSON lines, as the manifest defines it.
fn lines_hash(records: &[&Value]) -> String {
    let mut h = Sha256::new();
    for r in records {
        h.update(format!("{r}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

async fn seed(app: &TestApp) -> (pb::Collection, Vec<String>) {
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let ann = pb::SubjectRef {
        id: "ann".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "ann@acme.example".into() }],
    };
    app.client.clone().put_subject(req(&app.keys.sk, pb::PutSubjectRequest { subject: Some(ann) })).await.expect("put");
    let w = app
        .ingest(&c.name, vec![
            chunk("ann-cv", 0, "Ann's CV: ten years of logistics", &["ann"]),
            chunk("ann-cv", 1, "Ann speaks Portuguese and Dutch", &["ann"]),
            chunk("team-notes", 0, "Ann and Bob planned the offsite", &["ann", "bob"]),
            chunk("bob-memo", 0, "Bob's memo on the budget", &["bob"]),
        ])
        .await
        .expect("ingest");
    (c, w.point_ids)
}

#[tokio::test]
async fn a_secret_key_exports_everything_held_and_the_manifest_checks_it() {
    let app = spawn_app().await;
    let (_, points) = seed(&app).await;
    let records = export(&app, &app.keys.sk, "ann").await.expect("export");
    let order: Vec<&str> = records.iter().map(|(p, _)| p.as_str()).collect();
    let mut dedup = order.clone();
    dedup.dedup();
    assert_eq!(dedup, ["subject", "collections", "chunks", "sources", "manifest"], "parts in order (no jobs or log entries yet)");

    let subject = part(&records, "subject")[0];
    assert_eq!(subject["subject_id"], json!("ann"));
    assert_eq!(subject["state"], json!("active"));
    assert_eq!(subject["identifiers"], json!([{ "kind": "email", "value": "ann@acme.example" }]));

    // Live counts are CountSubject's.
    let live = app.count_subject("ann").await;
    let collections = part(&records, "collections");
    assert_eq!(collections.len(), live.counts.len());
    assert_eq!(collections[0]["total"], json!(live.counts[0].before_total));
    assert_eq!(collections[0]["total"], json!(3));

    // Every chunk lineage ties to her, with its text and the backend's point id.
    let chunks = part(&records, "chunks");
    let texts: Vec<&str> = chunks.iter().map(|c| c["text"].as_str().expect("text stored")).collect();
    assert_eq!(chunks.len(), 3, "{chunks:#?}");
    for t in ["Ann's CV: ten years of logistics", "Ann speaks Portuguese and Dutch", "Ann and Bob planned the offsite"] {
        assert!(texts.contains(&t), "{t}");
    }
    assert!(!texts.iter().any(|t| t.contains("memo")), "Bob's own chunk is not hers");
    // The chunk she shares with bob says so (it may hold his data too).
    let shared: Vec<bool> = chunks.iter().filter(|c| c["source_id"] == json!("team-notes")).map(|c| c["shared"] == json!(true)).collect();
    assert_eq!(shared, [true]);
    assert_eq!(chunks.iter().filter(|c| c["shared"] == json!(false)).count(), 2);
    for c in &chunks {
        assert!(points[..3].contains(&c["point_id"].as_str().unwrap().to_owned()), "{c}");
    }
    let sources: BTreeMap<&str, u64> =
        part(&records, "sources").iter().map(|s| (s["source_id"].as_str().unwrap(), s["chunks"].as_u64().unwrap())).collect();
    assert_eq!(sources, BTreeMap::from([("ann-cv", 2), ("team-notes", 1)]));

    // The manifest: counts and SHA-256 of each part's JSON lines, and the log entry.
    let m = manifest(&records);
    for name in ["subject", "collections", "chunks", "sources", "jobs", "log"] {
        let got = part(&records, name);
        let p = manifest_part(m, name);
        assert_eq!(p["records"], json!(got.len()), "{name}");
        assert_eq!(p["sha256"], json!(lines_hash(&got)), "{name}");
        assert_eq!(p["included"], json!(true));
    }

    // Logged in the chain: who and what counts, never the content or the id.
    let log = app.client.clone().list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap();
    let entry = log.into_inner().entries.into_iter().find(|e| e.kind == "export").expect("an export entry");
    assert_eq!(m["log_seq"], json!(entry.seq));
    let body: Value = serde_json::from_str(&entry.body).unwrap();
    assert_eq!(body["complete"], json!(true));
    assert_eq!(body["requested_by"]["kind"], json!("secret"));
    // The parts' counts, with their hashes keyed: a plain hash in the log would
    // let a reader test a guessed id against the subject part.
    let logged = body["parts"].as_array().unwrap();
    assert_eq!(logged.len(), 6);
    for p in logged {
        let shown = manifest_part(m, p["name"].as_str().unwrap());
        assert_eq!(p["records"], shown["records"]);
        assert!(p.get("sha256").is_none(), "{p}");
        assert_ne!(p["sha256_keyed"], shown["sha256"]);
        assert_eq!(p["sha256_keyed"].as_str().unwrap().len(), 64);
    }
    for needle in ["ann@acme.example", "logistics", "\"ann\"", "ann-cv"] {
        assert!(!entry.body.contains(needle), "{needle} in {}", entry.body);
    }
    let v = app.client.clone().verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap();
    assert!(v.into_inner().valid);

    // A later export lists the earlier one among the entries that concern her.
    let again = export(&app, &app.keys.sk, "ann").await.expect("export again");
    assert_eq!(part(&again, "log").iter().filter(|e| e["kind"] == json!("export")).count(), 1);
}

#[tokio::test]
async fn an_auditor_gets_what_lethe_did_and_the_hashes_of_what_it_may_not_see() {
    let app = spawn_app().await;
    seed(&app).await;
    let full = export(&app, &app.keys.sk, "ann").await.expect("sk");
    let audit = export(&app, &app.keys.ak, "ann").await.expect("ak");
    let parts: Vec<&str> = audit.iter().map(|(p, _)| p.as_str()).collect();
    assert!(parts.iter().all(|p| ["collections", "jobs", "log", "manifest"].contains(p)), "{parts:?}");
    let text = format!("{audit:?}");
    for needle in ["logistics", "ann@acme.example", "ann-cv"] {
        assert!(!text.contains(needle), "an auditor never sees {needle}");
    }
    let (m_full, m_audit) = (manifest(&full), manifest(&audit));
    for name in ["subject", "chunks", "sources"] {
        let p = manifest_part(m_audit, name);
        assert_eq!(p["included"], json!(false), "{name}");
        // The same content hashes the same: the auditor can check the person's bundle.
        assert_eq!(p["sha256"], manifest_part(m_full, name)["sha256"], "{name}");
        assert_eq!(p["records"], manifest_part(m_full, name)["records"], "{name}");
    }
}

#[tokio::test]
async fn an_erased_or_unknown_subject_exports_what_is_left_and_bad_requests_are_refused() {
    let app = spawn_app().await;
    seed(&app).await;
    let job = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32);
    let records = export(&app, &app.keys.sk, "ann").await.expect("export");
    let subject = part(&records, "subject")[0];
    assert_eq!(subject["state"], json!("erased"));
    assert_eq!(subject["identifiers"], json!([]), "identifiers went with the erasure");
    assert!(part(&records, "chunks").is_empty());
    assert_eq!(part(&records, "collections")[0]["total"], json!(0));
    let jobs = part(&records, "jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job_id"], json!(job.job_id));
    assert!(part(&records, "log").iter().any(|e| e["kind"] == json!("erasure")));

    let unknown = export(&app, &app.keys.sk, "nobody-we-know").await.expect("unknown");
    assert_eq!(part(&unknown, "subject")[0]["state"], json!("unknown"));
    assert_eq!(manifest(&unknown)["state"], json!("unknown"));

    for (id, field) in [("", "subject_id"), ("   ", "subject_id")] {
        let e = export(&app, &app.keys.sk, id).await.expect_err("blank");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(format!("{e:?}").contains(field));
    }
    let long = "x".repeat(300);
    assert_eq!(export(&app, &app.keys.sk, &long).await.expect_err("long").code(), Code::InvalidArgument);
    assert_eq!(export(&app, &app.keys.pk, "ann").await.expect_err("pk").code(), Code::PermissionDenied);
    assert_eq!(export(&app, "sk_nope", "ann").await.expect_err("bad key").code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_client_that_stops_reading_midway_is_logged_as_an_incomplete_export() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    // More records than the stream's buffer, so the export cannot finish unread.
    let chunks: Vec<pb::IngestChunk> = (0..300).map(|i| chunk(&format!("s{i}"), 0, &format!("ann's note {i}"), &["ann"])).collect();
    app.ingest(&c.name, chunks).await.expect("ingest");
    let mut stream = export_stream(app.client.clone(), &app.keys.sk, "ann").await.expect("export");
    stream.message().await.expect("first record").expect("a record");
    drop(stream);
    let mut body = None;
    for _ in 0..100 {
        let log = app.client.clone().list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap();
        if let Some(e) = log.into_inner().entries.into_iter().find(|e| e.kind == "export") {
            body = Some(serde_json::from_str::<Value>(&e.body).unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = body.expect("the abandoned export is logged");
    assert_eq!(body["complete"], json!(false));
    let chunks = body["parts"].as_array().unwrap().iter().find(|p| p["name"] == json!("chunks")).unwrap();
    assert!(chunks["records"].as_u64().unwrap() < 300, "it stopped when the client did: {chunks}");
}

/// An export that fails after its first parts left Lethe (a backend down
/// while its counts are read) is logged all the same, as incomplete: the
/// client has the person's subject record.
#[tokio::test]
async fn an_export_that_fails_midway_is_logged_as_incomplete() {
    let app = spawn_app().await;
    let (c, _) = seed(&app).await;
    sqlx::query(&format!("ALTER TABLE \"{}\" RENAME TO gone_for_a_while", c.backend_name)).execute(&app.pool).await.unwrap();
    let mut stream = export_stream(app.client.clone(), &app.keys.sk, "ann").await.expect("export");
    let first = stream.message().await.expect("the subject part").expect("a record");
    assert_eq!(first.part, "subject");
    let e = loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the export ended without its collection counts"),
            Err(e) => break e,
        }
    };
    assert_ne!(e.code(), Code::Ok);
    let log = app.client.clone().list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap();
    let entry = log.into_inner().entries.into_iter().find(|e| e.kind == "export").expect("the failed export is logged");
    let body: Value = serde_json::from_str(&entry.body).unwrap();
    assert_eq!(body["complete"], json!(false));
    let subject = body["parts"].as_array().unwrap().iter().find(|p| p["name"] == json!("subject")).expect("subject part");
    assert_eq!(subject["records"], json!(1), "{body}");
}

/// `lethe export --subject ann --out <out>` with `key`.
async fn export_to(app: &TestApp, out: &std::path::Path, key: &str) -> std::process::ExitStatus {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["export", "--subject", "ann", "--url", &format!("http://{}", app.addr), "--out"])
        .arg(out)
        .env("LETHE_SK", key)
        .status()
        .await
        .expect("lethe runs")
}

#[tokio::test]
async fn lethe_export_writes_a_zip_whose_files_match_the_manifest() {
    let app = spawn_app().await;
    seed(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ann.zip");
    assert!(export_to(&app, &out, &app.keys.sk).await.success());
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).expect("a zip");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().expect("a UTF-8 name").to_string();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        files.insert(name, text);
    }
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["chunks.jsonl", "collections.jsonl", "manifest.json", "sources.jsonl", "subject.jsonl"]);
    let m: Value = serde_json::from_str(&files["manifest.json"]).unwrap();
    for (name, text) in &files {
        let Some(part) = name.strip_suffix(".jsonl") else { continue };
        assert_eq!(manifest_part(&m, part)["sha256"], json!(hex::encode(Sha256::digest(text.as_bytes()))), "{name}");
    }
    assert_eq!(files["chunks.jsonl"].lines().count(), 3);

    // A pk key gets nothing, and no half file is left behind.
    let refused = dir.path().join("refused.zip");
    assert!(!export_to(&app, &refused, &app.keys.pk).await.success());
    assert!(!refused.exists());
    // Nor is a file that was there destroyed by a failed export over it.
    assert!(!export_to(&app, &out, &app.keys.pk).await.success());
    assert!(zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).is_ok(), "the earlier export is still there");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("ann.zip")], "no temporary file left");

    // To standard output (spooled until it matches its manifest): JSON lines, the manifest last.
    for (key, ok) in [(&app.keys.sk, true), (&app.keys.pk, false)] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args(["export", "--subject", "ann", "--format", "jsonl", "--url", &format!("http://{}", app.addr)])
            .env("LETHE_SK", key)
            .output()
            .await
            .expect("lethe runs");
        assert_eq!(out.status.success(), ok, "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if ok {
            assert_eq!(lines.iter().filter(|l| l["part"] == json!("chunks")).count(), 3);
            assert_eq!(lines.last().map(|l| l["part"].clone()), Some(json!("manifest")));
        } else {
            assert!(lines.is_empty(), "nothing written: {lines:?}");
        }
    }
}
