//! The observer on synthetic sensor events: attribution, verdicts, alerts, flow records and
//! policy updates; as root, the connect programs' report stream read into alerts. (Enforcement
//! against the kernel is tested end to end in the palisade crate.)

use std::net::IpAddr;
use std::time::Duration;

use palisade_enforce::{ConnectReportsDrain, ConnectReportsRing, DefenseMode};
use palisade_event::{Container, Event, EventKind, Fd, FdKind, K8sPod, Payload, Protocol, Socket};
use palisade_firewall::{State, read_flows};
use palisade_model::{
    Details, FindingReport, FirewallAction, FirewallRule, NewFirewallRule, PortRange, Severity,
    Timestamp,
};
use uuid::Uuid;

use super::{
    CONNECT_COUNTS_RECEIPT, FirewallWatch, FirewallWatchConfig, LOST_CONNECT_REPORTS_RULE,
    compose_policy, is_pod_cgroup_name,
};
use crate::{EventObserver, Receipt};

const STATE: &str = r#"
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
---
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
status: {podIP: 10.0.0.11}
---
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
status: {podIP: 10.0.0.20}
---
kind: NetworkObject
metadata: {name: web}
spec: {namespace: shop, labels: {matchLabels: {app: web}}}
---
kind: NetworkObject
metadata: {name: db}
spec: {namespace: shop, labels: {matchLabels: {app: db}}}
---
kind: NetworkObject
metadata: {name: internet}
spec: {cidrs: [0.0.0.0/0]}
---
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
"#;

const DAY_MS: i64 = 86_400_000;
/// Noon of some day, in milliseconds.
const NOON_MS: i64 = 20_000 * DAY_MS + DAY_MS / 2;

fn socket_event(
    kind: EventKind,
    local: &str,
    local_port: u16,
    remote: &str,
    remote_port: u16,
) -> Event {
    let mut event = Event::new(kind);
    event.timestamp_ns = u64::try_from(NOON_MS).unwrap() * 1_000_000;
    event.payload = Payload::Network {
        fd: Fd {
            num: 3,
            kind: FdKind::Ipv4,
            name: String::new(),
            socket: Some(Socket {
                protocol: Protocol::Tcp,
                local_addr: Some(local.parse().unwrap()),
                local_port,
                remote_addr: Some(remote.parse().unwrap()),
                remote_port,
                connected: true,
                unix_path: String::new(),
            }),
        },
    };
    event
}

fn in_pod(mut event: Event, namespace: &str, pod: &str) -> Event {
    event.container = Some(std::sync::Arc::new(Container {
        id: "c0ffee".into(),
        name: format!("{pod}-main"),
        k8s: Some(K8sPod {
            pod_name: pod.into(),
            namespace: namespace.into(),
            ..K8sPod::default()
        }),
        ..Container::default()
    }));
    event
}

/// A connect of pod shop/web's process `pid` to 127.0.0.20:5432, by which the watch finds the
/// pod's processes (its cgroup looked up from the pid: no cgroup id in the event).
fn web_connect_from(pid: u32) -> Event {
    let mut event = in_pod(
        socket_event(EventKind::Connect, "0.0.0.0", 0, "127.0.0.20", 5432),
        "shop",
        "web",
    );
    (event.process.pid, event.process.tid) = (pid, pid);
    event.cgroup_id = 0;
    event
}

fn server_rule(
    name: &str,
    source: &str,
    destination: &str,
    port: u16,
    action: FirewallAction,
) -> FirewallRule {
    FirewallRule {
        id: Uuid::now_v7(),
        rule: NewFirewallRule {
            name: name.into(),
            source: source.into(),
            destination: destination.into(),
            ports: vec![PortRange {
                start: port,
                end: port,
            }],
            protocol: Some("TCP".into()),
            action,
            priority: 10,
            enabled: true,
        },
        updated_by: "test".into(),
        updated_at: Timestamp(0),
        demo: false,
    }
}

/// A watch's configuration for cluster `prod`, node `node-1`, in `mode`: no flows file, the
/// default report ring and drain interval.
fn config(mode: DefenseMode) -> FirewallWatchConfig {
    FirewallWatchConfig {
        cluster: "prod".into(),
        node: "node-1".into(),
        mode,
        flows_file: None,
        connect_reports_ring: ConnectReportsRing::DEFAULT,
        connect_reports_drain: ConnectReportsDrain::DEFAULT,
        pin_dir: None,
        outbox: None,
    }
}

fn watch(
    mode: DefenseMode,
    flows_file: Option<std::path::PathBuf>,
    rules: &[FirewallRule],
) -> FirewallWatch {
    let (mut watch, updates) = FirewallWatch::new(FirewallWatchConfig {
        flows_file,
        ..config(mode)
    })
    .unwrap();
    let base = State::from_yaml(STATE).unwrap();
    let (state, skipped) = compose_policy(&base, rules);
    assert!(skipped.is_empty(), "{skipped:?}");
    updates.send(state).unwrap();
    tick_delivered(&mut watch, Timestamp(NOON_MS), &mut Vec::new());
    watch
}

/// Ticks `watch`, then tells it the outbox holds what the tick gave out (its receipt), as
/// the agent's detection thread does after each push.
fn tick_delivered(watch: &mut FirewallWatch, now: Timestamp, reports: &mut Vec<FindingReport>) {
    watch.tick(now, reports);
    if let Some(receipt) = watch.take_receipt() {
        watch.delivered(&receipt);
    }
}

fn firewall_details(report: &FindingReport) -> &palisade_model::FirewallDetails {
    match &report.details {
        Details::FirewallAlert(details) => details,
        other => panic!("not a firewall alert: {other:?}"),
    }
}

