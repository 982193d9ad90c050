//! Maven versions, ordered as OSV orders them.
//!
//! OSV's Maven records are matched with the Maven "Version Order Specification" as osv.dev
//! (`osv/ecosystems/maven.py`) and osv-scanner (osv-scalibr's `semantic/version-maven.go`)
//! implement it, so that is the order here (it differs from Maven 3.9's `ComparableVersion`,
//! MNG-7644, on versions such as `2.0.a`, which stays below `2.0.0.a` here rather than both
//! reading as `2-a`). The two OSV implementations disagree on one class of input, a `.sp`
//! token against the other version's end (`1.sp` against `1`): osv.dev's pads it with `.0`,
//! ranking `sp` below it as a known qualifier, while osv-scanner pads it with the release
//! qualifier, so `sp` (the service pack, after the release) is above; Maven itself (3.8 and
//! 3.9) puts `1.sp` above `1`, so this order does too.
//!
//! A version is split into tokens at `.` and `-` and at every switch between decimal digits
//! (any script's, as Maven's `Character.isDigit` and osv.dev's `\d` read them; osv-scanner's
//! Go reads ASCII ones only) and other characters; each token keeps the separator before it as its prefix, and a switch
//! counts as `-` (the first token's prefix behaves as `.`). Tokens are lowercased; an empty one
//! is `0`, numbers drop leading zeros, `cr` is `rc`, `ga`/`final`/`release` are the release
//! qualifier `""`, and `a`/`b`/`m` directly followed by a digit are alpha/beta/milestone.
//! Trailing "null" tokens (`0`, `""`) are trimmed from the end, and again before each
//! remaining `-` from the end to the start. The shorter version is padded with nulls taking
//! the other side's prefix (`.0` or `-""`). Tokens with the same prefix: numbers numerically,
//! a number above a qualifier, qualifiers `alpha < beta < milestone < rc < snapshot < "" < sp`
//! and unknown ones after those, lexically (a `.0` padding compares as the unknown qualifier
//! `"0"`, except against `sp`, which is above it). Different prefixes: `.qualifier <
//! -qualifier < -number < .number`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// The index of the release qualifier (`""`) among the known qualifiers.
const RELEASE_INDEX: u8 = 5;

/// The index of the service pack qualifier (`sp`), the only known one above the release.
const SERVICE_PACK_INDEX: u8 = 6;

/// The known qualifiers in order; their index is their rank.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

/// The code points of the zeros of Unicode's decimal digit runs (general category `Nd`,
/// Unicode 14: each zero is followed by the nine other digits of its script).
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a decimal digit of any script (`٣` is 3); `None` for other characters,
/// superscripts and other non-decimal numbers too (`²`).
fn decimal_digit(c: char) -> Option<u8> {
    if c.is_ascii() {
        return c.is_ascii_digit().then(|| c as u8 - b'0');
    }
    let code = u32::from(c);
    let zero = DIGIT_ZEROS[DIGIT_ZEROS
        .partition_point(|&zero| zero <= code)
        .checked_sub(1)?];
    // Below ten past its zero, so the value fits in a u8.
    (code - zero < 10).then(|| (code - zero) as u8)
}

/// The number a run of decimal digits spells, in any script.
fn number_of(digits: &str) -> Number {
    if digits.is_ascii() {
        return Number::from_digits(digits);
    }
    let ascii: String = digits
        .chars()
        .filter_map(decimal_digit)
        .map(|value| char::from(b'0' + value))
        .collect();
    Number::from_digits(&ascii)
}

/// A qualifier's rank: known ones by index, unknown ones after them, lexically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Qualifier {
    Known(u8),
    Unknown(Box<str>),
}

impl Qualifier {
    const RELEASE: Qualifier = Qualifier::Known(RELEASE_INDEX);

