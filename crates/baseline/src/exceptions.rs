//! Exceptions and annotation waivers for workload findings (accepted risks).
//!
//! An exception ([`palisade_model::NewException`], the server's own type) names a check (`*`
//! for all; `pss/<check>` for a Pod Security Standards check), and optionally a namespace, an
//! object name, labels the object must all carry, and a container. It stops applying at its
//! expiry. Exceptions scoped to a cluster or an asset id are left to the server, which knows
//! both; the scanner does not apply them. A `palisade.io/waive` annotation on the object or its
//! pod template (a comma-separated list of check ids) waives those checks unless the policy
//! turns annotation waivers off.

use palisade_model::{NewException, Timestamp};
use serde::Serialize;

use crate::{ObjectReport, Workload, yaml::Node};

/// The annotation that waives checks on an object: `palisade.io/waive: PAL-K8S-007, pss/privileged`.
pub const WAIVE_ANNOTATION: &str = "palisade.io/waive";

/// Whether annotation waivers count (an admin can turn them off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiverPolicy {
    /// Honour `palisade.io/waive` annotations.
    pub annotations: bool,
}

impl Default for WaiverPolicy {
    fn default() -> WaiverPolicy {
        WaiverPolicy { annotations: true }
    }
}

/// A finding or violation that an exception or waiver removed from a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waived {
    /// The check id (`PAL-K8S-…` or `pss/<check>`).
    pub check: String,
    /// The field path of the waived finding.
    pub path: String,
    /// Why: the exception's reason, or the annotation.
    pub reason: String,
    /// Who owns the decision (empty for annotations).
    pub owner: String,
}

/// Removes the findings and PSS violations of `report` that an unexpired exception or (when
/// the policy allows) an annotation covers, and returns what was removed. A report whose PSS
/// violations are all waived becomes allowed.
pub fn apply_exceptions(
    workload: &Workload,
    report: &mut ObjectReport,
    exceptions: &[NewException],
    policy: WaiverPolicy,
    now: Timestamp,
) -> Vec<Waived> {
    let annotated = if policy.annotations {
        annotation_waivers(workload)
    } else {
        Vec::new()
    };
    let mut waived = Vec::new();
    let mut covers = |check: &str, path: &str| -> bool {
        let container = container_name(workload, path);
        if annotated.iter().any(|waived_check| waived_check == check) {
            waived.push(Waived {
                check: check.to_owned(),
                path: path.to_owned(),
                reason: format!("annotation {WAIVE_ANNOTATION}"),
                owner: String::new(),
            });
            return true;
        }
        let exception = exceptions.iter().find(|exception| {
            exception.cluster.is_none()
                && exception.asset_id.is_none()
                && exception.expires_at.is_none_or(|expiry| expiry > now)
                && (exception.check == "*" || exception.check == check)
                && exception.namespace.as_ref().is_none_or(|namespace| {
                    workload.namespace.as_deref().unwrap_or("default") == namespace
                })
                && exception
                    .name
                    .as_ref()
                    .is_none_or(|name| *name == workload.name)
                && exception
                    .container
                    .as_ref()
                    .is_none_or(|wanted| container.as_deref() == Some(wanted.as_str()))
                && exception.labels.iter().all(|(key, value)| {
                    workload
                        .object
                        .at(&["metadata", "labels", key])
                        .and_then(Node::as_str)
                        == Some(value.as_str())
                })
        });
        match exception {
            Some(exception) => {
                waived.push(Waived {
                    check: check.to_owned(),
                    path: path.to_owned(),
                    reason: exception.reason.clone(),
                    owner: exception.owner.clone(),
                });
                true
            }
            None => false,
        }
    };
    report
        .findings
        .retain(|finding| !covers(finding.id, &finding.evidence.path));
    report.pss.violations.retain(|violation| {
        !covers(
            &format!("pss/{}", violation.check),
            violation.path.as_deref().unwrap_or(""),
        )
    });
    if report.pss.violations.is_empty() {
        report.pss.allowed = true;
    }
    waived
}

/// The check ids the object's or its pod template's `palisade.io/waive` annotation lists.
fn annotation_waivers(workload: &Workload) -> Vec<String> {
    [
        workload
            .object
            .at(&["metadata", "annotations", WAIVE_ANNOTATION]),
        workload
            .pod_metadata()
            .and_then(|metadata| metadata.at(&["annotations", WAIVE_ANNOTATION])),
    ]
    .into_iter()
    .flatten()
    .filter_map(Node::as_str)
    .flat_map(|list| list.split(','))
    .map(|check| check.trim().to_owned())
    .filter(|check| !check.is_empty())
    .collect()
}

