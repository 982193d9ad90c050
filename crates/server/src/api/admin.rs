//! Tokens and the audit log (admin only).

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use palisade_model::{AuditEntry, Role, Timestamp};
use palisade_store::AuditQuery;
use serde::{Deserialize, Serialize};

use super::{bounded, cursor_param, limit_param};
use crate::{ApiError, ApiJson, ApiQuery, AppState, Caller, auth::issue_token, state::audit_entry};

/// A token to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name for people (1 to 100 characters).
    pub name: String,
    /// `viewer`, `operator`, `admin` or `join` (for enrolling agents).
    pub role: Role,
}

/// A token as listed (never with its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A newly created token: the secret is shown only here, once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer token to hand out. Not stored; cannot be shown again.
    pub token: String,
}

fn info(record: palisade_store::TokenRecord) -> TokenInfo {
    TokenInfo {
        id: record.id,
        name: record.name,
        role: record.role,
        created_at: record.created_at,
        created_by: record.created_by,
        revoked: record.revoked,
    }
}

/// Creates a token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403)), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<(StatusCode, ApiJson<CreatedToken>), ApiError> {
    caller.require(Role::Admin)?;
    if new.name.trim().is_empty() || new.name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "a token name must have between 1 and 100 characters",
        ));
    }
    if new.role == Role::Agent {
        return Err(ApiError::bad_request(
            "agent tokens are issued by joining with a `join` token",
        ));
    }
    let issued = issue_token(&new.name, new.role, &caller.name, None).await?;
    let audit = audit_entry(
        &caller,
        "token.create",
        "token",
        &issued.record.id,
        "",
        serde_json::json!({ "name": new.name, "role": new.role }),
    );
    state
        .store
        .insert_token(&issued.record, Some(&audit))
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedToken {
            info: info(issued.record),
            token: issued.token,
        }),
    ))
}

/// Lists tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin", responses((status = 200, body = Vec<TokenInfo>)), security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<TokenInfo>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(ApiJson(
        state.store.tokens().await?.into_iter().map(info).collect(),
    ))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let audit = audit_entry(
        &caller,
        "token.revoke",
        "token",
        &id,
        "",
        serde_json::Value::Null,
    );
    if !state.store.revoke_token(&id, &audit).await? {
        return Err(ApiError::not_found(format!("no active token {id:?}")));
    }
    state.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// Filters for the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only by this actor.
    pub actor: Option<String>,
    /// Only this action (`alert.ignore`, `whitelist.create`, ...).
    pub action: Option<String>,
    /// Only about this object id.
    pub target_id: Option<String>,
    /// Page size, 1 to 1000.
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditEntry>,
    /// Cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Reads the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditPage)), security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<ApiJson<AuditPage>, ApiError> {
    caller.require(Role::Admin)?;
    let query = AuditQuery {
        actor: bounded("actor", params.actor)?,
        action: bounded("action", params.action)?,
        target_id: bounded("target_id", params.target_id)?,
        limit: limit_param(params.limit)?,
        cursor: cursor_param(params.cursor.as_deref())?,
    };
    let page = state.store.audit_log(&query).await?;
    Ok(ApiJson(AuditPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
