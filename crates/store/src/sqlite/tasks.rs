//! Agent tasks (table `agent_tasks`), fix verification results, and resolving the findings a
//! complete rescan no longer finds.

use std::collections::HashSet;

use palisade_model::{
    AgentTask, AuditEntry, FindingKind, Status, TaskResult, TaskSpec, TaskState, Timestamp,
    VerificationState,
};
use sqlx::{Row, SqliteConnection, sqlite::SqliteRow};
use uuid::Uuid;

use super::{SqliteStore, corrupt, from_json, insert_audit, parse_uuid, to_json, update_status};
use crate::Result;

/// The message of a task that passed its deadline unfinished.
const TIMED_OUT: &str = "timed out: the agent did not report a result before the deadline";

impl SqliteStore {
    pub(super) async fn insert_task(&self, task: &AgentTask, audit: &AuditEntry) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO agent_tasks (id, agent_id, kind, spec, state, requested_by, requested_at, deadline, started_at, finished_at, result) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(task.id.to_string())
        .bind(task.agent_id.to_string())
        .bind(task.spec.kind_name())
        .bind(to_json(&task.spec))
        .bind(task.state.as_str())
        .bind(&task.requested_by)
        .bind(task.requested_at.millis())
        .bind(task.deadline.millis())
        .bind(task.started_at.map(Timestamp::millis))
        .bind(task.finished_at.map(Timestamp::millis))
        .bind(task.result.as_ref().map(to_json))
        .execute(&mut *transaction)
        .await?;
        insert_audit(&mut transaction, audit).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Fails every unfinished task whose deadline has passed.
    pub(super) async fn expire_tasks(
        connection: &mut SqliteConnection,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agent_tasks SET state = $1, finished_at = $2, result = $3 \
             WHERE state IN ($4, $5) AND deadline < $2",
        )
        .bind(TaskState::Failed.as_str())
        .bind(now.millis())
        .bind(to_json(&TaskResult::failed(TIMED_OUT)))
        .bind(TaskState::Pending.as_str())
        .bind(TaskState::Running.as_str())
        .execute(connection)
        .await?;
        Ok(())
    }

    pub(super) async fn claim_pending_tasks(
        &self,
        agent_id: Uuid,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<AgentTask>> {
        let mut transaction = self.writer.begin().await?;
        Self::expire_tasks(&mut transaction, now).await?;
        let rows = sqlx::query(
            "SELECT * FROM agent_tasks WHERE agent_id = $1 AND state = $2 \
             ORDER BY requested_at, id LIMIT $3",
        )
        .bind(agent_id.to_string())
        .bind(TaskState::Pending.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *transaction)
        .await?;
        let mut tasks = rows.iter().map(task_from_row).collect::<Result<Vec<_>>>()?;
        for task in &mut tasks {
            sqlx::query("UPDATE agent_tasks SET state = $1, started_at = $2 WHERE id = $3")
                .bind(TaskState::Running.as_str())
                .bind(now.millis())
                .bind(task.id.to_string())
                .execute(&mut *transaction)
                .await?;
            task.state = TaskState::Running;
            task.started_at = Some(now);
        }
        transaction.commit().await?;
        Ok(tasks)
    }

    pub(super) async fn record_task_result(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        result: &TaskResult,
        now: Timestamp,
    ) -> Result<Option<AgentTask>> {
        let mut transaction = self.writer.begin().await?;
        Self::expire_tasks(&mut transaction, now).await?;
        let state = if result.succeeded {
            TaskState::Done
        } else {
            TaskState::Failed
        };
        let changed = sqlx::query(
            "UPDATE agent_tasks SET state = $1, finished_at = $2, result = $3 \
             WHERE id = $4 AND agent_id = $5 AND state IN ($6, $7)",
        )
        .bind(state.as_str())
        .bind(now.millis())
        .bind(to_json(result))
        .bind(task_id.to_string())
        .bind(agent_id.to_string())
        .bind(TaskState::Pending.as_str())
        .bind(TaskState::Running.as_str())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        let task = if changed == 0 {
            None
        } else {
            let row = sqlx::query("SELECT * FROM agent_tasks WHERE id = $1")
                .bind(task_id.to_string())
                .fetch_one(&mut *transaction)
                .await?;
            Some(task_from_row(&row)?)
        };
        transaction.commit().await?;
        Ok(task)
    }

    pub(super) async fn one_task(&self, id: Uuid) -> Result<Option<AgentTask>> {
        let mut connection = self.writer.acquire().await?;
        Self::expire_tasks(&mut connection, Timestamp::now()).await?;
        sqlx::query("SELECT * FROM agent_tasks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *connection)
            .await?
            .as_ref()
            .map(task_from_row)
            .transpose()
    }

    pub(super) async fn tasks_of(&self, agent_id: Uuid, limit: u32) -> Result<Vec<AgentTask>> {
        let mut connection = self.writer.acquire().await?;
        Self::expire_tasks(&mut connection, Timestamp::now()).await?;
        sqlx::query(
            "SELECT * FROM agent_tasks WHERE agent_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2",
        )
        .bind(agent_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(task_from_row)
        .collect()
    }

    pub(super) async fn finish_fix_verification(
        &self,
        id: Uuid,
        state: VerificationState,
        at: Timestamp,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE fix_verifications SET state = $1, completed_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(state.as_str())
        .bind(at.millis())
        .bind(id.to_string())
        .bind(VerificationState::Pending.as_str())
        .execute(&self.writer)
        .await?
        .rows_affected()
            > 0)
    }

    pub(super) async fn resolve_findings_absent_from(
        &self,
        asset_id: Uuid,
        kind: FindingKind,
        present: &HashSet<String>,
        audit: &AuditEntry,
    ) -> Result<u64> {
        let mut transaction = self.writer.begin().await?;
        let rows = sqlx::query(
            "SELECT * FROM findings WHERE asset_id = $1 AND kind = $2 AND status IN ($3, $4)",
        )
        .bind(asset_id.to_string())
        .bind(kind.as_str())
        .bind(Status::Open.as_str())
        .bind(Status::Fixing.as_str())
        .fetch_all(&mut *transaction)
        .await?;
        let mut gone = Vec::new();
        for row in &rows {
            let key: &str = row.try_get("dedupe_key")?;
            if !present.contains(key) {
                gone.push(parse_uuid("findings", "id", row.try_get("id")?)?);
            }
        }
        let resolved = update_status(&mut transaction, &gone, Status::Fixed).await?;
        if resolved > 0 {
            let mut audit = audit.clone();
            audit.details["resolved"] = resolved.into();
            audit.details["finding_ids"] = gone.iter().map(Uuid::to_string).collect();
            insert_audit(&mut transaction, &audit).await?;
        }
        transaction.commit().await?;
        Ok(resolved)
    }
}

fn task_from_row(row: &SqliteRow) -> Result<AgentTask> {
    let state: &str = row.try_get("state")?;
    let spec: TaskSpec = from_json("agent_tasks", "spec", row.try_get::<&str, _>("spec")?)?;
    let result = row
        .try_get::<Option<&str>, _>("result")?
        .map(|text| from_json::<TaskResult>("agent_tasks", "result", text))
        .transpose()?;
    Ok(AgentTask {
        id: parse_uuid("agent_tasks", "id", row.try_get("id")?)?,
        agent_id: parse_uuid("agent_tasks", "agent_id", row.try_get("agent_id")?)?,
        spec,
        state: TaskState::from_name(state).ok_or_else(|| corrupt("agent_tasks", "state", state))?,
        requested_by: row.try_get("requested_by")?,
        requested_at: Timestamp(row.try_get("requested_at")?),
        deadline: Timestamp(row.try_get("deadline")?),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(Timestamp),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(Timestamp),
        result,
    })
}
