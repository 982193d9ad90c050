//! What the store's unit tests share: a store in a temporary directory, a deterministic
//! generator, an audit entry and a whitelist rule made as an operator would make them, and
//! the query plan of a statement.

use palisade_model::{
    AuditEntry, FindingKind, MatchOperator, NewWhitelistRule, Role, Timestamp, WhitelistRule,
    WhitelistScope,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::{SqliteStore, Store};

/// A store in a temporary directory, removed when the directory handle drops.
pub(crate) async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("palisade.db"))
        .await
        .unwrap();
    (dir, store)
}

/// The steps of the plan of `explain`, a statement that starts with `EXPLAIN QUERY PLAN`.
pub(crate) async fn query_plan(
    connection: &mut SqliteConnection,
    mut explain: QueryBuilder<Sqlite>,
) -> Vec<String> {
    explain
        .build()
        .fetch_all(connection)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("detail"))
        .collect()
}

/// A small deterministic generator (xorshift), so that failures reproduce.
pub(crate) struct Random(pub u64);

impl Random {
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// An operator's audit entry for `action` on a finding.
pub(crate) fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        id: Uuid::now_v7(),
        at: Timestamp::now(),
        actor: "alice".into(),
        role: Role::Operator,
        action: action.into(),
        target_kind: "finding".into(),
        target_id: String::new(),
        reason: "test".into(),
        details: serde_json::json!({}),
    }
}

/// Creates an alert whitelist rule for every asset; returns how many open alerts it closed.
pub(crate) async fn whitelist_alerts(
    store: &SqliteStore,
    field: &str,
    operator: MatchOperator,
    value: &str,
    reason: &str,
) -> u64 {
    whitelist(store, FindingKind::Alert, (field, operator, value), reason).await
}

/// Creates a whitelist rule of `kind` for every asset on `field`, `operator` and `value`;
/// returns how many open findings it closed.
pub(crate) async fn whitelist(
    store: &SqliteStore,
    kind: FindingKind,
    (field, operator, value): (&str, MatchOperator, &str),
    reason: &str,
) -> u64 {
    let new_rule = NewWhitelistRule {
        kind,
        field: field.into(),
        operator,
        value: value.into(),
        scope: WhitelistScope::AllAssets,
        reason: reason.into(),
    };
    let matcher = new_rule.compile().unwrap();
    let rule = WhitelistRule {
        id: Uuid::now_v7(),
        rule: new_rule,
        created_by: "alice".into(),
        created_at: Timestamp::now(),
        hits: 0,
    };
    store
        .create_whitelist_rule(&rule, &matcher, &audit("whitelist.create"))
        .await
        .unwrap()
}
