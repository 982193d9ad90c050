//! Ingest's bulk inserts, run through SQLite's C API on the writer connection's handle.
//!
//! Through sqlx, each value of a multi-row `INSERT` is encoded into sqlx's argument list (and
//! its `$N` placeholder formatted into the statement text), copied for the connection's worker
//! thread and copied again by SQLite; while the ingest task builds the next statement, the
//! worker thread waits. Here the same multi-row statements (single-row ones cost SQLite itself
//! a fifth more per row) are prepared once per batch and bound with the batch's own strings in
//! place (`SQLITE_STATIC`: bound, stepped and cleared within one call), on the ingest task's
//! thread while it holds the connection's lock.
//!
//! An insert may return one text column per row stored: ingest records a batch's report ids
//! with `INSERT OR IGNORE … RETURNING report_id`, whose returned ids are those stored now, so
//! the statement that stores the new ids also names the duplicates.

use std::{
    ffi::{CStr, c_int},
    marker::PhantomData,
    ptr::{self, NonNull},
};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use crate::{Result, StoreError};

/// Rows per `INSERT` statement: a few thousand bound values, well under SQLite's limit of
/// 32,766.
const ROWS_PER_STATEMENT: usize = 500;

/// A value bound to one statement parameter.
pub(crate) enum Value<'a> {
    Text(&'a str),
    /// Text worked out for this row only (bound in place like the others).
    OwnedText(String),
    Integer(i64),
    Null,
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Value<'a> {
        text.map_or(Value::Null, Value::Text)
    }
}

/// The writer connection, borrowed through sqlx's lock: while it lives, sqlx's worker thread
/// makes no call on the connection, so this thread may.
pub(crate) struct Connection<'lock> {
    db: NonNull<ffi::sqlite3>,
    _lock: PhantomData<&'lock mut ()>,
}

impl<'lock> Connection<'lock> {
    pub(crate) fn new(handle: &'lock mut LockedSqliteHandle<'_>) -> Connection<'lock> {
        Connection {
            db: handle.as_raw_handle(),
            _lock: PhantomData,
        }
    }

    /// Inserts `rows`: `insert` is `INSERT OR FAIL INTO table (c1, …, cN)` and `row_values`
    /// pushes a row's N values. Each statement takes up to [`ROWS_PER_STATEMENT`] rows.
    ///
    /// `OR FAIL`, not the default `OR ABORT`: a multi-row statement that may abort inside a
    /// transaction makes SQLite copy every existing page it changes into a statement journal
    /// first, so that it can undo only itself (a tenth of the insert's time on 16 KiB pages).
    /// The caller rolls the whole transaction back on any error, which `FAIL` leaves to it.
    pub(crate) fn insert_rows<'r, R>(
        &self,
        insert: &str,
        columns: usize,
        rows: &'r [R],
        row_values: impl FnMut(&'r R, &mut Vec<Value<'r>>),
    ) -> Result<()> {
        self.insert_rows_returning(insert, columns, rows, row_values, "", &mut |_: &str| {})
    }

    /// [`Connection::insert_rows`] with `returning` (`RETURNING c`: one text column) at the
    /// end of each statement: `returned` is given the text of every row the statements
    /// return (in no set order; valid during that call only).
    pub(crate) fn insert_rows_returning<'r, R>(
        &self,
        insert: &str,
        columns: usize,
        rows: &'r [R],
        mut row_values: impl FnMut(&'r R, &mut Vec<Value<'r>>),
        returning: &str,
        returned: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let statement_text = |rows: usize| {
            let values = values_clause(insert, columns, rows);
            if returning.is_empty() {
                values
            } else {
                format!("{values} {returning}")
            }
        };
        let mut full_chunk: Option<Statement<'_, 'lock>> = None;
        let mut values = Vec::with_capacity(ROWS_PER_STATEMENT.min(rows.len()) * columns);
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            values.clear();
            for row in chunk {
                row_values(row, &mut values);
            }
            let mut partial_chunk;
            let statement = if chunk.len() == ROWS_PER_STATEMENT {
                match &mut full_chunk {
                    Some(statement) => statement,
                    None => full_chunk.insert(self.prepare(&statement_text(chunk.len()))?),
                }
            } else {
                partial_chunk = self.prepare(&statement_text(chunk.len()))?;
                &mut partial_chunk
            };
            statement.execute(&values, returned)?;
        }
        Ok(())
    }

    /// Prepares the one statement `sql` holds.
    fn prepare(&self, sql: &str) -> Result<Statement<'_, 'lock>> {
        let length = c_int::try_from(sql.len()).map_err(|_| StoreError::Sqlite {
            code: ffi::SQLITE_TOOBIG,
            context: "preparing a bulk insert",
            message: format!("the statement is {} bytes long", sql.len()),
        })?;
        let mut statement = ptr::null_mut();
        // SAFETY: `db` is an open connection this thread holds exclusively (see `new`); `sql`
        // is valid for `length` bytes; the out pointers are valid.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                length,
                &mut statement,
                ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(self.error(code, "preparing a bulk insert"));
        }
        let statement = NonNull::new(statement).ok_or_else(|| StoreError::Sqlite {
            code: ffi::SQLITE_MISUSE,
            context: "preparing a bulk insert",
            message: "the statement text holds no statement".into(),
        })?;
        Ok(Statement {
            statement,
            connection: self,
        })
    }

    fn error(&self, code: c_int, context: &'static str) -> StoreError {
        // SAFETY: as in `prepare`; sqlite3_errmsg returns a NUL-terminated string owned by
        // the connection, copied here before any other call.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        StoreError::Sqlite {
            code,
            context,
            message: message.to_string_lossy().into_owned(),
        }
    }
}

