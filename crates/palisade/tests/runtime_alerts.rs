//! Runtime detection end to end, for real: `palisade up` as root starts the eBPF sensor and
//! the default rules; a program executed from /dev/shm becomes an alert in the server's store,
//! with its process, its ancestry and the node, and `palisade agent --status` shows the
//! sensor that saw it.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const ADMIN: &str = "runtime-alerts-test-admin-token";
const RULE: &str = "Execution from /dev/shm";

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the staged program when dropped.
struct StagedDir(std::path::PathBuf);

impl Drop for StagedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn can_run_ebpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    palisade_testdata::capability(
        "root and a kernel with BTF (eBPF)",
        is_root && Path::new("/sys/kernel/btf/vmlinux").exists(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn alerts_of_rule(client: &reqwest::Client, base: &str) -> Option<Vec<Value>> {
    let page: Value = client
        .get(format!("{base}/api/v1/alerts"))
        .query(&[("rule", RULE), ("cluster", "e2e")])
        .bearer_auth(ADMIN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    page["items"].as_array().cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_run_from_dev_shm_becomes_an_alert_with_process_and_ancestry() {
    if !can_run_ebpf() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _up = Process(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["up", "--insecure-http", "--cluster", "e2e", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .env("PALISADE_ADMIN_TOKEN", ADMIN)
            .env("PALISADE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let status_file = dir.path().join("agent/sensor-status.json");
    let started = Instant::now();
    while !status_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "palisade up did not start its sensor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let staged =
        StagedDir(Path::new("/dev/shm").join(format!("palisade-e2e-{}", std::process::id())));
    std::fs::create_dir_all(&staged.0).unwrap();
    let program = staged.0.join("stage2");
    std::fs::copy("/bin/true", &program).unwrap();
    let started = Instant::now();
    let alert = loop {
        // Run it again until seen: the sensor may still be attaching its probes.
        let status = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{} --from-test", program.display()))
            .status()
            .unwrap();
        assert!(status.success());
        if let Some(alerts) = alerts_of_rule(&client, &base).await
            && let Some(alert) = alerts.into_iter().next()
        {
            break alert;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no `{RULE}` alert reached the store within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    assert_eq!(alert["severity"], "medium");
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["details"]["category"], "intrusion");
    assert_eq!(alert["details"]["mitre"], "T1036.005");
    assert_eq!(
        alert["details"]["process"]["exe"],
        program.display().to_string()
    );
    assert!(
        alert["details"]["process"]["cmdline"]
            .as_str()
            .unwrap()
            .ends_with("--from-test"),
        "{alert:#}"
    );
    let ancestry = alert["details"]["ancestry"].as_array().unwrap();
    assert!(
        ancestry.iter().any(
            |ancestor| ancestor["exe"].as_str().unwrap().ends_with("/sh")
                || ancestor["exe"].as_str().unwrap().ends_with("/dash")
        ),
        "the shell that started it is in the ancestry: {ancestry:#?}"
    );
    assert!(
        alert["asset"]["node"]
            .as_str()
            .is_some_and(|node| !node.is_empty())
    );
    assert_eq!(alert["details"]["raw_event"]["event"]["kind"], "execve");

    let status = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["agent", "--status", "--output", "json", "--data-dir"])
        .arg(dir.path().join("agent"))
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["sensor"]["backend"], "ebpf", "{status:#}");
}
