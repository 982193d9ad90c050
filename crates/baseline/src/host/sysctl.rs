//! Kernel parameters (sysctls).
//!
//! On the running host (root `/`) the values are the kernel's own, from `/proc/sys`. Under
//! another root there is no kernel to ask, so the values are what the host would set at boot:
//! `/etc/sysctl.d/*.conf` in name order, then `/etc/sysctl.conf` (procps' `sysctl --system`
//! order; the last assignment wins), and the kernel's default for a key set nowhere.

use std::collections::BTreeMap;

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, lynis};
use crate::{Error, Reference, Severity};

/// One kernel parameter a rule wants at a value.
struct Wanted {
    key: &'static str,
    /// Whether the value complies.
    complies: fn(i64) -> bool,
    /// The value the kernel uses when nothing sets it.
    kernel_default: i64,
}

struct SysctlRule {
    rule: HostRule,
    wanted: &'static [Wanted],
}

const fn wanted(key: &'static str, complies: fn(i64) -> bool, kernel_default: i64) -> Wanted {
    Wanted {
        key,
        complies,
        kernel_default,
    }
}

const fn sysctl_rule(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    description: &'static str,
    remediation: &'static str,
    references: &'static [Reference],
    wanted: &'static [Wanted],
) -> SysctlRule {
    SysctlRule {
        rule: HostRule {
            id,
            severity,
            category: BaselineCategory::Os,
            title,
            description,
            remediation,
            references,
        },
        wanted,
    }
}

fn is_zero(value: i64) -> bool {
    value == 0
}
fn is_one(value: i64) -> bool {
    value == 1
}
fn at_least_one(value: i64) -> bool {
    value >= 1
}
fn is_two(value: i64) -> bool {
    value == 2
}

