//! Redis: `redis.conf` (with `include`s) and a RESP probe (`PING`, then `AUTH` with weak
//! passwords when the server asks for one).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
};

use palisade_model::BaselineCategory;

use super::{
    ProbeOptions,
    probe::{Connection, Pacer, WEAK_PASSWORDS, connect},
};
use crate::{
    CheckResult, Error, HostEvidence, HostRoot, HostRule, Severity,
    host::root::HostFile,
    host::{RuleFamily, lynis},
};

const CONFIG_PATHS: &[&str] = &[
    "/etc/redis/redis.conf",
    "/etc/redis.conf",
    "/usr/local/etc/redis/redis.conf",
];
const MAX_INCLUDE_DEPTH: usize = 8;
/// Commands that wipe data, change the server's configuration or take it over.
const DANGEROUS_COMMANDS: &[&str] = &[
    "FLUSHALL",
    "FLUSHDB",
    "CONFIG",
    "DEBUG",
    "MODULE",
    "SLAVEOF",
    "REPLICAOF",
];

const DATABASE: RuleFamily = RuleFamily::new(BaselineCategory::Database, &[]);

static NO_PASSWORD: HostRule = DATABASE
    .rule(
    "PAL-SVC-001",
    Severity::Critical,
    "Redis requires no password",
    "Without `requirepass` (or ACL users with passwords), anyone who reaches the port reads and \
     writes every key, and can often get code execution through CONFIG SET.",
    "Set `requirepass` to a long random secret, or define ACL users with passwords and disable \
     the `default` user.",
)
    .with_references(lynis!["DBS-1884"]);
static BIND_ALL: HostRule = DATABASE
    .rule(
        "PAL-SVC-002",
        Severity::High,
        "Redis listens on all addresses",
        "A Redis bound to every interface is reachable from the network.",
        "Set `bind 127.0.0.1 -::1` (or the one private address clients use).",
    )
    .with_references(lynis!["DBS-1888"]);
static PROTECTED_MODE_OFF: HostRule = DATABASE.rule(
    "PAL-SVC-003",
    Severity::High,
    "Redis protected mode is off",
    "Protected mode refuses non-loopback clients when no password is set; turning it off \
     exposes an unauthenticated server.",
    "Set `protected-mode yes`.",
);
static DANGEROUS_COMMANDS_ENABLED: HostRule = DATABASE
    .rule(
        "PAL-SVC-004",
        Severity::Medium,
        "Dangerous Redis commands are enabled",
        "FLUSHALL, FLUSHDB, CONFIG, DEBUG, MODULE and REPLICAOF let a client wipe data or take the \
     server over.",
        "Add `rename-command NAME \"\"` for each listed command (or deny them with ACL rules).",
    )
    .with_references(lynis!["DBS-1886"]);
pub(crate) static NO_AUTH_PROBE: HostRule = DATABASE
    .rule(
        "PAL-SVC-014",
        Severity::Critical,
        "Redis answers commands without authentication (probe)",
        "The running Redis server answered PING without AUTH.",
        "Set `requirepass` and restart Redis.",
    )
    .with_references(lynis!["DBS-1884"]);
pub(crate) static WEAK_PASSWORD_PROBE: HostRule = DATABASE.rule(
    "PAL-SVC-015",
    Severity::Critical,
    "Redis accepts a default or common password (probe)",
    "The running Redis server accepted a password from a short list of defaults.",
    "Set `requirepass` to a long random secret.",
);

pub(crate) static RULES: &[&HostRule] = &[
    &NO_PASSWORD,
    &BIND_ALL,
    &PROTECTED_MODE_OFF,
    &DANGEROUS_COMMANDS_ENABLED,
];

/// One directive: keyword (lowercase), arguments, file and line.
struct Directive {
    keyword: String,
    args: Vec<String>,
    file: String,
    line: usize,
}

impl Directive {
    fn evidence(&self, value: impl Into<String>) -> HostEvidence {
        HostEvidence::new(&self.keyword, value, &self.file, Some(self.line))
    }
}

fn load(host: &HostRoot) -> Result<Option<(String, Vec<Directive>)>, Error> {
    for path in CONFIG_PATHS {
        if let Some(file) = host.read(path)? {
            let mut directives = Vec::new();
            parse(host, file, 0, &mut directives)?;
            return Ok(Some(((*path).to_owned(), directives)));
        }
    }
    Ok(None)
}

