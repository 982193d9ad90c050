//! Import and matching tests: self-written OSV fixtures for every range rule, hostile input,
//! and the shared real feeds (`../shared/data/vulndb`, skipped with a message when absent,
//! required in CI).

use std::io::Write;
use std::path::Path;

use palisade_vulndb::{
    Database, DistroStatus, DownloadOptions, Downloader, ErrorKind, Finding, Index, Limits,
    MatchReport, Package,
};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An OSV record affecting `pkg` in `eco` with the given ranges and versions.
fn osv(id: &str, eco: &str, ranges: Value, versions: Value) -> Value {
    json!({
        "id": id,
        "summary": format!("{id} summary"),
        "affected": [{"package": {"ecosystem": eco, "name": "pkg"}, "ranges": ranges, "versions": versions}],
    })
}

fn events(kind: &str, events: Value) -> Value {
    json!([{"type": kind, "events": events}])
}

async fn index_of(records: Vec<Value>) -> Index {
    let database = Database::open_in_memory().await.expect("open");
    let bytes = serde_json::to_vec(&Value::Array(records)).expect("json");
    let report = database
        .import_bytes("fixtures.json", bytes.clone(), Limits::default())
        .await
        .expect("import");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    Index::load(&database).await.expect("load")
}

fn query(index: &Index, ecosystem: &str, name: &str, version: &str) -> MatchReport {
    index
        .matches(&Package {
            ecosystem: ecosystem.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            source_name: None,
            source_version: None,
            module_streams: Vec::new(),
        })
        .expect("match")
}

fn ids(index: &Index, ecosystem: &str, version: &str) -> Vec<String> {
    query(index, ecosystem, "pkg", version)
        .findings
        .into_iter()
        .map(|finding| finding.id)
        .collect()
}

/// Checks which of `versions` the single fixture record affects.
fn check_range(record: Value, ecosystem: &str, cases: &[(&str, bool)]) {
    runtime().block_on(async {
        let index = index_of(vec![record]).await;
        for (version, expected) in cases {
            let affected = !ids(&index, ecosystem, version).is_empty();
            assert_eq!(affected, *expected, "{ecosystem} {version}");
        }
    });
}

#[test]
fn introduced_zero_and_fixed() {
    let record = osv(
        "T-1",
        "PyPI",
        events("ECOSYSTEM", json!([{"introduced": "0"}, {"fixed": "2.0"}])),
        json!([]),
    );
    check_range(
        record,
        "PyPI",
        &[
            ("0.1", true),
            ("1.9.9", true),
            ("2.0rc1", true),
            ("2.0", false),
            ("3", false),
        ],
    );
}

#[test]
fn last_affected_is_inclusive() {
    let record = osv(
        "T-2",
        "crates.io",
        events(
            "SEMVER",
            json!([{"introduced": "1.0.0"}, {"last_affected": "1.4.0"}]),
        ),
        json!([]),
    );
    check_range(
        record,
        "crates.io",
        &[
            ("0.9.0", false),
            ("1.0.0", true),
            ("1.4.0", true),
            ("1.4.1", false),
        ],
    );
}

#[test]
fn limit_bounds_the_range() {
    let record = osv(
        "T-3",
        "npm",
        events(
            "SEMVER",
            json!([{"introduced": "1.0.0"}, {"limit": "1.5.0"}]),
        ),
        json!([]),
    );
    check_range(
        record,
        "npm",
        &[
            ("0.1.0", false),
            ("1.2.0", true),
            ("1.5.0", false),
            ("2.0.0", false),
        ],
    );
    let record = osv(
        "T-3b",
        "npm",
        events("SEMVER", json!([{"introduced": "1.0.0"}, {"limit": "*"}])),
        json!([]),
    );
    check_range(record, "npm", &[("0.1.0", false), ("9.0.0", true)]);
}

#[test]
fn several_pairs_and_unsorted_events() {
    // Events deliberately out of order: the evaluation sorts them first.
    let record = osv(
        "T-4",
        "Go",
        events(
            "SEMVER",
            json!([{"fixed": "1.5.0"}, {"introduced": "2.0.0"}, {"introduced": "1.0.0"}, {"fixed": "2.3.1"}]),
        ),
        json!([]),
    );
    check_range(
        record,
        "Go",
        &[
            ("v0.9.0", false),
            ("v1.0.0", true),
            ("v1.4.9", true),
            ("v1.5.0", false),
            ("v1.9.0", false),
            ("v2.0.0", true),
            ("v2.3.0", true),
            ("v2.3.1", false),
        ],
    );
}

#[test]
fn multiple_ranges_and_versions_list() {
    let ranges = json!([
        {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.1"}]},
        {"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"fixed": "3.2"}]},
    ]);
    let record = osv("T-5", "PyPI", ranges, json!(["2.5", "7.0.0"]));
    check_range(
        record,
        "PyPI",
        &[
            ("1.0.5", true),
            ("2.0", false),
            ("2.5", true),
            ("2.5.0", true),
            ("3.1", true),
            ("3.2", false),
            ("7", true),
        ],
    );
}

#[test]
fn git_ranges_are_skipped_and_counted() {
    let ranges = json!([{"type": "GIT", "repo": "https://example.invalid/r", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]);
    runtime().block_on(async {
        let index = index_of(vec![osv("T-6", "PyPI", ranges, json!([]))]).await;
        let report = query(&index, "PyPI", "pkg", "1.0");
        assert!(report.findings.is_empty());
        assert_eq!(report.stats.git_ranges_skipped, 1);
    });
}

#[test]
fn withdrawn_records_are_kept_but_not_matched() {
    let mut record = osv(
        "T-7",
        "PyPI",
        events("ECOSYSTEM", json!([{"introduced": "0"}])),
        json!([]),
    );
    record["withdrawn"] = json!("2024-01-01T00:00:00Z");
    runtime().block_on(async {
        let index = index_of(vec![record]).await;
        assert_eq!(index.len(), 1);
        let report = query(&index, "PyPI", "pkg", "1.0");
        assert!(report.findings.is_empty());
        assert_eq!(report.stats.withdrawn_skipped, 1);
    });
}

#[test]
fn aliases_merge_into_one_finding() {
    let range = events("ECOSYSTEM", json!([{"introduced": "0"}, {"fixed": "2.0"}]));
    let mut ghsa = osv("GHSA-aaaa-bbbb-cccc", "PyPI", range.clone(), json!([]));
    ghsa["aliases"] = json!(["CVE-2099-0001"]);
    ghsa["severity"] =
        json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
    let mut pysec = osv("PYSEC-2099-1", "PyPI", range.clone(), json!([]));
    pysec["aliases"] = json!(["CVE-2099-0001"]);
    let other = osv("PYSEC-2099-2", "PyPI", range, json!([]));
    runtime().block_on(async {
        let index = index_of(vec![ghsa, pysec, other]).await;
        let report = query(&index, "PyPI", "Pkg", "1.0");
        assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
        let merged = &report.findings[0];
        assert_eq!(merged.id, "GHSA-aaaa-bbbb-cccc");
        assert_eq!(merged.aliases, ["CVE-2099-0001", "PYSEC-2099-1"]);
        assert_eq!(merged.cvss_score, Some(9.8));
        assert_eq!(merged.severity.as_deref(), Some("critical"));
        assert_eq!(merged.fixed_versions, ["2.0"]);
        assert_eq!(merged.fix.as_deref(), Some("pip install 'Pkg>=2.0'"));
        assert_eq!(report.findings[1].id, "PYSEC-2099-2");
    });
}

#[test]
fn fixed_versions_lowest_above_installed_first() {
    let record = osv(
        "T-8",
        "crates.io",
        events(
            "SEMVER",
            json!([{"introduced": "0.0.0-0"}, {"fixed": "0.2.0"}, {"introduced": "1.0.0"}, {"fixed": "1.3.0"}, {"introduced": "2.0.0"}, {"fixed": "2.1.0"}]),
        ),
        json!([]),
    );
    runtime().block_on(async {
        let index = index_of(vec![record]).await;
        let report = query(&index, "cargo", "pkg", "1.2.0");
        let finding = &report.findings[0];
        assert_eq!(finding.fixed_versions, ["1.3.0", "2.1.0"]);
        assert_eq!(
            finding.fix.as_deref(),
            Some("cargo update -p pkg --precise 1.3.0")
        );
    });
}

#[test]
fn invalid_installed_version_is_an_error() {
    runtime().block_on(async {
        let index = index_of(vec![osv(
            "T-9",
            "crates.io",
            events("SEMVER", json!([{"introduced": "0"}])),
            json!([]),
        )])
        .await;
        let error = index
            .matches(&Package {
                ecosystem: "crates.io".into(),
                name: "pkg".into(),
                version: "not a version".into(),
                source_name: None,
                source_version: None,
                module_streams: Vec::new(),
            })
            .expect_err("invalid version");
        assert!(
            matches!(error.kind(), ErrorKind::InvalidVersion { .. }),
            "{error}"
        );
    });
}

const DEBIAN_TRACKER: &str = r#"{
  "openssl": {
    "CVE-2099-1000": {"description": "Fixed in bookworm", "releases": {
        "bookworm": {"status": "resolved", "fixed_version": "3.0.11-1~deb12u2", "urgency": "medium"},
        "bullseye": {"status": "open", "urgency": "unimportant"}}},
    "CVE-2099-1001": {"description": "Not affected", "releases": {
        "bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "not yet assigned"}}},
    "CVE-2099-1002": {"description": "Ignored", "releases": {
        "bookworm": {"status": "open", "urgency": "low", "nodsa_reason": "ignored"}}}
  }
}"#;

#[test]
fn debian_tracker_by_source_package_and_release() {
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let report = database
            .import_bytes(
                "tracker.json",
                DEBIAN_TRACKER.as_bytes().to_vec(),
                Limits::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            (report.record_count, report.format.as_str()),
            (3, "debian-tracker")
        );
        let index = Index::load(&database).await.unwrap();
        let package = |ecosystem: &str, version: &str| Package {
            ecosystem: ecosystem.into(),
            name: "libssl3".into(),
            version: version.into(),
            source_name: Some("openssl".into()),
            source_version: None,
            module_streams: Vec::new(),
        };
        let report = index
            .matches(&package("debian:bookworm", "3.0.11-1~deb12u1"))
            .unwrap();
        let found: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.status))
            .collect();
        assert_eq!(
            found,
            [
                ("CVE-2099-1000", Some(DistroStatus::Fixed)),
                ("CVE-2099-1002", Some(DistroStatus::WillNotFix))
            ]
        );
        assert_eq!(report.stats.not_affected_skipped, 1);
        assert_eq!(
            report.findings[0].fix.as_deref(),
            Some("apt-get install --only-upgrade libssl3=3.0.11-1~deb12u2")
        );
        let report = index
            .matches(&package("Debian:12", "3.0.11-1~deb12u2"))
            .unwrap();
        assert_eq!(report.findings.len(), 1, "only the ignored one is left");
        let report = index
            .matches(&package("Debian:11", "1.1.1n-0+deb11u5"))
            .unwrap();
        assert_eq!(report.findings[0].status, Some(DistroStatus::Negligible));
        // Another release's data never applies.
        assert!(
            index
                .matches(&package("Debian:13", "1.0-1"))
                .unwrap()
                .findings
                .is_empty()
        );
    });
}

