//! Agent tasks: work the server asks one agent to do (run the host checks, rescan, verify a
//! vulnerability fix, upgrade a package), what the agent reports back, and the scan snapshot
//! with which an agent tells the server which findings of an asset are still present.
//!
//! Tasks flow server → agent over `GET /api/v1/agents/tasks` (the agent's own pending tasks)
//! and results agent → server over `POST /api/v1/agents/tasks/{id}/result`. The kind of work
//! is a tagged enum, [`TaskSpec`]; an agent older than a kind parses the task with
//! [`AgentTask::from_wire`], which keeps the id so that the agent can fail the task with a
//! message naming the kind instead of ignoring it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AffectedAsset, FindingKind, Timestamp};

/// What a task asks the agent to do, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskSpec {
    /// Run the host baseline checks now and report the failures as baseline risks.
    RunHostChecks,
    /// Inventory the host and the images of running containers now and report
    /// vulnerabilities.
    RescanVulnerabilities,
    /// Rescan one asset and say whether one vulnerability is still there.
    VerifyFix(Box<VerifyFixSpec>),
    /// Upgrade one distribution package with the distribution's package manager; the agent
    /// refuses unless its configuration enables fixes.
    UpgradePackage(UpgradeSpec),
    /// Put a file the agent quarantined back where it was.
    RestoreQuarantined(RestoreQuarantinedSpec),
}

impl TaskSpec {
    /// The `kind` tag, as stored and shown.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TaskSpec::RunHostChecks => "run_host_checks",
            TaskSpec::RescanVulnerabilities => "rescan_vulnerabilities",
            TaskSpec::VerifyFix(_) => "verify_fix",
            TaskSpec::UpgradePackage(_) => "upgrade_package",
            TaskSpec::RestoreQuarantined(_) => "restore_quarantined",
        }
    }
}

/// The vulnerability a fix verification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyFixSpec {
    /// The fix verification record this task completes.
    pub verification_id: Uuid,
    /// The vulnerability finding.
    pub finding_id: Uuid,
    /// The asset to rescan (the node itself, or an image by digest).
    pub asset: AffectedAsset,
    /// The vulnerability id (the finding's rule).
    pub vulnerability: String,
    /// The package.
    pub package: String,
    /// Its ecosystem (`Debian:12`, `PyPI`, ...).
    pub ecosystem: String,
    /// The version the finding was raised for.
    pub installed_version: String,
}

/// A package upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpgradeSpec {
    /// The vulnerability finding the upgrade fixes, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<Uuid>,
    /// The ecosystem, which picks the package manager (`Debian:*`/`Ubuntu:*`: apt-get,
    /// `Alpine:*`: apk).
    pub ecosystem: String,
    /// The binary package name.
    pub package: String,
    /// The version to install.
    pub version: String,
}

/// Which quarantined file to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RestoreQuarantinedSpec {
    /// The quarantine entry's id, as the agent reported it.
    pub entry_id: Uuid,
    /// The path it is restored to (for people reading the task; the agent restores to the
    /// path its own record holds).
    pub original_path: String,
}

/// One file in an agent's quarantine, as the agent reports it
/// (`POST /api/v1/agents/quarantine`) and the server lists it (`GET /api/v1/quarantine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineEntry {
    /// The entry's id (the agent's quarantine record).
    pub id: Uuid,
    /// The absolute path the file had, on the host or in its container.
    pub original_path: String,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The YARA rule or hash IoC that condemned it.
    pub rule: String,
    /// When it was quarantined.
    pub quarantined_at: Timestamp,
    /// The container the file was in; `None` for a host file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// Most entries one agent's quarantine report may list.
pub const MAX_QUARANTINE_ENTRIES: usize = 10_000;

/// An agent's whole quarantine: the server replaces what it kept for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuarantineReport {
    /// Every entry, at most [`MAX_QUARANTINE_ENTRIES`].
    pub entries: Vec<QuarantineEntry>,
}

