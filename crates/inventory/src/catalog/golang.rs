//! Go executables: the build information the linker embeds (Go 1.18 and later store it
//! inline): the toolchain version and every module with its version.

use crate::catalog::Found;
use crate::catalog::elf::Elf;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Flag bit set when the version and module strings follow the header inline (Go ≥ 1.18).
const FLAG_INLINE_STRINGS: u8 = 0x2;

/// The Go standard library (named `stdlib` in the Go vulnerability database) and the
/// modules; `None` when `bytes` is not a Go executable with inline build information.
pub(crate) fn parse_build_info(elf: &Elf<'_>, bytes: &[u8]) -> Option<Vec<Found>> {
    let data = match elf.section(".go.buildinfo") {
        Some(section) => section,
        // Section headers can be stripped; the header is 16-byte aligned in the data.
        None => {
            let position = memchr::memmem::find_iter(bytes, MAGIC).find(|at| at % 16 == 0)?;
            &bytes[position..]
        }
    };
    let header = data.get(..32)?;
    if !header.starts_with(MAGIC) || header[15] & FLAG_INLINE_STRINGS == 0 {
        return None;
    }
    let (go_version, rest) = varint_bytes(&data[32..])?;
    let go_version = std::str::from_utf8(go_version).ok()?;
    let (module_info, _) = varint_bytes(rest)?;
    // The module information is framed by two 16-byte binary sentinels.
    let module_info = match module_info.len() {
        length if length >= 33 => String::from_utf8_lossy(&module_info[16..length - 16]),
        _ => String::from_utf8_lossy(module_info),
    };
    let mut packages = Vec::new();
    if let Some(version) = stdlib_version(go_version) {
        packages.push(Found {
            name: "stdlib".to_owned(),
            version,
            ..Found::default()
        });
    }
    packages.extend(modules(&module_info));
    Some(packages)
}

/// A uvarint length followed by that many bytes.
fn varint_bytes(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length: u64 = 0;
    let mut shift = 0;
    let mut consumed: usize = 0;
    for &byte in bytes.iter().take(10) {
        consumed += 1;
        length |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let length = usize::try_from(length).ok()?;
            let text = bytes.get(consumed..consumed.checked_add(length)?)?;
            return Some((text, &bytes[consumed + length..]));
        }
        shift += 7;
    }
    None
}

/// `go1.21.3` → `1.21.3`; `go1.21` → `1.21.0`; `go1.21rc2` → `1.21.0-rc.2`, the semantic
/// versions the Go vulnerability database uses. Experiment suffixes (`go1.21.3 X:...`) are
/// dropped; `devel` builds have no version.
fn stdlib_version(go_version: &str) -> Option<String> {
    let version = go_version.split_whitespace().next()?.strip_prefix("go")?;
    let (release, prerelease) = match version.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => (&version[..at], Some(&version[at..])),
        None => (version, None),
    };
    let mut parts: Vec<&str> = release.split('.').collect();
    if parts.is_empty() || parts.iter().any(|part| part.parse::<u32>().is_err()) {
        return None;
    }
    while parts.len() < 3 {
        parts.push("0");
    }
    let mut semver = parts.join(".");
    if let Some(prerelease) = prerelease {
        let digits = prerelease.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let label = &prerelease[..prerelease.len() - digits.len()];
        semver.push_str(&format!("-{label}.{digits}"));
    }
    Some(semver)
}

/// The main module (when it has a real version) and every dependency, with `=>`
/// replacements applied.
fn modules(module_info: &str) -> Vec<Found> {
    let mut packages: Vec<Found> = Vec::new();
    for line in module_info.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] if *version != "(devel)" && !version.is_empty() => {
                packages.push(Found {
                    name: (*path).to_owned(),
                    version: (*version).to_owned(),
                    ..Found::default()
                });
            }
            ["=>", path, version, ..] => {
                if let Some(last) = packages.last_mut() {
                    // A replacement by a local directory has no version: the original
                    // version no longer describes the code, so it is dropped.
                    if version.is_empty() {
                        packages.pop();
                    } else {
                        last.name = (*path).to_owned();
                        last.version = (*version).to_owned();
                    }
                }
            }
            _ => {}
        }
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::{modules, stdlib_version};

    #[test]
    fn versions_and_modules() {
        assert_eq!(stdlib_version("go1.19.8").as_deref(), Some("1.19.8"));
        assert_eq!(stdlib_version("go1.21").as_deref(), Some("1.21.0"));
        assert_eq!(stdlib_version("go1.21rc2").as_deref(), Some("1.21.0-rc.2"));
        assert_eq!(stdlib_version("devel +abc"), None);
        let found = modules(
            "path\tgithub.com/x/app\nmod\tgithub.com/x/app\t(devel)\t\n\
             dep\tgolang.org/x/net\tv0.7.0\th1:abc\n\
             dep\tgithub.com/old/m\tv1.0.0\th1:x\n=>\tgithub.com/new/m\tv1.2.0\th1:y\n\
             dep\tgithub.com/local/m\tv1.0.0\n=>\t../local\t\t\n",
        );
        let names: Vec<_> = found
            .iter()
            .map(|f| format!("{}@{}", f.name, f.version))
            .collect();
        assert_eq!(
            names,
            ["golang.org/x/net@v0.7.0", "github.com/new/m@v1.2.0"]
        );
    }
}
