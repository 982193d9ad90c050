//! Prometheus metrics, rendered in the text exposition format without a metrics library:
//! a handful of counters and one latency histogram do not justify a dependency.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use palisade_model::SensorContextLosses;
use palisade_notify::NotifyStats;
use palisade_store::{IngestOutcome, LossIncrease};

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The most (cluster, node) pairs with series of their own in `palisade_events_dropped_total`
/// (two each: `sensor` and `connect_reports`) and `palisade_sensor_context_lost_total` (one
/// per [`SensorContextLosses::NAMES`]). Losses of further nodes are counted in the
/// series labelled `cluster="*",node="*"` (no Kubernetes name nor host name is `*`), so
/// that agents enrolling under ever new names cannot grow the metrics without bound.
pub const MAX_NODE_SERIES: usize = 1_000;

/// The label values of the series that counts the nodes beyond [`MAX_NODE_SERIES`].
const OTHER_NODES: &str = "*";

/// The most series of `palisade_sensor_events_lost_total` (one per node and CPU that lost
/// events). A CPU of a node beyond it is counted in that node's series labelled `cpu="*"`,
/// so that the series stay bounded however many CPUs the nodes have.
pub const MAX_CPU_SERIES: usize = 16_384;

/// The `cpu` label value of the series that counts a node's CPUs beyond [`MAX_CPU_SERIES`].
const OTHER_CPUS: &str = "*";

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    created: AtomicU64,
    aggregated: AtomicU64,
    suppressed: AtomicU64,
    duplicates: AtomicU64,
    /// What each (cluster, node) lost.
    node_losses: Mutex<NodeLossCounts>,
    batches: AtomicU64,
    /// Agent batches answered 503 because the batch budget was spent.
    batches_deferred: AtomicU64,
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

/// What the nodes lost since the server started.
#[derive(Debug, Default)]
struct NodeLossCounts {
    /// By (cluster, node).
    nodes: BTreeMap<(String, String), NodeCounts>,
    /// Series of the nodes' CPUs so far (at most [`MAX_CPU_SERIES`]).
    cpu_series: usize,
}

