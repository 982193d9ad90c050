//! MySQL and MariaDB: `my.cnf` with `!include`/`!includedir`, and a probe that logs in as
//! `root` over the client/server protocol (handshake v10, `HandshakeResponse41`,
//! `mysql_native_password` scrambles, auth switch requests), with an empty password and then
//! the weak-password list, one new connection per attempt. With a root session (over the
//! server's unix socket, where Debian's default `unix_socket` authentication admits the OS
//! root the agent runs as, or over TCP when a weak password let the probe in) it reads which
//! hosts `root` may log in from.

use std::{
    fmt::Display,
    io::{Read, Write},
    net::SocketAddr,
    os::unix::{fs::FileTypeExt, net::UnixStream},
    path::{Path, PathBuf},
};

use palisade_model::BaselineCategory;
use sha1::{Digest, Sha1};

use super::{
    ProbeOptions,
    probe::{Connection, Pacer, WEAK_PASSWORDS, connect, read_exact},
};
use crate::{
    CheckResult, Error, HostEvidence, HostRoot, HostRule, Severity,
    host::{RuleFamily, lynis},
};

const CONFIG_PATHS: &[&str] = &["/etc/mysql/my.cnf", "/etc/my.cnf"];
const MAX_INCLUDE_DEPTH: usize = 8;
/// Files whose presence says the server is MariaDB, whose defaults differ.
const MARIADB_MARKERS: &[&str] = &["/etc/mysql/mariadb.cnf", "/etc/mysql/mariadb.conf.d"];

const DATABASE: RuleFamily = RuleFamily::new(BaselineCategory::Database, &[]);

static LOCAL_INFILE: HostRule = DATABASE.rule(
    "PAL-SVC-005",
    Severity::Medium,
    "MySQL/MariaDB allows LOAD DATA LOCAL INFILE",
    "With local_infile on, a malicious or compromised server (or SQL injection) can read files \
     from client machines.",
    "Set `local_infile = 0` in the [mysqld] section.",
);
static BIND_ALL: HostRule = DATABASE.rule(
    "PAL-SVC-006",
    Severity::Medium,
    "MySQL/MariaDB listens on all addresses",
    "Without a bind-address the server accepts connections from every network the host is on.",
    "Set `bind-address = 127.0.0.1` (or the private address clients use) in [mysqld].",
);
static SKIP_GRANT_TABLES: HostRule = DATABASE.rule(
    "PAL-SVC-007",
    Severity::Critical,
    "MySQL/MariaDB skips its grant tables",
    "With skip-grant-tables, every client logs in as any user without a password, with every \
     privilege.",
    "Remove `skip-grant-tables` and restart the server.",
);
pub(crate) static EMPTY_ROOT_PROBE: HostRule = DATABASE
    .rule(
        "PAL-SVC-017",
        Severity::Critical,
        "MySQL/MariaDB root logs in without a password (probe)",
        "The running server accepted a login as `root` with an empty password over TCP.",
        "Set a password for every root account (`ALTER USER 'root'@'…' IDENTIFIED BY '…'`) or \
     restrict it to unix_socket authentication.",
    )
    .with_references(lynis!["DBS-1816"]);
pub(crate) static WEAK_ROOT_PROBE: HostRule = DATABASE.rule(
    "PAL-SVC-018",
    Severity::Critical,
    "MySQL/MariaDB root accepts a default or common password (probe)",
    "The running server accepted a login as `root` with a password from a short list of defaults.",
    "Set a long random password for every root account.",
);

pub(crate) static REMOTE_ROOT_PROBE: HostRule = DATABASE.rule(
    "PAL-SVC-020",
    Severity::High,
    "MySQL/MariaDB root may log in from other hosts (probe)",
    "A root account whose host is not `localhost`, `127.0.0.1` or `::1` (e.g. `root@'%'`) \
     accepts superuser logins over the network, where its password can be guessed or sniffed. \
     The local hosts are the ones `mysql_secure_installation` keeps.",
    "Drop the remote root accounts (`DROP USER 'root'@'%'`) and administer the server locally \
     or through a less privileged account.",
);

pub(crate) static RULES: &[&HostRule] = &[&LOCAL_INFILE, &BIND_ALL, &SKIP_GRANT_TABLES];

