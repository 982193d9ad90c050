//! Runs every `netpol-case/v1` truth table in `../shared/data/netpol` (see its FORMAT.md)
//! through the engine: every matrix cell (combined, and ingress/egress when given; `null`
//! cells skipped) and every single-flow expectation, step by step.
//!
//! Reads shared data: skips with a message when it is absent, fails in CI.

use std::collections::BTreeMap;
use std::path::Path;

use palisade_firewall::{Endpoint, Engine, Flow, Labels, Probe, Protocol, State, Workload, matrix};
use serde_json::{Value, json};

#[test]
fn netpol_truth_tables() {
    let Some(dir) = palisade_testdata::shared_data("netpol") else {
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "json") && !path.ends_with("index.json")
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {}", dir.display());

    let mut failures = Vec::new();
    let (mut total_cells, mut total_flows) = (0, 0);
    for path in &paths {
        let outcome = run_case(path);
        println!(
            "{}: {} cells, {} flows checked, {} mismatches",
            outcome.id,
            outcome.cells,
            outcome.flows,
            outcome.failures.len()
        );
        total_cells += outcome.cells;
        total_flows += outcome.flows;
        failures.extend(outcome.failures);
    }
    println!(
        "{} cases: {total_cells} cells and {total_flows} flows checked, {} mismatches",
        paths.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert!(total_cells + total_flows > 0);
}

struct Outcome {
    id: String,
    cells: usize,
    flows: usize,
    failures: Vec<String>,
}

/// The case's cluster as Kubernetes documents.
fn cluster_documents(cluster: &Value) -> Vec<Value> {
    let mut documents = Vec::new();
    for namespace in cluster["namespaces"].as_array().into_iter().flatten() {
        documents.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace["name"], "labels": namespace["labels"]},
        }));
    }
    for pod in cluster["pods"].as_array().into_iter().flatten() {
        let ports: Vec<Value> = pod["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|port| {
                let mut container_port =
                    json!({"containerPort": port["port"], "protocol": port["protocol"]});
                if let Some(name) = port["name"].as_str() {
                    container_port["name"] = json!(name);
                }
                container_port
            })
            .collect();
        documents.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod["name"], "namespace": pod["namespace"], "labels": pod["labels"]},
            "spec": {"containers": [{"name": "c", "image": "agnhost", "ports": ports}]},
            "status": {"podIP": pod["ip"]},
        }));
    }
    documents
}

fn labels(value: &Value) -> Labels {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

fn endpoint(state: &State, value: &Value) -> Endpoint {
    if let Some(pod) = value["pod"].as_str() {
        return state.endpoint(pod).unwrap();
    }
    let ip = value["ip"].as_str().map(|ip| ip.parse().unwrap());
    match value.get("internal") {
        Some(internal) if !internal.is_null() => Endpoint::Workload(Box::new(Workload {
            namespace: internal["namespace"].as_str().unwrap().to_owned(),
            labels: labels(&internal["pod_labels"]),
            namespace_labels: labels(&internal["namespace_labels"]),
            ip,
        })),
        _ => Endpoint::Ip(ip.expect("an external peer has an ip")),
    }
}

fn apply_action(state: &mut State, action: &Value) {
    match action["op"].as_str().unwrap() {
        "create" | "update" => state.apply(&action["object"]).unwrap(),
        "delete" => {
            assert!(state.delete(
                action["kind"].as_str().unwrap(),
                action["namespace"].as_str(),
                action["name"].as_str().unwrap()
            ));
        }
        "delete_all_policies" => state.delete_all_policies(),
        "set_namespace_labels" => {
            state.set_namespace_labels(
                action["namespace"].as_str().unwrap(),
                labels(&action["labels"]),
            );
        }
        "set_pod_labels" => state
            .set_pod_labels(
                action["namespace"].as_str().unwrap(),
                action["pod"].as_str().unwrap(),
                labels(&action["labels"]),
            )
            .unwrap(),
        other => panic!("unknown action {other}"),
    }
}

fn run_case(path: &Path) -> Outcome {
    let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(case["format"], "netpol-case/v1");
    let id = case["id"].as_str().unwrap().to_owned();
    let mut outcome = Outcome {
        id: id.clone(),
        cells: 0,
        flows: 0,
        failures: Vec::new(),
    };
    let mut state = State::new();
    for document in cluster_documents(&case["cluster"]) {
        state.apply(&document).unwrap();
    }
    for (step_idx, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        for action in step["actions"].as_array().into_iter().flatten() {
            apply_action(&mut state, action);
        }
        let engine = Engine::new(&state).unwrap();
        for probe in step["probes"].as_array().into_iter().flatten() {
            let protocol: Protocol = probe["protocol"].as_str().unwrap().parse().unwrap();
            let port = probe["port"].as_u64().map(|port| port as u16);
            let result = matrix(
                &engine,
                &Probe {
                    protocol,
                    port,
                    port_name: None,
                },
            );
            let index: BTreeMap<&str, usize> = result
                .pods
                .iter()
                .enumerate()
                .map(|(idx, pod)| (pod.as_str(), idx))
                .collect();
            for (table, cells) in [
                ("combined", &result.combined),
                ("ingress", &result.ingress),
                ("egress", &result.egress),
            ] {
                let Some(expected) = probe[table].as_object() else {
                    continue;
                };
                for (from, row) in expected {
                    for (to, cell) in row.as_object().unwrap() {
                        let Some(want) = cell.as_bool() else {
                            continue;
                        };
                        let got = cells[index[from.as_str()]][index[to.as_str()]];
                        outcome.cells += 1;
                        if got != want {
                            outcome.failures.push(format!(
                                "{id} step {step_idx} {table} {port:?}/{protocol} {from} -> {to}: want {want}, got {got}"
                            ));
                        }
                    }
                }
            }
        }
        for flow in step["flows"].as_array().into_iter().flatten() {
            let query = Flow {
                src: endpoint(&state, &flow["src"]),
                dst: endpoint(&state, &flow["dst"]),
                protocol: flow["protocol"].as_str().unwrap().parse().unwrap(),
                port: flow["port"].as_u64().map(|port| port as u16),
                port_name: flow["port_name"].as_str().map(str::to_owned),
            };
            let want = flow["expect"]["allowed"].as_bool().unwrap();
            let verdict = engine.evaluate(&query);
            outcome.flows += 1;
            if verdict.allowed != want {
                outcome.failures.push(format!(
                    "{id} step {step_idx} flow {}: want {want}, got {} ({})",
                    flow["name"],
                    verdict.allowed,
                    engine.explain(&query).to_string().replace('\n', "; ")
                ));
            }
        }
    }
    outcome
}
