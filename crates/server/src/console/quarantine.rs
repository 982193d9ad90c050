//! `GET /console/quarantine`: the files the agents quarantined, newest first, each with a
//! restore button for operators; `POST /console/quarantine/{id}/restore` queues the restore
//! through the API's own handler (`api::quarantine::request_restore`), so the role check, the
//! task and its audit entry exist once. The form carries the session's CSRF token like every
//! console form.

use askama::Template;
use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use palisade_model::{QuarantinedFile, Role, Timestamp};
use serde::Deserialize;
use uuid::Uuid;

use super::{encode, render, session::ConsoleUser, views::Chrome, when};
use crate::{ApiError, AppState};

/// Most files shown.
const LIST_LIMIT: u32 = 1_000;

#[derive(Template)]
#[template(path = "quarantine.html")]
struct QuarantinePage {
    chrome: Chrome,
    files: Vec<QuarantinedFile>,
}

impl QuarantinePage {
    fn when(&self, at: &Timestamp) -> String {
        when(*at)
    }
}

/// The page's query: a notice to show after a restore was requested.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QuarantineParams {
    #[serde(default)]
    notice: String,
}

/// `GET /console/quarantine` (viewers and above).
pub(crate) async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(params): Query<QuarantineParams>,
) -> Result<Response, ApiError> {
    user.caller.require(Role::Viewer)?;
    let files = state.store.quarantine(LIST_LIMIT).await?;
    let mut chrome = Chrome::new(&user, "Quarantine");
    chrome.notice = (!params.notice.is_empty()).then_some(params.notice);
    Ok(render(&QuarantinePage { chrome, files }))
}

/// `POST /console/quarantine/{id}/restore` (operators): asks the agent that holds the file to
/// put it back, then returns to the list with a notice.
pub(crate) async fn restore(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry_id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a quarantine entry id")))?;
    let task = crate::api::quarantine::request_restore(&state, &user.caller, entry_id).await?;
    let path = match &task.spec {
        palisade_model::TaskSpec::RestoreQuarantined(spec) => spec.original_path.as_str(),
        _ => "",
    };
    let notice = format!(
        "Restore of {path} requested (task {}): the agent puts the file back and the list updates when it reports.",
        task.id
    );
    Ok(Redirect::to(&format!("/console/quarantine?notice={}", encode(&notice))).into_response())
}
