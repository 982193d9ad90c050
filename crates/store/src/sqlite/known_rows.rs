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
//! teaches nothing). Memory is bounded: a set past its bound is emptied and learns again,
//! which costs only the statements it saved.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use palisade_model::FindingKind;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::Result;

/// Assets remembered (key and search rows): a few megabytes at most.
const MAX_ASSETS: usize = 20_000;

/// (kind, cluster, rule) rows remembered.
const MAX_RULES: usize = 4_096;

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
    /// (kind, asset id) → the cluster and label of its search row. An asset id is a name-based
    /// UUID of the cluster and label, so one pair per id; another pair is simply not known.
    search_assets: HashMap<(FindingKind, Uuid), (Box<str>, Box<str>)>,
    search_rules: HashMap<(FindingKind, Box<str>), HashSet<Box<str>>>,
    n_rules: usize,
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
                .get(&(asset.kind, asset.asset_id))
                .is_some_and(|(cluster, label)| {
                    **cluster == *asset.cluster && **label == *asset.label
                });
            if !searched {
                batch.search_assets.push(*asset);
            }
        }
        batch.search_rules = rules
            .into_iter()
            .filter(|rule| {
                !known
                    .search_rules
                    .get(&(rule.kind, Box::from(rule.cluster)))
                    .is_some_and(|rules| rules.contains(rule.rule))
            })
            .collect();
        batch
    }

    /// Remembers what `batch` stored (or found stored), once its transaction has committed;
    /// `asset_keys` holds the keys of its assets.
    pub(super) fn learn(&self, batch: BatchRows<'_>, asset_keys: &HashMap<Uuid, i64>) {
        let mut known = self.lock();
        if known.asset_keys.len() + batch.unknown_assets.len() > MAX_ASSETS
            || known.search_assets.len() + batch.search_assets.len() > MAX_ASSETS
        {
            known.asset_keys.clear();
            known.search_assets.clear();
        }
        if known.n_rules + batch.search_rules.len() > MAX_RULES {
            known.search_rules.clear();
            known.n_rules = 0;
        }
        for id in &batch.unknown_assets {
            if let Some(key) = asset_keys.get(id) {
                known.asset_keys.insert(*id, *key);
            }
        }
        for asset in batch.search_assets {
            known
                .search_assets
                .entry((asset.kind, asset.asset_id))
                .or_insert_with(|| (asset.cluster.into(), asset.label.into()));
        }
        for rule in batch.search_rules {
            let added = known
                .search_rules
                .entry((rule.kind, rule.cluster.into()))
                .or_default()
                .insert(rule.rule.into());
            known.n_rules += usize::from(added);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // The sets are only ever a subset of what is stored, whatever a panicking holder left.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl BatchRows<'_> {
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
        assert_eq!(known.search_assets.len(), 1);
    }
}
