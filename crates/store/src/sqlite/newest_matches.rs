//! The newest matches of a common text search, walked once per view. A term with more
//! candidates than [`SearchWindow::COUNTED_MATCHES`] has its counters and chart counted over
//! its newest matches only (see [`console::push_matches`]); the console asks for both at once,
//! and each used to walk the time index for the same matches, reading every match's row
//! (≈ 200-300 ms each for "C2 server" in a million alerts). Now one walk yields the matches'
//! severities and sightings: a request for the same query while that walk runs waits for it
//! and shares what it found ([`super::in_flight`]), and a request after it walks again, so
//! nothing is kept beyond the walk and every answer is as fresh as one the request would have
//! walked itself.
//!
//! The walk also chooses its candidates from the term's rule hits: when the rules holding the
//! term cover its trigram rows but a few ([`field_hits::rows_beyond_rule_hits`]), it reads
//! the hit rules' index entries and those few rows instead of the trigram index's entries.

use std::sync::Arc;

use palisade_model::{FindingKind, Severity, Timestamp};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{
    RARE_TERM_FINDINGS, SqliteStore, TextSearch, console, corrupt,
    field_hits::{self, TitleRows},
    indexable,
};
use crate::{FindingQuery, Result, SearchWindow};

/// One match of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Match {
    severity: Severity,
    first_seen: i64,
    last_seen: i64,
}

/// The newest [`SearchWindow::COUNTED_MATCHES`] matches of a query, as counters and chart
/// count them.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NewestMatches {
    matches: Vec<Match>,
}

impl NewestMatches {
    /// Counts by severity rank, and the oldest last sighting among the matches when the bound
    /// was reached (the counts then cover the matches last seen at or after it).
    pub(super) fn by_severity(&self) -> ([u64; 5], Option<Timestamp>) {
        let mut counts = [0; 5];
        for found in &self.matches {
            counts[found.severity.rank() as usize] += 1;
        }
        let reached = self.matches.len() >= SearchWindow::COUNTED_MATCHES as usize;
        let counted_since = reached
            .then(|| self.matches.iter().map(|found| found.last_seen).min())
            .flatten()
            .map(Timestamp);
        (counts, counted_since)
    }

    /// Counts of the matches of `severities` (all when empty) first seen in each interval of
    /// `width` from `start`, into `counts` (one slot per interval; later first sightings are
    /// left out).
    pub(super) fn over_time(
        &self,
        severities: &[Severity],
        start: i64,
        width: i64,
        counts: &mut [u64],
    ) {
        for found in &self.matches {
            if found.first_seen < start
                || !(severities.is_empty() || severities.contains(&found.severity))
            {
                continue;
            }
            if let Some(slot) = usize::try_from((found.first_seen - start) / width)
                .ok()
                .and_then(|index| counts.get_mut(index))
            {
                *slot += 1;
            }
        }
    }
}

impl SqliteStore {
    /// The newest matches of `query` (of `kind`, searched as `text`, a
    /// [`TextSearch::Narrowed`] term whose aggregates are bounded), walked on `connection`
    /// unless a walk of the same query is running, whose matches are then shared.
    pub(super) async fn newest_matches(
        &self,
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        text: &TextSearch,
    ) -> Result<Arc<NewestMatches>> {
        let mut walked = query.clone();
        walked.cursor = None;
        let key = format!("{}\0{walked:?}", kind.as_str());
        self.walks
            .share(key, || walk_newest_matches(connection, kind, &walked, text))
            .await
    }
}

/// How a walk finds its matches.
#[derive(Debug)]
enum WalkPlan {
    /// Walks a time-ordered index, reading the rows of the candidates the search names.
    TimeIndex(TextSearch),
    /// Reads the findings of the assets whose label holds the term from their index, and the
    /// matches among these few title rows (see [`field_hits::push_newest_asset_matches`]).
    ThroughAssets {
        fields: Arc<field_hits::FieldHits>,
        titles: Vec<i64>,
    },
}

