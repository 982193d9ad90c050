//! Store behaviour on a real SQLite file: ingest, aggregation, handling, pagination, audit.

use std::collections::HashSet;

use palisade_model::{
    AffectedAsset, AlertCategory, AlertDetails, AuditEntry, BaselineCategory, BaselineDetails,
    Details, Evidence, Exception, FindingKind, FindingReport, MatchOperator, NewException,
    NewWhitelistRule, ProcessInfo, Role, Severity, Status, Timestamp, WhitelistRule,
    WhitelistScope,
};
use palisade_store::{
    Cursor, FindingQuery, HandlingPolicy, Selection, SortKey, SortOrder, SqliteStore, Store,
};
use uuid::Uuid;

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db/palisade.db"))
        .await
        .unwrap();
    (dir, store)
}

fn alert(pod: &str, exe: &str, at: i64, severity: Severity) -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp(at),
        severity,
        rule: "Terminal shell in container".into(),
        title: format!("shell in {pod}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some("shop".into()),
            pod: Some(pod.into()),
            container_name: Some("web".into()),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                exe: exe.into(),
                cmdline: format!("{exe} -i"),
                ..Default::default()
            },
            raw_event: serde_json::json!({"n": at}),
            ..Default::default()
        }),
        demo: false,
    }
}

/// A vulnerability of openssl in image shop/web:1 (one finding per `id`), fixed in `fixed`.
fn vulnerability(id: &str, fixed: &[&str]) -> FindingReport {
    FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: id.into(),
        title: format!("{id}: openssl fixed in {}", fixed.join(" or ")),
        asset: AffectedAsset {
            cluster: "prod".into(),
            image: Some("shop/web:1".into()),
            ..Default::default()
        },
        details: Details::Vulnerability(palisade_model::VulnerabilityDetails {
            package: "openssl".into(),
            ecosystem: "Debian:12".into(),
            installed_version: "3.0.1-1".into(),
            fixed_versions: fixed.iter().map(|version| version.to_string()).collect(),
            ..Default::default()
        }),
        demo: false,
    }
}

