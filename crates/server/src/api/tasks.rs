//! Agent tasks: operators queue work for one agent (host checks, rescans, fix verifications,
//! package upgrades); the agent long-polls for its pending tasks and posts each result; a
//! verify-fix result closes the vulnerability only when the rescan no longer finds it.
//! Agents also post scan snapshots, which resolve the findings a complete rescan no longer
//! finds.
//!
//! Claims are leases: each claim starts an attempt held by the claiming agent process (its
//! `session`) for the server's [`TaskLeaseLength`] (`palisade server --task-lease-secs`), which the
//! agent renews with heartbeats (`POST /api/v1/agents/tasks/{id}/heartbeat?attempt=N`). A
//! task whose lease lapsed, or whose agent claims again as a new process, is handed out again
//! (at most [`palisade_model::MAX_TASK_ATTEMPTS`] attempts, each recorded); a heartbeat or
//! result of an older attempt, or of one whose lease lapsed, gets 409, so one task never runs
//! twice at once.
//!
//! Latency: `POST /api/v1/agents/tasks/claim` with `wait_secs: N` holds the request up to `N`
//! seconds (at most [`MAX_WAIT_SECS`]) and answers as soon as a task for the agent is created
//! in this server process, so a waiting agent receives a new task within milliseconds. Claiming
//! is a POST because it changes state: the claimed tasks become `running`.

use std::{collections::HashSet, time::Duration};

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use palisade_model::{
    AffectedAsset, AgentTask, ClaimTasks, DEFAULT_LEASE_SECS, Details, Finding, FindingKind,
    FixVerification, MAX_LEASE_SECS, MAX_SNAPSHOT_KEYS, NewTask, Role, ScanSnapshot,
    SnapshotOutcome, Status, TaskResult, TaskSpec, TaskState, Timestamp, UpgradeSpec,
    VerificationState, VerifyFixSpec,
};
use palisade_store::{AgentRecord, Selection, TaskClaim};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{ApiError, ApiJson, ApiQuery, AppState, Caller, state::audit_entry};

/// Longest long-poll, in seconds; below the server's request timeout and its drain time.
pub const MAX_WAIT_SECS: u64 = 8;
/// Default time a task has to finish.
const DEFAULT_TIMEOUT_SECS: u64 = 900;
/// Longest time a task may be given.
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Most tasks handed to an agent at once.
const CLAIM_LIMIT: u32 = 20;
/// Longest result message stored.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// How long an agent's claim of a task holds without a heartbeat: the server's setting, used
/// for every claim and heartbeat that names no lease of its own (agents from before this
/// setting named one). Agents renew at a quarter of it, so a short lease hands the task of a
/// frozen or cut-off agent out again sooner, at the cost of more heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLeaseLength {
    secs: u64,
}

impl TaskLeaseLength {
    /// The shortest lease: heartbeats every half second.
    pub const MIN_SECS: u64 = 2;
    /// The longest lease.
    pub const MAX_SECS: u64 = MAX_LEASE_SECS;

    /// A lease of `secs` seconds, within [`TaskLeaseLength::MIN_SECS`]..=[`TaskLeaseLength::MAX_SECS`].
    pub fn from_secs(secs: u64) -> Result<TaskLeaseLength, TaskLeaseLengthError> {
        if (Self::MIN_SECS..=Self::MAX_SECS).contains(&secs) {
            Ok(TaskLeaseLength { secs })
        } else {
            Err(TaskLeaseLengthError::OutOfRange(secs))
        }
    }

    /// The length in seconds.
    pub fn secs(self) -> u64 {
        self.secs
    }
}

impl Default for TaskLeaseLength {
    fn default() -> TaskLeaseLength {
        TaskLeaseLength {
            secs: DEFAULT_LEASE_SECS,
        }
    }
}

/// Seconds, as `--task-lease-secs` takes them.
impl std::fmt::Display for TaskLeaseLength {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.secs)
    }
}

impl std::str::FromStr for TaskLeaseLength {
    type Err = TaskLeaseLengthError;

    fn from_str(text: &str) -> Result<TaskLeaseLength, TaskLeaseLengthError> {
        let secs = text
            .trim()
            .parse::<u64>()
            .map_err(|_| TaskLeaseLengthError::NotSeconds(text.to_owned()))?;
        TaskLeaseLength::from_secs(secs)
    }
}

