//! Rule and asset label of a text search, matched through their distinct texts (migration
//! 0057): a term is tested against the few thousand distinct rules and asset labels of a
//! kind and cluster instead of every finding, and the findings of the hit rules and assets
//! are then read through `findings_by_rule` and `findings_by_asset`. Titles (and the package
//! and aliases of vulnerabilities) stay in the per-finding trigram index `finding_text`.

use std::sync::Arc;

use palisade_model::FindingKind;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{SqliteStore, console, push_like_columns, to_json};
use crate::{FindingQuery, Result};

/// What a term hits among the distinct rules and asset labels of one kind (and cluster, when
/// the query names one): every finding of a hit rule or asset holds the term in that field.
/// Kept (as a [`console::TermPlan::Fields`]) while neither table grew, which
/// [`FieldHits::version`] tells.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FieldHits {
    /// The largest rowids of `finding_search_rules` and `finding_search_assets` when found:
    /// rows are never deleted, so equal rowids mean equal tables.
    version: (i64, i64),
    /// (cluster, rule) pairs whose rule holds the term.
    rules: Vec<(String, String)>,
    /// Assets whose label holds the term.
    assets: Vec<String>,
}

impl FieldHits {
    /// Whether no rule and no asset label holds the term.
    pub(super) fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.assets.is_empty()
    }

    /// Whether a rule holds the term.
    fn hits_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Where the hits of `needle` in `query`'s kind and cluster are kept among the term plans.
    fn cache_key(kind: FindingKind, query: &FindingQuery, needle: &str) -> String {
        format!("fields\0{}\0{:?}\0{needle}", kind.as_str(), query.cluster)
    }
}

/// Where the candidates of a term's title and extra come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TitleRows {
    /// The trigram index's rows for these trigrams (an FTS5 query of title and extra, any
    /// kind).
    Trigrams(String),
    /// These rowids: the trigram index's rows outside the findings of every rule holding the
    /// term, listed by [`rows_beyond_rule_hits`] for a view whose rules cover nearly all of
    /// them, so that its statements read the hit rules' index entries and not the index.
    Listed(Arc<Vec<i64>>),
}

/// Pushes a compound SELECT of the rowids of the findings of `kind` that may hold a term and
/// pass `query`'s filters: the rows `titles` names, the findings of the rules `hits` names,
/// and those of its assets that pass the filters `findings_by_asset` holds (migration 0061:
/// read from the index alone, so that a filter none of a hit asset's findings pass leaves it
/// out without reading a row). A superset of the matches (duplicates included when `limit` is
/// set), which the other filters and the LIKE conditions re-check. With `limit`, each of the
/// three parts yields at most that many rowids.
pub(super) fn push_candidates(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    titles: &TitleRows,
    hits: &FieldHits,
    limit: Option<i64>,
) {
    let push_limit = |builder: &mut QueryBuilder<Sqlite>| {
        if let Some(limit) = limit {
            builder.push(" LIMIT ").push_bind(limit);
        }
    };
    match titles {
        TitleRows::Trigrams(trigrams) => {
            builder.push(
                "SELECT rowid FROM (SELECT rowid FROM finding_text WHERE finding_text MATCH ",
            );
            builder.push_bind(trigrams.clone());
        }
        TitleRows::Listed(rowids) => {
            builder
                .push("SELECT rowid FROM (SELECT value AS rowid FROM json_each(")
                .push_bind(to_json(rowids.as_ref()))
                .push(")");
        }
    }
    push_limit(builder);
    builder.push(")");
    if !hits.rules.is_empty() {
        builder
            .push(
                " UNION ALL SELECT rowid FROM (SELECT rowid FROM findings INDEXED BY \
                 findings_by_rule WHERE kind = ",
            )
            .push_bind(kind.as_str())
            .push(" AND (cluster, rule) IN (SELECT value ->> 0, value ->> 1 FROM json_each(")
            .push_bind(to_json(&hits.rules))
            .push("))");
        push_limit(builder);
        builder.push(")");
    }
    if !hits.assets.is_empty() {
        builder.push(" UNION ALL SELECT rowid FROM (SELECT rowid FROM findings");
        super::push_hit_assets_findings(builder, kind, query, to_json(&hits.assets));
        push_limit(builder);
        builder.push(")");
    }
}

