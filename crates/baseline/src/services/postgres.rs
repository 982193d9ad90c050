//! PostgreSQL: `pg_hba.conf` and `postgresql.conf` (Debian's `/etc/postgresql/<version>/main/`
//! and the official image's `/var/lib/postgresql/data/`), and a probe that sends a protocol 3.0
//! startup message as `postgres` and reads which authentication the server asks for.

use std::{io::Write, net::SocketAddr};

use palisade_model::BaselineCategory;

use super::{
    ProbeOptions,
    probe::{Connection, connect, read_exact},
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

pub(crate) fn probe(address: SocketAddr, options: &ProbeOptions) -> CheckResult {
    match startup_as_postgres(address, options) {
        Ok(None) => {
            TRUST_PROBE.not_applicable(format!("no PostgreSQL server listens on {address}"))
        }
        Ok(Some(Authentication::Ok)) => TRUST_PROBE.judge(
            vec![HostEvidence::new(
                "user postgres",
                "AuthenticationOk without a password",
                address.to_string(),
                None,
            )],
            "startup message sent",
        ),
        Ok(Some(Authentication::Asked(method))) => {
            TRUST_PROBE.judge(Vec::new(), format!("the server asks for {method}"))
        }
        Ok(Some(Authentication::Refused(message))) => {
            TRUST_PROBE.judge(Vec::new(), format!("the server refused: {message}"))
        }
        Err(error) => TRUST_PROBE.error(&error),
    }
}

enum Authentication {
    Ok,
    Asked(&'static str),
    Refused(String),
}

/// Sends a startup message for `postgres`/`postgres` and reads the first reply; sends
/// Terminate before closing.
fn startup_as_postgres(
    address: SocketAddr,
    options: &ProbeOptions,
) -> Result<Option<Authentication>, Error> {
    let mut stream = match connect(address, options.timeout)? {
        Connection::Open(stream) => stream,
        Connection::Refused => return Ok(None),
    };
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes()); // Protocol 3.0.
    for part in [
        "user",
        "postgres",
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
    stream.write_all(&message).map_err(|error| {
        Error::probe(
            address,
            "sending the startup message failed".to_owned(),
            Some(error),
        )
    })?;
    let header = read_exact(&mut stream, address, 5)?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length < 4 {
        return Err(Error::probe(
            address,
            format!("invalid message length {length}"),
            None,
        ));
    }
    let payload = read_exact(&mut stream, address, length - 4)?;
    let reply = match header[0] {
        b'R' if payload.len() >= 4 => {
            let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            match code {
                0 => Authentication::Ok,
                2 => Authentication::Asked("Kerberos"),
                3 => Authentication::Asked("a cleartext password"),
                5 => Authentication::Asked("an MD5 password"),
                7 => Authentication::Asked("GSSAPI"),
                9 => Authentication::Asked("SSPI"),
                10 => Authentication::Asked("SASL (SCRAM)"),
                _ => Authentication::Asked("an unknown method"),
            }
        }
        b'E' => {
            // ErrorResponse: fields of a type byte and a NUL-terminated string; 'C' is the
            // SQLSTATE and 'M' the message.
            let field = |kind: u8| {
                payload
                    .split(|byte| *byte == 0)
                    .find(|field| field.first() == Some(&kind))
                    .map(|field| String::from_utf8_lossy(&field[1..]).into_owned())
                    .unwrap_or_default()
            };
            let (sqlstate, text) = (field(b'C'), field(b'M'));
            // Class 28 is an authentication decision; anything else (e.g. 57P03, still
            // starting up) says nothing about authentication.
            if !sqlstate.starts_with("28") {
                return Err(Error::probe(
                    address,
                    format!("the server answered {sqlstate}: {text}"),
                    None,
                ));
            }
            Authentication::Refused(text)
        }
        other => {
            return Err(Error::probe(
                address,
                format!("unexpected reply message type {:?}", other as char),
                None,
            ));
        }
    };
    // Terminate; the server may already have closed the connection, which is fine.
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    Ok(Some(reply))
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
