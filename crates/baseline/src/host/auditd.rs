//! The Linux audit daemon: installed and running (enabled at boot, for another root), and
//! watching the identity files.

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, lynis};
use crate::{Error, Severity};

const AUDITD_BINARIES: &[&str] = &["/usr/sbin/auditd", "/sbin/auditd"];
/// systemd links that enable auditd at boot.
const AUDITD_ENABLED_LINKS: &[&str] = &[
    "/etc/systemd/system/multi-user.target.wants/auditd.service",
    "/etc/systemd/system/sysinit.target.wants/auditd.service",
    "/etc/rc2.d/S01auditd",
];
/// Files whose changes CIS-style audit rules watch for writes and attribute changes.
const IDENTITY_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/security/opasswd",
];

static AUDITD_RUNNING: HostRule = HostRule {
    id: "PAL-HOST-038",
    severity: Severity::Medium,
    category: BaselineCategory::Os,
    title: "The audit daemon is not installed or not running",
    description: "Without auditd, security-relevant kernel events (logins, privilege use, changes \
                  to identity files) are not recorded.",
    remediation: "`apt-get install auditd` and `systemctl enable --now auditd`.",
    references: lynis!["ACCT-9628"; cis "6.2.1.1", "6.2.1.2"],
};
static IDENTITY_RULES: HostRule = HostRule {
    id: "PAL-HOST-039",
    severity: Severity::Low,
    category: BaselineCategory::Os,
    title: "Changes to identity files are not audited",
    description: "Audit watches on /etc/passwd, group, shadow, gshadow and security/opasswd \
                  record who changed accounts and groups.",
    remediation: "Add `-w FILE -p wa -k identity` for each listed file to \
                  /etc/audit/rules.d/50-identity.rules and run `augenrules --load`.",
    references: lynis!["ACCT-9630"; cis "6.2.3.8"],
};

pub(crate) static RULES: &[&HostRule] = &[&AUDITD_RUNNING, &IDENTITY_RULES];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let installed = host.any_exists(AUDITD_BINARIES);
    if !installed {
        return vec![
            AUDITD_RUNNING.judge(
                vec![HostEvidence::new(
                    "auditd",
                    "not installed",
                    AUDITD_BINARIES[0],
                    None,
                )],
                "",
            ),
            IDENTITY_RULES.not_applicable("auditd is not installed"),
        ];
    }
    let running = if host.is_live() {
        match process_running(host, "auditd") {
            Ok(true) => Vec::new(),
            Ok(false) => vec![HostEvidence::new("auditd", "not running", "/proc", None)],
            Err(error) => return vec![AUDITD_RUNNING.error(&error), IDENTITY_RULES.error(&error)],
        }
    } else if AUDITD_ENABLED_LINKS.iter().any(|link| host.exists(link)) {
        Vec::new()
    } else {
        vec![HostEvidence::new(
            "auditd.service",
            "not enabled at boot",
            "/etc/systemd/system",
            None,
        )]
    };
    let identity = match watched_files(host) {
        Ok(watched) => IDENTITY_FILES
            .iter()
            .filter(|file| !watched.iter().any(|watched| watched == *file))
            .map(|file| HostEvidence::new(*file, "no write/attribute watch", "/etc/audit", None))
            .collect(),
        Err(error) => {
            return vec![
                AUDITD_RUNNING.judge(running, ""),
                IDENTITY_RULES.error(&error),
            ];
        }
    };
    vec![
        AUDITD_RUNNING.judge(running, "auditd installed"),
        IDENTITY_RULES.judge(
            identity,
            "rules in /etc/audit/audit.rules and /etc/audit/rules.d",
        ),
    ]
}

/// Whether a process named `name` runs (from `/proc/<pid>/comm`).
fn process_running(host: &HostRoot, name: &str) -> Result<bool, Error> {
    for entry in host.list_dir("/proc")? {
        if !entry.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        // A process may exit between the listing and the read; that is not an error.
        if let Ok(Some(comm)) = host.read(&format!("/proc/{entry}/comm"))
            && comm.text.trim() == name
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The files that `-w FILE -p …` rules with `w` or `a` permissions watch, or that syscall
/// rules with `-F path=FILE` name.
fn watched_files(host: &HostRoot) -> Result<Vec<String>, Error> {
    let mut files = host.files_with_suffix("/etc/audit/rules.d", ".rules")?;
    files.push("/etc/audit/audit.rules".to_owned());
    let mut watched = Vec::new();
    for path in files {
        let Some(file) = host.read(&path)? else {
            continue;
        };
        for line in file.text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(position) = words.iter().position(|word| *word == "-w") {
                let permissions = words
                    .iter()
                    .position(|word| *word == "-p")
                    .and_then(|idx| words.get(idx + 1))
                    .copied()
                    .unwrap_or("rwxa");
                if permissions.contains(['w', 'a'])
                    && let Some(target) = words.get(position + 1)
                {
                    watched.push((*target).to_owned());
                }
            }
            for word in &words {
                if let Some(target) = word.strip_prefix("path=") {
                    watched.push(target.to_owned());
                }
            }
        }
    }
    Ok(watched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Status;

    #[test]
    fn auditd_installed_enabled_and_watching() {
        let root = tempfile::tempdir().unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host, &HostOptions::default());
        assert_eq!(results[0].status, Status::Fail);
        assert_eq!(results[0].evidence[0].value, "not installed");
        assert_eq!(results[1].status, Status::NotApplicable);

        let write = |path: &str, text: &str| {
            let real = root.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(real.parent().unwrap()).unwrap();
            std::fs::write(real, text).unwrap();
        };
        write("/usr/sbin/auditd", "");
        write(
            "/etc/audit/rules.d/50-identity.rules",
            "-w /etc/passwd -p wa -k identity\n-w /etc/group -p wa -k identity\n\
             -w /etc/shadow -p r -k identity\n-a always,exit -F path=/etc/gshadow -F perm=wa\n",
        );
        let results = check(&host, &HostOptions::default());
        assert_eq!(results[0].evidence[0].value, "not enabled at boot");
        let missing: Vec<&str> = results[1]
            .evidence
            .iter()
            .map(|e| e.setting.as_str())
            .collect();
        assert_eq!(missing, ["/etc/shadow", "/etc/security/opasswd"]);
        write(
            "/etc/systemd/system/multi-user.target.wants/auditd.service",
            "",
        );
        assert_eq!(
            check(&host, &HostOptions::default())[0].status,
            Status::Pass
        );
    }
}
