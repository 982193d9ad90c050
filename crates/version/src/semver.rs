//! Semantic versions: node-semver (loose), Cargo (strict) and Go module versions.
//!
//! All order by SemVer 2.0 precedence: `major.minor.patch` numerically, a version with a
//! pre-release before the same version without one, pre-release identifiers one by one
//! (numeric ones numerically and before alphanumeric ones, which compare as ASCII), and build
//! metadata ignored (except Pub). They differ in what they accept:
//!
//! - [`SemverVersion`] follows node-semver's `LOOSE` pattern, a superset of its strict one:
//!   surrounding whitespace, leading `v`, `=` and spaces, leading zeros, and a pre-release
//!   without its hyphen (`1.2.3beta`), down to what the regex's backtracking makes of odd
//!   input (`1.16.12.0` is `1.16.1-2.0`, `1.0.0-` is `1.0.0--`), as npm's semver 7.8 does.
//! - [`CargoVersion`] follows the `semver` crate: exactly `major.minor.patch[-pre][+build]`,
//!   no leading zeros in numbers.
//! - [`PubVersion`] follows Dart's pub_semver: numbers may have leading zeros, and build
//!   metadata is not ignored but breaks ties (no build first), as pub orders packages.
//! - [`GoVersion`] follows golang.org/x/mod/semver: `v` optional (OSV omits it), shorthand
//!   `v1` and `v1.2` without pre-release or build, `+incompatible` as build metadata.
//!   Pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`) are ordinary pre-releases.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// One pre-release identifier: numbers sort before alphanumeric identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    Number(Number),
    Text(Box<str>),
}

/// The parts shared by the three flavours.
#[derive(Debug, Clone)]
struct Parts {
    major: Number,
    minor: Number,
    patch: Number,
    pre: Box<[Identifier]>,
    build: Box<str>,
}

impl Parts {
    fn compare(&self, other: &Parts) -> Ordering {
        self.major
            .cmp(&other.major)
            .then_with(|| self.minor.cmp(&other.minor))
            .then_with(|| self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }

    /// pub_semver's tie-break: no build sorts first, then builds compare like pre-releases.
    fn compare_build(&self, other: &Parts) -> Ordering {
        let identifiers = |build: &str| -> Vec<Identifier> {
            build
                .split('.')
                .filter(|identifier| !identifier.is_empty())
                .map(|identifier| {
                    if identifier.bytes().all(|byte| byte.is_ascii_digit()) {
                        Identifier::Number(Number::from_digits(identifier))
                    } else {
                        Identifier::Text(identifier.into())
                    }
                })
                .collect()
        };
        identifiers(&self.build).cmp(&identifiers(&other.build))
    }
}

impl fmt::Display for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (index, identifier) in self.pre.iter().enumerate() {
            f.write_str(if index == 0 { "-" } else { "." })?;
            match identifier {
                Identifier::Number(number) => write!(f, "{number}")?,
                Identifier::Text(text) => f.write_str(text)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// JavaScript's `Number.MAX_SAFE_INTEGER`, node-semver's limit for version numbers.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Which grammar to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    NodeLoose,
    Cargo,
    Go,
    Pub,
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-'
}

/// Parses a main version number; `strict` forbids leading zeros.
fn parse_number(digits: &str, strict: bool) -> Result<Number, &'static str> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("version numbers must be digits");
    }
    if strict && digits.len() > 1 && digits.starts_with('0') {
        return Err("version numbers must not have leading zeros");
    }
    Ok(Number::from_digits(digits))
}

fn parse_pre(pre: &str, flavour: Flavour) -> Result<Box<[Identifier]>, &'static str> {
    let mut identifiers = Vec::new();
    for identifier in pre.split('.') {
        if identifier.is_empty() || !identifier.bytes().all(is_identifier_byte) {
            return Err("pre-release identifiers must be non-empty [0-9A-Za-z-]");
        }
        if identifier.bytes().all(|byte| byte.is_ascii_digit()) {
            if matches!(flavour, Flavour::Cargo | Flavour::Go)
                && identifier.len() > 1
                && identifier.starts_with('0')
            {
                return Err("numeric pre-release identifiers must not have leading zeros");
            }
            identifiers.push(Identifier::Number(Number::from_digits(identifier)));
        } else {
            identifiers.push(Identifier::Text(identifier.into()));
        }
    }
    Ok(identifiers.into_boxed_slice())
}

