//! Hostile layers: traversal, links out of the root, devices, truncation, bombs, floods.

use std::io::Read;

use palisade_inventory::{Cancel, ErrorKind, Image, Limits, RootFs};

use crate::support::{self, device, file, hardlink, symlink};

fn image_of(temp: &std::path::Path, layer: Vec<u8>) -> Image {
    let archive = temp.join("image.tar");
    support::docker_archive(&archive, &[layer]);
    Image::open(&archive).unwrap()
}

#[test]
fn traversal_links_out_of_root_and_devices_are_skipped_with_warnings() {
    let temp = tempfile::tempdir().unwrap();
    let layer = support::tar(&[
        file("/etc/absolute", b"x"),
        file("../../escape", b"x"),
        file("a/../../escape2", b"x"),
        hardlink("etc/passwd-link", "../../../etc/passwd"),
        symlink("etc/shadow-link", "../../../../etc/shadow"),
        device("dev/sda"),
        file("etc/ok", b"fine"),
    ]);
    let image = image_of(temp.path(), layer);
    let mut visited = Vec::new();
    let walk = image
        .for_each_file(&Limits::default(), &Cancel::new(), |visit| {
            visited.push(visit.path.to_owned());
            Ok(())
        })
        .unwrap();
    assert_eq!(visited, ["etc/ok"]);
    let reasons: Vec<&str> = walk.warnings.iter().map(|w| w.reason.as_str()).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].contains("absolute"));
    assert!(reasons[1].contains(".."));
    assert!(reasons[3].contains("hard link"));
    assert!(reasons[4].contains("device"));
    // The symlink is recorded, and resolves inside the root, never above it.
    assert_eq!(walk.filesystem.resolve("etc/shadow-link"), None);
    // Nothing appeared outside the temporary directory.
    assert!(!temp.path().join("../escape").exists());
}

#[test]
fn truncated_layer_is_an_error_naming_the_layer() {
    let temp = tempfile::tempdir().unwrap();
    let big = vec![b'a'; 100_000];
    let layer = support::tar(&[file("big", &big), file("after", b"x")]);
    let gz = support::gzip(&layer);
    let truncated = gz[..gz.len() / 2].to_vec();
    let layout = temp.path().join("oci");
    support::oci_layout(&layout, &[(truncated, layer)]);
    let image = Image::open(&layout).unwrap();
    let error = image
        .for_each_file(&Limits::default(), &Cancel::new(), |visit| {
            std::io::copy(visit, &mut std::io::sink())?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Layer { layer_index: 0, .. } | ErrorKind::Visit { .. }
        ),
        "{error:?}"
    );
    // The callback not reading the content must not hide the truncation either.
    let error = image
        .for_each_file(&Limits::default(), &Cancel::new(), |_| Ok(()))
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::Layer { layer_index: 0, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("layer 0"), "{error}");
}

#[test]
fn decompression_bomb_stops_at_the_ratio_limit() {
    let temp = tempfile::tempdir().unwrap();
    // 8 MiB of zeros gzip to about 8 KiB: a ratio near 1000.
    let zeros = vec![0u8; 8 << 20];
    let layer = support::tar(&[file("zeros", &zeros)]);
    let layout = temp.path().join("oci");
    support::oci_layout(&layout, &[(support::gzip(&layer), layer)]);
    let image = Image::open(&layout).unwrap();
    let limits = Limits {
        ratio_grace_bytes: 1 << 20,
        ..Limits::default()
    };
    let error = image
        .for_each_file(&limits, &Cancel::new(), |_| Ok(()))
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::LimitExceeded { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("decompression bomb"), "{error}");
    let limits = Limits {
        max_layer_bytes: 1 << 20,
        ..Limits::default()
    };
    let error = image
        .for_each_file(&limits, &Cancel::new(), |_| Ok(()))
        .unwrap_err();
    assert!(error.to_string().contains("max_layer_bytes"), "{error}");
}

#[test]
fn entry_floods_stop_at_max_entries() {
    let temp = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let entries: Vec<_> = names.iter().map(|name| file(name, b"")).collect();
    let image = image_of(temp.path(), support::tar(&entries));
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let error = image
        .for_each_file(&limits, &Cancel::new(), |_| Ok(()))
        .unwrap_err();
    assert!(error.to_string().contains("max_entries"), "{error}");
}

#[test]
fn malformed_documents_are_clear_errors() {
    let temp = tempfile::tempdir().unwrap();
    let archive = temp.path().join("image.tar");
    std::fs::write(
        &archive,
        support::tar(&[file("manifest.json", b"[{\"Config\": 7}]")]),
    )
    .unwrap();
    let error = Image::open(&archive).unwrap_err();
    assert!(error.to_string().contains("manifest.json"), "{error}");

    let archive = temp.path().join("escape.tar");
    std::fs::write(
        &archive,
        support::tar(&[file(
            "manifest.json",
            br#"[{"Config": "../../etc/passwd", "Layers": []}]"#,
        )]),
    )
    .unwrap();
    let error = Image::open(&archive).unwrap_err();
    assert!(error.to_string().contains(".."), "{error}");
}

#[test]
fn root_filesystem_files_are_opened_inside_the_root() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(temp.path().join("secret"), "outside").unwrap();
    std::fs::write(root.join("etc/inside"), "inside").unwrap();
    std::os::unix::fs::symlink("../../secret", root.join("etc/link")).unwrap();
    let mut read = Vec::new();
    let walk = RootFs::new(&root)
        .for_each_file(&Limits::default(), &Cancel::new(), |visit| {
            let mut text = String::new();
            visit.read_to_string(&mut text)?;
            read.push(text);
            Ok(())
        })
        .unwrap();
    assert_eq!(read, ["inside"]);
    assert_eq!(walk.filesystem.resolve("etc/link"), None);
}
