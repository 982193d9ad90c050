//! Added `connect()` latency of firewall enforcement, side by side in one run (root only):
//! no firewall, Palisade's cgroup connect programs, Palisade's nftables table, both together
//! (what the agent installs in block mode), and an equivalent hand-written nftables rule set.
//!
//! Everything runs in a network namespace created for the run, over its loopback: a server
//! accepts on 127.0.0.1:7100, and the client times each `connect()` to it. Every firewall
//! holds the same 50 block rules for other prefixes (so an allowed connect walks all of them)
//! and one block rule for 127.0.0.1:7101 (timed as the refused connect). Rounds alternate
//! the configurations to spread drift. The namespace and cgroup are removed at the end, also
//! on error.
//!
//! Usage: `connect_latency [CONNECTS_PER_ROUND] [ROUNDS]` (defaults 4000 and 5).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_enforce::{
    ConnectFilter, ConnectReports, NetRule, NftFirewall, WorkloadFirewall, WorkloadRules,
    cgroup2_root,
};
use palisade_firewall::{Protocol, RuleAction};

const OPEN_PORT: u16 = 7100;
const BLOCKED_PORT: u16 = 7101;
const N_OTHER_RULES: u8 = 50;

struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(
            cgroup2_root().unwrap().join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Moves this process into the cgroup2 directory `cgroup`.
fn enter_cgroup(cgroup: &Path) {
    std::fs::write(cgroup.join("cgroup.procs"), std::process::id().to_string())
        .expect("moving into a cgroup");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n_connects: usize = args
        .next()
        .map_or(4000, |n| n.parse().expect("CONNECTS_PER_ROUND"));
    let n_rounds: usize = args.next().map_or(5, |n| n.parse().expect("ROUNDS"));

    let namespace = Namespace(format!("pal-bench-{}", std::process::id()));
    run("ip", &["netns", "add", &namespace.0]);
    run("ip", &["-n", &namespace.0, "link", "set", "lo", "up"]);
    let netns_path = PathBuf::from("/run/netns").join(&namespace.0);
    let cgroup = Cgroup(
        cgroup2_root()
            .unwrap()
            .join(format!("palisade-bench-{}", std::process::id())),
    );
    std::fs::create_dir(&cgroup.0).expect("creating the bench cgroup");

    // Enter the namespace on the main thread: the server thread and every socket follow.
    let namespace_file = File::open(&netns_path).expect("opening the namespace");
    // SAFETY: setns on a live descriptor; this thread then lives in the bench namespace.
    assert_eq!(
        unsafe { libc::setns(namespace_file.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    for port in [OPEN_PORT, BLOCKED_PORT] {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the server");
        std::thread::spawn(move || for _ in listener.incoming() {});
    }

    let rules = rule_set();
    let stream = ConnectReports::new().expect("creating the connect report stream");
    let configurations = [
        "none",
        "palisade-bpf-connect",
        "palisade-nft",
        "palisade-block-mode",
        "hand-written-nft",
    ];
    let mut allowed: Vec<Vec<Duration>> = vec![Vec::new(); configurations.len()];
    let mut refused: Vec<Vec<Duration>> = vec![Vec::new(); configurations.len()];
    for _ in 0..n_rounds {
        for (config_idx, configuration) in configurations.iter().enumerate() {
            // Each firewall is installed for its measurement only and removed after it.
            let _installed: Option<Box<dyn std::any::Any>> = match *configuration {
                "none" => None,
                "palisade-bpf-connect" => {
                    let filter = ConnectFilter::attach(&cgroup.0, &stream, 0)
                        .expect("attaching connect programs");
                    filter.set_rules(&rules).expect("setting connect rules");
                    enter_cgroup(&cgroup.0);
                    Some(Box::new(filter))
                }
                "palisade-block-mode" => {
                    let both = WorkloadFirewall::CgroupAndNetns {
                        cgroup: ConnectFilter::attach(&cgroup.0, &stream, 0)
                            .expect("attaching connect programs"),
                        netns: NftFirewall::new(&netns_path).expect("nft"),
                    };
                    let workload_rules = WorkloadRules {
                        egress: rules.clone(),
                        ..WorkloadRules::default()
                    };
                    both.apply(&workload_rules).expect("setting the rules");
                    enter_cgroup(&cgroup.0);
                    Some(Box::new(both))
                }
                "palisade-nft" => {
                    let firewall = NftFirewall::new(&netns_path).expect("nft");
                    firewall
                        .set_rules(&rules, &[])
                        .expect("setting nftables rules");
                    Some(Box::new(firewall))
                }
                _ => {
                    nft_script(&netns_path, &hand_written_rules());
                    None
                }
            };
            allowed[config_idx].extend(time_connects(OPEN_PORT, n_connects, true));
            let expect_refusal = *configuration != "none";
            refused[config_idx].extend(time_connects(
                BLOCKED_PORT,
                n_connects / 4,
                !expect_refusal,
            ));
            match *configuration {
                "palisade-bpf-connect" | "palisade-block-mode" => {
                    enter_cgroup(&cgroup2_root().unwrap())
                }
                "hand-written-nft" => nft_script(&netns_path, "delete table inet bench\n"),
                _ => {}
            }
        }
    }

    println!(
        "connect() latency over loopback, {n_rounds} rounds x {n_connects} allowed + {} refused connects, 51 rules per firewall",
        n_connects / 4
    );
    println!(
        "{:<22} {:>14} {:>14} {:>14} {:>16}",
        "configuration", "allowed p50", "allowed p90", "added p50", "refused p50"
    );
    let baseline = median(&mut allowed[0].clone());
    for (config_idx, configuration) in configurations.iter().enumerate() {
        let p50 = median(&mut allowed[config_idx]);
        let p90 = percentile(&mut allowed[config_idx], 90);
        // Without a firewall the "refused" flow passes, so there is nothing to compare.
        let refused_p50 = if *configuration == "none" {
            "(passes)".to_owned()
        } else {
            format!("{:.2}us", micros(median(&mut refused[config_idx])))
        };
        println!(
            "{configuration:<22} {:>12.2}us {:>12.2}us {:>+12.2}us {refused_p50:>16}",
            micros(p50),
            micros(p90),
            micros(p50) - micros(baseline),
        );
    }
}

/// 50 rules for other prefixes and ports, then the block rule for the refused flow.
fn rule_set() -> Vec<NetRule> {
    let mut rules: Vec<NetRule> = (0..N_OTHER_RULES)
        .map(|idx| NetRule {
            id: u32::from(idx),
            remote: format!("10.{idx}.0.0/16").parse().expect("valid prefix"),
            ports: (7000, 7999),
            protocol: Some(Protocol::Tcp),
            action: RuleAction::Block,
        })
        .collect();
    rules.push(NetRule {
        id: u32::from(N_OTHER_RULES),
        remote: "127.0.0.1/32".parse().expect("valid prefix"),
        ports: (BLOCKED_PORT, BLOCKED_PORT),
        protocol: Some(Protocol::Tcp),
        action: RuleAction::Block,
    });
    rules
}

/// What an administrator would write by hand for the same policy.
fn hand_written_rules() -> String {
    let mut script = String::from(
        "table inet bench {\n  chain output {\n    type filter hook output priority 0; policy accept;\n",
    );
    for idx in 0..N_OTHER_RULES {
        script.push_str(&format!(
            "    ip daddr 10.{idx}.0.0/16 tcp dport 7000-7999 tcp flags syn / syn,ack reject with tcp reset\n"
        ));
    }
    script.push_str(&format!(
        "    ip daddr 127.0.0.1 tcp dport {BLOCKED_PORT} tcp flags syn / syn,ack reject with tcp reset\n  }}\n}}\n"
    ));
    script
}

/// Times `n` connects to 127.0.0.1:`port`; each connection is closed with a reset so that
/// no TIME_WAIT sockets pile up.
fn time_connects(port: u16, n: usize, expect_success: bool) -> Vec<Duration> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let result = TcpStream::connect(address);
            let elapsed = started.elapsed();
            assert_eq!(
                result.is_ok(),
                expect_success,
                "connect to port {port}: {result:?}"
            );
            if let Ok(stream) = result {
                let linger = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                // SAFETY: sets SO_LINGER on a live socket from a live struct.
                unsafe {
                    libc::setsockopt(
                        stream.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&raw const linger).cast(),
                        size_of::<libc::linger>() as u32,
                    )
                };
            }
            elapsed
        })
        .collect()
}

fn nft_script(netns: &Path, script: &str) {
    use std::io::Write;
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("running nft");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .expect("writing to nft");
    assert!(child.wait().expect("nft").success(), "nft -f failed");
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "{program} {args:?} failed");
}

fn median(samples: &mut [Duration]) -> Duration {
    percentile(samples, 50)
}

fn percentile(samples: &mut [Duration], percent: usize) -> Duration {
    samples.sort_unstable();
    samples[(samples.len() - 1) * percent / 100]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
