//! The sensor status file: what a running agent's sensor observes, how many events it
//! delivered, filtered and lost, how many of the firewall's connect reports were lost, and
//! what its Kubernetes API server client sees (reachable or not, objects per kind, errors).
//! The detection thread keeps it fresh ([`StatusWriter`]); `palisade agent --status` reads
//! it ([`read`]) and says whether the agent that wrote it is still running.
//!
//! The file is rewritten whole (a temporary file renamed over it), so a reader never sees half
//! of it. It names the writing process by pid and start time rather than by pid alone: a
//! reused pid must not make a dead agent's numbers look live.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use palisade_agent::OutboxWriteStatus;
use palisade_event::EventKind;
use palisade_k8smeta::MetaSource;
use palisade_model::{CpuEventsLost, SensorContextLosses, Timestamp};
use palisade_sensor::{CpuCounters, SensorHealth, SensorStatus};
use serde::{Deserialize, Serialize};

/// What `health` says the sensor could not attach to the events it delivered, as the agent
/// sends it to the server.
pub fn context_losses(health: &SensorHealth) -> SensorContextLosses {
    SensorContextLosses {
        container_metadata_missing: health.events_released_unresolved,
        container_lookups_dropped: health.container_lookups_dropped,
        process_ancestors_evicted: health.process_ancestors_evicted,
        processes_untracked: health.processes_untracked,
        held_ancestors_unattributed: health.held_ancestors_unattributed,
        names_files_cut: health.names_files_cut,
    }
}

/// The events `health` says each CPU lost, for the CPUs that lost any, as the agent sends
/// them to the server.
pub fn lost_by_cpu(health: &SensorHealth) -> Vec<CpuEventsLost> {
    health
        .per_cpu
        .iter()
        .filter(|counters| counters.lost > 0)
        .map(|counters| CpuEventsLost {
            cpu: counters.cpu,
            lost: counters.lost,
        })
        .collect()
}

/// Where a running agent leaves its sensor's status, in its data directory.
pub const SENSOR_STATUS_FILE: &str = "sensor-status.json";

/// How often a running sensor rewrites its status file.
const REFRESH: Duration = Duration::from_secs(2);

/// The content of the status file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensorStatusFile {
    /// The agent process that writes the file.
    pub pid: u32,
    /// That process's start time in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub pid_start_ticks: u64,
    /// False once the sensor stopped (the agent shut down, or the sensor failed: see
    /// `reason`), or when it never ran.
    pub running: bool,
    /// When the sensor started.
    pub started_at: Timestamp,
    /// When the file was last written.
    pub updated_at: Timestamp,
    /// Seconds from `started_at` to `updated_at`.
    pub uptime_seconds: u64,
    /// `ebpf`, `fallback`, or `none` when the node has no sensor.
    pub backend: String,
    /// Why the fallback or no sensor runs, or why the sensor stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Attached eBPF programs, or the kernel interfaces the fallback uses.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Event kinds the backend reports.
    #[serde(default)]
    pub kinds: Vec<EventKind>,
    /// Event fields the backend cannot fill (the fallback's reduced field set).
    #[serde(default)]
    pub missing_fields: Vec<String>,
    /// Event counts since the sensor started.
    #[serde(default)]
    pub events: EventCounts,
    /// The firewall's connect programs' reports (their own ring buffer beside the sensor's)
    /// lost since the sensor started.
    #[serde(default)]
    pub connect_reports: ReportLosses,
    /// How the detection thread's writes into the outbox went since the sensor started
    /// ([`palisade_agent::OutboxWriter`]: a failed write waits and is retried, detection goes
    /// on).
    #[serde(default)]
    pub outbox: OutboxWriteStatus,
    /// The Kubernetes API server the agent follows for the k8s.* fields; absent when it
    /// follows none (`--no-k8s-api`, or neither a kubeconfig nor a service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_api: Option<K8sApiStatus>,
}