#[test]
fn a_blocked_flow_raises_one_alert_per_attempt_with_one_aggregation_key() {
    let rules = [server_rule(
        "no-ssh-to-db",
        "web",
        "db",
        22,
        FirewallAction::Block,
    )];
    let mut watch = watch(DefenseMode::Alert, None, &rules);
    let mut reports = Vec::new();
    let ssh = in_pod(
        socket_event(EventKind::Connect, "10.0.0.11", 40000, "10.0.0.20", 22),
        "shop",
        "web",
    );
    watch.observe(&ssh, &mut reports);
    let mut again = ssh.clone();
    again.timestamp_ns += 3_600 * 1_000_000_000;
    watch.observe(&again, &mut reports);
    // Allowed by the NetworkPolicy and by no Palisade rule: nothing to report.
    let postgres = in_pod(
        socket_event(EventKind::Connect, "10.0.0.11", 40001, "10.0.0.20", 5432),
        "shop",
        "web",
    );
    watch.observe(&postgres, &mut reports);

    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert_eq!(reports[0].dedupe_key(), reports[1].dedupe_key());
    let report = &reports[0];
    assert_eq!(report.rule, "no-ssh-to-db");
    assert_eq!(report.severity, Severity::High);
    assert_eq!(report.asset.cluster, "prod");
    assert_eq!(report.asset.namespace.as_deref(), Some("shop"));
    assert_eq!(report.asset.pod.as_deref(), Some("web"));
    let details = firewall_details(report);
    assert_eq!(details.source, "shop/web");
    assert_eq!(details.destination, "shop/db");
    assert_eq!(details.destination_object, "db");
    assert_eq!(details.port, 22);
    assert_eq!(details.protocol, "TCP");
    assert_eq!(details.mode, "alert", "alert mode reports without refusing");
    assert!(
        details
            .trace
            .iter()
            .any(|line| line.contains("no-ssh-to-db")),
        "{:?}",
        details.trace
    );

    // The next day is another finding.
    let mut next_day = ssh.clone();
    next_day.timestamp_ns += u64::try_from(DAY_MS).unwrap() * 1_000_000;
    watch.observe(&next_day, &mut reports);
    assert_ne!(reports[2].dedupe_key(), reports[0].dedupe_key());
}

#[test]
fn network_policy_denials_and_alert_rules_are_reported() {
    let rules = [server_rule(
        "watch-egress",
        "web",
        "internet",
        443,
        FirewallAction::Alert,
    )];
    let mut watch = watch(DefenseMode::Block, None, &rules);
    let mut reports = Vec::new();
    // db → web is allowed (web is not isolated); web → 192.0.2.1:443 matches the alert rule.
    watch.observe(
        &in_pod(
            socket_event(EventKind::Connect, "10.0.0.20", 40000, "10.0.0.11", 80),
            "shop",
            "db",
        ),
        &mut reports,
    );
    assert!(reports.is_empty(), "{reports:#?}");
    watch.observe(
        &in_pod(
            socket_event(EventKind::Connect, "10.0.0.11", 40000, "192.0.2.1", 443),
            "shop",
            "web",
        ),
        &mut reports,
    );
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].rule, "watch-egress");
    assert_eq!(reports[0].severity, Severity::Medium);
    assert_eq!(firewall_details(&reports[0]).mode, "alert");
    assert_eq!(firewall_details(&reports[0]).destination, "192.0.2.1");

    // From outside the cluster to db: the NetworkPolicy isolates db for ingress. Seen at
    // accept (no container: attributed by the local address).
    reports.clear();
    watch.observe(
        &socket_event(EventKind::Accept4, "10.0.0.20", 5432, "198.51.100.7", 50000),
        &mut reports,
    );
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].rule, "NetworkPolicy shop/db-from-web");
    let details = firewall_details(&reports[0]);
    assert_eq!(
        (details.source.as_str(), details.destination.as_str()),
        ("198.51.100.7", "shop/db")
    );
    assert_eq!(details.port, 5432);
    assert_eq!(details.mode, "block");
    // No Palisade rule decided: the target is the network objects db belongs to (its
    // workload object, and `internet`, 0.0.0.0/0, which holds every address).
    assert_eq!(details.destination_object, "db, internet");

    // An accept from another pod is counted at that pod's connect, not here.
    reports.clear();
    watch.observe(
        &socket_event(EventKind::Accept4, "10.0.0.20", 5432, "10.0.0.11", 50000),
        &mut reports,
    );
    assert!(reports.is_empty());
}

#[test]
fn loopback_and_non_inet_sockets_are_ignored() {
    let mut watch = watch(DefenseMode::Alert, None, &[]);
    let mut reports = Vec::new();
    let mut loopback = socket_event(EventKind::Connect, "127.0.0.1", 40000, "127.0.0.1", 22);
    watch.observe(&loopback, &mut reports);
    if let Payload::Network { fd } = &mut loopback.payload {
        fd.kind = FdKind::Unix;
    }
    watch.observe(&loopback, &mut reports);
    assert!(reports.is_empty());
    assert!(watch.pending_flows.is_empty());
}

#[test]
fn flows_are_recorded_with_attempts_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let mut watch = watch(DefenseMode::Alert, Some(path.clone()), &[]);
    let connect = in_pod(
        socket_event(EventKind::Connect, "10.0.0.11", 40000, "10.0.0.20", 5432),
        "shop",
        "web",
    );
    let mut reports = Vec::new();
    for _ in 0..3 {
        watch.observe(&connect, &mut reports);
    }
    let mut refused = connect.clone();
    refused.ret = -111;
    watch.observe(&refused, &mut reports);
    tick_delivered(&mut watch, Timestamp(NOON_MS + 60_000), &mut reports);
    let mut flows = read_flows(&std::fs::read_to_string(&path).unwrap(), "flows.jsonl").unwrap();
    flows.sort_by_key(|flow| flow.blocked);
    assert_eq!(flows.len(), 2, "{flows:#?}");
    assert_eq!(flows[0].describe(), "shop/web -> shop/db 5432/TCP");
    assert_eq!((flows[0].attempts, flows[0].blocked), (3, false));
    assert_eq!((flows[1].attempts, flows[1].blocked), (1, true));
    assert_eq!(
        flows[0].src.labels.get("app").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        flows[0].dst.ip,
        Some("10.0.0.20".parse::<IpAddr>().unwrap())
    );
}

#[test]
fn a_policy_update_takes_effect_at_the_next_tick() {
    let (mut watch, updates) = FirewallWatch::new(config(DefenseMode::Alert)).unwrap();
    let base = State::from_yaml(STATE).unwrap();
    let connect = in_pod(
        socket_event(EventKind::Connect, "10.0.0.11", 40000, "10.0.0.20", 7000),
        "shop",
        "web",
    );
    let mut reports = Vec::new();
    watch.observe(&connect, &mut reports);
    assert!(reports.is_empty(), "no policy yet: nothing is reported");

    let (blocking, _) = compose_policy(
        &base,
        &[server_rule("r", "web", "db", 7000, FirewallAction::Block)],
    );
    updates.send(blocking).unwrap();
    watch.observe(&connect, &mut reports);
    assert!(reports.is_empty(), "the update waits for the tick");
    tick_delivered(&mut watch, Timestamp(NOON_MS), &mut reports);
    watch.observe(&connect, &mut reports);
    assert_eq!(reports.len(), 1);

    let (allowing, _) = compose_policy(
        &base,
        &[server_rule("r", "web", "db", 7000, FirewallAction::Allow)],
    );
    updates.send(allowing).unwrap();
    tick_delivered(&mut watch, Timestamp(NOON_MS), &mut reports);
    watch.observe(&connect, &mut reports);
    assert_eq!(reports.len(), 1);
}

