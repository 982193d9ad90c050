//! Compiling the firewall's Palisade tier into enforcement rules for one workload.

use std::net::IpAddr;

use palisade_firewall::{
    FirewallRule, IpNet, NetworkObject, ObjectMembers, Pod, PodId, RuleAction, State,
};

use crate::rule::NetRule;

/// What a workload's violations do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefenseMode {
    /// Violations pass and are counted and reported: `Block` rules are installed as `Alert`.
    Alert,
    /// Violations are refused.
    Block,
}

/// The enforcement rules for one workload, in evaluation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadRules {
    /// Rules whose source object holds the workload: remote = destination addresses.
    pub egress: Vec<NetRule>,
    /// Rules whose destination object holds the workload: remote = source addresses.
    pub ingress: Vec<NetRule>,
    /// Rules that apply to the workload but cannot be enforced by address, with the reason
    /// (for example a peer object that holds no pod with a known IP).
    pub unenforceable: Vec<String>,
}

/// Compiles the enabled Palisade firewall rules that involve pod `pod_id` of `state`.
///
/// The order is the engine's (priority, then name), and a [`NetRule::id`] is the rule's
/// index in [`State::firewall_rules`], so counters and reports map back to the rule. A
/// workload object becomes the IPs of the state's pods it holds; a CIDR object its blocks.
/// Each port range of a rule becomes its own [`NetRule`] with the same id.
pub fn workload_rules(state: &State, pod_id: PodId, mode: DefenseMode) -> WorkloadRules {
    let mut compiled = WorkloadRules::default();
    let Some(pod) = state.pod(pod_id) else {
        return compiled;
    };
    let mut order: Vec<(usize, &FirewallRule)> = state
        .firewall_rules()
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.enabled)
        .collect();
    order.sort_by_key(|(_, rule)| (rule.priority, rule.name.as_str()));
    let object = |name: &str| {
        state
            .network_objects()
            .iter()
            .find(|object| object.name == name)
    };
    for (rule_idx, rule) in order {
        let (Some(source), Some(destination)) = (object(&rule.source), object(&rule.destination))
        else {
            compiled.unenforceable.push(format!(
                "rule {}: a network object it names does not exist",
                rule.name
            ));
            continue;
        };
        let action = match (rule.action, mode) {
            (RuleAction::Block, DefenseMode::Alert) => RuleAction::Alert,
            (action, _) => action,
        };
        for (holds_pod, peer, list) in [
            (contains_pod(source, pod), destination, &mut compiled.egress),
            (
                contains_pod(destination, pod),
                source,
                &mut compiled.ingress,
            ),
        ] {
            if !holds_pod {
                continue;
            }
            let remotes = object_networks(state, peer);
            if remotes.is_empty() {
                compiled.unenforceable.push(format!(
                    "rule {}: network object {} holds no address",
                    rule.name, peer.name
                ));
            }
            let port_ranges = if rule.ports.is_empty() {
                vec![NetRule::ALL_PORTS]
            } else {
                rule.ports.clone()
            };
            for remote in &remotes {
                for &ports in &port_ranges {
                    list.push(NetRule {
                        id: rule_idx as u32,
                        remote: *remote,
                        ports,
                        protocol: rule.protocol,
                        action,
                    });
                }
            }
        }
    }
    compiled
}

fn contains_pod(object: &NetworkObject, pod: &Pod) -> bool {
    match &object.members {
        ObjectMembers::Workloads(workloads) => workloads.matches(
            &pod.namespace,
            &pod.labels,
            &pod.images,
            pod.service_account.as_deref(),
        ),
        ObjectMembers::Cidrs(cidrs) => pod
            .ips
            .first()
            .is_some_and(|ip| cidrs.iter().any(|cidr| cidr.contains(*ip))),
    }
}

/// The networks an object covers: its CIDRs, or host routes to its pods' IPs.
fn object_networks(state: &State, object: &NetworkObject) -> Vec<IpNet> {
    match &object.members {
        ObjectMembers::Cidrs(cidrs) => cidrs.clone(),
        ObjectMembers::Workloads(_) => state
            .pods()
            .iter()
            .filter(|pod| contains_pod(object, pod))
            .filter_map(|pod| pod.ips.first())
            .map(|ip| host_network(*ip))
            .collect(),
    }
}

fn host_network(ip: IpAddr) -> IpNet {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    format!("{ip}/{prefix}")
        .parse()
        .expect("an address with its full prefix is a valid network")
}

