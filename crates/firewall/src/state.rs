//! The cluster state: inventory, Kubernetes policies and Palisade's firewall objects, read
//! from Kubernetes-shaped YAML or JSON documents.

use std::net::IpAddr;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::firewall::{
    FirewallRule, MAX_RULE_PORT_RANGES, NetworkObject, ObjectMembers, Pattern, RuleAction,
    WorkloadMatch,
};
use crate::flow::{Endpoint, PodId};
use crate::inventory::{ContainerPort, Namespace, Node, Pod};
use crate::net::IpNet;
use crate::policy::{
    Action, IpBlock, NamespaceMatch, Peer, Policy, PolicyKind, PortMatch, PortSet, Protocol, Rule,
    Subject, Tier,
};
use crate::selector::{LabelSelectorSpec, Labels, Selector, compile_optional};

/// Everything the engine decides on.
///
/// Build it from documents with [`State::from_yaml`] (multi-document YAML or JSON; a
/// `kind: List` or a top-level array is flattened) and change it with [`State::apply`],
/// [`State::delete`] and the label setters. Objects are identified by kind, namespace and
/// name; applying an object that exists replaces it.
///
/// Kinds read: `Namespace`, `Pod`, `Node`, `NetworkPolicy`, `AdminNetworkPolicy`,
/// `BaselineAdminNetworkPolicy`, `ClusterNetworkPolicy`, and Palisade's `NetworkObject` and
/// `FirewallRule` (`palisade.dev/v1alpha1`). The `kind` decides how a document is read;
/// `apiVersion` is not checked, so both v1alpha1 AdminNetworkPolicy shapes (with and without
/// `sameLabels`) are accepted.
#[derive(Debug, Clone, Default)]
pub struct State {
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    nodes: Vec<Node>,
    policies: Vec<Policy>,
    network_objects: Vec<NetworkObject>,
    firewall_rules: Vec<FirewallRule>,
}

impl State {
    /// An empty state.
    pub fn new() -> State {
        State::default()
    }

    /// Reads a state from multi-document YAML (JSON is YAML too).
    pub fn from_yaml(text: &str) -> Result<State, Error> {
        let mut state = State::new();
        state.apply_yaml(text)?;
        Ok(state)
    }

    /// Applies every document of a multi-document YAML (or JSON) text.
    pub fn apply_yaml(&mut self, text: &str) -> Result<(), Error> {
        // YAML 1.2 booleans only: under YAML 1.1 a namespace named `y` or `on` would read
        // as `true`.
        let options = serde_saphyr::Options {
            strict_booleans: true,
            ..serde_saphyr::Options::default()
        };
        let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
            .map_err(|error| Error::new(ErrorKind::Syntax, "", "", error.to_string()))?;
        for (document_idx, document) in documents.iter().enumerate() {
            let location = format!("document {}", document_idx + 1);
            match document {
                Value::Null => {}
                Value::Array(items) => {
                    for (item_idx, item) in items.iter().enumerate() {
                        self.apply_at(item, &format!("{location}, item {}", item_idx + 1))?;
                    }
                }
                _ => self.apply_at(document, &location)?,
            }
        }
        Ok(())
    }

    /// Creates or replaces one object given as a JSON value.
    pub fn apply(&mut self, object: &Value) -> Result<(), Error> {
        self.apply_at(object, "object")
    }

