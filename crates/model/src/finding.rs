//! The four kinds of finding, what agents report, and how repeats aggregate.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{AffectedAsset, Severity, Status, Timestamp};

mod report_serde;

/// The four views of a cluster's security page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A runtime threat alert.
    Alert,
    /// A vulnerable package in a node, image or container.
    Vulnerability,
    /// An insecure configuration.
    BaselineRisk,
    /// A connection flagged or blocked by the container firewall.
    FirewallAlert,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: [FindingKind; 4] = [
        FindingKind::Alert,
        FindingKind::Vulnerability,
        FindingKind::BaselineRisk,
        FindingKind::FirewallAlert,
    ];

    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Alert => "alert",
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::BaselineRisk => "baseline_risk",
            FindingKind::FirewallAlert => "firewall_alert",
        }
    }

    /// The inverse of [`FindingKind::as_str`].
    pub fn from_name(name: &str) -> Option<FindingKind> {
        FindingKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The path segment of this kind's collection under `/api/v1`.
    pub fn api_collection(self) -> &'static str {
        match self {
            FindingKind::Alert => "alerts",
            FindingKind::Vulnerability => "vulnerabilities",
            FindingKind::BaselineRisk => "baseline-risks",
            FindingKind::FirewallAlert => "firewall-alerts",
        }
    }

    /// How long an open finding keeps absorbing repeats of itself, in milliseconds;
    /// `None` means for as long as it stays open.
    ///
    /// Runtime alerts aggregate within an hour so that a burst collapses into one row while a
    /// recurrence tomorrow is a new row worth a look. Firewall alerts carry the day in their
    /// key instead. Vulnerabilities and baseline risks describe a state, not an event: the
    /// same state seen again is the same finding.
    pub fn aggregation_window_ms(self) -> Option<i64> {
        match self {
            FindingKind::Alert => Some(3_600_000),
            FindingKind::Vulnerability | FindingKind::BaselineRisk | FindingKind::FirewallAlert => {
                None
            }
        }
    }
}

/// Runtime alert categories (PRODUCT.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AlertCategory {
    /// A container from a blocklisted or malicious image, or drift from the image.
    MaliciousImage,
    /// Virus or malware found in a file.
    Malware,
    /// Container intrusion: shells, reverse shells, droppers, sensitive reads.
    Intrusion,
    /// Container escape attempts.
    Escape,
    /// High-risk operations: exec into pods, RBAC changes, log clearing, ...
    HighRiskOperation,
    /// The monitoring itself lost data (dropped kernel events, ...).
    SensorHealth,
}

impl AlertCategory {
    /// Every category, in the order of PRODUCT.md §1.
    pub const ALL: [AlertCategory; 6] = [
        AlertCategory::MaliciousImage,
        AlertCategory::Malware,
        AlertCategory::Intrusion,
        AlertCategory::Escape,
        AlertCategory::HighRiskOperation,
        AlertCategory::SensorHealth,
    ];
}

/// Baseline risk categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BaselineCategory {
    /// Host operating system hardening.
    Os,
    /// Databases.
    Database,
    /// Middleware and other software.
    Software,
    /// Container runtime configuration.
    Container,
    /// Kubernetes workloads.
    Workload,
}

impl BaselineCategory {
    /// Every category.
    pub const ALL: [BaselineCategory; 5] = [
        BaselineCategory::Os,
        BaselineCategory::Database,
        BaselineCategory::Software,
        BaselineCategory::Container,
        BaselineCategory::Workload,
    ];
}

/// A process as shown on an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProcessInfo {
    /// Process id (in the host's pid namespace).
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Executable path.
    pub exe: String,
    /// Command line, arguments joined by spaces.
    pub cmdline: String,
    /// User name (or numeric uid when unknown).
    pub user: String,
}

