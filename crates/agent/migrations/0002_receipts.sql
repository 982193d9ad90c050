-- The latest receipt of each source: a mark an observer gave out with reports, written in the
-- same transaction as them (Outbox::push_with_receipts), so that it is here exactly when they
-- are. Not removed when the reports are acknowledged.
CREATE TABLE receipts (
    source TEXT PRIMARY KEY,
    serial INTEGER NOT NULL
);
