//! The runtime event: what the sensor observes and what the rules engine evaluates.
//!
//! An [`Event`] is one completed system call (or process lifecycle step) of one thread, with
//! everything a detection rule may ask about it already attached: the [`Process`] that made the
//! call, its [`Container`], its ancestry ([`Ancestor`]), the return value, and a per-kind
//! [`Payload`] (the path that was opened, the address that was connected to, ...).
//!
//! # Wire format
//!
//! `Event` and every type it contains derive `serde::Serialize` and `serde::Deserialize`, and
//! the JSON form is a **wire format**: the sensor writes it, recordings store it, and the
//! rules engine and tests read it back. Field names are `snake_case`, [`EventKind`] values are
//! the Linux system call names (`"openat"`, `"execve"`), and [`Payload`] is internally tagged
//! by `"type"`. Changing a name is a breaking change; adding an optional field is not (every
//! field except `kind` has a default, so old recordings stay readable).
//!
//! # Design decision: enrichment happens before the rules
//!
//! The event carries resolved data (user name, ancestry, container image) rather than raw ids
//! that a rule would have to look up. Rule evaluation then never blocks on `/proc`, the
//! container runtime or the Kubernetes API, and a recorded event replays exactly as it was
//! evaluated live.
//!
//! What stays the same across a process's events — its executable, arguments, user names,
//! the host name, the container and the ancestry — is held as [`SharedStr`], [`SharedSlice`]
//! and `Arc<Container>`, so that attaching it to each event of a storm is a reference-count
//! increment rather than a copy; they serialize exactly like `String`, `Vec` and `Container`.
//!
//! # Sinks
//!
//! Producers hand events to an [`EventSink`], which keeps the sensor independent of whoever
//! consumes events (the rules engine, a recorder, a test).
//!
//! ```
//! use palisade_event::{Event, EventKind, EventSink, Fd, FdKind, Payload};
//!
//! let mut event = Event::new(EventKind::Openat);
//! event.process.name = "cat".into();
//! event.payload = Payload::Open {
//!     fd: Fd { num: 3, kind: FdKind::File, name: "/etc/shadow".into(), socket: None },
//!     flags: 0,
//!     mode: 0,
//! };
//! let json = serde_json::to_string(&event).unwrap();
//! let back: Event = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, event);
//!
//! let mut recorded: Vec<Event> = Vec::new();
//! recorded.send(event);
//! assert_eq!(recorded.len(), 1);
//! ```
#![deny(missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod shared;

pub use shared::{SharedSlice, SharedStr};

/// One observed system call or process lifecycle step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Time of the event, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp_ns: u64,
    /// Which system call (or lifecycle step) this is.
    pub kind: EventKind,
    /// Host name of the node that observed the event.
    #[serde(default)]
    pub hostname: SharedStr,
    /// The thread that made the call, after the call returned (for `execve`, the new image).
    #[serde(default)]
    pub process: Process,
    /// The cgroup v2 id of the thread (the inode of its cgroup2 directory).
    #[serde(default)]
    pub cgroup_id: u64,
    /// The container the thread runs in; `None` on the host. Shared by the events of the
    /// container's processes.
    #[serde(default, with = "shared::option_arc")]
    pub container: Option<Arc<Container>>,
    /// The system call's return value (negative errno on failure).
    #[serde(default)]
    pub ret: i64,
    /// Per-kind arguments.
    #[serde(default)]
    pub payload: Payload,
    /// The process's ancestors, parent first (shared by the events of one process).
    #[serde(default)]
    pub ancestors: SharedSlice<Ancestor>,
    /// The CPU the event happened on; `None` when the source does not say (Falco's `evt.cpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u16>,
    /// When the source that observed the event began (its first event), nanoseconds since
    /// the Unix epoch; 0 when unknown. Falco's `evt.reltime` counts from it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub capture_start_ns: u64,
    /// The file behind the descriptor an open call returned; `None` for other calls, failed
    /// opens and sources that do not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_file: Option<OpenedFile>,
    /// What the Kubernetes API server says about the pod the container belongs to (labels,
    /// IP, namespace, owners, services), attached by the agent from its cache of the API
    /// server's objects; `None` outside pods, without an API server, or before the pod was
    /// seen. Shared by the events of one pod while its metadata stays the same.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "shared::option_arc"
    )]
    pub k8s_meta: Option<Arc<K8sMeta>>,
}

