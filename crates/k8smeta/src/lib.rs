//! Kubernetes API server metadata for the `k8s.*` rule fields that the container runtime
//! cannot give: pod labels and IP, the namespace's uid and labels, the replica set,
//! deployment or replication controller that owns the pod, and the services that select it
//! (Falco's older libsinsp `k8s.*` fields; Falco 0.37+ gets them from its k8smeta plugin).
//!
//! - [`ApiConfig`]: where the API server is and the credentials — a pod's service account
//!   ([`ApiConfig::in_cluster`]) or a kubeconfig file ([`ApiConfig::from_kubeconfig`]: server,
//!   CA, bearer token, client certificate).
//! - [`MetaSource::start`]: one reflector task per resource kind — pods (of this node only,
//!   `fieldSelector=spec.nodeName=NODE`), namespaces, replica sets, deployments, services and
//!   replication controllers — that LISTs (in pages) and then WATCHes from the list's
//!   resource version with bookmarks, lists again when the version is gone (410), and
//!   reconnects after a failure with a bounded backoff. Everything lands in one in-memory
//!   cache with explicit [`Limits`]; a malformed or oversized object is counted
//!   ([`StatsSnapshot`]), logged and skipped, never a panic.
//! - [`PodMetaLookup::attach`]: on the thread that evaluates events, sets
//!   [`palisade_event::Event::k8s_meta`] from the pod the container runtime named
//!   (namespace, name, UID), following owner references pod → replica set → deployment and
//!   matching services by selector.
//!
//! # Design decision: enrich the event, not the rules
//!
//! The metadata is attached to the event before the rules see it, as every other
//! enrichment is: the rules engine never talks to Kubernetes, a recorded event replays with
//! the metadata it had live, and an event costs one hash lookup because what a pod resolves
//! to is kept until the cache changes in a way that could alter it (a status-only update
//! changes nothing). An unreachable or refusing API server leaves the fields absent (Falco's
//! `<NA>`) while detection goes on; the reflectors keep retrying.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let kubeconfig = dir.path().join("config");
//! std::fs::write(
//!     &kubeconfig,
//!     "apiVersion: v1\nkind: Config\ncurrent-context: dev\n\
//!      contexts: [{name: dev, context: {cluster: c1, user: u1}}]\n\
//!      clusters: [{name: c1, cluster: {server: 'http://127.0.0.1:1'}}]\n\
//!      users: [{name: u1, user: {token: abc}}]\n",
//! )
//! .unwrap();
//! let config = palisade_k8smeta::ApiConfig::from_kubeconfig(&kubeconfig).unwrap();
//! assert_eq!(config.server, "http://127.0.0.1:1");
//!
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! let settings = palisade_k8smeta::WatchSettings::default();
//! let source = palisade_k8smeta::MetaSource::start(&config, settings, runtime.handle()).unwrap();
//! // Nothing listens there: no metadata, and the event goes on without it.
//! let mut event = palisade_event::Event::new(palisade_event::EventKind::Execve);
//! source.lookup().attach(&mut event);
//! assert!(event.k8s_meta.is_none());
//! ```
#![deny(missing_docs)]

mod cache;
mod client;
mod config;
mod error;
mod objects;
mod watch;

use std::{sync::Arc, time::Duration};

pub use cache::{PodMetaLookup, StatsSnapshot};
pub use config::{ApiConfig, SERVICE_ACCOUNT_DIR, Token};
pub use error::Error;
pub use objects::{Limits, ResourceKind};

/// How the reflectors run.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// This node's name: only its pods are listed and watched. `None` follows every pod of
    /// the cluster (a test, or a single-node tool).
    pub node: Option<String>,
    /// What the cache accepts.
    pub limits: Limits,
    /// The first wait after a failure; each further failure doubles it.
    pub backoff_min: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// How long the API server keeps one watch open (`timeoutSeconds`).
    pub watch_server_timeout: Duration,
    /// A watch quiet for longer (no event, no bookmark) is dropped and opened again.
    pub watch_idle_timeout: Duration,
    /// The longest a connection may take to open.
    pub connect_timeout: Duration,
    /// The longest one page of a list may take.
    pub list_timeout: Duration,
}

impl Default for WatchSettings {
    fn default() -> WatchSettings {
        WatchSettings {
            node: None,
            limits: Limits::default(),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            // client-go's reflectors ask for 5-10 minutes; bookmarks come about every minute.
            watch_server_timeout: Duration::from_secs(300),
            watch_idle_timeout: Duration::from_secs(330),
            connect_timeout: Duration::from_secs(10),
            list_timeout: Duration::from_secs(60),
        }
    }
}

/// The running reflectors and their cache. Dropping it stops the reflectors.
pub struct MetaSource {
    server: String,
    store: Arc<cache::Store>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MetaSource {
    /// Starts one reflector per [`ResourceKind`] on `runtime`. Fails only when the HTTPS
    /// client cannot be set up from `config` (a bad CA or client certificate); an API server
    /// that does not answer or refuses is retried in the background, counted and logged.
    pub fn start(
        config: &ApiConfig,
        settings: WatchSettings,
        runtime: &tokio::runtime::Handle,
    ) -> Result<MetaSource, Error> {
        let client = Arc::new(client::ApiClient::new(config, settings.connect_timeout)?);
        let store = Arc::new(cache::Store::new(settings.limits));
        let timing = Arc::new(client::WatchTiming {
            server_timeout: settings.watch_server_timeout,
            idle_timeout: settings.watch_idle_timeout,
            list_timeout: settings.list_timeout,
        });
        let pod_selector = settings
            .node
            .as_ref()
            .map(|node| format!("spec.nodeName={node}"));
        let tasks = ResourceKind::ALL
            .into_iter()
            .map(|kind| {
                let selector = match kind {
                    ResourceKind::Pod => pod_selector.clone(),
                    _ => None,
                };
                runtime.spawn(watch::reflect(
                    Arc::clone(&client),
                    kind,
                    selector,
                    Arc::clone(&store),
                    Arc::clone(&timing),
                    watch::Backoff::new(settings.backoff_min, settings.backoff_max),
                ))
            })
            .collect();
        Ok(MetaSource {
            server: config.server.clone(),
            store,
            tasks,
        })
    }

    /// The API server's URL, as configured.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A lookup for the thread that evaluates events.
    pub fn lookup(&self) -> PodMetaLookup {
        PodMetaLookup::new(Arc::clone(&self.store))
    }

    /// Every kind has been listed at least once since the start.
    pub fn synced(&self) -> bool {
        self.store.synced()
    }

    /// The reflectors' counters and last error, the objects kept per kind, and whether the
    /// API server answers.
    pub fn stats(&self) -> StatsSnapshot {
        self.store.snapshot()
    }
}

impl Drop for MetaSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every module opens with a `//!` doc comment.
    #[test]
    fn every_module_is_documented() {
        let checked = palisade_testdata::assert_every_module_documented(env!("CARGO_MANIFEST_DIR"));
        assert!(checked > 1, "only {checked} source files found");
    }
}
