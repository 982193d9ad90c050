//! The Kubernetes objects the cache keeps, decoded from the API server's JSON: only the
//! fields the `k8s.*` rule fields need (names, uids, labels, owners, a service's selector, a
//! pod's IP and its containers' `exec` probes), each object checked against the [`Limits`].

use std::collections::BTreeMap;

use palisade_event::{HealthProbe, K8sProbe, ProbeKind};
use serde::Deserialize;

/// Explicit bounds on what the client accepts from the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most objects kept per resource kind; objects beyond it are refused and counted.
    pub max_objects_per_kind: usize,
    /// Largest object (one watch event's line, one list item) in bytes.
    pub max_object_bytes: usize,
    /// Largest page of a list in bytes (lists are read in pages of [`Limits::list_page`]).
    pub max_list_page_bytes: usize,
    /// Objects asked for per page of a list.
    pub list_page: usize,
    /// Most labels (and selector entries) per object.
    pub max_labels: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_objects_per_kind: 100_000,
            // etcd refuses values over 1.5 MiB; a watch line adds its envelope.
            max_object_bytes: 2 << 20,
            max_list_page_bytes: 64 << 20,
            list_page: 500,
            max_labels: 256,
        }
    }
}

/// The kinds of object the cache follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// Pods (of this node only, when a node is given).
    Pod,
    /// Namespaces.
    Namespace,
    /// Replica sets (`apps/v1`).
    ReplicaSet,
    /// Deployments (`apps/v1`).
    Deployment,
    /// Services.
    Service,
    /// Replication controllers.
    ReplicationController,
}

impl ResourceKind {
    /// Every kind, in the order of [`ResourceKind::index`].
    pub const ALL: [ResourceKind; 6] = [
        ResourceKind::Pod,
        ResourceKind::Namespace,
        ResourceKind::ReplicaSet,
        ResourceKind::Deployment,
        ResourceKind::Service,
        ResourceKind::ReplicationController,
    ];

    /// The collection's path on the API server.
    pub fn path(self) -> &'static str {
        match self {
            ResourceKind::Pod => "/api/v1/pods",
            ResourceKind::Namespace => "/api/v1/namespaces",
            ResourceKind::ReplicaSet => "/apis/apps/v1/replicasets",
            ResourceKind::Deployment => "/apis/apps/v1/deployments",
            ResourceKind::Service => "/api/v1/services",
            ResourceKind::ReplicationController => "/api/v1/replicationcontrollers",
        }
    }

    /// The `kind` an owner reference names it by.
    pub fn kind_name(self) -> &'static str {
        match self {
            ResourceKind::Pod => "Pod",
            ResourceKind::Namespace => "Namespace",
            ResourceKind::ReplicaSet => "ReplicaSet",
            ResourceKind::Deployment => "Deployment",
            ResourceKind::Service => "Service",
            ResourceKind::ReplicationController => "ReplicationController",
        }
    }

    /// Position in [`ResourceKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One object as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Object {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
    pub owners: Vec<OwnerReference>,
    /// A service's `spec.selector`, sorted by key; empty for other kinds and for services
    /// without one (which select no pod).
    pub selector: Vec<(String, String)>,
    /// A pod's `status.podIP`.
    pub pod_ip: String,
    /// A pod's containers' `exec` liveness and readiness probes, in the spec's order.
    pub probes: Vec<K8sProbe>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct OwnerReference {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub controller: bool,
}

impl Object {
    /// The owner of `kind`: the controller reference when there is one, as Kubernetes'
    /// garbage collector and controllers follow it.
    pub fn owner(&self, kind: ResourceKind) -> Option<&OwnerReference> {
        let mut of_kind = self
            .owners
            .iter()
            .filter(|owner| owner.kind == kind.kind_name());
        let first = of_kind.next()?;
        Some(
            std::iter::once(first)
                .chain(of_kind)
                .find(|owner| owner.controller)
                .unwrap_or(first),
        )
    }
}

#[derive(Deserialize)]
struct RawObject {
    metadata: RawMetadata,
    #[serde(default)]
    spec: Option<RawSpec>,
    #[serde(default)]
    status: Option<RawStatus>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Option<Vec<OwnerReference>>,
}

#[derive(Deserialize)]
struct RawSpec {
    /// A service's selector is a map of strings; workloads' is a LabelSelector, not needed.
    #[serde(default)]
    selector: Option<serde_json::Value>,
    /// A pod's containers.
    #[serde(default)]
    containers: Option<Vec<RawContainer>>,
    /// A pod's init containers: a sidecar (`restartPolicy: Always`) may have probes.
    #[serde(default, rename = "initContainers")]
    init_containers: Option<Vec<RawContainer>>,
}

