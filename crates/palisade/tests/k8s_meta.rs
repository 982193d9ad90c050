//! `palisade monitor --kubeconfig`: the API server's metadata reaches the `k8s.*` fields of
//! alerts raised by a real container (podman, with the CRI's pod labels) under the eBPF
//! sensor; with a refused token the fields are `<NA>` and the alerts still come. The agent
//! path (`palisade up --kubeconfig`): the alert stored by the server carries the metadata in
//! its output and raw event, and `palisade agent --status` shows the API server reachable
//! with the objects it keeps.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use palisade_testdata::{KillOnDrop, Palisade, PodmanContainer, Ready, run_checked};
use serde_json::{Value, json};

fn ready() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    palisade_testdata::capability(
        "root, eBPF, podman and busybox-static",
        is_root
            && Path::new("/sys/kernel/btf/vmlinux").exists()
            && Path::new("/usr/bin/podman").exists()
            && Path::new("/bin/busybox").exists(),
    )
}

/// An API server answering lists of one pod `shop/web-1` (deployment `web`, replica set
/// `web-7d9f`, service `web`, namespace labelled `team=payments`) to the bearer token
/// `good-token`, and holding watches open; 401 for any other token.
fn serve_api(pod_uid: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let pod_uid = pod_uid.clone();
            std::thread::spawn(move || answer(stream, &pod_uid));
        }
    });
    port
}

fn answer(mut stream: TcpStream, pod_uid: &str) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let authorised = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("authorization: Bearer good-token"));
    let reply = |stream: &mut TcpStream, status: &str, body: String| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if !authorised {
        reply(
            &mut stream,
            "401 Unauthorized",
            json!({"kind":"Status","code":401,"message":"Unauthorized"}).to_string(),
        );
        return;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if query.contains("watch=1") {
        // A watch that stays open, as the API server's does until its timeout.
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        );
        let bookmark =
            "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n";
        let _ = write!(stream, "{:x}\r\n{bookmark}\r\n", bookmark.len());
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let owner = |kind: &str, name: &str, uid: &str| {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
                "controller": true}])
    };
    let items = match path {
        "/api/v1/pods" => json!([{"metadata": {"name": "web-1", "namespace": "shop",
            "uid": pod_uid, "labels": {"app": "web"},
            "ownerReferences": owner("ReplicaSet", "web-7d9f", "rs-1")},
            "spec": {"nodeName": "node-a"}, "status": {"podIP": "10.244.0.9"}}]),
        "/api/v1/namespaces" => json!([{"metadata": {"name": "shop", "uid": "ns-1",
            "labels": {"team": "payments"}}}]),
        "/apis/apps/v1/replicasets" => json!([{"metadata": {"name": "web-7d9f",
            "namespace": "shop", "uid": "rs-1",
            "ownerReferences": owner("Deployment", "web", "d-1")}}]),
        "/apis/apps/v1/deployments" => {
            json!([{"metadata": {"name": "web", "namespace": "shop", "uid": "d-1"}}])
        }
        "/api/v1/services" => json!([{"metadata": {"name": "web", "namespace": "shop",
            "uid": "s-1"}, "spec": {"selector": {"app": "web"}}}]),
        _ => json!([]),
    };
    reply(
        &mut stream,
        "200 OK",
        json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
               "items": items})
        .to_string(),
    );
}

/// Runs `palisade monitor` with `rules` and `kubeconfig`, execs `marker` in the container
/// every half second, and returns the output text of the first alert `wanted` accepts.
fn first_alert(pod: &PodUnderTest, kubeconfig: &Path, wanted: impl Fn(&str) -> bool) -> String {
    let mut monitor = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "monitor",
                "--no-default-rules",
                "--output",
                "json",
                "--duration",
                "40",
            ])
            .arg("--rules")
            .arg(&pod.rules)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--k8s-node-name", "node-a"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(monitor.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("sensor_status") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "monitor exited before starting"
        );
    }
    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = monitor.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        pod.exec_marker();
        while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(500)) {
            let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
            let output = alert["output"].as_str().unwrap().to_owned();
            if wanted(&output) {
                return output;
            }
            seen.push(output);
        }
    }
    panic!("no wanted alert within 30 s; alerts: {seen:?}");
}

/// A running podman container with the CRI's pod labels of `shop/web-1`, the rules file
/// of one rule on an exec of its marker, and the mock API server's port.
struct PodUnderTest {
    dir: tempfile::TempDir,
    podman: PodmanContainer,
    port: u16,
    marker: String,
    rules: std::path::PathBuf,
}

