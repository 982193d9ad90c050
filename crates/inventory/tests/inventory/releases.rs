//! Which release's advisories a root's distribution packages are matched against: Red Hat's
//! update streams (EUS, AUS, E4S, TUS) from content manifests and enabled repositories,
//! SUSE's Micro products and LTSS (`etc/products.d/SLES-LTSS.prod`), and releases named
//! only by `etc/redhat-release`.

use std::path::Path;

use palisade_inventory::{Limits, RootFs, Target, inventory};

use crate::inventory::catalog::rpmdb;

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// RHEL 9.2's `os-release`, as `ubi9` images of that release ship it.
const RHEL_9_2: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.2 (Plow)\"\nID=\"rhel\"\n\
    ID_LIKE=\"fedora\"\nVERSION_ID=\"9.2\"\nPLATFORM_ID=\"platform:el9\"\n\
    PRETTY_NAME=\"Red Hat Enterprise Linux 9.2 (Plow)\"\n\
    CPE_NAME=\"cpe:/o:redhat:enterprise_linux:9::baseos\"\n";

/// A content manifest as Red Hat's build system writes one per build into
/// `root/buildinfo/content_manifests/`.
fn content_manifest(layer: u64, content_sets: &[&str]) -> String {
    serde_json::json!({
        "metadata": {
            "icm_version": 1,
            "icm_spec": "https://raw.githubusercontent.com/containerbuildsystem/atomic-reactor/master/atomic_reactor/schemas/content_manifest.json",
            "image_layer_index": layer
        },
        "content_sets": content_sets,
        "image_contents": []
    })
    .to_string()
}

/// The ecosystem of the root's one rpm package (`bash`), and the distribution's stream.
fn rpm_ecosystem(root: &Path) -> (String, Option<String>) {
    let found = inventory(&Target::RootFs(RootFs::new(root)), &Limits::default()).unwrap();
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
    let bash = found
        .packages
        .iter()
        .find(|package| package.name == "bash")
        .unwrap_or_else(|| panic!("{:?}", found.packages));
    (
        bash.ecosystem.clone(),
        found.distro.and_then(|distro| distro.stream),
    )
}

fn rhel_root(root: &Path) {
    write(root, "etc/os-release", RHEL_9_2);
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    rpmdb(&root.join("var/lib/rpm/rpmdb.sqlite"));
}

#[test]
fn an_eus_image_is_matched_against_its_stream() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    rhel_root(root);
    // The main-stream base image's manifest, then the product build's, pinned to 9.2 EUS.
    write(
        root,
        "root/buildinfo/content_manifests/ubi9-container-9.2-489.json",
        &content_manifest(
            0,
            &[
                "rhel-9-for-x86_64-baseos-rpms",
                "rhel-9-for-x86_64-appstream-rpms",
            ],
        ),
    );
    write(
        root,
        "root/buildinfo/content_manifests/openshift-enterprise-console-container-v4.14.0.json",
        &content_manifest(
            2,
            &[
                "rhel-9-for-x86_64-appstream-eus-rpms__9_DOT_2",
                "rhel-9-for-x86_64-baseos-eus-rpms__9_DOT_2",
                "rhocp-4.14-for-rhel-9-x86_64-rpms",
            ],
        ),
    );
    assert_eq!(
        rpm_ecosystem(root),
        (
            "Red Hat:rhel_eus:9.2".to_owned(),
            Some("rhel_eus:9.2".to_owned())
        )
    );
    // Without the EUS build, the main stream's data applies.
    std::fs::remove_file(root.join(
        "root/buildinfo/content_manifests/openshift-enterprise-console-container-v4.14.0.json",
    ))
    .unwrap();
    assert_eq!(rpm_ecosystem(root), ("Red Hat:9".to_owned(), None));
}

