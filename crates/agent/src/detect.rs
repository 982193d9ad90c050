//! Runtime detection: events in, alert reports out.
//!
//! [`Detector`] is an [`EventSink`]: whoever produces events (the sensor, a recording, the
//! Kubernetes audit webhook) hands them over one by one; every rule that matches becomes a
//! [`FindingReport`] carrying what the console's details and diagnosis views need — the
//! process, its ancestry, the container and pod, the rule's description, MITRE technique and
//! suggested response, and the raw event.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use palisade_event::{Event, EventKind, EventSink};
use palisade_model::{
    AffectedAsset, AlertCategory, AlertDetails, Ancestor, Details, FindingReport, ProcessInfo,
    Severity, Timestamp,
};
use palisade_rules::{Alert, Engine};
use uuid::Uuid;

use crate::respond::{Responder, ResponseOutcome};
use crate::{EventObserver, Receipt};

/// Evaluates events against a rule engine and its [`EventObserver`]s, and collects reports.
pub struct Detector {
    engine: Engine,
    /// Rule name → description, looked up for every alert.
    descriptions: HashMap<String, String>,
    cluster: String,
    node: String,
    matched: Vec<Alert>,
    reports: Vec<FindingReport>,
    events: u64,
    observers: Vec<Box<dyn EventObserver>>,
    responder: Responder,
}

impl Detector {
    /// The longest time between two ticks when no observer asks for less: how long the
    /// sensor is polled for before [`Detector::tick`].
    pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_millis(200);

    /// A detector for the node `node` of `cluster`, ready for the response actions `engine`
    /// enables ([`Responder::for_engine`]): make it before the sensor starts.
    pub fn new(engine: Engine, cluster: &str, node: &str) -> Detector {
        let descriptions = engine
            .rule_set()
            .rules()
            .iter()
            .map(|rule| (rule.name.clone(), rule.desc.clone()))
            .collect();
        let responder = Responder::for_engine(&engine);
        Detector {
            engine,
            descriptions,
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            matched: Vec::new(),
            reports: Vec::new(),
            events: 0,
            observers: Vec::new(),
            responder,
        }
    }

    /// Adds an observer that sees every event after the rules engine.
    pub fn with_observer(mut self, observer: Box<dyn EventObserver>) -> Detector {
        self.observers.push(observer);
        self
    }

    /// Whether a rule reads process cgroups (`thread.cgroups`, `thread.cgroup.<controller>`),
    /// which the sensor then reads at every exec and fork.
    pub fn reads_cgroups(&self) -> bool {
        self.engine.reads_cgroups()
    }

    /// Whether a rule reads process environments, which the sensor then captures.
    pub fn reads_environment(&self) -> bool {
        self.engine.reads_environment()
    }

    /// Whether a rule reads a process's descriptors (`proc.fdopencount`, `proc.fdlimit`,
    /// `proc.fdusage`), whose limit the sensor then reads at every event.
    pub fn reads_fd_state(&self) -> bool {
        self.engine.reads_fd_state()
    }

    /// Whether a rule reads the count of a process's open descriptors (`proc.fdopencount`,
    /// `proc.fdusage`), which the sensor then counts at every event.
    pub fn counts_open_fds(&self) -> bool {
        self.engine.counts_open_fds()
    }

    /// Whether a rule reads what a process has on descriptors 0, 1 and 2
    /// (`proc.stdin.type` and its kin, `fd.types`), which the sensor then reads at every event.
    pub fn reads_std_fds(&self) -> bool {
        self.engine.reads_std_fds()
    }

    /// The event kinds the rules and the observers need: what the sensor must report.
    pub fn event_kinds(&self) -> BTreeSet<EventKind> {
        let mut kinds: BTreeSet<EventKind> = self.engine.event_kinds().collect();
        for observer in &self.observers {
            kinds.extend(observer.kinds());
        }
        kinds
    }

    /// Lets every observer flush what it aggregated; call it regularly, with or without
    /// events.
    pub fn tick(&mut self, now: Timestamp) {
        for observer in &mut self.observers {
            observer.tick(now, &mut self.reports);
        }
    }

