//! OVAL 5.x definitions (`<oval_definitions>`): Red Hat's v2 feeds (`rhel-8.oval.xml.bz2`,
//! `rhel-9-including-unpatched.oval.xml.bz2`, which CentOS, AlmaLinux and Rocky Linux
//! scanners read too), Oracle Linux's ELSA feed (`com.oracle.elsa-all.xml.bz2`,
//! `com.oracle.elsa-YYYY.xml`) and Azure Linux's and CBL-Mariner's
//! (`azurelinux-3.0-oval.xml`, `cbl-mariner-2.0-oval.xml`).
//!
//! An OVAL document lists definitions, each with metadata (title, affected platforms,
//! references, severity) and criteria, a tree of `AND`/`OR` criteria whose leaves name
//! tests; a test pairs an object (the rpm `<name>` of an `rpminfo_object`) with states
//! (`<evr datatype="evr_string" operation="less than">0:3.8.3-4.el9_4</evr>`). Tests,
//! objects and states come after the definitions, so every definition, test, object and
//! state is kept as it is read ([`Spill`]: encoded in memory up to a budget, past it in a
//! temporary database on disk), and the
//! definitions are evaluated one at a time once the document has been read: memory does not
//! grow with the document (Red Hat's are hundreds of MB).
//!
//! Evaluation follows the OVAL semantics as far as an advisory record can express them:
//! the criteria are expanded into their alternatives (an `OR` of `AND`s, `extend_definition`
//! inlined), each alternative being the tests that must all hold. In an alternative,
//! - an `rpminfo_test` of a release package (`oraclelinux-release`) with a `version` state
//!   (`pattern match` `^9`, `equals` `9`) gives the release, and so does Red Hat's
//!   `rpmverifyfile_test` of the package owning `/etc/redhat-release` (`^redhat-release`,
//!   version `^8[^\d]`: "Red Hat Enterprise Linux 8 is installed"); its `none satisfy`
//!   form ("Red Hat Enterprise Linux must be installed", true on other systems) and
//!   another product's release ("Red Hat CoreOS 4", a release none of the definition's
//!   platforms names) never hold on a system the feed is matched against;
//! - an `rpminfo_test` of another package with `evr` states gives its affected versions:
//!   `less than` (fixed there), `less than or equal` (affected up to it, no fix),
//!   `equals` (that version), `greater than or equal` (affected from it); without a
//!   version state it says the package is installed, which in a `vulnerability`
//!   definition testing no version (Red Hat's unfixed packages) makes every version
//!   affected, with the status of the advisory's `<affected><resolution state=...>`
//!   naming it as a `<component>` (`podman`, or `container-tools:4.0/podman` for a module
//!   stream's package, so that each stream keeps its own resolution) (`Will not fix`,
//!   `Out of support scope`: will not be fixed; `Affected`, `Fix deferred`: open; `Not
//!   affected`: no record);
//! - Red Hat's `textfilecontent54_test` of `/etc/dnf/modules.d` ("Module postgresql:13 is
//!   enabled") names the module stream the alternative's range is for ([`Range::module`]):
//!   matching applies it only to packages of that stream (their modularity label's, else
//!   the image's enabled streams), and for packages of no known stream the range starts
//!   at its stream's version line (the stream where it names one, `5.30` for
//!   `perl:5.30`'s `4:5.30.1-452.module+el8.9.0`, else the first component, `13` for
//!   `13.13-1.module+el8.9.0`), so that another stream's build is not taken for an
//!   unfixed one (packages built outside any module get no stream's range);
//! - any other `textfilecontent54_test` ("kernel earlier than ... is set to boot up on next
//!   boot": `/boot/grub2/grubenv`) is a [`FileCheck`] of one named file (`filepath`, or
//!   `path` and `filename`), a pattern and its instances, with at most one `text` or
//!   `subexpression` state, kept with the alternative's range ([`Range::files`]) and
//!   evaluated on the scanned root ([`crate::Index::matches_on_root`]); objects by
//!   pattern, variables, behaviors, `check` other than `at least one` and `all`, and
//!   patterns that do not compile are warned about;
//! - a `uname_test` ("kernel earlier than ... is currently running") is a [`FileCheck`] of
//!   the running kernel's release ([`crate::RUNNING_KERNEL_RELEASE`], `uname -r`) held to
//!   its state's `os_release`, kept the same way: only a scan of the running host answers
//!   it (an image or another root has no running kernel, so there the alternative does not
//!   apply);
//! - `signature_keyid` and `arch` states (signed with the distribution's key, built for an
//!   architecture) always hold here: the inventory reads the distribution's own packages,
//!   of the host's architectures, from the rpm database, which holds no verdict on a
//!   signature.
//!
//! What a record cannot express is not guessed at: negated criteria or tests, `ONE`/`XOR`,
//! an alternative needing two packages at once, other test kinds and operations are warned
//! about with the definition's id, and the definition's other alternatives kept.
//!
//! The release: an import's `--release` places every definition. Otherwise Red Hat's
//! (`oval:com.redhat.rhsa:`, `oval:com.redhat.cve:`, platform `Red Hat Enterprise Linux 9`)
//! and Oracle Linux's (`oval:com.oracle.elsa:`, platform `Oracle Linux 9`) come from the
//! alternative's release test, else the definition's single platform, else the fixed
//! rpm's `.elN` tag (read as the updateinfo reader does; UEK's `el9uek`, modules'
//! `module+el8` too). A Red Hat definition is for the product streams its
//! `<affected_cpe_list>` names of that release (`rhel_eus:8.6`: the update streams' feeds
//! fix their stream only), else for the main stream (`Red Hat:8`). Azure Linux's and CBL-Mariner's
//! (`oval:com.microsoft.azurelinux:`, `oval:com.microsoft.cbl-mariner:`) come from the file
//! name their feeds have (`azurelinux-3.0-oval.xml`), else the rpm's dist tag (`.azl3`,
//! `.cm2`). Records are RHSA and ELSA advisories (their CVEs as aliases) for Red Hat and
//! Oracle Linux, CVEs for Red Hat's unfixed packages and for Azure Linux and CBL-Mariner,
//! whose definitions are one per CVE and package (those of one CVE are merged into one
//! record). Red Hat's `oval:com.redhat.unaffected:` definitions are skipped, rejected
//! CVEs (`** REJECT **`) kept withdrawn.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use palisade_version::parse_module_stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ecosystem::normalize_ecosystem;
use crate::import::Skipped;
use crate::model::{Affected, DistroStatus, Event, Range, RangeKind, Record, short_summary};
use crate::spill::{Kind, Spill, SpillError};
use crate::textfile::{Datatype, Entity, FileCheck, Operation, TextState};
use crate::updateinfo::{lower_bound, release_tag};
use crate::xml::{Element, Handler};

/// The most alternatives one definition's criteria may expand into.
const MAX_ALTERNATIVES: usize = 4096;

/// The deepest chain of `extend_definition` followed.
const MAX_EXTEND_DEPTH: usize = 16;

/// The deepest nesting of `<criteria>` kept in a definition (real feeds nest a few levels):
/// a deeper one is kept as [`Node::TooDeep`], and what is inside it is not read. A kept
/// definition is read back from the [`Spill`] as JSON, whose decoder allows 128 levels,
/// three per criteria.
const MAX_CRITERIA_DEPTH: usize = 32;

/// rpm packages whose version is the distribution's release.
const RELEASE_PACKAGES: &[&str] = &[
    "redhat-release",
    "oraclelinux-release",
    "enterprise-release",
    "azurelinux-release",
    "mariner-release",
];

