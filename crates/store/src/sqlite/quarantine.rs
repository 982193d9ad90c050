//! The agents' quarantined files (table `quarantine`): each agent's report replaces its rows.

use palisade_model::{QuarantineEntry, QuarantinedFile, Timestamp};
use sqlx::{Row, sqlite::SqliteRow};
use uuid::Uuid;

use super::{SqliteStore, parse_uuid};
use crate::Result;

/// The listing's query up to its `WHERE`/`ORDER BY` tail: the entry and its agent's name and
/// cluster (a macro, so that the whole statement stays a literal).
macro_rules! select_quarantine {
    ($tail:literal) => {
        concat!(
            "SELECT quarantine.*, agents.name AS node, agents.cluster AS cluster \
             FROM quarantine JOIN agents ON agents.id = quarantine.agent_id ",
            $tail
        )
    };
}

impl SqliteStore {
    pub(super) async fn replace_agent_quarantine(
        &self,
        agent_id: Uuid,
        entries: &[QuarantineEntry],
        at: Timestamp,
    ) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query("DELETE FROM quarantine WHERE agent_id = $1")
            .bind(agent_id.to_string())
            .execute(&mut *transaction)
            .await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO quarantine (id, agent_id, original_path, sha256, size, rule, quarantined_at, container_id, reported_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
            )
            .bind(entry.id.to_string())
            .bind(agent_id.to_string())
            .bind(&entry.original_path)
            .bind(&entry.sha256)
            .bind(i64::try_from(entry.size).unwrap_or(i64::MAX))
            .bind(&entry.rule)
            .bind(entry.quarantined_at.millis())
            .bind(entry.container_id.as_deref())
            .bind(at.millis())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub(super) async fn quarantined_files(&self, limit: u32) -> Result<Vec<QuarantinedFile>> {
        sqlx::query(select_quarantine!(
            "ORDER BY quarantine.quarantined_at DESC, quarantine.id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(quarantined_from_row)
        .collect()
    }

    pub(super) async fn one_quarantined_file(&self, id: Uuid) -> Result<Option<QuarantinedFile>> {
        sqlx::query(select_quarantine!("WHERE quarantine.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(quarantined_from_row)
            .transpose()
    }
}

fn quarantined_from_row(row: &SqliteRow) -> Result<QuarantinedFile> {
    Ok(QuarantinedFile {
        entry: QuarantineEntry {
            id: parse_uuid("quarantine", "id", row.try_get("id")?)?,
            original_path: row.try_get("original_path")?,
            sha256: row.try_get("sha256")?,
            size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or_default(),
            rule: row.try_get("rule")?,
            quarantined_at: Timestamp(row.try_get("quarantined_at")?),
            container_id: row.try_get("container_id")?,
        },
        agent_id: parse_uuid("quarantine", "agent_id", row.try_get("agent_id")?)?,
        node: row.try_get("node")?,
        cluster: row.try_get("cluster")?,
        reported_at: Timestamp(row.try_get("reported_at")?),
    })
}
