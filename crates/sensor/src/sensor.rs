//! The sensor: configuration, the backend it runs on, and enrichment of raw observations
//! into events.

use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_event::{
    Ancestor, Container, Event, EventKind, EventSink, Payload, Process, SharedStr,
};
use serde::{Deserialize, Serialize};

use crate::attribution::ContainerAttribution;
use crate::bpf::{BpfProbes, ProbeSettings, syscall_probe};
use crate::cgroup_paths::{CgroupPaths, DEFAULT_CGROUP_CHECK_INTERVAL, FALLBACK_KEY_BIT};
use crate::container::MetadataRoots;
use crate::decode::RawEvent;
use crate::error::Error;
use crate::fallback::FallbackSource;
use crate::held::{HeldEvent, HeldEvents, HoldLimits};
use crate::names::RootNames;
use crate::pid_namespace::PidNamespaceInits;
use crate::process::{
    DEFAULT_MAX_PROCESSES, ExeFile, ForkedChild, ProcessInfo, ProcessTable, SessionIds,
};
use crate::procfs;
use crate::reader_priority::{DEFAULT_READER_NICE, READER_NICE_RANGE, RaisedPriority};
use crate::runtime::RuntimeBinaries;
use crate::skel::types::{probe_kind as Pk, string_slot as S};

/// Which event source the sensor uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// eBPF, or the fallback when the probes cannot be loaded.
    #[default]
    Auto,
    /// eBPF only; failing to load is an error.
    Ebpf,
    /// The proc connector and fanotify, without eBPF.
    Fallback,
}

/// How to build a [`Sensor`].
#[derive(Debug, Clone)]
pub struct SensorConfig {
    /// The event kinds to report; `None` reports every kind the backend observes. Only the
    /// probes these kinds need are attached (fork, exec and exit are always observed, for
    /// the process table, but reported only when asked for).
    pub kinds: Option<BTreeSet<EventKind>>,
    /// Which backend to use.
    pub backend: BackendChoice,
    /// Size of the eBPF ring buffer in bytes: a power of two and a multiple of the page size.
    /// By default it follows the machine's CPUs ([`ring_buffer_bytes_for`]).
    pub ring_buffer_bytes: u32,
    /// At most this many ancestors are attached to each event.
    pub ancestry_depth: usize,
    /// At most this many processes are kept for ancestry, live ones and their exited
    /// ancestors (32,768 by default, [`DEFAULT_MAX_PROCESSES`]; what the bound drops is
    /// counted in [`SensorHealth::process_ancestors_evicted`],
    /// [`SensorHealth::processes_untracked`] and
    /// [`SensorHealth::held_ancestors_unattributed`]).
    pub max_processes: usize,
    /// Where container runtimes keep their metadata.
    pub metadata: MetadataRoots,
    /// How long (50 ms by default) and how many events (4,096) wait for their container's
    /// metadata while its look-up is in flight (see [`SensorHealth::events_held`]).
    pub hold: HoldLimits,
    /// Read each process's cgroups for Falco's five controllers at exec and fork in the
    /// kernel ([`palisade_event::Process::cgroups`], `thread.cgroups`). Off by default: it
    /// walks five cgroup trees and copies their names on every exec and fork, so it is turned
    /// on only when a loaded rule reads `thread.cgroups` or `thread.cgroup.<controller>`.
    /// The processes read from `/proc` (those found at start, and the fallback's) carry them
    /// either way, since their `/proc/<pid>/cgroup` is read for their container.
    pub read_cgroups: bool,
    /// Capture each process's environment at exec ([`palisade_event::Process::env`], at most
    /// 4,095 bytes and 256 variables, truncation marked) and read it from `/proc` for the
    /// processes found at start. Off by default: it costs a copy of up to 4 KiB per exec
    /// and environments hold secrets, so it is turned on only when a loaded rule reads
    /// `proc.env` or `proc.aenv`.
    pub capture_environment: bool,
    /// Read each event's process's descriptor limit and count its open descriptors when the
    /// event happens ([`palisade_event::Process::fd_limit`], [`Process::open_fds`]): in the
    /// kernel with eBPF (tables of at most 16,384 descriptors are counted), from
    /// `/proc/<pid>/limits` and `/proc/<pid>/fd` with the fallback. Off by default: the count
    /// reads the descriptor table on every event, so it is turned on only when a loaded rule
    /// reads `proc.fdopencount`, `proc.fdlimit` or `proc.fdusage`.
    pub read_fd_state: bool,
    /// With [`SensorConfig::read_fd_state`], also count the open descriptors
    /// ([`palisade_event::Process::open_fds`]); without it only the limit is read (one load
    /// per event in the kernel, one small `/proc` file with the fallback) and the count stays
    /// absent. Off by default: the count walks the descriptor table's bitmap on every event,
    /// so it is turned on only when a loaded rule reads `proc.fdopencount` or `proc.fdusage`
    /// (`proc.fdlimit` alone needs the limit only).
    pub count_open_fds: bool,
    /// Read what each event's thread has on descriptors 0, 1 and 2 when the event happens
    /// ([`palisade_event::Process::std_fds`]: file type, socket family), in the kernel with
    /// eBPF, from `/proc/<pid>/fd` when the fallback handles the event (a process that exited
    /// by then has none). Off by default: it reads three descriptors on every event, so it
    /// is turned on only when a loaded rule reads `proc.stdin.type`, `proc.stdout.type`,
    /// `proc.stderr.type` or `fd.types`.
    pub read_std_fds: bool,
    /// The nice value (−20 to 19) of the thread that builds the sensor while it holds it:
    /// that thread polls it ([`Sensor`] is not `Send`), and is the ring buffer's only reader.
    /// −10 by default ([`DEFAULT_READER_NICE`]), so that a reader competing with busy
    /// workloads for the CPUs keeps up with an event storm instead of letting the kernel
    /// drop events; `None` leaves the thread's priority alone. The sensor's container look-up
    /// workers run at it too (held events wait for them); threads and processes the thread
    /// creates later start at nice 0 (reset-on-fork), and the thread gets its priority back
    /// when the sensor is dropped. A thread already at a lower value keeps it. Without
    /// `CAP_SYS_NICE` the sensor runs at the priority it has (a warning says so).
    pub reader_nice: Option<i32>,
    /// How often the sensor checks which of the cgroups whose paths it keeps are gone, to
    /// forget them (60 s by default, [`DEFAULT_CGROUP_CHECK_INTERVAL`]; zero: at every
    /// poll). Each check asks the kernel once per kept cgroup.
    pub cgroup_check_interval: Duration,
}

