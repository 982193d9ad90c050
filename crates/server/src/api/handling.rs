//! Whitelist rules and exceptions.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use palisade_model::{Exception, NewException, NewWhitelistRule, Role, Timestamp, WhitelistRule};
use serde::Serialize;
use uuid::Uuid;

use crate::{ApiError, ApiJson, AppState, Caller, state::audit_entry};

fn check_text(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "`{name}` is longer than {max} characters"
        )));
    }
    Ok(())
}

fn compile(rule: &NewWhitelistRule) -> Result<palisade_model::WhitelistMatcher, ApiError> {
    check_text("value", &rule.value, 4096)?;
    check_text("reason", &rule.reason, 4096)?;
    rule.compile()
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

/// How many open findings a whitelist rule would close.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The number of open findings that match.
    pub would_close: u64,
}

/// Previews a whitelist rule: how many open findings it would close.
#[utoipa::path(post, path = "/api/v1/whitelist-rules/preview", tag = "whitelist", request_body = NewWhitelistRule,
    responses((status = 200, body = Preview), (status = 400, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(rule): ApiJson<NewWhitelistRule>,
) -> Result<ApiJson<Preview>, ApiError> {
    caller.require(Role::Operator)?;
    let matcher = compile(&rule)?;
    Ok(ApiJson(Preview {
        would_close: state.store.count_whitelist_matches(&matcher).await?,
    }))
}

/// A created whitelist rule and the open findings it closed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedRule {
    /// The rule.
    pub rule: WhitelistRule,
    /// How many open findings it closed.
    pub closed: u64,
}

/// Creates a whitelist rule; it closes the matching open findings and suppresses future ones.
#[utoipa::path(post, path = "/api/v1/whitelist-rules", tag = "whitelist", request_body = NewWhitelistRule,
    responses((status = 201, body = CreatedRule), (status = 400, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewWhitelistRule>,
) -> Result<(StatusCode, ApiJson<CreatedRule>), ApiError> {
    caller.require(Role::Operator)?;
    let matcher = compile(&new)?;
    let rule = WhitelistRule {
        id: Uuid::now_v7(),
        rule: new.clone(),
        created_by: caller.name.clone(),
        created_at: Timestamp::now(),
        hits: 0,
    };
    let audit = audit_entry(
        &caller,
        "whitelist.create",
        "whitelist_rule",
        &rule.id.to_string(),
        &new.reason,
        serde_json::to_value(&new).unwrap_or_default(),
    );
    let closed = state
        .store
        .create_whitelist_rule(&rule, &matcher, &audit)
        .await?;
    state.reload_policy().await?;
    let rule = WhitelistRule {
        hits: closed,
        ..rule
    };
    Ok((StatusCode::CREATED, ApiJson(CreatedRule { rule, closed })))
}

/// Lists whitelist rules.
#[utoipa::path(get, path = "/api/v1/whitelist-rules", tag = "whitelist",
    responses((status = 200, body = Vec<WhitelistRule>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<WhitelistRule>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(ApiJson(state.store.whitelist_rules().await?))
}

/// Deletes a whitelist rule (findings it closed stay closed).
#[utoipa::path(delete, path = "/api/v1/whitelist-rules/{id}", tag = "whitelist", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Operator)?;
    let not_found = || ApiError::not_found(format!("no whitelist rule {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let audit = audit_entry(
        &caller,
        "whitelist.delete",
        "whitelist_rule",
        &id,
        "",
        serde_json::Value::Null,
    );
    if !state.store.delete_whitelist_rule(uuid, &audit).await? {
        return Err(not_found());
    }
    state.reload_policy().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A created exception and the open baseline risks it covered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedException {
    /// The exception.
    pub exception: Exception,
    /// How many open risks it covered.
    pub covered: u64,
}

/// Creates an exception for baseline risks.
#[utoipa::path(post, path = "/api/v1/exceptions", tag = "exceptions", request_body = NewException,
    responses((status = 201, body = CreatedException), (status = 400, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_exception(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewException>,
) -> Result<(StatusCode, ApiJson<CreatedException>), ApiError> {
    caller.require(Role::Operator)?;
    if new.check.is_empty() || new.reason.trim().is_empty() || new.owner.trim().is_empty() {
        return Err(ApiError::bad_request(
            "an exception needs a check (or `*`), a reason and an owner",
        ));
    }
    check_text("reason", &new.reason, 4096)?;
    if new
        .expires_at
        .is_some_and(|expiry| expiry <= Timestamp::now())
    {
        return Err(ApiError::bad_request("expires_at is in the past"));
    }
    let exception = Exception {
        id: Uuid::now_v7(),
        exception: new.clone(),
        created_by: caller.name.clone(),
        created_at: Timestamp::now(),
    };
    let audit = audit_entry(
        &caller,
        "exception.create",
        "exception",
        &exception.id.to_string(),
        &new.reason,
        serde_json::to_value(&new).unwrap_or_default(),
    );
    let covered = state.store.create_exception(&exception, &audit).await?;
    state.reload_policy().await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedException { exception, covered }),
    ))
}

/// Lists exceptions.
#[utoipa::path(get, path = "/api/v1/exceptions", tag = "exceptions",
    responses((status = 200, body = Vec<Exception>)), security(("bearer" = [])))]
pub async fn list_exceptions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<Exception>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(ApiJson(state.store.exceptions().await?))
}

/// Deletes an exception; the risks it alone covered reopen.
#[utoipa::path(delete, path = "/api/v1/exceptions/{id}", tag = "exceptions", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete_exception(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Operator)?;
    let not_found = || ApiError::not_found(format!("no exception {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let audit = audit_entry(
        &caller,
        "exception.delete",
        "exception",
        &id,
        "",
        serde_json::Value::Null,
    );
    if !state.store.delete_exception(uuid, &audit).await? {
        return Err(not_found());
    }
    state.reload_policy().await?;
    Ok(StatusCode::NO_CONTENT)
}
