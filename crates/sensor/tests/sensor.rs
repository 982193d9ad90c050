//! The sensor against the real kernel: real processes, files, sockets and containers.
//!
//! Each test needs root and eBPF (skipped with a reason outside CI, required in CI) and
//! starts its own sensor; the sensor ignores this test process itself, so every observed
//! action runs in a child process.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_wall_clock_timestamp, can_run_ebpf, collect_from, marker, start, wait_for};
use palisade_event::{EventKind, Payload};
use palisade_sensor::{BackendChoice, HoldLimits, SensorConfig};

#[test]
fn exec_reports_path_argv_cwd_parent_and_inode() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let cwd = tempfile::tempdir().unwrap();
    let arg = marker("exec");
    let status = Command::new("/bin/true")
        .arg(&arg)
        .arg("second")
        .current_dir(cwd.path())
        .status()
        .unwrap();
    assert!(status.success());
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.args.first() == Some(&arg)
    })
    .expect("an execve event for the child");
    let true_path = std::fs::canonicalize("/bin/true").unwrap();
    assert_eq!(event.kind, EventKind::Execve);
    assert_eq!(event.process.exepath, true_path.to_str().unwrap());
    assert_eq!(event.process.exe, "/bin/true");
    assert_eq!(event.process.args, [arg.as_str(), "second"]);
    assert_eq!(
        event.process.cwd,
        std::fs::canonicalize(cwd.path()).unwrap().to_str().unwrap()
    );
    assert_eq!(event.process.ppid, std::process::id());
    assert_eq!(event.process.name, "true");
    assert_eq!(event.process.uid, 0);
    assert_eq!(event.process.user, "root");
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(&true_path).unwrap();
    assert_eq!(event.process.exe_ino, metadata.ino());
    assert!(!event.process.exe_deleted && !event.process.exe_from_memfd);
    assert!(event.container.is_none(), "a host process");
    assert!(event.cgroup_id != 0);
    assert_eq!(
        event.ancestors.first().map(|a| a.pid),
        Some(std::process::id()),
        "the test is the parent"
    );
    assert_wall_clock_timestamp(&event);
}

/// An exec whose arguments pass the 4,095 bytes the kernel side copies says so
/// (`args_truncated`), and its arguments end as Falco's driver leaves them: the one the limit
/// falls in cut there, the rest dropped. One just under the limit is whole and not marked.
#[test]
fn an_exec_with_arguments_past_the_limit_is_marked_truncated() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let arg = marker("long-argv");
    let (first, second) = ("a".repeat(3_000), "b".repeat(3_000));
    let status = Command::new("/bin/true")
        .args([arg.as_str(), &first, &second, "dropped"])
        .status()
        .unwrap();
    assert!(status.success());
    let cut = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.args.first() == Some(&arg)
    })
    .expect("the long exec");
    assert!(cut.process.args_truncated, "{:?}", cut.process.args.len());
    assert_eq!(cut.process.exe, "/bin/true");
    // 4,095 bytes: "/bin/true", the marker and the a's with their NULs, then the b's.
    let kept = 4_095
        - ["/bin/true", &arg, &first]
            .map(|part| part.len() + 1)
            .iter()
            .sum::<usize>();
    assert_eq!(
        cut.process.args,
        [arg.as_str(), first.as_str(), &second[..kept]]
    );

    let whole_arg = marker("whole-argv");
    // Exactly 4,095 bytes with the NULs: the limit, not past it.
    let filler = "c".repeat(
        4_095
            - ["/bin/true", &whole_arg]
                .map(|part| part.len() + 1)
                .iter()
                .sum::<usize>()
            - 1,
    );
    Command::new("/bin/true")
        .args([whole_arg.as_str(), &filler])
        .status()
        .unwrap();
    let whole = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.args.first() == Some(&whole_arg)
    })
    .expect("the exec of 4,095 bytes");
    assert!(!whole.process.args_truncated);
    assert_eq!(whole.process.args, [whole_arg.as_str(), filler.as_str()]);
}

