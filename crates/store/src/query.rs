//! Filters, sorting and cursor pagination.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use palisade_model::{Severity, Status, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;

/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Columns findings can be sorted by. Every sort breaks ties by id, so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Latest observation (the default).
    #[default]
    LastSeen,
    /// First observation.
    FirstSeen,
    /// Severity.
    Severity,
    /// Number of observations.
    Count,
}

impl SortKey {
    pub(crate) fn column(self) -> &'static str {
        match self {
            SortKey::LastSeen => "last_seen",
            SortKey::FirstSeen => "first_seen",
            SortKey::Severity => "severity",
            SortKey::Count => "count",
        }
    }
}

/// Columns groups of findings (see [`crate::FindingGroup`]) can be sorted by. Every sort
/// breaks ties by rule, ascending, so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSortKey {
    /// The highest severity in the group (the default).
    #[default]
    Severity,
    /// The rule: vulnerability id or check id.
    Rule,
    /// The category.
    Category,
    /// Distinct affected assets.
    Assets,
    /// Findings in the group.
    Findings,
    /// Open findings in the group.
    Open,
    /// Latest observation.
    LastSeen,
    /// Whether a fixed version is known (vulnerabilities).
    FixAvailable,
    /// The first package by name (vulnerabilities).
    Package,
}

impl GroupSortKey {
    /// Every key, in the order a table shows them.
    pub const ALL: [GroupSortKey; 9] = [
        GroupSortKey::Severity,
        GroupSortKey::Rule,
        GroupSortKey::Package,
        GroupSortKey::Category,
        GroupSortKey::Assets,
        GroupSortKey::Findings,
        GroupSortKey::Open,
        GroupSortKey::LastSeen,
        GroupSortKey::FixAvailable,
    ];

    /// The key's name in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupSortKey::Severity => "severity",
            GroupSortKey::Rule => "rule",
            GroupSortKey::Category => "category",
            GroupSortKey::Assets => "assets",
            GroupSortKey::Findings => "findings",
            GroupSortKey::Open => "open",
            GroupSortKey::LastSeen => "last_seen",
            GroupSortKey::FixAvailable => "fix_available",
            GroupSortKey::Package => "package",
        }
    }

    /// The key named `name` ([`GroupSortKey::as_str`]).
    pub fn from_name(name: &str) -> Option<GroupSortKey> {
        GroupSortKey::ALL
            .into_iter()
            .find(|key| key.as_str() == name)
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Largest first (the default).
    #[default]
    Desc,
    /// Smallest first.
    Asc,
}

/// Filters for listing findings. Every filter is optional; lists mean "any of".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingQuery {
    /// Only in this cluster.
    pub cluster: Option<String>,
    /// Only these severities.
    pub severities: Vec<Severity>,
    /// Only these statuses.
    pub statuses: Vec<Status>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this asset.
    pub asset_id: Option<Uuid>,
    /// Only this rule (or vulnerability id, check id).
    pub rule: Option<String>,
    /// Case-insensitive text in title, rule or asset label (and for vulnerabilities, in the
    /// package and the aliases).
    pub text: Option<String>,
    /// Seen at or after this time.
    pub since: Option<Timestamp>,
    /// First seen at or before this time.
    pub until: Option<Timestamp>,
    /// Demo data only (`Some(true)`), real data only (`Some(false)`) or both.
    pub demo: Option<bool>,
    /// Sort column.
    pub sort: SortKey,
    /// Sort direction.
    pub order: SortOrder,
    /// Sort column of grouped listings (`finding_groups`), in the direction of `order`.
    pub group_sort: GroupSortKey,
    /// Page size (1..=[`MAX_PAGE_SIZE`]).
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// Filters for listing assets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetQuery {
    /// Only in this cluster.
    pub cluster: Option<String>,
    /// Only of this kind.
    pub kind: Option<palisade_model::AssetKind>,
    /// Page size.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// Filters for the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only by this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only about this target id.
    pub target_id: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// An opaque position in a sorted list: the sort value and id of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort value of the last item.
    #[serde(rename = "v")]
    pub value: i64,
    /// Text sort value of the last item, for lists sorted by text.
    #[serde(rename = "t", default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Id of the last item.
    #[serde(rename = "i")]
    pub id: String,
}

