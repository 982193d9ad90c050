//! Quarantined files: each agent reports its whole quarantine (`POST /api/v1/agents/quarantine`),
//! viewers list them (`GET /api/v1/quarantine`), and operators ask the owning agent to put one
//! back (`POST /api/v1/quarantine/{id}/restore`), which queues a `restore_quarantined` task
//! through the task channel, audited like every task. The agent restores the file and reports
//! its quarantine again, so a restored file leaves the list.

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use palisade_model::{
    AgentTask, MAX_QUARANTINE_ENTRIES, QuarantineEntry, QuarantineReport, QuarantinedFile,
    RestoreQuarantinedSpec, Role, TaskSpec, Timestamp,
};
use uuid::Uuid;

use crate::{ApiError, ApiJson, AppState, Caller};

/// Seconds the agent has to restore a file.
const RESTORE_TIMEOUT_SECS: u64 = 300;
/// Most files listed.
const LIST_LIMIT: u32 = 1_000;
/// Longest path, rule name or container id stored.
const MAX_FIELD_BYTES: usize = 4_096;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents/quarantine", post(report))
        .route("/api/v1/quarantine", get(list))
        .route("/api/v1/quarantine/{id}/restore", post(restore))
}

/// The calling agent's whole quarantine, replacing what the server kept for it; answers the
/// number of entries stored.
#[utoipa::path(post, path = "/api/v1/agents/quarantine", tag = "quarantine", request_body = QuarantineReport,
    responses((status = 200, body = u64), (status = 400, body = crate::error::ErrorBody), (status = 403)), security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(report): ApiJson<QuarantineReport>,
) -> Result<ApiJson<u64>, ApiError> {
    let agent = super::tasks::calling_agent(&state, &caller).await?;
    if report.entries.len() > MAX_QUARANTINE_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "a quarantine report lists at most {MAX_QUARANTINE_ENTRIES} entries, not {}",
            report.entries.len()
        )));
    }
    for entry in &report.entries {
        check_entry(entry)?;
    }
    state
        .store
        .replace_quarantine(agent.id, &report.entries, Timestamp::now())
        .await?;
    Ok(ApiJson(report.entries.len() as u64))
}

fn check_entry(entry: &QuarantineEntry) -> Result<(), ApiError> {
    let id = entry.id;
    if !entry.original_path.starts_with('/') || entry.original_path.len() > MAX_FIELD_BYTES {
        return Err(ApiError::bad_request(format!(
            "quarantine entry {id}: original_path must be an absolute path of at most {MAX_FIELD_BYTES} bytes"
        )));
    }
    if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "quarantine entry {id}: sha256 must be 64 hexadecimal digits"
        )));
    }
    let too_long = entry.rule.len() > MAX_FIELD_BYTES
        || entry
            .container_id
            .as_ref()
            .is_some_and(|container| container.len() > MAX_FIELD_BYTES);
    if too_long {
        return Err(ApiError::bad_request(format!(
            "quarantine entry {id}: rule and container_id have at most {MAX_FIELD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Every agent's quarantined files, newest first (at most 1,000).
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "quarantine",
    responses((status = 200, body = Vec<QuarantinedFile>), (status = 403)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<QuarantinedFile>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(ApiJson(state.store.quarantine(LIST_LIMIT).await?))
}

/// Asks the agent that holds a quarantined file to put it back where it was (operators).
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/restore", tag = "quarantine",
    params(("id" = Uuid, Path)),
    responses((status = 201, body = AgentTask), (status = 400, body = crate::error::ErrorBody), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, ApiJson<AgentTask>), ApiError> {
    let task = request_restore(&state, &caller, id).await?;
    Ok((StatusCode::CREATED, ApiJson(task)))
}

/// Queues the restore of quarantine entry `id` for its agent (shared by the API and the
/// console).
pub(crate) async fn request_restore(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<AgentTask, ApiError> {
    caller.require(Role::Operator)?;
    let file = state
        .store
        .quarantined_file(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no quarantined file with id {id}")))?;
    let spec = TaskSpec::RestoreQuarantined(RestoreQuarantinedSpec {
        entry_id: file.entry.id,
        original_path: file.entry.original_path,
    });
    super::tasks::enqueue(state, caller, file.agent_id, spec, RESTORE_TIMEOUT_SECS).await
}
