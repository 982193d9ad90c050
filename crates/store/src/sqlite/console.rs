//! Queries the console needs beside listing: groups by rule, counts over time, fix
//! verifications and firewall rules.

use std::{
    borrow::Cow,
    collections::HashMap,
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use palisade_model::{
    AuditEntry, Finding, FindingKind, FirewallRule, FixVerification, NewFirewallRule, Severity,
    Status, Timestamp, VerificationState,
};
use sqlx::{
    QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, Transaction, pool::PoolConnection,
    sqlite::SqliteRow,
};
use uuid::Uuid;

use super::{
    SqliteStore, TextSearch, VULNERABILITY_TEXT, corrupt, from_json, group_order,
    group_order::Grouped, group_summary, insert_audit, into_page, parse_uuid,
    push_asset_index_filters, push_finding_filters, push_in, push_keyset, push_like_columns,
    push_like_text, to_json,
};
use crate::{
    Cursor, FindingGroup, FindingQuery, GroupSortKey, Page, Result, SearchWindow, SortKey,
    SortOrder, StoreError, TimeBuckets, query::page_size,
};

/// Whether a vulnerability lists a fixed version, as 1 or 0: the column ingest fills
/// (migration 0055), which `findings_grouped_by_rule` holds.
const FIX_KNOWN: &str = "fix_known";

/// The columns of a group of findings by rule, aggregated over a statement's rows: rule,
/// title, severity, category, status, asset_id, last_seen, [`FIX_KNOWN`] and package; each
/// sortable column as the aggregate its sort compares ([`group_order::aggregate`]). The
/// columns of `finding_group_summary` (migration 0059) in the same order, which
/// [`super::group_summary`] fills from them.
pub(super) fn group_aggregates() -> String {
    let of = group_order::aggregate;
    format!(
        "rule, MAX(title) AS title, {} AS severity, {} AS category, {} AS findings, \
         {} AS open, {} AS assets, {} AS last_seen, {} AS fix_available, {} AS package, \
         COUNT(DISTINCT NULLIF(package, '')) AS packages",
        of(GroupSortKey::Severity),
        of(GroupSortKey::Category),
        of(GroupSortKey::Findings),
        of(GroupSortKey::Open),
        of(GroupSortKey::Assets),
        of(GroupSortKey::LastSeen),
        of(GroupSortKey::FixAvailable),
        of(GroupSortKey::Package),
    )
}

/// Whether the partial indexes of migration 0054 hold findings of `kind`: the kinds the
/// console shows grouped.
fn grouped_indexes_hold(kind: FindingKind) -> bool {
    matches!(kind, FindingKind::Vulnerability | FindingKind::BaselineRisk)
}

/// Repeats a statement's kind filter as a literal: SQLite decides whether a partial index
/// applies when it prepares the statement, before the bound kind is known, and refuses an
/// `INDEXED BY` of one that might not ("no query solution"). Kinds are fixed identifiers
/// without quotes.
fn push_kind_literal(builder: &mut QueryBuilder<Sqlite>, kind: FindingKind) {
    builder.push(format_args!(" AND kind = '{}'", kind.as_str()));
}

/// A text search through the search keys: what `needle` (lowercased) hits (see
/// [`push_keyed_condition`]).
#[derive(Clone, Copy)]
struct Keyed<'a> {
    hits: &'a KeyHits,
    needle: &'a str,
    /// The statement binds the rule itself (a probe of one hit rule), so the condition does
    /// not list the hit rules: in a probe per rule SQLite read that list again for every
    /// rule (2,000 rules of `lib1`: 60 s for one severity's rules, against 60 ms without).
    rule_bound: bool,
}

/// The WHERE clause of a statement on the grouped indexes of migration 0054: `query`'s
/// filters and kind (as a literal, see [`push_kind_literal`]); its text through `keyed`, or
/// by LIKE without it.
fn push_grouped_filters(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    keyed: Option<Keyed<'_>>,
) {
    // The asset by its id, which the grouped indexes hold (not its integer key).
    let mut filters = query.clone();
    let asset_id = filters.asset_id.take();
    if keyed.is_some() {
        filters.text = None;
    }
    push_finding_filters(builder, kind, &filters, &TextSearch::Scan);
    if let Some(asset_id) = asset_id {
        builder.push(" AND ");
        super::push_asset_ids_in(builder, to_json(&[asset_id.to_string()]), false);
    }
    push_kind_literal(builder, kind);
    if let Some(keyed) = keyed {
        push_keyed_condition(builder, kind, keyed);
    }
}

/// Pushes the statement of [`SqliteStore::groups_through_indexes`]'s first step for one
/// severity (`rank`): at most `wanted` rules, in order and after `after`, of findings `query`
/// selects of that severity, whose findings `query` selects are none more severe. Without
/// `keyed` it walks `findings_grouped_by_severity`; with it, the rules the term hits (two
/// seeks each in `findings_grouped_by_rule`, which alone holds titles).
fn push_rules_of_severity(
    builder: &mut QueryBuilder<Sqlite>,
    (kind, query): (FindingKind, &FindingQuery),
    (rank, after): (i64, Option<&str>),
    wanted: usize,
    keyed: Option<Keyed<'_>>,
) {
    // Each probe binds its rule (`rule = listed.value`).
    let keyed = keyed.map(|keyed| Keyed {
        rule_bound: true,
        ..keyed
    });
    match keyed {
        Some(Keyed { hits, .. }) => {
            builder
                .push("SELECT listed.value AS rule FROM json_each(")
                .push_bind(to_json(&hits.rules()))
                .push(") AS listed WHERE EXISTS (SELECT 1 FROM findings INDEXED BY findings_grouped_by_rule");
            push_grouped_filters(builder, kind, query, keyed);
            builder
                .push(" AND rule = listed.value AND severity = ")
                .push_bind(rank);
            builder.push(")");
        }
        None => {
            builder.push(
                "SELECT DISTINCT rule FROM findings AS listed INDEXED BY findings_grouped_by_severity",
            );
            push_grouped_filters(builder, kind, query, None);
            builder.push(" AND severity = ").push_bind(rank);
        }
    }
    let rule = if keyed.is_some() {
        "listed.value"
    } else {
        "listed.rule"
    };
    if let Some(after) = after {
        builder
            .push(format_args!(" AND {rule} > "))
            .push_bind(after.to_owned());
    }
    builder.push(" AND NOT EXISTS (SELECT 1 FROM findings INDEXED BY findings_grouped_by_rule");
    push_grouped_filters(builder, kind, query, keyed);
    builder
        .push(format_args!(" AND rule = {rule} AND severity > "))
        .push_bind(rank)
        .push(format_args!(") ORDER BY {rule} LIMIT "))
        .push_bind(i64::try_from(wanted).unwrap_or(i64::MAX));
}

/// Pushes the statement of [`SqliteStore::groups_through_indexes`]'s second step: the groups
/// of `rules` (not empty) over the findings `query` selects (its text through `keyed`), most
/// severe first, then by rule.
fn push_groups_of_rules(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    rules: Vec<String>,
    keyed: Option<Keyed<'_>>,
) {
    builder.push(format_args!(
        "SELECT {} FROM findings INDEXED BY findings_grouped_by_rule",
        group_aggregates()
    ));
    push_grouped_filters(builder, kind, query, keyed);
    push_in(builder, "rule", rules.into_iter());
    builder.push(" GROUP BY rule ORDER BY MAX(severity) DESC, rule ASC");
}

/// The granularity of `finding_counts` (migration 0011): first and last sightings by hour.
const HOUR_MS: i64 = 3_600_000;

/// Most findings a page reads through an asset's or a rule's index and then sorts (see
/// [`SqliteStore::narrow_index`]); reading and sorting 2,000 rows takes a few milliseconds.
const NARROW_INDEX_FINDINGS: i64 = 2_000;

/// How many entries of `findings_by_cluster` a page's probe reads at most (see
/// [`SqliteStore::page_fills_at_once`]): 0.3 ms when the page is not among them.
const PAGE_PROBE_ENTRIES: u32 = 2_000;

/// Whether `finding_counts` answers `query` exactly. The counters hold cluster, status,
/// severity, category, namespace and the hours of first and last sighting; asset, rule, text,
/// first-seen bound and demo filters need the findings. Times before 1970 would fall into
/// hours that SQLite's integer division rounds toward zero, so they need the findings too.
fn counters_answer(query: &FindingQuery) -> bool {
    query.asset_id.is_none()
        && query.rule.is_none()
        && query.text.is_none()
        && query.until.is_none()
        && query.demo.is_none()
        // '' stands for "no namespace" in the counters.
        && query.namespace.as_deref() != Some("")
        && query.since.is_none_or(|since| since.millis() >= 0)
}

/// The WHERE clause on `finding_counts` for the filters [`counters_answer`] accepts, except
/// the time range, which each aggregate applies in its own way.
fn push_counter_filters(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
) {
    builder.push(" WHERE kind = ").push_bind(kind.as_str());
    if let Some(cluster) = &query.cluster {
        builder.push(" AND cluster = ").push_bind(cluster);
    }
    push_in(
        builder,
        "status",
        query.statuses.iter().map(|status| status.as_str()),
    );
    if !query.severities.is_empty() {
        builder.push(" AND severity IN (");
        let mut separated = builder.separated(", ");
        for severity in &query.severities {
            separated.push_bind(severity.rank());
        }
        builder.push(")");
    }
    if let Some(category) = &query.category {
        builder.push(" AND category = ").push_bind(category);
    }
    if let Some(namespace) = &query.namespace {
        builder.push(" AND namespace = ").push_bind(namespace);
    }
}

/// How long a term's [`TermPlan`] is reused. A plan decides only how a search runs (any
/// subset of a term's trigrams finds a superset that LIKE re-checks, and a common term's
/// page is a LIKE scan), never what it finds, so an outdated plan costs time, not results.
const TERM_PLAN_TTL: Duration = Duration::from_secs(60);

/// Most terms whose plans are kept; beyond it the plans are forgotten and found again.
const TERM_PLANS_KEPT: usize = 1024;

/// What looking at the trigram index and the distinct texts taught about a term.
#[derive(Debug, Clone)]
pub(super) enum TermPlan {
    /// More than [`super::RARE_TERM_FINDINGS`] findings of one kind and cluster are its
    /// candidates: pages walk a time index, aggregates are narrowed by the candidates.
    Common {
        /// More than [`SearchWindow::COUNTED_MATCHES`] candidates, counted per source.
        beyond_bound: bool,
    },
    /// Look up the findings holding these of its trigrams.
    LookUp(Vec<String>),
    /// What it hits among one kind's and cluster's search keys (kept under
    /// [`KeyHits::cache_key`]).
    Keys(Arc<KeyHits>),
    /// What it hits among one kind's and cluster's distinct rules and asset labels (see
    /// [`super::field_hits`]).
    Fields(Arc<super::field_hits::FieldHits>),
}

/// What a term hits among the search keys of one kind and cluster (migration 0056): found
/// once by LIKE over a few thousand distinct texts, and kept (as a [`TermPlan::Keys`]) while
/// neither key table grew, which [`KeyHits::version`] tells.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct KeyHits {
    /// The largest rowids of `finding_search_keys` and `finding_search_assets` when found:
    /// rows are never deleted, so equal rowids mean equal tables.
    version: (i64, i64),
    /// Every key in scope holds the term, so every finding in scope matches.
    everywhere: bool,
    /// (rule, title) pairs every key of which holds the term: their findings match.
    full: Vec<(String, String)>,
    /// (rule, title) pairs some key of which holds it: their findings match when their own
    /// package or aliases do.
    partial: Vec<(String, String)>,
    /// Assets whose label holds it: all their findings match.
    assets: Vec<String>,
}

impl KeyHits {
    /// Whether only asset labels hold the term: no (rule, title) key.
    pub(super) fn only_assets(&self) -> bool {
        self.full.is_empty() && self.partial.is_empty()
    }

    /// Where the hits of `needle` in `query`'s kind and cluster are kept among the
    /// [`TermPlans`] (apart from trigram plans, which are kept by the term alone).
    fn cache_key(kind: FindingKind, query: &FindingQuery, needle: &str) -> String {
        format!("keys\0{}\0{:?}\0{needle}", kind.as_str(), query.cluster)
    }

    /// The distinct rules of the hit pairs.
    fn rules(&self) -> Vec<&str> {
        let mut rules: Vec<&str> = self
            .full
            .iter()
            .chain(&self.partial)
            .map(|(rule, _)| rule.as_str())
            .collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    }
}

/// Recent [`TermPlan`]s by lowercased term, shared by the store's clones. Under load a text
/// search otherwise counts the findings of each of its trigrams, then looks them up, on
/// every page view; with a plan it looks up once, or not at all for a common term.
#[derive(Debug, Clone, Default)]
pub(super) struct TermPlans(Arc<Mutex<HashMap<String, (Instant, TermPlan)>>>);

impl TermPlans {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Instant, TermPlan)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The plan found for `term` within [`TERM_PLAN_TTL`].
    pub(super) fn get(&self, term: &str) -> Option<TermPlan> {
        self.lock()
            .get(term)
            .filter(|(at, _)| at.elapsed() < TERM_PLAN_TTL)
            .map(|(_, plan)| plan.clone())
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    pub(super) fn insert(&self, term: &str, plan: TermPlan) {
        let mut plans = self.lock();
        if plans.len() >= TERM_PLANS_KEPT {
            plans.clear();
        }
        plans.insert(term.to_owned(), (Instant::now(), plan));
    }
}

/// Whether `query` filters on severity, category or namespace, which the time-ordered indexes
/// do not hold (see [`SqliteStore::extent`]).
fn selective(query: &FindingQuery) -> bool {
    !query.severities.is_empty() || query.category.is_some() || query.namespace.is_some()
}

/// The reader connection a page of findings is read on. When planning the page reads the
/// database first (a text search's look-up, an asset's or a rule's index, the counters'
/// extent), planning and page are one snapshot, in a transaction; a page read by its own
/// statement alone skips BEGIN and COMMIT, two round trips to the connection's worker thread
/// (each a wake-up and a context switch, which under load cost more than the statements).
pub(super) enum PageReader {
    /// The page's statement is the only one.
    Alone(PoolConnection<Sqlite>),
    /// Planning reads too.
    Snapshot(Transaction<'static, Sqlite>),
}

impl PageReader {
    /// A reader for a page of `query`: in a transaction unless nothing but the page is read.
    pub(super) async fn open(pool: &SqlitePool, query: &FindingQuery) -> Result<PageReader> {
        let planning_reads = query.text.is_some()
            || query.asset_id.is_some()
            || query.rule.is_some()
            || selective(query);
        Ok(if planning_reads {
            PageReader::Snapshot(pool.begin().await?)
        } else {
            PageReader::Alone(pool.acquire().await?)
        })
    }

    /// Ends the transaction, if any.
    pub(super) async fn finish(self) -> Result<()> {
        if let PageReader::Snapshot(transaction) = self {
            transaction.commit().await?;
        }
        Ok(())
    }
}

impl Deref for PageReader {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            PageReader::Alone(connection) => connection,
            PageReader::Snapshot(transaction) => transaction,
        }
    }
}

impl DerefMut for PageReader {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            PageReader::Alone(connection) => connection,
            PageReader::Snapshot(transaction) => transaction,
        }
    }
}

/// Where a page's search window starts: after the page's position when listing by last seen,
/// newest first (so that each page reads at most a window), else at the newest finding.
pub(super) fn window_start(query: &FindingQuery) -> Option<&Cursor> {
    (query.sort == SortKey::LastSeen && query.order == SortOrder::Desc)
        .then_some(query.cursor.as_ref())
        .flatten()
}

/// Where the findings a query selects lie in time, as far as the counters tell.
pub(super) enum Extent {
    /// The counters cannot answer the query.
    Unknown,
    /// No finding matches.
    Empty,
    /// Every matching finding was last seen in `from_ms..until_ms` (whole hours).
    Within {
        /// Start of the first hour holding a match.
        from_ms: i64,
        /// End of the last hour holding a match.
        until_ms: i64,
    },
}

/// Whether aggregates of a query searched as `text` read only its newest
/// [`SearchWindow::COUNTED_MATCHES`] matches (see [`push_matches`]): a term with more
/// candidates than that ([`TextSearch::Narrowed`] with `newest_only`).
pub(super) fn newest_matches_only(text: &TextSearch) -> bool {
    matches!(
        text,
        TextSearch::Narrowed {
            newest_only: true,
            ..
        }
    )
}

