//! The container's configuration live: a podman container with a bind mount and a health
//! check, the real eBPF sensor, and a rule on `proc.is_container_healthcheck` that prints the
//! mount and check fields. `podman healthcheck run` runs the check's command from outside the
//! container and the rule fires with libsinsp's forms; the same command started by the
//! container's own init does not fire.

use std::process::Command;
use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind};
use palisade_rules::{Engine, EngineConfig, RuleSet, RuleSource};

use crate::environment::sensor_for;
use crate::harness::{self, Image};

/// The health check's command, as podman runs a CMD-SHELL check.
const CHECK: &str = "cat /etc/hostname";

fn podman(args: &[&str]) -> String {
    let output = Command::new("podman").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Removes the container on drop.
struct Started(String);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.0])
            .output();
    }
}

#[test]
fn the_health_check_run_by_podman_is_told_from_the_same_command_run_inside() {
    if !harness::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = Image::build(dir.path());
    let data = dir.path().join("check-data");
    std::fs::create_dir(&data).unwrap();
    let text = "- rule: Health check\n  desc: test\n  condition: evt.type = execve and \
                proc.is_container_healthcheck = true\n  output: \"check=%container.healthcheck \
                source=%container.mount.source[/check-data] rdwr=%container.mount.rdwr[0] \
                cmd=%proc.cmdline\"\n  priority: WARNING\n";
    let rule_set = RuleSet::load(&[RuleSource {
        name: "container_config.yaml".into(),
        text: text.into(),
    }]);
    assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut sensor = sensor_for(&engine);

    let name = format!("palisade-healthcheck-{}", std::process::id());
    // The init waits for the host's go, then runs the check's command itself.
    let init = format!(
        "while [ ! -e /check-data/go ]; do sleep 0.1; done; /bin/sh -c '{CHECK}'; exec sleep 600"
    );
    let bind = format!("{}:/check-data:ro", data.display());
    let started = Started(name.clone());
    let id = podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-v",
        &bind,
        "--health-cmd",
        CHECK,
        "--health-interval",
        "disable",
        &image.tag,
        "/bin/sh",
        "-c",
        &init,
    ]);
    // The container's metadata is read once its first events come; on a busy machine after
    // the sensor's wait for it, and those events go without it (libsinsp gives no category
    // then either). Execs in it until one carries the configuration.
    let ours = |event: &Event| event.container.as_ref().is_some_and(|c| c.id == id);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    'known: while Instant::now() < deadline {
        podman(&["exec", &name, "/bin/true"]);
        let polled_until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < polled_until {
            sensor
                .poll(Duration::from_millis(50), &mut events)
                .expect("poll");
            let known = events.drain(..).any(|event| {
                ours(&event)
                    && event
                        .container
                        .as_ref()
                        .is_some_and(|c| !c.metadata_missing && c.health_probes.is_some())
            });
            if known {
                break 'known;
            }
        }
    }
    std::fs::write(data.join("go"), b"").unwrap();
    podman(&["healthcheck", "run", &name]);

    // Both execs of the check's command in the container: the init's and podman's.
    let is_check_command = |event: &Event| {
        event.kind == EventKind::Execve
            && event.process.exe.as_str() == "/bin/sh"
            && event.process.args.as_ref() == ["-c".to_owned(), CHECK.to_owned()]
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut commands, mut alerts) = (Vec::new(), Vec::new());
    while commands.len() < 2 && Instant::now() < deadline {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
        for event in events.drain(..) {
            if ours(&event) && event.kind == EventKind::Execve {
                let before = alerts.len();
                engine.process(&event, &mut alerts);
                if is_check_command(&event) {
                    commands.push((event, alerts.len() > before));
                }
            }
        }
    }
    drop(started);
    assert_eq!(
        commands.len(),
        2,
        "both runs of the command seen: {commands:?}"
    );
    let by_init: Vec<bool> = commands
        .iter()
        .filter(|(event, _)| {
            event
                .ancestors
                .first()
                .is_some_and(|parent| parent.vpid == 1)
        })
        .map(|(_, fired)| *fired)
        .collect();
    assert_eq!(by_init, [false], "the init's run is no check: {commands:?}");
    let checks: Vec<&String> = alerts.iter().map(|alert| &alert.output).collect();
    assert_eq!(
        checks,
        [&format!(
            "check=/bin/sh -c {CHECK} source={} rdwr=false cmd=sh -c {CHECK}",
            data.display()
        )],
        "podman's run fires once: {commands:?}"
    );
}
