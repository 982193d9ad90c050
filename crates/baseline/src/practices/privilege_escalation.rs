//! PAL-K8S-002: a container that may gain privileges (setuid binaries, file capabilities).

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-002",
    severity: Severity::Medium,
    title: "Privilege escalation allowed",
    description: "Unless allowPrivilegeEscalation is false, a process in the container can gain more privileges than its parent, through setuid binaries or file capabilities.",
    remediation: "Set securityContext.allowPrivilegeEscalation: false on every container.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_20",
    },
    Reference {
        source: "kubescape",
        id: "C-0016",
    },
    Reference {
        source: "kube-linter",
        id: "privilege-escalation-container",
    },
    Reference {
        source: "trivy",
        id: "KSV001",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    if target.pod.is_windows() {
        return Vec::new();
    }
    target
        .pod
        .containers()
        .filter_map(|container| {
            let path = container.security_context_path(&["allowPrivilegeEscalation"]);
            match container.security_context(&["allowPrivilegeEscalation"]) {
                Some(node) if node.as_bool() == Some(false) => None,
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
    fn requires_an_explicit_false() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n  - name: b\n    securityContext: {allowPrivilegeEscalation: true}\n  - name: c\n    securityContext: {allowPrivilegeEscalation: false}\n";
        assert_eq!(
            hits("PAL-K8S-002", manifest),
            [
                (
                    "spec.containers[0].securityContext.allowPrivilegeEscalation".to_owned(),
                    "unset".to_owned()
                ),
                (
                    "spec.containers[1].securityContext.allowPrivilegeEscalation".to_owned(),
                    "true".to_owned()
                ),
            ]
        );
    }
}
