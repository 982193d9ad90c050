//! The SQLite implementation of [`Store`].

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    path::Path,
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use palisade_model::{
    AffectedAsset, Asset, AssetKind, AuditEntry, Details, Exception, Finding, FindingKind,
    FindingReport, NewException, NewWhitelistRule, Note, Role, Severity, Status, Timestamp,
    WhitelistMatcher, WhitelistRule,
};
use serde::{Deserialize, Serialize};
use sqlx::{
    Connection as _, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};
use uuid::Uuid;

use bulk::Value;

mod bulk;
mod checkpointer;
mod console;
mod dedupe_lookup;
mod field_hits;
mod group_order;
mod group_summary;
mod in_flight;
mod known_rows;
mod newest_matches;
mod quarantine;
mod tasks;
#[cfg(test)]
mod test_support;
mod writer_cache;

use crate::{
    AgentRecord, AssetQuery, AuditQuery, ClusterSummary, Cursor, FindingQuery, HandlingPolicy,
    IngestOutcome, Page, Result, SearchWindow, Selection, SeverityCounts, SortOrder, Store,
    StoreError, TokenRecord,
    query::{TRIGRAM_CHARS, page_size},
};
use crate::{FindingGroup, LossIncrease, NodeLosses, TimeBuckets};
use palisade_model::{
    AgentTask, FirewallRule, FixVerification, QuarantineEntry, QuarantinedFile, TaskResult,
    VerificationState,
};

/// Rows updated per statement when a handling action closes many findings at once.
const UPDATE_CHUNK: usize = 500;

/// Rows a reader's worker thread sends ahead of the task reading them (sqlx's default is 50):
/// a default page and the row that shows another page follows, with room to spare.
const READER_ROW_BUFFER: usize = 128;

/// SQLite-backed store: one writer connection (SQLite has one writer at a time anyway, and a
/// single connection avoids `SQLITE_BUSY` retries) and a pool of readers, in WAL mode so
/// readers never wait for the writer.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// How recent text searches ran (see [`console::TermPlans`]).
    term_plans: console::TermPlans,
    /// Walks for the newest matches of common terms, shared while they run (see
    /// [`newest_matches`]).
    walks: in_flight::InFlight<newest_matches::NewestMatches>,
    /// What grouped searches hit among the search keys, shared while found (see
    /// [`console::KeyHits`]).
    key_hits: in_flight::InFlight<console::KeyHits>,
    /// Asset keys and search rows seen committed, which ingest need not look up or add again.
    known_rows: known_rows::KnownRows,
    /// Copies the WAL into the database beside the writer (see [`checkpointer`]).
    checkpointer: checkpointer::Checkpointer,
}

/// What the `body` column holds: the parts of a finding without columns of their own
/// (borrowed when written, so that ingest serialises reports without copying them).
#[derive(Serialize, Deserialize)]
struct FindingBody<'a> {
    asset: Cow<'a, AffectedAsset>,
    #[serde(flatten)]
    details: Cow<'a, Details>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, checkpointer::Limits::DEFAULT).await
    }

    /// [`SqliteStore::open`] with the WAL's `limits`.
    async fn open_with(path: &Path, limits: checkpointer::Limits) -> Result<SqliteStore> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // 16 KiB pages for a new database (an existing one keeps its size: WAL mode does
            // not change it): a batch of new findings dirties pages all over the random-keyed
            // indexes, and a commit writes each dirty page with a WAL frame header and checksum.
            // The ingest benchmark's writer spent a tenth to a third less CPU per new finding.
            .page_size(16384)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: each commit is on disk before ingest acknowledges it, as the agent then
            // deletes those findings from its outbox; NORMAL survives a crash of the process
            // but can roll the last commits back after a power loss. The ingest benchmark
            // showed no cost above its noise (docs/benchmarks.md).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // 64 MiB of page cache per connection: the finding indexes of a busy cluster do
            // not fit SQLite's 2 MiB default, and ingest then waits on the disk.
            .pragma(
                "cache_size",
                writer_cache::pragma_kib(writer_cache::READER_CACHE_BYTES),
            )
            .pragma("temp_store", "memory");
        // The writer's cache is larger where memory allows (see `writer_cache`). It checkpoints
        // the WAL itself only as a backstop: the checkpointer does it beside it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", writer_cache::writer_cache_size())
                    .pragma("wal_autocheckpoint", limits.backstop_frames.to_string())
                    // Once written from its start again, the WAL file is cut back to the size
                    // the checkpointer bounds it to, so that a burst (a migration, a reader
                    // that held the checkpoint back) does not keep its peak on disk.
                    .pragma("journal_size_limit", limits.wal_bytes().to_string()),
            )
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // The groups a migration listed as stale (0059 lists every group) are summarised now.
        {
            let mut transaction = writer.begin().await?;
            group_summary::refresh(&mut transaction, []).await?;
            transaction.commit().await?;
        }
        // Each statement is a round trip to the connection's worker thread, a wake-up and a
        // context switch each way (perf, 16 console clients: the kernel's task switch was 15 %
        // of all samples on the runtime's threads, more than rendering). Readers therefore
        // skip sqlx's liveness ping before each use (a connection to a local file does not go
        // stale), and buffer a whole default page of rows (50 + 1) so that the worker never
        // waits mid-page for the task reading them.
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .read_only(true)
                    .row_buffer_size(READER_ROW_BUFFER),
            )
            .await?;
        let checkpointer = checkpointer::Checkpointer::start(&options, limits).await?;
        Ok(SqliteStore {
            writer,
            reader,
            term_plans: console::TermPlans::default(),
            walks: in_flight::InFlight::default(),
            key_hits: in_flight::InFlight::default(),
            known_rows: known_rows::KnownRows::default(),
            checkpointer,
        })
    }

    /// Forgets what recent text searches learnt about their terms (see
    /// [`console::TermPlans`]), so that the next search of every term plans again as its
    /// first one did: a benchmark's first views of a term under several filters are then each
    /// a first view, not one planned by the term's earlier views.
    pub fn forget_term_plans(&self) {
        self.term_plans.clear();
    }
}

fn corrupt(table: &'static str, column: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        reason: reason.to_string(),
    }
}

fn parse_uuid(table: &'static str, column: &'static str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|error| corrupt(table, column, error))
}

fn from_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|error| corrupt(table, column, error))
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising model types cannot fail: they hold no maps with non-string keys.
    serde_json::to_string(value).unwrap_or_default()
}

fn finding_from_row(row: &SqliteRow) -> Result<Finding> {
    let body: FindingBody = from_json("findings", "body", row.try_get::<&str, _>("body")?)?;
    let severity = Severity::from_rank(row.try_get("severity")?)
        .ok_or_else(|| corrupt("findings", "severity", "out of range"))?;
    let status_name: &str = row.try_get("status")?;
    let status =
        Status::from_name(status_name).ok_or_else(|| corrupt("findings", "status", status_name))?;
    Ok(Finding {
        id: parse_uuid("findings", "id", row.try_get("id")?)?,
        severity,
        status,
        rule: row.try_get("rule")?,
        title: row.try_get("title")?,
        asset_id: parse_uuid("findings", "asset_id", row.try_get("asset_id")?)?,
        asset: body.asset.into_owned(),
        first_seen: Timestamp(row.try_get("first_seen")?),
        last_seen: Timestamp(row.try_get("last_seen")?),
        count: u64::try_from(row.try_get::<i64, _>("count")?).unwrap_or(0),
        demo: row.try_get::<i64, _>("demo")? != 0,
        details: body.details.into_owned(),
    })
}

async fn insert_audit(connection: &mut SqliteConnection, entry: &AuditEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, role, action, target_kind, target_id, reason, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.id.to_string())
    .bind(entry.at.millis())
    .bind(&entry.actor)
    .bind(entry.role.as_str())
    .bind(&entry.action)
    .bind(&entry.target_kind)
    .bind(&entry.target_id)
    .bind(&entry.reason)
    .bind(to_json(&entry.details))
    .execute(connection)
    .await?;
    Ok(())
}

/// Sets `status` on the given finding ids, in chunks.
async fn update_status(
    connection: &mut SqliteConnection,
    ids: &[Uuid],
    status: Status,
) -> Result<u64> {
    let mut changed = 0;
    for chunk in ids.chunks(UPDATE_CHUNK) {
        let mut builder = QueryBuilder::<Sqlite>::new("UPDATE findings SET status = ");
        builder.push_bind(status.as_str()).push(" WHERE id IN (");
        let mut separated = builder.separated(", ");
        for id in chunk {
            separated.push_bind(id.to_string());
        }
        builder.push(")");
        changed += builder
            .build()
            .execute(&mut *connection)
            .await?
            .rows_affected();
    }
    group_summary::refresh(connection, []).await?;
    Ok(changed)
}

/// Streams every finding of `kind` with one of `statuses` (optionally on one asset) and
/// returns the ids of those `keep` accepts. Used where a rule must be tested in Rust
/// (regexes, exceptions) against the findings it could change.
async fn scan_findings(
    connection: &mut SqliteConnection,
    kind: FindingKind,
    statuses: &[Status],
    asset_id: Option<Uuid>,
    keep: impl Fn(&Finding) -> bool,
) -> Result<Vec<Uuid>> {
    use futures_lite::StreamExt;

    let mut builder = QueryBuilder::<Sqlite>::new("SELECT * FROM findings");
    if asset_id.is_some() {
        builder.push(BY_ASSET_INDEX);
    }
    builder.push(" WHERE kind = ").push_bind(kind.as_str());
    push_in(
        &mut builder,
        "status",
        statuses.iter().map(|status| status.as_str()),
    );
    if let Some(asset_id) = asset_id {
        push_asset_filter(&mut builder, asset_id);
    }
    let mut matching = Vec::new();
    let query = builder.build();
    let mut rows = query.fetch(connection);
    while let Some(row) = rows.next().await {
        let finding = finding_from_row(&row?)?;
        if keep(&finding) {
            matching.push(finding.id);
        }
    }
    Ok(matching)
}

fn push_in(
    builder: &mut QueryBuilder<Sqlite>,
    column: &str,
    values: impl Iterator<Item = impl Into<String>>,
) {
    let values: Vec<String> = values.map(Into::into).collect();
    if values.is_empty() {
        return;
    }
    builder.push(format_args!(" AND {column} IN ("));
    let mut separated = builder.separated(", ");
    for value in values {
        separated.push_bind(value);
    }
    builder.push(")");
}

/// Appends the WHERE clause of `query` to a statement that ends in `FROM findings`; `text`
/// says how its text search runs (see [`SqliteStore::text_search`]).
fn push_finding_filters(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    text: &TextSearch,
) {
    if matches!(
        text,
        TextSearch::Driven(_)
            | TextSearch::Window { .. }
            | TextSearch::Narrowed {
                newest_only: false,
                ..
            }
    ) {
        // Rowid look-ups stay allowed; walking a whole index in sort order does not (an
        // aggregate grouped by severity or rule otherwise walks the index that holds that
        // order, past every finding of the kind, instead of reading its candidates).
        builder.push(" NOT INDEXED");
    }
    builder.push(" WHERE kind = ").push_bind(kind.as_str());
    push_asset_index_filters(builder, query);
    push_filters_beyond_asset_index(builder, query);
    if query.text.is_some() {
        if let TextSearch::Window { index } = text {
            push_search_window(builder, kind, query, *index);
        }
        push_text_filter(builder, kind, query, text);
    }
}

/// Appends ` AND` the filters of `query` that `findings_by_asset` does not hold, beside
/// [`push_asset_index_filters`]: its asset, rule and demo flag.
fn push_filters_beyond_asset_index(builder: &mut QueryBuilder<Sqlite>, query: &FindingQuery) {
    if let Some(asset_id) = query.asset_id {
        push_asset_filter(builder, asset_id);
    }
    if let Some(rule) = &query.rule {
        builder.push(" AND rule = ").push_bind(rule);
    }
    if let Some(demo) = query.demo {
        builder.push(" AND demo = ").push_bind(i64::from(demo));
    }
}

/// A finding's generation (migration 0068) is the rowid of its batch's first row shifted
/// right by this: a generation holds about 131,072 findings (a batch's rows stay in one).
const GENERATION_SHIFT: u32 = 17;

/// The generation of the findings of a batch whose first row takes the rowid after
/// `last_rowid`.
fn generation(last_rowid: i64) -> i64 {
    (last_rowid + 1) >> GENERATION_SHIFT
}

/// The condition that a finding is in one of the generations `findings_by_asset` holds (the
/// index's leading column, migration 0068): the stored ones, each found from the one before
/// by a seek of that index, so that generations holding no finding (those between a database's
/// rows from before 0068, all generation 0, and its first new batch) cost nothing. SQLite
/// then seeks the asset in each, since the index must be sought by its leading column first:
/// one seek per stored generation and asset, which grows with the findings stored (8
/// generations at a million).
const IN_EVERY_GENERATION: &str = "generation IN (WITH RECURSIVE stored(number) AS \
     (SELECT MIN(generation) FROM findings UNION ALL SELECT (SELECT MIN(generation) \
     FROM findings WHERE generation > number) FROM stored WHERE number IS NOT NULL) \
     SELECT number FROM stored WHERE number IS NOT NULL)";

/// Names `findings_by_asset` for a statement whose findings are one asset's (a statement
/// that ends in `FROM findings` or is `UPDATE findings`). Without statistics SQLite costs the
/// index's seeks as 25 (one per generation of [`IN_EVERY_GENERATION`], a list from a
/// subquery) against a single seek of an index led by `kind` and `cluster` (which, for it,
/// yields some 10 rows and is, in fact, the cluster's findings), so it would walk the
/// cluster's findings for one asset's.
const BY_ASSET_INDEX: &str = " INDEXED BY findings_by_asset";

/// Appends ` AND` the condition that selects asset `asset_id`'s findings: `findings_by_asset`
/// is keyed by the generation ([`IN_EVERY_GENERATION`]) and the asset's integer in
/// `finding_assets` (migration 0062), not by its id.
fn push_asset_filter(builder: &mut QueryBuilder<Sqlite>, asset_id: Uuid) {
    builder
        .push(" AND ")
        .push(IN_EVERY_GENERATION)
        .push(" AND asset_key = (SELECT key FROM finding_assets WHERE asset_id = ")
        .push_bind(asset_id.to_string())
        .push(")");
}

/// Appends the condition that selects the findings of the assets whose ids the JSON array
/// `asset_ids` lists, through their integers as [`push_asset_filter`] does.
fn push_assets_in(builder: &mut QueryBuilder<Sqlite>, asset_ids: String) {
    builder
        .push(IN_EVERY_GENERATION)
        .push(
            " AND asset_key IN (SELECT key FROM finding_assets \
             WHERE asset_id IN (SELECT value FROM json_each(",
        )
        .push_bind(asset_ids)
        .push(")))");
}

