//! yum/dnf `updateinfo.xml` import and matching: self-written documents in the upstream
//! format (`tests/data/updateinfo/`) for Amazon Linux 2 (with a Kernel-5.10 Extras topic),
//! Amazon Linux 2023, Oracle Linux (epoch, UEK, Ksplice), Fedora (with an EPEL update),
//! malformed updates and an XML bomb; compressed copies; an explicit release.

use std::io::Write;

use palisade_vulndb::{Database, DistroStatus, ErrorKind, ImportOptions, Limits, Package};

mod support;

use support::{findings, fixture, ids, import, import_fixture, module_findings, reasons, runtime};

const FIXTURES: &str = "updateinfo";

#[test]
fn amazon_linux_2_security_updates_and_an_extras_kernel() {
    let (report, index) = import_fixture(FIXTURES, "amazon-linux-2.xml");
    assert_eq!(report.format, "updateinfo");
    assert_eq!(report.record_count, 2, "{:?}", reasons(&report));
    assert_eq!(
        reasons(&report),
        [
            "amazon-linux-2.xml: 2 updates that are not security updates (bug fixes, enhancements) skipped"
        ]
    );
    // Every binary package of the update, with the epoch of its fixed version.
    for name in ["openssl", "openssl-libs", "openssl-devel"] {
        let found = findings(&index, "Amazon Linux:2", name, "1:1.0.2k-24.amzn2.0.6");
        assert_eq!(ids(&found), ["ALAS2-2023-2061"], "{name}");
        let finding = &found[0];
        assert_eq!(
            finding.aliases,
            ["CVE-2023-0464", "CVE-2023-0465", "CVE-2023-0466"]
        );
        assert_eq!(finding.fixed_versions, ["1:1.0.2k-24.amzn2.0.7"]);
        assert_eq!(
            finding.fix.as_deref(),
            Some(format!("yum update {name}-1:1.0.2k-24.amzn2.0.7").as_str())
        );
        assert_eq!(finding.status, Some(DistroStatus::Fixed));
        assert_eq!(finding.severity.as_deref(), Some("medium"));
        assert_eq!(finding.published.as_deref(), Some("2023-05-30 21:13"));
        assert_eq!(finding.modified.as_deref(), Some("2023-06-07 16:51"));
        assert!(
            finding
                .summary
                .contains("ALAS2-2023-2061: medium priority package update"),
            "{}",
            finding.summary
        );
    }
    // At the fixed version, above it, and without the epoch (0 < 1), as rpm compares.
    assert!(
        findings(
            &index,
            "Amazon Linux:2",
            "openssl-libs",
            "1:1.0.2k-24.amzn2.0.7"
        )
        .is_empty()
    );
    assert!(
        findings(
            &index,
            "Amazon Linux:2",
            "openssl-libs",
            "1:1.0.2k-25.amzn2"
        )
        .is_empty()
    );
    assert_eq!(
        ids(&findings(
            &index,
            "Amazon Linux:2",
            "openssl-libs",
            "1.0.2k-26.amzn2"
        )),
        ["ALAS2-2023-2061"]
    );
    // A binary the update does not list is found by its source rpm (the `src` package).
    let perl = index
        .matches(&Package {
            ecosystem: "Amazon Linux:2".into(),
            name: "openssl-perl".into(),
            version: "1:1.0.2k-24.amzn2.0.6".into(),
            source_name: Some("openssl".into()),
            source_version: None,
            module_streams: Vec::new(),
        })
        .unwrap()
        .findings;
    assert_eq!(ids(&perl), ["ALAS2-2023-2061"]);
    // Other releases never see Amazon Linux 2's advisories.
    assert!(
        findings(
            &index,
            "Amazon Linux:2023",
            "openssl-libs",
            "1:1.0.2k-24.amzn2.0.6"
        )
        .is_empty()
    );
    assert!(index.has_advisories_for("Amazon Linux:2"));
    assert!(!index.has_advisories_for("Amazon Linux:2023"));
    // The Kernel-5.10 topic's fixes apply to 5.10 kernels, not to the 4.14 or 5.15 ones
    // that Amazon Linux 2 ships under the same package names.
    let kernel = findings(&index, "Amazon Linux:2", "kernel", "5.10.192-182.736.amzn2");
    assert_eq!(ids(&kernel), ["ALAS2KERNEL-5.10-2023-040"]);
    assert_eq!(kernel[0].fixed_versions, ["5.10.196-185.743.amzn2"]);
    assert_eq!(kernel[0].severity.as_deref(), Some("important"));
    for version in [
        "4.14.326-245.539.amzn2",
        "5.15.128-80.144.amzn2",
        "5.10.196-185.743.amzn2",
    ] {
        assert!(
            findings(&index, "Amazon Linux:2", "kernel", version).is_empty(),
            "{version}"
        );
    }
    assert!(
        findings(
            &index,
            "Amazon Linux:2",
            "kernel-headers",
            "4.14.326-245.539.amzn2"
        )
        .is_empty()
    );
    // Bug fix and enhancement updates are not advisories.
    assert!(findings(&index, "Amazon Linux:2", "tzdata", "2022a-1.amzn2").is_empty());
}

