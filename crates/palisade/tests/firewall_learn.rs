//! `palisade firewall learn` → draft → `palisade firewall simulate`, through the built binary:
//! a recorded flows file (JSON lines, as the agent writes them) is learned from, the proposal
//! is saved as a draft beside the cluster's pods, and the recorded flows plus flows never seen
//! are replayed against it; the JSON report must list exactly the unseen ones as newly
//! blocked. Bad flow files are errors that name the file and the line.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const CLUSTER: &str = r#"
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
---
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web, pod-template-hash: aaa}}
status: {podIP: 10.0.0.11}
---
kind: Pod
metadata: {name: web-2, namespace: shop, labels: {app: web, pod-template-hash: bbb}}
status: {podIP: 10.0.0.12}
---
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
status: {podIP: 10.0.0.20}
"#;

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("run palisade")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A pod end as the agent records it.
fn pod(name: &str, app: &str, ip: &str) -> Value {
    json!({
        "namespace": "shop", "pod": name, "labels": {"app": app},
        "namespace_labels": {"kubernetes.io/metadata.name": "shop"}, "ip": ip,
    })
}

fn record(src: Value, dst: Value, port: u16, attempts: u64, blocked: bool) -> Value {
    json!({
        "src": src, "dst": dst, "protocol": "TCP", "port": port, "attempts": attempts,
        "blocked": blocked, "first_seen_ms": 1_700_000_000_000_i64,
        "last_seen_ms": 1_700_000_060_000_i64,
    })
}