#[test]
fn alpine_secdb() {
    let secdb = r#"{"distroversion": "v3.19", "reponame": "main", "packages": [
        {"pkg": {"name": "busybox", "secfixes": {"1.36.1-r15": ["CVE-2023-42363", "CVE-2023-42364 GHSA-x"], "0": ["CVE-2021-0000"]}}}]}"#;
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let report = database
            .import_bytes("secdb.json", secdb.as_bytes().to_vec(), Limits::default())
            .await
            .unwrap();
        assert_eq!(
            (report.record_count, report.format.as_str()),
            (3, "alpine-secdb")
        );
        let index = Index::load(&database).await.unwrap();
        let report = query(&index, "alpine:3.19.1", "busybox", "1.36.1-r14");
        let found: Vec<_> = report.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(found, ["CVE-2023-42363", "CVE-2023-42364"]);
        assert_eq!(report.findings[1].aliases, ["GHSA-x"]);
        assert_eq!(
            report.findings[0].fix.as_deref(),
            Some("apk add busybox=1.36.1-r15")
        );
        assert!(
            query(&index, "Alpine:v3.19", "busybox", "1.36.1-r15")
                .findings
                .is_empty()
        );
        assert!(
            query(&index, "Alpine:v3.18", "busybox", "1.0-r0")
                .findings
                .is_empty()
        );
    });
}

#[test]
fn reimport_replaces_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.json");
    runtime().block_on(async {
        let database = Database::open(&dir.path().join("db.sqlite")).await.unwrap();
        let two = json!([
            osv("A-1", "PyPI", json!([]), json!(["1"])),
            osv("A-2", "PyPI", json!([]), json!(["1"]))
        ]);
        std::fs::write(&path, two.to_string()).unwrap();
        database
            .import_path(&path, Limits::default())
            .await
            .unwrap();
        database
            .import_path(&path, Limits::default())
            .await
            .unwrap();
        let status = database.status().await.unwrap();
        assert_eq!((status.sources.len(), status.total_records), (1, 2));
        std::fs::write(
            &path,
            json!([osv("A-3", "PyPI", json!([]), json!(["1"]))]).to_string(),
        )
        .unwrap();
        database
            .import_path(&path, Limits::default())
            .await
            .unwrap();
        let status = database.status().await.unwrap();
        assert_eq!((status.sources.len(), status.total_records), (1, 1));
        assert_eq!(status.ecosystems, [("PyPI".to_owned(), 1)]);
        let index = Index::load(&database).await.unwrap();
        assert_eq!(ids(&index, "PyPI", "1"), ["A-3"]);
    });
}

#[test]
fn malformed_records_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.json"),
        osv("G-1", "PyPI", json!([]), json!(["1"])).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"id\": \"B-1\", \"affected\": [",
    )
    .unwrap();
    std::fs::write(dir.path().join("wrong.json"), r#"{"id": 7}"#).unwrap();
    std::fs::write(
        dir.path().join("event.json"),
        osv(
            "B-2",
            "PyPI",
            events("ECOSYSTEM", json!([{"introduced": "1", "fixed": "2"}])),
            json!([]),
        )
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "id: [unclosed\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "not a feed").unwrap();
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let report = database
            .import_path(dir.path(), Limits::default())
            .await
            .unwrap();
        assert_eq!(report.record_count, 1);
        let mut warned: Vec<_> = report
            .warnings
            .iter()
            .map(|warning| {
                Path::new(&warning.location)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        warned.sort();
        assert_eq!(
            warned,
            ["bad.yaml", "broken.json", "event.json", "wrong.json"],
            "{:?}",
            report.warnings
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|warning| warning.reason.contains("malformed JSON"))
        );
    });
}

fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn zip_archives() {
    let record = osv("Z-1", "npm", json!([]), json!(["1.0.0"])).to_string();
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let bytes = zip_with(&[
            ("Z-1.json", record.as_bytes()),
            ("sub/notes.txt", b"ignored"),
        ]);
        let report = database
            .import_bytes("all.zip", bytes.clone(), Limits::default())
            .await
            .unwrap();
        assert_eq!(
            (report.record_count, report.format.as_str()),
            (1, "osv+osv-zip")
        );

        for hostile in ["../evil.json", "/etc/evil.json"] {
            let bytes = zip_with(&[("ok.json", record.as_bytes()), (hostile, record.as_bytes())]);
            let error = database
                .import_bytes("hostile.zip", bytes.clone(), Limits::default())
                .await
                .unwrap_err();
            assert!(
                matches!(error.kind(), ErrorKind::UnsafeZipEntry { entry, .. } if entry == hostile),
                "{error}"
            );
        }

        let big = vec![b' '; 4096];
        let bytes = zip_with(&[("a.json", &big), ("b.json", &big)]);
        let limits = Limits {
            max_file_bytes: 1 << 20,
            max_zip_uncompressed_bytes: 6000,
            ..Limits::default()
        };
        let error = database
            .import_bytes("bomb.zip", bytes.clone(), limits)
            .await
            .unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::TooLarge { size: 8192, .. }),
            "{error}"
        );
    });
}

#[test]
fn oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    // Sparse: the size check comes before any read.
    std::fs::File::create(&path)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let error = database
            .import_path(&path, Limits::default())
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("over the limit of 67108864 bytes"),
            "{error}"
        );
        assert_eq!(database.status().await.unwrap().sources.len(), 0);
    });
}

/// Imports a shared data set and checks its exact record count.
async fn import_shared(database: &Database, relative: &str, expected: u64) -> bool {
    let Some(dir) = palisade_testdata::shared_data(relative) else {
        return false;
    };
    let report = database
        .import_path(&dir, Limits::default())
        .await
        .expect("import");
    assert!(
        report.warnings.is_empty(),
        "{relative}: {:?}",
        &report.warnings[..report.warnings.len().min(5)]
    );
    assert_eq!(report.record_count, expected, "{relative}");
    true
}

#[test]
fn real_feeds() {
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        if !import_shared(&database, "vulndb/go", 4291).await
            || !import_shared(&database, "vulndb/crates", 1206).await
            || !import_shared(&database, "vulndb/pypi", 2661).await
            || !import_shared(&database, "vulndb/debian", 8940).await
        {
            return;
        }
        let index = Index::load(&database).await.unwrap();
        for (ecosystem, name, version, expected_id) in [
            (
                "Go",
                "golang.org/x/net",
                "v0.0.0-20190620200207-3b0461eec859",
                "GO-2022-0236",
            ),
            ("crates.io", "tokio", "1.8.0", "RUSTSEC-2021-0124"),
            ("crates.io", "hyper", "0.14.9", "RUSTSEC-2021-0078"),
            ("PyPI", "Jinja2", "2.10", "PYSEC-2019-217"),
            ("PyPI", "django", "3.2.0", "PYSEC-2021-98"),
        ] {
            let report = query(&index, ecosystem, name, version);
            let found: Vec<_> = report.findings.iter().map(|f| f.id.as_str()).collect();
            assert!(found.contains(&expected_id), "{name} {version}: {found:?}");
            let finding = report
                .findings
                .iter()
                .find(|f| f.id == expected_id)
                .unwrap();
            assert!(finding.fix.is_some(), "{finding:?}");
        }
        let report = index
            .matches(&Package {
                ecosystem: "Debian:11".into(),
                name: "xserver-xorg-core".into(),
                version: "2:1.20.11-1+deb11u5".into(),
                source_name: Some("xorg-server".into()),
                source_version: None,
                module_streams: Vec::new(),
            })
            .unwrap();
        let finding = report
            .findings
            .iter()
            .find(|f| f.id == "DSA-5380-1")
            .expect("DSA-5380-1");
        assert_eq!(finding.aliases, ["CVE-2023-1393"]);
        assert_eq!(finding.fixed_versions, ["2:1.20.11-1+deb11u6"]);
        assert_eq!(finding.status, Some(DistroStatus::Fixed));
    });
}

