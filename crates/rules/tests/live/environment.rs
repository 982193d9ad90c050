//! `proc.env` live: the eBPF sensor captures environments because a loaded rule reads one,
//! and a rule on a variable fires on a real exec; without such a rule nothing is captured.
//! Needs root and eBPF (no container).

use std::process::Command;
use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind};
use palisade_rules::{Alert, Engine, EngineConfig, RuleSet, RuleSource};
use palisade_sensor::{BackendChoice, Sensor, SensorConfig};

pub fn can_run_ebpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    palisade_testdata::capability(
        "root and eBPF (kernel BTF)",
        is_root && std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
    )
}

/// An engine for one rule on execs of /bin/true with `marker`, with `condition` and
/// `output` added.
pub fn engine(marker: &str, condition: &str, output: &str) -> Engine {
    let text = format!(
        "- rule: Marked exec\n  desc: test\n  condition: evt.type = execve and \
         proc.args contains {marker}{condition}\n  output: \"{output}\"\n  priority: WARNING\n"
    );
    let rule_set = RuleSet::load(&[RuleSource {
        name: "environment.yaml".into(),
        text,
    }]);
    assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
    Engine::new(rule_set, &EngineConfig::default())
}

/// The sensor the agent would start for `engine`: its kinds, environments only when it reads
/// one and descriptor state only when it reads that.
pub fn sensor_for(engine: &Engine) -> Sensor {
    sensor_on(engine, BackendChoice::Ebpf)
}

/// The same on `backend`.
pub fn sensor_on(engine: &Engine, backend: BackendChoice) -> Sensor {
    let config = SensorConfig {
        kinds: Some(engine.event_kinds().collect()),
        backend,
        read_cgroups: engine.reads_cgroups(),
        capture_environment: engine.reads_environment(),
        read_fd_state: engine.reads_fd_state(),
        count_open_fds: engine.counts_open_fds(),
        read_std_fds: engine.reads_std_fds(),
        ..SensorConfig::default()
    };
    config.build().expect("the sensor starts")
}

fn run_true(marker: &str, test_value: &str) {
    let status = Command::new("/bin/true")
        .arg(marker)
        .env("PALISADE_TEST", test_value)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The exec events of /bin/true with `marker` (until `n` are seen or 10 s pass) and the
/// alerts they raised.
pub fn collect(
    sensor: &mut Sensor,
    engine: &mut Engine,
    marker: &str,
    n: usize,
) -> (Vec<Event>, Vec<Alert>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut execs, mut alerts, mut events) = (Vec::new(), Vec::new(), Vec::new());
    while execs.len() < n && Instant::now() < deadline {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
        for event in events.drain(..) {
            if event.kind == EventKind::Execve && event.process.args.iter().any(|arg| arg == marker)
            {
                engine.process(&event, &mut alerts);
                execs.push(event);
            }
        }
    }
    (execs, alerts)
}

#[test]
fn a_rule_on_an_environment_variable_fires_live() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-env-{}", std::process::id());
    let mut engine = engine(
        &marker,
        " and proc.env[PALISADE_TEST] = x",
        "test=%proc.env[PALISADE_TEST] cmd=%proc.cmdline",
    );
    assert!(engine.reads_environment());
    let mut sensor = sensor_for(&engine);
    run_true(&marker, "y");
    run_true(&marker, "x");
    let (execs, alerts) = collect(&mut sensor, &mut engine, &marker, 2);
    assert_eq!(execs.len(), 2, "both execs seen");
    assert_eq!(alerts.len(), 1, "only PALISADE_TEST=x fires: {alerts:?}");
    assert_eq!(alerts[0].output, format!("test=x cmd=true {marker}"));
    assert!(
        alerts[0]
            .fields
            .contains(&("proc.env[PALISADE_TEST]".to_owned(), "x".to_owned())),
        "{:?}",
        alerts[0].fields
    );
}

#[test]
fn without_a_rule_reading_it_no_environment_is_captured_live() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-noenv-{}", std::process::id());
    let mut engine = engine(&marker, "", "cmd=%proc.cmdline");
    assert!(!engine.reads_environment());
    let mut sensor = sensor_for(&engine);
    run_true(&marker, "x");
    let (execs, alerts) = collect(&mut sensor, &mut engine, &marker, 1);
    assert_eq!(execs.len(), 1);
    assert_eq!(alerts.len(), 1, "the rule without the environment fires");
    assert!(
        execs[0].process.env.is_empty(),
        "nothing captured: {:?}",
        execs[0].process.env
    );
    assert_eq!(alerts[0].output, format!("cmd=true {marker}"));
}
