//! containerd configuration: `/etc/containerd/config.toml`, version 2 (`io.containerd.grpc.v1.cri`)
//! and version 3 (`io.containerd.cri.v1.runtime` / `.images`) layouts.

use std::path::PathBuf;

use palisade_model::BaselineCategory;
use toml::{Table, Value};

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, RuleFamily};
use crate::{Error, Severity};

const CONFIG: &str = "/etc/containerd/config.toml";
const CONTAINERD_BINARIES: &[&str] = &[
    "/usr/bin/containerd",
    "/usr/local/bin/containerd",
    "/usr/sbin/containerd",
];
/// The tables that hold CRI runtime settings, by config version.
const CRI_RUNTIME_TABLES: &[&str] = &["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"];
/// The tables that hold CRI registry settings, by config version.
const CRI_IMAGE_TABLES: &[&str] = &["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images"];

const CONTAINER: RuleFamily = RuleFamily::new(BaselineCategory::Container, &[]);

static DISABLE_APPARMOR: HostRule = CONTAINER.rule(
    "PAL-HOST-046",
    Severity::Medium,
    "containerd's CRI plugin disables AppArmor",
    "With `disable_apparmor = true`, Kubernetes pods run without the runtime's default AppArmor \
     profile, whatever their spec says.",
    "Remove `disable_apparmor = true` from the CRI plugin section of /etc/containerd/config.toml.",
);
static INSECURE_REGISTRIES: HostRule = CONTAINER.rule(
    "PAL-HOST-047",
    Severity::High,
    "containerd pulls from registries without TLS verification",
    "A mirror over plain HTTP or `insecure_skip_verify = true` lets images be replaced in transit.",
    "Use HTTPS mirror endpoints with valid certificates and remove `insecure_skip_verify`.",
);
static UNPRIVILEGED_PORTS: HostRule = CONTAINER.rule(
    "PAL-HOST-048",
    Severity::Low,
    "containerd lets unprivileged container processes bind low ports and send ICMP",
    "`enable_unprivileged_ports` and `enable_unprivileged_icmp` lower the bar for spoofing \
     well-known services inside the pod network.",
    "Set `enable_unprivileged_ports = false` and `enable_unprivileged_icmp = false` unless \
     workloads need them.",
);
static GRPC_TCP: HostRule = CONTAINER.rule(
    "PAL-HOST-049",
    Severity::Critical,
    "containerd's API listens on TCP without TLS",
    "Anyone who reaches the port controls every container on the host.",
    "Remove `tcp_address` from the `[grpc]` section, or set `tcp_tls_cert`, `tcp_tls_key` and \
     `tcp_tls_ca`.",
);

