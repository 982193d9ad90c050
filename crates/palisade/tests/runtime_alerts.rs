//! Runtime detection end to end, for real: `palisade up` as root starts the eBPF sensor and
//! the default rules; a program executed from /dev/shm becomes an alert in the server's store,
//! with its process, its ancestry and the node, and `palisade agent --status` shows the
//! sensor that saw it. With a deliberately tiny ring buffer under an event storm (thousands of
//! opens), the status file the running agent refreshes and `palisade agent --status` (JSON and
//! table) show the lost events per CPU and in total, and the firewall's lost connect reports
//! (none here); once the agent is killed, the status says it is stale. A rule tagged
//! `response.kill_process` and named with `--respond` has its process killed by SIGKILL within
//! seconds, the alert recording it; the same request from a rule not named leaves its process
//! running and its alert without a response; a `--respond` rule that is not loaded or requests
//! nothing stops the agent and the monitor with an error naming it.

mod support;

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Up, agent_status, agent_status_json};

const ADMIN: &str = "runtime-alerts-test-admin-token";
const RULE: &str = "Execution from /dev/shm";

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

/// The query of `/api/v1/alerts` for the alerts of `rule` in cluster `e2e`.
fn of_rule(rule: &str) -> [(&'static str, &str); 2] {
    [("rule", rule), ("cluster", "e2e")]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_run_from_dev_shm_becomes_an_alert_with_process_and_ancestry() {
    if !can_run_ebpf() {
        return;
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["up", "--cluster", "e2e"])
        .env("PALISADE_LOG", "warn");
    let up = Up::start(command, ADMIN);

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
        if let Some(page) = up.get("/api/v1/alerts", &of_rule(RULE)).await
            && let Some(alert) = page["items"].as_array().and_then(|items| items.first())
        {
            break alert.clone();
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

    let status = agent_status_json(&up.agent_dir());
    assert_eq!(status["sensor"]["backend"], "ebpf", "{status:#}");
}

#[test]
fn a_tiny_ring_buffer_under_an_event_storm_shows_lost_events_in_the_agent_status() {
    if !can_run_ebpf() {
        return;
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["up", "--cluster", "status"])
        .args(["--sensor-ring-buffer-bytes", "4096"])
        .env("PALISADE_LOG", "error");
    let mut up = Up::start(command, "sensor-status-test-admin-token");
    let agent_dir = up.agent_dir();
    let status_file = agent_dir.join("sensor-status.json");

    // Storms of opens until the refreshed file shows losses: a 4 KiB ring holds a handful of
    // events, and the agent reads it every 200 ms.
    let started = Instant::now();
    let from_file = loop {
        let storm = Command::new("/bin/sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 20000 ]; do : < /etc/hostname; i=$((i+1)); done",
            ])
            .status()
            .unwrap();
        assert!(storm.success());
        std::thread::sleep(Duration::from_millis(2500));
        let file: Value = serde_json::from_slice(&std::fs::read(&status_file).unwrap()).unwrap();
        if file["events"]["lost"].as_u64().unwrap() > 0 {
            break file;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lost events in the status file after 60 s of storms: {file:#}"
        );
    };
    assert_eq!(from_file["backend"], "ebpf", "{from_file:#}");
    assert_eq!(from_file["running"], true);

    let status = agent_status_json(&agent_dir);
    let sensor = &status["sensor"];
    assert_eq!(sensor["state"], "running", "{status:#}");
    assert_eq!(sensor["backend"], "ebpf");
    let events = &sensor["events"];
    let lost = events["lost"].as_u64().unwrap();
    assert!(lost > 0, "{status:#}");
    assert!(events["delivered"].as_u64().unwrap() > 0, "{status:#}");
    assert!(events["last_drop_at"].is_string(), "{status:#}");
    let per_cpu = events["per_cpu"].as_array().unwrap();
    assert!(!per_cpu.is_empty(), "{status:#}");
    assert_eq!(
        per_cpu
            .iter()
            .map(|cpu| cpu["lost"].as_u64().unwrap())
            .sum::<u64>(),
        lost,
        "the total is the sum over CPUs: {status:#}"
    );
    assert!(
        sensor["kinds"]
            .as_array()
            .unwrap()
            .contains(&"openat".into())
    );
    assert!(sensor["missing_fields"].as_array().unwrap().is_empty());
    // No firewall runs: no connect report was lost (the firewall's own flood test checks a
    // loss is counted), and the status says so rather than leaving the count out.
    assert_eq!(sensor["connect_reports"]["lost"], 0, "{status:#}");
    assert!(
        sensor["connect_reports"]["last_loss_at"].is_null(),
        "{status:#}"
    );

    let table = String::from_utf8(agent_status(&agent_dir, "table").stdout).unwrap();
    assert!(table.contains("ebpf (running, pid "), "{table}");
    assert!(table.contains("events lost"), "{table}");
    assert!(table.contains("connect reports lost"), "{table}");

    // Killed without a chance to stop its sensor: the file still says running, the status
    // says stale.
    up.palisade.process.kill().unwrap();
    up.palisade.process.wait().unwrap();
    let status = agent_status_json(&agent_dir);
    assert_eq!(status["sensor"]["state"], "stale", "{status:#}");
    assert!(status["sensor"]["events"]["lost"].as_u64().unwrap() >= lost);
    let table = String::from_utf8(agent_status(&agent_dir, "table").stdout).unwrap();
    assert!(table.contains("is not running"), "{table}");
}

/// Without eBPF (`--sensor-backend fallback`: the proc connector and fanotify) the agent says
/// which event fields it cannot fill: `palisade agent --status` (JSON and table) and the
/// node's asset record on the server list the same reduced field set.
#[tokio::test(flavor = "multi_thread")]
async fn the_fallbacks_reduced_field_set_is_in_the_status_and_the_nodes_asset_record() {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    if !palisade_testdata::capability("root (proc connector, fanotify)", is_root) {
        return;
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args([
            "up",
            "--cluster",
            "fallback",
            "--sensor-backend",
            "fallback",
        ])
        .env("PALISADE_LOG", "warn");
    let up = Up::start(command, ADMIN);
    let agent_dir = up.agent_dir();

    let status = agent_status_json(&agent_dir);
    let sensor = &status["sensor"];
    assert_eq!(sensor["backend"], "fallback", "{status:#}");
    assert_eq!(sensor["state"], "running", "{status:#}");
    let missing: Vec<String> = serde_json::from_value(sensor["missing_fields"].clone()).unwrap();
    for field in ["process.loginuid", "cgroup_id", "ret"] {
        assert!(missing.iter().any(|name| name == field), "{status:#}");
    }
    let table = String::from_utf8(agent_status(&agent_dir, "table").stdout).unwrap();
    assert!(table.contains("fallback (running, pid "), "{table}");
    assert!(
        table.contains("missing fields") && table.contains("process.loginuid"),
        "{table}"
    );

    let node = up
        .wait_for(
            "the node's registration",
            Duration::from_secs(60),
            "/api/v1/assets",
            &[("kind", "node"), ("cluster", "fallback")],
            |page| page["items"].as_array()?.first().cloned(),
        )
        .await;
    assert_eq!(node["attributes"]["sensor"], "fallback", "{node:#}");
    assert_eq!(
        node["attributes"]["sensor_missing_fields"], sensor["missing_fields"],
        "{node:#}"
    );
}

const KILL_RULE: &str = "Respond test kills its marked program";
const KEEP_RULE: &str = "Respond test leaves its marked program";
const DENY_RULE: &str = "Respond test denies its marked program";

/// A rule that alerts when `program` starts and requests the response `action`.
fn response_rule(name: &str, program: &Path, action: &str) -> String {
    format!(
        "- rule: {name}\n  desc: The test's marked program runs.\n  condition: 'evt.type in (execve, execveat) and evt.res = SUCCESS and proc.exepath = \"{}\"'\n  output: marked program started (exe=%proc.exepath pid=%proc.pid)\n  priority: WARNING\n  tags: [process, {action}]\n",
        program.display()
    )
}

/// Waits up to `limit` for `child` to exit on its own.
fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Fails the test unless `child` dies by SIGKILL within 5 s (`not_killed`: it was still
/// running then, and is killed and reaped).
fn assert_killed_within_5_s(child: &mut Child, not_killed: &str) {
    let status = exit_within(child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = status.expect(not_killed);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
}

/// Whether `child` was still running; it is killed and reaped either way.
fn was_running(child: &mut Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// The first alert of `rule` in the store whose process is `pid`, waiting up to 30 s.
async fn alert_of_process(up: &Up, rule: &str, pid: u32) -> Value {
    up.wait_for(
        &format!("a `{rule}` alert for pid {pid} in the store"),
        Duration::from_secs(30),
        "/api/v1/alerts",
        &of_rule(rule),
        |page| {
            page["items"]
                .as_array()?
                .iter()
                .find(|alert| alert["details"]["process"]["pid"] == pid)
                .cloned()
        },
    )
    .await
}

/// Two rules request `response.kill_process`, only one is named with `--respond`: its
/// program (a copy of `sleep`) dies by SIGKILL within 5 s of starting and its alert records
/// the kill; the other rule's program keeps running after its alert is stored, and that alert
/// carries no response. A third rule, named, requests `response.deny_exec`: its program's
/// first run goes on (the exec already happened) and its alert records the denial; the next
/// run of that file is killed at exec.
#[tokio::test(flavor = "multi_thread")]
async fn only_rules_named_with_respond_kill_their_process_or_deny_its_exec() {
    if !can_run_ebpf() {
        return;
    }
    let programs = tempfile::tempdir().unwrap();
    let kill_program = programs.path().join("palisade-respond-kill");
    let keep_program = programs.path().join("palisade-respond-keep");
    let deny_program = programs.path().join("palisade-respond-deny");
    for program in [&kill_program, &keep_program, &deny_program] {
        std::fs::copy("/bin/sleep", program).unwrap();
    }
    let rules: PathBuf = programs.path().join("respond.yaml");
    std::fs::write(
        &rules,
        response_rule(KILL_RULE, &kill_program, "response.kill_process")
            + &response_rule(KEEP_RULE, &keep_program, "response.kill_process")
            + &response_rule(DENY_RULE, &deny_program, "response.deny_exec"),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["up", "--cluster", "e2e", "--no-default-rules", "--rules"])
        .arg(&rules)
        .args(["--respond", KILL_RULE, "--respond", DENY_RULE])
        .env("PALISADE_LOG", "warn");
    let up = Up::start(command, ADMIN);

    let mut killed = Command::new(&kill_program).arg("30").spawn().unwrap();
    assert_killed_within_5_s(&mut killed, "the marked program was not killed within 5 s");
    let alert = alert_of_process(&up, KILL_RULE, killed.id()).await;
    let response = &alert["details"]["raw_event"]["response"];
    assert_eq!(response.as_array().map(Vec::len), Some(1), "{alert:#}");
    assert_eq!(response[0]["action"], "response.kill_process", "{alert:#}");
    assert!(response[0]["done"].is_string(), "{alert:#}");

    let mut kept = Command::new(&keep_program).arg("30").spawn().unwrap();
    let alert = alert_of_process(&up, KEEP_RULE, kept.id()).await;
    assert!(
        was_running(&mut kept),
        "the program of the rule not named with --respond was killed"
    );
    assert!(
        alert["details"]["raw_event"].get("response").is_none(),
        "{alert:#}"
    );

    let mut first = Command::new(&deny_program).arg("30").spawn().unwrap();
    let alert = alert_of_process(&up, DENY_RULE, first.id()).await;
    assert!(
        was_running(&mut first),
        "deny_exec killed the run that raised the alert"
    );
    let response = &alert["details"]["raw_event"]["response"];
    assert_eq!(response[0]["action"], "response.deny_exec", "{alert:#}");
    assert!(
        response[0]["done"]
            .as_str()
            .is_some_and(|done| done.contains("killed at exec")),
        "{alert:#}"
    );
    let mut second = Command::new(&deny_program).arg("30").spawn().unwrap();
    assert_killed_within_5_s(&mut second, "the denied program ran again");
}

/// `--respond` with a rule that is not loaded, or that requests no action, stops `palisade
/// agent` and `palisade monitor` at start with an error naming the rule and what it lacks.
#[test]
fn a_respond_rule_not_loaded_or_requesting_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("alert-only.yaml");
    std::fs::write(
        &rules,
        "- rule: Alert only\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: WARNING\n  tags: [process]\n",
    )
    .unwrap();
    let agent_dir = dir.path().join("agent");
    let cases = [
        (
            "No such rule",
            "--respond \"No such rule\": no rule of that name is loaded",
        ),
        (
            "Alert only",
            "--respond \"Alert only\": the rule requests no response action",
        ),
    ];
    for (rule, expected) in cases {
        for mut command in [
            {
                let mut agent = Command::new(env!("CARGO_BIN_EXE_palisade"));
                agent
                    .args(["agent", "--server", "http://127.0.0.1:9", "--data-dir"])
                    .arg(&agent_dir);
                agent
            },
            {
                let mut monitor = Command::new(env!("CARGO_BIN_EXE_palisade"));
                monitor.args(["monitor", "--duration", "1"]);
                monitor
            },
        ] {
            let mut child = command
                .args(["--no-default-rules", "--rules"])
                .arg(&rules)
                .args(["--respond", rule])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let status = exit_within(&mut child, Duration::from_secs(30));
            if status.is_none() {
                let _ = child.kill();
            }
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let status = status.unwrap_or_else(|| panic!("{command:?} still ran after 30 s"));
            assert!(!status.success(), "{command:?}: {status}");
            assert!(stderr.contains(expected), "{command:?}: {stderr}");
        }
    }
}
