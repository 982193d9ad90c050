//! PAL-K8S-020: a Secret passed to the container as environment variables.

use crate::{
    practices::{Hit, Reference, Rule, Severity, Target},
    yaml::Node,
};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-020",
    severity: Severity::Info,
    title: "Secret exposed as environment variable",
    description: "Environment variables leak into child processes, crash dumps, logs and /proc/<pid>/environ; Secrets mounted as files do not, and can be rotated without a restart.",
    remediation: "Mount the Secret as a volume and read it from the file.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "CIS Kubernetes Benchmark",
        id: "5.4.1",
    },
    Reference {
        source: "checkov",
        id: "CKV_K8S_35",
    },
    Reference {
        source: "kube-linter",
        id: "read-secret-from-env-var",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for container in target.pod.containers() {
        let env = container
            .node
            .get("env")
            .map(Node::items)
            .unwrap_or_default();
        for (env_idx, variable) in env.iter().enumerate() {
            if let Some(node) = variable.at(&["valueFrom", "secretKeyRef"]) {
                hits.push(Hit::at(
                    format!("{}.env[{env_idx}].valueFrom.secretKeyRef", container.path),
                    node,
                ));
            }
        }
        let env_from = container
            .node
            .get("envFrom")
            .map(Node::items)
            .unwrap_or_default();
        for (source_idx, source) in env_from.iter().enumerate() {
            if let Some(node) = source.get("secretRef") {
                hits.push(Hit::at(
                    format!("{}.envFrom[{source_idx}].secretRef", container.path),
                    node,
                ));
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn secret_references_in_env_and_env_from() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    env:\n    - name: X\n      valueFrom: {secretKeyRef: {name: s, key: k}}\n    envFrom:\n    - configMapRef: {name: c}\n    - secretRef: {name: s}\n";
        assert_eq!(
            hits("PAL-K8S-020", manifest),
            [
                (
                    "spec.containers[0].env[0].valueFrom.secretKeyRef".to_owned(),
                    "{name: s, key: k}".to_owned()
                ),
                (
                    "spec.containers[0].envFrom[1].secretRef".to_owned(),
                    "{name: s}".to_owned()
                ),
            ]
        );
    }
}
