//! Catalogers on self-written fixtures: one root filesystem with a package of every kind,
//! the same root as a two-layer image, and Debian's own Go binaries.

use std::io::Write;
use std::path::Path;

use palisade_inventory::{
    Cancel, Cataloger, Image, Inventory, Limits, Package, RootFs, Target, inventory,
    inventory_observed,
};

use crate::support::{self, file};

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
    VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";

const DPKG_STATUS: &str = "Package: libssl3\nStatus: install ok installed\nPriority: optional\n\
    Architecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: SSL\n\n\
    Package: python3-six\nStatus: install ok installed\nArchitecture: all\nSource: six\n\
    Version: 1.16.0-4\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n";

fn jar() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut bytes);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("META-INF/MANIFEST.MF", options).unwrap();
        zip.write_all(b"Manifest-Version: 1.0\n").unwrap();
        zip.start_file(
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
            options,
        )
        .unwrap();
        zip.write_all(b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n")
            .unwrap();
        let mut inner = std::io::Cursor::new(Vec::new());
        {
            let mut inner_zip = zip::ZipWriter::new(&mut inner);
            inner_zip
                .start_file("META-INF/maven/com.example/inner/pom.properties", options)
                .unwrap();
            inner_zip
                .write_all(b"groupId=com.example\nartifactId=inner\nversion=0.9\n")
                .unwrap();
            inner_zip.finish().unwrap();
        }
        zip.start_file("BOOT-INF/lib/inner-0.9.jar", options)
            .unwrap();
        zip.write_all(inner.get_ref()).unwrap();
        zip.finish().unwrap();
    }
    bytes.into_inner()
}

/// An sqlite rpm database holding `bash 5.1.8-6.el9_1`.
pub fn rpmdb(path: &Path) {
    palisade_testdata::rpm::modular_rpmdb(path, &[(("bash", None, "5.1.8", "6.el9_1"), None)]);
}

/// A root with one package of each kind, plus a Python package that dpkg owns.
fn fixture_root(root: &Path) {
    write(root, "usr/lib/os-release", OS_RELEASE.as_bytes());
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release"))
        .or_else(|_| {
            std::fs::create_dir_all(root.join("etc"))?;
            std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release"))
        })
        .unwrap();
    write(root, "var/lib/dpkg/status", DPKG_STATUS.as_bytes());
    write(
        root,
        "var/lib/dpkg/info/python3-six.list",
        b"/.\n/usr/lib/python3/dist-packages/six-1.16.0.dist-info\n\
          /usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n",
    );
    write(
        root,
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n",
    );
    write(
        root,
        "usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n\nName: not-a-header\n",
    );
    write(
        root,
        "usr/local/lib/python3.11/site-packages/PyYAML-5.3.egg-info/PKG-INFO",
        b"Metadata-Version: 1.1\nName: PyYAML\nVersion: 5.3\n",
    );
    write(
        root,
        "app/node_modules/lodash/package.json",
        br#"{"name": "lodash", "version": "4.17.15"}"#,
    );
    write(
        root,
        "app/node_modules/@babel/traverse/package.json",
        br#"{"name": "@babel/traverse", "version": "7.22.0"}"#,
    );
    write(
        root,
        "app/package-lock.json",
        br#"{"lockfileVersion": 3, "packages": {"": {"name": "app"},
            "node_modules/minimist": {"version": "1.2.5"},
            "node_modules/lodash": {"version": "4.17.15"}}}"#,
    );
    write(
        root,
        "src/Cargo.lock",
        b"version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"0.6.9\"\n\
          source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    );
    write(root, "opt/app/lib/app.jar", &jar());
    write(
        root,
        "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.3.gemspec",
        b"Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.3\"\nend\n",
    );
    write(
        root,
        "usr/lib/ruby/gems/3.1.0/specifications/nokogiri-1.16.0-x86_64-linux.gemspec",
        b"Gem::Specification.new do |s|\n  s.name = \"nokogiri\".freeze\n  s.version = \"1.16.0\"\n  s.platform = \"x86_64-linux\".freeze\nend\n",
    );
    write(
        root,
        "var/www/vendor/composer/installed.json",
        br#"{"packages": [{"name": "guzzlehttp/guzzle", "version": "v7.4.0"},
            {"name": "Legacy/Mixed-Case", "version": "1.0.0"}]}"#,
    );
    write(
        root,
        "srv/app.deps.json",
        br#"{"libraries": {"Newtonsoft.Json/12.0.1": {"type": "package"},
            "App/1.0.0": {"type": "project"}}}"#,
    );
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    rpmdb(&root.join("var/lib/rpm/rpmdb.sqlite"));
}

