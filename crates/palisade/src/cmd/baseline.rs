//! `palisade baseline`: baseline risks. `workloads` checks Kubernetes manifests against the Pod
//! Security Standards and Palisade's best-practice rules; `host` checks a host's hardening
//! (`PAL-HOST-NNN`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::Table;
use palisade_baseline::{
    CheckResult, HostOptions, HostRoot, HostRule, Level, Loaded, ObjectReport, ProbeOptions, Rule,
    ServiceTarget, Severity, Status, Version, WaiverPolicy, WalkLimits, apply_exceptions,
    check_host, check_services, check_workload, host_rules, load_paths, practice_rules,
    service_rules,
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
    /// Check a host's hardening: SSH, accounts, file permissions, sysctls, kernel modules,
    /// world-writable directories and setuid programs, auditd, Docker, containerd, kubelet.
    ///
    /// With --root other than /, the files under that directory are checked (a mounted image or
    /// a container's root file system) and the running kernel is not consulted. Exits with 1
    /// when a check fails at or above --fail-on, 2 when the root cannot be read, 0 otherwise.
    Host(HostArgs),
    /// Check databases and middleware: Redis, MySQL/MariaDB, PostgreSQL, MongoDB and nginx
    /// configuration files under --root and, with --probe, the servers on loopback.
    ///
    /// Probes are read-only, try passwords only from a short built-in list (one attempt per
    /// 200 ms) and refuse any address that is not loopback. Exits like `host`.
    Services(ServicesArgs),
}

#[derive(Debug, clap::Args)]
struct ServicesArgs {
    /// The root directory whose configuration files are read (a host or a container's root
    /// file system).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Check a running container instead (runc or podman id or name): its configuration is
    /// read through its root file system and the probes run inside its network namespace,
    /// against its own loopback.
    #[arg(long, value_name = "ID", conflicts_with_all = ["root", "pid"])]
    container: Option<String>,
    /// Like --container, for any process: its root file system and network namespace.
    #[arg(long, value_name = "PID", conflicts_with = "root")]
    pid: Option<u32>,
    /// Also probe the servers on loopback (ports from the configuration, or the defaults).
    #[arg(long)]
    probe: bool,
    /// Redis address to probe instead of the configured one (loopback only).
    #[arg(long, value_name = "ADDR", requires = "probe")]
    redis: Option<std::net::SocketAddr>,
    /// PostgreSQL address to probe instead of the configured one (loopback only).
    #[arg(long, value_name = "ADDR", requires = "probe")]
    postgres: Option<std::net::SocketAddr>,
    /// MySQL/MariaDB address to probe instead of the configured one (loopback only).
    #[arg(long, value_name = "ADDR", requires = "probe")]
    mysql: Option<std::net::SocketAddr>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Exit with 1 only when a failed check is at least this severe.
    #[arg(long, value_name = "SEVERITY", default_value = "info")]
    fail_on: Severity,
}

#[derive(Debug, clap::Args)]
struct HostArgs {
    /// The host's root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Exit with 1 only when a failed check is at least this severe
    /// (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", default_value = "info")]
    fail_on: Severity,
    /// The most directory entries the world-writable/setuid walk looks at.
    #[arg(long, value_name = "N", default_value_t = WalkLimits::default().max_entries)]
    max_entries: usize,
}

#[derive(Debug, clap::Args)]
struct WorkloadsArgs {
    /// Manifest files or directories (searched recursively for .yaml, .yml and .json).
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Pod Security Standards level: baseline or restricted.
    #[arg(long, value_name = "LEVEL", default_value = "restricted")]
    pss_level: Level,
    /// Pod Security Standards version: v1.N or latest (versions after v1.37 are checked as v1.37).
    #[arg(long, value_name = "VERSION", default_value = "latest")]
    pss_version: Version,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Also exit with 1 when a best-practice finding is at least this severe
    /// (info, low, medium, high, critical). By default only Pod Security Standards failures do.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Accepted risks: a JSON list of exceptions (`check`, optional `namespace`, `name`,
    /// `container`, `labels`, and `reason`, `owner`, `expires_at` as an RFC 3339 time).
    /// Expired exceptions do not apply.
    #[arg(long, value_name = "FILE")]
    exceptions: Option<PathBuf>,
    /// Ignore `palisade.io/waive` annotations on the objects.
    #[arg(long)]
    no_annotation_waivers: bool,
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
        Command::Host(args) => run_host(args),
        Command::Services(args) => run_services(args),
    }
}

