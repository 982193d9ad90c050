//! `palisade db`: the vulnerability database (import, update, status, match) and version
//! comparison.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use palisade_version::{Scheme, compare};
use palisade_vulndb::{
    Database, DownloadOptions, Downloader, ImportOptions, ImportReport, Index, Limits, Package,
    Progress,
};

/// Arguments of `palisade db`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Compare two versions, or every pair in a file, under a version scheme.
    ///
    /// Prints -1, 0 or 1 (A older, equal, newer). With --file, prints `a<TAB>b<TAB>result`
    /// per pair, reports lines that cannot be compared on stderr, and exits with 2 at the end
    /// if there were any.
    Vercmp(VercmpArgs),
    /// Import vulnerability feeds from files, directories or zip archives.
    ///
    /// Accepts OSV JSON/YAML records (and OSV's per-ecosystem zip archives), the Debian
    /// security tracker JSON, Debian DSA/DLA list files, Alpine secdb JSON, yum/dnf
    /// `updateinfo.xml` repository metadata (Amazon Linux ALAS, Oracle Linux ELSA, Fedora)
    /// and OVAL definitions (Red Hat's `rhel-*.oval.xml`, also with unpatched
    /// vulnerabilities, Oracle Linux's `com.oracle.elsa-*.xml`, Azure Linux's and
    /// CBL-Mariner's `*-oval.xml`); XML feeds plain or gzip, bzip2, xz or zstd compressed,
    /// read streaming. Each PATH is one source; importing it again replaces its records.
    Import(ImportArgs),
    /// Download feeds over HTTP(S) and import them; each URL is one source.
    ///
    /// HTTPS servers are trusted through the built-in Mozilla roots and the CA certificates
    /// given with --ca-cert (a mirror behind a private CA). Redirects are followed only to
    /// the same scheme; a download over --max-bytes, cut short, slower than --timeout or
    /// answered with an HTTP error fails, and the database keeps what the source held.
    Update(UpdateArgs),
    /// Show the imported sources, their age and the records per ecosystem.
    Status(StatusArgs),
    /// Match one package against the database.
    ///
    /// Exits with 1 when the package is vulnerable, 0 when it is not.
    // `--version` is the installed version here, not the program's.
    #[command(disable_version_flag = true)]
    Match(MatchArgs),
}

