//! `palisade monitor --kubeconfig`: the API server's metadata reaches the `k8s.*` fields of
//! alerts raised by a real container (podman, with the CRI's pod labels) under the eBPF
//! sensor; with a refused token the fields are `<NA>` and the alerts still come. The agent
//! path (`palisade up --kubeconfig`): the alert stored by the server carries the metadata in
//! its output and raw event, and `palisade agent --status` shows the API server reachable
//! with the objects it keeps.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use palisade_testdata::{
    KillOnDrop, Palisade, PodmanContainer, Ready,
    k8s_api::{
        DEPLOYMENTS, MockApi, NAMESPACES, PODS, REPLICA_SETS, SERVICES, object, pod, service,
    },
    run_checked,
};
use serde_json::Value;

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

/// An API server (`palisade_testdata::k8s_api`) holding one pod `shop/web-1` on node-a
/// (deployment `web` → replica set `web-7d9f`, service `web`, namespace labelled
/// `team=payments`), for the bearer token `good-token` only.
fn serve_api(pod_uid: &str) -> MockApi {
    let api = MockApi::start_in_thread(Some("good-token"));
    api.put(
        NAMESPACES,
        object(
            "Namespace",
            "",
            "shop",
            "ns-1",
            &[("team", "payments")],
            None,
        ),
    );
    api.put(
        DEPLOYMENTS,
        object("Deployment", "shop", "web", "d-1", &[("app", "web")], None),
    );
    api.put(
        REPLICA_SETS,
        object(
            "ReplicaSet",
            "shop",
            "web-7d9f",
            "rs-1",
            &[("app", "web")],
            Some(("Deployment", "web", "d-1")),
        ),
    );
    api.put(
        PODS,
        pod(
            "shop",
            "web-1",
            pod_uid,
            "node-a",
            &[("app", "web")],
            Some(("ReplicaSet", "web-7d9f", "rs-1")),
        ),
    );
    api.put(
        SERVICES,
        service("shop", "web", "s-1", &[], &[("app", "web")]),
    );
    api
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
/// of one rule on an exec of its marker, and the mock API server.
struct PodUnderTest {
    dir: tempfile::TempDir,
    podman: PodmanContainer,
    api: MockApi,
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

        let api = serve_api(&pod_uid);
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
            api,
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
                 clusters: [{{name: mock, cluster: {{server: '{}'}}}}]\n\
                 users: [{{name: agent, user: {{token: {token}}}}}]\n",
                self.api.url()
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
        "pod=web-1 app=web ip=10.244.1.7 team=payments rs=web-7d9f deploy=web svc=web"
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
    assert_eq!(meta["pod_ip"], "10.244.1.7", "{alert:#}");

    // The running agent rewrites its status every 2 s.
    let (status, table) = loop {
        let (status, table) = agent_status(data.path());
        if status["sensor"]["k8s_api"]["synced"] == true || Instant::now() > deadline {
            break (status, table);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let k8s = &status["sensor"]["k8s_api"];
    assert_eq!(k8s["server"], pod.api.url(), "{status:#}");
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
