//! The real agent against a server that defers its first batches (503 with `Retry-After`, as
//! a server whose batch budget is spent answers): the agent keeps them in its outbox, waits
//! what the server asked, and sends them again; every alert is stored exactly once, and the
//! batches taken in carry the outbox in order. The agent declares every batch's length, and
//! counts the deferrals in its link status for `palisade agent --status`.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use palisade_model::{AgentBatch, FindingKind, FindingReport};
use palisade_notify::Notifier;
use palisade_server::{AppState, router, serve};
use palisade_store::{FindingQuery, SqliteStore, Store};

/// Batches deferred before the server takes them in: the first batch, twice.
const DEFERRED: usize = 2;
/// The shortest wait the agent takes for a deferral, whatever the `Retry-After`.
const MIN_WAIT: Duration = Duration::from_secs(1);
const ALERTS: u32 = 30;

/// What the server saw of the agent's batches.
#[derive(Default)]
struct Seen {
    /// When each deferral was answered.
    deferred_at: Vec<Instant>,
    /// When each batch after the deferrals arrived.
    arrived_at: Vec<Instant>,
    /// The batches taken in: their sequence and report ids.
    taken: Vec<(u64, Vec<uuid::Uuid>)>,
    /// The `Retry-After` the deferrals send, in seconds.
    retry_after: u64,
    /// Batches sent without a `Content-Length`, which the server refuses (411).
    without_length: usize,
}

/// Defers the first [`DEFERRED`] batches, then passes them on, noting what was taken in.
async fn defer_first(seen: Arc<Mutex<Seen>>, request: Request, next: Next) -> Response {
    if request.uri().path() != "/api/v1/agent/batches" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if !parts.headers.contains_key(header::CONTENT_LENGTH) {
        seen.lock().unwrap().without_length += 1;
    }
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let batch: AgentBatch<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    let ids = batch
        .reports
        .iter()
        .map(|report| report["id"].as_str().unwrap().parse().unwrap())
        .collect();
    if seen.lock().unwrap().deferred_at.len() < DEFERRED {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": {"code": "unavailable", "message": "busy"}})),
        )
            .into_response();
        let mut seen = seen.lock().unwrap();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seen.retry_after));
        seen.deferred_at.push(Instant::now());
        return response;
    }
    seen.lock().unwrap().arrived_at.push(Instant::now());
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status() == StatusCode::OK {
        seen.lock().unwrap().taken.push((batch.sequence, ids));
    }
    response
}

#[tokio::test]
async fn deferred_batches_are_sent_again_after_retry_after_each_alert_once() {
    for waited in deferred_waits(1).await {
        assert!(
            (Duration::from_secs(1)..Duration::from_secs(2)).contains(&waited),
            "sent again after {waited:?}"
        );
    }
}

/// A `Retry-After: 0` (a proxy's, say) does not have the agent send a batch of up to 32 MiB
/// again in a tight loop: it waits its shortest wait.
#[tokio::test]
async fn a_retry_after_of_zero_still_waits() {
    for waited in deferred_waits(0).await {
        assert!(
            (MIN_WAIT..MIN_WAIT + Duration::from_secs(1)).contains(&waited),
            "sent again after {waited:?}"
        );
    }
}

/// Runs the agent against a server that defers its first batch [`DEFERRED`] times with
/// `Retry-After: retry_after`; checks that every alert is stored once, and returns how long
/// the agent waited after each deferral.
async fn deferred_waits(retry_after: u64) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("palisade.db"))
            .await
            .unwrap(),
    );
    let state = AppState::new(store.clone(), Notifier::start(Default::default()))
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen {
        retry_after,
        ..Seen::default()
    }));
    let deferring = Arc::clone(&seen);
    let app = router(state).layer(axum::middleware::from_fn(move |request, next| {
        defer_first(Arc::clone(&deferring), request, next)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, app, None, std::future::pending()));

    let mut config = support::agent_config(&base, store.as_ref(), dir.path()).await;
    config.batch_size = 10;
    // One batch at a time, so that the deferrals are the first batch's: with two in flight
    // the second may be taken in while the first is deferred, and is then sent again (a
    // duplicate the server counts), which would blur what this test checks.
    config.batches_in_flight = 1;
    let alerts: Vec<FindingReport> = (0..ALERTS)
        .map(palisade_testdata::findings::shell_alert)
        .collect();
    let outbox = palisade_agent::Outbox::open(&config.data_dir)
        .await
        .unwrap();
    outbox.push(&alerts).await.unwrap();
    let data_dir = config.data_dir.clone();
    let agent = support::RunningAgent::start(config).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let taken: usize = seen
            .lock()
            .unwrap()
            .taken
            .iter()
            .map(|(_, ids)| ids.len())
            .sum();
        if taken >= alerts.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{taken} alerts taken in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.stop().await;

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.deferred_at.len(), DEFERRED);
    assert_eq!(seen.without_length, 0);
    // What `palisade agent --status` shows: every deferral, the last one's time.
    let link = palisade_agent::LinkStatus::read(&data_dir)
        .unwrap()
        .unwrap();
    assert_eq!(link.batches_deferred, DEFERRED as u64);
    let last_deferred_at = link.last_deferred_at.unwrap();
    assert!(link.started_at <= last_deferred_at, "{link:?}");
    assert!(
        last_deferred_at <= palisade_model::Timestamp::now(),
        "{link:?}"
    );
    // The waits after each deferral (the agent's own backoff starts at 100 ms).
    let resent_at = [seen.deferred_at[1], seen.arrived_at[0]];
    let waits = seen
        .deferred_at
        .iter()
        .zip(resent_at)
        .map(|(deferred_at, resent_at)| resent_at - *deferred_at)
        .collect();
    // The batches taken in, by sequence, carry every alert once, in outbox order (among the
    // reports of the agent's own scans, which start at once).
    let expected: Vec<uuid::Uuid> = alerts.iter().map(|alert| alert.id).collect();
    let mut taken = seen.taken;
    taken.sort_by_key(|(sequence, _)| *sequence);
    let ids: Vec<uuid::Uuid> = taken
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .filter(|id| expected.contains(id))
        .collect();
    assert_eq!(ids, expected);
    let page = store
        .list_findings(FindingKind::Alert, &FindingQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), alerts.len());
    let mut titles: Vec<&str> = page
        .items
        .iter()
        .map(|finding| finding.title.as_str())
        .collect();
    titles.sort_unstable();
    titles.dedup();
    assert_eq!(titles.len(), alerts.len());
    waits
}
