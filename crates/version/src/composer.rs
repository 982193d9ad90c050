//! Composer (Packagist) versions: normalised by composer/semver, ordered by PHP.
//!
//! A version is first normalised as composer/semver's `VersionParser::normalize` does
//! (`v1.2` → `1.2.0.0`, `1.0-b2` → `1.0.0.0-beta2`, `1.x-dev` →
//! `1.9999999.9999999.9999999-dev`, `dev-main` stays a branch), then two normalised versions
//! are compared with PHP's `version_compare`, as Composer's `Comparator` does:
//! `dev < alpha = a < beta = b < RC = rc <` (number) `< pl = p`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{cmp_digits, ord_from_compare};
use crate::{Error, Scheme};

/// A parsed Composer version.
#[derive(Debug, Clone)]
pub struct ComposerVersion {
    normalized: Box<str>,
    /// `normalized` as PHP canonicalises it before comparing, computed once.
    canonical: Box<[u8]>,
}

impl ComposerVersion {
    /// Normalises a version string; fails where composer/semver throws.
    pub fn parse(text: &str) -> Result<ComposerVersion, Error> {
        normalize(text)
            .map(|normalized| ComposerVersion {
                canonical: canonicalize(normalized.as_bytes()).into_boxed_slice(),
                normalized: normalized.into(),
            })
            .ok_or_else(|| Error::invalid(Scheme::Composer, text, "invalid version string"))
    }

    /// The normalised form, as `VersionParser::normalize` returns it.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Whether this is a branch (`dev-main`) rather than a version.
    pub fn is_branch(&self) -> bool {
        self.normalized.starts_with("dev-")
    }

    fn compare(&self, other: &ComposerVersion) -> Ordering {
        // A normalised version never starts with `#` and is never empty, so PHP would
        // canonicalise both sides first: start from the stored canonical forms.
        compare_canonical(&self.canonical, &other.canonical)
    }
}

ord_from_compare!(ComposerVersion);

impl FromStr for ComposerVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<ComposerVersion, Error> {
        ComposerVersion::parse(text)
    }
}

impl fmt::Display for ComposerVersion {
    /// Prints the normalised form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

/// `VersionParser::normalize`; `None` where it throws.
fn normalize(text: &str) -> Option<String> {
    let mut version = text.trim();
    // Strip an alias: `1.0 as 2.0`.
    let words: Vec<&str> = version.split(' ').filter(|word| !word.is_empty()).collect();
    if let [first, "as", second] = words.as_slice()
        && !version.contains(|c: char| c.is_whitespace() && c != ' ')
        && ![first, second].iter().any(|word| word.contains(','))
    {
        version = first;
    }
    // Strip a stability flag: `1.0@beta`.
    if let Some((rest, flag)) = version.rsplit_once('@')
        && ["stable", "rc", "beta", "alpha", "dev"].contains(&flag.to_ascii_lowercase().as_str())
    {
        version = rest;
    }
    if ["master", "trunk", "default"].contains(&version) {
        return Some(format!("dev-{version}"));
    }
    if version
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("dev-"))
    {
        return Some(format!("dev-{}", &version[4..]));
    }
    // Strip build metadata: `1.0+build`.
    if let Some((rest, build)) = version.split_once('+')
        && !rest.is_empty()
        && !rest.contains(|c: char| c == ',' || c.is_whitespace())
        && !build.is_empty()
        && !build.contains(char::is_whitespace)
    {
        version = rest;
    }
    if let Some(normalized) = classical(version).or_else(|| date_based(version)) {
        return Some(normalized);
    }
    // A numeric branch: `1.x-dev`, `2.1.*-dev`.
    // `(.*?)[.-]?dev$`: the lazy stem leaves out a separator before `dev`.
    let stem_len = version.len().checked_sub(3)?;
    if !version
        .get(stem_len..)
        .is_some_and(|suffix| suffix.eq_ignore_ascii_case("dev"))
    {
        return None;
    }
    let stem = &version[..stem_len];
    normalize_branch(stem.strip_suffix(['.', '-']).unwrap_or(stem))
}

fn strip_v(text: &str) -> &str {
    text.strip_prefix(['v', 'V']).unwrap_or(text)
}

fn digits_end(bytes: &[u8], from: usize) -> usize {
    let mut end = from;
    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    end
}

