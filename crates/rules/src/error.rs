//! Load diagnostics: errors and warnings, each with a file, line, column and item name.

use std::fmt;

/// A position in a rules file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file name as given to the loader.
    pub file: String,
    /// Line, starting at 1 (0 when the position is unknown, e.g. an unreadable file).
    pub line: usize,
    /// Column in characters, starting at 1 (0 when unknown).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What kind of problem an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid YAML.
    Yaml,
    /// The YAML is valid but is not a valid rules document (wrong types, missing keys, ...).
    Schema,
    /// A condition or output has a syntax error.
    Syntax,
    /// A condition or output uses a field that does not exist.
    UnknownField,
    /// A condition uses a macro that is not defined (or defined later).
    UnknownMacro,
    /// A condition uses a list that is not defined.
    UnknownList,
    /// An operator cannot be used with a field, or a value does not fit the field's type.
    InvalidOperand,
    /// An `append` or `override` names an item that does not exist.
    UnknownItem,
    /// Macros refer to each other in a cycle.
    MacroCycle,
    /// The file requires a newer engine version.
    EngineVersion,
}

/// A load error: the item it concerns is not loaded, but other items are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {item}: {message}")]
pub struct Error {
    pub(crate) kind: ErrorKind,
    pub(crate) location: Location,
    pub(crate) item: String,
    pub(crate) message: String,
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where the error is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The item concerned, e.g. `rule 'Terminal shell in container'`; the file name for
    /// file-level errors.
    pub fn item(&self) -> &str {
        &self.item
    }

    /// The message, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What kind of problem a [`Warning`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// A list is not used by any rule, macro or list.
    UnusedList,
    /// A macro is not used by any rule or macro.
    UnusedMacro,
    /// An item has a key the loader does not know.
    UnknownKey,
    /// A top-level item is neither a rule, macro, list nor version requirement.
    UnknownItem,
    /// A rule with `skip-if-unknown-filter: true` uses an unknown field and is skipped.
    SkippedUnknownFilter,
    /// A rule is for an event source this engine does not evaluate; it is skipped.
    UnknownSource,
    /// A file requires a plugin that this engine does not provide.
    UnknownPlugin,
    /// A rule's condition does not restrict `evt.type`, so it runs on every event.
    NoEventType,
    /// A deprecated form (`append: true`, an `enabled`-only item) was used.
    Deprecated,
    /// An exception or override has no values to add.
    EmptyAppend,
}

/// A load warning: the item still loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub(crate) kind: WarningKind,
    pub(crate) location: Location,
    pub(crate) item: String,
    pub(crate) message: String,
}

impl Warning {
    /// What kind of warning this is.
    pub fn kind(&self) -> WarningKind {
        self.kind
    }

    /// Where the warning is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The item concerned, e.g. `macro 'open_write'`.
    pub fn item(&self) -> &str {
        &self.item
    }

    /// The message, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.item, self.message)
    }
}