/// A task lease length that is not a whole number of seconds within the bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskLeaseLengthError {
    /// Not a whole number of seconds.
    #[error("{0:?} is not a whole number of seconds")]
    NotSeconds(String),
    /// Outside [`TaskLeaseLength::MIN_SECS`]..=[`TaskLeaseLength::MAX_SECS`].
    #[error(
        "a task lease of {0} s is out of range: give {min} to {max} seconds",
        min = TaskLeaseLength::MIN_SECS,
        max = TaskLeaseLength::MAX_SECS
    )]
    OutOfRange(u64),
}

/// Wakes long-polling agents when a task is created in this process.
static TASK_CREATED: Notify = Notify::const_new();

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents/tasks/claim", post(claim))
        .route("/api/v1/agents/tasks/{id}/result", post(report))
        .route("/api/v1/agents/tasks/{id}/heartbeat", post(heartbeat))
        .route("/api/v1/agents/scan-snapshots", post(snapshot))
        .route("/api/v1/agents/{agent_id}/tasks", get(list).post(create))
        .route("/api/v1/tasks/{id}", get(get_one))
        .route("/api/v1/fix-verifications", post(verify_fix))
        .route(
            "/api/v1/vulnerabilities/{id}/fix-verifications",
            get(verifications),
        )
        .route("/api/v1/fixes", post(fix))
}

/// Queues a task for an agent. Operators may queue every kind but `upgrade_package`, which
/// needs an admin.
#[utoipa::path(post, path = "/api/v1/agents/{agent_id}/tasks", tag = "tasks", request_body = NewTask,
    params(("agent_id" = Uuid, Path)),
    responses((status = 201, body = AgentTask), (status = 400, body = crate::error::ErrorBody), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<Uuid>,
    ApiJson(request): ApiJson<NewTask>,
) -> Result<(StatusCode, ApiJson<AgentTask>), ApiError> {
    caller.require(Role::Operator)?;
    let timeout_secs = match request.timeout_secs {
        None => DEFAULT_TIMEOUT_SECS,
        Some(secs @ 1..=MAX_TIMEOUT_SECS) => secs,
        Some(secs) => {
            return Err(ApiError::bad_request(format!(
                "timeout_secs {secs} is out of range: give 1 to {MAX_TIMEOUT_SECS} seconds"
            )));
        }
    };
    match &request.spec {
        TaskSpec::UpgradePackage(upgrade) => {
            caller.require(Role::Admin)?;
            upgrade
                .validate()
                .map_err(|error| ApiError::bad_request(error.to_string()))?;
        }
        TaskSpec::VerifyFix(_) => {
            return Err(ApiError::bad_request(
                "verify_fix tasks are created by POST /api/v1/fix-verifications, which records the verification",
            ));
        }
        TaskSpec::RestoreQuarantined(_) => {
            return Err(ApiError::bad_request(
                "restore_quarantined tasks are created by POST /api/v1/quarantine/{id}/restore, which finds the agent that holds the file",
            ));
        }
        TaskSpec::RunHostChecks | TaskSpec::RescanVulnerabilities => {}
    }
    state
        .store
        .agent(agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no enrolled agent with id {agent_id}")))?;
    let task = enqueue(&state, &caller, agent_id, request.spec, timeout_secs).await?;
    Ok((StatusCode::CREATED, ApiJson(task)))
}

/// Stores a new task with its audit entry and wakes the agent if it is waiting.
pub(crate) async fn enqueue(
    state: &AppState,
    caller: &Caller,
    agent_id: Uuid,
    spec: TaskSpec,
    timeout_secs: u64,
) -> Result<AgentTask, ApiError> {
    let now = Timestamp::now();
    let task = AgentTask {
        id: Uuid::now_v7(),
        agent_id,
        state: TaskState::Pending,
        requested_by: caller.name.clone(),
        requested_at: now,
        deadline: Timestamp(now.millis().saturating_add((timeout_secs * 1000) as i64)),
        started_at: None,
        finished_at: None,
        result: None,
        attempt: 0,
        lease_until: None,
        attempts: Vec::new(),
        spec,
    };
    let audit = audit_entry(
        caller,
        "agent.task.create",
        "agent_task",
        &task.id.to_string(),
        "",
        serde_json::json!({ "agent_id": agent_id, "kind": task.spec.kind_name(), "spec": task.spec }),
    );
    state.store.create_task(&task, &audit).await?;
    TASK_CREATED.notify_waiters();
    Ok(task)
}

/// Lists an agent's latest tasks, newest first.
#[utoipa::path(get, path = "/api/v1/agents/{agent_id}/tasks", tag = "tasks", params(("agent_id" = Uuid, Path)),
    responses((status = 200, body = Vec<AgentTask>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<Uuid>,
) -> Result<ApiJson<Vec<AgentTask>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(ApiJson(
        state
            .store
            .tasks(agent_id, palisade_store::MAX_PAGE_SIZE)
            .await?,
    ))
}

/// Gets one task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentTask), (status = 404)), security(("bearer" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<ApiJson<AgentTask>, ApiError> {
    caller.require(Role::Viewer)?;
    state
        .store
        .task(id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found(format!("no task with id {id}")))
}

