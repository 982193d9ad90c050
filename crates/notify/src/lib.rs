//! Notifications for new findings: a JSON webhook, a Slack-compatible webhook and syslog
//! (RFC 5424 over UDP, or over TCP with octet-counting framing, RFC 6587).
//!
//! [`Notifier::start`] spawns one delivery task. [`Notifier::notify`] never blocks the caller
//! (the ingest path): findings below the configured severity are skipped, the rest are queued
//! in a bounded channel. Delivery retries with exponential backoff; every outcome — sent,
//! retried, failed after the last attempt, dropped because the queue was full — is counted in
//! [`NotifyStats`], which the server exports as metrics. Nothing fails silently.
//!
//! ```
//! use palisade_notify::{NotifyConfig, SinkConfig};
//! let config: NotifyConfig = serde_json::from_str(
//!     r#"{"min_severity": "high", "sinks": [{"type": "syslog", "address": "127.0.0.1:514", "transport": "udp"}]}"#,
//! ).unwrap();
//! assert!(matches!(config.sinks[0], SinkConfig::Syslog { .. }));
//! ```
#![deny(missing_docs)]

mod sink;
mod syslog;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use palisade_model::{Finding, Severity};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use syslog::format_rfc5424;

/// Which findings to send where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Only findings at or above this severity are sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Where to send them.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// Delivery attempts per finding and sink before giving up (at least 1).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds; doubled at each retry, capped at 60 s.
    #[serde(default = "default_backoff_ms")]
    pub initial_backoff_ms: u64,
}

const fn default_min_severity() -> Severity {
    Severity::High
}

const fn default_attempts() -> u32 {
    5
}

const fn default_backoff_ms() -> u64 {
    500
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            min_severity: default_min_severity(),
            sinks: Vec::new(),
            max_attempts: default_attempts(),
            initial_backoff_ms: default_backoff_ms(),
        }
    }
}

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// POST the finding as JSON.
    Webhook {
        /// The URL.
        url: String,
    },
    /// POST a Slack-compatible `{"text": ...}` message (Slack, Mattermost, Rocket.Chat).
    Slack {
        /// The incoming-webhook URL.
        url: String,
    },
    /// Send an RFC 5424 syslog message.
    Syslog {
        /// `host:port`.
        address: String,
        /// `udp` or `tcp`.
        #[serde(default)]
        transport: SyslogTransport,
        /// The syslog facility number (default 10, authpriv).
        #[serde(default = "default_facility")]
        facility: u8,
    },
}

const fn default_facility() -> u8 {
    10
}

impl SinkConfig {
    /// A short label for metrics: `webhook`, `slack` or `syslog`.
    pub fn label(&self) -> &'static str {
        match self {
            SinkConfig::Webhook { .. } => "webhook",
            SinkConfig::Slack { .. } => "slack",
            SinkConfig::Syslog { .. } => "syslog",
        }
    }
}

/// Syslog transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// One datagram per message.
    #[default]
    Udp,
    /// A TCP stream with octet-counting framing.
    Tcp,
}

/// Delivery counters, per sink in configuration order.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Per sink: (label, counters).
    pub sinks: Vec<(&'static str, SinkStats)>,
    /// Findings dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Delivered.
    pub sent: AtomicU64,
    /// Attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Given up after the last attempt.
    pub failed: AtomicU64,
}

/// Capacity of the delivery queue.
const QUEUE_CAPACITY: usize = 10_000;

/// Handle to the delivery task.
#[derive(Debug, Clone)]
pub struct Notifier {
    min_severity: Severity,
    sender: Option<mpsc::Sender<Finding>>,
    stats: Arc<NotifyStats>,
}

impl Notifier {
    /// Starts delivery for `config` on the current Tokio runtime. With no sinks, nothing is
    /// spawned and [`Notifier::notify`] does nothing.
    pub fn start(config: NotifyConfig) -> Notifier {
        let stats = Arc::new(NotifyStats {
            sinks: config
                .sinks
                .iter()
                .map(|sink| (sink.label(), SinkStats::default()))
                .collect(),
            dropped: AtomicU64::new(0),
        });
        if config.sinks.is_empty() {
            return Notifier {
                min_severity: config.min_severity,
                sender: None,
                stats,
            };
        }
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(sink::deliver_all(
            config.clone(),
            receiver,
            Arc::clone(&stats),
        ));
        Notifier {
            min_severity: config.min_severity,
            sender: Some(sender),
            stats,
        }
    }

    /// Queues `finding` if it is severe enough. Never waits: a full queue counts a drop.
    pub fn notify(&self, finding: &Finding) {
        let Some(sender) = &self.sender else { return };
        if finding.severity < self.min_severity {
            return;
        }
        if sender.try_send(finding.clone()).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether any sink is configured.
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// The delivery counters.
    pub fn stats(&self) -> &NotifyStats {
        &self.stats
    }
}

fn backoff(config: &NotifyConfig, attempt: u32) -> Duration {
    let millis = config
        .initial_backoff_ms
        .saturating_mul(1 << attempt.min(16));
    Duration::from_millis(millis.min(60_000))
}
