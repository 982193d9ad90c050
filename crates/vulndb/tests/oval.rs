//! OVAL import and matching: self-written documents in the layout of the upstream feeds
//! (`tests/data/oval/`): Oracle Linux's ELSA OVAL (release and architecture tests, signing
//! key tests, UEK, Ksplice, a definition with a missing test and one with negated criteria),
//! Azure Linux 3.0's and CBL-Mariner 2.0's (one definition per CVE and package, `less than`
//! and `less than or equal`); compressed copies (bzip2 as Oracle publishes), limits, a DTD,
//! and a generated document larger than the whole-file limit, read streaming.

use std::io::Write;

use palisade_vulndb::{
    Database, DistroStatus, ErrorKind, ImportOptions, Limits, Package, RUNNING_KERNEL_RELEASE,
};

mod support;

use support::{findings, fixture, ids, import, import_fixture, module_findings, reasons, runtime};

const FIXTURES: &str = "oval";

#[test]
fn oracle_linux_elsa_definitions_match_their_own_release() {
    let (report, index) = import_fixture(FIXTURES, "com.oracle.elsa-2024.xml");
    assert_eq!(report.format, "oval");
    assert_eq!(report.record_count, 5, "{:?}", reasons(&report));
    let found = findings(&index, "Oracle Linux:9", "gnutls", "3.8.3-3.el9");
    assert_eq!(ids(&found), ["ELSA-2024-2570"]);
    let finding = &found[0];
    assert_eq!(finding.aliases, ["CVE-2024-28834", "CVE-2024-28835"]);
    assert_eq!(finding.severity.as_deref(), Some("MODERATE"));
    assert_eq!(
        finding.summary,
        "ELSA-2024-2570:  gnutls security update (MODERATE)"
    );
    assert_eq!(finding.fixed_versions, ["3.8.3-4.el9_4"]);
    assert_eq!(finding.status, Some(DistroStatus::Fixed));
    assert_eq!(finding.published.as_deref(), Some("2024-05-06"));
    assert_eq!(
        finding.fix.as_deref(),
        Some("dnf upgrade gnutls-3.8.3-4.el9_4")
    );
    // Both architectures' branches name gnutls-utils; the fixed build is not reported.
    assert_eq!(
        ids(&findings(
            &index,
            "Oracle Linux:9",
            "gnutls-utils",
            "3.8.3-1.el9"
        )),
        ["ELSA-2024-2570"]
    );
    assert!(findings(&index, "Oracle Linux:9", "gnutls", "3.8.3-4.el9_4").is_empty());
    // Oracle Linux 8's gnutls is not Oracle Linux 9's, nor is its openssl fix for 9.
    assert!(findings(&index, "Oracle Linux:8", "gnutls", "3.6.16-1.el8").is_empty());
    let openssl = findings(&index, "Oracle Linux:8", "openssl-libs", "1:1.1.1k-9.el8_7");
    assert_eq!(ids(&openssl), ["ELSA-2024-1130"]);
    assert_eq!(openssl[0].fixed_versions, ["1:1.1.1k-12.el8_9"]);
    assert!(findings(&index, "Oracle Linux:9", "openssl-libs", "1:1.1.1k-9.el8_7").is_empty());
    // The epoch counts: a build without it is older than any with epoch 1.
    assert!(
        findings(
            &index,
            "Oracle Linux:8",
            "openssl-libs",
            "1:1.1.1k-12.el8_9"
        )
        .is_empty()
    );
    // UEK.
    assert_eq!(
        ids(&findings(
            &index,
            "Oracle Linux:9",
            "kernel-uek-core",
            "5.15.0-200.131.26.el9uek"
        )),
        ["ELSA-2024-12169"]
    );
    // A Ksplice build is compared with the Ksplice fix only, a plain build with the plain.
    assert_eq!(
        ids(&findings(
            &index,
            "Oracle Linux:9",
            "glibc",
            "2.34-83.0.2.el9_3.7"
        )),
        ["ELSA-2024-0999"]
    );
    assert_eq!(
        ids(&findings(
            &index,
            "Oracle Linux:9",
            "glibc",
            "2.34-83.0.2.ksplice1.el9_3.7"
        )),
        ["ELSA-2024-50047"]
    );
    assert!(findings(&index, "Oracle Linux:9", "glibc", "2.34-83.0.3.el9_3.7").is_empty());
    assert!(
        findings(
            &index,
            "Oracle Linux:9",
            "glibc",
            "2.34-83.0.3.ksplice1.el9_3.7"
        )
        .is_empty()
    );
    // Definitions that cannot be evaluated are named with why.
    assert_eq!(
        reasons(&report),
        [
            "com.oracle.elsa-2024.xml: definition oval:com.oracle.elsa:def:20249001: test oval:com.oracle.elsa:tst:20249001999 is not defined",
            "com.oracle.elsa-2024.xml: definition oval:com.oracle.elsa:def:20249002: negated criteria",
        ]
    );
}