impl PodUnderTest {
    fn start(rule_output: &str) -> PodUnderTest {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let tag = format!("{}", std::process::id());
        let pod_uid = format!("3e41dc6b-08a8-44db-bc2a-{:012}", std::process::id());
        let podman = PodmanContainer::import(
            &rootfs,
            &dir.path().join("image.tar"),
            "palisade-k8smeta",
            &tag,
        );
        let pod_labels = [
            "io.kubernetes.pod.name=web-1".to_owned(),
            "io.kubernetes.pod.namespace=shop".to_owned(),
            format!("io.kubernetes.pod.uid={pod_uid}"),
            "io.kubernetes.container.name=app".to_owned(),
        ];
        podman.start_labelled(&pod_labels, &["/bin/busybox", "sleep", "120"]);

        let port = serve_api(pod_uid);
        let marker = format!("palisade-k8smeta-{tag}");
        let rules = dir.path().join("rules.yaml");
        std::fs::write(
            &rules,
            format!(
                "- rule: Exec in pod\n  desc: test\n  condition: evt.type = execve and \
                 container.id != host and proc.cmdline contains {marker}\n  \
                 output: \"{rule_output}\"\n  priority: WARNING\n"
            ),
        )
        .unwrap();
        PodUnderTest {
            dir,
            podman,
            port,
            marker,
            rules,
        }
    }

    /// A kubeconfig for the mock API server with `token`.
    fn kubeconfig(&self, token: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{token}"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
                 contexts: [{{name: test, context: {{cluster: mock, user: agent}}}}]\n\
                 clusters: [{{name: mock, cluster: {{server: 'http://127.0.0.1:{}'}}}}]\n\
                 users: [{{name: agent, user: {{token: {token}}}}}]\n",
                self.port
            ),
        )
        .unwrap();
        path
    }

    /// Execs the marker in the container.
    fn exec_marker(&self) {
        run_checked(
            "podman",
            &[
                "exec",
                &self.podman.container,
                "/bin/busybox",
                "echo",
                &self.marker,
            ],
        );
    }
}

#[test]
fn api_server_metadata_reaches_alerts_and_a_refused_token_leaves_it_absent() {
    if !ready() {
        return;
    }
    let pod = PodUnderTest::start(
        "pod=%k8s.pod.name app=%k8s.pod.label[app] ip=%k8s.pod.ip team=%k8s.ns.label[team] \
         rs=%k8s.rs.name deploy=%k8s.deployment.name svc=%k8s.svc.name",
    );
    // The metadata may trail the monitor's start by a list's time, and the container's
    // resolution its first exec.
    let output = first_alert(&pod, &pod.kubeconfig("good-token"), |output| {
        !output.contains("deploy=<NA>")
    });
    assert_eq!(
        output,
        "pod=web-1 app=web ip=10.244.0.9 team=payments rs=web-7d9f deploy=web svc=web"
    );
    // The container itself may be resolved after its first exec.
    let output = first_alert(&pod, &pod.kubeconfig("bad-token"), |output| {
        output.starts_with("pod=web-1")
    });
    assert_eq!(
        output,
        "pod=web-1 app=<NA> ip=<NA> team=<NA> rs=<NA> deploy=<NA> svc=<NA>"
    );
}

const ADMIN: &str = "k8s-meta-agent-test-admin-token";

/// The alerts of the test's rule in the server's store.
async fn stored_alerts(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let Ok(response) = client
        .get(format!("{base}/api/v1/alerts"))
        .query(&[("rule", "Exec in pod"), ("cluster", "k8s-e2e")])
        .bearer_auth(ADMIN)
        .send()
        .await
    else {
        return Vec::new();
    };
    let page: Value = response.json().await.unwrap_or_default();
    page["items"].as_array().cloned().unwrap_or_default()
}