/// Pushes ` AND (…)`, the text condition of every walk for the newest matches of `query`'s
/// term (see [`console::push_matches`]), tested on each index entry the walk passes: the
/// candidates' rowids first ([`push_candidates`]; SQLite checks them against a Bloom filter
/// from the entry), and the LIKE conditions only for a candidate, so that no other entry's
/// row is read. (Given `rowid IN (…) AND (LIKE …)`, SQLite 3.51 tested the LIKE first and read
/// the row of every entry the walk passed: 550 ms against 59 for "C2 server" in a million
/// alerts.) When `rules_on_entries` (the walk reads `findings_by_cluster`, whose entries hold
/// cluster and rule, migration 0064), a hit rule's finding is told by its (cluster, rule)
/// without its row: it matches whatever its other fields hold, since the rules were hit by
/// the same LIKE conditions. Otherwise (another index, which holds neither) the hit rules'
/// findings are candidates like the others.
pub(super) fn push_walked_text(
    builder: &mut QueryBuilder<Sqlite>,
    (kind, query): (FindingKind, &FindingQuery),
    titles: &TitleRows,
    hits: &FieldHits,
    rules_on_entries: bool,
) {
    builder.push(" AND (");
    let beside_rules;
    let candidates = if rules_on_entries && hits.hits_rules() {
        builder
            .push("(cluster, rule) IN (SELECT value ->> 0, value ->> 1 FROM json_each(")
            .push_bind(to_json(&hits.rules))
            .push(")) OR ");
        beside_rules = FieldHits {
            version: hits.version,
            rules: Vec::new(),
            assets: hits.assets.clone(),
        };
        &beside_rules
    } else {
        hits
    };
    builder.push("CASE WHEN rowid IN (");
    push_candidates(builder, kind, query, titles, candidates, None);
    builder.push(") THEN TRUE");
    let needle = query.text.as_deref().unwrap_or_default().to_lowercase();
    super::push_like_text(builder, kind, &needle);
    builder.push(" ELSE FALSE END)");
}

/// Most rules [`rows_beyond_rule_hits`] subtracts from the trigram rows, one merged arm of
/// its statement each; a term more rules hold keeps the trigram rows.
const MAX_SUBTRACTED_RULES: usize = 16;

