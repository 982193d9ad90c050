//! `runAsUser` (restricted, v1.23+; relaxed for user namespaces in v1.35): containers must not
//! set UID 0.
//!
//! Restricted fields: `spec.securityContext.runAsUser` and every container's
//! `securityContext.runAsUser`. Allowed: non-zero, unset. From v1.35 a pod with
//! `hostUsers: false` passes unconditionally.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize},
};

pub(crate) const CHECK: Check = Check {
    id: "runAsUser",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            minimum_minor: 23,
            check: run_as_user_1_23,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 35,
            check: run_as_user_1_35,
            overrides: &[],
        },
    ],
};

fn run_as_user_1_23(pod: &Pod<'_>) -> Option<Forbidden> {
    let keys = ["runAsUser"];
    let mut bad_setters = Vec::new();
    let mut at = None;
    if let Some(node) = pod.security_context(&keys)
        && node.as_i64() == Some(0)
    {
        bad_setters.push("pod".to_owned());
        at = Some((pod.security_context_path(&keys), node.line));
    }
    let mut bad_containers = Vec::new();
    for container in pod.containers() {
        if let Some(node) = container.security_context(&keys)
            && node.as_i64() == Some(0)
        {
            bad_containers.push(container.name);
            at.get_or_insert_with(|| (container.security_context_path(&keys), node.line));
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers)
        ));
    }
    if bad_setters.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "runAsUser=0".to_owned(),
        detail: format!("{} must not set runAsUser=0", bad_setters.join(" and ")),
        at,
    })
}

fn run_as_user_1_35(pod: &Pod<'_>) -> Option<Forbidden> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_user_1_23(pod)
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn uid_zero_is_forbidden() {
        let pod = "spec:\n  securityContext: {runAsUser: 0}\n  containers:\n  - name: a\n    securityContext: {runAsUser: 0}\n  - name: b\n    securityContext: {runAsUser: 1000}\n";
        assert_eq!(
            detail("runAsUser", 23, pod),
            "pod and container \"a\" must not set runAsUser=0"
        );
        let user_namespace = pod.replace("spec:\n", "spec:\n  hostUsers: false\n");
        assert_eq!(
            detail("runAsUser", 34, &user_namespace),
            "pod and container \"a\" must not set runAsUser=0"
        );
        assert_eq!(detail("runAsUser", 35, &user_namespace), "allowed");
    }
}
