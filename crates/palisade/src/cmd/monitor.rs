//! `palisade monitor`: run the runtime sensor in the foreground and print raw events, or the
//! alerts of Falco-format rules, as JSON lines (like `falco -o json_output=true`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use palisade_agent::{Responder, ResponseOutcome};
use palisade_event::{Event, EventKind};
use palisade_rules::Alert;
use palisade_sensor::{BackendChoice, SensorConfig};

/// Arguments of `palisade monitor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print every event instead of evaluating rules.
    #[arg(long)]
    events: bool,
    /// Falco rules files, loaded in order after Palisade's default rules; without `--events`,
    /// alerts of these rules are printed, and only the probes they need are attached.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Do not load Palisade's default rules.
    #[arg(long)]
    no_default_rules: bool,
    /// Carry out the response actions the named rule requests (its `response.kill_process`,
    /// `response.deny_exec` tags) on its alerts, as the agent does, and print each outcome in
    /// the alert's `response`; repeatable. Every other rule's requests stay off. The rule
    /// must be loaded, enabled and request an action.
    #[arg(long = "respond", value_name = "RULE", conflicts_with = "events")]
    respond: Vec<String>,
    /// With `--events`: report only these kinds (`execve`, `openat`, `connect`, ...).
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Json)]
    output: Output,
    /// Event source: eBPF, the proc connector/fanotify fallback, or eBPF with fallback.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Size of the eBPF ring buffer in bytes (a power of two, at least 4096; by default 2 MiB
    /// per CPU, 4–64 MiB).
    #[arg(long, default_value_t = palisade_sensor::SensorConfig::default().ring_buffer_bytes)]
    ring_buffer_bytes: u32,
    /// The Kubernetes API server's metadata for the k8s.* fields.
    #[command(flatten)]
    k8s: crate::detection::K8sApiArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Backend {
    Auto,
    Ebpf,
    Fallback,
}

/// Runs `palisade monitor`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // JSON lines is the only format so far; the flag exists so that scripts say what they
    // parse.
    let Output::Json = args.output;
    let mut engine = if args.events {
        None
    } else {
        anyhow::ensure!(
            !args.rules.is_empty() || !args.no_default_rules,
            "--no-default-rules leaves no rules: give --rules FILE, or --events to print every event"
        );
        Some(crate::detection::load_engine(
            &args.rules,
            args.no_default_rules,
            &args.respond,
        )?)
    };
    let kinds: Option<BTreeSet<EventKind>> = match &engine {
        Some(engine) => Some(engine.event_kinds().collect()),
        None if args.kinds.is_empty() => None,
        None => Some(
            args.kinds
                .iter()
                .map(|name| {
                    EventKind::from_name(name).with_context(|| {
                        format!("--kind {name}: not an event kind Palisade observes")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    };
    let config = SensorConfig {
        kinds,
        backend: match args.backend {
            Backend::Auto => BackendChoice::Auto,
            Backend::Ebpf => BackendChoice::Ebpf,
            Backend::Fallback => BackendChoice::Fallback,
        },
        ring_buffer_bytes: args.ring_buffer_bytes,
        read_cgroups: engine
            .as_ref()
            .is_some_and(palisade_rules::Engine::reads_cgroups),
        capture_environment: engine
            .as_ref()
            .is_some_and(palisade_rules::Engine::reads_environment),
        read_fd_state: engine
            .as_ref()
            .is_some_and(palisade_rules::Engine::reads_fd_state),
        count_open_fds: engine
            .as_ref()
            .is_some_and(palisade_rules::Engine::counts_open_fds),
        read_std_fds: engine
            .as_ref()
            .is_some_and(palisade_rules::Engine::reads_std_fds),
        ..SensorConfig::default()
    };
    // The API server's reflectors run on a runtime of their own beside the polling loop.
    let k8s_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the Kubernetes API client's runtime")?;
    let host_name = palisade_agent::host_facts(std::path::Path::new("/"), "none").hostname;
    let k8s = args.k8s.start(&host_name, k8s_runtime.handle())?;
    let mut k8s_lookup = k8s.as_ref().map(palisade_k8smeta::MetaSource::lookup);
    // Ready before the sensor's first event: a kill-at-exec program a rule may need is loaded
    // now, not on the event path.
    let responder = engine
        .as_ref()
        .map(Responder::for_engine)
        .unwrap_or_default();
    let mut sensor = config.build().context("starting the sensor")?;
    eprintln!(
        "{}",
        serde_json::json!({ "sensor_status": sensor.status() })
    );

    let deadline = args
        .duration
        .map(|seconds| Instant::now() + Duration::from_secs_f64(seconds));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut events: Vec<Event> = Vec::new();
    let mut alerts = Vec::new();
    loop {
        let last = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if last {
            // The events still held for their container's metadata, without waiting.
            sensor.flush(&mut events);
        } else {
            sensor
                .poll(Duration::from_millis(100), &mut events)
                .context("reading events")?;
        }
        for mut event in events.drain(..) {
            if let Some(lookup) = &mut k8s_lookup {
                lookup.attach(&mut event);
            }
            match &mut engine {
                None => {
                    serde_json::to_writer(&mut out, &event)?;
                    out.write_all(b"\n")?;
                }
                Some(engine) => {
                    engine.process(&event, &mut alerts);
                    for alert in alerts.drain(..) {
                        let mut json = alert_json(&alert, &event);
                        let outcomes = responder.respond(&alert, &event);
                        if !outcomes.is_empty() {
                            json["response"] =
                                outcomes.iter().map(ResponseOutcome::to_json).collect();
                        }
                        serde_json::to_writer(&mut out, &json)?;
                        out.write_all(b"\n")?;
                    }
                }
            }
        }
        let health = sensor.health();
        if health.newly_lost > 0 {
            eprintln!("{}", serde_json::json!({ "sensor_health": health }));
        }
        out.flush()?;
        if last {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// One alert as a JSON line: the rule and its metadata, the rendered output, every field the
/// rule used, and the event's host, container and process.
pub(crate) fn alert_json(alert: &Alert, event: &Event) -> serde_json::Value {
    serde_json::json!({
        "time_ns": alert.timestamp_ns,
        "rule": alert.rule,
        "priority": format!("{:?}", alert.priority),
        "source": alert.source,
        "category": alert.category.map(|category| category.as_str()),
        "mitre": alert.mitre_techniques,
        "suggested_response": alert.suggested_response,
        "output": alert.output,
        "tags": alert.tags,
        "output_fields": alert
            .fields
            .iter()
            .map(|(field, value)| (field.clone(), serde_json::Value::from(value.as_str())))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
        "hostname": event.hostname,
        "container": event.container,
        // Environments hold secrets: the variables the rule reads are in `output_fields`.
        "process": event.without_environment().process,
    })
}
