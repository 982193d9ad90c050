//! Python package versions per PEP 440, parsed and ordered as pypa/packaging does.
//!
//! Accepts everything `packaging.version.Version` accepts: a `v` prefix, epochs (`1!2.0`),
//! alternative spellings (`1.0alpha1`, `1.0-preview.2`, `1.0-1`, `1.0.rev3`), implicit
//! numbers (`1.0a` is `1.0a0`), case and surrounding whitespace, and local versions
//! (`+ubuntu-1`). Ordering: `1.0.dev0 < 1.0a0.dev0 < 1.0a0 < 1.0a0.post0 < 1.0 <
//! 1.0+local < 1.0.post0.dev0 < 1.0.post0`; trailing zeros of the release do not count.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// The pre-release phase, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Alpha,
    Beta,
    ReleaseCandidate,
}

/// One dot-separated part of a local version: numbers sort after strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Text(Box<str>),
    Number(Number),
}

/// A parsed PEP 440 version.
#[derive(Debug, Clone)]
pub struct Pep440Version {
    epoch: Number,
    release: Box<[Number]>,
    pre: Option<(Phase, Number)>,
    post: Option<Number>,
    dev: Option<Number>,
    local: Box<[LocalPart]>,
}

impl Pep440Version {
    /// Parses a version with packaging's `VERSION_PATTERN`.
    pub fn parse(text: &str) -> Result<Pep440Version, Error> {
        let lowercase = text.trim().to_ascii_lowercase();
        let mut cursor = Cursor {
            bytes: lowercase.as_bytes(),
            pos: 0,
        };
        parse(&mut cursor).ok_or_else(|| {
            Error::invalid(
                Scheme::Pep440,
                text,
                "does not match the PEP 440 version pattern",
            )
        })
    }

    /// Whether this is a pre-release or a development release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn compare(&self, other: &Pep440Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| cmp_release(&self.release, &other.release))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| self.post.cmp(&other.post))
            .then_with(|| cmp_dev(self.dev.as_ref(), other.dev.as_ref()))
            .then_with(|| self.local.cmp(&other.local))
    }

    /// packaging's `_cmpkey` pre-release part: a bare development release sorts before every
    /// pre-release, and a version without pre-release after all of them.
    fn pre_key(&self) -> PreKey<'_> {
        match (&self.pre, &self.post, &self.dev) {
            (None, None, Some(_)) => PreKey::DevOnly,
            (Some((phase, number)), _, _) => PreKey::Pre(*phase, number),
            (None, _, _) => PreKey::Final,
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreKey<'a> {
    DevOnly,
    Pre(Phase, &'a Number),
    Final,
}

/// Compares release tuples as if trailing zeros were stripped.
fn cmp_release(a: &[Number], b: &[Number]) -> Ordering {
    let len = a.len().max(b.len());
    for index in 0..len {
        let x = a.get(index).unwrap_or(&Number::ZERO);
        let y = b.get(index).unwrap_or(&Number::ZERO);
        match x.cmp(y) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
    }
    Ordering::Equal
}

/// A missing development release sorts after every development release.
fn cmp_dev(a: Option<&Number>, b: Option<&Number>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.cmp(b),
    }
}

ord_from_compare!(Pep440Version);

impl FromStr for Pep440Version {
    type Err = Error;

    fn from_str(text: &str) -> Result<Pep440Version, Error> {
        Pep440Version::parse(text)
    }
}

impl fmt::Display for Pep440Version {
    /// Prints the normalised form, as `str(packaging.version.Version(...))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.epoch.is_zero() {
            write!(f, "{}!", self.epoch)?;
        }
        for (index, number) in self.release.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            write!(f, "{number}")?;
        }
        if let Some((phase, number)) = &self.pre {
            let label = match phase {
                Phase::Alpha => "a",
                Phase::Beta => "b",
                Phase::ReleaseCandidate => "rc",
            };
            write!(f, "{label}{number}")?;
        }
        if let Some(post) = &self.post {
            write!(f, ".post{post}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, ".dev{dev}")?;
        }
        for (index, part) in self.local.iter().enumerate() {
            f.write_str(if index == 0 { "+" } else { "." })?;
            match part {
                LocalPart::Text(text) => f.write_str(text)?,
                LocalPart::Number(number) => write!(f, "{number}")?,
            }
        }
        Ok(())
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn eat_separator(&mut self) {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.')) {
            self.pos += 1;
        }
    }

    /// Eats the first of `labels` that the input starts with (the regex alternation order).
    fn eat_label<'l>(&mut self, labels: &[&'l str]) -> Option<&'l str> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let label = labels
            .iter()
            .find(|label| rest.starts_with(label.as_bytes()))?;
        self.pos += label.len();
        Some(label)
    }

    fn number(&mut self) -> Option<Number> {
        let start = self.pos;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()?;
        (!digits.is_empty()).then(|| Number::from_digits(digits))
    }

    fn alphanumeric(&mut self) -> Option<&str> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        {
            self.pos += 1;
        }
        let run = std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()?;
        (!run.is_empty()).then_some(run)
    }

    /// Runs `parse` and rewinds when it fails, like an optional regex group.
    fn optional<T>(&mut self, parse: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let start = self.pos;
        let result = parse(self);
        if result.is_none() {
            self.pos = start;
        }
        result
    }
}

