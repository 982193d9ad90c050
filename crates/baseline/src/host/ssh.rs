//! SSH daemon configuration: `/etc/ssh/sshd_config` with its `Include`s and `Match` blocks.
//!
//! sshd takes the first value it reads for a keyword, so the effective global value is the
//! first one outside any `Match` block, in file and include order; the defaults are OpenSSH
//! 9.2's (Debian 12). A `Match` block that sets a weak value fails the rule too, with the
//! block's criteria in the evidence, because it applies to the users or addresses it names.

use std::path::PathBuf;

use palisade_model::BaselineCategory;

use super::{CheckResult, HostEvidence, HostOptions, HostRoot, HostRule, RuleFamily, lynis};
use crate::{Error, Severity};

const CONFIG: &str = "/etc/ssh/sshd_config";
const SSHD_BINARIES: &[&str] = &["/usr/sbin/sshd", "/sbin/sshd"];
/// OpenSSH's `READCONF_MAX_DEPTH`.
const MAX_INCLUDE_DEPTH: usize = 16;

const OS: RuleFamily = RuleFamily::new(BaselineCategory::Os, lynis!["SSH-7408"]);

static PERMIT_ROOT_LOGIN: HostRule = OS.rule(
    "PAL-HOST-001",
    Severity::High,
    "SSH allows root to log in",
    "Logging in as root directly leaves no record of who used the account and gives an attacker \
     who guesses or steals one credential the whole host. `prohibit-password` still accepts keys.",
    "Set `PermitRootLogin no` in /etc/ssh/sshd_config and log in as a user who uses sudo.",
)
.with_references(lynis!["SSH-7408"; cis "5.1.20"]);
static PASSWORD_AUTHENTICATION: HostRule = OS.rule(
    "PAL-HOST-002",
    Severity::Medium,
    "SSH accepts passwords",
    "Password logins can be brute-forced and phished; keys or certificates cannot.",
    "Set `PasswordAuthentication no` (and `KbdInteractiveAuthentication no`) after installing \
     users' public keys.",
);
static PERMIT_EMPTY_PASSWORDS: HostRule = OS
    .rule(
        "PAL-HOST-003",
        Severity::Critical,
        "SSH accepts empty passwords",
        "Accounts without a password can log in over the network without any credential.",
        "Set `PermitEmptyPasswords no`.",
    )
    .with_references(lynis!["SSH-7408"; cis "5.1.19"]);
static PROTOCOL: HostRule = OS.rule(
    "PAL-HOST-004",
    Severity::High,
    "SSH protocol version 1 is enabled",
    "SSH protocol 1 has known cryptographic weaknesses that allow session hijacking.",
    "Remove `Protocol 1` (OpenSSH 7.4 and later only speak protocol 2).",
);
static X11_FORWARDING: HostRule = OS.rule(
    "PAL-HOST-005",
    Severity::Low,
    "SSH forwards X11",
    "X11 forwarding exposes the client's display to the server and is rarely needed on servers.",
    "Set `X11Forwarding no`.",
)
.with_references(lynis!["SSH-7408"; cis "5.1.8"]);
static MAX_AUTH_TRIES: HostRule = OS
    .rule(
        "PAL-HOST-006",
        Severity::Low,
        "SSH allows more than 4 authentication attempts per connection",
        "Many attempts per connection make password guessing cheaper.",
        "Set `MaxAuthTries 4` or lower.",
    )
    .with_references(lynis!["SSH-7408"; cis "5.1.16"]);
static CIPHERS: HostRule = OS.rule(
    "PAL-HOST-007",
    Severity::Medium,
    "SSH offers weak ciphers",
    "CBC-mode, RC4, 3DES, Blowfish and CAST ciphers are vulnerable to plaintext recovery or \
     have small blocks.",
    "Set `Ciphers` to AEAD and CTR ciphers only, e.g. \
     `chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr`.",
)
.with_references(lynis!["SSH-7408"; cis "5.1.6"]);
static MACS: HostRule = OS
    .rule(
        "PAL-HOST-008",
        Severity::Medium,
        "SSH offers weak MACs",
        "MD5, SHA-1, RIPEMD-160 and 64-bit UMAC message authentication codes are weak.",
        "Set `MACs` to SHA-2 encrypt-then-MAC algorithms, e.g. \
     `hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com`.",
    )
    .with_references(lynis!["SSH-7408"; cis "5.1.15"]);
