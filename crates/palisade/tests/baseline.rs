//! `palisade baseline workloads`: JSON and SARIF shape, exit codes, flags.

use std::{fs, path::Path, process::Command};

use serde_json::Value;

const SAFE_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: safe
  namespace: shop
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: app
    image: registry.example/app:1.2@sha256:0123456789abcdef
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 500m, memory: 128Mi}
    livenessProbe: {tcpSocket: {port: 8080}}
    readinessProbe: {tcpSocket: {port: 8080}}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
";

const PRIVILEGED_DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      hostNetwork: true
      containers:
      - name: app
        image: nginx
        securityContext:
          privileged: true
";

fn palisade(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("palisade runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn json_shape_and_pss_failure_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "deploy.yaml", PRIVILEGED_DEPLOYMENT);
    let (code, stdout, stderr) =
        palisade(&["baseline", "workloads", "-f", &file, "--output", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    let objects = document["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1);
    let object = &objects[0];
    assert_eq!(object["file"], file.as_str());
    assert_eq!(object["kind"], "Deployment");
    assert_eq!(object["name"], "web");
    assert!(object["namespace"].is_null());
    assert_eq!(object["pss"]["level"], "restricted");
    assert_eq!(object["pss"]["version"], "latest");
    assert_eq!(object["pss"]["allowed"], false);
    let checks: Vec<&str> = object["pss"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|violation| violation["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "hostNamespaces",
            "privileged",
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsNonRoot",
            "seccompProfile_restricted"
        ]
    );
    assert_eq!(
        object["pss"]["violations"][0]["message"],
        "host namespaces (hostNetwork=true)"
    );
    let privileged = object["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["id"] == "PAL-K8S-001")
        .expect("privileged finding");
    assert_eq!(privileged["severity"], "critical");
    assert_eq!(privileged["title"], "Privileged container");
    assert_eq!(
        privileged["evidence"]["path"],
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert_eq!(privileged["evidence"]["value"], "true");
    assert_eq!(privileged["evidence"]["file"], file.as_str());
    assert_eq!(privileged["evidence"]["line"], 13);
}

#[test]
fn clean_workload_exits_zero_and_fail_on_raises() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "pod.yaml", SAFE_POD);
    let (code, stdout, stderr) =
        palisade(&["baseline", "workloads", "-f", &file, "--output", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["objects"][0]["pss"]["allowed"], true);
    assert_eq!(document["objects"][0]["findings"], Value::Array(Vec::new()));

    // The Deployment passes baseline at v1.0 only without hostNetwork and privileged; with
    // --fail-on, its best-practice findings decide.
    let relaxed = PRIVILEGED_DEPLOYMENT
        .replace("      hostNetwork: true\n", "")
        .replace("privileged: true", "privileged: false");
    let file = write(dir.path(), "relaxed.yaml", &relaxed);
    let baseline = [
        "baseline",
        "workloads",
        "-f",
        &file,
        "--pss-level",
        "baseline",
        "--pss-version",
        "v1.0",
    ];
    let (code, _, stderr) = palisade(&baseline);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, _) = palisade(&[&baseline[..], &["--fail-on", "medium"]].concat());
    assert_eq!(code, 1, "untagged image is a medium finding");
    let (code, _, _) = palisade(&[&baseline[..], &["--fail-on", "critical"]].concat());
    assert_eq!(code, 0);
}

#[test]
fn errors_exit_two_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.yaml", "kind: Pod\nspec: [\n");
    let (code, stdout, stderr) =
        palisade(&["baseline", "workloads", "-f", &file, "--output", "json"]);
    assert_eq!(code, 2);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    let error = document["errors"][0].as_str().unwrap();
    assert!(error.starts_with(&format!("{file}:3:")), "{error}");
    assert!(stderr.contains("invalid YAML"), "{stderr}");

    let (code, _, stderr) = palisade(&[
        "baseline",
        "workloads",
        "-f",
        &file,
        "--pss-level",
        "extreme",
    ]);
    assert_eq!(code, 2, "clap rejects unknown levels");
    assert!(
        stderr.contains("unknown Pod Security Standards level"),
        "{stderr}"
    );
    let (code, _, stderr) = palisade(&[
        "baseline",
        "workloads",
        "-f",
        &file,
        "--pss-version",
        "v1.038",
    ]);
    assert_eq!(code, 2, "clap rejects malformed versions");
    assert!(
        stderr.contains("invalid Pod Security Standards version \"v1.038\""),
        "{stderr}"
    );
}

#[test]
fn versions_after_the_newest_known_are_checked_as_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "deploy.yaml", PRIVILEGED_DEPLOYMENT);
    for version in ["v1.38", "v1.99"] {
        let (code, stdout, stderr) = palisade(&[
            "baseline",
            "workloads",
            "-f",
            &file,
            "--pss-version",
            version,
            "--output",
            "json",
        ]);
        assert_eq!(code, 1, "{stderr}");
        let document: Value = serde_json::from_str(&stdout).unwrap();
        let pss = &document["objects"][0]["pss"];
        assert_eq!(pss["version"], version);
        assert_eq!(pss["resolved_version"], "v1.37");
        assert_eq!(pss["allowed"], false);
    }
}

#[test]
fn sarif_has_rules_and_located_results() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "deploy.yaml", PRIVILEGED_DEPLOYMENT);
    let (code, stdout, _) = palisade(&["baseline", "workloads", "-f", &file, "--output", "sarif"]);
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|rule| rule["id"] == "PAL-K8S-001"));
    assert!(rules.iter().any(|rule| rule["id"] == "pss/privileged"));
    let results = run["results"].as_array().unwrap();
    let privileged = results
        .iter()
        .find(|result| result["ruleId"] == "PAL-K8S-001")
        .unwrap();
    assert_eq!(privileged["level"], "error");
    let index = privileged["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[index]["id"], "PAL-K8S-001");
    let location = &privileged["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], file.as_str());
    assert_eq!(location["region"]["startLine"], 13);
    let pss = results
        .iter()
        .find(|result| result["ruleId"] == "pss/hostNamespaces")
        .unwrap();
    assert_eq!(
        pss["locations"][0]["physicalLocation"]["region"]["startLine"],
        8
    );
}

#[test]
fn table_summarises() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", SAFE_POD);
    write(dir.path(), "b.yml", PRIVILEGED_DEPLOYMENT);
    let (code, stdout, _) = palisade(&[
        "baseline",
        "workloads",
        "-f",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("PSS restricted: privileged"), "{stdout}");
    assert!(
        stdout.contains("2 workloads (0 other objects skipped): 1 not allowed by Pod Security Standards restricted latest"),
        "{stdout}"
    );
}
