//! The sortable column headers of the grouped tables (vulnerabilities by id, baseline risks by
//! check): which columns sort, the `sort` parameter naming one, and each header's link — the
//! other direction on the current sort's column, the column's first direction elsewhere — with
//! `aria-sort` on the current one. Plain links: sorting works without JavaScript and by
//! keyboard, and keeps the page's filters and search.

use palisade_model::FindingKind;
use palisade_store::{GroupSortKey, SortOrder};

use crate::ApiError;

/// A column header of a grouped table.
pub(crate) struct GroupHeader {
    pub label: &'static str,
    /// The `sort` parameter naming the column, which its link's id holds.
    pub key: &'static str,
    /// The page sorted by this column; `None` for a column that does not sort (the title).
    pub href: Option<String>,
    /// `ascending` or `descending` on the current sort's column.
    pub aria_sort: Option<&'static str>,
}

/// The columns of `kind`'s grouped table, in order: label and the key it sorts by.
fn columns(kind: FindingKind) -> Vec<(&'static str, Option<GroupSortKey>)> {
    let vulnerabilities = kind == FindingKind::Vulnerability;
    let mut columns = vec![
        ("Severity", Some(GroupSortKey::Severity)),
        (
            if vulnerabilities {
                "Vulnerability"
            } else {
                "Check"
            },
            Some(GroupSortKey::Rule),
        ),
    ];
    if vulnerabilities {
        columns.push(("Package", Some(GroupSortKey::Package)));
    }
    columns.extend([
        ("Title", None),
        ("Category", Some(GroupSortKey::Category)),
        ("Affected assets", Some(GroupSortKey::Assets)),
        ("Findings", Some(GroupSortKey::Findings)),
        ("Open", Some(GroupSortKey::Open)),
    ]);
    if vulnerabilities {
        columns.push(("Fix available", Some(GroupSortKey::FixAvailable)));
    }
    columns.push(("Last seen", Some(GroupSortKey::LastSeen)));
    columns
}

/// The direction a column sorts in when first chosen: names from A, everything else largest
/// (most severe, newest, fix known) first.
fn first_order(key: GroupSortKey) -> SortOrder {
    match key {
        GroupSortKey::Rule | GroupSortKey::Category | GroupSortKey::Package => SortOrder::Asc,
        _ => SortOrder::Desc,
    }
}

fn order_name(order: SortOrder) -> &'static str {
    match order {
        SortOrder::Asc => "asc",
        SortOrder::Desc => "desc",
    }
}

/// The sort of `kind`'s groups that a `sort` parameter names: severity when empty, an error
/// naming the choices for a column the table does not sort by.
pub(crate) fn parse(kind: FindingKind, sort: &str) -> Result<GroupSortKey, ApiError> {
    let sort = sort.trim();
    if sort.is_empty() {
        return Ok(GroupSortKey::default());
    }
    let sortable: Vec<GroupSortKey> = columns(kind)
        .into_iter()
        .filter_map(|(_, key)| key)
        .collect();
    sortable
        .iter()
        .copied()
        .find(|key| key.as_str() == sort)
        .ok_or_else(|| {
            let names: Vec<&str> = sortable.iter().map(|key| key.as_str()).collect();
            ApiError::bad_request(format!(
                "cannot sort these groups by {sort:?}: use {}",
                names.join(", ")
            ))
        })
}

/// The headers of `kind`'s grouped table sorted by `current`; `href` gives the page's URL
/// with the `sort` and `order` parameters replaced (and paging restarted).
pub(crate) fn headers(
    kind: FindingKind,
    current: (GroupSortKey, SortOrder),
    href: impl Fn(&str, &str) -> String,
) -> Vec<GroupHeader> {
    columns(kind)
        .into_iter()
        .map(|(label, key)| {
            let Some(key) = key else {
                return GroupHeader {
                    label,
                    key: "",
                    href: None,
                    aria_sort: None,
                };
            };
            let is_current = key == current.0;
            let next_order = match (is_current, current.1) {
                (false, _) => first_order(key),
                (true, SortOrder::Asc) => SortOrder::Desc,
                (true, SortOrder::Desc) => SortOrder::Asc,
            };
            GroupHeader {
                label,
                key: key.as_str(),
                href: Some(href(key.as_str(), order_name(next_order))),
                aria_sort: is_current.then_some(match current.1 {
                    SortOrder::Asc => "ascending",
                    SortOrder::Desc => "descending",
                }),
            }
        })
        .collect()
}

/// How the caption says the table is sorted: "most severe first", or the column and
/// direction ("affected assets, ascending").
pub(crate) fn described(kind: FindingKind, (key, order): (GroupSortKey, SortOrder)) -> String {
    if (key, order) == (GroupSortKey::Severity, SortOrder::Desc) {
        return "most severe first".to_owned();
    }
    let label = columns(kind)
        .into_iter()
        .find(|(_, column)| *column == Some(key))
        .map_or(key.as_str(), |(label, _)| label);
    let direction = match order {
        SortOrder::Asc => "ascending",
        SortOrder::Desc => "descending",
    };
    format!("sorted by {}, {direction}", label.to_lowercase())
}
