//! The scenario suite run live: the real eBPF sensor and the default rules watch real podman
//! containers while the scenarios' steps run in them, and the host during a `cargo build` and
//! a `dpkg -i` (the tuning check).
//!
//! Every container runs one local image, built here from the host's busybox-static plus
//! `scenario-helper` (`helper.c`, built statically with clang) for the two behaviours busybox
//! has no applet for: memfd execution and ptrace attach. There is no registry to pull the
//! scenarios' nominal images from, so the live scenarios' steps use only busybox applets and
//! the helper. Network steps stay inside the container's own network
//! namespace (`--network none`; the container adds the address it connects to on its own
//! loopback device).
//!
//! Needs root, eBPF, podman, clang and busybox-static: skipped with the reason outside CI,
//! required in CI. Each test removes its containers and image.

mod harness;

use harness::{Image, Watcher};
use palisade_rules::{Place, Scenario, parse_scenarios};

/// The scenarios run live, from `scenarios/runtime.yaml`, by alert category. The others are
/// replay-only: they need what a busybox container here cannot provide (debugfs, an image from
/// a registry) or are about the host's own services (logrotate, module autoload, gdb).
const INTRUSION: &[&str] = &[
    "terminal shell in container",
    "shell spawned by web server",
    "reverse shell",
    "non-interactive shell in container is quiet",
    "drop and execute new binary",
    "memfd exec",
    "execution from /dev/shm",
    "sensitive file read",
];
const ESCAPE_AND_MALWARE: &[&str] = &[
    "cgroup release_agent write",
    "nsenter into host namespaces",
    "mount in privileged container",
    "host filesystem mount",
    "kernel module load attempt",
    "runtime socket access",
    "ptrace attach",
    "crypto miner name and stratum connection",
    "kubernetes api contact from container",
];
const HIGH_RISK: &[&str] = &[
    "write below etc and binary dirs",
    "package manager in container",
    "log clearing",
    "crontab change",
    "ssh authorized_keys change",
];

/// Rules that podman's own set-up of a container (`podman run`, `podman exec`) raised before
/// the default rules told the runtime's processes from the container's: no live scenario may
/// raise them unless it expects them.
const RUNTIME_NOISE: &[&str] = &["Mount from container", "Namespace change from container"];

/// The scenarios named `names`, in file order.
fn scenarios(names: &[&str]) -> Vec<Scenario> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/runtime.yaml");
    let all = parse_scenarios(path, &std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|error| panic!("{error}"));
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|scenario| names.contains(&scenario.name.as_str()))
        .collect();
    assert_eq!(
        chosen.len(),
        names.len(),
        "every name is a scenario: {names:?}"
    );
    chosen
}

/// Runs `names` live and fails with every scenario whose expectation was not met.
fn run_live(names: &[&str]) {
    if !harness::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = Image::build(dir.path());
    let mut watcher = Watcher::start();
    let mut failures = Vec::new();
    for scenario in scenarios(names) {
        let fired = harness::run_scenario(&scenario, &image, &mut watcher);
        let missing: Vec<&String> = scenario
            .expect
            .fire
            .iter()
            .filter(|rule| !fired.contains(*rule))
            .collect();
        let forbidden: Vec<&String> = fired
            .iter()
            .filter(|rule| {
                scenario.expect.not_fire.contains(rule)
                    || (RUNTIME_NOISE.contains(&rule.as_str())
                        && !scenario.expect.fire.contains(rule))
            })
            .collect();
        println!("{}: fired {fired:?}", scenario.name);
        if !missing.is_empty() || !forbidden.is_empty() {
            failures.push(format!(
                "'{}': missing {missing:?}, fired but must not {forbidden:?} (all fired: {fired:?})",
                scenario.name
            ));
        }
    }
    let lost = watcher.lost();
    watcher.stop();
    assert!(
        failures.is_empty(),
        "{}\n({lost} kernel events lost during the run)",
        failures.join("\n")
    );
}

#[test]
fn intrusion_scenarios_fire_live() {
    run_live(INTRUSION);
}

#[test]
fn escape_and_malware_scenarios_fire_live() {
    run_live(ESCAPE_AND_MALWARE);
}

#[test]
fn high_risk_operation_scenarios_fire_live() {
    run_live(HIGH_RISK);
}

/// Runs without root: the live scenarios exist and run in containers only.
#[test]
fn live_scenarios_have_container_steps() {
    for scenario in scenarios(&[INTRUSION, ESCAPE_AND_MALWARE, HIGH_RISK].concat()) {
        assert!(
            scenario.setup.container.is_some()
                && !scenario.steps.is_empty()
                && scenario
                    .steps
                    .iter()
                    .all(|step| step.on == Place::Container),
            "'{}' has container steps only",
            scenario.name
        );
    }
}

/// The tuning check on the real host: a `cargo build` of a small crate (offline, no
/// dependencies) and `dpkg -i` of a small package built here raise no alert from the default
/// rules. Alerts of other processes on the machine are not counted: only those of the
/// commands' own process trees.
#[test]
fn cargo_build_and_dpkg_install_raise_no_alert() {
    if !harness::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = Watcher::start();
    let alerts = harness::host_command_alerts(&mut watcher, dir.path());
    let lost = watcher.lost();
    watcher.stop();
    let outputs: Vec<&str> = alerts.iter().map(|seen| seen.output.as_str()).collect();
    assert!(outputs.is_empty(), "alerts: {outputs:#?}");
    println!("no alert; {lost} kernel events lost during the run");
}