/// One ancestor of the process that raised an alert, nearest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ancestor {
    /// Process id.
    pub pid: u32,
    /// Executable path.
    pub exe: String,
    /// Arguments.
    pub args: Vec<String>,
    /// User name or uid.
    pub user: String,
    /// Process start time.
    pub start_time: Timestamp,
    /// Container id, when the ancestor ran in a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// Details of a runtime alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertDetails {
    /// Category, when the rule declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<AlertCategory>,
    /// MITRE ATT&CK technique id (`T1059.004`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitre: Option<String>,
    /// The rule's description.
    #[serde(default)]
    pub description: String,
    /// The rendered output line.
    #[serde(default)]
    pub output: String,
    /// The process that triggered the rule.
    #[serde(default)]
    pub process: ProcessInfo,
    /// The process ancestry, nearest first.
    #[serde(default)]
    pub ancestry: Vec<Ancestor>,
    /// What an operator should do about it.
    #[serde(default)]
    pub suggested_response: String,
    /// The raw event as captured.
    #[serde(default)]
    pub raw_event: serde_json::Value,
}

/// Details of a vulnerability finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VulnerabilityDetails {
    /// Every id of the vulnerability (CVE, GHSA, DSA, ...).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Package name.
    pub package: String,
    /// Ecosystem (`Debian:12`, `PyPI`, ...).
    pub ecosystem: String,
    /// Installed version.
    pub installed_version: String,
    /// Versions that fix it.
    #[serde(default)]
    pub fixed_versions: Vec<String>,
    /// The distro source package the advisory names, when the package was matched by its
    /// source package and that is not [`VulnerabilityDetails::package`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_package: Option<String>,
    /// The installed source version the advisory was compared with, when it is not
    /// [`VulnerabilityDetails::installed_version`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The advisory's fixed versions of the source package, lowest first, for a package
    /// compared by its source version ([`VulnerabilityDetails::fixed_versions`] are then the
    /// binary versions they give).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_fixed_versions: Vec<String>,
    /// CVSS base score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    /// CVSS vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_vector: Option<String>,
    /// Package URL.
    #[serde(default)]
    pub purl: String,
    /// Where the package was found (layer and path).
    #[serde(default)]
    pub location: String,
    /// The exact upgrade that fixes it.
    #[serde(default)]
    pub fix: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// Evidence for a baseline risk: the offending field and value and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Field path or setting name.
    pub path: String,
    /// The offending value.
    pub value: String,
    /// The file it came from.
    #[serde(default)]
    pub file: String,
    /// The line in that file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// Details of a baseline risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BaselineDetails {
    /// Category.
    pub category: BaselineCategory,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Remediation.
    #[serde(default)]
    pub remediation: String,
    /// Evidence.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

/// Details of a firewall alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FirewallDetails {
    /// Source workload or address.
    pub source: String,
    /// Destination workload or address.
    pub destination: String,
    /// The network object the destination belongs to.
    #[serde(default)]
    pub destination_object: String,
    /// Destination port.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// `alert` or `block`.
    pub mode: String,
    /// The firewall rule that decided, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The decision trace.
    #[serde(default)]
    pub trace: Vec<String>,
    /// How many connection attempts this report stands for: an agent reports the identical
    /// attempts it counted over one interval as one report, and the finding's count grows by
    /// this number. From 1 (the default: one report, one attempt) to
    /// [`FirewallDetails::MAX_ATTEMPTS`]; anything else is refused, not clamped, since a
    /// report claiming no attempt or billions at once is not one an agent makes.
    #[serde(
        default = "FirewallDetails::one_attempt",
        deserialize_with = "FirewallDetails::attempts_in_range"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 4294967295.0, default = 1)
    )]
    pub attempts: u32,
    /// Set on the report of a connection that was already open when the rules that refuse it
    /// reached the agent (the rule-change listing), absent on the reports of attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_connection: Option<OpenConnection>,
}

