//! PAL-K8S-014: a container without `resources.limits.memory`.

use crate::practices::{Hit, Reference, Rule, Severity, Target, missing_resource};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-014",
    severity: Severity::Medium,
    title: "Memory limit missing",
    description: "Without a memory limit a leaking or compromised container can exhaust the node's memory and trigger the kernel's OOM killer on other workloads.",
    remediation: "Set resources.limits.memory on every container, or enforce one with a LimitRange.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_13",
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
        id: "KSV018",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    missing_resource(target, "limits", "memory")
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn finds_containers_without_it() {
        let manifest = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: i\n        resources:\n          limits: {memory: '1'}\n      containers:\n      - name: a\n        resources: {}\n      ephemeralContainers:\n      - name: debug\n";
        assert_eq!(
            hits("PAL-K8S-014", manifest),
            [(
                "spec.template.spec.containers[0].resources.limits.memory".to_owned(),
                "unset".to_owned()
            )]
        );
    }
}
