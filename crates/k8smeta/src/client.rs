//! The HTTP side: GET with the bearer token, lists read page by page, watch streams read
//! line by line, every answer bounded by the [`Limits`].

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    ApiConfig, Error,
    cache::Store,
    config::Token,
    objects::{self, Object, Rejection, ResourceKind},
};

/// One API server's HTTP client.
pub(crate) struct ApiClient {
    http: reqwest::Client,
    server: String,
    token: Option<Token>,
}

/// What a watch request asks of the server and how long the client waits.
pub(crate) struct WatchTiming {
    /// The server ends the watch after this long (`timeoutSeconds`); the client watches
    /// again from where it was.
    pub server_timeout: Duration,
    /// The client gives up a watch that sent nothing (not even a bookmark) for this long.
    pub idle_timeout: Duration,
    /// The longest a list page may take.
    pub list_timeout: Duration,
}

/// Bytes of an error answer's body kept for the message.
const ERROR_BODY_BYTES: usize = 512;

impl ApiClient {
    pub fn new(config: &ApiConfig, connect_timeout: Duration) -> Result<ApiClient, Error> {
        let failed = |source| Error::Client {
            server: config.server.clone(),
            source,
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(connect_timeout)
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(pem) = &config.ca_pem {
            // Only the cluster's CA: the API server's certificate is not one a public CA signs.
            builder = builder.tls_built_in_root_certs(false);
            for certificate in reqwest::Certificate::from_pem_bundle(pem).map_err(failed)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(pem) = &config.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(pem).map_err(failed)?);
        }
        Ok(ApiClient {
            http: builder.build().map_err(failed)?,
            server: config.server.clone(),
            token: config.token.clone(),
        })
    }

    /// GETs `path` with `query`; an error status is an error, 410 [`Error::Gone`].
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, Error> {
        let described = describe(path, query);
        let mut request = self
            .http
            .get(format!("{}{path}", self.server))
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.value()?);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|source| Error::Request {
            path: described.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        if status == 410 {
            return Err(Error::Gone { path: described });
        }
        let body = read_limited(response, ERROR_BODY_BYTES, &described, "error body")
            .await
            .unwrap_or_else(|_| Vec::new());
        Err(Error::Status {
            path: described,
            status,
            hint: status_hint(status),
            body: String::from_utf8_lossy(&body).trim().to_owned(),
        })
    }

    /// Lists every object of `kind` (page by page); returns them with the list's resource
    /// version. Objects that are malformed or too large are counted, logged and left out.
    pub async fn list(
        &self,
        kind: ResourceKind,
        field_selector: Option<&str>,
        store: &Store,
        timing: &WatchTiming,
    ) -> Result<(Vec<Object>, String), Error> {
        let limits = store.limits;
        let page_size = limits.list_page.to_string();
        let mut objects = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![("limit", page_size.as_str())];
            if let Some(selector) = field_selector {
                query.push(("fieldSelector", selector));
            }
            if let Some(token) = &next {
                query.push(("continue", token.as_str()));
            }
            let described = describe(kind.path(), &query);
            let response = self
                .get(kind.path(), &query, Some(timing.list_timeout))
                .await?;
            let body = read_limited(
                response,
                limits.max_list_page_bytes,
                &described,
                "a list page",
            )
            .await?;
            let page: ListPage<'_> =
                serde_json::from_slice(&body).map_err(|error| Error::Malformed {
                    path: described.clone(),
                    message: format!("not a {}List: {error}", kind.kind_name()),
                })?;
            for item in page.items.unwrap_or_default() {
                if let Some((object, _)) = take(kind, item.get(), store, &described) {
                    objects.push(object);
                }
            }
            match page.metadata.next.filter(|token| !token.is_empty()) {
                Some(token) => next = Some(token),
                None => return Ok((objects, page.metadata.resource_version)),
            }
        }
    }

    /// Watches `kind` from `resource_version` (advanced as events arrive) and applies each
    /// event to `store`, until the server ends the stream (`Ok`) or something fails; a gone
    /// resource version is [`Error::Gone`].
    pub async fn watch(
        &self,
        kind: ResourceKind,
        field_selector: Option<&str>,
        resource_version: &mut String,
        store: &Store,
        timing: &WatchTiming,
    ) -> Result<(), Error> {
        let server_timeout = timing.server_timeout.as_secs().max(1).to_string();
        let version = resource_version.clone();
        let mut query = vec![
            ("watch", "1"),
            ("resourceVersion", version.as_str()),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", server_timeout.as_str()),
        ];
        if let Some(selector) = field_selector {
            query.push(("fieldSelector", selector));
        }
        let described = describe(kind.path(), &query);
        let mut response = self.get(kind.path(), &query, None).await?;
        let max_line = store.limits.max_object_bytes;
        let mut line: Vec<u8> = Vec::new();
        // Set while the rest of an oversized line is thrown away.
        let mut skipping = false;
        loop {
            let chunk = match tokio::time::timeout(timing.idle_timeout, response.chunk()).await {
                Err(_) => {
                    return Err(Error::Idle {
                        path: described,
                        seconds: timing.idle_timeout.as_secs(),
                    });
                }
                Ok(Err(source)) => {
                    return Err(Error::Request {
                        path: described,
                        source,
                    });
                }
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(chunk))) => chunk,
            };
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let end = rest.iter().position(|byte| *byte == b'\n');
                let (part, complete) = match end {
                    Some(end) => (&rest[..end], true),
                    None => (rest, false),
                };
                rest = end.map_or(&[][..], |end| &rest[end + 1..]);
                if !skipping {
                    line.extend_from_slice(part);
                    if line.len() > max_line {
                        store
                            .stats
                            .oversized
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        store.stats.record_error(format!(
                            "GET {described}: a watch event over {max_line} bytes was skipped"
                        ));
                        line.clear();
                        skipping = true;
                    }
                }
                if complete {
                    if !skipping {
                        apply_event(kind, &line, resource_version, store, &described)?;
                    }
                    line.clear();
                    skipping = false;
                }
            }
        }
    }
}

