//! Distribution source packages: the name and version an advisory is compared with, and the
//! binary version that a fixed source version gives.
//!
//! Debian's security tracker, and OSV's `Debian:*` and `Ubuntu:*` records, name the source
//! package and give the source package's versions. A binary package's version can differ
//! from its source's: binNMUs (`5.2.15-2+b8` from `5.2.15-2`), an epoch only the binary
//! carries (`bsdutils 1:2.38.1-5+deb12u3` from `util-linux 2.38.1-5+deb12u3`), binaries
//! with a version of their own (`bpftool 7.1.0+6.1.192-3` from `linux 6.1.192-3`), and
//! sources with their own scheme (signed kernels: `linux-image-6.1.0-18-amd64 6.1.76-1` from
//! `linux-signed-amd64 6.1.76+1`). So dpkg packages are compared by the source version, as
//! Trivy and Grype do. Alpine's secdb is keyed by origin, and every package of an origin
//! shares its version, so apk packages are compared by their own version.

use palisade_version::Scheme;

use crate::ecosystem::scheme_of;
use crate::index::Package;

/// The version advisories are compared with: the source version for dpkg packages that
/// have one, the package's own version otherwise.
pub(crate) fn compared_version<'a>(ecosystem: &str, package: &'a Package) -> &'a str {
    match (&package.source_version, scheme_of(ecosystem)) {
        (Some(source_version), Some(Scheme::Dpkg)) => source_version,
        _ => &package.version,
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
    use super::binary_fixed_version;

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
