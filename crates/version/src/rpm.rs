//! RPM versions: `[epoch:]version[-release]`, each part compared with `rpmvercmp`.
//!
//! Follows rpm's rpmio/rpmvercmp.c: alphanumeric segments are compared one by one (digits
//! numerically, letters as strings, a digit segment beating a letter one), everything else
//! separates segments, `~` sorts before everything (even the end) and `^` sorts after the
//! end but before anything else. Used by Red Hat, Rocky Linux, AlmaLinux, SUSE, openSUSE,
//! Photon OS and Mariner.
//!
//! An absent release sorts before any release, even an empty one (`1 < 1- < 1-0`), as
//! rpm 4.18's `rpm.vercmp` orders full EVR strings (older rpm skipped the release when one
//! side lacked it); an empty version (`1:`, `-1`) sorts before every other version.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{cmp_digits, ord_from_compare};
use crate::{Error, Scheme};

/// The longest dnf module or stream name [`module_stream`] accepts; dnf's are a few dozen
/// characters.
const MAX_MODULE_NAME_BYTES: usize = 256;

/// The dnf module stream `name:stream` (`container-tools:rhel8`) of a module's and a
/// stream's names, when both are plausible: non-empty, at most 256 bytes, without `:`,
/// whitespace or control characters. The one rule for the streams of modularity labels,
/// `modules.d` files, Red Hat's OVAL and `palisade db match --module-stream`.
pub fn module_stream(name: &str, stream: &str) -> Option<String> {
    let plausible = |part: &str| {
        !part.is_empty()
            && part.len() <= MAX_MODULE_NAME_BYTES
            && !part
                .chars()
                .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    };
    (plausible(name) && plausible(stream)).then(|| format!("{name}:{stream}"))
}

/// [`module_stream`] of a `name:stream` text.
pub fn parse_module_stream(text: &str) -> Option<String> {
    let (name, stream) = text.split_once(':')?;
    module_stream(name, stream)
}

/// A parsed RPM `[epoch:]version[-release]`.
#[derive(Debug, Clone)]
pub struct RpmVersion {
    epoch: Option<Box<str>>,
    version: Box<str>,
    release: Option<Box<str>>,
}

impl RpmVersion {
    /// Parses `[epoch:]version[-release]`; the release starts after the last hyphen.
    pub fn parse(text: &str) -> Result<RpmVersion, Error> {
        let invalid = |reason| Error::invalid(Scheme::Rpm, text, reason);
        if text.is_empty() {
            return Err(invalid("version string is empty"));
        }
        // rpm takes spaces as separators like any other non-alphanumeric character
        // (`1 0 = 1.0`); control characters are refused, since no package carries them.
        if text.chars().any(char::is_control) {
            return Err(invalid("version string has control characters"));
        }
        // As rpm's parseEVR: an epoch is a run of digits followed by a colon.
        let digits_end = text
            .bytes()
            .position(|byte| !byte.is_ascii_digit())
            .unwrap_or(text.len());
        let (epoch, rest) = if text.as_bytes().get(digits_end) == Some(&b':') {
            let epoch = &text[..digits_end];
            let epoch = if epoch.is_empty() { "0" } else { epoch };
            (Some(epoch), &text[digits_end + 1..])
        } else {
            (None, text)
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((version, release)) => (version, Some(release)),
            None => (rest, None),
        };
        // rpm takes an empty version (`1:`, `-1`) and orders it before every other one.
        Ok(RpmVersion {
            epoch: epoch.map(Box::from),
            version: version.into(),
            release: release.map(Box::from),
        })
    }

    /// The epoch as written, `None` when absent (which compares as `0`).
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// The version part.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The release part, `None` when absent.
    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// Whether the build is a dnf module stream's: the Module Build Service puts the module
    /// tag in every module build's release (Red Hat's, Rocky Linux's and Oracle Linux's
    /// `26.module+el8.9.0+21245+22222222`, AlmaLinux's and CentOS Stream's
    /// `1.module_el9.3.0+88+2e4e5f2c`, Fedora's `1.module_f33+10472+0b6c6d5e`); other builds
    /// were not provided by a module stream.
    pub fn is_module_build(&self) -> bool {
        let Some(release) = self.release.as_deref() else {
            return false;
        };
        release.match_indices("module").any(|(at, tag)| {
            let before = release[..at].chars().next_back();
            let after = release[at + tag.len()..].chars().next();
            matches!(before, None | Some('.')) && matches!(after, Some('+' | '_'))
        })
    }

    fn compare(&self, other: &RpmVersion) -> Ordering {
        cmp_digits(
            self.epoch.as_deref().unwrap_or("0"),
            other.epoch.as_deref().unwrap_or("0"),
        )
        .then_with(|| rpmvercmp(&self.version, &other.version))
        .then_with(|| match (&self.release, &other.release) {
            (Some(a), Some(b)) => rpmvercmp(a, b),
            (a, b) => a.is_some().cmp(&b.is_some()),
        })
    }
}

ord_from_compare!(RpmVersion);

impl FromStr for RpmVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<RpmVersion, Error> {
        RpmVersion::parse(text)
    }
}

impl fmt::Display for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(epoch) = &self.epoch {
            write!(f, "{epoch}:")?;
        }
        f.write_str(&self.version)?;
        if let Some(release) = &self.release {
            write!(f, "-{release}")?;
        }
        Ok(())
    }
}

