//! The decision engine: an index over a [`State`] and `evaluate(flow) -> Verdict`.

use std::net::IpAddr;

use crate::error::{Error, ErrorKind};
use crate::firewall::{ObjectMembers, RuleAction, cidrs_contain};
use crate::flow::{Endpoint, Flow};
use crate::inventory::ContainerPort;
use crate::policy::{
    Action, Direction, NamespaceMatch, Peer, Policy, PolicyKind, Protocol, Rule, Subject, Tier,
};
use crate::selector::Labels;
use crate::state::State;
use crate::verdict::{Decision, DirectionVerdict, FirewallRuleId, PolicyId, RuleRef, Verdict};

static NO_LABELS: Labels = Labels::new();

/// Decides connections against one [`State`].
///
/// Building the engine does the work that does not depend on the flow: policies are sorted
/// into tiers; for every pod, the policies selecting it are listed per direction and tier;
/// and every peer whose match does not depend on the subject is turned into a bit set over
/// the pods. Deciding a pod-to-pod flow is then a walk over short lists with bit tests.
#[derive(Debug)]
pub struct Engine<'s> {
    state: &'s State,
    /// Per direction and policy, the range of the policy's rules in `rules`.
    policy_rules: [Vec<(u32, u32)>; 2],
    /// Every rule of every policy and direction, contiguous so a verdict walks flat memory.
    rules: Vec<CompiledRule<'s>>,
    /// The peers of `rules`, contiguous.
    peers: Vec<CompiledPeer<'s>>,
    /// Pod bit sets of the peers, one word per 64 pods each.
    masks: Vec<u64>,
    /// Per pod and direction, the policies selecting it, by tier and in evaluation order.
    pod_index: Vec<[TierLists; 2]>,
    /// All policies by tier, in evaluation order (for workloads that are not in the state).
    all_policies: TierLists,
    /// Per pod, what policies match on, gathered in one place.
    pod_views: Vec<View<'s>>,
    /// Enabled Palisade rules in evaluation order, with their source and destination objects.
    firewall_order: Vec<(FirewallRuleId, usize, usize)>,
    /// Per network object, the pods in it (objects that list CIDRs test pod IPs).
    object_masks: Vec<BitSet>,
}

#[derive(Debug, Clone, Copy)]
struct CompiledRule<'s> {
    rule: &'s Rule,
    policy: u32,
    index: u32,
    peers: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct CompiledPeer<'s> {
    peer: &'s Peer,
    /// Offset of the peer's pod bit set in `masks`, or [`NO_MASK`] when the match depends on
    /// the subject (`sameLabels` / `notSameLabels`).
    mask: u32,
}

const NO_MASK: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
struct TierLists {
    admin: Vec<u32>,
    network_policy: Vec<u32>,
    baseline: Vec<u32>,
}

#[derive(Debug, Clone)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn from_fn(n_bits: usize, f: impl Fn(usize) -> bool) -> BitSet {
        let mut words = vec![0; n_bits.div_ceil(64)];
        for bit in 0..n_bits {
            if f(bit) {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        BitSet { words }
    }

    fn contains(&self, bit: usize) -> bool {
        self.words
            .get(bit / 64)
            .is_some_and(|word| word & (1 << (bit % 64)) != 0)
    }
}

/// What the engine knows about one endpoint of a flow.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    pod: Option<usize>,
    /// `None` for endpoints outside the cluster.
    namespace: Option<&'a str>,
    labels: &'a Labels,
    namespace_labels: &'a Labels,
    ip: Option<IpAddr>,
    ports: &'a [ContainerPort],
    images: &'a [String],
    service_account: Option<&'a str>,
}

#[derive(Debug, Clone, Copy)]
struct Traffic<'a> {
    protocol: Protocol,
    port: Option<u16>,
    port_name: Option<&'a str>,
}

