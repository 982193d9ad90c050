-- `findings_by_asset` leads with a finding's generation: the rowid of its batch's first row
-- shifted right by 17 (`GENERATION_SHIFT` in sqlite.rs), so about 131,072 findings each, in
-- the order they were stored. Ingest writes it with the row and nothing changes it. A
-- condition on assets names every stored generation (`IN_EVERY_GENERATION`: each found from
-- the one before by a seek of this index), and SQLite seeks each asset in each.
--
-- Why: assets are many and new findings name them in no order, so each batch entered this
-- index all over it, and a commit wrote every leaf page of it to the WAL (and a checkpoint
-- again to the database), however large the index had grown: with 1,100,000 alerts stored a
-- commit of 20,000 new ones wrote 88 MB, 62.5 MB of it the 3,812 leaf pages of this index,
-- nearly all of them (docs/benchmarks.md), so that the ingest rate fell as the database grew.
-- Keyed by the generation first, a batch's new entries go into the newest generation's part
-- of the index only, a bounded part whatever the rest holds.
--
-- Cost, at query time: a statement on an asset's findings seeks it once per stored
-- generation (8 at a million findings) instead of once, and a text search pays that for each
-- asset its term hits. At upgrade: adding a column with a constant default does not rewrite
-- the table, but building the index reads all of it and writes the index through the WAL
-- (docs/upgrading.md gives the time and WAL growth measured).
--
-- The column's default, 0, is the generation of the rows stored before this migration, so
-- they stay one generation: splitting them would rewrite every row. Their entries are still
-- rewritten in place when one of them changes (a repeat, a rescan of a kind that does not
-- aggregate, a bulk status change), as entries of any generation are; only new findings go
-- to the newest.
ALTER TABLE findings ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
DROP INDEX findings_by_asset;
CREATE INDEX findings_by_asset ON findings
    (generation, asset_key, kind, status, severity, cluster, namespace, category, last_seen,
     first_seen);
