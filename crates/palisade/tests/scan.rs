//! `palisade scan`, run as a built binary: a root filesystem with old Python, Rust and Go
//! packages matched against the shared PyPI, RustSec and Go databases, every output format
//! checked structurally, `--fail-on`, `--inventory-only`, and errors.

use palisade_testdata::rpm::{modular_rpmdb, rpm_root};
use palisade_testdata::{PodmanContainer, run_checked};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod scan_fixture;
use scan_fixture::{
    import_feeds, import_shared_records, json, palisade, scan_rootfs, vulnerable_root,
    vulnerable_root_and_db, write,
};

/// The CycloneDX SBOM of `palisade scan rootfs ROOT --inventory-only`.
fn inventory_sbom(root: &str) -> serde_json::Value {
    json(&scan_rootfs(
        root,
        &["--inventory-only", "--output", "cyclonedx"],
    ))
}

/// The JSON inventory of `palisade scan rootfs ROOT --inventory-only`.
fn inventory_json(root: &Path) -> serde_json::Value {
    json(&scan_rootfs(
        root.to_str().unwrap(),
        &["--inventory-only", "--output", "json"],
    ))
}

#[test]
fn scan_matches_python_rust_and_go_packages_in_every_format() {
    let temp = tempfile::tempdir().unwrap();
    let Some((root, db)) = vulnerable_root_and_db(temp.path()) else {
        return;
    };
    let root_arg = root.to_str().unwrap();
    let db_arg = db.to_str().unwrap();

    // JSON: the documented schema.
    let output = scan_rootfs(root_arg, &["--db", db_arg, "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    assert_eq!(report["schema"], "palisade.scan/v1");
    assert_eq!(report["target"]["kind"], "rootfs");
    let findings = report["findings"].as_array().unwrap();
    let find = |package: &str, id: &str| {
        findings
            .iter()
            .find(|finding| {
                finding["package"]["name"] == package
                    && (finding["id"] == id
                        || finding["aliases"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|alias| alias == id))
            })
            .unwrap_or_else(|| panic!("no {id} for {package} in {findings:#?}"))
    };
    let jinja = find("Jinja2", "PYSEC-2019-217");
    assert_eq!(jinja["installed_version"], "2.10");
    assert_eq!(jinja["package"]["ecosystem"], "PyPI");
    assert_eq!(jinja["package"]["purl"], "pkg:pypi/jinja2@2.10");
    assert_eq!(
        jinja["location"]["path"],
        "/usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA"
    );
    assert!(
        jinja["fix"]
            .as_str()
            .unwrap()
            .starts_with("pip install 'Jinja2>="),
        "{jinja}"
    );
    assert!(!jinja["fixed_versions"].as_array().unwrap().is_empty());
    let smallvec = find("smallvec", "RUSTSEC-2019-0009");
    assert_eq!(smallvec["package"]["ecosystem"], "crates.io");
    assert!(
        smallvec["fix"]
            .as_str()
            .unwrap()
            .starts_with("cargo update -p smallvec --precise "),
        "{smallvec}"
    );
    if Path::new("/usr/sbin/runc").exists() {
        let stdlib = findings
            .iter()
            .find(|finding| {
                finding["package"]["name"] == "stdlib"
                    && finding["location"]["path"] == "/usr/sbin/runc"
            })
            .expect("Go 1.19.8's standard library has known vulnerabilities");
        assert!(stdlib["id"].as_str().unwrap().starts_with("GO-"));
        assert!(
            stdlib["fix"]
                .as_str()
                .unwrap()
                .starts_with("upgrade Go to go1.")
        );
    }
    for finding in findings {
        for key in ["id", "severity", "installed_version", "location", "package"] {
            assert!(!finding[key].is_null(), "{key} missing in {finding}");
        }
    }
    let n_findings = findings.len();
    assert_eq!(report["summary"]["findings"], n_findings);

    // SARIF 2.1.0: the required properties.
    let sarif = json(&scan_rootfs(
        root_arg,
        &["--db", db_arg, "--output", "sarif"],
    ));
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "palisade");
    let rule_ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), n_findings);
    for result in results {
        assert!(rule_ids.contains(&result["ruleId"].as_str().unwrap()));
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(!uri.starts_with('/'), "{uri}");
    }

    // CycloneDX 1.5: components and vulnerabilities referring to them.
    let bom = json(&scan_rootfs(
        root_arg,
        &["--db", db_arg, "--output", "cyclonedx"],
    ));
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    assert!(
        bom["serialNumber"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:")
    );
    let components = bom["components"].as_array().unwrap();
    let refs: Vec<&str> = components
        .iter()
        .map(|component| component["bom-ref"].as_str().unwrap())
        .collect();
    assert!(
        components
            .iter()
            .all(|component| component["type"] == "library"
                && component["purl"].as_str().unwrap().starts_with("pkg:"))
    );
    let vulnerabilities = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulnerabilities.len(), n_findings);
    for vulnerability in vulnerabilities {
        assert!(refs.contains(&vulnerability["affects"][0]["ref"].as_str().unwrap()));
        assert!(vulnerability["ratings"][0]["severity"].is_string());
    }

    // --fail-on: exit 1 once a finding reaches the level.
    let output = scan_rootfs(root_arg, &["--db", db_arg, "--fail-on", "low"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("PYSEC-2019-217") || table.contains("Jinja2"),
        "{table}"
    );
    assert!(table.contains(&format!("{n_findings} findings")), "{table}");
}

#[test]
fn inventory_only_prints_packages_and_an_sbom() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    vulnerable_root(&root);
    let root_arg = root.to_str().unwrap();
    let output = scan_rootfs(root_arg, &["--inventory-only", "--output", "json"]);
    assert!(output.status.success(), "{output:?}");
    let inventory = json(&output);
    assert_eq!(inventory["schema"], "palisade.inventory/v1");
    let purls: Vec<&str> = inventory["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["purl"].as_str().unwrap())
        .collect();
    assert!(purls.contains(&"pkg:pypi/jinja2@2.10"), "{purls:?}");
    assert!(purls.contains(&"pkg:cargo/smallvec@0.6.9"), "{purls:?}");
    let bom = inventory_sbom(root_arg);
    assert_eq!(bom["specVersion"], "1.5");
    assert_eq!(bom["components"].as_array().unwrap().len(), purls.len());
    assert!(bom.get("vulnerabilities").is_none());
}