impl Event {
    /// An event of `kind` with every other field empty or zero.
    pub fn new(kind: EventKind) -> Event {
        Event {
            timestamp_ns: 0,
            kind,
            hostname: SharedStr::default(),
            process: Process::default(),
            cgroup_id: 0,
            container: None,
            ret: 0,
            payload: Payload::None,
            ancestors: SharedSlice::default(),
            cpu: None,
            capture_start_ns: 0,
            opened_file: None,
            k8s_meta: None,
        }
    }

    /// The event without its process's and its ancestors' environments: the form that
    /// leaves the node (an alert's raw event), since environments hold secrets. The values a
    /// rule reads (`proc.env[NAME]`) travel with its alert's evidence instead.
    pub fn without_environment(&self) -> Event {
        let mut event = self.clone();
        event.process.env = SharedSlice::default();
        event.process.env_truncated = false;
        if event
            .ancestors
            .iter()
            .any(|ancestor| !ancestor.env.is_empty())
        {
            event.ancestors = self
                .ancestors
                .iter()
                .map(|ancestor| Ancestor {
                    env: SharedSlice::default(),
                    ..ancestor.clone()
                })
                .collect();
        }
        event
    }
}

/// Consumes events; implemented by the rules engine, recorders and tests.
///
/// `send` takes the event by value so that a sink may keep it without copying.
pub trait EventSink {
    /// Accepts one event.
    fn send(&mut self, event: Event);
}

