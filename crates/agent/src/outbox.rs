//! The on-disk outbox.

use std::{path::Path, str::FromStr, time::Duration};

use palisade_model::FindingReport;
use serde_json::value::RawValue;
use sqlx::{
    QueryBuilder, Row, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// An outbox failure.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The outbox database failed.
    #[error("outbox database error")]
    Database(#[from] sqlx::Error),
    /// Its schema could not be created.
    #[error("outbox migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored report could not be read back.
    #[error("outbox entry {sequence} is corrupt: {reason}")]
    Corrupt {
        /// The entry.
        sequence: i64,
        /// Why.
        reason: String,
    },
    /// Another outbox could not be read: no runtime could be started for it, or the read
    /// panicked.
    #[error("cannot read another outbox")]
    Runtime(#[source] std::io::Error),
    /// The data directory could not be created.
    #[error("cannot create the agent data directory {path}")]
    CreateDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data directory's absolute path could not be found.
    #[error("cannot resolve the agent data directory {path}")]
    ResolveDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another outbox's path (as recorded with the firewall's pins) names no outbox file.
    #[error("{path} is not an outbox: {reason}")]
    NotAnOutbox {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The file name of an outbox in its data directory.
const OUTBOX_FILE: &str = "outbox.db";

/// A mark that an observer gives out with its reports ([`EventObserver::take_receipt`]),
/// written into the outbox in the same transaction as them, so that it is there exactly when
/// they are: after a crash, the observer learns from it whether what it gave out last was
/// kept ([`Outbox::receipts`], [`EventObserver::delivered`]). The outbox keeps the latest
/// receipt of each source, after the reports are acknowledged too. The firewall marks each
/// take of its connect programs' counts with the take's epoch, so that a take is neither
/// lost nor sent twice across a crash.
///
/// [`EventObserver::take_receipt`]: crate::EventObserver::take_receipt
/// [`EventObserver::delivered`]: crate::EventObserver::delivered
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Whose it is: one receipt per source is kept.
    pub source: String,
    /// Its serial (stored as a signed 64-bit integer, read back the same).
    pub serial: u64,
}

/// Which outbox: its id (random, made with the file: agent migration 0003) and where it is.
/// Recorded by the firewall with each delivery of its connect programs' counts in the
/// pinned counter stream ([`OutboxIdentity::taker`]), so that the next agent, whatever its
/// outbox, knows which outbox holds what was delivered, and can look at that outbox's receipt
/// ([`OutboxIdentity::receipt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxIdentity {
    /// The outbox's id.
    pub id: String,
    /// Its database file.
    pub path: std::path::PathBuf,
}

impl OutboxIdentity {
    /// The outbox as a taker of the firewall's counts names itself: JSON of its id and path.
    pub fn taker(&self) -> String {
        serde_json::json!({"outbox": self.id, "path": self.path.to_string_lossy()}).to_string()
    }

    /// The outbox a taker name ([`OutboxIdentity::taker`]) names; `None` when it names none.
    pub fn from_taker(taker: &str) -> Option<OutboxIdentity> {
        let value: serde_json::Value = serde_json::from_str(taker).ok()?;
        Some(OutboxIdentity {
            id: value.get("outbox")?.as_str()?.to_owned(),
            path: value.get("path")?.as_str()?.into(),
        })
    }

    /// The latest receipt of `source` in this outbox, read (read-only) from its file; `None`
    /// when the file is gone or is another outbox by now (a new one at the same path: what
    /// this one held went with it), or holds no such receipt. Blocking (on a thread of its
    /// own, so that it may be called inside a runtime too). The path comes from pins a
    /// process as root reads: it fails unless it names a regular file (not a link, FIFO or
    /// device) called `outbox.db`.
    pub fn receipt(&self, source: &str) -> Result<Option<u64>, OutboxError> {
        let not_an_outbox = |reason: String| OutboxError::NotAnOutbox {
            path: self.path.display().to_string(),
            reason,
        };
        if self.path.file_name() != Some(std::ffi::OsStr::new(OUTBOX_FILE)) {
            return Err(not_an_outbox(format!("not named {OUTBOX_FILE}")));
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(metadata) if metadata.file_type().is_file() => {}
            Ok(metadata) => {
                return Err(not_an_outbox(format!(
                    "not a regular file ({:?})",
                    metadata.file_type()
                )));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(not_an_outbox(error.to_string())),
        }
        only_we_can_replace(&self.path).map_err(not_an_outbox)?;
        let (identity, source) = (self.clone(), source.to_owned());
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(OutboxError::Runtime)?
                        .block_on(identity.read_receipt(&source))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(OutboxError::Runtime(std::io::Error::other(
                        "the thread reading it panicked",
                    )))
                })
        })
    }

    async fn read_receipt(&self, source: &str) -> Result<Option<u64>, OutboxError> {
        let options = SqliteConnectOptions::new()
            .filename(&self.path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let id: Option<String> = match sqlx::query_scalar("SELECT id FROM identity")
            .fetch_optional(&pool)
            .await
        {
            Ok(id) => id,
            // An outbox from before identities (agent migration 0003): another one.
            Err(sqlx::Error::Database(error)) if error.message().contains("no such table") => None,
            Err(error) => return Err(error.into()),
        };
        if id.as_deref() != Some(self.id.as_str()) {
            return Ok(None);
        }
        let receipts = read_receipts(&pool).await?;
        pool.close().await;
        Ok(receipts
            .into_iter()
            .find(|receipt| receipt.source == source)
            .map(|receipt| receipt.serial))
    }
}