/// Red Hat's OVAL v2 (`rhel-8.oval.xml`): the release from the owner of
/// `/etc/redhat-release`, the "must be installed" guard and the CoreOS alternative never
/// taken for packages, module streams' fixes held to their own stream's version line.
#[test]
fn red_hat_definitions_match_their_release_and_module_stream() {
    let (report, index) = import_fixture(FIXTURES, "rhel-8.oval.xml");
    assert_eq!(report.format, "oval");
    assert_eq!(report.record_count, 5, "{:?}", reasons(&report));
    let libwebp = findings(&index, "Red Hat:8", "libwebp", "1.0.0-8.el8_8");
    assert_eq!(ids(&libwebp), ["RHSA-2023:5309"]);
    assert_eq!(libwebp[0].aliases, ["CVE-2023-4863", "CVE-2023-5129"]);
    assert_eq!(libwebp[0].fixed_versions, ["1.0.0-8.el8_8.1"]);
    assert_eq!(libwebp[0].status, Some(DistroStatus::Fixed));
    assert_eq!(libwebp[0].severity.as_deref(), Some("Important"));
    assert_eq!(libwebp[0].published.as_deref(), Some("2023-09-20"));
    assert_eq!(
        ids(&findings(
            &index,
            "Red Hat:8",
            "libwebp-devel",
            "1.0.0-1.el8"
        )),
        ["RHSA-2023:5309"]
    );
    // At the fix; and not RHEL 9's libwebp, nor a CoreOS 4 release of RHEL 8's packages.
    assert!(findings(&index, "Red Hat:8", "libwebp", "1.0.0-8.el8_8.1").is_empty());
    assert!(findings(&index, "Red Hat:9", "libwebp", "1.0.0-8.el8_8").is_empty());
    assert!(findings(&index, "Red Hat:4", "libwebp", "1.0.0-8.el8_8").is_empty());
    // Each module stream's fix holds only for its own stream's builds.
    let postgresql_13 = findings(
        &index,
        "Red Hat:8",
        "postgresql",
        "13.11-1.module+el8.8.0+18910+1ab3f1d4",
    );
    assert_eq!(ids(&postgresql_13), ["RHSA-2023:7581"]);
    assert_eq!(
        postgresql_13[0].fixed_versions,
        ["13.13-1.module+el8.9.0+20664+9c30cf7f"]
    );
    assert_eq!(
        ids(&findings(
            &index,
            "Red Hat:8",
            "postgresql",
            "10.21-1.module+el8.6.0+13863+f6a7e5f8"
        )),
        ["RHSA-2023:7790"]
    );
    for fixed_or_other_stream in [
        "13.13-1.module+el8.9.0+20664+9c30cf7f",
        "10.23-3.module+el8.9.0+20831+78489779",
        "12.16-1.module+el8.8.0+18969+2e15fcbf",
        "15.4-1.module+el8.9.0+19797+c4ce5969",
    ] {
        assert!(
            findings(&index, "Red Hat:8", "postgresql", fixed_or_other_stream).is_empty(),
            "{fixed_or_other_stream}"
        );
    }
    // perl:5.30's fix starts at its stream, 5.30: perl 5.26's builds are not held to it.
    let perl_530 = findings(
        &index,
        "Red Hat:8",
        "perl-interpreter",
        "4:5.30.1-451.module+el8.8.0+17033+1b4b2a38",
    );
    assert_eq!(ids(&perl_530), ["RHSA-2024:0259"]);
    assert!(findings(&index, "Red Hat:8", "perl-interpreter", "4:5.26.3-422.el8").is_empty());
    // A test of another file's content (`/proc/cmdline`'s `mitigations=`) holds the
    // kernel-rt range to the root where it holds.
    assert!(reasons(&report).is_empty(), "{:?}", reasons(&report));
    let kernel_rt = palisade_vulndb::Package {
        ecosystem: "Red Hat:8".into(),
        name: "kernel-rt".into(),
        version: "4.18.0-513.5.1.rt7.307.el8_9".into(),
        source_name: None,
        source_version: None,
        module_streams: Vec::new(),
    };
    let on_root = |cmdline: &str| {
        index
            .matches_on_root(&kernel_rt, &|check| {
                check.path() == "/proc/cmdline" && check.holds(Some(cmdline.as_bytes()))
            })
            .unwrap()
            .findings
    };
    assert_eq!(
        ids(&on_root("BOOT_IMAGE=/vmlinuz ro mitigations=off quiet\n")),
        ["RHSA-2023:9999"]
    );
    assert!(on_root("BOOT_IMAGE=/vmlinuz ro mitigations=auto quiet\n").is_empty());
    assert!(index.matches(&kernel_rt).unwrap().findings.is_empty());
}

/// Two streams of a module whose builds share a version line (`container-tools:rhel8`'s
/// podman 4.6, `container-tools:4.0`'s podman 4.0): a package of a known stream is matched
/// against its own stream's definitions only, fixed and unpatched; one of no known stream
/// falls back to the version line, which cannot tell these two apart.
#[test]
fn module_definitions_are_for_their_own_stream() {
    let (report, index) = import_fixture(FIXTURES, "rhel-8-container-tools.oval.xml");
    assert_eq!(report.record_count, 4, "{:?}", reasons(&report));
    assert!(reasons(&report).is_empty(), "{:?}", reasons(&report));
    let rhel8 = ["container-tools:rhel8"];
    let stream_4_0 = ["container-tools:4.0"];
    let podman_4_6 = "4.6.1-5.module+el8.9.0+21000+11111111";
    let podman_4_0_fixed = "4.0.2-26.module+el8.9.0+21245+22222222";
    let podman_4_0 = "4.0.2-20.module+el8.8.0+19000+33333333";

    let found = module_findings(&index, "Red Hat:8", "podman", podman_4_6, &rhel8);
    assert_eq!(ids(&found), ["CVE-2024-9104", "RHSA-2024:9101"]);
    assert_eq!(
        found[1].fixed_versions,
        ["4.6.1-8.module+el8.9.0+21243+a586538b"]
    );
    // Each stream keeps the resolution naming it (`container-tools:rhel8/podman`).
    assert_eq!(found[0].status, Some(DistroStatus::WillNotFix));
    // container-tools:4.0 at its fix: neither rhel8's fix (same major version) nor rhel8's
    // fixed versions apply; only the stream's unpatched CVEs do.
    let found = module_findings(&index, "Red Hat:8", "podman", podman_4_0_fixed, &stream_4_0);
    assert_eq!(ids(&found), ["CVE-2024-9103", "CVE-2024-9104"]);
    assert_eq!(found[0].status, Some(DistroStatus::Open));
    assert_eq!(found[1].status, Some(DistroStatus::Open));
    let found = module_findings(&index, "Red Hat:8", "podman", podman_4_0, &stream_4_0);
    assert_eq!(
        ids(&found),
        ["CVE-2024-9103", "CVE-2024-9104", "RHSA-2024:9102"]
    );
    let fixed = found.iter().find(|f| f.id == "RHSA-2024:9102").unwrap();
    assert_eq!(
        fixed.fixed_versions,
        ["4.0.2-25.module+el8.9.0+21244+74c2f3e5"]
    );
    // An image that enabled several streams: each of them may apply.
    let both = ["container-tools:4.0", "container-tools:rhel8"];
    assert_eq!(
        ids(&module_findings(
            &index,
            "Red Hat:8",
            "podman",
            podman_4_0_fixed,
            &both
        )),
        ["CVE-2024-9103", "CVE-2024-9104", "RHSA-2024:9101"]
    );
    // Another module's stream: none of container-tools' definitions.
    assert!(module_findings(&index, "Red Hat:8", "podman", podman_4_6, &["perl:5.30"]).is_empty());
    // No stream known: the version line, which takes the 4.0 build for rhel8's unfixed one.
    assert_eq!(
        ids(&findings(&index, "Red Hat:8", "podman", podman_4_0_fixed)),
        ["CVE-2024-9103", "CVE-2024-9104", "RHSA-2024:9101"]
    );
    // A build without the module tag in its release was provided by no stream: no stream's
    // definition is for it, fixed or unpatched.
    assert!(findings(&index, "Red Hat:8", "podman", "4.0.2-20.el8").is_empty());
}

