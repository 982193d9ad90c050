//! `allowPrivilegeEscalation` (restricted, v1.8+; Windows pods exempt from v1.25): containers
//! must not gain more privileges than their parent process.
//!
//! Restricted field: `securityContext.allowPrivilegeEscalation` of every container. Allowed:
//! false only; unset is forbidden.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize},
};

pub(crate) const CHECK: Check = Check {
    id: "allowPrivilegeEscalation",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            minimum_minor: 8,
            check: allow_privilege_escalation_1_8,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 25,
            check: allow_privilege_escalation_1_25,
            overrides: &[],
        },
    ],
};

fn allow_privilege_escalation_1_8(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        let node = container.security_context(&["allowPrivilegeEscalation"]);
        if node.and_then(|node| node.as_bool()) != Some(false) {
            bad_containers.push(container.name);
            at.get_or_insert_with(|| {
                (
                    container.security_context_path(&["allowPrivilegeEscalation"]),
                    node.unwrap_or(container.node).line,
                )
            });
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "allowPrivilegeEscalation != false".to_owned(),
        detail: format!(
            "{} {} must set securityContext.allowPrivilegeEscalation=false",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers)
        ),
        at,
    })
}

fn allow_privilege_escalation_1_25(pod: &Pod<'_>) -> Option<Forbidden> {
    // Pod validation rejects the field on Windows pods, so upstream admits them without it.
    if pod.is_windows() {
        return None;
    }
    allow_privilege_escalation_1_8(pod)
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn must_be_explicitly_false_except_on_windows_from_1_25() {
        let pod = "spec:\n  os: {name: windows}\n  containers:\n  - name: a\n  - name: b\n    securityContext: {allowPrivilegeEscalation: false}\n";
        let expected = "container \"a\" must set securityContext.allowPrivilegeEscalation=false";
        assert_eq!(detail("allowPrivilegeEscalation", 24, pod), expected);
        assert_eq!(detail("allowPrivilegeEscalation", 25, pod), "allowed");
        let linux = pod.replace("windows", "linux");
        assert_eq!(detail("allowPrivilegeEscalation", 25, &linux), expected);
    }
}
