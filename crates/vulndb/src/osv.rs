//! OSV records (JSON or YAML) into [`Record`]s.

use serde::Deserialize;

use crate::ecosystem::normalize_ecosystem;
use crate::model::{Affected, Event, Range, RangeKind, Record, cvss_score, short_summary};

#[derive(Debug, Deserialize)]
pub(crate) struct OsvRecord {
    id: String,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    /// The upstream vulnerabilities a distribution's record addresses (OSV 1.7: a DSA, USN,
    /// RHSA or UBUNTU-CVE names its CVEs here, often instead of in `aliases`).
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    /// Dates are kept as written; a value that is not a string is ignored, not an error.
    #[serde(default)]
    published: Option<serde_json::Value>,
    #[serde(default)]
    modified: Option<serde_json::Value>,
    #[serde(default)]
    severity: Option<Vec<OsvSeverity>>,
    #[serde(default)]
    affected: Option<Vec<OsvAffected>>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Debug, Deserialize)]
struct OsvAffected {
    #[serde(default)]
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Option<Vec<OsvRange>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    severity: Option<Vec<OsvSeverity>>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
    #[serde(default)]
    purl: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<OsvEvent>,
}

#[derive(Debug, Deserialize)]
struct OsvEvent {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// Converts a deserialised OSV record; `Err` names why it is unusable.
pub(crate) fn convert(osv: OsvRecord) -> Result<Record, String> {
    if osv.id.trim().is_empty() {
        return Err("empty id".to_owned());
    }
    let severities = osv.severity.unwrap_or_default();
    let mut affected = Vec::new();
    let mut per_package_severities = Vec::new();
    for osv_affected in osv.affected.unwrap_or_default() {
        // An entry without a package names only commits (GIT ranges); nothing to match.
        let Some(package) = osv_affected.package else {
            continue;
        };
        per_package_severities.extend(osv_affected.severity.unwrap_or_default());
        let mut ranges = Vec::new();
        for osv_range in osv_affected.ranges.unwrap_or_default() {
            let kind = match osv_range.kind.as_str() {
                "SEMVER" => RangeKind::Semver,
                "ECOSYSTEM" => RangeKind::Ecosystem,
                "GIT" => RangeKind::Git,
                other => return Err(format!("unknown range type {other:?}")),
            };
            let events = if kind == RangeKind::Git {
                Vec::new()
            } else {
                osv_range
                    .events
                    .into_iter()
                    .map(convert_event)
                    .collect::<Result<Vec<_>, _>>()?
            };
            ranges.push(Range {
                kind,
                events,
                module: None,
                files: Vec::new(),
            });
        }
        let severity = osv_affected
            .ecosystem_specific
            .as_ref()
            .and_then(|value| value.get("severity"))
            .and_then(|value| value.as_str())
            .map(str::to_owned);
        let ecosystem = normalize_ecosystem(&package.ecosystem);
        affected.push((
            Affected {
                name: package.name,
                purl: package.purl,
                ranges,
                versions: osv_affected.versions.unwrap_or_default(),
                status: None,
                ecosystem,
            },
            severity,
        ));
    }
    // Prefer the newest CVSS version the record carries.
    let vector = ["CVSS_V4", "CVSS_V3", "CVSS_V2"].iter().find_map(|kind| {
        severities
            .iter()
            .chain(&per_package_severities)
            .find(|severity| severity.kind == *kind)
            .map(|severity| severity.score.clone())
    });
    let database_severity = osv
        .database_specific
        .as_ref()
        .and_then(|value| value.get("severity"))
        .and_then(|value| value.as_str())
        .map(str::to_owned)
        .or_else(|| affected.iter().find_map(|(_, severity)| severity.clone()));
    let scored = vector.as_deref().and_then(cvss_score);
    // Upstream ids merge a distribution's advisory with its CVEs, as the DSA list's `{CVE-…}`
    // lines do: one finding per vulnerability and package, naming every id.
    let mut aliases = osv.aliases.unwrap_or_default();
    for upstream in osv.upstream.unwrap_or_default() {
        if upstream != osv.id && !aliases.contains(&upstream) {
            aliases.push(upstream);
        }
    }
    Ok(Record {
        summary: short_summary(osv.summary.as_deref(), osv.details.as_deref()),
        id: osv.id,
        aliases,
        severity: database_severity.or_else(|| scored.map(|(_, rating)| rating.to_owned())),
        cvss_score: scored.map(|(score, _)| score),
        cvss_vector: vector,
        withdrawn: osv.withdrawn.is_some(),
        published: date_text(osv.published),
        modified: date_text(osv.modified),
        affected: affected.into_iter().map(|(affected, _)| affected).collect(),
    })
}

/// A date field's text, if it is a string.
fn date_text(value: Option<serde_json::Value>) -> Option<String> {
    value.and_then(|value| value.as_str().map(str::to_owned))
}

fn convert_event(event: OsvEvent) -> Result<Event, String> {
    match (
        event.introduced,
        event.fixed,
        event.last_affected,
        event.limit,
    ) {
        (Some(version), None, None, None) => Ok(Event::Introduced(version)),
        (None, Some(version), None, None) => Ok(Event::Fixed(version)),
        (None, None, Some(version), None) => Ok(Event::LastAffected(version)),
        (None, None, None, Some(version)) => Ok(Event::Limit(version)),
        _ => Err(
            "a range event must have exactly one of introduced, fixed, last_affected, limit"
                .to_owned(),
        ),
    }
}

/// Parses one OSV JSON record, or an array of them.
pub(crate) fn from_json_value(value: serde_json::Value) -> Vec<Result<Record, String>> {
    match value {
        serde_json::Value::Array(items) => items.into_iter().map(from_json_one).collect(),
        value => vec![from_json_one(value)],
    }
}

fn from_json_one(value: serde_json::Value) -> Result<Record, String> {
    let osv: OsvRecord = serde_json::from_value(value).map_err(|error| error.to_string())?;
    convert(osv)
}

/// Parses one OSV YAML record.
pub(crate) fn from_yaml(text: &str) -> Result<Record, String> {
    let osv: OsvRecord = serde_saphyr::from_str(text).map_err(|error| error.to_string())?;
    convert(osv)
}
