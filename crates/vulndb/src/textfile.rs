//! OVAL's `textfilecontent54_test` as a condition on the scanned root: a file's text, the
//! instances of a pattern in it, and a state the matched text or its subexpressions must
//! satisfy. Red Hat's feeds use it for what no package version says ("kernel earlier than
//! 0:4.18.0-80.1.2.el8_0 is set to boot up on next boot": the `saved_entry` of
//! `/boot/grub2/grubenv`); an advisory's range carrying such a [`FileCheck`] applies only
//! where the check holds on the root being scanned.
//!
//! The test as OVAL 5.11 defines it, with the `textfilecontent54_object`'s default
//! behaviors (`multiline`: `^` and `$` match at line ends; `.` does not match a newline):
//! the object's items are the `instance`s (1-based, `equals` one or `greater than or
//! equal` from one on) of its `pattern` in the file; with no item the test is false; with
//! no state true; otherwise at least one item (`check="at least one"`) or every item
//! (`check="all"`) must satisfy the state, whose `text` entity is the whole match and
//! whose `subexpression` entity every capture group of it (entity check `all`).
//!
//! Patterns are OVAL's Perl-style regular expressions, look-around and back-references
//! included (`(?<=^saved_entry=).*`): `fancy-regex`, which runs what the linear-time
//! `regex` crate can on it and backtracks only for those constructs. Bounds: the caller
//! reads at most a bounded number of bytes of a file (a larger file is no item), patterns
//! compile within [`REGEX_SIZE_LIMIT`], a backtracking search gives up after
//! [`BACKTRACK_LIMIT`] steps (the check then does not hold), and at most
//! [`MAX_INSTANCES`] instances of a pattern are taken.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use fancy_regex::{Regex, RegexBuilder};
use palisade_version::{RpmVersion, rpmvercmp};
use serde::{Deserialize, Serialize};

/// The most memory a compiled pattern may take.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The most backtracking steps one search may take (look-around, back-references).
pub(crate) const BACKTRACK_LIMIT: usize = 1_000_000;

/// The most instances of a pattern taken from one file.
pub(crate) const MAX_INSTANCES: usize = 4096;

/// The file that gives the running kernel's release (what `uname -r` prints, OVAL's
/// `uname_item` `os_release`): the scanned system's own only on the running host, so a
/// [`FileCheck::running_kernel`] is answered only there (an image or another root has no
/// running kernel of its own; their readers answer it as absent).
pub const RUNNING_KERNEL_RELEASE: &str = "/proc/sys/kernel/osrelease";

/// The running kernel's release as its package's `version-release`: `uname -r` less a
/// trailing rpm architecture (`.x86_64`, AlmaLinux's `.x86_64_v2`) and the kernel variant
/// after it (`+debug`, `+64k`, `+rt`, `+rt-debug`, `+64k-debug`, `+rt-64k`, RHEL 7's
/// `.debug`), as `palisade_inventory::RunningKernel` reads it to tell the running kernel's
/// packages.
const RELEASE_WITHOUT_ARCH: &str = r"^(.+?)(?:\.(?:x86_64_v2|x86_64|aarch64|ppc64le|ppc64|s390x|i[3-6]86|armv7hl|riscv64))?(?:\+[0-9A-Za-z_-]+|\.debug)?$";

/// A `textfilecontent54_test` of one file of the scanned root, as an advisory range keeps it.
/// Checks compare (and hash) by what they check, not by whether they were compiled yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileCheck {
    /// The file's absolute path in the root (`/boot/grub2/grubenv`).
    #[serde(rename = "f")]
    path: String,
    /// The object's pattern.
    #[serde(rename = "p")]
    pattern: String,
    /// The first instance of the pattern taken, from 1.
    #[serde(rename = "i")]
    instance: u32,
    /// Whether every instance from [`FileCheck::instance`] on is taken (`greater than or
    /// equal`), not that one alone (`equals`).
    #[serde(rename = "n", default, skip_serializing_if = "is_false")]
    from_instance_on: bool,
    /// Whether every item must satisfy the state (`check="all"`), not at least one.
    #[serde(rename = "a", default, skip_serializing_if = "is_false")]
    all: bool,
    /// The state the items are held to; none: the pattern occurring is enough.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    state: Option<TextState>,
    /// The patterns compiled on the check's first evaluation and kept with it, so that the
    /// checks of a loaded index compile once, not at every evaluation; `None` when they do
    /// not compile (the import refuses such checks), and then the check never holds.
    #[serde(skip)]
    compiled: OnceLock<Option<Compiled>>,
}

