//! NuGet versions, ordered as NuGet.Versioning's `VersionComparer.Default`.
//!
//! `major[.minor[.patch[.revision]]][-prerelease][+metadata]`: missing parts are 0 (so
//! `1.0 = 1.0.0.0`), numbers may have leading zeros, pre-release labels compare one by one
//! as in SemVer 2.0 but case-insensitively, and metadata is ignored.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// One pre-release label: numbers sort before text, text compares case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Number(Number),
    /// Stored lowercased.
    Text(Box<str>),
}

/// A parsed NuGet version.
#[derive(Debug, Clone)]
pub struct NugetVersion {
    text: Box<str>,
    numbers: [Number; 4],
    pre: Box<[Label]>,
}

impl NugetVersion {
    /// Parses a NuGet version string.
    pub fn parse(text: &str) -> Result<NugetVersion, Error> {
        let invalid = |reason| Error::invalid(Scheme::NuGet, text, reason);
        let trimmed = text.trim();
        let (rest, metadata) = match trimmed.split_once('+') {
            Some((rest, metadata)) => (rest, Some(metadata)),
            None => (trimmed, None),
        };
        if let Some(metadata) = metadata
            && metadata.split('.').any(|part| {
                part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        {
            return Err(invalid("metadata labels must be non-empty [0-9A-Za-z-]"));
        }
        let (main, pre) = match rest.split_once('-') {
            Some((main, pre)) => (main, Some(pre)),
            None => (rest, None),
        };
        let parts: Vec<&str> = main.split('.').collect();
        if parts.len() > 4 {
            return Err(invalid("more than four version numbers"));
        }
        let mut numbers = [Number::ZERO, Number::ZERO, Number::ZERO, Number::ZERO];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("version numbers must be digits"));
            }
            // NuGet itself stores each number in a 32-bit int; advisories are compared
            // exactly at any size rather than refused.
            *slot = Number::from_digits(part);
        }
        let mut labels = Vec::new();
        if let Some(pre) = pre {
            for label in pre.split('.') {
                if label.is_empty()
                    || !label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(invalid("pre-release labels must be non-empty [0-9A-Za-z-]"));
                }
                labels.push(if label.bytes().all(|b| b.is_ascii_digit()) {
                    Label::Number(Number::from_digits(label))
                } else {
                    Label::Text(label.to_ascii_lowercase().into())
                });
            }
        }
        Ok(NugetVersion {
            text: trimmed.into(),
            numbers,
            pre: labels.into_boxed_slice(),
        })
    }

    /// Whether the version has a pre-release part.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    fn compare(&self, other: &NugetVersion) -> Ordering {
        self.numbers.cmp(&other.numbers).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            }
        })
    }
}

ord_from_compare!(NugetVersion);

impl FromStr for NugetVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<NugetVersion, Error> {
        NugetVersion::parse(text)
    }
}

impl fmt::Display for NugetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::NugetVersion;

    fn cmp(a: &str, b: &str) -> Ordering {
        NugetVersion::parse(a)
            .unwrap()
            .cmp(&NugetVersion::parse(b).unwrap())
    }

    #[test]
    fn tricky_cases() {
        assert_eq!(cmp("1.0", "1.0.0.0"), Ordering::Equal);
        assert_eq!(cmp("1.0.0.1", "1.0.0"), Ordering::Greater);
        assert_eq!(cmp("1.0.0-BETA", "1.0.0-beta"), Ordering::Equal);
        assert_eq!(cmp("1.0.0-beta.2", "1.0.0-beta.10"), Ordering::Less);
        assert_eq!(cmp("1.0.0-beta", "1.0.0"), Ordering::Less);
        assert_eq!(cmp("1.0.0+abc", "1.0.0+def"), Ordering::Equal);
        assert_eq!(cmp("1.01", "1.1"), Ordering::Equal);
        assert_eq!(cmp("1.0.0-1", "1.0.0-a"), Ordering::Less);
        assert_eq!(
            cmp("99999999999999999999.1", "99999999999999999998.2"),
            Ordering::Greater
        );
        for text in [
            "",
            "1.0.0.0.0",
            "v1.0",
            "1.0-",
            "1..0",
            "1.0.0-a..b",
            "1.0.x",
        ] {
            assert!(
                NugetVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }
}