    /// Reads a run of non-digits; `followed_by_digit` says whether a digit comes next in the
    /// same `.`/`-` piece, which is what makes `a`, `b` and `m` short forms.
    fn new(text: &str, followed_by_digit: bool) -> Qualifier {
        let lower = lowercase(text);
        let name = match (lower.as_ref(), followed_by_digit) {
            ("cr", _) => "rc",
            ("ga" | "final" | "release", _) => "",
            ("a", true) => "alpha",
            ("b", true) => "beta",
            ("m", true) => "milestone",
            (name, _) => name,
        };
        match QUALIFIERS.iter().position(|known| *known == name) {
            // The list has seven entries, so the index fits in a u8.
            Some(index) => Qualifier::Known(index as u8),
            None => Qualifier::Unknown(name.into()),
        }
    }

    /// This qualifier against a `.0` padding token, which OSV ranks as the unknown
    /// qualifier `"0"`: after every known one but `sp`, before unknown ones that sort after
    /// `"0"`. `sp` is above the padding: osv-scanner pads it with the release qualifier
    /// instead, and Maven ranks `1.sp` above `1` (osv.dev's library, alone, below).
    fn compare_with_zero_padding(&self) -> Ordering {
        match self {
            Qualifier::Known(SERVICE_PACK_INDEX) => Ordering::Greater,
            Qualifier::Known(_) => Ordering::Less,
            Qualifier::Unknown(text) => text.as_ref().cmp("0"),
        }
    }
}

/// Lowercases without allocating when the text is already lowercase ASCII.
fn lowercase(text: &str) -> Cow<'_, str> {
    if !text.is_ascii() {
        Cow::Owned(text.to_lowercase())
    } else if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// The separator before a token; a digit/non-digit switch counts as a hyphen, and the first
/// token's (empty) prefix behaves exactly as a dot: it is only ever compared with another
/// first token, and trimming only looks for hyphens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Dot,
    Hyphen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Number(Number),
    Qualifier(Qualifier),
}

#[derive(Debug, Clone)]
struct Token {
    prefix: Prefix,
    value: Value,
}

impl Token {
    /// The nulls trimmed from the end: `0` (also an empty token) and the release qualifier.
    fn is_null(&self) -> bool {
        match &self.value {
            Value::Number(number) => number.is_zero(),
            Value::Qualifier(qualifier) => *qualifier == Qualifier::RELEASE,
        }
    }

    /// `.qualifier < -qualifier < -number < .number`, for tokens with different prefixes.
    fn kind_rank(&self) -> u8 {
        match (&self.value, self.prefix) {
            (Value::Qualifier(_), Prefix::Dot) => 0,
            (Value::Qualifier(_), Prefix::Hyphen) => 1,
            (Value::Number(_), Prefix::Hyphen) => 2,
            (Value::Number(_), Prefix::Dot) => 3,
        }
    }

    fn compare(&self, other: &Token) -> Ordering {
        if self.prefix != other.prefix {
            return self.kind_rank().cmp(&other.kind_rank());
        }
        match (&self.value, &other.value) {
            (Value::Number(a), Value::Number(b)) => a.cmp(b),
            (Value::Number(_), Value::Qualifier(_)) => Ordering::Greater,
            (Value::Qualifier(_), Value::Number(_)) => Ordering::Less,
            (Value::Qualifier(a), Value::Qualifier(b)) => a.cmp(b),
        }
    }

    /// This token against the null the shorter version is padded with, which takes this
    /// token's prefix: `.0` after a dot, the release qualifier after a hyphen. A padding zero
    /// is a number only against numbers; against qualifiers it ranks as the text `"0"`.
    fn compare_with_padding(&self) -> Ordering {
        match (&self.value, self.prefix) {
            (Value::Number(number), Prefix::Dot) => number.cmp(&Number::ZERO),
            (Value::Qualifier(qualifier), Prefix::Dot) => qualifier.compare_with_zero_padding(),
            (Value::Number(_), Prefix::Hyphen) => Ordering::Greater,
            (Value::Qualifier(qualifier), Prefix::Hyphen) => qualifier.cmp(&Qualifier::RELEASE),
        }
    }
}