#[test]
fn cvss_v4_vectors_are_scored() {
    let mut record = osv("T-10", "npm", json!([]), json!(["1.0.0"]));
    record["severity"] = json!([{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]);
    runtime().block_on(async {
        let index = index_of(vec![record]).await;
        let finding = &query(&index, "npm", "pkg", "1.0.0").findings[0];
        assert_eq!(finding.cvss_score, Some(9.3));
        assert_eq!(finding.severity.as_deref(), Some("critical"));
    });
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not open with //!",
            path.display()
        );
    }
}

#[test]
fn deeply_nested_input_is_a_warning_not_a_crash() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_yaml = format!(
        "id: X\naffected: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let report = database
            .import_bytes(
                "deep.json",
                deep_json.as_bytes().to_vec(),
                Limits::default(),
            )
            .await
            .unwrap();
        assert_eq!((report.record_count, report.warnings.len()), (0, 1));
        let report = database
            .import_bytes(
                "deep.yaml",
                deep_yaml.as_bytes().to_vec(),
                Limits::default(),
            )
            .await
            .unwrap();
        assert_eq!((report.record_count, report.warnings.len()), (0, 1));
    });
}

/// Serves one HTTP response with `status` and `body` on 127.0.0.1 and returns the URL.
fn serve_once(status: &str, body: Vec<u8>) -> String {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let status = status.to_owned();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{address}/feed.json")
}

#[test]
fn downloads_are_bounded_and_checked() {
    runtime().block_on(async {
        let url = serve_once("200 OK", b"0123456789".to_vec());
        assert_eq!(
            Downloader::new(&DownloadOptions::new(10))
                .unwrap()
                .get(&url)
                .await
                .unwrap(),
            b"0123456789"
        );
        let url = serve_once("200 OK", vec![b'x'; 11]);
        let error = Downloader::new(&DownloadOptions::new(10))
            .unwrap()
            .get(&url)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ErrorKind::TooLarge {
                    size: 11,
                    limit: 10,
                    ..
                }
            ),
            "{error}"
        );
        let url = serve_once("404 Not Found", Vec::new());
        let error = Downloader::new(&DownloadOptions::new(10))
            .unwrap()
            .get(&url)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("HTTP status 404"), "{error}");
    });
}

/// Debian tracker entries for source packages whose binaries differ from them in name,
/// version or both (versions as this machine's Debian 12 status file has them).
const SOURCE_TRACKER: &str = r#"{
  "bash": {"CVE-2099-2000": {"description": "bash", "releases": {
      "bookworm": {"status": "resolved", "fixed_version": "5.2.15-2+deb12u1", "urgency": "medium"}}}},
  "util-linux": {"CVE-2099-2001": {"description": "util-linux", "releases": {
      "bookworm": {"status": "resolved", "fixed_version": "2.38.1-5+deb12u4", "urgency": "medium"}}}},
  "linux": {"CVE-2099-2002": {"description": "linux", "releases": {
      "bookworm": {"status": "resolved", "fixed_version": "6.1.200-1", "urgency": "high"}}}},
  "bc": {"CVE-2099-2003": {"description": "bc", "releases": {
      "bookworm": {"status": "resolved", "fixed_version": "1.07.1-4", "urgency": "low"}}}}
}"#;

/// OSV `Debian:12` records, which name source packages and list source versions: one
/// listing the affected versions only, and a kernel advisory (DSA-5630-1 fixed `linux` in
/// 6.1.76-1), which like every Debian advisory names `linux`, never the signed source.
fn source_osv_records() -> Vec<Value> {
    let affected = |name: &str, ranges: Value, versions: Value| {
        json!([{"package": {"ecosystem": "Debian:12", "name": name},
                "ranges": ranges, "versions": versions}])
    };
    vec![
        json!({"id": "DLA-9999-1", "summary": "bash versions",
               "affected": affected("bash", json!([]), json!(["5.2.15-1", "5.2.15-2"]))}),
        json!({"id": "DSA-9999-1", "summary": "linux kernel",
               "affected": affected("linux",
                   events("ECOSYSTEM", json!([{"introduced": "0"}, {"fixed": "6.1.76-1"}])),
                   json!([]))}),
    ]
}

fn source_index() -> Index {
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        database
            .import_bytes(
                "tracker.json",
                SOURCE_TRACKER.as_bytes().to_vec(),
                Limits::default(),
            )
            .await
            .unwrap();
        let osv = serde_json::to_vec(&Value::Array(source_osv_records())).unwrap();
        database
            .import_bytes("osv.json", osv, Limits::default())
            .await
            .unwrap();
        Index::load(&database).await.unwrap()
    })
}

fn debian_package(name: &str, version: &str, source: Option<(&str, &str)>) -> Package {
    Package {
        ecosystem: "Debian:12".into(),
        name: name.into(),
        version: version.into(),
        source_name: source.map(|(name, _)| name.to_owned()),
        source_version: source.map(|(_, version)| version.to_owned()),
        module_streams: Vec::new(),
    }
}

/// (id, package, installed, source package, source version, fix) of a finding.
type SourceFinding = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The [`SourceFinding`] of each finding.
fn source_findings(index: &Index, package: &Package) -> Vec<SourceFinding> {
    index
        .matches(package)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| {
            (
                f.id,
                f.package,
                f.installed_version,
                f.source_package,
                f.source_version,
                f.fix,
            )
        })
        .collect()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

#[test]
fn binnmu_is_compared_by_its_source_version() {
    let index = source_index();
    // bash 5.2.15-2+b8 is a rebuild of source 5.2.15-2, which the OSV record lists as
    // affected: compared by the binary version, it matched nothing in the list.
    let bash = debian_package("bash", "5.2.15-2+b8", Some(("bash", "5.2.15-2")));
    assert_eq!(
        source_findings(&index, &bash),
        [
            (
                "CVE-2099-2000".into(),
                "bash".into(),
                "5.2.15-2+b8".into(),
                None,
                some("5.2.15-2"),
                some("apt-get install --only-upgrade bash=5.2.15-2+deb12u1")
            ),
            (
                "DLA-9999-1".into(),
                "bash".into(),
                "5.2.15-2+b8".into(),
                None,
                some("5.2.15-2"),
                None
            ),
        ]
    );
    let fixed = debian_package("bash", "5.2.15-2+deb12u1", None);
    assert!(index.matches(&fixed).unwrap().findings.is_empty());
}

#[test]
fn binaries_with_their_own_versions_are_compared_by_the_source_version() {
    let index = source_index();
    // The binary's epoch made it look newer than every fixed version of util-linux.
    let bsdutils = debian_package(
        "bsdutils",
        "1:2.38.1-5+deb12u3",
        Some(("util-linux", "2.38.1-5+deb12u3")),
    );
    assert_eq!(
        source_findings(&index, &bsdutils),
        [(
            "CVE-2099-2001".into(),
            "bsdutils".into(),
            "1:2.38.1-5+deb12u3".into(),
            some("util-linux"),
            some("2.38.1-5+deb12u3"),
            some("apt-get install --only-upgrade bsdutils=1:2.38.1-5+deb12u4")
        )]
    );
    // bpftool's own version 7.1.0 is above every linux version.
    let bpftool = debian_package("bpftool", "7.1.0+6.1.192-3", Some(("linux", "6.1.192-3")));
    assert_eq!(
        source_findings(&index, &bpftool)
            .into_iter()
            .map(|finding| finding.5)
            .collect::<Vec<_>>(),
        [some(
            "apt-get install --only-upgrade bpftool=7.1.0+6.1.200-1"
        )]
    );
    // The fixed versions are the binary's, as upgrades and re-checks of bpftool need them;
    // the advisory's are kept beside them.
    let report = index.matches(&bpftool).unwrap();
    assert_eq!(report.findings[0].fixed_versions, ["7.1.0+6.1.200-1"]);
    assert_eq!(report.findings[0].source_fixed_versions, ["6.1.200-1"]);
}

