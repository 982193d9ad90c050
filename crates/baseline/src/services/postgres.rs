//! PostgreSQL: `pg_hba.conf` and `postgresql.conf` (Debian's `/etc/postgresql/<version>/main/`
//! and the official image's `/var/lib/postgresql/data/`), and a probe that sends a protocol 3.0
//! startup message as `postgres`, reads which authentication the server asks for and, when it
//! is a password, tries the weak-password list through the cleartext, MD5 or SCRAM-SHA-256
//! exchange, one new connection per attempt.

use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
};

use md5::{Digest, Md5};
use palisade_model::BaselineCategory;

use super::{
    ProbeOptions,
    probe::{Connection, Pacer, WEAK_PASSWORDS, connect, read_exact},
    scram,
};
use crate::{CheckResult, Error, HostEvidence, HostRoot, HostRule, Severity, host::lynis};

const DEBIAN_CONFIG_ROOT: &str = "/etc/postgresql";
const IMAGE_DATA_DIR: &str = "/var/lib/postgresql/data";

static TRUST: HostRule = HostRule {
    id: "PAL-SVC-008",
    severity: Severity::Critical,
    category: BaselineCategory::Database,
    title: "PostgreSQL trusts connections without a password",
    description: "A `trust` line in pg_hba.conf lets anyone who matches it log in as any \
                  database user, including the superuser, without a password.",
    remediation: "Replace `trust` with `scram-sha-256` (or `peer` for local socket lines) and \
                  reload PostgreSQL.",
    references: lynis!["DBS-1828"],
};
static LISTEN_ALL: HostRule = HostRule {
    id: "PAL-SVC-009",
    severity: Severity::Medium,
    category: BaselineCategory::Database,
    title: "PostgreSQL listens on all addresses",
    description: "`listen_addresses = '*'` exposes the server to every network the host is on.",
    remediation: "Set `listen_addresses` to `localhost` or the private address clients use.",
    references: &[],
};
pub(crate) static TRUST_PROBE: HostRule = HostRule {
    id: "PAL-SVC-016",
    severity: Severity::Critical,
    category: BaselineCategory::Database,
    title: "PostgreSQL lets `postgres` in without a password (probe)",
    description: "The running server answered a startup message for user `postgres` with \
                  AuthenticationOk: trust authentication.",
    remediation: "Replace `trust` in pg_hba.conf with `scram-sha-256` and reload PostgreSQL.",
    references: &[],
};

pub(crate) static WEAK_PASSWORD_PROBE: HostRule = HostRule {
    id: "PAL-SVC-019",
    severity: Severity::Critical,
    category: BaselineCategory::Database,
    title: "PostgreSQL `postgres` accepts a default or common password (probe)",
    description: "The running server accepted a login as the superuser `postgres` with a password \
                  from a short list of defaults (cleartext, MD5 or SCRAM-SHA-256 exchange).",
    remediation: "Set a long random password (`ALTER ROLE postgres PASSWORD '…'`), or allow the \
                  superuser only over the local socket with `peer` in pg_hba.conf.",
    references: &[],
};

pub(crate) static RULES: &[&HostRule] = &[&TRUST, &LISTEN_ALL];

/// The directories holding a cluster's configuration.
fn config_dirs(host: &HostRoot) -> Result<Vec<String>, Error> {
    let mut dirs: Vec<String> = host
        .list_dir(DEBIAN_CONFIG_ROOT)?
        .into_iter()
        .flat_map(|version| {
            host.list_dir(&format!("{DEBIAN_CONFIG_ROOT}/{version}"))
                .unwrap_or_default()
                .into_iter()
                .map(move |cluster| format!("{DEBIAN_CONFIG_ROOT}/{version}/{cluster}"))
        })
        .filter(|dir| host.exists(&format!("{dir}/pg_hba.conf")))
        .collect();
    if host.exists(&format!("{IMAGE_DATA_DIR}/pg_hba.conf")) {
        dirs.push(IMAGE_DATA_DIR.to_owned());
    }
    Ok(dirs)
}

