//! The firewall alerts of the connects the connect programs reported or counted since the
//! last tick, merged: the programs count a flood of identical connects in the kernel, and a
//! count taken at one tick can stand for hundreds of thousands of them. Each distinct alert
//! (its aggregation key and title) waits here as one report and a number, and leaves at the
//! tick as one report carrying that number as its attempts, which the server adds to its
//! finding's count: a flood costs one report per tick, however long it lasts, so nothing
//! waits past the tick that took it (the last tick at stop included).

use std::collections::HashMap;

use palisade_model::{Details, FindingReport, FirewallDetails};
use uuid::Uuid;

/// The most distinct alerts waiting; the attempts of a new one beyond it are dropped and
/// counted ([`WaitingAlerts::dropped`]).
const MAX_WAITING: usize = 65_536;

/// Alerts waiting for the tick: one report per distinct alert (its aggregation key and
/// title) and how many attempts it stands for.
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

    /// Sends every waiting alert as one report carrying its attempts (a fresh id each; more
    /// than [`FirewallDetails::MAX_ATTEMPTS`] in more than one).
    pub(super) fn send(&mut self, reports: &mut Vec<FindingReport>) {
        for (_, (alert, mut attempts)) in self.waiting.drain() {
            while attempts > 0 {
                let sent = attempts.min(u64::from(FirewallDetails::MAX_ATTEMPTS));
                let mut report = FindingReport {
                    id: Uuid::now_v7(),
                    ..alert.clone()
                };
                if let Details::FirewallAlert(details) = &mut report.details {
                    details.attempts = u32::try_from(sent).unwrap_or(FirewallDetails::MAX_ATTEMPTS);
                }
                reports.push(report);
                attempts -= sent;
            }
        }
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
                ..FirewallDetails::default()
            }),
            demo: false,
        }
    }

    /// (port, attempts) of each report, by port then attempts.
    fn sent_attempts(reports: &[FindingReport]) -> Vec<(u16, u32)> {
        let mut sent: Vec<(u16, u32)> = reports
            .iter()
            .map(|report| match &report.details {
                Details::FirewallAlert(details) => (details.port, details.attempts),
                other => panic!("{other:?}"),
            })
            .collect();
        sent.sort_unstable();
        sent
    }

    /// Attempts of one alert merge however they arrive and leave at the next send as one
    /// report carrying them (a count beyond a report's most in more than one), each with an
    /// id of its own; nothing waits after a send. Beyond the most distinct alerts waiting, a
    /// new one's attempts are counted as dropped, not kept.
    #[test]
    fn attempts_wait_merged_and_leave_as_one_report_carrying_them() {
        let mut waiting = WaitingAlerts::default();
        waiting.add(alert(5432), 7);
        waiting.add(alert(5432), 5);
        waiting.add(alert(80), 1);
        let mut sent = Vec::new();
        waiting.send(&mut sent);
        assert_eq!(sent_attempts(&sent), [(80, 1), (5432, 12)]);
        waiting.send(&mut sent);
        assert_eq!(sent.len(), 2, "nothing waits after a send");

        let beyond_one_report = u64::from(FirewallDetails::MAX_ATTEMPTS) + 3;
        waiting.add(alert(443), beyond_one_report);
        waiting.send(&mut sent);
        assert_eq!(
            sent_attempts(&sent[2..]),
            [(443, 3), (443, FirewallDetails::MAX_ATTEMPTS)]
        );
        let ids: std::collections::HashSet<Uuid> = sent.iter().map(|report| report.id).collect();
        assert_eq!(ids.len(), 4, "one id per report");
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