fn run_services(args: ServicesArgs) -> anyhow::Result<ExitCode> {
    let target_pid = match (&args.container, args.pid) {
        (Some(container), _) => match palisade_inventory::container_pid(container) {
            Ok(pid) => Some(pid),
            Err(error) => {
                eprintln!("palisade: {error}");
                return Ok(ExitCode::from(2));
            }
        },
        (None, pid) => pid,
    };
    let target = target_pid.map_or_else(|| ServiceTarget::root(&args.root), ServiceTarget::process);
    let checked = target.host_root().and_then(|host| {
        let mut results = check_services(&host);
        if args.probe {
            let mut options = ProbeOptions::from_config(&host);
            options.redis = args.redis.or(options.redis);
            options.postgres = args.postgres.or(options.postgres);
            options.mysql = args.mysql.or(options.mysql);
            results.extend(target.probe(options)?);
        }
        Ok((host, results))
    });
    let (host, results) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("palisade: {}", error_chain(&error));
            return Ok(ExitCode::from(2));
        }
    };
    print_check_results(
        &results,
        service_rules(),
        args.output,
        json!({
            "root": host.root().display().to_string(),
            "container": args.container,
            "pid": target_pid,
            "probed": args.probe,
        }),
    )?;
    Ok(check_results_exit_code(&results, args.fail_on))
}

fn run_host(args: HostArgs) -> anyhow::Result<ExitCode> {
    let host = match HostRoot::new(&args.root) {
        Ok(host) => host,
        Err(error) => {
            eprintln!("palisade: {}", error_chain(&error));
            return Ok(ExitCode::from(2));
        }
    };
    let options = HostOptions {
        walk: WalkLimits {
            max_entries: args.max_entries,
            ..WalkLimits::default()
        },
    };
    let report = check_host(&host, &options);
    print_check_results(
        &report.results,
        host_rules(),
        args.output,
        json!({"root": report.root, "live": report.live}),
    )?;
    Ok(check_results_exit_code(&report.results, args.fail_on))
}

