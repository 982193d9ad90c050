//! Persistence for Palisade behind one interface, [`Store`], with a SQLite implementation
//! ([`SqliteStore`]); a PostgreSQL implementation of the same trait follows.
//!
//! What it stores: findings of the four kinds (one table, see `migrations/`), report ids
//! already ingested (idempotency), notes, assets, whitelist rules, exceptions, the audit
//! log, API tokens (argon2 hashes only) and enrolled agents.
//!
//! Two decisions shape it:
//! - **Aggregation happens at ingest.** [`Store::ingest`] looks up an open finding with the
//!   report's [`FindingReport::dedupe_key`] (within the kind's aggregation window) and
//!   increments `count` and `last_seen` instead of inserting a row; see
//!   [`palisade_model::FindingKind::aggregation_window_ms`].
//! - **Every state change carries its audit entry**, written in the same transaction, so the
//!   audit trail cannot miss an action that happened.
//!
//! The SQL is kept portable (`$N` parameters, `ON CONFLICT`, no SQLite-only functions), so
//! the PostgreSQL implementation can share it.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use palisade_store::{FindingQuery, SqliteStore, Store};
//! use palisade_model::FindingKind;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(&dir.path().join("palisade.db")).await.unwrap();
//! let page = store.list_findings(FindingKind::Alert, &FindingQuery::default()).await.unwrap();
//! assert!(page.items.is_empty());
//! # });
//! ```
#![deny(missing_docs)]

mod error;
mod query;
mod records;
mod sqlite;

use async_trait::async_trait;
use palisade_model::{
    AgentTask, Asset, AuditEntry, Exception, Finding, FindingKind, FindingReport, FirewallRule,
    FixVerification, Note, QuarantineEntry, QuarantinedFile, Status, TaskResult, Timestamp,
    VerificationState, WhitelistMatcher, WhitelistRule,
};
use uuid::Uuid;

pub use error::StoreError;
pub use query::{
    AssetQuery, AuditQuery, Cursor, FindingQuery, GroupSortKey, MAX_PAGE_SIZE, Page, SearchWindow,
    SeverityCounts, SortKey, SortOrder,
};
pub use records::{
    AgentRecord, ClusterSummary, FindingGroup, HandlingPolicy, IngestOutcome, LossIncrease,
    NodeLosses, Selection, TimeBuckets, TokenRecord,
};
pub use sqlite::SqliteStore;

/// Who claims tasks, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskClaim {
    /// The agent.
    pub agent_id: Uuid,
    /// The agent process (a random id per process); `None` for agents from before leases.
    pub session: Option<Uuid>,
    /// How long the claim holds without a heartbeat, in milliseconds.
    pub lease_millis: i64,
}

