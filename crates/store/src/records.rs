//! Records that only the store and the server exchange.

use palisade_model::{
    AgentLosses, CpuEventsLost, Exception, FindingKind, HostFacts, Role, SensorContextLosses,
    Timestamp, WhitelistMatcher,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What ingest applies to incoming reports.
#[derive(Debug, Clone, Default)]
pub struct HandlingPolicy {
    /// Enabled whitelist rules with their ids (a hit increments the rule's counter).
    pub whitelist: Vec<(Uuid, WhitelistMatcher)>,
    /// Exceptions for baseline risks.
    pub exceptions: Vec<Exception>,
}

/// What ingest did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// Reports that created a new finding.
    pub created: u64,
    /// Reports aggregated into an existing finding.
    pub aggregated: u64,
    /// Reports suppressed by a whitelist rule.
    pub suppressed: u64,
    /// Reports whose id had been ingested before (resent batches).
    pub duplicates: u64,
    /// Kinds and ids of the findings created, in report order (for notifications).
    pub created_ids: Vec<(FindingKind, Uuid)>,
}

/// Which findings a handling action applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These findings.
    Ids(Vec<Uuid>),
    /// Findings "similar" to one: the same rule, optionally on the same asset.
    Similar {
        /// The rule name.
        rule: String,
        /// Only on this asset.
        asset_id: Option<Uuid>,
    },
}

/// A stored API token. The secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id (the part of the token before the secret).
    pub id: String,
    /// A name for people (`ci`, `alice`, `agent node-1`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// argon2 PHC string of the secret.
    #[serde(skip_serializing)]
    pub secret_hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// For agent tokens, the agent.
    pub agent_id: Option<Uuid>,
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Id.
    pub id: Uuid,
    /// Name (the host name by default).
    pub name: String,
    /// Cluster it reports for.
    pub cluster: String,
    /// When it joined.
    pub joined_at: Timestamp,
    /// When it last reported.
    pub last_seen: Timestamp,
    /// Host facts it reported.
    pub facts: HostFacts,
    /// What it reported lost, over all its processes.
    pub losses: NodeLosses,
}

/// What a node's agent reported lost ([`AgentLosses`]), summed over the agent's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLosses {
    /// Kernel events the node's sensor lost.
    pub sensor_events: u64,
    /// Reports of the firewall's connect programs that were lost.
    pub connect_reports: u64,
    /// What the node's sensor could not attach to the events it delivered.
    #[serde(default)]
    pub sensor_context: SensorContextLosses,
    /// When a loss was last counted.
    #[serde(default)]
    pub last_loss_at: Option<Timestamp>,
    /// The counters of the newest agent process, as last counted: what its next report's
    /// growth is measured from.
    #[serde(default)]
    pub latest: Option<AgentLosses>,
}

/// What one [`AgentLosses`] report added to its node's [`NodeLosses`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossIncrease {
    /// Kernel events newly lost.
    pub sensor_events: u64,
    /// `sensor_events` by the CPU that lost them (the CPUs that lost any, by number).
    pub sensor_events_by_cpu: Vec<CpuEventsLost>,
    /// Connect reports newly lost.
    pub connect_reports: u64,
    /// Context the sensor newly could not attach to events.
    pub sensor_context: SensorContextLosses,
}

impl NodeLosses {
    /// Counts an agent's `report` in and returns what it added. The counters of one process
    /// only grow, so: the first report of a new process adds all of its counters (the
    /// previous process's are in the totals already: an agent restart is not a loss
    /// undone); a later report of the same process adds its growth over the counters last
    /// counted, and one with smaller counters (a batch stored after a newer one) adds
    /// nothing; a report of a process that started before the newest one (a batch delayed
    /// across a restart) adds nothing.
    pub fn count(&mut self, report: &AgentLosses, now: Timestamp) -> LossIncrease {
        let increase = match &mut self.latest {
            Some(latest) if latest.process == report.process => {
                let increase = LossIncrease {
                    sensor_events: report.sensor_events.saturating_sub(latest.sensor_events),
                    sensor_events_by_cpu: CpuEventsLost::combine(
                        &report.sensor_events_by_cpu,
                        &latest.sensor_events_by_cpu,
                        u64::saturating_sub,
                    ),
                    connect_reports: report
                        .connect_reports
                        .saturating_sub(latest.connect_reports),
                    sensor_context: report
                        .sensor_context
                        .combine(&latest.sensor_context, u64::saturating_sub),
                };
                latest.sensor_events = latest.sensor_events.max(report.sensor_events);
                latest.sensor_events_by_cpu = CpuEventsLost::combine(
                    &latest.sensor_events_by_cpu,
                    &report.sensor_events_by_cpu,
                    u64::max,
                );
                latest.connect_reports = latest.connect_reports.max(report.connect_reports);
                latest.sensor_context = latest
                    .sensor_context
                    .combine(&report.sensor_context, u64::max);
                increase
            }
            Some(latest) if report.process_started_at < latest.process_started_at => {
                return LossIncrease::default();
            }
            _ => {
                self.latest = Some(report.clone());
                LossIncrease {
                    sensor_events: report.sensor_events,
                    sensor_events_by_cpu: CpuEventsLost::combine(
                        &report.sensor_events_by_cpu,
                        &[],
                        |reported, _| reported,
                    ),
                    connect_reports: report.connect_reports,
                    sensor_context: report.sensor_context,
                }
            }
        };
        self.sensor_events = self.sensor_events.saturating_add(increase.sensor_events);
        self.connect_reports = self
            .connect_reports
            .saturating_add(increase.connect_reports);
        self.sensor_context = self
            .sensor_context
            .combine(&increase.sensor_context, u64::saturating_add);
        if increase != LossIncrease::default() {
            self.last_loss_at = Some(now);
        }
        increase
    }
}

