-- What each agent reported lost (its sensor's kernel events, its firewall's connect reports),
-- summed over its processes, with the newest process's counters: `NodeLosses` as JSON. Only
-- `Store::count_agent_losses` writes it; `upsert_agent` leaves it alone.
ALTER TABLE agents ADD COLUMN losses TEXT NOT NULL DEFAULT '{"sensor_events":0,"connect_reports":0}';