/// `^v?(\d{1,5}+)(\.\d++)?(\.\d++)?(\.\d++)?<modifier>$`.
fn classical(version: &str) -> Option<String> {
    let text = strip_v(version);
    let bytes = text.as_bytes();
    let first_end = digits_end(bytes, 0);
    if first_end == 0 || first_end > 5 {
        return None;
    }
    let mut normalized = text[..first_end].to_owned();
    let mut pos = first_end;
    let mut count = 1;
    while count < 4 && bytes.get(pos) == Some(&b'.') {
        let end = digits_end(bytes, pos + 1);
        if end == pos + 1 {
            break;
        }
        normalized.push_str(&text[pos..end]);
        pos = end;
        count += 1;
    }
    for _ in count..4 {
        normalized.push_str(".0");
    }
    apply_modifier(normalized, &text[pos..])
}

/// `^v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})<modifier>$`, trying the longest
/// date first as the regex does.
fn date_based(version: &str) -> Option<String> {
    let text = strip_v(version);
    let bytes = text.as_bytes();
    if digits_end(bytes, 0) < 4 {
        return None;
    }
    let mut ends = Vec::new();
    date_ends(bytes, 4, 0, 0, &mut ends);
    ends.sort_unstable_by(|a, b| b.cmp(a));
    ends.dedup();
    ends.into_iter().find_map(|end| {
        let date: String = text[..end]
            .chars()
            .map(|c| if c.is_ascii_digit() { c } else { '.' })
            .collect();
        apply_modifier(date, &text[end..])
    })
}

/// Collects every end of `(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2}` from `pos`.
fn date_ends(bytes: &[u8], pos: usize, pairs: usize, tails: usize, ends: &mut Vec<usize>) {
    if pairs >= 1 {
        ends.push(pos);
    }
    for separator in [true, false] {
        let start = match (separator, bytes.get(pos)) {
            (true, Some(b'.' | b':' | b'-')) => pos + 1,
            (true, _) => continue,
            (false, _) => pos,
        };
        let available = digits_end(bytes, start) - start;
        if tails == 0 && pairs < 6 && available >= 2 {
            date_ends(bytes, start + 2, pairs + 1, 0, ends);
        }
        if pairs >= 1 && tails < 2 {
            for width in 1..=available.min(3) {
                date_ends(bytes, start + width, pairs, tails + 1, ends);
            }
        }
    }
}

/// `[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?$`.
fn apply_modifier(mut version: String, rest: &str) -> Option<String> {
    let lowercase = rest.to_ascii_lowercase();
    let mut tail = lowercase.as_str();
    // The leading separator is optional; try with it first, as the regex does.
    let candidates = match tail.strip_prefix(['.', '_', '-']) {
        Some(stripped) => vec![stripped, tail],
        None => vec![tail],
    };
    for candidate in candidates {
        tail = candidate;
        let mut label = None;
        for name in [
            "stable", "beta", "b", "rc", "alpha", "a", "patch", "pl", "p",
        ] {
            if let Some(after) = tail.strip_prefix(name) {
                label = Some(name);
                tail = after;
                break;
            }
        }
        let mut numbers = String::new();
        if label.is_some() {
            loop {
                let after_separator = tail.strip_prefix(['.', '-']).unwrap_or(tail);
                let end = digits_end(after_separator.as_bytes(), 0);
                if end == 0 {
                    break;
                }
                numbers.push_str(&tail[..tail.len() - after_separator.len() + end]);
                tail = &after_separator[end..];
            }
        }
        let dev = match tail.strip_prefix(['.', '-']).unwrap_or(tail) {
            "dev" => true,
            _ if tail.is_empty() => false,
            _ => continue,
        };
        if let Some(label) = label {
            if label == "stable" {
                return Some(version);
            }
            let expanded = match label {
                "a" => "alpha",
                "b" => "beta",
                "p" | "pl" => "patch",
                "rc" => "RC",
                other => other,
            };
            version.push('-');
            version.push_str(expanded);
            version.push_str(numbers.trim_start_matches(['.', '-']));
        }
        if dev {
            version.push_str("-dev");
        }
        return Some(version);
    }
    None
}

/// `VersionParser::normalizeBranch`, keeping only numeric branches (`1.x` → `1.9999999...`).
fn normalize_branch(name: &str) -> Option<String> {
    let text = strip_v(name.trim());
    let mut parts = text.split('.');
    let first = parts.next()?;
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut normalized = first.to_owned();
    let mut count = 1;
    for part in parts {
        count += 1;
        let wildcard = matches!(part, "x" | "X" | "*");
        if count > 4
            || !(wildcard || (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())))
        {
            return None;
        }
        normalized.push('.');
        normalized.push_str(if wildcard { "9999999" } else { part });
    }
    for _ in count..4 {
        normalized.push_str(".9999999");
    }
    normalized.push_str("-dev");
    Some(normalized)
}