#[test]
fn a_host_on_an_update_stream_says_so_in_its_enabled_repositories() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    rhel_root(root);
    // subscription-manager's file lists every entitled repository; only enabled ones count.
    write(
        root,
        "etc/yum.repos.d/redhat.repo",
        "#\n# Certificate-Based Repositories\n#\n\
         [rhel-9-for-x86_64-baseos-rpms]\nname = BaseOS\nenabled = 0\n\n\
         [rhel-9-for-x86_64-baseos-e4s-rpms]\nname = BaseOS - Update Services for SAP Solutions\n\
         baseurl = https://cdn.redhat.com/content/e4s/rhel9/$releasever/x86_64/baseos/os\n\
         enabled = 1\n\n\
         [rhel-9-for-x86_64-appstream-e4s-rpms]\nenabled = 1\n\n\
         [rhel-9-for-x86_64-sap-solutions-e4s-rpms]\nenabled = 1\n",
    );
    assert_eq!(
        rpm_ecosystem(root),
        (
            "Red Hat:rhel_e4s:9.2".to_owned(),
            Some("rhel_e4s:9.2".to_owned())
        )
    );
}

#[test]
fn suse_micro_packages_are_matched_against_the_micro_release() {
    let cases = [
        (
            "NAME=\"SL-Micro\"\nVERSION=\"6.0\"\nVERSION_ID=\"6.0\"\n\
             PRETTY_NAME=\"SUSE Linux Micro 6.0\"\nID=\"sl-micro\"\nID_LIKE=\"suse\"\n",
            "SUSE:Linux Micro 6.0",
        ),
        (
            "NAME=\"SLE Micro\"\nVERSION=\"5.5\"\nVERSION_ID=\"5.5\"\n\
             PRETTY_NAME=\"SUSE Linux Enterprise Micro 5.5\"\nID=\"sle-micro\"\nID_LIKE=\"suse\"\n",
            "SUSE:Linux Enterprise Micro 5.5",
        ),
        (
            "NAME=\"openSUSE Leap Micro\"\nVERSION=\"5.5\"\nID=\"opensuse-leap-micro\"\n\
             VERSION_ID=\"5.5\"\nPRETTY_NAME=\"openSUSE Leap Micro 5.5\"\n",
            "openSUSE:Leap Micro 5.5",
        ),
    ];
    for (os_release, ecosystem) in cases {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        write(root, "usr/lib/os-release", os_release);
        std::fs::create_dir_all(root.join("usr/lib/sysimage/rpm")).unwrap();
        rpmdb(&root.join("usr/lib/sysimage/rpm/rpmdb.sqlite"));
        assert_eq!(rpm_ecosystem(root), (ecosystem.to_owned(), None));
    }
}

#[test]
fn an_image_without_os_release_is_named_by_its_release_file() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    // CentOS 6: `redhat-release` links to `centos-release`; no `os-release` at all.
    write(root, "etc/centos-release", "CentOS release 6.10 (Final)\n");
    std::os::unix::fs::symlink("centos-release", root.join("etc/redhat-release")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    rpmdb(&root.join("var/lib/rpm/rpmdb.sqlite"));
    assert_eq!(rpm_ecosystem(root), ("Red Hat:6".to_owned(), None));
}

/// SLES 15 SP4's `os-release` and base product file, as its images and hosts ship them.
fn sles_root(root: &Path) {
    write(
        root,
        "etc/os-release",
        "NAME=\"SLES\"\nVERSION=\"15-SP4\"\nVERSION_ID=\"15.4\"\n\
         PRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP4\"\nID=\"sles\"\n\
         ID_LIKE=\"suse\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:15:sp4\"\n",
    );
    write(
        root,
        "etc/products.d/SLES.prod",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<product schemeversion=\"0\">\n\
         <vendor>SUSE</vendor>\n<name>SLES</name>\n<version>15.4</version>\n\
         <baseversion>15</baseversion>\n<patchlevel>4</patchlevel>\n\
         <cpeid>cpe:/o:suse:sles:15:sp4</cpeid>\n<productline>sles</productline>\n</product>\n",
    );
    std::os::unix::fs::symlink("SLES.prod", root.join("etc/products.d/baseproduct")).unwrap();
    std::fs::create_dir_all(root.join("usr/lib/sysimage/rpm")).unwrap();
    rpmdb(&root.join("usr/lib/sysimage/rpm/rpmdb.sqlite"));
}

/// A product file as the product's release package installs it (trimmed).
fn product_file(name: &str, version: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<product schemeversion=\"0\">\n\
         <vendor>SUSE</vendor>\n<name>{name}</name>\n<version>{version}</version>\n\
         <productline>{name}</productline>\n</product>\n"
    )
}

