//! One bounded walk of the host's root file system for world-writable directories without the
//! sticky bit and for setuid/setgid programs.
//!
//! The walk never follows symbolic links, stays on the root's file system (like `find -xdev`:
//! `/proc`, `/sys`, `/dev`, `/run` and every other mount are not entered) and stops after
//! [`WalkLimits::max_entries`] entries or below [`WalkLimits::max_depth`] levels; the result
//! message says when a limit cut it short. setuid/setgid programs are compared with a built-in
//! list of the ones Debian and common packages ship.

use std::{fs, os::unix::fs::MetadataExt, path::PathBuf};

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, lynis};
use crate::Severity;

/// Limits of the file-system walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkLimits {
    /// At most this many directory entries are looked at.
    pub max_entries: usize,
    /// Directories deeper than this are not entered.
    pub max_depth: usize,
}

impl Default for WalkLimits {
    fn default() -> WalkLimits {
        WalkLimits {
            max_entries: 2_000_000,
            max_depth: 64,
        }
    }
}

/// Directories never walked: kernel and runtime pseudo file systems.
const SKIPPED: &[&str] = &["/proc", "/sys", "/dev", "/run"];
/// How many offending paths a result lists.
const MAX_EVIDENCE: usize = 100;

/// setuid or setgid programs shipped by Debian 12 packages (util-linux, passwd, sudo, openssh,
/// dbus, policykit, fuse, uidmap, at, cron, ...), with and without the `/usr` merge.
const EXPECTED_PRIVILEGED: &[&str] = &[
    "/usr/bin/at",
    "/usr/bin/bsd-write",
    "/usr/bin/chage",
    "/usr/bin/chfn",
    "/usr/bin/chsh",
    "/usr/bin/crontab",
    "/usr/bin/dotlockfile",
    "/usr/bin/expiry",
    "/usr/bin/fusermount",
    "/usr/bin/fusermount3",
    "/usr/bin/gpasswd",
    "/usr/bin/mount",
    "/usr/bin/newgidmap",
    "/usr/bin/newgrp",
    "/usr/bin/newuidmap",
    "/usr/bin/ntfs-3g",
    "/usr/bin/passwd",
    "/usr/bin/pkexec",
    "/usr/bin/ssh-agent",
    "/usr/bin/su",
    "/usr/bin/sudo",
    "/usr/bin/umount",
    "/usr/bin/wall",
    "/usr/bin/write",
    "/usr/lib/chromium/chrome-sandbox",
    "/usr/lib/dbus-1.0/dbus-daemon-launch-helper",
    "/usr/lib/openssh/ssh-keysign",
    "/usr/lib/policykit-1/polkit-agent-helper-1",
    "/usr/lib/polkit-1/polkit-agent-helper-1",
    "/usr/lib/x86_64-linux-gnu/utempter/utempter",
    "/usr/libexec/polkit-agent-helper-1",
    "/usr/sbin/mount.cifs",
    "/usr/sbin/mount.nfs",
    "/usr/sbin/pam_extrausers_chkpwd",
    "/usr/sbin/postdrop",
    "/usr/sbin/postqueue",
    "/usr/sbin/exim4",
    "/usr/sbin/unix_chkpwd",
];

static WORLD_WRITABLE_DIRS: HostRule = HostRule {
    id: "PAL-HOST-036",
    severity: Severity::Medium,
    category: BaselineCategory::Os,
    title: "World-writable directories without the sticky bit",
    description: "In a world-writable directory without the sticky bit, any user can delete or \
                  replace any other user's files, including root's.",
    remediation: "`chmod +t DIR` for each listed directory, or remove the world-write bit.",
    references: lynis!["FILE-6362", "FILE-6363"; cis "7.1.11"],
};
static UNEXPECTED_SETUID: HostRule = HostRule {
    id: "PAL-HOST-037",
    severity: Severity::High,
    category: BaselineCategory::Os,
    title: "Unexpected setuid or setgid programs",
    description: "A setuid-root program that is not part of the distribution is a common \
                  persistence backdoor, and every setuid program is privilege-escalation surface.",
    remediation: "Find out which package installed each listed file (`dpkg -S FILE`); remove the \
                  file or its setuid/setgid bit (`chmod u-s,g-s FILE`) if nothing needs it.",
    references: lynis![; cis "7.1.13"],
};

pub(crate) static RULES: &[&HostRule] = &[&WORLD_WRITABLE_DIRS, &UNEXPECTED_SETUID];

/// What the walk saw.
#[derive(Default)]
struct WalkFindings {
    n_entries: usize,
    truncated: Option<String>,
    world_writable: Vec<String>,
    n_world_writable: usize,
    privileged: Vec<(String, String)>,
    n_privileged: usize,
    unreadable: usize,
}

