//! The container firewall end to end, as root: `palisade up` with the eBPF sensor and
//! `--firewall-mode block`; two "pods" are network namespaces joined by a veth pair (their
//! addresses exist only inside them). The client pod is a bash process in its own network
//! namespace and its own cgroup2 directory; the db pod is a server thread in the other
//! namespace. A rule created through the API reaches the agent within 60 s: the client's
//! connection that was already open is closed (and alerted), new connects fail with `EPERM`
//! at the system call (the cgroup connect programs), each refused attempt is counted on one
//! firewall alert in the store, and editing the rule to `allow` lets connections through again
//! and removes the connect programs and the nftables table. Namespaces (with the veth pair and
//! any table), the client process and its cgroup are removed by guards, also when the test
//! fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use palisade_testdata::{NetnsPair, free_port};
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

/// Moves the calling thread into the named network namespace.
fn enter_netns(name: &str) {
    let namespace = std::fs::File::open(Path::new("/run/netns").join(name)).unwrap();
    // SAFETY: setns affects only the calling thread.
    assert_eq!(
        unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
}

/// The client pod: a bash process in the client namespace and in its own cgroup2 directory,
/// driven line by line. `open` opens a long-lived connection on the shell's fd 3; `probe`
/// connects from a subshell and answers `connected` or `refused: <error>`. Killed, and its
/// cgroup removed, on drop.
struct ClientPod {
    shell: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    cgroup: PathBuf,
}

const CLIENT_SCRIPT: &str = r#"
while read -r command; do
  case "$command" in
    open) if exec 3<>"/dev/tcp/$DB_ADDR/$DB_PORT"; then echo opened; else echo failed; fi ;;
    probe) if out=$( (exec 4<>"/dev/tcp/$DB_ADDR/$DB_PORT") 2>&1 ); then echo connected;
           else echo "refused: ${out//$'\n'/ }"; fi ;;
  esac
done
"#;

impl ClientPod {
    fn start(netns: &str, db: SocketAddr) -> ClientPod {
        let cgroup = palisade_enforce::cgroup2_root()
            .unwrap()
            .join(format!("palisade-fw-e2e-{}", std::process::id()));
        std::fs::create_dir(&cgroup).unwrap();
        let procs = cgroup.join("cgroup.procs");
        let netns_path = Path::new("/run/netns").join(netns);
        let mut command = Command::new("bash");
        command
            .args(["-c", CLIENT_SCRIPT])
            .env("DB_ADDR", db.ip().to_string())
            .env("DB_PORT", db.port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: between fork and exec only plain system calls (open, write, setns).
        unsafe {
            command.pre_exec(move || {
                std::fs::write(&procs, "0")?;
                let namespace = std::fs::File::open(&netns_path)?;
                if libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut shell = command.spawn().unwrap();
        ClientPod {
            commands: shell.stdin.take().unwrap(),
            answers: BufReader::new(shell.stdout.take().unwrap()),
            shell,
            cgroup,
        }
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.commands, "{command}").unwrap();
        let mut answer = String::new();
        self.answers.read_line(&mut answer).unwrap();
        answer.trim().to_owned()
    }

    /// The cgroup's attached BPF programs, as `bpftool cgroup show` lists them.
    fn attached_programs(&self) -> String {
        let output = Command::new("bpftool")
            .args(["cgroup", "show"])
            .arg(&self.cgroup)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for ClientPod {
    fn drop(&mut self) {
        let _ = self.shell.kill();
        let _ = self.shell.wait();
        let _ = std::fs::remove_dir(&self.cgroup);
    }
}

/// Serves the db pod: accepts in the db namespace and reads each connection until it ends;
/// sends how each one ended (`Ok(())` for an orderly close, the error kind for a reset).
fn serve(netns: String, address: SocketAddr) -> mpsc::Receiver<Result<(), std::io::ErrorKind>> {
    let (ended_tx, ended_rx) = mpsc::channel();
    std::thread::spawn(move || {
        enter_netns(&netns);
        let listener = TcpListener::bind(address).unwrap();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let ended = ended_tx.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 64];
                let how = loop {
                    match stream.read(&mut buffer) {
                        Ok(0) => break Ok(()),
                        Ok(_) => continue,
                        Err(error) => break Err(error.kind()),
                    }
                };
                let _ = ended.send(how);
            });
        }
    });
    ended_rx
}

/// The names of the nftables tables in the named namespace.
fn nft_tables(netns: &str) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
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
        let alert = self.alert_named(RULE).await?;
        Some((alert["count"].as_u64()?, alert))
    }

    /// The firewall alert whose alert name is `name`, if it exists yet.
    async fn alert_named(&self, name: &str) -> Option<Value> {
        let page = self
            .send(
                self.client
                    .get(format!("{}/api/v1/firewall-alerts", self.base))
                    .query(&[("cluster", "e2e")]),
            )
            .await;
        page["items"]
            .as_array()?
            .iter()
            .find(|alert| alert["rule"] == name)
            .cloned()
    }
}

