//! Turns at the pool for the requests that need them (`Context::slot`): a
//! request that writes holds a transaction (its locks) while its statements
//! take a second connection, so it takes a turn first and at most
//! `database.max_connections / 3` of them run at once. A read takes one
//! connection at a time and never waits for a second while holding one, so
//! it takes no turn: a status poll does not queue behind a long ingest.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tonic::codegen::http;

/// The requests that take no turn: reads, by method, and the health and
/// reflection services.
const READS: &[&str] = &[
    "ListCollections",
    "GetErasure",
    "WatchErasure",
    "ListErasures",
    "CountSubject",
    "ListDeletionLog",
    "VerifyDeletionLog",
    "GetCertificate",
    "SearchResiduals",
    "GetReindex",
    "WatchReindex",
    "ListReindexes",
    "GetAttach",
    "WatchAttach",
    "GetReconcile",
    "ListRetention",
    "PreviewRetention",
];

fn is_read(path: &str) -> bool {
    match path.trim_start_matches('/').split_once('/') {
        Some(("lethe.v1.Lethe", method)) => READS.contains(&method),
        // Health, reflection, and paths no service serves.
        _ => true,
    }
}

/// The layer: see the module.
#[derive(Clone)]
pub struct Turns {
    slots: Arc<Semaphore>,
}

impl Turns {
    pub fn new(slots: Arc<Semaphore>) -> Self {
        Self { slots }
    }
}

impl<S> tower::Layer<S> for Turns {
    type Service = WithTurn<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithTurn { inner, slots: self.slots.clone() }
    }
}

/// A service whose writes each run in a turn.
#[derive(Clone)]
pub struct WithTurn<S> {
    inner: S,
    slots: Arc<Semaphore>,
}

impl<S, B> tower::Service<http::Request<B>> for WithTurn<S>
where
    S: tower::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let turn = (!is_read(req.uri().path())).then(|| self.slots.clone());
        // The service that was made ready serves this request; its clone the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // Held until the handler returns (a stream's body runs after,
            // one statement at a time). The semaphore is never closed.
            let _turn = match turn {
                Some(slots) => slots.acquire_owned().await.ok(),
                None => None,
            };
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_take_a_turn_and_reads_health_and_reflection_do_not() {
        for write in ["Ingest", "Track", "DeletePoints", "Erase", "ImportLedger", "Reindex", "SweepRetention", "Attach"] {
            assert!(!is_read(&format!("/lethe.v1.Lethe/{write}")), "{write}");
        }
        for read in ["GetErasure", "WatchErasure", "VerifyDeletionLog", "CountSubject"] {
            assert!(is_read(&format!("/lethe.v1.Lethe/{read}")), "{read}");
        }
        assert!(is_read("/grpc.health.v1.Health/Check"));
        assert!(is_read("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
    }
}