    fn apply_at(&mut self, document: &Value, location: &str) -> Result<(), Error> {
        let Some(map) = document.as_object() else {
            return Err(Error::new(
                ErrorKind::InvalidField,
                location,
                "",
                "expected a mapping with apiVersion, kind and metadata",
            ));
        };
        let kind = match map.get("kind") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidField,
                    location,
                    "kind",
                    "must be a string",
                ));
            }
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidField,
                    location,
                    "kind",
                    "missing",
                ));
            }
        };
        let object = object_name(kind, document, location);
        match kind {
            "List" => {
                let items: Vec<Value> = parse(map.get("items").unwrap_or(&Value::Null), &object)
                    .map_err(|error| error.under("items"))?;
                for (item_idx, item) in items.iter().enumerate() {
                    self.apply_at(item, &format!("{location}, items[{item_idx}]"))?;
                }
                Ok(())
            }
            "Namespace" => {
                let namespace = read_namespace(document, &object)?;
                upsert(&mut self.namespaces, namespace, |a, b| a.name == b.name);
                Ok(())
            }
            "Pod" => {
                let pod = read_pod(document, &object)?;
                self.insert_pod(pod);
                Ok(())
            }
            "Node" => {
                let node = read_node(document, &object)?;
                upsert(&mut self.nodes, node, |a, b| a.name == b.name);
                Ok(())
            }
            "NetworkPolicy" => {
                let policy = read_network_policy(document, &object)?;
                self.insert_policy(policy);
                Ok(())
            }
            "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" | "ClusterNetworkPolicy" => {
                let policy = read_admin_policy(kind, document, &object)?;
                self.insert_policy(policy);
                Ok(())
            }
            "NetworkObject" => {
                let network_object = read_network_object(document, &object)?;
                upsert(&mut self.network_objects, network_object, |a, b| {
                    a.name == b.name
                });
                Ok(())
            }
            "FirewallRule" => {
                let rule = read_firewall_rule(document, &object)?;
                upsert(&mut self.firewall_rules, rule, |a, b| a.name == b.name);
                Ok(())
            }
            other => Err(Error::new(
                ErrorKind::UnknownKind,
                location,
                "kind",
                format!(
                    "unknown kind {other:?} (expected Namespace, Pod, Node, NetworkPolicy, \
                     AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy, \
                     NetworkObject, FirewallRule or List)"
                ),
            )),
        }
    }

    /// Inserts or replaces a namespace.
    pub fn insert_namespace(&mut self, namespace: Namespace) {
        upsert(&mut self.namespaces, namespace, |a, b| a.name == b.name);
    }

    /// Inserts or replaces a pod (same namespace and name).
    pub fn insert_pod(&mut self, pod: Pod) {
        upsert(&mut self.pods, pod, |a, b| {
            a.namespace == b.namespace && a.name == b.name
        });
    }

    /// Inserts or replaces a policy (same kind, namespace and name).
    pub fn insert_policy(&mut self, policy: Policy) {
        upsert(&mut self.policies, policy, |a, b| {
            a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
        });
    }

    /// Inserts or replaces a Palisade network object.
    pub fn insert_network_object(&mut self, network_object: NetworkObject) {
        upsert(&mut self.network_objects, network_object, |a, b| {
            a.name == b.name
        });
    }

    /// Inserts or replaces a Palisade firewall rule.
    pub fn insert_firewall_rule(&mut self, rule: FirewallRule) {
        upsert(&mut self.firewall_rules, rule, |a, b| a.name == b.name);
    }

    /// Deletes the object of `kind` with that namespace (for namespaced kinds; `None` means
    /// `default`) and name; returns whether one existed.
    pub fn delete(&mut self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let namespace = Some(namespace.unwrap_or("default"));
        let before = self.len();
        match kind {
            "Namespace" => self.namespaces.retain(|ns| ns.name != name),
            "Pod" => self
                .pods
                .retain(|pod| !(Some(pod.namespace.as_str()) == namespace && pod.name == name)),
            "Node" => self.nodes.retain(|node| node.name != name),
            "NetworkObject" => self.network_objects.retain(|object| object.name != name),
            "FirewallRule" => self.firewall_rules.retain(|rule| rule.name != name),
            _ => self.policies.retain(|policy| {
                !(policy.kind.as_str() == kind
                    && (policy.namespace.is_none() || policy.namespace.as_deref() == namespace)
                    && policy.name == name)
            }),
        }
        self.len() != before
    }

    fn len(&self) -> usize {
        self.namespaces.len()
            + self.pods.len()
            + self.nodes.len()
            + self.policies.len()
            + self.network_objects.len()
            + self.firewall_rules.len()
    }

    /// Deletes every Kubernetes policy (Palisade's rules stay).
    pub fn delete_all_policies(&mut self) {
        self.policies.clear();
    }

    /// Replaces a namespace's labels, creating the namespace if needed.
    pub fn set_namespace_labels(&mut self, namespace: &str, labels: Labels) {
        self.insert_namespace(Namespace {
            name: namespace.to_owned(),
            labels,
        });
    }

    /// Replaces a pod's labels.
    pub fn set_pod_labels(
        &mut self,
        namespace: &str,
        pod: &str,
        labels: Labels,
    ) -> Result<(), Error> {
        let found = self
            .pods
            .iter_mut()
            .find(|candidate| candidate.namespace == namespace && candidate.name == pod)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("Pod {namespace}/{pod}"),
                    "",
                    "no such pod",
                )
            })?;
        found.labels = labels;
        Ok(())
    }

    /// The namespaces.
    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    /// One namespace by name.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces
            .iter()
            .find(|namespace| namespace.name == name)
    }

    /// The pods, in the order they were first applied.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// One pod by id, if the id belongs to this state.
    pub fn pod(&self, pod_id: PodId) -> Option<&Pod> {
        self.pods.get(pod_id.index())
    }

    /// The id of the pod `namespace/name`.
    pub fn pod_id(&self, namespace: &str, name: &str) -> Option<PodId> {
        self.pods
            .iter()
            .position(|pod| pod.namespace == namespace && pod.name == name)
            .and_then(|idx| u32::try_from(idx).ok())
            .map(PodId)
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The Kubernetes policies.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Palisade's network objects.
    pub fn network_objects(&self) -> &[NetworkObject] {
        &self.network_objects
    }

    /// Palisade's firewall rules.
    pub fn firewall_rules(&self) -> &[FirewallRule] {
        &self.firewall_rules
    }

    /// Resolves `namespace/pod` or an IP address to an endpoint. An IP that belongs to a pod
    /// is that pod.
    pub fn endpoint(&self, text: &str) -> Result<Endpoint, Error> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            let pod_idx = self.pods.iter().position(|pod| pod.ips.contains(&ip));
            return Ok(match pod_idx.and_then(|idx| u32::try_from(idx).ok()) {
                Some(idx) => Endpoint::Pod(PodId(idx)),
                None => Endpoint::Ip(ip),
            });
        }
        let Some((namespace, name)) = text.split_once('/') else {
            return Err(Error::new(
                ErrorKind::NotFound,
                text,
                "",
                "expected NAMESPACE/POD or an IP address",
            ));
        };
        self.pod_id(namespace, name)
            .map(Endpoint::Pod)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("Pod {text}"),
                    "",
                    "no such pod",
                )
            })
    }
}

fn upsert<T>(items: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) {
    match items.iter_mut().find(|existing| same(existing, &item)) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

/// `Kind namespace/name` from a document's metadata, as far as it can be read.
fn object_name(kind: &str, document: &Value, location: &str) -> String {
    let metadata = document.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(Value::as_str);
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    match (name, namespace, kind) {
        (Some(name), _, "Pod" | "NetworkPolicy") => {
            format!("{kind} {}/{name}", namespace.unwrap_or("default"))
        }
        (Some(name), _, _) => format!("{kind} {name}"),
        (None, _, _) => format!("{kind} ({location})"),
    }
}

fn parse<T: DeserializeOwned>(value: &Value, object: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Error::new(
            ErrorKind::InvalidField,
            object,
            path,
            error.inner().to_string(),
        )
    })
}

fn invalid(
    kind: ErrorKind,
    object: &str,
    field: impl Into<String>,
    message: impl Into<String>,
) -> Error {
    Error::new(kind, object, field, message)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<Labels>,
}

impl Metadata {
    fn name(&self, object: &str) -> Result<String, Error> {
        match &self.name {
            Some(name) if !name.is_empty() => Ok(name.clone()),
            _ => Err(invalid(
                ErrorKind::InvalidField,
                object,
                "metadata.name",
                "missing",
            )),
        }
    }
}

#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: Metadata,
}

