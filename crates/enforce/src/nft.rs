//! nftables in a network namespace: a Palisade-owned `inet palisade` table whose `egress`
//! (output hook) and `ingress` (input hook) chains hold the workload's rules.
//!
//! Rules go to the `nft` binary as JSON on its standard input (`nft -j -f -`). `nft` is a
//! fixed trusted binary run without a shell, and nothing from a rule reaches it as a command
//! line argument; the process enters the namespace with `setns` before it executes.
//! Each rule set is written in one nftables transaction (the table is deleted and rebuilt in
//! it), so an edit takes effect atomically, with no moment without rules.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use palisade_firewall::{Protocol, RuleAction};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind};
use crate::rule::NetRule;

/// The table Palisade owns in each namespace; nothing else in the namespace is touched.
pub const NFT_TABLE: &str = "palisade";
const COMMENT_PREFIX: &str = "palisade-rule ";
const NFT_CANDIDATES: [&str; 3] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];
/// The most rules per chain; a bound on the size of one transaction.
pub const MAX_NFT_RULES: usize = 10_000;

/// Palisade's nftables table in one network namespace. Dropping it deletes the table; if
/// the process dies without dropping it, the table stays in force (it belongs to the
/// namespace, not to the process) until the next [`NftFirewall::set_rules`] replaces it.
pub struct NftFirewall {
    netns: PathBuf,
    nft: PathBuf,
    /// Hits of rules from earlier rule sets: rebuilding the table resets its counters, so
    /// they are read and kept here first, and attempts survive an edit.
    earlier_hits: Mutex<HashMap<u32, u64>>,
}

