//! Runtime detection inside an agent process (`palisade up`, `palisade agent`): the sensor on
//! its own thread, its events through the rules engine ([`palisade_agent::Detector`]), alert
//! reports into the outbox that the agent ships.
//!
//! The sensor's ring-buffer reader never waits on the server: reports go to the on-disk
//! outbox, and the agent's link drains it independently.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use anyhow::Context;
use palisade_agent::{
    AgentConfig, AgentStatus, Detector, EventObserver, Outbox, OutboxWriter, SensorHoldConfig,
};
use palisade_event::{Event, EventSink};
use palisade_k8smeta::{ApiConfig, MetaSource, PodMetaLookup, WatchSettings};
use palisade_model::Timestamp;
use palisade_rules::{Engine, EngineConfig, RuleMetadata, RuleSet, RuleSource};
use palisade_sensor::{BackendChoice, HoldLimits, Sensor, SensorConfig, SensorStatus};

use crate::sensor_status::{SENSOR_STATUS_FILE, SensorStatusFile, StatusWriter};

/// Runtime detection options shared by `palisade up` and `palisade agent`.
#[derive(Debug, clap::Args)]
pub struct DetectionArgs {
    /// Falco-format rules files, loaded after Palisade's default rules (later files override
    /// earlier ones); with `up`, the server's Kubernetes audit webhook runs their `k8s_audit`
    /// rules too.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not load Palisade's default rules.
    #[arg(long)]
    pub no_default_rules: bool,
    /// Do not start the runtime sensor (no runtime alerts from this node).
    #[arg(long)]
    pub no_sensor: bool,
    /// Size of the sensor's eBPF ring buffer in bytes (a power of two, at least 4096; by
    /// default 2 MiB per CPU, 4–64 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = SensorConfig::default().ring_buffer_bytes)]
    pub sensor_ring_buffer_bytes: u32,
    /// The sensor's event source: `ebpf` when its probes load, else the `fallback` (proc
    /// connector and fanotify: no network events), or either one forced.
    #[arg(long, value_enum, default_value_t = SensorBackend::Auto)]
    pub sensor_backend: SensorBackend,
    /// How long, in milliseconds, the sensor holds a container's events for its metadata
    /// while its runtime's store is read (a new container's first events); past it they go
    /// out with the container's id only (the agent configuration's `sensor_hold.max_wait_ms`).
    #[arg(long, value_name = "MS", default_value_t = SensorHoldConfig::default().max_wait_ms,
          value_parser = clap::value_parser!(u64).range(0..=HoldLimits::MAX_WAIT_CEILING.as_millis() as u64))]
    pub sensor_hold_ms: u64,
    /// How many events the sensor holds at most for their containers' metadata; past it the
    /// container waiting longest has its events sent at once (`sensor_hold.max_events`).
    #[arg(long, value_name = "EVENTS", default_value_t = SensorHoldConfig::default().max_events as u64,
          value_parser = clap::value_parser!(u64).range(1..=HoldLimits::MAX_EVENTS_CEILING as u64))]
    pub sensor_max_held_events: u64,
    /// The nice value (-20 to 19) of the thread that reads the sensor's events and evaluates
    /// the rules, raised so that under CPU load it keeps up instead of the kernel dropping
    /// events; `off` leaves it at the agent's (`sensor_reader_nice`), and an agent already
    /// running at a lower value keeps it. The sensor's container look-up workers run at the
    /// same value (a new container's events wait for their answers); what the thread starts
    /// afterwards runs at nice 0.
    #[arg(long, value_name = "NICE|off", allow_hyphen_values = true,
          default_value_t = ReaderNice(Some(palisade_sensor::DEFAULT_READER_NICE)),
          value_parser = ReaderNice::parse)]
    pub sensor_reader_nice: ReaderNice,
    /// Carry out the response actions the named rule requests (its `response.kill_process`,
    /// `response.deny_exec` tags) on its alerts; repeatable (the agent configuration's
    /// `respond_rules`). Every other rule's requests stay off. Each rule must be loaded,
    /// enabled and request an action, else the agent does not start.
    #[arg(long = "respond", value_name = "RULE", conflicts_with = "no_sensor")]
    pub respond: Vec<String>,
    /// The container firewall.
    #[command(flatten)]
    pub firewall: crate::cmd::firewall::AgentFirewallArgs,
    /// Malware scans of executed and written files.
    #[command(flatten)]
    pub malware: crate::cmd::scan_malware::AgentMalwareArgs,
    /// The Kubernetes API server's metadata for the k8s.* rule fields (pod labels and IP,
    /// namespace, replica set, deployment, services).
    #[command(flatten)]
    pub k8s: K8sApiArgs,
}

