//! The engine's answer: allowed or not, per direction, and what decided it.

/// A Kubernetes policy's index in [`State::policies`](crate::State::policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(pub(crate) u32);

impl PolicyId {
    /// The index into [`State::policies`](crate::State::policies).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A Palisade rule's index in [`State::firewall_rules`](crate::State::firewall_rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirewallRuleId(pub(crate) u32);

impl FirewallRuleId {
    /// The index into [`State::firewall_rules`](crate::State::firewall_rules).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One rule of one policy, in the direction being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleRef {
    /// The policy.
    pub policy: PolicyId,
    /// The rule's index in the policy's rules for that direction.
    pub rule: u32,
}

/// What decided one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The subject of this direction is outside the cluster, so no policy applies to it.
    NotApplicable,
    /// A Palisade firewall rule (allow or block) decided the whole connection.
    Firewall(FirewallRuleId),
    /// An admin or baseline rule (allow or deny) or a NetworkPolicy rule (allow) matched.
    Rule(RuleRef),
    /// NetworkPolicies isolate the subject in this direction and none of their rules
    /// matched; the id is the first such policy.
    Isolated(PolicyId),
    /// No tier decided, so Kubernetes' default (allow) applies.
    Default,
}

/// The verdict for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectionVerdict {
    /// Whether this direction admits the connection.
    pub allowed: bool,
    /// What decided it.
    pub decision: Decision,
    /// The `Pass` rule that sent evaluation on to the next tier, if one did.
    pub passed: Option<RuleRef>,
}

/// The verdict for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// True iff egress at the source and ingress at the destination both admit it.
    pub allowed: bool,
    /// The decision at the destination.
    pub ingress: DirectionVerdict,
    /// The decision at the source.
    pub egress: DirectionVerdict,
    /// The first (highest-priority) Palisade `alert` rule that matched; it does not change
    /// the verdict.
    pub alert: Option<FirewallRuleId>,
}
