//! PAL-K8S-021: the workload is placed in the `default` namespace.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-021",
    severity: Severity::Low,
    title: "Default namespace used",
    description: "Workloads in the default namespace share it with everything deployed without thought; RBAC, quotas and NetworkPolicies cannot separate them. Only an explicit metadata.namespace: default is reported, since an unset namespace is chosen when the manifest is applied.",
    remediation: "Deploy the workload into a namespace of its own.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "CIS Kubernetes Benchmark",
        id: "5.7.4",
    },
    Reference {
        source: "checkov",
        id: "CKV_K8S_21",
    },
    Reference {
        source: "kubescape",
        id: "C-0061",
    },
    Reference {
        source: "kube-linter",
        id: "use-namespace",
    },
    Reference {
        source: "trivy",
        id: "KSV110",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    target
        .workload
        .object
        .at(&["metadata", "namespace"])
        .filter(|node| node.as_str() == Some("default"))
        .map(|node| Hit::at("metadata.namespace".to_owned(), node))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn explicit_default_namespace() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a}]\n";
        assert_eq!(
            hits("PAL-K8S-021", manifest),
            [("metadata.namespace".to_owned(), "default".to_owned())]
        );
        assert!(hits("PAL-K8S-021", &manifest.replace("default", "shop")).is_empty());
    }
}