#[test]
fn openat_reports_resolved_path_flags_and_fd() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(marker("open"));
    std::fs::write(&file, "x").unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    // A relative path: the sensor must resolve it against the working directory.
    let status = Command::new("/bin/cat")
        .arg(&name)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let expected = std::fs::canonicalize(&file)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let event = wait_for(
        &mut sensor,
        Duration::from_secs(10),
        |event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == expected),
    )
    .expect("an openat event for the file");
    let Payload::Open { fd, flags, .. } = &event.payload else {
        unreachable!()
    };
    assert_eq!(*flags as i32 & libc::O_ACCMODE, libc::O_RDONLY);
    assert!(fd.num >= 3, "cat got a new descriptor: {fd:?}");
    assert_eq!(event.ret, fd.num);
    assert_eq!(event.process.name, "cat");

    // A failed open reports the error.
    let missing = dir.path().join("missing");
    let _ = Command::new("/bin/cat")
        .arg(&missing)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let missing = missing.to_str().unwrap().to_owned();
    let event = wait_for(
        &mut sensor,
        Duration::from_secs(10),
        |event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == missing),
    )
    .expect("an openat event for the missing file");
    assert_eq!(event.ret, -i64::from(libc::ENOENT));
}

/// The kernel side wakes the reader only once a quarter of the ring is unread, so a lone event
/// wakes nobody: its latency is bounded by the caller's poll timeout instead. One `poll` after
/// the call must deliver it, within that timeout (plus the time to read what is pending).
#[test]
fn a_lone_event_arrives_within_one_poll_timeout() {
    if !can_run_ebpf() {
        return;
    }
    // Only the ring's wake-up is this test's subject, so nothing waits for its cgroup's
    // look-up: with the default hold, the first events of this machine's cgroup wait for a
    // look-up worker, and a poll returns within a millisecond while they do. Under load the
    // worker can run only after this thread, which reads at a raised priority, so "one
    // poll" then failed (held: every event; delivered: none).
    let config = SensorConfig {
        kinds: Some([EventKind::Openat].into()),
        backend: BackendChoice::Ebpf,
        hold: HoldLimits::new(Duration::ZERO, 1).unwrap(),
        ..SensorConfig::default()
    };
    let mut sensor = config.build().expect("the eBPF sensor starts");
    let mut events = Vec::new();
    // Whatever the machine produced while the probes were being attached.
    sensor.poll(Duration::ZERO, &mut events).expect("poll");
    events.clear();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(marker("lone"));
    let status = Command::new("/bin/cat")
        .arg(&file)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the file does not exist");
    let path = file.to_str().unwrap().to_owned();
    const TIMEOUT: Duration = Duration::from_millis(300);
    let started = std::time::Instant::now();
    sensor.poll(TIMEOUT, &mut events).expect("poll");
    let waited = started.elapsed();
    assert!(
        events
            .iter()
            .any(|event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == path)),
        "one poll delivers the event: {events:#?} {:?}",
        sensor.health()
    );
    assert!(waited < TIMEOUT + Duration::from_secs(1), "{waited:?}");
}

#[test]
fn loopback_connect_reports_addresses_and_ports() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Connect]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || listener.accept().map(|_| ()));
    let status = Command::new("/bin/busybox")
        .args(["nc", "-w", "1", "127.0.0.1", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    accept.join().unwrap().unwrap();
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        matches!(&event.payload, Payload::Network { fd } if fd.socket.as_ref().is_some_and(|socket| socket.remote_port == port))
    })
    .expect("a connect event to the listener");
    let Payload::Network { fd } = &event.payload else {
        unreachable!()
    };
    let socket = fd.socket.as_ref().unwrap();
    assert_eq!(event.ret, 0);
    assert_eq!(fd.kind, palisade_event::FdKind::Ipv4);
    assert_eq!(socket.protocol, palisade_event::Protocol::Tcp);
    assert_eq!(socket.remote_addr, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(socket.local_addr, Some("127.0.0.1".parse().unwrap()));
    assert!(socket.local_port != 0 && socket.local_port != port);
    assert_eq!(
        fd.name,
        format!("127.0.0.1:{}->127.0.0.1:{port}", socket.local_port)
    );
}

