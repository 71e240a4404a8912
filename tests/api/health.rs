//! The standard health service tells the truth: NOT_SERVING while Postgres
//! (or Qdrant) cannot be reached, SERVING again once it can. The app under
//! test reaches them through TCP proxies the test cuts and restores.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::*;

/// Forwards TCP connections to `target` while up; cutting it closes every
/// forwarded connection and refuses new ones (accepted and closed at once).
struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (up, state) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue;
                }
                let mut state = state.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// host:port of a URL like `scheme://user@host:port/path`.
fn host_port(url: &str) -> (&str, SocketAddr) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split('/').next().expect("host");
    (host_port, host_port.parse().expect("a numeric host:port"))
}

/// Polls both the server's and Lethe's health until they are `want` (10 s at most).
async fn wait_for_health(app: &TestApp, want: ServingStatus) {
    let mut health = HealthClient::new(app.channel());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut seen = Vec::new();
        for service in ["", "lethe.v1.Lethe"] {
            let r = health.check(HealthCheckRequest { service: service.into() }).await.expect("health answers");
            seen.push(r.into_inner().status);
        }
        if seen.iter().all(|s| *s == want as i32) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "health stayed {seen:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_is_not_serving_while_postgres_is_unreachable() {
    let db_url = fresh_database().await;
    let (real, target) = host_port(&db_url);
    let proxy = Proxy::start(target).await;
    let proxied = db_url.replacen(real, &proxy.addr.to_string(), 1);
    let app = spawn_app_at(&proxied, qdrant_url().as_deref(), Options::default()).await;

    wait_for_health(&app, ServingStatus::Serving).await;
    proxy.cut();
    wait_for_health(&app, ServingStatus::NotServing).await;
    proxy.restore();
    wait_for_health(&app, ServingStatus::Serving).await;
    // And requests work again.
    app.create_collection("mail", lethe::grpc::pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn health_is_not_serving_while_qdrant_is_unreachable() {
    let Some(qdrant) = qdrant_url() else { return };
    let (real, target) = host_port(&qdrant);
    let proxy = Proxy::start(target).await;
    let proxied = qdrant.replacen(real, &proxy.addr.to_string(), 1);
    let app = spawn_app_at(&fresh_database().await, Some(&proxied), Options::default()).await;

    wait_for_health(&app, ServingStatus::Serving).await;
    proxy.cut();
    wait_for_health(&app, ServingStatus::NotServing).await;
    proxy.restore();
    wait_for_health(&app, ServingStatus::Serving).await;
}

/// A transaction PostgreSQL rolls back for a conflict (a deadlock's victim,
/// a serialization failure) or a server shutting down is "retry later"
/// (UNAVAILABLE), not an internal error; an error in the statement itself
/// still is one.
#[tokio::test]
async fn a_conflict_the_database_rolled_back_is_unavailable_not_internal() {
    use lethe::error::LetheError;
    use lethe::store::StoreError;
    let app = spawn_app().await;
    let raise = |code: &str| format!("DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$");
    // The last column: whether an erase job's stage runs again at once
    // (a conflict with another transaction) rather than at its next retry.
    for (code, expected, again) in [
        ("40P01", tonic::Code::Unavailable, true),
        ("40001", tonic::Code::Unavailable, true),
        ("55P03", tonic::Code::Unavailable, false),
        ("57P01", tonic::Code::Unavailable, false),
        ("40002", tonic::Code::Internal, false),
        ("42601", tonic::Code::Internal, false),
        ("23505", tonic::Code::Internal, false),
    ] {
        let e = sqlx::query(&raise(code)).execute(&app.pool).await.expect_err(code);
        let error = LetheError::from(StoreError::from(e));
        assert_eq!(error.is_conflict(), again, "{code}: {error:?}");
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), expected, "{code}: {status:?}");
    }
}
