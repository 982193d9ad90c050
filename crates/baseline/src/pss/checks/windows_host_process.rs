//! `windowsHostProcess` (baseline, v1.0+): Windows HostProcess containers have host access.
//!
//! Restricted fields: `securityContext.windowsOptions.hostProcess` of the pod and every
//! container. Allowed: false, unset.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize},
};

pub(crate) const CHECK: Check = Check {
    id: "windowsHostProcess",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: windows_host_process_1_0,
        overrides: &[],
    }],
};

fn windows_host_process_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let keys = ["windowsOptions", "hostProcess"];
    let mut at = None;
    let mut bad_containers = Vec::new();
    for container in pod.containers() {
        if let Some(node) = container.security_context(&keys)
            && node.as_bool() == Some(true)
        {
            bad_containers.push(container.name);
            at.get_or_insert_with(|| (container.security_context_path(&keys), node.line));
        }
    }
    let mut pod_host_process = false;
    if let Some(node) = pod.security_context(&keys)
        && node.as_bool() == Some(true)
    {
        pod_host_process = true;
        at = Some((pod.security_context_path(&keys), node.line));
    }
    if !pod_host_process && bad_containers.is_empty() {
        return None;
    }
    let mut forbidden_setters = Vec::new();
    if pod_host_process {
        forbidden_setters.push("pod".to_owned());
    }
    if !bad_containers.is_empty() {
        forbidden_setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers)
        ));
    }
    Some(Forbidden {
        reason: "hostProcess".to_owned(),
        detail: format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            forbidden_setters.join(" and ")
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn host_process_is_forbidden() {
        let pod = "spec:\n  securityContext:\n    windowsOptions: {hostProcess: true}\n  containers:\n  - name: a\n    securityContext:\n      windowsOptions: {hostProcess: true}\n";
        assert_eq!(
            detail("windowsHostProcess", 0, pod),
            "pod and container \"a\" must not set securityContext.windowsOptions.hostProcess=true"
        );
        assert_eq!(
            detail(
                "windowsHostProcess",
                0,
                "spec:\n  containers: [{name: a}]\n"
            ),
            "allowed"
        );
    }
}