impl Default for SensorConfig {
    fn default() -> SensorConfig {
        SensorConfig {
            kinds: None,
            backend: BackendChoice::Auto,
            ring_buffer_bytes: ring_buffer_bytes_for(online_cpus()),
            ancestry_depth: 8,
            max_processes: DEFAULT_MAX_PROCESSES,
            metadata: MetadataRoots::default(),
            hold: HoldLimits::default(),
            read_cgroups: false,
            capture_environment: false,
            read_fd_state: false,
            count_open_fds: false,
            read_std_fds: false,
            reader_nice: Some(DEFAULT_READER_NICE),
            cgroup_check_interval: DEFAULT_CGROUP_CHECK_INTERVAL,
        }
    }
}

/// The default ring buffer size for a machine with `cpus` CPUs: 2 MiB for each (rounded up to
/// a power of two), at least 4 MiB and at most 64 MiB.
///
/// Every CPU produces events into the one ring, so a burst fills it as many times faster as
/// there are CPUs, while the ring has to cover the same stall of its one reader. And the
/// kernel maps the ring's data area twice into the reader's memory, populated at once: an
/// 8 MiB ring is 16 MiB of resident memory. On this project's 2-CPU machine, 4 MiB kept
/// 350–690 k events/s without a loss, with two busy loops competing for the CPUs too
/// (docs/benchmarks.md, idle memory).
pub fn ring_buffer_bytes_for(cpus: usize) -> u32 {
    const MIB: usize = 1 << 20;
    let wanted = cpus.saturating_mul(2 * MIB).next_power_of_two();
    u32::try_from(wanted.clamp(4 * MIB, 64 * MIB)).unwrap_or(u32::MAX)
}

/// CPUs online now (at least 1).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

impl SensorConfig {
    /// Validates the configuration and starts the sensor.
    pub fn build(&self) -> Result<Sensor, Error> {
        let page = 4096;
        if !self.ring_buffer_bytes.is_power_of_two() || self.ring_buffer_bytes < page {
            return Err(Error::Config(format!(
                "ring_buffer_bytes = {} must be a power of two of at least {page}",
                self.ring_buffer_bytes
            )));
        }
        if let Some(nice) = self.reader_nice
            && !READER_NICE_RANGE.contains(&nice)
        {
            return Err(Error::Config(format!(
                "reader_nice = {nice} must be a nice value from -20 to 19"
            )));
        }
        let priority = self.reader_nice.and_then(|nice| {
            RaisedPriority::raise(nice)
                .inspect_err(|error| {
                    tracing::warn!(%error, nice, "Cannot raise the sensor reader's priority; under load it may lose events.");
                })
                .ok()
        });
        // The look-up workers the start spawns run at the reader's priority, whose held
        // events wait for them; what the thread starts later does not.
        let mut sensor = Sensor::start(self)?;
        if let Some(priority) = &priority
            && let Err(error) = priority.start_children_at_default()
        {
            tracing::warn!(%error, "What the sensor reader's thread starts runs at its raised priority.");
        }
        sensor._reader_priority = priority;
        Ok(sensor)
    }
}

/// The backend actually running, and what it can observe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SensorStatus {
    /// `"ebpf"` or `"fallback"`.
    pub backend: &'static str,
    /// Why the fallback runs, when it does.
    pub fallback_reason: Option<String>,
    /// Attached eBPF programs, or the kernel interfaces the fallback uses.
    pub sources: Vec<String>,
    /// Event kinds this backend reports.
    pub kinds: Vec<EventKind>,
    /// Event fields this backend cannot fill (always empty or zero).
    pub missing_fields: Vec<&'static str>,
}

/// Event counts and loss, for metrics, for `palisade agent --status` and for an alert when
/// events are lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SensorHealth {
    /// Events the kernel side produced (eBPF: summed per-CPU counters; fallback: events
    /// delivered).
    pub events_sent: u64,
    /// Events lost because the ring buffer was full (summed per-CPU counters).
    pub events_lost: u64,
    /// Events lost since the previous [`Sensor::poll`].
    pub newly_lost: u64,
    /// Events handed to the sink.
    pub events_delivered: u64,
    /// Events read from the kernel but not handed to the sink: fork, exec and exit kept
    /// only for the process table when those kinds were not requested, and the agent's own.
    pub events_filtered: u64,
    /// Events that waited for their container's metadata (a new cgroup's first events, an
    /// exec while its container's metadata is looked up again), each at most
    /// [`SensorConfig::hold`]'s wait (50 ms by default).
    pub events_held: u64,
    /// Held events that went out before their container's look-up answered (the wait's
    /// time limit or the bound of held events, 4,096 by default): they carry only the
    /// container's id from its cgroup's name (`metadata_missing`), or no container.
    pub events_released_unresolved: u64,
    /// Container metadata look-ups not queued because 1,024 were waiting for the workers
    /// (asked for again by a later event of the cgroup).
    pub container_lookups_dropped: u64,
    /// Exited processes dropped from the process table to make room for new ones (more
    /// processes than [`SensorConfig::max_processes`]): the ancestries of their live
    /// descendants end below them.
    pub process_ancestors_evicted: u64,
    /// Processes the process table refused to record because it was full of live ones,
    /// counted at each refusal (a process is counted again at each of its execs while
    /// unrecorded): their events carry only what the event itself says, without ancestry.
    pub processes_untracked: u64,
    /// Processes of a cgroup whose events were held for its container that left the
    /// process table meanwhile, beyond the bound of those the table notes for the answer
    /// ([`SensorConfig::max_processes`] over all held cgroups): a held event's ancestry
    /// names such an ancestor without its container.
    pub held_ancestors_unattributed: u64,
    /// User or group files (`/etc/passwd`, `/etc/group` of the host or of a container) read
    /// only up to their size limit, 1 MiB, counted at each read (a file unchanged since its
    /// last read is not read again): the users and groups listed past the limit have no
    /// names in events (`user.name` and the like absent).
    pub names_files_cut: u64,
    /// Cgroup paths kept: about one per live cgroup that had an event (those of removed
    /// cgroups are forgotten at [`SensorConfig::cgroup_check_interval`]).
    pub cgroups_known: usize,
    /// The eBPF counters by CPU (empty for the fallback).
    pub per_cpu: Vec<CpuCounters>,
}

