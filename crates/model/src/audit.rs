//! Roles and the audit trail.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// What a token may do. Human roles are ordered: an admin may do what an operator may, and an
/// operator what a viewer may. `Agent` is separate: it may only join and report findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read and handle findings.
    Operator,
    /// Everything, including rules, tokens and settings.
    Admin,
    /// An enrolled agent: report findings only.
    Agent,
    /// A join token: exchange for an agent credential only.
    Join,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Join => "join",
        }
    }

    /// Whether this role includes the permissions of `required`.
    pub fn allows(self, required: Role) -> bool {
        let human_rank = |role: Role| match role {
            Role::Viewer => Some(0),
            Role::Operator => Some(1),
            Role::Admin => Some(2),
            Role::Agent | Role::Join => None,
        };
        match (human_rank(self), human_rank(required)) {
            (Some(have), Some(need)) => have >= need,
            _ => self == required,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            Role::Viewer,
            Role::Operator,
            Role::Admin,
            Role::Agent,
            Role::Join,
        ]
        .into_iter()
        .find(|role| role.as_str() == text)
        .ok_or_else(|| {
            format!("unknown role {text:?}: expected viewer, operator, admin, agent or join")
        })
    }
}

/// One entry of the audit trail: who did what, when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Id.
    pub id: Uuid,
    /// When.
    pub at: Timestamp,
    /// The token's name.
    pub actor: String,
    /// The token's role at the time.
    pub role: Role,
    /// What was done (`alert.ignore`, `whitelist.create`, `token.create`, ...).
    pub action: String,
    /// The kind of object acted on.
    pub target_kind: String,
    /// The id of the object acted on.
    pub target_id: String,
    /// Why, as given by the actor.
    pub reason: String,
    /// Further details (the request body, counts of affected findings, ...).
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_hierarchy() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Agent.allows(Role::Viewer));
        assert!(!Role::Admin.allows(Role::Agent));
        assert!(Role::Agent.allows(Role::Agent));
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
    }
}
