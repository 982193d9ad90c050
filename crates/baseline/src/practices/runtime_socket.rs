//! PAL-K8S-006: the container runtime's socket is mounted into the pod.

use crate::practices::{
    Hit, Reference, Rule, Severity, Target, host_path_volumes, sensitive_host_path::normalise,
};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-006",
    severity: Severity::Critical,
    title: "Container runtime socket mounted",
    description: "Whoever can talk to the Docker, containerd, CRI-O or Podman socket can start a privileged container on the node and own it.",
    remediation: "Remove the hostPath volume of the runtime socket (or of the directory holding it); use the Kubernetes API or a dedicated build service instead.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_27",
    },
    Reference {
        source: "kubescape",
        id: "C-0074",
    },
    Reference {
        source: "kube-linter",
        id: "docker-sock",
    },
    Reference {
        source: "trivy",
        id: "KSV006",
    },
];

/// Runtime sockets, and the directories that contain them.
const SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/podman/podman.sock",
    "/run/podman/podman.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run",
    "/run",
    "/var/run/containerd",
    "/run/containerd",
    "/var/run/crio",
    "/run/crio",
    "/var/run/podman",
    "/run/podman",
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    host_path_volumes(target, |path| SOCKETS.contains(&normalise(path).as_str()))
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn sockets_and_their_directories() {
        let manifest = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: a}]\n          volumes:\n          - {name: d, hostPath: {path: /var/run/docker.sock}}\n          - {name: c, hostPath: {path: /run/containerd/}}\n          - {name: x, hostPath: {path: /var/run/app}}\n";
        assert_eq!(
            hits("PAL-K8S-006", manifest),
            [
                (
                    "spec.jobTemplate.spec.template.spec.volumes[0].hostPath.path".to_owned(),
                    "/var/run/docker.sock".to_owned()
                ),
                (
                    "spec.jobTemplate.spec.template.spec.volumes[1].hostPath.path".to_owned(),
                    "/run/containerd/".to_owned()
                ),
            ]
        );
    }
}
