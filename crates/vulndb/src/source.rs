//! Distribution source packages: the names and versions an advisory is compared with, and
//! the binary version that a fixed source version gives.
//!
//! Debian's security tracker, and OSV's `Debian:*` and `Ubuntu:*` records, name the source
//! package and give the source package's versions. A binary package's version can differ
//! from its source's: binNMUs (`5.2.15-2+b8` from `5.2.15-2`), an epoch only the binary
//! carries (`bsdutils 1:2.38.1-5+deb12u3` from `util-linux 2.38.1-5+deb12u3`), and binaries
//! with a version of their own (`bpftool 7.1.0+6.1.192-3` from `linux 6.1.192-3`). So dpkg
//! packages are compared by the source version, as Trivy and Grype do.
//!
//! Signed kernels are built from a source of their own (`linux-signed-amd64 6.1.76+1`,
//! Ubuntu's `linux-signed-hwe-5.15`) that the advisories never name: they list the kernel's
//! source (`linux`, `linux-hwe-5.15`), so a signed source is looked up as the kernel it
//! signs (see [`signed_kernel_source`]). Ubuntu's `linux-meta*` sources are not mapped: their
//! versions (`5.15.0.91.88`) end in the meta package's own upload number, not the kernel's,
//! so no kernel version can be derived from them, and the kernel image they depend on is
//! matched already.
//!
//! Alpine's secdb is keyed by origin, and every package of an origin shares its version, so
//! apk packages are compared by their own version. rpm advisories (OSV's Red Hat, AlmaLinux,
//! Rocky Linux, SUSE and openSUSE records) list binary rpm names with binary versions, while
//! Red Hat's CVE data names source rpms; an rpm package is looked up by both, each compared
//! with its own version. openEuler's records name the source rpm with versions as its file
//! name gives them, without an epoch, so openEuler packages are compared without theirs.

use std::borrow::Cow;

use palisade_version::Scheme;

use crate::ecosystem::scheme_of;
use crate::index::Package;

/// One name a distribution's advisories may key a package by, and the version they are
/// compared with under that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lookup<'a> {
    /// The package name the advisories use.
    pub(crate) name: Cow<'a, str>,
    /// The installed version in the advisories' terms.
    pub(crate) version: Cow<'a, str>,
}

/// The names and versions `package` is looked up by in `ecosystem` (normalised), in order
/// of preference.
pub(crate) fn lookups<'a>(ecosystem: &str, package: &'a Package) -> Vec<Lookup<'a>> {
    let own = Lookup {
        name: Cow::Borrowed(package.name.as_str()),
        version: Cow::Borrowed(package.version.as_str()),
    };
    let source_name = package.source_name.as_deref();
    match scheme_of(ecosystem) {
        Some(Scheme::Dpkg) => {
            let name = source_name.unwrap_or(&package.name);
            let version = package
                .source_version
                .as_deref()
                .unwrap_or(&package.version);
            let base = ecosystem.split(':').next().unwrap_or_default();
            vec![match signed_kernel_source(base, name, version) {
                Some((name, version)) => Lookup {
                    name: Cow::Owned(name),
                    version: Cow::Owned(version),
                },
                None => Lookup {
                    name: Cow::Borrowed(name),
                    version: Cow::Borrowed(version),
                },
            }]
        }
        Some(Scheme::Apk) => vec![Lookup {
            name: Cow::Borrowed(source_name.unwrap_or(&package.name)),
            version: own.version,
        }],
        Some(Scheme::Rpm) => {
            let mut lookups = vec![own];
            if let Some(source) = source_name.filter(|source| *source != package.name) {
                lookups.push(Lookup {
                    name: Cow::Borrowed(source),
                    version: Cow::Borrowed(
                        package
                            .source_version
                            .as_deref()
                            .unwrap_or(&package.version),
                    ),
                });
            }
            // openEuler's advisories give versions as its source rpm file names do, without
            // an epoch (osv-scanner asks osv.dev for them without one too): an installed
            // `1:1.1.1m-30.oe2203sp3` is compared as `1.1.1m-30.oe2203sp3`.
            if ecosystem.split(':').next() == Some("openEuler") {
                for lookup in &mut lookups {
                    if let Some((_, version)) = lookup.version.split_once(':') {
                        lookup.version = Cow::Owned(version.to_owned());
                    }
                }
            }
            lookups
        }
        _ => vec![own],
    }
}

