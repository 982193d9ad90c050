//! The container firewall in the agent: every connect and accept the sensor sees is
//! attributed to workloads, decided by the firewall engine, recorded as a flow, and — when
//! the policy refuses it or an `alert` rule matches — reported as a firewall alert. In block
//! mode the Palisade rules of every workload seen on this node are also enforced: by
//! `cgroup/connect4`/`connect6` programs on the workload's cgroup (a refused `connect()` fails
//! with `EPERM` before a packet exists) and by an nftables table in its network namespace
//! (ingress, and what the programs cannot see). Both are installed only while the workload has
//! an `alert` or `block` rule, and removed when its last one is disabled or edited to `allow`,
//! when the workload leaves the policy, and when the agent stops.
//!
//! # Attribution
//!
//! The local end of a socket is the workload of the calling process: the pod named by the
//! container's Kubernetes identity, else the pod of the policy state whose IP is the socket's
//! local address, else the node (its address, as an external endpoint). The remote end is the
//! state's pod with the remote address, else that address outside the cluster. Loopback
//! traffic stays inside a workload and is ignored. A connection between two pods is counted
//! once, at the `connect`: an `accept` is only counted when its client is not a pod of the
//! state (it came from outside the cluster or from a host).
//!
//! # Alerts and attempts
//!
//! Every violating attempt is one report whose aggregation key is (cluster, deciding rule,
//! source, destination, port, protocol, UTC day) ([`FindingReport::dedupe_key`]), so the
//! server keeps one finding per flow and day and its count is the attempts count.
//!
//! # Policy updates
//!
//! The policy arrives whole through a [`PolicyUpdates`] channel (from the server poll in
//! [`poll_firewall_rules`], or any other feed) and is picked up on the next tick. In block
//! mode, connections that are already open and that the new rules refuse are closed (the
//! kernel aborts the workload's socket and resets the peer), each with its own firewall alert
//! (alert name `<rule>: open connection closed`), so that an edit leaves nothing running that
//! it refuses.
//!
//! # Which cgroup
//!
//! The connect programs go on the cgroup2 directory of the workload's process, as the sensor
//! saw it connect — never on the cgroup2 root nor on a cgroup that holds the agent itself
//! (the programs would then judge the agent's and the host's own connects); for those only
//! the nftables table is used. A refused connect has no local address yet, so the calling
//! process's cgroup id attributes it to its workload.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use palisade_enforce::{
    ConnectFilter, DefenseMode, NftFirewall, WorkloadFirewall, WorkloadRules, WouldRefuse,
    cgroup2_root, workload_rules,
};
use palisade_event::{Event, EventKind, FdKind, Payload, Protocol as SocketProtocol};
use palisade_firewall::{
    Decision, DirectionExplanation, Engine, FirewallRule, FlowEnd, ObservedFlow, OwnedEngine,
    PodId, Protocol, RuleAction, State, Verdict,
};
use palisade_model::{
    AffectedAsset, Details, FindingReport, FirewallAction, FirewallDetails, Severity, Timestamp,
};
use uuid::Uuid;

use crate::EventObserver;

/// How often recorded flows are appended to the flows file.
const FLOW_FLUSH_EVERY_MS: i64 = 10_000;
/// The most distinct flows kept between two flushes; more flush early.
const MAX_PENDING_FLOWS: usize = 50_000;
/// `connect` on a non-blocking socket: the attempt is under way.
const EINPROGRESS: i64 = 115;
/// Where `ip netns` keeps named network namespaces.
const NAMED_NETNS_DIR: &str = "/run/netns";

/// Sends new policies to a running [`FirewallWatch`].
pub type PolicyUpdates = mpsc::Sender<State>;

/// What a [`FirewallWatch`] does and where.
#[derive(Debug, Clone)]
pub struct FirewallWatchConfig {
    /// Cluster name for alerts.
    pub cluster: String,
    /// This node's name.
    pub node: String,
    /// Alert (report only) or block (also enforce).
    pub mode: DefenseMode,
    /// Where attributed flows are appended as JSON lines (for `palisade firewall learn`).
    pub flows_file: Option<PathBuf>,
}

