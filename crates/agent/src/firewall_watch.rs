//! The container firewall in the agent: every connect and accept the sensor sees is
//! attributed to workloads, decided by the firewall engine, recorded as a flow, and — when
//! the policy refuses it or an `alert` rule matches — reported as a firewall alert. In block
//! mode the Palisade rules of every workload seen on this node are also enforced: by
//! `cgroup/connect4`/`connect6` programs on the workload's cgroup (a refused `connect()` fails
//! with `EPERM` before a packet exists; `cgroup/sendmsg4`/`sendmsg6` judge a datagram sent to
//! an address without a connect alike) and by an nftables table in its network namespace
//! (ingress, and what the programs cannot see). Both are installed only while the workload has
//! an `alert` or `block` rule, and removed when its last one is disabled or edited to `allow`,
//! when the workload leaves the policy, and when the agent stops.
//!
//! # Attribution
//!
//! The local end of a socket is the workload of the calling process: the pod named by the
//! container's Kubernetes identity, else the pod of the policy state whose IP is the socket's
//! local address, else the node (its address, as an external endpoint). The remote end is the
//! state's pod with the remote address, else that address outside the cluster. Loopback
//! traffic stays inside a workload and is ignored. A connection between two pods is counted
//! once, at the `connect`: an `accept` is only counted when its client is not a pod of the
//! state (it came from outside the cluster or from a host).
//!
//! # Alerts and attempts
//!
//! A violating attempt is reported with the aggregation key (cluster, source, destination,
//! port, protocol, UTC day, whatever rule decided) ([`FindingReport::dedupe_key`]), and a
//! report carries how many attempts it stands for, so the server keeps one finding per flow
//! and day and its count is the attempts count.
//!
//! Where a pod's connect programs are installed, they count each connect an `alert` or
//! `block` rule matches per match (cgroup, destination, port, protocol, rule, verdict) in
//! counters shared by every pod's programs ([`ConnectReports`]), and report a match's first
//! connect since the last take into one ring buffer beside them. The stream's own thread
//! empties that ring as reports arrive, into a bounded queue; the watch takes the queue and
//! the counts at every tick (at least every [`FirewallWatchConfig::connect_reports_drain`]),
//! so nothing that holds up the detection thread (a sensor loss's `/proc` re-read, a burst of
//! events, a slow outbox) holds up the ring: it only delays the alerts. A flood of identical
//! connects is one report and a count, however long it lasts: every attempt is alerted and
//! recorded. At each tick the attempts of one alert leave as one alert report carrying
//! their number ([`FirewallDetails::attempts`]), which the server adds to the finding's
//! count: a flood is one report per tick, so its alerts arrive at the next tick, and the
//! last tick when the agent stops takes what is left into the outbox. The reports and counts are the kernel's
//! own account of what it refused, which needs no sensor probe (a sensor without a connect
//! probe, or a connect to loopback that the sensor path ignores, is still alerted and
//! recorded as a flow). The sensor's view of those same connects is then neither alerted
//! nor recorded a second time, so each attempt counts once: before the watch judges a
//! connect the sensor saw, it takes the programs' reports (the program reported the match
//! before the call returned) and drops the sensor's view of a connect whose match (cgroup,
//! destination address and port) the programs reported or counted recently, whichever
//! policy is in force by then. Only a flood of distinct matches loses attempts: those that
//! found the counters (as many matches as the ring holds reports) and the ring (its size is
//! [`FirewallWatchConfig::connect_reports_ring`]) full, or (a report then standing for the
//! attempt) the reports the stream's reader keeps until their take is delivered (four rings'
//! worth) full, or more than 65,536 distinct alerts waiting; they are counted and raised as
//! a high-severity alert on the node ([`LOST_CONNECT_REPORTS_RULE`]). The sensor's view of
//! a connect without a report, when the policy in force says the programs report it, is
//! dropped while reports are being lost (within the last 10 to 20 s: the lost count stands
//! for it); otherwise the programs did not see that connect (it came before they were
//! installed or had the rule), and it is recorded as a flow as it went, without an alert.
//! The lost count (a BPF map read) is read at every tick and just before such a connect is
//! judged, not on every connect event: its alert leaves with the same tick's reports.
//! Like lost sensor events, the lost total ([`EventObserver::reports_lost`]) goes to the
//! agent's status file and into the drop counts of its heartbeat. In block mode pods are
//! also found from their execs, so that a sensor without network events (the fallback)
//! still gets them enforced and reported.
//!
//! # Policy updates
//!
//! The policy arrives whole through a [`PolicyUpdates`] channel (from the server poll in
//! [`poll_firewall_rules`], or any other feed) and is picked up on the next tick. The sensor
//! delivers its events some time after the calls (longer on a loaded host), so an event from
//! before the pick-up is judged by the policy it replaced (kept for a minute): a connect made
//! before a rule existed does not violate it.
//!
//! Connections already open that the new rules refuse are listed at each policy change (and
//! when a pod is first found), in both modes, for every pod found on this node (from its
//! connects and accepts, and in block mode its execs): each is a firewall alert of its own
//! ([`FirewallDetails::open_connection`]: direction, both ends, closed or not; alert name
//! [`FirewallDetails::open_connection_alert_name`]), which the server lists under the rule
//! that refuses it. In block mode they are closed (the kernel aborts the workload's socket and
//! resets the peer), so that an edit leaves nothing running that it refuses; in alert mode
//! they are left open. Only the Palisade rules' `block` verdicts are judged (the tier the
//! agent enforces), at most [`MAX_LISTED_CONNECTIONS`] at a time.
//!
//! # Which cgroup
//!
//! The connect programs go on the pod's cgroup2 directory — the nearest ancestor of the
//! connecting container's cgroup named after the pod's UID (`pod<uid>`, as kubelet names it
//! with either cgroup driver) — so that every container of the pod, including ones started
//! later, is covered; without a pod UID, on the container's own cgroup. Never on the cgroup2
//! root nor on a cgroup that holds the agent itself (the programs would then judge the
//! agent's and the host's own connects); for those only the nftables table is used. A refused
//! connect has no local address yet, so the calling process's cgroup id attributes it to its
//! workload.
//!
//! # Crashes: block mode fails closed
//!
//! With a pin directory ([`FirewallWatchConfig::pin_dir`]), every pod's connect programs
//! (their links, rule table and hits), its record (pod, cgroup, network namespace) and the
//! shared report stream (ring, attempt counters, lost count) are pinned in a bpf file
//! system. An agent that dies without stopping (`kill -9`, a crash) leaves them in force,
//! as it leaves the nftables tables: the programs go on refusing and counting. The next
//! agent started with the same directory takes it over before its first tick: the stream's
//! counters (every attempt is counted there, the first of a match too, so the attempts of
//! the dead agent's last tick and those made while it was dead are all in them), and each
//! pod's programs, switched to this build's in place. Until its first policy from the
//! server it keeps the dead agent's rules in force and leaves the counts in the kernel; that
//! policy then re-applies each pod's rules (or removes the pod's programs, table and record
//! when the policy no longer has it), and the first tick takes the counts into alerts. A
//! clean stop removes every pin (the programs go with it); `palisade firewall reset`
//! removes what an agent that will not come back left. A dead agent of a build whose pins
//! this one cannot take over (another layout) leaves its pods' programs refusing until the
//! first policy, when this agent's own, loaded with the pod's rules, take their place in
//! their links (no connect judged by both or by neither); the attempts its stream held
//! untaken (its counters, its kept reports and the reports in its ring that stood for an
//! attempt, read from where its reader stopped), and those its programs count until they
//! go, are counted as lost (in the lost-reports node alert and counts, at the first tick,
//! policy or not), not dropped silently, each once.
//!
//! A crash loses no attempt a tick took either, and alerts none twice while the outbox that
//! holds the take is there: a take reads one
//! epoch of the counters (its id: a serial pinned with them, starting at random for each new
//! stream) and leaves its counts in the kernel; the detection thread writes the take's
//! alerts and its receipt (the epoch, [`CONNECT_COUNTS_RECEIPT`]) into the outbox in one
//! transaction, and only then ([`EventObserver::delivered`]) are the counts deleted and the
//! epoch's generation counted into again. An agent that dies in between leaves the epoch in
//! the kernel; the next one, told at start by the outbox's receipt whether that epoch was
//! written, deletes it (written) or takes it again (not written). The pins also name the
//! outbox that takes the stream and the last epoch it delivered
//! ([`FirewallWatchConfig::outbox`]), so that a next agent with another outbox (a second
//! agent, or this one re-installed with a new data directory) knows the same: the epoch the
//! record names, or the one the named outbox's receipt holds while that outbox is there, is
//! deleted; otherwise the epoch is taken again (alerted twice if its alerts went with an
//! outbox that is gone). A delivery the kernel could not be told of is told again at each
//! tick; until then nothing new is taken. A report that stands for
//! an attempt (its match found the counters full) is as durable: the stream's reader keeps
//! it in a pinned map from the moment it leaves the ring until a delivered take deletes it,
//! and each take holds the kept reports with the counts. The test hook
//! `PALISADE_FIREWALL_TEST_PAUSE` (module `test_pause`) stops the watch inside that window so
//! that a test can kill the agent there.
//!
//! # Host-network pods
//!
//! A pod in the host's network namespace gets the connect programs only: an nftables table
//! there would change the host's networking. The programs judge only the pod's processes, so
//! the host's own connects are untouched; ingress rules for such a pod are reported as not
//! enforced.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use palisade_enforce::{
    ConnectCount, ConnectFilter, ConnectMatch, ConnectReports, ConnectReportsDrain,
    ConnectReportsRing, ConnectionsOf, DefenseMode, Delivered, FirewallPins, NetRule, NftFirewall,
    PinnedWorkload, RefusedClosing, RemovedStream, WorkloadFirewall, WorkloadIdentity, WorkloadPin,
    WorkloadRules, WouldRefuse, cgroup2_root, open_connections_refused_at, workload_rules,
};
use palisade_event::{Event, EventKind, FdKind, Payload, Protocol as SocketProtocol};
use palisade_firewall::{
    Decision, DirectionExplanation, Engine, FirewallRule, FlowEnd, ObservedFlow, OwnedEngine,
    PodId, Protocol, RuleAction, State, Verdict,
};
use palisade_model::proc_cgroup::unified_cgroup;
use palisade_model::{
    AffectedAsset, ConnectionDirection, Details, FindingReport, FirewallAction, FirewallDetails,
    OpenConnection, Severity, Timestamp,
};
use uuid::Uuid;

use crate::detect::{NodeHealth, node_health_report};
use crate::{EventObserver, OutboxIdentity, Receipt};

mod test_pause;
mod waiting_alerts;
use test_pause::{PausePoint, TestPause};
use waiting_alerts::WaitingAlerts;

/// How often recorded flows are appended to the flows file.
const FLOW_FLUSH_EVERY_MS: i64 = 10_000;
/// The most distinct flows kept between two flushes; more flush early.
const MAX_PENDING_FLOWS: usize = 50_000;
/// `connect` on a non-blocking socket: the attempt is under way.
const EINPROGRESS: i64 = 115;
/// Where `ip netns` keeps named network namespaces.
const NAMED_NETNS_DIR: &str = "/run/netns";
/// The most open connections listed at one policy change or pod found; the rest are counted
/// in a warning.
const MAX_LISTED_CONNECTIONS: usize = 4_096;

/// The source of the watch's receipts ([`Receipt`]): each take of the connect programs'
/// attempt counts, by its epoch.
pub const CONNECT_COUNTS_RECEIPT: &str = "firewall-connect-counts";

