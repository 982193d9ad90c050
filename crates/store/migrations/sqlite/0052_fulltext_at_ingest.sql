-- New findings enter the trigram index once per ingest transaction, by one
-- `INSERT INTO finding_text … SELECT … FROM findings WHERE rowid > <the largest before>` in
-- `SqliteStore::insert_findings`, instead of by a trigger per row.
--
-- Why: FTS5 writes its pending terms out as a new segment at every statement's savepoint, so a
-- trigger fed the index a small segment per multi-row INSERT (500 rows), which automerge then
-- rewrote again and again. One statement per transaction writes one larger segment per batch.
-- Ingest is the only place that inserts findings; updates and deletes keep their triggers.
DROP TRIGGER finding_text_on_insert;
