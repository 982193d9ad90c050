//! `privileged` (baseline, v1.0+): privileged containers disable most security mechanisms.
//!
//! Restricted fields: `securityContext.privileged` of every container. Allowed: false, unset.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize},
};

pub(crate) const CHECK: Check = Check {
    id: "privileged",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: privileged_1_0,
        overrides: &[],
    }],
};

fn privileged_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        if let Some(node) = container.security_context(&["privileged"])
            && node.as_bool() == Some(true)
        {
            at.get_or_insert_with(|| (container.security_context_path(&["privileged"]), node.line));
            bad_containers.push(container.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "privileged".to_owned(),
        detail: format!(
            "{} {} must not set securityContext.privileged=true",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers)
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::{detail, run};

    #[test]
    fn privileged_containers_are_forbidden() {
        let pod = "spec:\n  containers:\n  - name: a\n    securityContext: {privileged: true}\n  - name: b\n    securityContext: {privileged: false}\n  initContainers:\n  - name: i\n    securityContext: {privileged: true}\n";
        assert_eq!(
            detail("privileged", 0, pod),
            "containers \"i\", \"a\" must not set securityContext.privileged=true"
        );
        let forbidden = run("privileged", 0, pod).unwrap();
        assert_eq!(forbidden.reason, "privileged");
        assert_eq!(
            forbidden.at,
            Some((
                "spec.initContainers[0].securityContext.privileged".to_owned(),
                9
            ))
        );
        assert_eq!(
            detail("privileged", 37, "spec:\n  containers:\n  - name: a\n"),
            "allowed"
        );
    }
}
