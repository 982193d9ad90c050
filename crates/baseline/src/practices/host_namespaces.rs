//! PAL-K8S-004: the pod shares the host's network, PID or IPC namespace.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-004",
    severity: Severity::High,
    title: "Host namespace shared",
    description: "With hostNetwork, hostPID or hostIPC the pod sees the node's network interfaces, processes or shared memory, and can sniff traffic, signal host processes or read their memory.",
    remediation: "Remove hostNetwork, hostPID and hostIPC from the pod spec, or set them to false.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_17",
    },
    Reference {
        source: "checkov",
        id: "CKV_K8S_18",
    },
    Reference {
        source: "checkov",
        id: "CKV_K8S_19",
    },
    Reference {
        source: "kubescape",
        id: "C-0038",
    },
    Reference {
        source: "kubescape",
        id: "C-0041",
    },
    Reference {
        source: "kube-linter",
        id: "host-pid",
    },
    Reference {
        source: "kube-linter",
        id: "host-ipc",
    },
    Reference {
        source: "kube-linter",
        id: "host-network",
    },
    Reference {
        source: "trivy",
        id: "KSV008",
    },
    Reference {
        source: "trivy",
        id: "KSV009",
    },
    Reference {
        source: "trivy",
        id: "KSV010",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter_map(|key| {
            let node = target.pod.spec.get(key)?;
            (node.as_bool() == Some(true))
                .then(|| Hit::at(format!("{}.{key}", target.pod.spec_path), node))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn each_shared_namespace_is_a_finding() {
        let manifest = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      hostPID: true\n      hostNetwork: true\n      hostIPC: false\n      containers: [{name: a}]\n";
        assert_eq!(
            hits("PAL-K8S-004", manifest),
            [
                (
                    "spec.template.spec.hostNetwork".to_owned(),
                    "true".to_owned()
                ),
                ("spec.template.spec.hostPID".to_owned(), "true".to_owned()),
            ]
        );
    }
}
