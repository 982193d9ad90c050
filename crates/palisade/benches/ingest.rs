//! Sustained ingest through the agent link into SQLite.
//!
//! `cargo bench -p palisade --bench ingest [-- COUNT] [--in-flight=N] [--batch-size=B]
//! [--distinct=D] [--stored=S]` fills an agent outbox with COUNT alerts (default 300,000; not
//! timed), then starts a server (TLS, HTTP/2, SQLite on disk) and an agent in this process, as
//! `palisade up` does, and times how long the agent takes to deliver everything: outbox read,
//! HTTPS batches, whitelist check, aggregation, SQLite commit, acknowledgement, outbox delete.
//! Batches hold B reports (default 20,000, the most a batch may hold).
//!
//! With `--stored=S` the server's database already holds S other alerts (S findings of the
//! same pods, two hours older, stored through the store before the timing starts): a
//! sustained rate must hold as the database grows, where each new alert enters larger
//! indexes.
//!
//! By default every alert is a new finding: the worst case, where each one adds a row to every
//! index. With `--distinct=D` the alerts repeat D processes' alerts (same rule, pod and command
//! line), as a sensor's stream mostly does, so they aggregate into D findings: each repeat
//! raises a finding's count and last-seen time.
//!
//! Besides the rate it prints the CPU time per alert by thread and the time the process's
//! threads waited, runnable, for a CPU (on a loaded machine that exceeds the CPU time), the
//! bytes the process wrote while it delivered (all `write` calls, and what reached the disk:
//! the WAL's commits and checkpoints, the outbox), and its peak resident memory meanwhile
//! (agent and server together, sampled every 50 ms). With
//! `RUST_LOG` set (`RUST_LOG=palisade_agent=debug`, say) the process's log events go to
//! stderr with their time since the start.

use std::{sync::Arc, time::Instant};

use palisade_agent::{AgentConfig, AgentStatus, Outbox};
use palisade_model::{
    AffectedAsset, AlertDetails, Details, FindingReport, ProcessInfo, Severity, Timestamp,
};
use palisade_notify::Notifier;
use palisade_server::{AppState, issue_join_token, router, serve, tls};
use palisade_store::{FindingQuery, HandlingPolicy, SqliteStore, Store};

