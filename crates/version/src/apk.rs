//! Alpine package versions, as apk-tools compares and validates them.
//!
//! Follows apk-tools' src/version.c (apk 3): `digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}`.
//! Suffixes order `_alpha < _beta < _pre < _rc <` (none) `< _cvs < _svn < _git < _hg < _p`;
//! a digit run with a leading zero (after the first) compares as a string, as Gentoo does.
//!
//! apk compares a version token by token and stops at the first token that breaks the
//! grammar, so it can order strings it would refuse to install (`23_foo` > `4_beta`). This
//! crate does the same, and reports grammar violations separately through
//! [`ApkVersion::is_valid`]. It refuses only strings that do not even start with a number.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{cmp_digits, ord_from_compare};
use crate::{Error, Scheme};

/// Token types, in apk's order: the order is part of the comparison rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TokenKind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    RevisionNumber,
    End,
    Invalid,
}

/// Suffix values: the pre-release suffixes sort below `NONE`.
const SUFFIX_NONE: u8 = 5;
const SUFFIXES: [(&str, u8); 9] = [
    ("alpha", 1),
    ("beta", 2),
    ("pre", 3),
    ("rc", 4),
    ("cvs", 6),
    ("svn", 7),
    ("git", 8),
    ("hg", 9),
    ("p", 10),
];

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    suffix: u8,
    /// Byte range of the token's text (digits, letter, suffix name or hash) in the version.
    start: u32,
    end: u32,
}

/// A parsed Alpine package version.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: Box<str>,
    /// Tokens up to and including the terminating `End` or `Invalid` token.
    tokens: Box<[Token]>,
}

impl ApkVersion {
    /// Parses a version; fails only when it does not start with a digit (see the module docs).
    pub fn parse(text: &str) -> Result<ApkVersion, Error> {
        if text.len() > u32::MAX as usize {
            return Err(Error::invalid(
                Scheme::Apk,
                "",
                "version string is too long",
            ));
        }
        let tokens = tokenize(text);
        if tokens
            .first()
            .is_none_or(|token| token.kind == TokenKind::Invalid)
        {
            return Err(Error::invalid(
                Scheme::Apk,
                text,
                "version does not start with a number",
            ));
        }
        Ok(ApkVersion {
            text: text.into(),
            tokens: tokens.into_boxed_slice(),
        })
    }

    /// Whether apk accepts the version (`apk_version_validate`), for example `1.2_rc1-r3`
    /// but not `1.2-3` or `1.2_foo`.
    pub fn is_valid(&self) -> bool {
        self.tokens
            .last()
            .is_some_and(|token| token.kind == TokenKind::End)
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn value(&self, token: &Token) -> &str {
        self.text
            .get(token.start as usize..token.end as usize)
            .unwrap_or("")
    }

    fn compare(&self, other: &ApkVersion) -> Ordering {
        let end = Token {
            kind: TokenKind::End,
            suffix: 0,
            start: 0,
            end: 0,
        };
        let mut index = 0;
        loop {
            let ta = self.tokens.get(index).copied().unwrap_or(end);
            let tb = other.tokens.get(index).copied().unwrap_or(end);
            if ta.kind != tb.kind || ta.kind >= TokenKind::End {
                return finish(&ta, &tb);
            }
            let order = self.token_cmp(&ta, other, &tb);
            if order != Ordering::Equal {
                return order;
            }
            index += 1;
        }
    }

    /// apk's `token_cmp()` for two tokens of the same kind.
    fn token_cmp(&self, ta: &Token, other: &ApkVersion, tb: &Token) -> Ordering {
        let va = self.value(ta);
        let vb = other.value(tb);
        match ta.kind {
            // A leading zero after the first number means a string comparison, as in Gentoo.
            TokenKind::Digit if va.starts_with('0') || vb.starts_with('0') => va.cmp(vb),
            TokenKind::InitialDigit
            | TokenKind::Digit
            | TokenKind::SuffixNumber
            | TokenKind::RevisionNumber => cmp_digits(va, vb),
            TokenKind::Letter => va.cmp(vb),
            TokenKind::Suffix => ta.suffix.cmp(&tb.suffix),
            TokenKind::CommitHash | TokenKind::End | TokenKind::Invalid => va.cmp(vb),
        }
    }
}

/// The tail of apk's comparison, once the token kinds differ or a version ended.
fn finish(ta: &Token, tb: &Token) -> Ordering {
    if ta.kind == tb.kind {
        return Ordering::Equal;
    }
    // The longer version is newer, unless what it has more is a pre-release suffix.
    if ta.kind == TokenKind::Suffix && ta.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if tb.kind == TokenKind::Suffix && tb.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    tb.kind.cmp(&ta.kind)
}

ord_from_compare!(ApkVersion);

impl FromStr for ApkVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<ApkVersion, Error> {
        ApkVersion::parse(text)
    }
}

