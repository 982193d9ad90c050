//! FreeBSD package versions: `PORTVERSION[_PORTREVISION][,PORTEPOCH]`, compared as pkg(8)
//! compares them.
//!
//! Follows `pkg_version_cmp` (libpkg/pkg_version.c, Oliver Eikemeier's rules from the ports'
//! pkg_version). The epoch decides first, then the port version, then the revision; each of
//! epoch and revision is one number (0 when absent). The port version is a list of components,
//! each a number, a letter and a patch level (`10b2`):
//!
//! - components are separated by any character other than letters, digits, `+` and `*`, and
//!   runs of separators count once (`1.0:2003.09.16 = 1.0.2003.09.16`, `10..1 = 10.1`);
//! - a missing component is zero (`10 = 10.0 = 10.0.0`);
//! - a number without a letter sorts before the same number with one (`10 < 10a < 10b`); a
//!   component that starts with a letter has the number −1 (`10.a < 10`);
//! - `pl`, `alpha`, `beta`, `pre` and `rc` start a component of their own; `pl` sorts before
//!   every letter, the others as `a`, `b`, `p` and `r` (`pl11 < alpha3 < 0.1beta2 = 0.1.b2
//!   < 0.1`); other words count by their first letter, ignoring case (`1.d2 = 1.dev2`);
//! - `*` is smaller than any other component (`2.* < 2pl1`);
//! - `+` ends a block: components after a `+` are compared only with components after a `+`.
//!
//! pkg accepts every string, so only an empty one is refused here.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::ord_from_compare;
use crate::{Error, Scheme};

/// A parsed FreeBSD package version.
#[derive(Debug, Clone)]
pub struct FreeBsdVersion {
    text: Box<str>,
    /// Where the port version ends in `text` (before `_revision` or `,epoch`).
    version_end: usize,
    /// Where the port version starts: after the last `-`, as pkg reads a package name.
    version_start: usize,
    revision: u64,
    epoch: u64,
}

impl FreeBsdVersion {
    /// Parses `PORTVERSION[_PORTREVISION][,PORTEPOCH]` (or a whole `name-version`).
    pub fn parse(text: &str) -> Result<FreeBsdVersion, Error> {
        if text.is_empty() {
            return Err(Error::invalid(
                Scheme::FreeBsd,
                text,
                "version string is empty",
            ));
        }
        // pkg's split_version: the version is what follows the last `-`, the revision what
        // follows its last `_`, the epoch what follows the last `,` after that.
        let version_start = text.rfind('-').map_or(0, |dash| dash + 1);
        let version = &text[version_start..];
        let underscore = version.rfind('_');
        let revision = underscore.map_or(0, |at| leading_number(&version[at + 1..]));
        let epoch_search_from = underscore.map_or(0, |at| at + 1);
        let comma = version[epoch_search_from..]
            .rfind(',')
            .map(|at| epoch_search_from + at);
        let epoch = comma.map_or(0, |at| leading_number(&version[at + 1..]));
        let end = underscore.or(comma).unwrap_or(version.len());
        Ok(FreeBsdVersion {
            text: text.into(),
            version_end: version_start + end,
            version_start,
            revision,
            epoch,
        })
    }

    /// The port version, without revision and epoch.
    pub fn port_version(&self) -> &str {
        &self.text[self.version_start..self.version_end]
    }

    /// The port revision, 0 when absent.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The port epoch, 0 when absent.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn compare(&self, other: &FreeBsdVersion) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_port_versions(self.port_version(), other.port_version()))
            .then_with(|| self.revision.cmp(&other.revision))
    }
}

ord_from_compare!(FreeBsdVersion);

impl FromStr for FreeBsdVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<FreeBsdVersion, Error> {
        FreeBsdVersion::parse(text)
    }
}

impl fmt::Display for FreeBsdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `strtoul` as pkg calls it on a revision or epoch: leading spaces and a `+` skipped, then the
/// digits up to the first other character (none: 0), saturating.
fn leading_number(text: &str) -> u64 {
    let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let text = text.strip_prefix('+').unwrap_or(text);
    text.bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(u64::from(digit - b'0'))
        })
}

/// One component: number, letter, patch level, compared in that order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Component {
    number: i64,
    letter: i32,
    patch: i64,
}

/// The words that start a component of their own, with the letter value each sorts as.
const STAGES: [(&[u8], i32); 5] = [
    (b"pl", 0),
    (b"alpha", 1),
    (b"beta", 2),
    (b"pre", 16),
    (b"rc", 18),
];