#[test]
fn signed_kernel_is_matched_as_the_kernel_it_signs() {
    let index = source_index();
    // `linux-signed-amd64 6.1.76+1` signs `linux 6.1.76-1`: advisories name `linux` (the
    // old lookup by the signed source's name found nothing at all).
    let current = debian_package(
        "linux-image-6.1.0-18-amd64",
        "6.1.76-1",
        Some(("linux-signed-amd64", "6.1.76+1")),
    );
    assert_eq!(
        source_findings(&index, &current),
        [(
            "CVE-2099-2002".into(),
            "linux-image-6.1.0-18-amd64".into(),
            "6.1.76-1".into(),
            some("linux"),
            None,
            some("apt-get install --only-upgrade linux-image-6.1.0-18-amd64=6.1.200-1")
        )]
    );
    let old = debian_package(
        "linux-image-6.1.0-13-amd64",
        "6.1.55-1",
        Some(("linux-signed-amd64", "6.1.55+1")),
    );
    let found = source_findings(&index, &old);
    assert_eq!(
        found
            .iter()
            .map(|f| (f.0.as_str(), f.5.as_deref()))
            .collect::<Vec<_>>(),
        [
            (
                "CVE-2099-2002",
                Some("apt-get install --only-upgrade linux-image-6.1.0-13-amd64=6.1.200-1")
            ),
            (
                "DSA-9999-1",
                Some("apt-get install --only-upgrade linux-image-6.1.0-13-amd64=6.1.76-1")
            ),
        ]
    );
    let report = index.matches(&old).unwrap();
    assert_eq!(report.findings[1].fixed_versions, ["6.1.76-1"]);
    // The kernel's own version is what was compared: nothing is a source version apart.
    assert!(report.findings[1].source_fixed_versions.is_empty());
    // A backport's signed version `6.1.69+1~bpo11+1` is kernel 6.1.69-1~bpo11+1.
    let backport = debian_package(
        "linux-image-6.1.0-0.deb11.17-amd64",
        "6.1.69-1~bpo11+1",
        Some(("linux-signed-amd64", "6.1.69+1~bpo11+1")),
    );
    assert_eq!(source_findings(&index, &backport).len(), 2);
    let fixed = debian_package(
        "linux-image-6.1.0-30-amd64",
        "6.1.200-1",
        Some(("linux-signed-amd64", "6.1.200+1")),
    );
    assert_eq!(source_findings(&index, &fixed), []);
}