/// The firewall's [`EventObserver`]. See the module documentation.
pub struct FirewallWatch {
    config: FirewallWatchConfig,
    policy: Option<OwnedEngine>,
    updates: mpsc::Receiver<State>,
    pending_flows: HashMap<(FlowEnd, FlowEnd, Protocol, u16, bool), ObservedFlow>,
    last_flush_ms: i64,
    enforcement: Enforcement,
}

impl FirewallWatch {
    /// A watch with no policy yet (every flow is recorded, none is reported) and the sender
    /// its policies come through.
    pub fn new(config: FirewallWatchConfig) -> (FirewallWatch, PolicyUpdates) {
        let (sender, updates) = mpsc::channel();
        let watch = FirewallWatch {
            config,
            policy: None,
            updates,
            pending_flows: HashMap::new(),
            last_flush_ms: 0,
            enforcement: Enforcement::default(),
        };
        (watch, sender)
    }

    /// Pods whose rules are enforced now, as `namespace/name`.
    pub fn enforced_pods(&self) -> Vec<String> {
        let mut pods: Vec<String> = self
            .enforcement
            .pods
            .iter()
            .filter(|(_, pod)| pod.installed.is_some())
            .map(|(key, _)| key.clone())
            .collect();
        pods.sort();
        pods
    }

    /// Takes the newest policy from the channel, if one arrived, and re-applies enforcement;
    /// connections it closes are reported.
    fn pick_up_policy(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
        let Some(state) = self.updates.try_iter().last() else {
            return;
        };
        match OwnedEngine::new(state) {
            Ok(policy) => {
                tracing::info!(
                    rules = policy.state().firewall_rules().len(),
                    policies = policy.state().policies().len(),
                    pods = policy.state().pods().len(),
                    "Firewall policy updated."
                );
                if self.config.mode == DefenseMode::Block {
                    let closed = self.enforcement.reapply(policy.state());
                    report_closed(&policy, &closed, &self.config, now, reports);
                }
                self.policy = Some(policy);
            }
            Err(error) => {
                tracing::error!(%error, "The new firewall policy is invalid; the previous one stays in force.");
            }
        }
    }

    fn record_flow(&mut self, flow: &ObservedFlow) {
        let key = (
            flow.src.clone(),
            flow.dst.clone(),
            flow.protocol,
            flow.port,
            flow.blocked,
        );
        self.pending_flows
            .entry(key)
            .and_modify(|pending| {
                pending.attempts += 1;
                pending.last_seen_ms = pending.last_seen_ms.max(flow.last_seen_ms);
                pending.first_seen_ms = pending.first_seen_ms.min(flow.first_seen_ms);
            })
            .or_insert_with(|| flow.clone());
        if self.pending_flows.len() >= MAX_PENDING_FLOWS {
            self.flush_flows();
        }
    }

    fn flush_flows(&mut self) {
        let flows: Vec<ObservedFlow> = self.pending_flows.drain().map(|(_, flow)| flow).collect();
        let Some(path) = &self.config.flows_file else {
            return;
        };
        if flows.is_empty() {
            return;
        }
        let mut text = String::new();
        for flow in &flows {
            if let Ok(line) = serde_json::to_string(flow) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(error) = written {
            tracing::warn!(%error, path = %path.display(), n_flows = flows.len(), "Cannot record flows.");
        }
    }
}

impl EventObserver for FirewallWatch {
    fn kinds(&self) -> BTreeSet<EventKind> {
        [EventKind::Connect, EventKind::Accept, EventKind::Accept4].into()
    }