impl DetectionArgs {
    /// The agent configuration's `sensor_hold` these arguments ask for.
    pub fn sensor_hold(&self) -> SensorHoldConfig {
        SensorHoldConfig {
            max_wait_ms: self.sensor_hold_ms,
            max_events: usize::try_from(self.sensor_max_held_events).unwrap_or(usize::MAX),
        }
    }
}

/// `--sensor-reader-nice`: a nice value, or `None` (`off`) to leave the thread's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderNice(pub Option<i32>);

impl ReaderNice {
    fn parse(text: &str) -> Result<ReaderNice, String> {
        if text == "off" {
            return Ok(ReaderNice(None));
        }
        let range = palisade_sensor::READER_NICE_RANGE;
        match text.parse::<i32>() {
            Ok(nice) if range.contains(&nice) => Ok(ReaderNice(Some(nice))),
            _ => Err(format!(
                "`{text}` is neither a nice value ({} to {}) nor `off`",
                range.start(),
                range.end()
            )),
        }
    }
}

impl std::fmt::Display for ReaderNice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(nice) => write!(f, "{nice}"),
            None => f.write_str("off"),
        }
    }
}

/// Where the Kubernetes metadata comes from.
#[derive(Debug, clap::Args)]
pub struct K8sApiArgs {
    /// A kubeconfig file for the Kubernetes API server (its current context: server, CA,
    /// token or client certificate). Without it, an agent running in a pod uses its service
    /// account; elsewhere the API server's k8s.* fields stay absent.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name in Kubernetes: only its pods are watched [default: the agent's name;
    /// for `monitor`, the host name].
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub k8s_node_name: Option<String>,
    /// Do not query the Kubernetes API server.
    #[arg(long, conflicts_with = "kubeconfig")]
    pub no_k8s_api: bool,
}

impl K8sApiArgs {
    /// Starts following the API server these arguments name, if any. A kubeconfig that
    /// cannot be used is an error; a failed in-cluster set-up is reported and detection runs
    /// without the metadata.
    pub fn start(
        &self,
        agent_name: &str,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Option<MetaSource>> {
        if self.no_k8s_api {
            return Ok(None);
        }
        let config = match &self.kubeconfig {
            Some(path) => ApiConfig::from_kubeconfig(path)?,
            None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
                match ApiConfig::in_cluster() {
                    Ok(config) => config,
                    Err(error) => {
                        eprintln!(
                            "palisade: {error}; the k8s.* fields of the API server stay absent"
                        );
                        return Ok(None);
                    }
                }
            }
            None => return Ok(None),
        };
        let node = self.k8s_node_name.as_deref().unwrap_or(agent_name);
        let settings = WatchSettings {
            node: Some(node.to_owned()),
            ..WatchSettings::default()
        };
        let source = MetaSource::start(&config, settings, runtime)?;
        tracing::info!(server = %config.server, node, "Following the Kubernetes API server.");
        Ok(Some(source))
    }
}

/// `--sensor-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SensorBackend {
    /// eBPF, or the fallback when the probes cannot be loaded.
    Auto,
    /// eBPF only.
    Ebpf,
    /// The fallback only.
    Fallback,
}

impl From<SensorBackend> for BackendChoice {
    fn from(backend: SensorBackend) -> BackendChoice {
        match backend {
            SensorBackend::Auto => BackendChoice::Auto,
            SensorBackend::Ebpf => BackendChoice::Ebpf,
            SensorBackend::Fallback => BackendChoice::Fallback,
        }
    }
}

