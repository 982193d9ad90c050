//! apk: `lib/apk/db/installed` (packages and the files they own).
//!
//! The origin (`o:`) is the source package; every package an APKBUILD builds shares its
//! `pkgver-pkgrel`, so the origin's version is the package's and no source version is kept.

use crate::catalog::{Cataloger, Extracted, Found};

/// Packages and owned files of an apk database: stanzas of `X:value` lines, `F:` naming a
/// directory and the following `R:` lines its files.
pub(crate) fn parse_installed(text: &str) -> Extracted {
    let mut packages = Vec::new();
    let mut owned_files = Vec::new();
    let mut current = Found::default();
    let mut directory = String::new();
    let finish = |current: &mut Found, packages: &mut Vec<Found>| {
        let found = std::mem::take(current);
        if !found.name.is_empty() && !found.version.is_empty() {
            packages.push(found);
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            finish(&mut current, &mut packages);
            directory.clear();
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "P" => current.name = value.to_owned(),
            "V" => current.version = value.to_owned(),
            "A" => current.arch = Some(value.to_owned()),
            "o" => current.source_name = Some(value.to_owned()),
            "F" => directory = value.to_owned(),
            "R" if directory.is_empty() => owned_files.push(value.to_owned()),
            "R" => owned_files.push(format!("{directory}/{value}")),
            _ => {}
        }
    }
    finish(&mut current, &mut packages);
    for found in &mut packages {
        if found.source_name.as_deref() == Some(found.name.as_str()) {
            found.source_name = None;
        }
    }
    Extracted {
        owned_files,
        ..Extracted::packages(Cataloger::Apk, packages)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_installed;

    #[test]
    fn installed() {
        let extracted = parse_installed(
            "C:Q1x=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
             P:libcrypto3\nV:3.1.4-r5\no:openssl\nF:usr/lib/python3.11/site-packages/x.dist-info\nR:METADATA\n",
        );
        assert_eq!(extracted.packages.len(), 2);
        assert_eq!(extracted.packages[0].1.source_name, None);
        assert_eq!(
            extracted.packages[1].1.source_name.as_deref(),
            Some("openssl")
        );
        assert_eq!(
            extracted.owned_files,
            [
                "lib/ld-musl-x86_64.so.1",
                "usr/lib/python3.11/site-packages/x.dist-info/METADATA"
            ]
        );
    }
}