/// Opens a statement that aggregates the findings `query` selects (its text searched as
/// `text`; its cursor ignored) with the common table `matches`: their `columns` and
/// `last_seen`, under the filters and the `conditions` the caller adds. Every aggregate of a
/// text search reads its findings here, so that one bound holds for counters, chart and
/// groups alike: when `bounded` (for a term, [`newest_matches_only`]) it yields only the
/// newest [`SearchWindow::COUNTED_MATCHES`] matches, found by
/// walking a time-ordered index and reading only the rows the trigram index names (SQLite
/// checks the candidates' rowids against a Bloom filter from the index entry, so other rows
/// are never read): 140 ms for "C2 server" in a million alerts, where the walk reading every
/// row took 770 ms and counting all 125,000 matches 1.1 s. A walk of one cluster names
/// `findings_by_cluster` ([`walks_cluster_index`]), whose entries hold the filters and the
/// rule, so that a hit rule's findings are matched without their rows
/// ([`super::field_hits::push_walked_text`], the text condition of every walk, decided
/// here): 59 ms for the same walk. When `bounded`,
/// [`push_counted_since`] says whether the bound was reached.
///
/// A [`TextSearch::Keys`] search (grouped kinds) is exact and reads rows only for pairs that
/// hit partly: the term was tested against the distinct searched texts
/// ([`SqliteStore::key_hits`]), and the findings are the entries of `findings_grouped_by_rule`
/// whose (rule, title) or asset id those name ([`push_keyed_condition`]); `columns` must be
/// columns of that index. A term only asset labels hold reads the hit assets' entries of
/// `findings_by_asset` instead when that is cheap: `columns` are that index's
/// ([`asset_index_covers`]), or `read` says the hit assets' findings are few (the other
/// columns are read from their rows; for a label many assets share, `registry.example/`,
/// that is every hit finding's row, more than a pass over the grouped index's entries).
pub(super) fn push_matches(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    text: &TextSearch,
    read: MatchesRead,
    columns: &str,
    conditions: impl FnOnce(&mut QueryBuilder<Sqlite>),
) {
    let MatchesRead {
        bounded,
        few_hit_asset_findings,
    } = read;
    let mut unpaged = query.clone();
    unpaged.cursor = None;
    // Materialized when bounded: `push_counted_since` reads the matches a second time.
    builder.push(if bounded {
        "WITH matches AS MATERIALIZED (SELECT "
    } else {
        "WITH matches AS (SELECT "
    });
    builder.push(columns).push(", last_seen FROM findings");
    match (text, unpaged.text.take()) {
        (TextSearch::Keys(hits), Some(_))
            if hits.only_assets() && (few_hit_asset_findings || asset_index_covers(columns)) =>
        {
            // Only asset labels hold the term (an image's, say): the hit assets' findings from
            // their own index, not a pass over every entry of the grouped index (100,000
            // entries: 112-124 ms per statement for `vulnerabilities?q=app-42:` under load).
            // The columns the aggregates read that this index lacks are read from these
            // findings' rows.
            super::push_hit_assets_findings(builder, kind, &unpaged, to_json(&hits.assets));
            super::push_filters_beyond_asset_index(builder, &unpaged);
        }
        (TextSearch::Keys(hits), Some(term)) => {
            builder.push(" INDEXED BY findings_grouped_by_rule");
            let needle = term.to_lowercase();
            let keyed = Keyed {
                hits,
                needle: &needle,
                rule_bound: false,
            };
            push_grouped_filters(builder, kind, &unpaged, Some(keyed));
        }
        (TextSearch::Narrowed { fields, titles, .. }, Some(term)) if bounded => {
            // A walk for the newest matches: the filters, then one text condition whose rule
            // hits are told by the index entries when the walked index holds them.
            let on_cluster_index = walks_cluster_index(&unpaged);
            if on_cluster_index {
                builder.push(" INDEXED BY findings_by_cluster");
            }
            push_finding_filters(builder, kind, &unpaged, &TextSearch::Scan);
            unpaged.text = Some(term);
            let searched = (kind, &unpaged);
            super::field_hits::push_walked_text(
                builder,
                searched,
                titles,
                fields,
                on_cluster_index,
            );
        }
        (_, term) => {
            // One asset's findings without a term to look up: its own entries, whatever
            // else the filters name (an aggregate reads all of them).
            if matches!(text, TextSearch::Scan) && unpaged.asset_id.is_some() {
                builder.push(super::BY_ASSET_INDEX);
            }
            unpaged.text = term;
            push_finding_filters(builder, kind, &unpaged, text);
        }
    }
    conditions(builder);
    if bounded {
        builder
            .push(" ORDER BY last_seen DESC LIMIT ")
            .push_bind(i64::from(SearchWindow::COUNTED_MATCHES));
    }
    builder.push(") ");
}

/// How [`push_matches`] reads its findings, beside the search.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MatchesRead {
    /// Only the newest [`SearchWindow::COUNTED_MATCHES`] matches (for a term,
    /// [`newest_matches_only`]).
    pub(super) bounded: bool,
    /// The findings of the assets a term's labels hit, under the filters, are at most
    /// [`NARROW_INDEX_FINDINGS`] ([`SqliteStore::few_hit_asset_findings`]).
    pub(super) few_hit_asset_findings: bool,
}

/// Whether `columns` (a select list of [`push_matches`]) are all held by `findings_by_asset`
/// (migration 0062), so that its entries alone answer the aggregate.
fn asset_index_covers(columns: &str) -> bool {
    const HELD: [&str; 8] = [
        "kind",
        "status",
        "severity",
        "cluster",
        "namespace",
        "category",
        "last_seen",
        "first_seen",
    ];
    columns
        .split(',')
        .all(|column| HELD.contains(&column.trim()))
}

/// Whether a walk for the newest matches of `query` names `findings_by_cluster`: when it
/// filters a cluster and only on what that index holds (migration 0064: not an asset, a rule
/// of its own or `demo`), so that every filter and a hit rule are tested on the index's
/// entries. SQLite otherwise prefers the narrower `findings_by_status` for the default status
/// and reads every row the walk passes for the cluster.
fn walks_cluster_index(query: &FindingQuery) -> bool {
    query.cluster.is_some()
        && query.asset_id.is_none()
        && query.rule.is_none()
        && query.demo.is_none()
}

/// Appends ` AND` the bound of the sort column that a page after `query`'s cursor implies:
/// the keyset's condition (`column < v OR (column = v AND id < i)`, [`push_keyset`]) is an OR,
/// which SQLite does not turn into a range of an index, so a page deep in the list walked the
/// index from its first entry to the cursor's (page 8,000 of `prod`'s open alerts with
/// 1,000,000 stored: 40-53 ms; with this bound a seek, 0.2-0.4 ms).
fn push_position_bound(builder: &mut QueryBuilder<Sqlite>, query: &FindingQuery) {
    if let Some(cursor) = &query.cursor {
        let comparison = match query.order {
            SortOrder::Desc => "<=",
            SortOrder::Asc => ">=",
        };
        builder
            .push(format_args!(" AND {} {comparison} ", query.sort.column()))
            .push_bind(cursor.value);
    }
}

/// Whether aggregates of a text search of `kind` read the search keys (migration 0056,
/// [`TextSearch::Keys`]): the kinds [`grouped_indexes_hold`], whose index holds rule and title.
pub(super) fn searched_by_keys(kind: FindingKind) -> bool {
    grouped_indexes_hold(kind)
}

/// The searched text of a grouped kind's finding beside title, rule and asset label, as
/// `finding_search_keys.extra` holds it (migration 0056).
fn key_extra() -> String {
    format!("CASE WHEN kind = 'vulnerability' THEN {VULNERABILITY_TEXT} ELSE '' END")
}

/// ` WHERE kind = … [AND cluster = …]` on a search-key table.
pub(super) fn push_key_scope(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
) {
    builder.push(" WHERE kind = ").push_bind(kind.as_str());
    if let Some(cluster) = &query.cluster {
        builder.push(" AND cluster = ").push_bind(cluster);
    }
}

/// The condition on an entry of `findings_grouped_by_rule` that its finding holds `needle`,
/// given what the needle `hits` among the search keys: its (rule, title) is a full hit, or a
/// partial one and its own row holds the needle (the only case that reads the row, for its
/// package and aliases), or its asset's label holds it (an asset id is a name-based UUID of
/// its label). The hits are bound as JSON arrays; without asset hits the condition names the
/// rules, so that only their entries are read (unless `rule_bound`: the statement binds the
/// rule itself).
fn push_keyed_condition(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    Keyed {
        hits,
        needle,
        rule_bound,
    }: Keyed<'_>,
) {
    let mut branches = 0;
    let mut branch = |builder: &mut QueryBuilder<Sqlite>| {
        builder.push(if branches == 0 { " AND (" } else { " OR " });
        branches += 1;
    };
    let pairs_in = |builder: &mut QueryBuilder<Sqlite>, pairs: &[(String, String)]| {
        builder
            .push("(rule, title) IN (SELECT value ->> 0, value ->> 1 FROM json_each(")
            .push_bind(to_json(&pairs))
            .push("))");
    };
    if !hits.full.is_empty() || !hits.partial.is_empty() {
        branch(builder);
        if rule_bound {
            builder.push("((");
        } else {
            builder
                .push("(rule IN (SELECT value FROM json_each(")
                .push_bind(to_json(&hits.rules()))
                .push(")) AND (");
        }
        if !hits.full.is_empty() {
            pairs_in(builder, &hits.full);
        }
        if !hits.partial.is_empty() {
            if !hits.full.is_empty() {
                builder.push(" OR ");
            }
            builder.push("(");
            pairs_in(builder, &hits.partial);
            push_like_text(builder, kind, needle);
            builder.push(")");
        }
        builder.push("))");
    }
    if !hits.assets.is_empty() {
        branch(builder);
        super::push_asset_ids_in(builder, to_json(&hits.assets), false);
    }
    // No hit: an empty list of rules, which SQLite still plans through the named index (for
    // a constant false it finds "no query solution").
    builder.push(if branches == 0 {
        " AND rule IN (SELECT value FROM json_each('[]'))"
    } else {
        ")"
    });
}

/// Adds the search keys (migration 0056) of the findings inserted after `after_rowid` when
/// `kinds` (those of the inserted findings) holds a kind that [`searched_by_keys`]: one
/// statement for a batch. Their distinct rules and asset labels (migration 0057) are added by
/// ingest from the batch itself (`known_rows.rs`).
pub(super) async fn add_search_keys(
    connection: &mut SqliteConnection,
    mut kinds: impl Iterator<Item = FindingKind>,
    after_rowid: i64,
) -> Result<()> {
    if kinds.any(searched_by_keys) {
        let mut keys = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO finding_search_keys (kind, cluster, rule, title, extra) \
             SELECT DISTINCT kind, cluster, rule, title, {} FROM findings WHERE rowid > ",
            key_extra()
        ));
        keys.push_bind(after_rowid)
            .push(" AND (kind = 'vulnerability' OR kind = 'baseline_risk') ON CONFLICT DO NOTHING");
        keys.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// Selects, as `counted_since`, the oldest last sighting among bounded [`push_matches`] when
/// the bound was reached (the aggregates are then lower bounds covering the matches last seen
/// at or after it), else NULL.
pub(super) fn push_counted_since(builder: &mut QueryBuilder<Sqlite>) {
    builder
        .push("(SELECT CASE WHEN COUNT(*) >= ")
        .push_bind(i64::from(SearchWindow::COUNTED_MATCHES))
        .push(" THEN MIN(last_seen) END FROM matches) AS counted_since");
}

/// The `counted_since` that [`push_counted_since`] selected into `rows` (the same in each).
pub(super) fn counted_since_of(rows: &[SqliteRow]) -> Result<Option<Timestamp>> {
    match rows.first() {
        Some(row) => Ok(row
            .try_get::<Option<i64>, _>("counted_since")?
            .map(Timestamp)),
        None => Ok(None),
    }
}

/// Adds rows of (severity, n) to `counts`, indexed by severity rank.
pub(super) fn add_by_severity(counts: &mut [u64; 5], rows: &[SqliteRow]) -> Result<()> {
    for row in rows {
        let severity = Severity::from_rank(row.try_get("severity")?)
            .ok_or_else(|| corrupt("findings", "severity", "out of range"))?;
        counts[severity.rank() as usize] += u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
    }
    Ok(())
}

/// Pushes the chart's statement for when neither `finding_counts` nor a walk of the newest
/// matches ([`SqliteStore::newest_matches`]) answers it: the findings `query` selects
/// (searched as `text`, unbounded) first seen in `start..end`, counted per interval of
/// `width`. No bound on `last_seen` here, though first_seen implies one: given it, SQLite
/// chose the time-ordered status index over an asset's own index for the chart of one asset's
/// 200 alerts, and walked all 750,000 open alerts of the month (15 s).
fn push_chart_of_findings(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    text: &TextSearch,
    (start, end, width): (i64, i64, i64),
) {
    let read = MatchesRead::default();
    push_matches(builder, kind, query, text, read, "first_seen", |builder| {
        builder
            .push(" AND first_seen >= ")
            .push_bind(start)
            .push(" AND first_seen < ")
            .push_bind(end);
    });
    builder
        .push("SELECT (first_seen - ")
        .push_bind(start)
        .push(") / ")
        .push_bind(width)
        .push(" AS bucket, COUNT(*) AS n FROM matches");
}

