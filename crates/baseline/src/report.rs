//! Turning failed host and service checks into [`FindingReport`]s for the server: one baseline
//! risk per failed rule, on the node's asset, with the evidence as `(setting, value, file,
//! line)`. The agent calls [`host_findings`] for its node and [`service_findings`] for each
//! running container, on its schedule and on demand.

use palisade_model::{AffectedAsset, BaselineDetails, Details, Evidence, FindingReport, Timestamp};
use uuid::Uuid;

use crate::{
    CheckResult, Error, HostOptions, HostRoot, ServiceTarget, Severity, Status, check_host,
};

/// The affected asset of a host check: the node `node` of `cluster`.
pub fn host_asset(cluster: &str, node: &str) -> AffectedAsset {
    AffectedAsset {
        cluster: cluster.to_owned(),
        node: Some(node.to_owned()),
        ..AffectedAsset::default()
    }
}

/// One report per failed result (passes, not-applicable and errored checks report nothing).
pub fn finding_reports(
    results: &[CheckResult],
    asset: &AffectedAsset,
    observed_at: Timestamp,
) -> Vec<FindingReport> {
    results
        .iter()
        .filter(|result| result.status == Status::Fail)
        .map(|result| FindingReport {
            id: Uuid::now_v7(),
            observed_at,
            severity: model_severity(result.rule.severity),
            rule: result.rule.id.to_owned(),
            title: result.rule.title.to_owned(),
            asset: asset.clone(),
            details: Details::BaselineRisk(BaselineDetails {
                category: result.rule.category,
                description: result.rule.description.to_owned(),
                remediation: result.rule.remediation.to_owned(),
                evidence: result
                    .evidence
                    .iter()
                    .map(|evidence| Evidence {
                        path: evidence.setting.clone(),
                        value: evidence.value.clone(),
                        file: evidence.file.clone(),
                        line: evidence.line.and_then(|line| u32::try_from(line).ok()),
                    })
                    .collect(),
            }),
            demo: false,
        })
        .collect()
}

/// Runs the host checks and the service checks on `host` and returns the failures as reports
/// on `asset`. With `probe`, the servers on this process's loopback are probed too: pass it
/// only when `host` is the machine this runs on.
pub fn host_findings(
    host: &HostRoot,
    options: &HostOptions,
    probe: bool,
    asset: &AffectedAsset,
    observed_at: Timestamp,
) -> Result<Vec<FindingReport>, Error> {
    let mut results = check_host(host, options).results;
    results.extend(ServiceTarget::root(host.root()).check(probe)?);
    Ok(finding_reports(&results, asset, observed_at))
}

/// Runs the service checks (and, with `probe`, the probes) of `target` — typically a running
/// container — and returns the failures as reports on `asset`.
pub fn service_findings(
    target: &ServiceTarget,
    probe: bool,
    asset: &AffectedAsset,
    observed_at: Timestamp,
) -> Result<Vec<FindingReport>, Error> {
    Ok(finding_reports(&target.check(probe)?, asset, observed_at))
}

fn model_severity(severity: Severity) -> palisade_model::Severity {
    match severity {
        Severity::Info => palisade_model::Severity::Info,
        Severity::Low => palisade_model::Severity::Low,
        Severity::Medium => palisade_model::Severity::Medium,
        Severity::High => palisade_model::Severity::High,
        Severity::Critical => palisade_model::Severity::Critical,
    }
}

#[cfg(test)]
mod tests {
    use palisade_model::{BaselineCategory, FindingKind};

    use super::*;

    #[test]
    fn failures_become_baseline_risks_on_the_node() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/docker")).unwrap();
        std::fs::write(
            root.path().join("etc/docker/daemon.json"),
            "{\n\"icc\": true\n}\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("etc/redis")).unwrap();
        std::fs::write(root.path().join("etc/redis/redis.conf"), "bind 0.0.0.0\n").unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let asset = host_asset("prod", "node-1");
        let reports = host_findings(
            &host,
            &HostOptions::default(),
            false,
            &asset,
            Timestamp(1_700_000_000_000),
        )
        .unwrap();
        let icc = reports
            .iter()
            .find(|report| report.rule == "PAL-HOST-040")
            .unwrap();
        assert_eq!(icc.details.kind(), FindingKind::BaselineRisk);
        assert_eq!(icc.asset.node.as_deref(), Some("node-1"));
        assert_eq!(icc.severity, palisade_model::Severity::Medium);
        let Details::BaselineRisk(details) = &icc.details else {
            unreachable!()
        };
        assert_eq!(details.category, BaselineCategory::Container);
        assert_eq!(details.evidence[0].file, "/etc/docker/daemon.json");
        assert_eq!(details.evidence[0].line, Some(2));
        let redis = reports
            .iter()
            .find(|report| report.rule == "PAL-SVC-001")
            .unwrap();
        let Details::BaselineRisk(details) = &redis.details else {
            unreachable!()
        };
        assert_eq!(details.category, BaselineCategory::Database);
        // The reports survive the wire format (deny_unknown_fields on the server side).
        let json = serde_json::to_string(&reports).unwrap();
        let back: Vec<FindingReport> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reports);
        // Not-applicable checks (no sshd here) report nothing.
        assert!(
            reports
                .iter()
                .all(|report| !report.rule.starts_with("PAL-HOST-00"))
        );
    }
}
