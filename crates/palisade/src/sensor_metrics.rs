//! `palisade agent --status --output prometheus`: the agent's sensor and link counters in the
//! Prometheus text format. The agent serves no HTTP (it only connects out to its server), so a
//! node watched by Prometheus without a Palisade server, or beside it, exports them through
//! node_exporter's textfile collector: a timer runs the command into a `.prom` file (written
//! to a temporary file and renamed, as the collector asks).
//!
//! The values are the status files': the sensor's ([`crate::sensor_status`]), which the
//! running agent rewrites every two seconds, and the link's ([`LinkStatus`]), which it
//! rewrites after each batch its server deferred: counters since the agent's sensor or link
//! started (a restart starts them again, which Prometheus takes as a counter reset). The names
//! are those of the server's series without `cluster` and `node` labels, under
//! `palisade_agent_`, so that the same alert rules read both (the server's
//! `palisade_agent_batches_deferred_total` counts every agent's deferred batches, this one
//! the agent's own).

use std::fmt::Write;

use palisade_agent::LinkStatus;
use palisade_model::SensorContextLosses;
use palisade_server::prometheus_label_value;

use crate::sensor_status::{EventCounts, SensorStatusFile};

/// The sensor's and the agent's counters in the Prometheus text format; `status` is `None`
/// when the agent never ran its sensor in the data directory, `link` when it never sent a
/// batch from it (their series are left out then).
pub fn render(
    status: Option<&SensorStatusFile>,
    link: Option<&LinkStatus>,
    outbox_pending: u64,
) -> String {
    let mut out = String::new();
    metric(
        &mut out,
        "palisade_agent_outbox_pending",
        "gauge",
        "Reports in the agent's outbox not yet acknowledged by its server.",
    );
    let _ = writeln!(out, "palisade_agent_outbox_pending {outbox_pending}");
    if let Some(link) = link {
        metric(
            &mut out,
            "palisade_agent_batches_deferred_total",
            "counter",
            "Batches the agent's server deferred (503 or 429: its batch budget was spent) since the agent started sending; each stayed in the outbox and was sent again.",
        );
        let _ = writeln!(
            out,
            "palisade_agent_batches_deferred_total {}",
            link.batches_deferred
        );
    }
    let Some(status) = status else {
        return out;
    };
    let state = status.state();
    metric(
        &mut out,
        "palisade_agent_sensor_running",
        "gauge",
        "1 while the agent's sensor runs, with its backend (`ebpf` or `fallback`); 0 when it stopped or the agent that ran it is gone (the counters below are then its last).",
    );
    let _ = writeln!(
        out,
        "palisade_agent_sensor_running{{backend=\"{}\"}} {}",
        prometheus_label_value(&status.backend),
        u8::from(state == "running")
    );
    let events = &status.events;
    metric(
        &mut out,
        "palisade_agent_sensor_events_total",
        "counter",
        "Events of the agent's sensor since it started, by what became of them: `produced` (by the kernel side), `delivered` (to the rules), `filtered` (kept for the process table only), `lost` (the ring buffer was full).",
    );
    for (what, value) in [
        ("produced", events.produced),
        ("delivered", events.delivered),
        ("filtered", events.filtered),
        ("lost", events.lost),
    ] {
        let _ = writeln!(
            out,
            "palisade_agent_sensor_events_total{{what=\"{what}\"}} {value}"
        );
    }
    metric(
        &mut out,
        "palisade_agent_sensor_events_lost_total",
        "counter",
        "Kernel events the agent's sensor lost since it started, by the CPU whose probes lost them (eBPF only; every CPU has a series).",
    );
    for cpu in &events.per_cpu {
        let _ = writeln!(
            out,
            "palisade_agent_sensor_events_lost_total{{cpu=\"{}\"}} {}",
            cpu.cpu, cpu.lost
        );
    }
    metric(
        &mut out,
        "palisade_agent_sensor_context_lost_total",
        "counter",
        "What the agent's sensor could not attach to the events it delivered since it started, by what (as the server's palisade_sensor_context_lost_total).",
    );
    let context = context_losses(events);
    for (what, value) in SensorContextLosses::NAMES.iter().zip(context.counts()) {
        let _ = writeln!(
            out,
            "palisade_agent_sensor_context_lost_total{{what=\"{what}\"}} {value}"
        );
    }
    metric(
        &mut out,
        "palisade_agent_connect_reports_lost_total",
        "counter",
        "Reports of the firewall's connect programs lost since the agent's sensor started.",
    );
    let _ = writeln!(
        out,
        "palisade_agent_connect_reports_lost_total {}",
        status.connect_reports.lost
    );
    out
}

