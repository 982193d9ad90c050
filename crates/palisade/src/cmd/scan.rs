//! `palisade scan`: inventory an image, a root filesystem, a running container or the host,
//! and match the packages against the vulnerability database.
//!
//! Outputs: a table; JSON (schema `palisade.scan/v1` below); SARIF 2.1.0; CycloneDX 1.5 with
//! components and vulnerabilities. With `--inventory-only`, only the packages: JSON (schema
//! `palisade.inventory/v1`) or a CycloneDX SBOM.
//!
//! The `palisade.scan/v1` JSON document:
//!
//! ```text
//! { "schema": "palisade.scan/v1",
//!   "target": { "kind": "image|rootfs|container|host", "path": str,
//!               "image_id": str|null, "reference": str|null, "distro": {...}|null },
//!   "summary": { "packages": n, "findings": n, "by_severity": { "critical": n, ... },
//!                "skipped": { "git_ranges": n, "invalid_ranges": n, "withdrawn": n,
//!                             "not_affected": n },
//!                "not_evaluated": [ { "ecosystem": str, "packages": n,
//!                                     "reason": "no advisory source loaded" } ] },
//!   "findings": [ { "id": str, "aliases": [str], "summary": str,
//!                   "severity": "critical|high|medium|low|negligible|unknown",
//!                   "cvss_score": f64|null, "cvss_vector": str|null,
//!                   "package": { "name", "ecosystem", "purl", "source_name", "source_version" },
//!                   "installed_version": str, "fixed_versions": [str],
//!                   "status": "fixed|open|will-not-fix|negligible"|null,
//!                   "fix": str|null,
//!                   "published": str, "modified": str,   (when the feed dates them)
//!                   "location": { "path", "layer_index", "layer_digest" } } ],
//!   "warnings": [ { "location": str, "reason": str } ] }
//! ```
//!
//! `skipped` counts, over every package checked, the advisory entries of its name that
//! could not or must not decide: `GIT` ranges (commits cannot be compared with package
//! versions), ranges whose bounds are not versions of the ecosystem's scheme, withdrawn
//! advisories and distribution entries saying "not affected". The table prints the first
//! two, which are advisories Palisade could not evaluate. `not_evaluated` lists the
//! inventory's ecosystems (distribution releases such as `Amazon Linux:2023` before its
//! updateinfo.xml is imported, or `Oracle Linux:9` and `Azure Linux:3.0` before their
//! OVAL is, since OSV does not carry them, or language ecosystems) of which
//! the database holds no advisory at all: their
//! packages were not checked, which is not the same as clean, and the table says so.
//!
//! Exit codes: 0 when no finding reaches `--fail-on` (or without `--fail-on`), 1 when one
//! does, 2 on errors.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use palisade_inventory::{
    Cancel, Image, Inventory, LazyFiles, Limits, Package, RootFs, RunningKernel, Target,
};
use palisade_vulndb::{Database, FileCheck, Index, MatchStats};
use serde::Serialize;
use serde_json::json;

/// Arguments of `palisade scan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Scan a container image: an OCI layout directory, an OCI archive or a `docker save`
    /// archive (read in place, never unpacked).
    Image(PathArgs),
    /// Scan a root filesystem directory.
    Rootfs(PathArgs),
    /// Scan a running container's merged root, by runc or podman id or name, or by path.
    Container(ContainerArgs),
    /// Scan this host's root filesystem (without /proc, /sys, /dev, /run and container
    /// storage).
    Host(HostArgs),
    /// Scan a file, a directory or every layer of an image for malware (YARA rules, hash
    /// IoCs).
    Malware(crate::cmd::scan_malware::Args),
}

#[derive(Debug, clap::Args)]
struct PathArgs {
    /// The image or directory.
    target: PathBuf,
    #[command(flatten)]
    options: ScanOptions,
}

#[derive(Debug, clap::Args)]
struct ContainerArgs {
    /// A runc or podman container id or name, or the container's root directory.
    container: String,
    #[command(flatten)]
    options: ScanOptions,
}

#[derive(Debug, clap::Args)]
struct HostArgs {
    #[command(flatten)]
    options: ScanOptions,
}

