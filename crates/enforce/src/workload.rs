//! One entry point for enforcing a workload's firewall rules, whichever backend holds it.

use std::path::Path;

use palisade_firewall::RuleAction;

use crate::connect::ConnectFilter;
use crate::error::Error;
use crate::nft::NftFirewall;
use crate::plan::WorkloadRules;
use crate::rule::NetRule;
use crate::sockets::{
    WouldRefuse, close_tcp_connections_in_netns, close_tcp_connections_of_cgroup,
    open_tcp_connections_in_netns, open_tcp_connections_of_cgroup, would_refuse,
};

/// Where a workload's open connections are read.
#[derive(Debug, Clone, Copy)]
pub enum ConnectionsOf<'p> {
    /// Its network namespace (a file naming it): every connection there, both directions.
    Netns(&'p Path),
    /// The processes of its cgroup2 directory (a workload in the host's network namespace):
    /// judged by the egress rules only, the ones its connect programs can enforce.
    Cgroup(&'p Path),
}

/// The connections open now at `place` that `rules` would refuse if they were opened again:
/// what an edit leaves running, whether it is enforced there (block mode) or not (alert mode,
/// where they are only listed).
pub fn open_connections_refused_at(
    place: ConnectionsOf<'_>,
    rules: &WorkloadRules,
) -> Result<Vec<WouldRefuse>, Error> {
    Ok(match place {
        ConnectionsOf::Cgroup(cgroup) => {
            would_refuse(&open_tcp_connections_of_cgroup(cgroup)?, &rules.egress, &[])
        }
        ConnectionsOf::Netns(netns) => would_refuse(
            &open_tcp_connections_in_netns(netns)?,
            &rules.egress,
            &rules.ingress,
        ),
    })
}

/// Where a workload's rules are enforced.
pub enum WorkloadFirewall {
    /// Connect programs on the workload's cgroup2 directory. They see the connects the
    /// workload makes, so only egress rules can be enforced here.
    Cgroup(ConnectFilter),
    /// Palisade's nftables table in the workload's network namespace: egress and ingress.
    Netns(NftFirewall),
    /// Both: connect programs refuse the workload's own connects at the system call (`EPERM`,
    /// before a packet exists), and the nftables table in its network namespace enforces
    /// ingress and what the programs cannot see (processes of the namespace outside the
    /// cgroup, datagrams sent without `connect`). The table's egress chain leaves out the
    /// `Alert` rules (they only count, and the programs count them already), so each attempt
    /// is counted once.
    CgroupAndNetns {
        // Field order is drop order: the table goes first, so that a connect made while
        // both are removed meets the programs, which report what they refuse, rather than
        // the table alone, which refuses without a report.
        /// The table in the workload's network namespace.
        netns: NftFirewall,
        /// The connect programs on the workload's cgroup2 directory.
        cgroup: ConnectFilter,
    },
}

impl WorkloadFirewall {
    /// Installs `rules`, replacing the ones in force at once. Returns the rules that this
    /// backend cannot enforce (ingress rules on a cgroup), each with the reason, so that the
    /// caller can report them rather than believe them enforced.
    pub fn apply(&self, rules: &WorkloadRules) -> Result<Vec<String>, Error> {
        let mut not_enforced = rules.unenforceable.clone();
        match self {
            WorkloadFirewall::Cgroup(filter) => {
                filter.set_rules(&rules.egress)?;
                not_enforced.extend(
                    rules
                        .ingress
                        .iter()
                        .filter(|rule| rule.action != RuleAction::Allow)
                        .map(|rule| {
                            format!(
                                "rule {} from {}: incoming connections cannot be refused by \
                                 connect programs; use the workload's network namespace",
                                rule.id, rule.remote
                            )
                        }),
                );
            }
            WorkloadFirewall::Netns(firewall) => {
                firewall.set_rules(&rules.egress, &rules.ingress)?
            }
            WorkloadFirewall::CgroupAndNetns { cgroup, netns } => {
                cgroup.set_rules(&rules.egress)?;
                let egress_verdicts: Vec<NetRule> = rules
                    .egress
                    .iter()
                    .filter(|rule| rule.action != RuleAction::Alert)
                    .cloned()
                    .collect();
                netns.set_rules(&egress_verdicts, &rules.ingress)?;
            }
        }
        Ok(not_enforced)
    }

    /// How many connections rule `rule_id` matched (the attempts count).
    pub fn hits(&self, rule_id: u32) -> Result<u64, Error> {
        match self {
            WorkloadFirewall::Cgroup(filter) => filter.hits(rule_id),
            WorkloadFirewall::Netns(firewall) => firewall.hits(rule_id),
            WorkloadFirewall::CgroupAndNetns { cgroup, netns } => {
                Ok(cgroup.hits(rule_id)? + netns.hits(rule_id)?)
            }
        }
    }

    /// The connections open now that `rules` would refuse if they were opened again: what
    /// an edit leaves running.
    pub fn open_connections_refused_by(
        &self,
        rules: &WorkloadRules,
    ) -> Result<Vec<WouldRefuse>, Error> {
        let place = match self {
            WorkloadFirewall::Cgroup(filter) => ConnectionsOf::Cgroup(filter.cgroup()),
            WorkloadFirewall::Netns(netns) | WorkloadFirewall::CgroupAndNetns { netns, .. } => {
                ConnectionsOf::Netns(netns.netns())
            }
        };
        open_connections_refused_at(place, rules)
    }

    /// Closes the connections open now that `rules` would refuse (see
    /// [`WorkloadFirewall::open_connections_refused_by`]): after an edit, nothing the new
    /// rules refuse keeps running. Fails only when they cannot be listed or the kernel not
    /// asked at all; see [`RefusedClosing`].
    pub fn close_connections_refused_by(
        &self,
        rules: &WorkloadRules,
    ) -> Result<RefusedClosing, Error> {
        let refused = self.open_connections_refused_by(rules)?;
        if refused.is_empty() {
            return Ok(RefusedClosing::default());
        }
        let connections: Vec<_> = refused
            .iter()
            .map(|entry| entry.connection.clone())
            .collect();
        let closing = match self {
            WorkloadFirewall::Cgroup(filter) => {
                close_tcp_connections_of_cgroup(filter.cgroup(), &connections)?
            }
            WorkloadFirewall::Netns(netns) | WorkloadFirewall::CgroupAndNetns { netns, .. } => {
                close_tcp_connections_in_netns(netns.netns(), &connections)?
            }
        };
        // A connection gone already is in neither list: it is left out.
        let connections = refused
            .into_iter()
            .filter_map(|entry| {
                if closing.closed.contains(&entry.connection) {
                    Some((entry, true))
                } else {
                    closing
                        .left_open
                        .contains(&entry.connection)
                        .then_some((entry, false))
                }
            })
            .collect();
        Ok(RefusedClosing {
            connections,
            errors: closing.errors,
        })
    }
}

/// The open connections a rule set refuses, after closing them.
#[derive(Debug, Default)]
pub struct RefusedClosing {
    /// Each with whether it was closed: one the kernel failed to close is listed open, not
    /// lost with those closed; one gone meanwhile is left out.
    pub connections: Vec<(WouldRefuse, bool)>,
    /// Why any was not closed.
    pub errors: Vec<Error>,
}
