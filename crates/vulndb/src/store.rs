//! The SQLite index: sources, advisories and affected packages.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{Error, ErrorKind};
use crate::import::{self, ImportOptions, Message, NoProgress, Parsed, Progress, Warning};
use crate::model::{Affected, DistroStatus, Range, Record};

/// The vulnerability database: a SQLite file holding imported sources.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

/// The outcome of importing one source.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The source's location (an absolute path or a URL).
    pub location: String,
    /// The formats found (`osv`, `osv-zip`, `debian-tracker`, `debian-list`, `alpine-secdb`,
    /// `updateinfo`).
    pub format: String,
    /// Records stored.
    pub record_count: u64,
    /// Records skipped, with the reason.
    pub warnings: Vec<Warning>,
}

/// One imported source, as [`Database::status`] lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    /// The source's location.
    pub location: String,
    /// Its formats.
    pub format: String,
    /// Records stored.
    pub record_count: u64,
    /// When it was imported, in seconds since the Unix epoch.
    pub imported_at: i64,
}

/// What the database holds.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every source, oldest import first.
    pub sources: Vec<SourceStatus>,
    /// Records per ecosystem (a record counts once per ecosystem it affects).
    pub ecosystems: Vec<(String, u64)>,
    /// All records.
    pub total_records: u64,
}

