//! Maven versions, ordered as Maven's `ComparableVersion`.
//!
//! Follows maven-artifact's ComparableVersion.java: the version is lowercased and split into
//! items at `.`, at `-` and at every switch between digits and letters; a `-` or a switch
//! opens a sub-list, so `1-1` is `[1, [1]]`, and (MNG-7644, Maven 3.8.7 and 3.9) so does a
//! qualifier that follows other items, so `1.0.RC1 = 1.0-RC1` and `1.x = 1-x`. Numbers compare numerically (any size);
//! qualifiers order `alpha < beta < milestone < rc = cr < snapshot <` (release: `""`, `ga`,
//! `final`, `release`) `< sp <` unknown qualifiers (lexically). `a`, `b` and `m` directly
//! followed by a digit mean alpha, beta and milestone. Trailing "null" items (`0`, the
//! release qualifier, empty lists) are dropped, which is the padding rule: `1 = 1.0 = 1-0 =
//! 1.ga`. Item kinds order `list < number` and `qualifier < list`, so `1-sp < 1-1 < 1.1`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::util::{Number, ord_from_compare};
use crate::{Error, Scheme};

/// The index of the release qualifier (`""`) among the known qualifiers.
const RELEASE_INDEX: u8 = 5;

/// The known qualifiers in order; their index is their rank.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

/// A qualifier's rank: known ones by index, unknown ones after them, lexically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Qualifier {
    Known(u8),
    Unknown(Box<str>),
}

impl Qualifier {
    fn new(text: &str, followed_by_digit: bool) -> Qualifier {
        let text = match (text, followed_by_digit) {
            ("a", true) => "alpha",
            ("b", true) => "beta",
            ("m", true) => "milestone",
            ("ga" | "final" | "release", _) => "",
            ("cr", _) => "rc",
            (text, _) => text,
        };
        match QUALIFIERS.iter().position(|known| *known == text) {
            // The list has seven entries, so the index fits in a u8.
            Some(index) => Qualifier::Known(index as u8),
            None => Qualifier::Unknown(text.into()),
        }
    }
}

