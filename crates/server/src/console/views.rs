//! Pages: the cluster list, a cluster's four sections, finding details and diagnosis, groups
//! of vulnerabilities and baseline risks, the firewall rule editor and the audit log.

use std::sync::Arc;

use askama::Template;
use axum::{
    Extension,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::Response,
};
use palisade_model::{
    Details, Finding, FindingKind, FirewallRule, FixVerification, Role, Severity, Status, TaskSpec,
    Timestamp, VerificationState, VulnerabilityDetails,
};
use palisade_store::{
    AuditQuery, FindingGroup, FindingQuery, GroupSortKey, SearchWindow, TimeBuckets,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Console, SECTIONS, SEVERITIES_DESC, chart, encode,
    group_sort::{self, GroupHeader},
    render, section_kind,
    session::ConsoleUser,
    when,
};
use crate::{ApiError, AppState, api::findings::ListParams};

/// What every page shows around its content.
pub(crate) struct Chrome {
    pub title: String,
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub can_handle: bool,
    pub is_admin: bool,
    pub notice: Option<String>,
    /// (section, finding id, page to return to) of an ignore that can be undone.
    pub undo: Option<(String, String, String)>,
    pub demo: bool,
}

impl Chrome {
    pub(crate) fn new(user: &ConsoleUser, title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            user: user.caller.name.clone(),
            role: role_name(user.caller.role),
            csrf: user.csrf.clone(),
            can_handle: user.can_handle(),
            is_admin: user.caller.role.allows(Role::Admin),
            notice: None,
            undo: None,
            demo: false,
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Admin => "admin",
        Role::Agent => "agent",
        Role::Join => "join",
    }
}

#[derive(Template)]
#[template(path = "clusters.html")]
struct ClustersPage {
    chrome: Chrome,
    clusters: Vec<palisade_store::ClusterSummary>,
    nodes: Vec<NodeRow>,
    /// The cluster the demo data set fills, badged as demo in the list.
    demo_cluster: &'static str,
}

/// An enrolled agent's node and what it lost, summed over the agent's restarts.
struct NodeRow {
    name: String,
    cluster: String,
    last_seen: String,
    sensor_events_lost: u64,
    connect_reports_lost: u64,
}

/// `GET /console/clusters`: the clusters, and the nodes with what their agents lost.
pub(crate) async fn clusters(
    State(state): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Viewer)?;
    let clusters = state.store.clusters().await?;
    let nodes = state
        .store
        .agents()
        .await?
        .into_iter()
        .map(|agent| NodeRow {
            last_seen: when(agent.last_seen),
            sensor_events_lost: agent.losses.sensor_events,
            connect_reports_lost: agent.losses.connect_reports,
            name: agent.name,
            cluster: agent.cluster,
        })
        .collect();
    let mut chrome = Chrome::new(&user, "Clusters");
    chrome.demo = clusters
        .iter()
        .any(|cluster| cluster.name == crate::demo::DEMO_CLUSTER);
    Ok(render(&ClustersPage {
        chrome,
        clusters,
        nodes,
        demo_cluster: crate::demo::DEMO_CLUSTER,
    }))
}

/// `GET /console/clusters/{cluster}`: the alerts section.
pub(crate) async fn cluster_home(Path(cluster): Path<String>) -> axum::response::Redirect {
    axum::response::Redirect::to(&format!("/console/clusters/{}/alerts", encode(&cluster)))
}

/// Filters of a section, as they appear in its URL.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    pub severity: String,
    /// Absent means open; `any` means every status.
    pub status: Option<String>,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub asset: String,
    #[serde(default)]
    pub range: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub order: String,
    #[serde(default)]
    pub cursor: String,
    /// The cursors of the pages before this one, oldest first (see [`PageTrail`]).
    #[serde(default)]
    pub prev: String,
    #[serde(default)]
    pub notice: String,
    #[serde(default)]
    pub undo: String,
}

const MINUTE_MS: i64 = 60_000;

/// The way back through a section's pages. Store cursors only lead forward (keyset
/// pagination: a page starts after the last row of the one before, which stays exact while
/// findings arrive), so each "Next page" link carries the cursors of the pages walked so far
/// in its `prev` parameter, and "Previous page" pops the last one. Cursors are URL-safe
/// base64 and never contain the separator; the first page, which has no cursor, is written
/// [`PageTrail::FIRST_PAGE`].
struct PageTrail<'a> {
    /// The cursors behind the current page, oldest first.
    earlier: Vec<&'a str>,
}

impl<'a> PageTrail<'a> {
    const SEPARATOR: char = '.';
    /// The first page's place in the trail (not a base64 encoding of anything).
    const FIRST_PAGE: &'static str = "-";
    /// Most pages remembered: past that the oldest are forgotten, so that a long walk keeps
    /// its URLs short; "First page" still leads back to the start.
    const MAX_PAGES: usize = 20;

    fn parse(prev: &'a str) -> PageTrail<'a> {
        let mut earlier: Vec<&str> = prev
            .split(Self::SEPARATOR)
            .filter(|cursor| !cursor.is_empty())
            .collect();
        earlier.drain(..earlier.len().saturating_sub(Self::MAX_PAGES));
        PageTrail { earlier }
    }

    /// The `prev` parameter of the next page's link, whose page follows `current`.
    fn after(&self, current: &str) -> String {
        let current = if current.is_empty() {
            Self::FIRST_PAGE
        } else {
            current
        };
        let skip = (self.earlier.len() + 1).saturating_sub(Self::MAX_PAGES);
        let mut trail: Vec<&str> = self.earlier.iter().skip(skip).copied().collect();
        trail.push(current);
        trail.join(&Self::SEPARATOR.to_string())
    }

    /// The previous page's (cursor, prev), if the trail knows it.
    fn previous(&self) -> Option<(&'a str, String)> {
        let (last, before) = self.earlier.split_last()?;
        let cursor = if *last == Self::FIRST_PAGE { "" } else { last };
        Some((cursor, before.join(&Self::SEPARATOR.to_string())))
    }
}

/// Time ranges offered: (value, label, length in ms, chart intervals).
const RANGES: [(&str, &str, i64, u32); 5] = [
    ("24h", "Last 24 hours", 86_400_000, 24),
    ("7d", "Last 7 days", 7 * 86_400_000, 28),
    ("30d", "Last 30 days", 30 * 86_400_000, 30),
    ("90d", "Last 90 days", 90 * 86_400_000, 45),
    ("all", "Any time", 0, 30),
];

impl Filters {
    fn status(&self) -> &str {
        match self.status.as_deref() {
            None => "open",
            Some("") | Some("any") => "",
            Some(status) => status,
        }
    }

    fn range(&self) -> (&'static str, i64, u32) {
        RANGES
            .iter()
            .find(|(value, ..)| *value == self.range)
            .map_or(("all", 0, 30), |(value, _, length, buckets)| {
                (value, *length, *buckets)
            })
    }

