//! Deny exec through fanotify permission events (`FAN_OPEN_EXEC_PERM`).
//!
//! # Response time and failure policy
//!
//! While a permission event waits for an answer, the process calling `execve` is blocked in
//! the kernel (killably), and the kernel has no timeout of its own. So:
//!
//! - One responder thread does nothing but answer: `fstat` on the event's file descriptor,
//!   one hash-set look-up under a read lock that writers hold only for an insert or removal,
//!   and the `write` of the answer. Nothing on that path does I/O to another component or
//!   waits on the caller. [`ResponseStats::slowest`] records the longest time from reading an
//!   event to having its answer ready.
//! - The denier never blocks its own process: events from this process are always allowed
//!   without a look-up, so loading a library or running a helper cannot deadlock it.
//! - It **fails open**. When anything on the decision path fails (`fstat` of the event's file),
//!   the answer is allow. When the responder thread ends, or the whole process dies or is
//!   killed, the fanotify descriptor is closed and the kernel answers every pending and later
//!   event with allow. A daemon that is only slow delays execs on the watched mount by its
//!   delay, which the design above keeps to microseconds.
//!
//! Kill at exec ([`ExecKiller`](crate::ExecKiller)) is the complement: it needs no daemon on
//! the path at all, but the process is killed rather than its `execve` failing.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::binary::{Binary, BinaryId};
use crate::error::{Error, ErrorKind};
use crate::stop_signal::{StopSignal, Wake};

/// What a fanotify mark covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkScope {
    /// The mount the path is on (other mounts of the same file system are not covered).
    Mount,
    /// The whole file system the path is on, through every mount of it.
    Filesystem,
}

/// A fanotify group that denies exec of chosen binaries on one mount or file system.
/// Dropping it stops the responder and closes the group, which allows everything again.
pub struct ExecDenier {
    shared: Arc<Shared>,
    stop: StopSignal,
    responder: Option<JoinHandle<()>>,
    watched: PathBuf,
}

/// One exec the denier refused (`execve` failed with `EPERM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecDenial {
    /// The process that called `execve`.
    pub pid: i32,
    /// The binary it tried to execute.
    pub binary: BinaryId,
    /// Its path as the kernel names it, when it could be read.
    pub path: Option<PathBuf>,
}

/// How the responder has answered so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseStats {
    /// Permission events answered.
    pub answered: u64,
    /// Of those, denied.
    pub denied: u64,
    /// Answered with allow because the decision could not be made (fail-open).
    pub failed_open: u64,
    /// The longest time from reading an event to having its answer ready (the `write` of
    /// the answer follows).
    pub slowest: Duration,
}

struct Shared {
    denied: RwLock<HashSet<BinaryId>>,
    denials: Mutex<Vec<ExecDenial>>,
    stats: Mutex<ResponseStats>,
}

impl ExecDenier {
    /// Creates a fanotify group with exec permission events on the mount or file system
    /// `path` is on, and starts the responder. Nothing is denied yet.
    ///
    /// Fails with [`ErrorKind::Unsupported`] when the kernel lacks permission events
    /// (`CONFIG_FANOTIFY_ACCESS_PERMISSIONS`) and [`ErrorKind::System`] without
    /// `CAP_SYS_ADMIN`.
    pub fn watch(path: &Path, scope: MarkScope) -> Result<ExecDenier, Error> {
        // SAFETY: fanotify_init takes flags only and returns a new descriptor or -1.
        let raw = unsafe {
            libc::fanotify_init(
                libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | libc::FAN_CLASS_CONTENT,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
            )
        };
        if raw < 0 {
            let error = io::Error::last_os_error();
            let kind = match error.raw_os_error() {
                Some(libc::EINVAL | libc::ENOSYS) => ErrorKind::Unsupported,
                _ => ErrorKind::System,
            };
            return Err(
                Error::new(kind, "creating fanotify group for", path.display()).with_source(error),
            );
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fanotify = unsafe { OwnedFd::from_raw_fd(raw) };
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|error| {
            Error::new(ErrorKind::InvalidInput, "watching", path.display()).with_source(error)
        })?;
        let scope_flag = match scope {
            MarkScope::Mount => libc::FAN_MARK_MOUNT,
            MarkScope::Filesystem => libc::FAN_MARK_FILESYSTEM,
        };
        // SAFETY: valid descriptor and NUL-terminated path.
        let marked = unsafe {
            libc::fanotify_mark(
                fanotify.as_raw_fd(),
                libc::FAN_MARK_ADD | scope_flag,
                libc::FAN_OPEN_EXEC_PERM,
                libc::AT_FDCWD,
                c_path.as_ptr(),
            )
        };
        if marked < 0 {
            return Err(Error::io(
                "marking for exec permission events",
                path.display(),
                io::Error::last_os_error(),
            ));
        }
        let stop = StopSignal::new()
            .map_err(|error| Error::io("creating the stop signal for", path.display(), error))?;
        let stop_for_responder = stop
            .try_clone()
            .map_err(|error| Error::io("duplicating the stop signal for", path.display(), error))?;
        let shared = Arc::new(Shared {
            denied: RwLock::new(HashSet::new()),
            denials: Mutex::new(Vec::new()),
            stats: Mutex::new(ResponseStats::default()),
        });
        let responder_shared = Arc::clone(&shared);
        // The responder owns the fanotify descriptor: however it ends, even by a panic, the
        // descriptor closes and the kernel allows everything (fail-open).
        let responder = std::thread::Builder::new()
            .name("palisade-exec-deny".into())
            .spawn(move || respond(fanotify, stop_for_responder, &responder_shared))
            .map_err(|error| Error::io("starting the responder for", path.display(), error))?;
        Ok(ExecDenier {
            shared,
            stop,
            responder: Some(responder),
            watched: path.to_path_buf(),
        })
    }

