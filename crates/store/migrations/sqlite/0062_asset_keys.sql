-- `findings_by_asset` is keyed by a small integer per asset instead of the asset's id: each
-- asset a finding names gets one in `finding_assets` when its first finding is stored (ingest
-- adds them), and findings carry it as `asset_key`. A condition on an asset id goes through
-- `finding_assets` (`asset_key = (SELECT key FROM finding_assets WHERE asset_id = …)`); the
-- `asset_id` column stays, so rows read and results are the same.
--
-- Why: assets are many and new findings name them in no order, so every batch of new findings
-- enters this index all over it, dirtying nearly every leaf page, each written whole to the WAL
-- at commit (≈ 580 of a batch's pages at 100,000 findings, docs/benchmarks.md). Since 0061 an
-- entry also holds status, severity, cluster, namespace, category and both sightings, so the
-- 36-character id was the largest part of it; an integer of 1-3 bytes in its place leaves the
-- index about a third smaller, with fewer pages to dirty and integers to compare. Replayed at
-- the SQL level (300,000 new findings in batches of 5,000 over 5,000 assets) the inserts cost
-- 16.8 µs per finding against 28.5 with the id as the key.
--
-- A key is never reused or changed: rows of `finding_assets` are never deleted.
CREATE TABLE finding_assets (
    key      INTEGER PRIMARY KEY,
    asset_id TEXT NOT NULL UNIQUE
);
INSERT INTO finding_assets (asset_id) SELECT DISTINCT asset_id FROM findings;
DROP INDEX findings_by_asset;
ALTER TABLE findings ADD COLUMN asset_key INTEGER NOT NULL DEFAULT 0;
UPDATE findings SET asset_key =
    (SELECT key FROM finding_assets WHERE finding_assets.asset_id = findings.asset_id);
CREATE INDEX findings_by_asset ON findings
    (asset_key, kind, status, severity, cluster, namespace, category, last_seen, first_seen);
