//! What the kernel says about the process and the opened file, read in the probes at event
//! time as Falco's driver reads it: memory, page faults, the descriptor limit and the cgroups
//! at exec and fork; live threads and the CPU on every event; device, inode and overlay layer
//! of an opened file.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use common::{can_run_ebpf, collect, in_child, marker, start, wait_for};
use palisade_event::{Event, EventKind, FdKind, OverlayLayer};
use palisade_sensor::{BackendChoice, SensorConfig};

/// `subsystem=path` for Falco's five controllers as `/proc/self/cgroup` shows them (this
/// process's children stay in its cgroups).
fn own_cgroups() -> Vec<String> {
    palisade_sensor::controller_cgroups(&std::fs::read_to_string("/proc/self/cgroup").unwrap())
}

fn assert_event_time_fields(event: &Event) {
    let n_cpus = std::thread::available_parallelism().unwrap().get();
    assert!(
        event.cpu.is_some_and(|cpu| usize::from(cpu) < n_cpus),
        "{event:?}"
    );
    assert!(
        event.capture_start_ns > 0 && event.capture_start_ns <= event.timestamp_ns,
        "{event:?}"
    );
}

/// The open a forked subshell makes (its process holds what the kernel reported at the
/// fork) and the exec that follows it, under a sensor that reads cgroups or not.
fn fork_open_and_exec(read_cgroups: bool) -> (Event, Event) {
    let mut sensor = SensorConfig {
        kinds: Some([EventKind::Execve, EventKind::Openat].into_iter().collect()),
        backend: BackendChoice::Ebpf,
        read_cgroups,
        ..SensorConfig::default()
    }
    .build()
    .expect("the eBPF sensor starts");
    let (exec_arg, file) = (
        marker("resources-exec"),
        tempfile::NamedTempFile::new().unwrap(),
    );
    // The subshell opens the file before it execs: that open is made by the forked child,
    // whose table entry holds what the kernel reported at the fork.
    let script = "ulimit -n 777; ( : < \"$1\"; exec /bin/true \"$0\" )";
    let status = Command::new("/bin/sh")
        .args(["-c", script, &exec_arg])
        .arg(file.path())
        .status()
        .unwrap();
    assert!(status.success());
    let path = file.path().to_str().unwrap().to_owned();
    let events = collect(
        &mut sensor,
        |event| match event.kind {
            EventKind::Execve => event.process.args.first() == Some(&exec_arg),
            EventKind::Openat => {
                matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == path)
            }
            _ => false,
        },
        |events| events.iter().any(|event| event.kind == EventKind::Execve),
    );
    let open = events
        .iter()
        .find(|event| event.kind == EventKind::Openat)
        .unwrap_or_else(|| panic!("the subshell's open: {events:#?}"));
    let exec = events
        .iter()
        .find(|event| event.kind == EventKind::Execve)
        .unwrap_or_else(|| panic!("the exec: {events:#?}"));
    (open.clone(), exec.clone())
}

#[test]
fn exec_and_fork_carry_memory_faults_descriptor_limit_and_cgroups() {
    if !can_run_ebpf() {
        return;
    }
    let (open, exec) = fork_open_and_exec(true);

    let forked = open.process.resources.expect("the fork's resources");
    assert_eq!(forked.fd_limit, 777, "inherited from the shell: {forked:?}");
    assert_eq!(
        (forked.major_faults, forked.minor_faults),
        (0, 0),
        "a new task has faulted nothing when the fork is reported: {forked:?}"
    );
    assert!(forked.vm_size_kb > 0, "{forked:?}");
    assert_eq!(open.process.cgroups.as_slice(), own_cgroups().as_slice());

    let executed = exec.process.resources.expect("the exec's resources");
    assert_eq!(executed.fd_limit, 777, "{executed:?}");
    assert!(
        executed.minor_faults > 0,
        "loading a program faults: {executed:?}"
    );
    assert!(
        executed.vm_size_kb > 0 && executed.vm_rss_kb <= executed.vm_size_kb,
        "{executed:?}"
    );
    assert_eq!(exec.process.cgroups.as_slice(), own_cgroups().as_slice());
    for event in [&open, &exec] {
        assert_eq!(
            (event.process.live_threads, event.process.leader_exited),
            (1, false),
            "{event:?}"
        );
        assert_event_time_fields(event);
    }
}