/// A check's patterns, compiled.
#[derive(Debug, Clone)]
struct Compiled {
    pattern: Regex,
    /// The state's value, for `pattern match`.
    state_pattern: Option<Regex>,
}

impl FileCheck {
    /// What the check checks: its identity.
    fn key(&self) -> (&str, &str, u32, bool, bool, Option<&TextState>) {
        (
            &self.path,
            &self.pattern,
            self.instance,
            self.from_instance_on,
            self.all,
            self.state.as_ref(),
        )
    }

    /// The patterns, compiled on the first call.
    fn compiled(&self) -> Option<&Compiled> {
        self.compiled
            .get_or_init(|| {
                let pattern = compile(&self.pattern).ok()?;
                let state_pattern = match &self.state {
                    Some(state) if state.operation == Operation::PatternMatch => {
                        Some(compile(&state.value).ok()?)
                    }
                    _ => None,
                };
                Some(Compiled {
                    pattern,
                    state_pattern,
                })
            })
            .as_ref()
    }
}

impl PartialEq for FileCheck {
    fn eq(&self, other: &FileCheck) -> bool {
        self.key() == other.key()
    }
}

impl Eq for FileCheck {}

impl Hash for FileCheck {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for FileCheck {
    fn partial_cmp(&self, other: &FileCheck) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FileCheck {
    fn cmp(&self, other: &FileCheck) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A `textfilecontent54_state`'s one entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TextState {
    /// Which part of an item: the whole match (`text`) or its capture groups
    /// (`subexpression`).
    #[serde(rename = "e")]
    pub(crate) entity: Entity,
    #[serde(rename = "o")]
    pub(crate) operation: Operation,
    #[serde(rename = "d")]
    pub(crate) datatype: Datatype,
    #[serde(rename = "v")]
    pub(crate) value: String,
}

/// The entities of a `textfilecontent54_state` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Entity {
    #[serde(rename = "t")]
    Text,
    #[serde(rename = "s")]
    Subexpression,
}

/// OVAL's operations on a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Operation {
    #[serde(rename = "eq")]
    Equals,
    #[serde(rename = "ne")]
    NotEqual,
    #[serde(rename = "re")]
    PatternMatch,
    #[serde(rename = "lt")]
    LessThan,
    #[serde(rename = "le")]
    LessThanOrEqual,
    #[serde(rename = "gt")]
    GreaterThan,
    #[serde(rename = "ge")]
    GreaterThanOrEqual,
}

impl Operation {
    /// Whether it orders values (`less than`, ...), rather than telling them equal or not
    /// or matching a pattern.
    pub(crate) fn orders(self) -> bool {
        matches!(
            self,
            Operation::LessThan
                | Operation::LessThanOrEqual
                | Operation::GreaterThan
                | Operation::GreaterThanOrEqual
        )
    }

    /// The operation OVAL names `name` (`pattern match`, `less than`, ...).
    pub(crate) fn from_name(name: &str) -> Option<Operation> {
        Some(match name {
            "equals" => Operation::Equals,
            "not equal" => Operation::NotEqual,
            "pattern match" => Operation::PatternMatch,
            "less than" => Operation::LessThan,
            "less than or equal" => Operation::LessThanOrEqual,
            "greater than" => Operation::GreaterThan,
            "greater than or equal" => Operation::GreaterThanOrEqual,
            _ => return None,
        })
    }
}

/// The datatypes a state's value is compared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Datatype {
    #[serde(rename = "s")]
    String,
    /// An rpm `epoch:version-release`, compared as rpm does.
    #[serde(rename = "e")]
    EvrString,
    /// Dot-separated numbers, compared component by component.
    #[serde(rename = "v")]
    Version,
    #[serde(rename = "i")]
    Int,
}