/// Recording sink: keeps every event in order.
impl EventSink for Vec<Event> {
    fn send(&mut self, event: Event) {
        self.push(event);
    }
}

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The system call (or lifecycle step) an event reports, named as Linux names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
        }

        impl EventKind {
            /// Every kind, in declaration order (the order of [`EventKind::index`]).
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The system call name (`"openat"`), as Falco's `evt.type` spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }

            /// The kind for a system call name, if it is one Palisade observes.
            pub fn from_name(name: &str) -> Option<EventKind> {
                match name {
                    $($name => Some(EventKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_kinds! {
    /// `execve`: a new program image.
    Execve = "execve",
    /// `execveat`: a new program image, relative to a directory fd.
    Execveat = "execveat",
    /// `clone`: a new thread or process.
    Clone = "clone",
    /// `clone3`: a new thread or process.
    Clone3 = "clone3",
    /// `fork`: a new process.
    Fork = "fork",
    /// `vfork`: a new process sharing memory until exec.
    Vfork = "vfork",
    /// The process exited.
    Procexit = "procexit",
    /// `open`.
    Open = "open",
    /// `openat`.
    Openat = "openat",
    /// `openat2`.
    Openat2 = "openat2",
    /// `creat`.
    Creat = "creat",
    /// `unlink`.
    Unlink = "unlink",
    /// `unlinkat`.
    Unlinkat = "unlinkat",
    /// `rename`.
    Rename = "rename",
    /// `renameat`.
    Renameat = "renameat",
    /// `renameat2`.
    Renameat2 = "renameat2",
    /// `chmod`.
    Chmod = "chmod",
    /// `fchmod`.
    Fchmod = "fchmod",
    /// `fchmodat`.
    Fchmodat = "fchmodat",
    /// `chown`.
    Chown = "chown",
    /// `lchown`.
    Lchown = "lchown",
    /// `fchown`.
    Fchown = "fchown",
    /// `fchownat`.
    Fchownat = "fchownat",
    /// `link`.
    Link = "link",
    /// `linkat`.
    Linkat = "linkat",
    /// `symlink`.
    Symlink = "symlink",
    /// `symlinkat`.
    Symlinkat = "symlinkat",
    /// `mkdir`.
    Mkdir = "mkdir",
    /// `mkdirat`.
    Mkdirat = "mkdirat",
    /// `socket`.
    Socket = "socket",
    /// `connect`.
    Connect = "connect",
    /// `accept`.
    Accept = "accept",
    /// `accept4`.
    Accept4 = "accept4",
    /// `bind`.
    Bind = "bind",
    /// `listen`.
    Listen = "listen",
    /// `sendto`.
    Sendto = "sendto",
    /// `sendmsg`.
    Sendmsg = "sendmsg",
    /// `dup`.
    Dup = "dup",
    /// `dup2`.
    Dup2 = "dup2",
    /// `dup3`.
    Dup3 = "dup3",
    /// `ptrace`.
    Ptrace = "ptrace",
    /// `init_module`.
    InitModule = "init_module",
    /// `finit_module`.
    FinitModule = "finit_module",
    /// `delete_module`.
    DeleteModule = "delete_module",
    /// `mount`.
    Mount = "mount",
    /// `umount`.
    Umount = "umount",
    /// `umount2`.
    Umount2 = "umount2",
    /// `setns`.
    Setns = "setns",
    /// `unshare`.
    Unshare = "unshare",
    /// `setuid`.
    Setuid = "setuid",
    /// `setgid`.
    Setgid = "setgid",
    /// `setresuid`.
    Setresuid = "setresuid",
    /// `setresgid`.
    Setresgid = "setresgid",
    /// `capset`.
    Capset = "capset",
    /// `memfd_create`.
    MemfdCreate = "memfd_create",
    /// `bpf`.
    Bpf = "bpf",
    /// `chroot`.
    Chroot = "chroot",
    /// Not a system call: one Kubernetes API server audit event (`audit.k8s.io/v1` `Event`),
    /// the event of Falco's `k8s_audit` source. Its payload is [`Payload::K8sAudit`].
    K8sAudit = "k8s_audit",
}

impl EventKind {
    /// Position of the kind in [`EventKind::ALL`], for bit sets indexed by kind.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The thread that made the call, and its process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Process {
    /// Process id (thread group id), as seen from the host.
    pub pid: u32,
    /// Thread id, as seen from the host.
    pub tid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Process id inside the process's pid namespace.
    pub vpid: u32,
    /// Session id.
    pub sid: u32,
    /// Process group id, inside the pid namespace.
    pub vpgid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// User name for `uid`, resolved in the process's root file system; empty when unknown.
    pub user: SharedStr,
    /// Group name for `gid`; empty when unknown.
    pub group: SharedStr,
    /// Home directory of `user` in the process's root file system (`/etc/passwd`); empty
    /// when unknown (and left out of the JSON).
    #[serde(skip_serializing_if = "is_empty_str")]
    pub user_homedir: SharedStr,
    /// Login shell of `user`, as `user_homedir`.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub user_shell: SharedStr,
    /// Audit login uid; `None` when unset (the kernel's `(uid_t)-1`).
    pub loginuid: Option<u32>,
    /// User name for `loginuid`; empty when unknown.
    pub loginname: SharedStr,
    /// Command name (`comm`, at most 15 bytes).
    pub name: SharedStr,
    /// `argv[0]`.
    pub exe: SharedStr,
    /// Full path of the executable.
    pub exepath: SharedStr,
    /// Arguments after `argv[0]`.
    pub args: SharedSlice<String>,
    /// The arguments were longer than the sensor keeps (4,095 bytes, `argv[0]` and the NULs
    /// included, as Falco's driver): `args` ends with the argument the limit cut, cut there.
    #[serde(skip_serializing_if = "is_false")]
    pub args_truncated: bool,
    /// Current working directory.
    pub cwd: SharedStr,
    /// The environment the process received at its last exec, `NAME=value` entries in order.
    /// Captured only when a loaded rule reads it (`proc.env`, `proc.aenv`): it holds secrets.
    /// Empty (and left out of the JSON) otherwise.
    #[serde(skip_serializing_if = "is_empty")]
    pub env: SharedSlice<String>,
    /// The environment was longer than the sensor captures (see the sensor's limits): `env`
    /// holds its first entries only.
    #[serde(skip_serializing_if = "is_false")]
    pub env_truncated: bool,
    /// Controlling terminal device number, 0 when none.
    pub tty: u32,
    /// Process start time, nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    /// Start time of the init process of the process's pid namespace, nanoseconds since the
    /// Unix epoch (Falco's `proc.pidns_init_start_ts`); 0 (and left out of the JSON) when
    /// unknown.
    #[serde(skip_serializing_if = "is_zero")]
    pub pidns_init_start_ns: u64,
    /// The thread's effective capabilities when the event happened, bit N for capability N.
    pub cap_effective: u64,
    /// The thread's permitted capabilities, as `cap_effective`.
    pub cap_permitted: u64,
    /// The thread's inheritable capabilities, as `cap_effective` (left out of the JSON when
    /// empty).
    #[serde(skip_serializing_if = "is_zero")]
    pub cap_inheritable: u64,
    /// Device of the executable's file.
    pub exe_dev: u64,
    /// Inode of the executable's file.
    pub exe_ino: u64,
    /// Change time of the executable's inode, nanoseconds since the Unix epoch.
    pub exe_ctime_ns: u64,
    /// Modification time of the executable's inode, nanoseconds since the Unix epoch.
    pub exe_mtime_ns: u64,
    /// The executable lives in the writable upper layer of an overlay file system (it was
    /// written after the container started rather than shipped in the image).
    pub exe_upper_layer: bool,
    /// The executable is a `memfd_create` file (fileless execution).
    pub exe_from_memfd: bool,
    /// The executable file was deleted after the process started.
    pub exe_deleted: bool,
    /// The executable is writable by the process's user.
    pub exe_writable: bool,
    /// The executable is one of the host's container runtime binaries (runc, crun, conmon,
    /// containerd-shim*), matched by device and inode: a process in a container cannot get it
    /// by naming itself like the runtime.
    pub exe_container_runtime: bool,
    /// Memory, page faults and descriptor limit as of the process's last exec or fork (or
    /// when the sensor found it in `/proc`); `None` when the source does not read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<TaskResources>,
    /// The process's cgroup for each controller Falco reports, as of its last exec or fork:
    /// `subsystem=/path` entries with the kernel's controller names (`cpuset`, `cpu`,
    /// `cpuacct`, `io`, `memory`), the path in the hierarchy the controller is bound to.
    /// Empty (and left out of the JSON) when not read.
    #[serde(skip_serializing_if = "is_empty")]
    pub cgroups: SharedSlice<String>,
    /// Live threads of the process when the event happened, counting the leader thread until
    /// it has exited; 0 when the source does not say.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub live_threads: u32,
    /// The leader thread has exited while other threads run on.
    #[serde(skip_serializing_if = "is_false")]
    pub leader_exited: bool,
    /// Descriptors the process had open when the event happened (Falco's
    /// `proc.fdopencount`); read only when a loaded rule needs it, `None` otherwise, when the
    /// source does not count them or when the table was larger than it counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_fds: Option<u64>,
    /// Soft limit on open descriptors (`RLIMIT_NOFILE`) when the event happened, -1 when
    /// unlimited: it follows setrlimit and prlimit, where [`TaskResources::fd_limit`] is the
    /// one of the last exec or fork. Read only when a loaded rule needs it; `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd_limit: Option<i64>,
    /// What the thread had on descriptors 0, 1 and 2 (standard input, output and error) when
    /// the event happened, `None` inside for one not open. Read only when a loaded rule needs
    /// it; `None` otherwise and when the source does not read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std_fds: Option<[Option<FdKind>; 3]>,
}

/// A task's memory, page faults and descriptor limit, as the kernel reported them at one
/// exec or fork (what Falco's driver sends with those events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskResources {
    /// Virtual memory, kB (`VmSize`).
    pub vm_size_kb: u64,
    /// Resident memory (file, anonymous and shared pages), kB (`VmRSS`).
    pub vm_rss_kb: u64,
    /// Swapped-out anonymous memory, kB (`VmSwap`).
    pub vm_swap_kb: u64,
    /// Major page faults of the task (the thread) so far.
    pub major_faults: u64,
    /// Minor page faults of the task so far.
    pub minor_faults: u64,
    /// Soft limit on open descriptors (`RLIMIT_NOFILE`); -1 when unlimited.
    pub fd_limit: i64,
}

/// The file an open call's new descriptor refers to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenedFile {
    /// Device of the file system, encoded as `stat`'s `st_dev` (major in bits 8-19, minor in
    /// bits 0-7 and 20-31).
    pub dev: u32,
    /// Inode number.
    pub ino: u64,
    /// Where the file lives when it is on an overlay file system.
    pub layer: OverlayLayer,
    /// This open created the file (the kernel's `FMODE_CREATED`); `None` when the source
    /// does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

/// Which layer of an overlay file system a file is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlayLayer {
    /// Not on an overlay file system.
    #[default]
    None,
    /// A lower (read-only, image) layer: the file was not copied up.
    Lower,
    /// The upper (writable) layer: written or copied up since the overlay was mounted.
    Upper,
}

/// One ancestor of the process (parent, grandparent, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ancestor {
    /// Process id.
    pub pid: u32,
    /// Process id inside the ancestor's pid namespace.
    pub vpid: u32,
    /// Command name (`comm`).
    pub name: SharedStr,
    /// `argv[0]`.
    pub exe: SharedStr,
    /// Full path of the executable.
    pub exepath: SharedStr,
    /// Arguments after `argv[0]`.
    pub args: SharedSlice<String>,
    /// Real user id.
    pub uid: u32,
    /// User name for `uid`; empty when unknown.
    pub user: SharedStr,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    /// Id of the container the ancestor runs in; empty on the host.
    pub container_id: SharedStr,
    /// The ancestor's environment, as [`Process::env`]; empty unless captured.
    #[serde(skip_serializing_if = "is_empty")]
    pub env: SharedSlice<String>,
}

fn is_empty(entries: &SharedSlice<String>) -> bool {
    entries.is_empty()
}

fn is_empty_str(text: &SharedStr) -> bool {
    text.is_empty()
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

fn is_zero(number: &u64) -> bool {
    *number == 0
}

fn is_zero_u32(number: &u32) -> bool {
    *number == 0
}

/// The container a process runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    /// Full container id (64 hex digits for most runtimes).
    pub id: String,
    /// Container name.
    pub name: String,
    /// Image reference as given to the runtime (`docker.io/library/nginx:1.27`).
    pub image: String,
    /// Image digest (`sha256:...`); empty when unknown.
    pub image_digest: String,
    /// Image id as the runtime keeps it (64 hex digits for podman); empty when the runtime
    /// keeps none or it is unknown (and then left out of the JSON).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    /// The runtime managing the container, named as Falco's `container.type` names it
    /// (`podman`, `docker`, `containerd`, `cri-o`); empty for a plain runc container (no
    /// engine Falco knows) or when unknown, and then left out of the JSON.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// Container labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// The container runs privileged.
    pub privileged: bool,
    /// Container start time, nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    /// Kubernetes identity, when the container belongs to a pod.
    pub k8s: Option<K8sPod>,
    /// The host namespaces the container shares, from its runtime's configuration; `None`
    /// when that configuration was not found (then no one can say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_namespaces: Option<HostNamespaces>,
    /// The mounts the container's engine lists for it (the volumes and binds asked for, as
    /// `podman inspect` shows them, not the runtime's own `/proc`, `/dev`, ...); `None` when
    /// the engine's list was not read (a runtime whose list the sensor does not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<ContainerMount>>,
    /// The health check and probes of the container's configuration; `None` when not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_probes: Option<Vec<HealthProbe>>,
    /// The container's runtime metadata (name, image, labels, Kubernetes identity) was not
    /// found when the event was attributed: the id comes from the cgroup's name, the rest is
    /// empty (the sensor looks again, and later events carry it). Left out of the JSON when
    /// false, so that an empty name or pod says whether it is unknown or missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata_missing: bool,
}

/// Which of the host's namespaces a container shares (Kubernetes' `hostPID`, `hostNetwork`,
/// `hostIPC`; podman's `--pid host` and the like).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostNamespaces {
    /// The container runs in the host's pid namespace.
    pub pid: bool,
    /// The container runs in the host's network namespace.
    pub network: bool,
    /// The container runs in the host's IPC namespace.
    pub ipc: bool,
}

/// One mount of a container, as its engine describes it (Docker's and podman's inspect
/// `Mounts`: `Source`, `Destination`, `Mode`, `RW`, `Propagation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerMount {
    /// Path on the host (a volume's mount point for a named volume).
    pub source: String,
    /// Path in the container.
    pub dest: String,
    /// The relabelling asked for (`z`, `Z`), empty when none.
    pub mode: String,
    /// Mounted read-write.
    pub rdwr: bool,
    /// Mount propagation (`rprivate`, `rslave`, ...), empty when not set.
    pub propagation: String,
}