    /// The store query of a section listing `kind`, validated by the API's own parameter
    /// parsing; a grouped section (see [`grouped`]) sorts by a column of its groups.
    pub(crate) fn query(
        &self,
        cluster: &str,
        kind: FindingKind,
        now: Timestamp,
    ) -> Result<FindingQuery, ApiError> {
        let (_, length, _) = self.range();
        // The range starts on a whole minute: the same filters then make the same query for a
        // minute, so the cached counters and chart serve it (a start that moved every
        // millisecond made every view of a time range count again).
        let since = (length > 0).then(|| {
            Timestamp((now.millis() - length).div_euclid(MINUTE_MS) * MINUTE_MS).to_rfc3339()
        });
        let non_empty = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
        let mut query = ListParams {
            cluster: Some(cluster.to_owned()),
            severity: non_empty(&self.severity),
            status: non_empty(self.status()),
            category: non_empty(&self.category),
            namespace: non_empty(&self.namespace),
            asset_id: non_empty(&self.asset),
            q: non_empty(&self.q),
            since,
            sort: non_empty(&self.sort).filter(|_| !grouped(kind)),
            order: non_empty(&self.order),
            limit: Some(50),
            cursor: non_empty(&self.cursor),
            ..ListParams::default()
        }
        .into_query()?;
        if grouped(kind) {
            query.group_sort = group_sort::parse(kind, &self.sort)?;
        }
        Ok(query)
    }

    /// The live stream of new alerts for the alerts page these filters show
    /// ([`super::live::stream`] applies the same filters), or `None` where new alerts would not
    /// go on top: a later page, an order other than newest first, or a text search (whose
    /// matching each poll would repeat for every open page).
    fn live_href(&self, cluster: &str, kind: FindingKind) -> Option<String> {
        let newest_first = matches!(self.sort.as_str(), "" | "last_seen") && self.order != "asc";
        (kind == FindingKind::Alert
            && self.cursor.is_empty()
            && self.q.trim().is_empty()
            && newest_first)
            .then(|| {
                self.href(
                    &format!("/console/clusters/{}/live", encode(cluster)),
                    &[("sort", ""), ("order", "")],
                )
            })
    }

    /// The query string of these filters with some parameters replaced.
    pub(crate) fn href(&self, base: &str, replace: &[(&str, &str)]) -> String {
        let status = self.status.clone().unwrap_or_else(|| "open".into());
        let mut pairs: Vec<(&str, String)> = vec![
            ("severity", self.severity.clone()),
            ("status", status),
            ("category", self.category.clone()),
            ("namespace", self.namespace.clone()),
            ("asset", self.asset.clone()),
            ("range", self.range.clone()),
            ("q", self.q.clone()),
            ("sort", self.sort.clone()),
            ("order", self.order.clone()),
        ];
        for (name, value) in replace {
            match pairs.iter_mut().find(|(key, _)| key == name) {
                Some(pair) => pair.1 = (*value).to_owned(),
                None => pairs.push((name, (*value).to_owned())),
            }
        }
        let query: Vec<String> = pairs
            .iter()
            .filter(|(name, value)| !value.is_empty() || *name == "status")
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        format!("{base}?{}", query.join("&"))
    }
}

/// An option of a select.
pub(crate) struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub(crate) fn new(value: &str, label: &str, selected: bool) -> Opt {
        Opt {
            value: value.to_owned(),
            label: label.to_owned(),
            selected,
        }
    }
}

/// What a section's category filter chooses from: (its label, its options, "any" first). A
/// finding's category is its alert category, baseline category, firewall defense mode or
/// vulnerability ecosystem ([`Details::category`]); ecosystems are an open set (`Debian:12`,
/// `PyPI`, …), so that filter is typed (no options). A value not among the options (from a
/// link) is kept as an option of its own, so that the form shows what the page filters by.
fn category_filter(kind: FindingKind, chosen: &str) -> (&'static str, Vec<Opt>) {
    let serde_name = |value: serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let (label, values): (&str, Vec<String>) = match kind {
        FindingKind::Alert => (
            "Category",
            palisade_model::AlertCategory::ALL
                .iter()
                .map(|category| serde_name(serde_json::json!(category)))
                .collect(),
        ),
        FindingKind::BaselineRisk => (
            "Category",
            palisade_model::BaselineCategory::ALL
                .iter()
                .map(|category| serde_name(serde_json::json!(category)))
                .collect(),
        ),
        FindingKind::FirewallAlert => (
            "Defense mode",
            palisade_model::FirewallAction::ALL
                .iter()
                .map(|action| action.as_str().to_owned())
                .collect(),
        ),
        FindingKind::Vulnerability => return ("Ecosystem", Vec::new()),
    };
    let chosen = chosen.trim();
    let mut options = vec![Opt::new("", "any", chosen.is_empty())];
    options.extend(
        values
            .iter()
            .map(|value| Opt::new(value, &value.replace(['-', '_'], " "), value == chosen)),
    );
    if !chosen.is_empty() && !values.iter().any(|value| value == chosen) {
        options.push(Opt::new(chosen, chosen, true));
    }
    (label, options)
}

/// The options of the protocol and action selects of the firewall rule editor.
pub(crate) fn firewall_options(rule: &palisade_model::NewFirewallRule) -> (Vec<Opt>, Vec<Opt>) {
    let protocol = rule.protocol.as_deref().unwrap_or("");
    let protocols = [
        ("", "any"),
        ("TCP", "TCP"),
        ("UDP", "UDP"),
        ("SCTP", "SCTP"),
    ]
    .iter()
    .map(|(value, label)| Opt::new(value, label, *value == protocol))
    .collect();
    let actions = palisade_model::FirewallAction::ALL
        .iter()
        .map(|action| Opt::new(action.as_str(), action.as_str(), *action == rule.action))
        .collect();
    (protocols, actions)
}

/// One severity counter.
pub(crate) struct Counter {
    pub severity: &'static str,
    pub count: u64,
    pub href: String,
    pub selected: bool,
}

/// One finding as a table row.
pub(crate) struct Row {
    pub id: String,
    pub href: String,
    pub handle_href: String,
    pub severity: &'static str,
    pub title: String,
    pub rule: String,
    pub category: String,
    pub asset: String,
    pub asset_href: String,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    pub status: &'static str,
    pub demo: bool,
    pub source: String,
    pub target: String,
    pub port: String,
    pub mode: String,
    pub rule_href: String,
}

impl Row {
    pub(crate) fn new(finding: &Finding, cluster: &str, section: &str) -> Row {
        let base = format!("/console/clusters/{}/{section}", encode(cluster));
        let (source, target, port, mode, rule_href) = match &finding.details {
            Details::FirewallAlert(firewall) => (
                firewall.source.clone(),
                if firewall.destination_object.is_empty() {
                    firewall.destination.clone()
                } else {
                    format!("{} ({})", firewall.destination_object, firewall.destination)
                },
                format!("{}/{}", firewall.port, firewall.protocol),
                firewall.mode.clone(),
                firewall
                    .rule_id
                    .as_ref()
                    .map(|rule| format!("/console/firewall-rules/{}", encode(rule)))
                    .unwrap_or_default(),
            ),
            _ => Default::default(),
        };
        Row {
            id: finding.id.to_string(),
            href: format!("{base}/{}", finding.id),
            handle_href: format!("{base}/{}/handle", finding.id),
            severity: finding.severity.as_str(),
            title: finding.title.clone(),
            rule: finding.rule.clone(),
            category: finding.details.category(),
            asset: finding.asset.label(),
            asset_href: format!("{base}?status=any&asset={}", finding.asset_id),
            first_seen: when(finding.first_seen),
            last_seen: when(finding.last_seen),
            count: finding.count,
            status: finding.status.as_str(),
            demo: finding.demo,
            source,
            target,
            port,
            mode,
            rule_href,
        }
    }
}

