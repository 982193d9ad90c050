//! The REST API under `/api/v1`, one module per resource.

pub mod admin;
pub mod agents;
pub mod assets;
pub mod findings;
pub mod firewall_rules;
pub mod groups;
pub mod handling;
pub mod k8s_audit;
pub mod quarantine;
pub mod tasks;

use palisade_model::Timestamp;

use crate::ApiError;

/// Longest accepted value of any query parameter.
const MAX_PARAM_LEN: usize = 1024;

/// Checks a free-text query parameter's length.
pub(crate) fn bounded(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(value) if value.len() > MAX_PARAM_LEN => Err(ApiError::bad_request(format!(
            "query parameter `{name}` is longer than {MAX_PARAM_LEN} bytes"
        ))),
        Some(value) if value.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Parses an optional RFC 3339 query parameter.
pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .filter(|text| !text.is_empty())
        .map(|text| {
            Timestamp::parse_rfc3339(text).map_err(|error| {
                ApiError::bad_request(format!("query parameter `{name}` must be an RFC 3339 time like 2026-01-31T12:00:00Z: {error}"))
            })
        })
        .transpose()
}

/// Parses a `limit` query parameter.
pub(crate) fn limit_param(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(limit @ 1..=palisade_store::MAX_PAGE_SIZE) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: ask for 1 to {} items per page and follow next_cursor",
            palisade_store::MAX_PAGE_SIZE
        ))),
    }
}

/// Parses a `cursor` query parameter.
pub(crate) fn cursor_param(
    cursor: Option<&str>,
) -> Result<Option<palisade_store::Cursor>, ApiError> {
    cursor
        .filter(|text| !text.is_empty())
        .map(palisade_store::Cursor::decode)
        .transpose()
        .map_err(ApiError::from)
}
