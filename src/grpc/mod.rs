//! The gRPC surface: generated types (`pb`), the `Lethe` service, the
//! conversions, and the one error → status mapping. Only this module and
//! `auth` name tonic or wire types.

pub mod codec;
pub mod convert;
mod health;
pub mod restore;
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

use std::time::Duration;

use crate::context::Context;

/// The router with Lethe, health and (when `application.reflection`)
/// reflection, with the server's limits and TLS, and the health checker (to
/// run beside the server: see [`Health::run_until_stopped`]).
///
/// # Errors
/// When the reflection service cannot be built from the descriptor set or
/// the TLS configuration is invalid.
pub async fn router(
    ctx: Context,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<(tonic::transport::server::Router, Health)> {
    let app = ctx.settings.application.clone();
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health::start(reporter, ctx.clone()).await;
    let reflection = if app.reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()?,
        )
    } else {
        None
    };
    let limits = &app.limits;
    let lethe = pb::lethe_server::LetheServer::new(LetheService::new(ctx))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let keepalive = Duration::from_secs(limits.keepalive_interval_secs);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    let router = server
        // A unary rpc (or a stream's first response) that takes longer is
        // cancelled; a dropped handler rolls its transaction back.
        .timeout(Duration::from_secs(limits.request_timeout_secs))
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(Duration::from_secs(limits.keepalive_timeout_secs)))
        .trace_fn(|req| tracing::info_span!("rpc", path = %req.uri().path()))
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(lethe);
    Ok((router, health))
}