/// One group of vulnerabilities or baseline risks as a table row.
pub(crate) struct GroupRow {
    pub href: String,
    pub rule: String,
    /// The group's packages: the first by name, and how many more.
    pub packages: String,
    pub title: String,
    pub severity: &'static str,
    pub category: String,
    pub findings: u64,
    pub open: u64,
    pub assets: u64,
    pub fix_available: bool,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage {
    chrome: Chrome,
    cluster: String,
    section: &'static str,
    section_title: &'static str,
    tabs: Vec<(String, &'static str, bool)>,
    counters: Vec<Counter>,
    chart: String,
    filters: Filters,
    status: String,
    ranges: Vec<Opt>,
    statuses: Vec<Opt>,
    severities: Vec<Opt>,
    /// The category filter's label and options (none: typed, see [`category_filter`]).
    category_label: &'static str,
    categories: Vec<Opt>,
    sorts: Vec<Opt>,
    grouped: bool,
    /// The grouped table's column headers, each sorting by its column.
    group_headers: Vec<GroupHeader>,
    /// How the grouped table is sorted, for its caption.
    group_order: String,
    can_handle: bool,
    csrf: String,
    back: String,
    rows: Vec<Row>,
    groups: Vec<GroupRow>,
    next_href: Option<String>,
    previous_href: Option<String>,
    first_href: Option<String>,
    /// The page's live stream of new alerts, if new alerts go on top of it.
    live_href: Option<String>,
    /// Set when a short search term was searched in part of the findings only.
    search_window: Option<WindowNote>,
    /// Set when the counters are lower bounds ("≥ n"): the oldest last sighting they cover.
    counted_since: Option<String>,
    /// Set when the groups are formed from a common term's newest matches only (their counts
    /// are lower bounds): the oldest last sighting they cover.
    groups_counted_since: Option<String>,
    /// Most matches a text search counts ([`SearchWindow::COUNTED_MATCHES`]), written out.
    counted_matches: String,
}

/// `number` with thousands separated by commas (`10,000`).
fn with_thousands(number: u32) -> String {
    let digits = number.to_string();
    let mut written = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            written.push(',');
        }
        written.push(digit);
    }
    written
}

/// What the page says about a bounded text search (see [`SearchWindow`]).
pub(crate) struct WindowNote {
    /// How many findings one search reads, written out (`10,000`).
    findings: String,
    /// When counters and chart are lower bounds: the oldest last sighting they cover.
    counted_since: Option<String>,
    /// The page's window ended before the page filled: "next" searches older findings.
    page_window_full: bool,
}

impl WindowNote {
    fn new(window: SearchWindow) -> WindowNote {
        WindowNote {
            findings: with_thousands(SearchWindow::FINDINGS),
            counted_since: window.counted_since.map(when),
            page_window_full: window.page_window_full,
        }
    }
}

/// Whether a section listing `kind` shows its findings grouped by rule.
fn grouped(kind: FindingKind) -> bool {
    matches!(kind, FindingKind::Vulnerability | FindingKind::BaselineRisk)
}

/// `GET /console/clusters/{cluster}/{section}`.
pub(crate) async fn section(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: ConsoleUser,
    Path((cluster, section)): Path<(String, String)>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Viewer)?;
    let (section, section_title, kind) = SECTIONS
        .iter()
        .find(|(name, ..)| *name == section)
        .copied()
        .ok_or_else(|| ApiError::not_found(format!("no console section {section:?}")))?;
    let now = Timestamp::now();
    let query = filters.query(&cluster, kind, now)?;
    let base = format!("/console/clusters/{}/{section}", encode(&cluster));

    let mut unfiltered_severity = query.clone();
    unfiltered_severity.severities.clear();
    unfiltered_severity.cursor = None;
    // Counters and chart are the same in every order of the groups: one cache entry.
    unfiltered_severity.group_sort = GroupSortKey::default();
    let (range, length, n_buckets) = filters.range();
    let span = if length > 0 { length } else { 30 * 86_400_000 };
    let width_ms = span / i64::from(n_buckets);
    let buckets = TimeBuckets {
        // Whole intervals, the last one holding `now`.
        start: Timestamp(((now.millis() - span).div_euclid(width_ms) + 1) * width_ms),
        width_ms,
        buckets: n_buckets,
    };
    let mut chart_query = query.clone();
    chart_query.cursor = None;
    chart_query.group_sort = GroupSortKey::default();
    let chart_key = format!(
        "{kind:?}{chart_query:?}{}",
        buckets.start.millis() / MINUTE_MS
    );
    let store = Arc::clone(&state.store);
    let chart_counts = async {
        console
            .charts
            .get_or_compute(chart_key, async move {
                store.count_over_time(kind, &chart_query, buckets).await
            })
            .await
            .map_err(ApiError::from)
    };
    let grouped = grouped(kind);
    let listing = async {
        if grouped {
            let store = Arc::clone(&state.store);
            let group_query = query.clone();
            let page = console
                .groups
                .get_or_compute(format!("{kind:?}{query:?}"), async move {
                    store.finding_groups(kind, &group_query).await
                })
                .await?;
            let groups = page
                .items
                .iter()
                .map(|group| group_row(group, &cluster, section, &filters))
                .collect();
            Ok::<_, ApiError>((Vec::new(), groups, page.next_cursor, page.searched))
        } else {
            let page = state.store.list_findings(kind, &query).await?;
            let rows = page
                .items
                .iter()
                .map(|finding| Row::new(finding, &cluster, section))
                .collect();
            Ok((rows, Vec::new(), page.next_cursor, page.searched))
        }
    };
    // Counters, chart and the groups or findings at once, each on a reader connection of its
    // own: when none is cached (the first view of a search) the view waits for the slowest
    // instead of all in turn.
    let (counts, counts_over_time, (rows, groups, next_cursor, searched)) = tokio::try_join!(
        console.counts(&state, kind, &unfiltered_severity),
        chart_counts,
        listing
    )?;
    let selected: Vec<&str> = filters.severity.split(',').collect();
    let counters = SEVERITIES_DESC
        .iter()
        .map(|severity| Counter {
            severity: severity.as_str(),
            count: counts.by_rank[severity.rank() as usize],
            href: filters.href(&base, &[("severity", severity.as_str()), ("cursor", "")]),
            selected: selected.contains(&severity.as_str()),
        })
        .collect();
    let noun = section_title.to_lowercase();
    let chart = chart::bars(&counts_over_time, buckets.start, width_ms, &noun);

    let short_term = query.text.as_deref().is_some_and(SearchWindow::bounds);
    let mut chrome = Chrome::new(&user, format!("{section_title} — {cluster}"));
    // Demo data lives in its own cluster; a query for demo rows elsewhere would walk the
    // whole section.
    chrome.demo = cluster == crate::demo::DEMO_CLUSTER || rows.iter().any(|row: &Row| row.demo);
    if !filters.notice.is_empty() {
        chrome.notice = Some(filters.notice.clone());
    }
    if !filters.undo.is_empty() && Uuid::parse_str(&filters.undo).is_ok() {
        chrome.undo = Some((
            section.to_owned(),
            filters.undo.clone(),
            filters.href(&base, &[]),
        ));
    }
    let tabs = SECTIONS
        .iter()
        .map(|(name, title, _)| {
            (
                format!("/console/clusters/{}/{name}", encode(&cluster)),
                *title,
                *name == section,
            )
        })
        .collect();
    let status = filters.status().to_owned();
    let (category_label, categories) = category_filter(kind, &filters.category);
    let trail = PageTrail::parse(&filters.prev);
    let sort = if filters.sort.is_empty() {
        "last_seen"
    } else {
        filters.sort.as_str()
    };
    Ok(render(&SectionPage {
        can_handle: chrome.can_handle,
        csrf: chrome.csrf.clone(),
        back: filters.href(&base, &[]),
        chrome,
        ranges: RANGES
            .iter()
            .map(|(value, label, ..)| Opt::new(value, label, *value == range))
            .collect(),
        statuses: palisade_model::Status::ALL
            .iter()
            .map(|s| Opt::new(s.as_str(), s.as_str(), s.as_str() == status))
            .collect(),
        severities: SEVERITIES_DESC
            .iter()
            .map(|s| Opt::new(s.as_str(), s.as_str(), filters.severity == s.as_str()))
            .collect(),
        category_label,
        categories,
        sorts: [
            ("last_seen", "Last seen"),
            ("first_seen", "First seen"),
            ("severity", "Severity"),
            ("count", "Count"),
        ]
        .iter()
        .map(|(value, label)| Opt::new(value, label, *value == sort))
        .collect(),
        status,
        group_headers: group_sort::headers(kind, (query.group_sort, query.order), |sort, order| {
            filters.href(&base, &[("sort", sort), ("order", order)])
        }),
        group_order: group_sort::described(kind, (query.group_sort, query.order)),
        next_href: next_cursor.map(|cursor| {
            filters.href(
                &base,
                &[("cursor", &cursor), ("prev", &trail.after(&filters.cursor))],
            )
        }),
        previous_href: trail
            .previous()
            .filter(|_| !filters.cursor.is_empty())
            .map(|(cursor, prev)| filters.href(&base, &[("cursor", cursor), ("prev", &prev)])),
        first_href: (!filters.cursor.is_empty()).then(|| filters.href(&base, &[("cursor", "")])),
        live_href: filters.live_href(&cluster, kind),
        // A short term's window, or a common term's bound on the groups' matches.
        search_window: searched.filter(|_| short_term).map(WindowNote::new),
        groups_counted_since: searched
            .filter(|_| !short_term)
            .and_then(|window| window.counted_since)
            .map(when),
        counted_since: counts.counted_since.map(when),
        counted_matches: with_thousands(SearchWindow::COUNTED_MATCHES),
        cluster,
        section,
        section_title,
        tabs,
        counters,
        chart,
        filters,
        grouped,
        rows,
        groups,
    }))
}

