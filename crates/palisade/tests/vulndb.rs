//! `palisade db import|update|status|match`, run as a built binary on self-written feeds.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

const GO_RECORD: &str = r#"{"id": "GO-2099-0001", "aliases": ["CVE-2099-0001"],
  "summary": "Example flaw", "severity": [{"type": "CVSS_V3",
  "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{"package": {"ecosystem": "Go", "name": "example.com/mod"},
  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#;

const DSA_LIST: &str = "[29 Mar 2023] DSA-5380-1 xorg-server - security update\n\t{CVE-2023-1393}\n\t[bullseye] - xorg-server 2:1.20.11-1+deb11u6\n";

fn palisade(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("db")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("the palisade binary runs")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn import_status_and_match() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vulndb.sqlite");
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(feeds.join("go")).unwrap();
    std::fs::write(feeds.join("go/GO-2099-0001.json"), GO_RECORD).unwrap();
    std::fs::write(feeds.join("go/broken.json"), "{").unwrap();
    std::fs::write(feeds.join("DSA-list"), DSA_LIST).unwrap();

    let output = palisade(
        &db,
        &[
            "import",
            feeds.join("go").to_str().unwrap(),
            feeds.join("DSA-list").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 records (osv), 1 skipped"), "{stdout}");
    assert!(stdout.contains("1 records (debian-list)"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.json: malformed JSON"));

    let status = json(&palisade(&db, &["status", "--output", "json"]));
    assert_eq!(status["total_records"], 2);
    assert_eq!(status["sources"].as_array().unwrap().len(), 2);
    assert_eq!(
        status["ecosystems"],
        serde_json::json!([["Debian:11", 1], ["Go", 1]])
    );
    let table = palisade(&db, &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("debian-list"), "{table}");
    // Each source's age: imported just now.
    let go_row = table
        .lines()
        .find(|line| line.contains("osv"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(go_row.contains(" 0 min "), "{table}");
    assert!(table.contains("2 records in total"), "{table}");

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "Go",
            "--package",
            "example.com/mod",
            "--version",
            "v1.1.0",
            "--output",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "vulnerable exits with 1");
    let report = json(&output);
    let finding = &report["findings"][0];
    assert_eq!(finding["id"], "GO-2099-0001");
    assert_eq!(finding["aliases"], serde_json::json!(["CVE-2099-0001"]));
    assert_eq!(finding["cvss_score"], 7.5);
    assert_eq!(finding["fix"], "go get example.com/mod@v1.2.0");

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "Go",
            "--package",
            "example.com/mod",
            "--version",
            "v1.2.0",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json(&output)["findings"], serde_json::json!([]));

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "debian:bullseye",
            "--package",
            "xserver-xorg-core",
            "--source-package",
            "xorg-server",
            "--version",
            "2:1.20.11-1+deb11u5",
        ],
    );
    let report = json(&output);
    assert_eq!(report["findings"][0]["id"], "DSA-5380-1");
    assert_eq!(report["findings"][0]["status"], "fixed");
    assert_eq!(
        report["findings"][0]["fix"],
        "apt-get install --only-upgrade xserver-xorg-core=2:1.20.11-1+deb11u6"
    );

    // Re-importing a source replaces it.
    let output = palisade(&db, &["import", feeds.join("go").to_str().unwrap()]);
    assert!(output.status.success());
    assert_eq!(
        json(&palisade(&db, &["status", "--output", "json"]))["total_records"],
        2
    );

    let output = palisade(
        &db,
        &[
            "match",
            "--ecosystem",
            "crates.io",
            "--package",
            "x",
            "--version",
            "not-semver",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot match x"));
}

/// `db match --module-stream`: a Red Hat module package is matched against its own stream's
/// OVAL definitions only; without a stream, against the version line's.
#[test]
fn match_takes_the_package_module_streams() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vulndb.sqlite");
    let feed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vulndb/tests/data/oval/rhel-8-container-tools.oval.xml");
    let output = palisade(&db, &["import", feed.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let matched = |version: &str, streams: &[&str]| {
        let mut args = vec![
            "match",
            "--ecosystem",
            "Red Hat:8",
            "--package",
            "podman",
            "--version",
            version,
            "--output",
            "json",
        ];
        for stream in streams {
            args.extend(["--module-stream", stream]);
        }
        palisade(&db, &args)
    };
    let ids = |streams: &[&str]| -> Vec<String> {
        let report = json(&matched("4.0.2-26.module+el8.9.0+21245+22222222", streams));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| finding["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&["container-tools:4.0"]),
        ["CVE-2024-9103", "CVE-2024-9104"]
    );
    assert_eq!(
        ids(&["container-tools:rhel8"]),
        ["CVE-2024-9104", "RHSA-2024:9101"]
    );
    assert_eq!(
        ids(&[]),
        ["CVE-2024-9103", "CVE-2024-9104", "RHSA-2024:9101"]
    );
    // A stream is two plausible names, as the inventory and the OVAL reader take them.
    for refused in [
        "container-tools",
        "container-tools: 4.0",
        "container-tools:4.0:1",
    ] {
        let output = matched("4.0.2-26", &[refused]);
        assert_eq!(output.status.code(), Some(2), "{refused:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("is not a module stream name:stream"),
            "{output:?}"
        );
    }
}

/// Serves `body` once on 127.0.0.1 and returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{address}/osv/GO-2099-0001.json")
}

#[test]
fn update_from_a_local_http_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vulndb.sqlite");
    let url = serve_once(GO_RECORD.as_bytes().to_vec());
    let output = palisade(&db, &["update", "--url", &url]);
    assert!(output.status.success(), "{output:?}");
    let status = json(&palisade(&db, &["status", "--output", "json"]));
    assert_eq!(status["sources"][0]["location"], url.as_str());
    assert_eq!(status["sources"][0]["record_count"], 1);

    let output = palisade(&db, &["update", "--url", "ftp://127.0.0.1/x"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn default_database_location_follows_xdg_data_home() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["db", "status", "--output", "json"])
        .env("XDG_DATA_HOME", dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("palisade/vulndb.sqlite").exists());
}
