//! The agent's side of the quarantine: it reports its whole quarantine to the server whenever
//! it changed (files the malware observer or `palisade scan malware --quarantine` moved in,
//! files restored), and restores a file when the server's `restore_quarantined` task asks.

use std::path::{Path, PathBuf};

use palisade_malware::Quarantine;
use palisade_model::{QuarantineEntry, QuarantineReport, RestoreQuarantinedSpec, TaskResult};

use palisade_sensor::MetadataRoots;

use crate::{Credential, Link, LinkError, containers::stopped_container_root};

impl Link {
    /// Replaces what the server keeps of this agent's quarantine; the number stored.
    pub async fn report_quarantine(
        &self,
        credential: &Credential,
        report: &QuarantineReport,
    ) -> Result<u64, LinkError> {
        self.post("/api/v1/agents/quarantine", &credential.token, report)
            .await
    }
}

/// The quarantine directory and what the server was last told about it.
#[derive(Debug)]
pub(crate) struct QuarantineSync {
    dir: PathBuf,
    /// The entries last reported; `None` until the first report succeeded, so that a server
    /// that kept entries of an earlier run is corrected at start.
    reported: Option<Vec<QuarantineEntry>>,
}

impl QuarantineSync {
    pub(crate) fn new(dir: &Path) -> QuarantineSync {
        QuarantineSync {
            dir: dir.to_owned(),
            reported: None,
        }
    }

    /// Reports the quarantine when it differs from what was last reported. Failures are
    /// logged and retried at the next call.
    pub(crate) async fn sync(&mut self, link: &Link, credential: &Credential) {
        let entries = match self.entries() {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, dir = %self.dir.display(), "Cannot read the quarantine.");
                return;
            }
        };
        if self.reported.as_ref() == Some(&entries) {
            return;
        }
        let report = QuarantineReport {
            entries: entries.clone(),
        };
        match link.report_quarantine(credential, &report).await {
            Ok(_) => self.reported = Some(entries),
            Err(error) => tracing::warn!(%error, "Cannot report the quarantine to the server."),
        }
    }

    /// Every entry of the quarantine; none when the directory does not exist yet (nothing
    /// was ever quarantined, and listing must not create it).
    fn entries(&self) -> Result<Vec<QuarantineEntry>, palisade_malware::Error> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let records = Quarantine::open(&self.dir)?.list()?;
        Ok(records.iter().map(|record| record.to_entry()).collect())
    }

    /// Restores the file the task names, to the path its record holds; a container's file
    /// into the running container, or into a stopped one's files on the host as its runtime's
    /// metadata records them.
    pub(crate) fn restore(&self, spec: &RestoreQuarantinedSpec) -> TaskResult {
        let restored = Quarantine::open(&self.dir).and_then(|quarantine| {
            quarantine.restore_with(spec.entry_id, |container| {
                stopped_container_root(container, &MetadataRoots::default())
            })
        });
        match restored {
            Ok(path) => TaskResult {
                succeeded: true,
                message: format!("restored {} to {}", spec.entry_id, path.display()),
                verdict: None,
            },
            Err(error) => TaskResult::failed(format!(
                "cannot restore quarantine entry {}: {error}",
                spec.entry_id
            )),
        }
    }
}