/// Appends the tokens of one piece between `.`/`-` separators, split at digit switches.
fn push_piece(tokens: &mut Vec<Token>, prefix: Prefix, piece: &str) {
    if piece.is_empty() {
        tokens.push(Token {
            prefix,
            value: Value::Number(Number::ZERO),
        });
        return;
    }
    let mut prefix = prefix;
    let mut push_run = |text: &str, is_digits: bool, followed: bool| {
        let value = if is_digits {
            Value::Number(number_of(text))
        } else {
            Value::Qualifier(Qualifier::new(text, followed))
        };
        tokens.push(Token { prefix, value });
        prefix = Prefix::Hyphen;
    };
    // The current run of digits or of other characters: where it starts, and which it is.
    let (mut start, mut in_digits) = (0, false);
    for (index, c) in piece.char_indices() {
        let is_digit = decimal_digit(c).is_some();
        if index == 0 {
            in_digits = is_digit;
        } else if is_digit != in_digits {
            // A run of other characters ends where a digit follows it.
            push_run(&piece[start..index], in_digits, true);
            (start, in_digits) = (index, is_digit);
        }
    }
    push_run(&piece[start..], in_digits, false);
}

/// Splits a version into tokens (see the module doc).
fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut prefix = Prefix::Dot;
    let mut piece_start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let next_prefix = match byte {
            b'.' => Prefix::Dot,
            b'-' => Prefix::Hyphen,
            _ => continue,
        };
        push_piece(&mut tokens, prefix, &text[piece_start..index]);
        prefix = next_prefix;
        piece_start = index + 1;
    }
    push_piece(&mut tokens, prefix, &text[piece_start..]);
    tokens
}

/// Trims null tokens from the end, then again before each remaining hyphen, walking to the
/// start; the first token always stays, and a token that opens a hyphen group is not itself
/// trimmed once a non-null token follows it: `1.0-0.1.0` keeps `1-0.1`.
fn trim_nulls(tokens: &mut Vec<Token>) {
    // Removals go from the end to the start: at the end they pop, elsewhere they are noted
    // (descending) and done in one pass, so a long version trims in linear time.
    let mut removed: Vec<usize> = Vec::new();
    let mut index = tokens.len().saturating_sub(1);
    while index > 0 {
        if tokens[index].is_null() {
            if index + 1 == tokens.len() {
                tokens.pop();
            } else {
                removed.push(index);
            }
            index -= 1;
            continue;
        }
        while index > 0 && tokens[index].prefix != Prefix::Hyphen {
            index -= 1;
        }
        index = index.saturating_sub(1);
    }
    if !removed.is_empty() {
        let mut removed = removed.into_iter().rev().peekable();
        let mut position = 0;
        tokens.retain(|_| {
            let keep = removed.next_if_eq(&position).is_none();
            position += 1;
            keep
        });
    }
}

/// A parsed Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: Box<str>,
    tokens: Vec<Token>,
}

