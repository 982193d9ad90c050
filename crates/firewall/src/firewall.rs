//! Palisade's own firewall tier: network objects and rules between them.
//!
//! This tier is the operator's firewall, so it is evaluated first, before the admin tier.
//! Enabled rules are tried in priority order (lower first, then by name); the first `allow`
//! or `block` rule that matches decides the whole connection, both directions. An `alert`
//! rule that matches is recorded in the verdict and evaluation goes on, so it never changes
//! the verdict. A connection no rule decides is evaluated by the Kubernetes tiers.

use std::fmt;
use std::net::IpAddr;

use crate::net::IpNet;
use crate::policy::Protocol;
use crate::selector::{Labels, Selector};

/// The most port ranges one rule may list.
pub const MAX_RULE_PORT_RANGES: usize = 8;

/// A named group of endpoints rules refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkObject {
    /// The name rules use.
    pub name: String,
    /// What belongs to the object.
    pub members: ObjectMembers,
}

/// What belongs to a [`NetworkObject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectMembers {
    /// Workloads (pods) matching every given condition.
    Workloads(WorkloadMatch),
    /// Any endpoint, pod or not, whose IP is in one of the blocks.
    Cidrs(Vec<IpNet>),
}

/// Conditions on a workload; unset conditions hold for every workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadMatch {
    /// Namespace name pattern (`*` and `?` wildcards).
    pub namespace: Option<Pattern>,
    /// Pod label selector.
    pub labels: Selector,
    /// Image pattern; holds when any container's image matches.
    pub image: Option<Pattern>,
    /// Service account name.
    pub service_account: Option<String>,
}

impl WorkloadMatch {
    /// True when a workload with these attributes belongs to the object.
    pub fn matches(
        &self,
        namespace: &str,
        labels: &Labels,
        images: &[String],
        service_account: Option<&str>,
    ) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|pattern| pattern.matches(namespace))
            && self.labels.matches(labels)
            && self
                .image
                .as_ref()
                .is_none_or(|pattern| images.iter().any(|image| pattern.matches(image)))
            && self
                .service_account
                .as_deref()
                .is_none_or(|wanted| service_account == Some(wanted))
    }
}

/// A glob pattern where `*` matches any run of characters and `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Wraps a pattern.
    pub fn new(pattern: impl Into<String>) -> Pattern {
        Pattern(pattern.into())
    }

    /// True when `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let pattern: Vec<char> = self.0.chars().collect();
        let text: Vec<char> = text.chars().collect();
        // Iterative wildcard matching with one backtrack point, linear in practice.
        let (mut pattern_idx, mut text_idx) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while text_idx < text.len() {
            match pattern.get(pattern_idx) {
                Some('*') => {
                    star = Some((pattern_idx, text_idx));
                    pattern_idx += 1;
                }
                Some(&c) if c == '?' || c == text[text_idx] => {
                    pattern_idx += 1;
                    text_idx += 1;
                }
                _ => match star {
                    Some((star_pattern, star_text)) => {
                        pattern_idx = star_pattern + 1;
                        text_idx = star_text + 1;
                        star = Some((star_pattern, star_text + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[pattern_idx..].iter().all(|&c| c == '*')
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a Palisade rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Allow the connection; no Kubernetes policy is consulted.
    Allow,
    /// Record an alert; the verdict is left to later rules and tiers.
    Alert,
    /// Refuse the connection.
    Block,
}

impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleAction::Allow => "allow",
            RuleAction::Alert => "alert",
            RuleAction::Block => "block",
        })
    }
}

/// A rule: source object → destination object, ports, protocol, action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRule {
    /// The rule's name.
    pub name: String,
    /// Name of the source [`NetworkObject`].
    pub source: String,
    /// Name of the destination [`NetworkObject`].
    pub destination: String,
    /// Inclusive destination port ranges, at most [`MAX_RULE_PORT_RANGES`]; empty = all.
    pub ports: Vec<(u16, u16)>,
    /// The protocol; `None` = any.
    pub protocol: Option<Protocol>,
    /// What a match does.
    pub action: RuleAction,
    /// Lower is evaluated first.
    pub priority: u32,
    /// Disabled rules are kept but never match.
    pub enabled: bool,
}

