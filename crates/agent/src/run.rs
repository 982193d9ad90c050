//! The agent's main loop: enroll, then drain the outbox in acknowledged batches.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use palisade_model::{
    AgentBatch, AgentLosses, BatchAck, CpuEventsLost, MAX_BATCH_BYTES, SensorContextLosses,
    Timestamp,
};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{
    AgentConfig, ConfigError, Link, LinkError, Outbox, OutboxError,
    acknowledged::AcknowledgedDeleter, link::EncodedBatch, status::LinkStatus,
};

/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait a server's `Retry-After` gets: a larger one (a misconfigured proxy) would
/// hold the outbox back for as long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The shortest wait for a deferred batch: a `Retry-After: 0` (from a proxy, say) must not have
/// the agent read, encode and send a batch of up to 32 MiB again in a tight loop.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the outbox is polled for pushes from other processes.
const POLL: Duration = Duration::from_millis(500);
/// Least time between two batches that carry nothing but changed loss counters: on a busy
/// node some counters (a full process table's evictions) change between any two batches, and
/// each batch costs the server a synced write. The counters are cumulative, so a later batch
/// carries what a skipped one would have.
const LOSSES_ALONE_INTERVAL: Duration = Duration::from_secs(1);

/// Live counters of a running agent (for `palisade agent --status` and metrics).
#[derive(Debug)]
pub struct AgentStatus {
    /// Reports acknowledged by the server.
    pub acknowledged: AtomicU64,
    /// Batches that failed and were retried.
    pub retries: AtomicU64,
    /// Outbox entries that could not be decoded and were discarded.
    pub discarded: AtomicU64,
    /// Kernel events the sensor lost since this process started.
    pub sensor_events_lost: AtomicU64,
    /// Those events by the CPU whose probes lost them (the CPUs that lost any).
    pub sensor_events_lost_by_cpu: Mutex<Vec<CpuEventsLost>>,
    /// Reports of the firewall's connect programs lost since this process started.
    pub connect_reports_lost: AtomicU64,
    /// What the sensor could not attach to the events it delivered since this process
    /// started (its counters as of the last poll).
    pub sensor_context_lost: Mutex<SensorContextLosses>,
    /// This process, in the loss counters sent to the server ([`AgentLosses`]).
    process: Uuid,
    started_at: Timestamp,
}

impl Default for AgentStatus {
    fn default() -> AgentStatus {
        AgentStatus {
            acknowledged: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            sensor_events_lost: AtomicU64::new(0),
            sensor_events_lost_by_cpu: Mutex::new(Vec::new()),
            connect_reports_lost: AtomicU64::new(0),
            sensor_context_lost: Mutex::new(SensorContextLosses::default()),
            process: Uuid::new_v4(),
            started_at: Timestamp::now(),
        }
    }
}

