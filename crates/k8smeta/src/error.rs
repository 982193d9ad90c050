//! The crate's error: what failed (reading the configuration, reaching the API server, a
//! refusal, a malformed or oversized answer) and where.

use std::path::PathBuf;

/// An error of the Kubernetes API client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file (kubeconfig, service-account token or CA) could not be read.
    #[error("cannot read the {what} {}", path.display())]
    ReadFile {
        /// What the file is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig file is not one this client can use.
    #[error("kubeconfig {}: {message}", path.display())]
    Kubeconfig {
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The in-cluster configuration is incomplete: not running in a pod.
    #[error(
        "no in-cluster Kubernetes configuration: {missing} (outside a pod, pass --kubeconfig FILE)"
    )]
    NotInCluster {
        /// What is missing.
        missing: String,
    },
    /// The HTTPS client could not be built from the configuration (a bad CA or client
    /// certificate).
    #[error("cannot set up the HTTPS client for {server}")]
    Client {
        /// The API server's URL.
        server: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The request did not get an answer (connection refused, TLS failure, timeout).
    #[error("GET {path}: the Kubernetes API server did not answer")]
    Request {
        /// The request's path and query.
        path: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The API server answered with an error status.
    #[error("GET {path}: the Kubernetes API server answered {status}{hint}: {body}")]
    Status {
        /// The request's path and query.
        path: String,
        /// The HTTP status.
        status: u16,
        /// What to do about it, for the statuses that have an obvious remedy.
        hint: &'static str,
        /// The start of the answer's body.
        body: String,
    },
    /// The resource version the request asked for is gone (HTTP 410, or a watch's ERROR
    /// event with code 410): the objects must be listed again.
    #[error("GET {path}: resource version too old (410 Gone); listing again")]
    Gone {
        /// The request's path and query.
        path: String,
    },
    /// The answer is not what the API server sends.
    #[error("GET {path}: malformed answer: {message}")]
    Malformed {
        /// The request's path and query.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The answer is larger than this client accepts.
    #[error("GET {path}: {what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The request's path and query.
        path: String,
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A watch stream sent nothing, not even a bookmark, for too long.
    #[error("GET {path}: the watch sent nothing for {seconds} s")]
    Idle {
        /// The request's path and query.
        path: String,
        /// How long it was quiet.
        seconds: u64,
    },
}
