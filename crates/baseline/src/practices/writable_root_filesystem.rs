//! PAL-K8S-010: the container's root file system is writable.

use crate::practices::{Hit, Reference, Rule, Severity, Target, runtime_containers};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-010",
    severity: Severity::Low,
    title: "Root file system writable",
    description: "A writable root file system lets an intruder drop and run tools and change the application's files.",
    remediation: "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where the application must write.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_22",
    },
    Reference {
        source: "kubescape",
        id: "C-0017",
    },
    Reference {
        source: "kube-linter",
        id: "no-read-only-root-fs",
    },
    Reference {
        source: "trivy",
        id: "KSV014",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    if target.pod.is_windows() {
        return Vec::new();
    }
    runtime_containers(target)
        .filter_map(|container| {
            let path = container.security_context_path(&["readOnlyRootFilesystem"]);
            match container.security_context(&["readOnlyRootFilesystem"]) {
                Some(node) if node.as_bool() == Some(true) => None,
                Some(node) => Some(Hit::at(path, node)),
                None => Some(Hit::missing(path, container.node)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn requires_read_only_root() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    securityContext: {readOnlyRootFilesystem: true}\n  - name: b\n";
        assert_eq!(
            hits("PAL-K8S-010", manifest),
            [(
                "spec.containers[1].securityContext.readOnlyRootFilesystem".to_owned(),
                "unset".to_owned()
            )]
        );
    }
}
