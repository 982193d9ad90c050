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

    /// How many attempts wait.
    pub(super) fn attempts(&self) -> u64 {
        self.waiting.values().map(|(_, waiting)| waiting).sum()
    }

    /// Attempts dropped because [`MAX_WAITING`] alerts were waiting.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_WAITING, WaitingAlerts};
    use palisade_model::{
        AffectedAsset, Details, FindingReport, FirewallDetails, Severity, Timestamp,
    };
    use uuid::Uuid;

    /// A block alert of shop/web to 10.9.0.1 on `port`.
    fn alert(port: u16) -> FindingReport {
        FindingReport {
            id: Uuid::now_v7(),
            observed_at: Timestamp(1_764_400_000_000),
            severity: Severity::High,
            rule: "web-to-outside".to_owned(),
            title: format!("web-to-outside: shop/web -> 10.9.0.1 {port}/TCP refused"),
            asset: AffectedAsset {
                cluster: "prod".to_owned(),
                namespace: Some("shop".to_owned()),
                pod: Some("web".to_owned()),
                ..AffectedAsset::default()
            },
            details: Details::FirewallAlert(FirewallDetails {
                source: "shop/web".to_owned(),
                destination: "10.9.0.1".to_owned(),
                destination_object: "outside".to_owned(),
                port,
                protocol: "TCP".to_owned(),
                mode: "block".to_owned(),
                rule_id: Some("web-to-outside".to_owned()),
                trace: Vec::new(),
            }),
            demo: false,
        }
    }

    /// Attempts of one alert merge however they arrive, leave within the budget, each with
    /// an id of its own, and wait for later sends; beyond the most distinct alerts waiting,
    /// a new one's attempts are counted as dropped, not kept.
    #[test]
    fn attempts_wait_merged_leave_within_the_budget_and_overflow_is_counted() {
        let mut waiting = WaitingAlerts::default();
        waiting.add(alert(5432), 7);
        waiting.add(alert(5432), 5);
        waiting.add(alert(80), 1);
        let mut sent = Vec::new();
        waiting.send(10, &mut sent);
        assert_eq!(sent.len(), 10);
        assert_eq!(waiting.attempts(), 3);
        waiting.send(10, &mut sent);
        assert_eq!(sent.len(), 13, "the rest at the next send");
        waiting.send(10, &mut sent);
        assert_eq!(sent.len(), 13, "nothing waits any more");
        let ids: std::collections::HashSet<Uuid> = sent.iter().map(|report| report.id).collect();
        assert_eq!(ids.len(), 13, "one id per attempt");
        let on_5432 = sent
            .iter()
            .filter(|report| report.title.contains(" 5432/"))
            .count();
        assert_eq!(on_5432, 12);
        assert_eq!(waiting.dropped(), 0);

        let mut full = WaitingAlerts::default();
        for port in 0..MAX_WAITING {
            let mut distinct = alert(80);
            distinct.title = format!("alert {port}");
            full.add(distinct, 1);
        }
        full.add(alert(80), 3);
        assert_eq!(full.dropped(), 3);
        full.add(alert(80), 4);
        assert_eq!(full.dropped(), 7, "a dropped alert is not kept");
    }
}
