//! `learn` proposes policies that, evaluated by the engine, allow every observed flow and
//! refuse flows not observed; `simulate` reports exactly the flows whose verdict a draft
//! changes.

use palisade_firewall::{Engine, FlowEnd, Learned, ObservedFlow, Protocol, State, learn, simulate};

const CLUSTER: &str = r#"
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
---
kind: Namespace
metadata: {name: ops, labels: {kubernetes.io/metadata.name: ops}}
---
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web, pod-template-hash: aaa}}
status: {podIP: 10.0.0.11}
---
kind: Pod
metadata: {name: web-2, namespace: shop, labels: {app: web, pod-template-hash: bbb}}
status: {podIP: 10.0.0.12}
---
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
status: {podIP: 10.0.0.20}
---
kind: Pod
metadata: {name: cache, namespace: shop, labels: {app: cache}}
status: {podIP: 10.0.0.30}
---
kind: Pod
metadata: {name: prom, namespace: ops, labels: {app: prom}}
status: {podIP: 10.0.1.5}
"#;

/// An end as the agent records it: namespace, pod, labels and address.
fn pod(state: &State, key: &str) -> FlowEnd {
    let (namespace, name) = key.split_once('/').unwrap();
    let pod = state.pod(state.pod_id(namespace, name).unwrap()).unwrap();
    FlowEnd {
        namespace: Some(namespace.to_owned()),
        pod: Some(name.to_owned()),
        labels: pod.labels.clone(),
        namespace_labels: state.namespace(namespace).unwrap().labels.clone(),
        ip: pod.ips.first().copied(),
    }
}

fn external(ip: &str) -> FlowEnd {
    FlowEnd::external(ip.parse().unwrap())
}

fn flow(src: FlowEnd, dst: FlowEnd, port: u16) -> ObservedFlow {
    ObservedFlow {
        src,
        dst,
        protocol: Protocol::Tcp,
        port,
        attempts: 1,
        blocked: false,
        first_seen_ms: 0,
        last_seen_ms: 0,
    }
}

fn observed(state: &State) -> Vec<ObservedFlow> {
    vec![
        flow(pod(state, "shop/web-1"), pod(state, "shop/db"), 5432),
        flow(pod(state, "shop/web-2"), pod(state, "shop/db"), 5432),
        flow(pod(state, "shop/web-1"), pod(state, "shop/cache"), 6379),
        flow(pod(state, "shop/web-1"), pod(state, "shop/cache"), 6380),
        flow(pod(state, "ops/prom"), pod(state, "shop/web-1"), 9090),
        flow(pod(state, "shop/web-2"), external("192.0.2.10"), 443),
        flow(external("198.51.100.7"), pod(state, "shop/web-2"), 8080),
    ]
}

fn not_observed(state: &State) -> Vec<ObservedFlow> {
    vec![
        flow(pod(state, "shop/web-1"), pod(state, "shop/db"), 22),
        flow(pod(state, "shop/db"), pod(state, "shop/web-1"), 8080),
        flow(pod(state, "shop/cache"), pod(state, "shop/db"), 5432),
        flow(pod(state, "shop/web-1"), external("192.0.2.11"), 443),
        flow(pod(state, "ops/prom"), pod(state, "shop/db"), 9090),
        flow(external("198.51.100.8"), pod(state, "shop/web-1"), 8080),
        flow(pod(state, "shop/web-1"), pod(state, "shop/cache"), 6381),
    ]
}

/// The cluster plus the learned documents, read back through the state parser.
fn with_learned(documents: &[serde_json::Value]) -> State {
    let yaml = Learned::to_yaml(documents);
    let mut state = State::from_yaml(CLUSTER).unwrap();
    state
        .apply_yaml(&yaml)
        .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
    state
}

