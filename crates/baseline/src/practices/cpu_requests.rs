//! PAL-K8S-011: a container without `resources.requests.cpu`.

use crate::practices::{Hit, Reference, Rule, Severity, Target, missing_resource};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-011",
    severity: Severity::Low,
    title: "CPU request missing",
    description: "Without a CPU request the scheduler cannot place the pod by its needs, and under contention the container gets the smallest share.",
    remediation: "Set resources.requests.cpu on every container.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_10",
    },
    Reference {
        source: "kubescape",
        id: "C-0050",
    },
    Reference {
        source: "kube-linter",
        id: "unset-cpu-requirements",
    },
    Reference {
        source: "trivy",
        id: "KSV015",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    missing_resource(target, "requests", "cpu")
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn finds_containers_without_it() {
        let manifest = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: i\n        resources:\n          requests: {cpu: '1'}\n      containers:\n      - name: a\n        resources: {}\n      ephemeralContainers:\n      - name: debug\n";
        assert_eq!(
            hits("PAL-K8S-011", manifest),
            [(
                "spec.template.spec.containers[0].resources.requests.cpu".to_owned(),
                "unset".to_owned()
            )]
        );
    }
}