/// The hosts `mysql_secure_installation` leaves to root.
const LOCAL_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];
/// Where Debian's server listens when `socket` is not set.
const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";
/// The most rows read from `mysql.user`.
const MAX_ROWS: usize = 1_000;

/// One option of a server section.
struct ServerOption {
    /// The name with `-` for `_`, lowercase.
    name: String,
    value: Option<String>,
    file: String,
    line: usize,
}

/// Whether a section applies to the server.
fn is_server_section(section: &str) -> bool {
    let section = section.to_ascii_lowercase();
    ["mysqld", "mariadb", "mariadbd", "server"]
        .iter()
        .any(|prefix| section == *prefix || section.starts_with(&format!("{prefix}-")))
}

fn load(host: &HostRoot) -> Result<Option<(String, Vec<ServerOption>)>, Error> {
    for path in CONFIG_PATHS {
        if host.exists(path) {
            let mut options = Vec::new();
            parse(host, path, 0, &mut options)?;
            return Ok(Some(((*path).to_owned(), options)));
        }
    }
    Ok(None)
}

fn parse(
    host: &HostRoot,
    path: &str,
    depth: usize,
    options: &mut Vec<ServerOption>,
) -> Result<(), Error> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(Error::too_deep(
            PathBuf::from(path),
            format!("more than {MAX_INCLUDE_DEPTH} levels of !include"),
        ));
    }
    let Some(file) = host.read(path)? else {
        return Ok(());
    };
    let mut in_server_section = false;
    for (line_idx, line) in file.text.lines().enumerate() {
        let line = line.trim();
        if let Some(included) = line.strip_prefix("!includedir") {
            let dir = included.trim();
            for included in host.files_with_suffix(dir, ".cnf")? {
                parse(host, &included, depth + 1, options)?;
            }
            continue;
        }
        if let Some(included) = line.strip_prefix("!include") {
            parse(host, included.trim(), depth + 1, options)?;
            continue;
        }
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            in_server_section = is_server_section(section.trim_end_matches(']').trim());
            continue;
        }
        if !in_server_section {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => {
                let value = value
                    .split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\'']);
                (name.trim(), Some(value.to_owned()))
            }
            None => (line, None),
        };
        options.push(ServerOption {
            name: name.to_ascii_lowercase().replace('_', "-"),
            value,
            file: path.to_owned(),
            line: line_idx + 1,
        });
    }
    Ok(())
}

/// The last occurrence of an option, as the server applies them.
fn last<'a>(options: &'a [ServerOption], name: &str) -> Option<&'a ServerOption> {
    options.iter().rev().find(|option| option.name == name)
}

fn is_on(value: Option<&str>) -> bool {
    value.is_none_or(|value| {
        matches!(
            value.to_ascii_lowercase().as_str(),
            "1" | "on" | "true" | "yes"
        )
    })
}

pub(crate) fn check(host: &HostRoot) -> Vec<CheckResult> {
    let (path, options) = match load(host) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            return RULES
                .iter()
                .map(|rule| {
                    rule.not_applicable("no MySQL/MariaDB configuration (/etc/mysql/my.cnf)")
                })
                .collect();
        }
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    let mariadb = host.any_exists(MARIADB_MARKERS);
    let evidence = |option: &ServerOption| {
        HostEvidence::new(
            &option.name,
            option.value.clone().unwrap_or_else(|| "(set)".to_owned()),
            &option.file,
            Some(option.line),
        )
    };
    let local_infile = match last(&options, "local-infile") {
        Some(option) if is_on(option.value.as_deref()) => vec![evidence(option)],
        Some(_) => Vec::new(),
        None if mariadb => vec![HostEvidence::new(
            "local-infile",
            "unset (MariaDB default ON)",
            &path,
            None,
        )],
        None => Vec::new(),
    };
    let networking_off =
        last(&options, "skip-networking").is_some_and(|option| is_on(option.value.as_deref()));
    let bind_all = match last(&options, "bind-address") {
        _ if networking_off => Vec::new(),
        Some(option) => {
            let all = option
                .value
                .as_deref()
                .unwrap_or("")
                .split(',')
                .any(|address| matches!(address.trim(), "*" | "0.0.0.0" | "::" | ""));
            if all {
                vec![evidence(option)]
            } else {
                Vec::new()
            }
        }
        None => vec![HostEvidence::new(
            "bind-address",
            "unset (default all addresses)",
            &path,
            None,
        )],
    };
    let skip_grants = match last(&options, "skip-grant-tables") {
        Some(option) if is_on(option.value.as_deref()) => vec![evidence(option)],
        _ => Vec::new(),
    };
    let message = format!(
        "{} server options read from {path} and its includes ({})",
        options.len(),
        if mariadb { "MariaDB" } else { "MySQL" }
    );
    vec![
        LOCAL_INFILE.judge(local_infile, message.clone()),
        BIND_ALL.judge(bind_all, message.clone()),
        SKIP_GRANT_TABLES.judge(skip_grants, message),
    ]
}

