//! The web view over TLS: the same certificate and key as gRPC
//! (`application.tls`), and the same client-certificate requirement when
//! `application.tls.client_ca_file` is set. Each connection's handshake
//! runs in its own task with the gRPC server's 10 s limit, so a client that
//! stalls the handshake holds only its own connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

use crate::config::TlsSettings;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for `application.tls`, None when TLS is off.
///
/// # Errors
/// When a file cannot be read or does not hold what it should.
pub fn acceptor(tls: &TlsSettings) -> anyhow::Result<Option<TlsAcceptor>> {
    if !tls.enabled() {
        return Ok(None);
    }
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("Failed to read the TLS certificate {} (application.tls, web)", tls.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("Failed to read the TLS private key {} (application.tls, web)", tls.key_file.display()))?;
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if tls.client_ca_file.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&tls.client_ca_file)
            .with_context(|| format!("Failed to read the client CA {} (application.tls)", tls.client_ca_file.display()))?
        {
            roots.add(ca?)?;
        }
        builder.with_client_cert_verifier(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?)
    };
    let mut config = builder.with_single_cert(certs, key).context("application.tls: the key does not match the certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves; open
/// connections are closed then (every page is a short read).
pub async fn serve(listener: TcpListener, router: Router, acceptor: TlsAcceptor, shutdown: impl Future<Output = ()> + Send) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "web view: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let (acceptor, router) = (acceptor.clone(), router.clone());
        connections.spawn(async move {
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else { return };
            let service = TowerToHyperService::new(router);
            if let Err(e) = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "web view: connection ended");
            }
        });
    }
    connections.shutdown().await;
}
