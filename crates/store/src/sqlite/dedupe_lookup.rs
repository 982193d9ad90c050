//! Ingest's look-up of the stored findings a batch's reports may aggregate into, through
//! `findings_dedupe` (migration 0067: the finding's [`bucket`], an expression of its kind and
//! last sighting, and `dedupe_prefix`).
//!
//! A report of a kind with an aggregation window aggregates into a finding of its key last
//! seen at or after (observed − window), whose bucket is therefore at or after that instant's
//! (truncating division keeps the order): the key's *reach* is every stored bucket from there
//! on, future ones included (a clock ahead of the server's fills them). A kind without a window
//! keeps its findings in bucket 0, the only one its keys read. Only a key's first report in
//! the batch looks for a stored finding (its later ones aggregate into what that one found or
//! made, see `SqliteStore::ingest`), so a key's reach is its first report's.
//!
//! Each key is looked up within its own reach only: a late report (an agent's outbox sent
//! after an outage) costs a seek per bucket it reaches for its own key, not for every key of
//! its batch. The stored buckets are listed from the latest down to the batch's lowest reach
//! (a seek each), and keys are grouped by the first listed bucket they reach: one statement
//! per group and chunk of prefixes, `<bucket> IN (…) AND dedupe_prefix IN (…)`, a seek per
//! pair. A key whose reach holds no stored bucket is not looked up at all.
//!
//! At most [`MAX_LISTED`] buckets are listed, the latest ones, which every windowed key
//! reaches. Keys reaching below them (reports older than that many stored windows) also read
//! the buckets between the lowest reach among them and the listed ones, by a range scan of
//! that part of the index for those keys' prefixes only; no other key scans.
//!
//! The look-up is exact whatever it reads beyond a key's reach: it keeps each key's latest
//! absorbing finding, and a finding outside the reach was last seen before the report's
//! window, so it is the latest only when none within the window exists, and ingest then
//! makes a new finding as it would have without it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::LazyLock,
};

use palisade_model::{FindingKind, Status};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{INSERT_CHUNK, corrupt, dedupe_prefix};
use crate::Result;

/// The bucket of a finding of `kind` last seen at `last_seen`, which `findings_dedupe`
/// indexes ([`bucket_sql`]): for a kind that aggregates within a window, the window its last
/// sighting falls in (truncating division, as SQLite's integer division), else 0.
pub(super) fn bucket(kind: FindingKind, last_seen: i64) -> i64 {
    kind.aggregation_window_ms()
        .and_then(|window| last_seen.checked_div(window))
        .unwrap_or(0)
}

/// [`bucket`] as SQL of a `findings` row, built from the same windows
/// (`FindingKind::aggregation_window_ms`): the expression `findings_dedupe` indexes (migration
/// 0067 holds this text). SQLite uses an index on an expression only for a statement that
/// writes the same expression, so every statement here takes it from this one place.
pub(super) fn bucket_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let windowed: String = FindingKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let window = kind.aggregation_window_ms()?;
                Some(format!(
                    "WHEN kind = '{}' THEN last_seen / {window} ",
                    kind.as_str()
                ))
            })
            .collect();
        format!("CASE {windowed}ELSE 0 END")
    });
    &SQL
}

/// The statement that finds the latest stored bucket at or below `$1`: a seek of
/// `findings_dedupe` from its end.
fn latest_bucket_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let bucket = bucket_sql();
        format!("SELECT {bucket} FROM findings WHERE {bucket} <= $1 ORDER BY {bucket} DESC LIMIT 1")
    });
    &SQL
}

/// At most this many stored buckets are listed per batch (64 hours of alerts): past them a
/// late report's key scans the older part of the index (see the module doc), so that a report
/// from months ago (an old outbox, a clock far behind) costs one range scan for its batch, not
/// a seek per stored hour since.
pub(super) const MAX_LISTED: usize = 64;

/// The latest absorbing finding of each key found: key → (id, last_seen).
pub(super) type Found = HashMap<(FindingKind, String), (String, i64)>;

/// The buckets one key's look-up reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Bucket 0 only: a kind without a window.
    Unwindowed,
    /// Every stored bucket from this one on.
    From(i64),
}

