//! Reading processes from `/proc`, for seeding the process table and for the fallback.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

use palisade_event::{FdKind, TaskResources};

use crate::decode::{file_kind, socket_kind};
use crate::process::{Capabilities, ExeFile, FdState, ProcessInfo, SessionIds};
use crate::runtime::kernel_dev;

/// A process as `/proc` shows it, with its cgroup v2 path for container attribution and its
/// pid namespace.
#[derive(Debug, Clone)]
pub(crate) struct ProcProcess {
    pub info: ProcessInfo,
    pub cgroup_path: String,
    /// The inode of its pid namespace ([`read_pid_namespace`]).
    pub pid_namespace: Option<u64>,
}

/// Nanoseconds to add to a CLOCK_BOOTTIME reading to get the time since the Unix epoch. Read
/// at the first call and the same for the rest of the process's life: every boot-clock
/// reading this process puts on the epoch (its sensors' event and start times, a responder's
/// check of a start time in `/proc`) then lands on one clock, even after the wall clock is
/// stepped.
pub(crate) fn boot_to_epoch_offset_ns() -> u64 {
    static OFFSET_NS: OnceLock<u64> = OnceLock::new();
    *OFFSET_NS.get_or_init(|| {
        let realtime = clock_ns(libc::CLOCK_REALTIME);
        let boottime = clock_ns(libc::CLOCK_BOOTTIME);
        realtime.saturating_sub(boottime)
    })
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The ids of the processes `/proc` lists now (none when it cannot be read).
pub(crate) fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
}

/// Every process in `/proc` (processes that exit during the scan are skipped).
pub(crate) fn scan(boot_offset_ns: u64) -> Vec<ProcProcess> {
    let mut processes: Vec<ProcProcess> =
        pids().filter_map(|pid| read(pid, boot_offset_ns)).collect();
    // Parents before children, so that each insert finds its parent.
    processes.sort_by_key(|process| process.info.start_time_ns);
    processes
}

/// `/proc/<pid>/stat`'s text split after the command name (in parentheses, and which may
/// itself contain ") "): the name, and the fields from `state` (field 3) on.
fn split_stat(stat: &str) -> Option<(&str, Vec<&str>)> {
    let (name_part, rest) = stat.rsplit_once(") ")?;
    let name = name_part.split_once(" (")?.1;
    Some((name, rest.split_whitespace().collect()))
}

/// The start time (stat's field 22) in ns since the epoch.
fn start_time_ns(fields: &[&str], boot_offset_ns: u64) -> Option<u64> {
    let start_ticks: u64 = fields.get(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(start_ticks * (1_000_000_000 / ticks_per_second) + boot_offset_ns)
}

/// The terminal (stat's `tty_nr`) and the session, process group and pid as the process's own
/// pid namespace numbers them: the last column of status's NS* lines (stat's pgrp and
/// session are the reader's view).
fn session_ids(fields: &[&str], status: &str) -> Option<SessionIds> {
    let innermost = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|ids| ids.split_whitespace().last()?.parse().ok())
            .unwrap_or(0)
    };
    Some(SessionIds {
        tty: fields.get(4)?.parse::<i32>().ok()? as u32,
        sid: innermost("NSsid:"),
        vpgid: innermost("NSpgid:"),
        vpid: innermost("NSpid:"),
        pidns_init_start_ns: 0,
    })
}

/// A process's start time in ns since the epoch (`boot_offset_ns` after boot), from its
/// `stat`; `None` when it is gone.
pub(crate) fn read_start_time_ns(pid: u32, boot_offset_ns: u64) -> Option<u64> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    start_time_ns(&split_stat(&stat)?.1, boot_offset_ns)
}

/// The start time of process `pid` in ns since the epoch, on the clock of the events a sensor
/// of this process reports ([`Process::start_time_ns`](palisade_event::Process)), to a clock
/// tick (`/proc` keeps starts in ticks, where the eBPF sensor reads nanoseconds); `None` when
/// the process is gone.
pub fn process_start_time_ns(pid: u32) -> Option<u64> {
    read_start_time_ns(pid, boot_to_epoch_offset_ns())
}