fn summary(inventory: &Inventory) -> Vec<String> {
    inventory
        .packages
        .iter()
        .map(|package| {
            format!(
                "{} {} {} {}",
                package.ecosystem, package.name, package.version, package.purl
            )
        })
        .collect()
}

fn expected() -> Vec<&'static str> {
    vec![
        "Debian:12 libssl3 3.0.11-1~deb12u2 pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
        "Debian:12 python3-six 1.16.0-4 pkg:deb/debian/python3-six@1.16.0-4?arch=all&distro=debian-12&upstream=six",
        "Maven com.example:inner 0.9 pkg:maven/com.example/inner@0.9",
        "Maven org.apache.logging.log4j:log4j-core 2.14.1 pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "NuGet Newtonsoft.Json 12.0.1 pkg:nuget/Newtonsoft.Json@12.0.1",
        "Packagist Legacy/Mixed-Case 1.0.0 pkg:composer/legacy/mixed-case@1.0.0",
        "Packagist guzzlehttp/guzzle 7.4.0 pkg:composer/guzzlehttp/guzzle@7.4.0",
        "PyPI Jinja2 2.10 pkg:pypi/jinja2@2.10",
        "PyPI PyYAML 5.3 pkg:pypi/pyyaml@5.3",
        "Red Hat bash 5.1.8-6.el9_1 pkg:rpm/redhat/bash@5.1.8-6.el9_1?arch=x86_64",
        "RubyGems nokogiri 1.16.0 pkg:gem/nokogiri@1.16.0?platform=x86_64-linux",
        "RubyGems rack 2.2.3 pkg:gem/rack@2.2.3",
        "crates.io smallvec 0.6.9 pkg:cargo/smallvec@0.6.9",
        "npm @babel/traverse 7.22.0 pkg:npm/%40babel/traverse@7.22.0",
        "npm lodash 4.17.15 pkg:npm/lodash@4.17.15",
        "npm minimist 1.2.5 pkg:npm/minimist@1.2.5",
    ]
}

#[test]
fn every_cataloger_on_a_root_filesystem() {
    let temp = tempfile::tempdir().unwrap();
    fixture_root(temp.path());
    let inventory = inventory(
        &Target::RootFs(RootFs::new(temp.path())),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        inventory
            .distro
            .as_ref()
            .and_then(|d| d.ecosystem())
            .as_deref(),
        Some("Debian:12")
    );
    let mut summary = summary(&inventory);
    summary.sort();
    let mut expected = expected();
    expected.sort();
    assert_eq!(summary, expected);
    let log4j = inventory
        .packages
        .iter()
        .find(|package| package.name.ends_with("log4j-core"))
        .unwrap();
    assert_eq!(log4j.cataloger, Cataloger::Java);
    assert_eq!(log4j.location.path, "/opt/app/lib/app.jar");
    assert_eq!(log4j.location.layer_digest, None);
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
}

/// Each language ecosystem is announced once, during the walk; the distribution's is not,
/// its release being known only at the end.
#[test]
fn language_ecosystems_are_announced_once_as_they_are_found() {
    let temp = tempfile::tempdir().unwrap();
    fixture_root(temp.path());
    let n_files = std::cell::Cell::new(0u64);
    // Each announced ecosystem with the number of files the walk had met by then.
    let mut announced: Vec<(&str, u64)> = Vec::new();
    let found = inventory_observed(
        &Target::RootFs(RootFs::new(temp.path())),
        &Limits::default(),
        &Cancel::new(),
        &mut |_size| n_files.set(n_files.get() + 1),
        &mut |ecosystem| announced.push((ecosystem, n_files.get())),
    )
    .unwrap();
    let mut languages: Vec<&str> = found
        .packages
        .iter()
        .filter_map(|package| package.cataloger.language_ecosystem())
        .collect();
    languages.sort();
    languages.dedup();
    let mut names: Vec<&str> = announced.iter().map(|(ecosystem, _)| *ecosystem).collect();
    names.sort();
    assert_eq!(names, languages, "{announced:?}");
    assert_eq!(
        languages,
        [
            "Maven",
            "NuGet",
            "Packagist",
            "PyPI",
            "RubyGems",
            "crates.io",
            "npm"
        ]
    );
    // The first one came before the walk's last file.
    assert!(
        announced[0].1 < n_files.get(),
        "{announced:?} of {}",
        n_files.get()
    );
}