/// A Debian 12 root whose binaries differ from their source packages in version (a binNMU)
/// or in name and version (an epoch only the binary has), matched against a Debian tracker
/// file written here: both are found by their source's version, reported under the binary
/// name with the binary's fix, and the source is in the JSON and the CycloneDX SBOM.
#[test]
fn debian_binaries_are_matched_by_their_source_package() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    write(
        &root,
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    write(
        &root,
        "var/lib/dpkg/status",
        "Package: bash\nStatus: install ok installed\nArchitecture: amd64\n\
         Source: bash (5.2.15-2)\nVersion: 5.2.15-2+b8\n\n\
         Package: bsdutils\nStatus: install ok installed\nArchitecture: amd64\n\
         Source: util-linux (2.38.1-5+deb12u3)\nVersion: 1:2.38.1-5+deb12u3\n\n\
         Package: bc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.07.1-3\n\n\
         Package: linux-image-6.1.0-18-amd64\nStatus: install ok installed\nArchitecture: amd64\n\
         Source: linux-signed-amd64 (6.1.76+1)\nVersion: 6.1.76-1\n",
    );
    let tracker = temp.path().join("tracker.json");
    std::fs::write(
        &tracker,
        r#"{"bash": {"CVE-2099-2000": {"releases": {"bookworm":
              {"status": "resolved", "fixed_version": "5.2.15-2+deb12u1", "urgency": "medium"}}}},
            "util-linux": {"CVE-2099-2001": {"releases": {"bookworm":
              {"status": "resolved", "fixed_version": "2.38.1-5+deb12u4", "urgency": "medium"}}}},
            "bc": {"CVE-2099-2003": {"releases": {"bookworm":
              {"status": "resolved", "fixed_version": "1.07.1-3", "urgency": "low"}}}},
            "linux": {"CVE-2099-2004": {"releases": {"bookworm":
              {"status": "resolved", "fixed_version": "6.1.90-1", "urgency": "high"}}}}}"#,
    )
    .unwrap();
    let db = temp.path().join("vulndb.sqlite");
    let (db_arg, root_arg) = (db.to_str().unwrap(), root.to_str().unwrap());
    import_feeds(db_arg, &[tracker.to_str().unwrap()]);
    let output = scan_rootfs(root_arg, &["--db", db_arg, "--output", "json"]);
    let report = json(&output);
    let found: Vec<(&str, &str, &str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["id"].as_str().unwrap(),
                finding["package"]["name"].as_str().unwrap(),
                finding["package"]["source_version"].as_str().unwrap_or("-"),
                finding["fix"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            // The signed kernel image (source `linux-signed-amd64 6.1.76+1`) is matched as
            // the `linux` 6.1.76-1 it signs; findings come highest severity first.
            (
                "CVE-2099-2004",
                "linux-image-6.1.0-18-amd64",
                "6.1.76+1",
                "apt-get install --only-upgrade linux-image-6.1.0-18-amd64=6.1.90-1"
            ),
            (
                "CVE-2099-2000",
                "bash",
                "5.2.15-2",
                "apt-get install --only-upgrade bash=5.2.15-2+deb12u1"
            ),
            (
                "CVE-2099-2001",
                "bsdutils",
                "2.38.1-5+deb12u3",
                "apt-get install --only-upgrade bsdutils=1:2.38.1-5+deb12u4"
            ),
        ],
        "{report}"
    );
    let bom = inventory_sbom(root_arg);
    let bsdutils = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| component["name"] == "bsdutils")
        .unwrap();
    assert_eq!(
        bsdutils["purl"],
        "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=util-linux%402.38.1-5%2Bdeb12u3"
    );
    let properties = &bsdutils["properties"];
    for (name, value) in [
        ("palisade:source:name", "util-linux"),
        ("palisade:source:version", "2.38.1-5+deb12u3"),
    ] {
        assert!(
            properties
                .as_array()
                .unwrap()
                .iter()
                .any(|property| property["name"] == name && property["value"] == value),
            "{name}={value} in {properties}"
        );
    }
}

/// Debian's own Go binaries (runc, containerd, skopeo: Go 1.19 builds, their standard
/// library's version in the build information) matched against the shared Go database:
/// each is reported with the standard library's advisories at its own path, and the fix is
/// a newer Go.
#[test]
fn debian_go_binaries_are_matched_against_the_go_database() {
    let binaries = ["/usr/sbin/runc", "/usr/bin/containerd", "/usr/bin/skopeo"];
    let present = binaries.iter().all(|path| Path::new(path).exists());
    if !palisade_testdata::capability("runc, containerd and skopeo from Debian", present) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let db = temp.path().join("vulndb.sqlite");
    if import_shared_records(&db, &["vulndb/go"], &["stdlib"]).is_none() {
        return;
    }
    let root = temp.path().join("root");
    for binary in binaries {
        let copy = root.join(binary.trim_start_matches('/'));
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(binary, copy).unwrap();
    }
    let report = json(&scan_rootfs(
        root.to_str().unwrap(),
        &["--db", db.to_str().unwrap(), "--output", "json"],
    ));
    for binary in binaries {
        let found: Vec<&serde_json::Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["location"]["path"] == binary)
            .collect();
        assert!(!found.is_empty(), "{binary}: {report}");
        for finding in found {
            assert_eq!(finding["package"]["name"], "stdlib", "{finding}");
            assert_eq!(finding["package"]["ecosystem"], "Go", "{finding}");
            assert!(
                finding["id"].as_str().unwrap().starts_with("GO-"),
                "{finding}"
            );
            let installed = finding["installed_version"].as_str().unwrap();
            assert!(
                installed.trim_start_matches('v').starts_with("1.19."),
                "{finding}"
            );
            let fix = finding["fix"].as_str().unwrap();
            assert!(fix.starts_with("upgrade Go to go1."), "{finding}");
        }
    }
}

/// Real old wheels installed by pip into a site-packages directory (PyPI is reachable from
/// CI), matched against the shared PyPI database.
#[test]
fn pip_installed_old_wheels_are_found_and_matched() {
    let temp = tempfile::tempdir().unwrap();
    let site_packages = temp.path().join("root/usr/lib/python3.11/site-packages");
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
        ])
        .args(["--disable-pip-version-check", "--target"])
        .arg(&site_packages)
        .args(["Jinja2==2.10", "PyYAML==5.3.1", "urllib3==1.24.1"])
        .arg("--cache-dir")
        .arg(temp.path().join("pip-cache"))
        .output()
        .is_ok_and(|output| output.status.success());
    if !palisade_testdata::capability("pip with access to PyPI", installed) {
        return;
    }
    let db = temp.path().join("vulndb.sqlite");
    if import_shared_records(
        &db,
        &["vulndb/pypi"],
        &["jinja2", "Jinja2", "urllib3", "PyYAML", "pyyaml"],
    )
    .is_none()
    {
        return;
    }
    let report = json(&scan_rootfs(
        temp.path().join("root").to_str().unwrap(),
        &["--db", db.to_str().unwrap(), "--output", "json"],
    ));
    let vulnerable: std::collections::BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["package"]["name"].as_str().unwrap())
        .collect();
    assert!(vulnerable.contains("Jinja2"), "{vulnerable:?}");
    assert!(vulnerable.contains("urllib3"), "{vulnerable:?}");
    assert!(vulnerable.contains("PyYAML"), "{vulnerable:?}");
}

/// Imports `feed` (OSV records: a file or a directory) into a new database `db`, and
/// returns what scanning `root` against it prints in an output format.
fn rootfs_scanner<'a>(feed: &Path, root: &'a Path, db: PathBuf) -> impl Fn(&str) -> Output + 'a {
    import_feeds(db.to_str().unwrap(), &[feed.to_str().unwrap()]);
    move |output| {
        scan_rootfs(
            root.to_str().unwrap(),
            &["--db", db.to_str().unwrap(), "--output", output],
        )
    }
}

