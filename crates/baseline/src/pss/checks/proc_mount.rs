//! `procMount` (baseline, v1.0+; relaxed in v1.35): the default `/proc` masks are required.
//!
//! Restricted field: `securityContext.procMount` of every container. Allowed: `Default`, unset.
//! From v1.35 a pod in its own user namespace (`spec.hostUsers: false`) may use any value; before
//! that, the relaxation sat behind the alpha `UserNamespacesPodSecurityStandards` gate, off by
//! default and dropped in Kubernetes 1.35, so v1.0 applies it never. At the restricted level
//! `procMount_restricted` replaces this check from v1.35.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize, sorted_set},
};

pub(crate) const CHECK: Check = Check {
    id: "procMount",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            minimum_minor: 0,
            check: proc_mount_1_0,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 35,
            check: proc_mount_1_35_baseline,
            overrides: &[],
        },
    ],
};

/// Upstream's `procMount_1_0`, also the restricted check from v1.35.
pub(crate) fn proc_mount_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut forbidden_types = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        let Some(node) = container.security_context(&["procMount"]) else {
            continue;
        };
        if node.is_null() {
            continue;
        }
        let value = node.as_str().map_or_else(|| node.display(), str::to_owned);
        if value != "Default" {
            bad_containers.push(container.name);
            forbidden_types.push(value);
            at.get_or_insert_with(|| (container.security_context_path(&["procMount"]), node.line));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "procMount".to_owned(),
        detail: format!(
            "{} {} must not set securityContext.procMount to {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            join_quote(&sorted_set(forbidden_types))
        ),
        at,
    })
}

fn proc_mount_1_35_baseline(pod: &Pod<'_>) -> Option<Forbidden> {
    if pod.in_user_namespace() {
        return None;
    }
    proc_mount_1_0(pod)
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn unmasked_is_relaxed_for_user_namespaces_from_1_35() {
        let pod = "spec:\n  hostUsers: false\n  containers:\n  - name: a\n    securityContext: {procMount: Unmasked}\n";
        let expected = "container \"a\" must not set securityContext.procMount to \"Unmasked\"";
        assert_eq!(detail("procMount", 34, pod), expected);
        assert_eq!(detail("procMount", 35, pod), "allowed");
        let host_users = pod.replace("hostUsers: false", "hostUsers: true");
        assert_eq!(detail("procMount", 35, &host_users), expected);
        let default = pod.replace("Unmasked", "Default");
        assert_eq!(detail("procMount", 0, &default), "allowed");
    }
}
