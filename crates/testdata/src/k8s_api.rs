//! A Kubernetes API server stand-in that speaks the protocol the client relies on: HTTP/1.1,
//! `List` objects with `metadata.resourceVersion` and `continue` pages (`limit`), pods
//! filtered by `fieldSelector=spec.nodeName=...`, and watches as chunked streams of
//! newline-delimited events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, and `ERROR` with a
//! 410 `Status` when the asked-for version is older than the compacted history), with each
//! event split across two chunks so that the client must reassemble lines. Bearer tokens are
//! checked (401 with a `Status` body otherwise).
//!
//! Async tests start it with [`MockApi::start`] on their runtime; tests without one use
//! [`MockApi::start_in_thread`].

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    sync::Notify,
};

/// One entry of the watch history: an event for a collection, or a raw line.
struct Change {
    version: u64,
    path: &'static str,
    line: String,
    /// The object's node, for the pods' field selector.
    node: Option<String>,
}

#[derive(Default)]
struct State {
    version: u64,
    /// Objects per collection path, by `namespace/name`.
    collections: BTreeMap<&'static str, BTreeMap<String, Value>>,
    history: Vec<Change>,
    /// Watches from a version below this get a 410.
    compacted_below: u64,
    /// Bumped to end every open watch.
    epoch: u64,
    token: Option<String>,
    /// Collections answered with 403 Forbidden, as for a role without their `list`.
    forbidden: Vec<&'static str>,
    requests: Vec<String>,
}

/// The running mock; it stops with the runtime.
pub struct MockApi {
    /// Where it listens (loopback).
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

/// The collection path of pods.
pub const PODS: &str = "/api/v1/pods";
/// The collection path of namespaces.
pub const NAMESPACES: &str = "/api/v1/namespaces";
/// The collection path of replica sets.
pub const REPLICA_SETS: &str = "/apis/apps/v1/replicasets";
/// The collection path of deployments.
pub const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";
/// The collection path of services.
pub const SERVICES: &str = "/api/v1/services";
/// The collection path of replication controllers.
pub const REPLICATION_CONTROLLERS: &str = "/api/v1/replicationcontrollers";
const COLLECTIONS: [&str; 6] = [
    PODS,
    NAMESPACES,
    REPLICA_SETS,
    DEPLOYMENTS,
    SERVICES,
    REPLICATION_CONTROLLERS,
];

impl MockApi {
    /// Starts the mock on a free loopback port; with `token`, requests must carry it.
    pub async fn start(token: Option<&str>) -> MockApi {
        MockApi::start_with(token, None).await
    }

