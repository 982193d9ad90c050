//! Distribution feeds: the Debian security tracker JSON, its DSA/DLA list text files, and
//! Alpine secdb JSON.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ecosystem::debian_release;
use crate::model::{Affected, DistroStatus, Event, Range, RangeKind, Record, short_summary};

/// `https://security-tracker.debian.org/tracker/data/json`: package → CVE → entry.
pub(crate) type DebianTracker = BTreeMap<String, BTreeMap<String, DebianEntry>>;

#[derive(Debug, Deserialize)]
pub(crate) struct DebianEntry {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    releases: BTreeMap<String, DebianRelease>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DebianRelease {
    #[serde(default)]
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa_reason: Option<String>,
}

/// The range for "every version before `fixed`", or for "every version" without one.
fn below(fixed: Option<&str>) -> Range {
    let mut events = vec![Event::Introduced("0".to_owned())];
    if let Some(fixed) = fixed {
        events.push(Event::Fixed(fixed.to_owned()));
    }
    Range {
        kind: RangeKind::Ecosystem,
        events,
        module: None,
        files: Vec::new(),
    }
}

fn distro_affected(
    ecosystem: String,
    name: &str,
    status: DistroStatus,
    fixed: Option<&str>,
) -> Affected {
    Affected {
        ecosystem,
        name: name.to_owned(),
        purl: None,
        ranges: vec![below(fixed)],
        versions: Vec::new(),
        status: Some(status),
    }
}

/// One record per CVE, with one affected entry per source package and release.
pub(crate) fn from_debian_tracker(tracker: DebianTracker) -> Vec<Record> {
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    for (package, cves) in tracker {
        for (cve, entry) in cves {
            let record = records.entry(cve.clone()).or_insert_with(|| Record {
                id: cve.clone(),
                aliases: Vec::new(),
                summary: short_summary(None, entry.description.as_deref()),
                severity: None,
                cvss_vector: None,
                cvss_score: None,
                withdrawn: false,
                published: None,
                modified: None,
                affected: Vec::new(),
            });
            for (codename, release) in entry.releases {
                let fixed = release.fixed_version.as_deref().filter(|v| !v.is_empty());
                let urgency = release
                    .urgency
                    .as_deref()
                    .map(|urgency| urgency.trim_end_matches('*'))
                    .filter(|urgency| !urgency.is_empty() && *urgency != "not yet assigned");
                let status = match (release.status.as_str(), fixed) {
                    (_, Some("0")) | ("not-affected", _) => DistroStatus::NotAffected,
                    ("resolved", Some(_)) => DistroStatus::Fixed,
                    _ if urgency == Some("unimportant") => DistroStatus::Negligible,
                    _ if release.nodsa_reason.as_deref() == Some("ignored") => {
                        DistroStatus::WillNotFix
                    }
                    _ => DistroStatus::Open,
                };
                if record.severity.is_none() {
                    record.severity = urgency.map(str::to_owned);
                }
                let fixed = fixed.filter(|_| status == DistroStatus::Fixed);
                let ecosystem = format!("Debian:{}", debian_release(&codename));
                record
                    .affected
                    .push(distro_affected(ecosystem, &package, status, fixed));
            }
        }
    }
    records.into_values().collect()
}

/// Parses the tracker's `data/DSA/list` (or `DLA/list`) text format (body lines start with a
/// tab):
///
/// ```text
/// [29 Mar 2023] DSA-5380-1 xorg-server - security update
///     {CVE-2023-1393}
///     [bullseye] - xorg-server 2:1.20.11-1+deb11u6
///     [buster] - foo <not-affected> (Vulnerable code not present)
/// ```
///
/// Returns the records and, per malformed line, its number and the reason.
pub(crate) fn from_debian_list(text: &str) -> (Vec<Record>, Vec<(usize, String)>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let line_number = line_idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some((_date, header)) = rest.split_once(']') else {
                problems.push((line_number, "unterminated date".to_owned()));
                continue;
            };
            let header = header.trim();
            let (id, description) = header.split_once(' ').unwrap_or((header, ""));
            if id.is_empty() {
                problems.push((line_number, "missing advisory id".to_owned()));
                continue;
            }
            records.push(Record {
                id: id.to_owned(),
                aliases: Vec::new(),
                summary: short_summary(Some(description), None),
                severity: None,
                cvss_vector: None,
                cvss_score: None,
                withdrawn: false,
                published: None,
                modified: None,
                affected: Vec::new(),
            });
            continue;
        }
        let Some(record) = records.last_mut() else {
            problems.push((line_number, "line before the first advisory".to_owned()));
            continue;
        };
        let body = line.trim();
        if let Some(ids) = body.strip_prefix('{').and_then(|ids| ids.strip_suffix('}')) {
            record
                .aliases
                .extend(ids.split_whitespace().map(str::to_owned));
        } else if let Some(rest) = body.strip_prefix('[') {
            match parse_release_line(rest) {
                Some(affected) => record.affected.push(affected),
                None => problems.push((line_number, format!("unreadable release line {body:?}"))),
            }
        } else if body.starts_with("NOTE:") {
            // Free-text notes carry nothing to match.
        } else {
            problems.push((line_number, format!("unexpected line {body:?}")));
        }
    }
    (records, problems)
}