/// A quarantined file as the API lists it: the entry and the agent (node) that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantinedFile {
    /// The entry.
    #[serde(flatten)]
    pub entry: QuarantineEntry,
    /// The agent that holds the file.
    pub agent_id: Uuid,
    /// The agent's (node's) name.
    pub node: String,
    /// The agent's cluster.
    pub cluster: String,
    /// When the agent last reported its quarantine.
    pub reported_at: Timestamp,
}

/// The package managers an [`UpgradeSpec`] can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// Debian and Ubuntu: `apt-get install --only-upgrade PKG=VERSION`.
    Apt,
    /// Alpine: `apk add PKG=VERSION`.
    Apk,
}

/// Why an [`UpgradeSpec`] cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeSpecError {
    /// Only distribution packages are upgraded in place.
    #[error(
        "cannot upgrade packages of ecosystem {0:?}: only Debian, Ubuntu and Alpine packages are upgraded in place"
    )]
    Ecosystem(String),
    /// The name is not a distribution package name.
    #[error(
        "{0:?} is not a valid package name (lowercase letters, digits and + . _ -, starting with a letter or digit, at most 128 characters)"
    )]
    Name(String),
    /// The version is not a distribution package version.
    #[error(
        "{0:?} is not a valid package version (letters, digits and . + ~ : _ -, starting with a digit, at most 128 characters)"
    )]
    Version(String),
}

impl UpgradeSpec {
    /// Checks the name and version against the distributions' grammars (a subset of Debian
    /// policy 5.6.1/5.6.12 and Alpine's apk names) and picks the package manager. Whatever
    /// passes is safe as one argument of the package manager: no whitespace, no leading `-`,
    /// no shell characters.
    pub fn validate(&self) -> Result<PackageManager, UpgradeSpecError> {
        let base = self.ecosystem.split(':').next().unwrap_or_default();
        let manager = match base {
            "Debian" | "Ubuntu" => PackageManager::Apt,
            "Alpine" => PackageManager::Apk,
            _ => return Err(UpgradeSpecError::Ecosystem(self.ecosystem.clone())),
        };
        let allowed = |text: &str, extra: &str| {
            (1..=128).contains(&text.len())
                && text
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
        };
        let name_ok = self
            .package
            .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && allowed(&self.package, "+._-");
        if !name_ok {
            return Err(UpgradeSpecError::Name(self.package.clone()));
        }
        let version_ok = self.version.starts_with(|c: char| c.is_ascii_digit())
            && allowed(&self.version, ".+~:_-ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if !version_ok {
            return Err(UpgradeSpecError::Version(self.version.clone()));
        }
        Ok(manager)
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for the agent to fetch it.
    Pending,
    /// Fetched by the agent; no result yet.
    Running,
    /// The agent reported success.
    Done,
    /// The agent reported failure, or the task timed out.
    Failed,
}

impl TaskState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }

    /// The inverse of [`TaskState::as_str`].
    pub fn from_name(name: &str) -> Option<TaskState> {
        [
            TaskState::Pending,
            TaskState::Running,
            TaskState::Done,
            TaskState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }

    /// Done or failed: no further change.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Failed)
    }
}

/// What the agent found when it rescanned for a fix verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FixVerdict {
    /// True when the package is gone or every installed version is past the fix.
    pub fixed: bool,
    /// The versions of the package installed now (empty when it is gone).
    #[serde(default)]
    pub installed_versions: Vec<String>,
    /// Why, in one sentence.
    pub reason: String,
}

/// An agent's report on one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskResult {
    /// Whether the task did what it asked.
    pub succeeded: bool,
    /// What happened, for people.
    pub message: String,
    /// The rescan's verdict, for `verify_fix` tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<FixVerdict>,
}

impl TaskResult {
    /// A failure with `message`.
    pub fn failed(message: impl Into<String>) -> TaskResult {
        TaskResult {
            succeeded: false,
            message: message.into(),
            verdict: None,
        }
    }
}

