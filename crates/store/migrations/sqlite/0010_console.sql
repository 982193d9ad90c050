-- The console's additions: grouping by rule, fix verifications and firewall rules.

-- Vulnerabilities are shown grouped by vulnerability id and baseline risks by check id, and
-- "handle similar" selects by rule: all three read findings of one kind and cluster by rule.
CREATE INDEX findings_by_rule ON findings (kind, cluster, rule);

-- Requests to rescan an asset and close a vulnerability only if it is really gone. The
-- agent side fills in state and completed_at.
CREATE TABLE fix_verifications (
    id           TEXT PRIMARY KEY,
    finding_id   TEXT NOT NULL,
    asset_id     TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    state        TEXT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX fix_verifications_by_finding ON fix_verifications (finding_id, requested_at);
CREATE INDEX fix_verifications_by_state ON fix_verifications (state, requested_at);

-- Palisade's own firewall rules (source object -> destination object). `body` is the
-- submitted rule as JSON; name is unique so that alerts can name the rule that fired.
CREATE TABLE firewall_rules (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    priority   BIGINT NOT NULL,
    body       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    demo       INTEGER NOT NULL
);