/// The inode of `pid`'s pid namespace (`/proc/<pid>/ns/pid`); `None` when the process is
/// gone or its namespace link is refused (even to root, for some processes).
pub(crate) fn read_pid_namespace(pid: u32) -> Option<u64> {
    let link = Path::new("/proc").join(pid.to_string()).join("ns/pid");
    std::fs::metadata(link).ok().map(|metadata| metadata.ino())
}

/// A new process's start time and session, from `stat` and `status` only: what the fallback
/// needs of a fork, which the proc connector reports without either.
pub(crate) fn read_start_and_session(pid: u32, boot_offset_ns: u64) -> Option<(u64, SessionIds)> {
    let dir = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let (_, fields) = split_stat(&stat)?;
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    Some((
        start_time_ns(&fields, boot_offset_ns)?,
        session_ids(&fields, &status)?,
    ))
}

/// One process from `/proc/<pid>`.
pub(crate) fn read(pid: u32, boot_offset_ns: u64) -> Option<ProcProcess> {
    let dir = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let (name, fields) = split_stat(&stat)?;
    let name = name.to_owned();
    let ppid = fields.get(1)?.parse().ok()?;
    let start_time_ns = start_time_ns(&fields, boot_offset_ns)?;

    let (cmdline, args_truncated) = read_bounded(&dir.join("cmdline"), ARGS_MAX_BYTES);
    let mut argv = split_nul(&cmdline);
    let exe = if argv.is_empty() {
        String::new()
    } else {
        argv.remove(0)
    };
    let exepath = read_link(&dir.join("exe"));
    // The file that runs, even when it was deleted or replaced since (the link is magic).
    let exe_file = std::fs::metadata(dir.join("exe"))
        .map(|metadata| ExeFile {
            dev: kernel_dev(metadata.dev()),
            ino: metadata.ino(),
            ..ExeFile::default()
        })
        .unwrap_or_default();
    let cwd = read_link(&dir.join("cwd"));
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    // The real ids: the first column of `Uid:` and `Gid:`.
    let real_id = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let session = session_ids(&fields, &status)?;
    let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
    let cgroup_path = cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or_default()
        .to_owned();
    let status_kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let capability_set = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0)
    };
    let limits = std::fs::read_to_string(dir.join("limits")).unwrap_or_default();
    let resources = TaskResources {
        vm_size_kb: status_kb("VmSize:"),
        vm_rss_kb: status_kb("VmRSS:"),
        vm_swap_kb: status_kb("VmSwap:"),
        // stat's fields 10 (minflt) and 12 (majflt), counted from `state`, field 3.
        minor_faults: fields.get(7)?.parse().ok()?,
        major_faults: fields.get(9)?.parse().ok()?,
        fd_limit: open_files_limit(&limits).unwrap_or(-1),
    };
    Some(ProcProcess {
        info: ProcessInfo {
            pid,
            ppid,
            name: name.into(),
            exe: exe.into(),
            exepath: exepath.into(),
            args: argv.into(),
            args_truncated,
            cwd: cwd.into(),
            uid: real_id("Uid:"),
            gid: real_id("Gid:"),
            start_time_ns,
            session,
            exe_file,
            resources: Some(resources),
            cgroups: controller_cgroups(&cgroup).into(),
            capabilities: Capabilities {
                inheritable: capability_set("CapInh:"),
                permitted: capability_set("CapPrm:"),
                effective: capability_set("CapEff:"),
            },
            ..ProcessInfo::default()
        },
        cgroup_path,
        pid_namespace: read_pid_namespace(pid),
    })
}

/// The soft limit on open files from `/proc/<pid>/limits` (-1 for `unlimited`).
fn open_files_limit(limits: &str) -> Option<i64> {
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(-1);
    }
    soft.parse().ok()
}

/// At most this many entries of `/proc/<pid>/fd` are counted, as the probes count tables of at
/// most 16,384 descriptors (`FD_COUNT_MAX_FDS` in `bpf/sensor.h`): past it the count is absent.
const FD_COUNT_MAX: u64 = 16_384;

