//! Docker engine configuration: `/etc/docker/daemon.json`.
//!
//! When dockerd is installed without a `daemon.json`, the engine's defaults are judged (they
//! fail several rules: inter-container communication on, no user namespace remapping, no
//! live restore, no `no-new-privileges`).

use std::path::PathBuf;

use palisade_model::BaselineCategory;
use serde_json::Value;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, RuleFamily, lynis};
use crate::{Error, Severity};

const DAEMON_JSON: &str = "/etc/docker/daemon.json";
const DOCKERD_BINARIES: &[&str] = &[
    "/usr/bin/dockerd",
    "/usr/sbin/dockerd",
    "/usr/local/bin/dockerd",
];

const CONTAINER: RuleFamily = RuleFamily::new(BaselineCategory::Container, lynis!["CONT-8104"]);

static ICC: HostRule = CONTAINER.rule(
    "PAL-HOST-040",
    Severity::Medium,
    "Docker lets containers on the default bridge talk to each other",
    "With inter-container communication on, one compromised container reaches every other \
     container on the default bridge.",
    "Set `\"icc\": false` in /etc/docker/daemon.json and use user-defined networks for \
     containers that must talk.",
);
static USERNS_REMAP: HostRule = CONTAINER.rule(
    "PAL-HOST-041",
    Severity::Medium,
    "Docker does not remap container root to an unprivileged user",
    "Without user namespace remapping, root in a container is root on the host after an escape.",
    "Set `\"userns-remap\": \"default\"` in /etc/docker/daemon.json.",
);
static LIVE_RESTORE: HostRule = CONTAINER.rule(
    "PAL-HOST-042",
    Severity::Low,
    "Docker stops containers when the daemon stops",
    "Without live restore, patching or restarting dockerd takes every container down, which \
     discourages timely updates.",
    "Set `\"live-restore\": true` in /etc/docker/daemon.json.",
);
static NO_NEW_PRIVILEGES: HostRule = CONTAINER.rule(
    "PAL-HOST-043",
    Severity::Medium,
    "Docker containers may gain privileges through setuid programs",
    "Without `no-new-privileges`, a process in a container can gain privileges by running a \
     setuid program.",
    "Set `\"no-new-privileges\": true` in /etc/docker/daemon.json.",
);
static INSECURE_REGISTRIES: HostRule = CONTAINER.rule(
    "PAL-HOST-044",
    Severity::High,
    "Docker pulls from registries without TLS verification",
    "Images from an insecure registry can be replaced in transit.",
    "Remove `insecure-registries` from /etc/docker/daemon.json and give the registries valid \
     certificates.",
);
static TCP_WITHOUT_TLS: HostRule = CONTAINER.rule(
    "PAL-HOST-045",
    Severity::Critical,
    "The Docker API listens on TCP without TLS client verification",
    "Anyone who reaches the port controls the Docker engine, which is root on the host.",
    "Remove `tcp://` entries from `hosts`, or set `\"tlsverify\": true` with `tlscacert`, \
     `tlscert` and `tlskey`.",
);

