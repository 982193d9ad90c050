//! The HTTPS client side of the agent link.

use std::{os::unix::fs::OpenOptionsExt, path::Path, sync::Arc, time::Duration};

use palisade_model::{AgentBatch, BatchAck, JoinRequest, JoinResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AgentConfig;

/// Time allowed for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A link failure.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The request did not complete (server down, network, TLS).
    #[error("cannot reach the server")]
    Transport(#[from] reqwest::Error),
    /// The server refused the credential: it was revoked, or the agent must enroll again.
    #[error("the server refused the agent's credential (HTTP {status}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server rejected the request itself; resending the same request will not help.
    #[error("the server rejected the request (HTTP {status}): {message}")]
    Rejected {
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server failed (5xx), or the request's body did not reach it in time (408); worth
    /// retrying.
    #[error("the server failed (HTTP {status}): {message}")]
    Server {
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server is busy (503 or 429) and asks for the request again later, after
    /// `retry_after` when its `Retry-After` says (in seconds).
    #[error("the server deferred the request (HTTP {status}): {message}")]
    Deferred {
        /// 503 or 429.
        status: u16,
        /// The wait the server asked for.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// No join token and no stored credential.
    #[error("the agent is not enrolled: pass a join token (palisade agent --join-token ...)")]
    NotEnrolled,
    /// A local file (CA, credential) could not be used.
    #[error("{what} {path}")]
    File {
        /// What failed.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A request could not be encoded as JSON.
    #[error("cannot encode the request as JSON")]
    Encode(#[from] serde_json::Error),
    /// The task sending a batch ended without a reply (it panicked or was cancelled).
    #[error("sending a batch was interrupted: {0}")]
    Interrupted(String),
}

impl LinkError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LinkError::Transport(_)
                | LinkError::Server { .. }
                | LinkError::Deferred { .. }
                | LinkError::Interrupted(_)
        )
    }

    /// The wait the server asked for before the request is sent again, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LinkError::Deferred { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The agent's enrolled identity, kept in `credential.json` (mode 0600).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The agent's id.
    pub agent_id: Uuid,
    /// Its bearer token.
    pub token: String,
}

/// An HTTPS client for one server.
#[derive(Debug, Clone)]
pub struct Link {
    client: reqwest::Client,
    base_url: String,
}

impl Link {
    /// A client for `config.server_url`, trusting `config.ca_cert` when given.
    pub fn new(config: &AgentConfig) -> Result<Link, LinkError> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .use_preconfigured_tls(tls_config(config)?);
        if config.server_url.starts_with("http://") {
            // No TLS, hence no ALPN: speak HTTP/2 with prior knowledge only if asked; plain
            // HTTP is for tests and loopback setups, so HTTP/1.1 is fine there.
            builder = builder.http1_only();
        }
        Ok(Link {
            client: builder.build()?,
            base_url: config.server_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Loads the stored credential, or enrolls with the join token and stores the result.
    pub async fn credential(&self, config: &AgentConfig) -> Result<Credential, LinkError> {
        let path = config.data_dir.join("credential.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(credential) = serde_json::from_str(&text) {
                return Ok(credential);
            }
            tracing::warn!(path = %path.display(), "The stored credential is unreadable; enrolling again.");
        }
        let join_token = config.join_token.as_deref().ok_or(LinkError::NotEnrolled)?;
        let request = JoinRequest {
            name: config.name.clone(),
            cluster: config.cluster.clone(),
            facts: config.host_facts(),
        };
        let response: JoinResponse = self
            .post("/api/v1/agents/join", join_token, &request)
            .await?;
        let credential = Credential {
            agent_id: response.agent_id,
            token: response.token,
        };
        write_private(
            &path,
            &serde_json::to_string(&credential).unwrap_or_default(),
        )?;
        Ok(credential)
    }

    /// Sends a batch encoded by [`EncodedBatch::new`] and returns the acknowledgement.
    pub async fn send(
        &self,
        credential: &Credential,
        batch: EncodedBatch,
    ) -> Result<BatchAck, LinkError> {
        self.post_json("/api/v1/agent/batches", &credential.token, batch.0)
            .await
    }

    /// The server's firewall rules, or `None` when they still have the ETag `etag`; the
    /// new ETag comes with the rules.
    pub async fn firewall_rules(
        &self,
        credential: &Credential,
        etag: Option<&str>,
    ) -> Result<Option<(String, Vec<palisade_model::FirewallRule>)>, LinkError> {
        let mut request = self
            .client
            .get(format!("{}/api/v1/agent/firewall-rules", self.base_url))
            .bearer_auth(&credential.token);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if status.is_success() {
            let etag = response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            return Ok(Some((etag, response.json().await?)));
        }
        let retry_after = retry_after(response.headers());
        Err(failure(
            status.as_u16(),
            retry_after,
            response.text().await.unwrap_or_default(),
        ))
    }

    pub(crate) async fn post<T: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        token: &str,
        body: &T,
    ) -> Result<R, LinkError> {
        self.post_json(path, token, serde_json::to_vec(body)?).await
    }

    /// POSTs a JSON document already encoded.
    async fn post_json<R: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        token: &str,
        body: Vec<u8>,
    ) -> Result<R, LinkError> {
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let retry_after = retry_after(response.headers());
        Err(failure(
            status.as_u16(),
            retry_after,
            response.text().await.unwrap_or_default(),
        ))
    }
}

/// A batch's request body: encoded where the batch is put together, while its reports'
/// documents may still borrow from the outbox's read, and sent from a task of its own.
#[derive(Debug)]
pub struct EncodedBatch(Vec<u8>);

impl EncodedBatch {
    /// `batch` as JSON.
    pub fn new<R: Serialize>(batch: &AgentBatch<R>) -> Result<EncodedBatch, LinkError> {
        Ok(EncodedBatch(serde_json::to_vec(batch)?))
    }
}

/// The error for an unsuccessful response, whose `Retry-After` asked for `retry_after`.
fn failure(status: u16, retry_after: Option<Duration>, message: String) -> LinkError {
    match status {
        401 | 403 => LinkError::Unauthorized { status, message },
        429 | 503 => LinkError::Deferred {
            status,
            retry_after,
            message,
        },
        408 | 500.. => LinkError::Server { status, message },
        _ => LinkError::Rejected { status, message },
    }
}

/// A response's `Retry-After` in seconds; `None` without one, or for the HTTP-date form (the
/// server sends seconds; the caller's backoff stands in).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse().ok().map(Duration::from_secs)
}

fn tls_config(config: &AgentConfig) -> Result<rustls::ClientConfig, LinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &config.ca_cert {
        let pem = std::fs::read(path).map_err(|source| LinkError::File {
            what: "cannot read the CA certificate",
            path: path.display().to_string(),
            source,
        })?;
        let mut added = 0;
        for certificate in rustls_pemfile_certs(&pem) {
            if roots.add(certificate).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err(LinkError::File {
                what: "no usable certificate in",
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "expected PEM certificates",
                ),
            });
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| LinkError::File {
            what: "TLS setup failed for",
            path: config.server_url.clone(),
            source: std::io::Error::other(error),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .collect()
}

fn write_private(path: &Path, contents: &str) -> Result<(), LinkError> {
    use std::io::Write;
    let file_error = |source| LinkError::File {
        what: "cannot write the credential",
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(file_error)?;
    file.write_all(contents.as_bytes()).map_err(file_error)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use crate::LinkError;

    fn answer(status: u16, retry_after: Option<&str>) -> LinkError {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        super::failure(status, super::retry_after(&headers), "busy".into())
    }

    /// 503 and 429 defer the request, retried after the seconds Retry-After names; a date or
    /// no header leaves the wait to the caller's backoff; other failures name no wait.
    #[test]
    fn a_deferral_names_the_wait_its_retry_after_asks_for() {
        for status in [503, 429] {
            let error = answer(status, Some(" 7 "));
            assert!(matches!(error, LinkError::Deferred { .. }), "{error}");
            assert!(error.is_transient());
            assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        }
        assert_eq!(
            answer(503, Some("Wed, 21 Oct 2026 07:28:00 GMT")).retry_after(),
            None
        );
        assert_eq!(answer(503, Some("-3")).retry_after(), None);
        assert_eq!(answer(503, None).retry_after(), None);
        assert!(answer(503, None).is_transient());
        let error = answer(500, Some("7"));
        assert!(matches!(error, LinkError::Server { .. }), "{error}");
        assert_eq!(error.retry_after(), None);
        assert!(!answer(400, Some("7")).is_transient());
        // A body cut at the server's deadline (a slow link) is sent again, not given up.
        let error = answer(408, None);
        assert!(matches!(error, LinkError::Server { .. }), "{error}");
        assert!(error.is_transient());
    }
}
