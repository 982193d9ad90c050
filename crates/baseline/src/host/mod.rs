//! Host checks: `PAL-HOST-NNN` rules over a host's files (and, on the running host, `/proc`).
//!
//! One module per family (`ssh`, `accounts`, `permissions`, `sysctl`, `modules`, `filesystem`,
//! `auditd`, `docker`, `containerd`, `kubelet`). Each family returns exactly one
//! [`CheckResult`] per rule it owns: pass, fail (with evidence), not applicable (with the
//! reason) or error (a file that could not be read or parsed). A check whose subject is absent
//! — no SSH server, no kubelet — is not applicable, never pass.

mod accounts;
mod auditd;
mod containerd;
mod docker;
mod filesystem;
mod kubelet;
mod modules;
mod permissions;
pub(crate) mod root;
mod ssh;
mod sysctl;

use palisade_model::BaselineCategory;
use serde::Serialize;

pub use self::{
    filesystem::WalkLimits,
    root::{HostRoot, MAX_CONFIG_SIZE},
};
use crate::{Error, Reference, Severity};

/// A host, database or middleware check: what it looks for and how to fix it.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct HostRule {
    /// The stable Palisade id, e.g. `PAL-HOST-001`.
    pub id: &'static str,
    /// How serious a failure is.
    pub severity: Severity,
    /// What the risk is about: the host OS, its container runtime, a database or other software.
    pub category: BaselineCategory,
    /// A one-line title.
    pub title: &'static str,
    /// Why it matters.
    pub description: &'static str,
    /// How to fix it.
    pub remediation: &'static str,
    /// Equivalent checks of other tools (lynis test ids, verified against lynis 3.0.8's
    /// `include/tests_*` files) and benchmarks (CIS Debian Linux 12 v1.1.0 recommendation
    /// ids, with the benchmark and version as the source; CIS Kubernetes for the kubelet).
    pub references: &'static [Reference],
}

/// What the rules of one family (one module) share: their category and, for most, the
/// equivalent checks of other tools.
pub(crate) struct RuleFamily {
    category: BaselineCategory,
    references: &'static [Reference],
}

impl RuleFamily {
    pub(crate) const fn new(
        category: BaselineCategory,
        references: &'static [Reference],
    ) -> RuleFamily {
        RuleFamily {
            category,
            references,
        }
    }

    /// A rule of this family.
    pub(crate) const fn rule(
        &self,
        id: &'static str,
        severity: Severity,
        title: &'static str,
        description: &'static str,
        remediation: &'static str,
    ) -> HostRule {
        HostRule {
            id,
            severity,
            category: self.category,
            title,
            description,
            remediation,
            references: self.references,
        }
    }
}

impl HostRule {
    /// The same rule with `references` instead of its family's.
    pub(crate) const fn with_references(self, references: &'static [Reference]) -> HostRule {
        HostRule { references, ..self }
    }
}

/// The outcome of one rule on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The host complies.
    Pass,
    /// The host does not comply; the evidence says where.
    Fail,
    /// What the rule is about is not there (no SSH server, no kubelet, ...).
    NotApplicable,
    /// A file the rule needs could not be read or parsed; the message says which.
    Error,
}

impl Status {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::Error => "error",
        }
    }
}

/// Where a failing setting was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEvidence {
    /// The setting, account, sysctl or file the evidence is about.
    pub setting: String,
    /// The offending value (`unset (default …)` when a default applies).
    pub value: String,
    /// The file on the host (inside the root), or a description such as `(default)`.
    pub file: String,
    /// The 1-based line, when the value comes from a line of a file.
    pub line: Option<usize>,
}

impl HostEvidence {
    pub(crate) fn new(
        setting: impl Into<String>,
        value: impl Into<String>,
        file: impl Into<String>,
        line: Option<usize>,
    ) -> HostEvidence {
        HostEvidence {
            setting: setting.into(),
            value: value.into(),
            file: file.into(),
            line,
        }
    }
}

/// The result of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The rule.
    #[serde(flatten)]
    pub rule: &'static HostRule,
    /// Pass, fail, not applicable or error.
    pub status: Status,
    /// Why it is not applicable, what failed to load, or a summary of what was checked.
    pub message: String,
    /// The offending settings, for failures.
    pub evidence: Vec<HostEvidence>,
}

impl HostRule {
    /// Fail with `evidence`, or pass when there is none.
    pub(crate) fn judge(
        &'static self,
        evidence: Vec<HostEvidence>,
        message: impl Into<String>,
    ) -> CheckResult {
        CheckResult {
            rule: self,
            status: if evidence.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            message: message.into(),
            evidence,
        }
    }

    pub(crate) fn not_applicable(&'static self, why: impl Into<String>) -> CheckResult {
        CheckResult {
            rule: self,
            status: Status::NotApplicable,
            message: why.into(),
            evidence: Vec::new(),
        }
    }

    pub(crate) fn error(&'static self, error: &Error) -> CheckResult {
        CheckResult {
            rule: self,
            status: Status::Error,
            message: error_chain(error),
            evidence: Vec::new(),
        }
    }
}

/// An error and its causes on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Settings of a host scan.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Limits of the file-system walk for world-writable directories and setuid binaries.
    pub walk: WalkLimits,
}

/// Every rule's result for one host, in rule order.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// The root that was checked, on the scanning machine.
    pub root: String,
    /// Whether the running kernel's state (`/proc`) was read.
    pub live: bool,
    /// One result per rule.
    pub results: Vec<CheckResult>,
}

type FamilyCheck = fn(&HostRoot, &HostOptions) -> Vec<CheckResult>;

