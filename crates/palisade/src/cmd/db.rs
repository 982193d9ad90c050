//! `palisade db`: the vulnerability database commands; for now, version comparison.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use palisade_version::{Scheme, compare};

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
}

#[derive(Debug, clap::Args)]
struct VercmpArgs {
    /// Version scheme: dpkg, apk, rpm, pep440, semver, cargo, go, pub, maven, rubygems, nuget,
    /// composer, or an OSV ecosystem name such as `Debian:12`, `PyPI` or `crates.io`.
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
    }
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
