//! What every probe shares: the loopback guard, connecting with timeouts, bounded reads and
//! the pace of login attempts.

use std::{
    io::Read,
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use crate::Error;

/// The passwords the probes try: empty, the usual defaults and the most common choices. Kept
/// short on purpose: this finds default credentials, it is not a brute-force tool.
pub const WEAK_PASSWORDS: &[&str] = &[
    "", "password", "123456", "admin", "root", "redis", "mysql", "postgres", "changeme", "secret",
    "foobared",
];

/// The largest reply a probe reads from a server.
const MAX_REPLY: usize = 64 * 1024;

/// Refuses anything but 127.0.0.0/8 and ::1.
pub(crate) fn require_loopback(address: SocketAddr) -> Result<(), Error> {
    if address.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error::not_loopback(address))
    }
}

/// How a connection attempt ended.
pub(crate) enum Connection {
    /// Connected.
    Open(TcpStream),
    /// Nothing listens there.
    Refused,
}

/// Connects to a loopback address with `timeout` for the connection and every read and write.
pub(crate) fn connect(address: SocketAddr, timeout: Duration) -> Result<Connection, Error> {
    require_loopback(address)?;
    match TcpStream::connect_timeout(&address, timeout) {
        Ok(stream) => {
            let configure = stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(timeout)));
            configure.map_err(|error| {
                Error::probe(
                    address,
                    "cannot set socket timeouts".to_owned(),
                    Some(error),
                )
            })?;
            Ok(Connection::Open(stream))
        }
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            Ok(Connection::Refused)
        }
        Err(error) => Err(Error::probe(
            address,
            "cannot connect".to_owned(),
            Some(error),
        )),
    }
}

/// Reads exactly `length` bytes (at most [`MAX_REPLY`]).
pub(crate) fn read_exact(
    stream: &mut impl Read,
    target: impl std::fmt::Display,
    length: usize,
) -> Result<Vec<u8>, Error> {
    if length > MAX_REPLY {
        return Err(Error::probe(
            target,
            format!("reply of {length} bytes is larger than the {MAX_REPLY}-byte limit"),
            None,
        ));
    }
    let mut buffer = vec![0; length];
    stream.read_exact(&mut buffer).map_err(|error| {
        Error::probe(target, "reading the reply failed".to_owned(), Some(error))
    })?;
    Ok(buffer)
}

/// Spaces login attempts at least `interval` apart.
pub(crate) struct Pacer {
    interval: Duration,
    last: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(interval: Duration) -> Pacer {
        Pacer {
            interval,
            last: None,
        }
    }

    /// Sleeps until the next attempt is allowed.
    pub(crate) fn wait(&mut self) {
        if let Some(last) = self.last {
            let elapsed = last.elapsed();
            if elapsed < self.interval {
                std::thread::sleep(self.interval - elapsed);
            }
        }
        self.last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(require_loopback("127.0.0.1:6379".parse().unwrap()).is_ok());
        assert!(require_loopback("127.8.9.10:6379".parse().unwrap()).is_ok());
        assert!(require_loopback("[::1]:6379".parse().unwrap()).is_ok());
        for address in [
            "10.0.0.1:6379",
            "0.0.0.0:6379",
            "[::]:6379",
            "[::ffff:10.0.0.1]:1",
        ] {
            let error = require_loopback(address.parse().unwrap()).unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::NotLoopback, "{address}");
        }
    }

    #[test]
    fn pacer_spaces_attempts() {
        let mut pacer = Pacer::new(Duration::from_millis(50));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait();
        }
        assert!(start.elapsed() >= Duration::from_millis(100));
    }
}
