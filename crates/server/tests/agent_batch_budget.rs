//! The budget of agent batch bytes over a real socket: a batch takes its share before its body
//! is read and holds it until answered; beyond the budget a batch waits a moment, then gets
//! 503 with `Retry-After` and the API's error body, counted in
//! `palisade_agent_batches_deferred_total`. One agent holds at most its share of the budget:
//! beyond it, its batch is deferred at once, and another agent's batch still fits. A body
//! must declare its length (411 without one) and arrive within its deadline (408 after it,
//! its share given back); one that declares more than a batch may be is refused at once.

mod support;

use std::time::{Duration, Instant};

use palisade_model::{
    AffectedAsset, AgentBatch, AlertDetails, Details, FindingReport, Severity, Timestamp,
};
use palisade_server::AgentBatchBudget;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "batch-budget-test-admin-token-0123456789";
const MIB: u64 = 1 << 20;
/// The smallest budget: two of the largest batches; an agent's share is one of them.
const BUDGET: u64 = 64 * MIB;
/// The largest batch a request may declare.
const LARGEST: u64 = palisade_model::MAX_BATCH_BYTES as u64;
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
async fn stalled(base: &str, token: &str, length: Option<u64>) -> TcpStream {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://"))
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

/// The answer on `stream` (its head and its body, as long as it says), within `limit`.
async fn answer(stream: &mut TcpStream, limit: Duration) -> String {
    let read = async {
        let mut answer = Vec::new();
        let mut buffer = [0; 4096];
        loop {
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|length| length.trim().parse::<usize>().ok());
                if length.is_some_and(|length| body.len() >= length) {
                    return text;
                }
            }
            let read = stream.read(&mut buffer).await.unwrap();
            if read == 0 {
                return text;
            }
            answer.extend_from_slice(&buffer[..read]);
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?}"))
}

/// Why a batch is deferred.
#[derive(Debug, Clone, Copy)]
enum Deferred {
    /// The budget is spent: after waiting about the second a batch waits for a share.
    Budget,
    /// Its agent holds its whole share: at once.
    AgentShare,
}