/// Unless a rule reads them (`SensorConfig::read_cgroups`), the probes leave the cgroups out
/// of exec and fork records; the rest of what they read then stays.
#[test]
fn cgroups_are_read_only_when_asked_for() {
    if !can_run_ebpf() {
        return;
    }
    let (open, exec) = fork_open_and_exec(false);
    for event in [&open, &exec] {
        assert!(event.process.cgroups.is_empty(), "{event:?}");
        let resources = event.process.resources.expect("resources");
        assert_eq!(resources.fd_limit, 777, "{event:?}");
    }
}

/// The kernel counts resident pages per CPU and folds them into the total in batches; the
/// probes read the total, as Falco's driver does, so a large resident set shows.
#[test]
fn a_fork_reports_the_resident_memory_it_inherited() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_owned();
    let name = path.display().to_string();
    const TOUCHED_KB: u64 = 64 * 1024;
    in_child("pal-rss", || {
        let touched = vec![1u8; TOUCHED_KB as usize * 1024];
        std::hint::black_box(&touched);
        // SAFETY: the grandchild only opens a file and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(std::fs::File::open(&path));
            // SAFETY: ends the grandchild without running the test's destructors.
            unsafe { libc::_exit(0) };
        }
        assert_eq!(common::wait(pid), 0);
    });
    let open = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.name == "pal-rss"
            && matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == name)
    })
    .expect("the grandchild's open");
    let resources = open.process.resources.expect("the fork's resources");
    assert!(
        resources.vm_rss_kb >= TOUCHED_KB - 4 * 1024 && resources.vm_rss_kb <= resources.vm_size_kb,
        "{resources:?}"
    );
}

#[test]
fn threads_are_counted_when_the_event_happens() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let [alone, with_a_thread, after_the_leader] = ["alone", "with-a-thread", "after-the-leader"]
        .map(|name| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            path
        });
    let paths = [&alone, &with_a_thread, &after_the_leader].map(|path| path.display().to_string());
    let child = in_child("pal-threads", || {
        std::fs::File::open(&alone).unwrap();
        let path = with_a_thread.clone();
        std::thread::spawn(move || drop(std::fs::File::open(path).unwrap()))
            .join()
            .unwrap();
        let path = after_the_leader.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(std::fs::File::open(path));
            // SAFETY: ends the whole process, as the forked child must.
            unsafe { libc::_exit(0) };
        });
        // The leader thread alone ends (the exit system call, not exit_group); the process
        // lives on in the other thread.
        // SAFETY: SYS_exit ends only the calling thread; nothing of it is used afterwards.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
    });
    let opens = collect(
        &mut sensor,
        |event| event.process.pid == child,
        |events| events.iter().any(|event| event.process.exe == "sleep") && events.len() >= 3,
    );
    let counts: Vec<(String, u32, bool)> = paths
        .iter()
        .map(|path| {
            let event = opens
                .iter()
                .find(|event| matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if &fd.name == path))
                .unwrap_or_else(|| panic!("the open of {path}: {opens:#?}"));
            (
                path.rsplit('/').next().unwrap().to_owned(),
                event.process.live_threads,
                event.process.leader_exited,
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("alone".to_owned(), 1, false),
            ("with-a-thread".to_owned(), 2, false),
            ("after-the-leader".to_owned(), 1, true),
        ]
    );
}

