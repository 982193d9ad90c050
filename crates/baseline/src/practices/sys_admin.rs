//! PAL-K8S-007: the container adds `SYS_ADMIN`.

use crate::{
    practices::{Hit, Reference, Rule, Severity, Target, capability_is},
    yaml::Node,
};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-007",
    severity: Severity::High,
    title: "SYS_ADMIN capability added",
    description: "CAP_SYS_ADMIN allows mounting file systems, namespace operations and much of what root can do; it is the capability most container escapes rely on.",
    remediation: "Remove SYS_ADMIN from securityContext.capabilities.add and find the narrower capability the workload needs.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_39",
    },
    Reference {
        source: "kubescape",
        id: "C-0046",
    },
    Reference {
        source: "trivy",
        id: "KSV005",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for container in target.pod.containers() {
        let added = container
            .security_context(&["capabilities", "add"])
            .map(Node::items)
            .unwrap_or_default();
        for (capability_idx, capability) in added.iter().enumerate() {
            if capability
                .as_str()
                .is_some_and(|name| capability_is(name, "SYS_ADMIN"))
            {
                let path = container.security_context_path(&["capabilities", "add"]);
                hits.push(Hit::at(format!("{path}[{capability_idx}]"), capability));
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn finds_sys_admin_in_any_spelling() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    securityContext:\n      capabilities: {add: [NET_ADMIN, CAP_SYS_ADMIN]}\n";
        assert_eq!(
            hits("PAL-K8S-007", manifest),
            [(
                "spec.containers[0].securityContext.capabilities.add[1]".to_owned(),
                "CAP_SYS_ADMIN".to_owned()
            )]
        );
    }
}
