//! Best-practice checks for workloads, with stable Palisade ids (`PAL-K8S-001` …).
//!
//! Each module holds one check: its [`Rule`] (id, severity, texts and the ids other tools give
//! the same check) and the function that finds offending fields. Where another tool has an
//! equivalent check, its id is listed only if it was verified against that tool's own source:
//! checkov 3.3.30's check classes, kubescape's `regolibrary` control files, kube-linter's
//! generated check list, and the rego metadata of `trivy-checks`. The two CIS Kubernetes
//! Benchmark sections (5.4.1, 5.7.4) are as kube-linter's check list cites them.

mod automount_service_account_token;
mod cpu_limits;
mod cpu_requests;
mod default_namespace;
mod host_namespaces;
mod host_port;
mod image_digest;
mod image_pull_policy;
mod image_tag;
mod liveness_probe;
mod memory_limits;
mod memory_requests;
mod net_raw;
mod privilege_escalation;
mod privileged;
mod readiness_probe;
mod run_as_root;
mod runtime_socket;
mod secret_env_ref;
mod secret_env_value;
mod sensitive_host_path;
mod sys_admin;
mod writable_root_filesystem;

use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::{
    Workload,
    pss::pod::{Container, Pod},
    yaml::Node,
};

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a risk by itself.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: a direct path to the node.
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Severity, String> {
        [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|severity| severity.as_str() == text)
        .ok_or_else(|| {
            format!("unknown severity {text:?} (expected info, low, medium, high or critical)")
        })
    }
}

/// The id another tool or benchmark gives an equivalent check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// The tool or benchmark, e.g. `checkov`.
    pub source: &'static str,
    /// Its id there, e.g. `CKV_K8S_16`.
    pub id: &'static str,
}

/// A best-practice check: what it looks for and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The stable Palisade id, e.g. `PAL-K8S-001`.
    pub id: &'static str,
    /// How serious a finding is.
    pub severity: Severity,
    /// A one-line title.
    pub title: &'static str,
    /// Why it matters.
    pub description: &'static str,
    /// How to fix it.
    pub remediation: &'static str,
    /// Equivalent checks of other tools.
    pub references: &'static [Reference],
}

/// Where a finding was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The field path in the object, e.g. `spec.template.spec.containers[0].securityContext.privileged`.
    pub path: String,
    /// The offending value (`unset` when the field is missing; secrets are redacted).
    pub value: String,
    /// The file.
    pub file: String,
    /// The line of the field, or of the closest enclosing node when the field is missing.
    pub line: usize,
}

/// One best-practice finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule id, e.g. `PAL-K8S-001`.
    pub id: &'static str,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's title.
    pub title: &'static str,
    /// Where.
    pub evidence: Evidence,
}

/// One offending field, before the rule and the file are attached.
pub(crate) struct Hit {
    pub(crate) path: String,
    pub(crate) value: String,
    pub(crate) line: usize,
}

impl Hit {
    /// A hit on a field that is present.
    pub(crate) fn at(path: String, node: &Node) -> Hit {
        Hit {
            path,
            value: node.display(),
            line: node.line,
        }
    }

    /// A hit on a field that is missing; `parent` is the closest node that exists.
    pub(crate) fn missing(path: String, parent: &Node) -> Hit {
        Hit {
            path,
            value: "unset".to_owned(),
            line: parent.line,
        }
    }
}

/// What a check looks at: the workload and its pod template.
pub(crate) struct Target<'a> {
    pub(crate) workload: &'a Workload,
    pub(crate) pod: Pod<'a>,
}

type CheckFn = fn(&Target<'_>) -> Vec<Hit>;

/// Every check, in id order.
const CHECKS: &[(&Rule, CheckFn)] = &[
    (&privileged::RULE, privileged::check),
    (&privilege_escalation::RULE, privilege_escalation::check),
    (&run_as_root::RULE, run_as_root::check),
    (&host_namespaces::RULE, host_namespaces::check),
    (&sensitive_host_path::RULE, sensitive_host_path::check),
    (&runtime_socket::RULE, runtime_socket::check),
    (&sys_admin::RULE, sys_admin::check),
    (&net_raw::RULE, net_raw::check),
    (&host_port::RULE, host_port::check),
    (
        &writable_root_filesystem::RULE,
        writable_root_filesystem::check,
    ),
    (&cpu_requests::RULE, cpu_requests::check),
    (&cpu_limits::RULE, cpu_limits::check),
    (&memory_requests::RULE, memory_requests::check),
    (&memory_limits::RULE, memory_limits::check),
    (&image_tag::RULE, image_tag::check),
    (&image_digest::RULE, image_digest::check),
    (&image_pull_policy::RULE, image_pull_policy::check),
    (
        &automount_service_account_token::RULE,
        automount_service_account_token::check,
    ),
    (&secret_env_value::RULE, secret_env_value::check),
    (&secret_env_ref::RULE, secret_env_ref::check),
    (&default_namespace::RULE, default_namespace::check),
    (&liveness_probe::RULE, liveness_probe::check),
    (&readiness_probe::RULE, readiness_probe::check),
];

/// Every best-practice rule, in id order.
pub fn practice_rules() -> impl Iterator<Item = &'static Rule> {
    CHECKS.iter().map(|(rule, _)| *rule)
}