/// The rule name of the node alert about connect reports the kernel or the reader dropped.
pub const LOST_CONNECT_REPORTS_RULE: &str = "Firewall connect reports lost";

/// Sends new policies to a running [`FirewallWatch`].
pub type PolicyUpdates = mpsc::Sender<State>;

/// What a [`FirewallWatch`] does and where.
#[derive(Debug, Clone)]
pub struct FirewallWatchConfig {
    /// Cluster name for alerts.
    pub cluster: String,
    /// This node's name.
    pub node: String,
    /// Alert (report only) or block (also enforce).
    pub mode: DefenseMode,
    /// Where attributed flows are appended as JSON lines (for `palisade firewall learn`).
    pub flows_file: Option<PathBuf>,
    /// The size of the ring buffer the connect programs report into (and so of their
    /// attempt counters: as many matches as the ring holds reports). The stream's reader
    /// thread empties it as reports arrive into a queue of four rings' worth, which the
    /// watch takes at every tick, with the counts; connects of a new match that find the
    /// counters and the ring full, or the reports the reader keeps for a full counters'
    /// sake full, are lost (counted and alerted, see the module documentation).
    pub connect_reports_ring: ConnectReportsRing,
    /// The longest time between two takes of that queue (how late a report's alert may
    /// be): the watch's [`EventObserver::tick_interval`].
    pub connect_reports_drain: ConnectReportsDrain,
    /// In block mode, the directory in a bpf file system where the enforcement is pinned
    /// (see the module documentation's "Crashes"); `None` enforces without pins, so that
    /// the programs go with the process.
    pub pin_dir: Option<PathBuf>,
    /// The outbox the watch's alerts go into, named in the pins with each delivery of the
    /// programs' counts, so that a next agent with another outbox (another data directory,
    /// or this one re-installed) knows which epoch was delivered where; `None` records no
    /// name (the outbox's receipts alone then decide, see the module documentation).
    pub outbox: Option<OutboxIdentity>,
}

/// The firewall's [`EventObserver`]. See the module documentation.
pub struct FirewallWatch {
    config: FirewallWatchConfig,
    policy: Option<OwnedEngine>,
    /// The policy before `policy`, for the sensor's events from before the switch.
    replaced: Option<ReplacedPolicy>,
    updates: mpsc::Receiver<State>,
    pending_flows: HashMap<(FlowEnd, FlowEnd, Protocol, u16, bool), ObservedFlow>,
    last_flush_ms: i64,
    enforcement: Enforcement,
    reported_connects: ReportedConnects,
    /// The alerts of the programs' reports and counts, until they are sent.
    waiting_alerts: WaitingAlerts,
    /// The take of the programs' attempt counts whose alerts the outbox does not hold yet
    /// (they stay in the kernel until it does).
    awaiting_delivery: Option<AwaitingDelivery>,
    /// The epoch whose alerts the outbox holds and whose counts the kernel could not be told
    /// were delivered: told again at each tick (until then the stream takes nothing new).
    undelivered_epoch: Option<u64>,
    /// Test hook: how many of the next times the stream is told of a delivery fail, as when
    /// the kernel refuses to delete the counts.
    #[cfg(test)]
    failing_deliveries: u32,
    /// Where a test asked the watch to stop, so that it kills the agent there.
    test_pause: TestPause,
    unmatched_containers: UnmatchedContainers,
}

/// A take of the connect programs' attempt counts, alerted and not yet in the outbox.
struct AwaitingDelivery {
    /// The take's epoch, its receipt's serial.
    epoch: u64,
    /// The attempts it took.
    attempts: u64,
    /// Whether its receipt was handed out ([`EventObserver::take_receipt`]).
    handed_out: bool,
}

impl FirewallWatch {
    /// A watch with no policy yet (every flow is recorded, none is reported) and the sender
    /// its policies come through. In block mode with a [`FirewallWatchConfig::pin_dir`], it
    /// takes over what an agent that died left pinned there (see the module
    /// documentation); fails when the directory cannot be used (not on a bpf file system,
    /// held by another agent, pinned maps of an unreadable kind).
    pub fn new(
        config: FirewallWatchConfig,
    ) -> Result<(FirewallWatch, PolicyUpdates), palisade_enforce::Error> {
        let (sender, updates) = mpsc::channel();
        let mut enforcement = Enforcement {
            connect_reports: ReportStream {
                ring: config.connect_reports_ring,
                stream: None,
            },
            ..Enforcement::default()
        };
        if config.mode == DefenseMode::Block
            && let Some(pin_dir) = &config.pin_dir
        {
            enforcement.adopt_pins(pin_dir, config.connect_reports_ring)?;
            if let (Some(outbox), Some(stream)) =
                (&config.outbox, &enforcement.connect_reports.stream)
            {
                settle_last_delivery(stream, outbox)?;
            }
        }
        let watch = FirewallWatch {
            enforcement,
            config,
            policy: None,
            replaced: None,
            updates,
            pending_flows: HashMap::new(),
            last_flush_ms: 0,
            reported_connects: ReportedConnects::default(),
            waiting_alerts: WaitingAlerts::default(),
            awaiting_delivery: None,
            undelivered_epoch: None,
            #[cfg(test)]
            failing_deliveries: 0,
            test_pause: TestPause::from_env(),
            unmatched_containers: UnmatchedContainers::default(),
        };
        Ok((watch, sender))
    }

    /// Whether the watch took over the enforcement a dead agent left pinned (its report
    /// stream): its pods keep their rules, and its counts wait, until the first policy.
    pub fn took_over_enforcement(&self) -> bool {
        self.enforcement.took_over
    }

    /// Pods whose rules are enforced now, as `namespace/name`.
    pub fn enforced_pods(&self) -> Vec<String> {
        let mut pods: Vec<String> = self
            .enforcement
            .pods
            .iter()
            .filter(|(_, pod)| pod.installed.is_some())
            .map(|(key, _)| key.clone())
            .collect();
        pods.sort();
        pods
    }

    /// Takes the newest policy from the channel, if one arrived, and re-applies enforcement;
    /// the open connections its rules refuse (closed in block mode) are reported.
    fn pick_up_policy(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
        let Some(state) = self.updates.try_iter().last() else {
            return;
        };
        match OwnedEngine::new(state) {
            Ok(policy) => {
                tracing::info!(
                    rules = policy.state().firewall_rules().len(),
                    policies = policy.state().policies().len(),
                    pods = policy.state().pods().len(),
                    "Firewall policy updated."
                );
                for rule in policy.state().firewall_rules() {
                    tracing::debug!(%rule, "Firewall rule in force.");
                }
                let listed = self.enforcement.reapply(policy.state(), self.config.mode);
                report_open_connections(&policy, &listed, &self.config, now, reports);
                self.replaced = Some(ReplacedPolicy {
                    until_ms: now.0,
                    policy: self.policy.replace(policy),
                });
            }
            Err(error) => {
                tracing::error!(%error, "The new firewall policy is invalid; the previous one stays in force.");
            }
        }
    }

    /// Reads the lost-reports count (a BPF map read, so not on every connect event: at the
    /// tick, and before the sensor's view of a connect without a report is judged) and
    /// raises a node alert when attempts were lost since the last read. `at_tick`: this is
    /// the tick's read, which alone may let another layout's removed streams go.
    fn take_lost_reports(
        &mut self,
        now: Timestamp,
        at_tick: bool,
        reports: &mut Vec<FindingReport>,
    ) {
        self.enforcement.count_removed_streams(at_tick);
        let Some(stream) = &self.enforcement.connect_reports.stream else {
            return;
        };
        let dropped = stream.announcements_dropped();
        if dropped > self.enforcement.announcements_dropped_seen {
            self.enforcement.announcements_dropped_seen = dropped;
            self.reported_connects.lost_some();
        }
        match stream.lost() {
            Ok(lost) => {
                let lost = lost
                    + self.waiting_alerts.dropped()
                    + self.reported_connects.not_kept()
                    + self.enforcement.lost_with_another_layout;
                if lost > self.enforcement.lost_reports_seen {
                    let newly_lost = lost - self.enforcement.lost_reports_seen;
                    self.enforcement.lost_reports_seen = lost;
                    self.reported_connects.lost_some();
                    tracing::warn!(newly_lost, "Connect reports were lost.");
                    reports.push(lost_connect_reports_report(newly_lost, &self.config, now));
                }
            }
            Err(error) => tracing::warn!(%error, "Cannot read the lost connect reports count."),
        }
    }

    /// Takes the connect programs' reports since the last take and, with `counts`, the
    /// attempts they counted without a report: each match is remembered in
    /// [`ReportedConnects`] for the sensor's view of its connects, recorded as a flow with
    /// its attempts, and its firewall alert waits in [`WaitingAlerts`] with them. With
    /// `counts` (at the tick) also takes the lost count ([`FirewallWatch::take_lost_reports`]).
    fn take_connect_reports(
        &mut self,
        now: Timestamp,
        counts: bool,
        reports: &mut Vec<FindingReport>,
    ) {
        // Without a policy the reports' pods and rules are not known (only a stream adopted
        // from a dead agent's pins exists by then): they wait in the kernel for it. What was
        // lost (another layout's programs count as lost until they go) is raised meanwhile.
        if self.policy.is_none() {
            if counts && self.enforcement.connect_reports.stream.is_some() {
                self.take_lost_reports(now, true, reports);
            }
            return;
        }
        let Some(stream) = &self.enforcement.connect_reports.stream else {
            return;
        };
        // A report only announces its match: its attempt is in the counts (or, when the
        // counters had no room for it, in the reports the stream keeps), taken below.
        let announced: Vec<ConnectMatch> = match stream.take() {
            Ok(connects) => connects
                .into_iter()
                .map(|connect| connect.matched)
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "Cannot read the connect programs' reports.");
                Vec::new()
            }
        };
        let mut counted: Vec<ConnectCount> = Vec::new();
        if counts {
            match stream.take_counted() {
                Ok(Some(taken)) => {
                    tracing::debug!(
                        epoch = taken.epoch,
                        attempts = taken.attempts(),
                        matches = taken.counts.len(),
                        kept = taken.kept,
                        "Took the connect programs' attempt counts."
                    );
                    self.awaiting_delivery = Some(AwaitingDelivery {
                        epoch: taken.epoch,
                        attempts: taken.attempts(),
                        handed_out: false,
                    });
                    self.test_pause
                        .pause_at(PausePoint::Taken, taken.epoch, taken.attempts());
                    counted = taken.counts;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "Cannot take the connect programs' attempt counts.");
                }
            }
            self.take_lost_reports(now, true, reports);
        }
        // Taken now, by the clock the sensor stamps its events with: every connect made
        // before is in hand.
        let taken = Timestamp::now();
        for matched in announced
            .iter()
            .chain(counted.iter().map(|count| &count.matched))
        {
            let identity = ConnectIdentity {
                cgroup_id: matched.cgroup_id,
                remote: canonical(matched.remote),
                port: matched.port,
            };
            self.reported_connects.remember(identity, taken);
        }
        let Some(policy) = &self.policy else {
            return;
        };
        let seen: Vec<(ObservedFlow, Option<FindingReport>)> = counted
            .iter()
            .filter_map(|count| self.connect_report(policy, &count.matched, count.attempts, now))
            .collect();
        for (flow, alert) in seen {
            if let Some(alert) = alert {
                self.waiting_alerts.add(alert, flow.attempts);
            }
            self.record_flow(&flow);
        }
    }

    /// The flow of `attempts` connects of one match that a pod's connect programs refused or
    /// alerted, and their firewall alert. `None` when the match's pod or protocol is not
    /// known (any more).
    fn connect_report(
        &self,
        policy: &OwnedEngine,
        connect: &ConnectMatch,
        attempts: u64,
        now: Timestamp,
    ) -> Option<(ObservedFlow, Option<FindingReport>)> {
        let state = policy.state();
        let (namespace, name) = self
            .enforcement
            .pods
            .iter()
            .find(|(_, pod)| pod.tag == connect.filter_tag)?
            .0
            .split_once('/')?;
        let src = pod_end(state, state.pod_id(namespace, name)?)?;
        let (dst, _) = address_end(state, canonical(connect.remote));
        let observed = ObservedFlow {
            src,
            dst,
            protocol: connect.protocol?,
            port: connect.port,
            attempts,
            blocked: connect.action == RuleAction::Block,
            first_seen_ms: now.0,
            last_seen_ms: now.0,
        };
        let rule = state
            .firewall_rules()
            .get(connect.rule_id as usize)
            .map_or("firewall rule", |rule| rule.name.as_str());
        let local = LocalSide {
            is_source: true,
            container: None,
        };
        let report = firewall_report(
            policy.engine(),
            &observed,
            &local,
            &self.config,
            now,
            Seen::ByConnectProgram {
                rule,
                refused: observed.blocked,
            },
        );
        Some((observed, report))
    }

    fn record_flow(&mut self, flow: &ObservedFlow) {
        let key = (
            flow.src.clone(),
            flow.dst.clone(),
            flow.protocol,
            flow.port,
            flow.blocked,
        );
        self.pending_flows
            .entry(key)
            .and_modify(|pending| {
                pending.attempts += flow.attempts;
                pending.last_seen_ms = pending.last_seen_ms.max(flow.last_seen_ms);
                pending.first_seen_ms = pending.first_seen_ms.min(flow.first_seen_ms);
            })
            .or_insert_with(|| flow.clone());
        if self.pending_flows.len() >= MAX_PENDING_FLOWS {
            self.flush_flows();
        }
    }

    fn flush_flows(&mut self) {
        let flows: Vec<ObservedFlow> = self.pending_flows.drain().map(|(_, flow)| flow).collect();
        let Some(path) = &self.config.flows_file else {
            return;
        };
        if flows.is_empty() {
            return;
        }
        let mut text = String::new();
        for flow in &flows {
            if let Ok(line) = serde_json::to_string(flow) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(error) = written {
            tracing::warn!(%error, path = %path.display(), n_flows = flows.len(), "Cannot record flows.");
        }
    }
}