fn direction_idx(direction: Direction) -> usize {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

const DIRECTIONS: [Direction; 2] = [Direction::Ingress, Direction::Egress];

impl<'s> Engine<'s> {
    /// Indexes `state`. Fails when a Palisade rule names a network object that does not exist.
    pub fn new(state: &'s State) -> Result<Engine<'s>, Error> {
        let n_pods = state.pods().len();
        let mut engine = Engine {
            state,
            policy_rules: [Vec::new(), Vec::new()],
            rules: Vec::new(),
            peers: Vec::new(),
            masks: Vec::new(),
            pod_index: Vec::new(),
            all_policies: TierLists::default(),
            pod_views: state
                .pods()
                .iter()
                .enumerate()
                .map(|(pod_idx, pod)| pod_view(state, pod_idx, pod))
                .collect(),
            firewall_order: Vec::new(),
            object_masks: Vec::new(),
        };

        // Tiers: admin by priority, then NetworkPolicy, then baseline (BANP before baseline
        // CNPs, which go by priority). Ties are broken by kind and name, so the order is
        // deterministic; the API leaves it undefined.
        let mut order: Vec<u32> = (0..state.policies().len())
            .filter_map(|idx| u32::try_from(idx).ok())
            .collect();
        order.sort_by(|&a, &b| {
            let key = |policy: &'s Policy| {
                let priority = match policy.kind {
                    PolicyKind::BaselineAdminNetworkPolicy => i64::MIN,
                    _ => i64::from(policy.priority),
                };
                (
                    policy.tier,
                    priority,
                    policy.kind,
                    policy.namespace.as_deref(),
                    policy.name.as_str(),
                )
            };
            key(&state.policies()[a as usize]).cmp(&key(&state.policies()[b as usize]))
        });
        for &policy_idx in &order {
            let policy = &state.policies()[policy_idx as usize];
            engine.all_policies.list_mut(policy.tier).push(policy_idx);
        }

        let pod_views = engine.pod_views.clone();
        engine.pod_index = pod_views
            .iter()
            .map(|view| DIRECTIONS.map(|direction| engine.tier_lists(view, direction)))
            .collect();

        for (policy_idx, policy) in state.policies().iter().enumerate() {
            for direction in DIRECTIONS {
                let first_rule = engine.rules.len();
                for (rule_idx, rule) in policy.rules(direction).unwrap_or(&[]).iter().enumerate() {
                    let first_peer = engine.peers.len();
                    for peer in &rule.peers {
                        let mask = match peer_mask(&engine, peer, &pod_views) {
                            Some(bits) => {
                                let offset = engine.masks.len();
                                engine.masks.extend(bits.words);
                                u32::try_from(offset).map_err(|_| too_large())?
                            }
                            None => NO_MASK,
                        };
                        engine.peers.push(CompiledPeer { peer, mask });
                    }
                    engine.rules.push(CompiledRule {
                        rule,
                        policy: u32::try_from(policy_idx).map_err(|_| too_large())?,
                        index: u32::try_from(rule_idx).map_err(|_| too_large())?,
                        peers: (
                            u32::try_from(first_peer).map_err(|_| too_large())?,
                            u32::try_from(engine.peers.len()).map_err(|_| too_large())?,
                        ),
                    });
                }
                let range = (
                    u32::try_from(first_rule).map_err(|_| too_large())?,
                    u32::try_from(engine.rules.len()).map_err(|_| too_large())?,
                );
                engine.policy_rules[direction_idx(direction)].push(range);
            }
        }

        let object_idx = |name: &str| {
            state
                .network_objects()
                .iter()
                .position(|object| object.name == name)
        };
        let mut firewall_order = Vec::new();
        for (rule_idx, rule) in state.firewall_rules().iter().enumerate() {
            let object = format!("FirewallRule {}", rule.name);
            let source = object_idx(&rule.source).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    &object,
                    "spec.source",
                    format!("no network object named {:?}", rule.source),
                )
            })?;
            let destination = object_idx(&rule.destination).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    &object,
                    "spec.destination",
                    format!("no network object named {:?}", rule.destination),
                )
            })?;
            if rule.enabled {
                let id = u32::try_from(rule_idx).map(FirewallRuleId).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidField,
                        &object,
                        "",
                        "too many firewall rules",
                    )
                })?;
                firewall_order.push((id, source, destination));
            }
        }
        firewall_order.sort_by_key(|&(id, _, _)| {
            let rule = &state.firewall_rules()[id.index()];
            (rule.priority, rule.name.as_str())
        });
        engine.firewall_order = firewall_order;
        engine.object_masks = state
            .network_objects()
            .iter()
            .map(|object| {
                BitSet::from_fn(n_pods, |pod_idx| {
                    object_members_match(&object.members, &pod_views[pod_idx])
                })
            })
            .collect();
        Ok(engine)
    }

    /// The state the engine decides on.
    pub fn state(&self) -> &'s State {
        self.state
    }

    /// A policy by id.
    pub fn policy(&self, policy_id: PolicyId) -> Option<&'s Policy> {
        self.state.policies().get(policy_id.index())
    }

    /// A rule by reference, in the given direction.
    pub fn rule(&self, rule_ref: RuleRef, direction: Direction) -> Option<&'s Rule> {
        self.policy(rule_ref.policy)?
            .rules(direction)?
            .get(rule_ref.rule as usize)
    }

    /// Decides a connection: Palisade's rules, then per direction the admin tier,
    /// NetworkPolicy and the baseline tier, then Kubernetes' default (allow).
    pub fn evaluate(&self, flow: &Flow) -> Verdict {
        let src = self.view(&flow.src);
        let dst = self.view(&flow.dst);
        let traffic = resolve_port(flow, &dst);

        let mut alert = None;
        for &(rule_id, source, destination) in &self.firewall_order {
            let rule = &self.state.firewall_rules()[rule_id.index()];
            if !rule.matches_port(traffic.protocol, traffic.port)
                || !self.object_matches(source, &src)
                || !self.object_matches(destination, &dst)
            {
                continue;
            }
            let allowed = match rule.action {
                RuleAction::Alert => {
                    alert.get_or_insert(rule_id);
                    continue;
                }
                RuleAction::Allow => true,
                RuleAction::Block => false,
            };
            let direction = DirectionVerdict {
                allowed,
                decision: Decision::Firewall(rule_id),
                passed: None,
            };
            return Verdict {
                allowed,
                ingress: direction,
                egress: direction,
                alert,
            };
        }

        let ingress = self.direction(Direction::Ingress, &dst, &src, &traffic);
        let egress = self.direction(Direction::Egress, &src, &dst, &traffic);
        Verdict {
            allowed: ingress.allowed && egress.allowed,
            ingress,
            egress,
            alert,
        }
    }

    /// The names of the network objects `endpoint` belongs to, in the state's order: what an
    /// alert names as its target when no Palisade rule decided (a NetworkPolicy did).
    pub fn network_objects_of(&self, endpoint: &Endpoint) -> Vec<&'s str> {
        let view = self.view(endpoint);
        self.state
            .network_objects()
            .iter()
            .enumerate()
            .filter(|(object_idx, _)| self.object_matches(*object_idx, &view))
            .map(|(_, object)| object.name.as_str())
            .collect()
    }

    /// The NetworkPolicies that select the endpoint for the direction (and so isolate it).
    pub fn isolating_policies(&self, endpoint: &Endpoint, direction: Direction) -> Vec<PolicyId> {
        let view = self.view(endpoint);
        if view.namespace.is_none() {
            return Vec::new();
        }
        let lists = match view.pod {
            Some(pod_idx) => self.pod_index[pod_idx][direction_idx(direction)].clone(),
            None => self.tier_lists(&view, direction),
        };
        lists.network_policy.into_iter().map(PolicyId).collect()
    }

    fn direction(
        &self,
        direction: Direction,
        subject: &View<'_>,
        peer: &View<'_>,
        traffic: &Traffic<'_>,
    ) -> DirectionVerdict {
        if subject.namespace.is_none() {
            return DirectionVerdict {
                allowed: true,
                decision: Decision::NotApplicable,
                passed: None,
            };
        }
        let computed;
        let lists = match subject.pod {
            Some(pod_idx) => &self.pod_index[pod_idx][direction_idx(direction)],
            None => {
                computed = self.tier_lists(subject, direction);
                &computed
            }
        };
        let decided = |allowed, rule_ref, passed| DirectionVerdict {
            allowed,
            decision: Decision::Rule(rule_ref),
            passed,
        };
        // In the admin and baseline tiers the first matching rule, in policy then rule order,
        // decides; `Pass` hands over to the next tier.
        let first_match = |policies: &[u32]| {
            policies.iter().find_map(|&policy_idx| {
                self.first_matching_rule(policy_idx, direction, subject, peer, traffic)
            })
        };

        let mut passed = None;
        match first_match(&lists.admin) {
            Some((rule_ref, rule)) if rule.action == Action::Pass => passed = Some(rule_ref),
            Some((rule_ref, rule)) => return decided(rule.action == Action::Allow, rule_ref, None),
            None => {}
        }

        if let Some(&first) = lists.network_policy.first() {
            return match first_match(&lists.network_policy) {
                Some((rule_ref, _)) => decided(true, rule_ref, passed),
                None => DirectionVerdict {
                    allowed: false,
                    decision: Decision::Isolated(PolicyId(first)),
                    passed,
                },
            };
        }

        match first_match(&lists.baseline) {
            Some((rule_ref, rule)) if rule.action == Action::Pass => passed = Some(rule_ref),
            Some((rule_ref, rule)) => {
                return decided(rule.action == Action::Allow, rule_ref, passed);
            }
            None => {}
        }

        DirectionVerdict {
            allowed: true,
            decision: Decision::Default,
            passed,
        }
    }

    /// The first rule of one policy that matches, in rule order.
    fn first_matching_rule(
        &self,
        policy_idx: u32,
        direction: Direction,
        subject: &View<'_>,
        peer: &View<'_>,
        traffic: &Traffic<'_>,
    ) -> Option<(RuleRef, &'s Rule)> {
        let (first, end) = self.policy_rules[direction_idx(direction)][policy_idx as usize];
        self.rules[first as usize..end as usize]
            .iter()
            .find(|compiled| {
                let rule = compiled.rule;
                (rule.ports.is_empty()
                    || rule.ports.iter().any(|port| {
                        port.matches(traffic.protocol, traffic.port, traffic.port_name)
                    }))
                    && self.peers[compiled.peers.0 as usize..compiled.peers.1 as usize]
                        .iter()
                        .any(|compiled_peer| match peer.pod {
                            Some(pod_idx) if compiled_peer.mask != NO_MASK => {
                                let word = self.masks[compiled_peer.mask as usize + pod_idx / 64];
                                word & (1 << (pod_idx % 64)) != 0
                            }
                            _ => self.peer_matches(compiled_peer.peer, subject, peer),
                        })
            })
            .map(|compiled| {
                (
                    RuleRef {
                        policy: PolicyId(compiled.policy),
                        rule: compiled.index,
                    },
                    compiled.rule,
                )
            })
    }

    fn peer_matches(&self, rule_peer: &Peer, subject: &View<'_>, peer: &View<'_>) -> bool {
        match rule_peer {
            Peer::Everything => true,
            Peer::Pods { namespaces, pods } => {
                let Some(peer_namespace) = peer.namespace else {
                    return false;
                };
                let namespace_ok = match namespaces {
                    NamespaceMatch::Name(name) => peer_namespace == name,
                    NamespaceMatch::Selector(selector) => selector.matches(peer.namespace_labels),
                    NamespaceMatch::SameLabels(keys) => {
                        !keys.is_empty()
                            && keys.iter().all(|key| {
                                peer.namespace_labels.get(key).is_some_and(|value| {
                                    subject.namespace_labels.get(key) == Some(value)
                                })
                            })
                    }
                    NamespaceMatch::NotSameLabels(keys) => {
                        let both_have = keys.iter().all(|key| {
                            peer.namespace_labels.contains_key(key)
                                && subject.namespace_labels.contains_key(key)
                        });
                        both_have
                            && keys.iter().any(|key| {
                                peer.namespace_labels.get(key) != subject.namespace_labels.get(key)
                            })
                    }
                };
                namespace_ok && pods.matches(peer.labels)
            }
            Peer::Ips(block) => peer.ip.is_some_and(|ip| block.contains(ip)),
            Peer::Nodes(selector) => peer.ip.is_some_and(|ip| {
                self.state
                    .nodes()
                    .iter()
                    .any(|node| node.addresses.contains(&ip) && selector.matches(&node.labels))
            }),
            // Domain names need DNS observation; an IP-level flow never matches them.
            Peer::DomainNames(_) => false,
        }
    }

    fn tier_lists(&self, view: &View<'_>, direction: Direction) -> TierLists {
        let selects = |policy_idx: &&u32| {
            let policy = &self.state.policies()[**policy_idx as usize];
            policy.rules(direction).is_some() && subject_matches(&policy.subject, view)
        };
        TierLists {
            admin: self
                .all_policies
                .admin
                .iter()
                .filter(selects)
                .copied()
                .collect(),
            network_policy: self
                .all_policies
                .network_policy
                .iter()
                .filter(selects)
                .copied()
                .collect(),
            baseline: self
                .all_policies
                .baseline
                .iter()
                .filter(selects)
                .copied()
                .collect(),
        }
    }

    fn object_matches(&self, object_idx: usize, view: &View<'_>) -> bool {
        match view.pod {
            Some(pod_idx) => self.object_masks[object_idx].contains(pod_idx),
            None => object_members_match(&self.state.network_objects()[object_idx].members, view),
        }
    }

    fn view<'f>(&self, endpoint: &'f Endpoint) -> View<'f>
    where
        's: 'f,
    {
        match endpoint {
            // An id from another state is treated as an unknown endpoint outside the cluster.
            Endpoint::Pod(pod_id) => self
                .pod_views
                .get(pod_id.index())
                .copied()
                .unwrap_or_else(|| external_view(None)),
            Endpoint::Workload(workload) => View {
                pod: None,
                namespace: Some(workload.namespace.as_str()),
                labels: &workload.labels,
                namespace_labels: &workload.namespace_labels,
                ip: workload.ip,
                ports: &[],
                images: &[],
                service_account: None,
            },
            Endpoint::Ip(ip) => external_view(Some(*ip)),
        }
    }
}