/// What a container's health probe is for: Falco's three kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbeKind {
    /// The image's or engine's health check (Docker's and podman's `HEALTHCHECK`).
    #[default]
    Healthcheck,
    /// A Kubernetes container's `livenessProbe` with an `exec` command.
    LivenessProbe,
    /// A Kubernetes container's `readinessProbe` with an `exec` command.
    ReadinessProbe,
}

/// A command the container's runtime runs in it to probe its health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthProbe {
    /// Which probe.
    pub kind: ProbeKind,
    /// The program, as `argv[0]` of the process the runtime starts.
    pub exe: String,
    /// Its arguments after `argv[0]`.
    pub args: Vec<String>,
}

/// The Kubernetes pod a container belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct K8sPod {
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Container name inside the pod spec.
    pub container_name: String,
}

/// A pod as the Kubernetes API server describes it, with the objects around it: the
/// metadata of Falco's `k8s.*` fields that the container runtime does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct K8sMeta {
    /// The pod: name, UID and labels.
    pub pod: K8sObject,
    /// The pod's IP address (`status.podIP`); empty before one is assigned.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod_ip: String,
    /// The pod's namespace; `None` when the API server has not listed it (yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<K8sObject>,
    /// The replica set that owns the pod (its controller owner reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_set: Option<K8sObject>,
    /// The deployment that owns that replica set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<K8sObject>,
    /// The replication controller that owns the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_controller: Option<K8sObject>,
    /// The services of the pod's namespace whose selector matches its labels, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<K8sObject>,
    /// The `exec` liveness and readiness probes of the pod spec's containers, in the spec's
    /// order (the kubelet runs their commands in the container through the runtime).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<K8sProbe>,
}

