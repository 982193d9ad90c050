//! Computations shared while they run. The console asks for a view's counters, chart and
//! rows at once, each on a reader connection of its own, and on a first view each would
//! compute the same things (a common term's walk for its newest matches, a grouped search's
//! hits among the search keys): a request that needs a value another request is computing
//! waits for it and shares it instead, and nothing is kept once it is computed, so every
//! answer is as fresh as one the request would have computed itself.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::OnceCell;

use crate::Result;

/// One computation: set once it has finished.
type Computation<T> = Arc<OnceCell<Arc<T>>>;

/// Computations in flight by key, shared by the store's clones: the requests that arrive
/// while one runs wait for it; the first to finish forgets it. A key must name everything the
/// value depends on (the query, and the snapshot's version of the tables read when a request
/// on another snapshot could otherwise share it).
pub(super) struct InFlight<T>(Arc<Mutex<HashMap<String, Computation<T>>>>);

impl<T> InFlight<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Computation<T>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value of `key`: the one a running computation of `key` yields, else `compute`'s.
    /// When a computation fails, its waiters compute in turn.
    pub(super) async fn share<F, Fut>(&self, key: String, compute: F) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let computation = Arc::clone(self.lock().entry(key.clone()).or_default());
        let value = computation
            .get_or_try_init(|| async { Ok(Arc::new(compute().await?)) })
            .await
            .cloned();
        let mut running = self.lock();
        if running
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current, &computation))
        {
            running.remove(&key);
        }
        value
    }
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight(Arc::default())
    }
}

impl<T> Clone for InFlight<T> {
    fn clone(&self) -> Self {
        InFlight(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for InFlight<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("InFlight")
            .field("running", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::StoreError;

    #[tokio::test]
    async fn requests_at_once_share_one_computation_and_later_ones_compute_again() {
        let shared = InFlight::<usize>::default();
        let computed = AtomicUsize::new(0);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let compute = || async {
            computed.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        };
        let slow = shared.share("view".into(), || async {
            released.await.ok();
            computed.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        });
        let waiting = shared.share("view".into(), compute);
        let other = shared.share("other view".into(), compute);
        let (slow, waiting, other, ()) = tokio::join!(slow, waiting, other, async {
            tokio::task::yield_now().await;
            release.send(()).unwrap();
        });
        assert_eq!(
            (*slow.unwrap(), *waiting.unwrap(), *other.unwrap()),
            (7, 7, 7)
        );
        assert_eq!(computed.load(Ordering::SeqCst), 2, "one for each key");
        assert_eq!(*shared.share("view".into(), compute).await.unwrap(), 7);
        assert_eq!(computed.load(Ordering::SeqCst), 3, "nothing is kept");
        let failed = shared
            .share("view".into(), || async {
                Err::<usize, _>(StoreError::Corrupt {
                    table: "findings",
                    column: "severity",
                    reason: "test".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(*shared.share("view".into(), compute).await.unwrap(), 7);
    }
}