/// PHP's `php_canonicalize_version`: `-_+` become `.`, and a `.` separates digits from
/// non-digits.
fn canonicalize(version: &[u8]) -> Vec<u8> {
    let is_digit = |byte: u8| byte.is_ascii_digit();
    let is_non_digit = |byte: u8| !byte.is_ascii_digit() && byte != b'.';
    let mut out = Vec::with_capacity(version.len() + 4);
    let Some((&first, rest)) = version.split_first() else {
        return out;
    };
    out.push(first);
    let mut previous = first;
    for &byte in rest {
        let last_out = out.last().copied().unwrap_or(0);
        if matches!(byte, b'-' | b'_' | b'+') {
            if last_out != b'.' {
                out.push(b'.');
            }
        } else if (is_non_digit(previous) && is_digit(byte))
            || (is_digit(previous) && is_non_digit(byte))
        {
            if last_out != b'.' {
                out.push(b'.');
            }
            out.push(byte);
        } else if !byte.is_ascii_alphanumeric() {
            if last_out != b'.' {
                out.push(b'.');
            }
        } else {
            out.push(byte);
        }
        previous = byte;
    }
    out
}

/// PHP's `compare_special_version_forms`: the rank of the first special form that prefixes
/// the element.
fn special_form_rank(form: &[u8]) -> i32 {
    const FORMS: [(&[u8], i32); 10] = [
        (b"dev", 0),
        (b"alpha", 1),
        (b"a", 1),
        (b"beta", 2),
        (b"b", 2),
        (b"RC", 3),
        (b"rc", 3),
        (b"#", 4),
        (b"pl", 5),
        (b"p", 5),
    ];
    FORMS
        .iter()
        .find(|(name, _)| form.starts_with(name))
        .map_or(-1, |(_, rank)| *rank)
}

/// PHP's `php_version_compare`.
fn php_version_compare(a: &[u8], b: &[u8]) -> Ordering {
    if a.is_empty() || b.is_empty() {
        return (!a.is_empty()).cmp(&!b.is_empty());
    }
    let v1 = if a[0] == b'#' {
        a.to_vec()
    } else {
        canonicalize(a)
    };
    let v2 = if b[0] == b'#' {
        b.to_vec()
    } else {
        canonicalize(b)
    };
    compare_canonical(&v1, &v2)
}

