//! The store's error type.

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// SQLite refused a statement run through its C API (ingest's bulk inserts).
    #[error("database error while {context}: {message} (SQLite code {code})")]
    Sqlite {
        /// SQLite's result code.
        code: i32,
        /// What the store was doing.
        context: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The schema could not be migrated.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded: the database holds data this version cannot read.
    #[error("corrupt stored value in {table}.{column}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The change conflicts with stored data (a unique name already taken).
    #[error("{0}")]
    Conflict(String),
    /// A pagination cursor that this store did not issue.
    #[error("invalid cursor: pass back the `next_cursor` of a previous page unchanged")]
    InvalidCursor,
    /// The database file or its directory could not be prepared.
    #[error("cannot open the database at {path}")]
    Open {
        /// The database path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
