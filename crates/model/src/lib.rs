//! The domain model shared by every Palisade crate: assets, the four kinds of finding,
//! handling (statuses, whitelist rules, exceptions, notes), audit entries and roles.
//!
//! These types are Palisade's wire format: the agent link, the REST API and the console all
//! exchange them as JSON, so renaming a field is a compatibility break. Server-managed state
//! (ids, counts, first/last seen, status) lives on [`Finding`]; what an agent observes and
//! sends is a [`FindingReport`].
//!
//! The four views share one [`Finding`] shape with kind-specific [`Details`], so listing,
//! filtering, handling and aggregation are written once. Repeated findings aggregate by their
//! [`FindingReport::dedupe_key`], documented there.
//!
//! ```
//! use palisade_model::{AffectedAsset, Severity};
//!
//! let asset = AffectedAsset { cluster: "prod".into(), node: Some("node-1".into()), ..Default::default() };
//! // Asset ids are stable: the same identity always gives the same id.
//! assert_eq!(asset.asset_id(), asset.clone().asset_id());
//! assert!(Severity::Critical > Severity::Low);
//! ```
#![deny(missing_docs)]

mod asset;
mod audit;
mod console;
mod finding;
mod handling;
mod link;
pub mod proc_cgroup;
mod severity;
mod task;
mod timestamp;

pub use asset::{AffectedAsset, Asset, AssetKind, HostFacts};
pub use audit::{AuditEntry, Role};
pub use console::{
    FirewallAction, FirewallRule, FirewallRuleError, FixVerification,
    MAX_FIREWALL_RULE_PORT_RANGES, NewFirewallRule, PortRange, VerificationState,
};
pub use finding::{
    AlertCategory, AlertDetails, Ancestor, BaselineCategory, BaselineDetails, ConnectionDirection,
    Details, Evidence, Finding, FindingKind, FindingReport, FirewallDetails, OpenConnection,
    ProcessInfo, VulnerabilityDetails,
};
pub use handling::{
    Exception, FieldError, MatchOperator, NewException, NewWhitelistRule, Note, Status,
    WhitelistMatcher, WhitelistRule, WhitelistScope,
};
pub use link::{
    AgentBatch, AgentLosses, BatchAck, CpuEventsLost, JoinRequest, JoinResponse, MAX_BATCH_BYTES,
    MAX_BATCH_REPORTS, MAX_CPUS, SensorContextLosses,
};
pub use severity::{ParseSeverityError, Severity};
pub use task::{
    AgentTask, ClaimTasks, DEFAULT_LEASE_SECS, FixVerdict, MAX_LEASE_SECS, MAX_QUARANTINE_ENTRIES,
    MAX_SNAPSHOT_KEYS, MAX_TASK_ATTEMPTS, NewTask, PackageManager, QuarantineEntry,
    QuarantineReport, QuarantinedFile, RestoreQuarantinedSpec, ScanSnapshot, SnapshotOutcome,
    TaskAttempt, TaskResult, TaskSpec, TaskState, UnreadableTask, UpgradeSpec, UpgradeSpecError,
    VerifyFixSpec,
};
pub use timestamp::Timestamp;
