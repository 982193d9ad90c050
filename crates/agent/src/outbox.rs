//! The on-disk outbox.

use std::{path::Path, str::FromStr, time::Duration};

use palisade_model::FindingReport;
use serde_json::value::RawValue;
use sqlx::{
    Row, SqlitePool,
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

/// Most entries in one run (a row of the outbox): a push of more is kept as several runs, so
/// that a row stays a few hundred KiB and a batch cut inside a run leaves at most this many
/// to be read again.
const RUN_ENTRIES: usize = 1_000;

/// Reports waiting for the server, in a SQLite file (`outbox.db`) under the data directory.
///
/// Every report is an entry with a sequence number, given out in push order and never twice.
/// A push keeps its reports as runs of consecutive entries, a row per run of at most
/// [`RUN_ENTRIES`] (agent migration 0004): a batch of thousands of entries is read, and once
/// acknowledged deleted, in a few rows, where a row per entry cost a row read each and a
/// delete rewrote every leaf page of the batch into the write-ahead log.
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
        let runs = reports
            .chunks(RUN_ENTRIES)
            .map(|run| {
                let documents = run
                    .iter()
                    .map(serde_json::to_string)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((run.len(), documents.join("\n")))
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(|error| OutboxError::Corrupt {
                sequence: -1,
                reason: error.to_string(),
            })?;
        let mut transaction = self.pool.begin().await?;
        for (entries, text) in &runs {
            // The numbers after the largest ever given out. A write as the transaction's first
            // statement takes the file's write lock before it reads, so two processes pushing
            // at once cannot number alike.
            sqlx::query(
                "INSERT INTO outbox_runs (last_sequence, entries, reports) VALUES ( \
                     (SELECT coalesce(max(seq), 0) FROM sqlite_sequence \
                      WHERE name = 'outbox_runs') + $1, $1, $2)",
            )
            .bind(i64::try_from(*entries).unwrap_or(i64::MAX))
            .bind(text)
            .execute(&mut *transaction)
            .await?;
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
    /// first that is not is named by [`OutboxError::Corrupt`] (a run whose lines are not
    /// its entries, by its first entry after `after`). The agent reads its batches with
    /// [`Outbox::peek_batch`], and this only to find an entry that failed that read's check.
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

    /// The oldest `limit` entries after sequence `after` (0: from the start), as the runs
    /// that hold them: what a batch sends, read in a row per run. Not checked to be JSON:
    /// [`OutboxEntries::documents`] does that.
    pub async fn peek_batch(&self, after: i64, limit: usize) -> Result<OutboxEntries, OutboxError> {
        // First the runs' sizes alone (a run's text lives in overflow pages that this does not
        // read), to know how many runs hold `limit` entries; every run holds at least one.
        let sizes: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT last_sequence, entries FROM outbox_runs WHERE last_sequence > $1 \
             ORDER BY last_sequence LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut wanted = 0_i64;
        let Some(through) = sizes.iter().find_map(|&(last, entries)| {
            wanted += entries.min(last - after);
            (wanted >= i64::try_from(limit).unwrap_or(i64::MAX)).then_some(last)
        }) else {
            return self.read_runs(after, i64::MAX, limit).await;
        };
        self.read_runs(after, through, limit).await
    }

    /// The runs after `after` up to the one ending at `through`, as the first `limit` entries
    /// after `after` that they hold.
    async fn read_runs(
        &self,
        after: i64,
        through: i64,
        limit: usize,
    ) -> Result<OutboxEntries, OutboxError> {
        let runs: Vec<Run> = sqlx::query_as(
            "SELECT last_sequence, entries, reports FROM outbox_runs \
             WHERE last_sequence > $1 AND last_sequence <= $2 ORDER BY last_sequence",
        )
        .bind(after)
        .bind(through)
        .fetch_all(&self.pool)
        .await?;
        Ok(OutboxEntries::new(after, limit, runs))
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
            // Counted only when removed here: the acknowledgement task may have trimmed it.
            if let Some(error) = error
                && self.discard(sequence).await? > 0
            {
                discarded.push((sequence, error.to_string()));
            }
        }
        Ok(discarded)
    }

    /// The oldest `limit` entries after `after`, each read by `read`; an entry it refuses is
    /// reported as [`OutboxError::Corrupt`], and so is a run whose lines are not its entries.
    async fn entries<T>(
        &self,
        after: i64,
        limit: usize,
        read: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<(i64, T)>, OutboxError> {
        // `limit` runs hold at least `limit` entries.
        let runs: Vec<Run> = sqlx::query_as(
            "SELECT last_sequence, entries, reports FROM outbox_runs WHERE last_sequence > $1 \
             ORDER BY last_sequence LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut read_entries = Vec::new();
        for run in &runs {
            let documents = run.documents().map_err(|reason| OutboxError::Corrupt {
                sequence: run.first_sequence().max(after + 1),
                reason,
            })?;
            for (sequence, text) in documents.filter(|(sequence, _)| *sequence > after) {
                if read_entries.len() == limit {
                    return Ok(read_entries);
                }
                let entry =
                    read(text).map_err(|reason| OutboxError::Corrupt { sequence, reason })?;
                read_entries.push((sequence, entry));
            }
        }
        Ok(read_entries)
    }

    /// Removes every entry up to and including `sequence` (the server acknowledged them): the
    /// runs that end there or before, and the head of the run a batch cut there (the run is
    /// written again with its other entries, which keep their numbers). Else that head would
    /// be counted as waiting ([`Outbox::len`], `palisade agent --status`) and sent again by
    /// the next process. A damaged run (its lines are not its entries) is left whole for the
    /// batch read to find and discard.
    pub async fn acknowledge(&self, sequence: i64) -> Result<(), OutboxError> {
        let mut transaction = self.pool.begin().await?;
        // A write first: the transaction takes the write lock before it reads the cut run.
        sqlx::query("DELETE FROM outbox_runs WHERE last_sequence <= $1")
            .bind(sequence)
            .execute(&mut *transaction)
            .await?;
        // The first run after `sequence`, cut when it starts at or before it: one row read
        // through the key, however long the backlog behind it.
        let next: Option<Run> = sqlx::query_as(
            "SELECT last_sequence, entries, reports FROM outbox_runs \
             WHERE last_sequence > $1 ORDER BY last_sequence LIMIT 1",
        )
        .bind(sequence)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some((run, rest)) = next
            .as_ref()
            .filter(|run| run.first_sequence() <= sequence)
            .and_then(|run| Some((run, run.after(sequence)?)))
        {
            sqlx::query(
                "UPDATE outbox_runs SET entries = $1, reports = $2 WHERE last_sequence = $3",
            )
            .bind(run.last_sequence - sequence)
            .bind(rest)
            .bind(run.last_sequence)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Removes one corrupt entry so that it cannot block the outbox, and returns how many
    /// entries went (the caller reports them): the entry alone, its neighbours keeping their
    /// sequence numbers; or its whole run when the run's lines are not its entries (damage
    /// that added or removed a line break), since no line can then be told to be which entry.
    /// 0 when it is gone already.
    pub async fn discard(&self, sequence: i64) -> Result<u64, OutboxError> {
        let run: Option<Run> = sqlx::query_as(
            "SELECT last_sequence, entries, reports FROM outbox_runs \
             WHERE last_sequence >= $1 ORDER BY last_sequence LIMIT 1",
        )
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await?;
        let Some(run) = run.filter(|run| run.first_sequence() <= sequence) else {
            return Ok(0);
        };
        let mut transaction = self.pool.begin().await?;
        // The run as read, or nothing (another process changed it meanwhile: it is read again
        // at the next attempt). A write first: the transaction takes the write lock before it
        // reads anything.
        let removed = sqlx::query(
            "DELETE FROM outbox_runs WHERE last_sequence = $1 AND entries = $2 AND reports = $3",
        )
        .bind(run.last_sequence)
        .bind(run.entries)
        .bind(&run.reports)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if removed == 0 {
            return Ok(0);
        }
        let discarded = match run.documents() {
            Err(_) => run.entries,
            Ok(documents) => {
                let documents: Vec<(i64, &str)> = documents.collect();
                let (head, rest) = documents
                    .split_at(usize::try_from(sequence - run.first_sequence()).unwrap_or(0));
                for part in [head, rest.get(1..).unwrap_or_default()] {
                    let Some(&(last, _)) = part.last() else {
                        continue;
                    };
                    let text: Vec<&str> = part.iter().map(|(_, text)| *text).collect();
                    sqlx::query(
                        "INSERT INTO outbox_runs (last_sequence, entries, reports) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(last)
                    .bind(i64::try_from(part.len()).unwrap_or(i64::MAX))
                    .bind(text.join("\n"))
                    .execute(&mut *transaction)
                    .await?;
                }
                1
            }
        };
        transaction.commit().await?;
        Ok(u64::try_from(discarded).unwrap_or(0))
    }

    /// Entries waiting for the server's acknowledgement.
    pub async fn len(&self) -> Result<u64, OutboxError> {
        let count: i64 = sqlx::query_scalar("SELECT coalesce(sum(entries), 0) FROM outbox_runs")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// True when nothing is waiting.
    pub async fn is_empty(&self) -> Result<bool, OutboxError> {
        Ok(self.len().await? == 0)
    }
}

/// A row of the outbox: consecutive entries ending at `last_sequence`, their documents one per
/// line.
#[derive(Debug, sqlx::FromRow)]
struct Run {
    last_sequence: i64,
    entries: i64,
    reports: String,
}

impl Run {
    /// The sequence number of its first entry.
    fn first_sequence(&self) -> i64 {
        self.last_sequence - self.entries + 1
    }

    /// The text of its entries after `sequence` (one of its entries but the last), or `None`
    /// when its lines are not its entries.
    fn after(&self, sequence: i64) -> Option<&str> {
        let head = usize::try_from(sequence - self.first_sequence() + 1).ok()?;
        let lines = self.reports.split('\n').count();
        if i64::try_from(lines) != Ok(self.entries) || head == 0 || head >= lines {
            return None;
        }
        let (end, _) = self.reports.match_indices('\n').nth(head - 1)?;
        Some(&self.reports[end + 1..])
    }

    /// Its entries' documents with their sequence numbers, or why its lines are not its
    /// entries.
    fn documents(&self) -> Result<impl Iterator<Item = (i64, &str)>, String> {
        let lines = self.reports.split('\n').count();
        if i64::try_from(lines) != Ok(self.entries) {
            return Err(format!(
                "a run of {} entries ending at {} holds {lines} lines",
                self.entries, self.last_sequence
            ));
        }
        Ok((self.first_sequence()..).zip(self.reports.split('\n')))
    }
}

/// Consecutive outbox entries as [`Outbox::peek_batch`] read them: the runs that hold them.
#[derive(Debug)]
pub struct OutboxEntries {
    /// How many entries.
    pub count: usize,
    /// The last one's sequence number (0 when there is none).
    pub last_sequence: i64,
    /// The entries start after this one.
    after: i64,
    runs: Vec<Run>,
}

impl OutboxEntries {
    /// The first `limit` entries after `after` that `runs` (those after `after`, in order)
    /// hold.
    fn new(after: i64, limit: usize, runs: Vec<Run>) -> OutboxEntries {
        let (mut count, mut last_sequence) = (0, 0);
        for run in &runs {
            let available =
                usize::try_from(run.entries.min(run.last_sequence - after)).unwrap_or(0);
            let taken = available.min(limit - count);
            if taken == 0 {
                break;
            }
            count += taken;
            last_sequence = run.last_sequence - i64::try_from(available - taken).unwrap_or(0);
        }
        OutboxEntries {
            count,
            last_sequence,
            after,
            runs,
        }
    }

    /// Each entry's sequence number and document, borrowed; `None` when one of them is not
    /// one JSON value or a run's lines are not its entries (a damaged run: [`Outbox::peek`]
    /// names the entry).
    pub fn documents(&self) -> Option<Vec<(i64, &RawValue)>> {
        let mut documents = Vec::with_capacity(self.count);
        for run in &self.runs {
            for (sequence, text) in run.documents().ok()? {
                if sequence <= self.after {
                    continue;
                }
                if sequence > self.last_sequence {
                    break;
                }
                // One value, nothing after it: no entry can end the batch's array early or
                // add fields around it.
                documents.push((sequence, serde_json::from_str::<&RawValue>(text).ok()?));
            }
        }
        Some(documents)
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

    /// Sets entry `sequence`'s stored document to `text`, as damage on disk would (a `text`
    /// with a line break makes its run hold more lines than entries).
    async fn spoil(outbox: &Outbox, sequence: i64, text: &str) {
        let (last, reports): (i64, String) = sqlx::query_as(
            "SELECT last_sequence, reports FROM outbox_runs WHERE last_sequence >= $1 \
             ORDER BY last_sequence LIMIT 1",
        )
        .bind(sequence)
        .fetch_one(&outbox.pool)
        .await
        .unwrap();
        let mut lines: Vec<&str> = reports.split('\n').collect();
        let index = lines.len() - 1 - usize::try_from(last - sequence).unwrap();
        lines[index] = text;
        sqlx::query("UPDATE outbox_runs SET reports = $1 WHERE last_sequence = $2")
            .bind(lines.join("\n"))
            .bind(last)
            .execute(&outbox.pool)
            .await
            .unwrap();
    }

    /// The rule of each document.
    fn rules(documents: &[(i64, &serde_json::value::RawValue)]) -> Vec<String> {
        documents
            .iter()
            .map(|(_, document)| {
                serde_json::from_str::<palisade_model::FindingReport>(document.get())
                    .unwrap()
                    .rule
            })
            .collect()
    }

    /// The outbox's rows: each run's last sequence number and entries.
    async fn runs(outbox: &Outbox) -> Vec<(i64, i64)> {
        sqlx::query_as("SELECT last_sequence, entries FROM outbox_runs ORDER BY last_sequence")
            .fetch_all(&outbox.pool)
            .await
            .unwrap()
    }

    /// A batch read holds the oldest entries after the given one, in order, as the documents
    /// pushed, up to the limit; past a discarded entry; none at the end.
    #[tokio::test]
    async fn a_batch_read_holds_the_next_entries_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let reports = crate::acknowledged::tests::reports(6);
        outbox.push(&reports).await.unwrap();
        assert_eq!(outbox.discard(3).await.unwrap(), 1);
        let entries = outbox.peek_batch(1, 3).await.unwrap();
        assert_eq!((entries.count, entries.last_sequence), (3, 5));
        let documents = entries.documents().unwrap();
        assert_eq!(rules(&documents), ["rule 1", "rule 3", "rule 4"]);
        let sequences: Vec<i64> = documents.iter().map(|&(sequence, _)| sequence).collect();
        assert_eq!(sequences, [2, 4, 5]);
        assert_eq!(
            documents[0].1.get(),
            serde_json::to_string(&reports[1]).unwrap()
        );
        let rest = outbox.peek_batch(5, 10).await.unwrap();
        assert_eq!((rest.count, rest.last_sequence), (1, 6));
        let end = outbox.peek_batch(6, 10).await.unwrap();
        assert_eq!((end.count, end.last_sequence), (0, 0));
        assert!(end.documents().unwrap().is_empty());
        assert_eq!(outbox.len().await.unwrap(), 5);
    }

    /// A push of more than a run's worth is kept as several runs; batches cut runs where
    /// their limit falls and go on inside them; an acknowledgement deletes the runs it covers
    /// whole and the acknowledged head of the one it cuts, whose other entries keep their
    /// numbers; numbering goes on after the largest number given out, also once everything was
    /// acknowledged and the outbox reopened.
    #[tokio::test]
    async fn batches_cut_runs_and_numbers_are_never_given_out_twice() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let reports = crate::acknowledged::tests::reports(2_500);
        outbox.push(&reports[..2_400]).await.unwrap();
        outbox.push(&reports[2_400..]).await.unwrap();
        assert_eq!(
            runs(&outbox).await,
            [(1_000, 1_000), (2_000, 1_000), (2_400, 400), (2_500, 100)]
        );
        let first = outbox.peek_batch(0, 1_500).await.unwrap();
        assert_eq!((first.count, first.last_sequence), (1_500, 1_500));
        let documents = first.documents().unwrap();
        assert_eq!(documents.len(), 1_500);
        assert_eq!(rules(&documents[1_499..]), ["rule 1499"]);
        let second = outbox.peek_batch(1_500, 1_000).await.unwrap();
        assert_eq!((second.count, second.last_sequence), (1_000, 2_500));
        let documents = second.documents().unwrap();
        assert_eq!(rules(&documents[..1]), ["rule 1500"]);
        assert_eq!(rules(&documents[899..901]), ["rule 2399", "rule 2400"]);
        assert_eq!(rules(&documents[999..]), ["rule 2499"]);

        outbox.acknowledge(1_500).await.unwrap();
        assert_eq!(
            runs(&outbox).await,
            [(2_000, 500), (2_400, 400), (2_500, 100)],
            "the cut run keeps its unacknowledged tail"
        );
        assert_eq!(
            outbox.len().await.unwrap(),
            1_000,
            "the acknowledged head is not waiting"
        );
        let tail = outbox.peek(0, 2).await.unwrap();
        assert_eq!(tail[0].0, 1_501);
        let tail_documents: Vec<(i64, &serde_json::value::RawValue)> = tail
            .iter()
            .map(|(sequence, document)| (*sequence, document.as_ref()))
            .collect();
        assert_eq!(rules(&tail_documents), ["rule 1500", "rule 1501"]);
        // Acknowledging the same sequence again, or one inside no run, changes nothing.
        outbox.acknowledge(1_500).await.unwrap();
        assert_eq!(outbox.len().await.unwrap(), 1_000);
        outbox.acknowledge(2_500).await.unwrap();
        assert!(outbox.is_empty().await.unwrap());
        drop(outbox);

        let outbox = Outbox::open(dir.path()).await.unwrap();
        outbox.push(&reports[..2]).await.unwrap();
        assert_eq!(runs(&outbox).await, [(2_502, 2)]);
        let next = outbox.peek_batch(2_500, 10).await.unwrap();
        assert_eq!((next.count, next.last_sequence), (2, 2_502));
        assert_eq!(rules(&next.documents().unwrap()), ["rule 0", "rule 1"]);
    }

    /// Discarding an entry inside a run keeps every other entry with its sequence number;
    /// a run whose lines are not its entries (a line break added) fails the batch's check, is
    /// named by its first entry and discarded whole, counted.
    #[tokio::test]
    async fn a_discard_keeps_the_neighbours_and_a_run_with_a_line_too_many_goes_whole() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let reports = crate::acknowledged::tests::reports(8);
        outbox.push(&reports[..5]).await.unwrap();
        outbox.push(&reports[5..]).await.unwrap();
        assert_eq!(outbox.discard(1).await.unwrap(), 1);
        assert_eq!(outbox.discard(3).await.unwrap(), 1);
        assert_eq!(outbox.discard(3).await.unwrap(), 0, "gone already");
        assert_eq!(runs(&outbox).await, [(2, 1), (5, 2), (8, 3)]);
        let sequences = crate::acknowledged::tests::first_sequences(&outbox).await;
        assert_eq!(sequences, [2, 4, 5, 6, 7, 8]);
        let all = outbox.peek_batch(0, 10).await.unwrap();
        assert_eq!(
            rules(&all.documents().unwrap()),
            ["rule 1", "rule 3", "rule 4", "rule 5", "rule 6", "rule 7"]
        );

        spoil(&outbox, 7, "{}\n{}").await;
        assert!(
            outbox
                .peek_batch(0, 10)
                .await
                .unwrap()
                .documents()
                .is_none()
        );
        assert!(matches!(
            outbox.peek(5, 10).await,
            Err(OutboxError::Corrupt { sequence: 6, .. })
        ));
        assert_eq!(outbox.discard(6).await.unwrap(), 3);
        assert_eq!(outbox.len().await.unwrap(), 3);
        assert_eq!(
            outbox
                .peek_batch(0, 10)
                .await
                .unwrap()
                .documents()
                .unwrap()
                .len(),
            3
        );
    }

    /// An acknowledgement that cuts a damaged run (its lines are not its entries) leaves it
    /// whole, for the batch read to find and discard: no line can be told to be which entry.
    #[tokio::test]
    async fn an_acknowledgement_leaves_a_damaged_run_whole() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        outbox
            .push(&crate::acknowledged::tests::reports(5))
            .await
            .unwrap();
        spoil(&outbox, 4, "{}\n{}").await;
        outbox.acknowledge(2).await.unwrap();
        assert_eq!(runs(&outbox).await, [(5, 5)]);
    }

    /// An outbox of a row per entry (before agent migration 0004) keeps its entries, with
    /// their sequence numbers, and numbering goes on after the largest it gave out.
    #[tokio::test]
    async fn an_outbox_of_a_row_per_entry_keeps_its_entries_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::OUTBOX_FILE);
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let mut before_runs = sqlx::migrate!("./migrations");
        before_runs.migrations = before_runs.migrations[..3].to_vec().into();
        before_runs.run(&pool).await.unwrap();
        let reports = crate::acknowledged::tests::reports(5);
        for report in &reports {
            sqlx::query("INSERT INTO outbox (report) VALUES ($1)")
                .bind(serde_json::to_string(report).unwrap())
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("DELETE FROM outbox WHERE sequence IN (1, 3, 5)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        let outbox = Outbox::open(dir.path()).await.unwrap();
        let old = outbox.peek_batch(0, 10).await.unwrap();
        assert_eq!((old.count, old.last_sequence), (2, 4));
        assert_eq!(rules(&old.documents().unwrap()), ["rule 1", "rule 3"]);
        outbox.push(&reports[..1]).await.unwrap();
        assert_eq!(runs(&outbox).await, [(2, 1), (4, 1), (6, 1)]);
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
