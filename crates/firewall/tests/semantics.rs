//! One test per semantic rule of the policy kinds, on small self-written clusters.

use palisade_firewall::{
    Decision, Direction, Endpoint, Engine, ErrorKind, Flow, Protocol, State, Verdict, Workload,
};

/// Namespaces `x` and `y` (labelled `ns: <name>`, `env: prod|dev`), pods `a` and `b` in each
/// (labelled `pod: <name>`), every pod serving `serve-80-tcp`, `serve-81-tcp`,
/// `serve-80-udp`, `serve-80-sctp` and `web` (8080/TCP).
const CLUSTER: &str = r#"
kind: Namespace
metadata: {name: x, labels: {ns: x, env: prod}}
---
kind: Namespace
metadata: {name: y, labels: {ns: y, env: dev}}
---
kind: List
items:
- kind: Pod
  metadata: {name: a, namespace: x, labels: {pod: a}}
  spec: &containers
    containers:
    - name: c
      ports:
      - {name: serve-80-tcp, containerPort: 80}
      - {name: serve-81-tcp, containerPort: 81, protocol: TCP}
      - {name: serve-80-udp, containerPort: 80, protocol: UDP}
      - {name: serve-80-sctp, containerPort: 80, protocol: SCTP}
      - {name: web, containerPort: 8080}
  status: {podIP: 10.0.1.1, podIPs: [{ip: 10.0.1.1}, {ip: "fd00::1:1"}]}
- kind: Pod
  metadata: {name: b, namespace: x, labels: {pod: b}}
  spec: *containers
  status: {podIP: 10.0.1.2}
- kind: Pod
  metadata: {name: a, namespace: y, labels: {pod: a}}
  spec: *containers
  status: {podIP: 10.0.2.1}
- kind: Pod
  metadata: {name: b, namespace: y, labels: {pod: b}}
  spec: *containers
  status: {podIP: 10.0.2.2}
"#;

fn state(policies: &str) -> State {
    State::from_yaml(&format!("{CLUSTER}\n---\n{policies}"))
        .unwrap_or_else(|error| panic!("{error}"))
}

fn verdict(state: &State, from: &str, to: &str, protocol: Protocol, port: u16) -> Verdict {
    let engine = Engine::new(state).unwrap();
    let flow = Flow::new(
        state.endpoint(from).unwrap(),
        state.endpoint(to).unwrap(),
        protocol,
        port,
    );
    engine.evaluate(&flow)
}

fn allowed(state: &State, from: &str, to: &str, protocol: Protocol, port: u16) -> bool {
    verdict(state, from, to, protocol, port).allowed
}

use Protocol::{Sctp, Tcp, Udp};

#[test]
fn no_policy_allows_everything() {
    let state = state("");
    let verdict = verdict(&state, "x/a", "y/b", Udp, 53);
    assert!(verdict.allowed);
    assert_eq!(verdict.ingress.decision, Decision::Default);
    assert_eq!(verdict.egress.decision, Decision::Default);
}

#[test]
fn empty_rule_list_denies_and_isolation_is_per_direction() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: deny-in, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: []}\n",
    );
    let verdict = verdict(&state, "y/b", "x/a", Tcp, 80);
    assert!(!verdict.allowed);
    assert!(matches!(verdict.ingress.decision, Decision::Isolated(_)));
    // Only ingress is isolated: x/a can still send, and x/b is not selected.
    assert!(allowed(&state, "x/a", "y/b", Tcp, 80));
    assert!(allowed(&state, "y/b", "x/b", Tcp, 80));
}

#[test]
fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
    // No policyTypes, egress rules present: both directions isolated.
    let with_egress = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  egress: [{ports: [{port: 53, protocol: UDP}]}]\n",
    );
    assert!(
        !allowed(&with_egress, "y/a", "x/a", Tcp, 80),
        "ingress isolated by default"
    );
    assert!(
        !allowed(&with_egress, "x/a", "y/a", Tcp, 80),
        "egress isolated: egress rules exist"
    );
    assert!(allowed(&with_egress, "x/a", "y/a", Udp, 53));
    // No policyTypes and an empty egress list: egress is not isolated.
    let empty_egress = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, egress: []}\n",
    );
    assert!(allowed(&empty_egress, "x/a", "y/a", Tcp, 80));
    assert!(!allowed(&empty_egress, "y/a", "x/a", Tcp, 80));
    // Explicit [Egress] does not isolate ingress.
    let egress_only = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress]}\n",
    );
    assert!(allowed(&egress_only, "y/a", "x/a", Tcp, 80));
    assert!(!allowed(&egress_only, "x/a", "y/a", Tcp, 80));
}

