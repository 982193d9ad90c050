//! Palisade's own firewall rules: `/api/v1/firewall-rules`. Reading needs the viewer role;
//! creating, changing and deleting need admin, because a rule can block production traffic.
//! Every change is audited with the rule before and after.
//!
//! Agents read the rules from `/api/v1/agent/firewall-rules` with their own token. The
//! response carries an `ETag` (a digest of the rules), so an agent polling every few seconds
//! sends `If-None-Match` and gets an empty `304 Not Modified` while nothing changed: a rule
//! edit reaches every agent within one poll interval at the cost of one digest per poll.
//!
//! After a change, each agent lists the connections already open that the rules it received
//! refuse (closed in block mode, left open in alert mode) as firewall alerts of their own
//! (`FirewallDetails::open_connection`); `/api/v1/firewall-rules/{id}/open-connections`
//! lists those the agents reported for the rule since its last change (by the agents'
//! clocks), and the console's rule page shows them.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use palisade_model::{
    ConnectionDirection, Details, FindingKind, FirewallDetails, FirewallRule, NewFirewallRule,
    Role, Timestamp,
};
use palisade_store::{FindingQuery, MAX_PAGE_SIZE, SortKey, SortOrder, Store, StoreError};
use serde::Serialize;
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

/// The open connections a rule refuses, as the agents listed them since its last change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenConnections {
    /// The rule's last change: connections listed from then on are shown.
    pub since: Timestamp,
    /// Latest listed first, at most 1,000.
    pub connections: Vec<ListedOpenConnection>,
    /// True when more were listed than are shown.
    pub truncated: bool,
}

/// One connection that was open when the rule reached an agent and that the rule refuses.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListedOpenConnection {
    /// The firewall alert that records it.
    pub finding_id: Uuid,
    /// Cluster.
    pub cluster: String,
    /// The node whose agent listed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The pod's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod holding the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Whether the pod opened it (`outbound`) or accepted it (`inbound`).
    pub direction: ConnectionDirection,
    /// The pod's end, `address:port`.
    pub local: String,
    /// The peer's end, `address:port`.
    pub peer: String,
    /// The peer as a workload (`namespace/pod`) or an address.
    pub peer_workload: String,
    /// The destination port of the connection (the server's).
    pub port: u16,
    /// `TCP`.
    pub protocol: String,
    /// Whether the agent closed it (block mode); false: left open (alert mode).
    pub closed: bool,
    /// When an agent first listed it (that UTC day).
    pub first_seen: Timestamp,
    /// When an agent last listed it.
    pub last_seen: Timestamp,
}

/// The open connections rule `rule` refuses, as the agents listed them since its last change:
/// the firewall alerts named after it ([`FirewallDetails::open_connection_alert_name`],
/// closed or left open) seen since then, latest first.
pub async fn open_connections_of(
    store: &dyn Store,
    rule: &FirewallRule,
) -> Result<OpenConnections, StoreError> {
    let limit = MAX_PAGE_SIZE as usize;
    let mut connections = Vec::new();
    let mut truncated = false;
    for closed in [true, false] {
        let query = FindingQuery {
            rule: Some(FirewallDetails::open_connection_alert_name(
                &rule.rule.name,
                closed,
            )),
            since: Some(rule.updated_at),
            sort: SortKey::LastSeen,
            order: SortOrder::Desc,
            limit: MAX_PAGE_SIZE,
            ..FindingQuery::default()
        };
        let page = store
            .list_findings(FindingKind::FirewallAlert, &query)
            .await?;
        truncated |= page.next_cursor.is_some();
        connections.extend(page.items.into_iter().filter_map(|finding| {
            let Details::FirewallAlert(details) = finding.details else {
                return None;
            };
            let open = details.open_connection?;
            let peer_workload = match open.direction {
                ConnectionDirection::Outbound => details.destination,
                ConnectionDirection::Inbound => details.source,
            };
            Some(ListedOpenConnection {
                finding_id: finding.id,
                cluster: finding.asset.cluster,
                node: finding.asset.node,
                namespace: finding.asset.namespace,
                pod: finding.asset.pod,
                direction: open.direction,
                local: open.local,
                peer: open.peer,
                peer_workload,
                port: details.port,
                protocol: details.protocol,
                closed: open.closed,
                first_seen: finding.first_seen,
                last_seen: finding.last_seen,
            })
        }));
    }
    connections.sort_by_key(|connection| std::cmp::Reverse(connection.last_seen));
    truncated |= connections.len() > limit;
    connections.truncate(limit);
    Ok(OpenConnections {
        since: rule.updated_at,
        connections,
        truncated,
    })
}

/// Lists the connections already open that the rule refuses, as the agents listed them
/// since the rule's last change: closed (block mode) or left open (alert mode).
#[utoipa::path(get, path = "/api/v1/firewall-rules/{id}/open-connections", tag = "firewall",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = OpenConnections), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn open_connections(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<OpenConnections>, ApiError> {
    caller.require(Role::Viewer)?;
    let uuid = parse_id(&id)?;
    let rule = state
        .store
        .firewall_rule(uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no firewall rule {id:?}")))?;
    Ok(ApiJson(
        open_connections_of(state.store.as_ref(), &rule).await?,
    ))
}
