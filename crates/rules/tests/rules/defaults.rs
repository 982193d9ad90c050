//! Palisade's shipped default rules: they load without a diagnostic, every rule carries the
//! metadata alerts need, and recorded host activity stays silent.

use palisade_rules::{Category, RuleMetadata, RuleSet, default_rule_sources};

use crate::support::diagnostics;

#[test]
fn default_rules_load_without_errors_or_warnings() {
    let rule_set = RuleSet::load(&default_rule_sources());
    assert_eq!(diagnostics(&rule_set), "");
    assert!(rule_set.rules().len() >= 30, "{}", rule_set.rules().len());
}

#[test]
fn every_default_rule_has_category_technique_description_and_suggestion() {
    let rule_set = RuleSet::load(&default_rule_sources());
    let mut categories_seen = Vec::new();
    for rule in rule_set.rules() {
        let metadata = RuleMetadata::from_tags(&rule.tags);
        let n_categories = rule
            .tags
            .iter()
            .filter(|tag| Category::from_tag(tag).is_some())
            .count();
        assert_eq!(
            n_categories, 1,
            "rule '{}' needs one category tag",
            rule.name
        );
        assert!(
            !metadata.mitre_techniques.is_empty(),
            "rule '{}' has no MITRE technique tag",
            rule.name
        );
        assert!(
            metadata
                .suggested_response
                .as_deref()
                .is_some_and(|s| s.len() > 20),
            "rule '{}' has no suggested response",
            rule.name
        );
        assert!(
            rule.desc.len() > 20,
            "rule '{}' has no description",
            rule.name
        );
        assert!(rule.enabled, "rule '{}' is disabled", rule.name);
        categories_seen.extend(metadata.category);
    }
    for category in Category::ALL {
        assert!(
            categories_seen.contains(&category),
            "no rule for {category}"
        );
    }
}
