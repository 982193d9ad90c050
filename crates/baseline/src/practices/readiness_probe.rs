//! PAL-K8S-023: a container without a `readinessProbe`.
//!
//! Only regular containers of long-running workloads are checked (see [`missing_probe`]).

use crate::practices::{Hit, Reference, Rule, Severity, Target, missing_probe};

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
    missing_probe(target, "readinessProbe")
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
