//! The in-memory matching index: range bounds parsed once, packages hashed by ecosystem and
//! name, and advisories that alias each other grouped.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use palisade_version::{RpmVersion, Scheme, Version};
use serde::Serialize;

use crate::ecosystem::{
    fix_suggestion, index_ecosystem, matched_releases, normalize_ecosystem, normalize_name,
    rpm_upgrade_command, scheme_of, scheme_version,
};
use crate::error::{Error, ErrorKind};
use crate::model::{DistroStatus, Event, Range, RangeKind, Record};
use crate::source::{Lookup, binary_fixed_version, lookups};
use crate::textfile::FileCheck;

/// An installed package to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The ecosystem (`PyPI`, `Go`, `crates.io`, `Debian:12`, `Alpine:v3.19`, ...).
    pub ecosystem: String,
    /// The package name (the binary package for distributions).
    pub name: String,
    /// The installed version.
    pub version: String,
    /// The source package, for distributions; the name is used when absent.
    pub source_name: Option<String>,
    /// The source package's version, for dpkg packages whose source version differs from
    /// [`Package::version`]; Debian and Ubuntu advisories are compared with it.
    pub source_version: Option<String>,
    /// The dnf module streams (`container-tools:rhel8`) an rpm may be of: its modularity
    /// label's, else (for a module build) the streams its image enabled. An advisory's
    /// range for a module stream (Red Hat's OVAL, modular updateinfo collections) applies
    /// only to packages of one of these; when this is empty, to any module build (`.module+el8`
    /// in the release; its bound then holds it to the stream's version line) and to no
    /// other build.
    pub module_streams: Vec<String>,
}

/// One vulnerability affecting a package; advisories that alias each other are merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The main id: an advisory id of the feed, preferred over a bare CVE.
    pub id: String,
    /// Every other id of the vulnerability: aliases and the ids of merged advisories.
    pub aliases: Vec<String>,
    /// A one-line summary.
    pub summary: String,
    /// The feed's severity word, else the CVSS rating (`low` ... `critical`).
    pub severity: Option<String>,
    /// The CVSS base score.
    pub cvss_score: Option<f64>,
    /// The CVSS vector.
    pub cvss_vector: Option<String>,
    /// The package's ecosystem, normalised.
    pub ecosystem: String,
    /// The package name as queried.
    pub package: String,
    /// The installed version.
    pub installed_version: String,
    /// The source package the advisory names, when it is not [`Finding::package`].
    pub source_package: Option<String>,
    /// The installed source version the advisory was compared with, when it is not
    /// [`Finding::installed_version`].
    pub source_version: Option<String>,
    /// Fixed versions of [`Finding::package`] above the installed one, lowest first: the
    /// advisory's, or for a package compared by its source version the binary versions the
    /// fixed source versions give (see [`Finding::source_fixed_versions`]).
    pub fixed_versions: Vec<String>,
    /// The advisory's fixed versions of the source package, lowest first, for a package
    /// compared by its source version; empty otherwise.
    pub source_fixed_versions: Vec<String>,
    /// The command that upgrades the package to the first fixed version.
    pub fix: Option<String>,
    /// The distribution's status, for distro feeds.
    pub status: Option<DistroStatus>,
    /// When the advisory naming the finding was published (issued), as its feed writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// When it was last modified (updated), as its feed writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

/// What matching skipped, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MatchStats {
    /// `GIT` ranges: commits cannot be compared with package versions.
    pub git_ranges_skipped: u64,
    /// Ranges whose bounds are not valid versions in the ecosystem's scheme.
    pub invalid_ranges_skipped: u64,
    /// Advisories skipped because they were withdrawn.
    pub withdrawn_skipped: u64,
    /// Distro entries that say the package is not affected.
    pub not_affected_skipped: u64,
}

impl std::ops::AddAssign for MatchStats {
    /// Adds another package's counts (a scan's totals).
    fn add_assign(&mut self, other: MatchStats) {
        self.git_ranges_skipped += other.git_ranges_skipped;
        self.invalid_ranges_skipped += other.invalid_ranges_skipped;
        self.withdrawn_skipped += other.withdrawn_skipped;
        self.not_affected_skipped += other.not_affected_skipped;
    }
}

/// The findings for one package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchReport {
    /// The findings, ordered by id.
    pub findings: Vec<Finding>,
    /// What was skipped.
    pub stats: MatchStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Introduced,
    Fixed,
    LastAffected,
}

