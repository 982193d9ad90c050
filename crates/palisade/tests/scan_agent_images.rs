//! Issue 6 point 6, "each image digest inventoried once, re-matched when the database
//! changes", on a real `palisade server` and `palisade agent` process with two real podman
//! containers of one image: the agent's log names the image digest of each inventory it
//! takes, and the test counts them. Two rescans inventory the image once; a change of the
//! vulnerability database file is matched against the kept inventory without another, and
//! the finding only the new database has reaches the server. Once no container runs the
//! image, the next inventory forgets it: its findings are no longer reported (their last
//! observation stays), they stay open as the last scan left them, and a verification of
//! their fix fails saying the agent no longer scans the image; a new container of the
//! image has it inventoried and reported again.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use palisade_testdata::{PodmanContainer, run_checked};
use serde_json::{Value, json};
use support::server_and_agent::{Agent, Api, Server, import, task_ended, write_advisory};

const ADMIN: &str = "scan-agent-images-test-admin-token";

/// The dpkg status of the image: two packages below the fixes of the test's advisories.
const DPKG_STATUS: &str = "Package: palisade-probe\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 1.0-1\nDescription: probe\n\n\
Package: palisade-probe-tools\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 2.0-1\nDescription: probe tools\n";

impl Api {
    /// Rescans on agent `agent_id` and waits until the task is done.
    async fn rescan(&self, agent_id: &str) {
        let task_id = self.start_rescan(agent_id).await;
        let task = self.task_until(&task_id, 120, task_ended).await;
        assert_eq!(task["state"], "done", "the rescan failed: {task:#}");
    }

    /// The vulnerability findings the server holds for the image `digest`.
    async fn image_findings(&self, digest: &str) -> Vec<Value> {
        let page = self
            .call(
                reqwest::Method::GET,
                "/api/v1/vulnerabilities?limit=1000",
                None,
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["asset"]["image_digest"] == digest)
            .cloned()
            .collect()
    }

    /// The vulnerability ids the server holds for the image `digest`.
    async fn image_vulnerabilities(&self, digest: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .image_findings(digest)
            .await
            .iter()
            .map(|finding| finding["rule"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// The finding of vulnerability `id` the server holds for the image `digest`.
    async fn image_finding(&self, digest: &str, id: &str) -> Value {
        self.image_findings(digest)
            .await
            .into_iter()
            .find(|finding| finding["rule"] == id)
            .unwrap_or_else(|| panic!("no finding {id} for {digest}"))
    }

    /// Asks for a verification of the fix of finding `finding_id` and returns its task once
    /// the agent has ended it.
    async fn verify_fix(&self, finding_id: &str) -> Value {
        let started = self
            .call(
                reqwest::Method::POST,
                "/api/v1/fix-verifications",
                Some(json!({ "finding_id": finding_id })),
            )
            .await;
        let task_id = started["task"]["id"].as_str().unwrap();
        self.task_until(task_id, 120, task_ended).await
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
    if !support::podman_and_busybox() {
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
    let server = Server::start(dir.path(), &[], ADMIN);
    let api = &server.api;
    let agent = Agent::enrol(
        &server,
        dir.path(),
        "digest test",
        ("digest", "node-digest"),
        &database,
        &host_root,
    )
    .await;
    let (agent_id, agent_log) = (agent.id.clone(), agent.log.clone());
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

    // No container runs the image any more: the next inventory forgets it. Its findings are
    // no longer reported (their count and last observation stay where the last scan left
    // them) and stay open, since nothing rescanned the image; the host is still scanned.
    let last_reported = api.image_finding(&digest, "CVE-2099-0101").await;
    for container in [&first, &second] {
        run_checked("podman", &["stop", "--time", "0", &container.container]);
    }
    api.rescan(&agent_id).await;
    assert_eq!(host_inventories(), 3, "{}", log());
    let after_stop = api.image_finding(&digest, "CVE-2099-0101").await;
    assert_eq!(after_stop["status"], "open", "{after_stop:#}");
    for field in ["count", "last_seen"] {
        assert_eq!(
            after_stop[field],
            last_reported[field],
            "{field}: the stopped image was reported again\n{}",
            log()
        );
    }
    assert_eq!(
        api.image_vulnerabilities(&digest).await,
        ["CVE-2099-0101", "CVE-2099-0102"]
    );
    // A verification of its fix cannot rescan it: it fails saying so, the finding stays open.
    let verification = api.verify_fix(after_stop["id"].as_str().unwrap()).await;
    assert_eq!(verification["state"], "failed", "{verification:#}");
    let reason = verification["result"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("neither this node nor the image of a running container"),
        "{verification:#}"
    );
    assert_eq!(
        api.image_finding(&digest, "CVE-2099-0101").await["status"],
        "open"
    );

    // A new container of the image: inventoried again, its findings reported again.
    let third = PodmanContainer {
        container: format!("{}-third", first.container),
        image: first.image.clone(),
    };
    third.start(&["/bin/busybox", "sleep", "600"]);
    api.rescan(&agent_id).await;
    assert_eq!(inventories_of(&agent_log, &digest), 2, "{}", log());
    let reported_again = api.image_finding(&digest, "CVE-2099-0101").await;
    assert!(
        reported_again["count"].as_u64() > last_reported["count"].as_u64(),
        "{reported_again:#}\n{last_reported:#}"
    );
    assert_ne!(reported_again["last_seen"], last_reported["last_seen"]);
    drop(third);
    drop(second);
    drop(first);
}
