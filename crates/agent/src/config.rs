//! The agent's configuration.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// How the agent reaches its server and where it keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Base URL of the server, e.g. `https://palisade.example:8443`.
    pub server_url: String,
    /// CA certificate (PEM) to trust for the server, in addition to none: a private CA is
    /// the norm for self-hosted servers. `None` trusts the bundled public roots.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Join token, used once to enroll; the resulting credential is kept in `data_dir`.
    #[serde(default)]
    pub join_token: Option<String>,
    /// Where the outbox and the credential live.
    pub data_dir: PathBuf,
    /// The cluster this node belongs to.
    pub cluster: String,
    /// The agent's name (the host name by default).
    pub name: String,
    /// Most reports per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Most batches sent and not yet acknowledged (the server stores one while the next
    /// travels).
    #[serde(default = "default_batches_in_flight")]
    pub batches_in_flight: usize,
    /// Heartbeat interval (host facts, dropped-event counts), in seconds.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// The runtime event source feeding this agent (`ebpf`, `fallback`, `none`), shown in the
    /// node's asset record.
    #[serde(default = "default_sensor")]
    pub sensor: String,
    /// Scheduled vulnerability scans and host checks.
    #[serde(default)]
    pub scans: crate::ScanConfig,
    /// Package upgrades on the server's request (off by default).
    #[serde(default)]
    pub fix: crate::FixConfig,
    /// Where quarantined files are kept (reported to the server, restored on its request);
    /// `quarantine` under `data_dir` when not set.
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
}

fn default_sensor() -> String {
    "none".to_owned()
}

const fn default_batch_size() -> usize {
    2_000
}

const fn default_batches_in_flight() -> usize {
    2
}

const fn default_heartbeat_secs() -> u64 {
    30
}

impl AgentConfig {
    /// A configuration with defaults for everything but the essentials.
    pub fn new(
        server_url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        cluster: impl Into<String>,
        name: impl Into<String>,
    ) -> AgentConfig {
        AgentConfig {
            server_url: server_url.into(),
            ca_cert: None,
            join_token: None,
            data_dir: data_dir.into(),
            cluster: cluster.into(),
            name: name.into(),
            batch_size: default_batch_size(),
            batches_in_flight: default_batches_in_flight(),
            heartbeat_secs: default_heartbeat_secs(),
            sensor: default_sensor(),
            scans: crate::ScanConfig::default(),
            fix: crate::FixConfig::default(),
            quarantine_dir: None,
        }
    }

    /// The quarantine directory: [`AgentConfig::quarantine_dir`] or `data_dir/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.quarantine_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("quarantine"))
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }
}