/// A task for one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentTask {
    /// Id.
    pub id: Uuid,
    /// The agent that runs it.
    pub agent_id: Uuid,
    /// What to do.
    pub spec: TaskSpec,
    /// Where it stands.
    pub state: TaskState,
    /// Who asked (token name).
    pub requested_by: String,
    /// When.
    pub requested_at: Timestamp,
    /// After this time an unfinished task fails as timed out.
    pub deadline: Timestamp,
    /// When the agent fetched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// The result, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TaskResult>,
    /// The current attempt (0 before the first claim); the agent posts its result and its
    /// heartbeats with it, and those of an older attempt are refused.
    #[serde(default)]
    pub attempt: u32,
    /// Until when the current attempt's claim holds without a heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    /// Every attempt so far (filled when one task is read, `GET /api/v1/tasks/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<TaskAttempt>,
}

/// A task this agent cannot read (an unknown kind from a newer server, or a malformed one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {}: this agent cannot run it ({reason}); upgrade the agent to run it", id.map_or_else(|| "without an id".to_owned(), |id| id.to_string()))]
pub struct UnreadableTask {
    /// The task's id, when it has a readable one (the agent then fails it on the server).
    pub id: Option<Uuid>,
    /// The parser's complaint (for an unknown kind: "unknown variant `x`, expected one of
    /// ...").
    pub reason: String,
}

impl AgentTask {
    /// Reads one task from the JSON the server sent, keeping the id of a task whose kind this
    /// build does not know.
    pub fn from_wire(value: serde_json::Value) -> Result<AgentTask, UnreadableTask> {
        let id = value
            .get("id")
            .and_then(serde_json::Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok());
        serde_json::from_value(value).map_err(|error| UnreadableTask {
            id,
            reason: error.to_string(),
        })
    }
}

/// Creates a task (`POST /api/v1/agents/{id}/tasks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// What to do.
    pub spec: TaskSpec,
    /// Seconds until an unfinished task fails as timed out (default 900, at most 86,400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// An agent asks for its pending tasks (`POST /api/v1/agents/tasks/claim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimTasks {
    /// Seconds to wait for a task when none is pending (0 answers at once).
    #[serde(default)]
    pub wait_secs: u64,
    /// The claiming agent process: a random id each process picks at start. Tasks another
    /// process of the same agent claimed are handed out again (that process is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Uuid>,
    /// How long a claim holds without a heartbeat, in seconds, at most [`MAX_LEASE_SECS`];
    /// none takes the server's lease (`--task-lease-secs`, [`DEFAULT_LEASE_SECS`] unless set),
    /// which is what agents do now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
}

/// A claim's lease when neither the agent nor the server's setting names one, in seconds.
pub const DEFAULT_LEASE_SECS: u64 = 60;
/// The longest lease an agent may ask for, in seconds.
pub const MAX_LEASE_SECS: u64 = 3_600;
/// How many times one task is handed out before it fails.
pub const MAX_TASK_ATTEMPTS: u32 = 3;

/// One claim of a task by an agent process, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskAttempt {
    /// 1 for the first claim.
    pub attempt: u32,
    /// The agent process that claimed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Uuid>,
    /// When it was claimed.
    pub claimed_at: Timestamp,
    /// When it ended (a result, a lost lease, the agent restarting); `None` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// Most finding keys one scan snapshot may list.
pub const MAX_SNAPSHOT_KEYS: usize = 100_000;

/// "After a complete scan, these are all the findings of `kind` on `asset`": the server
/// resolves the asset's open findings of that kind whose key is not listed.
///
/// The snapshot lists [`crate::FindingReport::dedupe_key`]s, not reports: the reports travel
/// through the outbox, and whether they arrive before or after the snapshot does not matter,
/// since a finding that is listed is never resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScanSnapshot {
    /// The asset that was scanned completely.
    pub asset: AffectedAsset,
    /// The kind of finding the scan produces (vulnerability or baseline risk).
    pub kind: FindingKind,
    /// The dedupe keys of every finding the scan found.
    pub present: Vec<String>,
    /// When the scan ran.
    pub scanned_at: Timestamp,
}