fn parse(
    host: &HostRoot,
    file: HostFile,
    depth: usize,
    directives: &mut Vec<Directive>,
) -> Result<(), Error> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(Error::too_deep(
            PathBuf::from(&file.path),
            format!("more than {MAX_INCLUDE_DEPTH} levels of include"),
        ));
    }
    for (line_idx, line) in file.text.lines().enumerate() {
        let mut words = line
            .split_whitespace()
            .map(|word| word.trim_matches('"').to_owned());
        let Some(keyword) = words.next() else {
            continue;
        };
        if keyword.starts_with('#') {
            continue;
        }
        let keyword = keyword.to_ascii_lowercase();
        let args: Vec<String> = words.collect();
        if keyword == "include" {
            for pattern in &args {
                for path in host.glob(pattern)? {
                    if let Some(included) = host.read(&path)? {
                        parse(host, included, depth + 1, directives)?;
                    }
                }
            }
            continue;
        }
        directives.push(Directive {
            keyword,
            args,
            file: file.path.clone(),
            line: line_idx + 1,
        });
    }
    Ok(())
}

/// Redis applies the last occurrence of a single-valued directive.
fn last<'a>(directives: &'a [Directive], keyword: &str) -> Option<&'a Directive> {
    directives
        .iter()
        .rev()
        .find(|directive| directive.keyword == keyword)
}

pub(crate) fn check(host: &HostRoot) -> Vec<CheckResult> {
    let (path, directives) = match load(host) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            return RULES
                .iter()
                .map(|rule| rule.not_applicable("no Redis configuration (/etc/redis/redis.conf)"))
                .collect();
        }
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    let has_password = last(&directives, "requirepass")
        .is_some_and(|directive| directive.args.first().is_some_and(|pw| !pw.is_empty()));
    let acl_passwords = directives.iter().any(|directive| {
        directive.keyword == "aclfile"
            || (directive.keyword == "user"
                && directive
                    .args
                    .iter()
                    .any(|arg| arg.starts_with('>') || arg.starts_with('#')))
    });
    let no_password = if has_password || acl_passwords {
        Vec::new()
    } else {
        vec![HostEvidence::new("requirepass", "unset", &path, None)]
    };
    let bind_all = match last(&directives, "bind") {
        Some(directive) => directive
            .args
            .iter()
            .filter(|address| {
                matches!(
                    address.trim_start_matches('-'),
                    "0.0.0.0" | "*" | "::" | "::0" | "::*"
                )
            })
            .map(|address| directive.evidence(address.clone()))
            .collect(),
        None => vec![HostEvidence::new(
            "bind",
            "unset (default all interfaces)",
            &path,
            None,
        )],
    };
    let protected_mode = match last(&directives, "protected-mode") {
        Some(directive)
            if directive
                .args
                .first()
                .is_some_and(|value| value.eq_ignore_ascii_case("no")) =>
        {
            vec![directive.evidence("no")]
        }
        _ => Vec::new(),
    };
    let dangerous = DANGEROUS_COMMANDS
        .iter()
        .filter(|command| {
            !directives.iter().any(|directive| {
                directive.keyword == "rename-command"
                    && directive
                        .args
                        .first()
                        .is_some_and(|name| name.eq_ignore_ascii_case(command))
            })
        })
        .map(|command| {
            HostEvidence::new(
                "rename-command",
                format!("{command} not renamed"),
                &path,
                None,
            )
        })
        .collect();
    let message = format!("{} directives read from {path}", directives.len());
    vec![
        NO_PASSWORD.judge(no_password, message.clone()),
        BIND_ALL.judge(bind_all, message.clone()),
        PROTECTED_MODE_OFF.judge(protected_mode, message.clone()),
        DANGEROUS_COMMANDS_ENABLED.judge(dangerous, message),
    ]
}

/// The `port` the configuration sets, if any.
pub(crate) fn configured_port(host: &HostRoot) -> Option<u16> {
    let (_, directives) = load(host).ok().flatten()?;
    last(&directives, "port")?.args.first()?.parse().ok()
}