#[derive(Debug, clap::Args)]
struct ScanOptions {
    /// The vulnerability database (see `palisade db import`); required unless
    /// --inventory-only.
    #[arg(long, value_name = "FILE", required_unless_present = "inventory_only")]
    db: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
    /// Exit with 1 when a finding has at least this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<Level>,
    /// List the packages only (JSON or a CycloneDX SBOM), without matching.
    #[arg(long)]
    inventory_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
    Sarif,
    Cyclonedx,
}

/// Severity levels, lowest first; `unknown` sorts below every rated level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// The level of a feed's severity word (`HIGH`, `moderate`, Debian's `unimportant`),
    /// else of the CVSS score.
    fn of(severity: Option<&str>, cvss_score: Option<f64>) -> Level {
        let word = severity
            .unwrap_or_default()
            .trim_end_matches('*')
            .to_ascii_lowercase();
        match word.as_str() {
            "critical" => Level::Critical,
            "high" | "important" => Level::High,
            "medium" | "moderate" => Level::Medium,
            "low" => Level::Low,
            "negligible" | "unimportant" => Level::Negligible,
            _ => match cvss_score {
                Some(score) if score >= 9.0 => Level::Critical,
                Some(score) if score >= 7.0 => Level::High,
                Some(score) if score >= 4.0 => Level::Medium,
                Some(score) if score > 0.0 => Level::Low,
                _ => Level::Unknown,
            },
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Negligible => "negligible",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    fn sarif_level(self) -> &'static str {
        match self {
            Level::Critical | Level::High => "error",
            Level::Medium => "warning",
            _ => "note",
        }
    }
}

/// What was scanned, for the reports.
#[derive(Debug, Serialize)]
struct TargetInfo {
    kind: &'static str,
    path: String,
    image_id: Option<String>,
    reference: Option<String>,
    distro: Option<palisade_inventory::Distro>,
}

/// One vulnerability in one package at one location.
#[derive(Debug, Serialize)]
struct Finding<'a> {
    id: String,
    aliases: Vec<String>,
    summary: String,
    severity: Level,
    cvss_score: Option<f64>,
    cvss_vector: Option<String>,
    package: PackageRef<'a>,
    installed_version: &'a str,
    fixed_versions: Vec<String>,
    status: Option<&'static str>,
    fix: Option<String>,
    /// When the advisory was published and last modified, as its feed writes the dates.
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
    location: &'a palisade_inventory::Location,
}

#[derive(Debug, Serialize)]
struct PackageRef<'a> {
    name: &'a str,
    ecosystem: &'a str,
    purl: &'a str,
    source_name: Option<&'a str>,
    source_version: Option<&'a str>,
}