fn parse(cursor: &mut Cursor<'_>) -> Option<Pep440Version> {
    cursor.eat(b'v');
    let epoch = cursor
        .optional(|cursor| {
            let epoch = cursor.number()?;
            cursor.eat(b'!').then_some(epoch)
        })
        .unwrap_or(Number::ZERO);
    let mut release = vec![cursor.number()?];
    while let Some(number) = cursor.optional(|cursor| {
        cursor.eat(b'.').then_some(())?;
        cursor.number()
    }) {
        release.push(number);
    }
    let pre = cursor.optional(|cursor| {
        cursor.eat_separator();
        let label = cursor.eat_label(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"])?;
        let phase = match label {
            "alpha" | "a" => Phase::Alpha,
            "beta" | "b" => Phase::Beta,
            _ => Phase::ReleaseCandidate,
        };
        cursor.eat_separator();
        let number = cursor.optional(Cursor::number).unwrap_or(Number::ZERO);
        Some((phase, number))
    });
    let post = cursor
        .optional(|cursor| {
            cursor.eat(b'-').then_some(())?;
            cursor.number()
        })
        .or_else(|| {
            cursor.optional(|cursor| {
                cursor.eat_separator();
                cursor.eat_label(&["post", "rev", "r"])?;
                cursor.eat_separator();
                Some(cursor.optional(Cursor::number).unwrap_or(Number::ZERO))
            })
        });
    let dev = cursor.optional(|cursor| {
        cursor.eat_separator();
        cursor.eat_label(&["dev"])?;
        cursor.eat_separator();
        Some(cursor.optional(Cursor::number).unwrap_or(Number::ZERO))
    });
    let mut local = Vec::new();
    if cursor.eat(b'+') {
        loop {
            let part = cursor.alphanumeric()?;
            local.push(if part.bytes().all(|byte| byte.is_ascii_digit()) {
                LocalPart::Number(Number::from_digits(part))
            } else {
                LocalPart::Text(part.into())
            });
            if !matches!(cursor.peek(), Some(b'-' | b'_' | b'.')) {
                break;
            }
            cursor.pos += 1;
        }
    }
    if cursor.pos != cursor.bytes.len() {
        return None;
    }
    Some(Pep440Version {
        epoch,
        release: release.into_boxed_slice(),
        pre,
        post,
        dev,
        local: local.into_boxed_slice(),
    })
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::Pep440Version;

    fn cmp(a: &str, b: &str) -> Ordering {
        Pep440Version::parse(a)
            .unwrap()
            .cmp(&Pep440Version::parse(b).unwrap())
    }

    fn normalized(text: &str) -> String {
        Pep440Version::parse(text).unwrap().to_string()
    }

    #[test]
    fn tricky_cases() {
        assert_eq!(cmp("1.0.dev0", "1.0a0.dev0"), Ordering::Less);
        assert_eq!(cmp("1.0a0.post0", "1.0a1.dev0"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0+local"), Ordering::Less);
        assert_eq!(cmp("1.0+local", "1.0.post0.dev0"), Ordering::Less);
        assert_eq!(cmp("1.0+abc", "1.0+1"), Ordering::Less);
        assert_eq!(cmp("1.0+1.a", "1.0+1"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1.0.0.0"), Ordering::Equal);
        assert_eq!(cmp("1!0.1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("1.0c1", "1.0rc1"), Ordering::Equal);
        assert_eq!(cmp("1.0-1", "1.0.post1"), Ordering::Equal);
        assert_eq!(cmp("1.0a", "1.0a0"), Ordering::Equal);
        assert_eq!(cmp("1.0+ubuntu-1", "1.0+ubuntu.1"), Ordering::Equal);
        assert_eq!(
            cmp("1.99999999999999999999999", "1.99999999999999999999998"),
            Ordering::Greater
        );
    }

    #[test]
    fn normalization() {
        assert_eq!(normalized(" v1.0-ALPHA_2 "), "1.0a2");
        assert_eq!(normalized("1.0-preview.2"), "1.0rc2");
        assert_eq!(normalized("1.0.rev"), "1.0.post0");
        assert_eq!(normalized("0!01.002-dev3+Ubuntu-1"), "1.2.dev3+ubuntu.1");
        assert_eq!(normalized("1.0-1"), "1.0.post1");
    }

    #[test]
    fn invalid_versions() {
        for text in [
            "",
            "v",
            "1.0+",
            "1.0+a..b",
            "1.0.",
            "french toast",
            "1.0-1-1",
            "1!",
            "1.0a1a",
        ] {
            assert!(
                Pep440Version::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }
}
