//! Opening files below a root directory without leaving it.
//!
//! The agent runs as root and reads files of containers and images it does not trust: their
//! `/etc/passwd`, their binaries, the files an inventory walk saw a moment ago. A process in a
//! running container can swap any path component for a symlink at any time, so a path checked
//! first and opened afterwards may lead anywhere. [`open_in_root`] asks the kernel to resolve
//! the whole path inside the root instead: `openat2` with `RESOLVE_IN_ROOT` (`..` and absolute
//! symlinks stay below the root) and `RESOLVE_NO_MAGICLINKS` (no `/proc/<pid>/…` link leads
//! out). Every crate that opens such files calls this one function.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};

/// Opens `path` below the directory `root` with `openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)`, with `flags` (`O_CLOEXEC` is always added) and `mode` (for
/// `O_CREAT`). An absolute `path` is taken relative to `root`.
pub fn open_in_root(root: impl AsFd, path: &str, flags: i32, mode: u32) -> std::io::Result<File> {
    let name = std::ffi::CString::new(path)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `open_how` is plain integers, for which all zeroes is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `name` is NUL-terminated and `how` a valid `open_how` of the size passed, both
    // alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_fd().as_raw_fd(),
            name.as_ptr(),
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::open_in_root;

    #[test]
    fn symlinks_and_dotdot_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("secret"), "inside").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
            .unwrap();
        let dir = std::fs::File::open(root.path()).unwrap();
        let escape = format!("../../../..{}/secret", outside.path().display());
        for path in ["link", "/link", escape.as_str()] {
            let mut text = String::new();
            match open_in_root(&dir, path, libc::O_RDONLY, 0) {
                // The symlink's absolute target and `..` are taken inside the root.
                Ok(mut file) => {
                    file.read_to_string(&mut text).unwrap();
                    assert_ne!(text, "outside", "{path} left the root");
                }
                Err(error) => assert_eq!(error.raw_os_error(), Some(libc::ENOENT), "{path}"),
            }
        }
        let mut text = String::new();
        open_in_root(&dir, "/secret", libc::O_RDONLY, 0)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "inside");
        let error = open_in_root(&dir, "a\0b", libc::O_RDONLY, 0).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }
}
