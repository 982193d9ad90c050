-- Ingest looks findings up by dedupe key through a narrow index: the key's first 60 bits as an
-- integer (`dedupe_prefix`, which ingest fills: `sqlite::dedupe_prefix`), instead of the index on
-- (kind, dedupe_key, last_seen).
--
-- Why: dedupe keys are hashes, so every new finding enters that index at a random place, and
-- each batch of new findings dirtied nearly every leaf page of it, each written whole to the WAL
-- at commit. Its entries held the kind, 32 hex characters and the last sighting (about 55
-- bytes); an integer and the rowid take about 20, so the index has a third of the pages to dirty
-- and compares integers instead of strings. The last sighting left the index too, so a repeat
-- that moves it no longer moves the finding's index entry. A look-up reads the rows of its
-- prefix and keeps those whose kind and whole key match: a shared prefix costs a row read, never
-- a wrong match.
--
-- Keys are lowercase hex (FindingReport::dedupe_key); one that is not gets prefix 0, as in Rust.
ALTER TABLE findings ADD COLUMN dedupe_prefix INTEGER NOT NULL DEFAULT 0;
UPDATE findings SET dedupe_prefix =
    (instr('0123456789abcdef', substr(dedupe_key, 1, 1)) - 1) * 72057594037927936 +
    (instr('0123456789abcdef', substr(dedupe_key, 2, 1)) - 1) * 4503599627370496 +
    (instr('0123456789abcdef', substr(dedupe_key, 3, 1)) - 1) * 281474976710656 +
    (instr('0123456789abcdef', substr(dedupe_key, 4, 1)) - 1) * 17592186044416 +
    (instr('0123456789abcdef', substr(dedupe_key, 5, 1)) - 1) * 1099511627776 +
    (instr('0123456789abcdef', substr(dedupe_key, 6, 1)) - 1) * 68719476736 +
    (instr('0123456789abcdef', substr(dedupe_key, 7, 1)) - 1) * 4294967296 +
    (instr('0123456789abcdef', substr(dedupe_key, 8, 1)) - 1) * 268435456 +
    (instr('0123456789abcdef', substr(dedupe_key, 9, 1)) - 1) * 16777216 +
    (instr('0123456789abcdef', substr(dedupe_key, 10, 1)) - 1) * 1048576 +
    (instr('0123456789abcdef', substr(dedupe_key, 11, 1)) - 1) * 65536 +
    (instr('0123456789abcdef', substr(dedupe_key, 12, 1)) - 1) * 4096 +
    (instr('0123456789abcdef', substr(dedupe_key, 13, 1)) - 1) * 256 +
    (instr('0123456789abcdef', substr(dedupe_key, 14, 1)) - 1) * 16 +
    (instr('0123456789abcdef', substr(dedupe_key, 15, 1)) - 1) * 1
    WHERE dedupe_key GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*';

DROP INDEX findings_dedupe;
CREATE INDEX findings_dedupe ON findings (dedupe_prefix);
