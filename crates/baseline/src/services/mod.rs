//! Databases and middleware: `PAL-SVC-NNN` rules over configuration files (Redis, MySQL/MariaDB,
//! PostgreSQL, MongoDB, nginx) and read-only network probes of servers on loopback.
//!
//! Configuration checks read the files under a [`HostRoot`], so they work on the running host
//! and on a container's root file system alike. A service whose configuration is absent is not
//! applicable. Probes ([`probe_services`]) speak each protocol by hand, only to loopback
//! addresses (anything else is refused with [`crate::ErrorKind::NotLoopback`]), try passwords
//! only from [`WEAK_PASSWORDS`], at most one attempt per [`ProbeOptions::attempt_interval`],
//! and never write: Redis gets `PING`/`AUTH`, PostgreSQL a startup message, MySQL a handshake
//! response.

mod mongodb;
mod mysql;
mod nginx;
mod postgres;
mod probe;
mod redis;
mod scram;
mod target;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use self::{probe::WEAK_PASSWORDS, target::ServiceTarget};
use crate::{CheckResult, Error, HostRoot, HostRule};

/// Where the probes connect and how gently.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The Redis server; `None` skips the probe.
    pub redis: Option<SocketAddr>,
    /// The PostgreSQL server; `None` skips the probe.
    pub postgres: Option<SocketAddr>,
    /// The MySQL or MariaDB server; `None` skips the probe.
    pub mysql: Option<SocketAddr>,
    /// The MySQL or MariaDB server's unix socket, where a root session reads which hosts root
    /// may log in from; `None` reads them only when a weak password opens a TCP session.
    pub mysql_socket: Option<PathBuf>,
    /// The least time between two login attempts against one server.
    pub attempt_interval: Duration,
    /// Connect and read timeout.
    pub timeout: Duration,
}

impl ProbeOptions {
    /// Probes the default ports on 127.0.0.1, or the ports the host's configuration files set.
    pub fn from_config(host: &HostRoot) -> ProbeOptions {
        let loopback = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        ProbeOptions {
            redis: loopback(redis::configured_port(host).unwrap_or(6379)),
            postgres: loopback(postgres::configured_port(host).unwrap_or(5432)),
            mysql: loopback(mysql::configured_port(host).unwrap_or(3306)),
            mysql_socket: Some(mysql::configured_socket(host)),
            attempt_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(3),
        }
    }
}

type ConfigCheck = fn(&HostRoot) -> Vec<CheckResult>;

const CONFIG_FAMILIES: &[(&[&HostRule], ConfigCheck)] = &[
    (redis::RULES, redis::check),
    (mysql::RULES, mysql::check),
    (postgres::RULES, postgres::check),
    (mongodb::RULES, mongodb::check),
    (nginx::RULES, nginx::check),
];

/// Every service rule (configuration and probe), in id order.
pub fn service_rules() -> impl Iterator<Item = &'static HostRule> {
    CONFIG_FAMILIES
        .iter()
        .flat_map(|(rules, _)| rules.iter().copied())
        .chain([
            &redis::NO_AUTH_PROBE,
            &redis::WEAK_PASSWORD_PROBE,
            &postgres::TRUST_PROBE,
            &mysql::EMPTY_ROOT_PROBE,
            &mysql::WEAK_ROOT_PROBE,
            &postgres::WEAK_PASSWORD_PROBE,
            &mysql::REMOTE_ROOT_PROBE,
        ])
}

/// Runs every configuration check of every service against `host`.
pub fn check_services(host: &HostRoot) -> Vec<CheckResult> {
    CONFIG_FAMILIES
        .iter()
        .flat_map(|(_, check)| check(host))
        .collect()
}

/// Probes the servers `options` names. Refuses (before connecting anywhere) when any address
/// is not loopback.
pub fn probe_services(options: &ProbeOptions) -> Result<Vec<CheckResult>, Error> {
    for address in [options.redis, options.postgres, options.mysql]
        .into_iter()
        .flatten()
    {
        probe::require_loopback(address)?;
    }
    let mut results = Vec::new();
    if let Some(address) = options.redis {
        results.extend(redis::probe(address, options));
    }
    if let Some(address) = options.postgres {
        results.extend(postgres::probe(address, options));
    }
    if let Some(address) = options.mysql {
        results.extend(mysql::probe(
            address,
            options.mysql_socket.as_deref(),
            options,
        ));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_consecutive() {
        let ids: Vec<&str> = service_rules().map(|rule| rule.id).collect();
        for (idx, id) in ids.iter().enumerate() {
            assert_eq!(*id, format!("PAL-SVC-{:03}", idx + 1));
        }
    }

    #[test]
    fn non_loopback_targets_are_refused_before_connecting() {
        let options = ProbeOptions {
            redis: Some("127.0.0.1:1".parse().unwrap()),
            postgres: Some("192.0.2.10:5432".parse().unwrap()),
            mysql: None,
            mysql_socket: None,
            attempt_interval: Duration::ZERO,
            timeout: Duration::from_millis(100),
        };
        let error = probe_services(&options).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::NotLoopback);
        assert!(error.to_string().contains("192.0.2.10:5432"), "{error}");
    }
}
