//! The crate's error: what failed, on what, and why.

use std::fmt;
use std::io;

/// An enforcement primitive could not be set up, changed or read.
///
/// Every error names the operation and the object it was applied to (a path, a cgroup, a
/// network namespace, a map), and keeps the underlying cause as its source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {subject}: {kind}")]
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    subject: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The kernel refused or lacks the feature (eBPF program type, fanotify permission
    /// events, BPF-LSM): the caller should fall back or report the capability as missing.
    Unsupported,
    /// A system call, eBPF operation or file access failed.
    System,
    /// A rule or argument is invalid (too many rules, a prefix longer than the address).
    InvalidInput,
    /// The `nft` tool failed or answered something this crate cannot read.
    Nftables,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Unsupported => "not supported by this kernel",
            ErrorKind::System => "system error",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Nftables => "nftables error",
        })
    }
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        operation: &'static str,
        subject: impl fmt::Display,
    ) -> Error {
        Error {
            kind,
            operation,
            subject: subject.to_string(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        self.source = Some(source.into());
        self
    }

    /// An I/O error on `subject`.
    pub(crate) fn io(
        operation: &'static str,
        subject: impl fmt::Display,
        source: io::Error,
    ) -> Error {
        Error::new(ErrorKind::System, operation, subject).with_source(source)
    }

    /// An eBPF (libbpf) error on `subject`; EPERM and EINVAL at load mean the kernel refuses
    /// the program type, which callers treat as a missing capability.
    pub(crate) fn bpf(
        operation: &'static str,
        subject: impl fmt::Display,
        source: libbpf_rs::Error,
    ) -> Error {
        let kind = match source.kind() {
            libbpf_rs::ErrorKind::PermissionDenied | libbpf_rs::ErrorKind::Unsupported => {
                ErrorKind::Unsupported
            }
            _ => ErrorKind::System,
        };
        Error::new(kind, operation, subject).with_source(source)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}
