//! Issue 6 point 6, "each image digest inventoried once, re-matched when the database
//! changes", on a real `palisade server` and `palisade agent` process with two real podman
//! containers of one image: the agent's log names the image digest of each inventory it
//! takes, and the test counts them. Two rescans inventory the image once; a change of the
//! vulnerability database file is matched against the kept inventory without another, and
//! the finding only the new database has reaches the server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_testdata::{KillOnDrop, Palisade, PodmanContainer, Ready, run_checked};
use serde_json::{Value, json};

const ADMIN: &str = "scan-agent-images-test-admin-token";

/// The dpkg status of the image: two packages below the fixes of the test's advisories.
const DPKG_STATUS: &str = "Package: palisade-probe\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 1.0-1\nDescription: probe\n\n\
Package: palisade-probe-tools\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 2.0-1\nDescription: probe tools\n";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An OSV advisory `id` for the Debian 12 package `package`, fixed in `fixed`.
fn write_advisory(dir: &Path, id: &str, package: &str, fixed: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{id}.json"));
    let record = json!({
        "id": id,
        "modified": "2026-01-01T00:00:00Z",
        "affected": [{
            "package": { "ecosystem": "Debian:12", "name": package },
            "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }],
        }],
    });
    std::fs::write(&path, record.to_string()).unwrap();
    path
}

fn import(database: &Path, feed: &Path) {
    run_checked(
        env!("CARGO_BIN_EXE_palisade"),
        &[
            "db",
            "import",
            "--db",
            database.to_str().unwrap(),
            feed.to_str().unwrap(),
        ],
    );
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Rescans on agent `agent_id` and waits until the task is done.
    async fn rescan(&self, agent_id: &str) {
        let task = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/agents/{agent_id}/tasks"),
                Some(json!({"spec": {"kind": "rescan_vulnerabilities"}})),
            )
            .await;
        let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
        let started = Instant::now();
        loop {
            let task = self.call(reqwest::Method::GET, &path, None).await;
            match task["state"].as_str() {
                Some("done") => return,
                Some("failed") => panic!("the rescan failed: {task:#}"),
                _ => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the rescan did not end: {task:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The vulnerability ids the server holds for the image `digest`.
    async fn image_vulnerabilities(&self, digest: &str) -> Vec<String> {
        let page = self
            .call(
                reqwest::Method::GET,
                "/api/v1/vulnerabilities?limit=1000",
                None,
            )
            .await;
        let mut ids: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["asset"]["image_digest"] == digest)
            .map(|finding| finding["rule"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

/// The agent's "Inventory taken." lines for the image `digest`.
fn inventories_of(log: &Path, digest: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|line| line.contains("Inventory taken."))
        .filter(|line| line.contains(&format!("image_digest={digest} ")))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_run_by_two_containers_is_inventoried_once_and_matched_again_on_a_new_database() {
    let ready =
        is_root() && Path::new("/usr/bin/podman").exists() && Path::new("/bin/busybox").exists();
    if !palisade_testdata::capability("root, podman and busybox-static", ready) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    for (path, contents) in [
        (
            "etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        ),
        ("var/lib/dpkg/status", DPKG_STATUS),
    ] {
        let path = rootfs.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let tag = std::process::id().to_string();
    let first = PodmanContainer::import(
        &rootfs,
        &dir.path().join("image.tar"),
        "palisade-digest-once",
        &tag,
    );
    first.start(&["/bin/busybox", "sleep", "600"]);
    let second = PodmanContainer {
        container: format!("{}-second", first.container),
        image: first.image.clone(),
    };
    second.start(&["/bin/busybox", "sleep", "600"]);
    let digest = format!(
        "sha256:{}",
        run_checked(
            "podman",
            &["image", "inspect", "--format", "{{.Id}}", &first.image]
        )
    );

    let database = dir.path().join("vulndb.sqlite");
    import(
        &database,
        &write_advisory(dir.path(), "CVE-2099-0101", "palisade-probe", "1.0-2"),
    );
    let host_root = dir.path().join("host");
    std::fs::create_dir_all(&host_root).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command.arg("server").env("PALISADE_LOG", "warn");
    let server = Palisade::start(command, &dir.path().join("server"), ADMIN, Ready::Healthy);
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        base: server.base.clone(),
    };
    let join = api
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "digest test", "role": "join"})),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent_log = dir.path().join("agent.log");
    let _agent = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["agent", "--server", &api.base, "--join-token", &join])
            .args([
                "--cluster",
                "digest",
                "--name",
                "node-digest",
                "--no-sensor",
            ])
            .args(["--no-scheduled-scans", "--data-dir"])
            .arg(dir.path().join("agent"))
            .arg("--vulndb")
            .arg(&database)
            .arg("--scan-root")
            .arg(&host_root)
            .env("PALISADE_LOG", "info")
            // Plain `key=value` fields, which the test reads.
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&agent_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let agent_id = loop {
        let agents = api.call(reqwest::Method::GET, "/api/v1/agents", None).await;
        if let Some(id) = agents.as_array().and_then(|agents| {
            agents
                .iter()
                .find(|agent| agent["name"] == "node-digest")
                .and_then(|agent| agent["id"].as_str())
        }) {
            break id.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the agent did not enroll"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = || std::fs::read_to_string(&agent_log).unwrap();

    // Two rescans: the host is inventoried by each, the image once.
    api.rescan(&agent_id).await;
    api.rescan(&agent_id).await;
    assert_eq!(inventories_of(&agent_log, &digest), 1, "{}", log());
    let host_inventories = || {
        log()
            .lines()
            .filter(|line| line.contains("Inventory taken."))
            .filter(|line| line.contains(&format!("root={} ", host_root.display())))
            .count()
    };
    assert_eq!(host_inventories(), 2, "{}", log());
    assert_eq!(
        api.image_vulnerabilities(&digest).await,
        ["CVE-2099-0101"],
        "one finding for the image, not one per container"
    );

    // A new database: matched against the kept inventory, which is not taken again.
    import(
        &database,
        &write_advisory(dir.path(), "CVE-2099-0102", "palisade-probe-tools", "2.0-2"),
    );
    let waiting = Instant::now();
    loop {
        let found = api.image_vulnerabilities(&digest).await;
        if found == ["CVE-2099-0101", "CVE-2099-0102"] {
            break;
        }
        // The agent looks at its database file from a minute after its start on.
        assert!(
            waiting.elapsed() < Duration::from_secs(150),
            "the new database's finding did not reach the server: {found:?}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        log().contains("The vulnerability database changed; matching again."),
        "{}",
        log()
    );
    assert_eq!(inventories_of(&agent_log, &digest), 1, "{}", log());
    assert_eq!(host_inventories(), 2, "{}", log());
    drop(second);
    drop(first);
}