    /// How long the caller may wait for events before the next [`Detector::tick`]: the
    /// shortest [`EventObserver::tick_interval`], at most
    /// [`Detector::DEFAULT_TICK_INTERVAL`].
    pub fn tick_interval(&self) -> Duration {
        self.observers
            .iter()
            .map(|observer| observer.tick_interval())
            .fold(Detector::DEFAULT_TICK_INTERVAL, Duration::min)
    }

    /// The reports the observers' own kernel sources lost so far, summed
    /// ([`EventObserver::reports_lost`]).
    pub fn observer_reports_lost(&self) -> u64 {
        self.observers
            .iter()
            .map(|observer| observer.reports_lost())
            .sum()
    }

    /// The observers' receipts for the reports given out since the last call
    /// ([`EventObserver::take_receipt`]): to be pushed into the outbox with those reports,
    /// then handed to [`Detector::delivered`].
    pub fn take_receipts(&mut self) -> Vec<Receipt> {
        self.observers
            .iter_mut()
            .filter_map(|observer| observer.take_receipt())
            .collect()
    }

    /// Tells every observer that the outbox holds `receipts` ([`EventObserver::delivered`]):
    /// after a push, and at start with the outbox's receipts.
    pub fn delivered(&mut self, receipts: &[Receipt]) {
        for receipt in receipts {
            for observer in &mut self.observers {
                observer.delivered(receipt);
            }
        }
    }

    /// The engine, e.g. to ask which event kinds its rules need.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Events evaluated so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The cluster and node the detector reports for.
    pub fn node(&self) -> (&str, &str) {
        (&self.cluster, &self.node)
    }

    /// Adds a report of the agent's own (a node-health alert) to those collected.
    pub fn record_report(&mut self, report: FindingReport) {
        self.reports.push(report);
    }

    /// The reports collected since the last call.
    pub fn take_reports(&mut self) -> Vec<FindingReport> {
        std::mem::take(&mut self.reports)
    }

    /// Records that the event source lost `lost` events (a full kernel ring buffer): a
    /// high-severity sensor-health alert on this node, so that a gap in detection is never
    /// silent. Repeats aggregate into one finding per hour like any alert.
    pub fn record_lost_events(&mut self, lost: u64, at: Timestamp) {
        if lost == 0 {
            return;
        }
        self.reports.push(node_health_report(
            &self.cluster,
            &self.node,
            NodeHealth {
                rule: LOST_EVENTS_RULE,
                title: format!("{lost} kernel events lost on {}", self.node),
                description: "The sensor's ring buffer was full, so the kernel dropped events \
                              and rules could not see them.",
                output: format!("{lost} events lost"),
                suggested_response: "Check the node's load; raise the ring buffer size or \
                                     narrow the rules if losses repeat.",
                raw_event: serde_json::json!({ "events_lost": lost }),
            },
            at,
        ));
    }
}

/// What a node-health alert says: a gap in what the node's agent saw or did (events lost,
/// scans dropped, reports lost).
pub(crate) struct NodeHealth<'a> {
    /// The alert name (its aggregation key with the node).
    pub rule: &'a str,
    /// One line naming the gap and the node.
    pub title: String,
    /// What happened and what it means for detection.
    pub description: &'a str,
    /// The numbers.
    pub output: String,
    /// What to do about it.
    pub suggested_response: &'a str,
    /// The numbers as JSON.
    pub raw_event: serde_json::Value,
}

/// A high-severity sensor-health alert on node `node` of `cluster`; repeats aggregate into
/// one finding per hour like any alert.
pub(crate) fn node_health_report(
    cluster: &str,
    node: &str,
    health: NodeHealth<'_>,
    at: Timestamp,
) -> FindingReport {
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: at,
        severity: Severity::High,
        rule: health.rule.to_owned(),
        title: health.title,
        asset: AffectedAsset {
            cluster: cluster.to_owned(),
            node: Some(node.to_owned()),
            ..AffectedAsset::default()
        },
        details: Details::Alert(AlertDetails {
            category: Some(AlertCategory::SensorHealth),
            description: health.description.to_owned(),
            output: health.output,
            suggested_response: health.suggested_response.to_owned(),
            raw_event: health.raw_event,
            ..AlertDetails::default()
        }),
        demo: false,
    }
}

