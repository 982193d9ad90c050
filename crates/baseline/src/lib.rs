//! Baseline risks of Kubernetes workloads: the Pod Security Standards and best practices.
//!
//! This crate reads Kubernetes manifests (YAML, multi-document YAML, JSON, `kubectl get -o
//! json` `List` objects) into [`Workload`]s — every object that carries a pod template — and
//! judges each one twice:
//!
//! - **Pod Security Standards** ([`evaluate_pod`]): the `baseline` and `restricted` levels at
//!   any policy version from `v1.0` to `v1.37` ([`LATEST_MINOR`]; newer ones are evaluated as
//!   it, as the admission controller does), with the check ids, the
//!   version history of every check, the restricted level's overrides of baseline checks and
//!   the reason texts of Kubernetes' own pod-security admission
//!   (`k8s.io/pod-security-admission/policy`).
//! - **Best practices** ([`check_practices`]): resource limits, image pinning, service account
//!   tokens, secrets in the environment, host access and more, each a [`Rule`] with a stable
//!   `PAL-K8S-NNN` id and [`Evidence`] naming the field path, value, file and line.
//!
//! [`check_workload`] does both and returns an [`ObjectReport`].
//!
//! Design decision: the checks read a located YAML tree rather than typed Kubernetes structs.
//! That keeps the `k8s-openapi` dependency out, lets one parser (`saphyr`'s, with its line and
//! column markers) serve YAML and JSON, and gives every finding the line of the offending field.
//! The price is that a field of the wrong type counts as unset; only manifests the API server
//! would reject anyway have such fields.
//!
//! ```
//! use palisade_baseline::{Level, Version, check_workload, load_str};
//!
//! let manifest = "\
//! apiVersion: v1
//! kind: Pod
//! metadata: {name: web}
//! spec:
//!   hostNetwork: true
//!   containers:
//!   - name: app
//!     image: nginx
//! ";
//! let loaded = load_str("pod.yaml".as_ref(), manifest);
//! let report = check_workload(&loaded.workloads[0], Level::Baseline, Version::Latest);
//! assert!(!report.pss.allowed);
//! assert_eq!(report.pss.violations[0].check, "hostNamespaces");
//! assert_eq!(report.pss.violations[0].message, "host namespaces (hostNetwork=true)");
//! let host_namespace = report.findings.iter().find(|finding| finding.id == "PAL-K8S-004").unwrap();
//! assert_eq!(host_namespace.evidence.path, "spec.hostNetwork");
//! assert_eq!(host_namespace.evidence.line, 5);
//! ```
#![deny(missing_docs)]

mod error;
mod exceptions;
mod host;
mod loader;
mod practices;
mod pss;
mod report;
mod services;
mod workload;
mod yaml;

use serde::Serialize;

pub use crate::{
    error::{Error, ErrorKind},
    exceptions::{WAIVE_ANNOTATION, Waived, WaiverPolicy, apply_exceptions},
    host::{
        CheckResult, HostEvidence, HostOptions, HostReport, HostRoot, HostRule, MAX_CONFIG_SIZE,
        Status, WalkLimits, check_host, host_rules,
    },
    loader::{Loaded, MAX_FILE_SIZE, Warning, load_paths, load_str},
    practices::{Evidence, Finding, Reference, Rule, Severity, check_practices, practice_rules},
    pss::{
        LATEST_MINOR, Level, Verdict, Version, Violation, evaluate_pod, pss_check_ids,
        pss_check_overridden_by,
    },
    report::{finding_reports, host_asset, host_findings, service_findings},
    services::{
        ProbeOptions, ServiceTarget, WEAK_PASSWORDS, check_services, probe_services, service_rules,
    },
    workload::Workload,
    yaml::{Node, Value},
};

/// The verdict and findings for one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    /// The file the object came from.
    pub file: String,
    /// The line where the object starts.
    pub line: usize,
    /// `kind`.
    pub kind: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The Pod Security Standards verdict for the pod template.
    pub pss: Verdict,
    /// Best-practice findings, in rule order.
    pub findings: Vec<Finding>,
}

/// Evaluates a workload against the Pod Security Standards and the best-practice rules.
pub fn check_workload(workload: &Workload, level: Level, version: Version) -> ObjectReport {
    ObjectReport {
        file: workload.file.display().to_string(),
        line: workload.line,
        kind: workload.kind.clone(),
        api_version: workload.api_version.clone(),
        namespace: workload.namespace.clone(),
        name: workload.name.clone(),
        pss: evaluate_pod(
            level,
            version,
            workload.pod_metadata(),
            workload.pod_spec(),
            workload.pod_spec_path(),
        ),
        findings: check_practices(workload),
    }
}

#[cfg(test)]
mod tests {
    /// Every module opens with `//!` prose (STYLE.md: enforce the docs).
    #[test]
    fn every_module_has_module_docs() {
        let checked = palisade_testdata::assert_every_module_documented(env!("CARGO_MANIFEST_DIR"));
        assert!(checked > 40, "only {checked} modules found");
    }
}