/// Every receipt an outbox's database holds, by source.
async fn read_receipts(pool: &SqlitePool) -> Result<Vec<Receipt>, OutboxError> {
    let rows = sqlx::query("SELECT source, serial FROM receipts ORDER BY source")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Receipt {
                source: row.try_get("source")?,
                serial: row.try_get::<i64, _>("serial")? as u64,
            })
        })
        .collect()
}

/// Reports per INSERT statement when pushing (SQLite allows 32,766 bound values).
const PUSH_CHUNK: usize = 1_000;

/// Reports waiting for the server, in a SQLite file (`outbox.db`) under the data directory.
///
/// Several processes may push into the same outbox (SQLite locks the file), which is how
/// `palisade agent enqueue` hands reports to a running agent.
#[derive(Debug, Clone)]
pub struct Outbox {
    pool: SqlitePool,
    pushed: std::sync::Arc<tokio::sync::Notify>,
    identity: std::sync::Arc<OutboxIdentity>,
}

impl Outbox {
    /// Opens or creates the outbox in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Outbox, OutboxError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OutboxError::CreateDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        // Absolute and without links: the firewall records this path with its pins for the
        // next agent, which may run from another directory.
        let data_dir =
            std::fs::canonicalize(data_dir).map_err(|source| OutboxError::ResolveDir {
                path: data_dir.display().to_string(),
                source,
            })?;
        let path = data_dir.join(OUTBOX_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a push survives not only a crash of the process but of the machine.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let id = sqlx::query_scalar("SELECT id FROM identity")
            .fetch_one(&pool)
            .await?;
        Ok(Outbox {
            pool,
            pushed: Default::default(),
            identity: std::sync::Arc::new(OutboxIdentity { id, path }),
        })
    }

    /// Which outbox this is.
    pub fn identity(&self) -> &OutboxIdentity {
        &self.identity
    }

    /// Appends reports durably, in one transaction.
    pub async fn push(&self, reports: &[FindingReport]) -> Result<(), OutboxError> {
        self.push_with_receipts(reports, &[]).await
    }

    /// Appends reports durably and records `receipts` (each replacing its source's), in one
    /// transaction: both are kept, or neither.
    pub async fn push_with_receipts(
        &self,
        reports: &[FindingReport],
        receipts: &[Receipt],
    ) -> Result<(), OutboxError> {
        let texts = reports
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| OutboxError::Corrupt {
                sequence: -1,
                reason: error.to_string(),
            })?;
        let mut transaction = self.pool.begin().await?;
        // A statement per chunk rather than per report: each statement is a round trip to
        // SQLite's worker thread.
        for chunk in texts.chunks(PUSH_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO outbox (report) ");
            insert.push_values(chunk, |mut row, text| {
                row.push_bind(text.as_str());
            });
            insert.build().execute(&mut *transaction).await?;
        }
        for receipt in receipts {
            sqlx::query(
                "INSERT INTO receipts (source, serial) VALUES ($1, $2) \
                 ON CONFLICT (source) DO UPDATE SET serial = excluded.serial",
            )
            .bind(&receipt.source)
            .bind(receipt.serial as i64)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        if !reports.is_empty() {
            self.pushed.notify_one();
        }
        Ok(())
    }