/// Sends one command as a RESP array and reads the first line of the reply.
fn command(stream: &mut TcpStream, address: SocketAddr, args: &[&str]) -> Result<String, Error> {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).map_err(|error| {
        Error::probe(address, "sending a command failed".to_owned(), Some(error))
    })?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        if reply.len() > 4096 {
            return Err(Error::probe(
                address,
                "reply line longer than 4096 bytes".to_owned(),
                None,
            ));
        }
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(Error::probe(
                    address,
                    "the server closed the connection".to_owned(),
                    None,
                ));
            }
            Ok(_) => reply.push(byte[0]),
            Err(error) => {
                return Err(Error::probe(
                    address,
                    "reading the reply failed".to_owned(),
                    Some(error),
                ));
            }
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim_end().to_owned())
}

pub(crate) fn probe(address: SocketAddr, options: &ProbeOptions) -> Vec<CheckResult> {
    let fail_both =
        |error: &Error| vec![NO_AUTH_PROBE.error(error), WEAK_PASSWORD_PROBE.error(error)];
    let mut stream = match connect(address, options.timeout) {
        Ok(Connection::Open(stream)) => stream,
        Ok(Connection::Refused) => {
            let why = format!("no Redis server listens on {address}");
            return vec![
                NO_AUTH_PROBE.not_applicable(&why),
                WEAK_PASSWORD_PROBE.not_applicable(why),
            ];
        }
        Err(error) => return fail_both(&error),
    };
    let target = address.to_string();
    let pong = match command(&mut stream, address, &["PING"]) {
        Ok(reply) => reply,
        Err(error) => return fail_both(&error),
    };
    if pong == "+PONG" {
        return vec![
            NO_AUTH_PROBE.judge(
                vec![HostEvidence::new(
                    "PING",
                    "+PONG without AUTH",
                    target,
                    None,
                )],
                "PING answered",
            ),
            WEAK_PASSWORD_PROBE.not_applicable("the server asks for no password"),
        ];
    }
    if !pong.starts_with("-NOAUTH") {
        let error = Error::probe(address, format!("unexpected reply to PING: {pong:?}"), None);
        return fail_both(&error);
    }
    let mut pacer = Pacer::new(options.attempt_interval);
    let mut n_attempts = 0;
    for password in WEAK_PASSWORDS
        .iter()
        .filter(|password| !password.is_empty())
    {
        pacer.wait();
        n_attempts += 1;
        match command(&mut stream, address, &["AUTH", password]) {
            Ok(reply) if reply == "+OK" => {
                return vec![
                    NO_AUTH_PROBE.judge(Vec::new(), "PING refused with NOAUTH"),
                    WEAK_PASSWORD_PROBE.judge(
                        vec![HostEvidence::new(
                            "AUTH",
                            format!("accepted {password:?}"),
                            target,
                            None,
                        )],
                        format!("{n_attempts} passwords tried"),
                    ),
                ];
            }
            Ok(_) => {}
            Err(error) => {
                return vec![
                    NO_AUTH_PROBE.judge(Vec::new(), "PING refused with NOAUTH"),
                    WEAK_PASSWORD_PROBE.error(&error),
                ];
            }
        }
    }
    vec![
        NO_AUTH_PROBE.judge(Vec::new(), "PING refused with NOAUTH"),
        WEAK_PASSWORD_PROBE.judge(
            Vec::new(),
            format!("{n_attempts} passwords tried, all refused"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    fn run(config: &str) -> Vec<CheckResult> {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/redis")).unwrap();
        std::fs::write(root.path().join("etc/redis/redis.conf"), config).unwrap();
        check(&HostRoot::new(root.path()).unwrap())
    }

    #[test]
    fn redis_conf_insecure_and_secure() {
        let insecure = run(
            "bind 0.0.0.0 -::1\nprotected-mode no\nrequirepass \"\"\nrename-command CONFIG \"\"\n",
        );
        assert!(
            insecure.iter().all(|r| r.status == Status::Fail),
            "{insecure:?}"
        );
        assert_eq!(insecure[1].evidence[0].line, Some(1));
        assert_eq!(insecure[3].evidence.len(), DANGEROUS_COMMANDS.len() - 1);
        let mut secure =
            "bind 127.0.0.1 -::1\nprotected-mode yes\nrequirepass s3cr3t-long\n".to_owned();
        for command in DANGEROUS_COMMANDS {
            secure.push_str(&format!("rename-command {command} \"\"\n"));
        }
        assert!(run(&secure).iter().all(|r| r.status == Status::Pass));
        let root = tempfile::tempdir().unwrap();
        let results = check(&HostRoot::new(root.path()).unwrap());
        assert!(results.iter().all(|r| r.status == Status::NotApplicable));
    }
}