fn write_flows(path: &Path, flows: &[Value]) {
    let lines: Vec<String> = flows.iter().map(Value::to_string).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// What the agent recorded during the learning window.
fn seen() -> Vec<Value> {
    let web_1 = pod("web-1", "web", "10.0.0.11");
    let web_2 = pod("web-2", "web", "10.0.0.12");
    let db = pod("db", "db", "10.0.0.20");
    vec![
        record(web_1.clone(), db.clone(), 5432, 40, false),
        record(web_2, db, 5432, 7, false),
        record(json!({"ip": "198.51.100.7"}), web_1, 8080, 3, false),
    ]
}

/// Flows the window never saw.
fn unseen() -> Vec<Value> {
    let web_1 = pod("web-1", "web", "10.0.0.11");
    let db = pod("db", "db", "10.0.0.20");
    vec![
        record(web_1.clone(), db.clone(), 22, 1, false),
        record(db, web_1.clone(), 8080, 1, false),
        record(web_1, json!({"ip": "192.0.2.10"}), 443, 2, false),
    ]
}

/// `src -> dst port` of a flow in the simulation's JSON.
fn describe(flow: &Value) -> String {
    let end = |end: &Value| match (end["namespace"].as_str(), end["pod"].as_str()) {
        (Some(namespace), Some(pod)) => format!("{namespace}/{pod}"),
        _ => end["ip"].as_str().unwrap().to_owned(),
    };
    format!(
        "{} -> {} {}",
        end(&flow["src"]),
        end(&flow["dst"]),
        flow["port"]
    )
}

#[test]
fn learn_then_simulate_blocks_exactly_the_unseen_flows() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("flows.jsonl");
    write_flows(&recorded, &seen());
    let recorded_arg = recorded.to_str().unwrap();

    // Palisade rules: one allow rule per observed workload pair, block rules for the rest.
    let rules = stdout_of(&palisade(&[
        "firewall",
        "learn",
        "--flows",
        recorded_arg,
        "--format",
        "palisade",
    ]));
    assert!(rules.contains("kind: FirewallRule"), "{rules}");
    assert!(!rules.contains("kind: NetworkPolicy"), "{rules}");
    assert_eq!(rules.matches("action: allow").count(), 2, "{rules}");
    assert!(rules.contains("198.51.100.7/32"), "{rules}");
    let policies = stdout_of(&palisade(&[
        "firewall",
        "learn",
        "--flows",
        recorded_arg,
        "--format",
        "network-policy",
    ]));
    assert!(policies.contains("kind: NetworkPolicy"), "{policies}");
    assert!(!policies.contains("kind: FirewallRule"), "{policies}");

    for (format, learned) in [("palisade", &rules), ("network-policy", &policies)] {
        let draft = dir.path().join(format!("draft-{format}.yaml"));
        std::fs::write(&draft, format!("{CLUSTER}\n---\n{learned}")).unwrap();
        let draft_arg = draft.to_str().unwrap();

        // The draft allows what was seen: 5432 to the db from both replicas.
        let matrix: Value = serde_json::from_str(&stdout_of(&palisade(&[
            "firewall", "matrix", "-f", draft_arg, "--port", "5432", "--output", "json",
        ])))
        .unwrap();
        assert_eq!(
            matrix["combined"]["shop/web-1"]["shop/db"], true,
            "{format}"
        );
        assert_eq!(
            matrix["combined"]["shop/web-2"]["shop/db"], true,
            "{format}"
        );
        assert_eq!(
            matrix["combined"]["shop/db"]["shop/web-1"], false,
            "{format}"
        );

        // Replay: the recorded flows are unchanged, every unseen one is newly blocked.
        let replay = dir.path().join("replay.jsonl");
        write_flows(&replay, &[seen(), unseen()].concat());
        let simulation: Value = serde_json::from_str(&stdout_of(&palisade(&[
            "firewall",
            "simulate",
            "--draft",
            draft_arg,
            "--flows",
            replay.to_str().unwrap(),
            "--output",
            "json",
        ])))
        .unwrap();
        assert_eq!(simulation["unchanged"], 3, "{format}: {simulation:#}");
        assert_eq!(simulation["newly_allowed"], json!([]), "{format}");
        let mut blocked: Vec<String> = simulation["newly_blocked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|change| describe(&change["flow"]))
            .collect();
        blocked.sort();
        assert_eq!(
            blocked,
            [
                "shop/db -> shop/web-1 8080",
                "shop/web-1 -> 192.0.2.10 443",
                "shop/web-1 -> shop/db 22",
            ],
            "{format}: {simulation:#}"
        );
        for change in simulation["newly_blocked"].as_array().unwrap() {
            assert!(
                change["decided_by"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{change}"
            );
        }
    }

    // Against the policy in force (the cluster with no policy: everything allowed), a flow
    // recorded as refused that the draft allows is newly allowed.
    let current = dir.path().join("current.yaml");
    std::fs::write(&current, CLUSTER).unwrap();
    let refused_before = dir.path().join("refused.jsonl");
    let mut flows = seen();
    flows[0]["blocked"] = json!(true);
    write_flows(&refused_before, &flows);
    let draft = dir.path().join("draft-palisade.yaml");
    let args = |with_current: bool| {
        let mut args = vec![
            "firewall",
            "simulate",
            "--draft",
            draft.to_str().unwrap(),
            "--flows",
            refused_before.to_str().unwrap(),
            "--output",
            "json",
        ];
        if with_current {
            args.extend(["--current", current.to_str().unwrap()]);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| -> Value {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serde_json::from_str(&stdout_of(&palisade(&args))).unwrap()
    };
    let from_records = run(args(false));
    assert_eq!(from_records["newly_allowed"].as_array().unwrap().len(), 1);
    assert_eq!(
        describe(&from_records["newly_allowed"][0]["flow"]),
        "shop/web-1 -> shop/db 5432"
    );
    let from_current = run(args(true));
    assert_eq!(from_current["newly_allowed"], json!([]), "{from_current:#}");
    assert_eq!(from_current["unchanged"], 3, "{from_current:#}");
}

#[test]
fn bad_flow_files_are_errors_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        format!(
            "{}\n{{\"src\": {{\"ip\": \"10.0.0.1\"}}, \"port\": \n",
            seen()[0]
        ),
    )
    .unwrap();
    let output = palisade(&["firewall", "learn", "--flows", broken.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("broken.jsonl line 2"),
        "the error names the file and line: {stderr}"
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let output = palisade(&["firewall", "learn", "--flows", empty.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no flows to learn from"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The recorded flows are from 2023: a one-hour window leaves none.
    let recorded = dir.path().join("flows.jsonl");
    write_flows(&recorded, &seen());
    let output = palisade(&[
        "firewall",
        "learn",
        "--flows",
        recorded.to_str().unwrap(),
        "--window",
        "1h",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("within the window"));

    let output = palisade(&[
        "firewall",
        "simulate",
        "--draft",
        dir.path().join("missing.yaml").to_str().unwrap(),
        "--flows",
        recorded.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("missing.yaml"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