#[test]
fn ancestry_survives_the_parent_exiting() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let arg = marker("orphan");
    // The shell starts a background subshell and exits at once; the subshell outlives it
    // (and is reparented) before it execs.
    let mut outer = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("(sleep 0.5; exec /bin/true {arg}) & exit 0"))
        .spawn()
        .unwrap();
    let outer_pid = outer.id();
    assert!(outer.wait().unwrap().success());
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.args.first() == Some(&arg)
    })
    .expect("the orphan's exec");
    assert_ne!(
        event.process.ppid, outer_pid,
        "the kernel reparented the orphan"
    );
    let ancestors: Vec<(u32, &str)> = event
        .ancestors
        .iter()
        .map(|a| (a.pid, a.name.as_str()))
        .collect();
    assert_eq!(ancestors.first(), Some(&(outer_pid, "sh")), "{ancestors:?}");
    assert_eq!(
        ancestors.get(1).map(|a| a.0),
        Some(std::process::id()),
        "{ancestors:?}"
    );
    assert_eq!(
        event.ancestors[0].args,
        ["-c", &format!("(sleep 0.5; exec /bin/true {arg}) & exit 0")]
    );
}

/// Every ancestor carries the name of its own user (from `/etc/passwd` as the look-up
/// workers read it), not only the event's process: a shell that `setpriv` started as nobody,
/// then this test as root.
#[test]
fn ancestors_carry_their_users_names() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let arg = marker("ancestor-users");
    // The shell forks for /bin/true (a command follows it), so the exec's parent is the
    // shell running as nobody, and the shell's parent is this test.
    let status = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/sh",
        ])
        .arg("-c")
        .arg(format!("/bin/true {arg}; exit 0"))
        .status()
        .unwrap();
    assert!(status.success());
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.args.first() == Some(&arg)
    })
    .expect("the exec of /bin/true");
    let users: Vec<(u32, &str, &str)> = event
        .ancestors
        .iter()
        .map(|a| (a.uid, a.user.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(users.first(), Some(&(65534, "nobody", "sh")), "{users:?}");
    assert_eq!(event.ancestors[1].pid, std::process::id(), "{users:?}");
    assert_eq!((users[1].0, users[1].1), (0, "root"), "{users:?}");
}

#[test]
fn only_requested_probes_are_attached() {
    if !can_run_ebpf() {
        return;
    }
    let sensor = start(&[EventKind::Connect]);
    let mut sources = sensor.status().sources.clone();
    sources.sort();
    assert_eq!(
        sources,
        ["exit_connect", "sched_exec", "sched_exit", "sched_fork"]
    );
}

/// With every kind requested, no program runs at system call entry: the exit programs read
/// the arguments from the caller's saved registers and sched_fork the clone flags, so the
/// calls a process makes between fork and exit pay for one program each, not two.
#[test]
fn no_program_runs_at_system_call_entry() {
    if !can_run_ebpf() {
        return;
    }
    let config = SensorConfig {
        backend: BackendChoice::Ebpf,
        ..SensorConfig::default()
    };
    let sensor = config.build().expect("the eBPF sensor starts");
    let sources = &sensor.status().sources;
    // Each call's own exit tracepoint, or the dispatcher on every call's exit (kernels
    // without CONFIG_MODULES).
    let has = |program: &str| sources.iter().any(|name| name == program);
    assert!(
        has("sched_fork")
            && (has("exit_openat") && has("exit_connect")
                || has("exit_dispatch") && has("dispatched_openat") && has("dispatched_connect")),
        "{sources:?}"
    );
    let at_entry: Vec<&String> = sources
        .iter()
        .filter(|name| name.starts_with("enter_"))
        .collect();
    assert!(at_entry.is_empty(), "programs at entry: {at_entry:?}");
}

#[test]
fn a_tiny_ring_buffer_under_an_event_storm_counts_drops() {
    if !can_run_ebpf() {
        return;
    }
    let config = SensorConfig {
        kinds: Some([EventKind::Openat].into()),
        backend: BackendChoice::Ebpf,
        ring_buffer_bytes: 4096,
        ..SensorConfig::default()
    };
    let mut sensor = config.build().unwrap();
    // 5,000 opens while nobody reads the ring buffer.
    let status = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "i=0; while [ $i -lt 5000 ]; do : < /etc/hostname; i=$((i+1)); done",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut events = Vec::new();
    sensor.poll(Duration::from_millis(10), &mut events).unwrap();
    let health = sensor.health();
    assert!(health.events_lost > 1000, "{health:?}");
    assert_eq!(health.newly_lost, health.events_lost);
    assert!(!health.per_cpu.is_empty(), "one counter pair per CPU");
    assert_eq!(
        health.per_cpu.iter().map(|cpu| cpu.lost).sum::<u64>(),
        health.events_lost
    );
    assert_eq!(health.events_delivered, events.len() as u64, "{health:?}");
    assert!(
        events.len() < 100,
        "a 4 KiB ring holds only a few events, got {}",
        events.len()
    );
    // The next poll reports only losses since this one (other processes on the machine keep
    // opening files, so there may be some).
    let before = sensor.health().events_lost;
    sensor.poll(Duration::from_millis(10), &mut events).unwrap();
    let after = sensor.health();
    assert!(after.events_lost >= before);
    assert_eq!(after.newly_lost, after.events_lost - before);
}

/// After the kernel lost events the process table is read again from `/proc`: a shell
/// started while the ring buffer was full (its fork and exec lost) is known from then on, so
/// that the exec of a child it starts later has it, with its arguments, as first ancestor.
#[test]
fn processes_whose_start_was_lost_are_read_from_proc_after_the_loss() {
    if !can_run_ebpf() {
        return;
    }
    let config = SensorConfig {
        kinds: Some([EventKind::Execve].into()),
        backend: BackendChoice::Ebpf,
        ring_buffer_bytes: 4096,
        ..SensorConfig::default()
    };
    let mut sensor = config.build().unwrap();
    // Fill the ring while nobody reads it; the shell then starts with its events lost.
    let storm = Command::new("/bin/sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done",
        ])
        .status()
        .unwrap();
    assert!(storm.success());
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let arg = marker("reseeded");
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.05; done; /bin/true {arg}; exit 0",
        go = go.display()
    );
    let mut shell = Command::new("/bin/sh")
        .args(["-c", &script, "reseeded-shell"])
        .spawn()
        .unwrap();
    let shell_pid = shell.id();
    // The shell starts with the ring still full; then a read sees the loss and reads /proc.
    std::thread::sleep(Duration::from_millis(300));
    let mut events = Vec::new();
    sensor.poll(Duration::from_millis(10), &mut events).unwrap();
    let lost = sensor.health().events_lost;
    std::fs::write(&go, "").unwrap();
    let exec = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.args.first() == Some(&arg)
    });
    assert!(shell.wait().unwrap().success());

    assert!(lost > 0, "the shell started while the ring was full");
    let exec = exec.expect("the exec of the shell's child");
    assert_eq!(exec.process.ppid, shell_pid);
    let shell = exec.ancestors.first().map(|ancestor| {
        (
            ancestor.pid,
            ancestor.exe.as_str(),
            ancestor.args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    });
    assert_eq!(
        shell,
        Some((
            shell_pid,
            "/bin/sh",
            vec!["-c", script.as_str(), "reseeded-shell"]
        )),
        "the shell, read from /proc: {:?}",
        exec.ancestors
    );
    assert_eq!(
        exec.ancestors.get(1).map(|ancestor| ancestor.pid),
        Some(std::process::id()),
        "then this test"
    );
}