#[test]
fn image_layers_hide_deleted_packages_and_carry_layer_locations() {
    let temp = tempfile::tempdir().unwrap();
    let base = support::tar(&[
        file("etc/os-release", OS_RELEASE.as_bytes()),
        file("var/lib/dpkg/status", DPKG_STATUS.as_bytes()),
        file(
            "app/node_modules/lodash/package.json",
            br#"{"name": "lodash", "version": "4.17.15"}"#,
        ),
        file(
            "app/node_modules/left-pad/package.json",
            br#"{"name": "left-pad", "version": "1.0.0"}"#,
        ),
    ]);
    let upper = support::tar(&[
        file(
            "app/node_modules/lodash/package.json",
            br#"{"name": "lodash", "version": "4.17.21"}"#,
        ),
        file("app/node_modules/.wh.left-pad", b""),
    ]);
    let layout = temp.path().join("oci");
    support::oci_layout(
        &layout,
        &[(support::gzip(&base), base), (support::zstd(&upper), upper)],
    );
    let image = Image::open(&layout).unwrap();
    let upper_digest = image.layers()[1].digest.clone();
    let inventory = inventory(&Target::Image(image), &Limits::default()).unwrap();
    let npm: Vec<&Package> = inventory
        .packages
        .iter()
        .filter(|package| package.ecosystem == "npm")
        .collect();
    assert_eq!(npm.len(), 1, "{npm:?}");
    assert_eq!(npm[0].version, "4.17.21");
    assert_eq!(npm[0].location.layer_index, Some(1));
    assert_eq!(
        npm[0].location.layer_digest.as_deref(),
        Some(upper_digest.as_str())
    );
    assert_eq!(
        inventory
            .packages
            .iter()
            .filter(|package| package.ecosystem == "Debian:12")
            .count(),
        2
    );
}

#[test]
fn malformed_package_databases_are_warnings() {
    let temp = tempfile::tempdir().unwrap();
    write(temp.path(), "app/node_modules/x/package.json", b"{not json");
    write(
        temp.path(),
        "lib/x.dist-info/METADATA",
        b"garbage without fields",
    );
    write(temp.path(), "opt/broken.jar", b"PK\x03\x04 truncated");
    write(
        temp.path(),
        "var/lib/rpm/rpmdb.sqlite",
        b"SQLite format 3\0 but not really",
    );
    write(temp.path(), "srv/x.deps.json", b"[]");
    let inventory = inventory(
        &Target::RootFs(RootFs::new(temp.path())),
        &Limits::default(),
    )
    .unwrap();
    assert!(inventory.packages.is_empty());
    let mut locations: Vec<&str> = inventory
        .warnings
        .iter()
        .map(|warning| warning.location.as_str())
        .collect();
    locations.sort();
    assert_eq!(
        locations,
        [
            "/app/node_modules/x/package.json",
            "/lib/x.dist-info/METADATA",
            "/opt/broken.jar",
            "/srv/x.deps.json",
            "/var/lib/rpm/rpmdb.sqlite",
        ]
    );
}

