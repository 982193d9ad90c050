//! `palisade rules validate` end to end: JSON shape, exit codes and error positions.

use std::process::Command;

fn validate(files: &[&std::path::Path], output: &str) -> (i32, serde_json::Value) {
    let result = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["rules", "validate", "--output", output])
        .args(files)
        .output()
        .expect("run palisade");
    let json = if output == "json" {
        serde_json::from_slice(&result.stdout).expect("JSON report")
    } else {
        serde_json::Value::String(String::from_utf8_lossy(&result.stdout).into_owned())
    };
    (result.status.code().expect("exit code"), json)
}

const GOOD: &str = r#"
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: Shell
  desc: a shell ran
  condition: spawned and proc.name in (shells)
  output: "shell %proc.name"
  priority: WARNING
- list: unused_things
  items: [a]
"#;

const BAD: &str = r#"- macro: spawned
  condition: evt.type in (execve, execveat)

- rule: Bad field
  desc: x
  condition: >
    spawned and
    proc.nme in (bash)
  output: "%proc.name"
  priority: WARNING

- rule: Bad macro
  desc: x
  condition: spawned and not_defined_macro
  output: "%proc.name"
  priority: WARNING

- rule: Good
  desc: x
  condition: spawned and proc.name = bash
  output: "shell %proc.name"
  priority: WARNING
"#;

#[test]
fn valid_file_reports_counts_and_warnings_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let (code, report) = validate(&[&path], "json");
    assert_eq!(code, 0);
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5);
    for key in ["rules", "macros", "lists", "warnings", "errors"] {
        assert!(keys.contains(&key), "missing key {key}");
    }
    assert_eq!(report["rules"], 1);
    assert_eq!(report["macros"], 1);
    assert_eq!(report["lists"], 2);
    assert_eq!(report["errors"], serde_json::json!([]));
    let warning = &report["warnings"][0];
    assert_eq!(warning["file"], path.display().to_string());
    assert_eq!(
        (warning["line"].as_u64(), warning["column"].as_u64()),
        (Some(11), Some(3))
    );
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("unused_things")
    );
}

#[test]
fn errors_exit_1_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, BAD).unwrap();
    let (code, report) = validate(&[&path], "json");
    assert_eq!(code, 1);
    assert_eq!(report["rules"], 3);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{report:#}");
    // `proc.nme` on the second line of the folded block scalar.
    assert_eq!(errors[0]["line"], 8);
    assert_eq!(errors[0]["column"], 5);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field 'proc.nme'")
    );
    // The undefined macro, 26 characters into its line.
    assert_eq!(errors[1]["line"], 14);
    assert_eq!(errors[1]["column"], 26);
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("not_defined_macro")
    );
}

/// A server does not start on broken rules: the error names the file, line and column.
#[test]
fn the_server_refuses_to_start_on_a_broken_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, BAD).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--insecure-http",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--rules")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:8:5", path.display())) && stderr.contains("proc.nme"),
        "{stderr}"
    );
}

#[test]
fn later_files_override_earlier_ones_in_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    let local = dir.path().join("local.yaml");
    std::fs::write(&base, GOOD).unwrap();
    std::fs::write(&local, "- list: shells\n  items: [zsh]\n  override:\n    items: append\n- rule: Missing\n  condition: and x\n  override:\n    condition: append\n").unwrap();
    let (code, report) = validate(&[&base, &local], "text");
    assert_eq!(code, 1);
    let text = report.as_str().unwrap();
    assert!(
        text.contains(&format!("{}:5:3: error: rule 'Missing'", local.display())),
        "{text}"
    );
    assert!(
        text.ends_with("1 rules, 1 macros, 2 lists loaded; 1 errors, 1 warnings\n"),
        "{text}"
    );
}

#[test]
fn falco_stable_rules_load_cleanly() {
    let Some(path) = palisade_testdata::shared_data("falco/falco_rules.yaml") else {
        return;
    };
    let (code, report) = validate(&[&path], "json");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        (
            report["rules"].as_u64(),
            report["macros"].as_u64(),
            report["lists"].as_u64()
        ),
        (Some(25), Some(87), Some(49))
    );
    assert_eq!(report["errors"], serde_json::json!([]));
}

/// A rules file using every field of Falco's syscall-source reference list (each argument
/// form included) validates without an error or a warning.
#[test]
fn every_falco_reference_field_validates() {
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/tests/data/every_falco_field.yaml"
    ));
    let (code, report) = validate(&[path], "json");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert_eq!(report["rules"].as_u64(), Some(12), "{report:#}");
}

#[test]
fn unreadable_file_is_an_error() {
    let (code, report) = validate(&[std::path::Path::new("/nonexistent/rules.yaml")], "json");
    assert_eq!(code, 1);
    assert_eq!(report["errors"][0]["file"], "/nonexistent/rules.yaml");
}

#[test]
fn default_rules_validate_cleanly() {
    let result = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["rules", "validate", "--defaults", "--output", "json"])
        .output()
        .expect("run palisade");
    assert_eq!(result.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&result.stdout).expect("JSON report");
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert!(report["rules"].as_u64().unwrap() >= 35, "{report}");
}

#[test]
fn audit_log_alerts_as_json_lines_and_bad_lines_fail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let secret_read = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/secrets/db-credentials","verb":"get","user":{"username":"alice@example.com","groups":["devs","system:authenticated"]},"sourceIPs":["192.0.2.10"],"userAgent":"kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46","objectRef":{"resource":"secrets","namespace":"shop","name":"db-credentials","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-28T23:44:00.000000Z","stageTimestamp":"2026-11-28T23:44:00.004000Z"}"#;
    std::fs::write(&log, format!("{secret_read}\n")).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["rules", "audit-log"])
            .arg(&log)
            .output()
            .expect("run palisade")
    };
    let result = run();
    assert_eq!(
        result.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let stdout = String::from_utf8(result.stdout).unwrap();
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(alerts[0]["rule"], "Secret read");
    assert_eq!(alerts[0]["category"], "high-risk-operation");
    assert_eq!(alerts[0]["mitre"], serde_json::json!(["T1552.007"]));
    assert_eq!(
        alerts[0]["output_fields"]["ka.target.name"],
        "db-credentials"
    );
    assert_eq!(alerts[0]["source"], "k8s_audit");

    std::fs::write(&log, format!("{secret_read}\n{{\"kind\":\"Pod\"}}\n")).unwrap();
    let result = run();
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&result.stdout).lines().count(), 1);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("audit event at line 2: kind 'Pod' is not an audit Event"),
        "{stderr}"
    );
}

/// `palisade rules fields` lists every field with its description; one the sensor does not
/// observe says why it is absent.
#[test]
fn fields_lists_every_field_and_why_some_are_absent() {
    let result = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["rules", "fields"])
        .output()
        .expect("run palisade");
    assert!(result.status.success());
    let stdout = String::from_utf8(result.stdout).unwrap();
    let described = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}\t")))
            .map(str::to_owned)
    };
    assert!(described("user.shell").unwrap().contains("/etc/passwd"));
    assert!(described("fd.name_changed").unwrap().contains("absent: "));
    assert!(!described("proc.fdopencount").unwrap().contains("absent: "));
    assert!(!described("proc.vmrss").unwrap().contains("absent: "));
    assert!(described("ka.verb").is_some());
    assert_eq!(described("proc.nope"), None);
    assert!(stdout.lines().count() > 250, "{}", stdout.lines().count());
}
