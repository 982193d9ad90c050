-- Claims are leases. A claimed task belongs to one attempt: the agent process (`session`, a
-- random id each agent process sends with its claims) holds it until `lease_until`, which
-- the agent's heartbeats extend. A task whose lease expired, or whose agent came back as a
-- new process, is pending again (up to a bounded number of attempts); every attempt and how
-- it ended is kept in `agent_task_attempts`, and a result from an attempt that is not the
-- task's current one is refused.
ALTER TABLE agent_tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_tasks ADD COLUMN session TEXT;
ALTER TABLE agent_tasks ADD COLUMN lease_until BIGINT;
CREATE INDEX agent_tasks_by_lease ON agent_tasks (state, lease_until);

CREATE TABLE agent_task_attempts (
    task_id     TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    session     TEXT,
    claimed_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    outcome     TEXT,
    PRIMARY KEY (task_id, attempt)
);
