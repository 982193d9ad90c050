//! Proposing policies from observed flows: Palisade rules and Kubernetes NetworkPolicies that
//! allow exactly the traffic seen.
//!
//! Pods are grouped by workload: their namespace and their labels without the ones a
//! controller sets per pod or per revision (`pod-template-hash`, ...), so that the replicas of
//! a Deployment share one rule. A pod whose remaining labels are empty cannot be selected on
//! its own, so it stands for every pod of its namespace (`podSelector: {}`): the proposal is
//! then wider than what was seen, for that namespace only. Addresses outside the cluster are
//! kept one by one (`/32`, `/128`). Ports are merged into ranges per group pair and protocol.
//!
//! Palisade rules: an `allow` rule (priority 100) per group pair and protocol (split every
//! [`MAX_RULE_PORT_RANGES`] ranges), and for every in-cluster group four `block` rules
//! (priority 900) from and to every workload and every address, so that a connection not seen
//! is refused in both directions. NetworkPolicies: one per in-cluster group, isolating it for
//! ingress and egress, with one rule per peer group and protocol. A peer in another namespace
//! is selected through the `kubernetes.io/metadata.name` namespace label, which the apiserver
//! sets on every namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Value, json};

use crate::firewall::MAX_RULE_PORT_RANGES;
use crate::flows::ObservedFlow;
use crate::policy::Protocol;
use crate::selector::Labels;

/// Labels that differ between the pods of one workload, so they are left out of groups.
const PER_POD_LABELS: [&str; 7] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
];

/// The namespace label the apiserver sets to the namespace's name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Priority of learned `allow` rules.
const ALLOW_PRIORITY: u32 = 100;
/// Priority of the `block` rules that close everything else.
const BLOCK_PRIORITY: u32 = 900;

/// A set of endpoints a learned rule names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Pods of `namespace` with exactly these workload labels (all pods when empty).
    Workload { namespace: String, labels: Labels },
    /// One address outside the cluster.
    Address(IpAddr),
}

impl Group {
    fn of(end: &crate::flows::FlowEnd) -> Option<Group> {
        match (&end.namespace, end.ip) {
            (Some(namespace), _) => Some(Group::Workload {
                namespace: namespace.clone(),
                labels: end
                    .labels
                    .iter()
                    .filter(|(key, _)| !PER_POD_LABELS.contains(&key.as_str()))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
            }),
            (None, Some(ip)) => Some(Group::Address(ip)),
            (None, None) => None,
        }
    }

    /// The network object's name: `namespace/k=v,k=v`, `namespace/*` or the CIDR.
    fn object_name(&self) -> String {
        match self {
            Group::Workload { namespace, labels } if labels.is_empty() => format!("{namespace}/*"),
            Group::Workload { namespace, labels } => {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                format!("{namespace}/{}", labels.join(","))
            }
            Group::Address(ip) => host_cidr(*ip),
        }
    }

    fn object(&self) -> Value {
        let spec = match self {
            Group::Workload { namespace, labels } => {
                json!({"namespace": namespace, "labels": {"matchLabels": labels}})
            }
            Group::Address(ip) => json!({"cidrs": [host_cidr(*ip)]}),
        };
        json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "NetworkObject",
               "metadata": {"name": self.object_name()}, "spec": spec})
    }

    /// A NetworkPolicy peer selecting this group, seen from a policy in `own_namespace`.
    fn peer(&self, own_namespace: &str) -> Value {
        match self {
            Group::Workload { namespace, labels } if namespace == own_namespace => {
                json!({"podSelector": {"matchLabels": labels}})
            }
            Group::Workload { namespace, labels } => json!({
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
                "podSelector": {"matchLabels": labels},
            }),
            Group::Address(ip) => json!({"ipBlock": {"cidr": host_cidr(*ip)}}),
        }
    }
}

fn host_cidr(ip: IpAddr) -> String {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    format!("{ip}/{prefix}")
}

/// What `learn` proposes, as Kubernetes-style documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    /// Palisade `NetworkObject`s and `FirewallRule`s.
    pub palisade: Vec<Value>,
    /// `NetworkPolicy` objects.
    pub network_policies: Vec<Value>,
}