impl SqliteStore {
    /// What `needle` (lowercased) hits among the search keys of `kind` in `query`'s cluster:
    /// from [`TermPlans`] while the key tables are unchanged, else by LIKE over the keys.
    async fn key_hits(
        &self,
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        needle: &str,
    ) -> Result<Arc<KeyHits>> {
        let version: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(rowid), 0) FROM finding_search_keys), \
                    (SELECT COALESCE(MAX(rowid), 0) FROM finding_search_assets)",
        )
        .fetch_one(&mut *connection)
        .await?;
        let cache_key = KeyHits::cache_key(kind, query, needle);
        if let Some(TermPlan::Keys(hits)) = self.term_plans.get(&cache_key)
            && hits.version == version
        {
            return Ok(hits);
        }
        // The counters, chart and groups of a first view ask at once: one finds the hits
        // for the others (on the same version of the key tables).
        let hits = self
            .key_hits
            .share(format!("{cache_key}\0{version:?}"), || async {
                let key_columns = ["title", "rule", "extra"];
                let mut pairs = QueryBuilder::<Sqlite>::new(
                    "SELECT rule, title, MIN(hit) AS every FROM (SELECT rule, title, 1",
                );
                push_like_columns(&mut pairs, &key_columns, needle);
                pairs.push(" AS hit FROM finding_search_keys");
                push_key_scope(&mut pairs, kind, query);
                pairs.push(") GROUP BY rule, title HAVING MAX(hit) = 1");
                let (mut full, mut partial) = (Vec::new(), Vec::new());
                for row in pairs.build().fetch_all(&mut *connection).await? {
                    let pair = (row.try_get("rule")?, row.try_get("title")?);
                    if row.try_get::<i64, _>("every")? == 1 {
                        full.push(pair);
                    } else {
                        partial.push(pair);
                    }
                }
                let mut missed = QueryBuilder::<Sqlite>::new(
                    "SELECT NOT EXISTS (SELECT 1 FROM finding_search_keys",
                );
                push_key_scope(&mut missed, kind, query);
                missed.push(" AND NOT (1");
                push_like_columns(&mut missed, &key_columns, needle);
                missed.push("))");
                let everywhere: bool = missed
                    .build_query_scalar()
                    .fetch_one(&mut *connection)
                    .await?;
                let mut labels = QueryBuilder::<Sqlite>::new(
                    "SELECT DISTINCT asset_id FROM finding_search_assets",
                );
                push_key_scope(&mut labels, kind, query);
                push_like_columns(&mut labels, &["asset_label"], needle);
                let assets = labels
                    .build_query_scalar()
                    .fetch_all(&mut *connection)
                    .await?;
                Ok(KeyHits {
                    version,
                    everywhere,
                    full,
                    partial,
                    assets,
                })
            })
            .await?;
        self.term_plans
            .insert(&cache_key, TermPlan::Keys(Arc::clone(&hits)));
        Ok(hits)
    }

    /// How aggregates (counters, chart, groups) of `query` search its text, and the query
    /// they then run: for the kinds that [`searched_by_keys`], [`TextSearch::Keys`], or no
    /// text at all when every search key in scope holds the term (every finding matches, and
    /// the counters and the grouped indexes answer as without a search); for other kinds
    /// [`SqliteStore::text_search`]'s plan.
    pub(super) async fn aggregate_search<'q>(
        &self,
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &'q FindingQuery,
    ) -> Result<(Cow<'q, FindingQuery>, TextSearch)> {
        let Some(term) = query.text.as_deref().filter(|_| searched_by_keys(kind)) else {
            let text = self.text_search(connection, kind, query, false).await?;
            return Ok((Cow::Borrowed(query), text));
        };
        let hits = self
            .key_hits(connection, kind, query, &term.to_lowercase())
            .await?;
        if hits.everywhere {
            let mut everything = query.clone();
            everything.text = None;
            return Ok((Cow::Owned(everything), TextSearch::Scan));
        }
        Ok((Cow::Borrowed(query), TextSearch::Keys(hits)))
    }

    pub(super) async fn groups(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Page<FindingGroup>> {
        let limit = page_size(query.limit);
        // One read transaction: the groups and their window's end are the same snapshot.
        let mut transaction = self.reader.begin().await?;
        let (query, text) = self.aggregate_search(&mut transaction, kind, query).await?;
        let query = query.as_ref();
        let bounded = newest_matches_only(&text);
        let order = (query.group_sort, query.order);
        let walk = group_order::severity_walk(query.group_sort, query.order);
        let summarised = group_summary::page(&mut transaction, kind, query, limit).await?;
        let rows = if let Some(rows) = summarised {
            rows
        } else if text == TextSearch::Scan {
            match Self::narrow_index(&mut transaction, kind, query).await? {
                None if grouped_indexes_hold(kind) && walk => {
                    Self::groups_through_indexes(&mut transaction, kind, query, limit, None).await?
                }
                None if grouped_indexes_hold(kind) => {
                    // Another order needs every group: aggregated from the index's entries
                    // alone, in rule order, then sorted.
                    let mut builder = QueryBuilder::<Sqlite>::new(format!(
                        "SELECT {} FROM findings INDEXED BY findings_grouped_by_rule",
                        group_aggregates()
                    ));
                    push_grouped_filters(&mut builder, kind, query, None);
                    group_order::push_group_page(
                        &mut builder,
                        Grouped::Findings,
                        order,
                        query.cursor.as_ref(),
                        limit,
                    );
                    builder.build().fetch_all(&mut *transaction).await?
                }
                narrow => {
                    let mut builder = QueryBuilder::<Sqlite>::new(format!(
                        "SELECT {} FROM findings",
                        group_aggregates()
                    ));
                    if let Some(index) = narrow {
                        builder.push(format_args!(" INDEXED BY {index}"));
                    }
                    push_finding_filters(&mut builder, kind, query, &text);
                    group_order::push_group_page(
                        &mut builder,
                        Grouped::Findings,
                        order,
                        query.cursor.as_ref(),
                        limit,
                    );
                    builder.build().fetch_all(&mut *transaction).await?
                }
            }
        } else if let (TextSearch::Keys(hits), Some(term)) = (&text, &query.text)
            && hits.assets.is_empty()
            && walk
        {
            // Only rules the term hits have matches: their pages walk them.
            let needle = term.to_lowercase();
            let keyed = Keyed {
                hits,
                needle: &needle,
                rule_bound: false,
            };
            Self::groups_through_indexes(&mut transaction, kind, query, limit, Some(keyed)).await?
        } else {
            let few_hit_asset_findings = match &text {
                TextSearch::Keys(hits) if hits.only_assets() => {
                    Self::few_hit_asset_findings(&mut transaction, kind, query, hits).await?
                }
                _ => false,
            };
            let read = MatchesRead {
                bounded,
                few_hit_asset_findings,
            };
            let mut builder = QueryBuilder::<Sqlite>::new("");
            push_matches(
                &mut builder,
                kind,
                query,
                &text,
                read,
                &format!(
                    "rule, title, severity, category, status, asset_id, {FIX_KNOWN} AS fix_known, \
                     package"
                ),
                |_| {},
            );
            builder.push(format_args!("SELECT {}", group_aggregates()));
            if bounded {
                builder.push(", ");
                push_counted_since(&mut builder);
            }
            builder.push(" FROM matches");
            group_order::push_group_page(
                &mut builder,
                Grouped::Findings,
                order,
                query.cursor.as_ref(),
                limit,
            );
            builder.build().fetch_all(&mut *transaction).await?
        };
        let groups = rows
            .iter()
            .map(group_from_row)
            .collect::<Result<Vec<_>>>()?;
        let mut page = into_page(groups, limit, |group| {
            group_order::cursor_of(query.group_sort, group)
        });
        let counted_since = if bounded {
            counted_since_of(&rows)?
        } else if matches!(text, TextSearch::Window { .. }) {
            // Groups of a short term cover its window; they are not paged by time.
            Self::window_end(&mut transaction, kind, query, None)
                .await?
                .map(|end| Timestamp(end.value))
        } else {
            None
        };
        page.searched = counted_since.map(|since| SearchWindow {
            counted_since: Some(since),
            page_window_full: false,
        });
        transaction.commit().await?;
        Ok(page)
    }

    /// One page of groups (at most `limit` + 1, to tell whether more follow) without a text
    /// search, through the indexes of migration 0054: first the page's rules, walking
    /// `findings_grouped_by_severity` one severity at a time from the cursor, most severe first
    /// (a rule belongs to the severity of its most severe finding, so a rule with a more
    /// severe match, one seek in `findings_grouped_by_rule`, is left to that severity's walk);
    /// then the groups of those rules alone from `findings_grouped_by_rule`. Both read index
    /// entries only, about as many as the page's groups hold findings, where grouping every
    /// finding of the section read each of its rows (75,000 open vulnerabilities: 0.3–0.8 s).
    async fn groups_through_indexes(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        limit: u32,
        keyed: Option<Keyed<'_>>,
    ) -> Result<Vec<SqliteRow>> {
        let wanted = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let mut rules: Vec<String> = Vec::new();
        for severity in Self::severities_holding(connection, kind, query).await? {
            let rank = severity.rank();
            let after = query.cursor.as_ref().filter(|cursor| cursor.value == rank);
            if query
                .cursor
                .as_ref()
                .is_some_and(|cursor| cursor.value < rank)
            {
                continue;
            }
            let mut builder = QueryBuilder::<Sqlite>::new("");
            push_rules_of_severity(
                &mut builder,
                (kind, query),
                (rank, after.map(|cursor| cursor.id.as_str())),
                wanted - rules.len(),
                keyed,
            );
            rules.extend(
                builder
                    .build_query_scalar::<String>()
                    .fetch_all(&mut *connection)
                    .await?,
            );
            if rules.len() >= wanted {
                break;
            }
        }
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let mut builder = QueryBuilder::<Sqlite>::new("");
        push_groups_of_rules(&mut builder, kind, query, rules, keyed);
        Ok(builder.build().fetch_all(connection).await?)
    }

    /// The severities, most severe first, among which findings `query` selects may be: those
    /// it filters on (all without a severity filter), narrowed to those `finding_counts`
    /// holds matches of when the counters answer the query's filters. A severity without
    /// matches would otherwise cost a walk through all of its entries.
    async fn severities_holding(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Vec<Severity>> {
        let mut severities: Vec<Severity> = if query.severities.is_empty() {
            Severity::ALL.to_vec()
        } else {
            query.severities.clone()
        };
        severities.sort_by_key(|severity| std::cmp::Reverse(severity.rank()));
        severities.dedup();
        if !counters_answer(query) {
            return Ok(severities);
        }
        // One EXISTS per severity, each a seek on the counters' primary key (kind, cluster,
        // status, severity, …), which a status for every status keeps usable: a DISTINCT over
        // the counters read all of a section's rows (for vulnerabilities nearly one per
        // finding, each with its own hours: 5–9 ms for 75,000), the seeks 0.1 ms.
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT candidate.severity FROM (");
        for (index, severity) in severities.iter().enumerate() {
            if index > 0 {
                builder.push(" UNION ALL ");
            }
            builder
                .push("SELECT ")
                .push_bind(severity.rank())
                .push(" AS severity");
        }
        builder.push(") AS candidate WHERE EXISTS (SELECT 1 FROM finding_counts");
        let mut counted = query.clone();
        if counted.statuses.is_empty() {
            counted.statuses = Status::ALL.to_vec();
        }
        push_counter_filters(&mut builder, kind, &counted);
        if let Some(since) = query.since {
            // The hour holding `since` may hold matches after it.
            builder
                .push(" AND last_hour >= ")
                .push_bind(since.millis() / HOUR_MS);
        }
        builder.push(" AND severity = candidate.severity)");
        let holding: Vec<i64> = builder.build_query_scalar().fetch_all(connection).await?;
        severities.retain(|severity| holding.contains(&severity.rank()));
        Ok(severities)
    }

    /// Counts by severity from `finding_counts`, or `None` when the query filters on
    /// something the counters do not hold (the caller then counts the findings).
    pub(super) async fn counted_by_severity(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Option<[u64; 5]>> {
        if !counters_answer(query) {
            return Ok(None);
        }
        // One read transaction: the counters and the partial hour below see the same snapshot.
        let mut transaction = self.reader.begin().await?;
        let mut builder =
            QueryBuilder::<Sqlite>::new("SELECT severity, SUM(n) AS n FROM finding_counts");
        push_counter_filters(&mut builder, kind, query);
        let mut counts = [0; 5];
        if let Some(since) = query.since {
            // Hours after the one holding `since` come from the counters; that hour itself,
            // only partly inside the range, from the findings (an indexed range on last_seen).
            let next_hour = since.millis() / HOUR_MS + 1;
            builder.push(" AND last_hour >= ").push_bind(next_hour);
            let mut partial =
                QueryBuilder::<Sqlite>::new("SELECT severity, COUNT(*) AS n FROM findings");
            // No text here: counters_answer refuses text searches.
            push_finding_filters(&mut partial, kind, query, &TextSearch::Scan);
            partial
                .push(" AND last_seen < ")
                .push_bind(next_hour * HOUR_MS)
                .push(" GROUP BY severity");
            add_by_severity(
                &mut counts,
                &partial.build().fetch_all(&mut *transaction).await?,
            )?;
        }
        builder.push(" GROUP BY severity");
        add_by_severity(
            &mut counts,
            &builder.build().fetch_all(&mut *transaction).await?,
        )?;
        transaction.commit().await?;
        Ok(Some(counts))
    }

    /// The [`Extent`] of the findings `query` selects, for filters the time-ordered indexes
    /// do not hold (severity, category, namespace): the table query would otherwise walk every
    /// finding of the cluster to fill a page when few or none match (an empty category of a
    /// million alerts took 4.6 s). Other queries, and pages that [fill at
    /// once](Self::page_fills_at_once), get [`Extent::Unknown`]: the index walk finds their
    /// page at once.
    pub(super) async fn extent(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Extent> {
        if !selective(query)
            || !counters_answer(query)
            || Self::page_fills_at_once(connection, kind, query).await?
        {
            return Ok(Extent::Unknown);
        }
        let mut builder = QueryBuilder::<Sqlite>::new(
            "SELECT MIN(last_hour) AS first, MAX(last_hour) AS last FROM finding_counts",
        );
        push_counter_filters(&mut builder, kind, query);
        if let Some(since) = query.since {
            builder
                .push(" AND last_hour >= ")
                .push_bind(since.millis() / HOUR_MS);
        }
        let row = builder.build().fetch_one(connection).await?;
        let first: Option<i64> = row.try_get("first")?;
        let last: Option<i64> = row.try_get("last")?;
        // SQLite's integer division truncates toward zero: hour 0 holds -3,599,999..=3,599,999
        // and a negative hour h holds (h-1)·H exclusive to h·H inclusive.
        Ok(match first.zip(last) {
            None => Extent::Empty,
            Some((first, last)) => Extent::Within {
                from_ms: if first > 0 {
                    first * HOUR_MS
                } else {
                    (first - 1) * HOUR_MS + 1
                },
                until_ms: if last >= 0 {
                    (last + 1) * HOUR_MS
                } else {
                    last * HOUR_MS + 1
                },
            },
        })
    }

    /// Whether the newest [`PAGE_PROBE_ENTRIES`] entries of `findings_by_cluster` from the
    /// position of `query`'s page hold the whole page and one finding more: then the page's
    /// walk in time order finds it at once, and [`Self::extent`] need not read the counters.
    /// Their extent reads every counter row of the filters (one per hour of first and of last
    /// sighting, namespace and category): with 1,000,000 alerts over 30 days, 55,000 rows and
    /// 12 ms of CPU for `prod`'s open high and critical alerts, which capped that page at ≈ 220
    /// requests per second on two cores (p99 141 ms under 16 clients), growing with the days
    /// stored. The probe tests the filters on the index's entries (migration 0064), without
    /// reading rows, and stops at the page's last finding. Only for a page of one cluster
    /// newest first whose filters that index holds ([`walks_cluster_index`]).
    pub(super) async fn page_fills_at_once(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<bool> {
        let newest_first = query.sort == SortKey::LastSeen && query.order == SortOrder::Desc;
        let (Some(cluster), true) = (&query.cluster, newest_first && walks_cluster_index(query))
        else {
            return Ok(false);
        };
        let mut builder = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(*) FROM (SELECT 1 FROM (SELECT status, severity, category, namespace, \
             cluster, last_seen, first_seen FROM findings INDEXED BY findings_by_cluster WHERE kind = ",
        );
        builder
            .push_bind(kind.as_str())
            .push(" AND cluster = ")
            .push_bind(cluster);
        push_position_bound(&mut builder, query);
        push_keyset(
            &mut builder,
            "last_seen",
            SortOrder::Desc,
            query.cursor.as_ref(),
            PAGE_PROBE_ENTRIES - 1,
        );
        builder.push(") WHERE 1");
        push_asset_index_filters(&mut builder, query);
        let beyond_page = i64::from(page_size(query.limit)) + 1;
        builder.push(" LIMIT ").push_bind(beyond_page).push(")");
        let matches: i64 = builder.build_query_scalar().fetch_one(connection).await?;
        Ok(matches == beyond_page)
    }

    /// Whether the findings of the assets `hits` names (a term only their labels hold) under
    /// `query`'s filters that `findings_by_asset` holds are at most [`NARROW_INDEX_FINDINGS`]:
    /// counted (capped) from that index's entries, so that [`push_matches`] reads their rows
    /// only when they are few.
    async fn few_hit_asset_findings(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        hits: &KeyHits,
    ) -> Result<bool> {
        let mut builder =
            QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM (SELECT 1 FROM findings");
        super::push_hit_assets_findings(&mut builder, kind, query, to_json(&hits.assets));
        builder
            .push(" LIMIT ")
            .push_bind(NARROW_INDEX_FINDINGS + 1)
            .push(")");
        let findings: i64 = builder
            .build_query_scalar()
            .fetch_one(&mut *connection)
            .await?;
        Ok(findings <= NARROW_INDEX_FINDINGS)
    }

    /// The index a page of `query` reads instead of walking a time-ordered one, when an
    /// equality filter of an index selects at most [`NARROW_INDEX_FINDINGS`] findings: one
    /// asset's or one rule's findings are few among a million, spread over the whole time
    /// range, and the walk in time order visits most of the cluster to fill a page (an asset's
    /// first page took 8.1 s, read through its index 2 ms). Without statistics SQLite cannot
    /// tell, and statistics would not help a reader connection that loaded the schema before
    /// they were written; so the store counts the candidates (capped) and names the index.
    /// Above the cap the matches are dense enough that the walk fills a page quickly.
    pub(super) async fn narrow_index(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Option<&'static str>> {
        let mut candidates = Vec::new();
        if let Some(asset_id) = query.asset_id {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "SELECT COUNT(*) FROM (SELECT 1 FROM findings INDEXED BY findings_by_asset WHERE kind = ",
            );
            builder.push_bind(kind.as_str());
            super::push_asset_filter(&mut builder, asset_id);
            push_in(
                &mut builder,
                "status",
                query.statuses.iter().map(|status| status.as_str()),
            );
            candidates.push(("findings_by_asset", builder));
        }
        if let (Some(rule), Some(cluster)) = (&query.rule, &query.cluster) {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "SELECT COUNT(*) FROM (SELECT 1 FROM findings INDEXED BY findings_by_rule WHERE kind = ",
            );
            builder
                .push_bind(kind.as_str())
                .push(" AND cluster = ")
                .push_bind(cluster)
                .push(" AND rule = ")
                .push_bind(rule);
            candidates.push(("findings_by_rule", builder));
        }
        for (index, mut builder) in candidates {
            builder
                .push(" LIMIT ")
                .push_bind(NARROW_INDEX_FINDINGS + 1)
                .push(")");
            let holding: i64 = builder
                .build_query_scalar()
                .fetch_one(&mut *connection)
                .await?;
            if holding <= NARROW_INDEX_FINDINGS {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// Completes `select` (which ends in `FROM findings`) into the statement of one page of
    /// `query`: the index to read, the filters, the time bounds the counters give and the
    /// keyset. `None` when the counters show that nothing matches.
    pub(super) async fn page_statement(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        text: &TextSearch,
        mut select: QueryBuilder<Sqlite>,
    ) -> Result<Option<QueryBuilder<Sqlite>>> {
        // Driven and windowed searches read their rows by rowid (NOT INDEXED) already.
        if matches!(text, TextSearch::Scan | TextSearch::Narrowed { .. })
            && let Some(index) = Self::narrow_index(connection, kind, query).await?
        {
            select.push(format_args!(" INDEXED BY {index}"));
        }
        push_finding_filters(&mut select, kind, query, text);
        match Self::extent(connection, kind, query).await? {
            Extent::Unknown => {}
            Extent::Empty => return Ok(None),
            Extent::Within { from_ms, until_ms } => {
                select
                    .push(" AND last_seen >= ")
                    .push_bind(from_ms)
                    .push(" AND last_seen < ")
                    .push_bind(until_ms);
            }
        }
        push_position_bound(&mut select, query);
        push_keyset(
            &mut select,
            query.sort.column(),
            query.order,
            query.cursor.as_ref(),
            page_size(query.limit),
        );
        Ok(Some(select))
    }

    /// Fills in [`Page::searched`] for a page of a [`TextSearch::Window`] search: whether the
    /// counters' window (the newest findings of the filters) left findings out, and, when the
    /// page's own window ended before the page filled, a next cursor at the window's end, so
    /// that "next" searches older findings.
    pub(super) async fn mark_search_window(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        page: &mut Page<Finding>,
    ) -> Result<()> {
        let counted_end = Self::window_end(connection, kind, query, None).await?;
        let by_last_seen = query.sort == SortKey::LastSeen && query.order == SortOrder::Desc;
        let mut page_window_full = false;
        if page.next_cursor.is_none() && by_last_seen {
            let page_end = match &query.cursor {
                // The first page's window is the counters' window.
                None => counted_end.clone(),
                Some(start) => Self::window_end(connection, kind, query, Some(start)).await?,
            };
            if let Some(end) = page_end {
                page.next_cursor = Some(end.encode());
                page_window_full = true;
            }
        }
        if counted_end.is_some() || page_window_full {
            page.searched = Some(SearchWindow {
                counted_since: counted_end.map(|end| Timestamp(end.value)),
                page_window_full,
            });
        }
        Ok(())
    }

    /// The last finding of a search window (the [`SearchWindow::FINDINGS`]-th the filters of
    /// `query` select without text, newest first, after `start`), when more follow it.
    pub(super) async fn window_end(
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        start: Option<&Cursor>,
    ) -> Result<Option<Cursor>> {
        let mut examined = query.clone();
        examined.text = None;
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT last_seen, id FROM findings");
        push_finding_filters(&mut builder, kind, &examined, &TextSearch::Scan);
        // Two rows from the window's last: the second shows that findings lie beyond it.
        push_keyset(&mut builder, "last_seen", SortOrder::Desc, start, 1);
        builder
            .push(" OFFSET ")
            .push_bind(i64::from(SearchWindow::FINDINGS) - 1);
        let rows = builder.build().fetch_all(connection).await?;
        if rows.len() < 2 {
            return Ok(None);
        }
        Ok(Some(Cursor {
            value: rows[0].try_get("last_seen")?,
            text: String::new(),
            id: rows[0].try_get("id")?,
        }))
    }

    pub(super) async fn over_time(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
        buckets: TimeBuckets,
    ) -> Result<Vec<u64>> {
        let width = buckets.width_ms.max(1);
        let count = buckets.buckets.clamp(1, 366);
        let start = buckets.start.millis();
        let end = start.saturating_add(width.saturating_mul(i64::from(count)));
        // A finding's last sighting is never before its first, so a `since` at or before the
        // first interval excludes nothing the intervals hold.
        let whole_hours = start >= HOUR_MS && start % HOUR_MS == 0 && width % HOUR_MS == 0;
        let since_implied = query.since.is_none_or(|since| since.millis() <= start);
        let mut connection = self.reader.acquire().await?;
        let mut counts = vec![0; count as usize];
        // A common term's chart counts the first sightings of the newest matches the counters'
        // walk finds (one walk when they are asked for at once). The console counts every
        // severity (its counters are the severity filter's choices), so a chart filtered by
        // severity counts those severities among the newest matches of every severity: the
        // same walk, and chart and counters cover the same matches. (A walk of the filter's own
        // newest matches read the time index further, to its end when they are fewer than the
        // bound: seconds for a severity none of them has.)
        let mut every_severity = query.clone();
        every_severity.severities.clear();
        let (walked, text) = self
            .aggregate_search(&mut connection, kind, &every_severity)
            .await?;
        if newest_matches_only(&text) {
            self.newest_matches(&mut connection, kind, &walked, &text)
                .await?
                .over_time(&query.severities, start, width, &mut counts);
            return Ok(counts);
        }
        let (query, text) = if query.severities.is_empty() {
            (walked, text)
        } else {
            self.aggregate_search(&mut connection, kind, query).await?
        };
        let query = query.as_ref();
        let mut builder = if counters_answer(query) && whole_hours && since_implied {
            let mut builder = QueryBuilder::<Sqlite>::new("SELECT (first_hour - ");
            builder
                .push_bind(start / HOUR_MS)
                .push(") / ")
                .push_bind(width / HOUR_MS)
                .push(" AS bucket, SUM(n) AS n FROM finding_counts");
            push_counter_filters(&mut builder, kind, query);
            builder
                .push(" AND first_hour >= ")
                .push_bind(start / HOUR_MS)
                .push(" AND first_hour < ")
                .push_bind(end / HOUR_MS);
            builder
        } else {
            let mut builder = QueryBuilder::<Sqlite>::new("");
            push_chart_of_findings(&mut builder, kind, query, &text, (start, end, width));
            builder
        };
        builder.push(" GROUP BY bucket");
        for row in builder.build().fetch_all(&mut *connection).await? {
            let bucket: i64 = row.try_get("bucket")?;
            if let Some(slot) = usize::try_from(bucket)
                .ok()
                .and_then(|index| counts.get_mut(index))
            {
                *slot = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    pub(super) async fn insert_fix_verification(
        &self,
        request: &FixVerification,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO fix_verifications (id, finding_id, asset_id, requested_by, requested_at, state, completed_at, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(request.id.to_string())
        .bind(request.finding_id.to_string())
        .bind(request.asset_id.to_string())
        .bind(&request.requested_by)
        .bind(request.requested_at.millis())
        .bind(request.state.as_str())
        .bind(request.completed_at.map(Timestamp::millis))
        .bind(request.reason.as_deref())
        .execute(&mut *transaction)
        .await?;
        insert_audit(&mut transaction, audit).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub(super) async fn verifications_of(&self, finding_id: Uuid) -> Result<Vec<FixVerification>> {
        let verifications = self.read_verifications(finding_id).await?;
        if !verifications
            .iter()
            .any(|verification| verification.state == VerificationState::Pending)
        {
            return Ok(verifications);
        }
        // Tasks time out when they are next looked at: a rescan task past its deadline fails,
        // and with it its verification (migration 0032's trigger). Only pending verifications
        // need that, and they are few, so reading stays on the readers.
        let mut connection = self.writer.acquire().await?;
        Self::expire_tasks(&mut connection, Timestamp::now()).await?;
        drop(connection);
        self.read_verifications(finding_id).await
    }

    async fn read_verifications(&self, finding_id: Uuid) -> Result<Vec<FixVerification>> {
        sqlx::query(
            "SELECT * FROM fix_verifications WHERE finding_id = $1 ORDER BY requested_at DESC, id DESC",
        )
        .bind(finding_id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(verification_from_row)
        .collect()
    }

    pub(super) async fn all_firewall_rules(&self) -> Result<Vec<FirewallRule>> {
        sqlx::query("SELECT * FROM firewall_rules ORDER BY priority, name")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(firewall_rule_from_row)
            .collect()
    }

    pub(super) async fn one_firewall_rule(&self, id: Uuid) -> Result<Option<FirewallRule>> {
        sqlx::query("SELECT * FROM firewall_rules WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(firewall_rule_from_row)
            .transpose()
    }

    pub(super) async fn upsert_firewall_rule(
        &self,
        rule: &FirewallRule,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM firewall_rules WHERE name = $1 AND id <> $2")
                .bind(&rule.rule.name)
                .bind(rule.id.to_string())
                .fetch_optional(&mut *transaction)
                .await?;
        if let Some(other) = taken {
            return Err(StoreError::Conflict(format!(
                "another firewall rule ({other}) is already named {:?}; pick a different name",
                rule.rule.name
            )));
        }
        sqlx::query(
            "INSERT INTO firewall_rules (id, name, priority, body, updated_by, updated_at, demo) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, priority = excluded.priority, \
             body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(rule.id.to_string())
        .bind(&rule.rule.name)
        .bind(i64::from(rule.rule.priority))
        .bind(to_json(&rule.rule))
        .bind(&rule.updated_by)
        .bind(rule.updated_at.millis())
        .bind(i64::from(rule.demo))
        .execute(&mut *transaction)
        .await?;
        insert_audit(&mut transaction, audit).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub(super) async fn remove_firewall_rule(&self, id: Uuid, audit: &AuditEntry) -> Result<bool> {
        self.execute_audited(
            "DELETE FROM firewall_rules WHERE id = $1",
            &id.to_string(),
            audit,
        )
        .await
    }
}

pub(super) fn group_from_row(row: &SqliteRow) -> Result<FindingGroup> {
    let count = |column: &str| -> Result<u64> {
        Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
    };
    Ok(FindingGroup {
        rule: row.try_get("rule")?,
        title: row.try_get("title")?,
        severity: Severity::from_rank(row.try_get("severity")?)
            .ok_or_else(|| corrupt("findings", "severity", "out of range"))?,
        package: row.try_get("package")?,
        packages: count("packages")?,
        category: row.try_get("category")?,
        findings: count("findings")?,
        open: count("open")?,
        assets: count("assets")?,
        fix_available: row.try_get::<i64, _>("fix_available")? != 0,
        last_seen: Timestamp(row.try_get("last_seen")?),
    })
}

fn verification_from_row(row: &SqliteRow) -> Result<FixVerification> {
    let state: &str = row.try_get("state")?;
    Ok(FixVerification {
        id: parse_uuid("fix_verifications", "id", row.try_get("id")?)?,
        finding_id: parse_uuid(
            "fix_verifications",
            "finding_id",
            row.try_get("finding_id")?,
        )?,
        asset_id: parse_uuid("fix_verifications", "asset_id", row.try_get("asset_id")?)?,
        requested_by: row.try_get("requested_by")?,
        requested_at: Timestamp(row.try_get("requested_at")?),
        state: VerificationState::from_name(state)
            .ok_or_else(|| corrupt("fix_verifications", "state", state))?,
        completed_at: row
            .try_get::<Option<i64>, _>("completed_at")?
            .map(Timestamp),
        reason: row.try_get("reason")?,
    })
}

fn firewall_rule_from_row(row: &SqliteRow) -> Result<FirewallRule> {
    let rule: NewFirewallRule =
        from_json("firewall_rules", "body", row.try_get::<&str, _>("body")?)?;
    Ok(FirewallRule {
        id: parse_uuid("firewall_rules", "id", row.try_get("id")?)?,
        rule,
        updated_by: row.try_get("updated_by")?,
        updated_at: Timestamp(row.try_get("updated_at")?),
        demo: row.try_get::<i64, _>("demo")? != 0,
    })
}

#[cfg(test)]
mod tests {
    //! The counters against a fresh count of the findings after every kind of change.

    use palisade_model::{
        AffectedAsset, AlertCategory, AlertDetails, BaselineCategory, BaselineDetails, Details,
        Exception, FindingReport, MatchOperator, NewException, ProcessInfo, Status,
        VulnerabilityDetails,
    };

    use super::*;
    use crate::sqlite::field_hits::TitleRows;
    use crate::{
        HandlingPolicy, Selection, Store,
        sqlite::test_support::{Random, audit, query_plan, temp_store, whitelist_alerts},
    };

    const BASE: i64 = 1_700_000_000_000;

    /// The ids of the first page of findings of `kind` that `query` selects.
    async fn ids_of(store: &SqliteStore, kind: FindingKind, query: &FindingQuery) -> Vec<Uuid> {
        store
            .list_findings(kind, query)
            .await
            .unwrap()
            .items
            .iter()
            .map(|finding| finding.id)
            .collect()
    }

    fn alert(cluster: &str, namespace: Option<&str>, exe: &str, at: i64) -> FindingReport {
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(at),
            severity: Severity::ALL[(at / 7_000_000).rem_euclid(5) as usize],
            rule: format!("Rule {}", exe.len() % 4),
            title: format!("{exe} ran"),
            asset: AffectedAsset {
                cluster: cluster.into(),
                namespace: namespace.map(Into::into),
                pod: Some(format!("pod-{}", at % 3)),
                ..Default::default()
            },
            details: Details::Alert(AlertDetails {
                category: exe.ends_with("sh").then_some(AlertCategory::Intrusion),
                process: ProcessInfo {
                    exe: exe.into(),
                    cmdline: exe.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            demo: false,
        }
    }

    fn vulnerability(cve: &str, image: &str, severity: Severity, at: i64) -> FindingReport {
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(at),
            severity,
            rule: cve.into(),
            title: format!("{cve} in openssl"),
            asset: AffectedAsset {
                cluster: "prod".into(),
                namespace: Some("shop".into()),
                image: Some(image.into()),
                ..Default::default()
            },
            details: Details::Vulnerability(VulnerabilityDetails {
                package: "openssl".into(),
                ecosystem: "Debian:12".into(),
                ..Default::default()
            }),
            demo: false,
        }
    }

    fn risk(namespace: &str, at: i64) -> FindingReport {
        FindingReport {
            id: Uuid::new_v4(),
            observed_at: Timestamp(at),
            severity: Severity::High,
            rule: "privileged".into(),
            title: "Privileged container".into(),
            asset: AffectedAsset {
                cluster: "prod".into(),
                namespace: Some(namespace.into()),
                workload: Some("Deployment/web".into()),
                ..Default::default()
            },
            details: Details::BaselineRisk(BaselineDetails {
                category: BaselineCategory::Workload,
                description: String::new(),
                remediation: String::new(),
                evidence: Vec::new(),
            }),
            demo: false,
        }
    }

    type CounterRow = (String, String, String, i64, String, String, i64, i64, i64);

    /// Every counter row equals a fresh GROUP BY of the findings, and no empty rows remain.
    async fn assert_counters_exact(store: &SqliteStore, step: &str) {
        let counters: Vec<CounterRow> = sqlx::query_as(
            "SELECT kind, cluster, status, severity, category, namespace, first_hour, last_hour, n \
             FROM finding_counts ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
        )
        .fetch_all(&store.reader)
        .await
        .unwrap();
        let fresh: Vec<CounterRow> = sqlx::query_as(
            "SELECT kind, cluster, status, severity, category, COALESCE(namespace, ''), \
             first_seen / 3600000, last_seen / 3600000, COUNT(*) FROM findings \
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
        )
        .fetch_all(&store.reader)
        .await
        .unwrap();
        assert!(!fresh.is_empty(), "{step}: the scenario stores findings");
        assert_eq!(counters, fresh, "{step}: counters differ from the findings");
    }

    /// The answers the console gets (from the counters) equal those counted from the
    /// findings, for every combination of the filters the counters serve.
    async fn assert_answers_match(store: &SqliteStore, step: &str) {
        let sinces = [
            None,
            Some(BASE - 3 * HOUR_MS),
            Some(BASE + 5 * HOUR_MS),
            Some(BASE + 7 * HOUR_MS + 1_234),
        ];
        let status_sets = [
            vec![],
            vec![Status::Open],
            vec![Status::Ignored, Status::Handled],
        ];
        let mut combination = 0;
        for kind in FindingKind::ALL {
            for cluster in [None, Some("prod"), Some("staging")] {
                for statuses in &status_sets {
                    for namespace in [None, Some("shop"), Some("pay")] {
                        for since in sinces {
                            combination += 1;
                            let query = FindingQuery {
                                cluster: cluster.map(Into::into),
                                statuses: statuses.clone(),
                                namespace: namespace.map(Into::into),
                                since: since.map(Timestamp),
                                severities: if combination % 2 == 0 {
                                    vec![Severity::High, Severity::Low]
                                } else {
                                    vec![]
                                },
                                ..Default::default()
                            };
                            assert_answer_matches(store, kind, &query, step).await;
                        }
                    }
                }
            }
        }
    }

    /// One query: counters and chart from the counters equal those from the findings
    /// (`demo: Some(false)` holds for every finding here and makes the store count them).
    async fn assert_answer_matches(
        store: &SqliteStore,
        kind: FindingKind,
        query: &FindingQuery,
        step: &str,
    ) {
        assert!(counters_answer(query));
        let from_findings = FindingQuery {
            demo: Some(false),
            ..query.clone()
        };
        assert_eq!(
            store.count_by_severity(kind, query).await.unwrap(),
            store.count_by_severity(kind, &from_findings).await.unwrap(),
            "{step}: {kind:?} {query:?}"
        );
        // Hourly and six-hourly intervals, as the console's 24-hour and 7-day ranges draw.
        for width in [HOUR_MS, 6 * HOUR_MS] {
            let buckets = TimeBuckets {
                start: Timestamp(BASE - BASE % width),
                width_ms: width,
                buckets: 30,
            };
            // A `since` after the first interval needs the findings on both sides.
            let mut chart_query = query.clone();
            chart_query.since = query.since.filter(|since| *since <= buckets.start);
            let chart_fresh = FindingQuery {
                demo: Some(false),
                ..chart_query.clone()
            };
            assert_eq!(
                store.over_time(kind, &chart_query, buckets).await.unwrap(),
                store.over_time(kind, &chart_fresh, buckets).await.unwrap(),
                "{step}: chart of {kind:?} {chart_query:?} by {width} ms"
            );
        }
    }

    async fn check(store: &SqliteStore, step: &str) {
        assert_counters_exact(store, step).await;
        assert_answers_match(store, step).await;
        assert_cluster_list_matches(store, step).await;
    }

    /// The cluster list's open counts (from the counters) equal a fresh count.
    async fn assert_cluster_list_matches(store: &SqliteStore, step: &str) {
        let clusters = store.clusters().await.unwrap();
        assert_eq!(clusters.len(), 2, "{step}: {clusters:?}");
        for summary in clusters {
            let mut fresh = [0; 4];
            for (slot, kind) in fresh.iter_mut().zip(FindingKind::ALL) {
                let query = FindingQuery {
                    cluster: Some(summary.name.clone()),
                    statuses: vec![Status::Open],
                    demo: Some(false),
                    ..Default::default()
                };
                *slot = store
                    .count_by_severity(kind, &query)
                    .await
                    .unwrap()
                    .by_rank
                    .iter()
                    .sum();
            }
            let listed = [
                summary.open_alerts,
                summary.open_vulnerabilities,
                summary.open_baseline_risks,
                summary.open_firewall_alerts,
            ];
            assert_eq!(listed, fresh, "{step}: cluster {}", summary.name);
        }
    }

    #[tokio::test]
    async fn counters_equal_a_fresh_count_after_every_change() {
        let (_dir, store) = temp_store().await;
        let policy = HandlingPolicy::default();

        // Alerts over 20 hours in two clusters, with and without a namespace.
        let mut reports = Vec::new();
        for index in 0..120_i64 {
            let cluster = if index % 4 == 0 { "staging" } else { "prod" };
            let namespace = [Some("shop"), Some("pay"), None][(index % 3) as usize];
            let exe = ["/bin/sh", "/usr/bin/bash", "/usr/bin/curl"][(index % 5 % 3) as usize];
            reports.push(alert(cluster, namespace, exe, BASE + index * 10 * 60_000));
        }
        store.ingest(&reports, &policy).await.unwrap();
        check(&store, "ingest").await;

        // Repeats: later ones move last_seen into a new hour, an earlier one moves first_seen
        // back, a more severe one raises the severity.
        let mut repeats = Vec::new();
        for report in reports.iter().take(30) {
            let mut later = report.clone();
            later.id = Uuid::new_v4();
            later.observed_at = Timestamp(report.observed_at.millis() + 50 * 60_000);
            later.severity = Severity::Critical;
            let mut earlier = report.clone();
            earlier.id = Uuid::new_v4();
            earlier.observed_at = Timestamp(report.observed_at.millis() - 40 * 60_000);
            repeats.extend([later, earlier]);
        }
        let outcome = store.ingest(&repeats, &policy).await.unwrap();
        assert!(outcome.aggregated > 0, "{outcome:?}");
        check(&store, "aggregation").await;

        // Vulnerabilities (states take the latest report) and baseline risks.
        let vulnerabilities: Vec<_> = (0..40_i64)
            .map(|index| {
                vulnerability(
                    &format!("CVE-2024-{}", index % 7),
                    &format!("app-{}", index % 5),
                    Severity::ALL[(index % 5) as usize],
                    BASE + index * 37 * 60_000,
                )
            })
            .collect();
        store.ingest(&vulnerabilities, &policy).await.unwrap();
        store
            .ingest(&[risk("shop", BASE), risk("pay", BASE + HOUR_MS)], &policy)
            .await
            .unwrap();
        check(&store, "vulnerabilities and risks").await;

        // Whitelist: closes the matching open alerts.
        let closed = whitelist_alerts(
            &store,
            "process.exe",
            MatchOperator::Regex,
            "bash$",
            "admins debug with bash",
        )
        .await;
        assert!(closed > 0);
        check(&store, "whitelist").await;

        // Ignore, undo, handle one.
        let open = FindingQuery {
            statuses: vec![Status::Open],
            limit: 10,
            ..Default::default()
        };
        let some = ids_of(&store, FindingKind::Alert, &open).await;
        let ignore = |ids: Vec<Uuid>, from: Status, to: Status| {
            let store = store.clone();
            async move {
                store
                    .set_status(
                        FindingKind::Alert,
                        &Selection::Ids(ids),
                        &[from],
                        to,
                        &audit("status"),
                    )
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            ignore(some.clone(), Status::Open, Status::Ignored).await,
            10
        );
        check(&store, "ignore").await;
        assert_eq!(
            ignore(some[..4].to_vec(), Status::Ignored, Status::Open).await,
            4
        );
        check(&store, "undo ignore").await;
        assert_eq!(
            ignore(some[..1].to_vec(), Status::Open, Status::Handled).await,
            1
        );
        check(&store, "handle").await;

        // Bulk-handle similar alerts.
        let similar = Selection::Similar {
            rule: "Rule 1".into(),
            asset_id: None,
        };
        let handled = store
            .set_status(
                FindingKind::Alert,
                &similar,
                &[Status::Open],
                Status::Handled,
                &audit("bulk"),
            )
            .await
            .unwrap();
        assert!(handled > 0);
        check(&store, "bulk handle").await;

        // An exception covers a risk; once expired, the risk reopens.
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
                .create_exception(&exception, &audit("exception"))
                .await
                .unwrap(),
            1
        );
        check(&store, "exception").await;
        let later = Timestamp(Timestamp::now().millis() + 120_000);
        assert_eq!(store.reopen_expired_exceptions(later).await.unwrap(), 1);
        check(&store, "exception expired").await;

        // New reports after handling: handled findings do not absorb them.
        let again: Vec<_> = reports
            .iter()
            .take(20)
            .map(|report| FindingReport {
                id: Uuid::new_v4(),
                observed_at: Timestamp(report.observed_at.millis() + 20 * 60_000),
                ..report.clone()
            })
            .collect();
        store.ingest(&again, &policy).await.unwrap();
        check(&store, "ingest after handling").await;
    }

    #[test]
    fn filters_the_counters_do_not_hold_need_the_findings() {
        assert!(counters_answer(&FindingQuery::default()));
        for query in [
            FindingQuery {
                text: Some("shell".into()),
                ..Default::default()
            },
            FindingQuery {
                asset_id: Some(Uuid::nil()),
                ..Default::default()
            },
            FindingQuery {
                rule: Some("Rule 1".into()),
                ..Default::default()
            },
            FindingQuery {
                until: Some(Timestamp(BASE)),
                ..Default::default()
            },
            FindingQuery {
                demo: Some(true),
                ..Default::default()
            },
            FindingQuery {
                namespace: Some(String::new()),
                ..Default::default()
            },
            FindingQuery {
                since: Some(Timestamp(-1)),
                ..Default::default()
            },
        ] {
            assert!(!counters_answer(&query), "{query:?}");
        }
    }

    /// Texts with LIKE wildcards, FTS5 syntax, quotes and non-ASCII case pairs.
    const TEXTS: [&str; 12] = [
        "Terminal shell in container",
        "Outbound connection to C2 server",
        "100% CPU_usage \\ back\\slash",
        "say \"hello\" AND NEAR(x y) * ^col: -z",
        "ÜNÏCÖDÉ école STRASSE straße İstanbul",
        "ΣΊΣΥΦΟΣ σίσυφος ς",
        "emoji 🔥 fire 🔥🔥",
        "tab\there, a'b''c",
        "CVE-2024-12345 GHSA-abcd-1234",
        "x AND y OR NOT z {a b}:c",
        "libssl3 openssl-dev",
        "Ǆ ǅ ǆ ﬃ ﬁx ÅÅ",
    ];

    fn text_alert(index: usize) -> FindingReport {
        let mut report = alert(
            "prod",
            Some("shop"),
            "/bin/sh",
            BASE + index as i64 * 60_000,
        );
        report.title = format!("{} #{index}", TEXTS[index % TEXTS.len()]);
        report.rule = TEXTS[(index * 5 + 3) % TEXTS.len()].into();
        if index.is_multiple_of(4) {
            // As runtime alerts are titled: the index then holds the text once (migration 0052).
            report.rule = report.title.clone();
        }
        report.asset.pod = Some(format!("pod {}", TEXTS[(index * 7 + 1) % TEXTS.len()]));
        report
    }

    fn text_vulnerability(index: usize, aliases: Vec<String>) -> FindingReport {
        let mut report = vulnerability(
            &format!("CVE-2025-{index:04}"),
            &format!("img-{}", index % 5),
            Severity::High,
            BASE + index as i64 * 60_000,
        );
        if let Details::Vulnerability(details) = &mut report.details {
            details.package = TEXTS[(index * 3 + 2) % TEXTS.len()].into();
            details.aliases = aliases;
        }
        report
    }

    /// The ids the LIKE scan alone finds for `term`, sorted.
    async fn scanned(store: &SqliteStore, kind: FindingKind, term: &str) -> Vec<String> {
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT id FROM findings WHERE kind = ");
        builder.push_bind(kind.as_str());
        super::super::push_like_text(&mut builder, kind, &term.to_lowercase());
        let mut ids: Vec<String> = builder
            .build_query_scalar()
            .fetch_all(&store.reader)
            .await
            .unwrap();
        ids.sort();
        ids
    }

    /// What the store answers for `term`: listed ids (sorted) and the total it counts.
    async fn searched(store: &SqliteStore, kind: FindingKind, term: &str) -> (Vec<String>, u64) {
        let query = FindingQuery {
            text: Some(term.into()),
            limit: crate::MAX_PAGE_SIZE,
            ..Default::default()
        };
        let page = store.list_findings(kind, &query).await.unwrap();
        assert!(page.next_cursor.is_none(), "{term:?}: more than one page");
        let mut ids: Vec<String> = page.items.iter().map(|f| f.id.to_string()).collect();
        ids.sort();
        let counted = store.count_by_severity(kind, &query).await.unwrap();
        (ids, counted.by_rank.iter().sum())
    }

    #[tokio::test]
    async fn the_trigram_index_finds_exactly_what_the_like_scan_finds() {
        let (_dir, store) = temp_store().await;
        let policy = HandlingPolicy::default();
        let alerts: Vec<_> = (0..180).map(text_alert).collect();
        store.ingest(&alerts, &policy).await.unwrap();
        let vulnerabilities: Vec<_> = (0..60)
            .map(|index| {
                text_vulnerability(
                    index,
                    vec![
                        format!("GHSA-old-{index}"),
                        TEXTS[(index * 11) % TEXTS.len()].into(),
                    ],
                )
            })
            .collect();
        store.ingest(&vulnerabilities, &policy).await.unwrap();
        // Aggregation replaces the aliases of the first ten with the latest report's: the
        // index must follow the update.
        let renamed: Vec<_> = (0..10)
            .map(|index| {
                let mut report = text_vulnerability(index, vec![format!("GHSA-new-{index}")]);
                report.observed_at = Timestamp(BASE + 86_400_000);
                report
            })
            .collect();
        let outcome = store.ingest(&renamed, &policy).await.unwrap();
        assert_eq!(outcome.aggregated, 10, "{outcome:?}");

        let mut terms: Vec<String> = [
            "",
            "a",
            "%",
            "_",
            "\\",
            "\"",
            "'",
            "\"\"",
            "%_%",
            "100%",
            "u_u",
            "cpu_",
            "\\ b",
            "AND",
            "and",
            "NEAR",
            "near(",
            "*",
            " * ",
            "^col",
            "col:",
            "-z",
            "OR NOT",
            "{a b}",
            "\"hello\"",
            "say \"",
            "ÉCOLE",
            "école",
            "Straße",
            "STRASSE",
            "İstanbul",
            "istanbul",
            "σίσυφος",
            "ΣΊΣΥΦΟΣ",
            "ς",
            "🔥",
            "🔥🔥",
            "fire 🔥",
            "\t",
            "a'b",
            "''c",
            "Ǆ",
            "ǆ ",
            "ﬃ",
            "ffi",
            "åå",
            "ghsa-new",
            "GHSA-old",
            "ghsa-old-3",
            "ghsa-new-3",
            "cve-2025-00",
            "c2",
            "C2 s",
            "openssl",
            "LIBSSL3",
            "pod ",
            "#17",
            "\0",
            "x\0y",
        ]
        .iter()
        .map(|term| term.to_string())
        .collect();
        // Random substrings of the stored texts, in random case, and random strings of the
        // characters that mean something to LIKE or FTS5.
        let mut random = Random(0x5eed_1234_abcd_9876);
        for _ in 0..300 {
            let text: Vec<char> = TEXTS[random.below(TEXTS.len())].chars().collect();
            let start = random.below(text.len());
            let length = 1 + random.below(8);
            let term: String = text[start..(start + length).min(text.len())]
                .iter()
                .map(|c| match random.below(3) {
                    0 => c.to_uppercase().collect::<String>(),
                    1 => c.to_lowercase().collect(),
                    _ => c.to_string(),
                })
                .collect();
            terms.push(term);
        }
        let alphabet: Vec<char> = "%_\\\"'*^:-(){} aNDéÉß🔥".chars().collect();
        for _ in 0..100 {
            let length = 1 + random.below(6);
            terms.push(
                (0..length)
                    .map(|_| alphabet[random.below(alphabet.len())])
                    .collect(),
            );
        }

        let mut found_by_index = 0;
        for term in &terms {
            for kind in [FindingKind::Alert, FindingKind::Vulnerability] {
                let expected = scanned(&store, kind, term).await;
                let (listed, counted) = searched(&store, kind, term).await;
                assert_eq!(listed, expected, "{kind:?} {term:?}: listed");
                assert_eq!(counted, expected.len() as u64, "{kind:?} {term:?}: counted");
                // Every way a statement may run the search (the store picks one by how many
                // findings hold the term) gives the same rows.
                let query = FindingQuery {
                    text: Some(term.clone()),
                    ..Default::default()
                };
                let mut connection = store.reader.acquire().await.unwrap();
                let planned = store
                    .text_search(&mut connection, kind, &query, true)
                    .await
                    .unwrap();
                let fields = store
                    .field_hits(&mut connection, kind, &query, &term.to_lowercase())
                    .await
                    .unwrap();
                let narrowed = |titles| TextSearch::Narrowed {
                    newest_only: false,
                    fields: Arc::clone(&fields),
                    titles,
                };
                let mut searches = vec![TextSearch::Scan, planned];
                if let Some(needle) = super::super::indexable(term) {
                    let trigrams = super::super::fts_all(&super::super::covering_trigrams(&needle));
                    // The candidates of a view whose hit rules cover the trigram rows: the
                    // rows beyond them, with no bound, whenever the term allows them.
                    let beyond = super::super::field_hits::rows_beyond_rule_hits(
                        &mut connection,
                        &needle,
                        trigrams.clone(),
                        i64::MAX - 1,
                    )
                    .await
                    .unwrap();
                    searches.push(narrowed(TitleRows::Trigrams(trigrams)));
                    searches.extend(beyond.map(|rows| narrowed(TitleRows::Listed(Arc::new(rows)))));
                }
                drop(connection);
                let every_finding: Vec<i64> = sqlx::query_scalar("SELECT rowid FROM findings")
                    .fetch_all(&store.reader)
                    .await
                    .unwrap();
                searches.push(TextSearch::Driven(every_finding));
                for search in searches {
                    let mut builder = QueryBuilder::<Sqlite>::new("SELECT id FROM findings");
                    push_finding_filters(&mut builder, kind, &query, &search);
                    let mut ids: Vec<String> = builder
                        .build_query_scalar()
                        .fetch_all(&store.reader)
                        .await
                        .unwrap();
                    ids.sort();
                    assert_eq!(ids, expected, "{kind:?} {term:?}: {search:?}");
                }
                if term.to_lowercase().chars().count() >= super::super::TRIGRAM_CHARS
                    && !expected.is_empty()
                {
                    found_by_index += 1;
                }
            }
            // For ASCII terms the candidates alone (the trigram index's rows for title and
            // extra, the findings of the hit rules and assets) are every row the scan finds
            // and more (with `detail=none` the index matches the term's trigrams anywhere):
            // they narrow, the LIKE re-check decides.
            if term.is_ascii() && !SearchWindow::bounds(term) {
                for kind in [FindingKind::Alert, FindingKind::Vulnerability] {
                    let query = FindingQuery {
                        text: Some(term.clone()),
                        ..Default::default()
                    };
                    let needle = term.to_lowercase();
                    let mut connection = store.reader.acquire().await.unwrap();
                    let fields = store
                        .field_hits(&mut connection, kind, &query, &needle)
                        .await
                        .unwrap();
                    let mut candidates =
                        QueryBuilder::<Sqlite>::new("SELECT id FROM findings WHERE rowid IN (");
                    super::super::field_hits::push_candidates(
                        &mut candidates,
                        kind,
                        &query,
                        &TitleRows::Trigrams(super::super::fts_all(
                            &super::super::covering_trigrams(&needle),
                        )),
                        &fields,
                        None,
                    );
                    candidates.push(")");
                    let candidates: std::collections::HashSet<String> = candidates
                        .build_query_scalar()
                        .fetch_all(&mut *connection)
                        .await
                        .unwrap()
                        .into_iter()
                        .collect();
                    drop(connection);
                    let missed: Vec<String> = scanned(&store, kind, term)
                        .await
                        .into_iter()
                        .filter(|id| !candidates.contains(id))
                        .collect();
                    assert!(
                        missed.is_empty(),
                        "{kind:?} {term:?}: not candidates: {missed:?}"
                    );
                }
            }
        }
        assert!(
            found_by_index > 200,
            "only {found_by_index} indexed searches found something"
        );
        // The update re-indexed the aliases.
        assert_eq!(
            searched(&store, FindingKind::Vulnerability, "GHSA-new-3")
                .await
                .1,
            1
        );
        // GHSA-old-30 to -39 only: finding 3 lost its old alias.
        assert_eq!(
            searched(&store, FindingKind::Vulnerability, "GHSA-old-3")
                .await
                .1,
            10
        );
        assert_eq!(
            searched(&store, FindingKind::Vulnerability, "GHSA-old-33")
                .await
                .1,
            1
        );
    }

    #[test]
    fn narrowed_statements_name_the_trigrams_covering_the_term() {
        use super::super::covering_trigrams;
        assert_eq!(covering_trigrams("c2 server"), ["c2 ", "ser", "ver"]);
        // A length not a multiple of three ends with the last trigram, overlapping.
        assert_eq!(covering_trigrams("abcd"), ["abc", "bcd"]);
        assert_eq!(covering_trigrams("straße-x"), ["str", "aße", "e-x"]);
        assert_eq!(covering_trigrams("abc"), ["abc"]);
        assert!(covering_trigrams("ab").is_empty());
        assert_eq!(covering_trigrams("aaaaaaa"), ["aaa"]);
        // Every character of a term is in a named trigram, up to the cap.
        for term in ["web-4242", "x_y%z odd", "σίσυφος", "12345678901"] {
            let chars: Vec<char> = term.chars().collect();
            let covering = covering_trigrams(term);
            for start in 0..chars.len() {
                assert!(
                    covering.iter().any(|trigram| {
                        (start.saturating_sub(2)..=start).any(|from| {
                            chars
                                .get(from..from + 3)
                                .is_some_and(|window| window.iter().collect::<String>() == *trigram)
                        })
                    }),
                    "{term:?}: character {start} not covered by {covering:?}"
                );
            }
        }
        let long: String = ('a'..='z').chain('A'..='Z').collect();
        assert_eq!(
            covering_trigrams(&long).len(),
            super::super::MAX_TRIGRAMS,
            "{long}"
        );
    }

    #[tokio::test]
    async fn a_filter_the_counters_find_empty_lists_nothing_and_bounds_the_rest() {
        let (_dir, store) = temp_store().await;
        let policy = HandlingPolicy::default();
        // Intrusion alerts (shells) in two early hours, others spread over a day, and one
        // before 1970 (hour 0 and negative hours hold times on both sides of an hour mark).
        let mut reports: Vec<_> = (0..48_i64)
            .map(|index| {
                alert(
                    "prod",
                    Some("shop"),
                    "/usr/bin/curl",
                    BASE + index * HOUR_MS / 2,
                )
            })
            .collect();
        reports.push(alert("prod", Some("shop"), "/bin/sh", BASE + 1_000));
        reports.push(alert(
            "prod",
            Some("shop"),
            "/bin/sh",
            BASE + HOUR_MS + 2_000,
        ));
        reports.push(alert("prod", Some("old"), "/bin/sh", -HOUR_MS - 5));
        reports.push(alert("prod", Some("old"), "/bin/bash", -5));
        store.ingest(&reports, &policy).await.unwrap();
        let list = |category: &str, namespace: Option<&str>| {
            let store = store.clone();
            let query = FindingQuery {
                category: Some(category.into()),
                namespace: namespace.map(Into::into),
                ..Default::default()
            };
            async move {
                let mut connection = store.reader.acquire().await.unwrap();
                let extent = SqliteStore::extent(&mut connection, FindingKind::Alert, &query)
                    .await
                    .unwrap();
                let listed = store
                    .list_findings(FindingKind::Alert, &query)
                    .await
                    .unwrap();
                (extent, listed.items.len())
            }
        };
        let (extent, listed) = list("malware", None).await;
        assert!(matches!(extent, Extent::Empty));
        assert_eq!(listed, 0);
        let (extent, listed) = list("intrusion", Some("shop")).await;
        let Extent::Within { from_ms, until_ms } = extent else {
            panic!("the counters hold intrusion alerts");
        };
        // BASE is 800 s into its hour: the two alerts lie in that hour and the next.
        let hour = BASE / HOUR_MS;
        assert_eq!((from_ms, until_ms), (hour * HOUR_MS, (hour + 2) * HOUR_MS));
        assert_eq!(listed, 2);
        // Before 1970: both alerts listed although their hours round toward zero.
        assert_eq!(list("intrusion", Some("old")).await.1, 2);
    }

    /// The query plan of the page `query` selects, as a reader connection runs it.
    async fn page_plan(store: &SqliteStore, query: &FindingQuery) -> String {
        let mut connection = store.reader.acquire().await.unwrap();
        let text = store
            .text_search(&mut connection, FindingKind::Alert, query, true)
            .await
            .unwrap();
        let select = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN SELECT * FROM findings");
        let statement =
            SqliteStore::page_statement(&mut connection, FindingKind::Alert, query, &text, select)
                .await
                .unwrap()
                .expect("the counters hold matches");
        explain(store, statement).await
    }

    /// The query plan of an `EXPLAIN QUERY PLAN` statement, its steps joined by "; ".
    async fn explain(store: &SqliteStore, statement: QueryBuilder<Sqlite>) -> String {
        let mut connection = store.reader.acquire().await.unwrap();
        query_plan(&mut connection, statement).await.join("; ")
    }

    /// The columns of `findings` that an `EXPLAIN` statement's program reads from the table
    /// itself rather than from an index.
    async fn table_columns_read(
        store: &SqliteStore,
        mut statement: QueryBuilder<Sqlite>,
    ) -> Vec<i64> {
        let mut connection = store.reader.acquire().await.unwrap();
        let table_root: i64 =
            sqlx::query_scalar("SELECT rootpage FROM sqlite_schema WHERE name = 'findings'")
                .fetch_one(&mut *connection)
                .await
                .unwrap();
        let program = statement.build().fetch_all(&mut *connection).await.unwrap();
        let step = |row: &SqliteRow| {
            (
                row.get::<String, _>("opcode"),
                row.get::<i64, _>("p1"),
                row.get::<i64, _>("p2"),
            )
        };
        let table_cursors: Vec<i64> = program
            .iter()
            .map(step)
            .filter(|(opcode, _, root)| opcode == "OpenRead" && *root == table_root)
            .map(|(_, cursor, _)| cursor)
            .collect();
        program
            .iter()
            .map(step)
            .filter(|(opcode, cursor, _)| opcode == "Column" && table_cursors.contains(cursor))
            .map(|(_, _, column)| column)
            .collect()
    }

    /// `count` alerts of one pod and rule, each its own finding, last seen a minute apart.
    fn pod_alerts(pod: &str, rule: &str, count: usize, start: i64) -> Vec<FindingReport> {
        (0..count)
            .map(|index| {
                let mut report = alert(
                    "prod",
                    Some("shop"),
                    &format!("/bin/tool-{index}"),
                    start + index as i64 * 60_000,
                );
                report.asset.pod = Some(pod.into());
                report.rule = rule.into();
                report
            })
            .collect()
    }

    #[tokio::test]
    async fn an_asset_or_rule_with_few_findings_is_read_through_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("palisade.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let policy = HandlingPolicy::default();
        let quiet = pod_alerts("quiet", "Rare rule", 30, BASE);
        let quiet_asset = quiet[0].asset.asset_id();
        store.ingest(&quiet, &policy).await.unwrap();
        let by_asset = |asset_id| FindingQuery {
            cluster: Some("prod".into()),
            statuses: vec![Status::Open],
            asset_id: Some(asset_id),
            ..Default::default()
        };
        let by_rule = |rule: &str| FindingQuery {
            cluster: Some("prod".into()),
            statuses: vec![Status::Open],
            rule: Some(rule.into()),
            ..Default::default()
        };
        // The asset's findings sought in the asset index (its generations' bounds are read
        // from that index too, for every plan).
        const SEEKS_ASSET: &str = "findings_by_asset (generation=? AND asset_key=?";
        // A fresh database.
        let plan = page_plan(&store, &by_asset(quiet_asset)).await;
        assert!(plan.contains(SEEKS_ASSET), "fresh: {plan}");

        // Grown: a busy pod with more findings than the cap, newer than the quiet one's.
        let busy = pod_alerts(
            "busy",
            "Common rule",
            NARROW_INDEX_FINDINGS as usize + 100,
            BASE + 86_400_000,
        );
        let busy_asset = busy[0].asset.asset_id();
        for batch in busy.chunks(500) {
            store.ingest(batch, &policy).await.unwrap();
        }
        let plan = page_plan(&store, &by_asset(quiet_asset)).await;
        assert!(plan.contains(SEEKS_ASSET), "grown: {plan}");
        let plan = page_plan(&store, &by_rule("Rare rule")).await;
        assert!(plan.contains("findings_by_rule"), "grown, rule: {plan}");
        // The busy pod's matches fill a page at once in time order: no index named.
        let plan = page_plan(&store, &by_asset(busy_asset)).await;
        assert!(!plan.contains(SEEKS_ASSET), "busy asset: {plan}");
        let plan = page_plan(&store, &by_rule("Common rule")).await;
        assert!(!plan.contains("findings_by_rule"), "common rule: {plan}");

        // Either way the page is the newest findings of the asset, in order, with a cursor.
        for (asset, pod) in [(quiet_asset, "quiet"), (busy_asset, "busy")] {
            let mut query = by_asset(asset);
            query.limit = 20;
            let page = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 20, "{pod}");
            assert!(page.next_cursor.is_some(), "{pod}");
            assert!(page.items.iter().all(|finding| finding.asset_id == asset));
            assert!(
                page.items
                    .windows(2)
                    .all(|pair| pair[0].last_seen > pair[1].last_seen),
                "{pod}: newest first"
            );
            let newest = if pod == "quiet" { &quiet } else { &busy };
            assert_eq!(
                page.items[0].last_seen,
                newest.last().unwrap().observed_at,
                "{pod}"
            );
        }

        // The chart of the quiet asset (not answered by the counters) reads its index too.
        let mut chart = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_chart_of_findings(
            &mut chart,
            FindingKind::Alert,
            &by_asset(quiet_asset),
            &TextSearch::Scan,
            (BASE, BASE + 30 * 86_400_000, 86_400_000),
        );
        let plan = explain(&store, chart).await;
        assert!(plan.contains(SEEKS_ASSET), "chart: {plan}");

        // After a restart, on new reader connections.
        drop(store);
        let store = SqliteStore::open(&path).await.unwrap();
        let plan = page_plan(&store, &by_asset(quiet_asset)).await;
        assert!(plan.contains(SEEKS_ASSET), "restarted: {plan}");
    }

    /// A page of one cluster's findings whose filters match densely is found by the walk in
    /// time order without the counters' extent; a sparse filter's page, and the last page of a
    /// dense one, still get their extent; either way the pages are the filters' findings, newest
    /// first, continued exactly through the cursor.
    #[tokio::test]
    async fn a_page_the_cluster_walk_fills_at_once_skips_the_counters_extent() {
        let (_dir, store) = temp_store().await;
        // 300 intrusion alerts (a shell each) a minute apart, and 3 older curl runs in
        // namespace `rare` (no category).
        let mut reports: Vec<_> = (0..300_i64)
            .map(|index| {
                alert(
                    "prod",
                    Some("shop"),
                    &format!("/opt/{index}/sh"),
                    BASE + index * 60_000,
                )
            })
            .collect();
        reports.extend((0..3_i64).map(|index| {
            alert(
                "prod",
                Some("rare"),
                &format!("/opt/{index}/curl"),
                BASE - 86_400_000 + index,
            )
        }));
        store
            .ingest(&reports, &HandlingPolicy::default())
            .await
            .unwrap();
        let dense = FindingQuery {
            cluster: Some("prod".into()),
            statuses: vec![Status::Open],
            category: Some("intrusion".into()),
            limit: 50,
            ..Default::default()
        };
        let sparse = FindingQuery {
            namespace: Some("rare".into()),
            category: None,
            ..dense.clone()
        };
        let fills_at_once = |query: FindingQuery| {
            let store = store.clone();
            async move {
                let mut connection = store.reader.acquire().await.unwrap();
                let fills =
                    SqliteStore::page_fills_at_once(&mut connection, FindingKind::Alert, &query)
                        .await
                        .unwrap();
                let extent = SqliteStore::extent(&mut connection, FindingKind::Alert, &query)
                    .await
                    .unwrap();
                (fills, extent)
            }
        };
        let (fills, extent) = fills_at_once(sparse.clone()).await;
        assert!(!fills, "3 matches do not fill a page");
        assert!(matches!(extent, Extent::Within { .. }));
        let page = store
            .list_findings(FindingKind::Alert, &sparse)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 3);
        assert!(page.next_cursor.is_none());

        let mut query = dense.clone();
        let mut listed = Vec::new();
        for page_number in 0..6 {
            let (fills, extent) = fills_at_once(query.clone()).await;
            // Pages 1-5 each have a finding after them; the sixth is the last 50.
            assert_eq!(fills, page_number < 5, "page {page_number}");
            assert_eq!(
                matches!(extent, Extent::Unknown),
                fills,
                "page {page_number}"
            );
            let page = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 50, "page {page_number}");
            listed.extend(page.items);
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(Cursor::decode(&cursor).unwrap()),
                None => {
                    assert_eq!(page_number, 5);
                    break;
                }
            }
        }
        let newest_first: Vec<_> = reports[..300]
            .iter()
            .rev()
            .map(|report| report.observed_at)
            .collect();
        assert_eq!(
            listed
                .iter()
                .map(|finding| finding.last_seen)
                .collect::<Vec<_>>(),
            newest_first
        );
        assert!(
            listed
                .iter()
                .all(|finding| finding.asset.namespace.as_deref() == Some("shop"))
        );
    }

    /// A page after a cursor seeks to the cursor's position in its index instead of walking
    /// every entry before it: the keyset's OR condition alone gave SQLite no range.
    #[tokio::test]
    async fn a_page_after_a_cursor_seeks_to_it() {
        let (_dir, store) = temp_store().await;
        let reports = pod_alerts("web", "Rule", 120, BASE);
        store
            .ingest(&reports, &HandlingPolicy::default())
            .await
            .unwrap();
        let mut query = FindingQuery {
            cluster: Some("prod".into()),
            statuses: vec![Status::Open],
            limit: 50,
            ..Default::default()
        };
        let first = store
            .list_findings(FindingKind::Alert, &query)
            .await
            .unwrap();
        query.cursor = Some(Cursor::decode(&first.next_cursor.unwrap()).unwrap());
        let plan = page_plan(&store, &query).await;
        assert!(plan.contains("last_seen<?"), "{plan}");
        // Oldest first, the bound is the other way.
        query.order = SortOrder::Asc;
        let plan = page_plan(&store, &query).await;
        assert!(plan.contains("last_seen>?"), "{plan}");
    }

    /// Ingests `reports` in batches of 2,000, as an agent's batches would bring them.
    async fn ingest_in_batches(store: &SqliteStore, reports: &[FindingReport]) {
        for batch in reports.chunks(2_000) {
            store
                .ingest(batch, &HandlingPolicy::default())
                .await
                .unwrap();
        }
    }

    /// Ingests `total` alerts of one pod, one second apart (oldest first), each a finding of
    /// its own, titled by `title_of(index)`.
    async fn seed_titled_alerts(
        store: &SqliteStore,
        total: usize,
        title_of: impl Fn(usize) -> String,
    ) {
        let reports: Vec<_> = (0..total)
            .map(|index| {
                let mut report = alert(
                    "prod",
                    Some("shop"),
                    &format!("/bin/tool-{index}"),
                    BASE + index as i64 * 1_000,
                );
                report.title = title_of(index);
                report
            })
            .collect();
        ingest_in_batches(store, &reports).await;
    }

    #[tokio::test]
    async fn a_short_term_searches_a_window_of_the_newest_findings_and_says_so() {
        let (_dir, store) = temp_store().await;
        let window = SearchWindow::FINDINGS as usize;
        let total = window + 50;
        // Three alerts hold "q7": two among the oldest fifty, one in the newest window.
        let holding = [5, 20, window + 40];
        seed_titled_alerts(&store, total, |index| {
            if holding.contains(&index) {
                format!("beacon Q7 #{index}")
            } else {
                format!("alert #{index}")
            }
        })
        .await;
        let query = FindingQuery {
            cluster: Some("prod".into()),
            text: Some("q7".into()),
            ..Default::default()
        };
        let title = |finding: &Finding| finding.title.clone();
        let list = |query: FindingQuery| {
            let store = store.clone();
            async move {
                store
                    .list_findings(FindingKind::Alert, &query)
                    .await
                    .unwrap()
            }
        };

        let first = list(query.clone()).await;
        assert_eq!(
            first.items.iter().map(title).collect::<Vec<_>>(),
            [format!("beacon Q7 #{}", window + 40)]
        );
        let oldest_counted = Timestamp(BASE + 50 * 1_000);
        assert_eq!(
            first.searched,
            Some(SearchWindow {
                counted_since: Some(oldest_counted),
                page_window_full: true,
            })
        );
        // The counters count the same window: a lower bound.
        let counted = store
            .count_by_severity(FindingKind::Alert, &query)
            .await
            .unwrap();
        assert_eq!(counted.by_rank.iter().sum::<u64>(), 1);
        assert_eq!(counted.counted_since, Some(oldest_counted));

        // "Search older" continues after the window: the fifty oldest, two of them matching.
        let older = FindingQuery {
            cursor: Some(Cursor::decode(first.next_cursor.as_deref().unwrap()).unwrap()),
            ..query.clone()
        };
        let second = list(older).await;
        assert_eq!(
            second.items.iter().map(title).collect::<Vec<_>>(),
            ["beacon Q7 #20", "beacon Q7 #5"]
        );
        assert!(second.next_cursor.is_none());
        assert_eq!(
            second.searched,
            Some(SearchWindow {
                counted_since: Some(oldest_counted),
                page_window_full: false,
            })
        );

        // Sorted by another column the page is the window's matches in that order, and
        // offers no older window.
        let by_count = FindingQuery {
            sort: crate::SortKey::Count,
            ..query.clone()
        };
        let sorted = list(by_count).await;
        assert_eq!(sorted.items.len(), 1);
        assert!(sorted.next_cursor.is_none());
        assert!(
            sorted
                .searched
                .is_some_and(|searched| !searched.page_window_full)
        );

        // Terms the trigram index looks up search everything, exactly.
        let indexed = FindingQuery {
            text: Some("Q7 #".into()),
            ..query.clone()
        };
        let page = list(indexed).await;
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.searched, None);
        // Filters selecting fewer findings than a window: exact, nothing to say.
        let few = FindingQuery {
            since: Some(Timestamp(BASE + 10 * 1_000)),
            until: Some(Timestamp(BASE + 30 * 1_000)),
            ..query.clone()
        };
        let page = list(few).await;
        assert_eq!(
            page.items.iter().map(title).collect::<Vec<_>>(),
            ["beacon Q7 #20"]
        );
        assert_eq!(page.searched, None);
    }

    #[tokio::test]
    async fn a_common_term_counts_its_newest_matches_and_says_so_a_rare_one_counts_exactly() {
        let (_dir, store) = temp_store().await;
        let bound = SearchWindow::COUNTED_MATCHES as usize;
        // More "C2 server" alerts than the bound, one second apart, then 40 "rare beacon"
        // alerts interleaved among the oldest.
        let common = bound + 60;
        seed_titled_alerts(&store, common + 40, |index| {
            if index < common {
                format!("Outbound connection to C2 server #{index}")
            } else {
                format!("rare beacon #{index}")
            }
        })
        .await;
        let search = |text: &str| FindingQuery {
            cluster: Some("prod".into()),
            text: Some(text.into()),
            ..Default::default()
        };

        let counted = store
            .count_by_severity(FindingKind::Alert, &search("c2 server"))
            .await
            .unwrap();
        assert_eq!(counted.by_rank.iter().sum::<u64>(), bound as u64);
        // The newest `bound` matches: the 60 oldest were left out.
        assert_eq!(counted.counted_since, Some(Timestamp(BASE + 60 * 1_000)));
        let buckets = TimeBuckets {
            start: Timestamp(BASE - BASE % HOUR_MS),
            width_ms: HOUR_MS,
            buckets: 24,
        };
        let charted = store
            .count_over_time(FindingKind::Alert, &search("c2 server"), buckets)
            .await
            .unwrap();
        assert_eq!(charted.iter().sum::<u64>(), bound as u64);

        // Under the bound, exact: fewer matches through a narrower filter of the same term.
        let mut recent = search("c2 server");
        recent.since = Some(Timestamp(BASE + (common as i64 - 500) * 1_000));
        let counted = store
            .count_by_severity(FindingKind::Alert, &recent)
            .await
            .unwrap();
        assert_eq!(counted.by_rank.iter().sum::<u64>(), 500);
        assert_eq!(counted.counted_since, None);

        let rare = store
            .count_by_severity(FindingKind::Alert, &search("rare beacon"))
            .await
            .unwrap();
        assert_eq!(rare.by_rank.iter().sum::<u64>(), 40);
        assert_eq!(rare.counted_since, None);
        let charted = store
            .count_over_time(FindingKind::Alert, &search("rare beacon"), buckets)
            .await
            .unwrap();
        assert_eq!(charted.iter().sum::<u64>(), 40);
    }

    #[tokio::test]
    async fn a_searched_grouped_view_groups_and_counts_every_match_through_the_search_keys() {
        let (_dir, store) = temp_store().await;
        let bound = SearchWindow::COUNTED_MATCHES as usize;
        // More openssl findings than the bound on aggregates of other kinds, one second apart,
        // each on its own image: the 60 oldest are CVE-2024-0001, the others split between two
        // ids; then 40 zlib findings of one id.
        let common = bound + 60;
        let reports: Vec<_> = (0..common + 40)
            .map(|index| {
                let cve = match index {
                    index if index < 60 => "CVE-2024-0001",
                    index if index >= common => "CVE-2024-0004",
                    index if index % 2 == 0 => "CVE-2024-0002",
                    _ => "CVE-2024-0003",
                };
                let mut report = vulnerability(
                    cve,
                    &format!("registry.example/app-{index}:1"),
                    Severity::High,
                    BASE + index as i64 * 1_000,
                );
                if index >= common {
                    report.title = format!("{cve} in zlib");
                    if let Details::Vulnerability(details) = &mut report.details {
                        details.package = "zlib".into();
                    }
                }
                report
            })
            .collect();
        ingest_in_batches(&store, &reports).await;
        let search = |text: &str| FindingQuery {
            cluster: Some("prod".into()),
            text: Some(text.into()),
            ..Default::default()
        };
        let grouped = |query: FindingQuery| {
            let store = store.clone();
            async move {
                let page = store
                    .finding_groups(FindingKind::Vulnerability, &query)
                    .await
                    .unwrap();
                let groups: Vec<(String, u64)> = page
                    .items
                    .iter()
                    .map(|group| (group.rule.clone(), group.findings))
                    .collect();
                (groups, page.searched)
            }
        };

        // Aggregates of a grouped kind read the search keys, whatever the term; pages of
        // findings and other kinds plan as before.
        let plan = |kind: FindingKind, text: &'static str| {
            let store = store.clone();
            async move {
                let mut connection = store.reader.acquire().await.unwrap();
                let query = search(text);
                let (planned, aggregate) = store
                    .aggregate_search(&mut connection, kind, &query)
                    .await
                    .unwrap();
                let page = store
                    .text_search(&mut connection, kind, &query, true)
                    .await
                    .unwrap();
                (planned.text.clone(), aggregate, page)
            }
        };
        for term in ["openssl", "cve-2024-0002", "zl", "o"] {
            let (text, aggregate, page) = plan(FindingKind::Vulnerability, term).await;
            assert_eq!(text.as_deref(), Some(term));
            assert!(matches!(aggregate, TextSearch::Keys(_)), "{term:?}");
            assert!(!matches!(page, TextSearch::Keys(_)), "{term:?}");
            let (_, aggregate, _) = plan(FindingKind::Alert, term).await;
            assert!(!matches!(aggregate, TextSearch::Keys(_)), "{term:?}");
        }
        // A term every search key of the cluster holds is no filter: the counters and the
        // grouped indexes answer.
        let (text, aggregate, _) = plan(FindingKind::Vulnerability, "CVE-2024-000").await;
        assert_eq!((text, aggregate), (None, TextSearch::Scan));
        // The aggregates and a page of groups read the entries of the hit rules only: seeks
        // by rule, no scan of the cluster's entries, no row.
        let (_, zlib, _) = plan(FindingKind::Vulnerability, "zlib").await;
        let TextSearch::Keys(hits) = &zlib else {
            panic!("{zlib:?}");
        };
        let mut counters = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_matches(
            &mut counters,
            FindingKind::Vulnerability,
            &search("zlib"),
            &zlib,
            MatchesRead::default(),
            "severity",
            |_| {},
        );
        counters.push("SELECT severity, COUNT(*) FROM matches GROUP BY severity");
        let keyed = Some(Keyed {
            hits,
            needle: "zlib",
            rule_bound: false,
        });
        let mut rules = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_rules_of_severity(
            &mut rules,
            (FindingKind::Vulnerability, &search("zlib")),
            (Severity::High.rank(), None),
            51,
            keyed,
        );
        let mut groups = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_groups_of_rules(
            &mut groups,
            FindingKind::Vulnerability,
            &search("zlib"),
            vec!["CVE-2024-0004".into()],
            keyed,
        );
        for statement in [counters, rules, groups] {
            let plan = explain(&store, statement).await;
            assert!(
                plan.contains(
                    "USING COVERING INDEX findings_grouped_by_rule (kind=? AND cluster=? AND rule=?"
                ),
                "{plan}"
            );
            assert!(!plan.contains("SCAN findings"), "{plan}");
        }

        let half = bound as u64 / 2;
        for (term, expected) in [
            (
                "openssl",
                vec![
                    ("CVE-2024-0001".to_owned(), 60),
                    ("CVE-2024-0002".to_owned(), half),
                    ("CVE-2024-0003".to_owned(), half),
                ],
            ),
            // Two characters: the whole section too, not a window of its newest findings.
            (
                "SL",
                vec![
                    ("CVE-2024-0001".to_owned(), 60),
                    ("CVE-2024-0002".to_owned(), half),
                    ("CVE-2024-0003".to_owned(), half),
                ],
            ),
            ("cve-2024-0002", vec![("CVE-2024-0002".to_owned(), half)]),
            ("zlib", vec![("CVE-2024-0004".to_owned(), 40)]),
            // An asset label: one image.
            ("APP-7:", vec![("CVE-2024-0001".to_owned(), 1)]),
            (
                "CVE-2024-0001 in openssl",
                vec![("CVE-2024-0001".to_owned(), 60)],
            ),
            (
                "cve-2024-000",
                vec![
                    ("CVE-2024-0001".to_owned(), 60),
                    ("CVE-2024-0002".to_owned(), half),
                    ("CVE-2024-0003".to_owned(), half),
                    ("CVE-2024-0004".to_owned(), 40),
                ],
            ),
            ("nowhere", vec![]),
        ] {
            let (groups, searched) = grouped(search(term)).await;
            assert_eq!(groups, expected, "{term:?}");
            assert_eq!(searched, None, "{term:?}: exact");
            let counted = store
                .count_by_severity(FindingKind::Vulnerability, &search(term))
                .await
                .unwrap();
            let total: u64 = expected.iter().map(|(_, findings)| findings).sum();
            assert_eq!(counted.by_rank.iter().sum::<u64>(), total, "{term:?}");
            assert_eq!(counted.counted_since, None, "{term:?}: exact");
            let over_time = store
                .count_over_time(
                    FindingKind::Vulnerability,
                    &search(term),
                    TimeBuckets {
                        start: Timestamp(BASE),
                        width_ms: HOUR_MS,
                        buckets: 24,
                    },
                )
                .await
                .unwrap();
            assert_eq!(over_time.iter().sum::<u64>(), total, "{term:?}: chart");
        }

        // Under a time range, the same.
        let mut recent = search("openssl");
        recent.since = Some(Timestamp(BASE + (common as i64 - 500) * 1_000));
        let (groups, searched) = grouped(recent).await;
        assert_eq!(
            groups,
            [
                ("CVE-2024-0002".to_owned(), 250),
                ("CVE-2024-0003".to_owned(), 250),
            ]
        );
        assert_eq!(searched, None);

        // A key added after a search was planned is found: what a term hits is kept only
        // while the key tables are unchanged.
        let mut later = vulnerability(
            "CVE-2024-0005",
            "registry.example/late:1",
            Severity::Low,
            BASE,
        );
        later.title = "CVE-2024-0005 in zlib".into();
        if let Details::Vulnerability(details) = &mut later.details {
            details.package = "zlib".into();
        }
        ingest_in_batches(&store, &[later]).await;
        assert_eq!(
            grouped(search("zlib")).await.0,
            [
                ("CVE-2024-0004".to_owned(), 40),
                ("CVE-2024-0005".to_owned(), 1)
            ]
        );
        // Keys are never removed: after the ids' findings are deleted their keys remain and
        // find nothing.
        sqlx::query("DELETE FROM findings WHERE rule IN ('CVE-2024-0004', 'CVE-2024-0005')")
            .execute(&store.writer)
            .await
            .unwrap();
        assert_eq!(grouped(search("zlib")).await.0, []);
        // Without text every finding is grouped.
        let (groups, searched) = grouped(FindingQuery {
            cluster: Some("prod".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups.iter().map(|(_, findings)| findings).sum::<u64>(),
            common as u64
        );
        assert_eq!(searched, None);
    }

    /// Resets the step counters of every statement prepared on `connection` (see
    /// [`vm_steps`]).
    async fn reset_vm_steps(connection: &mut SqliteConnection) {
        vm_steps(connection).await;
    }

    /// The virtual machine steps SQLite took, since the last [`reset_vm_steps`], in the
    /// statements prepared on `connection` (sqlx keeps them prepared): a count of the rows and
    /// entries they visited that no machine's speed or load changes, where a time bound would
    /// be either flaky or loose. Resets the counters.
    async fn vm_steps(connection: &mut SqliteConnection) -> i64 {
        let mut handle = connection.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        let mut steps = 0;
        // SAFETY: the handle's lock keeps sqlx's worker off the connection while the
        // statements are walked; they are only read, not stepped or finalized.
        unsafe {
            let mut statement = libsqlite3_sys::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !statement.is_null() {
                steps += i64::from(libsqlite3_sys::sqlite3_stmt_status(
                    statement,
                    libsqlite3_sys::SQLITE_STMTSTATUS_VM_STEP,
                    1,
                ));
                statement = libsqlite3_sys::sqlite3_next_stmt(db, statement);
            }
        }
        steps
    }

    /// The steps a page of groups of a grouped search takes for `rules` hit vulnerabilities,
    /// each also found in a package the term misses (so that the term hits (rule, title)
    /// pairs, not whole rules, as `lib1` does in the console benchmark).
    async fn steps_of_a_searched_page_of_groups(rules: usize) -> i64 {
        let (_dir, store) = temp_store().await;
        let reports: Vec<_> = (0..rules * 4)
            .map(|index| {
                let cve = format!("CVE-2024-{:05}", index % rules);
                let package = if (index / rules).is_multiple_of(2) {
                    "libz"
                } else {
                    "openssl"
                };
                let mut report = vulnerability(
                    &cve,
                    &format!("registry.example/app-{}:1", index / rules),
                    // A few critical ones: the probe for that severity tries every hit rule.
                    if index % rules >= rules - 10 {
                        Severity::Critical
                    } else {
                        Severity::Low
                    },
                    BASE + index as i64 * 1_000,
                );
                report.title = format!("{cve} in {package}");
                if let Details::Vulnerability(details) = &mut report.details {
                    details.package = package.into();
                }
                report
            })
            .collect();
        ingest_in_batches(&store, &reports).await;
        let query = FindingQuery {
            cluster: Some("prod".into()),
            text: Some("libz".into()),
            ..Default::default()
        };
        let kind = FindingKind::Vulnerability;
        let mut connection = store.reader.acquire().await.unwrap();
        let (query, text) = store
            .aggregate_search(&mut connection, kind, &query)
            .await
            .unwrap();
        let TextSearch::Keys(hits) = &text else {
            panic!("{text:?}");
        };
        assert_eq!(hits.rules().len(), rules);
        let keyed = Keyed {
            hits,
            needle: "libz",
            rule_bound: false,
        };
        reset_vm_steps(&mut connection).await;
        let groups =
            SqliteStore::groups_through_indexes(&mut connection, kind, &query, 50, Some(keyed))
                .await
                .unwrap();
        let steps = vm_steps(&mut connection).await;
        assert_eq!(groups.len(), 51);
        steps
    }

    #[tokio::test]
    async fn a_searched_page_of_groups_visits_entries_in_proportion_to_the_hit_rules() {
        // Each per-rule probe of a page of groups once listed every hit rule in its condition,
        // and SQLite read that list again for every probe: the entries visited grew with the
        // square of the hit rules (`vulnerabilities?q=lib1`, 2,000 rules: 15-30 s). Four
        // times the rules may take about four times the steps, not sixteen.
        let few = steps_of_a_searched_page_of_groups(100).await;
        let many = steps_of_a_searched_page_of_groups(400).await;
        assert!(
            many < few * 6,
            "{few} steps for 100 hit rules, {many} for 400"
        );
    }

    /// Vulnerability findings of 30 ids over 24 images in two clusters, three namespaces and
    /// two ecosystems, over 30 hours; an id's findings differ in severity (so that a group's
    /// severity is its most severe finding's), a third are ignored or handled, and some list a
    /// fixed version. Returns one image's asset id.
    async fn seed_mixed_vulnerabilities(store: &SqliteStore) -> Uuid {
        let mut random = Random(7);
        let reports: Vec<FindingReport> = (0..900_i64)
            .map(|index| {
                let image = format!("registry.example/app-{}:1", random.below(24));
                let mut report = vulnerability(
                    &format!("CVE-2024-{:04}", random.below(30)),
                    &image,
                    Severity::ALL[random.below(5)],
                    BASE + random.below(30) as i64 * HOUR_MS + index,
                );
                report.asset.cluster = ["prod", "prod", "staging"][random.below(3)].into();
                report.asset.namespace = Some(["shop", "pay", "ops"][random.below(3)].into());
                if let Details::Vulnerability(details) = &mut report.details {
                    details.ecosystem = ["Debian:12", "npm"][random.below(2)].into();
                    details.location = format!("/layer/{index}");
                    if random.below(2) == 0 {
                        details.fixed_versions = vec!["9.9.9".into()];
                    }
                    // Packages and aliases that the title does not name: findings of one
                    // (rule, title) differ in searched text.
                    details.package = ["openssl", "libssl3", "zlib"][random.below(3)].into();
                    if random.below(3) == 0 {
                        details.aliases = vec![format!("GHSA-{}%_'x", random.below(4))];
                    }
                }
                report
            })
            .collect();
        ingest_in_batches(store, &reports).await;
        let first_500 = FindingQuery {
            limit: 500,
            ..Default::default()
        };
        let ids = ids_of(store, FindingKind::Vulnerability, &first_500).await;
        for (chunk, status) in ids.chunks(150).zip([Status::Ignored, Status::Handled]) {
            store
                .set_status(
                    FindingKind::Vulnerability,
                    &Selection::Ids(chunk.to_vec()),
                    &[Status::Open],
                    status,
                    &audit("status"),
                )
                .await
                .unwrap();
        }
        reports[0].asset.asset_id()
    }

    /// Every filter combination the console offers on a grouped view, and more.
    fn group_queries(asset: Uuid) -> Vec<FindingQuery> {
        let mut queries = Vec::new();
        for severities in [
            vec![],
            vec![Severity::High],
            vec![Severity::Critical, Severity::Low],
        ] {
            for statuses in [vec![Status::Open], vec![], vec![Status::Ignored]] {
                for (category, namespace) in [
                    (None, None),
                    (Some("npm"), None),
                    (None, Some("pay")),
                    (Some("Debian:12"), Some("ops")),
                ] {
                    for since in [None, Some(Timestamp(BASE + 20 * HOUR_MS + 1))] {
                        queries.push(FindingQuery {
                            cluster: Some("prod".into()),
                            severities: severities.clone(),
                            statuses: statuses.clone(),
                            category: category.map(Into::into),
                            namespace: namespace.map(Into::into),
                            since,
                            ..Default::default()
                        });
                    }
                }
            }
        }
        queries.extend([
            FindingQuery::default(),
            FindingQuery {
                cluster: Some("prod".into()),
                until: Some(Timestamp(BASE + 10 * HOUR_MS)),
                demo: Some(false),
                ..Default::default()
            },
            FindingQuery {
                cluster: Some("prod".into()),
                asset_id: Some(asset),
                ..Default::default()
            },
            FindingQuery {
                cluster: Some("nowhere".into()),
                ..Default::default()
            },
        ]);
        queries
    }

    /// Text searches of a grouped view: terms in titles, rules, packages, aliases and asset
    /// labels, some in only part of a (rule, title)'s findings, LIKE's and quoting's special
    /// characters, under a few filter combinations.
    fn searched_group_queries() -> Vec<FindingQuery> {
        let mut queries = Vec::new();
        for term in [
            "openssl",
            "ZLIB",
            "libssl",
            "ssl3",
            "l",
            "app-1",
            "APP-2:",
            "registry.example/app-3:1",
            "cve-2024-001",
            "0001 in",
            "ghsa-2%",
            "%",
            "_",
            "%_'",
            "'",
            "\\",
            "nothing",
        ] {
            for mut query in [
                FindingQuery {
                    cluster: Some("prod".into()),
                    statuses: vec![Status::Open],
                    ..Default::default()
                },
                FindingQuery {
                    cluster: Some("prod".into()),
                    since: Some(Timestamp(BASE + 20 * HOUR_MS + 1)),
                    ..Default::default()
                },
                FindingQuery {
                    cluster: Some("prod".into()),
                    severities: vec![Severity::High],
                    namespace: Some("pay".into()),
                    ..Default::default()
                },
                FindingQuery::default(),
            ] {
                query.text = Some(term.into());
                queries.push(query);
            }
        }
        queries
    }

    /// Every group of `query`, aggregated over every row it selects in one statement (no
    /// index) and sorted here by its group sort and order, ties by rule: what the pages of
    /// `finding_groups` must add up to.
    async fn every_group(store: &SqliteStore, query: &FindingQuery) -> Vec<FindingGroup> {
        let mut builder = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM findings NOT INDEXED",
            group_aggregates()
        ));
        push_finding_filters(
            &mut builder,
            FindingKind::Vulnerability,
            query,
            &TextSearch::Scan,
        );
        builder.push(" GROUP BY rule");
        let mut connection = store.reader.acquire().await.unwrap();
        let rows = builder.build().fetch_all(&mut *connection).await.unwrap();
        let mut groups: Vec<FindingGroup> = rows
            .iter()
            .map(|row| group_from_row(row).unwrap())
            .collect();
        groups.sort_by(|a, b| {
            let by_key = match query.group_sort {
                GroupSortKey::Severity => a.severity.rank().cmp(&b.severity.rank()),
                GroupSortKey::Rule => a.rule.cmp(&b.rule),
                GroupSortKey::Category => a.category.cmp(&b.category),
                GroupSortKey::Assets => a.assets.cmp(&b.assets),
                GroupSortKey::Findings => a.findings.cmp(&b.findings),
                GroupSortKey::Open => a.open.cmp(&b.open),
                GroupSortKey::LastSeen => a.last_seen.cmp(&b.last_seen),
                GroupSortKey::FixAvailable => a.fix_available.cmp(&b.fix_available),
                GroupSortKey::Package => a.package.cmp(&b.package),
            };
            let by_key = match query.order {
                SortOrder::Asc => by_key,
                SortOrder::Desc => by_key.reverse(),
            };
            by_key.then_with(|| a.rule.cmp(&b.rule))
        });
        groups
    }

    /// The pages of `query` (`limit` groups each), walked forward through their cursors, with
    /// the cursor each was asked for.
    async fn pages_of_groups(
        store: &SqliteStore,
        query: &FindingQuery,
    ) -> Vec<(Option<Cursor>, Vec<FindingGroup>)> {
        let mut pages = Vec::new();
        let mut paged = query.clone();
        loop {
            let page = store
                .finding_groups(FindingKind::Vulnerability, &paged)
                .await
                .unwrap();
            assert_eq!(page.searched, None, "{query:?}: the groups are exact");
            assert!(page.items.len() <= query.limit as usize);
            pages.push((paged.cursor.clone(), page.items));
            match page.next_cursor {
                Some(next) => paged.cursor = Some(Cursor::decode(&next).unwrap()),
                None => break,
            }
        }
        pages
    }

    #[tokio::test]
    async fn every_sort_of_the_groups_pages_both_ways_as_sorting_every_group() {
        let (_dir, store) = temp_store().await;
        let asset = seed_mixed_vulnerabilities(&store).await;
        // Filters, an asset, and searches: rules only ("openssl", "cve-2024-001"), asset
        // labels ("app-1"), a short term ("l"), nothing.
        let mut queries: Vec<FindingQuery> = group_queries(asset).into_iter().step_by(9).collect();
        // What the group summary answers (migration 0059): a cluster and one status or all.
        for statuses in [vec![Status::Open], vec![Status::Ignored], Vec::new()] {
            queries.push(FindingQuery {
                cluster: Some("prod".into()),
                statuses,
                ..Default::default()
            });
        }
        for term in ["openssl", "cve-2024-001", "app-1", "l", "nothing"] {
            for mut query in [
                FindingQuery {
                    cluster: Some("prod".into()),
                    statuses: vec![Status::Open],
                    ..Default::default()
                },
                FindingQuery {
                    cluster: Some("prod".into()),
                    severities: vec![Severity::High, Severity::Critical],
                    since: Some(Timestamp(BASE + 10 * HOUR_MS)),
                    ..Default::default()
                },
            ] {
                query.text = Some(term.into());
                queries.push(query);
            }
        }
        let mut orders_seen = std::collections::HashSet::new();
        for query in &queries {
            for key in GroupSortKey::ALL {
                for order in [SortOrder::Asc, SortOrder::Desc] {
                    let mut sorted = query.clone();
                    sorted.group_sort = key;
                    sorted.order = order;
                    sorted.limit = 4;
                    let expected = every_group(&store, &sorted).await;
                    let pages = pages_of_groups(&store, &sorted).await;
                    let listed: Vec<FindingGroup> =
                        pages.iter().flat_map(|(_, page)| page.clone()).collect();
                    assert_eq!(listed, expected, "{sorted:?}");
                    // Back from the last page, each page asked for again by its cursor (the
                    // console's "Previous page") is the same page.
                    for (cursor, page) in pages.iter().rev() {
                        let mut again = sorted.clone();
                        again.cursor = cursor.clone();
                        let listed = store
                            .finding_groups(FindingKind::Vulnerability, &again)
                            .await
                            .unwrap();
                        assert_eq!(&listed.items, page, "{again:?}");
                    }
                    let rules: Vec<String> = expected.into_iter().map(|group| group.rule).collect();
                    if query.text.is_none() && rules.len() > 10 {
                        orders_seen.insert(rules);
                    }
                }
            }
        }
        assert!(
            orders_seen.len() > 2 * GroupSortKey::ALL.len(),
            "{} orders: the sorts differ on the seed",
            orders_seen.len()
        );
    }

    #[tokio::test]
    async fn pages_of_groups_through_the_indexes_equal_grouping_every_finding() {
        let (_dir, store) = temp_store().await;
        let asset = seed_mixed_vulnerabilities(&store).await;
        let mut pages_read = 0;
        let mut searched_matches = 0;
        for query in group_queries(asset)
            .into_iter()
            .chain(searched_group_queries())
        {
            let expected = every_group(&store, &query).await;
            if query.text.is_some() {
                // The counters and chart of a search count the same findings as its groups.
                let total: u64 = expected.iter().map(|group| group.findings).sum();
                let counted = store
                    .count_by_severity(FindingKind::Vulnerability, &query)
                    .await
                    .unwrap();
                assert_eq!(counted.by_rank.iter().sum::<u64>(), total, "{query:?}");
                assert_eq!(counted.counted_since, None, "{query:?}");
                let over_time = store
                    .count_over_time(
                        FindingKind::Vulnerability,
                        &query,
                        TimeBuckets {
                            start: Timestamp(BASE - HOUR_MS),
                            width_ms: HOUR_MS,
                            buckets: 32,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(over_time.iter().sum::<u64>(), total, "{query:?}: chart");
                searched_matches += total;
            }
            // Four groups a page, through the cursor, until no page follows.
            let mut paged = query.clone();
            paged.limit = 4;
            let mut listed = Vec::new();
            loop {
                let page = store
                    .finding_groups(FindingKind::Vulnerability, &paged)
                    .await
                    .unwrap();
                assert_eq!(page.searched, None, "{query:?}: the groups are exact");
                assert!(page.items.len() <= 4);
                listed.extend(page.items);
                pages_read += 1;
                match page.next_cursor {
                    Some(next) => paged.cursor = Some(Cursor::decode(&next).unwrap()),
                    None => break,
                }
            }
            assert_eq!(listed, expected, "{query:?}");
        }
        assert!(
            pages_read > 200,
            "{pages_read} pages: the seed fills several per query"
        );
        assert!(
            searched_matches > 5_000,
            "{searched_matches} matches: the terms find findings"
        );
        let everything = every_group(&store, &FindingQuery::default()).await;
        assert_eq!(everything.len(), 30);
        assert!(
            everything.iter().any(|group| group.fix_available)
                && everything.iter().any(|group| group.open < group.findings),
            "the seed exercises fix_known and statuses: {everything:?}"
        );
    }

    #[tokio::test]
    async fn a_page_of_groups_reads_index_entries_only_and_no_severity_without_matches() {
        let (_dir, store) = temp_store().await;
        let asset = seed_mixed_vulnerabilities(&store).await;
        // A search whose term an asset's label holds: the asset named by its id, which the
        // grouped indexes hold (its integer key is only in the row).
        let label_hits = KeyHits {
            version: (0, 0),
            everywhere: false,
            full: vec![("CVE-2024-0001".into(), "title".into())],
            partial: Vec::new(),
            assets: vec![asset.to_string()],
        };
        for query in group_queries(asset) {
            let mut searched = QueryBuilder::<Sqlite>::new("EXPLAIN ");
            push_groups_of_rules(
                &mut searched,
                FindingKind::Vulnerability,
                &query,
                vec!["CVE-2024-0001".into()],
                Some(Keyed {
                    hits: &label_hits,
                    needle: "app",
                    rule_bound: false,
                }),
            );
            assert_eq!(
                table_columns_read(&store, searched).await,
                Vec::<i64>::new(),
                "{query:?}: the groups of an asset's search read no column of the table"
            );
            if query.asset_id.is_some() {
                continue;
            }
            let mut rules = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
            push_rules_of_severity(
                &mut rules,
                (FindingKind::Vulnerability, &query),
                (Severity::High.rank(), Some("CVE-2024-0003")),
                51,
                None,
            );
            let plan = explain(&store, rules).await;
            let in_order = if query.cluster.is_some() {
                "SEARCH listed USING COVERING INDEX findings_grouped_by_severity \
                 (kind=? AND cluster=? AND severity=? AND rule>?)"
            } else {
                "SEARCH listed USING COVERING INDEX findings_grouped_by_severity (kind=?"
            };
            assert!(plan.contains(in_order), "{query:?}: {plan}");
            assert!(
                plan.contains("USING COVERING INDEX findings_grouped_by_rule (kind=? AND cluster=? AND rule=? AND severity")
                    || query.cluster.is_none(),
                "{query:?}: {plan}"
            );
            if query.cluster.is_some() {
                assert!(!plan.contains("TEMP B-TREE"), "{query:?}: {plan}");
            }
            let mut groups = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
            push_groups_of_rules(
                &mut groups,
                FindingKind::Vulnerability,
                &query,
                vec!["CVE-2024-0001".into(), "CVE-2024-0002".into()],
                None,
            );
            let plan = explain(&store, groups).await;
            assert!(
                plan.contains("USING COVERING INDEX findings_grouped_by_rule (kind=?"),
                "{query:?}: {plan}"
            );
            // Including the indexed fix-known expression, which the plan does not show.
            let mut groups = QueryBuilder::<Sqlite>::new("EXPLAIN ");
            push_groups_of_rules(
                &mut groups,
                FindingKind::Vulnerability,
                &query,
                vec!["CVE-2024-0001".into(), "CVE-2024-0002".into()],
                None,
            );
            assert_eq!(
                table_columns_read(&store, groups).await,
                Vec::<i64>::new(),
                "{query:?}: the groups read no column of the table"
            );

            // The severities walked hold every group's severity, and none that the counters
            // show holds no match.
            let walked = {
                let mut connection = store.reader.acquire().await.unwrap();
                SqliteStore::severities_holding(&mut connection, FindingKind::Vulnerability, &query)
                    .await
                    .unwrap()
            };
            let grouped: Vec<Severity> = every_group(&store, &query)
                .await
                .iter()
                .map(|group| group.severity)
                .collect();
            assert!(
                grouped.iter().all(|severity| walked.contains(severity)),
                "{query:?}: {walked:?} {grouped:?}"
            );
            for severity in &walked {
                let mut one = query.clone();
                one.severities = vec![*severity];
                let counted = store
                    .count_by_severity(FindingKind::Vulnerability, &one)
                    .await
                    .unwrap();
                assert!(counted.by_rank.iter().sum::<u64>() > 0 || query.since.is_some());
            }
        }
        // A term only asset labels hold: the counters read those assets' index entries, not
        // every entry of the grouped index.
        let assets_only = TextSearch::Keys(Arc::new(KeyHits {
            full: Vec::new(),
            ..label_hits
        }));
        let searched = FindingQuery {
            cluster: Some("prod".into()),
            text: Some("app".into()),
            ..Default::default()
        };
        let mut counters = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_matches(
            &mut counters,
            FindingKind::Vulnerability,
            &searched,
            &assets_only,
            MatchesRead::default(),
            "severity",
            |_| {},
        );
        counters.push("SELECT severity, COUNT(*) FROM matches GROUP BY severity");
        let plan = explain(&store, counters).await;
        assert!(
            plan.contains(
                "USING COVERING INDEX findings_by_asset (generation=? AND asset_key=? AND kind=?"
            ),
            "{plan}"
        );
        // The groups read columns that index lacks from the rows: through it only when the
        // hit assets' findings are few, else the grouped index's entries by asset id.
        let TextSearch::Keys(assets_only_hits) = &assets_only else {
            unreachable!()
        };
        let hit_findings: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM findings WHERE kind = 'vulnerability' AND cluster = 'prod' \
             AND asset_id IN (SELECT value FROM json_each($1))",
        )
        .bind(to_json(&assets_only_hits.assets))
        .fetch_one(&store.reader)
        .await
        .unwrap();
        assert!(hit_findings > 0);
        let mut connection = store.reader.acquire().await.unwrap();
        let few = SqliteStore::few_hit_asset_findings(
            &mut connection,
            FindingKind::Vulnerability,
            &searched,
            assets_only_hits,
        )
        .await
        .unwrap();
        drop(connection);
        assert_eq!(few, hit_findings <= NARROW_INDEX_FINDINGS, "{hit_findings}");
        for few_hit_asset_findings in [false, true] {
            let mut groups = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
            let read = MatchesRead {
                few_hit_asset_findings,
                ..Default::default()
            };
            let kind = FindingKind::Vulnerability;
            let columns = "rule, title, severity";
            push_matches(
                &mut groups,
                kind,
                &searched,
                &assets_only,
                read,
                columns,
                |_| {},
            );
            groups.push("SELECT rule, COUNT(*) FROM matches GROUP BY rule");
            let plan = explain(&store, groups).await;
            assert_eq!(
                plan.contains("findings_by_asset (generation=? AND asset_key=? AND kind=?"),
                few_hit_asset_findings,
                "{plan}"
            );
            assert_eq!(
                plan.contains("findings_grouped_by_rule"),
                !few_hit_asset_findings,
                "{plan}"
            );
        }
        // The same aggregate through the old index reads the rows.
        let mut old = QueryBuilder::<Sqlite>::new(format!(
            "EXPLAIN SELECT {} FROM findings INDEXED BY findings_by_rule",
            group_aggregates()
        ));
        push_finding_filters(
            &mut old,
            FindingKind::Vulnerability,
            &FindingQuery::default(),
            &TextSearch::Scan,
        );
        old.push(" GROUP BY rule");
        assert!(!table_columns_read(&store, old).await.is_empty());
        let nowhere = FindingQuery {
            cluster: Some("nowhere".into()),
            ..Default::default()
        };
        let mut connection = store.reader.acquire().await.unwrap();
        let walked =
            SqliteStore::severities_holding(&mut connection, FindingKind::Vulnerability, &nowhere)
                .await
                .unwrap();
        assert_eq!(walked, [], "an empty cluster walks nothing");
    }

    #[tokio::test]
    async fn a_failed_or_timed_out_rescan_fails_its_verification() {
        let (_dir, store) = temp_store().await;
        let now = Timestamp::now().millis();
        // Verifications whose rescan task the agent fails, passes its deadline, or answers
        // with a verdict. The tasks are written as the task store writes them (rows of
        // `agent_tasks` with the spec and result as JSON), so that only the trigger is tested.
        let mut verifications = Vec::new();
        for deadline in [now + 600_000, now - 1, now + 600_000] {
            let verification = FixVerification {
                id: Uuid::now_v7(),
                finding_id: Uuid::now_v7(),
                asset_id: Uuid::now_v7(),
                requested_by: "alice".into(),
                requested_at: Timestamp(now),
                state: VerificationState::Pending,
                completed_at: None,
                reason: None,
            };
            store
                .request_fix_verification(&verification, &audit("verify"))
                .await
                .unwrap();
            let task_id = Uuid::now_v7().to_string();
            let spec = serde_json::json!({
                "kind": "verify_fix", "verification_id": verification.id,
                "finding_id": verification.finding_id, "asset": { "cluster": "prod" },
                "vulnerability": "CVE-2024-1", "package": "zlib1g", "ecosystem": "Debian:12",
                "installed_version": "1",
            });
            sqlx::query(
                "INSERT INTO agent_tasks (id, agent_id, kind, spec, state, requested_by, requested_at, deadline) \
                 VALUES ($1, $2, 'verify_fix', $3, 'running', 'alice', $4, $5)",
            )
            .bind(&task_id)
            .bind(Uuid::now_v7().to_string())
            .bind(spec.to_string())
            .bind(now)
            .bind(deadline)
            .execute(&store.writer)
            .await
            .unwrap();
            verifications.push((verification, task_id));
        }
        let finish = |index: usize, result: serde_json::Value| {
            let store = store.clone();
            let task_id = verifications[index].1.clone();
            async move {
                sqlx::query(
                    "UPDATE agent_tasks SET state = $1, finished_at = $2, result = $3 WHERE id = $4",
                )
                .bind(if result["succeeded"] == true { "done" } else { "failed" })
                .bind(Timestamp::now().millis())
                .bind(result.to_string())
                .bind(task_id)
                .execute(&store.writer)
                .await
                .unwrap();
            }
        };
        let latest = |index: usize| {
            let store = store.clone();
            let finding_id = verifications[index].0.finding_id;
            async move { store.fix_verifications(finding_id).await.unwrap().remove(0) }
        };

        // Reading notices the passed deadline.
        assert_eq!(latest(0).await.state, VerificationState::Pending);
        let timed_out = latest(1).await;
        assert_eq!(timed_out.state, VerificationState::Failed);
        assert!(
            timed_out
                .reason
                .as_deref()
                .unwrap()
                .starts_with("timed out"),
            "{timed_out:?}"
        );
        assert!(timed_out.completed_at.is_some());

        let message = "cannot read /var/lib/dpkg/status: permission denied";
        finish(
            0,
            serde_json::json!({ "succeeded": false, "message": message }),
        )
        .await;
        let failed = latest(0).await;
        assert_eq!(failed.state, VerificationState::Failed);
        assert_eq!(failed.reason.as_deref(), Some(message));

        // A failed result with a verdict, too, is the server's to apply.
        finish(
            2,
            serde_json::json!({ "succeeded": false, "message": "rescanned",
                "verdict": { "fixed": false, "installed_versions": ["1"], "reason": "still there" } }),
        )
        .await;
        assert_eq!(latest(2).await.state, VerificationState::Pending);
        assert!(
            store
                .complete_fix_verification(
                    verifications[2].0.id,
                    VerificationState::StillVulnerable,
                    Timestamp::now()
                )
                .await
                .unwrap()
        );
        assert_eq!(latest(2).await.state, VerificationState::StillVulnerable);
    }
}