    /// The latest receipt of every source.
    pub async fn receipts(&self) -> Result<Vec<Receipt>, OutboxError> {
        read_receipts(&self.pool).await
    }

    /// Waits until a push in this process, or `timeout` (pushes from other processes are
    /// seen at the next poll).
    pub async fn wait_for_push(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.pushed.notified()).await;
    }

    /// The oldest `limit` entries after sequence `after` (0: from the start), with their
    /// sequence numbers, as the JSON documents `push` stored, each checked to be JSON: the
    /// first that is not is named by [`OutboxError::Corrupt`]. The agent reads its batches
    /// with [`Outbox::peek_batch`], and this only to find an entry that failed that read's
    /// check.
    ///
    /// They are not decoded: the agent forwards them as they are, and the server decodes them
    /// anyway. An entry that is JSON but not a report makes the server refuse its batch;
    /// [`Outbox::discard_unreadable`] then finds it.
    pub async fn peek(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Box<RawValue>)>, OutboxError> {
        self.entries(after, limit, |text| {
            serde_json::from_str::<Box<RawValue>>(text).map_err(|error| error.to_string())
        })
        .await
    }

    /// The oldest `limit` entries after sequence `after` (0: from the start), read as one JSON
    /// array of the documents `push` stored, in one row: what a batch sends, without a copy,
    /// an allocation and a check of its own for each entry. Not checked to be JSON:
    /// [`OutboxEntries::documents`] does that.
    pub async fn peek_batch(&self, after: i64, limit: usize) -> Result<OutboxEntries, OutboxError> {
        // `ORDER BY` inside `group_concat`: without it SQLite does not promise the order.
        let row = sqlx::query(
            "SELECT count(*), coalesce(max(sequence), 0), \
                    '[' || coalesce(group_concat(report, ',' ORDER BY sequence), '') || ']' \
             FROM (SELECT sequence, report FROM outbox WHERE sequence > $1 \
                   ORDER BY sequence LIMIT $2)",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxEntries {
            count: usize::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
            last_sequence: row.try_get(1)?,
            array: row.try_get(2)?,
        })
    }

    /// Discards the entries among `peek(after, limit)`'s that do not decode as reports, and
    /// returns them with why (after the server refused a batch as malformed).
    pub async fn discard_unreadable(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, OutboxError> {
        let checked = self
            .entries(after, limit, |text| {
                Ok(serde_json::from_str::<FindingReport>(text).err())
            })
            .await?;
        let mut discarded = Vec::new();
        for (sequence, error) in checked {
            if let Some(error) = error {
                self.discard(sequence).await?;
                discarded.push((sequence, error.to_string()));
            }
        }
        Ok(discarded)
    }

    /// The oldest `limit` entries after `after`, each read by `read`; an entry it refuses is
    /// reported as [`OutboxError::Corrupt`].
    async fn entries<T>(
        &self,
        after: i64,
        limit: usize,
        read: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<(i64, T)>, OutboxError> {
        let rows = sqlx::query(
            "SELECT sequence, report FROM outbox WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let sequence: i64 = row.try_get("sequence")?;
                let text: &str = row.try_get("report")?;
                let entry =
                    read(text).map_err(|reason| OutboxError::Corrupt { sequence, reason })?;
                Ok((sequence, entry))
            })
            .collect()
    }

    /// Removes every entry up to and including `sequence` (the server acknowledged them).
    pub async fn acknowledge(&self, sequence: i64) -> Result<u64, OutboxError> {
        Ok(sqlx::query("DELETE FROM outbox WHERE sequence <= $1")
            .bind(sequence)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Removes one corrupt entry so that it cannot block the outbox; the caller reports it.
    pub async fn discard(&self, sequence: i64) -> Result<(), OutboxError> {
        sqlx::query("DELETE FROM outbox WHERE sequence = $1")
            .bind(sequence)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Entries waiting.
    pub async fn len(&self) -> Result<u64, OutboxError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// True when nothing is waiting.
    pub async fn is_empty(&self) -> Result<bool, OutboxError> {
        Ok(self.len().await? == 0)
    }
}

/// Consecutive outbox entries as [`Outbox::peek_batch`] read them: one JSON array of their
/// documents.
#[derive(Debug)]
pub struct OutboxEntries {
    /// How many entries.
    pub count: usize,
    /// The last one's sequence number (0 when there is none).
    pub last_sequence: i64,
    /// `[document,document,...]`, as the entries hold them.
    array: String,
}

impl OutboxEntries {
    /// Each entry's document, borrowed; `None` when one of them is not JSON (a damaged
    /// entry: [`Outbox::peek`] names it). The array is checked to hold exactly one value per
    /// entry, so that no entry can end the array early or add fields around it.
    pub fn documents(&self) -> Option<Vec<&RawValue>> {
        serde_json::from_str::<Vec<&RawValue>>(&self.array)
            .ok()
            .filter(|documents| documents.len() == self.count)
    }
}

/// Fails, saying why, unless only root or this process's user can change what `path` names:
/// the file and every directory above it are owned by one of them and writable by no one
/// else (a sticky directory owned by root, as /tmp, may be writable by all: no one else can
/// replace what is in it). The path is canonical (recorded so by [`Outbox::open`]), so a link
/// anywhere in it fails too. Without this, whoever could write to a directory on the way
/// could put a FIFO or a crafted database where the agent, as root, opens it.
fn only_we_can_replace(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !path.is_absolute() {
        return Err("not an absolute path".to_owned());
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    for (depth, part) in path.ancestors().enumerate() {
        let metadata = std::fs::symlink_metadata(part)
            .map_err(|error| format!("{}: {error}", part.display()))?;
        let (owner, mode) = (metadata.uid(), metadata.mode());
        let sticky_root_directory = depth > 0 && owner == 0 && mode & 0o1000 != 0;
        if metadata.file_type().is_symlink()
            || (owner != 0 && owner != euid)
            || (mode & 0o022 != 0 && !sticky_root_directory)
        {
            return Err(format!(
                "{} may be changed by another user (owner {owner}, mode {:o})",
                part.display(),
                mode & 0o7777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Outbox, OutboxError, OutboxIdentity, Receipt};

    /// Sets entry `sequence`'s stored document to `text`, as damage on disk would.
    async fn spoil(outbox: &Outbox, sequence: i64, text: &str) {
        sqlx::query("UPDATE outbox SET report = $1 WHERE sequence = $2")
            .bind(text)
            .bind(sequence)
            .execute(&outbox.pool)
            .await
            .unwrap();
    }

    /// A batch read holds the oldest entries after the given one, in order, as the documents
    /// pushed, up to the limit; past a discarded entry; none at the end.
    #[tokio::test]
    async fn a_batch_read_holds_the_next_entries_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let reports = crate::acknowledged::tests::reports(6);
        outbox.push(&reports).await.unwrap();
        outbox.discard(3).await.unwrap();
        let entries = outbox.peek_batch(1, 3).await.unwrap();
        assert_eq!((entries.count, entries.last_sequence), (3, 5));
        let documents = entries.documents().unwrap();
        let rules: Vec<String> = documents
            .iter()
            .map(|document| {
                serde_json::from_str::<palisade_model::FindingReport>(document.get())
                    .unwrap()
                    .rule
            })
            .collect();
        assert_eq!(rules, ["rule 1", "rule 3", "rule 4"]);
        assert_eq!(
            documents[0].get(),
            serde_json::to_string(&reports[1]).unwrap()
        );
        let rest = outbox.peek_batch(5, 10).await.unwrap();
        assert_eq!((rest.count, rest.last_sequence), (1, 6));
        let end = outbox.peek_batch(6, 10).await.unwrap();
        assert_eq!((end.count, end.last_sequence), (0, 0));
        assert!(end.documents().unwrap().is_empty());
    }

    /// A damaged entry fails the batch's check whether it is not JSON at all or spans two
    /// entries (`[1` and `2]` make one value of two entries); the entry by entry read names
    /// the first entry that is not JSON.
    #[tokio::test]
    async fn a_batch_with_an_entry_that_is_not_one_json_value_fails_its_check() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        outbox
            .push(&crate::acknowledged::tests::reports(4))
            .await
            .unwrap();
        spoil(&outbox, 2, "[1").await;
        spoil(&outbox, 3, "2]").await;
        assert!(outbox.peek_batch(0, 4).await.unwrap().documents().is_none());
        assert!(matches!(
            outbox.peek(0, 4).await,
            Err(OutboxError::Corrupt { sequence: 2, .. })
        ));
        spoil(
            &outbox,
            2,
            "{\"id\": 1}], \"sequence\": 9, \"reports\": [{}",
        )
        .await;
        spoil(&outbox, 3, "{}").await;
        assert!(outbox.peek_batch(0, 4).await.unwrap().documents().is_none());
        spoil(&outbox, 2, "{}").await;
        assert_eq!(
            outbox
                .peek_batch(0, 4)
                .await
                .unwrap()
                .documents()
                .unwrap()
                .len(),
            4
        );
    }

    fn receipt(source: &str, serial: u64) -> Receipt {
        Receipt {
            source: source.to_owned(),
            serial,
        }
    }

    /// A receipt is kept with its push, the latest per source (any 64-bit serial reads back
    /// as written), after the reports are acknowledged and across a reopening.
    #[tokio::test]
    async fn receipts_are_kept_with_their_push_the_latest_per_source() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        assert!(outbox.receipts().await.unwrap().is_empty());
        outbox
            .push_with_receipts(&[], &[receipt("counts", 7), receipt("other", u64::MAX)])
            .await
            .unwrap();
        outbox
            .push_with_receipts(&[], &[receipt("counts", 8)])
            .await
            .unwrap();
        assert!(outbox.is_empty().await.unwrap(), "a receipt is no report");
        drop(outbox);
        let outbox = Outbox::open(dir.path()).await.unwrap();
        assert_eq!(
            outbox.receipts().await.unwrap(),
            [receipt("counts", 8), receipt("other", u64::MAX)]
        );
    }

    /// Another outbox, as the firewall's pins name it: its receipt is read while the file is
    /// that outbox (its path absolute whatever the data directory was opened as); `None`
    /// once it is gone or replaced by a new outbox; a path that names no regular file called
    /// `outbox.db` (a FIFO would block the read) is refused, not opened.
    #[tokio::test]
    async fn another_outbox_is_read_only_while_it_is_the_same_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let outbox = Outbox::open(&data_dir.join("..").join("data"))
            .await
            .unwrap();
        let identity = outbox.identity().clone();
        // Canonical: the temporary directory may itself be under a link.
        let canonical_data_dir = std::fs::canonicalize(&data_dir).unwrap();
        assert_eq!(identity.path, canonical_data_dir.join("outbox.db"));
        assert_eq!(
            OutboxIdentity::from_taker(&identity.taker()),
            Some(identity.clone())
        );
        assert_eq!(identity.receipt("counts").unwrap(), None, "no receipt yet");
        outbox
            .push_with_receipts(&[], &[receipt("counts", 41)])
            .await
            .unwrap();
        assert_eq!(identity.receipt("counts").unwrap(), Some(41));
        assert_eq!(identity.receipt("other").unwrap(), None);
        drop(outbox);

        std::fs::remove_dir_all(&data_dir).unwrap();
        assert_eq!(identity.receipt("counts").unwrap(), None, "gone");
        let replaced = Outbox::open(&data_dir).await.unwrap();
        replaced
            .push_with_receipts(&[], &[receipt("counts", 99)])
            .await
            .unwrap();
        assert_ne!(replaced.identity().id, identity.id);
        assert_eq!(identity.receipt("counts").unwrap(), None, "another outbox");
        drop(replaced);

        let fifo = dir.path().join("fifo").join("outbox.db");
        std::fs::create_dir(fifo.parent().unwrap()).unwrap();
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let misnamed = dir.path().join("data").join("outbox.db-wal");
        // A real outbox in a directory anybody may write to: someone else could have put it
        // (or a FIFO) there.
        let open_dir = dir.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        let in_open_dir = Outbox::open(&open_dir)
            .await
            .unwrap()
            .identity()
            .path
            .clone();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        for path in [fifo, misnamed, in_open_dir] {
            let other = OutboxIdentity {
                path: path.clone(),
                ..identity.clone()
            };
            assert!(
                matches!(
                    other.receipt("counts"),
                    Err(OutboxError::NotAnOutbox { .. })
                ),
                "{path:?}"
            );
        }
    }
}