#[cfg(test)]
mod tests {
    use super::{DefenseMode, workload_rules};
    use crate::rule::deciding_rule;
    use palisade_firewall::{Endpoint, Engine, Flow, Protocol, RuleAction, State};

    const STATE: &str = r#"
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
status: {podIP: 10.0.0.2}
---
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
status: {podIP: 10.0.0.3}
---
kind: Pod
metadata: {name: cache, namespace: shop, labels: {app: cache}}
status: {podIP: 10.0.0.4}
---
kind: NetworkObject
metadata: {name: web}
spec: {namespace: shop, labels: {matchLabels: {app: web}}}
---
kind: NetworkObject
metadata: {name: shop}
spec: {namespace: shop}
---
kind: NetworkObject
metadata: {name: outside}
spec: {cidrs: [192.168.0.0/16]}
---
kind: FirewallRule
metadata: {name: a-web-to-db-ok}
spec: {source: web, destination: shop, action: allow, ports: [{port: 5432}], protocol: TCP, priority: 1}
---
kind: FirewallRule
metadata: {name: b-web-to-shop-blocked}
spec: {source: web, destination: shop, action: block, ports: [{port: 1, endPort: 9999}], priority: 2}
---
kind: FirewallRule
metadata: {name: c-web-outside-alert}
spec: {source: web, destination: outside, action: alert, priority: 3}
---
kind: FirewallRule
metadata: {name: d-outside-to-web-blocked}
spec: {source: outside, destination: web, action: block, protocol: TCP, priority: 4}
---
kind: FirewallRule
metadata: {name: e-disabled}
spec: {source: web, destination: outside, action: block, enabled: false, priority: 0}
"#;

    /// The compiled rules decide every flow to and from `web` the way the engine's
    /// Palisade tier does.
    #[test]
    fn compiled_rules_agree_with_the_engine() {
        let state = State::from_yaml(STATE).unwrap();
        let engine = Engine::new(&state).unwrap();
        let web_id = state.pod_id("shop", "web").unwrap();
        let rules = workload_rules(&state, web_id, DefenseMode::Block);
        assert!(rules.unenforceable.is_empty(), "{:?}", rules.unenforceable);
        let web = Endpoint::Pod(web_id);
        let peers = ["10.0.0.3", "10.0.0.4", "192.168.1.1", "172.16.0.1"];
        let mut n_checked = 0;
        for peer in peers {
            let peer_ip = peer.parse().unwrap();
            let peer_endpoint = state.endpoint(peer).unwrap_or(Endpoint::Ip(peer_ip));
            for protocol in [Protocol::Tcp, Protocol::Udp] {
                for port in [22, 80, 5432, 9999, 10000] {
                    for (flow, compiled) in [
                        (
                            Flow::new(web.clone(), peer_endpoint.clone(), protocol, port),
                            &rules.egress,
                        ),
                        (
                            Flow::new(peer_endpoint.clone(), web.clone(), protocol, port),
                            &rules.ingress,
                        ),
                    ] {
                        let verdict = engine.evaluate(&flow);
                        let decided_by_firewall = matches!(
                            verdict.egress.decision,
                            palisade_firewall::Decision::Firewall(_)
                        ) || matches!(
                            verdict.ingress.decision,
                            palisade_firewall::Decision::Firewall(_)
                        );
                        let compiled_decision = deciding_rule(compiled, peer_ip, port, protocol);
                        assert_eq!(
                            compiled_decision.map(|rule| rule.action == RuleAction::Block),
                            decided_by_firewall.then_some(!verdict.allowed),
                            "{flow:?}"
                        );
                        n_checked += 1;
                    }
                }
            }
        }
        assert_eq!(n_checked, 80);
    }

    #[test]
    fn alert_mode_turns_blocks_into_alerts() {
        let state = State::from_yaml(STATE).unwrap();
        let web_id = state.pod_id("shop", "web").unwrap();
        let rules = workload_rules(&state, web_id, DefenseMode::Alert);
        assert!(!rules.egress.is_empty() && !rules.ingress.is_empty());
        assert!(
            rules
                .egress
                .iter()
                .chain(&rules.ingress)
                .all(|rule| rule.action != RuleAction::Block)
        );
        let disabled_idx = state
            .firewall_rules()
            .iter()
            .position(|rule| rule.name == "e-disabled")
            .unwrap() as u32;
        assert!(rules.egress.iter().all(|rule| rule.id != disabled_idx));
    }
}