#[test]
fn protocol_defaults_to_tcp_and_sctp_is_its_own_protocol() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 80}]}, {ports: [{protocol: SCTP}]}]\n",
    );
    assert!(allowed(&state, "y/a", "x/a", Tcp, 80));
    assert!(
        !allowed(&state, "y/a", "x/a", Udp, 80),
        "protocol defaulted to TCP"
    );
    assert!(allowed(&state, "y/a", "x/a", Sctp, 80));
    assert!(
        allowed(&state, "y/a", "x/a", Sctp, 9999),
        "SCTP on every port"
    );
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 81));
}

#[test]
fn end_port_is_an_inclusive_range() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 8000, endPort: 8010, protocol: TCP}]}]\n",
    );
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 7999));
    assert!(allowed(&state, "y/a", "x/a", Tcp, 8000));
    assert!(allowed(&state, "y/a", "x/a", Tcp, 8010));
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 8011));
    assert!(!allowed(&state, "y/a", "x/a", Udp, 8005));
    let error = State::from_yaml(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 90, endPort: 80}]}]\n",
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidPort);
    assert_eq!(error.field(), "spec.ingress[0].ports[0].endPort");
}

#[test]
fn named_ports_resolve_against_the_destination_pod_for_ingress_and_egress() {
    let state = state(
        r#"
kind: NetworkPolicy
metadata: {name: in, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: serve-81-tcp}]}]
---
kind: NetworkPolicy
metadata: {name: out, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
"#,
    );
    assert!(allowed(&state, "y/a", "x/a", Tcp, 81));
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 80));
    assert!(
        !allowed(&state, "y/a", "x/a", Udp, 81),
        "the name is TCP only"
    );
    // Egress named port: resolved against the destination's container ports.
    assert!(allowed(&state, "x/b", "y/a", Udp, 80));
    assert!(!allowed(&state, "x/b", "y/a", Tcp, 80));
    assert!(!allowed(&state, "x/b", "y/a", Udp, 81));
    // An IP outside the cluster has no named ports.
    assert!(!allowed(&state, "x/b", "192.0.2.1", Udp, 80));
    // A flow given only by port name resolves the number from the destination pod.
    let engine = Engine::new(&state).unwrap();
    let flow = Flow {
        src: state.endpoint("y/b").unwrap(),
        dst: state.endpoint("x/a").unwrap(),
        protocol: Tcp,
        port: None,
        port_name: Some("serve-81-tcp".into()),
    };
    assert!(engine.evaluate(&flow).allowed);
}

#[test]
fn pod_selector_alone_means_the_policy_namespace() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]\n",
    );
    assert!(allowed(&state, "x/b", "x/a", Tcp, 80));
    assert!(
        !allowed(&state, "y/b", "x/a", Tcp, 80),
        "y/b has the labels but not the namespace"
    );
    assert!(!allowed(&state, "x/a", "x/a", Tcp, 80));
}

#[test]
fn namespace_selector_alone_means_every_pod_there() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n",
    );
    assert!(allowed(&state, "y/a", "x/a", Tcp, 80));
    assert!(allowed(&state, "y/b", "x/a", Tcp, 80));
    assert!(!allowed(&state, "x/b", "x/a", Tcp, 80));
}

#[test]
fn namespace_and_pod_selector_in_one_peer_are_anded_in_two_peers_ored() {
    let and = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]}]\n",
    );
    assert!(allowed(&and, "y/b", "x/a", Tcp, 80));
    assert!(!allowed(&and, "y/a", "x/a", Tcp, 80));
    assert!(!allowed(&and, "x/b", "x/a", Tcp, 80));
    let or = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}]}]\n",
    );
    assert!(allowed(&or, "y/a", "x/a", Tcp, 80));
    assert!(allowed(&or, "x/b", "x/a", Tcp, 80));
    assert!(!allowed(&or, "x/a", "x/b", Tcp, 80));
}

