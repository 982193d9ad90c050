//! The crate's error type: one opaque [`Error`] with an [`ErrorKind`].

use std::{fmt, path::PathBuf};

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or directory could not be read.
    Io,
    /// A file is larger than [`crate::MAX_FILE_SIZE`].
    TooLarge,
    /// A file is not UTF-8.
    Encoding,
    /// A file is not valid YAML (or JSON); the error names the line and column.
    Syntax,
    /// A Pod Security Standards level other than `baseline` or `restricted`.
    UnknownLevel,
    /// A policy version that is neither `latest` nor `v1.<minor>`.
    UnknownVersion,
    /// A configuration file (JSON, TOML, sshd or a service's own format) could not be parsed.
    Config,
    /// A path inside a host root has too many symbolic links or include levels.
    TooDeep,
    /// A probe was asked to connect to an address that is not loopback.
    NotLoopback,
    /// A network probe failed: connection, timeout or an unexpected protocol reply.
    Probe,
    /// The network namespace of a container's process could not be entered.
    Namespace,
}

/// An error of this crate. Its message names the file, and the line and column when known.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    path: Option<PathBuf>,
    location: Option<(usize, usize)>,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}", path.display())?;
            if let Some((line, column)) = self.location {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The 1-based line and column, for syntax errors.
    pub fn location(&self) -> Option<(usize, usize)> {
        self.location
    }

    pub(crate) fn io(path: PathBuf, what: &str, source: std::io::Error) -> Error {
        Error {
            kind: ErrorKind::Io,
            path: Some(path),
            location: None,
            message: what.to_owned(),
            source: Some(source),
        }
    }

    pub(crate) fn too_large(path: PathBuf, size: u64) -> Error {
        Error {
            kind: ErrorKind::TooLarge,
            path: Some(path),
            location: None,
            message: format!(
                "file is too large ({size} bytes; the limit is {} bytes)",
                crate::MAX_FILE_SIZE
            ),
            source: None,
        }
    }

    pub(crate) fn too_large_limit(path: PathBuf, size: u64, limit: u64) -> Error {
        Error {
            kind: ErrorKind::TooLarge,
            path: Some(path),
            location: None,
            message: format!("file is too large ({size} bytes; the limit is {limit} bytes)"),
            source: None,
        }
    }

    pub(crate) fn encoding(path: PathBuf) -> Error {
        Error {
            kind: ErrorKind::Encoding,
            path: Some(path),
            location: None,
            message: "file is not valid UTF-8".to_owned(),
            source: None,
        }
    }

    pub(crate) fn syntax(path: PathBuf, line: usize, column: usize, message: &str) -> Error {
        Error {
            kind: ErrorKind::Syntax,
            path: Some(path),
            location: Some((line, column)),
            message: format!("invalid YAML: {message}"),
            source: None,
        }
    }

    pub(crate) fn config(path: PathBuf, line: Option<usize>, message: String) -> Error {
        Error {
            kind: ErrorKind::Config,
            path: Some(path),
            location: line.map(|line| (line, 1)),
            message,
            source: None,
        }
    }

    pub(crate) fn too_deep(path: PathBuf, message: String) -> Error {
        Error {
            kind: ErrorKind::TooDeep,
            path: Some(path),
            location: None,
            message,
            source: None,
        }
    }

    pub(crate) fn not_loopback(address: std::net::SocketAddr) -> Error {
        Error {
            kind: ErrorKind::NotLoopback,
            path: None,
            location: None,
            message: format!(
                "refusing to probe {address}: probes only connect to loopback addresses (127.0.0.0/8, ::1)"
            ),
            source: None,
        }
    }

    /// A probe of `target` (a socket address or a unix socket path) failed.
    pub(crate) fn probe(
        target: impl std::fmt::Display,
        message: String,
        source: Option<std::io::Error>,
    ) -> Error {
        Error {
            kind: ErrorKind::Probe,
            path: None,
            location: None,
            message: format!("probe of {target}: {message}"),
            source,
        }
    }

    /// The network namespace of process `pid` could not be entered.
    pub(crate) fn namespace(pid: u32, message: String, source: Option<std::io::Error>) -> Error {
        Error {
            kind: ErrorKind::Namespace,
            path: None,
            location: None,
            message: format!("network namespace of process {pid}: {message}"),
            source,
        }
    }

    pub(crate) fn unknown_level(text: &str) -> Error {
        Error {
            kind: ErrorKind::UnknownLevel,
            path: None,
            location: None,
            message: format!(
                "unknown Pod Security Standards level {text:?} (expected baseline or restricted)"
            ),
            source: None,
        }
    }

    pub(crate) fn unknown_version(text: &str) -> Error {
        Error {
            kind: ErrorKind::UnknownVersion,
            path: None,
            location: None,
            message: format!(
                "invalid Pod Security Standards version {text:?}: must be \"latest\" or \"v1.x\" (v1.0 … v1.{} are known; newer versions are evaluated as v1.{})",
                crate::pss::LATEST_MINOR,
                crate::pss::LATEST_MINOR
            ),
            source: None,
        }
    }
}