/// The calling agent's pending tasks, which become `running`. Waits up to `wait_secs`
/// seconds for one when none is pending.
#[utoipa::path(post, path = "/api/v1/agents/tasks/claim", tag = "tasks", request_body = ClaimTasks,
    responses((status = 200, body = Vec<AgentTask>), (status = 400, body = crate::error::ErrorBody), (status = 403)), security(("bearer" = [])))]
pub async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ClaimTasks>,
) -> Result<ApiJson<Vec<AgentTask>>, ApiError> {
    let agent = calling_agent(&state, &caller).await?;
    let wait = request.wait_secs;
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::bad_request(format!(
            "wait_secs {wait} is out of range: wait 0 to {MAX_WAIT_SECS} seconds and ask again"
        )));
    }
    let lease_secs = requested_lease(&state, request.lease_secs)?;
    let claim = TaskClaim {
        agent_id: agent.id,
        session: request.session,
        lease_millis: (lease_secs * 1000) as i64,
    };
    let until = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        // Register for the wake-up before looking, so that a task created in between is seen.
        let created = TASK_CREATED.notified();
        tokio::pin!(created);
        created.as_mut().enable();
        let tasks = state
            .store
            .claim_tasks(claim, Timestamp::now(), CLAIM_LIMIT)
            .await?;
        if !tasks.is_empty() || tokio::time::Instant::now() >= until {
            return Ok(ApiJson(tasks));
        }
        // Tasks created by another server process on the same database are seen within a
        // second.
        let _ = tokio::time::timeout_at(
            until.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            created,
        )
        .await;
    }
}

/// The lease of a claim or heartbeat: the agent's own within 1 to [`MAX_LEASE_SECS`]
/// seconds (agents from before the server's setting name one), else the server's.
fn requested_lease(state: &AppState, requested: Option<u64>) -> Result<u64, ApiError> {
    match requested {
        None => Ok(state.task_lease_length().secs()),
        Some(secs @ 1..=MAX_LEASE_SECS) => Ok(secs),
        Some(secs) => Err(ApiError::bad_request(format!(
            "lease_secs {secs} is out of range: give 1 to {MAX_LEASE_SECS} seconds, or none for the server's lease"
        ))),
    }
}

/// Which claim of a task a result or heartbeat comes from.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptParams {
    /// The task's `attempt` as the claim returned it. Required for heartbeats; a result
    /// without one (agents from before leases) finishes whichever attempt is current.
    pub attempt: Option<u32>,
    /// For heartbeats: how long the claim holds from now, in seconds (default: the server's
    /// lease, `palisade server --task-lease-secs`).
    pub lease_secs: Option<u64>,
}

/// A renewed claim.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskLease {
    /// Until when the claim now holds without another heartbeat.
    pub lease_until: Timestamp,
}

/// Keeps the calling agent's claim of a running task: the lease runs `lease_secs` from now.
/// 409 when the claim was lost (the lease lapsed before this heartbeat, the task was handed
/// out again, or it finished): the agent must stop working on it.
#[utoipa::path(post, path = "/api/v1/agents/tasks/{id}/heartbeat", tag = "tasks",
    params(("id" = Uuid, Path), AttemptParams),
    responses((status = 200, body = TaskLease), (status = 400, body = crate::error::ErrorBody), (status = 403), (status = 409)), security(("bearer" = [])))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiQuery(params): ApiQuery<AttemptParams>,
) -> Result<ApiJson<TaskLease>, ApiError> {
    let agent = calling_agent(&state, &caller).await?;
    let attempt = params
        .attempt
        .ok_or_else(|| ApiError::bad_request("a heartbeat names its attempt: ?attempt=N"))?;
    let lease_secs = requested_lease(&state, params.lease_secs)?;
    let now = Timestamp::now();
    let lease_millis = (lease_secs * 1000) as i64;
    let kept = state
        .store
        .extend_task_lease(agent.id, id, attempt, lease_millis, now)
        .await?;
    if kept {
        Ok(ApiJson(TaskLease {
            lease_until: Timestamp(now.millis().saturating_add(lease_millis)),
        }))
    } else {
        Err(ApiError::conflict(format!(
            "attempt {attempt} of task {id} no longer holds it (its lease lapsed, it was handed out again, or it finished): stop working on it"
        )))
    }
}