pub(crate) static RULES: &[&HostRule] = &[
    &DISABLE_APPARMOR,
    &INSECURE_REGISTRIES,
    &UNPRIVILEGED_PORTS,
    &GRPC_TCP,
];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let (table, text) = match host.read(CONFIG) {
        Ok(Some(file)) => match file.text.parse::<Table>() {
            Ok(table) => (table, file.text),
            Err(error) => {
                let line = error.span().map(|span| {
                    file.text[..span.start.min(file.text.len())]
                        .lines()
                        .count()
                        .max(1)
                });
                let error = Error::config(
                    PathBuf::from(CONFIG),
                    line,
                    format!("invalid TOML: {}", error.message()),
                );
                return RULES.iter().map(|rule| rule.error(&error)).collect();
            }
        },
        Ok(None) if host.any_exists(CONTAINERD_BINARIES) => (Table::new(), String::new()),
        Ok(None) => {
            return RULES
                .iter()
                .map(|rule| {
                    rule.not_applicable("no containerd: neither config.toml nor containerd exists")
                })
                .collect();
        }
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    let plugins = table.get("plugins").and_then(Value::as_table);
    let plugin = |name: &str| {
        plugins
            .and_then(|plugins| plugins.get(name))
            .and_then(Value::as_table)
    };
    let evidence =
        |key: &str, value: String| HostEvidence::new(key, value, CONFIG, key_line(&text, key));
    let mut apparmor = Vec::new();
    let mut unprivileged = Vec::new();
    for runtime in CRI_RUNTIME_TABLES.iter().filter_map(|name| plugin(name)) {
        if runtime.get("disable_apparmor").and_then(Value::as_bool) == Some(true) {
            apparmor.push(evidence("disable_apparmor", "true".to_owned()));
        }
        for key in ["enable_unprivileged_ports", "enable_unprivileged_icmp"] {
            if runtime.get(key).and_then(Value::as_bool) == Some(true) {
                unprivileged.push(evidence(key, "true".to_owned()));
            }
        }
    }
    let mut insecure = Vec::new();
    for registry in CRI_IMAGE_TABLES
        .iter()
        .filter_map(|name| plugin(name))
        .filter_map(|images| images.get("registry").and_then(Value::as_table))
    {
        for (name, mirror) in sub_tables(registry, "mirrors") {
            for endpoint in mirror
                .get("endpoint")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|endpoint| endpoint.starts_with("http://"))
            {
                insecure.push(evidence("endpoint", format!("{name}: {endpoint}")));
            }
        }
        for (name, config) in sub_tables(registry, "configs") {
            let skip_verify = config
                .get("tls")
                .and_then(Value::as_table)
                .and_then(|tls| tls.get("insecure_skip_verify"))
                .and_then(Value::as_bool);
            if skip_verify == Some(true) {
                insecure.push(evidence("insecure_skip_verify", format!("{name}: true")));
            }
        }
    }
    let grpc = table.get("grpc").and_then(Value::as_table);
    let tcp_address = grpc
        .and_then(|grpc| grpc.get("tcp_address"))
        .and_then(Value::as_str)
        .filter(|address| !address.is_empty());
    let tls = grpc
        .and_then(|grpc| grpc.get("tcp_tls_cert"))
        .and_then(Value::as_str)
        .is_some_and(|cert| !cert.is_empty());
    let grpc_tcp = match tcp_address {
        Some(address) if !tls => vec![evidence("tcp_address", address.to_owned())],
        _ => Vec::new(),
    };
    let message = if text.is_empty() {
        "containerd installed without config.toml: defaults"
    } else {
        "config.toml read"
    };
    vec![
        DISABLE_APPARMOR.judge(apparmor, message),
        INSECURE_REGISTRIES.judge(insecure, message),
        UNPRIVILEGED_PORTS.judge(unprivileged, message),
        GRPC_TCP.judge(grpc_tcp, message),
    ]
}

fn sub_tables<'a>(table: &'a Table, key: &str) -> impl Iterator<Item = (&'a String, &'a Table)> {
    table
        .get(key)
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_table().map(|table| (name, table)))
}

/// The first line that assigns `key` in a TOML text.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|idx| idx + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Status, test_support::check_files};

    fn run(config: Option<&str>) -> Vec<CheckResult> {
        let files: Vec<_> = config
            .map(|text| ("/etc/containerd/config.toml", text))
            .into_iter()
            .collect();
        check_files(check, &files)
    }

    #[test]
    fn config_toml_v2_and_v3() {
        assert!(run(None).iter().all(|r| r.status == Status::NotApplicable));
        let v2 = run(Some(
            "version = 2\n[grpc]\n  tcp_address = \"0.0.0.0:10010\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_apparmor = true\n  enable_unprivileged_ports = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"http://mirror.local:5000\"]\n\
             [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"reg.local\".tls]\n  insecure_skip_verify = true\n",
        ));
        assert!(v2.iter().all(|r| r.status == Status::Fail), "{v2:?}");
        assert_eq!(v2[0].evidence[0].line, Some(5));
        assert_eq!(v2[1].evidence.len(), 2);
        assert_eq!(v2[3].evidence[0].value, "0.0.0.0:10010");
        let v3 = run(Some(
            "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n  enable_unprivileged_icmp = false\n\
             [plugins.'io.containerd.cri.v1.images'.registry.mirrors.'docker.io']\n  endpoint = ['https://mirror.local']\n",
        ));
        assert!(v3.iter().all(|r| r.status == Status::Pass), "{v3:?}");
        let broken = run(Some("version = 2\n[plugins\n"));
        assert_eq!(broken[0].status, Status::Error);
        assert!(
            broken[0]
                .message
                .starts_with("/etc/containerd/config.toml:2:1: invalid TOML"),
            "{}",
            broken[0].message
        );
    }
}
