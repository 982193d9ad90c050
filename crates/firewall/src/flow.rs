//! A connection to decide: endpoints, protocol and port.

use std::net::IpAddr;

use crate::policy::Protocol;
use crate::selector::Labels;

/// A pod's index in the [`State`](crate::State) it was looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodId(pub(crate) u32);

impl PodId {
    /// The index into [`State::pods`](crate::State::pods).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A pod of the state; its labels, namespace, IP and container ports are used.
    Pod(PodId),
    /// A workload that is not in the state, described inline (as a sensor sees it, or as
    /// flow-level test cases give it).
    Workload(Box<Workload>),
    /// An address outside the cluster: only IP-based peers match it, and no policy applies
    /// to it as a subject.
    Ip(IpAddr),
}

/// An in-cluster workload described inline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// Its namespace.
    pub namespace: String,
    /// Its pod labels.
    pub labels: Labels,
    /// Its namespace's labels.
    pub namespace_labels: Labels,
    /// Its IP, if known (ipBlock peers need it).
    pub ip: Option<IpAddr>,
}

/// A connection from `src` to `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The client.
    pub src: Endpoint,
    /// The server.
    pub dst: Endpoint,
    /// The protocol.
    pub protocol: Protocol,
    /// The destination port. When `None`, it is resolved from `port_name` against the
    /// destination pod's container ports.
    pub port: Option<u16>,
    /// The destination container port's name. When `None`, it is resolved from `port` and
    /// `protocol` against the destination pod's container ports.
    pub port_name: Option<String>,
}

impl Flow {
    /// A flow to a numeric port.
    pub fn new(src: Endpoint, dst: Endpoint, protocol: Protocol, port: u16) -> Flow {
        Flow {
            src,
            dst,
            protocol,
            port: Some(port),
            port_name: None,
        }
    }
}
