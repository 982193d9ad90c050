//! `palisade firewall`: evaluate NetworkPolicies, admin policies and Palisade firewall rules
//! against a cluster state file; propose policies from recorded flows (`learn`) and replay
//! recorded flows against a draft (`simulate`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use comfy_table::Table;
use palisade_agent::{
    AgentConfig, EventObserver, FirewallWatch, FirewallWatchConfig, Link, OutboxIdentity,
    poll_firewall_rules,
};
use palisade_firewall::{
    Change, Engine, Flow, Learned, Matrix, ObservedFlow, Probe, Protocol, State, read_flows,
};

/// Arguments of `palisade firewall`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the verdict for every ordered pair of pods in a state file.
    Matrix(MatrixArgs),
    /// Print the verdict for one connection and the policies and rules that decided it.
    ///
    /// Exits with 0 when the connection is allowed and 1 when it is denied.
    Explain(ExplainArgs),
    /// Propose Palisade rules and NetworkPolicies (YAML) that allow exactly the flows in the
    /// agent's flow records.
    Learn(LearnArgs),
    /// Replay recorded flows against a draft policy and list what it would newly block or
    /// allow.
    Simulate(SimulateArgs),
    /// Remove the block-mode enforcement an agent that crashed left in force (its pinned
    /// connect programs, counters and records, and the nftables table of every pod it
    /// recorded), when that agent will not start again. A running agent's directory is
    /// refused: stopping the agent removes its enforcement itself. The attempts its
    /// programs counted since its last take are dropped with the counters.
    Reset(ResetArgs),
}

#[derive(Debug, clap::Args)]
struct ResetArgs {
    /// The agent's pin directory (its --firewall-pin-dir).
    #[arg(long = "pin-dir", value_name = "DIR", default_value = palisade_enforce::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct LearnArgs {
    /// Flow records (JSON lines, as the agent writes them to `flows.jsonl`); repeatable.
    #[arg(long = "flows", value_name = "FILE", required = true)]
    flows: Vec<PathBuf>,
    /// Only flows seen within this long before now: `90s`, `30m`, `12h`, `7d`.
    #[arg(long, value_parser = parse_window)]
    window: Option<Duration>,
    /// What to propose.
    #[arg(long, value_enum, default_value_t = LearnFormat::Both)]
    format: LearnFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LearnFormat {
    /// Palisade NetworkObjects and FirewallRules.
    Palisade,
    /// Kubernetes NetworkPolicies.
    NetworkPolicy,
    /// Both, Palisade's first.
    Both,
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// The draft: a state file (pods, namespaces, policies, network objects, rules).
    #[arg(long, value_name = "FILE")]
    draft: PathBuf,
    /// Flow records (JSON lines); repeatable.
    #[arg(long = "flows", value_name = "FILE", required = true)]
    flows: Vec<PathBuf>,
    /// The policy in force, to compare with; without it, the verdicts the records carry.
    #[arg(short = 'f', long = "current", value_name = "FILE")]
    current: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainOutput::Text)]
    output: ExplainOutput,
}

/// The state file and the port to probe.
#[derive(Debug, clap::Args)]
struct ProbeArgs {
    /// Cluster state: multi-document YAML (or JSON) of Namespaces, Pods, Nodes and policy
    /// objects; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "STATE")]
    file: PathBuf,
    /// Destination port.
    #[arg(long, required_unless_present = "port_name")]
    port: Option<u16>,
    /// Protocol: TCP, UDP or SCTP.
    #[arg(long, default_value = "TCP", value_parser = parse_protocol)]
    protocol: Protocol,
    /// Destination container port name (resolved per destination pod when --port is unset).
    #[arg(long, value_name = "NAME")]
    port_name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct MatrixArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MatrixOutput::Json)]
    output: MatrixOutput,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MatrixOutput {
    /// `{"combined": {from: {to: bool}}, "ingress": ..., "egress": ...}`.
    Json,
    /// One table per direction and one for the combined verdict.
    Table,
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    #[command(flatten)]
    probe: ProbeArgs,
    /// Client: NAMESPACE/POD or an IP address.
    #[arg(long, value_name = "ENDPOINT")]
    from: String,
    /// Server: NAMESPACE/POD or an IP address.
    #[arg(long, value_name = "ENDPOINT")]
    to: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainOutput::Text)]
    output: ExplainOutput,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExplainOutput {
    /// Sentences.
    Text,
    /// The explanation as JSON.
    Json,
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

fn parse_protocol(text: &str) -> Result<Protocol, String> {
    text.parse()
}

/// `<number><unit>` with unit `s`, `m`, `h` or `d`.
fn parse_window(text: &str) -> Result<Duration, String> {
    let error = || format!("{text:?} is not a duration like 90s, 30m, 12h or 7d");
    let unit_at = text.len().checked_sub(1).ok_or_else(error)?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| error())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(error()),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(error)
}

