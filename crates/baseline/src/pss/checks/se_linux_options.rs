//! `seLinuxOptions` (baseline, v1.0+; allow-list grown in v1.31): custom SELinux labels.
//!
//! Restricted fields: `seLinuxOptions.type` of the pod and every container (allowed: empty,
//! `container_t`, `container_init_t`, `container_kvm_t`, and from v1.31 `container_engine_t`),
//! and `seLinuxOptions.user` / `.role` (allowed: empty).

use crate::{
    pss::{
        Level,
        checks::{Check, Forbidden, VersionedCheck},
        pod::{Pod, join_quote, pluralize, sorted_set},
    },
    yaml::Node,
};

pub(crate) const CHECK: Check = Check {
    id: "seLinuxOptions",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            minimum_minor: 0,
            check: se_linux_options_1_0,
            overrides: &[],
        },
        VersionedCheck {
            minimum_minor: 31,
            check: se_linux_options_1_31,
            overrides: &[],
        },
    ],
};

const ALLOWED_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const ALLOWED_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    se_linux_options(pod, ALLOWED_TYPES_1_0)
}

fn se_linux_options_1_31(pod: &Pod<'_>) -> Option<Forbidden> {
    se_linux_options(pod, ALLOWED_TYPES_1_31)
}

#[derive(Default)]
struct Findings {
    bad_types: Vec<String>,
    set_user: bool,
    set_role: bool,
}

impl Findings {
    fn valid(&mut self, options: &Node, allowed_types: &[&str]) -> bool {
        let text = |key: &str| options.get(key).and_then(Node::as_str).unwrap_or("");
        let mut valid = true;
        if !allowed_types.contains(&text("type")) {
            valid = false;
            self.bad_types.push(text("type").to_owned());
        }
        if !text("user").is_empty() {
            valid = false;
            self.set_user = true;
        }
        if !text("role").is_empty() {
            valid = false;
            self.set_role = true;
        }
        valid
    }
}

fn se_linux_options(pod: &Pod<'_>, allowed_types: &[&str]) -> Option<Forbidden> {
    let mut findings = Findings::default();
    let mut bad_setters = Vec::new();
    let mut at = None;
    if let Some(options) = pod.security_context(&["seLinuxOptions"])
        && !options.is_null()
        && !findings.valid(options, allowed_types)
    {
        bad_setters.push("pod".to_owned());
        at = Some((pod.security_context_path(&["seLinuxOptions"]), options.line));
    }
    let mut bad_containers = Vec::new();
    for container in pod.containers() {
        if let Some(options) = container.security_context(&["seLinuxOptions"])
            && !options.is_null()
            && !findings.valid(options, allowed_types)
        {
            bad_containers.push(container.name);
            at.get_or_insert_with(|| {
                (
                    container.security_context_path(&["seLinuxOptions"]),
                    options.line,
                )
            });
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
    // Upstream only lists user and role when a type is bad too; the detail is kept as it is.
    let mut bad_data = Vec::new();
    let bad_types = sorted_set(findings.bad_types);
    if !bad_types.is_empty() {
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
        if findings.set_user {
            bad_data.push("user may not be set".to_owned());
        }
        if findings.set_role {
            bad_data.push("role may not be set".to_owned());
        }
    }
    Some(Forbidden {
        reason: "seLinuxOptions".to_owned(),
        detail: format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            bad_setters.join(" and "),
            bad_data.join("; ")
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn selinux_types_follow_the_version() {
        let pod = "spec:\n  containers:\n  - name: a\n    securityContext:\n      seLinuxOptions: {type: container_engine_t}\n";
        assert_eq!(
            detail("seLinuxOptions", 30, pod),
            "container \"a\" set forbidden securityContext.seLinuxOptions: type \"container_engine_t\""
        );
        assert_eq!(detail("seLinuxOptions", 31, pod), "allowed");
        let pod = "spec:\n  securityContext:\n    seLinuxOptions: {type: spc_t, user: u, role: r}\n  containers: []\n";
        assert_eq!(
            detail("seLinuxOptions", 37, pod),
            "pod set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set; role may not be set"
        );
        let pod = "spec:\n  securityContext:\n    seLinuxOptions: {user: u}\n";
        assert_eq!(
            detail("seLinuxOptions", 37, pod),
            "pod set forbidden securityContext.seLinuxOptions: "
        );
    }
}