/// The sensor delivers events late (more so under load): a connect made before a policy
/// switch but judged after it is judged by the policy then in force — a connect made before
/// a `block` rule existed raises no alert — and one made after it by the new policy. The
/// replaced policy is kept for a minute of such late events.
#[test]
fn a_connect_from_before_a_policy_switch_is_judged_by_the_policy_then_in_force() {
    let (mut watch, updates) = FirewallWatch::new(config(DefenseMode::Alert)).unwrap();
    let base = State::from_yaml(STATE).unwrap();
    updates.send(base.clone()).unwrap();
    tick_delivered(&mut watch, Timestamp(NOON_MS), &mut Vec::new());
    let connect_at = |at_ms: i64| {
        let mut connect = in_pod(
            socket_event(EventKind::Connect, "10.0.0.11", 40000, "10.0.0.20", 5432),
            "shop",
            "web",
        );
        connect.timestamp_ns = u64::try_from(at_ms).unwrap() * 1_000_000;
        connect
    };
    let (blocking, _) = compose_policy(
        &base,
        &[server_rule("r", "web", "db", 5432, FirewallAction::Block)],
    );
    updates.send(blocking).unwrap();
    let switched_at = NOON_MS + 1_000;
    let mut reports = Vec::new();
    tick_delivered(&mut watch, Timestamp(switched_at), &mut reports);
    watch.observe(&connect_at(switched_at - 1), &mut reports);
    assert!(reports.is_empty(), "made before the rule: {reports:?}");
    watch.observe(&connect_at(switched_at), &mut reports);
    assert_eq!(reports.len(), 1, "made once the rule was in force");
    assert_eq!(reports[0].rule, "r");
    // A minute on, the replaced policy is gone: a late event is judged by the current one.
    tick_delivered(&mut watch, Timestamp(switched_at + 60_001), &mut reports);
    watch.observe(&connect_at(switched_at - 1), &mut reports);
    assert_eq!(reports.len(), 2);
}

#[test]
fn server_rules_naming_unknown_objects_are_left_out() {
    let base = State::from_yaml(STATE).unwrap();
    let (state, skipped) = compose_policy(
        &base,
        &[
            server_rule("ok", "web", "db", 1, FirewallAction::Block),
            server_rule("dangling", "web", "nowhere", 1, FirewallAction::Block),
        ],
    );
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].contains("nowhere"), "{skipped:?}");
    assert_eq!(state.firewall_rules().len(), 1);
    assert_eq!(state.firewall_rules()[0].ports, vec![(1, 1)]);
    palisade_firewall::Engine::new(&state).unwrap();
}

/// Each open connection a new rule refuses is an alert of its own, closed (block mode) or
/// left open (alert mode), with its direction and ends; apart from the flow's attempts.
#[test]
fn each_open_connection_a_rule_refuses_raises_its_own_alert_closed_or_left_open() {
    use palisade_enforce::{NetRule, OpenConnection, WouldRefuse};
    use palisade_firewall::{OwnedEngine, RuleAction};

    let rules = [server_rule(
        "no-ssh-to-db",
        "web",
        "db",
        22,
        FirewallAction::Block,
    )];
    let (state, _) = compose_policy(&State::from_yaml(STATE).unwrap(), &rules);
    let policy = OwnedEngine::new(state).unwrap();
    let rule_id = policy
        .state()
        .firewall_rules()
        .iter()
        .position(|rule| rule.name == "no-ssh-to-db")
        .unwrap() as u32;
    let web = policy.state().pod_id("shop", "web").unwrap();
    let listed = |local_port: u16, closed: bool| super::ListedConnection {
        pod: web,
        refused: WouldRefuse {
            connection: OpenConnection {
                local: format!("10.0.0.11:{local_port}").parse().unwrap(),
                remote: "10.0.0.20:22".parse().unwrap(),
                inbound: false,
                inode: u64::from(local_port),
            },
            rule: NetRule {
                id: rule_id,
                remote: "10.0.0.20/32".parse().unwrap(),
                ports: (22, 22),
                protocol: Some(palisade_firewall::Protocol::Tcp),
                action: RuleAction::Block,
            },
        },
        closed,
    };
    for (mode, closed, name) in [
        (
            DefenseMode::Block,
            true,
            "no-ssh-to-db: open connection closed",
        ),
        (
            DefenseMode::Alert,
            false,
            "no-ssh-to-db: open connection left open",
        ),
    ] {
        let config = config(mode);
        let mut reports = Vec::new();
        super::report_open_connections(
            &policy,
            &[listed(40_000, closed), listed(40_001, closed)],
            &config,
            Timestamp(NOON_MS),
            &mut reports,
        );
        assert_eq!(reports.len(), 2, "{reports:?}");
        for (report, local_port) in reports.iter().zip([40_000, 40_001]) {
            assert_eq!(report.rule, name);
            assert_eq!(report.severity, Severity::High);
            let outcome = if closed { "closed" } else { "left open" };
            assert!(report.title.contains(outcome), "{}", report.title);
            assert_eq!(report.asset.pod.as_deref(), Some("web"));
            let details = firewall_details(report);
            assert_eq!(
                (
                    details.source.as_str(),
                    details.destination.as_str(),
                    details.port
                ),
                ("shop/web", "shop/db", 22)
            );
            assert_eq!(details.mode, if closed { "block" } else { "alert" });
            assert_eq!(details.rule_id.as_deref(), Some("no-ssh-to-db"));
            assert!(!details.trace.is_empty());
            assert_eq!(
                details.open_connection,
                Some(palisade_model::OpenConnection {
                    direction: palisade_model::ConnectionDirection::Outbound,
                    local: format!("10.0.0.11:{local_port}"),
                    peer: "10.0.0.20:22".to_owned(),
                    closed,
                })
            );
        }
        // Two connections of one flow: two findings, each apart from the flow's attempts.
        assert_ne!(reports[0].dedupe_key(), reports[1].dedupe_key());
        let mut attempt = reports[0].clone();
        if let palisade_model::Details::FirewallAlert(details) = &mut attempt.details {
            details.open_connection = None;
        }
        assert_ne!(attempt.dedupe_key(), reports[0].dedupe_key());
    }
}

