//! Pod Security Standards, evaluated the way Kubernetes' pod-security admission does.
//!
//! The checks, their ids, the policy versions at which each revision applies, the way the
//! restricted level replaces ("overrides") some baseline checks, and the reason and detail texts
//! follow `k8s.io/pod-security-admission/policy` (`check_*.go` and `registry.go`). Each check
//! lives in its own module under `checks/`.
//!
//! A policy version selects, for every check, the newest revision whose minimum version is not
//! newer than it; `latest` is the newest version any revision names ([`LATEST_MINOR`]). A
//! well-formed version newer than that (`v1.38`, `v1.99`) is evaluated as [`LATEST_MINOR`], as
//! upstream's `checkRegistry.EvaluatePod` clamps a version newer than its registry's newest
//! (so a namespace labelled for a newer cluster keeps being checked); the verdict keeps the
//! version asked for and names the one evaluated ([`Verdict::resolved_version`]).

mod checks;
pub(crate) mod pod;

use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::{Error, yaml::Node};

/// The newest policy minor version implemented: `latest` means `v1.37`.
///
/// Upstream's `latest` is the highest `MinimumVersion` among the registered checks; in 1.37 that is
/// the `sysctls` revision adding `net.ipv4.tcp_slow_start_after_idle` and `tcp_notsent_lowat`.
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Prevents known privilege escalations.
    Baseline,
    /// Baseline plus current pod hardening best practices.
    Restricted,
}

impl Level {
    /// The lowercase name, as in the `pod-security.kubernetes.io/enforce` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = Error;

    fn from_str(text: &str) -> Result<Level, Error> {
        match text {
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(Error::unknown_level(text)),
        }
    }
}

/// A policy version: `v1.<minor>` (any minor; those after [`LATEST_MINOR`] are evaluated as
/// it), or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest implemented version, [`LATEST_MINOR`].
    Latest,
    /// `v1.<minor>`, as given (upstream's minor is a Go `int`, so up to `i64::MAX`).
    Minor(u64),
}

impl Version {
    /// The minor version the checks are selected for: the given one, or [`LATEST_MINOR`] for
    /// `latest` and for any newer version.
    pub fn minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::Minor(minor) => u32::try_from(minor)
                .unwrap_or(LATEST_MINOR)
                .min(LATEST_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(minor) => write!(f, "v1.{minor}"),
        }
    }
}

impl FromStr for Version {
    type Err = Error;

    /// Parses `latest` or `v1.N` as upstream's `api.ParseVersion` does: `^v1\.(0|[1-9][0-9]*)$`,
    /// the minor a Go `int` (`strconv.Atoi`, so at most `i64::MAX`). Versions newer than
    /// [`LATEST_MINOR`] are accepted and evaluated as it, as the admission controller does.
    fn from_str(text: &str) -> Result<Version, Error> {
        if text == "latest" {
            return Ok(Version::Latest);
        }
        let minor = text
            .strip_prefix("v1.")
            .filter(|digits| {
                !digits.is_empty()
                    && digits.bytes().all(|byte| byte.is_ascii_digit())
                    && (digits.len() == 1 || !digits.starts_with('0'))
            })
            .and_then(|digits| digits.parse::<i64>().ok())
            .and_then(|minor| u64::try_from(minor).ok())
            .ok_or_else(|| Error::unknown_version(text))?;
        Ok(Version::Minor(minor))
    }
}

/// One forbidden result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The upstream check id, e.g. `privileged` or `capabilities_restricted`.
    pub check: &'static str,
    /// Upstream's `ForbiddenReason`, e.g. `host namespaces`.
    pub reason: String,
    /// Upstream's `ForbiddenDetail`, possibly empty.
    pub detail: String,
    /// `reason (detail)`, as the admission warning prints it.
    pub message: String,
    /// The field path of the first offending field, when one field is to blame.
    pub path: Option<String>,
    /// The line of that field, or of the pod template.
    pub line: usize,
}

/// The verdict for one pod template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The level evaluated.
    pub level: Level,
    /// The version asked for (`latest` stays `latest`).
    pub version: String,
    /// The concrete version the checks were selected for.
    pub resolved_version: String,
    /// True when no check forbids the pod.
    pub allowed: bool,
    /// Forbidden results, baseline checks first, each group sorted by check id as upstream does.
    pub violations: Vec<Violation>,
}

/// Evaluates a pod's metadata and spec at a level and version.
///
/// `metadata` is the pod (template) metadata, `spec` its pod spec, and `spec_path` the field path
/// of that spec in its object (e.g. `spec.template.spec`), used in violation paths.
pub fn evaluate_pod(
    level: Level,
    version: Version,
    metadata: Option<&Node>,
    spec: &Node,
    spec_path: &str,
) -> Verdict {
    let pod = pod::Pod::new(metadata, spec, spec_path);
    let violations: Vec<Violation> = checks::selected(level, version.minor())
        .into_iter()
        .filter_map(|(check_id, check_fn)| {
            let forbidden = check_fn(&pod)?;
            let message = if forbidden.detail.is_empty() {
                forbidden.reason.clone()
            } else {
                format!("{} ({})", forbidden.reason, forbidden.detail)
            };
            let (path, line) = match forbidden.at {
                Some((path, line)) => (Some(path), line),
                None => (None, spec.line),
            };
            Some(Violation {
                check: check_id,
                reason: forbidden.reason,
                detail: forbidden.detail,
                message,
                path,
                line,
            })
        })
        .collect();
    Verdict {
        level,
        version: version.to_string(),
        resolved_version: Version::Minor(u64::from(version.minor())).to_string(),
        allowed: violations.is_empty(),
        violations,
    }
}