/// Loads the default rules (unless `no_default_rules`) and `files`, in order. Any error in a
/// rule is fatal here: an agent or a server that silently runs without some of its rules is
/// worse than one that does not start.
pub fn load_rule_set(files: &[PathBuf], no_default_rules: bool) -> anyhow::Result<RuleSet> {
    let mut sources = if no_default_rules {
        Vec::new()
    } else {
        palisade_rules::default_rule_sources()
    };
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the rules file {}", file.display()))?;
        sources.push(RuleSource {
            name: file.display().to_string(),
            text,
        });
    }
    let rule_set = RuleSet::load(&sources);
    if let Some(error) = rule_set.errors().first() {
        anyhow::bail!(
            "{error} ({} rule errors in all; `palisade rules validate FILE` lists them)",
            rule_set.errors().len()
        );
    }
    for warning in rule_set.warnings() {
        tracing::warn!(%warning, "Rule warning.");
    }
    Ok(rule_set)
}

/// The rules engine of [`load_rule_set`], carrying the response actions of the rules named in
/// `respond_rules` (`--respond`) on their alerts ([`response_allowlist`]).
pub fn load_engine(
    files: &[PathBuf],
    no_default_rules: bool,
    respond_rules: &[String],
) -> anyhow::Result<Engine> {
    let rule_set = load_rule_set(files, no_default_rules)?;
    let config = EngineConfig {
        response_allowlist: response_allowlist(&rule_set, respond_rules)?,
        ..EngineConfig::default()
    };
    Ok(Engine::new(rule_set, &config))
}

/// The engine's response allowlist for the rules named with `--respond`. A name that would
/// do nothing is an error naming the rule and what it lacks: an operator who asked for a
/// response must not believe one is armed when it is not.
fn response_allowlist(rule_set: &RuleSet, names: &[String]) -> anyhow::Result<HashSet<String>> {
    names
        .iter()
        .map(|name| {
            let rule = rule_set
                .rules()
                .iter()
                .find(|rule| rule.name == *name)
                .with_context(|| format!("--respond {name:?}: no rule of that name is loaded"))?;
            anyhow::ensure!(rule.enabled, "--respond {name:?}: the rule is disabled");
            anyhow::ensure!(
                rule.source == "syscall",
                "--respond {name:?}: the rule's source is {}, and responses act on the sensor's (syscall) events only",
                rule.source
            );
            anyhow::ensure!(
                !RuleMetadata::from_tags(&rule.tags)
                    .requested_responses
                    .is_empty(),
                "--respond {name:?}: the rule requests no response action (a `response.kill_process` or `response.deny_exec` tag)"
            );
            Ok(name.clone())
        })
        .collect()
}

/// A running detection thread.
pub struct Detection {
    /// What the sensor observes, and what it cannot.
    pub status: SensorStatus,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Detection {
    /// Stops the sensor and waits for the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            tracing::error!("The detection thread panicked.");
        }
    }
}

/// Starts detection as `args` ask, and records the running sensor (its backend, the fields
/// it cannot fill) in `config`, whose host facts tell the server. Rule errors are fatal; a
/// sensor that cannot start (not root, no eBPF and no fallback) is reported and leaves the
/// node without runtime alerts, while everything else keeps working.
pub fn start_unless_disabled(
    args: &DetectionArgs,
    outbox: &Outbox,
    status: &Arc<AgentStatus>,
    config: &mut AgentConfig,
) -> anyhow::Result<Option<Detection>> {
    let (cluster, node) = (config.cluster.as_str(), config.name.as_str());
    let status_file = config.data_dir.join(SENSOR_STATUS_FILE);
    let no_sensor_reason = if args.no_sensor {
        "disabled with --no-sensor".to_owned()
    } else {
        let engine = load_engine(&args.rules, args.no_default_rules, &config.respond_rules)?;
        let k8s = args.k8s.start(node, &tokio::runtime::Handle::current())?;
        let observers =
            crate::cmd::firewall::agent_observer(&args.firewall, config, outbox.identity())?
                .into_iter()
                .chain(crate::cmd::scan_malware::agent_observer(
                    &args.malware,
                    config,
                )?);
        match start(
            engine,
            observers,
            outbox.clone(),
            Arc::clone(status),
            cluster,
            node,
            SensorOptions {
                ring_buffer_bytes: args.sensor_ring_buffer_bytes,
                backend: args.sensor_backend.into(),
                hold: config.sensor_hold.limits()?,
                reader_nice: config.sensor_reader_nice,
                status_file: status_file.clone(),
                k8s,
            },
        ) {
            Ok(detection) => {
                config.sensor = detection.status.backend.to_owned();
                config.sensor_missing_fields = detection
                    .status
                    .missing_fields
                    .iter()
                    .map(|&field| field.to_owned())
                    .collect();
                return Ok(Some(detection));
            }
            Err(error) => {
                eprintln!("palisade: {error:#}; runtime alerts are off on this node");
                format!("{error:#}")
            }
        }
    };
    SensorStatusFile::none(no_sensor_reason).write(&status_file)?;
    Ok(None)
}

