//! The normalised advisory model every importer produces and the store keeps.

use serde::{Deserialize, Serialize};

use crate::textfile::FileCheck;

/// One advisory, reduced to the fields matching and reporting need.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The advisory id (`GO-2022-0956`, `DSA-5380-1`, `CVE-2023-1393`).
    pub id: String,
    /// Other ids of the same vulnerability (CVE, GHSA, ...).
    pub aliases: Vec<String>,
    /// A one-line summary, or the start of the details when there is none.
    pub summary: String,
    /// The feed's severity word (`HIGH`, `low`), else the CVSS rating of the vector.
    pub severity: Option<String>,
    /// The CVSS vector, when the feed gives one.
    pub cvss_vector: Option<String>,
    /// The CVSS base score computed from the vector.
    pub cvss_score: Option<f64>,
    /// Whether the advisory was withdrawn; kept, but never matched.
    pub withdrawn: bool,
    /// When the advisory was published (or issued), as the feed writes the date.
    pub published: Option<String>,
    /// When the advisory was last modified (or updated), as the feed writes the date.
    pub modified: Option<String>,
    /// The affected packages.
    pub affected: Vec<Affected>,
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    /// The normalised ecosystem, with its release for distributions (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// The package name; the source package for distributions.
    pub name: String,
    /// The package URL, when given.
    pub purl: Option<String>,
    /// The version ranges.
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
    /// The distribution's status for this package, for distro feeds.
    pub status: Option<DistroStatus>,
}

/// An OSV range: a type and its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// The range type.
    #[serde(rename = "t")]
    pub kind: RangeKind,
    /// The events, in the order the feed gave them.
    #[serde(rename = "e", default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The dnf module stream (`container-tools:rhel8`) the range is for, when its feed
    /// names one (Red Hat's module packages): it applies only to packages that may be of
    /// that stream ([`crate::Package::module_streams`]).
    #[serde(rename = "md", default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Checks of the scanned root's file contents that must all hold for the range to
    /// apply (Red Hat's OVAL `textfilecontent54_test`s beside a package's versions).
    #[serde(rename = "fc", default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileCheck>,
}

/// The OSV range types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    /// `SEMVER`: bounds are SemVer 2.0 versions.
    #[serde(rename = "S")]
    Semver,
    /// `ECOSYSTEM`: bounds are versions in the ecosystem's own scheme.
    #[serde(rename = "E")]
    Ecosystem,
    /// `GIT`: bounds are commits, which a package version cannot be compared with.
    #[serde(rename = "G")]
    Git,
}

/// An OSV range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The first affected version (`0` means every earlier version).
    #[serde(rename = "i")]
    Introduced(String),
    /// The first version that is no longer affected.
    #[serde(rename = "f")]
    Fixed(String),
    /// The last affected version.
    #[serde(rename = "l")]
    LastAffected(String),
    /// An upper limit: versions at or above it are outside the range (`*` is infinity).
    #[serde(rename = "m")]
    Limit(String),
}

/// A distribution's status for a package and a vulnerability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DistroStatus {
    /// A fixed version exists.
    Fixed,
    /// Not fixed yet.
    Open,
    /// The distribution decided not to fix it.
    WillNotFix,
    /// The package is not affected.
    NotAffected,
    /// Affected, but the distribution rates it negligible (Debian's "unimportant").
    Negligible,
}

impl DistroStatus {
    /// The text stored and printed: `fixed`, `open`, `will-not-fix`, `not-affected`, `negligible`.
    pub fn as_str(self) -> &'static str {
        match self {
            DistroStatus::Fixed => "fixed",
            DistroStatus::Open => "open",
            DistroStatus::WillNotFix => "will-not-fix",
            DistroStatus::NotAffected => "not-affected",
            DistroStatus::Negligible => "negligible",
        }
    }

    /// Parses what [`DistroStatus::as_str`] prints.
    pub fn from_name(text: &str) -> Option<DistroStatus> {
        [
            DistroStatus::Fixed,
            DistroStatus::Open,
            DistroStatus::WillNotFix,
            DistroStatus::NotAffected,
            DistroStatus::Negligible,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A summary from a summary and details: the summary, else the first line of the details,
/// cut at 300 characters so that the index stays compact.
pub(crate) fn short_summary(summary: Option<&str>, details: Option<&str>) -> String {
    let text = summary
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .or_else(|| details.and_then(|details| details.trim().lines().next()))
        .unwrap_or("");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The CVSS base score of a vector (v2, v3.0, v3.1 or v4.0) and its rating (`none`, `low`,
/// `medium`, `high`, `critical`), or `None` if the vector does not parse.
pub(crate) fn cvss_score(vector: &str) -> Option<(f64, &'static str)> {
    vector
        .parse::<cvss::Cvss>()
        .ok()
        .map(|cvss| (cvss.score(), cvss.severity().as_str()))
}