#[test]
fn opens_carry_the_files_device_inode_and_overlay_layer() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"x").unwrap();
    let overlay = common::Overlay::new(dir.path());
    std::fs::write(overlay.lower.join("from-image"), b"x").unwrap();
    let (from_image, written) = (
        overlay.merged.join("from-image"),
        overlay.merged.join("written"),
    );
    let child = in_child("pal-files", || {
        drop(std::fs::File::open(&plain).unwrap());
        overlay.mount_in_own_namespace();
        drop(std::fs::File::open(&from_image).unwrap());
        std::fs::write(&written, b"y").unwrap();
    });
    let names = [&plain, &from_image, &written].map(|path| path.display().to_string());
    let opens = collect(
        &mut sensor,
        |event| event.process.pid == child,
        |events| {
            names.iter().all(|name| {
                events.iter().any(|event| matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if &fd.name == name))
            })
        },
    );
    let opened = |name: &str| {
        opens
            .iter()
            .find(|event| matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == name))
            .and_then(|event| event.opened_file)
            .unwrap_or_else(|| panic!("the open of {name} with its file: {opens:#?}"))
    };
    let plain_file = opened(&names[0]);
    let metadata = std::fs::metadata(&plain).unwrap();
    assert_eq!(plain_file.dev, metadata.dev() as u32, "stat's st_dev");
    assert_eq!(plain_file.ino, metadata.ino());
    assert_eq!(plain_file.layer, OverlayLayer::None);
    assert_eq!(opened(&names[1]).layer, OverlayLayer::Lower);
    assert_eq!(opened(&names[2]).layer, OverlayLayer::Upper);
    assert_ne!(
        opened(&names[1]).dev,
        plain_file.dev,
        "an overlay mount is its own device"
    );
    // A failed open has no file.
    let missing = dir.path().join("missing");
    let missing_name = missing.display().to_string();
    in_child("pal-nofile", || {
        assert!(std::fs::File::open(&missing).is_err())
    });
    let failed = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == missing_name)
    })
    .expect("the failed open");
    assert!(failed.ret < 0 && failed.opened_file.is_none(), "{failed:?}");
}

/// A capability set of this process as `/proc/self/status` shows it (`CapBnd:` ...).
fn own_capabilities(line: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|entry| entry.strip_prefix(line))
        .unwrap_or_else(|| panic!("{line} in {status}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

/// The thread's three capability sets are read with every event, from the credentials the
/// event happened under: an inheritable set given with setpriv, and the sets an exec as
/// another user leaves (none).
#[test]
fn every_event_carries_the_threads_capability_sets() {
    if !can_run_ebpf() {
        return;
    }
    const CAP_NET_RAW: u64 = 1 << 13;
    const CAP_SYS_TIME: u64 = 1 << 25;
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let [as_root, as_nobody] = ["as-root", "as-nobody"].map(|name| {
        let path = dir.path().join(name);
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        path
    });
    let status = Command::new("setpriv")
        .args(["--inh-caps", "+net_raw,+sys_time", "/bin/cat"])
        .arg(&as_root)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "/bin/cat",
        ])
        .arg(&as_nobody)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let names = [&as_root, &as_nobody].map(|path| path.display().to_string());
    let opens = collect(
        &mut sensor,
        |event| matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if names.contains(&fd.name)),
        |events| events.len() >= 2,
    );
    let sets = |name: &str| {
        let event = opens
            .iter()
            .find(|event| matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == name))
            .unwrap_or_else(|| panic!("the open of {name}: {opens:#?}"));
        let process = &event.process;
        (
            process.cap_inheritable,
            process.cap_permitted,
            process.cap_effective,
        )
    };
    // Root keeps every capability of its bounding set across the exec.
    let bounding = own_capabilities("CapBnd:");
    assert_eq!(
        sets(&names[0]),
        (CAP_NET_RAW | CAP_SYS_TIME, bounding, bounding)
    );
    assert_eq!(
        sets(&names[1]),
        (0, 0, 0),
        "an exec as uid 65534 keeps none"
    );
}

/// The fallback reads the capability sets from `/proc/<pid>/status` when it handles an exec,
/// so a process still running then carries them.
#[test]
fn the_fallback_reads_the_capability_sets_at_exec() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = SensorConfig {
        kinds: Some([EventKind::Execve].into_iter().collect()),
        backend: BackendChoice::Fallback,
        ..SensorConfig::default()
    }
    .build()
    .expect("the fallback sensor starts");
    let mut sleeper = Command::new("setpriv")
        .args(["--inh-caps", "+net_raw", "sleep", "2"])
        .spawn()
        .unwrap();
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == sleeper.id() && event.process.name == "sleep"
    })
    .expect("sleep's exec from the proc connector");
    sleeper.wait().unwrap();
    let bounding = own_capabilities("CapBnd:");
    let process = &event.process;
    assert_eq!(
        (
            process.cap_inheritable,
            process.cap_permitted,
            process.cap_effective
        ),
        (1 << 13, bounding, bounding)
    );
}

