//! `hostNamespaces` (baseline, v1.0+): sharing the host's network, PID or IPC namespace.
//!
//! Restricted fields: `spec.hostNetwork`, `spec.hostPID`, `spec.hostIPC`. Allowed: false, unset.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::Pod,
};

pub(crate) const CHECK: Check = Check {
    id: "hostNamespaces",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: host_namespaces_1_0,
        overrides: &[],
    }],
};

fn host_namespaces_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut host_namespaces = Vec::new();
    let mut at = None;
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod.spec_flag(key) {
            host_namespaces.push(format!("{key}=true"));
            if let Some(node) = pod.spec.get(key) {
                at.get_or_insert_with(|| (format!("{}.{key}", pod.spec_path), node.line));
            }
        }
    }
    if host_namespaces.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "host namespaces".to_owned(),
        detail: host_namespaces.join(", "),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn host_namespaces_are_listed_in_order() {
        let pod =
            "spec:\n  hostIPC: true\n  hostNetwork: true\n  hostPID: false\n  containers: []\n";
        assert_eq!(
            detail("hostNamespaces", 0, pod),
            "hostNetwork=true, hostIPC=true"
        );
        assert_eq!(
            detail("hostNamespaces", 0, "spec:\n  hostPID: false\n"),
            "allowed"
        );
    }
}
