//! yum/dnf `updateinfo.xml` repository metadata: Amazon Linux's ALAS, Oracle Linux's ELSA
//! and Fedora's Bodhi updates (and the same format from AlmaLinux and Rocky Linux).
//!
//! The format, as createrepo_c writes and dnf and libsolv read it:
//!
//! ```text
//! <updates>
//!   <update from="..." status="final" type="security" version="2.0">
//!     <id>ALAS2-2023-2061</id> <title>...</title> <severity>Important</severity>
//!     <release>Fedora 40</release> <issued date="2023-05-30 21:13"/> <updated date="..."/>
//!     <description>...</description>
//!     <references><reference href="..." id="CVE-2023-0465" type="cve" title="..."/></references>
//!     <pkglist><collection short="amazon-linux-2"><name>Amazon Linux 2</name>
//!       <package name="openssl" epoch="1" version="1.0.2k" release="24.amzn2.0.7"
//!                arch="x86_64" src="..."><filename>...</filename></package>
//!     </collection></pkglist>
//!   </update>
//! </updates>
//! ```
//!
//! Only `type="security"` updates become records (bug fix and enhancement updates are
//! counted and skipped): one per update, its id the update id, its aliases the CVE ids of its
//! references (`type="cve"`, and CVE ids in the titles of Fedora's Bugzilla references),
//! every listed package (binary and source rpms: the matcher looks an rpm up by its own name
//! and its source rpm's) affected below its epoch:version-release, status fixed. A modular
//! collection (`<collection><module name="container-tools" stream="rhel8" version=...
//! context=... arch=.../>`, as createrepo_c writes AlmaLinux's, Rocky Linux's and Oracle
//! Linux's module errata) fixes its packages in that stream only: their ranges carry the
//! stream ([`Range::module`]) and start at its version line, as Red Hat's OVAL module
//! ranges do, so that another stream's build of the same package is not held to the fix.
//!
//! The release an update is for is read from its id and packages (see [`Placement`]):
//! `ALAS-` is Amazon Linux 1 (`Amazon Linux:2018.03`), `ALAS2-` Amazon Linux 2,
//! `ALAS2022-`/`ALAS2023-` those releases; Amazon Linux 2's Extras topics (`ALAS2KERNEL-5.10-`,
//! the older `ALASKERNEL-5.4-`, `ALAS2PHP8.0-`, `ALAS2DOCKER-`) are Amazon Linux 2 too,
//! their fixes starting at the topic's version line where the packages are of it (the
//! 5.10 kernel's advisories do not apply to the 4.14 kernel of the same name). `ELSA-`
//! (Oracle Linux), `ALSA-` (AlmaLinux) and `RLSA-` (Rocky Linux) name their release in each
//! package's `.elN` release tag; Fedora's ids carry a year, not a release, which the
//! collection (`<name>Fedora 40</name>`, `short="F40"`) or `.fcN` tags give. EPEL's
//! (`FEDORA-EPEL-`) are installed on every Enterprise Linux and are skipped unless the import
//! names the release. An explicit release (`palisade db import --release`) places every
//! update.
//!
//! The document is read streaming ([`crate::xml`], which refuses document type
//! declarations) in bounded memory: only the update being read is held, each record is
//! handed on as its update ends ([`Reading::take_records`]: the import stores them in
//! batches as they come), and skips are grouped as they come ([`Skipped`]). One update
//! reads at most [`MAX_UPDATE_ENTRIES`] packages, collections and references; lists of
//! any length are checked for repeats through sets, so a hostile update is neither held
//! without bound nor compared with itself quadratically.

use std::collections::{HashMap, HashSet};

use crate::ecosystem::normalize_ecosystem;
use crate::import::Skipped;
use crate::model::short_summary;
use crate::model::{Affected, DistroStatus, Event as RangeEvent, Range, RangeKind, Record};
use crate::xml::{Element, Handler};

/// The most packages, collections and references (together) one `<update>` is read
/// with; the rest are not read and the update is told about. Real updates list up to a few
/// thousand (Fedora's texlive updates, every subpackage).
pub(crate) const MAX_UPDATE_ENTRIES: usize = 65_536;