/// How the detection thread runs its sensor.
pub struct SensorOptions {
    /// Size of the eBPF ring buffer in bytes.
    pub ring_buffer_bytes: u32,
    /// Which event source to use.
    pub backend: BackendChoice,
    /// How events wait for their container's metadata.
    pub hold: HoldLimits,
    /// The detection thread's nice value while it reads the sensor (`None`: left alone).
    pub reader_nice: Option<i32>,
    /// Where the running sensor keeps its status for `palisade agent --status`.
    pub status_file: PathBuf,
    /// The Kubernetes API server's reflectors, whose metadata is attached to each event
    /// before the rules; they stop with the thread.
    pub k8s: Option<MetaSource>,
}

/// Starts the sensor for the event kinds `engine`'s rules need, and a thread that evaluates
/// every event and pushes alert reports into `outbox`. Fails when the sensor cannot start
/// (not root, no eBPF and no fallback): the caller decides whether that is fatal.
///
/// The sensor is built on the detection thread itself because it is not `Send` (libbpf's ring
/// buffer callbacks); the thread reports the outcome of the start before it begins polling.
pub fn start(
    engine: Engine,
    observers: impl IntoIterator<Item = Box<dyn EventObserver>>,
    outbox: Outbox,
    status: Arc<AgentStatus>,
    cluster: &str,
    node: &str,
    options: SensorOptions,
) -> anyhow::Result<Detection> {
    let detector = observers.into_iter().fold(
        Detector::new(engine, cluster, node),
        Detector::with_observer,
    );
    let config = SensorConfig {
        kinds: Some(detector.event_kinds()),
        hold: options.hold,
        ring_buffer_bytes: options.ring_buffer_bytes,
        backend: options.backend,
        read_cgroups: detector.reads_cgroups(),
        capture_environment: detector.reads_environment(),
        read_fd_state: detector.reads_fd_state(),
        count_open_fds: detector.counts_open_fds(),
        read_std_fds: detector.reads_std_fds(),
        reader_nice: options.reader_nice,
        ..SensorConfig::default()
    };
    let runtime = tokio::runtime::Handle::current();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("palisade-detect".into())
        .spawn(move || {
            // The reflectors run until this thread ends and drops them with the status
            // writer, which reports their counters.
            let k8s = options.k8s;
            let mut sink = DetectionSink {
                k8s_lookup: k8s.as_ref().map(MetaSource::lookup),
                detector,
            };
            let started = config
                .build()
                .map_err(anyhow::Error::new)
                .and_then(|sensor| {
                    let writer = StatusWriter::start(options.status_file, sensor.status(), k8s)?;
                    Ok((sensor, writer))
                });
            let (mut sensor, mut status_writer) = match started {
                Ok((sensor, writer)) => {
                    let _ = started_tx.send(Ok(sensor.status().clone()));
                    (sensor, writer)
                }
                Err(error) => {
                    let _ = started_tx.send(Err(error));
                    return;
                }
            };
            let failure = detect(
                &mut sensor,
                &mut sink,
                &mut status_writer,
                &stopping,
                &outbox,
                &runtime,
                &status,
            );
            status_writer.stop(
                sensor.health(),
                sink.detector.observer_reports_lost(),
                failure,
            );
        })
        .context("cannot start the detection thread")?;
    let sensor_status = match started_rx.recv() {
        Ok(Ok(sensor_status)) => sensor_status,
        Ok(Err(error)) => {
            let _ = thread.join();
            return Err(error.context("cannot start the runtime sensor (it needs root)"));
        }
        Err(_) => anyhow::bail!("the detection thread ended before its sensor started"),
    };
    tracing::info!(
        backend = sensor_status.backend,
        kinds = sensor_status.kinds.len(),
        "Sensor started."
    );
    Ok(Detection {
        status: sensor_status,
        stop,
        thread,
    })
}

