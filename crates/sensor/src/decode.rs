//! Decoding ring-buffer records into [`palisade_event::Event`]s.
//!
//! The record layout is `struct event` in `bpf/sensor.h`; offsets come from the skeleton's
//! generated `types::event` through `offset_of!`, so the C header is the only definition.

use std::mem::offset_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_event::{
    EventKind, Fd, FdKind, OpenedFile, OverlayLayer, Payload, Protocol, Socket, TaskResources,
};

use crate::process::{Capabilities, FdState, SessionIds};
use crate::procfs::{self, Environment, environment};
use crate::skel::types::{
    event as RawLayout, opened_file, overlay_layer, probe_kind as Pk, socket_info, string_slot,
    task_resources,
};

/// One record from the ring buffer, with its strings split out.
#[derive(Debug)]
pub(crate) struct RawEvent<'a> {
    pub timestamp_boot_ns: u64,
    pub cgroup_id: u64,
    pub start_boot_ns: u64,
    pub ret: i64,
    pub args: [u64; 6],
    pub kind: Pk,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub loginuid: u32,
    /// The thread's capability sets when the event happened.
    pub capabilities: Capabilities,
    /// Live threads of the process, the leader counted until it exited.
    pub live_threads: u32,
    pub leader_exited: bool,
    /// The CPU the event happened on.
    pub cpu: u32,
    /// The command name's bytes, without the NUL padding.
    pub comm: &'a [u8],
    pub fd_mode: u32,
    pub socket: SocketInfo,
    pub exe_dev: u64,
    pub exe_ino: u64,
    pub exe_ctime_ns: u64,
    pub exe_mtime_ns: u64,
    pub exe_sb_magic: u64,
    pub exe_nlink: u32,
    pub exe_upper_layer: bool,
    /// Exec and fork only (for fork: the new process's); its `pidns_init_start_ns` is 0, see
    /// [`RawEvent::session`].
    session: SessionIds,
    /// Exec and fork only: the boot-clock start of the init of the task's pid namespace.
    pidns_init_start_boot_ns: u64,
    /// The process's descriptor limit and open descriptors when the event happened, when the
    /// probes read them (see `fd_limit` in `bpf/sensor.h`).
    pub fd_state: Option<FdState>,
    /// What descriptors 0, 1 and 2 were when the event happened, when the probes read them
    /// (see `std_fd_mode` in `bpf/sensor.h`); `None` inside for one not open.
    pub std_fds: Option<[Option<FdKind>; 3]>,
    strings: [&'a [u8]; string_slot::N_SLOTS.0 as usize],
}

/// The socket behind an fd, as the kernel reported it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SocketInfo {
    pub family: u16,
    pub socket_type: u16,
    pub protocol: u16,
    pub local_port: u16,
    pub remote_port: u16,
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(data.get(at..at + 8)?.try_into().ok()?))
}
fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
}
fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// A descriptor's kind from its inode's file type (`S_IFMT` bits) when it is not a socket.
pub(crate) fn file_kind(mode: u32) -> FdKind {
    match mode & S_IFMT {
        S_IFDIR => FdKind::Directory,
        S_IFIFO => FdKind::Pipe,
        // Anonymous inodes (eventfd, signalfd, epoll, ...) have no file type.
        0 => FdKind::Other,
        _ => FdKind::File,
    }
}

/// A socket descriptor's kind from its address family.
pub(crate) fn socket_kind(family: u16) -> FdKind {
    match i32::from(family) {
        libc::AF_INET => FdKind::Ipv4,
        libc::AF_INET6 => FdKind::Ipv6,
        libc::AF_UNIX => FdKind::Unix,
        libc::AF_NETLINK => FdKind::Netlink,
        _ => FdKind::Other,
    }
}

/// A record's descriptors 0, 1 and 2, when the probes read them; `None` (the outer one) only
/// when the record is too short.
fn std_fds(data: &[u8]) -> Option<Option<[Option<FdKind>; 3]>> {
    let read = *data.get(offset_of!(RawLayout, std_fd_read))? != 0;
    if !read {
        return Some(None);
    }
    let mut kinds = [None; 3];
    for (fd, kind) in kinds.iter_mut().enumerate() {
        if *data.get(offset_of!(RawLayout, std_fd_open) + fd)? == 0 {
            continue;
        }
        let mode = u32_at(data, offset_of!(RawLayout, std_fd_mode) + fd * 4)?;
        *kind = Some(if mode & S_IFMT == S_IFSOCK {
            socket_kind(u16_at(data, offset_of!(RawLayout, std_fd_family) + fd * 2)?)
        } else {
            file_kind(mode)
        });
    }
    Some(Some(kinds))
}

