//! The budget of agent batch bytes over a real socket: a batch takes its share before its body
//! is read and holds it until answered; beyond the budget a batch waits a moment, then gets
//! 503 with `Retry-After` and the API's error body, counted in
//! `palisade_agent_batches_deferred_total`. A body that declares no length takes the most a
//! batch may be; one that declares more than that is refused at once.

mod support;

use std::time::{Duration, Instant};

use palisade_model::{
    AffectedAsset, AgentBatch, AlertDetails, Details, FindingReport, Severity, Timestamp,
};
use palisade_server::AgentBatchBudget;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "batch-budget-test-admin-token-0123456789";
/// The budget: room for one batch of [`LARGE`] reports, not two.
const BUDGET: u64 = 64 << 10;
/// Reports in a batch of about 40 KiB.
const LARGE: usize = 80;

/// A batch of `count` alerts as the agent sends it.
fn batch(count: usize) -> Vec<u8> {
    let reports = (0..count)
        .map(|index| FindingReport {
            id: uuid::Uuid::now_v7(),
            observed_at: Timestamp::now(),
            severity: Severity::High,
            rule: "Terminal shell in container".into(),
            title: format!("shell {index} {}", "x".repeat(300)),
            asset: AffectedAsset {
                cluster: "prod".into(),
                pod: Some(format!("web-{index}")),
                ..Default::default()
            },
            details: Details::Alert(AlertDetails::default()),
            demo: false,
        })
        .collect();
    serde_json::to_vec(&AgentBatch {
        sequence: 1,
        reports,
        assets: Vec::new(),
        losses: None,
        facts: None,
    })
    .unwrap()
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/agent/batches"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A batch request whose body stops after its first bytes, on a connection of its own: its
/// handler holds its share while it waits for the rest. `length` is its Content-Length, or
/// none (a chunked body).
async fn stalled(base: &str, token: &str, length: Option<usize>) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (framing, start) = match length {
        Some(length) => (
            format!("Content-Length: {length}"),
            "{\"sequence\"".to_owned(),
        ),
        None => (
            "Transfer-Encoding: chunked".to_owned(),
            "b\r\n{\"sequence\"\r\n".to_owned(),
        ),
    };
    let head = format!(
        "POST /api/v1/agent/batches HTTP/1.1\r\nHost: palisade\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n{start}"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The handler takes its share once it has the headers (the token is verified and cached
    // already): a moment, well within the second a batch waits for a share.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
}

/// Sends `body` and expects it deferred: after waiting about the second a batch waits for a
/// share, 503 with a Retry-After of a few seconds and the API's error body.
async fn expect_deferred(client: &reqwest::Client, base: &str, token: &str, body: Vec<u8>) {
    let started = Instant::now();
    let response = send(client, base, token, body).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = response.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=5).contains(&retry_after), "Retry-After: {retry_after}");
    let (_, body) = support::read(response).await;
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("as many agent batches as it may"),
        "{body}"
    );
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&waited),
        "deferred after {waited:?}"
    );
}

/// Sends `body` until it is taken in (a share comes back once its request's handler ended).
async fn until_taken(client: &reqwest::Client, base: &str, token: &str, body: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = send(client, base, token, body.to_vec()).await.status();
        if status == StatusCode::OK {
            return;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "the share of a dropped request never came back"
        );
    }
}

/// `palisade_agent_batches_deferred_total`.
async fn deferred_total(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("palisade_agent_batches_deferred_total "))
        .unwrap_or_else(|| panic!("no deferral counter in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn batches_beyond_the_budget_are_deferred_with_retry_after() {
    let server = support::start_with(ADMIN, |state| {
        assert!(state.set_agent_batch_budget(AgentBatchBudget::from_bytes(BUDGET).unwrap()));
    })
    .await;
    let client = reqwest::Client::new();
    let agent = support::enroll(&client, &server.base, ADMIN, "node-1", "node-1").await;
    let large = batch(LARGE);
    assert!(
        (32 << 10..BUDGET as usize).contains(&large.len()),
        "{}",
        large.len()
    );

    // Within the budget, one after the other: taken in.
    for _ in 0..2 {
        assert_eq!(
            send(&client, &server.base, &agent.token, large.clone())
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(deferred_total(&client, &server.base).await, 0);

    // One large batch held: a second is deferred, a small one still fits.
    let holder = stalled(&server.base, &agent.token, Some(large.len())).await;
    expect_deferred(&client, &server.base, &agent.token, large.clone()).await;
    assert_eq!(
        send(&client, &server.base, &agent.token, batch(1))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(deferred_total(&client, &server.base).await, 1);
    // Its connection gone, its share comes back.
    drop(holder);
    until_taken(&client, &server.base, &agent.token, &large).await;

    // A body without a length takes the most a batch may be: here the whole budget, so even
    // the smallest batch waits.
    let deferred = deferred_total(&client, &server.base).await;
    let holder = stalled(&server.base, &agent.token, None).await;
    expect_deferred(&client, &server.base, &agent.token, batch(1)).await;
    assert_eq!(deferred_total(&client, &server.base).await, deferred + 1);
    drop(holder);
    until_taken(&client, &server.base, &agent.token, &large).await;
    let deferred = deferred_total(&client, &server.base).await;

    // A length over the body limit is refused at once, before any body is read, and takes
    // nothing.
    let mut oversized = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/agent/batches HTTP/1.1\r\nHost: palisade\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        agent.token,
        palisade_model::MAX_BATCH_BYTES + 1
    );
    oversized.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        oversized.read_to_string(&mut answer),
    )
    .await
    .expect("an oversized batch was not answered before its body")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");

    // A caller without an agent token is refused before its body, and spends nothing: while
    // its request stalls, an agent's batch is taken in at once.
    let _refused = stalled(&server.base, ADMIN, None).await;
    let started = Instant::now();
    assert_eq!(
        send(&client, &server.base, &agent.token, batch(1))
            .await
            .status(),
        StatusCode::OK
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(deferred_total(&client, &server.base).await, deferred);
}