/// `insert VALUES (?, …), …` for `rows` rows of `columns` values.
fn values_clause(insert: &str, columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("{insert} VALUES {}", vec![row; rows].join(", "))
}

/// A prepared statement, finalized when dropped.
struct Statement<'c, 'lock> {
    statement: NonNull<ffi::sqlite3_stmt>,
    connection: &'c Connection<'lock>,
}

impl Statement<'_, '_> {
    /// Binds `values` to every parameter in order, runs the statement to completion, giving
    /// `returned` the first column's text of each row it returns, and clears the bindings, so
    /// that no value is referenced after the call.
    fn execute(&mut self, values: &[Value<'_>], returned: &mut dyn FnMut(&str)) -> Result<()> {
        let statement = self.statement.as_ptr();
        // SAFETY (every block below): `statement` is a live prepared statement of a connection
        // this thread holds; bound text stays valid until `sqlite3_clear_bindings` in this call
        // (SQLITE_STATIC tells SQLite neither to copy nor to free it).
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(statement) };
        if usize::try_from(parameters).ok() != Some(values.len()) {
            return Err(StoreError::Sqlite {
                code: ffi::SQLITE_RANGE,
                context: "binding a bulk insert",
                message: format!(
                    "the statement has {parameters} parameters, given {} values",
                    values.len()
                ),
            });
        }
        let mut code = ffi::SQLITE_OK;
        // Set when a returned text is not UTF-8: an error of ours, apart from SQLite's codes
        // (SQLITE_MISMATCH is a real datatype mismatch, whose message must not be replaced).
        let mut returned_not_utf8 = false;
        for (index, value) in values.iter().enumerate() {
            let position = c_int::try_from(index + 1).unwrap_or(c_int::MAX);
            let text = |text: &str| unsafe {
                ffi::sqlite3_bind_text64(
                    statement,
                    position,
                    text.as_ptr().cast(),
                    text.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                )
            };
            code = match value {
                Value::Text(borrowed) => text(borrowed),
                Value::OwnedText(owned) => text(owned),
                Value::Integer(integer) => unsafe {
                    ffi::sqlite3_bind_int64(statement, position, *integer)
                },
                Value::Null => unsafe { ffi::sqlite3_bind_null(statement, position) },
            };
            if code != ffi::SQLITE_OK {
                break;
            }
        }
        if code == ffi::SQLITE_OK {
            code = unsafe { ffi::sqlite3_step(statement) };
            while code == ffi::SQLITE_ROW {
                // SAFETY: the statement is on a row; the text SQLite returns for column 0 is
                // valid for `length` bytes until the next step, and only lent to `returned`.
                let text = unsafe {
                    let pointer = ffi::sqlite3_column_text(statement, 0);
                    let length =
                        usize::try_from(ffi::sqlite3_column_bytes(statement, 0)).unwrap_or(0);
                    if pointer.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(pointer, length)
                    }
                };
                let Ok(text) = std::str::from_utf8(text) else {
                    returned_not_utf8 = true;
                    break;
                };
                returned(text);
                code = unsafe { ffi::sqlite3_step(statement) };
            }
        }
        let result = if returned_not_utf8 {
            Err(StoreError::Sqlite {
                code,
                context: "running a bulk insert",
                message: "a returned text is not UTF-8".into(),
            })
        } else if code == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(self.connection.error(code, "running a bulk insert"))
        };
        // Reset readies the statement for the next chunk; clearing drops the pointers to this
        // call's values.
        unsafe {
            ffi::sqlite3_reset(statement);
            ffi::sqlite3_clear_bindings(statement);
        }
        result
    }
}

impl Drop for Statement<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and finalized exactly once, here.
        unsafe {
            ffi::sqlite3_finalize(self.statement.as_ptr());
        }
    }
}

/// Runs `work`, which blocks on SQLite, without stalling the other tasks of a multi-threaded
/// runtime (they move to another worker); on any other runtime it simply runs.
pub(crate) fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqliteConnection;

    use super::{Connection, Value, values_clause};

    /// A returned text that is not UTF-8 is named as such, and a real datatype mismatch keeps
    /// SQLite's own message: the two no longer share `SQLITE_MISMATCH`.
    #[tokio::test]
    async fn a_returned_text_not_utf8_and_a_datatype_mismatch_are_told_apart() {
        let mut connection = <SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
            .execute(&mut connection)
            .await
            .unwrap();
        let mut handle = connection.lock_handle().await.unwrap();
        let db = Connection::new(&mut handle);
        let error = |id: &'static str, returning: &str| {
            db.insert_rows_returning(
                "INSERT OR FAIL INTO t (id, name)",
                2,
                &[id],
                |id, values| values.extend([Value::Text(id), Value::Text("a")]),
                returning,
                &mut |_: &str| {},
            )
            .unwrap_err()
            .to_string()
        };
        let not_utf8 = error("1", "RETURNING CAST(x'ff' AS TEXT)");
        assert!(
            not_utf8.contains("a returned text is not UTF-8"),
            "{not_utf8}"
        );
        let mismatch = error("not a number", "RETURNING name");
        assert!(mismatch.contains("datatype mismatch"), "{mismatch}");
    }

    #[test]
    fn the_values_clause_has_a_placeholder_per_column_and_row() {
        assert_eq!(
            values_clause("INSERT INTO t (a, b)", 2, 3),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"
        );
    }
}