#[test]
fn ubuntu_signed_kernels_match_their_kernel_and_meta_packages_do_not() {
    // UBUNTU-CVE records name source packages with OSV's `Ubuntu:<release>:LTS` ecosystem.
    let record = |id: &str, ecosystem: &str, name: &str, fixed: &str| {
        json!({"id": id, "summary": "kernel", "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]})
    };
    let index = runtime().block_on(index_of(vec![
        record(
            "UBUNTU-CVE-2099-1",
            "Ubuntu:22.04:LTS",
            "linux",
            "5.15.0-92.102",
        ),
        record(
            "UBUNTU-CVE-2099-2",
            "Ubuntu:20.04:LTS",
            "linux-hwe-5.15",
            "5.15.0-92.102~20.04.1",
        ),
    ]));
    let ubuntu = |release: &str, name: &str, version: &str, source: &str| Package {
        ecosystem: format!("Ubuntu:{release}"),
        name: name.into(),
        version: version.into(),
        source_name: Some(source.into()),
        source_version: None,
        module_streams: Vec::new(),
    };
    let image = ubuntu(
        "22.04",
        "linux-image-5.15.0-91-generic",
        "5.15.0-91.101",
        "linux-signed",
    );
    assert_eq!(
        source_findings(&index, &image),
        [(
            "UBUNTU-CVE-2099-1".into(),
            "linux-image-5.15.0-91-generic".into(),
            "5.15.0-91.101".into(),
            some("linux"),
            None,
            some("apt-get install --only-upgrade linux-image-5.15.0-91-generic=5.15.0-92.102")
        )]
    );
    let hwe = ubuntu(
        "20.04",
        "linux-image-5.15.0-91-generic",
        "5.15.0-91.101~20.04.1",
        "linux-signed-hwe-5.15",
    );
    assert_eq!(source_findings(&index, &hwe)[0].0, "UBUNTU-CVE-2099-2");
    // The meta package's version ends in its own upload number: compared with the kernel's
    // fixed version it would say nothing true, so it is not matched as `linux`.
    let meta = ubuntu("22.04", "linux-image-generic", "5.15.0.91.88", "linux-meta");
    assert_eq!(source_findings(&index, &meta), []);
}

/// Records shaped like OSV's rpm advisories, which list binary rpms: AlmaLinux's ALSA (one
/// affected entry per binary package), Red Hat's RHSA (ecosystem `Red Hat:<stream>:<major>
/// ::<repository>`, the source rpm listed beside its binaries), SUSE's (one ecosystem per
/// product and module), and a Red Hat CVE entry keyed by the source rpm (`vim`, which no
/// binary is named: Red Hat's unfixed data).
fn rpm_records() -> Vec<Value> {
    let affected = |ecosystem: &str, names: &[(&str, &str)]| {
        names
            .iter()
            .map(|(name, fixed)| {
                json!({"package": {"ecosystem": ecosystem, "name": name,
                                   "purl": format!("pkg:rpm/x/{name}")},
                       "ranges": [{"type": "ECOSYSTEM",
                                   "events": [{"introduced": "0"}, {"fixed": fixed}]}]})
            })
            .collect::<Vec<_>>()
    };
    vec![
        json!({"id": "ALSA-2099:0001", "aliases": ["CVE-2099-5000"], "summary": "openssl",
               "affected": affected("AlmaLinux:9", &[("openssl", "1:3.0.7-25.el9_3"), ("openssl-libs", "1:3.0.7-25.el9_3")])}),
        json!({"id": "RHSA-2099:0002", "aliases": ["CVE-2099-5001"], "summary": "perl",
               "affected": affected("Red Hat:enterprise_linux:9::appstream",
                                    &[("perl", "4:5.32.1-481.el9"), ("perl-Carp", "4:1.50-481.el9")])}),
        json!({"id": "SUSE-SU-2099:0003-1", "aliases": ["CVE-2099-5002"], "summary": "openssl",
               "affected": affected("SUSE:Linux Enterprise Module for Basesystem 15 SP5",
                                    &[("libopenssl3", "3.0.8-150500.5.20.1"), ("openssl-3", "3.0.8-150500.5.20.1")])}),
        json!({"id": "CVE-2099-5003", "summary": "vim, unfixed",
               "affected": [{"package": {"ecosystem": "Red Hat:enterprise_linux:9::appstream",
                                         "name": "vim"},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}),
    ]
}

fn rpm_package(
    ecosystem: &str,
    name: &str,
    version: &str,
    source: Option<(&str, Option<&str>)>,
) -> Package {
    Package {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        source_name: source.map(|(name, _)| name.to_owned()),
        source_version: source.and_then(|(_, version)| version.map(str::to_owned)),
        module_streams: Vec::new(),
    }
}

/// The findings for a binary rpm package (no source package named) in `ecosystem`.
fn rpm_findings(index: &Index, ecosystem: &str, name: &str, version: &str) -> Vec<Finding> {
    index
        .matches(&rpm_package(ecosystem, name, version, None))
        .unwrap()
        .findings
}

#[test]
fn rpm_packages_match_binary_and_source_keyed_records() {
    let index = runtime().block_on(index_of(rpm_records()));
    // A binary subpackage named in the advisory: found by its own name and version (the
    // old lookup went by the source rpm's name only).
    let libs = rpm_package(
        "AlmaLinux:9",
        "openssl-libs",
        "1:3.0.7-24.el9",
        Some(("openssl", None)),
    );
    assert_eq!(
        source_findings(&index, &libs),
        [(
            "ALSA-2099:0001".into(),
            "openssl-libs".into(),
            "1:3.0.7-24.el9".into(),
            None,
            None,
            some("dnf upgrade openssl-libs-1:3.0.7-25.el9_3")
        )]
    );
    let fixed = rpm_package(
        "AlmaLinux:9",
        "openssl-libs",
        "1:3.0.7-25.el9_3",
        Some(("openssl", None)),
    );
    assert_eq!(source_findings(&index, &fixed), []);
    // Red Hat's stream and repository suffix is the release `os-release` gives (9).
    // perl-Carp 1.50 is built from perl 5.32.1 and listed with its own fixed version. A
    // perl-Carp from the fixed build is not affected, although its own version sorts below
    // the fixed perl version (compared under the source's name, as before, it was).
    let carp = |version: &str, source_version: &str| {
        rpm_package(
            "Red Hat:9",
            "perl-Carp",
            version,
            Some(("perl", Some(source_version))),
        )
    };
    let found = index
        .matches(&carp("4:1.50-460.el9", "4:5.32.1-480.el9"))
        .unwrap()
        .findings;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (
            found[0].id.as_str(),
            found[0].fix.as_deref(),
            &found[0].fixed_versions,
            &found[0].source_fixed_versions
        ),
        (
            "RHSA-2099:0002",
            Some("dnf upgrade perl-Carp-4:1.50-481.el9"),
            &vec!["4:1.50-481.el9".to_owned()],
            &vec!["4:5.32.1-481.el9".to_owned()]
        )
    );
    assert_eq!(
        source_findings(&index, &carp("4:1.50-481.el9", "4:5.32.1-481.el9")),
        []
    );
    // A subpackage the advisory does not list, found through its source rpm.
    let libs = rpm_package(
        "Red Hat:9",
        "perl-libs",
        "4:5.32.1-480.el9",
        Some(("perl", None)),
    );
    assert_eq!(
        source_findings(&index, &libs),
        [(
            "RHSA-2099:0002".into(),
            "perl-libs".into(),
            "4:5.32.1-480.el9".into(),
            some("perl"),
            None,
            some("dnf upgrade perl-libs-4:5.32.1-481.el9")
        )]
    );
    // A record keyed by the source rpm only: matched through the source name.
    let vim = rpm_package(
        "Red Hat:9",
        "vim-minimal",
        "2:8.2.2637-20.el9_1",
        Some(("vim", None)),
    );
    let found = index.matches(&vim).unwrap().findings;
    assert_eq!(
        (
            found[0].id.as_str(),
            found[0].source_package.as_deref(),
            found[0].status
        ),
        ("CVE-2099-5003", Some("vim"), None)
    );
    // SUSE: the module's product name is the release SLES 15 SP5's os-release gives.
    let suse = rpm_package(
        "SUSE:15.5",
        "libopenssl3",
        "3.0.8-150500.5.14.1",
        Some(("openssl-3", None)),
    );
    let found = source_findings(&index, &suse);
    assert_eq!(
        found
            .iter()
            .map(|f| (f.0.as_str(), f.5.as_deref()))
            .collect::<Vec<_>>(),
        [(
            "SUSE-SU-2099:0003-1",
            Some("zypper install 'libopenssl3>=3.0.8-150500.5.20.1'")
        )]
    );
    // Another release's data never matches.
    let other = rpm_package("SUSE:15.4", "libopenssl3", "3.0.8-150500.5.14.1", None);
    assert_eq!(source_findings(&index, &other), []);
    let rocky = rpm_package("Rocky Linux:9", "openssl-libs", "1:3.0.7-24.el9", None);
    assert_eq!(source_findings(&index, &rocky), []);
}

/// Red Hat's advisories for one CVE, as OSV publishes them: one RHSA for the main stream
/// (both repositories) and one per update stream, each with its own fixed build; SUSE's for
/// one CVE across SLES and the Micro products, each product a release of its own.
fn stream_records() -> Vec<Value> {
    let affected = |ecosystems: &[&str], name: &str, fixed: &str| {
        ecosystems
            .iter()
            .map(|ecosystem| {
                json!({"package": {"ecosystem": ecosystem, "name": name,
                                   "purl": format!("pkg:rpm/redhat/{name}")},
                       "ranges": [{"type": "ECOSYSTEM",
                                   "events": [{"introduced": "0"}, {"fixed": fixed}]}]})
            })
            .collect::<Vec<_>>()
    };
    let suse = [
        affected(&["SUSE:Linux Micro 6.0"], "libopenssl3", "3.1.4-9.1"),
        affected(
            &["SUSE:Linux Enterprise Micro 5.5", "openSUSE:Leap Micro 5.5"],
            "libopenssl3",
            "3.0.8-150500.5.27.1",
        ),
        affected(
            &["SUSE:Linux Enterprise Server 15 SP6"],
            "libopenssl3",
            "3.1.4-150600.5.15.1",
        ),
    ]
    .concat();
    vec![
        json!({"id": "RHSA-2099:0100", "aliases": ["CVE-2099-7000"], "summary": "openssl",
               "affected": affected(&["Red Hat:enterprise_linux:9::baseos",
                                      "Red Hat:enterprise_linux:9::appstream"],
                                    "openssl-libs", "1:3.0.7-27.el9")}),
        json!({"id": "RHSA-2099:0101", "aliases": ["CVE-2099-7000"], "summary": "openssl",
               "affected": affected(&["Red Hat:rhel_eus:9.2::baseos",
                                      "Red Hat:rhel_eus:9.2::appstream"],
                                    "openssl-libs", "1:3.0.7-18.el9_2.2")}),
        json!({"id": "RHSA-2099:0102", "aliases": ["CVE-2099-7000"], "summary": "openssl",
               "affected": affected(&["Red Hat:rhel_aus:8.4::baseos",
                                      "Red Hat:rhel_tus:8.4::baseos",
                                      "Red Hat:rhel_e4s:8.4::baseos"],
                                    "openssl-libs", "1:1.1.1g-17.el8_4")}),
        json!({"id": "RHSA-2099:0103", "aliases": ["CVE-2099-7000"], "summary": "openssl",
               "affected": affected(&["Red Hat:enterprise_linux_eus:10.0"],
                                    "openssl-libs", "1:3.2.2-16.el10_0.1")}),
        json!({"id": "SUSE-SU-2099:0200-1", "aliases": ["CVE-2099-7001"], "summary": "openssl",
               "affected": suse}),
    ]
}

#[test]
fn update_streams_and_micro_products_match_only_their_own_advisories() {
    let index = runtime().block_on(index_of(stream_records()));
    let ids_and_fixes = |ecosystem: &str, name: &str, version: &str| {
        rpm_findings(&index, ecosystem, name, version)
            .iter()
            .map(|finding| {
                let mut ids = vec![finding.id.clone()];
                ids.extend(finding.aliases.iter().cloned());
                (ids, finding.fixed_versions.clone())
            })
            .collect::<Vec<_>>()
    };
    let finding = |id: &str, fixed: &str| {
        vec![(
            vec![id.to_owned(), "CVE-2099-7000".to_owned()],
            vec![fixed.to_owned()],
        )]
    };
    let openssl =
        |ecosystem: &str, version: &str| ids_and_fixes(ecosystem, "openssl-libs", version);
    // RHEL 9.2 EUS with the EUS fix: the main stream's later build is not a fix it lacks.
    assert_eq!(openssl("Red Hat:rhel_eus:9.2", "1:3.0.7-18.el9_2.2"), []);
    // Before the EUS fix: the EUS advisory, and its fix, only.
    assert_eq!(
        openssl("Red Hat:rhel_eus:9.2", "1:3.0.7-18.el9_2.1"),
        finding("RHSA-2099:0101", "1:3.0.7-18.el9_2.2")
    );
    // The main stream's package is matched against the main stream's advisory.
    assert_eq!(
        openssl("Red Hat:9", "1:3.0.7-18.el9_2.2"),
        finding("RHSA-2099:0100", "1:3.0.7-27.el9")
    );
    // Each stream and minor release is its own: 9.4 EUS has no advisory here.
    assert_eq!(openssl("Red Hat:rhel_eus:9.4", "1:3.0.7-18.el9_2.1"), []);
    for stream in [
        "Red Hat:rhel_aus:8.4",
        "Red Hat:rhel_tus:8.4",
        "Red Hat:rhel_e4s:8.4",
    ] {
        assert_eq!(
            openssl(stream, "1:1.1.1g-17.el8_4"),
            [],
            "{stream} with the fix"
        );
        assert_eq!(
            openssl(stream, "1:1.1.1g-16.el8_4"),
            finding("RHSA-2099:0102", "1:1.1.1g-17.el8_4"),
            "{stream}"
        );
    }
    assert_eq!(openssl("Red Hat:rhel_eus:8.6", "1:1.1.1g-16.el8_4"), []);
    // RHEL 10 names its EUS stream `enterprise_linux_eus`.
    assert_eq!(
        openssl("Red Hat:rhel_eus:10.0", "1:3.2.2-16.el10_0"),
        finding("RHSA-2099:0103", "1:3.2.2-16.el10_0.1")
    );
    // SUSE Linux Micro 6.0's build is newer than SLES 15 SP6's fix but not its own.
    let micro = |ecosystem: &str, version: &str| {
        ids_and_fixes(ecosystem, "libopenssl3", version)
            .into_iter()
            .map(|(_, fixed)| fixed)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        micro("SUSE:Linux Micro 6.0", "3.1.4-8.1"),
        [vec!["3.1.4-9.1".to_owned()]]
    );
    assert_eq!(
        micro("SUSE:Linux Micro 6.0", "3.1.4-9.1"),
        Vec::<Vec<String>>::new()
    );
    assert_eq!(
        micro("SUSE:Linux Enterprise Micro 5.5", "3.0.8-150500.5.20.1"),
        [vec!["3.0.8-150500.5.27.1".to_owned()]]
    );
    assert_eq!(
        micro("openSUSE:Leap Micro 5.5", "3.0.8-150500.5.20.1"),
        [vec!["3.0.8-150500.5.27.1".to_owned()]]
    );
    assert_eq!(
        micro("SUSE:15.6", "3.1.4-150600.5.10.1"),
        [vec!["3.1.4-150600.5.15.1".to_owned()]]
    );
    assert_eq!(micro("SUSE:6.0", "3.1.4-8.1"), Vec::<Vec<String>>::new());
}

/// One affected entry per SUSE product for libopenssl1_1, fixed in `fixed`, as SUSE's OSV
/// records list them.
fn suse_openssl(ecosystems: &[&str], fixed: &str) -> Vec<Value> {
    ecosystems
        .iter()
        .map(|ecosystem| {
            json!({"package": {"ecosystem": ecosystem, "name": "libopenssl1_1",
                               "purl": format!("pkg:rpm/suse/libopenssl1_1@{fixed}?distro={ecosystem}")},
                   "ranges": [{"type": "ECOSYSTEM",
                               "events": [{"introduced": "0"}, {"fixed": fixed}]}]})
        })
        .collect()
}

/// SUSE's advisories for SLES 15 SP4 as OSV publishes them: the service pack's (filed under
/// the module that ships the package) and the LTSS stream's (`SUSE:Linux Enterprise Server
/// 15 SP4-LTSS`, beside the HPC LTSS product and another service pack's LTSS stream), each
/// with the SUSE CVE record of the same vulnerability.
fn ltss_records() -> Vec<Value> {
    let basesystem = "SUSE:Linux Enterprise Module for Basesystem 15 SP4";
    let ltss = [
        "SUSE:Linux Enterprise High Performance Computing 15 SP4-LTSS",
        "SUSE:Linux Enterprise Server 15 SP4-LTSS",
    ];
    let service_pack_and_older_ltss = [
        suse_openssl(&[basesystem], "1.1.1l-150400.7.10.1"),
        suse_openssl(
            &["SUSE:Linux Enterprise Server 15 SP3-LTSS"],
            "1.1.1d-150200.11.60.1",
        ),
    ]
    .concat();
    vec![
        // Fixed during the service pack's general support.
        json!({"id": "SUSE-SU-2099:1001-1", "aliases": ["CVE-2099-8001"], "summary": "openssl",
               "affected": service_pack_and_older_ltss}),
        // Fixed for LTSS subscribers only.
        json!({"id": "SUSE-SU-2099:2001-1", "aliases": ["CVE-2099-8002"], "summary": "openssl",
               "affected": suse_openssl(&ltss, "1.1.1l-150400.7.60.1")}),
        // Fixed in the service pack, then fixed again (a regression) in the LTSS stream.
        json!({"id": "SUSE-SU-2099:1002-1", "aliases": ["CVE-2099-8003"], "summary": "openssl",
               "affected": suse_openssl(&[basesystem], "1.1.1l-150400.7.25.1")}),
        json!({"id": "SUSE-SU-2099:2002-1", "aliases": ["CVE-2099-8003"], "summary": "openssl",
               "affected": suse_openssl(&ltss, "1.1.1l-150400.7.66.1")}),
    ]
}

#[test]
fn an_ltss_system_gets_its_service_packs_and_its_streams_fixes() {
    let index = runtime().block_on(index_of(ltss_records()));
    let findings = |ecosystem: &str, version: &str| {
        rpm_findings(&index, ecosystem, "libopenssl1_1", version)
            .into_iter()
            .map(|finding| {
                (
                    finding.id,
                    finding.aliases,
                    finding.fixed_versions,
                    finding.fix,
                )
            })
            .collect::<Vec<_>>()
    };
    let strings = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
    let finding = |id: &str, aliases: &[&str], fixed: &str| {
        (
            id.to_owned(),
            strings(aliases),
            strings(&[fixed]),
            Some(format!("zypper install 'libopenssl1_1>={fixed}'")),
        )
    };
    // An old build on LTSS: the service pack's advisory, the stream's own, and for the
    // vulnerability both name, one finding with every id and the stream's fix.
    assert_eq!(
        findings("SUSE:15.4-LTSS", "1.1.1l-150400.7.7.1"),
        [
            finding(
                "SUSE-SU-2099:1001-1",
                &["CVE-2099-8001"],
                "1.1.1l-150400.7.10.1"
            ),
            finding(
                "SUSE-SU-2099:1002-1",
                &["CVE-2099-8003", "SUSE-SU-2099:2002-1"],
                "1.1.1l-150400.7.66.1"
            ),
            finding(
                "SUSE-SU-2099:2001-1",
                &["CVE-2099-8002"],
                "1.1.1l-150400.7.60.1"
            ),
        ]
    );
    // Past the service pack's fix for CVE-2099-8003, short of the stream's: still affected.
    assert_eq!(
        findings("SUSE:15.4-LTSS", "1.1.1l-150400.7.28.1"),
        [
            finding(
                "SUSE-SU-2099:2001-1",
                &["CVE-2099-8002"],
                "1.1.1l-150400.7.60.1"
            ),
            finding(
                "SUSE-SU-2099:2002-1",
                &["CVE-2099-8003"],
                "1.1.1l-150400.7.66.1"
            ),
        ]
    );
    assert_eq!(findings("SUSE:15.4-LTSS", "1.1.1l-150400.7.66.1"), []);
    // A system without LTSS: the LTSS advisories never match, nor another service pack's.
    assert_eq!(
        findings("SUSE:15.4", "1.1.1l-150400.7.7.1"),
        [
            finding(
                "SUSE-SU-2099:1001-1",
                &["CVE-2099-8001"],
                "1.1.1l-150400.7.10.1"
            ),
            finding(
                "SUSE-SU-2099:1002-1",
                &["CVE-2099-8003"],
                "1.1.1l-150400.7.25.1"
            ),
        ]
    );
    assert_eq!(findings("SUSE:15.4", "1.1.1l-150400.7.28.1"), []);
    assert_eq!(findings("SUSE:15.5-LTSS", "1.1.1l-150400.7.7.1"), []);
}

/// SUSE's advisories for the products built from SLES 15 SP4, as OSV publishes them (one
/// affected entry per product, filed under the product or module that ships the package):
/// during general support every product lists the fix; afterwards SLES for SAP
/// Applications (which includes ESPOS), the HPC LTSS and ESPOS streams and SLES LTSS get
/// fixes of their own.
fn sap_and_hpc_records() -> Vec<Value> {
    let basesystem = "SUSE:Linux Enterprise Module for Basesystem 15 SP4";
    let sap = "SUSE:Linux Enterprise Server for SAP Applications 15 SP4";
    let hpc = "SUSE:Linux Enterprise High Performance Computing 15 SP4";
    let hpc_espos = "SUSE:Linux Enterprise High Performance Computing 15 SP4-ESPOS";
    // SUSE's current names of the LTSS products put the stream before the version.
    let hpc_ltss = "SUSE:Linux Enterprise High Performance Computing LTSS 15 SP4";
    let sles_ltss = "SUSE:Linux Enterprise Server LTSS 15 SP4";
    vec![
        // General support: every product of the service pack.
        json!({"id": "SUSE-SU-2099:1101-1", "upstream": ["CVE-2099-8101"], "summary": "openssl",
               "affected": suse_openssl(&[basesystem, sap, hpc], "1.1.1l-150400.7.10.1")}),
        // After general support: the products and streams that still get fixes.
        json!({"id": "SUSE-SU-2099:2101-1", "upstream": ["CVE-2099-8102"], "summary": "openssl",
               "affected": suse_openssl(&[sap, hpc_espos, hpc_ltss, sles_ltss], "1.1.1l-150400.7.60.1")}),
        // Fixed in the service pack, then again (a regression) for SAP only.
        json!({"id": "SUSE-SU-2099:1103-1", "upstream": ["CVE-2099-8103"], "summary": "openssl",
               "affected": suse_openssl(&[basesystem], "1.1.1l-150400.7.25.1")}),
        json!({"id": "SUSE-SU-2099:2103-1", "upstream": ["CVE-2099-8103"], "summary": "openssl",
               "affected": suse_openssl(&[sap], "1.1.1l-150400.7.66.1")}),
        // HPC's LTSS stream only.
        json!({"id": "SUSE-SU-2099:2104-1", "upstream": ["CVE-2099-8104"], "summary": "openssl",
               "affected": suse_openssl(&[hpc_ltss], "1.1.1l-150400.7.70.1")}),
    ]
}

#[test]
fn sap_and_hpc_systems_get_their_products_and_service_packs_fixes() {
    let index = runtime().block_on(index_of(sap_and_hpc_records()));
    let findings = |ecosystem: &str, version: &str| {
        rpm_findings(&index, ecosystem, "libopenssl1_1", version)
            .into_iter()
            .map(|finding| {
                let fixed = finding.fixed_versions.join(" ");
                (finding.id, finding.aliases.join(" "), fixed)
            })
            .collect::<Vec<_>>()
    };
    let finding = |id: &str, aliases: &str, fixed: &str| {
        (id.to_owned(), aliases.to_owned(), fixed.to_owned())
    };
    let (old, past_service_pack) = ("1.1.1l-150400.7.7.1", "1.1.1l-150400.7.28.1");
    // SLES for SAP: the service pack's fixes and its own, its own deciding where it has one.
    assert_eq!(
        findings("SUSE:15.4-SAP", old),
        [
            finding(
                "SUSE-SU-2099:1101-1",
                "CVE-2099-8101",
                "1.1.1l-150400.7.10.1"
            ),
            finding(
                "SUSE-SU-2099:1103-1",
                "CVE-2099-8103 SUSE-SU-2099:2103-1",
                "1.1.1l-150400.7.66.1"
            ),
            finding(
                "SUSE-SU-2099:2101-1",
                "CVE-2099-8102",
                "1.1.1l-150400.7.60.1"
            ),
        ]
    );
    assert_eq!(
        findings("SUSE:15.4-SAP", past_service_pack),
        [
            finding(
                "SUSE-SU-2099:2101-1",
                "CVE-2099-8102",
                "1.1.1l-150400.7.60.1"
            ),
            finding(
                "SUSE-SU-2099:2103-1",
                "CVE-2099-8103",
                "1.1.1l-150400.7.66.1"
            ),
        ]
    );
    // Plain SLES and HPC during general support never match the fixes of SAP, the LTSS
    // streams or ESPOS, which they cannot install.
    let service_pack_only = [
        finding(
            "SUSE-SU-2099:1101-1",
            "CVE-2099-8101",
            "1.1.1l-150400.7.10.1",
        ),
        finding(
            "SUSE-SU-2099:1103-1",
            "CVE-2099-8103",
            "1.1.1l-150400.7.25.1",
        ),
    ];
    assert_eq!(findings("SUSE:15.4", old), service_pack_only);
    assert_eq!(findings("SUSE:15.4-HPC", old), service_pack_only);
    assert_eq!(findings("SUSE:15.4", past_service_pack), []);
    assert_eq!(findings("SUSE:15.4-HPC", past_service_pack), []);
    // HPC's streams: their own fixes, not SAP's nor each other's.
    assert_eq!(
        findings("SUSE:15.4-HPC-LTSS", past_service_pack),
        [
            finding(
                "SUSE-SU-2099:2101-1",
                "CVE-2099-8102",
                "1.1.1l-150400.7.60.1"
            ),
            finding(
                "SUSE-SU-2099:2104-1",
                "CVE-2099-8104",
                "1.1.1l-150400.7.70.1"
            ),
        ]
    );
    assert_eq!(
        findings("SUSE:15.4-HPC-ESPOS", past_service_pack),
        [finding(
            "SUSE-SU-2099:2101-1",
            "CVE-2099-8102",
            "1.1.1l-150400.7.60.1"
        )]
    );
    // SLES LTSS is not HPC LTSS.
    assert_eq!(
        findings("SUSE:15.4-LTSS", past_service_pack),
        [finding(
            "SUSE-SU-2099:2101-1",
            "CVE-2099-8102",
            "1.1.1l-150400.7.60.1"
        )]
    );
    // Another service pack's SAP product matches nothing of SP4.
    assert_eq!(findings("SUSE:15.5-SAP", old), []);
}

/// Ubuntu's records as OSV publishes them since the schema's `upstream` field: a USN for
/// two CVEs and the UBUNTU-CVE tracker record of one, neither with `aliases`.
#[test]
fn upstream_ids_merge_a_distribution_advisory_with_its_cves() {
    let affected = |fixed: &str| {
        json!([{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": fixed}]}]}])
    };
    let records = vec![
        json!({"id": "USN-9999-1", "upstream": ["CVE-2099-8000", "CVE-2099-8001"],
               "summary": "OpenSSL vulnerabilities", "affected": affected("3.0.2-0ubuntu1.15")}),
        json!({"id": "UBUNTU-CVE-2099-8000", "upstream": ["CVE-2099-8000"],
               "summary": "openssl: crash", "affected": affected("3.0.2-0ubuntu1.15")}),
    ];
    let index = runtime().block_on(index_of(records));
    let package = Package {
        ecosystem: "Ubuntu:22.04".into(),
        name: "libssl3".into(),
        version: "3.0.2-0ubuntu1.14".into(),
        source_name: Some("openssl".into()),
        source_version: None,
        module_streams: Vec::new(),
    };
    let findings = index.matches(&package).unwrap().findings;
    assert_eq!(
        findings
            .iter()
            .map(|finding| (finding.id.as_str(), finding.aliases.clone()))
            .collect::<Vec<_>>(),
        [(
            "UBUNTU-CVE-2099-8000",
            vec![
                "CVE-2099-8000".to_owned(),
                "CVE-2099-8001".to_owned(),
                "USN-9999-1".to_owned()
            ]
        )]
    );
}

#[test]
fn packages_without_a_source_line_are_compared_as_before() {
    let index = source_index();
    let bc = debian_package("bc", "1.07.1-3", None);
    assert_eq!(
        source_findings(&index, &bc),
        [(
            "CVE-2099-2003".into(),
            "bc".into(),
            "1.07.1-3".into(),
            None,
            None,
            some("apt-get install --only-upgrade bc=1.07.1-4")
        )]
    );
    // A source version equal to the binary's changes nothing either.
    let same = debian_package("bc", "1.07.1-3", Some(("bc", "1.07.1-3")));
    assert_eq!(source_findings(&index, &same), source_findings(&index, &bc));
}

#[test]
fn alpine_subpackage_matches_its_origin() {
    let secdb = r#"{"distroversion": "v3.19", "reponame": "main", "packages": [
        {"pkg": {"name": "openssl", "secfixes": {"3.1.4-r6": ["CVE-2099-3000"]}}}]}"#;
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        database
            .import_bytes("secdb.json", secdb.as_bytes().to_vec(), Limits::default())
            .await
            .unwrap();
        let index = Index::load(&database).await.unwrap();
        let libcrypto = |version: &str| Package {
            ecosystem: "Alpine:v3.19".into(),
            name: "libcrypto3".into(),
            version: version.into(),
            source_name: Some("openssl".into()),
            source_version: None,
            module_streams: Vec::new(),
        };
        let found = source_findings(&index, &libcrypto("3.1.4-r5"));
        assert_eq!(
            found,
            [(
                "CVE-2099-3000".into(),
                "libcrypto3".into(),
                "3.1.4-r5".into(),
                some("openssl"),
                None,
                some("apk add libcrypto3=3.1.4-r6")
            )]
        );
        assert!(
            index
                .matches(&libcrypto("3.1.4-r6"))
                .unwrap()
                .findings
                .is_empty()
        );
    });
}

/// An index loaded for the inventory's ecosystems only finds what a full one finds, with
/// advisories merged through a record of an ecosystem it did not load, and refuses packages
/// of the others.
#[test]
fn an_index_loaded_for_some_ecosystems_finds_what_a_full_one_finds() {
    let range = events("ECOSYSTEM", json!([{"introduced": "0"}, {"fixed": "2.0"}]));
    let mut pysec = osv("PYSEC-2099-1", "PyPI", range.clone(), json!([]));
    pysec["aliases"] = json!(["CVE-2099-9100"]);
    let ghsa = osv("GHSA-2099-demo", "PyPI", range.clone(), json!([]));
    // Only the Go record says the two PyPI advisories are one vulnerability.
    let mut go = osv("GO-2099-0001", "Go", range, json!([]));
    go["aliases"] = json!(["CVE-2099-9100", "GHSA-2099-demo"]);
    let records = [vec![pysec, ghsa, go], ltss_records(), sap_and_hpc_records()].concat();
    let package = |ecosystem: &str, name: &str, version: &str| Package {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        module_streams: Vec::new(),
    };
    let queries = [
        package("PyPI", "pkg", "1.0"),
        package("SUSE:15.4-LTSS", "libopenssl1_1", "1.1.1l-150400.7.7.1"),
        package("SUSE:15.4", "libopenssl1_1", "1.1.1l-150400.7.7.1"),
        package("SUSE:15.4-SAP", "libopenssl1_1", "1.1.1l-150400.7.7.1"),
        package(
            "SUSE:15.4-HPC-LTSS",
            "libopenssl1_1",
            "1.1.1l-150400.7.28.1",
        ),
    ];
    runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let bytes = serde_json::to_vec(&Value::Array(records)).unwrap();
        database
            .import_bytes("fixtures.json", bytes.clone(), Limits::default())
            .await
            .unwrap();
        let full = Index::load(&database).await.unwrap();
        let partial = Index::load_for(
            &database,
            [
                "PyPI",
                "SUSE:15.4-LTSS",
                "SUSE:15.4-SAP",
                "SUSE:15.4-HPC-LTSS",
            ],
        )
        .await
        .unwrap();
        assert!(
            partial.len() < full.len(),
            "{} {}",
            partial.len(),
            full.len()
        );
        for query in &queries {
            assert_eq!(
                partial.matches(query).unwrap(),
                full.matches(query).unwrap(),
                "{query:?}"
            );
        }
        let python = partial.matches(&queries[0]).unwrap().findings;
        assert_eq!(
            (
                python.len(),
                python[0].id.as_str(),
                python[0].aliases.as_slice()
            ),
            (
                1,
                "GHSA-2099-demo",
                ["CVE-2099-9100", "PYSEC-2099-1"]
                    .map(str::to_owned)
                    .as_slice()
            )
        );
        let error = partial
            .matches(&package("Go", "example.com/m", "v1.0.0"))
            .unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::NotLoaded { ecosystem, .. } if ecosystem == "Go"),
            "{error}"
        );
        let only_base = Index::load_for(&database, ["SUSE:15.4"]).await.unwrap();
        assert!(only_base.matches(&queries[1]).is_err());
        // Loaded ecosystem by ecosystem, as an inventory finds them (one twice, the
        // service pack before its LTSS stream): the same findings again.
        let mut growing = Index::load_none(&database).await.unwrap();
        assert!(growing.matches(&queries[0]).is_err());
        for ecosystems in [
            &["PyPI"][..],
            &["PyPI", "SUSE:15.4"],
            &["SUSE:15.4-LTSS"],
            &["SUSE:15.4-SAP", "SUSE:15.4-HPC-LTSS"],
        ] {
            growing.extend_for(&database, ecosystems).await.unwrap();
        }
        for query in &queries {
            assert_eq!(
                growing.matches(query).unwrap(),
                full.matches(query).unwrap(),
                "{query:?}"
            );
        }
        assert_eq!(growing.len(), partial.len());
        assert!(
            growing
                .matches(&package("Go", "example.com/m", "v1.0.0"))
                .is_err()
        );
    });
}

