-- The outbox's identity: a random id made once with the file, so that what the agent records
-- outside it about what it delivered (the firewall's pinned counter stream: the last epoch and
-- who delivered it) names this outbox, and another agent, or this one re-installed with a new
-- outbox, tells that outbox from its own.
CREATE TABLE identity (
    id TEXT NOT NULL
);
INSERT INTO identity (id) VALUES (lower(hex(randomblob(16))));