#[test]
fn amazon_linux_2023_updates_match_their_release() {
    let (report, index) = import_fixture(FIXTURES, "amazon-linux-2023.xml");
    assert_eq!(report.record_count, 2);
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    let ssh = findings(
        &index,
        "Amazon Linux:2023",
        "openssh-server",
        "8.7p1-2.amzn2023.0.3",
    );
    assert_eq!(ids(&ssh), ["ALAS2023-2023-273"]);
    assert_eq!(ssh[0].aliases, ["CVE-2023-38408"]);
    assert_eq!(
        ssh[0].fix.as_deref(),
        Some("dnf upgrade openssh-server-8.7p1-2.amzn2023.0.4")
    );
    assert!(
        findings(
            &index,
            "Amazon Linux:2023",
            "openssh-server",
            "8.7p1-2.amzn2023.0.4"
        )
        .is_empty()
    );
    let ssl = findings(
        &index,
        "Amazon Linux:2023",
        "openssl-libs",
        "1:3.0.8-1.amzn2023.0.1",
    );
    assert_eq!(ids(&ssl), ["ALAS2023-2023-101"]);
    assert_eq!(ssl[0].aliases, ["CVE-2023-0215", "CVE-2023-0286"]);
    assert!(
        findings(
            &index,
            "Amazon Linux:2",
            "openssh-server",
            "8.7p1-2.amzn2023.0.3"
        )
        .is_empty()
    );
}

#[test]
fn oracle_linux_releases_come_from_release_tags_and_ksplice_builds_stay_apart() {
    let (report, index) = import_fixture(FIXTURES, "oracle-linux.xml");
    assert_eq!(report.record_count, 4, "{:?}", reasons(&report));
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    // UEK: its own package names, its `el9uek` tag naming Oracle Linux 9.
    let uek = findings(
        &index,
        "Oracle Linux:9",
        "kernel-uek-core",
        "5.15.0-204.147.6.2.el9uek",
    );
    assert_eq!(ids(&uek), ["ELSA-2024-12345"]);
    assert_eq!(uek[0].aliases, ["CVE-2023-4623"]);
    assert_eq!(uek[0].published.as_deref(), Some("2024-04-30"));
    assert!(
        findings(
            &index,
            "Oracle Linux:8",
            "kernel-uek-core",
            "5.15.0-204.147.6.2.el9uek"
        )
        .is_empty()
    );
    // A plain glibc is fixed by the plain build, never held to the Ksplice one (epoch 2).
    let glibc = findings(&index, "Oracle Linux:8", "glibc", "2.28-236.0.1.el8_9.12");
    assert_eq!(ids(&glibc), ["ELSA-2024-2570"]);
    assert_eq!(glibc[0].fixed_versions, ["2.28-236.0.1.el8_9.13"]);
    assert!(findings(&index, "Oracle Linux:8", "glibc", "2.28-236.0.1.el8_9.13").is_empty());
    // A Ksplice build is held to the Ksplice fix only.
    let ksplice = findings(
        &index,
        "Oracle Linux:8",
        "glibc",
        "2:2.28-236.0.1.el8_9.12.ksplice1",
    );
    assert_eq!(ids(&ksplice), ["ELSA-2024-2571"]);
    assert_eq!(
        ksplice[0].fixed_versions,
        ["2:2.28-236.0.1.el8_9.13.ksplice1"]
    );
    assert!(
        findings(
            &index,
            "Oracle Linux:8",
            "glibc",
            "2:2.28-236.0.1.el8_9.13.ksplice1"
        )
        .is_empty()
    );
    // Epochs compare first.
    let libvirt = findings(&index, "Oracle Linux:9", "libvirt-libs", "1:9.5.0-6.el9");
    assert_eq!(ids(&libvirt), ["ELSA-2023-7077"]);
    assert_eq!(libvirt[0].fixed_versions, ["1:9.5.0-7.0.1.el9_3"]);
    assert_eq!(libvirt[0].severity.as_deref(), Some("Moderate"));
    assert!(
        findings(
            &index,
            "Oracle Linux:9",
            "libvirt-libs",
            "1:9.5.0-7.0.1.el9_3"
        )
        .is_empty()
    );
}

