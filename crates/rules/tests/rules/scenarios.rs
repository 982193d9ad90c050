//! The scenario suite (`crates/rules/scenarios/*.yaml`), replayed: each scenario's events go
//! through an engine with the default rules, and exactly the expected rules fire.

use std::collections::BTreeSet;

use palisade_rules::{
    Engine, EngineConfig, RuleSet, Scenario, default_rule_sources, parse_scenarios,
};

use crate::support::diagnostics;

fn scenario_files() -> Vec<(String, Vec<Scenario>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let scenarios = parse_scenarios(&name, &text).unwrap_or_else(|error| panic!("{error}"));
            (name, scenarios)
        })
        .collect()
}

/// The rules that fire for a scenario's events and audit objects, in a fresh engine.
pub fn replay(scenario: &Scenario) -> BTreeSet<String> {
    let rule_set = RuleSet::load(&default_rule_sources());
    assert!(rule_set.errors().is_empty(), "{}", diagnostics(&rule_set));
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut events = scenario.events.clone();
    for (index, object) in scenario.audit.iter().enumerate() {
        let event = palisade_k8saudit::audit_event(object.clone())
            .unwrap_or_else(|error| panic!("scenario '{}' audit[{index}]: {error}", scenario.name));
        events.push(event);
    }
    let mut alerts = Vec::new();
    for event in &events {
        engine.process(event, &mut alerts);
    }
    alerts.into_iter().map(|alert| alert.rule).collect()
}

#[test]
fn every_scenario_fires_exactly_its_rules() {
    let rule_names: BTreeSet<String> = RuleSet::load(&default_rule_sources())
        .rules()
        .iter()
        .map(|rule| rule.name.clone())
        .collect();
    let mut failures = Vec::new();
    let mut n_scenarios = 0;
    for (file, scenarios) in scenario_files() {
        for scenario in scenarios {
            n_scenarios += 1;
            for name in scenario.expect.fire.iter().chain(&scenario.expect.not_fire) {
                assert!(
                    rule_names.contains(name),
                    "{file} '{}': no rule '{name}'",
                    scenario.name
                );
            }
            assert!(
                !scenario.events.is_empty() || !scenario.audit.is_empty(),
                "{file} '{}' has nothing to replay",
                scenario.name
            );
            let fired = replay(&scenario);
            let expected: BTreeSet<String> = scenario.expect.fire.iter().cloned().collect();
            let forbidden: Vec<&String> = scenario
                .expect
                .not_fire
                .iter()
                .filter(|name| fired.contains(*name))
                .collect();
            if fired != expected || !forbidden.is_empty() {
                failures.push(format!(
                    "{file} '{}': fired {fired:?}, expected {expected:?}",
                    scenario.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(n_scenarios >= 25, "only {n_scenarios} scenarios");
}

/// Every default rule is exercised by at least one scenario that makes it fire.
#[test]
fn every_default_rule_fires_in_some_scenario() {
    let mut fired_somewhere = BTreeSet::new();
    for (_, scenarios) in scenario_files() {
        for scenario in scenarios {
            fired_somewhere.extend(scenario.expect.fire.clone());
        }
    }
    let missing: Vec<String> = RuleSet::load(&default_rule_sources())
        .rules()
        .iter()
        .map(|rule| rule.name.clone())
        .filter(|name| !fired_somewhere.contains(name))
        .collect();
    assert!(missing.is_empty(), "rules no scenario fires: {missing:?}");
}
