//! The `palisade` binary: clap definitions and the glue that wires the library crates together.
//!
//! Exit codes follow ripgrep's convention: 0 clean, 1 findings (or a failed validation),
//! 2 an error.

mod cmd;
mod detection;
mod sensor_metrics;
mod sensor_status;
mod start_memory;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Palisade: security monitoring for Kubernetes clusters and container hosts.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server and a local agent on this machine (embedded store).
    Up(cmd::up::Args),
    /// Run the server alone, for agents on other nodes.
    Server(cmd::server::Args),
    /// Run the node agent, show its status, or queue reports for it.
    Agent(cmd::agent::Args),
    /// Vulnerability database: version comparison.
    Db(cmd::db::Args),
    /// Baseline risks: Pod Security Standards and best practices.
    Baseline(cmd::baseline::Args),
    /// Container firewall: NetworkPolicy evaluation.
    Firewall(cmd::firewall::Args),
    /// Detection rules (Falco format).
    Rules(cmd::rules::Args),
    /// Scan an image, a root filesystem, a container or the host for vulnerable packages.
    Scan(cmd::scan::Args),
    /// Enforcement primitives in the foreground: capabilities, kill at exec, firewall rules.
    Enforce(cmd::enforce::Args),
    /// Run the runtime sensor in the foreground: raw events or rule alerts as JSON lines.
    Monitor(cmd::monitor::Args),
}

/// Tunes glibc's allocator for a long-running process that should idle small.
///
/// - The mmap threshold stays at 1 MiB. By default glibc raises it after the first large block
///   is freed, so the 19 MiB working areas of argon2 (token hashing) end up in the heap and are
///   never returned: `palisade up` then idled at 95 MB after its first start instead of 17 MB.
/// - One malloc arena per core instead of glibc's eight: each of the many threads (async
///   workers, SQLite's, the sensor's) otherwise gets an arena of its own that keeps freed
///   memory; `palisade up` idled 1.3 MB smaller (docs/benchmarks.md).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2));
        // SAFETY: mallopt only changes allocator tuning; it is called before any other thread
        // exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(args),
        Command::Server(args) => cmd::server::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Db(args) => cmd::db::run(args),
        Command::Baseline(args) => cmd::baseline::run(args),
        Command::Firewall(args) => cmd::firewall::run(args),
        Command::Rules(args) => cmd::rules::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Enforce(args) => cmd::enforce::run(args),
        Command::Monitor(args) => cmd::monitor::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("palisade: {error:#}");
            ExitCode::from(2)
        }
    }
}
