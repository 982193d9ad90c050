//! PAL-K8S-012: a container without `resources.limits.cpu`.

use crate::practices::{Hit, Reference, Rule, Severity, Target, missing_resource};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-012",
    severity: Severity::Low,
    title: "CPU limit missing",
    description: "Without a CPU limit one container can use every core of the node and starve its neighbours.",
    remediation: "Set resources.limits.cpu on every container, or enforce one with a LimitRange.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_11",
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
        id: "KSV011",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    missing_resource(target, "limits", "cpu")
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn finds_containers_without_it() {
        let manifest = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: i\n        resources:\n          limits: {cpu: '1'}\n      containers:\n      - name: a\n        resources: {}\n      ephemeralContainers:\n      - name: debug\n";
        assert_eq!(
            hits("PAL-K8S-012", manifest),
            [(
                "spec.template.spec.containers[0].resources.limits.cpu".to_owned(),
                "unset".to_owned()
            )]
        );
    }
}