/// The container firewall options of `palisade up` and `palisade agent`.
#[derive(Debug, clap::Args)]
pub struct AgentFirewallArgs {
    /// Turn the container firewall on with this state (YAML: network objects, pods,
    /// namespaces, Kubernetes policies, local rules); the server's firewall rules are added
    /// to it as they change.
    #[arg(long = "firewall-state", value_name = "STATE.yaml")]
    pub state: Option<PathBuf>,
    /// `alert` reports violating connections; `block` also refuses them with an nftables
    /// table in each pod's network namespace.
    #[arg(long = "firewall-mode", value_enum, default_value_t = super::enforce::Mode::Alert)]
    pub mode: super::enforce::Mode,
    /// Seconds between two polls of the server's firewall rules.
    #[arg(long = "firewall-poll-seconds", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=30))]
    pub poll_seconds: u64,
    /// Size in bytes of the ring buffer the firewall's connect programs report into: a power
    /// of two from 4096 to 268435456, 72 bytes a report. The programs report a match's
    /// (cgroup, destination, port, protocol, rule) first connect and count the rest, in
    /// counters for as many matches as the ring holds reports. A thread of its own empties
    /// the ring as reports arrive into a queue of four rings' worth, which the agent takes
    /// with the counts (see --firewall-reports-drain-ms); a connect of a new match that finds
    /// the counters full is kept as its report until delivered (as many as the queue holds);
    /// connects that find the counters and the ring full, or the kept reports full, are lost:
    /// counted, alerted on the node and in the heartbeat's drop count.
    #[arg(long = "firewall-reports-ring-bytes", value_name = "BYTES",
          default_value_t = palisade_enforce::ConnectReportsRing::DEFAULT)]
    pub reports_ring: palisade_enforce::ConnectReportsRing,
    /// Longest time in milliseconds between two takes of the connect reports' queue and
    /// counts (how late their alerts may be), from 10 to 200: the default ring's queue taken
    /// every 200 ms keeps up with about 290,000 distinct refused or alerted connects a second
    /// on the node, and any number of repeated ones (the agent's detection thread wakes that
    /// often).
    #[arg(long = "firewall-reports-drain-ms", value_name = "MS",
          default_value_t = palisade_enforce::ConnectReportsDrain::DEFAULT)]
    pub reports_drain: palisade_enforce::ConnectReportsDrain,
    /// In block mode, the directory (in a bpf file system, mounted at /sys/fs/bpf when
    /// missing) where the enforcement is pinned, so that it stays in force if the agent dies
    /// (block mode fails closed): the next agent started with the same directory takes it
    /// over, with the attempts counted meanwhile; a clean stop removes it, and
    /// `palisade firewall reset` removes what a crashed agent left. One agent per directory.
    #[arg(long = "firewall-pin-dir", value_name = "DIR",
          default_value = palisade_enforce::DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
}

