//! The crate's error type: one opaque [`Error`] with an [`ErrorKind`], and [`Warning`]s for
//! entries that were skipped without stopping a walk.

use std::path::PathBuf;

/// An error that stops reading an image, a layer or a root filesystem.
///
/// A hostile or unreadable *entry* does not stop a walk: it becomes a [`Warning`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: Box<ErrorKind>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The path (for archive members, the archive and the member).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The path is neither an OCI layout, an OCI archive nor a `docker save` archive.
    #[error("{} is not a container image: {reason}", path.display())]
    NotAnImage {
        /// The path given.
        path: PathBuf,
        /// What was looked for and not found.
        reason: String,
    },
    /// An image's index, manifest or configuration is malformed.
    #[error("malformed image {what} in {}: {reason}", path.display())]
    MalformedImage {
        /// The image.
        path: PathBuf,
        /// Which document (`index.json`, `manifest.json`, a manifest blob, ...).
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// A layer could not be read: truncated, corrupt compression, a broken tar stream.
    #[error("cannot read layer {layer_index} ({digest}) of {}", path.display())]
    Layer {
        /// The image.
        path: PathBuf,
        /// The layer's position, 0 for the base layer.
        layer_index: usize,
        /// The layer's digest.
        digest: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A limit of [`crate::Limits`] was exceeded (decompression bombs, huge layers, entry
    /// floods).
    #[error("{what} exceeds the limit: {detail} (see palisade_inventory::Limits)")]
    LimitExceeded {
        /// The layer, file or document.
        what: String,
        /// Which limit and the value reached.
        detail: String,
    },
    /// A running container could not be found or its root filesystem located.
    #[error("cannot find the root filesystem of container {container}: {reason}")]
    Container {
        /// The id or name given.
        container: String,
        /// What was tried and why it failed.
        reason: String,
    },
    /// The walk was stopped through its [`crate::Cancel`].
    #[error("reading {} was cancelled", path.display())]
    Cancelled {
        /// The image or root being read.
        path: PathBuf,
    },
    /// A callback passed to a walk returned an error.
    #[error("visiting {path} failed")]
    Visit {
        /// The file being visited.
        path: String,
        /// The callback's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        ErrorKind::Io {
            path: path.into(),
            source,
        }
        .into()
    }

    pub(crate) fn malformed(
        path: impl Into<PathBuf>,
        what: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        ErrorKind::MalformedImage {
            path: path.into(),
            what: what.into(),
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn cancelled(path: impl Into<PathBuf>) -> Error {
        ErrorKind::Cancelled { path: path.into() }.into()
    }

    /// True when the walk stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(*self.kind, ErrorKind::Cancelled { .. })
    }

    pub(crate) fn limit(what: impl Into<String>, detail: impl Into<String>) -> Error {
        ErrorKind::LimitExceeded {
            what: what.into(),
            detail: detail.into(),
        }
        .into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error {
            kind: Box::new(kind),
        }
    }
}

/// An entry skipped, or a package database only partly read, without stopping the walk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Where: `layer N (digest): path`, or a path in a root filesystem.
    pub location: String,
    /// Why it was skipped, as a short phrase.
    pub reason: String,
}
