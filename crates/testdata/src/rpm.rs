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
        // (tag, type, data): the epoch (int32) first, so that it is aligned; strings after.
        let mut entries: Vec<(u32, u32, Vec<u8>)> = Vec::new();
        if let Some(epoch) = epoch {
            entries.push((1003, 4, epoch.to_be_bytes().to_vec()));
        }
        for (tag, text) in [
            (1000, name.to_string()),
            (1001, version.to_string()),
            (1002, release.to_string()),
            (1022, "x86_64".to_owned()),
            (1044, format!("{source}-{version}-{release}.src.rpm")),
        ] {
            entries.push((tag, 6, format!("{text}\0").into_bytes()));
        }
        if let Some(label) = label {
            entries.push((5096, 6, format!("{label}\0").into_bytes()));
        }
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, bytes) in &entries {
            for field in [*tag, *kind, data.len() as u32, 1] {
                index.extend_from_slice(&field.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut blob = (entries.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        connection
            .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
            .unwrap();
    }
}
