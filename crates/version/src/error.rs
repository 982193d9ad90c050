//! The crate's error type: one opaque [`Error`] with an [`ErrorKind`].

use crate::Scheme;

/// An error from parsing a scheme name or a version string.
///
/// The error always names what it was given: the unknown scheme name, or the scheme and the
/// version string that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The scheme name is not one this crate knows.
    #[error(
        "unknown version scheme {name:?}; accepted names: {}",
        Scheme::accepted_names().join(", ")
    )]
    UnknownScheme {
        /// The name as given.
        name: String,
    },
    /// The name is an OSV ecosystem whose versions are not ordered here.
    #[error(
        "versions of the OSV ecosystem {ecosystem:?} are not ordered here (OSV defines no order \
         for it, or none of these schemes reproduces it exactly); its records match by their \
         `versions` lists only"
    )]
    UnorderedEcosystem {
        /// The ecosystem, as OSV spells it.
        ecosystem: &'static str,
    },
    /// The version string is not valid in its scheme.
    #[error("invalid {scheme} version {version:?}: {reason}")]
    InvalidVersion {
        /// The scheme the version was parsed in.
        scheme: Scheme,
        /// The version string as given.
        version: String,
        /// Why it is invalid, as a short lowercase phrase.
        reason: &'static str,
    },
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn unknown_scheme(name: &str) -> Error {
        Error {
            kind: ErrorKind::UnknownScheme {
                name: name.to_owned(),
            },
        }
    }

    pub(crate) fn unordered_ecosystem(ecosystem: &'static str) -> Error {
        Error {
            kind: ErrorKind::UnorderedEcosystem { ecosystem },
        }
    }

    pub(crate) fn invalid(scheme: Scheme, version: &str, reason: &'static str) -> Error {
        Error {
            kind: ErrorKind::InvalidVersion {
                scheme,
                version: version.to_owned(),
                reason,
            },
        }
    }
}