/// `FD_OPEN_UNKNOWN` in `bpf/sensor.h`: the probes did not count the table.
const FD_OPEN_UNKNOWN: u32 = u32::MAX;
const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const S_IFDIR: u32 = 0o040000;
const S_IFIFO: u32 = 0o010000;
const TMPFS_MAGIC: u64 = 0x0102_1994;
const HUGETLBFS_MAGIC: u64 = 0x9584_58f6;

impl<'a> RawEvent<'a> {
    /// Splits a record; `None` when it is shorter than its fixed part claims.
    pub(crate) fn parse(data: &'a [u8]) -> Option<RawEvent<'a>> {
        let socket_at = offset_of!(RawLayout, socket);
        let socket = SocketInfo {
            family: u16_at(data, socket_at + offset_of!(socket_info, family))?,
            socket_type: u16_at(data, socket_at + offset_of!(socket_info, r#type))?,
            protocol: u16_at(data, socket_at + offset_of!(socket_info, protocol))?,
            local_port: u16_at(data, socket_at + offset_of!(socket_info, local_port))?,
            remote_port: u16_at(data, socket_at + offset_of!(socket_info, remote_port))?,
            local_addr: data
                .get(socket_at + offset_of!(socket_info, local_addr)..)?
                .get(..16)?
                .try_into()
                .ok()?,
            remote_addr: data
                .get(socket_at + offset_of!(socket_info, remote_addr)..)?
                .get(..16)?
                .try_into()
                .ok()?,
        };
        let mut args = [0u64; 6];
        for (index, arg) in args.iter_mut().enumerate() {
            *arg = u64_at(data, offset_of!(RawLayout, args) + index * 8)?;
        }
        let comm_at = offset_of!(RawLayout, comm);
        let comm_bytes = data.get(comm_at..comm_at + 16)?;
        let comm = &comm_bytes[..comm_bytes
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(comm_bytes.len())];

        let tail_at = offset_of!(RawLayout, tail);
        let tail_len = u32_at(data, offset_of!(RawLayout, tail_len))? as usize;
        let tail = data.get(tail_at..tail_at + tail_len)?;
        let mut strings: [&[u8]; string_slot::N_SLOTS.0 as usize] = Default::default();
        let mut at = 0;
        for (slot, string) in strings.iter_mut().enumerate() {
            let len = u16_at(data, offset_of!(RawLayout, lens) + slot * 2)? as usize;
            *string = tail.get(at..at + len)?;
            at += len;
        }
        Some(RawEvent {
            timestamp_boot_ns: u64_at(data, offset_of!(RawLayout, timestamp_boot_ns))?,
            cgroup_id: u64_at(data, offset_of!(RawLayout, cgroup_id))?,
            start_boot_ns: u64_at(data, offset_of!(RawLayout, start_boot_ns))?,
            ret: u64_at(data, offset_of!(RawLayout, ret))? as i64,
            args,
            kind: Pk(u32_at(data, offset_of!(RawLayout, kind))?),
            pid: u32_at(data, offset_of!(RawLayout, pid))?,
            tid: u32_at(data, offset_of!(RawLayout, tid))?,
            ppid: u32_at(data, offset_of!(RawLayout, ppid))?,
            uid: u32_at(data, offset_of!(RawLayout, uid))?,
            gid: u32_at(data, offset_of!(RawLayout, gid))?,
            loginuid: u32_at(data, offset_of!(RawLayout, loginuid))?,
            capabilities: Capabilities {
                inheritable: u64_at(data, offset_of!(RawLayout, cap_inheritable))?,
                permitted: u64_at(data, offset_of!(RawLayout, cap_permitted))?,
                effective: u64_at(data, offset_of!(RawLayout, cap_effective))?,
            },
            live_threads: u32_at(data, offset_of!(RawLayout, live_threads))?,
            leader_exited: u32_at(data, offset_of!(RawLayout, leader_exited))? != 0,
            cpu: u32_at(data, offset_of!(RawLayout, cpu))?,
            comm,
            fd_mode: u32_at(data, offset_of!(RawLayout, fd_mode))?,
            socket,
            exe_dev: u64_at(data, offset_of!(RawLayout, exe_dev))?,
            exe_ino: u64_at(data, offset_of!(RawLayout, exe_ino))?,
            exe_ctime_ns: u64_at(data, offset_of!(RawLayout, exe_ctime_ns))?,
            exe_mtime_ns: u64_at(data, offset_of!(RawLayout, exe_mtime_ns))?,
            exe_sb_magic: u64_at(data, offset_of!(RawLayout, exe_sb_magic))?,
            exe_nlink: u32_at(data, offset_of!(RawLayout, exe_nlink))?,
            exe_upper_layer: u32_at(data, offset_of!(RawLayout, exe_upper_layer))? != 0,
            session: SessionIds {
                tty: u32_at(data, offset_of!(RawLayout, tty))?,
                sid: u32_at(data, offset_of!(RawLayout, sid))?,
                vpgid: u32_at(data, offset_of!(RawLayout, vpgid))?,
                vpid: u32_at(data, offset_of!(RawLayout, vpid))?,
                pidns_init_start_ns: 0,
            },
            pidns_init_start_boot_ns: u64_at(
                data,
                offset_of!(RawLayout, pidns_init_start_boot_ns),
            )?,
            fd_state: (u32_at(data, offset_of!(RawLayout, fd_read))? != 0).then_some(FdState {
                // RLIM_INFINITY (all ones) reads as -1, as Falco's int64 proc.fdlimit shows it.
                limit: u64_at(data, offset_of!(RawLayout, fd_limit))? as i64,
                open: Some(u32_at(data, offset_of!(RawLayout, fd_open))?)
                    .filter(|&open| open != FD_OPEN_UNKNOWN)
                    .map(u64::from),
            }),
            std_fds: std_fds(data)?,
            strings,
        })
    }

    /// An exec or fork record's terminal, session and pid namespace (for a fork, the new
    /// process's), the namespace's start on the epoch clock (`boot_offset_ns` after boot).
    pub(crate) fn session(&self, boot_offset_ns: u64) -> SessionIds {
        SessionIds {
            pidns_init_start_ns: match self.pidns_init_start_boot_ns {
                0 => 0,
                boot_ns => boot_ns + boot_offset_ns,
            },
            ..self.session
        }
    }

    /// A string slot as text, without its NUL.
    pub(crate) fn string(&self, slot: string_slot) -> String {
        cstr(self.strings[slot.0 as usize])
    }

    /// A string slot's raw bytes (argv, sockaddr).
    pub(crate) fn bytes(&self, slot: string_slot) -> &'a [u8] {
        self.strings[slot.0 as usize]
    }

    /// An exec record's arguments, `argv[0]` first, and whether the kernel cut them (at
    /// 4,095 bytes; `args[1]` holds the size of the whole block): the last one kept is then
    /// cut where the block was, as Falco's driver keeps it.
    pub(crate) fn argv(&self) -> (Vec<String>, bool) {
        let bytes = self.bytes(string_slot::SLOT_ARGV);
        (
            procfs::split_nul(bytes),
            self.args[1] as usize > bytes.len(),
        )
    }

    /// An exec record's environment: empty unless the probes capture it; `args[0]` holds
    /// the size of the whole block, which tells whether the kernel had to cut it.
    pub(crate) fn environment(&self) -> Environment {
        let bytes = self.bytes(string_slot::SLOT_ENV);
        environment(bytes, (self.args[0] as usize).max(bytes.len()))
    }

    /// An exec or fork record's memory, page faults and descriptor limit (of the new task,
    /// for a fork); `None` when the record has none. `page_kb` is the page size in kB.
    pub(crate) fn resources(&self, page_kb: u64) -> Option<TaskResources> {
        let bytes = self.bytes(string_slot::SLOT_RESOURCES);
        let field = |offset: usize| u64_at(bytes, offset);
        Some(TaskResources {
            vm_size_kb: field(offset_of!(task_resources, vm_size_pages))? * page_kb,
            vm_rss_kb: field(offset_of!(task_resources, vm_rss_pages))? * page_kb,
            vm_swap_kb: field(offset_of!(task_resources, vm_swap_pages))? * page_kb,
            major_faults: field(offset_of!(task_resources, major_faults))?,
            minor_faults: field(offset_of!(task_resources, minor_faults))?,
            // RLIM_INFINITY (all ones) reads as -1, as Falco's int64 proc.fdlimit shows it.
            fd_limit: field(offset_of!(task_resources, fd_limit))? as i64,
        })
    }

    /// The file behind a successful open call's descriptor; `None` for other records.
    pub(crate) fn opened_file(&self) -> Option<OpenedFile> {
        let bytes = self.bytes(string_slot::SLOT_OPENED_FILE);
        let layer = match overlay_layer(u32_at(bytes, offset_of!(opened_file, layer))?) {
            overlay_layer::LAYER_LOWER => OverlayLayer::Lower,
            overlay_layer::LAYER_UPPER => OverlayLayer::Upper,
            _ => OverlayLayer::None,
        };
        Some(OpenedFile {
            dev: u32_at(bytes, offset_of!(opened_file, dev))?,
            ino: u64_at(bytes, offset_of!(opened_file, ino))?,
            layer,
            created: Some(u32_at(bytes, offset_of!(opened_file, created))? != 0),
        })
    }

    /// An exec or fork record's `subsystem=path` cgroup entries (empty when it has none).
    pub(crate) fn cgroups(&self) -> Vec<String> {
        procfs::split_nul(self.bytes(string_slot::SLOT_CGROUPS))
    }

    /// A path argument made absolute with the directory the kernel reported for it.
    fn path(&self, slot: string_slot, base: string_slot) -> String {
        let path = self.string(slot);
        if path.starts_with('/') || self.bytes(base).is_empty() {
            return path;
        }
        join_path(&self.string(base), &path)
    }

    /// The event kind Palisade reports for this record.
    pub(crate) fn event_kind(&self) -> Option<EventKind> {
        use EventKind as K;
        Some(match self.kind {
            Pk::PK_EXEC => K::Execve,
            Pk::PK_FORK => K::Clone,
            Pk::PK_EXIT => K::Procexit,
            Pk::PK_OPEN => K::Open,
            Pk::PK_OPENAT => K::Openat,
            Pk::PK_OPENAT2 => K::Openat2,
            Pk::PK_CREAT => K::Creat,
            Pk::PK_UNLINK => K::Unlink,
            Pk::PK_UNLINKAT => K::Unlinkat,
            Pk::PK_RENAME => K::Rename,
            Pk::PK_RENAMEAT => K::Renameat,
            Pk::PK_RENAMEAT2 => K::Renameat2,
            Pk::PK_CHMOD => K::Chmod,
            Pk::PK_FCHMOD => K::Fchmod,
            Pk::PK_FCHMODAT => K::Fchmodat,
            Pk::PK_CHOWN => K::Chown,
            Pk::PK_LCHOWN => K::Lchown,
            Pk::PK_FCHOWN => K::Fchown,
            Pk::PK_FCHOWNAT => K::Fchownat,
            Pk::PK_LINK => K::Link,
            Pk::PK_LINKAT => K::Linkat,
            Pk::PK_SYMLINK => K::Symlink,
            Pk::PK_SYMLINKAT => K::Symlinkat,
            Pk::PK_MKDIR => K::Mkdir,
            Pk::PK_MKDIRAT => K::Mkdirat,
            Pk::PK_SOCKET => K::Socket,
            Pk::PK_CONNECT => K::Connect,
            Pk::PK_ACCEPT => K::Accept,
            Pk::PK_ACCEPT4 => K::Accept4,
            Pk::PK_BIND => K::Bind,
            Pk::PK_LISTEN => K::Listen,
            Pk::PK_SENDTO => K::Sendto,
            Pk::PK_SENDMSG => K::Sendmsg,
            Pk::PK_DUP => K::Dup,
            Pk::PK_DUP2 => K::Dup2,
            Pk::PK_DUP3 => K::Dup3,
            Pk::PK_PTRACE => K::Ptrace,
            Pk::PK_INIT_MODULE => K::InitModule,
            Pk::PK_FINIT_MODULE => K::FinitModule,
            Pk::PK_DELETE_MODULE => K::DeleteModule,
            Pk::PK_MOUNT => K::Mount,
            Pk::PK_UMOUNT => K::Umount2,
            Pk::PK_SETNS => K::Setns,
            Pk::PK_UNSHARE => K::Unshare,
            Pk::PK_SETUID => K::Setuid,
            Pk::PK_SETGID => K::Setgid,
            Pk::PK_SETRESUID => K::Setresuid,
            Pk::PK_SETRESGID => K::Setresgid,
            Pk::PK_CAPSET => K::Capset,
            Pk::PK_MEMFD_CREATE => K::MemfdCreate,
            Pk::PK_BPF => K::Bpf,
            Pk::PK_CHROOT => K::Chroot,
            _ => return None,
        })
    }

    /// Whether a fork record is a new thread rather than a new process.
    pub(crate) fn is_new_thread(&self) -> bool {
        self.kind == Pk::PK_FORK && self.args[2] & libc::CLONE_THREAD as u64 != 0
    }

    /// Whether the executable of an exec record is a memfd and whether it was deleted.
    pub(crate) fn exe_memfd_and_deleted(&self, exepath: &str) -> (bool, bool) {
        let memfd = (self.exe_sb_magic == TMPFS_MAGIC || self.exe_sb_magic == HUGETLBFS_MAGIC)
            && exepath.starts_with("/memfd:");
        (memfd, self.exe_nlink == 0 && !memfd)
    }

    /// The per-kind payload of a system call record.
    pub(crate) fn payload(&self) -> Payload {
        use string_slot as S;
        let args = &self.args;
        let path1 = || self.path(S::SLOT_STR1, S::SLOT_BASE1);
        let path2 = || self.path(S::SLOT_STR2, S::SLOT_BASE2);
        let fd_path = || self.string(S::SLOT_FD_PATH);
        let open = |flags: u64, mode: u64| Payload::Open {
            fd: Fd {
                num: if self.ret < 0 { -1 } else { self.ret },
                kind: if flags & libc::O_DIRECTORY as u64 != 0 {
                    FdKind::Directory
                } else {
                    FdKind::File
                },
                name: path1(),
                socket: None,
            },
            flags: flags as u32,
            mode: mode as u32,
        };
        let path = |path: String, mode: u64, flags: u64| Payload::Path {
            path,
            mode: mode as u32,
            flags: flags as u32,
        };
        match self.kind {
            Pk::PK_FORK => Payload::Spawn {
                child_pid: args[0] as u32,
                flags: args[2],
            },
            Pk::PK_EXIT => {
                let code = args[0] as i32;
                Payload::Exit {
                    status: (code >> 8) & 0xff,
                    signal: code & 0x7f,
                }
            }
            Pk::PK_OPEN => open(args[1], args[2]),
            Pk::PK_OPENAT | Pk::PK_OPENAT2 => open(args[2], args[3]),
            Pk::PK_CREAT => open(
                (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
                args[1],
            ),
            Pk::PK_UNLINK | Pk::PK_CHROOT => path(path1(), 0, 0),
            Pk::PK_UNLINKAT => path(path1(), 0, args[2]),
            Pk::PK_UMOUNT => path(path1(), 0, args[1]),
            Pk::PK_CHMOD | Pk::PK_MKDIR => path(path1(), args[1], 0),
            Pk::PK_FCHMOD => path(fd_path(), args[1], 0),
            Pk::PK_FCHMODAT | Pk::PK_MKDIRAT => path(path1(), args[2], 0),
            Pk::PK_CHOWN | Pk::PK_LCHOWN => Payload::Chown {
                path: path1(),
                uid: args[1] as u32,
                gid: args[2] as u32,
            },
            Pk::PK_FCHOWN => Payload::Chown {
                path: fd_path(),
                uid: args[1] as u32,
                gid: args[2] as u32,
            },
            Pk::PK_FCHOWNAT => Payload::Chown {
                path: path1(),
                uid: args[2] as u32,
                gid: args[3] as u32,
            },
            Pk::PK_RENAME | Pk::PK_RENAMEAT | Pk::PK_RENAMEAT2 | Pk::PK_LINK | Pk::PK_LINKAT => {
                Payload::Link {
                    source: path1(),
                    target: path2(),
                }
            }
            // A symlink's target is stored as written.
            Pk::PK_SYMLINK | Pk::PK_SYMLINKAT => Payload::Link {
                source: self.string(S::SLOT_STR1),
                target: path2(),
            },
            Pk::PK_SOCKET => Payload::SocketCreate {
                domain: args[0] as u32,
                socket_type: args[1] as u32 & 0xf,
                protocol: args[2] as u32,
            },
            Pk::PK_CONNECT | Pk::PK_BIND | Pk::PK_LISTEN | Pk::PK_SENDTO | Pk::PK_SENDMSG => {
                Payload::Network {
                    fd: self.socket_fd(args[0] as i32 as i64),
                }
            }
            Pk::PK_ACCEPT | Pk::PK_ACCEPT4 => Payload::Network {
                fd: self.socket_fd(self.ret),
            },
            Pk::PK_DUP => Payload::Dup {
                fd: self.any_fd(args[0] as i32 as i64),
                new_fd: self.ret,
            },
            Pk::PK_DUP2 | Pk::PK_DUP3 => Payload::Dup {
                fd: self.any_fd(args[0] as i32 as i64),
                new_fd: args[1] as i32 as i64,
            },
            Pk::PK_PTRACE => Payload::Ptrace {
                request: args[0],
                target_pid: args[1] as u32,
            },
            Pk::PK_INIT_MODULE | Pk::PK_DELETE_MODULE => Payload::Module {
                name: self.string(S::SLOT_STR1),
            },
            Pk::PK_FINIT_MODULE => Payload::Module { name: fd_path() },
            Pk::PK_MOUNT => Payload::Mount {
                source: self.string(S::SLOT_STR1),
                target: path2(),
                fstype: self.string(S::SLOT_STR3),
                flags: args[3],
            },
            Pk::PK_SETNS => Payload::Namespace {
                path: fd_path(),
                flags: args[1],
            },
            Pk::PK_UNSHARE => Payload::Namespace {
                path: String::new(),
                flags: args[0],
            },
            // The id's name is resolved by the sensor, in the process's root.
            Pk::PK_SETUID | Pk::PK_SETGID => Payload::SetId {
                id: args[0] as u32,
                name: String::new(),
            },
            // setres*id(real, effective, saved): the effective id, or the real one when the
            // effective id is left unchanged (-1).
            Pk::PK_SETRESUID | Pk::PK_SETRESGID => Payload::SetId {
                id: if args[1] as u32 == u32::MAX {
                    args[0] as u32
                } else {
                    args[1] as u32
                },
                name: String::new(),
            },
            // The sets after the call, read from the task with every record, as Falco's
            // driver reads them for capset's exit event.
            Pk::PK_CAPSET => Payload::Capset {
                inheritable: self.capabilities.inheritable,
                permitted: self.capabilities.permitted,
                effective: self.capabilities.effective,
            },
            Pk::PK_MEMFD_CREATE => Payload::Memfd {
                name: self.string(S::SLOT_STR1),
                flags: args[1] as u32,
            },
            Pk::PK_BPF => Payload::Bpf {
                cmd: args[0] as i64,
            },
            _ => Payload::None,
        }
    }

    /// The fd argument of a dup: a socket with its addresses, or a file with its type.
    fn any_fd(&self, num: i64) -> Fd {
        if self.fd_mode & S_IFMT == S_IFSOCK {
            return self.socket_fd(num);
        }
        let kind = file_kind(self.fd_mode);
        Fd {
            num,
            kind,
            name: self.string(string_slot::SLOT_FD_PATH),
            socket: None,
        }
    }

    /// A socket fd, combining the kernel's socket state with the address the call passed.
    fn socket_fd(&self, num: i64) -> Fd {
        let info = &self.socket;
        let sockaddr = parse_sockaddr(self.bytes(string_slot::SLOT_SOCKADDR));
        let family = if info.family != 0 {
            info.family
        } else {
            sockaddr.as_ref().map_or(0, |addr| addr.family())
        };
        let kind = socket_kind(family);
        let protocol = match (i32::from(info.socket_type), i32::from(info.protocol)) {
            (libc::SOCK_STREAM, _) if matches!(kind, FdKind::Ipv4 | FdKind::Ipv6) => Protocol::Tcp,
            (libc::SOCK_DGRAM, _) if matches!(kind, FdKind::Ipv4 | FdKind::Ipv6) => Protocol::Udp,
            (_, libc::IPPROTO_ICMP) | (_, libc::IPPROTO_ICMPV6) => Protocol::Icmp,
            (libc::SOCK_RAW, _) => Protocol::Raw,
            _ => Protocol::Unknown,
        };
        let kernel_ip = |bytes: &[u8; 16]| -> Option<IpAddr> {
            match kind {
                FdKind::Ipv4 => Some(IpAddr::V4(Ipv4Addr::new(
                    bytes[0], bytes[1], bytes[2], bytes[3],
                ))),
                FdKind::Ipv6 => Some(IpAddr::V6(Ipv6Addr::from(*bytes))),
                _ => None,
            }
        };
        let mut socket = Socket {
            protocol,
            local_addr: kernel_ip(&info.local_addr),
            local_port: info.local_port,
            remote_addr: kernel_ip(&info.remote_addr).filter(|_| info.remote_port != 0),
            remote_port: info.remote_port,
            connected: info.remote_port != 0,
            unix_path: String::new(),
        };
        // The address the call names: the peer for connect/sendto/accept, ours for bind.
        match sockaddr {
            Some(SockAddr::Inet(ip, port)) => {
                if self.kind == Pk::PK_BIND {
                    socket.local_addr = Some(ip);
                    socket.local_port = port;
                } else {
                    socket.remote_addr = Some(ip);
                    socket.remote_port = port;
                    socket.connected =
                        socket.connected || self.kind == Pk::PK_CONNECT && self.ret == 0;
                }
            }
            Some(SockAddr::Unix(path)) => socket.unix_path = path,
            None => {}
        }
        let name = match kind {
            FdKind::Ipv4 | FdKind::Ipv6 => format!(
                "{}:{}->{}:{}",
                socket
                    .local_addr
                    .map_or_else(String::new, |ip| ip.to_string()),
                socket.local_port,
                socket
                    .remote_addr
                    .map_or_else(String::new, |ip| ip.to_string()),
                socket.remote_port
            ),
            FdKind::Unix => socket.unix_path.clone(),
            _ => String::new(),
        };
        Fd {
            num,
            kind,
            name,
            socket: Some(socket),
        }
    }
}

enum SockAddr {
    Inet(IpAddr, u16),
    Unix(String),
}

impl SockAddr {
    fn family(&self) -> u16 {
        match self {
            SockAddr::Inet(IpAddr::V4(_), _) => libc::AF_INET as u16,
            SockAddr::Inet(IpAddr::V6(_), _) => libc::AF_INET6 as u16,
            SockAddr::Unix(_) => libc::AF_UNIX as u16,
        }
    }
}

fn parse_sockaddr(bytes: &[u8]) -> Option<SockAddr> {
    let family = i32::from(u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?));
    match family {
        libc::AF_INET => {
            let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
            let ip: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SockAddr::Inet(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        libc::AF_INET6 => {
            let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
            let ip: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            Some(SockAddr::Inet(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        libc::AF_UNIX => {
            let path = bytes.get(2..).unwrap_or_default();
            // Abstract sockets start with NUL; show them with Falco's leading '@'.
            let text = match path.first() {
                Some(0) => format!("@{}", cstr(&path[1..])),
                _ => cstr(path),
            };
            Some(SockAddr::Unix(text))
        }
        _ => None,
    }
}

/// Text up to the first NUL.
fn cstr(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Joins a relative path onto a directory, resolving `.` and `..` lexically.
pub(crate) fn join_path(base: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').filter(|part| !part.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use crate::decode::{RawEvent, join_path};

    #[test]
    fn relative_paths_resolve_against_their_directory() {
        assert_eq!(join_path("/home/user", "notes.txt"), "/home/user/notes.txt");
        assert_eq!(join_path("/home/user", "../../etc/./shadow"), "/etc/shadow");
        assert_eq!(join_path("/", "../../x"), "/x");
    }

    #[test]
    fn truncated_records_are_refused() {
        assert!(RawEvent::parse(&[]).is_none());
        assert!(RawEvent::parse(&[0u8; 64]).is_none());
    }
}
