//! Queries the console needs beside listing: groups by rule, counts over time, fix
//! verifications and firewall rules.

use palisade_model::{
    AuditEntry, FindingKind, FirewallRule, FixVerification, NewFirewallRule, Severity, Timestamp,
    VerificationState,
};
use sqlx::{QueryBuilder, Row, Sqlite, sqlite::SqliteRow};
use uuid::Uuid;

use super::{
    SqliteStore, corrupt, from_json, insert_audit, into_page, parse_uuid, push_finding_filters,
    to_json,
};
use crate::{
    Cursor, FindingGroup, FindingQuery, Page, Result, StoreError, TimeBuckets, query::page_size,
};

/// Marks a vulnerability body whose `fixed_versions` list is not empty. The body is
/// serialised by serde_json without whitespace and always carries the field, so a text match
/// is exact and stays portable SQL (no JSON functions, which differ between databases).
const FIX_KNOWN_PATTERN: &str = "%\"fixed_versions\":[\"%";

impl SqliteStore {
    pub(super) async fn groups(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Page<FindingGroup>> {
        let limit = page_size(query.limit);
        let mut builder = QueryBuilder::<Sqlite>::new(
            "SELECT rule, MAX(title) AS title, MAX(severity) AS severity, MAX(category) AS category, \
             COUNT(*) AS findings, SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS open, \
             COUNT(DISTINCT asset_id) AS assets, MAX(last_seen) AS last_seen, \
             MAX(CASE WHEN body LIKE ",
        );
        builder
            .push_bind(FIX_KNOWN_PATTERN)
            .push(" THEN 1 ELSE 0 END) AS fix_available FROM findings");
        let mut unpaged = query.clone();
        unpaged.cursor = None;
        push_finding_filters(&mut builder, kind, &unpaged);
        builder.push(" GROUP BY rule");
        // Most severe first, then by rule name: keyset on (severity DESC, rule ASC).
        if let Some(cursor) = &query.cursor {
            builder
                .push(" HAVING (MAX(severity) < ")
                .push_bind(cursor.value)
                .push(" OR (MAX(severity) = ")
                .push_bind(cursor.value)
                .push(" AND rule > ")
                .push_bind(&cursor.text)
                .push("))");
        }
        builder
            .push(" ORDER BY MAX(severity) DESC, rule ASC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = builder.build().fetch_all(&self.reader).await?;
        let groups = rows
            .iter()
            .map(group_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(into_page(groups, limit, |group| Cursor {
            value: group.severity.rank(),
            text: group.rule.clone(),
            id: String::new(),
        }))
    }

    pub(super) async fn over_time(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
        buckets: TimeBuckets,
    ) -> Result<Vec<u64>> {
        let width = buckets.width_ms.max(1);
        let count = buckets.buckets.clamp(1, 366);
        let start = buckets.start.millis();
        let end = start.saturating_add(width.saturating_mul(i64::from(count)));
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT (first_seen - ");
        builder
            .push_bind(start)
            .push(") / ")
            .push_bind(width)
            .push(" AS bucket, COUNT(*) AS n FROM findings");
        let mut unpaged = query.clone();
        unpaged.cursor = None;
        push_finding_filters(&mut builder, kind, &unpaged);
        builder
            .push(" AND first_seen >= ")
            .push_bind(start)
            .push(" AND first_seen < ")
            .push_bind(end)
            .push(" GROUP BY bucket");
        let mut counts = vec![0; count as usize];
        for row in builder.build().fetch_all(&self.reader).await? {
            let bucket: i64 = row.try_get("bucket")?;
            if let Some(slot) = usize::try_from(bucket)
                .ok()
                .and_then(|index| counts.get_mut(index))
            {
                *slot = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    pub(super) async fn insert_fix_verification(
        &self,
        request: &FixVerification,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO fix_verifications (id, finding_id, asset_id, requested_by, requested_at, state, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(request.id.to_string())
        .bind(request.finding_id.to_string())
        .bind(request.asset_id.to_string())
        .bind(&request.requested_by)
        .bind(request.requested_at.millis())
        .bind(request.state.as_str())
        .bind(request.completed_at.map(Timestamp::millis))
        .execute(&mut *transaction)
        .await?;
        insert_audit(&mut transaction, audit).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub(super) async fn verifications_of(&self, finding_id: Uuid) -> Result<Vec<FixVerification>> {
        sqlx::query(
            "SELECT * FROM fix_verifications WHERE finding_id = $1 ORDER BY requested_at DESC, id DESC",
        )
        .bind(finding_id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(verification_from_row)
        .collect()
    }

    pub(super) async fn all_firewall_rules(&self) -> Result<Vec<FirewallRule>> {
        sqlx::query("SELECT * FROM firewall_rules ORDER BY priority, name")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(firewall_rule_from_row)
            .collect()
    }

    pub(super) async fn one_firewall_rule(&self, id: Uuid) -> Result<Option<FirewallRule>> {
        sqlx::query("SELECT * FROM firewall_rules WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(firewall_rule_from_row)
            .transpose()
    }

    pub(super) async fn upsert_firewall_rule(
        &self,
        rule: &FirewallRule,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM firewall_rules WHERE name = $1 AND id <> $2")
                .bind(&rule.rule.name)
                .bind(rule.id.to_string())
                .fetch_optional(&mut *transaction)
                .await?;
        if let Some(other) = taken {
            return Err(StoreError::Conflict(format!(
                "another firewall rule ({other}) is already named {:?}; pick a different name",
                rule.rule.name
            )));
        }
        sqlx::query(
            "INSERT INTO firewall_rules (id, name, priority, body, updated_by, updated_at, demo) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, priority = excluded.priority, \
             body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(rule.id.to_string())
        .bind(&rule.rule.name)
        .bind(i64::from(rule.rule.priority))
        .bind(to_json(&rule.rule))
        .bind(&rule.updated_by)
        .bind(rule.updated_at.millis())
        .bind(i64::from(rule.demo))
        .execute(&mut *transaction)
        .await?;
        insert_audit(&mut transaction, audit).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub(super) async fn remove_firewall_rule(&self, id: Uuid, audit: &AuditEntry) -> Result<bool> {
        self.execute_audited(
            "DELETE FROM firewall_rules WHERE id = $1",
            &id.to_string(),
            audit,
        )
        .await
    }
}

fn group_from_row(row: &SqliteRow) -> Result<FindingGroup> {
    let count = |column: &str| -> Result<u64> {
        Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
    };
    Ok(FindingGroup {
        rule: row.try_get("rule")?,
        title: row.try_get("title")?,
        severity: Severity::from_rank(row.try_get("severity")?)
            .ok_or_else(|| corrupt("findings", "severity", "out of range"))?,
        category: row.try_get("category")?,
        findings: count("findings")?,
        open: count("open")?,
        assets: count("assets")?,
        fix_available: row.try_get::<i64, _>("fix_available")? != 0,
        last_seen: Timestamp(row.try_get("last_seen")?),
    })
}

fn verification_from_row(row: &SqliteRow) -> Result<FixVerification> {
    let state: &str = row.try_get("state")?;
    Ok(FixVerification {
        id: parse_uuid("fix_verifications", "id", row.try_get("id")?)?,
        finding_id: parse_uuid(
            "fix_verifications",
            "finding_id",
            row.try_get("finding_id")?,
        )?,
        asset_id: parse_uuid("fix_verifications", "asset_id", row.try_get("asset_id")?)?,
        requested_by: row.try_get("requested_by")?,
        requested_at: Timestamp(row.try_get("requested_at")?),
        state: VerificationState::from_name(state)
            .ok_or_else(|| corrupt("fix_verifications", "state", state))?,
        completed_at: row
            .try_get::<Option<i64>, _>("completed_at")?
            .map(Timestamp),
    })
}

fn firewall_rule_from_row(row: &SqliteRow) -> Result<FirewallRule> {
    let rule: NewFirewallRule =
        from_json("firewall_rules", "body", row.try_get::<&str, _>("body")?)?;
    Ok(FirewallRule {
        id: parse_uuid("firewall_rules", "id", row.try_get("id")?)?,
        rule,
        updated_by: row.try_get("updated_by")?,
        updated_at: Timestamp(row.try_get("updated_at")?),
        demo: row.try_get::<i64, _>("demo")? != 0,
    })
}
