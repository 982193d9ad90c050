//! Parsing: webhook bodies, JSON-lines files and single audit objects.

use std::io::BufRead;

use palisade_event::{Event, EventKind, Payload};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, ErrorKind};

/// The `apiVersion` accepted.
const API_VERSION: &str = "audit.k8s.io/v1";

/// Size limits for untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most events accepted in one webhook body.
    pub max_events: usize,
    /// Longest line of a JSON-lines file, in bytes.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    /// 32 MiB bodies and 10,000 events per body (the API server's webhook batches hold 400
    /// events by default, and an event with request and response objects rarely exceeds a
    /// few hundred KiB); 4 MiB lines.
    fn default() -> Limits {
        Limits {
            max_body_bytes: 32 << 20,
            max_events: 10_000,
            max_line_bytes: 4 << 20,
        }
    }
}

/// Parses a webhook request body: an `EventList` (what the API server's webhook backend
/// sends) or a single `Event`.
///
/// Fails as a whole when the body is too large, not JSON, or not an audit object; an event
/// that fails validation fails the batch too (naming `items[N]`), so that the API server's
/// retry does not silently lose it.
pub fn parse_webhook_body(body: &[u8], limits: &Limits) -> Result<Vec<Event>, Error> {
    if body.len() > limits.max_body_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "body of {} bytes exceeds the limit of {} bytes",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| Error::new(ErrorKind::Json, format!("invalid JSON: {error}")))?;
    webhook_events(value, limits)
}

/// The events of an already-parsed webhook body (an `EventList` or a single `Event`), for
/// an HTTP server whose JSON extractor has applied the body size limit; `limits.max_events`
/// applies here.
pub fn webhook_events(value: Value, limits: &Limits) -> Result<Vec<Event>, Error> {
    match value.get("kind").and_then(Value::as_str) {
        Some("EventList") => {
            check_api_version(&value)?;
            let Some(Value::Array(items)) = value.get("items") else {
                return Err(Error::new(
                    ErrorKind::MissingField,
                    "EventList has no 'items' array",
                ));
            };
            if items.len() > limits.max_events {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "EventList holds {} events, more than the limit of {}",
                        items.len(),
                        limits.max_events
                    ),
                ));
            }
            let Value::Object(mut list) = value else {
                unreachable!("a value with a 'kind' key is an object")
            };
            let Some(Value::Array(items)) = list.remove("items") else {
                unreachable!("checked above")
            };
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    audit_event(item).map_err(|e| e.at(&format!("items[{index}]")))
                })
                .collect()
        }
        _ => Ok(vec![audit_event(value)?]),
    }
}

/// Reads an audit log in JSON-lines form (the API server's log backend with
/// `--audit-log-format=json`): one event per non-blank line.
///
/// Each item is an event or an error naming the line; reading continues after a bad line.
/// A line longer than `limits.max_line_bytes` is skipped without being held in memory.
pub fn read_json_lines<R: BufRead>(
    reader: R,
    limits: &Limits,
) -> impl Iterator<Item = Result<Event, Error>> {
    JsonLines {
        reader,
        max_line_bytes: limits.max_line_bytes,
        line_number: 0,
        buffer: Vec::new(),
        failed: false,
    }
}

struct JsonLines<R> {
    reader: R,
    max_line_bytes: usize,
    line_number: usize,
    buffer: Vec<u8>,
    /// Set after an I/O error, which ends the iteration.
    failed: bool,
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if self.failed {
                return None;
            }
            self.line_number += 1;
            let location = format!("line {}", self.line_number);
            self.buffer.clear();
            let too_long =
                match read_bounded_line(&mut self.reader, &mut self.buffer, self.max_line_bytes) {
                    Ok(None) => return None,
                    Ok(Some(too_long)) => too_long,
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(Error::io(location, error)));
                    }
                };
            if too_long {
                return Some(Err(Error::new(
                    ErrorKind::TooLarge,
                    format!("line exceeds the limit of {} bytes", self.max_line_bytes),
                )
                .at(&location)));
            }
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let result = serde_json::from_slice::<Value>(&self.buffer)
                .map_err(|error| Error::new(ErrorKind::Json, format!("invalid JSON: {error}")))
                .and_then(audit_event)
                .map_err(|error| error.at(&location));
            return Some(result);
        }
    }
}