/// How a walk of `query` reads its candidates. A term only asset labels and at most
/// [`RARE_TERM_FINDINGS`] title rows hold is read through the assets' index (when `query`
/// filters on nothing that index does not hold). Otherwise the time index is walked over the
/// hit rules' findings and the few trigram rows no hit rule holds, when
/// [`field_hits::rows_beyond_rule_hits`] finds them, instead of those and all of the index's
/// rows. (A view no rule or label of which holds the term reads such rows alone, as planned:
/// see `common_term`.)
async fn plan_walk(
    connection: &mut SqliteConnection,
    query: &FindingQuery,
    text: &TextSearch,
) -> Result<WalkPlan> {
    let (
        TextSearch::Narrowed {
            newest_only,
            fields,
            titles: TitleRows::Trigrams(trigrams),
        },
        Some(needle),
    ) = (text, query.text.as_deref().and_then(indexable))
    else {
        return Ok(WalkPlan::TimeIndex(text.clone()));
    };
    let index_holds_filters =
        query.rule.is_none() && query.asset_id.is_none() && query.demo.is_none();
    if index_holds_filters
        && let Some(titles) = field_hits::title_rows_beside_assets(
            connection,
            fields,
            trigrams.clone(),
            RARE_TERM_FINDINGS,
        )
        .await?
    {
        return Ok(WalkPlan::ThroughAssets {
            fields: Arc::clone(fields),
            titles,
        });
    }
    let beyond = field_hits::rows_beyond_rule_hits(
        connection,
        &needle,
        trigrams.clone(),
        RARE_TERM_FINDINGS,
    )
    .await?;
    Ok(WalkPlan::TimeIndex(match beyond {
        Some(rows) => TextSearch::Narrowed {
            newest_only: *newest_only,
            fields: Arc::clone(fields),
            titles: TitleRows::Listed(Arc::new(rows)),
        },
        None => text.clone(),
    }))
}

/// The statement of a walk: the newest matches' severity and sightings.
fn push_walk(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    plan: &WalkPlan,
) {
    let columns = "severity, first_seen";
    match plan {
        WalkPlan::TimeIndex(text) => {
            let read = console::MatchesRead {
                bounded: true,
                ..Default::default()
            };
            console::push_matches(builder, kind, query, text, read, columns, |_| {});
        }
        WalkPlan::ThroughAssets { fields, titles } => field_hits::push_newest_asset_matches(
            builder,
            (kind, query),
            fields,
            titles,
            columns,
            i64::from(SearchWindow::COUNTED_MATCHES),
        ),
    }
    builder.push("SELECT severity, first_seen, last_seen FROM matches");
}