/// Neither connect programs on the client's cgroup nor Palisade's table in its namespace.
fn assert_nothing_installed(client: &ClientPod, netns: &str) {
    let programs = client.attached_programs();
    assert!(!programs.contains("connect4"), "{programs}");
    let tables = nft_tables(netns);
    assert!(!tables.contains("palisade"), "{tables}");
}

/// Probes until the answer starts with `wanted` (`connected` or `refused`) or the deadline;
/// returns the answer and how long it took.
fn probe_until(client: &mut ClientPod, wanted: &str) -> (String, Duration) {
    let started = Instant::now();
    loop {
        let answer = client.ask("probe");
        if answer.starts_with(wanted) {
            return (answer, started.elapsed());
        }
        assert!(
            started.elapsed() < EDIT_DEADLINE,
            "the rule edit did not take effect within {EDIT_DEADLINE:?} (wanted {wanted}, got {answer})"
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
    let pods = NetnsPair::new("fwa", 232, subnet);
    let guarded: SocketAddr = format!("10.232.{subnet}.2:7002").parse().unwrap();
    let ended = serve(pods.server.clone(), guarded);

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
    let mut client = ClientPod::start(&pods.client, guarded);
    let up = Process(
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

    // No rule yet: the client opens a long-lived connection (from which the agent learns its
    // namespace and cgroup) and connects again; nothing is installed.
    assert_eq!(client.ask("open"), "opened");
    for _ in 0..3 {
        assert_eq!(client.ask("probe"), "connected", "connect before any rule");
    }
    assert_nothing_installed(&client, &pods.client);

    let rule = api.put_rule(None, "block").await;
    let id = rule["id"].as_str().unwrap().to_owned();
    let (answer, took) = probe_until(&mut client, "refused");
    println!("block took effect after {took:?}: {answer}");
    assert!(
        answer.contains("Operation not permitted"),
        "the connect program refuses at the system call: {answer}"
    );
    let programs = client.attached_programs();
    assert!(
        programs.contains("connect4") && programs.contains("connect6"),
        "{programs}"
    );
    assert!(nft_tables(&pods.client).contains("table inet palisade"));

    // The connection opened before the rule was closed: the db saw a reset (the probes'
    // connections ended in an orderly close).
    let reset = std::iter::from_fn(|| ended.recv_timeout(Duration::from_secs(10)).ok())
        .find(Result::is_err)
        .expect("the open connection was not closed");
    assert_eq!(reset, Err(std::io::ErrorKind::ConnectionReset));
    let closed_alert_name = format!("{RULE}: open connection closed");
    let started = Instant::now();
    let closed = loop {
        if let Some(alert) = api.alert_named(&closed_alert_name).await {
            break alert;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no alert for the closed connection reached the store"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(closed["count"], 1, "{closed}");
    assert_eq!(closed["details"]["mode"], "block", "{closed}");
    assert_eq!(closed["details"]["source"], "shop/client", "{closed}");
    assert_eq!(closed["details"]["destination"], "shop/db", "{closed}");
    assert_eq!(closed["details"]["port"], 7002, "{closed}");
    assert_eq!(closed["details"]["rule_id"], RULE, "{closed}");

    // Refused attempts are counted on one firewall alert.
    for _ in 0..3 {
        let answer = client.ask("probe");
        assert!(
            answer.starts_with("refused"),
            "connect while blocked: {answer}"
        );
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
        let answer = client.ask("probe");
        assert!(
            answer.starts_with("refused"),
            "connect while blocked: {answer}"
        );
    }
    let started = Instant::now();
    while api.attempts().await.map(|(count, _)| count) < Some(first_count + 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the attempts count did not rise from {first_count}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Editing the rule to allow lets the client through again, and removes the connect
    // programs and the table.
    api.put_rule(Some(&id), "allow").await;
    let (_, took) = probe_until(&mut client, "connected");
    println!("allow took effect after {took:?}");
    assert_nothing_installed(&client, &pods.client);

    // Back to block, then the agent stops: it removes what it installed.
    api.put_rule(Some(&id), "block").await;
    probe_until(&mut client, "refused");
    drop(up);
    assert_nothing_installed(&client, &pods.client);
    drop(client);
    drop(pods);
}