#[derive(Debug, Clone)]
enum Bound {
    /// `introduced: 0`, below every version.
    Zero,
    /// `limit: *`, above every version.
    Infinity,
    Version(Version),
}

impl Bound {
    fn cmp_version(&self, version: &Version) -> Ordering {
        match self {
            Bound::Zero => Ordering::Less,
            Bound::Infinity => Ordering::Greater,
            Bound::Version(bound) => bound.partial_cmp(version).unwrap_or(Ordering::Greater),
        }
    }

    fn cmp_bound(&self, other: &Bound) -> Ordering {
        match (self, other) {
            (Bound::Zero, Bound::Zero) | (Bound::Infinity, Bound::Infinity) => Ordering::Equal,
            (Bound::Zero, _) | (_, Bound::Infinity) => Ordering::Less,
            (_, Bound::Zero) | (Bound::Infinity, _) => Ordering::Greater,
            (Bound::Version(a), Bound::Version(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        }
    }
}

#[derive(Debug, Clone)]
enum ParsedRange {
    Git,
    Invalid,
    Events {
        /// Sorted by bound; at equal bounds `introduced` comes first.
        events: Vec<(EventKind, Bound, String)>,
        limits: Vec<Bound>,
        /// The dnf module stream the range is for.
        module: Option<String>,
        /// The checks of the scanned root's files the range needs.
        files: Vec<FileCheck>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    vuln: usize,
    ecosystem: String,
    ranges: Vec<ParsedRange>,
    versions: Vec<(String, Option<Version>)>,
    status: Option<DistroStatus>,
}

#[derive(Debug, Clone)]
struct Vuln {
    id: String,
    aliases: Vec<String>,
    summary: String,
    severity: Option<String>,
    cvss_vector: Option<String>,
    cvss_score: Option<f64>,
    withdrawn: bool,
    published: Option<String>,
    modified: Option<String>,
}

/// Matching index built from a [`crate::Database`] (or from records).
#[derive(Debug, Clone)]
pub struct Index {
    vulns: Vec<Vuln>,
    /// The alias group of each advisory (a representative advisory index).
    groups: Vec<usize>,
    packages: HashMap<(String, String), Vec<Entry>>,
    /// The index keys (releases, ecosystems) of the packages in `packages`.
    keys_with_advisories: HashSet<String>,
    /// What is loaded, when not every record is.
    loaded: Option<Loaded>,
}

/// What a partial index ([`Index::load_for`]) holds, and what it needs to load more.
#[derive(Debug, Clone)]
struct Loaded {
    /// The releases and ecosystems (index keys) loaded.
    keys: HashSet<String>,
    /// The ecosystems affected packages are stored under, as their import named them.
    stored_ecosystems: Vec<String>,
    /// Every record's row id and alias group when the index was created, by row id.
    row_groups: Vec<(i64, usize)>,
    /// The index in `vulns` of each record loaded, by row id.
    vuln_of_row: HashMap<i64, usize>,
}

impl Index {
    /// Loads every record of `database` and parses all range bounds.
    pub async fn load(database: &crate::Database) -> Result<Index, Error> {
        let records: Vec<Record> = database
            .records(None)
            .await?
            .into_iter()
            .map(|(_, record)| record)
            .collect();
        let id_lists: Vec<Vec<&str>> = records.iter().map(record_ids).collect();
        let groups = alias_groups(&id_lists);
        let mut index = Index {
            vulns: Vec::new(),
            groups: Vec::new(),
            packages: HashMap::new(),
            keys_with_advisories: HashSet::new(),
            loaded: None,
        };
        for (record, group) in records.into_iter().zip(groups) {
            index.add_record(record, group);
        }
        Ok(index)
    }

    /// Loads only what packages of `ecosystems` (as [`Package::ecosystem`] names them) are
    /// matched against: their releases' advisories (with the releases a SUSE product or
    /// stream is built from), or their language ecosystem's. Advisories are grouped by alias
    /// over the whole database, so findings are the ones [`Index::load`] gives;
    /// [`Index::matches`] refuses a package of another ecosystem until
    /// [`Index::extend_for`] loads it.
    pub async fn load_for(
        database: &crate::Database,
        ecosystems: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Index, Error> {
        let mut index = Index::load_none(database).await?;
        index.extend_for(database, ecosystems).await?;
        Ok(index)
    }

    /// An index of no ecosystem yet, knowing every advisory's alias group, for
    /// [`Index::extend_for`] to fill ecosystem by ecosystem (as an inventory finds them).
    pub async fn load_none(database: &crate::Database) -> Result<Index, Error> {
        // Stored names are normalised as their import did; they are read as this version
        // normalises them when an ecosystem is loaded.
        let stored_ecosystems = database.stored_ecosystems().await?;
        let all_ids = database.record_ids().await?;
        let id_lists: Vec<Vec<&str>> = all_ids
            .iter()
            .map(|(_, ids)| ids.iter().map(String::as_str).collect())
            .collect();
        let row_groups = all_ids
            .iter()
            .map(|(row_id, _)| *row_id)
            .zip(alias_groups(&id_lists))
            .collect();
        Ok(Index {
            vulns: Vec::new(),
            groups: Vec::new(),
            packages: HashMap::new(),
            keys_with_advisories: HashSet::new(),
            loaded: Some(Loaded {
                keys: HashSet::new(),
                stored_ecosystems,
                row_groups,
                vuln_of_row: HashMap::new(),
            }),
        })
    }

    /// Adds what packages of `ecosystems` are matched against (see [`Index::load_for`]),
    /// reading only the releases and ecosystems not loaded yet; nothing for an index of
    /// every record ([`Index::load`]).
    pub async fn extend_for(
        &mut self,
        database: &crate::Database,
        ecosystems: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<(), Error> {
        // Taken out while records are added, which borrows the whole index, and put back
        // whatever the reading gives.
        let Some(mut loaded) = self.loaded.take() else {
            return Ok(());
        };
        let extended = self.extend_loaded(&mut loaded, database, ecosystems).await;
        self.loaded = Some(loaded);
        extended
    }

    /// [`Index::extend_for`] on a partial index whose `loaded` is taken out of it.
    async fn extend_loaded(
        &mut self,
        loaded: &mut Loaded,
        database: &crate::Database,
        ecosystems: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<(), Error> {
        let wanted: HashSet<String> = ecosystems
            .into_iter()
            .flat_map(|ecosystem| matched_releases(&index_ecosystem(ecosystem.as_ref())))
            .filter(|key| !loaded.keys.contains(key))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let stored: Vec<String> = loaded
            .stored_ecosystems
            .iter()
            .filter(|stored| wanted.contains(&index_ecosystem(stored)))
            .cloned()
            .collect();
        let records = if stored.is_empty() {
            Vec::new()
        } else {
            database.records(Some(&stored)).await?
        };
        loaded.keys.extend(wanted);
        for (row_id, record) in records {
            // A record loaded for another ecosystem gets this one's affected packages.
            if let Some(&vuln_idx) = loaded.vuln_of_row.get(&row_id) {
                self.add_affected(vuln_idx, record.affected);
                continue;
            }
            // A record imported after the index learnt the alias groups is a group of its own.
            let group = loaded
                .row_groups
                .binary_search_by_key(&row_id, |(known, _)| *known)
                .map_or(loaded.row_groups.len() + self.vulns.len(), |position| {
                    loaded.row_groups[position].1
                });
            let vuln_idx = self.add_record(record, group);
            loaded.vuln_of_row.insert(row_id, vuln_idx);
        }
        Ok(())
    }

    /// Indexes a record in the alias group `group` (any number naming the group); returns
    /// its index.
    fn add_record(&mut self, record: Record, group: usize) -> usize {
        let vuln_idx = self.vulns.len();
        self.vulns.push(Vuln {
            id: record.id,
            aliases: record.aliases,
            summary: record.summary,
            severity: record.severity,
            cvss_vector: record.cvss_vector,
            cvss_score: record.cvss_score,
            withdrawn: record.withdrawn,
            published: record.published,
            modified: record.modified,
        });
        self.groups.push(group);
        self.add_affected(vuln_idx, record.affected);
        vuln_idx
    }

    /// Indexes affected packages of the record `vuln_idx`, parsing their range bounds.
    fn add_affected(&mut self, vuln_idx: usize, affected: Vec<crate::model::Affected>) {
        for affected in affected {
            let key_ecosystem = index_ecosystem(&affected.ecosystem);
            let ecosystem = normalize_ecosystem(&affected.ecosystem);
            let scheme = scheme_of(&ecosystem);
            let ranges = affected
                .ranges
                .iter()
                .map(|range| parse_range(scheme, range))
                .collect();
            let versions = affected
                .versions
                .into_iter()
                .map(|text| {
                    let parsed = scheme.and_then(|scheme| {
                        Version::parse(scheme, &scheme_version(scheme, &text)).ok()
                    });
                    (text, parsed)
                })
                .collect();
            let name = normalize_name(&key_ecosystem, &affected.name);
            if !self.keys_with_advisories.contains(&key_ecosystem) {
                self.keys_with_advisories.insert(key_ecosystem.clone());
            }
            self.packages
                .entry((key_ecosystem, name))
                .or_default()
                .push(Entry {
                    vuln: vuln_idx,
                    ecosystem,
                    ranges,
                    versions,
                    status: affected.status,
                });
        }
    }

    /// The number of advisories indexed.
    pub fn len(&self) -> usize {
        self.vulns.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.vulns.is_empty()
    }

    /// Every indexed package as (ecosystem key, normalised name); distribution keys include
    /// the release (`Debian:12`).
    pub fn packages(&self) -> impl Iterator<Item = (&str, &str)> {
        self.packages
            .keys()
            .map(|(ecosystem, name)| (ecosystem.as_str(), name.as_str()))
    }

    /// True when some advisory of the index names a package of `ecosystem` (as
    /// [`Package::ecosystem`] names it; for a distribution, of the releases its packages are
    /// matched against). False means its packages were not evaluated: no source imported
    /// into the database covers them (`Amazon Linux:2023`, a release whose feed was not
    /// imported), which a scan should say rather than report them clean.
    pub fn has_advisories_for(&self, ecosystem: &str) -> bool {
        matched_releases(&index_ecosystem(ecosystem))
            .iter()
            .any(|key| self.keys_with_advisories.contains(key))
    }

    /// The vulnerabilities that affect `package`, without a root to read: ranges that
    /// need a check of the root's files ([`Index::file_checks`]) do not apply.
    ///
    /// Fails only when the installed version is not valid in the ecosystem's scheme.
    pub fn matches(&self, package: &Package) -> Result<MatchReport, Error> {
        self.matches_on_root(package, &|_| false)
    }

    /// The checks of a root's file contents some loaded range needs (Red Hat's OVAL
    /// `textfilecontent54_test`s), each once: what a scan of a root reads to answer
    /// [`Index::matches_on_root`].
    pub fn file_checks(&self) -> Vec<&FileCheck> {
        let mut checks: Vec<&FileCheck> = self
            .packages
            .values()
            .flatten()
            .flat_map(|entry| &entry.ranges)
            .flat_map(|range| match range {
                ParsedRange::Events { files, .. } => files.as_slice(),
                _ => &[],
            })
            .collect();
        checks.sort();
        checks.dedup();
        checks
    }

    /// [`Index::matches`] for a package of a scanned root, where `file_holds` tells whether
    /// a check of the root's files holds ([`FileCheck::holds`] on the file's content): a
    /// range needing checks applies only where they all hold. It is asked only about
    /// ranges the installed version is in.
    ///
    /// Fails only when the installed version is not valid in the ecosystem's scheme.
    pub fn matches_on_root(
        &self,
        package: &Package,
        file_holds: &dyn Fn(&FileCheck) -> bool,
    ) -> Result<MatchReport, Error> {
        let ecosystem = normalize_ecosystem(&package.ecosystem);
        let key_ecosystem = index_ecosystem(&ecosystem);
        let scheme = scheme_of(&ecosystem);
        let compared = lookups(&ecosystem, package)
            .into_iter()
            .map(|lookup| {
                let installed = match scheme {
                    Some(scheme) => Some(
                        Version::parse(scheme, &scheme_version(scheme, &lookup.version)).map_err(
                            |source| ErrorKind::InvalidVersion {
                                package: package.name.clone(),
                                source,
                            },
                        )?,
                    ),
                    None => None,
                };
                Ok(Compared { lookup, installed })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let module_streams = package_module_streams(package);
        let mut stats = MatchStats::default();
        // Matched entries per alias group, in first-seen order: those that decide, each with
        // how it was found, and those that only add their ids.
        let mut matched: Vec<GroupMatch> = Vec::new();
        // The most specific of the package's releases with an advisory for a vulnerability
        // (an alias group) decides whether the package is affected and by which fix: a
        // product's or stream's own (SLES for SAP, LTSS) over its service pack's, whose
        // matching advisories only add their ids. Each group's deciding release rank.
        let mut deciding_release: HashMap<usize, usize> = HashMap::new();
        let releases = matched_releases(&key_ecosystem);
        if let Some(missing) = self.loaded.as_ref().and_then(|loaded| {
            releases
                .iter()
                .find(|release| !loaded.keys.contains(release.as_str()))
        }) {
            return Err(ErrorKind::NotLoaded {
                ecosystem: missing.clone(),
                package: package.name.clone(),
            }
            .into());
        }
        let lookups = releases
            .iter()
            .enumerate()
            .flat_map(|(release_rank, release)| {
                compared
                    .iter()
                    .enumerate()
                    .map(move |(lookup_index, compared)| {
                        (release_rank, release, lookup_index, compared)
                    })
            });
        for (release_rank, release, lookup_index, compared) in lookups {
            let key = (
                release.clone(),
                normalize_name(release, &compared.lookup.name),
            );
            let entries = self
                .packages
                .get(&key)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for entry in entries {
                if self.vulns[entry.vuln].withdrawn {
                    stats.withdrawn_skipped += 1;
                    continue;
                }
                let group = self.groups[entry.vuln];
                let decides =
                    *deciding_release.entry(group).or_insert(release_rank) == release_rank;
                if entry.status == Some(DistroStatus::NotAffected) {
                    stats.not_affected_skipped += 1;
                    continue;
                }
                if ksplice_build_differs(&key_ecosystem, &compared.lookup.version, entry) {
                    continue;
                }
                if !entry_affects(
                    entry,
                    compared.installed.as_ref(),
                    &compared.lookup.version,
                    module_streams,
                    file_holds,
                    &mut stats,
                ) {
                    continue;
                }
                let index = match matched.iter().position(|known| known.group == group) {
                    Some(index) => index,
                    None => {
                        matched.push(GroupMatch {
                            group,
                            deciding: Vec::new(),
                            also: Vec::new(),
                        });
                        matched.len() - 1
                    }
                };
                if decides {
                    matched[index].deciding.push((entry, lookup_index));
                } else {
                    matched[index].also.push(entry);
                }
            }
        }
        let mut findings: Vec<Finding> = matched
            .into_iter()
            .filter(|group_match| !group_match.deciding.is_empty())
            .map(|group_match| {
                self.finding(
                    package,
                    &ecosystem,
                    &compared,
                    &group_match,
                    module_streams,
                    file_holds,
                )
            })
            .collect();
        findings.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(MatchReport { findings, stats })
    }

    /// The finding for one alias group's matched entries: its ids from every entry, the rest
    /// from the deciding ones; `module_streams` are the package's
    /// ([`package_module_streams`], derived once per match).
    fn finding(
        &self,
        package: &Package,
        ecosystem: &str,
        compared: &[Compared],
        group_match: &GroupMatch,
        module_streams: ModuleStreams<'_>,
        file_holds: &dyn Fn(&FileCheck) -> bool,
    ) -> Finding {
        let entries = group_match.deciding.as_slice();
        let mut records: Vec<&Vuln> = entries
            .iter()
            .map(|(entry, _)| *entry)
            .chain(group_match.also.iter().copied())
            .map(|entry| &self.vulns[entry.vuln])
            .collect();
        // The feed's own advisory id names the finding; a bare CVE record only if alone.
        records.sort_by_key(|vuln| (vuln.id.starts_with("CVE-"), vuln.id.clone()));
        records.dedup_by(|a, b| a.id == b.id);
        let main = records[0];
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for vuln in &records {
            ids.insert(vuln.id.clone());
            ids.extend(vuln.aliases.iter().cloned());
        }
        ids.remove(&main.id);
        let scored = records
            .iter()
            .filter(|vuln| vuln.cvss_score.is_some())
            .max_by(|a, b| {
                a.cvss_score
                    .partial_cmp(&b.cvss_score)
                    .unwrap_or(Ordering::Equal)
            });
        // The lookup that found the vulnerability first names the source and its version.
        let first = &compared[entries[0].1];
        let mut fixed_versions: Vec<String> = Vec::new();
        let mut source_fixed_versions: Vec<String> = Vec::new();
        for (lookup_index, lookup) in compared.iter().enumerate() {
            let advisory_fixed = fixed_above(
                entries
                    .iter()
                    .filter(|(_, matched_by)| *matched_by == lookup_index)
                    .map(|(entry, _)| *entry),
                lookup.installed.as_ref(),
                module_streams,
                file_holds,
            );
            let (binary, source) =
                package_fixed_versions(package, &lookup.lookup.version, advisory_fixed);
            for version in binary {
                if !fixed_versions.contains(&version) {
                    fixed_versions.push(version);
                }
            }
            for version in source {
                if !source_fixed_versions.contains(&version) {
                    source_fixed_versions.push(version);
                }
            }
        }
        let status = [
            DistroStatus::Fixed,
            DistroStatus::Open,
            DistroStatus::WillNotFix,
            DistroStatus::Negligible,
        ]
        .into_iter()
        .find(|status| {
            entries
                .iter()
                .any(|(entry, _)| entry.status == Some(*status))
        });
        Finding {
            id: main.id.clone(),
            aliases: ids.into_iter().collect(),
            summary: records
                .iter()
                .map(|vuln| vuln.summary.as_str())
                .find(|summary| !summary.is_empty())
                .unwrap_or_default()
                .to_owned(),
            severity: records.iter().find_map(|vuln| vuln.severity.clone()),
            cvss_score: scored.and_then(|vuln| vuln.cvss_score),
            cvss_vector: scored
                .and_then(|vuln| vuln.cvss_vector.clone())
                .or_else(|| records.iter().find_map(|vuln| vuln.cvss_vector.clone())),
            ecosystem: entries.first().map_or_else(
                || ecosystem.to_owned(),
                |(entry, _)| entry.ecosystem.clone(),
            ),
            package: package.name.clone(),
            installed_version: package.version.clone(),
            source_package: Some(first.lookup.name.as_ref())
                .filter(|source| *source != package.name)
                .map(str::to_owned),
            source_version: Some(first.lookup.version.as_ref())
                .filter(|source| *source != package.version)
                .map(str::to_owned),
            fix: match (fixed_versions.first(), source_fixed_versions.first()) {
                (Some(version), _) => fix_suggestion(ecosystem, &package.name, version),
                // No binary version is derived from the fixed source: upgrade to the newest
                // available one instead of guessing.
                (None, Some(source_fixed)) => {
                    upgrade_to_newest(ecosystem, &package.name, &first.lookup.name, source_fixed)
                }
                (None, None) => None,
            },
            fixed_versions,
            source_fixed_versions,
            status,
            published: main.published.clone(),
            modified: main.modified.clone(),
        }
    }
}

/// One alias group's entries that affect a package.
struct GroupMatch<'a> {
    group: usize,
    /// The entries that decide the fix and status, each with the index in the lookups of the
    /// one that matched it: those of the most specific release with an advisory for the
    /// group (the package's own, else the one it is built from).
    deciding: Vec<(&'a Entry, usize)>,
    /// Entries of less specific releases of a group a more specific one decides (a service
    /// pack's, for an LTSS or SAP package): their ids name the same vulnerability.
    also: Vec<&'a Entry>,
}

/// A package's names and versions as the advisories may key them, with the version parsed.
#[derive(Debug)]
struct Compared<'a> {
    lookup: Lookup<'a>,
    installed: Option<Version>,
}

/// The advisories' fixed versions above `installed` in `entries`, lowest first: those of
/// ranges for the package's module streams.
fn fixed_above<'e>(
    entries: impl Iterator<Item = &'e Entry>,
    installed: Option<&Version>,
    module_streams: Option<&[String]>,
    file_holds: &dyn Fn(&FileCheck) -> bool,
) -> Vec<String> {
    let mut fixed: Vec<(&str, &Bound)> = Vec::new();
    for entry in entries {
        for range in &entry.ranges {
            if let ParsedRange::Events {
                events,
                limits,
                module,
                files,
            } = range
                && module_applies(module.as_ref(), module_streams)
                // As in `entry_affects`: the root's files are read only for a version in
                // the range.
                && (files.is_empty()
                    || installed.is_some_and(|installed| in_range(installed, events, limits))
                        && files.iter().all(file_holds))
            {
                for (kind, bound, text) in events {
                    let above = installed
                        .is_none_or(|installed| bound.cmp_version(installed) == Ordering::Greater);
                    if *kind == EventKind::Fixed
                        && above
                        && !fixed.iter().any(|(known, _)| known == text)
                    {
                        fixed.push((text, bound));
                    }
                }
            }
        }
    }
    fixed.sort_by(|a, b| a.1.cmp_bound(b.1));
    fixed.iter().map(|(text, _)| (*text).to_owned()).collect()
}

/// The command that upgrades `package` to the newest available version, for a fix known
/// only as a version of its source package `source`.
fn upgrade_to_newest(
    ecosystem: &str,
    package: &str,
    source: &str,
    source_fixed: &str,
) -> Option<String> {
    let command = match ecosystem.split(':').next().unwrap_or_default() {
        "Debian" | "Ubuntu" => "apt-get install --only-upgrade",
        "SUSE" | "openSUSE" => "zypper update",
        _ => rpm_upgrade_command(ecosystem)?,
    };
    Some(format!(
        "{command} {package} # source {source} {source_fixed} or later"
    ))
}

/// The fixed versions of the package itself, and the advisory's fixed source versions. For
/// a package compared by another version than its own (its source's), each fixed version is
/// turned into the binary version it gives ([`binary_fixed_version`]; those that cannot be
/// derived are left out), so that upgrades and re-checks use versions of the package they
/// name.
fn package_fixed_versions(
    package: &Package,
    compared: &str,
    advisory_fixed: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    if compared == package.version {
        return (advisory_fixed, Vec::new());
    }
    let binary_fixed = advisory_fixed
        .iter()
        .filter_map(|fixed| binary_fixed_version(&package.version, compared, fixed))
        .collect();
    (binary_fixed, advisory_fixed)
}

/// True when an Oracle Linux package and an advisory's fix are of different kinds of build:
/// one a Ksplice user-space build (`glibc 2:2.28-251.0.2.ksplice1.el8`), the other not.
/// Oracle fixes Ksplice builds in advisories of their own; a release's `ksplice` sorts above
/// a plain build's at the same number, so crossing them would report a plain build as
/// vulnerable until the Ksplice release (and a Ksplice build as fixed by a plain one).
/// Trivy compares them only with their own kind too.
fn ksplice_build_differs(ecosystem: &str, installed: &str, entry: &Entry) -> bool {
    if !ecosystem.starts_with("Oracle Linux:") {
        return false;
    }
    let is_ksplice = |version: &str| version.contains("ksplice");
    entry.ranges.iter().any(|range| match range {
        ParsedRange::Events { events, .. } => events.iter().any(|(kind, _, text)| {
            *kind == EventKind::Fixed && is_ksplice(text) != is_ksplice(installed)
        }),
        _ => false,
    })
}

/// The dnf module streams a package's ranges of module streams are matched against
/// ([`package_module_streams`]): `None` for a build no stream provided, which no stream's
/// range applies to; an empty list for a module build of no known stream, which every
/// stream's range applies to (held to its stream's version line by the range's bound).
type ModuleStreams<'a> = Option<&'a [String]>;

/// A package's [`ModuleStreams`]: those it names ([`Package::module_streams`]: its
/// modularity label's, else its image's enabled ones), else any for an rpm module build
/// (`.module+el8` in the release), else none. An rpm without the module tag was not built
/// in a module, so a stream's advisory is not for it (as Trivy and Grype, which match an
/// rpm of no modularity label against advisories of no module only, and dnf, which takes
/// it for a non-modular package).
fn package_module_streams(package: &Package) -> ModuleStreams<'_> {
    let module_build =
        || RpmVersion::parse(&package.version).is_ok_and(|version| version.is_module_build());
    (!package.module_streams.is_empty() || module_build())
        .then_some(package.module_streams.as_slice())
}

/// Whether a range of a dnf module stream is one `module_streams` may be of; ranges of no
/// stream are for every package.
fn module_applies(range_module: Option<&String>, module_streams: ModuleStreams<'_>) -> bool {
    range_module.is_none_or(|module| {
        module_streams.is_some_and(|streams| streams.is_empty() || streams.contains(module))
    })
}

/// Whether the installed version is in one of the entry's ranges (those of the package's
/// module streams, whose checks of the root's files hold) or its versions list.
fn entry_affects(
    entry: &Entry,
    installed: Option<&Version>,
    installed_text: &str,
    module_streams: ModuleStreams<'_>,
    file_holds: &dyn Fn(&FileCheck) -> bool,
    stats: &mut MatchStats,
) -> bool {
    let mut affected = false;
    for range in &entry.ranges {
        match range {
            ParsedRange::Git => stats.git_ranges_skipped += 1,
            ParsedRange::Invalid => stats.invalid_ranges_skipped += 1,
            ParsedRange::Events {
                events,
                limits,
                module,
                files,
            } => {
                if !module_applies(module.as_ref(), module_streams) {
                    continue;
                }
                // The root's files are read only for a version in the range.
                if let Some(installed) = installed
                    && in_range(installed, events, limits)
                    && files.iter().all(file_holds)
                {
                    affected = true;
                }
            }
        }
    }
    affected
        || entry
            .versions
            .iter()
            .any(|(text, parsed)| match (parsed, installed) {
                (Some(parsed), Some(installed)) => parsed == installed,
                _ => text == installed_text,
            })
}

/// The OSV evaluation: walk the sorted events; `introduced` at or below the version opens
/// the range, `fixed` at or below it and `last_affected` below it close it. With `limit`
/// events, the version must also be below one of them.
fn in_range(version: &Version, events: &[(EventKind, Bound, String)], limits: &[Bound]) -> bool {
    if !limits.is_empty()
        && !limits
            .iter()
            .any(|limit| limit.cmp_version(version) == Ordering::Greater)
    {
        return false;
    }
    let mut vulnerable = false;
    for (kind, bound, _) in events {
        let order = bound.cmp_version(version);
        match kind {
            EventKind::Introduced if order != Ordering::Greater => vulnerable = true,
            EventKind::Fixed if order != Ordering::Greater => vulnerable = false,
            EventKind::LastAffected if order == Ordering::Less => vulnerable = false,
            _ => {}
        }
    }
    vulnerable
}

fn parse_range(scheme: Option<Scheme>, range: &Range) -> ParsedRange {
    let scheme = match (range.kind, scheme) {
        (RangeKind::Git, _) => return ParsedRange::Git,
        (_, Some(scheme)) => scheme,
        (RangeKind::Semver, None) => Scheme::Semver,
        (RangeKind::Ecosystem, None) => return ParsedRange::Invalid,
    };
    let parse = |text: &str| {
        Version::parse(scheme, &scheme_version(scheme, text))
            .ok()
            .map(Bound::Version)
    };
    let mut parsed_events = Vec::with_capacity(range.events.len());
    let mut limits = Vec::new();
    for event in &range.events {
        let parsed = match event {
            Event::Introduced(text) if text == "0" => {
                Some((EventKind::Introduced, Bound::Zero, text))
            }
            Event::Introduced(text) => {
                parse(text).map(|bound| (EventKind::Introduced, bound, text))
            }
            Event::Fixed(text) => parse(text).map(|bound| (EventKind::Fixed, bound, text)),
            Event::LastAffected(text) => {
                parse(text).map(|bound| (EventKind::LastAffected, bound, text))
            }
            Event::Limit(text) => {
                match if text == "*" {
                    Some(Bound::Infinity)
                } else {
                    parse(text)
                } {
                    Some(bound) => limits.push(bound),
                    None => return ParsedRange::Invalid,
                }
                continue;
            }
        };
        match parsed {
            Some((kind, bound, text)) => parsed_events.push((kind, bound, text.clone())),
            None => return ParsedRange::Invalid,
        }
    }
    parsed_events.sort_by(|a, b| {
        a.1.cmp_bound(&b.1)
            .then_with(|| (a.0 != EventKind::Introduced).cmp(&(b.0 != EventKind::Introduced)))
    });
    ParsedRange::Events {
        events: parsed_events,
        limits,
        module: range.module.clone(),
        files: range.files.clone(),
    }
}

/// A record's id followed by its aliases.
fn record_ids(record: &Record) -> Vec<&str> {
    std::iter::once(&record.id)
        .chain(&record.aliases)
        .map(String::as_str)
        .collect()
}

/// Union-find over advisories (each given by its id and aliases) sharing an id or an alias;
/// returns each one's representative.
fn alias_groups(id_lists: &[Vec<&str>]) -> Vec<usize> {
    fn find(parents: &mut [usize], mut idx: usize) -> usize {
        while parents[idx] != idx {
            parents[idx] = parents[parents[idx]];
            idx = parents[idx];
        }
        idx
    }
    let mut parents: Vec<usize> = (0..id_lists.len()).collect();
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (vuln_idx, ids) in id_lists.iter().enumerate() {
        for id in ids {
            match owner.get(id) {
                Some(&other) => {
                    let (a, b) = (find(&mut parents, vuln_idx), find(&mut parents, other));
                    parents[a.max(b)] = a.min(b);
                }
                None => {
                    owner.insert(id, vuln_idx);
                }
            }
        }
    }
    (0..id_lists.len())
        .map(|idx| find(&mut parents, idx))
        .collect()
}
