//! `Deserialize` for [`FindingReport`], in one pass over its fields.
//!
//! The derived implementation, with `#[serde(flatten)]` on `details`, first buffers the whole
//! object into serde's intermediate `Content` tree and then reads it again; agents' reports are
//! decoded twice on their way in (outbox, then the server's link endpoint), and the buffering was
//! the larger part of that. Here `details` is read straight into its variant once `kind` is known;
//! only a `details` that comes before `kind` (the serialiser never writes that order, but any
//! order is valid JSON) is held as a JSON value until then.
//!
//! What is accepted is exactly what the derive accepted: the same field names, unknown fields
//! refused, `demo` optional.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};

use super::{
    AlertDetails, BaselineDetails, Details, FindingKind, FindingReport, FirewallDetails,
    VulnerabilityDetails,
};

const FIELDS: &[&str] = &[
    "id",
    "observed_at",
    "severity",
    "rule",
    "title",
    "asset",
    "kind",
    "details",
    "demo",
];

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Id,
    ObservedAt,
    Severity,
    Rule,
    Title,
    Asset,
    Kind,
    Details,
    Demo,
}

fn details_of<'de, A: MapAccess<'de>>(kind: FindingKind, map: &mut A) -> Result<Details, A::Error> {
    Ok(match kind {
        FindingKind::Alert => Details::Alert(map.next_value()?),
        FindingKind::Vulnerability => Details::Vulnerability(map.next_value()?),
        FindingKind::BaselineRisk => Details::BaselineRisk(map.next_value()?),
        FindingKind::FirewallAlert => Details::FirewallAlert(map.next_value()?),
    })
}

fn details_from_value<E: de::Error>(
    kind: FindingKind,
    value: serde_json::Value,
) -> Result<Details, E> {
    fn read<T: DeserializeOwned, E: de::Error>(value: serde_json::Value) -> Result<T, E> {
        serde_json::from_value(value).map_err(|error| E::custom(format!("details: {error}")))
    }
    Ok(match kind {
        FindingKind::Alert => Details::Alert(read::<AlertDetails, E>(value)?),
        FindingKind::Vulnerability => {
            Details::Vulnerability(read::<VulnerabilityDetails, E>(value)?)
        }
        FindingKind::BaselineRisk => Details::BaselineRisk(read::<BaselineDetails, E>(value)?),
        FindingKind::FirewallAlert => Details::FirewallAlert(read::<FirewallDetails, E>(value)?),
    })
}

struct ReportVisitor;

impl<'de> Visitor<'de> for ReportVisitor {
    type Value = FindingReport;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a finding report object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FindingReport, A::Error> {
        let mut id = None;
        let mut observed_at = None;
        let mut severity = None;
        let mut rule = None;
        let mut title = None;
        let mut asset = None;
        let mut kind: Option<FindingKind> = None;
        let mut details: Option<Details> = None;
        // `details` read before `kind`: kept as JSON until the kind says what it is.
        let mut early_details: Option<serde_json::Value> = None;
        let mut demo = None;
        fn once<T, E: de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
            match slot {
                Some(_) => Err(E::duplicate_field(name)),
                None => Ok(()),
            }
        }
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Id => {
                    once(&id, "id")?;
                    id = Some(map.next_value()?);
                }
                Field::ObservedAt => {
                    once(&observed_at, "observed_at")?;
                    observed_at = Some(map.next_value()?);
                }
                Field::Severity => {
                    once(&severity, "severity")?;
                    severity = Some(map.next_value()?);
                }
                Field::Rule => {
                    once(&rule, "rule")?;
                    rule = Some(map.next_value()?);
                }
                Field::Title => {
                    once(&title, "title")?;
                    title = Some(map.next_value()?);
                }
                Field::Asset => {
                    once(&asset, "asset")?;
                    asset = Some(map.next_value()?);
                }
                Field::Kind => {
                    once(&kind, "kind")?;
                    kind = Some(map.next_value()?);
                }
                Field::Details => {
                    once(&details, "details")?;
                    once(&early_details, "details")?;
                    match kind {
                        Some(kind) => details = Some(details_of(kind, &mut map)?),
                        None => early_details = Some(map.next_value()?),
                    }
                }
                Field::Demo => {
                    once(&demo, "demo")?;
                    demo = Some(map.next_value()?);
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let details = match (details, early_details) {
            (Some(details), _) => details,
            (None, Some(value)) => details_from_value(kind, value)?,
            (None, None) => return Err(de::Error::missing_field("details")),
        };
        Ok(FindingReport {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            observed_at: observed_at.ok_or_else(|| de::Error::missing_field("observed_at"))?,
            severity: severity.ok_or_else(|| de::Error::missing_field("severity"))?,
            rule: rule.ok_or_else(|| de::Error::missing_field("rule"))?,
            title: title.ok_or_else(|| de::Error::missing_field("title"))?,
            asset: asset.ok_or_else(|| de::Error::missing_field("asset"))?,
            details,
            demo: demo.unwrap_or(false),
        })
    }
}