/// Polls the sensor into the detector until `stopping` is set; returns why it stopped early
/// (the sensor failed). An outbox that fails does not stop it: its writes wait and are
/// retried ([`OutboxWriter`]).
fn detect(
    sensor: &mut Sensor,
    sink: &mut DetectionSink,
    status_writer: &mut StatusWriter,
    stopping: &AtomicBool,
    outbox: &Outbox,
    runtime: &tokio::runtime::Handle,
    status: &AgentStatus,
) -> Option<String> {
    // What the previous agent's observers left delivered (the firewall's last take of a
    // pinned counter stream, which is then not taken again), before the first tick.
    match runtime.block_on(outbox.receipts()) {
        Ok(receipts) => sink.detector.delivered(&receipts),
        Err(error) => {
            tracing::warn!(%error, "Cannot read the outbox's receipts; what the previous agent took last may be alerted twice.");
        }
    }
    let mut writer = OutboxWriter::default();
    while !stopping.load(Ordering::Relaxed) {
        // Observers that must look often (the firewall turns its queued connect reports into
        // alerts at every tick) shorten the wait for events. Those reports are read off
        // their ring on a thread of their own: however long this loop stalls (the sensor's
        // /proc re-read after lost events), it only delays their alerts.
        // (A wait cut short by a signal or a debugger's stop is no failure: the sensor reads
        // what arrived and returns.)
        if let Err(error) = sensor.poll(sink.detector.tick_interval(), sink) {
            tracing::error!(%error, "The sensor failed; runtime detection stops.");
            return Some(format!("the sensor failed: {error}"));
        }
        let detector = &mut sink.detector;
        let lost = sensor.health().newly_lost;
        if lost > 0 {
            status.sensor_events_lost.fetch_add(lost, Ordering::Relaxed);
            *status
                .sensor_events_lost_by_cpu
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                crate::sensor_status::lost_by_cpu(sensor.health());
            detector.record_lost_events(lost, Timestamp::now());
        }
        detector.tick(Timestamp::now());
        // The observers' own lost reports (the firewall's connect programs) go to the server
        // with the lost events; their node alert is the observer's.
        let reports_lost = detector.observer_reports_lost();
        status
            .connect_reports_lost
            .fetch_max(reports_lost, Ordering::Relaxed);
        *status
            .sensor_context_lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            crate::sensor_status::context_losses(sensor.health());
        let was_failing = writer.is_failing();
        if let Err(error) = queue(&mut writer, detector, outbox, runtime)
            && !was_failing
        {
            tracing::error!(%error, "Cannot write alerts into the outbox; detection goes on, and they wait (the firewall's counts in the kernel) until it takes writes again.");
        }
        status_writer.observe_outbox(writer.status());
        status_writer.observe(sensor.health(), reports_lost);
    }
    // The events still held for their container's metadata go to the detector, then one last
    // tick takes what the observers still hold (the firewall's connect reports and counts
    // since the last tick) into the outbox, which keeps them across a restart.
    sensor.flush(sink);
    sink.detector.tick(Timestamp::now());
    if let Err(error) = queue(&mut writer, &mut sink.detector, outbox, runtime) {
        tracing::warn!(%error, waiting = writer.status().waiting, "Cannot write the last alerts into the outbox before stopping; the firewall's taken counts stay pinned in the kernel for the next agent.");
    }
    status_writer.observe_outbox(writer.status());
    None
}