    /// Denies later execs of `binary`; returns its identity.
    pub fn deny(&self, binary: Binary) -> Result<BinaryId, Error> {
        let binary_id = binary.resolve()?;
        self.shared
            .denied
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(binary_id);
        Ok(binary_id)
    }

    /// Stops denying `binary`; returns whether it was denied.
    pub fn allow(&self, binary: Binary) -> Result<bool, Error> {
        let binary_id = binary.resolve()?;
        Ok(self
            .shared
            .denied
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&binary_id))
    }

    /// The execs denied since the last call.
    pub fn take_denials(&self) -> Vec<ExecDenial> {
        std::mem::take(
            &mut *self
                .shared
                .denials
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// How the responder has answered so far.
    pub fn stats(&self) -> ResponseStats {
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The path whose mount or file system is watched.
    pub fn watched(&self) -> &Path {
        &self.watched
    }
}

impl Drop for ExecDenier {
    fn drop(&mut self) {
        self.stop.raise();
        if let Some(responder) = self.responder.take() {
            // A panic in the responder already failed open; nothing more to do with it.
            let _ = responder.join();
        }
    }
}

/// The responder loop: waits for permission events or the stop signal.
fn respond(fanotify: OwnedFd, stop: StopSignal, shared: &Shared) {
    let own_pid = std::process::id() as i32;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if !matches!(stop.wait_readable(fanotify.as_fd()), Ok(Wake::Readable)) {
            return;
        }
        // SAFETY: reads into a live buffer of the given length.
        let n_read = unsafe {
            libc::read(
                fanotify.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if n_read < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => continue,
                _ => return,
            }
        }
        let read_at = Instant::now();
        let mut offset = 0;
        let n_read = n_read as usize;
        let header_len = size_of::<libc::fanotify_event_metadata>();
        while offset + header_len <= n_read {
            // SAFETY: the kernel wrote a whole metadata record at `offset`; it may be
            // unaligned in our byte buffer, hence read_unaligned.
            let event: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(buffer[offset..].as_ptr().cast()) };
            if event.event_len < header_len as u32 || event.vers != libc::FANOTIFY_METADATA_VERSION
            {
                break;
            }
            offset += event.event_len as usize;
            if event.fd == libc::FAN_NOFD {
                continue;
            }
            // SAFETY: the kernel opened this descriptor for us; we own and close it.
            let event_file = unsafe { OwnedFd::from_raw_fd(event.fd) };
            if event.mask & libc::FAN_OPEN_EXEC_PERM != 0 {
                answer(&fanotify, &event_file, event.pid, own_pid, shared, read_at);
            }
        }
    }
}

/// The answer to one permission event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny(BinaryId),
    /// The decision could not be made; allowed.
    FailOpen,
}

/// Decides and answers one permission event.
fn answer(
    fanotify: &OwnedFd,
    event_file: &OwnedFd,
    pid: i32,
    own_pid: i32,
    shared: &Shared,
    read_at: Instant,
) {
    let decision = if pid == own_pid {
        Decision::Allow
    } else {
        match file_identity(event_file.as_raw_fd()) {
            None => Decision::FailOpen,
            Some(binary_id) => {
                let denied = shared.denied.read().unwrap_or_else(PoisonError::into_inner);
                if denied.contains(&binary_id) {
                    Decision::Deny(binary_id)
                } else {
                    Decision::Allow
                }
            }
        }
    };
    // Record before answering, so that whoever sees the exec fail also sees the record.
    if let Decision::Deny(binary_id) = decision {
        let path = std::fs::read_link(format!("/proc/self/fd/{}", event_file.as_raw_fd())).ok();
        shared
            .denials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ExecDenial {
                pid,
                binary: binary_id,
                path,
            });
    }
    {
        let mut stats = shared.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.answered += 1;
        stats.denied += u64::from(matches!(decision, Decision::Deny(_)));
        stats.failed_open += u64::from(decision == Decision::FailOpen);
        stats.slowest = stats.slowest.max(read_at.elapsed());
    }
    let response = libc::fanotify_response {
        fd: event_file.as_raw_fd(),
        response: match decision {
            Decision::Deny(_) => libc::FAN_DENY,
            Decision::Allow | Decision::FailOpen => libc::FAN_ALLOW,
        },
    };
    // SAFETY: writes one live fanotify_response to the group descriptor.
    unsafe {
        libc::write(
            fanotify.as_raw_fd(),
            (&raw const response).cast(),
            size_of::<libc::fanotify_response>(),
        )
    };
}

/// The identity of an open file, or `None` when `fstat` fails.
fn file_identity(fd: RawFd) -> Option<BinaryId> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills the live stat buffer when it returns 0.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful fstat above.
    let stat = unsafe { stat.assume_init() };
    Some(BinaryId {
        dev: stat.st_dev,
        ino: stat.st_ino,
    })
}