static KEX_ALGORITHMS: HostRule = OS.rule(
    "PAL-HOST-009",
    Severity::Medium,
    "SSH offers weak key exchange algorithms",
    "SHA-1 and 1024-bit Diffie-Hellman key exchanges are within reach of well-funded attackers.",
    "Set `KexAlgorithms` to e.g. \
     `sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512`.",
)
.with_references(lynis!["SSH-7408"; cis "5.1.12"]);

pub(crate) static RULES: &[&HostRule] = &[
    &PERMIT_ROOT_LOGIN,
    &PASSWORD_AUTHENTICATION,
    &PERMIT_EMPTY_PASSWORDS,
    &PROTOCOL,
    &X11_FORWARDING,
    &MAX_AUTH_TRIES,
    &CIPHERS,
    &MACS,
    &KEX_ALGORITHMS,
];

const WEAK_CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "rijndael-cbc@lysator.liu.se",
    "blowfish-cbc",
    "cast128-cbc",
    "arcfour",
    "arcfour128",
    "arcfour256",
];
const WEAK_MACS: &[&str] = &[
    "hmac-md5",
    "hmac-md5-96",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-ripemd160",
    "hmac-ripemd160@openssh.com",
    "hmac-ripemd160-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-64-etm@openssh.com",
];
const WEAK_KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "gss-gex-sha1-",
    "gss-group1-sha1-",
    "gss-group14-sha1-",
];

/// One keyword line of the configuration.
#[derive(Debug, Clone)]
struct Directive {
    /// The keyword, lowercase.
    keyword: String,
    /// The arguments, unquoted.
    args: Vec<String>,
    file: String,
    line: usize,
    /// The criteria of the enclosing `Match` block, if any.
    match_criteria: Option<String>,
}

