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
        // `Source: name (version)` when the source version differs from the binary's.
        let source_name = field(&stanza, "Source")
            .and_then(|source| source.split_whitespace().next())
            .filter(|source| *source != name)
            .map(str::to_owned);
        packages.push(Found {
            name: name.to_owned(),
            version: version.to_owned(),
            source_name,
            arch: field(&stanza, "Architecture").map(str::to_owned),
            epoch: None,
        });
    }
    Extracted::packages(Cataloger::Dpkg, packages)
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

    #[test]
    fn status_and_lists() {
        let extracted = parse_status(
            "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
             Source: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\nDescription: x\n \
             more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
             Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n",
        );
        let names: Vec<_> = extracted
            .packages
            .iter()
            .map(|(_, p)| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.source_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("libssl3", "3.0.11-1~deb12u2", Some("openssl")),
                ("zlib1g", "1:1.2.13.dfsg-1", Some("zlib"))
            ]
        );
        let list = parse_file_list("/.\n/usr/lib/x\n");
        assert_eq!(list.owned_files, ["usr/lib/x"]);
        let md5 = parse_file_list("d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x\n");
        assert_eq!(md5.owned_files, ["usr/share/doc/x"]);
    }
}
