//! Connections already open, which of them a rule set would refuse, and closing them.
//!
//! A rule edit applies to new connections only (a connect program runs at `connect()`,
//! the nftables rules match connection attempts), so the connections that were open before it
//! keep running. These functions list them, from the namespace's `/proc/net/tcp` and
//! `/proc/net/tcp6`, and close them with the kernel's socket-diagnostics `SOCK_DESTROY`
//! request (`CONFIG_INET_DIAG_DESTROY`): the local socket is aborted (its owner's next call
//! fails with `ECONNABORTED`) and the peer receives a reset, without touching the process.

use std::collections::HashSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use palisade_firewall::{Protocol, RuleAction};

use crate::error::{Error, ErrorKind};
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
    in_netns(netns, |subject| {
        // /proc/thread-self/net shows the namespace of the reading thread.
        read_tcp_tables(Path::new("/proc/thread-self/net"), None)
            .map_err(|error| Error::io("reading TCP connections of", subject, error))
    })
}

/// The established TCP connections of the processes in the cgroup2 directory `cgroup` and
/// its descendants.
pub fn open_tcp_connections_of_cgroup(cgroup: &Path) -> Result<Vec<OpenConnection>, Error> {
    Ok(cgroup_connections(cgroup)?
        .into_iter()
        .map(|(connection, _netns)| connection)
        .collect())
}

/// What closing connections came to, per connection: closed, or left open with why (a
/// connection that is gone already is in neither list). One that fails does not stop the
/// others, and those closed before it are reported closed.
#[derive(Debug, Default)]
pub struct Closing {
    /// The connections the kernel closed.
    pub closed: Vec<OpenConnection>,
    /// The connections that could not be closed: still open.
    pub left_open: Vec<OpenConnection>,
    /// Why, one error per failed connection or network namespace (an error of kind
    /// [`ErrorKind::Unsupported`] when the kernel cannot close sockets this way).
    pub errors: Vec<Error>,
}

impl Closing {
    /// Closes each of `connections` with `destroy` (true: closed, false: gone already).
    fn each(
        connections: Vec<OpenConnection>,
        mut destroy: impl FnMut(&OpenConnection) -> Result<bool, Error>,
    ) -> Closing {
        let mut closing = Closing::default();
        for connection in connections {
            match destroy(&connection) {
                Ok(true) => closing.closed.push(connection),
                Ok(false) => {}
                Err(error) => {
                    closing.left_open.push(connection);
                    closing.errors.push(error);
                }
            }
        }
        closing
    }

    /// Adds what closing `connections` came to: `result`, or each left open with its error.
    fn add(&mut self, connections: Vec<OpenConnection>, result: Result<Closing, Error>) {
        match result {
            Ok(closing) => {
                self.closed.extend(closing.closed);
                self.left_open.extend(closing.left_open);
                self.errors.extend(closing.errors);
            }
            Err(error) => {
                self.left_open.extend(connections);
                self.errors.push(error);
            }
        }
    }
}

/// Closes `connections`, established TCP connections in the network namespace at `netns`
/// (`SOCK_DESTROY`, see the module documentation), each on its own (see [`Closing`]). Fails
/// only when it cannot ask the kernel at all (the namespace or the diagnostics socket).
pub fn close_tcp_connections_in_netns(
    netns: &Path,
    connections: &[OpenConnection],
) -> Result<Closing, Error> {
    let connections = connections.to_vec();
    in_netns(netns, move |subject| {
        let diag = SockDiag::open(&subject)?;
        Ok(Closing::each(connections, |connection| {
            diag.destroy(connection, &subject)
        }))
    })
}

/// Closes those of `connections` that processes of the cgroup2 directory `cgroup` hold,
/// each in its process's network namespace (see [`Closing`]: a namespace that cannot be
/// entered leaves its connections open); fails only when the cgroup's processes cannot be
/// listed.
pub fn close_tcp_connections_of_cgroup(
    cgroup: &Path,
    connections: &[OpenConnection],
) -> Result<Closing, Error> {
    let wanted: HashSet<u64> = connections
        .iter()
        .map(|connection| connection.inode)
        .collect();
    let mut by_netns: Vec<(PathBuf, Vec<OpenConnection>)> = Vec::new();
    for (connection, netns) in cgroup_connections(cgroup)? {
        if !wanted.contains(&connection.inode) {
            continue;
        }
        match by_netns.iter_mut().find(|(path, _)| *path == netns) {
            Some((_, list)) => list.push(connection),
            None => by_netns.push((netns, vec![connection])),
        }
    }
    let mut closing = Closing::default();
    for (netns, list) in by_netns {
        let result = close_tcp_connections_in_netns(&netns, &list);
        closing.add(list, result);
    }
    Ok(closing)
}

