//! The agent link's wire format: joining, and batches of reports with acknowledgements.
//!
//! Delivery is at-least-once from the agent's outbox and exactly-once in the store: every
//! [`FindingReport`] carries an idempotency id that the server stores with it, so a batch
//! resent after a crash or a lost acknowledgement adds nothing twice.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Asset, FindingReport, HostFacts, Timestamp};

/// Exchanges a join token for an agent credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Agent name (the host name by default).
    pub name: String,
    /// The cluster the agent reports for.
    pub cluster: String,
    /// Facts about the host.
    pub facts: HostFacts,
}

/// The agent's credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinResponse {
    /// The agent's id.
    pub agent_id: Uuid,
    /// Bearer token for the agent's later requests (role `agent`).
    pub token: String,
}

/// Largest number of reports in one batch. Under a backlog the server commits a batch at
/// once, and each commit writes every page it dirtied to the WAL: a new alert dirties a page
/// of each randomly keyed index (by asset, by dedupe key), whatever the batch's size, so a
/// larger batch pays those pages once for more alerts (the link bench, 300,000 new alerts:
/// 48,800 alerts/s with batches of 5,000, 58,300 with 20,000, docs/benchmarks.md). 20,000
/// alerts of the sensor's size are about 15 MiB of JSON, under [`MAX_BATCH_BYTES`].
pub const MAX_BATCH_REPORTS: usize = 20_000;

/// Largest body of one batch, in bytes: the server refuses more (HTTP 413), and an agent ends
/// a batch before the report that would take it past this.
pub const MAX_BATCH_BYTES: usize = 32 << 20;

/// One batch from an agent.
///
/// `R` is how a report is held: the server reads [`FindingReport`]s; an agent may send the
/// reports as the JSON its outbox already holds (`Box<serde_json::value::RawValue>`), which
/// is the same document without decoding and encoding every report again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentBatch<R = FindingReport> {
    /// The sequence number of the last outbox entry in this batch; echoed in the ack.
    pub sequence: u64,
    /// Findings observed.
    #[serde(default = "Vec::new")]
    pub reports: Vec<R>,
    /// Assets to register or refresh (the node itself, its containers, images).
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// What the agent process lost so far (the sensor's kernel events, the firewall's connect
    /// reports): counters since it started, so a batch that is lost or resent changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub losses: Option<AgentLosses>,
    /// Current host facts (heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
}

/// What one agent process lost since it started: counters that only grow while it runs and
/// start again from zero in its next process, which has a new `process` id.
///
/// The server sums them per node: a new process adds its counters to what the previous ones
/// lost; a report of the same process adds its growth; a report older than the last one
/// counted (two batches travel at once, and may be stored in either order) or of an older
/// process (a batch delayed across a restart) adds nothing.
///
/// Unknown fields are ignored here (unlike the rest of a batch): a newer agent's additional
/// counters must not make an older server refuse its batches, nor an older server fail to read
/// the counters a newer one stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentLosses {
    /// The agent process (a new id at every start).
    pub process: Uuid,
    /// When the process started.
    pub process_started_at: Timestamp,
    /// Kernel events the sensor lost (its ring buffer was full).
    pub sensor_events: u64,
    /// `sensor_events` by the CPU whose probes lost them: the CPUs that lost any, by CPU
    /// number (their sum is `sensor_events`). Left out while empty, so that a server from
    /// before these counts takes such an agent's batches (an older agent sends none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensor_events_by_cpu: Vec<CpuEventsLost>,
    /// Reports of the firewall's connect programs that were lost (their ring buffer or the
    /// reader's queue was full).
    pub connect_reports: u64,
    /// What the sensor could not attach to the events it delivered. Left out while nothing
    /// was lost, so that a server from before these counts takes such an agent's batches.
    #[serde(default, skip_serializing_if = "SensorContextLosses::is_empty")]
    pub sensor_context: SensorContextLosses,
}

/// The kernel events one CPU's sensor probes lost: the ring buffer was full when they wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CpuEventsLost {
    /// The CPU's number (below [`MAX_CPUS`]).
    pub cpu: u32,
    /// Events lost on it.
    pub lost: u64,
}

/// CPU numbers are below this: the largest `NR_CPUS` a Linux kernel is built with. A
/// report's counts of higher CPU numbers are not taken (no kernel has them).
pub const MAX_CPUS: u32 = 8_192;