#[test]
fn match_expressions_select_subjects_and_peers() {
    let state = state(
        r#"
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a]}]}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}
      podSelector: {matchExpressions: [{key: pod, operator: Exists}, {key: legacy, operator: DoesNotExist}]}
"#,
    );
    assert!(allowed(&state, "y/a", "x/a", Tcp, 80));
    assert!(
        !allowed(&state, "x/b", "x/a", Tcp, 80),
        "namespace x is env=prod"
    );
    assert!(
        allowed(&state, "x/a", "x/b", Tcp, 80),
        "x/b is not selected"
    );
}

#[test]
fn policies_are_a_union_of_allows() {
    let state = state(
        r#"
kind: NetworkPolicy
metadata: {name: from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
---
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
"#,
    );
    assert!(allowed(&state, "x/b", "x/a", Tcp, 80));
    assert!(allowed(&state, "y/b", "x/a", Tcp, 80));
    assert!(!allowed(&state, "x/a", "x/b", Tcp, 80));
}

#[test]
fn ip_block_with_except_matches_pods_and_external_ips() {
    let state = state(
        r#"
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.0/24]}}, {ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}}]}]
"#,
    );
    assert!(
        allowed(&state, "x/a", "x/b", Tcp, 80),
        "pod IP 10.0.1.2 is in the block"
    );
    assert!(
        !allowed(&state, "x/a", "y/a", Tcp, 80),
        "10.0.2.1 is excepted"
    );
    assert!(allowed(&state, "x/a", "10.0.200.1", Tcp, 80));
    assert!(!allowed(&state, "x/a", "10.1.0.1", Tcp, 80));
    assert!(allowed(&state, "x/a", "2001:db8:2::1", Tcp, 80));
    assert!(!allowed(&state, "x/a", "2001:db8:1::1", Tcp, 80));
    assert!(!allowed(&state, "x/a", "2001:db9::1", Tcp, 80));
}

#[test]
fn ipv6_ingress_from_external_ip() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 'fd00::/8'}}]}]\n",
    );
    let engine = Engine::new(&state).unwrap();
    let to = state.endpoint("x/a").unwrap();
    let flow = |ip: &str| Flow::new(Endpoint::Ip(ip.parse().unwrap()), to.clone(), Tcp, 80);
    let inside = engine.evaluate(&flow("fd12::7"));
    assert!(inside.allowed);
    assert_eq!(inside.egress.decision, Decision::NotApplicable);
    assert!(!engine.evaluate(&flow("2001:db8::1")).allowed);
    assert!(!engine.evaluate(&flow("10.9.9.9")).allowed);
    // A pod's second (IPv6) address resolves to the pod.
    assert_eq!(
        state.endpoint("fd00::1:1").unwrap(),
        state.endpoint("x/a").unwrap()
    );
}

#[test]
fn inline_workloads_are_matched_by_labels() {
    let state = state(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]\n",
    );
    let engine = Engine::new(&state).unwrap();
    let workload = |team: &str| {
        Endpoint::Workload(Box::new(Workload {
            namespace: "z".into(),
            labels: Default::default(),
            namespace_labels: [("team".to_string(), team.to_string())].into(),
            ip: None,
        }))
    };
    let to = state.endpoint("x/a").unwrap();
    assert!(
        engine
            .evaluate(&Flow::new(workload("blue"), to.clone(), Tcp, 80))
            .allowed
    );
    assert!(
        !engine
            .evaluate(&Flow::new(workload("red"), to, Tcp, 80))
            .allowed
    );
    // An inline workload as the destination is selected by policies like a pod.
    let dst = Endpoint::Workload(Box::new(Workload {
        namespace: "x".into(),
        ..Workload::default()
    }));
    assert!(
        !engine
            .evaluate(&Flow::new(workload("red"), dst, Tcp, 80))
            .allowed
    );
}

const ANP_DENY_FROM_Y: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-y}
spec:
  priority: 20
  subject: {namespaces: {matchLabels: {ns: x}}}
  ingress:
  - {name: deny-y, action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}