pub(crate) fn check(host: &HostRoot, _options: &HostOptions) -> Vec<CheckResult> {
    let config_exists = match host.read(CONFIG) {
        Ok(file) => file.is_some(),
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    if !config_exists && !host.any_exists(SSHD_BINARIES) {
        return RULES
            .iter()
            .map(|rule| {
                rule.not_applicable("no SSH server: neither /etc/ssh/sshd_config nor sshd exists")
            })
            .collect();
    }
    let mut directives = Vec::new();
    if config_exists && let Err(error) = load(host, CONFIG, 0, None, &mut directives) {
        return RULES.iter().map(|rule| rule.error(&error)).collect();
    }
    let message = format!("{} directives read", directives.len());
    let judge = |rule: &'static HostRule,
                 keyword: &str,
                 default: &str,
                 weak: &dyn Fn(&[String]) -> bool| {
        rule.judge(
            weak_settings(&directives, keyword, default, weak),
            message.clone(),
        )
    };
    vec![
        judge(
            &PERMIT_ROOT_LOGIN,
            "permitrootlogin",
            "prohibit-password",
            &|args| {
                first_lower(args).is_some_and(|value| {
                    matches!(
                        value.as_str(),
                        "yes" | "prohibit-password" | "without-password"
                    )
                })
            },
        ),
        judge(
            &PASSWORD_AUTHENTICATION,
            "passwordauthentication",
            "yes",
            &|args| first_lower(args).as_deref() == Some("yes"),
        ),
        judge(
            &PERMIT_EMPTY_PASSWORDS,
            "permitemptypasswords",
            "no",
            &|args| first_lower(args).as_deref() == Some("yes"),
        ),
        judge(&PROTOCOL, "protocol", "2", &|args| {
            args.iter()
                .flat_map(|arg| arg.split(','))
                .any(|version| version.trim() == "1")
        }),
        judge(&X11_FORWARDING, "x11forwarding", "no", &|args| {
            first_lower(args).as_deref() == Some("yes")
        }),
        judge(&MAX_AUTH_TRIES, "maxauthtries", "6", &|args| {
            args.first()
                .and_then(|value| value.parse::<u32>().ok())
                .is_some_and(|tries| tries > 4)
        }),
        judge(&CIPHERS, "ciphers", "", &|args| {
            has_weak_algorithm(args, WEAK_CIPHERS)
        }),
        judge(&MACS, "macs", "", &|args| {
            has_weak_algorithm(args, WEAK_MACS)
        }),
        judge(&KEX_ALGORITHMS, "kexalgorithms", "", &|args| {
            has_weak_algorithm(args, WEAK_KEX)
        }),
    ]
}

fn first_lower(args: &[String]) -> Option<String> {
    args.first().map(|value| value.to_ascii_lowercase())
}

/// Whether an algorithm list (`a,b`, `+a`, `^a`; `-a` only removes) names a weak algorithm.
/// An entry ending in `-` in `weak` is a prefix (the GSSAPI names carry a suffix).
fn has_weak_algorithm(args: &[String], weak: &[&str]) -> bool {
    let Some(list) = args.first() else {
        return false;
    };
    if list.starts_with('-') {
        return false;
    }
    list.trim_start_matches(['+', '^'])
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .any(|name| {
            weak.iter().any(|weak_name| {
                name == *weak_name || (weak_name.ends_with('-') && name.starts_with(weak_name))
            })
        })
}

/// The effective global value (or the default) when weak, plus every weak `Match` value.
fn weak_settings(
    directives: &[Directive],
    keyword: &str,
    default: &str,
    weak: &dyn Fn(&[String]) -> bool,
) -> Vec<HostEvidence> {
    let mut evidence = Vec::new();
    let global = directives
        .iter()
        .find(|directive| directive.keyword == keyword && directive.match_criteria.is_none());
    match global {
        Some(directive) if weak(&directive.args) => evidence.push(HostEvidence::new(
            keyword,
            directive.args.join(" "),
            directive.file.clone(),
            Some(directive.line),
        )),
        Some(_) => {}
        None if !default.is_empty() && weak(&[default.to_owned()]) => {
            evidence.push(HostEvidence::new(
                keyword,
                format!("unset (default {default})"),
                CONFIG,
                None,
            ));
        }
        None => {}
    }
    for directive in directives.iter().filter(|directive| {
        directive.keyword == keyword && directive.match_criteria.is_some() && weak(&directive.args)
    }) {
        evidence.push(HostEvidence::new(
            format!(
                "Match {} / {keyword}",
                directive.match_criteria.as_deref().unwrap_or_default(),
            ),
            directive.args.join(" "),
            directive.file.clone(),
            Some(directive.line),
        ));
    }
    evidence
}

/// Reads `path` and its includes into `directives`, in sshd's order.
fn load(
    host: &HostRoot,
    path: &str,
    depth: usize,
    inherited_match: Option<&str>,
    directives: &mut Vec<Directive>,
) -> Result<(), Error> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(Error::too_deep(
            PathBuf::from(path),
            format!("more than {MAX_INCLUDE_DEPTH} levels of Include"),
        ));
    }
    let Some(file) = host.read(path)? else {
        return Ok(());
    };
    // A Match block runs to the next Match line or the end of the file it is in.
    let mut match_criteria: Option<String> = inherited_match.map(str::to_owned);
    for (line_idx, line) in file.text.lines().enumerate() {
        let line_number = line_idx + 1;
        let words = split_words(line)
            .map_err(|message| Error::config(PathBuf::from(path), Some(line_number), message))?;
        let Some((keyword, args)) = words.split_first() else {
            continue;
        };
        let keyword = keyword.to_ascii_lowercase();
        match keyword.as_str() {
            "match" => {
                let criteria = args.join(" ");
                match_criteria = if criteria.eq_ignore_ascii_case("all") {
                    None
                } else {
                    Some(criteria)
                };
            }
            "include" => {
                for pattern in args {
                    let pattern = if pattern.starts_with('/') {
                        pattern.clone()
                    } else {
                        format!("/etc/ssh/{pattern}")
                    };
                    for included in host.glob(&pattern)? {
                        load(
                            host,
                            &included,
                            depth + 1,
                            match_criteria.as_deref(),
                            directives,
                        )?;
                    }
                }
            }
            _ => directives.push(Directive {
                keyword,
                args: args.to_vec(),
                file: path.to_owned(),
                line: line_number,
                match_criteria: match_criteria.clone(),
            }),
        }
    }
    Ok(())
}