/// Applies one line of a watch stream.
fn apply_event(
    kind: ResourceKind,
    line: &[u8],
    resource_version: &mut String,
    store: &Store,
    described: &str,
) -> Result<(), Error> {
    use std::sync::atomic::Ordering::Relaxed;
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let event: WatchEvent<'_> = match serde_json::from_slice(line) {
        Ok(event) => event,
        Err(error) => {
            store.stats.malformed.fetch_add(1, Relaxed);
            store.stats.record_error(format!(
                "GET {described}: a watch event is not JSON of the watch protocol: {error}"
            ));
            return Ok(());
        }
    };
    match event.kind {
        "ADDED" | "MODIFIED" | "DELETED" => {
            let Some((object, version)) = take(kind, event.object.get(), store, described) else {
                return Ok(());
            };
            if event.kind == "DELETED" {
                store.remove(kind, &object);
            } else {
                store.upsert(kind, object);
            }
            store.stats.watch_events.fetch_add(1, Relaxed);
            store.stats.record_contact(kind);
            if !version.is_empty() {
                *resource_version = version;
            }
        }
        "BOOKMARK" => {
            store.stats.bookmarks.fetch_add(1, Relaxed);
            store.stats.record_contact(kind);
            if let Some(version) = objects::resource_version_of(event.object.get()) {
                *resource_version = version;
            }
        }
        "ERROR" => {
            let status: StatusObject = serde_json::from_str(event.object.get()).unwrap_or_default();
            if status.code == 410 {
                return Err(Error::Gone {
                    path: described.to_owned(),
                });
            }
            return Err(Error::Status {
                path: described.to_owned(),
                status: status.code,
                hint: status_hint(status.code),
                body: status.message,
            });
        }
        other => {
            store.stats.malformed.fetch_add(1, Relaxed);
            store.stats.record_error(format!(
                "GET {described}: a watch event of unknown type '{other}' was skipped"
            ));
        }
    }
    Ok(())
}

/// Decodes one object, counting and logging a rejected one.
fn take(
    kind: ResourceKind,
    json: &str,
    store: &Store,
    described: &str,
) -> Option<(Object, String)> {
    use std::sync::atomic::Ordering::Relaxed;
    let (counter, message) = match objects::decode(kind, json, &store.limits) {
        Ok(decoded) => return Some(decoded),
        Err(Rejection::Oversized(message)) => (&store.stats.oversized, message),
        Err(Rejection::Malformed(message)) => (&store.stats.malformed, message),
    };
    counter.fetch_add(1, Relaxed);
    store
        .stats
        .record_error(format!("GET {described}: skipped: {message}"));
    None
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    described: &str,
    what: &'static str,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| Error::Request {
        path: described.to_owned(),
        source,
    })? {
        if body.len() + chunk.len() > limit {
            return Err(Error::TooLarge {
                path: described.to_owned(),
                what,
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `path?key=value&...` for messages.
fn describe(path: &str, query: &[(&str, &str)]) -> String {
    let mut described = path.to_owned();
    for (index, (key, value)) in query.iter().enumerate() {
        described.push(if index == 0 { '?' } else { '&' });
        described.push_str(key);
        described.push('=');
        described.push_str(value);
    }
    described
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 => {
            " (Unauthorized: the API server refused the credentials; check the service-account token or the kubeconfig's user)"
        }
        403 => {
            " (Forbidden: grant the agent's account get, list and watch on pods, namespaces, services, replicationcontrollers, and apps replicasets and deployments)"
        }
        _ => "",
    }
}

#[derive(Deserialize)]
struct ListPage<'a> {
    #[serde(default)]
    metadata: ListMetadata,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize, Default)]
struct ListMetadata {
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct WatchEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    object: &'a RawValue,
}

/// A `meta/v1` `Status`, as a watch's ERROR event carries it.
#[derive(Deserialize, Default)]
struct StatusObject {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
}
