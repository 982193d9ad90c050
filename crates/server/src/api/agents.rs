//! The agent link: joining with a join token, then batches of reports.

use axum::{
    extract::{FromRequest, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use palisade_model::{
    AgentBatch, Asset, AssetKind, BatchAck, FindingReport, HostFacts, JoinRequest, JoinResponse,
    MAX_BATCH_REPORTS, Role, SensorContextLosses, Timestamp,
};
use palisade_store::{AgentRecord, IngestOutcome, NodeLosses};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    ApiError, ApiJson, AppState, Caller, auth::issue_token, batch_budget::Deferral,
    state::audit_entry,
};

/// Enrolls an agent: the caller presents a `join` token and receives an `agent` token.
#[utoipa::path(post, path = "/api/v1/agents/join", tag = "agents", request_body = JoinRequest,
    responses((status = 201, body = JoinResponse), (status = 403)), security(("bearer" = [])))]
pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<JoinRequest>,
) -> Result<(StatusCode, ApiJson<JoinResponse>), ApiError> {
    caller.require(Role::Join)?;
    for (field, value) in [("name", &request.name), ("cluster", &request.cluster)] {
        if value.trim().is_empty() || value.len() > 253 {
            return Err(ApiError::bad_request(format!(
                "`{field}` must have between 1 and 253 characters"
            )));
        }
    }
    let agent_id = Uuid::now_v7();
    let now = Timestamp::now();
    let agent = AgentRecord {
        id: agent_id,
        name: request.name.clone(),
        cluster: request.cluster.clone(),
        joined_at: now,
        last_seen: now,
        facts: request.facts.clone(),
        losses: NodeLosses::default(),
    };
    state.store.upsert_agent(&agent).await?;
    register_node(&state, &request.cluster, &request.facts).await?;
    let issued = issue_token(
        &format!("agent {}", request.name),
        Role::Agent,
        &caller.name,
        Some(agent_id),
    )
    .await?;
    let audit = audit_entry(
        &caller,
        "agent.join",
        "agent",
        &agent_id.to_string(),
        "",
        serde_json::json!({ "name": request.name, "cluster": request.cluster }),
    );
    state
        .store
        .insert_token(&issued.record, Some(&audit))
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(JoinResponse {
            agent_id,
            token: issued.token,
        }),
    ))
}

async fn register_node(state: &AppState, cluster: &str, facts: &HostFacts) -> Result<(), ApiError> {
    let now = Timestamp::now();
    for (kind, name, attributes) in [
        (
            AssetKind::Cluster,
            cluster.to_owned(),
            serde_json::Value::Null,
        ),
        (
            AssetKind::Node,
            facts.hostname.clone(),
            serde_json::to_value(facts).unwrap_or_default(),
        ),
    ] {
        state
            .store
            .upsert_asset(&Asset {
                id: Asset::stable_id(kind, cluster, &name),
                kind,
                cluster: cluster.to_owned(),
                name,
                labels: Default::default(),
                attributes,
                first_seen: now,
                last_seen: now,
            })
            .await?;
    }
    Ok(())
}

/// How stale an agent's `last_seen` may get while it sends batches.
const LAST_SEEN_RESOLUTION_MS: i64 = 5_000;