/// A cluster with its open findings per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// The cluster name.
    pub name: String,
    /// Open alerts.
    pub open_alerts: u64,
    /// Open vulnerabilities.
    pub open_vulnerabilities: u64,
    /// Open baseline risks.
    pub open_baseline_risks: u64,
    /// Open firewall alerts.
    pub open_firewall_alerts: u64,
}

/// Findings of one rule (vulnerability id, check id) taken together, as the console's
/// vulnerability and baseline views list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingGroup {
    /// The rule, vulnerability id or check id shared by the group.
    pub rule: String,
    /// A title of one of its findings.
    pub title: String,
    /// The highest severity in the group.
    pub severity: palisade_model::Severity,
    /// A category of one of its findings.
    pub category: String,
    /// Findings in the group.
    pub findings: u64,
    /// Findings in the group that are open.
    pub open: u64,
    /// Distinct affected assets.
    pub assets: u64,
    /// Whether a fixed version is known for at least one finding (vulnerabilities).
    pub fix_available: bool,
    /// Latest observation in the group.
    pub last_seen: Timestamp,
    /// The first of its findings' packages by name (vulnerabilities; empty for checks).
    pub package: String,
    /// Distinct packages among its findings (vulnerabilities; 0 for checks).
    pub packages: u64,
}

/// Equal time intervals for a chart: `buckets` intervals of `width_ms` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBuckets {
    /// Start of the first interval.
    pub start: Timestamp,
    /// Width of each interval in milliseconds (at least 1).
    pub width_ms: i64,
    /// Number of intervals (1..=366).
    pub buckets: u32,
}

#[cfg(test)]
mod tests {
    use palisade_model::{AgentLosses, CpuEventsLost, SensorContextLosses, Timestamp};
    use uuid::Uuid;

    use crate::{LossIncrease, NodeLosses};

    fn report(
        process: Uuid,
        started_at: i64,
        sensor_events: u64,
        connect_reports: u64,
    ) -> AgentLosses {
        AgentLosses {
            process,
            process_started_at: Timestamp(started_at),
            sensor_events,
            sensor_events_by_cpu: Vec::new(),
            connect_reports,
            sensor_context: SensorContextLosses::default(),
        }
    }

    fn increase(sensor_events: u64, connect_reports: u64) -> LossIncrease {
        LossIncrease {
            sensor_events,
            connect_reports,
            ..LossIncrease::default()
        }
    }

    /// Growth within a process, a stale batch, a restart (counters go back to zero and grow
    /// again), and a batch of the old process delayed past the restart: the totals are what
    /// the processes lost, each loss counted once.
    #[test]
    fn losses_sum_over_agent_processes_and_ignore_stale_reports() {
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let mut losses = NodeLosses::default();
        let at = Timestamp(5_000);
        assert_eq!(
            losses.count(&report(first, 1_000, 0, 0), at),
            increase(0, 0)
        );
        assert_eq!(losses.last_loss_at, None, "no loss yet");
        assert_eq!(
            losses.count(&report(first, 1_000, 3, 10), at),
            increase(3, 10)
        );
        assert_eq!(
            losses.count(&report(first, 1_000, 5, 10), Timestamp(6_000)),
            increase(2, 0)
        );
        // A batch sent before the last one, stored after it.
        assert_eq!(
            losses.count(&report(first, 1_000, 3, 10), at),
            increase(0, 0)
        );
        assert_eq!((losses.sensor_events, losses.connect_reports), (5, 10));
        // The agent restarts: its counters start again from zero.
        assert_eq!(
            losses.count(&report(second, 9_000, 1, 0), at),
            increase(1, 0)
        );
        assert_eq!(
            losses.count(&report(second, 9_000, 1, 4), at),
            increase(0, 4)
        );
        // The old process's batch, delayed across the restart.
        assert_eq!(
            losses.count(&report(first, 1_000, 7, 12), at),
            increase(0, 0)
        );
        assert_eq!(
            (
                losses.sensor_events,
                losses.connect_reports,
                losses.last_loss_at
            ),
            (6, 14, Some(at))
        );
        assert_eq!(losses.latest, Some(report(second, 9_000, 1, 4)));
    }

