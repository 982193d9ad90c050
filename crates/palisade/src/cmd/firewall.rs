//! `palisade firewall`: evaluate NetworkPolicies, admin policies and Palisade firewall rules
//! against a cluster state file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::Table;
use palisade_firewall::{Engine, Flow, Matrix, Probe, Protocol, State};

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

/// Runs `palisade firewall`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Matrix(args) => run_matrix(args),
        Command::Explain(args) => run_explain(args),
    }
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