/// What the agent's Kubernetes API server client saw since it started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct K8sApiStatus {
    /// The API server's URL.
    pub server: String,
    /// The API server answered and no kind's last request failed; false before its first
    /// answer and while any kind fails (no answer, refused credentials, a role that may not
    /// list it, an error status), until it answers again.
    pub reachable: bool,
    /// The kinds whose last request failed.
    #[serde(default)]
    pub failing_kinds: Vec<String>,
    /// Every kind (pods, namespaces, replica sets, deployments, services, replication
    /// controllers) has been listed since the start.
    pub synced: bool,
    /// When the API server last answered a list or a watch.
    pub last_sync_at: Option<Timestamp>,
    /// Objects in the cache per kind (`Pod`, `Namespace`, ...).
    pub objects: BTreeMap<String, u64>,
    /// Complete lists read.
    pub lists: u64,
    /// Watch events applied (added, modified, deleted).
    pub watch_events: u64,
    /// Watch bookmarks received.
    pub bookmarks: u64,
    /// Lists read again because the watched resource version was gone (410).
    pub relists_after_gone: u64,
    /// Requests that failed.
    pub failures: u64,
    /// Objects skipped as malformed.
    pub malformed: u64,
    /// Objects skipped as oversized.
    pub oversized: u64,
    /// Objects not kept because their kind was at its limit.
    pub over_capacity: u64,
    /// The last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl K8sApiStatus {
    /// The client's counters now.
    pub fn of(source: &MetaSource) -> K8sApiStatus {
        let stats = source.stats();
        K8sApiStatus {
            server: source.server().to_owned(),
            reachable: stats.reachable,
            failing_kinds: stats
                .failing
                .iter()
                .map(|kind| kind.kind_name().to_owned())
                .collect(),
            synced: stats.synced,
            last_sync_at: stats.last_sync.map(|at| {
                let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
            }),
            objects: stats
                .objects
                .iter()
                .map(|(kind, count)| (kind.kind_name().to_owned(), *count as u64))
                .collect(),
            lists: stats.lists,
            watch_events: stats.watch_events,
            bookmarks: stats.bookmarks,
            relists_after_gone: stats.relists_after_gone,
            failures: stats.failures,
            malformed: stats.malformed,
            oversized: stats.oversized,
            over_capacity: stats.over_capacity,
            last_error: stats.last_error,
        }
    }
}

/// Reports lost by a source of its own, beside the sensor's events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportLosses {
    /// Reports lost because the source's ring buffer or the reader's queue was full.
    pub lost: u64,
    /// When the agent last noticed lost reports.
    pub last_loss_at: Option<Timestamp>,
}

/// Event counts since the sensor started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventCounts {
    /// Events the kernel side produced.
    pub produced: u64,
    /// Events handed to the rules and observers.
    pub delivered: u64,
    /// Events read but not needed by any rule (kept for the process table only).
    pub filtered: u64,
    /// Events lost because the ring buffer was full.
    pub lost: u64,
    /// Events that waited (at most the sensor's hold limit, 50 ms by default) for their
    /// container's metadata.
    #[serde(default)]
    pub held: u64,
    /// Held events that went out before their container's metadata arrived (with its id
    /// only, `metadata_missing`).
    #[serde(default)]
    pub released_unresolved: u64,
    /// Container metadata look-ups not queued because the queue was full.
    #[serde(default)]
    pub container_lookups_dropped: u64,
    /// Exited processes dropped from the process table to make room for new ones: the
    /// ancestries of their live descendants end below them.
    #[serde(default)]
    pub process_ancestors_evicted: u64,
    /// Times the process table refused to record a process because it was full of live
    /// ones (a process is counted again at each of its execs while unrecorded): their
    /// events carry no ancestry.
    #[serde(default)]
    pub processes_untracked: u64,
    /// Processes of a cgroup whose events were held for its container that left the
    /// process table meanwhile, past the bound of those noted for the answer: held events'
    /// ancestries name them without their container.
    #[serde(default)]
    pub held_ancestors_unattributed: u64,
    /// User or group files read only up to the sensor's size limit (1 MiB), once per
    /// version of a file: users and groups listed past it have no names in events.
    #[serde(default)]
    pub names_files_cut: u64,
    /// Cgroup paths the sensor keeps now (not a count since the start): about one per live
    /// cgroup that had an event; those of removed cgroups are forgotten.
    #[serde(default)]
    pub cgroups_known: u64,
    /// When the agent last noticed lost events.
    pub last_drop_at: Option<Timestamp>,
    /// The kernel's counters by CPU (eBPF only).
    pub per_cpu: Vec<CpuCounters>,
}