/// The agent's firewall observer, when `--firewall-state` is given: it starts with the local
/// state, and a task on the current runtime polls the server's rules once the agent is
/// enrolled. Flows are recorded to `flows.jsonl` in the agent's data directory; `outbox` is
/// named in the pins with each delivery of the connect programs' counts.
pub fn agent_observer(
    args: &AgentFirewallArgs,
    config: &AgentConfig,
    outbox: &OutboxIdentity,
) -> anyhow::Result<Option<Box<dyn EventObserver>>> {
    let Some(path) = &args.state else {
        return Ok(None);
    };
    let base = read_state(path)?;
    Engine::new(&base).with_context(|| format!("reading {}", path.display()))?;
    let (watch, updates) = FirewallWatch::new(FirewallWatchConfig {
        cluster: config.cluster.clone(),
        node: config.name.clone(),
        mode: args.mode.into(),
        flows_file: Some(config.data_dir.join(FLOWS_FILE)),
        connect_reports_ring: args.reports_ring,
        connect_reports_drain: args.reports_drain,
        pin_dir: Some(args.pin_dir.clone()),
        outbox: Some(outbox.clone()),
    })
    .with_context(|| {
        format!(
            "taking over the firewall enforcement pinned in {} (`palisade firewall reset \
             --pin-dir {0}` removes what a crashed agent left)",
            args.pin_dir.display()
        )
    })?;
    // After a crash, the pods the dead agent enforced keep its rules until the server's
    // rules arrive (the local state alone would lift the server's rules), and the attempts
    // its programs counted are judged by the rules that counted them.
    if !watch.took_over_enforcement() {
        updates
            .send(base.clone())
            .context("starting the firewall observer")?;
    }
    // Enrolling is the agent loop's job: wait for its credential rather than enroll twice.
    let mut enrolled = config.clone();
    enrolled.join_token = None;
    let every = Duration::from_secs(args.poll_seconds);
    let link = Link::new(&enrolled).context("setting up the firewall rules poll")?;
    tokio::spawn(async move {
        let credential = loop {
            match link.credential(&enrolled).await {
                Ok(credential) => break credential,
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        };
        poll_firewall_rules(link, credential, base, updates, every).await;
    });
    Ok(Some(Box::new(watch)))
}

/// The file in the agent's data directory where the firewall records attributed flows.
pub const FLOWS_FILE: &str = "flows.jsonl";

/// Runs `palisade firewall`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Matrix(args) => run_matrix(args),
        Command::Explain(args) => run_explain(args),
        Command::Learn(args) => run_learn(args),
        Command::Simulate(args) => run_simulate(args),
        Command::Reset(args) => run_reset(&args),
    }
}

fn run_reset(args: &ResetArgs) -> anyhow::Result<ExitCode> {
    let summary = palisade_enforce::reset(&args.pin_dir).with_context(|| {
        format!(
            "resetting the firewall pinned in {}",
            args.pin_dir.display()
        )
    })?;
    let mut text = String::new();
    for workload in &summary.workloads {
        text.push_str(&format!("removed the firewall of {}\n", workload.name));
    }
    for netns in &summary.tables {
        text.push_str(&format!(
            "deleted table inet palisade in {}\n",
            netns.display()
        ));
    }
    text.push_str(&format!(
        "{} pods, {} tables, {} pins removed from {}\n",
        summary.workloads.len(),
        summary.tables.len(),
        summary.pins,
        args.pin_dir.display()
    ));
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn read_flow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<ObservedFlow>> {
    let mut flows = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        flows.extend(read_flows(&text, &path.display().to_string())?);
    }
    Ok(flows)
}

