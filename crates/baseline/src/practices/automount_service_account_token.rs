//! PAL-K8S-018: the service account token is mounted into the pod.

use crate::practices::{Hit, Reference, Rule, Severity, Target};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-018",
    severity: Severity::Low,
    title: "Service account token mounted",
    description: "Unless automountServiceAccountToken is false, every container gets a token for the Kubernetes API; an intruder uses it to explore or change the cluster with the service account's rights.",
    remediation: "Set automountServiceAccountToken: false in the pod spec (or on its ServiceAccount) unless the workload calls the Kubernetes API.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_38",
    },
    Reference {
        source: "kubescape",
        id: "C-0034",
    },
    Reference {
        source: "trivy",
        id: "KSV036",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    let path = format!("{}.automountServiceAccountToken", target.pod.spec_path);
    match target.pod.spec.get("automountServiceAccountToken") {
        Some(node) if node.as_bool() == Some(false) => Vec::new(),
        Some(node) => vec![Hit::at(path, node)],
        None => vec![Hit::missing(path, target.pod.spec)],
    }
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn token_must_be_opted_out() {
        let manifest =
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}]\n";
        assert_eq!(
            hits("PAL-K8S-018", manifest),
            [(
                "spec.automountServiceAccountToken".to_owned(),
                "unset".to_owned()
            )]
        );
        let opted_out =
            manifest.replace("spec:\n", "spec:\n  automountServiceAccountToken: false\n");
        assert!(hits("PAL-K8S-018", &opted_out).is_empty());
    }
}
