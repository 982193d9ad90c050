//! Connections already open, and which of them a rule set would refuse.
//!
//! A rule edit applies to new connections only (a connect program runs at `connect()`,
//! the nftables rules match connection attempts), so the connections that were open before it
//! keep running. These functions list them, from the namespace's `/proc/net/tcp` and
//! `/proc/net/tcp6`, so that the operator sees what the new rule would have refused.

use std::collections::HashSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use palisade_firewall::{Protocol, RuleAction};

use crate::error::Error;
use crate::rule::{NetRule, deciding_rule};

const TCP_ESTABLISHED: u8 = 0x01;
const TCP_LISTEN: u8 = 0x0A;

/// An established TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenConnection {
    /// The local end.
    pub local: SocketAddr,
    /// The remote end.
    pub remote: SocketAddr,
    /// True when it was accepted (its local port is listening), false when it was opened.
    pub inbound: bool,
    /// The socket's inode.
    pub inode: u64,
}

/// An open connection and the rule that would refuse it if it were opened now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WouldRefuse {
    /// The connection.
    pub connection: OpenConnection,
    /// The `Block` rule.
    pub rule: NetRule,
}

/// The established TCP connections in the network namespace at `netns`.
pub fn open_tcp_connections_in_netns(netns: &Path) -> Result<Vec<OpenConnection>, Error> {
    let namespace = File::open(netns)
        .map_err(|error| Error::io("opening network namespace", netns.display(), error))?;
    // A short-lived thread enters the namespace, so the caller's threads stay where they are;
    // /proc/thread-self/net shows the namespace of the reading thread.
    let reader = std::thread::spawn(move || -> std::io::Result<Vec<OpenConnection>> {
        // SAFETY: setns on a live descriptor affects only this thread, which then exits.
        if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        read_tcp_tables(Path::new("/proc/thread-self/net"), None)
    });
    reader
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the reader thread panicked")))
        .map_err(|error| Error::io("reading TCP connections of", netns.display(), error))
}

/// The established TCP connections of the processes in the cgroup2 directory `cgroup` and
/// its descendants.
pub fn open_tcp_connections_of_cgroup(cgroup: &Path) -> Result<Vec<OpenConnection>, Error> {
    let mut connections = Vec::new();
    let mut seen = HashSet::new();
    for pid in cgroup_pids(cgroup)? {
        let sockets = socket_inodes(pid);
        if sockets.is_empty() {
            continue;
        }
        let net = PathBuf::from(format!("/proc/{pid}/net"));
        // A process may exit while we read: its connections are gone too, so skip it.
        let Ok(found) = read_tcp_tables(&net, Some(&sockets)) else {
            continue;
        };
        connections.extend(
            found
                .into_iter()
                .filter(|connection| seen.insert(connection.inode)),
        );
    }
    Ok(connections)
}

/// The open connections that `egress` (for outbound ones) or `ingress` (for inbound ones)
/// would refuse.
pub fn would_refuse(
    connections: &[OpenConnection],
    egress: &[NetRule],
    ingress: &[NetRule],
) -> Vec<WouldRefuse> {
    connections
        .iter()
        .filter_map(|connection| {
            let (rules, port) = if connection.inbound {
                (ingress, connection.local.port())
            } else {
                (egress, connection.remote.port())
            };
            let rule = deciding_rule(rules, connection.remote.ip(), port, Protocol::Tcp)?;
            (rule.action == RuleAction::Block).then(|| WouldRefuse {
                connection: connection.clone(),
                rule: rule.clone(),
            })
        })
        .collect()
}

/// Reads `tcp` and `tcp6` under `net`; keeps only sockets in `only` when given.
fn read_tcp_tables(
    net: &Path,
    only: Option<&HashSet<u64>>,
) -> std::io::Result<Vec<OpenConnection>> {
    let mut rows = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(net.join(table))?;
        rows.extend(text.lines().skip(1).filter_map(parse_tcp_row));
    }
    let listening: HashSet<u16> = rows
        .iter()
        .filter(|row| row.state == TCP_LISTEN)
        .map(|row| row.local.port())
        .collect();
    Ok(rows
        .into_iter()
        .filter(|row| row.state == TCP_ESTABLISHED)
        .filter(|row| only.is_none_or(|only| only.contains(&row.inode)))
        .map(|row| OpenConnection {
            inbound: listening.contains(&row.local.port()),
            local: row.local,
            remote: row.remote,
            inode: row.inode,
        })
        .collect())
}

struct TcpRow {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    inode: u64,
}

/// Parses one row of `/proc/net/tcp{,6}`; `None` for a row in an unknown shape.
fn parse_tcp_row(line: &str) -> Option<TcpRow> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(TcpRow {
        local: parse_socket_address(fields.get(1)?)?,
        remote: parse_socket_address(fields.get(2)?)?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F90` or the 32-digit IPv6 form: each 8-digit group is a 32-bit word printed
/// in the host's byte order.
fn parse_socket_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |idx: usize| -> Option<[u8; 4]> {
        let digits = address.get(idx * 8..idx * 8 + 8)?;
        Some(u32::from_str_radix(digits, 16).ok()?.to_ne_bytes())
    };
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for idx in 0..4 {
                octets[idx * 4..idx * 4 + 4].copy_from_slice(&word(idx)?);
            }
            let v6 = Ipv6Addr::from(octets);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The processes in `cgroup` and its descendants.
fn cgroup_pids(cgroup: &Path) -> Result<Vec<u32>, Error> {
    let mut pids = Vec::new();
    let mut pending = vec![cgroup.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
            .map_err(|error| Error::io("reading the processes of cgroup", dir.display(), error))?;
        pids.extend(
            procs
                .lines()
                .filter_map(|line| line.trim().parse::<u32>().ok()),
        );
        let entries = std::fs::read_dir(&dir)
            .map_err(|error| Error::io("listing cgroup", dir.display(), error))?;
        pending.extend(
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                .map(|entry| entry.path()),
        );
    }
    Ok(pids)
}

/// The inodes of the sockets process `pid` holds open (empty when it is gone).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_tcp_row;

    #[test]
    fn parses_proc_net_tcp_rows() {
        let v4 = "   1: 0100007F:1F90 0200A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        let row = parse_tcp_row(v4).unwrap();
        assert_eq!(row.local.to_string(), "127.0.0.1:8080");
        assert_eq!(row.remote.to_string(), "192.168.0.2:54321");
        assert_eq!((row.state, row.inode), (1, 12345));
        let v6 = "   0: 00000000000000000000000001000000:0050 0000000000000000FFFF00000100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1";
        let row = parse_tcp_row(v6).unwrap();
        assert_eq!(row.local.to_string(), "[::1]:80");
        assert_eq!(row.remote.to_string(), "127.0.0.1:40000");
        for bad in [
            "",
            "sl local",
            "  1: zz:1 00:00 01 0 0 0 0 0 5",
            "  1: 0100007F 0100007F:1 01 0 0 0 0 0 5",
        ] {
            assert!(parse_tcp_row(bad).is_none(), "{bad}");
        }
    }
}