/// Result type of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The persistence interface used by the server.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a batch of reports atomically: skips report ids seen before, suppresses reports
    /// matching `policy`'s whitelist, aggregates repeats, and inserts the rest.
    async fn ingest(
        &self,
        reports: &[FindingReport],
        policy: &HandlingPolicy,
    ) -> Result<IngestOutcome>;

    /// One page of findings of `kind` matching `query`.
    async fn list_findings(&self, kind: FindingKind, query: &FindingQuery)
    -> Result<Page<Finding>>;

    /// Counts findings of `kind` matching `query` by severity; a text search's counts may be
    /// lower bounds (see [`SeverityCounts::counted_since`]).
    async fn count_by_severity(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<SeverityCounts>;

    /// One finding.
    async fn get_finding(&self, kind: FindingKind, id: Uuid) -> Result<Option<Finding>>;

    /// Moves the selected findings of `kind` whose status is in `from` to `to`; returns how many.
    async fn set_status(
        &self,
        kind: FindingKind,
        selection: &Selection,
        from: &[Status],
        to: Status,
        audit: &AuditEntry,
    ) -> Result<u64>;

    /// Notes on a finding, oldest first.
    async fn notes(&self, finding_id: Uuid) -> Result<Vec<Note>>;

    /// Adds a note.
    async fn add_note(&self, note: &Note, audit: &AuditEntry) -> Result<()>;

    /// How many open findings the whitelist rule would close.
    async fn count_whitelist_matches(&self, matcher: &WhitelistMatcher) -> Result<u64>;

    /// Stores a whitelist rule and closes the open findings it matches; returns how many.
    async fn create_whitelist_rule(
        &self,
        rule: &WhitelistRule,
        matcher: &WhitelistMatcher,
        audit: &AuditEntry,
    ) -> Result<u64>;

    /// All whitelist rules.
    async fn whitelist_rules(&self) -> Result<Vec<WhitelistRule>>;

    /// Deletes a whitelist rule; false when there was none.
    async fn delete_whitelist_rule(&self, id: Uuid, audit: &AuditEntry) -> Result<bool>;

    /// Stores an exception and marks the open baseline risks it covers; returns how many.
    async fn create_exception(&self, exception: &Exception, audit: &AuditEntry) -> Result<u64>;

    /// All exceptions.
    async fn exceptions(&self) -> Result<Vec<Exception>>;

    /// Deletes an exception and reopens what only it covered; false when there was none.
    async fn delete_exception(&self, id: Uuid, audit: &AuditEntry) -> Result<bool>;

    /// Reopens excepted baseline risks whose exceptions have all expired; returns how many.
    async fn reopen_expired_exceptions(&self, now: palisade_model::Timestamp) -> Result<u64>;

    /// Inserts or refreshes an asset (first_seen is kept).
    async fn upsert_asset(&self, asset: &Asset) -> Result<()>;

    /// One page of assets.
    async fn list_assets(&self, query: &AssetQuery) -> Result<Page<Asset>>;

    /// One asset.
    async fn get_asset(&self, id: Uuid) -> Result<Option<Asset>>;

    /// Every cluster with its open findings per kind.
    async fn clusters(&self) -> Result<Vec<ClusterSummary>>;

    /// Appends an audit entry on its own (for actions that change nothing else in the store).
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// One page of the audit log, newest first.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Page<AuditEntry>>;

    /// Stores a token; with an audit entry when a person created it.
    async fn insert_token(&self, token: &TokenRecord, audit: Option<&AuditEntry>) -> Result<()>;

    /// One token by id.
    async fn token(&self, id: &str) -> Result<Option<TokenRecord>>;

    /// All tokens.
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Revokes a token; false when there was none.
    async fn revoke_token(&self, id: &str, audit: &AuditEntry) -> Result<bool>;

    /// Inserts or refreshes an enrolled agent.
    async fn upsert_agent(&self, agent: &AgentRecord) -> Result<()>;

    /// One enrolled agent.
    async fn agent(&self, id: Uuid) -> Result<Option<AgentRecord>>;

    /// All enrolled agents.
    async fn agents(&self) -> Result<Vec<AgentRecord>>;

    /// Counts an agent's report of what it lost into its [`AgentRecord::losses`]
    /// ([`NodeLosses::count`], read and written in one transaction, so batches stored at
    /// once count each loss once) and returns what the report added; nothing for an agent
    /// that is not enrolled.
    async fn count_agent_losses(
        &self,
        agent_id: Uuid,
        report: &palisade_model::AgentLosses,
        now: Timestamp,
    ) -> Result<LossIncrease>;

    /// One page of the findings of `kind` matching `query` grouped by rule (vulnerability id,
    /// check id), most severe first, then by rule. `query.sort` and `query.order` are ignored.
    /// Without a text search every finding the query selects is grouped; a common term's
    /// groups are formed from its newest [`SearchWindow::COUNTED_MATCHES`] matches.
    async fn finding_groups(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Page<FindingGroup>>;

    /// How many findings of `kind` matching `query` were first seen in each interval; a text
    /// search counts at most its newest [`SearchWindow::COUNTED_MATCHES`] matches.
    async fn count_over_time(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
        buckets: TimeBuckets,
    ) -> Result<Vec<u64>>;

    /// Records a request to verify a vulnerability fix, with its audit entry.
    async fn request_fix_verification(
        &self,
        request: &FixVerification,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// The fix verifications requested for a finding, newest first.
    async fn fix_verifications(&self, finding_id: uuid::Uuid) -> Result<Vec<FixVerification>>;

    /// All firewall rules, by priority then name.
    async fn firewall_rules(&self) -> Result<Vec<FirewallRule>>;

    /// One firewall rule.
    async fn firewall_rule(&self, id: uuid::Uuid) -> Result<Option<FirewallRule>>;

    /// Creates or replaces a firewall rule (by id), with its audit entry. Fails with
    /// [`StoreError::Conflict`] when another rule has the same name.
    async fn put_firewall_rule(&self, rule: &FirewallRule, audit: &AuditEntry) -> Result<()>;

    /// Deletes a firewall rule; false when there was none.
    async fn delete_firewall_rule(&self, id: uuid::Uuid, audit: &AuditEntry) -> Result<bool>;

    /// Stores a new agent task, with its audit entry.
    async fn create_task(&self, task: &AgentTask, audit: &AuditEntry) -> Result<()>;

    /// Marks up to `limit` of the agent's pending tasks running under a new attempt leased to
    /// the claiming process, and returns them, oldest first. Unfinished tasks past their
    /// deadline fail as timed out first; claims the agent lost (lease expired, or held by
    /// another of its processes) are handed out again or, after
    /// [`palisade_model::MAX_TASK_ATTEMPTS`], fail.
    async fn claim_tasks(
        &self,
        claim: TaskClaim,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<AgentTask>>;

    /// Extends the lease of the agent's running task by `lease_millis` from `now`; false when
    /// `attempt` is not the task's current, running attempt (the claim was lost).
    async fn extend_task_lease(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        attempt: u32,
        lease_millis: i64,
        now: Timestamp,
    ) -> Result<bool>;

    /// Records the agent's result of one of its unfinished tasks and returns the finished
    /// task; `None` when the task is not this agent's, is already finished (or timed out), or
    /// `attempt` is given and is not the task's current, running attempt.
    async fn finish_task(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        attempt: Option<u32>,
        result: &TaskResult,
        now: Timestamp,
    ) -> Result<Option<AgentTask>>;

    /// One task.
    async fn task(&self, id: Uuid) -> Result<Option<AgentTask>>;

    /// The agent's latest `limit` tasks, newest first.
    async fn tasks(&self, agent_id: Uuid, limit: u32) -> Result<Vec<AgentTask>>;

    /// Replaces what is kept of the agent's quarantine with `entries` (its whole quarantine,
    /// reported at `at`).
    async fn replace_quarantine(
        &self,
        agent_id: Uuid,
        entries: &[QuarantineEntry],
        at: Timestamp,
    ) -> Result<()>;

    /// The latest `limit` quarantined files of every agent, newest first.
    async fn quarantine(&self, limit: u32) -> Result<Vec<QuarantinedFile>>;

    /// One quarantined file.
    async fn quarantined_file(&self, id: Uuid) -> Result<Option<QuarantinedFile>>;

    /// Records the outcome of a pending fix verification; false when it was not pending.
    async fn complete_fix_verification(
        &self,
        id: Uuid,
        state: VerificationState,
        at: Timestamp,
    ) -> Result<bool>;

    /// Marks `Fixed` the open (or fixing) findings of `kind` on the asset whose dedupe key is
    /// not in `present`: a complete rescan no longer finds them. Writes `audit` (with the
    /// count and ids) when something changed; returns how many.
    async fn resolve_absent_findings(
        &self,
        asset_id: Uuid,
        kind: FindingKind,
        present: &std::collections::HashSet<String>,
        audit: &AuditEntry,
    ) -> Result<u64>;
}