/// The architectures Debian signs kernels for, each with a `linux-signed-<arch>` source.
const DEBIAN_SIGNED_ARCHITECTURES: &[&str] = &["-amd64", "-arm64", "-i386"];

/// The kernel source and version a signed kernel source stands for, or `None` when `source`
/// is not one.
///
/// - Debian: `linux-signed-amd64 6.1.76+1` → `linux 6.1.76-1`, `linux-signed-5.10-arm64
///   5.10.209+2` → `linux-5.10 5.10.209-2`. The signed source's version is the kernel's
///   with its first `-` made a `+` (the kernel's upstream version has neither), so the
///   first `+` turns back into `-` (`6.1.69+1~bpo11+1` → `6.1.69-1~bpo11+1`).
/// - Ubuntu: `linux-signed 5.15.0-91.101` → `linux`, `linux-signed-hwe-5.15` →
///   `linux-hwe-5.15`, with the same version.
fn signed_kernel_source(base: &str, source: &str, version: &str) -> Option<(String, String)> {
    let flavour = source.strip_prefix("linux-signed")?;
    if !(flavour.is_empty() || flavour.starts_with('-')) {
        return None;
    }
    match base {
        "Debian" => {
            let flavour = DEBIAN_SIGNED_ARCHITECTURES
                .iter()
                .find_map(|architecture| flavour.strip_suffix(architecture))?;
            let version = match version.split_once('+') {
                Some((upstream, revision)) => format!("{upstream}-{revision}"),
                None => version.to_owned(),
            };
            Some((format!("linux{flavour}"), version))
        }
        "Ubuntu" => Some((format!("linux{flavour}"), version.to_owned())),
        _ => None,
    }
}

/// The binary package's version once built from the fixed source version `fixed`, derived
/// from how the installed binary version relates to the installed source version; `None`
/// when the relation is not one of those below.
///
/// - the same version: `fixed`;
/// - a binNMU (`+bN` appended): `fixed`, since a new source upload restarts binNMUs;
/// - an epoch only the binary carries: that epoch before `fixed`;
/// - a prefix of the binary's own (`7.1.0+` in `7.1.0+6.1.192-3`): that prefix before
///   `fixed`;
/// - the same digits and letters with other separators (`6.1.76-1` from `6.1.76+1`):
///   `fixed` with the binary's separators.
pub(crate) fn binary_fixed_version(binary: &str, source: &str, fixed: &str) -> Option<String> {
    if binary == source {
        return Some(fixed.to_owned());
    }
    if let Some(rebuilt) = strip_binnmu(binary) {
        return binary_fixed_version(rebuilt, source, fixed);
    }
    if !source.contains(':')
        && !fixed.contains(':')
        && let Some((epoch, rest)) = binary.split_once(':')
    {
        return binary_fixed_version(rest, source, fixed)
            .map(|version| format!("{epoch}:{version}"));
    }
    if let Some(prefix) = binary.strip_suffix(source)
        && prefix.ends_with(['+', '.', '~', '-'])
        && !fixed.contains(':')
    {
        return Some(format!("{prefix}{fixed}"));
    }
    with_separators_of(binary, source, fixed)
}

/// `version` without a trailing binNMU suffix `+bN`.
fn strip_binnmu(version: &str) -> Option<&str> {
    let (rebuilt, count) = version.rsplit_once("+b")?;
    (!count.is_empty() && count.bytes().all(|byte| byte.is_ascii_digit())).then_some(rebuilt)
}

/// Splits a version into runs of letters and digits and the separators between them.
fn tokens(version: &str) -> (Vec<&str>, Vec<&str>) {
    let mut runs = Vec::new();
    let mut separators = Vec::new();
    let mut start = 0;
    let mut in_run = true;
    for (at, c) in version.char_indices() {
        let alphanumeric = c.is_ascii_alphanumeric();
        if alphanumeric != in_run {
            if in_run {
                runs.push(&version[start..at]);
            } else {
                separators.push(&version[start..at]);
            }
            start = at;
            in_run = alphanumeric;
        }
    }
    if in_run {
        runs.push(&version[start..]);
    } else {
        separators.push(&version[start..]);
    }
    (runs, separators)
}

