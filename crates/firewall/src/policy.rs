//! The normalised policy model every Kubernetes policy kind is read into.
//!
//! NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy all
//! become a [`Policy`]: a subject, a tier, a priority, and per direction an optional list of
//! ordered [`Rule`]s. Defaults the apiserver applies (`policyTypes`, `protocol: TCP`) are
//! applied while reading, so the engine never sees an undefaulted field.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::net::IpNet;
use crate::selector::Selector;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP, the Kubernetes default.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl FromStr for Protocol {
    type Err = String;

    /// Parses `TCP`, `UDP` or `SCTP`, in any case.
    fn from_str(text: &str) -> Result<Protocol, String> {
        match text.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            _ => Err(format!(
                "unknown protocol {text:?} (expected TCP, UDP or SCTP)"
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// Which way a rule looks: at traffic arriving at the subject, or leaving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Traffic to the subject; the peer is the source.
    Ingress,
    /// Traffic from the subject; the peer is the destination.
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// The API kind a policy was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// `networking.k8s.io/v1 NetworkPolicy`.
    NetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy`.
    AdminNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha1 BaselineAdminNetworkPolicy`.
    BaselineAdminNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy`.
    ClusterNetworkPolicy,
}

impl PolicyKind {
    /// The Kubernetes `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            PolicyKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
        }
    }
}

/// The tier a Kubernetes policy is evaluated in (Palisade's own rules come before all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// AdminNetworkPolicy and ClusterNetworkPolicy `tier: Admin`.
    Admin,
    /// NetworkPolicy.
    NetworkPolicy,
    /// BaselineAdminNetworkPolicy and ClusterNetworkPolicy `tier: Baseline`.
    Baseline,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Admin => "admin",
            Tier::NetworkPolicy => "network-policy",
            Tier::Baseline => "baseline",
        })
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allow (`Allow`, CNP `Accept`, every NetworkPolicy rule). Final for the direction.
    Allow,
    /// Deny. Final for the direction.
    Deny,
    /// Skip the rest of the tier and continue with the next tier.
    Pass,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Pass => "pass",
        })
    }
}

/// Which pods a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A NetworkPolicy's `podSelector`, inside the policy's namespace.
    Namespace {
        /// The policy's namespace.
        namespace: String,
        /// The pods selected there.
        pods: Selector,
    },
    /// An admin policy's `subject`: pods matching `pods` in namespaces matching `namespaces`.
    Pods {
        /// Namespace selector (`subject.namespaces`, or `subject.pods.namespaceSelector`).
        namespaces: Selector,
        /// Pod selector (everything for `subject.namespaces`).
        pods: Selector,
    },
}

/// How a pod peer's namespace is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMatch {
    /// Exactly this namespace (a NetworkPolicy peer with only a `podSelector`).
    Name(String),
    /// Namespaces whose labels match.
    Selector(Selector),
    /// ANP v1alpha1 (v0.1.x) `sameLabels`: the peer's namespace has every listed label, with
    /// the same value as the subject's namespace.
    SameLabels(Vec<String>),
    /// ANP v1alpha1 (v0.1.x) `notSameLabels`: both namespaces have every listed label and at
    /// least one value differs.
    NotSameLabels(Vec<String>),
}

/// An IP block with carve-outs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlock {
    /// The block.
    pub cidr: IpNet,
    /// Addresses inside `cidr` that are not part of the peer.
    pub except: Vec<IpNet>,
}

impl IpBlock {
    /// True when `ip` is in the block and in none of the exceptions.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|except| except.contains(ip))
    }
}

/// One `from` / `to` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Every source or destination, inside the cluster or not (an absent or empty
    /// NetworkPolicy `from` / `to`).
    Everything,
    /// Pods matching `pods` in namespaces matching `namespaces` (both must hold).
    Pods {
        /// The namespace condition.
        namespaces: NamespaceMatch,
        /// The pod selector.
        pods: Selector,
    },
    /// Any endpoint, pod or not, whose IP is in the block (`ipBlock`, `networks`).
    Ips(IpBlock),
    /// Node IPs of nodes whose labels match (`nodes`).
    Nodes(Selector),
    /// `domainNames`: needs DNS observation, so it never matches an IP-level flow.
    DomainNames(Vec<String>),
}

