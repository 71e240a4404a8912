//! The auditor's web view and `/metrics`: read-only HTML pages over the
//! deletion log, certificates, chain verification, live counts and jobs,
//! served on `web.port` beside gRPC (see `config::WebSettings` for why a
//! port of its own). Pages call the same library functions as the gRPC
//! handlers (`erasure`, `audit`, `grpc::convert` for shapes); no SQL here.
//!
//! Sign-in: an `ak_` or `sk_` key posted in a form is checked by the same
//! [`Authenticator`] as every rpc (`Action::Audit`, so `pk_` keys are
//! refused) and exchanged for a random session id in an `HttpOnly;
//! SameSite=Strict` cookie. The server keeps id → tenant, key kind and the
//! key's hash (never the key) until the session expires or the key is
//! revoked. Every page is read-only whatever the key's kind.
//!
//! CSRF: a cross-site request cannot change anything here, because nothing
//! here changes state (no page writes; sign-out only ends the caller's own
//! session). What a forged request could do is read, and the browser's
//! same-origin policy keeps the response from the forging site. The cookie
//! is `SameSite=Strict` anyway, so it is not even sent on cross-site
//! requests, and sign-in and sign-out are POSTs; `frame-ancestors 'none'`
//! stops framing.

mod html;
mod pages;
mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::auth::{Action, Authenticator, Principal};
use crate::context::Context;
use crate::error::LetheError;
use session::Sessions;

/// Every response's Content-Security-Policy: only Lethe's own stylesheet and
/// the one verification script; no inline code, no framing, forms post here only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Clone)]
struct Web {
    ctx: Context,
    auth: Authenticator,
    sessions: Arc<Sessions>,
    /// The database's figures of `/metrics` as last read: when, which read
    /// (counted from 1), and the text (`web.metrics_reuse_ms`).
    scraped: Arc<tokio::sync::Mutex<Scraped>>,
}

#[derive(Default)]
struct Scraped {
    reads: u64,
    last: Option<(std::time::Instant, String)>,
}

/// The web view's routes.
pub fn router(ctx: Context) -> Router {
    let ttl = std::time::Duration::from_secs(ctx.settings.web.session_ttl_secs);
    let web = Web {
        auth: Authenticator::new(ctx.pool.clone()),
        ctx,
        sessions: Arc::new(Sessions::new(ttl)),
        scraped: Arc::default(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/log") }))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/log", get(pages::log))
        .route("/log/{seq}", get(pages::entry))
        .route("/log/{seq}/certificate.json", get(pages::certificate_json))
        .route("/verify", get(pages::verify))
        .route("/subject", get(pages::subject_form).post(pages::subject))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job))
        .route("/metrics", get(metrics))
        .route("/static/style.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/style.css")) }))
        .route("/static/verify.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/verify.js")) }))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web)
}

/// Serves the web view on `listener` until `shutdown` resolves.
///
/// # Errors
/// When the server fails.
/// With `tls` (`application.tls`), over HTTPS only.
pub async fn run_until_stopped(
    listener: TcpListener,
    ctx: Context,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(addr = ?addr, tls = tls.is_some(), "auditor's web view and /metrics are serving");
    match tls {
        Some(acceptor) => {
            tls::serve(listener, router(ctx), acceptor, shutdown).await;
            Ok(())
        }
        None => axum::serve(listener, router(ctx)).with_graceful_shutdown(shutdown).await,
    }
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// A page's failure: sign-in again, or an error page. The one mapping from
/// [`LetheError`] to HTTP; internal causes are logged, never shown.
enum WebError {
    SignIn,
    Lethe(LetheError),
}

impl From<LetheError> for WebError {
    fn from(e: LetheError) -> Self {
        Self::Lethe(e)
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Lethe(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let e = match self {
            Self::SignIn => return Redirect::to("/login").into_response(),
            Self::Lethe(e) => e,
        };
        let (status, message) = match &e {
            LetheError::Unauthenticated => return Redirect::to("/login").into_response(),
            LetheError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
            LetheError::InvalidArgument(i) => (StatusCode::BAD_REQUEST, i.to_string()),
            LetheError::PermissionDenied { .. } => (StatusCode::FORBIDDEN, "this key may not read this".into()),
            LetheError::Unavailable(_) | LetheError::DeadlineExceeded { .. } => {
                tracing::warn!(error.cause_chain = ?e, "web view: backend unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "a backend is unavailable; try again".into())
            }
            // The state of things, not the view's fault (a backend this
            // server does not configure): said as it is, not as a 500.
            LetheError::FailedPrecondition { .. }
            | LetheError::AlreadyExists { .. }
            | LetheError::ErasureInProgress { .. }
            | LetheError::LegalHold { .. } => (StatusCode::CONFLICT, e.public_message()),
            LetheError::Unexpected(_) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "web view failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        let body = html::page("Error", None, &format!("<p>{}</p><p><a href=\"/log\">Back</a></p>", html::esc(message)));
        (status, axum::response::Html(body)).into_response()
    }
}

impl Web {
    /// The signed-in principal of a request, or sign in.
    async fn principal(&self, headers: &HeaderMap) -> Result<Principal, WebError> {
        let session = self.sessions.get(headers).ok_or(WebError::SignIn)?;
        if !self.auth.still_live(&session.key_hash).await? {
            self.sessions.end(headers);
            return Err(WebError::SignIn);
        }
        session.principal.require(Action::Audit)?;
        Ok(session.principal)
    }
}

/// Prometheus text exposition (`crate::metrics`). With
/// `web.metrics_require_key`, a scraper sends `Authorization: Bearer <ak_ or
/// sk_ key>` (or is a signed-in browser); without it the answer is 401 with
/// `WWW-Authenticate`, not the sign-in page a scraper cannot use.
async fn metrics(State(web): State<Web>, headers: HeaderMap) -> Result<Response, WebError> {
    if web.ctx.settings.web.metrics_require_key {
        let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|s| s.strip_prefix("Bearer "));
        let allowed = match bearer {
            Some(key) => web.auth.authorize_key(key, Action::Audit).await.map(|_| ()),
            None => match web.principal(&headers).await {
                Ok(_) => Ok(()),
                Err(WebError::SignIn) => Err(LetheError::Unauthenticated),
                Err(WebError::Lethe(e)) => Err(e),
            },
        };
        match allowed {
            Ok(()) => {}
            Err(LetheError::Unauthenticated) => {
                let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"lethe metrics\"")];
                return Ok((StatusCode::UNAUTHORIZED, challenge, "an ak_ or sk_ key is required\n").into_response());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let text = crate::metrics::render(&web.database_figures().await?);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

impl Web {
    /// `/metrics`' database figures: those of the last read while younger
    /// than `web.metrics_reuse_ms`, else read now. Scrapes arriving during a
    /// read wait for it and take its figures: one read at a time.
    async fn database_figures(&self) -> Result<String, WebError> {
        let reuse = std::time::Duration::from_millis(self.ctx.settings.web.metrics_reuse_ms);
        let mut scraped = self.scraped.lock().await;
        if let Some((at, text)) = &scraped.last
            && at.elapsed() < reuse
        {
            return Ok(text.clone());
        }
        let read = scraped.reads + 1;
        let text = crate::metrics::render_database(&self.ctx.pool, read).await?;
        scraped.reads = read;
        scraped.last = Some((std::time::Instant::now(), text.clone()));
        Ok(text)
    }
}
