//! The link status file: the server's back-pressure as this agent met it, the batches the
//! server deferred (503 or 429: its batch budget was spent) and when it last did. The running
//! agent keeps it in its data directory; `palisade agent --status`, another process, reads it
//! ([`LinkStatus::read`]), so that an operator sees an agent held back by its server.
//!
//! The agent writes it when it starts sending and after each deferral, at most about once a second (a
//! deferred agent waits at least that long before it sends again). It is rewritten whole (a
//! temporary file renamed over it), so a reader never sees half of it.

use std::path::{Path, PathBuf};

use palisade_model::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a running agent leaves its link status, in its data directory.
pub const LINK_STATUS_FILE: &str = "link-status.json";

/// The content of the link status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// When the agent process that wrote the file started sending batches.
    pub started_at: Timestamp,
    /// Batches the server deferred since then; each stayed in the outbox and was sent again.
    pub batches_deferred: u64,
    /// When the server last deferred a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deferred_at: Option<Timestamp>,
}

/// A link status file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LinkStatusError {
    /// The file exists but cannot be read.
    #[error("cannot read the link status {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a link status.
    #[error("the link status {} is damaged", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl LinkStatus {
    /// The status of an agent starting to send now: nothing deferred yet.
    pub(crate) fn started() -> LinkStatus {
        LinkStatus {
            started_at: Timestamp::now(),
            batches_deferred: 0,
            last_deferred_at: None,
        }
    }

    /// Counts a batch the server deferred now.
    pub(crate) fn count_deferral(&mut self) {
        self.batches_deferred += 1;
        self.last_deferred_at = Some(Timestamp::now());
    }

    /// Writes the status into `data_dir`, replacing what an earlier write or process left.
    pub(crate) async fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = data_dir.join(LINK_STATUS_FILE);
        let temporary = data_dir.join(format!("{LINK_STATUS_FILE}.tmp"));
        tokio::fs::write(&temporary, serde_json::to_vec(self)?).await?;
        tokio::fs::rename(&temporary, &path).await
    }

    /// The status the agent of `data_dir` last wrote; `None` when no agent has run there.
    pub fn read(data_dir: &Path) -> Result<Option<LinkStatus>, LinkStatusError> {
        let path = data_dir.join(LINK_STATUS_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LinkStatusError::Read { path, source }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| LinkStatusError::Damaged { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::{LINK_STATUS_FILE, LinkStatus, LinkStatusError};

    /// What the agent writes is what `--status` reads; no file is no status, and a damaged
    /// one is an error naming it.
    #[tokio::test]
    async fn a_written_status_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LinkStatus::read(dir.path()).unwrap(), None);
        let mut status = LinkStatus::started();
        status.write(dir.path()).await.unwrap();
        assert_eq!(LinkStatus::read(dir.path()).unwrap(), Some(status.clone()));
        status.count_deferral();
        status.count_deferral();
        status.write(dir.path()).await.unwrap();
        let read = LinkStatus::read(dir.path()).unwrap().unwrap();
        assert_eq!(read.batches_deferred, 2);
        assert!(read.last_deferred_at >= Some(read.started_at));
        assert_eq!(read, status);

        std::fs::write(dir.path().join(LINK_STATUS_FILE), "{\"started_at\"").unwrap();
        let error = LinkStatus::read(dir.path()).unwrap_err();
        assert!(matches!(error, LinkStatusError::Damaged { .. }), "{error}");
        assert!(error.to_string().contains(LINK_STATUS_FILE), "{error}");
    }
}
