//! Severities, ordered from `Info` (lowest) to `Critical` (highest).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational only.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in JSON, query strings and the console.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// A dense rank (0 = info … 4 = critical), used as the stored, sortable form.
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The inverse of [`Severity::rank`].
    pub fn from_rank(rank: i64) -> Option<Severity> {
        Severity::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `critical high medium low info`.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of critical, high, medium, low, info")]
pub struct ParseSeverityError(String);

impl FromStr for Severity {
    type Err = ParseSeverityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| ParseSeverityError(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_round_trips_and_orders() {
        for severity in Severity::ALL {
            assert_eq!(Severity::from_rank(severity.rank()), Some(severity));
            assert_eq!(severity.as_str().parse::<Severity>().unwrap(), severity);
        }
        assert!(Severity::High > Severity::Medium);
        assert_eq!(Severity::from_rank(5), None);
        assert_eq!(Severity::from_rank(-1), None);
        assert!("severe".parse::<Severity>().is_err());
    }
}
