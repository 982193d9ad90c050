-- Files the agents quarantined, as each agent last reported its whole quarantine (the agent's
-- report replaces its rows). `id` is the agent's quarantine record id; an id another agent
-- already reported is kept for that agent.
CREATE TABLE quarantine (
    id             TEXT PRIMARY KEY,
    agent_id       TEXT NOT NULL,
    original_path  TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    size           BIGINT NOT NULL,
    rule           TEXT NOT NULL,
    quarantined_at BIGINT NOT NULL,
    container_id   TEXT,
    reported_at    BIGINT NOT NULL
);
CREATE INDEX quarantine_by_agent ON quarantine (agent_id);
CREATE INDEX quarantine_by_time ON quarantine (quarantined_at DESC, id DESC);
