//! What ingest has seen committed in the tables whose rows are only ever added: each asset's
//! `asset_key` (`finding_assets`, migration 0062) and the distinct rules and asset labels that
//! text search tests terms against (`finding_search_rules`, `finding_search_assets`, migration
//! 0057).
//!
//! Every batch of new findings needs the keys of its assets and must add its rules and asset
//! labels to the search tables. In SQL alone that was a look-up of every asset of the batch
//! and two statements re-reading the batch's new rows, each testing every distinct row for a
//! conflict, on the one writer connection, although nearly every asset and rule of a batch
//! was stored long before (issue 2: the search tables alone took 17–28 ms of the writer's
//! 200–230 ms per batch of 5,000 new alerts). No statement deletes or changes these rows, so
//! a row once seen committed is there for good: ingest asks SQL only about what this store
//! has not seen, and learns a batch's rows after its commit, never before (a batch rolled back
//! teaches nothing).
//!
//! Memory is bounded by entries and by bytes, per set: the asset keys, and each kind's search
//! assets and search rules apart (a cluster's thousands of CVE ids must not empty the alerts'
//! rules, nor search rows the asset keys). A set past its bound is emptied and learns again,
//! which costs only the statements it saved. Rules, clusters and labels come from agents, as
//! long as a batch body allows: a text longer than [`MAX_REMEMBERED_TEXT`] is never
//! remembered, so its row is inserted with `ON CONFLICT DO NOTHING` by every batch that
//! names it, as before ingest remembered anything.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use palisade_model::FindingKind;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::Result;

/// Asset keys remembered, and likewise each kind's search assets.
const MAX_ASSETS: usize = 20_000;

/// Each kind's (cluster, rule) rows remembered.
const MAX_RULES: usize = 4_096;

/// The longest rule, cluster or asset label remembered, in bytes: longer ones are rare and
/// would let an agent fill the memory with few entries.
const MAX_REMEMBERED_TEXT: usize = 512;

/// The text (rules, clusters, labels) one kind's search assets or search rules hold, in bytes:
/// 20,000 assets of a real cluster take about 1 MiB; eight such sets at most.
const MAX_TEXT_BYTES: usize = 2 << 20;

/// Rows per multi-row `INSERT` (four parameters each).
const ROWS_PER_STATEMENT: usize = 500;

/// A `finding_search_assets` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct SearchAsset<'a> {
    pub(super) kind: FindingKind,
    pub(super) cluster: &'a str,
    pub(super) asset_id: Uuid,
    pub(super) label: &'a str,
}

/// A `finding_search_rules` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct SearchRule<'a> {
    pub(super) kind: FindingKind,
    pub(super) cluster: &'a str,
    pub(super) rule: &'a str,
}

/// The rows seen committed, shared by every clone of the store.
#[derive(Debug, Default, Clone)]
pub(super) struct KnownRows(Arc<Mutex<Known>>);

#[derive(Debug, Default)]
struct Known {
    asset_keys: HashMap<Uuid, i64>,
    search_assets: HashMap<FindingKind, SearchAssets>,
    search_rules: HashMap<FindingKind, SearchRules>,
}

/// One kind's `finding_search_assets` rows: asset id → its cluster and label. An asset id is
/// a name-based UUID of the cluster and label, so one pair per id; another pair is simply not
/// known.
#[derive(Debug, Default)]
struct SearchAssets {
    rows: HashMap<Uuid, (Box<str>, Box<str>)>,
    text_bytes: usize,
}

/// One kind's `finding_search_rules` rows: cluster → its rules.
#[derive(Debug, Default)]
struct SearchRules {
    rows: HashMap<Box<str>, HashSet<Box<str>>>,
    n_rules: usize,
    text_bytes: usize,
}

/// What one batch of new findings needs stored beside them, worked out from the batch and
/// what is known; [`KnownRows::learn`] takes it back after the commit.
#[derive(Debug, Default)]
pub(super) struct BatchRows<'a> {
    /// The key of every asset of the batch whose key is known.
    pub(super) asset_keys: HashMap<Uuid, i64>,
    /// The batch's assets whose key is not known.
    pub(super) unknown_assets: Vec<Uuid>,
    search_assets: Vec<SearchAsset<'a>>,
    search_rules: Vec<SearchRule<'a>>,
}