fn read_namespace(document: &Value, object: &str) -> Result<Namespace, Error> {
    let doc: MetadataOnly = parse(document, object)?;
    Ok(Namespace {
        name: doc.metadata.name(object)?,
        labels: doc.metadata.labels.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct PodDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: Option<PodSpec>,
    #[serde(default)]
    status: Option<PodStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Option<Vec<ContainerSpec>>,
    #[serde(default)]
    service_account_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerSpec {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    ports: Option<Vec<ContainerPortSpec>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPortSpec {
    #[serde(default)]
    name: Option<String>,
    container_port: i64,
    #[serde(default)]
    protocol: Option<String>,
}

#[derive(Deserialize)]
struct PodStatus {
    #[serde(default, rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(default, rename = "podIPs")]
    pod_ips: Option<Vec<PodIpSpec>>,
}

#[derive(Deserialize)]
struct PodIpSpec {
    ip: String,
}

fn read_pod(document: &Value, object: &str) -> Result<Pod, Error> {
    let doc: PodDoc = parse(document, object)?;
    let name = doc.metadata.name(object)?;
    let mut ips = Vec::new();
    if let Some(status) = &doc.status {
        if let Some(ip) = &status.pod_ip {
            ips.push(parse_ip(ip, object, "status.podIP")?);
        }
        for (ip_idx, pod_ip) in status.pod_ips.iter().flatten().enumerate() {
            let ip = parse_ip(&pod_ip.ip, object, &format!("status.podIPs[{ip_idx}].ip"))?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    let mut ports = Vec::new();
    let mut images = Vec::new();
    let containers = doc
        .spec
        .as_ref()
        .and_then(|spec| spec.containers.as_deref())
        .unwrap_or(&[]);
    for (container_idx, container) in containers.iter().enumerate() {
        images.extend(container.image.clone());
        for (port_idx, port) in container.ports.iter().flatten().enumerate() {
            let field = format!("spec.containers[{container_idx}].ports[{port_idx}]");
            ports.push(ContainerPort {
                name: port.name.clone().filter(|name| !name.is_empty()),
                port: port_number(
                    port.container_port,
                    object,
                    &format!("{field}.containerPort"),
                )?,
                protocol: protocol_or_tcp(
                    port.protocol.as_deref(),
                    object,
                    &format!("{field}.protocol"),
                )?,
            });
        }
    }
    Ok(Pod {
        namespace: doc
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name,
        labels: doc.metadata.labels.clone().unwrap_or_default(),
        ips,
        ports,
        images,
        service_account: doc.spec.and_then(|spec| spec.service_account_name),
    })
}

#[derive(Deserialize)]
struct NodeDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    status: Option<NodeStatus>,
}

#[derive(Deserialize)]
struct NodeStatus {
    #[serde(default)]
    addresses: Option<Vec<NodeAddress>>,
}

#[derive(Deserialize)]
struct NodeAddress {
    address: String,
}

fn read_node(document: &Value, object: &str) -> Result<Node, Error> {
    let doc: NodeDoc = parse(document, object)?;
    Ok(Node {
        name: doc.metadata.name(object)?,
        labels: doc.metadata.labels.unwrap_or_default(),
        // Hostnames are addresses too; only IPs can match a flow.
        addresses: doc
            .status
            .and_then(|status| status.addresses)
            .unwrap_or_default()
            .iter()
            .filter_map(|address| address.address.parse().ok())
            .collect(),
    })
}

fn parse_ip(text: &str, object: &str, field: &str) -> Result<IpAddr, Error> {
    text.parse().map_err(|_| {
        invalid(
            ErrorKind::InvalidCidr,
            object,
            field,
            format!("invalid IP address {text:?}"),
        )
    })
}

fn parse_cidr(text: &str, object: &str, field: &str) -> Result<IpNet, Error> {
    text.parse().map_err(|error: crate::net::CidrError| {
        invalid(ErrorKind::InvalidCidr, object, field, error.to_string())
    })
}

fn port_number(port: i64, object: &str, field: &str) -> Result<u16, Error> {
    match u16::try_from(port) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(invalid(
            ErrorKind::InvalidPort,
            object,
            field,
            format!("port {port} is not in 1-65535"),
        )),
    }
}

fn protocol(text: &str, object: &str, field: &str) -> Result<Protocol, Error> {
    // The API is case-sensitive: `tcp` is rejected by the apiserver.
    match text {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        other => Err(invalid(
            ErrorKind::InvalidPort,
            object,
            field,
            format!("unknown protocol {other:?} (expected TCP, UDP or SCTP)"),
        )),
    }
}

fn protocol_or_tcp(text: Option<&str>, object: &str, field: &str) -> Result<Protocol, Error> {
    text.map_or(Ok(Protocol::Tcp), |text| protocol(text, object, field))
}

fn selector(
    spec: Option<&LabelSelectorSpec>,
    object: &str,
    field: &str,
) -> Result<Selector, Error> {
    compile_optional(spec).map_err(|error| error.under(field).in_object(object))
}

// NetworkPolicy (networking.k8s.io/v1).

#[derive(Deserialize)]
struct NetworkPolicyDoc {
    #[serde(default)]
    metadata: Metadata,
    spec: NetworkPolicySpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NetworkPolicySpec {
    #[serde(default)]
    pod_selector: Option<LabelSelectorSpec>,
    #[serde(default)]
    policy_types: Option<Vec<String>>,
    #[serde(default)]
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    #[serde(default)]
    egress: Option<Vec<NetworkPolicyEgressRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkPolicyIngressRule {
    #[serde(default)]
    from: Option<Vec<NetworkPolicyPeer>>,
    #[serde(default)]
    ports: Option<Vec<NetworkPolicyPort>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkPolicyEgressRule {
    #[serde(default)]
    to: Option<Vec<NetworkPolicyPeer>>,
    #[serde(default)]
    ports: Option<Vec<NetworkPolicyPort>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NetworkPolicyPeer {
    #[serde(default)]
    pod_selector: Option<LabelSelectorSpec>,
    #[serde(default)]
    namespace_selector: Option<LabelSelectorSpec>,
    #[serde(default)]
    ip_block: Option<IpBlockSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpBlockSpec {
    cidr: String,
    #[serde(default)]
    except: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NetworkPolicyPort {
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    port: Option<IntOrString>,
    #[serde(default)]
    end_port: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(i64),
    String(String),
}

fn read_network_policy(document: &Value, object: &str) -> Result<Policy, Error> {
    let doc: NetworkPolicyDoc = parse(document, object)?;
    let name = doc.metadata.name(object)?;
    let namespace = doc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let spec = doc.spec;
    let pods = selector(spec.pod_selector.as_ref(), object, "spec.podSelector")?;

    // Defaulting as the apiserver does: no policyTypes means Ingress, plus Egress when there
    // are egress rules.
    let (mut ingress_type, mut egress_type) = (false, false);
    match spec.policy_types.as_deref() {
        None | Some([]) => {
            ingress_type = true;
            egress_type = spec.egress.as_ref().is_some_and(|rules| !rules.is_empty());
        }
        Some(types) => {
            for (type_idx, policy_type) in types.iter().enumerate() {
                match policy_type.as_str() {
                    "Ingress" => ingress_type = true,
                    "Egress" => egress_type = true,
                    other => {
                        return Err(invalid(
                            ErrorKind::InvalidField,
                            object,
                            format!("spec.policyTypes[{type_idx}]"),
                            format!("unknown policy type {other:?} (expected Ingress or Egress)"),
                        ));
                    }
                }
            }
        }
    }

    let ingress = if ingress_type {
        let mut rules = Vec::new();
        for (rule_idx, rule) in spec.ingress.iter().flatten().enumerate() {
            let field = format!("spec.ingress[{rule_idx}]");
            rules.push(network_policy_rule(
                &namespace,
                rule.from.as_deref(),
                rule.ports.as_deref(),
                object,
                &field,
                "from",
            )?);
        }
        Some(rules)
    } else {
        None
    };
    let egress = if egress_type {
        let mut rules = Vec::new();
        for (rule_idx, rule) in spec.egress.iter().flatten().enumerate() {
            let field = format!("spec.egress[{rule_idx}]");
            rules.push(network_policy_rule(
                &namespace,
                rule.to.as_deref(),
                rule.ports.as_deref(),
                object,
                &field,
                "to",
            )?);
        }
        Some(rules)
    } else {
        None
    };
    Ok(Policy {
        kind: PolicyKind::NetworkPolicy,
        namespace: Some(namespace.clone()),
        name,
        tier: Tier::NetworkPolicy,
        priority: 0,
        subject: Subject::Namespace { namespace, pods },
        ingress,
        egress,
    })
}

fn network_policy_rule(
    namespace: &str,
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    object: &str,
    field: &str,
    peers_field: &str,
) -> Result<Rule, Error> {
    let peers = match peers {
        None | Some([]) => vec![Peer::Everything],
        Some(peers) => peers
            .iter()
            .enumerate()
            .map(|(peer_idx, peer)| {
                network_policy_peer(
                    namespace,
                    peer,
                    object,
                    &format!("{field}.{peers_field}[{peer_idx}]"),
                )
            })
            .collect::<Result<_, _>>()?,
    };
    let ports = ports
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(port_idx, port)| {
            network_policy_port(port, object, &format!("{field}.ports[{port_idx}]"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        name: None,
        action: Action::Allow,
        peers,
        ports,
    })
}

fn network_policy_peer(
    namespace: &str,
    peer: &NetworkPolicyPeer,
    object: &str,
    field: &str,
) -> Result<Peer, Error> {
    if let Some(ip_block) = &peer.ip_block {
        if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
            return Err(invalid(
                ErrorKind::InvalidField,
                object,
                field,
                "ipBlock cannot be combined with podSelector or namespaceSelector",
            ));
        }
        return ip_block_peer(ip_block, object, &format!("{field}.ipBlock"));
    }
    if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
        return Err(invalid(
            ErrorKind::InvalidField,
            object,
            field,
            "a peer needs podSelector, namespaceSelector or ipBlock",
        ));
    }
    let pods = selector(
        peer.pod_selector.as_ref(),
        object,
        &format!("{field}.podSelector"),
    )?;
    let namespaces = match &peer.namespace_selector {
        None => NamespaceMatch::Name(namespace.to_owned()),
        Some(spec) => NamespaceMatch::Selector(selector(
            Some(spec),
            object,
            &format!("{field}.namespaceSelector"),
        )?),
    };
    Ok(Peer::Pods { namespaces, pods })
}

fn ip_block_peer(ip_block: &IpBlockSpec, object: &str, field: &str) -> Result<Peer, Error> {
    let cidr = parse_cidr(&ip_block.cidr, object, &format!("{field}.cidr"))?;
    let except = ip_block
        .except
        .iter()
        .flatten()
        .enumerate()
        .map(|(except_idx, text)| {
            parse_cidr(text, object, &format!("{field}.except[{except_idx}]"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Peer::Ips(IpBlock { cidr, except }))
}

fn network_policy_port(
    port: &NetworkPolicyPort,
    object: &str,
    field: &str,
) -> Result<PortMatch, Error> {
    let protocol = protocol_or_tcp(
        port.protocol.as_deref(),
        object,
        &format!("{field}.protocol"),
    )?;
    let ports = match (&port.port, port.end_port) {
        (None, None) => PortSet::All,
        (None, Some(_)) => {
            return Err(invalid(
                ErrorKind::InvalidPort,
                object,
                format!("{field}.endPort"),
                "endPort needs port",
            ));
        }
        (Some(IntOrString::Int(start)), end_port) => {
            let start = port_number(*start, object, &format!("{field}.port"))?;
            let end = match end_port {
                Some(end) => port_number(end, object, &format!("{field}.endPort"))?,
                None => start,
            };
            if end < start {
                return Err(invalid(
                    ErrorKind::InvalidPort,
                    object,
                    format!("{field}.endPort"),
                    format!("endPort {end} is below port {start}"),
                ));
            }
            PortSet::Range(start, end)
        }
        (Some(IntOrString::String(_)), Some(_)) => {
            return Err(invalid(
                ErrorKind::InvalidPort,
                object,
                format!("{field}.endPort"),
                "endPort cannot be used with a named port",
            ));
        }
        (Some(IntOrString::String(name)), None) => {
            PortSet::Named(port_name(name, object, &format!("{field}.port"))?)
        }
    };
    Ok(PortMatch {
        protocol: Some(protocol),
        ports,
    })
}

fn port_name(name: &str, object: &str, field: &str) -> Result<String, Error> {
    // An IANA service name: at most 15 characters, with at least one letter.
    if name.is_empty() || name.len() > 15 || !name.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(invalid(
            ErrorKind::InvalidPort,
            object,
            field,
            format!("invalid port name {name:?} (1-15 characters with at least one letter)"),
        ));
    }
    Ok(name.to_owned())
}

// AdminNetworkPolicy, BaselineAdminNetworkPolicy (v1alpha1) and ClusterNetworkPolicy
// (v1alpha2) share one reader: their subjects, peers and rules overlap, and each kind's own
// restrictions are checked below.

#[derive(Deserialize)]
struct AdminPolicyDoc {
    #[serde(default)]
    metadata: Metadata,
    spec: AdminPolicySpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminPolicySpec {
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    priority: Option<i64>,
    subject: SubjectSpec,
    #[serde(default)]
    ingress: Option<Vec<AdminRuleSpec>>,
    #[serde(default)]
    egress: Option<Vec<AdminRuleSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectSpec {
    #[serde(default)]
    namespaces: Option<LabelSelectorSpec>,
    #[serde(default)]
    pods: Option<NamespacedPodSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NamespacedPodSpec {
    #[serde(default)]
    namespace_selector: Option<LabelSelectorSpec>,
    /// v0.1.x `pods.namespaces` (a NamespacedPeer).
    #[serde(default)]
    namespaces: Option<NamespacesPeerSpec>,
    #[serde(default)]
    pod_selector: Option<LabelSelectorSpec>,
}

/// A `namespaces` peer: a label selector, or in v0.1.x a NamespacedPeer with
/// `namespaceSelector`, `sameLabels` or `notSameLabels`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NamespacesPeerSpec {
    #[serde(default)]
    match_labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    match_expressions: Option<Value>,
    #[serde(default)]
    namespace_selector: Option<LabelSelectorSpec>,
    #[serde(default)]
    same_labels: Option<Vec<String>>,
    #[serde(default)]
    not_same_labels: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminRuleSpec {
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    from: Option<Vec<AdminPeerSpec>>,
    #[serde(default)]
    to: Option<Vec<AdminPeerSpec>>,
    /// v1alpha1 ports.
    #[serde(default)]
    ports: Option<Vec<AdminPortSpec>>,
    /// v1alpha2 protocols.
    #[serde(default)]
    protocols: Option<Vec<ProtocolSpec>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminPeerSpec {
    #[serde(default)]
    namespaces: Option<Value>,
    #[serde(default)]
    pods: Option<NamespacedPodSpec>,
    #[serde(default)]
    nodes: Option<LabelSelectorSpec>,
    #[serde(default)]
    networks: Option<Vec<String>>,
    #[serde(default)]
    domain_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminPortSpec {
    #[serde(default)]
    port_number: Option<PortNumberSpec>,
    #[serde(default)]
    port_range: Option<PortRangeSpec>,
    #[serde(default)]
    named_port: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortNumberSpec {
    #[serde(default)]
    protocol: Option<String>,
    port: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortRangeSpec {
    #[serde(default)]
    protocol: Option<String>,
    start: i64,
    end: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProtocolSpec {
    #[serde(default)]
    tcp: Option<ProtocolPortsSpec>,
    #[serde(default)]
    udp: Option<ProtocolPortsSpec>,
    #[serde(default)]
    sctp: Option<ProtocolPortsSpec>,
    #[serde(default)]
    destination_named_port: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProtocolPortsSpec {
    #[serde(default)]
    destination_port: Option<DestinationPortSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationPortSpec {
    #[serde(default)]
    number: Option<i64>,
    #[serde(default)]
    range: Option<RangeSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeSpec {
    start: i64,
    end: i64,
}

fn read_admin_policy(kind: &str, document: &Value, object: &str) -> Result<Policy, Error> {
    let doc: AdminPolicyDoc = parse(document, object)?;
    let name = doc.metadata.name(object)?;
    let spec = doc.spec;
    let (policy_kind, tier, priority) = match kind {
        "AdminNetworkPolicy" => {
            if spec.tier.is_some() {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    "spec.tier",
                    "AdminNetworkPolicy has no tier",
                ));
            }
            (
                PolicyKind::AdminNetworkPolicy,
                Tier::Admin,
                priority(spec.priority, object)?,
            )
        }
        "BaselineAdminNetworkPolicy" => {
            if spec.tier.is_some() || spec.priority.is_some() {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    if spec.tier.is_some() {
                        "spec.tier"
                    } else {
                        "spec.priority"
                    },
                    "BaselineAdminNetworkPolicy has neither tier nor priority",
                ));
            }
            (PolicyKind::BaselineAdminNetworkPolicy, Tier::Baseline, 0)
        }
        _ => {
            let tier = match spec.tier.as_deref() {
                Some("Admin") => Tier::Admin,
                Some("Baseline") => Tier::Baseline,
                Some(other) => {
                    return Err(invalid(
                        ErrorKind::InvalidField,
                        object,
                        "spec.tier",
                        format!("unknown tier {other:?} (expected Admin or Baseline)"),
                    ));
                }
                None => {
                    return Err(invalid(
                        ErrorKind::InvalidField,
                        object,
                        "spec.tier",
                        "missing",
                    ));
                }
            };
            (
                PolicyKind::ClusterNetworkPolicy,
                tier,
                priority(spec.priority, object)?,
            )
        }
    };
    let subject = admin_subject(&spec.subject, object)?;
    let ingress = admin_rules(
        policy_kind,
        spec.ingress.as_deref(),
        direction_fields::INGRESS,
        object,
    )?;
    let egress = admin_rules(
        policy_kind,
        spec.egress.as_deref(),
        direction_fields::EGRESS,
        object,
    )?;
    Ok(Policy {
        kind: policy_kind,
        namespace: None,
        name,
        tier,
        priority,
        subject,
        ingress,
        egress,
    })
}

/// Field names per direction, for the shared admin rule reader.
mod direction_fields {
    pub(super) struct Names {
        pub(super) rules: &'static str,
        pub(super) peers: &'static str,
        pub(super) other_peers: &'static str,
    }
    pub(super) const INGRESS: Names = Names {
        rules: "spec.ingress",
        peers: "from",
        other_peers: "to",
    };
    pub(super) const EGRESS: Names = Names {
        rules: "spec.egress",
        peers: "to",
        other_peers: "from",
    };
}

fn priority(priority: Option<i64>, object: &str) -> Result<i32, Error> {
    match priority {
        Some(priority @ 0..=1000) => Ok(priority as i32),
        Some(priority) => Err(invalid(
            ErrorKind::InvalidField,
            object,
            "spec.priority",
            format!("priority {priority} is not in 0-1000"),
        )),
        None => Err(invalid(
            ErrorKind::InvalidField,
            object,
            "spec.priority",
            "missing",
        )),
    }
}

fn admin_subject(subject: &SubjectSpec, object: &str) -> Result<Subject, Error> {
    match (&subject.namespaces, &subject.pods) {
        (Some(namespaces), None) => Ok(Subject::Pods {
            namespaces: selector(Some(namespaces), object, "spec.subject.namespaces")?,
            pods: Selector::everything(),
        }),
        (None, Some(pods)) => {
            if pods.namespaces.is_some() {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    "spec.subject.pods.namespaces",
                    "a subject selects namespaces with namespaceSelector",
                ));
            }
            Ok(Subject::Pods {
                namespaces: selector(
                    pods.namespace_selector.as_ref(),
                    object,
                    "spec.subject.pods.namespaceSelector",
                )?,
                pods: selector(
                    pods.pod_selector.as_ref(),
                    object,
                    "spec.subject.pods.podSelector",
                )?,
            })
        }
        _ => Err(invalid(
            ErrorKind::InvalidField,
            object,
            "spec.subject",
            "exactly one of namespaces and pods must be set",
        )),
    }
}

fn admin_rules(
    kind: PolicyKind,
    rules: Option<&[AdminRuleSpec]>,
    names: direction_fields::Names,
    object: &str,
) -> Result<Option<Vec<Rule>>, Error> {
    let rules = rules.unwrap_or(&[]);
    if rules.is_empty() {
        return Ok(None);
    }
    let mut compiled = Vec::with_capacity(rules.len());
    for (rule_idx, rule) in rules.iter().enumerate() {
        let field = format!("{}[{rule_idx}]", names.rules);
        let action = match (kind, rule.action.as_str()) {
            (PolicyKind::ClusterNetworkPolicy, "Accept") => Action::Allow,
            (PolicyKind::AdminNetworkPolicy | PolicyKind::BaselineAdminNetworkPolicy, "Allow") => {
                Action::Allow
            }
            (_, "Deny") => Action::Deny,
            (PolicyKind::ClusterNetworkPolicy | PolicyKind::AdminNetworkPolicy, "Pass") => {
                Action::Pass
            }
            (_, other) => {
                let expected = match kind {
                    PolicyKind::ClusterNetworkPolicy => "Accept, Deny or Pass",
                    PolicyKind::BaselineAdminNetworkPolicy => "Allow or Deny",
                    _ => "Allow, Deny or Pass",
                };
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    format!("{field}.action"),
                    format!("unknown action {other:?} (expected {expected})"),
                ));
            }
        };
        let (peers, other) = if names.peers == "from" {
            (&rule.from, &rule.to)
        } else {
            (&rule.to, &rule.from)
        };
        if other.is_some() {
            return Err(invalid(
                ErrorKind::InvalidField,
                object,
                format!("{field}.{}", names.other_peers),
                format!("this rule takes {}", names.peers),
            ));
        }
        let peers = match peers.as_deref() {
            Some(peers) if !peers.is_empty() => peers,
            _ => {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    format!("{field}.{}", names.peers),
                    "needs at least one peer",
                ));
            }
        };
        let mut compiled_peers = Vec::new();
        for (peer_idx, peer) in peers.iter().enumerate() {
            admin_peer(
                peer,
                object,
                &format!("{field}.{}[{peer_idx}]", names.peers),
                &mut compiled_peers,
            )?;
        }
        let ports = match (&rule.ports, &rule.protocols) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    format!("{field}.protocols"),
                    "ports and protocols cannot both be set",
                ));
            }
            (Some(ports), None) => ports
                .iter()
                .enumerate()
                .map(|(port_idx, port)| {
                    admin_port(port, object, &format!("{field}.ports[{port_idx}]"))
                })
                .collect::<Result<_, _>>()?,
            (None, Some(protocols)) => protocols
                .iter()
                .enumerate()
                .map(|(protocol_idx, spec)| {
                    protocol_port(spec, object, &format!("{field}.protocols[{protocol_idx}]"))
                })
                .collect::<Result<_, _>>()?,
            (None, None) => Vec::new(),
        };
        compiled.push(Rule {
            name: rule.name.clone().filter(|name| !name.is_empty()),
            action,
            peers: compiled_peers,
            ports,
        });
    }
    Ok(Some(compiled))
}

fn admin_peer(
    peer: &AdminPeerSpec,
    object: &str,
    field: &str,
    out: &mut Vec<Peer>,
) -> Result<(), Error> {
    let set = [
        peer.namespaces.is_some(),
        peer.pods.is_some(),
        peer.nodes.is_some(),
        peer.networks.is_some(),
        peer.domain_names.is_some(),
    ];
    if set.iter().filter(|&&is_set| is_set).count() != 1 {
        return Err(invalid(
            ErrorKind::InvalidField,
            object,
            field,
            "exactly one of namespaces, pods, nodes, networks and domainNames must be set",
        ));
    }
    if let Some(namespaces) = &peer.namespaces {
        let spec: NamespacesPeerSpec = parse(namespaces, object)
            .map_err(|error| error.under(&format!("{field}.namespaces")))?;
        out.push(Peer::Pods {
            namespaces: namespaces_peer(&spec, object, &format!("{field}.namespaces"))?,
            pods: Selector::everything(),
        });
    } else if let Some(pods) = &peer.pods {
        let namespaces = match (&pods.namespaces, &pods.namespace_selector) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    format!("{field}.pods"),
                    "namespaces and namespaceSelector cannot both be set",
                ));
            }
            (Some(namespaces), None) => {
                namespaces_peer(namespaces, object, &format!("{field}.pods.namespaces"))?
            }
            (None, selector_spec) => NamespaceMatch::Selector(selector(
                selector_spec.as_ref(),
                object,
                &format!("{field}.pods.namespaceSelector"),
            )?),
        };
        out.push(Peer::Pods {
            namespaces,
            pods: selector(
                pods.pod_selector.as_ref(),
                object,
                &format!("{field}.pods.podSelector"),
            )?,
        });
    } else if let Some(nodes) = &peer.nodes {
        out.push(Peer::Nodes(selector(
            Some(nodes),
            object,
            &format!("{field}.nodes"),
        )?));
    } else if let Some(networks) = &peer.networks {
        if networks.is_empty() {
            return Err(invalid(
                ErrorKind::InvalidField,
                object,
                format!("{field}.networks"),
                "needs at least one CIDR",
            ));
        }
        for (network_idx, network) in networks.iter().enumerate() {
            out.push(Peer::Ips(IpBlock {
                cidr: parse_cidr(network, object, &format!("{field}.networks[{network_idx}]"))?,
                except: Vec::new(),
            }));
        }
    } else if let Some(domain_names) = &peer.domain_names {
        out.push(Peer::DomainNames(domain_names.clone()));
    }
    Ok(())
}

fn namespaces_peer(
    spec: &NamespacesPeerSpec,
    object: &str,
    field: &str,
) -> Result<NamespaceMatch, Error> {
    let legacy = [
        spec.namespace_selector.is_some(),
        spec.same_labels.is_some(),
        spec.not_same_labels.is_some(),
    ];
    let n_legacy = legacy.iter().filter(|&&is_set| is_set).count();
    let is_selector = spec.match_labels.is_some() || spec.match_expressions.is_some();
    if n_legacy > 1 || (n_legacy == 1 && is_selector) {
        return Err(invalid(
            ErrorKind::InvalidField,
            object,
            field,
            "set a label selector, or exactly one of namespaceSelector, sameLabels and notSameLabels",
        ));
    }
    if let Some(namespace_selector) = &spec.namespace_selector {
        return Ok(NamespaceMatch::Selector(selector(
            Some(namespace_selector),
            object,
            &format!("{field}.namespaceSelector"),
        )?));
    }
    if let Some(labels) = &spec.same_labels {
        return Ok(NamespaceMatch::SameLabels(labels.clone()));
    }
    if let Some(labels) = &spec.not_same_labels {
        return Ok(NamespaceMatch::NotSameLabels(labels.clone()));
    }
    let mut selector_value = serde_json::Map::new();
    if let Some(match_labels) = &spec.match_labels {
        selector_value.insert(
            "matchLabels".into(),
            serde_json::to_value(match_labels).unwrap_or_default(),
        );
    }
    if let Some(match_expressions) = &spec.match_expressions {
        selector_value.insert("matchExpressions".into(), match_expressions.clone());
    }
    let selector_spec: LabelSelectorSpec =
        parse(&Value::Object(selector_value), object).map_err(|error| error.under(field))?;
    Ok(NamespaceMatch::Selector(selector(
        Some(&selector_spec),
        object,
        field,
    )?))
}

fn admin_port(port: &AdminPortSpec, object: &str, field: &str) -> Result<PortMatch, Error> {
    match (&port.port_number, &port.port_range, &port.named_port) {
        (Some(number), None, None) => {
            let port = port_number(number.port, object, &format!("{field}.portNumber.port"))?;
            Ok(PortMatch {
                protocol: Some(protocol_or_tcp(
                    number.protocol.as_deref(),
                    object,
                    &format!("{field}.portNumber.protocol"),
                )?),
                ports: PortSet::Range(port, port),
            })
        }
        (None, Some(range), None) => Ok(PortMatch {
            protocol: Some(protocol_or_tcp(
                range.protocol.as_deref(),
                object,
                &format!("{field}.portRange.protocol"),
            )?),
            ports: port_range(
                range.start,
                range.end,
                object,
                &format!("{field}.portRange"),
            )?,
        }),
        (None, None, Some(name)) => Ok(PortMatch {
            protocol: None,
            ports: PortSet::Named(port_name(name, object, &format!("{field}.namedPort"))?),
        }),
        _ => Err(invalid(
            ErrorKind::InvalidPort,
            object,
            field,
            "exactly one of portNumber, portRange and namedPort must be set",
        )),
    }
}

fn port_range(start: i64, end: i64, object: &str, field: &str) -> Result<PortSet, Error> {
    let start_port = port_number(start, object, &format!("{field}.start"))?;
    let end_port = port_number(end, object, &format!("{field}.end"))?;
    if end_port < start_port {
        return Err(invalid(
            ErrorKind::InvalidPort,
            object,
            format!("{field}.end"),
            format!("end {end_port} is below start {start_port}"),
        ));
    }
    Ok(PortSet::Range(start_port, end_port))
}

fn protocol_port(spec: &ProtocolSpec, object: &str, field: &str) -> Result<PortMatch, Error> {
    let mut matches = Vec::new();
    for (protocol, name, ports) in [
        (Protocol::Tcp, "tcp", &spec.tcp),
        (Protocol::Udp, "udp", &spec.udp),
        (Protocol::Sctp, "sctp", &spec.sctp),
    ] {
        if let Some(ports) = ports {
            let field = format!("{field}.{name}.destinationPort");
            let ports = match &ports.destination_port {
                None => PortSet::All,
                Some(DestinationPortSpec {
                    number: Some(number),
                    range: None,
                }) => {
                    let port = port_number(*number, object, &format!("{field}.number"))?;
                    PortSet::Range(port, port)
                }
                Some(DestinationPortSpec {
                    number: None,
                    range: Some(range),
                }) => port_range(range.start, range.end, object, &format!("{field}.range"))?,
                Some(_) => {
                    return Err(invalid(
                        ErrorKind::InvalidPort,
                        object,
                        field,
                        "exactly one of number and range must be set",
                    ));
                }
            };
            matches.push(PortMatch {
                protocol: Some(protocol),
                ports,
            });
        }
    }
    if let Some(name) = &spec.destination_named_port {
        matches.push(PortMatch {
            protocol: None,
            ports: PortSet::Named(port_name(
                name,
                object,
                &format!("{field}.destinationNamedPort"),
            )?),
        });
    }
    match <[PortMatch; 1]>::try_from(matches) {
        Ok([port_match]) => Ok(port_match),
        Err(_) => Err(invalid(
            ErrorKind::InvalidPort,
            object,
            field,
            "exactly one of tcp, udp, sctp and destinationNamedPort must be set",
        )),
    }
}

// Palisade's firewall objects (palisade.dev/v1alpha1).

#[derive(Deserialize)]
struct NetworkObjectDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: Option<NetworkObjectSpec>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NetworkObjectSpec {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<LabelSelectorSpec>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    service_account: Option<String>,
    #[serde(default)]
    cidrs: Option<Vec<String>>,
}

fn read_network_object(document: &Value, object: &str) -> Result<NetworkObject, Error> {
    let doc: NetworkObjectDoc = parse(document, object)?;
    let name = doc.metadata.name(object)?;
    let spec = doc.spec.unwrap_or_default();
    let members = match &spec.cidrs {
        Some(cidrs) => {
            if spec.namespace.is_some()
                || spec.labels.is_some()
                || spec.image.is_some()
                || spec.service_account.is_some()
            {
                return Err(invalid(
                    ErrorKind::InvalidField,
                    object,
                    "spec.cidrs",
                    "cidrs cannot be combined with namespace, labels, image or serviceAccount",
                ));
            }
            ObjectMembers::Cidrs(
                cidrs
                    .iter()
                    .enumerate()
                    .map(|(cidr_idx, cidr)| {
                        parse_cidr(cidr, object, &format!("spec.cidrs[{cidr_idx}]"))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        None => ObjectMembers::Workloads(WorkloadMatch {
            namespace: spec.namespace.clone().map(Pattern::new),
            labels: selector(spec.labels.as_ref(), object, "spec.labels")?,
            image: spec.image.clone().map(Pattern::new),
            service_account: spec.service_account.clone(),
        }),
    };
    Ok(NetworkObject { name, members })
}

#[derive(Deserialize)]
struct FirewallRuleDoc {
    #[serde(default)]
    metadata: Metadata,
    spec: FirewallRuleSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FirewallRuleSpec {
    source: String,
    destination: String,
    #[serde(default)]
    ports: Option<Vec<RulePortSpec>>,
    #[serde(default)]
    protocol: Option<String>,
    action: String,
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RulePortSpec {
    port: i64,
    #[serde(default)]
    end_port: Option<i64>,
}

/// The priority of a Palisade rule that does not set one.
const DEFAULT_RULE_PRIORITY: u32 = 1000;

fn read_firewall_rule(document: &Value, object: &str) -> Result<FirewallRule, Error> {
    let doc: FirewallRuleDoc = parse(document, object)?;
    let name = doc.metadata.name(object)?;
    let spec = doc.spec;
    let ports_spec = spec.ports.unwrap_or_default();
    if ports_spec.len() > MAX_RULE_PORT_RANGES {
        return Err(invalid(
            ErrorKind::InvalidPort,
            object,
            "spec.ports",
            format!(
                "{} port ranges; a rule has at most {MAX_RULE_PORT_RANGES}",
                ports_spec.len()
            ),
        ));
    }
    let mut ports = Vec::new();
    for (port_idx, port) in ports_spec.iter().enumerate() {
        let field = format!("spec.ports[{port_idx}]");
        let start = port_number(port.port, object, &format!("{field}.port"))?;
        let end = match port.end_port {
            Some(end) => port_number(end, object, &format!("{field}.endPort"))?,
            None => start,
        };
        if end < start {
            return Err(invalid(
                ErrorKind::InvalidPort,
                object,
                format!("{field}.endPort"),
                format!("endPort {end} is below port {start}"),
            ));
        }
        ports.push((start, end));
    }
    let protocol = match spec.protocol.as_deref() {
        None | Some("ANY" | "any" | "Any") => None,
        Some(text) => Some(protocol(text, object, "spec.protocol")?),
    };
    let action = match spec.action.as_str() {
        "allow" | "Allow" => RuleAction::Allow,
        "alert" | "Alert" => RuleAction::Alert,
        "block" | "Block" => RuleAction::Block,
        other => {
            return Err(invalid(
                ErrorKind::InvalidField,
                object,
                "spec.action",
                format!("unknown action {other:?} (expected allow, alert or block)"),
            ));
        }
    };
    Ok(FirewallRule {
        name,
        source: spec.source,
        destination: spec.destination,
        ports,
        protocol,
        action,
        priority: spec.priority.unwrap_or(DEFAULT_RULE_PRIORITY),
        enabled: spec.enabled.unwrap_or(true),
    })
}