/// Advisories matching cannot evaluate (a `GIT` range) or must not use (a withdrawn one)
/// are counted in the JSON summary, and the table says how many were not evaluated.
#[test]
fn skipped_advisories_are_counted_in_the_report() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    write(
        &root,
        "usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n",
    );
    let record = |id: &str, range: serde_json::Value, extra: serde_json::Value| {
        let mut record = serde_json::json!({
            "id": id, "summary": "jinja2",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"},
                          "ranges": [range]}]});
        record
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        record
    };
    let ecosystem_range = serde_json::json!({"type": "ECOSYSTEM",
        "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]});
    let feed = temp.path().join("feed");
    std::fs::create_dir_all(&feed).unwrap();
    for record in [
        record(
            "TEST-2099-1",
            ecosystem_range.clone(),
            serde_json::json!({}),
        ),
        record(
            "TEST-2099-2",
            serde_json::json!({"type": "GIT", "repo": "https://example.com/jinja",
                               "events": [{"introduced": "0"}, {"fixed": "abc123"}]}),
            serde_json::json!({}),
        ),
        record(
            "TEST-2099-3",
            ecosystem_range,
            serde_json::json!({"withdrawn": "2099-01-01T00:00:00Z"}),
        ),
    ] {
        let name = format!("{}.json", record["id"].as_str().unwrap());
        std::fs::write(feed.join(name), record.to_string()).unwrap();
    }
    let scan = rootfs_scanner(&feed, &root, temp.path().join("vulndb.sqlite"));
    let report = json(&scan("json"));
    assert_eq!(report["summary"]["findings"], 1, "{report}");
    assert_eq!(report["findings"][0]["id"], "TEST-2099-1");
    assert_eq!(
        report["summary"]["skipped"],
        serde_json::json!({"git_ranges": 1, "invalid_ranges": 0, "withdrawn": 1,
                           "not_affected": 0})
    );
    let table = String::from_utf8(scan("table").stdout).unwrap();
    assert!(
        table.contains("not evaluated: 1 GIT ranges (commits, not versions), 0 ranges"),
        "{table}"
    );
}

/// A distribution release the database holds no advisory of (Debian 12 here, as it would
/// be for Amazon Linux, which OSV does not carry) is reported as not evaluated, not as
/// clean; an ecosystem with advisories is not.
#[test]
fn releases_without_advisories_are_reported_not_evaluated() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    write(
        &root,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    write(
        &root,
        "var/lib/dpkg/status",
        "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\n\
         Version: 3.0.11-1~deb12u1\n\nPackage: zlib1g\nStatus: install ok installed\n\
         Architecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n",
    );
    write(
        &root,
        "usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n",
    );
    let feed = temp.path().join("TEST-2099-1.json");
    std::fs::write(
        &feed,
        serde_json::json!({"id": "TEST-2099-1", "summary": "jinja2",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"},
                          "ranges": [{"type": "ECOSYSTEM",
                                      "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]}]}]})
        .to_string(),
    )
    .unwrap();
    let scan = rootfs_scanner(&feed, &root, temp.path().join("vulndb.sqlite"));
    let report = json(&scan("json"));
    assert_eq!(report["summary"]["findings"], 1, "{report}");
    assert_eq!(
        report["summary"]["not_evaluated"],
        serde_json::json!([{"ecosystem": "Debian:12", "packages": 2,
                            "reason": "no advisory source loaded"}]),
        "{report}"
    );
    let table = String::from_utf8(scan("table").stdout).unwrap();
    assert!(
        table.contains("not evaluated: Debian:12 (2 packages): no advisory source loaded"),
        "{table}"
    );
    assert!(!table.contains("not evaluated: PyPI"), "{table}");
}

#[test]
fn unreadable_targets_are_clear_errors() {
    let temp = tempfile::tempdir().unwrap();
    let junk = temp.path().join("junk.tar");
    std::fs::write(&junk, "not an image").unwrap();
    let output = palisade(&["scan", "image", junk.to_str().unwrap(), "--inventory-only"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot open image"), "{stderr}");
    assert!(stderr.contains("not a container image"), "{stderr}");

    let output = scan_rootfs(
        temp.path().to_str().unwrap(),
        &["--db", temp.path().join("missing.sqlite").to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("palisade db import"));

    let output = palisade(&[
        "scan",
        "container",
        "no-such-container-xyz",
        "--inventory-only",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-container-xyz"));
}

fn tool_works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A busybox image with a dpkg status file, scanned as an OCI archive made by skopeo and as
/// a running podman container (through its merged root).
#[test]
fn scan_image_and_running_container_built_with_podman() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout == b"0\n");
    let available = is_root
        && tool_works("podman")
        && tool_works("skopeo")
        && tool_works("runc")
        && Path::new("/bin/busybox").exists();
    if !palisade_testdata::capability("root, podman, skopeo, runc and busybox-static", available) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sleep")).unwrap();
    write(&root, "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    write(
        &root,
        "var/lib/dpkg/status",
        "Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\n\
         Version: 1:1.35.0-4+b3\nSource: busybox\n",
    );
    let podman = PodmanContainer::import(
        &root,
        &temp.path().join("rootfs.tar"),
        "palisade-scan-test",
        &std::process::id().to_string(),
    );
    let image = podman.image.clone();
    let archive = temp.path().join("image.oci.tar");
    run_checked(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("containers-storage:{image}"),
            &format!("oci-archive:{}", archive.display()),
        ],
    );
    let report = json(&palisade(&[
        "scan",
        "image",
        archive.to_str().unwrap(),
        "--inventory-only",
        "--output",
        "json",
    ]));
    assert_eq!(report["target"]["kind"], "image");
    assert!(
        report["target"]["image_id"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let package = &report["packages"][0];
    assert_eq!(package["name"], "busybox-static");
    assert_eq!(package["ecosystem"], "Debian:12");
    assert_eq!(package["location"]["layer_index"], 0);

    let container = podman.start(&["/bin/sleep", "300"]);
    let output = palisade(&[
        "scan",
        "container",
        &container,
        "--inventory-only",
        "--output",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = json(&output);
    assert_eq!(report["target"]["kind"], "container");
    assert!(
        report["target"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/proc/")
    );
    let packages = report["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1, "{packages:?}");
    assert_eq!(packages[0]["name"], "busybox-static");
    assert_eq!(packages[0]["location"]["path"], "/var/lib/dpkg/status");
}

/// Imports each of `feeds` (files of `crates/vulndb/tests/data/`) into `db`, and returns a
/// scan of `root` against it as JSON, checking that the root's release was evaluated (the
/// database holds its distribution's data).
fn scan_against(root: &Path, db: &Path, feeds: &[&str]) -> serde_json::Value {
    for feed in feeds {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vulndb/tests/data")
            .join(feed);
        import_feeds(db.to_str().unwrap(), &[path.to_str().unwrap()]);
    }
    let report = json(&scan_rootfs(
        root.to_str().unwrap(),
        &["--db", db.to_str().unwrap(), "--output", "json"],
    ));
    assert_eq!(
        report["summary"]["not_evaluated"],
        serde_json::json!([]),
        "{report}"
    );
    report
}

/// `[id, package, status, fixed versions]` of each finding of a scan report, sorted.
fn finding_summaries(report: &serde_json::Value) -> Vec<[String; 4]> {
    let mut summaries: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            [
                finding["id"].as_str().unwrap().to_owned(),
                finding["package"]["name"].as_str().unwrap().to_owned(),
                finding["status"].as_str().unwrap_or_default().to_owned(),
                finding["fixed_versions"].to_string(),
            ]
        })
        .collect();
    summaries.sort();
    summaries
}

/// The ids of the findings of a scan report, sorted.
fn finding_ids(report: &serde_json::Value) -> Vec<String> {
    finding_summaries(report)
        .into_iter()
        .map(|[id, ..]| id)
        .collect()
}

/// The finding `id` of a scan report.
fn finding_with_id<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id}: {report}"))
}

/// An Oracle Linux 9 root matched against Oracle's ELSA OVAL (which also holds Oracle
/// Linux 8's advisories) and Azure Linux's: only its own release's vulnerable builds are
/// reported, a Ksplice build against the Ksplice advisory.
#[test]
fn oracle_linux_packages_are_matched_against_imported_oval() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    rpm_root(
        &root,
        "NAME=\"Oracle Linux Server\"\nVERSION=\"9.4\"\nID=\"ol\"\nID_LIKE=\"fedora\"\n\
         VERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Oracle Linux Server 9.4\"\n",
        &[
            ("gnutls", None, "3.8.3", "3.el9"),
            ("gnutls-utils", None, "3.8.3", "4.el9_4"),
            ("openssl-libs", Some(1), "1.1.1k", "9.el9"),
            ("glibc", None, "2.34", "83.0.2.ksplice1.el9_3.7"),
            ("kernel-uek-core", None, "5.15.0", "200.131.27.el9uek"),
        ],
    );
    let db = temp.path().join("vulndb.sqlite");
    let report = scan_against(
        &root,
        &db,
        &[
            "oval/com.oracle.elsa-2024.xml",
            "oval/azurelinux-3.0-oval.xml",
        ],
    );
    assert_eq!(
        finding_summaries(&report),
        [
            ["ELSA-2024-2570", "gnutls", "fixed", "[\"3.8.3-4.el9_4\"]"],
            [
                "ELSA-2024-50047",
                "glibc",
                "fixed",
                "[\"2.34-83.0.3.ksplice1.el9_3.7\"]"
            ],
        ],
        "{report}"
    );
    let gnutls = finding_with_id(&report, "ELSA-2024-2570");
    assert_eq!(
        gnutls["aliases"],
        serde_json::json!(["CVE-2024-28834", "CVE-2024-28835"])
    );
    assert_eq!(gnutls["severity"], "medium", "{gnutls}");
    assert_eq!(gnutls["package"]["ecosystem"], "Oracle Linux:9");
    assert_eq!(gnutls["fix"], "dnf upgrade gnutls-3.8.3-4.el9_4");
    assert_eq!(gnutls["published"], "2024-05-06");
}

/// An Azure Linux 3.0 root matched against Azure Linux's and CBL-Mariner 2.0's OVAL: its
/// vulnerable openssl (fixed) and wget (no fix yet, `less than or equal`), nothing from
/// CBL-Mariner's definitions of the same CVEs and packages.
#[test]
fn azure_linux_packages_are_matched_against_imported_oval() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    rpm_root(
        &root,
        "NAME=\"Microsoft Azure Linux\"\nVERSION=\"3.0.20241005\"\nID=azurelinux\n\
         VERSION_ID=\"3.0\"\nPRETTY_NAME=\"Microsoft Azure Linux 3.0\"\n",
        &[
            ("openssl", None, "3.3.0", "2.azl3"),
            ("expat", None, "2.6.3", "1.azl3"),
            ("wget", None, "1.21.4", "1.azl3"),
        ],
    );
    let db = temp.path().join("vulndb.sqlite");
    let report = scan_against(
        &root,
        &db,
        &[
            "oval/cbl-mariner-2.0-oval.xml",
            "oval/azurelinux-3.0-oval.xml",
        ],
    );
    assert_eq!(
        finding_summaries(&report),
        [
            ["CVE-2024-38428", "wget", "open", "[]"],
            ["CVE-2024-6119", "openssl", "fixed", "[\"3.3.2-1.azl3\"]"],
        ],
        "{report}"
    );
    let openssl = finding_with_id(&report, "CVE-2024-6119");
    assert_eq!(openssl["package"]["ecosystem"], "Azure Linux:3.0");
    assert_eq!(openssl["severity"], "high", "{openssl}");
    assert_eq!(openssl["fix"], "tdnf install openssl-3.3.2-1.azl3");
}

/// A RHEL 8 root and a RHEL 9 root matched against Red Hat's RHEL 8 OVAL and RHEL 9 OVAL
/// with unpatched vulnerabilities: each only against its own release's definitions, a
/// module stream's build only against its stream's fix, builds at the fix not reported,
/// unfixed packages with the status Red Hat gives them.
#[test]
fn red_hat_packages_are_matched_against_imported_oval() {
    let temp = tempfile::tempdir().unwrap();
    let feeds = [
        "oval/rhel-8.oval.xml",
        "oval/rhel-9-including-unpatched.oval.xml",
    ];
    let db = temp.path().join("vulndb.sqlite");
    let rhel8 = temp.path().join("rhel8");
    rpm_root(
        &rhel8,
        "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.9 (Ootpa)\"\nID=\"rhel\"\n\
         ID_LIKE=\"fedora\"\nVERSION_ID=\"8.9\"\nPLATFORM_ID=\"platform:el8\"\n\
         PRETTY_NAME=\"Red Hat Enterprise Linux 8.9 (Ootpa)\"\n",
        &[
            ("libwebp", None, "1.0.0", "8.el8_8"),
            ("libwebp-devel", None, "1.0.0", "8.el8_8.1"),
            (
                "postgresql",
                None,
                "13.11",
                "1.module+el8.8.0+18910+1ab3f1d4",
            ),
            (
                "postgresql-server",
                None,
                "13.13",
                "1.module+el8.9.0+20664+9c30cf7f",
            ),
            ("curl", None, "7.61.1", "33.el8"),
            ("openssl-libs", Some(1), "1.1.1k", "9.el8_7"),
        ],
    );
    let report = scan_against(&rhel8, &db, &feeds);
    assert_eq!(
        finding_summaries(&report),
        [
            [
                "RHSA-2023:5309",
                "libwebp",
                "fixed",
                "[\"1.0.0-8.el8_8.1\"]"
            ],
            [
                "RHSA-2023:7581",
                "postgresql",
                "fixed",
                "[\"13.13-1.module+el8.9.0+20664+9c30cf7f\"]"
            ],
        ],
        "{report}"
    );
    let libwebp = finding_with_id(&report, "RHSA-2023:5309");
    assert_eq!(libwebp["package"]["ecosystem"], "Red Hat:8");
    assert_eq!(
        libwebp["aliases"],
        serde_json::json!(["CVE-2023-4863", "CVE-2023-5129"])
    );
    assert_eq!(libwebp["fix"], "dnf upgrade libwebp-1.0.0-8.el8_8.1");

    let rhel9 = temp.path().join("rhel9");
    rpm_root(
        &rhel9,
        "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\n\
         ID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\n\
         PRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n",
        &[
            ("curl", None, "7.76.1", "29.el9_4"),
            ("libarchive", None, "3.5.3", "4.el9"),
            ("openssl-libs", Some(1), "3.0.7", "27.el9"),
            ("libwebp", None, "1.2.0", "8.el9"),
            ("bash", None, "5.1.8", "9.el9"),
        ],
    );
    let report = scan_against(&rhel9, &db, &[]);
    assert_eq!(
        finding_summaries(&report),
        [
            ["CVE-2023-28322", "curl", "will-not-fix", "[]"],
            ["CVE-2024-48957", "libarchive", "open", "[]"],
        ],
        "{report}"
    );
}

/// Module streams whose builds share a version line (`container-tools:rhel8`'s podman 4.6,
/// `container-tools:4.0`'s podman 4.0): each root's podman is matched against its own
/// stream's definitions, fixed and unpatched, the stream read from the package's
/// modularity label, else from the streams `etc/dnf/modules.d` enables.
#[test]
fn module_packages_are_matched_against_their_own_stream() {
    let temp = tempfile::tempdir().unwrap();
    let db = temp.path().join("vulndb.sqlite");
    let rhel_8_9 = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.9 (Ootpa)\"\nID=\"rhel\"\n\
         ID_LIKE=\"fedora\"\nVERSION_ID=\"8.9\"\nPLATFORM_ID=\"platform:el8\"\n";
    let podman_4_0_fixed = ("podman", None, "4.0.2", "26.module+el8.9.0+21245+22222222");
    let root = |name: &str, podman, label: Option<&str>| {
        let root = temp.path().join(name);
        write(&root, "etc/os-release", rhel_8_9);
        modular_rpmdb(
            &root.join("var/lib/rpm/rpmdb.sqlite"),
            &[(podman, label), (("curl", None, "7.61.1", "33.el8"), None)],
        );
        root
    };
    let stream_4_0 = root(
        "stream_4_0",
        podman_4_0_fixed,
        Some("container-tools:4.0:8090020240201111111:d7b6f4b7"),
    );
    let report = scan_against(&stream_4_0, &db, &["oval/rhel-8-container-tools.oval.xml"]);
    assert_eq!(
        finding_summaries(&report),
        [
            ["CVE-2024-9103", "podman", "open", "[]"],
            ["CVE-2024-9104", "podman", "open", "[]"]
        ],
        "{report}"
    );
    // Trivy's qualifier for the label.
    assert_eq!(
        report["findings"][0]["package"]["purl"],
        "pkg:rpm/redhat/podman@4.0.2-26.module%2Bel8.9.0%2B21245%2B22222222?arch=x86_64&distro=rhel-8.9&modularitylabel=container-tools:4.0:8090020240201111111:d7b6f4b7"
    );

    let stream_rhel8 = root(
        "stream_rhel8",
        ("podman", None, "4.6.1", "5.module+el8.9.0+21000+11111111"),
        Some("container-tools:rhel8:8090020240101000000:d7b6f4b7"),
    );
    // Each stream keeps its resolution of CVE-2024-9104 (`container-tools:rhel8/podman`).
    assert_eq!(
        finding_summaries(&scan_against(&stream_rhel8, &db, &[])),
        [
            ["CVE-2024-9104", "podman", "will-not-fix", "[]"],
            [
                "RHSA-2024:9101",
                "podman",
                "fixed",
                "[\"4.6.1-8.module+el8.9.0+21243+a586538b\"]"
            ]
        ]
    );

    // No label: the streams the image enabled decide.
    let enabled_4_0 = root("enabled_4_0", podman_4_0_fixed, None);
    write(
        &enabled_4_0,
        "etc/dnf/modules.d/container-tools.module",
        "[container-tools]\nname=container-tools\nstream=4.0\nprofiles=\nstate=enabled\n",
    );
    let report = scan_against(&enabled_4_0, &db, &[]);
    assert_eq!(
        finding_ids(&report),
        ["CVE-2024-9103", "CVE-2024-9104"],
        "{report}"
    );

    // No label and no module tag in the release: a build no stream provided, whatever the
    // image enabled; no stream's definition is for it.
    let not_modular = root("not_modular", ("podman", None, "4.0.2", "20.el8"), None);
    write(
        &not_modular,
        "etc/dnf/modules.d/container-tools.module",
        "[container-tools]\nname=container-tools\nstream=4.0\nprofiles=\nstate=enabled\n",
    );
    let report = scan_against(&not_modular, &db, &[]);
    assert!(finding_summaries(&report).is_empty(), "{report}");
    let inventory = inventory_json(&not_modular);
    let podman = inventory["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "podman")
        .unwrap();
    assert!(podman.get("module_streams").is_none(), "{podman}");
    let enabled_inventory = inventory_json(&enabled_4_0);
    assert!(
        enabled_inventory["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|package| package["name"] == "podman"
                && package["module_streams"] == serde_json::json!(["container-tools:4.0"])),
        "{enabled_inventory}"
    );
}

/// A Red Hat definition that checks a file's content besides a package's version
/// ("kernel earlier than ... is set to boot up on next boot", `/boot/grub2/grubenv`) is
/// evaluated on the scanned root: the kpatch-patch below its fix is reported where the
/// root boots the kernel it patches, not where it boots the fixed kernel or has no
/// grubenv, nor through a symlink that leads out of the root.
#[test]
fn file_content_checks_are_evaluated_on_the_scanned_root() {
    let temp = tempfile::tempdir().unwrap();
    let db = temp.path().join("vulndb.sqlite");
    let rhel_8 = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.0 (Ootpa)\"\nID=\"rhel\"\n\
         VERSION_ID=\"8.0\"\nPLATFORM_ID=\"platform:el8\"\n";
    let grubenv = |kernel: &str| {
        format!(
            "# GRUB Environment Block\nsaved_entry=0123456789abcdef0123456789abcdef-{kernel}.x86_64\nkernelopts=root=/dev/mapper/rhel-root ro\n"
        )
    };
    let root = |name: &str, boots: Option<&str>| {
        let root = temp.path().join(name);
        rpm_root(
            &root,
            rhel_8,
            &[("kpatch-patch-4_18_0-80", None, "1", "1.el8")],
        );
        if let Some(kernel) = boots {
            write(&root, "boot/grub2/grubenv", &grubenv(kernel));
        }
        root
    };
    let old_kernel = root("old_kernel", Some("4.18.0-80.el8"));
    let report = scan_against(&old_kernel, &db, &["oval/rhel-8-kpatch.oval.xml"]);
    assert_eq!(finding_ids(&report), ["RHSA-2024:9201"], "{report}");
    assert_eq!(
        report["findings"][0]["fixed_versions"],
        serde_json::json!(["1-2.el8"])
    );
    let fixed_kernel = root("fixed_kernel", Some("4.18.0-80.1.2.el8_0"));
    assert!(finding_ids(&scan_against(&fixed_kernel, &db, &[])).is_empty());
    let no_grubenv = root("no_grubenv", None);
    assert!(finding_ids(&scan_against(&no_grubenv, &db, &[])).is_empty());
    // A grubenv that is a link out of the root is read inside it, where there is none.
    let outside = temp.path().join("outside-grubenv");
    std::fs::write(&outside, grubenv("4.18.0-80.el8")).unwrap();
    let escaping = root("escaping", None);
    std::fs::create_dir_all(escaping.join("boot/grub2")).unwrap();
    std::os::unix::fs::symlink(&outside, escaping.join("boot/grub2/grubenv")).unwrap();
    assert!(finding_ids(&scan_against(&escaping, &db, &[])).is_empty());
}

/// An Amazon Linux 2023 root is not evaluated until Amazon's updateinfo.xml is imported;
/// then its rpm packages are matched against it: a vulnerable one is reported with its fixed
/// version, the ones at the fixed versions are not.
#[test]
fn amazon_linux_packages_are_matched_against_imported_updateinfo() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    rpm_root(
        &root,
        "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\n\
         VERSION_ID=\"2023\"\nPRETTY_NAME=\"Amazon Linux 2023.6.20241010\"\n",
        &[
            ("openssh-server", None, "8.7p1", "2.amzn2023.0.3"),
            ("openssh-clients", None, "8.7p1", "2.amzn2023.0.4"),
            ("openssl-libs", Some(1), "3.0.8", "1.amzn2023.0.2"),
        ],
    );
    let updateinfo = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vulndb/tests/data/updateinfo")
            .join(name)
    };
    let db = temp.path().join("vulndb.sqlite");
    let scan = || {
        json(&scan_rootfs(
            root.to_str().unwrap(),
            &["--db", db.to_str().unwrap(), "--output", "json"],
        ))
    };
    let import = |path: &Path| import_feeds(db.to_str().unwrap(), &[path.to_str().unwrap()]);
    // Another release's advisories leave Amazon Linux 2023 named as not evaluated.
    import(&updateinfo("amazon-linux-2.xml"));
    let report = scan();
    assert_eq!(report["summary"]["findings"], 0, "{report}");
    assert_eq!(
        report["summary"]["not_evaluated"],
        serde_json::json!([{"ecosystem": "Amazon Linux:2023", "packages": 3,
                            "reason": "no advisory source loaded"}]),
        "{report}"
    );
    let printed = import(&updateinfo("amazon-linux-2023.xml"));
    assert!(
        printed.contains(": 2 records (updateinfo), 0 skipped"),
        "{printed}"
    );
    let report = scan();
    assert_eq!(
        report["summary"]["not_evaluated"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(report["summary"]["findings"], 1, "{report}");
    let finding = &report["findings"][0];
    assert_eq!(finding["id"], "ALAS2023-2023-273");
    assert_eq!(finding["aliases"], serde_json::json!(["CVE-2023-38408"]));
    assert_eq!(finding["severity"], "high");
    assert_eq!(finding["package"]["name"], "openssh-server");
    assert_eq!(finding["package"]["ecosystem"], "Amazon Linux:2023");
    assert_eq!(finding["installed_version"], "8.7p1-2.amzn2023.0.3");
    assert_eq!(
        finding["fixed_versions"],
        serde_json::json!(["8.7p1-2.amzn2023.0.4"])
    );
    assert_eq!(finding["status"], "fixed");
    assert_eq!(
        finding["fix"],
        "dnf upgrade openssh-server-8.7p1-2.amzn2023.0.4"
    );
    assert_eq!(finding["published"], "2023-07-31 22:41");
    assert_eq!(finding["modified"], "2024-12-11 00:18");
    // `--release` must name an rpm distribution's release.
    let refused = palisade(&[
        "db",
        "import",
        updateinfo("fedora.xml").to_str().unwrap(),
        "--release",
        "Debian:12",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("\"Debian:12\" is not an rpm distribution release"),
        "{stderr}"
    );
}

/// Red Hat's OVAL v2 layout (as `rhel-8-kpatch.oval.xml`) for kpatch advisories, each of its
/// own kpatch-patch package (fixed in `0:1-2.el8`) on Red Hat Enterprise Linux 8, applying
/// where its kernel test holds.
struct KpatchAdvisory<'a> {
    /// The advisory is `RHSA-2099:000N`.
    number: u32,
    package: &'a str,
    /// The `uname_test`'s `os_release` state: the operation and the value.
    running: (&'a str, String),
    /// A `textfilecontent54_test` of `/boot/grub2/grubenv` besides the `uname_test`: the
    /// kernel set to boot is earlier than this.
    boot_earlier_than: Option<&'a str>,
}

/// An OVAL document of `advisories` in Red Hat's layout.
fn kpatch_oval(advisories: &[KpatchAdvisory<'_>]) -> String {
    let (mut definitions, mut tests, mut objects, mut states) =
        (String::new(), String::new(), String::new(), String::new());
    for advisory in advisories {
        let (n, package) = (advisory.number, advisory.package);
        let (operation, release) = &advisory.running;
        let boot = advisory.boot_earlier_than.map(|kernel| {
            tests.push_str(&format!(
                r#"<ind-def:textfilecontent54_test check="at least one" comment="kernel earlier than {kernel} is set to boot up on next boot" id="oval:com.redhat.rhsa:tst:2099{n:04}02" version="1"><ind-def:object object_ref="oval:com.redhat.rhsa:obj:20990002"/><ind-def:state state_ref="oval:com.redhat.rhsa:ste:2099{n:04}02"/></ind-def:textfilecontent54_test>"#
            ));
            states.push_str(&format!(
                r#"<ind-def:textfilecontent54_state id="oval:com.redhat.rhsa:ste:2099{n:04}02" version="1"><ind-def:subexpression datatype="evr_string" operation="less than">{kernel}</ind-def:subexpression></ind-def:textfilecontent54_state>"#
            ));
            format!(
                r#"<criterion comment="kernel earlier than {kernel} is set to boot up on next boot" test_ref="oval:com.redhat.rhsa:tst:2099{n:04}02"/>"#
            )
        });
        definitions.push_str(&format!(
            r#"<definition class="patch" id="oval:com.redhat.rhsa:def:2099{n:04}" version="1"><metadata><title>RHSA-2099:{n:04}: {package} security update (Important)</title><affected family="unix"><platform>Red Hat Enterprise Linux 8</platform></affected><reference ref_id="RHSA-2099:{n:04}" ref_url="https://access.redhat.com/errata/RHSA-2099:{n:04}" source="RHSA"/><reference ref_id="CVE-2099-{n:04}" ref_url="https://access.redhat.com/security/cve/CVE-2099-{n:04}" source="CVE"/><description>A kernel live patch.</description><advisory from="secalert@redhat.com"><severity>Important</severity><issued date="2099-01-01"/><updated date="2099-01-01"/></advisory></metadata><criteria operator="AND"><criterion comment="Red Hat Enterprise Linux 8 is installed" test_ref="oval:com.redhat.rhba:tst:20191992003"/><criteria operator="OR"><criterion comment="kernel {operation} {release} is currently running" test_ref="oval:com.redhat.rhsa:tst:2099{n:04}01"/>{boot}</criteria><criterion comment="{package} is earlier than 0:1-2.el8" test_ref="oval:com.redhat.rhsa:tst:2099{n:04}03"/></criteria></definition>"#,
            boot = boot.unwrap_or_default()
        ));
        tests.push_str(&format!(
            r#"<unix-def:uname_test check="at least one" comment="kernel {operation} {release} is currently running" id="oval:com.redhat.rhsa:tst:2099{n:04}01" version="1"><unix-def:object object_ref="oval:com.redhat.rhsa:obj:20990001"/><unix-def:state state_ref="oval:com.redhat.rhsa:ste:2099{n:04}01"/></unix-def:uname_test><red-def:rpminfo_test check="at least one" comment="{package} is earlier than 0:1-2.el8" id="oval:com.redhat.rhsa:tst:2099{n:04}03" version="1"><red-def:object object_ref="oval:com.redhat.rhsa:obj:2099{n:04}03"/><red-def:state state_ref="oval:com.redhat.rhsa:ste:20990003"/></red-def:rpminfo_test>"#
        ));
        objects.push_str(&format!(
            r#"<red-def:rpminfo_object id="oval:com.redhat.rhsa:obj:2099{n:04}03" version="1"><red-def:name>{package}</red-def:name></red-def:rpminfo_object>"#
        ));
        states.push_str(&format!(
            r#"<unix-def:uname_state id="oval:com.redhat.rhsa:ste:2099{n:04}01" version="1"><unix-def:os_release operation="{operation}">{release}</unix-def:os_release></unix-def:uname_state>"#
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:oval="http://oval.mitre.org/XMLSchema/oval-common-5" xmlns:red-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux" xmlns:ind-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#independent" xmlns:unix-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#unix">
<generator><oval:product_name>Red Hat OVAL Patch Definition Merger</oval:product_name><oval:schema_version>5.10</oval:schema_version></generator>
<definitions>{definitions}</definitions>
<tests><red-def:rpmverifyfile_test check="at least one" comment="Red Hat Enterprise Linux 8 is installed" id="oval:com.redhat.rhba:tst:20191992003" version="635"><red-def:object object_ref="oval:com.redhat.rhba:obj:20191992002"/><red-def:state state_ref="oval:com.redhat.rhba:ste:20191992003"/></red-def:rpmverifyfile_test>{tests}</tests>
<objects><red-def:rpmverifyfile_object id="oval:com.redhat.rhba:obj:20191992002" version="635"><red-def:behaviors noconfigfiles="true" noghostfiles="true" nogroup="true" nolinkto="true" nomd5="true" nomode="true" nomtime="true" nordev="true" nosize="true" nouser="true"/><red-def:name operation="pattern match"/><red-def:epoch operation="pattern match"/><red-def:version operation="pattern match"/><red-def:release operation="pattern match"/><red-def:arch operation="pattern match"/><red-def:filepath>/etc/redhat-release</red-def:filepath></red-def:rpmverifyfile_object><unix-def:uname_object id="oval:com.redhat.rhsa:obj:20990001" version="1"/><ind-def:textfilecontent54_object id="oval:com.redhat.rhsa:obj:20990002" version="1"><ind-def:filepath>/boot/grub2/grubenv</ind-def:filepath><ind-def:pattern operation="pattern match">^saved_entry=\w+-(\d[\w.\-]*)\.(?:x86_64|aarch64|ppc64le|s390x)$</ind-def:pattern><ind-def:instance datatype="int" operation="greater than or equal">1</ind-def:instance></ind-def:textfilecontent54_object>{objects}</objects>
<states><red-def:rpmverifyfile_state id="oval:com.redhat.rhba:ste:20191992003" version="635"><red-def:name operation="pattern match">^redhat-release</red-def:name><red-def:version operation="pattern match">^8[^\d]</red-def:version></red-def:rpmverifyfile_state><red-def:rpminfo_state id="oval:com.redhat.rhsa:ste:20990003" version="1"><red-def:evr datatype="evr_string" operation="less than">0:1-2.el8</red-def:evr></red-def:rpminfo_state>{states}</states>
</oval_definitions>
"#
    )
}

/// The mount points in a `mountinfo` file (`/proc/PID/mountinfo`), with the source of each
/// (the field after the file system type).
fn mounts(mountinfo: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(mountinfo)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let after_separator = line.split(" - ").nth(1).unwrap_or_default();
            let source = after_separator.split(' ').nth(1).unwrap_or_default();
            (fields[4].to_owned(), source.to_owned())
        })
        .collect()
}

/// The real `palisade scan host` answers OVAL's `uname_test` with the real running kernel.
/// In a private mount namespace (`unshare --mount`, as root) a Red Hat Enterprise Linux 8
/// `/etc/os-release`, a `/var/lib` holding an rpm database of four kpatch-patch packages
/// below their fix and a `/boot` whose grubenv boots an old kernel are bind-mounted over the
/// host's, and the other top-level directories besides the system's (work trees, home,
/// temporary files) are covered by empty tmpfs mounts, so that the walk reads the system
/// and not other tests' files; the binary scans `/` against advisories made from the
/// running `uname -r`: the kernel running is earlier than one (reported), not earlier than
/// itself (not reported), equals the release as printed (a string state; reported), and a
/// kernel that is not earlier but an old one set to boot (reported, from the grubenv). A scan of
/// the same files as a root directory reports only the boot entry's advisory: it has no
/// running kernel. Of two `kernel-core` builds installed side by side, the running one's
/// and an older one, the host scan matches the running one only and the root scan both.
/// While the namespace lives and after it ended, the host's mounts and `/etc/os-release` are
/// unchanged.
#[test]
fn a_host_scan_checks_the_running_kernel() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout == b"0\n");
    if !palisade_testdata::capability("root and unshare", is_root && tool_works("unshare")) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let host = temp.path().join("host");
    let packages = [
        "kpatch-patch-running-earlier",
        "kpatch-patch-running-same",
        "kpatch-patch-running-equal",
        "kpatch-patch-boot-earlier",
    ];
    // The running kernel's release as its package's version-release: without the
    // architecture and variant (`4.18.0-80.el8.x86_64+debug`), as the uname_test compares.
    let printed_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let printed_release = printed_release.trim();
    let running = printed_release
        .split_once('+')
        .map_or(printed_release, |(release, _)| release);
    let running = ["x86_64", "aarch64", "ppc64le", "s390x"]
        .iter()
        .find_map(|arch| running.strip_suffix(&format!(".{arch}")))
        .unwrap_or(running);
    // Two kernels installed side by side: the running one and an older one.
    let (running_version, running_release) = running
        .split_once('-')
        .unwrap_or_else(|| panic!("the running release {running:?} has a version and a release"));
    let mut installed: Vec<_> = packages
        .iter()
        .map(|name| (*name, None, "1", "1.el8"))
        .collect();
    installed.push(("kernel-core", None, running_version, running_release));
    installed.push(("kernel-core", None, "4.18.0", "80.el8"));
    rpm_root(
        &host,
        "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.0 (Ootpa)\"\nID=\"rhel\"\n\
         VERSION_ID=\"8.0\"\nPLATFORM_ID=\"platform:el8\"\n",
        &installed,
    );
    write(
        &host,
        "boot/grub2/grubenv",
        "# GRUB Environment Block\nsaved_entry=0123456789abcdef0123456789abcdef-4.18.0-80.el8.x86_64\n",
    );
    let major: u64 = running
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("the running release {running:?} starts with a number"));
    let oval = kpatch_oval(&[
        KpatchAdvisory {
            number: 1,
            package: packages[0],
            running: ("less than", format!("0:{}.0.0-1.el8", major + 1)),
            boot_earlier_than: None,
        },
        KpatchAdvisory {
            number: 2,
            package: packages[1],
            running: ("less than", format!("0:{running}")),
            boot_earlier_than: None,
        },
        KpatchAdvisory {
            number: 3,
            package: packages[2],
            running: ("equals", printed_release.to_owned()),
            boot_earlier_than: None,
        },
        KpatchAdvisory {
            number: 4,
            package: packages[3],
            running: ("less than", "0:0.1-1.el8".to_owned()),
            boot_earlier_than: Some("0:4.18.0-80.1.2.el8_0"),
        },
    ]);
    write(temp.path(), "rhel-8-kernel.oval.xml", &oval);
    // Every kernel-core build is affected by this advisory: only the running one counts on
    // the running host.
    write(
        temp.path(),
        "RHSA-2099-0100.json",
        &serde_json::json!({
            "id": "RHSA-2099:0100",
            "affected": [{
                "package": {"ecosystem": "Red Hat:enterprise_linux:8::baseos", "name": "kernel-core"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99999-1.el8"}]}],
            }],
        })
        .to_string(),
    );
    let db = temp.path().join("vulndb.sqlite");
    let printed = import_feeds(
        db.to_str().unwrap(),
        &[
            temp.path().join("rhel-8-kernel.oval.xml").to_str().unwrap(),
            temp.path().join("RHSA-2099-0100.json").to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains(": 4 records (oval), 0 skipped"),
        "{printed}"
    );
    // The binary is bind-mounted into the namespace's staging directory, since the
    // directory it is built in may be one the namespace covers.
    write(temp.path(), "palisade", "");
    let script = r#"
        set -eu
        mount -t tmpfs palisade-scan-host /run
        mkdir /run/scan
        mount --bind "$1" /run/scan
        mount --bind "$2" /run/scan/palisade
        mount --bind /run/scan/host/etc/os-release /etc/os-release
        mount --bind /run/scan/host/var/lib /var/lib
        mount --bind /run/scan/host/boot /boot
        for dir in /* /var/tmp; do
            case "$dir" in
                /usr|/etc|/bin|/sbin|/lib|/lib32|/lib64|/libx32|/boot|/var|/proc|/sys|/dev|/run) continue ;;
            esac
            if [ -d "$dir" ] && [ ! -L "$dir" ]; then
                mount -t tmpfs palisade-scan-host "$dir"
            fi
        done
        PALISADE_LOG=error /run/scan/palisade scan host --db /run/scan/vulndb.sqlite \
            --output json > /run/scan/report.json
        echo scanned
        read -r _ || true
    "#;
    let os_release = std::fs::canonicalize("/etc/os-release").unwrap();
    let host_os_release = std::fs::read(&os_release).unwrap();
    let our_mounts = Path::new("/proc/self/mountinfo");
    let bound = [
        os_release.to_str().unwrap(),
        "/var/lib",
        "/boot",
        "/run/scan",
    ];
    let count_bound = |mounts: &[(String, String)]| -> Vec<usize> {
        bound
            .iter()
            .map(|path| mounts.iter().filter(|(point, _)| point == path).count())
            .collect()
    };
    let ours_before = count_bound(&mounts(our_mounts));
    let mut namespace = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(temp.path())
        .arg(env!("CARGO_BIN_EXE_palisade"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(temp.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(temp.path().join("stderr")).unwrap();
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(namespace.stdout.as_mut().unwrap()),
        &mut said,
    )
    .unwrap();
    if said.trim() != "scanned" {
        drop(namespace.stdin.take());
        let status = namespace.wait().unwrap();
        panic!(
            "the scan in the namespace failed ({status}): {said:?} {}",
            stderr()
        );
    }
    // The namespace holds the mounts, the host none of them.
    let theirs = mounts(
        &Path::new("/proc")
            .join(namespace.id().to_string())
            .join("mountinfo"),
    );
    assert!(count_bound(&theirs).iter().all(|&n| n > 0), "{theirs:?}");
    let ours = mounts(our_mounts);
    assert_eq!(count_bound(&ours), ours_before, "{ours:?}");
    assert!(
        !ours
            .iter()
            .any(|(_, source)| source == "palisade-scan-host"),
        "{ours:?}"
    );
    assert!(
        theirs
            .iter()
            .any(|(point, source)| point == "/tmp" && source == "palisade-scan-host")
    );
    assert_eq!(std::fs::read(&os_release).unwrap(), host_os_release);
    drop(namespace.stdin.take());
    let status = namespace.wait().unwrap();
    assert!(status.success(), "{status}: {}", stderr());
    assert_eq!(count_bound(&mounts(our_mounts)), ours_before);
    assert_eq!(std::fs::read(&os_release).unwrap(), host_os_release);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(temp.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["target"]["kind"], "host", "{report}");
    assert_eq!(report["target"]["path"], "/", "{report}");
    let kpatch_findings = |report: &serde_json::Value| -> Vec<(String, String, String)> {
        finding_summaries(report)
            .into_iter()
            .filter(|[_, package, _, _]| package.starts_with("kpatch-patch-"))
            .map(|[id, package, _, fixed]| (id, package, fixed))
            .collect()
    };
    let expected = |numbers: &[usize]| -> Vec<(String, String, String)> {
        numbers
            .iter()
            .map(|&n| {
                (
                    format!("RHSA-2099:{n:04}"),
                    packages[n - 1].to_owned(),
                    "[\"1-2.el8\"]".to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(kpatch_findings(&report), expected(&[1, 3, 4]), "{report}");
    // Of the two kernels installed, the running host runs one: its kernel-core is matched.
    let kernel_cores = |report: &serde_json::Value| -> Vec<String> {
        let mut installed: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["package"]["name"] == "kernel-core")
            .map(|finding| finding["installed_version"].as_str().unwrap().to_owned())
            .collect();
        installed.sort();
        installed
    };
    assert_eq!(kernel_cores(&report), [running], "{report}");
    // The same files as a root directory have no running kernel: the boot entry alone, and
    // every installed kernel.
    let as_root = scan_against(&host, &db, &[]);
    assert_eq!(kpatch_findings(&as_root), expected(&[4]), "{as_root}");
    let mut every_kernel = vec![running.to_owned(), "4.18.0-80.el8".to_owned()];
    every_kernel.sort();
    assert_eq!(kernel_cores(&as_root), every_kernel, "{as_root}");
}