/// The fallback reads descriptors 0 to 2 from `/proc/<pid>/fd` when asked for (a pipe, a TCP
/// socket whose family it reads from a copy of the descriptor, /dev/null), and the start of
/// the pid namespace's init from `/proc`: in a new namespace its first process's, in the
/// sensor's own the same for a process found at start as for one seen executing.
#[test]
fn the_fallback_reads_the_standard_descriptors_and_the_namespaces_start() {
    if !can_run_ebpf() {
        return;
    }
    let mut found_at_start = Command::new("sleep").arg("3").spawn().unwrap();
    let mut sensor = SensorConfig {
        kinds: Some(
            [EventKind::Execve, EventKind::Procexit]
                .into_iter()
                .collect(),
        ),
        backend: BackendChoice::Fallback,
        read_std_fds: true,
        ..SensorConfig::default()
    }
    .build()
    .expect("the fallback sensor starts");
    let (pipe_read, _pipe_write) = std::io::pipe().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // unshare forks the new namespace's init, a shell that becomes sleep.
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "/bin/sh", "-c", "exec sleep 2"])
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            pipe_read,
        )))
        .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            stream,
        )))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (unshare_pid, found_pid) = (unshare.id(), found_at_start.id());
    let events = collect(
        &mut sensor,
        |event| {
            (event.kind == EventKind::Execve
                && (event.process.pid == unshare_pid || event.process.ppid == unshare_pid))
                || (event.kind == EventKind::Procexit && event.process.pid == found_pid)
        },
        |events| {
            events.iter().any(|event| event.process.exe == "sleep")
                && events.iter().any(|event| event.process.pid == found_pid)
        },
    );
    unshare.wait().unwrap();
    found_at_start.wait().unwrap();
    let event_of = |wanted: &dyn Fn(&Event) -> bool| {
        events
            .iter()
            .find(|event| wanted(event))
            .unwrap_or_else(|| panic!("{events:#?}"))
    };
    let sleep = event_of(&|event| event.process.exe == "sleep");
    let unshare = event_of(&|event| event.process.pid == unshare_pid);
    let found = event_of(&|event| event.process.pid == found_pid);
    assert_eq!(
        sleep.process.std_fds,
        Some([Some(FdKind::Pipe), Some(FdKind::Ipv4), Some(FdKind::File)]),
        "{sleep:?}"
    );
    assert_eq!(sleep.process.vpid, 1);
    assert_eq!(
        sleep.process.pidns_init_start_ns, sleep.process.start_time_ns,
        "{sleep:?}"
    );
    let own_namespace_start = unshare.process.pidns_init_start_ns;
    assert!(
        own_namespace_start > 0 && own_namespace_start <= found.process.start_time_ns,
        "{unshare:?}"
    );
    assert_eq!(found.process.pidns_init_start_ns, own_namespace_start);
}

/// The start of the pid namespace's init, read at exec and fork: in a new pid namespace, the
/// start of its first process (the one unshare forks, vpid 1) for it and for what it
/// starts; in the host's, the start of the host's init.
#[test]
fn exec_and_fork_carry_the_start_of_the_pid_namespaces_init() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Execve]);
    let marker = marker("pidns");
    // unshare forks the namespace's init, which runs the shell; the shell starts true.
    let status = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "/bin/sh",
            "-c",
            "/bin/true \"$0\"; :",
            &marker,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let execs = collect(
        &mut sensor,
        |event| event.process.args.contains(&marker),
        |events| events.len() >= 3,
    );
    let exec_of = |program: &str| {
        execs
            .iter()
            .find(|event| event.process.exe == program)
            .unwrap_or_else(|| panic!("the exec of {program}: {execs:#?}"))
    };
    let (unshare, init, child) = (exec_of("unshare"), exec_of("/bin/sh"), exec_of("/bin/true"));
    assert_eq!((init.process.vpid, child.process.vpid), (1, 2));
    assert_eq!(init.process.pidns_init_start_ns, init.process.start_time_ns);
    assert_eq!(
        child.process.pidns_init_start_ns,
        init.process.start_time_ns
    );

    // The host's pid namespace (unshare's): its init is pid 1, whose start /proc gives in
    // clock ticks after boot.
    let stat = std::fs::read_to_string("/proc/1/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let start_ticks: u64 = after_name.split(' ').nth(19).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let tick_ns = 1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let clock_ns = |clock| {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        assert_eq!(unsafe { libc::clock_gettime(clock, &mut now) }, 0);
        now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
    };
    let boot_epoch_ns = clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME);
    let expected = boot_epoch_ns + start_ticks * tick_ns;
    let read = unshare.process.pidns_init_start_ns;
    assert!(
        read.abs_diff(expected) <= 2 * tick_ns,
        "the host's init started at {expected}, read {read}"
    );
}