/// Writes the detector's reports and its observers' receipts into the outbox, in one
/// transaction, after what a failed write left ([`OutboxWriter`]), then tells the observers
/// the receipts are delivered.
fn queue(
    writer: &mut OutboxWriter,
    detector: &mut Detector,
    outbox: &Outbox,
    runtime: &tokio::runtime::Handle,
) -> Result<(), palisade_agent::OutboxError> {
    writer.write(detector, |reports, receipts| {
        runtime.block_on(outbox.push_with_receipts(reports, receipts))
    })
}

/// The detector, behind the Kubernetes API server's metadata when an API server is followed.
struct DetectionSink {
    k8s_lookup: Option<PodMetaLookup>,
    detector: Detector,
}

impl EventSink for DetectionSink {
    fn send(&mut self, mut event: Event) {
        if let Some(lookup) = &mut self.k8s_lookup {
            lookup.attach(&mut event);
        }
        self.detector.send(event);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use palisade_rules::{RuleSet, RuleSource};

    use super::{DetectionArgs, ReaderNice, response_allowlist};

    #[derive(Debug, clap::Parser)]
    struct Args {
        #[command(flatten)]
        detection: DetectionArgs,
    }

    fn reader_nice(args: &[&str]) -> Result<Option<i32>, String> {
        Args::try_parse_from(std::iter::once("palisade").chain(args.iter().copied()))
            .map(|args| args.detection.sensor_reader_nice.0)
            .map_err(|error| error.to_string())
    }

    /// `--sensor-reader-nice` is -10 unless given, takes a nice value (a negative one too) or
    /// `off`, and names what it refuses.
    #[test]
    fn the_sensor_reader_nice_is_a_nice_value_or_off() {
        assert_eq!(
            reader_nice(&[]),
            Ok(Some(palisade_sensor::DEFAULT_READER_NICE))
        );
        assert_eq!(reader_nice(&["--sensor-reader-nice", "-5"]), Ok(Some(-5)));
        assert_eq!(reader_nice(&["--sensor-reader-nice", "19"]), Ok(Some(19)));
        assert_eq!(reader_nice(&["--sensor-reader-nice", "off"]), Ok(None));
        for bad in ["-21", "20", "high"] {
            let error = reader_nice(&["--sensor-reader-nice", bad]).unwrap_err();
            assert!(
                error.contains(&format!(
                    "`{bad}` is neither a nice value (-20 to 19) nor `off`"
                )),
                "{error}"
            );
        }
        assert_eq!(ReaderNice(None).to_string(), "off");
    }

    /// A `--respond` rule that would do nothing is refused with what it lacks; one that
    /// requests an action is allowlisted.
    #[test]
    fn respond_rules_must_be_loaded_enabled_syscall_rules_requesting_an_action() {
        const RULES: &str = "\
- rule: Kills
  desc: d
  condition: evt.type = execve
  output: o
  priority: WARNING
  tags: [response.kill_process]
- rule: Kills when enabled
  desc: d
  condition: evt.type = execve
  output: o
  priority: WARNING
  enabled: false
  tags: [response.kill_process]
- rule: Alerts only
  desc: d
  condition: evt.type = execve
  output: o
  priority: WARNING
  tags: [process]
- rule: Audit rule
  desc: d
  condition: ka.verb = create
  output: o
  priority: WARNING
  source: k8s_audit
  tags: [response.kill_process]
";
        let rule_set = RuleSet::load(&[RuleSource {
            name: "test.yaml".into(),
            text: RULES.into(),
        }]);
        assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
        let error = |name: &str| {
            response_allowlist(&rule_set, &["Kills".to_owned(), name.to_owned()])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("Nope"),
            "--respond \"Nope\": no rule of that name is loaded"
        );
        assert_eq!(
            error("Kills when enabled"),
            "--respond \"Kills when enabled\": the rule is disabled"
        );
        assert!(
            error("Alerts only").contains("the rule requests no response action"),
            "{}",
            error("Alerts only")
        );
        assert!(
            error("Audit rule").contains("the rule's source is k8s_audit"),
            "{}",
            error("Audit rule")
        );
        assert_eq!(
            response_allowlist(&rule_set, &["Kills".to_owned()]).unwrap(),
            ["Kills".to_owned()].into()
        );
        assert!(response_allowlist(&rule_set, &[]).unwrap().is_empty());
    }
}