impl TierLists {
    fn list_mut(&mut self, tier: Tier) -> &mut Vec<u32> {
        match tier {
            Tier::Admin => &mut self.admin,
            Tier::NetworkPolicy => &mut self.network_policy,
            Tier::Baseline => &mut self.baseline,
        }
    }
}

fn pod_view<'s>(state: &'s State, pod_idx: usize, pod: &'s crate::inventory::Pod) -> View<'s> {
    View {
        pod: Some(pod_idx),
        namespace: Some(pod.namespace.as_str()),
        labels: &pod.labels,
        namespace_labels: state
            .namespace(&pod.namespace)
            .map_or(&NO_LABELS, |namespace| &namespace.labels),
        ip: pod.ips.first().copied(),
        ports: &pod.ports,
        images: &pod.images,
        service_account: pod.service_account.as_deref(),
    }
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::InvalidField,
        "",
        "",
        "too many policies, rules or pods to index",
    )
}

fn external_view<'a>(ip: Option<IpAddr>) -> View<'a> {
    View {
        pod: None,
        namespace: None,
        labels: &NO_LABELS,
        namespace_labels: &NO_LABELS,
        ip,
        ports: &[],
        images: &[],
        service_account: None,
    }
}

fn subject_matches(subject: &Subject, view: &View<'_>) -> bool {
    let Some(namespace) = view.namespace else {
        return false;
    };
    match subject {
        Subject::Namespace {
            namespace: policy_namespace,
            pods,
        } => namespace == policy_namespace && pods.matches(view.labels),
        Subject::Pods { namespaces, pods } => {
            namespaces.matches(view.namespace_labels) && pods.matches(view.labels)
        }
    }
}

