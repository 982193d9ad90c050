//! The agent link end to end, with real processes: reports queued in an agent's outbox reach
//! the server's store exactly once, although the agent and then the server are killed with
//! SIGKILL mid-stream and restarted.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use palisade_model::{FindingReport, Severity};
use palisade_testdata::{KillOnDrop, findings::shell_alert, free_port};
use serde_json::Value;

const ADMIN: &str = "agent-link-test-admin-token";
const REPORTS: usize = 30_000;

fn palisade() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .env("PALISADE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn start_server(data_dir: &Path, port: u16) -> KillOnDrop {
    KillOnDrop(
        palisade()
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("PALISADE_ADMIN_TOKEN", ADMIN)
            .spawn()
            .unwrap(),
    )
}

fn start_agent(agent_dir: &Path, port: u16, ca: &Path, join_token: &str) -> KillOnDrop {
    KillOnDrop(
        palisade()
            .args([
                "agent",
                "--server",
                &format!("https://127.0.0.1:{port}"),
                "--cluster",
                "prod",
                "--name",
                "node-1",
                "--batch-size",
                "100",
                // Exact counts: the host's own runtime alerts must not mix in.
                "--no-sensor",
            ])
            .arg("--data-dir")
            .arg(agent_dir)
            .arg("--ca-cert")
            .arg(ca)
            .args(["--join-token", join_token])
            .spawn()
            .unwrap(),
    )
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Option<Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    async fn stored(&self) -> Option<u64> {
        let counts = self.get("/api/v1/alerts/stats").await?;
        Some(
            ["critical", "high", "medium", "low", "info"]
                .iter()
                .filter_map(|name| counts[name].as_u64())
                .sum(),
        )
    }

    async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(u64) -> bool,
    ) -> u64 {
        let started = Instant::now();
        loop {
            if let Some(stored) = self.stored().await
                && done(stored)
            {
                return stored;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn write_reports(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for index in 0..REPORTS {
        // Of every severity: the stats the test counts by add up all five.
        let report = FindingReport {
            severity: Severity::ALL[index % 5],
            ..shell_alert(index as u32)
        };
        serde_json::to_writer(&mut file, &report).unwrap();
        file.write_all(b"\n").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_lost_or_duplicated_across_kill_9_of_either_side() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let agent_dir = dir.path().join("agent");
    let port = free_port();
    let mut server = start_server(&server_dir, port);
    let ca_path = server_dir.join("tls/ca.pem");
    let started = Instant::now();
    while !ca_path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not create its CA"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap();
    let api = Api {
        client: reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        base: format!("https://127.0.0.1:{port}"),
    };
    api.wait_until("the server answers", Duration::from_secs(30), |_| true)
        .await;
    let join: Value = api
        .client
        .post(format!("{}/api/v1/tokens", api.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "node-1 join", "role": "join"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let join_token = join["token"].as_str().unwrap().to_owned();

    let reports = dir.path().join("reports.jsonl");
    write_reports(&reports);
    let status = palisade()
        .args(["agent", "enqueue", "--data-dir"])
        .arg(&agent_dir)
        .arg(&reports)
        .status()
        .unwrap();
    assert!(status.success());

    let agent = start_agent(&agent_dir, port, &ca_path, &join_token);
    let seen = api
        .wait_until("some reports arrived", Duration::from_secs(60), |stored| {
            stored >= 2_000
        })
        .await;
    drop(agent); // SIGKILL mid-stream.
    assert!(
        seen < REPORTS as u64,
        "the agent finished before it could be killed; raise REPORTS"
    );

    let _agent = start_agent(&agent_dir, port, &ca_path, &join_token);
    let before_server_kill = api
        .wait_until("more reports arrived", Duration::from_secs(60), |stored| {
            stored >= seen + 4_000
        })
        .await;
    let _ = server.0.kill(); // SIGKILL mid-stream.
    let _ = server.0.wait();
    assert!(
        before_server_kill < REPORTS as u64,
        "the agent finished before the server could be killed; raise REPORTS"
    );
    std::thread::sleep(Duration::from_millis(500));
    server = start_server(&server_dir, port);

    let stored = api
        .wait_until("every report arrived", Duration::from_secs(180), |stored| {
            stored >= REPORTS as u64
        })
        .await;
    // Give a duplicate, if the link produced one, the chance to land before counting.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(api.stored().await.unwrap(), stored);
    assert_eq!(stored, REPORTS as u64, "every report stored exactly once");

    // Every finding has count 1: nothing was aggregated twice either.
    let mut cursor = String::new();
    let (mut findings, mut observations) = (0u64, 0u64);
    loop {
        let page = api
            .get(&format!("/api/v1/alerts?limit=1000&cursor={cursor}"))
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            findings += 1;
            observations += item["count"].as_u64().unwrap();
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((findings, observations), (REPORTS as u64, REPORTS as u64));

    let status = palisade()
        .args(["agent", "--status", "--output", "json", "--data-dir"])
        .arg(&agent_dir)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["outbox_pending"], 0);
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["sensor"]["backend"], "none");
    drop(server);
}
