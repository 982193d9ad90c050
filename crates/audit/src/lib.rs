//! Kubernetes API server audit events as a second event source for the rules engine.
//!
//! The API server writes `audit.k8s.io/v1` `Event` objects to a log file (one JSON object per
//! line) and POSTs them in batches (an `EventList`) to a webhook backend. This crate turns
//! both into [`palisade_event::Event`]s of kind [`EventKind::K8sAudit`], whose
//! [`Payload::K8sAudit`] holds the audit object as JSON, ready for rules with
//! `source: k8s_audit` and their `ka.*` fields.
//!
//! - [`parse_webhook_body`]: bytes of a webhook request body (an `EventList` or a single
//!   `Event`) → events, with a body size limit and an event count limit ([`Limits`]). It is
//!   a plain function so that the HTTP server mounts it on a route of its own; this crate
//!   knows no HTTP. [`webhook_events`] does the same for a body an HTTP framework has
//!   already parsed as JSON.
//! - [`read_json_lines`]: a reader of an audit log file → an iterator of events, with a line
//!   length limit; a bad line is an error naming its line number, and reading goes on.
//! - [`audit_event`]: one already-parsed JSON object → an event.
//!
//! # Design decision: validate the envelope, keep the object
//!
//! Only the fields every rule depends on are checked (`apiVersion`, `kind`, `auditID`,
//! `stage`, `verb`, the timestamps); the object itself is kept whole rather than mapped to a
//! struct, so that a field the API server adds tomorrow (or one a rule reads through
//! `jevt.value[/pointer]`) is still there, and a recorded event replays exactly.
//!
//! # Example
//!
//! ```
//! use palisade_event::EventKind;
//! use palisade_k8saudit::{Limits, parse_webhook_body};
//!
//! let body = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[
//!   {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",
//!    "auditID":"4f3c7b5e-1d2a-4e7b-9c1a-2b3d4e5f6a7b","stage":"ResponseComplete",
//!    "requestURI":"/api/v1/namespaces/default/secrets/db","verb":"get",
//!    "user":{"username":"alice","groups":["system:authenticated"]},
//!    "objectRef":{"resource":"secrets","namespace":"default","name":"db","apiVersion":"v1"},
//!    "responseStatus":{"metadata":{},"code":200},
//!    "requestReceivedTimestamp":"2026-11-28T23:40:00.123456Z",
//!    "stageTimestamp":"2026-11-28T23:40:00.125000Z"}]}"#;
//! let events = parse_webhook_body(body, &Limits::default()).unwrap();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].kind, EventKind::K8sAudit);
//! assert_eq!(events[0].timestamp_ns, 1_795_909_200_125_000_000);
//! ```
#![deny(missing_docs)]

mod error;
mod parse;

pub use error::{Error, ErrorKind};
pub use parse::{Limits, audit_event, parse_webhook_body, read_json_lines, webhook_events};

#[cfg(test)]
mod tests {
    /// Every module opens with a `//!` doc comment.
    #[test]
    fn every_module_is_documented() {
        let checked = palisade_testdata::assert_every_module_documented(env!("CARGO_MANIFEST_DIR"));
        assert!(checked > 1, "only {checked} source files found");
    }
}
