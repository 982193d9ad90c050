//! `palisade baseline`: baseline risks. `workloads` checks Kubernetes manifests against the Pod
//! Security Standards and Palisade's best-practice rules.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::Table;
use palisade_baseline::{
    Level, Loaded, ObjectReport, Rule, Severity, Version, check_workload, load_paths,
    practice_rules,
};
use serde::Serialize;
use serde_json::{Value, json};

/// Arguments of `palisade baseline`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check Kubernetes workload manifests: Pod Security Standards and best practices.
    ///
    /// Exits with 1 when an object is not allowed by the Pod Security Standards level (or has a
    /// finding at or above --fail-on), 2 when a manifest cannot be read, and 0 otherwise.
    Workloads(WorkloadsArgs),
}

#[derive(Debug, clap::Args)]
struct WorkloadsArgs {
    /// Manifest files or directories (searched recursively for .yaml, .yml and .json).
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Pod Security Standards level: baseline or restricted.
    #[arg(long, value_name = "LEVEL", default_value = "restricted")]
    pss_level: Level,
    /// Pod Security Standards version: v1.0 … v1.37, or latest.
    #[arg(long, value_name = "VERSION", default_value = "latest")]
    pss_version: Version,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Also exit with 1 when a best-practice finding is at least this severe
    /// (info, low, medium, high, critical). By default only Pod Security Standards failures do.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    /// `{"objects": [{file, kind, namespace, name, pss, findings}]}`.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
    /// A table for people.
    Table,
}

/// Runs `palisade baseline`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Workloads(args) => run_workloads(args),
    }
}

/// The JSON document: the reports plus what could not be read.
#[derive(Serialize)]
struct JsonReport<'a> {
    objects: &'a [ObjectReport],
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn run_workloads(args: WorkloadsArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_paths(&args.files);
    let reports: Vec<ObjectReport> = loaded
        .workloads
        .iter()
        .map(|workload| check_workload(workload, args.pss_level, args.pss_version))
        .collect();
    let warnings: Vec<String> = loaded
        .warnings
        .iter()
        .map(|warning| {
            format!(
                "{}:{}: {}",
                warning.file.display(),
                warning.line,
                warning.message
            )
        })
        .collect();
    let errors: Vec<String> = loaded
        .errors
        .iter()
        .map(|error| error_chain(error))
        .collect();
    for warning in &warnings {
        eprintln!("palisade: warning: {warning}");
    }
    for error in &errors {
        eprintln!("palisade: {error}");
    }
    match args.output {
        Output::Json => {
            let document = JsonReport {
                objects: &reports,
                warnings,
                errors,
            };
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Output::Sarif => println!("{}", serde_json::to_string_pretty(&sarif(&reports, &args))?),
        Output::Table => print_table(&reports, &loaded, &args),
    }
    if !loaded.errors.is_empty() {
        return Ok(ExitCode::from(2));
    }
    let failed = reports.iter().any(|report| {
        !report.pss.allowed
            || args.fail_on.is_some_and(|threshold| {
                report
                    .findings
                    .iter()
                    .any(|finding| finding.severity >= threshold)
            })
    });
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// An error and its causes on one line, as `{:#}` prints an anyhow chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn object_name(report: &ObjectReport) -> String {
    match &report.namespace {
        Some(namespace) => format!("{}/{namespace}/{}", report.kind, report.name),
        None => format!("{}/{}", report.kind, report.name),
    }
}

fn print_table(reports: &[ObjectReport], loaded: &Loaded, args: &WorkloadsArgs) {
    let mut table = Table::new();
    table.set_header(["Object", "Location", "Check", "Severity", "Detail"]);
    for report in reports {
        let object = object_name(report);
        for violation in &report.pss.violations {
            table.add_row([
                object.clone(),
                format!("{}:{}", report.file, violation.line),
                format!("PSS {}: {}", report.pss.level, violation.check),
                "fail".to_owned(),
                violation.message.clone(),
            ]);
        }
        for finding in &report.findings {
            table.add_row([
                object.clone(),
                format!("{}:{}", finding.evidence.file, finding.evidence.line),
                finding.id.to_owned(),
                finding.severity.to_string(),
                format!(
                    "{}: {} = {}",
                    finding.title, finding.evidence.path, finding.evidence.value
                ),
            ]);
        }
    }
    if table.row_count() > 0 {
        println!("{table}");
    }
    let n_denied = reports.iter().filter(|report| !report.pss.allowed).count();
    let mut by_severity: BTreeMap<Severity, usize> = BTreeMap::new();
    for finding in reports.iter().flat_map(|report| &report.findings) {
        *by_severity.entry(finding.severity).or_default() += 1;
    }
    let severities: Vec<String> = by_severity
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {severity}"))
        .collect();
    println!(
        "{} workloads ({} other objects skipped): {n_denied} not allowed by Pod Security Standards {} {}; {} findings{}",
        reports.len(),
        loaded.n_other_objects,
        args.pss_level,
        args.pss_version,
        by_severity.values().sum::<usize>(),
        if severities.is_empty() {
            String::new()
        } else {
            format!(" ({})", severities.join(", "))
        },
    );
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn sarif_rule(rule: &Rule) -> Value {
    let references: Vec<String> = rule
        .references
        .iter()
        .map(|reference| format!("{} {}", reference.source, reference.id))
        .collect();
    json!({
        "id": rule.id,
        "name": rule.title,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {"text": rule.remediation},
        "defaultConfiguration": {"level": sarif_level(rule.severity)},
        "properties": {"severity": rule.severity, "references": references},
    })
}

fn sarif_location(file: &str, line: usize, report: &ObjectReport) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": file.replace('\\', "/")},
            "region": {"startLine": line.max(1)},
        },
        "logicalLocations": [{"fullyQualifiedName": object_name(report), "kind": "resource"}],
    })
}

