//! `palisade monitor` against the real kernel: raw events and rule alerts as JSON lines, and
//! the response actions of the rules named with `--respond`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn can_run_ebpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    palisade_testdata::capability(
        "root and eBPF (kernel BTF)",
        is_root && Path::new("/sys/kernel/btf/vmlinux").exists(),
    )
}

/// Runs `palisade monitor ARGS --duration 20`, waits until its probes are attached, runs
/// `action`, and returns the first stdout line satisfying `matches`.
fn monitor_until(
    args: &[&str],
    action: impl FnOnce(),
    matches: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let mut monitor = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("monitor")
        .args(args)
        .args(["--output", "json", "--duration", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(monitor.stderr.take().unwrap());
    let mut line = String::new();
    // The first stderr line is the sensor status, printed once the probes are attached.
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "monitor exited before starting"
        );
        if line.contains("sensor_status") {
            break;
        }
    }
    action();
    let stdout = BufReader::new(monitor.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut found = None;
    for line in stdout.lines() {
        let value: serde_json::Value =
            serde_json::from_str(&line.unwrap()).expect("every line is JSON");
        if matches(&value) {
            found = Some(value);
            break;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    found
}

#[test]
fn monitor_events_prints_exec_events_as_json_lines() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-monitor-{}", std::process::id());
    let event = monitor_until(
        &["--events", "--kind", "execve"],
        || {
            Command::new("/bin/true").arg(&marker).status().unwrap();
        },
        |event| event["process"]["args"][0] == marker.as_str(),
    )
    .expect("the exec event");
    assert_eq!(event["kind"], "execve");
    assert_eq!(event["process"]["name"], "true");
    assert_eq!(
        event["process"]["exepath"],
        std::fs::canonicalize("/bin/true")
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert!(
        event["process"].get("args_truncated").is_none(),
        "whole arguments are not marked: {event}"
    );
}

/// An exec whose arguments pass the sensor's 4,095 bytes is marked in the JSON line, its last
/// argument cut at the limit.
#[test]
fn monitor_events_marks_arguments_cut_at_the_limit() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-monitor-long-{}", std::process::id());
    let long = "z".repeat(8_000);
    let event = monitor_until(
        &["--events", "--kind", "execve"],
        || {
            Command::new("/bin/true")
                .args([marker.as_str(), &long])
                .status()
                .unwrap();
        },
        |event| event["process"]["args"][0] == marker.as_str(),
    )
    .expect("the exec event");
    assert_eq!(event["process"]["args_truncated"], true, "{event}");
    let kept = event["process"]["args"][1].as_str().unwrap();
    assert_eq!(kept.len(), 4_095 - "/bin/true".len() - marker.len() - 2);
    assert!(kept.bytes().all(|byte| byte == b'z'));
}

/// Only the probes the loaded rules need are attached: a rules file whose one rule reads
/// `chroot` (the default rules left out) attaches chroot's exit program and the scheduler
/// programs the process table always needs, nothing for the calls no rule reads.
#[test]
fn monitor_attaches_only_the_probes_its_rules_need() {
    if !can_run_ebpf() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        r#"
- rule: Root directory changed
  desc: test rule
  condition: evt.type = chroot
  output: "%proc.name changed its root"
  priority: WARNING
"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["monitor", "--no-default-rules", "--rules"])
        .arg(&rules)
        .args(["--output", "json", "--duration", "1"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    let status: serde_json::Value = stderr
        .lines()
        .find_map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .filter(|value| value.get("sensor_status").is_some())
        })
        .unwrap_or_else(|| panic!("no sensor status in {stderr}"));
    let mut sources: Vec<&str> = status["sensor_status"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| source.as_str().unwrap())
        .collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        ["exit_chroot", "sched_exec", "sched_exit", "sched_fork"]
    );
}

#[test]
fn monitor_with_rules_prints_falco_style_alerts() {
    if !can_run_ebpf() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let marker = format!("palisade-secret-{}", std::process::id());
    let secret = dir.path().join(&marker);
    std::fs::write(&secret, "x").unwrap();
    std::fs::write(
        &rules,
        format!(
            r#"
- rule: Read of a marked file
  desc: test rule
  condition: evt.type in (open, openat, openat2) and fd.name endswith "{marker}"
  output: "%proc.name read %fd.name (user %user.name)"
  priority: WARNING
  tags: [test]
"#
        ),
    )
    .unwrap();
    let alert = monitor_until(
        &["--rules", rules.to_str().unwrap()],
        || {
            Command::new("/bin/cat")
                .arg(&secret)
                .stdout(Stdio::null())
                .status()
                .unwrap();
        },
        |alert| alert["rule"] == "Read of a marked file",
    )
    .expect("an alert");
    let canonical = std::fs::canonicalize(&secret).unwrap();
    assert_eq!(
        alert["output"],
        format!("cat read {} (user root)", canonical.display())
    );
    assert_eq!(alert["priority"], "Warning");
    assert_eq!(
        alert["output_fields"]["fd.name"],
        canonical.to_str().unwrap()
    );
    assert_eq!(alert["process"]["name"], "cat");
}

#[test]
fn monitor_without_rules_files_runs_the_default_rules_with_their_metadata() {
    if !can_run_ebpf() {
        return;
    }
    /// Removes the staged program, also when an assertion fails.
    struct Staged(std::path::PathBuf);
    impl Drop for Staged {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let staged =
        Staged(Path::new("/dev/shm").join(format!("palisade-monitor-{}", std::process::id())));
    std::fs::create_dir_all(&staged.0).unwrap();
    let program = staged.0.join("stage2");
    std::fs::copy("/bin/true", &program).unwrap();
    let alert = monitor_until(
        &[],
        || {
            Command::new(&program).status().unwrap();
        },
        |alert| alert["rule"] == "Execution from /dev/shm",
    );
    let alert = alert.expect("the default rule fires");
    assert_eq!(alert["category"], "intrusion");
    assert_eq!(alert["mitre"][0], "T1036.005");
    assert_eq!(alert["source"], "syscall");
    assert!(
        alert["suggested_response"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    assert_eq!(alert["process"]["exepath"], program.to_str().unwrap());
}

/// `monitor --respond RULE` carries out the rule's `response.kill_process`: the marked
/// program (a copy of `sleep`) dies by SIGKILL within 5 s and the alert line carries the
/// outcome in `response`.
#[test]
fn monitor_with_respond_kills_the_process_and_prints_the_response() {
    if !can_run_ebpf() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("palisade-monitor-respond");
    std::fs::copy("/bin/sleep", &program).unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            r#"
- rule: Marked program started
  desc: test rule
  condition: 'evt.type in (execve, execveat) and evt.res = SUCCESS and proc.exepath = "{}"'
  output: "marked program %proc.pid"
  priority: WARNING
  tags: [test, response.kill_process]
"#,
            program.display()
        ),
    )
    .unwrap();
    let mut child = None;
    let alert = monitor_until(
        &[
            "--no-default-rules",
            "--rules",
            rules.to_str().unwrap(),
            "--respond",
            "Marked program started",
        ],
        || child = Some(Command::new(&program).arg("30").spawn().unwrap()),
        |alert| alert["rule"] == "Marked program started",
    );
    let mut child = child.unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let alert = alert.expect("an alert");
    let status = status.expect("the marked program was not killed within 5 s");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert_eq!(alert["process"]["pid"], child.id(), "{alert:#}");
    assert_eq!(
        alert["response"][0]["action"], "response.kill_process",
        "{alert:#}"
    );
    assert!(
        alert["response"][0]["done"]
            .as_str()
            .is_some_and(|done| done.starts_with("killed process")),
        "{alert:#}"
    );
}