/// Records the calling agent's result of one of its tasks. A `verify_fix` result completes the
/// fix verification and, when the rescan found the vulnerability gone, marks it fixed. A result
/// from an attempt that is not the task's current one is refused (409).
#[utoipa::path(post, path = "/api/v1/agents/tasks/{id}/result", tag = "tasks", request_body = TaskResult,
    params(("id" = Uuid, Path), AttemptParams),
    responses((status = 200, body = AgentTask), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiQuery(params): ApiQuery<AttemptParams>,
    ApiJson(result): ApiJson<TaskResult>,
) -> Result<ApiJson<AgentTask>, ApiError> {
    let agent = calling_agent(&state, &caller).await?;
    if result.message.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the result message has {} bytes; at most {MAX_MESSAGE_BYTES} are stored",
            result.message.len()
        )));
    }
    let Some(task) = state
        .store
        .finish_task(agent.id, id, params.attempt, &result, Timestamp::now())
        .await?
    else {
        return Err(match state.store.task(id).await? {
            Some(task)
                if task.agent_id == agent.id
                    && params
                        .attempt
                        .is_some_and(|attempt| attempt != task.attempt) =>
            {
                ApiError::conflict(format!(
                    "attempt {} of task {id} is stale: the task is at attempt {} ({}); its result is refused",
                    params.attempt.unwrap_or_default(),
                    task.attempt,
                    task.state.as_str()
                ))
            }
            Some(task) if task.agent_id == agent.id && task.state == TaskState::Pending => {
                ApiError::conflict(format!(
                    "attempt {} of task {id} lost its claim (its lease lapsed without a heartbeat); the task will be handed out again and this result is refused",
                    task.attempt
                ))
            }
            Some(task) if task.agent_id == agent.id => ApiError::conflict(format!(
                "task {id} is {}; its result cannot change",
                task.state.as_str()
            )),
            _ => ApiError::not_found(format!("this agent has no task with id {id}")),
        });
    };
    if let (TaskSpec::VerifyFix(spec), Some(verdict)) = (&task.spec, &result.verdict) {
        apply_verdict(
            &state,
            &caller,
            &agent,
            spec,
            verdict.fixed,
            &verdict.reason,
        )
        .await?;
    }
    Ok(ApiJson(task))
}

async fn apply_verdict(
    state: &AppState,
    caller: &Caller,
    agent: &AgentRecord,
    spec: &VerifyFixSpec,
    fixed: bool,
    reason: &str,
) -> Result<(), ApiError> {
    let verification_state = if fixed {
        VerificationState::Fixed
    } else {
        VerificationState::StillVulnerable
    };
    let now = Timestamp::now();
    state
        .store
        .complete_fix_verification(spec.verification_id, verification_state, now)
        .await?;
    if fixed {
        let audit = audit_entry(
            caller,
            "vulnerability.fix_verified",
            "vulnerability",
            &spec.finding_id.to_string(),
            reason,
            serde_json::json!({ "verification_id": spec.verification_id, "agent": agent.name }),
        );
        state
            .store
            .set_status(
                FindingKind::Vulnerability,
                &Selection::Ids(vec![spec.finding_id]),
                &[
                    Status::Open,
                    Status::Fixing,
                    Status::Handled,
                    Status::Ignored,
                ],
                Status::Fixed,
                &audit,
            )
            .await?;
    }
    Ok(())
}

/// "These are all the findings of this kind on this asset": resolves (status `fixed`) the
/// asset's open findings of the kind that the snapshot does not list.
#[utoipa::path(post, path = "/api/v1/agents/scan-snapshots", tag = "tasks", request_body = ScanSnapshot,
    responses((status = 200, body = SnapshotOutcome), (status = 400, body = crate::error::ErrorBody), (status = 403)), security(("bearer" = [])))]
