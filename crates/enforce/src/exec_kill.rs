//! Kill at exec: an eBPF program on `tp_btf/sched_process_exec` sends SIGKILL to every
//! process that executes a denied binary, and reports each kill through a ring buffer.

use std::time::Duration;

use libbpf_rs::{Link, MapCore, MapFlags, Object};

use crate::binary::{Binary, BinaryId};
use crate::bpf::{self, Record, Reports};
use crate::error::{Error, ErrorKind};

const DENIED_MAP: &str = "denied_binaries";
const KILLS_MAP: &str = "kills";
const LOST_MAP: &str = "lost_reports";
const KILL_EVENT_SIZE: usize = 312;

/// The most binaries one [`ExecKiller`] denies (the kernel map's size).
pub const MAX_DENIED_BINARIES: usize = 4096;

/// A loaded and attached kill-at-exec program. Dropping it detaches the program.
pub struct ExecKiller {
    // Field order is drop order: stop reading before detaching, detach before unloading.
    reports: Reports<Kill>,
    _link: Link,
    object: Object,
}

/// One process the program killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// The killed process (thread group id).
    pub pid: u32,
    /// The thread that executed.
    pub tid: u32,
    /// Its real uid.
    pub uid: u32,
    /// Its cgroup2 id (the inode of its cgroup2 directory).
    pub cgroup_id: u64,
    /// Its command name after the exec (the binary's file name, truncated to 15 bytes).
    pub comm: String,
    /// The path as passed to execve (truncated to 255 bytes).
    pub filename: String,
    /// The denied binary it executed.
    pub binary: BinaryId,
    /// Whether `bpf_send_signal` accepted the signal (it fails only for kernel threads or
    /// when the task is exiting).
    pub signal_sent: bool,
}

impl ExecKiller {
    /// Loads the program and attaches it to `sched_process_exec`. Nothing is denied yet.
    ///
    /// Fails with [`ErrorKind::Unsupported`] when the kernel refuses `tp_btf` programs.
    pub fn load() -> Result<ExecKiller, Error> {
        let object = bpf::load_object("exec_kill", bpf::EXEC_KILL_OBJECT)?;
        let link = object
            .progs_mut()
            .find(|program| program.name() == "kill_denied_exec")
            .ok_or_else(|| Error::new(ErrorKind::System, "finding program", "kill_denied_exec"))?
            .attach()
            .map_err(|error| Error::bpf("attaching", "tp_btf/sched_process_exec", error))?;
        let reports = Reports::new(
            &bpf::map(&object, KILLS_MAP)?,
            KILLS_MAP,
            decode_kill,
            bpf::MAX_QUEUED_REPORTS,
            None,
        )?;
        Ok(ExecKiller {
            reports,
            _link: link,
            object,
        })
    }

    /// Kills every later exec of `binary`; returns its identity.
    pub fn deny(&self, binary: Binary) -> Result<BinaryId, Error> {
        let binary_id = binary.resolve()?;
        bpf::map(&self.object, DENIED_MAP)?
            .update(&binary_key(binary_id), &[1u8], MapFlags::ANY)
            .map_err(|error| Error::bpf("adding to the denied binaries", binary_id, error))?;
        Ok(binary_id)
    }

    /// Stops denying `binary`; returns whether it was denied.
    pub fn allow(&self, binary: Binary) -> Result<bool, Error> {
        let binary_id = binary.resolve()?;
        let denied = bpf::map(&self.object, DENIED_MAP)?;
        let key = binary_key(binary_id);
        let was_denied = denied
            .lookup(&key, MapFlags::ANY)
            .map_err(|error| Error::bpf("reading the denied binaries", binary_id, error))?
            .is_some();
        if was_denied {
            denied.delete(&key).map_err(|error| {
                Error::bpf("removing from the denied binaries", binary_id, error)
            })?;
        }
        Ok(was_denied)
    }

    /// Waits up to `timeout` for kills, then returns every kill reported since the last call.
    pub fn poll_kills(&self, timeout: Duration) -> Result<Vec<Kill>, Error> {
        self.reports.poll(timeout)
    }

    /// Kills whose report was lost because the ring buffer (or the reader's queue) was full;
    /// the kills happened.
    pub fn lost_reports(&self) -> Result<u64, Error> {
        let lost = bpf::read_counter(&bpf::map(&self.object, LOST_MAP)?, LOST_MAP)?;
        Ok(lost + self.reports.overflowed())
    }
}

/// The `struct binary_key` for a binary.
fn binary_key(binary_id: BinaryId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&binary_id.ino.to_ne_bytes());
    key[8..12].copy_from_slice(&binary_id.kernel_dev().to_ne_bytes());
    key
}

/// Decodes a `struct kill_event` (see `bpf/enforce.h`).
fn decode_kill(bytes: &[u8]) -> Option<Kill> {
    if bytes.len() != KILL_EVENT_SIZE {
        return None;
    }
    let record = Record(bytes);
    Some(Kill {
        binary: BinaryId::from_kernel(record.u32(16), record.u64(0)),
        cgroup_id: record.u64(8),
        pid: record.u32(20),
        tid: record.u32(24),
        uid: record.u32(28),
        signal_sent: record.u32(32) == 0,
        comm: bpf::c_string(record.bytes(40, 16)),
        filename: bpf::c_string(record.bytes(56, 256)),
    })
}
