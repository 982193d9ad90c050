//! The agent's main loop: enroll, then drain the outbox in acknowledged batches.

use std::{
    future::Future,
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use palisade_model::AgentBatch;

use crate::{AgentConfig, Link, LinkError, Outbox, OutboxError, host_facts};

/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the outbox is polled for pushes from other processes.
const POLL: Duration = Duration::from_millis(500);

/// Live counters of a running agent (for `palisade agent --status` and metrics).
#[derive(Debug, Default)]
pub struct AgentStatus {
    /// Reports acknowledged by the server.
    pub acknowledged: AtomicU64,
    /// Batches that failed and were retried.
    pub retries: AtomicU64,
    /// Outbox entries that could not be decoded and were discarded.
    pub discarded: AtomicU64,
    /// Kernel events lost, not yet reported to the server.
    pub dropped_events: AtomicU64,
}

/// An agent failure that stops it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The link could not be set up or the agent could not enroll.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    config: AgentConfig,
    outbox: Outbox,
    status: &AgentStatus,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    let link = Link::new(&config)?;
    let mut backoff = Duration::from_millis(100);
    let credential = loop {
        match link.credential(&config).await {
            Ok(credential) => break credential,
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, retry_in = ?backoff, "Cannot enroll yet; retrying.");
                tokio::select! { () = tokio::time::sleep(backoff) => {}, () = &mut shutdown => return Ok(()) }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => return Err(error.into()),
        }
    };
    tracing::info!(agent = %credential.agent_id, server = %config.server_url, "Agent enrolled.");
    // This process's claims of tasks are leases in its name: a later process of the same
    // agent gets the tasks this one leaves unfinished.
    let session = uuid::Uuid::new_v4();
    let _worker = crate::tasks::start(&config, &link, &credential, &outbox, session);
    backoff = Duration::from_millis(100);
    let mut last_heartbeat: Option<Instant> = None;
    loop {
        let entries = match outbox.peek(config.batch_size.max(1)).await {
            Ok(entries) => entries,
            Err(OutboxError::Corrupt { sequence, reason }) => {
                tracing::error!(sequence, %reason, "Discarding a corrupt outbox entry.");
                outbox.discard(sequence).await?;
                status.discarded.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let heartbeat_due = last_heartbeat.is_none_or(|at| at.elapsed() >= config.heartbeat());
        let dropped = status.dropped_events.load(Ordering::Relaxed);
        if entries.is_empty() && !heartbeat_due && dropped == 0 {
            tokio::select! { () = outbox.wait_for_push(POLL) => continue, () = &mut shutdown => return Ok(()) }
        }
        let sequence = entries.last().map_or(0, |(sequence, _)| *sequence);
        let batch = AgentBatch {
            sequence: u64::try_from(sequence).unwrap_or(0),
            reports: entries.into_iter().map(|(_, report)| report).collect(),
            assets: Vec::new(),
            dropped_events: dropped,
            facts: heartbeat_due.then(|| host_facts(Path::new("/"), &config.sensor)),
        };
        let sent = tokio::select! { result = link.send(&credential, &batch) => result, () = &mut shutdown => return Ok(()) };
        match sent {
            Ok(ack) => {
                if sequence > 0 {
                    outbox.acknowledge(sequence).await?;
                }
                status.dropped_events.fetch_sub(dropped, Ordering::Relaxed);
                status
                    .acknowledged
                    .fetch_add(batch.reports.len() as u64, Ordering::Relaxed);
                if heartbeat_due {
                    last_heartbeat = Some(Instant::now());
                }
                tracing::debug!(
                    sequence = ack.sequence,
                    created = ack.created,
                    duplicates = ack.duplicates,
                    "Batch acknowledged."
                );
                backoff = Duration::from_millis(100);
            }
            Err(error) if error.is_transient() => {
                status.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, retry_in = ?backoff, "Batch not delivered; retrying.");
                tokio::select! { () = tokio::time::sleep(backoff) => {}, () = &mut shutdown => return Ok(()) }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => return Err(error.into()),
        }
    }
}
