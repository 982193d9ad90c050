//! `hostPathVolumes` (baseline, v1.0+): hostPath volumes give access to the node's files.
//!
//! Restricted field: `spec.volumes[*].hostPath`. Allowed: unset. At the restricted level,
//! `restrictedVolumes` replaces this check.

use crate::pss::{
    Level,
    checks::{Check, Forbidden, VersionedCheck},
    pod::{Pod, join_quote, pluralize},
};

pub(crate) const CHECK: Check = Check {
    id: "hostPathVolumes",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: host_path_volumes_1_0,
        overrides: &[],
    }],
};

fn host_path_volumes_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut host_volumes = Vec::new();
    let mut at = None;
    let volumes = pod
        .spec
        .get("volumes")
        .map(|node| node.items())
        .unwrap_or_default();
    for (volume_idx, volume) in volumes.iter().enumerate() {
        if let Some(host_path) = volume.get("hostPath")
            && !host_path.is_null()
        {
            host_volumes.push(
                volume
                    .get("name")
                    .and_then(|node| node.as_str())
                    .unwrap_or(""),
            );
            at.get_or_insert_with(|| {
                (
                    format!("{}.volumes[{volume_idx}].hostPath", pod.spec_path),
                    host_path.line,
                )
            });
        }
    }
    if host_volumes.is_empty() {
        return None;
    }
    Some(Forbidden {
        reason: "hostPath volumes".to_owned(),
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", host_volumes.len()),
            join_quote(&host_volumes)
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn host_path_volumes_are_forbidden() {
        let pod = "spec:\n  volumes:\n  - name: a\n    hostPath: {path: /}\n  - name: b\n    emptyDir: {}\n";
        assert_eq!(detail("hostPathVolumes", 0, pod), "volume \"a\"");
        assert_eq!(
            detail(
                "hostPathVolumes",
                0,
                "spec:\n  volumes:\n  - name: b\n    emptyDir: {}\n"
            ),
            "allowed"
        );
    }
}