static SYSCTL_RULES: [SysctlRule; 12] = [
    sysctl_rule(
        "PAL-HOST-021",
        Severity::Low,
        "IP forwarding is enabled",
        "A host that forwards packets can route traffic between networks it is attached to. \
         Container and Kubernetes nodes need forwarding; other hosts should not have it.",
        "On hosts that are not routers or container hosts, set `net.ipv4.ip_forward = 0` and \
         `net.ipv6.conf.all.forwarding = 0` in /etc/sysctl.d/.",
        lynis!["KRNL-6000"; cis "3.3.1"],
        &[
            wanted("net.ipv4.ip_forward", is_zero, 0),
            wanted("net.ipv6.conf.all.forwarding", is_zero, 0),
        ],
    ),
    sysctl_rule(
        "PAL-HOST-022",
        Severity::Medium,
        "Reverse path filtering is off",
        "Without reverse path filtering the host accepts packets with spoofed source addresses.",
        "Set `net.ipv4.conf.all.rp_filter = 1` and `net.ipv4.conf.default.rp_filter = 1`.",
        lynis!["KRNL-6000"; cis "3.3.7"],
        &[
            wanted("net.ipv4.conf.all.rp_filter", at_least_one, 0),
            wanted("net.ipv4.conf.default.rp_filter", at_least_one, 0),
        ],
    ),
    sysctl_rule(
        "PAL-HOST-023",
        Severity::Medium,
        "ICMP redirects are accepted",
        "Accepted ICMP redirects let an attacker on the network rewrite the host's routes.",
        "Set `net.ipv4.conf.all.accept_redirects = 0`, `net.ipv4.conf.default.accept_redirects = 0` \
         and the same for `net.ipv6.conf.all` and `.default`.",
        lynis!["KRNL-6000"; cis "3.3.5"],
        &[
            wanted("net.ipv4.conf.all.accept_redirects", is_zero, 1),
            wanted("net.ipv4.conf.default.accept_redirects", is_zero, 1),
            wanted("net.ipv6.conf.all.accept_redirects", is_zero, 1),
            wanted("net.ipv6.conf.default.accept_redirects", is_zero, 1),
        ],
    ),
    sysctl_rule(
        "PAL-HOST-024",
        Severity::Medium,
        "ICMP redirects are sent",
        "A host that is not a router has no reason to send redirects; an attacker can use them to \
         reroute traffic.",
        "Set `net.ipv4.conf.all.send_redirects = 0` and `net.ipv4.conf.default.send_redirects = 0`.",
        lynis!["KRNL-6000"; cis "3.3.2"],
        &[
            wanted("net.ipv4.conf.all.send_redirects", is_zero, 1),
            wanted("net.ipv4.conf.default.send_redirects", is_zero, 1),
        ],
    ),
    sysctl_rule(
        "PAL-HOST-025",
        Severity::Medium,
        "Source-routed packets are accepted",
        "Source routing lets a sender choose the path of a packet, bypassing filtering.",
        "Set `net.ipv4.conf.all.accept_source_route = 0`, `net.ipv4.conf.default.accept_source_route = 0` \
         and the same for IPv6.",
        lynis!["KRNL-6000"; cis "3.3.8"],
        &[
            wanted("net.ipv4.conf.all.accept_source_route", is_zero, 0),
            wanted("net.ipv4.conf.default.accept_source_route", is_zero, 0),
            wanted("net.ipv6.conf.all.accept_source_route", is_zero, 0),
            wanted("net.ipv6.conf.default.accept_source_route", is_zero, 0),
        ],
    ),
    sysctl_rule(
        "PAL-HOST-026",
        Severity::Medium,
        "TCP SYN cookies are off",
        "Without SYN cookies a SYN flood exhausts the connection backlog.",
        "Set `net.ipv4.tcp_syncookies = 1`.",
        lynis!["KRNL-6000"; cis "3.3.10"],
        &[wanted("net.ipv4.tcp_syncookies", at_least_one, 1)],
    ),
    sysctl_rule(
        "PAL-HOST-027",
        Severity::High,
        "Address space layout randomisation is not full",
        "Without full ASLR, memory-corruption exploits can predict where code and data are.",
        "Set `kernel.randomize_va_space = 2`.",
        lynis!["KRNL-6000"; cis "1.5.1"],
        &[wanted("kernel.randomize_va_space", is_two, 2)],
    ),
    sysctl_rule(
        "PAL-HOST-028",
        Severity::Medium,
        "Kernel pointers are visible to users",
        "Kernel addresses in /proc help an attacker defeat kernel ASLR.",
        "Set `kernel.kptr_restrict = 1` (or 2).",
        lynis!["KRNL-6000"],
        &[wanted("kernel.kptr_restrict", at_least_one, 0)],
    ),
    sysctl_rule(
        "PAL-HOST-029",
        Severity::Low,
        "Unprivileged users can read the kernel log",
        "The kernel log leaks addresses and hardware details useful to an attacker.",
        "Set `kernel.dmesg_restrict = 1`.",
        lynis!["KRNL-6000"],
        &[wanted("kernel.dmesg_restrict", is_one, 0)],
    ),
    sysctl_rule(
        "PAL-HOST-030",
        Severity::Medium,
        "Any process can ptrace the processes of the same user",
        "With Yama's ptrace_scope at 0, one compromised process can read the memory (and \
         secrets) of every other process of its user.",
        "Set `kernel.yama.ptrace_scope = 1` (or higher).",
        lynis!["KRNL-6000"; cis "1.5.2"],
        &[wanted("kernel.yama.ptrace_scope", at_least_one, 1)],
    ),
    sysctl_rule(
        "PAL-HOST-031",
        Severity::Medium,
        "Link and file protections in sticky directories are off",
        "fs.protected_hardlinks, protected_symlinks, protected_fifos and protected_regular stop \
         classic /tmp races that trick root into writing attacker-chosen files.",
        "Set `fs.protected_hardlinks = 1`, `fs.protected_symlinks = 1`, `fs.protected_fifos = 1` \
         and `fs.protected_regular = 2`.",
        lynis!["KRNL-6000"],
        &[
            wanted("fs.protected_hardlinks", is_one, 0),
            wanted("fs.protected_symlinks", is_one, 0),
            wanted("fs.protected_fifos", at_least_one, 0),
            wanted("fs.protected_regular", at_least_one, 0),
        ],
    ),
    sysctl_rule(
        "PAL-HOST-032",
        Severity::Medium,
        "setuid programs can dump core",
        "Core dumps of setuid programs can contain secrets such as password hashes.",
        "Set `fs.suid_dumpable = 0`.",
        lynis!["KRNL-6000"; cis "1.5.3"],
        &[wanted("fs.suid_dumpable", is_zero, 0)],
    ),
];

pub(crate) static RULES: &[&HostRule] = &[
    &SYSCTL_RULES[0].rule,
    &SYSCTL_RULES[1].rule,
    &SYSCTL_RULES[2].rule,
    &SYSCTL_RULES[3].rule,
    &SYSCTL_RULES[4].rule,
    &SYSCTL_RULES[5].rule,
    &SYSCTL_RULES[6].rule,
    &SYSCTL_RULES[7].rule,
    &SYSCTL_RULES[8].rule,
    &SYSCTL_RULES[9].rule,
    &SYSCTL_RULES[10].rule,
    &SYSCTL_RULES[11].rule,
];

