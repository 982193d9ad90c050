//! A real image: a busybox root filesystem with a dpkg status file and a Python package,
//! imported with `podman import` and exported with `skopeo copy` as an OCI layout, an OCI
//! archive and a docker archive. All three must give the same inventory.

use std::path::Path;
use std::process::Command;

use palisade_inventory::{Image, ImageFormat, Limits, Target, inventory};

fn tool_works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Removes the podman image however the test ends.
struct PodmanImage(String);

impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

fn busybox_rootfs(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let write = |path: &str, content: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    };
    write(
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    write(
        "var/lib/dpkg/status",
        "Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\n\
         Version: 1:1.35.0-4+b3\nSource: busybox\n",
    );
    write(
        "usr/lib/python3/site-packages/urllib3-1.24.1.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.24.1\n",
    );
}

#[test]
fn podman_image_exported_by_skopeo_in_three_formats() {
    let is_root = std::fs::metadata("/proc/self")
        .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata) == 0)
        .unwrap_or(false);
    let available = is_root
        && tool_works("podman")
        && tool_works("skopeo")
        && Path::new("/bin/busybox").exists();
    if !palisade_testdata::capability("root, podman, skopeo and busybox-static", available) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("rootfs");
    busybox_rootfs(&root);
    let tarball = temp.path().join("rootfs.tar");
    run(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    let name = format!(
        "localhost/palisade-inventory-test-{}:latest",
        std::process::id()
    );
    run(
        "podman",
        &["import", "--quiet", tarball.to_str().unwrap(), &name],
    );
    let _cleanup = PodmanImage(name.clone());
    let source = format!("containers-storage:{name}");
    let layout = temp.path().join("oci");
    let oci_archive = temp.path().join("image.oci.tar");
    let docker_archive = temp.path().join("image.docker.tar");
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &source,
            &format!("oci:{}", layout.display()),
        ],
    );
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &source,
            &format!("oci-archive:{}", oci_archive.display()),
        ],
    );
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &source,
            &format!("docker-archive:{}:{name}", docker_archive.display()),
        ],
    );

    let mut inventories = Vec::new();
    for (path, format) in [
        (&layout, ImageFormat::OciLayout),
        (&oci_archive, ImageFormat::OciArchive),
        (&docker_archive, ImageFormat::DockerArchive),
    ] {
        let image = Image::open(path).unwrap();
        assert_eq!(image.format(), format);
        assert_eq!(image.layers().len(), 1);
        let inventory = inventory(&Target::Image(image), &Limits::default()).unwrap();
        assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
        let summary: Vec<String> = inventory
            .packages
            .iter()
            .map(|package| {
                format!(
                    "{} {} {} {:?} {:?}",
                    package.purl,
                    package.ecosystem,
                    package.location.path,
                    package.location.layer_index,
                    package.location.layer_digest
                )
            })
            .collect();
        inventories.push(summary);
    }
    assert_eq!(inventories[0].len(), 2, "{:?}", inventories[0]);
    assert!(inventories[0][0].starts_with(
        "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=amd64&distro=debian-12&upstream=busybox Debian:12 /var/lib/dpkg/status Some(0) Some(\"sha256:"
    ), "{:?}", inventories[0]);
    assert!(inventories[0][1].starts_with("pkg:pypi/urllib3@1.24.1 PyPI /usr/lib/python3/site-packages/urllib3-1.24.1.dist-info/METADATA"));
    assert_eq!(inventories[0], inventories[1]);
    assert_eq!(inventories[0], inventories[2]);
}
