//! `palisade rules`: work with Falco-format detection rules.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_rules::{Location, RuleSet};

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
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Rules files, loaded in order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
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
    }
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let rule_set = RuleSet::load_files(&args.files);
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