/// The ids of the checks that run at a level and version, in upstream's order.
pub fn pss_check_ids(level: Level, version: Version) -> Vec<&'static str> {
    checks::selected(level, version.minor())
        .into_iter()
        .map(|(check_id, _)| check_id)
        .collect()
}

/// The restricted check that replaces `check_id` at `version`, if any.
///
/// Upstream's restricted checks name baseline checks they override (`OverrideCheckIDs`): at the
/// restricted level `capabilities_baseline` is not run from v1.22 on, because
/// `capabilities_restricted` covers it.
pub fn pss_check_overridden_by(check_id: &str, version: Version) -> Option<&'static str> {
    checks::overridden_by(check_id, version.minor())
}

#[cfg(test)]
mod tests {
    use crate::pss::{
        Level, Version, pss_check_ids as check_ids, pss_check_overridden_by as overridden_by,
    };

    #[test]
    fn versions_parse_like_upstream() {
        assert_eq!("latest".parse::<Version>().unwrap(), Version::Latest);
        assert_eq!("v1.0".parse::<Version>().unwrap(), Version::Minor(0));
        assert_eq!("v1.37".parse::<Version>().unwrap(), Version::Minor(37));
        // Newer than the newest known checks: accepted, evaluated as the newest.
        for (newer, minor) in [
            ("v1.38", 38),
            ("v1.99", 99),
            ("v1.9223372036854775807", i64::MAX as u64),
        ] {
            let version = newer.parse::<Version>().unwrap();
            assert_eq!(version, Version::Minor(minor), "{newer}");
            assert_eq!(version.minor(), crate::pss::LATEST_MINOR, "{newer}");
            assert_eq!(version.to_string(), newer);
        }
        for bad in [
            "1.20",
            "v1.020",
            "v2.0",
            "v1.",
            "",
            "v1.-1",
            "v1.+1",
            "LATEST",
            "v1.38 ",
            "v1.9223372036854775808",
        ] {
            let error = bad.parse::<Version>().unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::UnknownVersion, "{bad}");
            assert!(
                error.to_string().contains("\"latest\" or \"v1.x\""),
                "{error}"
            );
        }
        assert_eq!(Version::Latest.to_string(), "latest");
        assert_eq!(Version::Minor(25).to_string(), "v1.25");
    }

    #[test]
    fn levels_parse() {
        assert_eq!("restricted".parse::<Level>().unwrap(), Level::Restricted);
        let error = "privileged".parse::<Level>().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::UnknownLevel);
    }

    #[test]
    fn check_sets_follow_upstream_versions() {
        let baseline_latest = check_ids(Level::Baseline, Version::Latest);
        assert_eq!(
            baseline_latest,
            [
                "appArmorProfile",
                "capabilities_baseline",
                "hostNamespaces",
                "hostPathVolumes",
                "hostPorts",
                "hostProbesAndHostLifecycle",
                "privileged",
                "procMount",
                "seLinuxOptions",
                "seccompProfile_baseline",
                "sysctls",
                "windowsHostProcess",
            ]
        );
        assert!(
            !check_ids(Level::Baseline, Version::Minor(33)).contains(&"hostProbesAndHostLifecycle")
        );
        let restricted_1_0 = check_ids(Level::Restricted, Version::Minor(0));
        assert!(restricted_1_0.contains(&"capabilities_baseline"));
        assert!(restricted_1_0.contains(&"seccompProfile_baseline"));
        assert!(!restricted_1_0.contains(&"hostPathVolumes"));
        assert!(!restricted_1_0.contains(&"allowPrivilegeEscalation"));
        assert!(!restricted_1_0.contains(&"runAsUser"));
        let restricted_latest = check_ids(Level::Restricted, Version::Latest);
        assert!(!restricted_latest.contains(&"capabilities_baseline"));
        assert!(!restricted_latest.contains(&"procMount"));
        assert!(restricted_latest.contains(&"procMount_restricted"));
        assert_eq!(restricted_latest.last(), Some(&"seccompProfile_restricted"));
        assert_eq!(
            overridden_by("seccompProfile_baseline", Version::Minor(18)),
            None
        );
        assert_eq!(
            overridden_by("seccompProfile_baseline", Version::Minor(19)),
            Some("seccompProfile_restricted")
        );
        assert_eq!(overridden_by("procMount", Version::Minor(34)), None);
        assert_eq!(
            overridden_by("procMount", Version::Minor(35)),
            Some("procMount_restricted")
        );
    }
}
