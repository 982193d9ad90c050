//! The bytes of agent batches the server holds at once: every batch being received, decoded
//! or waiting for the store's one writer, across all agents.
//!
//! Each agent has at most a few batches outstanding, but nothing else bounds how many agents
//! send at once: a fleet reconnecting after an outage would have the server hold thousands of
//! bodies of up to `MAX_BATCH_BYTES`. A request takes its share of the budget (its declared
//! `Content-Length`; a body without one is refused, 411) before its body is read, and gives it
//! back when its handler ends. When the budget is spent, it waits a moment for a share, then is
//! deferred: 503 with `Retry-After`, which the agent honours, keeping the batch in its outbox.
//!
//! One agent holds at most [`AgentBatchBudget::per_agent_bytes`]: two of the largest batches
//! (what an agent's two batches in flight need), and never more than the budget less one such
//! batch, so that whatever one agent holds (a node whose bodies stall, a hostile one), another
//! agent's batch still fits. A batch beyond its agent's share is deferred at once, without
//! waiting on the budget. A body must also arrive by its deadline
//! ([`Share::body_deadline`]), so that a stalled one gives its share back well before the
//! request's own timeout.

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use palisade_model::MAX_BATCH_BYTES;
use rand::Rng;
use tokio::sync::{Semaphore, SemaphorePermit};
use uuid::Uuid;

use crate::ApiError;

/// How many bytes of agent batch bodies the server holds at once (`palisade server
/// --agent-batch-budget-mib`, `AppState::set_agent_batch_budget`).
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
    /// The smallest budget: two of the largest batches, one agent's share and room for
    /// another's batch beside it.
    pub const MIN_BYTES: u64 = 2 * MAX_BATCH_BYTES as u64;
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

    /// The most one agent holds of the budget: two of the largest batches, and at most the
    /// budget less one, so that another agent's batch always fits beside it.
    pub fn per_agent_bytes(self) -> u64 {
        let largest = MAX_BATCH_BYTES as u64;
        (2 * largest).min(self.bytes - largest)
    }
}

impl Default for AgentBatchBudget {
    fn default() -> AgentBatchBudget {
        AgentBatchBudget {
            bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// MiB, as `--agent-batch-budget-mib` takes them.
impl std::fmt::Display for AgentBatchBudget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.bytes >> 20)
    }
}

/// A whole number of MiB, as `--agent-batch-budget-mib` takes them.
impl std::str::FromStr for AgentBatchBudget {
    type Err = AgentBatchBudgetError;

    fn from_str(text: &str) -> Result<AgentBatchBudget, AgentBatchBudgetError> {
        let mebibytes = text
            .trim()
            .parse::<u64>()
            .map_err(|_| AgentBatchBudgetError::NotMebibytes(text.to_owned()))?;
        AgentBatchBudget::from_bytes(mebibytes.saturating_mul(1 << 20))
    }
}

/// An [`AgentBatchBudget`] that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentBatchBudgetError {
    /// Not a whole number of MiB.
    #[error("{0:?} is not a whole number of MiB")]
    NotMebibytes(String),
    /// Outside the range.
    #[error(
        "an agent batch budget of {0} bytes is out of range: give {min} to {max} MiB (at least \
         two of the largest batches, {largest} MiB each: one agent's share, and room for \
         another's batch beside it)",
        min = AgentBatchBudget::MIN_BYTES >> 20,
        max = AgentBatchBudget::MAX_BYTES >> 20,
        largest = MAX_BATCH_BYTES >> 20
    )]
    OutOfRange(u64),
}

