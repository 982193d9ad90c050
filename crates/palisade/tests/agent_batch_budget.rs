//! `--agent-batch-budget-mib` of `palisade server` and `palisade up`, and what an agent shows
//! of the budget: a value out of range or not a number is refused, naming the option; a set
//! budget takes effect: at 64 MiB an agent's share is 32 MiB (128 MiB by default gives 64), so
//! one stalled request of the largest batch in the agent's name defers the agent's own
//! batches, and `palisade agent --status` counts those deferrals (in its table, JSON and
//! Prometheus outputs) and says when the last was.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_testdata::KillOnDrop;
use serde_json::Value;
use support::server_and_agent::Server;

const ADMIN: &str = "agent-batch-budget-admin-token-0123456789";
const ALERTS: u32 = 5;

#[test]
fn a_bad_budget_is_refused_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["server", "up"] {
        for (value, why) in [
            ("0", "64 to 1048576 MiB"),
            // One batch: an agent's share would leave no room for another's batch.
            ("32", "64 to 1048576 MiB"),
            ("1048577", "64 to 1048576 MiB"),
            ("128MiB", "not a whole number of MiB"),
        ] {
            let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
                .arg(command)
                .arg("--data-dir")
                .arg(dir.path())
                .args(["--agent-batch-budget-mib", value])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command} {value}: {stderr}");
            assert!(
                stderr.contains("--agent-batch-budget-mib") && stderr.contains(why),
                "{command} {value}: {stderr}"
            );
        }
    }
    // Nothing was started.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_small_budget_defers_and_the_agent_status_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--agent-batch-budget-mib", "64"], ADMIN);
    let api = &server.api;
    let join = api
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(serde_json::json!({"name": "budget agent", "role": "join"})),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent_dir = dir.path().join("agent");
    let _agent = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["agent", "--server", &api.base, "--join-token", &join])
            .args(["--cluster", "prod", "--name", "node-1", "--no-sensor"])
            .args(["--no-scheduled-scans", "--data-dir"])
            .arg(&agent_dir)
            .env("PALISADE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let credential = wait_for("the agent to enroll", || {
        let text = std::fs::read_to_string(agent_dir.join("credential.json")).ok()?;
        serde_json::from_str::<palisade_agent::Credential>(&text).ok()
    })
    .await;
    // Before anything is deferred, the status says so.
    wait_for("the agent's link status", || {
        let link = status(&agent_dir)["link"].clone();
        (link["batches_deferred"] == 0).then_some(())
    })
    .await;

    // A batch of the largest size, stalled in the agent's name, holds its whole share; the
    // agent's own batches are then deferred.
    let stall = hold_share(&api.base, &credential.token).await;
    let outbox = palisade_agent::Outbox::open(&agent_dir).await.unwrap();
    outbox
        .push(
            &(0..ALERTS)
                .map(palisade_testdata::findings::shell_alert)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    drop(outbox);
    let link = wait_for("a deferral in the agent's status", || {
        let link = status(&agent_dir)["link"].clone();
        (link["batches_deferred"].as_u64()? >= 1).then_some(link)
    })
    .await;
    assert!(
        link["last_deferred_at"].as_str().unwrap() >= link["started_at"].as_str().unwrap(),
        "{link}"
    );
    let table = String::from_utf8(support::agent_status(&agent_dir, "table").stdout).unwrap();
    let deferred_row = table
        .lines()
        .find(|line| line.contains("batches deferred"))
        .unwrap_or_else(|| panic!("no deferrals in {table}"));
    assert!(!deferred_row.contains("| 0 since"), "{table}");
    let last_row = table
        .lines()
        .find(|line| line.contains("last deferred"))
        .unwrap_or_else(|| panic!("no last deferral in {table}"));
    assert!(!last_row.contains("never"), "{table}");
    let metrics =
        String::from_utf8(support::agent_status(&agent_dir, "prometheus").stdout).unwrap();
    let deferred: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("palisade_agent_batches_deferred_total "))
        .unwrap_or_else(|| panic!("no deferral counter in {metrics}"))
        .parse()
        .unwrap();
    assert!(deferred >= 1, "{metrics}");
    assert_eq!(status(&agent_dir)["outbox_pending"], ALERTS);

    // The stalled request gone, its share comes back: the agent delivers after its wait.
    drop(stall);
    wait_for("the deferred alerts to be delivered", || {
        (status(&agent_dir)["outbox_pending"] == 0).then_some(())
    })
    .await;
    let stats = api
        .call(reqwest::Method::GET, "/api/v1/alerts/stats", None)
        .await;
    assert_eq!(
        stats["high"].as_u64().unwrap_or(0) + stats["critical"].as_u64().unwrap_or(0),
        u64::from(ALERTS),
        "{stats}"
    );
    let after = status(&agent_dir)["link"]["batches_deferred"]
        .as_u64()
        .unwrap();
    assert!(after >= link["batches_deferred"].as_u64().unwrap());
}

/// `palisade agent --status --output json` of `agent_dir`.
fn status(agent_dir: &std::path::Path) -> Value {
    serde_json::from_slice(&support::agent_status(agent_dir, "json").stdout).unwrap()
}

/// Polls `found` until it takes something, for at most 30 s.
async fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A stalled batch of the largest size in the name of the agent of `token`, holding that
/// agent's whole share. A batch of the agent's own in progress may keep it from taking the
/// share (it is then deferred itself), so it is stalled again until it holds it: an empty batch
/// in the agent's name is then deferred (503) rather than refused as malformed (422).
async fn hold_share(base: &str, token: &str) -> std::net::TcpStream {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let stall = stall_batch(base, token, palisade_model::MAX_BATCH_BYTES);
        // The server takes the share once it has the headers.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = client
            .post(format!("{base}/api/v1/agent/batches"))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return stall;
        }
        assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stalled batch took no share"
        );
    }
}

/// A batch request of `length` bytes with `token` whose body stops after its first bytes: the
/// server holds its share while the connection stays open (up to its 30 s request timeout).
fn stall_batch(base: &str, token: &str, length: usize) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /api/v1/agent/batches HTTP/1.1\r\nHost: palisade\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"sequence\""
    )
    .unwrap();
    stream
}
