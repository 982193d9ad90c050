//! The four finding collections: `/api/v1/{alerts,vulnerabilities,baseline-risks,firewall-alerts}`.
//! One set of handlers serves all four; the collection name selects the kind.

use axum::extract::{Path, State};
use palisade_model::{Finding, FindingKind, Note, Role, Severity, Status, Timestamp};
use palisade_store::{
    FindingQuery, GroupSortKey, Page, SearchWindow, Selection, SortKey, SortOrder,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{bounded, cursor_param, limit_param, time_param};
use crate::{ApiError, ApiJson, ApiQuery, AppState, Caller, state::audit_entry};

/// Resolves a collection path segment to its kind.
pub(crate) fn kind_of(collection: &str) -> Result<FindingKind, ApiError> {
    FindingKind::ALL
        .into_iter()
        .find(|kind| kind.api_collection() == collection)
        .ok_or_else(|| ApiError::not_found(format!("no collection /api/v1/{collection}")))
}

/// Filters, sorting and pagination for listing findings.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Comma-separated severities (`critical,high`).
    pub severity: Option<String>,
    /// Comma-separated statuses (`open,ignored`).
    pub status: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Asset id.
    pub asset_id: Option<String>,
    /// Rule name, vulnerability id or check id.
    pub rule: Option<String>,
    /// Case-insensitive text in title, rule or asset.
    pub q: Option<String>,
    /// Seen at or after (RFC 3339).
    pub since: Option<String>,
    /// First seen at or before (RFC 3339).
    pub until: Option<String>,
    /// Only demo data (`true`) or only real data (`false`).
    pub demo: Option<bool>,
    /// `last_seen` (default), `first_seen`, `severity` or `count`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// Validates and converts the parameters.
    pub fn into_query(self) -> Result<FindingQuery, ApiError> {
        let severities = comma_list(self.severity.as_deref(), "severity", |name| {
            name.parse::<Severity>().ok()
        })?;
        let statuses = comma_list(self.status.as_deref(), "status", Status::from_name)?;
        let sort = match self.sort.as_deref() {
            None | Some("") | Some("last_seen") => SortKey::LastSeen,
            Some("first_seen") => SortKey::FirstSeen,
            Some("severity") => SortKey::Severity,
            Some("count") => SortKey::Count,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "cannot sort by {other:?}: use last_seen, first_seen, severity or count"
                )));
            }
        };
        let order = match self.order.as_deref() {
            None | Some("") | Some("desc") => SortOrder::Desc,
            Some("asc") => SortOrder::Asc,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "order {other:?}: use asc or desc"
                )));
            }
        };
        let asset_id = bounded("asset_id", self.asset_id)?
            .map(|id| {
                Uuid::parse_str(&id)
                    .map_err(|_| ApiError::bad_request(format!("asset_id {id:?} is not a UUID")))
            })
            .transpose()?;
        Ok(FindingQuery {
            cluster: bounded("cluster", self.cluster)?,
            severities,
            statuses,
            category: bounded("category", self.category)?,
            namespace: bounded("namespace", self.namespace)?,
            asset_id,
            rule: bounded("rule", self.rule)?,
            text: bounded("q", self.q)?,
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
            demo: self.demo,
            sort,
            order,
            // The API lists findings, not groups; the console sets this for its grouped tables.
            group_sort: GroupSortKey::default(),
            limit: limit_param(self.limit)?,
            cursor: cursor_param(self.cursor.as_deref())?,
        })
    }
}

fn comma_list<T>(
    text: Option<&str>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    if text.len() > 256 {
        return Err(ApiError::bad_request(format!(
            "query parameter `{name}` is too long"
        )));
    }
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            parse(item.trim())
                .ok_or_else(|| ApiError::bad_request(format!("unknown {name} {item:?}")))
        })
        .collect()
}

/// A page of findings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingPage {
    /// The findings.
    pub items: Vec<Finding>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Present when the search term has one or two characters: such a search reads a window
    /// of the newest findings of the other filters rather than all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched: Option<SearchedWindow>,
}

/// How far a search for a one- or two-character term looked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchedWindow {
    /// Most findings one such search reads, newest first.
    pub findings: u32,
    /// Set when the other filters select more findings than that: counts (`/stats`) cover only
    /// those last seen at or after this time, and are lower bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted_since: Option<Timestamp>,
    /// This page's window ended before the page filled: follow `next_cursor` to search older
    /// findings (the page may hold fewer items than asked for, even none).
    pub page_window_full: bool,
}

impl FindingPage {
    fn new(page: Page<Finding>, query: &FindingQuery) -> FindingPage {
        let windowed = query.text.as_deref().is_some_and(SearchWindow::bounds);
        FindingPage {
            items: page.items,
            next_cursor: page.next_cursor,
            searched: windowed.then(|| SearchedWindow {
                findings: SearchWindow::FINDINGS,
                counted_since: page.searched.and_then(|window| window.counted_since),
                page_window_full: page.searched.is_some_and(|window| window.page_window_full),
            }),
        }
    }
}

