//! `restrictedVolumes` (restricted, v1.0+): only volume types that expose no node resources.
//!
//! Restricted field: the source of each `spec.volumes[*]`. Allowed: `configMap`, `csi`,
//! `downwardAPI`, `emptyDir`, `ephemeral`, `image`, `persistentVolumeClaim`, `projected`,
//! `secret`. Upstream added `image` to its single v1.0 revision in Kubernetes 1.33, so it is
//! allowed at every policy version. Overrides `hostPathVolumes`.
//!
//! A volume with no source at all is what the API server defaults to `emptyDir` before
//! admission sees it, so it is allowed here too.

use crate::{
    pss::{
        Level,
        checks::{Check, Forbidden, VersionedCheck},
        pod::{Pod, join_quote, pluralize, sorted_set},
    },
    yaml::Node,
};

pub(crate) const CHECK: Check = Check {
    id: "restrictedVolumes",
    level: Level::Restricted,
    versions: &[VersionedCheck {
        minimum_minor: 0,
        check: restricted_volumes_1_0,
        overrides: &["hostPathVolumes"],
    }],
};

const ALLOWED_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Restricted sources upstream names; any other source is reported as `unknown`.
const KNOWN_RESTRICTED_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes_1_0(pod: &Pod<'_>) -> Option<Forbidden> {
    let mut bad_volumes = Vec::new();
    let mut bad_types = Vec::new();
    let mut at = None;
    let volumes = pod.spec.get("volumes").map(Node::items).unwrap_or_default();
    for (volume_idx, volume) in volumes.iter().enumerate() {
        let sources: Vec<(&str, &Node)> = volume
            .entries()
            .iter()
            .filter(|(key, node)| key != "name" && !node.is_null())
            .map(|(key, node)| (key.as_str(), node))
            .collect();
        if sources.is_empty()
            || sources
                .iter()
                .any(|(source, _)| ALLOWED_SOURCES.contains(source))
        {
            continue;
        }
        let known = KNOWN_RESTRICTED_SOURCES
            .iter()
            .find_map(|known| sources.iter().find(|(source, _)| source == known));
        let (type_name, node) = match known {
            Some((source, node)) => (*source, *node),
            None => ("unknown", sources[0].1),
        };
        bad_types.push(type_name.to_owned());
        bad_volumes.push(volume.get("name").and_then(Node::as_str).unwrap_or(""));
        at.get_or_insert_with(|| {
            let source = if type_name == "unknown" {
                sources[0].0
            } else {
                type_name
            };
            (
                format!("{}.volumes[{volume_idx}].{source}", pod.spec_path),
                node.line,
            )
        });
    }
    if bad_volumes.is_empty() {
        return None;
    }
    let bad_types = sorted_set(bad_types);
    Some(Forbidden {
        reason: "restricted volume types".to_owned(),
        detail: format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            pluralize("uses", "use", bad_volumes.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                bad_types.len()
            ),
            join_quote(&bad_types)
        ),
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::pss::checks::test_support::detail;

    #[test]
    fn only_ephemeral_style_volumes_are_allowed() {
        let pod = "spec:\n  volumes:\n  - {name: a, hostPath: {path: /}}\n  - {name: b, nfs: {server: x, path: /}}\n  - {name: c, emptyDir: {}}\n  - {name: d, image: {reference: x}}\n  - {name: e, somethingNew: {}}\n  - {name: f}\n";
        assert_eq!(
            detail("restrictedVolumes", 0, pod),
            "volumes \"a\", \"b\", \"e\" use restricted volume types \"hostPath\", \"nfs\", \"unknown\""
        );
    }
}
