//! The web view as a scraper or a script sees it, without a browser:
//! `/metrics` answers 401 (not the sign-in page), the entry page pins the
//! service key that signed a certificate even after a rotation, and with
//! `application.tls` the view is served over HTTPS only.

use std::sync::Arc;

use lethe::grpc::pb;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use crate::helpers::*;

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request over `io`, read to the end (`Connection: close`).
async fn exchange(mut io: impl AsyncRead + AsyncWrite + Unpin, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    io.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let _ = io.read_to_end(&mut raw).await; // a TLS peer may close without close_notify
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

async fn http(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let tcp = TcpStream::connect(app.web.expect("the web view is on")).await.expect("connect");
    exchange(tcp, method, path, headers, body).await
}

/// Signs in with `key`; the session cookie (`name=value`).
async fn sign_in(app: &TestApp, key: &str) -> String {
    let form = format!("key={key}");
    let r = http(app, "POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &form).await;
    assert_eq!(r.status, 303, "{}", r.head);
    r.header("set-cookie").and_then(|c| c.split(';').next()).expect("a session cookie").to_owned()
}

/// Which read of the database's figures an answer of `/metrics` carries.
fn figures_read(body: &str) -> u64 {
    let line = body.lines().find_map(|l| l.strip_prefix("# lethe: database figures of read ")).expect("the read's comment");
    line.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a read number")
}

/// `/metrics`' job, log and residual figures count everything ever erased:
/// scrapes within `web.metrics_reuse_ms` of a read, at once or one after
/// another, take that read's figures; with 0 every scrape reads, and sees
/// an erasure at once. The process's own counters are fresh every time.
#[tokio::test]
async fn metrics_read_the_database_at_most_once_per_reuse_period_however_many_scrape() {
    let app = spawn_app_configured(Options::default(), |s| s.web.metrics_reuse_ms = 600_000).await;
    let scrape = || async { http(&app, "GET", "/metrics", &[], "").await };
    let together = futures::future::join_all((0..6).map(|_| scrape())).await;
    let reads: Vec<u64> = together.iter().map(|r| figures_read(&r.body)).collect();
    assert_eq!(reads, [1; 6], "six at once, one read");
    let again = scrape().await;
    assert_eq!(figures_read(&again.body), 1, "and the next one within the period");
    assert!(again.body.contains("lethe_erasure_stage_seconds"), "the process's counters are there: {}", again.body);

    let app = spawn_app_configured(Options::default(), |s| s.web.metrics_reuse_ms = 0).await;
    let first = http(&app, "GET", "/metrics", &[], "").await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 1)]).await;
    let job = app.erase("ann").await;
    app.wait_for_job(&job.job_id).await;
    let second = http(&app, "GET", "/metrics", &[], "").await;
    assert_eq!((figures_read(&first.body), figures_read(&second.body)), (1, 2));
    assert!(second.body.contains("lethe_deletion_log_entries{kind=\"erasure\"} 1"), "{}", second.body);
}