/// Splits a configuration line into words: `#` starts a comment, `"…"` quotes, and the first
/// word may be joined to the second by `=` (`Key=value`, `Key = value`).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if rest.starts_with('#') {
            break;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| "unterminated quoted string".to_owned())?;
            words.push(quoted[..end].to_owned());
            rest = quoted[end + 1..].trim_start();
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || (words.is_empty() && c == '='))
            .unwrap_or(rest.len());
        if end > 0 {
            words.push(rest[..end].to_owned());
        }
        rest = rest[end..].trim_start();
        if words.len() == 1 {
            rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Status, test_support::check_files};

    fn run(files: &[(&str, &str)]) -> Vec<CheckResult> {
        check_files(check, files)
    }

    fn status(results: &[CheckResult], id: &str) -> Status {
        results
            .iter()
            .find(|result| result.rule.id == id)
            .unwrap()
            .status
    }

    #[test]
    fn no_sshd_is_not_applicable() {
        let results = run(&[("/etc/hostname", "h\n")]);
        assert!(
            results
                .iter()
                .all(|result| result.status == Status::NotApplicable)
        );
    }

    #[test]
    fn hardened_config_passes_and_includes_are_followed() {
        let results = run(&[
            (
                CONFIG,
                "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nX11Forwarding yes\n",
            ),
            (
                "/etc/ssh/sshd_config.d/10-hardening.conf",
                "PermitRootLogin no\nPasswordAuthentication=no\nMaxAuthTries 3\nX11Forwarding no\n\
                 Ciphers aes256-gcm@openssh.com,aes128-ctr\nMACs -hmac-sha1\nKexAlgorithms curve25519-sha256\n",
            ),
            (
                "/etc/ssh/sshd_config.d/ignored.txt",
                "PermitRootLogin yes\n",
            ),
        ]);
        for result in &results {
            assert_eq!(result.status, Status::Pass, "{result:?}");
        }
    }

    #[test]
    fn weak_settings_fail_with_file_and_line() {
        let results = run(&[(
            CONFIG,
            "# defaults\nProtocol 2,1\nPermitEmptyPasswords yes\nCiphers +aes128-cbc\n\
             MACs hmac-sha2-256,hmac-sha1\nKexAlgorithms diffie-hellman-group1-sha1\n\
             PermitRootLogin no\nMatch Address 10.0.0.0/8\n    PermitRootLogin yes\n",
        )]);
        for id in [
            "PAL-HOST-003",
            "PAL-HOST-004",
            "PAL-HOST-007",
            "PAL-HOST-008",
            "PAL-HOST-009",
        ] {
            assert_eq!(status(&results, id), Status::Fail, "{id}");
        }
        let root_login = results
            .iter()
            .find(|result| result.rule.id == "PAL-HOST-001")
            .unwrap();
        assert_eq!(root_login.status, Status::Fail);
        assert_eq!(root_login.evidence.len(), 1);
        assert_eq!(
            root_login.evidence[0].setting,
            "Match Address 10.0.0.0/8 / permitrootlogin"
        );
        assert_eq!(root_login.evidence[0].line, Some(9));
        // Defaults: password authentication is on and MaxAuthTries is 6.
        let password = results
            .iter()
            .find(|result| result.rule.id == "PAL-HOST-002")
            .unwrap();
        assert_eq!(password.evidence[0].value, "unset (default yes)");
        assert_eq!(status(&results, "PAL-HOST-006"), Status::Fail);
        assert_eq!(status(&results, "PAL-HOST-005"), Status::Pass);
    }

    #[test]
    fn include_loops_and_bad_quotes_are_errors() {
        let results = run(&[(CONFIG, "Include /etc/ssh/sshd_config\n")]);
        assert_eq!(results[0].status, Status::Error);
        assert!(
            results[0].message.contains("levels of Include"),
            "{}",
            results[0].message
        );
        let results = run(&[(CONFIG, "Banner \"/etc/issue\n")]);
        assert_eq!(results[0].status, Status::Error);
        assert_eq!(
            results[0].message,
            "/etc/ssh/sshd_config:1:1: unterminated quoted string"
        );
    }
}
