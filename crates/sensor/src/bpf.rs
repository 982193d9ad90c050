//! Loading the eBPF probes, attaching only those the requested event kinds need, and
//! reading their ring buffer and drop counters.

use std::collections::BTreeSet;
use std::mem::offset_of;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use libbpf_rs::{Link, Map, MapCore, MapFlags, MapHandle, Object, ObjectBuilder};
use palisade_bpfring::RingReader;
use palisade_event::EventKind;

use crate::error::Error;
use crate::sensor::CpuCounters;
use crate::skel::types::rodata as Rodata;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sensor.bpf.o"));

/// The scheduler probes, always attached: the process table needs every fork, exec and exit.
const SCHED_PROGRAMS: [&str; 3] = ["sched_exec", "sched_fork", "sched_exit"];

/// The system call whose exit tracepoint (`sys_exit_<name>`) reports `kind`; `None` for
/// kinds that a scheduler probe reports or that have no probe yet.
pub(crate) fn syscall_probe(kind: EventKind) -> Option<&'static str> {
    use EventKind as K;
    Some(match kind {
        K::Open => "open",
        K::Openat => "openat",
        K::Openat2 => "openat2",
        K::Creat => "creat",
        K::Unlink => "unlink",
        K::Unlinkat => "unlinkat",
        K::Rename => "rename",
        K::Renameat => "renameat",
        K::Renameat2 => "renameat2",
        K::Chmod => "chmod",
        K::Fchmod => "fchmod",
        K::Fchmodat => "fchmodat",
        K::Chown => "chown",
        K::Lchown => "lchown",
        K::Fchown => "fchown",
        K::Fchownat => "fchownat",
        K::Link => "link",
        K::Linkat => "linkat",
        K::Symlink => "symlink",
        K::Symlinkat => "symlinkat",
        K::Mkdir => "mkdir",
        K::Mkdirat => "mkdirat",
        K::Socket => "socket",
        K::Connect => "connect",
        K::Accept => "accept",
        K::Accept4 => "accept4",
        K::Bind => "bind",
        K::Listen => "listen",
        K::Sendto => "sendto",
        K::Sendmsg => "sendmsg",
        K::Dup => "dup",
        K::Dup2 => "dup2",
        K::Dup3 => "dup3",
        K::Ptrace => "ptrace",
        K::InitModule => "init_module",
        K::FinitModule => "finit_module",
        K::DeleteModule => "delete_module",
        K::Mount => "mount",
        // x86-64 has only umount2, whose tracepoint is named after the kernel's `umount`.
        K::Umount | K::Umount2 => "umount",
        K::Setns => "setns",
        K::Unshare => "unshare",
        K::Setuid => "setuid",
        K::Setgid => "setgid",
        K::Setresuid => "setresuid",
        K::Setresgid => "setresgid",
        K::Capset => "capset",
        K::MemfdCreate => "memfd_create",
        K::Bpf => "bpf",
        K::Chroot => "chroot",
        _ => return None,
    })
}

