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

use palisade_notify::NotifyStats;
use palisade_store::IngestOutcome;

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    created: AtomicU64,
    aggregated: AtomicU64,
    suppressed: AtomicU64,
    duplicates: AtomicU64,
    events_dropped: AtomicU64,
    batches: AtomicU64,
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
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

    /// Adds events that an agent reported as lost (kernel ring buffer overflows, ...).
    pub fn record_dropped_events(&self, count: u64) {
        self.events_dropped.fetch_add(count, Ordering::Relaxed);
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
        counter(
            &mut out,
            "palisade_events_dropped_total",
            "Kernel events that agents reported lost.",
            &[("", load(&self.events_dropped))],
        );
        counter(
            &mut out,
            "palisade_agent_batches_total",
            "Batches received from agents.",
            &[("", load(&self.batches))],
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