/// The baseline risks in `status`.
async fn baseline_risks(store: &SqliteStore, status: Status) -> Vec<palisade_model::Finding> {
    let query = FindingQuery {
        statuses: vec![status],
        ..Default::default()
    };
    store
        .list_findings(FindingKind::BaselineRisk, &query)
        .await
        .unwrap()
        .items
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        id: Uuid::now_v7(),
        at: Timestamp::now(),
        actor: "alice".into(),
        role: Role::Operator,
        action: action.into(),
        target_kind: "alert".into(),
        target_id: String::new(),
        reason: "test".into(),
        details: serde_json::json!({}),
    }
}

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn ingest_is_idempotent_and_aggregates_within_window() {
    let (_dir, store) = store().await;
    let policy = HandlingPolicy::default();
    let first = alert("web-1", "/bin/sh", 10 * HOUR, Severity::High);
    let outcome = store
        .ingest(&[first.clone(), first.clone()], &policy)
        .await
        .unwrap();
    assert_eq!((outcome.created, outcome.duplicates), (1, 1));

    // The same batch again (an agent retrying after a lost acknowledgement).
    let outcome = store
        .ingest(std::slice::from_ref(&first), &policy)
        .await
        .unwrap();
    assert_eq!(
        (outcome.created, outcome.aggregated, outcome.duplicates),
        (0, 0, 1)
    );

    // A repeat 30 minutes later aggregates; one 2 hours after that starts a new row.
    let repeat = alert("web-1", "/bin/sh", 10 * HOUR + HOUR / 2, Severity::Critical);
    let later = alert("web-1", "/bin/sh", 13 * HOUR, Severity::High);
    let other_process = alert("web-1", "/bin/bash", 10 * HOUR, Severity::High);
    let outcome = store
        .ingest(&[repeat, later, other_process], &policy)
        .await
        .unwrap();
    assert_eq!((outcome.created, outcome.aggregated), (2, 1));

    let page = store
        .list_findings(
            FindingKind::Alert,
            &FindingQuery {
                sort: SortKey::Count,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let aggregated = &page.items[0];
    assert_eq!(aggregated.count, 2);
    assert_eq!(aggregated.first_seen, Timestamp(10 * HOUR));
    assert_eq!(aggregated.last_seen, Timestamp(10 * HOUR + HOUR / 2));
    assert_eq!(
        aggregated.severity,
        Severity::Critical,
        "severity rises to the worst repeat"
    );
    let Details::Alert(details) = &aggregated.details else {
        panic!("not an alert")
    };
    assert_eq!(
        details.raw_event["n"],
        10 * HOUR,
        "the first raw event is kept"
    );
}

#[tokio::test]
async fn pagination_filters_and_sorting_cover_every_row_once() {
    let (_dir, store) = store().await;
    let reports: Vec<_> = (0..237)
        .map(|index| {
            let severity = Severity::ALL[index % 5];
            alert(
                &format!("pod-{index}"),
                "/bin/sh",
                1_000 + (index as i64 % 17) * 1000,
                severity,
            )
        })
        .collect();
    store
        .ingest(&reports, &HandlingPolicy::default())
        .await
        .unwrap();

    for (sort, order) in [
        (SortKey::LastSeen, SortOrder::Desc),
        (SortKey::Severity, SortOrder::Asc),
    ] {
        let mut query = FindingQuery {
            severities: vec![Severity::High, Severity::Critical],
            sort,
            order,
            limit: 10,
            ..Default::default()
        };
        let mut seen = HashSet::new();
        let mut previous: Option<(i64, Uuid)> = None;
        loop {
            let page = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap();
            for finding in &page.items {
                assert!(matches!(
                    finding.severity,
                    Severity::High | Severity::Critical
                ));
                assert!(seen.insert(finding.id), "a finding appeared on two pages");
                let key = match sort {
                    SortKey::LastSeen => finding.last_seen.millis(),
                    _ => finding.severity.rank(),
                };
                if let Some(previous) = previous {
                    let in_order = match order {
                        SortOrder::Desc => previous >= (key, finding.id),
                        SortOrder::Asc => previous <= (key, finding.id),
                    };
                    assert!(in_order, "out of order: {previous:?} then {key}");
                }
                previous = Some((key, finding.id));
            }
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(Cursor::decode(&cursor).unwrap()),
                None => break,
            }
        }
        let expected = reports
            .iter()
            .filter(|report| report.severity >= Severity::High)
            .count();
        assert_eq!(seen.len(), expected);
    }
}

#[tokio::test]
async fn hostile_filter_values_are_data_not_sql() {
    let (_dir, store) = store().await;
    store
        .ingest(
            &[alert("web-1", "/bin/sh", 1, Severity::Low)],
            &HandlingPolicy::default(),
        )
        .await
        .unwrap();
    for hostile in [
        "' OR 1=1 --",
        "%",
        "_",
        "\\",
        "shop'; DROP TABLE findings; --",
    ] {
        let query = FindingQuery {
            namespace: Some(hostile.into()),
            text: Some(hostile.into()),
            ..Default::default()
        };
        assert!(
            store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
    // `%` in a text search is literal, not a wildcard.
    let literal = FindingQuery {
        text: Some("%".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_findings(FindingKind::Alert, &literal)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let text = FindingQuery {
        text: Some("SHELL IN WEB".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_findings(FindingKind::Alert, &text)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn whitelist_preview_closes_and_suppresses() {
    let (_dir, store) = store().await;
    let reports = [
        alert("web-1", "/usr/bin/bash", 1, Severity::High),
        alert("web-2", "/usr/bin/bash", 1, Severity::High),
        alert("web-3", "/bin/sh", 1, Severity::High),
    ];
    store
        .ingest(&reports, &HandlingPolicy::default())
        .await
        .unwrap();
    let new_rule = NewWhitelistRule {
        kind: FindingKind::Alert,
        field: "process.exe".into(),
        operator: MatchOperator::Regex,
        value: "bash$".into(),
        scope: WhitelistScope::AllAssets,
        reason: "admins debug with bash".into(),
    };
    let matcher = new_rule.compile().unwrap();
    assert_eq!(store.count_whitelist_matches(&matcher).await.unwrap(), 2);
    let rule = WhitelistRule {
        id: Uuid::now_v7(),
        rule: new_rule,
        created_by: "alice".into(),
        created_at: Timestamp::now(),
        hits: 0,
    };
    assert_eq!(
        store
            .create_whitelist_rule(&rule, &matcher, &audit("whitelist.create"))
            .await
            .unwrap(),
        2
    );
    let open = FindingQuery {
        statuses: vec![Status::Open],
        ..Default::default()
    };
    let page = store
        .list_findings(FindingKind::Alert, &open)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].asset.pod.as_deref(), Some("web-3"));

    let policy = HandlingPolicy {
        whitelist: vec![(rule.id, matcher)],
        exceptions: vec![],
    };
    let outcome = store
        .ingest(
            &[alert("web-9", "/usr/bin/bash", 2, Severity::High)],
            &policy,
        )
        .await
        .unwrap();
    assert_eq!((outcome.suppressed, outcome.created), (1, 0));
    let rules = store.whitelist_rules().await.unwrap();
    assert_eq!(rules[0].hits, 3, "two closed and one suppressed");

    let log = store.audit_log(&Default::default()).await.unwrap();
    assert_eq!(log.items[0].action, "whitelist.create");
    assert_eq!(log.items[0].details["closed"], 2);
}

#[tokio::test]
async fn ignore_undo_and_handle_similar() {
    let (_dir, store) = store().await;
    let reports = [
        alert("web-1", "/bin/sh", 1, Severity::High),
        alert("web-2", "/bin/sh", 1, Severity::High),
        alert("web-2", "/bin/bash", 1, Severity::High),
    ];
    let outcome = store
        .ingest(&reports, &HandlingPolicy::default())
        .await
        .unwrap();
    let first = outcome.created_ids[0].1;
    let ignored = store
        .set_status(
            FindingKind::Alert,
            &Selection::Ids(vec![first]),
            &[Status::Open],
            Status::Ignored,
            &audit("alert.ignore"),
        )
        .await
        .unwrap();
    assert_eq!(ignored, 1);
    assert_eq!(
        store
            .get_finding(FindingKind::Alert, first)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Ignored
    );
    // Wrong kind: not found, and no status change through another kind's endpoint.
    assert!(
        store
            .get_finding(FindingKind::Vulnerability, first)
            .await
            .unwrap()
            .is_none()
    );
    let undone = store
        .set_status(
            FindingKind::Alert,
            &Selection::Ids(vec![first]),
            &[Status::Ignored],
            Status::Open,
            &audit("alert.unignore"),
        )
        .await
        .unwrap();
    assert_eq!(undone, 1);

    let similar = Selection::Similar {
        rule: "Terminal shell in container".into(),
        asset_id: None,
    };
    let handled = store
        .set_status(
            FindingKind::Alert,
            &similar,
            &[Status::Open],
            Status::Handled,
            &audit("alert.handle_similar"),
        )
        .await
        .unwrap();
    assert_eq!(handled, 3);
    let log = store.audit_log(&Default::default()).await.unwrap();
    let actions: Vec<_> = log
        .items
        .iter()
        .map(|entry| entry.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["alert.handle_similar", "alert.unignore", "alert.ignore"]
    );
}

#[tokio::test]
async fn exceptions_cover_and_expire() {
    let (_dir, store) = store().await;
    let risk_of = |namespace: &str, workload: &str| FindingReport {
        id: Uuid::new_v4(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "privileged".into(),
        title: "Privileged container".into(),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some(namespace.into()),
            workload: Some(workload.into()),
            ..Default::default()
        },
        details: Details::BaselineRisk(BaselineDetails {
            category: BaselineCategory::Workload,
            description: String::new(),
            remediation: String::new(),
            evidence: vec![Evidence {
                path: "spec.containers[0].securityContext.privileged".into(),
                value: "true".into(),
                ..Default::default()
            }],
        }),
        demo: false,
    };
    let risk = |namespace: &str| risk_of(namespace, "Deployment/web");
    store
        .ingest(&[risk("shop"), risk("billing")], &HandlingPolicy::default())
        .await
        .unwrap();
    let exception = Exception {
        id: Uuid::now_v7(),
        exception: NewException {
            check: "privileged".into(),
            cluster: None,
            namespace: Some("shop".into()),
            name: None,
            container: None,
            asset_id: None,
            labels: Default::default(),
            reason: "CNI plugin".into(),
            owner: "platform".into(),
            expires_at: Some(Timestamp(Timestamp::now().millis() + 60_000)),
        },
        created_by: "admin".into(),
        created_at: Timestamp::now(),
    };
    assert_eq!(
        store
            .create_exception(&exception, &audit("exception.create"))
            .await
            .unwrap(),
        1
    );
    // A new report for the excepted object arrives excepted; the other namespace stays open.
    let policy = HandlingPolicy {
        whitelist: vec![],
        exceptions: vec![exception.clone()],
    };
    store.ingest(&[risk("shop")], &policy).await.unwrap();
    let excepted = FindingQuery {
        statuses: vec![Status::Excepted],
        ..Default::default()
    };
    assert_eq!(
        store
            .list_findings(FindingKind::BaselineRisk, &excepted)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // New findings: the covered one is created excepted, the other open.
    let outcome = store
        .ingest(
            &[
                risk_of("shop", "Deployment/api"),
                risk_of("billing", "Deployment/api"),
            ],
            &policy,
        )
        .await
        .unwrap();
    assert_eq!(outcome.created, 2);
    let excepted_workloads: Vec<_> = baseline_risks(&store, Status::Excepted)
        .await
        .into_iter()
        .map(|finding| (finding.asset.namespace, finding.asset.workload))
        .collect();
    assert_eq!(excepted_workloads.len(), 2);
    assert!(excepted_workloads.contains(&(Some("shop".into()), Some("Deployment/api".into()))));
    let open_namespaces: Vec<_> = baseline_risks(&store, Status::Open)
        .await
        .into_iter()
        .map(|finding| finding.asset.namespace)
        .collect();
    assert_eq!(
        open_namespaces,
        [Some("billing".into()), Some("billing".into())]
    );
    // Two minutes later the exception has expired: the risk reopens.
    let later = Timestamp(Timestamp::now().millis() + 120_000);
    assert_eq!(store.reopen_expired_exceptions(later).await.unwrap(), 2);
    assert!(
        store
            .list_findings(FindingKind::BaselineRisk, &excepted)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn reopening_the_database_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palisade.db");
    let report = alert("web-1", "/bin/sh", 5, Severity::Medium);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .ingest(std::slice::from_ref(&report), &HandlingPolicy::default())
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store
            .list_findings(FindingKind::Alert, &FindingQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let outcome = store
        .ingest(&[report], &HandlingPolicy::default())
        .await
        .unwrap();
    assert_eq!(outcome.duplicates, 1, "idempotency survives a restart");
}

#[tokio::test]
async fn repeats_within_one_batch_aggregate_and_states_keep_the_latest_report() {
    let (_dir, store) = store().await;
    let batch: Vec<_> = (0..3)
        .map(|minute| alert("web-1", "/bin/sh", HOUR + minute * 60_000, Severity::Low))
        .collect();
    let outcome = store
        .ingest(&batch, &HandlingPolicy::default())
        .await
        .unwrap();
    assert_eq!((outcome.created, outcome.aggregated), (1, 2));
    let page = store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items[0].count, 3);
    assert_eq!(page.items[0].last_seen, Timestamp(HOUR + 120_000));

    store
        .ingest(
            &[vulnerability("CVE-2024-0001", &["3.0.2-1"])],
            &HandlingPolicy::default(),
        )
        .await
        .unwrap();
    let outcome = store
        .ingest(
            &[vulnerability("CVE-2024-0001", &["3.0.3-1"])],
            &HandlingPolicy::default(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.aggregated, 1);
    let page = store
        .list_findings(FindingKind::Vulnerability, &FindingQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0].title, "CVE-2024-0001: openssl fixed in 3.0.3-1",
        "a state shows its latest report"
    );
}

#[tokio::test]
async fn a_repeat_that_makes_a_finding_keeps_its_own_report() {
    let (_dir, store) = store().await;
    let policy = HandlingPolicy::default();
    let sent_before = alert("web-1", "/bin/sh", HOUR, Severity::Low);
    store
        .ingest(std::slice::from_ref(&sent_before), &policy)
        .await
        .unwrap();
    // Resent first (a duplicate, dropped), then a repeat within the hour (aggregates), then
    // one two hours later (a new finding); and in a fresh batch of its own, a first report
    // whose only earlier same-key report in the batch is a resent duplicate.
    let within = alert("web-1", "/bin/sh", HOUR + 60_000, Severity::Low);
    let later = alert("web-1", "/bin/sh", 3 * HOUR, Severity::High);
    let outcome = store
        .ingest(&[sent_before.clone(), within, later.clone()], &policy)
        .await
        .unwrap();
    assert_eq!(
        (outcome.duplicates, outcome.aggregated, outcome.created),
        (1, 1, 1),
        "{outcome:?}"
    );
    let other_pod_resent = alert("web-2", "/bin/sh", 5 * HOUR, Severity::Low);
    store
        .ingest(std::slice::from_ref(&other_pod_resent), &policy)
        .await
        .unwrap();
    let first_of_batch = FindingReport {
        id: Uuid::new_v4(),
        ..alert("web-2", "/bin/sh", 6 * HOUR + 1, Severity::Medium)
    };
    let outcome = store
        .ingest(&[other_pod_resent, first_of_batch.clone()], &policy)
        .await
        .unwrap();
    assert_eq!((outcome.duplicates, outcome.created), (1, 1), "{outcome:?}");

    let page = store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap();
    let raw_events: Vec<_> = page
        .items
        .iter()
        .map(|finding| match &finding.details {
            Details::Alert(details) => (finding.count, details.raw_event.clone()),
            other => panic!("not an alert: {other:?}"),
        })
        .collect();
    // Newest first; each finding holds the report that made it.
    assert_eq!(
        raw_events,
        [
            (1, serde_json::json!({"n": 6 * HOUR + 1})),
            (1, serde_json::json!({"n": 5 * HOUR})),
            (1, serde_json::json!({"n": 3 * HOUR})),
            (2, serde_json::json!({"n": HOUR})),
        ]
    );
}

#[tokio::test]
async fn a_vulnerabilitys_fix_known_flag_follows_its_latest_report() {
    let (_dir, store) = store().await;
    let policy = HandlingPolicy::default();
    let fix_available = || async {
        let groups = store
            .finding_groups(FindingKind::Vulnerability, &FindingQuery::default())
            .await
            .unwrap()
            .items;
        let mut flags: Vec<_> = groups
            .into_iter()
            .map(|group| (group.rule, group.fix_available))
            .collect();
        flags.sort();
        flags
    };
    // A new finding takes its report's flag, and later reports of the state replace it.
    let no_fix: &[&str] = &[];
    for (fixed, known) in [(no_fix, false), (&["3.0.2-1"], true), (no_fix, false)] {
        store
            .ingest(&[vulnerability("CVE-2024-0001", fixed)], &policy)
            .await
            .unwrap();
        assert_eq!(fix_available().await, [("CVE-2024-0001".into(), known)]);
    }
    // Within one batch, the last report of a new finding decides.
    store
        .ingest(
            &[
                vulnerability("CVE-2024-0002", &[]),
                vulnerability("CVE-2024-0002", &["3.0.4-1"]),
                vulnerability("CVE-2024-0003", &["3.0.4-1"]),
                vulnerability("CVE-2024-0003", &[]),
            ],
            &policy,
        )
        .await
        .unwrap();
    assert_eq!(
        fix_available().await,
        [
            ("CVE-2024-0001".into(), false),
            ("CVE-2024-0002".into(), true),
            ("CVE-2024-0003".into(), false),
        ]
    );
}

/// A firewall alert of shop/web refused to 10.9.0.1:5432 at `at`, standing for `attempts`.
fn firewall_alert(at: i64, attempts: u32) -> FindingReport {
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: Timestamp(at),
        severity: Severity::High,
        rule: "web-to-db".into(),
        title: "web-to-db: shop/web -> 10.9.0.1 5432/TCP refused".into(),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some("shop".into()),
            pod: Some("web".into()),
            ..Default::default()
        },
        details: Details::FirewallAlert(palisade_model::FirewallDetails {
            source: "shop/web".into(),
            destination: "10.9.0.1".into(),
            port: 5432,
            protocol: "TCP".into(),
            mode: "block".into(),
            attempts,
            ..Default::default()
        }),
        demo: false,
    }
}

/// A firewall report's attempts are its finding's count: a new finding starts at them, and
/// a repeat in the same batch or a later one adds its own; a resent report adds nothing.
#[tokio::test]
async fn a_firewall_reports_attempts_add_to_its_findings_count() {
    let (_dir, store) = store().await;
    let policy = HandlingPolicy::default();
    let count = async || {
        let page = store
            .list_findings(FindingKind::FirewallAlert, &FindingQuery::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "one finding per flow and day");
        page.items[0].count
    };
    let first = firewall_alert(10 * HOUR, 5);
    let outcome = store
        .ingest(std::slice::from_ref(&first), &policy)
        .await
        .unwrap();
    assert_eq!(outcome.created, 1);
    assert_eq!(count().await, 5);

    let outcome = store
        .ingest(
            &[
                firewall_alert(10 * HOUR + 1, 3),
                firewall_alert(10 * HOUR + 2, 1),
            ],
            &policy,
        )
        .await
        .unwrap();
    assert_eq!(outcome.aggregated, 2);
    assert_eq!(count().await, 9, "repeats into a stored finding add up");

    store.ingest(&[first], &policy).await.unwrap();
    assert_eq!(count().await, 9, "a resent report counts once");

    let (_dir, store) = self::store().await;
    store
        .ingest(
            &[firewall_alert(HOUR, 25_000), firewall_alert(HOUR + 1, 7)],
            &policy,
        )
        .await
        .unwrap();
    let page = store
        .list_findings(FindingKind::FirewallAlert, &FindingQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items[0].count, 25_007, "repeats within a batch add up");
}

/// Every filter, alone and with a time range (`since`, `until`, both), lists exactly the
/// findings it selects. Each kind of filter takes its own plan (severity, category and
/// namespace the counters' extent; the asset its index; `until` and the asset the findings
/// alone); a `since` inside an hour, whose whole hour the counters' extent keeps, must still
/// leave out what that hour holds before it. The console's live stream lists its page's
/// filters with a `since` (issue 3), where an alert of another namespace was suspected to
/// slip in (it was the test's request that lost the filters, not the store).
#[tokio::test]
async fn each_filter_with_a_time_range_lists_exactly_what_it_selects() {
    let (_dir, store) = store().await;
    // 24 alerts 20 minutes apart over 8 hours; namespace, severity, category, pod and status
    // vary on different periods, so that each combination selects a different set.
    let base = 1_700_000_000_000 - 1_700_000_000_000 % HOUR;
    let reports: Vec<FindingReport> = (0..24)
        .map(|index| {
            let severity = [Severity::Critical, Severity::High, Severity::Low][index / 2 % 3];
            let mut report = alert(
                &format!("web-{}", index % 3),
                &format!("/bin/tool-{index}"),
                base + index as i64 * 20 * 60_000,
                severity,
            );
            report.asset.namespace = Some(["shop", "cart"][index % 2].into());
            if let Details::Alert(details) = &mut report.details {
                details.category = Some(if index % 4 < 2 {
                    AlertCategory::Intrusion
                } else {
                    AlertCategory::Escape
                });
            }
            report
        })
        .collect();
    let outcome = store
        .ingest(&reports, &HandlingPolicy::default())
        .await
        .unwrap();
    assert_eq!(outcome.created_ids.len(), reports.len(), "one finding each");
    let ignored: Vec<Uuid> = outcome
        .created_ids
        .iter()
        .step_by(5)
        .map(|(_, id)| *id)
        .collect();
    store
        .set_status(
            FindingKind::Alert,
            &Selection::Ids(ignored),
            &[Status::Open],
            Status::Ignored,
            &audit("alert.ignore"),
        )
        .await
        .unwrap();
    let everything = FindingQuery {
        limit: 100,
        ..Default::default()
    };
    let stored = store
        .list_findings(FindingKind::Alert, &everything)
        .await
        .unwrap()
        .items;
    assert_eq!(stored.len(), reports.len());
    let web_1 = stored
        .iter()
        .find(|finding| finding.asset.pod.as_deref() == Some("web-1"))
        .unwrap()
        .asset_id;

    let filters = [
        ("no filter", FindingQuery::default()),
        (
            "cluster",
            FindingQuery {
                cluster: Some("prod".into()),
                ..Default::default()
            },
        ),
        (
            "severity",
            FindingQuery {
                severities: vec![Severity::Critical],
                ..Default::default()
            },
        ),
        (
            "status",
            FindingQuery {
                statuses: vec![Status::Open],
                ..Default::default()
            },
        ),
        (
            "category",
            FindingQuery {
                category: Some("intrusion".into()),
                ..Default::default()
            },
        ),
        (
            "namespace",
            FindingQuery {
                namespace: Some("shop".into()),
                ..Default::default()
            },
        ),
        (
            "asset",
            FindingQuery {
                asset_id: Some(web_1),
                ..Default::default()
            },
        ),
        (
            "the console's alerts page",
            FindingQuery {
                cluster: Some("prod".into()),
                statuses: vec![Status::Open],
                severities: vec![Severity::Critical],
                namespace: Some("shop".into()),
                ..Default::default()
            },
        ),
    ];
    // Inside an hour, so that the counters' hours and the partial hour both count.
    let since = Timestamp(base + 2 * HOUR + 30 * 60_000);
    let until = Timestamp(base + 5 * HOUR + 10 * 60_000);
    let ranges = [
        (None, None),
        (Some(since), None),
        (None, Some(until)),
        (Some(since), Some(until)),
    ];
    for (name, filter) in &filters {
        let mut without_range = HashSet::new();
        for (since, until) in ranges {
            let query = FindingQuery {
                since,
                until,
                limit: 100,
                ..filter.clone()
            };
            let expected: HashSet<Uuid> = stored
                .iter()
                .filter(|finding| selects(&query, finding))
                .map(|finding| finding.id)
                .collect();
            let listed: Vec<Uuid> = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap()
                .items
                .iter()
                .map(|finding| finding.id)
                .collect();
            assert!(
                !expected.is_empty(),
                "{name} {since:?} {until:?}: selects some"
            );
            assert_eq!(
                listed.iter().copied().collect::<HashSet<_>>(),
                expected,
                "{name}, since {since:?}, until {until:?}"
            );
            assert_eq!(listed.len(), expected.len(), "{name}: each once");
            if since.is_none() && until.is_none() {
                without_range = expected;
            } else {
                assert_ne!(expected, without_range, "{name}: the range leaves some out");
            }
        }
    }
}

/// Whether `query`'s filters and time range select `finding`, as the store's filters are
/// documented (the range: last seen at or after `since`, first seen at or before `until`).
fn selects(query: &FindingQuery, finding: &palisade_model::Finding) -> bool {
    let namespace = finding.asset.namespace.as_ref();
    query
        .cluster
        .as_ref()
        .is_none_or(|cluster| *cluster == finding.asset.cluster)
        && (query.severities.is_empty() || query.severities.contains(&finding.severity))
        && (query.statuses.is_empty() || query.statuses.contains(&finding.status))
        && query
            .category
            .as_ref()
            .is_none_or(|category| *category == finding.details.category())
        && query
            .namespace
            .as_ref()
            .is_none_or(|wanted| namespace == Some(wanted))
        && query.asset_id.is_none_or(|id| id == finding.asset_id)
        && query.since.is_none_or(|since| finding.last_seen >= since)
        && query.until.is_none_or(|until| finding.first_seen <= until)
}