#[test]
fn fedora_releases_come_from_the_collection_and_epel_needs_a_release() {
    let (report, index) = import_fixture(FIXTURES, "fedora.xml");
    assert_eq!(report.record_count, 1);
    let warnings = reasons(&report);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("fedora.xml: update FEDORA-EPEL-2024-0f7b6ef8ee: an EPEL update"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("1 updates that are not security updates"),
        "{warnings:?}"
    );
    let curl = findings(&index, "Fedora:40", "libcurl", "8.6.0-7.fc40");
    assert_eq!(ids(&curl), ["FEDORA-2024-5c1ef0ab42"]);
    // Fedora names CVEs only in its Bugzilla references' titles.
    assert_eq!(curl[0].aliases, ["CVE-2024-2398", "CVE-2024-2466"]);
    assert_eq!(curl[0].summary, "curl-8.6.0-8.fc40");
    assert_eq!(curl[0].published.as_deref(), Some("2024-04-26 01:12:37"));
    assert!(findings(&index, "Fedora:39", "libcurl", "8.6.0-7.fc40").is_empty());
    assert!(findings(&index, "Fedora:40", "libcurl", "8.6.0-8.fc40").is_empty());

    // Named explicitly, the release places every update, EPEL's included.
    let options = ImportOptions {
        limits: Limits::default(),
        release: Some("rocky linux:9".into()),
    };
    let bytes = std::fs::read(fixture(FIXTURES, "fedora.xml")).unwrap();
    let (report, index) = import("fedora.xml", &bytes, options);
    assert_eq!(report.record_count, 2, "{:?}", reasons(&report));
    let chromium = findings(&index, "Rocky Linux:9", "chromium", "123.0.6312.105-1.el9");
    assert_eq!(ids(&chromium), ["FEDORA-EPEL-2024-0f7b6ef8ee"]);
    assert_eq!(chromium[0].severity.as_deref(), Some("Critical"));
}

#[test]
fn a_release_that_is_not_an_rpm_distributions_is_refused() {
    for release in ["Debian:12", "PyPI", "Amazon Linux", "  "] {
        let options = ImportOptions {
            limits: Limits::default(),
            release: Some(release.into()),
        };
        let error = runtime()
            .block_on(async {
                let database = Database::open_in_memory().await.unwrap();
                database
                    .import_bytes("x.xml", b"<updates/>".to_vec(), options)
                    .await
            })
            .unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::InvalidRelease { .. }),
            "{release}: {error}"
        );
        assert!(
            error
                .to_string()
                .contains("not an rpm distribution release")
        );
    }
}