/// The `port` the server sections set, if any.
pub(crate) fn configured_port(host: &HostRoot) -> Option<u16> {
    let (_, options) = load(host).ok().flatten()?;
    last(&options, "port")?.value.as_deref()?.parse().ok()
}

/// The server's unix socket as the configuration names it (inside the host root), or the
/// Debian default.
pub(crate) fn configured_socket(host: &HostRoot) -> PathBuf {
    let socket = load(host)
        .ok()
        .flatten()
        .and_then(|(_, options)| last(&options, "socket")?.value.clone())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
    host.root().join(socket.trim_start_matches('/'))
}

/// Probes root logins over TCP, then reads root's hosts through the unix socket `socket` (or
/// the TCP session a weak password opened).
pub(crate) fn probe(
    address: SocketAddr,
    socket: Option<&Path>,
    options: &ProbeOptions,
) -> Vec<CheckResult> {
    let (mut results, tcp_session) = probe_passwords(address, options);
    results.push(remote_root(socket, tcp_session, address, options));
    results
}

/// The empty- and weak-password results, and the session of an accepted login.
fn probe_passwords(
    address: SocketAddr,
    options: &ProbeOptions,
) -> (Vec<CheckResult>, Option<Session<std::net::TcpStream>>) {
    let target = address.to_string();
    let mut pacer = Pacer::new(options.attempt_interval);
    let mut results = Vec::new();
    let mut n_attempts = 0;
    for password in WEAK_PASSWORDS {
        pacer.wait();
        n_attempts += 1;
        let rule = if password.is_empty() {
            &EMPTY_ROOT_PROBE
        } else {
            &WEAK_ROOT_PROBE
        };
        let attempt = connect(address, options.timeout).and_then(|connection| match connection {
            Connection::Open(stream) => login(stream, &target, "root", password).map(Some),
            Connection::Refused => Ok(None),
        });
        match attempt {
            Ok(None) => {
                let why = format!("no MySQL/MariaDB server listens on {address}");
                let results = vec![
                    EMPTY_ROOT_PROBE.not_applicable(&why),
                    WEAK_ROOT_PROBE.not_applicable(why),
                ];
                return (results, None);
            }
            Ok(Some(Login::Accepted(session))) => {
                results.push(rule.judge(
                    vec![HostEvidence::new(
                        "user root",
                        format!("accepted password {password:?}"),
                        &target,
                        None,
                    )],
                    format!("{n_attempts} logins tried"),
                ));
                if password.is_empty() {
                    results.push(WEAK_ROOT_PROBE.not_applicable("root needs no password at all"));
                }
                return (results, Some(session));
            }
            Ok(Some(Login::Refused(message))) => {
                if password.is_empty() {
                    results.push(EMPTY_ROOT_PROBE.judge(Vec::new(), format!("refused: {message}")));
                }
            }
            Err(error) => {
                if results.is_empty() {
                    results.push(EMPTY_ROOT_PROBE.error(&error));
                }
                results.push(WEAK_ROOT_PROBE.error(&error));
                return (results, None);
            }
        }
    }
    results.push(WEAK_ROOT_PROBE.judge(
        Vec::new(),
        format!("{} passwords tried, all refused", n_attempts - 1),
    ));
    (results, None)
}

