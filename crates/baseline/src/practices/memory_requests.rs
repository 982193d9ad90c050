//! PAL-K8S-013: a container without `resources.requests.memory`.

use crate::practices::{Hit, Reference, Rule, Severity, Target, missing_resource};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-013",
    severity: Severity::Low,
    title: "Memory request missing",
    description: "Without a memory request the scheduler can overcommit the node, and the pod is among the first evicted under memory pressure.",
    remediation: "Set resources.requests.memory on every container.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_12",
    },
    Reference {
        source: "kubescape",
        id: "C-0004",
    },
    Reference {
        source: "kube-linter",
        id: "unset-memory-requirements",
    },
    Reference {
        source: "trivy",
        id: "KSV016",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    missing_resource(target, "requests", "memory")
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn finds_containers_without_it() {
        let manifest = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: i\n        resources:\n          requests: {memory: '1'}\n      containers:\n      - name: a\n        resources: {}\n      ephemeralContainers:\n      - name: debug\n";
        assert_eq!(
            hits("PAL-K8S-013", manifest),
            [(
                "spec.template.spec.containers[0].resources.requests.memory".to_owned(),
                "unset".to_owned()
            )]
        );
    }
}