/// Whether an open created its file is the kernel's word (FMODE_CREATED), read from the new
/// descriptor: the first O_CREAT open of a path creates it, the next finds it.
#[test]
fn opens_say_whether_they_created_the_file() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("created");
    let name = path.display().to_string();
    let child = in_child("pal-creat", || {
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        drop(create());
        drop(create());
        drop(std::fs::File::open(&path).unwrap());
    });
    let opens = collect(
        &mut sensor,
        |event| {
            event.process.pid == child
                && matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == name)
        },
        |events| events.len() >= 3,
    );
    let created: Vec<Option<bool>> = opens
        .iter()
        .map(|event| event.opened_file.and_then(|file| file.created))
        .collect();
    assert_eq!(
        created,
        [Some(true), Some(false), Some(false)],
        "{opens:#?}"
    );
}

/// The opens of a forked child with a pipe on descriptor 0, a connected TCP socket on 1 and
/// nothing on 2: a failed one, then one that gets descriptor 2; under a sensor that reads the
/// standard descriptors or not.
fn opens_with_redirected_descriptors(read_std_fds: bool) -> (Event, Event) {
    let mut sensor = SensorConfig {
        kinds: Some([EventKind::Openat].into_iter().collect()),
        backend: BackendChoice::Ebpf,
        read_std_fds,
        ..SensorConfig::default()
    }
    .build()
    .expect("the eBPF sensor starts");
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_owned();
    let missing = path.with_extension("missing");
    let names = [&missing, &path].map(|path| path.display().to_string());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let child = in_child("pal-stdfds", || {
        use std::os::fd::AsRawFd;
        let mut pipe = [0; 2];
        // SAFETY: pipe writes two descriptors into the array it is given.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        let stream = std::net::TcpStream::connect(address).unwrap();
        // SAFETY: the forked child rearranges its own descriptors 0 to 2.
        unsafe {
            assert_eq!(libc::dup2(pipe[0], 0), 0);
            assert_eq!(libc::dup2(stream.as_raw_fd(), 1), 1);
            libc::close(2);
        }
        assert!(std::fs::File::open(&missing).is_err());
        let opened = std::fs::File::open(&path).unwrap();
        assert_eq!(opened.as_raw_fd(), 2, "the lowest free descriptor");
    });
    let opens = collect(
        &mut sensor,
        |event| {
            event.process.pid == child
                && matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if names.contains(&fd.name))
        },
        |events| events.len() >= 2,
    );
    match opens.as_slice() {
        [failed, opened] => (failed.clone(), opened.clone()),
        _ => panic!("the child's two opens: {opens:#?}"),
    }
}

/// What a process has on descriptors 0, 1 and 2 is read when its event happens (a reverse
/// shell's redirection shows, and the descriptor an open just returned), and only when asked
/// for.
#[test]
fn events_carry_the_standard_descriptors_when_asked_for() {
    if !can_run_ebpf() {
        return;
    }
    let (failed, opened) = opens_with_redirected_descriptors(true);
    assert_eq!(
        failed.process.std_fds,
        Some([Some(FdKind::Pipe), Some(FdKind::Ipv4), None]),
        "{failed:?}"
    );
    assert_eq!(
        opened.process.std_fds,
        Some([Some(FdKind::Pipe), Some(FdKind::Ipv4), Some(FdKind::File)]),
        "{opened:?}"
    );
    let (failed, opened) = opens_with_redirected_descriptors(false);
    assert_eq!(
        (failed.process.std_fds, opened.process.std_fds),
        (None, None)
    );
}
