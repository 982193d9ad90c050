//! The crate's error: what was wrong with the input, and where.

use std::fmt;

/// What kind of problem an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is larger than the configured limit (a webhook handler answers 413).
    TooLarge,
    /// The input is not valid JSON.
    Json,
    /// The JSON is not an `audit.k8s.io/v1` `Event` or `EventList`.
    NotAuditEvent,
    /// A required field is missing or has the wrong type.
    MissingField,
    /// A timestamp is not RFC 3339.
    BadTimestamp,
    /// Reading the input failed.
    Io,
}

/// A problem with audit input, with where it was found (`line 3`, `items[2]`).
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    location: String,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            location: String::new(),
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn io(location: String, source: std::io::Error) -> Error {
        Error {
            kind: ErrorKind::Io,
            location,
            message: "cannot read the audit log".to_owned(),
            source: Some(source),
        }
    }

    /// Prefixes the location (`items[2]`), innermost last.
    pub(crate) fn at(mut self, location: &str) -> Error {
        self.location = if self.location.is_empty() {
            location.to_owned()
        } else {
            format!("{location}: {}", self.location)
        };
        self
    }

    /// The kind of problem.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where the problem is (`line 3`, `items[2]`); empty for the input as a whole.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(formatter, "audit event: {}", self.message)
        } else {
            write!(
                formatter,
                "audit event at {}: {}",
                self.location, self.message
            )
        }
    }
}
