//! `palisade firewall matrix|explain` end to end: state files written to a temporary
//! directory, the binary run on them, its JSON output checked.
//!
//! `netpol_cases_through_the_cli` reads the shared truth tables in `../shared/data/netpol`:
//! it skips with a message when they are absent, and fails in CI. Every case and step goes
//! through the CLI, also the flow cases whose peers are inline workloads (a namespace and
//! labels, no pod): each such peer becomes a pod of the flow's own STATE.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("run palisade")
}

/// A case's objects at one step, as the STATE file's documents.
#[derive(Default, Clone)]
struct CaseState {
    namespaces: BTreeMap<String, Value>,
    pods: BTreeMap<String, Value>,
    policies: BTreeMap<(String, String, String), Value>,
}

impl CaseState {
    fn new(cluster: &Value) -> CaseState {
        let mut state = CaseState::default();
        for namespace in cluster["namespaces"].as_array().into_iter().flatten() {
            let name = namespace["name"].as_str().unwrap().to_owned();
            state.namespaces.insert(
                name.clone(),
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": name, "labels": namespace["labels"]}}),
            );
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
            let key = format!(
                "{}/{}",
                pod["namespace"].as_str().unwrap(),
                pod["name"].as_str().unwrap()
            );
            state.pods.insert(
                key,
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": pod["name"], "namespace": pod["namespace"], "labels": pod["labels"]},
                       "spec": {"containers": [{"name": "c", "ports": ports}]},
                       "status": {"podIP": pod["ip"]}}),
            );
        }
        state
    }

    fn apply(&mut self, action: &Value) {
        let key = |kind: &Value, namespace: &Value, name: &Value| {
            (
                kind.as_str().unwrap_or_default().to_owned(),
                namespace.as_str().unwrap_or_default().to_owned(),
                name.as_str().unwrap_or_default().to_owned(),
            )
        };
        match action["op"].as_str().unwrap() {
            "create" | "update" => {
                let object = &action["object"];
                let metadata = &object["metadata"];
                self.policies.insert(
                    key(&object["kind"], &metadata["namespace"], &metadata["name"]),
                    object.clone(),
                );
            }
            "delete" => {
                let removed = self.policies.remove(&key(
                    &action["kind"],
                    &action["namespace"],
                    &action["name"],
                ));
                assert!(removed.is_some(), "delete of a missing object: {action}");
            }
            "delete_all_policies" => self.policies.clear(),
            "set_namespace_labels" => {
                let name = action["namespace"].as_str().unwrap();
                self.namespaces.insert(
                    name.to_owned(),
                    json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": name, "labels": action["labels"]}}),
                );
            }
            "set_pod_labels" => {
                let key = format!(
                    "{}/{}",
                    action["namespace"].as_str().unwrap(),
                    action["pod"].as_str().unwrap()
                );
                self.pods.get_mut(&key).unwrap()["metadata"]["labels"] = action["labels"].clone();
            }
            other => panic!("unknown action {other}"),
        }
    }

    /// The `--from`/`--to` argument of a flow's end `end`: its pod, its address, or, for an
    /// inline workload (`internal`: namespace and labels, no pod), pod `name` added to this
    /// state with its labels and address in its namespace (labelled), its container serving
    /// `port_name` (a named port the flow goes to) on port 8080.
    fn flow_end(
        &mut self,
        end: &Value,
        name: &str,
        port_name: Option<&str>,
        protocol: &str,
    ) -> String {
        if let Some(pod) = end["pod"].as_str() {
            return pod.to_owned();
        }
        let ip = end["ip"].as_str().unwrap();
        let Some(internal) = end.get("internal") else {
            return ip.to_owned();
        };
        let namespace = internal["namespace"].as_str().unwrap();
        self.namespaces
            .entry(namespace.to_owned())
            .or_insert_with(|| {
                json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": namespace, "labels": internal["namespace_labels"]}})
            });
        let ports: Vec<Value> = port_name
            .map(
                |port_name| json!({"name": port_name, "containerPort": 8080, "protocol": protocol}),
            )
            .into_iter()
            .collect();
        let key = format!("{namespace}/{name}");
        self.pods.insert(
            key.clone(),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": namespace, "labels": internal["pod_labels"]},
                   "spec": {"containers": [{"name": "c", "ports": ports}]},
                   "status": {"podIP": ip}}),
        );
        key
    }

    /// Multi-document YAML; each document is written in JSON (flow) style, which is YAML.
    fn write(&self, path: &Path) {
        let documents: Vec<String> = self
            .namespaces
            .values()
            .chain(self.pods.values())
            .chain(self.policies.values())
            .map(|document| format!("---\n{document}\n"))
            .collect();
        std::fs::write(path, documents.concat()).unwrap();
    }
}