impl Database {
    /// Opens (creating if needed) the database file at `path` and migrates its schema.
    pub async fn open(path: &Path) -> Result<Database, Error> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| ErrorKind::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        Database::connect(options).await
    }

    /// Opens a private in-memory database, for tests and one-off matching.
    pub async fn open_in_memory() -> Result<Database, Error> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        Database::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Database, Error> {
        // One connection: imports are single-writer, and an in-memory database exists per
        // connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Database { pool })
    }

    /// Closes the connection, folding SQLite's write-ahead log into the database file.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Imports a file or directory (recursively) as one source, replacing what an earlier
    /// import of the same path stored; `options` are [`crate::Limits`] or [`ImportOptions`].
    pub async fn import_path(
        &self,
        path: &Path,
        options: impl Into<ImportOptions>,
    ) -> Result<ImportReport, Error> {
        self.import_path_with_progress(path, options, &NoProgress)
            .await
    }

    /// [`Database::import_path`], reporting progress per file read.
    pub async fn import_path_with_progress(
        &self,
        path: &Path,
        options: impl Into<ImportOptions>,
        progress: &dyn Progress,
    ) -> Result<ImportReport, Error> {
        let location = std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        let path = path.to_path_buf();
        let options = options.into();
        self.store(location, progress, move |parsed| {
            import::read_path(&path, &options, parsed)
        })
        .await
    }

    /// Imports bytes (a downloaded file) as the source `location`.
    pub async fn import_bytes(
        &self,
        location: &str,
        bytes: Vec<u8>,
        options: impl Into<ImportOptions>,
    ) -> Result<ImportReport, Error> {
        let name = location.to_owned();
        let options = options.into();
        self.store(location.to_owned(), &NoProgress, move |parsed| {
            import::read_bytes(&name, &bytes, &options, parsed)
        })
        .await
    }

    /// Stores what `read` reads as the source `location`, in one transaction, as it is read:
    /// `read` runs on a blocking thread and sends the records in batches, so an import holds
    /// a few batches, not the whole source. Within one OVAL document ([`Message::MergeIds`])
    /// a record whose id the document gave before is merged into it (Azure Linux's
    /// definitions of one CVE, one per package). When storing fails the channel is closed,
    /// the reading stops at its next element or record, and its end is awaited, so that no
    /// reading thread outlives the import.
    async fn store(
        &self,
        location: String,
        progress: &dyn Progress,
        read: impl FnOnce(&mut Parsed) -> Result<(), Error> + Send + 'static,
    ) -> Result<ImportReport, Error> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(MESSAGES_IN_FLIGHT);
        let reading = tokio::task::spawn_blocking(move || {
            let mut parsed = Parsed::new(sender);
            let outcome = read(&mut parsed);
            parsed.finish();
            outcome.map(|()| (parsed.formats, parsed.warnings))
        });
        let imported_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |duration| duration.as_secs() as i64);
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM affected WHERE vuln IN (SELECT vulns.id FROM vulns JOIN sources ON sources.id = vulns.source_id WHERE sources.location = $1)",
        )
        .bind(&location)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "DELETE FROM vulns WHERE source_id IN (SELECT id FROM sources WHERE location = $1)",
        )
        .bind(&location)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM sources WHERE location = $1")
            .bind(&location)
            .execute(&mut *transaction)
            .await?;
        let source_id: i64 = sqlx::query_scalar(
            "INSERT INTO sources (location, format, record_count, imported_at) VALUES ($1, '', 0, $2) RETURNING id",
        )
        .bind(&location)
        .bind(imported_at)
        .fetch_one(&mut *transaction)
        .await?;
        let mut record_count: u64 = 0;
        // The row id of each id of the OVAL document being stored.
        let mut merged_ids: Option<HashMap<String, i64>> = None;
        let mut stored = Ok(());
        'receiving: while let Some(message) = receiver.recv().await {
            match message {
                Message::Start(total_files) => progress.start(total_files),
                Message::Advance => progress.advance(1),
                Message::MergeIds(merge) => merged_ids = merge.then(HashMap::new),
                Message::Records(records) => {
                    for record in &records {
                        match insert_record(
                            &mut transaction,
                            source_id,
                            record,
                            merged_ids.as_mut(),
                        )
                        .await
                        {
                            Ok(new) => record_count += u64::from(new),
                            Err(error) => {
                                stored = Err(error);
                                break 'receiving;
                            }
                        }
                    }
                }
            }
        }
        receiver.close();
        let read = reading.await;
        stored?;
        let (formats, warnings) = match read {
            Ok(outcome) => outcome?,
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(error) => {
                    return Err(ErrorKind::Io {
                        path: location.into(),
                        source: std::io::Error::other(error),
                    }
                    .into());
                }
            },
        };
        let format = formats.iter().copied().collect::<Vec<_>>().join("+");
        sqlx::query("UPDATE sources SET format = $1, record_count = $2 WHERE id = $3")
            .bind(&format)
            .bind(record_count as i64)
            .bind(source_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(ImportReport {
            location,
            format,
            record_count,
            warnings,
        })
    }

    /// Lists the sources and counts records per ecosystem.
    pub async fn status(&self) -> Result<Status, Error> {
        let sources = sqlx::query(
            "SELECT location, format, record_count, imported_at FROM sources ORDER BY imported_at, id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| SourceStatus {
            location: row.get("location"),
            format: row.get("format"),
            record_count: row.get::<i64, _>("record_count") as u64,
            imported_at: row.get("imported_at"),
        })
        .collect::<Vec<_>>();
        let ecosystems = sqlx::query(
            "SELECT ecosystem, COUNT(DISTINCT vuln) AS n FROM affected GROUP BY ecosystem ORDER BY ecosystem",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| (row.get::<String, _>("ecosystem"), row.get::<i64, _>("n") as u64))
        .collect();
        let total_records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vulns")
            .fetch_one(&self.pool)
            .await?;
        Ok(Status {
            sources,
            ecosystems,
            total_records: total_records as u64,
        })
    }

    /// Reads records back, for building an [`crate::Index`], each with its row id: every
    /// record, or with `ecosystems` (as stored) those with an affected package in one of them,
    /// with only those affected packages.
    pub(crate) async fn records(
        &self,
        ecosystems: Option<&[String]>,
    ) -> Result<Vec<(i64, Record)>, Error> {
        let filter = ecosystems.map(|ecosystems| to_json(&ecosystems));
        let mut records: Vec<(i64, Record)> = Vec::new();
        let rows = sqlx::query(
            "SELECT id, vuln_id, aliases, summary, severity, cvss_vector, cvss_score, withdrawn, published, modified FROM vulns WHERE $1 IS NULL OR id IN (SELECT vuln FROM affected WHERE ecosystem IN (SELECT value FROM json_each($1))) ORDER BY id",
        )
        .bind(&filter)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            records.push((
                row.get("id"),
                Record {
                    id: row.get("vuln_id"),
                    aliases: from_json(row.get("aliases")),
                    summary: row.get("summary"),
                    severity: row.get("severity"),
                    cvss_vector: row.get("cvss_vector"),
                    cvss_score: row.get("cvss_score"),
                    withdrawn: row.get("withdrawn"),
                    published: row.get("published"),
                    modified: row.get("modified"),
                    affected: Vec::new(),
                },
            ));
        }
        let rows = sqlx::query("SELECT vuln, ecosystem, name, purl, ranges, versions, status FROM affected WHERE $1 IS NULL OR ecosystem IN (SELECT value FROM json_each($1)) ORDER BY vuln")
            .bind(&filter)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let vuln: i64 = row.get("vuln");
            let Ok(record_idx) = records.binary_search_by_key(&vuln, |(row_id, _)| *row_id) else {
                continue;
            };
            let status: Option<String> = row.get("status");
            let ranges: Vec<Range> = from_json(row.get("ranges"));
            records[record_idx].1.affected.push(Affected {
                ecosystem: row.get("ecosystem"),
                name: row.get("name"),
                purl: row.get("purl"),
                ranges,
                versions: from_json(row.get("versions")),
                status: status.as_deref().and_then(DistroStatus::from_name),
            });
        }
        Ok(records)
    }

    /// The ecosystems affected packages are stored under, as their import normalised them.
    pub(crate) async fn stored_ecosystems(&self) -> Result<Vec<String>, Error> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT ecosystem FROM affected")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Every record's row id with its id and aliases, by row id.
    pub(crate) async fn record_ids(&self) -> Result<Vec<(i64, Vec<String>)>, Error> {
        let rows = sqlx::query("SELECT id, vuln_id, aliases FROM vulns ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut ids: Vec<String> = from_json(row.get("aliases"));
                ids.insert(0, row.get("vuln_id"));
                (row.get("id"), ids)
            })
            .collect())
    }
}

