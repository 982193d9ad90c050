//! The bytes of agent batches the server holds at once: every batch being received, decoded
//! or waiting for the store's one writer, across all agents.
//!
//! Each agent has at most a few batches outstanding, but nothing else bounds how many agents
//! send at once: a fleet reconnecting after an outage would have the server hold thousands of
//! bodies of up to `MAX_BATCH_BYTES`. A request takes its share of the budget (its declared
//! `Content-Length`, or the body limit without one) before its body is read, and gives it back
//! when its handler ends. When the budget is spent, it waits a moment for a share, then is
//! deferred: 503 with `Retry-After`, which the agent honours, keeping the batch in its outbox.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use palisade_model::MAX_BATCH_BYTES;
use rand::Rng;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::ApiError;

/// The budget is counted in KiB: a semaphore takes at most `u32::MAX` permits at once.
const UNIT: u64 = 1024;
/// How long a batch waits for its share before it is deferred: long enough to ride out the
/// end of another batch's ingest, short enough that a deferred agent is told soon.
const WAIT: Duration = Duration::from_secs(1);
/// The range of the `Retry-After` a deferred batch gets, in seconds: spread, so that the agents
/// deferred together do not all come back in the same second.
const RETRY_AFTER_SECS: std::ops::RangeInclusive<u64> = 2..=5;

/// How many bytes of agent batch bodies the server holds at once (`AppState::set_agent_batch_budget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentBatchBudget {
    bytes: u64,
}

impl AgentBatchBudget {
    /// The default: 128 MiB, about eight batches of 20,000 sensor-sized alerts (some 15 MiB
    /// of JSON each), more than the store's one writer gets through in two seconds. A
    /// decoded batch takes several times its JSON: the link bench's process (agent and
    /// server) held 3.5-5 KB per report in flight, so the budget keeps the server's batches
    /// to about half a gigabyte.
    pub const DEFAULT_BYTES: u64 = 128 << 20;
    /// The smallest budget. A batch larger than the whole budget takes all of it, alone.
    pub const MIN_BYTES: u64 = 64 << 10;
    /// The largest budget.
    pub const MAX_BYTES: u64 = 1 << 40;

    /// A budget of `bytes`, within [`AgentBatchBudget::MIN_BYTES`]..=[`AgentBatchBudget::MAX_BYTES`].
    pub fn from_bytes(bytes: u64) -> Result<AgentBatchBudget, AgentBatchBudgetError> {
        if (Self::MIN_BYTES..=Self::MAX_BYTES).contains(&bytes) {
            Ok(AgentBatchBudget { bytes })
        } else {
            Err(AgentBatchBudgetError::OutOfRange(bytes))
        }
    }

    /// The budget in bytes.
    pub fn bytes(self) -> u64 {
        self.bytes
    }
}

impl Default for AgentBatchBudget {
    fn default() -> AgentBatchBudget {
        AgentBatchBudget {
            bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// An [`AgentBatchBudget`] that cannot be.
#[derive(Debug, thiserror::Error)]
pub enum AgentBatchBudgetError {
    /// Outside the range.
    #[error(
        "an agent batch budget of {0} bytes is out of range ({min} to {max} bytes)",
        min = AgentBatchBudget::MIN_BYTES,
        max = AgentBatchBudget::MAX_BYTES
    )]
    OutOfRange(u64),
}

/// The budget in use: shares of it are taken by the batches the server holds.
#[derive(Debug)]
pub(crate) struct BatchBytes {
    shares: Semaphore,
    /// All of them, in [`UNIT`]s.
    total: u32,
}

impl BatchBytes {
    pub(crate) fn new(budget: AgentBatchBudget) -> BatchBytes {
        let total = u32::try_from(budget.bytes / UNIT).unwrap_or(u32::MAX);
        BatchBytes {
            shares: Semaphore::new(total as usize),
            total,
        }
    }