/// The status file's counts of what the sensor could not attach to its events, as the agent
/// sends them to the server.
fn context_losses(events: &EventCounts) -> SensorContextLosses {
    SensorContextLosses {
        container_metadata_missing: events.released_unresolved,
        container_lookups_dropped: events.container_lookups_dropped,
        process_ancestors_evicted: events.process_ancestors_evicted,
        processes_untracked: events.processes_untracked,
        held_ancestors_unattributed: events.held_ancestors_unattributed,
        names_files_cut: events.names_files_cut,
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use palisade_agent::LinkStatus;
    use palisade_model::Timestamp;
    use palisade_sensor::CpuCounters;

    use crate::sensor_status::{EventCounts, SensorStatusFile};

    /// Every counter is a sample of its metric, the lost events by CPU included; a status
    /// written by a process that is not running says the sensor does not run.
    #[test]
    fn the_status_files_counters_are_samples_of_their_metrics() {
        let mut status = SensorStatusFile::none(String::new());
        status.backend = "ebpf".to_owned();
        status.running = true;
        status.events = EventCounts {
            produced: 100,
            delivered: 80,
            filtered: 5,
            lost: 15,
            released_unresolved: 2,
            names_files_cut: 1,
            per_cpu: vec![
                CpuCounters {
                    cpu: 0,
                    sent: 60,
                    lost: 0,
                },
                CpuCounters {
                    cpu: 1,
                    sent: 40,
                    lost: 15,
                },
            ],
            ..EventCounts::default()
        };
        status.connect_reports.lost = 3;
        let link = LinkStatus {
            started_at: Timestamp(0),
            batches_deferred: 4,
            last_deferred_at: Some(Timestamp(1)),
        };
        let text = super::render(Some(&status), Some(&link), 7);
        let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        for sample in [
            "palisade_agent_outbox_pending 7",
            "palisade_agent_batches_deferred_total 4",
            r#"palisade_agent_sensor_running{backend="ebpf"} 1"#,
            r#"palisade_agent_sensor_events_total{what="produced"} 100"#,
            r#"palisade_agent_sensor_events_total{what="lost"} 15"#,
            r#"palisade_agent_sensor_events_lost_total{cpu="0"} 0"#,
            r#"palisade_agent_sensor_events_lost_total{cpu="1"} 15"#,
            r#"palisade_agent_sensor_context_lost_total{what="container_metadata_missing"} 2"#,
            r#"palisade_agent_sensor_context_lost_total{what="names_files_cut"} 1"#,
            "palisade_agent_connect_reports_lost_total 3",
        ] {
            assert!(samples.contains(&sample), "{sample} not in\n{text}");
        }
        // Each metric has its HELP and TYPE before its samples.
        for name in samples
            .iter()
            .map(|sample| sample.split(['{', ' ']).next().unwrap())
        {
            let help = text.find(&format!("# HELP {name} ")).unwrap();
            let kind = text.find(&format!("# TYPE {name} ")).unwrap();
            let first = text.find(&format!("\n{name}")).unwrap();
            assert!(help < kind && kind < first, "{name}:\n{text}");
        }
        // Written by this test's process, which is alive: running. A status whose writer
        // stopped is not.
        status.running = false;
        let stopped = super::render(Some(&status), None, 0);
        assert!(stopped.contains("palisade_agent_sensor_running{backend=\"ebpf\"} 0"));
        assert_eq!(
            super::render(None, None, 0)
                .lines()
                .filter(|line| !line.starts_with('#'))
                .collect::<Vec<_>>(),
            ["palisade_agent_outbox_pending 0"]
        );
    }
}