impl NftFirewall {
    /// Prepares the table for the namespace at `netns` (`/run/netns/NAME`,
    /// `/proc/PID/ns/net`); [`NftFirewall::set_rules`] creates it.
    pub fn new(netns: &Path) -> Result<NftFirewall, Error> {
        File::open(netns)
            .map_err(|error| Error::io("opening network namespace", netns.display(), error))?;
        let nft = NFT_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.exists())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Nftables,
                    "finding the nft binary in",
                    NFT_CANDIDATES.join(", "),
                )
                .with_source("install the nftables package")
            })?;
        Ok(NftFirewall {
            netns: netns.to_path_buf(),
            nft,
            earlier_hits: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the rules: `egress` applies to connections the namespace opens, `ingress`
    /// to connections it accepts. Only connection attempts are matched, as the connect
    /// programs do; connections already open stay (see
    /// [`open_tcp_connections_in_netns`](crate::open_tcp_connections_in_netns)).
    pub fn set_rules(&self, egress: &[NetRule], ingress: &[NetRule]) -> Result<(), Error> {
        for (chain, rules) in [("egress", egress), ("ingress", ingress)] {
            if rules.len() > MAX_NFT_RULES {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "setting nftables rules (at most 10000 per chain) in",
                    format!("{} chain {chain}", self.netns.display()),
                ));
            }
        }
        let current = self.table_hits()?;
        let mut earlier_hits = self
            .earlier_hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let table = json!({"family": "inet", "name": NFT_TABLE});
        let mut commands = vec![
            json!({"add": {"table": table}}),
            json!({"delete": {"table": table}}),
            json!({"add": {"table": table}}),
        ];
        for (chain, hook, rules) in [("egress", "output", egress), ("ingress", "input", ingress)] {
            commands.push(json!({"add": {"chain": {
                "family": "inet", "table": NFT_TABLE, "name": chain,
                "type": "filter", "hook": hook, "prio": 0, "policy": "accept",
            }}}));
            let remote_field = if chain == "egress" { "daddr" } else { "saddr" };
            for rule in rules {
                for expressions in nft_rules(rule, remote_field) {
                    commands.push(json!({"add": {"rule": {
                        "family": "inet", "table": NFT_TABLE, "chain": chain,
                        "comment": format!("{COMMENT_PREFIX}{}", rule.id),
                        "expr": expressions,
                    }}}));
                }
            }
        }
        self.run(
            &json!({"nftables": commands}).to_string(),
            "writing rules to",
        )?;
        for (rule_id, hits) in current {
            *earlier_hits.entry(rule_id).or_default() += hits;
        }
        Ok(())
    }

    /// How many new connections rule `rule_id` matched in either chain, across every rule
    /// set written by this value (the attempts count of an alert or block rule).
    pub fn hits(&self, rule_id: u32) -> Result<u64, Error> {
        let current = self.table_hits()?.get(&rule_id).copied().unwrap_or(0);
        let earlier = self
            .earlier_hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&rule_id)
            .copied()
            .unwrap_or(0);
        Ok(current + earlier)
    }

    /// The namespace this table is in.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// Packet counters of the table's rules by rule id; empty when there is no table yet.
    fn table_hits(&self) -> Result<HashMap<u32, u64>, Error> {
        let listing = match self.run_listing() {
            Ok(listing) => listing,
            Err(error) if error.kind() == ErrorKind::Nftables && !self.table_exists()? => {
                return Ok(HashMap::new());
            }
            Err(error) => return Err(error),
        };
        let mut hits = HashMap::new();
        let items = listing
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| self.unreadable("no nftables array"))?;
        for rule in items.iter().filter_map(|item| item.get("rule")) {
            let Some(rule_id) = rule
                .get("comment")
                .and_then(Value::as_str)
                .and_then(|comment| comment.strip_prefix(COMMENT_PREFIX))
                .and_then(|id| id.parse::<u32>().ok())
            else {
                continue;
            };
            let packets = rule
                .get("expr")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|expression| expression.get("counter")?.get("packets")?.as_u64())
                .unwrap_or(0);
            *hits.entry(rule_id).or_default() += packets;
        }
        Ok(hits)
    }

    fn table_exists(&self) -> Result<bool, Error> {
        let output = self
            .command(&["-j", "list", "tables"])
            .output()
            .map_err(|error| Error::io("running nft in", self.netns.display(), error))?;
        Ok(String::from_utf8_lossy(&output.stdout).contains(&format!("\"name\": \"{NFT_TABLE}\"")))
    }

    fn run_listing(&self) -> Result<Value, Error> {
        let output = self
            .command(&["-j", "list", "table", "inet", NFT_TABLE])
            .output()
            .map_err(|error| Error::io("running nft in", self.netns.display(), error))?;
        if !output.status.success() {
            return Err(Error::new(
                ErrorKind::Nftables,
                "listing the table in",
                self.netns.display(),
            )
            .with_source(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|error| self.unreadable("not JSON").with_source(error))
    }

    fn run(&self, input: &str, operation: &'static str) -> Result<(), Error> {
        let mut child = self
            .command(&["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|error| Error::io("running nft in", self.netns.display(), error))?;
        let written = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes());
        let output = child
            .wait_with_output()
            .map_err(|error| Error::io("running nft in", self.netns.display(), error))?;
        written
            .map_err(|error| Error::io("writing rules to nft in", self.netns.display(), error))?;
        if !output.status.success() {
            return Err(
                Error::new(ErrorKind::Nftables, operation, self.netns.display())
                    .with_source(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
            );
        }
        Ok(())
    }

    /// `nft ARGS` that enters the namespace before it executes.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.nft);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let netns = self.netns.clone();
        // SAFETY: between fork and exec the closure only opens a file and calls setns, both
        // plain system calls; the opened descriptor is close-on-exec.
        unsafe {
            command.pre_exec(move || {
                let namespace = File::open(&netns)?;
                if libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    fn unreadable(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Nftables,
            "reading nft's listing of the table in",
            self.netns.display(),
        )
        .with_source(what.to_owned())
    }
}

impl NftFirewall {
    /// Deletes the table (there or not): what dropping the value does, with its error.
    pub fn remove(self) -> Result<(), Error> {
        self.delete_table()
    }

    fn delete_table(&self) -> Result<(), Error> {
        let table = json!({"family": "inet", "name": NFT_TABLE});
        let delete = json!({"nftables": [{"add": {"table": table}}, {"delete": {"table": table}}]});
        self.run(&delete.to_string(), "deleting the table in")
    }
}

impl Drop for NftFirewall {
    fn drop(&mut self) {
        // Best effort: the namespace may be gone already, which removed the table with it.
        let _ = self.delete_table();
    }
}

/// The nftables rules (lists of JSON expressions) for one rule.
///
/// Only connection attempts match: for TCP a SYN without ACK, which conntrack's loose
/// pickup of connections opened before the table existed cannot mistake for a new
/// connection; for UDP and SCTP the first packet of a flow (`ct state new`). A rule for any
/// protocol becomes one nftables rule for TCP and one for the rest.
fn nft_rules(rule: &NetRule, remote_field: &str) -> Vec<Vec<Value>> {
    let all_ports = rule.ports == NetRule::ALL_PORTS;
    let protocol_matches: Vec<Value> = match rule.protocol {
        Some(protocol) => vec![json!(protocol_name(protocol))],
        None if all_ports => vec![json!("tcp"), json!("not tcp")],
        // Ports exist only for these three.
        None => vec![json!("tcp"), json!({"set": ["udp", "sctp"]})],
    };
    protocol_matches
        .into_iter()
        .map(|protocol| {
            let mut expressions = vec![address_match(rule, remote_field)];
            let is_tcp = protocol == json!("tcp");
            if protocol == json!("not tcp") {
                expressions.push(json!({"match": {
                    "op": "!=", "left": {"meta": {"key": "l4proto"}}, "right": "tcp",
                }}));
            } else {
                expressions.push(json!({"match": {
                    "op": "==", "left": {"meta": {"key": "l4proto"}}, "right": protocol,
                }}));
            }
            if is_tcp {
                expressions.push(json!({"match": {
                    "op": "==",
                    "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, {"|": ["syn", "ack"]}]},
                    "right": "syn",
                }}));
            } else {
                expressions.push(json!({"match": {
                    "op": "in", "left": {"ct": {"key": "state"}}, "right": "new",
                }}));
            }
            if !all_ports {
                let right = if rule.ports.0 == rule.ports.1 {
                    json!(rule.ports.0)
                } else {
                    json!({"range": [rule.ports.0, rule.ports.1]})
                };
                expressions.push(json!({"match": {
                    "op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": right,
                }}));
            }
            expressions.push(json!({"counter": null}));
            match rule.action {
                RuleAction::Allow => expressions.push(json!({"accept": null})),
                // A TCP reset fails connect() at once with ECONNREFUSED; an ICMP error
                // for a local SYN is only acted on after a retransmission (about 1 s).
                RuleAction::Block if is_tcp => {
                    expressions.push(json!({"reject": {"type": "tcp reset"}}));
                }
                RuleAction::Block => expressions.push(json!({"reject": null})),
                // Counted, and evaluation goes on.
                RuleAction::Alert => {}
            }
            expressions
        })
        .collect()
}

/// Matches the remote address: a prefix, or the address family for a `/0`.
fn address_match(rule: &NetRule, remote_field: &str) -> Value {
    let (family, address_protocol) = match rule.remote.network() {
        IpAddr::V4(_) => ("ipv4", "ip"),
        IpAddr::V6(_) => ("ipv6", "ip6"),
    };
    if rule.remote.prefix() == 0 {
        json!({"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": family}})
    } else {
        json!({"match": {
            "op": "==",
            "left": {"payload": {"protocol": address_protocol, "field": remote_field}},
            "right": {"prefix": {"addr": rule.remote.network().to_string(), "len": rule.remote.prefix()}},
        }})
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}
