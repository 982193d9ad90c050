-- Counters of findings, so that the console's counters by severity and its chart read a few
-- thousand rows instead of every finding of a cluster (a million alerts took SQLite seconds
-- to count).
--
-- One row per combination of the columns the console filters on, with the hour (ms / 3.6e6)
-- of first_seen (the chart) and of last_seen (the time-range filter). `namespace` is '' for
-- findings without one.
--
-- Triggers keep the counters: every statement that inserts, changes or deletes a finding
-- (ingest, aggregation, whitelist, ignore, handle, exceptions, and any path added later)
-- updates them in the same transaction, so they cannot drift from the findings table.
CREATE TABLE finding_counts (
    kind       TEXT NOT NULL,
    cluster    TEXT NOT NULL,
    status     TEXT NOT NULL,
    severity   INTEGER NOT NULL,
    category   TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    first_hour BIGINT NOT NULL,
    last_hour  BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (kind, cluster, status, severity, category, namespace, first_hour, last_hour)
) WITHOUT ROWID;

INSERT INTO finding_counts
    (kind, cluster, status, severity, category, namespace, first_hour, last_hour, n)
    SELECT kind, cluster, status, severity, category, COALESCE(namespace, ''),
           first_seen / 3600000, last_seen / 3600000, COUNT(*)
    FROM findings
    GROUP BY kind, cluster, status, severity, category, COALESCE(namespace, ''),
             first_seen / 3600000, last_seen / 3600000;

CREATE TRIGGER finding_counts_on_insert AFTER INSERT ON findings
BEGIN
    INSERT INTO finding_counts
        (kind, cluster, status, severity, category, namespace, first_hour, last_hour, n)
        VALUES (NEW.kind, NEW.cluster, NEW.status, NEW.severity, NEW.category,
                COALESCE(NEW.namespace, ''), NEW.first_seen / 3600000, NEW.last_seen / 3600000, 1)
        ON CONFLICT (kind, cluster, status, severity, category, namespace, first_hour, last_hour)
        DO UPDATE SET n = n + 1;
END;

-- Aggregating a repeat sets severity, first_seen and last_seen on every update; the counters
-- change only when a counted value or an hour actually changes.
CREATE TRIGGER finding_counts_on_update
AFTER UPDATE OF kind, cluster, status, severity, category, namespace, first_seen, last_seen
ON findings
WHEN OLD.kind IS NOT NEW.kind OR OLD.cluster IS NOT NEW.cluster
    OR OLD.status IS NOT NEW.status OR OLD.severity IS NOT NEW.severity
    OR OLD.category IS NOT NEW.category OR OLD.namespace IS NOT NEW.namespace
    OR OLD.first_seen / 3600000 IS NOT NEW.first_seen / 3600000
    OR OLD.last_seen / 3600000 IS NOT NEW.last_seen / 3600000
BEGIN
    UPDATE finding_counts SET n = n - 1
        WHERE kind = OLD.kind AND cluster = OLD.cluster AND status = OLD.status
          AND severity = OLD.severity AND category = OLD.category
          AND namespace = COALESCE(OLD.namespace, '')
          AND first_hour = OLD.first_seen / 3600000 AND last_hour = OLD.last_seen / 3600000;
    DELETE FROM finding_counts
        WHERE kind = OLD.kind AND cluster = OLD.cluster AND status = OLD.status
          AND severity = OLD.severity AND category = OLD.category
          AND namespace = COALESCE(OLD.namespace, '')
          AND first_hour = OLD.first_seen / 3600000 AND last_hour = OLD.last_seen / 3600000
          AND n = 0;
    INSERT INTO finding_counts
        (kind, cluster, status, severity, category, namespace, first_hour, last_hour, n)
        VALUES (NEW.kind, NEW.cluster, NEW.status, NEW.severity, NEW.category,
                COALESCE(NEW.namespace, ''), NEW.first_seen / 3600000, NEW.last_seen / 3600000, 1)
        ON CONFLICT (kind, cluster, status, severity, category, namespace, first_hour, last_hour)
        DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER finding_counts_on_delete AFTER DELETE ON findings
BEGIN
    UPDATE finding_counts SET n = n - 1
        WHERE kind = OLD.kind AND cluster = OLD.cluster AND status = OLD.status
          AND severity = OLD.severity AND category = OLD.category
          AND namespace = COALESCE(OLD.namespace, '')
          AND first_hour = OLD.first_seen / 3600000 AND last_hour = OLD.last_seen / 3600000;
    DELETE FROM finding_counts
        WHERE kind = OLD.kind AND cluster = OLD.cluster AND status = OLD.status
          AND severity = OLD.severity AND category = OLD.category
          AND namespace = COALESCE(OLD.namespace, '')
          AND first_hour = OLD.first_seen / 3600000 AND last_hour = OLD.last_seen / 3600000
          AND n = 0;
END;
