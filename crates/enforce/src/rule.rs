//! The rule both network backends enforce: remote prefix, port range, protocol, action.

use std::net::IpAddr;

use palisade_firewall::{IpNet, Protocol, RuleAction};

/// One enforcement rule, seen from the workload it is installed for.
///
/// A list of rules is evaluated in order, with the semantics of Palisade's firewall tier:
/// the first matching `Allow` or `Block` rule decides; a matching `Alert` rule is counted and
/// reported and evaluation goes on; when nothing decides, the connection passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRule {
    /// Identifies the rule in counters and reports (several rules may share one id, for
    /// example the port ranges of one firewall rule).
    pub id: u32,
    /// The remote end: the destination of an outgoing connection, the source of an
    /// incoming one.
    pub remote: IpNet,
    /// Inclusive range of destination ports; `(0, 65535)` is every port.
    pub ports: (u16, u16),
    /// The protocol; `None` is any.
    pub protocol: Option<Protocol>,
    /// What a match does.
    pub action: RuleAction,
}

impl NetRule {
    /// Every port.
    pub const ALL_PORTS: (u16, u16) = (0, u16::MAX);

    /// True when the rule matches traffic with `remote` address, destination `port` and
    /// `protocol`.
    pub fn matches(&self, remote: IpAddr, port: u16, protocol: Protocol) -> bool {
        self.remote.contains(remote)
            && self.ports.0 <= port
            && port <= self.ports.1
            && self.protocol.is_none_or(|own| own == protocol)
    }
}

/// The rule that decides a connection (the first matching `Allow` or `Block`), if any.
pub fn deciding_rule(
    rules: &[NetRule],
    remote: IpAddr,
    port: u16,
    protocol: Protocol,
) -> Option<&NetRule> {
    rules
        .iter()
        .filter(|rule| rule.action != RuleAction::Alert)
        .find(|rule| rule.matches(remote, port, protocol))
}

/// The IANA protocol number (`IPPROTO_*`).
pub(crate) fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// The protocol with IANA number `number`, if it is one rules name.
pub(crate) fn protocol_from_number(number: u8) -> Option<Protocol> {
    match number {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{NetRule, deciding_rule};
    use palisade_firewall::{Protocol, RuleAction};

    fn rule(id: u32, remote: &str, ports: (u16, u16), action: RuleAction) -> NetRule {
        NetRule {
            id,
            remote: remote.parse().unwrap(),
            ports,
            protocol: Some(Protocol::Tcp),
            action,
        }
    }

    #[test]
    fn first_allow_or_block_decides_and_alerts_do_not() {
        let rules = [
            rule(1, "10.0.0.0/8", NetRule::ALL_PORTS, RuleAction::Alert),
            rule(2, "10.1.0.0/16", (80, 80), RuleAction::Allow),
            rule(3, "10.0.0.0/8", (1, 1024), RuleAction::Block),
        ];
        let decide = |ip: &str, port| {
            deciding_rule(&rules, ip.parse().unwrap(), port, Protocol::Tcp).map(|rule| rule.id)
        };
        assert_eq!(decide("10.1.2.3", 80), Some(2));
        assert_eq!(decide("10.2.2.3", 80), Some(3));
        assert_eq!(decide("10.2.2.3", 8080), None);
        assert_eq!(decide("192.168.0.1", 80), None);
        assert_eq!(
            deciding_rule(&rules, "10.2.2.3".parse().unwrap(), 80, Protocol::Udp),
            None
        );
    }
}