"#;

#[test]
fn admin_priority_and_rule_order() {
    let state = state(&format!(
        r#"{ANP_DENY_FROM_Y}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {{name: allow-b}}
spec:
  priority: 10
  subject: {{namespaces: {{}}}}
  ingress:
  - {{action: Allow, from: [{{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{pod: b}}}}}}}}], ports: [{{portNumber: {{port: 80}}}}]}}
  - {{action: Deny, from: [{{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{pod: b}}}}}}}}]}}
"#
    ));
    // Priority 10 comes first: y/b is allowed on 80 over the priority-20 deny.
    assert!(allowed(&state, "y/b", "x/a", Tcp, 80));
    // Within allow-b, rule order: the deny applies to the other ports.
    let verdict = verdict(&state, "y/b", "x/a", Tcp, 81);
    assert!(!verdict.allowed);
    match verdict.ingress.decision {
        Decision::Rule(rule_ref) => assert_eq!(rule_ref.rule, 1),
        other => panic!("{other:?}"),
    }
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 80), "priority 20 deny");
    // Admin allow wins over a NetworkPolicy that would isolate.
    let with_np = state_with(
        &state,
        "kind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\nspec: {podSelector: {}}\n",
    );
    assert!(allowed(&with_np, "y/b", "x/a", Tcp, 80));
    assert!(!allowed(&with_np, "x/b", "x/a", Tcp, 81));
}

fn state_with(base: &State, more: &str) -> State {
    let mut state = base.clone();
    state.apply_yaml(more).unwrap();
    state
}

#[test]
fn pass_goes_to_network_policy_then_baseline() {
    let pass = r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: pass}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress: [{name: pass-all, action: Pass, from: [{namespaces: {}}]}]
"#;
    let banp = r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}]
"#;
    // The pass skips the priority-20 deny; with no NetworkPolicy, the baseline denies y.
    let state = state(&format!("{pass}\n---\n{ANP_DENY_FROM_Y}\n---\n{banp}"));
    let verdict = verdict(&state, "y/a", "x/a", Tcp, 80);
    assert!(!verdict.allowed);
    assert!(verdict.ingress.passed.is_some());
    let engine = Engine::new(&state).unwrap();
    let Decision::Rule(rule_ref) = verdict.ingress.decision else {
        panic!("{verdict:?}")
    };
    assert_eq!(engine.policy(rule_ref.policy).unwrap().name, "default");
    assert!(
        allowed(&state, "x/b", "x/a", Tcp, 80),
        "baseline does not match x"
    );

    // A NetworkPolicy selecting the pod decides before the baseline: BANP after NP.
    let with_np = state_with(
        &state,
        "kind: NetworkPolicy\nmetadata: {name: from-y, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]\n",
    );
    let verdict_np = verdict_of(&with_np, "y/a", "x/a");
    assert!(verdict_np.allowed);
    let engine = Engine::new(&with_np).unwrap();
    let Decision::Rule(rule_ref) = verdict_np.ingress.decision else {
        panic!("{verdict_np:?}")
    };
    assert_eq!(engine.policy(rule_ref.policy).unwrap().name, "from-y");
    assert_eq!(
        engine
            .rule(rule_ref, Direction::Ingress)
            .unwrap()
            .peers
            .len(),
        1
    );
    // ...and denies what it does not allow, without consulting the baseline.
    assert!(!allowed(&with_np, "x/b", "x/a", Tcp, 80));
}

fn verdict_of(state: &State, from: &str, to: &str) -> Verdict {
    verdict(state, from, to, Tcp, 80)
}

#[test]
fn cluster_network_policy_tiers_and_protocols() {
    let state = state(
        r#"
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admin}
spec:
  tier: Admin
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {}}}
  ingress:
  - name: accept-web
    action: Accept
    from: [{namespaces: {}}]
    protocols: [{destinationNamedPort: web}]
  - name: pass-y-udp
    action: Pass
    from: [{namespaces: {matchLabels: {ns: y}}}]
    protocols: [{udp: {destinationPort: {range: {start: 50, end: 60}}}}]
  - name: deny-y
    action: Deny
    from: [{pods: {namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: a}}}}]
  egress:
  - {name: deny-dns, action: Deny, to: [{networks: ["10.0.2.2/32", "fd00::/8"]}], protocols: [{udp: {destinationPort: {number: 53}}}, {sctp: {}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: baseline}
spec:
  tier: Baseline
  priority: 1
  subject: {namespaces: {}}
  ingress:
  - {action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}], protocols: [{udp: {}}]}
