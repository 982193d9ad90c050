-- Ingest's dedupe index holds the window of a finding's last sighting as an expression of
-- `kind` and `last_seen`, no longer as the stored `dedupe_bucket` column (0066), which is
-- dropped.
--
-- Why: the column was state derived from `last_seen`, and every writer of `last_seen` had to
-- keep it in step (ingest's insert and its update of repeats); an index on the expression
-- holds that invariant by itself, whoever writes the row. Its entries are 0066's (the bucket,
-- an integer, and the prefix), so the pages a batch dirties and the look-ups' seeks stay.
--
-- The expression is `dedupe_lookup::bucket_sql` as the store builds it from
-- `FindingKind::aggregation_window_ms` (runtime alerts: one hour; every other kind 0), and
-- the look-up writes exactly it, since SQLite uses an index on an expression only for a
-- statement with the same expression; test `the_dedupe_index_is_on_the_bucket_expression`
-- checks that this text is the store's. A change of a kind's window needs a migration
-- recreating the index with the new expression.
--
-- The column is dropped after its index (SQLite refuses to drop an indexed column; no
-- trigger or view names it). Dropping it rewrites every row of `findings`, into the WAL: on a
-- database of 300,000 alerts (482 MB, the seed example's, debug build with SQLite at
-- opt-level 3, at a load of 5) this migration took 2.2-3.3 s in three runs, and the WAL
-- held 297 MB after it (cut back by `journal_size_limit` once checkpointed).
DROP INDEX findings_dedupe;
ALTER TABLE findings DROP COLUMN dedupe_bucket;
CREATE INDEX findings_dedupe ON findings
    (CASE WHEN kind = 'alert' THEN last_seen / 3600000 ELSE 0 END, dedupe_prefix);
