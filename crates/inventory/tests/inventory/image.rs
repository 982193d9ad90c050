//! Image formats, compression and flattening, on crafted images.

use std::io::Read;

use palisade_inventory::{Cancel, Image, ImageFormat, Limits, NodeKind};

use crate::support::{self, dir, file, symlink};

/// Reads every visible file of an image into `(path, layer, content)`, sorted.
fn visible_files(image: &Image) -> Vec<(String, usize, String)> {
    let mut seen = Vec::new();
    let walk = image
        .for_each_file(&Limits::default(), &Cancel::new(), |visit| {
            let mut content = String::new();
            visit.read_to_string(&mut content)?;
            seen.push((visit.path.to_owned(), visit.layer_index, content));
            Ok(())
        })
        .unwrap();
    let mut visible: Vec<_> = seen
        .into_iter()
        .filter(|(path, layer, _)| walk.filesystem.is_visible(path, *layer))
        .collect();
    visible.sort();
    visible
}

fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let base = support::tar(&[
        dir("etc/"),
        file("etc/keep", b"base"),
        file("etc/gone", b"base"),
        file("etc/replaced", b"old"),
        file("opt/app/old.txt", b"old"),
        file("usr/lib/os-release", b"ID=test\n"),
        symlink("etc/os-release", "../usr/lib/os-release"),
    ]);
    let upper = support::tar(&[
        file("etc/.wh.gone", b""),
        file("etc/replaced", b"new"),
        file("opt/app/.wh..wh..opq", b""),
        file("opt/app/new.txt", b"new"),
    ]);
    (base, upper)
}

fn expected() -> Vec<(String, usize, String)> {
    vec![
        ("etc/keep".into(), 0, "base".into()),
        ("etc/replaced".into(), 1, "new".into()),
        ("opt/app/new.txt".into(), 1, "new".into()),
        ("usr/lib/os-release".into(), 0, "ID=test\n".into()),
    ]
}

#[test]
fn oci_layout_with_gzip_and_zstd_layers_flattens_whiteouts_and_opaque_dirs() {
    let temp = tempfile::tempdir().unwrap();
    let (base, upper) = two_layers();
    support::oci_layout(
        temp.path(),
        &[
            (support::gzip(&base), base.clone()),
            (support::zstd(&upper), upper.clone()),
        ],
    );
    let image = Image::open(temp.path()).unwrap();
    assert_eq!(image.format(), ImageFormat::OciLayout);
    assert_eq!(image.reference(), Some("crafted"));
    assert_eq!(image.layers().len(), 2);
    assert!(image.layers()[0].digest.starts_with("sha256:"));
    assert_ne!(image.layers()[0].digest, image.layers()[0].blob_digest);
    assert_eq!(visible_files(&image), expected());

    let walk = image
        .for_each_file(&Limits::default(), &Cancel::new(), |_| Ok(()))
        .unwrap();
    assert!(walk.warnings.is_empty(), "{:?}", walk.warnings);
    assert_eq!(
        walk.filesystem.resolve("etc/os-release").as_deref(),
        Some("usr/lib/os-release")
    );
    assert!(walk.filesystem.get("etc/gone").is_none());
    assert!(matches!(
        walk.filesystem.get("etc/keep").map(|node| &node.kind),
        Some(NodeKind::File { size: 4 })
    ));
}

#[test]
fn docker_archive_is_read_in_place_with_the_same_layer_digests() {
    let temp = tempfile::tempdir().unwrap();
    let (base, upper) = two_layers();
    let archive = temp.path().join("image.tar");
    support::docker_archive(&archive, &[base.clone(), upper.clone()]);
    let docker = Image::open(&archive).unwrap();
    assert_eq!(docker.format(), ImageFormat::DockerArchive);
    assert_eq!(docker.reference(), Some("crafted:latest"));
    assert_eq!(visible_files(&docker), expected());

    let layout = temp.path().join("oci");
    support::oci_layout(
        &layout,
        &[(support::gzip(&base), base), (upper.clone(), upper)],
    );
    let oci = Image::open(&layout).unwrap();
    let digests = |image: &Image| -> Vec<String> {
        image
            .layers()
            .iter()
            .map(|layer| layer.digest.clone())
            .collect()
    };
    assert_eq!(digests(&docker), digests(&oci));
    // Nothing was extracted next to the archive.
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 2);
}

#[test]
fn oci_archive_is_read_in_place() {
    let temp = tempfile::tempdir().unwrap();
    let (base, upper) = two_layers();
    let layout = temp.path().join("oci");
    support::oci_layout(
        &layout,
        &[(support::gzip(&base), base), (upper.clone(), upper)],
    );
    // Pack the layout into an archive the way `skopeo copy ... oci-archive:` does.
    let mut names = Vec::new();
    let mut pending = vec![layout.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                names.push(path);
            }
        }
    }
    let contents: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|path| {
            (
                path.strip_prefix(&layout).unwrap().display().to_string(),
                std::fs::read(path).unwrap(),
            )
        })
        .collect();
    let entries: Vec<_> = contents
        .iter()
        .map(|(name, bytes)| file(name, bytes))
        .collect();
    let archive = temp.path().join("image.oci.tar");
    std::fs::write(&archive, support::tar(&entries)).unwrap();
    let image = Image::open(&archive).unwrap();
    assert_eq!(image.format(), ImageFormat::OciArchive);
    assert_eq!(visible_files(&image), expected());
}

#[test]
fn not_an_image_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    let error = Image::open(temp.path()).unwrap_err();
    assert!(
        error.to_string().contains("is not a container image"),
        "{error}"
    );
    let junk = temp.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all").unwrap();
    let error = Image::open(&junk).unwrap_err();
    assert!(
        error.to_string().contains("not a container image"),
        "{error}"
    );
}

/// Named files of an image for checks of their content: the copy the flattened image
/// shows (an upper layer's, not one it deleted), nothing for a whiteout, and a warning for
/// a path through a symlink, which the walk does not follow.
#[test]
fn named_files_are_read_from_the_layer_the_image_shows() {
    let temp = tempfile::tempdir().unwrap();
    let (base, upper) = two_layers();
    support::oci_layout(
        temp.path(),
        &[
            (support::gzip(&base), base.clone()),
            (support::gzip(&upper), upper.clone()),
        ],
    );
    let target = palisade_inventory::Target::Image(Image::open(temp.path()).unwrap());
    let found = palisade_inventory::read_files(
        &target,
        &[
            "/etc/replaced",
            "/etc/keep",
            "/etc/gone",
            "/etc/os-release",
            "/etc/missing",
        ],
        &Limits::default(),
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(
        found
            .contents
            .iter()
            .map(|(path, content)| (path.as_str(), String::from_utf8_lossy(content).into_owned()))
            .collect::<Vec<_>>(),
        [
            ("/etc/keep", "base".to_owned()),
            ("/etc/replaced", "new".to_owned())
        ]
    );
    let warned: Vec<&str> = found
        .warnings
        .iter()
        .map(|warning| warning.location.as_str())
        .collect();
    assert_eq!(warned, ["/etc/os-release"]);
}
