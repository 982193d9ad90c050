//! The named files of a target read lazily, for checks of file contents (OVAL's
//! `textfilecontent54_test`s) that a scan asks only when a package's version is in a range
//! that needs them: on the first ask every named file is read at once by [`read_files`]
//! (inside a root, never through a symlink out of it; an image's from the layer it shows;
//! each bounded by the caller's [`Limits::max_metadata_bytes`], and stopped by its
//! [`Cancel`]), then kept. Most scans never read: the checks sit beside versions of packages
//! a target rarely holds (kpatch-patch). Files that cannot be read are logged once and answer
//! as absent, so a check on them does not hold.
//!
//! Files under `/proc` describe the running system, not a root's files (OVAL's `uname_test`
//! asks the running kernel's release, `/proc/sys/kernel/osrelease`): they are answered only
//! for the running host ([`LazyFiles::of_running_host`]), from the scanner's own `/proc`,
//! which every container of the host shares (one kernel); for an image or another root they
//! answer as absent, with a note in the log, since nothing runs there.

use std::cell::OnceCell;
use std::path::Path;

use crate::cancel::Cancel;
use crate::files::{FileContents, read_files};
use crate::limits::Limits;
use crate::target::Target;

/// The files `paths` of one target, read on the first [`LazyFiles::content`].
#[derive(Debug)]
pub struct LazyFiles<'a> {
    target: &'a Target,
    paths: Vec<&'a str>,
    limits: &'a Limits,
    cancel: &'a Cancel,
    /// Whether the target is the running host, whose `/proc` files are answered.
    running_host: bool,
    contents: OnceCell<FileContents>,
}

/// Where the running system's files are, which only the running host's scan reads.
const RUNNING_SYSTEM: &str = "/proc/";

impl<'a> LazyFiles<'a> {
    /// The files `paths` (absolute; repeats are read once) of `target`, not read yet; they
    /// will be read within `limits`, stopped by `cancel`. Its `/proc` files answer as absent.
    pub fn new(
        target: &'a Target,
        paths: impl IntoIterator<Item = &'a str>,
        limits: &'a Limits,
        cancel: &'a Cancel,
    ) -> LazyFiles<'a> {
        LazyFiles {
            target,
            paths: paths.into_iter().collect(),
            limits,
            cancel,
            running_host: false,
            contents: OnceCell::new(),
        }
    }

    /// [`LazyFiles::new`] for the running host's root: its `/proc` files are the running
    /// system's, read from the scanner's own `/proc`.
    pub fn of_running_host(
        target: &'a Target,
        paths: impl IntoIterator<Item = &'a str>,
        limits: &'a Limits,
        cancel: &'a Cancel,
    ) -> LazyFiles<'a> {
        LazyFiles {
            running_host: true,
            ..LazyFiles::new(target, paths, limits, cancel)
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
        let (running, rooted): (Vec<&str>, Vec<&str>) = self
            .paths
            .iter()
            .partition(|path| path.starts_with(RUNNING_SYSTEM));
        let mut contents = match read_files(self.target, &rooted, self.limits, self.cancel) {
            Ok(contents) => contents,
            Err(error) => {
                tracing::warn!(error = %error, "Cannot read the files advisories check; their checks do not hold.");
                FileContents::default()
            }
        };
        if !running.is_empty() && !self.running_host {
            tracing::info!(
                files = %running.join(", "),
                "Not the running host: checks of the running system (the running kernel) do not hold."
            );
        }
        if !running.is_empty() && self.running_host {
            // The running system's files are the same from every root of the host.
            let system = crate::rootfs::RootFs::new(Path::new("/"));
            match read_files(&Target::RootFs(system), &running, self.limits, self.cancel) {
                Ok(system) => {
                    contents.contents.extend(system.contents);
                    contents.warnings.extend(system.warnings);
                }
                Err(error) => {
                    tracing::warn!(error = %error, "Cannot read the running system's files; their checks do not hold.");
                }
            }
        }
        for warning in &contents.warnings {
            tracing::warn!(location = %warning.location, reason = %warning.reason, "File not checked.");
        }
        contents
    }
}

#[cfg(test)]
mod tests {
    use super::LazyFiles;
    use crate::cancel::Cancel;
    use crate::limits::Limits;
    use crate::rootfs::RootFs;
    use crate::target::Target;

    #[test]
    fn files_are_read_on_the_first_ask_and_kept() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        std::fs::create_dir_all(root.join("boot/grub2")).unwrap();
        let target = Target::RootFs(RootFs::new(&root));
        let (limits, cancel) = (Limits::default(), Cancel::new());
        let files = LazyFiles::new(
            &target,
            ["/boot/grub2/grubenv", "/boot/grub2/grubenv"],
            &limits,
            &cancel,
        );
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

    #[test]
    fn the_running_system_s_files_are_answered_for_the_running_host_only() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("root");
        std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
        std::fs::write(
            root.join("proc/sys/kernel/osrelease"),
            "0.0.0-in-the-root\n",
        )
        .unwrap();
        let target = Target::RootFs(RootFs::new(&root));
        let (limits, cancel) = (Limits::default(), Cancel::new());
        let path = "/proc/sys/kernel/osrelease";
        // Another root's /proc is not the running system, even where it holds the file.
        let other = LazyFiles::new(&target, [path], &limits, &cancel);
        assert_eq!(other.content(path), None);
        // The running host's is the scanner's own.
        let host = LazyFiles::of_running_host(&target, [path], &limits, &cancel);
        let running = std::fs::read(path).unwrap();
        assert!(!running.is_empty());
        assert_eq!(host.content(path), Some(running.as_slice()));
    }
}
