//! What the end-to-end test files of `palisade up` with its sensor share: the process started
//! on a fresh data directory and waited for until its sensor runs, and its API read as the
//! admin, once or until an answer shows what the test waits for; and (`server_and_agent`)
//! what those of a `palisade server` and an enrolled `palisade agent` process share. Also the
//! capability check of the tests that run podman containers of a busybox rootfs.

// Each test file is its own crate and uses only what it needs.
#![allow(dead_code)]

pub mod server_and_agent;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use palisade_testdata::{Palisade, Ready};
use serde_json::Value;

/// `palisade up` started by a test (stopped when dropped), its data directory and a client of
/// its API.
pub struct Up {
    /// The process and its URL.
    pub palisade: Palisade,
    client: reqwest::Client,
    admin_token: &'static str,
    data_dir: tempfile::TempDir,
}

impl Up {
    /// Starts `command` (`palisade up …` with the test's arguments) on a fresh data directory
    /// with `admin_token` as the first admin token, and waits until its sensor started.
    pub fn start(command: Command, admin_token: &'static str) -> Up {
        let data_dir = tempfile::tempdir().unwrap();
        let palisade = Palisade::start(command, data_dir.path(), admin_token, Ready::SensorStarted);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Up {
            palisade,
            client,
            admin_token,
            data_dir,
        }
    }

    /// The agent's data directory (its outbox, its sensor's status file).
    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.path().join("agent")
    }

    /// GETs `path` with `query` as the admin: the JSON answer, `None` when there is none (the
    /// request failed or the answer is not JSON).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        self.client
            .get(format!("{}{path}", self.palisade.base))
            .query(query)
            .bearer_auth(self.admin_token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// GETs `path` with `query` as the admin until `found` takes what the test waits for from
    /// the answer; fails the test, naming `what` and the last answer, after `limit`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        path: &str,
        query: &[(&str, &str)],
        found: impl Fn(&Value) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            let answer = self.get(path, query).await;
            if let Some(wanted) = answer.as_ref().and_then(&found) {
                return wanted;
            }
            assert!(
                started.elapsed() < limit,
                "{what} not within {limit:?}; the last answer to {path}: {answer:#?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// POSTs to `path` as the admin, with no body: the JSON answer.
    pub async fn post(&self, path: &str) -> Value {
        self.client
            .post(format!("{}{path}", self.palisade.base))
            .bearer_auth(self.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// `palisade agent --status --output <output>` of the agent whose data directory is
/// `agent_dir`, which must succeed.
pub fn agent_status(agent_dir: &Path, output: &str) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["agent", "--status", "--output", output, "--data-dir"])
        .arg(agent_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test can run podman containers of a rootfs holding `/bin/busybox` (root,
/// podman and busybox-static); when not, says why it skips, or fails under CI
/// ([`palisade_testdata::capability`]).
pub fn podman_and_busybox() -> bool {
    let ready =
        is_root() && Path::new("/usr/bin/podman").exists() && Path::new("/bin/busybox").exists();
    palisade_testdata::capability("root, podman and busybox-static", ready)
}

/// [`agent_status`] as JSON.
pub fn agent_status_json(agent_dir: &Path) -> Value {
    serde_json::from_slice(&agent_status(agent_dir, "json").stdout).unwrap()
}
