//! The named files of a target read lazily, for checks of file contents (OVAL's
//! `textfilecontent54_test`s) that a scan asks only when a package's version is in a range
//! that needs them: on the first ask every named file is read at once by [`read_files`]
//! (inside a root, never through a symlink out of it; an image's from the layer it shows;
//! each bounded by [`Limits::max_metadata_bytes`]), then kept. Most scans never read: the
//! checks sit beside versions of packages a target rarely holds (kpatch-patch). Files that
//! cannot be read are logged once and answer as absent, so a check on them does not hold.

use std::cell::OnceCell;

use crate::cancel::Cancel;
use crate::files::{FileContents, read_files};
use crate::limits::Limits;
use crate::target::Target;

/// The files `paths` of one target, read on the first [`LazyFiles::content`].
#[derive(Debug)]
pub struct LazyFiles<'a> {
    target: &'a Target,
    paths: Vec<&'a str>,
    contents: OnceCell<FileContents>,
}

impl<'a> LazyFiles<'a> {
    /// The files `paths` (absolute; repeats are read once) of `target`, not read yet.
    pub fn new(target: &'a Target, paths: impl IntoIterator<Item = &'a str>) -> LazyFiles<'a> {
        LazyFiles {
            target,
            paths: paths.into_iter().collect(),
            contents: OnceCell::new(),
        }
    }

    /// The content of the file `path` (one of those given to [`LazyFiles::new`]), reading
    /// them all on the first call; `None` when it does not exist or could not be read.
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        self.contents
            .get_or_init(|| self.read())
            .contents
            .get(path)
            .map(Vec::as_slice)
    }

    fn read(&self) -> FileContents {
        match read_files(self.target, &self.paths, &Limits::default(), &Cancel::new()) {
            Ok(contents) => {
                for warning in &contents.warnings {
                    tracing::warn!(location = %warning.location, reason = %warning.reason, "File not checked.");
                }
                contents
            }
            Err(error) => {
                tracing::warn!(error = %error, "Cannot read the files advisories check; their checks do not hold.");
                FileContents::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LazyFiles;
    use crate::rootfs::RootFs;
    use crate::target::Target;

    #[test]
    fn files_are_read_on_the_first_ask_and_kept() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        std::fs::create_dir_all(root.join("boot/grub2")).unwrap();
        let target = Target::RootFs(RootFs::new(&root));
        let files = LazyFiles::new(&target, ["/boot/grub2/grubenv", "/boot/grub2/grubenv"]);
        // Written after the files were named: nothing is read before the first ask.
        std::fs::write(root.join("boot/grub2/grubenv"), "saved_entry=old\n").unwrap();
        assert_eq!(
            files.content("/boot/grub2/grubenv"),
            Some(&b"saved_entry=old\n"[..])
        );
        std::fs::write(root.join("boot/grub2/grubenv"), "saved_entry=new\n").unwrap();
        assert_eq!(
            files.content("/boot/grub2/grubenv"),
            Some(&b"saved_entry=old\n"[..])
        );
        assert_eq!(files.content("/etc/missing"), None);
    }
}
