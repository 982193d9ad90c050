//! Flow verdicts per second on a synthetic cluster: 1,000 pods in 20 namespaces and 500
//! policies (400 NetworkPolicies, 80 AdminNetworkPolicies, 20 baseline
//! ClusterNetworkPolicies). Most policies select one app in one namespace; every fifth
//! NetworkPolicy selects a whole tier of a namespace and every fourth admin policy whole
//! namespaces, so a pod is typically selected by several policies per tier.
//!
//! Run: `cargo bench -p palisade-firewall --bench verdicts`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_firewall::{
    Action, ContainerPort, Endpoint, Engine, Flow, IpBlock, Labels, Namespace, NamespaceMatch,
    Peer, Pod, Policy, PolicyKind, PortMatch, PortSet, Protocol, Rule, Selector, State, Subject,
    Tier,
};

const N_NAMESPACES: usize = 20;
const N_PODS: usize = 1_000;
const N_APPS: usize = 50;
const N_FLOWS: usize = 4_096;

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect()
}

fn select(pairs: &[(&str, String)]) -> Selector {
    Selector::from_labels(&labels(pairs))
}

fn ports(protocol: Protocol, start: u16, end: u16) -> Vec<PortMatch> {
    vec![PortMatch {
        protocol: Some(protocol),
        ports: PortSet::Range(start, end),
    }]
}

/// A deterministic pseudo-random sequence (no dependency needed for a benchmark fixture).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

fn cluster() -> State {
    let mut state = State::new();
    for ns_idx in 0..N_NAMESPACES {
        state.insert_namespace(Namespace {
            name: format!("ns-{ns_idx}"),
            labels: labels(&[
                ("team", format!("t{}", ns_idx % 5)),
                (
                    "env",
                    if ns_idx % 2 == 0 { "prod" } else { "dev" }.to_string(),
                ),
            ]),
        });
    }
    for pod_idx in 0..N_PODS {
        let ns_idx = pod_idx % N_NAMESPACES;
        state.insert_pod(Pod {
            namespace: format!("ns-{ns_idx}"),
            name: format!("pod-{pod_idx}"),
            labels: labels(&[
                ("app", format!("app{}", pod_idx % N_APPS)),
                ("tier", ["web", "api", "db"][pod_idx % 3].to_string()),
            ]),
            ips: vec![
                [
                    10,
                    ns_idx as u8,
                    (pod_idx / 250) as u8,
                    (pod_idx % 250) as u8,
                ]
                .into(),
            ],
            ports: vec![
                ContainerPort {
                    name: Some("http".into()),
                    port: 8080,
                    protocol: Protocol::Tcp,
                },
                ContainerPort {
                    name: Some("pg".into()),
                    port: 5432,
                    protocol: Protocol::Tcp,
                },
            ],
            images: vec!["registry.example/app:1".into()],
            service_account: None,
        });
    }
    let mut random = Lcg(7);
    for policy_idx in 0..400 {
        let ns_idx = policy_idx % N_NAMESPACES;
        let namespace = format!("ns-{ns_idx}");
        let ingress = vec![
            Rule {
                name: None,
                action: Action::Allow,
                peers: vec![Peer::Pods {
                    namespaces: NamespaceMatch::Name(namespace.clone()),
                    pods: select(&[("tier", "web".into())]),
                }],
                ports: vec![PortMatch {
                    protocol: Some(Protocol::Tcp),
                    ports: PortSet::Named("http".into()),
                }],
            },
            Rule {
                name: None,
                action: Action::Allow,
                peers: vec![Peer::Pods {
                    namespaces: NamespaceMatch::Selector(select(&[(
                        "team",
                        format!("t{}", random.next(5)),
                    )])),
                    pods: select(&[("app", format!("app{}", random.next(N_APPS)))]),
                }],
                ports: ports(Protocol::Tcp, 5432, 5432),
            },
        ];
        let egress = (policy_idx % 4 == 0).then(|| {
            vec![Rule {
                name: None,
                action: Action::Allow,
                peers: vec![Peer::Ips(IpBlock {
                    cidr: "10.0.0.0/8".parse().unwrap(),
                    except: vec![
                        format!("10.{}.0.0/16", random.next(N_NAMESPACES))
                            .parse()
                            .unwrap(),
                    ],
                })],
                ports: Vec::new(),
            }]
        });
        state.insert_policy(Policy {
            kind: PolicyKind::NetworkPolicy,
            namespace: Some(namespace.clone()),
            name: format!("np-{policy_idx}"),
            tier: Tier::NetworkPolicy,
            priority: 0,
            // Every fifth policy selects a whole tier of its namespace, so pods are selected
            // by several policies at once, not just by the one for their app.
            subject: Subject::Namespace {
                namespace,
                pods: if policy_idx % 5 == 0 {
                    select(&[("tier", ["web", "api", "db"][random.next(3)].to_string())])
                } else {
                    select(&[("app", format!("app{}", random.next(N_APPS)))])
                },
            },
            ingress: Some(ingress),
            egress,
        });
    }
    for policy_idx in 0..100 {
        let (kind, tier) = if policy_idx < 80 {
            (PolicyKind::AdminNetworkPolicy, Tier::Admin)
        } else {
            (PolicyKind::ClusterNetworkPolicy, Tier::Baseline)
        };
        let rule = |action, namespaces: Selector, port_matches| Rule {
            name: None,
            action,
            peers: vec![Peer::Pods {
                namespaces: NamespaceMatch::Selector(namespaces),
                pods: Selector::everything(),
            }],
            ports: port_matches,
        };
        state.insert_policy(Policy {
            kind,
            namespace: None,
            name: format!("admin-{policy_idx}"),
            tier,
            priority: policy_idx,
            subject: Subject::Pods {
                namespaces: select(&[("team", format!("t{}", policy_idx % 5))]),
                pods: if policy_idx % 4 == 0 {
                    Selector::everything()
                } else {
                    select(&[("app", format!("app{}", random.next(N_APPS)))])
                },
            },
            ingress: Some(vec![
                rule(
                    Action::Deny,
                    select(&[("env", "dev".into())]),
                    ports(Protocol::Tcp, 22, 23),
                ),
                rule(
                    Action::Pass,
                    select(&[("team", format!("t{}", random.next(5)))]),
                    Vec::new(),
                ),
            ]),
            egress: Some(vec![rule(
                Action::Allow,
                select(&[("env", "prod".into())]),
                ports(Protocol::Udp, 53, 53),
            )]),
        });
    }
    state
}

