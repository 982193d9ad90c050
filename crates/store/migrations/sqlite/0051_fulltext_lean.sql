-- The trigram index of migration 0031, rebuilt leaner: it cost ingest more than the findings
-- table and all its other indexes together.
--
-- - detail=none: no token positions. Without them FTS5 cannot match phrases, so a term is
--   looked up as the AND of its trigrams (`fts_trigrams` in sqlite.rs): a superset of the rows
--   containing it, which the LIKE re-check narrows to the exact result, as before.
-- - automerge=16 (default 4): segments merge sixteen at a time instead of four, so each entry is
--   rewritten about half as often while findings stream in; a look-up reads a few more segments.
--
-- Triggers of 0031 keep writing into the table of the same name.
DROP TABLE finding_text;
CREATE VIRTUAL TABLE finding_text USING fts5(
    title, rule, asset_label, extra,
    content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
);
INSERT INTO finding_text (finding_text, rank) VALUES ('automerge', 16);

INSERT INTO finding_text (rowid, title, rule, asset_label, extra)
    SELECT rowid, title, rule, asset_label,
           CASE WHEN kind = 'vulnerability' THEN
               COALESCE(json_extract(body, '$.details.package'), '') || ' ' ||
               COALESCE((SELECT group_concat(value, ' ') FROM json_each(body, '$.details.aliases')), '')
           END
    FROM findings;