    fn observe(&mut self, event: &Event, reports: &mut Vec<FindingReport>) {
        let state_holder = self.policy.as_ref();
        let empty = State::new();
        let state = state_holder.map_or(&empty, OwnedEngine::state);
        let cgroup_pod = self.enforcement.pod_of_cgroup(event.cgroup_id, state);
        let Some(attempt) = attribute(event, state, cgroup_pod) else {
            return;
        };
        let at_ms = i64::try_from(event.timestamp_ns / 1_000_000).unwrap_or(i64::MAX);
        let observed = ObservedFlow {
            src: attempt.src.clone(),
            dst: attempt.dst.clone(),
            protocol: attempt.protocol,
            port: attempt.port,
            attempts: 1,
            blocked: attempt.refused,
            first_seen_ms: at_ms,
            last_seen_ms: at_ms,
        };
        if let (Some(policy), Some(local_pod)) = (&self.policy, attempt.local_pod)
            && self.config.mode == DefenseMode::Block
        {
            let closed = self.enforcement.discover(policy.state(), local_pod, event);
            report_closed(policy, &closed, &self.config, Timestamp(at_ms), reports);
        }
        let local = LocalSide {
            is_source: observed.src.namespace.is_some() && event.kind == EventKind::Connect,
            container: event.container.as_ref(),
        };
        if let Some(policy) = &self.policy
            && let Some(report) = firewall_report(
                policy.engine(),
                &observed,
                &local,
                &self.config,
                Timestamp(at_ms),
                None,
            )
        {
            reports.push(report);
        }
        self.record_flow(&observed);
    }

    fn tick(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
        self.pick_up_policy(now, reports);
        if now.0 - self.last_flush_ms >= FLOW_FLUSH_EVERY_MS {
            self.flush_flows();
            self.last_flush_ms = now.0;
        }
    }
}

impl Drop for FirewallWatch {
    fn drop(&mut self) {
        self.flush_flows();
    }
}

/// A connection attempt, attributed.
#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    src: FlowEnd,
    dst: FlowEnd,
    protocol: Protocol,
    port: u16,
    /// The call failed (refused, unreachable, ...).
    refused: bool,
    /// The calling process's pod, when it is a pod of the state.
    local_pod: Option<PodId>,
}

/// Attributes a `connect` or `accept` event, or `None` when it is not a TCP or UDP
/// connection attempt between two addresses (or it stays on loopback). `cgroup_pod` is the
/// pod whose cgroup the calling thread is in, when known.
fn attribute(event: &Event, state: &State, cgroup_pod: Option<PodId>) -> Option<Attempt> {
    let Payload::Network { fd } = &event.payload else {
        return None;
    };
    if !matches!(fd.kind, FdKind::Ipv4 | FdKind::Ipv6) {
        return None;
    }
    let socket = fd.socket.as_ref()?;
    let protocol = match socket.protocol {
        SocketProtocol::Tcp => Protocol::Tcp,
        SocketProtocol::Udp => Protocol::Udp,
        _ => return None,
    };
    let remote_ip = socket.remote_addr.map(canonical)?;
    if remote_ip.is_loopback() || remote_ip.is_unspecified() {
        return None;
    }
    let local_ip = socket
        .local_addr
        .map(canonical)
        .filter(|ip| !ip.is_unspecified());
    let (local, local_pod) = local_end(event, state, cgroup_pod, local_ip)?;
    let (remote, remote_pod) = address_end(state, remote_ip);
    match event.kind {
        EventKind::Connect => {
            if event.ret < 0 && event.ret != -EINPROGRESS && socket.remote_port == 0 {
                return None;
            }
            Some(Attempt {
                src: local,
                dst: remote,
                protocol,
                port: socket.remote_port,
                refused: event.ret < 0 && event.ret != -EINPROGRESS,
                local_pod,
            })
        }
        EventKind::Accept | EventKind::Accept4 if event.ret >= 0 && remote_pod.is_none() => {
            Some(Attempt {
                src: remote,
                dst: local,
                protocol,
                port: socket.local_port,
                refused: false,
                local_pod,
            })
        }
        _ => None,
    }
}