impl EventObserver for FirewallWatch {
    fn kinds(&self) -> BTreeSet<EventKind> {
        let mut kinds: BTreeSet<EventKind> =
            [EventKind::Connect, EventKind::Accept, EventKind::Accept4].into();
        // In block mode a pod is also found from its processes' execs, so that it is
        // enforced (and its connect programs report) when the sensor has no connect probe.
        if self.config.mode == DefenseMode::Block {
            kinds.insert(EventKind::Execve);
        }
        kinds
    }

    fn observe(&mut self, event: &Event, reports: &mut Vec<FindingReport>) {
        let at_ms = i64::try_from(event.timestamp_ns / 1_000_000).unwrap_or(i64::MAX);
        if event.kind == EventKind::Connect {
            // A connect program's report of this connect's match was written before the call
            // returned, so before the sensor's event of it: taking the reports now puts it
            // in hand, whatever policy has arrived since.
            self.take_connect_reports(Timestamp(at_ms), false, reports);
        }
        let empty = State::new();
        let state = self.policy.as_ref().map_or(&empty, OwnedEngine::state);
        let cgroup_pod = self.enforcement.pod_of_cgroup(event.cgroup_id, state);
        let attempt = attribute(event, state, cgroup_pod);
        // Any connect or exec of a pod finds it, also a connect the flow view leaves out (a
        // host-network pod's connect to loopback).
        let local_pod = match &attempt {
            Some(attempt) => attempt.local_pod,
            None => pod_of_event(event, state, cgroup_pod),
        };
        if let Some(policy) = &self.policy {
            match local_pod {
                Some(local_pod) => {
                    let listed = self.enforcement.discover(
                        policy.state(),
                        local_pod,
                        event,
                        self.config.mode,
                    );
                    report_open_connections(
                        policy,
                        &listed,
                        &self.config,
                        Timestamp(at_ms),
                        reports,
                    );
                }
                None if self.config.mode == DefenseMode::Block => {
                    self.unmatched_containers.note(event)
                }
                None => {}
            }
        }
        let Some(attempt) = attempt else {
            return;
        };
        if event.kind == EventKind::Connect
            && self.reported_connects.covers(
                ConnectIdentity {
                    cgroup_id: event.cgroup_id,
                    remote: attempt.remote_ip,
                    port: attempt.port,
                },
                Timestamp(at_ms),
            )
        {
            // The connect programs reported or counted this connect's match since it was
            // made: their report and counts alert and record it, also when the policy
            // changed since.
            return;
        }
        // The sensor delivers an event some time after the call (longer under load), so one
        // from before the last policy switch is judged by the policy then in force: a connect
        // made before a rule existed is no violation of it. (The programs' reports need no
        // such care: the kernel judged them with the rules it had.)
        let (policy, attempt, current) = match &self.replaced {
            Some(replaced) if at_ms < replaced.until_ms => {
                let state = replaced.policy.as_ref().map_or(&empty, OwnedEngine::state);
                let cgroup_pod = self.enforcement.pod_of_cgroup(event.cgroup_id, state);
                let Some(attempt) = attribute(event, state, cgroup_pod) else {
                    return;
                };
                (replaced.policy.as_ref(), attempt, false)
            }
            _ => (self.policy.as_ref(), attempt, true),
        };
        let observed = ObservedFlow {
            src: attempt.src.clone(),
            dst: attempt.dst.clone(),
            protocol: attempt.protocol,
            port: attempt.port,
            attempts: 1,
            blocked: attempt.refused,
            first_seen_ms: at_ms,
            last_seen_ms: at_ms,
        };
        let is_source = observed.src.namespace.is_some() && event.kind == EventKind::Connect;
        // The rules the pod's programs report are the current policy's.
        let reported_rules = attempt
            .local_pod
            .filter(|_| is_source && current)
            .and_then(|pod_id| self.enforcement.kernel_reported_rules(state, pod_id));
        let not_refused_by_programs = event.ret != -i64::from(libc::EPERM);
        // Nothing of this agent stood in the way of a connect of a pod it has no firewall
        // installed for (block mode, not found yet, or its installation failed): one the
        // policy refuses that did not fail with EPERM (with which a dead agent's programs
        // still on the pod's cgroup refuse) went through. Said so in its alert.
        let mut let_through = self.config.mode == DefenseMode::Block
            && not_refused_by_programs
            && attempt
                .local_pod
                .filter(|_| is_source && current)
                .is_some_and(|pod_id| !self.enforcement.has_firewall(state, pod_id));
        if let (Some(policy), Some(reported_rules)) = (policy, reported_rules)
            && let Some(action) = reported_decision(policy.engine(), &observed, reported_rules)
        {
            // The pod's connect programs decide such connects, and have no report of this
            // one. They refuse a connect with EPERM before a packet exists, so one their
            // `block` rule decides that did not fail with EPERM went through before they had
            // the rule (made after the agent picked the rule up, before the pod's programs got
            // it): they never counted it, and it is an attempt of its own, alerted below. For
            // the others (refused, or passed by an `alert` rule either way) the call's result
            // does not tell: while reports are being lost such a connect is taken to be one
            // of those lost (the lost count stands for it, so it counts once); otherwise it
            // is taken to be counted, or to have come before the programs had the rule: it is
            // recorded as it went, without an alert. The lost count is read now: this
            // connect's own report may be the one lost.
            let_through = action == RuleAction::Block && not_refused_by_programs;
            if !let_through {
                self.take_lost_reports(Timestamp(at_ms), false, reports);
                if !self.reported_connects.recently_lost() {
                    self.record_flow(&observed);
                }
                return;
            }
        }
        let local = LocalSide {
            is_source,
            container: event.container.as_deref(),
        };
        if let Some(policy) = policy
            && let Some(report) = firewall_report(
                policy.engine(),
                &observed,
                &local,
                &self.config,
                Timestamp(at_ms),
                Seen::BySensor { let_through },
            )
        {
            // Each attempt the sensor alerts is one the programs did not count (or it is
            // alerted twice): said, so that a count that is off can be traced.
            tracing::debug!(
                flow = %observed.describe(),
                rule = %report.rule,
                judged_by_the_policy_in_force = current,
                "A connect the sensor saw is alerted."
            );
            reports.push(report);
        }
        self.record_flow(&observed);
    }

    fn tick(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
        if let Some(epoch) = self.undelivered_epoch {
            self.tell_delivered(epoch);
        }
        self.pick_up_policy(now, reports);
        self.take_connect_reports(now, true, reports);
        self.waiting_alerts.send(reports);
        self.reported_connects.expire(now);
        if self
            .replaced
            .as_ref()
            .is_some_and(|replaced| now.0 - replaced.until_ms > ReplacedPolicy::KEPT_MS)
        {
            self.replaced = None;
        }
        if now.0 - self.last_flush_ms >= FLOW_FLUSH_EVERY_MS {
            self.flush_flows();
            self.last_flush_ms = now.0;
        }
    }

    fn tick_interval(&self) -> Duration {
        self.config.connect_reports_drain.interval()
    }

    fn reports_lost(&self) -> u64 {
        self.enforcement.lost_reports_seen
    }

    /// The receipt of the attempt counts taken at the last tick: their epoch.
    fn take_receipt(&mut self) -> Option<Receipt> {
        let awaiting = self.awaiting_delivery.as_mut()?;
        if awaiting.handed_out {
            return None;
        }
        awaiting.handed_out = true;
        Some(Receipt {
            source: CONNECT_COUNTS_RECEIPT.to_owned(),
            serial: awaiting.epoch,
        })
    }

    /// The outbox holds the alerts of the counts of epoch `receipt.serial`: they are deleted
    /// from the kernel. At start, the receipt the dead agent left says whether the adopted
    /// stream's last epoch was delivered already (deleted) or is to be taken again.
    fn delivered(&mut self, receipt: &Receipt) {
        if receipt.source != CONNECT_COUNTS_RECEIPT {
            return;
        }
        if let Some(awaiting) = &self.awaiting_delivery
            && awaiting.epoch == receipt.serial
        {
            self.test_pause
                .pause_at(PausePoint::Delivered, awaiting.epoch, awaiting.attempts);
            self.awaiting_delivery = None;
        }
        self.tell_delivered(receipt.serial);
    }
}

impl FirewallWatch {
    /// Tells the stream that the counts of `epoch` are in the outbox, so that they are
    /// deleted from the kernel; on failure the epoch is told again at the next tick
    /// ([`FirewallWatch::undelivered_epoch`]), since until the stream learns it, it takes
    /// nothing new.
    fn tell_delivered(&mut self, epoch: u64) {
        let Some(stream) = &self.enforcement.connect_reports.stream else {
            return;
        };
        #[cfg(test)]
        if let Some(left) = self.failing_deliveries.checked_sub(1) {
            self.failing_deliveries = left;
            self.undelivered_epoch = Some(epoch);
            return;
        }
        self.undelivered_epoch = match stream.delivered(epoch) {
            Ok(Delivered::Stale) => None,
            Ok(Delivered::Deleted) => {
                tracing::debug!(epoch, "Delivered attempt counts deleted.");
                None
            }
            Ok(Delivered::DeletedUnrecorded(error)) => {
                // Delivered: telling it again would find it stale. Only the record of the
                // delivery with the stream stays as it was until the next one.
                tracing::warn!(%error, epoch, "Delivered attempt counts deleted; the delivery could not be recorded with the pinned stream.");
                None
            }
            Err(error) => {
                tracing::warn!(%error, epoch, "Cannot complete the delivery of the connect attempt counts; told again at the next tick.");
                Some(epoch)
            }
        };
    }
}