/// openEuler's OSV records (OESA), shaped as `repo.openeuler.org/security/data/osv` publishes
/// them: the source package named, its binaries listed per architecture, one release with
/// its support label per ecosystem, the CVE in `upstream`.
fn openeuler_records() -> Vec<Value> {
    let oesa = |id: &str, release: &str, fixed: &str, cve: &str| {
        json!({
            "schema_version": "1.7.3",
            "id": id,
            "published": "2024-08-23T11:08:56Z",
            "modified": "2025-09-03T06:20:13.702698Z",
            "upstream": [cve],
            "summary": "booth security update",
            "details": "A flaw was found in Booth, a cluster ticket manager.",
            "affected": [{
                "package": {"name": "booth", "ecosystem": format!("openEuler:{release}"),
                            "purl": format!("pkg:rpm/openEuler/booth&distro=openEuler-{release}")},
                "ranges": [{"type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "ecosystem_specific": {
                    "src": [format!("booth-{fixed}.src.rpm")],
                    "x86_64": [format!("booth-{fixed}.x86_64.rpm"),
                               format!("booth-core-{fixed}.x86_64.rpm")]
                },
                "database_specific": {"source": format!("https://repo.openeuler.org/security/data/osv/{id}.json")}
            }],
            "references": [{"type": "ADVISORY",
                            "url": format!("https://www.openeuler.org/zh/security/security-bulletins/detail/?id=openEuler-SA-{}", &id[5..])}],
            "database_specific": {"severity": "High"}
        })
    };
    vec![
        oesa(
            "OESA-2024-2048",
            "22.03-LTS-SP3",
            "1.0-7.oe2203sp3",
            "CVE-2024-3049",
        ),
        oesa(
            "OESA-2024-2049",
            "22.03-LTS-SP4",
            "1.0-5.oe2203sp4",
            "CVE-2024-3049",
        ),
        oesa(
            "OESA-2024-2050",
            "24.03-LTS",
            "1.0-9.oe2403",
            "CVE-2024-3050",
        ),
        json!({"id": "OESA-2024-2051", "upstream": ["CVE-2024-5535"],
               "summary": "openssl security update",
               "affected": [{"package": {"name": "openssl", "ecosystem": "openEuler:22.03-LTS-SP3"},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                                         {"fixed": "1.1.1m-35.oe2203sp3"}]}]}]}),
    ]
}

