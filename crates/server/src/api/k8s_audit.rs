//! The Kubernetes audit webhook: the API server's webhook audit backend POSTs
//! `audit.k8s.io/v1` `EventList`s here; the `k8s_audit` rules (Palisade's defaults, or the
//! server's rule files: [`AppState::set_audit_rules`]) run over every event, and each alert is
//! stored as a runtime alert through the agents' ingest path.
//!
//! Authentication: an **agent** token. The API server reports alerts for one cluster, as an
//! agent does for its node, and an agent token is bound to the cluster it joined with, so the
//! alerts land in that cluster and the token can do nothing but report. Enrol it like an
//! agent (a `join` token, then `POST /api/v1/agents/join` with the name `kube-apiserver` and
//! the cluster's name) and put the agent token in the webhook kubeconfig's `users[].user.token`.
//!
//! The compiled rules are kept in the server's state, the defaults built on first use: loading
//! the rule files costs milliseconds, a webhook batch arrives every second or so.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::{Router, extract::DefaultBodyLimit, extract::State, routing::post};
use palisade_event::{Event, Payload};
use palisade_model::{
    AffectedAsset, AlertCategory, AlertDetails, Details, FindingReport, ProcessInfo, Role,
    Timestamp,
};
use palisade_rules::{Alert, Engine, EngineConfig, RuleSet, default_rule_sources};

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{ApiError, ApiJson, AppState, Caller};

/// The route's path.
pub const PATH: &str = "/api/v1/k8s-audit";

/// The route, with its own body limit (audit batches at `RequestResponse` level are large).
pub fn router() -> Router<AppState> {
    Router::new().route(
        PATH,
        post(receive).layer(DefaultBodyLimit::max(
            palisade_k8saudit::Limits::default().max_body_bytes,
        )),
    )
}

/// What the webhook did with a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditAck {
    /// Audit events received.
    pub events: usize,
    /// Alerts the rules raised.
    pub alerts: usize,
    /// Alerts that created a new finding.
    pub created: u64,
    /// Alerts aggregated into an open finding.
    pub aggregated: u64,
    /// Alerts suppressed by a whitelist rule.
    pub suppressed: u64,
}

/// Runs a batch of Kubernetes API server audit events (an `audit.k8s.io/v1` `EventList` as
/// the webhook backend sends it, or one `Event`) through the server's `k8s_audit` rules and
/// stores the alerts for the token's cluster. Needs an agent token.
#[utoipa::path(post, path = "/api/v1/k8s-audit", tag = "agents",
    request_body(content = serde_json::Value, description = "An audit.k8s.io/v1 EventList (or one Event)"),
    responses((status = 200, body = AuditAck), (status = 400, body = crate::error::ErrorBody),
        (status = 401), (status = 403), (status = 413)),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<AuditAck>, ApiError> {
    caller.require(Role::Agent)?;
    let agent_id = caller.agent_id.ok_or_else(|| {
        ApiError::forbidden("this agent token has no agent; enrol the API server with a join token")
    })?;
    let agent = state.store.agent(agent_id).await?.ok_or_else(|| {
        ApiError::forbidden("this agent is not enrolled any more; enrol the API server again")
    })?;
    let events = palisade_k8saudit::webhook_events(body, &palisade_k8saudit::Limits::default())
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let reports = evaluate(state.audit_rules()?, &events, &agent.cluster);
    let outcome = super::agents::ingest(&state, &reports).await?;
    Ok(ApiJson(AuditAck {
        events: events.len(),
        alerts: reports.len(),
        created: outcome.created,
        aggregated: outcome.aggregated,
        suppressed: outcome.suppressed,
    }))
}

/// Compiled `k8s_audit` rules and each rule's description for the reports.
pub struct AuditRules {
    engine: Mutex<Engine>,
    descriptions: HashMap<String, String>,
}

impl AuditRules {
    /// Compiles a loaded rule set (rules of other sources in it never see an audit event).
    pub fn new(rule_set: RuleSet) -> AuditRules {
        let descriptions = rule_set
            .rules()
            .iter()
            .map(|rule| (rule.name.clone(), rule.desc.clone()))
            .collect();
        AuditRules {
            engine: Mutex::new(Engine::new(rule_set, &EngineConfig::default())),
            descriptions,
        }
    }

    /// Palisade's default rules, or the first error in them.
    pub(crate) fn defaults() -> Result<AuditRules, String> {
        let rule_set = RuleSet::load(&default_rule_sources());
        match rule_set.errors().first() {
            Some(error) => Err(format!(
                "the built-in rules do not load: {}: {}: {}",
                error.location(),
                error.item(),
                error.message()
            )),
            None => Ok(AuditRules::new(rule_set)),
        }
    }
}

impl std::fmt::Debug for AuditRules {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AuditRules")
            .field("rules", &self.descriptions.len())
            .finish_non_exhaustive()
    }
}

/// The alert reports of `events` for `cluster`.
fn evaluate(rules: &AuditRules, events: &[Event], cluster: &str) -> Vec<FindingReport> {
    let mut engine = rules
        .engine
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut alerts: Vec<Alert> = Vec::new();
    let mut reports = Vec::new();
    for event in events {
        let Payload::K8sAudit { audit } = &event.payload else {
            continue;
        };
        engine.process(event, &mut alerts);
        for alert in alerts.drain(..) {
            let description = rules
                .descriptions
                .get(&alert.rule)
                .map_or("", String::as_str);
            reports.push(report(&alert, description, audit, cluster));
        }
    }
    reports
}

/// The runtime alert report of `alert`, raised by the audit event `audit`: the object the
/// request was about is the affected asset, the API user is the actor, and the audit event is
/// the raw event.
fn report(alert: &Alert, description: &str, audit: &Value, cluster: &str) -> FindingReport {
    let object = &audit["objectRef"];
    let text = |value: &Value| {
        value
            .as_str()
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let nanos = i64::try_from(alert.timestamp_ns).unwrap_or(i64::MAX);
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: Timestamp(nanos / 1_000_000),
        severity: alert.priority.into(),
        rule: alert.rule.clone(),
        title: alert.rule.clone(),
        asset: AffectedAsset {
            cluster: cluster.to_owned(),
            namespace: text(&object["namespace"]),
            pod: (object["resource"] == "pods")
                .then(|| text(&object["name"]))
                .flatten(),
            ..AffectedAsset::default()
        },
        details: Details::Alert(AlertDetails {
            category: alert.category.map(AlertCategory::from),
            mitre: alert.mitre_techniques.first().cloned(),
            description: description.to_owned(),
            output: alert.output.clone(),
            process: ProcessInfo {
                user: text(&audit["user"]["username"]).unwrap_or_default(),
                ..ProcessInfo::default()
            },
            ancestry: Vec::new(),
            suggested_response: alert.suggested_response.clone().unwrap_or_default(),
            raw_event: serde_json::json!({
                "audit": audit,
                "fields": alert.fields_json(),
            }),
        }),
        demo: false,
    }
}