/// Runs every best-practice check on a workload.
pub fn check_practices(workload: &Workload) -> Vec<Finding> {
    let target = Target {
        workload,
        pod: Pod::new(
            workload.pod_metadata(),
            workload.pod_spec(),
            workload.pod_spec_path(),
        ),
    };
    let file = workload.file.display().to_string();
    let mut findings = Vec::new();
    for (rule, check) in CHECKS {
        for hit in check(&target) {
            findings.push(Finding {
                id: rule.id,
                severity: rule.severity,
                title: rule.title,
                evidence: Evidence {
                    path: hit.path,
                    value: hit.value,
                    file: file.clone(),
                    line: hit.line,
                },
            });
        }
    }
    findings
}

/// Containers that run as long-lived processes with resources: init and regular containers.
///
/// Ephemeral (debug) containers may not set resources, ports or probes.
pub(crate) fn runtime_containers<'a>(
    target: &'a Target<'a>,
) -> impl Iterator<Item = Container<'a>> + 'a {
    target
        .pod
        .containers()
        .filter(|container| container.list != "ephemeralContainers")
}

/// A hit for every runtime container missing `resources.<section>.<resource>`.
pub(crate) fn missing_resource(target: &Target<'_>, section: &str, resource: &str) -> Vec<Hit> {
    runtime_containers(target)
        .filter_map(|container| {
            let path = format!("{}.resources.{section}.{resource}", container.path);
            match container.node.at(&["resources", section, resource]) {
                Some(node) if !node.is_null() => None,
                _ => {
                    let parent = container
                        .node
                        .at(&["resources", section])
                        .or_else(|| container.node.get("resources"))
                        .unwrap_or(container.node);
                    Some(Hit::missing(path, parent))
                }
            }
        })
        .collect()
}

/// A hit for every `hostPath` volume whose path `matches`.
pub(crate) fn host_path_volumes(target: &Target<'_>, matches: impl Fn(&str) -> bool) -> Vec<Hit> {
    let volumes = target
        .pod
        .spec
        .get("volumes")
        .map(Node::items)
        .unwrap_or_default();
    volumes
        .iter()
        .enumerate()
        .filter_map(|(volume_idx, volume)| {
            let node = volume.at(&["hostPath", "path"])?;
            matches(node.as_str()?).then(|| {
                Hit::at(
                    format!(
                        "{}.volumes[{volume_idx}].hostPath.path",
                        target.pod.spec_path
                    ),
                    node,
                )
            })
        })
        .collect()
}

/// A hit for every regular container of a long-running workload without `probe`
/// (`livenessProbe`, `readinessProbe`): init and ephemeral containers take no probes, and a
/// Job's or CronJob's pods are meant to finish.
pub(crate) fn missing_probe(target: &Target<'_>, probe: &str) -> Vec<Hit> {
    if matches!(target.workload.kind.as_str(), "Job" | "CronJob") {
        return Vec::new();
    }
    target
        .pod
        .containers()
        .filter(|container| container.list == "containers")
        .filter(|container| container.node.get(probe).is_none_or(|node| node.is_null()))
        .map(|container| Hit::missing(format!("{}.{probe}", container.path), container.node))
        .collect()
}

/// Capability names compare without case and without the `CAP_` prefix, as runtimes accept both.
pub(crate) fn capability_is(name: &str, wanted: &str) -> bool {
    let name = name.trim();
    let bare = name
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("CAP_"))
        .map_or(name, |_| &name[4..]);
    bare.eq_ignore_ascii_case(wanted)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs the best-practice checks on a manifest written in YAML.

    use std::path::Path;

    use crate::practices::{Finding, check_practices};

    /// All findings for the first workload in `manifest`.
    pub(crate) fn findings(manifest: &str) -> Vec<Finding> {
        let loaded = crate::load_str(Path::new("test.yaml"), manifest);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        check_practices(&loaded.workloads[0])
    }

    /// The `(path, value)` of each finding of rule `id`.
    pub(crate) fn hits(id: &str, manifest: &str) -> Vec<(String, String)> {
        findings(manifest)
            .into_iter()
            .filter(|finding| finding.id == id)
            .map(|finding| (finding.evidence.path, finding.evidence.value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::practices::{CHECKS, Severity, capability_is};

    #[test]
    fn ids_are_unique_sequential_and_documented() {
        for (rule_idx, (rule, _)) in CHECKS.iter().enumerate() {
            assert_eq!(rule.id, format!("PAL-K8S-{:03}", rule_idx + 1));
            assert!(
                !rule.title.is_empty()
                    && !rule.description.is_empty()
                    && !rule.remediation.is_empty()
            );
            assert!(!rule.title.ends_with('.'), "{}", rule.id);
        }
    }

    #[test]
    fn severities_parse_and_order() {
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert!("severe".parse::<Severity>().is_err());
        assert!(Severity::Info < Severity::Critical);
    }

    #[test]
    fn capability_names_are_normalised() {
        assert!(capability_is("CAP_SYS_ADMIN", "SYS_ADMIN"));
        assert!(capability_is("sys_admin", "SYS_ADMIN"));
        assert!(!capability_is("SYS_ADMINX", "SYS_ADMIN"));
        assert!(!capability_is("CAP", "SYS_ADMIN"));
    }
}