/// One CPU's eBPF event counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuCounters {
    /// CPU number.
    pub cpu: u32,
    /// Events written into the ring buffer on this CPU.
    pub sent: u64,
    /// Events the ring buffer refused on this CPU (full).
    pub lost: u64,
}

enum Backend {
    /// Boxed: the probes hold the ring's mappings and map descriptors, the fallback little.
    Ebpf(Box<BpfProbes>),
    Fallback(FallbackSource),
}

/// A running sensor. Call [`Sensor::poll`] in a loop.
pub struct Sensor {
    backend: Backend,
    enricher: Enricher,
    status: SensorStatus,
    health: SensorHealth,
    /// The building thread's raised priority ([`SensorConfig::reader_nice`]), given back
    /// at the drop.
    _reader_priority: Option<RaisedPriority>,
}

impl Sensor {
    fn start(config: &SensorConfig) -> Result<Sensor, Error> {
        let requested: BTreeSet<EventKind> = config
            .kinds
            .clone()
            .unwrap_or_else(|| EventKind::ALL.iter().copied().collect());
        let mut enricher = Enricher::new(config, requested.clone());
        enricher.seed_from_proc();
        let self_tgid = std::process::id();
        let settings = ProbeSettings {
            ring_buffer_bytes: config.ring_buffer_bytes,
            self_tgid,
            read_cgroups: config.read_cgroups,
            capture_env: config.capture_environment,
            read_fd_state: config.read_fd_state,
            count_open_fds: config.count_open_fds,
            read_std_fds: config.read_std_fds,
        };
        let ebpf = match config.backend {
            BackendChoice::Fallback => Err("forced by configuration".to_owned()),
            BackendChoice::Ebpf => Ok(BpfProbes::load(&requested, &settings)?),
            BackendChoice::Auto => BpfProbes::load(&requested, &settings).map_err(|error| {
                let reason = error_chain(&error);
                tracing::warn!(%reason, "eBPF probes unavailable; using the fallback.");
                reason
            }),
        };
        let (backend, status) = match ebpf {
            Ok(probes) => {
                let kinds = requested
                    .iter()
                    .copied()
                    .filter(|kind| {
                        is_sched_kind(*kind)
                            || syscall_probe(*kind)
                                .is_some_and(|probe| !probe_is_unavailable(&probes, probe))
                    })
                    .collect();
                let status = SensorStatus {
                    backend: "ebpf",
                    fallback_reason: None,
                    sources: probes.attached.clone(),
                    kinds,
                    missing_fields: Vec::new(),
                };
                (Backend::Ebpf(Box::new(probes)), status)
            }
            Err(reason) => {
                let source = FallbackSource::start(&requested, self_tgid)?;
                let status = SensorStatus {
                    backend: "fallback",
                    fallback_reason: Some(reason),
                    sources: source.sources(),
                    kinds: source.kinds(),
                    missing_fields: FallbackSource::MISSING_FIELDS.to_vec(),
                };
                (Backend::Fallback(source), status)
            }
        };
        Ok(Sensor {
            backend,
            enricher,
            status,
            health: SensorHealth::default(),
            _reader_priority: None,
        })
    }

    /// The backend and what it observes.
    pub fn status(&self) -> &SensorStatus {
        &self.status
    }

    /// Event counts and losses so far.
    pub fn health(&self) -> &SensorHealth {
        &self.health
    }

    /// The cgroup2 path of cgroup `cgroup_id` (an event's [`Event::cgroup_id`]) as the kernel
    /// reported it, while the sensor keeps it: from the cgroup's first event until a check
    /// finds it removed.
    pub fn cgroup_path(&self, cgroup_id: u64) -> Option<&str> {
        self.enricher.cgroup_paths.get(cgroup_id)
    }

    /// Waits up to `timeout` for kernel events, sends the enriched events to `sink` and
    /// returns how many were sent. When the kernel lost events since the last call,
    /// `health().newly_lost` says how many, and the process table is re-read from `/proc`.
    /// Events held for their container's metadata go out when it arrives or their short wait
    /// ends; while some wait, the call returns within a millisecond.
    pub fn poll(&mut self, timeout: Duration, sink: &mut dyn EventSink) -> Result<usize, Error> {
        let enricher = &mut self.enricher;
        let delivered_before = enricher.delivered;
        let mut n_kept = 0;
        let mut n_read = 0;
        let timeout = enricher.wait_limit(timeout);
        match &mut self.backend {
            Backend::Ebpf(probes) => {
                probes.poll(timeout, |record| {
                    if let Some(raw) = RawEvent::parse(record) {
                        n_read += 1;
                        n_kept += enricher.handle_raw(&raw, sink);
                    }
                })?;
                let per_cpu = probes.counters();
                let lost: u64 = per_cpu.iter().map(|cpu| cpu.lost).sum();
                self.health.newly_lost = lost.saturating_sub(self.health.events_lost);
                self.health.events_sent = per_cpu.iter().map(|cpu| cpu.sent).sum();
                self.health.events_lost = lost;
                self.health.per_cpu = per_cpu;
            }
            Backend::Fallback(source) => {
                for event in source.poll(timeout)? {
                    n_read += 1;
                    n_kept += enricher.handle_fallback(event, sink);
                }
                self.health.events_sent += n_kept as u64;
            }
        }
        let now = Instant::now();
        // Once per poll, with the real time: not per held event, nor at a flush's end of
        // every wait (a later instant).
        enricher.containers.forget_unused(now);
        let gone_cgroups = enricher.cgroup_paths.forget_gone(now);
        if let Backend::Ebpf(probes) = &self.backend {
            // A record of a gone cgroup still in the ring without its path has none now;
            // no live cgroup's id is deleted, and a deleted one has its path sent again.
            probes.forget_reported_cgroups(&gone_cgroups);
        }
        enricher.release_due(now, sink);
        let n_sent = (enricher.delivered - delivered_before) as usize;
        self.health.events_filtered += (n_read - n_kept) as u64;
        self.update_delivery_health();
        if self.health.newly_lost > 0 {
            tracing::warn!(
                lost = self.health.newly_lost,
                "Ring buffer full: events lost; re-reading /proc."
            );
            self.enricher.seed_from_proc();
        }
        Ok(n_sent)
    }