/// Appends the condition that a finding's asset id is (`negated`: is not) one the JSON array
/// `asset_ids` lists: for statements on the grouped indexes, which hold `asset_id` (its
/// integer key, [`push_assets_in`], is only in the row, and naming it read the row of every
/// entry: 1.5 s for `vulnerabilities?q=app-42:` over 100,000 findings), and for rows already
/// read.
fn push_asset_ids_in(builder: &mut QueryBuilder<Sqlite>, asset_ids: String, negated: bool) {
    builder
        .push(if negated {
            "asset_id NOT IN"
        } else {
            "asset_id IN"
        })
        .push(" (SELECT value FROM json_each(")
        .push_bind(asset_ids)
        .push("))");
}

/// Appends ` INDEXED BY findings_by_asset WHERE …` to a statement that ends in `FROM
/// findings`: the findings of `kind` of the assets the JSON array `asset_ids` lists that pass
/// the filters of `query` that index holds ([`push_asset_index_filters`]), read from its
/// entries alone (migration 0061).
fn push_hit_assets_findings(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    asset_ids: String,
) {
    builder.push(" INDEXED BY findings_by_asset WHERE ");
    push_assets_in(builder, asset_ids);
    builder.push(" AND kind = ").push_bind(kind.as_str());
    push_asset_index_filters(builder, query);
}

/// What [`push_asset_index_filters`] filters `query` on, as a key of plans that depend on it.
fn asset_index_filters_key(query: &FindingQuery) -> String {
    format!(
        "{:?}",
        (
            &query.cluster,
            &query.severities,
            &query.statuses,
            &query.category,
            &query.namespace,
            query.since,
            query.until,
        )
    )
}

/// The filters of `query` that `findings_by_asset` holds (migration 0061): cluster, severity,
/// status, category, namespace and the time range, each ` AND …`. [`push_finding_filters`]
/// applies them to every statement; the findings of the assets a term hits are filtered by
/// them from the index alone ([`field_hits::push_candidates`]).
fn push_asset_index_filters(builder: &mut QueryBuilder<Sqlite>, query: &FindingQuery) {
    if let Some(cluster) = &query.cluster {
        builder.push(" AND cluster = ").push_bind(cluster);
    }
    if !query.severities.is_empty() {
        builder.push(" AND severity IN (");
        let mut separated = builder.separated(", ");
        for severity in &query.severities {
            separated.push_bind(severity.rank());
        }
        builder.push(")");
    }
    push_in(
        builder,
        "status",
        query.statuses.iter().map(|status| status.as_str()),
    );
    if let Some(category) = &query.category {
        builder.push(" AND category = ").push_bind(category);
    }
    if let Some(namespace) = &query.namespace {
        builder.push(" AND namespace = ").push_bind(namespace);
    }
    if let Some(since) = query.since {
        builder.push(" AND last_seen >= ").push_bind(since.millis());
    }
    if let Some(until) = query.until {
        builder
            .push(" AND first_seen <= ")
            .push_bind(until.millis());
    }
}

/// The searched text of a vulnerability beside title, rule and asset label: its package and
/// aliases. Migration 0031 indexes the same expression of `NEW.body` as `finding_text.extra`.
const VULNERABILITY_TEXT: &str = "COALESCE(json_extract(body, '$.details.package'), '') || ' ' || \
     COALESCE((SELECT group_concat(value, ' ') FROM json_each(body, '$.details.aliases')), '')";

/// Findings containing a term at most this many times over are read through the trigram
/// index by rowid; more, and the matches are dense enough that a page walks a time-ordered
/// index and finds them at once.
const RARE_TERM_FINDINGS: i64 = 2_000;

/// Trigrams held by more findings than this are left out of a rare-term look-up when the
/// term has rarer ones: reading their entries costs more than they narrow (any subset of a
/// term's trigrams finds a superset of its findings, which LIKE re-checks).
const COMMON_TRIGRAM_FINDINGS: i64 = 5_000;

/// How the text search of one statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TextSearch {
    /// The LIKE conditions alone: no text, terms the index cannot look up, and pages of
    /// common terms.
    Scan,
    /// Candidates from the trigram index (title, extra) and the findings of the rules and
    /// assets the term hits ([`field_hits::push_candidates`]), re-checked with LIKE;
    /// aggregates of common terms.
    Narrowed {
        /// There are more candidates than [`SearchWindow::COUNTED_MATCHES`]: aggregates read
        /// the newest matches only (see [`console::push_matches`]). Below that they read every
        /// candidate, which costs less than walking the time index past all of them.
        newest_only: bool,
        /// The rules and assets whose text holds the term.
        fields: Arc<field_hits::FieldHits>,
        /// The candidates of title and extra: the trigram index's rows for the covering
        /// trigrams ([`covering_trigrams`]), or the few of them no hit rule holds (see
        /// [`field_hits::rows_beyond_rule_hits`]).
        titles: field_hits::TitleRows,
    },
    /// Few candidates, found when the search was planned (the same ones as
    /// [`TextSearch::Narrowed`]'s): read by rowid, re-checked, then sorted (the index is not
    /// asked twice).
    Driven(Vec<i64>),
    /// A term the index cannot look up: the LIKE conditions over the newest
    /// [`SearchWindow::FINDINGS`] findings the other filters select (after the page's position
    /// when listing by last seen, newest first), read through `index` when one is named (see
    /// [`SqliteStore::narrow_index`]).
    Window {
        /// The index the window's findings are read through, if not a time-ordered one.
        index: Option<&'static str>,
    },
    /// Aggregates of a grouped kind: what the term hits among the distinct searched texts
    /// (migration 0056), whose findings are read from `findings_grouped_by_rule` by rule,
    /// title and asset (see [`console::push_matches`]); exact for every term.
    Keys(Arc<console::KeyHits>),
}

/// Restricts a statement to the rows of a [`TextSearch::Window`]: the newest
/// [`SearchWindow::FINDINGS`] findings `query` selects without its text.
fn push_search_window(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    index: Option<&str>,
) {
    let mut examined = query.clone();
    examined.text = None;
    builder.push(" AND rowid IN (SELECT rowid FROM findings");
    if let Some(index) = index {
        builder.push(format_args!(" INDEXED BY {index}"));
    }
    push_finding_filters(builder, kind, &examined, &TextSearch::Scan);
    push_keyset(
        builder,
        "last_seen",
        SortOrder::Desc,
        console::window_start(query),
        SearchWindow::FINDINGS - 1,
    );
    builder.push(")");
}

/// The lowercased term when the trigram index can look it up: three characters or more, and
/// no NUL (FTS5 reads its query up to one; such hostile terms go to the scan).
fn indexable(text: &str) -> Option<String> {
    (!SearchWindow::bounds(text)).then(|| text.to_lowercase())
}

impl SqliteStore {
    /// Decides how the text search of `query` runs. A term's candidates are the findings whose
    /// title or extra hold its trigrams (the trigram index) and those of the rules and assets
    /// whose text holds it ([`SqliteStore::field_hits`]); one statement lists them, up to
    /// [`RARE_TERM_FINDINGS`] + 1 from each source, unless a recent search found the term
    /// common in this kind and cluster. `page` is true for a page of findings (which stops at
    /// the first matches) and false for aggregates (which visit every match; see
    /// [`SqliteStore::aggregate_search`] for those of grouped kinds).
    /// It runs on the `connection` of the statement it plans: under load each further
    /// connection taken from the pool is another wait in its queue.
    async fn text_search(
        &self,
        connection: &mut SqliteConnection,
        kind: FindingKind,
        query: &FindingQuery,
        page: bool,
    ) -> Result<TextSearch> {
        let Some(text) = &query.text else {
            return Ok(TextSearch::Scan);
        };
        let Some(needle) = indexable(text) else {
            let index = Self::narrow_index(connection, kind, query).await?;
            return Ok(TextSearch::Window { index });
        };
        let fields = self.field_hits(connection, kind, query, &needle).await?;
        // Whether a term is common depends on the kind and cluster its rules and assets are
        // counted in, and on the filters its assets' findings are counted under; which of its
        // trigrams are selective does not.
        let common_key = format!(
            "common\0{}\0{:?}\0{needle}",
            kind.as_str(),
            asset_index_filters_key(query)
        );
        if let Some(console::TermPlan::Common { beyond_bound }) = self.term_plans.get(&common_key) {
            return common_term(connection, &needle, beyond_bound, fields, page).await;
        }
        let looked_up = match self.term_plans.get(&needle) {
            Some(console::TermPlan::LookUp(trigrams)) => trigrams,
            _ => {
                let trigrams = Self::selective_trigrams(connection, &needle).await?;
                self.term_plans
                    .insert(&needle, console::TermPlan::LookUp(trigrams.clone()));
                trigrams
            }
        };
        let mut candidates = QueryBuilder::<Sqlite>::new("");
        field_hits::push_candidates(
            &mut candidates,
            kind,
            query,
            &field_hits::TitleRows::Trigrams(fts_all(&looked_up)),
            &fields,
            Some(RARE_TERM_FINDINGS + 1),
        );
        let mut holding: Vec<i64> = candidates
            .build_query_scalar()
            .fetch_all(&mut *connection)
            .await?;
        holding.sort_unstable();
        holding.dedup();
        if holding.len() as i64 <= RARE_TERM_FINDINGS {
            return Ok(TextSearch::Driven(holding));
        }
        // Whether the bound on aggregates can be reached: the candidates (the covering
        // trigrams' rows, as the aggregates name them) are at least the matches; each source
        // is counted up to the bound, and their sum is at least the candidates.
        let mut counted = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM (");
        let bound = i64::from(SearchWindow::COUNTED_MATCHES);
        field_hits::push_candidates(
            &mut counted,
            kind,
            query,
            &field_hits::TitleRows::Trigrams(fts_all(&covering_trigrams(&needle))),
            &fields,
            Some(bound + 1),
        );
        counted.push(")");
        let candidates: i64 = counted
            .build_query_scalar()
            .fetch_one(&mut *connection)
            .await?;
        let beyond_bound = candidates > bound;
        self.term_plans
            .insert(&common_key, console::TermPlan::Common { beyond_bound });
        common_term(connection, &needle, beyond_bound, fields, page).await
    }

    /// The trigrams of `needle` a look-up names. A trigram in most findings (`web` of every
    /// pod name) narrows little, and an AND that names it reads its whole entry list: only
    /// the selective ones, or all when none is. One statement counts every trigram's
    /// findings, each count capped.
    async fn selective_trigrams(
        connection: &mut SqliteConnection,
        needle: &str,
    ) -> Result<Vec<String>> {
        let trigrams = term_trigrams(needle);
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT ");
        for (index, trigram) in trigrams.iter().enumerate() {
            if index > 0 {
                builder.push(", ");
            }
            builder
                .push(
                    "(SELECT COUNT(*) FROM (SELECT rowid FROM finding_text WHERE finding_text MATCH ",
                )
                .push_bind(fts_all(std::slice::from_ref(trigram)))
                .push(" LIMIT ")
                .push_bind(COMMON_TRIGRAM_FINDINGS + 1)
                .push("))");
        }
        let row = builder.build().fetch_one(connection).await?;
        let mut selective = Vec::new();
        for (index, trigram) in trigrams.iter().enumerate() {
            if row.try_get::<i64, _>(index)? <= COMMON_TRIGRAM_FINDINGS {
                selective.push(trigram.clone());
            }
        }
        Ok(if selective.is_empty() {
            trigrams
        } else {
            selective
        })
    }
}

/// How the statements of a common term (more than [`RARE_TERM_FINDINGS`] candidates) run:
/// pages walk a time index ([`TextSearch::Scan`]), aggregates are narrowed by the candidates.
/// But when no rule or asset label of the view's kind and cluster holds the term (its rules
/// are another cluster's, say), its matches there are among the trigram rows outside every
/// hit rule's findings; when those are few ([`field_hits::rows_beyond_rule_hits`]) they are
/// every statement's candidates, read by rowid. The walk in time order would otherwise pass
/// every finding of the view looking for matches that are not there: "Write below" in `prod`,
/// whose alerts of that rule are all in `staging`, took 6.7-11 s for its first view.
async fn common_term(
    connection: &mut SqliteConnection,
    needle: &str,
    beyond_bound: bool,
    fields: Arc<field_hits::FieldHits>,
    page: bool,
) -> Result<TextSearch> {
    let trigrams = fts_all(&covering_trigrams(needle));
    if fields.is_empty()
        && let Some(rows) = field_hits::rows_beyond_rule_hits(
            connection,
            needle,
            trigrams.clone(),
            RARE_TERM_FINDINGS,
        )
        .await?
    {
        return Ok(TextSearch::Driven(rows));
    }
    Ok(if page {
        TextSearch::Scan
    } else {
        TextSearch::Narrowed {
            newest_only: beyond_bound,
            fields,
            titles: field_hits::TitleRows::Trigrams(trigrams),
        }
    })
}

/// Case-insensitive substring search of `query`'s text in the searched columns.
///
/// The LIKE conditions define the result. Unless `search` is [`TextSearch::Scan`] (or a
/// window), the candidates first narrow the rows: those whose title or extra the trigram index
/// finds holding the term (case-folded), and those of the rules and assets whose text holds it
/// (found by the same LIKE conditions, so exactly), so that the LIKE conditions test a few
/// candidates instead of every finding. The index folds case more widely than LIKE (all of
/// Unicode, not only ASCII), so it finds a superset and the LIKE re-check keeps every path's
/// result identical. A narrowed statement names only the trigrams that cover the term
/// ([`covering_trigrams`]): a common term's trigrams each hold most of its candidates, and the
/// index reads every named trigram's whole entry list.
fn push_text_filter(
    builder: &mut QueryBuilder<Sqlite>,
    kind: FindingKind,
    query: &FindingQuery,
    search: &TextSearch,
) {
    let text = query.text.as_deref().unwrap_or_default();
    match (search, indexable(text)) {
        (TextSearch::Narrowed { fields, titles, .. }, Some(_)) => {
            builder.push(" AND rowid IN (");
            field_hits::push_candidates(builder, kind, query, titles, fields, None);
            builder.push(")");
        }
        (TextSearch::Driven(rowids), _) => {
            builder
                .push(" AND rowid IN (SELECT value FROM json_each(")
                .push_bind(to_json(rowids))
                .push("))");
        }
        _ => {}
    }
    let needle = text.to_lowercase();
    push_like_text(builder, kind, &needle);
}

/// The LIKE conditions of a text search for `needle` (already lowercased): a scan of every
/// row the other filters leave.
fn push_like_text(builder: &mut QueryBuilder<Sqlite>, kind: FindingKind, needle: &str) {
    let mut columns = vec!["title", "rule", "asset_label"];
    if kind == FindingKind::Vulnerability {
        columns.push(VULNERABILITY_TEXT);
    }
    push_like_columns(builder, &columns, needle);
}

/// ` AND (` any of `columns`, lowercased, contains `needle` (already lowercased) `)`: the
/// LIKE conditions [`push_like_text`] and the search keys' (see
/// [`console::push_matches`]) share.
fn push_like_columns(builder: &mut QueryBuilder<Sqlite>, columns: &[&str], needle: &str) {
    let pattern = format!("%{}%", escape_like(needle));
    builder.push(" AND (");
    for (index, column) in columns.iter().enumerate() {
        if index > 0 {
            builder.push(" OR ");
        }
        builder
            .push(format_args!("LOWER({column}) LIKE "))
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\'");
    }
    builder.push(")");
}

/// Most trigrams of a term that a look-up names: any subset finds a superset of the rows
/// containing the term (re-checked with LIKE), and each one more costs a look-up.
const MAX_TRIGRAMS: usize = 16;

/// The distinct trigrams of `text`, in order, at most [`MAX_TRIGRAMS`].
fn term_trigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut trigrams: Vec<String> = Vec::new();
    for window in chars.windows(TRIGRAM_CHARS) {
        let trigram: String = window.iter().collect();
        if !trigrams.contains(&trigram) {
            trigrams.push(trigram);
        }
        if trigrams.len() == MAX_TRIGRAMS {
            break;
        }
    }
    trigrams
}