#[test]
fn a_sles_root_with_the_ltss_product_is_on_its_ltss_stream() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    sles_root(root);
    assert_eq!(rpm_ecosystem(root), ("SUSE:15.4".to_owned(), None));
    write(
        root,
        "etc/products.d/SLES-LTSS.prod",
        &product_file("SLES-LTSS", "15.4"),
    );
    assert_eq!(
        rpm_ecosystem(root),
        ("SUSE:15.4-LTSS".to_owned(), Some("15.4-LTSS".to_owned()))
    );
    // A product file of another service pack's LTSS is not this system's stream.
    write(
        root,
        "etc/products.d/SLES-LTSS.prod",
        &product_file("SLES-LTSS", "15.3"),
    );
    assert_eq!(rpm_ecosystem(root), ("SUSE:15.4".to_owned(), None));
}

/// SLES for SAP Applications 15 SP4 says `ID="sles"` in `os-release`; its base product file
/// (`SLES_SAP.prod`, which `baseproduct` links to) and `CPE_NAME` say which product it is.
#[test]
fn a_sles_for_sap_root_is_on_its_products_release() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    sles_root(root);
    // A product file left from another service pack does not make SLES a SAP system.
    write(
        root,
        "etc/products.d/SLES_SAP.prod",
        &product_file("SLES_SAP", "15.3"),
    );
    assert_eq!(rpm_ecosystem(root), ("SUSE:15.4".to_owned(), None));
    write(
        root,
        "etc/products.d/SLES_SAP.prod",
        &product_file("SLES_SAP", "15.4"),
    );
    std::fs::remove_file(root.join("etc/products.d/SLES.prod")).unwrap();
    std::fs::remove_file(root.join("etc/products.d/baseproduct")).unwrap();
    std::os::unix::fs::symlink("SLES_SAP.prod", root.join("etc/products.d/baseproduct")).unwrap();
    assert_eq!(
        rpm_ecosystem(root),
        ("SUSE:15.4-SAP".to_owned(), Some("15.4-SAP".to_owned()))
    );
    // Without the product file, the CPE name alone tells it.
    std::fs::remove_file(root.join("etc/products.d/SLES_SAP.prod")).unwrap();
    write(
        root,
        "etc/os-release",
        "NAME=\"SLES\"\nVERSION=\"15-SP4\"\nVERSION_ID=\"15.4\"\n\
         PRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP4\"\nID=\"sles\"\nID_LIKE=\"suse\"\n\
         CPE_NAME=\"cpe:/o:suse:sles_sap:15:sp4\"\n",
    );
    assert_eq!(rpm_ecosystem(root).0, "SUSE:15.4-SAP");
    // SLES for SAP 12 names itself in `ID`.
    write(
        root,
        "etc/os-release",
        "NAME=\"SLES_SAP\"\nVERSION=\"12-SP5\"\nVERSION_ID=\"12.5\"\n\
         PRETTY_NAME=\"SUSE Linux Enterprise Server for SAP Applications 12 SP5\"\n\
         ID=\"sles_sap\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles_sap:12:sp5\"\n",
    );
    assert_eq!(rpm_ecosystem(root).0, "SUSE:12.5-SAP");
}

/// SLE HPC 15 SP4, then with its LTSS or ESPOS extension activated.
#[test]
fn an_hpc_root_is_on_its_products_release_and_stream() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    sles_root(root);
    std::fs::remove_file(root.join("etc/products.d/SLES.prod")).unwrap();
    write(
        root,
        "etc/products.d/SLE_HPC.prod",
        &product_file("SLE_HPC", "15.4"),
    );
    assert_eq!(
        rpm_ecosystem(root),
        ("SUSE:15.4-HPC".to_owned(), Some("15.4-HPC".to_owned()))
    );
    write(
        root,
        "etc/products.d/SLE_HPC-LTSS.prod",
        &product_file("SLE_HPC-LTSS", "15.4"),
    );
    assert_eq!(rpm_ecosystem(root).0, "SUSE:15.4-HPC-LTSS");
    std::fs::remove_file(root.join("etc/products.d/SLE_HPC-LTSS.prod")).unwrap();
    write(
        root,
        "etc/products.d/SLE_HPC-ESPOS.prod",
        &product_file("SLE_HPC-ESPOS", "15.4"),
    );
    assert_eq!(rpm_ecosystem(root).0, "SUSE:15.4-HPC-ESPOS");
    // SLES's LTSS product on an HPC system does not make it SLES LTSS.
    std::fs::remove_file(root.join("etc/products.d/SLE_HPC-ESPOS.prod")).unwrap();
    write(
        root,
        "etc/products.d/SLES-LTSS.prod",
        &product_file("SLES-LTSS", "15.4"),
    );
    assert_eq!(rpm_ecosystem(root).0, "SUSE:15.4-HPC");
}