/// The number of the system call `call` (a name [`syscall_probe`] returns) on this
/// architecture, for the dispatcher's table; `None` for a call this architecture lacks.
fn syscall_number(call: &str) -> Option<i64> {
    Some(match call {
        #[cfg(target_arch = "x86_64")]
        "open" => libc::SYS_open,
        #[cfg(target_arch = "x86_64")]
        "creat" => libc::SYS_creat,
        #[cfg(target_arch = "x86_64")]
        "unlink" => libc::SYS_unlink,
        #[cfg(target_arch = "x86_64")]
        "rename" => libc::SYS_rename,
        #[cfg(target_arch = "x86_64")]
        "chmod" => libc::SYS_chmod,
        #[cfg(target_arch = "x86_64")]
        "chown" => libc::SYS_chown,
        #[cfg(target_arch = "x86_64")]
        "lchown" => libc::SYS_lchown,
        #[cfg(target_arch = "x86_64")]
        "link" => libc::SYS_link,
        #[cfg(target_arch = "x86_64")]
        "symlink" => libc::SYS_symlink,
        #[cfg(target_arch = "x86_64")]
        "mkdir" => libc::SYS_mkdir,
        #[cfg(target_arch = "x86_64")]
        "dup2" => libc::SYS_dup2,
        "openat" => libc::SYS_openat,
        "openat2" => libc::SYS_openat2,
        "unlinkat" => libc::SYS_unlinkat,
        "renameat" => libc::SYS_renameat,
        "renameat2" => libc::SYS_renameat2,
        "fchmod" => libc::SYS_fchmod,
        "fchmodat" => libc::SYS_fchmodat,
        "fchown" => libc::SYS_fchown,
        "fchownat" => libc::SYS_fchownat,
        "linkat" => libc::SYS_linkat,
        "symlinkat" => libc::SYS_symlinkat,
        "mkdirat" => libc::SYS_mkdirat,
        "socket" => libc::SYS_socket,
        "connect" => libc::SYS_connect,
        "accept" => libc::SYS_accept,
        "accept4" => libc::SYS_accept4,
        "bind" => libc::SYS_bind,
        "listen" => libc::SYS_listen,
        "sendto" => libc::SYS_sendto,
        "sendmsg" => libc::SYS_sendmsg,
        "dup" => libc::SYS_dup,
        "dup3" => libc::SYS_dup3,
        "ptrace" => libc::SYS_ptrace,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "mount" => libc::SYS_mount,
        // The kernel's `umount` is umount2.
        "umount" => libc::SYS_umount2,
        "setns" => libc::SYS_setns,
        "unshare" => libc::SYS_unshare,
        "setuid" => libc::SYS_setuid,
        "setgid" => libc::SYS_setgid,
        "setresuid" => libc::SYS_setresuid,
        "setresgid" => libc::SYS_setresgid,
        "capset" => libc::SYS_capset,
        "memfd_create" => libc::SYS_memfd_create,
        "bpf" => libc::SYS_bpf,
        "chroot" => libc::SYS_chroot,
        _ => return None,
    })
}

/// Unread bytes in a ring of `ring_buffer_bytes` past which each record wakes the reader
/// (`wake_at_bytes` in sensor.bpf.c): a quarter of the ring.
fn wake_at_bytes(ring_buffer_bytes: u32) -> u32 {
    ring_buffer_bytes / 4
}

/// Slots in the dispatcher's table (`DISPATCH_SLOTS` in sensor.bpf.c): call numbers below it.
const DISPATCH_SLOTS: i64 = 512;

/// The program on every system call's exit that runs the observed calls' `dispatched_*`
/// programs, on kernels where a wanted call has no tracepoint of its own (see sensor.bpf.c).
const DISPATCHER: &str = "exit_dispatch";

/// Per-CPU counter indexes in the `counters` map (see sensor.bpf.c).
const COUNTER_SENT: u32 = 0;
const COUNTER_LOST: u32 = 1;

/// The attached probes, their ring buffer and the maps user space reads or writes. The
/// libbpf object is closed after load (its copies of the programs and BTF, about 1.3 MB, are
/// not needed once the kernel holds them): the links keep the programs attached, the programs
/// keep their maps, and these handles keep what user space still uses.
pub(crate) struct BpfProbes {
    _links: Vec<Link>,
    ring: RingReader,
    /// Per-CPU events written and lost (`counters` in sensor.bpf.c).
    counters: MapHandle,
    /// The cgroup ids whose path a record carried (`cgroup_reported`).
    cgroup_reported: MapHandle,
    /// Per CPU, the last of those ids a program saw (`cgroup_reported_last`).
    cgroup_reported_last: MapHandle,
    /// The dispatcher's table when programs are dispatched: the kernel empties a program
    /// array once user space holds no descriptor of it.
    _dispatch_table: Option<MapHandle>,
    /// Records copied out of the ring buffer: `u32` length, then the bytes.
    arena: Vec<u8>,
    /// The arena's capacity kept between polls: a normal batch ([`recycled`]).
    arena_kept_bytes: usize,
    /// The attached programs, by name.
    pub attached: Vec<String>,
    /// System calls whose tracepoint this kernel lacks.
    pub unavailable: Vec<String>,
}

/// The system calls whose tracepoints exist only with `CONFIG_MODULES`.
const MODULE_CALLS: [&str; 3] = ["init_module", "finit_module", "delete_module"];

const TRACEFS_EVENTS: [&str; 2] = [
    "/sys/kernel/tracing/events",
    "/sys/kernel/debug/tracing/events",
];