#[test]
fn pod_level_cgroups_are_recognised_under_both_cgroup_drivers() {
    let uid = "0b7d4c6e-1f2a-4b3c-9d8e-7f6a5b4c3d2e";
    let other = "11111111-1f2a-4b3c-9d8e-7f6a5b4c3d2e";
    let cgroupfs = format!("pod{uid}");
    let systemd = "kubepods-burstable-pod0b7d4c6e_1f2a_4b3c_9d8e_7f6a5b4c3d2e.slice";
    for name in [cgroupfs.as_str(), systemd] {
        assert!(is_pod_cgroup_name(name, Some(uid)), "{name}");
        assert!(!is_pod_cgroup_name(name, Some(other)), "{name}");
        // Without a UID to look for, any pod's directory is one.
        assert!(is_pod_cgroup_name(name, None), "{name}");
    }
    // A container's directory, a longer name, a name that is not kubelet's and a UID that is
    // not one are not pod directories.
    for name in [
        "cri-containerd-4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f.scope",
        &format!("pod{uid}-extra"),
        &format!("xpod{uid}"),
        "pod0b7d4c6e-1f2a-4b3c-9d8e-7f6a5b4c3d2g",
        "pod0b7d4c6e11f2a-4b3c-9d8e-7f6a5b4c3d2e",
        "pod",
        "",
    ] {
        assert!(!is_pod_cgroup_name(name, Some(uid)), "{name}");
        assert!(!is_pod_cgroup_name(name, None), "{name}");
    }
}

/// The policy of the tests with real connect programs: pod `web` (no address: it is in the
/// host's network namespace) and what it may not reach. db's address is on loopback: were a
/// program to let a connect through, it would stay on this host.
const ENFORCED_STATE: &str = r#"
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
---
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
status: {podIP: 127.0.0.20}
---
kind: NetworkObject
metadata: {name: web}
spec: {namespace: shop, labels: {matchLabels: {app: web}}}
---
kind: NetworkObject
metadata: {name: db}
spec: {namespace: shop, labels: {matchLabels: {app: db}}}
---
kind: NetworkObject
metadata: {name: outside}
spec: {cidrs: [10.9.0.0/16]}
"#;

/// [`ENFORCED_STATE`] with rules `web-to-db` and `web-to-outside` (port 5432) of `actions`.
fn enforced_policy(actions: [FirewallAction; 2]) -> State {
    let (state, skipped) = compose_policy(
        &State::from_yaml(ENFORCED_STATE).unwrap(),
        &[
            server_rule("web-to-db", "web", "db", 5432, actions[0]),
            server_rule("web-to-outside", "web", "outside", 5432, actions[1]),
        ],
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    state
}

/// As root: a watch in block mode with [`enforced_policy`] (both rules `block`) that found
/// pod shop/web from a process in a cgroup2 directory of its own, and so attached connect
/// programs to it. The watch goes first on drop (it detaches the programs), then the
/// process, then the directory.
struct EnforcedPod {
    watch: FirewallWatch,
    updates: super::PolicyUpdates,
    /// The event the pod was found from (a connect to db).
    found_from: Event,
    _process: palisade_testdata::KillOnDrop,
    cgroup: CgroupDir,
    cgroup2_root: std::path::PathBuf,
}

/// The process whose connect the watch finds an [`EnforcedPod`] from.
enum FoundFrom {
    /// The pod's process, living.
    ItsProcess,
    /// A process of the pod's cgroup that is gone and has no ancestor left in it (as one the
    /// runtime started in a container, `kubectl exec`, whose parents are outside it): the
    /// event names the cgroup by its id.
    AGoneProcess,
}

impl EnforcedPod {
    /// `None` (the test skips) when not root. The programs report into a ring of `ring`.
    fn start(flows_file: &std::path::Path, ring: ConnectReportsRing) -> Option<EnforcedPod> {
        EnforcedPod::start_found_from(flows_file, ring, FoundFrom::ItsProcess)
    }

    /// [`EnforcedPod::start`], the pod found from a connect of `found_from`.
    fn start_found_from(
        flows_file: &std::path::Path,
        ring: ConnectReportsRing,
        found_from: FoundFrom,
    ) -> Option<EnforcedPod> {
        let is_root = std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
            status
                .lines()
                .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
        });
        if !palisade_testdata::capability("root (eBPF, cgroup2)", is_root) {
            return None;
        }
        let (mut watch, updates) = FirewallWatch::new(FirewallWatchConfig {
            flows_file: Some(flows_file.to_path_buf()),
            connect_reports_ring: ring,
            ..config(DefenseMode::Block)
        })
        .unwrap();
        updates
            .send(enforced_policy([FirewallAction::Block; 2]))
            .unwrap();
        tick_delivered(&mut watch, Timestamp(NOON_MS), &mut Vec::new());

        let cgroup2_root = palisade_enforce::cgroup2_root().unwrap();
        let cgroup = CgroupDir(cgroup2_root.join(format!(
            "palisade-agent-fw-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )));
        std::fs::create_dir(&cgroup.0).unwrap();
        let process = palisade_testdata::KillOnDrop(
            std::process::Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "echo $$ > '{}/cgroup.procs' && exec sleep 60",
                    cgroup.0.display()
                ))
                .spawn()
                .unwrap(),
        );
        let pid = process.0.id();
        let in_cgroup = || {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|listing| listing.contains("palisade-agent-fw-"))
        };
        while !in_cgroup() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found_from = match found_from {
            FoundFrom::ItsProcess => web_connect_from(pid),
            FoundFrom::AGoneProcess => {
                use std::os::unix::fs::MetadataExt;
                // Above the largest pid_max (2^22): no process has it.
                let mut event = web_connect_from(i32::MAX as u32);
                event.process.ppid = event.process.pid;
                assert!(event.ancestors.is_empty());
                event.cgroup_id = std::fs::metadata(&cgroup.0).unwrap().ino();
                event
            }
        };
        let mut reports = Vec::new();
        watch.observe(&found_from, &mut reports);
        assert!(reports.is_empty(), "{reports:?}");
        assert_eq!(watch.enforced_pods(), ["shop/web"]);
        Some(EnforcedPod {
            watch,
            updates,
            found_from,
            _process: process,
            cgroup,
            cgroup2_root,
        })
    }

    /// Runs `work` with this test process in the pod's cgroup, so its connects are judged
    /// by the pod's programs.
    fn connect_from_pod<T>(&self, work: impl FnOnce() -> T) -> T {
        palisade_testdata::in_cgroup(&self.cgroup2_root, &self.cgroup.0, work)
    }

    /// Makes `attempts` connects to db (5432) from the pod, `pause` apart; returns how many
    /// the programs refused.
    fn refused_connects_to_db(&self, attempts: usize, pause: Duration) -> usize {
        self.refused_connects(attempts, pause, |_| "127.0.0.20:5432".parse().unwrap())
    }

    /// Makes `attempts` connects to `destination(n)` from the pod, `pause` apart, on a
    /// thread in a network namespace of its own (no route, loopback down: nothing could
    /// leave it were a connect let through); returns how many the programs refused.
    fn refused_connects(
        &self,
        attempts: usize,
        pause: Duration,
        destination: fn(usize) -> std::net::SocketAddr,
    ) -> usize {
        self.connect_from_pod(|| {
            std::thread::spawn(move || {
                // SAFETY: unshare affects only this thread, which ends after the connects.
                assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
                (0..attempts)
                    .filter(|&n| {
                        std::thread::sleep(pause);
                        std::net::TcpStream::connect(destination(n)).is_err_and(|error| {
                            error.kind() == std::io::ErrorKind::PermissionDenied
                        })
                    })
                    .count()
            })
            .join()
            .unwrap()
        })
    }

    /// What the sensor sees of a connect from this test process to `remote`:`port` that
    /// returned `ret`, as a connect of the pod.
    fn sensor_view(&self, remote: &str, port: u16, ret: i64) -> Event {
        use std::os::unix::fs::MetadataExt;
        let mut event = self.found_from.clone();
        let pid = std::process::id();
        (event.process.pid, event.process.tid) = (pid, pid);
        event.cgroup_id = std::fs::metadata(&self.cgroup.0).unwrap().ino();
        if let Payload::Network { fd } = &mut event.payload {
            let socket = fd.socket.as_mut().unwrap();
            socket.remote_addr = Some(remote.parse().unwrap());
            socket.remote_port = port;
        }
        event.ret = ret;
        event
    }

    /// Stops the watch (which writes its flows) and removes the pod; checks that the
    /// cgroup is gone.
    fn stop(self) {
        let path = self.cgroup.0.clone();
        drop(self);
        assert!(!path.exists());
    }
}