impl Reach {
    fn of(kind: FindingKind, observed: i64) -> Reach {
        match kind.aggregation_window_ms() {
            Some(window) => Reach::From(bucket(kind, observed.saturating_sub(window))),
            None => Reach::Unwindowed,
        }
    }
}

/// The stored buckets at or after the batch's lowest reach, ascending: all of them if
/// `complete`, else the latest [`MAX_LISTED`].
#[derive(Debug)]
struct Listing {
    buckets: Vec<i64>,
    complete: bool,
}

/// Which buckets one statement reads.
#[derive(Debug, PartialEq, Eq)]
enum Buckets {
    /// These buckets: a seek each per prefix.
    Listed(Vec<i64>),
    /// Every bucket from `from` up to, not including, `below`: a scan of their entries.
    Range { from: i64, below: i64 },
}

/// One look-up: the buckets it reads and the prefixes of the keys that read them.
#[derive(Debug, PartialEq, Eq)]
struct Lookup {
    buckets: Buckets,
    prefixes: BTreeSet<i64>,
}

/// The latest absorbing finding stored for each key, among the buckets its reach holds;
/// `keys` are the batch's reports' keys, each with its report's observation time, in batch
/// order.
pub(super) async fn latest_absorbing<'k>(
    connection: &mut SqliteConnection,
    keys: impl IntoIterator<Item = (&'k (FindingKind, String), i64)>,
) -> Result<Found> {
    let mut reaches: HashMap<(&str, &str), Reach> = HashMap::new();
    for ((kind, key), observed) in keys {
        reaches
            .entry((kind.as_str(), key.as_str()))
            .or_insert_with(|| Reach::of(*kind, observed));
    }
    let mut found = Found::new();
    let lowest = reaches
        .values()
        .filter_map(|reach| match reach {
            Reach::From(from) => Some(*from),
            Reach::Unwindowed => None,
        })
        .min();
    let listing = match lowest {
        Some(lowest) => list_buckets(connection, lowest).await?,
        None => Listing {
            buckets: Vec::new(),
            complete: true,
        },
    };
    let keyed: Vec<(Reach, i64)> = reaches
        .iter()
        .map(|((_, key), reach)| (*reach, dedupe_prefix(key)))
        .collect();
    for lookup in plan(&keyed, &listing) {
        read(connection, &lookup, &reaches, &mut found).await?;
    }
    Ok(found)
}

/// Lists the stored buckets at or after `lowest`, from the latest down, a seek each (one
/// more tells whether the list is complete).
async fn list_buckets(connection: &mut SqliteConnection, lowest: i64) -> Result<Listing> {
    let mut buckets = Vec::new();
    let mut at_most = i64::MAX;
    let complete = loop {
        let bucket: Option<i64> = sqlx::query_scalar(latest_bucket_sql())
            .bind(at_most)
            .fetch_optional(&mut *connection)
            .await?;
        let Some(bucket) = bucket.filter(|bucket| *bucket >= lowest) else {
            break true;
        };
        if buckets.len() == MAX_LISTED {
            break false;
        }
        buckets.push(bucket);
        let Some(below) = bucket.checked_sub(1) else {
            break true;
        };
        at_most = below;
    };
    buckets.reverse();
    Ok(Listing { buckets, complete })
}