/// Alert number `index`; it repeats alert `index % distinct`'s finding.
fn report(index: u64, distinct: u64, now: i64) -> FindingReport {
    let key = index % distinct;
    let pod = key % 5_000;
    FindingReport {
        // Time-ordered, as the agent's detector makes them.
        id: uuid::Uuid::now_v7(),
        observed_at: Timestamp(now),
        severity: Severity::ALL[(key % 5) as usize],
        rule: [
            "Terminal shell in container",
            "Read sensitive file untrusted",
            "Write below binary dir",
        ][(key % 3) as usize]
            .into(),
        title: format!("alert {key} in web-{pod}"),
        asset: AffectedAsset {
            cluster: "bench".into(),
            node: Some(format!("node-{}", pod % 50)),
            namespace: Some(format!("team-{}", pod % 20)),
            pod: Some(format!("web-{pod}")),
            container_name: Some("app".into()),
            image: Some("registry.example/shop/web:1.4.2".into()),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                pid: 100 + (key % 60_000) as u32,
                ppid: 1,
                exe: "/bin/sh".into(),
                cmdline: format!("sh -c job-{key}"),
                user: "root".into(),
            },
            raw_event: serde_json::json!({"evt.type": "execve", "proc.name": "sh", "proc.pid": index}),
            ..Default::default()
        }),
        demo: false,
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_thread_names(true)
            .with_writer(std::io::stderr)
            .init();
    }
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(300_000);
    // Batches the agent keeps on the way (its default unless given).
    let in_flight: Option<usize> =
        std::env::args().find_map(|arg| arg.strip_prefix("--in-flight=")?.parse().ok());
    // Reports per batch (20,000, the most a batch may hold, unless given).
    let batch_size: usize = std::env::args()
        .find_map(|arg| arg.strip_prefix("--batch-size=")?.parse().ok())
        .unwrap_or(palisade_model::MAX_BATCH_REPORTS);
    let distinct: u64 = std::env::args()
        .find_map(|arg| arg.strip_prefix("--distinct=")?.parse().ok())
        .unwrap_or(count)
        .clamp(1, count.max(1));
    let stored: u64 = std::env::args()
        .find_map(|arg| arg.strip_prefix("--stored=")?.parse().ok())
        .unwrap_or(0);
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now().millis();

    let outbox = Outbox::open(&dir.path().join("agent")).await.unwrap();
    let mut index = 0;
    while index < count {
        let chunk: Vec<_> = (index..(index + 10_000).min(count))
            .map(|i| report(i, distinct, now))
            .collect();
        outbox.push(&chunk).await.unwrap();
        index += chunk.len() as u64;
    }

    let store = Arc::new(
        SqliteStore::open(&dir.path().join("server/palisade.db"))
            .await
            .unwrap(),
    );
    store_older_alerts(store.as_ref(), count, stored, now).await;
    let join_token = issue_join_token(store.as_ref(), "bench").await.unwrap();
    let pki = tls::ensure_pki(&dir.path().join("tls"), &["127.0.0.1".into()]).unwrap();
    let state = AppState::new(store.clone(), Notifier::start(Default::default()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let server_tls = tls::server_config(&pki.server_cert, &pki.server_key).unwrap();
    tokio::spawn(serve(
        listener,
        router(state),
        Some(server_tls),
        std::future::pending(),
    ));

    let mut config = AgentConfig::new(url, dir.path().join("agent"), "bench", "bench-node");
    config.ca_cert = Some(pki.ca_cert.clone());
    config.join_token = Some(join_token);
    config.batch_size = batch_size;
    if let Some(in_flight) = in_flight {
        config.batches_in_flight = in_flight;
    }
    let in_flight = config.batches_in_flight;
    let status = Arc::new(AgentStatus::default());
    let agent_status = Arc::clone(&status);
    // On stderr, for profilers that attach now (`perf record -p`): the outbox is full.
    eprintln!("delivering {count} alerts");
    let threads_before = thread_cpu();
    let written_before = ProcessWrites::now();
    let started = Instant::now();
    let agent = tokio::spawn(async move {
        palisade_agent::run(config, outbox, &agent_status, std::future::pending()).await
    });
    let mut peak_resident = resident_bytes();
    let mut sampled = Instant::now();
    while status
        .acknowledged
        .load(std::sync::atomic::Ordering::Relaxed)
        < count
    {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        if sampled.elapsed() >= std::time::Duration::from_millis(50) {
            peak_resident = peak_resident.max(resident_bytes());
            sampled = Instant::now();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let threads_after = thread_cpu();
    let written_after = ProcessWrites::now();
    // On stderr, for profilers: the timed part is over.
    eprintln!("delivered");
    agent.abort();
    // Every alert stored once: `distinct` findings whose counts add up to `count`.
    let (mut findings, mut alerts) = (0_u64, 0_u64);
    let mut query = FindingQuery {
        limit: palisade_store::MAX_PAGE_SIZE,
        ..Default::default()
    };
    loop {
        let page = store
            .list_findings(palisade_model::FindingKind::Alert, &query)
            .await
            .unwrap();
        findings += page.items.len() as u64;
        alerts += page.items.iter().map(|finding| finding.count).sum::<u64>();
        let Some(next) = page.next_cursor else { break };
        query.cursor = Some(palisade_store::Cursor::decode(&next).unwrap());
    }
    assert_eq!(
        (findings, alerts),
        (distinct + stored, count + stored),
        "every alert stored once"
    );
    println!(
        "ingest through the agent link ({in_flight} batches in flight): {count} alerts ({distinct} findings) in {seconds:.2} s = {:.0} alerts/s",
        count as f64 / seconds
    );
    // CPU time per alert does not depend on what else the machine runs as much as the rate
    // does: the whole process's, and the busiest thread's (SQLite's writer, which bounds the
    // rate on any number of cores).
    let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
    let mut busiest = (String::new(), 0);
    let mut runnable = 0;
    for (tid, (name, after)) in threads_after {
        let before = threads_before
            .get(&tid)
            .map(|(_, before)| *before)
            .unwrap_or_default();
        let spent = after.on_cpu.saturating_sub(before.on_cpu);
        runnable += after.runnable.saturating_sub(before.runnable);
        if spent > busiest.1 {
            busiest = (name.clone(), spent);
        }
        *by_name.entry(name).or_default() += spent;
    }
    let per_alert = |ns: u64| ns as f64 / count as f64 / 1_000.0;
    println!(
        "CPU per alert: {:.1} µs in all threads, {:.1} µs in the busiest ({}); waiting for a CPU while runnable: {:.1} µs",
        per_alert(by_name.values().sum()),
        per_alert(busiest.1),
        busiest.0,
        per_alert(runnable),
    );
    // Where it goes: tokio's workers (HTTP, decoding, ingest's Rust side), SQLite's worker
    // threads (one per connection: the server's writer, the outbox's), the main thread.
    let mut by_name: Vec<_> = by_name.into_iter().filter(|(_, ns)| *ns > 0).collect();
    by_name.sort_by_key(|(_, ns)| std::cmp::Reverse(*ns));
    let threads: Vec<String> = by_name
        .iter()
        .map(|(name, ns)| format!("{name} {:.1}", per_alert(*ns)))
        .collect();
    println!("  by thread name (µs per alert): {}", threads.join(", "));
    let megabytes = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "written while delivering: {:.0} MB in write calls, {:.0} MB to the disk; peak resident memory {:.0} MB",
        megabytes(written_after.called - written_before.called),
        megabytes(written_after.to_disk - written_before.to_disk),
        megabytes(peak_resident),
    );
}

/// What this process wrote so far, from `/proc/self/io`.
#[derive(Clone, Copy)]
struct ProcessWrites {
    /// Bytes passed to `write` and its kind (`wchar`), page cache included.
    called: u64,
    /// Bytes the process caused to be sent to the disk (`write_bytes`).
    to_disk: u64,
}

impl ProcessWrites {
    fn now() -> ProcessWrites {
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let field = |name: &str| {
            io.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        ProcessWrites {
            called: field("wchar:"),
            to_disk: field("write_bytes:"),
        }
    }
}

/// This process's resident memory now (`VmRSS` of `/proc/self/status`), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            let kib: u64 = line
                .strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

/// Stores `stored` alerts of findings of their own (numbered after the `count` timed ones, two
/// hours older, so none aggregates with them) through the store, in the agent's batch size.
async fn store_older_alerts(store: &SqliteStore, count: u64, stored: u64, now: i64) {
    if stored == 0 {
        return;
    }
    let started = Instant::now();
    let older = now - 2 * 3_600_000;
    let policy = HandlingPolicy::default();
    let mut index = 0;
    while index < stored {
        let batch: Vec<_> = (index..(index + 5_000).min(stored))
            .map(|i| report(count + i, u64::MAX, older))
            .collect();
        let outcome = store.ingest(&batch, &policy).await.unwrap();
        assert_eq!(
            outcome.created,
            batch.len() as u64,
            "older alerts are new findings"
        );
        index += batch.len() as u64;
    }
    eprintln!(
        "stored {stored} older alerts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A thread's scheduler times so far, in nanoseconds.
#[derive(Clone, Copy, Default)]
struct ThreadTimes {
    on_cpu: u64,
    /// Runnable but waiting on a run queue for a CPU.
    runnable: u64,
}

/// Each thread of this process: id → (name, its times), from `/proc/self/task/*/schedstat`.
fn thread_cpu() -> std::collections::HashMap<u64, (String, ThreadTimes)> {
    let mut threads = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|tid| tid.parse().ok()) else {
            continue;
        };
        let read = |file: &str| std::fs::read_to_string(entry.path().join(file)).ok();
        let (Some(name), Some(schedstat)) = (read("comm"), read("schedstat")) else {
            continue;
        };
        let mut fields = schedstat
            .split_whitespace()
            .map(|ns| ns.parse().unwrap_or(0));
        let times = ThreadTimes {
            on_cpu: fields.next().unwrap_or(0),
            runnable: fields.next().unwrap_or(0),
        };
        threads.insert(tid, (name.trim().to_owned(), times));
    }
    threads
}
