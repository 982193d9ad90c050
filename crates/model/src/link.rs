//! The agent link's wire format: joining, and batches of reports with acknowledgements.
//!
//! Delivery is at-least-once from the agent's outbox and exactly-once in the store: every
//! [`FindingReport`] carries an idempotency id that the server stores with it, so a batch
//! resent after a crash or a lost acknowledgement adds nothing twice.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Asset, FindingReport, HostFacts};

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
    /// Kernel events lost since the previous batch.
    #[serde(default)]
    pub dropped_events: u64,
    /// Current host facts (heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
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