/// The sensor ignores the process that runs it (the agent) in the kernel: this test's own
/// open of a file never arrives, while a child's later open of another does.
#[test]
fn the_process_running_the_sensor_is_ignored() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join(marker("own"));
    let childs = dir.path().join(marker("childs"));
    std::fs::write(&own, "x").unwrap();
    std::fs::write(&childs, "x").unwrap();
    std::fs::read(&own).unwrap();
    let status = Command::new("/bin/cat")
        .arg(&childs)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let names = [&own, &childs].map(|path| {
        std::fs::canonicalize(path)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    });
    let opened = |event: &palisade_event::Event| match &event.payload {
        Payload::Open { fd, .. } => names.iter().position(|name| *name == fd.name),
        _ => None,
    };
    let events = common::collect(
        &mut sensor,
        |event| opened(event).is_some(),
        |events| events.iter().any(|event| opened(event) == Some(1)),
    );
    assert!(
        events.iter().any(|event| opened(event) == Some(1)),
        "the child's open: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|event| event.process.pid != std::process::id() && opened(event) == Some(1)),
        "only the child's open: {events:#?}"
    );
}

#[test]
fn fallback_reports_exec_and_opens_without_ebpf() {
    if !can_run_ebpf() {
        return;
    }
    let config = SensorConfig {
        kinds: Some([EventKind::Execve, EventKind::Openat].into()),
        backend: BackendChoice::Fallback,
        ..SensorConfig::default()
    };
    let mut sensor = config.build().expect("the fallback starts");
    let status = sensor.status().clone();
    assert_eq!(status.backend, "fallback");
    assert_eq!(
        status.fallback_reason.as_deref(),
        Some("forced by configuration")
    );
    assert!(status.missing_fields.contains(&"ret"), "{status:?}");
    assert_eq!(
        status.kinds,
        [
            EventKind::Execve,
            EventKind::Clone,
            EventKind::Procexit,
            EventKind::Openat
        ]
    );

    let arg = marker("fallback");
    let mut shell = Command::new("/bin/sh")
        .args(["-c", "sleep 1", &arg])
        .spawn()
        .unwrap();
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.kind == EventKind::Execve && event.process.args.last() == Some(&arg)
    })
    .expect("an exec event from the proc connector");
    assert_eq!(event.process.pid, shell.id());
    assert_eq!(event.process.ppid, std::process::id());
    assert_eq!(
        event.ancestors.first().map(|a| a.pid),
        Some(std::process::id())
    );
    shell.wait().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(marker("fallback-open"));
    std::fs::write(&file, "x").unwrap();
    Command::new("/bin/cat")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let expected = std::fs::canonicalize(&file)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    wait_for(
        &mut sensor,
        Duration::from_secs(10),
        |event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == expected),
    )
    .expect("an open event from fanotify");
}

