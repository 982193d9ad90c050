//! The agent link's wire format: joining, and batches of reports with acknowledgements.
//!
//! Delivery is at-least-once from the agent's outbox and exactly-once in the store: every
//! [`FindingReport`] carries an idempotency id that the server stores with it, so a batch
//! resent after a crash or a lost acknowledgement adds nothing twice.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Asset, FindingReport, HostFacts, Timestamp};

/// Exchanges a join token for an agent credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Agent name (the host name by default).
    pub name: String,
    /// The cluster the agent reports for.
    pub cluster: String,
    /// Facts about the host.
    pub facts: HostFacts,
}

/// The agent's credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinResponse {
    /// The agent's id.
    pub agent_id: Uuid,
    /// Bearer token for the agent's later requests (role `agent`).
    pub token: String,
}

/// Largest number of reports in one batch.
pub const MAX_BATCH_REPORTS: usize = 5_000;

/// One batch from an agent.
///
/// `R` is how a report is held: the server reads [`FindingReport`]s; an agent may send the
/// reports as the JSON its outbox already holds (`Box<serde_json::value::RawValue>`), which
/// is the same document without decoding and encoding every report again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentBatch<R = FindingReport> {
    /// The sequence number of the last outbox entry in this batch; echoed in the ack.
    pub sequence: u64,
    /// Findings observed.
    #[serde(default = "Vec::new")]
    pub reports: Vec<R>,
    /// Assets to register or refresh (the node itself, its containers, images).
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// What the agent process lost so far (the sensor's kernel events, the firewall's connect
    /// reports): counters since it started, so a batch that is lost or resent changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub losses: Option<AgentLosses>,
    /// Current host facts (heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
}

/// What one agent process lost since it started: counters that only grow while it runs and
/// start again from zero in its next process, which has a new `process` id.
///
/// The server sums them per node: a new process adds its counters to what the previous ones
/// lost; a report of the same process adds its growth; a report older than the last one
/// counted (two batches travel at once, and may be stored in either order) or of an older
/// process (a batch delayed across a restart) adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentLosses {
    /// The agent process (a new id at every start).
    pub process: Uuid,
    /// When the process started.
    pub process_started_at: Timestamp,
    /// Kernel events the sensor lost (its ring buffer was full).
    pub sensor_events: u64,
    /// Reports of the firewall's connect programs that were lost (their ring buffer or the
    /// reader's queue was full).
    pub connect_reports: u64,
}

/// The server's acknowledgement: everything up to `sequence` is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAck {
    /// The batch's sequence number.
    pub sequence: u64,
    /// Reports that created findings.
    pub created: u64,
    /// Reports aggregated into existing findings.
    pub aggregated: u64,
    /// Reports suppressed by whitelist rules.
    pub suppressed: u64,
    /// Reports already stored before (resent).
    pub duplicates: u64,
}
