//! `palisade enforce`: the enforcement primitives in the foreground, for operators and tests.
//!
//! Each command holds its programs or nftables table while it runs. Ending the process, by
//! any signal, releases the eBPF programs: the kernel detaches them with the last descriptor
//! (fail-open). An nftables table is kernel state of its namespace, not of the process: after
//! a crash it stays in force, like any firewall's rules, until the next run replaces it or
//! the namespace goes away.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use palisade_enforce::{
    Binary, Capabilities, ConnectFilter, ConnectReports, DefenseMode, ExecKiller, NftFirewall,
    WorkloadFirewall, workload_rules,
};
use serde_json::json;

/// Arguments of `palisade enforce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Report which enforcement primitives this kernel accepts (each is loaded once to find
    /// out), and whether BPF-LSM is available.
    Capabilities {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Kill every process that executes one of the binaries (by device and inode) until
    /// this command ends; print one JSON line per kill.
    KillExec {
        /// The binaries.
        #[arg(required = true, value_name = "PATH")]
        binaries: Vec<PathBuf>,
    },
    /// Enforce the Palisade firewall rules of one pod of a state file on its cgroup or in
    /// its network namespace, re-reading the file so that rule edits take effect; print one
    /// JSON line per applied rule set and per change of an attempts count.
    Firewall(FirewallArgs),
}

#[derive(Debug, clap::Args)]
struct FirewallArgs {
    /// The state (pods, network objects, firewall rules) as Kubernetes-style YAML.
    #[arg(short = 'f', long = "file", value_name = "STATE.yaml")]
    state: PathBuf,
    /// The pod, as `namespace/name`.
    #[arg(long)]
    pod: String,
    /// The pod's cgroup2 directory: enforce with connect programs (egress only).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "netns",
        required_unless_present = "netns"
    )]
    cgroup: Option<PathBuf>,
    /// The pod's network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`): enforce with an
    /// nftables table.
    #[arg(long, value_name = "PATH")]
    netns: Option<PathBuf>,
    /// Alert passes violating connections and counts them; block refuses them.
    #[arg(long, value_enum, default_value_t = Mode::Block)]
    mode: Mode,
    /// How often to re-read the state file, in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    reload_every: u64,
}

/// What the firewall does with a violating connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Let it pass, count it and report it.
    Alert,
    /// Refuse it.
    Block,
}

impl From<Mode> for DefenseMode {
    fn from(mode: Mode) -> DefenseMode {
        match mode {
            Mode::Alert => DefenseMode::Alert,
            Mode::Block => DefenseMode::Block,
        }
    }
}

/// Runs `palisade enforce`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Capabilities { json } => capabilities(json),
        Command::KillExec { binaries } => kill_exec(&binaries),
        Command::Firewall(args) => firewall(&args),
    }
}

fn capabilities(as_json: bool) -> anyhow::Result<ExitCode> {
    let capabilities = Capabilities::detect();
    let entries = [
        ("kill_at_exec", &capabilities.kill_at_exec),
        ("connect_refusal", &capabilities.connect_refusal),
        ("bpf_lsm", &capabilities.bpf_lsm),
    ];
    if as_json {
        let mut report = serde_json::Map::new();
        for (name, support) in entries {
            report.insert(
                name.to_owned(),
                json!({"available": support.is_available(), "detail": support.to_string()}),
            );
        }
        report.insert("active_lsms".to_owned(), json!(capabilities.active_lsms));
        println!("{}", serde_json::Value::Object(report));
    } else {
        for (name, support) in entries {
            println!("{name}: {support}");
        }
        if let Some(active_lsms) = &capabilities.active_lsms {
            println!("active LSMs: {active_lsms}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kill_exec(binaries: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let killer = ExecKiller::load().context("loading the kill-at-exec program")?;
    for binary in binaries {
        let binary_id = killer.deny(Binary::path(binary))?;
        println!(
            "{}",
            json!({"denied": binary, "device": binary_id.dev, "inode": binary_id.ino})
        );
    }
    loop {
        for kill in killer.poll_kills(Duration::from_millis(500))? {
            println!(
                "{}",
                json!({
                    "killed": kill.pid, "comm": kill.comm, "filename": kill.filename,
                    "uid": kill.uid, "cgroup_id": kill.cgroup_id, "inode": kill.binary.ino,
                })
            );
        }
    }
}

fn firewall(args: &FirewallArgs) -> anyhow::Result<ExitCode> {
    let (namespace, name) = args
        .pod
        .split_once('/')
        .context("--pod must be namespace/name")?;
    let mode = DefenseMode::from(args.mode);
    let backend = match (&args.cgroup, &args.netns) {
        // This command prints the attempts counts rather than each report, so nobody reads
        // the report stream (the programs keep it alive; when full, reports are counted lost).
        (Some(cgroup), _) => {
            WorkloadFirewall::Cgroup(ConnectFilter::attach(cgroup, &ConnectReports::new()?, 0)?)
        }
        (None, Some(netns)) => WorkloadFirewall::Netns(NftFirewall::new(netns)?),
        (None, None) => anyhow::bail!("give --cgroup or --netns"),
    };
    let mut applied_text = String::new();
    let mut attempts: Vec<(u32, u64)> = Vec::new();
    loop {
        let text = std::fs::read_to_string(&args.state)
            .with_context(|| format!("reading {}", args.state.display()))?;
        if text != applied_text {
            // A state that does not load keeps the rules in force; the error is reported.
            match palisade_firewall::State::from_yaml(&text) {
                Err(error) => eprintln!(
                    "palisade: {}: {error}; the rules in force stay",
                    args.state.display()
                ),
                Ok(state) => {
                    let pod_id = state.pod_id(namespace, name).with_context(|| {
                        format!("no pod {} in {}", args.pod, args.state.display())
                    })?;
                    let rules = workload_rules(&state, pod_id, mode);
                    let not_enforced = backend.apply(&rules)?;
                    let refused = backend.open_connections_refused_by(&rules)?;
                    println!(
                        "{}",
                        json!({
                            "applied": {"egress": rules.egress.len(), "ingress": rules.ingress.len()},
                            "not_enforced": not_enforced,
                            "open_connections_refused_by_new_rules": refused.iter().map(|entry| json!({
                                "local": entry.connection.local.to_string(),
                                "remote": entry.connection.remote.to_string(),
                                "inbound": entry.connection.inbound,
                                "rule": state.firewall_rules()[entry.rule.id as usize].name,
                            })).collect::<Vec<_>>(),
                        })
                    );
                    let mut rule_ids: Vec<u32> = rules
                        .egress
                        .iter()
                        .chain(&rules.ingress)
                        .map(|rule| rule.id)
                        .collect();
                    rule_ids.sort_unstable();
                    rule_ids.dedup();
                    attempts = rule_ids.into_iter().map(|rule_id| (rule_id, 0)).collect();
                    applied_text = text;
                }
            }
        }
        for (rule_id, seen) in &mut attempts {
            let hits = backend.hits(*rule_id)?;
            if hits != *seen {
                *seen = hits;
                println!("{}", json!({"rule_id": rule_id, "attempts": hits}));
            }
        }
        std::thread::sleep(Duration::from_secs(args.reload_every));
    }
}