impl CpuEventsLost {
    /// Per CPU, `combine` of its count in `mine` and in `theirs` (0 where a list lacks the
    /// CPU; a CPU listed twice counts the sum), by CPU number, without the CPUs whose result
    /// is 0 and those numbered [`MAX_CPUS`] or higher.
    pub fn combine(
        mine: &[CpuEventsLost],
        theirs: &[CpuEventsLost],
        combine: impl Fn(u64, u64) -> u64,
    ) -> Vec<CpuEventsLost> {
        let mut by_cpu = std::collections::BTreeMap::<u32, (u64, u64)>::new();
        for (side, list) in [(0, mine), (1, theirs)] {
            for count in list.iter().filter(|count| count.cpu < MAX_CPUS) {
                let counts = by_cpu.entry(count.cpu).or_default();
                let slot = if side == 0 {
                    &mut counts.0
                } else {
                    &mut counts.1
                };
                *slot = slot.saturating_add(count.lost);
            }
        }
        by_cpu
            .into_iter()
            .map(|(cpu, (mine, theirs))| CpuEventsLost {
                cpu,
                lost: combine(mine, theirs),
            })
            .filter(|count| count.lost > 0)
            .collect()
    }
}

/// What an agent process's sensor could not attach to the events it delivered, counted since
/// the process started like [`AgentLosses`]: the events reached the rules, with less context
/// (container metadata, ancestry) than they should have had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SensorContextLosses {
    /// Events held for their container's metadata that went out without it (the wait's
    /// limit, or the bound of held events).
    pub container_metadata_missing: u64,
    /// Container metadata look-ups not queued because the look-up queue was full.
    pub container_lookups_dropped: u64,
    /// Exited ancestors dropped from the full process table: the ancestries of their live
    /// descendants end below them.
    pub process_ancestors_evicted: u64,
    /// Processes the full process table could not record: their events carry no ancestry.
    pub processes_untracked: u64,
    /// Processes of a cgroup whose events were held for its container that left the process
    /// table meanwhile, past the bound of those noted for the answer: held events' ancestries
    /// name them without their container.
    pub held_ancestors_unattributed: u64,
    /// User or group files (`/etc/passwd`, `/etc/group` of the host or of a container) read
    /// only up to the sensor's size limit (1 MiB), once per version of a file: the users and
    /// groups listed past it have no names in events (`user.name` and the like are absent).
    pub names_files_cut: u64,
}

impl SensorContextLosses {
    /// The counters' names, in the order of [`SensorContextLosses::counts`].
    pub const NAMES: [&'static str; 6] = [
        "container_metadata_missing",
        "container_lookups_dropped",
        "process_ancestors_evicted",
        "processes_untracked",
        "held_ancestors_unattributed",
        "names_files_cut",
    ];

    /// The counters, in the order of [`SensorContextLosses::NAMES`].
    pub fn counts(&self) -> [u64; 6] {
        [
            self.container_metadata_missing,
            self.container_lookups_dropped,
            self.process_ancestors_evicted,
            self.processes_untracked,
            self.held_ancestors_unattributed,
            self.names_files_cut,
        ]
    }

    /// The counters from their values in the order of [`SensorContextLosses::NAMES`].
    pub fn from_counts(counts: [u64; 6]) -> SensorContextLosses {
        let [
            container_metadata_missing,
            container_lookups_dropped,
            process_ancestors_evicted,
            processes_untracked,
            held_ancestors_unattributed,
            names_files_cut,
        ] = counts;
        SensorContextLosses {
            container_metadata_missing,
            container_lookups_dropped,
            process_ancestors_evicted,
            processes_untracked,
            held_ancestors_unattributed,
            names_files_cut,
        }
    }

    /// Each counter combined with the same one of `other` by `combine`.
    pub fn combine(
        &self,
        other: &SensorContextLosses,
        combine: impl Fn(u64, u64) -> u64,
    ) -> SensorContextLosses {
        let (mine, theirs) = (self.counts(), other.counts());
        SensorContextLosses::from_counts(std::array::from_fn(|index| {
            combine(mine[index], theirs[index])
        }))
    }

    /// Whether every counter is zero.
    pub fn is_empty(&self) -> bool {
        self.counts() == [0; 6]
    }
}

