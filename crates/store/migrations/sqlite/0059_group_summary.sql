-- A summary of every group of the grouped tables (vulnerabilities by id, baseline risks by
-- check) per cluster and status, kept exact in the transaction of every change to their
-- findings (sqlite/group_summary.rs), and the package of each vulnerability finding.
--
-- Before, a grouped table sorted by an aggregate (affected assets, findings, open, last seen)
-- aggregated every finding of the section and then sorted: 107-158 ms for 75,000 open
-- vulnerabilities in 2,000 groups (docs/benchmarks.md, "Sorted grouped tables"). The summary
-- holds those aggregates, so such a page sorts a cluster's 2,000 summary rows.

-- The package a vulnerability finding is about (`VulnerabilityDetails::package`), which ingest
-- fills ('' for the other kinds): the grouped tables show and sort by their groups' packages,
-- read from `findings_grouped_by_rule` like every other column of a group.
ALTER TABLE findings ADD COLUMN package TEXT NOT NULL DEFAULT '';
UPDATE findings SET package = COALESCE(json_extract(body, '$.details.package'), '')
    WHERE kind = 'vulnerability';

DROP INDEX findings_grouped_by_rule;
CREATE INDEX findings_grouped_by_rule ON findings
    (kind, cluster, rule, severity, status, category, namespace, asset_id, last_seen,
     first_seen, demo, fix_known, title, package)
    WHERE kind = 'vulnerability' OR kind = 'baseline_risk';

-- One row per (kind, cluster, status, rule) holding findings, and one per (kind, cluster,
-- rule) with status '' over every status (distinct assets do not add up across statuses).
-- Columns as `group_aggregates` (sqlite/console.rs) computes them from the findings.
CREATE TABLE finding_group_summary (
    kind          TEXT NOT NULL,
    cluster       TEXT NOT NULL,
    status        TEXT NOT NULL,
    rule          TEXT NOT NULL,
    title         TEXT NOT NULL,
    severity      INTEGER NOT NULL,
    category      TEXT NOT NULL,
    findings      BIGINT NOT NULL,
    open          BIGINT NOT NULL,
    assets        BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    fix_available INTEGER NOT NULL,
    package       TEXT NOT NULL,
    packages      BIGINT NOT NULL,
    PRIMARY KEY (kind, cluster, status, rule)
) WITHOUT ROWID;

-- Groups whose findings changed since their summary rows were computed. The triggers below
-- add the groups an UPDATE or DELETE touches; every statement that changes findings of these
-- kinds is followed, in its transaction, by the refresh that recomputes the groups listed here
-- and empties the table, so it is empty whenever a transaction commits. Readers use the
-- summary only while it is empty (else they group the findings).
CREATE TABLE finding_group_stale (
    kind    TEXT NOT NULL,
    cluster TEXT NOT NULL,
    rule    TEXT NOT NULL,
    PRIMARY KEY (kind, cluster, rule)
) WITHOUT ROWID;

-- Ingest inserts findings without triggers (0050) and names its groups to the refresh itself.
CREATE TRIGGER finding_group_stale_on_update
AFTER UPDATE OF kind, cluster, rule, status, severity, category, title, asset_id, last_seen,
    fix_known, package ON findings
WHEN OLD.kind IN ('vulnerability', 'baseline_risk') OR NEW.kind IN ('vulnerability', 'baseline_risk')
BEGIN
    INSERT OR IGNORE INTO finding_group_stale (kind, cluster, rule)
        VALUES (OLD.kind, OLD.cluster, OLD.rule);
    INSERT OR IGNORE INTO finding_group_stale (kind, cluster, rule)
        VALUES (NEW.kind, NEW.cluster, NEW.rule);
END;

CREATE TRIGGER finding_group_stale_on_delete
AFTER DELETE ON findings
WHEN OLD.kind IN ('vulnerability', 'baseline_risk')
BEGIN
    INSERT OR IGNORE INTO finding_group_stale (kind, cluster, rule)
        VALUES (OLD.kind, OLD.cluster, OLD.rule);
END;

-- Every group is listed as stale: `SqliteStore::open` refreshes them after the migrations, with
-- the statement every later refresh runs (one definition of a group's columns).
INSERT INTO finding_group_stale (kind, cluster, rule)
    SELECT DISTINCT kind, cluster, rule FROM findings
    WHERE kind = 'vulnerability' OR kind = 'baseline_risk';
