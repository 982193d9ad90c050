//! `sysctls` (baseline; v1.0, allow-list grown in v1.27, v1.29, v1.32 and v1.37): only safe,
//! namespaced sysctls.
//!
//! Restricted field: `spec.securityContext.sysctls[*].name`.

use crate::{
    pss::{
        Level,
        checks::{Check, Forbidden, VersionedCheck},
        pod::Pod,
    },
    yaml::Node,
};

pub(crate) const CHECK: Check = Check {
    id: "sysctls",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            minimum_minor: 0,
            check: sysctls_1_0,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 27,
            check: sysctls_1_27,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 29,
            check: sysctls_1_29,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 32,
            check: sysctls_1_32,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 37,
            check: sysctls_1_37,
            overrides: &[],
        },
    ],
};

/// Each revision's additions; a revision allows its own and every earlier group.
const ALLOWED: &[(u32, &[&str])] = &[
    (
        0,
        &[
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.ping_group_range",
            "net.ipv4.ip_unprivileged_port_start",
        ],
    ),
    (27, &["net.ipv4.ip_local_reserved_ports"]),
    (
        29,
        &[
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ],
    ),
    (32, &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]),
    (
        37,
        &[
            "net.ipv4.tcp_slow_start_after_idle",
            "net.ipv4.tcp_notsent_lowat",
        ],
    ),
];

fn sysctls_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    sysctls(pod, 0)
}

fn sysctls_1_27(pod: &Pod<'_>) -> Option<Forbidden> {
    sysctls(pod, 27)
}

fn sysctls_1_29(pod: &Pod<'_>) -> Option<Forbidden> {
    sysctls(pod, 29)
}

fn sysctls_1_32(pod: &Pod<'_>) -> Option<Forbidden> {
    sysctls(pod, 32)
}

fn sysctls_1_37(pod: &Pod<'_>) -> Option<Forbidden> {
    sysctls(pod, 37)
}

fn allowed(name: &str, revision_minor: u32) -> bool {
    ALLOWED
        .iter()
        .filter(|(minor, _)| *minor <= revision_minor)
        .any(|(_, names)| names.contains(&name))
}

fn sysctls(pod: &Pod<'_>, revision_minor: u32) -> Option<Forbidden> {
    let mut forbidden = Vec::new();
    let mut at = None;
    let entries = pod
        .security_context(&["sysctls"])
        .map(Node::items)
        .unwrap_or_default();
    for (sysctl_idx, sysctl) in entries.iter().enumerate() {
        let name = sysctl.get("name").and_then(Node::as_str).unwrap_or("");
        if !allowed(name, revision_minor) {
            forbidden.push(name);
            at.get_or_insert_with(|| {
                (
                    format!(
                        "{}[{sysctl_idx}].name",
                        pod.security_context_path(&["sysctls"])
                    ),
                    sysctl.line,
                )
            });
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "forbidden sysctls".to_owned(),
        detail: forbidden.join(", "),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    fn pod(name: &str) -> String {
        format!(
            "spec:\n  securityContext:\n    sysctls:\n    - {{name: {name}, value: '1'}}\n    - {{name: kernel.msgmax, value: '1'}}\n"
        )
    }

    #[test]
    fn allow_list_grows_with_the_version() {
        for (name, first_minor) in [
            ("net.ipv4.ip_local_reserved_ports", 27),
            ("net.ipv4.tcp_keepalive_probes", 29),
            ("net.ipv4.tcp_rmem", 32),
            ("net.ipv4.tcp_wmem", 32),
            ("net.ipv4.tcp_notsent_lowat", 37),
            ("net.ipv4.tcp_slow_start_after_idle", 37),
        ] {
            assert_eq!(
                detail("sysctls", first_minor - 1, &pod(name)),
                format!("{name}, kernel.msgmax")
            );
            assert_eq!(detail("sysctls", first_minor, &pod(name)), "kernel.msgmax");
        }
        assert_eq!(
            detail("sysctls", 0, &pod("kernel.shm_rmid_forced")),
            "kernel.msgmax"
        );
    }
}
