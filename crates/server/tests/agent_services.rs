//! The real agent against the real server: the `run_host_checks` task checks the services of
//! every running container — configuration read through the container's root, probes inside
//! its network namespace — and reports the failures as baseline risks on the container.
//!
//! The containers are real runc containers (found through runc's state directory) running
//! Debian's `redis-server` with `/usr` bind-mounted read-only from the host, each in its own
//! network namespace: one without a password, one secured.

mod support;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use palisade_testdata::run_checked;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "agent-services-test-admin-token-0123456789";

/// A Redis configuration that passes every PAL-SVC Redis check.
const SECURED: &str = "bind 127.0.0.1 -::1\nport 6379\nprotected-mode yes\n\
    requirepass 9f1c7a2e4b6d8f0a1c3e5b7d9f2a4c6e\n\
    rename-command FLUSHALL \"\"\nrename-command FLUSHDB \"\"\nrename-command CONFIG \"\"\n\
    rename-command DEBUG \"\"\nrename-command MODULE \"\"\nrename-command SLAVEOF \"\"\n\
    rename-command REPLICAOF \"\"\ndir /tmp\nsave \"\"\ndaemonize no\n";
/// No password: the configuration check and the probe both fail.
const INSECURE: &str =
    "bind 127.0.0.1 -::1\nport 6379\nprotected-mode yes\ndir /tmp\nsave \"\"\ndaemonize no\n";

/// A runc container running redis-server; deleted (with its cgroup) on drop.
struct RedisContainer {
    id: String,
    _bundle: tempfile::TempDir,
}

impl RedisContainer {
    fn start(name: &str, config: &str) -> RedisContainer {
        let bundle = tempfile::tempdir().unwrap();
        let rootfs = bundle.path().join("rootfs");
        for dir in ["usr", "etc/redis", "tmp", "proc", "dev", "sys"] {
            std::fs::create_dir_all(rootfs.join(dir)).unwrap();
        }
        for (link, target) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            std::os::unix::fs::symlink(target, rootfs.join(link)).unwrap();
        }
        std::fs::write(rootfs.join("etc/redis/redis.conf"), config).unwrap();
        run_checked("runc", &["spec", "--bundle", path(bundle.path())]);
        let spec_path = bundle.path().join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(["/usr/bin/redis-server", "/etc/redis/redis.conf"]);
        spec["root"]["readonly"] = json!(false);
        spec["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]
        }));
        std::fs::write(&spec_path, spec.to_string()).unwrap();
        let id = format!("{name}-{}", &Uuid::now_v7().simple().to_string()[20..]);
        let container = RedisContainer {
            id,
            _bundle: bundle,
        };
        // The container inherits runc's stdio: hand it none, or reading runc's output would
        // wait for the container to exit.
        let status = std::process::Command::new("runc")
            .args(["run", "--detach", "--bundle"])
            .arg(container._bundle.path())
            .arg(&container.id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "runc run {}: {status}", container.id);
        container
    }

    /// The container's init pid, from `runc state`.
    fn pid(&self) -> u32 {
        let state: Value =
            serde_json::from_str(&run_checked("runc", &["state", &self.id])).unwrap();
        state["pid"].as_u64().unwrap() as u32
    }

    /// Waits until redis-server listens inside the container (its `/proc/net/tcp` shows a
    /// listening socket on port 6379 = 0x18EB).
    fn wait_listening(&self) {
        let tcp = PathBuf::from(format!("/proc/{}/net/tcp", self.pid()));
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let table = std::fs::read_to_string(&tcp).unwrap_or_default();
            if table
                .lines()
                .any(|line| line.contains(":18EB 00000000:0000 0A"))
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "redis-server did not listen in {}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runc")
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

async fn request(
    client: &Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    support::read(request.send().await.unwrap()).await
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

#[tokio::test]
async fn host_checks_report_the_services_of_running_containers() {
    let available = is_root()
        && Path::new("/usr/bin/redis-server").exists()
        && std::process::Command::new("runc")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
    if !palisade_testdata::capability("root, runc and redis-server", available) {
        return;
    }
    let insecure = RedisContainer::start("palisade-svc-open", INSECURE);
    let secured = RedisContainer::start("palisade-svc-locked", SECURED);
    insecure.wait_listening();
    secured.wait_listening();

    let server = support::start(ADMIN).await;
    let client = Client::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::agent_config(&server.base, server.store.as_ref(), dir.path()).await;
    // Only the task runs the checks: no schedule, no vulnerability scans.
    config.scans.enabled = false;
    config.scans.container_images = false;
    let agent = support::RunningAgent::start(config).await;

    let agent_id = loop {
        if let Some(agent) = server.store.agents().await.unwrap().first() {
            break agent.id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, task) = request(
        &client,
        &server.base,
        reqwest::Method::POST,
        &format!("/api/v1/agents/{agent_id}/tasks"),
        ADMIN,
        Some(json!({ "spec": { "kind": "run_host_checks" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let task_path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let until = Instant::now() + Duration::from_secs(60);
    let task = loop {
        let (_, task) = request(
            &client,
            &server.base,
            reqwest::Method::GET,
            &task_path,
            ADMIN,
            None,
        )
        .await;
        if task["state"] == "done" || task["state"] == "failed" {
            break task;
        }
        assert!(Instant::now() < until, "the task did not finish: {task}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(task["state"], "done", "{task}");

    // The reports travel through the outbox: wait for the probe's finding.
    let risks_of = |risks: &Value, container: &str| -> Vec<String> {
        let mut rules: Vec<String> = risks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|risk| risk["asset"]["container_name"] == container)
            .map(|risk| risk["rule"].as_str().unwrap().to_owned())
            .collect();
        rules.sort();
        rules
    };
    let until = Instant::now() + Duration::from_secs(30);
    let risks = loop {
        let (_, risks) = request(
            &client,
            &server.base,
            reqwest::Method::GET,
            "/api/v1/baseline-risks?status=open&limit=1000",
            ADMIN,
            None,
        )
        .await;
        if risks_of(&risks, &insecure.id).contains(&"PAL-SVC-014".to_owned()) {
            break risks;
        }
        assert!(
            Instant::now() < until,
            "no PAL-SVC-014 for {}: {risks}",
            insecure.id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        risks_of(&risks, &insecure.id),
        ["PAL-SVC-001", "PAL-SVC-004", "PAL-SVC-014"],
        "{risks}"
    );
    let probe = risks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|risk| risk["rule"] == "PAL-SVC-014")
        .unwrap();
    assert_eq!(probe["asset"]["container_id"], insecure.id.as_str());
    assert_eq!(probe["asset"]["node"], "node-1");
    assert_eq!(
        probe["details"]["evidence"][0]["value"],
        "+PONG without AUTH"
    );
    let config_risk = risks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|risk| {
            risk["rule"] == "PAL-SVC-001" && risk["asset"]["container_name"] == insecure.id
        })
        .unwrap();
    assert_eq!(
        config_risk["details"]["evidence"][0]["file"],
        "/etc/redis/redis.conf"
    );
    assert!(
        risks_of(&risks, &secured.id).is_empty(),
        "the secured Redis has findings: {risks}"
    );

    agent.stop().await;
    drop((insecure, secured));
}