impl MavenVersion {
    /// Parses a version. Maven accepts any string; only a blank one is refused here.
    pub fn parse(text: &str) -> Result<MavenVersion, Error> {
        // Surrounding spaces are kept (they are part of a qualifier); a blank version, which
        // OSV would read as `0`, is refused as a likely data error.
        if text.trim().is_empty() {
            return Err(Error::invalid(
                Scheme::Maven,
                text,
                "version string is empty",
            ));
        }
        let mut tokens = tokenize(text);
        trim_nulls(&mut tokens);
        Ok(MavenVersion {
            text: text.into(),
            tokens,
        })
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn compare(&self, other: &MavenVersion) -> Ordering {
        let (ours, theirs) = (&self.tokens, &other.tokens);
        for index in 0..ours.len().max(theirs.len()) {
            let order = match (ours.get(index), theirs.get(index)) {
                (Some(left), Some(right)) => left.compare(right),
                (Some(left), None) => left.compare_with_padding(),
                (None, Some(right)) => right.compare_with_padding().reverse(),
                (None, None) => Ordering::Equal,
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

ord_from_compare!(MavenVersion);

impl FromStr for MavenVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<MavenVersion, Error> {
        MavenVersion::parse(text)
    }
}

impl fmt::Display for MavenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::MavenVersion;

    fn cmp(a: &str, b: &str) -> Ordering {
        MavenVersion::parse(a)
            .unwrap()
            .cmp(&MavenVersion::parse(b).unwrap())
    }

    #[test]
    fn tricky_cases() {
        let ordered = [
            "1-alpha",
            "1-beta",
            "1-milestone",
            "1-rc",
            "1-snapshot",
            "1",
            "1-sp",
            "1-abc",
            "1-1",
            "1.1",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        for (a, b) in [
            ("1", "1.0.0"),
            ("1", "1-0"),
            ("1.ga", "1"),
            ("1-final", "1"),
            ("1-release", "1"),
            ("1cr1", "1-rc-1"),
            ("1a1", "1-alpha-1"),
            ("1.0-SNAPSHOT", "1-snapshot"),
            ("1.0-0.1.0", "1-0.1"),
            ("1-0-1", "1-1"),
            ("007.1", "7.1"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} = {b}");
        }
        for (lower, higher) in [
            ("1-alpha", "1a"),
            ("6.1.0rc3", "6.1.0"),
            // The older Maven order OSV keeps: a dot before a qualifier is not a hyphen, and
            // zeros before a hyphen are trimmed while those before a dot stay.
            ("1-1", "2.0.a"),
            ("2.0.a", "2.0.0.a"),
            ("1.0-RC1", "1.0.RC1"),
            ("1.0.0-RC2", "1.0.0.RC1"),
            // Against a `.0` padding a qualifier ranks by the text "0": known ones and
            // punctuation below it, letters above.
            ("1.rc", "1"),
            ("1.+", "1"),
            ("1", "1.x"),
            // ... but `sp` follows the release there too, where osv-scanner and Maven 3.8/3.9
            // put it (osv.dev's Python library alone ranks `1.sp` below `1`).
            ("1", "1.sp"),
            ("1.0", "1.0.SP1"),
            ("1-ga", "1.sp.1"),
            ("1.0.0", "1.0.sp-1"),
            // Against a `-` padding it ranks as the release qualifier.
            ("1", "1-sp"),
            ("1-0", "1-0.1"),
            ("1.0.x", "1.0.1"),
        ] {
            assert_eq!(cmp(lower, higher), Ordering::Less, "{lower} < {higher}");
            assert_eq!(cmp(higher, lower), Ordering::Greater, "{higher} > {lower}");
        }
        // Decimal digits of other scripts are numbers (Maven's `Character.isDigit`, osv.dev's
        // `\d`; osv-scanner's Go alone reads them as letters); superscripts are not digits.
        for (a, b) in [
            ("1.\u{663}", "1.3"),
            ("1.\u{663}\u{660}", "1.30"),
            ("1a\u{663}", "1a3"),
            ("1\u{663}", "13"),
            ("\u{FF11}.\u{FF10}", "1"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} = {b}");
        }
        assert_eq!(cmp("1.x", "1.\u{663}"), Ordering::Less);
        assert_eq!(cmp("1.\u{B2}", "1.2"), Ordering::Less);
        // Long versions parse and compare in linear time; huge numbers compare by value.
        let long = "1-0".repeat(100_000);
        assert_eq!(cmp(&long, "1"), Ordering::Greater);
        assert_eq!(
            cmp(&"1-a".repeat(200), &"1-a".repeat(201)),
            Ordering::Greater
        );
        assert_eq!(
            cmp("12345678901234567890.1", "1234567890123456789.1"),
            Ordering::Greater
        );
        assert!(MavenVersion::parse(" ").is_err());
    }
}
