//! PAL-K8S-022: a container without a `livenessProbe`.
//!
//! Only regular containers of long-running workloads are checked (see [`missing_probe`]).

use crate::practices::{Hit, Reference, Rule, Severity, Target, missing_probe};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-022",
    severity: Severity::Low,
    title: "Liveness probe missing",
    description: "Without a liveness probe a hung process keeps its pod Running and serving nothing until someone notices.",
    remediation: "Add a livenessProbe (httpGet, tcpSocket, grpc or exec) to every long-running container.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_8",
    },
    Reference {
        source: "kubescape",
        id: "C-0056",
    },
    Reference {
        source: "kube-linter",
        id: "no-liveness-probe",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    missing_probe(target, "livenessProbe")
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn long_running_containers_need_it() {
        let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      initContainers: [{name: i}]\n      containers:\n      - name: a\n      - name: b\n        livenessProbe: {tcpSocket: {port: 80}}\n";
        assert_eq!(
            hits("PAL-K8S-022", manifest),
            [(
                "spec.template.spec.containers[0].livenessProbe".to_owned(),
                "unset".to_owned()
            )]
        );
        let job = manifest.replace("apps/v1\nkind: Deployment", "batch/v1\nkind: Job");
        assert!(hits("PAL-K8S-022", &job).is_empty());
    }
}
