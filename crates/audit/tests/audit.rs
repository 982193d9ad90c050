//! Webhook bodies and JSON-lines logs, well-formed and hostile.

use std::io::Cursor;

use palisade_event::{EventKind, Payload};
use palisade_k8saudit::{ErrorKind, Limits, audit_event, parse_webhook_body, read_json_lines};

/// A `kubectl exec` as a v1.31 API server logs it at the Metadata level.
const EXEC: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"9b5e2f8a-7c1d-4c3e-8f7a-1d2e3f4a5b6c","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods/web-7d9f8b6c5-x2x4q/exec?command=sh&container=web&stdin=true&stdout=true&tty=true","verb":"create","user":{"username":"alice@example.com","groups":["devs","system:authenticated"]},"sourceIPs":["192.0.2.10"],"userAgent":"kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46","objectRef":{"resource":"pods","namespace":"shop","name":"web-7d9f8b6c5-x2x4q","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"2026-11-28T23:40:00.100000Z","stageTimestamp":"2026-11-28T23:40:05.250000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"devs-edit\" of ClusterRole \"edit\" to Group \"devs\""}}"#;

fn list_of(events: &[&str]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        events.join(",")
    )
}

#[test]
fn webhook_event_list_becomes_events_in_order() {
    let second = EXEC.replace("9b5e2f8a", "00000000");
    let body = list_of(&[EXEC, &second]);
    let events = parse_webhook_body(body.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|event| event.kind == EventKind::K8sAudit));
    // stageTimestamp, not requestReceivedTimestamp.
    assert_eq!(events[0].timestamp_ns, 1_795_909_205_250_000_000);
    let Payload::K8sAudit { audit } = &events[1].payload else {
        panic!("not an audit payload: {:?}", events[1].payload)
    };
    assert_eq!(audit["auditID"], "00000000-7c1d-4c3e-8f7a-1d2e3f4a5b6c");
    assert_eq!(audit["objectRef"]["subresource"], "exec");
}

#[test]
fn webhook_accepts_a_single_event_and_an_empty_list() {
    assert_eq!(
        parse_webhook_body(EXEC.as_bytes(), &Limits::default())
            .unwrap()
            .len(),
        1
    );
    assert!(
        parse_webhook_body(list_of(&[]).as_bytes(), &Limits::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn webhook_limits_are_enforced_before_parsing() {
    let limits = Limits {
        max_body_bytes: 100,
        ..Limits::default()
    };
    let error = parse_webhook_body(EXEC.as_bytes(), &limits).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    assert!(
        error.to_string().contains("exceeds the limit of 100 bytes"),
        "{error}"
    );

    let limits = Limits {
        max_events: 1,
        ..Limits::default()
    };
    let error = parse_webhook_body(list_of(&[EXEC, EXEC]).as_bytes(), &limits).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    assert_eq!(
        error.to_string(),
        "audit event: EventList holds 2 events, more than the limit of 1"
    );
}

#[test]
fn hostile_and_malformed_bodies_are_clear_errors() {
    let cases: Vec<(String, ErrorKind, &str)> = vec![
        (
            "{not json".into(),
            ErrorKind::Json,
            "audit event: invalid JSON",
        ),
        (
            "[1,2]".into(),
            ErrorKind::NotAuditEvent,
            "audit event: expected a JSON object",
        ),
        (
            r#"{"kind":"Pod","apiVersion":"v1"}"#.into(),
            ErrorKind::NotAuditEvent,
            "audit event: kind 'Pod' is not an audit Event",
        ),
        (
            EXEC.replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1"),
            ErrorKind::NotAuditEvent,
            "audit event: apiVersion 'audit.k8s.io/v1beta1' is not audit.k8s.io/v1",
        ),
        (
            EXEC.replace(r#""verb":"create","#, ""),
            ErrorKind::MissingField,
            "audit event: 'verb' is missing or not a string",
        ),
        (
            EXEC.replace("2026-11-28T23:40:05.250000Z", "yesterday"),
            ErrorKind::BadTimestamp,
            "audit event: 'stageTimestamp' value 'yesterday' is not an RFC 3339 time",
        ),
        (
            list_of(&[EXEC, r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#]),
            ErrorKind::MissingField,
            "audit event at items[1]: 'auditID' is missing",
        ),
        (
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{}}"#.into(),
            ErrorKind::MissingField,
            "audit event: EventList has no 'items' array",
        ),
        // Nesting deeper than serde_json's recursion limit is an error, not a stack overflow.
        (
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            ErrorKind::Json,
            "audit event: invalid JSON: recursion limit exceeded",
        ),
    ];
    for (body, kind, message) in cases {
        let error = parse_webhook_body(body.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert!(error.to_string().starts_with(message), "{error}");
    }
}

#[test]
fn json_lines_report_bad_lines_by_number_and_continue() {
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000));
    let log = format!("{EXEC}\n\n{{broken\n{huge}\n{EXEC}");
    let limits = Limits {
        max_line_bytes: 4096,
        ..Limits::default()
    };
    let results: Vec<_> = read_json_lines(Cursor::new(log), &limits).collect();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(results[0].is_ok());
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(
        (error.kind(), error.location()),
        (ErrorKind::Json, "line 3")
    );
    let error = results[2].as_ref().unwrap_err();
    assert_eq!(
        (error.kind(), error.location()),
        (ErrorKind::TooLarge, "line 4")
    );
    assert_eq!(
        error.to_string(),
        "audit event at line 4: line exceeds the limit of 4096 bytes"
    );
    assert!(results[3].is_ok(), "{:?}", results[3]);
}

#[test]
fn requested_received_timestamp_is_the_fallback() {
    let mut value: serde_json::Value = serde_json::from_str(EXEC).unwrap();
    value.as_object_mut().unwrap().remove("stageTimestamp");
    let event = audit_event(value).unwrap();
    assert_eq!(event.timestamp_ns, 1_795_909_200_100_000_000);
}
