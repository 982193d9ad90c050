//! One reflector per resource kind: LIST, then WATCH from the list's resource version;
//! a gone version (410) lists again, any other failure waits a bounded, growing while and
//! watches again from the last version seen.

use std::{sync::Arc, time::Duration};

use crate::{
    Error,
    cache::Store,
    client::{ApiClient, WatchTiming},
    objects::ResourceKind,
};

/// Waits that grow from `min` to `max`, doubling, until reset.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// The wait to make now; the next one is twice as long, up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// Keeps `kind` in `store` for as long as the task runs.
pub(crate) async fn reflect(
    client: Arc<ApiClient>,
    kind: ResourceKind,
    field_selector: Option<String>,
    store: Arc<Store>,
    timing: Arc<WatchTiming>,
    mut backoff: Backoff,
) {
    let selector = field_selector.as_deref();
    loop {
        let mut version = match client.list(kind, selector, &store, &timing).await {
            Ok((objects, version)) => {
                store.replace(kind, objects);
                store.mark_listed(kind);
                store
                    .stats
                    .lists
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                store.stats.record_contact(kind);
                backoff.reset();
                version
            }
            Err(error) => {
                failed(&store, kind, &error);
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        loop {
            match client
                .watch(kind, selector, &mut version, &store, &timing)
                .await
            {
                // The server ended the watch (its timeout): watch again from there.
                Ok(()) => {
                    store.stats.record_contact(kind);
                    backoff.reset();
                }
                Err(Error::Gone { .. }) => {
                    store
                        .stats
                        .relists_after_gone
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                        kind = kind.kind_name(),
                        "Kubernetes metadata: resource version gone, listing again."
                    );
                    break;
                }
                Err(error) => {
                    failed(&store, kind, &error);
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }
}

fn failed(store: &Store, kind: ResourceKind, error: &Error) {
    store.stats.record_failure(kind, error_chain(error));
}

/// The error with its causes, `: `-separated.
fn error_chain(error: &Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::watch::Backoff;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<u128> = (0..5).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
    }
}
