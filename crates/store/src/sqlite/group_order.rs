//! The order of a page of groups (vulnerabilities by id, baseline risks by check): the
//! aggregate each [`GroupSortKey`] sorts by (over findings, or its column of the group
//! summary), the keyset that starts a page after a cursor, and the cursor of a page's last
//! group. Ties are broken by rule, ascending, in both
//! directions, so that each group is listed once however pages fall.

use sqlx::{QueryBuilder, Sqlite};

use crate::{Cursor, FindingGroup, GroupSortKey, SortOrder};

/// The aggregate over a group's rows that `key` sorts by: the same expression the group's
/// own column is selected as (see `group_aggregates` in `console.rs`), so that order and
/// cursor agree with what is shown. The rows are entries of `findings` (or of the `matches`
/// of a text search), which name the fix-known flag `fix_known` (migration 0055).
pub(super) fn aggregate(key: GroupSortKey) -> &'static str {
    match key {
        GroupSortKey::Severity => "MAX(severity)",
        GroupSortKey::Rule => "rule",
        GroupSortKey::Category => "MAX(category)",
        GroupSortKey::Assets => "COUNT(DISTINCT asset_id)",
        GroupSortKey::Findings => "COUNT(*)",
        GroupSortKey::Open => "SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END)",
        GroupSortKey::LastSeen => "MAX(last_seen)",
        GroupSortKey::FixAvailable => "MAX(fix_known)",
        GroupSortKey::Package => "MIN(package)",
    }
}

/// What a statement pages: groups it aggregates from rows of findings (`GROUP BY rule`), or
/// rows of `finding_group_summary`, one per group, after a WHERE clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grouped {
    Findings,
    Summary,
}

/// Whether groups in `key`'s order are compared by a cursor's text (else by its value).
/// Titles are not offered: unbounded in length, they would not fit a cursor
/// ([`Cursor::decode`] takes at most 512 characters); the rule sorts the same tables by name.
fn by_text(key: GroupSortKey) -> bool {
    matches!(key, GroupSortKey::Category | GroupSortKey::Package)
}

/// Whether a page in `key` and `order` is the one the severity walk of
/// `SqliteStore::groups_through_indexes` finds: most severe first.
pub(super) fn severity_walk(key: GroupSortKey, order: SortOrder) -> bool {
    key == GroupSortKey::Severity && order == SortOrder::Desc
}

/// Ends a statement selecting groups (`grouped`) with one page of them (at most `limit` + 1,
/// to tell whether more follow) in `key` and `order`, after `cursor` (from [`cursor_of`]).
pub(super) fn push_group_page(
    builder: &mut QueryBuilder<Sqlite>,
    grouped: Grouped,
    (key, order): (GroupSortKey, SortOrder),
    cursor: Option<&Cursor>,
    limit: u32,
) {
    let (expression, condition) = match grouped {
        Grouped::Findings => {
            builder.push(" GROUP BY rule");
            (aggregate(key), "HAVING")
        }
        // `finding_group_summary` (migration 0059) names each column as its key.
        Grouped::Summary => (key.as_str(), "AND"),
    };
    let (after, direction) = match order {
        SortOrder::Desc => ("<", "DESC"),
        SortOrder::Asc => (">", "ASC"),
    };
    if let Some(cursor) = cursor {
        if key == GroupSortKey::Rule {
            builder
                .push(format_args!(" {condition} rule {after} "))
                .push_bind(cursor.id.clone());
        } else {
            builder.push(format_args!(" {condition} ({expression} {after} "));
            push_cursor_value(builder, key, cursor);
            builder.push(format_args!(" OR ({expression} = "));
            push_cursor_value(builder, key, cursor);
            builder
                .push(" AND rule > ")
                .push_bind(cursor.id.clone())
                .push("))");
        }
    }
    builder.push(format_args!(" ORDER BY {expression} {direction}"));
    if key != GroupSortKey::Rule {
        builder.push(", rule ASC");
    }
    builder.push(" LIMIT ").push_bind(i64::from(limit) + 1);
}

/// Binds the sort value `cursor` holds for `key`.
fn push_cursor_value(builder: &mut QueryBuilder<Sqlite>, key: GroupSortKey, cursor: &Cursor) {
    if by_text(key) {
        builder.push_bind(cursor.text.clone());
    } else {
        builder.push_bind(cursor.value);
    }
}

/// The cursor after `group` in `key`'s order: its sort value (a number as `value`, a text as
/// `text`) and its rule as `id`.
pub(super) fn cursor_of(key: GroupSortKey, group: &FindingGroup) -> Cursor {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let (value, text) = match key {
        GroupSortKey::Severity => (group.severity.rank(), ""),
        GroupSortKey::Rule => (0, ""),
        GroupSortKey::Category => (0, group.category.as_str()),
        GroupSortKey::Assets => (count(group.assets), ""),
        GroupSortKey::Findings => (count(group.findings), ""),
        GroupSortKey::Open => (count(group.open), ""),
        GroupSortKey::LastSeen => (group.last_seen.millis(), ""),
        GroupSortKey::FixAvailable => (i64::from(group.fix_available), ""),
        GroupSortKey::Package => (0, group.package.as_str()),
    };
    Cursor {
        value,
        text: text.to_owned(),
        id: group.rule.clone(),
    }
}
