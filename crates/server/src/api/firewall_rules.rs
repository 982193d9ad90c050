//! Palisade's own firewall rules: `/api/v1/firewall-rules`. Reading needs the viewer role;
//! creating, changing and deleting need admin, because a rule can block production traffic.
//! Every change is audited with the rule before and after.
//!
//! Agents read the rules from `/api/v1/agent/firewall-rules` with their own token. The
//! response carries an `ETag` (a digest of the rules), so an agent polling every few seconds
//! sends `If-None-Match` and gets an empty `304 Not Modified` while nothing changed: a rule
//! edit reaches every agent within one poll interval at the cost of one digest per poll.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use palisade_model::{FirewallRule, NewFirewallRule, Role, Timestamp};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{ApiError, ApiJson, AppState, Caller, state::audit_entry};

fn checked(rule: &NewFirewallRule) -> Result<(), ApiError> {
    rule.validate()
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no firewall rule {id:?}")))
}

/// Lists firewall rules by priority.
#[utoipa::path(get, path = "/api/v1/firewall-rules", tag = "firewall",
    responses((status = 200, body = Vec<FirewallRule>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<FirewallRule>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(ApiJson(state.store.firewall_rules().await?))
}

/// Every firewall rule by priority, for agents (or any reader), with an `ETag`; answers
/// `304 Not Modified` when `If-None-Match` names the current one.
#[utoipa::path(get, path = "/api/v1/agent/firewall-rules", tag = "firewall",
    responses((status = 200, body = Vec<FirewallRule>), (status = 304)), security(("bearer" = [])))]
pub async fn for_agents(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if caller.role != Role::Agent {
        caller.require(Role::Viewer)?;
    }
    let rules = state.store.firewall_rules().await?;
    let body = serde_json::to_vec(&rules).map_err(|error| ApiError::internal(&error))?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|presented| presented.as_bytes() == etag.as_bytes());
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, "application/json".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// Gets one firewall rule.
#[utoipa::path(get, path = "/api/v1/firewall-rules/{id}", tag = "firewall", params(("id" = Uuid, Path)),
    responses((status = 200, body = FirewallRule), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<FirewallRule>, ApiError> {
    caller.require(Role::Viewer)?;
    let uuid = parse_id(&id)?;
    state
        .store
        .firewall_rule(uuid)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found(format!("no firewall rule {id:?}")))
}

/// Creates a firewall rule.
#[utoipa::path(post, path = "/api/v1/firewall-rules", tag = "firewall", request_body = NewFirewallRule,
    responses((status = 201, body = FirewallRule), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewFirewallRule>,
) -> Result<(StatusCode, ApiJson<FirewallRule>), ApiError> {
    caller.require(Role::Admin)?;
    checked(&new)?;
    let rule = FirewallRule {
        id: Uuid::now_v7(),
        rule: new,
        updated_by: caller.name.clone(),
        updated_at: Timestamp::now(),
        demo: false,
    };
    let audit = audit_entry(
        &caller,
        "firewall_rule.create",
        "firewall_rule",
        &rule.id.to_string(),
        "",
        serde_json::json!({ "after": rule.rule }),
    );
    state.store.put_firewall_rule(&rule, &audit).await?;
    Ok((StatusCode::CREATED, ApiJson(rule)))
}

/// Replaces a firewall rule.
#[utoipa::path(put, path = "/api/v1/firewall-rules/{id}", tag = "firewall", params(("id" = Uuid, Path)),
    request_body = NewFirewallRule,
    responses((status = 200, body = FirewallRule), (status = 400, body = crate::error::ErrorBody), (status = 404), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewFirewallRule>,
) -> Result<ApiJson<FirewallRule>, ApiError> {
    caller.require(Role::Admin)?;
    checked(&new)?;
    let uuid = parse_id(&id)?;
    let before = state
        .store
        .firewall_rule(uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no firewall rule {id:?}")))?;
    let rule = FirewallRule {
        id: uuid,
        rule: new,
        updated_by: caller.name.clone(),
        updated_at: Timestamp::now(),
        demo: before.demo,
    };
    let audit = audit_entry(
        &caller,
        "firewall_rule.update",
        "firewall_rule",
        &id,
        "",
        serde_json::json!({ "before": before.rule, "after": rule.rule }),
    );
    state.store.put_firewall_rule(&rule, &audit).await?;
    Ok(ApiJson(rule))
}

/// Deletes a firewall rule.
#[utoipa::path(delete, path = "/api/v1/firewall-rules/{id}", tag = "firewall", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let uuid = parse_id(&id)?;
    let audit = audit_entry(
        &caller,
        "firewall_rule.delete",
        "firewall_rule",
        &id,
        "",
        serde_json::Value::Null,
    );
    if state.store.delete_firewall_rule(uuid, &audit).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no firewall rule {id:?}")))
    }
}
