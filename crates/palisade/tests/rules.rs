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

#[test]
fn unreadable_file_is_an_error() {
    let (code, report) = validate(&[std::path::Path::new("/nonexistent/rules.yaml")], "json");
    assert_eq!(code, 1);
    assert_eq!(report["errors"][0]["file"], "/nonexistent/rules.yaml");
}
