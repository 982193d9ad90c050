//! `palisade agent`: the node agent, its status, and handing it reports.

use std::{
    io::BufRead,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use palisade_agent::{AgentConfig, AgentStatus, LinkStatus, Outbox};
use palisade_model::{FindingReport, MAX_BATCH_REPORTS};

use crate::detection::{self, DetectionArgs};
use crate::sensor_status;

/// Arguments of `palisade agent`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum AgentCommand {
    /// Queue finding reports (JSON lines of the agent wire format) for the agent to ship.
    Enqueue {
        /// The agent's data directory.
        #[arg(long, env = "PALISADE_AGENT_DIR")]
        data_dir: PathBuf,
        /// JSON-lines files of reports; `-` for standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    /// Tables for people.
    Table,
    /// One JSON document.
    Json,
    /// The sensor's and the outbox's counters in the Prometheus text format, for
    /// node_exporter's textfile collector (the agent serves no HTTP).
    Prometheus,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The server's base URL.
    #[arg(long, env = "PALISADE_SERVER", required_unless_present = "status")]
    server: Option<String>,
    /// Join token (needed only until the agent has enrolled).
    #[arg(long, env = "PALISADE_JOIN_TOKEN")]
    join_token: Option<String>,
    /// CA certificate (PEM) of the server.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Where the outbox and credential live.
    #[arg(
        long,
        env = "PALISADE_AGENT_DIR",
        default_value = "/var/lib/palisade/agent"
    )]
    data_dir: PathBuf,
    /// The cluster this node belongs to.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// The agent's name (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Most reports per batch sent to the server.
    #[arg(
        long,
        default_value_t = MAX_BATCH_REPORTS,
        value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH_REPORTS as i64).map(usize::from)
    )]
    batch_size: usize,
    /// The vulnerability database the scheduled scans match against [default:
    /// DATA_DIR/vulndb.sqlite; create it with `palisade db import --db FILE FEED...`].
    #[arg(long, value_name = "FILE")]
    vulndb: Option<PathBuf>,
    /// The host root to scan and check (a mounted host file system, or a fixture).
    #[arg(long, value_name = "DIR", default_value = "/")]
    scan_root: PathBuf,
    /// Run scans and host checks only when the server asks, not on a schedule.
    #[arg(long)]
    no_scheduled_scans: bool,
    /// Allow the server to upgrade packages on this host (apt-get, apk).
    #[arg(long)]
    enable_fix: bool,
    /// Print the agent's state (enrollment, outbox, batches the server deferred, sensor and
    /// its event counts) and exit.
    #[arg(long)]
    status: bool,
    /// How `--status` prints.
    #[arg(long, value_enum, default_value_t = Output::Table, requires = "status")]
    output: Output,
    #[command(flatten)]
    detection: DetectionArgs,
}

/// Runs `palisade agent`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match args.command {
            Some(AgentCommand::Enqueue { data_dir, files }) => enqueue(&data_dir, &files).await,
            None if args.run.status => status(&args.run.data_dir, args.run.output).await,
            None => run_agent(args.run).await,
        }
    })
}

async fn run_agent(args: RunArgs) -> anyhow::Result<ExitCode> {
    let facts = palisade_agent::host_facts(Path::new("/"), "none");
    let name = args.name.unwrap_or_else(|| {
        if facts.hostname.is_empty() {
            "agent".into()
        } else {
            facts.hostname.clone()
        }
    });
    let mut config = AgentConfig::new(
        args.server.unwrap_or_default(),
        args.data_dir,
        args.cluster,
        name,
    );
    config.join_token = args.join_token;
    config.ca_cert = args.ca_cert;
    config.batch_size = args.batch_size;
    config.scans.vulndb = args.vulndb;
    config.scans.host_root = args.scan_root;
    config.scans.enabled = !args.no_scheduled_scans;
    config.fix.enabled = args.enable_fix;
    config.sensor_hold = args.detection.sensor_hold();
    config.sensor_reader_nice = args.detection.sensor_reader_nice.0;
    config.respond_rules = args.detection.respond.clone();
    let outbox = Outbox::open(&config.data_dir)
        .await
        .context("cannot open the outbox")?;
    let status = Arc::new(AgentStatus::default());
    let detection =
        detection::start_unless_disabled(&args.detection, &outbox, &status, &mut config)?;
    crate::start_memory::release_when_settled();
    let result =
        palisade_agent::run(config, outbox, &status, super::server::shutdown_signal()).await;
    if let Some(detection) = detection {
        detection.stop();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn status(data_dir: &Path, output: Output) -> anyhow::Result<ExitCode> {
    let outbox = Outbox::open(data_dir)
        .await
        .context("cannot open the outbox")?;
    let enrolled = std::fs::read_to_string(data_dir.join("credential.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<palisade_agent::Credential>(&text).ok())
        .map(|credential| credential.agent_id);
    let outbox_pending = outbox.len().await?;
    // Kept by the running agent (at start and after each deferral); absent before the first.
    let link = LinkStatus::read(data_dir)?;
    // Kept fresh by the running agent (every few seconds and when it stops); absent before
    // the first start.
    let sensor = sensor_status::read(data_dir)?;
    match output {
        Output::Json => {
            let facts = palisade_agent::host_facts(Path::new("/"), "none");
            let sensor = match &sensor {
                Some(sensor) => {
                    let mut value = serde_json::to_value(sensor)?;
                    value["state"] = sensor.state().into();
                    value
                }
                None => serde_json::Value::Null,
            };
            let report = serde_json::json!({
                "data_dir": data_dir,
                "enrolled": enrolled.is_some(),
                "agent_id": enrolled,
                "outbox_pending": outbox_pending,
                "link": link,
                "host": facts,
                "sensor": sensor,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Prometheus => {
            print!(
                "{}",
                crate::sensor_metrics::render(sensor.as_ref(), link.as_ref(), outbox_pending)
            );
        }
        Output::Table => {
            let mut agent = comfy_table::Table::new();
            agent.set_header(["agent", ""]);
            agent.add_row(["data directory".to_owned(), data_dir.display().to_string()]);
            agent.add_row([
                "enrolled".to_owned(),
                enrolled.map_or_else(|| "no".to_owned(), |id| format!("yes ({id})")),
            ]);
            agent.add_row(["outbox pending".to_owned(), outbox_pending.to_string()]);
            if let Some(link) = &link {
                agent.add_row([
                    "batches deferred by the server".to_owned(),
                    format!("{} since {}", link.batches_deferred, link.started_at),
                ]);
                agent.add_row([
                    "last deferred".to_owned(),
                    link.last_deferred_at
                        .map_or_else(|| "never".to_owned(), |at| at.to_string()),
                ]);
            }
            println!("{agent}");
            match &sensor {
                Some(sensor) => sensor_status::print_tables(sensor),
                None => println!("No sensor status: the agent has not run in this directory."),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn enqueue(data_dir: &Path, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    const CHUNK: usize = 1_000;
    let outbox = Outbox::open(data_dir)
        .await
        .context("cannot open the outbox")?;
    let mut total = 0usize;
    for file in files {
        let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            ))
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        for (index, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", file.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let report: FindingReport = serde_json::from_str(&line).with_context(|| {
                format!("{}:{}: not a finding report", file.display(), index + 1)
            })?;
            chunk.push(report);
            if chunk.len() == CHUNK {
                outbox.push(&chunk).await?;
                total += chunk.len();
                chunk.clear();
            }
        }
        outbox.push(&chunk).await?;
        total += chunk.len();
    }
    eprintln!("Queued {total} reports.");
    Ok(ExitCode::SUCCESS)
}
