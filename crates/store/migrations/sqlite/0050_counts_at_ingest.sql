-- The ingest path adds the findings it inserts to `finding_counts` itself, with one upsert per
-- counter row a batch touches (SqliteStore::count_inserted), in the same transaction as the
-- inserts. The insert trigger did the same with one upsert per finding, which cost more than
-- any index of `findings` and a sixth of the whole ingest. Ingest is the only statement that
-- inserts findings; updates and deletes keep their triggers.
DROP TRIGGER finding_counts_on_insert;