/// Reads one line into `buffer` (without the newline), keeping at most `max` bytes.
/// Returns `None` at end of input, else whether the line was longer than `max`.
fn read_bounded_line<R: BufRead>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(seen_any.then_some(too_long));
        }
        seen_any = true;
        let (chunk, done) = match available.iter().position(|byte| *byte == b'\n') {
            Some(newline) => (&available[..newline], Some(newline + 1)),
            None => (available, None),
        };
        if buffer.len() + chunk.len() > max {
            too_long = true;
            buffer.clear();
        } else if !too_long {
            buffer.extend_from_slice(chunk);
        }
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(too_long));
        }
    }
}

fn check_api_version(value: &Value) -> Result<(), Error> {
    match value.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => Ok(()),
        Some(other) => Err(Error::new(
            ErrorKind::NotAuditEvent,
            format!("apiVersion '{other}' is not {API_VERSION}"),
        )),
        None => Err(Error::new(
            ErrorKind::NotAuditEvent,
            format!("no apiVersion (expected {API_VERSION})"),
        )),
    }
}

/// Turns one `audit.k8s.io/v1` `Event` object into an event of kind
/// [`EventKind::K8sAudit`], timestamped with its `stageTimestamp` (or, when absent, its
/// `requestReceivedTimestamp`).
pub fn audit_event(value: Value) -> Result<Event, Error> {
    if !value.is_object() {
        return Err(Error::new(
            ErrorKind::NotAuditEvent,
            "expected a JSON object (an audit.k8s.io/v1 Event)",
        ));
    }
    match value.get("kind").and_then(Value::as_str) {
        Some("Event") => {}
        Some(other) => {
            return Err(Error::new(
                ErrorKind::NotAuditEvent,
                format!("kind '{other}' is not an audit Event"),
            ));
        }
        None => {
            return Err(Error::new(
                ErrorKind::NotAuditEvent,
                "no 'kind' (expected Event)",
            ));
        }
    }
    check_api_version(&value)?;
    for key in ["auditID", "stage", "verb", "requestURI"] {
        if !value.get(key).is_some_and(Value::is_string) {
            return Err(Error::new(
                ErrorKind::MissingField,
                format!("'{key}' is missing or not a string"),
            ));
        }
    }
    if !value.get("user").is_some_and(Value::is_object) {
        return Err(Error::new(
            ErrorKind::MissingField,
            "'user' is missing or not an object",
        ));
    }
    let timestamp_ns = timestamp(&value, "stageTimestamp")
        .or_else(|| timestamp(&value, "requestReceivedTimestamp"))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::MissingField,
                "neither 'stageTimestamp' nor 'requestReceivedTimestamp' is present",
            )
        })??;
    let mut event = Event::new(EventKind::K8sAudit);
    event.timestamp_ns = timestamp_ns;
    event.payload = Payload::K8sAudit { audit: value };
    Ok(event)
}

/// The timestamp at `key` in nanoseconds since the epoch; `None` when absent.
fn timestamp(value: &Value, key: &str) -> Option<Result<u64, Error>> {
    let text = value.get(key)?;
    let Some(text) = text.as_str() else {
        return Some(Err(Error::new(
            ErrorKind::BadTimestamp,
            format!("'{key}' is not a string"),
        )));
    };
    Some(
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .and_then(|time| u64::try_from(time.unix_timestamp_nanos()).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::BadTimestamp,
                    format!("'{key}' value '{text}' is not an RFC 3339 time after 1970"),
                )
            }),
    )
}
