//! `palisade baseline host` and `palisade baseline services`: JSON and SARIF shape, exit codes,
//! not-applicable checks, hostile roots and the loopback-only probe guard.

use std::{fs, path::Path, process::Command};

use serde_json::Value;

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

fn write(root: &Path, path: &str, text: &str) {
    let real = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::write(real, text).unwrap();
}

fn result<'a>(document: &'a Value, id: &str) -> &'a Value {
    document["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

#[test]
fn host_json_reports_every_rule_with_status_and_evidence() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/ssh/sshd_config",
        "PermitRootLogin yes\nPasswordAuthentication no\n",
    );
    write(
        root.path(),
        "/etc/docker/daemon.json",
        "{\"icc\": false, \"userns-remap\": \"default\", \"live-restore\": true, \"no-new-privileges\": true}\n",
    );
    let (code, stdout, stderr) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["live"], false);
    let root_login = result(&document, "PAL-HOST-001");
    assert_eq!(root_login["status"], "fail");
    assert_eq!(root_login["severity"], "high");
    assert_eq!(root_login["category"], "os");
    assert_eq!(root_login["evidence"][0]["file"], "/etc/ssh/sshd_config");
    assert_eq!(root_login["evidence"][0]["line"], 1);
    assert_eq!(root_login["references"][0]["id"], "SSH-7408");
    assert_eq!(result(&document, "PAL-HOST-002")["status"], "pass");
    assert_eq!(result(&document, "PAL-HOST-040")["status"], "pass");
    // No kubelet, no containerd: not applicable, never pass.
    assert_eq!(
        result(&document, "PAL-HOST-050")["status"],
        "not_applicable"
    );
    assert_eq!(
        result(&document, "PAL-HOST-046")["status"],
        "not_applicable"
    );
    assert_eq!(document["results"].as_array().unwrap().len(), 55);
    assert!(document["summary"]["fail"].as_u64().unwrap() > 0);

    // Only high and critical failures count with --fail-on high; the root login one is high.
    let (code, ..) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--fail-on",
        "critical",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn host_sarif_and_table() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/var/lib/kubelet/config.yaml",
        "authorization:\n  mode: AlwaysAllow\n",
    );
    let (code, stdout, _) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "sarif",
    ]);
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 55);
    let always_allow = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["ruleId"] == "PAL-HOST-051")
        .unwrap();
    assert_eq!(always_allow["level"], "error");
    assert_eq!(
        always_allow["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    let (_, table, _) = palisade(&["baseline", "host", "--root", root.path().to_str().unwrap()]);
    assert!(table.contains("PAL-HOST-051"), "{table}");
    assert!(table.contains("55 checks:"), "{table}");
}

#[test]
fn hostile_roots_are_clear_errors() {
    let (code, _, stderr) = palisade(&["baseline", "host", "--root", "/nonexistent/root"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/root: cannot open the host root"),
        "{stderr}"
    );

    let root = tempfile::tempdir().unwrap();
    write(root.path(), "/etc/docker/daemon.json", "{\"icc\": ");
    fs::create_dir_all(root.path().join("etc/ssh")).unwrap();
    std::os::unix::fs::symlink("sshd_config", root.path().join("etc/ssh/sshd_config.loop"))
        .unwrap();
    std::os::unix::fs::symlink("sshd_config.loop", root.path().join("etc/ssh/sshd_config"))
        .unwrap();
    let (code, stdout, _) = palisade(&[
        "baseline",
        "host",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    let docker = result(&document, "PAL-HOST-040");
    assert_eq!(docker["status"], "error");
    assert!(
        docker["message"].as_str().unwrap().contains("invalid JSON"),
        "{docker}"
    );
    let ssh = result(&document, "PAL-HOST-001");
    assert_eq!(ssh["status"], "error");
    assert!(
        ssh["message"].as_str().unwrap().contains("symbolic links"),
        "{ssh}"
    );
}

#[test]
fn services_config_and_probe_guard() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "/etc/nginx/nginx.conf",
        "http {\n  server_tokens off;\n  autoindex on;\n}\n",
    );
    let (code, stdout, stderr) = palisade(&[
        "baseline",
        "services",
        "--root",
        root.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result(&document, "PAL-SVC-012")["status"], "pass");
    assert_eq!(result(&document, "PAL-SVC-013")["evidence"][0]["line"], 3);
    assert_eq!(result(&document, "PAL-SVC-001")["status"], "not_applicable");

    let (code, _, stderr) = palisade(&[
        "baseline",
        "services",
        "--root",
        root.path().to_str().unwrap(),
        "--probe",
        "--redis",
        "10.1.2.3:6379",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("refusing to probe 10.1.2.3:6379"),
        "{stderr}"
    );
}
