-- Two writes less per new finding at ingest (issue 2).
--
-- 1. Ingest records a batch's report ids before anything else, with one
--    `INSERT OR IGNORE INTO ingested_reports … RETURNING report_id` per 500 ids: the ids it
--    returns are the ones stored now, so the statement that stores a batch's new ids also names
--    its duplicates (`SqliteStore::record_report_ids`). Before, every id was looked up first and
--    the new ones inserted after aggregation, with the finding each went into. `finding_id` is
--    now left NULL and unused (nothing ever read it) but stays: `DROP COLUMN` rewrites the whole
--    table, which is never pruned (tens of millions of rows: a long start and a WAL the table's
--    size on upgrade), to save about one byte per row. The table stays what 0002 made it, the
--    report ids ever accepted, clustered on the id (WITHOUT ROWID).

-- 2. The trigram index of 0057 without its per-row sizes (`columnsize=0`): FTS5 kept a
--    `finding_text_docsize` row for every finding, which nothing reads (searches only MATCH and
--    order by rowid; no rank), written by every insert. `contentless_delete=1` needs those rows,
--    so the triggers now delete an entry with FTS5's 'delete' command and the values it was
--    indexed with: the row's title and, for a vulnerability, the same expression of its body
--    (`VULNERABILITY_TEXT` in sqlite.rs), which ingest and the update trigger index. Same
--    tokenizer and options otherwise (no positions, automerge 16).
DROP TABLE finding_text;
CREATE VIRTUAL TABLE finding_text USING fts5(
    title, extra,
    content = '', columnsize = 0, tokenize = 'trigram', detail = 'none'
);
INSERT INTO finding_text (finding_text, rank) VALUES ('automerge', 16);

INSERT INTO finding_text (rowid, title, extra)
    SELECT rowid, title,
           CASE WHEN kind = 'vulnerability' THEN
               COALESCE(json_extract(body, '$.details.package'), '') || ' ' ||
               COALESCE((SELECT group_concat(value, ' ') FROM json_each(body, '$.details.aliases')), '')
           END
    FROM findings;

-- 0057's trigger, deleting the old entry by its values.
DROP TRIGGER finding_text_on_update;
CREATE TRIGGER finding_text_on_update
AFTER UPDATE OF kind, title, rule, asset_label, body ON findings
WHEN OLD.title IS NOT NEW.title OR OLD.rule IS NOT NEW.rule
    OR OLD.asset_label IS NOT NEW.asset_label OR OLD.kind IS NOT NEW.kind
    OR (NEW.kind = 'vulnerability' AND OLD.body IS NOT NEW.body)
BEGIN
    INSERT INTO finding_text (finding_text, rowid, title, extra)
        VALUES ('delete', OLD.rowid, OLD.title,
                CASE WHEN OLD.kind = 'vulnerability' THEN
                    COALESCE(json_extract(OLD.body, '$.details.package'), '') || ' ' ||
                    COALESCE((SELECT group_concat(value, ' ') FROM json_each(OLD.body, '$.details.aliases')), '')
                END);
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

DROP TRIGGER finding_text_on_delete;
CREATE TRIGGER finding_text_on_delete AFTER DELETE ON findings
BEGIN
    INSERT INTO finding_text (finding_text, rowid, title, extra)
        VALUES ('delete', OLD.rowid, OLD.title,
                CASE WHEN OLD.kind = 'vulnerability' THEN
                    COALESCE(json_extract(OLD.body, '$.details.package'), '') || ' ' ||
                    COALESCE((SELECT group_concat(value, ' ') FROM json_each(OLD.body, '$.details.aliases')), '')
                END);
END;
