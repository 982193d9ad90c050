//! PAL-K8S-009: a container binds a port on the node.

use crate::{
    practices::{Hit, Reference, Rule, Severity, Target, runtime_containers},
    yaml::Node,
};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-009",
    severity: Severity::Medium,
    title: "Host port used",
    description: "A hostPort exposes the container on the node's address, bypassing Services and NetworkPolicies, and limits where the pod can be scheduled.",
    remediation: "Remove ports[].hostPort and expose the container through a Service.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_26",
    },
    Reference {
        source: "kubescape",
        id: "C-0044",
    },
    Reference {
        source: "trivy",
        id: "KSV024",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for container in runtime_containers(target) {
        let ports = container
            .node
            .get("ports")
            .map(Node::items)
            .unwrap_or_default();
        for (port_idx, port) in ports.iter().enumerate() {
            if let Some(node) = port.get("hostPort")
                && node.as_i64().is_some_and(|host_port| host_port != 0)
            {
                hits.push(Hit::at(
                    format!("{}.ports[{port_idx}].hostPort", container.path),
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
    fn finds_host_ports() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    ports: [{containerPort: 80}, {containerPort: 443, hostPort: 8443}]\n";
        assert_eq!(
            hits("PAL-K8S-009", manifest),
            [(
                "spec.containers[0].ports[1].hostPort".to_owned(),
                "8443".to_owned()
            )]
        );
    }
}