/// A v4-mapped IPv6 address as IPv4, so it matches pod IPs and IPv4 CIDRs.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn pod_end(state: &State, pod_id: PodId) -> Option<FlowEnd> {
    let pod = state.pod(pod_id)?;
    Some(FlowEnd {
        namespace: Some(pod.namespace.clone()),
        pod: Some(pod.name.clone()),
        labels: pod.labels.clone(),
        namespace_labels: state
            .namespace(&pod.namespace)
            .map(|namespace| namespace.labels.clone())
            .unwrap_or_default(),
        ip: pod.ips.first().copied(),
    })
}

/// The state's pod with address `ip`, or the address outside the cluster.
fn address_end(state: &State, ip: IpAddr) -> (FlowEnd, Option<PodId>) {
    match state.endpoint(&ip.to_string()) {
        Ok(palisade_firewall::Endpoint::Pod(pod_id)) => match pod_end(state, pod_id) {
            Some(end) => (end, Some(pod_id)),
            None => (FlowEnd::external(ip), None),
        },
        _ => (FlowEnd::external(ip), None),
    }
}

/// The calling process's end: its pod (by Kubernetes identity, then by cgroup, then by local
/// address), or the node's address. `None` when neither is known.
fn local_end(
    event: &Event,
    state: &State,
    cgroup_pod: Option<PodId>,
    local_ip: Option<IpAddr>,
) -> Option<(FlowEnd, Option<PodId>)> {
    let k8s = event
        .container
        .as_ref()
        .and_then(|container| Some((container, container.k8s.as_ref()?)));
    if let Some((container, k8s)) = k8s {
        if let Some(pod_id) = state.pod_id(&k8s.namespace, &k8s.pod_name) {
            return Some((pod_end(state, pod_id)?, Some(pod_id)));
        }
        // A pod the policy state does not list: its container labels stand for its pod
        // labels (the runtime's own bookkeeping labels are left out).
        let labels = container
            .labels
            .iter()
            .filter(|(key, _)| !key.starts_with("io.kubernetes.") && !key.starts_with("io.cri-"))
            .cloned()
            .collect();
        let namespace_labels = [(
            "kubernetes.io/metadata.name".to_owned(),
            k8s.namespace.clone(),
        )]
        .into();
        return Some((
            FlowEnd {
                namespace: Some(k8s.namespace.clone()),
                pod: Some(k8s.pod_name.clone()),
                labels,
                namespace_labels,
                ip: local_ip,
            },
            None,
        ));
    }
    if let Some(pod_id) = cgroup_pod {
        return Some((pod_end(state, pod_id)?, Some(pod_id)));
    }
    let (end, pod_id) = address_end(state, local_ip?);
    Some((end, pod_id))
}

/// The workload end of a flow, for the alert's asset.
struct LocalSide<'e> {
    /// The workload is the flow's source (it connected), not its destination.
    is_source: bool,
    /// The workload's container, when the sensor knows it.
    container: Option<&'e palisade_event::Container>,
}