"#,
    );
    assert!(
        allowed(&state, "y/a", "x/a", Tcp, 8080),
        "named port accepted first"
    );
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 80), "deny-y");
    assert!(
        allowed(&state, "y/b", "x/a", Tcp, 80),
        "no rule, no NetworkPolicy: default"
    );
    // Pass to the NetworkPolicy tier (none), then the baseline denies UDP from y.
    let passed = verdict(&state, "y/a", "x/a", Udp, 55);
    assert!(!passed.allowed);
    assert!(passed.ingress.passed.is_some());
    assert!(
        !allowed(&state, "y/b", "x/a", Udp, 80),
        "baseline denies UDP from y"
    );
    // Egress networks match pod IPs too.
    assert!(!allowed(&state, "x/a", "y/b", Udp, 53));
    assert!(allowed(&state, "x/a", "y/a", Udp, 53));
    assert!(!allowed(&state, "x/a", "y/b", Sctp, 9));
    assert!(!allowed(&state, "x/a", "fd00::9", Udp, 53));
}

#[test]
fn same_labels_and_not_same_labels() {
    let state = state(
        r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: tenancy}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress:
  - {action: Allow, from: [{namespaces: {sameLabels: [ns]}}]}
  - {action: Deny, from: [{namespaces: {notSameLabels: [ns]}}]}
"#,
    );
    assert!(allowed(&state, "x/b", "x/a", Tcp, 80));
    assert!(!allowed(&state, "y/b", "x/a", Tcp, 80));
    assert!(!allowed(&state, "x/b", "y/a", Tcp, 80));
}

#[test]
fn nodes_peers_match_node_addresses() {
    let state = state(
        r#"
kind: Node
metadata: {name: n1, labels: {role: control-plane}}
status: {addresses: [{type: InternalIP, address: 172.16.0.1}, {type: Hostname, address: n1}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: no-control-plane}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{nodes: {matchLabels: {role: control-plane}}}]}]
"#,
    );
    assert!(!allowed(&state, "x/a", "172.16.0.1", Tcp, 6443));
    assert!(allowed(&state, "x/a", "172.16.0.2", Tcp, 6443));
}