/// `bullseye] - pkg VERSION` or `lenny] - pkg <not-affected> (reason)`.
fn parse_release_line(rest: &str) -> Option<Affected> {
    let (codename, rest) = rest.split_once(']')?;
    let rest = rest.trim().strip_prefix('-')?.trim();
    let mut words = rest.split_whitespace();
    let package = words.next()?;
    let version = words.next()?;
    let ecosystem = format!("Debian:{}", debian_release(codename.trim()));
    let (status, fixed) = match version {
        "<not-affected>" => (DistroStatus::NotAffected, None),
        "<unfixed>" => (DistroStatus::Open, None),
        "<no-dsa>" | "<ignored>" | "<postponed>" => (DistroStatus::WillNotFix, None),
        "<end-of-life>" => (DistroStatus::WillNotFix, None),
        version if version.starts_with('<') => return None,
        version => (DistroStatus::Fixed, Some(version)),
    };
    Some(distro_affected(ecosystem, package, status, fixed))
}

/// Alpine secdb: `{"distroversion", "reponame", "packages": [{"pkg": {"name", "secfixes"}}]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct AlpineSecdb {
    distroversion: String,
    #[serde(default)]
    packages: Vec<AlpinePackage>,
}

#[derive(Debug, Deserialize)]
struct AlpinePackage {
    pkg: AlpinePkg,
}

#[derive(Debug, Deserialize)]
struct AlpinePkg {
    name: String,
    #[serde(default)]
    secfixes: BTreeMap<String, Option<Vec<String>>>,
}

/// One record per vulnerability id, with one affected entry per package.
pub(crate) fn from_alpine(secdb: AlpineSecdb) -> Vec<Record> {
    let ecosystem =
        crate::ecosystem::normalize_ecosystem(&format!("Alpine:{}", secdb.distroversion));
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    for package in secdb.packages {
        for (version, ids) in package.pkg.secfixes {
            // A fix "version" of 0 lists vulnerabilities that never affected Alpine's build.
            let status = if version == "0" {
                DistroStatus::NotAffected
            } else {
                DistroStatus::Fixed
            };
            for ids in ids.unwrap_or_default() {
                let mut words = ids.split_whitespace();
                let Some(id) = words.next() else { continue };
                let record = records.entry(id.to_owned()).or_insert_with(|| Record {
                    id: id.to_owned(),
                    aliases: Vec::new(),
                    summary: String::new(),
                    severity: None,
                    cvss_vector: None,
                    cvss_score: None,
                    withdrawn: false,
                    published: None,
                    modified: None,
                    affected: Vec::new(),
                });
                for alias in words {
                    if !record.aliases.iter().any(|known| known == alias) {
                        record.aliases.push(alias.to_owned());
                    }
                }
                let fixed = (status == DistroStatus::Fixed).then_some(version.as_str());
                record.affected.push(distro_affected(
                    ecosystem.clone(),
                    &package.pkg.name,
                    status,
                    fixed,
                ));
            }
        }
    }
    records.into_values().collect()
}