    /// The sensor's context losses are counted like the lost events: growth within a
    /// process, nothing for a stale batch, everything of a new process.
    #[test]
    fn sensor_context_losses_sum_like_the_lost_events() {
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let with_context = |process, started_at, counts| AgentLosses {
            sensor_context: SensorContextLosses::from_counts(counts),
            ..report(process, started_at, 0, 0)
        };
        let context = |increase: LossIncrease| increase.sensor_context.counts();
        let mut losses = NodeLosses::default();
        let at = Timestamp(5_000);
        assert_eq!(
            context(losses.count(&with_context(first, 1_000, [1, 0, 2, 0, 3, 1]), at)),
            [1, 0, 2, 0, 3, 1]
        );
        assert_eq!(
            context(losses.count(&with_context(first, 1_000, [1, 4, 2, 0, 5, 1]), at)),
            [0, 4, 0, 0, 2, 0]
        );
        // A stale batch of the same process adds nothing, and does not lower what the next
        // report's growth is measured from.
        assert_eq!(
            context(losses.count(&with_context(first, 1_000, [0, 0, 0, 0, 4, 0]), at)),
            [0; 6]
        );
        assert_eq!(
            context(losses.count(&with_context(first, 1_000, [1, 4, 2, 0, 6, 1]), at)),
            [0, 0, 0, 0, 1, 0]
        );
        assert_eq!(
            context(losses.count(&with_context(second, 9_000, [0, 0, 0, 7, 1, 2]), at)),
            [0, 0, 0, 7, 1, 2]
        );
        assert_eq!(losses.sensor_context.counts(), [1, 4, 2, 7, 7, 3]);
        assert_eq!(losses.last_loss_at, Some(at));
    }

    /// The lost events by CPU are counted like the totals, CPU by CPU: growth within a
    /// process, nothing for a stale batch, everything of a new process; a CPU that did not
    /// grow adds nothing.
    #[test]
    fn lost_events_by_cpu_sum_like_the_totals() {
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let lost = |pairs: &[(u32, u64)]| -> Vec<CpuEventsLost> {
            pairs
                .iter()
                .map(|&(cpu, lost)| CpuEventsLost { cpu, lost })
                .collect()
        };
        let by_cpu = |process, started_at, pairs: &[(u32, u64)]| AgentLosses {
            sensor_events_by_cpu: lost(pairs),
            ..report(
                process,
                started_at,
                pairs.iter().map(|pair| pair.1).sum(),
                0,
            )
        };
        let mut losses = NodeLosses::default();
        let at = Timestamp(5_000);
        let grown = losses.count(&by_cpu(first, 1_000, &[(1, 40)]), at);
        assert_eq!(grown.sensor_events_by_cpu, lost(&[(1, 40)]));
        let grown = losses.count(&by_cpu(first, 1_000, &[(0, 2), (1, 45)]), at);
        assert_eq!(grown.sensor_events_by_cpu, lost(&[(0, 2), (1, 5)]));
        assert_eq!(grown.sensor_events, 7);
        // Stored after the newer one: nothing, and the next growth is measured from the newer.
        let stale = losses.count(&by_cpu(first, 1_000, &[(1, 41)]), at);
        assert_eq!(stale.sensor_events_by_cpu, []);
        let grown = losses.count(&by_cpu(first, 1_000, &[(0, 2), (1, 46)]), at);
        assert_eq!(grown.sensor_events_by_cpu, lost(&[(1, 1)]));
        // The next process starts from zero.
        let grown = losses.count(&by_cpu(second, 9_000, &[(1, 3)]), at);
        assert_eq!(grown.sensor_events_by_cpu, lost(&[(1, 3)]));
        assert_eq!(losses.sensor_events, 51);
    }
}