fn tracefs_event_exists(event: &str) -> bool {
    TRACEFS_EVENTS
        .iter()
        .any(|dir| std::path::Path::new(dir).join(event).exists())
}

fn tracepoint_exists(syscall: &str) -> bool {
    tracefs_event_exists(&format!("syscalls/sys_exit_{syscall}"))
}

fn raw_syscalls_exist() -> bool {
    tracefs_event_exists("raw_syscalls/sys_exit")
}

/// What the loader sets in the programs' read-only configuration before loading them.
pub(crate) struct ProbeSettings {
    /// Size of the ring buffer in bytes.
    pub ring_buffer_bytes: u32,
    /// The agent's own process id, whose calls are not reported.
    pub self_tgid: u32,
    /// Read the five controllers' cgroups at exec and fork (`SLOT_CGROUPS`).
    pub read_cgroups: bool,
    /// Copy each new program's environment at exec (`SLOT_ENV`).
    pub capture_env: bool,
    /// Read the descriptor limit at every event.
    pub read_fd_state: bool,
    /// With `read_fd_state`, count the open descriptors too (a walk of the table's bitmap).
    pub count_open_fds: bool,
    /// Read what descriptors 0, 1 and 2 are at every event.
    pub read_std_fds: bool,
}

impl BpfProbes {
    /// Loads the object, keeping only the programs for `kinds` (and the scheduler probes),
    /// and attaches them.
    pub(crate) fn load(
        kinds: &BTreeSet<EventKind>,
        settings: &ProbeSettings,
    ) -> Result<BpfProbes, Error> {
        ensure_tracefs()?;
        let mut wanted: BTreeSet<String> =
            SCHED_PROGRAMS.iter().map(|name| name.to_string()).collect();
        let calls: BTreeSet<&str> = kinds
            .iter()
            .filter_map(|kind| syscall_probe(*kind))
            .collect();
        // Without CONFIG_MODULES the module calls have no tracepoints but still exist (and
        // fail): only a program on every call's exit sees them, and then it reports every
        // observed call, since a second program on that tracepoint costs every system call
        // more than the per-call tracepoints save (see sensor.bpf.c).
        let dispatch = raw_syscalls_exist()
            && calls
                .iter()
                .any(|call| MODULE_CALLS.contains(call) && !tracepoint_exists(call));
        let mut dispatched = Vec::new();
        let mut unavailable = Vec::new();
        for call in calls {
            // Each call's exit program reads the arguments from the saved registers.
            let number = syscall_number(call).filter(|number| (0..DISPATCH_SLOTS).contains(number));
            let exists = tracepoint_exists(call) || MODULE_CALLS.contains(&call);
            match number {
                Some(number) if dispatch && exists => {
                    let program = format!("dispatched_{call}");
                    wanted.insert(program.clone());
                    dispatched.push((number as u32, program));
                }
                _ if !dispatch && tracepoint_exists(call) => {
                    wanted.insert(format!("exit_{call}"));
                }
                // Any other call this kernel lacks is reported unavailable; the others run.
                _ => unavailable.push(call.to_owned()),
            }
        }
        if dispatch {
            wanted.insert(DISPATCHER.to_owned());
        }

        let mut open = ObjectBuilder::default()
            .open_memory(OBJECT)
            .map_err(|error| Error::bpf("open", error))?;
        for mut map in open.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if name == "events" {
                map.set_max_entries(settings.ring_buffer_bytes)
                    .map_err(|error| Error::bpf("sizing the ring buffer", error))?;
            } else if name.ends_with(".rodata") {
                let Some(rodata) = map.initial_value_mut() else {
                    continue;
                };
                let mut set = |offset: usize, value: u32| {
                    if let Some(bytes) = rodata.get_mut(offset..offset + 4) {
                        bytes.copy_from_slice(&value.to_ne_bytes());
                    }
                };
                set(offset_of!(Rodata, self_tgid), settings.self_tgid);
                set(
                    offset_of!(Rodata, wake_at_bytes),
                    wake_at_bytes(settings.ring_buffer_bytes),
                );
                set(
                    offset_of!(Rodata, read_cgroups),
                    u32::from(settings.read_cgroups),
                );
                set(
                    offset_of!(Rodata, capture_env),
                    u32::from(settings.capture_env),
                );
                set(
                    offset_of!(Rodata, read_fd_state),
                    u32::from(settings.read_fd_state),
                );
                set(
                    offset_of!(Rodata, count_open_fds),
                    u32::from(settings.count_open_fds),
                );
                set(
                    offset_of!(Rodata, read_std_fds),
                    u32::from(settings.read_std_fds),
                );
            }
        }
        for mut program in open.progs_mut() {
            let name = program.name().to_string_lossy().into_owned();
            program.set_autoload(wanted.contains(&name));
        }
        let object = open.load().map_err(|error| Error::bpf("load", error))?;
        let dispatch_table = fill_dispatch_table(&object, &dispatched)?;