/// The files whose owning package Red Hat's `rpmverifyfile_test`s read for the release.
const RELEASE_FILES: &[&str] = &["/etc/redhat-release"];

/// How Red Hat's definitions name their platform: `Red Hat Enterprise Linux 8`.
const RED_HAT_PLATFORM: &str = "Red Hat Enterprise Linux ";

/// What evaluating an OVAL document gave besides its records (handed to the import's
/// sink one by one): the definitions skipped in part or whole (id and reason), and the
/// number of definitions that are not about vulnerabilities.
#[derive(Debug, Default)]
pub(crate) struct Oval {
    pub(crate) skipped: Skipped,
    pub(crate) not_vulnerability: u64,
    /// The records handed to the sink (one per definition evaluated into one; Azure
    /// Linux's definitions of one CVE give one record each, merged when stored).
    pub(crate) record_count: u64,
}

/// Why evaluating a document stopped before its end.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// The temporary database failed.
    Spill(SpillError),
    /// The sink stopped taking records (the import's store failed).
    StoreFailed,
}

impl From<SpillError> for Stopped {
    fn from(error: SpillError) -> Stopped {
        Stopped::Spill(error)
    }
}

/// The reading of one OVAL document, as a [`Handler`]: each definition, test, object and
/// state is kept in a [`Spill`] as it closes; [`Reading::into_result`] evaluates the
/// definitions one at a time once the document has been read.
#[derive(Debug)]
pub(crate) struct Reading {
    /// The release of every definition, from the import.
    release: Option<String>,
    /// The release the file's name gives (`azurelinux-3.0-oval.xml` → `3.0`).
    file_release: Option<String>,
    spill: Spill,
    /// Why the spill failed, if it did: the reading stops and the import fails.
    failure: Option<SpillError>,
    /// What the evaluation read back from the spill lately.
    recent: Recent,
    /// The definition being read.
    definition: Option<Definition>,
    /// The element being read in `<tests>`, `<objects>` or `<states>`.
    item: Option<Item>,
    /// The field of an object or a state being read: its name and attributes.
    field: Option<Field>,
    /// The criteria being read, the outermost first.
    open_criteria: Vec<Node>,
    /// How many `<criteria>` are open inside one nested deeper than
    /// [`MAX_CRITERIA_DEPTH`], whose content is not read.
    ignored_criteria: usize,
    definition_count: usize,
}

/// One `<definition>` as kept: its metadata and criteria.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Definition {
    id: String,
    class: String,
    deprecated: bool,
    title: String,
    description: String,
    platforms: Vec<String>,
    /// `(source, ref_id)` of each `<reference>`.
    references: Vec<(String, String)>,
    cves: Vec<String>,
    severity: String,
    issued: Option<String>,
    updated: Option<String>,
    criteria: Option<Node>,
    /// The Red Hat product streams of the `<advisory><affected_cpe_list><cpe>`s, as OSV's
    /// Red Hat ecosystems name them (`cpe:/a:redhat:rhel_eus:8.6::appstream` →
    /// `Red Hat:rhel_eus:8.6`), each once.
    streams: Vec<String>,
    /// Red Hat's `<advisory><affected><resolution state="Will not fix">` of unfixed
    /// packages: the state and its `<component>`s.
    resolutions: Vec<(String, Vec<String>)>,
    problems: Vec<String>,
}

/// A node of a definition's criteria.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Node {
    Criteria {
        operator: String,
        negate: bool,
        children: Vec<Node>,
    },
    Criterion {
        test: String,
        negate: bool,
    },
    Extend {
        definition: String,
        negate: bool,
    },
    /// `<criteria>` nested deeper than [`MAX_CRITERIA_DEPTH`]: an alternative that cannot
    /// be evaluated.
    TooDeep,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Test {
    kind: String,
    /// What the test says it checks (`Module postgresql:13 is enabled`), kept for
    /// `textfilecontent54_test`s only.
    comment: Option<String>,
    check: String,
    check_existence: String,
    state_operator: String,
    object: String,
    states: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Object {
    kind: String,
    /// The fields: an rpm's `<name>`, a file's `<filepath>`, behaviors.
    fields: Vec<Field>,
    /// Why the object cannot be evaluated (a variable, a set, a filter), if so.
    problem: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    kind: String,
    fields: Vec<Field>,
}

/// A field of an object or state: `<evr datatype="evr_string" operation="less than">`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Field {
    name: String,
    operation: String,
    datatype: String,
    has_variable: bool,
    value: String,
}

#[derive(Debug)]
enum Item {
    Test(String, Test),
    Object(String, Object),
    State(String, State),
}

/// The definitions, tests, objects and states read back from the spill lately, each kind
/// up to [`RECENT_PER_KIND`] (then forgotten at once): a definition's alternatives name the
/// same tests again and again, and Red Hat's definitions share their release and signature
/// tests. A value the spill does not hold is remembered as such. A failure to read the
/// spill is kept for the evaluation to stop at.
#[derive(Debug, Default)]
struct Recent {
    definitions: RecentOf<Definition>,
    tests: RecentOf<Test>,
    objects: RecentOf<Object>,
    states: RecentOf<State>,
    failure: RefCell<Option<SpillError>>,
}

/// How many values of one kind [`Recent`] keeps.
const RECENT_PER_KIND: usize = 4096;

type RecentOf<T> = RefCell<HashMap<String, Option<Rc<T>>>>;

impl Recent {
    fn definition(&self, spill: &Spill, id: &str) -> Option<Rc<Definition>> {
        self.get(&self.definitions, spill, Kind::Sequence, id)
    }

    fn test(&self, spill: &Spill, id: &str) -> Option<Rc<Test>> {
        self.get(&self.tests, spill, Kind::Test, id)
    }

    fn object(&self, spill: &Spill, id: &str) -> Option<Rc<Object>> {
        self.get(&self.objects, spill, Kind::Object, id)
    }

    fn state(&self, spill: &Spill, id: &str) -> Option<Rc<State>> {
        self.get(&self.states, spill, Kind::State, id)
    }

    fn get<T: DeserializeOwned>(
        &self,
        recent: &RecentOf<T>,
        spill: &Spill,
        kind: Kind,
        id: &str,
    ) -> Option<Rc<T>> {
        if let Some(value) = recent.borrow().get(id) {
            return value.clone();
        }
        let value = match spill.get::<T>(kind, id) {
            Ok(value) => value.map(Rc::new),
            Err(error) => {
                self.failure.borrow_mut().get_or_insert(error);
                return None;
            }
        };
        let mut recent = recent.borrow_mut();
        if recent.len() >= RECENT_PER_KIND {
            recent.clear();
        }
        recent.insert(id.to_owned(), value.clone());
        value
    }
}

impl Reading {
    /// `name` is the file's name, `release` the import's explicit release.
    pub(crate) fn new(name: &str, release: Option<&str>) -> Result<Reading, SpillError> {
        Ok(Reading {
            release: release.map(str::to_owned),
            file_release: file_release(name),
            spill: Spill::new()?,
            failure: None,
            recent: Recent::default(),
            definition: None,
            item: None,
            field: None,
            open_criteria: Vec::new(),
            ignored_criteria: 0,
            definition_count: 0,
        })
    }

    fn definition(&mut self) -> Option<&mut Definition> {
        self.definition.as_mut()
    }

    /// Keeps `value` in the spill; a failure stops the reading at the next element.
    fn keep(&mut self, kind: Kind, id: &str, value: &impl Serialize) {
        if self.failure.is_none()
            && let Err(error) = self.spill.put(kind, id, value)
        {
            self.failure = Some(error);
        }
    }
}

/// The field of `fields` named `name`.
fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|field| field.name == name)
}

