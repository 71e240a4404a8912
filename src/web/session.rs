//! Sign-in and sessions. The key is posted in a form (never in a URL),
//! checked once, and forgotten: the cookie carries a random id, and the
//! server keeps id → principal and the key's SHA-256 (to notice revocation).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;

use super::{Web, html};
use crate::auth::{Action, KeyKind, Principal, hash_key};

const COOKIE: &str = "lethe_session";

/// Sessions one key may hold (a browser or two per auditor); a new sign-in
/// past it ends the key's oldest. Without a bound, a key signing in in a
/// loop grew the map for as long as sessions live.
const PER_KEY: usize = 8;
/// Sessions the process keeps in all; past it the oldest ends.
const IN_ALL: usize = 10_000;

#[derive(Clone)]
pub(super) struct Session {
    pub principal: Principal,
    pub key_hash: [u8; 32],
    expires: Instant,
}

/// Sessions in memory: a restart signs everyone out, which is fine for a
/// read-only view.
pub(super) struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, map: Mutex::default() }
    }

    fn start(&self, principal: Principal, key_hash: [u8; 32]) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| s.expires > now);
            // Sessions expire in the order they started: the oldest expires first.
            let oldest = |map: &HashMap<String, Session>, mine: bool| {
                map.iter().filter(|(_, s)| !mine || s.key_hash == key_hash).min_by_key(|(_, s)| s.expires).map(|(id, _)| id.clone())
            };
            if map.values().filter(|s| s.key_hash == key_hash).count() >= PER_KEY
                && let Some(id) = oldest(&map, true)
            {
                map.remove(&id);
            }
            if map.len() >= IN_ALL
                && let Some(id) = oldest(&map, false)
            {
                map.remove(&id);
            }
            map.insert(id.clone(), Session { principal, key_hash, expires: now + self.ttl });
        }
        id
    }

    pub fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let map = self.map.lock().ok()?;
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn end(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut map)) = (cookie(headers), self.map.lock()) {
            map.remove(id);
        }
    }
}

/// The session id from the `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn form(message: &str) -> String {
    let message = if message.is_empty() { String::new() } else { format!("<p class=\"bad\" id=\"login-error\">{}</p>", html::esc(message)) };
    html::page(
        "Sign in",
        None,
        &format!(
            r#"{message}<form method="post" action="/login">
<label>Auditor (ak_) or secret (sk_) key <input type="password" name="key" autocomplete="off" required size="40"></label>
<p><button type="submit">Sign in</button></p></form>
<p class="note">The key is sent once, in this form's body, and is not stored in your browser: a session cookie
(HttpOnly, SameSite=Strict) stands for it. Every page is read-only. Publishable (pk_) keys cannot sign in.</p>"#
        ),
    )
}

pub(super) async fn login_form() -> Html<String> {
    Html(form(""))
}

#[derive(Deserialize)]
pub(super) struct Login {
    key: String,
}

pub(super) async fn login(State(web): State<Web>, Form(login): Form<Login>) -> Response {
    let principal = match web.auth.authorize_key(&login.key, Action::Audit).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "web sign-in refused");
            // One message for unknown, revoked and publishable keys alike.
            return (StatusCode::UNAUTHORIZED, Html(form("That key cannot open the auditor's view."))).into_response();
        }
    };
    let id = web.sessions.start(principal, hash_key(login.key.trim()));
    // Over TLS (`application.tls`) the cookie is never sent in plaintext.
    let secure = if web.ctx.settings.application.tls.enabled() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", web.sessions.ttl.as_secs());
    let mut res = Redirect::to("/log").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

pub(super) async fn logout(State(web): State<Web>, headers: HeaderMap) -> Response {
    web.sessions.end(&headers);
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("lethe_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

/// How the header names the signed-in key.
pub(super) fn describe(p: &Principal) -> String {
    let kind = match p.kind {
        KeyKind::Auditor => "auditor key",
        KeyKind::Secret => "secret key (read-only here)",
        KeyKind::Publishable => "publishable key",
    };
    format!("tenant {} · {kind}", p.tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("{COOKIE}={id}")).unwrap());
        h
    }

    #[test]
    fn a_key_signing_in_again_and_again_holds_a_bounded_number_of_sessions() {
        let sessions = Sessions::new(Duration::from_secs(3600));
        let principal = Principal { tenant_id: uuid::Uuid::new_v4(), key_id: uuid::Uuid::new_v4(), kind: KeyKind::Auditor };
        let ids: Vec<String> = (0..PER_KEY + 5).map(|_| sessions.start(principal, [1; 32])).collect();
        let other = sessions.start(principal, [2; 32]);
        let live: Vec<&String> = ids.iter().filter(|id| sessions.get(&headers(id)).is_some()).collect();
        assert_eq!(live, ids[5..].iter().collect::<Vec<_>>(), "the key's newest sessions stay, its oldest ended");
        assert!(sessions.get(&headers(&other)).is_some(), "another key's session is not touched");
        assert_eq!(sessions.map.lock().unwrap().len(), PER_KEY + 1);
    }
}
