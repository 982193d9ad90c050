-- Full-text index of the text the console and the API search: title, rule, asset label, and
-- for vulnerabilities the package and every alias (`extra`).
--
-- FTS5 with the trigram tokenizer: every three-character sequence is a token, so a quoted
-- phrase of the search term finds the rows that contain it as a substring (case-folded)
-- without scanning `findings`. Contentless (content=''): the text is in `findings` already;
-- entries are keyed by the finding's rowid, and contentless_delete=1 lets the triggers drop
-- an entry by rowid alone. (The rowid of `findings` is stable: nothing runs VACUUM, which
-- could renumber a table without an INTEGER PRIMARY KEY.)
--
-- The store re-checks every candidate with the LIKE conditions it uses for terms shorter than
-- three characters, so both paths return the same rows; the index only narrows the scan.
--
-- Cost at ingest: one index insert per new finding. Aggregating a repeat (count, last_seen,
-- severity, and title/body set to the latest report) re-indexes a finding only when a
-- searched text actually changes.
CREATE VIRTUAL TABLE finding_text USING fts5(
    title, rule, asset_label, extra,
    content = '', contentless_delete = 1, tokenize = 'trigram'
);

-- `extra` of a vulnerability: its package, then its aliases, separated by spaces. The store's
-- LIKE path (sqlite.rs, VULNERABILITY_TEXT) reads the same expression from `body`.
INSERT INTO finding_text (rowid, title, rule, asset_label, extra)
    SELECT rowid, title, rule, asset_label,
           CASE WHEN kind = 'vulnerability' THEN
               COALESCE(json_extract(body, '$.details.package'), '') || ' ' ||
               COALESCE((SELECT group_concat(value, ' ') FROM json_each(body, '$.details.aliases')), '')
           END
    FROM findings;

CREATE TRIGGER finding_text_on_insert AFTER INSERT ON findings
BEGIN
    INSERT INTO finding_text (rowid, title, rule, asset_label, extra)
        VALUES (NEW.rowid, NEW.title, NEW.rule, NEW.asset_label,
                CASE WHEN NEW.kind = 'vulnerability' THEN
                    COALESCE(json_extract(NEW.body, '$.details.package'), '') || ' ' ||
                    COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.body, '$.details.aliases')), '')
                END);
END;

-- Only the searched columns, and only when their text changes: the ingest path sets title and
-- body on every aggregated repeat, mostly to the same text.
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
END;

CREATE TRIGGER finding_text_on_delete AFTER DELETE ON findings
BEGIN
    DELETE FROM finding_text WHERE rowid = OLD.rowid;
END;
