//! A short-lived cache for the aggregates every page view shows (counters by severity, the
//! chart, groups). Counting a million findings takes SQLite a good fraction of a second; the
//! same numbers asked again within a few seconds are served from memory instead, so the cost
//! is paid once per filter combination and interval, not once per page view.

use std::{
    collections::HashMap,
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long an aggregate is reused. Findings ingested meanwhile show up in the counters at
/// most this much later (the table and live updates show them at once); the console's own
/// actions clear the cache so that an operator sees the effect of what they just did.
pub(crate) const TTL: Duration = Duration::from_secs(10);
/// Most entries kept; beyond it, the cache is emptied (filters are bounded, so this only
/// happens under unusual traffic).
const MAX_ENTRIES: usize = 4096;

/// Values by key, each valid for [`TTL`].
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> TtlCache<V> {
    /// The cached value for `key`, or `compute`'s result, stored.
    pub(crate) async fn get_or_compute<E, F>(&self, key: String, compute: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some((at, value)) = self.lock().get(&key)
            && at.elapsed() < TTL
        {
            return Ok(value.clone());
        }
        let value = compute.await?;
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets everything (after a change made through the console).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn computes_once_within_ttl_and_again_after_clear() {
        let cache = TtlCache::<u32>::default();
        let first: Result<u32, ()> = cache.get_or_compute("k".into(), async { Ok(1) }).await;
        let second: Result<u32, ()> = cache.get_or_compute("k".into(), async { Ok(2) }).await;
        assert_eq!((first, second), (Ok(1), Ok(1)));
        cache.clear();
        let third: Result<u32, ()> = cache.get_or_compute("k".into(), async { Ok(3) }).await;
        assert_eq!(third, Ok(3));
        let failed: Result<u32, &str> = cache.get_or_compute("e".into(), async { Err("no") }).await;
        assert_eq!(failed, Err("no"));
    }
}