/// A `textfilecontent54_test` other than a module stream's ("kernel earlier than ... is set
/// to boot up on next boot") is kept with its alternative's range and evaluated on the
/// scanned root's file: a kpatch-patch package below its fix is affected only where the
/// root boots a kernel the patch is for. The "currently running" alternative (a
/// `uname_test` of the state `os_release less than 0:4.18.0-80.1.2.el8_0`) is a check of
/// the running kernel's release, which only the running host answers.
#[test]
fn file_content_tests_are_evaluated_on_the_scanned_root() {
    let (report, index) = import_fixture(FIXTURES, "rhel-8-kpatch.oval.xml");
    assert_eq!(report.record_count, 1, "{:?}", reasons(&report));
    assert!(reasons(&report).is_empty(), "{:?}", reasons(&report));
    let checks = index.file_checks();
    assert_eq!(
        checks.iter().map(|check| check.path()).collect::<Vec<_>>(),
        ["/boot/grub2/grubenv", RUNNING_KERNEL_RELEASE]
    );
    let package = Package {
        ecosystem: "Red Hat:8".into(),
        name: "kpatch-patch-4_18_0-80".into(),
        version: "1-1.el8".into(),
        source_name: None,
        source_version: None,
        module_streams: Vec::new(),
    };
    // The root's boot entry and running kernel (`None`: not there, or not the host).
    let on_root = |grubenv: Option<&str>, running: Option<&str>| {
        let found = index
            .matches_on_root(&package, &|check| {
                let content = match check.path() {
                    "/boot/grub2/grubenv" => grubenv,
                    RUNNING_KERNEL_RELEASE => running,
                    _ => None,
                };
                check.holds(content.map(str::as_bytes))
            })
            .expect("match")
            .findings;
        ids(&found)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let boots = |kernel: &str| {
        format!(
            "# GRUB Environment Block\nsaved_entry=0123456789abcdef0123456789abcdef-{kernel}.x86_64\nkernelopts=root=/dev/mapper/rhel-root ro\n"
        )
    };
    let fixed_kernel = "4.18.0-80.1.2.el8_0.x86_64\n";
    let old_kernel = "4.18.0-80.el8.x86_64\n";
    assert_eq!(
        on_root(Some(&boots("4.18.0-80.el8")), Some(fixed_kernel)),
        ["RHSA-2024:9201"]
    );
    // Booting the fixed kernel but still running the old one: affected until the reboot.
    assert_eq!(
        on_root(Some(&boots("4.18.0-80.1.2.el8_0")), Some(old_kernel)),
        ["RHSA-2024:9201"]
    );
    // A root booting and running the fixed kernel, or neither known (an image), is not
    // affected.
    assert!(on_root(Some(&boots("4.18.0-80.1.2.el8_0")), Some(fixed_kernel)).is_empty());
    assert!(on_root(Some(&boots("4.18.0-80.1.2.el8_0")), None).is_empty());
    assert!(on_root(None, None).is_empty());
    // A later kernel running (its release past the fix, arch and all) is not affected.
    assert!(on_root(None, Some("4.18.0-147.el8.x86_64\n")).is_empty());
    // No root to read: the range does not apply.
    assert!(index.matches(&package).unwrap().findings.is_empty());
    // At the fixed kpatch-patch the file is not even asked about.
    let fixed = Package {
        version: "1-2.el8".into(),
        ..package.clone()
    };
    let asked = std::cell::Cell::new(0);
    let found = index
        .matches_on_root(&fixed, &|_| {
            asked.set(asked.get() + 1);
            true
        })
        .unwrap();
    assert!(found.findings.is_empty());
    assert_eq!(asked.get(), 0);
}

/// RHEL 7's release packages name the product (`redhat-release-server`,
/// `redhat-release-workstation`), as the owner of `/etc/redhat-release` or in an
/// `rpminfo_test`: both give the release.
#[test]
fn red_hat_7_release_package_variants_give_the_release() {
    let document = r#"<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:red-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux">
  <definitions>
    <definition class="patch" id="oval:com.redhat.rhsa:def:20240001" version="1">
      <metadata><title>RHSA-2024:0001: bind security update (Important)</title>
        <affected family="unix"><platform>Red Hat Enterprise Linux 7</platform></affected>
        <reference ref_id="RHSA-2024:0001" source="RHSA"/>
        <reference ref_id="CVE-2023-3341" source="CVE"/></metadata>
      <criteria operator="AND">
        <criterion comment="bind is earlier than 32:9.11.4-26.P2.el7_9.15" test_ref="oval:com.redhat.rhsa:tst:20240001001"/>
        <criteria operator="OR">
          <criterion comment="Red Hat Enterprise Linux 7 Server is installed" test_ref="oval:com.redhat.rhsa:tst:20240001002"/>
          <criterion comment="Red Hat Enterprise Linux 7 Workstation is installed" test_ref="oval:com.redhat.rhsa:tst:20240001003"/>
        </criteria>
      </criteria>
    </definition>
  </definitions>
  <tests>
    <red-def:rpminfo_test check="at least one" id="oval:com.redhat.rhsa:tst:20240001001" version="1">
      <red-def:object object_ref="oval:com.redhat.rhsa:obj:20240001001"/>
      <red-def:state state_ref="oval:com.redhat.rhsa:ste:20240001001"/>
    </red-def:rpminfo_test>
    <red-def:rpmverifyfile_test check="at least one" id="oval:com.redhat.rhsa:tst:20240001002" version="1">
      <red-def:object object_ref="oval:com.redhat.rhsa:obj:20240001002"/>
      <red-def:state state_ref="oval:com.redhat.rhsa:ste:20240001002"/>
    </red-def:rpmverifyfile_test>
    <red-def:rpminfo_test check="at least one" id="oval:com.redhat.rhsa:tst:20240001003" version="1">
      <red-def:object object_ref="oval:com.redhat.rhsa:obj:20240001003"/>
      <red-def:state state_ref="oval:com.redhat.rhsa:ste:20240001003"/>
    </red-def:rpminfo_test>
  </tests>
  <objects>
    <red-def:rpminfo_object id="oval:com.redhat.rhsa:obj:20240001001" version="1"><red-def:name>bind</red-def:name></red-def:rpminfo_object>
    <red-def:rpmverifyfile_object id="oval:com.redhat.rhsa:obj:20240001002" version="1">
      <red-def:behaviors nomd5="true"/>
      <red-def:name operation="pattern match"/>
      <red-def:filepath>/etc/redhat-release</red-def:filepath>
    </red-def:rpmverifyfile_object>
    <red-def:rpminfo_object id="oval:com.redhat.rhsa:obj:20240001003" version="1"><red-def:name>redhat-release-workstation</red-def:name></red-def:rpminfo_object>
  </objects>
  <states>
    <red-def:rpminfo_state id="oval:com.redhat.rhsa:ste:20240001001" version="1"><red-def:evr datatype="evr_string" operation="less than">32:9.11.4-26.P2.el7_9.15</red-def:evr></red-def:rpminfo_state>
    <red-def:rpmverifyfile_state id="oval:com.redhat.rhsa:ste:20240001002" version="1">
      <red-def:name operation="pattern match">^redhat-release-server</red-def:name>
      <red-def:version operation="pattern match">^7[^\d]</red-def:version>
    </red-def:rpmverifyfile_state>
    <red-def:rpminfo_state id="oval:com.redhat.rhsa:ste:20240001003" version="1"><red-def:version operation="pattern match">^7[^\d]</red-def:version></red-def:rpminfo_state>
  </states>
</oval_definitions>"#;
    let (report, index) = import("rhel-7.oval.xml", document.as_bytes(), Limits::default());
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    assert_eq!(report.record_count, 1);
    let bind = findings(&index, "Red Hat:7", "bind", "32:9.11.4-26.P2.el7_9.14");
    assert_eq!(ids(&bind), ["RHSA-2024:0001"]);
    assert_eq!(bind[0].fixed_versions, ["32:9.11.4-26.P2.el7_9.15"]);
    assert!(findings(&index, "Red Hat:8", "bind", "32:9.11.4-26.P2.el7_9.14").is_empty());
}

/// An update stream's feed (`rhel-8.6-eus.oval.xml`): its definitions' CPEs name the
/// streams (EUS and AUS of 8.6), whose fixes are not the main stream's.
#[test]
fn red_hat_update_stream_definitions_are_for_their_streams_only() {
    let document = r#"<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:red-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux">
  <definitions>
    <definition class="patch" id="oval:com.redhat.rhsa:def:20240002" version="1">
      <metadata><title>RHSA-2024:0002: openssl security update (Moderate)</title>
        <affected family="unix"><platform>Red Hat Enterprise Linux 8</platform></affected>
        <reference ref_id="RHSA-2024:0002" source="RHSA"/>
        <advisory from="secalert@redhat.com"><severity>Moderate</severity>
          <affected_cpe_list>
            <cpe>cpe:/a:redhat:rhel_eus:8.6::appstream</cpe>
            <cpe>cpe:/o:redhat:rhel_eus:8.6::baseos</cpe>
            <cpe>cpe:/o:redhat:rhel_aus:8.6::baseos</cpe>
            <cpe>cpe:/o:redhat:rhel_eus:9.0::baseos</cpe>
            <cpe>cpe:/a:redhat:rhel_extras_other:8</cpe>
          </affected_cpe_list>
        </advisory></metadata>
      <criteria operator="AND">
        <criterion comment="Red Hat Enterprise Linux 8 is installed" test_ref="oval:com.redhat.rhsa:tst:20240002002"/>
        <criterion comment="openssl-libs is earlier than 1:1.1.1k-8.el8_6.1" test_ref="oval:com.redhat.rhsa:tst:20240002001"/>
      </criteria>
    </definition>
  </definitions>
  <tests>
    <red-def:rpminfo_test check="at least one" id="oval:com.redhat.rhsa:tst:20240002001" version="1">
      <red-def:object object_ref="oval:com.redhat.rhsa:obj:20240002001"/>
      <red-def:state state_ref="oval:com.redhat.rhsa:ste:20240002001"/>
    </red-def:rpminfo_test>
    <red-def:rpmverifyfile_test check="at least one" id="oval:com.redhat.rhsa:tst:20240002002" version="1">
      <red-def:object object_ref="oval:com.redhat.rhsa:obj:20240002002"/>
      <red-def:state state_ref="oval:com.redhat.rhsa:ste:20240002002"/>
    </red-def:rpmverifyfile_test>
  </tests>
  <objects>
    <red-def:rpminfo_object id="oval:com.redhat.rhsa:obj:20240002001" version="1"><red-def:name>openssl-libs</red-def:name></red-def:rpminfo_object>
    <red-def:rpmverifyfile_object id="oval:com.redhat.rhsa:obj:20240002002" version="1"><red-def:filepath>/etc/redhat-release</red-def:filepath></red-def:rpmverifyfile_object>
  </objects>
  <states>
    <red-def:rpminfo_state id="oval:com.redhat.rhsa:ste:20240002001" version="1"><red-def:evr datatype="evr_string" operation="less than">1:1.1.1k-8.el8_6.1</red-def:evr></red-def:rpminfo_state>
    <red-def:rpmverifyfile_state id="oval:com.redhat.rhsa:ste:20240002002" version="1">
      <red-def:name operation="pattern match">^redhat-release</red-def:name>
      <red-def:version operation="pattern match">^8[^\d]</red-def:version>
    </red-def:rpmverifyfile_state>
  </states>
</oval_definitions>"#;
    let (report, index) = import(
        "rhel-8.6-eus.oval.xml",
        document.as_bytes(),
        Limits::default(),
    );
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    for stream in ["Red Hat:rhel_eus:8.6", "Red Hat:rhel_aus:8.6"] {
        let found = findings(&index, stream, "openssl-libs", "1:1.1.1k-7.el8_6");
        assert_eq!(ids(&found), ["RHSA-2024:0002"], "{stream}");
        assert_eq!(found[0].fixed_versions, ["1:1.1.1k-8.el8_6.1"]);
    }
    for other in ["Red Hat:8", "Red Hat:rhel_eus:9.0", "Red Hat:rhel_e4s:8.6"] {
        assert!(
            findings(&index, other, "openssl-libs", "1:1.1.1k-7.el8_6").is_empty(),
            "{other}"
        );
    }
}

/// Red Hat's OVAL with unpatched vulnerabilities: an unfixed package is affected in every
/// version, with the status its advisory's resolution gives; unaffected definitions are
/// not records.
#[test]
fn red_hat_unfixed_packages_carry_their_resolution() {
    let (report, index) = import_fixture(FIXTURES, "rhel-9-including-unpatched.oval.xml");
    assert_eq!(report.record_count, 3, "{:?}", reasons(&report));
    assert_eq!(
        reasons(&report),
        [
            "rhel-9-including-unpatched.oval.xml: 1 definitions that are not patch or vulnerability definitions (or are Red Hat's unaffected ones) skipped"
        ]
    );
    let openssl = findings(&index, "Red Hat:9", "openssl-libs", "1:3.0.7-25.el9_3");
    assert_eq!(ids(&openssl), ["RHSA-2024:1249"]);
    assert_eq!(openssl[0].fixed_versions, ["1:3.0.7-27.el9"]);
    assert!(findings(&index, "Red Hat:9", "openssl-libs", "1:3.0.7-27.el9").is_empty());
    for package in ["curl", "libcurl"] {
        let curl = findings(&index, "Red Hat:9", package, "7.76.1-29.el9_4");
        assert_eq!(ids(&curl), ["CVE-2023-28322"], "{package}");
        assert_eq!(curl[0].status, Some(DistroStatus::WillNotFix));
        assert!(curl[0].fixed_versions.is_empty());
        assert_eq!(curl[0].severity.as_deref(), Some("Low"));
    }
    let libarchive = findings(&index, "Red Hat:9", "libarchive", "3.5.3-4.el9");
    assert_eq!(ids(&libarchive), ["CVE-2024-48957"]);
    assert_eq!(libarchive[0].status, Some(DistroStatus::Open));
    assert!(findings(&index, "Red Hat:9", "bash", "5.1.8-9.el9").is_empty());
    assert!(findings(&index, "Red Hat:8", "curl", "7.61.1-34.el8").is_empty());
}

#[test]
fn azure_linux_and_cbl_mariner_definitions_take_their_release_from_the_feed() {
    let (report, azure) = import_fixture(FIXTURES, "azurelinux-3.0-oval.xml");
    // Two packages' definitions of CVE-2024-6119 are one record.
    assert_eq!(report.record_count, 3, "{:?}", reasons(&report));
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    let found = findings(&azure, "Azure Linux:3.0", "openssl", "3.3.0-2.azl3");
    assert_eq!(ids(&found), ["CVE-2024-6119"]);
    assert_eq!(found[0].severity.as_deref(), Some("High"));
    assert_eq!(found[0].fixed_versions, ["3.3.2-1.azl3"]);
    assert_eq!(found[0].status, Some(DistroStatus::Fixed));
    assert_eq!(found[0].published.as_deref(), Some("2024-09-10T16:39:54Z"));
    assert_eq!(
        ids(&findings(
            &azure,
            "Azure Linux:3.0",
            "edk2",
            "20240524git3e722403cd16-2.azl3"
        )),
        ["CVE-2024-6119"]
    );
    assert!(findings(&azure, "Azure Linux:3.0", "openssl", "3.3.2-1.azl3").is_empty());
    // `less than or equal`: affected up to that version, no fix.
    let wget = findings(&azure, "Azure Linux:3.0", "wget", "1.21.4-1.azl3");
    assert_eq!(ids(&wget), ["CVE-2024-38428"]);
    assert_eq!(wget[0].status, Some(DistroStatus::Open));
    assert!(wget[0].fixed_versions.is_empty());
    assert!(findings(&azure, "Azure Linux:3.0", "wget", "1.21.4-2.azl3").is_empty());
    // CBL-Mariner 2.0 is another release: Azure Linux's data does not cover it.
    assert!(!azure.has_advisories_for("Mariner:2.0"));
    assert!(findings(&azure, "Mariner:2.0", "openssl", "1.1.1k-30.cm2").is_empty());

    let (report, mariner) = import_fixture(FIXTURES, "cbl-mariner-2.0-oval.xml");
    assert_eq!(report.record_count, 2, "{:?}", reasons(&report));
    assert_eq!(
        ids(&findings(
            &mariner,
            "Mariner:2.0",
            "openssl",
            "1.1.1k-30.cm2"
        )),
        ["CVE-2024-6119"]
    );
    assert!(findings(&mariner, "Azure Linux:3.0", "openssl", "3.3.0-2.azl3").is_empty());
    assert!(findings(&mariner, "Mariner:2.0", "openssl", "1.1.1k-34.cm2").is_empty());

    // Without the file's name, the rpm's dist tag tells the release; an explicit release
    // wins over both.
    let bytes = std::fs::read(fixture(FIXTURES, "cbl-mariner-2.0-oval.xml")).unwrap();
    let (_, by_tag) = import("download", &bytes, Limits::default());
    assert_eq!(
        ids(&findings(&by_tag, "Mariner:2.0", "expat", "2.5.0-1.cm2")),
        ["CVE-2024-45490"]
    );
    let options = ImportOptions {
        release: Some("Mariner:1.0".to_owned()),
        ..ImportOptions::default()
    };
    let (_, explicit) = import("cbl-mariner-2.0-oval.xml", &bytes, options);
    assert!(findings(&explicit, "Mariner:2.0", "expat", "2.5.0-1.cm2").is_empty());
    assert_eq!(
        ids(&findings(&explicit, "Mariner:1.0", "expat", "2.5.0-1.cm1")),
        ["CVE-2024-45490"]
    );
}

fn compressed(kind: &str, bytes: &[u8]) -> Vec<u8> {
    match kind {
        "bz2" => {
            let mut encoder =
                bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "gz" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "xz" => {
            let mut output = Vec::new();
            lzma_rs::xz_compress(&mut std::io::Cursor::new(bytes), &mut output).unwrap();
            output
        }
        "zst" => zstd::encode_all(bytes, 3).unwrap(),
        other => panic!("{other}"),
    }
}

#[test]
fn compressed_feeds_are_read_streaming_and_bounded() {
    let plain = std::fs::read(fixture(FIXTURES, "com.oracle.elsa-2024.xml")).unwrap();
    for kind in ["bz2", "gz", "xz", "zst"] {
        let name = format!("com.oracle.elsa-2024.xml.{kind}");
        let (report, index) = import(&name, &compressed(kind, &plain), Limits::default());
        assert_eq!(report.record_count, 5, "{name}: {:?}", reasons(&report));
        assert_eq!(report.format, "oval", "{name}");
        assert_eq!(
            ids(&findings(&index, "Oracle Linux:9", "gnutls", "3.8.3-3.el9")),
            ["ELSA-2024-2570"],
            "{name}"
        );
    }
    // A compressed document inflating past the XML limit is refused, whatever the
    // compression, and so is a plain one.
    let limits = Limits {
        max_xml_bytes: 16 << 10,
        ..Limits::default()
    };
    let mut bomb = b"<oval_definitions><definitions>".to_vec();
    bomb.resize(1 << 20, b' ');
    for kind in ["bz2", "gz", "xz", "zst"] {
        let name = format!("bomb.xml.{kind}");
        let error = runtime()
            .block_on(async {
                let database = Database::open_in_memory().await.unwrap();
                database
                    .import_bytes(&name, compressed(kind, &bomb), limits)
                    .await
            })
            .unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::TooLarge { limit: 16384, .. }),
            "{name}: {error}"
        );
        assert!(
            error.to_string().contains("bomb.xml.") && error.to_string().contains("(decompressed)"),
            "{error}"
        );
    }
    let error = runtime()
        .block_on(async {
            let database = Database::open_in_memory().await.unwrap();
            database.import_bytes("big.xml", bomb.clone(), limits).await
        })
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "big.xml is 16385 bytes, over the limit of 16384 bytes"
    );
    // Corrupt compressed data keeps what came before it and says what was wrong.
    let mut cut = compressed("bz2", &plain);
    cut.truncate(cut.len() / 2);
    let (report, _) = import("cut.xml.bz2", &cut, Limits::default());
    assert_eq!(report.record_count, 0);
    let warnings = reasons(&report);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("cut.xml.bz2: "), "{warnings:?}");
    assert!(
        warnings[0].contains("bzip2") || warnings[0].contains("truncated"),
        "{warnings:?}"
    );
}

