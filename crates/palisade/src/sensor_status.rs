//! The sensor status file: what a running agent's sensor observes, how many events it
//! delivered, filtered and lost, and how many of the firewall's connect reports were lost.
//! The detection thread keeps it fresh ([`StatusWriter`]); `palisade agent --status` reads
//! it ([`read`]) and says whether the agent that wrote it is still running.
//!
//! The file is rewritten whole (a temporary file renamed over it), so a reader never sees half
//! of it. It names the writing process by pid and start time rather than by pid alone: a
//! reused pid must not make a dead agent's numbers look live.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use palisade_event::EventKind;
use palisade_model::Timestamp;
use palisade_sensor::{CpuCounters, SensorHealth, SensorStatus};
use serde::{Deserialize, Serialize};

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
    file: SensorStatusFile,
    started: Instant,
    last_write: Instant,
}

impl StatusWriter {
    /// Writes the first status of a sensor that just started.
    pub fn start(path: PathBuf, status: &SensorStatus) -> anyhow::Result<StatusWriter> {
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
        file.write(&path)?;
        let now = Instant::now();
        Ok(StatusWriter {
            path,
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
        events.per_cpu.clone_from(&health.per_cpu);
    }

    fn write(&mut self) {
        self.file.updated_at = Timestamp::now();
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
    for (name, count) in [
        ("events produced", events.produced),
        ("events delivered", events.delivered),
        ("events filtered", events.filtered),
        ("events lost", events.lost),
    ] {
        summary.add_row([name.to_owned(), count.to_string()]);
    }
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

    #[test]
    fn lost_connect_reports_are_in_the_file_with_the_time_of_the_last_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::SENSOR_STATUS_FILE);
        let sensor = palisade_sensor::SensorStatus {
            backend: "ebpf",
            fallback_reason: None,
            sources: Vec::new(),
            kinds: Vec::new(),
            missing_fields: Vec::new(),
        };
        let mut writer = super::StatusWriter::start(path.clone(), &sensor).unwrap();
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