impl Drop for FirewallWatch {
    fn drop(&mut self) {
        // The agent's last tick took every attempt into the outbox. Without it (detection
        // stopped on an error) what the programs counted since the last tick is taken now,
        // recorded as flows and counted in a warning: not alerted, but not silent.
        if let Some(awaiting) = &self.awaiting_delivery {
            // The outbox failed and still fails: the counts stay in the kernel (pinned, for
            // the next agent, in block mode with pins).
            tracing::warn!(
                attempts = awaiting.attempts,
                epoch = awaiting.epoch,
                "Stopping with firewall alert attempts taken and not written to the outbox."
            );
        }
        let mut unsent = Vec::new();
        self.take_connect_reports(Timestamp::now(), true, &mut unsent);
        self.waiting_alerts.send(&mut unsent);
        self.flush_flows();
        let unsent_attempts: u64 = unsent
            .iter()
            .filter(|report| report.rule != LOST_CONNECT_REPORTS_RULE)
            .map(FindingReport::occurrences)
            .sum();
        if unsent_attempts > 0 {
            tracing::warn!(
                unsent_attempts,
                "Stopping with firewall alert attempts counted since the last tick; they are \
                 recorded as flows but not alerted."
            );
        }
    }
}

/// Settles the last epoch of a stream taken over from pins: the epoch its record names as
/// delivered is deleted, whoever delivered it; when the agent that took from it last had
/// another outbox than `outbox` (whose receipts then say nothing of it, compared by id), so
/// is the one that outbox's receipt names, when that outbox is still there (it died after
/// writing the epoch and before recording it); otherwise the epoch is taken again (its
/// alerts, if written, went with an outbox that is gone). Then deliveries are recorded under
/// `outbox`.
fn settle_last_delivery(
    stream: &ConnectReports,
    outbox: &OutboxIdentity,
) -> Result<(), palisade_enforce::Error> {
    if let Some(last) = stream.last_delivery()? {
        // The recorded epoch was delivered, whoever took it (a stale one changes nothing).
        let mut delivered: Vec<u64> = last.epoch.into_iter().collect();
        let other = OutboxIdentity::from_taker(&last.taker);
        let another_outbox = other.as_ref().is_none_or(|other| other.id != outbox.id);
        match other
            .filter(|_| another_outbox)
            .map(|other| other.receipt(CONNECT_COUNTS_RECEIPT))
        {
            Some(Ok(Some(serial))) => delivered.push(serial),
            Some(Ok(None)) | None => {}
            Some(Err(error)) => {
                tracing::warn!(%error, taker = %last.taker, "Cannot read the receipt of the outbox that delivered the firewall's counts last; its last take, if it wrote it, may be alerted twice.");
            }
        }
        let mut settled = false;
        for epoch in delivered {
            if stream.delivered(epoch)?.deleted() {
                settled = true;
                tracing::info!(epoch, taker = %last.taker, "The previous agent's last take of the firewall's counts was delivered; not taken again.");
            }
        }
        if another_outbox && !settled {
            tracing::info!(taker = %last.taker, "Neither the stream's record nor the outbox that took the firewall's counts last says its last take was delivered: an untaken or undelivered epoch is taken again.");
        }
    }
    stream.deliver_as(&outbox.taker())
}

/// A policy that was replaced, kept for the sensor's events from before the switch for
/// [`ReplacedPolicy::KEPT_MS`] (one at a time: a later switch replaces it).
struct ReplacedPolicy {
    /// When it stopped being in force (the next policy's pick-up).
    until_ms: i64,
    /// `None` when there was no policy before.
    policy: Option<OwnedEngine>,
}

impl ReplacedPolicy {
    /// Longer than the sensor's delivery takes even on a loaded host.
    const KEPT_MS: i64 = 60_000;
}

/// A connection attempt, attributed.
#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    src: FlowEnd,
    dst: FlowEnd,
    protocol: Protocol,
    port: u16,
    /// The call failed (refused, unreachable, ...).
    refused: bool,
    /// The remote address (the destination of a connect).
    remote_ip: IpAddr,
    /// The calling process's pod, when it is a pod of the state.
    local_pod: Option<PodId>,
}

/// Attributes a `connect` or `accept` event, or `None` when it is not a TCP or UDP
/// connection attempt between two addresses (or it stays on loopback). `cgroup_pod` is the
/// pod whose cgroup the calling thread is in, when known.
fn attribute(event: &Event, state: &State, cgroup_pod: Option<PodId>) -> Option<Attempt> {
    let Payload::Network { fd } = &event.payload else {
        return None;
    };
    if !matches!(fd.kind, FdKind::Ipv4 | FdKind::Ipv6) {
        return None;
    }
    let socket = fd.socket.as_ref()?;
    let protocol = match socket.protocol {
        SocketProtocol::Tcp => Protocol::Tcp,
        SocketProtocol::Udp => Protocol::Udp,
        _ => return None,
    };
    let remote_ip = socket.remote_addr.map(canonical)?;
    if remote_ip.is_loopback() || remote_ip.is_unspecified() {
        return None;
    }
    let local_ip = socket
        .local_addr
        .map(canonical)
        .filter(|ip| !ip.is_unspecified());
    let (local, local_pod) = local_end(event, state, cgroup_pod, local_ip)?;
    let (remote, remote_pod) = address_end(state, remote_ip);
    match event.kind {
        EventKind::Connect => {
            if event.ret < 0 && event.ret != -EINPROGRESS && socket.remote_port == 0 {
                return None;
            }
            Some(Attempt {
                src: local,
                dst: remote,
                protocol,
                port: socket.remote_port,
                refused: event.ret < 0 && event.ret != -EINPROGRESS,
                remote_ip,
                local_pod,
            })
        }
        EventKind::Accept | EventKind::Accept4 if event.ret >= 0 && remote_pod.is_none() => {
            Some(Attempt {
                src: remote,
                dst: local,
                protocol,
                port: socket.local_port,
                refused: false,
                remote_ip,
                local_pod,
            })
        }
        _ => None,
    }
}

/// A v4-mapped IPv6 address as IPv4, so it matches pod IPs and IPv4 CIDRs.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn pod_end(state: &State, pod_id: PodId) -> Option<FlowEnd> {
    let pod = state.pod(pod_id)?;
    Some(FlowEnd {
        namespace: Some(pod.namespace.clone()),
        pod: Some(pod.name.clone()),
        labels: pod.labels.clone(),
        namespace_labels: state
            .namespace(&pod.namespace)
            .map(|namespace| namespace.labels.clone())
            .unwrap_or_default(),
        ip: pod.ips.first().copied(),
    })
}

/// The state's pod with address `ip`, or the address outside the cluster.
fn address_end(state: &State, ip: IpAddr) -> (FlowEnd, Option<PodId>) {
    match state.endpoint(&ip.to_string()) {
        Ok(palisade_firewall::Endpoint::Pod(pod_id)) => match pod_end(state, pod_id) {
            Some(end) => (end, Some(pod_id)),
            None => (FlowEnd::external(ip), None),
        },
        _ => (FlowEnd::external(ip), None),
    }
}

/// The calling process's end: its pod (by Kubernetes identity, then by cgroup, then by local
/// address), or the node's address. `None` when neither is known.
fn local_end(
    event: &Event,
    state: &State,
    cgroup_pod: Option<PodId>,
    local_ip: Option<IpAddr>,
) -> Option<(FlowEnd, Option<PodId>)> {
    let k8s = event
        .container
        .as_ref()
        .and_then(|container| Some((container, container.k8s.as_ref()?)));
    if let Some((container, k8s)) = k8s {
        if let Some(pod_id) = state.pod_id(&k8s.namespace, &k8s.pod_name) {
            return Some((pod_end(state, pod_id)?, Some(pod_id)));
        }
        // A pod the policy state does not list: its container labels stand for its pod
        // labels (the runtime's own bookkeeping labels are left out).
        let labels = container
            .labels
            .iter()
            .filter(|(key, _)| !key.starts_with("io.kubernetes.") && !key.starts_with("io.cri-"))
            .cloned()
            .collect();
        let namespace_labels = [(
            "kubernetes.io/metadata.name".to_owned(),
            k8s.namespace.clone(),
        )]
        .into();
        return Some((
            FlowEnd {
                namespace: Some(k8s.namespace.clone()),
                pod: Some(k8s.pod_name.clone()),
                labels,
                namespace_labels,
                ip: local_ip,
            },
            None,
        ));
    }
    if let Some(pod_id) = cgroup_pod {
        return Some((pod_end(state, pod_id)?, Some(pod_id)));
    }
    let (end, pod_id) = address_end(state, local_ip?);
    Some((end, pod_id))
}

/// The most containers [`UnmatchedContainers`] remembers; it forgets them all when full.
const MAX_UNMATCHED_CONTAINERS: usize = 4_096;

/// The containers whose events matched no pod of the policy, by id, with the Kubernetes
/// identity (namespace, pod) their events carried. Each container is logged (debug) once per
/// identity, so that an agent's log shows why a pod was never found: its container had no
/// Kubernetes identity (yet: the runtime had not written its metadata), or one the policy
/// does not name.
#[derive(Default)]
struct UnmatchedContainers(HashMap<String, Option<(String, String)>>);

impl UnmatchedContainers {
    /// Logs `event`'s container the first time it is seen with its current identity.
    fn note(&mut self, event: &Event) {
        let Some(container) = event.container.as_deref() else {
            return;
        };
        let identity = container
            .k8s
            .as_ref()
            .map(|k8s| (k8s.namespace.as_str(), k8s.pod_name.as_str()));
        let known = self.0.get(container.id.as_str()).is_some_and(|seen| {
            seen.as_ref()
                .map(|(namespace, pod)| (namespace.as_str(), pod.as_str()))
                == identity
        });
        if known {
            return;
        }
        if self.0.len() >= MAX_UNMATCHED_CONTAINERS {
            self.0.clear();
        }
        self.0.insert(
            container.id.clone(),
            identity.map(|(namespace, pod)| (namespace.to_owned(), pod.to_owned())),
        );
        match identity {
            Some((namespace, pod)) => tracing::debug!(
                container = %container.id, namespace, pod, pid = event.process.pid,
                "A container's pod is not in the firewall policy."
            ),
            None => tracing::debug!(
                container = %container.id, name = %container.name, pid = event.process.pid,
                "A container without a Kubernetes identity (yet) is no pod of the firewall policy."
            ),
        }
    }
}

/// The state's pod that made `event`: by its container's Kubernetes identity, else by the
/// cgroup of a pod found before.
fn pod_of_event(event: &Event, state: &State, cgroup_pod: Option<PodId>) -> Option<PodId> {
    event
        .container
        .as_ref()
        .and_then(|container| container.k8s.as_ref())
        .and_then(|k8s| state.pod_id(&k8s.namespace, &k8s.pod_name))
        .or(cgroup_pod)
}

/// The node alert about `lost` connect reports: refused or alerted connects that were
/// enforced and counted in the kernel but have no firewall alert, or whose match the agent
/// could not keep ([`ReportedConnects::MAX`]), so that the sensor's view of them may be
/// alerted a second time.
fn lost_connect_reports_report(
    lost: u64,
    config: &FirewallWatchConfig,
    at: Timestamp,
) -> FindingReport {
    node_health_report(
        &config.cluster,
        &config.node,
        NodeHealth {
            rule: LOST_CONNECT_REPORTS_RULE,
            title: format!("{lost} firewall connect reports lost on {}", config.node),
            description: "The connect programs' ring buffer (or the agent's queue behind it) was \
                          full: the connects were still refused or let through as the rules \
                          say, but these have no firewall alert (or, when more than 65,536 \
                          distinct matches came within 10 s, may be alerted twice).",
            output: format!("{lost} connect reports lost"),
            suggested_response: "Check which pod connects so often (the attempts counts of its \
                                 firewall alerts); if losses repeat, narrow its alert rules.",
            raw_event: serde_json::json!({ "connect_reports_lost": lost }),
        },
        at,
    )
}