pub async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(snapshot): ApiJson<ScanSnapshot>,
) -> Result<ApiJson<SnapshotOutcome>, ApiError> {
    let agent = calling_agent(&state, &caller).await?;
    if snapshot.asset.cluster != agent.cluster {
        return Err(ApiError::bad_request(format!(
            "the snapshot is for cluster {:?}, but this agent reports for {:?}",
            snapshot.asset.cluster, agent.cluster
        )));
    }
    if !matches!(
        snapshot.kind,
        FindingKind::Vulnerability | FindingKind::BaselineRisk
    ) {
        return Err(ApiError::bad_request(
            "snapshots describe states: only vulnerability and baseline_risk are accepted",
        ));
    }
    if snapshot.present.len() > MAX_SNAPSHOT_KEYS {
        return Err(ApiError::bad_request(format!(
            "a snapshot lists at most {MAX_SNAPSHOT_KEYS} finding keys, not {}",
            snapshot.present.len()
        )));
    }
    let asset_id = snapshot.asset.asset_id();
    let audit = audit_entry(
        &caller,
        "finding.resolve_absent",
        "asset",
        &asset_id.to_string(),
        "a complete rescan no longer finds it",
        serde_json::json!({ "agent": agent.name, "kind": snapshot.kind, "scanned_at": snapshot.scanned_at, "asset": snapshot.asset.label() }),
    );
    let present: HashSet<String> = snapshot.present.into_iter().collect();
    let resolved = state
        .store
        .resolve_absent_findings(asset_id, snapshot.kind, &present, &audit)
        .await?;
    Ok(ApiJson(SnapshotOutcome { resolved }))
}

/// Names a vulnerability finding.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingRef {
    /// The vulnerability finding's id.
    pub finding_id: Uuid,
}

/// A fix verification and the task that carries it out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationStarted {
    /// The verification record (pending until the agent reports).
    pub verification: FixVerification,
    /// The agent's task; none for the demo data set, which no agent reports.
    pub task: Option<AgentTask>,
}

/// Asks the agent that owns the finding's asset to rescan it; the finding is closed only if
/// the rescan no longer finds the vulnerability.
#[utoipa::path(post, path = "/api/v1/fix-verifications", tag = "tasks", request_body = FindingRef,
    responses((status = 201, body = VerificationStarted), (status = 400, body = crate::error::ErrorBody), (status = 404)), security(("bearer" = [])))]
pub async fn verify_fix(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<FindingRef>,
) -> Result<(StatusCode, ApiJson<VerificationStarted>), ApiError> {
    caller.require(Role::Operator)?;
    let finding = super::findings::load(
        &state,
        FindingKind::Vulnerability,
        &request.finding_id.to_string(),
    )
    .await?;
    let started = request_fix_verification(&state, &caller, &finding).await?;
    Ok((StatusCode::CREATED, ApiJson(started)))
}

/// Records a fix verification of `finding` and queues the rescan for the agent that owns its
/// asset (shared by the API and the console).
pub(crate) async fn request_fix_verification(
    state: &AppState,
    caller: &Caller,
    finding: &Finding,
) -> Result<VerificationStarted, ApiError> {
    caller.require(Role::Operator)?;
    let Details::Vulnerability(vulnerability) = &finding.details else {
        return Err(ApiError::bad_request(
            "only vulnerabilities have fixes to verify",
        ));
    };
    // The demo data set has no agents: its verifications stay pending, as a demo.
    let agent = if finding.demo {
        None
    } else {
        Some(owning_agent(state, &finding.asset).await?)
    };
    let verification = FixVerification {
        id: Uuid::now_v7(),
        finding_id: finding.id,
        asset_id: finding.asset_id,
        requested_by: caller.name.clone(),
        requested_at: Timestamp::now(),
        state: VerificationState::Pending,
        completed_at: None,
        reason: None,
    };
    let audit = audit_entry(
        caller,
        "vulnerability.verify_fix",
        "vulnerability",
        &finding.id.to_string(),
        "",
        serde_json::json!({ "verification_id": verification.id, "asset_id": finding.asset_id, "agent": agent.as_ref().map(|agent| &agent.name) }),
    );
    state
        .store
        .request_fix_verification(&verification, &audit)
        .await?;
    let Some(agent) = agent else {
        return Ok(VerificationStarted {
            verification,
            task: None,
        });
    };
    let spec = TaskSpec::VerifyFix(Box::new(VerifyFixSpec {
        verification_id: verification.id,
        finding_id: finding.id,
        asset: finding.asset.clone(),
        vulnerability: finding.rule.clone(),
        package: vulnerability.package.clone(),
        ecosystem: vulnerability.ecosystem.clone(),
        installed_version: vulnerability.installed_version.clone(),
    }));
    let task = enqueue(state, caller, agent.id, spec, DEFAULT_TIMEOUT_SECS).await?;
    Ok(VerificationStarted {
        verification,
        task: Some(task),
    })
}

