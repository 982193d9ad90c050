-- Work the server asks one agent to do (host checks, rescans, fix verifications, package
-- upgrades). `spec` and `result` are the model's TaskSpec and TaskResult as JSON; `kind` is
-- the spec's tag, kept as a column for listing. A task moves pending -> running (fetched)
-- -> done or failed; one still unfinished at `deadline` fails as timed out.
CREATE TABLE agent_tasks (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    spec         TEXT NOT NULL,
    state        TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    deadline     BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    result       TEXT
);
CREATE INDEX agent_tasks_by_agent ON agent_tasks (agent_id, state, requested_at);
CREATE INDEX agent_tasks_by_deadline ON agent_tasks (state, deadline);