fn group_row(group: &FindingGroup, cluster: &str, section: &str, filters: &Filters) -> GroupRow {
    GroupRow {
        href: format!(
            "/console/clusters/{}/{section}/group?rule={}&status={}",
            encode(cluster),
            encode(&group.rule),
            encode(filters.status.as_deref().unwrap_or("open"))
        ),
        rule: group.rule.clone(),
        packages: match group.packages {
            0 | 1 => group.package.clone(),
            n => format!("{} and {} more", group.package, n - 1),
        },
        title: group.title.clone(),
        severity: group.severity.as_str(),
        category: group.category.clone(),
        findings: group.findings,
        open: group.open,
        assets: group.assets,
        fix_available: group.fix_available,
        last_seen: when(group.last_seen),
    }
}

/// A labelled value on a details page.
pub(crate) struct Field {
    pub label: &'static str,
    pub value: String,
    pub href: Option<String>,
}

fn field(label: &'static str, value: impl Into<String>) -> Field {
    Field {
        label,
        value: value.into(),
        href: None,
    }
}

/// A node of the process ancestry tree, farthest ancestor first.
pub(crate) struct TreeNode {
    pub exe: String,
    pub args: String,
    pub user: String,
    pub pid: u32,
    pub started: String,
    pub container: String,
    pub current: bool,
}

/// The distro source package a vulnerability was matched by, shown beside the binary
/// package's upgrade: Debian's advisories name source packages and their versions
/// (`openssl 3.0.13-1~deb12u1`), while the upgrade installs the binary (`libssl3`).
pub(crate) struct SourceFix {
    /// The installed source package: `name version`.
    pub installed: String,
    /// The advisory's fixed source versions, lowest first; empty when none is known.
    pub fixed: String,
}

impl SourceFix {
    /// The source side of `vulnerability`, when it was matched by a source package or version
    /// other than the binary's own.
    fn of(vulnerability: &VulnerabilityDetails) -> Option<SourceFix> {
        let differs = vulnerability.source_package.is_some()
            || vulnerability.source_version.is_some()
            || (!vulnerability.source_fixed_versions.is_empty()
                && vulnerability.source_fixed_versions != vulnerability.fixed_versions);
        differs.then(|| SourceFix {
            installed: format!(
                "{} {}",
                vulnerability
                    .source_package
                    .as_deref()
                    .unwrap_or(&vulnerability.package),
                vulnerability
                    .source_version
                    .as_deref()
                    .unwrap_or(&vulnerability.installed_version)
            ),
            fixed: vulnerability.source_fixed_versions.join(", "),
        })
    }
}

#[derive(Template)]
#[template(path = "finding.html")]
struct FindingPage {
    chrome: Chrome,
    cluster: String,
    section: &'static str,
    section_title: &'static str,
    row: Row,
    tab: &'static str,
    fields: Vec<Field>,
    asset_fields: Vec<Field>,
    process_fields: Vec<Field>,
    description: String,
    remediation: String,
    /// For a distro vulnerability matched by its source package.
    source_fix: Option<SourceFix>,
    suggested: String,
    evidence: Vec<palisade_model::Evidence>,
    aliases: Vec<(String, String)>,
    notes: Vec<(String, String, String)>,
    tree: Vec<TreeNode>,
    related: Vec<Row>,
    raw_event: String,
    verifications: Vec<VerificationRow>,
    fix_tasks: Vec<FixTaskRow>,
    can_fix_package: bool,
    status: Status,
    is_alert: bool,
    is_vulnerability: bool,
    back: String,
}

/// One fix verification as the finding page shows it.
pub(crate) struct VerificationRow {
    /// "pending", "fixed", "still vulnerable" or "failed".
    pub state: String,
    pub requested_by: String,
    pub requested_at: String,
    /// The rescan did not happen; `reason` says why.
    pub failed: bool,
    pub reason: String,
}