/// `palisade up --kubeconfig`: the agent attaches the API server's metadata to the
/// container's exec before its rules, and the alert the server stores carries it — in the
/// rendered output (pod label, deployment, namespace label) and in the raw event; the agent's
/// status shows the API server reachable, synced and the objects it keeps.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_ships_alerts_with_the_api_servers_metadata() {
    if !ready() {
        return;
    }
    let pod = PodUnderTest::start(
        "pod=%k8s.pod.name app=%k8s.pod.label.app deploy=%k8s.deployment.name \
         team=%k8s.ns.label[team]",
    );
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args([
            "up",
            "--cluster",
            "k8s-e2e",
            "--no-default-rules",
            "--rules",
        ])
        .arg(&pod.rules)
        .arg("--kubeconfig")
        .arg(pod.kubeconfig("good-token"))
        .args(["--k8s-node-name", "node-a"])
        .env("PALISADE_LOG", "warn");
    let up = Palisade::start(command, data.path(), ADMIN, Ready::SensorStarted);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // The metadata may trail the agent's start by a list's time: exec until an alert with
    // the deployment arrives (earlier ones may show <NA>).
    let deadline = Instant::now() + Duration::from_secs(40);
    let alert = loop {
        pod.exec_marker();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let alerts = stored_alerts(&client, &up.base).await;
        if let Some(alert) = alerts.iter().find(|alert| {
            alert["details"]["output"]
                .as_str()
                .is_some_and(|output| output.contains("deploy=web"))
        }) {
            break alert.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no alert with the deployment within 40 s: {alerts:#?}"
        );
    };
    assert_eq!(
        alert["details"]["output"], "pod=web-1 app=web deploy=web team=payments",
        "{alert:#}"
    );
    assert_eq!(alert["asset"]["namespace"], "shop", "{alert:#}");
    assert_eq!(alert["asset"]["pod"], "web-1", "{alert:#}");
    let meta = &alert["details"]["raw_event"]["event"]["k8s_meta"];
    assert_eq!(meta["deployment"]["name"], "web", "{alert:#}");
    assert_eq!(meta["pod_ip"], "10.244.0.9", "{alert:#}");

    // The running agent rewrites its status every 2 s.
    let (status, table) = loop {
        let (status, table) = agent_status(data.path());
        if status["sensor"]["k8s_api"]["synced"] == true || Instant::now() > deadline {
            break (status, table);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let k8s = &status["sensor"]["k8s_api"];
    assert_eq!(
        k8s["server"],
        format!("http://127.0.0.1:{}", pod.port),
        "{status:#}"
    );
    assert_eq!(k8s["reachable"], true, "{status:#}");
    assert_eq!(k8s["synced"], true, "{status:#}");
    assert!(k8s["last_sync_at"].is_string(), "{status:#}");
    assert_eq!(k8s["objects"]["Pod"], 1, "{status:#}");
    assert_eq!(k8s["objects"]["Deployment"], 1, "{status:#}");
    assert_eq!(k8s["failures"], 0, "{status:#}");
    assert!(table.contains("reachable, every kind listed"), "{table}");
}

/// `palisade agent --status` of the agent in `data_dir`: the JSON report and the table.
fn agent_status(data_dir: &Path) -> (Value, String) {
    let run = |output: &str| {
        let run = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["agent", "--status", "--output", output, "--data-dir"])
            .arg(data_dir.join("agent"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        String::from_utf8(run.stdout).unwrap()
    };
    (serde_json::from_str(&run("json")).unwrap(), run("table"))
}

/// An agent whose API server does not answer keeps detecting, and says so: the status file
/// and `palisade agent --status` (JSON and table) show the server unreachable, never synced,
/// its failures and the error.
#[test]
fn an_unreachable_api_server_shows_in_the_agent_status() {
    if !ready() {
        return;
    }
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             contexts: [{{name: test, context: {{cluster: gone, user: agent}}}}]\n\
             clusters: [{{name: gone, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n\
             users: [{{name: agent, user: {{token: t}}}}]\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["up", "--cluster", "k8s-gone", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("PALISADE_LOG", "error");
    let _up = Palisade::start(command, &data, ADMIN, Ready::SensorStarted);
    // The running agent rewrites its status every 2 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, table) = loop {
        let (status, table) = agent_status(&data);
        if status["sensor"]["k8s_api"]["failures"].as_u64() > Some(0) {
            break (status, table);
        }
        assert!(Instant::now() < deadline, "no failure counted: {status:#}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let k8s = &status["sensor"]["k8s_api"];
    assert_eq!(status["sensor"]["state"], "running", "{status:#}");
    assert_eq!(k8s["reachable"], false, "{status:#}");
    assert_eq!(k8s["synced"], false, "{status:#}");
    assert!(k8s["last_sync_at"].is_null(), "{status:#}");
    assert!(
        k8s["last_error"]
            .as_str()
            .is_some_and(|error| error.contains(&port.to_string())),
        "{status:#}"
    );
    assert!(
        table.contains(&format!("http://127.0.0.1:{port}")) && table.contains("UNREACHABLE"),
        "{table}"
    );
}