    /// [`MockApi::start`] on a runtime of its own, in a thread that lives as long as the test
    /// process, for tests that have no runtime.
    pub fn start_in_thread(token: Option<&str>) -> MockApi {
        let token = token.map(str::to_owned);
        let (started, mock) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                started
                    .send(MockApi::start(token.as_deref()).await)
                    .unwrap();
                std::future::pending::<()>().await
            });
        });
        mock.recv().unwrap()
    }

    /// [`MockApi::start`] behind TLS with `tls`'s certificate.
    pub async fn start_tls(token: Option<&str>, tls: Arc<rustls::ServerConfig>) -> MockApi {
        MockApi::start_with(token, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(token: Option<&str>, tls: Option<tokio_rustls::TlsAcceptor>) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            version: 100,
            token: token.map(str::to_owned),
            collections: COLLECTIONS
                .into_iter()
                .map(|path| (path, BTreeMap::new()))
                .collect(),
            ..State::default()
        }));
        let changed = Arc::new(Notify::new());
        let (accept_state, accept_changed) = (Arc::clone(&state), Arc::clone(&changed));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, changed) = (Arc::clone(&accept_state), Arc::clone(&accept_changed));
                match &tls {
                    None => {
                        tokio::spawn(serve(stream, state, changed));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // A client that refuses the certificate ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, state, changed).await;
                            }
                        });
                    }
                }
            }
        });
        MockApi {
            address,
            state,
            changed,
        }
    }

    /// Answers 403 Forbidden for `path` from now on.
    pub fn forbid(&self, path: &'static str) {
        self.state.lock().unwrap().forbidden.push(path);
    }

    /// The base URL over plain HTTP.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The base URL over HTTPS (for [`MockApi::start_tls`]).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Adds or replaces an object and records the watch event.
    pub fn put(&self, path: &'static str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let version = state.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let key = key_of(&object);
        let existed = state
            .collections
            .get_mut(path)
            .unwrap()
            .insert(key, object.clone())
            .is_some();
        let kind = if existed { "MODIFIED" } else { "ADDED" };
        state.history.push(Change {
            version,
            path,
            node: node_of(&object),
            line: json!({"type": kind, "object": object}).to_string(),
        });
        drop(state);
        self.changed.notify_waiters();
    }

    /// Deletes an object and records the watch event.
    pub fn delete(&self, path: &'static str, namespace: &str, name: &str) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let version = state.version;
        let mut object = state
            .collections
            .get_mut(path)
            .unwrap()
            .remove(&format!("{namespace}/{name}"))
            .unwrap();
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        state.history.push(Change {
            version,
            path,
            node: node_of(&object),
            line: json!({"type": "DELETED", "object": object}).to_string(),
        });
        drop(state);
        self.changed.notify_waiters();
    }

    /// Changes an object without a watch event, as if it happened in history that is then
    /// compacted away.
    pub fn put_unwatched(&self, path: &'static str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        let key = key_of(&object);
        state.collections.get_mut(path).unwrap().insert(key, object);
    }

    /// Sends `line` as is on the watches of `path`.
    pub fn raw_line(&self, path: &'static str, line: String) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let version = state.version;
        state.history.push(Change {
            version,
            path,
            node: None,
            line,
        });
        drop(state);
        self.changed.notify_waiters();
    }

    /// Forgets the watch history and ends every open watch: watches from any version seen
    /// so far get a 410.
    pub fn compact_and_end_watches(&self) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        state.compacted_below = state.version;
        state.history.clear();
        state.epoch += 1;
        drop(state);
        self.changed.notify_waiters();
    }

    /// The requests' paths and queries, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn key_of(object: &Value) -> String {
    let metadata = &object["metadata"];
    format!(
        "{}/{}",
        metadata["namespace"].as_str().unwrap_or(""),
        metadata["name"].as_str().unwrap()
    )
}

fn node_of(object: &Value) -> Option<String> {
    object["spec"]["nodeName"].as_str().map(str::to_owned)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 || head.len() > 65536 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let authorization = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (decode(key), decode(value)))
        .collect();
    let (expected_token, forbidden) = {
        let mut state = state.lock().unwrap();
        state.requests.push(decode(&target));
        (state.token.clone(), state.forbidden.clone())
    };
    if let Some(token) = expected_token
        && authorization != format!("Bearer {token}")
    {
        let body = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"Unauthorized","reason":"Unauthorized","code":401})
        .to_string();
        respond(&mut stream, "401 Unauthorized", &body).await;
        return;
    }
    if forbidden.contains(&path) {
        let body = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"forbidden","reason":"Forbidden","code":403})
        .to_string();
        respond(&mut stream, "403 Forbidden", &body).await;
        return;
    }
    let Some(path) = COLLECTIONS.into_iter().find(|known| *known == path) else {
        respond(
            &mut stream,
            "404 Not Found",
            r#"{"kind":"Status","code":404}"#,
        )
        .await;
        return;
    };
    let node = query
        .get("fieldSelector")
        .and_then(|selector| selector.strip_prefix("spec.nodeName="))
        .map(str::to_owned);
    if query.get("watch").is_some_and(|watch| watch == "1") {
        let from: u64 = query
            .get("resourceVersion")
            .and_then(|version| version.parse().ok())
            .unwrap_or(0);
        watch(stream, path, node, from, state, changed).await;
    } else {
        let limit: usize = query
            .get("limit")
            .and_then(|limit| limit.parse().ok())
            .unwrap_or(usize::MAX);
        let offset: usize = query
            .get("continue")
            .and_then(|token| token.parse().ok())
            .unwrap_or(0);
        let body = {
            let state = state.lock().unwrap();
            let items: Vec<&Value> = state.collections[path]
                .values()
                .filter(|object| node.is_none() || node_of(object) == node)
                .collect();
            let page: Vec<&Value> = items.iter().skip(offset).take(limit).copied().collect();
            let mut metadata = json!({"resourceVersion": state.version.to_string()});
            if offset + page.len() < items.len() {
                metadata["continue"] = json!((offset + page.len()).to_string());
            }
            json!({"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": page})
                .to_string()
        };
        respond(&mut stream, "200 OK", &body).await;
    }
}