/// rpm's `rpmvercmp()` on one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let a = a.as_bytes();
    let b = b.as_bytes();
    let (mut i, mut j) = (0, 0);
    let is_separator = |byte: u8| !byte.is_ascii_alphanumeric() && byte != b'~' && byte != b'^';
    loop {
        while a.get(i).is_some_and(|c| is_separator(*c)) {
            i += 1;
        }
        while b.get(j).is_some_and(|c| is_separator(*c)) {
            j += 1;
        }
        let (one, two) = (a.get(i).copied(), b.get(j).copied());
        if one.is_none() && two.is_none() {
            return Ordering::Equal;
        }
        // Tilde sorts before everything else, even the end of the string.
        if one == Some(b'~') || two == Some(b'~') {
            if one != Some(b'~') {
                return Ordering::Greater;
            }
            if two != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret sorts after the end of the string but before anything else.
        if one == Some(b'^') || two == Some(b'^') {
            if one.is_none() {
                return Ordering::Less;
            }
            if two.is_none() {
                return Ordering::Greater;
            }
            if one != Some(b'^') {
                return Ordering::Greater;
            }
            if two != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (one, two) else {
            break;
        };
        let is_numeric = first.is_ascii_digit();
        let in_segment = |byte: &u8| {
            if is_numeric {
                byte.is_ascii_digit()
            } else {
                byte.is_ascii_alphabetic()
            }
        };
        let a_start = i;
        while a.get(i).is_some_and(in_segment) {
            i += 1;
        }
        let b_start = j;
        while b.get(j).is_some_and(in_segment) {
            j += 1;
        }
        if b_start == j {
            // The segments have different types: a number beats letters.
            return if is_numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        // Both segments are ASCII, so these conversions cannot fail.
        let a_segment = std::str::from_utf8(&a[a_start..i]).unwrap_or("");
        let b_segment = std::str::from_utf8(&b[b_start..j]).unwrap_or("");
        let order = if is_numeric {
            cmp_digits(a_segment, b_segment)
        } else {
            a_segment.cmp(b_segment)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    // One string is exhausted: whichever still has characters is newer.
    if i < a.len() {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::{RpmVersion, module_stream, parse_module_stream, rpmvercmp};

    fn cmp(a: &str, b: &str) -> Ordering {
        RpmVersion::parse(a)
            .unwrap()
            .cmp(&RpmVersion::parse(b).unwrap())
    }

    #[test]
    fn module_builds_carry_the_module_tag_in_their_release() {
        let module_build = |text: &str| RpmVersion::parse(text).unwrap().is_module_build();
        for build in [
            "3:4.0.2-26.module+el8.9.0+21245+22222222",
            "1:18.20.1-1.module_el9.3.0+88+2e4e5f2c",
            "4:5.30.1-452.module+el8.9.0+90159+f5be4d55",
            "1.0-1.module_f33+10472+0b6c6d5e",
        ] {
            assert!(module_build(build), "{build}");
        }
        for build in [
            "4.6.1-5.el8",
            "4:5.26.3-422.el8",
            "1.0",
            // A version that mentions a module, a release that names one without the tag.
            "module+1-1.el8",
            "1.0-1.modules+el8",
            "1.0-1.xmodule+el8",
            "1.0-1.module",
        ] {
            assert!(!module_build(build), "{build}");
        }
    }

    #[test]
    fn tricky_cases() {
        assert_eq!(rpmvercmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0^post1", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.0^post1", "1.0.1"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0^", "1.0~"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.a", "1.1"), Ordering::Less);
        assert_eq!(rpmvercmp("1..0", "1.0"), Ordering::Equal);
        assert_eq!(rpmvercmp("1.0a", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("2.el9", "2.el10"), Ordering::Less);
        assert_eq!(cmp("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(cmp("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert_eq!(cmp("1.0-1.el8", "1.0-1.el8_5"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0-1"), Ordering::Less);
        assert_eq!(cmp("3.0-0.rc1", "3.0-1"), Ordering::Less);
        assert_eq!(
            cmp("18446744073709551616:1", "18446744073709551615:1"),
            Ordering::Greater
        );
    }

    #[test]
    fn invalid_versions() {
        assert_eq!(cmp("1", "1-"), Ordering::Less);
        assert_eq!(cmp("1-", "1-0"), Ordering::Less);
        for text in ["", "1\n0", "1\u{0}"] {
            assert!(
                RpmVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn empty_version_sorts_first_as_in_rpm() {
        assert_eq!(cmp("1:", "1:0"), Ordering::Less);
        assert_eq!(cmp("1:", "0:9"), Ordering::Greater);
        assert_eq!(cmp("-1", "0"), Ordering::Less);
        assert_eq!(cmp("-1", "-2"), Ordering::Less);
        // Spaces separate segments, as any other non-alphanumeric character.
        assert_eq!(cmp("1 0", "1.0"), Ordering::Equal);
        assert_eq!(cmp(" 5^", "5"), Ordering::Greater);
        assert_eq!(cmp(" ", "0"), Ordering::Less);
    }

    #[test]
    fn module_streams_are_two_plausible_names() {
        assert_eq!(
            module_stream("container-tools", "rhel8").as_deref(),
            Some("container-tools:rhel8")
        );
        assert_eq!(
            parse_module_stream("perl:5.30").as_deref(),
            Some("perl:5.30")
        );
        for text in [
            "perl",
            ":5.30",
            "perl:",
            "perl:5.30:1",
            "perl :5.30",
            "perl:5 30",
            "perl:5.30\n",
            "perl:5\u{0}30",
        ] {
            assert_eq!(parse_module_stream(text), None, "{text:?}");
        }
        let long = "m".repeat(257);
        assert_eq!(module_stream(&long, "1"), None);
        assert!(module_stream(&long[..256], "1").is_some());
    }
}