/// A document larger than the whole-file limit is read streaming: the XML bound applies.
#[test]
fn a_document_over_the_whole_file_limit_is_read_streaming() {
    let template = std::fs::read_to_string(fixture(FIXTURES, "azurelinux-3.0-oval.xml")).unwrap();
    let (head, rest) = template.split_once("  <definitions>\n").unwrap();
    let (definition, rest) = rest.split_once("  </definitions>\n").unwrap();
    let first = definition
        .split_inclusive("    </definition>\n")
        .next()
        .unwrap();
    let (_, tests) = rest.split_once("  <tests>\n").unwrap();
    let test = tests
        .split_inclusive("    </linux-def:rpminfo_test>\n")
        .next()
        .unwrap();
    let (_, objects) = rest.split_once("  <objects>\n").unwrap();
    let object = objects
        .split_inclusive("    </linux-def:rpminfo_object>\n")
        .next()
        .unwrap();
    let (_, states) = rest.split_once("  <states>\n").unwrap();
    let state = states
        .split_inclusive("    </linux-def:rpminfo_state>\n")
        .next()
        .unwrap();
    let count = 2000;
    let each = |part: &str| {
        (0..count)
            .map(|n| {
                part.replace("43355", &format!("9{n:05}"))
                    .replace("CVE-2024-6119", &format!("CVE-2099-{n:05}"))
            })
            .collect::<String>()
    };
    let document = format!(
        "{head}  <definitions>\n{}  </definitions>\n  <tests>\n{}  </tests>\n  <objects>\n{}  </objects>\n  <states>\n{}  </states>\n</oval_definitions>\n",
        each(first),
        each(test),
        each(object),
        each(state)
    );
    let limits = Limits {
        max_file_bytes: 64 << 10,
        ..Limits::default()
    };
    assert!(document.len() > 20 * (64 << 10));
    let (report, index) = import("azurelinux-3.0-oval.xml", document.as_bytes(), limits);
    assert_eq!(report.record_count, count, "{:?}", reasons(&report));
    let found = findings(&index, "Azure Linux:3.0", "openssl", "3.3.0-1.azl3");
    assert_eq!(found.len(), count as usize);
}