/// `fixed` written with the binary's separators, when the binary version is the source
/// version with other separators and `fixed` has the same shape.
fn with_separators_of(binary: &str, source: &str, fixed: &str) -> Option<String> {
    let (binary_runs, binary_separators) = tokens(binary);
    let (source_runs, source_separators) = tokens(source);
    let (fixed_runs, fixed_separators) = tokens(fixed);
    if binary_runs != source_runs
        || fixed_runs.len() != binary_runs.len()
        || fixed_separators.len() != binary_separators.len()
        || source_separators.len() != binary_separators.len()
    {
        return None;
    }
    let mut version = String::with_capacity(fixed.len());
    for (position, run) in fixed_runs.iter().enumerate() {
        version.push_str(run);
        if let Some(separator) = binary_separators.get(position) {
            version.push_str(separator);
        }
    }
    Some(version)
}

#[cfg(test)]
mod tests {
    use super::{binary_fixed_version, signed_kernel_source};

    #[test]
    fn signed_kernel_sources() {
        let cases = [
            (
                "Debian",
                "linux-signed-amd64",
                "6.1.76+1",
                Some(("linux", "6.1.76-1")),
            ),
            (
                "Debian",
                "linux-signed-arm64",
                "6.1.69+1~bpo11+1",
                Some(("linux", "6.1.69-1~bpo11+1")),
            ),
            (
                "Debian",
                "linux-signed-i386",
                "5.10.209+2",
                Some(("linux", "5.10.209-2")),
            ),
            (
                "Debian",
                "linux-signed-5.10-amd64",
                "5.10.209+2~deb10u1",
                Some(("linux-5.10", "5.10.209-2~deb10u1")),
            ),
            (
                "Ubuntu",
                "linux-signed",
                "5.15.0-91.101",
                Some(("linux", "5.15.0-91.101")),
            ),
            (
                "Ubuntu",
                "linux-signed-hwe-5.15",
                "5.15.0-91.101~20.04.1",
                Some(("linux-hwe-5.15", "5.15.0-91.101~20.04.1")),
            ),
            (
                "Ubuntu",
                "linux-signed-azure",
                "6.5.0-1015.15",
                Some(("linux-azure", "6.5.0-1015.15")),
            ),
            // Not signed kernel sources, or not one Debian builds.
            ("Ubuntu", "linux-meta", "5.15.0.91.88", None),
            ("Debian", "linux", "6.1.76-1", None),
            ("Debian", "linux-signedness", "1", None),
            ("Debian", "linux-signed-mips64el", "6.1.76+1", None),
            ("Alpine", "linux-signed", "1", None),
        ];
        for (base, source, version, expected) in cases {
            assert_eq!(
                signed_kernel_source(base, source, version),
                expected.map(|(name, version)| (name.to_owned(), version.to_owned())),
                "{base} {source} {version}"
            );
        }
    }

    #[test]
    fn binary_versions_from_fixed_source_versions() {
        let cases = [
            ("3.0.11-1", "3.0.11-1", "3.0.11-2", Some("3.0.11-2")),
            (
                "5.2.15-2+b8",
                "5.2.15-2",
                "5.2.15-2+deb12u1",
                Some("5.2.15-2+deb12u1"),
            ),
            (
                "1:2.38.1-5+deb12u3",
                "2.38.1-5+deb12u3",
                "2.38.1-5+deb12u4",
                Some("1:2.38.1-5+deb12u4"),
            ),
            (
                "1:1.35.0-4+deb12u1+b1",
                "1:1.35.0-4+deb12u1",
                "1:1.35.0-4+deb12u2",
                Some("1:1.35.0-4+deb12u2"),
            ),
            (
                "7.1.0+6.1.192-3",
                "6.1.192-3",
                "6.1.200-1",
                Some("7.1.0+6.1.200-1"),
            ),
            ("6.1.76-1", "6.1.76+1", "6.1.90+1", Some("6.1.90-1")),
            // Nothing ties these together: no version is made up.
            ("16.1-1", "6.1-1", "6.2-1", None),
            ("2.0-1", "7.3-2", "7.4-1", None),
            ("6.1.76-1", "6.1.76+1", "6.1.90+1~deb12u1", None),
        ];
        for (binary, source, fixed, expected) in cases {
            assert_eq!(
                binary_fixed_version(binary, source, fixed).as_deref(),
                expected,
                "{binary} from {source}, fixed in {fixed}"
            );
        }
    }
}
