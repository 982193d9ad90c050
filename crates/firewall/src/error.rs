//! The crate's one error type: what went wrong, in which object and which field.

/// An error from reading a cluster state or building the decision engine.
///
/// Every error names the object it is about (for example `NetworkPolicy x/deny-all` or
/// `document 3`) and, when it is about one field, the field's path
/// (`spec.ingress[0].from[1].ipBlock.cidr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.object, .field, .message))]
pub struct Error {
    kind: ErrorKind,
    object: String,
    field: String,
    message: String,
}

/// What kind of problem an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not well-formed YAML or JSON.
    Syntax,
    /// A document has a `kind` (or `apiVersion`) this crate does not evaluate.
    UnknownKind,
    /// A field is missing, unknown, of the wrong type or has a value the API rejects.
    InvalidField,
    /// A CIDR or IP address does not parse.
    InvalidCidr,
    /// A label selector is malformed (unknown operator, values where none are allowed...).
    InvalidSelector,
    /// A port, port range or protocol is out of range or unknown.
    InvalidPort,
    /// A reference (pod, namespace, network object) names something that does not exist.
    NotFound,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        object: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error {
            kind,
            object: object.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The kind of problem.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The object the error is about, e.g. `NetworkPolicy x/deny-all`.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The path of the offending field inside the object; empty when the error is about the
    /// whole object.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Prefixes the field path with `prefix` (used when a nested part is validated on its own).
    pub(crate) fn under(mut self, prefix: &str) -> Error {
        self.field = join_path(prefix, &self.field);
        self
    }

    /// Replaces the object name (used when the name is only known after parsing).
    pub(crate) fn in_object(mut self, object: &str) -> Error {
        self.object = object.to_owned();
        self
    }
}

pub(crate) fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

fn render(object: &str, field: &str, message: &str) -> String {
    match (object.is_empty(), field.is_empty()) {
        (true, true) => message.to_owned(),
        (true, false) => format!("{field}: {message}"),
        (false, true) => format!("{object}: {message}"),
        (false, false) => format!("{object}: {field}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind};

    #[test]
    fn renders_object_field_and_message() {
        let error = Error::new(ErrorKind::InvalidCidr, "NetworkPolicy x/p", "cidr", "bad")
            .under("spec.ingress[0].from[0].ipBlock");
        assert_eq!(
            error.to_string(),
            "NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.cidr: bad"
        );
        assert_eq!(error.kind(), ErrorKind::InvalidCidr);
        let error = Error::new(ErrorKind::Syntax, "document 2", "", "oops");
        assert_eq!(error.to_string(), "document 2: oops");
        assert_eq!(
            super::join_path("spec.ports", "[1].port"),
            "spec.ports[1].port"
        );
    }
}