/// Which hosts root may log in from, read in a root session: over the unix socket first,
/// then over TCP when a weak password opened one.
fn remote_root(
    socket: Option<&Path>,
    tcp_session: Option<Session<std::net::TcpStream>>,
    address: SocketAddr,
    options: &ProbeOptions,
) -> CheckResult {
    let mut tried = Vec::new();
    if let Some(path) = socket {
        let target = path.display().to_string();
        match socket_session(path, options) {
            Ok(Some(mut session)) => return judge_root_hosts(session.root_hosts(), &target),
            Ok(None) => tried.push(format!("nothing listens on {target}")),
            Err(error) => tried.push(error.to_string()),
        }
    }
    if let Some(mut session) = tcp_session {
        return judge_root_hosts(session.root_hosts(), &address.to_string());
    }
    if socket.is_none_or(|path| !path.exists())
        && matches!(connect(address, options.timeout), Ok(Connection::Refused))
    {
        return REMOTE_ROOT_PROBE
            .not_applicable(format!("no MySQL/MariaDB server listens on {address}"));
    }
    tried.push(format!("no weak password opened a session on {address}"));
    REMOTE_ROOT_PROBE.error(&Error::probe(
        address,
        format!(
            "cannot read mysql.user without a root session ({}); run the check as root on the \
             database host so that unix_socket authentication admits it",
            tried.join("; ")
        ),
        None,
    ))
}

fn judge_root_hosts(hosts: Result<Vec<String>, Error>, target: &str) -> CheckResult {
    match hosts {
        Ok(hosts) => {
            let remote = hosts
                .iter()
                .filter(|host| !LOCAL_HOSTS.contains(&host.to_ascii_lowercase().as_str()))
                .map(|host| {
                    HostEvidence::new("mysql.user root", format!("root@'{host}'"), target, None)
                })
                .collect();
            REMOTE_ROOT_PROBE.judge(remote, format!("root accounts: {}", hosts.join(", ")))
        }
        Err(error) => REMOTE_ROOT_PROBE.error(&error),
    }
}

/// A root session over the unix socket at `path`, when the server admits the OS user there
/// (unix_socket authentication). Only an actual socket is connected to: never a symlink.
fn socket_session(
    path: &Path,
    options: &ProbeOptions,
) -> Result<Option<Session<UnixStream>>, Error> {
    let target = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => {}
        Ok(_) => {
            return Err(Error::probe(&target, "not a unix socket".to_owned(), None));
        }
        Err(_) => return Ok(None),
    }
    let stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(error) => {
            return Err(Error::probe(
                &target,
                "cannot connect".to_owned(),
                Some(error),
            ));
        }
    };
    stream
        .set_read_timeout(Some(options.timeout))
        .and_then(|()| stream.set_write_timeout(Some(options.timeout)))
        .map_err(|error| {
            Error::probe(
                &target,
                "cannot set socket timeouts".to_owned(),
                Some(error),
            )
        })?;
    match login(stream, &target, "root", "")? {
        Login::Accepted(session) => Ok(Some(session)),
        Login::Refused(message) => Err(Error::probe(
            &target,
            format!("root was refused: {message}"),
            None,
        )),
    }
}

enum Login<S> {
    Accepted(Session<S>),
    Refused(String),
}

/// A logged-in connection.
struct Session<S> {
    stream: S,
    target: String,
}

impl<S: Read + Write> Session<S> {
    /// The `Host` of every `root` account (text protocol `COM_QUERY`).
    fn root_hosts(&mut self) -> Result<Vec<String>, Error> {
        let target = self.target.as_str();
        let malformed =
            |what: &str| Error::probe(target, format!("malformed result set: {what}"), None);
        let mut query = vec![0x03];
        query.extend_from_slice(b"SELECT Host FROM mysql.user WHERE User = 'root'");
        write_packet(&mut self.stream, target, 0, &query)?;
        let (_, first) = read_packet(&mut self.stream, target)?;
        if first.first() == Some(&0xff) {
            return Err(Error::probe(
                target,
                format!(
                    "the server refused to list root's hosts: {}",
                    error_text(&first)
                ),
                None,
            ));
        }
        let (columns, _) = length_encoded_int(&first).ok_or_else(|| malformed("column count"))?;
        if columns != 1 {
            return Err(malformed("expected one column"));
        }
        // The column definition, then the EOF packet (no CLIENT_DEPRECATE_EOF).
        for _ in 0..2 {
            read_packet(&mut self.stream, target)?;
        }
        let mut hosts = Vec::new();
        loop {
            let (_, row) = read_packet(&mut self.stream, target)?;
            match row.first() {
                Some(0xfe) if row.len() < 9 => return Ok(hosts),
                Some(0xff) => {
                    return Err(Error::probe(target, error_text(&row), None));
                }
                _ if hosts.len() >= MAX_ROWS => {
                    return Err(malformed(&format!("more than {MAX_ROWS} root accounts")));
                }
                _ => {
                    let (length, rest) =
                        length_encoded_int(&row).ok_or_else(|| malformed("row"))?;
                    let host = usize::try_from(length)
                        .ok()
                        .and_then(|length| rest.get(..length))
                        .ok_or_else(|| malformed("row truncated"))?;
                    hosts.push(String::from_utf8_lossy(host).into_owned());
                }
            }
        }
    }
}

