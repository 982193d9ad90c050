//! MongoDB: `/etc/mongod.conf` (YAML): authorization and bind addresses.

use std::path::PathBuf;

use palisade_model::BaselineCategory;

use crate::{CheckResult, Error, HostEvidence, HostRoot, HostRule, Severity, host::lynis};

const CONFIG: &str = "/etc/mongod.conf";

static NO_AUTHORIZATION: HostRule = HostRule {
    id: "PAL-SVC-010",
    severity: Severity::Critical,
    category: BaselineCategory::Database,
    title: "MongoDB does not require authentication",
    description: "Without `security.authorization: enabled`, every client that reaches the port \
                  can read and change every database.",
    remediation: "Create an administrator, then set `security: {authorization: enabled}` in \
                  /etc/mongod.conf and restart mongod.",
    references: lynis!["DBS-1820"],
};
static BIND_ALL: HostRule = HostRule {
    id: "PAL-SVC-011",
    severity: Severity::High,
    category: BaselineCategory::Database,
    title: "MongoDB listens on all addresses",
    description: "`net.bindIpAll: true` or a bindIp of 0.0.0.0 exposes the server to every \
                  network the host is on.",
    remediation: "Set `net.bindIp` to `127.0.0.1` (or the private address clients use).",
    references: &[],
};

pub(crate) static RULES: &[&HostRule] = &[&NO_AUTHORIZATION, &BIND_ALL];

pub(crate) fn check(host: &HostRoot) -> Vec<CheckResult> {
    let config = match host.read(CONFIG) {
        Ok(Some(file)) => match crate::yaml::parse_stream(&file.text) {
            Ok(mut documents) if !documents.is_empty() => documents.swap_remove(0),
            Ok(_) => crate::yaml::Node {
                line: 1,
                column: 1,
                value: crate::yaml::Value::Null,
            },
            Err(error) => {
                let error = Error::config(
                    PathBuf::from(CONFIG),
                    Some(error.line),
                    format!("invalid YAML: {}", error.message),
                );
                return RULES.iter().map(|rule| rule.error(&error)).collect();
            }
        },
        Ok(None) => {
            return RULES
                .iter()
                .map(|rule| rule.not_applicable("no MongoDB configuration (/etc/mongod.conf)"))
                .collect();
        }
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    let authorization = match config.at(&["security", "authorization"]) {
        Some(node) if node.as_str() == Some("enabled") => Vec::new(),
        Some(node) => vec![HostEvidence::new(
            "security.authorization",
            node.display(),
            CONFIG,
            Some(node.line),
        )],
        None => vec![HostEvidence::new(
            "security.authorization",
            "unset (default disabled)",
            CONFIG,
            None,
        )],
    };
    let mut bind_all = Vec::new();
    if let Some(node) = config.at(&["net", "bindIpAll"])
        && node.as_bool() == Some(true)
    {
        bind_all.push(HostEvidence::new(
            "net.bindIpAll",
            "true",
            CONFIG,
            Some(node.line),
        ));
    }
    if let Some(node) = config.at(&["net", "bindIp"])
        && node.as_str().is_some_and(|addresses| {
            addresses
                .split(',')
                .any(|address| matches!(address.trim(), "0.0.0.0" | "::" | "*"))
        })
    {
        bind_all.push(HostEvidence::new(
            "net.bindIp",
            node.display(),
            CONFIG,
            Some(node.line),
        ));
    }
    vec![
        NO_AUTHORIZATION.judge(authorization, "mongod.conf read"),
        BIND_ALL.judge(bind_all, "mongod.conf read"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn mongod_conf() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        assert!(
            check(&host)
                .iter()
                .all(|r| r.status == Status::NotApplicable)
        );
        std::fs::write(
            root.path().join("etc/mongod.conf"),
            "net:\n  port: 27017\n  bindIp: 0.0.0.0\n",
        )
        .unwrap();
        let results = check(&host);
        assert_eq!(results[0].evidence[0].value, "unset (default disabled)");
        assert_eq!(results[1].evidence[0].line, Some(3));
        std::fs::write(
            root.path().join("etc/mongod.conf"),
            "net:\n  bindIp: 127.0.0.1\nsecurity:\n  authorization: enabled\n",
        )
        .unwrap();
        assert!(check(&host).iter().all(|r| r.status == Status::Pass));
    }
}
