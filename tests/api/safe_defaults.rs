//! Safe production defaults (issue 12 item 8): watches end with their
//! client, the server's limits, TLS off loopback, reflection.

use std::time::Duration;

use lethe::grpc::pb;

use crate::helpers::*;

/// Polls `f` until it is true or `within` has passed.
async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test]
async fn a_watch_stops_polling_when_its_client_goes_away() {
    // 5 s between stages: the job's next event, which would also end a
    // watch that only notices a gone client when it sends, comes too late.
    let app = spawn_app_with(Options { stage_pause_ms: 5000, ..Default::default() }).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("ann", 2)]).await;
    let job = app.erase("ann").await;
    let mut stream = app
        .client
        .clone()
        .watch_erasure(req(&app.keys.ak, pb::GetErasureRequest { job_id: job.job_id.clone() }))
        .await
        .expect("watch")
        .into_inner();
    stream.message().await.expect("first event").expect("an event");
    assert_eq!(app.ctx.watches.count(), 1, "the watch is open while its client reads");

    drop(stream);
    let watches = app.ctx.watches.clone();
    assert!(
        eventually(Duration::from_secs(2), || watches.count() == 0).await,
        "the watch kept polling after its client went away"
    );
    let j = app.job(&job.job_id).await;
    let running = [pb::JobStatus::Queued as i32, pb::JobStatus::InProgress as i32];
    assert!(running.contains(&j.status), "the job was still running, so the client's leaving ended the watch: {j:?}");
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("TLS fixture")
}

async fn build(configure: impl FnOnce(&mut lethe::config::Settings)) -> anyhow::Result<lethe::startup::Application> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&fresh_database().await, dir.path(), Options::default());
    configure(&mut settings);
    let embedder = lethe::startup::embedder(&settings).expect("hashing embedder");
    lethe::startup::Application::build_with_embedder(settings, embedder).await
}

#[tokio::test]
async fn plaintext_off_loopback_is_refused_unless_tls_is_on_or_it_is_waived() {
    let err = build(|s| s.application.host = "0.0.0.0".into()).await.err().expect("plaintext on 0.0.0.0 is refused");
    let message = format!("{err:#}");
    assert!(message.contains("refusing to serve plaintext gRPC"), "{message}");
    assert!(message.contains("application.tls.cert_file"), "the message says what to set: {message}");

    let waived = build(|s| {
        s.application.host = "0.0.0.0".into();
        s.application.allow_plaintext_off_loopback = true;
    })
    .await;
    assert!(waived.is_ok(), "waived: {:?}", waived.err());
    let with_tls = build(|s| {
        s.application.host = "0.0.0.0".into();
        s.application.tls.cert_file = fixture("server.pem");
        s.application.tls.key_file = fixture("server.key");
    })
    .await;
    assert!(with_tls.is_ok(), "with TLS: {:?}", with_tls.err());
    assert!(build(|_| {}).await.is_ok(), "plaintext on loopback is fine");
}

async fn tls_client(
    addr: std::net::SocketAddr,
    identity: bool,
) -> Result<pb::lethe_client::LetheClient<tonic::transport::Channel>, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_fixture("ca.pem"))).domain_name("localhost");
    if identity {
        tls = tls.identity(Identity::from_pem(read_fixture("client.pem"), read_fixture("client.key")));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}")).expect("uri").tls_config(tls)?.connect().await?;
    Ok(pb::lethe_client::LetheClient::new(channel))
}

#[tokio::test]
async fn tls_serves_rpcs_and_requires_client_certificates_when_a_client_ca_is_set() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.application.tls.cert_file = fixture("server.pem");
        s.application.tls.key_file = fixture("server.key");
        s.application.tls.client_ca_file = fixture("ca.pem");
    })
    .await;
    let list = pb::ListCollectionsRequest {};
    let mut client = tls_client(app.addr, true).await.expect("TLS with a client certificate connects");
    client.list_collections(req(&app.keys.sk, list)).await.expect("rpc over TLS");

    let plaintext = app.client.clone().list_collections(req(&app.keys.sk, list)).await;
    assert!(plaintext.is_err(), "plaintext is not served");
    let anonymous = match tls_client(app.addr, false).await {
        Ok(mut c) => c.list_collections(req(&app.keys.sk, list)).await.err(),
        Err(e) => Some(tonic::Status::unavailable(e.to_string())),
    };
    assert!(anonymous.is_some(), "a client without a certificate is turned away");
}

#[tokio::test]
async fn reflection_is_served_only_when_configured() {
    let app = spawn_app_configured(Options::default(), |s| s.application.reflection = false).await;
    let mut reflection = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let err = reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.expect_err("no reflection");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused() {
    let app = spawn_app_configured(Options::default(), |s| s.application.limits.max_message_bytes = 64 * 1024).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let big = "word ".repeat(20_000);
    let err = app.ingest("mail", vec![chunk("big", 0, &big, &["ann"])]).await.expect_err("a 100 KB request");
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    app.ingest("mail", vec![chunk("small", 0, "a short note by ann", &["ann"])]).await.expect("a small request");
}

#[tokio::test]
async fn a_request_that_outlasts_the_timeout_is_cancelled() {
    let app = spawn_app_configured(Options::default(), |s| s.application.limits.request_timeout_secs = 1).await;
    // Every rpc looks its key up first: with the table locked it waits.
    let mut lock = app.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.expect("lock");
    let mut client = app.client.clone();
    let call = client.list_collections(req(&app.keys.sk, pb::ListCollectionsRequest {}));
    let outcome = tokio::time::timeout(Duration::from_secs(10), call).await;
    lock.rollback().await.expect("unlock");
    let err = outcome.expect("the server answers within its timeout, not the client's").expect_err("timed out");
    assert_eq!(err.code(), tonic::Code::Cancelled, "{err:?}");
    app.client.clone().list_collections(req(&app.keys.sk, pb::ListCollectionsRequest {})).await.expect("served again");
}