    /// The share of a request with `headers`, held until dropped: its declared length, or the
    /// body limit when it declares none (a chunked body), at most the whole budget. A declared
    /// length is binding: hyper ends the body there (HTTP/1.1) or fails it past there (HTTP/2).
    /// Refused at once (413) when the declared length is over the body limit; deferred (503 with
    /// `Retry-After`) when no share comes within [`WAIT`].
    pub(crate) async fn take(&self, headers: &HeaderMap) -> Result<SemaphorePermit<'_>, Deferral> {
        let declared = match headers.get(header::CONTENT_LENGTH) {
            None => MAX_BATCH_BYTES as u64,
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    Deferral::Refused(ApiError::bad_request("the Content-Length is not a number"))
                })?,
        };
        if declared > MAX_BATCH_BYTES as u64 {
            return Err(Deferral::Refused(ApiError::payload_too_large(format!(
                "a batch has at most {MAX_BATCH_BYTES} bytes, not {declared}"
            ))));
        }
        let units = u32::try_from(declared.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        match tokio::time::timeout(WAIT, self.shares.acquire_many(units)).await {
            Ok(Ok(permit)) => Ok(permit),
            // Never closed; the same answer as a full budget if it were.
            Ok(Err(_)) | Err(_) => Err(Deferral::Busy),
        }
    }
}

/// Why a batch was not taken in.
#[derive(Debug)]
pub(crate) enum Deferral {
    /// The budget is spent: the agent sends the batch again later.
    Busy,
    /// The request cannot be taken in at all.
    Refused(ApiError),
}

impl IntoResponse for Deferral {
    fn into_response(self) -> Response {
        match self {
            Deferral::Refused(error) => error.into_response(),
            Deferral::Busy => {
                let retry_after = rand::rng().random_range(RETRY_AFTER_SECS);
                let mut response = ApiError::unavailable(format!(
                    "the server holds as many agent batches as it may; send this one again in {retry_after} s"
                ))
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;

    use super::{AgentBatchBudget, BatchBytes, Deferral};

    fn declaring(length: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_str(length).unwrap(),
        );
        headers
    }

    /// A share is the declared length in KiB, rounded up; a body without a length takes the
    /// body limit, which here is more than the whole budget, so all of it.
    #[tokio::test]
    async fn a_share_is_the_declared_length_or_the_whole_budget() {
        let bytes = BatchBytes::new(AgentBatchBudget::from_bytes(100 << 10).unwrap());
        let share = bytes.take(&declaring("1025")).await.unwrap();
        assert_eq!(bytes.shares.available_permits(), 98);
        drop(share);
        let whole = bytes.take(&HeaderMap::new()).await.unwrap();
        assert_eq!(bytes.shares.available_permits(), 0);
        let Err(Deferral::Busy) = bytes.take(&declaring("0")).await else {
            panic!("a batch was taken in beyond the budget");
        };
        drop(whole);
        assert_eq!(bytes.shares.available_permits(), 100);
    }

    /// A length over the body limit, or not a number, is refused without waiting.
    #[tokio::test]
    async fn a_bad_length_is_refused_at_once() {
        let bytes = BatchBytes::new(AgentBatchBudget::default());
        for (length, status) in [
            ("33554433", StatusCode::PAYLOAD_TOO_LARGE),
            ("-1", StatusCode::BAD_REQUEST),
            ("12 34", StatusCode::BAD_REQUEST),
        ] {
            let Err(deferral @ Deferral::Refused(_)) = bytes.take(&declaring(length)).await else {
                panic!("Content-Length {length} was taken");
            };
            assert_eq!(deferral.into_response().status(), status, "{length}");
        }
        assert_eq!(
            bytes.shares.available_permits(),
            usize::try_from(AgentBatchBudget::DEFAULT_BYTES / super::UNIT).unwrap()
        );
    }

    #[test]
    fn a_budget_out_of_range_is_an_error() {
        for bytes in [0, (64 << 10) - 1, (1 << 40) + 1] {
            let error = AgentBatchBudget::from_bytes(bytes).unwrap_err();
            assert!(error.to_string().contains(&bytes.to_string()), "{error}");
        }
        assert_eq!(AgentBatchBudget::default().bytes(), 128 << 20);
    }
}