#[test]
fn document_type_declarations_and_unreadable_tests_are_refused_by_id() {
    let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE oval_definitions [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<oval_definitions><definitions/></oval_definitions>"#;
    let (report, _) = import("elsa.xml", bomb, Limits::default());
    assert_eq!(report.record_count, 0);
    assert!(
        reasons(&report)[0].contains("document type declarations are not accepted"),
        "{:?}",
        reasons(&report)
    );
    // Tests and operations a record cannot express are named, not guessed at.
    let document = r#"<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:linux-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux" xmlns:ind-def="http://oval.mitre.org/XMLSchema/oval-definitions-5#independent">
  <definitions>
    <definition class="vulnerability" id="oval:com.microsoft.azurelinux:def:1" version="1">
      <metadata><title>CVE-2099-0001 affecting package a</title>
        <reference ref_id="CVE-2099-0001" source="CVE"/></metadata>
      <criteria operator="AND"><criterion test_ref="oval:com.microsoft.azurelinux:tst:1"/></criteria>
    </definition>
    <definition class="vulnerability" id="oval:com.microsoft.azurelinux:def:2" version="1">
      <metadata><title>CVE-2099-0002 affecting package b</title>
        <reference ref_id="CVE-2099-0002" source="CVE"/></metadata>
      <criteria operator="AND"><criterion test_ref="oval:com.microsoft.azurelinux:tst:2"/></criteria>
    </definition>
    <definition class="vulnerability" id="oval:com.microsoft.azurelinux:def:3" version="1">
      <metadata><title>CVE-2099-0003 affecting packages c and d</title>
        <reference ref_id="CVE-2099-0003" source="CVE"/></metadata>
      <criteria operator="AND">
        <criterion test_ref="oval:com.microsoft.azurelinux:tst:3"/>
        <criterion test_ref="oval:com.microsoft.azurelinux:tst:4"/>
      </criteria>
    </definition>
    <definition class="inventory" id="oval:com.microsoft.azurelinux:def:4" version="1">
      <metadata><title>Azure Linux 3.0 is installed</title></metadata>
      <criteria><criterion test_ref="oval:com.microsoft.azurelinux:tst:5"/></criteria>
    </definition>
  </definitions>
  <tests>
    <ind-def:family_test check="all" id="oval:com.microsoft.azurelinux:tst:1" version="1">
      <ind-def:object object_ref="oval:com.microsoft.azurelinux:obj:1"/>
    </ind-def:family_test>
    <linux-def:rpminfo_test check="at least one" id="oval:com.microsoft.azurelinux:tst:2" version="1">
      <linux-def:object object_ref="oval:com.microsoft.azurelinux:obj:2"/>
      <linux-def:state state_ref="oval:com.microsoft.azurelinux:ste:2"/>
    </linux-def:rpminfo_test>
    <linux-def:rpminfo_test check="at least one" id="oval:com.microsoft.azurelinux:tst:3" version="1">
      <linux-def:object object_ref="oval:com.microsoft.azurelinux:obj:3"/>
      <linux-def:state state_ref="oval:com.microsoft.azurelinux:ste:3"/>
    </linux-def:rpminfo_test>
    <linux-def:rpminfo_test check="at least one" id="oval:com.microsoft.azurelinux:tst:4" version="1">
      <linux-def:object object_ref="oval:com.microsoft.azurelinux:obj:4"/>
      <linux-def:state state_ref="oval:com.microsoft.azurelinux:ste:3"/>
    </linux-def:rpminfo_test>
  </tests>
  <objects>
    <linux-def:rpminfo_object id="oval:com.microsoft.azurelinux:obj:2" version="1"><linux-def:name>b</linux-def:name></linux-def:rpminfo_object>
    <linux-def:rpminfo_object id="oval:com.microsoft.azurelinux:obj:3" version="1"><linux-def:name>c</linux-def:name></linux-def:rpminfo_object>
    <linux-def:rpminfo_object id="oval:com.microsoft.azurelinux:obj:4" version="1"><linux-def:name>d</linux-def:name></linux-def:rpminfo_object>
  </objects>
  <states>
    <linux-def:rpminfo_state id="oval:com.microsoft.azurelinux:ste:2" version="1"><linux-def:evr datatype="evr_string" operation="greater than">0:1.0-1.azl3</linux-def:evr></linux-def:rpminfo_state>
    <linux-def:rpminfo_state id="oval:com.microsoft.azurelinux:ste:3" version="1"><linux-def:evr datatype="evr_string" operation="less than">0:1.0-1.azl3</linux-def:evr></linux-def:rpminfo_state>
  </states>
</oval_definitions>"#;
    let (report, _) = import(
        "azurelinux-3.0-oval.xml",
        document.as_bytes(),
        Limits::default(),
    );
    assert_eq!(report.record_count, 0);
    assert_eq!(
        reasons(&report),
        [
            "azurelinux-3.0-oval.xml: definition oval:com.microsoft.azurelinux:def:1: family_test oval:com.microsoft.azurelinux:tst:1 (rpminfo_test, rpmverifyfile_test of the release file, textfilecontent54_test and uname_test are read)",
            "azurelinux-3.0-oval.xml: definition oval:com.microsoft.azurelinux:def:2: state oval:com.microsoft.azurelinux:ste:2: an operation not read in <evr operation=\"greater than\">0:1.0-1.azl3",
            "azurelinux-3.0-oval.xml: definition oval:com.microsoft.azurelinux:def:3: an alternative needing several packages at once (c, d) cannot be told by one package's version",
            "azurelinux-3.0-oval.xml: 1 definitions that are not patch or vulnerability definitions (or are Red Hat's unaffected ones) skipped",
        ]
    );
}

/// Records of one id are one advisory within one OVAL document only (Azure Linux's
/// per-package definitions of one CVE): another document of the same import (a directory
/// with Azure Linux 3.0's and CBL-Mariner 2.0's feeds, both defining CVE-2024-6119) keeps
/// its own record, with its own severity.
#[test]
fn records_of_one_id_are_merged_within_their_document_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture(FIXTURES, "azurelinux-3.0-oval.xml"),
        dir.path().join("azurelinux-3.0-oval.xml"),
    )
    .unwrap();
    let mariner = std::fs::read_to_string(fixture(FIXTURES, "cbl-mariner-2.0-oval.xml")).unwrap();
    let high = "<severity>High</severity>";
    assert_eq!(mariner.matches(high).count(), 1);
    std::fs::write(
        dir.path().join("cbl-mariner-2.0-oval.xml"),
        mariner.replace(high, "<severity>Medium</severity>"),
    )
    .unwrap();
    let (report, index) = runtime().block_on(async {
        let database = Database::open_in_memory().await.unwrap();
        let report = database
            .import_path(dir.path(), Limits::default())
            .await
            .unwrap();
        (
            report,
            palisade_vulndb::Index::load(&database).await.unwrap(),
        )
    });
    // Azure Linux's 3 (its two definitions of CVE-2024-6119 one) and CBL-Mariner's 2.
    assert_eq!(report.record_count, 5, "{:?}", reasons(&report));
    let azure = findings(&index, "Azure Linux:3.0", "openssl", "3.3.0-2.azl3");
    assert_eq!(ids(&azure), ["CVE-2024-6119"]);
    assert_eq!(azure[0].severity.as_deref(), Some("High"));
    assert_eq!(
        ids(&findings(
            &index,
            "Azure Linux:3.0",
            "edk2",
            "20240524git3e722403cd16-2.azl3"
        )),
        ["CVE-2024-6119"]
    );
    let mariner = findings(&index, "Mariner:2.0", "openssl", "1.1.1k-30.cm2");
    assert_eq!(ids(&mariner), ["CVE-2024-6119"]);
    assert_eq!(mariner[0].severity.as_deref(), Some("Medium"));
}