#[test]
fn malformed_updates_are_skipped_with_warnings_naming_them() {
    let (report, index) = import_fixture(FIXTURES, "malformed.xml");
    let warnings = reasons(&report);
    assert_eq!(report.record_count, 2, "{warnings:?}");
    let expected = [
        "malformed.xml: update (no <id>): an update without an id",
        "malformed.xml: update ALAS2023-2099-001: package zlib has a malformed epoch, version or release (\"0\", \"1.2.11 beta\", \"33.amzn2023\")",
        "malformed.xml: update ALAS2023-2099-001: package zlib-devel has a malformed epoch, version or release (\"x\", \"1.2.11\", \"33.amzn2023.0.5\")",
        "malformed.xml: update ALAS2023-2099-001: a package without name, version or release (name \"\")",
        "malformed.xml: update XYZSA-2099-0001: the release of this update id is unknown: import it with --release",
    ];
    for expected in expected {
        assert!(
            warnings.iter().any(|warning| warning == expected),
            "{expected}\n{warnings:#?}"
        );
    }
    // The truncated last update ends the document; what came before it is kept.
    let last = warnings.last().unwrap();
    assert!(
        last.starts_with(
            "malformed.xml: the document ends inside <updates><update><title> (truncated) (at byte"
        ),
        "{last}"
    );
    assert!(
        last.ends_with("in update #5); the 2 security updates before it were kept"),
        "{last}"
    );
    assert_eq!(warnings.len(), expected.len() + 1, "{warnings:#?}");
    // The update's well-formed package is kept.
    let minizip = findings(
        &index,
        "Amazon Linux:2023",
        "minizip",
        "1.2.11-33.amzn2023.0.4",
    );
    assert_eq!(ids(&minizip), ["ALAS2023-2099-001"]);
    assert_eq!(minizip[0].aliases, ["CVE-2099-0001"]);
    assert!(findings(&index, "Amazon Linux:2023", "zlib", "1.2.11-1").is_empty());
    assert_eq!(
        ids(&findings(
            &index,
            "Amazon Linux:2023",
            "bash",
            "5.2.15-1.amzn2023.0.1"
        )),
        ["ALAS2023-2099-002"]
    );
    // Mismatched tags stop the reading with the parser's reason.
    let (report, _) = import(
        "mismatched.xml",
        b"<updates><update type=\"security\"><id>ALAS2023-1</wrong></update></updates>",
        Limits::default(),
    );
    assert_eq!(report.record_count, 0);
    let reason = &reasons(&report)[0];
    assert!(
        reason.starts_with("mismatched.xml: malformed XML: "),
        "{reason}"
    );
    assert!(reason.contains("in update #1"), "{reason}");
}

#[test]
fn xml_bombs_and_undeclared_entities_are_refused_without_expansion() {
    let started = std::time::Instant::now();
    let (report, _) = import_fixture(FIXTURES, "billion-laughs.xml");
    assert_eq!(report.record_count, 0);
    let warnings = reasons(&report);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("document type declarations are not accepted"),
        "{warnings:?}"
    );
    // Without a DTD an entity reference names nothing; it is not expanded either.
    let (report, _) = import(
        "entity.xml",
        b"<updates><update type=\"security\"><id>ALAS2023-1&lol9;</id></update></updates>",
        Limits::default(),
    );
    assert_eq!(report.record_count, 0);
    assert!(
        reasons(&report)[0].contains("undeclared entity &lol9;"),
        "{:?}",
        reasons(&report)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Something other than updateinfo is said to be so.
    let (report, _) = import(
        "primary.xml",
        b"<metadata packages=\"0\"/>",
        Limits::default(),
    );
    assert!(
        reasons(&report)[0]
            .contains("not an updateinfo or OVAL document (root element <metadata>)"),
        "{:?}",
        reasons(&report)
    );
}

