//! What the cluster holds besides policies: namespaces, pods and nodes.

use std::net::IpAddr;

use crate::policy::Protocol;
use crate::selector::Labels;

/// A namespace and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The name.
    pub name: String,
    /// The labels, exactly as given (no label is added implicitly).
    pub labels: Labels,
}

/// A pod: what policies select it by and what they match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The labels.
    pub labels: Labels,
    /// `status.podIPs` (or `status.podIP`); the first is the one flows use.
    pub ips: Vec<IpAddr>,
    /// Container ports of all containers, for named-port resolution.
    pub ports: Vec<ContainerPort>,
    /// Container images, for Palisade's image-based network objects.
    pub images: Vec<String>,
    /// `spec.serviceAccountName`.
    pub service_account: Option<String>,
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One `spec.containers[].ports[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    /// The port's name, if any.
    pub name: Option<String>,
    /// `containerPort`.
    pub port: u16,
    /// The protocol (TCP when unset).
    pub protocol: Protocol,
}

/// A node, for `nodes` peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The name.
    pub name: String,
    /// The labels.
    pub labels: Labels,
    /// Addresses from `status.addresses` that are IPs.
    pub addresses: Vec<IpAddr>,
}
