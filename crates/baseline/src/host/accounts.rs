//! Accounts: `/etc/passwd`, `/etc/shadow` and `/etc/login.defs`.
//!
//! Hashes are never copied into evidence: only the account name and the hash scheme are.

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, lynis};
use crate::Severity;

const PASSWD: &str = "/etc/passwd";
const SHADOW: &str = "/etc/shadow";
const LOGIN_DEFS: &str = "/etc/login.defs";
/// The longest password lifetime the rules accept, in days.
const MAX_PASSWORD_DAYS: u64 = 365;

static UID_ZERO: HostRule = HostRule {
    id: "PAL-HOST-010",
    severity: Severity::Critical,
    category: BaselineCategory::Os,
    title: "An account other than root has uid 0",
    description: "Every account with uid 0 is root; a second one is a classic backdoor and \
                  hides who acted as root.",
    remediation: "Remove the account or give it its own uid (`usermod -u`), after checking why it \
                  was created.",
    references: lynis!["AUTH-9204"; cis "5.4.2.1"],
};
static EMPTY_PASSWORD: HostRule = HostRule {
    id: "PAL-HOST-011",
    severity: Severity::Critical,
    category: BaselineCategory::Os,
    title: "An account has an empty password",
    description: "An empty password field in /etc/shadow lets anyone log in as that account \
                  wherever password logins are accepted.",
    remediation: "Lock the account (`passwd -l NAME`) or set a password.",
    references: lynis!["AUTH-9283"; cis "7.2.2"],
};
static WEAK_HASH: HostRule = HostRule {
    id: "PAL-HOST-012",
    severity: Severity::High,
    category: BaselineCategory::Os,
    title: "A password is hashed with DES or MD5",
    description: "DES crypt and MD5 crypt (`$1$`) hashes are cracked quickly on commodity GPUs.",
    remediation: "Set `ENCRYPT_METHOD YESCRYPT` (or SHA512) in /etc/login.defs and have the \
                  affected users change their passwords.",
    references: lynis!["AUTH-9229"],
};
static LOGIN_DEFS_AGEING: HostRule = HostRule {
    id: "PAL-HOST-013",
    severity: Severity::Low,
    category: BaselineCategory::Os,
    title: "New passwords never expire (login.defs)",
    description: "PASS_MAX_DAYS in /etc/login.defs sets the lifetime of new accounts' passwords; \
                  above 365 days, a leaked password stays valid indefinitely.",
    remediation: "Set `PASS_MAX_DAYS 365` (or lower) in /etc/login.defs.",
    references: lynis!["AUTH-9286"; cis "5.4.1.1"],
};
static ACCOUNT_AGEING: HostRule = HostRule {
    id: "PAL-HOST-014",
    severity: Severity::Low,
    category: BaselineCategory::Os,
    title: "A password never expires",
    description: "Accounts with a password whose maximum age (shadow field 5) is unset or \
                  above 365 days keep a leaked password valid indefinitely.",
    remediation: "Run `chage --maxdays 365 NAME` for each listed account.",
    references: lynis!["AUTH-9282"; cis "5.4.1.1"],
};
static ENCRYPT_METHOD: HostRule = HostRule {
    id: "PAL-HOST-015",
    severity: Severity::Medium,
    category: BaselineCategory::Os,
    title: "New passwords are hashed with DES or MD5 (login.defs)",
    description: "ENCRYPT_METHOD in /etc/login.defs decides how passwords set with passwd(1) are \
                  hashed.",
    remediation: "Set `ENCRYPT_METHOD YESCRYPT` (or SHA512) in /etc/login.defs.",
    references: lynis!["AUTH-9229"; cis "5.4.1.4"],
};