/// The rows of the trigram index for `trigrams` (an FTS5 query covering `needle`, already
/// lowercased) that are not findings of a rule holding `needle` in any kind and cluster, when
/// they are at most `limit`. With them, a term's candidates are the hit rules' findings (read
/// from `findings_by_rule`) and these few rows: the same matches after the LIKE re-check, since
/// every finding of a hit rule matches, and a finding matching through its title or extra and
/// not its rule is among them. Where rule and title repeat each other (a title naming its
/// rule), a common term's trigram rows are then not read by every statement of a view.
///
/// `None` when there are more, when no rule or more than [`MAX_SUBTRACTED_RULES`] rules hold
/// the term, or when an asset label holds it: an asset's findings are candidates only within
/// a view's kind and cluster, so its rows are not subtracted. One statement, merging rowid
/// order: the trigram index and each rule's entries of `findings_by_rule` are in rowid order,
/// so the difference reads each list once and sorts nothing.
pub(super) async fn rows_beyond_rule_hits(
    connection: &mut SqliteConnection,
    needle: &str,
    trigrams: String,
    limit: i64,
) -> Result<Option<Vec<i64>>> {
    let mut labels = QueryBuilder::<Sqlite>::new(
        "SELECT EXISTS (SELECT 1 FROM finding_search_assets WHERE TRUE",
    );
    push_like_columns(&mut labels, &["asset_label"], needle);
    labels.push(")");
    let label_hit: bool = labels
        .build_query_scalar()
        .fetch_one(&mut *connection)
        .await?;
    if label_hit {
        return Ok(None);
    }
    let mut rules = QueryBuilder::<Sqlite>::new(
        "SELECT kind, cluster, rule FROM finding_search_rules WHERE TRUE",
    );
    push_like_columns(&mut rules, &["rule"], needle);
    rules
        .push(" LIMIT ")
        .push_bind(MAX_SUBTRACTED_RULES as i64 + 1);
    let rules: Vec<(String, String, String)> =
        rules.build_query_as().fetch_all(&mut *connection).await?;
    if rules.is_empty() || rules.len() > MAX_SUBTRACTED_RULES {
        return Ok(None);
    }
    let mut beyond =
        QueryBuilder::<Sqlite>::new("SELECT rowid FROM finding_text WHERE finding_text MATCH ");
    beyond.push_bind(trigrams);
    for (kind, cluster, rule) in rules {
        beyond
            .push(
                " EXCEPT SELECT rowid FROM findings INDEXED BY findings_by_rule \
                 WHERE kind = ",
            )
            .push_bind(kind)
            .push(" AND cluster = ")
            .push_bind(cluster)
            .push(" AND rule = ")
            .push_bind(rule);
    }
    beyond.push(" ORDER BY 1 LIMIT ").push_bind(limit + 1);
    let rows: Vec<i64> = beyond
        .build_query_scalar()
        .fetch_all(&mut *connection)
        .await?;
    Ok((rows.len() as i64 <= limit).then_some(rows))
}

/// The rows of the trigram index for `trigrams` (an FTS5 query covering the term), when the
/// term `hits` asset labels and no rule and those rows are at most `limit`: the term's
/// matches are then the hit assets' findings and the matches among these rows, which
/// [`push_newest_asset_matches`] reads without walking a time index.
pub(super) async fn title_rows_beside_assets(
    connection: &mut SqliteConnection,
    hits: &FieldHits,
    trigrams: String,
    limit: i64,
) -> Result<Option<Vec<i64>>> {
    if hits.assets.is_empty() || !hits.rules.is_empty() {
        return Ok(None);
    }
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT rowid FROM finding_text WHERE finding_text MATCH $1 ORDER BY rowid LIMIT $2",
    )
    .bind(trigrams)
    .bind(limit + 1)
    .fetch_all(connection)
    .await?;
    Ok((rows.len() as i64 <= limit).then_some(rows))
}

/// Opens a statement whose common table `matches` holds the newest `limit` findings of `kind`
/// matching `query` (`columns` of each, and `last_seen`), for a term that [`FieldHits`] `hits`
/// in asset labels only and whose other candidates are the `titles` rows (see
/// [`title_rows_beside_assets`]). Every finding of a hit asset holds the term (an asset id is
/// a name-based UUID of its label), so those are read from `findings_by_asset` alone, which
/// holds every filter and sighting the aggregates need (migration 0061), in place of a walk of
/// the time index that reads each match's row; the title rows outside those assets are read
/// and re-checked. `columns` must be columns of that index; `query` must not filter on rule,
/// asset or demo, which it does not hold.
pub(super) fn push_newest_asset_matches(
    builder: &mut QueryBuilder<Sqlite>,
    (kind, query): (FindingKind, &FindingQuery),
    hits: &FieldHits,
    titles: &[i64],
    columns: &str,
    limit: i64,
) {
    let assets = to_json(&hits.assets);
    builder
        .push("WITH matches AS MATERIALIZED (SELECT ")
        .push(columns)
        .push(", last_seen FROM findings");
    super::push_hit_assets_findings(builder, kind, query, assets.clone());
    builder
        .push(" UNION ALL SELECT ")
        .push(columns)
        .push(", last_seen FROM findings");
    super::push_finding_filters(
        builder,
        kind,
        query,
        &super::TextSearch::Driven(titles.to_vec()),
    );
    builder.push(" AND ");
    super::push_asset_ids_in(builder, assets, true);
    builder
        .push(" ORDER BY last_seen DESC LIMIT ")
        .push_bind(limit)
        .push(") ");
}