/// What one node lost since the server started.
#[derive(Debug, Default)]
struct NodeCounts {
    /// [sensor events, connect reports].
    dropped: [u64; 2],
    /// The sensor events by the CPU that lost them (`None`: the CPUs beyond
    /// [`MAX_CPU_SERIES`]), for the CPUs that lost any.
    sensor_lost_by_cpu: BTreeMap<Option<u32>, u64>,
    /// What its sensor could not attach to the events it delivered.
    sensor_context: SensorContextLosses,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Counts an ingested batch.
    pub fn record_ingest(&self, outcome: &IngestOutcome) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.created.fetch_add(outcome.created, Ordering::Relaxed);
        self.aggregated
            .fetch_add(outcome.aggregated, Ordering::Relaxed);
        self.suppressed
            .fetch_add(outcome.suppressed, Ordering::Relaxed);
        self.duplicates
            .fetch_add(outcome.duplicates, Ordering::Relaxed);
    }

    /// Counts an agent batch deferred (503) because the server held as many batch bytes as
    /// it may.
    pub(crate) fn record_batch_deferred(&self) {
        self.batches_deferred.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what node `node` of `cluster` newly lost (its series exists from then on, also
    /// when nothing was lost). See [`MAX_NODE_SERIES`].
    pub fn record_node_losses(&self, cluster: &str, node: &str, increase: LossIncrease) {
        let mut node_losses = self
            .node_losses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let NodeLossCounts { nodes, cpu_series } = &mut *node_losses;
        let key = (cluster.to_owned(), node.to_owned());
        let key = if nodes.contains_key(&key) || nodes.len() < MAX_NODE_SERIES {
            key
        } else {
            (OTHER_NODES.to_owned(), OTHER_NODES.to_owned())
        };
        let counts = nodes.entry(key).or_default();
        counts.dropped[0] += increase.sensor_events;
        counts.dropped[1] += increase.connect_reports;
        for lost in &increase.sensor_events_by_cpu {
            let known = counts.sensor_lost_by_cpu.contains_key(&Some(lost.cpu));
            let cpu = if known || *cpu_series < MAX_CPU_SERIES {
                Some(lost.cpu)
            } else {
                None
            };
            let series = counts.sensor_lost_by_cpu.entry(cpu).or_insert_with(|| {
                *cpu_series += usize::from(cpu.is_some());
                0
            });
            *series = series.saturating_add(lost.lost);
        }
        counts.sensor_context = counts
            .sensor_context
            .combine(&increase.sensor_context, u64::saturating_add);
    }

    /// Records one request's latency.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let histogram = requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        histogram.count += 1;
        histogram.sum += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self, notify: &NotifyStats) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        counter(
            &mut out,
            "palisade_findings_ingested_total",
            "Finding reports received from agents, by what ingest did with them.",
            &[
                ("{outcome=\"created\"}", load(&self.created)),
                ("{outcome=\"aggregated\"}", load(&self.aggregated)),
                ("{outcome=\"suppressed\"}", load(&self.suppressed)),
                ("{outcome=\"duplicate\"}", load(&self.duplicates)),
            ],
        );
        counter(
            &mut out,
            "palisade_findings_suppressed_total",
            "Reports suppressed by whitelist rules.",
            &[("", load(&self.suppressed))],
        );
        let _ = writeln!(
            out,
            "# HELP palisade_events_dropped_total Events agents reported lost since the server started, by cluster, node and source: `sensor` (kernel events the sensor's ring buffer dropped) or `connect_reports` (reports of the firewall's connect programs). At most {MAX_NODE_SERIES} nodes have series of their own; the rest count under cluster=\"{OTHER_NODES}\",node=\"{OTHER_NODES}\".\n# TYPE palisade_events_dropped_total counter"
        );
        let node_losses = self
            .node_losses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((cluster, node), counts) in &node_losses.nodes {
            let (cluster, node) = (label_value(cluster), label_value(node));
            for (source, value) in ["sensor", "connect_reports"].iter().zip(counts.dropped) {
                let _ = writeln!(
                    out,
                    "palisade_events_dropped_total{{cluster=\"{cluster}\",node=\"{node}\",source=\"{source}\"}} {value}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP palisade_sensor_context_lost_total What agents' sensors reported they could not attach to the events they delivered, since the server started, by cluster, node and what: `container_metadata_missing` (held events sent without their container's metadata), `container_lookups_dropped` (container metadata look-ups not queued), `process_ancestors_evicted` (exited ancestors dropped from the full process table), `processes_untracked` (processes the full process table could not record: no ancestry), `held_ancestors_unattributed` (ancestors of held events named without their container), `names_files_cut` (user or group files read only up to 1 MiB: users and groups past it unnamed). Nodes as in palisade_events_dropped_total.\n# TYPE palisade_sensor_context_lost_total counter"
        );
        for ((cluster, node), counts) in &node_losses.nodes {
            let (cluster, node) = (label_value(cluster), label_value(node));
            let counts = counts.sensor_context.counts();
            for (what, value) in SensorContextLosses::NAMES.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "palisade_sensor_context_lost_total{{cluster=\"{cluster}\",node=\"{node}\",what=\"{what}\"}} {value}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP palisade_sensor_events_lost_total Kernel events agents' sensors lost since the server started (their ring buffer was full), by cluster, node and the CPU whose probes lost them; a CPU has a series from its first loss on. Per node they sum to palisade_events_dropped_total{{source=\"sensor\"}}, except for what agents from before these counts lost. Nodes as in palisade_events_dropped_total; at most {MAX_CPU_SERIES} series, a node's further CPUs counted under cpu=\"{OTHER_CPUS}\".\n# TYPE palisade_sensor_events_lost_total counter"
        );
        for ((cluster, node), counts) in &node_losses.nodes {
            let (cluster, node) = (label_value(cluster), label_value(node));
            for (cpu, value) in &counts.sensor_lost_by_cpu {
                let cpu = cpu.map_or_else(|| OTHER_CPUS.to_owned(), |cpu| cpu.to_string());
                let _ = writeln!(
                    out,
                    "palisade_sensor_events_lost_total{{cluster=\"{cluster}\",node=\"{node}\",cpu=\"{cpu}\"}} {value}"
                );
            }
        }
        drop(node_losses);
        counter(
            &mut out,
            "palisade_agent_batches_total",
            "Batches received from agents.",
            &[("", load(&self.batches))],
        );
        counter(
            &mut out,
            "palisade_agent_batches_deferred_total",
            "Agent batches answered 503 with Retry-After because the server held as many batch bytes as its budget allows, or as one agent may; the agents send them again.",
            &[("", load(&self.batches_deferred))],
        );
        let _ = writeln!(
            out,
            "# HELP palisade_notifications_total Notification deliveries by sink and result.\n# TYPE palisade_notifications_total counter"
        );
        for (index, (label, stats)) in notify.sinks.iter().enumerate() {
            for (result, value) in [
                ("sent", &stats.sent),
                ("retried", &stats.retried),
                ("failed", &stats.failed),
            ] {
                let _ = writeln!(
                    out,
                    "palisade_notifications_total{{sink=\"{label}\",index=\"{index}\",result=\"{result}\"}} {}",
                    load(value)
                );
            }
        }
        counter(
            &mut out,
            "palisade_notifications_dropped_total",
            "Notifications dropped because the queue was full.",
            &[("", load(&notify.dropped))],
        );
        let _ = writeln!(
            out,
            "# HELP palisade_http_request_duration_seconds API request latency.\n# TYPE palisade_http_request_duration_seconds histogram"
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((method, route, status), histogram) in requests.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            for (bucket, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "palisade_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {bucket}"
                );
            }
            let _ = writeln!(
                out,
                "palisade_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "palisade_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "palisade_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out
    }
}

/// `text` as a label value of Prometheus's text format: backslash, double quote and line feed
/// escaped (cluster and node names come from agents). Also used by `palisade agent --status
/// --output prometheus`.
pub fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use palisade_model::{CpuEventsLost, SensorContextLosses};
    use palisade_store::LossIncrease;

    use crate::metrics::{MAX_CPU_SERIES, MAX_NODE_SERIES, Metrics};

    fn series(metrics: &Metrics, name: &str) -> Vec<String> {
        metrics
            .render(&Default::default())
            .lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .map(str::to_owned)
            .collect()
    }

    fn drop_series(metrics: &Metrics) -> Vec<String> {
        series(metrics, "palisade_events_dropped_total")
    }

    /// Each node has its two series, names are escaped, and nodes beyond the bound share
    /// one pair of series.
    #[test]
    fn drop_counts_are_per_node_and_bounded() {
        let metrics = Metrics::default();
        let lost = |sensor_events, connect_reports| LossIncrease {
            sensor_events,
            connect_reports,
            ..LossIncrease::default()
        };
        metrics.record_node_losses("prod", "node-1", lost(3, 0));
        metrics.record_node_losses("prod", "node-1", lost(1, 7));
        metrics.record_node_losses("prod", "a \"quoted\"\\node\n", lost(0, 0));
        assert_eq!(
            drop_series(&metrics),
            [
                r#"palisade_events_dropped_total{cluster="prod",node="a \"quoted\"\\node\n",source="sensor"} 0"#,
                r#"palisade_events_dropped_total{cluster="prod",node="a \"quoted\"\\node\n",source="connect_reports"} 0"#,
                r#"palisade_events_dropped_total{cluster="prod",node="node-1",source="sensor"} 4"#,
                r#"palisade_events_dropped_total{cluster="prod",node="node-1",source="connect_reports"} 7"#,
            ]
        );
        for index in 0..MAX_NODE_SERIES + 10 {
            metrics.record_node_losses("big", &format!("node-{index}"), lost(1, 2));
        }
        let series = drop_series(&metrics);
        assert_eq!(series.len(), 2 * (MAX_NODE_SERIES + 1));
        // node-1 and the quoted node took two of the places: 12 of the big cluster's nodes
        // are counted together.
        assert!(series.contains(
            &r#"palisade_events_dropped_total{cluster="*",node="*",source="connect_reports"} 24"#
                .to_owned()
        ));
        metrics.record_node_losses("prod", "node-1", lost(1, 0));
        assert!(
            drop_series(&metrics).contains(
                &r#"palisade_events_dropped_total{cluster="prod",node="node-1",source="sensor"} 5"#
                    .to_owned()
            )
        );
    }

    /// The sensor's context losses are counted per node and named, beside the drop series
    /// of the same node.
    #[test]
    fn sensor_context_losses_are_per_node_and_named() {
        let metrics = Metrics::default();
        let lost = |counts| LossIncrease {
            sensor_context: SensorContextLosses::from_counts(counts),
            ..LossIncrease::default()
        };
        metrics.record_node_losses("prod", "node-1", lost([1, 0, 0, 2, 5, 0]));
        metrics.record_node_losses("prod", "node-1", lost([0, 3, 0, 0, 1, 1]));
        assert_eq!(
            series(&metrics, "palisade_sensor_context_lost_total"),
            [
                r#"palisade_sensor_context_lost_total{cluster="prod",node="node-1",what="container_metadata_missing"} 1"#,
                r#"palisade_sensor_context_lost_total{cluster="prod",node="node-1",what="container_lookups_dropped"} 3"#,
                r#"palisade_sensor_context_lost_total{cluster="prod",node="node-1",what="process_ancestors_evicted"} 0"#,
                r#"palisade_sensor_context_lost_total{cluster="prod",node="node-1",what="processes_untracked"} 2"#,
                r#"palisade_sensor_context_lost_total{cluster="prod",node="node-1",what="held_ancestors_unattributed"} 6"#,
                r#"palisade_sensor_context_lost_total{cluster="prod",node="node-1",what="names_files_cut"} 1"#,
            ]
        );
        assert_eq!(
            drop_series(&metrics).len(),
            2,
            "{:?}",
            drop_series(&metrics)
        );
    }

    fn on_cpus(pairs: &[(u32, u64)]) -> LossIncrease {
        let sensor_events_by_cpu: Vec<CpuEventsLost> = pairs
            .iter()
            .map(|&(cpu, lost)| CpuEventsLost { cpu, lost })
            .collect();
        LossIncrease {
            sensor_events: pairs.iter().map(|pair| pair.1).sum(),
            sensor_events_by_cpu,
            ..LossIncrease::default()
        }
    }

    /// The lost events are counted per node and CPU, a CPU from its first loss on, and sum to
    /// the node's sensor drop series.
    #[test]
    fn lost_events_are_per_node_and_cpu() {
        let metrics = Metrics::default();
        metrics.record_node_losses("prod", "node-1", on_cpus(&[(1, 40)]));
        metrics.record_node_losses("prod", "node-1", on_cpus(&[(0, 2), (1, 5)]));
        metrics.record_node_losses("prod", "node-2", on_cpus(&[]));
        metrics.record_node_losses("prod", "node-2", on_cpus(&[(3, 7)]));
        assert_eq!(
            series(&metrics, "palisade_sensor_events_lost_total"),
            [
                r#"palisade_sensor_events_lost_total{cluster="prod",node="node-1",cpu="0"} 2"#,
                r#"palisade_sensor_events_lost_total{cluster="prod",node="node-1",cpu="1"} 45"#,
                r#"palisade_sensor_events_lost_total{cluster="prod",node="node-2",cpu="3"} 7"#,
            ]
        );
        let sensor_drops: Vec<String> = drop_series(&metrics)
            .into_iter()
            .filter(|series| series.contains("source=\"sensor\""))
            .collect();
        assert_eq!(
            sensor_drops,
            [
                r#"palisade_events_dropped_total{cluster="prod",node="node-1",source="sensor"} 47"#,
                r#"palisade_events_dropped_total{cluster="prod",node="node-2",source="sensor"} 7"#,
            ]
        );
    }

    /// Past the bound of CPU series, a node's further CPUs are counted in its `cpu="*"`
    /// series, while the CPUs with a series keep counting in it.
    #[test]
    fn cpu_series_are_bounded() {
        let metrics = Metrics::default();
        let every_cpu: Vec<(u32, u64)> = (0..8_192).map(|cpu| (cpu, 1)).collect();
        // Nodes of 8,192 CPUs each fill the bound; the next node's CPUs share a series.
        for node in 0..MAX_CPU_SERIES / 8_192 {
            metrics.record_node_losses("big", &format!("full-{node}"), on_cpus(&every_cpu));
        }
        metrics.record_node_losses("big", "c", on_cpus(&[(0, 1), (5, 2)]));
        metrics.record_node_losses("big", "full-0", on_cpus(&[(7, 10)]));
        let series = series(&metrics, "palisade_sensor_events_lost_total");
        assert_eq!(series.len(), MAX_CPU_SERIES + 1);
        assert!(series.contains(
            &r#"palisade_sensor_events_lost_total{cluster="big",node="c",cpu="*"} 3"#.to_owned()
        ));
        assert!(
            series.contains(
                &r#"palisade_sensor_events_lost_total{cluster="big",node="full-0",cpu="7"} 11"#
                    .to_owned()
            )
        );
    }
}
