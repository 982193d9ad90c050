//! Notifications delivered to real local receivers: webhook, Slack-compatible, syslog UDP and TCP.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, http::StatusCode, routing::post};
use palisade_model::{AffectedAsset, AlertDetails, Details, Finding, Severity, Status, Timestamp};
use palisade_notify::{Notifier, NotifyConfig, SinkConfig, SyslogTransport};
use tokio::{io::AsyncReadExt, net::TcpListener, net::UdpSocket};

fn finding(severity: Severity) -> Finding {
    Finding {
        id: uuid::Uuid::now_v7(),
        severity,
        status: Status::Open,
        rule: "Terminal shell in container".into(),
        title: "A shell was spawned".into(),
        asset: AffectedAsset {
            cluster: "prod".into(),
            node: Some("n1".into()),
            ..Default::default()
        },
        asset_id: uuid::Uuid::nil(),
        first_seen: Timestamp::now(),
        last_seen: Timestamp::now(),
        count: 1,
        demo: false,
        details: Details::Alert(AlertDetails::default()),
    }
}

async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached within 5 s");
}

#[tokio::test]
async fn webhook_and_slack_receive_severe_findings_with_retries() {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let failures_left = Arc::new(AtomicU32::new(2));
    let app = {
        let received = Arc::clone(&received);
        let failures_left = Arc::clone(&failures_left);
        Router::new().route(
            "/hook",
            post(move |Json(body): Json<serde_json::Value>| {
                let received = Arc::clone(&received);
                let failures_left = Arc::clone(&failures_left);
                async move {
                    // The first two deliveries fail, to exercise the retry path.
                    if failures_left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    received.lock().unwrap().push(body);
                    StatusCode::OK
                }
            }),
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let notifier = Notifier::start(NotifyConfig {
        min_severity: Severity::High,
        sinks: vec![
            SinkConfig::Webhook { url: url.clone() },
            SinkConfig::Slack { url },
        ],
        max_attempts: 5,
        initial_backoff_ms: 10,
    });
    notifier.notify(&finding(Severity::Low));
    notifier.notify(&finding(Severity::Critical));
    eventually(|| received.lock().unwrap().len() == 2).await;
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies[0]["finding"]["severity"], "critical");
    assert_eq!(bodies[0]["event"], "finding.created");
    assert!(
        bodies[1]["text"]
            .as_str()
            .unwrap()
            .contains("[CRITICAL] A shell was spawned")
    );
    let stats = notifier.stats();
    assert_eq!(stats.sinks[0].1.retried.load(Ordering::Relaxed), 2);
    assert_eq!(stats.sinks[0].1.sent.load(Ordering::Relaxed), 1);
    assert_eq!(stats.sinks[1].1.sent.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn unreachable_receiver_counts_a_failure() {
    // Bind then drop, so the port is closed: every attempt is refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let notifier = Notifier::start(NotifyConfig {
        min_severity: Severity::Info,
        sinks: vec![SinkConfig::Webhook {
            url: format!("http://{closed}/hook"),
        }],
        max_attempts: 3,
        initial_backoff_ms: 5,
    });
    notifier.notify(&finding(Severity::Info));
    let stats = notifier.stats();
    eventually(|| stats.sinks[0].1.failed.load(Ordering::Relaxed) == 1).await;
    assert_eq!(stats.sinks[0].1.retried.load(Ordering::Relaxed), 2);
    assert_eq!(stats.sinks[0].1.sent.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn syslog_over_udp_and_tcp() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notifier = Notifier::start(NotifyConfig {
        min_severity: Severity::Medium,
        sinks: vec![
            SinkConfig::Syslog {
                address: udp.local_addr().unwrap().to_string(),
                transport: SyslogTransport::Udp,
                facility: 10,
            },
            SinkConfig::Syslog {
                address: tcp.local_addr().unwrap().to_string(),
                transport: SyslogTransport::Tcp,
                facility: 4,
            },
        ],
        max_attempts: 2,
        initial_backoff_ms: 10,
    });
    notifier.notify(&finding(Severity::High));

    let mut datagram = vec![0; 4096];
    let length = tokio::time::timeout(Duration::from_secs(5), udp.recv(&mut datagram))
        .await
        .unwrap()
        .unwrap();
    let message = String::from_utf8(datagram[..length].to_vec()).unwrap();
    assert!(message.starts_with("<83>1 "), "authpriv.err: {message}");
    assert!(message.ends_with("A shell was spawned"));

    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), tcp.accept())
        .await
        .unwrap()
        .unwrap();
    let mut framed = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut framed))
        .await
        .unwrap()
        .unwrap();
    let (length, message) = framed.split_once(' ').unwrap();
    assert_eq!(
        length.parse::<usize>().unwrap(),
        message.len(),
        "octet-counting framing"
    );
    assert!(message.starts_with("<35>1 "), "auth.err: {message}");
}
