-- What grouping vulnerabilities and baseline risks by rule (vulnerability id, check id) reads,
-- in two covering indexes, so that a page of groups reads index entries of its own groups only
-- (`SqliteStore::groups`, sqlite/console.rs).
--
-- Before, the first view of the vulnerabilities page grouped every finding of the section
-- (75,000 open in one cluster: 0.3–0.8 s, 750,000: seconds), reading each row and its JSON
-- body for the fix-known flag; a severity filter read five rows for each that matched.
--
-- - The fix-known flag is an indexed expression (`FIX_KNOWN` in sqlite/console.rs, which
--   statements must spell the same way for SQLite to read it from the index): whether a
--   vulnerability's body lists a fixed version. The body is serde_json output without
--   whitespace and always carries `fixed_versions`. A virtual generated column was tried
--   first: SQLite computes those at every insert, and scanning each alert's body for the flag
--   cost ingest 5 µs of CPU per new alert (34.4 -> 39.8 µs, `cargo bench -p palisade --bench
--   ingest -- 100000`); an index expression is computed only for rows the partial index
--   takes.
-- - `findings_grouped_by_severity` yields a severity's rules in order, so the rules of a page
--   (most severe first, then by rule) are found by walking it from the cursor.
-- - `findings_grouped_by_rule` yields one rule's findings, so a page's groups are aggregated
--   from their own entries, and "does this rule have a more severe finding" is one seek.
--
-- Both hold every column the console filters on, so neither reads the table. Both are
-- partial: alerts and firewall alerts (the ingest hot path) never enter them. SQLite decides
-- whether a partial index applies when it prepares a statement, before values are bound, so
-- statements that name these indexes spell the kind as a literal.
CREATE INDEX findings_grouped_by_severity ON findings
    (kind, cluster, severity, rule, status, category, namespace, asset_id, last_seen,
     first_seen, demo)
    WHERE kind = 'vulnerability' OR kind = 'baseline_risk';

CREATE INDEX findings_grouped_by_rule ON findings
    (kind, cluster, rule, severity, status, category, namespace, asset_id, last_seen,
     first_seen, demo, CASE WHEN body LIKE '%"fixed_versions":["%' THEN 1 ELSE 0 END, title)
    WHERE kind = 'vulnerability' OR kind = 'baseline_risk';
