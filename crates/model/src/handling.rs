//! Handling: statuses, whitelist rules, exceptions and notes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Finding, FindingKind, Timestamp};

/// The handling status of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Needs attention.
    Open,
    /// An operator marked it handled.
    Handled,
    /// An operator ignored it (undoable: back to open).
    Ignored,
    /// Closed by a whitelist rule.
    Whitelisted,
    /// A fix is under way (vulnerabilities).
    Fixing,
    /// Verified fixed (vulnerabilities).
    Fixed,
    /// Covered by an exception (baseline risks).
    Excepted,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 7] = [
        Status::Open,
        Status::Handled,
        Status::Ignored,
        Status::Whitelisted,
        Status::Fixing,
        Status::Fixed,
        Status::Excepted,
    ];

    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Handled => "handled",
            Status::Ignored => "ignored",
            Status::Whitelisted => "whitelisted",
            Status::Fixing => "fixing",
            Status::Fixed => "fixed",
            Status::Excepted => "excepted",
        }
    }

    /// The inverse of [`Status::as_str`].
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
    }

    /// Whether a repeat of the finding is absorbed into this row. Ignored findings keep
    /// absorbing repeats (that is what ignoring means); handled or fixed ones do not: a
    /// recurrence after handling is news.
    pub fn absorbs_repeats(self) -> bool {
        matches!(
            self,
            Status::Open | Status::Ignored | Status::Fixing | Status::Excepted
        )
    }
}

/// How a whitelist rule compares a field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchOperator {
    /// The field equals the value.
    Equals,
    /// The field differs from the value (a missing field differs from every value).
    NotEquals,
    /// The field contains the value.
    Contains,
    /// The field does not contain the value.
    NotContains,
    /// The field matches the regular expression (unanchored; anchor with `^…$`).
    Regex,
    /// The field starts with the value.
    Prefix,
}

/// Where a whitelist rule applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WhitelistScope {
    /// Every asset.
    AllAssets,
    /// One asset (see [`crate::AffectedAsset::asset_id`]).
    Asset {
        /// The asset id.
        asset_id: Uuid,
    },
}

/// A whitelist rule as submitted by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWhitelistRule {
    /// The kind of finding it applies to.
    #[serde(default = "default_kind")]
    pub kind: FindingKind,
    /// A field name from [`Finding::FIELD_NAMES`].
    pub field: String,
    /// The comparison.
    pub operator: MatchOperator,
    /// The value compared with.
    pub value: String,
    /// Where it applies.
    pub scope: WhitelistScope,
    /// Why (recorded in the audit trail too).
    #[serde(default)]
    pub reason: String,
}

fn default_kind() -> FindingKind {
    FindingKind::Alert
}

/// Largest compiled regex a whitelist rule may use, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A whitelist rule that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    /// The field name is not one of [`Finding::FIELD_NAMES`].
    #[error("unknown field {field:?}; known fields: {}", Finding::FIELD_NAMES.join(", "))]
    UnknownField {
        /// The rejected name.
        field: String,
    },
    /// The regular expression does not compile (or is too large).
    #[error("invalid regular expression {pattern:?}: {source}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// Why it failed.
        #[source]
        source: regex::Error,
    },
    /// The value is empty, which would match everything with `contains` or `prefix`.
    #[error("the value is empty: a whitelist rule must name what it matches")]
    EmptyValue,
}

impl NewWhitelistRule {
    /// Checks the rule and prepares it for matching.
    pub fn compile(&self) -> Result<WhitelistMatcher, FieldError> {
        if !Finding::FIELD_NAMES.contains(&self.field.as_str()) {
            return Err(FieldError::UnknownField {
                field: self.field.clone(),
            });
        }
        if self.value.is_empty() {
            return Err(FieldError::EmptyValue);
        }
        let regex = match self.operator {
            MatchOperator::Regex => Some(
                regex::RegexBuilder::new(&self.value)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|source| FieldError::Regex {
                        pattern: self.value.clone(),
                        source,
                    })?,
            ),
            _ => None,
        };
        Ok(WhitelistMatcher {
            rule: self.clone(),
            regex,
        })
    }
}

/// A checked whitelist rule, ready to test findings.
#[derive(Debug, Clone)]
pub struct WhitelistMatcher {
    rule: NewWhitelistRule,
    regex: Option<regex::Regex>,
}

impl WhitelistMatcher {
    /// The rule this matcher was compiled from.
    pub fn rule(&self) -> &NewWhitelistRule {
        &self.rule
    }

    /// Whether `finding` is covered by the rule.
    pub fn matches(&self, finding: &Finding) -> bool {
        if finding.kind() != self.rule.kind {
            return false;
        }
        if let WhitelistScope::Asset { asset_id } = self.rule.scope
            && finding.asset_id != asset_id
        {
            return false;
        }
        let field = finding.field(&self.rule.field);
        let value = self.rule.value.as_str();
        match (self.rule.operator, field.as_deref()) {
            (MatchOperator::Equals, Some(field)) => field == value,
            (MatchOperator::NotEquals, field) => field != Some(value),
            (MatchOperator::Contains, Some(field)) => field.contains(value),
            (MatchOperator::NotContains, field) => {
                !field.is_some_and(|field| field.contains(value))
            }
            (MatchOperator::Regex, Some(field)) => self
                .regex
                .as_ref()
                .is_some_and(|regex| regex.is_match(field)),
            (MatchOperator::Prefix, Some(field)) => field.starts_with(value),
            (_, None) => false,
        }
    }
}