/// How many batches of records may wait for the store.
const MESSAGES_IN_FLIGHT: usize = 4;

/// Stores `record` in the source `source_id`: a new advisory, or, when `merged_ids` (the
/// row ids of its document's ids, when its records are merged) has its id, its aliases,
/// affected packages and withdrawal added to that one's (its severity where that had none).
/// True for a new advisory.
async fn insert_record(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    source_id: i64,
    record: &Record,
    merged_ids: Option<&mut HashMap<String, i64>>,
) -> Result<bool, Error> {
    let earlier = match merged_ids.as_ref().and_then(|ids| ids.get(&record.id)) {
        Some(&vuln_id) => Some(
            sqlx::query("SELECT id, aliases, severity, withdrawn FROM vulns WHERE id = $1")
                .bind(vuln_id)
                .fetch_one(&mut **transaction)
                .await?,
        ),
        None => None,
    };
    let (vuln_id, new) = match earlier {
        Some(row) => {
            let vuln_id: i64 = row.get("id");
            let mut aliases: Vec<String> = from_json(row.get("aliases"));
            for alias in &record.aliases {
                if !aliases.contains(alias) {
                    aliases.push(alias.clone());
                }
            }
            let severity: Option<String> = row.get("severity");
            let withdrawn: bool = row.get("withdrawn");
            sqlx::query(
                "UPDATE vulns SET aliases = $1, severity = $2, withdrawn = $3 WHERE id = $4",
            )
            .bind(to_json(&aliases))
            .bind(severity.or_else(|| record.severity.clone()))
            .bind(withdrawn && record.withdrawn)
            .bind(vuln_id)
            .execute(&mut **transaction)
            .await?;
            (vuln_id, false)
        }
        None => {
            let vuln_id: i64 = sqlx::query_scalar(
                "INSERT INTO vulns (source_id, vuln_id, aliases, summary, severity, cvss_vector, cvss_score, withdrawn, published, modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(source_id)
            .bind(&record.id)
            .bind(to_json(&record.aliases))
            .bind(&record.summary)
            .bind(&record.severity)
            .bind(&record.cvss_vector)
            .bind(record.cvss_score)
            .bind(record.withdrawn)
            .bind(&record.published)
            .bind(&record.modified)
            .fetch_one(&mut **transaction)
            .await?;
            if let Some(ids) = merged_ids {
                ids.insert(record.id.clone(), vuln_id);
            }
            (vuln_id, true)
        }
    };
    for affected in &record.affected {
        sqlx::query(
            "INSERT INTO affected (vuln, ecosystem, name, purl, ranges, versions, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(vuln_id)
        .bind(&affected.ecosystem)
        .bind(&affected.name)
        .bind(&affected.purl)
        .bind(to_json(&affected.ranges))
        .bind(to_json(&affected.versions))
        .bind(affected.status.map(DistroStatus::as_str))
        .execute(&mut **transaction)
        .await?;
    }
    Ok(new)
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Parses a JSON column written by [`to_json`]; a damaged value reads as empty.
fn from_json<T: serde::de::DeserializeOwned + Default>(text: String) -> T {
    serde_json::from_str(&text).unwrap_or_default()
}