/// One `exec` probe of a container of a pod spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct K8sProbe {
    /// The container's name in the pod spec ([`K8sPod::container_name`] of its events).
    pub container: String,
    /// The probe: its kind and command.
    pub probe: HealthProbe,
}

/// The identity of one Kubernetes object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct K8sObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.labels`, sorted by key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
}

impl K8sObject {
    /// The value of the label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(name, _)| name.as_str().cmp(key))
            .ok()
            .map(|index| self.labels[index].1.as_str())
    }
}

/// An open file descriptor the call used or created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fd {
    /// Descriptor number; -1 when the call failed to create one.
    pub num: i64,
    /// What the descriptor refers to.
    pub kind: FdKind,
    /// Absolute path for files, `local->remote` text for sockets, the name for memfds.
    #[serde(default)]
    pub name: String,
    /// Socket addresses, for socket descriptors.
    #[serde(default)]
    pub socket: Option<Socket>,
}

/// What a file descriptor refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    /// A regular file (or a file of unknown type).
    File,
    /// A directory.
    Directory,
    /// An IPv4 socket.
    Ipv4,
    /// An IPv6 socket.
    Ipv6,
    /// A Unix domain socket.
    Unix,
    /// A pipe or FIFO.
    Pipe,
    /// A netlink socket.
    Netlink,
    /// A `memfd_create` file.
    Memfd,
    /// Anything else (eventfd, signalfd, inotify, ...).
    Other,
}

