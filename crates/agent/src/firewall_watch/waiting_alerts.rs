//! The firewall alerts of the connects the connect programs reported or counted, waiting to
//! be sent. The server counts a firewall alert's attempts as the reports it absorbed, so
//! each attempt leaves as one report; the programs count a flood of identical connects in
//! the kernel, and a count taken at one tick can stand for hundreds of thousands of them.
//! Those wait here as one report and a number, and at most [`MAX_SENT_PER_TICK`] leave per
//! tick: a flood's alerts arrive late rather than being lost, and what waits takes the
//! memory of one report per distinct alert, not per attempt.

use std::collections::HashMap;

use palisade_model::FindingReport;
use uuid::Uuid;

/// The most attempt reports sent per tick (50,000 a second at the default 200 ms drain):
/// about what the server's store ingests.
pub(super) const MAX_SENT_PER_TICK: u64 = 10_000;

/// The most distinct alerts waiting; the attempts of a new one beyond it are dropped and
/// counted ([`WaitingAlerts::dropped`]).
const MAX_WAITING: usize = 65_536;

/// Alerts waiting to be sent: one report per distinct alert (its aggregation key and title)
/// and how many attempts it still stands for.
#[derive(Default)]
pub(super) struct WaitingAlerts {
    waiting: HashMap<String, (FindingReport, u64)>,
    dropped: u64,
}

impl WaitingAlerts {
    /// Adds `attempts` attempts of `alert`: to the one already waiting with its key and
    /// title, or as a new one.
    pub(super) fn add(&mut self, alert: FindingReport, attempts: u64) {
        let key = format!("{}\n{}", alert.dedupe_key(), alert.title);
        if let Some((_, waiting)) = self.waiting.get_mut(&key) {
            *waiting += attempts;
        } else if self.waiting.len() < MAX_WAITING {
            self.waiting.insert(key, (alert, attempts));
        } else {
            self.dropped += attempts;
        }
    }

    /// Sends up to `budget` attempts, one report (a fresh id) each.
    pub(super) fn send(&mut self, budget: u64, reports: &mut Vec<FindingReport>) {
        let mut budget = budget;
        self.waiting.retain(|_, (alert, waiting)| {
            let sent = (*waiting).min(budget);
            reports.extend((0..sent).map(|_| FindingReport {
                id: Uuid::now_v7(),
                ..alert.clone()
            }));
            *waiting -= sent;
            budget -= sent;
            *waiting > 0
        });
    }

    /// Attempts dropped because [`MAX_WAITING`] alerts were waiting.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}