#[test]
fn updates_replace_and_deletes_remove() {
    let mut state =
        state("kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}}\n");
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 80));
    state
        .apply_yaml("kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {pod: b}}}\n")
        .unwrap();
    assert_eq!(state.policies().len(), 1);
    assert!(allowed(&state, "y/a", "x/a", Tcp, 80));
    assert!(!allowed(&state, "y/a", "x/b", Tcp, 80));
    state
        .set_pod_labels("x", "a", [("pod".to_string(), "b".to_string())].into())
        .unwrap();
    assert!(!allowed(&state, "y/a", "x/a", Tcp, 80));
    assert!(state.delete("NetworkPolicy", Some("x"), "p"));
    assert!(!state.delete("NetworkPolicy", Some("x"), "p"));
    assert!(allowed(&state, "y/a", "x/a", Tcp, 80));
    // No namespace means `default`, as with kubectl; cluster-scoped kinds have none.
    state
        .apply_yaml("kind: NetworkPolicy\nmetadata: {name: d}\nspec: {podSelector: {}}\n---\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}}\n")
        .unwrap();
    assert_eq!(state.policies()[0].namespace.as_deref(), Some("default"));
    assert!(state.delete("NetworkPolicy", None, "d"));
    assert!(state.delete("AdminNetworkPolicy", None, "a"));
    assert!(state.policies().is_empty());
    assert_eq!(
        state
            .set_pod_labels("x", "zz", Default::default())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn invalid_objects_are_errors_with_a_field_path() {
    let cases = [
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, policyTypes: [Sideways]}\n",
            "spec.policyTypes[0]",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{}]}]}\n",
            "spec.ingress[0].from[0]",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}\n",
            "spec.ingress[0].ports[0].port",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{ports: [{protocol: ICMP}]}]}\n",
            "spec.ingress[0].ports[0].protocol",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [nope]}}]}]}\n",
            "spec.egress[0].to[0].ipBlock.except[0]",
        ),
        (
            "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1001, subject: {namespaces: {}}}\n",
            "spec.priority",
        ),
        (
            "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}\n",
            "spec.ingress[0].action",
        ),
        (
            "kind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {}}, egress: [{action: Pass, to: [{namespaces: {}}]}]}\n",
            "spec.egress[0].action",
        ),
        (
            "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Middle, priority: 1, subject: {namespaces: {}}}\n",
            "spec.tier",
        ),
        (
            "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {}}\n",
            "spec.subject",
        ),
        (
            "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [300.0.0.0/8]}]}]}\n",
            "spec.egress[0].to[0].networks[0]",
        ),
        (
            "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{namespaces: {}, nodes: {}}]}]}\n",
            "spec.egress[0].to[0]",
        ),
        (
            "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{namespaces: {}}], protocols: [{tcp: {}, udp: {}}]}]}\n",
            "spec.egress[0].protocols[0]",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nstatus: {podIP: 10.0.0.300}\n",
            "status.podIP",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {namespace: x}\nspec: {podSelector: {}}\n",
            "metadata.name",
        ),
        (
            "kind: FirewallRule\nmetadata: {name: r}\nspec: {source: a, destination: b, action: allow, ports: [{port: 1}, {port: 2}, {port: 3}, {port: 4}, {port: 5}, {port: 6}, {port: 7}, {port: 8}, {port: 9}]}\n",
            "spec.ports",
        ),
        (
            "kind: FirewallRule\nmetadata: {name: r}\nspec: {source: a, destination: b, action: drop}\n",
            "spec.action",
        ),
        (
            "kind: NetworkObject\nmetadata: {name: o}\nspec: {cidrs: [10.0.0.0/8], namespace: x}\n",
            "spec.cidrs",
        ),
    ];
    for (text, field) in cases {
        let error = State::from_yaml(text).expect_err(text);
        assert_eq!(error.field(), field, "{text}: {error}");
        assert!(!error.object().is_empty(), "{error}");
    }
    assert_eq!(
        State::from_yaml("kind: Deployment\nmetadata: {name: d}\n")
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownKind
    );
    assert_eq!(
        State::from_yaml("a: [").unwrap_err().kind(),
        ErrorKind::Syntax
    );
    assert_eq!(
        State::from_yaml("- 1\n- 2\n").unwrap_err().kind(),
        ErrorKind::InvalidField
    );
    assert_eq!(
        State::from_yaml("metadata: {}\n").unwrap_err().field(),
        "kind"
    );
}

const FIREWALL: &str = r#"
kind: NetworkObject
metadata: {name: x-workloads}
spec: {namespace: "x*"}
---
kind: NetworkObject
metadata: {name: y-a}
spec: {namespace: y, labels: {matchLabels: {pod: a}}}
---
kind: NetworkObject
metadata: {name: internet}
spec: {cidrs: [192.0.2.0/24, "2001:db8::/32"]}
---
kind: FirewallRule
metadata: {name: alert-x-to-y}
spec: {source: x-workloads, destination: y-a, action: alert, priority: 1}
---
kind: FirewallRule
metadata: {name: block-x-to-y-web}
spec: {source: x-workloads, destination: y-a, ports: [{port: 80, endPort: 81}], protocol: TCP, action: block, priority: 10}
---
kind: FirewallRule
metadata: {name: allow-internet-to-y}
spec: {source: internet, destination: y-a, action: allow, priority: 20}
---
kind: FirewallRule
metadata: {name: disabled-block-everything}
spec: {source: internet, destination: y-a, action: block, priority: 0, enabled: false}
"#;