/// Runs `palisade scan`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Only the host scan is of the running system, whose running kernel a check may ask.
    let running_host = matches!(args.command, Command::Host(_));
    let (target, kind, options) = match args.command {
        Command::Malware(args) => return crate::cmd::scan_malware::run(args),
        Command::Image(args) => {
            let image = Image::open(&args.target)
                .with_context(|| format!("cannot open image {}", args.target.display()))?;
            (Target::Image(image), "image", args.options)
        }
        Command::Rootfs(args) => {
            anyhow::ensure!(
                args.target.is_dir(),
                "{} is not a directory",
                args.target.display()
            );
            (
                Target::RootFs(RootFs::new(&args.target)),
                "rootfs",
                args.options,
            )
        }
        Command::Container(args) => (
            Target::RootFs(RootFs::container(&args.container)?),
            "container",
            args.options,
        ),
        Command::Host(args) => (Target::RootFs(RootFs::host()), "host", args.options),
    };
    // The database opens on its own thread while the target is read (the two are
    // independent, and the read of a cold image waits on the disk and on gzip inflation),
    // and loads only the advisories of the ecosystems the inventory finds, each language
    // ecosystem's as soon as a cataloger reads a first package of it, the distribution's
    // once the walk knows its release: for an OS image, a small part of a database that
    // holds language ecosystems and other releases.
    let (limits, cancel) = (Limits::default(), Cancel::new());
    let (ecosystems_found, ecosystems_wanted) = std::sync::mpsc::channel::<Wanted>();
    let (inventory, index) = std::thread::scope(|scope| {
        let index = (!options.inventory_only).then(|| {
            let db = options.db.clone();
            scope.spawn(move || {
                let db = db.context("--db is required to match packages")?;
                load_index(&db, &ecosystems_wanted)
            })
        });
        // The loader is gone only when it failed already; its error is reported below.
        let inventory = take_inventory(&target, &limits, &cancel, &mut |ecosystem| {
            let _ = ecosystems_found.send(Wanted::Ecosystem(ecosystem));
        });
        let ecosystems = inventory.as_ref().map_or_else(
            |_| BTreeSet::new(),
            |inventory| {
                inventory
                    .packages
                    .iter()
                    .map(|package| package.ecosystem.clone())
                    .collect()
            },
        );
        let _ = ecosystems_found.send(Wanted::All(ecosystems));
        let index = index.map(|loading| {
            loading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (inventory, index)
    });
    let inventory = inventory?;
    for warning in &inventory.warnings {
        tracing::warn!(location = %warning.location, reason = %warning.reason, "Skipped.");
    }
    let info = TargetInfo {
        kind,
        path: target.path().display().to_string(),
        image_id: match &target {
            Target::Image(image) => Some(image.id().to_owned()),
            Target::RootFs(_) => None,
        },
        reference: match &target {
            Target::Image(image) => image.reference().map(str::to_owned),
            Target::RootFs(_) => None,
        },
        distro: inventory.distro.clone(),
    };
    if options.inventory_only {
        print_inventory(&info, &inventory, options.output)?;
        return Ok(ExitCode::SUCCESS);
    }
    let index = index.context("the index is loaded unless --inventory-only")??;
    let checked_paths = index.file_checks().into_iter().map(FileCheck::path);
    let root_files = if running_host {
        LazyFiles::of_running_host(&target, checked_paths, &limits, &cancel)
    } else {
        LazyFiles::new(&target, checked_paths, &limits, &cancel)
    };
    // Of the kernels installed side by side, the running host runs one.
    let matched = match running_host.then(RunningKernel::of_this_system).flatten() {
        Some(running) => running.without_other_kernels(&inventory.packages),
        None => inventory.packages.iter().collect(),
    };
    let (findings, skipped) = match_packages(&index, &matched, &root_files);
    let not_evaluated = not_evaluated(&index, &inventory.packages);
    match options.output {
        Output::Table => print_table(&info, &inventory, &findings, &skipped, &not_evaluated),
        Output::Json => print_json(&info, &inventory, &findings, &skipped, &not_evaluated)?,
        Output::Sarif => print_sarif(&findings)?,
        Output::Cyclonedx => print_cyclonedx(&info, &inventory, Some(&findings))?,
    }
    let failed = options
        .fail_on
        .is_some_and(|threshold| findings.iter().any(|finding| finding.severity >= threshold));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A progress bar on stderr drawn with `template`, shown only when stderr is a terminal: a
/// bar of `length` steps, or a spinner without one.
fn terminal_progress(length: Option<u64>, template: &str) -> indicatif::ProgressBar {
    let bar = match (std::io::stderr().is_terminal(), length) {
        (false, _) => indicatif::ProgressBar::hidden(),
        (true, Some(length)) => indicatif::ProgressBar::new(length),
        (true, None) => indicatif::ProgressBar::new_spinner(),
    };
    let fallback = match length {
        Some(_) => indicatif::ProgressStyle::default_bar(),
        None => indicatif::ProgressStyle::default_spinner(),
    };
    bar.set_style(indicatif::ProgressStyle::with_template(template).unwrap_or(fallback));
    bar
}

/// What the index loader is asked for while the target is read.
enum Wanted {
    /// A language ecosystem a cataloger found, during the walk.
    Ecosystem(&'static str),
    /// Every ecosystem of the inventory, distributions' included, once it is taken.
    All(BTreeSet<String>),
}

/// A spinner on stderr (only when it is a terminal) counting files and bytes read;
/// `ecosystem_found` hears of each language ecosystem as the walk finds it.
fn take_inventory(
    target: &Target,
    limits: &Limits,
    cancel: &Cancel,
    ecosystem_found: &mut dyn FnMut(&'static str),
) -> anyhow::Result<Inventory> {
    let bar = terminal_progress(None, "{spinner} {msg} {pos} files, {binary_bytes}");
    bar.set_message(format!("reading {}", target.path().display()));
    let mut n_bytes = 0u64;
    let inventory = palisade_inventory::inventory_observed(
        target,
        limits,
        cancel,
        &mut |size| {
            n_bytes += size;
            bar.inc(1);
            // The spinner template shows bytes through the length field.
            bar.set_length(n_bytes);
        },
        ecosystem_found,
    )
    .with_context(|| format!("cannot inventory {}", target.path().display()))?;
    bar.finish_and_clear();
    Ok(inventory)
}

/// Opens the database, then loads the index for the ecosystems `ecosystems_wanted` sends:
/// each language ecosystem as the walk finds it, then the rest once the inventory is taken.
fn load_index(
    db: &std::path::Path,
    ecosystems_wanted: &std::sync::mpsc::Receiver<Wanted>,
) -> anyhow::Result<Index> {
    anyhow::ensure!(
        db.exists(),
        "vulnerability database {} does not exist; create it with `palisade db import`",
        db.display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let database = Database::open(db)
            .await
            .with_context(|| format!("cannot open {}", db.display()))?;
        let cannot_load = || format!("cannot load the index of {}", db.display());
        let mut index = Index::load_none(&database)
            .await
            .with_context(cannot_load)?;
        loop {
            let wanted = ecosystems_wanted
                .recv()
                .context("the inventory ended without naming its ecosystems")?;
            let (ecosystems, last) = match wanted {
                Wanted::Ecosystem(ecosystem) => (BTreeSet::from([ecosystem.to_owned()]), false),
                Wanted::All(ecosystems) => (ecosystems, true),
            };
            index
                .extend_for(&database, &ecosystems)
                .await
                .with_context(cannot_load)?;
            if last {
                break;
            }
        }
        database.close().await;
        Ok(index)
    })
}

/// Why the packages of an ecosystem in [`not_evaluated`] were not checked.
const NO_ADVISORY_SOURCE: &str = "no advisory source loaded";

/// The inventory's ecosystems the database holds no advisory of, with their package
/// counts: their packages were not evaluated.
fn not_evaluated<'a>(index: &Index, packages: &'a [Package]) -> BTreeMap<&'a str, usize> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for package in packages {
        *counts.entry(&package.ecosystem).or_insert(0) += 1;
    }
    counts.retain(|ecosystem, _| !index.has_advisories_for(ecosystem));
    counts
}