impl FirewallRule {
    /// True when the rule's protocol and ports admit the traffic.
    pub fn matches_port(&self, protocol: Protocol, port: Option<u16>) -> bool {
        self.protocol.is_none_or(|own| own == protocol)
            && (self.ports.is_empty()
                || port.is_some_and(|port| {
                    self.ports
                        .iter()
                        .any(|&(start, end)| start <= port && port <= end)
                }))
    }
}

/// `name: source -> destination ports/protocol action, priority P` (`, disabled` when it is),
/// as logs show a rule.
impl fmt::Display for FirewallRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {} ", self.name, self.source, self.destination)?;
        if self.ports.is_empty() {
            f.write_str("any port")?;
        }
        for (index, &(start, end)) in self.ports.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            match start == end {
                true => write!(f, "{separator}{start}")?,
                false => write!(f, "{separator}{start}-{end}")?,
            }
        }
        match self.protocol {
            Some(protocol) => write!(f, "/{protocol}")?,
            None => f.write_str("/any")?,
        }
        write!(f, " {}, priority {}", self.action, self.priority)?;
        if !self.enabled {
            f.write_str(", disabled")?;
        }
        Ok(())
    }
}

/// True when `ip` is in one of the blocks.
pub(crate) fn cidrs_contain(cidrs: &[IpNet], ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| cidrs.iter().any(|cidr| cidr.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::{FirewallRule, Pattern, RuleAction, WorkloadMatch};
    use crate::policy::Protocol;
    use crate::selector::{Labels, Selector};

    #[test]
    fn rules_show_as_logs_name_them() {
        let mut rule = FirewallRule {
            name: "web-to-db".into(),
            source: "web".into(),
            destination: "db".into(),
            ports: vec![(5432, 5432), (8000, 8080)],
            protocol: Some(Protocol::Tcp),
            action: RuleAction::Block,
            priority: 3,
            enabled: true,
        };
        assert_eq!(
            rule.to_string(),
            "web-to-db: web -> db 5432,8000-8080/TCP block, priority 3"
        );
        (rule.ports, rule.protocol, rule.enabled) = (Vec::new(), None, false);
        assert_eq!(
            rule.to_string(),
            "web-to-db: web -> db any port/any block, priority 3, disabled"
        );
    }

    #[test]
    fn glob_patterns() {
        assert!(Pattern::new("prod-*").matches("prod-eu"));
        assert!(Pattern::new("prod-*").matches("prod-"));
        assert!(!Pattern::new("prod-*").matches("staging"));
        assert!(Pattern::new("*/nginx:*").matches("docker.io/library/nginx:1.27"));
        assert!(Pattern::new("a?c").matches("abc"));
        assert!(!Pattern::new("a?c").matches("ac"));
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("exact").matches("exact"));
        assert!(!Pattern::new("exact").matches("exactly"));
    }

    #[test]
    fn workload_match_needs_every_condition() {
        let labels: Labels = [("app".to_string(), "web".to_string())].into();
        let web = WorkloadMatch {
            namespace: Some(Pattern::new("prod-*")),
            labels: Selector::from_labels(&labels),
            image: Some(Pattern::new("nginx:*")),
            service_account: Some("web".into()),
        };
        let images = ["nginx:1.27".to_string()];
        assert!(web.matches("prod-eu", &labels, &images, Some("web")));
        assert!(!web.matches("dev", &labels, &images, Some("web")));
        assert!(!web.matches("prod-eu", &Labels::new(), &images, Some("web")));
        assert!(!web.matches("prod-eu", &labels, &["redis:7".into()], Some("web")));
        assert!(!web.matches("prod-eu", &labels, &images, None));
        assert!(WorkloadMatch::default().matches("any", &Labels::new(), &[], None));
    }

    #[test]
    fn rule_ports_and_protocol() {
        let rule = FirewallRule {
            name: "r".into(),
            source: "a".into(),
            destination: "b".into(),
            ports: vec![(80, 80), (8000, 8100)],
            protocol: Some(Protocol::Tcp),
            action: RuleAction::Block,
            priority: 1,
            enabled: true,
        };
        assert!(rule.matches_port(Protocol::Tcp, Some(80)));
        assert!(rule.matches_port(Protocol::Tcp, Some(8050)));
        assert!(!rule.matches_port(Protocol::Tcp, Some(81)));
        assert!(!rule.matches_port(Protocol::Udp, Some(80)));
        assert!(!rule.matches_port(Protocol::Tcp, None));
    }
}