/// Runs `work` on a short-lived thread inside the network namespace at `netns`, so the
/// caller's threads stay where they are; `work` gets the namespace's name for its errors.
fn in_netns<T: Send + 'static>(
    netns: &Path,
    work: impl FnOnce(String) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let namespace = File::open(netns)
        .map_err(|error| Error::io("opening network namespace", netns.display(), error))?;
    let subject = netns.display().to_string();
    std::thread::spawn(move || {
        // SAFETY: setns on a live descriptor affects only this thread, which then exits.
        if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::io(
                "entering network namespace",
                subject,
                std::io::Error::last_os_error(),
            ));
        }
        work(subject)
    })
    .join()
    .unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::System,
            "working in network namespace",
            netns.display(),
        )
        .with_source("the namespace thread panicked"))
    })
}

/// The established TCP connections of the processes in `cgroup`, each with the network
/// namespace of a process that holds it.
fn cgroup_connections(cgroup: &Path) -> Result<Vec<(OpenConnection, PathBuf)>, Error> {
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
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        connections.extend(
            found
                .into_iter()
                .filter(|connection| seen.insert(connection.inode))
                .map(|connection| (connection, netns.clone())),
        );
    }
    Ok(connections)
}

/// `SOCK_DESTROY`: the `sock_diag` message that aborts a socket (`linux/sock_diag.h`).
const SOCK_DESTROY: u16 = 21;
/// `inet_diag_sockid.idiag_cookie` value that matches any socket.
const INET_DIAG_NOCOOKIE: u32 = !0;
/// `struct nlmsghdr` (16 bytes) + `struct inet_diag_req_v2` (56 bytes).
const DESTROY_REQUEST_LEN: usize = 16 + 56;
/// How long the kernel may take to answer one request.
const SOCK_DIAG_TIMEOUT: libc::timeval = libc::timeval {
    tv_sec: 5,
    tv_usec: 0,
};

/// A `NETLINK_SOCK_DIAG` socket in the calling thread's network namespace.
struct SockDiag {
    socket: OwnedFd,
}