/// Lists findings of one kind.
#[utoipa::path(get, path = "/api/v1/{collection}", tag = "findings",
    params(("collection" = String, Path, description = "alerts, vulnerabilities, baseline-risks or firewall-alerts"), ListParams),
    responses((status = 200, body = FindingPage), (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<FindingPage>, ApiError> {
    caller.require(Role::Viewer)?;
    let kind = kind_of(&collection)?;
    let query = params.into_query()?;
    let page = state.store.list_findings(kind, &query).await?;
    Ok(ApiJson(FindingPage::new(page, &query)))
}

/// Counts by severity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeverityCounts {
    /// Critical.
    pub critical: u64,
    /// High.
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
    /// Info.
    pub info: u64,
    /// Present when the search term has one or two characters: the counts cover at most this
    /// many of the newest findings of the other filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_findings: Option<u32>,
    /// Present when a text search counted only the findings last seen at or after this time,
    /// so that the counts are lower bounds ("at least"): a one- or two-character term whose
    /// window (`searched_findings`) left findings out, or a term matching more than
    /// `counted_matches` findings, of which the newest that many were counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted_since: Option<Timestamp>,
    /// Present with a text search: most matches it counts, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted_matches: Option<u32>,
}

/// Counts findings of one kind by severity, with the same filters as the list.
#[utoipa::path(get, path = "/api/v1/{collection}/stats", tag = "findings",
    params(("collection" = String, Path), ListParams),
    responses((status = 200, body = SeverityCounts)), security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<SeverityCounts>, ApiError> {
    caller.require(Role::Viewer)?;
    let kind = kind_of(&collection)?;
    let query = params.into_query()?;
    let counts = state.store.count_by_severity(kind, &query).await?;
    let [info, low, medium, high, critical] = counts.by_rank;
    Ok(ApiJson(SeverityCounts {
        critical,
        high,
        medium,
        low,
        info,
        searched_findings: query
            .text
            .as_deref()
            .is_some_and(SearchWindow::bounds)
            .then_some(SearchWindow::FINDINGS),
        counted_since: counts.counted_since,
        counted_matches: query
            .text
            .is_some()
            .then_some(SearchWindow::COUNTED_MATCHES),
    }))
}

/// A finding with its notes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingWithNotes {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// Notes, oldest first.
    pub notes: Vec<Note>,
}

/// Gets one finding.
#[utoipa::path(get, path = "/api/v1/{collection}/{id}", tag = "findings",
    params(("collection" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = FindingWithNotes), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id)): Path<(String, String)>,
) -> Result<ApiJson<FindingWithNotes>, ApiError> {
    caller.require(Role::Viewer)?;
    let kind = kind_of(&collection)?;
    let finding = load(&state, kind, &id).await?;
    let notes = state.store.notes(finding.id).await?;
    Ok(ApiJson(FindingWithNotes { finding, notes }))
}

pub(crate) async fn load(
    state: &AppState,
    kind: FindingKind,
    id: &str,
) -> Result<Finding, ApiError> {
    let not_found = || ApiError::not_found(format!("no {} with id {id:?}", kind.as_str()));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state
        .store
        .get_finding(kind, id)
        .await?
        .ok_or_else(not_found)
}

/// Why an action is taken.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Recorded in the audit trail.
    #[serde(default)]
    pub reason: String,
}

/// A handling action on one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open → ignored.
    Ignore,
    /// Ignored → open.
    Unignore,
    /// Open or ignored → handled.
    Handle,
    /// Handled, whitelisted or fixed → open.
    Reopen,
    /// Open → fixing (vulnerabilities).
    Fix,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "ignore" => Action::Ignore,
            "unignore" => Action::Unignore,
            "handle" => Action::Handle,
            "reopen" => Action::Reopen,
            "fix" => Action::Fix,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Ignore => "ignore",
            Action::Unignore => "unignore",
            Action::Handle => "handle",
            Action::Reopen => "reopen",
            Action::Fix => "fix",
        }
    }

    /// (statuses it applies to, status it sets).
    fn transition(self) -> (&'static [Status], Status) {
        match self {
            Action::Ignore => (&[Status::Open], Status::Ignored),
            Action::Unignore => (&[Status::Ignored], Status::Open),
            Action::Handle => (&[Status::Open, Status::Ignored], Status::Handled),
            Action::Reopen => (
                &[Status::Handled, Status::Whitelisted, Status::Fixed],
                Status::Open,
            ),
            Action::Fix => (&[Status::Open], Status::Fixing),
        }
    }
}

