//! Grouped listings: `/api/v1/vulnerabilities/groups` (by vulnerability id) and
//! `/api/v1/baseline-risks/groups` (by check), the console's grouped tables as JSON: the same
//! filters as the list, sorted by a column of the groups, paged by cursor.

use axum::extract::{Path, State};
use palisade_model::{FindingKind, Role, Severity, Timestamp};
use palisade_store::{FindingGroup, SearchWindow};
use serde::Serialize;

use super::findings::{ListParams, kind_of};
use crate::{ApiError, ApiJson, ApiQuery, AppState, Caller, console::group_sort};

/// One group: the findings of one vulnerability id or check that the filters select.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Group {
    /// Vulnerability id or check id.
    pub rule: String,
    /// A title of one of its findings.
    pub title: String,
    /// The highest severity among its findings.
    pub severity: Severity,
    /// A category of one of its findings.
    pub category: String,
    /// Distinct affected assets.
    pub assets: u64,
    /// Findings.
    pub findings: u64,
    /// Open findings.
    pub open: u64,
    /// Whether a fixed version is known for one of its findings (vulnerabilities).
    pub fix_available: bool,
    /// Latest observation.
    pub last_seen: Timestamp,
    /// The first of its packages by name (vulnerabilities; empty for checks).
    pub package: String,
    /// Distinct packages (vulnerabilities; 0 for checks).
    pub packages: u64,
}

impl From<FindingGroup> for Group {
    fn from(group: FindingGroup) -> Group {
        Group {
            rule: group.rule,
            title: group.title,
            severity: group.severity,
            category: group.category,
            assets: group.assets,
            findings: group.findings,
            open: group.open,
            fix_available: group.fix_available,
            last_seen: group.last_seen,
            package: group.package,
            packages: group.packages,
        }
    }
}

/// A page of groups.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupPage {
    /// The groups, in the requested order (ties by rule, ascending).
    pub items: Vec<Group>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Present when a text search grouped only its newest matches, last seen at or after this
    /// time: the groups' counts are then lower bounds, and a group whose matches are all older
    /// is not listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted_since: Option<Timestamp>,
}

/// Lists the groups of vulnerabilities (by id) or baseline risks (by check). Filters, `order`,
/// `limit` and `cursor` as for the list; `sort` names a column of the groups: `severity` (the
/// default), `rule`, `category`, `assets`, `findings`, `open`, `last_seen`, and for
/// vulnerabilities `package` and `fix_available`.
#[utoipa::path(get, path = "/api/v1/{collection}/groups", tag = "findings",
    params(("collection" = String, Path, description = "vulnerabilities or baseline-risks"), ListParams),
    responses((status = 200, body = GroupPage), (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    ApiQuery(mut params): ApiQuery<ListParams>,
) -> Result<ApiJson<GroupPage>, ApiError> {
    caller.require(Role::Viewer)?;
    let kind = kind_of(&collection)?;
    if !matches!(kind, FindingKind::Vulnerability | FindingKind::BaselineRisk) {
        return Err(ApiError::not_found(format!(
            "/api/v1/{collection} has no groups: vulnerabilities and baseline-risks do"
        )));
    }
    let sort = params.sort.take().unwrap_or_default();
    let mut query = params.into_query()?;
    query.group_sort = group_sort::parse(kind, &sort)?;
    let page = state.store.finding_groups(kind, &query).await?;
    Ok(ApiJson(GroupPage {
        items: page.items.into_iter().map(Group::from).collect(),
        next_cursor: page.next_cursor,
        counted_since: page
            .searched
            .and_then(|window: SearchWindow| window.counted_since),
    }))
}
