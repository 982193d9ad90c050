//! `palisade enforce` as a process, as root: what it reports and what it stops.

use palisade_testdata::NetnsPair;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
    })
}

/// The `palisade` process, killed and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn capabilities_as_json_report_bpf_lsm_as_the_kernel_says() {
    if !palisade_testdata::capability("root (eBPF)", is_root()) {
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["enforce", "capabilities", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["kill_at_exec"]["available"], true, "{report}");
    assert_eq!(report["connect_refusal"]["available"], true, "{report}");
    let bpf_listed = report["active_lsms"]
        .as_str()
        .is_some_and(|list| list.split(',').any(|lsm| lsm == "bpf"));
    if !bpf_listed {
        assert_eq!(report["bpf_lsm"]["available"], false, "{report}");
        assert!(
            report["bpf_lsm"]["detail"]
                .as_str()
                .unwrap()
                .starts_with("missing")
        );
    }
}

#[test]
fn kill_exec_kills_the_denied_copy_while_it_runs_and_not_after() {
    if !palisade_testdata::capability("root (eBPF)", is_root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("denied-true");
    std::fs::copy("/bin/true", &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut palisade = Running(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["enforce", "kill-exec"])
            .arg(&copy)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(palisade.0.stdout.take().unwrap()).lines();
    let denied: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(denied["denied"], copy.to_str().unwrap());

    let status = Command::new(&copy).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(Command::new("/bin/true").status().unwrap().success());
    let killed: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(killed["filename"], copy.to_str().unwrap(), "{killed}");
    assert_eq!(killed["comm"], "denied-true");

    // Enforcement ends with the process.
    drop(lines);
    drop(palisade);
    assert!(Command::new(&copy).status().unwrap().success());
}

/// Runs `work` on a thread inside network namespace `name`.
fn in_netns<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let namespace = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
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

fn firewall_state(subnet: u8, action: &str) -> String {
    format!(
        "kind: Pod\nmetadata: {{name: client, namespace: shop, labels: {{app: client}}}}\n\
         status: {{podIP: 10.232.{subnet}.1}}\n---\n\
         kind: Pod\nmetadata: {{name: db, namespace: shop, labels: {{app: db}}}}\n\
         status: {{podIP: 10.232.{subnet}.2}}\n---\n\
         kind: NetworkObject\nmetadata: {{name: client}}\nspec: {{labels: {{matchLabels: {{app: client}}}}}}\n---\n\
         kind: NetworkObject\nmetadata: {{name: db}}\nspec: {{labels: {{matchLabels: {{app: db}}}}}}\n---\n\
         kind: FirewallRule\nmetadata: {{name: client-to-db}}\n\
         spec: {{source: client, destination: db, ports: [{{port: 7002}}], protocol: TCP, action: {action}}}\n"
    )
}

#[test]
fn firewall_enforcement_follows_edits_of_the_state_file() {
    if !palisade_testdata::capability("root (network namespaces, nftables)", is_root()) {
        return;
    }
    let subnet = (std::process::id() % 200) as u8 + 20;
    let pair = NetnsPair::new("cli", 232, subnet);
    let server: std::net::SocketAddr = format!("10.232.{subnet}.2:7002").parse().unwrap();
    let listener = in_netns(&pair.server, move || {
        std::net::TcpListener::bind(server).unwrap()
    });
    std::thread::spawn(move || for _ in listener.incoming() {});
    let connect = |netns: &str| {
        in_netns(netns, move || {
            std::net::TcpStream::connect_timeout(&server, std::time::Duration::from_secs(3))
        })
    };

    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.yaml");
    std::fs::write(&state_file, firewall_state(subnet, "block")).unwrap();
    let mut palisade = Running(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "enforce",
                "firewall",
                "--pod",
                "shop/client",
                "--reload-every",
                "1",
            ])
            .arg("-f")
            .arg(&state_file)
            .arg("--netns")
            .arg(format!("/run/netns/{}", pair.client))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(palisade.0.stdout.take().unwrap()).lines();
    let mut next_line = move || -> serde_json::Value {
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
    };
    let applied = next_line();
    assert_eq!(applied["applied"]["egress"], 1, "{applied}");

    let refused = connect(&pair.client).unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
    let attempts = next_line();
    assert_eq!(attempts["attempts"], 1, "{attempts}");

    let edited_at = std::time::Instant::now();
    std::fs::write(&state_file, firewall_state(subnet, "allow")).unwrap();
    let applied = next_line();
    assert!(applied.get("applied").is_some(), "{applied}");
    assert!(edited_at.elapsed() < std::time::Duration::from_secs(60));
    connect(&pair.client).unwrap();
}
