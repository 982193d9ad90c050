//! What the API test files share: a server on a loopback socket over a fresh SQLite store,
//! and reading a response as status and JSON (or the text, when it is not JSON).

use std::sync::Arc;

use palisade_notify::Notifier;
use palisade_server::{AdminToken, AppState, ensure_admin_token, router, serve};
use palisade_store::{SqliteStore, Store};
use reqwest::StatusCode;
use serde_json::Value;

/// A running server: its base URL (`http://127.0.0.1:PORT`), its store, and the directory
/// holding the database (removed on drop).
#[allow(dead_code)] // each test file is its own crate and reads only the fields it needs
pub struct Running {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
}

/// Starts a server whose first admin token is `admin` (as `PALISADE_ADMIN_TOKEN` gives it).
pub async fn start(admin: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("palisade.db"))
            .await
            .unwrap(),
    );
    assert_eq!(
        ensure_admin_token(store.as_ref(), Some(admin))
            .await
            .unwrap(),
        AdminToken::FromEnvironment
    );
    let state = AppState::new(store.clone(), Notifier::start(Default::default()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, router(state), None, std::future::pending()));
    Running { base, store, dir }
}

/// The response's status and body: JSON when it parses, else the text as a JSON string.
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