/// Receives a batch of reports. The response is the acknowledgement: once the agent has it,
/// everything in the batch is stored. The body must declare its length (411 without one) and
/// arrive within its deadline (408 after it: 10 s, or a second per MiB for a larger body). 503
/// with `Retry-After` (seconds) when the server holds as many batch bytes as its budget allows,
/// or as one agent may: the agent sends the batch again after that.
#[utoipa::path(post, path = "/api/v1/agent/batches", tag = "agents", request_body = AgentBatch,
    responses((status = 200, body = BatchAck), (status = 400, body = crate::error::ErrorBody),
        (status = 408, body = crate::error::ErrorBody), (status = 411, body = crate::error::ErrorBody), (status = 413),
        (status = 503, body = crate::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before sending the batch again")))),
    security(("bearer" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<ApiJson<BatchAck>, Response> {
    // The agent is known before the body takes a share of the budget, so that only agents can
    // spend it, each within its own share; the share is held until the batch is stored and
    // answered.
    caller
        .require(Role::Agent)
        .map_err(IntoResponse::into_response)?;
    let agent_id = caller
        .agent_id
        .ok_or_else(|| ApiError::forbidden("this agent token has no agent").into_response())?;
    let share = match state
        .agent_batch_bytes()
        .take(agent_id, request.headers())
        .await
    {
        Ok(share) => share,
        Err(deferral) => {
            if !matches!(deferral, Deferral::Refused(_)) {
                state.metrics.record_batch_deferred();
            }
            return Err(deferral.into_response());
        }
    };
    // A body that stalls is cut here, giving its share back; decoding a body that arrived is
    // not cut (it runs in the poll that read the body's end).
    let decoded = tokio::time::timeout(
        share.body_deadline,
        ApiJson::<AgentBatch>::from_request(request, &state),
    )
    .await
    .map_err(|_| {
        ApiError::request_timeout(format!(
            "the batch's body did not arrive within {} s",
            share.body_deadline.as_secs()
        ))
        .into_response()
    })?;
    let ApiJson(batch) = decoded.map_err(IntoResponse::into_response)?;
    store_batch(&state, agent_id, batch)
        .await
        .map_err(IntoResponse::into_response)
}

/// Stores an agent's batch and acknowledges it.
async fn store_batch(
    state: &AppState,
    agent_id: Uuid,
    batch: AgentBatch,
) -> Result<ApiJson<BatchAck>, ApiError> {
    let agent = state
        .store
        .agent(agent_id)
        .await?
        .ok_or_else(|| ApiError::forbidden("this agent is not enrolled any more"))?;
    if batch.reports.len() > MAX_BATCH_REPORTS {
        return Err(ApiError::bad_request(format!(
            "a batch holds at most {MAX_BATCH_REPORTS} reports, not {}",
            batch.reports.len()
        )));
    }
    if let Some(report) = batch
        .reports
        .iter()
        .find(|report| report.asset.cluster != agent.cluster)
    {
        return Err(ApiError::bad_request(format!(
            "report {} is for cluster {:?}, but this agent reports for {:?}",
            report.id, report.asset.cluster, agent.cluster
        )));
    }
    if let Some(asset) = batch
        .assets
        .iter()
        .find(|asset| asset.cluster != agent.cluster)
    {
        return Err(ApiError::bad_request(format!(
            "asset {} is for cluster {:?}, not {:?}",
            asset.id, asset.cluster, agent.cluster
        )));
    }
    let outcome = ingest(state, &batch.reports).await?;
    // Most batches repeat the counters already counted: only a change costs a write.
    if let Some(report) = batch
        .losses
        .as_ref()
        .filter(|report| agent.losses.latest.as_ref() != Some(*report))
    {
        let increase = state
            .store
            .count_agent_losses(agent.id, report, Timestamp::now())
            .await?;
        state
            .metrics
            .record_node_losses(&agent.cluster, &agent.name, increase);
    }
    for asset in &batch.assets {
        state.store.upsert_asset(asset).await?;
    }
    let facts = batch.facts.clone().unwrap_or(agent.facts.clone());
    if batch.facts.is_some() {
        register_node(state, &agent.cluster, &facts).await?;
    }
    // `last_seen` is kept to the few seconds that show whether an agent reports: writing it for
    // every batch would make each acknowledgement wait for the next batch's ingest on the one
    // writer connection, and the agent's pipeline would drain.
    let now = Timestamp::now();
    if batch.facts.is_some() || now.millis() - agent.last_seen.millis() >= LAST_SEEN_RESOLUTION_MS {
        state
            .store
            .upsert_agent(&AgentRecord {
                last_seen: now,
                facts,
                ..agent
            })
            .await?;
    }
    Ok(ApiJson(BatchAck {
        sequence: batch.sequence,
        created: outcome.created,
        aggregated: outcome.aggregated,
        suppressed: outcome.suppressed,
        duplicates: outcome.duplicates,
    }))
}

/// Stores reports under the handling policy, counts them and notifies about new findings:
/// the one ingest path of agent batches and the Kubernetes audit webhook.
pub(crate) async fn ingest(
    state: &AppState,
    reports: &[FindingReport],
) -> Result<IngestOutcome, ApiError> {
    let policy = state.policy();
    let outcome = state.store.ingest(reports, &policy).await?;
    state.metrics.record_ingest(&outcome);
    if state.notifier.is_enabled() {
        for (kind, id) in &outcome.created_ids {
            if let Some(finding) = state.store.get_finding(*kind, *id).await? {
                state.notifier.notify(&finding);
            }
        }
    }
    Ok(outcome)
}

/// An enrolled agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentInfo {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Cluster.
    pub cluster: String,
    /// When it joined.
    pub joined_at: Timestamp,
    /// When it last reported.
    pub last_seen: Timestamp,
    /// Host facts.
    pub facts: HostFacts,
    /// What the agent reported lost, over all its processes.
    pub losses: Losses,
}

/// What an agent reported lost, summed over its processes (an agent's counters start again
/// at zero when it restarts; these totals do not).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Losses {
    /// Kernel events the node's sensor lost (its ring buffer was full): runtime detection
    /// did not see them.
    pub sensor_events: u64,
    /// Reports of the node's firewall connect programs that were lost: connects they decided
    /// without an alert or a flow record.
    pub connect_reports: u64,
    /// What the node's sensor could not attach to the events it delivered (container
    /// metadata, ancestry): detection saw those events with less context.
    pub sensor_context: SensorContextLosses,
    /// When a loss was last counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_loss_at: Option<Timestamp>,
}

impl From<NodeLosses> for Losses {
    fn from(losses: NodeLosses) -> Losses {
        Losses {
            sensor_events: losses.sensor_events,
            connect_reports: losses.connect_reports,
            sensor_context: losses.sensor_context,
            last_loss_at: losses.last_loss_at,
        }
    }
}

/// Lists enrolled agents.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", responses((status = 200, body = Vec<AgentInfo>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<AgentInfo>>, ApiError> {
    caller.require(Role::Viewer)?;
    let agents = state.store.agents().await?;
    Ok(ApiJson(
        agents
            .into_iter()
            .map(|agent| AgentInfo {
                id: agent.id,
                name: agent.name,
                cluster: agent.cluster,
                joined_at: agent.joined_at,
                last_seen: agent.last_seen,
                facts: agent.facts,
                losses: agent.losses.into(),
            })
            .collect(),
    ))
}