impl Handler for Reading {
    fn open(&mut self, element: &Element, stack: &[String]) -> Result<(), String> {
        if let Some(failure) = &self.failure {
            return Err(format!("the temporary database failed: {failure}"));
        }
        let name = element.name();
        let parent = stack.last().map(String::as_str).unwrap_or_default();
        let section = stack.get(1).map(String::as_str).unwrap_or_default();
        match (section, parent, name) {
            ("definitions", "definitions", "definition") => {
                let mut values = element.attributes()?;
                self.definition_count += 1;
                self.open_criteria.clear();
                self.ignored_criteria = 0;
                self.definition = Some(Definition {
                    id: values.remove("id").unwrap_or_default(),
                    class: values.remove("class").unwrap_or_default(),
                    deprecated: values
                        .get("deprecated")
                        .is_some_and(|value| value == "true"),
                    ..Definition::default()
                });
            }
            ("definitions", "metadata", "reference") => {
                let mut values = element.attributes()?;
                let reference = (
                    values.remove("source").unwrap_or_default(),
                    values.remove("ref_id").unwrap_or_default(),
                );
                if let Some(definition) = self.definition() {
                    definition.references.push(reference);
                }
            }
            ("definitions", "advisory", "issued" | "updated") => {
                let date = element.attributes()?.remove("date");
                if let Some(definition) = self.definition() {
                    let date = date.filter(|date| !date.is_empty());
                    if name == "issued" {
                        definition.issued = date;
                    } else {
                        definition.updated = date;
                    }
                }
            }
            ("definitions", "affected", "resolution") => {
                let state = element.attributes()?.remove("state").unwrap_or_default();
                if let Some(definition) = self.definition() {
                    definition.resolutions.push((state, Vec::new()));
                }
            }
            ("definitions", _, "criteria")
                if self.ignored_criteria > 0 || self.open_criteria.len() >= MAX_CRITERIA_DEPTH =>
            {
                if self.ignored_criteria == 0
                    && let Some(Node::Criteria { children, .. }) = self.open_criteria.last_mut()
                {
                    children.push(Node::TooDeep);
                }
                self.ignored_criteria += 1;
            }
            ("definitions", _, "criteria") => {
                let mut values = element.attributes()?;
                self.open_criteria.push(Node::Criteria {
                    operator: values
                        .remove("operator")
                        .unwrap_or_else(|| "AND".to_owned()),
                    negate: values.get("negate").is_some_and(|value| value == "true"),
                    children: Vec::new(),
                });
            }
            ("definitions", "criteria", "criterion" | "extend_definition")
                if self.ignored_criteria == 0 =>
            {
                let mut values = element.attributes()?;
                let negate = values.get("negate").is_some_and(|value| value == "true");
                let mut text = |attribute: &str| values.remove(attribute).unwrap_or_default();
                let node = if name == "criterion" {
                    Node::Criterion {
                        test: text("test_ref"),
                        negate,
                    }
                } else {
                    Node::Extend {
                        definition: text("definition_ref"),
                        negate,
                    }
                };
                if let Some(Node::Criteria { children, .. }) = self.open_criteria.last_mut() {
                    children.push(node);
                }
            }
            ("tests", "tests", _) | ("objects", "objects", _) | ("states", "states", _) => {
                let mut values = element.attributes()?;
                let comment = values
                    .remove("comment")
                    .filter(|_| name == "textfilecontent54_test");
                let kind = name.to_owned();
                let mut text = |attribute: &str| values.remove(attribute).unwrap_or_default();
                let id = text("id");
                self.item = Some(match section {
                    "tests" => Item::Test(
                        id,
                        Test {
                            kind,
                            check: text("check"),
                            check_existence: text("check_existence"),
                            state_operator: text("state_operator"),
                            comment,
                            ..Test::default()
                        },
                    ),
                    "objects" => Item::Object(
                        id,
                        Object {
                            kind,
                            ..Object::default()
                        },
                    ),
                    _ => Item::State(
                        id,
                        State {
                            kind,
                            ..State::default()
                        },
                    ),
                });
            }
            ("tests", _, "object" | "state") => {
                let mut values = element.attributes()?;
                let attribute = if name == "object" {
                    "object_ref"
                } else {
                    "state_ref"
                };
                let reference = values.remove(attribute).unwrap_or_default();
                if let Some(Item::Test(_, test)) = &mut self.item {
                    if name == "object" {
                        test.object = reference;
                    } else {
                        test.states.push(reference);
                    }
                }
            }
            ("objects" | "states", _, _) if stack.len() == 3 => {
                let mut values = element.attributes()?;
                self.field = Some(Field {
                    name: name.to_owned(),
                    operation: values
                        .remove("operation")
                        .unwrap_or_else(|| "equals".to_owned()),
                    datatype: values.remove("datatype").unwrap_or_default(),
                    has_variable: values.contains_key("var_ref"),
                    value: String::new(),
                });
            }
            ("objects", _, _) if stack.len() > 3 => {
                if let Some(Item::Object(_, object)) = &mut self.item {
                    object.problem = Some(format!("an object with <{name}>"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, name: &str, text: &str, stack: &[String]) {
        let parent = stack.last().map(String::as_str).unwrap_or_default();
        let section = stack.get(1).map(String::as_str).unwrap_or_default();
        let text = text.trim();
        match (section, parent, name) {
            ("definitions", "definitions", "definition") => {
                if let Some(definition) = self.definition.take() {
                    self.keep(Kind::Sequence, &definition.id.clone(), &definition);
                }
            }
            ("definitions", "metadata", "title") => {
                if let Some(definition) = self.definition() {
                    definition.title = text.to_owned();
                }
            }
            ("definitions", "metadata", "description") => {
                if let Some(definition) = self.definition() {
                    // A rejected CVE (`** REJECT **  DO NOT USE THIS CANDIDATE NUMBER`) is
                    // kept withdrawn.
                    definition.deprecated |= text.contains("** REJECT **");
                    // Only the summary's first line is kept.
                    definition.description = short_summary(None, Some(text));
                }
            }
            ("definitions", "affected", "platform") => {
                if let Some(definition) = self.definition() {
                    definition.platforms.push(text.to_owned());
                }
            }
            // Oracle's `<advisory><severity>`, Azure Linux's `<metadata><severity>`.
            ("definitions", "advisory" | "metadata", "severity") => {
                if let Some(definition) = self.definition() {
                    definition.severity = text.to_owned();
                }
            }
            ("definitions", "metadata", "advisory_date") => {
                if let Some(definition) = self.definition() {
                    definition.issued = Some(text.to_owned()).filter(|date| !date.is_empty());
                }
            }
            ("definitions", "affected_cpe_list", "cpe") => {
                let product = text
                    .strip_prefix("cpe:/a:redhat:")
                    .or_else(|| text.strip_prefix("cpe:/o:redhat:"));
                if let Some(product) = product
                    && let Some(definition) = self.definition()
                {
                    let stream = normalize_ecosystem(&format!("Red Hat:{product}"));
                    if !definition.streams.contains(&stream) {
                        definition.streams.push(stream);
                    }
                }
            }
            ("definitions", "resolution", "component") => {
                if let Some((_, components)) = self
                    .definition()
                    .and_then(|definition| definition.resolutions.last_mut())
                {
                    components.push(text.to_owned());
                }
            }
            ("definitions", "advisory", "cve") => {
                if let Some(definition) = self.definition()
                    && !text.is_empty()
                    && !definition.cves.iter().any(|known| known == text)
                {
                    definition.cves.push(text.to_owned());
                }
            }
            ("definitions", _, "criteria") if self.ignored_criteria > 0 => {
                self.ignored_criteria -= 1;
            }
            ("definitions", _, "criteria") => {
                let Some(done) = self.open_criteria.pop() else {
                    return;
                };
                match self.open_criteria.last_mut() {
                    Some(Node::Criteria { children, .. }) => children.push(done),
                    _ => {
                        if let Some(definition) = self.definition.as_mut() {
                            if definition.criteria.is_some() {
                                definition
                                    .problems
                                    .push("more than one top-level <criteria>".to_owned());
                            }
                            definition.criteria = Some(done);
                        }
                    }
                }
            }
            ("tests" | "objects" | "states", _, _) if stack.len() == 2 => match self.item.take() {
                Some(Item::Test(id, test)) => self.keep(Kind::Test, &id, &test),
                Some(Item::Object(id, object)) => self.keep(Kind::Object, &id, &object),
                Some(Item::State(id, state)) => self.keep(Kind::State, &id, &state),
                None => {}
            },
            ("objects" | "states", _, _) if stack.len() == 3 => {
                let Some(mut field) = self.field.take() else {
                    return;
                };
                field.value = text.to_owned();
                let problem = if field.has_variable {
                    Some(format!("a <{}> from a variable", field.name))
                } else if matches!(field.name.as_str(), "filter" | "set") {
                    // A filter or a set narrows or widens the object.
                    Some(format!("a <{}>", field.name))
                } else {
                    None
                };
                match &mut self.item {
                    Some(Item::Object(_, object)) => {
                        if problem.is_some() {
                            object.problem = problem;
                        }
                        object.fields.push(field);
                    }
                    Some(Item::State(_, state)) => state.fields.push(field),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn position(&self) -> String {
        match (&self.item, &self.definition) {
            (Some(Item::Test(id, _)), _) => format!("in test {id}"),
            (Some(Item::Object(id, _)), _) => format!("in object {id}"),
            (Some(Item::State(id, _)), _) => format!("in state {id}"),
            (None, Some(definition)) => {
                format!("in definition #{} {}", self.definition_count, definition.id)
            }
            (None, _) => format!("after {} definitions", self.definition_count),
        }
    }
}

/// The release an Azure Linux or CBL-Mariner OVAL file's name gives:
/// `azurelinux-3.0-oval.xml`, `cbl-mariner-2.0-oval.xml.gz` → `3.0`, `2.0`.
fn file_release(name: &str) -> Option<String> {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = file.split_once("-oval").map(|(stem, _)| stem)?;
    let (_, release) = stem.rsplit_once('-')?;
    let valid = release.starts_with(|c: char| c.is_ascii_digit())
        && release.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    valid.then(|| release.to_owned())
}

/// The distributions whose OVAL is read without an explicit release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Distribution {
    RedHat,
    OracleLinux,
    AzureLinux,
    Mariner,
}

impl Distribution {
    /// The distribution a definition is for, from its id's namespace or its platforms.
    fn of(definition: &Definition) -> Option<Distribution> {
        let namespace = definition
            .id
            .strip_prefix("oval:")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default();
        match namespace {
            "com.redhat.rhsa" | "com.redhat.rhba" | "com.redhat.rhea" | "com.redhat.cve" => {
                return Some(Distribution::RedHat);
            }
            "com.oracle.elsa" => return Some(Distribution::OracleLinux),
            "com.microsoft.azurelinux" => return Some(Distribution::AzureLinux),
            "com.microsoft.cbl-mariner" => return Some(Distribution::Mariner),
            _ => {}
        }
        definition.platforms.iter().find_map(|platform| {
            if platform.starts_with(RED_HAT_PLATFORM) {
                Some(Distribution::RedHat)
            } else if platform.starts_with("Oracle Linux") {
                Some(Distribution::OracleLinux)
            } else if platform.starts_with("Azure Linux") {
                Some(Distribution::AzureLinux)
            } else if platform.starts_with("CBL-Mariner") {
                Some(Distribution::Mariner)
            } else {
                None
            }
        })
    }
}

/// A test of an alternative, as far as matching is concerned.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    /// The distribution's release (its major version for Oracle Linux).
    Release(String),
    /// A package's affected versions.
    Package(PackageVersions),
    /// That a package is installed: every version of it is affected where nothing else
    /// in the alternative bounds its versions (Red Hat's unfixed packages).
    Installed(PackageVersions),
    /// The dnf module stream (`postgresql:13`) the alternative's packages come from.
    Module(String),
    /// A check of a file's content on the scanned root (a `textfilecontent54_test`).
    File(FileCheck),
    /// Holds for every package the inventory reads (a signature key, an architecture).
    Holds,
    /// Never holds on a system the feed is matched against (Red Hat's "must be
    /// installed" guard, another product's release).
    Never,
}

/// The versions of a package an `rpminfo_test` makes affected.
#[derive(Debug, Clone, PartialEq, Default)]
struct PackageVersions {
    name: String,
    /// The dnf module stream the fix belongs to.
    module: Option<String>,
    /// The checks of the root's files the alternative needs besides the versions.
    files: Vec<FileCheck>,
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    exact: Option<String>,
}

impl PackageVersions {
    /// The version the rpm's release tag is read from.
    fn bound(&self) -> Option<&str> {
        self.fixed
            .as_deref()
            .or(self.last_affected.as_deref())
            .or(self.exact.as_deref())
            .or(self.introduced.as_deref())
    }
}

impl Reading {
    /// Evaluates the definitions read, one at a time, handing each record to `sink`, which
    /// says whether it takes more; an error when the temporary database failed or the sink
    /// stopped taking records.
    pub(crate) fn into_result(self, sink: &mut dyn FnMut(Record) -> bool) -> Result<Oval, Stopped> {
        if let Some(failure) = self.failure {
            return Err(Stopped::Spill(failure));
        }
        self.spill.finish_writing()?;
        let mut result = Oval::default();
        self.spill.each_in_order(|definition: Definition| {
            let mut reasons = Vec::new();
            let record = self.evaluate(&definition, &mut reasons, &mut result);
            for reason in reasons {
                result.skipped.add(&definition.id, reason);
            }
            if let Some(failure) = self.recent.failure.take() {
                return Err(Stopped::Spill(failure));
            }
            if let Some(record) = record {
                result.record_count += 1;
                if !sink(record) {
                    return Err(Stopped::StoreFailed);
                }
            }
            Ok(())
        })?;
        Ok(result)
    }

    /// The record of `definition`, if it gives one; why (parts of) it cannot be read is
    /// added to `reasons`, each once.
    fn evaluate(
        &self,
        definition: &Definition,
        reasons: &mut Vec<String>,
        result: &mut Oval,
    ) -> Option<Record> {
        let id = &definition.id;
        // Red Hat's `oval:com.redhat.unaffected:` definitions list packages a CVE does
        // not affect.
        if !matches!(definition.class.as_str(), "patch" | "vulnerability")
            || id.starts_with("oval:com.redhat.unaffected:")
        {
            result.not_vulnerability += 1;
            return None;
        }
        let mut skip = |reason: String| {
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        };
        for problem in &definition.problems {
            skip(problem.clone());
        }
        let Some(criteria) = &definition.criteria else {
            skip("a definition without criteria".to_owned());
            return None;
        };
        let alternatives = match self.alternatives(criteria, 0) {
            Ok(alternatives) => alternatives,
            Err(reason) => {
                skip(reason);
                return None;
            }
        };
        // The versions per (ecosystem, package, status if unfixed): a package's streams
        // may each have a resolution of their own.
        let mut fixes_per_package: Vec<(PackageKey, Vec<PackageVersions>)> = Vec::new();
        for alternative in alternatives {
            if alternative
                .iter()
                .any(|condition| matches!(condition, Ok(Condition::Never)))
            {
                continue;
            }
            let conditions = match alternative.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(conditions) => conditions,
                Err(reason) => {
                    skip(reason);
                    continue;
                }
            };
            let mut releases = Vec::new();
            let mut packages = Vec::new();
            let mut installed = Vec::new();
            let mut modules = Vec::new();
            let mut files = Vec::new();
            for condition in conditions {
                match condition {
                    Condition::Release(release) => releases.push(release),
                    Condition::Package(package) => packages.push(package),
                    Condition::Installed(package) => installed.push(package),
                    Condition::Module(stream) => modules.push(stream),
                    Condition::File(check) => files.push(check),
                    Condition::Holds | Condition::Never => {}
                }
            }
            releases.sort();
            releases.dedup();
            modules.sort();
            modules.dedup();
            if packages.is_empty() && definition.class == "vulnerability" {
                // A vulnerability definition's package without a fixed version (Red
                // Hat's unfixed ones): affected in every version. In a patch, or
                // beside a version test, being installed is implied. A package's
                // signature test is one of it being installed too.
                installed.sort_by(|a, b| a.name.cmp(&b.name));
                installed.dedup_by(|a, b| a.name == b.name);
                packages = installed;
            }
            if releases.len() > 1 || packages.is_empty() {
                // No system is of two releases; an alternative testing no package
                // (the release alone) says nothing about packages.
                continue;
            }
            if modules.len() > 1 {
                skip(format!(
                    "an alternative needing several module streams at once ({})",
                    modules.join(", ")
                ));
                continue;
            }
            if packages.len() > 1 {
                let names: Vec<&str> = packages
                    .iter()
                    .map(|package| package.name.as_str())
                    .collect();
                skip(format!(
                    "an alternative needing several packages at once ({}) cannot be told by one package's version",
                    names.join(", ")
                ));
                continue;
            }
            let Some(mut package) = packages.pop() else {
                continue;
            };
            package.module = modules.pop();
            files.sort();
            files.dedup();
            package.files = files;
            let ecosystems = match self.ecosystem(definition, releases.first(), &package) {
                Ok(ecosystems) => ecosystems,
                Err(reason) => {
                    skip(reason);
                    continue;
                }
            };
            let unfixed = unfixed_status(definition, &package.name, package.module.as_deref());
            for ecosystem in ecosystems {
                let key = (ecosystem, package.name.clone(), unfixed);
                match fixes_per_package
                    .iter_mut()
                    .find(|(known, _)| *known == key)
                {
                    Some((_, versions)) if !versions.contains(&package) => {
                        versions.push(package.clone());
                    }
                    Some(_) => {}
                    None => fixes_per_package.push((key, vec![package.clone()])),
                }
            }
        }
        let affected: Vec<Affected> = fixes_per_package
            .into_iter()
            .map(|((ecosystem, name, unfixed), versions)| {
                package_affected(ecosystem, name, &versions, unfixed)
            })
            .filter(|affected| affected.status != Some(DistroStatus::NotAffected))
            .collect();
        if affected.is_empty() {
            if reasons.is_empty() {
                reasons.push("no alternative of the criteria tests a package version".to_owned());
            }
            return None;
        }
        Some(record(definition, affected))
    }
}

/// One alternative of a definition's criteria: the tests that must all hold, each as a
/// [`Condition`] or the reason it cannot be one.
type Alternative = Vec<Result<Condition, String>>;

impl Reading {
    /// The alternatives `node` expands into; an error when the whole definition cannot be
    /// read (too many alternatives, a missing or circular `extend_definition`).
    fn alternatives(&self, node: &Node, depth: usize) -> Result<Vec<Alternative>, String> {
        match node {
            Node::Criterion { negate: true, test } => {
                Ok(vec![vec![Err(format!("negated criterion {test}"))]])
            }
            Node::Criterion { test, .. } => Ok(vec![vec![self.condition(test)]]),
            Node::Extend {
                negate: true,
                definition,
            } => Ok(vec![vec![Err(format!(
                "negated extend_definition {definition}"
            ))]]),
            Node::Extend { definition, .. } => {
                if depth >= MAX_EXTEND_DEPTH {
                    return Err(format!(
                        "extend_definition deeper than {MAX_EXTEND_DEPTH} levels (a cycle?)"
                    ));
                }
                let extended = self
                    .recent
                    .definition(&self.spill, definition)
                    .ok_or_else(|| format!("extend_definition {definition} is not defined"))?;
                let criteria = extended
                    .criteria
                    .as_ref()
                    .ok_or_else(|| format!("extend_definition {definition} has no criteria"))?;
                self.alternatives(criteria, depth + 1)
            }
            Node::Criteria { negate: true, .. } => {
                Ok(vec![vec![Err("negated criteria".to_owned())]])
            }
            Node::TooDeep => Ok(vec![vec![Err(format!(
                "criteria nested deeper than {MAX_CRITERIA_DEPTH}"
            ))]]),
            Node::Criteria {
                operator, children, ..
            } => {
                let mut expanded = Vec::with_capacity(children.len());
                for child in children {
                    expanded.push(self.alternatives(child, depth)?);
                }
                match operator.as_str() {
                    "OR" => Ok(expanded.into_iter().flatten().collect()),
                    "AND" => {
                        let mut product: Vec<Alternative> = vec![Vec::new()];
                        for child in expanded {
                            if product.len().saturating_mul(child.len()) > MAX_ALTERNATIVES {
                                return Err(format!(
                                    "criteria expanding into more than {MAX_ALTERNATIVES} alternatives"
                                ));
                            }
                            product = product
                                .iter()
                                .flat_map(|done| {
                                    child.iter().map(move |more| {
                                        let mut joined = done.clone();
                                        joined.extend(more.iter().cloned());
                                        joined
                                    })
                                })
                                .collect();
                        }
                        Ok(product)
                    }
                    // With one child, ONE and XOR are that child.
                    _ if expanded.len() == 1 => Ok(expanded.into_iter().flatten().collect()),
                    other => Ok(vec![vec![Err(format!("criteria operator {other}"))]]),
                }
                .and_then(|alternatives: Vec<Alternative>| {
                    if alternatives.len() > MAX_ALTERNATIVES {
                        Err(format!(
                            "criteria expanding into more than {MAX_ALTERNATIVES} alternatives"
                        ))
                    } else {
                        Ok(alternatives)
                    }
                })
            }
        }
    }

    /// What the test `test` means for matching, or why it cannot be evaluated.
    fn condition(&self, id: &str) -> Result<Condition, String> {
        let test = self
            .recent
            .test(&self.spill, id)
            .ok_or_else(|| format!("test {id} is not defined"))?;
        let kind = test.kind.as_str();
        if !matches!(
            kind,
            "rpminfo_test" | "rpmverifyfile_test" | "textfilecontent54_test" | "uname_test"
        ) {
            return Err(format!(
                "{kind} {id} (rpminfo_test, rpmverifyfile_test of the release file, textfilecontent54_test and uname_test are read)"
            ));
        }
        let check = test.check.as_str();
        let check_existence = test.check_existence.as_str();
        let checks_absence = matches!(check, "none satisfy" | "none_satisfy")
            || matches!(check_existence, "none_exist" | "none exist");
        let state_operator = test.state_operator.as_str();
        if test.states.len() > 1 && !matches!(state_operator, "" | "AND") {
            return Err(format!(
                "test {id} combines its states with {state_operator}"
            ));
        }
        let object_id = test.object.as_str();
        let object = self
            .recent
            .object(&self.spill, object_id)
            .ok_or_else(|| format!("object {object_id} of test {id} is not defined"))?;
        if let Some(problem) = &object.problem {
            return Err(format!("object {object_id} has {problem}"));
        }
        match kind {
            "rpminfo_test" if checks_absence => Err(format!(
                "test {id} checks that nothing matches (check {check:?}, check_existence {check_existence:?})"
            )),
            "rpminfo_test" => self.package_condition(id, &test, &object),
            "rpmverifyfile_test" => self.release_file_condition(id, &test, &object, checks_absence),
            "uname_test" if checks_absence => Err(format!(
                "test {id} checks that the running kernel is not as its state says (check {check:?}, check_existence {check_existence:?})"
            )),
            "uname_test" => self.running_kernel_condition(id, &test),
            _ if checks_absence => Err(format!(
                "test {id} checks that no file content matches (check {check:?}, check_existence {check_existence:?})"
            )),
            _ => self.text_file_condition(id, &test, &object),
        }
    }

    /// The states of `test`, each with its id.
    fn test_states<'a>(
        &self,
        id: &str,
        test: &'a Test,
    ) -> Result<Vec<(&'a str, Rc<State>)>, String> {
        test.states
            .iter()
            .map(|state_id| {
                self.recent
                    .state(&self.spill, state_id)
                    .map(|state| (state_id.as_str(), state))
                    .ok_or_else(|| format!("state {state_id} of test {id} is not defined"))
            })
            .collect()
    }

    /// An `rpminfo_test`: a package's affected versions, the release of a release package,
    /// or that a package is installed.
    fn package_condition(
        &self,
        id: &str,
        test: &Test,
        object: &Object,
    ) -> Result<Condition, String> {
        let object_id = &test.object;
        let name = match field(&object.fields, "name") {
            Some(field) if field.operation == "equals" && !field.value.is_empty() => &field.value,
            Some(field) => {
                return Err(format!(
                    "object {object_id} names packages by {:?} {:?}",
                    field.operation, field.value
                ));
            }
            None => {
                return Err(format!("{} {object_id} without a <name>", object.kind));
            }
        };
        let is_release_package = is_release_package(name);
        let mut versions = PackageVersions {
            name: name.to_owned(),
            ..PackageVersions::default()
        };
        let mut release = None;
        for (state_id, state) in self.test_states(id, test)? {
            let state_kind = &state.kind;
            if state_kind != "rpminfo_state" {
                return Err(format!("{state_kind} {state_id} in rpminfo_test {id}"));
            }
            for field in &state.fields {
                let problem = |what: &str| {
                    Err(format!(
                        "state {state_id}: {what} <{} operation={:?}>{}",
                        field.name, field.operation, field.value
                    ))
                };
                if field.has_variable {
                    return problem("a value from a variable in");
                }
                match field.name.as_str() {
                    // Signed with the distribution's key (Red Hat's `redhatrelease2`,
                    // Oracle's): the inventory reads the rpm database, not signatures, and
                    // takes an installed build of the distribution's name and version for
                    // the distribution's own. Built for an architecture: the inventory
                    // reads the host's packages, of its architectures.
                    "signature_keyid" | "arch" => {}
                    "version" if is_release_package => match release_of(field) {
                        Some(major) => release = Some(major),
                        None => return problem("an unread release"),
                    },
                    "evr" if !is_release_package => {
                        if !matches!(field.datatype.as_str(), "" | "evr_string") {
                            return problem("a datatype other than evr_string in");
                        }
                        let evr = field.value.strip_prefix("0:").unwrap_or(&field.value);
                        let slot = match field.operation.as_str() {
                            "less than" => &mut versions.fixed,
                            "less than or equal" => &mut versions.last_affected,
                            "equals" => &mut versions.exact,
                            "greater than or equal" => &mut versions.introduced,
                            _ => return problem("an operation not read in"),
                        };
                        *slot = Some(evr.to_owned());
                    }
                    _ => return problem("a field not read:"),
                }
            }
        }
        if is_release_package {
            return Ok(release.map_or(Condition::Holds, Condition::Release));
        }
        if versions.bound().is_none() {
            return Ok(Condition::Installed(versions));
        }
        Ok(Condition::Package(versions))
    }

    /// Red Hat's `rpmverifyfile_test` of `/etc/redhat-release`: which release package owns
    /// the file. `check="at least one"` with a state `<name operation="pattern match">
    /// ^redhat-release</name><version operation="pattern match">^8[^\d]</version>` is
    /// "Red Hat Enterprise Linux 8 is installed", the release. `check="none satisfy"`
    /// ("Red Hat Enterprise Linux must be installed") holds where the file is not Red Hat's:
    /// it makes every definition true on other systems, so that they are not taken for
    /// clean; a system the feed is matched against is of the distribution, where it never
    /// holds. A state of another product's release package (`redhat-release-coreos`,
    /// "Red Hat CoreOS 4 is installed") never holds either.
    fn release_file_condition(
        &self,
        id: &str,
        test: &Test,
        object: &Object,
        checks_absence: bool,
    ) -> Result<Condition, String> {
        let path = field(&object.fields, "filepath")
            .map(|field| field.value.as_str())
            .unwrap_or_default();
        if !RELEASE_FILES.contains(&path) {
            return Err(format!(
                "rpmverifyfile_test {id} of {path:?} (only the release file's owner is read)"
            ));
        }
        let mut release = None;
        for (state_id, state) in self.test_states(id, test)? {
            for field in &state.fields {
                let problem = |what: &str| {
                    Err(format!(
                        "state {state_id}: {what} <{} operation={:?}>{}",
                        field.name, field.operation, field.value
                    ))
                };
                match field.name.as_str() {
                    "name" => {
                        let package = field
                            .value
                            .strip_prefix('^')
                            .unwrap_or(&field.value)
                            .trim_end_matches('$');
                        if package.contains("coreos") {
                            return Ok(Condition::Never);
                        }
                        if !is_release_package(package) {
                            return problem("a release package not read:");
                        }
                    }
                    "version" => match release_of(field) {
                        Some(major) => release = Some(major),
                        None => return problem("an unread release"),
                    },
                    _ => return problem("a field not read:"),
                }
            }
        }
        if checks_absence {
            return Ok(Condition::Never);
        }
        Ok(release.map_or(Condition::Holds, Condition::Release))
    }

    /// A `uname_test` ("kernel earlier than 0:4.18.0-80.1.2.el8_0 is currently running"): the
    /// running kernel's release (`uname -r`) held to the state's `os_release`, a
    /// [`FileCheck::running_kernel`] that only a scan of the running host answers. OVAL's
    /// `uname_object` has one item, so `check` does not matter; the state's other
    /// entities (machine class, node name, processor) are not read. `os_release` is a
    /// string entity, but Red Hat's write the kernel's `epoch:version-release` with
    /// `less than` and no datatype: an ordering of such a value is compared as
    /// `evr_string`, which the test's comment ("kernel earlier than 0:...") says it is.
    fn running_kernel_condition(&self, id: &str, test: &Test) -> Result<Condition, String> {
        let mut state = None;
        for (state_id, uname_state) in self.test_states(id, test)? {
            for field in &uname_state.fields {
                if field.name != "os_release" {
                    return Err(format!(
                        "state {state_id}: a field <{}> not read (the running kernel's os_release is)",
                        field.name
                    ));
                }
                if field.has_variable {
                    return Err(format!("state {state_id}: an os_release from a variable"));
                }
                if state.is_some() {
                    return Err(format!("state {state_id}: more than one os_release"));
                }
                let operation = Operation::from_name(&field.operation)
                    .ok_or_else(|| format!("state {state_id}: operation {:?}", field.operation))?;
                let epoch_prefixed = field.value.split_once(':').is_some_and(|(epoch, _)| {
                    !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit())
                });
                let datatype = match Datatype::from_name(&field.datatype) {
                    Some(Datatype::String)
                        if field.datatype.is_empty() && operation.orders() && epoch_prefixed =>
                    {
                        Datatype::EvrString
                    }
                    Some(datatype) => datatype,
                    None => {
                        return Err(format!("state {state_id}: datatype {:?}", field.datatype));
                    }
                };
                state = Some(TextState {
                    entity: Entity::Text,
                    operation,
                    datatype,
                    value: field.value.clone(),
                });
            }
        }
        FileCheck::running_kernel(state)
            .map(Condition::File)
            .map_err(|reason| format!("uname_test {id}: {reason}"))
    }

    /// A `textfilecontent54_test`: Red Hat's of a dnf module stream ("Module postgresql:13
    /// is enabled": a pattern over `/etc/dnf/modules.d/*.module`) names the module stream
    /// the alternative's packages come from; any other is a [`FileCheck`] of one file of the
    /// scanned root, evaluated when the root is matched.
    fn text_file_condition(
        &self,
        id: &str,
        test: &Test,
        object: &Object,
    ) -> Result<Condition, String> {
        let reads_modules = object
            .fields
            .iter()
            .any(|field| field.value.contains("/etc/dnf/modules.d"));
        let comment = test.comment.as_deref().unwrap_or_default();
        let stream = comment
            .strip_prefix("Module ")
            .and_then(|rest| rest.strip_suffix(" is enabled"))
            .and_then(parse_module_stream);
        match stream {
            Some(stream) if reads_modules => Ok(Condition::Module(stream)),
            _ => self
                .file_check(id, test, object)
                .map(Condition::File)
                .map_err(|reason| format!("textfilecontent54_test {id} ({comment:?}): {reason}")),
        }
    }

    /// The [`FileCheck`] of a `textfilecontent54_test` that is not about module streams:
    /// its object names one file (`filepath`, or `path` and `filename`, `equals`), a
    /// `pattern` (`pattern match`) and an `instance` (`equals` or `greater than or equal`),
    /// with the default behaviors; its one state, if any, one `text` or `subexpression`.
    fn file_check(&self, id: &str, test: &Test, object: &Object) -> Result<FileCheck, String> {
        let mut path = None;
        let mut directory = None;
        let mut file_name = None;
        let mut pattern = None;
        let mut instance = None;
        for field in &object.fields {
            let literal = |field: &Field| {
                (field.operation == "equals" && !field.value.is_empty())
                    .then(|| field.value.to_owned())
                    .ok_or_else(|| {
                        format!(
                            "a <{}> by {:?} {:?} (one named file is read)",
                            field.name, field.operation, field.value
                        )
                    })
            };
            match field.name.as_str() {
                "filepath" => path = Some(literal(field)?),
                "path" => directory = Some(literal(field)?),
                "filename" => file_name = Some(literal(field)?),
                "pattern" if field.operation == "pattern match" => {
                    pattern = Some(field.value.to_owned());
                }
                "instance" if matches!(field.datatype.as_str(), "" | "int") => {
                    let number = field
                        .value
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| format!("instance {:?}", field.value))?;
                    let from_on = match field.operation.as_str() {
                        "equals" => false,
                        "greater than or equal" => true,
                        other => return Err(format!("instance by {other:?}")),
                    };
                    instance = Some((number, from_on));
                }
                other => return Err(format!("an object field <{other}> not read")),
            }
        }
        let path = match (path, directory, file_name) {
            (Some(path), None, None) => path,
            (None, Some(directory), Some(file_name)) if !file_name.contains('/') => {
                format!("{}/{file_name}", directory.trim_end_matches('/'))
            }
            _ => return Err("an object naming no single file".to_owned()),
        };
        let pattern = pattern.ok_or("an object without a pattern")?;
        let (instance, from_instance_on) = instance.ok_or("an object without an instance")?;
        let all = match test.check.as_str() {
            "" | "at least one" => false,
            "all" => true,
            other => return Err(format!("check {other:?}")),
        };
        if !matches!(
            test.check_existence.as_str(),
            "" | "at_least_one_exists" | "all_exist"
        ) {
            return Err(format!("check_existence {:?}", test.check_existence));
        }
        let mut state = None;
        for (state_id, test_state) in self.test_states(id, test)? {
            for field in &test_state.fields {
                let entity = match field.name.as_str() {
                    "text" => Entity::Text,
                    "subexpression" => Entity::Subexpression,
                    other => return Err(format!("state {state_id}: a field <{other}> not read")),
                };
                if state.is_some() {
                    return Err(format!("state {state_id}: more than one field"));
                }
                state = Some(TextState {
                    entity,
                    operation: Operation::from_name(&field.operation).ok_or_else(|| {
                        format!("state {state_id}: operation {:?}", field.operation)
                    })?,
                    datatype: Datatype::from_name(&field.datatype).ok_or_else(|| {
                        format!("state {state_id}: datatype {:?}", field.datatype)
                    })?,
                    value: field.value.to_owned(),
                });
            }
        }
        FileCheck::new(path, pattern, instance, from_instance_on, all, state)
    }

    /// The ecosystems an alternative's package is placed in; none for an alternative of
    /// another product than the definition's platforms.
    fn ecosystem(
        &self,
        definition: &Definition,
        release: Option<&String>,
        package: &PackageVersions,
    ) -> Result<Vec<String>, String> {
        if let Some(release) = &self.release {
            return Ok(vec![release.clone()]);
        }
        let rpm_release = package
            .bound()
            .and_then(|evr| evr.rsplit_once('-'))
            .map(|(_, release)| release)
            .unwrap_or_default();
        let unknown = || {
            format!(
                "the release of package {} is unknown: import with --release",
                package.name
            )
        };
        match Distribution::of(definition).ok_or_else(unknown)? {
            Distribution::OracleLinux => release
                .cloned()
                .or_else(|| single_platform_release(definition, "Oracle Linux "))
                .or_else(|| release_tag(rpm_release, "el"))
                .map(|major| vec![normalize_ecosystem(&format!("Oracle Linux:{major}"))])
                .ok_or_else(unknown),
            Distribution::RedHat => {
                let major = release
                    .cloned()
                    .or_else(|| single_platform_release(definition, RED_HAT_PLATFORM))
                    .or_else(|| release_tag(rpm_release, "el"))
                    .ok_or_else(unknown)?;
                // "Red Hat CoreOS 4 is installed" beside "Red Hat Enterprise Linux 8 is
                // installed": an alternative for another product than the platforms.
                let platforms: Vec<&str> = definition
                    .platforms
                    .iter()
                    .filter_map(|platform| platform.strip_prefix(RED_HAT_PLATFORM))
                    .collect();
                if !platforms.is_empty() && !platforms.contains(&major.as_str()) {
                    return Ok(Vec::new());
                }
                Ok(red_hat_streams(definition, &major))
            }
            distribution @ (Distribution::AzureLinux | Distribution::Mariner) => {
                let base = if distribution == Distribution::AzureLinux {
                    "Azure Linux"
                } else {
                    "Mariner"
                };
                let from_tag = || {
                    release_tag(rpm_release, "azl")
                        .or_else(|| release_tag(rpm_release, "cm"))
                        .map(|major| format!("{major}.0"))
                };
                release
                    .cloned()
                    .or_else(|| self.file_release.clone())
                    .or_else(from_tag)
                    .map(|release| vec![normalize_ecosystem(&format!("{base}:{release}"))])
                    .ok_or_else(unknown)
            }
        }
    }
}

/// True for a package whose version is the distribution's release: one of
/// [`RELEASE_PACKAGES`], or RHEL 7's variants of `redhat-release`, which name the product
/// (not RHEL CoreOS's `redhat-release-coreos`).
fn is_release_package(name: &str) -> bool {
    RELEASE_PACKAGES.contains(&name)
        || name.strip_prefix("redhat-release-").is_some_and(|variant| {
            ["server", "workstation", "client", "computenode"].contains(&variant)
        })
}

/// The release a release package's `version` field names: `^9` (`pattern match`, also
/// `^9[^\d]`, `^9\.`) or `9` (`equals`) → `9`.
fn release_of(field: &Field) -> Option<String> {
    let number = match field.operation.as_str() {
        "pattern match" => {
            let pattern = field.value.strip_prefix('^')?;
            let digits: String = pattern.chars().take_while(char::is_ascii_digit).collect();
            let rest = &pattern[digits.len()..];
            // What may follow the number: its end, or anything but another digit.
            let bounded =
                ["", "$", "[^\\d]", "[^0-9]", "\\.", "(\\.|$)", "\\..*", ".*"].contains(&rest);
            (bounded && !digits.is_empty()).then_some(digits)?
        }
        "equals" => field
            .value
            .split('.')
            .next()
            .filter(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))?
            .to_owned(),
        _ => return None,
    };
    Some(number)
}

/// The Red Hat releases a definition of RHEL `major` is for: the product streams its
/// `<affected_cpe_list>` names, as OSV's Red Hat ecosystems name them
/// (`cpe:/a:redhat:enterprise_linux:8::appstream` → `Red Hat:8`,
/// `cpe:/o:redhat:rhel_eus:8.6::baseos` → `Red Hat:rhel_eus:8.6`: the EUS, AUS, E4S, TUS
/// and ELS feeds' fixes are for their stream only), those of another major release or
/// product left out; without such a CPE, the main stream.
fn red_hat_streams(definition: &Definition, major: &str) -> Vec<String> {
    let main = normalize_ecosystem(&format!("Red Hat:{major}"));
    let mut streams: Vec<String> = definition
        .streams
        .iter()
        .filter(|stream| {
            **stream == main
                || stream
                    .strip_prefix("Red Hat:rhel_")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(kind, version)| {
                        ["eus", "aus", "e4s", "tus", "els"].contains(&kind)
                            && version.split('.').next() == Some(major)
                    })
        })
        .cloned()
        .collect();
    if streams.is_empty() {
        streams.push(main);
    }
    streams
}

/// The release the definition's only platform names (`Oracle Linux 9`, `Red Hat
/// Enterprise Linux 8` → `9`, `8`), when it has one platform and that of `prefix`.
fn single_platform_release(definition: &Definition, prefix: &str) -> Option<String> {
    match definition.platforms.as_slice() {
        [platform] => platform
            .strip_prefix(prefix)
            .filter(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned),
        _ => None,
    }
}

/// The affected entry of a package in a definition: one range per alternative's versions.
/// Several fixes of one package, and a module stream's fix, each start at their own version
/// line, as in updateinfo.
fn package_affected(
    ecosystem: String,
    name: String,
    versions: &[PackageVersions],
    unfixed: DistroStatus,
) -> Affected {
    let several = versions
        .iter()
        .filter(|versions| versions.fixed.is_some())
        .count()
        > 1;
    let mut ranges = Vec::new();
    let mut exact = Vec::new();
    for versions in versions {
        if let Some(version) = &versions.exact {
            exact.push(version.clone());
            continue;
        }
        let introduced = match (&versions.introduced, &versions.fixed) {
            (Some(introduced), _) => introduced.clone(),
            (None, Some(fixed)) => {
                let version = fixed
                    .split_once(':')
                    .map_or(fixed.as_str(), |(_, rest)| rest);
                let version = version
                    .rsplit_once('-')
                    .map_or(version, |(version, _)| version);
                // A module stream's fix starts at the stream's version line where the stream
                // names one (`perl:5.30` → `5.30`, so that perl 5.26's builds are not held to
                // it), else at the fixed version's first component.
                let stream = versions
                    .module
                    .as_deref()
                    .and_then(|label| label.split_once(':'))
                    .map(|(_, stream)| stream);
                lower_bound(fixed, version, stream, several || versions.module.is_some())
            }
            (None, None) => "0".to_owned(),
        };
        let mut events = vec![Event::Introduced(introduced)];
        if let Some(fixed) = &versions.fixed {
            events.push(Event::Fixed(fixed.clone()));
        } else if let Some(last) = &versions.last_affected {
            events.push(Event::LastAffected(last.clone()));
        }
        ranges.push(Range {
            kind: RangeKind::Ecosystem,
            events,
            module: versions.module.clone(),
            files: versions.files.clone(),
        });
    }
    let fixed = versions.iter().any(|versions| versions.fixed.is_some());
    Affected {
        ecosystem,
        name,
        purl: None,
        ranges,
        versions: exact,
        status: Some(if fixed { DistroStatus::Fixed } else { unfixed }),
    }
}

/// A definition's package as its affected entries are made: ecosystem, name, and the
/// status it has where unfixed.
type PackageKey = (String, String, DistroStatus);

/// The status of an unfixed package of a definition, of the dnf module stream `module` if
/// the alternative is for one: its Red Hat `<resolution>`'s (the one naming it as a
/// `<component>`, `podman` or, for a module stream's package, `container-tools:4.0/podman`;
/// else the only one): `Will not fix` and `Out of support scope` are not to be fixed, `Not
/// affected` not affected; `Affected`, `Fix deferred`, `Under investigation` and no
/// resolution are open.
fn unfixed_status(definition: &Definition, package: &str, module: Option<&str>) -> DistroStatus {
    let names_package = |component: &str| match component.split_once('/') {
        Some((stream, name)) => name == package && module == Some(stream),
        None => component == package,
    };
    let resolution = definition
        .resolutions
        .iter()
        .find(|(_, components)| components.iter().any(|component| names_package(component)))
        .or(match definition.resolutions.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    match resolution
        .map(|(state, _)| state.to_ascii_lowercase())
        .as_deref()
    {
        Some("will not fix" | "out of support scope") => DistroStatus::WillNotFix,
        Some("not affected") => DistroStatus::NotAffected,
        _ => DistroStatus::Open,
    }
}

/// A definition's record: its advisory id (the first reference that is not a CVE: ELSA),
/// else its CVE's; its CVEs as aliases.
fn record(definition: &Definition, affected: Vec<Affected>) -> Record {
    let is_cve = |source: &str| source.eq_ignore_ascii_case("CVE");
    let mut cves: Vec<String> = definition
        .references
        .iter()
        .filter(|(source, id)| is_cve(source) && !id.is_empty())
        .map(|(_, id)| id.clone())
        .collect();
    for cve in &definition.cves {
        if !cves.contains(cve) {
            cves.push(cve.clone());
        }
    }
    let id = definition
        .references
        .iter()
        .find(|(source, id)| !is_cve(source) && !id.is_empty())
        .map(|(_, id)| id.clone())
        .or_else(|| cves.first().cloned())
        .unwrap_or_else(|| definition.id.clone());
    cves.retain(|cve| *cve != id);
    Record {
        id,
        aliases: cves,
        summary: short_summary(Some(&definition.title), Some(&definition.description)),
        severity: Some(definition.severity.clone()).filter(|severity| !severity.is_empty()),
        cvss_vector: None,
        cvss_score: None,
        withdrawn: definition.deprecated,
        published: definition.issued.clone(),
        modified: definition.updated.clone(),
        affected,
    }
}
