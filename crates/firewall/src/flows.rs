//! Observed flows: what the agent records (JSON lines of attributed connections) and what
//! `learn` and `simulate` read back.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorKind};
use crate::flow::{Endpoint, Flow, Workload};
use crate::policy::Protocol;
use crate::selector::Labels;
use crate::state::State;

/// The most flow records one file may hold; a longer file is refused rather than read into
/// memory without bound.
pub const MAX_FLOW_RECORDS: usize = 1_000_000;

/// One end of an observed flow, as the agent attributed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowEnd {
    /// The workload's namespace; `None` for an address outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod's name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The pod's labels.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// The namespace's labels.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub namespace_labels: Labels,
    /// The address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

impl FlowEnd {
    /// An address outside the cluster.
    pub fn external(ip: IpAddr) -> FlowEnd {
        FlowEnd {
            ip: Some(ip),
            ..FlowEnd::default()
        }
    }

    /// `namespace/pod`, `namespace/{labels}` or the address, for tables and alerts.
    pub fn display_name(&self) -> String {
        match (&self.namespace, &self.pod, self.ip) {
            (Some(namespace), Some(pod), _) => format!("{namespace}/{pod}"),
            (Some(namespace), None, _) => {
                let labels: Vec<String> = self
                    .labels
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                format!("{namespace}/{{{}}}", labels.join(","))
            }
            (None, _, Some(ip)) => ip.to_string(),
            (None, _, None) => "unknown".to_owned(),
        }
    }

    /// The endpoint for the engine: the state's pod when the name or the address identifies
    /// one, else the workload described inline, else the address.
    pub fn endpoint(&self, state: &State) -> Result<Endpoint, Error> {
        if let (Some(namespace), Some(pod)) = (&self.namespace, &self.pod)
            && let Some(pod_id) = state.pod_id(namespace, pod)
        {
            return Ok(Endpoint::Pod(pod_id));
        }
        if let Some(ip) = self.ip
            && let Ok(endpoint @ Endpoint::Pod(_)) = state.endpoint(&ip.to_string())
        {
            return Ok(endpoint);
        }
        match (&self.namespace, self.ip) {
            (Some(namespace), ip) => {
                let namespace_labels = if self.namespace_labels.is_empty() {
                    state
                        .namespace(namespace)
                        .map(|known| known.labels.clone())
                        .unwrap_or_default()
                } else {
                    self.namespace_labels.clone()
                };
                Ok(Endpoint::Workload(Box::new(Workload {
                    namespace: namespace.clone(),
                    labels: self.labels.clone(),
                    namespace_labels,
                    ip,
                })))
            }
            (None, Some(ip)) => Ok(Endpoint::Ip(ip)),
            (None, None) => Err(Error::new(
                ErrorKind::InvalidField,
                "flow",
                "",
                "an end has neither a namespace nor an ip",
            )),
        }
    }
}

/// One observed connection (or several, aggregated), as a line of a flows file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservedFlow {
    /// The client.
    pub src: FlowEnd,
    /// The server.
    pub dst: FlowEnd,
    /// The protocol.
    #[serde(serialize_with = "protocol_text", deserialize_with = "protocol_parse")]
    pub protocol: Protocol,
    /// The destination port.
    pub port: u16,
    /// How many connections this record stands for.
    #[serde(default = "one")]
    pub attempts: u64,
    /// True when the connections were refused where they were observed.
    #[serde(default)]
    pub blocked: bool,
    /// First observation, milliseconds since the Unix epoch (0 when unknown).
    #[serde(default)]
    pub first_seen_ms: i64,
    /// Latest observation, milliseconds since the Unix epoch (0 when unknown).
    #[serde(default)]
    pub last_seen_ms: i64,
}

fn one() -> u64 {
    1
}

fn protocol_text<S: Serializer>(protocol: &Protocol, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(protocol)
}

fn protocol_parse<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Protocol, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