fn parse_build(build: &str) -> Result<Box<str>, &'static str> {
    if build
        .split('.')
        .any(|identifier| identifier.is_empty() || !identifier.bytes().all(is_identifier_byte))
    {
        return Err("build identifiers must be non-empty [0-9A-Za-z-]");
    }
    Ok(build.into())
}

/// Splits `rest` (the version without prefix and build) into main version and pre-release the
/// way node-semver's LOOSE regular expression does when more numbers follow the patch.
///
/// LOOSE's hyphen before the pre-release is optional, so where `\d+` for the patch cannot
/// be followed by the rest (`1.16.12.0`), the regex engine backtracks and gives the patch's
/// last digit to the pre-release: npm reads `1.16.12.0` as `1.16.1-2.0`. `main` is the
/// leading run of digits and dots; the split is unchanged unless it holds four or more
/// numbers and the patch has a digit to give.
fn backtrack_loose_patch<'a>(rest: &'a str, main: &'a str) -> (&'a str, &'a str) {
    let mut dots = main.match_indices('.').map(|(index, _)| index);
    let (Some(_), Some(second_dot), Some(third_dot)) = (dots.next(), dots.next(), dots.next())
    else {
        return (main, &rest[main.len()..]);
    };
    if third_dot - second_dot > 2 {
        // The patch keeps all its digits but the last, which opens the pre-release.
        rest.split_at(third_dot - 1)
    } else {
        (main, &rest[main.len()..])
    }
}

fn parse_parts(text: &str, flavour: Flavour) -> Result<Parts, &'static str> {
    let mut rest = text;
    match flavour {
        Flavour::NodeLoose => {
            // node-semver trims, then LOOSE allows any run of `v`, `=` and whitespace first.
            rest = rest
                .trim()
                .trim_start_matches(|c: char| c == 'v' || c == '=' || c.is_whitespace());
        }
        Flavour::Go => rest = rest.strip_prefix('v').unwrap_or(rest),
        Flavour::Cargo | Flavour::Pub => {}
    }
    // node-semver refuses strings longer than 256 characters.
    if flavour == Flavour::NodeLoose && text.len() > 256 {
        return Err("version is longer than 256 characters");
    }
    let (rest, build) = match rest.split_once('+') {
        Some((rest, build)) => (rest, parse_build(build)?),
        None => (rest, Box::from("")),
    };
    let main_end = rest
        .bytes()
        .position(|byte| !(byte.is_ascii_digit() || byte == b'.'))
        .unwrap_or(rest.len());
    let (mut main, mut pre) = rest.split_at(main_end);
    if flavour == Flavour::NodeLoose {
        (main, pre) = backtrack_loose_patch(rest, main);
    }
    let pre = match (pre.strip_prefix('-'), flavour) {
        // LOOSE's hyphen is optional and `-` is an identifier character, so where nothing
        // but a dot follows it, the regex backtracks and the hyphen is the identifier
        // (`1.0.0-` is `1.0.0--`, `1.0.0-.a` is `1.0.0--.a`).
        (Some(rest), Flavour::NodeLoose) if rest.is_empty() || rest.starts_with('.') => {
            parse_pre(pre, flavour)?
        }
        (Some(pre), _) => parse_pre(pre, flavour)?,
        (None, _) if pre.is_empty() => Box::default(),
        // Loose mode lets the pre-release follow the patch number directly (`1.2.3beta`).
        (None, Flavour::NodeLoose) => parse_pre(pre, flavour)?,
        (None, _) => return Err("expected `-` before the pre-release"),
    };
    let numbers: Vec<&str> = main.split('.').collect();
    // pub_semver, like node-semver's loose mode, reads numbers with leading zeros.
    let strict = matches!(flavour, Flavour::Cargo | Flavour::Go);
    let parse_number = |digits: &str, strict: bool| {
        let number = parse_number(digits, strict)?;
        // node-semver refuses numbers above Number.MAX_SAFE_INTEGER.
        if flavour == Flavour::NodeLoose && number > Number::Small(MAX_SAFE_INTEGER) {
            return Err("version number is larger than 2^53 - 1");
        }
        // The semver crate keeps each number in a u64.
        if flavour == Flavour::Cargo && !matches!(number, Number::Small(_)) {
            return Err("version number is larger than 2^64 - 1");
        }
        Ok(number)
    };
    let (major, minor, patch) = match numbers.as_slice() {
        [major, minor, patch] => (
            parse_number(major, strict)?,
            parse_number(minor, strict)?,
            parse_number(patch, strict)?,
        ),
        // Go accepts the shorthands `v1` and `v1.2`, but only bare.
        [major] if flavour == Flavour::Go && pre.is_empty() && build.is_empty() => {
            (parse_number(major, strict)?, Number::ZERO, Number::ZERO)
        }
        [major, minor] if flavour == Flavour::Go && pre.is_empty() && build.is_empty() => (
            parse_number(major, strict)?,
            parse_number(minor, strict)?,
            Number::ZERO,
        ),
        _ => return Err("expected major.minor.patch"),
    };
    Ok(Parts {
        major,
        minor,
        patch,
        pre,
        build,
    })
}