/// The workload end of a flow, for the alert's asset.
struct LocalSide<'e> {
    /// The workload is the flow's source (it connected), not its destination.
    is_source: bool,
    /// The workload's container, when the sensor knows it.
    container: Option<&'e palisade_event::Container>,
}

/// Who saw a connection attempt, and what became of it.
#[derive(Debug, Clone, Copy)]
enum Seen<'r> {
    /// The sensor saw the system call; the engine's verdict says what it means. A connect
    /// the verdict refuses went through when `let_through` (in block mode: it came before
    /// the pod's programs had the rule, or the pod has no firewall installed yet).
    BySensor { let_through: bool },
    /// A connect program matched rule `rule` and refused the connect (`refused`) or let it
    /// pass (an `alert` rule).
    ByConnectProgram { rule: &'r str, refused: bool },
    /// The connection was open when rule `rule`, which refuses it, arrived: listed, and
    /// closed by the agent or left open (`connection.closed`).
    Open {
        rule: &'r str,
        connection: &'r OpenConnection,
    },
}

/// The firewall alert for a flow the policy refuses or an `alert` rule matches (as the
/// sensor saw it); for a connect a connect program reported or an open connection a rule
/// refuses, always an alert.
fn firewall_report(
    engine: &Engine<'_>,
    observed: &ObservedFlow,
    local: &LocalSide<'_>,
    config: &FirewallWatchConfig,
    at: Timestamp,
    seen: Seen<'_>,
) -> Option<FindingReport> {
    let state = engine.state();
    let flow = observed.to_flow(state).ok()?;
    let verdict = engine.evaluate(&flow);
    let deciding_rule = deciding_firewall_rule(state, &verdict);
    if let Seen::BySensor { .. } = seen
        && verdict.allowed
        && verdict.alert.is_none()
    {
        return None;
    }
    let explanation = engine.explain(&flow);
    let let_through = matches!(seen, Seen::BySensor { let_through: true }) && !verdict.allowed;
    let enforced = match seen {
        Seen::BySensor { .. } => {
            !verdict.allowed && config.mode == DefenseMode::Block && !let_through
        }
        Seen::ByConnectProgram { refused, .. } => refused,
        Seen::Open { connection, .. } => connection.closed,
    };
    let alert_name = match (&deciding_rule, verdict.allowed, seen) {
        (_, _, Seen::Open { rule, connection }) => {
            FirewallDetails::open_connection_alert_name(rule, connection.closed)
        }
        (_, _, Seen::ByConnectProgram { rule, .. }) => rule.to_owned(),
        (Some((_, rule)), false, Seen::BySensor { .. }) => rule.name.clone(),
        _ => match verdict.alert {
            Some(rule_id) if verdict.allowed => {
                state.firewall_rules()[rule_id.index()].name.clone()
            }
            _ => denying_policy(&explanation.egress)
                .or_else(|| denying_policy(&explanation.ingress))
                .unwrap_or_else(|| "firewall policy".to_owned()),
        },
    };
    // The deciding rule's destination; when a Kubernetes policy decided, the objects the
    // destination belongs to (none: empty).
    let destination_object = deciding_rule.map_or_else(
        || engine.network_objects_of(&flow.dst).join(", "),
        |(_, rule)| rule.destination.clone(),
    );
    let local_end = if local.is_source {
        &observed.src
    } else {
        &observed.dst
    };
    let outcome = match (seen, enforced) {
        (Seen::Open { .. }, true) => "closed (it was open when the rule arrived)",
        (Seen::Open { .. }, false) => "left open (it was open when the rule arrived)",
        _ if let_through => "let through (before it was enforced)",
        (_, true) => "refused",
        (_, false) => "seen",
    };
    let container = local.container;
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    Some(FindingReport {
        id: Uuid::now_v7(),
        observed_at: at,
        severity: if enforced || !verdict.allowed {
            Severity::High
        } else {
            Severity::Medium
        },
        rule: alert_name.clone(),
        title: format!("{alert_name}: {} {outcome}", observed.describe()),
        asset: AffectedAsset {
            cluster: config.cluster.clone(),
            node: non_empty(&config.node),
            namespace: local_end.namespace.clone(),
            workload: None,
            pod: local_end.pod.clone(),
            container_id: container.and_then(|container| non_empty(&container.id)),
            container_name: container.and_then(|container| non_empty(&container.name)),
            image: container.and_then(|container| non_empty(&container.image)),
            image_digest: container.and_then(|container| non_empty(&container.image_digest)),
        },
        details: Details::FirewallAlert(FirewallDetails {
            source: observed.src.display_name(),
            destination: observed.dst.display_name(),
            destination_object,
            port: observed.port,
            protocol: observed.protocol.to_string(),
            mode: if enforced {
                FirewallAction::Block
            } else {
                FirewallAction::Alert
            }
            .as_str()
            .to_owned(),
            rule_id: Some(match seen {
                Seen::Open { rule, .. } => rule.to_owned(),
                _ => alert_name,
            }),
            trace: explanation.to_string().lines().map(str::to_owned).collect(),
            // The connect programs' alerts take their count when they leave the
            // [`WaitingAlerts`]; the sensor's view and a listed connection are one each.
            attempts: 1,
            open_connection: match seen {
                Seen::Open { connection, .. } => Some(connection.clone()),
                _ => None,
            },
        }),
        demo: false,
    })
}

/// One alert per open connection a rule refuses (closed or left open), at most
/// [`MAX_LISTED_CONNECTIONS`].
fn report_open_connections(
    policy: &OwnedEngine,
    listed: &[ListedConnection],
    config: &FirewallWatchConfig,
    at: Timestamp,
    reports: &mut Vec<FindingReport>,
) {
    if listed.len() > MAX_LISTED_CONNECTIONS {
        tracing::warn!(
            open = listed.len(),
            listed = MAX_LISTED_CONNECTIONS,
            "More open connections refused by the new firewall rules than are listed at once; \
             the rest are not listed."
        );
    }
    let state = policy.state();
    for ListedConnection {
        pod,
        refused,
        closed,
    } in listed.iter().take(MAX_LISTED_CONNECTIONS)
    {
        let Some(pod_flow_end) = pod_end(state, *pod) else {
            continue;
        };
        let connection = &refused.connection;
        let (remote, _) = address_end(state, canonical(connection.remote.ip()));
        let (src, dst, port) = if connection.inbound {
            (remote, pod_flow_end, connection.local.port())
        } else {
            (pod_flow_end, remote, connection.remote.port())
        };
        let observed = ObservedFlow {
            src,
            dst,
            protocol: Protocol::Tcp,
            port,
            attempts: 1,
            blocked: *closed,
            first_seen_ms: at.0,
            last_seen_ms: at.0,
        };
        let rule_name = state
            .firewall_rules()
            .get(refused.rule.id as usize)
            .map_or("firewall rule", |rule| rule.name.as_str());
        let open = OpenConnection {
            direction: if connection.inbound {
                ConnectionDirection::Inbound
            } else {
                ConnectionDirection::Outbound
            },
            local: connection.local.to_string(),
            peer: connection.remote.to_string(),
            closed: *closed,
        };
        let local = LocalSide {
            is_source: !connection.inbound,
            container: None,
        };
        tracing::warn!(
            flow = %observed.describe(),
            rule = rule_name,
            closed,
            "An open connection the new firewall rules refuse."
        );
        reports.extend(firewall_report(
            policy.engine(),
            &observed,
            &local,
            config,
            at,
            Seen::Open {
                rule: rule_name,
                connection: &open,
            },
        ));
    }
}

/// The policy that refused one direction: the deciding one, or the first isolating one.
fn denying_policy(direction: &DirectionExplanation) -> Option<String> {
    if direction.allowed {
        return None;
    }
    direction
        .policy
        .clone()
        .or_else(|| direction.isolated_by.first().cloned())
}

/// The action of the firewall rule deciding `observed` when it is one of `rule_ids` (the
/// rules a pod's connect programs report the matches of).
fn reported_decision(
    engine: &Engine<'_>,
    observed: &ObservedFlow,
    rule_ids: &HashSet<u32>,
) -> Option<RuleAction> {
    let flow = observed.to_flow(engine.state()).ok()?;
    deciding_firewall_rule(engine.state(), &engine.evaluate(&flow))
        .filter(|(rule_id, _)| rule_ids.contains(rule_id))
        .map(|(_, rule)| rule.action)
}

/// The Palisade rule that decided the connection, or the `alert` rule that matched, with its
/// index in the state's rules (the id its compiled rules carry).
fn deciding_firewall_rule<'s>(
    state: &'s State,
    verdict: &Verdict,
) -> Option<(u32, &'s FirewallRule)> {
    let decided = [verdict.egress.decision, verdict.ingress.decision]
        .into_iter()
        .find_map(|decision| match decision {
            Decision::Firewall(rule_id) => Some(rule_id),
            _ => None,
        })
        .or(verdict.alert)?;
    let rule = state.firewall_rules().get(decided.index())?;
    Some((decided.index() as u32, rule))
}

/// What identifies a connect's match both in a connect program's report or count and in the
/// sensor's event of the connect: the calling process's cgroup and the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnectIdentity {
    cgroup_id: u64,
    remote: IpAddr,
    port: u16,
}

/// The matches the connect programs reported or counted recently, each with when it was
/// last taken, kept for [`ReportedConnects::KEPT_MS`] to twice that, and at most
/// [`ReportedConnects::MAX`] of them. The programs count every connect of a match until its
/// rule changes, and a take holds every connect made before it, so the sensor's view of a
/// connect of a match taken since that connect is one they counted; a later connect (after
/// an edit to `allow`, say) is not.
///
/// Matching the sensor's event to the programs' matches by identity, rather than asking the
/// policy in force whether the programs report such a connect, keeps a connect counted once
/// when a policy edit lands between the program's count and the sensor's event.
#[derive(Default)]
struct ReportedConnects {
    /// Reported or counted since the last expiry, and when last taken.
    current: HashMap<ConnectIdentity, Timestamp>,
    /// Reported or counted in the period before.
    previous: HashMap<ConnectIdentity, Timestamp>,
    /// When `current` began.
    current_since_ms: i64,
    /// Whether reports were lost in the current period, and in the one before.
    lost: [bool; 2],
    /// The matches not kept since the start, [`Self::MAX`] being reached.
    not_kept: u64,
}

impl ReportedConnects {
    /// How long a match is kept at least.
    const KEPT_MS: i64 = 10_000;
    /// The most matches kept in a period; more are not kept (their sensor events are then
    /// judged by the policy in force, as when their reports are lost): each is counted
    /// ([`Self::not_kept`]) and the period is one in which reports were lost.
    const MAX: usize = 65_536;

    /// Notes that `connect`'s match was taken at `taken`.
    fn remember(&mut self, connect: ConnectIdentity, taken: Timestamp) {
        if let Some(last) = self.current.get_mut(&connect) {
            *last = (*last).max(taken);
        } else if self.current.len() < Self::MAX {
            self.current.insert(connect, taken);
        } else {
            self.not_kept += 1;
            self.lost_some();
        }
    }