/// The budget is counted in KiB: a semaphore takes at most `u32::MAX` permits at once.
const UNIT: u64 = 1024;
/// How long a batch waits for its share before it is deferred: long enough to ride out the
/// end of another batch's ingest, short enough that a deferred agent is told soon.
const WAIT: Duration = Duration::from_secs(1);
/// The range of the `Retry-After` a deferred batch gets, in seconds: spread, so that the agents
/// deferred together do not all come back in the same second.
const RETRY_AFTER_SECS: std::ops::RangeInclusive<u64> = 2..=5;
/// How long a body of up to 10 MiB may take to arrive once its share is taken. A body that
/// stalls gives its share back then, not at the request's 30 s timeout.
const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// The average rate a larger body must arrive at: a second per MiB, so that a node with a
/// 10 Mbit/s uplink still sends a batch of 20,000 sensor alerts (some 15 MiB in about 13 of its
/// 15 s). A body over 30 MiB would get more than the request's 30 s timeout, which bounds it.
const BODY_BYTES_PER_SEC: u64 = 1 << 20;

/// The budget in use: shares of it are taken by the batches the server holds.
#[derive(Debug)]
pub(crate) struct BatchBytes {
    shares: Semaphore,
    /// The most one agent holds or waits for, in [`UNIT`]s.
    per_agent: u32,
    /// What each agent holds or waits for, in [`UNIT`]s; an agent holding nothing has no entry,
    /// so that the map is as large as the agents sending now, not the fleet.
    held: Mutex<HashMap<Uuid, u32>>,
}

impl BatchBytes {
    pub(crate) fn new(budget: AgentBatchBudget) -> BatchBytes {
        BatchBytes {
            shares: Semaphore::new(units(budget.bytes()) as usize),
            per_agent: units(budget.per_agent_bytes()),
            held: Mutex::default(),
        }
    }

    /// The share of `agent`'s request with `headers`, held until dropped: its declared length.
    /// A declared length is binding: hyper ends the body there (HTTP/1.1) or fails it past
    /// there (HTTP/2). Refused at once without a length (411; a chunked body's size is known
    /// only once read) or with one over the body limit (413); deferred (503 with
    /// `Retry-After`) at once when the agent would hold more than its share, or when no share
    /// of the budget comes within [`WAIT`].
    pub(crate) async fn take(
        &self,
        agent: Uuid,
        headers: &HeaderMap,
    ) -> Result<Share<'_>, Deferral> {
        let declared = match headers.get(header::CONTENT_LENGTH) {
            None => {
                return Err(Deferral::Refused(ApiError::length_required(
                    "a batch must declare its length (Content-Length)",
                )));
            }
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
        // The budget is at least two of the largest batches, so a batch's units always fit.
        let units = units(declared).max(1);
        let claim = AgentClaim::new(self, agent, units).ok_or(Deferral::AgentShare {
            per_agent_bytes: u64::from(self.per_agent) * UNIT,
        })?;
        match tokio::time::timeout(WAIT, self.shares.acquire_many(units)).await {
            Ok(Ok(permit)) => Ok(Share {
                _permit: permit,
                _claim: claim,
                body_deadline: body_deadline(declared),
            }),
            // Never closed; the same answer as a full budget if it were.
            Ok(Err(_)) | Err(_) => Err(Deferral::Budget),
        }
    }
}

/// `bytes` in [`UNIT`]s, rounded up.
fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

/// How long a body of `declared` bytes may take to arrive: [`BODY_DEADLINE`], or a second per
/// [`BODY_BYTES_PER_SEC`] when that is longer.
fn body_deadline(declared: u64) -> Duration {
    BODY_DEADLINE.max(Duration::from_secs(declared.div_ceil(BODY_BYTES_PER_SEC)))
}

/// A batch's share of the budget and of its agent's share, given back when dropped.
#[derive(Debug)]
pub(crate) struct Share<'a> {
    _permit: SemaphorePermit<'a>,
    _claim: AgentClaim<'a>,
    /// How long the body may take to arrive from now.
    pub(crate) body_deadline: Duration,
}

/// What one batch counts against its agent's share.
#[derive(Debug)]
struct AgentClaim<'a> {
    bytes: &'a BatchBytes,
    agent: Uuid,
    units: u32,
}