impl KnownRows {
    /// Splits the distinct assets and search rows of a batch's new findings into what is known
    /// committed and what is not.
    pub(super) fn batch<'a>(
        &self,
        assets: impl IntoIterator<Item = SearchAsset<'a>>,
        rules: impl IntoIterator<Item = SearchRule<'a>>,
    ) -> BatchRows<'a> {
        let assets: HashSet<SearchAsset<'a>> = assets.into_iter().collect();
        let rules: HashSet<SearchRule<'a>> = rules.into_iter().collect();
        let known = self.lock();
        let mut batch = BatchRows::default();
        let mut sorted = HashSet::with_capacity(assets.len());
        for asset in &assets {
            // Another kind's row of the same asset has sorted its key already.
            if sorted.insert(asset.asset_id) {
                match known.asset_keys.get(&asset.asset_id) {
                    Some(key) => {
                        batch.asset_keys.insert(asset.asset_id, *key);
                    }
                    None => batch.unknown_assets.push(asset.asset_id),
                }
            }
            let searched = known
                .search_assets
                .get(&asset.kind)
                .is_some_and(|known| known.contains(asset));
            if !searched {
                batch.search_assets.push(*asset);
            }
        }
        batch.search_rules = rules
            .into_iter()
            .filter(|rule| {
                !known
                    .search_rules
                    .get(&rule.kind)
                    .is_some_and(|known| known.contains(rule))
            })
            .collect();
        batch
    }

    /// Remembers what `batch` stored (or found stored), once its transaction has committed;
    /// `asset_keys` holds the keys of its assets.
    pub(super) fn learn(&self, batch: BatchRows<'_>, asset_keys: &HashMap<Uuid, i64>) {
        let mut known = self.lock();
        if known.asset_keys.len() + batch.unknown_assets.len() > MAX_ASSETS {
            known.asset_keys.clear();
        }
        for id in &batch.unknown_assets {
            if let Some(key) = asset_keys.get(id) {
                known.asset_keys.insert(*id, *key);
            }
        }
        for asset in batch.search_assets {
            if remembered(asset.cluster) && remembered(asset.label) {
                known
                    .search_assets
                    .entry(asset.kind)
                    .or_default()
                    .learn(&asset);
            }
        }
        for rule in batch.search_rules {
            if remembered(rule.cluster) && remembered(rule.rule) {
                known
                    .search_rules
                    .entry(rule.kind)
                    .or_default()
                    .learn(&rule);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // The sets are only ever a subset of what is stored, whatever a panicking holder left.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a text is short enough to be remembered.
fn remembered(text: &str) -> bool {
    text.len() <= MAX_REMEMBERED_TEXT
}

/// Whether a set holding `entries` and `text_bytes` must be emptied before it takes an entry
/// of `adding_bytes` more.
fn full(entries: usize, max_entries: usize, text_bytes: usize, adding_bytes: usize) -> bool {
    entries >= max_entries || text_bytes + adding_bytes > MAX_TEXT_BYTES
}

impl SearchAssets {
    fn contains(&self, asset: &SearchAsset<'_>) -> bool {
        self.rows
            .get(&asset.asset_id)
            .is_some_and(|(cluster, label)| **cluster == *asset.cluster && **label == *asset.label)
    }

    /// Remembers `asset`'s row, unless its id's row is remembered already.
    fn learn(&mut self, asset: &SearchAsset<'_>) {
        if self.rows.contains_key(&asset.asset_id) {
            return;
        }
        let bytes = asset.cluster.len() + asset.label.len();
        if full(self.rows.len(), MAX_ASSETS, self.text_bytes, bytes) {
            *self = Self::default();
        }
        self.rows
            .insert(asset.asset_id, (asset.cluster.into(), asset.label.into()));
        self.text_bytes += bytes;
    }
}

impl SearchRules {
    fn contains(&self, rule: &SearchRule<'_>) -> bool {
        self.rows
            .get(rule.cluster)
            .is_some_and(|rules| rules.contains(rule.rule))
    }

    /// Remembers `rule`'s row.
    fn learn(&mut self, rule: &SearchRule<'_>) {
        if self.contains(rule) {
            return;
        }
        // Counting the cluster's text although it may be held already keeps this a bound.
        let bytes = rule.cluster.len() + rule.rule.len();
        if full(self.n_rules, MAX_RULES, self.text_bytes, bytes) {
            *self = Self::default();
        }
        if !self.rows.contains_key(rule.cluster) {
            self.rows.insert(rule.cluster.into(), HashSet::new());
            self.text_bytes += rule.cluster.len();
        }
        if let Some(rules) = self.rows.get_mut(rule.cluster) {
            rules.insert(rule.rule.into());
            self.n_rules += 1;
            self.text_bytes += rule.rule.len();
        }
    }
}

impl BatchRows<'_> {
    /// How many (search assets, search rules) the batch adds, not known to be stored.
    #[cfg(test)]
    pub(super) fn search_rows_to_add(&self) -> (usize, usize) {
        (self.search_assets.len(), self.search_rules.len())
    }

    /// Adds the search rows not known to be stored (a conflict means another batch stored
    /// one meanwhile): one statement per table and [`ROWS_PER_STATEMENT`] rows, none when all
    /// are known.
    pub(super) async fn add_search_rows(&self, connection: &mut SqliteConnection) -> Result<()> {
        for chunk in self.search_rules.chunks(ROWS_PER_STATEMENT) {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "INSERT INTO finding_search_rules (kind, cluster, rule) ",
            );
            builder.push_values(chunk, |mut row, rule| {
                row.push_bind(rule.kind.as_str())
                    .push_bind(rule.cluster)
                    .push_bind(rule.rule);
            });
            builder.push(" ON CONFLICT DO NOTHING");
            builder.build().execute(&mut *connection).await?;
        }
        for chunk in self.search_assets.chunks(ROWS_PER_STATEMENT) {
            let mut builder = QueryBuilder::<Sqlite>::new(
                "INSERT INTO finding_search_assets (kind, cluster, asset_id, asset_label) ",
            );
            builder.push_values(chunk, |mut row, asset| {
                row.push_bind(asset.kind.as_str())
                    .push_bind(asset.cluster)
                    .push_bind(asset.asset_id.to_string())
                    .push_bind(asset.label);
            });
            builder.push(" ON CONFLICT DO NOTHING");
            builder.build().execute(&mut *connection).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(id: u128, label: &str) -> SearchAsset<'_> {
        SearchAsset {
            kind: FindingKind::Alert,
            cluster: "c",
            asset_id: Uuid::from_u128(id),
            label,
        }
    }

    fn rule(rule: &str) -> SearchRule<'_> {
        SearchRule {
            kind: FindingKind::Alert,
            cluster: "c",
            rule,
        }
    }

    #[test]
    fn only_rows_learnt_after_a_commit_are_known() {
        let known = KnownRows::default();
        let batch = known.batch([asset(1, "a"), asset(1, "a"), asset(2, "b")], [rule("r")]);
        assert_eq!(batch.unknown_assets.len(), 2);
        assert_eq!(
            (batch.search_assets.len(), batch.search_rules.len()),
            (2, 1)
        );
        // Not learnt (the batch rolled back, say): still unknown.
        drop(batch);
        let batch = known.batch([asset(1, "a"), asset(2, "b")], [rule("r")]);
        assert_eq!(batch.unknown_assets.len(), 2);
        let keys = HashMap::from([(Uuid::from_u128(1), 7), (Uuid::from_u128(2), 8)]);
        known.learn(batch, &keys);

        let batch = known.batch([asset(1, "a"), asset(3, "c")], [rule("r"), rule("s")]);
        assert_eq!(batch.asset_keys, HashMap::from([(Uuid::from_u128(1), 7)]));
        assert_eq!(batch.unknown_assets, vec![Uuid::from_u128(3)]);
        assert_eq!(batch.search_assets, vec![asset(3, "c")]);
        assert_eq!(batch.search_rules, vec![rule("s")]);
    }

    #[test]
    fn another_label_or_kind_of_a_known_asset_is_not_known() {
        let known = KnownRows::default();
        let batch = known.batch([asset(1, "a")], []);
        known.learn(batch, &HashMap::from([(Uuid::from_u128(1), 7)]));
        let vulnerability = SearchAsset {
            kind: FindingKind::Vulnerability,
            ..asset(1, "a")
        };
        let batch = known.batch([asset(1, "other"), vulnerability], []);
        assert!(batch.unknown_assets.is_empty(), "the key is the asset id's");
        let mut search_assets = batch.search_assets.clone();
        search_assets.sort_by_key(|asset| (asset.kind.as_str(), asset.label));
        assert_eq!(search_assets, vec![asset(1, "other"), vulnerability]);
    }

    #[test]
    fn a_full_set_is_emptied_and_learns_again() {
        let known = KnownRows::default();
        let ids: Vec<u128> = (0..MAX_ASSETS as u128).collect();
        let batch = known.batch(ids.iter().map(|id| asset(*id, "x")), []);
        let keys: HashMap<Uuid, i64> = ids.iter().map(|id| (Uuid::from_u128(*id), 1)).collect();
        known.learn(batch, &keys);
        assert_eq!(known.lock().asset_keys.len(), MAX_ASSETS);
        let batch = known.batch([asset(u128::MAX, "y")], []);
        known.learn(batch, &HashMap::from([(Uuid::from_u128(u128::MAX), 2)]));
        let known = known.lock();
        assert_eq!(known.asset_keys.len(), 1);
        assert_eq!(known.search_assets[&FindingKind::Alert].rows.len(), 1);
    }

    /// Issue 2: a compromised agent's long rule names must not make ingest hold gigabytes.
    #[test]
    fn a_long_text_is_not_remembered_and_the_text_held_stays_under_its_bound() {
        let known = KnownRows::default();
        let long = "r".repeat(MAX_REMEMBERED_TEXT + 1);
        let batch = known.batch([asset(1, &long)], [rule(&long)]);
        known.learn(batch, &HashMap::from([(Uuid::from_u128(1), 7)]));
        let batch = known.batch([asset(1, &long)], [rule(&long)]);
        assert_eq!(batch.asset_keys.len(), 1, "the key is the asset id's");
        assert_eq!(
            (batch.search_assets.len(), batch.search_rules.len()),
            (1, 1),
            "a long label and rule are inserted again (ON CONFLICT DO NOTHING)"
        );

        // Rules of the longest remembered length, batch after batch, past the text bound.
        let texts: Vec<String> = (0..2 * MAX_TEXT_BYTES / MAX_REMEMBERED_TEXT)
            .map(|n| format!("{n:0>width$}", width = MAX_REMEMBERED_TEXT))
            .collect();
        let mut emptied = false;
        for chunk in texts.chunks(500) {
            let batch = known.batch([], chunk.iter().map(|text| rule(text)));
            known.learn(batch, &HashMap::new());
            let known = known.lock();
            let rules = &known.search_rules[&FindingKind::Alert];
            let held: usize = rules
                .rows
                .iter()
                .map(|(cluster, rules)| {
                    cluster.len() + rules.iter().map(|r| r.len()).sum::<usize>()
                })
                .sum();
            assert!(
                held <= rules.text_bytes,
                "{held} counted as {}",
                rules.text_bytes
            );
            assert!(rules.text_bytes <= MAX_TEXT_BYTES, "{}", rules.text_bytes);
            assert!(rules.n_rules <= MAX_RULES);
            emptied |= rules.n_rules < chunk.len();
        }
        assert!(emptied, "the set was emptied on reaching its bound");
        // Those held since the set was last emptied are known.
        let held: Vec<String> = known.lock().search_rules[&FindingKind::Alert].rows["c"]
            .iter()
            .map(|rule| rule.to_string())
            .collect();
        assert!(!held.is_empty());
        let batch = known.batch([], held.iter().map(|text| rule(text)));
        assert!(batch.search_rules.is_empty(), "the rules held are known");
    }

    /// Issue 2: a cluster's thousands of CVE ids must not keep emptying the alerts' rules,
    /// nor search rows the asset keys.
    #[test]
    fn each_kind_and_set_has_its_own_bound() {
        let known = KnownRows::default();
        let batch = known.batch([], [rule("shell")]);
        known.learn(batch, &HashMap::new());
        let cves: Vec<String> = (0..2 * MAX_RULES)
            .map(|n| format!("CVE-2026-{n}"))
            .collect();
        let vulnerabilities = cves.iter().map(|cve| SearchRule {
            kind: FindingKind::Vulnerability,
            ..rule(cve)
        });
        let batch = known.batch([], vulnerabilities);
        known.learn(batch, &HashMap::new());
        assert!(known.batch([], [rule("shell")]).search_rules.is_empty());

        // Each asset's search rows of two kinds: more rows than MAX_ASSETS, fewer assets.
        let ids: Vec<u128> = (0..MAX_ASSETS as u128 * 3 / 4).collect();
        let rows = ids.iter().flat_map(|id| {
            let alert = asset(*id, "x");
            [
                alert,
                SearchAsset {
                    kind: FindingKind::Vulnerability,
                    ..alert
                },
            ]
        });
        let batch = known.batch(rows.clone(), []);
        let keys: HashMap<Uuid, i64> = ids.iter().map(|id| (Uuid::from_u128(*id), 1)).collect();
        known.learn(batch, &keys);
        let batch = known.batch(rows, []);
        assert_eq!(batch.asset_keys.len(), ids.len());
        assert!(batch.unknown_assets.is_empty());
        assert!(batch.search_assets.is_empty());
    }
}