impl<'de> Deserialize<'de> for FindingReport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FindingReport, D::Error> {
        deserializer.deserialize_struct("FindingReport", FIELDS, ReportVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAILS: &str =
        r#""details":{"process":{"pid":7,"ppid":1,"exe":"/bin/sh","cmdline":"sh","user":"root"}}"#;

    /// A report's JSON, `details` first or last, with `extra` (a field, or nothing) after `asset`.
    fn report_text(details_first: bool, kind: &str, extra: &str) -> String {
        let fields = format!(
            r#""id":"0192f0c4-8a1e-7000-8000-000000000001","observed_at":"2023-11-14T22:13:20Z","severity":"high","rule":"Terminal shell in container","title":"Terminal shell in container","asset":{{"cluster":"prod","namespace":"shop","pod":"web-1"}}{extra},"kind":"{kind}""#
        );
        if details_first {
            format!("{{{DETAILS},{fields}}}")
        } else {
            format!("{{{fields},{DETAILS}}}")
        }
    }

    fn error(text: &str) -> String {
        serde_json::from_str::<FindingReport>(text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_what_the_serialiser_writes_for_every_kind() {
        let base: FindingReport = serde_json::from_str(&report_text(false, "alert", "")).unwrap();
        let kinds = [
            Details::Alert(AlertDetails::default()),
            Details::Vulnerability(VulnerabilityDetails::default()),
            Details::BaselineRisk(BaselineDetails {
                category: super::super::BaselineCategory::Os,
                description: "d".into(),
                remediation: "r".into(),
                evidence: Vec::new(),
            }),
            Details::FirewallAlert(FirewallDetails::default()),
        ];
        for details in kinds {
            let report = FindingReport {
                details,
                demo: true,
                ..base.clone()
            };
            let text = serde_json::to_string(&report).unwrap();
            assert!(text.find("\"kind\"") < text.find("\"details\""), "{text}");
            assert_eq!(
                serde_json::from_str::<FindingReport>(&text).unwrap(),
                report
            );
            // The same through a JSON value, whose keys come out sorted: details before kind.
            let value = serde_json::to_value(&report).unwrap();
            assert_eq!(
                serde_json::from_value::<FindingReport>(value).unwrap(),
                report
            );
        }
    }

    #[test]
    fn details_before_kind_read_the_same() {
        let in_order: FindingReport =
            serde_json::from_str(&report_text(false, "alert", "")).unwrap();
        let early: FindingReport = serde_json::from_str(&report_text(true, "alert", "")).unwrap();
        assert_eq!(early, in_order);
        assert_eq!(in_order.details.kind(), FindingKind::Alert);
        assert!(!early.demo);
    }

    #[test]
    fn refuses_what_the_derive_refused() {
        for details_first in [false, true] {
            let message = error(&report_text(details_first, "alert", r#","colour":"red""#));
            assert!(message.contains("unknown field `colour`"), "{message}");
            let message = error(&report_text(details_first, "rumour", ""));
            assert!(message.contains("unknown variant `rumour`"), "{message}");
            // Details that do not fit the kind.
            let message = error(&report_text(details_first, "vulnerability", ""));
            assert!(message.contains("unknown field `process`"), "{message}");
            let message = error(&report_text(details_first, "alert", r#","rule":"again""#));
            assert!(message.contains("duplicate field `rule`"), "{message}");
        }
        let text = report_text(false, "alert", "");
        for (required, field) in [
            ("id", r#""id":"0192f0c4-8a1e-7000-8000-000000000001","#),
            ("kind", r#","kind":"alert""#),
            ("details", &format!(",{DETAILS}")),
            (
                "asset",
                r#","asset":{"cluster":"prod","namespace":"shop","pod":"web-1"}"#,
            ),
        ] {
            let without = text.replacen(field, "", 1);
            assert_ne!(without, text);
            let message = error(&without);
            assert!(
                message.contains(&format!("missing field `{required}`")),
                "{message}"
            );
        }
        let message = error("[1]");
        assert!(
            message.contains("expected a finding report object")
                || message.contains("invalid type"),
            "{message}"
        );
    }
}