/// The rule name of sensor-health alerts about lost events.
pub const LOST_EVENTS_RULE: &str = "Kernel events lost";

impl EventSink for Detector {
    fn send(&mut self, event: Event) {
        self.events += 1;
        self.engine.process(&event, &mut self.matched);
        for alert in self.matched.drain(..) {
            let description = self
                .descriptions
                .get(&alert.rule)
                .map_or("", String::as_str);
            let mut report = alert_report(&alert, description, &event, &self.cluster, &self.node);
            let outcomes = self.responder.respond(&alert, &event);
            if !outcomes.is_empty()
                && let Details::Alert(details) = &mut report.details
            {
                // What was done travels with the raw event to the diagnosis view.
                details.raw_event["response"] =
                    outcomes.iter().map(ResponseOutcome::to_json).collect();
            }
            self.reports.push(report);
        }
        for observer in &mut self.observers {
            observer.observe(&event, &mut self.reports);
        }
    }
}

/// The finding report for `alert`, raised by `event` on `node` of `cluster`.
pub fn alert_report(
    alert: &Alert,
    description: &str,
    event: &Event,
    cluster: &str,
    node: &str,
) -> FindingReport {
    let process = &event.process;
    let container = event.container.as_ref();
    let pod = container.and_then(|container| container.k8s.as_ref());
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let nanos = i64::try_from(alert.timestamp_ns.max(event.timestamp_ns)).unwrap_or(i64::MAX);
    FindingReport {
        id: Uuid::now_v7(),
        observed_at: Timestamp(nanos / 1_000_000),
        severity: alert.priority.into(),
        rule: alert.rule.clone(),
        title: alert.rule.clone(),
        asset: AffectedAsset {
            cluster: cluster.to_owned(),
            node: non_empty(node),
            namespace: pod.and_then(|pod| non_empty(&pod.namespace)),
            workload: None,
            pod: pod.and_then(|pod| non_empty(&pod.pod_name)),
            container_id: container.and_then(|container| non_empty(&container.id)),
            container_name: pod
                .and_then(|pod| non_empty(&pod.container_name))
                .or_else(|| container.and_then(|container| non_empty(&container.name))),
            image: container.and_then(|container| non_empty(&container.image)),
            image_digest: container.and_then(|container| non_empty(&container.image_digest)),
        },
        details: Details::Alert(AlertDetails {
            category: alert.category.map(AlertCategory::from),
            mitre: alert.mitre_techniques.first().cloned(),
            description: description.to_owned(),
            output: alert.output.clone(),
            process: ProcessInfo {
                pid: process.pid,
                ppid: process.ppid,
                exe: or_else(&process.exepath, || process.exe.to_string()),
                cmdline: command_line(&process.name, &process.args),
                user: or_else(&process.user, || process.uid.to_string()),
            },
            ancestry: event
                .ancestors
                .iter()
                .map(|ancestor| Ancestor {
                    pid: ancestor.pid,
                    exe: or_else(&ancestor.exepath, || ancestor.exe.to_string()),
                    args: ancestor.args.to_vec(),
                    user: or_else(&ancestor.user, || ancestor.uid.to_string()),
                    start_time: Timestamp(
                        i64::try_from(ancestor.start_time_ns / 1_000_000).unwrap_or(i64::MAX),
                    ),
                    container_id: non_empty(&ancestor.container_id),
                })
                .collect(),
            suggested_response: alert.suggested_response.clone().unwrap_or_default(),
            // Environments hold secrets: the raw event leaves the node without them, and the
            // variables the rule reads travel as its evidence fields.
            raw_event: serde_json::json!({
                "event": event.without_environment(),
                "fields": alert.fields_json(),
            }),
        }),
        demo: false,
    }
}

/// `text`, or the fallback when the sensor could not fill it (the resolved executable path
/// before the kernel's name for it, the user name before the numeric uid).
fn or_else(text: &str, fallback: impl FnOnce() -> String) -> String {
    if text.is_empty() {
        fallback()
    } else {
        text.to_owned()
    }
}