#[tokio::test]
async fn metrics_answer_a_scraper_without_a_key_with_401_not_the_sign_in_page() {
    let app = spawn_app_configured(Options::default(), |s| s.web.metrics_require_key = true).await;
    let none = http(&app, "GET", "/metrics", &[], "").await;
    assert_eq!(none.status, 401, "{}", none.head);
    assert!(none.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{}", none.head);
    let wrong = http(&app, "GET", "/metrics", &[("Authorization", "Bearer ak_wrong-key-000000000000000000000")], "").await;
    assert_eq!(wrong.status, 401, "{}", wrong.head);
    let pk = format!("Bearer {}", app.keys.pk);
    assert_eq!(http(&app, "GET", "/metrics", &[("Authorization", &pk)], "").await.status, 403, "a publishable key may not");
    for key in [&app.keys.ak, &app.keys.sk] {
        let bearer = format!("Bearer {key}");
        let ok = http(&app, "GET", "/metrics", &[("Authorization", &bearer)], "").await;
        assert_eq!(ok.status, 200, "{}", ok.head);
        assert!(ok.body.contains("lethe_jobs"), "{}", ok.body);
    }
    // A signed-in browser may read them too.
    let cookie = sign_in(&app, &app.keys.ak).await;
    assert_eq!(http(&app, "GET", "/metrics", &[("Cookie", &cookie)], "").await.status, 200);
    // Pages still send a browser to sign in.
    assert_eq!(http(&app, "GET", "/log", &[], "").await.status, 303);
}

#[tokio::test]
async fn a_certificate_signed_before_a_key_rotation_pins_the_retired_key_that_signed_it() {
    let before = spawn_app().await;
    before.create_collection("mail", pb::Backend::Pgvector).await;
    before.ingest_people("mail", &[("ann", 2)]).await;
    let job = before.wait_for_job(&before.erase("ann").await.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32);

    let key_file = before.dir().join("signing_key.pem");
    let (old, new) = lethe::audit::rotate_signing_key(&key_file).expect("rotate");
    let b64 = |k: &[u8; 32]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, k);
    let (old_b64, master) = (b64(&old), before.dir().join("master_keys.json"));
    let after = spawn_app_at_configured(secrecy::ExposeSecret::expose_secret(&before.settings.database.url), qdrant_url().as_deref(), Options::default(), |s| {
        s.audit.signing_key_file = key_file.clone();
        s.audit.create_signing_key = false;
        s.audit.retired_public_keys = vec![old_b64.clone()];
        s.keys.master_key_file = master.clone();
    })
    .await;
    let cookie = sign_in(&after, &before.keys.ak).await;
    let page = http(&after, "GET", "/log/1", &[("Cookie", &cookie)], "").await;
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(page.body.contains(&format!("data-pinned-key=\"{old_b64}\"")), "the retired key that signed it is pinned");
    assert!(!page.body.contains(&format!("data-pinned-key=\"{}\"", b64(&new))));
    assert!(page.body.contains("rotated out"), "the page says the key is retired");
    // The whole chain still verifies under the rotated service.
    let verify = http(&after, "GET", "/verify", &[("Cookie", &cookie)], "").await;
    assert!(verify.body.contains("id=\"chain\""), "{}", verify.body);
    assert!(verify.body.contains(">valid<"), "{}", verify.body);
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

#[tokio::test]
async fn with_tls_on_the_web_view_is_served_over_https_only_with_the_grpc_certificate() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.application.tls.cert_file = fixture("server.pem");
        s.application.tls.key_file = fixture("server.key");
    })
    .await;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(fixture("ca.pem")).expect("ca.pem") {
        roots.add(ca.expect("a certificate")).expect("a CA");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let web = app.web.expect("the web view is on");
    let tcp = TcpStream::connect(web).await.expect("connect");
    let tls = connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("TLS handshake");
    let form = format!("key={}", app.keys.ak);
    let r = exchange(tls, "POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &form).await;
    assert_eq!(r.status, 303, "{}", r.head);
    let cookie = r.header("set-cookie").expect("a session cookie");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");

    // Plaintext HTTP gets no page (the key in a sign-in form never crosses in clear).
    let plain = http(&app, "GET", "/login", &[], "").await;
    assert_ne!(plain.status, 200, "{}", plain.head);
    assert!(!plain.body.contains("<form"), "{}", plain.body);
}

/// A `follow_up` entry names the erasure it follows (its `job_id`), whose
/// certificate is that erasure's entry's: the entry's page showed that
/// certificate, and the in-browser check compared it with the wrong entry
/// ("INVALID" on an untouched log). Only an entry's own certificate is shown.
#[tokio::test]
async fn a_follow_up_entry_shows_no_certificate_of_another_entry() {
    use lethe::vector_store::{PgVectorStore, PointPayload, VectorPoint, VectorStore};
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("ann", 2)]).await;
    let job = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32);
    // Her late point, written by a pipeline straight into the table, then tracked: deleted and logged as a follow-up.
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let id = uuid::Uuid::new_v4();
    let payload = PointPayload { tenant_id: app.keys.tenant_id, source_id: "late".into(), subjects: vec!["ann".into()], text: None };
    let vector = crate::reindex::random_vectors(&app, 1, 3).remove(0);
    PgVectorStore::new(app.pool.clone()).upsert(&spec, &[VectorPoint { id, vector, payload }]).await.unwrap();
    let late = pb::TrackedPoint {
        point_id: id.to_string(),
        source_id: "late".into(),
        tags: vec![pb::SubjectTag { subject_id: "ann".into(), role: pb::TagRole::Owner as i32 }],
        ..Default::default()
    };
    let track = pb::TrackRequest { collection: c.name.clone(), points: vec![late], ..Default::default() };
    let w = app.client.clone().track(req(&app.keys.pk, track)).await.unwrap().into_inner();
    assert_eq!(w.suppressed_deleted, 1);

    let cookie = sign_in(&app, &app.keys.ak).await;
    let erasure = http(&app, "GET", "/log/1", &[("Cookie", &cookie)], "").await;
    assert!(erasure.body.contains("data-pinned-key"), "the erasure's entry shows its certificate");
    let follow_up = http(&app, "GET", "/log/2", &[("Cookie", &cookie)], "").await;
    assert_eq!(follow_up.status, 200, "{}", follow_up.head);
    assert!(follow_up.body.contains("follow_up"), "{}", follow_up.body);
    assert!(!follow_up.body.contains("data-pinned-key"), "no certificate of another entry: {}", follow_up.body);
    assert!(follow_up.body.contains("No certificate"));
    for seq in ["0", "-1"] {
        assert_eq!(http(&app, "GET", &format!("/log/{seq}"), &[("Cookie", &cookie)], "").await.status, 404, "/log/{seq}");
    }
    // Nor is the erasure's certificate served as the follow-up's download.
    assert_eq!(http(&app, "GET", "/log/1/certificate.json", &[("Cookie", &cookie)], "").await.status, 200);
    assert_eq!(http(&app, "GET", "/log/2/certificate.json", &[("Cookie", &cookie)], "").await.status, 404);

    // The list shows the follow-up's counts (kept at the top of its body),
    // and filters by every kind and physical status the log holds.
    let rows = |body: &str| body.matches("<tr class=\"entry\"").count();
    let follow_ups = http(&app, "GET", "/log?kind=follow_up", &[("Cookie", &cookie)], "").await;
    assert_eq!(rows(&follow_ups.body), 1, "{}", follow_ups.body);
    let counts = r#"<td class="n before">1</td><td class="n deleted">1</td><td class="n after">0</td>"#;
    assert!(follow_ups.body.contains(counts), "{}", follow_ups.body);
    for (value, label) in [("follow_up", "follow-up"), ("reconcile", "reconcile"), ("retention", "retention"), ("confirmed", "confirmed")] {
        assert!(follow_ups.body.contains(&format!("<option value=\"{value}\"")), "{label} is offered");
    }
    let status: String = sqlx::query_scalar("SELECT body::jsonb->'collections'->0->>'physical_status' FROM deletion_log WHERE seq = 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let by_status = http(&app, "GET", &format!("/log?status={status}"), &[("Cookie", &cookie)], "").await;
    assert_eq!(rows(&by_status.body), 1, "the erasure, by its physical status {status}");
}

/// A failure entry counts only what was counted before: its list row says
/// "not counted" (—) for deleted and after, never 0.
#[tokio::test]
async fn a_failure_entry_shows_what_it_did_not_count_as_not_counted() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("zed", 3)]).await;
    let job_id: uuid::Uuid = app.erase("zed").await.job_id.parse().unwrap();
    abandon_job_at(&app, job_id, &["verify"]).await;
    assert_eq!(app.job(&job_id.to_string()).await.status, pb::JobStatus::Failed as i32);

    let cookie = sign_in(&app, &app.keys.ak).await;
    let failures = http(&app, "GET", "/log?kind=failure", &[("Cookie", &cookie)], "").await;
    let counts = r#"<td class="n before">3</td><td class="n deleted">—</td><td class="n after">—</td>"#;
    assert!(failures.body.contains(counts), "{}", failures.body);
}