/// The runtime's binary is known by its device and inode: the host's runc is marked, a copy
/// of it under the same name elsewhere is not.
#[test]
fn only_the_hosts_runtime_binary_is_marked_as_the_runtime() {
    let runc = std::path::Path::new("/usr/sbin/runc");
    if !can_run_ebpf() || !palisade_testdata::capability("runc installed", runc.exists()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let impostor = dir.path().join("runc");
    std::fs::copy(runc, &impostor).unwrap();
    let mut sensor = start(&[EventKind::Execve]);
    let mut marked = Vec::new();
    for program in [runc, impostor.as_path()] {
        let arg = marker("runtime");
        // An unknown argument: runc prints its usage and exits, doing nothing.
        let _ = Command::new(program).arg(&arg).output().unwrap();
        let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
            event.process.args.first() == Some(&arg)
        })
        .unwrap_or_else(|| panic!("an execve event for {}", program.display()));
        assert_eq!(event.process.name, "runc");
        marked.push(event.process.exe_container_runtime);
    }
    assert_eq!(marked, [true, false], "the host's runc, then its copy");
}

/// A process read from /proc at start and one seen at exec by the kernel report the same
/// executable identity (device numbers in the kernel's encoding from both sources).
#[test]
fn seeded_and_exec_events_give_the_same_executable_identity() {
    if !can_run_ebpf() {
        return;
    }
    let arg = marker("seeded");
    // Started before the sensor; opens a file when told to, then execs busybox again.
    let mut child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            &format!("read line; : < /etc/hostname; exec /bin/busybox true {arg}"),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut sensor = start(&[EventKind::Execve, EventKind::Openat]);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let is_open = |event: &palisade_event::Event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == "/etc/hostname");
    let is_exec = |event: &palisade_event::Event| {
        event.kind == EventKind::Execve && event.process.args.last() == Some(&arg)
    };
    let events = collect_from(&mut sensor, pid, |events| {
        events.iter().any(is_open) && events.iter().any(is_exec)
    });
    let opened = events
        .iter()
        .find(|event| is_open(event))
        .expect("the seeded shell's open");
    let executed = events
        .iter()
        .find(|event| is_exec(event))
        .expect("the exec");
    child.wait().unwrap();
    assert_ne!(opened.process.exe_ino, 0, "seeding read the executable");
    assert_eq!(
        (opened.process.exe_dev, opened.process.exe_ino),
        (executed.process.exe_dev, executed.process.exe_ino)
    );
}

