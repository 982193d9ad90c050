//! The runtime sensor: observes processes, files, network and privilege changes in the
//! kernel and turns them into [`palisade_event::Event`]s with container and ancestry.
//!
//! # Overview
//!
//! [`SensorConfig::build`] starts a [`Sensor`]; [`Sensor::poll`] hands events to any
//! [`palisade_event::EventSink`]. Underneath:
//!
//! - **eBPF probes** (`src/bpf/sensor.bpf.c`, CO-RE C compiled by clang in `build.rs`,
//!   loaded with libbpf-rs): `tp_btf/sched_process_{exec,fork,exit}` and a
//!   `tracepoint/syscalls/sys_{enter,exit}_*` pair per observed system call. The kernel side
//!   reads paths (rebuilt from dentries), argv, the working directory, socket addresses, the
//!   executable's inode and overlay layer, the task's cgroup path (once per cgroup), at exec
//!   and fork the task's memory, page faults, descriptor limit and per-controller cgroups
//!   (Falco's `proc.vmsize`, `thread.cgroups`, ...), with every event the process's live
//!   threads and the CPU, for a successful open the file's device, inode and overlay layer,
//!   and, only when [`SensorConfig::capture_environment`] asks, the environment at exec, and writes
//!   variable length records into one BPF ring buffer. Only the probes for the requested kinds are
//!   attached, the agent's own process is ignored in the kernel, and per-CPU counters count
//!   every record the ring buffer refused ([`SensorHealth`]).
//! - **Container attribution** ([`ContainerResolver`]): cgroup path → container id →
//!   runc, podman or containerd metadata, with Kubernetes identity from CRI labels, read by
//!   look-up workers into a cache the event path reads without file I/O
//!   ([`ContainerAttribution`]); a cgroup's events wait for its look-up, in order, within
//!   [`HoldLimits`] (50 ms and 4,096 events by default).
//! - **Process table** ([`ProcessTable`]): seeded from `/proc`, kept by fork/exec/exit,
//!   giving every event its ancestry even after ancestors exited, in bounded memory.
//! - **Fallback** without eBPF: the proc connector and fanotify, with a reduced field set
//!   reported in [`SensorStatus`].
//!
//! # Design decision: enrich in user space, at event time
//!
//! The kernel sends ids, comm, the cgroup path and the call's own strings; executable path,
//! arguments and ancestry come from the process table, which exec events keep exact. Doing
//! this in the kernel for every system call would copy argv and walk dentries on every
//! `openat`; doing it from `/proc` at read time would lose short-lived processes. The cgroup
//! path, by contrast, is read in the kernel because the directory is gone once a container
//! exits — but only in a cgroup's first records: user space keeps it by cgroup id.
//!
//! # Example
//!
//! Observing one's own child needs root and eBPF, so this only shows the shape:
//!
//! ```no_run
//! use std::time::Duration;
//! use palisade_event::{Event, EventKind};
//! use palisade_sensor::SensorConfig;
//!
//! let config = SensorConfig { kinds: Some([EventKind::Execve].into()), ..SensorConfig::default() };
//! let mut sensor = config.build()?;
//! println!("{:?}", sensor.status().backend);
//! let mut events: Vec<Event> = Vec::new();
//! std::process::Command::new("/bin/true").status()?;
//! sensor.poll(Duration::from_millis(200), &mut events)?;
//! assert!(events.iter().any(|event| event.process.exepath == "/usr/bin/true"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Container ids come from cgroup paths without any kernel access:
//!
//! ```
//! use palisade_sensor::{Runtime, container_id_from_cgroup};
//! let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
//! let path = format!("/libpod_parent/libpod-{id}");
//! assert_eq!(container_id_from_cgroup(&path, |_, _| None), Some((Runtime::Podman, id.to_owned())));
//! ```
#![deny(missing_docs)]

mod attribution;
mod bolt;
mod bpf;
mod cgroup_paths;
mod container;
mod decode;
mod engine_config;
mod error;
mod fallback;
mod held;
mod names;
mod pid_namespace;
mod process;
mod procfs;
mod reader_priority;
mod runtime;
mod sensor;

mod skel {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        unused_imports,
        unreachable_pub
    )]
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}

pub use attribution::{
    ContainerAttribution, EAGER_EXEC_LOOKUPS, LOOKUP_WORKERS, MAX_QUEUED_LOOKUPS, MAX_RETRY_DELAY,
    NAMES_REFRESH, NEGATIVE_CACHE, Resolution,
};
pub use cgroup_paths::{DEFAULT_CGROUP_CHECK_INTERVAL, open_cgroup};
pub use container::{ContainerResolver, MetadataRoots, Runtime, container_id_from_cgroup};
pub use error::Error;
pub use held::{HoldLimits, HoldLimitsError};
pub use process::{
    Capabilities, DEFAULT_MAX_PROCESSES, ExeFile, ForkedChild, ProcessInfo, ProcessTable,
    SessionIds, TableEvictions, UserNames,
};
pub use procfs::{controller_cgroups, process_start_time_ns};
pub use reader_priority::{DEFAULT_READER_NICE, READER_NICE_RANGE};
pub use sensor::{
    BackendChoice, CpuCounters, Sensor, SensorConfig, SensorHealth, SensorStatus,
    ring_buffer_bytes_for,
};