fn assert_exact(state: &State, cluster: &State) {
    let engine = Engine::new(state).unwrap();
    for flow in observed(cluster) {
        let verdict = engine.evaluate(&flow.to_flow(state).unwrap());
        assert!(
            verdict.allowed,
            "observed flow refused: {}",
            flow.describe()
        );
    }
    for flow in not_observed(cluster) {
        let verdict = engine.evaluate(&flow.to_flow(state).unwrap());
        assert!(
            !verdict.allowed,
            "unobserved flow allowed: {}",
            flow.describe()
        );
    }
}

#[test]
fn learned_network_policies_allow_exactly_the_observed_flows() {
    let cluster = State::from_yaml(CLUSTER).unwrap();
    let learned = learn(&observed(&cluster));
    // One policy per workload group: web, db, cache, prom.
    assert_eq!(
        learned.network_policies.len(),
        4,
        "{:#?}",
        learned.network_policies
    );
    assert_exact(&with_learned(&learned.network_policies), &cluster);
}

#[test]
fn learned_palisade_rules_allow_exactly_the_observed_flows() {
    let cluster = State::from_yaml(CLUSTER).unwrap();
    let learned = learn(&observed(&cluster));
    let state = with_learned(&learned.palisade);
    // web→db, web→cache (6379-6380 merged), prom→web, web→external, external→web.
    let allows: Vec<_> = state
        .firewall_rules()
        .iter()
        .filter(|rule| rule.name.starts_with("learned-allow"))
        .collect();
    assert_eq!(allows.len(), 5, "{allows:#?}");
    let web_to_cache = allows
        .iter()
        .find(|rule| rule.destination == "shop/app=cache")
        .unwrap();
    assert_eq!(web_to_cache.source, "shop/app=web");
    assert_eq!(web_to_cache.ports, vec![(6379, 6380)]);
    assert_exact(&state, &cluster);
}

#[test]
fn simulate_reports_exactly_the_changed_flows() {
    let cluster = State::from_yaml(CLUSTER).unwrap();
    let mut draft = State::from_yaml(CLUSTER).unwrap();
    draft
        .apply_yaml(
            r#"
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {name: db-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
"#,
        )
        .unwrap();
    let mut refused_before = flow(pod(&cluster, "shop/cache"), pod(&cluster, "shop/web-1"), 80);
    refused_before.blocked = true;
    let flows = vec![
        flow(pod(&cluster, "shop/web-1"), pod(&cluster, "shop/db"), 5432),
        flow(pod(&cluster, "shop/cache"), pod(&cluster, "shop/db"), 5432),
        flow(pod(&cluster, "shop/web-2"), pod(&cluster, "shop/db"), 22),
        flow(
            pod(&cluster, "shop/web-1"),
            pod(&cluster, "shop/cache"),
            6379,
        ),
        refused_before,
    ];
    let draft_engine = Engine::new(&draft).unwrap();

    // Before = the recording's verdicts.
    let result = simulate(None, &draft_engine, &flows).unwrap();
    let described = |changes: &[palisade_firewall::Change]| -> Vec<String> {
        changes
            .iter()
            .map(|change| change.flow.describe())
            .collect()
    };
    assert_eq!(
        described(&result.newly_blocked),
        [
            "shop/cache -> shop/db 5432/TCP",
            "shop/web-2 -> shop/db 22/TCP"
        ]
    );
    assert_eq!(
        described(&result.newly_allowed),
        ["shop/cache -> shop/web-1 80/TCP"]
    );
    assert_eq!(result.unchanged, 2);
    assert!(
        result.newly_blocked[0].decided_by.contains("db-from-web"),
        "{}",
        result.newly_blocked[0].decided_by
    );

    // Before = the current policy's verdicts (no policy: everything allowed).
    let current_engine = Engine::new(&cluster).unwrap();
    let result = simulate(Some(&current_engine), &draft_engine, &flows).unwrap();
    assert_eq!(result.newly_blocked.len(), 2);
    assert!(result.newly_allowed.is_empty());
    assert_eq!(result.unchanged, 3);
}