/// A length-encoded integer and what follows it; `None` when truncated or NULL (0xfb).
fn length_encoded_int(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    let width = match first {
        0..=0xfa => return Some((u64::from(first), rest)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let value = rest
        .get(..width)?
        .iter()
        .rev()
        .fold(0u64, |value, byte| value << 8 | u64::from(*byte));
    Some((value, &rest[width..]))
}

/// The capabilities the probe announces: 4.1 protocol, secure connection, plugin auth.
const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
/// How many auth switch requests one login follows.
const MAX_AUTH_SWITCHES: usize = 3;

fn read_packet(stream: &mut impl Read, target: &str) -> Result<(u8, Vec<u8>), Error> {
    let header = read_exact(stream, target, 4)?;
    let length =
        usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    Ok((header[3], read_exact(stream, target, length)?))
}

fn write_packet(
    stream: &mut impl Write,
    target: impl Display,
    sequence: u8,
    payload: &[u8],
) -> Result<(), Error> {
    let length = payload.len() as u32;
    let mut packet = vec![
        length as u8,
        (length >> 8) as u8,
        (length >> 16) as u8,
        sequence,
    ];
    packet.extend_from_slice(payload);
    stream
        .write_all(&packet)
        .map_err(|error| Error::probe(target, "sending a packet failed".to_owned(), Some(error)))
}

/// `mysql_native_password`: SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))).
fn native_scramble(password: &str, salt: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(salt);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

fn error_text(payload: &[u8]) -> String {
    // ERR: 0xff, code u16, then '#' and a 5-byte SQL state (4.1 protocol), then the message.
    let message = payload.get(3..).unwrap_or_default();
    let message = if message.first() == Some(&b'#') {
        message.get(6..).unwrap_or_default()
    } else {
        message
    };
    String::from_utf8_lossy(message).into_owned()
}

fn nul_terminated(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|byte| *byte == 0) {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &[]),
    }
}

/// One login attempt on a new connection to `target`.
fn login<S: Read + Write>(
    mut stream: S,
    target: &str,
    user: &str,
    password: &str,
) -> Result<Login<S>, Error> {
    let malformed = |what: &str| Error::probe(target, format!("malformed handshake: {what}"), None);
    let (_, handshake) = read_packet(&mut stream, target)?;
    match handshake.first() {
        Some(0xff) => return Ok(Login::Refused(error_text(&handshake))),
        Some(10) => {}
        _ => return Err(malformed("not protocol version 10")),
    }
    let (_server_version, rest) = nul_terminated(&handshake[1..]);
    // Connection id (4), salt part 1 (8), filler (1), capabilities low (2), charset (1),
    // status (2), capabilities high (2), salt length (1), reserved (10), salt part 2.
    if rest.len() < 31 {
        return Err(malformed("too short"));
    }
    let mut salt = rest[4..12].to_vec();
    let salt_length = usize::from(rest[20]);
    let part2_length = salt_length.saturating_sub(8).max(13);
    let part2 = rest
        .get(31..31 + part2_length)
        .ok_or_else(|| malformed("salt truncated"))?;
    salt.extend_from_slice(&part2[..part2.len() - 1]);
    let (plugin, _) = nul_terminated(rest.get(31 + part2_length..).unwrap_or_default());
    let plugin = String::from_utf8_lossy(plugin).into_owned();

    let auth_response = if plugin == "mysql_native_password" || plugin.is_empty() {
        native_scramble(password, &salt)
    } else if password.is_empty() {
        Vec::new()
    } else {
        // Other plugins (caching_sha2_password, ed25519) would need their own scrambles; ask
        // for native instead, which a switch request may grant.
        native_scramble(password, &salt)
    };
    let mut response = Vec::new();
    let capabilities =
        CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    response.extend_from_slice(&capabilities.to_le_bytes());
    response.extend_from_slice(&(16u32 << 20).to_le_bytes());
    response.push(33); // utf8_general_ci
    response.extend_from_slice(&[0; 23]);
    response.extend_from_slice(user.as_bytes());
    response.push(0);
    response.push(auth_response.len() as u8);
    response.extend_from_slice(&auth_response);
    response.extend_from_slice(b"mysql_native_password\0");
    write_packet(&mut stream, target, 1, &response)?;

    for _ in 0..=MAX_AUTH_SWITCHES {
        let (sequence, reply) = read_packet(&mut stream, target)?;
        match reply.first() {
            Some(0x00) => {
                return Ok(Login::Accepted(Session {
                    stream,
                    target: target.to_owned(),
                }));
            }
            Some(0xff) => return Ok(Login::Refused(error_text(&reply))),
            Some(0xfe) => {
                let (plugin, data) = nul_terminated(&reply[1..]);
                let switch_salt = data.strip_suffix(&[0]).unwrap_or(data);
                let answer = match plugin {
                    b"mysql_native_password" => native_scramble(password, switch_salt),
                    _ if password.is_empty() => Vec::new(),
                    other => {
                        return Ok(Login::Refused(format!(
                            "the server wants the {} plugin, which the probe does not speak",
                            String::from_utf8_lossy(other)
                        )));
                    }
                };
                write_packet(&mut stream, target, sequence.wrapping_add(1), &answer)?;
            }
            _ => {
                return Ok(Login::Refused(
                    "the server asked for more authentication data than the probe sends".to_owned(),
                ));
            }
        }
    }
    Err(Error::probe(
        target,
        format!("more than {MAX_AUTH_SWITCHES} authentication switches"),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn my_cnf_with_includes() {
        let root = tempfile::tempdir().unwrap();
        let conf_d = root.path().join("etc/mysql/mariadb.conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::write(
            root.path().join("etc/mysql/my.cnf"),
            "[client]\nport = 3306\n!includedir /etc/mysql/mariadb.conf.d/\n",
        )
        .unwrap();
        std::fs::write(
            conf_d.join("50-server.cnf"),
            "[mysqld]\nbind-address = 0.0.0.0\nskip_grant_tables\nport=3307\n",
        )
        .unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host);
        assert!(
            results.iter().all(|r| r.status == Status::Fail),
            "{results:?}"
        );
        assert_eq!(results[0].evidence[0].value, "unset (MariaDB default ON)");
        assert_eq!(results[1].evidence[0].line, Some(2));
        assert_eq!(
            results[2].evidence[0].file,
            "/etc/mysql/mariadb.conf.d/50-server.cnf"
        );
        assert_eq!(configured_port(&host), Some(3307));
        std::fs::write(
            conf_d.join("50-server.cnf"),
            "[mariadb]\nbind-address = 127.0.0.1\nlocal-infile = 0\n",
        )
        .unwrap();
        assert!(check(&host).iter().all(|r| r.status == Status::Pass));
    }

    #[test]
    fn native_password_scramble_matches_the_reference() {
        // SHA1(SHA1("password")) is the stored hash 2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19;
        // XOR-ing the scramble with SHA1(salt + stored) must give back SHA1("password").
        let salt = [7u8; 20];
        let scramble = native_scramble("password", &salt);
        let stored = Sha1::digest(Sha1::digest(b"password"));
        assert_eq!(
            hex_upper(&stored),
            "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
        let mut hasher = Sha1::new();
        hasher.update(salt);
        hasher.update(stored);
        let mask = hasher.finalize();
        let stage1: Vec<u8> = scramble
            .iter()
            .zip(mask.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(stage1, Sha1::digest(b"password").to_vec());
        assert!(native_scramble("", &salt).is_empty());
    }

    fn hex_upper(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02X}")).collect()
    }
}