fn object_members_match(members: &ObjectMembers, view: &View<'_>) -> bool {
    match members {
        ObjectMembers::Workloads(workloads) => view.namespace.is_some_and(|namespace| {
            workloads.matches(namespace, view.labels, view.images, view.service_account)
        }),
        ObjectMembers::Cidrs(cidrs) => cidrs_contain(cidrs, view.ip),
    }
}

/// The pods a peer matches, when that does not depend on the subject (everything but
/// `sameLabels` / `notSameLabels`).
fn peer_mask(engine: &Engine<'_>, peer: &Peer, pod_views: &[View<'_>]) -> Option<BitSet> {
    match peer {
        Peer::Pods {
            namespaces: NamespaceMatch::SameLabels(_) | NamespaceMatch::NotSameLabels(_),
            ..
        } => None,
        _ => {
            let no_subject = external_view(None);
            Some(BitSet::from_fn(pod_views.len(), |pod_idx| {
                engine.peer_matches(peer, &no_subject, &pod_views[pod_idx])
            }))
        }
    }
}

/// Completes the port number or name from the destination pod's container ports.
fn resolve_port<'f>(flow: &'f Flow, dst: &View<'f>) -> Traffic<'f> {
    let protocol = flow.protocol;
    let (port, port_name) = match (flow.port, flow.port_name.as_deref()) {
        (Some(port), Some(name)) => (Some(port), Some(name)),
        (Some(port), None) => (
            Some(port),
            dst.ports
                .iter()
                .find(|container_port| {
                    container_port.port == port && container_port.protocol == protocol
                })
                .and_then(|container_port| container_port.name.as_deref()),
        ),
        (None, Some(name)) => (
            dst.ports
                .iter()
                .find(|container_port| {
                    container_port.name.as_deref() == Some(name)
                        && container_port.protocol == protocol
                })
                .map(|container_port| container_port.port),
            Some(name),
        ),
        (None, None) => (None, None),
    };
    Traffic {
        protocol,
        port,
        port_name,
    }
}
