//! Small helpers shared by the schemes.

use std::cmp::Ordering;

/// Compares two runs of ASCII digits by numeric value, whatever their length.
///
/// Leading zeros are ignored, so `"007"` equals `"7"`; no integer type can overflow.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Implements `PartialEq`, `Eq`, `PartialOrd` and `Ord` from an inherent `compare` method, so
/// that equality always agrees with the ordering (`1.0` equals `1.00` in many schemes).
macro_rules! ord_from_compare {
    ($type:ty) => {
        impl PartialEq for $type {
            fn eq(&self, other: &Self) -> bool {
                self.compare(other) == std::cmp::Ordering::Equal
            }
        }

        impl Eq for $type {}

        impl PartialOrd for $type {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $type {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.compare(other)
            }
        }
    };
}

pub(crate) use ord_from_compare;

/// A non-negative integer of any size, parsed from ASCII digits.
///
/// Values that fit in a `u64` stay inline; larger ones keep their digits without leading
/// zeros, so the derived ordering (`Small` before `Big`, then by length, then by digits) is
/// numeric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Number {
    Small(u64),
    Big { len: usize, digits: Box<str> },
}

impl Number {
    pub(crate) const ZERO: Number = Number::Small(0);

    /// Parses a run of ASCII digits; the caller guarantees `digits` holds only `0-9`.
    pub(crate) fn from_digits(digits: &str) -> Number {
        let trimmed = digits.trim_start_matches('0');
        match trimmed.parse::<u64>() {
            Ok(value) => Number::Small(value),
            Err(_) if trimmed.is_empty() => Number::ZERO,
            Err(_) => Number::Big {
                len: trimmed.len(),
                digits: trimmed.into(),
            },
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        *self == Number::ZERO
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Small(value) => write!(f, "{value}"),
            Number::Big { digits, .. } => f.write_str(digits),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    #[test]
    fn digits_compare_by_value() {
        assert_eq!(super::cmp_digits("007", "7"), Ordering::Equal);
        assert_eq!(super::cmp_digits("10", "9"), Ordering::Greater);
        assert_eq!(super::cmp_digits("", "0"), Ordering::Equal);
        assert_eq!(
            super::cmp_digits("123456789012345678901234567890", "99"),
            Ordering::Greater
        );
    }
}