#[derive(Deserialize)]
struct RawContainer {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "livenessProbe")]
    liveness_probe: Option<RawProbe>,
    #[serde(default, rename = "readinessProbe")]
    readiness_probe: Option<RawProbe>,
}

/// A probe; only an `exec` probe runs a process (`httpGet`, `tcpSocket` and `grpc` probes are
/// the kubelet's own requests).
#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    exec: Option<RawExec>,
}

#[derive(Deserialize)]
struct RawExec {
    #[serde(default)]
    command: Option<Vec<String>>,
}

impl RawContainer {
    /// The container's `exec` probes, the command split into program and arguments as
    /// libsinsp's `parse_liveness_readiness_probe` splits it (the kubelet runs the command
    /// without a shell); a probe without a command runs nothing and is left out.
    fn exec_probes(self) -> impl Iterator<Item = K8sProbe> {
        let container = self.name;
        [
            (ProbeKind::LivenessProbe, self.liveness_probe),
            (ProbeKind::ReadinessProbe, self.readiness_probe),
        ]
        .into_iter()
        .filter_map(move |(kind, probe)| {
            let mut command = probe?.exec?.command?.into_iter();
            let exe = command.next()?;
            Some(K8sProbe {
                container: container.clone(),
                probe: HealthProbe {
                    kind,
                    exe,
                    args: command.collect(),
                },
            })
        })
    }
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default, rename = "podIP")]
    pod_ip: Option<String>,
}

/// Why an object was not taken.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Larger than the limits allow.
    Oversized(String),
    /// Not an object of its kind.
    Malformed(String),
}

/// Decodes one object of `kind` from its JSON; returns it with its resource version.
pub(crate) fn decode(
    kind: ResourceKind,
    json: &str,
    limits: &Limits,
) -> Result<(Object, String), Rejection> {
    if json.len() > limits.max_object_bytes {
        return Err(Rejection::Oversized(format!(
            "a {} of {} bytes exceeds the limit of {} bytes",
            kind.kind_name(),
            json.len(),
            limits.max_object_bytes
        )));
    }
    let raw: RawObject = serde_json::from_str(json).map_err(|error| {
        Rejection::Malformed(format!("not a {} object: {error}", kind.kind_name()))
    })?;
    let metadata = raw.metadata;
    if metadata.name.is_empty() || metadata.uid.is_empty() {
        return Err(Rejection::Malformed(format!(
            "a {} without metadata.name or metadata.uid",
            kind.kind_name()
        )));
    }
    let labels: Vec<(String, String)> = metadata.labels.unwrap_or_default().into_iter().collect();
    let (selector, containers) = match raw.spec {
        Some(spec) => (
            spec.selector,
            spec.init_containers
                .into_iter()
                .chain(spec.containers)
                .flatten()
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    let selector = match (kind, selector) {
        (ResourceKind::Service, Some(serde_json::Value::Object(entries))) => entries
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(value) => Ok((key, value)),
                other => Err(Rejection::Malformed(format!(
                    "service {}/{}: selector value of {key} is not a string: {other}",
                    metadata.namespace, metadata.name
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    if labels.len() > limits.max_labels || selector.len() > limits.max_labels {
        return Err(Rejection::Oversized(format!(
            "{} {}/{} has more than {} labels or selector entries",
            kind.kind_name(),
            metadata.namespace,
            metadata.name,
            limits.max_labels
        )));
    }
    let mut selector = selector;
    selector.sort();
    let (pod_ip, probes) = match kind {
        ResourceKind::Pod => (
            raw.status
                .and_then(|status| status.pod_ip)
                .unwrap_or_default(),
            containers
                .into_iter()
                .flat_map(RawContainer::exec_probes)
                .collect(),
        ),
        _ => (String::new(), Vec::new()),
    };
    Ok((
        Object {
            name: metadata.name,
            namespace: metadata.namespace,
            uid: metadata.uid,
            labels,
            owners: metadata.owner_references.unwrap_or_default(),
            selector,
            pod_ip,
            probes,
        },
        metadata.resource_version,
    ))
}

/// The resource version of a watch BOOKMARK's object (which carries nothing else).
pub(crate) fn resource_version_of(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Bookmark {
        metadata: BookmarkMetadata,
    }
    #[derive(Deserialize)]
    struct BookmarkMetadata {
        #[serde(rename = "resourceVersion")]
        resource_version: String,
    }
    serde_json::from_str::<Bookmark>(json)
        .ok()
        .map(|bookmark| bookmark.metadata.resource_version)
        .filter(|version| !version.is_empty())
}
