//! Helpers shared by the kernel tests: capability check, sensor start, waiting for events,
//! and running an action in a forked child (the sensor ignores the test process itself).

#![allow(dead_code)] // Each test binary uses its own subset.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind};
use palisade_sensor::{BackendChoice, Sensor, SensorConfig};

/// Root and kernel BTF: skipped with a reason outside CI, required in CI.
pub fn can_run_ebpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    palisade_testdata::capability(
        "root and eBPF (kernel BTF)",
        is_root && Path::new("/sys/kernel/btf/vmlinux").exists(),
    )
}

/// An eBPF sensor reporting `kinds`.
pub fn start(kinds: &[EventKind]) -> Sensor {
    let config = SensorConfig {
        kinds: Some(kinds.iter().copied().collect::<BTreeSet<_>>()),
        backend: BackendChoice::Ebpf,
        ..SensorConfig::default()
    };
    config.build().expect("the eBPF sensor starts")
}

/// Polls until an event satisfies `matches`, for at most `timeout`.
pub fn wait_for(
    sensor: &mut Sensor,
    timeout: Duration,
    matches: impl Fn(&Event) -> bool,
) -> Option<Event> {
    let deadline = Instant::now() + timeout;
    let mut events = Vec::new();
    while Instant::now() < deadline {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
        if let Some(found) = events.drain(..).find(|event| matches(event)) {
            return Some(found);
        }
    }
    None
}

/// Every event from process `pid` until `done` says the collection is complete (or 10 s
/// passed), in the order the kernel produced them.
pub fn collect_from(sensor: &mut Sensor, pid: u32, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    collect(sensor, |event| event.process.pid == pid, done)
}

/// Every event that `keep` accepts until `done` says the collection is complete (or 10 s
/// passed), in the order the kernel produced them.
pub fn collect(
    sensor: &mut Sensor,
    keep: impl Fn(&Event) -> bool,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut collected = Vec::new();
    let mut events = Vec::new();
    while Instant::now() < deadline && !done(&collected) {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
        collected.extend(events.drain(..).filter(|event| keep(event)));
    }
    collected
}

/// A name unique to this test run.
pub fn marker(name: &str) -> String {
    format!("palisade-{name}-{}", std::process::id())
}

/// Runs `action` in a forked child whose command name is `comm`, waits for it and returns
/// its pid. The child exits 0 when `action` returns and 101 when it panics; anything else
/// fails the test.
pub fn in_child(comm: &str, action: impl FnOnce()) -> u32 {
    let name = CString::new(comm).unwrap();
    // SAFETY: the child only runs `action` and exits; glibc keeps malloc usable after fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
        let ok = std::panic::catch_unwind(AssertUnwindSafe(action)).is_ok();
        // SAFETY: _exit ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 101 }) };
    }
    let status = wait(pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child {comm} failed (wait status {status:#x})"
    );
    pid as u32
}

/// Waits for the child `pid` and returns its wait status.
pub fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is valid for writes.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    status
}

/// `-errno` of the last failed call, as a system call's return value.
pub fn last_error() -> i64 {
    -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Asserts the process fields of an event from a child started by [`in_child`] as root.
pub fn assert_child_process(event: &Event, child: u32, comm: &str) {
    let process = &event.process;
    assert_eq!(process.pid, child, "{event:?}");
    assert_eq!(process.tid, child, "single-threaded child: {event:?}");
    assert_eq!(process.ppid, std::process::id(), "{event:?}");
    assert_eq!(process.name, comm, "{event:?}");
    assert_eq!(process.uid, 0, "{event:?}");
    assert_eq!(process.user, "root", "{event:?}");
    let test_binary = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(
        Path::new(&process.exepath),
        test_binary,
        "the child runs the test binary: {event:?}"
    );
    assert!(event.container.is_none(), "a host process: {event:?}");
    assert!(event.cgroup_id != 0, "{event:?}");
    assert_wall_clock_timestamp(event);
}

/// Asserts that the event's timestamp is wall-clock time (within a minute of now), not time
/// since boot.
pub fn assert_wall_clock_timestamp(event: &Event) {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        now_ns.abs_diff(event.timestamp_ns) < 60_000_000_000,
        "timestamp is wall-clock time: {event:?}"
    );
}

/// The canonical text of a path.
pub fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// The directories of an overlay file system under a temporary directory: files put in
/// `lower` are the image's, files written through `merged` land in `upper`.
pub struct Overlay {
    pub lower: PathBuf,
    pub merged: PathBuf,
    options: CString,
    merged_c: CString,
}

impl Overlay {
    /// Creates `lower`, `upper`, `work` and `merged` in `dir`.
    pub fn new(dir: &Path) -> Overlay {
        let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|name| {
            let path = dir.join(name);
            std::fs::create_dir(&path).unwrap();
            path
        });
        let options = CString::new(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .unwrap();
        let merged_c = CString::new(merged.to_str().unwrap()).unwrap();
        Overlay {
            lower,
            merged,
            options,
            merged_c,
        }
    }

    /// Mounts the overlay on `merged` in a new mount namespace of the calling process: call it
    /// in a child ([`in_child`]), so that the mount disappears with the child and the host's
    /// mounts are never touched.
    pub fn mount_in_own_namespace(&self) {
        // SAFETY: plain system calls with valid NUL-terminated strings.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0);
            let none = std::ptr::null();
            let private = libc::MS_REC | libc::MS_PRIVATE;
            assert_eq!(
                libc::mount(none, c"/".as_ptr(), none, private, std::ptr::null()),
                0
            );
            let mounted = libc::mount(
                c"overlay".as_ptr(),
                self.merged_c.as_ptr(),
                c"overlay".as_ptr(),
                0,
                self.options.as_ptr().cast(),
            );
            assert_eq!(mounted, 0, "{}", std::io::Error::last_os_error());
        }
    }
}
