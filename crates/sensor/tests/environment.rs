//! The process environment against the real kernel: captured at exec only when asked
//! (`SensorConfig::capture_environment`), bounded with its truncation marked, and kept in the
//! process table so that descendants' events carry their ancestors' environments.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{can_run_ebpf, marker, wait_for};
use palisade_event::{Event, EventKind};
use palisade_sensor::{BackendChoice, Sensor, SensorConfig};

fn sensor(capture_environment: bool) -> Sensor {
    let config = SensorConfig {
        kinds: Some([EventKind::Execve].into()),
        backend: BackendChoice::Ebpf,
        capture_environment,
        ..SensorConfig::default()
    };
    config.build().expect("the eBPF sensor starts")
}

/// The exec of /bin/true with `arg`.
fn exec_with_arg(sensor: &mut Sensor, arg: &str) -> Event {
    wait_for(sensor, Duration::from_secs(10), |event| {
        event.kind == EventKind::Execve
            && event.process.exepath == "/usr/bin/true"
            && event.process.args.iter().any(|each| each == arg)
    })
    .unwrap_or_else(|| panic!("an exec of /usr/bin/true with argument {arg}"))
}

#[test]
fn environment_is_captured_at_exec_and_reaches_descendants() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(true);
    let arg = marker("env");
    // sh runs with PALISADE_TEST=x and starts /bin/true (through env, which execs it) with
    // a different environment.
    let status = Command::new("/bin/sh")
        .args(["-c", "env -i PALISADE_CHILD=y /bin/true \"$0\"; :", &arg])
        .env_clear()
        .env("PALISADE_TEST", "x")
        .status()
        .unwrap();
    assert!(status.success());
    let event = exec_with_arg(&mut sensor, &arg);
    assert_eq!(event.process.env.as_slice(), ["PALISADE_CHILD=y"]);
    assert!(!event.process.env_truncated);
    let parent = event.ancestors.first().expect("the shell");
    assert_eq!(parent.name, "sh");
    assert!(
        parent.env.iter().any(|entry| entry == "PALISADE_TEST=x"),
        "the shell's environment, from the process table: {:?}",
        parent.env
    );
}

#[test]
fn a_long_environment_is_cut_at_a_whole_variable_and_marked_truncated() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(true);
    let arg = marker("longenv");
    // Entries are passed in key order: the small one first, then 6,000 bytes that do not
    // fit the 4,095 captured.
    let status = Command::new("/bin/true")
        .arg(&arg)
        .env_clear()
        .env("A_SMALL", "1")
        .env("B_BIG", "b".repeat(6000))
        .status()
        .unwrap();
    assert!(status.success());
    let event = exec_with_arg(&mut sensor, &arg);
    assert_eq!(
        event.process.env.as_slice(),
        ["A_SMALL=1"],
        "the cut variable is left out, not kept with a cut value"
    );
    assert!(event.process.env_truncated);
}

#[test]
fn environment_is_not_captured_unless_asked() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(false);
    let arg = marker("noenv");
    let status = Command::new("/bin/true")
        .arg(&arg)
        .env("PALISADE_TEST", "x")
        .status()
        .unwrap();
    assert!(status.success());
    let event = exec_with_arg(&mut sensor, &arg);
    assert!(event.process.env.is_empty(), "{:?}", event.process.env);
    assert!(!event.process.env_truncated);
    let json = serde_json::to_value(&event).unwrap();
    assert!(json["process"].get("env").is_none());
}
