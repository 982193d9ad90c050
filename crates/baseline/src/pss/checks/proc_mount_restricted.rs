//! `procMount_restricted` (restricted, v1.35+): the default `/proc` masks, even in a user
//! namespace.
//!
//! When v1.35 relaxed the baseline `procMount` check for pods with `hostUsers: false`, upstream
//! kept the unconditional rule for the restricted level in this check, which overrides
//! `procMount` there.

use crate::pss::{
    Level,
    checks::{Check, VersionedCheck, proc_mount::proc_mount_1_0},
};

pub(crate) const CHECK: Check = Check {
    id: "procMount_restricted",
    level: Level::Restricted,
    versions: &[VersionedCheck {
        minimum_minor: 35,
        check: proc_mount_1_0,
        overrides: &["procMount"],
    }],
};

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn user_namespaces_do_not_relax_restricted() {
        let pod = "spec:\n  hostUsers: false\n  containers:\n  - name: a\n    securityContext: {procMount: Unmasked}\n";
        assert_eq!(
            detail("procMount_restricted", 35, pod),
            "container \"a\" must not set securityContext.procMount to \"Unmasked\""
        );
    }
}