/// A cursor over one port version's bytes.
struct Components<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Components<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.at + offset).copied()
    }

    fn is_alpha(&self, offset: usize) -> bool {
        self.peek(offset)
            .is_some_and(|byte| byte.is_ascii_alphabetic())
    }

    fn is_digit(&self) -> bool {
        self.peek(0).is_some_and(|byte| byte.is_ascii_digit())
    }

    fn at_block_end(&self) -> bool {
        self.at >= self.bytes.len() || self.bytes[self.at] == b'+'
    }

    /// A run of digits as `strtoll` reads it, saturating.
    fn number(&mut self) -> i64 {
        let mut value: i64 = 0;
        while let Some(digit) = self.peek(0).filter(u8::is_ascii_digit) {
            value = value
                .saturating_mul(10)
                .saturating_add(i64::from(digit - b'0'));
            self.at += 1;
        }
        value
    }

    /// pkg's `get_component`: reads one component and the separators after it.
    fn next_component(&mut self) -> Component {
        let mut starts_with_letter = false;
        let number = if self.is_digit() {
            self.number()
        } else if self.peek(0) == Some(b'*') {
            self.at += 1;
            while self.peek(0).is_some_and(|byte| byte != b'+') {
                self.at += 1;
            }
            -2
        } else {
            starts_with_letter = true;
            -1
        };
        let mut letter = 0;
        let mut has_patch = false;
        if let Some(first) = self.peek(0).filter(u8::is_ascii_alphabetic) {
            has_patch = true;
            let mut plain_letter = true;
            if self.is_alpha(1) {
                let rest = &self.bytes[self.at..];
                let stage = STAGES.iter().find(|(word, _)| {
                    rest.len() >= word.len()
                        && rest[..word.len()].eq_ignore_ascii_case(word)
                        && !rest.get(word.len()).is_some_and(u8::is_ascii_alphabetic)
                });
                if let Some((word, value)) = stage {
                    plain_letter = false;
                    if starts_with_letter {
                        letter = *value;
                        self.at += word.len();
                    } else {
                        // A stage right after a number starts the next component.
                        has_patch = false;
                    }
                }
            }
            if plain_letter {
                letter = i32::from(first.to_ascii_lowercase() - b'a') + 1;
                while self.is_alpha(0) {
                    self.at += 1;
                }
            }
        }
        let patch = match (has_patch, self.is_digit()) {
            (false, _) => 0,
            (true, true) => self.number(),
            (true, false) => -1,
        };
        while self
            .peek(0)
            .is_some_and(|byte| !byte.is_ascii_alphanumeric() && byte != b'+' && byte != b'*')
        {
            self.at += 1;
        }
        Component {
            number,
            letter,
            patch,
        }
    }
}

/// pkg's `version_cmp` loop over two port versions.
fn compare_port_versions(a: &str, b: &str) -> Ordering {
    if a.eq_ignore_ascii_case(b) {
        return Ordering::Equal;
    }
    let mut a = Components {
        bytes: a.as_bytes(),
        at: 0,
    };
    let mut b = Components {
        bytes: b.as_bytes(),
        at: 0,
    };
    while a.at < a.bytes.len() || b.at < b.bytes.len() {
        let left = (!a.at_block_end()).then(|| a.next_component());
        let right = (!b.at_block_end()).then(|| b.next_component());
        if left.is_none() && right.is_none() {
            // Both sides reached a `+` (or the end): step over it into the next block.
            a.at = (a.at + 1).min(a.bytes.len());
            b.at = (b.at + 1).min(b.bytes.len());
            continue;
        }
        match left.unwrap_or_default().cmp(&right.unwrap_or_default()) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::FreeBsdVersion;

    fn cmp(a: &str, b: &str) -> Ordering {
        FreeBsdVersion::parse(a)
            .unwrap()
            .cmp(&FreeBsdVersion::parse(b).unwrap())
    }

    /// Every example of the rules pkg's source states, in order.
    #[test]
    fn the_documented_orderings_hold() {
        let ascending = [
            ["1.0.1:2003.09.16", "1.0:2003.09.16"],
            ["10", "10a"],
            ["10a", "10b"],
            ["10.a", "10"],
            ["a", "0"],
            ["10alpha", "10"],
            ["pl11", "alpha3"],
            ["alpha3", "0.1beta2"],
            ["0.1beta2", "0.1"],
            ["2.*", "2pl1"],
            ["2pl1", "2alpha3"],
            ["2alpha3", "2.9f7"],
            ["2.9f7", "3.*"],
        ];
        for [lower, higher] in ascending {
            assert_eq!(cmp(lower, higher), Ordering::Less, "{lower} < {higher}");
            assert_eq!(cmp(higher, lower), Ordering::Greater, "{higher} > {lower}");
        }
        let equal = [
            ["1.0:2003.09.16", "1.0.2003.09.16"],
            ["10..1", "10.1"],
            ["10a1b2", "10a1.b2"],
            ["10", "10.0"],
            ["10.0", "10.0.0"],
            ["10alpha", "10.a"],
            ["0.1beta2", "0.1.b2"],
            ["1.d2", "1.dev2"],
            ["1.dev2", "1.Development2"],
        ];
        for [a, b] in equal {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} = {b}");
        }
    }

    #[test]
    fn epoch_then_version_then_revision() {
        assert_eq!(cmp("1.0,1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("2.0_9", "2.0,1"), Ordering::Less);
        assert_eq!(cmp("1.0_1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0_2,1", "1.0_10,1"), Ordering::Less);
        assert_eq!(cmp("1.0_0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1.10", "1.9_5"), Ordering::Greater);
        // A package name is read after its last `-`, as pkg does.
        assert_eq!(cmp("curl-8.4.0_1", "8.4.0_1"), Ordering::Equal);
        let parsed = FreeBsdVersion::parse("py39-foo-1.2.3_4,5").unwrap();
        assert_eq!(
            (parsed.port_version(), parsed.revision(), parsed.epoch()),
            ("1.2.3", 4, 5)
        );
    }

    #[test]
    fn plus_separates_blocks() {
        assert_eq!(cmp("1.0+2", "1.0+10"), Ordering::Less);
        assert_eq!(cmp("1.0+1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0.1", "1.0+5"), Ordering::Greater);
    }

    #[test]
    fn huge_numbers_saturate_and_only_empty_is_refused() {
        assert_eq!(
            cmp("99999999999999999999999", "99999999999999999999998"),
            Ordering::Equal
        );
        assert_eq!(
            cmp("1.0_99999999999999999999999", "1.0_1"),
            Ordering::Greater
        );
        assert!(FreeBsdVersion::parse("").is_err());
        assert!(FreeBsdVersion::parse("ünïcode.1").is_ok());
    }
}