pub(crate) fn check(host: &HostRoot) -> Vec<CheckResult> {
    let dirs = match config_dirs(host) {
        Ok(dirs) if dirs.is_empty() => {
            return RULES
                .iter()
                .map(|rule| rule.not_applicable("no PostgreSQL configuration (pg_hba.conf)"))
                .collect();
        }
        Ok(dirs) => dirs,
        Err(error) => return RULES.iter().map(|rule| rule.error(&error)).collect(),
    };
    let mut trust = Vec::new();
    let mut listen_all = Vec::new();
    for dir in &dirs {
        let hba_path = format!("{dir}/pg_hba.conf");
        match host.read(&hba_path) {
            Ok(Some(hba)) => {
                for (line_idx, line) in hba.text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("");
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    if hba_method(&fields) == Some("trust") {
                        trust.push(HostEvidence::new(
                            fields[..fields.len().min(4)].join(" "),
                            "trust",
                            &hba_path,
                            Some(line_idx + 1),
                        ));
                    }
                }
            }
            Ok(None) => {}
            Err(error) => return vec![TRUST.error(&error), LISTEN_ALL.error(&error)],
        }
        match settings(host, &format!("{dir}/postgresql.conf")) {
            Ok(settings) => {
                if let Some((value, file, line)) = settings
                    .iter()
                    .rev()
                    .find(|(key, ..)| key == "listen_addresses")
                    .map(|(_, value, file, line)| (value, file, line))
                    && value
                        .split(',')
                        .any(|address| matches!(address.trim(), "*" | "0.0.0.0" | "::"))
                {
                    listen_all.push(HostEvidence::new(
                        "listen_addresses",
                        value,
                        file,
                        Some(*line),
                    ));
                }
            }
            Err(error) => return vec![TRUST.judge(trust, ""), LISTEN_ALL.error(&error)],
        }
    }
    let message = format!("clusters: {}", dirs.join(", "));
    vec![
        TRUST.judge(trust, message.clone()),
        LISTEN_ALL.judge(listen_all, message),
    ]
}

/// The authentication method of a pg_hba.conf record, or `None` for blank lines and includes.
fn hba_method<'a>(fields: &[&'a str]) -> Option<&'a str> {
    let kind = *fields.first()?;
    let method_idx = match kind {
        "local" => 3,
        "host" | "hostssl" | "hostnossl" | "hostgssenc" | "hostnogssenc" => {
            // An address without a CIDR suffix is followed by a separate netmask column.
            let address = fields.get(3)?;
            let separate_mask = address.parse::<std::net::IpAddr>().is_ok();
            if separate_mask { 5 } else { 4 }
        }
        _ => return None,
    };
    fields.get(method_idx).copied()
}

/// `key = value` settings of a postgresql.conf in file order, as (key, value, file, line).
fn settings(host: &HostRoot, path: &str) -> Result<Vec<(String, String, String, usize)>, Error> {
    let Some(file) = host.read(path)? else {
        return Ok(Vec::new());
    };
    let mut settings = Vec::new();
    for (line_idx, line) in file.text.lines().enumerate() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.starts_with('#') {
            continue;
        }
        let value = value.trim();
        let value = match value.strip_prefix('\'') {
            Some(quoted) => quoted.split('\'').next().unwrap_or(""),
            None => value.split('#').next().unwrap_or("").trim(),
        };
        settings.push((
            key.to_ascii_lowercase(),
            value.to_owned(),
            path.to_owned(),
            line_idx + 1,
        ));
    }
    Ok(settings)
}

/// The `port` the first cluster's postgresql.conf sets, if any.
pub(crate) fn configured_port(host: &HostRoot) -> Option<u16> {
    let dir = config_dirs(host).ok()?.into_iter().next()?;
    settings(host, &format!("{dir}/postgresql.conf"))
        .ok()?
        .into_iter()
        .rev()
        .find(|(key, ..)| key == "port")?
        .1
        .parse()
        .ok()
}