/// (flow, attempts, blocked) of every flow in `flows_file`, by port, then blocked last, then
/// by flow.
fn recorded_flows(flows_file: &std::path::Path) -> Vec<(String, u64, bool)> {
    let mut flows = read_flows(&std::fs::read_to_string(flows_file).unwrap(), "flows").unwrap();
    flows.sort_by_key(|flow| (flow.port, flow.blocked, flow.describe()));
    flows
        .iter()
        .map(|flow| (flow.describe(), flow.attempts, flow.blocked))
        .collect()
}

/// The attempts the alert reports in `reports` stand for per rule, and the node alert's lost
/// count, if any.
fn alerts_by_rule(reports: &[FindingReport]) -> (std::collections::BTreeMap<&str, u64>, u64) {
    let mut lost = 0;
    let mut alerts = std::collections::BTreeMap::new();
    for report in reports {
        if report.rule == LOST_CONNECT_REPORTS_RULE {
            let Details::Alert(details) = &report.details else {
                panic!("{report:?}");
            };
            assert_eq!(report.severity, Severity::High);
            lost += details.raw_event["connect_reports_lost"].as_u64().unwrap();
        } else {
            *alerts.entry(report.rule.as_str()).or_default() += report.occurrences();
        }
    }
    (alerts, lost)
}

/// As root: a pod is found from the connect of a process that is gone and left no ancestor
/// in its cgroup (one `kubectl exec` started: the sensor delivers its events after the
/// process, often short-lived, has ended), through another living process of the cgroup the
/// event names, and its connect programs go on that cgroup: a connect from it is refused.
/// (Before, such a pod was found only while the event's process lived: a pod whose connects
/// all came from such processes was found late or, on a loaded host, not at all.)
#[test]
fn a_pod_is_found_from_a_gone_process_through_the_living_ones_of_its_cgroup() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let Some(pod) = EnforcedPod::start_found_from(
        &flows_file,
        ConnectReportsRing::DEFAULT,
        FoundFrom::AGoneProcess,
    ) else {
        return;
    };
    assert_eq!(pod.refused_connects_to_db(1, Duration::ZERO), 1);
    pod.stop();
}

/// As root: a host-network pod is found from its connect to loopback (which the flow view
/// ignores) and gets connect programs on its cgroup; 25,000 identical refused connects at
/// full speed into a one-page report ring (56 reports, 224 queued) are one report and a
/// count in the kernel, so none is lost: the next tick sends them as ONE block alert report
/// of the pod carrying 25,000 attempts, and they are one flow of 25,000 attempts in the
/// flows file. The sensor's view of those connects is not counted again. (When the programs
/// reported every connect, all but about 280 were lost here; when each attempt left as a
/// report of its own, they took 10,000 reports a tick over three ticks.)
#[test]
fn a_flood_of_identical_refused_connects_is_alerted_whole() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let one_page = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    let Some(mut pod) = EnforcedPod::start(&flows_file, one_page) else {
        return;
    };
    let attempts = 25_000;
    assert_eq!(
        pod.refused_connects_to_db(attempts, Duration::ZERO),
        attempts
    );
    let mut ticks = Vec::new();
    for tick in 1..=3 {
        let mut reports = Vec::new();
        tick_delivered(
            &mut pod.watch,
            Timestamp(NOON_MS + tick * 1_000),
            &mut reports,
        );
        // The sensor's view of one of the connects, after the programs' report.
        pod.watch
            .observe(&pod.sensor_view("127.0.0.20", 5432, -1), &mut reports);
        let (alerts, lost) = alerts_by_rule(&reports);
        assert_eq!(lost, 0);
        ticks.push((reports.len(), alerts.get("web-to-db").copied().unwrap_or(0)));
        if tick == 1 {
            let keys: std::collections::HashSet<String> =
                reports.iter().map(|report| report.dedupe_key()).collect();
            assert_eq!(keys.len(), 1, "one aggregation key for every attempt");
            let details = firewall_details(&reports[0]);
            assert_eq!(
                (
                    reports[0].rule.as_str(),
                    details.source.as_str(),
                    details.destination.as_str(),
                    details.port,
                    details.mode.as_str(),
                ),
                ("web-to-db", "shop/web", "shop/db", 5432, "block")
            );
            assert_eq!(reports[0].severity, Severity::High);
        }
    }
    assert_eq!(
        ticks,
        [(1, attempts as u64), (0, 0), (0, 0)],
        "(reports, attempts) per tick"
    );
    assert_eq!(pod.watch.reports_lost(), 0);
    pod.stop();
    assert_eq!(
        recorded_flows(&flows_file),
        [(
            "shop/web -> shop/db 5432/TCP".to_owned(),
            attempts as u64,
            true
        )],
    );
}

