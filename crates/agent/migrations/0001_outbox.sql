-- The agent's outbox: reports waiting for the server's acknowledgement.
CREATE TABLE outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    report   TEXT NOT NULL
);
