-- The fix-known flag of a vulnerability becomes a column that ingest fills
-- (`SqliteStore::insert_findings` and `apply_updates`, from the report's fixed versions),
-- instead of the `LIKE` expression that 0054 indexed.
--
-- Why: a function anywhere in an index (`LIKE` is one) makes SQLite compile every INSERT into
-- `findings` as a statement that may fail midway, so each keeps a statement journal: a copy of
-- every existing page it changes, 16 KiB each. Alerts never enter the partial index, but their
-- inserts paid for the journal all the same (ingest's bulk inserts are `INSERT OR FAIL` so
-- that they need none; see sqlite/bulk.rs).
ALTER TABLE findings ADD COLUMN fix_known INTEGER NOT NULL DEFAULT 0;
UPDATE findings SET fix_known = 1
    WHERE kind = 'vulnerability' AND body LIKE '%"fixed_versions":["%';

DROP INDEX findings_grouped_by_rule;
CREATE INDEX findings_grouped_by_rule ON findings
    (kind, cluster, rule, severity, status, category, namespace, asset_id, last_seen,
     first_seen, demo, fix_known, title)
    WHERE kind = 'vulnerability' OR kind = 'baseline_risk';