#[derive(Debug, clap::Args)]
struct DbArg {
    /// The database file [default: $XDG_DATA_HOME/palisade/vulndb.sqlite, or
    /// ~/.local/share/palisade/vulndb.sqlite].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Feed files, directories (read recursively) or zip archives.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    release: ReleaseArg,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, clap::Args)]
struct ReleaseArg {
    /// The rpm distribution release updateinfo.xml or OVAL advisories are for (`Amazon
    /// Linux:2`, `Oracle Linux:9`, `Fedora:40`, `Rocky Linux:9` for EPEL, `Azure
    /// Linux:3.0`), instead of the release their ids, tests, file names and package
    /// release tags tell.
    #[arg(long, value_name = "RELEASE")]
    release: Option<String>,
}

impl ReleaseArg {
    fn options(&self) -> ImportOptions {
        ImportOptions {
            limits: Limits::default(),
            release: self.release.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// Feed URLs (http or https).
    #[arg(long = "url", required = true, value_name = "URL")]
    urls: Vec<String>,
    /// A PEM file of CA certificates to trust besides the built-in roots; repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certificates: Vec<PathBuf>,
    /// The longest one download may take, in seconds.
    #[arg(long = "timeout", value_name = "SECONDS", default_value_t = DownloadOptions::DEFAULT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,
    /// The largest download accepted, in bytes [default: 2 GiB, a zip archive at the
    /// import limit].
    #[arg(long, value_name = "BYTES", default_value_t = MAX_DOWNLOAD_BYTES)]
    max_bytes: u64,
    #[command(flatten)]
    release: ReleaseArg,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Json,
    Table,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    db: DbArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct MatchArgs {
    /// The ecosystem: PyPI, Go, crates.io, npm, Maven, Debian:12, Alpine:v3.19, ...
    #[arg(long)]
    ecosystem: String,
    /// The package name (the binary package for distributions).
    #[arg(long)]
    package: String,
    /// The installed version.
    #[arg(long = "version", id = "installed_version", allow_hyphen_values = true)]
    installed_version: String,
    /// The source package, for distribution packages.
    #[arg(long)]
    source_package: Option<String>,
    /// The source package's version, for dpkg packages whose source version differs from
    /// the installed version (Debian and Ubuntu advisories are compared with it).
    #[arg(long, allow_hyphen_values = true)]
    source_version: Option<String>,
    /// A dnf module stream (`container-tools:rhel8`) the rpm is of (its modularity label's
    /// `name:stream`); repeat for an image's enabled streams. Advisories for another
    /// stream are then not matched.
    #[arg(long = "module-stream", value_parser = module_stream)]
    module_streams: Vec<String>,
    #[command(flatten)]
    db: DbArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    output: Output,
}

/// The largest download `palisade db update` accepts by default: a zip archive at the
/// import limit.
const MAX_DOWNLOAD_BYTES: u64 = 2 << 30;

#[derive(Debug, clap::Args)]
struct VercmpArgs {
    /// Version scheme: dpkg, apk, rpm, pep440, semver, cargo, go, pub, maven, rubygems, nuget,
    /// composer, pvp, cran, or an OSV ecosystem name such as `Debian:12`, `PyPI`, `crates.io`
    /// or `CRAN`.
    #[arg(long)]
    scheme: Scheme,
    /// Read pairs from FILE, one `a<TAB>b[<TAB>anything]` per line; `#` comments and blank
    /// lines are skipped.
    #[arg(long, value_name = "PAIRS", conflicts_with_all = ["a", "b"])]
    file: Option<PathBuf>,
    /// The first version.
    #[arg(required_unless_present = "file", allow_hyphen_values = true)]
    a: Option<String>,
    /// The second version.
    #[arg(required_unless_present = "file", allow_hyphen_values = true)]
    b: Option<String>,
}

/// Runs `palisade db`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Vercmp(vercmp_args) => vercmp(vercmp_args),
        Command::Import(import_args) => runtime()?.block_on(import(import_args)),
        Command::Update(update_args) => runtime()?.block_on(update(update_args)),
        Command::Status(status_args) => runtime()?.block_on(status(status_args)),
        Command::Match(match_args) => runtime()?.block_on(match_package(match_args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn default_db_path() -> anyhow::Result<PathBuf> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .context("neither XDG_DATA_HOME nor HOME is set; give --db")?;
    Ok(data_home.join("palisade/vulndb.sqlite"))
}

async fn open(db: &DbArg) -> anyhow::Result<Database> {
    let path = match &db.db {
        Some(path) => path.clone(),
        None => default_db_path()?,
    };
    Database::open(&path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// An indicatif bar on stderr, shown only when stderr is a terminal.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(label: &Path) -> Bar {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} files ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(label.display().to_string());
        Bar(bar)
    }
}

impl Progress for Bar {
    fn start(&self, total_files: u64) {
        self.0.set_length(total_files);
    }

    fn advance(&self, n_files: u64) {
        self.0.inc(n_files);
    }
}

fn print_import(report: &ImportReport) {
    for warning in &report.warnings {
        eprintln!(
            "palisade: warning: {}: {}",
            warning.location, warning.reason
        );
    }
    println!(
        "{}: {} records ({}), {} skipped",
        report.location,
        report.record_count,
        report.format,
        report.warnings.len()
    );
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let database = open(&args.db).await?;
    for path in &args.paths {
        let bar = Bar::new(path);
        let report = database
            .import_path_with_progress(path, args.release.options(), &bar)
            .await
            .with_context(|| format!("cannot import {}", path.display()))?;
        bar.0.finish_and_clear();
        print_import(&report);
    }
    database.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn update(args: UpdateArgs) -> anyhow::Result<ExitCode> {
    for url in &args.urls {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{url} is not an http or https URL"
        );
    }
    let downloader = Downloader::new(&DownloadOptions {
        max_bytes: args.max_bytes,
        timeout: Duration::from_secs(args.timeout_secs),
        ca_certificates: args.ca_certificates.clone(),
    })?;
    let database = open(&args.db).await?;
    for url in &args.urls {
        let bytes = downloader.get(url).await?;
        let report = database
            .import_bytes(url, bytes, args.release.options())
            .await
            .with_context(|| format!("cannot import {url}"))?;
        print_import(&report);
    }
    database.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let database = open(&args.db).await?;
    let status = database.status().await?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Output::Table => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |duration| duration.as_secs() as i64);
            let mut sources = comfy_table::Table::new();
            sources.set_header(["source", "format", "records", "age"]);
            for source in &status.sources {
                sources.add_row([
                    source.location.clone(),
                    source.format.clone(),
                    source.record_count.to_string(),
                    age(now - source.imported_at),
                ]);
            }
            println!("{sources}");
            let mut ecosystems = comfy_table::Table::new();
            ecosystems.set_header(["ecosystem", "records"]);
            for (ecosystem, count) in &status.ecosystems {
                ecosystems.add_row([ecosystem.clone(), count.to_string()]);
            }
            println!("{ecosystems}");
            println!("{} records in total", status.total_records);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn age(seconds: i64) -> String {
    match seconds.max(0) {
        seconds if seconds < 3600 => format!("{} min", seconds / 60),
        seconds if seconds < 86_400 => format!("{} h", seconds / 3600),
        seconds => format!("{} days", seconds / 86_400),
    }
}

/// A `--module-stream` value: `name:stream`, as [`palisade_version::module_stream`] accepts
/// them (no whitespace, `:` or control characters in either part).
fn module_stream(text: &str) -> Result<String, String> {
    palisade_version::parse_module_stream(text).ok_or_else(|| {
        format!("{text:?} is not a module stream name:stream (container-tools:rhel8)")
    })
}

async fn match_package(args: MatchArgs) -> anyhow::Result<ExitCode> {
    let database = open(&args.db).await?;
    let index = Index::load(&database).await?;
    let package = Package {
        ecosystem: args.ecosystem,
        name: args.package,
        version: args.installed_version,
        source_name: args.source_package,
        source_version: args.source_version,
        module_streams: args.module_streams,
    };
    let report = index.matches(&package)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => {
            let mut table = comfy_table::Table::new();
            table.set_header(["id", "severity", "cvss", "installed", "fixed", "fix"]);
            for finding in &report.findings {
                table.add_row([
                    finding.id.clone(),
                    finding.severity.clone().unwrap_or_default(),
                    finding
                        .cvss_score
                        .map(|score| score.to_string())
                        .unwrap_or_default(),
                    finding.installed_version.clone(),
                    finding.fixed_versions.join(", "),
                    finding.fix.clone().unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn vercmp(args: VercmpArgs) -> anyhow::Result<ExitCode> {
    match (&args.file, &args.a, &args.b) {
        (Some(path), _, _) => vercmp_file(args.scheme, path),
        (None, Some(a), Some(b)) => {
            let ordering = compare(args.scheme, a, b)?;
            println!("{}", ordering as i8);
            Ok(ExitCode::SUCCESS)
        }
        // clap requires both versions when there is no file.
        _ => anyhow::bail!("give two versions, or --file"),
    }
}

fn vercmp_file(scheme: Scheme, path: &PathBuf) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n_errors = 0usize;
    for (line_idx, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let line_number = line_idx + 1;
        let mut fields = line.split('\t');
        let (Some(a), Some(b)) = (fields.next(), fields.next()) else {
            n_errors += 1;
            eprintln!(
                "palisade: {}:{line_number}: expected `a<TAB>b`, found {line:?}",
                path.display()
            );
            continue;
        };
        match compare(scheme, a, b) {
            Ok(ordering) => writeln!(out, "{a}\t{b}\t{}", ordering as i8)?,
            Err(error) => {
                n_errors += 1;
                // Keep the pairs already printed in order before the diagnostic.
                out.flush()?;
                eprintln!("palisade: {}:{line_number}: {error}", path.display());
            }
        }
    }
    out.flush()?;
    Ok(if n_errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
