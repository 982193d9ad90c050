//! Rules on a process's descriptors when its event happens (`proc.fdopencount`,
//! `proc.fdlimit`, `proc.fdusage`) fire live: the sensor reads them because a loaded rule
//! does, a limit set with setrlimit since the fork is the one seen, and a process with few
//! descriptors does not match. With the eBPF sensor and with the fallback. Needs root and
//! eBPF (no container).

use std::os::unix::process::CommandExt;
use std::process::Command;

use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind};
use palisade_rules::{Alert, Engine};
use palisade_sensor::{BackendChoice, Sensor};

use crate::environment::{can_run_ebpf, engine, sensor_on};

/// Descriptors 0-2 this process has open (a program it starts keeps them).
fn standard_descriptors() -> usize {
    (0..3)
        // SAFETY: F_GETFD only queries the descriptor.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .count()
}

/// Starts `program args... marker` with only descriptors 0-2 and `extra` more (copies of
/// /dev/null) open, and an `RLIMIT_NOFILE` soft limit of `soft`, set in the child with
/// setrlimit before the exec.
fn spawn_with_descriptors(
    program: &str,
    args: &[&str],
    marker: &str,
    extra: usize,
    soft: u64,
) -> std::process::Child {
    let mut command = Command::new(program);
    command.args(args).arg(marker);
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            if libc::close_range(3, u32::MAX, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for _ in 0..extra {
                // Without O_CLOEXEC: the program keeps them.
                if libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = soft;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// The rule, run on `backend`: the busy exec (40 extra descriptors, limit 300) fires with its
/// exact values, the quiet one (none extra) does not.
fn descriptor_rule_fires(backend: BackendChoice, program: &str, args: &[&str], name: &str) {
    let marker = format!("palisade-fds-{name}-{}", std::process::id());
    let mut engine = engine(
        &marker,
        " and proc.fdopencount >= 40 and proc.fdlimit = 300 and proc.fdusage > 13",
        "open=%proc.fdopencount limit=%proc.fdlimit usage=%proc.fdusage",
    );
    assert!(engine.reads_fd_state() && engine.counts_open_fds());
    let mut sensor = sensor_on(&engine, backend);
    let (mut execs, mut alerts) = (Vec::new(), Vec::new());
    // One at a time, each read while it runs (the fallback reads /proc when it handles it).
    for extra in [40, 0] {
        let mut child = spawn_with_descriptors(program, args, &marker, extra, 300);
        execs.extend(exec_of(&mut sensor, &mut engine, child.id(), &mut alerts));
        let status = child.wait().unwrap();
        assert!(status.success(), "{program}: {status}");
    }
    assert_eq!(execs.len(), 2, "both execs seen: {execs:#?}");
    let open = standard_descriptors() + 40;
    assert_eq!(
        execs[1].process.open_fds,
        Some(standard_descriptors() as u64),
        "the quiet exec: {:?}",
        execs[1].process
    );
    assert_eq!(alerts.len(), 1, "only the busy exec fires: {alerts:?}");
    let usage = open as f64 * 100.0 / 300.0;
    assert_eq!(
        alerts[0].output,
        format!("open={open} limit=300 usage={usage:.1}")
    );
    for (field, value) in [
        ("proc.fdopencount", open.to_string()),
        ("proc.fdlimit", "300".to_owned()),
        ("proc.fdusage", format!("{usage:.1}")),
    ] {
        assert!(
            alerts[0]
                .fields
                .contains(&(field.to_owned(), value.clone())),
            "{field}={value} in {:?}",
            alerts[0].fields
        );
    }
}

/// The exec of process `pid` (waiting at most 10 s), after the engine saw it.
fn exec_of(
    sensor: &mut Sensor,
    engine: &mut Engine,
    pid: u32,
    alerts: &mut Vec<Alert>,
) -> Option<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
        if let Some(exec) = events
            .drain(..)
            .find(|event| event.kind == EventKind::Execve && event.process.pid == pid)
        {
            engine.process(&exec, alerts);
            return Some(exec);
        }
    }
    None
}

#[test]
fn a_rule_on_open_descriptors_and_their_limit_fires_live() {
    if !can_run_ebpf() {
        return;
    }
    descriptor_rule_fires(BackendChoice::Ebpf, "/bin/true", &[], "ebpf");
}

/// The fallback reads `/proc` when it handles the exec, so the program must still run then:
/// a shell that waits for a sleep.
#[test]
fn a_rule_on_open_descriptors_fires_through_the_fallback() {
    if !can_run_ebpf() {
        return;
    }
    descriptor_rule_fires(
        BackendChoice::Fallback,
        "/bin/sh",
        &["-c", "sleep 1; true"],
        "fallback",
    );
}

/// A rule on `proc.fdlimit` alone has the sensor read the limit and not count the
/// descriptors: the rule fires with the limit, and the count stays absent.
#[test]
fn a_rule_on_the_limit_alone_does_not_count_descriptors() {
    if !can_run_ebpf() {
        return;
    }
    let marker = format!("palisade-fdlimit-{}", std::process::id());
    let mut engine = engine(&marker, " and proc.fdlimit = 300", "limit=%proc.fdlimit");
    assert!(engine.reads_fd_state() && !engine.counts_open_fds());
    let mut sensor = sensor_on(&engine, BackendChoice::Ebpf);
    let mut alerts = Vec::new();
    let mut child = spawn_with_descriptors("/bin/true", &[], &marker, 5, 300);
    let exec = exec_of(&mut sensor, &mut engine, child.id(), &mut alerts).expect("the exec");
    assert!(child.wait().unwrap().success());
    assert_eq!(
        (exec.process.fd_limit, exec.process.open_fds),
        (Some(300), None),
        "{:?}",
        exec.process
    );
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].output, "limit=300");
}
