//! What a default rule's alert carries: category, MITRE techniques, suggested response,
//! response actions (only when allowlisted), `ka.*` evidence; and user exceptions appended to a
//! default rule.

use palisade_event::Event;
use palisade_rules::{
    Alert, Category, Engine, EngineConfig, ResponseAction, RuleSet, RuleSource,
    default_rule_sources,
};

use crate::support::{diagnostics, ev};

fn alerts_for(config: &EngineConfig, extra: Option<&str>, events: &[Event]) -> Vec<Alert> {
    let mut sources = default_rule_sources();
    if let Some(text) = extra {
        sources.push(RuleSource {
            name: "local.yaml".into(),
            text: text.into(),
        });
    }
    let rule_set = RuleSet::load(&sources);
    assert_eq!(diagnostics(&rule_set), "");
    let mut engine = Engine::new(rule_set, config);
    let mut alerts = Vec::new();
    for event in events {
        engine.process(event, &mut alerts);
    }
    alerts
}

fn miner() -> Event {
    ev(
        r#"{"kind":"execve","timestamp_ns":1000,"process":{"pid":42,"name":"xmrig","exepath":"/opt/xmrig","args":["-o","stratum+tcp://pool:3333"]}}"#,
    )
}

#[test]
fn alerts_carry_category_technique_and_suggestion() {
    let alerts = alerts_for(&EngineConfig::default(), None, &[miner()]);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.rule, "Crypto miner launched");
    assert_eq!(alert.category, Some(Category::Malware));
    assert_eq!(alert.mitre_techniques, ["T1496"]);
    assert_eq!(alert.source, "syscall");
    assert!(
        alert
            .suggested_response
            .as_deref()
            .unwrap()
            .starts_with("Kill the process")
    );
    assert_eq!(
        alert.output,
        "Crypto miner launched (process=xmrig -o stratum+tcp://pool:3333 exe=/opt/xmrig parent=<NA> user=<NA> container=host image=<NA>)"
    );
}

#[test]
fn response_actions_are_off_unless_the_rule_is_allowlisted() {
    let alerts = alerts_for(&EngineConfig::default(), None, &[miner()]);
    assert!(alerts[0].response_actions.is_empty());

    let config = EngineConfig {
        response_allowlist: ["Crypto miner launched".to_owned()].into(),
        ..EngineConfig::default()
    };
    let alerts = alerts_for(&config, None, &[miner()]);
    assert_eq!(alerts[0].response_actions, [ResponseAction::KillProcess]);

    // Allowlisting a rule that requests nothing enables nothing.
    let config = EngineConfig {
        response_allowlist: ["Terminal shell in container".to_owned()].into(),
        ..EngineConfig::default()
    };
    let shell =
        ev(r#"{"kind":"execve","process":{"name":"bash","tty":34816},"container":{"id":"abc"}}"#);
    let alerts = alerts_for(&config, None, &[shell]);
    assert_eq!(alerts[0].rule, "Terminal shell in container");
    assert!(alerts[0].response_actions.is_empty());

    // A user file can request an action for a default rule by appending a tag.
    let extra = "- rule: Terminal shell in container\n  tags: [response.kill_process]\n  override:\n    tags: append\n";
    let shell =
        ev(r#"{"kind":"execve","process":{"name":"bash","tty":34816},"container":{"id":"abc"}}"#);
    let alerts = alerts_for(&config, Some(extra), &[shell]);
    assert_eq!(alerts[0].response_actions, [ResponseAction::KillProcess]);
}

#[test]
fn user_exceptions_apply_to_default_rules() {
    let extra = r#"
- rule: Contact Kubernetes API server from container
  exceptions:
    - name: operators
      fields: [container.image.repository, proc.name]
      values:
        - [quay.io/example/operator, manager]
  override:
    exceptions: append
"#;
    let connect = |image: &str, name: &str| {
        ev(&format!(
            r#"{{"kind":"connect","process":{{"name":"{name}"}},"container":{{"id":"c1","image":"{image}"}},
               "payload":{{"type":"network","fd":{{"num":3,"kind":"ipv4","socket":{{"protocol":"tcp",
               "remote_addr":"10.96.0.1","remote_port":443,"connected":true}}}}}}}}"#
        ))
    };
    let events = [
        connect("quay.io/example/operator:v2", "manager"),
        connect("quay.io/example/operator:v2", "sh"),
        connect("docker.io/library/alpine:3.20", "manager"),
    ];
    let fired: Vec<String> = alerts_for(&EngineConfig::default(), Some(extra), &events)
        .iter()
        .map(|alert| alert.output.split(" (").nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        fired,
        [
            "connection=:0->10.96.0.1:443 process=sh user=<NA> container= image=quay.io/example/operator pod=<NA> namespace=<NA>)",
            "connection=:0->10.96.0.1:443 process=manager user=<NA> container= image=docker.io/library/alpine pod=<NA> namespace=<NA>)",
        ]
    );
}