/// One walk, in one read transaction: the candidates chosen and the matches found are the
/// same snapshot.
async fn walk_newest_matches(
    connection: &mut SqliteConnection,
    kind: FindingKind,
    query: &FindingQuery,
    text: &TextSearch,
) -> Result<NewestMatches> {
    let mut transaction = connection.begin().await?;
    let plan = plan_walk(&mut transaction, query, text).await?;
    let mut builder = QueryBuilder::<Sqlite>::new("");
    push_walk(&mut builder, kind, query, &plan);
    let rows = builder.build().fetch_all(&mut *transaction).await?;
    transaction.commit().await?;
    let matches = rows
        .iter()
        .map(|row| {
            Ok(Match {
                severity: Severity::from_rank(row.try_get("severity")?)
                    .ok_or_else(|| corrupt("findings", "severity", "out of range"))?,
                first_seen: row.try_get("first_seen")?,
                last_seen: row.try_get("last_seen")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(NewestMatches { matches })
}

#[cfg(test)]
mod tests {
    //! A common term's bounded counters and chart against the newest matches a LIKE scan
    //! finds, and the candidates its walk reads.

    use palisade_model::{
        AffectedAsset, AlertDetails, Details, FindingReport, ProcessInfo, Status, Timestamp,
    };
    use uuid::Uuid;

    use super::*;
    use crate::sqlite::test_support::query_plan;
    use crate::{HandlingPolicy, Store, TimeBuckets};

    const BASE: i64 = 1_700_000_000_000;
    const HOUR_MS: i64 = 3_600_000;
    const C2_RULE: &str = "Outbound connection to C2 server";

    /// Alerts seeded: the C2 rule's in `prod` alone are more than the bound.
    const SEEDED: usize = SearchWindow::COUNTED_MATCHES as usize * 12 / 10;

    fn alert(index: usize, cluster: &str, rule: &str, title: String) -> FindingReport {
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(BASE + index as i64 * 1_000),
            severity: Severity::ALL[index % 5],
            rule: rule.into(),
            title,
            asset: AffectedAsset {
                cluster: cluster.into(),
                // Some without a namespace: a view filtering one must leave them out.
                namespace: (index % 11 != 3).then(|| "shop".into()),
                pod: Some(format!("web-{}", index % 7)),
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

    /// More C2 alerts in `prod` than the bound, titled after their rule, and C2 alerts in
    /// `dev`; among them 50 alerts of another rule in `qa`, titled with the term (matches
    /// through the title only).
    fn seed() -> Vec<FindingReport> {
        (0..SEEDED)
            .map(|index| {
                if index % 97 == 5 && index < 97 * 50 {
                    alert(
                        index,
                        "qa",
                        "Unexpected outbound connection",
                        format!("lookalike of a C2 SERVER #{index}"),
                    )
                } else if index % 13 == 0 {
                    alert(index, "dev", C2_RULE, format!("{C2_RULE} #{index}"))
                } else {
                    alert(index, "prod", C2_RULE, format!("{C2_RULE} #{index}"))
                }
            })
            .collect()
    }

    /// Counters of the newest matches of `query`, and its chart: the first sightings of its
    /// severities among the newest matches of every severity; from a LIKE scan of every
    /// finding.
    async fn reference(
        store: &SqliteStore,
        query: &FindingQuery,
        buckets: TimeBuckets,
    ) -> (([u64; 5], Option<Timestamp>), Vec<u64>) {
        let mut every_severity = query.clone();
        every_severity.severities.clear();
        let mut chart = vec![0; buckets.buckets as usize];
        newest_by_scan(store, &every_severity).await.over_time(
            &query.severities,
            buckets.start.millis(),
            buckets.width_ms,
            &mut chart,
        );
        (newest_by_scan(store, query).await.by_severity(), chart)
    }

    /// The newest matches of `query`, from a LIKE scan of every finding.
    async fn newest_by_scan(store: &SqliteStore, query: &FindingQuery) -> NewestMatches {
        let pattern = format!("%{}%", query.text.as_deref().unwrap().to_lowercase());
        let severities: Vec<i64> = query.severities.iter().map(|s| s.rank()).collect();
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT severity, first_seen, last_seen FROM findings NOT INDEXED \
             WHERE kind = 'alert' AND ($1 IS NULL OR cluster = $1) AND ($2 = '' OR status = $2) \
             AND (LOWER(title) LIKE $3 OR LOWER(rule) LIKE $3 OR LOWER(asset_label) LIKE $3) \
             AND ($5 = '[]' OR severity IN (SELECT value FROM json_each($5))) \
             AND ($6 IS NULL OR namespace = $6) \
             ORDER BY last_seen DESC LIMIT $4",
        )
        .bind(query.cluster.as_deref())
        .bind(query.statuses.first().map_or("", |status| status.as_str()))
        .bind(pattern)
        .bind(i64::from(SearchWindow::COUNTED_MATCHES))
        .bind(serde_json::to_string(&severities).unwrap())
        .bind(query.namespace.as_deref())
        .fetch_all(&store.reader)
        .await
        .unwrap();
        NewestMatches {
            matches: rows
                .into_iter()
                .map(|(severity, first_seen, last_seen)| Match {
                    severity: Severity::from_rank(severity).unwrap(),
                    first_seen,
                    last_seen,
                })
                .collect(),
        }
    }

    async fn assert_view_exact(store: &SqliteStore, query: &FindingQuery, step: &str) {
        // In `prod`, and in every cluster, both terms have more matches than the bound.
        let bounded = query.cluster.as_deref() != Some("qa")
            && query.severities.is_empty()
            && query.namespace.is_none();
        let buckets = TimeBuckets {
            start: Timestamp(BASE - BASE % HOUR_MS),
            width_ms: HOUR_MS,
            buckets: 24,
        };
        // Asked at once, as the console does: one walk may serve both.
        let (counted, charted) = tokio::join!(
            store.count_by_severity(FindingKind::Alert, query),
            store.count_over_time(FindingKind::Alert, query, buckets),
        );
        let (counted, charted) = (counted.unwrap(), charted.unwrap());
        let ((by_rank, counted_since), chart) = reference(store, query, buckets).await;
        assert_eq!(counted.by_rank, by_rank, "{step}: {query:?}");
        assert_eq!(counted.counted_since, counted_since, "{step}: {query:?}");
        assert_eq!(counted_since.is_some(), bounded, "{step}: {query:?}");
        assert_eq!(charted, chart, "{step}: {query:?}");
    }

    /// The plan of a walk of `query`, and the statement's query plan.
    /// Ignores the `limit` newest findings `condition` selects (`$1` bound to `bind`).
    async fn ignore_newest(store: &SqliteStore, condition: &str, bind: &str, limit: u32) {
        let sql = format!(
            "SELECT id FROM findings WHERE {condition} ORDER BY last_seen DESC LIMIT {limit}"
        );
        // The test's own constant conditions; the value is bound.
        let ids: Vec<Uuid> = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(bind)
            .fetch_all(&store.reader)
            .await
            .unwrap()
            .iter()
            .map(|id| id.parse().unwrap())
            .collect();
        store
            .set_status(
                FindingKind::Alert,
                &crate::Selection::Ids(ids),
                &[Status::Open],
                Status::Ignored,
                &super::super::test_support::audit("ignore"),
            )
            .await
            .unwrap();
    }

    async fn walk_plan(store: &SqliteStore, query: &FindingQuery) -> (WalkPlan, String) {
        let mut connection = store.reader.acquire().await.unwrap();
        let text = store
            .text_search(&mut connection, FindingKind::Alert, query, false)
            .await
            .unwrap();
        assert!(console::newest_matches_only(&text), "{text:?}");
        let walk = plan_walk(&mut connection, query, &text).await.unwrap();
        let mut explain = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_walk(&mut explain, FindingKind::Alert, query, &walk);
        (walk, query_plan(&mut connection, explain).await.join("\n"))
    }

    #[tokio::test]
    async fn a_common_terms_walk_reads_its_hit_rules_and_the_rows_beyond_them_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("palisade.db"))
            .await
            .unwrap();
        let policy = HandlingPolicy::default();
        for batch in seed().chunks(2_000) {
            store.ingest(batch, &policy).await.unwrap();
        }
        let c2 = FindingQuery {
            cluster: Some("prod".into()),
            text: Some("c2 Server".into()),
            ..Default::default()
        };

        // The rule (in `prod` and `dev`) covers the term's trigram rows but the 50 lookalikes:
        // the walk reads those 50 and tells the rule's findings by the cluster's time index
        // entries (migration 0064), never the trigram index nor the rule's index.
        let (walk, plan) = walk_plan(&store, &c2).await;
        let WalkPlan::TimeIndex(TextSearch::Narrowed {
            titles: TitleRows::Listed(beyond),
            ..
        }) = &walk
        else {
            panic!("{walk:?}");
        };
        assert_eq!(beyond.len(), 50);
        assert!(!plan.contains("finding_text"), "{plan}");
        assert!(!plan.contains("findings_by_rule"), "{plan}");
        assert!(
            plan.contains("USING INDEX findings_by_cluster (kind=? AND cluster=?)"),
            "{plan}"
        );
        // More rows beyond the rules than allowed: the trigram rows stay.
        let mut connection = store.reader.acquire().await.unwrap();
        let trigrams = super::super::fts_all(&super::super::covering_trigrams("c2 server"));
        assert_eq!(
            field_hits::rows_beyond_rule_hits(&mut connection, "c2 server", trigrams, 49)
                .await
                .unwrap(),
            None
        );
        // A term held by asset labels and no rule (and by no title yet): its newest matches
        // are read from the assets' index alone, no row and no time index.
        let web = FindingQuery {
            text: Some("web-".into()),
            ..c2.clone()
        };
        let (walk, plan) = walk_plan(&store, &web).await;
        assert!(
            matches!(&walk, WalkPlan::ThroughAssets { titles, .. } if titles.is_empty()),
            "{walk:?}"
        );
        assert!(
            plan.contains("USING COVERING INDEX findings_by_asset"),
            "{plan}"
        );
        assert!(!plan.contains("findings_by_status"), "{plan}");
        // Under a filter none of those assets' findings pass, the term is rare: its
        // candidates are listed from the assets' index under the filter, none.
        let web_elsewhere = FindingQuery {
            namespace: Some("pay".into()),
            ..web.clone()
        };
        for page in [true, false] {
            let text = store
                .text_search(&mut connection, FindingKind::Alert, &web_elsewhere, page)
                .await
                .unwrap();
            assert_eq!(text, TextSearch::Driven(Vec::new()), "page {page}");
        }
        drop(connection);
        let web_critical = FindingQuery {
            severities: vec![Severity::Critical],
            ..web.clone()
        };
        // In `qa` no rule holds the term: for the page and the aggregates alike the 50 rows
        // are the candidates, read by rowid, not a walk of every finding there.
        let qa = FindingQuery {
            cluster: Some("qa".into()),
            ..c2.clone()
        };
        for page in [true, false] {
            let mut connection = store.reader.acquire().await.unwrap();
            let text = store
                .text_search(&mut connection, FindingKind::Alert, &qa, page)
                .await
                .unwrap();
            assert!(
                matches!(&text, TextSearch::Driven(rows) if rows.len() == 50),
                "{text:?}"
            );
        }
        assert_eq!(
            store
                .list_findings(FindingKind::Alert, &qa)
                .await
                .unwrap()
                .items
                .len(),
            50
        );

        let open = FindingQuery {
            statuses: vec![Status::Open],
            ..c2.clone()
        };
        // The rule's findings told by the index's entries under filters it holds: a severity
        // (fewer matches than the bound), a namespace none of them is in.
        let c2_high = FindingQuery {
            severities: vec![Severity::High],
            ..open.clone()
        };
        let c2_elsewhere = FindingQuery {
            namespace: Some("pay".into()),
            ..c2.clone()
        };
        // Every cluster: the walk reads an index without cluster and rule (no cluster filter for
        // findings_by_cluster), so the hit rule's findings are candidates by rowid, tested
        // before any row is read.
        let c2_everywhere = FindingQuery {
            cluster: None,
            ..c2.clone()
        };
        let open_everywhere = FindingQuery {
            cluster: None,
            ..open.clone()
        };
        let (_, plan) = walk_plan(&store, &open_everywhere).await;
        assert!(!plan.contains("findings_by_cluster"), "{plan}");
        assert!(
            plan.contains("findings_by_rule (kind=? AND cluster=? AND rule=?)"),
            "{plan}"
        );
        let views = [
            &c2,
            &open,
            &c2_everywhere,
            &open_everywhere,
            &c2_high,
            &c2_elsewhere,
            &web,
            &qa,
            &web_elsewhere,
            &web_critical,
        ];
        for query in views {
            assert_view_exact(&store, query, "ingest").await;
        }
        // A two-character term under a namespace: the window of the newest findings under the
        // filters is read from findings_by_cluster's entries (migration 0064), not the rows.
        let short = FindingQuery {
            text: Some("c2".into()),
            namespace: Some("shop".into()),
            ..c2.clone()
        };
        let mut connection = store.reader.acquire().await.unwrap();
        let text = store
            .text_search(&mut connection, FindingKind::Alert, &short, false)
            .await
            .unwrap();
        assert!(
            matches!(text, TextSearch::Window { index: None }),
            "{text:?}"
        );
        let mut explain = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        let kind = FindingKind::Alert;
        let read = console::MatchesRead::default();
        console::push_matches(&mut explain, kind, &short, &text, read, "severity", |_| {});
        explain.push("SELECT severity, COUNT(*) FROM matches GROUP BY severity");
        let plan = query_plan(&mut connection, explain).await.join("\n");
        assert!(
            plan.contains("USING COVERING INDEX findings_by_cluster (kind=? AND cluster=?)"),
            "{plan}"
        );
        drop(connection);

        // Newer matches, each through one field, status changes and a repeat: a later view
        // walks again and counts them.
        // A title naming a pod of another label, and one naming its own pod.
        let mut db = alert(SEEDED + 3, "prod", "Quiet rule", "calls WEB-3".into());
        db.asset.pod = Some("db-1".into());
        let newer = vec![
            alert(SEEDED, "prod", C2_RULE, "beacon".into()),
            alert(SEEDED + 1, "prod", "Quiet rule", "to the c2 server".into()),
            alert(SEEDED + 2, "prod", "Quiet rule", "nothing".into()),
            db,
            alert(SEEDED + 4, "prod", "Quiet rule", "restarted web-4".into()),
        ];
        store.ingest(&newer, &policy).await.unwrap();
        ignore_newest(&store, "title LIKE $1", "lookalike%", 10).await;
        // The newest of the rule's own findings in `prod` ignored: the walked views under the
        // open status (`open`, `c2_high`, `open_everywhere`) lose them.
        ignore_newest(&store, "rule = $1 AND cluster = 'prod'", C2_RULE, 40).await;
        // A repeat of one of the rule's oldest findings in `prod`, outside the newest matches,
        // 50 minutes later (within the alerts' aggregation window): its last_seen moves it
        // among them.
        let mut repeat = alert(1, "prod", C2_RULE, format!("{C2_RULE} #1"));
        repeat.id = Uuid::new_v4();
        repeat.observed_at = Timestamp(BASE + 1_000 + 50 * 60_000);
        let outcome = store.ingest(&[repeat], &policy).await.unwrap();
        assert_eq!(outcome.aggregated, 1, "{outcome:?}");
        let (walk, _) = walk_plan(&store, &c2).await;
        assert!(
            matches!(&walk, WalkPlan::TimeIndex(TextSearch::Narrowed { titles: TitleRows::Listed(beyond), .. }) if beyond.len() == 51),
            "{walk:?}"
        );
        // The two titles holding `web-` are read beside the assets' index; one of them is a
        // hit asset's, counted once.
        let (walk, _) = walk_plan(&store, &web).await;
        assert!(
            matches!(&walk, WalkPlan::ThroughAssets { titles, .. } if titles.len() == 2),
            "{walk:?}"
        );
        for query in views {
            assert_view_exact(&store, query, "newer").await;
        }
    }
}