/// The findings of every package, and what matching skipped over all of them; a progress
/// bar on stderr when it is a terminal. Advisories' checks of file contents are answered
/// on the scanned target.
fn match_packages<'a>(
    index: &Index,
    packages: &[&'a Package],
    root_files: &LazyFiles<'_>,
) -> (Vec<Finding<'a>>, MatchStats) {
    let mut findings = Vec::new();
    let mut skipped = MatchStats::default();
    let bar = terminal_progress(
        Some(packages.len() as u64),
        "matching {bar:30} {pos}/{len} packages {msg}",
    );
    for &package in packages {
        bar.inc(1);
        let report = match palisade_agent::match_inventory_package(index, package, Some(root_files))
        {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(purl = %package.purl, error = %error, "Cannot match package.");
                continue;
            }
        };
        skipped += report.stats;
        for finding in report.findings {
            findings.push(Finding {
                severity: Level::of(finding.severity.as_deref(), finding.cvss_score),
                id: finding.id,
                aliases: finding.aliases,
                summary: finding.summary,
                cvss_score: finding.cvss_score,
                cvss_vector: finding.cvss_vector,
                package: PackageRef {
                    name: &package.name,
                    ecosystem: &package.ecosystem,
                    purl: &package.purl,
                    source_name: package.source_name.as_deref(),
                    source_version: package.source_version.as_deref(),
                },
                installed_version: &package.version,
                fixed_versions: finding.fixed_versions,
                status: finding.status.map(|status| status.as_str()),
                fix: finding.fix,
                published: finding.published,
                modified: finding.modified,
                location: &package.location,
            });
        }
    }
    bar.finish_and_clear();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.package.name.cmp(b.package.name))
            .then_with(|| a.id.cmp(&b.id))
    });
    (findings, skipped)
}

fn by_severity(findings: &[Finding<'_>]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.severity.as_str()).or_insert(0) += 1;
    }
    counts
}

