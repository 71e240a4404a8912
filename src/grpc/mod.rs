//! The gRPC surface: generated types (`pb`), the `Lethe` service, the
//! conversions, and the one error → status mapping. Only this module and
//! `auth` name tonic or wire types.

pub mod codec;
pub mod convert;
mod health;
mod service;
mod status;

pub use health::Health;
pub use service::LetheService;

/// Generated from `proto/lethe/v1/*.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("lethe.v1");
    /// For gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("lethe_descriptor");
}

use crate::context::Context;

/// The router with Lethe, health and reflection, and the health checker
/// (to run beside the server: see [`Health::run_until_stopped`]).
///
/// # Errors
/// When the reflection service cannot be built from the descriptor set.
pub async fn router(ctx: Context) -> anyhow::Result<(tonic::transport::server::Router, Health)> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health::start(reporter, ctx.clone()).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let lethe = pb::lethe_server::LetheServer::new(LetheService::new(ctx));
    let router = tonic::transport::Server::builder()
        .trace_fn(|req| tracing::info_span!("rpc", path = %req.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(lethe);
    Ok((router, health))
}