    /// How many matches were not kept since the start ([`Self::MAX`] reached): the sensor's
    /// view of their connects is not known to be theirs, so each counts with the lost
    /// reports.
    fn not_kept(&self) -> u64 {
        self.not_kept
    }

    /// Whether the programs reported or counted `connect`'s match since `made`, when the
    /// connect was made.
    fn covers(&self, connect: ConnectIdentity, made: Timestamp) -> bool {
        [&self.current, &self.previous]
            .iter()
            .any(|kept| kept.get(&connect).is_some_and(|taken| *taken >= made))
    }

    /// Notes that reports were lost.
    fn lost_some(&mut self) {
        self.lost[0] = true;
    }

    /// Whether reports were lost in this period or the one before: the sensor's view of a
    /// connect with no report may then be one of them.
    fn recently_lost(&self) -> bool {
        self.lost[0] || self.lost[1]
    }

    /// Starts a new period when the current one is [`Self::KEPT_MS`] old, forgetting the
    /// connects and losses of the one before.
    fn expire(&mut self, now: Timestamp) {
        if now.0 - self.current_since_ms < Self::KEPT_MS {
            return;
        }
        self.previous = std::mem::take(&mut self.current);
        self.current_since_ms = now.0;
        self.lost = [false, self.lost[0]];
    }
}

/// An open connection of `pod` that one of its rules refuses, closed or left open.
struct ListedConnection {
    pod: PodId,
    refused: WouldRefuse,
    closed: bool,
}

/// Where one pod seen on this node is enforced, and what is installed there now.
struct PodEnforcement {
    /// Its network namespace (outlives the thread it was found from); `None` for a pod in
    /// the host's namespace, where no nftables table may go.
    netns: Option<PathBuf>,
    /// Its cgroup2 directory (the pod's, else its container's), when connect programs may go
    /// there.
    cgroup: Option<PathBuf>,
    /// The tag its connect programs put in their reports.
    tag: u32,
    /// The rules in force; `None` while the pod has no `alert` or `block` rule.
    installed: Option<WorkloadFirewall>,
    /// The ids of the `alert` and `block` rules its connect programs enforce (and report).
    kernel_reported_rules: HashSet<u32>,
    /// The record of what is installed, pinned with the connect programs (block mode with
    /// pins); dropped after `installed`, whose pins are in it.
    pin: Option<WorkloadPin>,
    /// A dead agent's record of the pod whose programs could not be adopted (another
    /// layout's): they stay in force until this pod's own, holding its rules, take their
    /// place in their links at the install (or go on beside them, when the links cannot be
    /// taken over, until they have the rules).
    superseded: Option<WorkloadPin>,
}

/// The firewalls of the pods seen on this node (block mode).
#[derive(Default)]
struct Enforcement {
    /// `namespace/name` → where the pod is enforced.
    pods: HashMap<String, PodEnforcement>,
    /// cgroup id (the cgroup2 directory's inode) → `namespace/name`.
    cgroups: HashMap<u64, String>,
    /// The report stream of every pod's connect programs.
    connect_reports: ReportStream,
    /// The stream's lost-report count already raised as an alert.
    lost_reports_seen: u64,
    /// The stream's dropped announcements already seen (reports the reader's queue had no
    /// room for: their attempts are kept, but their connects have no report).
    announcements_dropped_seen: u64,
    /// The attempts a dead agent of another layout counted and nobody took, whose stream
    /// was removed, and those its programs counted since, until they went: lost, and
    /// counted with the stream's.
    lost_with_another_layout: u64,
    /// Those removed streams, read until their programs are gone.
    removed_streams: Vec<RemovedStream>,
    /// The lost count of another layout (`lost_with_another_layout`) at the last tick that
    /// found the removed streams' programs gone (no pod of theirs left, taken over or not);
    /// `None` while some are left.
    removed_programs_gone_at: Option<u64>,
    /// The tag of the next pod found.
    next_tag: u32,
    /// The pods a dead agent left pinned, until the first policy says what becomes of them.
    adopted: Vec<PinnedWorkload>,
    /// Whether the report stream was a dead agent's.
    took_over: bool,
    /// Where the enforcement is pinned (block mode); the last field, so that it is dropped
    /// after everything pinned in it.
    pins: Option<FirewallPins>,
}

/// The report stream of every pod's connect programs, created with the first of them.
#[derive(Default)]
struct ReportStream {
    /// The size of its ring buffer.
    ring: ConnectReportsRing,
    stream: Option<ConnectReports>,
}

impl ReportStream {
    /// The stream, created the first time.
    fn get(&mut self) -> Result<&ConnectReports, palisade_enforce::Error> {
        let stream = match self.stream.take() {
            Some(stream) => stream,
            None => ConnectReports::with_ring(self.ring)?,
        };
        Ok(self.stream.insert(stream))
    }
}

impl Enforcement {
    /// Opens the pin directory `pin_dir` and takes over what a dead agent left there: its
    /// report stream (with the attempts counted since its last take, taken at the first
    /// tick with a policy) and its pods, which wait for the first policy
    /// ([`Enforcement::settle_adopted`]).
    fn adopt_pins(
        &mut self,
        pin_dir: &Path,
        ring: ConnectReportsRing,
    ) -> Result<(), palisade_enforce::Error> {
        let pins = FirewallPins::open(pin_dir)?;
        let adopted = pins.adopt(ring)?;
        for note in &adopted.notes {
            tracing::warn!(%note, "Pinned firewall state not taken over as it was.");
        }
        if adopted.reports_adopted {
            tracing::info!(
                pin_dir = %pin_dir.display(),
                pods = adopted.workloads.len(),
                ring_bytes = adopted.reports.ring().bytes(),
                "Taking over the firewall enforcement a previous agent left in force."
            );
        }
        if adopted.reports.ring() != ring {
            tracing::warn!(
                ring_bytes = adopted.reports.ring().bytes(),
                asked = ring.bytes(),
                "The pinned connect report ring keeps its size until the agent stops cleanly."
            );
        }
        self.next_tag = adopted
            .workloads
            .iter()
            .map(|workload| workload.pin.tag().wrapping_add(1))
            .max()
            .unwrap_or(0);
        self.took_over = adopted.reports_adopted;
        self.lost_with_another_layout = adopted.lost_attempts;
        self.removed_streams = adopted.removed_streams;
        self.connect_reports.stream = Some(adopted.reports);
        self.adopted = adopted.workloads;
        self.pins = Some(pins);
        Ok(())
    }

    /// Counts what the programs of another layout's removed streams counted since the last
    /// read as lost. At a tick (`at_tick`), the streams are let go once a tick found none of
    /// their pods' records left (their programs detached) and nothing was counted since,
    /// up to this tick's read: one tick later, not at once, since a connect the old programs
    /// were judging at that moment still counts meanwhile. (Other reads, before a sensor's
    /// connect is judged, only count.)
    fn count_removed_streams(&mut self, at_tick: bool) {
        if self.removed_streams.is_empty() {
            return;
        }
        let newly: u64 = self
            .removed_streams
            .iter_mut()
            .map(RemovedStream::newly_lost)
            .sum();
        self.lost_with_another_layout += newly;
        if !at_tick {
            return;
        }
        if self.removed_programs_gone_at == Some(self.lost_with_another_layout) {
            self.removed_streams.clear();
            return;
        }
        let superseded_left =
            !self.adopted.is_empty() || self.pods.values().any(|pod| pod.superseded.is_some());
        self.removed_programs_gone_at = (!superseded_left).then_some(self.lost_with_another_layout);
    }

    /// Makes the pods taken over from a dead agent's pins pods of this agent, enforced by
    /// `state` (their rules replaced in place, without a moment without them), or removes
    /// their programs, table and record when `state` has no such pod.
    fn settle_adopted(&mut self, state: &State) {
        for workload in std::mem::take(&mut self.adopted) {
            let identity = workload.pin.identity().clone();
            let key = identity.name.clone();
            let known = key
                .split_once('/')
                .is_some_and(|(namespace, name)| state.pod_id(namespace, name).is_some());
            let netns = identity.live_netns().map(Path::to_path_buf);
            if let Some(recorded) = self.pods.get(&key) {
                // Recorded twice: by builds of two layouts, as a take-over in place
                // ([`take_over_connect_filter`]) that a crash interrupted leaves it, the new
                // record complete (pinned before the links were switched), the old one not
                // yet removed. Whatever the sort order of the layouts, the record whose
                // programs run stands: this layout's whose filter was adopted (the attempts
                // its links count carry its tag), else one that holds the links. The other
                // is dropped with its pins (the links stay, pinned in the one that stands).
                let replaces = recorded.superseded.as_ref().is_some_and(|superseded| {
                    workload.filter.is_some()
                        || (!superseded.holds_links() && workload.pin.holds_links())
                });
                if !replaces {
                    continue;
                }
                self.pods.remove(&key);
            }
            if !known {
                tracing::info!(pod = %key, "A pod the previous agent enforced is not in the policy; its firewall is removed.");
                if let Some(netns) = &netns
                    && let Err(error) = NftFirewall::new(netns).and_then(NftFirewall::remove)
                {
                    tracing::warn!(%error, pod = %key, "Cannot remove the pod's nftables table.");
                }
                continue;
            }
            let PinnedWorkload { pin, filter } = workload;
            let mut enforcement = PodEnforcement {
                netns: netns.clone(),
                cgroup: identity.cgroup.clone(),
                tag: pin.tag(),
                installed: None,
                kernel_reported_rules: HashSet::new(),
                pin: None,
                superseded: None,
            };
            match (filter, netns) {
                (Some(filter), netns) => {
                    let netns = netns.as_deref().map(NftFirewall::new).transpose();
                    match netns {
                        Ok(Some(netns)) => {
                            enforcement.installed = Some(WorkloadFirewall::CgroupAndNetns {
                                netns,
                                cgroup: filter,
                            });
                        }
                        Ok(None) => enforcement.installed = Some(WorkloadFirewall::Cgroup(filter)),
                        Err(error) => {
                            tracing::warn!(%error, pod = %key, "Cannot reach the pod's nftables table; its connect programs alone are kept.");
                            enforcement.netns = None;
                            enforcement.installed = Some(WorkloadFirewall::Cgroup(filter));
                        }
                    }
                    enforcement.pin = Some(pin);
                }
                (None, _) if identity.cgroup.is_some() => {
                    // Programs whose maps this build cannot adopt: new ones, under a tag of
                    // their own, take their place in their links at the install; then the
                    // old record goes.
                    enforcement.tag = self.next_tag;
                    self.next_tag = self.next_tag.wrapping_add(1);
                    enforcement.superseded = Some(pin);
                }
                (None, Some(netns)) => match NftFirewall::new(&netns) {
                    Ok(table) => {
                        enforcement.installed = Some(WorkloadFirewall::Netns(table));
                        enforcement.pin = Some(pin);
                    }
                    Err(error) => {
                        tracing::warn!(%error, pod = %key, "Cannot reach the pod's nftables table.");
                        continue;
                    }
                },
                // Neither programs nor a reachable table: nothing is left to take over.
                (None, None) => continue,
            }
            if let Some(cgroup) = &identity.cgroup
                && let Ok(meta) = std::fs::metadata(cgroup)
            {
                self.cgroups.insert(meta.ino(), key.clone());
            }
            tracing::info!(pod = %key, netns = ?enforcement.netns, cgroup = ?enforcement.cgroup, "Took over the pod's firewall from the previous agent.");
            self.pods.insert(key, enforcement);
        }
    }