/// The distinct trigrams of `text` that start at every [`TRIGRAM_CHARS`]th character, and the
/// last one: together they hold each of its characters, at most [`MAX_TRIGRAMS`]. The rows
/// holding all of them are a superset of the rows holding `text` (re-checked with LIKE), and
/// for a common term nearly the same rows as all its trigrams find: the overlapping trigrams
/// between them add little narrowing, and each one named costs a read of its entry list (for
/// `c2 server` in a million alerts, 3 trigrams of 125,000-250,000 findings each in 33-59 ms
/// against 92-147 ms for all 7, finding the same 125,000 rows).
fn covering_trigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let Some(last) = chars.len().checked_sub(TRIGRAM_CHARS) else {
        return Vec::new();
    };
    let starts = (0..=last)
        .step_by(TRIGRAM_CHARS)
        .chain((last % TRIGRAM_CHARS != 0).then_some(last));
    let mut trigrams: Vec<String> = Vec::new();
    for start in starts {
        let trigram: String = chars[start..start + TRIGRAM_CHARS].iter().collect();
        if !trigrams.contains(&trigram) {
            trigrams.push(trigram);
        }
        if trigrams.len() == MAX_TRIGRAMS {
            break;
        }
    }
    trigrams
}

/// An FTS5 query of the trigram index, which keeps no positions (migration 0051) and so
/// matches no phrases: the rows that hold every one of `trigrams`, joined by AND, each a
/// string (inside double quotes every character is literal, operators such as AND, NEAR, `*`
/// and `^` included, and a quote is written twice).
fn fts_all(trigrams: &[String]) -> String {
    trigrams
        .iter()
        .map(|trigram| format!("\"{}\"", trigram.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// Appends keyset pagination on (`column`, id) and the ORDER BY and LIMIT clauses.
fn push_keyset(
    builder: &mut QueryBuilder<Sqlite>,
    column: &str,
    order: SortOrder,
    cursor: Option<&Cursor>,
    limit: u32,
) {
    let (comparison, direction) = match order {
        SortOrder::Desc => ("<", "DESC"),
        SortOrder::Asc => (">", "ASC"),
    };
    if let Some(cursor) = cursor {
        builder
            .push(format_args!(" AND ({column} {comparison} "))
            .push_bind(cursor.value)
            .push(format_args!(" OR ({column} = "))
            .push_bind(cursor.value)
            .push(format_args!(" AND id {comparison} "))
            .push_bind(&cursor.id)
            .push("))");
    }
    builder.push(format_args!(
        " ORDER BY {column} {direction}, id {direction} LIMIT "
    ));
    builder.push_bind(i64::from(limit) + 1);
}

/// Turns `limit + 1` fetched rows into a page with a cursor when there are more.
fn into_page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page {
        items,
        next_cursor,
        searched: None,
    }
}

fn finding_sort_value(finding: &Finding, key: crate::SortKey) -> i64 {
    match key {
        crate::SortKey::LastSeen => finding.last_seen.millis(),
        crate::SortKey::FirstSeen => finding.first_seen.millis(),
        crate::SortKey::Severity => finding.severity.rank(),
        crate::SortKey::Count => i64::try_from(finding.count).unwrap_or(i64::MAX),
    }
}

fn token_from_row(row: &SqliteRow) -> Result<TokenRecord> {
    let role: &str = row.try_get("role")?;
    let agent_id: Option<&str> = row.try_get("agent_id")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::from_str(role).map_err(|error| corrupt("tokens", "role", error))?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: Timestamp(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
        agent_id: agent_id
            .map(|id| parse_uuid("tokens", "agent_id", id))
            .transpose()?,
    })
}

fn asset_from_row(row: &SqliteRow) -> Result<Asset> {
    let kind: &str = row.try_get("kind")?;
    Ok(Asset {
        id: parse_uuid("assets", "id", row.try_get("id")?)?,
        kind: from_json("assets", "kind", &format!("\"{kind}\""))?,
        cluster: row.try_get("cluster")?,
        name: row.try_get("name")?,
        labels: from_json("assets", "labels", row.try_get("labels")?)?,
        attributes: from_json("assets", "attributes", row.try_get("attributes")?)?,
        first_seen: Timestamp(row.try_get("first_seen")?),
        last_seen: Timestamp(row.try_get("last_seen")?),
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditEntry> {
    let role: &str = row.try_get("role")?;
    Ok(AuditEntry {
        id: parse_uuid("audit_log", "id", row.try_get("id")?)?,
        at: Timestamp(row.try_get("at")?),
        actor: row.try_get("actor")?,
        role: Role::from_str(role).map_err(|error| corrupt("audit_log", "role", error))?,
        action: row.try_get("action")?,
        target_kind: row.try_get("target_kind")?,
        target_id: row.try_get("target_id")?,
        reason: row.try_get("reason")?,
        details: from_json("audit_log", "details", row.try_get("details")?)?,
    })
}

impl SqliteStore {
    /// Runs `statement` (one `$1` parameter, the id) and, if it changed a row, records
    /// `audit` in the same transaction. Returns whether a row changed.
    async fn execute_audited(
        &self,
        statement: &'static str,
        id: &str,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut transaction = self.writer.begin().await?;
        let changed = sqlx::query(statement)
            .bind(id)
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            > 0;
        if changed {
            insert_audit(&mut transaction, audit).await?;
        }
        transaction.commit().await?;
        Ok(changed)
    }
}

/// Rows per multi-row INSERT: well under SQLite's limit of 32,766 bound parameters.
const INSERT_CHUNK: usize = 500;

/// A stored finding that a batch updates: the deltas to apply to its row.
struct Update {
    id: String,
    count: i64,
    first_seen: i64,
    last_seen: i64,
    severity: i64,
    /// For kinds that take the latest report (see [`takes_latest`]): its title, body and
    /// whether it knows a fix.
    latest: Option<(String, String, bool)>,
    /// Whether the row keeps its first report's title and asset (see
    /// [`keeps_first_identity`]): the latest body then goes in with the stored asset.
    keeps_identity: bool,
}

/// The key of a `finding_counts` row (see migration 0011): what the console's counters and
/// chart group by, with the hours of first and last sight.
#[derive(PartialEq, Eq, Hash)]
struct CounterRow<'a> {
    kind: &'static str,
    cluster: &'a str,
    status: &'static str,
    severity: i64,
    category: String,
    namespace: &'a str,
    first_hour: i64,
    last_hour: i64,
}

impl<'a> CounterRow<'a> {
    const HOUR_MS: i64 = 3_600_000;

    fn of(new: &'a NewFinding<'_>) -> CounterRow<'a> {
        let report = new.report;
        CounterRow {
            kind: report.details.kind().as_str(),
            cluster: &report.asset.cluster,
            status: new.status.as_str(),
            severity: new.severity.rank(),
            category: report.details.category(),
            namespace: report.asset.namespace.as_deref().unwrap_or(""),
            first_hour: new.first_seen.millis() / Self::HOUR_MS,
            last_hour: new.last_seen.millis() / Self::HOUR_MS,
        }
    }
}

/// What ingest works out for a report before it takes the writer connection.
struct Prepared {
    report_id: String,
    /// The whitelist rule that suppresses the report; the fields below are then left empty.
    whitelisted: Option<Uuid>,
    /// `report.asset.asset_id()`, worked out once: a name-based UUID costs a SHA-1.
    asset_id: Uuid,
    /// The finding the report makes if it is new, built only when a whitelist rule or an
    /// exception needs it to match against.
    candidate: Option<Finding>,
    key: (FindingKind, String),
    /// The `body` column of `candidate`; left out for an event that repeats one earlier in
    /// the batch, which almost always aggregates into it (see [`finding_body`]).
    body: Option<String>,
}

impl Prepared {
    /// `repeats` holds the keys of the batch's earlier reports.
    fn new(
        report: &FindingReport,
        policy: &HandlingPolicy,
        repeats: &mut HashSet<(FindingKind, String)>,
    ) -> Prepared {
        let kind = report.details.kind();
        let report_id = report.id.to_string();
        let asset_id = report.asset.asset_id();
        let candidate = (!policy.whitelist.is_empty()).then(|| new_candidate(report, asset_id));
        let whitelisted = candidate.as_ref().and_then(|candidate| {
            policy
                .whitelist
                .iter()
                .find(|(_, matcher)| matcher.matches(candidate))
                .map(|(rule_id, _)| *rule_id)
        });
        if whitelisted.is_some() {
            return Prepared {
                report_id,
                whitelisted,
                asset_id,
                candidate: None,
                key: (kind, String::new()),
                body: None,
            };
        }
        let key = (kind, report.dedupe_key_of_asset(asset_id));
        // States take every report's body; an event's repeat needs neither.
        let repeat = !takes_latest(kind) && !repeats.insert(key.clone());
        let body = (!repeat).then(|| finding_body(report));
        let candidate = if !repeat && !policy.exceptions.is_empty() {
            Some(candidate.unwrap_or_else(|| new_candidate(report, asset_id)))
        } else {
            candidate
        };
        Prepared {
            report_id,
            whitelisted,
            asset_id,
            candidate,
            key,
            body,
        }
    }
}

/// The finding `report` makes if it is new, open unless an exception covers it, for whitelist
/// rules and exceptions to match against; `asset_id` is `report.asset.asset_id()`.
fn new_candidate(report: &FindingReport, asset_id: Uuid) -> Finding {
    Finding {
        id: Uuid::now_v7(),
        severity: report.severity,
        status: Status::Open,
        rule: report.rule.clone(),
        title: report.title.clone(),
        asset_id,
        asset: report.asset.clone(),
        first_seen: report.observed_at,
        last_seen: report.observed_at,
        count: 1,
        demo: report.demo,
        details: report.details.clone(),
    }
}

/// Whether repeats of `kind` replace the finding's report: states (vulnerabilities, baseline
/// risks) take the latest one, and so do firewall alerts' details (a flow's finding of the
/// day shows the latest rule that decided it and its trace, whichever rule decided before;
/// its identity stays the first report's, see [`keeps_first_identity`]); runtime alerts keep
/// the first, whose raw event is what was captured.
fn takes_latest(kind: FindingKind) -> bool {
    kind.aggregation_window_ms().is_none()
}

/// Whether a finding of `kind` keeps the identity of its first report while it takes the
/// latest one's details: a firewall alert's key is its flow (and day), so reports of one
/// finding come from either end's pod and from any rule. Its `rule`, `title` and asset
/// columns (and the body's asset) stay the first report's, whichever pod and rule reported
/// first; the body's details (`rule_id`, trace, mode) are the latest report's. Every other
/// kind's key holds its asset and rule, so its repeats share them anyway.
fn keeps_first_identity(kind: FindingKind) -> bool {
    kind == FindingKind::FirewallAlert
}

/// The `body` column of the finding `report` makes.
fn finding_body(report: &FindingReport) -> String {
    to_json(&FindingBody {
        asset: Cow::Borrowed(&report.asset),
        details: Cow::Borrowed(&report.details),
    })
}

/// The `dedupe_prefix` column of a finding with dedupe key `key` (migration 0060): the value of
/// its first 15 hex digits (60 bits, so never negative), or 0 for a key that does not start
/// with 15 lowercase hex digits, exactly as the migration's backfill computes it.
fn dedupe_prefix(key: &str) -> i64 {
    const DIGITS: usize = 15;
    let Some(digits) = key.get(..DIGITS) else {
        return 0;
    };
    if !digits
        .bytes()
        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    {
        return 0;
    }
    i64::from_str_radix(digits, 16).unwrap_or(0)
}

/// A finding a batch creates: its row's columns are `report`'s, except for what the batch's
/// reports of the same finding add up to. Borrowed rather than built into a [`Finding`], whose
/// clone of every report cost a tenth of ingest.
struct NewFinding<'r> {
    /// The batch's first report of the finding for events and firewall alerts (whose body
    /// takes the latest report's details, see [`keeps_first_identity`]), its latest for
    /// states (see [`takes_latest`]).
    report: &'r FindingReport,
    id: Uuid,
    asset_id: Uuid,
    status: Status,
    severity: Severity,
    first_seen: Timestamp,
    last_seen: Timestamp,
    count: u64,
    dedupe_key: String,
    /// The `body` column: `report`'s (see [`finding_body`]).
    body: String,
    /// `report.asset.label()`: the row's and the search row's.
    asset_label: String,
}

/// Where the latest occurrence of a dedupe key went in this batch.
enum Target {
    New(usize),
    Existing(usize),
}

impl SqliteStore {
    /// Stores the batch's report ids in `ingested_reports`, each with its observation time, and
    /// says for each whether it was stored now: `false` for an id stored before, by an earlier
    /// batch or by an earlier report of this one (a duplicate). `INSERT OR IGNORE … RETURNING`
    /// returns only the ids it stores, so one statement per 500 ids finds the duplicates and
    /// stores the rest, where a look-up of every id and an insert of the new ones after
    /// aggregation took two (migration 0065). `OR IGNORE`, not an upsert: like `OR FAIL` (see
    /// [`bulk::Connection::insert_rows`]), it needs no statement journal.
    async fn record_report_ids(
        connection: &mut SqliteConnection,
        ids: &[(&str, i64)],
    ) -> Result<Vec<bool>> {
        let mut stored: HashSet<String> = HashSet::with_capacity(ids.len());
        {
            let mut handle = connection.lock_handle().await?;
            let db = bulk::Connection::new(&mut handle);
            bulk::blocking(|| {
                db.insert_rows_returning(
                    "INSERT OR IGNORE INTO ingested_reports (report_id, received_at)",
                    2,
                    ids,
                    |(report_id, at), values| {
                        values.extend([Value::Text(report_id), Value::Integer(*at)]);
                    },
                    "RETURNING report_id",
                    &mut |id: &str| {
                        stored.insert(id.to_owned());
                    },
                )
            })?;
        }
        // A second report with the same id in the batch was ignored, as the first was stored.
        Ok(ids.iter().map(|(id, _)| stored.remove(*id)).collect())
    }

    /// Inserts `findings` with their text index entries, search rows and counters. Returns
    /// what the batch stored beside them and every asset's key, for [`known_rows::KnownRows::
    /// learn`] once the transaction has committed.
    async fn insert_findings<'f>(
        connection: &mut SqliteConnection,
        findings: &'f [NewFinding<'_>],
        known: &known_rows::KnownRows,
    ) -> Result<(known_rows::BatchRows<'f>, HashMap<Uuid, i64>)> {
        let batch = known.batch(
            findings.iter().map(|new| known_rows::SearchAsset {
                kind: new.report.details.kind(),
                cluster: &new.report.asset.cluster,
                asset_id: new.asset_id,
                label: &new.asset_label,
            }),
            findings.iter().map(|new| known_rows::SearchRule {
                kind: new.report.details.kind(),
                cluster: &new.report.asset.cluster,
                rule: &new.report.rule,
            }),
        );
        if findings.is_empty() {
            return Ok((batch, HashMap::new()));
        }
        let asset_keys = Self::asset_keys(connection, &batch).await?;
        let rows: Vec<(&NewFinding<'_>, i64)> = findings
            .iter()
            .map(|new| {
                let key = asset_keys.get(&new.asset_id).copied().ok_or_else(|| {
                    corrupt(
                        "finding_assets",
                        "key",
                        format!("none for {}", new.asset_id),
                    )
                })?;
                Ok((new, key))
            })
            .collect::<Result<_>>()?;
        // New rows take rowids above every existing one (SQLite's default rowid choice while
        // the largest is below 2^63 - 1), which the trigram index's statement below relies on.
        let last_rowid: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM findings")
            .fetch_one(&mut *connection)
            .await?;
        let generation = generation(last_rowid);
        // The lock is released before the next await: the handle may not cross one.
        {
            let mut handle = connection.lock_handle().await?;
            let db = bulk::Connection::new(&mut handle);
            bulk::blocking(|| {
                db.insert_rows(
                    "INSERT OR FAIL INTO findings (id, kind, cluster, dedupe_key, severity, \
                     status, category, rule, title, namespace, asset_id, asset_label, first_seen, \
                     last_seen, count, demo, body, fix_known, package, dedupe_prefix, asset_key, \
                     generation)",
                    22,
                    &rows,
                    |(new, asset_key), values| {
                        let report = new.report;
                        values.extend([
                            Value::OwnedText(new.id.to_string()),
                            Value::Text(report.details.kind().as_str()),
                            Value::Text(&report.asset.cluster),
                            Value::Text(&new.dedupe_key),
                            Value::Integer(new.severity.rank()),
                            Value::Text(new.status.as_str()),
                            Value::OwnedText(report.details.category()),
                            Value::Text(&report.rule),
                            Value::Text(&report.title),
                            report.asset.namespace.as_deref().into(),
                            Value::OwnedText(new.asset_id.to_string()),
                            Value::Text(&new.asset_label),
                            Value::Integer(new.first_seen.millis()),
                            Value::Integer(new.last_seen.millis()),
                            Value::Integer(i64::try_from(new.count).unwrap_or(i64::MAX)),
                            Value::Integer(i64::from(report.demo)),
                            Value::Text(&new.body),
                            Value::Integer(i64::from(report.details.fix_known())),
                            Value::Text(report.details.package()),
                            Value::Integer(dedupe_prefix(&new.dedupe_key)),
                            Value::Integer(*asset_key),
                            Value::Integer(generation),
                        ]);
                    },
                )
            })?;
        }
        // One statement for the whole batch: see migration 0052. Only the per-finding text:
        // rules and asset labels repeat, and are added once each as distinct texts below
        // (migration 0057).
        let mut index = QueryBuilder::<Sqlite>::new(
            "INSERT INTO finding_text (rowid, title, extra) \
             SELECT rowid, title, CASE WHEN kind = 'vulnerability' THEN ",
        );
        index
            .push(VULNERABILITY_TEXT)
            .push(" END FROM findings WHERE rowid > ")
            .push_bind(last_rowid);
        index.build().execute(&mut *connection).await?;
        let kinds = findings.iter().map(|new| new.report.details.kind());
        console::add_search_keys(connection, kinds, last_rowid).await?;
        batch.add_search_rows(connection).await?;
        Self::count_inserted(connection, findings).await?;
        Ok((batch, asset_keys))
    }

    /// The `asset_key` (migration 0062) of every asset of `batch`: those known already, and
    /// for the others a look-up, adding those no stored finding named before to
    /// `finding_assets`.
    async fn asset_keys(
        connection: &mut SqliteConnection,
        batch: &known_rows::BatchRows<'_>,
    ) -> Result<HashMap<Uuid, i64>> {
        let mut keys = batch.asset_keys.clone();
        if batch.unknown_assets.is_empty() {
            return Ok(keys);
        }
        let assets = &batch.unknown_assets;
        let ids: Vec<String> = assets.iter().map(Uuid::to_string).collect();
        let stored: Vec<(String, i64)> = sqlx::query_as(
            "SELECT asset_id, key FROM finding_assets \
             WHERE asset_id IN (SELECT value FROM json_each($1))",
        )
        .bind(to_json(&ids))
        .fetch_all(&mut *connection)
        .await?;
        for (id, key) in stored {
            keys.insert(parse_uuid("finding_assets", "asset_id", &id)?, key);
        }
        let new: Vec<&String> = assets
            .iter()
            .zip(&ids)
            .filter(|(asset, _)| !keys.contains_key(*asset))
            .map(|(_, id)| id)
            .collect();
        if !new.is_empty() {
            let added: Vec<(String, i64)> = sqlx::query_as(
                "INSERT INTO finding_assets (asset_id) SELECT value FROM json_each($1) \
                 RETURNING asset_id, key",
            )
            .bind(to_json(&new))
            .fetch_all(&mut *connection)
            .await?;
            for (id, key) in added {
                keys.insert(parse_uuid("finding_assets", "asset_id", &id)?, key);
            }
        }
        Ok(keys)
    }

    /// Adds inserted findings to `finding_counts`: one upsert per counter row a batch touches
    /// (tens), where a trigger on insert cost an upsert per finding, more than any index.
    async fn count_inserted(
        connection: &mut SqliteConnection,
        findings: &[NewFinding<'_>],
    ) -> Result<()> {
        let mut counts: HashMap<CounterRow<'_>, i64> = HashMap::new();
        for new in findings {
            *counts.entry(CounterRow::of(new)).or_default() += 1;
        }
        let counts: Vec<_> = counts.into_iter().collect();
        for chunk in counts.chunks(INSERT_CHUNK) {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "INSERT INTO finding_counts (kind, cluster, status, severity, category, namespace, \
                 first_hour, last_hour, n) ",
            );
            builder.push_values(chunk, |mut row, (counter, n)| {
                row.push_bind(counter.kind)
                    .push_bind(counter.cluster)
                    .push_bind(counter.status)
                    .push_bind(counter.severity)
                    .push_bind(counter.category.as_str())
                    .push_bind(counter.namespace)
                    .push_bind(counter.first_hour)
                    .push_bind(counter.last_hour)
                    .push_bind(*n);
            });
            builder.push(
                " ON CONFLICT (kind, cluster, status, severity, category, namespace, first_hour, \
                 last_hour) DO UPDATE SET n = n + excluded.n",
            );
            builder.build().execute(&mut *connection).await?;
        }
        Ok(())
    }

    /// Applies the deltas in one statement per chunk: a statement per finding costs a round
    /// trip to SQLite's worker thread each, which dominated ingest of repeated alerts.
    async fn apply_updates(connection: &mut SqliteConnection, updates: &[Update]) -> Result<()> {
        let changed: Vec<&Update> = updates.iter().filter(|update| update.count > 0).collect();
        for chunk in changed.chunks(INSERT_CHUNK) {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "UPDATE findings SET count = count + delta.column2, \
                 last_seen = MAX(last_seen, delta.column3), \
                 first_seen = MIN(first_seen, delta.column4), \
                 severity = MAX(severity, delta.column5), \
                 title = CASE WHEN delta.column9 THEN title ELSE COALESCE(delta.column6, title) END, \
                 body = CASE WHEN delta.column7 IS NULL THEN body \
                 WHEN delta.column9 THEN json_set(delta.column7, '$.asset', json(body -> '$.asset')) \
                 ELSE delta.column7 END, \
                 fix_known = COALESCE(delta.column8, fix_known) \
                 FROM (",
            );
            builder.push_values(chunk, |mut row, update| {
                let (title, body, fix_known) = match &update.latest {
                    Some((title, body, fix_known)) => (
                        Some(title.clone()),
                        Some(body.clone()),
                        Some(i64::from(*fix_known)),
                    ),
                    None => (None, None, None),
                };
                row.push_bind(update.id.clone())
                    .push_bind(update.count)
                    .push_bind(update.last_seen)
                    .push_bind(update.first_seen)
                    .push_bind(update.severity)
                    .push_bind(title)
                    .push_bind(body)
                    .push_bind(fix_known)
                    .push_bind(update.keeps_identity);
            });
            builder.push(") AS delta WHERE findings.id = delta.column1");
            builder.build().execute(&mut *connection).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(
        &self,
        reports: &[FindingReport],
        policy: &HandlingPolicy,
    ) -> Result<IngestOutcome> {
        let mut outcome = IngestOutcome::default();
        // Everything that needs no database is worked out first: the one writer connection is
        // held only for the statements, so the next batch prepares while this one is written.
        let prepared: Vec<Prepared> = reports
            .iter()
            .scan(HashSet::new(), |repeats, report| {
                Some(Prepared::new(report, policy, repeats))
            })
            .collect();
        // The connection is taken before the transaction begins and given back only after the
        // checkpointer has heard of its commit: a batch waiting for it then waits for the
        // checkpoint too when the WAL has passed its limit (see `checkpointer`).
        let mut writer = self.writer.acquire().await?;
        self.checkpointer.before_write().await;
        let mut transaction = writer.begin().await?;
        let stored_now = {
            let ids: Vec<(&str, i64)> = reports
                .iter()
                .zip(&prepared)
                .map(|(report, prepared)| {
                    (prepared.report_id.as_str(), report.observed_at.millis())
                })
                .collect();
            Self::record_report_ids(&mut transaction, &ids).await?
        };

        // First pass: drop duplicates, suppress whitelisted reports.
        let mut fresh = Vec::with_capacity(reports.len());
        let mut keys: Vec<(FindingKind, String)> = Vec::with_capacity(reports.len());
        let mut whitelist_hits: HashMap<Uuid, i64> = HashMap::new();
        for ((report, prepared), stored_now) in reports.iter().zip(prepared).zip(stored_now) {
            if !stored_now {
                outcome.duplicates += 1;
                continue;
            }
            if let Some(rule_id) = prepared.whitelisted {
                *whitelist_hits.entry(rule_id).or_default() += 1;
                outcome.suppressed += 1;
                continue;
            }
            keys.push(prepared.key);
            fresh.push((report, prepared.asset_id, prepared.candidate, prepared.body));
        }
        let stored = dedupe_lookup::latest_absorbing(
            &mut transaction,
            keys.iter()
                .zip(fresh.iter().map(|(report, ..)| report.observed_at.millis())),
        )
        .await?;

        // Second pass, in report order: aggregate into a finding created earlier in this batch,
        // into a stored one, or create a new one.
        let mut new_findings: Vec<NewFinding> = Vec::new();
        let mut updates: Vec<Update> = Vec::new();
        let mut latest: HashMap<(FindingKind, String), Target> = HashMap::new();
        for ((report, asset_id, candidate, body), key) in fresh.into_iter().zip(keys) {
            let kind = key.0;
            let observed = report.observed_at.millis();
            let within = |last_seen: i64| {
                kind.aggregation_window_ms()
                    .is_none_or(|window| last_seen >= observed - window)
            };
            let takes_latest = takes_latest(kind);
            let target = match latest.get(&key) {
                Some(Target::New(index)) if within(new_findings[*index].last_seen.millis()) => {
                    Some(Target::New(*index))
                }
                Some(Target::Existing(index)) if within(updates[*index].last_seen) => {
                    Some(Target::Existing(*index))
                }
                Some(_) => None,
                // Only a key's first report reads `stored` (which `dedupe_lookup` relies on).
                None => stored
                    .get(&key)
                    .filter(|(_, last_seen)| within(*last_seen))
                    .map(|(id, last_seen)| {
                        updates.push(Update {
                            id: id.clone(),
                            count: 0,
                            first_seen: observed,
                            last_seen: *last_seen,
                            severity: 0,
                            latest: None,
                            keeps_identity: keeps_first_identity(kind),
                        });
                        Target::Existing(updates.len() - 1)
                    }),
            };
            match target {
                Some(Target::New(index)) => {
                    let new = &mut new_findings[index];
                    new.count += report.occurrences();
                    new.first_seen = new.first_seen.min(report.observed_at);
                    new.last_seen = new.last_seen.max(report.observed_at);
                    new.severity = new.severity.max(report.severity);
                    if keeps_first_identity(kind) {
                        new.body = to_json(&FindingBody {
                            asset: Cow::Borrowed(&new.report.asset),
                            details: Cow::Borrowed(&report.details),
                        });
                    } else if takes_latest {
                        new.report = report;
                        new.body = body.unwrap_or_else(|| finding_body(report));
                        new.asset_label = report.asset.label();
                    }
                    outcome.aggregated += 1;
                    latest.insert(key, Target::New(index));
                }
                Some(Target::Existing(index)) => {
                    let update = &mut updates[index];
                    update.count = update
                        .count
                        .saturating_add(i64::try_from(report.occurrences()).unwrap_or(i64::MAX));
                    update.first_seen = update.first_seen.min(observed);
                    update.last_seen = update.last_seen.max(observed);
                    update.severity = update.severity.max(report.severity.rank());
                    if takes_latest {
                        let body = body.unwrap_or_else(|| finding_body(report));
                        update.latest =
                            Some((report.title.clone(), body, report.details.fix_known()));
                    }
                    outcome.aggregated += 1;
                    latest.insert(key, Target::Existing(index));
                }
                None => {
                    // A repeat whose finding fell out of the window comes without a candidate.
                    let candidate = candidate.or_else(|| {
                        (!policy.exceptions.is_empty()).then(|| new_candidate(report, asset_id))
                    });
                    let excepted = candidate.as_ref().is_some_and(|candidate| {
                        policy.exceptions.iter().any(|exception| {
                            exception.exception.covers(candidate, report.observed_at)
                        })
                    });
                    let status = if excepted {
                        Status::Excepted
                    } else {
                        Status::Open
                    };
                    let id = candidate.map_or_else(Uuid::now_v7, |candidate| candidate.id);
                    outcome.created += 1;
                    outcome.created_ids.push((kind, id));
                    new_findings.push(NewFinding {
                        report,
                        id,
                        asset_id,
                        status,
                        severity: report.severity,
                        first_seen: report.observed_at,
                        last_seen: report.observed_at,
                        count: report.occurrences(),
                        dedupe_key: key.1.clone(),
                        body: body.unwrap_or_else(|| finding_body(report)),
                        asset_label: report.asset.label(),
                    });
                    latest.insert(key, Target::New(new_findings.len() - 1));
                }
            }
        }

        let (batch_rows, asset_keys) =
            Self::insert_findings(&mut transaction, &new_findings, &self.known_rows).await?;
        Self::apply_updates(&mut transaction, &updates).await?;
        for (rule_id, hits) in whitelist_hits {
            sqlx::query("UPDATE whitelist_rules SET hits = hits + $1 WHERE id = $2")
                .bind(hits)
                .bind(rule_id.to_string())
                .execute(&mut *transaction)
                .await?;
        }
        // Batches of alerts (no summarised kind) skip it: their updates list no groups.
        let grouped: Vec<_> = reports
            .iter()
            .map(|report| {
                (
                    report.details.kind(),
                    report.asset.cluster.as_str(),
                    report.rule.as_str(),
                )
            })
            .filter(|(kind, ..)| group_summary::summarised(*kind))
            .collect();
        if !grouped.is_empty() {
            group_summary::refresh(&mut transaction, grouped).await?;
        }
        transaction.commit().await?;
        self.checkpointer.committed();
        drop(writer);
        self.known_rows.learn(batch_rows, &asset_keys);
        Ok(outcome)
    }

    async fn list_findings(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Page<Finding>> {
        let limit = page_size(query.limit);
        // What planning reads (the counters, the trigram index) and the findings are the same
        // snapshot.
        let mut reader = console::PageReader::open(&self.reader, query).await?;
        let text = self.text_search(&mut reader, kind, query, true).await?;
        let select = QueryBuilder::<Sqlite>::new("SELECT * FROM findings");
        let Some(mut builder) =
            Self::page_statement(&mut reader, kind, query, &text, select).await?
        else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
                searched: None,
            });
        };
        let rows = builder.build().fetch_all(&mut *reader).await?;
        let findings = rows
            .iter()
            .map(finding_from_row)
            .collect::<Result<Vec<_>>>()?;
        let mut page = into_page(findings, limit, |finding| Cursor {
            value: finding_sort_value(finding, query.sort),
            text: String::new(),
            id: finding.id.to_string(),
        });
        if matches!(text, TextSearch::Window { .. }) {
            Self::mark_search_window(&mut reader, kind, query, &mut page).await?;
        }
        reader.finish().await?;
        Ok(page)
    }

    async fn count_by_severity(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<SeverityCounts> {
        // A text search is planned first: a term every search key holds counts as no term.
        let (connection, query, text) = match query.text {
            Some(_) => {
                let mut connection = self.reader.acquire().await?;
                let (query, text) = self.aggregate_search(&mut connection, kind, query).await?;
                (Some(connection), query, text)
            }
            None => (None, Cow::Borrowed(query), TextSearch::Scan),
        };
        let query = query.as_ref();
        if let Some(by_rank) = self.counted_by_severity(kind, query).await? {
            return Ok(SeverityCounts {
                by_rank,
                counted_since: None,
            });
        }
        let mut connection = match connection {
            Some(connection) => connection,
            None => self.reader.acquire().await?,
        };
        if console::newest_matches_only(&text) {
            let (by_rank, counted_since) = self
                .newest_matches(&mut connection, kind, query, &text)
                .await?
                .by_severity();
            return Ok(SeverityCounts {
                by_rank,
                counted_since,
            });
        }
        let mut builder = QueryBuilder::<Sqlite>::new("");
        let read = console::MatchesRead::default();
        console::push_matches(&mut builder, kind, query, &text, read, "severity", |_| {});
        builder.push("SELECT severity, COUNT(*) AS n FROM matches GROUP BY severity");
        let rows = builder.build().fetch_all(&mut *connection).await?;
        let mut by_rank = [0; 5];
        console::add_by_severity(&mut by_rank, &rows)?;
        let counted_since = if matches!(text, TextSearch::Window { .. }) {
            Self::window_end(&mut connection, kind, query, None)
                .await?
                .map(|end| Timestamp(end.value))
        } else {
            None
        };
        Ok(SeverityCounts {
            by_rank,
            counted_since,
        })
    }

    async fn get_finding(&self, kind: FindingKind, id: Uuid) -> Result<Option<Finding>> {
        sqlx::query("SELECT * FROM findings WHERE id = $1 AND kind = $2")
            .bind(id.to_string())
            .bind(kind.as_str())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(finding_from_row)
            .transpose()
    }

    async fn set_status(
        &self,
        kind: FindingKind,
        selection: &Selection,
        from: &[Status],
        to: Status,
        audit: &AuditEntry,
    ) -> Result<u64> {
        let mut transaction = self.writer.begin().await?;
        let mut changed = 0;
        let apply = |builder: &mut QueryBuilder<Sqlite>| {
            builder.push(" AND kind = ").push_bind(kind.as_str());
            push_in(builder, "status", from.iter().map(|status| status.as_str()));
        };
        match selection {
            Selection::Ids(ids) => {
                for chunk in ids.chunks(UPDATE_CHUNK) {
                    let mut builder = QueryBuilder::<Sqlite>::new("UPDATE findings SET status = ");
                    builder.push_bind(to.as_str()).push(" WHERE id IN (");
                    let mut separated = builder.separated(", ");
                    for id in chunk {
                        separated.push_bind(id.to_string());
                    }
                    builder.push(")");
                    apply(&mut builder);
                    changed += builder
                        .build()
                        .execute(&mut *transaction)
                        .await?
                        .rows_affected();
                }
            }
            Selection::Similar { rule, asset_id } => {
                let mut builder = QueryBuilder::<Sqlite>::new("UPDATE findings");
                if asset_id.is_some() {
                    builder.push(BY_ASSET_INDEX);
                }
                builder
                    .push(" SET status = ")
                    .push_bind(to.as_str())
                    .push(" WHERE rule = ")
                    .push_bind(rule);
                if let Some(asset_id) = asset_id {
                    push_asset_filter(&mut builder, *asset_id);
                }
                apply(&mut builder);
                changed += builder
                    .build()
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
            }
        }
        group_summary::refresh(&mut transaction, []).await?;
        // An action that changed nothing (the finding was not in a state it applies to) is
        // refused to the caller and leaves no trace.
        if changed > 0 {
            let mut audit = audit.clone();
            audit.details["changed"] = changed.into();
            insert_audit(&mut transaction, &audit).await?;
        }
        transaction.commit().await?;
        Ok(changed)
    }

    async fn notes(&self, finding_id: Uuid) -> Result<Vec<Note>> {
        let rows = sqlx::query("SELECT * FROM notes WHERE finding_id = $1 ORDER BY created_at, id")
            .bind(finding_id.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Note {
                    id: parse_uuid("notes", "id", row.try_get("id")?)?,
                    finding_id,
                    author: row.try_get("author")?,
                    created_at: Timestamp(row.try_get("created_at")?),
                    text: row.try_get("text")?,
                })
            })
            .collect()
    }

    async fn add_note(&self, note: &Note, audit: &AuditEntry) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query("INSERT INTO notes (id, finding_id, author, created_at, text) VALUES ($1, $2, $3, $4, $5)")
            .bind(note.id.to_string())
            .bind(note.finding_id.to_string())
            .bind(&note.author)
            .bind(note.created_at.millis())
            .bind(&note.text)
            .execute(&mut *transaction)
            .await?;
        insert_audit(&mut transaction, audit).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn count_whitelist_matches(&self, matcher: &WhitelistMatcher) -> Result<u64> {
        let rule = matcher.rule();
        let mut connection = self.reader.acquire().await?;
        let ids = scan_findings(
            &mut connection,
            rule.kind,
            &[Status::Open],
            scope_asset(rule),
            |finding| matcher.matches(finding),
        )
        .await?;
        Ok(ids.len() as u64)
    }

    async fn create_whitelist_rule(
        &self,
        rule: &WhitelistRule,
        matcher: &WhitelistMatcher,
        audit: &AuditEntry,
    ) -> Result<u64> {
        let mut transaction = self.writer.begin().await?;
        // Scan through the writer's transaction so that findings ingested concurrently are
        // either seen here or suppressed by the rule once it is committed.
        let ids = scan_findings(
            &mut transaction,
            rule.rule.kind,
            &[Status::Open],
            scope_asset(&rule.rule),
            |finding| matcher.matches(finding),
        )
        .await?;
        let closed = update_status(&mut transaction, &ids, Status::Whitelisted).await?;
        sqlx::query("INSERT INTO whitelist_rules (id, body, created_by, created_at, hits) VALUES ($1, $2, $3, $4, $5)")
            .bind(rule.id.to_string())
            .bind(to_json(&rule.rule))
            .bind(&rule.created_by)
            .bind(rule.created_at.millis())
            .bind(i64::try_from(closed).unwrap_or(i64::MAX))
            .execute(&mut *transaction)
            .await?;
        let mut audit = audit.clone();
        audit.details["closed"] = closed.into();
        insert_audit(&mut transaction, &audit).await?;
        transaction.commit().await?;
        Ok(closed)
    }

    async fn whitelist_rules(&self) -> Result<Vec<WhitelistRule>> {
        let rows = sqlx::query("SELECT * FROM whitelist_rules ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(WhitelistRule {
                    id: parse_uuid("whitelist_rules", "id", row.try_get("id")?)?,
                    rule: from_json::<NewWhitelistRule>(
                        "whitelist_rules",
                        "body",
                        row.try_get("body")?,
                    )?,
                    created_by: row.try_get("created_by")?,
                    created_at: Timestamp(row.try_get("created_at")?),
                    hits: u64::try_from(row.try_get::<i64, _>("hits")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn delete_whitelist_rule(&self, id: Uuid, audit: &AuditEntry) -> Result<bool> {
        let deleted = self
            .execute_audited(
                "DELETE FROM whitelist_rules WHERE id = $1",
                &id.to_string(),
                audit,
            )
            .await?;
        Ok(deleted)
    }

    async fn create_exception(&self, exception: &Exception, audit: &AuditEntry) -> Result<u64> {
        let now = Timestamp::now();
        let mut transaction = self.writer.begin().await?;
        let ids = scan_findings(
            &mut transaction,
            FindingKind::BaselineRisk,
            &[Status::Open],
            None,
            |finding| exception.exception.covers(finding, now),
        )
        .await?;
        let covered = update_status(&mut transaction, &ids, Status::Excepted).await?;
        sqlx::query(
            "INSERT INTO exceptions (id, body, created_by, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(exception.id.to_string())
        .bind(to_json(&exception.exception))
        .bind(&exception.created_by)
        .bind(exception.created_at.millis())
        .execute(&mut *transaction)
        .await?;
        let mut audit = audit.clone();
        audit.details["covered"] = covered.into();
        insert_audit(&mut transaction, &audit).await?;
        transaction.commit().await?;
        Ok(covered)
    }

    async fn exceptions(&self) -> Result<Vec<Exception>> {
        let rows = sqlx::query("SELECT * FROM exceptions ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Exception {
                    id: parse_uuid("exceptions", "id", row.try_get("id")?)?,
                    exception: from_json::<NewException>(
                        "exceptions",
                        "body",
                        row.try_get("body")?,
                    )?,
                    created_by: row.try_get("created_by")?,
                    created_at: Timestamp(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn delete_exception(&self, id: Uuid, audit: &AuditEntry) -> Result<bool> {
        let deleted = self
            .execute_audited(
                "DELETE FROM exceptions WHERE id = $1",
                &id.to_string(),
                audit,
            )
            .await?;
        if deleted {
            self.reopen_expired_exceptions(Timestamp::now()).await?;
        }
        Ok(deleted)
    }

    async fn reopen_expired_exceptions(&self, now: Timestamp) -> Result<u64> {
        let exceptions = self.exceptions().await?;
        let mut connection = self.reader.acquire().await?;
        let ids = scan_findings(
            &mut connection,
            FindingKind::BaselineRisk,
            &[Status::Excepted],
            None,
            |finding| {
                !exceptions
                    .iter()
                    .any(|exception| exception.exception.covers(finding, now))
            },
        )
        .await?;
        let mut transaction = self.writer.begin().await?;
        let reopened = update_status(&mut transaction, &ids, Status::Open).await?;
        transaction.commit().await?;
        Ok(reopened)
    }

    async fn upsert_asset(&self, asset: &Asset) -> Result<()> {
        sqlx::query(
            "INSERT INTO assets (id, kind, cluster, name, labels, attributes, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, labels = excluded.labels, \
             attributes = excluded.attributes, last_seen = excluded.last_seen",
        )
        .bind(asset.id.to_string())
        .bind(asset.kind.as_str())
        .bind(&asset.cluster)
        .bind(&asset.name)
        .bind(to_json(&asset.labels))
        .bind(to_json(&asset.attributes))
        .bind(asset.first_seen.millis())
        .bind(asset.last_seen.millis())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_assets(&self, query: &AssetQuery) -> Result<Page<Asset>> {
        let limit = page_size(query.limit);
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT * FROM assets WHERE 1 = 1");
        if let Some(cluster) = &query.cluster {
            builder.push(" AND cluster = ").push_bind(cluster);
        }
        if let Some(kind) = query.kind {
            builder.push(" AND kind = ").push_bind(kind.as_str());
        }
        push_keyset(
            &mut builder,
            "last_seen",
            SortOrder::Desc,
            query.cursor.as_ref(),
            limit,
        );
        let rows = builder.build().fetch_all(&self.reader).await?;
        let assets = rows
            .iter()
            .map(asset_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(into_page(assets, limit, |asset| Cursor {
            value: asset.last_seen.millis(),
            text: String::new(),
            id: asset.id.to_string(),
        }))
    }

    async fn get_asset(&self, id: Uuid) -> Result<Option<Asset>> {
        sqlx::query("SELECT * FROM assets WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(asset_from_row)
            .transpose()
    }

    async fn clusters(&self) -> Result<Vec<ClusterSummary>> {
        let rows = sqlx::query(
            "SELECT cluster, kind, SUM(CASE WHEN status = 'open' THEN n ELSE 0 END) AS open \
             FROM finding_counts GROUP BY cluster, kind \
             UNION ALL SELECT cluster, 'asset' AS kind, 0 AS open FROM assets WHERE kind = $1 \
             ORDER BY cluster",
        )
        .bind(AssetKind::Cluster.as_str())
        .fetch_all(&self.reader)
        .await?;
        let mut clusters: Vec<ClusterSummary> = Vec::new();
        for row in &rows {
            let name: String = row.try_get("cluster")?;
            if clusters.last().is_none_or(|last| last.name != name) {
                clusters.push(ClusterSummary {
                    name,
                    open_alerts: 0,
                    open_vulnerabilities: 0,
                    open_baseline_risks: 0,
                    open_firewall_alerts: 0,
                });
            }
            let summary = clusters.last_mut().expect("pushed above");
            let open = u64::try_from(row.try_get::<i64, _>("open")?).unwrap_or(0);
            match FindingKind::from_name(row.try_get("kind")?) {
                Some(FindingKind::Alert) => summary.open_alerts = open,
                Some(FindingKind::Vulnerability) => summary.open_vulnerabilities = open,
                Some(FindingKind::BaselineRisk) => summary.open_baseline_risks = open,
                Some(FindingKind::FirewallAlert) => summary.open_firewall_alerts = open,
                None => {}
            }
        }
        Ok(clusters)
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut connection = self.writer.acquire().await?;
        insert_audit(&mut connection, entry).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Page<AuditEntry>> {
        let limit = page_size(query.limit);
        let mut builder = QueryBuilder::<Sqlite>::new("SELECT * FROM audit_log WHERE 1 = 1");
        if let Some(actor) = &query.actor {
            builder.push(" AND actor = ").push_bind(actor);
        }
        if let Some(action) = &query.action {
            builder.push(" AND action = ").push_bind(action);
        }
        if let Some(target_id) = &query.target_id {
            builder.push(" AND target_id = ").push_bind(target_id);
        }
        push_keyset(
            &mut builder,
            "at",
            SortOrder::Desc,
            query.cursor.as_ref(),
            limit,
        );
        let rows = builder.build().fetch_all(&self.reader).await?;
        let entries = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(into_page(entries, limit, |entry| Cursor {
            value: entry.at.millis(),
            text: String::new(),
            id: entry.id.to_string(),
        }))
    }

    async fn insert_token(&self, token: &TokenRecord, audit: Option<&AuditEntry>) -> Result<()> {
        let mut transaction = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO tokens (id, name, role, secret_hash, created_at, created_by, revoked, agent_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(&token.secret_hash)
        .bind(token.created_at.millis())
        .bind(&token.created_by)
        .bind(i64::from(token.revoked))
        .bind(token.agent_id.map(|id| id.to_string()))
        .execute(&mut *transaction)
        .await?;
        if let Some(audit) = audit {
            insert_audit(&mut transaction, audit).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, audit: &AuditEntry) -> Result<bool> {
        self.execute_audited(
            "UPDATE tokens SET revoked = 1 WHERE id = $1 AND revoked = 0",
            id,
            audit,
        )
        .await
    }

    async fn upsert_agent(&self, agent: &AgentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (id, name, cluster, joined_at, last_seen, facts) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, cluster = excluded.cluster, \
             last_seen = excluded.last_seen, facts = excluded.facts",
        )
        .bind(agent.id.to_string())
        .bind(&agent.name)
        .bind(&agent.cluster)
        .bind(agent.joined_at.millis())
        .bind(agent.last_seen.millis())
        .bind(to_json(&agent.facts))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn agent(&self, id: Uuid) -> Result<Option<AgentRecord>> {
        sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(agent_from_row)
            .transpose()
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query("SELECT * FROM agents ORDER BY name, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(agent_from_row).collect()
    }

    async fn count_agent_losses(
        &self,
        agent_id: Uuid,
        report: &palisade_model::AgentLosses,
        now: Timestamp,
    ) -> Result<LossIncrease> {
        let id = agent_id.to_string();
        let mut transaction = self.writer.begin().await?;
        let Some(stored) =
            sqlx::query_scalar::<_, String>("SELECT losses FROM agents WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *transaction)
                .await?
        else {
            return Ok(LossIncrease::default());
        };
        let mut losses: NodeLosses = from_json("agents", "losses", &stored)?;
        let before = losses.clone();
        let increase = losses.count(report, now);
        if losses != before {
            sqlx::query("UPDATE agents SET losses = $1 WHERE id = $2")
                .bind(to_json(&losses))
                .bind(&id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(increase)
    }

    async fn finding_groups(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
    ) -> Result<Page<FindingGroup>> {
        self.groups(kind, query).await
    }

    async fn count_over_time(
        &self,
        kind: FindingKind,
        query: &FindingQuery,
        buckets: TimeBuckets,
    ) -> Result<Vec<u64>> {
        self.over_time(kind, query, buckets).await
    }

    async fn request_fix_verification(
        &self,
        request: &FixVerification,
        audit: &AuditEntry,
    ) -> Result<()> {
        self.insert_fix_verification(request, audit).await
    }

    async fn fix_verifications(&self, finding_id: Uuid) -> Result<Vec<FixVerification>> {
        self.verifications_of(finding_id).await
    }

    async fn firewall_rules(&self) -> Result<Vec<FirewallRule>> {
        self.all_firewall_rules().await
    }

    async fn firewall_rule(&self, id: Uuid) -> Result<Option<FirewallRule>> {
        self.one_firewall_rule(id).await
    }

    async fn put_firewall_rule(&self, rule: &FirewallRule, audit: &AuditEntry) -> Result<()> {
        self.upsert_firewall_rule(rule, audit).await
    }

    async fn delete_firewall_rule(&self, id: Uuid, audit: &AuditEntry) -> Result<bool> {
        self.remove_firewall_rule(id, audit).await
    }

    async fn create_task(&self, task: &AgentTask, audit: &AuditEntry) -> Result<()> {
        self.insert_task(task, audit).await
    }

    async fn claim_tasks(
        &self,
        claim: crate::TaskClaim,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<AgentTask>> {
        self.claim_pending_tasks(claim, now, limit).await
    }

    async fn extend_task_lease(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        attempt: u32,
        lease_millis: i64,
        now: Timestamp,
    ) -> Result<bool> {
        self.renew_task_lease(agent_id, task_id, attempt, lease_millis, now)
            .await
    }

    async fn finish_task(
        &self,
        agent_id: Uuid,
        task_id: Uuid,
        attempt: Option<u32>,
        result: &TaskResult,
        now: Timestamp,
    ) -> Result<Option<AgentTask>> {
        self.record_task_result(agent_id, task_id, attempt, result, now)
            .await
    }

    async fn task(&self, id: Uuid) -> Result<Option<AgentTask>> {
        self.one_task(id).await
    }

    async fn tasks(&self, agent_id: Uuid, limit: u32) -> Result<Vec<AgentTask>> {
        self.tasks_of(agent_id, limit).await
    }

    async fn replace_quarantine(
        &self,
        agent_id: Uuid,
        entries: &[QuarantineEntry],
        at: Timestamp,
    ) -> Result<()> {
        self.replace_agent_quarantine(agent_id, entries, at).await
    }

    async fn quarantine(&self, limit: u32) -> Result<Vec<QuarantinedFile>> {
        self.quarantined_files(limit).await
    }

    async fn quarantined_file(&self, id: Uuid) -> Result<Option<QuarantinedFile>> {
        self.one_quarantined_file(id).await
    }

    async fn complete_fix_verification(
        &self,
        id: Uuid,
        state: VerificationState,
        at: Timestamp,
    ) -> Result<bool> {
        self.finish_fix_verification(id, state, at).await
    }

    async fn resolve_absent_findings(
        &self,
        asset_id: Uuid,
        kind: FindingKind,
        present: &HashSet<String>,
        audit: &AuditEntry,
    ) -> Result<u64> {
        self.resolve_findings_absent_from(asset_id, kind, present, audit)
            .await
    }
}

fn agent_from_row(row: &SqliteRow) -> Result<AgentRecord> {
    Ok(AgentRecord {
        id: parse_uuid("agents", "id", row.try_get("id")?)?,
        name: row.try_get("name")?,
        cluster: row.try_get("cluster")?,
        joined_at: Timestamp(row.try_get("joined_at")?),
        last_seen: Timestamp(row.try_get("last_seen")?),
        facts: from_json("agents", "facts", row.try_get("facts")?)?,
        losses: from_json("agents", "losses", row.try_get("losses")?)?,
    })
}

fn scope_asset(rule: &NewWhitelistRule) -> Option<Uuid> {
    match rule.scope {
        palisade_model::WhitelistScope::Asset { asset_id } => Some(asset_id),
        palisade_model::WhitelistScope::AllAssets => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use palisade_model::{
        AffectedAsset, AlertDetails, Details, FindingKind, FindingReport, MatchOperator,
        NewWhitelistRule, ProcessInfo, Severity, Timestamp, VulnerabilityDetails, WhitelistScope,
    };
    use sqlx::{
        QueryBuilder, Sqlite,
        sqlite::{SqliteConnectOptions, SqlitePool},
    };
    use uuid::Uuid;

    use super::{
        GENERATION_SHIFT, SqliteStore, TextSearch, console, dedupe_lookup::bucket_sql,
        dedupe_prefix, finding_body, test_support::query_plan,
    };
    use crate::{FindingQuery, HandlingPolicy, Store, TimeBuckets};

    /// The writer syncs every commit (`PRAGMA synchronous` = FULL): an acknowledged batch
    /// must survive a power loss, not only a crash of the process.
    #[tokio::test]
    async fn the_writer_syncs_every_commit_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("palisade.db"))
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "PRAGMA synchronous is FULL (2)");
    }

    /// What ingest learns of the rows it stores beside new findings (`known_rows.rs`) it
    /// learns only from a committed batch: an asset and a rule first named by a batch that
    /// rolled back get their key and search rows with the next batch that names them. The
    /// batch is refused at its last step (the counters), after its report ids, finding and
    /// search rows were written, and its report sent again is new, not a duplicate.
    #[tokio::test]
    async fn a_batch_rolled_back_teaches_ingest_nothing() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        store
            .ingest(&[alert("web-1", 1_000)], &policy)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_counts BEFORE INSERT ON finding_counts \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        let mut refused = alert("web-2", 2_000);
        refused.rule = "Other rule".into();
        store.ingest(&[refused.clone()], &policy).await.unwrap_err();
        sqlx::query("DROP TRIGGER refuse_counts")
            .execute(&store.writer)
            .await
            .unwrap();
        // Another process's alert on web-1: a new finding of an asset whose key is known.
        let mut known_asset = alert("web-1", 3_000);
        if let Details::Alert(details) = &mut known_asset.details {
            details.process.cmdline = "sh -c id".into();
        }
        // Its id was inserted, then rolled back: not a duplicate.
        let outcome = store.ingest(&[refused], &policy).await.unwrap();
        assert_eq!((outcome.created, outcome.duplicates), (1, 0), "{outcome:?}");
        let outcome = store.ingest(&[known_asset], &policy).await.unwrap();
        assert_eq!((outcome.created, outcome.aggregated), (1, 0), "{outcome:?}");

        let rules: Vec<String> =
            sqlx::query_scalar("SELECT rule FROM finding_search_rules ORDER BY rule")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert_eq!(rules, ["Other rule", "Terminal shell in container"]);
        let labels: Vec<String> =
            sqlx::query_scalar("SELECT asset_label FROM finding_search_assets ORDER BY 1")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert_eq!(labels, ["shop/web-1/", "shop/web-2/"]);
        let keyed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM findings JOIN finding_assets \
             ON finding_assets.key = findings.asset_key AND finding_assets.asset_id = findings.asset_id",
        )
        .fetch_one(&store.writer)
        .await
        .unwrap();
        assert_eq!(keyed, 3, "every finding's asset key names its asset");
        for (term, found) in [("web-2", 1), ("other rule", 1), ("terminal", 2)] {
            let query = FindingQuery {
                text: Some(term.into()),
                ..Default::default()
            };
            let page = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap();
            assert_eq!(page.items.len(), found, "{term}");
        }
    }

    /// Issue 2: a rule and asset label longer than ingest remembers (`known_rows.rs`) are
    /// stored and found like any other, by every batch that names them, and never remembered.
    #[tokio::test]
    async fn a_long_rule_and_label_are_stored_but_not_remembered() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        let long_rule = format!("Long rule {}", "x".repeat(64 << 10));
        let long_pod = format!("pod-{}", "p".repeat(600));
        let mut first = alert(&long_pod, 1_000);
        first.rule = long_rule.clone();
        let mut second = alert(&long_pod, 2_000);
        second.rule = long_rule.clone();
        if let Details::Alert(details) = &mut second.details {
            details.process.cmdline = "sh -c id".into();
        }
        for report in [first, second] {
            let outcome = store.ingest(&[report], &policy).await.unwrap();
            assert_eq!(outcome.created, 1);
        }

        let rules: Vec<String> = sqlx::query_scalar("SELECT rule FROM finding_search_rules")
            .fetch_all(&store.writer)
            .await
            .unwrap();
        assert_eq!(rules, [long_rule.as_str()]);
        let labels: Vec<String> =
            sqlx::query_scalar("SELECT asset_label FROM finding_search_assets")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        let long_label = format!("shop/{long_pod}/");
        assert_eq!(labels, [long_label.as_str()]);
        for term in ["long rule", &long_pod[..40]] {
            let query = FindingQuery {
                text: Some(term.into()),
                ..Default::default()
            };
            let page = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 2, "{term}");
        }
        let asset_id: String = sqlx::query_scalar("SELECT DISTINCT asset_id FROM findings")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        let asset_id = asset_id.parse().unwrap();
        let batch = store.known_rows.batch(
            [super::known_rows::SearchAsset {
                kind: FindingKind::Alert,
                cluster: "prod",
                asset_id,
                label: &long_label,
            }],
            [super::known_rows::SearchRule {
                kind: FindingKind::Alert,
                cluster: "prod",
                rule: &long_rule,
            }],
        );
        assert!(
            batch.unknown_assets.is_empty(),
            "the asset's key is remembered"
        );
        assert_eq!(batch.search_rows_to_add(), (1, 1), "its texts are not");
    }

    /// Issue 2: a batch's report ids are recorded in statements of 500 rows that tell the ids
    /// stored now from those stored before (`record_report_ids`): a resent half of an earlier
    /// batch, spread over every statement of the new one, and an id sent twice in it, are the
    /// duplicates, and only they.
    #[tokio::test]
    async fn resent_reports_are_told_apart_in_every_statement_of_a_batch() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        let first: Vec<FindingReport> = (0..1_200)
            .map(|index| alert(&format!("web-{}", index % 7), 1_000 + index))
            .collect();
        let outcome = store.ingest(&first, &policy).await.unwrap();
        assert_eq!(
            (outcome.duplicates, outcome.created + outcome.aggregated),
            (0, 1_200)
        );

        let twice = alert("web-9", 5_000);
        let mut second: Vec<FindingReport> = Vec::new();
        for (index, resent) in first.iter().step_by(2).enumerate() {
            second.push(resent.clone());
            second.push(alert("web-8", 3_000 + index as i64));
        }
        second.insert(700, twice.clone());
        second.push(twice);
        assert_eq!(second.len(), 1_202);
        let outcome = store.ingest(&second, &policy).await.unwrap();
        assert_eq!(outcome.duplicates, 601, "{outcome:?}");
        assert_eq!(outcome.created + outcome.aggregated, 601, "{outcome:?}");

        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ingested_reports")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(recorded, 1_801);
        let counted: i64 = sqlx::query_scalar("SELECT SUM(count) FROM findings")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(counted, 1_801, "every report stored counted once");
    }

    /// Report ids recorded before migration 0065 (with the finding each went into) are still
    /// duplicates after it, new ones are stored with the unused `finding_id` left NULL (the
    /// column stays), and the findings stored before it are found through the index 0065
    /// rebuilt, whose triggers then follow their changes.
    #[tokio::test]
    async fn report_ids_recorded_before_migration_0065_stay_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        const HOUR: i64 = 3_600_000;
        let stored = alert("web-1", 10 * HOUR);
        let vulnerable = vulnerability(&["GHSA-aaaa-qqqq-wwww"], 10 * HOUR);
        let path = database_before("0065", dir.path(), &[stored.clone(), vulnerable]).await;
        {
            let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO ingested_reports (report_id, finding_id, received_at) \
                 VALUES ($1, '00000000-0000-7000-8000-000000000000', 1000)",
            )
            .bind(stored.id.to_string())
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let policy = HandlingPolicy::default();
        let outcome = store.ingest(&[stored], &policy).await.unwrap();
        assert_eq!((outcome.duplicates, outcome.created), (1, 0), "{outcome:?}");
        for (kind, term) in [
            (FindingKind::Alert, "shell in web-1"),
            (FindingKind::Vulnerability, "GHSA-aaaa"),
            (FindingKind::Vulnerability, "openssl"),
        ] {
            assert_eq!(search(&store, kind, term).await, 1, "{term}");
        }

        let repeats = [
            alert("web-1", 10 * HOUR + 60_000),
            vulnerability(&["DSA-5555-1"], 10 * HOUR + 60_000),
        ];
        let outcome = store.ingest(&repeats, &policy).await.unwrap();
        assert_eq!(
            (outcome.duplicates, outcome.created, outcome.aggregated),
            (0, 0, 2),
            "{outcome:?}"
        );
        // "qqq" is only in the old aliases, "555" only in the new ones.
        for (trigram, entries) in [("qqq", 0), ("555", 1), ("she", 1), ("ssl", 1)] {
            assert_eq!(trigram_hits(&store, trigram).await, entries, "{trigram}");
        }
        for (term, found) in [("GHSA-aaaa", 0), ("DSA-5555", 1)] {
            assert_eq!(
                search(&store, FindingKind::Vulnerability, term).await,
                found,
                "{term}"
            );
        }
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('ingested_reports')")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert_eq!(columns, ["report_id", "finding_id", "received_at"]);
        let without_finding: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM ingested_reports WHERE finding_id IS NULL")
                .fetch_one(&store.writer)
                .await
                .unwrap();
        assert_eq!(without_finding, 2, "the repeats' ids");
    }

    /// Issue 2: a vulnerability's index entry is deleted by the text it was indexed with (its
    /// package and aliases), which FTS5's integrity check cannot verify for a contentless
    /// table: after a later report changes its aliases, a trigram only of the old aliases
    /// matches nothing, one of the new ones the finding.
    #[tokio::test]
    async fn a_vulnerability_is_indexed_by_its_latest_aliases_only() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        for (aliases, at) in [(["GHSA-aaaa-qqqq-wwww"], 1_000), (["DSA-5555-1"], 2_000)] {
            store
                .ingest(&[vulnerability(&aliases, at)], &policy)
                .await
                .unwrap();
        }
        let aliases: String =
            sqlx::query_scalar("SELECT body -> '$.details.aliases' FROM findings")
                .fetch_one(&store.writer)
                .await
                .unwrap();
        assert_eq!(
            aliases, r#"["DSA-5555-1"]"#,
            "one finding, its body the latest"
        );
        for (trigram, entries) in [("qqq", 0), ("ghs", 0), ("555", 1), ("dsa", 1), ("ssl", 1)] {
            assert_eq!(trigram_hits(&store, trigram).await, entries, "{trigram}");
        }
        for (term, found) in [("GHSA-aaaa", 0), ("DSA-5555", 1)] {
            assert_eq!(
                search(&store, FindingKind::Vulnerability, term).await,
                found,
                "{term}"
            );
        }
    }

    /// Migration 0065: the trigram index keeps no per-row sizes, so its triggers delete an entry
    /// by the values it was indexed with. A changed title is indexed by its new text only, a
    /// deleted finding by none, search finds the new text, and FTS5's integrity check passes.
    #[tokio::test]
    async fn the_text_index_follows_changed_and_deleted_findings() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        store
            .ingest(&[alert("web-1", 1_000), alert("web-2", 1_000)], &policy)
            .await
            .unwrap();
        for statement in [
            "UPDATE findings SET title = 'reverse shell from pod-a' WHERE title = 'shell in web-1'",
            "DELETE FROM findings WHERE title = 'shell in web-2'",
        ] {
            sqlx::query(statement).execute(&store.writer).await.unwrap();
        }
        // Trigrams of the old titles ("l i" of "shell in") and of the new one ("rev").
        for (trigram, entries) in [("l i", 0), ("she", 1), ("rev", 1)] {
            assert_eq!(trigram_hits(&store, trigram).await, entries, "{trigram}");
        }
        sqlx::query("INSERT INTO finding_text (finding_text, rank) VALUES ('integrity-check', 0)")
            .execute(&store.writer)
            .await
            .unwrap();
        for (term, found) in [("reverse shell", 1), ("in web-", 0)] {
            assert_eq!(
                search(&store, FindingKind::Alert, term).await,
                found,
                "{term}"
            );
        }
    }

    /// Entries of the trigram index `finding_text` that hold `trigram`.
    async fn trigram_hits(store: &SqliteStore, trigram: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM finding_text WHERE finding_text MATCH $1")
            .bind(format!("\"{trigram}\""))
            .fetch_one(&store.writer)
            .await
            .unwrap()
    }

    /// How many findings of `kind` a search for `term` lists (one page).
    async fn search(store: &SqliteStore, kind: FindingKind, term: &str) -> usize {
        let query = FindingQuery {
            text: Some(term.into()),
            ..Default::default()
        };
        store.list_findings(kind, &query).await.unwrap().items.len()
    }

    #[test]
    fn a_dedupe_prefix_is_the_value_of_the_first_15_hex_digits() {
        assert_eq!(dedupe_prefix("0123456789abcdef0123"), 0x0012_3456_789a_bcde);
        assert_eq!(dedupe_prefix(&"f".repeat(32)), (1 << 60) - 1);
        for not_hex in [
            "",
            "0123456789abcd",
            "0123456789ABCDEF",
            "0123456789abcdg",
            "é0123456789abcd",
        ] {
            assert_eq!(dedupe_prefix(not_hex), 0, "{not_hex:?}");
        }
    }

    /// A runtime alert (a shell) in `pod`, observed at `at`: one finding per pod.
    pub(super) fn alert(pod: &str, at: i64) -> FindingReport {
        FindingReport {
            id: Uuid::now_v7(),
            observed_at: Timestamp(at),
            severity: Severity::High,
            rule: "Terminal shell in container".into(),
            title: format!("shell in {pod}"),
            asset: AffectedAsset {
                cluster: "prod".into(),
                namespace: Some("shop".into()),
                pod: Some(pod.into()),
                ..Default::default()
            },
            details: Details::Alert(AlertDetails {
                process: ProcessInfo {
                    exe: "/bin/sh".into(),
                    cmdline: "sh -i".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            demo: false,
        }
    }

    /// A vulnerability of openssl in one image, named by `aliases`: every call the same
    /// finding (dedupe key).
    fn vulnerability(aliases: &[&str], at: i64) -> FindingReport {
        FindingReport {
            id: Uuid::now_v7(),
            observed_at: Timestamp(at),
            severity: Severity::High,
            rule: "CVE-2024-0001".into(),
            title: "CVE-2024-0001 in openssl".into(),
            asset: AffectedAsset {
                cluster: "prod".into(),
                namespace: Some("shop".into()),
                image: Some("registry.example/shop:1".into()),
                ..Default::default()
            },
            details: Details::Vulnerability(VulnerabilityDetails {
                aliases: aliases.iter().map(|alias| (*alias).to_owned()).collect(),
                package: "openssl".into(),
                ecosystem: "Debian:12".into(),
                installed_version: "3.0.11-1".into(),
                ..Default::default()
            }),
            demo: false,
        }
    }

    /// A database at the schema as it was before migration `version`, holding the findings
    /// of `reports` (at most 10, ids in order) stored as ingest stored them before 0059 and
    /// carried up to `version` by the migrations between, as an upgraded database's were:
    /// its path.
    async fn database_before(
        version: &str,
        dir: &std::path::Path,
        reports: &[FindingReport],
    ) -> std::path::PathBuf {
        let path = dir.join("palisade.db");
        let pool = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        migrate_before(version.min("0059"), dir, &pool).await;
        for (index, report) in reports.iter().enumerate() {
            sqlx::query(
                "INSERT INTO findings (id, kind, cluster, dedupe_key, severity, status, category, \
                 rule, title, namespace, asset_id, asset_label, first_seen, last_seen, count, demo, \
                 body) VALUES ($1, $9, 'prod', $2, $10, 'open', $11, $3, $4, 'shop', $5, $6, $7, \
                 $7, 1, 0, $8)",
            )
            .bind(format!("00000000-0000-7000-8000-00000000000{index}"))
            .bind(report.dedupe_key())
            .bind(&report.rule)
            .bind(&report.title)
            .bind(report.asset.asset_id().to_string())
            .bind(report.asset.label())
            .bind(report.observed_at.millis())
            .bind(finding_body(report))
            .bind(report.details.kind().as_str())
            .bind(report.severity.rank())
            .bind(report.details.category())
            .execute(&pool)
            .await
            .unwrap();
        }
        migrate_before(version, dir, &pool).await;
        pool.close().await;
        path
    }

    /// Runs on `pool` the store's migrations numbered below `version` not yet applied.
    async fn migrate_before(version: &str, dir: &std::path::Path, pool: &SqlitePool) {
        let before = dir.join(format!("migrations-before-{version}"));
        std::fs::create_dir_all(&before).unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for entry in std::fs::read_dir(&source).unwrap() {
            let name = entry.unwrap().file_name();
            if name.to_str().unwrap() < version {
                std::fs::copy(source.join(&name), before.join(&name)).unwrap();
            }
        }
        sqlx::migrate::Migrator::new(before.as_path())
            .await
            .unwrap()
            .run(pool)
            .await
            .unwrap();
    }

    /// Findings stored before migration 0062 get their asset's key, the one ingest then gives
    /// that asset's new findings: an asset's findings are listed old and new alike, and no
    /// other asset's.
    #[tokio::test]
    async fn findings_stored_before_the_asset_keys_are_listed_by_their_asset() {
        let dir = tempfile::tempdir().unwrap();
        const HOUR: i64 = 3_600_000;
        let stored = [alert("web-1", 10 * HOUR), alert("web-2", 10 * HOUR)];
        let path = database_before("0062", dir.path(), &stored).await;
        let store = SqliteStore::open(&path).await.unwrap();
        // Beyond the hour of aggregation: web-1's second finding; web-3 is a new asset.
        let later = [alert("web-1", 12 * HOUR), alert("web-3", 12 * HOUR)];
        let outcome = store
            .ingest(&later, &HandlingPolicy::default())
            .await
            .unwrap();
        assert_eq!(outcome.created, 2);
        for (pod, findings) in [("web-1", 2), ("web-2", 1), ("web-3", 1)] {
            let asset_id = alert(pod, 0).asset.asset_id();
            let query = FindingQuery {
                asset_id: Some(asset_id),
                ..Default::default()
            };
            let page = store
                .list_findings(FindingKind::Alert, &query)
                .await
                .unwrap();
            assert_eq!(page.items.len(), findings, "{pod}");
            assert!(
                page.items
                    .iter()
                    .all(|finding| finding.asset_id == asset_id)
            );
        }
        let unknown = FindingQuery {
            asset_id: Some(alert("web-4", 0).asset.asset_id()),
            ..Default::default()
        };
        let page = store
            .list_findings(FindingKind::Alert, &unknown)
            .await
            .unwrap();
        assert!(page.items.is_empty());
        // One key per asset, none shared, none left at the column's default.
        let keys: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT asset_id, MIN(asset_key), COUNT(DISTINCT asset_key) FROM findings \
             GROUP BY asset_id",
        )
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(keys.len(), 3);
        assert!(
            keys.iter()
                .all(|(_, key, distinct)| *key > 0 && *distinct == 1)
        );
        let distinct: HashSet<i64> = keys.iter().map(|(_, key, _)| *key).collect();
        assert_eq!(distinct.len(), 3);
    }

    /// Findings stored before migration 0068 are generation 0, and a batch is the generation
    /// of the rowid its first row takes: with one asset's findings in generations 0, 1 and 3
    /// (2 empty), its findings of every generation are listed, counted, charted, previewed by
    /// a whitelist rule of that asset and found by a term its label holds, and no other
    /// asset's, the statements seeking the asset in each generation of `findings_by_asset`.
    #[tokio::test]
    async fn an_assets_findings_are_found_in_every_generation() {
        let dir = tempfile::tempdir().unwrap();
        const HOUR: i64 = 3_600_000;
        let stored = [alert("web-1", 10 * HOUR), alert("web-2", 10 * HOUR)];
        let path = database_before("0068", dir.path(), &stored).await;
        let store = SqliteStore::open(&path).await.unwrap();
        // Rowids skipped to the last of generation `generation - 1` by a copy of web-2's
        // finding (generation 0, as the column's default), as if that many had been stored.
        let skip_to = |generation: i64| {
            sqlx::query(
                "INSERT INTO findings (rowid, id, kind, cluster, dedupe_key, severity, status, \
                 category, rule, title, namespace, asset_id, asset_label, first_seen, last_seen, \
                 count, demo, body, asset_key) SELECT $1, 'skip-' || $1, kind, cluster, \
                 'skip-' || $1, severity, status, category, rule, title, namespace, asset_id, \
                 asset_label, first_seen, last_seen, count, demo, body, asset_key FROM findings \
                 WHERE asset_id = $2 LIMIT 1",
            )
            .bind((generation << GENERATION_SHIFT) - 1)
            .bind(alert("web-2", 0).asset.asset_id().to_string())
            .execute(&store.writer)
        };
        // web-1 in generations 0, 1 and 3, with 2 empty between.
        let policy = HandlingPolicy::default();
        skip_to(1).await.unwrap();
        let second = [alert("web-1", 12 * HOUR)];
        assert_eq!(store.ingest(&second, &policy).await.unwrap().created, 1);
        skip_to(3).await.unwrap();
        let third = [alert("web-1", 14 * HOUR), alert("web-3", 14 * HOUR)];
        assert_eq!(store.ingest(&third, &policy).await.unwrap().created, 2);
        let generations: Vec<(String, i64)> = sqlx::query_as(
            "SELECT asset_id, generation FROM findings WHERE id NOT LIKE 'skip-%' ORDER BY rowid",
        )
        .fetch_all(&store.writer)
        .await
        .unwrap();
        let expected = [
            ("web-1", 0),
            ("web-2", 0),
            ("web-1", 1),
            ("web-1", 3),
            ("web-3", 3),
        ];
        assert_eq!(
            generations,
            expected
                .map(|(pod, generation)| (alert(pod, 0).asset.asset_id().to_string(), generation))
        );

        let web_1 = alert("web-1", 0).asset.asset_id();
        let by_asset = FindingQuery {
            asset_id: Some(web_1),
            ..Default::default()
        };
        let page = store
            .list_findings(FindingKind::Alert, &by_asset)
            .await
            .unwrap();
        let seen: Vec<i64> = page
            .items
            .iter()
            .map(|finding| finding.last_seen.millis())
            .collect();
        assert_eq!(seen, [14 * HOUR, 12 * HOUR, 10 * HOUR]);
        assert!(page.items.iter().all(|finding| finding.asset_id == web_1));
        let counts = store
            .count_by_severity(FindingKind::Alert, &by_asset)
            .await
            .unwrap();
        assert_eq!(counts.by_rank.iter().sum::<u64>(), 3);
        let buckets = TimeBuckets {
            start: Timestamp(0),
            width_ms: 24 * HOUR,
            buckets: 1,
        };
        let chart = store
            .count_over_time(FindingKind::Alert, &by_asset, buckets)
            .await
            .unwrap();
        assert_eq!(chart, [3]);
        let matcher = NewWhitelistRule {
            kind: FindingKind::Alert,
            field: "rule".into(),
            operator: MatchOperator::Equals,
            value: "Terminal shell in container".into(),
            scope: WhitelistScope::Asset { asset_id: web_1 },
            reason: String::new(),
        }
        .compile()
        .unwrap();
        assert_eq!(store.count_whitelist_matches(&matcher).await.unwrap(), 3);
        // A term only the asset's label holds: its findings through the hit assets' entries.
        let by_label = FindingQuery {
            text: Some("shop/web-1".into()),
            ..Default::default()
        };
        let page = store
            .list_findings(FindingKind::Alert, &by_label)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 3);
        assert!(page.items.iter().all(|finding| finding.asset_id == web_1));
        let counts = store
            .count_by_severity(FindingKind::Alert, &by_label)
            .await
            .unwrap();
        assert_eq!(counts.by_rank.iter().sum::<u64>(), 3);

        let mut connection = store.reader.acquire().await.unwrap();
        let mut explain = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        console::push_matches(
            &mut explain,
            FindingKind::Alert,
            &by_asset,
            &TextSearch::Scan,
            console::MatchesRead::default(),
            "severity",
            |_| {},
        );
        explain.push("SELECT severity, COUNT(*) FROM matches GROUP BY severity");
        let plan = query_plan(&mut connection, explain).await;
        assert!(
            plan.iter()
                .any(|step| step.contains("findings_by_asset (generation=? AND asset_key=?")),
            "{plan:?}"
        );
    }

    /// An alert aggregates repeats within an hour of its last sighting whichever window
    /// (its bucket, `dedupe_lookup::bucket`) that sighting and the repeat fall in, and its
    /// bucket follows its last sighting, so that later repeats still find it; a repeat observed
    /// before the last sighting aggregates too, and one past the hour makes a new finding.
    #[tokio::test]
    async fn an_alert_is_found_in_the_window_of_its_last_sighting() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        const HOUR: i64 = 3_600_000;
        const MINUTE: i64 = 60_000;
        let ingest = |at: i64| {
            let store = &store;
            let policy = &policy;
            async move {
                let outcome = store.ingest(&[alert("web-1", at)], policy).await.unwrap();
                (outcome.created, outcome.aggregated)
            }
        };
        assert_eq!(ingest(10 * HOUR - 10 * MINUTE).await, (1, 0));
        // The next window, 50 minutes after the last sighting.
        assert_eq!(ingest(10 * HOUR + 40 * MINUTE).await, (0, 1));
        // 50 minutes after that: found only if its bucket moved with its last sighting.
        assert_eq!(ingest(11 * HOUR + 30 * MINUTE).await, (0, 1));
        // Observed before the last sighting (a late report).
        assert_eq!(ingest(11 * HOUR).await, (0, 1));
        // 61 minutes after the last sighting: a finding of its own.
        assert_eq!(ingest(12 * HOUR + 31 * MINUTE).await, (1, 0));
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count, last_seen, {} FROM findings ORDER BY first_seen",
            bucket_sql()
        )))
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(
            rows,
            [
                (4, 11 * HOUR + 30 * MINUTE, 11),
                (1, 12 * HOUR + 31 * MINUTE, 12)
            ]
        );
    }

    /// When the stored findings' last sightings span more windows after a report's than a
    /// look-up lists (a report older than them, or clocks far ahead), the look-up still finds
    /// the report's finding, in the windows below those listed.
    #[tokio::test]
    async fn a_repeat_is_found_among_more_windows_than_a_look_up_lists() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        const HOUR: i64 = 3_600_000;
        let windows = super::dedupe_lookup::MAX_LISTED as i64 + 6;
        let spread: Vec<FindingReport> = (0..windows)
            .map(|hour| alert(&format!("web-{hour}"), (100 + hour) * HOUR))
            .collect();
        let outcome = store.ingest(&spread, &policy).await.unwrap();
        assert_eq!(outcome.created, windows as u64);
        let repeat = alert("web-0", 100 * HOUR + 60_000);
        let outcome = store.ingest(&[repeat], &policy).await.unwrap();
        assert_eq!((outcome.created, outcome.aggregated), (0, 1));
    }

    /// Issue 2 (review): on the many-buckets path (more stored windows than a look-up
    /// lists), a batch mixing a kind without a window with new, current and late alerts
    /// aggregates each report exactly as one look-up of everything would: the vulnerability
    /// into its finding (bucket 0), the current repeat into the latest window's finding, the
    /// late repeat into its finding below the listed windows, and a late repeat past the hour
    /// of its finding's last sighting into a new finding, as does the new alert.
    #[tokio::test]
    async fn a_mixed_batch_among_many_windows_aggregates_each_report_exactly() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        const HOUR: i64 = 3_600_000;
        const MINUTE: i64 = 60_000;
        let windows = super::dedupe_lookup::MAX_LISTED as i64 + 6;
        let mut stored: Vec<FindingReport> = (0..windows)
            .map(|hour| alert(&format!("web-{hour}"), (100 + hour) * HOUR))
            .collect();
        stored.push(vulnerability(&["CVE-2024-0001"], 100 * HOUR));
        let outcome = store.ingest(&stored, &policy).await.unwrap();
        assert_eq!(outcome.created, windows as u64 + 1);
        let latest = 100 + windows - 1;
        let batch = [
            vulnerability(&["CVE-2024-0001"], (latest + 1) * HOUR),
            alert(&format!("web-{}", windows - 1), latest * HOUR + 30 * MINUTE),
            alert("web-new", latest * HOUR + 40 * MINUTE),
            alert("web-0", 100 * HOUR + 50 * MINUTE),
            alert("web-3", 104 * HOUR + 2 * MINUTE),
        ];
        let outcome = store.ingest(&batch, &policy).await.unwrap();
        assert_eq!((outcome.created, outcome.aggregated), (2, 3), "{outcome:?}");
        let counts: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT title, COUNT(*), SUM(count) FROM findings \
             WHERE title IN ('shell in web-0', 'shell in web-3', 'shell in web-new', $1, $2) \
             GROUP BY title ORDER BY title",
        )
        .bind(format!("shell in web-{}", windows - 1))
        .bind("CVE-2024-0001 in openssl")
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(
            counts,
            [
                ("CVE-2024-0001 in openssl".to_owned(), 1, 2),
                ("shell in web-0".to_owned(), 1, 2),
                ("shell in web-3".to_owned(), 2, 2),
                (format!("shell in web-{}", windows - 1), 1, 2),
                ("shell in web-new".to_owned(), 1, 1),
            ]
        );
    }

    /// Pages the writer connection has read from its cache or the disk so far
    /// (`SQLITE_DBSTATUS_CACHE_HIT` + `_MISS`): what a statement visits of the B-trees.
    async fn pages_read(store: &SqliteStore) -> i64 {
        let mut connection = store.writer.acquire().await.unwrap();
        let mut handle = connection.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        let mut pages = 0;
        for counter in [
            libsqlite3_sys::SQLITE_DBSTATUS_CACHE_HIT,
            libsqlite3_sys::SQLITE_DBSTATUS_CACHE_MISS,
        ] {
            let (mut current, mut highest) = (0, 0);
            // SAFETY: the locked handle is a live connection no other thread uses meanwhile;
            // the out-pointers outlive the call.
            let code = unsafe {
                libsqlite3_sys::sqlite3_db_status(db, counter, &mut current, &mut highest, 0)
            };
            assert_eq!(code, libsqlite3_sys::SQLITE_OK);
            pages += i64::from(current);
        }
        pages
    }

    /// Issue 2 (review): one report observed 40 hours ago in a batch of 500 new alerts costs
    /// the batch a look-up of its own key in the 42 windows it reaches (a few hundred page
    /// reads at most), not of every key of the batch in each of them (500 × 42 seeks, tens of
    /// thousands of page reads, with one lower bound for the whole batch).
    #[tokio::test]
    async fn a_late_report_costs_its_batch_only_its_own_look_up() {
        let (_dir, store) = super::test_support::temp_store().await;
        let policy = HandlingPolicy::default();
        const HOUR: i64 = 3_600_000;
        const NOW: i64 = 1_000 * HOUR;
        let history: Vec<FindingReport> = (0..42 * 50)
            .map(|n| alert(&format!("old-{n}"), NOW - 41 * HOUR + (n / 50) * HOUR))
            .collect();
        store.ingest(&history, &policy).await.unwrap();
        let new_alerts = |name: &str| -> Vec<FindingReport> {
            (0..500)
                .map(|n| alert(&format!("{name}-{n}"), NOW + n))
                .collect()
        };
        // Two batches first: the first ones into a new window read fewer pages than later ones.
        let mut read = Vec::new();
        for (name, late) in [
            ("w", false),
            ("x", false),
            ("a", false),
            ("b", true),
            ("c", false),
            ("d", true),
        ] {
            let mut batch = new_alerts(name);
            if late {
                batch.push(alert(&format!("late-{name}"), NOW - 40 * HOUR));
            }
            let before = pages_read(&store).await;
            let outcome = store.ingest(&batch, &policy).await.unwrap();
            assert_eq!(outcome.created, batch.len() as u64);
            read.push(pages_read(&store).await - before);
        }
        for (without, with) in [(read[2], read[3]), (read[4], read[5])] {
            assert!(
                with - without < 3_000,
                "pages read by batches without and with a late report: {read:?}"
            );
        }
    }

    /// Findings stored at migration 0066, their bucket a column (an alert's the hour of its
    /// last sighting, a vulnerability's 0), lose the column to 0067's index on the expression,
    /// which gives them the same buckets; their repeats still aggregate into them (an alert's
    /// within the hour of its last sighting, in the next window too, a vulnerability's
    /// whenever), and a repeat past the hour makes a finding of its own.
    #[tokio::test]
    async fn findings_stored_with_a_bucket_column_absorb_their_repeats() {
        let dir = tempfile::tempdir().unwrap();
        const HOUR: i64 = 3_600_000;
        const MINUTE: i64 = 60_000;
        let stored = [
            alert("web-1", 10 * HOUR + 50 * MINUTE),
            alert("web-2", 10 * HOUR + 5 * MINUTE),
            alert("web-3", 7 * HOUR),
            vulnerability(&["CVE-2024-0001"], 10 * HOUR),
        ];
        let path = database_before("0067", dir.path(), &stored).await;
        let expected_buckets = [
            ("CVE-2024-0001 in openssl".to_owned(), 0),
            ("shell in web-1".to_owned(), 10),
            ("shell in web-2".to_owned(), 10),
            ("shell in web-3".to_owned(), 7),
        ];
        let before = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
        let buckets: Vec<(String, i64)> =
            sqlx::query_as("SELECT title, dedupe_bucket FROM findings ORDER BY title")
                .fetch_all(&before)
                .await
                .unwrap();
        assert_eq!(buckets, expected_buckets, "as migration 0066 left them");
        before.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let column: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pragma_table_info('findings') WHERE name = 'dedupe_bucket'",
        )
        .fetch_one(&store.writer)
        .await
        .unwrap();
        assert_eq!(column, 0, "the column is dropped");
        let buckets: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT title, {} FROM findings ORDER BY title",
            bucket_sql()
        )))
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(buckets, expected_buckets);
        let policy = HandlingPolicy::default();
        let repeats = [
            alert("web-1", 11 * HOUR + 20 * MINUTE),
            alert("web-2", 10 * HOUR + 30 * MINUTE),
            alert("web-3", 8 * HOUR + MINUTE),
            vulnerability(&["CVE-2024-0001"], 30 * HOUR),
        ];
        let outcome = store.ingest(&repeats, &policy).await.unwrap();
        assert_eq!((outcome.created, outcome.aggregated), (1, 3), "{outcome:?}");
        // Found in the window its last sighting moved to.
        let outcome = store
            .ingest(&[alert("web-1", 12 * HOUR + 10 * MINUTE)], &policy)
            .await
            .unwrap();
        assert_eq!((outcome.created, outcome.aggregated), (0, 1), "{outcome:?}");
        let counts: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT title, COUNT(*), SUM(count) FROM findings GROUP BY title ORDER BY title",
        )
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(
            counts,
            [
                ("CVE-2024-0001 in openssl".to_owned(), 1, 2),
                ("shell in web-1".to_owned(), 1, 3),
                ("shell in web-2".to_owned(), 1, 2),
                ("shell in web-3".to_owned(), 2, 2),
            ]
        );
    }

    /// Findings stored before migration 0060 get the prefix that ingest computes, so that their
    /// repeats still aggregate into them; two findings that share a prefix each take only their
    /// own repeats.
    #[tokio::test]
    async fn findings_stored_before_the_narrow_dedupe_index_absorb_their_repeats() {
        let dir = tempfile::tempdir().unwrap();
        const HOUR: i64 = 3_600_000;
        let stored = [alert("web-1", 10 * HOUR), alert("web-2", 10 * HOUR)];
        let path = database_before("0060", dir.path(), &stored).await;
        let store = SqliteStore::open(&path).await.unwrap();
        let prefixes: Vec<(String, i64)> =
            sqlx::query_as("SELECT dedupe_key, dedupe_prefix FROM findings ORDER BY id")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert_eq!(prefixes.len(), 2);
        for (key, prefix) in &prefixes {
            assert_eq!(*prefix, dedupe_prefix(key), "backfilled prefix of {key}");
            assert_ne!(*prefix, 0, "{key} is hex");
        }
        // A shared prefix (one in 2^60 pairs of keys) is looked up like any other.
        sqlx::query("UPDATE findings SET dedupe_prefix = $1")
            .bind(prefixes[0].1)
            .execute(&store.writer)
            .await
            .unwrap();
        let repeats = [
            alert("web-2", 10 * HOUR + 60_000),
            alert("web-1", 10 * HOUR + 120_000),
        ];
        let outcome = store
            .ingest(&repeats, &HandlingPolicy::default())
            .await
            .unwrap();
        assert_eq!((outcome.created, outcome.aggregated), (0, 2));
        let counts: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT title, count, last_seen FROM findings WHERE kind = $1 ORDER BY title",
        )
        .bind(FindingKind::Alert.as_str())
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(
            counts,
            [
                ("shell in web-1".to_owned(), 2, 10 * HOUR + 120_000),
                ("shell in web-2".to_owned(), 2, 10 * HOUR + 60_000),
            ]
        );
    }
}