/// One update listing more packages than are read (65,536 packages, collections and
/// references): the first ones are kept, the rest not read, with a warning naming the
/// update.
#[test]
fn an_update_is_read_up_to_its_bound_on_entries() {
    let bound = 65_536;
    let mut document = String::from(
        "<updates><update type=\"security\"><id>ALAS2023-2099-100</id>\
         <pkglist><collection short=\"amazon-linux-2023\">",
    );
    for n in 0..bound + 10 {
        document.push_str(&format!(
            "<package name=\"pkg{n}\" epoch=\"0\" version=\"1.0\" release=\"2.amzn2023\"/>"
        ));
    }
    document.push_str("</collection></pkglist></update></updates>");
    let (report, index) = import("big.xml", document.as_bytes(), Limits::default());
    assert_eq!(report.record_count, 1, "{:?}", reasons(&report));
    assert_eq!(
        reasons(&report),
        [format!(
            "big.xml: update ALAS2023-2099-100: more than {bound} packages, collections and references: the rest were not read"
        )]
    );
    // The collection is one entry: its first bound - 1 packages are read.
    for (name, read) in [
        ("pkg0", true),
        (&*format!("pkg{}", bound - 2), true),
        (&*format!("pkg{}", bound - 1), false),
        (&*format!("pkg{}", bound + 9), false),
    ] {
        let found = findings(&index, "Amazon Linux:2023", name, "1.0-1.amzn2023");
        assert_eq!(!found.is_empty(), read, "{name}");
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut compressed = Vec::new();
    lzma_rs::xz_compress(&mut std::io::Cursor::new(bytes), &mut compressed).unwrap();
    compressed
}

#[test]
fn compressed_documents_are_read_and_bounded() {
    let plain = std::fs::read(fixture(FIXTURES, "amazon-linux-2023.xml")).unwrap();
    let zstd = zstd::encode_all(plain.as_slice(), 3).unwrap();
    for (name, bytes) in [
        ("updateinfo.xml.gz", gzip(&plain)),
        ("updateinfo.xml.xz", xz(&plain)),
        ("updateinfo.xml.zst", zstd),
    ] {
        let (report, index) = import(name, &bytes, Limits::default());
        assert_eq!(report.record_count, 2, "{name}: {:?}", reasons(&report));
        assert_eq!(report.format, "updateinfo", "{name}");
        assert!(report.warnings.is_empty(), "{name}: {:?}", reasons(&report));
        assert_eq!(
            ids(&findings(
                &index,
                "Amazon Linux:2023",
                "openssh",
                "8.7p1-2.amzn2023.0.3"
            )),
            ["ALAS2023-2023-273"],
            "{name}"
        );
    }
    // A small archive inflating past the file limit is refused, whatever the compression.
    let limits = Limits {
        max_file_bytes: 64 << 10,
        ..Limits::default()
    };
    let zeros = vec![0u8; 1 << 20];
    // (lzma-rs's encoder stores literals only, so its archive is not small itself.)
    for (name, bomb) in [
        ("bomb.xml.gz", gzip(&zeros)),
        (
            "bomb.xml.zst",
            zstd::encode_all(zeros.as_slice(), 3).unwrap(),
        ),
        ("bomb.xml.xz", xz(&zeros)),
    ] {
        assert!(bomb.len() < 64 << 10 || name.ends_with(".xz"), "{name}");
        let error = runtime()
            .block_on(async {
                let database = Database::open_in_memory().await.unwrap();
                database.import_bytes(name, bomb.clone(), limits).await
            })
            .unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::TooLarge { .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("(decompressed)"), "{error}");
    }
    // Corrupt data is a warning naming the compression.
    let mut corrupt = gzip(&plain);
    let middle = corrupt.len() / 2;
    corrupt.truncate(middle);
    let (report, _) = import("cut.xml.gz", &corrupt, Limits::default());
    assert_eq!(report.record_count, 0);
    assert!(
        reasons(&report)[0].contains("corrupt gzip data"),
        "{:?}",
        reasons(&report)
    );
}

#[test]
fn a_repodata_directory_is_read_for_its_updateinfo() {
    let temp = tempfile::tempdir().unwrap();
    let repodata = temp.path().join("repodata");
    std::fs::create_dir_all(&repodata).unwrap();
    let plain = std::fs::read(fixture(FIXTURES, "amazon-linux-2.xml")).unwrap();
    std::fs::write(repodata.join("0f3c-updateinfo.xml.gz"), gzip(&plain)).unwrap();
    // Other repository metadata is not a feed and is not read.
    std::fs::write(repodata.join("9ab1-primary.xml.gz"), gzip(b"<metadata/>")).unwrap();
    std::fs::write(repodata.join("repomd.xml"), b"<repomd/>").unwrap();
    let report = runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        database
            .import_path(temp.path(), Limits::default())
            .await
            .unwrap()
    });
    assert_eq!(report.record_count, 2);
    assert_eq!(report.format, "updateinfo");
    // Warnings name the file as it is stored.
    assert_eq!(report.warnings.len(), 1, "{:?}", reasons(&report));
    assert!(
        report.warnings[0]
            .location
            .ends_with("repodata/0f3c-updateinfo.xml.gz"),
        "{:?}",
        reasons(&report)
    );
}