/// A stored whitelist rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhitelistRule {
    /// Id.
    pub id: Uuid,
    /// The rule.
    #[serde(flatten)]
    pub rule: NewWhitelistRule,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// How many findings it has suppressed or closed.
    pub hits: u64,
}

/// An exception for baseline risks, as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewException {
    /// The check id it covers, or `*` for every check.
    pub check: String,
    /// Only in this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Only in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only for this workload or object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only for this container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Only for this asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<Uuid>,
    /// Only for objects with all these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Why the risk is accepted.
    pub reason: String,
    /// Who owns the decision.
    pub owner: String,
    /// When it stops applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl NewException {
    /// Whether the exception covers `finding` at time `now`. Labels are matched by the
    /// baseline scanner, which sees the object; here they only narrow what was reported.
    pub fn covers(&self, finding: &Finding, now: Timestamp) -> bool {
        let asset = &finding.asset;
        let same = |wanted: &Option<String>, actual: &Option<String>| {
            wanted
                .as_ref()
                .is_none_or(|wanted| actual.as_ref() == Some(wanted))
        };
        finding.kind() == FindingKind::BaselineRisk
            && self.expires_at.is_none_or(|expiry| expiry > now)
            && (self.check == "*" || self.check == finding.rule)
            && self
                .cluster
                .as_ref()
                .is_none_or(|cluster| *cluster == asset.cluster)
            && same(&self.namespace, &asset.namespace)
            && (same(&self.name, &asset.workload) || same(&self.name, &asset.pod))
            && same(&self.container, &asset.container_name)
            && self
                .asset_id
                .is_none_or(|asset_id| asset_id == finding.asset_id)
    }
}

/// A stored exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exception {
    /// Id.
    pub id: Uuid,
    /// The exception.
    #[serde(flatten)]
    pub exception: NewException,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
}

/// A note on a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Note {
    /// Id.
    pub id: Uuid,
    /// The finding.
    pub finding_id: Uuid,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub created_at: Timestamp,
    /// The text.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AffectedAsset, AlertDetails, Details, ProcessInfo, Severity};

    fn finding(exe: &str) -> Finding {
        let asset = AffectedAsset {
            cluster: "c".into(),
            node: Some("n".into()),
            ..Default::default()
        };
        Finding {
            id: Uuid::new_v4(),
            severity: Severity::High,
            status: Status::Open,
            rule: "r".into(),
            title: "t".into(),
            asset_id: asset.asset_id(),
            asset,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            count: 1,
            demo: false,
            details: Details::Alert(AlertDetails {
                process: ProcessInfo {
                    exe: exe.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }

    fn rule(operator: MatchOperator, value: &str) -> WhitelistMatcher {
        NewWhitelistRule {
            kind: FindingKind::Alert,
            field: "process.exe".into(),
            operator,
            value: value.into(),
            scope: WhitelistScope::AllAssets,
            reason: String::new(),
        }
        .compile()
        .unwrap()
    }

    #[test]
    fn operators() {
        let bash = finding("/usr/bin/bash");
        assert!(rule(MatchOperator::Equals, "/usr/bin/bash").matches(&bash));
        assert!(!rule(MatchOperator::Equals, "/usr/bin/ba").matches(&bash));
        assert!(rule(MatchOperator::NotEquals, "/bin/sh").matches(&bash));
        assert!(rule(MatchOperator::Contains, "bin/ba").matches(&bash));
        assert!(!rule(MatchOperator::NotContains, "bin/ba").matches(&bash));
        assert!(rule(MatchOperator::Regex, "^/usr/bin/(ba)?sh$").matches(&bash));
        assert!(!rule(MatchOperator::Regex, "^/bin/").matches(&bash));
        assert!(rule(MatchOperator::Prefix, "/usr/").matches(&bash));
    }

    #[test]
    fn scope_and_validation() {
        let bash = finding("/usr/bin/bash");
        let mut scoped = NewWhitelistRule {
            kind: FindingKind::Alert,
            field: "process.exe".into(),
            operator: MatchOperator::Prefix,
            value: "/usr".into(),
            scope: WhitelistScope::Asset {
                asset_id: Uuid::new_v4(),
            },
            reason: String::new(),
        };
        assert!(!scoped.compile().unwrap().matches(&bash));
        scoped.scope = WhitelistScope::Asset {
            asset_id: bash.asset_id,
        };
        assert!(scoped.compile().unwrap().matches(&bash));
        scoped.field = "process.nope".into();
        assert!(matches!(
            scoped.compile(),
            Err(FieldError::UnknownField { .. })
        ));
        scoped.field = "process.exe".into();
        scoped.operator = MatchOperator::Regex;
        scoped.value = "(".into();
        assert!(matches!(scoped.compile(), Err(FieldError::Regex { .. })));
    }
}