/// `proc.cmdline` as Falco spells it: the name followed by the arguments.
fn command_line(name: &str, args: &[String]) -> String {
    std::iter::once(name)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use palisade_event::{Container, EventKind, K8sPod, Payload};
    use palisade_rules::{EngineConfig, RuleSet, RuleSource};

    use super::*;

    const RULES: &str = r#"
- rule: Shell in container
  desc: A shell ran inside a container.
  condition: evt.type = execve and container.id != host and proc.name = bash
  output: "Shell in %container.name (user=%user.name cmd=%proc.cmdline)"
  priority: WARNING
  tags: [intrusion, T1059.004, "suggest: Kill the shell and find how it started."]
"#;

    fn detector() -> Detector {
        let rule_set = RuleSet::load(&[RuleSource {
            name: "test.yaml".into(),
            text: RULES.into(),
        }]);
        assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
        Detector::new(
            Engine::new(rule_set, &EngineConfig::default()),
            "prod",
            "node-1",
        )
    }

    fn shell(container: Option<Container>) -> Event {
        let mut event = Event::new(EventKind::Execve);
        event.timestamp_ns = 1_700_000_000_123_000_000;
        event.process.pid = 4242;
        event.process.ppid = 4000;
        event.process.name = "bash".into();
        event.process.exepath = "/usr/bin/bash".into();
        event.process.args = vec!["-i".into()].into();
        event.process.user = "root".into();
        event.container = container.map(Into::into);
        event.payload = Payload::None;
        event.ancestors = vec![palisade_event::Ancestor {
            pid: 4000,
            exepath: "/usr/sbin/nginx".into(),
            args: vec!["-g".into(), "daemon off;".into()].into(),
            user: "www-data".into(),
            start_time_ns: 1_700_000_000_000_000_000,
            container_id: "c0ffee".into(),
            ..Default::default()
        }]
        .into();
        event
    }

    #[test]
    fn a_matching_event_becomes_an_alert_report_with_asset_process_and_ancestry() {
        let mut detector = detector();
        detector.send(shell(Some(Container {
            id: "c0ffee".into(),
            name: "k8s_web".into(),
            image: "docker.io/library/nginx:1.27".into(),
            k8s: Some(K8sPod {
                pod_name: "web-7f9".into(),
                namespace: "shop".into(),
                pod_uid: "uid-1".into(),
                container_name: "web".into(),
            }),
            ..Default::default()
        })));
        let reports = detector.take_reports();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.rule, "Shell in container");
        assert_eq!(report.severity, Severity::Medium);
        assert_eq!(report.observed_at, Timestamp(1_700_000_000_123));
        assert_eq!(report.asset.cluster, "prod");
        assert_eq!(report.asset.node.as_deref(), Some("node-1"));
        assert_eq!(report.asset.namespace.as_deref(), Some("shop"));
        assert_eq!(report.asset.pod.as_deref(), Some("web-7f9"));
        assert_eq!(report.asset.container_name.as_deref(), Some("web"));
        assert_eq!(
            report.asset.image.as_deref(),
            Some("docker.io/library/nginx:1.27")
        );
        let Details::Alert(details) = &report.details else {
            panic!("not an alert: {report:?}");
        };
        assert_eq!(details.category, Some(AlertCategory::Intrusion));
        assert_eq!(details.mitre.as_deref(), Some("T1059.004"));
        assert_eq!(details.description, "A shell ran inside a container.");
        assert_eq!(
            details.suggested_response,
            "Kill the shell and find how it started."
        );
        assert_eq!(details.process.exe, "/usr/bin/bash");
        assert_eq!(details.process.cmdline, "bash -i");
        assert_eq!(details.ancestry[0].exe, "/usr/sbin/nginx");
        assert_eq!(details.ancestry[0].container_id.as_deref(), Some("c0ffee"));
        assert_eq!(details.raw_event["event"]["process"]["pid"], 4242);
        assert_eq!(details.raw_event["fields"]["proc.name"], "bash");
        assert!(detector.take_reports().is_empty(), "reports are taken once");
        assert_eq!(detector.events(), 1);
    }

    #[test]
    fn the_raw_event_leaves_environments_behind_and_the_evidence_keeps_what_the_rule_reads() {
        let rule_set = RuleSet::load(&[RuleSource {
            name: "env.yaml".into(),
            text: "- rule: Token in shell\n  desc: d\n  condition: evt.type = execve and \
                   proc.env[DEPLOY_ENV] = prod\n  output: \"%proc.name\"\n  \
                   priority: WARNING\n"
                .into(),
        }]);
        let mut detector = Detector::new(
            Engine::new(rule_set, &EngineConfig::default()),
            "prod",
            "node-1",
        );
        assert!(detector.reads_environment());
        let mut event = shell(None);
        event.process.env = vec!["DEPLOY_ENV=prod".into(), "API_TOKEN=s3cret".into()].into();
        let mut ancestors = event.ancestors.to_vec();
        ancestors[0].env = vec!["PARENT_TOKEN=s3cret".into()].into();
        event.ancestors = ancestors.into();
        detector.send(event);
        let reports = detector.take_reports();
        let Details::Alert(details) = &reports[0].details else {
            panic!("not an alert");
        };
        let raw = details.raw_event.to_string();
        assert!(!raw.contains("s3cret") && !raw.contains("\"env\""), "{raw}");
        assert_eq!(details.raw_event["fields"]["proc.env[DEPLOY_ENV]"], "prod");
    }

    #[test]
    fn lost_events_raise_a_sensor_health_alert_on_the_node() {
        let mut detector = detector();
        detector.record_lost_events(0, Timestamp(1));
        assert!(detector.take_reports().is_empty(), "no loss, no alert");
        detector.record_lost_events(1234, Timestamp(5_000));
        let reports = detector.take_reports();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].rule, LOST_EVENTS_RULE);
        assert_eq!(reports[0].severity, Severity::High);
        assert_eq!(reports[0].asset.node.as_deref(), Some("node-1"));
        let Details::Alert(details) = &reports[0].details else {
            panic!("not an alert");
        };
        assert_eq!(details.category, Some(AlertCategory::SensorHealth));
        assert_eq!(details.raw_event["events_lost"], 1234);
    }

    /// Counts connects; reports the count on tick.
    struct ConnectCounter {
        seen: u64,
    }

    impl EventObserver for ConnectCounter {
        fn kinds(&self) -> BTreeSet<EventKind> {
            BTreeSet::from([EventKind::Connect])
        }

        fn observe(&mut self, event: &Event, _reports: &mut Vec<FindingReport>) {
            if event.kind == EventKind::Connect {
                self.seen += 1;
            }
        }

        fn tick(&mut self, now: Timestamp, reports: &mut Vec<FindingReport>) {
            if self.seen > 0 {
                let mut report = report_at(now);
                report.title = format!("{} connects", self.seen);
                reports.push(report);
                self.seen = 0;
            }
        }
    }

    fn report_at(at: Timestamp) -> FindingReport {
        FindingReport {
            id: Uuid::now_v7(),
            observed_at: at,
            severity: Severity::Info,
            rule: "connect counter".into(),
            title: String::new(),
            asset: AffectedAsset::default(),
            details: Details::Alert(AlertDetails::default()),
            demo: false,
        }
    }

    #[test]
    fn observers_see_every_event_widen_the_sensor_kinds_and_report_on_tick() {
        let detector = detector();
        assert!(!detector.event_kinds().contains(&EventKind::Connect));
        let mut detector = detector.with_observer(Box::new(ConnectCounter { seen: 0 }));
        assert!(detector.event_kinds().contains(&EventKind::Connect));
        assert!(
            detector.event_kinds().contains(&EventKind::Execve),
            "the rules' kinds stay"
        );
        detector.send(Event::new(EventKind::Connect));
        detector.send(Event::new(EventKind::Connect));
        detector.send(shell(None));
        assert!(
            detector.take_reports().is_empty(),
            "nothing before the tick"
        );
        detector.tick(Timestamp(9));
        let reports = detector.take_reports();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].title, "2 connects");
        assert_eq!(reports[0].observed_at, Timestamp(9));
        detector.tick(Timestamp(10));
        assert!(
            detector.take_reports().is_empty(),
            "counts are flushed once"
        );
    }

    #[test]
    fn host_processes_do_not_match_container_rules() {
        let mut detector = detector();
        detector.send(shell(None));
        assert!(detector.take_reports().is_empty());
    }
}