/// Criteria nested deeper than the reader keeps are an alternative it cannot evaluate,
/// told as the definition's skip reason; the rest of the document is imported.
#[test]
fn criteria_nested_too_deep_skip_their_alternative() {
    let document = std::fs::read_to_string(fixture(FIXTURES, "azurelinux-3.0-oval.xml")).unwrap();
    let criterion = r#"<criterion comment="Package openssl is earlier than 3.3.2-1, affected by CVE-2024-6119" test_ref="oval:com.microsoft.azurelinux:tst:43355000"/>"#;
    let top = format!("<criteria operator=\"AND\">\n        {criterion}\n      </criteria>");
    assert!(document.contains(&top));
    let nested = |depth: usize| {
        let open = "<criteria operator=\"AND\">".repeat(depth);
        let close = "</criteria>".repeat(depth);
        document.replace(&top, &format!("{open}{criterion}{close}"))
    };
    let (report, index) = import(
        "azurelinux-3.0-oval.xml",
        nested(32).as_bytes(),
        Limits::default(),
    );
    assert!(report.warnings.is_empty(), "{:?}", reasons(&report));
    let openssl = |index| {
        ids(&findings(
            index,
            "Azure Linux:3.0",
            "openssl",
            "3.3.0-2.azl3",
        ))
        .len()
    };
    assert_eq!(openssl(&index), 1);
    let (report, index) = import(
        "azurelinux-3.0-oval.xml",
        nested(50).as_bytes(),
        Limits::default(),
    );
    assert_eq!(
        reasons(&report),
        [
            "azurelinux-3.0-oval.xml: definition oval:com.microsoft.azurelinux:def:43355: criteria nested deeper than 32"
        ]
    );
    assert_eq!(openssl(&index), 0);
    assert_eq!(
        ids(&findings(
            &index,
            "Azure Linux:3.0",
            "wget",
            "1.21.4-1.azl3"
        )),
        ["CVE-2024-38428"]
    );
}

/// A failure of the store is the import's error (not the reading's stop it causes), and
/// nothing of the import is kept; the reading thread has stopped when the import returns.
#[test]
fn a_store_failure_is_the_import_s_error() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).unwrap();
    for name in ["azurelinux-3.0-oval.xml", "cbl-mariner-2.0-oval.xml"] {
        std::fs::copy(fixture(FIXTURES, name), feeds.join(name)).unwrap();
    }
    let path = dir.path().join("vulndb.sqlite");
    runtime().block_on(async {
        let database = Database::open(&path).await.unwrap();
        let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON vulns WHEN NEW.vuln_id = 'CVE-2024-38428' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(&other)
        .await
        .unwrap();
        other.close().await;
        let error = database
            .import_path(&feeds, Limits::default())
            .await
            .unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::Database(_)), "{error}");
        assert!(format!("{error:?}").contains("refused by the test"), "{error:?}");
        let status = database.status().await.unwrap();
        assert!(status.sources.is_empty(), "{:?}", status.sources);
        assert_eq!(status.total_records, 0);
    });
}