/// The fix verifications of a vulnerability finding, newest first: pending, fixed, still
/// vulnerable, or failed with the reason (the rescan task's error, or that it timed out).
#[utoipa::path(get, path = "/api/v1/vulnerabilities/{id}/fix-verifications", tag = "tasks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<FixVerification>), (status = 404)), security(("bearer" = [])))]
pub async fn verifications(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<FixVerification>>, ApiError> {
    caller.require(Role::Viewer)?;
    let finding = super::findings::load(&state, FindingKind::Vulnerability, &id).await?;
    Ok(ApiJson(state.store.fix_verifications(finding.id).await?))
}

/// Asks the agent on the finding's node to upgrade the package to the first fixed version
/// (admin only; the agent refuses unless `fix.enabled` is set in its configuration).
#[utoipa::path(post, path = "/api/v1/fixes", tag = "tasks", request_body = FindingRef,
    responses((status = 201, body = AgentTask), (status = 400, body = crate::error::ErrorBody), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn fix(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<FindingRef>,
) -> Result<(StatusCode, ApiJson<AgentTask>), ApiError> {
    caller.require(Role::Admin)?;
    let finding = super::findings::load(
        &state,
        FindingKind::Vulnerability,
        &request.finding_id.to_string(),
    )
    .await?;
    let Details::Vulnerability(vulnerability) = &finding.details else {
        return Err(ApiError::bad_request("only vulnerabilities have fixes"));
    };
    if finding.asset.image.is_some() || finding.asset.image_digest.is_some() {
        return Err(ApiError::bad_request(format!(
            "{} is in image {}: rebuild the image with the fixed package instead of upgrading a host",
            finding.rule,
            finding.asset.label()
        )));
    }
    let version = vulnerability.fixed_versions.first().ok_or_else(|| {
        ApiError::bad_request(format!(
            "no fixed version of {} is known for {}",
            vulnerability.package, finding.rule
        ))
    })?;
    let upgrade = UpgradeSpec {
        finding_id: Some(finding.id),
        ecosystem: vulnerability.ecosystem.clone(),
        package: vulnerability.package.clone(),
        version: version.clone(),
    };
    upgrade
        .validate()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let agent = owning_agent(&state, &finding.asset).await?;
    let task = enqueue(
        &state,
        &caller,
        agent.id,
        TaskSpec::UpgradePackage(upgrade),
        DEFAULT_TIMEOUT_SECS,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(task)))
}

/// The enrolled agent behind an agent token.
pub(crate) async fn calling_agent(
    state: &AppState,
    caller: &Caller,
) -> Result<AgentRecord, ApiError> {
    caller.require(Role::Agent)?;
    let agent_id = caller
        .agent_id
        .ok_or_else(|| ApiError::forbidden("this agent token has no agent"))?;
    state
        .store
        .agent(agent_id)
        .await?
        .ok_or_else(|| ApiError::forbidden("this agent is not enrolled any more"))
}

/// The agent that reports the asset's node: same cluster, and the node is its name or host
/// name.
pub(crate) async fn owning_agent(
    state: &AppState,
    asset: &AffectedAsset,
) -> Result<AgentRecord, ApiError> {
    let node = asset.node.as_deref().ok_or_else(|| {
        ApiError::bad_request(format!(
            "{} names no node, so no agent can rescan it",
            asset.label()
        ))
    })?;
    state
        .store
        .agents()
        .await?
        .into_iter()
        .find(|agent| {
            agent.cluster == asset.cluster && (agent.name == node || agent.facts.hostname == node)
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no enrolled agent reports node {node:?} in cluster {:?}; start one there to rescan it",
                asset.cluster
            ))
        })
}
