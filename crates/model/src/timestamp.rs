//! Timestamps: milliseconds since the Unix epoch, shown as RFC 3339 in JSON.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// A point in time with millisecond precision, UTC.
///
/// Stored as an integer (portable across SQLite and PostgreSQL, cheap to index and compare);
/// serialised as an RFC 3339 string so that API clients read it without guessing units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(OffsetDateTime::now_utc())
    }

    /// Converts from a `time` date-time, truncating to milliseconds.
    pub fn from_datetime(datetime: OffsetDateTime) -> Timestamp {
        Timestamp((datetime.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The UTC day number since the epoch (used to aggregate per day).
    pub fn day(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }

    /// Parses an RFC 3339 date-time.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, time::error::Parse> {
        OffsetDateTime::parse(text, &Rfc3339).map(Timestamp::from_datetime)
    }

    /// Formats as RFC 3339 with millisecond precision.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|datetime| datetime.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(|error| {
            serde::de::Error::custom(format!("invalid RFC 3339 time {text:?}: {error}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let stamp = Timestamp(1_700_000_000_123);
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), stamp);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        assert_eq!(Timestamp(86_400_000 * 3 + 5).day(), 3);
        assert_eq!(Timestamp(-1).day(), -1);
    }
}
