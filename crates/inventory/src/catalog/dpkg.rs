//! dpkg: `var/lib/dpkg/status`, distroless `status.d/*` stanzas, and the file lists
//! (`info/*.list`, `status.d/*.md5sums`).

use crate::catalog::fields::{field, stanzas};
use crate::catalog::{Cataloger, Extracted, Found};

/// Installed packages of a status file (or one distroless stanza file).
pub(crate) fn parse_status(text: &str) -> Extracted {
    let mut packages = Vec::new();
    for stanza in stanzas(text, false) {
        let (Some(name), Some(version)) = (field(&stanza, "Package"), field(&stanza, "Version"))
        else {
            continue;
        };
        // Removed packages keep a stanza with `deinstall ok config-files`; distroless
        // stanzas have no Status field at all.
        if field(&stanza, "Status").is_some_and(|status| !status.ends_with(" installed")) {
            continue;
        }
        // `Source: name (version)`: the version is given only when it differs from the
        // binary's (binNMUs, epochs added to binaries, binaries with their own version).
        let (source_name, source_version) = field(&stanza, "Source")
            .map_or((None, None), |source| parse_source(source, name, version));
        packages.push(Found {
            name: name.to_owned(),
            version: version.to_owned(),
            source_name,
            source_version,
            arch: field(&stanza, "Architecture").map(str::to_owned),
            epoch: None,
            modularity_label: None,
        });
    }
    Extracted::packages(Cataloger::Dpkg, packages)
}

/// The source name and version of a `Source: name [(version)]` field, each `None` when it
/// equals the binary package's.
fn parse_source(source: &str, name: &str, version: &str) -> (Option<String>, Option<String>) {
    let (source_name, source_version) = match source.split_once('(') {
        Some((source_name, rest)) => (
            source_name.trim(),
            Some(rest.trim_end().trim_end_matches(')').trim()),
        ),
        None => (source.trim(), None),
    };
    (
        Some(source_name)
            .filter(|source_name| !source_name.is_empty() && *source_name != name)
            .map(str::to_owned),
        source_version
            .filter(|source_version| !source_version.is_empty() && *source_version != version)
            .map(str::to_owned),
    )
}

/// The files listed in `info/<package>.list` (absolute paths) or `status.d/<p>.md5sums`
/// (`<md5>  <relative path>`).
pub(crate) fn parse_file_list(text: &str) -> Extracted {
    let owned_files = text
        .lines()
        .filter_map(|line| {
            let line = line.trim_end();
            if line.starts_with('/') {
                Some(line)
            } else {
                line.split_once("  ").map(|(_, path)| path)
            }
        })
        .map(|path| {
            path.trim_start_matches("./")
                .trim_start_matches('/')
                .to_owned()
        })
        .filter(|path| !path.is_empty() && path != ".")
        .collect();
    Extracted {
        owned_files,
        ..Extracted::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_file_list, parse_status};

    /// Stanzas as this machine's (Debian 12) `/var/lib/dpkg/status` has them: a binNMU
    /// (`bash`), a binary with an epoch its source lacks (`bsdutils`), a binary with its own
    /// version scheme (`bpftool` from `linux`), a signed kernel image, a source named without
    /// a version, a binary named like its source, and a removed package.
    const STATUS: &str = "\
Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b8
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5+deb12u3)
Version: 1:2.38.1-5+deb12u3

Package: bpftool
Status: install ok installed
Architecture: amd64
Source: linux (6.1.192-3)
Version: 7.1.0+6.1.192-3

Package: linux-image-6.1.0-18-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.76+1)
Version: 6.1.76-1

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1

Package: bc
Status: install ok installed
Version: 1.07.1-3

Package: gone
Status: deinstall ok config-files
Source: gone-src (1)
Version: 1
";

    #[test]
    fn status_with_source_names_and_versions() {
        let extracted = parse_status(STATUS);
        let found: Vec<_> = extracted
            .packages
            .iter()
            .map(|(_, p)| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.source_name.as_deref(),
                    p.source_version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("bash", "5.2.15-2+b8", None, Some("5.2.15-2")),
                (
                    "bsdutils",
                    "1:2.38.1-5+deb12u3",
                    Some("util-linux"),
                    Some("2.38.1-5+deb12u3")
                ),
                (
                    "bpftool",
                    "7.1.0+6.1.192-3",
                    Some("linux"),
                    Some("6.1.192-3")
                ),
                (
                    "linux-image-6.1.0-18-amd64",
                    "6.1.76-1",
                    Some("linux-signed-amd64"),
                    Some("6.1.76+1")
                ),
                ("libssl3", "3.0.11-1~deb12u2", Some("openssl"), None),
                ("zlib1g", "1:1.2.13.dfsg-1", Some("zlib"), None),
                ("bc", "1.07.1-3", None, None),
            ]
        );
    }

    #[test]
    fn file_lists() {
        let list = parse_file_list("/.\n/usr/lib/x\n");
        assert_eq!(list.owned_files, ["usr/lib/x"]);
        let md5 = parse_file_list("d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x\n");
        assert_eq!(md5.owned_files, ["usr/share/doc/x"]);
    }
}
