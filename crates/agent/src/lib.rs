//! The Palisade node agent: it keeps an on-disk [`Outbox`] of finding reports, enrolls with
//! the server using a join token, and ships the outbox in acknowledged batches over HTTPS
//! (HTTP/2 when the server offers it), registering its host as an asset.
//!
//! Delivery guarantee: a report pushed into the outbox is committed to disk before `push`
//! returns, and leaves the outbox only after the server acknowledged the batch that carried
//! it. Kill the agent at any point and the report is still there at restart; kill the server
//! and the agent retries with backoff. Reports carry idempotency ids, so a batch that was
//! stored but whose acknowledgement was lost is recognised as a duplicate on resend: nothing
//! is lost and nothing is stored twice.
//!
//! Runtime detection happens here too: a [`Detector`] takes events from any source (the
//! sensor, a recording, the Kubernetes audit webhook), evaluates them with the rules engine and
//! turns every match into an alert report with process, ancestry, container and raw event.
//! The sensor and scanners (other crates) produce events and reports; this crate moves them.
//! Its only dependency on the server is the wire format in `palisade_model`.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let outbox = palisade_agent::Outbox::open(dir.path()).await.unwrap();
//! assert_eq!(outbox.len().await.unwrap(), 0);
//! # });
//! ```
#![deny(missing_docs)]

mod acknowledged;
mod config;
mod containers;
mod detect;
mod firewall_watch;
mod fix;
mod host;
mod link;
mod malware_watch;
mod observe;
mod outbox;
mod outbox_writer;
mod quarantine;
mod respond;
mod run;
mod scans;
mod status;
mod tasks;

pub use config::{AgentConfig, ConfigError, SensorHoldConfig};
pub use detect::{Detector, LOST_EVENTS_RULE, alert_report};
pub use firewall_watch::{
    FirewallWatch, FirewallWatchConfig, LOST_CONNECT_REPORTS_RULE, PolicyUpdates, compose_policy,
    poll_firewall_rules,
};
pub use fix::FixConfig;
pub use host::host_facts;
pub use link::{Credential, Link, LinkError};
pub use malware_watch::{DROPPED_SCANS_RULE, MalwareWatch, MalwareWatchConfig};
pub use observe::EventObserver;
pub use outbox::{Outbox, OutboxEntries, OutboxError, OutboxIdentity, Receipt};
pub use outbox_writer::{OUTBOX_FAILED_RULE, OutboxWriteStatus, OutboxWriter};
pub use respond::{Responder, ResponseOutcome};
pub use run::{AgentStatus, RunError, run};
pub use scans::{ScanConfig, match_inventory_package};
pub use status::{LinkStatus, LinkStatusError};
