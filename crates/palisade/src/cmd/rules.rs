//! `palisade rules`: work with Falco-format detection rules.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use palisade_rules::{Engine, EngineConfig, Location, RuleSet, default_rule_sources};

/// Arguments of `palisade rules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Load rules files in order (later files override earlier ones) and report what loaded,
    /// with every warning and error at its file:line:column.
    ///
    /// Exits with 1 when any file has an error, 0 otherwise.
    Validate(ValidateArgs),
    /// Run a Kubernetes API server audit log (JSON lines, `audit.k8s.io/v1` events) through
    /// the rules and print one JSON object per alert, as `palisade monitor` does.
    ///
    /// Uses Palisade's default rules, then the `--rules` files. A line that is not an audit
    /// event is reported on stderr and skipped; exits with 1 when any line was bad.
    AuditLog(AuditLogArgs),
    /// List every field a condition or output may use, one `name<TAB>description` line each.
    ///
    /// A field the sensor does not observe still loads, is absent on every event (every
    /// check on it is false) and says why in its description.
    Fields,
}

#[derive(Debug, clap::Args)]
struct AuditLogArgs {
    /// The audit log file.
    #[arg(value_name = "FILE")]
    log: PathBuf,
    /// Rules files loaded after the default rules (later files override earlier ones).
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Rules files, loaded in order.
    #[arg(required_unless_present = "defaults", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Load Palisade's built-in default rules first, so that the files are checked as
    /// additions and overrides to them.
    #[arg(long)]
    defaults: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    /// `{"rules", "macros", "lists", "warnings", "errors"}`; each diagnostic has `file`,
    /// `line`, `column` and `message`.
    Json,
    /// One line per diagnostic, then a summary.
    Text,
}

/// Runs `palisade rules`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Validate(validate_args) => validate(validate_args),
        Command::AuditLog(audit_log_args) => audit_log(audit_log_args),
        Command::Fields => {
            let mut out = std::io::stdout().lock();
            for (name, description) in palisade_rules::supported_fields() {
                writeln!(out, "{name}\t{description}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn audit_log(args: AuditLogArgs) -> anyhow::Result<ExitCode> {
    let rule_set = RuleSet::load_files_after(&default_rule_sources(), &args.rules);
    if let Some(error) = rule_set.errors().first() {
        anyhow::bail!(
            "{}: {}: {} (run `palisade rules validate --defaults` for every diagnostic)",
            error.location(),
            error.item(),
            error.message()
        );
    }
    let file = std::fs::File::open(&args.log)
        .with_context(|| format!("cannot open audit log {}", args.log.display()))?;
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut n_bad_lines = 0;
    let mut alerts = Vec::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for result in palisade_k8saudit::read_json_lines(
        BufReader::new(file),
        &palisade_k8saudit::Limits::default(),
    ) {
        let event = match result {
            Ok(event) => event,
            Err(error) => {
                eprintln!("{}: {error}", args.log.display());
                n_bad_lines += 1;
                continue;
            }
        };
        engine.process(&event, &mut alerts);
        for alert in alerts.drain(..) {
            serde_json::to_writer(&mut out, &super::monitor::alert_json(&alert, &event))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(if n_bad_lines == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let defaults = if args.defaults {
        default_rule_sources()
    } else {
        Vec::new()
    };
    let rule_set = RuleSet::load_files_after(&defaults, &args.files);
    let errors: Vec<(&Location, String)> = rule_set
        .errors()
        .iter()
        .map(|error| {
            (
                error.location(),
                format!("{}: {}", error.item(), error.message()),
            )
        })
        .collect();
    let warnings: Vec<(&Location, String)> = rule_set
        .warnings()
        .iter()
        .map(|warning| {
            let message = format!("{}: {}", warning.item(), warning.message());
            (warning.location(), message)
        })
        .collect();
    match args.output {
        Output::Json => {
            let diagnostics = |list: &[(&Location, String)]| -> Vec<serde_json::Value> {
                list.iter()
                    .map(|(location, message)| {
                        serde_json::json!({
                            "file": location.file,
                            "line": location.line,
                            "column": location.column,
                            "message": message,
                        })
                    })
                    .collect()
            };
            let report = serde_json::json!({
                "rules": rule_set.rules().len(),
                "macros": rule_set.n_macros(),
                "lists": rule_set.n_lists(),
                "warnings": diagnostics(&warnings),
                "errors": diagnostics(&errors),
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Text => {
            for (location, message) in &warnings {
                println!("{location}: warning: {message}");
            }
            for (location, message) in &errors {
                println!("{location}: error: {message}");
            }
            println!(
                "{} rules, {} macros, {} lists loaded; {} errors, {} warnings",
                rule_set.rules().len(),
                rule_set.n_macros(),
                rule_set.n_lists(),
                errors.len(),
                warnings.len()
            );
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
