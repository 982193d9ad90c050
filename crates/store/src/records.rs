//! Records that only the store and the server exchange.

use palisade_model::{Exception, FindingKind, HostFacts, Role, Timestamp, WhitelistMatcher};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What ingest applies to incoming reports.
#[derive(Debug, Clone, Default)]
pub struct HandlingPolicy {
    /// Enabled whitelist rules with their ids (a hit increments the rule's counter).
    pub whitelist: Vec<(Uuid, WhitelistMatcher)>,
    /// Exceptions for baseline risks.
    pub exceptions: Vec<Exception>,
}

/// What ingest did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// Reports that created a new finding.
    pub created: u64,
    /// Reports aggregated into an existing finding.
    pub aggregated: u64,
    /// Reports suppressed by a whitelist rule.
    pub suppressed: u64,
    /// Reports whose id had been ingested before (resent batches).
    pub duplicates: u64,
    /// Kinds and ids of the findings created, in report order (for notifications).
    pub created_ids: Vec<(FindingKind, Uuid)>,
}

/// Which findings a handling action applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These findings.
    Ids(Vec<Uuid>),
    /// Findings "similar" to one: the same rule, optionally on the same asset.
    Similar {
        /// The rule name.
        rule: String,
        /// Only on this asset.
        asset_id: Option<Uuid>,
    },
}

/// A stored API token. The secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id (the part of the token before the secret).
    pub id: String,
    /// A name for people (`ci`, `alice`, `agent node-1`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// argon2 PHC string of the secret.
    #[serde(skip_serializing)]
    pub secret_hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// For agent tokens, the agent.
    pub agent_id: Option<Uuid>,
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Id.
    pub id: Uuid,
    /// Name (the host name by default).
    pub name: String,
    /// Cluster it reports for.
    pub cluster: String,
    /// When it joined.
    pub joined_at: Timestamp,
    /// When it last reported.
    pub last_seen: Timestamp,
    /// Host facts it reported.
    pub facts: HostFacts,
}

/// A cluster with its open findings per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// The cluster name.
    pub name: String,
    /// Open alerts.
    pub open_alerts: u64,
    /// Open vulnerabilities.
    pub open_vulnerabilities: u64,
    /// Open baseline risks.
    pub open_baseline_risks: u64,
    /// Open firewall alerts.
    pub open_firewall_alerts: u64,
}

/// Findings of one rule (vulnerability id, check id) taken together, as the console's
/// vulnerability and baseline views list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingGroup {
    /// The rule, vulnerability id or check id shared by the group.
    pub rule: String,
    /// A title of one of its findings.
    pub title: String,
    /// The highest severity in the group.
    pub severity: palisade_model::Severity,
    /// A category of one of its findings.
    pub category: String,
    /// Findings in the group.
    pub findings: u64,
    /// Findings in the group that are open.
    pub open: u64,
    /// Distinct affected assets.
    pub assets: u64,
    /// Whether a fixed version is known for at least one finding (vulnerabilities).
    pub fix_available: bool,
    /// Latest observation in the group.
    pub last_seen: Timestamp,
}

/// Which findings [`crate::Store::finding_groups`] groups when no text is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupScope {
    /// Every finding the query selects: exact, but a section of a million findings takes
    /// seconds to group.
    Every,
    /// At most the newest [`crate::SearchWindow::COUNTED_MATCHES`] findings the query selects
    /// (tens of milliseconds): a first view to show while every finding is grouped. When the
    /// bound is reached, [`crate::Page::searched`] says since when the groups count.
    Newest,
}

/// Equal time intervals for a chart: `buckets` intervals of `width_ms` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBuckets {
    /// Start of the first interval.
    pub start: Timestamp,
    /// Width of each interval in milliseconds (at least 1).
    pub width_ms: i64,
    /// Number of intervals (1..=366).
    pub buckets: u32,
}