    /// Sends every event still held for its container's metadata, without waiting: with the
    /// container when its look-up has answered, else with the id its cgroup's name gives
    /// (counted in `events_released_unresolved`). Call it before stopping, so that the
    /// events of a container seen in the last moments are not lost; returns how many were
    /// sent.
    pub fn flush(&mut self, sink: &mut dyn EventSink) -> usize {
        let delivered_before = self.enricher.delivered;
        // Every hold is over at this instant.
        let every_hold_over = Instant::now() + self.enricher.held.max_wait();
        self.enricher.release_due(every_hold_over, sink);
        self.update_delivery_health();
        (self.enricher.delivered - delivered_before) as usize
    }

    fn update_delivery_health(&mut self) {
        let enricher = &self.enricher;
        self.health.events_delivered = enricher.delivered;
        self.health.events_held = enricher.events_held;
        self.health.events_released_unresolved = enricher.events_released_unresolved;
        self.health.container_lookups_dropped = enricher.containers.lookups_dropped();
        self.health.names_files_cut = enricher.containers.names_files_cut();
        let evictions = enricher.processes.evictions();
        self.health.process_ancestors_evicted = evictions.ancestors;
        self.health.processes_untracked = evictions.processes;
        self.health.held_ancestors_unattributed = evictions.held_ancestors_unattributed;
        self.health.cgroups_known = enricher.cgroup_paths.len();
    }
}

fn probe_is_unavailable(probes: &BpfProbes, probe: &str) -> bool {
    probes.unavailable.iter().any(|name| name == probe)
}

fn is_sched_kind(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Execve | EventKind::Clone | EventKind::Procexit
    )
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One observation from the fallback backend.
#[derive(Debug)]
pub(crate) enum FallbackObservation {
    /// A process forked.
    Fork {
        parent_pid: u32,
        child_pid: u32,
        timestamp_ns: u64,
    },
    /// A process executed a new image; its details come from `/proc`.
    Exec { pid: u32, timestamp_ns: u64 },
    /// A process exited.
    Exit {
        pid: u32,
        exit_code: u32,
        timestamp_ns: u64,
    },
    /// A file was opened (fanotify).
    Open {
        pid: u32,
        path: String,
        timestamp_ns: u64,
    },
}

/// Turns observations into events: process table, containers, user names, ancestry.
struct Enricher {
    requested: BTreeSet<EventKind>,
    processes: ProcessTable,
    containers: ContainerAttribution,
    /// Events waiting for their container's metadata.
    held: HeldEvents,
    /// Scratch list of the cgroups whose look-ups answered.
    answered: Vec<u64>,
    /// Events handed to the sink.
    delivered: u64,
    /// See [`SensorHealth::events_held`].
    events_held: u64,
    /// See [`SensorHealth::events_released_unresolved`].
    events_released_unresolved: u64,
    boot_offset_ns: u64,
    hostname: SharedStr,
    ancestry_depth: usize,
    runtime_binaries: RuntimeBinaries,
    /// The agent's own process id, compared with every event's: read once, since
    /// `getpid` is a system call (and a traced one).
    own_pid: u32,
    /// Cgroup paths by cgroup id: the kernel sends a cgroup's path only in its first
    /// records (see `cgroup_reported` in sensor.bpf.c). One entry per live cgroup seen: those
    /// of cgroups that are gone are forgotten at [`SensorConfig::cgroup_check_interval`], and
    /// their ids deleted from the kernel's `cgroup_reported` with them.
    cgroup_paths: CgroupPaths,
    /// Whether environments are captured ([`SensorConfig::capture_environment`]).
    capture_environment: bool,
    /// Whether the fallback reads descriptor state at each event
    /// ([`SensorConfig::read_fd_state`]; the probes read it in the kernel).
    read_fd_state: bool,
    /// Whether that read counts the open descriptors too ([`SensorConfig::count_open_fds`]).
    count_open_fds: bool,
    /// Whether the fallback reads descriptors 0 to 2 at each event
    /// ([`SensorConfig::read_std_fds`]; the probes read them in the kernel).
    read_std_fds: bool,
    /// The inits of the pid namespaces of the processes read from `/proc`.
    pid_namespaces: PidNamespaceInits,
    /// The page size in kB, to turn the kernel's page counts into Falco's kB.
    page_kb: u64,
    /// The time of the first event read: the start of the capture, from which Falco's
    /// `evt.reltime` counts.
    capture_start_ns: u64,
}

