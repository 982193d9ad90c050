//! Rpm root file systems for tests of inventories and scans: an `etc/os-release` and an
//! sqlite rpm database (`var/lib/rpm/rpmdb.sqlite`, the format of rpm 4.16 and later) whose
//! header blobs carry a package's name, epoch, version, release, architecture, source rpm
//! and modularity label.

use std::path::Path;

/// An rpm package's name, epoch, version and release.
pub type Nevr<'a> = (&'a str, Option<u32>, &'a str, &'a str);

/// A root file system of an rpm distribution: its `etc/os-release`, and an sqlite rpm
/// database (`var/lib/rpm/rpmdb.sqlite`) holding `(name, epoch, version, release)` packages,
/// each built from the source rpm of its name's first word.
pub fn rpm_root(root: &Path, os_release: &str, packages: &[Nevr<'_>]) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), os_release).unwrap();
    let unlabelled: Vec<_> = packages.iter().map(|package| (*package, None)).collect();
    modular_rpmdb(&root.join("var/lib/rpm/rpmdb.sqlite"), &unlabelled);
}

/// The rpm database of [`rpm_root`], whose packages may carry a modularity label
/// (`RPMTAG_MODULARITYLABEL`).
pub fn modular_rpmdb(path: &Path, packages: &[(Nevr<'_>, Option<&str>)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
        )
        .unwrap();
    for ((name, epoch, version, release), label) in packages {
        let source = name.split('-').next().unwrap();
        // (tag, type, data, count).
        let mut entries: Vec<(u32, u32, Vec<u8>, u32)> = Vec::new();
        if let Some(epoch) = epoch {
            entries.push((1003, 4, epoch.to_be_bytes().to_vec(), 1));
        }
        for (tag, text) in [
            (1000, name.to_string()),
            (1001, version.to_string()),
            (1002, release.to_string()),
            (1022, "x86_64".to_owned()),
            (1044, format!("{source}-{version}-{release}.src.rpm")),
        ] {
            entries.push((tag, 6, format!("{text}\0").into_bytes(), 1));
        }
        if let Some(label) = label {
            entries.push((5096, 6, format!("{label}\0").into_bytes(), 1));
        }
        let blob = header_blob(&entries);
        connection
            .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
            .unwrap();
    }
}

/// An rpm header blob (the rpmdb's `Packages` value) of `(tag, type, data, count)` entries:
/// the entry count, the data size, the index and the data, integer data aligned to its size
/// as rpm aligns it.
pub fn header_blob(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, kind, bytes, count) in entries {
        // rpm aligns integer data to its size (int16 2, int32 4, int64 8).
        let alignment = match kind {
            3 => 2,
            4 => 4,
            5 => 8,
            _ => 1,
        };
        data.resize(data.len().next_multiple_of(alignment), 0);
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&kind.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&count.to_be_bytes());
        data.extend_from_slice(bytes);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&data);
    blob
}
