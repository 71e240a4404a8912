//! The auditor's web view in a real browser (headless Chromium): sign-in,
//! the log against GetErasure, the in-page Ed25519 check, tampering,
//! escaping, and `/metrics`. Screenshots go to `target/web-screenshots/`.

use lethe::grpc::pb;
use serde_json::{Value, json};

use crate::browser::{Browser, artifacts, chromium};
use crate::helpers::*;

const SCRIPT_ID: &str = "<script>alert(1)</script>";
const SCRIPT_REASON: &str = "<script>document.title='pwned'</script> & \"quotes\"";

async fn sign_in(b: &mut Browser, web: &str, key: &str) {
    b.goto(&format!("{web}/login")).await;
    b.submit(&format!("document.querySelector('input[name=key]').value = {}; document.forms[0].submit()", json!(key))).await;
}

/// Seeds two erasures and one legal-hold refusal; returns (ann, bob, refused job id).
async fn seed(app: &TestApp) -> (pb::ErasureJob, pb::ErasureJob, String) {
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 3), ("cyd", 1), (SCRIPT_ID, 1)]).await;
    let hold = pb::SetLegalHoldRequest { subject_id: "cyd".into(), hold: true, reason: "case 17".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("hold");
    let ann = app.wait_for_job(&app.erase("ann").await.job_id).await;
    let bob_req = pb::EraseRequest { subject: Some(person("bob")), reason: SCRIPT_REASON.into(), ..Default::default() };
    let bob = app.wait_for_job(&app.erase_with(bob_req).await.expect("erase bob").job_id).await;
    assert_eq!((ann.status, bob.status), (pb::JobStatus::Completed as i32, pb::JobStatus::Completed as i32));
    let refused = app.erase_with(pb::EraseRequest { subject: Some(person("cyd")), ..Default::default() }).await.unwrap_err();
    assert_eq!(reason(&refused), "legal_hold");
    let list = pb::ListErasuresRequest { status: pb::JobStatus::Refused as i32, ..Default::default() };
    let jobs = app.client.clone().list_erasures(req(&app.keys.ak, list)).await.expect("list").into_inner().jobs;
    (ann, bob, jobs[0].job_id.clone())
}

const ROWS_JS: &str = "({
  entries: Array.from(document.querySelectorAll('tr.entry')).map(r => ({seq: +r.dataset.seq, job: r.dataset.job, kind: r.dataset.kind,
    reason: r.querySelector('.reason').textContent})),
  counts: Array.from(document.querySelectorAll('tr.count')).map(r => ({seq: +r.dataset.seq, collection: r.dataset.collection,
    before: +r.querySelector('.before').textContent, deleted: +r.querySelector('.deleted').textContent,
    after: +r.querySelector('.after').textContent})),
  scripts: document.querySelectorAll('script').length,
  title: document.title })";

fn counts_of(job: &pb::ErasureJob) -> Vec<Value> {
    job.counts.iter().map(|c| json!([c.collection, c.before_total, c.deleted, c.after_total])).collect()
}