#[test]
fn openeuler_packages_match_their_own_release_only() {
    let index = runtime().block_on(index_of(openeuler_records()));
    // booth-core is built from booth: found by its source rpm, fixed by dnf.
    let core = |ecosystem: &str, version: &str| {
        rpm_package(ecosystem, "booth-core", version, Some(("booth", None)))
    };
    let found = index
        .matches(&core("openEuler:22.03-LTS-SP3", "1.0-6.oe2203sp3"))
        .expect("match")
        .findings;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, "OESA-2024-2048");
    assert_eq!(found[0].aliases, ["CVE-2024-3049"]);
    assert_eq!(found[0].severity.as_deref(), Some("High"));
    assert_eq!(found[0].fixed_versions, ["1.0-7.oe2203sp3"]);
    assert_eq!(
        found[0].fix.as_deref(),
        Some("dnf upgrade booth-core-1.0-7.oe2203sp3")
    );
    // The ids of the advisories booth-core `version` of `ecosystem` matches.
    let matched = |ecosystem: &str, version: &str| -> Vec<String> {
        source_findings(&index, &core(ecosystem, version))
            .into_iter()
            .map(|(id, ..)| id)
            .collect()
    };
    // rpm order, not text order: 1.0-10 is past 1.0-7.
    assert!(matched("openEuler:22.03-LTS-SP3", "1.0-10.oe2203sp3").is_empty());
    // Another service pack, another LTS and an innovation release of the same package:
    // each only by its own release's advisory (SP4's fix is 1.0-5, below SP3's 1.0-6).
    for (ecosystem, version, expected) in [
        ("openEuler:22.03-LTS-SP4", "1.0-6.oe2203sp3", None),
        (
            "openEuler:22.03-LTS-SP4",
            "1.0-4.oe2203sp4",
            Some("OESA-2024-2049"),
        ),
        ("openEuler:22.03-LTS", "1.0-1.oe2203", None),
        ("openEuler:23.09", "1.0-1.oe2309", None),
        (
            "openEuler:24.03-LTS",
            "1.0-6.oe2403",
            Some("OESA-2024-2050"),
        ),
    ] {
        assert_eq!(
            matched(ecosystem, version),
            Vec::from_iter(expected.map(str::to_owned)),
            "{ecosystem} {version}"
        );
    }
    // openssl carries epoch 1 on openEuler; OESA records give its versions without one, as
    // its source rpm's file name does. The fix names the installed package's epoch.
    let libs = |version: &str| {
        rpm_package(
            "openEuler:22.03-LTS-SP3",
            "openssl-libs",
            version,
            Some(("openssl", None)),
        )
    };
    assert_eq!(
        source_findings(&index, &libs("1:1.1.1m-30.oe2203sp3")),
        [(
            "OESA-2024-2051".into(),
            "openssl-libs".into(),
            "1:1.1.1m-30.oe2203sp3".into(),
            some("openssl"),
            some("1.1.1m-30.oe2203sp3"),
            some("dnf upgrade openssl-libs-1:1.1.1m-35.oe2203sp3")
        )]
    );
    assert_eq!(source_findings(&index, &libs("1:1.1.1m-35.oe2203sp3")), []);
    assert!(index.has_advisories_for("openEuler:22.03-LTS-SP3"));
    assert!(!index.has_advisories_for("openEuler:23.09"));
}

