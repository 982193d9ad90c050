//! `capabilities_restricted` (restricted, v1.22+; Windows pods exempt from v1.25): containers
//! must drop `ALL` capabilities and may add back only `NET_BIND_SERVICE`.
//!
//! Restricted fields: `securityContext.capabilities.drop` (must include `ALL`) and
//! `securityContext.capabilities.add` (allowed: `NET_BIND_SERVICE`) of every container.
//! Overrides `capabilities_baseline`.

use crate::{
    pss::{
        Level,
        checks::{Check, Forbidden, VersionedCheck},
        pod::{Pod, join_quote, pluralize, sorted_set},
    },
    yaml::Node,
};

pub(crate) const CHECK: Check = Check {
    id: "capabilities_restricted",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            minimum_minor: 22,
            check: capabilities_restricted_1_22,
            overrides: &["capabilities_baseline"],
        },
        VersionedCheck {
            minimum_minor: 25,
            check: capabilities_restricted_1_25,
            overrides: &["capabilities_baseline"],
        },
    ],
};

fn capabilities_restricted_1_22(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_capabilities = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        let capabilities = container
            .security_context(&["capabilities"])
            .filter(|node| !node.is_null());
        let Some(capabilities) = capabilities else {
            missing_drop_all.push(container.name);
            at.get_or_insert_with(|| {
                (
                    container.security_context_path(&["capabilities", "drop"]),
                    container.node.line,
                )
            });
            continue;
        };
        let drop = capabilities
            .get("drop")
            .map(Node::items)
            .unwrap_or_default();
        if !drop
            .iter()
            .any(|capability| capability.as_str() == Some("ALL"))
        {
            missing_drop_all.push(container.name);
            at.get_or_insert_with(|| {
                (
                    container.security_context_path(&["capabilities", "drop"]),
                    capabilities.line,
                )
            });
        }
        let add = capabilities.get("add").map(Node::items).unwrap_or_default();
        let mut added_forbidden = false;
        for (capability_idx, capability) in add.iter().enumerate() {
            let name = capability.as_str().unwrap_or("");
            if name != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden_capabilities.push(name.to_owned());
                at.get_or_insert_with(|| {
                    (
                        format!(
                            "{}[{capability_idx}]",
                            container.security_context_path(&["capabilities", "add"])
                        ),
                        capability.line,
                    )
                });
            }
        }
        if added_forbidden {
            adding_forbidden.push(container.name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} {} must set securityContext.capabilities.drop=[\"ALL\"]",
            pluralize("container", "containers", missing_drop_all.len()),
            join_quote(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", adding_forbidden.len()),
            join_quote(&adding_forbidden),
            join_quote(&sorted_set(forbidden_capabilities))
        ));
    }
    if details.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "unrestricted capabilities".to_owned(),
        detail: details.join("; "),
        at,
    })
}

fn capabilities_restricted_1_25(pod: &Pod<'_>) -> Option<Forbidden> {
    // Pod validation rejects capabilities on Windows pods, so upstream admits them without.
    if pod.is_windows() {
        return None;
    }
    capabilities_restricted_1_22(pod)
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn drop_all_and_only_net_bind_service() {
        let pod = "spec:\n  containers:\n  - name: a\n  - name: b\n    securityContext:\n      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE, NET_RAW]}\n  - name: c\n    securityContext:\n      capabilities: {drop: [all]}\n";
        assert_eq!(
            detail("capabilities_restricted", 22, pod),
            "containers \"a\", \"c\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"b\" must not include \"NET_RAW\" in securityContext.capabilities.add"
        );
        let windows = format!("{pod}  os: {{name: windows}}\n");
        assert_eq!(detail("capabilities_restricted", 25, &windows), "allowed");
    }
}