/// The firewall alert for a flow the policy refuses or an `alert` rule matches; for an open
/// connection that `closed_by` (a rule name) made the agent close, always an alert.
fn firewall_report(
    engine: &Engine<'_>,
    observed: &ObservedFlow,
    local: &LocalSide<'_>,
    config: &FirewallWatchConfig,
    at: Timestamp,
    closed_by: Option<&str>,
) -> Option<FindingReport> {
    let state = engine.state();
    let flow = observed.to_flow(state).ok()?;
    let verdict = engine.evaluate(&flow);
    if verdict.allowed && verdict.alert.is_none() && closed_by.is_none() {
        return None;
    }
    let explanation = engine.explain(&flow);
    let deciding_rule = deciding_firewall_rule(state, &verdict);
    let enforced = closed_by.is_some() || (!verdict.allowed && config.mode == DefenseMode::Block);
    let alert_name = match (&deciding_rule, verdict.allowed, closed_by) {
        (_, _, Some(rule)) => format!("{rule}: open connection closed"),
        (Some(rule), false, None) => rule.name.clone(),
        _ => match verdict.alert {
            Some(rule_id) if verdict.allowed => {
                state.firewall_rules()[rule_id.index()].name.clone()
            }
            _ => denying_policy(&explanation.egress)
                .or_else(|| denying_policy(&explanation.ingress))
                .unwrap_or_else(|| "firewall policy".to_owned()),
        },
    };
    let destination_object = deciding_rule
        .map(|rule| rule.destination.clone())
        .unwrap_or_default();
    let local_end = if local.is_source {
        &observed.src
    } else {
        &observed.dst
    };
    let outcome = match (closed_by, enforced) {
        (Some(_), _) => "closed (it was open when the rule arrived)",
        (None, true) => "refused",
        (None, false) => "seen",
    };
    let container = local.container;
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    Some(FindingReport {
        id: Uuid::now_v7(),
        observed_at: at,
        severity: if verdict.allowed && closed_by.is_none() {
            Severity::Medium
        } else {
            Severity::High
        },
        rule: alert_name.clone(),
        title: format!("{alert_name}: {} {outcome}", observed.describe()),
        asset: AffectedAsset {
            cluster: config.cluster.clone(),
            node: non_empty(&config.node),
            namespace: local_end.namespace.clone(),
            workload: None,
            pod: local_end.pod.clone(),
            container_id: container.and_then(|container| non_empty(&container.id)),
            container_name: container.and_then(|container| non_empty(&container.name)),
            image: container.and_then(|container| non_empty(&container.image)),
            image_digest: container.and_then(|container| non_empty(&container.image_digest)),
        },
        details: Details::FirewallAlert(FirewallDetails {
            source: observed.src.display_name(),
            destination: observed.dst.display_name(),
            destination_object,
            port: observed.port,
            protocol: observed.protocol.to_string(),
            mode: if enforced {
                FirewallAction::Block
            } else {
                FirewallAction::Alert
            }
            .as_str()
            .to_owned(),
            rule_id: Some(closed_by.map_or(alert_name, str::to_owned)),
            trace: explanation.to_string().lines().map(str::to_owned).collect(),
        }),
        demo: false,
    })
}

/// One alert per connection the agent closed.
fn report_closed(
    policy: &OwnedEngine,
    closed: &[ClosedConnection],
    config: &FirewallWatchConfig,
    at: Timestamp,
    reports: &mut Vec<FindingReport>,
) {
    let state = policy.state();
    for ClosedConnection { pod, closed } in closed {
        let Some(pod_flow_end) = pod_end(state, *pod) else {
            continue;
        };
        let connection = &closed.connection;
        let (remote, _) = address_end(state, canonical(connection.remote.ip()));
        let (src, dst, port) = if connection.inbound {
            (remote, pod_flow_end, connection.local.port())
        } else {
            (pod_flow_end, remote, connection.remote.port())
        };
        let observed = ObservedFlow {
            src,
            dst,
            protocol: Protocol::Tcp,
            port,
            attempts: 1,
            blocked: true,
            first_seen_ms: at.0,
            last_seen_ms: at.0,
        };
        let rule_name = state
            .firewall_rules()
            .get(closed.rule.id as usize)
            .map_or("firewall rule", |rule| rule.name.as_str());
        let local = LocalSide {
            is_source: !connection.inbound,
            container: None,
        };
        tracing::warn!(
            flow = %observed.describe(),
            rule = rule_name,
            "Closed an open connection the new firewall rules refuse."
        );
        reports.extend(firewall_report(
            policy.engine(),
            &observed,
            &local,
            config,
            at,
            Some(rule_name),
        ));
    }
}

/// The policy that refused one direction: the deciding one, or the first isolating one.
fn denying_policy(direction: &DirectionExplanation) -> Option<String> {
    if direction.allowed {
        return None;
    }
    direction
        .policy
        .clone()
        .or_else(|| direction.isolated_by.first().cloned())
}

/// The Palisade rule that decided the connection, or the `alert` rule that matched.
fn deciding_firewall_rule<'s>(state: &'s State, verdict: &Verdict) -> Option<&'s FirewallRule> {
    let decided = [verdict.egress.decision, verdict.ingress.decision]
        .into_iter()
        .find_map(|decision| match decision {
            Decision::Firewall(rule_id) => Some(rule_id),
            _ => None,
        })
        .or(verdict.alert)?;
    state.firewall_rules().get(decided.index())
}