fn flows(state: &State) -> Vec<Flow> {
    let mut random = Lcg(42);
    let port_choices = [
        (Protocol::Tcp, 8080),
        (Protocol::Tcp, 5432),
        (Protocol::Tcp, 22),
        (Protocol::Udp, 53),
    ];
    (0..N_FLOWS)
        .map(|_| {
            let src = &state.pods()[random.next(N_PODS)];
            let dst = &state.pods()[random.next(N_PODS)];
            let (protocol, port) = port_choices[random.next(port_choices.len())];
            Flow::new(
                state.endpoint(&src.key()).unwrap(),
                state.endpoint(&dst.key()).unwrap(),
                protocol,
                port,
            )
        })
        .collect()
}

fn verdicts(criterion: &mut Criterion) {
    let state = cluster();
    let engine = Engine::new(&state).unwrap();
    let pod_flows = flows(&state);
    let n_allowed = pod_flows
        .iter()
        .filter(|flow| engine.evaluate(flow).allowed)
        .count();
    // A fixture where every flow had the same verdict would measure nothing interesting.
    assert!(
        n_allowed > N_FLOWS / 10 && n_allowed < N_FLOWS * 9 / 10,
        "{n_allowed} allowed"
    );

    let mut group = criterion.benchmark_group("verdicts");
    group.throughput(Throughput::Elements(N_FLOWS as u64));
    group.bench_function("pod_to_pod_1000_pods_500_policies", |bencher| {
        bencher.iter(|| {
            let mut n_allowed = 0;
            for flow in &pod_flows {
                n_allowed += usize::from(engine.evaluate(black_box(flow)).allowed);
            }
            n_allowed
        })
    });
    let external_flows: Vec<Flow> = pod_flows
        .iter()
        .map(|flow| Flow {
            src: Endpoint::Ip([192, 0, 2, 1].into()),
            ..flow.clone()
        })
        .collect();
    group.bench_function("external_to_pod_1000_pods_500_policies", |bencher| {
        bencher.iter(|| {
            let mut n_allowed = 0;
            for flow in &external_flows {
                n_allowed += usize::from(engine.evaluate(black_box(flow)).allowed);
            }
            n_allowed
        })
    });
    group.finish();

    criterion.bench_function("engine_new_1000_pods_500_policies", |bencher| {
        bencher.iter(|| Engine::new(black_box(&state)).unwrap().state().pods().len())
    });
}

criterion_group!(benches, verdicts);
criterion_main!(benches);