pub(crate) fn probe(address: SocketAddr, options: &ProbeOptions) -> Vec<CheckResult> {
    let mut pacer = Pacer::new(options.attempt_interval);
    pacer.wait();
    let method = match login(address, options, "") {
        Ok(None) => {
            let why = format!("no PostgreSQL server listens on {address}");
            return vec![
                TRUST_PROBE.not_applicable(&why),
                WEAK_PASSWORD_PROBE.not_applicable(why),
            ];
        }
        Ok(Some(Login::Accepted)) => {
            return vec![
                TRUST_PROBE.judge(
                    vec![HostEvidence::new(
                        "user postgres",
                        "AuthenticationOk without a password",
                        address.to_string(),
                        None,
                    )],
                    "startup message sent",
                ),
                WEAK_PASSWORD_PROBE.not_applicable("postgres needs no password at all"),
            ];
        }
        Ok(Some(Login::Refused(message))) => {
            let why = format!("the server refused: {message}");
            return vec![
                TRUST_PROBE.judge(Vec::new(), &why),
                WEAK_PASSWORD_PROBE.not_applicable(why),
            ];
        }
        Ok(Some(Login::NeedsPassword(method))) => method,
        Err(error) => return vec![TRUST_PROBE.error(&error), WEAK_PASSWORD_PROBE.error(&error)],
    };
    let trust = TRUST_PROBE.judge(
        Vec::new(),
        format!("the server asks for {}", method.describe()),
    );
    if !method.is_password() {
        let why = format!("the server asks for {}, not a password", method.describe());
        return vec![trust, WEAK_PASSWORD_PROBE.not_applicable(why)];
    }
    let candidates = WEAK_PASSWORDS
        .iter()
        .filter(|password| !password.is_empty());
    let mut n_tried = 0;
    for password in candidates {
        pacer.wait();
        n_tried += 1;
        match login(address, options, password) {
            Ok(Some(Login::Accepted)) => {
                let evidence = HostEvidence::new(
                    "user postgres",
                    format!("accepted password {password:?}"),
                    address.to_string(),
                    None,
                );
                let message = format!("{n_tried} passwords tried ({})", method.describe());
                return vec![trust, WEAK_PASSWORD_PROBE.judge(vec![evidence], message)];
            }
            Ok(Some(Login::Refused(_) | Login::NeedsPassword(_))) => {}
            Ok(None) => {
                let why = format!("the server on {address} went away during the probe");
                return vec![trust, WEAK_PASSWORD_PROBE.not_applicable(why)];
            }
            Err(error) => return vec![trust, WEAK_PASSWORD_PROBE.error(&error)],
        }
    }
    let message = format!(
        "{n_tried} passwords tried ({}), all refused",
        method.describe()
    );
    vec![trust, WEAK_PASSWORD_PROBE.judge(Vec::new(), message)]
}

/// An authentication method a server asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Cleartext,
    Md5,
    Scram,
    Kerberos,
    Gssapi,
    Sspi,
    Unknown(u32),
}

impl Method {
    fn from_code(code: u32) -> Method {
        match code {
            2 => Method::Kerberos,
            3 => Method::Cleartext,
            5 => Method::Md5,
            7 => Method::Gssapi,
            9 => Method::Sspi,
            10 => Method::Scram,
            other => Method::Unknown(other),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Method::Cleartext => "a cleartext password",
            Method::Md5 => "an MD5 password",
            Method::Scram => "SASL (SCRAM)",
            Method::Kerberos => "Kerberos",
            Method::Gssapi => "GSSAPI",
            Method::Sspi => "SSPI",
            Method::Unknown(_) => "an unknown method",
        }
    }

    fn is_password(self) -> bool {
        matches!(self, Method::Cleartext | Method::Md5 | Method::Scram)
    }
}

enum Login {
    Accepted,
    /// The server wants a password and none was given.
    NeedsPassword(Method),
    Refused(String),
}

const USER: &str = "postgres";
/// The most authentication round trips one login follows (SCRAM needs three).
const MAX_AUTH_ROUNDS: usize = 4;

/// One login as `postgres` on a new connection: the startup message, then, when the server
/// asks for a password and `password` is not empty, the cleartext, MD5 or SCRAM-SHA-256
/// exchange. Sends Terminate before closing.
fn login(
    address: SocketAddr,
    options: &ProbeOptions,
    password: &str,
) -> Result<Option<Login>, Error> {
    let mut stream = match connect(address, options.timeout)? {
        Connection::Open(stream) => stream,
        Connection::Refused => return Ok(None),
    };
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes()); // Protocol 3.0.
    for part in [
        "user",
        USER,
        "database",
        "postgres",
        "application_name",
        "palisade-probe",
    ] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    send(&mut stream, address, &message, "the startup message")?;
    let mut scram: Option<scram::Client> = None;
    let mut outcome = None;
    for _ in 0..MAX_AUTH_ROUNDS {
        let (kind, payload) = read_message(&mut stream, address)?;
        match kind {
            b'R' if payload.len() >= 4 => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let data = &payload[4..];
                let reply = match (code, scram.as_mut()) {
                    (0, _) => {
                        outcome = Some(Login::Accepted);
                        break;
                    }
                    (11, Some(client)) => client
                        .client_final(data)
                        .map_err(|why| malformed(address, why))?,
                    (12, Some(client)) => {
                        client
                            .verify_server_final(data)
                            .map_err(|why| malformed(address, why))?;
                        continue;
                    }
                    _ if password.is_empty() => {
                        outcome = Some(Login::NeedsPassword(Method::from_code(code)));
                        break;
                    }
                    (3, _) => nul_terminated(password),
                    (5, _) if data.len() >= 4 => md5_response(password, &data[..4]),
                    (10, _) => {
                        if !sasl_mechanisms(data).any(|m| m == b"SCRAM-SHA-256") {
                            outcome = Some(Login::Refused(
                                "no SASL mechanism the probe speaks (SCRAM-SHA-256)".to_owned(),
                            ));
                            break;
                        }
                        let client = scram::Client::new(password);
                        let first = client.client_first();
                        scram = Some(client);
                        let mut initial = b"SCRAM-SHA-256\0".to_vec();
                        initial.extend_from_slice(&(first.len() as u32).to_be_bytes());
                        initial.extend_from_slice(first.as_bytes());
                        initial
                    }
                    (other, _) => {
                        outcome = Some(Login::Refused(format!(
                            "the server asks for {}, which the probe does not speak",
                            Method::from_code(other).describe()
                        )));
                        break;
                    }
                };
                let mut message = vec![b'p'];
                message.extend_from_slice(&((reply.len() + 4) as u32).to_be_bytes());
                message.extend_from_slice(&reply);
                send(&mut stream, address, &message, "a password message")?;
            }
            b'E' => {
                outcome = Some(refusal(address, &payload)?);
                break;
            }
            other => {
                return Err(Error::probe(
                    address,
                    format!("unexpected reply message type {:?}", other as char),
                    None,
                ));
            }
        }
    }
    // Terminate; the server may already have closed the connection, which is fine.
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    outcome.map(Some).ok_or_else(|| {
        Error::probe(
            address,
            format!("more than {MAX_AUTH_ROUNDS} authentication rounds"),
            None,
        )
    })
}

