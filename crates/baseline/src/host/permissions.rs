//! Permissions of sensitive files: account databases, SSH configuration and host keys,
//! crontabs and sudoers. Each file must be owned by root and have none of the rule's forbidden
//! mode bits; a symbolic link in place of one of these files is reported as such, not followed.

use std::os::unix::fs::MetadataExt;

use palisade_model::BaselineCategory;

use super::{
    CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, RuleFamily, lynis, root::octal_mode,
};
use crate::{Error, Severity};

const OS: RuleFamily = RuleFamily::new(BaselineCategory::Os, &[]);

static ACCOUNT_FILES: HostRule = OS
    .rule(
        "PAL-HOST-016",
        Severity::High,
        "/etc/passwd or /etc/group is writable by others or not owned by root",
        "Whoever can write the account databases can make themselves root.",
        "`chown root:root /etc/passwd /etc/group && chmod 644 /etc/passwd /etc/group`.",
    )
    .with_references(lynis!["FILE-7524"; cis "7.1.1", "7.1.3"]);
static SHADOW_FILES: HostRule = OS
    .rule(
        "PAL-HOST-017",
        Severity::High,
        "/etc/shadow or /etc/gshadow is readable by others",
        "The password hashes can be cracked offline by anyone who can read them.",
        "`chown root:shadow /etc/shadow /etc/gshadow && chmod 640 /etc/shadow /etc/gshadow`.",
    )
    .with_references(lynis!["FILE-7524"; cis "7.1.5", "7.1.7"]);
static SSH_FILES: HostRule = OS
    .rule(
        "PAL-HOST-018",
        Severity::High,
        "SSH server configuration or host private keys are accessible to others",
        "Readable host private keys let anyone impersonate the server; a writable sshd_config lets \
     them change who may log in.",
        "`chmod 600 /etc/ssh/sshd_config /etc/ssh/ssh_host_*_key && chown root:root` them.",
    )
    .with_references(lynis!["FILE-7524"; cis "5.1.1", "5.1.2"]);
static CRON_FILES: HostRule = OS
    .rule(
    "PAL-HOST-019",
    Severity::Medium,
    "Crontabs are accessible to group or others",
    "Readable crontabs show an attacker what runs as root and when; writable ones run their code \
     as root.",
    "`chmod 600 /etc/crontab && chmod 700 /etc/cron.d /etc/cron.hourly /etc/cron.daily \
     /etc/cron.weekly /etc/cron.monthly`, all owned by root.",
)
    .with_references(lynis!["SCHD-7704"; cis "2.4.1.2", "2.4.1.3", "2.4.1.4", "2.4.1.5", "2.4.1.6", "2.4.1.7"]);
static SUDOERS_FILES: HostRule = OS
    .rule(
        "PAL-HOST-020",
        Severity::High,
        "sudoers files are writable or readable by others",
        "Whoever can write a sudoers file can grant themselves root.",
        "`chown root:root /etc/sudoers /etc/sudoers.d/* && chmod 440` them.",
    )
    .with_references(lynis!["AUTH-9252"]);

pub(crate) static RULES: &[&HostRule] = &[
    &ACCOUNT_FILES,
    &SHADOW_FILES,
    &SSH_FILES,
    &CRON_FILES,
    &SUDOERS_FILES,
];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let ssh_files = || -> Result<Vec<String>, Error> {
        let mut files = vec!["/etc/ssh/sshd_config".to_owned()];
        files.extend(host.glob("/etc/ssh/ssh_host_*_key")?);
        Ok(files)
    };
    let sudoers_files = || -> Result<Vec<String>, Error> {
        let mut files = vec!["/etc/sudoers".to_owned()];
        files.extend(host.glob("/etc/sudoers.d/*")?);
        Ok(files)
    };
    vec![
        judge_files(
            host,
            &ACCOUNT_FILES,
            Ok(strings(&["/etc/passwd", "/etc/group"])),
            0o7022,
        ),
        judge_files(
            host,
            &SHADOW_FILES,
            Ok(strings(&["/etc/shadow", "/etc/gshadow"])),
            0o7027,
        ),
        judge_files(host, &SSH_FILES, ssh_files(), 0o7077),
        judge_files(
            host,
            &CRON_FILES,
            Ok(strings(&[
                "/etc/crontab",
                "/etc/cron.d",
                "/etc/cron.hourly",
                "/etc/cron.daily",
                "/etc/cron.weekly",
                "/etc/cron.monthly",
            ])),
            0o7077,
        ),
        judge_files(host, &SUDOERS_FILES, sudoers_files(), 0o7227),
    ]
}