/// The purl of the root's `bash`.
fn bash_purl(root: &Path) -> String {
    let found = inventory(&Target::RootFs(RootFs::new(root)), &Limits::default()).unwrap();
    found
        .packages
        .into_iter()
        .find(|package| package.name == "bash")
        .map(|package| package.purl)
        .unwrap_or_default()
}

#[test]
fn openeuler_packages_are_matched_against_their_release_and_service_pack() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    rpmdb(&root.join("var/lib/rpm/rpmdb.sqlite"));
    // An image without os-release names its release in etc/openEuler-release alone.
    write(
        root,
        "etc/openEuler-release",
        "openEuler release 22.03 (LTS-SP3)\n",
    );
    assert_eq!(
        rpm_ecosystem(root),
        (
            "openEuler:22.03-LTS-SP3".to_owned(),
            Some("LTS-SP3".to_owned())
        )
    );
    // os-release, as openEuler's images ship it, decides when present.
    write(
        root,
        "etc/os-release",
        "NAME=\"openEuler\"\nVERSION=\"24.03 (LTS-SP1)\"\nID=\"openEuler\"\n\
         VERSION_ID=\"24.03\"\nPRETTY_NAME=\"openEuler 24.03 (LTS-SP1)\"\nANSI_COLOR=\"0;31\"\n",
    );
    assert_eq!(rpm_ecosystem(root).0, "openEuler:24.03-LTS-SP1");
    assert!(
        bash_purl(root)
            .starts_with("pkg:rpm/openeuler/bash@5.1.8-6.el9_1?arch=x86_64&distro=openeuler-24.03"),
        "{}",
        bash_purl(root)
    );
}

#[test]
fn amazon_oracle_and_fedora_roots_are_not_labelled_red_hat() {
    for (os_release, ecosystem, purl) in [
        (
            "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\n\
             VERSION_ID=\"2023\"\nPRETTY_NAME=\"Amazon Linux 2023.6.20241010\"\n",
            "Amazon Linux:2023",
            "pkg:rpm/amazon/bash@5.1.8-6.el9_1?arch=x86_64&distro=amzn-2023",
        ),
        (
            "NAME=\"Oracle Linux Server\"\nVERSION=\"9.3\"\nID=\"ol\"\nID_LIKE=\"fedora\"\n\
             VERSION_ID=\"9.3\"\n",
            "Oracle Linux:9",
            "pkg:rpm/oracle/bash@5.1.8-6.el9_1?arch=x86_64&distro=ol-9.3",
        ),
        (
            "NAME=\"Fedora Linux\"\nVERSION=\"40 (Container Image)\"\nID=fedora\nVERSION_ID=40\n",
            "Fedora:40",
            "pkg:rpm/fedora/bash@5.1.8-6.el9_1?arch=x86_64&distro=fedora-40",
        ),
        // A distribution Palisade does not map keeps its own name (it was `Red Hat`).
        (
            "NAME=\"Anolis OS\"\nVERSION=\"8.8\"\nID=\"anolis\"\nID_LIKE=\"rhel fedora centos\"\n\
             VERSION_ID=\"8.8\"\n",
            "anolis:8.8",
            "pkg:rpm/anolis/bash@5.1.8-6.el9_1?arch=x86_64&distro=anolis-8.8",
        ),
    ] {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        write(root, "etc/os-release", os_release);
        std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
        rpmdb(&root.join("var/lib/rpm/rpmdb.sqlite"));
        assert_eq!(rpm_ecosystem(root).0, ecosystem);
        assert_eq!(bash_purl(root), purl);
    }
}
