//! What the API test files share: a server on a loopback socket over a fresh SQLite store,
//! requests with a bearer token, reading a response as status and JSON (or the text, when it
//! is not JSON), tokens the admin makes, an agent enrolled through the API, a console login,
//! and the real agent run in the test's process; and ([`Server`]) a server called through a
//! client of its own.

#[allow(dead_code)] // each test file is its own crate and uses only what it needs
mod server;

use std::sync::Arc;

use palisade_notify::Notifier;
use palisade_server::{AdminToken, AppState, ensure_admin_token, router, serve};
use palisade_store::{SqliteStore, Store};
use reqwest::StatusCode;
use serde_json::Value;

#[allow(unused_imports)] // each test file is its own crate and uses only what it needs
pub use server::Server;

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
    start_with(admin, |_| ()).await
}

/// [`start`], with `configure` applied to the state before it serves.
pub async fn start_with(admin: &str, configure: impl FnOnce(&AppState)) -> Running {
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
    configure(&state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, router(state), None, std::future::pending()));
    Running { base, store, dir }
}

/// The response's status and body: JSON when it parses, else the text as a JSON string.
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `GET {base}{path}` with `token`, read by [`read`].
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
) -> (StatusCode, Value) {
    let request = client.get(format!("{base}{path}")).bearer_auth(token);
    read(request.send().await.unwrap()).await
}

/// `POST {base}{path}` of the JSON `body` with `token`, read by [`read`].
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let request = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(body);
    read(request.send().await.unwrap()).await
}

/// A token of `role` named `name`, made by the admin (`admin_token`) through the API: the
/// token.
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn token(
    client: &reqwest::Client,
    base: &str,
    admin_token: &str,
    name: &str,
    role: &str,
) -> String {
    let (status, body) = post(
        client,
        base,
        "/api/v1/tokens",
        admin_token,
        &serde_json::json!({"name": name, "role": role}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// An agent enrolled through the API.
#[allow(dead_code)] // each test file is its own crate and reads only the fields it needs
pub struct Enrolled {
    /// Its id.
    pub agent_id: String,
    /// Its agent token, which sends its batches.
    pub token: String,
}

/// Enrolls node `name` of cluster `prod`, whose hostname is `hostname`, with a join token
/// the admin (`admin_token`) makes for it.
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn enroll(
    client: &reqwest::Client,
    base: &str,
    admin_token: &str,
    name: &str,
    hostname: &str,
) -> Enrolled {
    let join = token(client, base, admin_token, &format!("join {name}"), "join").await;
    let request = palisade_model::JoinRequest {
        name: name.into(),
        cluster: "prod".into(),
        facts: palisade_model::HostFacts {
            hostname: hostname.into(),
            ..Default::default()
        },
    };
    let (status, body) = post(
        client,
        base,
        "/api/v1/agents/join",
        &join,
        &serde_json::to_value(request).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Enrolled {
        agent_id: body["agent_id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

/// Logs into the console at `base` with `token` through `client` (which must not follow
/// redirects), asking to land on `next`: the session cookie (`name=value`).
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn console_login(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    next: &str,
) -> String {
    let response = client
        .post(format!("{base}/console/login"))
        .form(&[("token", token), ("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A configuration of the real agent for the server at `base` (over `store`), with a fresh join token: cluster
/// `prod`, node `node-1`, its data in `dir/agent` and an empty host root `dir/host` (so every
/// finding is the test's own); the schedule starts at once.
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub async fn agent_config(
    base: &str,
    store: &dyn Store,
    dir: &std::path::Path,
) -> palisade_agent::AgentConfig {
    let host_root = dir.join("host");
    std::fs::create_dir_all(&host_root).unwrap();
    let data_dir = dir.join("agent");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut config = palisade_agent::AgentConfig::new(base.to_owned(), &data_dir, "prod", "node-1");
    config.join_token = Some(
        palisade_server::issue_join_token(store, "test agent")
            .await
            .unwrap(),
    );
    config.scans.host_root = host_root;
    config.scans.start_delay_secs = 0;
    config
}

/// The real agent, running in this process until [`RunningAgent::stop`].
#[allow(dead_code)] // each test file is its own crate and uses only what it needs
pub struct RunningAgent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), palisade_agent::RunError>>,
}

#[allow(dead_code)] // each test file is its own crate and uses only what it needs
impl RunningAgent {
    /// Opens the outbox in the configuration's data directory and runs the agent.
    pub async fn start(config: palisade_agent::AgentConfig) -> RunningAgent {
        let outbox = palisade_agent::Outbox::open(&config.data_dir)
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let status = palisade_agent::AgentStatus::default();
            palisade_agent::run(config, outbox, &status, async {
                let _ = stopped.await;
            })
            .await
        });
        RunningAgent { stop, task }
    }

    /// Stops the agent and fails the test if it ended with an error.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}