/// A connection that was open when the rules that refuse it reached the agent: listed after
/// each rule change, closed in block mode and left open in alert mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenConnection {
    /// Whether the workload opened it (`outbound`) or accepted it (`inbound`).
    pub direction: ConnectionDirection,
    /// The workload's end, `address:port`.
    pub local: String,
    /// The peer's end, `address:port`.
    pub peer: String,
    /// Whether the agent closed it (block mode); false when it was left open (alert mode, or
    /// the kernel could not close it).
    pub closed: bool,
}

/// Which end of a connection opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionDirection {
    /// The workload connected to the peer.
    Outbound,
    /// The peer connected to the workload.
    Inbound,
}

impl ConnectionDirection {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionDirection::Outbound => "outbound",
            ConnectionDirection::Inbound => "inbound",
        }
    }
}

/// How an older agent's alert name of an open connection it closed ends: such a report has
/// no [`FirewallDetails::open_connection`] (see [`FindingReport::dedupe_key`]).
const LEGACY_CLOSED_LISTING_SUFFIX: &str = ": open connection closed";

impl FirewallDetails {
    /// The most attempts one report may stand for; an agent splits a larger count.
    pub const MAX_ATTEMPTS: u32 = u32::MAX;

    /// The alert name of a connection that was open when firewall rule `rule` arrived and
    /// that the rule refuses, closed or left open ([`FirewallDetails::open_connection`]).
    pub fn open_connection_alert_name(rule: &str, closed: bool) -> String {
        if closed {
            format!("{rule}: open connection closed")
        } else {
            format!("{rule}: open connection left open")
        }
    }

    fn one_attempt() -> u32 {
        1
    }

    /// `attempts` as a number from 1 to [`FirewallDetails::MAX_ATTEMPTS`], with an error
    /// naming the field and the range otherwise.
    fn attempts_in_range<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u32, D::Error> {
        let attempts = u64::deserialize(deserializer)?;
        u32::try_from(attempts)
            .ok()
            .filter(|attempts| *attempts >= 1)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "firewall alert attempts must be from 1 to {}, not {attempts}",
                    FirewallDetails::MAX_ATTEMPTS
                ))
            })
    }
}

impl Default for FirewallDetails {
    /// Empty details of one attempt.
    fn default() -> FirewallDetails {
        FirewallDetails {
            source: String::new(),
            destination: String::new(),
            destination_object: String::new(),
            port: 0,
            protocol: String::new(),
            mode: String::new(),
            rule_id: None,
            trace: Vec::new(),
            attempts: 1,
            open_connection: None,
        }
    }
}

/// Kind-specific details; the variant determines the finding's kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "details", rename_all = "snake_case")]
pub enum Details {
    /// A runtime alert.
    Alert(AlertDetails),
    /// A vulnerability.
    Vulnerability(VulnerabilityDetails),
    /// A baseline risk.
    BaselineRisk(BaselineDetails),
    /// A firewall alert.
    FirewallAlert(FirewallDetails),
}

impl Details {
    /// The kind of finding these details belong to.
    pub fn kind(&self) -> FindingKind {
        match self {
            Details::Alert(_) => FindingKind::Alert,
            Details::Vulnerability(_) => FindingKind::Vulnerability,
            Details::BaselineRisk(_) => FindingKind::BaselineRisk,
            Details::FirewallAlert(_) => FindingKind::FirewallAlert,
        }
    }

    /// The category shown in the console's category filter.
    pub fn category(&self) -> String {
        let name = match self {
            Details::Alert(alert) => alert.category.map(|c| serde_name(&c)),
            Details::Vulnerability(vulnerability) => Some(vulnerability.ecosystem.clone()),
            Details::BaselineRisk(risk) => Some(serde_name(&risk.category)),
            Details::FirewallAlert(firewall) => Some(firewall.mode.clone()),
        };
        name.unwrap_or_default()
    }

