//! PAL-K8S-005: a hostPath volume exposes a sensitive part of the node's file system.

use crate::practices::{Hit, Reference, Rule, Severity, Target, host_path_volumes};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-005",
    severity: Severity::High,
    title: "Sensitive host path mounted",
    description: "A hostPath volume of /, /etc, /proc, /sys, /dev, /boot, /root or the kubelet's and container runtimes' state directories gives the pod the node's credentials, configuration or kernel interfaces.",
    remediation: "Replace the hostPath volume with a configMap, secret, emptyDir or persistent volume; if host access is unavoidable, mount the narrowest path read-only.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "kubescape",
        id: "C-0048",
    },
    Reference {
        source: "kube-linter",
        id: "sensitive-host-mounts",
    },
    Reference {
        source: "trivy",
        id: "KSV023",
    },
];

/// Host directories whose contents (or subdirectories) are sensitive.
const SENSITIVE: &[&str] = &[
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/etc/kubernetes",
];

/// Normalises a host path: collapses repeated slashes and drops a trailing one.
pub(crate) fn normalise(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn is_sensitive(path: &str) -> bool {
    let path = normalise(path);
    SENSITIVE.iter().any(|sensitive| {
        path == *sensitive || (*sensitive != "/" && path.starts_with(&format!("{sensitive}/")))
    })
}

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    host_path_volumes(target, is_sensitive)
}

#[cfg(test)]
mod tests {
    use crate::practices::{sensitive_host_path::is_sensitive, test_support::hits};

    #[test]
    fn sensitive_paths_and_their_children() {
        for path in [
            "/",
            "//",
            "/etc",
            "/etc/",
            "/etc/ssl",
            "/proc/1",
            "/var/lib/kubelet/pods",
        ] {
            assert!(is_sensitive(path), "{path}");
        }
        for path in ["/data", "/etcetera", "/var/lib", "/var/log"] {
            assert!(!is_sensitive(path), "{path}");
        }
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}]\n  volumes:\n  - name: root\n    hostPath: {path: /}\n  - name: logs\n    hostPath: {path: /var/log}\n";
        assert_eq!(
            hits("PAL-K8S-005", manifest),
            [("spec.volumes[0].hostPath.path".to_owned(), "/".to_owned())]
        );
    }
}