impl VerificationRow {
    fn new(verification: &FixVerification) -> VerificationRow {
        VerificationRow {
            state: verification.state.as_str().replace('_', " "),
            requested_by: verification.requested_by.clone(),
            requested_at: when(verification.requested_at),
            failed: verification.state == VerificationState::Failed,
            reason: verification.reason.clone().unwrap_or_default(),
        }
    }

    /// One line for the pending list: "failed: <reason>" or the state, who and when.
    fn summary(&self) -> String {
        if self.failed {
            format!("verification failed: {}", self.reason)
        } else {
            format!(
                "{} (asked by {} at {})",
                self.state, self.requested_by, self.requested_at
            )
        }
    }
}

/// One package upgrade queued for the finding, with the agent's output once it finished.
pub(crate) struct FixTaskRow {
    pub state: &'static str,
    pub requested_by: String,
    pub requested_at: String,
    pub upgrade: String,
    pub agent: String,
    pub output: String,
}

/// Most tasks of the owning agent searched for the finding's upgrades.
const FIX_TASKS_SEARCHED: u32 = 200;

/// The upgrade tasks queued for `finding` on the agent that owns its node, newest first.
async fn fix_tasks(state: &AppState, finding: &Finding) -> Result<Vec<FixTaskRow>, ApiError> {
    // A finding no agent reports has no tasks (the fix button explains why when pressed).
    let Ok(agent) = crate::api::tasks::owning_agent(state, &finding.asset).await else {
        return Ok(Vec::new());
    };
    let tasks = state.store.tasks(agent.id, FIX_TASKS_SEARCHED).await?;
    Ok(tasks
        .into_iter()
        .filter_map(|task| match &task.spec {
            TaskSpec::UpgradePackage(upgrade) if upgrade.finding_id == Some(finding.id) => {
                Some(FixTaskRow {
                    state: task.state.as_str(),
                    requested_by: task.requested_by.clone(),
                    requested_at: when(task.requested_at),
                    upgrade: format!("{} to {}", upgrade.package, upgrade.version),
                    agent: agent.name.clone(),
                    output: task
                        .result
                        .as_ref()
                        .map(|result| result.message.clone())
                        .unwrap_or_default(),
                })
            }
            _ => None,
        })
        .collect())
}

/// Whether the fix button applies: an open (or fixing) vulnerability on a host, with a known
/// fixed version. Images are fixed by rebuilding them, which the API says when asked.
fn fixable(finding: &Finding) -> bool {
    let Details::Vulnerability(vulnerability) = &finding.details else {
        return false;
    };
    matches!(finding.status, Status::Open | Status::Fixing)
        && !vulnerability.fixed_versions.is_empty()
        && finding.asset.image.is_none()
        && finding.asset.image_digest.is_none()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindingParams {
    #[serde(default)]
    tab: String,
    #[serde(default)]
    notice: String,
}

/// `GET /console/clusters/{cluster}/{section}/{id}`: details (and, for alerts, diagnosis).
pub(crate) async fn finding(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((cluster, section, id)): Path<(String, String, String)>,
    Query(params): Query<FindingParams>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Viewer)?;
    let (section, section_title, kind) = SECTIONS
        .iter()
        .find(|(name, ..)| *name == section)
        .copied()
        .ok_or_else(|| ApiError::not_found(format!("no console section {section:?}")))?;
    let finding = crate::api::findings::load(&state, kind, &id).await?;
    let notes = state
        .store
        .notes(finding.id)
        .await?
        .into_iter()
        .map(|note| (note.author, when(note.created_at), note.text))
        .collect();
    let asset = &finding.asset;
    let optional = |label: &'static str, value: &Option<String>| {
        value.as_ref().map(|value| field(label, value.clone()))
    };
    let asset_fields: Vec<Field> = [
        Some(field("Cluster", asset.cluster.clone())),
        optional("Node", &asset.node),
        optional("Namespace", &asset.namespace),
        optional("Workload", &asset.workload),
        optional("Pod", &asset.pod),
        optional("Container", &asset.container_name),
        optional("Container id", &asset.container_id),
        optional("Image", &asset.image),
        optional("Image digest", &asset.image_digest),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut fields = vec![
        field("Rule", finding.rule.clone()),
        field("Status", finding.status.as_str()),
        field("Severity", finding.severity.as_str()),
        field("First seen", when(finding.first_seen)),
        field("Last seen", when(finding.last_seen)),
        field(
            if kind == FindingKind::FirewallAlert {
                "Attempts"
            } else {
                "Count"
            },
            finding.count.to_string(),
        ),
    ];
    let mut process_fields = Vec::new();
    let mut description = String::new();
    let mut remediation = String::new();
    let mut source_fix = None;
    let mut suggested = String::new();
    let mut evidence = Vec::new();
    let mut aliases = Vec::new();
    let mut tree = Vec::new();
    let mut raw_event = String::new();
    let mut related = Vec::new();
    let mut verifications = Vec::new();
    let mut fix_tasks_shown = Vec::new();
    match &finding.details {
        Details::Alert(alert) => {
            if let Some(category) = alert.category {
                fields.push(field("Category", finding.details.category()));
                let _ = category;
            }
            if let Some(mitre) = &alert.mitre {
                fields.push(Field {
                    label: "MITRE ATT&CK",
                    value: mitre.clone(),
                    href: Some(mitre_url(mitre)),
                });
            }
            fields.push(field("Event output", alert.output.clone()));
            process_fields = vec![
                field("PID", alert.process.pid.to_string()),
                field("PPID", alert.process.ppid.to_string()),
                field("Executable", alert.process.exe.clone()),
                field("Command line", alert.process.cmdline.clone()),
                field("User", alert.process.user.clone()),
            ];
            description.clone_from(&alert.description);
            suggested.clone_from(&alert.suggested_response);
            tree = alert
                .ancestry
                .iter()
                .rev()
                .map(|ancestor| TreeNode {
                    exe: ancestor.exe.clone(),
                    args: ancestor.args.join(" "),
                    user: ancestor.user.clone(),
                    pid: ancestor.pid,
                    started: when(ancestor.start_time),
                    container: ancestor
                        .container_id
                        .clone()
                        .unwrap_or_else(|| "host".into()),
                    current: false,
                })
                .collect();
            tree.push(TreeNode {
                exe: alert.process.exe.clone(),
                args: alert.process.cmdline.clone(),
                user: alert.process.user.clone(),
                pid: alert.process.pid,
                started: when(finding.first_seen),
                container: asset
                    .container_id
                    .clone()
                    .or_else(|| asset.container_name.clone())
                    .unwrap_or_else(|| "host".into()),
                current: true,
            });
            raw_event = serde_json::to_string_pretty(&alert.raw_event).unwrap_or_default();
            if params.tab == "diagnosis" {
                let page = state
                    .store
                    .list_findings(
                        FindingKind::Alert,
                        &FindingQuery {
                            asset_id: Some(finding.asset_id),
                            limit: 20,
                            ..FindingQuery::default()
                        },
                    )
                    .await?;
                related = page
                    .items
                    .iter()
                    .filter(|other| other.id != finding.id)
                    .map(|other| Row::new(other, &cluster, section))
                    .collect();
            }
        }
        Details::Vulnerability(vulnerability) => {
            fields.push(field("Package", vulnerability.package.clone()));
            fields.push(field("Ecosystem", vulnerability.ecosystem.clone()));
            fields.push(field(
                "Installed version",
                vulnerability.installed_version.clone(),
            ));
            fields.push(field(
                "Fixed versions",
                if vulnerability.fixed_versions.is_empty() {
                    "no fix known".to_owned()
                } else {
                    vulnerability.fixed_versions.join(", ")
                },
            ));
            source_fix = SourceFix::of(vulnerability);
            if let Some(source) = &source_fix {
                fields.push(field("Source package", source.installed.clone()));
                fields.push(field(
                    "Source fixed versions",
                    if source.fixed.is_empty() {
                        "no fix known"
                    } else {
                        source.fixed.as_str()
                    },
                ));
            }
            if let Some(score) = vulnerability.cvss_score {
                fields.push(field("CVSS score", format!("{score:.1}")));
            }
            if let Some(vector) = &vulnerability.cvss_vector {
                fields.push(field("CVSS vector", vector.clone()));
            }
            fields.push(field("Location", vulnerability.location.clone()));
            fields.push(field("Package URL", vulnerability.purl.clone()));
            description.clone_from(&vulnerability.description);
            remediation.clone_from(&vulnerability.fix);
            aliases = vulnerability_links(&finding.rule, &vulnerability.aliases);
            verifications = state
                .store
                .fix_verifications(finding.id)
                .await?
                .iter()
                .map(VerificationRow::new)
                .collect();
            fix_tasks_shown = fix_tasks(&state, &finding).await?;
        }
        Details::BaselineRisk(risk) => {
            fields.push(field("Category", finding.details.category()));
            description.clone_from(&risk.description);
            remediation.clone_from(&risk.remediation);
            evidence.clone_from(&risk.evidence);
        }
        Details::FirewallAlert(firewall) => {
            fields.push(field("Source", firewall.source.clone()));
            fields.push(field("Destination", firewall.destination.clone()));
            fields.push(field(
                "Target network object",
                firewall.destination_object.clone(),
            ));
            fields.push(field(
                "Port",
                format!("{}/{}", firewall.port, firewall.protocol),
            ));
            fields.push(field("Defense mode", firewall.mode.clone()));
            evidence = firewall
                .trace
                .iter()
                .map(|step| palisade_model::Evidence {
                    path: "decision".into(),
                    value: step.clone(),
                    ..Default::default()
                })
                .collect();
        }
    }
    let mut chrome = Chrome::new(&user, format!("{} — {section_title}", finding.title));
    chrome.demo = finding.demo;
    if !params.notice.is_empty() {
        chrome.notice = Some(params.notice);
    }
    let back = format!(
        "/console/clusters/{}/{section}/{}",
        encode(&cluster),
        finding.id
    );
    Ok(render(&FindingPage {
        chrome,
        section,
        section_title,
        row: Row::new(&finding, &cluster, section),
        tab: if params.tab == "diagnosis" && kind == FindingKind::Alert {
            "diagnosis"
        } else {
            "details"
        },
        fields,
        asset_fields,
        process_fields,
        description,
        remediation,
        source_fix,
        suggested,
        evidence,
        aliases,
        notes,
        tree,
        related,
        raw_event,
        verifications,
        fix_tasks: fix_tasks_shown,
        can_fix_package: fixable(&finding),
        status: finding.status,
        is_alert: kind == FindingKind::Alert,
        is_vulnerability: kind == FindingKind::Vulnerability,
        back,
        cluster,
    }))
}