/// Distributions no imported source covers are told apart from clean ones.
#[test]
fn releases_without_advisories_are_not_covered() {
    let index = runtime().block_on(index_of(rpm_records()));
    for covered in ["AlmaLinux:9", "Red Hat:9", "SUSE:15.5", "SUSE:15.5-LTSS"] {
        assert!(index.has_advisories_for(covered), "{covered}");
    }
    for uncovered in [
        "Amazon Linux:2023",
        "Oracle Linux:9",
        "Fedora:40",
        "AlmaLinux:8",
        "PyPI",
    ] {
        assert!(!index.has_advisories_for(uncovered), "{uncovered}");
    }
    // Matching them is not an error: there is nothing to match against.
    let amazon = rpm_package(
        "Amazon Linux:2023",
        "openssl-libs",
        "1:3.0.8-1.amzn2023",
        None,
    );
    assert_eq!(source_findings(&index, &amazon), []);
}

/// SLES's ESPOS stream and SLES for SAP's LTSS stream, as SUSE's OSV records name them,
/// are releases of their own matched with the products and service packs they are built
/// from; plain SLES and SLES for SAP without LTSS never take their fixes.
#[test]
fn espos_and_sap_ltss_systems_get_their_streams_fixes() {
    let records = vec![
        json!({"id": "SUSE-SU-2099:3001-1", "aliases": ["CVE-2099-8101"], "summary": "openssl",
               "affected": suse_openssl(&["SUSE:Linux Enterprise Module for Basesystem 15 SP4"],
                                        "1.1.1l-150400.7.10.1")}),
        json!({"id": "SUSE-SU-2099:3002-1", "aliases": ["CVE-2099-8102"], "summary": "openssl",
               "affected": suse_openssl(&["SUSE:Linux Enterprise Server 15 SP4-ESPOS"],
                                        "1.1.1l-150400.7.70.1")}),
        json!({"id": "SUSE-SU-2099:3003-1", "aliases": ["CVE-2099-8103"], "summary": "openssl",
               "affected": suse_openssl(&["SUSE:Linux Enterprise Server for SAP Applications 15 SP4-LTSS"],
                                        "1.1.1l-150400.7.80.1")}),
    ];
    let index = runtime().block_on(index_of(records));
    let ids = |ecosystem: &str| {
        rpm_findings(&index, ecosystem, "libopenssl1_1", "1.1.1l-150400.7.5.1")
            .into_iter()
            .map(|finding| finding.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids("SUSE:15.4-ESPOS"),
        ["SUSE-SU-2099:3001-1", "SUSE-SU-2099:3002-1"]
    );
    assert_eq!(
        ids("SUSE:15.4-SAP-LTSS"),
        ["SUSE-SU-2099:3001-1", "SUSE-SU-2099:3003-1"]
    );
    assert_eq!(ids("SUSE:15.4"), ["SUSE-SU-2099:3001-1"]);
    assert_eq!(ids("SUSE:15.4-SAP"), ["SUSE-SU-2099:3001-1"]);
    assert_eq!(ids("SUSE:15.4-LTSS"), ["SUSE-SU-2099:3001-1"]);
}