impl ObservedFlow {
    /// The flow for the engine, its ends resolved against `state`.
    pub fn to_flow(&self, state: &State) -> Result<Flow, Error> {
        Ok(Flow::new(
            self.src.endpoint(state)?,
            self.dst.endpoint(state)?,
            self.protocol,
            self.port,
        ))
    }

    /// `src -> dst port/PROTOCOL`.
    pub fn describe(&self) -> String {
        format!(
            "{} -> {} {}/{}",
            self.src.display_name(),
            self.dst.display_name(),
            self.port,
            self.protocol
        )
    }
}

/// Reads a flows file: one JSON [`ObservedFlow`] per line, blank lines ignored. `source`
/// names the file in errors, which also give the line.
pub fn read_flows(text: &str, source: &str) -> Result<Vec<ObservedFlow>, Error> {
    let mut flows = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if flows.len() == MAX_FLOW_RECORDS {
            return Err(Error::new(
                ErrorKind::InvalidField,
                source,
                "",
                format!("more than {MAX_FLOW_RECORDS} flow records; split the file"),
            ));
        }
        let flow: ObservedFlow = serde_json::from_str(line).map_err(|error| {
            Error::new(
                ErrorKind::Syntax,
                format!("{source} line {}", line_idx + 1),
                "",
                error.to_string(),
            )
        })?;
        if (flow.src.namespace.is_none() && flow.src.ip.is_none())
            || (flow.dst.namespace.is_none() && flow.dst.ip.is_none())
        {
            return Err(Error::new(
                ErrorKind::InvalidField,
                format!("{source} line {}", line_idx + 1),
                "",
                "each end needs a namespace or an ip",
            ));
        }
        flows.push(flow);
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use super::{FlowEnd, ObservedFlow, read_flows};
    use crate::flow::Endpoint;
    use crate::policy::Protocol;
    use crate::state::State;

    #[test]
    fn flow_lines_round_trip_and_resolve() {
        let state = State::from_yaml(
            "kind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\n\
             status: {podIP: 10.0.0.2}\n",
        )
        .unwrap();
        let flow = ObservedFlow {
            src: FlowEnd::external("192.0.2.1".parse().unwrap()),
            dst: FlowEnd {
                ip: Some("10.0.0.2".parse().unwrap()),
                ..FlowEnd::default()
            },
            protocol: Protocol::Tcp,
            port: 80,
            attempts: 3,
            blocked: false,
            first_seen_ms: 1,
            last_seen_ms: 2,
        };
        let line = serde_json::to_string(&flow).unwrap();
        assert!(line.contains(r#""protocol":"TCP""#), "{line}");
        let read = read_flows(&format!("\n{line}\n\n"), "flows.jsonl").unwrap();
        assert_eq!(read, vec![flow.clone()]);
        let resolved = read[0].to_flow(&state).unwrap();
        assert_eq!(resolved.src, Endpoint::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(
            resolved.dst,
            Endpoint::Pod(state.pod_id("shop", "web").unwrap())
        );
        assert_eq!(flow.describe(), "192.0.2.1 -> 10.0.0.2 80/TCP");
    }

    #[test]
    fn bad_lines_are_named() {
        let error = read_flows("{}\n", "f.jsonl").unwrap_err();
        assert_eq!(error.object(), "f.jsonl line 1");
        let error = read_flows(
            "\n{\"src\":{},\"dst\":{\"ip\":\"10.0.0.1\"},\"protocol\":\"TCP\",\"port\":1}\n",
            "f.jsonl",
        )
        .unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
        let error = read_flows(
            "{\"src\":{\"ip\":\"10.0.0.1\"},\"dst\":{\"ip\":\"10.0.0.1\"},\"protocol\":\"ICMP\",\"port\":1}",
            "f.jsonl",
        )
        .unwrap_err();
        assert!(error.to_string().contains("ICMP"), "{error}");
    }
}