impl SensorStatusFile {
    /// The status of a node whose sensor does not run, and why.
    pub fn none(reason: String) -> SensorStatusFile {
        let now = Timestamp::now();
        SensorStatusFile {
            pid: std::process::id(),
            pid_start_ticks: own_start_ticks(),
            running: false,
            started_at: now,
            updated_at: now,
            uptime_seconds: 0,
            backend: "none".to_owned(),
            reason: Some(reason),
            sources: Vec::new(),
            kinds: Vec::new(),
            missing_fields: Vec::new(),
            events: EventCounts::default(),
            connect_reports: ReportLosses::default(),
            outbox: OutboxWriteStatus::default(),
            k8s_api: None,
        }
    }

    /// Writes the file atomically: a temporary file in the same directory, renamed over it.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)
            .and_then(|()| std::fs::rename(&temporary, path))
            .with_context(|| format!("cannot write the sensor status to {}", path.display()))
    }

    /// `running`, `stopped` (with the counts as of the stop) or `stale` (the agent that wrote
    /// it is gone without stopping its sensor: killed or crashed).
    pub fn state(&self) -> &'static str {
        if !self.running {
            "stopped"
        } else if process_start_ticks(self.pid) == Some(self.pid_start_ticks) {
            "running"
        } else {
            "stale"
        }
    }
}

/// Keeps the status file of a running sensor fresh.
pub struct StatusWriter {
    path: PathBuf,
    /// The Kubernetes API server's reflectors, reported in the file; they stop when the
    /// writer is dropped, with the sensor.
    k8s: Option<MetaSource>,
    file: SensorStatusFile,
    started: Instant,
    last_write: Instant,
}

impl StatusWriter {
    /// Writes the first status of a sensor that just started, which follows the API server
    /// of `k8s` when there is one.
    pub fn start(
        path: PathBuf,
        status: &SensorStatus,
        k8s: Option<MetaSource>,
    ) -> anyhow::Result<StatusWriter> {
        let mut file = SensorStatusFile::none(String::new());
        file.running = true;
        file.backend = status.backend.to_owned();
        file.reason = status.fallback_reason.clone();
        file.sources = status.sources.clone();
        file.kinds = status.kinds.clone();
        file.missing_fields = status
            .missing_fields
            .iter()
            .map(|&field| field.to_owned())
            .collect();
        file.k8s_api = k8s.as_ref().map(K8sApiStatus::of);
        file.write(&path)?;
        let now = Instant::now();
        Ok(StatusWriter {
            path,
            k8s,
            file,
            started: now,
            last_write: now,
        })
    }

    /// Takes the counts after a poll (the sensor's, and the connect reports lost in all);
    /// rewrites the file every [`REFRESH`].
    pub fn observe(&mut self, health: &SensorHealth, connect_reports_lost: u64) {
        self.update(health, connect_reports_lost);
        if self.last_write.elapsed() >= REFRESH {
            self.write();
        }
    }

    /// Takes how the outbox writes go (written with the next rewrite of the file).
    pub fn observe_outbox(&mut self, status: OutboxWriteStatus) {
        self.file.outbox = status;
    }

    /// Writes the final counts of a sensor that stopped, and why when it failed.
    pub fn stop(
        mut self,
        health: &SensorHealth,
        connect_reports_lost: u64,
        failure: Option<String>,
    ) {
        self.update(health, connect_reports_lost);
        self.file.running = false;
        if failure.is_some() {
            self.file.reason = failure;
        }
        self.write();
    }

