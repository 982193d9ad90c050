//! A short-lived cache for the aggregates every page view shows (counters by severity, the
//! chart, groups). The store answers counters and the chart from counters it keeps at every
//! change (a few thousand rows), but groups, text search and asset filters still aggregate the
//! findings themselves, which takes a good fraction of a second with a million of them; the
//! same numbers asked again within a few seconds are served from memory instead, so the cost
//! is paid once per filter combination and interval, not once per page view.
//!
//! Stale values are served while one background task recomputes them
//! (stale-while-revalidate), so after the first view of a filter combination no page view
//! waits for a count; only values older than [`MAX_STALE`] are recomputed in the request.
//! Values that took long to compute stay fresh longer (see [`FRESH_PER_COMPUTING`]).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// How long an aggregate is fresh. Findings ingested meanwhile show up in the counters at most
/// about this much later (the table and live updates show them at once); the console's own
/// actions clear the cache so that an operator sees the effect of what they just did.
pub(crate) const TTL: Duration = Duration::from_secs(10);
/// Beyond this age a value is not shown at all: the request recomputes it.
const MAX_STALE: Duration = Duration::from_secs(300);
/// A value that took long to compute stays fresh this many times its computing time, so that
/// refreshing one key occupies at most a twentieth of a reader connection: the counters of a
/// common search term (all 125,000 matches of a million alerts, 1.3–2.5 s) were recounted
/// every 10 s, and those refreshes held readers that page views waited for.
const FRESH_PER_COMPUTING: u32 = 20;
/// The longest a value stays fresh however long it took.
const MAX_FRESH: Duration = Duration::from_secs(120);
/// Most entries kept; beyond it, the cache is emptied (filters are bounded, so this only
/// happens under unusual traffic).
const MAX_ENTRIES: usize = 4096;

struct Entry<V> {
    at: Instant,
    fresh_for: Duration,
    value: V,
    refreshing: bool,
}

/// How long a value that took `computing` stays fresh.
fn fresh_for(computing: Duration) -> Duration {
    (computing * FRESH_PER_COMPUTING).clamp(TTL, MAX_FRESH)
}

type Entries<V> = Arc<Mutex<HashMap<String, Entry<V>>>>;

/// Values by key, fresh for [`TTL`].
pub(crate) struct TtlCache<V> {
    entries: Entries<V>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        TtlCache {
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn store<V>(entries: &Entries<V>, key: String, value: V, computing: Duration) {
    let mut entries = lock(entries);
    if entries.len() >= MAX_ENTRIES {
        entries.clear();
    }
    entries.insert(
        key,
        Entry {
            at: Instant::now(),
            fresh_for: fresh_for(computing),
            value,
            refreshing: false,
        },
    );
}

impl<V: Clone + Send + 'static> TtlCache<V> {
    /// The value for `key`: fresh from the cache; stale from the cache while `compute` runs in
    /// the background; or computed now when absent or too old.
    pub(crate) async fn get_or_compute<E, F>(&self, key: String, compute: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let stale = {
            let mut entries = lock(&self.entries);
            match entries.get_mut(&key) {
                Some(entry) if entry.at.elapsed() < entry.fresh_for => {
                    return Ok(entry.value.clone());
                }
                Some(entry) if entry.at.elapsed() < MAX_STALE => {
                    let start_refresh = !entry.refreshing;
                    entry.refreshing = true;
                    Some((entry.value.clone(), start_refresh))
                }
                _ => None,
            }
        };
        match stale {
            Some((value, start_refresh)) => {
                if start_refresh {
                    let entries = Arc::clone(&self.entries);
                    tokio::spawn(async move {
                        let started = Instant::now();
                        match compute.await {
                            Ok(value) => store(&entries, key, value, started.elapsed()),
                            Err(error) => {
                                tracing::warn!(%error, "Refreshing a console aggregate failed.");
                                if let Some(entry) = lock(&entries).get_mut(&key) {
                                    entry.refreshing = false;
                                }
                            }
                        }
                    });
                }
                Ok(value)
            }
            // Computed in its own task: a request that times out or a browser that gives up
            // does not cancel the count, and the next view finds it done.
            None => {
                let entries = Arc::clone(&self.entries);
                let task = tokio::spawn(async move {
                    let started = Instant::now();
                    let value = compute.await?;
                    store(&entries, key, value.clone(), started.elapsed());
                    Ok(value)
                });
                match task.await {
                    Ok(result) => result,
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                }
            }
        }
    }

    /// Forgets everything (after a change made through the console).
    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn computes_once_within_ttl_and_again_after_clear() {
        let cache = TtlCache::<u32>::default();
        let first: Result<u32, String> = cache.get_or_compute("k".into(), async { Ok(1) }).await;
        let second: Result<u32, String> = cache.get_or_compute("k".into(), async { Ok(2) }).await;
        assert_eq!((first, second), (Ok(1), Ok(1)));
        cache.clear();
        let third: Result<u32, String> = cache.get_or_compute("k".into(), async { Ok(3) }).await;
        assert_eq!(third, Ok(3));
        let failed: Result<u32, String> = cache
            .get_or_compute("e".into(), async { Err("no".to_owned()) })
            .await;
        assert_eq!(failed, Err("no".to_owned()));
    }

    #[test]
    fn values_that_took_long_stay_fresh_longer() {
        assert_eq!(fresh_for(Duration::from_millis(30)), TTL);
        assert_eq!(fresh_for(Duration::from_secs(2)), Duration::from_secs(40));
        assert_eq!(fresh_for(Duration::from_secs(60)), MAX_FRESH);
        assert!(MAX_FRESH < MAX_STALE);
    }

    #[tokio::test]
    async fn stale_values_are_served_while_refreshing() {
        let cache = TtlCache::<u32>::default();
        store(&cache.entries, "k".into(), 1, Duration::ZERO);
        lock(&cache.entries).get_mut("k").unwrap().at = Instant::now() - TTL * 2;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stale: Result<u32, String> = cache
            .get_or_compute("k".into(), async move {
                let _ = rx.await;
                Ok(2)
            })
            .await;
        assert_eq!(stale, Ok(1), "the stale value, without waiting");
        tx.send(()).unwrap();
        for _ in 0..100 {
            if lock(&cache.entries)["k"].value == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the background refresh did not store the new value");
    }
}