/// 1 when a check failed at or above `threshold`, else 0.
fn check_results_exit_code(results: &[CheckResult], threshold: Severity) -> ExitCode {
    let failed = results
        .iter()
        .any(|result| result.status == Status::Fail && result.rule.severity >= threshold);
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints host or service check results; `context` goes into the JSON document and the SARIF
/// run properties.
fn print_check_results(
    results: &[CheckResult],
    rules: impl Iterator<Item = &'static HostRule>,
    output: Output,
    context: Value,
) -> anyhow::Result<()> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for result in results {
        *counts.entry(result.status.as_str()).or_default() += 1;
    }
    match output {
        Output::Json => {
            let mut document = context;
            document["results"] = serde_json::to_value(results)?;
            document["summary"] = serde_json::to_value(&counts)?;
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Output::Sarif => {
            let rules: Vec<&HostRule> = rules.collect();
            let sarif_rules: Vec<Value> = rules
                .iter()
                .map(|rule| {
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
                        "properties": {"severity": rule.severity, "category": rule.category, "references": references},
                    })
                })
                .collect();
            let mut sarif_results = Vec::new();
            for result in results
                .iter()
                .filter(|result| result.status == Status::Fail)
            {
                let rule_index = rules.iter().position(|rule| rule.id == result.rule.id);
                for evidence in &result.evidence {
                    let mut region = json!({});
                    if let Some(line) = evidence.line {
                        region = json!({"startLine": line});
                    }
                    sarif_results.push(json!({
                        "ruleId": result.rule.id,
                        "ruleIndex": rule_index,
                        "level": sarif_level(result.rule.severity),
                        "message": {"text": format!("{}: {} = {}", result.rule.title, evidence.setting, evidence.value)},
                        "locations": [{"physicalLocation": {
                            "artifactLocation": {"uri": evidence.file},
                            "region": region,
                        }}],
                        "properties": {"setting": evidence.setting, "value": evidence.value, "severity": result.rule.severity},
                    }));
                }
            }
            let invocation_notes: Vec<Value> = results
                .iter()
                .filter(|result| result.status == Status::Error)
                .map(|result| json!({"level": "error", "message": {"text": format!("{}: {}", result.rule.id, result.message)}}))
                .collect();
            let document = json!({
                "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
                "version": "2.1.0",
                "runs": [{
                    "tool": {"driver": {
                        "name": "palisade",
                        "version": env!("CARGO_PKG_VERSION"),
                        "rules": sarif_rules,
                    }},
                    "invocations": [{"executionSuccessful": true, "toolExecutionNotifications": invocation_notes}],
                    "properties": context,
                    "results": sarif_results,
                }],
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Output::Table => {
            let mut table = Table::new();
            table.set_header(["Check", "Severity", "Status", "Title", "Detail"]);
            for result in results {
                let detail = if result.evidence.is_empty() {
                    result.message.clone()
                } else {
                    result
                        .evidence
                        .iter()
                        .map(|evidence| {
                            let location = match evidence.line {
                                Some(line) => format!("{}:{line}", evidence.file),
                                None => evidence.file.clone(),
                            };
                            format!("{} = {} ({location})", evidence.setting, evidence.value)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                // The rule id, then the benchmark recommendations it matches, one line per
                // benchmark (`CIS Debian Linux 12 v1.1.0 7.1.1, 7.1.3`).
                let mut benchmarks: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for reference in result.rule.references {
                    if reference.source.starts_with("CIS") {
                        benchmarks
                            .entry(reference.source)
                            .or_default()
                            .push(reference.id);
                    }
                }
                let check = std::iter::once(result.rule.id.to_owned())
                    .chain(
                        benchmarks
                            .iter()
                            .map(|(source, ids)| format!("{source} {}", ids.join(", "))),
                    )
                    .collect::<Vec<_>>()
                    .join("\n");
                table.add_row([
                    check,
                    result.rule.severity.to_string(),
                    result.status.as_str().to_owned(),
                    result.rule.title.to_owned(),
                    detail,
                ]);
            }
            println!("{table}");
            let summary: Vec<String> = counts
                .iter()
                .map(|(status, count)| format!("{count} {status}"))
                .collect();
            println!("{} checks: {}", results.len(), summary.join(", "));
        }
    }
    Ok(())
}

/// The JSON document: the reports plus what could not be read.
#[derive(Serialize)]
struct JsonReport<'a> {
    objects: &'a [ObjectReport],
    /// Findings and violations removed by exceptions or annotation waivers.
    waived: Vec<Value>,
    warnings: Vec<String>,
    errors: Vec<String>,
}

/// Reads a JSON list of exceptions.
fn read_exceptions(path: &std::path::Path) -> anyhow::Result<Vec<palisade_model::NewException>> {
    use anyhow::Context as _;
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read the exceptions file {}", path.display()))?;
    anyhow::ensure!(
        metadata.len() <= 16 * 1024 * 1024,
        "the exceptions file {} is larger than 16 MiB",
        path.display()
    );
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the exceptions file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON list of exceptions ({{\"check\", \"reason\", \"owner\", ...}})",
            path.display()
        )
    })
}

fn run_workloads(args: WorkloadsArgs) -> anyhow::Result<ExitCode> {
    let exceptions = match &args.exceptions {
        Some(path) => read_exceptions(path)?,
        None => Vec::new(),
    };
    let policy = WaiverPolicy {
        annotations: !args.no_annotation_waivers,
    };
    let now = palisade_model::Timestamp::now();
    let loaded = load_paths(&args.files);
    let mut waived = Vec::new();
    let reports: Vec<ObjectReport> = loaded
        .workloads
        .iter()
        .map(|workload| {
            let mut report = check_workload(workload, args.pss_level, args.pss_version);
            for removed in apply_exceptions(workload, &mut report, &exceptions, policy, now) {
                waived.push(
                    json!({"object": object_name(&report), "file": report.file, "waived": removed}),
                );
            }
            report
        })
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
                waived,
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
