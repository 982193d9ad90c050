//! `palisade scan`'s SARIF 2.1.0 and CycloneDX 1.5 output validated against the official JSON
//! schemas vendored in `tests/data/schemas` (see the README there), with Debian's
//! `python3-jsonschema`: a scan with findings in both formats and the inventory-only SBOM are
//! valid, and a deliberately broken copy of each is rejected, so that the check can fail.

use std::path::{Path, PathBuf};
use std::process::Command;

mod scan_fixture;
use scan_fixture::{json, scan_rootfs, vulnerable_root_and_db};

const SARIF_SCHEMA: &str = "sarif-2.1.0-rtm.5.json";
const CYCLONEDX_SCHEMA: &str = "bom-1.5.schema.json";

/// The validator Debian's python3-jsonschema runs with (scripts/test installs it).
const PYTHON: &str = "/usr/bin/python3";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/schemas")
}

/// Whether the validator can run here; under CI it must.
fn validator_available() -> bool {
    let available = Command::new(PYTHON)
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !available {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{PYTHON} with jsonschema (Debian's python3-jsonschema) is required under CI"
        );
        eprintln!("skipped: {PYTHON} has no jsonschema module (apt install python3-jsonschema)");
    }
    available
}

/// The schema errors of `document` (one line each, naming the value's path); empty if valid.
fn schema_errors(schema: &str, document: &serde_json::Value, scratch: &Path) -> Vec<String> {
    let path = scratch.join("document.json");
    std::fs::write(&path, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    let output = Command::new(PYTHON)
        .arg(schemas_dir().join("validate.py"))
        .arg(schema)
        .arg(&path)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    match output.status.code() {
        Some(0) => Vec::new(),
        Some(1) => stdout.lines().map(str::to_owned).collect(),
        _ => panic!("validate.py {schema} failed: {output:?}"),
    }
}

fn assert_valid(schema: &str, document: &serde_json::Value, scratch: &Path) {
    let errors = schema_errors(schema, document, scratch);
    assert!(errors.is_empty(), "invalid against {schema}: {errors:#?}");
}

/// `palisade scan rootfs ROOT --db DB --output FORMAT` (plus `extra`), which must succeed.
fn scan_output(root: &Path, db: &Path, format: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--db", db.to_str().unwrap(), "--output", format];
    args.extend_from_slice(extra);
    let output = scan_rootfs(root.to_str().unwrap(), &args);
    assert!(output.status.success(), "{output:?}");
    json(&output)
}

#[test]
fn sarif_and_cyclonedx_output_is_valid_against_the_official_schemas() {
    if !validator_available() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let Some((root, db)) = vulnerable_root_and_db(temp.path()) else {
        return;
    };

    let sarif = scan_output(&root, &db, "sarif", &[]);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty(), "the fixture has findings: {sarif}");
    assert_valid(SARIF_SCHEMA, &sarif, temp.path());

    let bom = scan_output(&root, &db, "cyclonedx", &[]);
    let vulnerabilities = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulnerabilities.len(), results.len());
    assert_valid(CYCLONEDX_SCHEMA, &bom, temp.path());

    let sbom = scan_output(&root, &db, "cyclonedx", &["--inventory-only"]);
    assert!(!sbom["components"].as_array().unwrap().is_empty(), "{sbom}");
    assert_valid(CYCLONEDX_SCHEMA, &sbom, temp.path());

    // The check can fail: a result without its message, a rating with a severity CycloneDX
    // does not define, each named by the path of the value that is wrong.
    let mut broken_sarif = sarif.clone();
    broken_sarif["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    let errors = schema_errors(SARIF_SCHEMA, &broken_sarif, temp.path());
    assert!(
        errors
            .iter()
            .any(|error| error.starts_with("/runs/0/results/0:")
                && error.contains("'message' is a required property")),
        "{errors:#?}"
    );
    let mut broken_bom = bom.clone();
    broken_bom["vulnerabilities"][0]["ratings"][0]["severity"] = "catastrophic".into();
    let errors = schema_errors(CYCLONEDX_SCHEMA, &broken_bom, temp.path());
    assert!(
        errors
            .iter()
            .any(|error| error.starts_with("/vulnerabilities/0/ratings/0/severity:")),
        "{errors:#?}"
    );
}