/// A live process's descriptor limit (`/proc/<pid>/limits`) and, when `count_open` asks, its
/// open descriptors (the entries of `/proc/<pid>/fd`, at most [`FD_COUNT_MAX`]) now; `None`
/// when the process is gone or its limits cannot be read.
pub(crate) fn read_fd_state(pid: u32, count_open: bool) -> Option<FdState> {
    let dir = Path::new("/proc").join(pid.to_string());
    let limit = open_files_limit(&std::fs::read_to_string(dir.join("limits")).ok()?)?;
    if !count_open {
        return Some(FdState { limit, open: None });
    }
    let open = std::fs::read_dir(dir.join("fd")).ok().and_then(|entries| {
        let mut open = 0;
        for entry in entries {
            // An entry that fails to read (a descriptor closed meanwhile) is not counted.
            if entry.is_ok() {
                open += 1;
            }
            if open > FD_COUNT_MAX {
                return None;
            }
        }
        Some(open)
    });
    Some(FdState { limit, open })
}

/// What a live process has on descriptors 0, 1 and 2 now, as the kernel probes read them
/// ([`palisade_event::Process::std_fds`]): the file type of the inode each of
/// `/proc/<pid>/fd/0..2` leads to, and for a socket its address family, read from a copy of
/// the descriptor (`pidfd_getfd`, which needs the right to trace the process; a socket whose
/// family cannot be read is `Other`). `None` inside for a descriptor not open; `None` when the
/// process is gone.
pub(crate) fn read_std_fds(pid: u32) -> Option<[Option<FdKind>; 3]> {
    let dir = Path::new("/proc").join(pid.to_string()).join("fd");
    std::fs::symlink_metadata(&dir).ok()?;
    let mut kinds = [None; 3];
    let mut process: Option<OwnedFd> = None;
    for (fd, kind) in kinds.iter_mut().enumerate() {
        let Ok(metadata) = std::fs::metadata(dir.join(fd.to_string())) else {
            continue;
        };
        *kind = Some(if metadata.mode() & libc::S_IFMT == libc::S_IFSOCK {
            if process.is_none() {
                process = pidfd_open(pid);
            }
            process
                .as_ref()
                .and_then(|process| socket_family(process, fd as i32))
                .map_or(FdKind::Other, socket_kind)
        } else {
            file_kind(metadata.mode())
        });
    }
    Some(kinds)
}

/// A descriptor that refers to process `pid` (`pidfd_open`).
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a descriptor this process now owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The address family of socket `fd` of the process behind `process`, from a copy of the
/// descriptor (closed again when the copy drops; the process's own is untouched).
fn socket_family(process: &OwnedFd, fd: i32) -> Option<u16> {
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number of that process and flags, and
    // returns a new descriptor or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, process.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return None;
    }
    // SAFETY: a non-negative result is a descriptor this process now owns.
    let copy = unsafe { OwnedFd::from_raw_fd(copy as i32) };
    let mut domain: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `domain` and `length` are valid for getsockopt to write an int option into.
    let result = unsafe {
        libc::getsockopt(
            copy.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut length,
        )
    };
    (result == 0).then_some(domain as u16)
}

/// The controllers Falco reports, by their kernel names (`/proc` calls `io` `blkio` on a v1
/// hierarchy).
const FALCO_CONTROLLERS: [(&str, &str); 5] = [
    ("cpuset", "cpuset"),
    ("cpu", "cpu"),
    ("cpuacct", "cpuacct"),
    ("io", "blkio"),
    ("memory", "memory"),
];