impl SqliteStore {
    /// What `needle` (lowercased) hits among the distinct rules and asset labels of `kind` in
    /// `query`'s cluster: kept among the term plans while both tables are unchanged, else
    /// found by LIKE over them (the conditions the findings' own scan uses).
    pub(super) async fn field_hits(
        &self,
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        needle: &str,
    ) -> Result<Arc<FieldHits>> {
        let version: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(rowid), 0) FROM finding_search_rules), \
                    (SELECT COALESCE(MAX(rowid), 0) FROM finding_search_assets)",
        )
        .fetch_one(&mut *connection)
        .await?;
        let cache_key = FieldHits::cache_key(kind, query, needle);
        if let Some(console::TermPlan::Fields(hits)) = self.term_plans.get(&cache_key)
            && hits.version == version
        {
            return Ok(hits);
        }
        let mut rules =
            QueryBuilder::<Sqlite>::new("SELECT cluster, rule FROM finding_search_rules");
        console::push_key_scope(&mut rules, kind, query);
        push_like_columns(&mut rules, &["rule"], needle);
        let rules = rules
            .build()
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("cluster")?, row.try_get("rule")?)))
            .collect::<Result<Vec<(String, String)>>>()?;
        let mut labels =
            QueryBuilder::<Sqlite>::new("SELECT DISTINCT asset_id FROM finding_search_assets");
        console::push_key_scope(&mut labels, kind, query);
        push_like_columns(&mut labels, &["asset_label"], needle);
        let assets = labels
            .build_query_scalar()
            .fetch_all(&mut *connection)
            .await?;
        let hits = Arc::new(FieldHits {
            version,
            rules,
            assets,
        });
        self.term_plans
            .insert(&cache_key, console::TermPlan::Fields(Arc::clone(&hits)));
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    //! Text search of alerts and firewall alerts, whose rule and asset label are matched
    //! through the distinct texts, against a brute-force reference over every finding.

    use palisade_model::{
        AffectedAsset, AlertDetails, Details, FindingReport, FirewallDetails, MatchOperator,
        ProcessInfo, Severity, Status, Timestamp,
    };
    use uuid::Uuid;

    use super::*;
    use crate::{
        Cursor, HandlingPolicy, Selection, Store,
        sqlite::{
            TextSearch,
            test_support::{audit, query_plan, whitelist_alerts},
        },
    };

    const BASE: i64 = 1_700_000_000_000;

    /// The rule most alerts have: more of them than a rare term's look-up reads.
    const COMMON_RULE: &str = "C2 server contacted";

    /// Rules with characters that mean something to LIKE, FTS5 or SQL, and non-ASCII ones.
    const RULES: [&str; 5] = [
        "Terminal shell in container",
        "100% CPU_spike",
        "Read 'secret' \"file\" \\etc",
        "Ǆ Straße rule",
        "write below /usr/bin",
    ];

    /// Titles share no text with rules or pod names, so that a term can hit one field only.
    const TITLES: [&str; 4] = ["outbound beacon", "x_y%z odd", "ÉCOLE σίσυφος", "quiet"];

    fn alert(index: usize) -> FindingReport {
        let rule = if index % 10 < 8 {
            COMMON_RULE
        } else {
            RULES[(index / 10) % RULES.len()]
        };
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(BASE + index as i64 * 1_000),
            severity: Severity::ALL[index % 5],
            rule: rule.into(),
            title: format!("{} #{index}", TITLES[index % TITLES.len()]),
            asset: AffectedAsset {
                cluster: if index.is_multiple_of(5) {
                    "dev"
                } else {
                    "prod"
                }
                .into(),
                namespace: Some("shop".into()),
                pod: Some(format!("web-{}", index % 37)),
                ..Default::default()
            },
            details: Details::Alert(AlertDetails {
                process: ProcessInfo {
                    exe: "/bin/sh".into(),
                    cmdline: format!("sh -c job-{index}"),
                    ..Default::default()
                },
                ..Default::default()
            }),
            demo: false,
        }
    }

    fn firewall_alert(index: usize) -> FindingReport {
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(BASE + index as i64 * 1_000),
            severity: Severity::Medium,
            rule: format!("egress to db-{}", index % 3),
            title: format!("blocked 10.0.0.{index}:5432"),
            asset: AffectedAsset {
                cluster: "prod".into(),
                namespace: Some("pay".into()),
                pod: Some(format!("api-{}", index % 4)),
                ..Default::default()
            },
            details: Details::FirewallAlert(FirewallDetails {
                source: format!("api-{}", index % 4),
                destination: format!("10.0.0.{index}"),
                destination_object: String::new(),
                port: 5432,
                protocol: "TCP".into(),
                mode: "block".into(),
                rule_id: None,
                trace: Vec::new(),
                ..FirewallDetails::default()
            }),
            demo: false,
        }
    }

    /// id, cluster, status, title, rule and asset label of a finding.
    type Searched = (String, String, String, String, String, String);

    /// Every finding of `kind`, with what [`reference`] tests.
    async fn findings_of(store: &SqliteStore, kind: FindingKind) -> Vec<Searched> {
        sqlx::query_as(
            "SELECT id, cluster, status, title, rule, asset_label FROM findings WHERE kind = $1",
        )
        .bind(kind.as_str())
        .fetch_all(&store.reader)
        .await
        .unwrap()
    }

    /// The ids of `findings` that `query` selects, by testing each in Rust: a field matches
    /// when its ASCII-lowercased text contains the lowercased term, what SQLite's
    /// `LOWER(field) LIKE '%term%'` means.
    fn reference(findings: &[Searched], query: &FindingQuery) -> Vec<String> {
        let needle = query.text.as_deref().unwrap_or_default().to_lowercase();
        let mut ids: Vec<String> = findings
            .iter()
            .filter(|(_, cluster, status, title, rule, label)| {
                query
                    .cluster
                    .as_ref()
                    .is_none_or(|wanted| wanted == cluster)
                    && (query.statuses.is_empty()
                        || query
                            .statuses
                            .iter()
                            .any(|wanted| wanted.as_str() == status))
                    && [title, rule, label]
                        .iter()
                        .any(|field| field.to_ascii_lowercase().contains(&needle))
            })
            .map(|(id, ..)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Every page the store lists for `query`, and the total its counters give.
    async fn searched(
        store: &SqliteStore,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> (Vec<String>, u64) {
        let mut paged = FindingQuery {
            limit: 400,
            ..query.clone()
        };
        let mut ids = Vec::new();
        loop {
            let page = store.list_findings(kind, &paged).await.unwrap();
            ids.extend(page.items.iter().map(|finding| finding.id.to_string()));
            match page.next_cursor {
                Some(next) => paged.cursor = Some(Cursor::decode(&next).unwrap()),
                None => break,
            }
        }
        ids.sort();
        let counted = store.count_by_severity(kind, query).await.unwrap();
        assert_eq!(counted.counted_since, None, "{query:?}: a bounded count");
        (ids, counted.by_rank.iter().sum())
    }

    /// The plan of the page (`page`) or of the aggregates of `query`, by name.
    async fn plan(
        store: &SqliteStore,
        kind: FindingKind,
        query: &FindingQuery,
        page: bool,
    ) -> &'static str {
        let mut connection = store.reader.acquire().await.unwrap();
        match store
            .text_search(&mut connection, kind, query, page)
            .await
            .unwrap()
        {
            TextSearch::Scan => "scan",
            TextSearch::Narrowed { .. } => "narrowed",
            TextSearch::Driven(_) => "driven",
            TextSearch::Window { .. } => "window",
            TextSearch::Keys(_) => "keys",
        }
    }

    const TERMS: [&str; 30] = [
        // Rule only.
        "c2 server",
        "C2 SERVER CONTACTED",
        "shell in",
        "100%",
        "cpu_",
        "'secret'",
        "\"file\"",
        "\\etc",
        "ǆ straße",
        "STRASSE",
        "egress to db-1",
        // Asset label only.
        "web-3",
        "web-36",
        "api-2",
        // Title only.
        "beacon",
        "x_y%z",
        "école",
        "σίσυφος",
        "#17",
        "10.0.0.4",
        // More than one field, and none.
        "e",
        "in",
        "sh",
        "%",
        "_",
        "\\",
        "o",
        "ent",
        "no such text",
        "web-3 ",
    ];

    fn queries() -> Vec<FindingQuery> {
        let mut queries = Vec::new();
        for term in TERMS {
            for cluster in [None, Some("prod"), Some("dev")] {
                for statuses in [vec![], vec![Status::Open]] {
                    queries.push(FindingQuery {
                        text: Some(term.into()),
                        cluster: cluster.map(Into::into),
                        statuses,
                        ..Default::default()
                    });
                }
            }
        }
        queries
    }

    async fn assert_every_search_exact(store: &SqliteStore, step: &str) {
        for kind in [FindingKind::Alert, FindingKind::FirewallAlert] {
            let findings = findings_of(store, kind).await;
            for query in queries() {
                let expected = reference(&findings, &query);
                let (listed, counted) = searched(store, kind, &query).await;
                assert_eq!(listed, expected, "{step}: {kind:?} {query:?}: listed");
                assert_eq!(
                    counted,
                    expected.len() as u64,
                    "{step}: {kind:?} {query:?}: counted"
                );
            }
        }
    }

    #[tokio::test]
    async fn alert_searches_through_rules_and_assets_equal_a_brute_force_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("palisade.db"))
            .await
            .unwrap();
        let policy = HandlingPolicy::default();
        let alerts: Vec<_> = (0..3_000).map(alert).collect();
        for batch in alerts.chunks(700) {
            store.ingest(batch, &policy).await.unwrap();
        }
        let firewall: Vec<_> = (0..60).map(firewall_alert).collect();
        store.ingest(&firewall, &policy).await.unwrap();

        // Every path runs: the common rule in all clusters has more candidates than a rare
        // term's look-up reads, in one cluster fewer.
        let common = FindingQuery {
            text: Some("c2 server".into()),
            ..Default::default()
        };
        assert_eq!(
            plan(&store, FindingKind::Alert, &common, true).await,
            "scan"
        );
        assert_eq!(
            plan(&store, FindingKind::Alert, &common, false).await,
            "narrowed"
        );
        let in_dev = FindingQuery {
            cluster: Some("dev".into()),
            ..common.clone()
        };
        assert_eq!(
            plan(&store, FindingKind::Alert, &in_dev, true).await,
            "driven"
        );
        let asset = FindingQuery {
            text: Some("web-36".into()),
            ..Default::default()
        };
        assert_eq!(
            plan(&store, FindingKind::Alert, &asset, false).await,
            "driven"
        );
        assert_eq!(
            (searched(&store, FindingKind::Alert, &asset).await.1),
            reference(&findings_of(&store, FindingKind::Alert).await, &asset).len() as u64
        );
        assert_every_search_exact(&store, "ingest").await;

        // Repeats aggregate into the same findings (an alert keeps its first title).
        let repeats: Vec<_> = (0..40)
            .map(|index| {
                let mut report = alert(index);
                report.title = format!("renamed beacon {index}");
                report.observed_at = Timestamp(BASE + 600_000 + index as i64);
                report
            })
            .collect();
        let outcome = store.ingest(&repeats, &policy).await.unwrap();
        assert_eq!(outcome.aggregated, 40, "{outcome:?}");
        // A finding's searched texts changed in place (nothing in ingest does this to alerts
        // today): the update trigger keeps the index and the distinct texts up.
        let renamed = sqlx::query(
            "UPDATE findings SET title = 'renamed beacon', rule = 'Renamed rule', \
             asset_label = asset_label || ' moved' \
             WHERE rowid IN (SELECT rowid FROM findings WHERE kind = 'alert' LIMIT 40)",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        assert_eq!(renamed.rows_affected(), 40);
        for (term, expected) in [("RENAMED beacon", 40), ("renamed rule", 40), ("moved", 40)] {
            let query = FindingQuery {
                text: Some(term.into()),
                ..Default::default()
            };
            assert_eq!(
                searched(&store, FindingKind::Alert, &query).await.1,
                expected,
                "{term}"
            );
        }
        assert_every_search_exact(&store, "renamed").await;

        // Status changes: ignore some, handle a rule's, whitelist an asset's.
        let some: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM findings WHERE kind = 'alert' ORDER BY rowid LIMIT 300",
        )
        .fetch_all(&store.reader)
        .await
        .unwrap()
        .iter()
        .map(|id: &String| id.parse().unwrap())
        .collect();
        let ignored = store
            .set_status(
                FindingKind::Alert,
                &Selection::Ids(some),
                &[Status::Open],
                Status::Ignored,
                &audit("status"),
            )
            .await
            .unwrap();
        assert_eq!(ignored, 300);
        let handled = store
            .set_status(
                FindingKind::Alert,
                &Selection::Similar {
                    rule: RULES[1].into(),
                    asset_id: None,
                },
                &[Status::Open],
                Status::Handled,
                &audit("bulk"),
            )
            .await
            .unwrap();
        assert!(handled > 0);
        let whitelisted = whitelist_alerts(
            &store,
            "asset.pod",
            MatchOperator::Equals,
            "web-3",
            "a test pod",
        )
        .await;
        assert!(whitelisted > 0);
        assert_every_search_exact(&store, "status changes").await;
    }

    /// The rule and asset parts of a look-up seek their indexes, never walk them.
    #[tokio::test]
    async fn the_candidates_of_rules_and_assets_are_read_by_index_seeks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("palisade.db"))
            .await
            .unwrap();
        let alerts: Vec<_> = (0..50).map(alert).collect();
        store
            .ingest(&alerts, &HandlingPolicy::default())
            .await
            .unwrap();
        let query = FindingQuery {
            text: Some("er".into()),
            ..Default::default()
        };
        let mut connection = store.reader.acquire().await.unwrap();
        let hits = store
            .field_hits(&mut connection, FindingKind::Alert, &query, "er")
            .await
            .unwrap();
        assert!(!hits.rules.is_empty() && hits.assets.is_empty(), "{hits:?}");
        let web = store
            .field_hits(&mut connection, FindingKind::Alert, &query, "web-1")
            .await
            .unwrap();
        let both = FieldHits {
            version: hits.version,
            rules: hits.rules.clone(),
            assets: web.assets.clone(),
        };
        let mut explain = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_candidates(
            &mut explain,
            FindingKind::Alert,
            &query,
            &TitleRows::Trigrams("\"bea\"".into()),
            &both,
            Some(10),
        );
        let plan = query_plan(&mut connection, explain).await.join("\n");
        assert!(
            plan.contains("findings_by_rule (kind=? AND cluster=? AND rule=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("findings_by_asset (generation=? AND asset_key=? AND kind=?)"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN findings"), "{plan}");
    }
}
