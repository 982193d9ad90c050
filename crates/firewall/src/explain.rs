//! Verdicts in words: which tier, policy and rule decided each direction.

use std::fmt;

use serde::Serialize;

use crate::engine::Engine;
use crate::flow::Flow;
use crate::policy::{Action, Direction};
use crate::verdict::{Decision, DirectionVerdict, FirewallRuleId, RuleRef};

/// A verdict with names instead of ids, ready to print or serialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Whether the connection is allowed.
    pub allowed: bool,
    /// The decision at the destination.
    pub ingress: DirectionExplanation,
    /// The decision at the source.
    pub egress: DirectionExplanation,
    /// The Palisade `alert` rule that matched, if any.
    pub alert: Option<String>,
}

/// One direction of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionExplanation {
    /// Whether this direction admits the connection.
    pub allowed: bool,
    /// `firewall`, `admin`, `network-policy`, `baseline`, `default` or `not-applicable`.
    pub tier: String,
    /// The deciding policy or Palisade rule (`Kind namespace/name`).
    pub policy: Option<String>,
    /// The deciding rule (`ingress[0] "name"`).
    pub rule: Option<String>,
    /// The deciding rule's action.
    pub action: Option<String>,
    /// The `Pass` rule that handed evaluation to a later tier, if any.
    pub passed_by: Option<String>,
    /// Every NetworkPolicy isolating the subject, when isolation decided.
    pub isolated_by: Vec<String>,
    /// One sentence saying why.
    pub reason: String,
}

impl Engine<'_> {
    /// Evaluates `flow` and names what decided it.
    pub fn explain(&self, flow: &Flow) -> Explanation {
        let verdict = self.evaluate(flow);
        Explanation {
            allowed: verdict.allowed,
            ingress: self.explain_direction(flow, Direction::Ingress, &verdict.ingress),
            egress: self.explain_direction(flow, Direction::Egress, &verdict.egress),
            alert: verdict
                .alert
                .map(|rule_id| self.firewall_rule_name(rule_id)),
        }
    }

    fn firewall_rule_name(&self, rule_id: FirewallRuleId) -> String {
        self.state()
            .firewall_rules()
            .get(rule_id.index())
            .map_or_else(
                || "FirewallRule ?".into(),
                |rule| format!("FirewallRule {}", rule.name),
            )
    }

    fn rule_name(&self, rule_ref: RuleRef, direction: Direction) -> String {
        let name = self
            .rule(rule_ref, direction)
            .and_then(|rule| rule.name.as_deref())
            .map(|name| format!(" {name:?}"))
            .unwrap_or_default();
        format!("{direction}[{}]{name}", rule_ref.rule)
    }

    fn policy_name(&self, rule_ref: RuleRef) -> String {
        self.policy(rule_ref.policy)
            .map_or_else(|| "?".into(), |policy| policy.display_name())
    }

    fn explain_direction(
        &self,
        flow: &Flow,
        direction: Direction,
        verdict: &DirectionVerdict,
    ) -> DirectionExplanation {
        let subject = match direction {
            Direction::Ingress => "destination",
            Direction::Egress => "source",
        };
        let passed_by = verdict.passed.map(|rule_ref| {
            format!(
                "{} {}",
                self.policy_name(rule_ref),
                self.rule_name(rule_ref, direction)
            )
        });
        let mut explanation = DirectionExplanation {
            allowed: verdict.allowed,
            tier: String::new(),
            policy: None,
            rule: None,
            action: None,
            passed_by,
            isolated_by: Vec::new(),
            reason: String::new(),
        };
        match verdict.decision {
            Decision::NotApplicable => {
                explanation.tier = "not-applicable".into();
                explanation.reason = format!(
                    "the {subject} is outside the cluster, so no {direction} policy applies"
                );
            }
            Decision::Firewall(rule_id) => {
                let name = self.firewall_rule_name(rule_id);
                let action = self
                    .state()
                    .firewall_rules()
                    .get(rule_id.index())
                    .map_or_else(String::new, |rule| rule.action.to_string());
                explanation.tier = "firewall".into();
                explanation.reason = format!("{name} ({action}) matched the connection");
                explanation.policy = Some(name);
                explanation.action = Some(action);
            }
            Decision::Rule(rule_ref) => {
                let policy = self.policy(rule_ref.policy);
                let action = self
                    .rule(rule_ref, direction)
                    .map_or(Action::Allow, |rule| rule.action);
                let policy_name = self.policy_name(rule_ref);
                let rule_name = self.rule_name(rule_ref, direction);
                explanation.tier =
                    policy.map_or_else(String::new, |policy| policy.tier.to_string());
                explanation.reason = format!("{policy_name} {rule_name} matched ({action})");
                explanation.policy = Some(policy_name);
                explanation.rule = Some(rule_name);
                explanation.action = Some(action.to_string());
            }
            Decision::Isolated(_) => {
                let endpoint = match direction {
                    Direction::Ingress => &flow.dst,
                    Direction::Egress => &flow.src,
                };
                explanation.tier = "network-policy".into();
                explanation.isolated_by = self
                    .isolating_policies(endpoint, direction)
                    .into_iter()
                    .filter_map(|policy_id| self.policy(policy_id))
                    .map(|policy| policy.display_name())
                    .collect();
                explanation.action = Some(Action::Deny.to_string());
                explanation.reason = format!(
                    "the {subject} is isolated for {direction} by {} and no rule of {} allows the connection",
                    explanation.isolated_by.join(", "),
                    if explanation.isolated_by.len() == 1 {
                        "it"
                    } else {
                        "them"
                    },
                );
            }
            Decision::Default => {
                explanation.tier = "default".into();
                explanation.reason = "no policy decided, so the default (allow) applies".into();
            }
        }
        explanation
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verdict: {}",
            if self.allowed { "allowed" } else { "denied" }
        )?;
        for (name, direction) in [("egress", &self.egress), ("ingress", &self.ingress)] {
            writeln!(
                f,
                "{name}: {} [{}] {}",
                if direction.allowed {
                    "allowed"
                } else {
                    "denied"
                },
                direction.tier,
                direction.reason
            )?;
            if let Some(passed_by) = &direction.passed_by {
                writeln!(f, "  passed on by {passed_by}")?;
            }
        }
        if let Some(alert) = &self.alert {
            writeln!(f, "alert: {alert}")?;
        }
        Ok(())
    }
}