fn page_counts(rows: &Value, seq: u64) -> Vec<Value> {
    rows["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter(|c| c["seq"] == json!(seq))
        .map(|c| json!([c["collection"], c["before"], c["deleted"], c["after"]]))
        .collect()
}

#[tokio::test]
async fn the_auditors_view_matches_get_erasure_and_verifies_certificates_in_the_browser() {
    // Without a browser the test cannot check its claim: it fails rather than
    // pass unchecked (scripts/test.sh skips it by name and says so).
    let chromium = chromium().expect("no `chromium` on PATH: apt-get install chromium, or set LETHE_CHROMIUM");
    let app = spawn_app().await;
    let web = format!("http://{}", app.web.expect("the web view is on"));
    let (ann, bob, refused) = seed(&app).await;
    let mut b = Browser::launch(&chromium).await;

    // Not signed in, a wrong key, a publishable key: nothing but the sign-in page.
    b.goto(&format!("{web}/log")).await;
    assert_eq!(b.path().await, "/login");
    for key in ["ak_not-a-key-at-all-000000000000000".to_owned(), app.keys.pk.clone()] {
        sign_in(&mut b, &web, &key).await;
        assert_eq!(b.path().await, "/login", "{key}");
        assert!(b.text().await.contains("cannot open"));
        b.goto(&format!("{web}/log")).await;
        assert_eq!(b.path().await, "/login");
    }
    b.screenshot("login").await;

    sign_in(&mut b, &web, &app.keys.ak).await;
    assert_eq!(b.path().await, "/log");
    let html = b.eval("document.documentElement.outerHTML").await;
    assert!(!html.as_str().unwrap_or_default().contains(&app.keys.ak), "no key material in the page");
    let rows = b.eval(ROWS_JS).await;
    b.screenshot("log").await;
    let entries = rows["entries"].as_array().expect("entries");
    let kinds: Vec<&str> = entries.iter().map(|e| e["kind"].as_str().unwrap_or_default()).collect();
    assert_eq!(kinds, ["refusal", "erasure", "erasure"], "newest first: {rows}");
    let jobs: Vec<&str> = entries.iter().map(|e| e["job"].as_str().unwrap_or_default()).collect();
    assert_eq!(jobs, [refused.as_str(), bob.job_id.as_str(), ann.job_id.as_str()]);
    for (seq, job) in [(1, &ann), (2, &bob)] {
        let fresh = app.job(&job.job_id).await;
        assert_eq!(page_counts(&rows, seq), counts_of(&fresh), "entry {seq} shows GetErasure's counts");
        assert!(!counts_of(&fresh).is_empty());
    }
    // User text is text: the reason's markup is shown, not run.
    assert_eq!(entries[1]["reason"], json!(SCRIPT_REASON));
    assert_eq!(rows["scripts"], json!(0));
    assert_ne!(rows["title"], json!("pwned"));

    // One entry: the page's own Ed25519 check.
    b.goto(&format!("{web}/log/1")).await;
    b.wait_for("document.getElementById('verdict').textContent !== 'checking…'").await;
    let verdict = b.eval("[verdict.textContent, document.getElementById('sig-status').textContent]").await;
    assert_eq!(verdict[0], json!("valid"), "{verdict}");
    b.screenshot("entry").await;
    let cert = b.eval("fetch('/log/1/certificate.json').then(r => r.json())").await;
    assert_eq!(cert["job_id"], json!(ann.job_id));

    b.goto(&format!("{web}/verify")).await;
    assert_eq!(b.eval("document.getElementById('chain').textContent").await, json!("valid"));
    b.screenshot("verify").await;

    // A subject's live counts; a hostile id is shown as text.
    b.goto(&format!("{web}/subject")).await;
    b.submit(&format!("document.querySelector('input[name=id]').value = {}; document.forms[1].submit()", json!(SCRIPT_ID))).await;
    assert_eq!(b.eval("document.getElementById('subject-id').textContent").await, json!(SCRIPT_ID));
    assert_eq!(b.eval("document.querySelector('#counts .total').textContent").await, json!("1"));
    assert_eq!(b.eval("document.querySelectorAll('script').length").await, json!(0));
    b.screenshot("subject").await;

    b.goto(&format!("{web}/jobs")).await;
    b.screenshot("jobs").await;
    b.goto(&format!("{web}/jobs/{}", bob.job_id)).await;
    assert!(b.eval("document.querySelectorAll('#timeline tbody tr').length").await.as_u64().unwrap_or(0) > 0);
    assert!(b.text().await.contains(SCRIPT_REASON));
    b.screenshot("job").await;

    // Operators' metrics: counts, no subject data.
    b.goto(&format!("{web}/metrics")).await;
    let metrics = b.text().await;
    assert!(metrics.contains("lethe_jobs{kind=\"erasure\",status=\"completed\"} 2"), "{metrics}");
    assert!(metrics.contains("lethe_deletion_log_entries{kind=\"erasure\"} 2"), "{metrics}");
    assert!(metrics.contains("lethe_erasure_stage_seconds_count"), "{metrics}");
    assert!(!metrics.contains("ann") && !metrics.contains("script"), "{metrics}");

    // Tampered in SQL: the page's check says invalid, the chain names the entry.
    tamper(&app, r#"UPDATE deletion_log SET body = replace(body, '"deleted":2', '"deleted":1') WHERE seq = 1"#).await;
    b.goto(&format!("{web}/log/1")).await;
    b.wait_for("document.getElementById('verdict').textContent !== 'checking…'").await;
    assert_eq!(b.eval("verdict.textContent").await, json!("invalid"));
    b.screenshot("entry-tampered").await;
    b.goto(&format!("{web}/verify")).await;
    assert_eq!(b.eval("document.getElementById('chain').textContent").await, json!("invalid"));
    assert_eq!(b.eval("document.getElementById('first-bad').textContent").await, json!("entry 1"));
    b.screenshot("verify-tampered").await;

    // Signing out ends the session.
    b.submit("document.querySelector('form[action=\"/logout\"]').submit()").await;
    b.goto(&format!("{web}/log")).await;
    assert_eq!(b.path().await, "/login");
    eprintln!("screenshots in {}", artifacts().display());
}

/// Tampering needs a superuser: the log table refuses UPDATE and DELETE.
async fn tamper(app: &TestApp, sql: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE deletion_log DISABLE TRIGGER deletion_log_no_update").execute(&mut *tx).await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE deletion_log ENABLE TRIGGER deletion_log_no_update").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}
