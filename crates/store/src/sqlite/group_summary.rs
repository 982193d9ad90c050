//! The summary of the grouped tables (vulnerabilities by id, baseline risks by check;
//! migration 0059): one row per group, cluster and status (and one over every status), kept
//! exact in the transaction of every change to their findings, so that a page of groups in any
//! order reads a cluster's summary rows instead of aggregating all of its findings.
//!
//! Keeping it: updates and deletes of these findings list their groups in
//! `finding_group_stale` (triggers); ingest, which inserts without triggers, names its groups
//! itself. Each writer then calls [`refresh`] before committing, which recomputes the listed
//! groups from `findings_grouped_by_rule` (the entries of those groups only) and empties the
//! list. A group is recomputed rather than adjusted because its maxima (severity, last seen,
//! fix known) and distinct counts (assets, packages) do not follow from a finding leaving it.
//! Reading: [`page`] answers the queries the summary holds (a cluster and at most one status,
//! no other filter) while the list is empty, which it is after every committed write; any
//! other query, or a missed refresh, groups the findings instead.

use std::collections::HashSet;

use palisade_model::{FindingKind, Status};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, sqlite::SqliteRow};

use super::{
    console::group_aggregates,
    group_order::{self, Grouped},
};
use crate::{FindingQuery, Result};

/// Groups named per statement: three bound values each, well under SQLite's limit.
const NAMED_CHUNK: usize = 500;

/// The kinds the summary holds: those the console shows grouped.
pub(super) fn summarised(kind: FindingKind) -> bool {
    matches!(kind, FindingKind::Vulnerability | FindingKind::BaselineRisk)
}

/// The summary's status for `query`'s status filter: the one status it names, or '' (every
/// status) when it names none or all; `None` for any other set.
fn summary_status(statuses: &[Status]) -> Option<&'static str> {
    let distinct: HashSet<Status> = statuses.iter().copied().collect();
    match distinct.len() {
        0 => Some(""),
        1 => distinct.into_iter().next().map(Status::as_str),
        n if n == Status::ALL.len() => Some(""),
        _ => None,
    }
}

/// The cluster and summary status of the groups `query` selects of `kind`, when the summary
/// holds them: one cluster, at most one status, no other filter.
fn summary_scope(kind: FindingKind, query: &FindingQuery) -> Option<(&str, &'static str)> {
    let unfiltered = query.severities.is_empty()
        && query.category.is_none()
        && query.namespace.is_none()
        && query.asset_id.is_none()
        && query.rule.is_none()
        && query.text.is_none()
        && query.since.is_none()
        && query.until.is_none()
        && query.demo.is_none();
    if !summarised(kind) || !unfiltered {
        return None;
    }
    Some((query.cluster.as_deref()?, summary_status(&query.statuses)?))
}

/// One page of `query`'s groups of `kind` (at most `limit` + 1 rows, in `query`'s order after
/// its cursor, with the columns of `group_aggregates`) from the summary, or `None` when the
/// summary does not hold them.
pub(super) async fn page(
    connection: &mut SqliteConnection,
    kind: FindingKind,
    query: &FindingQuery,
    limit: u32,
) -> Result<Option<Vec<SqliteRow>>> {
    let Some((cluster, status)) = summary_scope(kind, query) else {
        return Ok(None);
    };
    let stale: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM finding_group_stale)")
        .fetch_one(&mut *connection)
        .await?;
    if stale {
        return Ok(None);
    }
    let mut builder = QueryBuilder::<Sqlite>::new(
        "SELECT rule, title, severity, category, findings, open, assets, last_seen, \
         fix_available, package, packages FROM finding_group_summary WHERE kind = ",
    );
    builder
        .push_bind(kind.as_str())
        .push(" AND cluster = ")
        .push_bind(cluster.to_owned())
        .push(" AND status = ")
        .push_bind(status);
    group_order::push_group_page(
        &mut builder,
        Grouped::Summary,
        (query.group_sort, query.order),
        query.cursor.as_ref(),
        limit,
    );
    Ok(Some(builder.build().fetch_all(connection).await?))
}

