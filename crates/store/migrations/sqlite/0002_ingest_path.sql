-- Schema version 2: a cheaper ingest path.
--
-- Every stored finding touched every index; the severity index served only severity filters,
-- which a scan of the time-ordered indexes answers as well for a page of results, so it goes.
DROP INDEX findings_by_severity;

-- The idempotency table is looked up and appended to by report id only: clustering the rows on
-- that key (SQLite's WITHOUT ROWID) keeps one B-tree instead of a table plus its key index.
-- Reporters use time-ordered (v7) ids, so new ids append at the end of it.
CREATE TABLE ingested_reports_v2 (
    report_id   TEXT PRIMARY KEY,
    finding_id  TEXT,
    received_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO ingested_reports_v2 (report_id, finding_id, received_at)
    SELECT report_id, finding_id, received_at FROM ingested_reports;
DROP TABLE ingested_reports;
ALTER TABLE ingested_reports_v2 RENAME TO ingested_reports;
