//! The sensor's lost events end to end, for real: `palisade up` as root with a deliberately
//! tiny ring buffer, and a storm of opens pinned to CPU 1. The events that CPU's probes lost
//! reach the server through the agent's link and show in `/metrics` under `cpu="1"`, the
//! per-CPU series summing to the node's sensor drop series; the agent raises its
//! `Kernel events lost` alert; and `palisade agent --status --output prometheus` (what a
//! Prometheus user of a lone agent scrapes through node_exporter's textfile collector) shows
//! the same losses per CPU.

mod support;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use palisade_testdata::{Palisade, Ready};
use serde_json::Value;

const ADMIN: &str = "sensor-losses-test-admin-token";

fn can_run_ebpf_on_two_cpus() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    palisade_testdata::capability(
        "root, a kernel with BTF (eBPF) and two CPUs",
        is_root && Path::new("/sys/kernel/btf/vmlinux").exists() && cpus >= 2,
    )
}

/// The body of the server's answer to `GET path?query`, as the admin.
async fn get(client: &reqwest::Client, base: &str, path: &str, query: &[(&str, &str)]) -> String {
    let response = client
        .get(format!("{base}{path}"))
        .query(query)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    response.text().await.unwrap()
}

/// The samples of metric `name` whose labels start with `labels`, by the rest of their
/// labels, from the server's `/metrics`.
async fn samples(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    labels: &str,
) -> Vec<(String, u64)> {
    let text = get(client, base, "/metrics", &[]).await;
    let prefix = format!("{name}{{{labels}");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.trim_end_matches('}').to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn events_lost_on_one_cpu_show_under_its_label_and_raise_the_alert() {
    if !can_run_ebpf_on_two_cpus() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["up", "--cluster", "losses"])
        .args(["--sensor-ring-buffer-bytes", "4096"])
        .env("PALISADE_LOG", "error");
    let up = Palisade::start(command, dir.path(), ADMIN, Ready::SensorStarted);
    let agent_dir = dir.path().join("agent");
    let client = reqwest::Client::new();
    // The agent enrolls once its sensor runs.
    let enrolled = Instant::now();
    let node = loop {
        let agents: Value =
            serde_json::from_str(&get(&client, &up.base, "/api/v1/agents", &[]).await).unwrap();
        if let Some(name) = agents[0]["name"].as_str() {
            break name.to_owned();
        }
        assert!(
            enrolled.elapsed() < Duration::from_secs(30),
            "no agent enrolled: {agents}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let node_labels = format!("cluster=\"losses\",node=\"{node}\",");

    // Storms of opens on CPU 1 until its series shows losses, its series and the others'
    // summing to the node's sensor drops (they travel in the same batches) and the alert is
    // in: a 4 KiB ring holds a handful of events, and the agent reads it every 200 ms.
    let started = Instant::now();
    let (by_cpu, alert) = loop {
        let storm = Command::new("taskset")
            .args(["-c", "1", "/bin/sh", "-c"])
            .arg("i=0; while [ $i -lt 20000 ]; do : < /etc/hostname; i=$((i+1)); done")
            .status()
            .unwrap();
        assert!(storm.success());
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let by_cpu = samples(
            &client,
            &up.base,
            "palisade_sensor_events_lost_total",
            &node_labels,
        )
        .await;
        let total = samples(
            &client,
            &up.base,
            "palisade_events_dropped_total",
            &node_labels,
        )
        .await
        .into_iter()
        .find(|(labels, _)| labels == "source=\"sensor\"")
        .map(|(_, value)| value);
        let query = [("rule", "Kernel events lost"), ("cluster", "losses")];
        let alerts: Value =
            serde_json::from_str(&get(&client, &up.base, "/api/v1/alerts", &query).await).unwrap();
        let alert = alerts["items"]
            .as_array()
            .and_then(|items| items.first())
            .cloned();
        let cpu_1 = by_cpu.iter().find(|(labels, _)| labels == "cpu=\"1\"");
        if cpu_1.is_some_and(|(_, lost)| *lost > 0)
            && total == Some(by_cpu.iter().map(|(_, lost)| lost).sum())
            && let Some(alert) = alert
        {
            break (by_cpu, alert);
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no loss on CPU 1 in the metrics after 90 s of storms: {by_cpu:?}, total {total:?}, alert {alert:?}"
        );
    };
    assert!(
        by_cpu
            .iter()
            .all(|(labels, lost)| labels.starts_with("cpu=\"") && *lost > 0),
        "only CPUs that lost events have series: {by_cpu:?}"
    );
    assert_eq!(alert["asset"]["node"], node.as_str(), "{alert:#}");
    assert!(
        alert["details"]["raw_event"]["events_lost"]
            .as_u64()
            .unwrap()
            > 0,
        "{alert:#}"
    );

    // The same losses, per CPU, from the agent's own status as Prometheus text: the status
    // file is rewritten every 2 s, so it may trail what the server counted for a moment.
    let reported = by_cpu
        .iter()
        .find(|(labels, _)| labels == "cpu=\"1\"")
        .map(|(_, lost)| *lost);
    let refreshed = Instant::now();
    let text = loop {
        let output = support::agent_status(&agent_dir, "prometheus");
        let text = String::from_utf8(output.stdout).unwrap();
        let lost_on_cpu_1 = text
            .lines()
            .find_map(|line| {
                line.strip_prefix("palisade_agent_sensor_events_lost_total{cpu=\"1\"} ")
            })
            .and_then(|value| value.parse::<u64>().ok());
        if lost_on_cpu_1 >= reported {
            break text;
        }
        assert!(
            refreshed.elapsed() < Duration::from_secs(10),
            "the status counts less than the server has: {lost_on_cpu_1:?} < {reported:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        text.contains("palisade_agent_sensor_running{backend=\"ebpf\"} 1"),
        "{text}"
    );
}
