//! The fallback backend for kernels where the eBPF probes cannot load: the proc connector
//! (netlink) reports fork, exec and exit, `/proc` supplies the details, and fanotify reports
//! file opens.
//!
//! It observes far less than the probes: no other system calls, no return values, no
//! open flags, no cgroup at event time (a process that exits before `/proc` is read loses
//! its details). [`FallbackSource::MISSING_FIELDS`] lists what is absent, for the status
//! the agent shows.
//!
//! `/proc` reads on the event path, since the kernel sends no record to read instead:
//!
//! - an exec reads the process from `/proc/<pid>` (executable, arguments, working directory,
//!   ids, cgroup; the environment when captured): the proc connector reports only the pid;
//! - a fork reads the child's `stat` and `status` only (start time, terminal, session and
//!   its pid namespace's ids), the rest of it being the parent's;
//! - with `SensorConfig::read_fd_state`, every event reads the descriptor limit and count at
//!   the event, which nothing but `/proc` gives;
//! - with `SensorConfig::read_std_fds`, every event reads what descriptors 0 to 2 are;
//! - a process's pid namespace start is looked for in `/proc` once per namespace.
//!
//! Everything else comes from the process table: the cgroup (kept at exec and from `/proc`
//! at start, by a key of its path; forks inherit it), and from it the container and the user
//! and group names ([`crate::ContainerAttribution`]), so other events read nothing.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use palisade_event::EventKind;

use crate::error::Error;
use crate::sensor::FallbackObservation;

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HEADER: usize = 16;
const CN_MSG_HEADER: usize = 20;
/// `what`, `cpu`, `timestamp_ns` precede the per-event data in `struct proc_event`.
const PROC_EVENT_DATA: usize = 16;

/// File systems whose opens are not worth watching (and that fanotify mostly refuses).
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "tracefs",
    "debugfs",
    "bpf",
    "devpts",
    "mqueue",
    "securityfs",
    "pstore",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "nsfs",
];

/// The proc connector socket and, when file opens are requested, a fanotify group.
pub(crate) struct FallbackSource {
    netlink: OwnedFd,
    fanotify: Option<OwnedFd>,
    self_tgid: u32,
    watched_mounts: usize,
}

impl FallbackSource {
    /// Event fields the fallback leaves empty.
    pub(crate) const MISSING_FIELDS: &'static [&'static str] = &[
        "ret",
        "cgroup_id",
        "process.tid",
        "process.loginuid",
        "process.exe_upper_layer",
        "process.exe_from_memfd",
        "payload.flags",
        "payload.mode",
        "payload.fd.num",
        "cpu",
        "opened_file",
        "process.live_threads",
    ];

    pub(crate) fn start(
        requested: &BTreeSet<EventKind>,
        self_tgid: u32,
    ) -> Result<FallbackSource, Error> {
        let netlink = proc_connector()?;
        let (fanotify, watched_mounts) = if requested.contains(&EventKind::Openat) {
            let (fd, n) = fanotify_opens()?;
            (Some(fd), n)
        } else {
            (None, 0)
        };
        Ok(FallbackSource {
            netlink,
            fanotify,
            self_tgid,
            watched_mounts,
        })
    }

    pub(crate) fn sources(&self) -> Vec<String> {
        let mut sources = vec!["proc connector (netlink): fork, exec, exit".to_owned()];
        if self.fanotify.is_some() {
            sources.push(format!(
                "fanotify FAN_OPEN on {} mounts: openat",
                self.watched_mounts
            ));
        }
        sources
    }

    pub(crate) fn kinds(&self) -> Vec<EventKind> {
        let mut kinds = vec![EventKind::Execve, EventKind::Clone, EventKind::Procexit];
        if self.fanotify.is_some() {
            kinds.push(EventKind::Openat);
        }
        kinds
    }

    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<Vec<FallbackObservation>, Error> {
        let mut fds = vec![libc::pollfd {
            fd: self.netlink.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(fanotify) = &self.fanotify {
            fds.push(libc::pollfd {
                fd: fanotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                return Ok(Vec::new());
            }
            return Err(Error::kernel("polling the fallback sources", error));
        }
        let mut observations = Vec::new();
        if fds[0].revents & libc::POLLIN != 0 {
            self.read_proc_connector(&mut observations)?;
        }
        if fds.get(1).is_some_and(|fd| fd.revents & libc::POLLIN != 0) {
            self.read_fanotify(&mut observations)?;
        }
        Ok(observations)
    }

    fn read_proc_connector(&self, out: &mut Vec<FallbackObservation>) -> Result<(), Error> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: the buffer is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.netlink.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let error = std::io::Error::last_os_error();
                return match error.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(()),
                    // The socket buffer overflowed: events were lost, keep reading.
                    Some(libc::ENOBUFS) => {
                        tracing::warn!("Proc connector overflowed; events lost.");
                        continue;
                    }
                    _ => Err(Error::kernel("reading the proc connector", error)),
                };
            }
            let timestamp_ns = now_ns();
            let data = &buffer[..n as usize];
            let event = NLMSG_HEADER + CN_MSG_HEADER;
            let Some(what) = u32_at(data, event) else {
                continue;
            };
            let field = |index: usize| u32_at(data, event + PROC_EVENT_DATA + index * 4);
            let observation = match what {
                PROC_EVENT_FORK => {
                    let (Some(parent_tgid), Some(child_pid), Some(child_tgid)) =
                        (field(1), field(2), field(3))
                    else {
                        continue;
                    };
                    if child_pid != child_tgid || parent_tgid == self.self_tgid {
                        continue;
                    }
                    FallbackObservation::Fork {
                        parent_pid: parent_tgid,
                        child_pid: child_tgid,
                        timestamp_ns,
                    }
                }
                PROC_EVENT_EXEC => {
                    let Some(tgid) = field(1) else { continue };
                    FallbackObservation::Exec {
                        pid: tgid,
                        timestamp_ns,
                    }
                }
                PROC_EVENT_EXIT => {
                    let (Some(pid), Some(tgid), Some(exit_code)) = (field(0), field(1), field(2))
                    else {
                        continue;
                    };
                    if pid != tgid {
                        continue;
                    }
                    FallbackObservation::Exit {
                        pid: tgid,
                        exit_code,
                        timestamp_ns,
                    }
                }
                _ => continue,
            };
            if matches!(observation, FallbackObservation::Exec { pid, .. } | FallbackObservation::Exit { pid, .. } if pid == self.self_tgid)
            {
                continue;
            }
            out.push(observation);
        }
    }

    fn read_fanotify(&self, out: &mut Vec<FallbackObservation>) -> Result<(), Error> {
        let Some(fanotify) = &self.fanotify else {
            return Ok(());
        };
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: the buffer is valid for writes of its length.
            let n = unsafe {
                libc::read(
                    fanotify.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n < 0 {
                let error = std::io::Error::last_os_error();
                return match error.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(()),
                    _ => Err(Error::kernel("reading fanotify", error)),
                };
            }
            if n == 0 {
                return Ok(());
            }
            let timestamp_ns = now_ns();
            let data = &buffer[..n as usize];
            let mut at = 0;
            while at + 24 <= data.len() {
                let event_len = u32_at(data, at).unwrap_or(0) as usize;
                let fd = u32_at(data, at + 16).unwrap_or(u32::MAX) as i32;
                let pid = u32_at(data, at + 20).unwrap_or(0);
                if fd >= 0 {
                    // SAFETY: fanotify hands us ownership of this descriptor.
                    let file = unsafe { OwnedFd::from_raw_fd(fd) };
                    if pid != self.self_tgid {
                        let path =
                            std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
                                .map(|path| path.to_string_lossy().into_owned())
                                .unwrap_or_default();
                        out.push(FallbackObservation::Open {
                            pid,
                            path,
                            timestamp_ns,
                        });
                    }
                }
                if event_len < 24 {
                    break;
                }
                at += event_len;
            }
        }
    }
}