/// The container a field path is about: `…containers[2]…` names the third container.
fn container_name(workload: &Workload, path: &str) -> Option<String> {
    let relative = path
        .strip_prefix(workload.pod_spec_path())?
        .trim_start_matches('.');
    for list in ["initContainers", "ephemeralContainers", "containers"] {
        if let Some(rest) = relative
            .strip_prefix(list)
            .and_then(|rest| rest.strip_prefix('['))
        {
            let index: usize = rest.split(']').next()?.parse().ok()?;
            return workload
                .pod_spec()
                .get(list)?
                .items()
                .get(index)?
                .get("name")?
                .as_str()
                .map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Level, Version, check_workload, load_str};

    const MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {team: payments}
  annotations:
    palisade.io/waive: PAL-K8S-004, pss/hostNamespaces
spec:
  template:
    spec:
      hostNetwork: true
      containers:
      - name: app
        image: nginx:1.27
        securityContext: {privileged: true}
      - name: sidecar
        image: envoy:1.30
        securityContext: {privileged: true}
";

    fn exception(check: &str) -> NewException {
        NewException {
            check: check.to_owned(),
            cluster: None,
            namespace: Some("shop".to_owned()),
            name: Some("web".to_owned()),
            container: Some("sidecar".to_owned()),
            asset_id: None,
            labels: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
            reason: "the mesh needs it".to_owned(),
            owner: "platform".to_owned(),
            expires_at: Some(Timestamp(2_000)),
        }
    }

    fn run(
        exceptions: &[NewException],
        policy: WaiverPolicy,
        now: i64,
    ) -> (ObjectReport, Vec<Waived>) {
        let loaded = load_str("web.yaml".as_ref(), MANIFEST);
        let workload = &loaded.workloads[0];
        let mut report = check_workload(workload, Level::Baseline, Version::Latest);
        let waived = apply_exceptions(workload, &mut report, exceptions, policy, Timestamp(now));
        (report, waived)
    }

    fn privileged_paths(report: &ObjectReport) -> Vec<&str> {
        report
            .findings
            .iter()
            .filter(|finding| finding.id == "PAL-K8S-001")
            .map(|finding| finding.evidence.path.as_str())
            .collect()
    }

    #[test]
    fn exceptions_match_check_selector_container_and_expiry() {
        let (baseline, _) = run(&[], WaiverPolicy { annotations: false }, 0);
        assert_eq!(privileged_paths(&baseline).len(), 2);
        assert!(
            baseline
                .pss
                .violations
                .iter()
                .any(|violation| violation.check == "hostNamespaces")
        );

        let (report, waived) = run(
            &[exception("PAL-K8S-001")],
            WaiverPolicy { annotations: false },
            1_000,
        );
        assert_eq!(
            privileged_paths(&report),
            ["spec.template.spec.containers[0].securityContext.privileged"]
        );
        assert_eq!(waived.len(), 1);
        assert_eq!(waived[0].owner, "platform");

        // Expired: no longer applies.
        let (report, waived) = run(
            &[exception("PAL-K8S-001")],
            WaiverPolicy { annotations: false },
            2_000,
        );
        assert_eq!(privileged_paths(&report).len(), 2);
        assert!(waived.is_empty());

        // Labels must all match.
        let mut other_team = exception("PAL-K8S-001");
        other_team
            .labels
            .insert("team".to_owned(), "search".to_owned());
        let (report, _) = run(&[other_team], WaiverPolicy { annotations: false }, 1_000);
        assert_eq!(privileged_paths(&report).len(), 2);
    }

    #[test]
    fn annotation_waivers_can_be_turned_off() {
        let (report, waived) = run(&[], WaiverPolicy::default(), 0);
        assert!(
            report
                .findings
                .iter()
                .all(|finding| finding.id != "PAL-K8S-004")
        );
        assert!(
            report
                .pss
                .violations
                .iter()
                .all(|violation| violation.check != "hostNamespaces")
        );
        assert!(
            waived
                .iter()
                .any(|waived| waived.check == "pss/hostNamespaces")
        );
        let (report, _) = run(&[], WaiverPolicy { annotations: false }, 0);
        assert!(
            report
                .pss
                .violations
                .iter()
                .any(|violation| violation.check == "hostNamespaces")
        );
    }
}