    /// Finds the network namespace and cgroup of the thread that made `event`, a thread of
    /// pod `pod_id`, and, the first time, installs the pod's rules there (block mode) or
    /// lists the open connections they refuse (alert mode). A short-lived process (`curl`
    /// from a shell) is often gone by then: its nearest living ancestor stands for it when
    /// that one is in the same cgroup, so in the same workload, else any living process of
    /// that cgroup (a process the runtime started in a container, as `kubectl exec` does,
    /// has its parents outside it). In the host's network namespace only the pod's cgroup is
    /// used.
    fn discover(
        &mut self,
        state: &State,
        pod_id: PodId,
        event: &Event,
        mode: DefenseMode,
    ) -> Vec<ListedConnection> {
        let Some(pod) = state.pod(pod_id) else {
            return Vec::new();
        };
        let key = pod.key();
        if self.pods.contains_key(&key) {
            return Vec::new();
        }
        let process = &event.process;
        let found = netns_of(process.pid, process.tid)
            .map(|netns| (netns, process.pid))
            .or_else(|| {
                if event.cgroup_id == 0 {
                    return None;
                }
                let ancestors = std::iter::once(process.ppid)
                    .chain(event.ancestors.iter().map(|ancestor| ancestor.pid))
                    .filter(|&pid| pid > 1)
                    .filter(|&pid| cgroup_id_of(pid) == Some(event.cgroup_id));
                // Read only when no ancestor is left: a `kubectl exec`'s process.
                let others =
                    std::iter::once_with(|| processes_of_cgroup(event.cgroup_id)).flatten();
                ancestors
                    .chain(others)
                    .find_map(|pid| Some((netns_of(pid, pid)?, pid)))
            });
        let Some((netns, pid)) = found else {
            tracing::debug!(pod = %key, pid = process.pid, "The pod's process is gone, with no living process left in its cgroup; a later event of the pod may find it.");
            return Vec::new();
        };
        let container_cgroup = workload_cgroup(pid, event.cgroup_id);
        if let Some(cgroup) = &container_cgroup
            && let Ok(meta) = std::fs::metadata(cgroup)
        {
            self.cgroups.insert(meta.ino(), key.clone());
        }
        let pod_uid = event
            .container
            .as_ref()
            .and_then(|container| container.k8s.as_ref())
            .map(|k8s| k8s.pod_uid.as_str())
            .filter(|uid| !uid.is_empty());
        // Without the pod's UID (the sensor did not know the container yet, and the pod was
        // found by its address), a directory named like kubelet's pod cgroups stands for it.
        let cgroup = container_cgroup.map(|container| {
            pod_cgroup(&container, pod_uid).unwrap_or_else(|| {
                if let Some(pod_uid) = pod_uid {
                    tracing::warn!(pod = %key, pod_uid, cgroup = %container.display(), "No pod-level cgroup above the container's: the container's own gets the connect programs, so the pod's other containers are not covered.");
                }
                container
            })
        });
        let netns = match netns {
            Netns::Own(path) => Some(path),
            // Nothing can be enforced for this process (an nftables table would change the
            // host's networking); a later event of the pod may come from its own cgroup.
            Netns::Host if cgroup.is_none() => {
                tracing::debug!(pod = %key, pid, "A process of the pod in the host's network namespace has no cgroup of its own.");
                return Vec::new();
            }
            Netns::Host => None,
        };
        tracing::info!(pod = %key, netns = ?netns, cgroup = ?cgroup, "Found the pod's network namespace and cgroup.");
        let mut enforcement = PodEnforcement {
            netns,
            cgroup,
            tag: self.next_tag,
            installed: None,
            kernel_reported_rules: HashSet::new(),
            pin: None,
            superseded: None,
        };
        self.next_tag = self.next_tag.wrapping_add(1);
        let listed = match mode {
            DefenseMode::Block => enforcement.enforce(
                state,
                pod_id,
                &key,
                &mut self.connect_reports,
                self.pins.as_ref(),
            ),
            DefenseMode::Alert => enforcement.list_refused(state, pod_id, &key),
        };
        self.pods.insert(key, enforcement);
        listed
    }

    /// The pod whose cgroup has id `cgroup_id`, if it is one of the pods found.
    fn pod_of_cgroup(&self, cgroup_id: u64, state: &State) -> Option<PodId> {
        let (namespace, name) = self.cgroups.get(&cgroup_id)?.split_once('/')?;
        state.pod_id(namespace, name)
    }

    /// Whether pod `pod_id` has a firewall installed (its `alert` or `block` rules).
    fn has_firewall(&self, state: &State, pod_id: PodId) -> bool {
        state
            .pod(pod_id)
            .and_then(|pod| self.pods.get(&pod.key()))
            .is_some_and(|pod| pod.installed.is_some())
    }

    /// The ids of the rules whose matches pod `pod_id`'s connect programs report, if any.
    fn kernel_reported_rules(&self, state: &State, pod_id: PodId) -> Option<&HashSet<u32>> {
        let rules = &self
            .pods
            .get(&state.pod(pod_id)?.key())?
            .kernel_reported_rules;
        (!rules.is_empty()).then_some(rules)
    }

    /// Installs `state`'s rules for every pod found (block mode; pods the state no longer
    /// lists lose their enforcement) or lists the open connections they refuse (alert mode).
    fn reapply(&mut self, state: &State, mode: DefenseMode) -> Vec<ListedConnection> {
        self.settle_adopted(state);
        let mut listed = Vec::new();
        let connect_reports = &mut self.connect_reports;
        let pins = self.pins.as_ref();
        self.pods.retain(|key, enforcement| {
            let Some((namespace, name)) = key.split_once('/') else {
                return false;
            };
            match state.pod_id(namespace, name) {
                Some(pod_id) => {
                    listed.extend(match mode {
                        DefenseMode::Block => {
                            enforcement.enforce(state, pod_id, key, connect_reports, pins)
                        }
                        DefenseMode::Alert => enforcement.list_refused(state, pod_id, key),
                    });
                    true
                }
                None => false,
            }
        });
        let pods = &self.pods;
        self.cgroups.retain(|_, key| pods.contains_key(key));
        listed
    }
}

impl PodEnforcement {
    /// Brings the pod's enforcement in line with `state`: installs (or replaces) its rules
    /// while it has an `alert` or `block` rule, removes them otherwise, and closes the open
    /// connections the new rules refuse (those it cannot close are listed open). Connect
    /// programs report into `connect_reports`, created here the first time.
    fn enforce(
        &mut self,
        state: &State,
        pod_id: PodId,
        key: &str,
        connect_reports: &mut ReportStream,
        pins: Option<&FirewallPins>,
    ) -> Vec<ListedConnection> {
        let rules = workload_rules(state, pod_id, DefenseMode::Block);
        let needed = rules
            .egress
            .iter()
            .chain(&rules.ingress)
            .any(|rule| rule.action != RuleAction::Allow);
        if !needed {
            self.kernel_reported_rules.clear();
            if self.installed.take().is_some() {
                tracing::info!(pod = %key, "The pod has no alert or block rule left; its firewall is removed.");
            }
            self.pin = None;
            self.superseded = None;
            return Vec::new();
        }
        if self.installed.is_none() {
            match self.install(key, &rules, connect_reports, pins) {
                Ok((firewall, pin)) => {
                    tracing::info!(pod = %key, netns = ?self.netns, cgroup = ?self.cgroup, "Enforcing the pod's firewall rules.");
                    self.installed = Some(firewall);
                    self.pin = pin;
                }
                Err(error) => {
                    tracing::warn!(%error, pod = %key, "Cannot enforce the pod's firewall rules.");
                    return Vec::new();
                }
            }
        }
        let Some(firewall) = &self.installed else {
            return Vec::new();
        };
        self.kernel_reported_rules = match firewall {
            WorkloadFirewall::Cgroup(_) | WorkloadFirewall::CgroupAndNetns { .. } => rules
                .egress
                .iter()
                .filter(|rule| rule.action != RuleAction::Allow)
                .map(|rule| rule.id)
                .collect(),
            WorkloadFirewall::Netns(_) => HashSet::new(),
        };
        let Some(listed) = apply_rules(firewall, &rules, key) else {
            return Vec::new();
        };
        // The record a dead agent of another layout left goes only now that the pod's own
        // programs have its rules: they took the old ones' place in their links (pinned with
        // the pod's new record), or, attached beside them, refused nothing until now, while
        // the old ones refused on (a connect passes only when every program attached allows
        // it).
        self.superseded = None;
        listed
            .into_iter()
            .map(|(refused, closed)| ListedConnection {
                pod: pod_id,
                refused,
                closed,
            })
            .collect()
    }

    /// The open connections of the pod that `state`'s `block` rules for it would refuse,
    /// listed and left open (alert mode: nothing is installed).
    fn list_refused(&self, state: &State, pod_id: PodId, key: &str) -> Vec<ListedConnection> {
        let rules = workload_rules(state, pod_id, DefenseMode::Block);
        let refuses_any = rules
            .egress
            .iter()
            .chain(&rules.ingress)
            .any(|rule| rule.action == RuleAction::Block);
        let place = match (&self.netns, &self.cgroup) {
            _ if !refuses_any => return Vec::new(),
            (Some(netns), _) => ConnectionsOf::Netns(netns),
            (None, Some(cgroup)) => ConnectionsOf::Cgroup(cgroup),
            (None, None) => return Vec::new(),
        };
        match open_connections_refused_at(place, &rules) {
            Ok(refused) => refused
                .into_iter()
                .map(|refused| ListedConnection {
                    pod: pod_id,
                    refused,
                    closed: false,
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, pod = %key, "Cannot list the open connections the new rules refuse.");
                Vec::new()
            }
        }
    }