fn mitre_url(technique: &str) -> String {
    let path: String = technique
        .split('.')
        .filter(|part| part.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect::<Vec<_>>()
        .join("/");
    format!("https://attack.mitre.org/techniques/{path}/")
}

/// Public pages for a vulnerability id and its aliases: (id, URL). A CVE links to NVD and
/// cve.org; a vendor advisory to the vendor's own page (GitHub, Debian, Red Hat, Oracle,
/// Amazon, Ubuntu), which carries the advisory's fixed packages; every other id (GO-, RUSTSEC-,
/// PYSEC-, ALSA-, RLSA-, …) to OSV, which publishes those ecosystems' records.
pub(crate) fn vulnerability_links(id: &str, aliases: &[String]) -> Vec<(String, String)> {
    let mut ids: Vec<&str> = vec![id];
    for alias in aliases {
        if !ids.contains(&alias.as_str()) {
            ids.push(alias);
        }
    }
    let mut links = Vec::new();
    for id in ids {
        let safe = encode(id);
        if id.starts_with("CVE-") {
            links.push((
                format!("{id} (NVD)"),
                format!("https://nvd.nist.gov/vuln/detail/{safe}"),
            ));
            links.push((
                format!("{id} (cve.org)"),
                format!("https://www.cve.org/CVERecord?id={safe}"),
            ));
            continue;
        }
        let url = match VENDOR_ADVISORY_PAGES
            .iter()
            .find(|(prefix, ..)| id.starts_with(prefix))
        {
            Some((_, page, suffix)) => format!("{page}{safe}{suffix}"),
            None => format!("https://osv.dev/vulnerability/{safe}"),
        };
        links.push((id.to_owned(), url));
    }
    links
}

/// Vendor advisory pages by id prefix: (prefix, URL before the id, URL after it). Longer
/// prefixes first where one begins another (Amazon Linux 2023's `ALAS2023-` before Amazon
/// Linux 2's `ALAS2-`).
const VENDOR_ADVISORY_PAGES: [(&str, &str, &str); 11] = [
    ("GHSA-", "https://github.com/advisories/", ""),
    ("DSA-", "https://security-tracker.debian.org/tracker/", ""),
    ("DLA-", "https://security-tracker.debian.org/tracker/", ""),
    ("RHSA-", "https://access.redhat.com/errata/", ""),
    ("RHBA-", "https://access.redhat.com/errata/", ""),
    ("RHEA-", "https://access.redhat.com/errata/", ""),
    ("ELSA-", "https://linux.oracle.com/errata/", ".html"),
    ("ALAS2023-", "https://alas.aws.amazon.com/AL2023/", ".html"),
    ("ALAS2-", "https://alas.aws.amazon.com/AL2/", ".html"),
    ("ALAS-", "https://alas.aws.amazon.com/", ".html"),
    ("USN-", "https://ubuntu.com/security/notices/", ""),
];

#[derive(Template)]
#[template(path = "handle.html", blocks = ["content"])]
pub(crate) struct HandlePage {
    pub chrome: Chrome,
    pub row: Row,
    pub cluster: String,
    pub section: &'static str,
    pub kind: &'static str,
    pub fields: Vec<Opt>,
    pub operators: Vec<Opt>,
    pub value: String,
    pub scope: String,
    pub asset_id: String,
    pub reason: String,
    pub preview: Option<String>,
    pub back: String,
}

/// The whitelist operators: (value, label).
pub(crate) const OPERATORS: [(&str, &str); 6] = [
    ("equals", "equals"),
    ("not_equals", "does not equal"),
    ("contains", "contains"),
    ("not_contains", "does not contain"),
    ("regex", "matches regex"),
    ("prefix", "starts with"),
];

impl HandlePage {
    /// The dialog for `finding`, with the whitelist form prefilled from its most telling field.
    pub(crate) fn new(user: &ConsoleUser, finding: &Finding, cluster: &str) -> HandlePage {
        let section = SECTIONS
            .iter()
            .find(|(_, _, kind)| *kind == finding.kind())
            .map_or("alerts", |(name, ..)| *name);
        let field = match finding.kind() {
            FindingKind::Alert => "process.exe",
            FindingKind::Vulnerability | FindingKind::BaselineRisk => "rule",
            FindingKind::FirewallAlert => "destination",
        };
        let value = finding
            .field(field)
            .map(|v| v.into_owned())
            .unwrap_or_default();
        let mut chrome = Chrome::new(user, format!("Handle: {}", finding.title));
        chrome.demo = finding.demo;
        let mut page = HandlePage {
            chrome,
            row: Row::new(finding, cluster, section),
            cluster: cluster.to_owned(),
            section,
            kind: finding.kind().as_str(),
            fields: Vec::new(),
            operators: Vec::new(),
            value,
            scope: "asset".into(),
            asset_id: finding.asset_id.to_string(),
            reason: String::new(),
            preview: None,
            back: format!("/console/clusters/{}/{section}", encode(cluster)),
        };
        page.select(finding, field, "equals");
        page
    }

    /// Marks the chosen field and operator; the field list shows each field's value here.
    pub(crate) fn select(&mut self, finding: &Finding, field: &str, operator: &str) {
        self.fields = Finding::FIELD_NAMES
            .iter()
            .filter_map(|name| {
                finding.field(name).map(|value| {
                    let label = format!("{name} ({})", shorten(&value));
                    Opt::new(name, &label, *name == field)
                })
            })
            .collect();
        self.operators = OPERATORS
            .iter()
            .map(|(value, label)| Opt::new(value, label, *value == operator))
            .collect();
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `GET /console/clusters/{cluster}/{section}/{id}/handle`: the handling dialog (a fragment
/// for htmx, a whole page otherwise).
pub(crate) async fn handle_dialog(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path((cluster, section, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Operator)?;
    let kind = section_kind(&section)
        .ok_or_else(|| ApiError::not_found(format!("no console section {section:?}")))?;
    let finding = crate::api::findings::load(&state, kind, &id).await?;
    let page = HandlePage::new(&user, &finding, &cluster);
    if headers.contains_key("hx-request") {
        Ok(render(&page.as_content()))
    } else {
        Ok(render(&page))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct GroupParams {
    rule: String,
    status: Option<String>,
    #[serde(default)]
    notice: String,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    chrome: Chrome,
    cluster: String,
    section: &'static str,
    section_title: &'static str,
    rule: String,
    title: String,
    severity: &'static str,
    description: String,
    remediation: String,
    cvss: String,
    aliases: Vec<(String, String)>,
    members: Vec<Member>,
    is_vulnerability: bool,
    status: String,
    back: String,
    owner: String,
    truncated: bool,
}

/// One finding of a group, on one asset.
pub(crate) struct Member {
    pub row: Row,
    pub package: String,
    pub installed: String,
    pub fixed: String,
    pub fix: String,
    /// For a distro vulnerability matched by its source package.
    pub source_fix: Option<SourceFix>,
    pub evidence: Vec<palisade_model::Evidence>,
    pub verification: String,
    pub can_mark_fixing: bool,
    pub can_fix_package: bool,
    pub can_verify: bool,
}

/// Most findings listed on a group page.
const GROUP_PAGE_LIMIT: u32 = 200;

/// `GET /console/clusters/{cluster}/{section}/group?rule=`: a vulnerability or check with its
/// pending list per asset.
pub(crate) async fn group(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((cluster, section)): Path<(String, String)>,
    Query(params): Query<GroupParams>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Viewer)?;
    let (section, section_title, kind) = SECTIONS
        .iter()
        .find(|(name, ..)| *name == section)
        .copied()
        .filter(|(_, _, kind)| {
            matches!(kind, FindingKind::Vulnerability | FindingKind::BaselineRisk)
        })
        .ok_or_else(|| ApiError::not_found(format!("section {section:?} has no groups")))?;
    let status = match params.status.as_deref() {
        None => "open",
        Some("any") | Some("") => "",
        Some(status) => status,
    };
    let query = ListParams {
        cluster: Some(cluster.clone()),
        rule: Some(params.rule.clone()),
        status: (!status.is_empty()).then(|| status.to_owned()),
        sort: Some("severity".into()),
        limit: Some(GROUP_PAGE_LIMIT),
        ..ListParams::default()
    }
    .into_query()?;
    let page = state.store.list_findings(kind, &query).await?;
    let first = page.items.first();
    let mut members = Vec::new();
    for finding in &page.items {
        let (package, installed, fixed, fix, source_fix) = match &finding.details {
            Details::Vulnerability(vulnerability) => (
                vulnerability.package.clone(),
                vulnerability.installed_version.clone(),
                vulnerability.fixed_versions.join(", "),
                vulnerability.fix.clone(),
                SourceFix::of(vulnerability),
            ),
            _ => (
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                None,
            ),
        };
        let verification = if kind == FindingKind::Vulnerability {
            state
                .store
                .fix_verifications(finding.id)
                .await?
                .first()
                .map(|latest| VerificationRow::new(latest).summary())
                .unwrap_or_default()
        } else {
            String::new()
        };
        members.push(Member {
            row: Row::new(finding, &cluster, section),
            package,
            installed,
            fixed,
            fix,
            source_fix,
            evidence: match &finding.details {
                Details::BaselineRisk(risk) => risk.evidence.clone(),
                _ => Vec::new(),
            },
            can_mark_fixing: finding.status == Status::Open,
            can_fix_package: fixable(finding),
            can_verify: matches!(finding.status, Status::Open | Status::Fixing),
            verification,
        });
    }
    let (description, remediation, cvss, aliases) = match first.map(|f| &f.details) {
        Some(Details::Vulnerability(vulnerability)) => (
            vulnerability.description.clone(),
            String::new(),
            match (vulnerability.cvss_score, &vulnerability.cvss_vector) {
                (Some(score), Some(vector)) => format!("{score:.1} ({vector})"),
                (Some(score), None) => format!("{score:.1}"),
                _ => "not scored".into(),
            },
            vulnerability_links(&params.rule, &vulnerability.aliases),
        ),
        Some(Details::BaselineRisk(risk)) => (
            risk.description.clone(),
            risk.remediation.clone(),
            String::new(),
            Vec::new(),
        ),
        _ => Default::default(),
    };
    let mut chrome = Chrome::new(&user, format!("{} — {section_title}", params.rule));
    chrome.demo = page.items.iter().any(|finding| finding.demo);
    if !params.notice.is_empty() {
        chrome.notice = Some(params.notice.clone());
    }
    let back = format!(
        "/console/clusters/{}/{section}/group?rule={}&status={}",
        encode(&cluster),
        encode(&params.rule),
        encode(params.status.as_deref().unwrap_or("open"))
    );
    Ok(render(&GroupPage {
        chrome,
        section,
        section_title,
        title: first.map(|f| f.title.clone()).unwrap_or_default(),
        severity: first.map(|f| f.severity).unwrap_or(Severity::Info).as_str(),
        truncated: page.next_cursor.is_some(),
        rule: params.rule,
        description,
        remediation,
        cvss,
        aliases,
        members,
        is_vulnerability: kind == FindingKind::Vulnerability,
        status: status.to_owned(),
        back,
        owner: user.caller.name.clone(),
        cluster,
    }))
}

#[derive(Template)]
#[template(path = "firewall_rule.html")]
pub(crate) struct FirewallRulePage {
    pub chrome: Chrome,
    pub rule: FirewallRule,
    pub ports: String,
    pub protocols: Vec<Opt>,
    pub actions: Vec<Opt>,
    pub back: String,
    pub error: Option<String>,
    /// The open connections the rule refuses, as the agents listed them since its last change.
    pub open: crate::api::firewall_rules::OpenConnections,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BackParam {
    #[serde(default)]
    back: String,
    #[serde(default)]
    notice: String,
}

/// `GET /console/firewall-rules/{id}`: the rule editor. `id` is the rule's id or its name (as
/// firewall alerts name the rule that fired).
pub(crate) async fn firewall_rule(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Query(params): Query<BackParam>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Viewer)?;
    let rule = find_firewall_rule(&state, &id).await?;
    let (protocols, actions) = firewall_options(&rule.rule);
    let open = crate::api::firewall_rules::open_connections_of(state.store.as_ref(), &rule).await?;
    let mut chrome = Chrome::new(&user, format!("Firewall rule {}", rule.rule.name));
    if !params.notice.is_empty() {
        chrome.notice = Some(params.notice);
    }
    Ok(render(&FirewallRulePage {
        chrome,
        ports: super::actions::ports_text(&rule.rule.ports),
        rule,
        protocols,
        actions,
        back: super::actions::safe_back(&params.back, "/console/clusters"),
        error: None,
        open,
    }))
}

/// A firewall rule by id or by name.
pub(crate) async fn find_firewall_rule(
    state: &AppState,
    id: &str,
) -> Result<FirewallRule, ApiError> {
    if let Ok(uuid) = Uuid::parse_str(id)
        && let Some(rule) = state.store.firewall_rule(uuid).await?
    {
        return Ok(rule);
    }
    state
        .store
        .firewall_rules()
        .await?
        .into_iter()
        .find(|rule| rule.rule.name == id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no firewall rule {id:?}: the alert names a rule that was deleted or never stored"
            ))
        })
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<palisade_model::AuditEntry>,
    next_href: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditParams {
    #[serde(default)]
    cursor: String,
}

impl AuditPage {
    fn when(&self, at: &Timestamp) -> String {
        when(*at)
    }
}

/// `GET /console/audit`: who did what, when, why (admins only).
pub(crate) async fn audit(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Admin)?;
    let cursor = crate::api::cursor_param(Some(&params.cursor))?;
    let page = state
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            cursor,
            ..AuditQuery::default()
        })
        .await?;
    Ok(render(&AuditPage {
        chrome: Chrome::new(&user, "Audit log"),
        next_href: page
            .next_cursor
            .map(|cursor| format!("/console/audit?cursor={}", encode(&cursor))),
        entries: page.items,
    }))
}

#[cfg(test)]
mod tests {
    use super::{PageTrail, vulnerability_links};

    #[test]
    fn the_page_trail_leads_back_and_forgets_past_its_limit() {
        // Walking forward from the first page through pages "c1", "c2".
        let first = PageTrail::parse("");
        assert_eq!(first.previous(), None);
        let prev = first.after("");
        assert_eq!(prev, "-");
        let second = PageTrail::parse(&prev);
        assert_eq!(second.previous(), Some(("", String::new())));
        let prev = second.after("c1");
        let third = PageTrail::parse(&prev);
        assert_eq!(third.previous(), Some(("c1", "-".to_owned())));

        // A long walk (or a forged URL) keeps only the newest pages.
        let long: Vec<String> = (0..30).map(|page| format!("c{page}")).collect();
        let long = long.join(".");
        let trail = PageTrail::parse(&long);
        assert_eq!(trail.earlier.len(), PageTrail::MAX_PAGES);
        assert_eq!(trail.previous().map(|(cursor, _)| cursor), Some("c29"));
        let next = trail.after("c30");
        assert_eq!(next.split('.').count(), PageTrail::MAX_PAGES);
        assert!(next.ends_with(".c30") && next.starts_with("c11."), "{next}");
    }

    #[test]
    fn every_id_links_to_the_page_that_publishes_it() {
        let aliases: Vec<String> = [
            "CVE-2024-2398",
            "GHSA-abcd-efgh-ijkl",
            "DSA-5678-1",
            "RHSA-2024:2570",
            "ELSA-2024-2570",
            "ALAS-2018-1058",
            "ALAS2-2023-2001",
            "ALAS2023-2024-123",
            "USN-6718-1",
            "GO-2024-2611",
            "RLSA-2024:2570",
            "RHSA-2024:2570",
        ]
        .map(String::from)
        .into();
        let links = vulnerability_links("CVE-2024-2398", &aliases);
        let expected = [
            (
                "CVE-2024-2398 (NVD)",
                "https://nvd.nist.gov/vuln/detail/CVE-2024-2398",
            ),
            (
                "CVE-2024-2398 (cve.org)",
                "https://www.cve.org/CVERecord?id=CVE-2024-2398",
            ),
            (
                "GHSA-abcd-efgh-ijkl",
                "https://github.com/advisories/GHSA-abcd-efgh-ijkl",
            ),
            (
                "DSA-5678-1",
                "https://security-tracker.debian.org/tracker/DSA-5678-1",
            ),
            (
                "RHSA-2024:2570",
                "https://access.redhat.com/errata/RHSA-2024%3A2570",
            ),
            (
                "ELSA-2024-2570",
                "https://linux.oracle.com/errata/ELSA-2024-2570.html",
            ),
            (
                "ALAS-2018-1058",
                "https://alas.aws.amazon.com/ALAS-2018-1058.html",
            ),
            (
                "ALAS2-2023-2001",
                "https://alas.aws.amazon.com/AL2/ALAS2-2023-2001.html",
            ),
            (
                "ALAS2023-2024-123",
                "https://alas.aws.amazon.com/AL2023/ALAS2023-2024-123.html",
            ),
            (
                "USN-6718-1",
                "https://ubuntu.com/security/notices/USN-6718-1",
            ),
            ("GO-2024-2611", "https://osv.dev/vulnerability/GO-2024-2611"),
            (
                "RLSA-2024:2570",
                "https://osv.dev/vulnerability/RLSA-2024%3A2570",
            ),
        ];
        let links: Vec<(&str, &str)> = links
            .iter()
            .map(|(label, url)| (label.as_str(), url.as_str()))
            .collect();
        assert_eq!(links, expected, "each id once, the id itself first");
    }
}