fn sarif(reports: &[ObjectReport], args: &WorkloadsArgs) -> Value {
    let mut rules: Vec<Value> = practice_rules().map(sarif_rule).collect();
    let mut rule_index: BTreeMap<String, usize> = practice_rules()
        .enumerate()
        .map(|(rule_idx, rule)| (rule.id.to_owned(), rule_idx))
        .collect();
    let mut results = Vec::new();
    for report in reports {
        for violation in &report.pss.violations {
            let rule_id = format!("pss/{}", violation.check);
            let index = *rule_index.entry(rule_id.clone()).or_insert_with(|| {
                rules.push(json!({
                    "id": rule_id,
                    "name": violation.check,
                    "shortDescription": {"text": format!("Pod Security Standards check {}", violation.check)},
                    "helpUri": "https://kubernetes.io/docs/concepts/security/pod-security-standards/",
                    "defaultConfiguration": {"level": "error"},
                }));
                rules.len() - 1
            });
            results.push(json!({
                "ruleId": rule_id,
                "ruleIndex": index,
                "level": "error",
                "message": {"text": format!(
                    "{} is not allowed by Pod Security Standards {} {}: {}",
                    object_name(report), report.pss.level, report.pss.version, violation.message
                )},
                "locations": [sarif_location(&report.file, violation.line, report)],
                "properties": {"path": violation.path},
            }));
        }
        for finding in &report.findings {
            results.push(json!({
                "ruleId": finding.id,
                "ruleIndex": rule_index.get(finding.id).copied(),
                "level": sarif_level(finding.severity),
                "message": {"text": format!(
                    "{}: {} = {} in {}",
                    finding.title, finding.evidence.path, finding.evidence.value, object_name(report)
                )},
                "locations": [sarif_location(&finding.evidence.file, finding.evidence.line, report)],
                "properties": {"path": finding.evidence.path, "value": finding.evidence.value, "severity": finding.severity},
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "properties": {"pssLevel": args.pss_level, "pssVersion": args.pss_version.to_string()},
            "results": results,
        }],
    })
}