fn strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|path| (*path).to_owned()).collect()
}

/// Fails for every existing file that is not owned by root or has a bit of `forbidden_bits`.
fn judge_files(
    host: &HostRoot,
    rule: &'static HostRule,
    paths: Result<Vec<String>, Error>,
    forbidden_bits: u32,
) -> CheckResult {
    let paths = match paths {
        Ok(paths) => paths,
        Err(error) => return rule.error(&error),
    };
    let mut evidence = Vec::new();
    let mut n_files = 0;
    for path in &paths {
        let metadata = match host.metadata(path) {
            Ok(Some(metadata)) => metadata,
            Ok(None) => continue,
            Err(error) => return rule.error(&error),
        };
        n_files += 1;
        let mode = octal_mode(&metadata);
        let value = format!("mode {mode} owner {}:{}", metadata.uid(), metadata.gid());
        if metadata.file_type().is_symlink() {
            evidence.push(HostEvidence::new(path, "symbolic link", path, None));
        } else if metadata.uid() != 0 || metadata.mode() & forbidden_bits != 0 {
            evidence.push(HostEvidence::new(path, value, path, None));
        }
    }
    if n_files == 0 {
        return rule.not_applicable(format!("none of {} exists", paths.join(", ")));
    }
    rule.judge(
        evidence,
        format!("{n_files} files checked; forbidden mode bits {forbidden_bits:04o}"),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::host::Status;

    #[test]
    fn modes_pass_fail_and_not_applicable() {
        let root = tempfile::tempdir().unwrap();
        let owned_by_root = std::fs::metadata(root.path()).unwrap().uid() == 0;
        if !palisade_testdata::capability("root (fixture files owned by uid 0)", owned_by_root) {
            return;
        }
        let etc = root.path().join("etc");
        std::fs::create_dir_all(etc.join("ssh")).unwrap();
        let write = |name: &str, mode: u32| {
            std::fs::write(etc.join(name), "x\n").unwrap();
            std::fs::set_permissions(etc.join(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        };
        write("passwd", 0o644);
        write("group", 0o666);
        write("shadow", 0o640);
        write("ssh/sshd_config", 0o600);
        write("ssh/ssh_host_ed25519_key", 0o644);
        std::os::unix::fs::symlink("/etc/shadow", etc.join("gshadow")).unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host, &HostOptions::default());
        let by_id = |id: &str| results.iter().find(|result| result.rule.id == id).unwrap();
        let account = by_id("PAL-HOST-016");
        assert_eq!(account.status, Status::Fail);
        assert_eq!(account.evidence.len(), 1);
        assert_eq!(account.evidence[0].setting, "/etc/group");
        assert!(
            account.evidence[0].value.starts_with("mode 0666"),
            "{:?}",
            account.evidence
        );
        let shadow = by_id("PAL-HOST-017");
        assert_eq!(shadow.evidence[0].setting, "/etc/gshadow");
        assert_eq!(shadow.evidence[0].value, "symbolic link");
        let ssh = by_id("PAL-HOST-018");
        assert_eq!(ssh.evidence[0].setting, "/etc/ssh/ssh_host_ed25519_key");
        assert_eq!(by_id("PAL-HOST-019").status, Status::NotApplicable);
        assert_eq!(by_id("PAL-HOST-020").status, Status::NotApplicable);
        write("sudoers", 0o440);
        let results = check(&host, &HostOptions::default());
        assert_eq!(results[4].status, Status::Pass);
    }
}
