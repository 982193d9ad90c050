-- Rule and asset label are searched through distinct-text tables for every kind, as the
-- grouped kinds' keys of 0056 are; the per-finding trigram index keeps only what is per
-- finding: title, and for vulnerabilities package and aliases (`extra`).
--
-- Why: the trigram index cost about a sixth of all CPU at alert ingest (perf, issue 2), and
-- rule and asset label repeat across many alerts (three rules and 5,000 pods for 100,000
-- bench alerts). A term now matches a finding when its title or extra holds the term (trigram
-- candidates, re-checked with LIKE), or its rule is one of the distinct rules holding it, or
-- its asset is one of the distinct assets whose label holds it (`SqliteStore::field_hits` and
-- `TextSearch` in sqlite.rs): the same case-insensitive substring match per field as before.
--
-- - `finding_search_rules`: one row per distinct (kind, cluster, rule), every kind.
-- - `finding_search_assets` (0056, grouped kinds until now): one row per distinct (kind,
--   cluster, asset id, asset label), now every kind.
--
-- As in 0056, rows are only ever added (ingest once per batch, `add_search_keys` in
-- sqlite/console.rs, and the update trigger below), so each table is a superset of the texts
-- in `findings` and its largest rowid changes exactly when a row is added.
CREATE TABLE finding_search_rules (
    kind    TEXT NOT NULL,
    cluster TEXT NOT NULL,
    rule    TEXT NOT NULL,
    UNIQUE (kind, cluster, rule)
);

INSERT INTO finding_search_rules (kind, cluster, rule)
    SELECT DISTINCT kind, cluster, rule FROM findings;

INSERT INTO finding_search_assets (kind, cluster, asset_id, asset_label)
    SELECT DISTINCT kind, cluster, asset_id, asset_label FROM findings
    WHERE kind <> 'vulnerability' AND kind <> 'baseline_risk';

-- 0051's index without rule and asset label (same options: no positions, automerge 16).
DROP TABLE finding_text;
CREATE VIRTUAL TABLE finding_text USING fts5(
    title, extra,
    content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
);
INSERT INTO finding_text (finding_text, rank) VALUES ('automerge', 16);

INSERT INTO finding_text (rowid, title, extra)
    SELECT rowid, title,
           CASE WHEN kind = 'vulnerability' THEN
               COALESCE(json_extract(body, '$.details.package'), '') || ' ' ||
               COALESCE((SELECT group_concat(value, ' ') FROM json_each(body, '$.details.aliases')), '')
           END
    FROM findings;

-- 0056's trigger: the index entry holds title and extra only, and rule and asset rows are
-- added for every kind. Same condition, so aggregated repeats that set title and body to the
-- same text pay nothing.
DROP TRIGGER finding_text_on_update;
CREATE TRIGGER finding_text_on_update
AFTER UPDATE OF kind, title, rule, asset_label, body ON findings
WHEN OLD.title IS NOT NEW.title OR OLD.rule IS NOT NEW.rule
    OR OLD.asset_label IS NOT NEW.asset_label OR OLD.kind IS NOT NEW.kind
    OR (NEW.kind = 'vulnerability' AND OLD.body IS NOT NEW.body)
BEGIN
    DELETE FROM finding_text WHERE rowid = OLD.rowid;
    INSERT INTO finding_text (rowid, title, extra)
        VALUES (NEW.rowid, NEW.title,
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
    INSERT INTO finding_search_rules (kind, cluster, rule)
        VALUES (NEW.kind, NEW.cluster, NEW.rule)
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_search_assets (kind, cluster, asset_id, asset_label)
        VALUES (NEW.kind, NEW.cluster, NEW.asset_id, NEW.asset_label)
        ON CONFLICT DO NOTHING;
END;
