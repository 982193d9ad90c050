-- One row per imported source (a path or a URL); re-importing it replaces its records.
CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    location TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    imported_at INTEGER NOT NULL
);

-- One row per advisory; only the fields matching and reporting use.
CREATE TABLE vulns (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    vuln_id TEXT NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT NOT NULL,
    severity TEXT,
    cvss_vector TEXT,
    cvss_score REAL,
    withdrawn INTEGER NOT NULL
);
CREATE INDEX vulns_source ON vulns (source_id);

-- One row per affected package of an advisory; ranges and versions are compact JSON.
CREATE TABLE affected (
    vuln INTEGER NOT NULL REFERENCES vulns (id) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    purl TEXT,
    ranges TEXT NOT NULL,
    versions TEXT NOT NULL,
    status TEXT
);
CREATE INDEX affected_vuln ON affected (vuln);
