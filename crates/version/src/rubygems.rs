//! RubyGems versions, ordered as `Gem::Version#<=>`.
//!
//! Follows rubygems' lib/rubygems/version.rb: a version matches
//! `[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?` (or is blank, meaning `0`);
//! each `-` becomes `.pre.`; the segments are the runs of digits and of letters; trailing
//! zeros are dropped from the numeric part and from the part after the first letter
//! (`1.0.a.0 = 1.a`); any letter segment makes a pre-release, which sorts before numbers.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// A segment: letters sort before numbers, and compare as bytes among themselves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Text(Box<str>),
    Number(Number),
}

/// A parsed RubyGems version.
#[derive(Debug, Clone)]
pub struct RubyGemsVersion {
    text: Box<str>,
    /// The canonical segments (trailing zeros dropped as described in the module docs).
    segments: Box<[Segment]>,
}

impl RubyGemsVersion {
    /// Parses a version with `Gem::Version`'s pattern.
    pub fn parse(text: &str) -> Result<RubyGemsVersion, Error> {
        let trimmed = text.trim();
        let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
        if !is_valid(trimmed) {
            return Err(Error::invalid(
                Scheme::RubyGems,
                text,
                "does not match Gem::Version's pattern",
            ));
        }
        let mut segments = Vec::new();
        let bytes = trimmed.as_bytes();
        let mut index = 0;
        while index < bytes.len() {
            let start = index;
            let byte = bytes[index];
            if byte.is_ascii_digit() {
                while bytes.get(index).is_some_and(u8::is_ascii_digit) {
                    index += 1;
                }
                segments.push(Segment::Number(Number::from_digits(&trimmed[start..index])));
            } else if byte.is_ascii_alphabetic() {
                while bytes.get(index).is_some_and(u8::is_ascii_alphabetic) {
                    index += 1;
                }
                segments.push(Segment::Text(trimmed[start..index].into()));
            } else {
                // rubygems rewrites each `-` as `.pre.`, which adds a `pre` segment.
                if byte == b'-' {
                    segments.push(Segment::Text("pre".into()));
                }
                index += 1;
            }
        }
        Ok(RubyGemsVersion {
            text: trimmed.into(),
            segments: canonical(segments).into_boxed_slice(),
        })
    }

    /// Whether the version contains a letter (`Gem::Version#prerelease?`).
    pub fn is_prerelease(&self) -> bool {
        self.segments
            .iter()
            .any(|segment| matches!(segment, Segment::Text(_)))
    }

    fn compare(&self, other: &RubyGemsVersion) -> Ordering {
        let zero = Segment::Number(Number::ZERO);
        for index in 0..self.segments.len().max(other.segments.len()) {
            let left = self.segments.get(index).unwrap_or(&zero);
            let right = other.segments.get(index).unwrap_or(&zero);
            match left.cmp(right) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

/// `Gem::Version#canonical_segments`: drop trailing zeros before and after the first letter.
fn canonical(segments: Vec<Segment>) -> Vec<Segment> {
    let split = segments
        .iter()
        .position(|segment| matches!(segment, Segment::Text(_)))
        .unwrap_or(segments.len());
    let mut numeric = segments;
    let mut rest = numeric.split_off(split);
    let is_zero =
        |segment: &Segment| matches!(segment, Segment::Number(number) if number.is_zero());
    while numeric.last().is_some_and(is_zero) {
        numeric.pop();
    }
    while rest.last().is_some_and(is_zero) {
        rest.pop();
    }
    numeric.extend(rest);
    numeric
}

/// `Gem::Version::ANCHORED_VERSION_PATTERN`, after stripping.
fn is_valid(text: &str) -> bool {
    let (release, pre) = match text.split_once('-') {
        Some((release, pre)) => (release, Some(pre)),
        None => (text, None),
    };
    let mut parts = release.split('.');
    let first_ok = parts
        .next()
        .is_some_and(|first| !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()));
    let rest_ok =
        parts.all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    });
    first_ok && rest_ok && pre_ok
}

ord_from_compare!(RubyGemsVersion);

impl FromStr for RubyGemsVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<RubyGemsVersion, Error> {
        RubyGemsVersion::parse(text)
    }
}

impl fmt::Display for RubyGemsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::RubyGemsVersion;

    fn cmp(a: &str, b: &str) -> Ordering {
        RubyGemsVersion::parse(a)
            .unwrap()
            .cmp(&RubyGemsVersion::parse(b).unwrap())
    }

    #[test]
    fn tricky_cases() {
        assert_eq!(cmp("1.0", "1"), Ordering::Equal);
        assert_eq!(cmp("1.0.a", "1"), Ordering::Less);
        assert_eq!(cmp("1.0.a.0", "1.a"), Ordering::Equal);
        assert_eq!(cmp("1.0.0.rc1", "1.0.0"), Ordering::Less);
        assert_eq!(cmp("1.0.0.beta", "1.0.0.alpha"), Ordering::Greater);
        assert_eq!(cmp("1.0.0-rc1", "1.0.0.pre.rc1"), Ordering::Equal);
        assert_eq!(cmp("1.0.0-1", "1.0.0"), Ordering::Less);
        assert_eq!(cmp("1.2.b1", "1.2.b.1"), Ordering::Equal);
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("", "0"), Ordering::Equal);
        assert_eq!(cmp("1.a", "1.B"), Ordering::Greater, "bytes: B < a");
        for text in ["a", "1..2", "1.0-", "1 0", "-1", "1.0_1", "1.0.-1"] {
            assert!(
                RubyGemsVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }
}
