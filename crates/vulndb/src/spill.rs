//! A temporary table of values by kind and id, for what an OVAL document gives before it
//! can be evaluated: its definitions come first and name tests, objects and states that
//! come after them, so every one of them is kept until the document ends. Kept in memory
//! without a limit, they grew with the document (Red Hat's feeds are hundreds of MB). Here
//! the first values, up to [`MEMORY_BUDGET`] bytes of them and their ids, are kept encoded
//! in memory (a document whose values fit never touches the disk); the values past the
//! budget are rows of a private SQLite database on disk (deleted when closed), whose page
//! cache bounds the memory they take. Values are read back one at a time while the
//! definitions are evaluated.
//!
//! Values are stored as JSON; a value stored twice under one kind and id replaces the
//! first, as a later element of the same id does in a map, except values of
//! [`Kind::Sequence`], which are all kept in the order they were stored, for
//! [`Spill::each_in_order`] (looked up by id, the last one stored).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a value is, as its table keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Kept in order too (OVAL's definitions).
    Sequence = 0,
    /// OVAL's tests.
    Test = 1,
    /// OVAL's objects.
    Object = 2,
    /// OVAL's states.
    State = 3,
}

/// Why the temporary database failed (the disk full, no temporary directory).
#[derive(Debug)]
pub(crate) struct SpillError(String);

impl std::fmt::Display for SpillError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for SpillError {
    fn from(error: rusqlite::Error) -> SpillError {
        SpillError(error.to_string())
    }
}

impl From<serde_json::Error> for SpillError {
    fn from(error: serde_json::Error) -> SpillError {
        SpillError(format!("a value could not be read back: {error}"))
    }
}

/// The values kept in memory and the temporary database of those past the budget. Writes to
/// the database go into one transaction, committed by [`Spill::finish_writing`] before the
/// values are read back.
pub(crate) struct Spill {
    memory: InMemory,
    connection: Connection,
    /// How many bytes `memory` may take.
    memory_budget: usize,
    /// Whether a value went to the database: from then on every new id goes there too, so
    /// the sequence's rows in the database all come after those in memory.
    overflowed: bool,
}

/// The encoded values within the budget.
#[derive(Default)]
struct InMemory {
    /// Tests, objects and states by kind and id.
    values: HashMap<(Kind, String), Vec<u8>>,
    /// The sequence's values in the order stored.
    sequence: Vec<Vec<u8>>,
    /// The position in `sequence` of the last value stored under each id.
    sequence_last: HashMap<String, usize>,
    /// What the values and their ids take, in bytes.
    bytes: usize,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Spill")
    }
}

/// SQLite's page cache of the temporary database, in KiB: what the rows may take in memory.
const CACHE_KIB: u32 = 8 << 10;

/// How many bytes of encoded values and their ids are kept in memory before values go to
/// the temporary database: the import's peak stayed near 120 MB on generated documents of
/// 100 and 713 MB (docs/benchmarks/vulndb.md, "OVAL import with a memory budget"). The
/// tables' per-entry overhead is not counted, so many tiny items take a few times this.
pub(crate) const MEMORY_BUDGET: usize = 64 << 20;

impl Spill {
    /// A new, empty spill of [`MEMORY_BUDGET`]; its database is an unnamed file in SQLite's
    /// temporary directory.
    pub(crate) fn new() -> Result<Spill, SpillError> {
        Spill::with_memory_budget(MEMORY_BUDGET)
    }

    /// A new, empty spill keeping up to `memory_budget` bytes in memory.
    fn with_memory_budget(memory_budget: usize) -> Result<Spill, SpillError> {
        let connection = Connection::open("")?;
        connection.execute_batch(&format!(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA cache_size = -{CACHE_KIB};
             CREATE TABLE value (kind INTEGER NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL,
                                 PRIMARY KEY (kind, id)) WITHOUT ROWID;
             CREATE TABLE sequence (id TEXT NOT NULL, body BLOB NOT NULL);
             BEGIN;"
        ))?;
        Ok(Spill {
            memory: InMemory::default(),
            connection,
            memory_budget,
            overflowed: false,
        })
    }