/// Sends `body` and expects it deferred for `cause`: 503 with a Retry-After of a few seconds
/// and the API's error body.
async fn expect_deferred(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: Vec<u8>,
    cause: Deferred,
) {
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
    let (message, waits) = match cause {
        Deferred::Budget => (
            "as many agent batches as it may",
            Duration::from_millis(900)..Duration::from_secs(5),
        ),
        Deferred::AgentShare => (
            "as many bytes as one agent may",
            Duration::ZERO..Duration::from_millis(900),
        ),
    };
    assert!(
        body["error"]["message"].as_str().unwrap().contains(message),
        "{cause:?}: {body}"
    );
    assert!(
        waits.contains(&waited),
        "{cause:?}: deferred after {waited:?}"
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

/// Sends `body` and expects it taken in at once.
async fn expect_taken_at_once(client: &reqwest::Client, base: &str, token: &str, body: Vec<u8>) {
    let started = Instant::now();
    assert_eq!(
        send(client, base, token, body).await.status(),
        StatusCode::OK
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "taken in after {:?}",
        started.elapsed()
    );
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

async fn start(budget: u64) -> support::Running {
    support::start_with(ADMIN, |state| {
        assert!(state.set_agent_batch_budget(AgentBatchBudget::from_bytes(budget).unwrap()));
    })
    .await
}

#[tokio::test]
async fn batches_beyond_the_budget_are_deferred_with_retry_after() {
    let server = start(BUDGET).await;
    let base = server.base.as_str();
    let client = reqwest::Client::new();
    let mut agents = Vec::new();
    for name in ["node-1", "node-2", "node-3"] {
        agents.push(
            support::enroll(&client, base, ADMIN, name, name)
                .await
                .token,
        );
    }
    let [first, second, third] = [&agents[0], &agents[1], &agents[2]];
    let large = batch(LARGE);
    assert!(
        (32 << 10..64 << 10).contains(&large.len()),
        "{}",
        large.len()
    );

    // Within the budget, one after the other: taken in.
    for _ in 0..2 {
        expect_taken_at_once(&client, base, first, large.clone()).await;
    }
    assert_eq!(deferred_total(&client, base).await, 0);

    // The first agent holds its whole share: its next batch is deferred at once, another
    // agent's is taken in beside it.
    let first_holder = stalled(base, first, Some(LARGEST)).await;
    expect_deferred(&client, base, first, batch(1), Deferred::AgentShare).await;
    expect_taken_at_once(&client, base, second, large.clone()).await;
    // With the second agent's share held as well, the budget is spent: a third agent's batch
    // waits, then is deferred.
    let second_holder = stalled(base, second, Some(LARGEST)).await;
    expect_deferred(&client, base, third, batch(1), Deferred::Budget).await;
    assert_eq!(deferred_total(&client, base).await, 2);
    // Their connections gone, their shares come back.
    drop(first_holder);
    until_taken(&client, base, third, &large).await;
    drop(second_holder);
    until_taken(&client, base, first, &large).await;
    until_taken(&client, base, second, &large).await;
    let deferred = deferred_total(&client, base).await;

    // A body without a length is refused at once, before it is read, and takes nothing.
    let mut chunked = stalled(base, first, None).await;
    let answer_text = answer(&mut chunked, Duration::from_secs(5)).await;
    assert!(answer_text.starts_with("HTTP/1.1 411"), "{answer_text}");
    assert!(answer_text.contains("\"length_required\""), "{answer_text}");
    assert!(answer_text.contains("Content-Length"), "{answer_text}");
    expect_taken_at_once(&client, base, first, large.clone()).await;

    // A length over the body limit is refused at once, before any body is read, and takes
    // nothing.
    let mut oversized = stalled(base, first, Some(LARGEST + 1)).await;
    let answer_text = answer(&mut oversized, Duration::from_secs(5)).await;
    assert!(answer_text.starts_with("HTTP/1.1 413"), "{answer_text}");
    assert!(
        answer_text.contains("\"payload_too_large\""),
        "{answer_text}"
    );

    // A caller without an agent token is refused before its body, and spends nothing: while
    // its requests for the whole budget stall, an agent's batch is taken in at once.
    let _refused = [
        stalled(base, ADMIN, Some(LARGEST)).await,
        stalled(base, ADMIN, Some(LARGEST)).await,
    ];
    expect_taken_at_once(&client, base, first, batch(1)).await;
    assert_eq!(deferred_total(&client, base).await, deferred);
}

/// One node whose bodies stall holds at most its share, whatever it sends: here four of the
/// largest batches, the whole default budget; beyond its share, each is deferred at once, and
/// another agent's batch is taken in at once.
#[tokio::test]
async fn one_agent_cannot_defer_another() {
    let server = start(AgentBatchBudget::DEFAULT_BYTES).await;
    let base = server.base.as_str();
    let client = reqwest::Client::new();
    let stuck = support::enroll(&client, base, ADMIN, "stuck", "stuck").await;
    let other = support::enroll(&client, base, ADMIN, "other", "other").await;

    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(stalled(base, &stuck.token, Some(LARGEST)).await);
    }
    let mut deferred = holders.split_off(2);
    for stream in &mut deferred {
        let answer_text = answer(stream, Duration::from_millis(900)).await;
        assert!(answer_text.starts_with("HTTP/1.1 503"), "{answer_text}");
        assert!(
            answer_text.to_ascii_lowercase().contains("retry-after: "),
            "{answer_text}"
        );
        assert!(
            answer_text.contains("as many bytes as one agent may (64 MiB)"),
            "{answer_text}"
        );
    }
    expect_taken_at_once(&client, base, &other.token, batch(LARGE)).await;
    assert_eq!(deferred_total(&client, base).await, 2);
    drop(holders);
}

/// A body that stops arriving is cut at its deadline (10 s for a body of up to 10 MiB) with
/// 408 and the API's error body, and its share comes back: a batch that did not fit beside
/// the stalled ones is taken in.
#[tokio::test]
async fn a_stalled_body_is_cut_at_its_deadline_and_its_share_released() {
    let server = start(BUDGET).await;
    let base = server.base.as_str();
    let client = reqwest::Client::new();
    let agent = support::enroll(&client, base, ADMIN, "slow", "slow").await;
    let large = batch(LARGE);

    // Stalled bodies of 10 MiB or less, 8 KiB short of the agent's share of 32 MiB.
    let started = Instant::now();
    let mut stalls = Vec::new();
    for length in [10 * MIB, 10 * MIB, 10 * MIB, 2 * MIB - (8 << 10)] {
        stalls.push(stalled(base, &agent.token, Some(length)).await);
    }
    expect_deferred(
        &client,
        base,
        &agent.token,
        large.clone(),
        Deferred::AgentShare,
    )
    .await;

    for stream in &mut stalls {
        let answer_text = answer(stream, Duration::from_secs(20)).await;
        assert!(answer_text.starts_with("HTTP/1.1 408"), "{answer_text}");
        assert!(answer_text.contains("\"request_timeout\""), "{answer_text}");
        assert!(
            answer_text.contains("did not arrive within 10 s"),
            "{answer_text}"
        );
    }
    let cut_after = started.elapsed();
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(15)).contains(&cut_after),
        "cut after {cut_after:?}"
    );
    expect_taken_at_once(&client, base, &agent.token, large).await;
}