#[test]
fn netpol_cases_through_the_cli() {
    let Some(dir) = palisade_testdata::shared_data("netpol") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let state_path = temp.path().join("state.yaml");
    let state_arg = state_path.to_str().unwrap();
    let flow_state_path = temp.path().join("flow-state.yaml");
    let flow_state_arg = flow_state_path.to_str().unwrap();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "json") && !path.ends_with("index.json")
        })
        .collect();
    paths.sort();
    let (mut n_cells, mut n_flows, mut cases_flows) = (0, 0, 0);
    let mut failures = Vec::new();
    for path in &paths {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let id = case["id"].as_str().unwrap();
        // Flow cases with inline workloads only have no cluster: an empty one.
        let mut state = CaseState::new(&case["cluster"]);
        for (step_idx, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            for action in step["actions"].as_array().into_iter().flatten() {
                state.apply(action);
            }
            state.write(&state_path);
            for probe in step["probes"].as_array().into_iter().flatten() {
                let port = probe["port"].to_string();
                let protocol = probe["protocol"].as_str().unwrap();
                let output = palisade(&[
                    "firewall",
                    "matrix",
                    "-f",
                    state_arg,
                    "--port",
                    &port,
                    "--protocol",
                    protocol,
                    "--output",
                    "json",
                ]);
                assert!(
                    output.status.success(),
                    "{id}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let got: Value = serde_json::from_slice(&output.stdout).unwrap();
                // The issue's shape: every ordered pair of the state's pods (self pairs too)
                // in each of the three tables, each cell a boolean.
                let pods: BTreeSet<&String> = state.pods.keys().collect();
                for table in ["combined", "ingress", "egress"] {
                    let rows = got[table]
                        .as_object()
                        .unwrap_or_else(|| panic!("{id}: no {table} table"));
                    assert_eq!(
                        rows.keys().collect::<BTreeSet<_>>(),
                        pods,
                        "{id} {table} rows"
                    );
                    for (from, row) in rows {
                        let row = row.as_object().unwrap();
                        assert_eq!(
                            row.keys().collect::<BTreeSet<_>>(),
                            pods,
                            "{id} {table} {from}: columns"
                        );
                        assert!(
                            row.values().all(Value::is_boolean),
                            "{id} {table} {from}: {row:?}"
                        );
                    }
                }
                for table in ["combined", "ingress", "egress"] {
                    let Some(expected) = probe[table].as_object() else {
                        continue;
                    };
                    for (from, row) in expected {
                        for (to, want) in row.as_object().unwrap() {
                            if want.is_null() {
                                continue;
                            }
                            n_cells += 1;
                            if &got[table][from][to] != want {
                                failures.push(format!(
                                    "{id} step {step_idx} {table} {port}/{protocol} {from} -> {to}: want {want}, got {}",
                                    got[table][from][to]
                                ));
                            }
                        }
                    }
                }
            }
            for flow in step["flows"].as_array().into_iter().flatten() {
                cases_flows += 1;
                // The flow's own state: the step's, with its inline workloads as pods.
                let mut flow_state = state.clone();
                let protocol = flow["protocol"].as_str().unwrap();
                let from = flow_state.flow_end(&flow["src"], "inline-src", None, protocol);
                let to = flow_state.flow_end(
                    &flow["dst"],
                    "inline-dst",
                    flow["port_name"].as_str(),
                    protocol,
                );
                flow_state.write(&flow_state_path);
                let mut args = vec![
                    "firewall".to_owned(),
                    "explain".into(),
                    "-f".into(),
                    flow_state_arg.into(),
                    "--from".into(),
                    from,
                    "--to".into(),
                    to,
                    "--protocol".into(),
                    flow["protocol"].as_str().unwrap().into(),
                    "--output".into(),
                    "json".into(),
                ];
                if let Some(port) = flow["port"].as_u64() {
                    args.extend(["--port".into(), port.to_string()]);
                }
                if let Some(name) = flow["port_name"].as_str() {
                    args.extend(["--port-name".into(), name.into()]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let output = palisade(&args);
                let got: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
                    panic!("{id}: {}", String::from_utf8_lossy(&output.stderr))
                });
                let want = flow["expect"]["allowed"].as_bool().unwrap();
                n_flows += 1;
                // Exit code 0 means allowed, 1 denied.
                let code_says_allowed = output.status.code() == Some(0);
                if got["allowed"] != json!(want) || code_says_allowed != want {
                    failures.push(format!(
                        "{id} step {step_idx} flow {}: want {want}, got {got}",
                        flow["name"]
                    ));
                }
            }
        }
    }
    println!(
        "CLI: {n_cells} cells and {n_flows} flows checked, {} mismatches",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        n_cells > 1000 && n_flows > 10,
        "too few checks: {n_cells} cells, {n_flows} flows"
    );
    assert_eq!(n_flows, cases_flows, "every flow of every case is checked");
}

