//! PAL-K8S-008: `NET_RAW` is not dropped.

use crate::{
    practices::{Hit, Reference, Rule, Severity, Target, capability_is},
    yaml::Node,
};

pub(crate) const RULE: Rule = Rule {
    id: "PAL-K8S-008",
    severity: Severity::Low,
    title: "NET_RAW capability not dropped",
    description: "Container runtimes grant NET_RAW by default; it allows crafting raw packets, for ARP and DNS spoofing against other pods on the node.",
    remediation: "Add ALL (or at least NET_RAW) to securityContext.capabilities.drop, and do not add NET_RAW back.",
    references: REFERENCES,
};

const REFERENCES: &[Reference] = &[
    Reference {
        source: "checkov",
        id: "CKV_K8S_28",
    },
    Reference {
        source: "kube-linter",
        id: "drop-net-raw-capability",
    },
    Reference {
        source: "trivy",
        id: "KSV119",
    },
];

pub(crate) fn check(target: &Target<'_>) -> Vec<Hit> {
    if target.pod.is_windows() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for container in target.pod.containers() {
        let capabilities = container.security_context(&["capabilities"]);
        let list = |key: &str| {
            capabilities
                .and_then(|node| node.get(key))
                .map(Node::items)
                .unwrap_or_default()
        };
        let added = list("add").iter().enumerate().find(|(_, capability)| {
            capability
                .as_str()
                .is_some_and(|name| capability_is(name, "NET_RAW") || capability_is(name, "ALL"))
        });
        if let Some((capability_idx, capability)) = added {
            let path = container.security_context_path(&["capabilities", "add"]);
            hits.push(Hit::at(format!("{path}[{capability_idx}]"), capability));
            continue;
        }
        let dropped = list("drop").iter().any(|capability| {
            capability
                .as_str()
                .is_some_and(|name| capability_is(name, "NET_RAW") || capability_is(name, "ALL"))
        });
        if !dropped {
            let path = container.security_context_path(&["capabilities", "drop"]);
            let hit = match capabilities.and_then(|node| node.get("drop")) {
                Some(node) => Hit::at(path, node),
                None => Hit::missing(path, capabilities.unwrap_or(container.node)),
            };
            hits.push(hit);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use crate::practices::test_support::hits;

    #[test]
    fn net_raw_must_be_dropped_and_not_added() {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    securityContext:\n      capabilities: {drop: [all]}\n  - name: b\n    securityContext:\n      capabilities: {drop: [CHOWN]}\n  - name: c\n    securityContext:\n      capabilities: {drop: [ALL], add: [NET_RAW]}\n  - name: d\n";
        assert_eq!(
            hits("PAL-K8S-008", manifest),
            [
                (
                    "spec.containers[1].securityContext.capabilities.drop".to_owned(),
                    "[CHOWN]".to_owned()
                ),
                (
                    "spec.containers[2].securityContext.capabilities.add[0]".to_owned(),
                    "NET_RAW".to_owned()
                ),
                (
                    "spec.containers[3].securityContext.capabilities.drop".to_owned(),
                    "unset".to_owned()
                ),
            ]
        );
    }
}
