//! Palisade's default rule set, compiled into the binary.
//!
//! The files live in `crates/rules/default/` as plain Falco rules files; they are embedded with
//! `include_str!` so that an agent needs no rules on disk, and `palisade rules validate` can
//! check a copy written out by users who want to edit them.

use crate::ruleset::RuleSource;

/// The default rules files, in load order, as `(file name, YAML text)`.
pub const DEFAULT_RULE_FILES: [(&str, &str); 2] = [
    (
        "palisade_rules.yaml",
        include_str!("../default/palisade_rules.yaml"),
    ),
    (
        "palisade_k8s_audit_rules.yaml",
        include_str!("../default/palisade_k8s_audit_rules.yaml"),
    ),
];

/// The default rules files as sources for [`crate::RuleSet::load`]; append your own files
/// after them to override or extend the defaults.
pub fn default_rule_sources() -> Vec<RuleSource> {
    DEFAULT_RULE_FILES
        .iter()
        .map(|(name, text)| RuleSource {
            name: format!("<builtin>/{name}"),
            text: (*text).to_owned(),
        })
        .collect()
}
