-- `findings_by_cluster` holds, after its key (kind, cluster, last_seen, id), the columns the
-- console filters a cluster's findings by beside the time (status, severity, namespace,
-- category), the first sighting the chart counts, and the rule, so that a walk of a
-- cluster's findings newest first tests the view's filters, and whether a rule holding the
-- searched term is the finding's, on the index entries instead of reading every row it
-- passes.
--
-- Why: the console lists one cluster under filters, newest first, and its default status
-- (open) was held only by `findings_by_status`, which lacks the cluster: every such walk read
-- each row it passed. A two-character term's window (the newest 5,000 findings of the
-- filters) read ≈ 100,000 rows under `namespace=team-3` with a million alerts (SQLite 3.51 at
-- the SQL level, load ≈ 6: 786-919 ms, `severity=high` 327-340 ms; three or more statements
-- per view); through this index 31-40 ms and 11-17 ms. A common term's walk for its newest
-- 10,000 matches (`sqlite/newest_matches.rs`) read every candidate's row, for the filters and
-- the LIKE re-check of findings whose rule holds the term and so match anyway (320-570 ms
-- per first view of "C2 server"); it now names this index and tests the hit rules on its
-- entries: 59 ms, 128-146 ms under a namespace or severity (load ≈ 7.7).
--
-- Cost: the entries are wider (the filters, first_seen and the rule beside the key; the same
-- number of indexes), and a status change now rewrites the entry. A repeat, which sets
-- last_seen, already rewrote it; new findings are appended at its newest end.
DROP INDEX findings_by_cluster;
CREATE INDEX findings_by_cluster ON findings
    (kind, cluster, last_seen, id, status, severity, namespace, category, first_seen, rule);
