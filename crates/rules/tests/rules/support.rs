//! Helpers: events from JSON, and `check_rule` / `check_load`, which render what happened as
//! text so that each test states its whole expected outcome.

use palisade_event::Event;
use palisade_rules::{Engine, EngineConfig, RuleSet, RuleSource};

/// An event from its JSON wire format; omitted fields take their defaults.
pub fn ev(json: &str) -> Event {
    serde_json::from_str(json).unwrap_or_else(|error| panic!("bad test event {json}: {error}"))
}

/// Loads sources named `a.yaml`, `b.yaml`, ... in order.
pub fn load(sources: &[&str]) -> RuleSet {
    let sources: Vec<RuleSource> = sources
        .iter()
        .enumerate()
        .map(|(index, text)| RuleSource {
            name: format!("{}.yaml", (b'a' + index as u8) as char),
            text: (*text).to_owned(),
        })
        .collect();
    RuleSet::load(&sources)
}

/// Renders errors and warnings, one per line, as `error a.yaml:3:5 rule 'x': message`.
pub fn diagnostics(rule_set: &RuleSet) -> String {
    let mut lines = Vec::new();
    for error in rule_set.errors() {
        lines.push(format!(
            "error {} {}: {}",
            error.location(),
            error.item(),
            error.message()
        ));
    }
    for warning in rule_set.warnings() {
        lines.push(format!(
            "warning {} {}: {}",
            warning.location(),
            warning.item(),
            warning.message()
        ));
    }
    lines.join("\n")
}

/// Runs events through rules loaded from `sources` and renders one line per alert,
/// `<event index>: <rule>: <output>`, or `<event index>: -` when nothing fired.
pub fn run(sources: &[&str], config: &EngineConfig, events: &[Event]) -> String {
    let rule_set = load(sources);
    assert!(
        rule_set.errors().is_empty(),
        "unexpected load errors:\n{}",
        diagnostics(&rule_set)
    );
    let mut engine = Engine::new(rule_set, config);
    let mut lines = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let mut alerts = Vec::new();
        engine.process(event, &mut alerts);
        if alerts.is_empty() {
            lines.push(format!("{index}: -"));
        }
        for alert in alerts {
            lines.push(format!("{index}: {}: {}", alert.rule, alert.output));
        }
    }
    lines.join("\n")
}

/// `check_rule(rules_yaml, events, expect)`: the alerts, rendered by [`run`], must equal
/// `expect` (leading and trailing blank space of each line is ignored).
#[track_caller]
pub fn check_rule(rules_yaml: &str, events: &[Event], expect: &str) {
    let actual = run(&[rules_yaml], &EngineConfig::default(), events);
    assert_eq!(actual, trim_lines(expect), "rules:\n{rules_yaml}");
}

/// The diagnostics of loading `sources` must equal `expect`.
#[track_caller]
pub fn check_load(sources: &[&str], expect: &str) {
    let rule_set = load(sources);
    assert_eq!(diagnostics(&rule_set), trim_lines(expect));
}

pub fn trim_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A one-rule file: `condition` with output `%proc.name` and the given extra YAML.
pub fn rule(condition: &str) -> String {
    format!(
        "- rule: R\n  desc: test\n  condition: {}\n  output: \"%proc.name\"\n  priority: WARNING\n",
        serde_json::to_string(condition).unwrap()
    )
}

/// Whether a one-rule file with `condition` fires on `event` (JSON), or its load errors.
pub fn fires(condition: &str, event: &str) -> Result<bool, String> {
    let rule_set = load(&[&rule(condition)]);
    if !rule_set.errors().is_empty() {
        return Err(diagnostics(&rule_set));
    }
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut alerts = Vec::new();
    engine.process(&ev(event), &mut alerts);
    Ok(!alerts.is_empty())
}

/// Asserts, for each `(condition, event JSON, expected)`, that a one-rule file with the
/// condition loads and fires on the event exactly when `expected`.
#[track_caller]
pub fn assert_all_fire_as_expected(cases: &[(&str, &str, bool)]) {
    for (condition, event, expected) in cases {
        assert_eq!(
            fires(condition, event),
            Ok(*expected),
            "{condition} on {event}"
        );
    }
}

/// Checks that each `(condition, event JSON, expected)` case fires as expected, reporting
/// every wrong case at once.
#[track_caller]
pub fn check_fires(cases: &[(&str, &str, bool)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(
            |(condition, event, expected)| match fires(condition, event) {
                Ok(fired) if fired == *expected => None,
                Ok(_) => Some(format!("{condition}: expected {expected}")),
                Err(errors) => Some(format!("{condition}: {errors}")),
            },
        )
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