impl Enricher {
    fn new(config: &SensorConfig, requested: BTreeSet<EventKind>) -> Enricher {
        Enricher {
            requested,
            processes: ProcessTable::with_max_entries(config.max_processes),
            containers: ContainerAttribution::new(config.metadata.clone()),
            held: HeldEvents::new(config.hold),
            answered: Vec::new(),
            delivered: 0,
            events_held: 0,
            events_released_unresolved: 0,
            boot_offset_ns: procfs::boot_to_epoch_offset_ns(),
            hostname: hostname(),
            ancestry_depth: config.ancestry_depth,
            runtime_binaries: RuntimeBinaries::resolve(),
            own_pid: std::process::id(),
            cgroup_paths: CgroupPaths::new(config.cgroup_check_interval),
            capture_environment: config.capture_environment,
            read_fd_state: config.read_fd_state,
            count_open_fds: config.count_open_fds,
            read_std_fds: config.read_std_fds,
            pid_namespaces: PidNamespaceInits::default(),
            // SAFETY: sysconf has no preconditions.
            page_kb: (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1024) as u64) / 1024,
            capture_start_ns: 0,
        }
    }

    /// (Re)reads every process from `/proc`; entries the table already has keep their
    /// ancestry.
    fn seed_from_proc(&mut self) {
        let processes = procfs::scan(self.boot_offset_ns);
        self.pid_namespaces.learn_inits(&processes);
        // Some of the events the kernel lost were exits: a process the table holds as live
        // that `/proc` no longer lists is retired now. The table kept each such process (and
        // its ancestors) until its pid was reused, so a node whose ring overflowed now and
        // then grew its table with every overflow.
        if !processes.is_empty() {
            self.processes
                .retire_gone(processes.iter().map(|process| process.info.pid));
        }
        for process in processes {
            if self.processes.get(process.info.pid).is_some_and(|known| {
                known.start_time_ns.abs_diff(process.info.start_time_ns) < 20_000_000
            }) {
                continue;
            }
            let info = self.enrich_proc(process);
            self.processes.insert(info);
        }
    }

    /// A process read from `/proc`, with its container, whether it runs a runtime binary and
    /// the start of its pid namespace.
    fn enrich_proc(&mut self, process: procfs::ProcProcess) -> ProcessInfo {
        let mut info = process.info;
        info.session.pidns_init_start_ns = self
            .pid_namespaces
            .init_start_ns(process.pid_namespace, self.boot_offset_ns);
        if self.capture_environment {
            let environment = procfs::read_environment(info.pid);
            info.env = environment.entries.into();
            info.env_truncated = environment.truncated;
        }
        info.container_id = self.container_of_path(&process.cgroup_path);
        if !process.cgroup_path.is_empty() {
            // Later events of the process resolve its container by this key, without
            // reading `/proc` again (the fallback's; the probes send the kernel's ids).
            info.cgroup_id = fallback_cgroup_key(&process.cgroup_path);
            self.cgroup_paths
                .insert_if_absent(info.cgroup_id, || process.cgroup_path);
        }
        info.exe_file.container_runtime =
            self.runtime_binaries
                .is_runtime(&info.exepath, info.exe_file.dev, info.exe_file.ino);
        info
    }

    fn container_of_path(&mut self, cgroup_path: &str) -> SharedStr {
        self.containers
            .container_id(cgroup_path)
            .map(SharedStr::from)
            .unwrap_or_default()
    }

    fn handle_raw(&mut self, raw: &RawEvent<'_>, sink: &mut dyn EventSink) -> usize {
        let cgroup_path = raw.bytes(S::SLOT_CGROUP);
        if !cgroup_path.is_empty() {
            self.cgroup_paths
                .insert_if_absent(raw.cgroup_id, || raw.string(S::SLOT_CGROUP));
        }
        let Some(kind) = raw.event_kind() else {
            return 0;
        };
        if !self.held.is_empty() {
            self.release_due(Instant::now(), sink);
        }
        let cgroup_paths = &self.cgroup_paths;
        let resolution = self.containers.resolve(
            raw.cgroup_id,
            raw.pid,
            || cgroup_paths.path_or_empty(raw.cgroup_id),
            raw.kind == Pk::PK_EXEC,
        );
        let container = resolution.container;
        let start_time_ns = raw.start_boot_ns + self.boot_offset_ns;
        if raw.kind != Pk::PK_EXEC {
            // Which cgroup a process is in is what its own events say: a child created into
            // another cgroup than its parent's (clone3 with CLONE_INTO_CGROUP), recorded at
            // its fork in the parent's, takes its own at its first event, before any fork of
            // its own copies the entry. An exec records the cgroup with the new image.
            let container_id = container.as_ref().map_or("", |known| known.id.as_str());
            self.processes
                .observed_in_cgroup(raw.pid, raw.cgroup_id, container_id);
        }
        match raw.kind {
            Pk::PK_EXEC => {
                let exepath = raw.string(S::SLOT_EXE);
                let (from_memfd, deleted) = raw.exe_memfd_and_deleted(&exepath);
                // runc re-executes a copy of itself, a bind mount (same inode) or, where it
                // cannot mount, a memfd: a memfd is the runtime's only when the runtime
                // executed it.
                let container_runtime = if from_memfd {
                    self.processes
                        .get(raw.pid)
                        .is_some_and(|before| before.exe_file.container_runtime)
                } else {
                    self.runtime_binaries
                        .is_runtime(&exepath, raw.exe_dev, raw.exe_ino)
                };
                let (mut argv, args_truncated) = raw.argv();
                let exe = if argv.is_empty() {
                    exepath.clone()
                } else {
                    argv.remove(0)
                };
                let environment = raw.environment();
                self.processes.exec(ProcessInfo {
                    pid: raw.pid,
                    ppid: raw.ppid,
                    name: String::from_utf8_lossy(raw.comm).into(),
                    exe: exe.into(),
                    exepath: exepath.into(),
                    args: argv.into(),
                    args_truncated,
                    cwd: raw.string(S::SLOT_CWD).into(),
                    env: environment.entries.into(),
                    env_truncated: environment.truncated,
                    uid: raw.uid,
                    gid: raw.gid,
                    start_time_ns,
                    container_id: container
                        .as_ref()
                        .map(|container| SharedStr::from(&container.id))
                        .unwrap_or_default(),
                    cgroup_id: raw.cgroup_id,
                    exe_file: ExeFile {
                        dev: raw.exe_dev,
                        ino: raw.exe_ino,
                        ctime_ns: raw.exe_ctime_ns,
                        mtime_ns: raw.exe_mtime_ns,
                        upper_layer: raw.exe_upper_layer,
                        from_memfd,
                        deleted,
                        container_runtime,
                    },
                    session: raw.session(self.boot_offset_ns),
                    resources: raw.resources(self.page_kb),
                    cgroups: raw.cgroups().into(),
                    capabilities: raw.capabilities,
                });
            }
            Pk::PK_FORK if !raw.is_new_thread() => {
                self.processes.fork(
                    raw.pid,
                    ForkedChild {
                        pid: raw.args[0] as u32,
                        start_time_ns: raw.args[1] + self.boot_offset_ns,
                        session: raw.session(self.boot_offset_ns),
                        resources: raw.resources(self.page_kb),
                        cgroups: raw.cgroups().into(),
                        cgroup_id: raw.cgroup_id,
                    },
                );
            }
            _ => {}
        }
        let mut n_kept = 0;
        // The kernel reports the agent's own forks only to keep the process table whole
        // (its children are not the agent); they never reach the sink.
        let from_self = raw.pid == self.own_pid;
        if self.requested.contains(&kind) && !from_self {
            let mut event = Event::new(kind);
            event.timestamp_ns = raw.timestamp_boot_ns + self.boot_offset_ns;
            event.capture_start_ns = self.capture_start(event.timestamp_ns);
            event.cpu = Some(raw.cpu as u16);
            event.opened_file = raw.opened_file();
            event.hostname = self.hostname.clone();
            event.cgroup_id = raw.cgroup_id;
            event.ret = raw.ret;
            event.payload = raw.payload();
            event.process = self.process(raw.pid);
            event.process.tid = raw.tid;
            event.process.ppid = raw.ppid;
            event.process.uid = raw.uid;
            event.process.gid = raw.gid;
            // The table's name is the comm of the last exec: the same text (and so no
            // allocation) unless the thread renamed itself.
            if event.process.name.as_bytes() != raw.comm {
                event.process.name = String::from_utf8_lossy(raw.comm).into();
            }
            event.process.start_time_ns = start_time_ns;
            event.process.live_threads = raw.live_threads;
            event.process.leader_exited = raw.leader_exited;
            if let Some(fd_state) = raw.fd_state {
                event.process.fd_limit = Some(fd_state.limit);
                event.process.open_fds = fd_state.open;
            }
            event.process.loginuid = (raw.loginuid != u32::MAX).then_some(raw.loginuid);
            event.process.cap_inheritable = raw.capabilities.inheritable;
            event.process.cap_permitted = raw.capabilities.permitted;
            event.process.cap_effective = raw.capabilities.effective;
            event.process.std_fds = raw.std_fds;
            self.fill_names(&mut event, resolution.names.as_deref(), Some(raw.cgroup_id));
            event.ancestors =
                self.processes
                    .ancestors(raw.pid, self.ancestry_depth, &self.containers);
            self.emit(raw.cgroup_id, event, container, resolution.pending, sink);
            n_kept = 1;
        }
        if raw.kind == Pk::PK_EXIT {
            self.processes.exit(raw.pid);
        }
        n_kept
    }

    /// The names of the event's user and group, login user and (set*id) target id, from the
    /// names of the process's own root (the container's `/etc/passwd` and `/etc/group` for a
    /// container's process) as the look-up workers read them: no file is read here. An id
    /// they do not name is left without a name, and has them read again, through the
    /// process's cgroup `cgroup_id` (`None`: a host process without one), when they are old
    /// enough ([`crate::attribution::NAMES_REFRESH`]).
    fn fill_names(&mut self, event: &mut Event, names: Option<&RootNames>, cgroup_id: Option<u64>) {
        let mut missed = false;
        let mut user = |uid: u32| {
            let entry = names.and_then(|names| names.user(uid));
            missed |= entry.is_none();
            entry.cloned().unwrap_or_default()
        };
        let process = &mut event.process;
        let entry = user(process.uid);
        (process.user, process.user_homedir, process.user_shell) =
            (entry.name, entry.homedir, entry.shell);
        if let Some(loginuid) = process.loginuid {
            process.loginname = user(loginuid).name;
        }
        let set_user = match &event.payload {
            Payload::SetId { id, .. }
                if !matches!(event.kind, EventKind::Setgid | EventKind::Setresgid) =>
            {
                Some(user(*id).name)
            }
            _ => None,
        };
        let mut group = |gid: u32| {
            let name = names.and_then(|names| names.group(gid));
            missed |= name.is_none();
            name.cloned().unwrap_or_default()
        };
        event.process.group = group(event.process.gid);
        if let Payload::SetId { id, name } = &mut event.payload {
            *name = set_user.unwrap_or_else(|| group(*id)).to_string();
        }
        if missed {
            let cgroup_paths = &self.cgroup_paths;
            self.containers
                .names_missed(cgroup_id, event.process.pid, || {
                    cgroup_id.map_or_else(String::new, |id| cgroup_paths.path_or_empty(id))
                });
        }
    }

    /// Sends an enriched event, or holds it while its cgroup's (`cgroup_id`, the container
    /// cache's key) container look-up is in
    /// flight (`pending`) or earlier events of its cgroup wait (their order is kept).
    /// `container` is the best answer now, which the event was enriched with.
    fn emit(
        &mut self,
        cgroup_id: u64,
        mut event: Event,
        container: Option<Arc<Container>>,
        pending: bool,
        sink: &mut dyn EventSink,
    ) {
        if !(self.held.holds(cgroup_id) || pending && !self.held.gave_up_on(cgroup_id)) {
            event.container = container;
            self.deliver(event, sink);
            return;
        }
        self.events_held += 1;
        let held = HeldEvent { event };
        if let Some((evicted, events)) = self.held.hold(cgroup_id, held, Instant::now()) {
            self.release(evicted, events, false, &[], sink);
        }
        // The event's ancestry may name processes of the cgroup that leave the table before
        // the answer.
        self.processes.await_container(cgroup_id);
    }

    fn deliver(&mut self, event: Event, sink: &mut dyn EventSink) {
        self.delivered += 1;
        sink.send(event);
    }

    /// How long [`Sensor::poll`] may wait for kernel events: while events are held, only
    /// briefly, so that they leave soon after their look-up answers.
    fn wait_limit(&self, timeout: Duration) -> Duration {
        const ANSWER_POLL_INTERVAL: Duration = Duration::from_millis(1);
        if self.held.is_empty() {
            timeout
        } else {
            timeout.min(ANSWER_POLL_INTERVAL)
        }
    }

    /// Gives the processes of each cgroup whose look-up answered their container, then
    /// sends the held events whose look-up answered, then those whose wait is over.
    fn release_due(&mut self, now: Instant, sink: &mut dyn EventSink) {
        let mut answered = std::mem::take(&mut self.answered);
        self.containers.take_answers(&mut answered);
        for cgroup_id in answered.drain(..) {
            // What was executed or forked in the cgroup before its look-up answered (a
            // runtime's freely named cgroup) carries the container in later ancestries.
            let attributed = match self.containers.container(cgroup_id) {
                Some(container) => self
                    .processes
                    .attribute_cgroup(cgroup_id, &SharedStr::from(container.id.as_str())),
                None => {
                    self.processes.stop_awaiting_container(cgroup_id);
                    Vec::new()
                }
            };
            self.held.answered(cgroup_id);
            if let Some(events) = self.held.release(cgroup_id) {
                self.release(cgroup_id, events, true, &attributed, sink);
            }
        }
        self.answered = answered;
        if self.held.is_empty() {
            return;
        }
        for cgroup_id in self.held.expired(now) {
            if let Some(events) = self.held.release(cgroup_id) {
                self.release(cgroup_id, events, false, &[], sink);
            }
        }
    }

    /// Sends a cgroup's held events with the container and the names known now; `answered`
    /// says its look-up answered (otherwise they are counted as released unresolved, and its
    /// later events no longer wait for this look-up). `attributed` are the processes (pid,
    /// start time) the answer gave the container to, whom the events' ancestries built
    /// before name without it.
    fn release(
        &mut self,
        cgroup_id: u64,
        events: Vec<HeldEvent>,
        answered: bool,
        attributed: &[(u32, u64)],
        sink: &mut dyn EventSink,
    ) {
        if !answered {
            self.events_released_unresolved += events.len() as u64;
            self.held.give_up_on(cgroup_id);
            self.processes.stop_awaiting_container(cgroup_id);
        }
        // Looked up for every ancestor of every held event: up to the table's bound of
        // processes, so a set, not a scan of the list.
        let attributed: HashSet<(u32, u64)> = attributed.iter().copied().collect();
        let container = self.containers.container(cgroup_id);
        let names = self.containers.names_of(cgroup_id);
        let host_names = self.containers.host_names();
        let id: SharedStr = container
            .as_ref()
            .map(|known| SharedStr::from(known.id.as_str()))
            .unwrap_or_default();
        for held in events {
            let mut event = held.event;
            // The names were those known when the event came: the host's or none while the
            // look-up of a cgroup whose name does not say its container (runc's cgroupsPath,
            // ctr's /<namespace>/<id>) was in flight, or none before the container's root was
            // read.
            self.fill_names(&mut event, names.as_deref(), Some(cgroup_id));
            // The ancestry too was built when the event came: an ancestor the answer gave
            // the container to names it now, and an ancestor of the host or of this container
            // takes its user's name from the names known now.
            let updated = |ancestor: &Ancestor| -> Option<Ancestor> {
                let attributed = ancestor.container_id.is_empty()
                    && attributed.contains(&(ancestor.pid, ancestor.start_time_ns));
                let container_id = if attributed {
                    &id
                } else {
                    &ancestor.container_id
                };
                let root_names = if container_id.is_empty() {
                    host_names.as_deref()
                } else if *container_id == id {
                    names.as_deref()
                } else {
                    None
                };
                let user = match root_names.and_then(|names| names.user(ancestor.uid)) {
                    Some(entry) => entry.name.clone(),
                    // A name taken from the host's names before the attribution is not the
                    // container's user's.
                    None if attributed => SharedStr::default(),
                    None => ancestor.user.clone(),
                };
                (attributed || user != ancestor.user).then(|| Ancestor {
                    container_id: container_id.clone(),
                    user,
                    ..ancestor.clone()
                })
            };
            if event
                .ancestors
                .iter()
                .any(|ancestor| updated(ancestor).is_some())
            {
                event.ancestors = event
                    .ancestors
                    .iter()
                    .map(|ancestor| updated(ancestor).unwrap_or_else(|| ancestor.clone()))
                    .collect::<Vec<_>>()
                    .into();
            }
            event.container = container.clone();
            self.deliver(event, sink);
        }
    }

    /// The event's process fields that the table knows (name, image, arguments,
    /// executable), shared with the table.
    fn process(&self, pid: u32) -> Process {
        let mut process = Process {
            pid,
            ..Process::default()
        };
        let Some(info) = self.processes.get(pid) else {
            return process;
        };
        process.name = info.name.clone();
        process.exe = info.exe.clone();
        process.exepath = info.exepath.clone();
        process.args = info.args.clone();
        process.args_truncated = info.args_truncated;
        process.cwd = info.cwd.clone();
        process.env = info.env.clone();
        process.env_truncated = info.env_truncated;
        process.exe_dev = info.exe_file.dev;
        process.exe_ino = info.exe_file.ino;
        process.exe_ctime_ns = info.exe_file.ctime_ns;
        process.exe_mtime_ns = info.exe_file.mtime_ns;
        process.exe_upper_layer = info.exe_file.upper_layer;
        process.exe_from_memfd = info.exe_file.from_memfd;
        process.exe_deleted = info.exe_file.deleted;
        process.exe_container_runtime = info.exe_file.container_runtime;
        process.tty = info.session.tty;
        process.sid = info.session.sid;
        process.vpgid = info.session.vpgid;
        process.vpid = info.session.vpid;
        process.pidns_init_start_ns = info.session.pidns_init_start_ns;
        process.cap_inheritable = info.capabilities.inheritable;
        process.cap_permitted = info.capabilities.permitted;
        process.cap_effective = info.capabilities.effective;
        process.resources = info.resources;
        process.cgroups = info.cgroups.clone();
        process
    }

    /// The start of the capture: the time of the first event read.
    fn capture_start(&mut self, timestamp_ns: u64) -> u64 {
        if self.capture_start_ns == 0 {
            self.capture_start_ns = timestamp_ns;
        }
        self.capture_start_ns
    }

    fn handle_fallback(
        &mut self,
        observation: FallbackObservation,
        sink: &mut dyn EventSink,
    ) -> usize {
        let (kind, pid, timestamp_ns) = match &observation {
            FallbackObservation::Fork {
                parent_pid,
                child_pid,
                timestamp_ns,
            } => {
                // The proc connector gives neither: read from the child's `stat` and
                // `status`, the rest of it is the parent's.
                let (start, mut session) =
                    procfs::read_start_and_session(*child_pid, self.boot_offset_ns)
                        .unwrap_or((*timestamp_ns, SessionIds::default()));
                session.pidns_init_start_ns = self
                    .pid_namespaces
                    .init_start_ns(procfs::read_pid_namespace(*child_pid), self.boot_offset_ns);
                self.processes.fork(
                    *parent_pid,
                    ForkedChild {
                        pid: *child_pid,
                        start_time_ns: start,
                        session,
                        ..ForkedChild::default()
                    },
                );
                (EventKind::Clone, *parent_pid, *timestamp_ns)
            }
            FallbackObservation::Exec { pid, timestamp_ns } => {
                if let Some(process) = procfs::read(*pid, self.boot_offset_ns) {
                    let info = self.enrich_proc(process);
                    self.processes.exec(info);
                }
                (EventKind::Execve, *pid, *timestamp_ns)
            }
            FallbackObservation::Exit {
                pid, timestamp_ns, ..
            } => (EventKind::Procexit, *pid, *timestamp_ns),
            FallbackObservation::Open {
                pid, timestamp_ns, ..
            } => (EventKind::Openat, *pid, *timestamp_ns),
        };
        let exited = match observation {
            FallbackObservation::Exit { pid, .. } => Some(pid),
            _ => None,
        };
        let mut n_kept = 0;
        if self.requested.contains(&kind) {
            let info = self.processes.get(pid).cloned().unwrap_or_else(|| {
                Arc::new(ProcessInfo {
                    pid,
                    ..ProcessInfo::default()
                })
            });
            // The fallback has no cgroup ids: its cgroups are known by their paths, kept in
            // the process table at exec (and from `/proc` at start), forks inheriting them.
            let cgroup_key = (info.cgroup_id != 0).then_some(info.cgroup_id);
            let (container, pending, names) = match cgroup_key {
                Some(key) => {
                    let cgroup_paths = &self.cgroup_paths;
                    let resolution = self.containers.resolve(
                        key,
                        pid,
                        || cgroup_paths.path_or_empty(key),
                        kind == EventKind::Execve,
                    );
                    (resolution.container, resolution.pending, resolution.names)
                }
                None => (None, false, self.containers.host_names()),
            };
            let mut event = Event::new(kind);
            event.timestamp_ns = timestamp_ns;
            event.capture_start_ns = self.capture_start(timestamp_ns);
            event.hostname = self.hostname.clone();
            event.process = self.process(pid);
            event.process.ppid = info.ppid;
            event.process.tid = pid;
            event.process.uid = info.uid;
            event.process.gid = info.gid;
            event.process.name = info.name.clone();
            event.process.start_time_ns = info.start_time_ns;
            // Read when the event is handled, which is as close to it as the fallback gets:
            // an exited process (its exit event included) has none left.
            if let Some(fd_state) = self
                .read_fd_state
                .then(|| procfs::read_fd_state(pid, self.count_open_fds))
                .flatten()
            {
                event.process.fd_limit = Some(fd_state.limit);
                event.process.open_fds = fd_state.open;
            }
            if self.read_std_fds {
                event.process.std_fds = procfs::read_std_fds(pid);
            }
            self.fill_names(&mut event, names.as_deref(), cgroup_key);
            event.payload = match observation {
                FallbackObservation::Fork { child_pid, .. } => {
                    event.ret = i64::from(child_pid);
                    palisade_event::Payload::Spawn {
                        child_pid,
                        flags: 0,
                    }
                }
                FallbackObservation::Exit { exit_code, .. } => palisade_event::Payload::Exit {
                    status: (exit_code as i32 >> 8) & 0xff,
                    signal: exit_code as i32 & 0x7f,
                },
                FallbackObservation::Open { path, .. } => palisade_event::Payload::Open {
                    fd: palisade_event::Fd {
                        num: -1,
                        kind: palisade_event::FdKind::File,
                        name: path,
                        socket: None,
                    },
                    flags: 0,
                    mode: 0,
                },
                FallbackObservation::Exec { .. } => palisade_event::Payload::None,
            };
            event.ancestors = self
                .processes
                .ancestors(pid, self.ancestry_depth, &self.containers);
            self.emit(cgroup_key.unwrap_or(0), event, container, pending, sink);
            n_kept = 1;
        }
        if let Some(pid) = exited {
            self.processes.exit(pid);
        }
        n_kept
    }
}