/// Recomputes the summary of the groups `finding_group_stale` lists and of `named` (kind,
/// cluster, rule; those of other kinds are skipped), and empties the list. Called by every
/// writer that changes findings of the summarised kinds, in its transaction.
pub(super) async fn refresh<'a>(
    connection: &mut SqliteConnection,
    named: impl IntoIterator<Item = (FindingKind, &'a str, &'a str)>,
) -> Result<()> {
    let named: Vec<_> = named
        .into_iter()
        .filter(|(kind, ..)| summarised(*kind))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in named.chunks(NAMED_CHUNK) {
        let mut builder = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO finding_group_stale (kind, cluster, rule) ",
        );
        builder.push_values(chunk, |mut row, (kind, cluster, rule)| {
            row.push_bind(kind.as_str())
                .push_bind(*cluster)
                .push_bind(*rule);
        });
        builder.build().execute(&mut *connection).await?;
    }
    let stale: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM finding_group_stale)")
        .fetch_one(&mut *connection)
        .await?;
    if !stale {
        return Ok(());
    }
    // Seeks by (kind, cluster, status, rule) for each listed group and status ('' for every
    // status): the key leads with the status, so the statuses are named.
    let mut statuses =
        QueryBuilder::<Sqlite>::new("DELETE FROM finding_group_summary WHERE status IN (''");
    for status in Status::ALL {
        statuses.push(", ").push_bind(status.as_str());
    }
    statuses.push(
        ") AND (kind, cluster, rule) IN (SELECT kind, cluster, rule FROM finding_group_stale)",
    );
    statuses.build().execute(&mut *connection).await?;
    // Per status, then over every status. The kind literal lets SQLite use the partial index
    // (see `push_kind_literal` in console.rs).
    for (status, grouping) in [("status", ", status"), ("''", "")] {
        QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO finding_group_summary (kind, cluster, status, rule, title, severity, \
             category, findings, open, assets, last_seen, fix_available, package, packages) \
             SELECT kind, cluster, {status}, {} \
             FROM findings INDEXED BY findings_grouped_by_rule \
             WHERE (kind = 'vulnerability' OR kind = 'baseline_risk') \
             AND (kind, cluster, rule) IN (SELECT kind, cluster, rule FROM finding_group_stale) \
             GROUP BY kind, cluster, rule{grouping}",
            group_aggregates()
        ))
        .build()
        .execute(&mut *connection)
        .await?;
    }
    sqlx::query("DELETE FROM finding_group_stale")
        .execute(&mut *connection)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use palisade_model::{
        AffectedAsset, BaselineCategory, BaselineDetails, Details, Exception, FindingReport,
        MatchOperator, NewException, Severity, Timestamp, VulnerabilityDetails,
    };
    use uuid::Uuid;

    use super::*;
    use crate::{
        FindingQuery, GroupSortKey, HandlingPolicy, Selection, SortOrder, Store,
        sqlite::{
            SqliteStore,
            test_support::{Random, audit, temp_store, whitelist},
        },
    };

    const BASE: i64 = 1_700_000_000_000;

    /// A vulnerability or baseline risk drawn from small sets (2 clusters, 6 ids or 3 checks,
    /// 5 images or workloads, 4 packages), so that groups gain and lose findings, assets and
    /// packages as the sequence goes on.
    fn report(random: &mut Random, at: i64) -> FindingReport {
        let cluster = ["prod", "staging"][random.below(2)];
        let severity = Severity::ALL[random.below(5)];
        let asset = AffectedAsset {
            cluster: cluster.into(),
            namespace: Some(["shop", "pay"][random.below(2)].into()),
            image: Some(format!("registry.example/app-{}:1", random.below(5))),
            ..Default::default()
        };
        if random.below(3) == 0 {
            let check = ["privileged", "host-network", "run-as-root"][random.below(3)];
            return FindingReport {
                id: Uuid::new_v4(),
                observed_at: Timestamp(at),
                severity,
                rule: check.into(),
                title: format!("{check} container"),
                asset,
                details: Details::BaselineRisk(BaselineDetails {
                    category: [BaselineCategory::Workload, BaselineCategory::Container]
                        [random.below(2)],
                    description: String::new(),
                    remediation: String::new(),
                    evidence: Vec::new(),
                }),
                demo: false,
            };
        }
        let cve = format!("CVE-2024-{:04}", random.below(6));
        let package = ["openssl", "libssl3", "zlib", "curl"][random.below(4)];
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(at),
            severity,
            title: format!("{cve} in {package}"),
            rule: cve,
            asset,
            details: Details::Vulnerability(VulnerabilityDetails {
                package: package.into(),
                ecosystem: ["Debian:12", "npm"][random.below(2)].into(),
                fixed_versions: if random.below(2) == 0 {
                    vec!["9.9.9".into()]
                } else {
                    Vec::new()
                },
                ..Default::default()
            }),
            demo: false,
        }
    }

    /// The columns of a summary row, as one JSON array per row (comparable as text).
    const SUMMARY_ROW: &str = "json_array(kind, cluster, status, rule, title, severity, \
        category, findings, open, assets, last_seen, fix_available, package, packages)";

    /// The summary equals a brute-force GROUP BY of every finding (no index), per status and
    /// over every status, and no group is left stale.
    async fn assert_summary_exact(store: &SqliteStore, step: &str) {
        let fresh_of = |status: &str, grouping: &str| {
            format!(
                "SELECT kind, cluster, {status} AS status, rule, MAX(title) AS title, \
                 MAX(severity) AS severity, MAX(category) AS category, COUNT(*) AS findings, \
                 SUM(status = 'open') AS open, COUNT(DISTINCT asset_id) AS assets, \
                 MAX(last_seen) AS last_seen, MAX(fix_known) AS fix_available, \
                 MIN(package) AS package, \
                 COUNT(DISTINCT CASE WHEN package <> '' THEN package END) AS packages \
                 FROM findings NOT INDEXED \
                 WHERE kind IN ('vulnerability', 'baseline_risk') \
                 GROUP BY kind, cluster, rule{grouping}"
            )
        };
        let rows_of = |statement: String| {
            let store = store.clone();
            async move {
                let mut rows: Vec<String> = QueryBuilder::<Sqlite>::new(statement)
                    .build_query_scalar()
                    .fetch_all(&store.reader)
                    .await
                    .unwrap();
                rows.sort();
                rows
            }
        };
        let expected = rows_of(format!(
            "SELECT {SUMMARY_ROW} FROM ({} UNION ALL {})",
            fresh_of("status", ", status"),
            fresh_of("''", "")
        ))
        .await;
        let summary = rows_of(format!("SELECT {SUMMARY_ROW} FROM finding_group_summary")).await;
        assert!(!expected.is_empty(), "{step}: the sequence made groups");
        assert_eq!(summary, expected, "{step}");
        let stale: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM finding_group_stale")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(stale, 0, "{step}: groups left stale");
    }

    /// Ids of findings of `kind` in `status`, at most `limit`, in a random order.
    async fn some_ids(
        store: &SqliteStore,
        random: &mut Random,
        kind: FindingKind,
        status: Status,
    ) -> Vec<Uuid> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM findings WHERE kind = $1 AND status = $2")
                .bind(kind.as_str())
                .bind(status.as_str())
                .fetch_all(&store.reader)
                .await
                .unwrap();
        let take = random.below(6) + 1;
        ids.iter()
            .filter(|_| random.below(3) == 0)
            .take(take)
            .map(|id| Uuid::parse_str(id).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn the_summary_equals_grouping_the_findings_after_every_ingest_and_handling_action() {
        let (_dir, store) = temp_store().await;
        let policy = HandlingPolicy::default();
        let mut random = Random(0x0059_5eed);
        let mut at = BASE;
        let first: Vec<FindingReport> = (0..60)
            .map(|index| report(&mut random, at + index))
            .collect();
        store.ingest(&first, &policy).await.unwrap();
        assert_summary_exact(&store, "first ingest").await;
        let mut actions_seen = HashSet::new();
        for step in 0..120 {
            let action = random.below(9);
            let changed = match action {
                // Ingest: new findings, and repeats of stored ones (later sightings, higher
                // severities, a fix now known).
                0..=2 => {
                    let reports: Vec<FindingReport> = (0..random.below(40) + 1)
                        .map(|_| {
                            at += random.below(3 * 3_600_000) as i64;
                            report(&mut random, at)
                        })
                        .collect();
                    store.ingest(&reports, &policy).await.unwrap().created
                        + store
                            .ingest(&reports[..1], &policy)
                            .await
                            .unwrap()
                            .aggregated
                }
                // Ignore, undo, handle by id; ignore similar (a whole group, on one asset).
                3 | 4 => {
                    let kind =
                        [FindingKind::Vulnerability, FindingKind::BaselineRisk][random.below(2)];
                    let (from, to) = [
                        (Status::Open, Status::Ignored),
                        (Status::Ignored, Status::Open),
                        (Status::Open, Status::Handled),
                    ][random.below(3)];
                    let ids = some_ids(&store, &mut random, kind, from).await;
                    store
                        .set_status(kind, &Selection::Ids(ids), &[from], to, &audit("status"))
                        .await
                        .unwrap()
                }
                5 => {
                    let similar = Selection::Similar {
                        rule: format!("CVE-2024-{:04}", random.below(6)),
                        asset_id: None,
                    };
                    store
                        .set_status(
                            FindingKind::Vulnerability,
                            &similar,
                            &[Status::Open],
                            Status::Ignored,
                            &audit("bulk"),
                        )
                        .await
                        .unwrap()
                }
                // A whitelist rule closing a package's open vulnerabilities.
                6 => {
                    let package = ["openssl", "libssl3", "zlib", "curl"][random.below(4)];
                    whitelist(
                        &store,
                        FindingKind::Vulnerability,
                        ("package", MatchOperator::Equals, package),
                        "accepted",
                    )
                    .await
                }
                // An exception covering a check in a namespace, then expiring.
                7 => {
                    let check = ["privileged", "host-network", "run-as-root"][random.below(3)];
                    let exception = Exception {
                        id: Uuid::now_v7(),
                        exception: NewException {
                            check: check.into(),
                            cluster: None,
                            namespace: Some("shop".into()),
                            name: None,
                            container: None,
                            asset_id: None,
                            labels: Default::default(),
                            reason: "reviewed".into(),
                            owner: "platform".into(),
                            expires_at: Some(Timestamp(Timestamp::now().millis() + 60_000)),
                        },
                        created_by: "admin".into(),
                        created_at: Timestamp::now(),
                    };
                    let covered = store
                        .create_exception(&exception, &audit("exception"))
                        .await
                        .unwrap();
                    assert_summary_exact(&store, &format!("step {step}: exception")).await;
                    let later = Timestamp(Timestamp::now().millis() + 120_000);
                    covered + store.reopen_expired_exceptions(later).await.unwrap()
                }
                // A rescan of one image that no longer finds some of its vulnerabilities:
                // those are fixed (what closes a verified fix).
                _ => {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT asset_id, dedupe_key FROM findings \
                         WHERE kind = 'vulnerability' AND status IN ('open', 'fixing')",
                    )
                    .fetch_all(&store.reader)
                    .await
                    .unwrap();
                    let Some((asset, _)) = rows.get(random.below(rows.len().max(1))) else {
                        continue;
                    };
                    let present: HashSet<String> = rows
                        .iter()
                        .filter(|(other, _)| other == asset && random.below(2) == 0)
                        .map(|(_, key)| key.clone())
                        .collect();
                    store
                        .resolve_absent_findings(
                            Uuid::parse_str(asset).unwrap(),
                            FindingKind::Vulnerability,
                            &present,
                            &audit("rescan"),
                        )
                        .await
                        .unwrap()
                }
            };
            if changed > 0 {
                actions_seen.insert(action.min(8));
            }
            assert_summary_exact(&store, &format!("step {step}: action {action}")).await;
        }
        assert_eq!(
            actions_seen.len(),
            9,
            "every action changed findings at least once"
        );

        // The summary serves the queries it holds, in every order, while nothing is stale.
        let mut connection = store.reader.acquire().await.unwrap();
        for statuses in [vec![Status::Open], Vec::new(), Status::ALL.to_vec()] {
            for key in GroupSortKey::ALL {
                let query = FindingQuery {
                    cluster: Some("prod".into()),
                    statuses: statuses.clone(),
                    group_sort: key,
                    order: SortOrder::Asc,
                    ..Default::default()
                };
                let rows = page(&mut connection, FindingKind::Vulnerability, &query, 50)
                    .await
                    .unwrap();
                assert!(rows.is_some_and(|rows| !rows.is_empty()), "{query:?}");
            }
        }
        let filtered = FindingQuery {
            cluster: Some("prod".into()),
            statuses: vec![Status::Open, Status::Ignored],
            ..Default::default()
        };
        let rows = page(&mut connection, FindingKind::Vulnerability, &filtered, 50)
            .await
            .unwrap();
        assert!(rows.is_none(), "two statuses are grouped from the findings");
    }

    #[tokio::test]
    async fn a_stale_group_is_read_from_the_findings_until_refreshed() {
        let (_dir, store) = temp_store().await;
        let mut random = Random(3);
        let reports: Vec<FindingReport> = (0..30)
            .map(|index| report(&mut random, BASE + index))
            .collect();
        store
            .ingest(&reports, &HandlingPolicy::default())
            .await
            .unwrap();
        let query = FindingQuery {
            cluster: Some("prod".into()),
            statuses: vec![Status::Open],
            ..Default::default()
        };
        let mut connection = store.writer.acquire().await.unwrap();
        assert!(
            page(&mut connection, FindingKind::Vulnerability, &query, 50)
                .await
                .unwrap()
                .is_some()
        );
        // A change that no refresh followed (as a writer that forgot it would leave it).
        sqlx::query("UPDATE findings SET status = 'ignored' WHERE kind = 'vulnerability'")
            .execute(&mut *connection)
            .await
            .unwrap();
        assert!(
            page(&mut connection, FindingKind::Vulnerability, &query, 50)
                .await
                .unwrap()
                .is_none()
        );
        let listed = store
            .finding_groups(FindingKind::Vulnerability, &query)
            .await
            .unwrap();
        assert_eq!(listed.items, [], "every vulnerability is ignored");
        refresh(&mut connection, []).await.unwrap();
        drop(connection);
        assert_summary_exact(&store, "refreshed").await;
    }
}
