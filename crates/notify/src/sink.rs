//! Delivery to each sink, with retries.

use std::sync::{Arc, atomic::Ordering};

use palisade_model::Finding;
use tokio::{io::AsyncWriteExt, net::TcpStream, net::UdpSocket, sync::mpsc};

use crate::{NotifyConfig, NotifyStats, SinkConfig, SyslogTransport, backoff, format_rfc5424};

/// Time allowed for one delivery attempt.
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("HTTP request failed")]
    Http(#[from] reqwest::Error),
    #[error("the receiver answered HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("syslog transport failed")]
    Io(#[from] std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

pub(crate) async fn deliver_all(
    config: NotifyConfig,
    mut receiver: mpsc::Receiver<Finding>,
    stats: Arc<NotifyStats>,
) {
    let client = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "Cannot build the notification HTTP client; notifications are disabled.");
            return;
        }
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    while let Some(finding) = receiver.recv().await {
        for (sink, (_, counters)) in config.sinks.iter().zip(&stats.sinks) {
            let mut attempt = 0;
            loop {
                let result = tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    deliver(&client, sink, &finding, &hostname),
                )
                .await
                .unwrap_or(Err(DeliveryError::Timeout(ATTEMPT_TIMEOUT)));
                match result {
                    Ok(()) => {
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(error) if attempt + 1 >= config.max_attempts.max(1) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(sink = sink.label(), finding = %finding.id, error = %error, "Notification failed after the last attempt.");
                        break;
                    }
                    Err(error) => {
                        counters.retried.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(sink = sink.label(), attempt, error = %error, "Notification failed; retrying.");
                        tokio::time::sleep(backoff(&config, attempt)).await;
                        attempt += 1;
                    }
                }
            }
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    sink: &SinkConfig,
    finding: &Finding,
    hostname: &str,
) -> Result<(), DeliveryError> {
    match sink {
        SinkConfig::Webhook { url } => {
            let body = serde_json::json!({ "event": "finding.created", "finding": finding });
            check(client.post(url).json(&body).send().await?)
        }
        SinkConfig::Slack { url } => {
            let text = format!(
                "*[{}] {}* — {} on `{}` ({})",
                finding.severity.as_str().to_uppercase(),
                finding.title,
                finding.rule,
                finding.asset.label(),
                finding.kind().as_str(),
            );
            check(
                client
                    .post(url)
                    .json(&serde_json::json!({ "text": text }))
                    .send()
                    .await?,
            )
        }
        SinkConfig::Syslog {
            address,
            transport,
            facility,
        } => {
            let message = format_rfc5424(finding, *facility, hostname);
            match transport {
                SyslogTransport::Udp => {
                    let socket = UdpSocket::bind(if address.starts_with('[') {
                        "[::]:0"
                    } else {
                        "0.0.0.0:0"
                    })
                    .await?;
                    socket.send_to(message.as_bytes(), address).await?;
                }
                SyslogTransport::Tcp => {
                    let mut stream = TcpStream::connect(address).await?;
                    let framed = format!("{} {message}", message.len());
                    stream.write_all(framed.as_bytes()).await?;
                    stream.flush().await?;
                }
            }
            Ok(())
        }
    }
}

fn check(response: reqwest::Response) -> Result<(), DeliveryError> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(response.status()))
    }
}
