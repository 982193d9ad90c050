//! Kubernetes label selectors (`matchLabels` + `matchExpressions`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};

/// A set of labels, as on a pod, namespace or node.
pub type Labels = BTreeMap<String, String>;

/// A compiled label selector. All its requirements must hold (AND); an empty selector
/// selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The requirements, `matchLabels` first (each as an `In` with one value).
    pub requirements: Vec<Requirement>,
}

/// One requirement of a [`Selector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label is compared.
    pub operator: Operator,
    /// The values for `In` and `NotIn`; empty for the other operators.
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The label exists and its value is one of the values.
    In,
    /// The label is absent, or its value is none of the values.
    NotIn,
    /// The label exists.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl Selector {
    /// The selector that selects everything.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// A selector from `matchLabels` alone.
    pub fn from_labels(labels: &Labels) -> Selector {
        Selector {
            requirements: labels
                .iter()
                .map(|(key, value)| Requirement {
                    key: key.clone(),
                    operator: Operator::In,
                    values: vec![value.clone()],
                })
                .collect(),
        }
    }

    /// True when the selector has no requirement, so it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|requirement| {
            let value = labels.get(&requirement.key);
            match requirement.operator {
                Operator::In => value.is_some_and(|value| requirement.values.contains(value)),
                Operator::NotIn => !value.is_some_and(|value| requirement.values.contains(value)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// The wire form of a `metav1.LabelSelector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LabelSelectorSpec {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    match_expressions: Option<Vec<RequirementSpec>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementSpec {
    key: String,
    operator: String,
    #[serde(default)]
    values: Option<Vec<String>>,
}

impl LabelSelectorSpec {
    /// Validates and compiles the selector; errors carry the field path below the selector.
    pub(crate) fn compile(&self) -> Result<Selector, Error> {
        let invalid = |field: String, message: String| {
            Error::new(ErrorKind::InvalidSelector, "", field, message)
        };
        let mut requirements = Vec::new();
        for (key, value) in self.match_labels.iter().flatten() {
            if key.is_empty() {
                return Err(invalid("matchLabels".into(), "empty label key".into()));
            }
            requirements.push(Requirement {
                key: key.clone(),
                operator: Operator::In,
                values: vec![value.clone()],
            });
        }
        for (expression_idx, expression) in self.match_expressions.iter().flatten().enumerate() {
            let field = format!("matchExpressions[{expression_idx}]");
            if expression.key.is_empty() {
                return Err(invalid(format!("{field}.key"), "empty label key".into()));
            }
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(invalid(
                        format!("{field}.operator"),
                        format!(
                            "unknown operator {other:?} (expected In, NotIn, Exists or DoesNotExist)"
                        ),
                    ));
                }
            };
            let values = expression.values.clone().unwrap_or_default();
            match operator {
                Operator::In | Operator::NotIn if values.is_empty() => {
                    return Err(invalid(
                        format!("{field}.values"),
                        format!("operator {} needs at least one value", expression.operator),
                    ));
                }
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                    return Err(invalid(
                        format!("{field}.values"),
                        format!("operator {} takes no values", expression.operator),
                    ));
                }
                _ => {}
            }
            requirements.push(Requirement {
                key: expression.key.clone(),
                operator,
                values,
            });
        }
        Ok(Selector { requirements })
    }
}

/// Compiles an optional selector, where absent (or `null`) means "everything".
pub(crate) fn compile_optional(spec: Option<&LabelSelectorSpec>) -> Result<Selector, Error> {
    spec.map_or_else(|| Ok(Selector::everything()), LabelSelectorSpec::compile)
}

#[cfg(test)]
mod tests {
    use super::{LabelSelectorSpec, Labels, Selector};
    use crate::error::ErrorKind;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn compile(json: &str) -> Result<Selector, crate::Error> {
        let spec: LabelSelectorSpec = serde_json::from_str(json).unwrap();
        spec.compile()
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let selector = compile(
            r#"{"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                     {"key": "env", "operator": "NotIn", "values": ["prod"]},
                                     {"key": "team", "operator": "Exists"},
                                     {"key": "legacy", "operator": "DoesNotExist"}]}"#,
        )
        .unwrap();
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "a"), ("team", "x")])));
        assert!(selector.matches(&labels(&[
            ("app", "web"),
            ("tier", "b"),
            ("team", "x"),
            ("env", "dev")
        ])));
        // Each requirement can fail the whole selector.
        assert!(!selector.matches(&labels(&[("app", "db"), ("tier", "a"), ("team", "x")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "c"), ("team", "x")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("team", "x")])));
        assert!(!selector.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("team", "x"),
            ("env", "prod")
        ])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!selector.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("team", "x"),
            ("legacy", "")
        ])));
    }

    #[test]
    fn not_in_matches_absent_label() {
        let selector = compile(
            r#"{"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}"#,
        )
        .unwrap();
        assert!(selector.matches(&labels(&[])));
    }

    #[test]
    fn empty_selects_everything() {
        let selector = compile("{}").unwrap();
        assert!(selector.is_empty());
        assert!(selector.matches(&labels(&[("a", "b")])));
        assert!(selector.matches(&labels(&[])));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        let error = compile(
            r#"{"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidSelector);
        assert_eq!(error.field(), "matchExpressions[0].operator");
        let error =
            compile(r#"{"matchExpressions": [{"key": "a", "operator": "In"}]}"#).unwrap_err();
        assert_eq!(error.field(), "matchExpressions[0].values");
        let error = compile(
            r#"{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.field(), "matchExpressions[0].values");
    }
}
