//! Kernel modules that hardened hosts disable: rare filesystems, USB storage and rarely used
//! network protocols.
//!
//! A module counts as disabled when a `modprobe.d` file says `install NAME /bin/false` (or
//! `/bin/true`, `/usr/bin/false`, `/usr/bin/true`) or `blacklist NAME`. On the running host a
//! module that is loaded right now (`/proc/modules`) fails regardless. `-` and `_` are the same
//! in module names, as modprobe treats them.

use std::collections::BTreeMap;

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, lynis};
use crate::{Error, Severity};

const MODPROBE_DIRS: &[&str] = &[
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
];
const DISABLING_COMMANDS: &[&str] = &["/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true"];

struct ModuleRule {
    rule: HostRule,
    modules: &'static [&'static str],
}

static MODULE_RULES: [ModuleRule; 3] = [
    ModuleRule {
        rule: HostRule {
            id: "PAL-HOST-033",
            severity: Severity::Low,
            category: BaselineCategory::Os,
            title: "Rarely used filesystem modules are not disabled",
            description: "Filesystem drivers for cramfs, freevxfs, hfs, hfsplus and udf are rarely \
                          needed on servers and are attack surface for crafted images.",
            remediation: "For each module add `install NAME /bin/false` and `blacklist NAME` to a \
                          file in /etc/modprobe.d/, then `rmmod NAME` if it is loaded.",
            references: lynis!["FILE-6430"; cis "1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.8"],
        },
        modules: &["cramfs", "freevxfs", "hfs", "hfsplus", "udf"],
    },
    ModuleRule {
        rule: HostRule {
            id: "PAL-HOST-034",
            severity: Severity::Medium,
            category: BaselineCategory::Os,
            title: "USB storage is not disabled",
            description: "USB mass storage lets anyone with physical access copy data off the host \
                          or bring code onto it.",
            remediation: "Add `install usb-storage /bin/false` and `blacklist usb-storage` to a \
                          file in /etc/modprobe.d/.",
            references: lynis!["USB-1000"; cis "1.1.1.9"],
        },
        modules: &["usb-storage"],
    },
    ModuleRule {
        rule: HostRule {
            id: "PAL-HOST-035",
            severity: Severity::Medium,
            category: BaselineCategory::Os,
            title: "Uncommon network protocol modules are not disabled",
            description: "DCCP, SCTP, RDS and TIPC are rarely used and have had several \
                          remotely reachable kernel vulnerabilities.",
            remediation: "For each module add `install NAME /bin/false` and `blacklist NAME` to a \
                          file in /etc/modprobe.d/.",
            references: lynis!["NETW-3200"; cis "3.2.1", "3.2.2", "3.2.3", "3.2.4"],
        },
        modules: &["dccp", "sctp", "rds", "tipc"],
    },
];

pub(crate) static RULES: &[&HostRule] = &[
    &MODULE_RULES[0].rule,
    &MODULE_RULES[1].rule,
    &MODULE_RULES[2].rule,
];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let disabled = match disabled_modules(host) {
        Ok(disabled) => disabled,
        Err(error) => {
            return MODULE_RULES
                .iter()
                .map(|module_rule| module_rule.rule.error(&error))
                .collect();
        }
    };
    let loaded = if host.is_live() {
        match host.read("/proc/modules") {
            Ok(file) => file
                .map(|file| {
                    file.text
                        .lines()
                        .filter_map(|line| line.split_whitespace().next())
                        .map(normalise)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            Err(error) => {
                return MODULE_RULES
                    .iter()
                    .map(|module_rule| module_rule.rule.error(&error))
                    .collect();
            }
        }
    } else {
        Vec::new()
    };
    MODULE_RULES
        .iter()
        .map(|module_rule| {
            let mut evidence = Vec::new();
            for module in module_rule.modules {
                let name = normalise(module);
                if loaded.contains(&name) {
                    evidence.push(HostEvidence::new(*module, "loaded", "/proc/modules", None));
                } else if !disabled.contains_key(&name) {
                    evidence.push(HostEvidence::new(
                        *module,
                        "not disabled",
                        "/etc/modprobe.d",
                        None,
                    ));
                }
            }
            module_rule.rule.judge(
                evidence,
                format!("{} modprobe.d directives disable modules", disabled.len()),
            )
        })
        .collect()
}

fn normalise(module: &str) -> String {
    module.replace('-', "_")
}

/// Modules that a modprobe.d `install … /bin/false` or `blacklist` line disables, with where.
fn disabled_modules(host: &HostRoot) -> Result<BTreeMap<String, (String, usize)>, Error> {
    let mut disabled = BTreeMap::new();
    for dir in MODPROBE_DIRS {
        for path in host.files_with_suffix(dir, ".conf")? {
            let Some(file) = host.read(&path)? else {
                continue;
            };
            for (line_idx, line) in file.text.lines().enumerate() {
                let words: Vec<&str> = line.split_whitespace().collect();
                let module = match words.as_slice() {
                    ["blacklist", module, ..] => module,
                    ["install", module, command, ..] if DISABLING_COMMANDS.contains(command) => {
                        module
                    }
                    _ => continue,
                };
                disabled.insert(normalise(module), (path.clone(), line_idx + 1));
            }
        }
    }
    Ok(disabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Status;

    #[test]
    fn modprobe_directives_disable_modules() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/modprobe.d")).unwrap();
        std::fs::write(
            root.path().join("etc/modprobe.d/cis.conf"),
            "install cramfs /bin/false\ninstall freevxfs /bin/false\nblacklist hfs\n\
             install hfsplus /bin/true\ninstall udf /sbin/modprobe --ignore-install udf\n\
             install usb_storage /bin/false\n",
        )
        .unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host, &HostOptions::default());
        assert_eq!(results[0].status, Status::Fail);
        let modules: Vec<&str> = results[0]
            .evidence
            .iter()
            .map(|e| e.setting.as_str())
            .collect();
        assert_eq!(modules, ["udf"]);
        // usb_storage and usb-storage are the same module.
        assert_eq!(results[1].status, Status::Pass);
        assert_eq!(results[2].evidence.len(), 4);
    }
}