fn print_table(
    info: &TargetInfo,
    inventory: &Inventory,
    findings: &[Finding<'_>],
    skipped: &MatchStats,
    not_evaluated: &BTreeMap<&str, usize>,
) {
    let mut table = comfy_table::Table::new();
    table.set_header([
        "package",
        "installed",
        "fixed",
        "id",
        "severity",
        "location",
        "fix",
    ]);
    for finding in findings {
        table.add_row([
            finding.package.name.to_owned(),
            finding.installed_version.to_owned(),
            finding.fixed_versions.join(", "),
            finding.id.clone(),
            finding.severity.as_str().to_owned(),
            finding.location.path.clone(),
            finding.fix.clone().unwrap_or_default(),
        ]);
    }
    if !findings.is_empty() {
        println!("{table}");
    }
    let distro = info
        .distro
        .as_ref()
        .and_then(|distro| distro.pretty_name.clone())
        .unwrap_or_else(|| "unknown distribution".to_owned());
    let counts: Vec<String> = by_severity(findings)
        .into_iter()
        .rev()
        .map(|(level, count)| format!("{count} {level}"))
        .collect();
    println!(
        "{} ({distro}): {} packages, {} findings{}",
        info.path,
        inventory.packages.len(),
        findings.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    );
    if skipped.git_ranges_skipped + skipped.invalid_ranges_skipped > 0 {
        println!(
            "not evaluated: {} GIT ranges (commits, not versions), {} ranges with bounds that \
             are not versions of their ecosystem",
            skipped.git_ranges_skipped, skipped.invalid_ranges_skipped
        );
    }
    for (ecosystem, packages) in not_evaluated {
        println!("not evaluated: {ecosystem} ({packages} packages): {NO_ADVISORY_SOURCE}");
    }
}

fn print_json(
    info: &TargetInfo,
    inventory: &Inventory,
    findings: &[Finding<'_>],
    skipped: &MatchStats,
    not_evaluated: &BTreeMap<&str, usize>,
) -> anyhow::Result<()> {
    let not_evaluated: Vec<serde_json::Value> = not_evaluated
        .iter()
        .map(|(ecosystem, packages)| {
            json!({"ecosystem": ecosystem, "packages": packages, "reason": NO_ADVISORY_SOURCE})
        })
        .collect();
    let document = json!({
        "schema": "palisade.scan/v1",
        "target": info,
        "summary": {
            "packages": inventory.packages.len(),
            "findings": findings.len(),
            "by_severity": by_severity(findings),
            "skipped": {
                "git_ranges": skipped.git_ranges_skipped,
                "invalid_ranges": skipped.invalid_ranges_skipped,
                "withdrawn": skipped.withdrawn_skipped,
                "not_affected": skipped.not_affected_skipped,
            },
            "not_evaluated": not_evaluated,
        },
        "findings": findings,
        "warnings": inventory.warnings,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

fn print_inventory(info: &TargetInfo, inventory: &Inventory, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json | Output::Table => {
            let document = json!({
                "schema": "palisade.inventory/v1",
                "target": info,
                "packages": inventory.packages,
                "warnings": inventory.warnings,
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Output::Cyclonedx => print_cyclonedx(info, inventory, None)?,
        Output::Sarif => anyhow::bail!("--inventory-only prints JSON or CycloneDX, not SARIF"),
    }
    Ok(())
}

/// SARIF 2.1.0: one rule per vulnerability id, one result per finding, located at the
/// package's file.
fn print_sarif(findings: &[Finding<'_>]) -> anyhow::Result<()> {
    let mut rules: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    for finding in findings {
        rules.entry(&finding.id).or_insert_with(|| {
            let mut rule = json!({
                "id": finding.id,
                "name": finding.id.replace('-', ""),
                "shortDescription": {"text": if finding.summary.is_empty() { &finding.id } else { &finding.summary }},
                "helpUri": format!("https://osv.dev/vulnerability/{}", finding.id),
                "properties": {"tags": ["security", "vulnerability"]},
            });
            if let Some(score) = finding.cvss_score {
                rule["properties"]["security-severity"] = json!(format!("{score:.1}"));
            }
            rule
        });
    }
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|finding| {
            let mut message = format!(
                "{} {} is affected by {} ({})",
                finding.package.name,
                finding.installed_version,
                finding.id,
                finding.severity.as_str()
            );
            if let Some(fix) = &finding.fix {
                message.push_str(&format!("; fix: {fix}"));
            }
            json!({
                "ruleId": finding.id,
                "level": finding.severity.sarif_level(),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.location.path.trim_start_matches('/')}
                    },
                    "logicalLocations": [{"name": finding.package.purl, "kind": "package"}]
                }],
                "partialFingerprints": {
                    "palisade/v1": format!("{}|{}|{}", finding.id, finding.package.purl, finding.location.path)
                },
                "properties": {
                    "purl": finding.package.purl,
                    "installedVersion": finding.installed_version,
                    "fixedVersions": finding.fixed_versions,
                    "layerDigest": finding.location.layer_digest,
                }
            })
        })
        .collect();
    let document = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/palisade",
                "rules": rules.into_values().collect::<Vec<_>>(),
            }},
            "results": results,
        }]
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

