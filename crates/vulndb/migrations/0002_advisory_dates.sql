-- When an advisory was published and last modified, as its feed writes the dates (OSV's
-- `published`/`modified`, updateinfo's `issued`/`updated`); NULL where the feed has none.
ALTER TABLE vulns ADD COLUMN published TEXT;
ALTER TABLE vulns ADD COLUMN modified TEXT;