/// The statements that look up keys of these reaches and prefixes, given the stored buckets
/// listed (see the module doc).
fn plan(keys: &[(Reach, i64)], listing: &Listing) -> Vec<Lookup> {
    let listed = &listing.buckets;
    let mut unwindowed = BTreeSet::new();
    // Windowed keys' prefixes by the index of the first listed bucket they reach.
    let mut by_first: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
    // Keys reaching below an incomplete listing: the lowest reach among them, their prefixes.
    let mut below_listed: Option<(i64, BTreeSet<i64>)> = None;
    for &(reach, prefix) in keys {
        let from = match reach {
            Reach::Unwindowed => {
                unwindowed.insert(prefix);
                continue;
            }
            Reach::From(from) => from,
        };
        if !listing.complete && listed.first().is_some_and(|lowest| from < *lowest) {
            let (lowest, prefixes) = below_listed.get_or_insert_with(|| (from, BTreeSet::new()));
            *lowest = (*lowest).min(from);
            prefixes.insert(prefix);
        }
        let first = listed.partition_point(|bucket| *bucket < from);
        if first < listed.len() {
            by_first.entry(first).or_default().insert(prefix);
        }
    }
    let mut lookups = Vec::new();
    if !unwindowed.is_empty() {
        lookups.push(Lookup {
            buckets: Buckets::Listed(vec![0]),
            prefixes: unwindowed,
        });
    }
    for (first, prefixes) in by_first {
        lookups.push(Lookup {
            buckets: Buckets::Listed(listed[first..].to_vec()),
            prefixes,
        });
    }
    if let (Some((from, prefixes)), Some(lowest_listed)) = (below_listed, listed.first()) {
        lookups.push(Lookup {
            buckets: Buckets::Range {
                from,
                below: *lowest_listed,
            },
            prefixes,
        });
    }
    lookups
}

/// Runs `lookup`, a statement per chunk of its prefixes, keeping in `found` the latest
/// absorbing finding of each wanted key among the rows it reads. The status is checked here
/// rather than in SQL: with a status filter, SQLite may pick the status index and scan every
/// open finding per look-up. A prefix may be shared (see migration 0060): only rows of a
/// wanted kind and whole key count.
async fn read(
    connection: &mut SqliteConnection,
    lookup: &Lookup,
    wanted: &HashMap<(&str, &str), Reach>,
    found: &mut Found,
) -> Result<()> {
    let prefixes: Vec<i64> = lookup.prefixes.iter().copied().collect();
    for chunk in prefixes.chunks(INSERT_CHUNK) {
        let mut builder = QueryBuilder::<Sqlite>::new("");
        push_lookup(&mut builder, &lookup.buckets, chunk);
        for row in builder.build().fetch_all(&mut *connection).await? {
            let kind: &str = row.try_get("kind")?;
            let key: &str = row.try_get("dedupe_key")?;
            if !wanted.contains_key(&(kind, key)) {
                continue;
            }
            let status: &str = row.try_get("status")?;
            if !Status::from_name(status).is_some_and(Status::absorbs_repeats) {
                continue;
            }
            let kind =
                FindingKind::from_name(kind).ok_or_else(|| corrupt("findings", "kind", kind))?;
            let id: String = row.try_get("id")?;
            let last_seen: i64 = row.try_get("last_seen")?;
            let entry = found
                .entry((kind, key.to_owned()))
                .or_insert((id.clone(), last_seen));
            if last_seen > entry.1 {
                *entry = (id, last_seen);
            }
        }
    }
    Ok(())
}