/// `subsystem=path` for each controller Falco reports (`cpuset`, `cpu`, `cpuacct`, `io`,
/// `memory`), from the text of `/proc/<pid>/cgroup`: the path in the v1 hierarchy the
/// controller is mounted on, otherwise the unified (v2) path — what the kernel probes read at
/// exec and fork ([`palisade_event::Process::cgroups`]).
///
/// ```
/// let text = "4:memory:/pods/x\n2:cpu,cpuacct:/c\n0::/u\n";
/// assert_eq!(
///     palisade_sensor::controller_cgroups(text),
///     ["cpuset=/u", "cpu=/c", "cpuacct=/c", "io=/u", "memory=/pods/x"]
/// );
/// ```
pub fn controller_cgroups(proc_cgroup: &str) -> Vec<String> {
    let unified = proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"));
    FALCO_CONTROLLERS
        .iter()
        .filter_map(|(kernel_name, v1_name)| {
            let v1 = proc_cgroup.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|controller| controller == *v1_name)
                    .then_some(path)
            });
            v1.or(unified).map(|path| format!("{kernel_name}={path}"))
        })
        .collect()
}

fn read_link(path: &Path) -> String {
    std::fs::read_link(path)
        .map(|target| target.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// At most this many bytes of a process's arguments (`argv[0]` and the NULs included) are
/// kept, as the kernel side keeps them (`STR_MAX - 1`) and as Falco's driver does: the
/// argument the limit falls in is kept up to it, the rest dropped.
pub(crate) const ARGS_MAX_BYTES: usize = 4095;

/// At most this many bytes of an environment are kept: the kernel side's `ENV_MAX`.
pub(crate) const ENV_MAX_BYTES: usize = 4095;
/// At most this many variables are kept (4 KiB of one-letter variables would be 1,365).
pub(crate) const ENV_MAX_ENTRIES: usize = 256;

/// A process's environment as captured: its first entries, and whether there were more.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Environment {
    pub entries: Vec<String>,
    pub truncated: bool,
}

/// The environment from the NUL-separated block `bytes`, the first bytes of a block of
/// `full_len` bytes. When the block was cut, its last entry is dropped rather than kept
/// with a cut value; at most [`ENV_MAX_ENTRIES`] entries are kept.
pub(crate) fn environment(bytes: &[u8], full_len: usize) -> Environment {
    let cut = full_len > bytes.len();
    let mut entries = split_nul(bytes);
    let ends_with_nul = bytes.last() == Some(&0);
    if cut && !ends_with_nul {
        entries.pop();
    }
    let truncated = cut || entries.len() > ENV_MAX_ENTRIES;
    entries.truncate(ENV_MAX_ENTRIES);
    Environment { entries, truncated }
}

/// The environment of a running process (`/proc/<pid>/environ`, read up to
/// [`ENV_MAX_BYTES`]), as the kernel side captures it at exec.
pub(crate) fn read_environment(pid: u32) -> Environment {
    let (bytes, cut) = read_bounded(Path::new(&format!("/proc/{pid}/environ")), ENV_MAX_BYTES);
    environment(&bytes, bytes.len() + usize::from(cut))
}

/// The first `limit` bytes of the file at `path` and whether it had more; nothing when it
/// cannot be read (the process is gone).
fn read_bounded(path: &Path, limit: usize) -> (Vec<u8>, bool) {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut bytes));
    if read.is_err() {
        return (Vec::new(), false);
    }
    let cut = bytes.len() > limit;
    bytes.truncate(limit);
    (bytes, cut)
}