/// The server's answer to a [`ScanSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotOutcome {
    /// Findings resolved because the scan no longer found them.
    pub resolved: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kind_keeps_the_id_and_names_the_kind() {
        let id = Uuid::now_v7();
        let wire = serde_json::json!({
            "id": id, "agent_id": Uuid::nil(), "spec": { "kind": "restore_quarantine", "entry": "x" },
            "state": "running", "requested_by": "admin", "requested_at": "2026-01-01T00:00:00Z",
            "deadline": "2026-01-01T00:15:00Z",
        });
        let error = AgentTask::from_wire(wire).unwrap_err();
        assert_eq!(error.id, Some(id));
        let message = error.to_string();
        assert!(
            message.contains("unknown variant `restore_quarantine`"),
            "{message}"
        );
        assert!(message.contains("upgrade the agent"), "{message}");
    }

    #[test]
    fn upgrade_specs_are_validated() {
        let spec = |ecosystem: &str, package: &str, version: &str| UpgradeSpec {
            finding_id: None,
            ecosystem: ecosystem.into(),
            package: package.into(),
            version: version.into(),
        };
        assert_eq!(
            spec("Debian:12", "libssl3", "3.0.15-1~deb12u1").validate(),
            Ok(PackageManager::Apt)
        );
        assert_eq!(
            spec("Alpine:v3.19", "busybox", "1.36.1-r16").validate(),
            Ok(PackageManager::Apk)
        );
        assert_eq!(
            spec("Debian:12", "g++-12", "1:12.2.0-14").validate(),
            Ok(PackageManager::Apt)
        );
        for (package, version) in [
            ("-o", "1"),
            ("a b", "1"),
            ("x;rm", "1"),
            ("Openssl", "1"),
            ("", "1"),
            ("ok", "--force"),
            ("ok", "1 2"),
            ("ok", "1$(id)"),
            ("ok", ""),
        ] {
            assert!(
                spec("Debian:12", package, version).validate().is_err(),
                "{package} {version}"
            );
        }
        assert!(matches!(
            spec("PyPI", "requests", "2.0").validate(),
            Err(UpgradeSpecError::Ecosystem(_))
        ));
    }

    #[test]
    fn tasks_round_trip() {
        let task = AgentTask {
            id: Uuid::now_v7(),
            agent_id: Uuid::now_v7(),
            spec: TaskSpec::UpgradePackage(UpgradeSpec {
                finding_id: None,
                ecosystem: "Debian:12".into(),
                package: "openssl".into(),
                version: "3.0.15-1~deb12u1".into(),
            }),
            state: TaskState::Pending,
            requested_by: "admin".into(),
            requested_at: Timestamp(1),
            deadline: Timestamp(2),
            started_at: None,
            finished_at: None,
            attempt: 0,
            lease_until: None,
            attempts: Vec::new(),
            result: None,
        };
        let wire = serde_json::to_value(&task).unwrap();
        assert_eq!(wire["spec"]["kind"], "upgrade_package");
        assert_eq!(AgentTask::from_wire(wire).unwrap(), task);
        let unit = serde_json::to_value(TaskSpec::RunHostChecks).unwrap();
        assert_eq!(unit, serde_json::json!({ "kind": "run_host_checks" }));
        assert_eq!(TaskSpec::RunHostChecks.kind_name(), "run_host_checks");
        for state in [
            TaskState::Pending,
            TaskState::Running,
            TaskState::Done,
            TaskState::Failed,
        ] {
            assert_eq!(TaskState::from_name(state.as_str()), Some(state));
        }
    }
}
