//! Explicit limits that bound the work a hostile image can cause.

/// Bounds on what reading an image or a root filesystem may cost. Exceeding one stops the
/// walk with [`crate::ErrorKind::LimitExceeded`] naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Layers per image.
    pub max_layers: usize,
    /// Bytes of one layer's uncompressed tar stream.
    pub max_layer_bytes: u64,
    /// Uncompressed bytes per compressed byte of a layer, enforced once a layer has produced
    /// [`Limits::ratio_grace_bytes`]: real layers compress 2–10×; gzip bombs reach 1000×.
    pub max_compression_ratio: u64,
    /// Uncompressed bytes a layer may produce before the ratio is checked.
    pub ratio_grace_bytes: u64,
    /// Entries (files, directories, links) per layer or root filesystem.
    pub max_entries: u64,
    /// Length of one path in bytes.
    pub max_path_bytes: usize,
    /// Bytes of an image's JSON documents (index, manifests, configuration).
    pub max_document_bytes: u64,
    /// Bytes a cataloger reads from one package database or metadata file.
    pub max_metadata_bytes: u64,
    /// Bytes of one binary or archive (Go and Rust executables, jars) a cataloger reads.
    pub max_binary_bytes: u64,
    /// Nesting depth of jars inside jars.
    pub max_archive_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_layers: 512,
            max_layer_bytes: 64 << 30,
            max_compression_ratio: 100,
            ratio_grace_bytes: 256 << 20,
            max_entries: 4_000_000,
            max_path_bytes: 4096,
            max_document_bytes: 4 << 20,
            max_metadata_bytes: 256 << 20,
            max_binary_bytes: 512 << 20,
            max_archive_depth: 4,
        }
    }
}