fn run_learn(args: LearnArgs) -> anyhow::Result<ExitCode> {
    let mut flows = read_flow_files(&args.flows)?;
    if let Some(window) = args.window {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let since_ms = i64::try_from(now_ms.saturating_sub(window.as_millis())).unwrap_or(0);
        flows.retain(|flow| flow.last_seen_ms >= since_ms);
    }
    if flows.is_empty() {
        anyhow::bail!(
            "no flows to learn from in {} (within the window, if one was given)",
            args.flows
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let learned = palisade_firewall::learn(&flows);
    let documents: Vec<serde_json::Value> = match args.format {
        LearnFormat::Palisade => learned.palisade,
        LearnFormat::NetworkPolicy => learned.network_policies,
        LearnFormat::Both => learned
            .palisade
            .into_iter()
            .chain(learned.network_policies)
            .collect(),
    };
    write_stdout(&Learned::to_yaml(&documents))?;
    Ok(ExitCode::SUCCESS)
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let flows = read_flow_files(&args.flows)?;
    let draft = read_state(&args.draft)?;
    let draft_engine =
        Engine::new(&draft).with_context(|| format!("reading {}", args.draft.display()))?;
    let current = args.current.as_deref().map(read_state).transpose()?;
    let current_engine = current
        .as_ref()
        .map(Engine::new)
        .transpose()
        .context("reading the current policy")?;
    let simulation = palisade_firewall::simulate(current_engine.as_ref(), &draft_engine, &flows)
        .context("replaying the flows")?;
    match args.output {
        ExplainOutput::Json => {
            write_stdout(&format!("{}\n", serde_json::to_string_pretty(&simulation)?))?
        }
        ExplainOutput::Text => {
            let mut table = Table::new();
            table.set_header(["change", "flow", "attempts", "decided by (draft)"]);
            for (label, changes) in [
                ("newly blocked", &simulation.newly_blocked),
                ("newly allowed", &simulation.newly_allowed),
            ] {
                for Change { flow, decided_by } in changes {
                    table.add_row([
                        label.to_owned(),
                        flow.describe(),
                        flow.attempts.to_string(),
                        decided_by.clone(),
                    ]);
                }
            }
            write_stdout(&format!(
                "{table}\n{} newly blocked, {} newly allowed, {} unchanged\n",
                simulation.newly_blocked.len(),
                simulation.newly_allowed.len(),
                simulation.unchanged
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_state(path: &Path) -> anyhow::Result<State> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .context("reading the state from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    State::from_yaml(&text).with_context(|| format!("reading {}", path.display()))
}

fn run_matrix(args: MatrixArgs) -> anyhow::Result<ExitCode> {
    let state = read_state(&args.probe.file)?;
    let engine =
        Engine::new(&state).with_context(|| format!("reading {}", args.probe.file.display()))?;
    let result = palisade_firewall::matrix(
        &engine,
        &Probe {
            protocol: args.probe.protocol,
            port: args.probe.port,
            port_name: args.probe.port_name,
        },
    );
    match args.output {
        MatrixOutput::Json => {
            write_stdout(&format!("{}\n", serde_json::to_string_pretty(&result)?))?
        }
        MatrixOutput::Table => {
            let mut text = String::new();
            for (title, cells) in [
                ("combined", &result.combined),
                ("ingress", &result.ingress),
                ("egress", &result.egress),
            ] {
                text.push_str(&format!(
                    "{title} (rows: from, columns: to)\n{}\n",
                    matrix_table(&result, cells)
                ));
            }
            write_stdout(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn matrix_table(result: &Matrix, cells: &[Vec<bool>]) -> Table {
    let mut table = Table::new();
    table.set_header(std::iter::once("from \\ to".to_owned()).chain(result.pods.iter().cloned()));
    for (from, row) in result.pods.iter().zip(cells) {
        table.add_row(
            std::iter::once(from.clone()).chain(
                row.iter()
                    .map(|&allowed| if allowed { "allow" } else { "deny" }.to_owned()),
            ),
        );
    }
    table
}

fn run_explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let state = read_state(&args.probe.file)?;
    let engine =
        Engine::new(&state).with_context(|| format!("reading {}", args.probe.file.display()))?;
    let flow = Flow {
        src: state.endpoint(&args.from).context("--from")?,
        dst: state.endpoint(&args.to).context("--to")?,
        protocol: args.probe.protocol,
        port: args.probe.port,
        port_name: args.probe.port_name,
    };
    let explanation = engine.explain(&flow);
    match args.output {
        ExplainOutput::Text => write_stdout(&explanation.to_string())?,
        ExplainOutput::Json => write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&explanation)?
        ))?,
    }
    Ok(if explanation.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