/// A connection the agent closed because a rule of `pod` refuses it.
struct ClosedConnection {
    pod: PodId,
    closed: WouldRefuse,
}

/// Where one pod seen on this node is enforced, and what is installed there now.
struct PodEnforcement {
    /// Its network namespace (outlives the thread it was found from).
    netns: PathBuf,
    /// Its cgroup2 directory, when connect programs may go there.
    cgroup: Option<PathBuf>,
    /// The rules in force; `None` while the pod has no `alert` or `block` rule.
    installed: Option<WorkloadFirewall>,
}

/// The firewalls of the pods seen on this node (block mode).
#[derive(Default)]
struct Enforcement {
    /// `namespace/name` → where the pod is enforced.
    pods: HashMap<String, PodEnforcement>,
    /// cgroup id (the cgroup2 directory's inode) → `namespace/name`.
    cgroups: HashMap<u64, String>,
}

impl Enforcement {
    /// Finds the network namespace and cgroup of the thread that made `event`, a thread of
    /// pod `pod_id`, and, the first time, installs the pod's rules there. A short-lived
    /// process (`curl` from a shell) is often gone by then: its nearest living ancestor
    /// stands for it when that one is in the same cgroup, so in the same workload. The host's
    /// own namespace is never touched.
    fn discover(&mut self, state: &State, pod_id: PodId, event: &Event) -> Vec<ClosedConnection> {
        let Some(pod) = state.pod(pod_id) else {
            return Vec::new();
        };
        let key = pod.key();
        if self.pods.contains_key(&key) {
            return Vec::new();
        }
        let process = &event.process;
        let found = stable_netns_path(process.pid, process.tid)
            .map(|netns| (netns, process.pid))
            .or_else(|| {
                if event.cgroup_id == 0 {
                    return None;
                }
                std::iter::once(process.ppid)
                    .chain(event.ancestors.iter().map(|ancestor| ancestor.pid))
                    .filter(|&pid| pid > 1)
                    .find(|&pid| cgroup_id_of(pid) == Some(event.cgroup_id))
                    .and_then(|pid| Some((stable_netns_path(pid, pid)?, pid)))
            });
        let Some((netns, pid)) = found else {
            return Vec::new();
        };
        let cgroup = workload_cgroup(pid, event.cgroup_id);
        if let Some(cgroup) = &cgroup
            && let Ok(meta) = std::fs::metadata(cgroup)
        {
            self.cgroups.insert(meta.ino(), key.clone());
        }
        tracing::info!(pod = %key, netns = %netns.display(), cgroup = ?cgroup, "Found the pod's network namespace.");
        let mut enforcement = PodEnforcement {
            netns,
            cgroup,
            installed: None,
        };
        let closed = enforcement.enforce(state, pod_id, &key);
        self.pods.insert(key, enforcement);
        closed
    }

    /// The pod whose cgroup has id `cgroup_id`, if it is one of the pods found.
    fn pod_of_cgroup(&self, cgroup_id: u64, state: &State) -> Option<PodId> {
        let (namespace, name) = self.cgroups.get(&cgroup_id)?.split_once('/')?;
        state.pod_id(namespace, name)
    }

    /// Installs `state`'s rules for every pod found; pods the state no longer lists lose
    /// their enforcement.
    fn reapply(&mut self, state: &State) -> Vec<ClosedConnection> {
        let mut closed = Vec::new();
        self.pods.retain(|key, enforcement| {
            let Some((namespace, name)) = key.split_once('/') else {
                return false;
            };
            match state.pod_id(namespace, name) {
                Some(pod_id) => {
                    closed.extend(enforcement.enforce(state, pod_id, key));
                    true
                }
                None => false,
            }
        });
        let pods = &self.pods;
        self.cgroups.retain(|_, key| pods.contains_key(key));
        closed
    }
}