/// As root: 2,000 refused connects of the host-network pod to 2,000 distinct outside
/// addresses at full speed (each a match of its own) overflow the counters (56 matches) and
/// a one-page report ring with its reader's queue (56 + 224 reports): at the next tick each
/// report or count is a block alert of the pod and an attempt of its flow in the flows file,
/// while the lost ones are one node alert with their number: alerts + lost = attempts. The
/// sensor's view of a refused connect without a report is recorded (not alerted) while no
/// report is lost, and dropped (taken for a lost one) once some are; an allowed one is
/// recorded.
#[test]
fn a_flood_of_distinct_refused_connects_counts_its_losses_on_a_node_alert() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let one_page = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    let Some(mut pod) = EnforcedPod::start(&flows_file, one_page) else {
        return;
    };
    // What the sensor saw of a refused connect the programs did not report, while no report
    // is lost (it came before they had the rule): recorded, not alerted (the programs alert
    // what they decide); then of an allowed one: recorded.
    let mut reports = Vec::new();
    let refused_view = pod.sensor_view("10.9.200.1", 5432, -1);
    pod.watch.observe(&refused_view, &mut reports);
    assert!(reports.is_empty(), "{reports:?}");
    let allowed_view = pod.sensor_view("10.9.200.1", 80, 0);
    pod.watch.observe(&allowed_view, &mut reports);
    assert!(reports.is_empty(), "{reports:?}");

    let attempts = 2_000;
    let outside = |n: usize| {
        std::net::SocketAddr::from(([10, 9, (n / 250) as u8, (n % 250) as u8 + 1], 5432))
    };
    assert_eq!(
        pod.refused_connects(attempts, Duration::ZERO, outside),
        attempts
    );
    tick_delivered(&mut pod.watch, Timestamp(NOON_MS + 1_000), &mut reports);
    let (alerts, n_lost) = alerts_by_rule(&reports);
    assert!(n_lost > 0);
    assert_eq!(
        reports
            .iter()
            .filter(|report| report.rule == LOST_CONNECT_REPORTS_RULE)
            .count(),
        1,
        "one node alert for the lost reports"
    );
    assert_eq!(
        pod.watch.reports_lost(),
        n_lost,
        "the total the status file and the heartbeat take"
    );
    let n_alerts = alerts["web-to-outside"];
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(n_alerts + n_lost, attempts as u64);

    // Nothing new: the next tick reports nothing. While reports are being lost, the
    // sensor's view of a refused connect with no report is taken to be a lost one.
    let mut later = Vec::new();
    tick_delivered(&mut pod.watch, Timestamp(NOON_MS + 2_000), &mut later);
    pod.watch.observe(&refused_view, &mut later);
    assert!(later.is_empty(), "{later:?}");
    pod.stop();
    let (viewed, flood): (Vec<_>, Vec<_>) = recorded_flows(&flows_file)
        .into_iter()
        .partition(|(flow, _, _)| flow.contains(" 10.9.200.1 "));
    assert_eq!(
        viewed,
        [
            ("shop/web -> 10.9.200.1 80/TCP".to_owned(), 1, false),
            ("shop/web -> 10.9.200.1 5432/TCP".to_owned(), 1, true),
        ],
    );
    assert!(
        flood
            .iter()
            .all(|(flow, _, blocked)| flow.starts_with("shop/web -> 10.9.") && *blocked),
        "{flood:?}"
    );
    assert_eq!(
        flood.iter().map(|(_, attempts, _)| attempts).sum::<u64>(),
        n_alerts
    );
}

/// As root: the sensor's view of a connect the pod's programs would refuse that went through
/// (it did not fail with EPERM: it was made after the watch picked the rule up, before the
/// programs had it) is an attempt of its own: one alert of one attempt, let through, not
/// enforced, and a flow that passed; the programs counted nothing for it. The view of a
/// refused connect (EPERM) without a report is recorded as refused and not alerted: its
/// attempt is the programs'. (Before, both were recorded without an alert, so that a connect
/// let through counted only when the watch could not find its pod from it.)
#[test]
fn a_connect_let_through_before_the_programs_had_the_rule_is_one_attempt() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let Some(mut pod) = EnforcedPod::start(&flows_file, ConnectReportsRing::DEFAULT) else {
        return;
    };
    let mut reports = Vec::new();
    pod.watch
        .observe(&pod.sensor_view("10.9.200.1", 5432, 0), &mut reports);
    assert_eq!(
        alerts_by_rule(&reports),
        ([("web-to-outside", 1)].into(), 0),
        "{reports:?}"
    );
    let details = firewall_details(&reports[0]);
    assert_eq!(
        (details.mode.as_str(), details.attempts, reports[0].severity),
        ("alert", 1, Severity::High)
    );
    assert_eq!(
        reports[0].title,
        "web-to-outside: shop/web -> 10.9.200.1 5432/TCP let through (before it was enforced)"
    );

    reports.clear();
    pod.watch
        .observe(&pod.sensor_view("10.9.200.2", 5432, -1), &mut reports);
    assert!(reports.is_empty(), "{reports:?}");
    tick_delivered(&mut pod.watch, Timestamp(NOON_MS + 1_000), &mut reports);
    assert!(
        reports.is_empty(),
        "the programs counted neither: {reports:?}"
    );
    pod.stop();
    assert_eq!(
        recorded_flows(&flows_file),
        [
            ("shop/web -> 10.9.200.1 5432/TCP".to_owned(), 1, false),
            ("shop/web -> 10.9.200.2 5432/TCP".to_owned(), 1, true),
        ],
    );
}

