//! Go executables: the build information the linker embeds (Go 1.18 and later store it
//! inline): the toolchain version and every module with its version.

use crate::cancel::Cancel;
use crate::catalog::Found;
use crate::catalog::elf::Elf;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Flag bit set when the version and module strings follow the header inline (Go ≥ 1.18).
const FLAG_INLINE_STRINGS: u8 = 0x2;

/// The Go standard library (named `stdlib` in the Go vulnerability database) and the
/// modules; `Ok(None)` when `bytes` is not a Go executable with inline build information.
/// Without a `.go.buildinfo` section the whole file is searched, which `cancel` stops
/// (`Err`).
pub(crate) fn parse_build_info(
    elf: &Elf<'_>,
    bytes: &[u8],
    cancel: &Cancel,
) -> Result<Option<Vec<Found>>, String> {
    let data = match elf.section(".go.buildinfo") {
        Some(section) => section,
        // Section headers can be stripped; the header is 16-byte aligned in the data.
        None => match cancel.find(bytes, MAGIC, |at| at % 16 == 0)? {
            Some(position) => &bytes[position..],
            None => return Ok(None),
        },
    };
    Ok(parse_header(data))
}

/// The packages of build information starting at its header.
fn parse_header(data: &[u8]) -> Option<Vec<Found>> {
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
    use super::{MAGIC, modules, parse_build_info, stdlib_version};
    use crate::cancel::Cancel;
    use crate::catalog::elf::Elf;

    /// A 64-bit little-endian ELF file of `size` bytes whose section headers were stripped
    /// (one empty string table), with Go 1.21.3 build information at `at` if given.
    fn stripped_elf(size: usize, build_info_at: Option<usize>) -> Vec<u8> {
        let mut bytes = vec![0u8; size];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x28..0x30].copy_from_slice(&64u64.to_le_bytes()); // section headers at 64
        bytes[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // of 64 bytes each
        bytes[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes()); // one
        bytes[64 + 4..64 + 8].copy_from_slice(&3u32.to_le_bytes()); // a string table
        let Some(at) = build_info_at else {
            return bytes;
        };
        let mut info = MAGIC.to_vec();
        info.extend_from_slice(&[8, 0x2]);
        info.resize(32, 0);
        info.push(8);
        info.extend_from_slice(b"go1.21.3");
        let modules = format!("{}path\tx\n{}", "s".repeat(16), "e".repeat(16));
        info.push(u8::try_from(modules.len()).unwrap());
        info.extend_from_slice(modules.as_bytes());
        bytes[at..at + info.len()].copy_from_slice(&info);
        bytes
    }

    #[test]
    fn the_search_of_a_stripped_binary_stops_once_cancelled() {
        // Build information past the first piece searched, as in large binaries.
        let bytes = stripped_elf(
            3 * Cancel::MAX_READ_BYTES,
            Some(2 * Cancel::MAX_READ_BYTES + 16),
        );
        let elf = Elf::parse(&bytes).unwrap();
        let found = parse_build_info(&elf, &bytes, &Cancel::new())
            .unwrap()
            .unwrap();
        assert_eq!(found[0].name, "stdlib");
        assert_eq!(found[0].version, "1.21.3");
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(
            parse_build_info(&elf, &bytes, &cancel).unwrap_err(),
            "cancelled"
        );
        // Not a Go binary: searched to the end, nothing found.
        let plain = stripped_elf(1 << 20, None);
        let elf = Elf::parse(&plain).unwrap();
        assert!(matches!(
            parse_build_info(&elf, &plain, &Cancel::new()),
            Ok(None)
        ));
    }

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