impl Cursor {
    /// The URL-safe text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a cursor from [`Cursor::encode`].
    pub fn decode(text: &str) -> Result<Cursor, StoreError> {
        if text.len() > 512 {
            return Err(StoreError::InvalidCursor);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| StoreError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass this back to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Set when a text search looked at part of the findings only (see [`SearchWindow`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searched: Option<SearchWindow>,
}

/// The shortest term the trigram index (migration 0031) can look up: shorter terms have no
/// trigram, so their search reads a [`SearchWindow`].
pub(crate) const TRIGRAM_CHARS: usize = 3;

/// How far a bounded text search looked. Terms the trigram index cannot look up (one or two
/// characters) are searched by LIKE alone, which would read every finding of the filters: such
/// a search reads at most [`SearchWindow::FINDINGS`] of them, newest first, and says so. Groups
/// of a common term are formed from its newest [`SearchWindow::COUNTED_MATCHES`] matches and
/// say so here too ([`SearchWindow::bounds`] tells the two apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchWindow {
    /// Set when the filters select more than [`SearchWindow::FINDINGS`] findings (a short
    /// term), or a term matches more than [`SearchWindow::COUNTED_MATCHES`] (groups): counts,
    /// charts and groups cover the newest ones, last seen at or after this time, and are lower
    /// bounds.
    pub counted_since: Option<Timestamp>,
    /// The page's own window ended before the page filled: its next cursor continues the
    /// search with older findings rather than following a last listed item.
    pub page_window_full: bool,
}

impl SearchWindow {
    /// Most findings one bounded text search reads: for the page (from the page's position
    /// when listing by last seen, newest first), for the counters and for the chart. Each
    /// finding is a row read from the table (the index does not hold the searched text): the
    /// newest 10,000 of a million, scattered over the table, took 160–360 ms per statement on
    /// the benchmark machine, so a window is half that.
    pub const FINDINGS: u32 = 5_000;

    /// Most matches the counters and the chart of a text search count, newest first, as
    /// search engines do ("10,000+"): a common term (one alert in eight of a million) took
    /// 2.3–4.6 s to count in full; its newest 10,000 matches are read in about 0.5 s. Below
    /// the bound the counts are exact.
    pub const COUNTED_MATCHES: u32 = 10_000;

    /// Whether a search for `text` is bounded by the window: the trigram index cannot look up
    /// terms under three characters, nor ones holding NUL (FTS5 reads its query up to one).
    pub fn bounds(text: &str) -> bool {
        text.to_lowercase().chars().count() < TRIGRAM_CHARS || text.contains('\0')
    }
}

/// Counts by severity of the findings a query selects, and whether they are complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeverityCounts {
    /// Counts indexed by severity rank.
    pub by_rank: [u64; 5],
    /// Set when the counts are lower bounds: a text search counted only the findings last
    /// seen at or after this time, either because its term is too short to look up (the
    /// newest [`SearchWindow::FINDINGS`] findings of the filters) or because it matched more
    /// than [`SearchWindow::COUNTED_MATCHES`] findings (the newest that many).
    pub counted_since: Option<Timestamp>,
}

pub(crate) fn page_size(limit: u32) -> u32 {
    match limit {
        0 => 50,
        limit => limit.min(MAX_PAGE_SIZE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_rejects_garbage() {
        let cursor = Cursor {
            value: -5,
            text: String::new(),
            id: "abc".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(Cursor::decode("not base64!").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode(b"{}")).is_err());
        assert!(Cursor::decode(&"A".repeat(1000)).is_err());
    }
}