/// A value and where it came from.
struct Setting {
    value: String,
    file: String,
    line: Option<usize>,
}

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let configured = if host.is_live() {
        None
    } else {
        match configured_sysctls(host) {
            Ok(settings) => Some(settings),
            Err(error) => {
                return SYSCTL_RULES
                    .iter()
                    .map(|sysctl_rule| sysctl_rule.rule.error(&error))
                    .collect();
            }
        }
    };
    SYSCTL_RULES
        .iter()
        .map(|sysctl_rule| {
            let mut evidence = Vec::new();
            let mut n_known = 0;
            for wanted in sysctl_rule.wanted {
                let setting = match &configured {
                    Some(settings) => settings.get(wanted.key).map(|setting| Setting {
                        value: setting.value.clone(),
                        file: setting.file.clone(),
                        line: setting.line,
                    }),
                    None => match live_value(host, wanted.key) {
                        Ok(setting) => setting,
                        Err(error) => return sysctl_rule.rule.error(&error),
                    },
                };
                let (value_text, file, line, value) = match setting {
                    Some(setting) => {
                        let value = setting.value.trim().parse::<i64>().ok();
                        (setting.value, setting.file, setting.line, value)
                    }
                    // The running kernel does not have this parameter (e.g. IPv6 or Yama off).
                    None if configured.is_none() => continue,
                    None => (
                        format!("unset (kernel default {})", wanted.kernel_default),
                        "(kernel default)".to_owned(),
                        None,
                        Some(wanted.kernel_default),
                    ),
                };
                n_known += 1;
                if !value.is_some_and(wanted.complies) {
                    evidence.push(HostEvidence::new(wanted.key, value_text, file, line));
                }
            }
            if n_known == 0 {
                return sysctl_rule
                    .rule
                    .not_applicable("the running kernel has none of these parameters");
            }
            let source = if configured.is_some() {
                "/etc/sysctl.conf and /etc/sysctl.d"
            } else {
                "/proc/sys"
            };
            sysctl_rule
                .rule
                .judge(evidence, format!("{n_known} parameters read from {source}"))
        })
        .collect()
}

/// The kernel's current value of `key`, or `None` when the kernel does not have it.
fn live_value(host: &HostRoot, key: &str) -> Result<Option<Setting>, Error> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    Ok(host.read(&path)?.map(|file| Setting {
        value: file.text.trim().to_owned(),
        file: path,
        line: None,
    }))
}

/// The values the host's sysctl files set, last assignment winning.
fn configured_sysctls(host: &HostRoot) -> Result<BTreeMap<String, Setting>, Error> {
    let mut files = host.files_with_suffix("/etc/sysctl.d", ".conf")?;
    files.push("/etc/sysctl.conf".to_owned());
    let mut settings = BTreeMap::new();
    for path in files {
        let Some(file) = host.read(&path)? else {
            continue;
        };
        for (line_idx, line) in file.text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            // A leading `-` means "ignore errors when setting"; it does not change the key.
            let line = line.strip_prefix('-').unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            settings.insert(
                key.trim().replace('/', "."),
                Setting {
                    value: value.trim().to_owned(),
                    file: path.clone(),
                    line: Some(line_idx + 1),
                },
            );
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Status;

    #[test]
    fn configured_values_override_defaults_in_order() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/sysctl.d")).unwrap();
        std::fs::write(
            root.path().join("etc/sysctl.d/10-a.conf"),
            "kernel.kptr_restrict = 1\nkernel.randomize_va_space=0\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/sysctl.d/20-b.conf"),
            "# comment\n-kernel.randomize_va_space = 2\nkernel/dmesg_restrict = 1\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/sysctl.conf"),
            "kernel.kptr_restrict = 0\n",
        )
        .unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host, &HostOptions::default());
        let by_id = |id: &str| results.iter().find(|result| result.rule.id == id).unwrap();
        assert_eq!(by_id("PAL-HOST-027").status, Status::Pass);
        assert_eq!(by_id("PAL-HOST-029").status, Status::Pass);
        let kptr = by_id("PAL-HOST-028");
        assert_eq!(kptr.status, Status::Fail);
        assert_eq!(kptr.evidence[0].file, "/etc/sysctl.conf");
        assert_eq!(kptr.evidence[0].line, Some(1));
        // Set nowhere: the kernel default (redirects accepted) fails, SYN cookies pass.
        let redirects = by_id("PAL-HOST-023");
        assert_eq!(redirects.evidence.len(), 4);
        assert_eq!(redirects.evidence[0].value, "unset (kernel default 1)");
        assert_eq!(by_id("PAL-HOST-026").status, Status::Pass);
    }

    #[test]
    fn live_host_reads_proc_sys() {
        let host = HostRoot::new("/".as_ref()).unwrap();
        let results = check(&host, &HostOptions::default());
        let aslr = results
            .iter()
            .find(|result| result.rule.id == "PAL-HOST-027")
            .unwrap();
        let actual = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").unwrap();
        assert_eq!(aslr.status == Status::Pass, actual.trim() == "2");
        assert!(aslr.message.contains("/proc/sys"), "{}", aslr.message);
    }
}