/// Addresses of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Local address; `None` for Unix sockets or when unbound.
    #[serde(default)]
    pub local_addr: Option<IpAddr>,
    /// Local port.
    #[serde(default)]
    pub local_port: u16,
    /// Remote address; `None` when unconnected.
    #[serde(default)]
    pub remote_addr: Option<IpAddr>,
    /// Remote port.
    #[serde(default)]
    pub remote_port: u16,
    /// The socket is connected (has a remote peer).
    #[serde(default)]
    pub connected: bool,
    /// The filesystem path of a Unix socket; empty otherwise.
    #[serde(default)]
    pub unix_path: String,
}

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP.
    Icmp,
    /// Raw IP.
    Raw,
    /// Unknown or not applicable.
    Unknown,
}

/// Per-kind arguments of an event.
///
/// Which variant goes with which [`EventKind`] is documented on each variant; a consumer
/// treats a mismatch as absent arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// No arguments (`execve`, `execveat`, or unknown).
    #[default]
    None,
    /// `clone`, `clone3`, `fork`, `vfork`.
    Spawn {
        /// Pid of the new process or thread.
        child_pid: u32,
        /// `CLONE_*` flags.
        flags: u64,
    },
    /// `procexit`.
    Exit {
        /// Exit status.
        status: i32,
        /// Terminating signal, 0 when none.
        signal: i32,
    },
    /// `open`, `openat`, `openat2`, `creat`.
    Open {
        /// The new descriptor (`num` is -1 on failure).
        fd: Fd,
        /// `O_*` flags.
        flags: u32,
        /// Creation mode.
        mode: u32,
    },
    /// `unlink*`, `mkdir*`, `chmod`-family, `chroot`, `umount*`: one path.
    Path {
        /// The absolute path the call acted on.
        path: String,
        /// Mode, for `mkdir` and `chmod`.
        #[serde(default)]
        mode: u32,
        /// Call flags (`AT_*`, `MNT_*`).
        #[serde(default)]
        flags: u32,
    },
    /// `chown`-family.
    Chown {
        /// The absolute path the call acted on.
        path: String,
        /// New owner.
        uid: u32,
        /// New group.
        gid: u32,
    },
    /// `rename*`, `link*`, `symlink*`.
    Link {
        /// `oldpath` of rename/link; `target` of symlink.
        source: String,
        /// `newpath` of rename/link; `linkpath` of symlink.
        target: String,
    },
    /// `socket`.
    SocketCreate {
        /// Address family (`AF_*` number).
        domain: u32,
        /// Socket type (`SOCK_*` number).
        socket_type: u32,
        /// Protocol number.
        protocol: u32,
    },
    /// `connect`, `accept*`, `bind`, `listen`, `sendto`, `sendmsg`.
    Network {
        /// The socket descriptor, with its addresses.
        fd: Fd,
    },
    /// `dup`, `dup2`, `dup3`.
    Dup {
        /// The descriptor that was duplicated, with what it refers to.
        fd: Fd,
        /// The new descriptor number.
        new_fd: i64,
    },
    /// `ptrace`.
    Ptrace {
        /// `PTRACE_*` request number.
        request: u64,
        /// Target pid.
        target_pid: u32,
    },
    /// `init_module`, `finit_module`, `delete_module`.
    Module {
        /// Module name, or the module file path for `finit_module`.
        name: String,
    },
    /// `mount`.
    Mount {
        /// Mounted device or source.
        source: String,
        /// Mount point.
        target: String,
        /// File system type.
        fstype: String,
        /// `MS_*` flags.
        flags: u64,
    },
    /// `setns`, `unshare`.
    Namespace {
        /// The namespace file (`/proc/1/ns/mnt`) for `setns`; empty for `unshare`.
        path: String,
        /// `CLONE_NEW*` flags.
        flags: u64,
    },
    /// `setuid`, `setgid`, `setresuid`, `setresgid`.
    SetId {
        /// The new (effective) user or group id.
        id: u32,
        /// The name of `id` in the process's own root (`/etc/passwd` for the uid calls,
        /// `/etc/group` for the gid calls), as libsinsp resolves `evt.arg.uid`; empty when
        /// the id has no entry there.
        #[serde(default)]
        name: String,
    },
    /// `capset`: the thread's capability sets after the call, as Falco's driver reads them
    /// from the task (a failed call leaves them unchanged), bit N for capability N.
    Capset {
        /// Inheritable set (absent in recordings made before the sensor read it: 0).
        #[serde(default)]
        inheritable: u64,
        /// Permitted set.
        permitted: u64,
        /// Effective set.
        effective: u64,
    },
    /// `memfd_create`.
    Memfd {
        /// Name given to the memfd.
        name: String,
        /// `MFD_*` flags.
        flags: u32,
    },
    /// `bpf`.
    Bpf {
        /// `BPF_*` command number.
        cmd: i64,
    },
    /// `k8s_audit`: the audit event exactly as the API server sent it (an `audit.k8s.io/v1`
    /// `Event` object). It stays raw JSON because rules may address any part of the request
    /// and response objects, and a recording then replays what the API server said.
    K8sAudit {
        /// The `audit.k8s.io/v1` `Event` object.
        audit: serde_json::Value,
    },
}

