-- The outbox keeps a push's reports as runs of consecutive entries, a row per run, instead of
-- a row per report: a batch of thousands of reports is read and, once acknowledged, deleted
-- in a few rows. Deleting a row per report rewrote every leaf page of the batch into the WAL
-- (about the batch's size again), and reading them cost a row each; a run's text lives in
-- overflow pages that a delete only puts on the free list.
--
-- `last_sequence` is the sequence number of the run's last entry: its entries are numbered
-- `last_sequence - entries + 1` to `last_sequence`, and `reports` holds their JSON documents,
-- one per line (compact JSON has no raw line break), in that order. AUTOINCREMENT keeps the
-- largest number ever given out, so a number is never given out twice, even after the outbox
-- was emptied.
CREATE TABLE outbox_runs (
    last_sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    entries       INTEGER NOT NULL CHECK (entries > 0),
    reports       TEXT NOT NULL
);
-- Entries of an older outbox become runs of one, with their sequence numbers.
INSERT INTO outbox_runs (last_sequence, entries, reports)
SELECT sequence, 1, report FROM outbox ORDER BY sequence;
-- Numbering goes on after the largest number the old table gave out (its entries may all
-- have been acknowledged and deleted).
DELETE FROM sqlite_sequence WHERE name = 'outbox_runs';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'outbox_runs', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