/// Applies a handling action (`ignore`, `unignore`, `handle`, `reopen`, `fix`) to one finding.
#[utoipa::path(post, path = "/api/v1/{collection}/{id}/{action}", tag = "handling",
    params(("collection" = String, Path), ("id" = Uuid, Path), ("action" = String, Path, description = "ignore, unignore, handle, reopen, or fix (vulnerabilities)")),
    request_body = ActionRequest,
    responses((status = 200, body = Finding), (status = 403), (status = 404), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<ApiJson<Finding>, ApiError> {
    caller.require(Role::Operator)?;
    let kind = kind_of(&collection)?;
    let action = Action::parse(&action)
        .filter(|action| *action != Action::Fix || kind == FindingKind::Vulnerability)
        .ok_or_else(|| ApiError::not_found(format!("no action {action:?} on {collection}")))?;
    let finding = load(&state, kind, &id).await?;
    // The body is optional: an action without a reason may be posted empty.
    let reason = if body.is_empty() {
        String::new()
    } else {
        serde_json::from_slice::<ActionRequest>(&body)
            .map_err(|error| ApiError::bad_request(format!("invalid request body: {error}")))?
            .reason
    };
    let (from, to) = action.transition();
    let audit = audit_entry(
        &caller,
        &format!("{}.{}", kind.as_str(), action.name()),
        kind.as_str(),
        &finding.id.to_string(),
        &reason,
        serde_json::json!({ "from": finding.status, "to": to }),
    );
    let changed = state
        .store
        .set_status(kind, &Selection::Ids(vec![finding.id]), from, to, &audit)
        .await?;
    if changed == 0 {
        return Err(ApiError::conflict(format!(
            "{} {} is {}; `{}` applies to findings that are {}",
            kind.as_str(),
            finding.id,
            finding.status.as_str(),
            action.name(),
            from.iter()
                .map(|status| status.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok(ApiJson(load(&state, kind, &id).await?))
}

/// Handle or ignore every finding similar to one: same rule, optionally same asset.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    /// `handle` or `ignore`.
    pub action: String,
    /// Only findings on the same asset.
    #[serde(default)]
    pub same_asset: bool,
    /// Recorded in the audit trail.
    #[serde(default)]
    pub reason: String,
}

/// How many findings an action changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Changed {
    /// The number of findings changed.
    pub changed: u64,
}

/// Bulk-handles findings similar to one.
#[utoipa::path(post, path = "/api/v1/{collection}/{id}/handle-similar", tag = "handling",
    params(("collection" = String, Path), ("id" = Uuid, Path)), request_body = SimilarRequest,
    responses((status = 200, body = Changed)), security(("bearer" = [])))]
pub async fn handle_similar(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<SimilarRequest>,
) -> Result<ApiJson<Changed>, ApiError> {
    caller.require(Role::Operator)?;
    let kind = kind_of(&collection)?;
    let action = match request.action.as_str() {
        "handle" => Action::Handle,
        "ignore" => Action::Ignore,
        other => {
            return Err(ApiError::bad_request(format!(
                "action {other:?}: use handle or ignore"
            )));
        }
    };
    let finding = load(&state, kind, &id).await?;
    let selection = Selection::Similar {
        rule: finding.rule.clone(),
        asset_id: request.same_asset.then_some(finding.asset_id),
    };
    let (from, to) = action.transition();
    let audit = audit_entry(
        &caller,
        &format!("{}.{}_similar", kind.as_str(), action.name()),
        kind.as_str(),
        &finding.id.to_string(),
        &request.reason,
        serde_json::json!({ "rule": finding.rule, "same_asset": request.same_asset }),
    );
    let changed = state
        .store
        .set_status(kind, &selection, from, to, &audit)
        .await?;
    Ok(ApiJson(Changed { changed }))
}

/// A note to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// The text (at most 10,000 characters).
    pub text: String,
}

/// Adds a note to a finding.
#[utoipa::path(post, path = "/api/v1/{collection}/{id}/notes", tag = "handling",
    params(("collection" = String, Path), ("id" = Uuid, Path)), request_body = NoteRequest,
    responses((status = 201, body = Note)), security(("bearer" = [])))]
pub async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<NoteRequest>,
) -> Result<(axum::http::StatusCode, ApiJson<Note>), ApiError> {
    caller.require(Role::Operator)?;
    let kind = kind_of(&collection)?;
    if request.text.trim().is_empty() || request.text.chars().count() > 10_000 {
        return Err(ApiError::bad_request(
            "a note must have between 1 and 10,000 characters",
        ));
    }
    let finding = load(&state, kind, &id).await?;
    let note = Note {
        id: Uuid::now_v7(),
        finding_id: finding.id,
        author: caller.name.clone(),
        created_at: Timestamp::now(),
        text: request.text,
    };
    let audit = audit_entry(
        &caller,
        &format!("{}.note", kind.as_str()),
        kind.as_str(),
        &finding.id.to_string(),
        "",
        serde_json::json!({ "note_id": note.id }),
    );
    state.store.add_note(&note, &audit).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(note)))
}
