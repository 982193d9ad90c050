//! RFC 5424 formatting.

use palisade_model::{Finding, Severity};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Formats `finding` as one RFC 5424 message (without transport framing).
///
/// `<PRI>1 TIMESTAMP HOSTNAME palisade - KIND [palisade@32473 id=".." rule=".." severity=".."] TITLE`.
/// The structured-data id uses the IANA example enterprise number 32473 (RFC 5612), since
/// Palisade has no private enterprise number of its own.
pub fn format_rfc5424(finding: &Finding, facility: u8, hostname: &str) -> String {
    let severity = match finding.severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    };
    let priority = u16::from(facility.min(23)) * 8 + severity;
    let timestamp = OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(finding.last_seen.millis()) * 1_000_000,
    )
    .ok()
    .and_then(|time| time.format(&Rfc3339).ok())
    .unwrap_or_else(|| "-".into());
    let hostname = header_field(hostname);
    format!(
        "<{priority}>1 {timestamp} {hostname} palisade - {kind} [palisade@32473 id=\"{id}\" rule=\"{rule}\" severity=\"{severity_name}\" asset=\"{asset}\"] {title}",
        kind = finding.kind().as_str(),
        id = finding.id,
        rule = param_value(&finding.rule),
        severity_name = finding.severity,
        asset = param_value(&finding.asset.label()),
        title = finding.title.replace(['\n', '\r'], " "),
    )
}

/// HOSTNAME is PRINTUSASCII without spaces, at most 255 characters; `-` when empty.
fn header_field(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

/// PARAM-VALUE escapes `"`, `\` and `]` (RFC 5424 §6.3.3).
fn param_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '"' | '\\' | ']') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use palisade_model::{AffectedAsset, AlertDetails, Details, Status, Timestamp};

    use super::*;

    #[test]
    fn formats_priority_and_escapes() {
        let finding = Finding {
            id: uuid::Uuid::nil(),
            severity: Severity::Critical,
            status: Status::Open,
            rule: "bad \"rule\" ]".into(),
            title: "line1\nline2".into(),
            asset: AffectedAsset {
                cluster: "c".into(),
                node: Some("n1".into()),
                ..Default::default()
            },
            asset_id: uuid::Uuid::nil(),
            first_seen: Timestamp(0),
            last_seen: Timestamp(1_700_000_000_000),
            count: 1,
            demo: false,
            details: Details::Alert(AlertDetails::default()),
        };
        let message = format_rfc5424(&finding, 10, "my host");
        assert!(
            message.starts_with("<82>1 2023-11-14T22:13:20Z myhost palisade - alert "),
            "{message}"
        );
        assert!(message.contains(r#"rule="bad \"rule\" \]""#), "{message}");
        assert!(message.ends_with("] line1 line2"), "{message}");
    }
}