async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Streams the history after `from` and then every new change, until the epoch changes or
/// the client goes away.
async fn watch<S: AsyncWrite + Unpin>(
    mut stream: S,
    path: &'static str,
    node: Option<String>,
    from: u64,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let (epoch, compacted_below) = {
        let state = state.lock().unwrap();
        (state.epoch, state.compacted_below)
    };
    if from < compacted_below {
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({compacted_below})"),
            "reason": "Expired", "code": 410}});
        let _ = send_line(&mut stream, &gone.to_string()).await;
        let _ = stream.write_all(b"0\r\n\r\n").await;
        return;
    }
    let mut sent = from;
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (lines, now_epoch) = {
            let state = state.lock().unwrap();
            let lines: Vec<(u64, String)> = state
                .history
                .iter()
                .filter(|change| change.version > sent && change.path == path)
                .filter(|change| node.is_none() || change.node.is_none() || change.node == node)
                .map(|change| (change.version, change.line.clone()))
                .collect();
            (lines, state.epoch)
        };
        if now_epoch != epoch {
            let _ = stream.write_all(b"0\r\n\r\n").await;
            return;
        }
        for (version, line) in lines {
            if send_line(&mut stream, &line).await.is_err() {
                return;
            }
            sent = version;
        }
        if tokio::time::timeout(Duration::from_secs(60), notified)
            .await
            .is_err()
        {
            let _ = stream.write_all(b"0\r\n\r\n").await;
            return;
        }
    }
}

/// One event line, split into two chunks.
async fn send_line<S: AsyncWrite + Unpin>(stream: &mut S, line: &str) -> std::io::Result<()> {
    let bytes = format!("{line}\n").into_bytes();
    let middle = bytes.len() / 2;
    for part in [&bytes[..middle], &bytes[middle..]] {
        stream
            .write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await?;
        stream.write_all(part).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
    }
    Ok(())
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `metadata` of an object.
pub fn metadata(
    namespace: &str,
    name: &str,
    uid: &str,
    labels: &[(&str, &str)],
    owner: Option<(&str, &str, &str)>,
) -> Value {
    let mut metadata = json!({
        "name": name,
        "uid": uid,
        "creationTimestamp": "2026-11-29T10:00:00Z",
        "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    });
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    if let Some((kind, owner_name, owner_uid)) = owner {
        metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": owner_name, "uid": owner_uid, "controller": true,
            "blockOwnerDeletion": true}]);
    }
    metadata
}

/// A pod on `node`, running, with an IP.
pub fn pod(
    namespace: &str,
    name: &str,
    uid: &str,
    node: &str,
    labels: &[(&str, &str)],
    owner: Option<(&str, &str, &str)>,
) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": metadata(namespace, name, uid, labels, owner),
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "podIP": "10.244.1.7",
                   "podIPs": [{"ip": "10.244.1.7"}], "hostIP": "192.168.1.10"}})
}

/// A service selecting `selector`.
pub fn service(
    namespace: &str,
    name: &str,
    uid: &str,
    labels: &[(&str, &str)],
    selector: &[(&str, &str)],
) -> Value {
    json!({"kind": "Service", "apiVersion": "v1",
        "metadata": metadata(namespace, name, uid, labels, None),
        "spec": {"selector": selector.iter().map(|(k, v)| (k.to_string(), json!(v)))
                     .collect::<serde_json::Map<_, _>>(),
                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                 "clusterIP": "10.96.0.20", "type": "ClusterIP"}})
}

/// A workload object (replica set, deployment, replication controller, namespace) with a
/// label selector as workloads have one.
pub fn object(
    kind: &str,
    namespace: &str,
    name: &str,
    uid: &str,
    labels: &[(&str, &str)],
    owner: Option<(&str, &str, &str)>,
) -> Value {
    json!({"kind": kind, "apiVersion": "apps/v1",
        "metadata": metadata(namespace, name, uid, labels, owner),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": 2, "readyReplicas": 2}})
}
