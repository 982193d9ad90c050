//! What a walk hands to its callback ([`FileVisit`]) and what it returns ([`Walk`]).

use std::fs::File;
use std::io::Read;

use crate::cancel::{Cancel, bounded};
use crate::error::Warning;
use crate::filesystem::Filesystem;

/// One regular file met during a walk, readable once, front to back.
///
/// For images, every regular file of every layer is visited (base layer first), including
/// files an upper layer later replaces or deletes; [`crate::Filesystem::is_visible`] on the
/// [`Walk`]'s tree tells which ones the flattened image shows. Root filesystems visit each
/// file once.
pub struct FileVisit<'a> {
    /// The path inside the root, normalised: `usr/bin/runc`, no leading `/`.
    pub path: &'a str,
    /// The layer's position (0 is the base layer; always 0 for root filesystems).
    pub layer_index: usize,
    /// The layer's digest (its diff id, `sha256:...`); `None` for root filesystems.
    pub layer_digest: Option<&'a str>,
    /// Size in bytes, as recorded in the layer or the file system.
    pub size: u64,
    /// Permission bits (`0o755`, ...).
    pub mode: u32,
    pub(crate) content: Content<'a>,
    pub(crate) cancel: &'a Cancel,
}

/// Where a visited file's bytes come from.
pub(crate) enum Content<'a> {
    /// The tar entry being streamed.
    Stream(&'a mut dyn Read),
    /// A file of a root filesystem, opened on first read, inside the root.
    InRoot { root: &'a File, file: Option<File> },
}

impl std::fmt::Debug for FileVisit<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FileVisit")
            .field("path", &self.path)
            .field("layer_index", &self.layer_index)
            .field("layer_digest", &self.layer_digest)
            .field("size", &self.size)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

impl FileVisit<'_> {
    /// True when any execute bit is set.
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

impl Read for FileVisit<'_> {
    /// Reads at most [`Cancel::MAX_READ_BYTES`]; fails once the walk is cancelled.
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.cancel.check()?;
        let buffer = bounded(buffer);
        match &mut self.content {
            Content::Stream(reader) => reader.read(buffer),
            Content::InRoot { root, file } => {
                if file.is_none() {
                    // Every symlink on the way, even one a running container swapped in
                    // after the walk saw the path, resolves inside the root; the final
                    // component must not be a symlink, and a FIFO does not block the open.
                    *file = Some(palisade_rootfs::open_in_root(
                        root,
                        self.path,
                        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                        0,
                    )?);
                }
                file.as_mut().map_or(Ok(0), |file| file.read(buffer))
            }
        }
    }
}

/// The result of a walk: the flattened tree and every entry skipped on the way.
#[derive(Debug, Default, Clone)]
pub struct Walk {
    /// The flattened tree (metadata only).
    pub filesystem: Filesystem,
    /// Entries skipped and why.
    pub warnings: Vec<Warning>,
}
