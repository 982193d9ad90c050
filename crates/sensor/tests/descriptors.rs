//! The descriptor state of a process when its event happens (`SensorConfig::read_fd_state`):
//! the `RLIMIT_NOFILE` soft limit, which follows setrlimit, and, with
//! `SensorConfig::count_open_fds` too, the open descriptors, counted in the kernel from the
//! table's bitmap (absent for a table larger than the probes count), or read from `/proc` by
//! the fallback. Without the settings neither is read; with the first alone only the limit.

mod common;

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::{can_run_ebpf, in_child, marker, wait_for};
use palisade_event::{Event, EventKind, Payload};
use palisade_sensor::{BackendChoice, Sensor, SensorConfig};

/// What a test's sensor reads of the descriptor state.
#[derive(Clone, Copy)]
enum Reads {
    Nothing,
    /// The limit only (`proc.fdlimit`).
    Limit,
    /// The limit and the open descriptors (`proc.fdopencount`, `proc.fdusage`).
    LimitAndCount,
}

fn sensor(backend: BackendChoice, kinds: &[EventKind], reads: Reads) -> Sensor {
    let config = SensorConfig {
        kinds: Some(kinds.iter().copied().collect::<BTreeSet<_>>()),
        backend,
        read_fd_state: !matches!(reads, Reads::Nothing),
        count_open_fds: matches!(reads, Reads::LimitAndCount),
        ..SensorConfig::default()
    };
    config.build().expect("the sensor starts")
}

/// Sets the calling process's `RLIMIT_NOFILE` soft limit (and the hard limit when it is
/// lower).
fn set_fd_limit(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for reads and writes.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = soft;
        limit.rlim_max = limit.rlim_max.max(soft);
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit),
            0,
            "setrlimit: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// In a child: keeps only descriptors 0-2, opens `extra` more, then opens `path`.
fn open_with_descriptors(comm: &str, fd_limit: Option<u64>, extra: usize, path: &str) -> u32 {
    let path = path.to_owned();
    in_child(comm, move || {
        // SAFETY: closes only this child's descriptors.
        assert_eq!(unsafe { libc::close_range(3, u32::MAX, 0) }, 0);
        if let Some(soft) = fd_limit {
            set_fd_limit(soft);
        }
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut held = Vec::new();
        for _ in 1..extra {
            held.push(null.try_clone().unwrap());
        }
        drop(std::fs::File::open(&path).unwrap());
        drop(held);
        drop(null);
    })
}

/// Descriptors 0-2 the test process has open (its children inherit them).
fn standard_descriptors() -> u64 {
    (0..3)
        // SAFETY: F_GETFD only queries the descriptor.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .count() as u64
}

fn opened(name: &str) -> impl Fn(&Event) -> bool + '_ {
    move |event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == name)
}

#[test]
fn an_open_carries_the_open_descriptors_and_the_limit_set_since_the_fork() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(
        BackendChoice::Ebpf,
        &[EventKind::Openat],
        Reads::LimitAndCount,
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let name = file.path().to_str().unwrap().to_owned();
    let inherited_limit = {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        limit.rlim_cur as i64
    };
    assert_ne!(inherited_limit, 300);

    let busy = open_with_descriptors("pal-fds-busy", Some(300), 40, &name);
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == busy && opened(&name)(event)
    })
    .expect("the busy child's open");
    // 0-2, /dev/null and its 39 copies, and the file the open returned.
    let expected = standard_descriptors() + 40 + 1;
    assert_eq!(
        event.process.open_fds,
        Some(expected),
        "{:?}",
        event.process
    );
    assert_eq!(event.process.fd_limit, Some(300), "{:?}", event.process);
    assert_eq!(
        event.process.resources.map(|resources| resources.fd_limit),
        Some(inherited_limit),
        "the fork's limit stays the fork's: {:?}",
        event.process
    );

    let quiet = open_with_descriptors("pal-fds-quiet", None, 1, &name);
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == quiet && opened(&name)(event)
    })
    .expect("the quiet child's open");
    assert_eq!(
        event.process.open_fds,
        Some(standard_descriptors() + 2),
        "{:?}",
        event.process
    );
    assert_eq!(event.process.fd_limit, Some(inherited_limit));
}

