//! Console sessions: a bearer token exchanged once for a server-side session behind an
//! HttpOnly, SameSite=Strict cookie, and the CSRF token every state-changing request carries.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{FromRequestParts, Request},
    http::{HeaderMap, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use palisade_model::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{AppState, Caller};

/// Name of the session cookie.
pub(crate) const COOKIE: &str = "palisade_session";
/// Name of the CSRF form field.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// Name of the CSRF header (htmx requests).
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// A session ends this long after login, however active.
const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// How often a session re-checks that its token was not revoked.
const REVALIDATE_EVERY: Duration = Duration::from_secs(60);
/// Most sessions kept; beyond it, expired ones are swept and then the oldest dropped.
const MAX_SESSIONS: usize = 10_000;
/// Largest form body checked for a CSRF token.
const MAX_FORM_BODY: usize = 1 << 20;

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    caller: Caller,
    csrf: String,
    created: Instant,
    last_used: Instant,
    validated: Instant,
}

/// Sessions by the SHA-256 of their cookie value (a leaked memory dump does not reveal live
/// cookies).
#[derive(Debug, Default)]
pub struct Sessions {
    entries: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(left: &str, right: &str) -> bool {
    let (left, right) = (
        Sha256::digest(left.as_bytes()),
        Sha256::digest(right.as_bytes()),
    );
    left.iter()
        .zip(right.iter())
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

impl Sessions {
    /// Starts a session for `caller`; returns the cookie value.
    pub(crate) fn start(&self, caller: Caller) -> String {
        let cookie = random_token();
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= MAX_SESSIONS {
            entries.retain(|_, session| live(session, now));
            if entries.len() >= MAX_SESSIONS
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, session)| session.last_used)
                    .map(|(key, _)| *key)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key(&cookie),
            Session {
                caller,
                csrf: random_token(),
                created: now,
                last_used: now,
                validated: now,
            },
        );
        cookie
    }

    /// Ends a session.
    pub(crate) fn end(&self, cookie: &str) {
        self.lock().remove(&key(cookie));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live session behind `cookie`, refreshed; re-checks the token's revocation once a
    /// minute.
    async fn resume(&self, state: &AppState, cookie: &str) -> Option<Session> {
        let now = Instant::now();
        let session = {
            let mut entries = self.lock();
            let session = entries.get_mut(&key(cookie))?;
            if !live(session, now) {
                entries.remove(&key(cookie));
                return None;
            }
            session.last_used = now;
            session.clone()
        };
        if now.duration_since(session.validated) < REVALIDATE_EVERY {
            return Some(session);
        }
        let still_valid = match state.store.token(&session.caller.token_id).await {
            Ok(Some(record)) => !record.revoked && record.role == session.caller.role,
            Ok(None) => false,
            // A store hiccup should not log everyone out; the next request re-checks.
            Err(error) => {
                tracing::warn!(%error, "Cannot re-check a console session's token.");
                return Some(session);
            }
        };
        let mut entries = self.lock();
        if still_valid {
            if let Some(stored) = entries.get_mut(&key(cookie)) {
                stored.validated = now;
            }
            Some(session)
        } else {
            entries.remove(&key(cookie));
            None
        }
    }
}

fn live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_used) < IDLE_TIMEOUT
        && now.duration_since(session.created) < ABSOLUTE_TIMEOUT
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request reached the server over TLS. Browsers speak HTTP/2 over TLS (the
/// server offers `h2` first in ALPN), and HTTP/2 requests carry their scheme; plain HTTP
/// requests from browsers are HTTP/1.1 and carry none.
fn over_tls(parts_uri: &axum::http::Uri) -> bool {
    parts_uri.scheme_str() == Some("https")
}

/// The `Set-Cookie` value that stores `cookie` (or clears it when `None`).
pub(crate) fn set_cookie(uri: &axum::http::Uri, cookie: Option<&str>) -> String {
    let secure = if over_tls(uri) { "; Secure" } else { "" };
    match cookie {
        Some(value) => {
            format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict{secure}")
        }
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// A person logged in to the console.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleUser {
    /// Who, with the token's role: the same identity and checks as the API.
    pub caller: Caller,
    /// The session's CSRF token, embedded in every form.
    pub csrf: String,
}

impl ConsoleUser {
    /// Whether the user may handle findings.
    pub fn can_handle(&self) -> bool {
        self.caller.role.allows(Role::Operator)
    }
}

/// Why a request has no console user.
pub(crate) enum NotLoggedIn {
    /// A page: send the browser to the login form.
    Redirect(String),
    /// Anything else: refuse.
    Refuse,
}

impl IntoResponse for NotLoggedIn {
    fn into_response(self) -> Response {
        match self {
            NotLoggedIn::Redirect(next) => {
                Redirect::to(&format!("/console/login?next={}", super::encode(&next)))
                    .into_response()
            }
            NotLoggedIn::Refuse => (
                StatusCode::UNAUTHORIZED,
                "not logged in: open /console/login and log in with your API token\n",
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = NotLoggedIn;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let rejection = || {
            if parts.method == Method::GET && !parts.headers.contains_key("hx-request") {
                NotLoggedIn::Redirect(
                    parts
                        .uri
                        .path_and_query()
                        .map_or_else(|| "/console".to_owned(), |path| path.as_str().to_owned()),
                )
            } else {
                NotLoggedIn::Refuse
            }
        };
        let console = super::sessions(parts).ok_or(NotLoggedIn::Refuse)?;
        let Some(cookie) = cookie_value(&parts.headers, COOKIE) else {
            return Err(rejection());
        };
        let Some(session) = console.sessions.resume(state, cookie).await else {
            return Err(rejection());
        };
        Ok(ConsoleUser {
            caller: session.caller,
            csrf: session.csrf,
        })
    }
}

/// Middleware on every console route: a request that changes state (any method but GET and
/// HEAD) must carry the session's CSRF token, in the `X-CSRF-Token` header (htmx) or the
/// `csrf` form field, or it is refused with 403 before its handler runs. The login form is
/// the one exception (there is no session yet); it checks that the request came from this
/// origin instead.
pub(crate) async fn require_csrf(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if parts.uri.path() == "/console/login" {
        if !same_origin(&parts.headers) {
            return refuse("the login form was posted from another site");
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    let user = match ConsoleUser::from_request_parts(&mut parts, &state).await {
        Ok(user) => user,
        Err(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                "not logged in: open /console/login and log in with your API token\n",
            )
                .into_response();
        }
    };
    if let Some(presented) = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        if !same_secret(presented, &user.csrf) {
            return refuse("the CSRF token is wrong; reload the page and try again");
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the form is larger than 1 MiB\n",
            )
                .into_response();
        }
    };
    let presented = form_urlencoded_field(&bytes, CSRF_FIELD);
    if !presented.is_some_and(|presented| same_secret(&presented, &user.csrf)) {
        return refuse("the form has no valid CSRF token; reload the page and try again");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(why: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("refused: {why}\n")).into_response()
}

/// True unless the browser says the request came from another origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    match (origin, host) {
        // Browsers send Origin on every POST; non-browser clients may not, and cannot carry a
        // victim's cookies anyway.
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
    }
}

/// The first value of `name` in an `application/x-www-form-urlencoded` body.
fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded_pairs(body)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing_and_form_fields() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; palisade_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "c"), None);
        assert_eq!(
            form_urlencoded_field(b"x=1&csrf=a%2Bb&csrf=zzz", "csrf").as_deref(),
            Some("a+b")
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
    }
}
