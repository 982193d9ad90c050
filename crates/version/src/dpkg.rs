//! Debian package versions: `[epoch:]upstream[-revision]`, compared as dpkg does.
//!
//! Follows dpkg's lib/dpkg/parsehelp.c (`parseversion`) and lib/dpkg/version.c (`verrevcmp`):
//! `~` sorts before everything, even the end of the string; letters sort before the other
//! non-digits; runs of digits compare numerically. dpkg only warns about an upstream part
//! that does not start with a digit or holds unusual characters, so those parse here too.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{cmp_digits, ord_from_compare};
use crate::{Error, Scheme};

/// A parsed Debian package version.
#[derive(Debug, Clone)]
pub struct DpkgVersion {
    epoch: u32,
    upstream: Box<str>,
    revision: Box<str>,
}

impl DpkgVersion {
    /// Parses `[epoch:]upstream[-revision]`, trimming surrounding whitespace like dpkg.
    pub fn parse(text: &str) -> Result<DpkgVersion, Error> {
        let invalid = |reason| Error::invalid(Scheme::Dpkg, text, reason);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("version string is empty"));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(invalid("version string has embedded spaces"));
        }
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => {
                // dpkg reads the epoch with strtol, which takes a sign: `+7:1` has epoch 7,
                // `-0:1` epoch 0, and `-1:1` is refused as negative.
                let (negative, digits) = match epoch.as_bytes().first() {
                    Some(b'-') => (true, &epoch[1..]),
                    Some(b'+') => (false, &epoch[1..]),
                    _ => (false, epoch),
                };
                if digits.is_empty() {
                    return Err(invalid("epoch in version is empty"));
                }
                if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(invalid("epoch in version is not number"));
                }
                if negative && digits.bytes().any(|byte| byte != b'0') {
                    return Err(invalid("epoch in version is negative"));
                }
                // dpkg stores the epoch in an int and rejects anything above INT_MAX.
                let epoch = digits
                    .parse::<u32>()
                    .ok()
                    .filter(|epoch| *epoch <= i32::MAX as u32)
                    .ok_or_else(|| invalid("epoch in version is too big"))?;
                (epoch, rest)
            }
            None => (0, trimmed),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => {
                if revision.is_empty() {
                    return Err(invalid("revision number is empty"));
                }
                (upstream, revision)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(invalid("version number is empty"));
        }
        Ok(DpkgVersion {
            epoch,
            upstream: upstream.into(),
            revision: revision.into(),
        })
    }

    /// The epoch, 0 when absent.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision, empty when absent (which compares equal to `0`).
    pub fn revision(&self) -> &str {
        &self.revision
    }

    fn compare(&self, other: &DpkgVersion) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

ord_from_compare!(DpkgVersion);

impl FromStr for DpkgVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<DpkgVersion, Error> {
        DpkgVersion::parse(text)
    }
}

impl fmt::Display for DpkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

/// dpkg's `order()`: the weight of one byte in a non-digit run (`None` is the end).
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(byte) if byte.is_ascii_digit() => 0,
        Some(byte) if byte.is_ascii_alphabetic() => i32::from(byte),
        Some(b'~') => -1,
        // dpkg reads bytes as (signed) `char` on the platforms Debian ships, so bytes above
        // 0x7f weigh less than ASCII punctuation.
        Some(byte) => i32::from(byte as i8) + 256,
    }
}

/// dpkg's `verrevcmp()`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while a.get(i).is_some_and(|c| !c.is_ascii_digit())
            || b.get(j).is_some_and(|c| !c.is_ascii_digit())
        {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        let a_start = i;
        while a.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let b_start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        let a_digits = std::str::from_utf8(&a[a_start.min(a.len())..i.min(a.len())]).unwrap_or("");
        let b_digits = std::str::from_utf8(&b[b_start.min(b.len())..j.min(b.len())]).unwrap_or("");
        match cmp_digits(a_digits, b_digits) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::DpkgVersion;

    fn cmp(a: &str, b: &str) -> Ordering {
        DpkgVersion::parse(a)
            .unwrap()
            .cmp(&DpkgVersion::parse(b).unwrap())
    }

    #[test]
    fn tricky_cases() {
        // `~` sorts before the end of the string, even twice.
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        // Letters sort before non-letters, and `+` after the end.
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0+dfsg"), Ordering::Less);
        assert_eq!(cmp("1.0.", "1.0"), Ordering::Greater);
        // Digits compare numerically, with leading zeros ignored.
        assert_eq!(cmp("1.010", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1.0010", "1.10"), Ordering::Equal);
        // The epoch wins over everything, and an absent epoch is 0.
        assert_eq!(cmp("1:0.1", "9.9"), Ordering::Greater);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        // The revision is split at the last hyphen, and an absent revision equals `0`.
        assert_eq!(cmp("1.0-2-3", "1.0-2-2"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        // Huge numbers do not overflow.
        assert_eq!(
            cmp("99999999999999999999999999", "99999999999999999999999998"),
            Ordering::Greater
        );
        // A colon in the upstream part is allowed when an epoch is present.
        assert_eq!(cmp("1:2:3", "1:2:4"), Ordering::Less);
    }

    #[test]
    fn invalid_versions() {
        for text in [
            "",
            " ",
            "1 2",
            ":1",
            "a:1",
            "1.0-",
            "-1",
            "99999999999:1",
            "1:",
            "-1:1",
            "+:1",
            "+-1:1",
        ] {
            assert!(
                DpkgVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
        assert_eq!(DpkgVersion::parse(" 1.0-1 ").unwrap().to_string(), "1.0-1");
        // strtol's sign, as dpkg reads the epoch.
        let parse = |text| DpkgVersion::parse(text).unwrap();
        assert_eq!(parse("+7:1.0"), parse("7:1.0"));
        assert_eq!(parse("-0:1.0"), parse("1.0"));
    }
}
