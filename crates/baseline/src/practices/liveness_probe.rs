//! PAL-K8S-022: a container without a `livenessProbe`.
//!
//! Only regular containers of long-running workloads are checked: init and ephemeral containers
//! take no probes, and a Job's or CronJob's pods are meant to finish.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-022",
    severity: Severity::Low,
    title: "Liveness probe missing",
    description: "Without a liveness probe a hung process keeps its pod Running and serving nothing until someone notices.",
    remediation: "Add a livenessProbe (httpGet, tcpSocket, grpc or exec) to every long-running container.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_8",
    },
    Reference {
        source: "kubescape",
        id: "C-0056",
    },
    Reference {
        source: "kube-linter",
        id: "no-liveness-probe",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    if matches!(target.workload.kind.as_str(), "Job" | "CronJob") {
        return Vec::new();
    }
    target
        .pod
        .containers()
        .filter(|container| container.list == "containers")
        .filter(|container| {
            container
                .node
                .get("livenessProbe")
                .is_none_or(|node| node.is_null())
        })
        .map(|container| Hit::missing(format!("{}.livenessProbe", container.path), container.node))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn long_running_containers_need_it() {
        let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      initContainers: [{name: i}]\n      containers:\n      - name: a\n      - name: b\n        livenessProbe: {tcpSocket: {port: 80}}\n";
        assert_eq!(
            hits("PAL-K8S-022", manifest),
            [(
                "spec.template.spec.containers[0].livenessProbe".to_owned(),
                "unset".to_owned()
            )]
        );
        let job = manifest.replace("apps/v1\nkind: Deployment", "batch/v1\nkind: Job");
        assert!(hits("PAL-K8S-022", &job).is_empty());
    }
}