pub(crate) static RULES: &[&HostRule] = &[
    &UID_ZERO,
    &EMPTY_PASSWORD,
    &WEAK_HASH,
    &LOGIN_DEFS_AGEING,
    &ACCOUNT_AGEING,
    &ENCRYPT_METHOD,
];

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let mut results = Vec::new();
    match host.read(PASSWD) {
        Ok(Some(passwd)) => {
            let evidence = passwd
                .text
                .lines()
                .enumerate()
                .filter_map(|(line_idx, line)| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.len() >= 4 && fields[2].trim() == "0" && fields[0] != "root")
                        .then(|| HostEvidence::new(fields[0], "uid 0", PASSWD, Some(line_idx + 1)))
                })
                .collect();
            results.push(UID_ZERO.judge(evidence, "accounts with uid 0 other than root"));
        }
        Ok(None) => results.push(UID_ZERO.not_applicable("no /etc/passwd")),
        Err(error) => results.push(UID_ZERO.error(&error)),
    }
    match host.read(SHADOW) {
        Ok(Some(shadow)) => {
            let mut empty = Vec::new();
            let mut weak = Vec::new();
            let mut never_expires = Vec::new();
            for (line_idx, line) in shadow.text.lines().enumerate() {
                let fields: Vec<&str> = line.split(':').collect();
                if fields.len() < 2 || line.trim().is_empty() {
                    continue;
                }
                let (name, hash, line) = (fields[0], fields[1], Some(line_idx + 1));
                if hash.is_empty() {
                    empty.push(HostEvidence::new(name, "empty password", SHADOW, line));
                    continue;
                }
                if let Some(scheme) = weak_scheme(hash) {
                    weak.push(HostEvidence::new(name, scheme, SHADOW, line));
                }
                let usable = !hash.starts_with(['!', '*']);
                let max_days = fields.get(4).copied().unwrap_or("").trim();
                if usable
                    && max_days
                        .parse::<u64>()
                        .is_ok_and(|days| days <= MAX_PASSWORD_DAYS)
                {
                    continue;
                }
                if usable {
                    let value = if max_days.is_empty() {
                        "maximum age unset".to_owned()
                    } else {
                        format!("maximum age {max_days} days")
                    };
                    never_expires.push(HostEvidence::new(name, value, SHADOW, line));
                }
            }
            results.push(EMPTY_PASSWORD.judge(empty, "password fields of /etc/shadow"));
            results.push(WEAK_HASH.judge(weak, "hash schemes of /etc/shadow"));
            results.push(ACCOUNT_AGEING.judge(never_expires, "maximum ages of usable passwords"));
        }
        Ok(None) => {
            for rule in [&EMPTY_PASSWORD, &WEAK_HASH, &ACCOUNT_AGEING] {
                results.push(rule.not_applicable("no /etc/shadow"));
            }
        }
        Err(error) => {
            for rule in [&EMPTY_PASSWORD, &WEAK_HASH, &ACCOUNT_AGEING] {
                results.push(rule.error(&error));
            }
        }
    }
    match host.read(LOGIN_DEFS) {
        Ok(Some(login_defs)) => {
            let setting = |key: &str| {
                login_defs
                    .text
                    .lines()
                    .enumerate()
                    .filter_map(|(line_idx, line)| {
                        let mut words = line.split_whitespace();
                        (words.next() == Some(key))
                            .then(|| (line_idx + 1, words.next().unwrap_or("").to_owned()))
                    })
                    .last()
            };
            let ageing = match setting("PASS_MAX_DAYS") {
                Some((_, days))
                    if days
                        .parse::<u64>()
                        .is_ok_and(|days| days <= MAX_PASSWORD_DAYS) =>
                {
                    Vec::new()
                }
                Some((line, days)) => {
                    vec![HostEvidence::new(
                        "PASS_MAX_DAYS",
                        days,
                        LOGIN_DEFS,
                        Some(line),
                    )]
                }
                None => vec![HostEvidence::new(
                    "PASS_MAX_DAYS",
                    "unset (default 99999)",
                    LOGIN_DEFS,
                    None,
                )],
            };
            results.push(LOGIN_DEFS_AGEING.judge(ageing, "PASS_MAX_DAYS"));
            let method = match setting("ENCRYPT_METHOD") {
                Some((line, method))
                    if matches!(method.to_ascii_uppercase().as_str(), "DES" | "MD5") =>
                {
                    vec![HostEvidence::new(
                        "ENCRYPT_METHOD",
                        method,
                        LOGIN_DEFS,
                        Some(line),
                    )]
                }
                _ => Vec::new(),
            };
            results.push(ENCRYPT_METHOD.judge(method, "ENCRYPT_METHOD"));
        }
        Ok(None) => {
            results.push(LOGIN_DEFS_AGEING.not_applicable("no /etc/login.defs"));
            results.push(ENCRYPT_METHOD.not_applicable("no /etc/login.defs"));
        }
        Err(error) => {
            results.push(LOGIN_DEFS_AGEING.error(&error));
            results.push(ENCRYPT_METHOD.error(&error));
        }
    }
    results
}

/// The name of a weak hash scheme, for a password field that holds one. Locked hashes (`!…`)
/// count: unlocking them brings the weak hash back.
fn weak_scheme(field: &str) -> Option<&'static str> {
    let hash = field.trim_start_matches('!');
    if hash.starts_with("$1$") {
        Some("MD5 crypt ($1$)")
    } else if hash.len() == 13 && !hash.starts_with(['$', '*']) {
        Some("DES crypt")
    } else if hash.starts_with('_') && hash.len() == 20 {
        Some("BSDi extended DES crypt")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Status;

    #[test]
    fn accounts_pass_fail_and_not_applicable() {
        let root = tempfile::tempdir().unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host, &HostOptions::default());
        assert!(
            results
                .iter()
                .all(|result| result.status == Status::NotApplicable)
        );

        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/shadow"),
            "root:$y$j9T$abc$def:19000:0:99999:7:::\ntoor::19000:0:99999:7:::\n\
             alice:$1$salt$hash:19000:0:90:7:::\nbob:abJnggxhB/yWI:19000:0:90:7:::\ndaemon:*:19000:0:99999:7:::\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/login.defs"),
            "PASS_MAX_DAYS\t99999\nPASS_MAX_DAYS 90\nENCRYPT_METHOD MD5\n",
        )
        .unwrap();
        let results = check(&host, &HostOptions::default());
        let by_id = |id: &str| results.iter().find(|result| result.rule.id == id).unwrap();
        assert_eq!(by_id("PAL-HOST-010").evidence[0].setting, "toor");
        assert_eq!(by_id("PAL-HOST-010").evidence[0].line, Some(2));
        assert_eq!(by_id("PAL-HOST-011").evidence[0].setting, "toor");
        let weak: Vec<&str> = by_id("PAL-HOST-012")
            .evidence
            .iter()
            .map(|evidence| evidence.value.as_str())
            .collect();
        assert_eq!(weak, ["MD5 crypt ($1$)", "DES crypt"]);
        // Root's 99999-day maximum fails; alice and bob (90 days) and locked daemon do not.
        let ageing: Vec<&str> = by_id("PAL-HOST-014")
            .evidence
            .iter()
            .map(|evidence| evidence.setting.as_str())
            .collect();
        assert_eq!(ageing, ["root"]);
        // The last PASS_MAX_DAYS wins.
        assert_eq!(by_id("PAL-HOST-013").status, Status::Pass);
        assert_eq!(by_id("PAL-HOST-015").status, Status::Fail);
        assert_eq!(by_id("PAL-HOST-015").evidence[0].line, Some(3));
    }
}
