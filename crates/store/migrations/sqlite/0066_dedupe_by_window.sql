-- Ingest's dedupe index leads with the window of the finding's last sighting, so that a
-- batch's new findings enter the part of the index that holds the current window and leave
-- the rest of it, however large, untouched (issue 2: a sustained rate on a grown database).
--
-- Why: dedupe prefixes are hashes, so every new finding enters `findings_dedupe` (0060) at a
-- random place, and a batch of new alerts dirtied nearly every leaf page of the whole index,
-- each written whole to the WAL at commit: on a database holding 1,000,000 alerts, 18.5 MB
-- of WAL per batch of 5,000 for this index alone (docs/benchmarks.md, ingest17). Keyed by
-- (dedupe_bucket, dedupe_prefix), a batch dirties only the pages of the windows its alerts
-- fall in.
--
-- `dedupe_bucket` is, for a kind that aggregates within a window (runtime alerts, one hour:
-- `FindingKind::aggregation_window_ms`), its last sighting divided by that window (SQLite's
-- and Rust's integer division alike truncate); 0 for every other kind, which aggregates
-- whenever its key matches. Ingest keeps it with `last_seen` (`sqlite::dedupe_bucket`), and
-- looks a report up only in the buckets at or after that of (observed − window): a finding
-- last seen within the window of the report lies in one of them, as truncating division
-- keeps the order. A change of a kind's window needs a migration recomputing the column.
ALTER TABLE findings ADD COLUMN dedupe_bucket INTEGER NOT NULL DEFAULT 0;
UPDATE findings SET dedupe_bucket = last_seen / 3600000 WHERE kind = 'alert';

DROP INDEX findings_dedupe;
CREATE INDEX findings_dedupe ON findings (dedupe_bucket, dedupe_prefix);