/// A table the probes do not count (more than 16,384 slots) leaves the count absent, never
/// low; the limit is still read.
#[test]
fn a_table_too_large_to_count_leaves_the_count_absent() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(
        BackendChoice::Ebpf,
        &[EventKind::Openat],
        Reads::LimitAndCount,
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let name = file.path().to_str().unwrap().to_owned();
    let path = name.clone();
    let child = in_child("pal-fds-large", move || {
        set_fd_limit(17_000);
        let null = std::fs::File::open("/dev/null").unwrap();
        // A descriptor above 16,384 grows the table past what the probes count.
        // SAFETY: dup2 onto an unused descriptor of this child.
        assert_eq!(unsafe { libc::dup2(null.as_raw_fd(), 16_999) }, 16_999);
        drop(std::fs::File::open(&path).unwrap());
    });
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == child && opened(&name)(event)
    })
    .expect("the child's open");
    assert_eq!(event.process.open_fds, None, "{:?}", event.process);
    assert_eq!(event.process.fd_limit, Some(17_000), "{:?}", event.process);
}

#[test]
fn without_the_setting_nothing_is_read() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(BackendChoice::Ebpf, &[EventKind::Openat], Reads::Nothing);
    let file = tempfile::NamedTempFile::new().unwrap();
    let name = file.path().to_str().unwrap().to_owned();
    let child = open_with_descriptors("pal-fds-off", Some(300), 3, &name);
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == child && opened(&name)(event)
    })
    .expect("the child's open");
    assert_eq!(
        (event.process.open_fds, event.process.fd_limit),
        (None, None)
    );
}

/// `proc.fdlimit` alone reads the limit and leaves the count, the costly part, unread.
#[test]
fn the_limit_alone_leaves_the_descriptors_uncounted() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(BackendChoice::Ebpf, &[EventKind::Openat], Reads::Limit);
    let file = tempfile::NamedTempFile::new().unwrap();
    let name = file.path().to_str().unwrap().to_owned();
    let child = open_with_descriptors("pal-fds-limit", Some(300), 3, &name);
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == child && opened(&name)(event)
    })
    .expect("the child's open");
    assert_eq!(
        (event.process.open_fds, event.process.fd_limit),
        (None, Some(300)),
        "{:?}",
        event.process
    );
}

/// The fallback reads `/proc/<pid>/limits` and lists `/proc/<pid>/fd` when it handles the
/// event, so a process still running then is seen as it is.
#[test]
fn the_fallback_reads_the_descriptors_of_a_live_process() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(
        BackendChoice::Fallback,
        &[EventKind::Execve],
        Reads::LimitAndCount,
    );
    let arg = marker("fallback-fds");
    // The shell gets the test's inheritable descriptors, opens 3 and 4, lowers its limit and
    // becomes a sleep that keeps all of it: static busybox's, because a dynamically linked
    // sleep's loader holds a library open for a moment after the exec, which the fallback,
    // reading `/proc/<pid>/fd` as soon as the exec is reported, may count.
    let mut shell = Command::new("/bin/sh")
        .args([
            "-c",
            "exec 3</dev/null 4</dev/null; ulimit -n 333; exec /bin/busybox sleep 2",
            &arg,
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == shell.id() && event.process.name == "busybox"
    })
    .expect("busybox sleep's exec from the proc connector");
    shell.wait().unwrap();
    let mut expected = inherited_descriptors();
    expected.extend([0, 3, 4]);
    assert_eq!(event.process.fd_limit, Some(333), "{:?}", event.process);
    assert_eq!(
        event.process.open_fds,
        Some(expected.len() as u64),
        "{expected:?}: {:?}",
        event.process
    );
}

/// The fallback with the limit alone reads `/proc/<pid>/limits` and not `/proc/<pid>/fd`.
#[test]
fn the_fallback_reads_the_limit_alone_when_only_it_is_asked() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = sensor(BackendChoice::Fallback, &[EventKind::Execve], Reads::Limit);
    let arg = marker("fallback-fd-limit");
    let mut shell = Command::new("/bin/sh")
        .args(["-c", "ulimit -n 334; exec sleep 2", &arg])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let event = wait_for(&mut sensor, Duration::from_secs(10), |event| {
        event.process.pid == shell.id() && event.process.name == "sleep"
    })
    .expect("sleep's exec from the proc connector");
    shell.wait().unwrap();
    assert_eq!(
        (event.process.fd_limit, event.process.open_fds),
        (Some(334), None),
        "{:?}",
        event.process
    );
}

/// The test process's descriptors that a program it starts inherits (those without
/// close-on-exec).
fn inherited_descriptors() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        // SAFETY: F_GETFD only queries the descriptor (the listing's own is closed by then).
        .filter(|&fd| {
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags >= 0 && flags & libc::FD_CLOEXEC == 0
        })
        .collect()
}