impl PodEnforcement {
    /// Brings the pod's enforcement in line with `state`: installs (or replaces) its rules
    /// while it has an `alert` or `block` rule, removes them otherwise, and closes the open
    /// connections the new rules refuse.
    fn enforce(&mut self, state: &State, pod_id: PodId, key: &str) -> Vec<ClosedConnection> {
        let rules = workload_rules(state, pod_id, DefenseMode::Block);
        let needed = rules
            .egress
            .iter()
            .chain(&rules.ingress)
            .any(|rule| rule.action != RuleAction::Allow);
        if !needed {
            if self.installed.take().is_some() {
                tracing::info!(pod = %key, "The pod has no alert or block rule left; its firewall is removed.");
            }
            return Vec::new();
        }
        if self.installed.is_none() {
            match self.install() {
                Ok(firewall) => {
                    tracing::info!(pod = %key, netns = %self.netns.display(), cgroup = ?self.cgroup, "Enforcing the pod's firewall rules.");
                    self.installed = Some(firewall);
                }
                Err(error) => {
                    tracing::warn!(%error, pod = %key, "Cannot enforce the pod's firewall rules.");
                    return Vec::new();
                }
            }
        }
        let Some(firewall) = &self.installed else {
            return Vec::new();
        };
        apply_rules(firewall, &rules, key)
            .into_iter()
            .map(|closed| ClosedConnection {
                pod: pod_id,
                closed,
            })
            .collect()
    }

    /// The nftables table, with the connect programs beside it when the pod's cgroup can
    /// take them (else the table alone, which enforces egress too).
    fn install(&self) -> Result<WorkloadFirewall, palisade_enforce::Error> {
        let netns = NftFirewall::new(&self.netns)?;
        let Some(cgroup) = &self.cgroup else {
            return Ok(WorkloadFirewall::Netns(netns));
        };
        match ConnectFilter::attach(cgroup) {
            Ok(filter) => Ok(WorkloadFirewall::CgroupAndNetns {
                cgroup: filter,
                netns,
            }),
            Err(error) => {
                tracing::warn!(%error, cgroup = %cgroup.display(), "Cannot attach connect programs; the pod's nftables table enforces its egress rules alone.");
                Ok(WorkloadFirewall::Netns(netns))
            }
        }
    }
}

/// Installs `rules` and closes the open connections they refuse; returns those.
fn apply_rules(firewall: &WorkloadFirewall, rules: &WorkloadRules, key: &str) -> Vec<WouldRefuse> {
    match firewall.apply(rules) {
        Ok(not_enforced) => {
            for reason in not_enforced {
                tracing::warn!(pod = %key, %reason, "A firewall rule is not enforced.");
            }
        }
        Err(error) => {
            tracing::error!(%error, pod = %key, "Cannot install the pod's firewall rules.");
            return Vec::new();
        }
    }
    match firewall.close_connections_refused_by(rules) {
        Ok(closed) => closed,
        Err(error) => {
            tracing::warn!(%error, pod = %key, "Cannot close the open connections the new rules refuse.");
            Vec::new()
        }
    }
}

/// The cgroup2 directory of process `pid` when connect programs may go there: it is the
/// directory with id `cgroup_id` (when given), not the cgroup2 root, and it does not hold
/// the agent's own process (nor is an ancestor of the agent's cgroup).
fn workload_cgroup(pid: u32, cgroup_id: u64) -> Option<PathBuf> {
    let root = cgroup2_root().ok()?;
    let own = cgroup2_path(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
    let theirs = cgroup2_path(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)?;
    if theirs.as_os_str().is_empty() || own.starts_with(&theirs) {
        return None;
    }
    let path = root.join(theirs);
    let inode = std::fs::metadata(&path).ok()?.ino();
    (cgroup_id == 0 || inode == cgroup_id).then_some(path)
}

/// The id (directory inode) of process `pid`'s cgroup2 directory, while it runs.
fn cgroup_id_of(pid: u32) -> Option<u64> {
    let relative = cgroup2_path(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)?;
    Some(
        std::fs::metadata(cgroup2_root().ok()?.join(relative))
            .ok()?
            .ino(),
    )
}

/// The cgroup2 path in a `/proc/PID/cgroup` listing (its `0::/path` line), relative to the
/// cgroup2 root (empty for the root itself).
fn cgroup2_path(listing: &str) -> Option<PathBuf> {
    listing
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| PathBuf::from(path.trim().trim_start_matches('/')))
}