/// The body of `php_version_compare`, on canonical forms.
fn compare_canonical(v1: &[u8], v2: &[u8]) -> Ordering {
    let find_dot = |v: &[u8], from: usize| {
        v.get(from..)
            .and_then(|rest| rest.iter().position(|byte| *byte == b'.'))
            .map(|offset| from + offset)
    };
    let (mut p1, mut p2) = (0, 0);
    // C starts `n1`/`n2` non-null so that the loop runs at least once.
    let (mut n1, mut n2) = (Some(0), Some(0));
    let mut compare = Ordering::Equal;
    while p1 < v1.len() && p2 < v2.len() && n1.is_some() && n2.is_some() {
        n1 = find_dot(v1, p1);
        n2 = find_dot(v2, p2);
        let e1 = v1.get(p1..n1.unwrap_or(v1.len())).unwrap_or_default();
        let e2 = v2.get(p2..n2.unwrap_or(v2.len())).unwrap_or_default();
        let digit1 = e1.first().is_some_and(u8::is_ascii_digit);
        let digit2 = e2.first().is_some_and(u8::is_ascii_digit);
        compare = match (digit1, digit2) {
            (true, true) => cmp_digits(
                std::str::from_utf8(e1).unwrap_or(""),
                std::str::from_utf8(e2).unwrap_or(""),
            ),
            (false, false) => special_form_rank(e1).cmp(&special_form_rank(e2)),
            (true, false) => special_form_rank(b"#N#").cmp(&special_form_rank(e2)),
            (false, true) => special_form_rank(e1).cmp(&special_form_rank(b"#N#")),
        };
        if compare != Ordering::Equal {
            break;
        }
        if let Some(n) = n1 {
            p1 = n + 1;
        }
        if let Some(n) = n2 {
            p2 = n + 1;
        }
    }
    if compare == Ordering::Equal {
        let rest1 = v1.get(p1..).unwrap_or_default();
        let rest2 = v2.get(p2..).unwrap_or_default();
        if n1.is_some() {
            compare = if rest1.first().is_some_and(u8::is_ascii_digit) {
                Ordering::Greater
            } else {
                php_version_compare(rest1, b"#N#")
            };
        } else if n2.is_some() {
            compare = if rest2.first().is_some_and(u8::is_ascii_digit) {
                Ordering::Less
            } else {
                php_version_compare(b"#N#", rest2)
            };
        }
    }
    compare
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::{ComposerVersion, php_version_compare};

    fn normalized(text: &str) -> String {
        ComposerVersion::parse(text)
            .unwrap()
            .normalized()
            .to_owned()
    }

    fn cmp(a: &str, b: &str) -> Ordering {
        ComposerVersion::parse(a)
            .unwrap()
            .cmp(&ComposerVersion::parse(b).unwrap())
    }

    #[test]
    fn normalization() {
        // Cases from composer/semver's VersionParserTest::successfulNormalizedVersions.
        for (input, expected) in [
            ("1.0.0", "1.0.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
            ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0-rc1", "1.0.0.0-RC1"),
            ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"),
            ("1.0-dev", "1.0.0.0-dev"),
            ("0", "0.0.0.0"),
            ("10.4.13-beta", "10.4.13.0-beta"),
            ("10.4.13beta2", "10.4.13.0-beta2"),
            ("10.4.13beta.2", "10.4.13.0-beta2"),
            ("v1.13.11-beta.0", "1.13.11.0-beta0"),
            ("10.4.13-b", "10.4.13.0-beta"),
            ("10.4.13-b5", "10.4.13.0-beta5"),
            ("v1.0.0", "1.0.0.0"),
            ("v20100102", "20100102"),
            ("2010.01", "2010.01.0.0"),
            ("2010.01.02", "2010.01.02.0"),
            ("2010.1.555", "2010.1.555.0"),
            ("20150920.0.0", "20150920.0.0"),
            ("1.0.0-alpha-2.1-3+foo", "1.0.0.0-alpha2.1-3"),
            ("1.0.0-beta.5+foo", "1.0.0.0-beta5"),
            ("2010-01-02", "2010.01.02"),
            ("2010-01-02.5", "2010.01.02.5"),
            ("20100102-203040", "20100102.203040"),
            ("20100102203040-10", "20100102203040.10"),
            ("20100102-203040-p1", "20100102.203040-patch1"),
            ("dev-master", "dev-master"),
            ("master", "dev-master"),
            ("dev-trunk", "dev-trunk"),
            ("1.x-dev", "1.9999999.9999999.9999999-dev"),
            ("dev-feature-foo", "dev-feature-foo"),
            ("DEV-FOOBAR", "dev-FOOBAR"),
            ("dev-feature/foo", "dev-feature/foo"),
            ("dev-feature+issue-1", "dev-feature+issue-1"),
            ("1.0.0+foo", "1.0.0.0"),
            ("1.0.0-rc1+foo", "1.0.0.0-RC1"),
            ("1.0.0+foo as 2.0", "1.0.0.0"),
            ("1.0.0-alpha.3.1+foo", "1.0.0.0-alpha3.1"),
            ("1.0.0@dev", "1.0.0.0"),
            ("00.01.03.04", "00.01.03.04"),
            ("000.001.003.004", "000.001.003.004"),
            ("0.0.0.0", "0.0.0.0"),
        ] {
            assert_eq!(normalized(input), expected, "normalize({input:?})");
        }
        for input in [
            "",
            "a",
            "1.0.0-meh",
            "1.0.0.0.0",
            "feature-foo",
            "1.0 .2",
            "1.0.0+foo bar",
        ] {
            assert!(
                ComposerVersion::parse(input).is_err(),
                "{input:?} should be invalid"
            );
        }
    }

    #[test]
    fn php_order() {
        let php = |a: &str, b: &str| php_version_compare(a.as_bytes(), b.as_bytes());
        assert_eq!(php("1.0.0", "1.0.0.0"), Ordering::Less);
        assert_eq!(php("1.0-dev", "1.0-alpha"), Ordering::Less);
        assert_eq!(php("1.0rc1", "1.0"), Ordering::Less);
        assert_eq!(php("1.0pl1", "1.0"), Ordering::Greater);
        assert_eq!(php("1.0", "1.0.1"), Ordering::Less);
        assert_eq!(php("1.0-foo", "1.0-dev"), Ordering::Less);
    }

    #[test]
    fn tricky_cases() {
        assert_eq!(cmp("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(cmp("v1.0.0", "1.0.0"), Ordering::Equal);
        assert_eq!(cmp("1.0.0-beta1", "1.0.0-alpha2"), Ordering::Greater);
        assert_eq!(cmp("1.0.0-RC1", "1.0.0"), Ordering::Less);
        assert_eq!(cmp("1.0.0-p1", "1.0.0"), Ordering::Greater);
        assert_eq!(cmp("1.0.0-dev", "1.0.0-alpha"), Ordering::Less);
        assert_eq!(cmp("1.0.10", "1.0.9"), Ordering::Greater);
    }
}