/// The most problems (malformed packages, modules) told per update; the others are counted.
const MAX_PROBLEMS_PER_UPDATE: usize = 32;

/// What an updateinfo document gave besides its records (handed on as they are made): the
/// updates skipped (id and reason), the number of records made, and the number of updates
/// that were not security updates.
#[derive(Debug, Default)]
pub(crate) struct Updateinfo {
    pub(crate) skipped: Skipped,
    pub(crate) record_count: u64,
    pub(crate) not_security: u64,
}

/// The reading of one updateinfo document (its root `<updates>`), as a [`Handler`].
#[derive(Debug, Default)]
pub(crate) struct Reading {
    /// The release (an ecosystem such as `Amazon Linux:2`) placing every update instead of
    /// its id and packages.
    release: Option<String>,
    result: Updateinfo,
    /// The records of the updates that ended since [`Reading::take_records`] was last
    /// called (at most one when it is called after every closed element).
    finished: Vec<Record>,
    /// The `<update>` being read.
    update: Option<Update>,
    /// The `<update>` elements opened so far.
    update_count: usize,
}

impl Reading {
    pub(crate) fn new(release: Option<&str>) -> Reading {
        Reading {
            release: release.map(str::to_owned),
            ..Reading::default()
        }
    }

    /// The records made since the last call, for the caller to store.
    pub(crate) fn take_records(&mut self) -> std::vec::Drain<'_, Record> {
        self.finished.drain(..)
    }

    /// What the document gave so far besides its records.
    pub(crate) fn into_result(self) -> Updateinfo {
        self.result
    }
}

impl Handler for Reading {
    fn open(&mut self, element: &Element, stack: &[String]) -> Result<(), String> {
        if element.name() == "update" && stack.len() == 1 {
            self.update_count += 1;
        }
        open_element(element, stack, &mut self.update)
    }

    fn close(&mut self, name: &str, text: &str, stack: &[String]) {
        let parent = stack.last().map(String::as_str);
        if name == "update" && parent == Some("updates") {
            if let Some(done) = self.update.take()
                && let Some(record) = finish(done, self.release.as_deref(), &mut self.result)
            {
                self.result.record_count += 1;
                self.finished.push(record);
            }
            return;
        }
        if let Some(update) = self.update.as_mut() {
            close_element(name, parent, text, update);
        }
    }

    fn position(&self) -> String {
        format!("in update #{}", self.update_count)
    }
}

/// One `<update>` as read so far.
#[derive(Debug, Default)]
struct Update {
    kind: String,
    id: String,
    title: String,
    severity: String,
    release_name: String,
    description: String,
    issued: Option<String>,
    updated: Option<String>,
    /// The CVE ids of its references, each once, in the order given ([`Update::cve_set`]
    /// tells repeats).
    cves: Vec<String>,
    cve_set: HashSet<String>,
    collections: Vec<Collection>,
    /// The packages, collections and references read, up to [`MAX_UPDATE_ENTRIES`].
    entries: usize,
    /// Whether entries past [`MAX_UPDATE_ENTRIES`] were left unread.
    entries_left: bool,
    problems: Vec<String>,
    /// The problems past [`MAX_PROBLEMS_PER_UPDATE`], counted.
    problems_untold: usize,
}

impl Update {
    /// Whether one more package, collection or reference is read; past
    /// [`MAX_UPDATE_ENTRIES`] it is not, and the update is told about it once.
    fn admit_entry(&mut self) -> bool {
        if self.entries < MAX_UPDATE_ENTRIES {
            self.entries += 1;
            return true;
        }
        if !self.entries_left {
            self.entries_left = true;
            self.problems.push(format!(
                "more than {MAX_UPDATE_ENTRIES} packages, collections and references: the rest were not read"
            ));
        }
        false
    }

    /// A problem of the update, told as a skip (at most [`MAX_PROBLEMS_PER_UPDATE`] each).
    fn problem(&mut self, reason: String) {
        if self.problems.len() < MAX_PROBLEMS_PER_UPDATE {
            self.problems.push(reason);
        } else {
            self.problems_untold += 1;
        }
    }
}

