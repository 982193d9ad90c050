//! The container firewall end to end, as root: `palisade up` with the eBPF sensor and
//! `--firewall-mode block`; two "pods" are network namespaces joined by a veth pair (their
//! addresses exist only inside them). A rule created through the API reaches the agent and
//! refuses the client's connections within 60 s, each refused attempt is counted on one
//! firewall alert in the store, and editing the rule to `allow` lets the connections through
//! again within 60 s. The namespaces (and with them the veth pair and the nftables table)
//! are deleted by a guard, also when the test fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "firewall-agent-test-admin-token";
const RULE: &str = "client-to-db-admin-port";
/// How long an edit may take to reach the agent and take effect (the issue's bound).
const EDIT_DEADLINE: Duration = Duration::from_secs(60);

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // SIGINT first: the agent stops its sensor and removes its nftables tables.
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    palisade_testdata::capability(
        "root, a kernel with BTF (eBPF), network namespaces and nftables",
        is_root
            && Path::new("/sys/kernel/btf/vmlinux").exists()
            && Path::new("/usr/sbin/nft").exists(),
    )
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Network namespaces "client" (10.232.<n>.1) and "db" (10.232.<n>.2) joined by a veth pair,
/// deleted on drop.
struct Pods {
    client: String,
    db: String,
}

impl Pods {
    fn new(subnet: u8) -> Pods {
        let pid = std::process::id();
        let pods = Pods {
            client: format!("pal-fwc-{pid}"),
            db: format!("pal-fwd-{pid}"),
        };
        ip(&["netns", "add", &pods.client]);
        ip(&["netns", "add", &pods.db]);
        ip(&[
            "link",
            "add",
            "veth-c",
            "netns",
            &pods.client,
            "type",
            "veth",
            "peer",
            "name",
            "veth-d",
            "netns",
            &pods.db,
        ]);
        for (netns, link, host) in [(&pods.client, "veth-c", 1), (&pods.db, "veth-d", 2)] {
            let address = format!("10.232.{subnet}.{host}/24");
            ip(&["-n", netns, "address", "add", &address, "dev", link]);
            ip(&["-n", netns, "link", "set", link, "up"]);
            ip(&["-n", netns, "link", "set", "lo", "up"]);
        }
        pods
    }
}

