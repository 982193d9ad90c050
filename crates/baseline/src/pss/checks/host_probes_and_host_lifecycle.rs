//! `hostProbesAndHostLifecycle` (baseline, v1.34+): probes and lifecycle handlers may not target
//! another host.
//!
//! Restricted fields: `host` of `httpGet` and `tcpSocket` in the liveness, readiness and startup
//! probes and in the `postStart` / `preStop` handlers of every container. Allowed: empty, unset.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize, sorted_set},
};

pub(crate) const CHECK: Check = Check {
    id: "hostProbesAndHostLifecycle",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 34,
        check: host_probes_and_host_lifecycle_1_34,
        overrides: &[],
    }],
};

const HANDLERS: &[&[&str]] = &[
    &["livenessProbe"],
    &["readinessProbe"],
    &["startupProbe"],
    &["lifecycle", "postStart"],
    &["lifecycle", "preStop"],
];

fn host_probes_and_host_lifecycle_1_34(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut forbidden_hosts = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        let mut bad = false;
        for handler_keys in HANDLERS {
            let Some(handler) = container.node.at(handler_keys) else {
                continue;
            };
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = handler.at(&[action, "host"])
                    && let Some(text) = host.as_str()
                    && !text.is_empty()
                {
                    bad = true;
                    forbidden_hosts.push(text.to_owned());
                    at.get_or_insert_with(|| {
                        (
                            format!(
                                "{}.{}.{action}.host",
                                container.path,
                                handler_keys.join(".")
                            ),
                            host.line,
                        )
                    });
                }
            }
        }
        if bad {
            bad_containers.push(container.name.to_owned());
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    // Upstream collects both in sets, so names and hosts come out sorted and deduplicated.
    let bad_containers = sorted_set(bad_containers);
    let forbidden_hosts = sorted_set(forbidden_hosts);
    Some(Forbidden {
        reason: "probe or lifecycle host".to_owned(),
        detail: format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                forbidden_hosts.len()
            ),
            join_quote(&forbidden_hosts)
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn hosts_in_probes_and_handlers_are_forbidden_from_1_34() {
        let pod = "spec:\n  containers:\n  - name: b\n    livenessProbe:\n      httpGet: {host: 10.0.0.1, port: 80}\n    lifecycle:\n      preStop:\n        tcpSocket: {host: example.com, port: 80}\n  - name: a\n    readinessProbe:\n      tcpSocket: {host: '', port: 80}\n";
        assert_eq!(
            detail("hostProbesAndHostLifecycle", 34, pod),
            "container \"b\" uses probe or lifecycle hosts \"10.0.0.1\", \"example.com\""
        );
        let empty_host = "spec:\n  containers:\n  - name: a\n    startupProbe:\n      httpGet: {host: '', port: 80}\n";
        assert_eq!(
            detail("hostProbesAndHostLifecycle", 37, empty_host),
            "allowed"
        );
    }
}
