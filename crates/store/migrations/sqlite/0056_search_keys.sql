-- The distinct searched texts of the grouped kinds (vulnerabilities, baseline risks), so that a
-- text search of a grouped view tests the term against a few thousand distinct texts instead of
-- every finding, then reads the matching findings' entries of `findings_grouped_by_rule`
-- (migrations 0054, 0055), which hold rule and title (`SqliteStore::aggregate_search` and
-- `push_keyed_condition` in sqlite/console.rs).
--
-- Before, a common term's groups, counters and chart read the newest 10,000 matches through the
-- trigram index and their rows (JSON bodies included, for the LIKE re-check): 0.2–0.55 s for the
-- first view of `lib1` or `CVE-2024` among 75,000 open vulnerabilities, and lower bounds only.
--
-- - `finding_search_keys`: one row per distinct (kind, cluster, rule, title, extra), where extra
--   is what `VULNERABILITY_TEXT` (sqlite.rs) computes from a vulnerability's body (package and
--   aliases) and '' for baseline risks. A finding's text matches a term exactly when its key's
--   does, or its asset label does.
-- - `finding_search_assets`: one row per distinct (kind, cluster, asset id, asset label). An
--   asset id is a name-based UUID of the asset's kind, cluster and label (`AffectedAsset::
--   asset_id`), so the id stands for the label in `findings_grouped_by_rule`, which holds no
--   label.
--
-- Rows are only ever added: by ingest for each batch that holds findings of these kinds
-- (`SqliteStore::insert_findings`, one statement per table, skipped for batches of alerts), and
-- by the update trigger below when a finding's searched text changes. Deleting findings leaves
-- their keys; a key without findings adds no match, so the tables stay a superset of the texts
-- in `findings`, which is all that exactness needs.
--
-- Both have rowids: as rows are never deleted, the largest rowid changes exactly when a row is
-- added, so what a term hits is kept in memory while both stay the same (`KeyHits`).
CREATE TABLE finding_search_keys (
    kind    TEXT NOT NULL,
    cluster TEXT NOT NULL,
    rule    TEXT NOT NULL,
    title   TEXT NOT NULL,
    extra   TEXT NOT NULL,
    UNIQUE (kind, cluster, rule, title, extra)
);

CREATE TABLE finding_search_assets (
    kind        TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    asset_label TEXT NOT NULL,
    UNIQUE (kind, cluster, asset_id, asset_label)
);

INSERT INTO finding_search_keys (kind, cluster, rule, title, extra)
    SELECT DISTINCT kind, cluster, rule, title,
           CASE WHEN kind = 'vulnerability' THEN
               COALESCE(json_extract(body, '$.details.package'), '') || ' ' ||
               COALESCE((SELECT group_concat(value, ' ') FROM json_each(body, '$.details.aliases')), '')
           ELSE '' END
    FROM findings WHERE kind = 'vulnerability' OR kind = 'baseline_risk';

INSERT INTO finding_search_assets (kind, cluster, asset_id, asset_label)
    SELECT DISTINCT kind, cluster, asset_id, asset_label
    FROM findings WHERE kind = 'vulnerability' OR kind = 'baseline_risk';

-- 0031's trigger with the same condition (so that alerts' aggregated repeats, which set title
-- and body to the same text, pay nothing more) and two more statements.
DROP TRIGGER finding_text_on_update;
CREATE TRIGGER finding_text_on_update
AFTER UPDATE OF kind, title, rule, asset_label, body ON findings
WHEN OLD.title IS NOT NEW.title OR OLD.rule IS NOT NEW.rule
    OR OLD.asset_label IS NOT NEW.asset_label OR OLD.kind IS NOT NEW.kind
    OR (NEW.kind = 'vulnerability' AND OLD.body IS NOT NEW.body)
BEGIN
    DELETE FROM finding_text WHERE rowid = OLD.rowid;
    INSERT INTO finding_text (rowid, title, rule, asset_label, extra)
        VALUES (NEW.rowid, NEW.title, NEW.rule, NEW.asset_label,
                CASE WHEN NEW.kind = 'vulnerability' THEN
                    COALESCE(json_extract(NEW.body, '$.details.package'), '') || ' ' ||
                    COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.body, '$.details.aliases')), '')
                END);
    INSERT INTO finding_search_keys (kind, cluster, rule, title, extra)
        SELECT NEW.kind, NEW.cluster, NEW.rule, NEW.title,
               CASE WHEN NEW.kind = 'vulnerability' THEN
                   COALESCE(json_extract(NEW.body, '$.details.package'), '') || ' ' ||
                   COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.body, '$.details.aliases')), '')
               ELSE '' END
        WHERE NEW.kind = 'vulnerability' OR NEW.kind = 'baseline_risk'
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_search_assets (kind, cluster, asset_id, asset_label)
        SELECT NEW.kind, NEW.cluster, NEW.asset_id, NEW.asset_label
        WHERE NEW.kind = 'vulnerability' OR NEW.kind = 'baseline_risk'
        ON CONFLICT DO NOTHING;
END;