impl Datatype {
    /// The datatype OVAL names `name` (an absent one is `string`).
    pub(crate) fn from_name(name: &str) -> Option<Datatype> {
        Some(match name {
            "" | "string" => Datatype::String,
            "evr_string" => Datatype::EvrString,
            "version" => Datatype::Version,
            "int" => Datatype::Int,
            _ => return None,
        })
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A pattern compiled within the bounds, OVAL's multi-line behavior on.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .delegate_size_limit(REGEX_SIZE_LIMIT)
        .delegate_dfa_size_limit(REGEX_SIZE_LIMIT)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
        .map_err(|error| format!("pattern {pattern:?} cannot be evaluated: {error}"))
}

impl FileCheck {
    /// A check of `path`, its patterns compiled here to refuse those that cannot be
    /// compiled (over the size limit, invalid syntax); a check read back from the database
    /// compiles them again on its first evaluation, once.
    pub(crate) fn new(
        path: String,
        pattern: String,
        instance: u32,
        from_instance_on: bool,
        all: bool,
        state: Option<TextState>,
    ) -> Result<FileCheck, String> {
        if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
            return Err(format!("file path {path:?} is not absolute"));
        }
        if instance == 0 {
            return Err("instance 0 (instances count from 1)".to_owned());
        }
        compile(&pattern)?;
        if let Some(state) = &state {
            match (state.operation, state.datatype) {
                (Operation::PatternMatch, _) => {
                    compile(&state.value)?;
                }
                (_, Datatype::Int) if state.value.trim().parse::<i64>().is_err() => {
                    return Err(format!("int value {:?}", state.value));
                }
                (operation, Datatype::String) if operation.orders() => {
                    return Err("an ordering of strings".to_owned());
                }
                _ => {}
            }
        }
        Ok(FileCheck {
            path,
            pattern,
            instance,
            from_instance_on,
            all,
            state,
            compiled: OnceLock::new(),
        })
    }

    /// An OVAL `uname_test` of the running kernel's release held to `state` (its
    /// `os_release`; none: any running kernel): the one line of [`RUNNING_KERNEL_RELEASE`].
    /// `uname -r` prints the release with the kernel's architecture and variant
    /// (`4.18.0-80.1.2.el8_0.x86_64`, `...x86_64+debug`) where the state's `evr_string` is
    /// the package's (`0:4.18.0-80.1.2.el8_0`): such a state is held to the release without
    /// them ([`RELEASE_WITHOUT_ARCH`]'s subexpression), else the same kernel would compare
    /// newer than itself; other datatypes see the line as printed.
    pub(crate) fn running_kernel(state: Option<TextState>) -> Result<FileCheck, String> {
        let (pattern, state) = match state {
            Some(state) if state.datatype == Datatype::EvrString => (
                RELEASE_WITHOUT_ARCH,
                Some(TextState {
                    entity: Entity::Subexpression,
                    ..state
                }),
            ),
            state => ("^.+$", state),
        };
        FileCheck::new(
            RUNNING_KERNEL_RELEASE.to_owned(),
            pattern.to_owned(),
            1,
            false,
            false,
            state,
        )
    }

    /// The file's absolute path in the root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the check holds on a file of content `content` (`None`: the file is not
    /// there, or was not read within the bounds).
    pub fn holds(&self, content: Option<&[u8]>) -> bool {
        let Some(content) = content else {
            return false;
        };
        let Some(compiled) = self.compiled() else {
            return false;
        };
        let text = String::from_utf8_lossy(content);
        // A search over the backtracking limit fails the check, not only its later items.
        let Ok(found) = compiled
            .pattern
            .captures_iter(text.as_ref())
            .take(MAX_INSTANCES)
            .collect::<Result<Vec<_>, _>>()
        else {
            return false;
        };
        let first = self.instance as usize;
        let items: Vec<_> = found
            .into_iter()
            .enumerate()
            .filter(|(index, _)| {
                let instance = index + 1;
                instance == first || (self.from_instance_on && instance > first)
            })
            .map(|(_, captures)| captures)
            .collect();
        if items.is_empty() {
            return false;
        }
        let Some(state) = &self.state else {
            return true;
        };
        let satisfies = |found: &str| satisfies(state, compiled.state_pattern.as_ref(), found);
        let mut satisfied = items.iter().map(|captures| match state.entity {
            Entity::Text => captures
                .get(0)
                .is_some_and(|whole| satisfies(whole.as_str())),
            Entity::Subexpression => {
                let mut groups = captures.iter().skip(1).flatten().peekable();
                groups.peek().is_some() && groups.all(|group| satisfies(group.as_str()))
            }
        });
        if self.all {
            satisfied.all(|holds| holds)
        } else {
            satisfied.any(|holds| holds)
        }
    }
}