impl Learned {
    /// The documents as one multi-document YAML text.
    pub fn to_yaml(documents: &[Value]) -> String {
        documents
            .iter()
            .map(|document| {
                // JSON is YAML too: the fallback keeps a document the emitter refuses.
                let mut text =
                    serde_saphyr::to_string(document).unwrap_or_else(|_| document.to_string());
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            })
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

/// Traffic seen between two groups with one protocol: the destination ports.
type Observed = BTreeMap<(Group, Group, Protocol), BTreeSet<u16>>;

/// Proposes policies that allow exactly `flows` (see the module documentation for the one
/// way they can be wider). Flows whose ends cannot be grouped are skipped.
pub fn learn(flows: &[ObservedFlow]) -> Learned {
    let mut observed = Observed::new();
    for flow in flows {
        if let (Some(src), Some(dst)) = (Group::of(&flow.src), Group::of(&flow.dst)) {
            observed
                .entry((src, dst, flow.protocol))
                .or_default()
                .insert(flow.port);
        }
    }
    Learned {
        palisade: palisade_rules(&observed),
        network_policies: network_policies(&observed),
    }
}

/// Consecutive ports merged into inclusive ranges.
fn port_ranges(ports: &BTreeSet<u16>) -> Vec<(u16, u16)> {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for &port in ports {
        match ranges.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(port) => *end = port,
            _ => ranges.push((port, port)),
        }
    }
    ranges
}

fn port_spec(start: u16, end: u16) -> Value {
    if start == end {
        json!({"port": start})
    } else {
        json!({"port": start, "endPort": end})
    }
}

fn palisade_rules(observed: &Observed) -> Vec<Value> {
    let mut groups: BTreeSet<&Group> = BTreeSet::new();
    for (src, dst, _) in observed.keys() {
        groups.insert(src);
        groups.insert(dst);
    }
    const ANY_WORKLOAD: &str = "learned/any-workload";
    const ANY_ADDRESS: &str = "learned/any-address";
    let mut documents: Vec<Value> = groups.iter().map(|group| group.object()).collect();
    documents.push(
        json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "NetworkObject",
        "metadata": {"name": ANY_WORKLOAD}, "spec": {}}),
    );
    documents.push(
        json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "NetworkObject",
        "metadata": {"name": ANY_ADDRESS}, "spec": {"cidrs": ["0.0.0.0/0", "::/0"]}}),
    );
    let rule = |name: String,
                src: &str,
                dst: &str,
                ports: Vec<Value>,
                protocol: Option<String>,
                action: &str,
                priority: u32| {
        let mut spec = json!({"source": src, "destination": dst, "action": action,
                              "priority": priority, "ports": ports});
        if let Some(protocol) = protocol {
            spec["protocol"] = json!(protocol);
        }
        json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "FirewallRule",
               "metadata": {"name": name}, "spec": spec})
    };
    let mut n_rules = 0;
    for ((src, dst, protocol), ports) in observed {
        for chunk in port_ranges(ports).chunks(MAX_RULE_PORT_RANGES) {
            n_rules += 1;
            let ports = chunk
                .iter()
                .map(|&(start, end)| port_spec(start, end))
                .collect();
            documents.push(rule(
                format!("learned-allow-{n_rules:04}"),
                &src.object_name(),
                &dst.object_name(),
                ports,
                Some(protocol.to_string()),
                "allow",
                ALLOW_PRIORITY,
            ));
        }
    }
    for group in groups
        .iter()
        .filter(|group| matches!(group, Group::Workload { .. }))
    {
        let name = group.object_name();
        for (direction, src, dst) in [
            ("egress", name.as_str(), ANY_WORKLOAD),
            ("egress-external", name.as_str(), ANY_ADDRESS),
            ("ingress", ANY_WORKLOAD, name.as_str()),
            ("ingress-external", ANY_ADDRESS, name.as_str()),
        ] {
            documents.push(rule(
                format!("learned-block-{direction} {name}"),
                src,
                dst,
                Vec::new(),
                None,
                "block",
                BLOCK_PRIORITY,
            ));
        }
    }
    documents
}

fn network_policies(observed: &Observed) -> Vec<Value> {
    // Per in-cluster group: ingress and egress rules, keyed by peer and protocol.
    type Rules<'a> = BTreeMap<(&'a Group, Protocol), &'a BTreeSet<u16>>;
    let mut per_group: BTreeMap<&Group, (Rules<'_>, Rules<'_>)> = BTreeMap::new();
    for ((src, dst, protocol), ports) in observed {
        if matches!(src, Group::Workload { .. }) {
            per_group
                .entry(src)
                .or_default()
                .1
                .insert((dst, *protocol), ports);
        }
        if matches!(dst, Group::Workload { .. }) {
            per_group
                .entry(dst)
                .or_default()
                .0
                .insert((src, *protocol), ports);
        }
    }
    let mut documents = Vec::new();
    for (n_policy, (group, (ingress, egress))) in per_group.into_iter().enumerate() {
        let Group::Workload { namespace, labels } = group else {
            continue;
        };
        let rules = |rules: Rules<'_>, peer_key: &str| -> Vec<Value> {
            rules
                .into_iter()
                .map(|((peer, protocol), ports)| {
                    let ports: Vec<Value> = port_ranges(ports)
                        .into_iter()
                        .map(|(start, end)| {
                            let mut port = port_spec(start, end);
                            port["protocol"] = json!(protocol.to_string());
                            port
                        })
                        .collect();
                    json!({peer_key: [peer.peer(namespace)], "ports": ports})
                })
                .collect()
        };
        documents.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": format!("learned-{:03}", n_policy + 1), "namespace": namespace},
            "spec": {
                "podSelector": {"matchLabels": labels},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": rules(ingress, "from"),
                "egress": rules(egress, "to"),
            },
        }));
    }
    documents
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::port_ranges;

    #[test]
    fn ports_merge_into_ranges() {
        let ports: BTreeSet<u16> = [80, 81, 82, 443, 8080, 65535, 65534].into();
        assert_eq!(
            port_ranges(&ports),
            vec![(80, 82), (443, 443), (8080, 8080), (65534, 65535)]
        );
    }
}