/// One update fixing a package in two module streams (AlmaLinux's nodejs 18 and 20): each
/// stream's fix holds for its own versions only. (The type's case is not significant.)
#[test]
fn an_update_fixing_several_streams_holds_each_to_its_own_fix() {
    let document = br#"<updates>
  <update from="packager@almalinux.org" status="final" type="Security" version="1">
    <id>ALSA-2024:1688</id>
    <title>Important: nodejs:18 and nodejs:20 security update</title>
    <severity>Important</severity>
    <references><reference href="https://access.redhat.com/security/cve/CVE-2024-27983" id="CVE-2024-27983" type="cve" title="CVE-2024-27983"/></references>
    <pkglist>
      <collection short="almalinux-9-for-x86_64-appstream-rpms__nodejs_18">
        <name>almalinux-9-for-x86_64-appstream-rpms__nodejs_18</name>
        <module name="nodejs" stream="18" version="9030020240408" context="rhel9" arch="x86_64"/>
        <package name="nodejs" version="18.20.1" release="1.module_el9.3.0+88+2e4e5f2c" epoch="1" arch="x86_64"/>
      </collection>
      <collection short="almalinux-9-for-x86_64-appstream-rpms__nodejs_20">
        <name>almalinux-9-for-x86_64-appstream-rpms__nodejs_20</name>
        <module name="nodejs" stream="20" version="9030020240408" context="rhel9" arch="x86_64"/>
        <package name="nodejs" version="20.12.1" release="1.module_el9.3.0+87+1ab2c3d4" epoch="1" arch="x86_64"/>
      </collection>
    </pkglist>
  </update>
</updates>"#;
    let (report, index) = import("updateinfo.xml", document, Limits::default());
    assert_eq!(report.record_count, 1, "{:?}", reasons(&report));
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    // The fix is the stream's own (fixed_versions lists every fix above the installed one,
    // lowest first, as for any advisory).
    let on = |version: &str| {
        findings(&index, "AlmaLinux:9", "nodejs", version)
            .into_iter()
            .map(|finding| finding.fix.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        on("1:18.19.0-1.module_el9.3.0+80+aaaa"),
        ["dnf upgrade nodejs-1:18.20.1-1.module_el9.3.0+88+2e4e5f2c"]
    );
    assert_eq!(
        on("1:20.11.0-1.module_el9.3.0+81+bbbb"),
        ["dnf upgrade nodejs-1:20.12.1-1.module_el9.3.0+87+1ab2c3d4"]
    );
    // A fixed 18 is not held to the 20 stream's fix.
    assert!(on("1:18.20.1-1.module_el9.3.0+88+2e4e5f2c").is_empty());
    assert!(on("1:20.12.1-1.module_el9.3.0+87+1ab2c3d4").is_empty());
}

/// A modular collection's `<module name= stream=>` (Rocky Linux's container-tools errata,
/// as createrepo_c writes them): its packages' fixes are for that stream only, so that two
/// streams whose builds share a version line (`container-tools:rhel8`'s podman 4.6,
/// `container-tools:4.0`'s podman 4.0) are each held to their own fix; a stream naming a
/// version line (`perl:5.30`) starts its range there.
#[test]
fn modular_collections_give_their_stream_to_their_fixes() {
    let document = br#"<updates>
  <update from="releng@rockylinux.org" status="final" type="security" version="2">
    <id>RLSA-2024:0752</id>
    <title>Important: container-tools:rhel8 and container-tools:4.0 security update</title>
    <severity>Important</severity>
    <references><reference href="https://access.redhat.com/security/cve/CVE-2024-21626" id="CVE-2024-21626" type="cve" title="CVE-2024-21626"/></references>
    <pkglist>
      <collection short="rocky-linux-8-x86_64-appstream-rpms__container-tools">
        <name>rocky-linux-8-x86_64-appstream-rpms__container-tools</name>
        <module name="container-tools" stream="rhel8" version="8090020240201131346" context="d7b6f4b7" arch="x86_64"/>
        <package name="podman" version="4.6.1" release="8.module+el8.9.0+1720+2a5f0c3e" epoch="3" arch="x86_64" src="podman-4.6.1-8.module+el8.9.0+1720+2a5f0c3e.src.rpm"/>
      </collection>
      <collection short="rocky-linux-8-x86_64-appstream-rpms__container-tools">
        <name>rocky-linux-8-x86_64-appstream-rpms__container-tools</name>
        <module name="container-tools" stream="4.0" version="8090020240201120014" context="20125149" arch="x86_64"/>
        <package name="podman" version="4.0.2" release="25.module+el8.9.0+1722+0e2a6b1d" epoch="3" arch="x86_64" src="podman-4.0.2-25.module+el8.9.0+1722+0e2a6b1d.src.rpm"/>
      </collection>
    </pkglist>
  </update>
  <update from="releng@rockylinux.org" status="final" type="security" version="2">
    <id>RLSA-2024:0114</id>
    <title>Moderate: perl:5.30 security update</title>
    <severity>Moderate</severity>
    <references><reference href="https://access.redhat.com/security/cve/CVE-2023-47038" id="CVE-2023-47038" type="cve" title="CVE-2023-47038"/></references>
    <pkglist>
      <collection short="rocky-linux-8-x86_64-appstream-rpms__perl">
        <name>rocky-linux-8-x86_64-appstream-rpms__perl</name>
        <module name="perl" stream="5.30" version="8090020231128110120" context="466ea64f" arch="x86_64"/>
        <package name="perl-interpreter" version="5.30.1" release="452.module+el8.9.0+1614+d0b4f3a4" epoch="4" arch="x86_64"/>
      </collection>
    </pkglist>
  </update>
  <update from="releng@rockylinux.org" status="final" type="security" version="2">
    <id>RLSA-2024:9999</id>
    <title>Moderate: a module without a stream</title>
    <severity>Moderate</severity>
    <pkglist>
      <collection short="broken">
        <module name="perl" stream="" version="1" context="x" arch="x86_64"/>
        <package name="perl-libs" version="5.30.1" release="452.module+el8.9.0+1614+d0b4f3a4" epoch="4" arch="x86_64"/>
      </collection>
    </pkglist>
  </update>
  <update from="releng@rockylinux.org" status="final" type="security" version="2">
    <id>RLSA-2024:9998</id>
    <title>Moderate: a stream past the module stream rule's 256 bytes</title>
    <severity>Moderate</severity>
    <pkglist>
      <collection short="too-long">
        <module name="perl" stream="sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss" version="1" context="x" arch="x86_64"/>
        <package name="perl-libs" version="5.30.1" release="452.module+el8.9.0+1614+d0b4f3a4" epoch="4" arch="x86_64"/>
      </collection>
    </pkglist>
  </update>
</updates>"#;
    let (report, index) = import("updateinfo.xml", document, Limits::default());
    assert_eq!(report.record_count, 2, "{:?}", reasons(&report));
    assert_eq!(
        reasons(&report),
        [
            "updateinfo.xml: update RLSA-2024:9999: a <module> without a valid name and stream (name \"perl\", stream \"\"): its collection is skipped".to_owned(),
            format!(
                "updateinfo.xml: update RLSA-2024:9998: a <module> without a valid name and stream (name \"perl\", stream \"{}\"): its collection is skipped",
                "s".repeat(257)
            ),
        ]
    );
    let podman = |version: &str, streams: &[&str]| {
        module_findings(&index, "Rocky Linux:8", "podman", version, streams)
    };
    let rhel8 = ["container-tools:rhel8"];
    let stream_4_0 = ["container-tools:4.0"];
    // Each stream's build below its own fix is affected, fixed by that fix only.
    let found = podman("3:4.6.1-5.module+el8.9.0+1600+11111111", &rhel8);
    assert_eq!(ids(&found), ["RLSA-2024:0752"]);
    assert_eq!(
        found[0].fixed_versions,
        ["3:4.6.1-8.module+el8.9.0+1720+2a5f0c3e"]
    );
    let found = podman("3:4.0.2-20.module+el8.8.0+1500+22222222", &stream_4_0);
    assert_eq!(ids(&found), ["RLSA-2024:0752"]);
    assert_eq!(
        found[0].fixed_versions,
        ["3:4.0.2-25.module+el8.9.0+1722+0e2a6b1d"]
    );
    // container-tools:4.0 at its fix is not held to rhel8's (same major version).
    let fixed_4_0 = "3:4.0.2-26.module+el8.9.0+1730+33333333";
    assert!(podman(fixed_4_0, &stream_4_0).is_empty());
    assert!(podman(fixed_4_0, &["perl:5.30"]).is_empty());
    // No stream known: the version line, which cannot tell the two streams apart.
    assert_eq!(ids(&podman(fixed_4_0, &[])), ["RLSA-2024:0752"]);
    // perl:5.30's fix starts at its version line: perl 5.26's builds are not held to it.
    let perl = |version: &str| findings(&index, "Rocky Linux:8", "perl-interpreter", version);
    assert!(perl("4:5.26.3-422.el8").is_empty());
    assert_eq!(
        ids(&perl("4:5.30.1-451.module+el8.9.0+1600+aaaa")),
        ["RLSA-2024:0114"]
    );
}
