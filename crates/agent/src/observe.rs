//! Event observers: consumers of the sensor's events other than the rules engine.
//!
//! The rules engine is one way to look at an event; the malware scanner (scan the executable
//! of every exec) and the container firewall (evaluate every connect) are others. Each is an
//! [`EventObserver`] registered on the [`Detector`](crate::Detector), so that one sensor and
//! one detection thread serve them all, and their reports reach the outbox like alerts do.

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_event::{Event, EventKind};
use palisade_model::{FindingReport, Timestamp};

use crate::Receipt;

/// Watches the sensor's events beside the rules engine and may raise finding reports.
///
/// Observers run on the detection thread, which must keep up with the kernel's ring buffer:
/// anything slow (scanning a file, a network call) belongs on a worker of the observer's own,
/// fed through a bounded queue.
pub trait EventObserver: Send {
    /// The event kinds this observer needs the sensor to report.
    fn kinds(&self) -> BTreeSet<EventKind>;

    /// Looks at one event, after the rules engine saw it; new reports go into `reports`.
    fn observe(&mut self, event: &Event, reports: &mut Vec<FindingReport>);

    /// Called regularly (at least every [`EventObserver::tick_interval`] on the sensor's
    /// thread) even when no event arrives: flush aggregated counts, pick up a new policy,
    /// collect a worker's results.
    fn tick(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
        let _ = (now, reports);
    }

    /// The longest this observer may wait between two ticks. The detection thread ticks
    /// at the shortest interval any observer asks for, and at
    /// [`Detector::DEFAULT_TICK_INTERVAL`](crate::Detector::DEFAULT_TICK_INTERVAL) when that
    /// is shorter.
    fn tick_interval(&self) -> Duration {
        crate::Detector::DEFAULT_TICK_INTERVAL
    }

    /// How many reports of the observer's own kernel source (not the sensor's events: the
    /// sensor counts those) were lost since it started, for the agent's status file and the
    /// drop counts its heartbeat sends. Only an observer with such a source (the firewall's
    /// connect programs) loses any.
    fn reports_lost(&self) -> u64 {
        0
    }

    /// The receipt of what the reports this observer gave out since the last call stand for,
    /// if any: the caller writes it into the outbox in the same transaction as those reports
    /// (and the other observers' beside them), then says so with
    /// [`EventObserver::delivered`]. Only an observer that must not lose nor repeat what it
    /// took from a source that outlives the agent (the firewall's pinned attempt counters)
    /// gives any.
    fn take_receipt(&mut self) -> Option<Receipt> {
        None
    }

    /// The outbox holds `receipt` (and so the reports given out with it): called after each
    /// push of receipts, and at start with the receipts an earlier agent left in the outbox,
    /// before the first tick. An observer ignores receipts not its own.
    fn delivered(&mut self, receipt: &Receipt) {
        let _ = receipt;
    }
}