fn proc_connector() -> Result<OwnedFd, Error> {
    // SAFETY: plain socket creation.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_CONNECTOR,
        )
    };
    if raw < 0 {
        return Err(Error::kernel(
            "opening the proc connector socket",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `raw` is a new descriptor we own.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_nl is plain data; zero is a valid starting value.
    let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as u16;
    address.nl_groups = CN_IDX_PROC;
    // SAFETY: `address` is a valid sockaddr_nl of the given size.
    let rc = unsafe {
        libc::bind(
            raw,
            (&address as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(Error::kernel(
            "binding the proc connector socket",
            std::io::Error::last_os_error(),
        ));
    }
    let mut message = Vec::with_capacity(NLMSG_HEADER + CN_MSG_HEADER + 4);
    let total = (NLMSG_HEADER + CN_MSG_HEADER + 4) as u32;
    message.extend_from_slice(&total.to_ne_bytes());
    message.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
    message.extend_from_slice(&0u16.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&std::process::id().to_ne_bytes());
    message.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    message.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&4u16.to_ne_bytes());
    message.extend_from_slice(&0u16.to_ne_bytes());
    message.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    // SAFETY: the message buffer is valid for reads of its length.
    let sent = unsafe { libc::send(raw, message.as_ptr().cast(), message.len(), 0) };
    if sent < 0 {
        return Err(Error::kernel(
            "subscribing to the proc connector",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(socket)
}

/// A fanotify group reporting opens on every mounted, non-pseudo file system.
fn fanotify_opens() -> Result<(OwnedFd, usize), Error> {
    // SAFETY: plain fanotify_init call.
    let raw = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
            (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
        )
    };
    if raw < 0 {
        return Err(Error::kernel(
            "fanotify_init",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `raw` is a new descriptor we own.
    let fanotify = unsafe { OwnedFd::from_raw_fd(raw) };
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|error| Error::kernel("reading /proc/self/mounts", error))?;
    let mut n_watched = 0;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(mount_point), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if PSEUDO_FILESYSTEMS.contains(&fstype) {
            continue;
        }
        // /proc/self/mounts escapes spaces and other characters as octal.
        let mount_point = mount_point.replace("\\040", " ");
        let Ok(path) = std::ffi::CString::new(mount_point) else {
            continue;
        };
        // SAFETY: `path` is a valid NUL-terminated string.
        let rc = unsafe {
            libc::fanotify_mark(
                raw,
                libc::FAN_MARK_ADD | libc::FAN_MARK_MOUNT,
                libc::FAN_OPEN,
                libc::AT_FDCWD,
                path.as_ptr(),
            )
        };
        if rc == 0 {
            n_watched += 1;
        }
    }
    Ok((fanotify, n_watched))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
