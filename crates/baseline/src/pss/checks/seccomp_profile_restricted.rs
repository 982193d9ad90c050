//! `seccompProfile_restricted` (restricted, v1.19+; Windows pods exempt from v1.25): a seccomp
//! profile must be set.
//!
//! Restricted fields: `seccompProfile.type` of the pod and every container. Allowed:
//! `RuntimeDefault`, `Localhost`; a container may leave it unset when the pod sets a valid one.
//! Overrides `seccompProfile_baseline`.

use crate::pss::{
    Level,
    checks::{
        Check, Forbidden, PodAndContainers, VersionedCheck, bad_profile_types,
        seccomp_profile_baseline::{seccomp_type, valid_seccomp_type},
    },
    pod::{Pod, join_quote, pluralize, sorted_set},
};

pub(crate) const CHECK: Check = Check {
    id: "seccompProfile_restricted",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            minimum_minor: 19,
            check: seccomp_profile_restricted_1_19,
            overrides: &["seccompProfile_baseline"],
        },
        VersionedCheck {
            minimum_minor: 25,
            check: seccomp_profile_restricted_1_25,
            overrides: &["seccompProfile_baseline"],
        },
    ],
};

fn seccomp_profile_restricted_1_19(pod: &Pod<'_>) -> Option<Forbidden> {
    let PodAndContainers {
        setters: bad_setters,
        values: bad_values,
        at,
        unset: implicitly_bad,
        unset_at: implicit_at,
    } = bad_profile_types(pod, "seccompProfile", seccomp_type, valid_seccomp_type);
    if !bad_setters.is_empty() {
        return Some(Forbidden {
            reason: "seccompProfile".to_owned(),
            detail: format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                bad_setters.join(" and "),
                join_quote(&sorted_set(bad_values))
            ),
            at,
        });
    }
    if !implicitly_bad.is_empty() {
        return Some(Forbidden {
            reason: "seccompProfile".to_owned(),
            detail: format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", "containers", implicitly_bad.len()),
                join_quote(&implicitly_bad)
            ),
            at: implicit_at,
        });
    }
    None
}

fn seccomp_profile_restricted_1_25(pod: &Pod<'_>) -> Option<Forbidden> {
    // Pod validation rejects seccomp fields on Windows pods, so upstream admits them without.
    if pod.is_windows() {
        return None;
    }
    seccomp_profile_restricted_1_19(pod)
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn profile_must_be_set_by_pod_or_every_container() {
        let pod = "spec:\n  containers:\n  - name: a\n  - name: b\n    securityContext:\n      seccompProfile: {type: Localhost, localhostProfile: p.json}\n";
        assert_eq!(
            detail("seccompProfile_restricted", 19, pod),
            "pod or container \"a\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
        );
        let bad = "spec:\n  securityContext:\n    seccompProfile: {type: Unconfined}\n  containers:\n  - name: a\n";
        assert_eq!(
            detail("seccompProfile_restricted", 19, bad),
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\""
        );
        let windows = format!("{}  os: {{name: windows}}\n", pod);
        assert_ne!(detail("seccompProfile_restricted", 24, &windows), "allowed");
        assert_eq!(detail("seccompProfile_restricted", 25, &windows), "allowed");
    }
}
