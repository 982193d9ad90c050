//! The sensor's error type.

use std::path::PathBuf;

/// What went wrong while starting or running the sensor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The eBPF object could not be opened, loaded or attached.
    #[error(
        "eBPF {step} failed (needs root and a kernel with BTF; set backend = fallback to run without eBPF)"
    )]
    Bpf {
        /// Which step failed: "open", "load", "attach <program>", ...
        step: String,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A kernel interface (netlink, fanotify, tracefs, /proc) could not be used.
    #[error("{what} failed")]
    Kernel {
        /// The operation, with its target.
        what: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A runtime metadata file is malformed.
    #[error("{path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration asks for something the sensor cannot do.
    #[error("invalid sensor configuration: {0}")]
    Config(String),
    /// The event ring buffer could not be mapped or read (a record header no kernel writes
    /// stops the read rather than reading past the ring).
    #[error(transparent)]
    Ring(#[from] palisade_bpfring::Error),
}

impl Error {
    pub(crate) fn kernel(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Kernel {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn bpf(step: impl Into<String>, source: libbpf_rs::Error) -> Error {
        Error::Bpf {
            step: step.into(),
            source,
        }
    }
}