/// The server's acknowledgement: everything up to `sequence` is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAck {
    /// The batch's sequence number.
    pub sequence: u64,
    /// Reports that created findings.
    pub created: u64,
    /// Reports aggregated into existing findings.
    pub aggregated: u64,
    /// Reports suppressed by whitelist rules.
    pub suppressed: u64,
    /// Reports already stored before (resent).
    pub duplicates: u64,
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use crate::{AgentLosses, CpuEventsLost, MAX_CPUS, SensorContextLosses, Timestamp};

    /// The sensor's context losses go on the wire only when there are some, so that a server
    /// from before them takes the batches of an agent that lost none; both forms read back.
    #[test]
    fn sensor_context_losses_are_sent_only_when_there_are_some() {
        let mut losses = AgentLosses {
            process: Uuid::nil(),
            process_started_at: Timestamp(1_000),
            sensor_events: 3,
            sensor_events_by_cpu: Vec::new(),
            connect_reports: 0,
            sensor_context: SensorContextLosses::default(),
        };
        let json = serde_json::to_value(&losses).unwrap();
        assert!(json.get("sensor_context").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<AgentLosses>(json).unwrap(), losses);

        losses.sensor_context.held_ancestors_unattributed = 7;
        let json = serde_json::to_value(&losses).unwrap();
        assert_eq!(
            json["sensor_context"],
            serde_json::json!({
                "container_metadata_missing": 0,
                "container_lookups_dropped": 0,
                "process_ancestors_evicted": 0,
                "processes_untracked": 0,
                "held_ancestors_unattributed": 7,
                "names_files_cut": 0,
            })
        );
        assert_eq!(serde_json::from_value::<AgentLosses>(json).unwrap(), losses);
    }

    /// A newer agent's counters unknown here are ignored, at both levels, so that its batches
    /// (and what a newer server stored) still read.
    #[test]
    fn loss_counters_unknown_here_are_ignored() {
        let json = serde_json::json!({
            "process": Uuid::nil(),
            "process_started_at": Timestamp(1_000),
            "sensor_events": 3,
            "connect_reports": 1,
            "counted_by_a_newer_agent": 9,
            "sensor_context": {"processes_untracked": 2, "also_newer": 5},
        });
        let losses = serde_json::from_value::<AgentLosses>(json).unwrap();
        assert_eq!((losses.sensor_events, losses.connect_reports), (3, 1));
        assert_eq!(losses.sensor_context.processes_untracked, 2);
    }

    /// The lost events by CPU go on the wire only when a CPU lost some, so that a server from
    /// before them takes the batches; a batch of an agent from before them reads.
    #[test]
    fn lost_events_by_cpu_are_sent_only_when_a_cpu_lost_some() {
        let mut losses = AgentLosses {
            process: Uuid::nil(),
            process_started_at: Timestamp(1_000),
            sensor_events: 0,
            sensor_events_by_cpu: Vec::new(),
            connect_reports: 0,
            sensor_context: SensorContextLosses::default(),
        };
        let json = serde_json::to_value(&losses).unwrap();
        assert!(json.get("sensor_events_by_cpu").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<AgentLosses>(json).unwrap(), losses);

        losses.sensor_events = 9;
        losses.sensor_events_by_cpu = vec![CpuEventsLost { cpu: 1, lost: 9 }];
        let json = serde_json::to_value(&losses).unwrap();
        assert_eq!(
            json["sensor_events_by_cpu"],
            serde_json::json!([{"cpu": 1, "lost": 9}])
        );
        assert_eq!(serde_json::from_value::<AgentLosses>(json).unwrap(), losses);
    }

    /// Lost counts by CPU combine CPU by CPU, a CPU missing on one side counting 0 there;
    /// zeros, CPU numbers no kernel has and duplicates do not make series of their own.
    #[test]
    fn lost_events_by_cpu_combine_cpu_by_cpu() {
        let lost = |pairs: &[(u32, u64)]| -> Vec<CpuEventsLost> {
            pairs
                .iter()
                .map(|&(cpu, lost)| CpuEventsLost { cpu, lost })
                .collect()
        };
        let latest = lost(&[(0, 4), (3, 2)]);
        let report = lost(&[(3, 7), (0, 4), (5, 1), (MAX_CPUS, 50)]);
        assert_eq!(
            CpuEventsLost::combine(&report, &latest, u64::saturating_sub),
            lost(&[(3, 5), (5, 1)]),
            "growth: CPU 0 did not grow, CPU 5 is new, CPU {MAX_CPUS} is no CPU"
        );
        assert_eq!(
            CpuEventsLost::combine(&latest, &report, u64::max),
            lost(&[(0, 4), (3, 7), (5, 1)])
        );
        assert_eq!(
            CpuEventsLost::combine(&lost(&[(2, 1), (2, 2), (1, 0)]), &[], |mine, _| mine),
            lost(&[(2, 3)])
        );
    }

    /// The counters' names follow their order, and `combine` works counter by counter.
    #[test]
    fn sensor_context_counters_combine_by_name() {
        let counts = [1, 2, 3, 4, 5, 6];
        let losses = SensorContextLosses::from_counts(counts);
        assert_eq!(losses.counts(), counts);
        let json = serde_json::to_value(losses).unwrap();
        for (name, count) in SensorContextLosses::NAMES.iter().zip(counts) {
            assert_eq!(json[name], count, "{name}: {json}");
        }
        let grown = SensorContextLosses::from_counts([1, 5, 3, 9, 4, 8]);
        assert_eq!(
            grown.combine(&losses, u64::saturating_sub).counts(),
            [0, 3, 0, 5, 0, 2]
        );
        assert!(SensorContextLosses::default().is_empty() && !losses.is_empty());
    }
}