    /// Whether a fixed version is known: a vulnerability that lists one.
    pub fn fix_known(&self) -> bool {
        matches!(self, Details::Vulnerability(vulnerability) if !vulnerability.fixed_versions.is_empty())
    }

    /// The package a vulnerability is about; empty for the other kinds.
    pub fn package(&self) -> &str {
        match self {
            Details::Vulnerability(vulnerability) => &vulnerability.package,
            _ => "",
        }
    }
}

fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// What an agent reports: one observation of a finding.
///
/// Its JSON is one flat object: the fields below plus `kind` and `details` (see [`Details`]).
/// Deserialisation is written by hand (module `report_serde`): serde's derived `flatten` buffers every
/// field of every report before reading it, which cost more than the rest of ingest's decoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FindingReport {
    /// Idempotency id chosen by the reporter: the server stores each id at most once, so a
    /// batch can be resent after a crash without duplicating anything. Reporters use
    /// time-ordered ids (`Uuid::now_v7()`), which the server's id index appends cheaply.
    pub id: Uuid,
    /// When it was observed.
    pub observed_at: Timestamp,
    /// Severity.
    pub severity: Severity,
    /// Rule name, vulnerability id, check id or firewall rule name.
    pub rule: String,
    /// One-line title.
    pub title: String,
    /// The affected asset.
    pub asset: AffectedAsset,
    /// Kind-specific details.
    #[serde(flatten)]
    pub details: Details,
    /// True for the labelled demo data set.
    #[serde(default)]
    pub demo: bool,
}

impl FindingReport {
    /// The aggregation key: reports with the same key (and kind) update one finding.
    ///
    /// - alert: cluster + rule + asset id + process executable + command line;
    /// - vulnerability: cluster + asset id + vulnerability id + package + installed version + location;
    /// - baseline risk: cluster + asset id + check id + the evidence paths;
    /// - firewall alert: cluster + source + destination + port + protocol + UTC day, whatever
    ///   rule decided (the "per (source, destination, port, cluster, day)", a port
    ///   being a Kubernetes port: its number and protocol); a listed open connection
    ///   ([`FirewallDetails::open_connection`]) is a finding of its own per rule, connection
    ///   (both ends) and UTC day, apart from the attempts; so is an older agent's listing
    ///   (alert name `<rule>: open connection closed`, no `open_connection`), per alert name
    ///   and UTC day.
    ///
    /// The key is the first 128 bits of a SHA-256 digest, in hex, so that it has a fixed size
    /// in the index.
    pub fn dedupe_key(&self) -> String {
        self.dedupe_key_of_asset(self.asset.asset_id())
    }

    /// How many occurrences of its finding this report stands for: a firewall alert's
    /// attempts, one for every other report. Ingest adds it to the finding's count.
    pub fn occurrences(&self) -> u64 {
        match &self.details {
            Details::FirewallAlert(firewall) => u64::from(firewall.attempts),
            _ => 1,
        }
    }