    fn update(&mut self, health: &SensorHealth, connect_reports_lost: u64) {
        let connect_reports = &mut self.file.connect_reports;
        if connect_reports_lost > connect_reports.lost {
            connect_reports.last_loss_at = Some(Timestamp::now());
            connect_reports.lost = connect_reports_lost;
        }
        let events = &mut self.file.events;
        if health.events_lost > events.lost {
            events.last_drop_at = Some(Timestamp::now());
        }
        events.produced = health.events_sent;
        events.delivered = health.events_delivered;
        events.filtered = health.events_filtered;
        events.lost = health.events_lost;
        events.held = health.events_held;
        events.released_unresolved = health.events_released_unresolved;
        events.container_lookups_dropped = health.container_lookups_dropped;
        events.process_ancestors_evicted = health.process_ancestors_evicted;
        events.processes_untracked = health.processes_untracked;
        events.held_ancestors_unattributed = health.held_ancestors_unattributed;
        events.names_files_cut = health.names_files_cut;
        events.cgroups_known = health.cgroups_known as u64;
        events.per_cpu.clone_from(&health.per_cpu);
    }

    fn write(&mut self) {
        self.file.updated_at = Timestamp::now();
        self.file.k8s_api = self.k8s.as_ref().map(K8sApiStatus::of);
        self.file.uptime_seconds = self.started.elapsed().as_secs();
        self.last_write = Instant::now();
        if let Err(error) = self.file.write(&self.path) {
            tracing::warn!(
                error = format!("{error:#}"),
                "Cannot refresh the sensor status."
            );
        }
    }
}