#[test]
fn palisade_rules_come_first_by_priority_and_alert_does_not_decide() {
    let state = state(&format!(
        "{FIREWALL}\n---\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: y}}\nspec: {{podSelector: {{}}}}\n"
    ));
    let engine = Engine::new(&state).unwrap();
    let rule_name =
        |id: palisade_firewall::FirewallRuleId| state.firewall_rules()[id.index()].name.as_str();

    // Block on 80-81/TCP; the alert that matched first is recorded.
    let verdict = verdict(&state, "x/a", "y/a", Tcp, 81);
    assert!(!verdict.allowed);
    let Decision::Firewall(rule_id) = verdict.ingress.decision else {
        panic!("{verdict:?}")
    };
    assert_eq!(rule_name(rule_id), "block-x-to-y-web");
    assert_eq!(verdict.alert.map(rule_name), Some("alert-x-to-y"));

    // Port 82: only the alert matches, so the Kubernetes tiers decide (y is isolated).
    let verdict = verdict_at(&engine, &state, "x/a", "y/a", Tcp, 82);
    assert!(!verdict.allowed);
    assert!(matches!(verdict.ingress.decision, Decision::Isolated(_)));
    assert_eq!(verdict.alert.map(rule_name), Some("alert-x-to-y"));

    // Allow from the internet overrides the NetworkPolicy; the disabled block never matches.
    let from_internet = Flow::new(
        Endpoint::Ip("192.0.2.7".parse().unwrap()),
        state.endpoint("y/a").unwrap(),
        Udp,
        53,
    );
    let verdict = engine.evaluate(&from_internet);
    assert!(verdict.allowed);
    assert_eq!(verdict.alert, None);
    let from_v6 = Flow::new(
        Endpoint::Ip("2001:db8::7".parse().unwrap()),
        state.endpoint("y/a").unwrap(),
        Tcp,
        1,
    );
    assert!(engine.evaluate(&from_v6).allowed);
    // Not in an object: the NetworkPolicy denies.
    let elsewhere = Flow::new(
        Endpoint::Ip("198.51.100.1".parse().unwrap()),
        state.endpoint("y/a").unwrap(),
        Udp,
        53,
    );
    assert!(!engine.evaluate(&elsewhere).allowed);
    // y/b is not in y-a.
    assert!(!verdict_at(&engine, &state, "x/a", "y/b", Tcp, 80).allowed);
    assert_eq!(
        verdict_at(&engine, &state, "x/a", "y/b", Tcp, 80).alert,
        None
    );
    // The explanation names the rule.
    let explanation = engine.explain(&Flow::new(
        state.endpoint("x/b").unwrap(),
        state.endpoint("y/a").unwrap(),
        Tcp,
        80,
    ));
    assert_eq!(explanation.ingress.tier, "firewall");
    assert_eq!(
        explanation.ingress.policy.as_deref(),
        Some("FirewallRule block-x-to-y-web")
    );
    assert_eq!(
        explanation.alert.as_deref(),
        Some("FirewallRule alert-x-to-y")
    );
}

fn verdict_at(
    engine: &Engine<'_>,
    state: &State,
    from: &str,
    to: &str,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    engine.evaluate(&Flow::new(
        state.endpoint(from).unwrap(),
        state.endpoint(to).unwrap(),
        protocol,
        port,
    ))
}

