//! The detection thread's writes into the outbox, which may fail (a full disk, a locked or
//! damaged database file) without stopping detection or losing what was taken.
//!
//! A push that fails keeps its reports and its observers' receipts here, and every later
//! call retries them first, with the reports detected since behind them. The receipts are
//! handed back to the observers ([`Detector::delivered`]) only once the outbox holds them,
//! so what they stand for stays where it was until then: the firewall's taken attempt counts
//! stay in the kernel (its programs go on counting into the next epoch meanwhile). So a take
//! is never lost to a failing outbox, also when the agent stops or dies before the outbox
//! recovers (its pins keep the counts for the next agent).
//!
//! While the outbox fails, the reports detected since the failure wait behind the failed
//! push up to [`OutboxWriter::MAX_WAITING`]; more are dropped and counted. The bound does not
//! cover the failed push itself, which is never cut, however large: its receipts stand for
//! counts the kernel deletes once they are delivered (the firewall's take), and which of its
//! reports a receipt stands for is not known here, so cutting any of them and writing the
//! receipts later could lose attempts nobody holds any more. So what waits is at most
//! [`OutboxWriter::MAX_WAITING`] plus one write's reports, what one detection tick gave: the
//! firewall's alerts of one take (at most 65,536 distinct alerts, each carrying its attempts)
//! and the rules' alerts of one poll of the sensor. The failures and drops
//! are counted ([`OutboxWriter::status`], in the agent's status file) and, once the outbox
//! takes writes again, raised as a high-severity node alert ([`OUTBOX_FAILED_RULE`]):
//! nothing is lost silently.

use palisade_model::{FindingReport, Timestamp};

use crate::detect::{NodeHealth, node_health_report};
use crate::{Detector, OutboxError, Receipt};

/// The rule name of the node alert about outbox writes that failed.
pub const OUTBOX_FAILED_RULE: &str = "Outbox writes failed";

/// How the detection thread's outbox writes went since the agent started (also as the
/// agent's status file keeps it: a file format, so a field missing from a file written by
/// another build reads as its default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OutboxWriteStatus {
    /// Pushes that failed.
    pub write_failures: u64,
    /// Since when the outbox fails, while it does.
    pub failing_since: Option<Timestamp>,
    /// Reports dropped because too many waited for a failing outbox.
    pub reports_dropped: u64,
    /// Reports waiting for the outbox now.
    pub waiting: u64,
}

/// The outbox failure in progress.
#[derive(Debug, Clone, Copy)]
struct Failing {
    since: Timestamp,
    failures: u64,
    dropped: u64,
}

/// Writes the detector's reports and receipts into the outbox, keeping and retrying what a
/// failed write held (see the module documentation).
#[derive(Debug, Default)]
pub struct OutboxWriter {
    reports: Vec<FindingReport>,
    receipts: Vec<Receipt>,
    failing: Option<Failing>,
    write_failures: u64,
    reports_dropped: u64,
}

impl OutboxWriter {
    /// The most reports that wait behind a failed push; more are dropped and counted.
    pub const MAX_WAITING: usize = 100_000;

    /// Takes the detector's new reports and receipts and writes them with `push` (reports
    /// and receipts into the outbox in one transaction), after what a failed write left;
    /// then tells the detector the receipts are delivered. When `push` fails, everything
    /// stays for the next call and the error is returned; when the outbox takes writes again
    /// after failing, the failure's node alert goes to the detector (written by the next
    /// call).
    pub fn write(
        &mut self,
        detector: &mut Detector,
        push: impl FnOnce(&[FindingReport], &[Receipt]) -> Result<(), OutboxError>,
    ) -> Result<(), OutboxError> {
        let new_reports = detector.take_reports();
        let room = match self.failing {
            // The failed push's reports are kept whole (a take's alerts are among them);
            // only what came after waits within the bound.
            Some(_) => Self::MAX_WAITING.saturating_sub(self.reports.len()),
            None => usize::MAX,
        };
        let dropped = new_reports.len().saturating_sub(room) as u64;
        self.reports.extend(new_reports.into_iter().take(room));
        self.receipts.extend(detector.take_receipts());
        if let Some(failing) = &mut self.failing {
            failing.dropped += dropped;
        }
        self.reports_dropped += dropped;
        if self.reports.is_empty() && self.receipts.is_empty() {
            return Ok(());
        }
        match push(&self.reports, &self.receipts) {
            Ok(()) => {
                self.reports.clear();
                detector.delivered(&std::mem::take(&mut self.receipts));
                if let Some(failing) = self.failing.take() {
                    let now = Timestamp::now();
                    tracing::warn!(
                        failures = failing.failures,
                        dropped = failing.dropped,
                        since = %failing.since,
                        "The outbox takes writes again."
                    );
                    detector.record_report(outbox_failed_report(&failing, detector, now));
                }
                Ok(())
            }
            Err(error) => {
                self.write_failures += 1;
                // Not failing before: nothing was dropped (no bound applies then).
                let failing = self.failing.get_or_insert(Failing {
                    since: Timestamp::now(),
                    failures: 0,
                    dropped: 0,
                });
                failing.failures += 1;
                Err(error)
            }
        }
    }

    /// How the writes went.
    pub fn status(&self) -> OutboxWriteStatus {
        OutboxWriteStatus {
            write_failures: self.write_failures,
            failing_since: self.failing.map(|failing| failing.since),
            reports_dropped: self.reports_dropped,
            waiting: self.reports.len() as u64,
        }
    }

    /// Whether a write failed and its reports wait.
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }
}

/// The node alert about a failure of the outbox that ended.
fn outbox_failed_report(failing: &Failing, detector: &Detector, at: Timestamp) -> FindingReport {
    let (cluster, node) = detector.node();
    node_health_report(
        cluster,
        node,
        NodeHealth {
            rule: OUTBOX_FAILED_RULE,
            title: format!(
                "{} outbox writes failed on {node} since {}; {} reports dropped",
                failing.failures, failing.since, failing.dropped
            ),
            description: "The agent could not write into its outbox (disk full, or its \
                          database file locked or damaged). Detection went on: what it found \
                          waited in memory and was written once the outbox took writes again, \
                          and the firewall's attempt counts stayed in the kernel; reports \
                          beyond the agent's bound were dropped.",
            output: format!(
                "{} failed writes, {} reports dropped",
                failing.failures, failing.dropped
            ),
            suggested_response: "Check the agent's data directory: free space, the outbox \
                                 database file and its permissions.",
            raw_event: serde_json::json!({
                "outbox_write_failures": failing.failures,
                "failing_since": failing.since,
                "reports_dropped": failing.dropped,
            }),
        },
        at,
    )
}

#[cfg(test)]
mod tests;
