//! Kubelet configuration: `/var/lib/kubelet/config.yaml` (`KubeletConfiguration`), judged with
//! the `kubelet.config.k8s.io/v1beta1` defaults for unset fields. CIS Kubernetes ids are as the
//! ComplianceAsCode kube OSCAL catalogue (`CIS-4.2.x`) numbers them.

use std::path::PathBuf;

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, RuleFamily};
use crate::{Error, Reference, Severity, yaml::Node};

const CONFIG: &str = "/var/lib/kubelet/config.yaml";

const CONTAINER: RuleFamily = RuleFamily::new(BaselineCategory::Container, &[]);

const fn cis(id: &'static str) -> Reference {
    Reference {
        source: "CIS Kubernetes",
        id,
    }
}

static ANONYMOUS_AUTH: HostRule = CONTAINER
    .rule(
    "PAL-HOST-050",
    Severity::Critical,
    "The kubelet accepts anonymous requests",
    "Anonymous requests to the kubelet API can list pods and, with a permissive authorizer, run \
     commands in containers.",
    "Set `authentication: {anonymous: {enabled: false}}` in /var/lib/kubelet/config.yaml.",
)
    .with_references(&[cis("4.2.1")]);
static ALWAYS_ALLOW: HostRule = CONTAINER
    .rule(
    "PAL-HOST-051",
    Severity::Critical,
    "The kubelet authorizes every request",
    "With authorization mode AlwaysAllow, any authenticated (or anonymous) caller can exec into \
     every container on the node.",
    "Set `authorization: {mode: Webhook}` in /var/lib/kubelet/config.yaml.",
)
    .with_references(&[cis("4.2.2")]);
static READ_ONLY_PORT: HostRule = CONTAINER
    .rule(
        "PAL-HOST-052",
        Severity::Medium,
        "The kubelet serves its unauthenticated read-only port",
        "The read-only port (usually 10255) shows pods, their specs and environment to anyone who \
     reaches it.",
        "Set `readOnlyPort: 0` in /var/lib/kubelet/config.yaml.",
    )
    .with_references(&[cis("4.2.4")]);
static PROTECT_KERNEL_DEFAULTS: HostRule = CONTAINER.rule(
    "PAL-HOST-053",
    Severity::Low,
    "The kubelet does not protect kernel defaults",
    "With protectKernelDefaults the kubelet refuses to start when kernel tunables differ from \
     what it needs, instead of silently changing them.",
    "Set `protectKernelDefaults: true` in /var/lib/kubelet/config.yaml after setting the \
     kubelet's required sysctls.",
);
static ROTATE_CERTIFICATES: HostRule = CONTAINER
    .rule(
        "PAL-HOST-054",
        Severity::Low,
        "The kubelet does not rotate its client certificate",
        "Without rotation, the kubelet's credentials are long-lived and expire without warning.",
        "Set `rotateCertificates: true` in /var/lib/kubelet/config.yaml.",
    )
    .with_references(&[cis("4.2.10")]);
static IPTABLES_UTIL_CHAINS: HostRule = CONTAINER
    .rule(
        "PAL-HOST-055",
        Severity::Low,
        "The kubelet does not manage its iptables chains",
        "With makeIPTablesUtilChains false, the node's iptables can drift from the pod network \
     configuration.",
        "Remove `makeIPTablesUtilChains: false` from /var/lib/kubelet/config.yaml.",
    )
    .with_references(&[cis("4.2.6")]);

pub(crate) static RULES: &[&HostRule] = &[
    &ANONYMOUS_AUTH,
    &ALWAYS_ALLOW,
    &READ_ONLY_PORT,
    &PROTECT_KERNEL_DEFAULTS,
    &ROTATE_CERTIFICATES,
    &IPTABLES_UTIL_CHAINS,
];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let config = match host.read(CONFIG) {
        Ok(Some(file)) => match crate::yaml::parse_stream(&file.text) {
            Ok(mut documents) if !documents.is_empty() => documents.swap_remove(0),
            Ok(_) => {
                let error = Error::config(CONFIG.into(), None, "is empty".to_owned());
                return RULES.iter().map(|rule| rule.error(&error)).collect();
            }
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
                .map(|rule| {
                    rule.not_applicable("no kubelet configuration (/var/lib/kubelet/config.yaml)")
                })
                .collect();
        }
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    // Each check: the field path, its default, and whether a value is a failure.
    let judge =
        |rule: &'static HostRule, path: &[&str], default: &str, fails: fn(&Node) -> bool| {
            let setting = path.join(".");
            let evidence = match config.at(path) {
                Some(node) if fails(node) => vec![HostEvidence::new(
                    setting,
                    node.display(),
                    CONFIG,
                    Some(node.line),
                )],
                Some(_) => Vec::new(),
                None if !default.is_empty() => vec![HostEvidence::new(
                    setting,
                    format!("unset (default {default})"),
                    CONFIG,
                    None,
                )],
                None => Vec::new(),
            };
            rule.judge(evidence, "KubeletConfiguration read")
        };
    vec![
        judge(
            &ANONYMOUS_AUTH,
            &["authentication", "anonymous", "enabled"],
            "",
            |node| node.as_bool() != Some(false),
        ),
        judge(&ALWAYS_ALLOW, &["authorization", "mode"], "", |node| {
            node.as_str() == Some("AlwaysAllow")
        }),
        judge(&READ_ONLY_PORT, &["readOnlyPort"], "", |node| {
            node.as_i64() != Some(0)
        }),
        judge(
            &PROTECT_KERNEL_DEFAULTS,
            &["protectKernelDefaults"],
            "false",
            |node| node.as_bool() != Some(true),
        ),
        judge(
            &ROTATE_CERTIFICATES,
            &["rotateCertificates"],
            "false",
            |node| node.as_bool() != Some(true),
        ),
        judge(
            &IPTABLES_UTIL_CHAINS,
            &["makeIPTablesUtilChains"],
            "",
            |node| node.as_bool() == Some(false),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Status, test_support::check_files};

    fn run(config: Option<&str>) -> Vec<CheckResult> {
        let files: Vec<_> = config
            .map(|text| ("/var/lib/kubelet/config.yaml", text))
            .into_iter()
            .collect();
        check_files(check, &files)
    }

    #[test]
    fn kubelet_config_pass_fail_not_applicable() {
        assert!(run(None).iter().all(|r| r.status == Status::NotApplicable));
        let open = run(Some(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             authentication:\n  anonymous:\n    enabled: true\nauthorization:\n  mode: AlwaysAllow\n\
             readOnlyPort: 10255\nmakeIPTablesUtilChains: false\n",
        ));
        assert!(open.iter().all(|r| r.status == Status::Fail), "{open:?}");
        assert_eq!(open[0].evidence[0].line, Some(5));
        assert_eq!(open[2].evidence[0].value, "10255");
        assert_eq!(open[3].evidence[0].value, "unset (default false)");
        let hardened = run(Some(
            "kind: KubeletConfiguration\nauthentication: {anonymous: {enabled: false}}\n\
             authorization: {mode: Webhook}\nprotectKernelDefaults: true\nrotateCertificates: true\n",
        ));
        assert!(
            hardened.iter().all(|r| r.status == Status::Pass),
            "{hardened:?}"
        );
        let broken = run(Some("kind: [\n"));
        assert_eq!(broken[0].status, Status::Error);
        assert!(
            broken[0].message.contains("invalid YAML"),
            "{}",
            broken[0].message
        );
    }
}
