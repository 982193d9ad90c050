//! What the end-to-end test files of a real `palisade server` and a `palisade agent` process
//! (without a sensor) share: the server started on a fresh directory, its API called as the
//! admin, a vulnerability database made of OSV advisories, and an agent that scans a given
//! host root with it, enrolled, logging plain `key=value` fields to a file the test reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_testdata::{KillOnDrop, Palisade, Ready, run_checked};
use serde_json::{Value, json};

/// A `palisade server` a test started (stopped when dropped) and a client of its API.
pub struct Server {
    /// The process and its URL.
    pub palisade: Palisade,
    /// Its API, called as the admin.
    pub api: Api,
}

impl Server {
    /// Starts `palisade server` with `arguments` in `<dir>/server`, `admin_token` its first
    /// admin token, and waits until it answers.
    pub fn start(dir: &Path, arguments: &[&str], admin_token: &'static str) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
        command
            .arg("server")
            .args(arguments)
            .env("PALISADE_LOG", "warn");
        let palisade = Palisade::start(command, &dir.join("server"), admin_token, Ready::Healthy);
        let api = Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: palisade.base.clone(),
            admin_token,
        };
        Server { palisade, api }
    }
}

/// The server's API, called as the admin.
pub struct Api {
    client: reqwest::Client,
    /// The server's URL, `http://127.0.0.1:<port>`.
    pub base: String,
    admin_token: &'static str,
}

impl Api {
    /// Calls `method path` with the JSON `body`, if any: the JSON answer, which must be a
    /// success.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Queues a rescan of agent `agent_id`'s vulnerabilities: the task's id.
    pub async fn start_rescan(&self, agent_id: &str) -> String {
        let task = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/agents/{agent_id}/tasks"),
                Some(json!({"spec": {"kind": "rescan_vulnerabilities"}})),
            )
            .await;
        task["id"].as_str().unwrap().to_owned()
    }

    /// Task `task_id` as the API shows it now.
    pub async fn task(&self, task_id: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/tasks/{task_id}"),
            None,
        )
        .await
    }

    /// Polls the task until `done` accepts it (at most `seconds`).
    pub async fn task_until(
        &self,
        task_id: &str,
        seconds: u64,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let task = self.task(task_id).await;
            if done(&task) {
                return task;
            }
            assert!(
                started.elapsed() < Duration::from_secs(seconds),
                "timed out after {seconds} s: {task:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether a task (its JSON) has ended, done or failed.
pub fn task_ended(task: &Value) -> bool {
    matches!(task["state"].as_str(), Some("done" | "failed"))
}

/// A `palisade agent` process enrolled with the test's server (killed when dropped).
pub struct Agent {
    /// The process.
    pub process: KillOnDrop,
    /// Its id on the server.
    pub id: String,
    /// Its log (stderr, level info, plain `key=value` fields).
    pub log: PathBuf,
}

impl Agent {
    /// Starts `palisade agent` as node `name` of `cluster`, without sensor or scheduled scans,
    /// with its data directory `<dir>/agent`, its log `<dir>/agent.log`, the vulnerability
    /// database `database` and the host root `scan_root`; joins it with a join token named
    /// `token_name` and waits until the server lists it.
    pub async fn enrol(
        server: &Server,
        dir: &Path,
        token_name: &str,
        (cluster, name): (&str, &str),
        database: &Path,
        scan_root: &Path,
    ) -> Agent {
        let api = &server.api;
        let join = api
            .call(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": token_name, "role": "join"})),
            )
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let log = dir.join("agent.log");
        let process = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_palisade"))
                .args(["agent", "--server", &api.base, "--join-token", &join])
                .args(["--cluster", cluster, "--name", name, "--no-sensor"])
                .args(["--no-scheduled-scans", "--data-dir"])
                .arg(dir.join("agent"))
                .arg("--vulndb")
                .arg(database)
                .arg("--scan-root")
                .arg(scan_root)
                .env("PALISADE_LOG", "info")
                // Plain `key=value` fields, which the tests read.
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        let id = loop {
            let agents = api.call(reqwest::Method::GET, "/api/v1/agents", None).await;
            if let Some(id) = agents.as_array().and_then(|agents| {
                agents
                    .iter()
                    .find(|agent| agent["name"] == name)
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
        Agent { process, id, log }
    }
}

/// Writes `<dir>/<id>.json`, an OSV advisory `id` for the Debian 12 package `package`, fixed
/// in `fixed`: its path.
pub fn write_advisory(dir: &Path, id: &str, package: &str, fixed: &str) -> PathBuf {
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

/// Imports the advisories of `feed` into the vulnerability database `database` (`palisade db
/// import`, which must succeed).
pub fn import(database: &Path, feed: &Path) {
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
