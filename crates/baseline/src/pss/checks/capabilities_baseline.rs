//! `capabilities_baseline` (baseline, v1.0+): only the default capabilities may be added.
//!
//! Restricted field: `securityContext.capabilities.add` of every container. Allowed: the
//! container runtime's default set (`AUDIT_WRITE`, `CHOWN`, … `SYS_CHROOT`), spelled without the
//! `CAP_` prefix. At the restricted level `capabilities_restricted` replaces it from v1.22.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize, sorted_set},
};

pub(crate) const CHECK: Check = Check {
    id: "capabilities_baseline",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: capabilities_baseline_1_0,
        overrides: &[],
    }],
};

const ALLOWED_1_0: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut non_default = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        let added = container
            .security_context(&["capabilities", "add"])
            .map(|node| node.items())
            .unwrap_or_default();
        let mut valid = true;
        for (capability_idx, capability) in added.iter().enumerate() {
            let name = capability.as_str().unwrap_or("");
            if !ALLOWED_1_0.contains(&name) {
                valid = false;
                non_default.push(name.to_owned());
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
        if !valid {
            bad_containers.push(container.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "non-default capabilities".to_owned(),
        detail: format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            join_quote(&sorted_set(non_default))
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn only_default_capabilities_may_be_added() {
        let pod = "spec:\n  containers:\n  - name: a\n    securityContext:\n      capabilities:\n        add: [CHOWN, NET_RAW, CAP_CHOWN, NET_RAW]\n";
        assert_eq!(
            detail("capabilities_baseline", 0, pod),
            "container \"a\" must not include \"CAP_CHOWN\", \"NET_RAW\" in securityContext.capabilities.add"
        );
        let pod = "spec:\n  containers:\n  - name: a\n    securityContext:\n      capabilities: {add: [KILL], drop: [ALL]}\n";
        assert_eq!(detail("capabilities_baseline", 0, pod), "allowed");
    }
}