    /// [`FindingReport::dedupe_key`] when the caller already has `self.asset.asset_id()`.
    pub fn dedupe_key_of_asset(&self, asset_id: Uuid) -> String {
        let mut parts: Vec<Cow<'_, str>> = vec![
            self.details.kind().as_str().into(),
            self.asset.cluster.as_str().into(),
        ];
        // Every kind but the firewall's keys by its rule; a firewall alert's attempts are
        // one finding per flow and day whichever rule refused or alerted them (the finding
        // shows the latest decision).
        if !matches!(self.details, Details::FirewallAlert(_)) {
            parts.push(self.rule.as_str().into());
        }
        match &self.details {
            Details::Alert(alert) => {
                parts.push(asset_id.to_string().into());
                parts.push(alert.process.exe.as_str().into());
                parts.push(alert.process.cmdline.as_str().into());
            }
            Details::Vulnerability(vulnerability) => {
                parts.push(asset_id.to_string().into());
                parts.push(vulnerability.package.as_str().into());
                parts.push(vulnerability.installed_version.as_str().into());
                parts.push(vulnerability.location.as_str().into());
            }
            Details::BaselineRisk(risk) => {
                parts.push(asset_id.to_string().into());
                parts.extend(
                    risk.evidence
                        .iter()
                        .map(|evidence| Cow::from(evidence.path.as_str())),
                );
            }
            Details::FirewallAlert(firewall) => {
                parts.push(firewall.source.as_str().into());
                parts.push(firewall.destination.as_str().into());
                parts.push(firewall.port.to_string().into());
                parts.push(firewall.protocol.as_str().into());
                parts.push(self.observed_at.day().to_string().into());
                if firewall.open_connection.is_none()
                    && self.rule.ends_with(LEGACY_CLOSED_LISTING_SUFFIX)
                {
                    // An older block-mode agent's listing of a connection it closed, from
                    // before `open_connection` (a rolling upgrade): a finding of its own per
                    // alert name, never attempts of the flow.
                    parts.push("open connection".into());
                    parts.push(self.rule.as_str().into());
                }
                if let Some(open) = &firewall.open_connection {
                    // The listing is per rule and per connection, apart from the attempts; a
                    // connection listed by both its pods is one (client end, server end).
                    let (client, server) = match open.direction {
                        ConnectionDirection::Outbound => (&open.local, &open.peer),
                        ConnectionDirection::Inbound => (&open.peer, &open.local),
                    };
                    parts.push("open connection".into());
                    parts.push(firewall.rule_id.as_deref().unwrap_or_default().into());
                    parts.push(client.as_str().into());
                    parts.push(server.as_str().into());
                }
            }
        }
        let mut hasher = Sha256::new();
        for part in &parts {
            // Length-prefix each part so that ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        // 128 bits keep collisions out of reach (2^-64 at four billion findings) at half the
        // index size of the full digest.
        hex::encode(&hasher.finalize()[..16])
    }
}

/// A stored finding: the latest report plus server-managed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// Stable id.
    pub id: Uuid,
    /// Severity.
    pub severity: Severity,
    /// Handling status.
    pub status: Status,
    /// Rule name, vulnerability id, check id or firewall rule name.
    pub rule: String,
    /// One-line title.
    pub title: String,
    /// The affected asset.
    pub asset: AffectedAsset,
    /// Id of the affected asset (see [`AffectedAsset::asset_id`]).
    pub asset_id: Uuid,
    /// First observation.
    pub first_seen: Timestamp,
    /// Latest observation.
    pub last_seen: Timestamp,
    /// Number of observations aggregated here (for firewall alerts: attempts).
    pub count: u64,
    /// True for the labelled demo data set.
    pub demo: bool,
    /// Kind-specific details.
    #[serde(flatten)]
    pub details: Details,
}

impl Finding {
    /// The kind of this finding.
    pub fn kind(&self) -> FindingKind {
        self.details.kind()
    }

