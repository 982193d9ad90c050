//! The scanned target's answers to the advisories' checks of file contents (Red Hat's OVAL
//! `textfilecontent54_test`s, [`FileCheck`]): read lazily, on the first check a package's
//! version range needs, every file any loaded check names at once (one more pass over an
//! image's layers, or direct opens inside a root), each check's answer then kept. Most
//! scans never read: the checks sit beside the versions of packages an image rarely holds
//! (kpatch-patch).

use std::cell::RefCell;
use std::collections::HashMap;

use palisade_inventory::{Cancel, FileContents, Limits, Target};
use palisade_vulndb::{FileCheck, Index};

/// Answers [`FileCheck`]s on one target.
pub(crate) struct RootFiles<'a> {
    target: &'a Target,
    /// The paths of every check the index holds.
    paths: Vec<&'a str>,
    /// The files read, once read.
    contents: RefCell<Option<FileContents>>,
    answers: RefCell<HashMap<FileCheck, bool>>,
}

impl<'a> RootFiles<'a> {
    pub(crate) fn new(target: &'a Target, index: &'a Index) -> RootFiles<'a> {
        let mut paths: Vec<&str> = index
            .file_checks()
            .into_iter()
            .map(FileCheck::path)
            .collect();
        paths.sort_unstable();
        paths.dedup();
        RootFiles {
            target,
            paths,
            contents: RefCell::new(None),
            answers: RefCell::new(HashMap::new()),
        }
    }

    /// Whether `check` holds on the target; a file that cannot be read makes it false
    /// (with a warning logged once, when the files are read).
    pub(crate) fn holds(&self, check: &FileCheck) -> bool {
        if let Some(&answer) = self.answers.borrow().get(check) {
            return answer;
        }
        let mut contents = self.contents.borrow_mut();
        let contents = contents.get_or_insert_with(|| self.read());
        let answer = check.holds(contents.contents.get(check.path()).map(Vec::as_slice));
        self.answers.borrow_mut().insert(check.clone(), answer);
        answer
    }

    fn read(&self) -> FileContents {
        match palisade_inventory::read_files(
            self.target,
            &self.paths,
            &Limits::default(),
            &Cancel::new(),
        ) {
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
