//! Shared server state.

use std::sync::{Arc, OnceLock, RwLock};

use palisade_model::{AuditEntry, Role, Timestamp};
use palisade_notify::Notifier;
use palisade_store::{HandlingPolicy, Store};
use uuid::Uuid;

use crate::{
    AgentBatchBudget, ApiError, AuditRules, Caller, Metrics, TaskLeaseLength, auth::TokenCache,
    batch_budget::BatchBytes,
};

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The fields of [`AppState`], reached through `Deref`.
pub struct Inner {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Verified-token cache.
    pub tokens: TokenCache,
    /// Counters.
    pub metrics: Metrics,
    /// Notification delivery.
    pub notifier: Notifier,
    /// The whitelist rules and exceptions applied at ingest, compiled; replaced whenever they
    /// change (readers keep the `Arc` they took, so ingest never waits on a reload).
    policy: RwLock<Arc<HandlingPolicy>>,
    /// The Kubernetes audit webhook's rules: set once at start, or the defaults on first use.
    audit_rules: OnceLock<Result<AuditRules, String>>,
    /// How long an agent's claim of a task holds: set once at start, or the default.
    task_lease_length: OnceLock<TaskLeaseLength>,
    /// The bytes of agent batches held at once: set once at start, or the default.
    agent_batch_bytes: OnceLock<BatchBytes>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Builds the state and loads the handling policy from the store.
    pub async fn new(store: Arc<dyn Store>, notifier: Notifier) -> Result<AppState, ApiError> {
        let state = AppState {
            inner: Arc::new(Inner {
                store,
                tokens: TokenCache::default(),
                metrics: Metrics::default(),
                notifier,
                policy: RwLock::new(Arc::default()),
                audit_rules: OnceLock::new(),
                task_lease_length: OnceLock::new(),
                agent_batch_bytes: OnceLock::new(),
            }),
        };
        state.reload_policy().await?;
        Ok(state)
    }

    /// Makes the Kubernetes audit webhook evaluate `rules` instead of Palisade's defaults;
    /// false (and nothing changes) once rules are in use, so call it before serving.
    #[must_use]
    pub fn set_audit_rules(&self, rules: AuditRules) -> bool {
        self.audit_rules.set(Ok(rules)).is_ok()
    }

    /// Makes claims of tasks hold `length` without a heartbeat instead of the default 60 s;
    /// false (and nothing changes) once a claim used the length, so call it before serving.
    #[must_use]
    pub fn set_task_lease_length(&self, length: TaskLeaseLength) -> bool {
        self.task_lease_length.set(length).is_ok()
    }

    /// How long a claim of a task holds without a heartbeat.
    pub(crate) fn task_lease_length(&self) -> TaskLeaseLength {
        *self.task_lease_length.get_or_init(TaskLeaseLength::default)
    }

    /// Makes the server hold at most `budget` bytes of agent batches at once instead of the
    /// default 128 MiB; false (and nothing changes) once a batch came, so call it before serving.
    #[must_use]
    pub fn set_agent_batch_budget(&self, budget: AgentBatchBudget) -> bool {
        self.agent_batch_bytes.set(BatchBytes::new(budget)).is_ok()
    }

    /// The budget of agent batches' bytes.
    pub(crate) fn agent_batch_bytes(&self) -> &BatchBytes {
        self.agent_batch_bytes
            .get_or_init(|| BatchBytes::new(AgentBatchBudget::default()))
    }

    /// The Kubernetes audit webhook's rules.
    pub(crate) fn audit_rules(&self) -> Result<&AuditRules, ApiError> {
        self.audit_rules
            .get_or_init(AuditRules::defaults)
            .as_ref()
            .map_err(|message| ApiError::internal(&std::io::Error::other(message.clone())))
    }

    /// The current handling policy.
    pub fn policy(&self) -> Arc<HandlingPolicy> {
        Arc::clone(
            &self
                .policy
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Recompiles the handling policy from the store.
    pub async fn reload_policy(&self) -> Result<(), ApiError> {
        let mut whitelist = Vec::new();
        for rule in self.store.whitelist_rules().await? {
            match rule.rule.compile() {
                Ok(matcher) => whitelist.push((rule.id, matcher)),
                // Rules are validated when created, so this only happens if the set of known
                // fields shrank between versions: skip the rule rather than refuse to start.
                Err(error) => {
                    tracing::warn!(rule = %rule.id, %error, "Whitelist rule no longer valid; skipped.")
                }
            }
        }
        let exceptions = self.store.exceptions().await?;
        *self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(HandlingPolicy {
            whitelist,
            exceptions,
        });
        Ok(())
    }
}

/// Builds an audit entry for `caller` doing `action` on a target.
pub fn audit_entry(
    caller: &Caller,
    action: &str,
    target_kind: &str,
    target_id: &str,
    reason: &str,
    details: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        id: Uuid::now_v7(),
        at: Timestamp::now(),
        actor: caller.name.clone(),
        role: caller.role,
        action: action.to_owned(),
        target_kind: target_kind.to_owned(),
        target_id: target_id.to_owned(),
        reason: reason.to_owned(),
        details,
    }
}

/// The identity used for actions the server takes on its own (bootstrap, expiry sweeps).
pub fn system_caller() -> Caller {
    Caller {
        token_id: String::new(),
        name: "palisade".into(),
        role: Role::Admin,
        agent_id: None,
    }
}