#[derive(Debug, Clone)]
enum Item {
    Number(Number),
    Qualifier(Qualifier),
    List(Vec<Item>),
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number(number) => number.is_zero(),
            Item::Qualifier(qualifier) => *qualifier == Qualifier::Known(RELEASE_INDEX),
            Item::List(items) => items.is_empty(),
        }
    }

    /// `Item.compareTo(Item)`, where `None` stands for a missing item (padding).
    fn compare(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Item::Number(number), None) => number.cmp(&Number::ZERO),
            (Item::Number(a), Some(Item::Number(b))) => a.cmp(b),
            (Item::Number(_), Some(_)) => Ordering::Greater,
            (Item::Qualifier(qualifier), None) => qualifier.cmp(&Qualifier::Known(RELEASE_INDEX)),
            (Item::Qualifier(a), Some(Item::Qualifier(b))) => a.cmp(b),
            (Item::Qualifier(_), Some(_)) => Ordering::Less,
            // Every item counts against padding, not only the first (MNG-6964): otherwise
            // `1-0.a` would equal `1` and the order would not be transitive.
            (Item::List(items), None) => items
                .iter()
                .map(|item| item.compare(None))
                .find(|order| *order != Ordering::Equal)
                .unwrap_or(Ordering::Equal),
            (Item::List(_), Some(Item::Number(_))) => Ordering::Less,
            (Item::List(_), Some(Item::Qualifier(_))) => Ordering::Greater,
            (Item::List(a), Some(Item::List(b))) => compare_lists(a, b),
        }
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    for index in 0..a.len().max(b.len()) {
        let order = match (a.get(index), b.get(index)) {
            (Some(left), right) => left.compare(right),
            (None, Some(right)) => right.compare(None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Removes trailing null items (`0`, the release qualifier, empty lists), looking through
/// already normalised sub-lists, as Maven 3 does: `1.0-a = 1-a`, `1-0 = 1`.
fn normalize(items: &mut Vec<Item>) {
    let mut index = items.len();
    while index > 0 {
        index -= 1;
        if items[index].is_null() {
            items.remove(index);
        } else if !matches!(items[index], Item::List(_)) {
            break;
        }
    }
}

/// A parsed Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: Box<str>,
    items: Vec<Item>,
}

impl MavenVersion {
    /// Parses a version. Maven accepts any string; only an empty one is refused here.
    pub fn parse(text: &str) -> Result<MavenVersion, Error> {
        // Maven keeps surrounding spaces (they make a qualifier); only a blank version is
        // refused here, where Maven would read it as `0`.
        if text.trim().is_empty() {
            return Err(Error::invalid(
                Scheme::Maven,
                text,
                "version string is empty",
            ));
        }
        let items = parse_items(&text.to_lowercase())
            .ok_or_else(|| Error::invalid(Scheme::Maven, text, "too many nested items"))?;
        Ok(MavenVersion {
            text: text.into(),
            items,
        })
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn compare(&self, other: &MavenVersion) -> Ordering {
        compare_lists(&self.items, &other.items)
    }
}

/// How deeply items may nest. Each `-` and each digit/letter switch opens a level, and
/// comparing or dropping the nested lists recurses once per level, so this bounds the stack;
/// real versions use a few dozen levels at most.
const MAX_NESTING: usize = 512;

/// `ComparableVersion.parseVersion`, building the chain of nested lists level by level;
/// `None` beyond [`MAX_NESTING`] levels.
fn parse_items(version: &str) -> Option<Vec<Item>> {
    // Each `-` or digit/letter switch opens a list nested in the current one, and later items
    // go into it, so the lists form a chain: keep one Vec per level and fold at the end.
    let mut levels: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let parse_item = |is_digit: bool, text: &str| {
        if is_digit {
            Item::Number(Number::from_digits(text))
        } else {
            Item::Qualifier(Qualifier::new(text, false))
        }
    };
    fn current(levels: &mut Vec<Vec<Item>>) -> &mut Vec<Item> {
        if levels.is_empty() {
            levels.push(Vec::new());
        }
        let last = levels.len() - 1;
        &mut levels[last]
    }
    for (index, c) in version.char_indices() {
        let segment = version.get(start..index).unwrap_or("");
        match c {
            '.' | '-' => {
                let item = if segment.is_empty() {
                    Item::Number(Number::ZERO)
                } else {
                    parse_item(is_digit, segment)
                };
                current(&mut levels).push(item);
                start = index + 1;
                if c == '-' {
                    levels.push(Vec::new());
                }
            }
            _ if c.is_ascii_digit() => {
                if !is_digit && index > start {
                    // MNG-7644: a qualifier after other items opens its own sub-list, so
                    // `.X1` reads as `-X1` (`1.0.RC1 = 1.0-RC1 < 1.0-RC2`).
                    if !current(&mut levels).is_empty() {
                        levels.push(Vec::new());
                    }
                    current(&mut levels).push(Item::Qualifier(Qualifier::new(segment, true)));
                    start = index;
                    levels.push(Vec::new());
                }
                is_digit = true;
            }
            _ => {
                if is_digit && index > start {
                    current(&mut levels).push(parse_item(true, segment));
                    start = index;
                    levels.push(Vec::new());
                }
                is_digit = false;
            }
        }
    }
    if let Some(rest) = version.get(start..).filter(|rest| !rest.is_empty()) {
        // MNG-7644 again, for a qualifier that ends the version (`1.x = 1-x`).
        if !is_digit && !current(&mut levels).is_empty() {
            levels.push(Vec::new());
        }
        current(&mut levels).push(parse_item(is_digit, rest));
    }
    if levels.len() > MAX_NESTING {
        return None;
    }
    let mut inner = levels.pop().unwrap_or_default();
    normalize(&mut inner);
    while let Some(mut outer) = levels.pop() {
        outer.push(Item::List(inner));
        normalize(&mut outer);
        inner = outer;
    }
    Some(inner)
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
            ("1-1.foo-bar-1-baz-0.1", "1-1.foo-bar1baz-.1"),
            // MNG-7644: a qualifier after a dot reads as after a hyphen.
            ("1.0.RC1", "1.0-CR1"),
            ("1.x", "1-x"),
            ("2-rc1", "2.0.rc1"),
            ("2.0.a", "2.0.0.a"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} = {b}");
        }
        assert_eq!(
            cmp("1a", "1-alpha"),
            Ordering::Greater,
            "a alone is not alpha"
        );
        assert_eq!(cmp("6.1.0rc3", "6.1.0"), Ordering::Less);
        assert_eq!(cmp("1.0.0.RC1", "1.0.0-RC2"), Ordering::Less);
        assert_eq!(cmp("2-1", "2.0.a"), Ordering::Greater);
        // MNG-6964: a sub-list is compared with padding item by item.
        assert_eq!(cmp("1-0.a", "1"), Ordering::Greater);
        assert_eq!(cmp("1-0.alpha", "1"), Ordering::Less);
        assert!(MavenVersion::parse(&"1-a".repeat(100_000)).is_err());
        assert_eq!(
            cmp(&"1-a".repeat(200), &"1-a".repeat(201)),
            Ordering::Greater
        );
        assert_eq!(
            cmp("12345678901234567890.1", "1234567890123456789.1"),
            Ordering::Greater
        );
    }
}