/// A path to the network namespace of thread `tid` of `pid` that outlives the thread: the
/// named namespace (`/run/netns/NAME`) with the same inode, else the process's own
/// namespace file when the thread shares it. `None` for the host's namespace (that of pid 1)
/// and when the thread is gone.
fn stable_netns_path(pid: u32, tid: u32) -> Option<PathBuf> {
    let inode = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
    };
    let thread_netns = inode(&PathBuf::from(format!("/proc/{pid}/task/{tid}/ns/net")))?;
    if inode(Path::new("/proc/1/ns/net")) == Some(thread_netns) {
        return None;
    }
    if let Ok(entries) = std::fs::read_dir(NAMED_NETNS_DIR) {
        for entry in entries.flatten() {
            if inode(&entry.path()) == Some(thread_netns) {
                return Some(entry.path());
            }
        }
    }
    let process_netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    (inode(&process_netns) == Some(thread_netns)).then_some(process_netns)
}

/// Converts the server's rules into the engine's. A rule naming a network object the base
/// state does not define is left out (and named in the result), since the engine refuses a
/// policy with dangling references.
pub fn compose_policy(
    base: &State,
    rules: &[palisade_model::FirewallRule],
) -> (State, Vec<String>) {
    let mut state = base.clone();
    let mut skipped = Vec::new();
    let known = |name: &str| {
        base.network_objects()
            .iter()
            .any(|object| object.name == name)
    };
    for stored in rules {
        let rule = &stored.rule;
        let missing: Vec<&str> = [rule.source.as_str(), rule.destination.as_str()]
            .into_iter()
            .filter(|name| !known(name))
            .collect();
        if !missing.is_empty() {
            skipped.push(format!(
                "rule {:?}: no network object named {}",
                rule.name,
                missing.join(" or ")
            ));
            continue;
        }
        let protocol = match rule.protocol.as_deref().map(str::parse::<Protocol>) {
            None => None,
            Some(Ok(protocol)) => Some(protocol),
            Some(Err(error)) => {
                skipped.push(format!("rule {:?}: {error}", rule.name));
                continue;
            }
        };
        state.insert_firewall_rule(FirewallRule {
            name: rule.name.clone(),
            source: rule.source.clone(),
            destination: rule.destination.clone(),
            ports: rule
                .ports
                .iter()
                .map(|range| (range.start, range.end))
                .collect(),
            protocol,
            action: match rule.action {
                FirewallAction::Allow => RuleAction::Allow,
                FirewallAction::Alert => RuleAction::Alert,
                FirewallAction::Block => RuleAction::Block,
            },
            priority: rule.priority,
            enabled: rule.enabled,
        });
    }
    (state, skipped)
}

/// Polls the server's firewall rules every `every` (with `If-None-Match`, so an unchanged
/// set costs an empty response), and sends each changed set, composed with `base`, to
/// `updates`. Returns when the watch is gone (the channel is closed). While the server is out
/// of reach the rules in force stay.
pub async fn poll_firewall_rules(
    link: crate::Link,
    credential: crate::Credential,
    base: State,
    updates: PolicyUpdates,
    every: Duration,
) {
    let mut etag: Option<String> = None;
    loop {
        match link.firewall_rules(&credential, etag.as_deref()).await {
            Ok(Some((new_etag, rules))) => {
                let (state, skipped) = compose_policy(&base, &rules);
                for reason in &skipped {
                    tracing::warn!(%reason, "A firewall rule from the server is not applied.");
                }
                if updates.send(state).is_err() {
                    return;
                }
                etag = Some(new_etag);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "Cannot fetch the firewall rules; keeping the current ones.")
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests;
