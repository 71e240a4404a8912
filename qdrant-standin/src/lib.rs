//! qdrant-standin: a small Qdrant-compatible gRPC server (services `qdrant.Qdrant`,
//! `qdrant.Collections`, `qdrant.Points`) on top of `qdrant-edge`, Qdrant's own segment engine
//! running in-process. Test infrastructure only; see README.md for what is covered.

// `on_disk` / `on_disk_payload` are deprecated in the 1.20 protos (replaced by `memory`, a RAM
// placement hint the stand-in ignores) but clients still send them.
#![allow(deprecated)]

pub mod collections;
pub mod convert;
pub mod points;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::qdrant as pb;
use qdrant_client::qdrant::collections_server::CollectionsServer;
use qdrant_client::qdrant::points_server::PointsServer;
use qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::state::State;

/// Version reported by HealthCheck (qdrant-client 1.20 accepts 1.19–1.21 without a warning).
pub const QDRANT_VERSION: &str = "1.20.0";

/// Generous message limit for big upsert batches (Qdrant's default max request size is 32 MiB).
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

struct HealthService;

#[tonic::async_trait]
impl Qdrant for HealthService {
    async fn health_check(
        &self,
        _request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckReply>, Status> {
        Ok(Response::new(pb::HealthCheckReply {
            title: "qdrant - vector search engine (qdrant-standin)".to_string(),
            version: QDRANT_VERSION.to_string(),
            commit: Some("qdrant-standin".to_string()),
        }))
    }
}

/// A running stand-in server.
pub struct RunningServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>` for `Qdrant::from_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: stop accepting, let in-flight requests finish (up to 10 s), then close
    /// (flush + drop) every shard so the data directory can be reopened.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
        }
        self.state.close_all().await;
    }
}

/// Load the data directory and start serving on `127.0.0.1:<port>` (0 = any free port).
pub async fn start(port: u16, data_dir: PathBuf) -> std::io::Result<RunningServer> {
    let dir = data_dir.clone();
    let state = tokio::task::spawn_blocking(move || State::open_blocking(&dir))
        .await
        .map_err(std::io::Error::other)??;
    let state = Arc::new(state);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    let collections = CollectionsServer::new(collections::CollectionsService {
        state: Arc::clone(&state),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_MESSAGE_SIZE)
    .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let points = PointsServer::new(points::PointsService {
        state: Arc::clone(&state),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_MESSAGE_SIZE)
    .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let health = QdrantServer::new(HealthService).accept_compressed(CompressionEncoding::Gzip);

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(collections)
        .add_service(points);
    let handle = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = rx.await;
    }));
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        handle,
    })
}