/// Debian's runc, containerd and skopeo are Go binaries. Debian builds them in GOPATH mode,
/// so their build information names the Go release but no module versions: the Go standard
/// library is what they report (their own code is the Debian package's).
#[test]
fn debian_go_binaries_report_the_go_release() {
    let binaries = ["/usr/sbin/runc", "/usr/bin/containerd", "/usr/bin/skopeo"];
    let present = binaries.iter().all(|path| Path::new(path).exists());
    if !palisade_testdata::capability("runc, containerd and skopeo from Debian", present) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    for binary in binaries {
        let target = temp.path().join(binary.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(binary, &target).unwrap();
    }
    let inventory = inventory(
        &Target::RootFs(RootFs::new(temp.path())),
        &Limits::default(),
    )
    .unwrap();
    for binary in binaries {
        let found: Vec<&Package> = inventory
            .packages
            .iter()
            .filter(|package| package.location.path == binary)
            .collect();
        assert_eq!(found.len(), 1, "{binary}: {found:?}");
        let stdlib = found[0];
        assert_eq!(stdlib.name, "stdlib");
        assert_eq!(stdlib.ecosystem, "Go");
        assert_eq!(stdlib.cataloger, Cataloger::GoBinary);
        assert!(stdlib.version.starts_with("1.19."), "{stdlib:?}");
        assert_eq!(stdlib.purl, format!("pkg:golang/stdlib@{}", stdlib.version));
    }
}

/// A distroless root (Google's distroless images): no `status` file, one stanza file per
/// package in `var/lib/dpkg/status.d/` (no Status field) and its `.md5sums` list, whose
/// files are the package's: the Python package python3-six installs is not reported again
/// as a PyPI package, the one beside it is.
#[test]
fn distroless_status_d_packages_and_the_files_they_own() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    write(root, "etc/os-release", OS_RELEASE.as_bytes());
    write(
        root,
        "var/lib/dpkg/status.d/base-files",
        b"Package: base-files\nPriority: required\nArchitecture: amd64\n\
          Version: 12.4+deb12u5\nDescription: Debian base system miscellaneous files\n",
    );
    write(
        root,
        "var/lib/dpkg/status.d/python3-six",
        b"Package: python3-six\nArchitecture: all\nSource: six\nVersion: 1.16.0-4\n",
    );
    write(
        root,
        "var/lib/dpkg/status.d/python3-six.md5sums",
        b"0123456789abcdef0123456789abcdef  usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n",
    );
    write(
        root,
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n",
    );
    write(
        root,
        "usr/lib/python3/dist-packages/idna-3.3.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: idna\nVersion: 3.3\n",
    );
    let inventory = inventory(&Target::RootFs(RootFs::new(root)), &Limits::default()).unwrap();
    let mut found = summary(&inventory);
    found.sort();
    assert_eq!(
        found,
        [
            "Debian:12 base-files 12.4+deb12u5 pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
            "Debian:12 python3-six 1.16.0-4 pkg:deb/debian/python3-six@1.16.0-4?arch=all&distro=debian-12&upstream=six",
            "PyPI idna 3.3 pkg:pypi/idna@3.3",
        ]
    );
    let six = inventory
        .packages
        .iter()
        .find(|package| package.name == "python3-six")
        .unwrap();
    assert_eq!(six.location.path, "/var/lib/dpkg/status.d/python3-six");
    assert_eq!(six.source_name.as_deref(), Some("six"));
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
}

/// A Rust executable built with cargo-auditable carries its dependency tree as
/// zlib-compressed JSON in a `.dep-v0` section: written here with objcopy into a copy of a
/// real executable, as cargo-auditable's linking step writes it. Its crates.io crates are
/// reported at the executable's path; the root crate and path or git dependencies are not
/// on crates.io and are not.
#[test]
fn cargo_auditable_executables_report_their_crates() {
    let objcopy = std::process::Command::new("objcopy")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !palisade_testdata::capability("objcopy (binutils)", objcopy) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dependencies = br#"{"packages":[
        {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3,4],"root":true},
        {"name":"smallvec","version":"0.6.9","source":"crates.io"},
        {"name":"cc","version":"1.0.73","source":"crates.io","kind":"build"},
        {"name":"helper","version":"0.2.0","source":"local"},
        {"name":"forked","version":"1.0.0","source":"git"}]}"#;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(dependencies).unwrap();
    let section = temp.path().join("dep-v0");
    std::fs::write(&section, encoder.finish().unwrap()).unwrap();
    let executable = temp.path().join("root/usr/local/bin/app");
    std::fs::create_dir_all(executable.parent().unwrap()).unwrap();
    let added = std::process::Command::new("objcopy")
        .arg(format!("--add-section=.dep-v0={}", section.display()))
        .arg("/usr/bin/true")
        .arg(&executable)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let inventory = inventory(
        &Target::RootFs(RootFs::new(&temp.path().join("root"))),
        &Limits::default(),
    )
    .unwrap();
    let mut found = summary(&inventory);
    found.sort();
    assert_eq!(
        found,
        [
            "crates.io cc 1.0.73 pkg:cargo/cc@1.0.73",
            "crates.io smallvec 0.6.9 pkg:cargo/smallvec@0.6.9",
        ]
    );
    for package in &inventory.packages {
        assert_eq!(package.cataloger, Cataloger::CargoAuditable);
        assert_eq!(package.location.path, "/usr/local/bin/app");
    }
}