/// Splits NUL-separated strings (argv), ignoring the trailing NUL.
pub(crate) fn split_nul(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&byte| byte == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::procfs::{
        ENV_MAX_ENTRIES, Environment, controller_cgroups, environment, read_environment,
    };

    #[test]
    fn controller_cgroups_come_from_v1_hierarchies_or_the_unified_one() {
        let hybrid =
            "9:name=systemd:/\n7:blkio:/b\n4:memory:/m/x\n3:cpuset:/\n2:cpu,cpuacct:/c\n0::/u\n";
        assert_eq!(
            controller_cgroups(hybrid),
            ["cpuset=/", "cpu=/c", "cpuacct=/c", "io=/b", "memory=/m/x"]
        );
        assert_eq!(
            controller_cgroups("0::/system.slice/x.service\n"),
            [
                "cpuset=/system.slice/x.service",
                "cpu=/system.slice/x.service",
                "cpuacct=/system.slice/x.service",
                "io=/system.slice/x.service",
                "memory=/system.slice/x.service"
            ]
        );
        assert!(controller_cgroups("").is_empty());
    }

    #[test]
    fn seeding_reads_memory_faults_and_the_descriptor_limit() {
        let process = super::read(std::process::id(), 0).expect("this process is in /proc");
        let resources = process.info.resources.expect("read");
        assert!(
            resources.vm_size_kb > 0 && resources.vm_rss_kb > 0,
            "{resources:?}"
        );
        assert!(resources.minor_faults > 0, "{resources:?}");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let expected = if limit.rlim_cur == libc::RLIM_INFINITY {
            -1
        } else {
            limit.rlim_cur as i64
        };
        assert_eq!(resources.fd_limit, expected);
    }

    #[test]
    fn environments_are_bounded_and_their_truncation_marked() {
        let whole = environment(b"A=1\0B=two\0", 10);
        assert_eq!(
            whole,
            Environment {
                entries: vec!["A=1".into(), "B=two".into()],
                truncated: false
            }
        );
        // Cut inside the second entry: its partial value is not kept.
        let cut = environment(b"A=1\0B=tw", 4000);
        assert_eq!(cut.entries, ["A=1"]);
        assert!(cut.truncated);
        let many: Vec<u8> = (0..ENV_MAX_ENTRIES + 10)
            .flat_map(|index| format!("V{index}=x\0").into_bytes())
            .collect();
        let capped = environment(&many, many.len());
        assert_eq!(capped.entries.len(), ENV_MAX_ENTRIES);
        assert!(capped.truncated);
        assert_eq!(environment(b"", 0), Environment::default());
    }

    /// A running process's arguments past 4,095 bytes are cut there and marked, like the
    /// kernel side's; shorter ones are whole and not marked.
    #[test]
    fn a_running_process_arguments_are_cut_at_the_limit_and_marked() {
        let long = "x".repeat(5_000);
        let read_args = |args: &[&str]| {
            let mut child = std::process::Command::new("/bin/sh")
                .args(["-c", "read line; :", "sh"])
                .args(args)
                // The shell waits in its read builtin: no child of its own outlives the kill.
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // The exec has closed the parent's pipe (spawn returned) before it set up the
            // new arguments: read until they are there.
            let started = std::time::Instant::now();
            let read = loop {
                let read = super::read(child.id(), 0)
                    .expect("the child is in /proc")
                    .info;
                if !read.args.is_empty() || started.elapsed() > std::time::Duration::from_secs(2) {
                    break read;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            };
            child.kill().unwrap();
            child.wait().unwrap();
            read
        };
        let cut = read_args(&["short", &long]);
        assert!(cut.args_truncated);
        // "/bin/sh\0-c\0read line; :\0sh\0short\0" then the long argument up to the limit.
        let kept = super::ARGS_MAX_BYTES - "/bin/sh -c read line; : sh short ".len();
        assert_eq!(
            cut.args.iter().map(String::len).collect::<Vec<_>>(),
            [2, 12, 2, 5, kept]
        );
        let whole = read_args(&["short"]);
        assert!(!whole.args_truncated);
        assert_eq!(whole.args.last().map(String::as_str), Some("short"));
    }

    #[test]
    fn a_running_process_environment_is_read_from_proc() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env_clear()
            .env("PALISADE_PROCFS_ENV", "seen")
            .spawn()
            .unwrap();
        let read = read_environment(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(read.entries, ["PALISADE_PROCFS_ENV=seen"]);
        assert!(!read.truncated);
    }

    #[test]
    fn seeding_reads_the_session_ids_and_terminal_of_a_process() {
        let pid = std::process::id();
        let process = super::read(pid, 0).expect("this process is in /proc");
        let session = process.info.session;
        // SAFETY: these calls only read the calling process's ids.
        let (sid, pgid) = unsafe { (libc::getsid(0), libc::getpgrp()) };
        // The tests run in the host's pid namespace, where both views agree.
        assert_eq!(session.vpid, pid);
        assert_eq!(session.sid, sid as u32);
        assert_eq!(session.vpgid, pgid as u32);
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let tty_nr: i32 = stat
            .rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .nth(4)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(session.tty, tty_nr as u32);
    }
}
