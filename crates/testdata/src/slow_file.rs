//! A file whose readers wait until the test lets them: a stand-in for a slow store (a huge
//! file, a database another process holds) that needs no timing.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A FIFO at `path`: every read of the path waits until [`SlowFile::release`] (or the drop)
/// puts `contents` there as a regular file and lets the readers waiting on the FIFO read it
/// empty.
pub struct SlowFile {
    path: PathBuf,
    fifo: PathBuf,
    contents: Vec<u8>,
}

impl SlowFile {
    /// Makes the FIFO at `path` (its folder is created); `contents` is what the path holds
    /// once released.
    pub fn new(path: &Path, contents: &[u8]) -> SlowFile {
        let folder = path.parent().expect("a path in a folder");
        std::fs::create_dir_all(folder).unwrap();
        // A second name for the FIFO, to open its writing end after the path is replaced.
        let fifo = folder.join(".slow-file-fifo");
        let name = std::ffi::CString::new(fifo.to_str().expect("a UTF-8 path")).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
        assert_eq!(made, 0, "mkfifo: {}", std::io::Error::last_os_error());
        std::fs::hard_link(&fifo, path).unwrap();
        SlowFile {
            path: path.to_owned(),
            fifo,
            contents: contents.to_vec(),
        }
    }

    /// Puts the contents in the FIFO's place; the readers waiting on the FIFO read nothing.
    pub fn release(&self) {
        let replacement = self.path.with_extension("released");
        std::fs::write(&replacement, &self.contents).unwrap();
        std::fs::rename(&replacement, &self.path).unwrap();
        // Opening the writing end lets every waiting reader open and read to the end once it
        // is closed; without readers the open fails, and nobody waits.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
    }
}

impl Drop for SlowFile {
    fn drop(&mut self) {
        self.release();
        let _ = std::fs::remove_file(&self.fifo);
    }
}
