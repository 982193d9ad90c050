//! PAL-K8S-023: a container without a `readinessProbe`.
//!
//! Only regular containers of long-running workloads are checked: init and ephemeral containers
//! take no probes, and a Job's or CronJob's pods are meant to finish.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-023",
    severity: Severity::Low,
    title: "Readiness probe missing",
    description: "Without a readiness probe a container receives traffic as soon as it starts, before it can serve, and keeps receiving it when it cannot.",
    remediation: "Add a readinessProbe to every container that serves traffic.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_9",
    },
    Reference {
        source: "kubescape",
        id: "C-0018",
    },
    Reference {
        source: "kube-linter",
        id: "no-readiness-probe",
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
                .get("readinessProbe")
                .is_none_or(|node| node.is_null())
        })
        .map(|container| Hit::missing(format!("{}.readinessProbe", container.path), container.node))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn long_running_containers_need_it() {
        let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      initContainers: [{name: i}]\n      containers:\n      - name: a\n      - name: b\n        readinessProbe: {tcpSocket: {port: 80}}\n";
        assert_eq!(
            hits("PAL-K8S-023", manifest),
            [(
                "spec.template.spec.containers[0].readinessProbe".to_owned(),
                "unset".to_owned()
            )]
        );
        let job = manifest.replace("apps/v1\nkind: Deployment", "batch/v1\nkind: Job");
        assert!(hits("PAL-K8S-023", &job).is_empty());
    }
}
