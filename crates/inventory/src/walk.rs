//! What a walk hands to its callback ([`FileVisit`]) and what it returns ([`Walk`]).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};

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
                    *file = Some(open_in_root(root, self.path)?);
                }
                file.as_mut().map_or(Ok(0), |file| file.read(buffer))
            }
        }
    }
}

/// Opens `path` below the directory `root` with `openat2(RESOLVE_IN_ROOT)`: every symlink on
/// the way, even one swapped in by a process of a running container after the walk saw the
/// path, resolves inside the root. The final component must not be a symlink, and FIFOs do
/// not block the open.
pub(crate) fn open_in_root(root: &File, path: &str) -> std::io::Result<File> {
    let c_path = std::ffi::CString::new(path)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `open_how` is plain integers, for which all zeroes is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `c_path` is a valid NUL-terminated string and `how` a valid `open_how` of the
    // size passed; the returned descriptor is owned by the `File` below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c_path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// The result of a walk: the flattened tree and every entry skipped on the way.
#[derive(Debug, Default, Clone)]
pub struct Walk {
    /// The flattened tree (metadata only).
    pub filesystem: Filesystem,
    /// Entries skipped and why.
    pub warnings: Vec<Warning>,
}
