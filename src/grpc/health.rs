//! The standard gRPC health service, kept true: it says SERVING only while
//! Lethe can do its work, that is while Postgres and every configured vector
//! backend answer. A background task probes them every
//! `application.health_check_interval_ms` (`SELECT 1`; Qdrant's health call)
//! and sets both the server's status (`""`) and `lethe.v1.Lethe` to
//! NOT_SERVING while one does not, and back to SERVING when all do. Load
//! balancers and orchestrators then route around a replica whose database
//! is gone instead of sending it requests that can only fail.

use std::future::Future;
use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::LetheService;
use super::pb::lethe_server::LetheServer;
use crate::context::Context;

/// Longest a probe may take before the dependency counts as down (a
/// database that accepts connections but does not answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The health reporter and what it watches.
pub struct Health {
    reporter: HealthReporter,
    ctx: Context,
    status: ServingStatus,
}

impl Health {
    /// Probes once and reports the outcome, so that the first health check
    /// already tells the truth.
    pub(super) async fn start(reporter: HealthReporter, ctx: Context) -> Self {
        let mut health = Self { reporter, ctx, status: ServingStatus::Unknown };
        health.probe().await;
        health
    }

    /// Probes every `application.health_check_interval_ms` until `stop` resolves.
    pub async fn run_until_stopped(mut self, stop: impl Future<Output = ()> + Send) {
        let every = Duration::from_millis(self.ctx.settings.application.health_check_interval_ms);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => self.probe().await,
            }
        }
    }

    async fn probe(&mut self) {
        let down = self.down().await;
        let status = if down.is_none() { ServingStatus::Serving } else { ServingStatus::NotServing };
        if status == self.status {
            return;
        }
        match &down {
            Some(why) => tracing::warn!(dependency = why, "health: NOT_SERVING"),
            None => tracing::info!("health: SERVING"),
        }
        self.status = status;
        for service in ["", <LetheServer<LetheService> as NamedService>::NAME] {
            self.reporter.set_service_status(service, status).await;
        }
    }

    /// The first dependency that does not answer, if any.
    async fn down(&self) -> Option<&'static str> {
        let database = tokio::time::timeout(PROBE_TIMEOUT, crate::store::ping(&self.ctx.pool)).await;
        if !matches!(database, Ok(Ok(()))) {
            return Some("postgres");
        }
        if let Some(qdrant) = &self.ctx.stores.qdrant {
            let answer = tokio::time::timeout(PROBE_TIMEOUT, qdrant.ping()).await;
            if !matches!(answer, Ok(Ok(()))) {
                return Some("qdrant");
            }
        }
        None
    }
}
