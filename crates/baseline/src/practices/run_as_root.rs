//! PAL-K8S-003: a container that may run as root.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-003",
    severity: Severity::Medium,
    title: "Container may run as root",
    description: "A container runs as root unless runAsNonRoot is true or a non-zero runAsUser is set, for the container or the pod. Root in a container is root on the node after any escape.",
    remediation: "Set securityContext.runAsNonRoot: true and a non-zero runAsUser, at pod or container level, and build the image with a non-root USER.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_23",
    },
    Reference {
        source: "kubescape",
        id: "C-0013",
    },
    Reference {
        source: "kube-linter",
        id: "run-as-non-root",
    },
    Reference {
        source: "trivy",
        id: "KSV012",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    if target.pod.is_windows() {
        return Vec::new();
    }
    let pod_user = target.pod.security_context(&["runAsUser"]);
    let pod_non_root = target.pod.security_context(&["runAsNonRoot"]);
    target
        .pod
        .containers()
        .filter_map(|container| {
            // A container's own settings override the pod's.
            let (user, user_path) = match container.security_context(&["runAsUser"]) {
                Some(node) => (Some(node), container.security_context_path(&["runAsUser"])),
                None => (pod_user, target.pod.security_context_path(&["runAsUser"])),
            };
            let (non_root, non_root_path) = match container.security_context(&["runAsNonRoot"]) {
                Some(node) => (
                    Some(node),
                    container.security_context_path(&["runAsNonRoot"]),
                ),
                None => (
                    pod_non_root,
                    target.pod.security_context_path(&["runAsNonRoot"]),
                ),
            };
            let uid = user.and_then(|node| node.as_i64());
            if let Some(node) = user
                && uid == Some(0)
            {
                return Some(Hit::at(user_path, node));
            }
            if uid.is_some_and(|uid| uid > 0) {
                return None;
            }
            match non_root {
                Some(node) if node.as_bool() == Some(true) => None,
                Some(node) => Some(Hit::at(non_root_path, node)),
                None => Some(Hit::missing(
                    container.security_context_path(&["runAsNonRoot"]),
                    container.node,
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn container_settings_override_the_pod() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: a\n  - name: b\n    securityContext: {runAsUser: 0}\n  - name: c\n    securityContext: {runAsNonRoot: false, runAsUser: 1000}\n";
        assert_eq!(
            hits("PAL-K8S-003", manifest),
            [(
                "spec.containers[1].securityContext.runAsUser".to_owned(),
                "0".to_owned()
            )]
        );
        let bare =
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n";
        assert_eq!(
            hits("PAL-K8S-003", bare),
            [(
                "spec.containers[0].securityContext.runAsNonRoot".to_owned(),
                "unset".to_owned()
            )]
        );
    }
}