impl fmt::Display for ApkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits a version into apk tokens, ending with an `End` or `Invalid` token.
fn tokenize(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::with_capacity(8);
    let digits = |pos: usize| {
        let mut end = pos;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        end
    };
    let token = |kind, suffix, start: usize, end: usize| Token {
        kind,
        suffix,
        // The caller bounds the length by u32::MAX.
        start: start as u32,
        end: end as u32,
    };
    let end = digits(0);
    if end == 0 {
        tokens.push(token(TokenKind::Invalid, 0, 0, 0));
        return tokens;
    }
    tokens.push(token(TokenKind::InitialDigit, 0, 0, end));
    let mut pos = end;
    let mut kind = TokenKind::InitialDigit;
    loop {
        let Some(&byte) = bytes.get(pos) else {
            tokens.push(token(TokenKind::End, 0, pos, pos));
            return tokens;
        };
        let next = match byte {
            b'a'..=b'z' if kind <= TokenKind::Digit => {
                pos += 1;
                Some(token(TokenKind::Letter, 0, pos - 1, pos))
            }
            b'.' | b'0'..=b'9' => {
                let number_kind = match kind {
                    _ if byte == b'.' && kind > TokenKind::Digit => None,
                    TokenKind::InitialDigit | TokenKind::Digit => Some(TokenKind::Digit),
                    TokenKind::Suffix => Some(TokenKind::SuffixNumber),
                    _ => None,
                };
                number_kind.and_then(|number_kind| {
                    if byte == b'.' {
                        pos += 1;
                    }
                    let end = digits(pos);
                    let start = pos;
                    pos = end;
                    (end > start).then(|| token(number_kind, 0, start, end))
                })
            }
            b'_' if kind <= TokenKind::SuffixNumber => {
                let start = pos + 1;
                let mut end = start;
                while bytes.get(end).is_some_and(u8::is_ascii_lowercase) {
                    end += 1;
                }
                pos = end;
                let name = text.get(start..end).unwrap_or("");
                SUFFIXES
                    .iter()
                    .find(|(suffix, _)| *suffix == name)
                    .map(|(_, value)| token(TokenKind::Suffix, *value, start, end))
            }
            b'~' if kind < TokenKind::CommitHash => {
                let start = pos + 1;
                let mut end = start;
                while bytes
                    .get(end)
                    .is_some_and(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
                {
                    end += 1;
                }
                pos = end;
                (end > start).then(|| token(TokenKind::CommitHash, 0, start, end))
            }
            b'-' if kind < TokenKind::RevisionNumber && bytes.get(pos + 1) == Some(&b'r') => {
                let start = pos + 2;
                let end = digits(start);
                pos = end;
                (end > start).then(|| token(TokenKind::RevisionNumber, 0, start, end))
            }
            _ => None,
        };
        match next {
            Some(next) => {
                kind = next.kind;
                tokens.push(next);
            }
            None => {
                tokens.push(token(TokenKind::Invalid, 0, pos, pos));
                return tokens;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::ApkVersion;

    fn cmp(a: &str, b: &str) -> Ordering {
        ApkVersion::parse(a)
            .unwrap()
            .cmp(&ApkVersion::parse(b).unwrap())
    }

    fn valid(text: &str) -> bool {
        ApkVersion::parse(text).is_ok_and(|version| version.is_valid())
    }

    #[test]
    fn tricky_cases() {
        assert_eq!(cmp("1.0_alpha", "1.0_beta"), Ordering::Less);
        assert_eq!(cmp("1.0_rc9", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0_p1"), Ordering::Less);
        assert_eq!(cmp("1.0_git20240101", "1.0_p1"), Ordering::Less);
        assert_eq!(cmp("1.0a", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0a", "1.0.1"), Ordering::Less);
        assert_eq!(cmp("1.0-r1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0-r10", "1.0-r9"), Ordering::Greater);
        // After the first number, a leading zero makes a string comparison.
        assert_eq!(cmp("1.01", "1.1"), Ordering::Less);
        assert_eq!(cmp("1.05", "1.1"), Ordering::Less);
        assert_eq!(cmp("01", "1"), Ordering::Equal);
        assert_eq!(cmp("1.0_pre1_p2", "1.0_pre1"), Ordering::Greater);
        assert_eq!(cmp("1.0~abc", "1.0~abd"), Ordering::Less);
        assert_eq!(
            cmp("99999999999999999999", "99999999999999999998"),
            Ordering::Greater
        );
    }

    #[test]
    fn validity() {
        for text in ["1", "1.2.3a_rc1_p2~deadbeef-r0", "0.1_git20240101_pre1"] {
            assert!(valid(text), "{text:?} should be valid");
        }
        for text in [
            "1.2-3", "1.2_foo", "1.2a1", "1.2-r", "1.2~", "1.2_", "1.2-r1.1",
        ] {
            assert!(!valid(text), "{text:?} should be invalid");
        }
        for text in ["", "a", ".1", "-r1", "_p1"] {
            assert!(
                ApkVersion::parse(text).is_err(),
                "{text:?} should not parse"
            );
        }
    }
}