/// The status file in `data_dir`: `None` when there is none (the agent never started
/// there), an error when it cannot be read or parsed.
pub fn read(data_dir: &Path) -> anyhow::Result<Option<SensorStatusFile>> {
    let path = data_dir.join(SENSOR_STATUS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not a sensor status file", path.display()))
}

fn own_start_ticks() -> u64 {
    process_start_ticks(std::process::id()).unwrap_or(0)
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name, which may contain
/// spaces); `None` when no such process exists.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(") ")?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The sensor part of `palisade agent --status` as tables: the backend and its state, then
/// the event counts, then the counts by CPU.
pub fn print_tables(status: &SensorStatusFile) {
    let mut summary = comfy_table::Table::new();
    summary
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(100)
        .set_header(["sensor", ""]);
    let state = status.state();
    summary.add_row([
        "backend".to_owned(),
        format!("{} ({state}, pid {})", status.backend, status.pid),
    ]);
    if let Some(reason) = &status.reason {
        summary.add_row(["reason", reason]);
    }
    summary.add_row([
        "uptime".to_owned(),
        format!(
            "{} s (started {}, updated {})",
            status.uptime_seconds, status.started_at, status.updated_at
        ),
    ]);
    let kinds: Vec<String> = status
        .kinds
        .iter()
        .map(|kind| kind.as_str().to_owned())
        .collect();
    summary.add_row(["event kinds".to_owned(), kinds.join(", ")]);
    summary.add_row([
        "sources".to_owned(),
        format!("{} (`--output json` lists them)", status.sources.len()),
    ]);
    summary.add_row([
        "missing fields".to_owned(),
        if status.missing_fields.is_empty() {
            "none".to_owned()
        } else {
            status.missing_fields.join(", ")
        },
    ]);
    let events = &status.events;
    add_event_count_rows(&mut summary, events);
    let or_never =
        |at: Option<Timestamp>| at.map_or_else(|| "never".to_owned(), |at| at.to_string());
    summary.add_row(["last drop".to_owned(), or_never(events.last_drop_at)]);
    summary.add_row([
        "connect reports lost".to_owned(),
        status.connect_reports.lost.to_string(),
    ]);
    summary.add_row([
        "last connect report loss".to_owned(),
        or_never(status.connect_reports.last_loss_at),
    ]);
    let outbox = &status.outbox;
    summary.add_row([
        "outbox write failures".to_owned(),
        outbox.write_failures.to_string(),
    ]);
    if let Some(since) = outbox.failing_since {
        summary.add_row([
            "outbox failing since".to_owned(),
            format!("{since} ({} reports waiting)", outbox.waiting),
        ]);
    }
    summary.add_row([
        "reports dropped (outbox failing)".to_owned(),
        outbox.reports_dropped.to_string(),
    ]);
    if let Some(k8s) = &status.k8s_api {
        add_k8s_api_rows(&mut summary, k8s);
    }
    println!("{summary}");
    if state == "stale" {
        println!(
            "The agent that wrote this status (pid {}) is not running: the numbers are from {}.",
            status.pid, status.updated_at
        );
    }
    if !events.per_cpu.is_empty() {
        let mut per_cpu = comfy_table::Table::new();
        per_cpu.set_header(["cpu", "produced", "lost"]);
        for cpu in &events.per_cpu {
            per_cpu
                .add_row([u64::from(cpu.cpu), cpu.sent, cpu.lost].map(|count| count.to_string()));
        }
        println!("{per_cpu}");
    }
}

/// The event counts' rows of the status table.
fn add_event_count_rows(summary: &mut comfy_table::Table, events: &EventCounts) {
    for (name, count) in [
        ("events produced", events.produced),
        ("events delivered", events.delivered),
        ("events filtered", events.filtered),
        ("events lost", events.lost),
        ("events held for container metadata", events.held),
        (
            "held events sent without metadata",
            events.released_unresolved,
        ),
        (
            "container look-ups dropped",
            events.container_lookups_dropped,
        ),
        (
            "process table full: ancestors evicted",
            events.process_ancestors_evicted,
        ),
        (
            "process table full: insertions refused",
            events.processes_untracked,
        ),
        (
            "held ancestors without container",
            events.held_ancestors_unattributed,
        ),
        ("user/group files past 1 MiB (cut)", events.names_files_cut),
        ("cgroup paths kept", events.cgroups_known),
    ] {
        summary.add_row([name.to_owned(), count.to_string()]);
    }
}

/// The Kubernetes API server client's rows of the status table.
fn add_k8s_api_rows(summary: &mut comfy_table::Table, k8s: &K8sApiStatus) {
    let state = match (k8s.reachable, k8s.synced) {
        (true, true) => "reachable, every kind listed".to_owned(),
        (true, false) => "reachable, not every kind listed yet".to_owned(),
        (false, _) if k8s.failing_kinds.is_empty() => {
            "UNREACHABLE: no answer yet; the k8s.* fields of the API server stay absent".to_owned()
        }
        (false, _) => format!(
            "UNREACHABLE for {}: their k8s.* fields stay absent or old",
            k8s.failing_kinds.join(", ")
        ),
    };
    summary.add_row([
        "k8s API server".to_owned(),
        format!("{} ({state})", k8s.server),
    ]);
    summary.add_row([
        "k8s last sync".to_owned(),
        k8s.last_sync_at
            .map_or_else(|| "never".to_owned(), |at| at.to_string()),
    ]);
    let objects: Vec<String> = k8s
        .objects
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    summary.add_row(["k8s objects".to_owned(), objects.join(", ")]);
    summary.add_row([
        "k8s requests".to_owned(),
        format!(
            "{} lists, {} watch events, {} re-lists, {} failures",
            k8s.lists, k8s.watch_events, k8s.relists_after_gone, k8s.failures
        ),
    ]);
    summary.add_row([
        "k8s objects skipped".to_owned(),
        format!(
            "{} malformed, {} oversized, {} over the limit",
            k8s.malformed, k8s.oversized, k8s.over_capacity
        ),
    ]);
    if let Some(error) = &k8s.last_error {
        summary.add_row(["k8s last error", error]);
    }
}

#[cfg(test)]
mod tests {
    use super::{SensorStatusFile, read};

    #[test]
    fn state_tells_a_running_writer_from_a_stopped_or_vanished_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut status = SensorStatusFile::none("test".to_owned());
        assert_eq!(status.state(), "stopped", "a sensor that never ran");
        status.running = true;
        assert_eq!(status.state(), "running", "this test process wrote it");
        status.pid_start_ticks += 1;
        assert_eq!(
            status.state(),
            "stale",
            "the pid was reused by another process"
        );
        status
            .write(&dir.path().join(super::SENSOR_STATUS_FILE))
            .unwrap();
        let read_back = read(dir.path()).unwrap().unwrap();
        assert_eq!(read_back.state(), "stale");
        assert_eq!(read_back.reason.as_deref(), Some("test"));
    }

    /// An eBPF sensor's status, with nothing attached.
    fn ebpf_sensor() -> palisade_sensor::SensorStatus {
        palisade_sensor::SensorStatus {
            backend: "ebpf",
            fallback_reason: None,
            sources: Vec::new(),
            kinds: Vec::new(),
            missing_fields: Vec::new(),
        }
    }

    /// The events held for their container's metadata, those sent without it and the
    /// look-ups dropped are in the file; a file written before they were counted still reads.
    #[test]
    fn container_metadata_waits_are_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::SENSOR_STATUS_FILE);
        let writer = super::StatusWriter::start(path.clone(), &ebpf_sensor(), None).unwrap();
        let health = palisade_sensor::SensorHealth {
            events_held: 17,
            events_released_unresolved: 3,
            container_lookups_dropped: 2,
            ..palisade_sensor::SensorHealth::default()
        };
        writer.stop(&health, 0, None);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let events = &json["events"];
        assert_eq!(
            (
                &events["held"],
                &events["released_unresolved"],
                &events["container_lookups_dropped"]
            ),
            (&17.into(), &3.into(), &2.into()),
            "{json}"
        );
        let read_back = read(dir.path()).unwrap().unwrap();
        assert_eq!(read_back.events.released_unresolved, 3);
        for older in ["held", "released_unresolved", "container_lookups_dropped"] {
            json["events"].as_object_mut().unwrap().remove(older);
        }
        std::fs::write(&path, json.to_string()).unwrap();
        let older = read(dir.path()).unwrap().unwrap();
        assert_eq!(older.events.held, 0);
    }

    /// What the process table's bounds dropped and the cgroup paths kept are in the file and
    /// the status table; a file written before they were counted still reads.
    #[test]
    fn process_table_evictions_and_cgroups_known_are_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::SENSOR_STATUS_FILE);
        let writer = super::StatusWriter::start(path.clone(), &ebpf_sensor(), None).unwrap();
        let health = palisade_sensor::SensorHealth {
            process_ancestors_evicted: 5,
            processes_untracked: 1,
            held_ancestors_unattributed: 9,
            names_files_cut: 2,
            cgroups_known: 7,
            ..palisade_sensor::SensorHealth::default()
        };
        writer.stop(&health, 0, None);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let events = &json["events"];
        assert_eq!(
            (
                &events["process_ancestors_evicted"],
                &events["processes_untracked"],
                &events["held_ancestors_unattributed"],
                &events["names_files_cut"],
                &events["cgroups_known"]
            ),
            (&5.into(), &1.into(), &9.into(), &2.into(), &7.into()),
            "{json}"
        );
        let read_back = read(dir.path()).unwrap().unwrap();
        let mut table = comfy_table::Table::new();
        super::add_event_count_rows(&mut table, &read_back.events);
        let table = table.to_string();
        assert!(
            table
                .lines()
                .any(|line| line.contains("held ancestors without container")
                    && line.contains(" 9 ")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|line| line.contains("user/group files past 1 MiB (cut)")
                    && line.contains(" 2 ")),
            "{table}"
        );
        for older in [
            "process_ancestors_evicted",
            "processes_untracked",
            "held_ancestors_unattributed",
            "names_files_cut",
            "cgroups_known",
        ] {
            json["events"].as_object_mut().unwrap().remove(older);
        }
        std::fs::write(&path, json.to_string()).unwrap();
        let older = read(dir.path()).unwrap().unwrap();
        assert_eq!(
            (
                older.events.process_ancestors_evicted,
                older.events.processes_untracked,
                older.events.held_ancestors_unattributed,
                older.events.names_files_cut,
                older.events.cgroups_known
            ),
            (0, 0, 0, 0, 0)
        );
    }

    /// The agent sends each of the sensor's context counters under its own name.
    #[test]
    fn the_sensors_context_losses_are_sent_counter_by_counter() {
        let health = palisade_sensor::SensorHealth {
            events_released_unresolved: 1,
            container_lookups_dropped: 2,
            process_ancestors_evicted: 3,
            processes_untracked: 4,
            held_ancestors_unattributed: 5,
            names_files_cut: 6,
            events_lost: 99,
            ..palisade_sensor::SensorHealth::default()
        };
        let sent = serde_json::to_value(super::context_losses(&health)).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({
                "container_metadata_missing": 1,
                "container_lookups_dropped": 2,
                "process_ancestors_evicted": 3,
                "processes_untracked": 4,
                "held_ancestors_unattributed": 5,
                "names_files_cut": 6,
            })
        );
    }

    /// The agent sends the lost events of the CPUs that lost any, by CPU.
    #[test]
    fn the_lost_events_are_sent_for_the_cpus_that_lost_some() {
        let counters = |cpu, sent, lost| palisade_sensor::CpuCounters { cpu, sent, lost };
        let health = palisade_sensor::SensorHealth {
            events_lost: 7,
            per_cpu: vec![counters(0, 100, 0), counters(1, 80, 7), counters(2, 5, 0)],
            ..palisade_sensor::SensorHealth::default()
        };
        assert_eq!(
            super::lost_by_cpu(&health),
            [super::CpuEventsLost { cpu: 1, lost: 7 }]
        );
    }

    #[test]
    fn lost_connect_reports_are_in_the_file_with_the_time_of_the_last_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::SENSOR_STATUS_FILE);
        let sensor = ebpf_sensor();
        let mut writer = super::StatusWriter::start(path.clone(), &sensor, None).unwrap();
        let health = palisade_sensor::SensorHealth::default();
        writer.observe(&health, 0);
        let before = super::Timestamp::now();
        writer.observe(&health, 1234);
        writer.stop(&health, 1234, None);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["connect_reports"]["lost"], 1234, "{json}");
        let last_loss: super::Timestamp =
            serde_json::from_value(json["connect_reports"]["last_loss_at"].clone()).unwrap();
        assert!(last_loss >= before, "{json}");
        let read_back = read(dir.path()).unwrap().unwrap();
        assert_eq!(read_back.connect_reports.lost, 1234);
        assert_eq!(read_back.events.lost, 0, "the sensor lost no event");
    }

    /// An API server that does not answer is in the file and the status table as
    /// unreachable, with its failures and error; the reflectors stop with the writer.
    #[test]
    fn an_unreachable_k8s_api_server_is_reported_in_the_file_and_the_table() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = palisade_k8smeta::ApiConfig {
            server: format!("http://127.0.0.1:{port}"),
            ca_pem: None,
            token: None,
            identity_pem: None,
        };
        let source = palisade_k8smeta::MetaSource::start(
            &config,
            palisade_k8smeta::WatchSettings::default(),
            runtime.handle(),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // Every kind's reflector fails its first list.
        while source.stats().failing.len() < palisade_k8smeta::ResourceKind::ALL.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "not every kind failed"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::SENSOR_STATUS_FILE);
        let sensor = ebpf_sensor();
        let writer = super::StatusWriter::start(path.clone(), &sensor, Some(source)).unwrap();
        writer.stop(&palisade_sensor::SensorHealth::default(), 0, None);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let k8s = &json["k8s_api"];
        assert_eq!(k8s["server"], config.server, "{json}");
        assert_eq!(k8s["reachable"], false, "{json}");
        assert_eq!(
            k8s["failing_kinds"],
            serde_json::json!([
                "Pod",
                "Namespace",
                "ReplicaSet",
                "Deployment",
                "Service",
                "ReplicationController"
            ]),
            "{json}"
        );
        assert_eq!(k8s["synced"], false, "{json}");
        assert!(k8s["last_sync_at"].is_null(), "{json}");
        assert!(k8s["failures"].as_u64().unwrap() >= 1, "{json}");
        assert_eq!(k8s["objects"]["Pod"], 0, "{json}");
        let error = k8s["last_error"].as_str().unwrap();
        assert!(error.contains(&port.to_string()), "{error}");

        let status = read(dir.path()).unwrap().unwrap();
        let mut table = comfy_table::Table::new();
        super::add_k8s_api_rows(&mut table, status.k8s_api.as_ref().unwrap());
        let table = table.to_string();
        assert!(
            table.contains("UNREACHABLE") && table.contains(&config.server),
            "{table}"
        );
        assert!(
            table.contains("k8s last error") && table.contains("never"),
            "{table}"
        );
    }

    #[test]
    fn a_missing_file_is_none_and_a_corrupt_one_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let path = dir.path().join(super::SENSOR_STATUS_FILE);
        std::fs::write(&path, "{\"pid\": ").unwrap();
        let error = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