macro_rules! semver_flavour {
    ($(#[$doc:meta])* $name:ident, $flavour:expr, $scheme:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            parts: Parts,
        }

        impl $name {
            /// Parses a version in this flavour's grammar (see the module docs).
            pub fn parse(text: &str) -> Result<$name, Error> {
                parse_parts(text, $flavour)
                    .map(|parts| $name { parts })
                    .map_err(|reason| Error::invalid($scheme, text, reason))
            }

            /// Whether the version has a pre-release part.
            pub fn is_prerelease(&self) -> bool {
                !self.parts.pre.is_empty()
            }

            /// The build metadata, empty when absent; it never affects the ordering.
            pub fn build(&self) -> &str {
                &self.parts.build
            }

            fn compare(&self, other: &$name) -> Ordering {
                let order = self.parts.compare(&other.parts);
                if $flavour == Flavour::Pub && order == Ordering::Equal {
                    return self.parts.compare_build(&other.parts);
                }
                order
            }
        }

        ord_from_compare!($name);

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<$name, Error> {
                $name::parse(text)
            }
        }

        impl fmt::Display for $name {
            /// Prints the canonical `major.minor.patch[-pre][+build]`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.parts.fmt(f)
            }
        }
    };
}

semver_flavour!(
    /// A semantic version as node-semver parses it in loose mode (npm, Hex, Pub, ...).
    SemverVersion,
    Flavour::NodeLoose,
    Scheme::Semver
);
semver_flavour!(
    /// A semantic version as Cargo's `semver` crate parses it (crates.io).
    CargoVersion,
    Flavour::Cargo,
    Scheme::Cargo
);
semver_flavour!(
    /// A Dart package version as pub_semver orders it: build metadata breaks ties
    /// (`1.0.0 < 1.0.0+1 < 1.0.0+2`).
    PubVersion,
    Flavour::Pub,
    Scheme::Pub
);
semver_flavour!(
    /// A Go module version (`v1.2.3`, `v2.0.0+incompatible`, pseudo-versions).
    GoVersion,
    Flavour::Go,
    Scheme::Go
);

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::{CargoVersion, GoVersion, PubVersion, SemverVersion};

    fn node(a: &str, b: &str) -> Ordering {
        SemverVersion::parse(a)
            .unwrap()
            .cmp(&SemverVersion::parse(b).unwrap())
    }

    fn go(a: &str, b: &str) -> Ordering {
        GoVersion::parse(a)
            .unwrap()
            .cmp(&GoVersion::parse(b).unwrap())
    }

    #[test]
    fn node_tricky_cases() {
        // The semver.org precedence example, in order.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(node(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        assert_eq!(node("1.2.3+a", "1.2.3+b"), Ordering::Equal);
        assert_eq!(node(" =v1.2.3 ", "1.2.3"), Ordering::Equal);
        assert_eq!(node("1.2.3beta", "1.2.3-beta"), Ordering::Equal);
        assert_eq!(node("01.2.3", "1.2.3"), Ordering::Equal);
        assert_eq!(node("1.2.3-B", "1.2.3-a"), Ordering::Less);
        assert_eq!(node("1.2.3-1", "1.2.3-a"), Ordering::Less);
        // npm's regex backtracking: `1.16.12.0` is `1.16.1-2.0`, `1.0.0-` is `1.0.0--`.
        assert_eq!(node("1.16.12.0", "1.16.1-2.0"), Ordering::Equal);
        assert_eq!(node("1.0.0-", "1.0.0--"), Ordering::Equal);
        assert_eq!(node("1.0.0-.a", "1.0.0--.a"), Ordering::Equal);
        for text in [
            "1.2",
            "1.2.3.4",
            "1.2.3-a.",
            "1.2.3-a..b",
            "1.2.3+",
            "x.y.z",
            "",
        ] {
            assert!(
                SemverVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn cargo_tricky_cases() {
        let cargo = |text| CargoVersion::parse(text);
        assert_eq!(
            cargo("1.0.0-alpha.1")
                .unwrap()
                .cmp(&cargo("1.0.0-alpha.beta").unwrap()),
            Ordering::Less
        );
        assert_eq!(
            cargo("1.0.0+build.5")
                .unwrap()
                .cmp(&cargo("1.0.0").unwrap()),
            Ordering::Equal
        );
        for text in ["v1.0.0", "01.0.0", "1.0.0-01", "1.0", " 1.0.0", "1.0.0beta"] {
            assert!(cargo(text).is_err(), "{text:?} should be invalid");
        }
        assert!(cargo("1.0.0+001").is_ok());
    }

    #[test]
    fn go_tricky_cases() {
        assert_eq!(go("v1", "v1.0.0"), Ordering::Equal);
        assert_eq!(go("v1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(go("v2.0.0+incompatible", "v2.0.0"), Ordering::Equal);
        assert_eq!(
            go(
                "v0.0.0-20191109021931-daa7c04131f5",
                "v0.0.0-20200101000000-aaaaaaaaaaaa"
            ),
            Ordering::Less
        );
        assert_eq!(
            go("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4"),
            Ordering::Less
        );
        assert_eq!(
            go("v1.2.3", "v1.2.4-0.20191109021931-daa7c04131f5"),
            Ordering::Less
        );
        assert_eq!(go("0", "v0.0.1"), Ordering::Less);
        for text in ["v1.2-pre", "v01.2.3", "v1.2.3.4", "vv1.2.3"] {
            assert!(
                GoVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn pub_tricky_cases() {
        let pub_cmp = |a: &str, b: &str| {
            PubVersion::parse(a)
                .unwrap()
                .cmp(&PubVersion::parse(b).unwrap())
        };
        assert_eq!(pub_cmp("1.0.0", "1.0.0+1"), Ordering::Less);
        assert_eq!(pub_cmp("1.0.0+1", "1.0.0+2"), Ordering::Less);
        assert_eq!(pub_cmp("1.0.0+2", "1.0.0+10"), Ordering::Less);
        assert_eq!(pub_cmp("1.0.0+1", "1.0.1-dev"), Ordering::Less);
        assert_eq!(pub_cmp("1.0.0-dev", "1.0.0"), Ordering::Less);
        assert_eq!(pub_cmp("01.0.0", "1.0.0"), Ordering::Equal);
        assert!(PubVersion::parse("v1.0.0").is_err());
    }
}