    /// A field by name, for whitelist rules. The names are listed in
    /// [`Finding::FIELD_NAMES`]; `None` when the finding has no value for it.
    pub fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let asset = &self.asset;
        fn borrowed(value: &Option<String>) -> Option<Cow<'_, str>> {
            value.as_deref().map(Cow::from)
        }
        match name {
            "rule" => Some(self.rule.as_str().into()),
            "title" => Some(self.title.as_str().into()),
            "severity" => Some(self.severity.as_str().into()),
            "category" => Some(self.details.category().into()),
            "asset.cluster" => Some(asset.cluster.as_str().into()),
            "asset.node" => borrowed(&asset.node),
            "asset.namespace" => borrowed(&asset.namespace),
            "asset.workload" => borrowed(&asset.workload),
            "asset.pod" => borrowed(&asset.pod),
            "asset.container_name" => borrowed(&asset.container_name),
            "asset.container_id" => borrowed(&asset.container_id),
            "asset.image" => borrowed(&asset.image),
            "asset.image_digest" => borrowed(&asset.image_digest),
            _ => self.detail_field(name),
        }
    }

    fn detail_field(&self, name: &str) -> Option<Cow<'_, str>> {
        match (&self.details, name) {
            (Details::Alert(alert), "process.exe") => Some(alert.process.exe.as_str().into()),
            (Details::Alert(alert), "process.cmdline") => {
                Some(alert.process.cmdline.as_str().into())
            }
            (Details::Alert(alert), "process.user") => Some(alert.process.user.as_str().into()),
            (Details::Alert(alert), "process.parent_exe") => alert
                .ancestry
                .first()
                .map(|parent| parent.exe.as_str().into()),
            (Details::Alert(alert), "output") => Some(alert.output.as_str().into()),
            (Details::Vulnerability(vulnerability), "package") => {
                Some(vulnerability.package.as_str().into())
            }
            (Details::Vulnerability(vulnerability), "ecosystem") => {
                Some(vulnerability.ecosystem.as_str().into())
            }
            (Details::FirewallAlert(firewall), "source") => Some(firewall.source.as_str().into()),
            (Details::FirewallAlert(firewall), "destination") => {
                Some(firewall.destination.as_str().into())
            }
            (Details::FirewallAlert(firewall), "port") => Some(firewall.port.to_string().into()),
            _ => None,
        }
    }

    /// Field names accepted by [`Finding::field`].
    pub const FIELD_NAMES: &'static [&'static str] = &[
        "rule",
        "title",
        "severity",
        "category",
        "asset.cluster",
        "asset.node",
        "asset.namespace",
        "asset.workload",
        "asset.pod",
        "asset.container_name",
        "asset.container_id",
        "asset.image",
        "asset.image_digest",
        "process.exe",
        "process.cmdline",
        "process.user",
        "process.parent_exe",
        "output",
        "package",
        "ecosystem",
        "source",
        "destination",
        "port",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(exe: &str) -> FindingReport {
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(1_000),
            severity: Severity::High,
            rule: "Terminal shell in container".into(),
            title: "shell".into(),
            asset: AffectedAsset {
                cluster: "c".into(),
                pod: Some("p".into()),
                ..Default::default()
            },
            details: Details::Alert(AlertDetails {
                process: ProcessInfo {
                    exe: exe.into(),
                    cmdline: "sh -i".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            demo: false,
        }
    }

    #[test]
    fn dedupe_key_depends_on_process_but_not_on_report_id() {
        let first = alert("/bin/sh");
        let again = alert("/bin/sh");
        assert_ne!(first.id, again.id);
        assert_eq!(first.dedupe_key(), again.dedupe_key());
        assert_ne!(first.dedupe_key(), alert("/bin/bash").dedupe_key());
    }

    #[test]
    fn report_json_is_flat_with_kind_tag() {
        let report = alert("/bin/sh");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kind"], "alert");
        assert_eq!(json["details"]["process"]["exe"], "/bin/sh");
        let back: FindingReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    /// A firewall alert from a/b to c/d on TCP port 80 in `mode`, with `attempts`.
    fn firewall_alert(mode: &str, attempts: u32) -> FindingReport {
        FindingReport {
            details: Details::FirewallAlert(FirewallDetails {
                source: "a/b".into(),
                destination: "c/d".into(),
                port: 80,
                protocol: "TCP".into(),
                mode: mode.into(),
                attempts,
                ..Default::default()
            }),
            ..alert("x")
        }
    }

    #[test]
    fn firewall_key_changes_with_day() {
        let mut report = firewall_alert("alert", 1);
        let today = report.dedupe_key();
        report.observed_at = Timestamp(1_000 + 3_600_000);
        assert_eq!(report.dedupe_key(), today);
        report.observed_at = Timestamp(86_400_000 + 5);
        assert_ne!(report.dedupe_key(), today);
    }

    /// `report` decided by rule `rule` (its alert name and deciding rule).
    fn decided_by(mut report: FindingReport, rule: &str) -> FindingReport {
        report.rule = rule.into();
        if let Details::FirewallAlert(firewall) = &mut report.details {
            firewall.rule_id = Some(rule.into());
            firewall.trace = vec![format!("palisade rule {rule:?} matched")];
        }
        report
    }

    /// `report` with its firewall details changed by `change`.
    fn with_firewall(
        mut report: FindingReport,
        change: impl FnOnce(&mut FirewallDetails),
    ) -> FindingReport {
        if let Details::FirewallAlert(firewall) = &mut report.details {
            change(firewall);
        }
        report
    }

    /// The aggregation: one finding per (source, destination, port, cluster, UTC day),
    /// whichever rule refused or alerted the attempts; a port is a number and a protocol.
    #[test]
    fn firewall_attempts_aggregate_per_flow_and_day_whatever_rule_decided() {
        let by_a = decided_by(firewall_alert("block", 3), "deny-db");
        let key = by_a.dedupe_key();
        let by_b = decided_by(firewall_alert("alert", 2), "watch-db");
        assert_eq!(
            by_b.dedupe_key(),
            key,
            "another rule, the same flow and day"
        );

        let next_day = FindingReport {
            observed_at: Timestamp(86_400_000 + 1_000),
            ..by_a.clone()
        };
        assert_ne!(next_day.dedupe_key(), key, "the next UTC day");
        let other_port = with_firewall(by_a.clone(), |firewall| firewall.port = 81);
        assert_ne!(other_port.dedupe_key(), key, "another port");
        let other_protocol =
            with_firewall(by_a.clone(), |firewall| firewall.protocol = "UDP".into());
        assert_ne!(other_protocol.dedupe_key(), key, "53/UDP is not 53/TCP");
        let other_cluster = FindingReport {
            asset: AffectedAsset {
                cluster: "d".into(),
                ..by_a.asset.clone()
            },
            ..by_a.clone()
        };
        assert_ne!(other_cluster.dedupe_key(), key, "another cluster");
        let reverse = with_firewall(by_a.clone(), |firewall| {
            std::mem::swap(&mut firewall.source, &mut firewall.destination)
        });
        assert_ne!(reverse.dedupe_key(), key, "the other direction");
    }

    /// An older block-mode agent's listing of a connection it closed (alert name `<rule>: open
    /// connection closed`, no `open_connection`: a rolling upgrade) is a finding of its own
    /// per alert name, never the flow's attempts.
    #[test]
    fn an_older_agents_closed_connection_listing_is_apart_from_attempts() {
        let attempts = decided_by(firewall_alert("block", 1), "deny-db");
        let legacy = |rule: &str| {
            let mut report = decided_by(firewall_alert("block", 1), rule);
            report.rule = FirewallDetails::open_connection_alert_name(rule, true);
            report
        };
        assert_ne!(legacy("deny-db").dedupe_key(), attempts.dedupe_key());
        assert_eq!(
            legacy("deny-db").dedupe_key(),
            legacy("deny-db").dedupe_key()
        );
        assert_ne!(
            legacy("deny-db").dedupe_key(),
            legacy("other-rule").dedupe_key(),
            "listed for another rule"
        );
        assert_eq!(
            decided_by(firewall_alert("block", 1), "other-rule").dedupe_key(),
            attempts.dedupe_key(),
            "attempts stay one finding whatever rule decided"
        );
    }

    /// A listed open connection is a finding apart from the attempts of its flow, one per
    /// rule and connection (both ends) and day.
    #[test]
    fn a_listed_open_connection_is_apart_from_attempts_per_rule_and_connection() {
        let attempts = decided_by(firewall_alert("block", 1), "deny-db");
        let open = |rule: &str, local: &str| {
            with_firewall(decided_by(firewall_alert("block", 1), rule), |firewall| {
                firewall.open_connection = Some(OpenConnection {
                    direction: ConnectionDirection::Outbound,
                    local: local.into(),
                    peer: "10.0.0.2:80".into(),
                    closed: true,
                })
            })
        };
        let listed = open("deny-db", "10.0.0.1:40000");
        assert_ne!(listed.dedupe_key(), attempts.dedupe_key());
        assert_eq!(
            listed.dedupe_key(),
            open("deny-db", "10.0.0.1:40000").dedupe_key()
        );
        assert_ne!(
            listed.dedupe_key(),
            open("deny-db", "10.0.0.1:40001").dedupe_key(),
            "another connection of the flow"
        );
        assert_ne!(
            listed.dedupe_key(),
            open("other-rule", "10.0.0.1:40000").dedupe_key(),
            "listed for another rule"
        );
        let seen_by_the_server = with_firewall(listed.clone(), |firewall| {
            firewall.open_connection = Some(OpenConnection {
                direction: ConnectionDirection::Inbound,
                local: "10.0.0.2:80".into(),
                peer: "10.0.0.1:40000".into(),
                closed: true,
            })
        });
        assert_eq!(
            seen_by_the_server.dedupe_key(),
            listed.dedupe_key(),
            "the connection listed by its other end"
        );
        let json = serde_json::to_value(&listed).unwrap();
        assert_eq!(json["details"]["open_connection"]["direction"], "outbound");
        let back: FindingReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, listed);
        assert!(
            serde_json::to_value(&attempts).unwrap()["details"]
                .get("open_connection")
                .is_none(),
            "attempts carry no open connection"
        );
    }

    /// A firewall report's attempts default to one when absent, count as its occurrences,
    /// and are refused (never clamped) when zero or beyond a u32, with the field named.
    #[test]
    fn firewall_attempts_default_to_one_and_out_of_range_values_are_refused() {
        let report = firewall_alert("block", 25_000);
        assert_eq!(report.occurrences(), 25_000);
        assert_eq!(alert("x").occurrences(), 1);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["details"]["attempts"], 25_000);
        let back: FindingReport = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, report);

        let mut without = json.clone();
        without["details"]
            .as_object_mut()
            .unwrap()
            .remove("attempts");
        let back: FindingReport = serde_json::from_value(without).unwrap();
        assert_eq!(
            back.occurrences(),
            1,
            "a report without attempts is one attempt"
        );

        for hostile in [serde_json::json!(0), serde_json::json!(4_294_967_296_u64)] {
            let mut bad = json.clone();
            bad["details"]["attempts"] = hostile.clone();
            let error = serde_json::from_value::<FindingReport>(bad).unwrap_err();
            assert!(
                error.to_string().contains(&format!(
                    "firewall alert attempts must be from 1 to 4294967295, not {hostile}"
                )),
                "{error}"
            );
        }
        let mut negative = json;
        negative["details"]["attempts"] = serde_json::json!(-3);
        assert!(serde_json::from_value::<FindingReport>(negative).is_err());
    }

    /// The OpenAPI schema documents a firewall alert's attempts with their range and default.
    #[cfg(feature = "openapi")]
    #[test]
    fn the_openapi_schema_documents_attempts_with_their_range() {
        let schema =
            serde_json::to_value(<FirewallDetails as utoipa::PartialSchema>::schema()).unwrap();
        let attempts = &schema["properties"]["attempts"];
        assert_eq!(attempts["minimum"], 1, "{attempts}");
        assert_eq!(attempts["maximum"], 4_294_967_295_u64, "{attempts}");
        assert_eq!(attempts["default"], 1, "{attempts}");
        assert!(
            attempts["description"]
                .as_str()
                .is_some_and(|text| text.contains("connection attempts")),
            "{attempts}"
        );
    }
}
