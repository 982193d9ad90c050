//! Identifying an executable by device and inode.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// An executable to deny, as given by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// The file at this path (symlinks followed), resolved to its device and inode when the
    /// rule is added: replacing the file later by a new one (a new inode) is not covered,
    /// while hard links and renames of the same file are.
    Path(PathBuf),
    /// A file already identified.
    Inode(BinaryId),
}

impl Binary {
    /// The executable at `path`.
    pub fn path(path: impl Into<PathBuf>) -> Binary {
        Binary::Path(path.into())
    }

    /// Resolves to the file's identity.
    pub fn resolve(&self) -> Result<BinaryId, Error> {
        match self {
            Binary::Path(path) => BinaryId::of_path(path),
            Binary::Inode(binary_id) => Ok(*binary_id),
        }
    }
}

/// A file's identity: device (as `stat` reports it) and inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BinaryId {
    /// `st_dev` in the C library's encoding.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl BinaryId {
    /// The identity of the file at `path` (symlinks followed).
    pub fn of_path(path: &Path) -> Result<BinaryId, Error> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| Error::io("reading the identity of", path.display(), error))?;
        Ok(BinaryId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        })
    }

    /// The device in the kernel's internal encoding (`MAJOR << 20 | MINOR`, as in
    /// `super_block.s_dev`), which is what eBPF programs read.
    pub fn kernel_dev(&self) -> u32 {
        let (major, minor) = split_dev(self.dev);
        (major << 20) | (minor & 0xfffff)
    }

    /// The identity whose kernel-encoded device is `kernel_dev`.
    pub fn from_kernel(kernel_dev: u32, ino: u64) -> BinaryId {
        let major = u64::from(kernel_dev >> 20);
        let minor = u64::from(kernel_dev & 0xfffff);
        // glibc's makedev().
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        BinaryId { dev, ino }
    }
}

/// glibc's major() and minor().
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

impl fmt::Display for BinaryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = split_dev(self.dev);
        write!(f, "{major}:{minor} inode {}", self.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::BinaryId;

    #[test]
    fn device_encodings_round_trip() {
        // 8:1 (sda1), 259:65537 (a large minor), 0:45 (tmpfs).
        for (dev, kernel) in [(0x801, (8 << 20) | 1), (0x1001_0301, (259 << 20) | 65537)] {
            let binary_id = BinaryId { dev, ino: 7 };
            assert_eq!(binary_id.kernel_dev(), kernel);
            assert_eq!(BinaryId::from_kernel(kernel, 7), binary_id);
        }
        let tmpfs = BinaryId { dev: 45, ino: 1 };
        assert_eq!(tmpfs.kernel_dev(), 45);
        assert_eq!(tmpfs.to_string(), "0:45 inode 1");
    }
}
