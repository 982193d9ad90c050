-- Palisade schema, version 1. Portable SQL: the same statements run on PostgreSQL, except
-- where noted. Times are milliseconds since the Unix epoch (BIGINT); ids are UUID text;
-- booleans are 0/1 integers; structured values are JSON text.

-- All four kinds of finding share one table, so listing, filtering, handling and aggregation
-- are written once. `dedupe_key` is FindingReport::dedupe_key.
CREATE TABLE findings (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL,
    severity    INTEGER NOT NULL,
    status      TEXT NOT NULL,
    category    TEXT NOT NULL,
    rule        TEXT NOT NULL,
    title       TEXT NOT NULL,
    namespace   TEXT,
    asset_id    TEXT NOT NULL,
    asset_label TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    demo        INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX findings_dedupe ON findings (kind, dedupe_key, last_seen);
CREATE INDEX findings_by_last_seen ON findings (kind, last_seen, id);
CREATE INDEX findings_by_cluster ON findings (kind, cluster, last_seen, id);
CREATE INDEX findings_by_status ON findings (kind, status, last_seen, id);
CREATE INDEX findings_by_severity ON findings (kind, severity, last_seen, id);
CREATE INDEX findings_by_asset ON findings (asset_id, kind, status);

-- Every report id ever accepted, so that a resent batch is not stored twice.
-- finding_id is NULL for reports suppressed by a whitelist rule.
CREATE TABLE ingested_reports (
    report_id   TEXT PRIMARY KEY,
    finding_id  TEXT,
    received_at BIGINT NOT NULL
);

CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    finding_id TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    text       TEXT NOT NULL
);
CREATE INDEX notes_by_finding ON notes (finding_id, created_at);

CREATE TABLE assets (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    cluster    TEXT NOT NULL,
    name       TEXT NOT NULL,
    labels     TEXT NOT NULL,
    attributes TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX assets_by_cluster ON assets (cluster, kind, name);

CREATE TABLE whitelist_rules (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    hits       BIGINT NOT NULL
);

CREATE TABLE exceptions (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit_log (at, id);

-- API tokens. The secret is stored only as an argon2 hash.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at BIGINT,
    revoked      INTEGER NOT NULL,
    agent_id     TEXT
);

CREATE TABLE agents (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    cluster   TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    facts     TEXT NOT NULL
);