impl Drop for Pods {
    fn drop(&mut self) {
        for name in [&self.client, &self.db] {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Moves the calling thread into the named network namespace.
fn enter_netns(name: &str) {
    let namespace = std::fs::File::open(Path::new("/run/netns").join(name)).unwrap();
    // SAFETY: setns affects only the calling thread.
    assert_eq!(
        unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
}

/// A long-lived thread inside the client namespace that connects on request and answers
/// whether the connection was established. It stays alive so that the agent can find its
/// namespace from its connect events.
fn client_thread(netns: String) -> (mpsc::Sender<SocketAddr>, mpsc::Receiver<bool>) {
    let (request_tx, request_rx) = mpsc::channel::<SocketAddr>();
    let (answer_tx, answer_rx) = mpsc::channel();
    std::thread::spawn(move || {
        enter_netns(&netns);
        for address in request_rx {
            let connected = TcpStream::connect_timeout(&address, Duration::from_secs(3)).is_ok();
            if answer_tx.send(connected).is_err() {
                return;
            }
        }
    });
    (request_tx, answer_rx)
}

fn serve(netns: String, address: SocketAddr) {
    std::thread::spawn(move || {
        enter_netns(&netns);
        let listener = TcpListener::bind(address).unwrap();
        let mut accepted = Vec::new();
        for stream in listener.incoming() {
            accepted.push(stream);
        }
    });
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.bearer_auth(ADMIN).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{status}: {body}");
        body
    }

    async fn put_rule(&self, id: Option<&str>, action: &str) -> Value {
        let rule = json!({
            "name": RULE, "source": "client", "destination": "db",
            "ports": [{"start": 7002, "end": 7002}], "protocol": "TCP",
            "action": action, "priority": 1, "enabled": true,
        });
        let request = match id {
            None => self
                .client
                .post(format!("{}/api/v1/firewall-rules", self.base)),
            Some(id) => self
                .client
                .put(format!("{}/api/v1/firewall-rules/{id}", self.base)),
        };
        self.send(request.json(&rule)).await
    }

    /// The attempts count of the firewall alert for the rule, if it exists yet.
    async fn attempts(&self) -> Option<(u64, Value)> {
        let page = self
            .send(
                self.client
                    .get(format!("{}/api/v1/firewall-alerts", self.base))
                    .query(&[("cluster", "e2e")]),
            )
            .await;
        let alert = page["items"]
            .as_array()?
            .iter()
            .find(|alert| alert["rule"] == RULE)?
            .clone();
        Some((alert["count"].as_u64()?, alert))
    }
}

/// Connects until `wanted` (connected or refused) or the deadline; returns how long it took.
fn connect_until(
    requests: &mpsc::Sender<SocketAddr>,
    answers: &mpsc::Receiver<bool>,
    address: SocketAddr,
    wanted: bool,
) -> Duration {
    let started = Instant::now();
    loop {
        requests.send(address).unwrap();
        if answers.recv().unwrap() == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < EDIT_DEADLINE,
            "the rule edit did not take effect within {EDIT_DEADLINE:?} (wanted connected={wanted})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_rule_edit_blocks_and_allows_within_a_minute_and_attempts_are_counted() {
    if !can_run() {
        return;
    }
    let subnet = (std::process::id() % 200) as u8 + 20;
    let pods = Pods::new(subnet);
    let guarded: SocketAddr = format!("10.232.{subnet}.2:7002").parse().unwrap();
    serve(pods.db.clone(), guarded);

    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.yaml");
    std::fs::write(
        &state_file,
        format!(
            r#"
kind: Pod
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
status: {{podIP: 10.232.{subnet}.1}}
---
kind: Pod
metadata: {{name: db, namespace: shop, labels: {{app: db}}}}
status: {{podIP: 10.232.{subnet}.2}}
---
kind: NetworkObject
metadata: {{name: client}}
spec: {{labels: {{matchLabels: {{app: client}}}}}}
---
kind: NetworkObject
metadata: {{name: db}}
spec: {{labels: {{matchLabels: {{app: db}}}}}}
"#
        ),
    )
    .unwrap();
    let port = free_port();
    let _up = Process(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "up",
                "--insecure-http",
                "--cluster",
                "e2e",
                "--no-default-rules",
            ])
            .args(["--firewall-mode", "block", "--firewall-poll-seconds", "2"])
            .arg("--firewall-state")
            .arg(&state_file)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("PALISADE_ADMIN_TOKEN", ADMIN)
            .env("PALISADE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let status_file = dir.path().join("data/agent/sensor-status.json");
    let started = Instant::now();
    while !status_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "palisade up did not start its sensor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // No rule yet: the client connects (and the agent learns its namespace from it).
    let (requests, answers) = client_thread(pods.client.clone());
    for _ in 0..3 {
        requests.send(guarded).unwrap();
        assert!(answers.recv().unwrap(), "connect before any rule");
    }

    let rule = api.put_rule(None, "block").await;
    let id = rule["id"].as_str().unwrap().to_owned();
    let took = connect_until(&requests, &answers, guarded, false);
    println!("block took effect after {took:?}");

    // Refused attempts are counted on one firewall alert.
    for _ in 0..3 {
        requests.send(guarded).unwrap();
        assert!(!answers.recv().unwrap(), "connect while blocked");
    }
    let started = Instant::now();
    let (first_count, alert) = loop {
        if let Some((count, alert)) = api.attempts().await
            && count >= 3
        {
            break (count, alert);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no firewall alert with 3 attempts reached the store: {:?}",
            api.attempts().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(alert["details"]["mode"], "block", "{alert}");
    assert_eq!(alert["details"]["source"], "shop/client", "{alert}");
    assert_eq!(alert["details"]["destination"], "shop/db", "{alert}");
    assert_eq!(alert["details"]["destination_object"], "db", "{alert}");
    assert_eq!(alert["details"]["port"], 7002, "{alert}");
    assert!(
        alert["details"]["trace"]
            .as_array()
            .is_some_and(|trace| !trace.is_empty()),
        "{alert}"
    );
    for _ in 0..2 {
        requests.send(guarded).unwrap();
        assert!(!answers.recv().unwrap());
    }
    let started = Instant::now();
    while api.attempts().await.map(|(count, _)| count) < Some(first_count + 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the attempts count did not rise from {first_count}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Editing the rule to allow lets the client through again.
    api.put_rule(Some(&id), "allow").await;
    let took = connect_until(&requests, &answers, guarded, true);
    println!("allow took effect after {took:?}");
    drop(requests);
    drop(pods);
}
