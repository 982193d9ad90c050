//! `palisade baseline workloads --exceptions FILE [--no-annotation-waivers]`.

use std::process::Command;

use serde_json::Value;

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {team: payments}
  annotations: {palisade.io/waive: PAL-K8S-004}
spec:
  template:
    spec:
      hostNetwork: true
      containers:
      - name: app
        image: nginx:1.27
        securityContext: {privileged: true}
";

fn run(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("palisade runs");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stderr)))
}

fn finding_ids(document: &Value) -> Vec<String> {
    document["objects"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn exceptions_and_annotation_waivers() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let exceptions = dir.path().join("exceptions.json");
    std::fs::write(
        &exceptions,
        r#"[
          {"check": "PAL-K8S-001", "namespace": "shop", "labels": {"team": "payments"}, "container": "app",
           "reason": "vendor appliance", "owner": "platform", "expires_at": "2100-01-01T00:00:00Z"},
          {"check": "PAL-K8S-002", "reason": "expired", "owner": "platform", "expires_at": "2001-01-01T00:00:00Z"}
        ]"#,
    )
    .unwrap();
    let manifest = manifest.to_str().unwrap();
    let plain = run(&[
        "baseline",
        "workloads",
        "-f",
        manifest,
        "--output",
        "json",
        "--no-annotation-waivers",
    ]);
    let plain_ids = finding_ids(&plain);
    assert!(plain_ids.contains(&"PAL-K8S-001".to_owned()));
    assert!(plain_ids.contains(&"PAL-K8S-002".to_owned()));
    assert!(plain_ids.contains(&"PAL-K8S-004".to_owned()));

    let waived = run(&[
        "baseline",
        "workloads",
        "-f",
        manifest,
        "--output",
        "json",
        "--exceptions",
        exceptions.to_str().unwrap(),
    ]);
    let ids = finding_ids(&waived);
    assert!(!ids.contains(&"PAL-K8S-001".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"PAL-K8S-004".to_owned()), "{ids:?}");
    // The expired exception no longer applies.
    assert!(ids.contains(&"PAL-K8S-002".to_owned()), "{ids:?}");
    let reasons: Vec<&str> = waived["waived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["waived"]["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"vendor appliance"), "{reasons:?}");
    assert!(
        reasons.contains(&"annotation palisade.io/waive"),
        "{reasons:?}"
    );

    std::fs::write(&exceptions, "{\"check\": ").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "baseline",
            "workloads",
            "-f",
            manifest,
            "--exceptions",
            exceptions.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a JSON list of exceptions"),
        "{stderr}"
    );
}