pub(crate) fn check(host: &HostRoot, options: &HostOptions) -> Vec<CheckResult> {
    let root_device = match fs::symlink_metadata(host.root()) {
        Ok(metadata) => metadata.dev(),
        Err(error) => {
            let error = crate::Error::io(host.root().to_path_buf(), "cannot inspect", error);
            return vec![
                WORLD_WRITABLE_DIRS.error(&error),
                UNEXPECTED_SETUID.error(&error),
            ];
        }
    };
    let mut findings = WalkFindings::default();
    // Depth-first with an explicit stack: no recursion, so no stack overflow on deep trees.
    let mut pending: Vec<(String, usize)> = vec![(String::new(), 0)];
    'walk: while let Some((host_dir, depth)) = pending.pop() {
        let real_dir: PathBuf = host.root().join(host_dir.trim_start_matches('/'));
        let Ok(entries) = fs::read_dir(&real_dir) else {
            findings.unreadable += 1;
            continue;
        };
        for entry in entries {
            if findings.n_entries >= options.walk.max_entries {
                findings.truncated = Some(format!(
                    "stopped after {} entries (the limit)",
                    options.walk.max_entries
                ));
                break 'walk;
            }
            findings.n_entries += 1;
            let Ok(entry) = entry else {
                findings.unreadable += 1;
                continue;
            };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let host_path = format!("{host_dir}/{name}");
            // `symlink_metadata`: a symbolic link is never followed.
            let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
                findings.unreadable += 1;
                continue;
            };
            let mode = metadata.mode();
            if metadata.is_dir() {
                if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                    findings.n_world_writable += 1;
                    if findings.world_writable.len() < MAX_EVIDENCE {
                        findings.world_writable.push(host_path.clone());
                    }
                }
                if metadata.dev() != root_device || SKIPPED.contains(&host_path.as_str()) {
                    continue;
                }
                if depth + 1 > options.walk.max_depth {
                    findings.truncated = Some(format!(
                        "directories below depth {} not entered",
                        options.walk.max_depth
                    ));
                    continue;
                }
                pending.push((host_path, depth + 1));
            } else if metadata.is_file() && mode & 0o6000 != 0 {
                findings.n_privileged += 1;
                if !is_expected(&host_path) && findings.privileged.len() < MAX_EVIDENCE {
                    let bits = match (mode & 0o4000 != 0, mode & 0o2000 != 0) {
                        (true, true) => "setuid+setgid",
                        (true, false) => "setuid",
                        _ => "setgid",
                    };
                    findings.privileged.push((
                        host_path,
                        format!(
                            "{bits} owner {}:{} mode {:04o}",
                            metadata.uid(),
                            metadata.gid(),
                            mode & 0o7777
                        ),
                    ));
                }
            }
        }
    }
    let summary = format!(
        "{} entries walked{}{}",
        findings.n_entries,
        if findings.unreadable > 0 {
            format!(", {} unreadable", findings.unreadable)
        } else {
            String::new()
        },
        findings
            .truncated
            .as_ref()
            .map(|truncated| format!("; incomplete: {truncated}"))
            .unwrap_or_default(),
    );
    let world_writable = findings
        .world_writable
        .iter()
        .map(|path| HostEvidence::new(path, "world-writable, no sticky bit", path, None))
        .collect();
    let privileged = findings
        .privileged
        .iter()
        .map(|(path, value)| HostEvidence::new(path, value, path, None))
        .collect();
    vec![
        WORLD_WRITABLE_DIRS.judge(
            world_writable,
            format!("{} found; {summary}", findings.n_world_writable),
        ),
        UNEXPECTED_SETUID.judge(
            privileged,
            format!(
                "{} setuid/setgid programs; {summary}",
                findings.n_privileged
            ),
        ),
    ]
}

fn is_expected(host_path: &str) -> bool {
    let merged = if host_path.starts_with("/usr/") {
        host_path.to_owned()
    } else {
        format!("/usr{host_path}")
    };
    EXPECTED_PRIVILEGED.contains(&merged.as_str())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::host::Status;

    #[test]
    fn finds_unsticky_world_writable_dirs_and_unexpected_setuid() {
        let root = tempfile::tempdir().unwrap();
        let mkdir = |path: &str, mode: u32| {
            let real = root.path().join(path);
            fs::create_dir_all(&real).unwrap();
            fs::set_permissions(&real, fs::Permissions::from_mode(mode)).unwrap();
        };
        let file = |path: &str, mode: u32| {
            let real = root.path().join(path);
            fs::write(&real, "x").unwrap();
            fs::set_permissions(&real, fs::Permissions::from_mode(mode)).unwrap();
        };
        mkdir("tmp", 0o1777);
        mkdir("srv/drop", 0o777);
        mkdir("usr/bin", 0o755);
        mkdir("bin", 0o755);
        file("usr/bin/passwd", 0o4755);
        file("bin/su", 0o4755);
        file("usr/bin/backdoor", 0o4755);
        file("usr/bin/ls", 0o755);
        // A link to a world-writable directory outside the root is not followed.
        std::os::unix::fs::symlink("/tmp", root.path().join("link")).unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host, &HostOptions::default());
        assert_eq!(results[0].status, Status::Fail);
        let dirs: Vec<&str> = results[0]
            .evidence
            .iter()
            .map(|e| e.setting.as_str())
            .collect();
        assert_eq!(dirs, ["/srv/drop"]);
        let programs: Vec<&str> = results[1]
            .evidence
            .iter()
            .map(|e| e.setting.as_str())
            .collect();
        assert_eq!(programs, ["/usr/bin/backdoor"]);
        assert!(
            results[1].message.starts_with("3 setuid/setgid programs"),
            "{}",
            results[1].message
        );

        let limited = HostOptions {
            walk: WalkLimits {
                max_entries: 3,
                max_depth: 64,
            },
        };
        let results = check(&host, &limited);
        assert!(
            results[0]
                .message
                .contains("incomplete: stopped after 3 entries"),
            "{}",
            results[0].message
        );
    }
}
