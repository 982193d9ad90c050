//! Pod-to-pod connectivity matrices.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::engine::Engine;
use crate::flow::{Endpoint, Flow, PodId};
use crate::policy::Protocol;

/// Verdicts for every ordered pair of pods (`from` is the client, `to` the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// The pods as `namespace/name`, in state order; rows and columns use this order.
    pub pods: Vec<String>,
    /// `combined[from][to]`: egress at `from` and ingress at `to` both allow.
    pub combined: Vec<Vec<bool>>,
    /// `ingress[from][to]`: `to`'s ingress admits `from`.
    pub ingress: Vec<Vec<bool>>,
    /// `egress[from][to]`: `from`'s egress admits traffic to `to`.
    pub egress: Vec<Vec<bool>>,
}

/// The port a matrix is probed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The protocol.
    pub protocol: Protocol,
    /// The destination port (resolved from `port_name` per destination pod when `None`).
    pub port: Option<u16>,
    /// The destination container port name (resolved from `port` when `None`).
    pub port_name: Option<String>,
}

/// Evaluates every ordered pair of pods of the engine's state, self-pairs included.
pub fn matrix(engine: &Engine<'_>, probe: &Probe) -> Matrix {
    let n_pods = engine.state().pods().len();
    let mut result = Matrix {
        pods: engine.state().pods().iter().map(|pod| pod.key()).collect(),
        combined: vec![vec![false; n_pods]; n_pods],
        ingress: vec![vec![false; n_pods]; n_pods],
        egress: vec![vec![false; n_pods]; n_pods],
    };
    let pod_ids: Vec<PodId> = (0..n_pods)
        .filter_map(|idx| u32::try_from(idx).ok().map(PodId))
        .collect();
    let mut flow = Flow {
        src: Endpoint::Ip([0, 0, 0, 0].into()),
        dst: Endpoint::Ip([0, 0, 0, 0].into()),
        protocol: probe.protocol,
        port: probe.port,
        port_name: probe.port_name.clone(),
    };
    for &from in &pod_ids {
        for &to in &pod_ids {
            flow.src = Endpoint::Pod(from);
            flow.dst = Endpoint::Pod(to);
            let verdict = engine.evaluate(&flow);
            result.combined[from.index()][to.index()] = verdict.allowed;
            result.ingress[from.index()][to.index()] = verdict.ingress.allowed;
            result.egress[from.index()][to.index()] = verdict.egress.allowed;
        }
    }
    result
}

impl Matrix {
    fn as_map(&self, cells: &[Vec<bool>]) -> BTreeMap<&str, BTreeMap<&str, bool>> {
        self.pods
            .iter()
            .zip(cells)
            .map(|(from, row)| {
                let row = self
                    .pods
                    .iter()
                    .zip(row)
                    .map(|(to, &allowed)| (to.as_str(), allowed))
                    .collect();
                (from.as_str(), row)
            })
            .collect()
    }
}

/// Serialises as `{"combined": {from: {to: bool}}, "ingress": {...}, "egress": {...}}`.
impl Serialize for Matrix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("combined", &self.as_map(&self.combined))?;
        map.serialize_entry("ingress", &self.as_map(&self.ingress))?;
        map.serialize_entry("egress", &self.as_map(&self.egress))?;
        map.end()
    }
}