#[cfg(test)]
mod tests {
    use crate::*;

    #[test]
    fn kind_names_round_trip() {
        for (index, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(EventKind::from_name(kind.as_str()), Some(*kind));
            assert_eq!(kind.index(), index);
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(EventKind::from_name("switch"), None);
    }

    #[test]
    fn wire_format_is_stable() {
        let mut event = Event::new(EventKind::Connect);
        event.payload = Payload::Network {
            fd: Fd {
                num: 3,
                kind: FdKind::Ipv4,
                name: String::new(),
                socket: Some(Socket {
                    protocol: Protocol::Tcp,
                    local_addr: Some("10.0.0.2".parse().unwrap()),
                    local_port: 40000,
                    remote_addr: Some("1.2.3.4".parse().unwrap()),
                    remote_port: 4444,
                    connected: true,
                    unix_path: String::new(),
                }),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "connect");
        assert_eq!(json["payload"]["type"], "network");
        assert_eq!(json["payload"]["fd"]["socket"]["remote_port"], 4444);
        assert!(
            json["process"].get("env").is_none() && json["process"].get("env_truncated").is_none(),
            "no environment captured: none in the JSON, so recordings stay as they were"
        );
        // Old recordings without optional fields still parse.
        let minimal: Event = serde_json::from_str(r#"{"kind":"execve"}"#).unwrap();
        assert_eq!(minimal, Event::new(EventKind::Execve));
    }

    #[test]
    fn kernel_state_round_trips_and_is_left_out_when_unknown() {
        let mut event = Event::new(EventKind::Openat);
        let json = serde_json::to_value(&event).unwrap();
        for key in ["cpu", "capture_start_ns", "opened_file", "k8s_meta"] {
            assert!(json.get(key).is_none(), "{key} in {json}");
        }
        for key in [
            "resources",
            "cgroups",
            "live_threads",
            "leader_exited",
            "open_fds",
            "fd_limit",
            "pidns_init_start_ns",
            "cap_inheritable",
            "std_fds",
        ] {
            assert!(json["process"].get(key).is_none(), "{key} in {json}");
        }
        event.cpu = Some(1);
        event.capture_start_ns = 5;
        event.opened_file = Some(OpenedFile {
            dev: 0x801,
            ino: 42,
            layer: OverlayLayer::Upper,
            created: Some(true),
        });
        event.process.resources = Some(TaskResources {
            vm_size_kb: 2048,
            vm_rss_kb: 512,
            vm_swap_kb: 0,
            major_faults: 1,
            minor_faults: 90,
            fd_limit: -1,
        });
        event.process.cgroups = vec!["memory=/a".to_owned()].into();
        event.process.open_fds = Some(12);
        event.process.fd_limit = Some(4096);
        event.k8s_meta = Some(Arc::new(K8sMeta {
            pod: K8sObject {
                name: "web-1".into(),
                uid: "u1".into(),
                labels: vec![
                    ("app".into(), "web".into()),
                    ("tier".into(), "front".into()),
                ],
            },
            services: vec![K8sObject::default()],
            ..K8sMeta::default()
        }));
        event.process.live_threads = 2;
        event.process.leader_exited = true;
        event.process.pidns_init_start_ns = 1_000;
        event.process.cap_inheritable = 1 << 13;
        event.process.std_fds = Some([Some(FdKind::Ipv4), None, Some(FdKind::Pipe)]);
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""layer":"upper""#), "{json}");
        assert!(json.contains(r#""created":true"#), "{json}");
        let meta = event.k8s_meta.as_deref().unwrap();
        assert_eq!(meta.pod.label("tier"), Some("front"));
        assert_eq!(meta.pod.label("tie"), None);
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }

    #[test]
    fn environments_round_trip_and_are_stripped_for_reports() {
        let mut event = Event::new(EventKind::Execve);
        event.process.env = vec!["TOKEN=secret".to_owned(), "HOME=/root".to_owned()].into();
        event.process.env_truncated = true;
        event.ancestors = vec![Ancestor {
            pid: 1,
            env: vec!["PARENT_TOKEN=secret".to_owned()].into(),
            ..Ancestor::default()
        }]
        .into();
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);

        let stripped = event.without_environment();
        let json = serde_json::to_string(&stripped).unwrap();
        assert!(!json.contains("secret") && !json.contains("env"), "{json}");
        assert_eq!(stripped.ancestors[0].pid, 1);
    }
}