/// Pushes the statement that reads the rows of `buckets` and `prefixes`.
fn push_lookup(builder: &mut QueryBuilder<Sqlite>, buckets: &Buckets, prefixes: &[i64]) {
    let bucket = bucket_sql();
    builder.push("SELECT id, kind, dedupe_key, last_seen, status FROM findings WHERE ");
    match buckets {
        Buckets::Listed(listed) => {
            builder.push(format_args!("{bucket} IN ("));
            let mut separated = builder.separated(", ");
            for listed_bucket in listed {
                separated.push_bind(*listed_bucket);
            }
            builder.push(")");
        }
        Buckets::Range { from, below } => {
            builder
                .push(format_args!("{bucket} >= "))
                .push_bind(*from)
                .push(format_args!(" AND {bucket} < "))
                .push_bind(*below);
        }
    }
    builder.push(" AND dedupe_prefix IN (");
    let mut separated = builder.separated(", ");
    for prefix in prefixes {
        separated.push_bind(*prefix);
    }
    builder.push(")");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use palisade_model::FindingKind;
    use sqlx::QueryBuilder;

    use super::{
        Buckets, Listing, Lookup, MAX_LISTED, Reach, bucket, bucket_sql, latest_bucket_sql, plan,
        push_lookup,
    };
    use crate::sqlite::test_support::temp_store;

    /// Seeks a plan's listed look-ups make (a bucket and a prefix each).
    fn seeks(lookups: &[Lookup]) -> usize {
        lookups
            .iter()
            .map(|lookup| match &lookup.buckets {
                Buckets::Listed(listed) => listed.len() * lookup.prefixes.len(),
                Buckets::Range { .. } => 0,
            })
            .sum()
    }

    /// How many of a plan's look-ups scan a range of buckets.
    fn scans(lookups: &[Lookup]) -> usize {
        lookups
            .iter()
            .filter(|lookup| matches!(lookup.buckets, Buckets::Range { .. }))
            .count()
    }

    /// Issue 2 (review): a batch of 500 new alerts and one observed 40 hours ago looks the
    /// new ones up in the last two windows and only the late one in the 42 windows its own
    /// report reaches: 500 × 2 + 42 seeks, where one lower bound for the whole batch made
    /// 501 × 42; and nothing is scanned.
    #[test]
    fn a_late_report_widens_only_its_own_look_up() {
        const NOW: i64 = 500_000;
        let listing = Listing {
            buckets: (NOW - 41..=NOW).collect(),
            complete: true,
        };
        let mut keys: Vec<(Reach, i64)> = (0..500).map(|p| (Reach::From(NOW - 1), p)).collect();
        keys.push((Reach::From(NOW - 41), 10_000));
        let lookups = plan(&keys, &listing);
        assert_eq!(seeks(&lookups), 500 * 2 + 42, "{lookups:?}");
        assert_eq!(scans(&lookups), 0, "{lookups:?}");
        assert!(lookups.contains(&Lookup {
            buckets: Buckets::Listed(vec![NOW - 1, NOW]),
            prefixes: (0..500).collect(),
        }));
    }

    /// A key whose reach holds no stored bucket (every stored finding last seen before its
    /// report's window) is not looked up.
    #[test]
    fn a_key_reaching_no_stored_bucket_is_not_looked_up() {
        let listing = Listing {
            buckets: vec![7, 9],
            complete: true,
        };
        let lookups = plan(&[(Reach::From(10), 1), (Reach::From(8), 2)], &listing);
        assert_eq!(
            lookups,
            [Lookup {
                buckets: Buckets::Listed(vec![9]),
                prefixes: BTreeSet::from([2]),
            }]
        );
    }

    /// Issue 2 (review): on the many-buckets path (the listing stopped at its limit), a
    /// batch mixing a kind without a window, new alerts and one alert older than the listed
    /// windows reads bucket 0 for the first, the listed windows the new alerts reach for the
    /// second, and scans only below the listed windows, for the late alert's prefix only:
    /// neither the whole index from bucket 0 nor from the late report's window on.
    #[test]
    fn the_many_buckets_path_scans_only_below_the_listing_for_late_keys() {
        const NOW: i64 = 500_000;
        let lowest_listed = NOW - MAX_LISTED as i64 + 1;
        let listing = Listing {
            buckets: (lowest_listed..=NOW).collect(),
            complete: false,
        };
        let keys = [
            (Reach::Unwindowed, 1),
            (Reach::Unwindowed, 2),
            (Reach::From(NOW - 1), 3),
            (Reach::From(NOW - 1), 4),
            (Reach::From(NOW - 100), 5),
        ];
        let lookups = plan(&keys, &listing);
        assert_eq!(
            lookups,
            [
                Lookup {
                    buckets: Buckets::Listed(vec![0]),
                    prefixes: BTreeSet::from([1, 2]),
                },
                Lookup {
                    buckets: Buckets::Listed(listing.buckets.clone()),
                    prefixes: BTreeSet::from([5]),
                },
                Lookup {
                    buckets: Buckets::Listed(vec![NOW - 1, NOW]),
                    prefixes: BTreeSet::from([3, 4]),
                },
                Lookup {
                    buckets: Buckets::Range {
                        from: NOW - 100,
                        below: lowest_listed,
                    },
                    prefixes: BTreeSet::from([5]),
                },
            ]
        );
    }

    /// The window a report's key reaches starts an hour before it was observed, whichever
    /// bucket that falls in; a kind without a window reaches bucket 0 only.
    #[test]
    fn a_reach_starts_a_window_before_the_report() {
        const HOUR: i64 = 3_600_000;
        assert_eq!(
            Reach::of(FindingKind::Alert, 10 * HOUR),
            Reach::From(9),
            "a report at the start of a window reaches the whole window before"
        );
        assert_eq!(Reach::of(FindingKind::Alert, 10 * HOUR - 1), Reach::From(8));
        assert_eq!(
            Reach::of(FindingKind::Alert, i64::MIN),
            Reach::From(i64::MIN / HOUR)
        );
        for kind in [
            FindingKind::Vulnerability,
            FindingKind::BaselineRisk,
            FindingKind::FirewallAlert,
        ] {
            assert_eq!(Reach::of(kind, 10 * HOUR), Reach::Unwindowed, "{kind:?}");
        }
    }

    /// `findings_dedupe` is on the expression the look-ups write (migration 0067 holds
    /// [`bucket_sql`]'s text: a window changed in the model fails here until a migration
    /// recreates the index), the column it replaced is gone, and the expression gives every
    /// kind's bucket as [`bucket`] does, at a window's edges and before 1970 too.
    #[tokio::test]
    async fn the_dedupe_index_is_on_the_bucket_expression() {
        let (_dir, store) = temp_store().await;
        let index: String = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'findings_dedupe'",
        )
        .fetch_one(&store.writer)
        .await
        .unwrap();
        assert!(
            index.contains(&format!("({}, dedupe_prefix)", bucket_sql())),
            "{index}"
        );
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('findings')")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert!(
            columns.iter().any(|column| column == "dedupe_prefix"),
            "{columns:?}"
        );
        assert!(
            !columns.iter().any(|column| column == "dedupe_bucket"),
            "{columns:?}"
        );
        const HOUR: i64 = 3_600_000;
        let statement = format!(
            "SELECT {} FROM (SELECT $1 AS kind, $2 AS last_seen)",
            bucket_sql()
        );
        for kind in FindingKind::ALL {
            for last_seen in [
                0,
                HOUR - 1,
                HOUR,
                10 * HOUR + 5,
                -1,
                -HOUR - 1,
                i64::MAX,
                i64::MIN,
            ] {
                let in_sql: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement.as_str()))
                    .bind(kind.as_str())
                    .bind(last_seen)
                    .fetch_one(&store.writer)
                    .await
                    .unwrap();
                assert_eq!(in_sql, bucket(kind, last_seen), "{kind:?} at {last_seen}");
            }
        }
        assert_eq!(bucket(FindingKind::Alert, 10 * HOUR + 5), 10);
    }

    /// The look-up's statements seek `findings_dedupe` (SQLite uses an index on an
    /// expression only for a statement that writes the same expression): the latest stored
    /// bucket from the index's end, listed buckets by bucket and prefix, a range of buckets
    /// by that range and prefix.
    #[tokio::test]
    async fn the_look_up_statements_seek_the_dedupe_index() {
        let (_dir, store) = temp_store().await;
        let latest: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            latest_bucket_sql()
        )))
        .bind(i64::MAX)
        .fetch_all(&store.writer)
        .await
        .unwrap();
        let details: Vec<String> = latest.into_iter().map(|(.., detail)| detail).collect();
        // Covering: the index holds the expression's value, so the probe reads no row.
        assert_eq!(
            details,
            ["SEARCH findings USING COVERING INDEX findings_dedupe (<expr><?)"]
        );
        for (buckets, expected) in [
            (
                Buckets::Listed(vec![10, 11]),
                "SEARCH findings USING INDEX findings_dedupe (<expr>=? AND dedupe_prefix=?)",
            ),
            (
                Buckets::Range { from: 3, below: 10 },
                "SEARCH findings USING INDEX findings_dedupe (<expr>>? AND <expr><?)",
            ),
        ] {
            let mut builder = QueryBuilder::new("EXPLAIN QUERY PLAN ");
            push_lookup(&mut builder, &buckets, &[1, 2, 3]);
            let plan: Vec<(i64, i64, i64, String)> = builder
                .build_query_as()
                .fetch_all(&store.writer)
                .await
                .unwrap();
            let details: Vec<String> = plan.into_iter().map(|(.., detail)| detail).collect();
            assert_eq!(details, [expected], "{buckets:?}");
        }
    }
}
