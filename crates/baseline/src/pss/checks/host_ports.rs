//! `hostPorts` (baseline, v1.0+): host ports bypass network isolation.
//!
//! Restricted field: `ports[*].hostPort` of every container. Allowed: 0, unset.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize, sorted_set},
};

pub(crate) const CHECK: Check = Check {
    id: "hostPorts",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: host_ports_1_0,
        overrides: &[],
    }],
};

fn host_ports_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut forbidden_ports = Vec::new();
    let mut at = None;
    for container in pod.containers() {
        let mut valid = true;
        let ports = container
            .node
            .get("ports")
            .map(|node| node.items())
            .unwrap_or_default();
        for (port_idx, port) in ports.iter().enumerate() {
            if let Some(node) = port.get("hostPort")
                && let Some(host_port) = node.as_i64()
                && host_port != 0
            {
                valid = false;
                forbidden_ports.push(host_port.to_string());
                at.get_or_insert_with(|| {
                    (
                        format!("{}.ports[{port_idx}].hostPort", container.path),
                        node.line,
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
    // Upstream keeps the ports in a string set, so they sort as strings ("443" < "80").
    let forbidden_ports = sorted_set(forbidden_ports);
    Some(Forbidden {
        reason: "hostPort".to_owned(),
        detail: format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", forbidden_ports.len()),
            forbidden_ports.join(", ")
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn host_ports_are_forbidden() {
        let pod = "spec:\n  containers:\n  - name: a\n    ports:\n    - {containerPort: 80, hostPort: 80}\n    - {containerPort: 443, hostPort: 443}\n    - {containerPort: 8080, hostPort: 0}\n";
        assert_eq!(
            detail("hostPorts", 0, pod),
            "container \"a\" uses hostPorts 443, 80"
        );
        assert_eq!(
            detail(
                "hostPorts",
                0,
                "spec:\n  containers:\n  - name: a\n    ports: [{containerPort: 80}]\n"
            ),
            "allowed"
        );
    }
}
