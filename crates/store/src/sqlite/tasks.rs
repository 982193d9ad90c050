//! Agent tasks (table `agent_tasks`, their claims in `agent_task_attempts`), fix verification
//! results, and resolving the findings a complete rescan no longer finds.
//!
//! A claim is a lease held by one agent process: a task whose lease lapsed, or whose agent
//! claims again as a new process, is handed out again, at most [`MAX_TASK_ATTEMPTS`] times,
//! and only the current attempt may finish it.

use std::collections::HashSet;

use palisade_model::{
    AgentTask, AuditEntry, FindingKind, MAX_TASK_ATTEMPTS, Status, TaskAttempt, TaskResult,
    TaskSpec, TaskState, Timestamp, VerificationState,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, sqlite::SqliteRow};
use uuid::Uuid;

use super::{
    BY_ASSET_INDEX, SqliteStore, corrupt, from_json, insert_audit, parse_uuid, push_asset_filter,
    to_json, update_status,
};
use crate::{Result, TaskClaim};

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

    /// Hands out the agent's pending tasks: first, claims it lost (lease expired, or held
    /// by another process of the agent when `session` is given) are released — pending again,
    /// or failed after [`MAX_TASK_ATTEMPTS`] — then up to `limit` pending tasks become running
    /// under a new attempt held by `session` for `lease_millis`.
    pub(super) async fn claim_pending_tasks(
        &self,
        claim: TaskClaim,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<AgentTask>> {
        let mut transaction = self.writer.begin().await?;
        Self::expire_tasks(&mut transaction, now).await?;
        Self::release_lost_claims(&mut transaction, &claim, now).await?;
        let rows = sqlx::query(
            "SELECT * FROM agent_tasks WHERE agent_id = $1 AND state = $2 \
             ORDER BY requested_at, id LIMIT $3",
        )
        .bind(claim.agent_id.to_string())
        .bind(TaskState::Pending.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *transaction)
        .await?;
        let mut tasks = rows.iter().map(task_from_row).collect::<Result<Vec<_>>>()?;
        let session = claim.session.map(|session| session.to_string());
        let lease_until = Timestamp(now.millis().saturating_add(claim.lease_millis));
        for task in &mut tasks {
            let attempt = task.attempt + 1;
            sqlx::query(
                "UPDATE agent_tasks SET state = $1, started_at = $2, attempt = $3, session = $4, \
                 lease_until = $5 WHERE id = $6",
            )
            .bind(TaskState::Running.as_str())
            .bind(now.millis())
            .bind(i64::from(attempt))
            .bind(&session)
            .bind(lease_until.millis())
            .bind(task.id.to_string())
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "INSERT INTO agent_task_attempts (task_id, attempt, session, claimed_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(task.id.to_string())
            .bind(i64::from(attempt))
            .bind(&session)
            .bind(now.millis())
            .execute(&mut *transaction)
            .await?;
            task.state = TaskState::Running;
            task.started_at = Some(now);
            task.attempt = attempt;
            task.lease_until = Some(lease_until);
        }
        transaction.commit().await?;
        Ok(tasks)
    }

    /// Ends the attempts of the agent's running tasks whose lease expired or that another
    /// process of the agent holds, and puts the tasks back (or fails them when they used up
    /// their attempts).
    async fn release_lost_claims(
        connection: &mut SqliteConnection,
        claim: &TaskClaim,
        now: Timestamp,
    ) -> Result<()> {
        let rows = sqlx::query(
            "SELECT id, attempt, session, lease_until FROM agent_tasks \
             WHERE agent_id = $1 AND state = $2",
        )
        .bind(claim.agent_id.to_string())
        .bind(TaskState::Running.as_str())
        .fetch_all(&mut *connection)
        .await?;
        let current = claim.session.map(|session| session.to_string());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let attempt: i64 = row.try_get("attempt")?;
            let holder: Option<String> = row.try_get("session")?;
            let lease_until: Option<i64> = row.try_get("lease_until")?;
            let outcome = if current.is_some() && holder.is_some() && holder != current {
                "lost: the agent restarted (another process of it claimed tasks)"
            } else if lease_until.is_some_and(|until| until < now.millis()) {
                "lost: the lease expired without a heartbeat"
            } else {
                continue;
            };
            sqlx::query(
                "UPDATE agent_task_attempts SET ended_at = $1, outcome = $2 \
                 WHERE task_id = $3 AND attempt = $4",
            )
            .bind(now.millis())
            .bind(outcome)
            .bind(&id)
            .bind(attempt)
            .execute(&mut *connection)
            .await?;
            if attempt >= i64::from(MAX_TASK_ATTEMPTS) {
                let result = TaskResult::failed(format!(
                    "gave up after {attempt} attempts; the last one was {outcome}"
                ));
                sqlx::query(
                    "UPDATE agent_tasks SET state = $1, finished_at = $2, result = $3, \
                     lease_until = NULL WHERE id = $4",
                )
                .bind(TaskState::Failed.as_str())
                .bind(now.millis())
                .bind(to_json(&result))
                .bind(&id)
                .execute(&mut *connection)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE agent_tasks SET state = $1, session = NULL, lease_until = NULL \
                     WHERE id = $2",
                )
                .bind(TaskState::Pending.as_str())
                .bind(&id)
                .execute(&mut *connection)
                .await?;
            }
        }
        Ok(())
    }

    /// Extends the lease of the agent's running task when `attempt` is its current one and its
    /// lease has not lapsed. A lapsed lease is lost even when no other claim came yet: its
    /// attempt ends (recorded as such) and the task is pending again, so a frozen agent that
    /// wakes up learns that it must stop rather than carrying on past its lease.
    pub(super) async fn renew_task_lease(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        attempt: u32,
        lease_millis: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let mut transaction = self.writer.begin().await?;
        Self::release_lapsed_claims(&mut transaction, agent_id, now).await?;
        let renewed = sqlx::query(
            "UPDATE agent_tasks SET lease_until = $1 \
             WHERE id = $2 AND agent_id = $3 AND state = $4 AND attempt = $5",
        )
        .bind(now.millis().saturating_add(lease_millis))
        .bind(task_id.to_string())
        .bind(agent_id.to_string())
        .bind(TaskState::Running.as_str())
        .bind(i64::from(attempt))
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            > 0;
        transaction.commit().await?;
        Ok(renewed)
    }

    /// Ends the attempts of the agent's running tasks whose lease lapsed (whichever process
    /// holds them).
    async fn release_lapsed_claims(
        connection: &mut SqliteConnection,
        agent_id: Uuid,
        now: Timestamp,
    ) -> Result<()> {
        let any_process = TaskClaim {
            agent_id,
            session: None,
            lease_millis: 0,
        };
        Self::release_lost_claims(connection, &any_process, now).await
    }

    /// Records a result. With `attempt`, only the task's current, running attempt whose lease
    /// has not lapsed may finish it; without one (agents from before leases), any unfinished
    /// task of the agent.
    pub(super) async fn record_task_result(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        attempt: Option<u32>,
        result: &TaskResult,
        now: Timestamp,
    ) -> Result<Option<AgentTask>> {
        let mut transaction = self.writer.begin().await?;
        Self::expire_tasks(&mut transaction, now).await?;
        Self::release_lapsed_claims(&mut transaction, agent_id, now).await?;
        let state = if result.succeeded {
            TaskState::Done
        } else {
            TaskState::Failed
        };
        let changed = sqlx::query(
            "UPDATE agent_tasks SET state = $1, finished_at = $2, result = $3, lease_until = NULL \
             WHERE id = $4 AND agent_id = $5 AND ( \
                 ($6 IS NULL AND state IN ($7, $8)) OR (state = $8 AND attempt = $6))",
        )
        .bind(state.as_str())
        .bind(now.millis())
        .bind(to_json(result))
        .bind(task_id.to_string())
        .bind(agent_id.to_string())
        .bind(attempt.map(i64::from))
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
            let task = task_from_row(&row)?;
            let outcome = if result.succeeded {
                "finished: succeeded".to_owned()
            } else {
                format!("finished: failed ({})", truncate(&result.message, 200))
            };
            sqlx::query(
                "UPDATE agent_task_attempts SET ended_at = $1, outcome = $2 \
                 WHERE task_id = $3 AND attempt = $4 AND ended_at IS NULL",
            )
            .bind(now.millis())
            .bind(outcome)
            .bind(task_id.to_string())
            .bind(i64::from(task.attempt))
            .execute(&mut *transaction)
            .await?;
            Some(task)
        };
        transaction.commit().await?;
        Ok(task)
    }

    pub(super) async fn one_task(&self, id: Uuid) -> Result<Option<AgentTask>> {
        let mut connection = self.writer.acquire().await?;
        Self::expire_tasks(&mut connection, Timestamp::now()).await?;
        let Some(mut task) = sqlx::query("SELECT * FROM agent_tasks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *connection)
            .await?
            .as_ref()
            .map(task_from_row)
            .transpose()?
        else {
            return Ok(None);
        };
        task.attempts =
            sqlx::query("SELECT * FROM agent_task_attempts WHERE task_id = $1 ORDER BY attempt")
                .bind(id.to_string())
                .fetch_all(&mut *connection)
                .await?
                .iter()
                .map(attempt_from_row)
                .collect::<Result<_>>()?;
        Ok(Some(task))
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
        let mut query = QueryBuilder::<Sqlite>::new("SELECT * FROM findings");
        query
            .push(BY_ASSET_INDEX)
            .push(" WHERE kind = ")
            .push_bind(kind.as_str());
        push_asset_filter(&mut query, asset_id);
        query
            .push(" AND status IN (")
            .push_bind(Status::Open.as_str())
            .push(", ")
            .push_bind(Status::Fixing.as_str())
            .push(")");
        let rows = query.build().fetch_all(&mut *transaction).await?;
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
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?)
            .map_err(|_| corrupt("agent_tasks", "attempt", "out of range"))?,
        lease_until: row.try_get::<Option<i64>, _>("lease_until")?.map(Timestamp),
        attempts: Vec::new(),
    })
}

fn attempt_from_row(row: &SqliteRow) -> Result<TaskAttempt> {
    Ok(TaskAttempt {
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?)
            .map_err(|_| corrupt("agent_task_attempts", "attempt", "out of range"))?,
        session: row
            .try_get::<Option<&str>, _>("session")?
            .map(|text| parse_uuid("agent_task_attempts", "session", text))
            .transpose()?,
        claimed_at: Timestamp(row.try_get("claimed_at")?),
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(Timestamp),
        outcome: row.try_get("outcome")?,
    })
}

/// At most `limit` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
