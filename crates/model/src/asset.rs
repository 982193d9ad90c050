//! Assets: the things findings are about, from a cluster down to a container and its image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// Namespace for the name-based (v5) UUIDs that make asset ids stable.
const ASSET_ID_NAMESPACE: Uuid = Uuid::from_u128(0x7a1b_5c3e_9d04_4f6a_8e21_0c5d_2b9f_1a77);

/// The kind of an [`Asset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A Kubernetes cluster, or the group of hosts that one `palisade up` watches.
    Cluster,
    /// A node or standalone container host.
    Node,
    /// A Kubernetes namespace.
    Namespace,
    /// A workload (Deployment, DaemonSet, ...).
    Workload,
    /// A pod.
    Pod,
    /// A container.
    Container,
    /// A container image.
    Image,
}

impl AssetKind {
    /// The snake_case name used in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Cluster => "cluster",
            AssetKind::Node => "node",
            AssetKind::Namespace => "namespace",
            AssetKind::Workload => "workload",
            AssetKind::Pod => "pod",
            AssetKind::Container => "container",
            AssetKind::Image => "image",
        }
    }
}

/// An asset known to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Stable id, derived from the kind and the natural key (see [`Asset::stable_id`]).
    pub id: Uuid,
    /// What kind of asset this is.
    pub kind: AssetKind,
    /// The cluster the asset belongs to.
    pub cluster: String,
    /// Human-readable name (hostname, `namespace/pod`, image reference, ...).
    pub name: String,
    /// Labels, for selection.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kind-specific facts (for a node: [`HostFacts`] as JSON).
    #[serde(default)]
    pub attributes: serde_json::Value,
    /// First time the asset was reported.
    pub first_seen: Timestamp,
    /// Last time the asset was reported.
    pub last_seen: Timestamp,
}

impl Asset {
    /// The stable id of an asset of `kind` named `name` in `cluster`.
    pub fn stable_id(kind: AssetKind, cluster: &str, name: &str) -> Uuid {
        let key = format!("{}\0{cluster}\0{name}", kind.as_str());
        Uuid::new_v5(&ASSET_ID_NAMESPACE, key.as_bytes())
    }
}

/// Facts about a host that the agent reports when it registers the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostFacts {
    /// The host name.
    pub hostname: String,
    /// `PRETTY_NAME` from os-release.
    pub os: String,
    /// os-release `ID` (`debian`, `ubuntu`, `alpine`, ...).
    pub os_id: String,
    /// os-release `VERSION_ID`.
    pub os_version: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Machine architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Which runtime event sources the agent uses on this host (`ebpf`, `proc-connector`, `none`).
    pub sensor: String,
    /// Event fields the agent's sensor cannot fill on this host (the fallback's reduced field
    /// set, such as `process.loginuid`); empty with the eBPF sensor or without a sensor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensor_missing_fields: Vec<String>,
}

/// Where a finding happened: the asset chain from cluster to container and image.
///
/// Every field but `cluster` is optional because findings happen at every level: a
/// vulnerability in an image has no pod; a host alert has no container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AffectedAsset {
    /// Cluster name.
    pub cluster: String,
    /// Node (host) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Workload (`Deployment/web`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Pod name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Container id (64 hex characters for runc-based runtimes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image digest (`sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

impl AffectedAsset {
    /// The most specific asset this points at, as (kind, natural name).
    ///
    /// The key deliberately leaves out the container id, which changes at every restart, so
    /// that a whitelist scoped to "this asset" keeps working for the same pod's container
    /// after a restart. A standalone container (no pod) is keyed by node and name.
    pub fn most_specific(&self) -> (AssetKind, String) {
        fn part(value: &Option<String>) -> &str {
            value.as_deref().unwrap_or("")
        }
        if let Some(pod) = &self.pod {
            let name = format!(
                "{}/{pod}/{}",
                part(&self.namespace),
                part(&self.container_name)
            );
            (AssetKind::Pod, name)
        } else if self.container_name.is_some() || self.container_id.is_some() {
            let container = self.container_name.as_ref().or(self.container_id.as_ref());
            let name = format!(
                "{}/{}",
                part(&self.node),
                container.map_or("", String::as_str)
            );
            (AssetKind::Container, name)
        } else if let Some(image) = self.image_digest.as_ref().or(self.image.as_ref()) {
            (AssetKind::Image, image.clone())
        } else if let Some(namespace) = &self.namespace {
            let name = match &self.workload {
                Some(workload) => format!("{namespace}/{workload}"),
                None => namespace.clone(),
            };
            let kind = if self.workload.is_some() {
                AssetKind::Workload
            } else {
                AssetKind::Namespace
            };
            (kind, name)
        } else if let Some(node) = &self.node {
            (AssetKind::Node, node.clone())
        } else {
            (AssetKind::Cluster, self.cluster.clone())
        }
    }

    /// Stable id of [`AffectedAsset::most_specific`].
    pub fn asset_id(&self) -> Uuid {
        let (kind, name) = self.most_specific();
        Asset::stable_id(kind, &self.cluster, &name)
    }

    /// A short human-readable label: `ns/pod/container`, `node:container`, the image or node.
    pub fn label(&self) -> String {
        self.most_specific().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_id_ignores_container_id_for_pods() {
        let first = AffectedAsset {
            cluster: "c".into(),
            namespace: Some("shop".into()),
            pod: Some("web-1".into()),
            container_name: Some("nginx".into()),
            container_id: Some("aaa".into()),
            ..Default::default()
        };
        let restarted = AffectedAsset {
            container_id: Some("bbb".into()),
            ..first.clone()
        };
        assert_eq!(first.asset_id(), restarted.asset_id());
        let other_pod = AffectedAsset {
            pod: Some("web-2".into()),
            ..first.clone()
        };
        assert_ne!(first.asset_id(), other_pod.asset_id());
        assert_eq!(first.most_specific().0, AssetKind::Pod);
    }

    #[test]
    fn host_alert_is_node_asset() {
        let host = AffectedAsset {
            cluster: "c".into(),
            node: Some("n1".into()),
            ..Default::default()
        };
        assert_eq!(host.most_specific(), (AssetKind::Node, "n1".into()));
        assert_eq!(
            host.asset_id(),
            Asset::stable_id(AssetKind::Node, "c", "n1")
        );
    }
}