pub(crate) static RULES: &[&HostRule] = &[
    &ICC,
    &USERNS_REMAP,
    &LIVE_RESTORE,
    &NO_NEW_PRIVILEGES,
    &INSECURE_REGISTRIES,
    &TCP_WITHOUT_TLS,
];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let config = match host.read(DAEMON_JSON) {
        Ok(Some(file)) => match serde_json::from_str::<Value>(&file.text) {
            Ok(Value::Object(map)) => Some((map, file.text)),
            Ok(_) => {
                let error = Error::config(DAEMON_JSON.into(), None, "is not a JSON object".into());
                return RULES.iter().map(|rule| rule.error(&error)).collect();
            }
            Err(error) => {
                let error = Error::config(
                    PathBuf::from(DAEMON_JSON),
                    Some(error.line()),
                    format!("invalid JSON: {error}"),
                );
                return RULES.iter().map(|rule| rule.error(&error)).collect();
            }
        },
        Ok(None) if host.any_exists(DOCKERD_BINARIES) => None,
        Ok(None) => {
            return RULES
                .iter()
                .map(|rule| {
                    rule.not_applicable("no Docker engine: neither daemon.json nor dockerd exists")
                })
                .collect();
        }
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    let empty = serde_json::Map::new();
    let (map, text) = match &config {
        Some((map, text)) => (map, text.as_str()),
        None => (&empty, ""),
    };
    let evidence = |key: &str, value: String| {
        vec![HostEvidence::new(
            key,
            value,
            DAEMON_JSON,
            key_line(text, key),
        )]
    };
    let unless_true = |key: &str, default: bool| -> Vec<HostEvidence> {
        match map.get(key) {
            Some(Value::Bool(true)) => Vec::new(),
            Some(value) => evidence(key, value.to_string()),
            None if default => Vec::new(),
            None => evidence(key, format!("unset (default {default})")),
        }
    };
    let icc = match map.get("icc") {
        Some(Value::Bool(false)) => Vec::new(),
        Some(value) => evidence("icc", value.to_string()),
        None => evidence("icc", "unset (default true)".to_owned()),
    };
    let userns = match map.get("userns-remap") {
        Some(Value::String(user)) if !user.is_empty() => Vec::new(),
        Some(value) => evidence("userns-remap", value.to_string()),
        None => evidence("userns-remap", "unset".to_owned()),
    };
    let insecure: Vec<HostEvidence> = map
        .get("insecure-registries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|registry| {
            let registry = registry.as_str().unwrap_or_default().to_owned();
            HostEvidence::new(
                "insecure-registries",
                registry,
                DAEMON_JSON,
                key_line(text, "insecure-registries"),
            )
        })
        .collect();
    let tls_verified = map.get("tlsverify") == Some(&Value::Bool(true));
    let tcp_hosts: Vec<HostEvidence> = map
        .get("hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|address| address.starts_with("tcp://") && !tls_verified)
        .map(|address| HostEvidence::new("hosts", address, DAEMON_JSON, key_line(text, "hosts")))
        .collect();
    let message = if config.is_some() {
        "daemon.json read"
    } else {
        "dockerd installed without daemon.json: engine defaults"
    };
    vec![
        ICC.judge(icc, message),
        USERNS_REMAP.judge(userns, message),
        LIVE_RESTORE.judge(unless_true("live-restore", false), message),
        NO_NEW_PRIVILEGES.judge(unless_true("no-new-privileges", false), message),
        INSECURE_REGISTRIES.judge(insecure, message),
        TCP_WITHOUT_TLS.judge(tcp_hosts, message),
    ]
}

/// The line where `"key"` first appears in a JSON text.
pub(crate) fn key_line(text: &str, key: &str) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    text.lines()
        .position(|line| line.contains(&quoted))
        .map(|idx| idx + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Status, test_support::check_files};

    fn run(daemon_json: Option<&str>, dockerd: bool) -> Vec<CheckResult> {
        let mut files: Vec<_> = daemon_json
            .map(|text| ("/etc/docker/daemon.json", text))
            .into_iter()
            .collect();
        if dockerd {
            files.push(("/usr/bin/dockerd", ""));
        }
        check_files(check, &files)
    }

    #[test]
    fn daemon_json_pass_fail_not_applicable_and_error() {
        assert!(
            run(None, false)
                .iter()
                .all(|r| r.status == Status::NotApplicable)
        );
        let defaults = run(None, true);
        let failing: Vec<&str> = defaults
            .iter()
            .filter(|r| r.status == Status::Fail)
            .map(|r| r.rule.id)
            .collect();
        assert_eq!(
            failing,
            [
                "PAL-HOST-040",
                "PAL-HOST-041",
                "PAL-HOST-042",
                "PAL-HOST-043"
            ]
        );
        let hardened = run(
            Some(
                r#"{"icc": false, "userns-remap": "default", "live-restore": true, "no-new-privileges": true, "hosts": ["unix:///run/docker.sock", "tcp://0.0.0.0:2376"], "tlsverify": true}"#,
            ),
            false,
        );
        assert!(
            hardened.iter().all(|r| r.status == Status::Pass),
            "{hardened:?}"
        );
        let open = run(
            Some(
                "{\n  \"icc\": true,\n  \"insecure-registries\": [\"registry.local:5000\"],\n  \"hosts\": [\"tcp://0.0.0.0:2375\"]\n}\n",
            ),
            false,
        );
        assert_eq!(open[0].evidence[0].line, Some(2));
        assert_eq!(open[4].evidence[0].value, "registry.local:5000");
        assert_eq!(open[5].evidence[0].value, "tcp://0.0.0.0:2375");
        assert_eq!(open[5].evidence[0].line, Some(4));
        let broken = run(Some("{\"icc\": tru"), false);
        assert_eq!(broken[0].status, Status::Error);
        assert!(
            broken[0]
                .message
                .starts_with("/etc/docker/daemon.json:1:1: invalid JSON"),
            "{}",
            broken[0].message
        );
    }
}
