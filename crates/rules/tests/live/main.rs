//! The scenario suite run live: the real eBPF sensor and the default rules watch real podman
//! containers while the scenarios' steps run in them, and the host during a `cargo build` and
//! a `dpkg -i` (the tuning check).
//!
//! Every container runs one local image, built here from the host's busybox-static, the
//! host's debugfs with its libraries, and `scenario-helper` (`helper.c`, built statically
//! with clang) for the behaviours busybox has no applet for (memfd execution, ptrace attach,
//! a mount or namespace join by a program named like the runtime). Host scenarios touch
//! only the processes they start and a directory the run creates and removes. There is no
//! registry to pull the scenarios' nominal images from, so the live steps use only what that
//! image holds. Network steps stay inside the container's own network namespace
//! (`--network none`; the container adds the address it connects to on its own loopback
//! device).
//!
//! Needs root, eBPF, podman, clang, busybox-static, debugfs, gdb and logrotate: skipped with
//! the reason outside CI, required in CI. Each test removes its containers and image.

mod container_config;
mod descriptors;
mod environment;
mod harness;
mod kernel_state;

use harness::{Image, Watcher};
use palisade_rules::{Place, Scenario, parse_scenarios};

/// The scenarios run live, from `scenarios/runtime.yaml`, by alert category; [`REPLAY_ONLY`]
/// names the others and why.
const INTRUSION: &[&str] = &[
    "terminal shell in container",
    "shell spawned by web server",
    "reverse shell",
    "non-interactive shell in container is quiet",
    "drop and execute new binary",
    "memfd exec",
    "execution from /dev/shm",
    "sensitive file read",
    "download tool in container",
    "healthcheck with curl to localhost is quiet",
    "ssh private key read",
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
    "debugfs in container",
    "kernel parameter write from container",
    "blocklisted image",
];
/// The runtime's own work (on every container start and exec) stays quiet, and a container
/// process merely named like the runtime does not.
const RUNTIME_IDENTITY: &[&str] = &[
    "runc joining container namespaces is quiet",
    "runc init cloning its binary is quiet",
    "container process named like the runtime",
];
const HIGH_RISK: &[&str] = &[
    "write below etc and binary dirs",
    "package manager in container",
    "log clearing",
    "crontab change",
    "ssh authorized_keys change",
];
/// Host activity that must stay quiet; the steps touch only what they start and create.
const HOST_QUIET: &[&str] = &["gdb on the host is quiet", "logrotate is quiet"];

/// Scenarios that cannot run live on this kind of machine, and why.
const REPLAY_ONLY: &[(&str, &str)] = &[(
    "kernel autoloads a module on the host",
    "the test kernel is built without CONFIG_MODULES (no /proc/modules, no \
     /proc/sys/kernel/modprobe): request_module never runs a modprobe helper, so no \
     autoload can be triggered",
)];

/// Rules that podman's own set-up of a container (`podman run`, `podman exec`) raised before
/// the default rules told the runtime's processes from the container's: no live scenario may
/// raise them unless it expects them (every scenario starts a container and execs into it,
/// so this checks the runtime's quiet over the whole run).
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
    let chosen = scenarios(names);
    let dir = tempfile::tempdir().unwrap();
    let image = Image::build(dir.path());
    let observe = chosen
        .iter()
        .flat_map(|scenario| scenario.expect.seen.iter().copied())
        .collect();
    let mut watcher = Watcher::start(observe);
    let mut failures = Vec::new();
    for scenario in chosen {
        let outcome = harness::run_scenario(&scenario, &image, &mut watcher);
        let fired = &outcome.fired;
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
        let unseen: Vec<_> = scenario
            .expect
            .seen
            .iter()
            .filter(|kind| !outcome.seen.contains(kind))
            .collect();
        println!(
            "{}: fired {fired:?}, seen {:?}",
            scenario.name, outcome.seen
        );
        if !missing.is_empty() || !forbidden.is_empty() || !unseen.is_empty() {
            failures.push(format!(
                "'{}': missing {missing:?}, fired but must not {forbidden:?}, not seen {unseen:?} (all fired: {fired:?})",
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

#[test]
fn runtime_is_told_apart_by_its_binary_live() {
    run_live(RUNTIME_IDENTITY);
}

#[test]
fn host_activity_scenarios_are_quiet_live() {
    run_live(HOST_QUIET);
}

/// Runs without root: every scenario of the file runs live or says why it cannot, and live
/// steps run in a container, or on the host only in scenarios without one.
#[test]
fn every_scenario_runs_live_or_says_why_not() {
    let live = [
        INTRUSION,
        ESCAPE_AND_MALWARE,
        RUNTIME_IDENTITY,
        HIGH_RISK,
        HOST_QUIET,
    ]
    .concat();
    for scenario in scenarios(&live) {
        let place = if scenario.setup.container.is_some() {
            Place::Container
        } else {
            Place::Host
        };
        assert!(
            !scenario.steps.is_empty() && scenario.steps.iter().all(|step| step.on == place),
            "'{}' has steps, all in its container or all on the host",
            scenario.name
        );
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/runtime.yaml");
    let all = parse_scenarios(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    for scenario in &all {
        let replay_only = REPLAY_ONLY.iter().any(|(name, _)| *name == scenario.name);
        assert!(
            live.contains(&scenario.name.as_str()) != replay_only,
            "'{}' is either run live or listed in REPLAY_ONLY with the reason",
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
    let mut watcher = Watcher::start(Default::default());
    let alerts = harness::host_command_alerts(&mut watcher, dir.path());
    let lost = watcher.lost();
    watcher.stop();
    let outputs: Vec<&str> = alerts.iter().map(|seen| seen.output.as_str()).collect();
    assert!(outputs.is_empty(), "alerts: {outputs:#?}");
    println!("no alert; {lost} kernel events lost during the run");
}