/// In block mode, the sensor's view of a connect the policy refuses, of a pod the watch has
/// not found (so it installed nothing there), is one attempt either way: alerted as let
/// through (not enforced) when it did not fail with EPERM, as refused when it did (as a dead
/// agent's programs, still on the pod's cgroup, refuse).
#[test]
fn a_connect_of_a_pod_without_a_firewall_yet_is_let_through_unless_refused() {
    let rules = [server_rule(
        "no-ssh-to-db",
        "web",
        "db",
        22,
        FirewallAction::Block,
    )];
    let mut watch = watch(DefenseMode::Block, None, &rules);
    let mut reports = Vec::new();
    let mut ssh = in_pod(
        socket_event(EventKind::Connect, "10.0.0.11", 40000, "10.0.0.20", 22),
        "shop",
        "web",
    );
    watch.observe(&ssh, &mut reports);
    ssh.ret = -1;
    watch.observe(&ssh, &mut reports);
    let outcomes: Vec<(&str, &str, u32)> = reports
        .iter()
        .map(|report| {
            let details = firewall_details(report);
            (
                report.title.as_str(),
                details.mode.as_str(),
                details.attempts,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "no-ssh-to-db: shop/web -> shop/db 22/TCP let through (before it was enforced)",
                "alert",
                1
            ),
            (
                "no-ssh-to-db: shop/web -> shop/db 22/TCP refused",
                "block",
                1
            ),
        ]
    );
}

/// As root: a connect the programs refused just before an edit to `allow` reached the
/// watch, whose sensor event the watch judges only after the edit, counts once — from the
/// programs' report, taken with the edit's tick — and the sensor's event of it is not
/// recorded again (under the new policy nothing says the programs report such a connect).
/// A later connect of the same process to the same destination is recorded as the new
/// policy says.
#[test]
fn a_refused_connect_judged_after_an_edit_to_allow_counts_once() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let Some(mut pod) = EnforcedPod::start(&flows_file, ConnectReportsRing::DEFAULT) else {
        return;
    };
    // From a network namespace of its own (no route, loopback down), so that even a connect
    // the program let through could not leave this thread's namespace.
    let refused = pod.connect_from_pod(|| {
        std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread, which ends after the connect.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            std::net::TcpStream::connect(("10.9.9.9", 5432)).map_err(|error| error.kind())
        })
        .join()
        .unwrap()
    });
    assert_eq!(
        refused.err(),
        Some(std::io::ErrorKind::PermissionDenied),
        "the program refuses"
    );
    pod.updates
        .send(enforced_policy([
            FirewallAction::Block,
            FirewallAction::Allow,
        ]))
        .unwrap();
    let mut reports = Vec::new();
    tick_delivered(&mut pod.watch, Timestamp(NOON_MS + 1_000), &mut reports);
    let rules: Vec<(&str, &str)> = reports
        .iter()
        .map(|report| (report.rule.as_str(), firewall_details(report).mode.as_str()))
        .collect();
    assert_eq!(rules, [("web-to-outside", "block")], "the program's report");

    // The sensor's event of that connect, judged after the edit.
    reports.clear();
    pod.watch
        .observe(&pod.sensor_view("10.9.9.9", 5432, -1), &mut reports);
    assert!(reports.is_empty(), "{reports:?}");
    // A later connect of the same process there, made after the edit (and after the take),
    // passes now, and is recorded.
    let mut later = pod.sensor_view("10.9.9.9", 5432, 0);
    later.timestamp_ns = u64::try_from(Timestamp::now().0 + 1_000).unwrap() * 1_000_000;
    pod.watch.observe(&later, &mut reports);
    assert!(reports.is_empty(), "{reports:?}");
    pod.stop();
    assert_eq!(
        recorded_flows(&flows_file),
        [
            ("shop/web -> 10.9.9.9 5432/TCP".to_owned(), 1, false),
            ("shop/web -> 10.9.9.9 5432/TCP".to_owned(), 1, true),
        ],
        "each connect once"
    );
}

/// As root: while the detection thread does not tick — it is busy re-reading `/proc` after
/// a sensor loss, or judging a burst of events — the pod makes 200 refused connects, one
/// every 2 ms, into a report ring of one page (56 reports): more than the ring holds, fewer
/// than the stream's reader queues. The stream's own reader thread empties the ring as
/// reports arrive, so at the next tick every connect is an attempt of one block alert and
/// none is lost.
/// (When the ring was drained only at the ticks, 144 of the 200 were lost here.)
#[test]
fn connect_reports_are_not_lost_while_the_watch_does_not_tick() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let one_page = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    let Some(mut pod) = EnforcedPod::start(&flows_file, one_page) else {
        return;
    };
    let attempts = 200;
    assert_eq!(
        pod.refused_connects_to_db(attempts, Duration::from_millis(2)),
        attempts
    );
    let mut reports = Vec::new();
    tick_delivered(&mut pod.watch, Timestamp(NOON_MS + 1_000), &mut reports);
    assert_eq!(
        alerts_by_rule(&reports),
        ([("web-to-db", attempts as u64)].into(), 0),
        "every connect an attempt, no lost reports"
    );
    assert_eq!(reports.len(), 1, "one report carries them");
    assert_eq!(pod.watch.reports_lost(), 0);
    pod.stop();
}

