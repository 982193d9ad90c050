//! Resources the console edits beside findings: Palisade's own firewall rules and requests to
//! verify a vulnerability fix.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// Most port ranges a firewall rule may list (the enforcement programs have fixed-size slots).
pub const MAX_FIREWALL_RULE_PORT_RANGES: usize = 8;

/// What a firewall rule does with a matching connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FirewallAction {
    /// Let it through.
    Allow,
    /// Let it through and raise a firewall alert.
    Alert,
    /// Refuse it (and raise a firewall alert).
    Block,
}

impl FirewallAction {
    /// Every action.
    pub const ALL: [FirewallAction; 3] = [
        FirewallAction::Allow,
        FirewallAction::Alert,
        FirewallAction::Block,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallAction::Allow => "allow",
            FirewallAction::Alert => "alert",
            FirewallAction::Block => "block",
        }
    }
}

/// An inclusive range of destination ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (equal to `start` for a single port).
    pub end: u16,
}

/// One of Palisade's own firewall rules, as submitted: source object → destination object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewFirewallRule {
    /// A unique name for people (also shown as the alert name).
    pub name: String,
    /// Name of the source network object.
    pub source: String,
    /// Name of the destination network object.
    pub destination: String,
    /// Destination port ranges, at most [`MAX_FIREWALL_RULE_PORT_RANGES`]; empty means all.
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// `TCP`, `UDP` or `SCTP`; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// What a match does.
    pub action: FirewallAction,
    /// Lower is evaluated first.
    pub priority: u32,
    /// Disabled rules are kept but never match.
    pub enabled: bool,
}

/// Why a firewall rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallRuleError {
    /// A required text field is empty or too long.
    #[error("`{field}` must have between 1 and 256 characters")]
    BadText {
        /// The field.
        field: &'static str,
    },
    /// Too many port ranges.
    #[error("a rule may list at most {MAX_FIREWALL_RULE_PORT_RANGES} port ranges; it lists {0}")]
    TooManyPorts(usize),
    /// A range whose end is before its start, or port 0.
    #[error("port range {start}-{end} is invalid: ports are 1 to 65535 and the start comes first")]
    BadRange {
        /// Start.
        start: u16,
        /// End.
        end: u16,
    },
    /// An unknown protocol.
    #[error("protocol {0:?} is not TCP, UDP or SCTP")]
    BadProtocol(String),
}

impl NewFirewallRule {
    /// Checks the rule's fields.
    pub fn validate(&self) -> Result<(), FirewallRuleError> {
        for (field, value) in [
            ("name", &self.name),
            ("source", &self.source),
            ("destination", &self.destination),
        ] {
            if value.trim().is_empty() || value.chars().count() > 256 {
                return Err(FirewallRuleError::BadText { field });
            }
        }
        if self.ports.len() > MAX_FIREWALL_RULE_PORT_RANGES {
            return Err(FirewallRuleError::TooManyPorts(self.ports.len()));
        }
        if let Some(range) = self
            .ports
            .iter()
            .find(|range| range.start == 0 || range.end < range.start)
        {
            return Err(FirewallRuleError::BadRange {
                start: range.start,
                end: range.end,
            });
        }
        if let Some(protocol) = &self.protocol
            && !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP")
        {
            return Err(FirewallRuleError::BadProtocol(protocol.clone()));
        }
        Ok(())
    }
}

/// A stored firewall rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FirewallRule {
    /// Id.
    pub id: Uuid,
    /// The rule.
    #[serde(flatten)]
    pub rule: NewFirewallRule,
    /// Who changed it last.
    pub updated_by: String,
    /// When it was changed last.
    pub updated_at: Timestamp,
    /// True for the labelled demo data set.
    #[serde(default)]
    pub demo: bool,
}

/// Where a request to verify a vulnerability fix stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    /// Recorded; no agent has rescanned the asset yet.
    Pending,
    /// The rescan no longer finds the vulnerability.
    Fixed,
    /// The rescan still finds it.
    StillVulnerable,
    /// The rescan did not happen: its task failed or timed out (see the reason). Ask again.
    Failed,
}

impl VerificationState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationState::Pending => "pending",
            VerificationState::Fixed => "fixed",
            VerificationState::StillVulnerable => "still_vulnerable",
            VerificationState::Failed => "failed",
        }
    }

    /// The inverse of [`VerificationState::as_str`].
    pub fn from_name(name: &str) -> Option<VerificationState> {
        [
            VerificationState::Pending,
            VerificationState::Fixed,
            VerificationState::StillVulnerable,
            VerificationState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// A request to rescan an asset and close a vulnerability only if it is really gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FixVerification {
    /// Id.
    pub id: Uuid,
    /// The vulnerability finding.
    pub finding_id: Uuid,
    /// The asset to rescan.
    pub asset_id: Uuid,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: Timestamp,
    /// Where it stands.
    pub state: VerificationState,
    /// When an agent reported the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// Why a failed verification failed (the task's error, or that it timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let mut rule = NewFirewallRule {
            name: "web to db".into(),
            source: "web".into(),
            destination: "db".into(),
            ports: vec![PortRange {
                start: 5432,
                end: 5432,
            }],
            protocol: Some("TCP".into()),
            action: FirewallAction::Alert,
            priority: 10,
            enabled: true,
        };
        assert_eq!(rule.validate(), Ok(()));
        rule.ports = vec![PortRange { start: 9, end: 1 }];
        assert!(matches!(
            rule.validate(),
            Err(FirewallRuleError::BadRange { .. })
        ));
        rule.ports = vec![PortRange { start: 1, end: 2 }; 9];
        assert_eq!(rule.validate(), Err(FirewallRuleError::TooManyPorts(9)));
        rule.ports.clear();
        rule.protocol = Some("ICMP".into());
        assert!(rule.validate().is_err());
        rule.protocol = None;
        rule.source = " ".into();
        assert_eq!(
            rule.validate(),
            Err(FirewallRuleError::BadText { field: "source" })
        );
    }
}
