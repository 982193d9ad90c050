//! `runAsNonRoot` (restricted, v1.0+; relaxed for user namespaces in v1.35): containers must
//! run as a non-root user.
//!
//! Restricted fields: `spec.securityContext.runAsNonRoot` and every container's
//! `securityContext.runAsNonRoot`. Allowed: true; unset in a container when the pod sets true.
//! From v1.35 a pod with `hostUsers: false` passes unconditionally (upstream had this relaxation
//! behind an alpha gate, off by default, until 1.35 dropped the gate and made it a v1.35 rule).

use crate::pss::{
    Level,
    checks::{
        Check, Forbidden, PodAndContainers, Setting, VersionedCheck, judge_pod_and_containers,
    },
    pod::{Pod, join_quote, pluralize},
};

pub(crate) const CHECK: Check = Check {
    id: "runAsNonRoot",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            minimum_minor: 0,
            check: run_as_non_root_1_0,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 35,
            check: run_as_non_root_1_35,
            overrides: &[],
        },
    ],
};

fn run_as_non_root_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let PodAndContainers {
        setters: bad_setters,
        at,
        unset: implicitly_bad,
        unset_at: implicit_at,
        ..
    } = judge_pod_and_containers(pod, "runAsNonRoot", &["runAsNonRoot"], |node| {
        match node.as_bool() {
            Some(true) => Setting::Allowed,
            Some(false) => Setting::Refused("false".to_owned()),
            None => Setting::Unset,
        }
    });
    if !bad_setters.is_empty() {
        return Some(Forbidden {
            reason: "runAsNonRoot != true".to_owned(),
            detail: format!(
                "{} must not set securityContext.runAsNonRoot=false",
                bad_setters.join(" and ")
            ),
            at,
        });
    }
    if !implicitly_bad.is_empty() {
        return Some(Forbidden {
            reason: "runAsNonRoot != true".to_owned(),
            detail: format!(
                "pod or {} {} must set securityContext.runAsNonRoot=true",
                pluralize("container", "containers", implicitly_bad.len()),
                join_quote(&implicitly_bad)
            ),
            at: implicit_at,
        });
    }
    None
}

fn run_as_non_root_1_35(pod: &Pod<'_>) -> Option<Forbidden> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_non_root_1_0(pod)
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn explicit_false_beats_missing() {
        let pod = "spec:\n  securityContext: {runAsNonRoot: false}\n  containers:\n  - name: a\n    securityContext: {runAsNonRoot: false}\n  - name: b\n";
        assert_eq!(
            detail("runAsNonRoot", 0, pod),
            "pod and container \"a\" must not set securityContext.runAsNonRoot=false"
        );
        let pod = "spec:\n  containers:\n  - name: a\n  - name: b\n    securityContext: {runAsNonRoot: true}\n";
        assert_eq!(
            detail("runAsNonRoot", 0, pod),
            "pod or container \"a\" must set securityContext.runAsNonRoot=true"
        );
        let pod_level =
            "spec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: a\n";
        assert_eq!(detail("runAsNonRoot", 0, pod_level), "allowed");
    }

    #[test]
    fn user_namespaces_relax_from_1_35() {
        let pod = "spec:\n  hostUsers: false\n  containers:\n  - name: a\n";
        assert_eq!(
            detail("runAsNonRoot", 34, pod),
            "pod or container \"a\" must set securityContext.runAsNonRoot=true"
        );
        assert_eq!(detail("runAsNonRoot", 35, pod), "allowed");
    }
}
