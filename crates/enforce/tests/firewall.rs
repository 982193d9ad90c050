//! Firewall enforcement with nftables between two network namespaces joined by a veth pair,
//! as root. The addresses exist only inside those namespaces; both namespaces (and with them
//! the veth pair and the nftables tables) are deleted by a guard, also when a test fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use palisade_enforce::{DefenseMode, NftFirewall, WorkloadFirewall, workload_rules};
use palisade_firewall::State;
use palisade_testdata::NetnsPair;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
    })
}

/// Runs `work` on a thread that has entered the network namespace `name`.
fn in_netns<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let namespace = std::fs::File::open(NetnsPair::path(name)).unwrap();
    std::thread::spawn(move || {
        // SAFETY: affects only this thread.
        assert_eq!(
            unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        work()
    })
    .join()
    .unwrap()
}

/// Listens on `address` inside the server namespace, accepting in the background and keeping
/// accepted connections open.
fn serve(netns: &str, address: SocketAddr) {
    let listener = in_netns(netns, move || TcpListener::bind(address).unwrap());
    std::thread::spawn(move || {
        let mut accepted = Vec::new();
        for stream in listener.incoming() {
            accepted.push(stream);
        }
    });
}

/// Connects from inside the client namespace.
fn connect(netns: &str, address: SocketAddr) -> std::io::Result<TcpStream> {
    in_netns(netns, move || {
        TcpStream::connect_timeout(&address, Duration::from_secs(3))
    })
}

fn state(subnet: u8, action: &str) -> State {
    State::from_yaml(&format!(
        r#"
kind: Pod
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
status: {{podIP: 10.231.{subnet}.1}}
---
kind: Pod
metadata: {{name: db, namespace: shop, labels: {{app: db}}}}
status: {{podIP: 10.231.{subnet}.2}}
---
kind: NetworkObject
metadata: {{name: client}}
spec: {{labels: {{matchLabels: {{app: client}}}}}}
---
kind: NetworkObject
metadata: {{name: db}}
spec: {{labels: {{matchLabels: {{app: db}}}}}}
---
kind: FirewallRule
metadata: {{name: client-to-db-admin-port}}
spec: {{source: client, destination: db, ports: [{{port: 7002}}], protocol: TCP, action: {action}}}
"#
    ))
    .unwrap()
}

#[test]
fn nftables_block_alert_and_live_edit_between_two_namespaces() {
    if !palisade_testdata::capability("root (network namespaces, nftables)", is_root()) {
        return;
    }
    let subnet = (std::process::id() % 200) as u8 + 20;
    let pair = NetnsPair::new("fw", 231, subnet);
    let allowed: SocketAddr = format!("10.231.{subnet}.2:7001").parse().unwrap();
    let guarded: SocketAddr = format!("10.231.{subnet}.2:7002").parse().unwrap();
    serve(&pair.server, allowed);
    serve(&pair.server, guarded);

    // Before any rule: both flows pass. Keep one connection to the guarded port open.
    let mut already_open = connect(&pair.client, guarded).unwrap();
    connect(&pair.client, allowed).unwrap();

    // Block mode: the firewall rule is compiled for the client pod and installed in its
    // namespace.
    let block_state = state(subnet, "block");
    let client_id = block_state.pod_id("shop", "client").unwrap();
    let compiled = workload_rules(&block_state, client_id, DefenseMode::Block);
    assert_eq!(compiled.egress.len(), 1, "{compiled:?}");
    assert!(compiled.ingress.is_empty() && compiled.unenforceable.is_empty());
    let rule_id = compiled.egress[0].id;
    let firewall =
        WorkloadFirewall::Netns(NftFirewall::new(&NetnsPair::path(&pair.client)).unwrap());
    assert!(firewall.apply(&compiled).unwrap().is_empty());

    let refused = connect(&pair.client, guarded).unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
    connect(&pair.client, allowed).unwrap();
    assert_eq!(firewall.hits(rule_id).unwrap(), 1);

    // The connection opened before the rule still works, and is listed as one the rule
    // would refuse.
    already_open.write_all(b"still open").unwrap();
    let listed = firewall.open_connections_refused_by(&compiled).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].connection.remote, guarded);
    assert_eq!(
        listed[0].connection.local,
        already_open.local_addr().unwrap()
    );
    assert!(!listed[0].connection.inbound);
    assert_eq!(listed[0].rule.id, rule_id);

    // Closing it: the kernel aborts the client's socket, whose next read fails.
    let closing = firewall.close_connections_refused_by(&compiled).unwrap();
    assert!(closing.errors.is_empty(), "{closing:?}");
    assert_eq!(
        closing.connections,
        listed
            .iter()
            .map(|entry| (entry.clone(), true))
            .collect::<Vec<_>>()
    );
    already_open
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let read = already_open.read(&mut [0u8; 16]);
    assert!(
        read.as_ref()
            .is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionAborted),
        "{read:?}"
    );
    assert!(
        firewall
            .open_connections_refused_by(&compiled)
            .unwrap()
            .is_empty()
    );

    // Alert mode: the flow passes and the attempts count rises.
    let alert = workload_rules(&block_state, client_id, DefenseMode::Alert);
    firewall.apply(&alert).unwrap();
    for _ in 0..3 {
        connect(&pair.client, guarded).unwrap();
    }
    assert_eq!(firewall.hits(rule_id).unwrap(), 1 + 3);
    assert!(
        firewall
            .open_connections_refused_by(&alert)
            .unwrap()
            .is_empty()
    );

    // Editing the rule back to block flips the behaviour at once.
    let edited_at = Instant::now();
    firewall.apply(&compiled).unwrap();
    let refused = connect(&pair.client, guarded).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        edited_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        edited_at.elapsed()
    );

    // An edit to `allow` lifts the block.
    let allow_state = state(subnet, "allow");
    let allow = workload_rules(&allow_state, client_id, DefenseMode::Block);
    firewall.apply(&allow).unwrap();
    connect(&pair.client, guarded).unwrap();
    // 1 + 3 + 1 before, and the allow rule counts its match too.
    assert_eq!(firewall.hits(rule_id).unwrap(), 6);

    // Dropping the firewall removes its table from the namespace.
    drop(firewall);
    let tables = Command::new("ip")
        .args(["netns", "exec", &pair.client, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(tables.status.success());
    assert!(!String::from_utf8_lossy(&tables.stdout).contains("palisade"));
}