#[test]
fn palisade_objects_match_images_and_service_accounts() {
    let state = State::from_yaml(
        r#"
kind: Pod
metadata: {name: web, namespace: shop}
spec: {serviceAccountName: web, containers: [{name: c, image: "nginx:1.27"}, {name: s, image: "envoy:1"}]}
status: {podIP: 10.0.0.2}
---
kind: Pod
metadata: {name: job, namespace: shop}
spec: {containers: [{name: c, image: "nginx:1.27"}]}
status: {podIP: 10.0.0.3}
---
kind: NetworkObject
metadata: {name: envoy-web}
spec: {image: "envoy:*", serviceAccount: web}
---
kind: NetworkObject
metadata: {name: all}
spec: {}
---
kind: FirewallRule
metadata: {name: block-to-envoy-web}
spec: {source: all, destination: envoy-web, action: block}
"#,
    )
    .unwrap();
    assert!(!allowed(&state, "shop/job", "shop/web", Tcp, 80));
    assert!(allowed(&state, "shop/web", "shop/job", Tcp, 80));
    // Inline workloads have no image, so image objects never match them.
    let engine = Engine::new(&state).unwrap();
    let workload = Endpoint::Workload(Box::new(Workload {
        namespace: "shop".into(),
        ..Workload::default()
    }));
    assert!(
        engine
            .evaluate(&Flow::new(
                state.endpoint("shop/job").unwrap(),
                workload,
                Tcp,
                80
            ))
            .allowed
    );
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let inputs = [
        "",
        "---\n---\n",
        "kind: NetworkPolicy",
        "kind: NetworkPolicy\nmetadata: []\nspec: 3\n",
        "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{ports: [{containerPort: -1}]}]}\n",
        "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{ports: [{containerPort: 99999999999999999999}]}]}\n",
        "kind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}, ingress: [{ports: [{port: 1.5}]}]}\n",
        "kind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 99999}]}]}\n",
        "kind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}, ingress: [{ports: [{port: ''}]}]}\n",
        "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {sameLabels: [a]}}}\n",
        "kind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {sameLabels: [a], matchLabels: {a: b}}}]}]}\n",
        "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: []}]}\n",
        "kind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, to: [{namespaces: {}}]}]}\n",
        "a: &x [*x]\n",
        "a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
        "kind: Namespace\nmetadata: {name: \"\u{1F600}\", labels: {\"\": x}}\n",
        "\u{0}\u{1}\u{2}",
        deep.as_str(),
    ];
    for input in inputs {
        // Either outcome is fine; a panic fails the test.
        let result = std::panic::catch_unwind(|| {
            State::from_yaml(input).map(|state| state.policies().len())
        });
        assert!(
            result.is_ok(),
            "panicked on {:?}",
            &input[..input.len().min(80)]
        );
    }
    // Those that describe an object name it.
    let error = State::from_yaml(
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: n}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 99999}]}]}\n",
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "NetworkPolicy n/p: spec.ingress[0].ports[0].endPort: port 99999 is not in 1-65535"
    );
}

#[test]
fn json_arrays_and_lists_are_read() {
    let json = r#"[
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"ns": "x"}}},
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x"}, "status": {"podIP": "10.0.0.1"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "x"}, "status": {"podIP": "10.0.0.2"}}
        ]},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "deny", "namespace": "x"}, "spec": {"podSelector": {"matchLabels": {}}}}
    ]"#;
    let state = State::from_yaml(json).unwrap();
    assert_eq!(state.namespaces().len(), 1);
    assert_eq!(state.pods().len(), 2);
    assert_eq!(state.policies().len(), 1);
    assert!(!allowed(&state, "x/a", "x/b", Tcp, 80));
    assert!(allowed(&state, "x/a", "192.0.2.1", Tcp, 80));
    let error = State::from_yaml(
        r#"{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": 5}}]}"#,
    )
    .unwrap_err();
    assert_eq!(error.field(), "metadata.name");
    assert!(error.object().contains("items[0]"), "{error}");
}

/// The network objects an endpoint belongs to: by namespace pattern and labels for pods (in
/// the state or described inline), by CIDR for any address; none for an address in no
/// object.
#[test]
fn an_endpoint_belongs_to_the_network_objects_that_match_it() {
    let state = state(FIREWALL);
    let engine = Engine::new(&state).unwrap();
    let objects_of = |text: &str| engine.network_objects_of(&state.endpoint(text).unwrap());
    assert_eq!(objects_of("x/a"), ["x-workloads"]);
    assert_eq!(objects_of("y/a"), ["y-a"]);
    assert!(objects_of("y/b").is_empty());
    assert_eq!(
        engine.network_objects_of(&Endpoint::Ip("192.0.2.9".parse().unwrap())),
        ["internet"]
    );
    assert!(
        engine
            .network_objects_of(&Endpoint::Ip("198.51.100.1".parse().unwrap()))
            .is_empty()
    );
    let inline = Endpoint::Workload(Box::new(Workload {
        namespace: "y".to_owned(),
        labels: [("pod".to_owned(), "a".to_owned())].into_iter().collect(),
        ..Workload::default()
    }));
    assert_eq!(engine.network_objects_of(&inline), ["y-a"]);
}