/// CycloneDX 1.5: every package as a component (bom-ref = its index), and the findings as
/// vulnerabilities affecting those components.
fn print_cyclonedx(
    info: &TargetInfo,
    inventory: &Inventory,
    findings: Option<&[Finding<'_>]>,
) -> anyhow::Result<()> {
    let bom_ref = |package_index: usize| format!("package-{package_index}");
    let components: Vec<serde_json::Value> = inventory
        .packages
        .iter()
        .enumerate()
        .map(|(package_index, package)| {
            let mut properties = vec![
                json!({"name": "palisade:ecosystem", "value": package.ecosystem}),
                json!({"name": "palisade:location:path", "value": package.location.path}),
            ];
            if let Some(digest) = &package.location.layer_digest {
                properties.push(json!({"name": "palisade:location:layerDigest", "value": digest}));
            }
            if let Some(source_name) = &package.source_name {
                properties.push(json!({"name": "palisade:source:name", "value": source_name}));
            }
            if let Some(source_version) = &package.source_version {
                properties
                    .push(json!({"name": "palisade:source:version", "value": source_version}));
            }
            json!({
                "type": "library",
                "bom-ref": bom_ref(package_index),
                "name": package.name,
                "version": package.version,
                "purl": package.purl,
                "properties": properties,
            })
        })
        .collect();
    let timestamp =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "palisade", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {
                "type": if info.kind == "image" { "container" } else { "operating-system" },
                "bom-ref": "target",
                "name": info.reference.clone().unwrap_or_else(|| info.path.clone()),
            }
        },
        "components": components,
    });
    if let Some(findings) = findings {
        let package_index = |finding: &Finding<'_>| {
            inventory.packages.iter().position(|package| {
                package.purl == finding.package.purl && &package.location == finding.location
            })
        };
        let vulnerabilities: Vec<serde_json::Value> = findings
            .iter()
            .map(|finding| {
                let mut rating = json!({"severity": match finding.severity {
                    Level::Negligible => "none",
                    level => level.as_str(),
                }});
                if let Some(score) = finding.cvss_score {
                    rating["score"] = json!(score);
                }
                if let Some(vector) = &finding.cvss_vector {
                    rating["vector"] = json!(vector);
                    rating["method"] = json!(if vector.starts_with("CVSS:4") {
                        "CVSSv4"
                    } else if vector.starts_with("CVSS:3.1") {
                        "CVSSv31"
                    } else if vector.starts_with("CVSS:3") {
                        "CVSSv3"
                    } else {
                        "CVSSv2"
                    });
                }
                let mut vulnerability = json!({
                    "id": finding.id,
                    "source": {"name": "OSV", "url": format!("https://osv.dev/vulnerability/{}", finding.id)},
                    "references": finding.aliases.iter().map(|alias| json!({"id": alias, "source": {"name": "alias"}})).collect::<Vec<_>>(),
                    "ratings": [rating],
                    "description": finding.summary,
                    "affects": [{"ref": package_index(finding).map(bom_ref).unwrap_or_default()}],
                });
                if let Some(fix) = &finding.fix {
                    vulnerability["recommendation"] = json!(fix);
                }
                vulnerability
            })
            .collect();
        document["vulnerabilities"] = json!(vulnerabilities);
    }
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