const TIERS_STATE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  serviceAccountName: web
  containers: [{name: web, image: "nginx:1.27", ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: db, image: "postgres:16"}]}
status: {podIP: 10.0.0.3}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: pass-shop}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {team: shop}}}
  ingress:
  - name: pass-internal
    action: Pass
    from: [{namespaces: {matchLabels: {team: shop}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: http}]}]
---
apiVersion: palisade.dev/v1alpha1
kind: NetworkObject
metadata: {name: outside}
spec: {cidrs: [192.0.2.0/24]}
---
apiVersion: palisade.dev/v1alpha1
kind: NetworkObject
metadata: {name: nginx}
spec: {image: "nginx:*"}
---
apiVersion: palisade.dev/v1alpha1
kind: FirewallRule
metadata: {name: no-outside-to-nginx}
spec: {source: outside, destination: nginx, ports: [{port: 8080}], protocol: TCP, action: block, priority: 5}
"#;

#[test]
fn explain_names_the_tiers_that_decided() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("state.yaml");
    std::fs::write(&path, TIERS_STATE).unwrap();
    let file = path.to_str().unwrap();

    // Admin Pass, then the NetworkPolicy allows the named port.
    let output = palisade(&[
        "firewall", "explain", "-f", file, "--from", "shop/db", "--to", "shop/web", "--port",
        "8080", "--output", "json",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let explanation: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(explanation["allowed"], json!(true));
    assert_eq!(explanation["ingress"]["tier"], json!("network-policy"));
    assert_eq!(
        explanation["ingress"]["policy"],
        json!("NetworkPolicy shop/web-http")
    );
    assert_eq!(explanation["ingress"]["rule"], json!("ingress[0]"));
    assert_eq!(
        explanation["ingress"]["passed_by"],
        json!("AdminNetworkPolicy pass-shop ingress[0] \"pass-internal\"")
    );
    assert_eq!(explanation["egress"]["tier"], json!("default"));

    // Another port: isolated by the NetworkPolicy, exit code 1, text output.
    let output = palisade(&[
        "firewall", "explain", "-f", file, "--from", "10.0.0.3", "--to", "shop/web", "--port",
        "9090",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("verdict: denied\n"), "{text}");
    assert!(
        text.contains("isolated for ingress by NetworkPolicy shop/web-http"),
        "{text}"
    );

    // From outside: Palisade's block rule decides before any Kubernetes tier.
    let output = palisade(&[
        "firewall",
        "explain",
        "-f",
        file,
        "--from",
        "192.0.2.1",
        "--to",
        "shop/web",
        "--port",
        "8080",
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let explanation: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(explanation["ingress"]["tier"], json!("firewall"));
    assert_eq!(
        explanation["ingress"]["policy"],
        json!("FirewallRule no-outside-to-nginx")
    );

    // The matrix as a table.
    let output = palisade(&[
        "firewall", "matrix", "-f", file, "--port", "8080", "--output", "table",
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("combined (rows: from, columns: to)") && text.contains("shop/web"),
        "{text}"
    );
}

#[test]
fn bad_input_is_an_error_naming_object_and_field() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("state.yaml");
    let file = path.to_str().unwrap();
    let cases = [
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/40}}]}]\n",
            "NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}\n",
            "NetworkPolicy x/p: spec.podSelector.matchExpressions[0].operator: unknown operator",
        ),
        (
            "kind: Gateway\nmetadata: {name: g}\n",
            "document 1: kind: unknown kind \"Gateway\"",
        ),
        (
            "kind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelecter: {}}\n",
            "unknown field `podSelecter`",
        ),
        ("kind: [unclosed\n", "reading"),
        (
            "kind: FirewallRule\nmetadata: {name: r}\nspec: {source: a, destination: b, action: allow}\n",
            "FirewallRule r: spec.source: no network object named \"a\"",
        ),
    ];
    for (text, message) in cases {
        std::fs::write(&path, text).unwrap();
        let output = palisade(&["firewall", "matrix", "-f", file, "--port", "80"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(message),
            "{text}: expected {message:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = palisade(&[
        "firewall", "explain", "-f", file, "--from", "x/nope", "--to", "1.2.3.4", "--port", "80",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let output = palisade(&[
        "firewall",
        "matrix",
        "-f",
        "/nonexistent/state.yaml",
        "--port",
        "80",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/state.yaml"));
}