    /// Stores `value` as the `kind` of `id`.
    pub(crate) fn put(
        &mut self,
        kind: Kind,
        id: &str,
        value: &impl Serialize,
    ) -> Result<(), SpillError> {
        let body = serde_json::to_vec(value)?;
        if self.keep_in_memory(kind, id, &body) {
            return Ok(());
        }
        self.overflowed = true;
        if kind == Kind::Sequence {
            self.connection
                .prepare_cached("INSERT INTO sequence (id, body) VALUES (?1, ?2)")?
                .execute(params![id, body])?;
        } else {
            self.connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO value (kind, id, body) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![kind as i64, id, body])?;
        }
        Ok(())
    }

    /// Keeps `body` in memory if it replaces a value kept there, or if it is a new one and
    /// the budget has room (and nothing went to the database yet); tells whether it did.
    fn keep_in_memory(&mut self, kind: Kind, id: &str, body: &[u8]) -> bool {
        let memory = &mut self.memory;
        if kind != Kind::Sequence
            && let Some(kept) = memory.values.get_mut(&(kind, id.to_owned()))
        {
            memory.bytes = memory.bytes - kept.len() + body.len();
            *kept = body.to_vec();
            return true;
        }
        let size = id.len() + body.len();
        if self.overflowed || memory.bytes + size > self.memory_budget {
            return false;
        }
        memory.bytes += size;
        if kind == Kind::Sequence {
            memory
                .sequence_last
                .insert(id.to_owned(), memory.sequence.len());
            memory.sequence.push(body.to_vec());
        } else {
            memory.values.insert((kind, id.to_owned()), body.to_vec());
        }
        true
    }

    /// Commits what was stored and indexes the sequence by id (once, after its rows: faster
    /// than keeping an index while they are written); reading may start.
    pub(crate) fn finish_writing(&self) -> Result<(), SpillError> {
        if !self.connection.is_autocommit() {
            self.connection.execute_batch(
                "CREATE INDEX sequence_id ON sequence (id);
                 COMMIT;",
            )?;
        }
        Ok(())
    }

    /// The `kind` of `id`, if stored.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>, SpillError> {
        let body: Option<Vec<u8>> = if !self.overflowed {
            None
        } else if kind == Kind::Sequence {
            self.connection
                .prepare_cached(
                    "SELECT body FROM sequence WHERE id = ?1 ORDER BY rowid DESC LIMIT 1",
                )?
                .query_row(params![id], |row| row.get(0))
                .optional()?
        } else {
            self.connection
                .prepare_cached("SELECT body FROM value WHERE kind = ?1 AND id = ?2")?
                .query_row(params![kind as i64, id], |row| row.get(0))
                .optional()?
        };
        let body = body.as_deref().or_else(|| self.memory.get(kind, id));
        Ok(body.map(serde_json::from_slice).transpose()?)
    }

    /// Calls `each` with every [`Kind::Sequence`] value in the order stored.
    /// `each` stops the walk by returning an error (its own, or one of the database's).
    pub(crate) fn each_in_order<T: DeserializeOwned, E: From<SpillError>>(
        &self,
        mut each: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E> {
        for body in &self.memory.sequence {
            each(serde_json::from_slice(body).map_err(SpillError::from)?)?;
        }
        if !self.overflowed {
            return Ok(());
        }
        let mut statement = self
            .connection
            .prepare("SELECT body FROM sequence ORDER BY rowid")
            .map_err(SpillError::from)?;
        let mut rows = statement.query([]).map_err(SpillError::from)?;
        while let Some(row) = rows.next().map_err(SpillError::from)? {
            let body: Vec<u8> = row.get(0).map_err(SpillError::from)?;
            each(serde_json::from_slice(&body).map_err(SpillError::from)?)?;
        }
        Ok(())
    }
}

impl InMemory {
    /// The encoded `kind` of `id`, if kept here.
    fn get(&self, kind: Kind, id: &str) -> Option<&[u8]> {
        if kind == Kind::Sequence {
            let position = *self.sequence_last.get(id)?;
            Some(&self.sequence[position])
        } else {
            self.values.get(&(kind, id.to_owned())).map(Vec::as_slice)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Spill, SpillError};

    /// Budgets for every value in memory, none, the first two (the sequence's id "b" in
    /// both) and the sequence's three (the tests on disk only).
    const BUDGETS: [usize; 4] = [usize::MAX, 0, 14, 25];

    #[test]
    fn values_are_read_back_by_kind_and_id_and_in_order() {
        for budget in BUDGETS {
            read_back_with_memory_budget(budget);
        }
    }

    fn read_back_with_memory_budget(budget: usize) {
        let mut spill = Spill::with_memory_budget(budget).unwrap();
        spill.put(Kind::Sequence, "b", &"first b").unwrap();
        spill.put(Kind::Sequence, "a", &"a").unwrap();
        spill.put(Kind::Sequence, "b", &"second b").unwrap();
        spill.put(Kind::Test, "a", &vec![1, 2]).unwrap();
        spill.put(Kind::Test, "a", &vec![3]).unwrap();
        spill.finish_writing().unwrap();
        assert_eq!(
            spill.get::<Vec<u32>>(Kind::Test, "a").unwrap(),
            Some(vec![3])
        );
        assert_eq!(spill.get::<Vec<u32>>(Kind::Object, "a").unwrap(), None);
        assert_eq!(
            spill.get::<String>(Kind::Sequence, "a").unwrap().as_deref(),
            Some("a")
        );
        let mut order = Vec::new();
        spill
            .each_in_order(|value: String| {
                order.push(value);
                Ok::<(), SpillError>(())
            })
            .unwrap();
        assert_eq!(order, ["first b", "a", "second b"]);
        assert_eq!(
            spill.get::<String>(Kind::Sequence, "b").unwrap().as_deref(),
            Some("second b")
        );
        // A value of another shape is an error, not a panic.
        assert!(spill.get::<Vec<u32>>(Kind::Sequence, "a").is_err());
    }
}