/// The first audit event of the "privileged hostPath pod" scenario.
fn privileged_host_path_pod_audit_event() -> Event {
    let body = include_str!("../../scenarios/k8s_audit.yaml");
    let scenarios = palisade_rules::parse_scenarios("k8s_audit.yaml", body).unwrap();
    let scenario = scenarios
        .iter()
        .find(|s| s.name == "privileged hostPath pod")
        .unwrap();
    palisade_k8saudit::audit_event(scenario.audit[0].clone()).unwrap()
}

#[test]
fn audit_alerts_render_ka_fields() {
    let event = privileged_host_path_pod_audit_event();
    let alerts = alerts_for(&EngineConfig::default(), None, &[event]);
    let outputs: Vec<(&str, &str)> = alerts
        .iter()
        .map(|alert| (alert.rule.as_str(), alert.output.as_str()))
        .collect();
    assert_eq!(
        outputs,
        [
            (
                "Privileged pod created",
                "Privileged pod created (user=alice@example.com pod=rooter namespace=default images=docker.io/library/alpine:3.20,registry.example.com:5000/tools/logger:1.2 privileged=true,false)"
            ),
            (
                "Pod sharing host namespaces created",
                "Pod sharing host namespaces created (user=alice@example.com pod=rooter namespace=default hostNetwork=<NA> hostPID=true hostIPC=<NA> images=docker.io/library/alpine:3.20,registry.example.com:5000/tools/logger:1.2)"
            ),
            (
                "HostPath pod created",
                "Pod with hostPath volume created (user=alice@example.com pod=rooter namespace=default paths=/ images=docker.io/library/alpine:3.20,registry.example.com:5000/tools/logger:1.2)"
            ),
            (
                "Pod mounting sensitive host path created",
                "Pod mounting a sensitive host path created (user=alice@example.com pod=rooter namespace=default paths=/ images=docker.io/library/alpine:3.20,registry.example.com:5000/tools/logger:1.2)"
            ),
        ]
    );
    assert!(alerts.iter().all(|alert| alert.source == "k8s_audit"));
    assert_eq!(alerts[3].category, Some(Category::Escape));
    // Every field the rule used is evidence, with its value.
    assert!(alerts[0].fields.contains(&(
        "ka.req.pod.containers.privileged".to_owned(),
        "true,false".to_owned()
    )));
}

/// The json plugin's fields as the k8saudit plugin's own rules file uses them:
/// `jevt.rawtime exists` as an always-true audit macro, `jevt.value[/stage]`, the `json.*`
/// names, and `%jevt.obj` in an output.
#[test]
fn json_plugin_fields_of_the_k8saudit_rules_file() {
    let event = privileged_host_path_pod_audit_event();
    let rules = r#"
- required_plugin_versions:
  - name: k8saudit
    version: 0.7.0
    alternatives:
      - name: k8saudit-eks
        version: 0.4.0
  - name: json
    version: 0.7.0
- macro: k8s_audit_always_true
  condition: (jevt.rawtime exists)
- macro: k8s_audit_never_true
  condition: (jevt.rawtime=0)
- rule: Every completed audit event
  desc: d
  condition: jevt.value[/stage] = ResponseComplete and k8s_audit_always_true and not k8s_audit_never_true and json.value[/verb] = create and json.rawtime > 1700000000000000000 and evt.pluginname = k8saudit
  output: "audit %ka.verb at %jevt.rawtime"
  priority: INFO
  source: k8s_audit
- rule: Whole audit object
  desc: d
  condition: jevt.obj contains "\"verb\":\"create\"" and json.obj = val(jevt.obj)
  output: "obj %ka.verb"
  priority: INFO
  source: k8s_audit
"#;
    let rule_set = RuleSet::load(&[RuleSource {
        name: "audit.yaml".into(),
        text: rules.into(),
    }]);
    assert!(rule_set.errors().is_empty(), "{}", diagnostics(&rule_set));
    let mut engine = Engine::new(rule_set, &EngineConfig::default());
    let mut alerts = Vec::new();
    engine.process(&event, &mut alerts);
    let outputs: Vec<&str> = alerts.iter().map(|alert| alert.output.as_str()).collect();
    assert_eq!(
        outputs,
        [
            format!("audit create at {}", event.timestamp_ns).as_str(),
            "obj create"
        ]
    );
}
