//! Palisade's shipped default rules: they load without a diagnostic, every rule carries the
//! metadata alerts need, and recorded host activity stays silent.

use palisade_event::{Event, EventKind, Payload};
use palisade_rules::{Category, Engine, EngineConfig, RuleMetadata, RuleSet, default_rule_sources};

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

/// Real host activity recorded with `tests/data/record.py` (strace, converted to the sensor's
/// wire format): every event goes through the default rules, and none may raise an alert.
#[test]
fn recorded_host_activity_raises_no_alert() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (recording, min_events) in [
        ("quiet_host.jsonl.gz", 1000),
        ("cargo_build.jsonl.gz", 1000),
        ("apt_get_install.jsonl.gz", 1000),
    ] {
        let events = read_recording(&dir.join(recording));
        assert!(
            events.len() >= min_events,
            "{recording}: {} events",
            events.len()
        );
        let rule_set = RuleSet::load(&default_rule_sources());
        let mut engine = Engine::new(rule_set, &EngineConfig::default());
        let mut alerts = Vec::new();
        for event in &events {
            engine.process(event, &mut alerts);
        }
        let fired: Vec<String> = alerts.iter().map(|alert| alert.output.clone()).collect();
        assert!(
            fired.is_empty(),
            "{recording} raised:\n{}",
            fired.join("\n")
        );
    }
}

/// The recordings do exercise the rules they must not trip: a rule that ignored package
/// managers or the recorded processes would fire on them.
#[test]
fn recordings_contain_what_the_tuned_rules_watch() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let apt = read_recording(&dir.join("apt_get_install.jsonl.gz"));
    let writes_below = |prefix: &str| {
        apt.iter().any(|event| match &event.payload {
            Payload::Open { fd, flags, .. } => fd.name.starts_with(prefix) && flags & 3 != 0,
            Payload::Link { target, .. } => target.starts_with(prefix),
            _ => false,
        })
    };
    assert!(writes_below("/usr/bin/"), "apt-get wrote no binary");
    assert!(
        writes_below("/var/lib/dpkg/"),
        "apt-get wrote no dpkg state"
    );
    let cargo = read_recording(&dir.join("cargo_build.jsonl.gz"));
    assert!(
        cargo
            .iter()
            .any(|event| event.kind == EventKind::Execve && event.process.name == "rustc")
    );
    assert!(
        cargo
            .iter()
            .any(|event| event.process.exepath.contains("/build/rec-hello-"))
    );
}

fn read_recording(path: &std::path::Path) -> Vec<Event> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .enumerate()
        .map(|(index, line)| {
            let line = line.unwrap();
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), index + 1))
        })
        .collect()
}
