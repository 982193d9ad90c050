//! PAL-K8S-001: a privileged container.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-001",
    severity: Severity::Critical,
    title: "Privileged container",
    description: "A privileged container has every capability and access to all host devices; a process in it can take over the node.",
    remediation: "Remove securityContext.privileged or set it to false; grant only the specific capabilities the container needs.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_16",
    },
    Reference {
        source: "kubescape",
        id: "C-0057",
    },
    Reference {
        source: "kube-linter",
        id: "privileged-container",
    },
    Reference {
        source: "trivy",
        id: "KSV017",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    target
        .pod
        .containers()
        .filter_map(|container| {
            let node = container.security_context(&["privileged"])?;
            (node.as_bool() == Some(true))
                .then(|| Hit::at(container.security_context_path(&["privileged"]), node))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn finds_privileged_containers() {
        let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        securityContext: {privileged: true}\n      - name: b\n        securityContext: {privileged: false}\n";
        assert_eq!(
            hits("PAL-K8S-001", manifest),
            [(
                "spec.template.spec.containers[0].securityContext.privileged".to_owned(),
                "true".to_owned()
            )]
        );
    }
}