#[derive(Debug, Default)]
struct Collection {
    short: String,
    name: String,
    /// The dnf module stream (`container-tools:rhel8`) of a modular collection's
    /// `<module name= stream=>`: its packages' fixes are for that stream only.
    module: Option<String>,
    /// A `<module>` that names no stream: the packages' stream is unknown, so they are not
    /// taken for every stream's.
    unreadable_module: bool,
    packages: Vec<UpdatePackage>,
}

#[derive(Debug)]
struct UpdatePackage {
    name: String,
    evr: String,
    version: String,
    release: String,
}

/// Handles an opening tag: `<update>` starts one; attributes of `<issued>`, `<updated>`,
/// `<reference>`, `<collection>` and `<package>` are read.
fn open_element(
    element: &Element,
    stack: &[String],
    update: &mut Option<Update>,
) -> Result<(), String> {
    let name = element.name();
    let parent = stack.last().map(String::as_str);
    if name == "update" && parent == Some("updates") {
        let mut values = element.attributes()?;
        *update = Some(Update {
            kind: values.remove("type").unwrap_or_default(),
            ..Update::default()
        });
        return Ok(());
    }
    let Some(update) = update.as_mut() else {
        return Ok(());
    };
    match (parent, name) {
        (Some("update"), "issued" | "updated") => {
            let date = element.attributes()?.remove("date");
            let date = date.filter(|date| !date.is_empty());
            if name == "issued" {
                update.issued = date;
            } else {
                update.updated = date;
            }
        }
        (Some("references"), "reference") => {
            if !update.admit_entry() {
                return Ok(());
            }
            let values = element.attributes()?;
            let field = |key: &str| values.get(key).map(String::as_str).unwrap_or_default();
            let mut found = if field("type") == "cve" && !field("id").is_empty() {
                vec![field("id").to_owned()]
            } else {
                Vec::new()
            };
            // Fedora lists Bugzilla bugs whose titles name the CVE; other references may
            // link a CVE page.
            found.extend(cve_ids(field("title")));
            found.extend(cve_ids(field("href")));
            for cve in found {
                if update.cve_set.insert(cve.clone()) {
                    update.cves.push(cve);
                }
            }
        }
        (Some("pkglist"), "collection") => {
            if !update.admit_entry() {
                return Ok(());
            }
            let short = element.attributes()?.remove("short").unwrap_or_default();
            update.collections.push(Collection {
                short,
                ..Collection::default()
            });
        }
        (Some("collection"), "module") => {
            let values = element.attributes()?;
            let field = |key: &str| values.get(key).map(String::as_str).unwrap_or_default();
            let (module, stream) = (field("name"), field("stream"));
            let module_stream = palisade_version::module_stream(module, stream);
            if module_stream.is_none() {
                update.problem(format!(
                    "a <module> without a valid name and stream (name {module:?}, stream {stream:?}): its collection is skipped"
                ));
            }
            if let Some(collection) = update.collections.last_mut() {
                match module_stream {
                    Some(module_stream) => collection.module = Some(module_stream),
                    None => collection.unreadable_module = true,
                }
            }
        }
        (Some("collection"), "package") => {
            if !update.admit_entry() {
                return Ok(());
            }
            let values = element.attributes()?;
            let field = |key: &str| values.get(key).map(String::as_str).unwrap_or_default();
            let (name, version, release) = (field("name"), field("version"), field("release"));
            if name.is_empty() || version.is_empty() || release.is_empty() {
                update.problem(format!(
                    "a package without name, version or release (name {name:?})"
                ));
                return Ok(());
            }
            let epoch = field("epoch");
            let evr = match epoch {
                "" | "0" => format!("{version}-{release}"),
                epoch => format!("{epoch}:{version}-{release}"),
            };
            if !epoch.bytes().all(|b| b.is_ascii_digit())
                || !is_evr_part(version)
                || !is_evr_part(release)
            {
                update.problem(format!(
                    "package {name} has a malformed epoch, version or release ({epoch:?}, {version:?}, {release:?})"
                ));
                return Ok(());
            }
            if let Some(collection) = update.collections.last_mut() {
                collection.packages.push(UpdatePackage {
                    name: name.to_owned(),
                    evr,
                    version: version.to_owned(),
                    release: release.to_owned(),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Handles a closing tag inside an `<update>` (`parent` is its parent's name) with the
/// text it held.
fn close_element(name: &str, parent: Option<&str>, text: &str, update: &mut Update) {
    let text = text.trim();
    match (parent, name) {
        (Some("update"), "id") => update.id = text.to_owned(),
        (Some("update"), "title") => update.title = text.to_owned(),
        (Some("update"), "severity") => update.severity = text.to_owned(),
        (Some("update"), "release") => update.release_name = text.to_owned(),
        (Some("update"), "description") => update.description = text.to_owned(),
        (Some("collection"), "name") => {
            if let Some(collection) = update.collections.last_mut() {
                collection.name = text.to_owned();
            }
        }
        _ => {}
    }
}

/// A version or release as rpm builds allow them: letters, digits and `._+~^` (no `-`,
/// which separates them, no space).
fn is_evr_part(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '^'))
}

/// The CVE ids (`CVE-2024-1234`) in a text.
pub(crate) fn cve_ids(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("CVE-") {
        let candidate = &rest[start + 4..];
        let year_len = candidate.bytes().take_while(u8::is_ascii_digit).count();
        let after_year = &candidate[year_len..];
        let number_len = after_year.strip_prefix('-').map_or(0, |number| {
            number.bytes().take_while(u8::is_ascii_digit).count()
        });
        if year_len == 4 && number_len >= 4 {
            let id = format!("CVE-{}", &candidate[..year_len + 1 + number_len]);
            if !found.contains(&id) {
                found.push(id);
            }
        }
        rest = &rest[start + 4..];
    }
    found
}

/// Where an update's packages belong.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    /// One release for every package; with an Amazon Linux 2 Extras topic's version line.
    Release {
        ecosystem: String,
        topic_version: Option<String>,
    },
    /// The release named by each package's `.elN` tag, under this distribution.
    EnterpriseLinux(&'static str),
    /// Fedora: the collection's release, else each package's `.fcN` tag.
    Fedora,
}

/// The placement an update's id gives, or why it has none.
fn placement(id: &str) -> Result<Placement, String> {
    let release = |ecosystem: &str| Placement::Release {
        ecosystem: ecosystem.to_owned(),
        topic_version: None,
    };
    if let Some(rest) = id.strip_prefix("ALAS") {
        let (family, _) = rest.split_once('-').unwrap_or((rest, ""));
        return Ok(match family {
            "" => release("Amazon Linux:2018.03"),
            "2" => release("Amazon Linux:2"),
            "2022" => release("Amazon Linux:2022"),
            "2023" => release("Amazon Linux:2023"),
            // Amazon Linux 2 Extras: `ALAS2KERNEL-5.10-2023-040`, `ALASKERNEL-5.4-...`,
            // `ALAS2PHP8.0-2023-001`, `ALAS2DOCKER-2023-001`.
            _ => {
                let topic = rest.strip_prefix('2').unwrap_or(rest);
                let mut parts = topic.split('-');
                let name = parts.next().unwrap_or_default();
                let after = parts.next().unwrap_or_default();
                // `KERNEL-5.10` keeps its version apart; `PHP8.0` runs it on.
                let version =
                    if after.contains('.') && name.bytes().all(|b| b.is_ascii_alphabetic()) {
                        after.to_owned()
                    } else {
                        name.trim_start_matches(|c: char| c.is_ascii_alphabetic())
                            .to_owned()
                    };
                if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    return Err(format!("unknown Amazon Linux advisory family {family:?}"));
                }
                Placement::Release {
                    ecosystem: "Amazon Linux:2".to_owned(),
                    topic_version: Some(version).filter(|version| is_version_line(version)),
                }
            }
        });
    }
    if id.starts_with("FEDORA-EPEL-") {
        return Err(
            "an EPEL update, installed on every Enterprise Linux: import it with --release naming the system's release".to_owned(),
        );
    }
    if id.starts_with("FEDORA-") {
        return Ok(Placement::Fedora);
    }
    for (prefix, distribution) in [
        ("ELSA-", "Oracle Linux"),
        ("ALSA-", "AlmaLinux"),
        ("RLSA-", "Rocky Linux"),
    ] {
        if id.starts_with(prefix) {
            return Ok(Placement::EnterpriseLinux(distribution));
        }
    }
    Err("the release of this update id is unknown: import it with --release".to_owned())
}

/// `5.10`, `8.0`, `1`: digits and dots, starting and ending with a digit.
fn is_version_line(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit())
        && text.ends_with(|c: char| c.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The number after the first `.<tag>` (or `+<tag>`, `_<tag>`) in an rpm release: `el` in
/// `427.13.1.el9_4`, Red Hat's `module+el8.6.0+...` and AlmaLinux's `module_el9.3.0+...`,
/// `fc` in `1.fc40`.
pub(crate) fn release_tag(release: &str, tag: &str) -> Option<String> {
    release
        .match_indices(tag)
        .filter(|(position, _)| {
            *position == 0 || matches!(release.as_bytes()[position - 1], b'.' | b'+' | b'_')
        })
        .find_map(|(position, _)| {
            let digits: String = release[position + tag.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some(digits).filter(|digits| !digits.is_empty())
        })
}

/// Fedora's release from a collection (`<name>Fedora 40</name>`, `short="F40"`) or the
/// update's `<release>`.
fn fedora_release(update: &Update, collection: &Collection) -> Option<String> {
    [collection.name.as_str(), update.release_name.as_str()]
        .iter()
        .find_map(|name| {
            name.strip_prefix("Fedora ")
                .map(str::trim)
                .filter(|number| number.bytes().all(|b| b.is_ascii_digit()) && !number.is_empty())
                .map(str::to_owned)
        })
        .or_else(|| {
            collection
                .short
                .strip_prefix('F')
                .filter(|number| number.bytes().all(|b| b.is_ascii_digit()) && !number.is_empty())
                .map(str::to_owned)
        })
}

/// A fixing package of an update, with its collection's module stream.
type Fix<'a> = (&'a UpdatePackage, Option<&'a String>);

/// Turns a complete update into its record, or tells in `result` why it has none; the
/// update's problems are told as skips either way.
fn finish(update: Update, release: Option<&str>, result: &mut Updateinfo) -> Option<Record> {
    let id = update.id.clone();
    if id.is_empty() {
        result
            .skipped
            .add("(no <id>)", "an update without an id".to_owned());
        return None;
    }
    if !update.kind.eq_ignore_ascii_case("security") {
        result.not_security += 1;
        return None;
    }
    let placement = match release {
        Some(release) => Placement::Release {
            ecosystem: release.to_owned(),
            topic_version: None,
        },
        None => match placement(&id) {
            Ok(placement) => placement,
            Err(reason) => {
                result.skipped.add(&id, reason);
                return None;
            }
        },
    };
    for problem in &update.problems {
        result.skipped.add(&id, problem.clone());
    }
    if update.problems_untold > 0 {
        result.skipped.add(
            &id,
            format!(
                "{} more malformed packages or modules, not told one by one",
                update.problems_untold
            ),
        );
    }
    // The fixing packages (one per fixed version and module stream) per (release, package
    // name), as listed, each with its collection's module stream; the sets find repeats.
    let mut fixes: Vec<((String, String), Vec<Fix>)> = Vec::new();
    let mut fix_at: HashMap<(String, String), usize> = HashMap::new();
    let mut fixes_seen: HashSet<(usize, &str, Option<&String>)> = HashSet::new();
    let mut unplaced: Vec<&str> = Vec::new();
    let mut unplaced_seen: HashSet<&str> = HashSet::new();
    for collection in &update.collections {
        if collection.unreadable_module {
            continue;
        }
        for package in &collection.packages {
            let ecosystem = match &placement {
                Placement::Release { ecosystem, .. } => Some(ecosystem.clone()),
                Placement::EnterpriseLinux(distribution) => release_tag(&package.release, "el")
                    .map(|major| format!("{distribution}:{major}")),
                Placement::Fedora => fedora_release(&update, collection)
                    .or_else(|| release_tag(&package.release, "fc"))
                    .map(|number| format!("Fedora:{number}")),
            };
            let Some(ecosystem) = ecosystem else {
                if unplaced_seen.insert(package.name.as_str()) {
                    unplaced.push(package.name.as_str());
                }
                continue;
            };
            let key = (normalize_ecosystem(&ecosystem), package.name.clone());
            let module = collection.module.as_ref();
            let at = *fix_at.entry(key).or_insert_with_key(|key| {
                fixes.push((key.clone(), Vec::new()));
                fixes.len() - 1
            });
            if fixes_seen.insert((at, package.evr.as_str(), module)) {
                fixes[at].1.push((package, module));
            }
        }
    }
    if !unplaced.is_empty() {
        result.skipped.add(
            &id,
            format!(
                "no release tag tells the release of {}",
                unplaced.join(", ")
            ),
        );
    }
    if fixes.is_empty() {
        if unplaced.is_empty() && update.problems.is_empty() {
            result
                .skipped
                .add(&id, "a security update without packages".to_owned());
        }
        return None;
    }
    let topic_version = match &placement {
        Placement::Release { topic_version, .. } => topic_version.as_deref(),
        _ => None,
    };
    let affected = fixes
        .into_iter()
        .map(|((ecosystem, name), fixing)| {
            let several = fixing.len() > 1;
            let ranges = fixing
                .iter()
                .map(|(package, module)| {
                    // A module stream's fix starts at the stream's version line where the
                    // stream names one (`perl:5.30`), else at its first component, as in
                    // Red Hat's OVAL.
                    let stream = module
                        .and_then(|module| module.split_once(':'))
                        .map(|(_, stream)| stream);
                    Range {
                        kind: RangeKind::Ecosystem,
                        events: vec![
                            RangeEvent::Introduced(lower_bound(
                                &package.evr,
                                &package.version,
                                topic_version.or(stream),
                                several || module.is_some(),
                            )),
                            RangeEvent::Fixed(package.evr.clone()),
                        ],
                        module: module.cloned(),
                        files: Vec::new(),
                    }
                })
                .collect();
            Affected {
                ecosystem,
                name,
                purl: None,
                ranges,
                versions: Vec::new(),
                status: Some(DistroStatus::Fixed),
            }
        })
        .collect();
    let summary = short_summary(Some(&update.title), Some(&update.description));
    Some(Record {
        id,
        aliases: update.cves,
        summary,
        severity: Some(update.severity).filter(|severity| !severity.is_empty()),
        cvss_vector: None,
        cvss_score: None,
        withdrawn: false,
        published: update.issued,
        modified: update.updated,
        affected,
    })
}

/// Where a fix's range starts: every earlier version (`0`), except for a fix of an Amazon
/// Linux 2 Extras topic's version line (the 5.10 kernel's fixes start at `5.10`, so that the
/// 4.14 kernel of the same name is not taken for an unfixed 5.10 one), and for a package an
/// update fixes in several version lines (module streams: nodejs 18 and 20), where each fix
/// starts at its own line's first version component.
pub(crate) fn lower_bound(
    evr: &str,
    version: &str,
    topic_version: Option<&str>,
    several: bool,
) -> String {
    let epoch = evr
        .split_once(':')
        .map(|(epoch, _)| format!("{epoch}:"))
        .unwrap_or_default();
    if let Some(line) = topic_version.filter(|line| {
        version == *line
            || version
                .strip_prefix(*line)
                .is_some_and(|rest| rest.starts_with('.'))
    }) {
        return format!("{epoch}{line}");
    }
    if several {
        let major = version
            .split(['.', '_', '~', '^', '+'])
            .next()
            .filter(|major| !major.is_empty())
            .unwrap_or("0");
        return format!("{epoch}{major}");
    }
    "0".to_owned()
}

#[cfg(test)]
mod tests {
    use super::{Placement, cve_ids, lower_bound, placement, release_tag};

    fn amazon(ecosystem: &str, topic_version: Option<&str>) -> Placement {
        Placement::Release {
            ecosystem: ecosystem.to_owned(),
            topic_version: topic_version.map(str::to_owned),
        }
    }

    #[test]
    fn update_ids_name_their_release() {
        for (id, expected) in [
            ("ALAS-2018-1058", amazon("Amazon Linux:2018.03", None)),
            ("ALAS2-2023-2061", amazon("Amazon Linux:2", None)),
            ("ALAS2022-2022-197", amazon("Amazon Linux:2022", None)),
            ("ALAS2023-2023-273", amazon("Amazon Linux:2023", None)),
            (
                "ALAS2KERNEL-5.10-2023-040",
                amazon("Amazon Linux:2", Some("5.10")),
            ),
            (
                "ALASKERNEL-5.4-2023-048",
                amazon("Amazon Linux:2", Some("5.4")),
            ),
            (
                "ALAS2PHP8.0-2023-001",
                amazon("Amazon Linux:2", Some("8.0")),
            ),
            (
                "ALAS2GOLANG1.19-2023-001",
                amazon("Amazon Linux:2", Some("1.19")),
            ),
            ("ALAS2NGINX1-2023-002", amazon("Amazon Linux:2", Some("1"))),
            ("ALAS2DOCKER-2023-029", amazon("Amazon Linux:2", None)),
            ("ELSA-2024-2570", Placement::EnterpriseLinux("Oracle Linux")),
            ("ALSA-2024:2570", Placement::EnterpriseLinux("AlmaLinux")),
            ("RLSA-2024:2570", Placement::EnterpriseLinux("Rocky Linux")),
            ("FEDORA-2024-5c1ef0ab42", Placement::Fedora),
        ] {
            assert_eq!(placement(id), Ok(expected), "{id}");
        }
        for id in [
            "FEDORA-EPEL-2024-0f7b6ef8ee",
            "RHSA-2024:2570",
            "ALAS9-2024-1",
            "x",
        ] {
            assert!(placement(id).is_err(), "{id}");
        }
    }

    #[test]
    fn release_tags_and_cve_ids_are_read_from_text() {
        assert_eq!(release_tag("427.13.1.el9_4", "el").as_deref(), Some("9"));
        assert_eq!(
            release_tag("205.149.5.1.el9uek", "el").as_deref(),
            Some("9")
        );
        assert_eq!(
            release_tag("1.module+el8.6.0+1234+abcd", "el").as_deref(),
            Some("8")
        );
        assert_eq!(
            release_tag("1.module_el9.3.0+88+2e4e5f2c", "el").as_deref(),
            Some("9")
        );
        assert_eq!(release_tag("8.fc40", "fc").as_deref(), Some("40"));
        // `el` inside a word, or without a number, is no tag.
        assert_eq!(release_tag("1.shell2", "el"), None);
        assert_eq!(release_tag("1.el", "el"), None);
        assert_eq!(
            cve_ids("CVE-2024-2398 curl: and CVE-2024-12345, not CVE-24-1 or CVE-2024-12"),
            ["CVE-2024-2398", "CVE-2024-12345"]
        );
        assert!(cve_ids("https://bugzilla.redhat.com/show_bug.cgi?id=2270500").is_empty());
    }

    #[test]
    fn fixes_start_at_their_version_line_where_one_is_known() {
        assert_eq!(lower_bound("1:1.0.2k-24.amzn2", "1.0.2k", None, false), "0");
        assert_eq!(
            lower_bound("5.10.196-185.743.amzn2", "5.10.196", Some("5.10"), false),
            "5.10"
        );
        // A topic whose version is not the package's (Corretto 8 is java 1.8.0).
        assert_eq!(
            lower_bound("1:1.8.0_392.b08-1.amzn2", "1.8.0_392.b08", Some("8"), false),
            "0"
        );
        assert_eq!(
            lower_bound("5.100.1-1.amzn2", "5.100.1", Some("5.10"), false),
            "0"
        );
        // One update fixing several streams of a package.
        assert_eq!(
            lower_bound("1:20.11.0-1.el9", "20.11.0", None, true),
            "1:20"
        );
    }
}