impl<'a> AgentClaim<'a> {
    /// `units` more for `agent`; none when that would take it past its share.
    fn new(bytes: &'a BatchBytes, agent: Uuid, units: u32) -> Option<AgentClaim<'a>> {
        let mut held = bytes.held.lock().unwrap_or_else(PoisonError::into_inner);
        // Both are at most the budget's units (under 2^30): no overflow.
        let holding = held.get(&agent).copied().unwrap_or(0) + units;
        if holding > bytes.per_agent {
            return None;
        }
        held.insert(agent, holding);
        Some(AgentClaim {
            bytes,
            agent,
            units,
        })
    }
}

impl Drop for AgentClaim<'_> {
    fn drop(&mut self) {
        let mut held = self
            .bytes
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut entry) = held.entry(self.agent) {
            *entry.get_mut() = entry.get().saturating_sub(self.units);
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// Why a batch was not taken in.
#[derive(Debug)]
pub(crate) enum Deferral {
    /// The budget is spent: the agent sends the batch again later.
    Budget,
    /// The agent's batches in progress hold its whole share: it sends this one again later.
    AgentShare {
        /// The share.
        per_agent_bytes: u64,
    },
    /// The request cannot be taken in at all.
    Refused(ApiError),
}

impl IntoResponse for Deferral {
    fn into_response(self) -> Response {
        let retry_after = rand::rng().random_range(RETRY_AFTER_SECS);
        let message = match self {
            Deferral::Refused(error) => return error.into_response(),
            Deferral::Budget => format!(
                "the server holds as many agent batches as it may; send this one again in {retry_after} s"
            ),
            Deferral::AgentShare { per_agent_bytes } => format!(
                "this agent's batches in progress hold as many bytes as one agent may ({} MiB); send this one again in {retry_after} s",
                per_agent_bytes >> 20
            ),
        };
        let mut response = ApiError::unavailable(message).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    use uuid::Uuid;

    use super::{AgentBatchBudget, BatchBytes, Deferral};

    const MIB: u64 = 1 << 20;

    fn declaring(length: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        headers
    }

    fn budget_mib(mebibytes: u64) -> BatchBytes {
        BatchBytes::new(AgentBatchBudget::from_bytes(mebibytes * MIB).unwrap())
    }

    /// A share is the declared length in KiB, rounded up, given back when dropped.
    #[tokio::test]
    async fn a_share_is_the_declared_length() {
        let bytes = budget_mib(64);
        let share = bytes.take(Uuid::now_v7(), &declaring(1025)).await.unwrap();
        assert_eq!(bytes.shares.available_permits(), 64 * 1024 - 2);
        assert_eq!(share.body_deadline, Duration::from_secs(10));
        drop(share);
        assert_eq!(bytes.shares.available_permits(), 64 * 1024);
        assert!(bytes.held.lock().unwrap().is_empty());
    }

    /// One agent holds at most its share: beyond it, its batch is deferred at once, while
    /// another agent's still fits; once the budget is spent, a batch waits, then is deferred.
    #[tokio::test]
    async fn an_agent_holds_at_most_its_share() {
        let bytes = budget_mib(64);
        let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let held = bytes.take(first, &declaring(32 * MIB)).await.unwrap();
        let started = std::time::Instant::now();
        let Err(Deferral::AgentShare { per_agent_bytes }) = bytes.take(first, &declaring(1)).await
        else {
            panic!("an agent took more than its share");
        };
        assert_eq!(per_agent_bytes, 32 * MIB);
        assert!(started.elapsed() < Duration::from_millis(500));
        let other = bytes.take(second, &declaring(32 * MIB)).await.unwrap();
        let Err(Deferral::Budget) = bytes.take(third, &declaring(1)).await else {
            panic!("a batch was taken in beyond the budget");
        };
        assert!(started.elapsed() >= Duration::from_millis(900));
        // A deferred request counts nothing against its agent.
        assert_eq!(bytes.held.lock().unwrap().get(&third), None);
        drop(held);
        let again = bytes.take(first, &declaring(32 * MIB)).await.unwrap();
        drop((again, other));
        assert!(bytes.held.lock().unwrap().is_empty());
        assert_eq!(bytes.shares.available_permits(), 64 * 1024);
    }

    /// No length, a length over the body limit, or one that is not a number, is refused
    /// without waiting, and takes nothing.
    #[tokio::test]
    async fn a_missing_or_bad_length_is_refused_at_once() {
        let bytes = BatchBytes::new(AgentBatchBudget::default());
        let agent = Uuid::now_v7();
        for (length, status) in [
            (None, StatusCode::LENGTH_REQUIRED),
            (Some("33554433"), StatusCode::PAYLOAD_TOO_LARGE),
            (Some("-1"), StatusCode::BAD_REQUEST),
            (Some("12 34"), StatusCode::BAD_REQUEST),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(length) = length {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static(length));
            }
            let Err(deferral @ Deferral::Refused(_)) = bytes.take(agent, &headers).await else {
                panic!("Content-Length {length:?} was taken");
            };
            assert_eq!(deferral.into_response().status(), status, "{length:?}");
        }
        assert_eq!(
            bytes.shares.available_permits(),
            usize::try_from(AgentBatchBudget::DEFAULT_BYTES / super::UNIT).unwrap()
        );
        assert!(bytes.held.lock().unwrap().is_empty());
    }

    /// Both deferrals are 503 with a Retry-After of a few seconds.
    #[test]
    fn a_deferral_names_its_wait() {
        for deferral in [
            Deferral::Budget,
            Deferral::AgentShare {
                per_agent_bytes: 64 * MIB,
            },
        ] {
            let response = deferral.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            let retry_after: u64 = response.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((2..=5).contains(&retry_after), "{retry_after}");
        }
    }

    /// Up to 10 MiB a body has 10 s; a larger one a second per MiB.
    #[test]
    fn a_body_deadline_grows_with_the_body() {
        for (declared, secs) in [(0, 10), (10 * MIB, 10), (10 * MIB + 1, 11), (32 * MIB, 32)] {
            assert_eq!(
                super::body_deadline(declared),
                Duration::from_secs(secs),
                "{declared}"
            );
        }
    }

    /// An agent's share is two of the largest batches, and leaves one beside it.
    #[test]
    fn an_agents_share_leaves_room_for_another_batch() {
        for (budget, share) in [(64, 32), (80, 48), (96, 64), (128, 64), (1024, 64)] {
            assert_eq!(
                AgentBatchBudget::from_bytes(budget * MIB)
                    .unwrap()
                    .per_agent_bytes(),
                share * MIB,
                "{budget} MiB"
            );
        }
    }

    #[test]
    fn a_budget_is_whole_mebibytes_within_range() {
        assert_eq!("128".parse(), Ok(AgentBatchBudget::default()));
        assert_eq!(AgentBatchBudget::default().to_string(), "128");
        assert_eq!(
            " 64 "
                .parse::<AgentBatchBudget>()
                .map(AgentBatchBudget::bytes),
            Ok(64 * MIB)
        );
        for text in ["0", "63", "1048577", "18446744073709551615"] {
            let error = text.parse::<AgentBatchBudget>().unwrap_err();
            assert!(error.to_string().contains("64 to 1048576 MiB"), "{error}");
        }
        for text in ["", "1.5", "64MiB", "-64"] {
            let error = text.parse::<AgentBatchBudget>().unwrap_err();
            assert!(
                error.to_string().contains("not a whole number of MiB"),
                "{error}"
            );
        }
        for bytes in [0, 64 * MIB - 1, (1 << 40) + 1] {
            let error = AgentBatchBudget::from_bytes(bytes).unwrap_err();
            assert!(error.to_string().contains(&bytes.to_string()), "{error}");
        }
    }
}