/// Whether `found` satisfies the state's operation on its value (`state_pattern`: the value
/// compiled, for `pattern match`).
fn satisfies(state: &TextState, state_pattern: Option<&Regex>, found: &str) -> bool {
    if state.operation == Operation::PatternMatch {
        return state_pattern.is_some_and(|pattern| pattern.is_match(found).unwrap_or(false));
    }
    let ordering = match state.datatype {
        Datatype::String => Some(found.cmp(&state.value)),
        Datatype::EvrString => match (RpmVersion::parse(found), RpmVersion::parse(&state.value)) {
            (Ok(found), Ok(value)) => Some(found.cmp(&value)),
            _ => None,
        },
        Datatype::Version => Some(compare_versions(found, &state.value)),
        Datatype::Int => match (
            found.trim().parse::<i64>(),
            state.value.trim().parse::<i64>(),
        ) {
            (Ok(found), Ok(value)) => Some(found.cmp(&value)),
            _ => None,
        },
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match state.operation {
        Operation::Equals => ordering == Ordering::Equal,
        Operation::NotEqual => ordering != Ordering::Equal,
        Operation::LessThan => ordering == Ordering::Less,
        Operation::LessThanOrEqual => ordering != Ordering::Greater,
        Operation::GreaterThan => ordering == Ordering::Greater,
        Operation::GreaterThanOrEqual => ordering != Ordering::Less,
        Operation::PatternMatch => false,
    }
}

/// OVAL's `version` datatype: components split at `.` (and `-`, `_`, `:`) compared as
/// rpm compares segments (numbers numerically), a missing component as `0`.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |text: &str| -> Vec<String> {
        text.split(['.', '-', '_', ':'])
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (split(a), split(b));
    for index in 0..a.len().max(b.len()) {
        let part = |parts: &[String]| parts.get(index).cloned().unwrap_or_else(|| "0".to_owned());
        match rpmvercmp(&part(&a), &part(&b)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::{Datatype, Entity, FileCheck, Operation, TextState};

    fn state(entity: Entity, operation: &str, datatype: &str, value: &str) -> Option<TextState> {
        Some(TextState {
            entity,
            operation: Operation::from_name(operation).unwrap(),
            datatype: Datatype::from_name(datatype).unwrap(),
            value: value.to_owned(),
        })
    }

    /// Red Hat's "kernel earlier than ... is set to boot up on next boot": the kernel of
    /// grubenv's `saved_entry`, compared as an rpm version.
    #[test]
    fn a_subexpression_is_compared_as_its_datatype() {
        let check = FileCheck::new(
            "/boot/grub2/grubenv".to_owned(),
            r"^saved_entry=\w+-(\d[\w.\-]*)\.x86_64$".to_owned(),
            1,
            false,
            false,
            state(
                Entity::Subexpression,
                "less than",
                "evr_string",
                "0:4.18.0-80.1.2.el8_0",
            ),
        )
        .unwrap();
        let grubenv = |kernel: &str| {
            format!(
                "# GRUB Environment Block\nsaved_entry=ffffffffffffffffffffffffffffffff-{kernel}.x86_64\nkernelopts=root=/dev/mapper/rhel-root ro\n"
            )
        };
        assert!(check.holds(Some(grubenv("4.18.0-80.el8").as_bytes())));
        assert!(!check.holds(Some(grubenv("4.18.0-80.1.2.el8_0").as_bytes())));
        assert!(!check.holds(Some(grubenv("4.18.0-147.el8").as_bytes())));
        // No file, or no instance of the pattern: the test is false.
        assert!(!check.holds(None));
        assert!(!check.holds(Some(b"# GRUB Environment Block\n")));
    }

    /// A `uname_test`'s `evr_string` state is held to `uname -r` without its architecture
    /// and variant: the same kernel is equal, not newer, for every operation.
    #[test]
    fn the_running_release_is_compared_without_its_architecture() {
        let holds = |operation: &str, running: &str| {
            FileCheck::running_kernel(state(
                Entity::Text,
                operation,
                "evr_string",
                "0:4.18.0-80.1.2.el8_0",
            ))
            .unwrap()
            .holds(Some(format!("{running}\n").as_bytes()))
        };
        let same = [
            "4.18.0-80.1.2.el8_0.x86_64",
            "4.18.0-80.1.2.el8_0.aarch64+64k",
            "4.18.0-80.1.2.el8_0.x86_64+debug",
            "4.18.0-80.1.2.el8_0.x86_64+rt",
            "4.18.0-80.1.2.el8_0.x86_64+rt-debug",
            "4.18.0-80.1.2.el8_0.aarch64+64k-debug",
            "4.18.0-80.1.2.el8_0.ppc64le.debug",
            "4.18.0-80.1.2.el8_0.aarch64+rt-64k",
            "4.18.0-80.1.2.el8_0.x86_64_v2",
            "4.18.0-80.1.2.el8_0",
        ];
        for running in same {
            assert!(holds("equals", running), "{running}");
            assert!(!holds("not equal", running), "{running}");
            assert!(!holds("less than", running), "{running}");
            assert!(holds("less than or equal", running), "{running}");
            assert!(!holds("greater than", running), "{running}");
            assert!(holds("greater than or equal", running), "{running}");
        }
        let older = "4.18.0-80.el8.x86_64";
        assert!(holds("less than", older));
        assert!(!holds("equals", older));
        assert!(!holds("greater than or equal", older));
        let newer = "4.18.0-147.el8.s390x";
        assert!(holds("greater than", newer));
        assert!(!holds("less than or equal", newer));
        // A string state sees the release as printed.
        let printed = FileCheck::running_kernel(state(
            Entity::Text,
            "equals",
            "",
            "4.18.0-80.1.2.el8_0.x86_64",
        ))
        .unwrap();
        assert!(printed.holds(Some(b"4.18.0-80.1.2.el8_0.x86_64\n")));
        assert!(!printed.holds(Some(b"4.18.0-80.1.2.el8_0\n")));
    }

    /// Perl's look-around, as OVAL content writes it; a search that backtracks without
    /// end gives up and the check does not hold.
    #[test]
    fn look_around_is_evaluated_and_backtracking_is_bounded() {
        let check = FileCheck::new(
            "/boot/grub2/grubenv".to_owned(),
            r"(?<=^saved_entry=)\w+-.*(?=\.x86_64$)".to_owned(),
            1,
            false,
            false,
            state(Entity::Text, "pattern match", "", r"-4\.18\.0-80\.el8$"),
        )
        .unwrap();
        assert!(check.holds(Some(b"saved_entry=abc-4.18.0-80.el8.x86_64\n")));
        assert!(!check.holds(Some(b"saved_entry=abc-4.18.0-147.el8.x86_64\n")));
        let catastrophic = FileCheck::new(
            "/etc/a".to_owned(),
            // A back-reference: backtracked, 2^40 ways to split the run of `a`s.
            r"^(a+)+\1b".to_owned(),
            1,
            false,
            false,
            None,
        )
        .unwrap();
        let started = std::time::Instant::now();
        assert!(!catastrophic.holds(Some("a".repeat(40).as_bytes())));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn instances_checks_and_text_states() {
        let text = b"[a]\nstream=1\n[b]\nstream=2\n[c]\nstream=3\n";
        let check = |instance, from_on, all, state| {
            FileCheck::new(
                "/etc/x.conf".to_owned(),
                r"^stream=(\d+)$".to_owned(),
                instance,
                from_on,
                all,
                state,
            )
            .unwrap()
            .holds(Some(text))
        };
        let equals = |value: &str| state(Entity::Subexpression, "equals", "int", value);
        // `equals` takes that instance alone; `greater than or equal` every one from it.
        assert!(check(2, false, false, equals("2")));
        assert!(!check(2, false, false, equals("3")));
        assert!(check(2, true, false, equals("3")));
        assert!(!check(3, true, false, equals("2")));
        // `all`: every item satisfies the state.
        let at_least_one = state(Entity::Subexpression, "greater than or equal", "int", "1");
        assert!(check(1, true, true, at_least_one));
        assert!(!check(1, true, true, equals("1")));
        // The whole match by pattern; no state: the pattern occurring.
        assert!(check(
            1,
            true,
            false,
            state(Entity::Text, "pattern match", "", "=3$")
        ));
        assert!(check(3, false, false, None));
        assert!(!check(4, false, false, None));
        assert!(check(
            1,
            false,
            false,
            state(Entity::Text, "not equal", "", "stream=2")
        ));
        assert!(check(
            1,
            false,
            false,
            state(Entity::Subexpression, "less than", "version", "1.0.1")
        ));
    }

    #[test]
    fn unevaluable_checks_are_refused_with_the_reason() {
        let new = |path: &str, pattern: &str, instance, state| {
            FileCheck::new(
                path.to_owned(),
                pattern.to_owned(),
                instance,
                false,
                false,
                state,
            )
        };
        let error = new("/etc/a", r"(unclosed", 1, None).unwrap_err();
        assert!(error.contains("cannot be evaluated"), "{error}");
        assert!(new("etc/a", "x", 1, None).unwrap_err().contains("absolute"));
        assert!(new("/etc/../a", "x", 1, None).is_err());
        assert!(new("/etc/a", "x", 0, None).is_err());
        assert!(new("/etc/a", "x", 1, state(Entity::Text, "less than", "", "b")).is_err());
        assert!(new("/etc/a", "x", 1, state(Entity::Text, "equals", "int", "b")).is_err());
        assert!(new("/etc/a", "(a{1000}){1000}", 1, None).is_err());
    }
}
