//! Versions that are only numbers: Haskell's PVP (Hackage, GHC) and R's package versions
//! (CRAN, Bioconductor).
//!
//! Both compare their numbers one by one, numerically. They differ in what they accept and
//! in what a missing number means:
//!
//! - [`PvpVersion`] follows Cabal's `Version` (`Distribution.Types.Version`): numbers
//!   separated by `.`, each without leading zeros and of at most nine digits; versions order
//!   as lists, so a prefix sorts first and trailing zeros count (`1.0 < 1.0.0`).
//! - [`CranVersion`] follows R's `package_version`: at least two numbers separated by `.` or
//!   `-` (`1.3-2` is `[1, 3, 2]`), leading zeros allowed (`1.01 = 1.1`), each within R's
//!   integer range, no surrounding whitespace; a missing number counts as zero
//!   (`1.0 = 1.0-0 = 1.0.0`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// The numbers of a version, in order.
#[derive(Debug, Clone)]
struct Numbers(Box<[Number]>);

impl Numbers {
    /// The numbers without trailing zeros, so that slice order pads with zeros.
    fn significant(&self) -> &[Number] {
        let end = self
            .0
            .iter()
            .rposition(|number| !number.is_zero())
            .map_or(0, |last| last + 1);
        &self.0[..end]
    }
}

impl fmt::Display for Numbers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, number) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            write!(f, "{number}")?;
        }
        Ok(())
    }
}

/// Splits `text` at any of `separators` into numbers, checking each run of digits.
fn split_numbers(
    text: &str,
    separators: &[char],
    check: fn(&str) -> Result<(), &'static str>,
) -> Result<Numbers, &'static str> {
    let mut numbers = Vec::new();
    for part in text.split(separators) {
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err("every part must be a number");
        }
        check(part)?;
        numbers.push(Number::from_digits(part));
    }
    Ok(Numbers(numbers.into_boxed_slice()))
}

/// A Haskell package version (Hackage, GHC), as Cabal parses and orders it.
#[derive(Debug, Clone)]
pub struct PvpVersion {
    numbers: Numbers,
}

impl PvpVersion {
    /// Parses `1.2.3`: numbers separated by dots, no leading zeros, at most nine digits each.
    pub fn parse(text: &str) -> Result<PvpVersion, Error> {
        fn check(digits: &str) -> Result<(), &'static str> {
            if digits.len() > 1 && digits.starts_with('0') {
                return Err("numbers must not have leading zeros");
            }
            if digits.len() > 9 {
                return Err("numbers have at most nine digits");
            }
            Ok(())
        }
        split_numbers(text, &['.'], check)
            .map(|numbers| PvpVersion { numbers })
            .map_err(|reason| Error::invalid(Scheme::Pvp, text, reason))
    }

    fn compare(&self, other: &PvpVersion) -> Ordering {
        // Slices order element by element, then a prefix first: Cabal's list order.
        self.numbers.0.cmp(&other.numbers.0)
    }
}

/// An R package version (CRAN, Bioconductor), as `package_version` parses and orders it.
#[derive(Debug, Clone)]
pub struct CranVersion {
    numbers: Numbers,
}

impl CranVersion {
    /// Parses `1.3-2` or `0.10.1`: two or more numbers separated by `.` or `-`.
    pub fn parse(text: &str) -> Result<CranVersion, Error> {
        fn check(digits: &str) -> Result<(), &'static str> {
            // R reads each number with as.integer, which gives NA past 2^31 - 1.
            if Number::from_digits(digits) > Number::Small(i32::MAX as u64) {
                return Err("numbers must be at most 2147483647");
            }
            Ok(())
        }
        let invalid = |reason| Error::invalid(Scheme::Cran, text, reason);
        let numbers = split_numbers(text, &['.', '-'], check).map_err(invalid)?;
        if numbers.0.len() < 2 {
            return Err(invalid("a package version has at least two numbers"));
        }
        Ok(CranVersion { numbers })
    }

    fn compare(&self, other: &CranVersion) -> Ordering {
        self.numbers.significant().cmp(other.numbers.significant())
    }
}

macro_rules! numeric_traits {
    ($name:ident) => {
        ord_from_compare!($name);

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<$name, Error> {
                $name::parse(text)
            }
        }

        impl fmt::Display for $name {
            /// Prints the numbers joined by dots, without leading zeros.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.numbers.fmt(f)
            }
        }
    };
}

numeric_traits!(PvpVersion);
numeric_traits!(CranVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn pvp(a: &str, b: &str) -> Ordering {
        crate::compare(Scheme::Pvp, a, b).unwrap()
    }

    fn cran(a: &str, b: &str) -> Ordering {
        crate::compare(Scheme::Cran, a, b).unwrap()
    }

    #[test]
    fn pvp_orders_lists_with_prefix_first() {
        assert_eq!(pvp("1.0", "1.0.0"), Ordering::Less);
        assert_eq!(pvp("1.0.0", "1.0.1"), Ordering::Less);
        assert_eq!(pvp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(pvp("2", "1.99.99"), Ordering::Greater);
        assert_eq!(pvp("0.2.1.0", "0.2.1.0"), Ordering::Equal);
        for text in [
            "",
            "1.",
            ".1",
            "1..0",
            "1.01",
            "1.0-1",
            "1.0a",
            "v1.0",
            "1234567890",
        ] {
            assert!(
                PvpVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn cran_reads_dots_and_hyphens_alike() {
        assert_eq!(cran("1.3-2", "1.3.2"), Ordering::Equal);
        assert_eq!(cran("1.3-2", "1.3-10"), Ordering::Less);
        assert_eq!(cran("1.01", "1.1"), Ordering::Equal);
        assert_eq!(cran("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cran("1.0", "1.0.0.0"), Ordering::Equal);
        assert_eq!(cran("1.0", "1.0.0.1"), Ordering::Less);
        assert_eq!(cran("2147483647.1", "2147483647.0"), Ordering::Greater);
        for text in [
            "",
            "1",
            "1.",
            "1..0",
            "1.0a",
            "1.0_1",
            "v1.0",
            " 1.0",
            "2147483648.1",
        ] {
            assert!(
                CranVersion::parse(text).is_err(),
                "{text:?} should be invalid"
            );
        }
    }
}
