//! The crate's error type: one opaque [`Error`] with an [`ErrorKind`].

use std::path::PathBuf;

/// An error that stops an import, a download or a database operation.
///
/// A malformed record does not stop an import: it becomes a [`crate::Warning`].
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
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file, archive or download is larger than the import allows.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The file, archive entry or URL.
        what: String,
        /// Its size (or the size reached when reading stopped).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A zip archive has an entry whose name is absolute or climbs out with `..`.
    #[error("zip archive {archive} has an unsafe entry name {entry:?}")]
    UnsafeZipEntry {
        /// The archive.
        archive: String,
        /// The entry name as stored.
        entry: String,
    },
    /// A zip archive could not be read.
    #[error("cannot read zip archive {archive}")]
    Zip {
        /// The archive.
        archive: String,
        /// The cause.
        #[source]
        source: zip::result::ZipError,
    },
    /// An import was given a release that is not an rpm distribution's release.
    #[error(
        "{release:?} is not an rpm distribution release (such as `Amazon Linux:2`, `Oracle Linux:9`, `Fedora:40`)"
    )]
    InvalidRelease {
        /// The release as given.
        release: String,
    },
    /// The temporary database an OVAL document's tests, objects and states are kept in
    /// until its end could not be made or written (no temporary directory, the disk full).
    #[error(
        "cannot keep the definitions, tests, objects and states of {what} in a temporary database: {reason}"
    )]
    TemporaryStore {
        /// The document.
        what: String,
        /// Why.
        reason: String,
    },
    /// The store stopped taking the records being read: it failed, and its error is the
    /// import's; the reading stops rather than read on for nothing.
    #[error("the import's store stopped taking records")]
    StoreStopped,
    /// A download failed.
    #[error("cannot download {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why, as a short phrase.
        reason: String,
    },
    /// The HTTP client could not be set up (its TLS configuration).
    #[error("cannot set up the HTTP client: {reason}")]
    HttpClient {
        /// Why.
        reason: String,
    },
    /// A file given as CA certificates to trust holds no PEM certificate.
    #[error("{} holds no PEM certificate to trust", path.display())]
    CaCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The installed version of a package is not valid in its ecosystem's scheme.
    #[error("cannot match {package}")]
    InvalidVersion {
        /// The package name.
        package: String,
        /// The cause.
        #[source]
        source: palisade_version::Error,
    },
    /// The index was loaded for other ecosystems than the package's (see
    /// [`crate::Index::load_for`]).
    #[error(
        "the index was not loaded for {ecosystem} (package {package}); load it for every ecosystem it matches"
    )]
    NotLoaded {
        /// The package's release as the index keys it.
        ecosystem: String,
        /// The package name.
        package: String,
    },
    /// The database failed.
    #[error("vulnerability database error")]
    Database(#[source] sqlx::Error),
    /// The database schema could not be migrated.
    #[error("cannot migrate the vulnerability database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error {
            kind: Box::new(kind),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Error {
        ErrorKind::Database(source).into()
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(source: sqlx::migrate::MigrateError) -> Error {
        ErrorKind::Migrate(source).into()
    }
}
