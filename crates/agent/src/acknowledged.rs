//! Deleting what the server acknowledged from the outbox, beside the agent link's main loop.
//!
//! A delete commits the outbox, and at `synchronous = FULL` waits for the disk: in the main
//! loop it held back reading and sending the next batch for that long after every
//! acknowledgement. Here one task deletes up to the latest acknowledged sequence, and
//! acknowledgements that arrive while it deletes are folded into its next delete. Entries
//! acknowledged and not yet deleted are never sent again by this process (the loop reads past
//! them); after a crash the next process sends them again, and the server counts them as
//! duplicates.

use tokio::{sync::watch, task::JoinHandle};

use crate::{Outbox, OutboxError};

/// The task deleting acknowledged entries.
pub(crate) struct AcknowledgedDeleter {
    /// The latest outbox sequence the server acknowledged (with everything before it).
    acknowledged: watch::Sender<i64>,
    /// `None` once its failure was handed out.
    task: Option<JoinHandle<Result<(), OutboxError>>>,
}

impl AcknowledgedDeleter {
    /// Starts deleting from `outbox` what [`AcknowledgedDeleter::acknowledge`] is given.
    pub(crate) fn start(outbox: Outbox) -> AcknowledgedDeleter {
        let (acknowledged, mut latest) = watch::channel(0);
        let task = tokio::spawn(async move {
            let mut deleted = 0;
            loop {
                // Closed: the loop stopped; what it acknowledged last is still deleted.
                let closed = latest.changed().await.is_err();
                let sequence = *latest.borrow_and_update();
                if sequence > deleted {
                    outbox.acknowledge(sequence).await?;
                    deleted = sequence;
                }
                if closed {
                    return Ok(());
                }
            }
        });
        AcknowledgedDeleter {
            acknowledged,
            task: Some(task),
        }
    }

    /// Hands over that the server acknowledged every entry up to `sequence`; fails with the
    /// error of an earlier delete, after which nothing more is deleted.
    pub(crate) async fn acknowledge(&mut self, sequence: i64) -> Result<(), OutboxError> {
        if self.task.as_ref().is_none_or(JoinHandle::is_finished) {
            return join(self.task.take()).await;
        }
        self.acknowledged.send_if_modified(|latest| {
            let newer = sequence > *latest;
            *latest = (*latest).max(sequence);
            newer
        });
        Ok(())
    }

    /// Deletes what was acknowledged and not yet deleted, and stops; fails with the error of
    /// a delete that `acknowledge` did not hand out yet.
    pub(crate) async fn finish(self) -> Result<(), OutboxError> {
        drop(self.acknowledged);
        join(self.task).await
    }
}

/// The outcome of the deleting task (none once handed out), which ends only on a failed delete
/// or at `finish`. A panic in it is this process's; cancelled (the runtime shutting down), it
/// lost nothing: what it did not delete is sent again by the next process.
async fn join(task: Option<JoinHandle<Result<(), OutboxError>>>) -> Result<(), OutboxError> {
    let Some(task) = task else {
        return Ok(());
    };
    match task.await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use palisade_model::{
        AffectedAsset, AlertDetails, Details, FindingReport, Severity, Timestamp,
    };

    use super::AcknowledgedDeleter;
    use crate::Outbox;

    /// The sequence numbers of the first ten entries `outbox` holds.
    pub(crate) async fn first_sequences(outbox: &Outbox) -> Vec<i64> {
        outbox
            .peek(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(sequence, _)| sequence)
            .collect()
    }

    /// `count` alerts, `rule 0` to `rule {count - 1}`.
    pub(crate) fn reports(count: usize) -> Vec<FindingReport> {
        (0..count)
            .map(|index| FindingReport {
                id: uuid::Uuid::now_v7(),
                observed_at: Timestamp::now(),
                severity: Severity::High,
                rule: format!("rule {index}"),
                title: "a shell ran".into(),
                asset: AffectedAsset {
                    cluster: "c".into(),
                    ..Default::default()
                },
                details: Details::Alert(AlertDetails::default()),
                demo: false,
            })
            .collect()
    }

    /// Acknowledgements are deleted up to the latest (an older one arriving late deletes
    /// nothing more), and what was acknowledged last is deleted by `finish`.
    #[tokio::test]
    async fn acknowledged_entries_are_deleted_up_to_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        // A push apiece: a run of one entry each, so that each acknowledgement ends a run.
        for report in reports(10) {
            outbox.push(&[report]).await.unwrap();
        }
        let sequences = first_sequences(&outbox).await;
        let mut deleter = AcknowledgedDeleter::start(outbox.clone());
        deleter.acknowledge(sequences[2]).await.unwrap();
        deleter.acknowledge(sequences[6]).await.unwrap();
        deleter.acknowledge(sequences[4]).await.unwrap();
        deleter.finish().await.unwrap();
        let left = first_sequences(&outbox).await;
        assert_eq!(left, sequences[7..]);
    }
}