/// A tick's take of the programs' counts hands out one receipt (its epoch) and stays in the
/// kernel until the outbox holds it: ticks before the delivery take nothing more (the
/// attempts made meanwhile wait in the next epoch), a receipt of another source or epoch
/// changes nothing, and after the delivery the next tick takes exactly the attempts made
/// since. So a crash anywhere between take and delivery leaves every attempt in the kernel.
#[test]
fn a_take_of_the_counts_waits_in_the_kernel_until_its_receipt_is_delivered() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let Some(mut pod) = EnforcedPod::start(&flows_file, ConnectReportsRing::DEFAULT) else {
        return;
    };
    assert_eq!(pod.refused_connects_to_db(30, Duration::ZERO), 30);
    let mut reports = Vec::new();
    pod.watch.tick(Timestamp(NOON_MS + 1_000), &mut reports);
    assert_eq!(alerts_by_rule(&reports).0["web-to-db"], 30);
    let receipt = pod.watch.take_receipt().expect("a receipt for the take");
    assert_eq!(receipt.source, CONNECT_COUNTS_RECEIPT);
    assert_eq!(pod.watch.take_receipt(), None, "handed out once");

    assert_eq!(pod.refused_connects_to_db(5, Duration::ZERO), 5);
    let mut undelivered = Vec::new();
    pod.watch.tick(Timestamp(NOON_MS + 2_000), &mut undelivered);
    assert!(undelivered.is_empty(), "{undelivered:?}");
    assert_eq!(pod.watch.take_receipt(), None);
    for stale in [
        Receipt {
            source: "another-source".to_owned(),
            serial: receipt.serial,
        },
        Receipt {
            source: CONNECT_COUNTS_RECEIPT.to_owned(),
            serial: receipt.serial + 1,
        },
    ] {
        pod.watch.delivered(&stale);
        pod.watch.tick(Timestamp(NOON_MS + 3_000), &mut undelivered);
        assert!(undelivered.is_empty(), "{stale:?}: {undelivered:?}");
    }

    pod.watch.delivered(&receipt);
    let mut later = Vec::new();
    pod.watch.tick(Timestamp(NOON_MS + 4_000), &mut later);
    assert_eq!(
        alerts_by_rule(&later),
        ([("web-to-db", 5)].into(), 0),
        "the attempts made since the first take, once"
    );
    let next = pod.watch.take_receipt().unwrap();
    assert_eq!(next.serial, receipt.serial + 1, "epochs follow each other");
    pod.watch.delivered(&next);
    pod.stop();
}

/// A delivery the stream cannot be told of (deleting the counts fails) is told again at each
/// tick until it goes through: meanwhile nothing new is taken (the attempts wait in the
/// kernel), and then the attempts made since are taken and alerted once.
#[test]
fn a_delivery_the_stream_could_not_be_told_of_is_told_again_at_the_next_tick() {
    let flows_dir = tempfile::tempdir().unwrap();
    let flows_file = flows_dir.path().join("flows.jsonl");
    let Some(mut pod) = EnforcedPod::start(&flows_file, ConnectReportsRing::DEFAULT) else {
        return;
    };
    assert_eq!(pod.refused_connects_to_db(30, Duration::ZERO), 30);
    let mut reports = Vec::new();
    pod.watch.tick(Timestamp(NOON_MS + 1_000), &mut reports);
    assert_eq!(alerts_by_rule(&reports).0["web-to-db"], 30);
    let receipt = pod.watch.take_receipt().unwrap();
    pod.watch.failing_deliveries = 2;
    pod.watch.delivered(&receipt);
    assert_eq!(pod.watch.undelivered_epoch, Some(receipt.serial));

    assert_eq!(pod.refused_connects_to_db(5, Duration::ZERO), 5);
    let mut waiting = Vec::new();
    pod.watch.tick(Timestamp(NOON_MS + 2_000), &mut waiting);
    assert!(waiting.is_empty(), "the retry failed too: {waiting:?}");
    assert_eq!(pod.watch.undelivered_epoch, Some(receipt.serial));

    let mut later = Vec::new();
    pod.watch.tick(Timestamp(NOON_MS + 3_000), &mut later);
    assert_eq!(pod.watch.undelivered_epoch, None);
    assert_eq!(
        alerts_by_rule(&later),
        ([("web-to-db", 5)].into(), 0),
        "the attempts made since the first take, once"
    );
    let next = pod.watch.take_receipt().unwrap();
    assert_eq!(next.serial, receipt.serial + 1);
    pod.watch.delivered(&next);
    pod.stop();
}

/// A cgroup2 directory a test created, removed on drop (once its processes are gone).
struct CgroupDir(std::path::PathBuf);

impl Drop for CgroupDir {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The drain interval is the watch's tick interval, and the detector ticks (polls the
/// sensor for no longer than) the shortest interval any observer asks for, never less often
/// than its default: a short interval makes the detection thread drain that often.
#[test]
fn the_connect_report_drain_interval_sets_how_often_the_detector_ticks() {
    let detector = |drain: Option<u64>| {
        let engine = palisade_rules::Engine::new(
            palisade_rules::RuleSet::load(&[]),
            &palisade_rules::EngineConfig::default(),
        );
        let detector = crate::Detector::new(engine, "prod", "node-1");
        let Some(millis) = drain else {
            return detector;
        };
        let (watch, _updates) = FirewallWatch::new(FirewallWatchConfig {
            connect_reports_drain: ConnectReportsDrain::new(Duration::from_millis(millis)).unwrap(),
            ..config(DefenseMode::Block)
        })
        .unwrap();
        assert_eq!(watch.tick_interval(), Duration::from_millis(millis));
        detector.with_observer(Box::new(watch))
    };
    assert_eq!(detector(None).tick_interval(), Duration::from_millis(200));
    assert_eq!(
        detector(Some(200)).tick_interval(),
        Duration::from_millis(200)
    );
    assert_eq!(
        detector(Some(20)).tick_interval(),
        Duration::from_millis(20)
    );
}

mod handover;

/// Matches past [`super::ReportedConnects::MAX`] are not kept, and each is counted (the
/// count goes into the lost connect reports the node alert, status and metrics show) and
/// makes the period one with losses; a match already kept is updated, not counted.
#[test]
fn matches_past_the_kept_bound_are_counted_not_kept() {
    use super::{ConnectIdentity, ReportedConnects};
    let identity = |index: usize| ConnectIdentity {
        cgroup_id: index as u64,
        remote: IpAddr::from([10, 0, 0, 1]),
        port: 5432,
    };
    let mut kept = ReportedConnects::default();
    for index in 0..ReportedConnects::MAX {
        kept.remember(identity(index), Timestamp(1_000));
    }
    assert_eq!(kept.not_kept(), 0);
    assert!(!kept.recently_lost());
    kept.remember(identity(0), Timestamp(2_000));
    assert_eq!(kept.not_kept(), 0, "an update of a kept match");
    assert!(kept.covers(identity(0), Timestamp(2_000)));
    for index in ReportedConnects::MAX..ReportedConnects::MAX + 3 {
        kept.remember(identity(index), Timestamp(2_000));
    }
    assert_eq!(kept.not_kept(), 3);
    assert!(!kept.covers(identity(ReportedConnects::MAX), Timestamp(2_000)));
    assert!(kept.recently_lost());
}