fn send(
    stream: &mut TcpStream,
    address: SocketAddr,
    message: &[u8],
    what: &str,
) -> Result<(), Error> {
    stream
        .write_all(message)
        .map_err(|error| Error::probe(address, format!("sending {what} failed"), Some(error)))
}

fn malformed(address: SocketAddr, why: String) -> Error {
    Error::probe(address, format!("malformed SCRAM exchange: {why}"), None)
}

/// Reads one backend message: its type byte and payload.
fn read_message(stream: &mut TcpStream, address: SocketAddr) -> Result<(u8, Vec<u8>), Error> {
    let header = read_exact(stream, address, 5)?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length < 4 {
        return Err(Error::probe(
            address,
            format!("invalid message length {length}"),
            None,
        ));
    }
    Ok((header[0], read_exact(stream, address, length - 4)?))
}

/// An ErrorResponse: a refusal when its SQLSTATE is in class 28 (an authentication decision);
/// anything else (e.g. 57P03, still starting up) says nothing about authentication.
fn refusal(address: SocketAddr, payload: &[u8]) -> Result<Login, Error> {
    // Fields of a type byte and a NUL-terminated string; 'C' is the SQLSTATE, 'M' the message.
    let field = |kind: u8| {
        payload
            .split(|byte| *byte == 0)
            .find(|field| field.first() == Some(&kind))
            .map(|field| String::from_utf8_lossy(&field[1..]).into_owned())
            .unwrap_or_default()
    };
    let (sqlstate, text) = (field(b'C'), field(b'M'));
    if sqlstate.starts_with("28") {
        Ok(Login::Refused(text))
    } else {
        Err(Error::probe(
            address,
            format!("the server answered {sqlstate}: {text}"),
            None,
        ))
    }
}

fn nul_terminated(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// The mechanisms of an AuthenticationSASL message: NUL-terminated names, then an empty one.
fn sasl_mechanisms(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|byte| *byte == 0)
        .take_while(|name| !name.is_empty())
}

/// `md5` + hex(MD5(hex(MD5(password + user)) + salt)), NUL-terminated.
fn md5_response(password: &str, salt: &[u8]) -> Vec<u8> {
    let inner = hex(&Md5::digest(format!("{password}{USER}").as_bytes()));
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(salt);
    nul_terminated(&format!("md5{}", hex(&outer.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn pg_hba_and_listen_addresses() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/postgresql/15/main");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("pg_hba.conf"),
            "# TYPE DATABASE USER ADDRESS METHOD\nlocal all postgres peer\n\
             host all all 127.0.0.1/32 scram-sha-256\nhost all all 10.0.0.0 255.0.0.0 trust\n\
             local all all trust # everyone\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("postgresql.conf"),
            "listen_addresses = 'localhost'\t# default\nport = 5433\nlisten_addresses = '*'\n",
        )
        .unwrap();
        let host = HostRoot::new(root.path()).unwrap();
        let results = check(&host);
        let lines: Vec<Option<usize>> = results[0].evidence.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(4), Some(5)]);
        assert_eq!(results[1].evidence[0].line, Some(3));
        assert_eq!(configured_port(&host), Some(5433));
        std::fs::write(
            dir.join("pg_hba.conf"),
            "host all all 127.0.0.1 255.255.255.255 md5\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("postgresql.conf"),
            "listen_addresses = 'localhost'\n",
        )
        .unwrap();
        assert!(check(&host).iter().all(|r| r.status == Status::Pass));
    }
}
