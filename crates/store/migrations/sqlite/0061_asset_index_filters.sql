-- `findings_by_asset` holds the columns the console filters and aggregates read, so that the
-- findings of the assets a search term hits (their labels hold it) are counted, filtered and
-- ordered from the index alone, without reading their rows.
--
-- Why: a term held by asset labels (`team-7/`: the 250 pods of a namespace, 50,000 alerts) is
-- common, so its counters walked the time index reading each match's row (180-220 ms for the
-- newest 10,000), and under a filter its matches are few or none (all of `team-7`'s alerts
-- have one severity), so the page and the chart walked the time index to its end, reading
-- every row: 2.3-22 s for the first view of `q=team-7/&severity=high` (docs/benchmarks.md,
-- search10). Through this index the assets' findings under the view's filters are listed
-- (`field_hits::push_candidates`): none there, so nothing is walked; and a term only asset
-- labels and a few titles hold has its newest matches read from the index's entries
-- (`sqlite/newest_matches.rs`): 40-57 ms for the newest 10,000 of those 50,000 alerts,
-- 0.2-1.2 ms for the severity no alert of theirs has, against 460-1,200 ms reading the rows.
--
-- Cost: the index is wider (severity, cluster, namespace, category and both sightings beside
-- asset, kind and status), and an aggregated repeat, which sets last_seen, first_seen and
-- severity, now rewrites its entry as it rewrites those of the time-ordered indexes.
DROP INDEX findings_by_asset;
CREATE INDEX findings_by_asset ON findings
    (asset_id, kind, status, severity, cluster, namespace, category, last_seen, first_seen);