/// A signal that cuts the sensor's wait short (EINTR from `epoll_wait`: a signal handled by
/// the polling thread, a debugger's stop) is no failure, and what arrived meanwhile is read.
#[test]
fn a_wait_cut_short_by_a_signal_is_no_failure() {
    if !can_run_ebpf() {
        return;
    }
    extern "C" fn do_nothing(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing (this test runs in a process of its own),
    // without SA_RESTART: epoll_wait then returns EINTR, as it does whatever the flags.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = do_nothing as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let mut sensor = start(&[EventKind::Execve]);
    // SAFETY: pthread_self has no preconditions.
    let polling_thread = unsafe { libc::pthread_self() };
    let arg = marker("interrupted");
    let signaller = std::thread::spawn({
        let arg = arg.clone();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                Command::new("/bin/true")
                    .arg(&arg)
                    .status()
                    .unwrap()
                    .success()
            );
            for _ in 0..5 {
                // SAFETY: the polling thread outlives this one (joined below).
                unsafe { libc::pthread_kill(polling_thread, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut events = Vec::new();
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        sensor
            .poll(Duration::from_secs(2), &mut events)
            .expect("an interrupted wait is no failure");
        seen = events
            .drain(..)
            .any(|event| event.process.args.first() == Some(&arg));
    }
    signaller.join().unwrap();
    assert!(
        seen,
        "the exec made while the wait was interrupted is delivered"
    );
}

/// The nice value of thread or process `tid` from `/proc/<tid>/stat` (its 19th field).
fn nice_of(tid: i64) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{tid}/task/{tid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(16).unwrap().parse().unwrap()
}

fn own_tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { libc::gettid() })
}

/// The nice values of this process's threads whose name starts with `prefix`.
fn nice_of_threads_named(prefix: &str) -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let tid: i64 = task.ok()?.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            name.starts_with(prefix).then(|| nice_of(tid))
        })
        .collect()
}

/// The nice value of a process the calling thread starts.
fn nice_of_a_child() -> i32 {
    let mut child = Command::new("/bin/sleep").arg("10").spawn().unwrap();
    let nice = nice_of(i64::from(child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
    nice
}

#[test]
fn the_thread_that_holds_the_sensor_reads_it_at_a_raised_priority() {
    if !can_run_ebpf() {
        return;
    }
    let process_nice = nice_of(own_tid());
    let (reader, workers, child, thread, after) = std::thread::spawn(|| {
        let sensor = start(&[EventKind::Execve]);
        let reader = nice_of(own_tid());
        let workers = nice_of_threads_named("palisade-meta-");
        let child = nice_of_a_child();
        let thread = std::thread::spawn(|| nice_of(own_tid())).join().unwrap();
        drop(sensor);
        (reader, workers, child, thread, nice_of(own_tid()))
    })
    .join()
    .unwrap();
    assert_eq!(reader, palisade_sensor::DEFAULT_READER_NICE);
    assert!(!workers.is_empty(), "the container look-up workers run");
    assert!(
        workers
            .iter()
            .all(|&nice| nice == palisade_sensor::DEFAULT_READER_NICE),
        "the look-up workers run at the reader's priority: {workers:?}"
    );
    assert_eq!(
        (child, thread),
        (0, 0),
        "what the reader's thread starts does not compete with it at its priority"
    );
    assert_eq!(
        after, process_nice,
        "the drop gives the thread its priority back"
    );
    assert_eq!(
        nice_of(own_tid()),
        process_nice,
        "other threads keep theirs"
    );

    let left_alone = std::thread::spawn(|| {
        let config = SensorConfig {
            kinds: Some([EventKind::Execve].into()),
            backend: BackendChoice::Ebpf,
            reader_nice: None,
            ..SensorConfig::default()
        };
        let _sensor = config.build().expect("the eBPF sensor starts");
        nice_of(own_tid())
    })
    .join()
    .unwrap();
    assert_eq!(left_alone, process_nice);

    let out_of_range = SensorConfig {
        reader_nice: Some(-21),
        ..SensorConfig::default()
    };
    let error = out_of_range.build().err().expect("refused").to_string();
    assert!(error.contains("reader_nice = -21"), "{error}");
}