impl SockDiag {
    fn open(subject: &str) -> Result<SockDiag, Error> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if raw < 0 {
            return Err(Error::io(
                "opening a sock_diag netlink socket in",
                subject,
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the option value is a live timeval of the size passed.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::from_ref(&SOCK_DIAG_TIMEOUT).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(Error::io(
                "setting a timeout on the sock_diag socket in",
                subject,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(SockDiag { socket })
    }

    /// Aborts `connection`; false when no such socket exists (it closed meanwhile).
    fn destroy(&self, connection: &OpenConnection, subject: &str) -> Result<bool, Error> {
        let request = destroy_request(connection);
        // SAFETY: the buffer is live and its length is passed; netlink sends to the kernel.
        let sent = unsafe {
            libc::send(
                self.socket.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
            )
        };
        let describe = || format!("{} ↔ {} in {subject}", connection.local, connection.remote);
        if sent < 0 {
            return Err(Error::io(
                "asking the kernel to close connection",
                describe(),
                std::io::Error::last_os_error(),
            ));
        }
        let mut answer = [0u8; 512];
        // SAFETY: the buffer is live and its length is passed.
        let received = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                answer.as_mut_ptr().cast(),
                answer.len(),
                0,
            )
        };
        if received < 0 {
            return Err(Error::io(
                "reading the kernel's answer to closing connection",
                describe(),
                std::io::Error::last_os_error(),
            ));
        }
        match netlink_ack_errno(&answer[..received as usize]) {
            Some(0) => Ok(true),
            Some(errno) if errno == -libc::ENOENT => Ok(false),
            Some(errno) if errno == -libc::EOPNOTSUPP => Err(Error::new(
                ErrorKind::Unsupported,
                "closing connection",
                describe(),
            )
            .with_source(
                "the kernel cannot close sockets on request (it lacks CONFIG_INET_DIAG_DESTROY)",
            )),
            Some(errno) => Err(Error::io(
                "closing connection",
                describe(),
                std::io::Error::from_raw_os_error(-errno),
            )),
            None => Err(
                Error::new(ErrorKind::System, "closing connection", describe())
                    .with_source("the kernel's answer is not a netlink acknowledgement"),
            ),
        }
    }
}

/// A `SOCK_DESTROY` request for one TCP socket, looked up by its addresses and ports.
fn destroy_request(connection: &OpenConnection) -> [u8; DESTROY_REQUEST_LEN] {
    let mut message = [0u8; DESTROY_REQUEST_LEN];
    // struct nlmsghdr
    message[..4].copy_from_slice(&(DESTROY_REQUEST_LEN as u32).to_ne_bytes());
    message[4..6].copy_from_slice(&SOCK_DESTROY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message[6..8].copy_from_slice(&flags.to_ne_bytes());
    message[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // struct inet_diag_req_v2: family, protocol, ext, pad, states
    let family = match connection.local.ip() {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    message[16] = family as u8;
    message[17] = libc::IPPROTO_TCP as u8;
    message[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    // struct inet_diag_sockid: ports and addresses in network byte order
    message[24..26].copy_from_slice(&connection.local.port().to_be_bytes());
    message[26..28].copy_from_slice(&connection.remote.port().to_be_bytes());
    let octets = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            let mut octets = [0u8; 16];
            octets[..4].copy_from_slice(&v4.octets());
            octets
        }
        IpAddr::V6(v6) => v6.octets(),
    };
    message[28..44].copy_from_slice(&octets(connection.local.ip()));
    message[44..60].copy_from_slice(&octets(connection.remote.ip()));
    // idiag_if stays 0 (any interface); the cookie is not checked.
    message[64..68].copy_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
    message[68..72].copy_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
    message
}

/// The error code of a netlink `NLMSG_ERROR` answer (0 for an acknowledgement).
fn netlink_ack_errno(answer: &[u8]) -> Option<i32> {
    let message_type = u16::from_ne_bytes(answer.get(4..6)?.try_into().ok()?);
    if message_type != libc::NLMSG_ERROR as u16 {
        return None;
    }
    Some(i32::from_ne_bytes(answer.get(16..20)?.try_into().ok()?))
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
    use super::{Closing, OpenConnection, destroy_request, netlink_ack_errno, parse_tcp_row};
    use crate::error::{Error, ErrorKind};

    fn connection(local_port: u16) -> OpenConnection {
        OpenConnection {
            local: format!("10.0.0.1:{local_port}").parse().unwrap(),
            remote: "10.0.0.2:7002".parse().unwrap(),
            inbound: false,
            inode: u64::from(local_port),
        }
    }

    /// A connection the kernel fails to close is left open with its error, and neither
    /// those closed before it nor those after it are lost; one gone already is in no list.
    #[test]
    fn a_failed_close_leaves_that_connection_open_and_the_others_closed() {
        let all: Vec<_> = [1, 2, 3, 4].map(connection).into();
        let closing = Closing::each(all.clone(), |connection| match connection.local.port() {
            2 => Err(Error::new(ErrorKind::System, "closing connection", "2")),
            4 => Ok(false),
            _ => Ok(true),
        });
        assert_eq!(closing.closed, [all[0].clone(), all[2].clone()]);
        assert_eq!(closing.left_open, [all[1].clone()]);
        assert_eq!(closing.errors.len(), 1);

        // A namespace that cannot be entered leaves its connections open beside the others.
        let mut merged = Closing::default();
        merged.add(vec![all[0].clone()], Ok(closing));
        merged.add(
            vec![all[3].clone()],
            Err(Error::new(
                ErrorKind::System,
                "entering network namespace",
                "x",
            )),
        );
        assert_eq!(merged.closed, [all[0].clone(), all[2].clone()]);
        assert_eq!(merged.left_open, [all[1].clone(), all[3].clone()]);
        assert_eq!(merged.errors.len(), 2);
    }

    #[test]
    fn destroy_requests_name_the_socket_in_network_byte_order() {
        let connection = OpenConnection {
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:7002".parse().unwrap(),
            inbound: false,
            inode: 7,
        };
        let request = destroy_request(&connection);
        assert_eq!(u32::from_ne_bytes(request[..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(request[4..6].try_into().unwrap()), 21);
        assert_eq!((request[16], request[17]), (libc::AF_INET as u8, 6));
        assert_eq!(request[24..28], [0x9c, 0x40, 0x1b, 0x5a]);
        assert_eq!(request[28..32], [10, 0, 0, 1]);
        assert_eq!(request[44..48], [10, 0, 0, 2]);
        assert_eq!(request[64..72], [0xff; 8]);
    }

    #[test]
    fn netlink_answers_are_read_as_error_codes() {
        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        assert_eq!(netlink_ack_errno(&ack), Some(0));
        ack[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(netlink_ack_errno(&ack), Some(-libc::ENOENT));
        assert_eq!(netlink_ack_errno(&ack[..10]), None);
        ack[4..6].copy_from_slice(&3u16.to_ne_bytes());
        assert_eq!(netlink_ack_errno(&ack), None);
    }

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