/// Every family: its rules and its check, in id order.
const FAMILIES: &[(&[&HostRule], FamilyCheck)] = &[
    (ssh::RULES, ssh::check),
    (accounts::RULES, accounts::check),
    (permissions::RULES, permissions::check),
    (sysctl::RULES, sysctl::check),
    (modules::RULES, modules::check),
    (filesystem::RULES, filesystem::check),
    (auditd::RULES, auditd::check),
    (docker::RULES, docker::check),
    (containerd::RULES, containerd::check),
    (kubelet::RULES, kubelet::check),
];

/// Every host rule, in id order.
pub fn host_rules() -> impl Iterator<Item = &'static HostRule> {
    FAMILIES.iter().flat_map(|(rules, _)| rules.iter().copied())
}

/// Runs every host check against `host`.
pub fn check_host(host: &HostRoot, options: &HostOptions) -> HostReport {
    let mut results: Vec<CheckResult> = FAMILIES
        .iter()
        .flat_map(|(_, check)| check(host, options))
        .collect();
    results.sort_by_key(|result| result.rule.id);
    HostReport {
        root: host.root().display().to_string(),
        live: host.is_live(),
        results,
    }
}

/// The benchmark the host rules' `cis` ids come from. CIS renumbers its recommendations
/// between benchmarks and between versions, so the source names both; the ids are those of
/// ComplianceAsCode's `controls/cis_debian12.yml` for this version.
pub(crate) const CIS_DEBIAN_12: &str = "CIS Debian Linux 12 v1.1.0";

/// Lynis test ids and, after `; cis`, [`CIS_DEBIAN_12`] recommendation ids, as `Reference`s.
macro_rules! lynis {
    ($($id:literal),* $(; cis $($cis:literal),+)?) => {
        &[
            $(crate::Reference { source: "lynis", id: $id },)*
            $($(crate::Reference { source: crate::host::CIS_DEBIAN_12, id: $cis },)+)?
        ]
    };
}
pub(crate) use lynis;

/// What the host checks' unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{CheckResult, HostOptions, HostRoot};

    /// Runs `check` on a fresh host root that holds just `files` (host path, content).
    pub(crate) fn check_files(
        check: fn(&HostRoot, &HostOptions) -> Vec<CheckResult>,
        files: &[(&str, &str)],
    ) -> Vec<CheckResult> {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let real = root.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(real.parent().unwrap()).unwrap();
            std::fs::write(real, text).unwrap();
        }
        check(
            &HostRoot::new(root.path()).unwrap(),
            &HostOptions::default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_reports_each_of_its_rules_exactly_once() {
        let root = tempfile::tempdir().unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let report = check_host(&host, &HostOptions::default());
        let reported: Vec<&str> = report.results.iter().map(|result| result.rule.id).collect();
        let mut expected: Vec<&str> = host_rules().map(|rule| rule.id).collect();
        expected.sort();
        assert_eq!(reported, expected);
        let mut unique = expected.clone();
        unique.dedup();
        assert_eq!(unique.len(), expected.len(), "duplicate rule ids");
        assert!(
            expected
                .iter()
                .enumerate()
                .all(|(idx, id)| *id == format!("PAL-HOST-{:03}", idx + 1)),
            "host rule ids are not consecutive: {expected:?}"
        );
    }

    /// The CIS Debian Linux 12 (v1.1.0) recommendations each rule cites.
    fn cis_ids(rule: &HostRule) -> Vec<&'static str> {
        rule.references
            .iter()
            .filter(|reference| reference.source == CIS_DEBIAN_12)
            .map(|reference| reference.id)
            .collect()
    }

    #[test]
    fn host_rules_cite_cis_debian_12_recommendations() {
        let rule = |id: &str| host_rules().find(|rule| rule.id == id).unwrap();
        // Spot checks against the benchmark's numbering, one per chapter used.
        assert_eq!(cis_ids(rule("PAL-HOST-001")), ["5.1.20"], "PermitRootLogin");
        assert_eq!(
            cis_ids(rule("PAL-HOST-010")),
            ["5.4.2.1"],
            "root the only uid 0"
        );
        assert_eq!(cis_ids(rule("PAL-HOST-021")), ["3.3.1"], "ip forwarding");
        assert_eq!(cis_ids(rule("PAL-HOST-027")), ["1.5.1"], "ASLR");
        assert_eq!(
            cis_ids(rule("PAL-HOST-019")).len(),
            6,
            "/etc/crontab and cron dirs"
        );
        assert_eq!(
            cis_ids(rule("PAL-HOST-039")),
            ["6.2.3.8"],
            "identity audit rules"
        );
        assert_eq!(cis_ids(rule("PAL-HOST-036")), ["7.1.11"], "world-writable");
        // Checks the benchmark has no recommendation for cite none, rather than a near miss.
        for id in [
            "PAL-HOST-002",
            "PAL-HOST-004",
            "PAL-HOST-028",
            "PAL-HOST-050",
        ] {
            assert!(cis_ids(rule(id)).is_empty(), "{id}");
        }
        // Ids are dotted numbers, and no recommendation is claimed by two rules of different
        // subjects.
        let mut seen: std::collections::BTreeMap<&str, &str> = Default::default();
        for rule in host_rules() {
            for id in cis_ids(rule) {
                assert!(
                    id.split('.').all(|part| part.parse::<u8>().is_ok()),
                    "{}: {id}",
                    rule.id
                );
                if let Some(other) = seen.insert(id, rule.id) {
                    // PASS_MAX_DAYS and existing accounts' ageing are both 5.4.1.1.
                    assert!(
                        [other, rule.id] == ["PAL-HOST-013", "PAL-HOST-014"],
                        "{id} cited by {other} and {}",
                        rule.id
                    );
                }
            }
        }
    }
}