/// The port (or ports) a rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSet {
    /// Every port.
    All,
    /// The inclusive range; a single port is `Range(p, p)`.
    Range(u16, u16),
    /// A container port name, resolved against the destination pod's container ports.
    Named(String),
}

/// One entry of a rule's port list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMatch {
    /// The protocol; `None` = any (a CNP `destinationNamedPort`).
    pub protocol: Option<Protocol>,
    /// The ports.
    pub ports: PortSet,
}

impl PortMatch {
    /// True when traffic with `protocol`, the (resolved) destination port number and the
    /// (resolved) container port name is admitted.
    pub fn matches(&self, protocol: Protocol, port: Option<u16>, port_name: Option<&str>) -> bool {
        if self.protocol.is_some_and(|own| own != protocol) {
            return false;
        }
        match &self.ports {
            PortSet::All => true,
            PortSet::Range(start, end) => port.is_some_and(|port| *start <= port && port <= *end),
            PortSet::Named(name) => port_name == Some(name.as_str()),
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.protocol {
            Some(protocol) => write!(f, "{protocol}/")?,
            None => f.write_str("any/")?,
        }
        match &self.ports {
            PortSet::All => f.write_str("*"),
            PortSet::Range(start, end) if start == end => write!(f, "{start}"),
            PortSet::Range(start, end) => write!(f, "{start}-{end}"),
            PortSet::Named(name) => f.write_str(name),
        }
    }
}

/// One rule of a policy, for one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's `name`, when the API has one and it is set.
    pub name: Option<String>,
    /// What a match does.
    pub action: Action,
    /// The peers; the rule matches when any matches.
    pub peers: Vec<Peer>,
    /// The ports; empty = every port and protocol.
    pub ports: Vec<PortMatch>,
}

/// A Kubernetes policy object, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The API kind.
    pub kind: PolicyKind,
    /// The namespace (NetworkPolicy only).
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// The tier.
    pub tier: Tier,
    /// Precedence within the tier (lower first); 0 for NetworkPolicy and BANP.
    pub priority: i32,
    /// The pods it applies to.
    pub subject: Subject,
    /// Ingress rules, or `None` when the policy does not affect ingress. For a NetworkPolicy,
    /// `Some` (even empty) means the selected pods are isolated for ingress.
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules, like `ingress`.
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    /// The rules for one direction, if the policy affects it.
    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    /// `Kind namespace/name` or `Kind name`, for messages and explanations.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{}", self.kind.as_str(), self.name),
            None => format!("{} {}", self.kind.as_str(), self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PortMatch, PortSet, Protocol};

    #[test]
    fn port_match_checks_protocol_range_and_name() {
        let range = PortMatch {
            protocol: Some(Protocol::Tcp),
            ports: PortSet::Range(80, 90),
        };
        assert!(range.matches(Protocol::Tcp, Some(80), None));
        assert!(range.matches(Protocol::Tcp, Some(90), None));
        assert!(!range.matches(Protocol::Tcp, Some(91), None));
        assert!(!range.matches(Protocol::Udp, Some(85), None));
        assert!(!range.matches(Protocol::Tcp, None, Some("http")));
        let named = PortMatch {
            protocol: None,
            ports: PortSet::Named("http".into()),
        };
        assert!(named.matches(Protocol::Udp, Some(1), Some("http")));
        assert!(!named.matches(Protocol::Tcp, Some(80), None));
        assert_eq!(named.to_string(), "any/http");
        assert_eq!(range.to_string(), "TCP/80-90");
    }

    #[test]
    fn protocol_parses_any_case() {
        assert_eq!("sctp".parse::<Protocol>(), Ok(Protocol::Sctp));
        assert_eq!("UDP".parse::<Protocol>(), Ok(Protocol::Udp));
        assert!("ICMP".parse::<Protocol>().is_err());
    }
}