        let mut links = Vec::new();
        let mut attached = Vec::new();
        for program in object.progs_mut() {
            let name = program.name().to_string_lossy().into_owned();
            if !wanted.contains(&name) {
                continue;
            }
            // The dispatcher runs these; they are not attached themselves.
            if !dispatched.iter().any(|(_, program)| *program == name) {
                let link = program
                    .attach()
                    .map_err(|error| Error::bpf(format!("attach {name}"), error))?;
                links.push(link);
            }
            attached.push(name);
        }

        // The kernel wakes the reader once a quarter of the ring is filled (`submit` in
        // sensor.bpf.c): a normal batch.
        let arena_kept_bytes = wake_at_bytes(settings.ring_buffer_bytes) as usize;
        let ring = RingReader::new(find_map(&object, "events")?.as_fd(), "events")?;
        Ok(BpfProbes {
            _links: links,
            ring,
            counters: map_handle(&object, "counters")?,
            cgroup_reported: map_handle(&object, "cgroup_reported")?,
            cgroup_reported_last: map_handle(&object, "cgroup_reported_last")?,
            _dispatch_table: dispatch_table,
            arena: Vec::with_capacity(arena_kept_bytes),
            arena_kept_bytes,
            attached,
            unavailable,
        })
    }

    /// Waits up to `timeout` for events, then hands every raw record to `each`.
    pub(crate) fn poll(
        &mut self,
        timeout: Duration,
        mut each: impl FnMut(&[u8]),
    ) -> Result<usize, Error> {
        self.ring.wait(timeout)?;
        // The kernel side wakes the reader only for full batches (see `submit` in
        // sensor.bpf.c): whatever arrived below that threshold is read once the wait times out.
        let arena = &mut self.arena;
        self.ring.consume(|_, record| {
            arena.extend_from_slice(&(record.len() as u32).to_ne_bytes());
            arena.extend_from_slice(record);
        })?;
        let arena = std::mem::take(&mut self.arena);
        let mut n_records = 0;
        let mut at = 0;
        while at + 4 <= arena.len() {
            let len = u32::from_ne_bytes(arena[at..at + 4].try_into().expect("4 bytes")) as usize;
            let record = &arena[at + 4..(at + 4 + len).min(arena.len())];
            each(record);
            n_records += 1;
            at += 4 + len;
        }
        self.arena = recycled(arena, self.arena_kept_bytes);
        Ok(n_records)
    }

    /// Deletes the ids of cgroups that are gone from `cgroup_reported` (sensor.bpf.c), whose
    /// paths user space no longer keeps; an id the kernel had already evicted is no error.
    pub(crate) fn forget_reported_cgroups(&self, cgroup_ids: &[u64]) {
        if cgroup_ids.is_empty() {
            return;
        }
        for id in cgroup_ids {
            if let Err(error) = self.cgroup_reported.delete(&id.to_ne_bytes())
                && error.kind() != libbpf_rs::ErrorKind::NotFound
            {
                tracing::warn!(%error, cgroup_id = id, "Cannot forget a removed cgroup in the kernel.");
            }
        }
        // Each CPU's last reported id is cleared too, so that no program takes a deleted id
        // for reported; an id it held that lives is looked up in `cgroup_reported` again.
        let cleared = libbpf_rs::num_possible_cpus().and_then(|n_cpus| {
            let values = vec![0u64.to_ne_bytes().to_vec(); n_cpus];
            self.cgroup_reported_last
                .update_percpu(&0u32.to_ne_bytes(), &values, MapFlags::ANY)
        });
        if let Err(error) = cleared {
            tracing::warn!(%error, "Cannot clear the kernel's last reported cgroups.");
        }
    }

    /// Events written and events lost (ring buffer full), per CPU.
    pub(crate) fn counters(&self) -> Vec<CpuCounters> {
        let per_cpu = |index: u32| -> Vec<u64> {
            self.counters
                .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .map(|values| {
                    values
                        .iter()
                        .map(|bytes| {
                            bytes
                                .get(..8)
                                .and_then(|value| value.try_into().ok())
                                .map_or(0, u64::from_ne_bytes)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (sent, lost) = (per_cpu(COUNTER_SENT), per_cpu(COUNTER_LOST));
        sent.iter()
            .zip(&lost)
            .enumerate()
            .map(|(cpu, (&sent, &lost))| CpuCounters {
                cpu: cpu as u32,
                sent,
                lost,
            })
            .collect()
    }
}

/// The object's map called `name`.
fn find_map<'object>(object: &'object Object, name: &str) -> Result<Map<'object>, Error> {
    object
        .maps()
        .find(|map| map.name() == name)
        .ok_or_else(|| Error::Config(format!("the eBPF object has no `{name}` map")))
}

/// A descriptor of its own of the object's map called `name`, which outlives the object.
fn map_handle(object: &Object, name: &str) -> Result<MapHandle, Error> {
    let map = find_map(object, name)?;
    MapHandle::try_from(&map).map_err(|error| Error::bpf(format!("keeping map {name}"), error))
}

/// Puts each dispatched call's program in the dispatcher's table at its call number; returns
/// the table, which must stay open while the programs run (none when nothing is dispatched).
fn fill_dispatch_table(
    object: &Object,
    dispatched: &[(u32, String)],
) -> Result<Option<MapHandle>, Error> {
    if dispatched.is_empty() {
        return Ok(None);
    }
    let table = map_handle(object, "dispatched_exits")?;
    for (number, name) in dispatched {
        let program = object
            .progs()
            .find(|program| program.name() == name.as_str())
            .ok_or_else(|| Error::Config(format!("the eBPF object has no `{name}` program")))?;
        let fd = program.as_fd().as_raw_fd();
        table
            .update(&number.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|error| Error::bpf(format!("dispatching call {number} to {name}"), error))?;
    }
    Ok(Some(table))
}

/// The record arena for the next poll after a batch of `arena.len()` bytes: emptied, with its
/// capacity kept for reuse, unless it grew past `kept_bytes` (a normal batch) and this batch
/// fits in that again: then a new one, and the grown one is freed. A reader that fell behind
/// drains up to the whole ring at once; without this the arena kept that burst's pages
/// resident for the life of the process (up to the ring's size, twice over after doubling).
fn recycled(mut arena: Vec<u8>, kept_bytes: usize) -> Vec<u8> {
    if arena.capacity() > kept_bytes && arena.len() <= kept_bytes {
        return Vec::with_capacity(kept_bytes);
    }
    arena.clear();
    arena
}

/// libbpf attaches tracepoints through tracefs; mount it where the kernel expects it if
/// nothing is mounted there yet.
fn ensure_tracefs() -> Result<(), Error> {
    if std::path::Path::new("/sys/kernel/tracing/events").exists()
        || std::path::Path::new("/sys/kernel/debug/tracing/events").exists()
    {
        return Ok(());
    }
    // SAFETY: all arguments are valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::kernel(
            "mounting tracefs on /sys/kernel/tracing",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bursts_arena_is_kept_while_batches_are_large_and_freed_after() {
        const KEPT: usize = 1 << 20;
        let normal = recycled(vec![7; 4096], KEPT);
        assert!(normal.is_empty());
        assert_eq!(normal.capacity(), 4096, "a normal batch's arena is reused");

        let mut burst = Vec::with_capacity(KEPT);
        burst.resize(KEPT * 3, 1);
        let grown = burst.capacity();
        let still_draining = recycled(burst, KEPT);
        assert!(still_draining.is_empty());
        assert_eq!(
            still_draining.capacity(),
            grown,
            "kept while the ring is drained whole"
        );

        let mut after = still_draining;
        after.resize(100, 1);
        let after = recycled(after, KEPT);
        assert!(after.is_empty());
        assert_eq!(after.capacity(), KEPT, "the burst's growth is given back");
    }
}
