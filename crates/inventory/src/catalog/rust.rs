//! Rust: `Cargo.lock` files and executables built with cargo-auditable (a zlib-compressed
//! JSON dependency list in the `.dep-v0` section).

use std::io::Read;

use serde_json::Value;

use crate::catalog::elf::Elf;
use crate::catalog::{Cataloger, Extracted, Found};

/// Decompressed size cap of a `.dep-v0` section: cargo-auditable's own limit is 8 MiB.
const MAX_DEP_INFO_BYTES: u64 = 8 << 20;

/// The crates.io packages of a lock file (`[[package]]` tables with a registry `source`);
/// workspace members and path or git dependencies are not on crates.io.
pub(crate) fn parse_cargo_lock(text: &str) -> Result<Extracted, String> {
    let mut packages = Vec::new();
    let mut current: Option<(Option<String>, Option<String>, bool)> = None;
    let mut finish = |current: Option<(Option<String>, Option<String>, bool)>| {
        if let Some((Some(name), Some(version), true)) = current {
            packages.push(Found {
                name,
                version,
                ..Found::default()
            });
        }
    };
    let mut saw_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            finish(current.take());
            if line == "[[package]]" {
                saw_package = true;
                current = Some((None, None, false));
            }
            continue;
        }
        let Some(fields) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim() {
            "name" => fields.0 = Some(value),
            "version" => fields.1 = Some(value),
            "source" => {
                fields.2 = value
                    .starts_with("registry+https://github.com/rust-lang/crates.io-index")
                    || value.starts_with("sparse+https://index.crates.io/")
            }
            _ => {}
        }
    }
    finish(current.take());
    if !saw_package && !text.trim().is_empty() {
        return Err("Cargo.lock without [[package]] tables".to_owned());
    }
    Ok(Extracted::packages(Cataloger::CargoLock, packages))
}

/// The crates.io packages compiled into an executable, if it carries a `.dep-v0` section.
pub(crate) fn parse_auditable(elf: &Elf<'_>) -> Option<Vec<Found>> {
    let section = elf.section(".dep-v0")?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section)
        .take(MAX_DEP_INFO_BYTES)
        .read_to_end(&mut json)
        .ok()?;
    let info: Value = serde_json::from_slice(&json).ok()?;
    let packages = info
        .get("packages")?
        .as_array()?
        .iter()
        .filter(|package| {
            package
                .get("source")
                .and_then(Value::as_str)
                .is_some_and(|source| source == "crates.io")
        })
        .filter_map(|package| {
            Some(Found {
                name: package.get("name")?.as_str()?.to_owned(),
                version: package.get("version")?.as_str()?.to_owned(),
                ..Found::default()
            })
        })
        .collect();
    Some(packages)
}

#[cfg(test)]
mod tests {
    use super::parse_cargo_lock;

    #[test]
    fn lock_file() {
        let lock = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\
            dependencies = [\n \"smallvec\",\n]\n\n[[package]]\nname = \"smallvec\"\n\
            version = \"0.6.9\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
            checksum = \"abc\"\n\n[[package]]\nname = \"gitdep\"\nversion = \"1.0.0\"\n\
            source = \"git+https://example.invalid/x\"\n\n[metadata]\n";
        let extracted = parse_cargo_lock(lock).unwrap();
        let names: Vec<_> = extracted
            .packages
            .iter()
            .map(|(_, p)| format!("{}@{}", p.name, p.version))
            .collect();
        assert_eq!(names, ["smallvec@0.6.9"]);
    }
}