    /// The connect programs on the pod's cgroup with the nftables table in its network
    /// namespace beside them; either alone when the other cannot be used (the table alone
    /// enforces egress too; the programs alone are all a host-network pod gets). With
    /// `pins`, the pod is recorded there first, and its programs pinned with the record.
    /// The programs of a dead agent of another layout on the cgroup are taken over: this
    /// build's, holding `rules` already, take their place in their links.
    fn install(
        &self,
        key: &str,
        rules: &WorkloadRules,
        connect_reports: &mut ReportStream,
        pins: Option<&FirewallPins>,
    ) -> Result<(WorkloadFirewall, Option<WorkloadPin>), String> {
        let pin = pins
            .map(|pins| {
                let netns_inode = self
                    .netns
                    .as_deref()
                    .and_then(|netns| std::fs::metadata(netns).ok())
                    .map_or(0, |meta| meta.ino());
                pins.record_workload(
                    self.tag,
                    WorkloadIdentity {
                        name: key.to_owned(),
                        cgroup: self.cgroup.clone(),
                        netns: self.netns.clone(),
                        netns_inode,
                    },
                )
            })
            .transpose()
            .map_err(|error| error.to_string())?;
        let filter = match &self.cgroup {
            Some(cgroup) => {
                let attached = match (&self.superseded, &pin) {
                    (Some(superseded), Some(pin)) => take_over_connect_filter(
                        cgroup,
                        superseded,
                        pin,
                        &rules.egress,
                        connect_reports,
                    ),
                    _ => attach_connect_filter(cgroup, self.tag, connect_reports, pin.as_ref()),
                };
                match attached {
                    Ok(filter) => Some(filter),
                    Err(error) if self.netns.is_some() => {
                        tracing::warn!(%error, cgroup = %cgroup.display(), "Cannot attach connect programs; the pod's nftables table enforces its egress rules alone.");
                        None
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
            None => None,
        };
        let netns = self
            .netns
            .as_deref()
            .map(NftFirewall::new)
            .transpose()
            .map_err(|error| error.to_string())?;
        match (filter, netns) {
            (Some(cgroup), Some(netns)) => {
                Ok((WorkloadFirewall::CgroupAndNetns { cgroup, netns }, pin))
            }
            (Some(cgroup), None) => Ok((WorkloadFirewall::Cgroup(cgroup), pin)),
            (None, Some(netns)) => Ok((WorkloadFirewall::Netns(netns), pin)),
            (None, None) => Err(
                "the pod is in the host's network namespace (an nftables table \
                                 there would change the host's networking) and has no cgroup of \
                                 its own for connect programs (its cgroup is the cgroup2 root or \
                                 holds the agent); run it in a cgroup of its own"
                    .to_owned(),
            ),
        }
    }
}

/// Attaches connect programs to `cgroup`, reporting into the shared stream (created the
/// first time), pinned with `pin` when given.
fn attach_connect_filter(
    cgroup: &Path,
    tag: u32,
    connect_reports: &mut ReportStream,
    pin: Option<&WorkloadPin>,
) -> Result<ConnectFilter, palisade_enforce::Error> {
    let stream = connect_reports.get()?;
    match pin {
        Some(pin) => pin.attach_filter(cgroup, stream),
        None => ConnectFilter::attach(cgroup, stream, tag),
    }
}

/// Puts this build's connect programs, holding `rules`, in place of those a dead agent of
/// another layout left on `cgroup` (recorded in `superseded`), pinned with `pin` and
/// reporting into the shared stream, so that no connect is counted by both; when their
/// links cannot be taken over (then none is: the links a failed switch had switched are put
/// back on the old programs, see `ConnectFilter::take_over_links`), attaches new programs
/// beside them (until the old record goes, a connect is then counted by both: alerted, and
/// lost with the removed stream; on a hook whose link could not be put back, which the
/// error names, it is alerted twice).
fn take_over_connect_filter(
    cgroup: &Path,
    superseded: &WorkloadPin,
    pin: &WorkloadPin,
    rules: &[NetRule],
    connect_reports: &mut ReportStream,
) -> Result<ConnectFilter, palisade_enforce::Error> {
    let taken_over = pin.take_over_filter(superseded, cgroup, connect_reports.get()?, rules);
    match taken_over {
        Ok(filter) => {
            tracing::info!(cgroup = %cgroup.display(), "Took over the previous agent's connect programs in place.");
            Ok(filter)
        }
        Err(error) => {
            tracing::warn!(%error, cgroup = %cgroup.display(), "Cannot take over the previous agent's connect programs in place; new ones go beside them until they have the pod's rules.");
            attach_connect_filter(cgroup, pin.tag(), connect_reports, Some(pin))
        }
    }
}

/// Installs `rules` and closes the open connections they refuse; returns those, each with
/// whether it was closed (when closing fails they are listed open), or `None` when the rules
/// could not be installed.
fn apply_rules(
    firewall: &WorkloadFirewall,
    rules: &WorkloadRules,
    key: &str,
) -> Option<Vec<(WouldRefuse, bool)>> {
    match firewall.apply(rules) {
        Ok(not_enforced) => {
            for reason in not_enforced {
                tracing::warn!(pod = %key, %reason, "A firewall rule is not enforced.");
            }
        }
        Err(error) => {
            tracing::error!(%error, pod = %key, "Cannot install the pod's firewall rules.");
            return None;
        }
    }
    match firewall.close_connections_refused_by(rules) {
        Ok(RefusedClosing {
            connections,
            errors,
        }) => {
            for error in errors {
                tracing::warn!(%error, pod = %key, "Cannot close an open connection the new rules refuse; it is listed open.");
            }
            Some(connections)
        }
        Err(error) => {
            tracing::warn!(%error, pod = %key, "Cannot close the open connections the new rules refuse; they are listed open.");
            let open = firewall
                .open_connections_refused_by(rules)
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, pod = %key, "Cannot list the open connections the new rules refuse.");
                    Vec::new()
                });
            Some(open.into_iter().map(|open| (open, false)).collect())
        }
    }
}

/// The cgroup2 directory of process `pid` when connect programs may go there: it is the
/// directory with id `cgroup_id` (when given), not the cgroup2 root, and it does not hold
/// the agent's own process (nor is an ancestor of the agent's cgroup).
fn workload_cgroup(pid: u32, cgroup_id: u64) -> Option<PathBuf> {
    let listing = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let theirs = unified_cgroup(&listing)?;
    let path = cgroup2_root().ok()?.join(theirs);
    let inode = std::fs::metadata(&path).ok()?.ino();
    (may_hold_connect_programs(theirs)? && (cgroup_id == 0 || inode == cgroup_id)).then_some(path)
}

/// Whether connect programs may go on the cgroup2 directory `relative` (to the cgroup2
/// root): not the root itself, nor one that holds the agent's own process or is an
/// ancestor of its cgroup. `None` when the agent's cgroup cannot be read.
fn may_hold_connect_programs(relative: &Path) -> Option<bool> {
    let listing = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = unified_cgroup(&listing)?;
    Some(!relative.as_os_str().is_empty() && !own.starts_with(relative))
}

/// The pod-level cgroup2 directory above a container's: its nearest ancestor named as
/// kubelet names pod cgroups ([`is_pod_cgroup_name`]; with the pod's UID when it is known),
/// when connect programs may go there.
fn pod_cgroup(container_cgroup: &Path, pod_uid: Option<&str>) -> Option<PathBuf> {
    let root = cgroup2_root().ok()?;
    let pod_dir = container_cgroup
        .ancestors()
        .skip(1)
        .take_while(|dir| dir.starts_with(&root) && *dir != root)
        .find(|dir| {
            dir.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| is_pod_cgroup_name(name, pod_uid))
        })?;
    may_hold_connect_programs(pod_dir.strip_prefix(&root).ok()?)?.then(|| pod_dir.to_path_buf())
}

/// Whether cgroup directory `name` is a pod-level one as kubelet names them — `pod<uid>`
/// (cgroupfs driver) or `kubepods-<class>-pod<uid, - as _>.slice` (systemd) — of the pod with
/// UID `pod_uid`, or of any pod when the UID is not known.
fn is_pod_cgroup_name(name: &str, pod_uid: Option<&str>) -> bool {
    let name = name.strip_suffix(".slice").unwrap_or(name);
    let Some(uid) = name.len().checked_sub(36).and_then(|at| name.get(at..)) else {
        return false;
    };
    let prefix = &name[..name.len() - 36];
    let named_pod = prefix == "pod" || prefix.ends_with("-pod");
    let is_uuid = uid.char_indices().all(|(index, char)| match index {
        8 | 13 | 18 | 23 => char == '-' || char == '_',
        _ => char.is_ascii_hexdigit(),
    });
    named_pod
        && is_uuid
        && pod_uid.is_none_or(|wanted| uid.replace('_', "-").eq_ignore_ascii_case(wanted))
}

/// The id (directory inode) of process `pid`'s cgroup2 directory, while it runs.
fn cgroup_id_of(pid: u32) -> Option<u64> {
    let listing = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let relative = unified_cgroup(&listing)?;
    Some(
        std::fs::metadata(cgroup2_root().ok()?.join(relative))
            .ok()?
            .ino(),
    )
}

/// The processes of the cgroup with id `cgroup_id`, found by the id (so also when no process
/// of it is known); none when it is gone or cannot be opened.
fn processes_of_cgroup(cgroup_id: u64) -> Vec<u32> {
    let Ok(cgroup) = palisade_sensor::open_cgroup(cgroup_id) else {
        return Vec::new();
    };
    std::fs::read_to_string(format!("/proc/self/fd/{}/cgroup.procs", cgroup.as_raw_fd()))
        .map(|procs| procs.lines().filter_map(|pid| pid.parse().ok()).collect())
        .unwrap_or_default()
}

/// The network namespace a thread is in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Netns {
    /// The host's: the agent's own (it runs in the host's network namespace) or pid 1's.
    Host,
    /// Another one, by a path that outlives the thread.
    Own(PathBuf),
}

/// The network namespace of thread `tid` of `pid`: the host's, or a path to it that
/// outlives the thread — the named namespace (`/run/netns/NAME`) with the same inode, else
/// the process's own namespace file when the thread shares it. `None` when the thread is
/// gone.
///
/// The agent's own namespace counts as the host's: pid 1's cannot always be read (a
/// sandboxed init hides it), and taking the host's namespace for a pod's would put an
/// nftables table on the host.
fn netns_of(pid: u32, tid: u32) -> Option<Netns> {
    let inode = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
    };
    let thread_netns = inode(&PathBuf::from(format!("/proc/{pid}/task/{tid}/ns/net")))?;
    let host_paths = [Path::new("/proc/self/ns/net"), Path::new("/proc/1/ns/net")];
    if host_paths
        .iter()
        .any(|path| inode(path) == Some(thread_netns))
    {
        return Some(Netns::Host);
    }
    if let Ok(entries) = std::fs::read_dir(NAMED_NETNS_DIR) {
        for entry in entries.flatten() {
            if inode(&entry.path()) == Some(thread_netns) {
                return Some(Netns::Own(entry.path()));
            }
        }
    }
    let process_netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    (inode(&process_netns) == Some(thread_netns)).then_some(Netns::Own(process_netns))
}

/// Converts the server's rules into the engine's. A rule naming a network object the base
/// state does not define is left out (and named in the result), since the engine refuses a
/// policy with dangling references.
pub fn compose_policy(
    base: &State,
    rules: &[palisade_model::FirewallRule],
) -> (State, Vec<String>) {
    let mut state = base.clone();
    let mut skipped = Vec::new();
    let known = |name: &str| {
        base.network_objects()
            .iter()
            .any(|object| object.name == name)
    };
    for stored in rules {
        let rule = &stored.rule;
        let missing: Vec<&str> = [rule.source.as_str(), rule.destination.as_str()]
            .into_iter()
            .filter(|name| !known(name))
            .collect();
        if !missing.is_empty() {
            skipped.push(format!(
                "rule {:?}: no network object named {}",
                rule.name,
                missing.join(" or ")
            ));
            continue;
        }
        let protocol = match rule.protocol.as_deref().map(str::parse::<Protocol>) {
            None => None,
            Some(Ok(protocol)) => Some(protocol),
            Some(Err(error)) => {
                skipped.push(format!("rule {:?}: {error}", rule.name));
                continue;
            }
        };
        state.insert_firewall_rule(FirewallRule {
            name: rule.name.clone(),
            source: rule.source.clone(),
            destination: rule.destination.clone(),
            ports: rule
                .ports
                .iter()
                .map(|range| (range.start, range.end))
                .collect(),
            protocol,
            action: match rule.action {
                FirewallAction::Allow => RuleAction::Allow,
                FirewallAction::Alert => RuleAction::Alert,
                FirewallAction::Block => RuleAction::Block,
            },
            priority: rule.priority,
            enabled: rule.enabled,
        });
    }
    (state, skipped)
}

/// Polls the server's firewall rules every `every` (with `If-None-Match`, so an unchanged
/// set costs an empty response), and sends each changed set, composed with `base`, to
/// `updates`. Returns when the watch is gone (the channel is closed). While the server is out
/// of reach the rules in force stay.
pub async fn poll_firewall_rules(
    link: crate::Link,
    credential: crate::Credential,
    base: State,
    updates: PolicyUpdates,
    every: Duration,
) {
    let mut etag: Option<String> = None;
    loop {
        match link.firewall_rules(&credential, etag.as_deref()).await {
            Ok(Some((new_etag, rules))) => {
                let (state, skipped) = compose_policy(&base, &rules);
                for reason in &skipped {
                    tracing::warn!(%reason, "A firewall rule from the server is not applied.");
                }
                if updates.send(state).is_err() {
                    return;
                }
                etag = Some(new_etag);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "Cannot fetch the firewall rules; keeping the current ones.")
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests;