/// The key of a cgroup known by its path (the fallback's) in the container cache, apart from
/// the kernel's cgroup ids (the eBPF backend's; one backend runs at a time).
fn fallback_cgroup_key(cgroup_path: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cgroup_path.hash(&mut hasher);
    hasher.finish() | FALLBACK_KEY_BIT
}

fn hostname() -> SharedStr {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().into())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Enricher, ProcessInfo, SensorConfig, ring_buffer_bytes_for};

    #[test]
    fn the_default_ring_follows_the_cpus_within_its_bounds() {
        const MIB: u32 = 1 << 20;
        let sizes: Vec<u32> = [0, 1, 2, 3, 4, 6, 16, 32, 64, 1024]
            .into_iter()
            .map(ring_buffer_bytes_for)
            .collect();
        assert_eq!(
            sizes,
            [4, 4, 4, 8, 8, 16, 32, 64, 64, 64].map(|mib| mib * MIB)
        );
    }

    #[test]
    fn a_reread_of_proc_after_lost_events_retires_the_processes_it_no_longer_lists() {
        let mut enricher = Enricher::new(&SensorConfig::default(), BTreeSet::new());
        // Above any pid_max (at most 2^22): a process whose exit event the kernel lost.
        let gone = 1 << 23;
        enricher.processes.insert(ProcessInfo {
            pid: gone,
            ppid: 1,
            ..ProcessInfo::default()
        });
        enricher.seed_from_proc();
        assert!(enricher.processes.get(gone).is_none(), "still live");
        assert!(
            enricher.processes.get(std::process::id()).is_some(),
            "a running process is kept"
        );
    }
}