impl AgentStatus {
    /// What this process lost so far, as the server counts it.
    pub fn losses(&self) -> AgentLosses {
        AgentLosses {
            process: self.process,
            process_started_at: self.started_at,
            sensor_events: self.sensor_events_lost.load(Ordering::Relaxed),
            sensor_events_by_cpu: self
                .sensor_events_lost_by_cpu
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
            connect_reports: self.connect_reports_lost.load(Ordering::Relaxed),
            sensor_context: *self
                .sensor_context_lost
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }
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
    /// A configuration value is out of its range.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    config: AgentConfig,
    outbox: Outbox,
    status: &AgentStatus,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    config.validate()?;
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
    let session = Uuid::new_v4();
    let _worker = crate::tasks::start(&config, &link, &credential, &outbox, session);
    let mut deleter = AcknowledgedDeleter::start(outbox.clone());
    let delivered = deliver(
        &config,
        &link,
        &credential,
        &outbox,
        status,
        &mut deleter,
        shutdown,
    )
    .await;
    // What was acknowledged is deleted before the agent stops, whatever stopped it.
    let deleted = deleter.finish().await;
    delivered?;
    deleted.map_err(RunError::from)
}

/// Sends the outbox in batches until `shutdown` completes, handing what the server
/// acknowledged to `deleter`.
async fn deliver(
    config: &AgentConfig,
    link: &Link,
    credential: &crate::Credential,
    outbox: &Outbox,
    status: &AgentStatus,
    deleter: &mut AcknowledgedDeleter,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    // What `palisade agent --status` shows of the server's back-pressure, since this start.
    let mut link_status = LinkStatus::started();
    write_link_status(&link_status, config).await;
    let mut backoff = Duration::from_millis(100);
    let mut last_heartbeat: Option<Instant> = None;
    // Batches sent and not yet acknowledged, oldest first. Several travel at once so that the
    // server stores one batch while the next is encoded and on its way; acknowledgements are
    // taken in order, so the outbox only ever loses a prefix the server has stored.
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // The last outbox sequence handed to a batch, and the last the server acknowledged (with
    // everything before it; the deleter may not have deleted them yet).
    let mut sent_up_to = 0;
    let mut acknowledged_up_to = 0;
    // The loss counters the last batch carried: a change is sent even without reports.
    // Every batch carries the counters, so one that fails loses nothing.
    let mut losses_sent = None;
    let mut losses_alone_sent_at: Option<Instant> = None;
    loop {
        while in_flight.len() < config.batches_in_flight.max(1) {
            let entries = outbox
                .peek_batch(sent_up_to, config.batch_size.max(1))
                .await?;
            let Some(mut documents) = entries.documents() else {
                // An entry is not JSON: the entry by entry read names it.
                match outbox.peek(sent_up_to, entries.count).await {
                    Err(OutboxError::Corrupt { sequence, reason }) => {
                        let discarded = outbox.discard(sequence).await?;
                        tracing::error!(sequence, discarded, %reason, "Discarded a corrupt outbox entry (or its damaged run).");
                        status.discarded.fetch_add(discarded, Ordering::Relaxed);
                    }
                    Err(error) => return Err(error.into()),
                    // Every entry is JSON by now: another process discarded the damaged one.
                    Ok(_) => {}
                }
                continue;
            };
            // The batch ends before the document that would take it past what the server
            // takes; a document that alone is more cannot be delivered.
            let fitting = documents_within(&documents, BATCH_DOCUMENT_BYTES);
            if let (0, Some(&(sequence, document))) = (fitting, documents.first()) {
                let discarded = outbox.discard(sequence).await?;
                tracing::error!(
                    sequence,
                    bytes = document.get().len(),
                    limit = BATCH_DOCUMENT_BYTES,
                    "Discarded an outbox entry larger than a batch may be."
                );
                status.discarded.fetch_add(discarded, Ordering::Relaxed);
                continue;
            }
            documents.truncate(fitting);
            let heartbeat = !in_flight.iter().any(|batch| batch.heartbeat)
                && last_heartbeat.is_none_or(|at| at.elapsed() >= config.heartbeat());
            let losses = status.losses();
            if documents.is_empty()
                && !heartbeat
                && (losses_sent.as_ref() == Some(&losses)
                    || losses_alone_sent_at.is_some_and(|at| at.elapsed() < LOSSES_ALONE_INTERVAL))
            {
                break;
            }
            if documents.is_empty() && !heartbeat {
                losses_alone_sent_at = Some(Instant::now());
            }
            losses_sent = Some(losses.clone());
            let sequence = documents.last().map_or(0, |&(sequence, _)| sequence);
            sent_up_to = sent_up_to.max(sequence);
            let reports = documents.len() as u64;
            // Encoded here, while the documents borrow from the outbox's read.
            let batch = EncodedBatch::new(&AgentBatch {
                sequence: u64::try_from(sequence).unwrap_or(0),
                reports: documents.iter().map(|&(_, document)| document).collect(),
                assets: Vec::new(),
                losses: Some(losses),
                facts: heartbeat.then(|| config.host_facts()),
            })?;
            let (link, credential) = (link.clone(), credential.clone());
            in_flight.push_back(InFlight {
                sequence,
                reports,
                heartbeat,
                reply: tokio::spawn(async move { link.send(&credential, batch).await }),
            });
        }
        let Some(oldest) = in_flight.front_mut() else {
            tokio::select! { () = outbox.wait_for_push(POLL) => continue, () = &mut shutdown => return Ok(()) }
        };
        let reply = tokio::select! { reply = &mut oldest.reply => reply, () = &mut shutdown => return Ok(()) };
        let sent = in_flight
            .pop_front()
            .expect("the oldest batch was just awaited");
        let reply = reply.unwrap_or_else(|join| Err(LinkError::Interrupted(join.to_string())));
        match reply {
            Ok(ack) => {
                if sent.sequence > 0 {
                    acknowledged_up_to = sent.sequence;
                    deleter.acknowledge(sent.sequence).await?;
                }
                status
                    .acknowledged
                    .fetch_add(sent.reports, Ordering::Relaxed);
                if sent.heartbeat {
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
            Err(error) => {
                // Everything after the last acknowledged entry is sent again (report ids make a
                // repeat harmless), and the loss counters with it.
                let failed_reports = usize::try_from(sent.reports).unwrap_or(usize::MAX);
                for batch in std::iter::once(sent).chain(in_flight.drain(..)) {
                    batch.reply.abort();
                }
                sent_up_to = acknowledged_up_to;
                losses_sent = None;
                if let LinkError::Rejected { .. } = error {
                    // Entries are forwarded undecoded: one that is not a report makes the
                    // server refuse the whole batch. The failed batch is the oldest, so it
                    // starts after the last acknowledged entry.
                    let discarded = outbox
                        .discard_unreadable(acknowledged_up_to, failed_reports)
                        .await?;
                    for (sequence, reason) in &discarded {
                        tracing::error!(sequence, %reason, "Discarding a corrupt outbox entry.");
                    }
                    if !discarded.is_empty() {
                        status
                            .discarded
                            .fetch_add(discarded.len() as u64, Ordering::Relaxed);
                        continue;
                    }
                }
                if !error.is_transient() {
                    return Err(error.into());
                }
                if let LinkError::Deferred { .. } = error {
                    link_status.count_deferral();
                    write_link_status(&link_status, config).await;
                }
                // A busy server names its wait: the batch is not at fault, and the backoff stays
                // for failures. Without a usable Retry-After, the backoff stands in.
                if let Some(retry_after) = error.retry_after() {
                    let retry_in = retry_after.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER);
                    tracing::info!(%error, ?retry_in, "Server busy; sending the batch again later.");
                    tokio::select! { () = tokio::time::sleep(retry_in) => {}, () = &mut shutdown => return Ok(()) }
                    continue;
                }
                status.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, retry_in = ?backoff, "Batch not delivered; retrying.");
                tokio::select! { () = tokio::time::sleep(backoff) => {}, () = &mut shutdown => return Ok(()) }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Writes `link_status` for `palisade agent --status`; a failure only costs the status.
async fn write_link_status(link_status: &LinkStatus, config: &AgentConfig) {
    if let Err(error) = link_status.write(&config.data_dir).await {
        tracing::warn!(%error, "Cannot write the link status.");
    }
}

/// The most bytes of report documents in one batch: the server's limit on a batch's body,
/// less room for the rest of it (loss counters, host facts).
const BATCH_DOCUMENT_BYTES: usize = MAX_BATCH_BYTES - (1 << 20);

/// How many of `documents`, from the first, fit in `bytes` as a batch's array (each with its
/// comma).
fn documents_within(documents: &[(i64, &RawValue)], bytes: usize) -> usize {
    let mut total = 0;
    documents
        .iter()
        .take_while(|(_, document)| {
            total += document.get().len() + 1;
            total <= bytes
        })
        .count()
}

/// A batch on its way to the server.
struct InFlight {
    /// Its last outbox sequence (0 for a batch without reports).
    sequence: i64,
    reports: u64,
    heartbeat: bool,
    reply: tokio::task::JoinHandle<Result<BatchAck, LinkError>>,
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use crate::{AgentConfig, AgentStatus, ConfigError, Outbox, RunError, SensorHoldConfig};

    /// A batch takes the documents that fit whole, with their commas, and stops at the first
    /// that does not, even when a later one would fit.
    #[test]
    fn a_batch_takes_the_documents_that_fit_its_bytes() {
        let texts = ["[1,2]", "\"abcdefgh\"", "{}", "7"];
        let documents: Vec<(i64, &RawValue)> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| (index as i64 + 1, serde_json::from_str(text).unwrap()))
            .collect();
        assert_eq!(super::documents_within(&documents, 100), 4);
        assert_eq!(super::documents_within(&documents, 6 + 11 + 3 + 2), 4);
        assert_eq!(super::documents_within(&documents, 6 + 11 + 3 + 1), 3);
        assert_eq!(
            super::documents_within(&documents, 6 + 10),
            1,
            "stops at the first too large"
        );
        assert_eq!(super::documents_within(&documents, 5), 0);
        assert_eq!(super::documents_within(&[], 5), 0);
    }

    /// An out-of-range value stops the agent before it contacts any server, naming its key.
    #[tokio::test]
    async fn a_bad_configuration_stops_the_agent_before_it_enrolls() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let config = AgentConfig {
            sensor_hold: SensorHoldConfig {
                max_wait_ms: 50,
                max_events: 0,
            },
            // Nothing listens here: an agent that tried to enroll would retry forever.
            ..AgentConfig::new("https://127.0.0.1:9", dir.path(), "c", "n")
        };
        let status = AgentStatus::default();
        let run = super::run(config, outbox, &status, std::future::pending());
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), run)
            .await
            .expect("the agent kept running with a bad configuration");
        let Err(RunError::Config(ConfigError::Invalid { key, .. })) = result else {
            panic!("the agent ran with 0 held events: {result:?}");
        };
        assert_eq!(key, "sensor_hold.max_events");
    }
}
