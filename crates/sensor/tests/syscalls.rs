//! One test per family of observed system calls, against the real kernel: a forked child
//! makes the calls (the sensor ignores the test process itself) and each event is checked
//! field by field — process identity, return value, paths, addresses and ports.
//!
//! The calls are made with `libc::syscall` and explicit numbers, so that the libc wrapper
//! cannot swap one call for another (`chmod` for `fchmodat`).

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{
    assert_child_process, can_run_ebpf, canonical, collect_from, in_child, last_error, start,
};
use palisade_event::{Event, EventKind, FdKind, Payload, Protocol};

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// The raw system call's return value, as the kernel reports it (`-errno` on failure).
fn sys(number: libc::c_long, args: &[libc::c_long]) -> i64 {
    let mut padded = [0; 6];
    padded[..args.len()].copy_from_slice(args);
    // SAFETY: each caller passes arguments valid for the call it names.
    let ret = unsafe {
        libc::syscall(
            number, padded[0], padded[1], padded[2], padded[3], padded[4], padded[5],
        )
    };
    if ret < 0 { last_error() } else { ret }
}

fn ptr(text: &CString) -> libc::c_long {
    text.as_ptr() as libc::c_long
}

/// The single event of `kind` among `events`.
fn one(events: &[Event], kind: EventKind) -> &Event {
    let matching: Vec<&Event> = events.iter().filter(|event| event.kind == kind).collect();
    assert_eq!(
        matching.len(),
        1,
        "one {kind:?} event expected: {events:#?}"
    );
    matching[0]
}

fn has_kinds(kinds: &'static [EventKind]) -> impl Fn(&[Event]) -> bool {
    move |events| {
        kinds
            .iter()
            .all(|kind| events.iter().any(|event| event.kind == *kind))
    }
}

#[test]
fn file_changes_report_resolved_paths_modes_owners_and_errors() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::Mkdir,
        EventKind::Mkdirat,
        EventKind::Chmod,
        EventKind::Fchmodat,
        EventKind::Chown,
        EventKind::Fchownat,
        EventKind::Unlink,
        EventKind::Unlinkat,
    ];
    let mut sensor = start(KINDS);
    let dir = tempfile::tempdir().unwrap();
    let root = canonical(dir.path());
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let (file_c, dir_c) = (c(&file), c(dir.path()));
    let (sub, subat, missing) = (
        c(Path::new("sub")),
        c(Path::new("subat")),
        c(Path::new("missing")),
    );
    let child = in_child("pal-files", || {
        // Relative paths: the sensor resolves them against the working directory or dirfd.
        assert_eq!(unsafe { libc::chdir(dir_c.as_ptr()) }, 0);
        assert_eq!(sys(libc::SYS_mkdir, &[ptr(&sub), 0o750]), 0);
        let dirfd = unsafe { libc::open(dir_c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY) };
        assert!(dirfd >= 0);
        assert_eq!(sys(libc::SYS_mkdirat, &[dirfd as _, ptr(&subat), 0o700]), 0);
        assert_eq!(sys(libc::SYS_chmod, &[ptr(&file_c), 0o640]), 0);
        assert_eq!(
            sys(
                libc::SYS_fchmodat,
                &[libc::AT_FDCWD as _, ptr(&missing), 0o600]
            ),
            -2
        );
        assert_eq!(sys(libc::SYS_chown, &[ptr(&file_c), 1234, 5678]), 0);
        assert_eq!(
            sys(libc::SYS_fchownat, &[dirfd as _, ptr(&sub), 42, 43, 0]),
            0
        );
        assert_eq!(sys(libc::SYS_unlink, &[ptr(&file_c)]), 0);
        assert_eq!(
            sys(
                libc::SYS_unlinkat,
                &[dirfd as _, ptr(&sub), libc::AT_REMOVEDIR as _]
            ),
            0
        );
    });
    let events = collect_from(&mut sensor, child, has_kinds(KINDS));
    for event in &events {
        assert_child_process(event, child, "pal-files");
    }
    let path_of = |kind| match &one(&events, kind).payload {
        Payload::Path { path, mode, flags } => (path.clone(), *mode, *flags),
        other => panic!("{kind:?}: {other:?}"),
    };
    let file_path = format!("{root}/file");
    let sub_path = format!("{root}/sub");
    assert_eq!(path_of(EventKind::Mkdir), (sub_path.clone(), 0o750, 0));
    assert_eq!(
        path_of(EventKind::Mkdirat),
        (format!("{root}/subat"), 0o700, 0)
    );
    assert_eq!(path_of(EventKind::Chmod), (file_path.clone(), 0o640, 0));
    assert_eq!(
        path_of(EventKind::Fchmodat),
        (format!("{root}/missing"), 0o600, 0)
    );
    assert_eq!(
        one(&events, EventKind::Fchmodat).ret,
        -i64::from(libc::ENOENT)
    );
    assert_eq!(path_of(EventKind::Unlink), (file_path.clone(), 0, 0));
    assert_eq!(
        path_of(EventKind::Unlinkat),
        (sub_path.clone(), 0, libc::AT_REMOVEDIR as u32)
    );
    for kind in [
        EventKind::Mkdir,
        EventKind::Chmod,
        EventKind::Unlink,
        EventKind::Unlinkat,
    ] {
        assert_eq!(one(&events, kind).ret, 0, "{kind:?}");
    }
    let chown = |kind| match &one(&events, kind).payload {
        Payload::Chown { path, uid, gid } => (path.clone(), *uid, *gid),
        other => panic!("{kind:?}: {other:?}"),
    };
    assert_eq!(chown(EventKind::Chown), (file_path, 1234, 5678));
    assert_eq!(chown(EventKind::Fchownat), (sub_path, 42, 43));
}

#[test]
fn renames_links_and_symlinks_report_both_paths() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::Rename,
        EventKind::Renameat2,
        EventKind::Link,
        EventKind::Linkat,
        EventKind::Symlink,
        EventKind::Symlinkat,
    ];
    let mut sensor = start(KINDS);
    let dir = tempfile::tempdir().unwrap();
    let root = canonical(dir.path());
    std::fs::write(dir.path().join("a"), "x").unwrap();
    let dir_c = c(dir.path());
    let names: Vec<CString> = ["a", "b", "c", "d", "e", "../outside-target", "s1", "s2"]
        .iter()
        .map(|name| CString::new(*name).unwrap())
        .collect();
    let child = in_child("pal-links", || {
        assert_eq!(unsafe { libc::chdir(dir_c.as_ptr()) }, 0);
        let dirfd = unsafe { libc::open(dir_c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY) };
        assert_eq!(sys(libc::SYS_rename, &[ptr(&names[0]), ptr(&names[1])]), 0);
        assert_eq!(
            sys(
                libc::SYS_renameat2,
                &[
                    dirfd as _,
                    ptr(&names[1]),
                    dirfd as _,
                    ptr(&names[2]),
                    libc::RENAME_NOREPLACE as _
                ]
            ),
            0
        );
        assert_eq!(sys(libc::SYS_link, &[ptr(&names[2]), ptr(&names[3])]), 0);
        // The target exists: EEXIST.
        assert_eq!(
            sys(
                libc::SYS_linkat,
                &[dirfd as _, ptr(&names[2]), dirfd as _, ptr(&names[3]), 0]
            ),
            -i64::from(libc::EEXIST)
        );
        assert_eq!(sys(libc::SYS_symlink, &[ptr(&names[5]), ptr(&names[6])]), 0);
        assert_eq!(
            sys(
                libc::SYS_symlinkat,
                &[ptr(&names[5]), dirfd as _, ptr(&names[7])]
            ),
            0
        );
    });
    let events = collect_from(&mut sensor, child, has_kinds(KINDS));
    for event in &events {
        assert_child_process(event, child, "pal-links");
    }
    let link = |kind| {
        let event = one(&events, kind);
        match &event.payload {
            Payload::Link { source, target } => (source.clone(), target.clone(), event.ret),
            other => panic!("{kind:?}: {other:?}"),
        }
    };
    let at = |name: &str| format!("{root}/{name}");
    assert_eq!(link(EventKind::Rename), (at("a"), at("b"), 0));
    assert_eq!(link(EventKind::Renameat2), (at("b"), at("c"), 0));
    assert_eq!(link(EventKind::Link), (at("c"), at("d"), 0));
    assert_eq!(
        link(EventKind::Linkat),
        (at("c"), at("d"), -i64::from(libc::EEXIST))
    );
    // A symlink's target is reported as written, the link itself resolved.
    assert_eq!(
        link(EventKind::Symlink),
        ("../outside-target".into(), at("s1"), 0)
    );
    assert_eq!(
        link(EventKind::Symlinkat),
        ("../outside-target".into(), at("s2"), 0)
    );
}

/// The socket of a network event.
/// The kernel's `struct open_how`, openat2's argument.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// open, openat and openat2 report the resolved path, the flags and the creation mode as the
/// caller passed them (openat2's from its `struct open_how`), the new descriptor, and the
/// error of a failed call.
#[test]
fn opens_report_the_path_flags_and_creation_mode_of_each_call() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[EventKind::Open, EventKind::Openat, EventKind::Openat2];
    let mut sensor = start(KINDS);
    let dir = tempfile::tempdir().unwrap();
    let root = canonical(dir.path());
    let open_path = c(&dir.path().join("open"));
    let (at, at2) = (c(Path::new("at")), c(Path::new("at2")));
    // Opened by the test itself (whose events the sensor ignores) and inherited by the child.
    let dir_c = c(dir.path());
    // SAFETY: a NUL-terminated path.
    let dirfd = unsafe {
        libc::open(
            dir_c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    assert!(dirfd >= 0);
    let creating = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY;
    let how = OpenHow {
        flags: creating as u64,
        mode: 0o600,
        resolve: 0x08, // RESOLVE_BENEATH
    };
    let how_arg = &how as *const OpenHow as libc::c_long;
    let child = in_child("pal-opens", || {
        let open_flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
        assert!(sys(libc::SYS_open, &[ptr(&open_path), open_flags as _, 0o640]) >= 3);
        let at_flags = libc::O_CREAT | libc::O_RDWR | libc::O_APPEND;
        assert!(
            sys(
                libc::SYS_openat,
                &[dirfd as _, ptr(&at), at_flags as _, 0o604]
            ) >= 3
        );
        let size = std::mem::size_of::<OpenHow>() as libc::c_long;
        assert!(sys(libc::SYS_openat2, &[dirfd as _, ptr(&at2), how_arg, size]) >= 3);
        // The same file again, exclusively: it exists.
        assert_eq!(
            sys(libc::SYS_openat2, &[dirfd as _, ptr(&at2), how_arg, size]),
            -i64::from(libc::EEXIST)
        );
    });
    // SAFETY: the test's own descriptor, closed once.
    unsafe { libc::close(dirfd) };
    let events = collect_from(&mut sensor, child, |events| {
        has_kinds(KINDS)(events)
            && events
                .iter()
                .filter(|event| event.kind == EventKind::Openat2)
                .count()
                >= 2
    });
    for event in &events {
        assert_child_process(event, child, "pal-opens");
    }
    let opened = |event: &Event| match &event.payload {
        Payload::Open { fd, flags, mode } => {
            (fd.name.clone(), *flags as i32, *mode, fd.num, event.ret)
        }
        other => panic!("{other:?}"),
    };
    let (path, flags, mode, num, ret) = opened(one(&events, EventKind::Open));
    assert_eq!(
        (path, flags, mode),
        (
            format!("{root}/open"),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            0o640
        )
    );
    assert!(num >= 3 && ret == num, "{events:#?}");
    let (path, flags, mode, num, ret) = opened(one(&events, EventKind::Openat));
    assert_eq!(
        (path, flags, mode),
        (
            format!("{root}/at"),
            libc::O_CREAT | libc::O_RDWR | libc::O_APPEND,
            0o604
        )
    );
    assert!(num >= 3 && ret == num, "{events:#?}");
    let openat2: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::Openat2)
        .map(opened)
        .collect();
    assert_eq!(openat2.len(), 2, "{events:#?}");
    for (path, flags, mode, _, _) in &openat2 {
        assert_eq!(
            (path.as_str(), *flags, *mode),
            (format!("{root}/at2").as_str(), creating, 0o600)
        );
    }
    assert!(
        openat2[0].3 >= 3 && openat2[0].4 == openat2[0].3,
        "{openat2:?}"
    );
    assert_eq!(openat2[1].4, -i64::from(libc::EEXIST), "{openat2:?}");
}

/// Every event carries the caller's group id and login uid as they are when it happens: a
/// child sets its login uid (`/proc/self/loginuid`, as a login does) and its group id, then
/// opens a file.
#[test]
fn events_carry_the_callers_gid_and_loginuid() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Openat]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let file_c = c(&file);
    let child = in_child("pal-loginuid", || {
        std::fs::write("/proc/self/loginuid", "4242").expect("root sets its login uid");
        // SAFETY: setgid has no memory preconditions.
        assert_eq!(unsafe { libc::setgid(4343) }, 0);
        let fd = sys(
            libc::SYS_openat,
            &[libc::AT_FDCWD as _, ptr(&file_c), libc::O_RDONLY as _],
        );
        assert!(fd >= 3);
    });
    let path = canonical(&file);
    let is_the_file =
        |event: &Event| matches!(&event.payload, Payload::Open { fd, .. } if fd.name == path);
    let events = collect_from(&mut sensor, child, |events| events.iter().any(is_the_file));
    let open = events
        .iter()
        .find(|event| is_the_file(event))
        .unwrap_or_else(|| panic!("no open of the file: {events:#?}"));
    assert_child_process(open, child, "pal-loginuid");
    assert_eq!(
        (open.process.gid, open.process.loginuid),
        (4343, Some(4242)),
        "{open:?}"
    );
}

fn socket_of(event: &Event) -> (&palisade_event::Fd, &palisade_event::Socket) {
    match &event.payload {
        Payload::Network { fd } => (fd, fd.socket.as_ref().expect("a socket")),
        other => panic!("{:?}: {other:?}", event.kind),
    }
}

#[test]
fn inet_sockets_report_bind_listen_connect_accept_and_sendto_with_addresses() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::Bind,
        EventKind::Listen,
        EventKind::Connect,
        EventKind::Accept,
        EventKind::Sendto,
    ];
    let mut sensor = start(KINDS);
    let (read_end, write_end) = std::io::pipe().unwrap();
    let child = in_child("pal-inet", move || {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let client_port = client.local_addr().unwrap().port();
        // SAFETY: plain accept on a listening socket; null address pointers are allowed.
        let accepted = unsafe {
            libc::accept(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert!(accepted >= 0);
        let udp = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let udp_port = udp.local_addr().unwrap().port();
        let peer = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let peer_port = peer.local_addr().unwrap().port();
        assert_eq!(udp.send_to(b"ping", ("::1", peer_port)).unwrap(), 4);
        let mut report = &write_end;
        writeln!(report, "{port} {client_port} {udp_port} {peer_port}").unwrap();
    });
    let ports: Vec<u16> = std::io::read_to_string(read_end)
        .unwrap()
        .split_whitespace()
        .map(|port| port.parse().unwrap())
        .collect();
    let [port, client_port, udp_port, peer_port] = ports[..] else {
        panic!("{ports:?}")
    };
    let events = collect_from(&mut sensor, child, |events| {
        has_kinds(KINDS)(events) && events.iter().filter(|e| e.kind == EventKind::Bind).count() >= 3
    });
    for event in &events {
        assert_child_process(event, child, "pal-inet");
        if event.kind != EventKind::Sendto && event.kind != EventKind::Accept {
            assert_eq!(event.ret, 0, "{event:?}");
        }
    }
    let loopback4: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let loopback6: std::net::IpAddr = "::1".parse().unwrap();
    let binds: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Bind)
        .collect();
    let (fd, socket) = socket_of(binds[0]);
    assert_eq!((fd.kind, socket.protocol), (FdKind::Ipv4, Protocol::Tcp));
    // bind's address is the one asked for (port 0: any free port).
    assert_eq!((socket.local_addr, socket.local_port), (Some(loopback4), 0));
    let (fd, socket) = socket_of(binds[1]);
    assert_eq!((fd.kind, socket.protocol), (FdKind::Ipv6, Protocol::Udp));
    assert_eq!(socket.local_addr, Some(loopback6));

    let (_, socket) = socket_of(one(&events, EventKind::Listen));
    assert_eq!(
        (socket.local_addr, socket.local_port),
        (Some(loopback4), port)
    );

    let (fd, socket) = socket_of(one(&events, EventKind::Connect));
    assert_eq!(fd.kind, FdKind::Ipv4);
    assert_eq!(
        (socket.remote_addr, socket.remote_port),
        (Some(loopback4), port)
    );
    assert_eq!(
        (socket.local_addr, socket.local_port),
        (Some(loopback4), client_port)
    );
    assert_eq!(
        fd.name,
        format!("127.0.0.1:{client_port}->127.0.0.1:{port}")
    );

    let accept = one(&events, EventKind::Accept);
    let (fd, socket) = socket_of(accept);
    assert_eq!(accept.ret, fd.num);
    assert!(fd.num >= 3);
    assert_eq!(
        (socket.local_addr, socket.local_port),
        (Some(loopback4), port)
    );
    assert_eq!(
        (socket.remote_addr, socket.remote_port),
        (Some(loopback4), client_port)
    );

    let send = one(&events, EventKind::Sendto);
    assert_eq!(send.ret, 4, "bytes sent");
    let (fd, socket) = socket_of(send);
    assert_eq!((fd.kind, socket.protocol), (FdKind::Ipv6, Protocol::Udp));
    assert_eq!(
        (socket.local_addr, socket.local_port),
        (Some(loopback6), udp_port)
    );
    assert_eq!(
        (socket.remote_addr, socket.remote_port),
        (Some(loopback6), peer_port)
    );
}

#[test]
fn unix_sockets_report_their_paths() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::Bind,
        EventKind::Listen,
        EventKind::Connect,
        EventKind::Accept4,
        EventKind::Sendto,
    ];
    let mut sensor = start(KINDS);
    let dir = tempfile::tempdir().unwrap();
    let stream_path = dir.path().join("stream.sock");
    let dgram_path = dir.path().join("dgram.sock");
    let (stream, dgram) = (stream_path.clone(), dgram_path.clone());
    let child = in_child("pal-unix", move || {
        use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
        let listener = UnixListener::bind(&stream).unwrap();
        let _client = UnixStream::connect(&stream).unwrap();
        let _accepted = listener.accept().unwrap();
        let receiver = UnixDatagram::bind(&dgram).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        assert_eq!(sender.send_to(b"hello", &dgram).unwrap(), 5);
        drop(receiver);
    });
    let events = collect_from(&mut sensor, child, |events| {
        has_kinds(KINDS)(events) && events.iter().filter(|e| e.kind == EventKind::Bind).count() >= 2
    });
    let stream_text = stream_path.to_str().unwrap();
    let dgram_text = dgram_path.to_str().unwrap();
    for event in &events {
        assert_child_process(event, child, "pal-unix");
        let (fd, socket) = socket_of(event);
        assert_eq!(fd.kind, FdKind::Unix, "{event:?}");
        assert!(socket.local_addr.is_none() && socket.remote_addr.is_none());
    }
    let path_and_ret = |event: &Event| (socket_of(event).1.unix_path.clone(), event.ret);
    let binds: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Bind)
        .collect();
    assert_eq!(path_and_ret(binds[0]), (stream_text.to_owned(), 0));
    assert_eq!(path_and_ret(binds[1]), (dgram_text.to_owned(), 0));
    assert_eq!(one(&events, EventKind::Listen).ret, 0);
    assert_eq!(
        path_and_ret(one(&events, EventKind::Connect)),
        (stream_text.to_owned(), 0)
    );
    let accept = one(&events, EventKind::Accept4);
    assert!(accept.ret >= 3, "{accept:?}");
    assert_eq!(socket_of(accept).0.num, accept.ret);
    assert_eq!(
        path_and_ret(one(&events, EventKind::Sendto)),
        (dgram_text.to_owned(), 5)
    );
}

#[test]
fn dup_of_a_socket_onto_stdin_stdout_stderr_names_the_peer() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Dup2, EventKind::Dup3]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = in_child("pal-revshell", move || {
        use std::os::fd::AsRawFd;
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let fd = stream.as_raw_fd() as libc::c_long;
        // What a reverse shell does before exec'ing a shell.
        assert_eq!(sys(libc::SYS_dup2, &[fd, 0]), 0);
        assert_eq!(sys(libc::SYS_dup3, &[fd, 1, 0]), 1);
        assert_eq!(sys(libc::SYS_dup2, &[fd, 2]), 2);
    });
    let events = collect_from(&mut sensor, child, |events| events.len() >= 3);
    assert_eq!(events.len(), 3, "{events:#?}");
    for (event, (kind, new)) in events.iter().zip([
        (EventKind::Dup2, 0),
        (EventKind::Dup3, 1),
        (EventKind::Dup2, 2),
    ]) {
        assert_child_process(event, child, "pal-revshell");
        assert_eq!(event.kind, kind);
        assert_eq!(event.ret, new);
        let Payload::Dup { fd, new_fd } = &event.payload else {
            panic!("{event:?}")
        };
        assert_eq!(*new_fd, new);
        assert_eq!(fd.kind, FdKind::Ipv4);
        let socket = fd.socket.as_ref().unwrap();
        assert_eq!(socket.protocol, Protocol::Tcp);
        assert_eq!(socket.remote_port, port);
        assert_eq!(socket.remote_addr, Some("127.0.0.1".parse().unwrap()));
        assert!(socket.connected);
    }
}

#[test]
fn ptrace_attach_reports_request_and_target() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Ptrace]);
    let (read_end, write_end) = std::io::pipe().unwrap();
    let child = in_child("pal-ptrace", move || {
        use std::io::Write;
        // SAFETY: the grandchild only pauses until it is killed.
        let target = unsafe { libc::fork() };
        if target == 0 {
            loop {
                unsafe { libc::pause() };
            }
        }
        let attach = sys(
            libc::SYS_ptrace,
            &[libc::PTRACE_ATTACH as _, target as _, 0, 0],
        );
        assert_eq!(attach, 0);
        let stopped = common::wait(target);
        assert!(libc::WIFSTOPPED(stopped));
        assert_eq!(
            sys(
                libc::SYS_ptrace,
                &[libc::PTRACE_DETACH as _, target as _, 0, 0]
            ),
            0
        );
        unsafe { libc::kill(target, libc::SIGKILL) };
        common::wait(target);
        writeln!(&write_end, "{target}").unwrap();
    });
    let target: u32 = std::io::read_to_string(read_end)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let events = collect_from(&mut sensor, child, |events| events.len() >= 2);
    assert_eq!(events.len(), 2, "{events:#?}");
    for (event, request) in events
        .iter()
        .zip([libc::PTRACE_ATTACH, libc::PTRACE_DETACH])
    {
        assert_child_process(event, child, "pal-ptrace");
        assert_eq!(event.ret, 0);
        assert_eq!(
            event.payload,
            Payload::Ptrace {
                request: request as u64,
                target_pid: target
            }
        );
    }
}

#[test]
fn mount_umount_and_unshare_in_a_private_mount_namespace() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[EventKind::Unshare, EventKind::Mount, EventKind::Umount2];
    let mut sensor = start(KINDS);
    let dir = tempfile::tempdir().unwrap();
    let target = c(dir.path());
    let (source, fstype, options) = (
        CString::new("palisade-test").unwrap(),
        CString::new("tmpfs").unwrap(),
        CString::new("size=1m").unwrap(),
    );
    let root = CString::new("/").unwrap();
    // Everything happens in the child's own mount namespace, which ends with it: the
    // host's mounts are never touched.
    let child = in_child("pal-mount", || {
        assert_eq!(sys(libc::SYS_unshare, &[libc::CLONE_NEWNS as _]), 0);
        let private = (libc::MS_REC | libc::MS_PRIVATE) as libc::c_long;
        assert_eq!(sys(libc::SYS_mount, &[0, ptr(&root), 0, private, 0]), 0);
        assert_eq!(
            sys(
                libc::SYS_mount,
                &[
                    ptr(&source),
                    ptr(&target),
                    ptr(&fstype),
                    libc::MS_NOSUID as _,
                    ptr(&options)
                ]
            ),
            0
        );
        assert_eq!(
            sys(libc::SYS_umount2, &[ptr(&target), libc::MNT_DETACH as _]),
            0
        );
    });
    let events = collect_from(&mut sensor, child, |events| {
        has_kinds(KINDS)(events)
            && events.iter().filter(|e| e.kind == EventKind::Mount).count() >= 2
    });
    for event in &events {
        assert_child_process(event, child, "pal-mount");
        assert_eq!(event.ret, 0, "{event:?}");
    }
    assert_eq!(
        one(&events, EventKind::Unshare).payload,
        Payload::Namespace {
            path: String::new(),
            flags: libc::CLONE_NEWNS as u64
        }
    );
    let mounts: Vec<&Payload> = events
        .iter()
        .filter(|e| e.kind == EventKind::Mount)
        .map(|e| &e.payload)
        .collect();
    assert_eq!(
        *mounts[1],
        Payload::Mount {
            source: "palisade-test".into(),
            target: canonical(dir.path()),
            fstype: "tmpfs".into(),
            flags: libc::MS_NOSUID,
        }
    );
    assert!(
        matches!(mounts[0], Payload::Mount { target, flags, .. } if target == "/" && *flags == (libc::MS_REC | libc::MS_PRIVATE)),
        "{:?}",
        mounts[0]
    );
    assert_eq!(
        one(&events, EventKind::Umount2).payload,
        Payload::Path {
            path: canonical(dir.path()),
            mode: 0,
            flags: libc::MNT_DETACH as u32
        }
    );
}

#[test]
fn setns_back_into_the_host_uts_namespace_names_the_namespace_file() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::Unshare, EventKind::Setns]);
    let host_uts = CString::new("/proc/self/ns/uts").unwrap();
    let child = in_child("pal-setns", || {
        let host = unsafe { libc::open(host_uts.as_ptr(), libc::O_RDONLY) };
        assert!(host >= 0);
        assert_eq!(sys(libc::SYS_unshare, &[libc::CLONE_NEWUTS as _]), 0);
        assert_eq!(
            sys(libc::SYS_setns, &[host as _, libc::CLONE_NEWUTS as _]),
            0
        );
        // A wrong namespace type is refused.
        assert_eq!(
            sys(libc::SYS_setns, &[host as _, libc::CLONE_NEWNET as _]),
            -i64::from(libc::EINVAL)
        );
    });
    let events = collect_from(&mut sensor, child, |events| events.len() >= 3);
    assert_eq!(events.len(), 3, "{events:#?}");
    for event in &events {
        assert_child_process(event, child, "pal-setns");
    }
    assert_eq!(events[0].kind, EventKind::Unshare);
    assert_eq!(
        events[0].payload,
        Payload::Namespace {
            path: String::new(),
            flags: libc::CLONE_NEWUTS as u64
        }
    );
    let uts_link = std::fs::read_link("/proc/self/ns/uts").unwrap();
    for (event, flags, ret) in [
        (&events[1], libc::CLONE_NEWUTS, 0),
        (&events[2], libc::CLONE_NEWNET, -i64::from(libc::EINVAL)),
    ] {
        assert_eq!(event.kind, EventKind::Setns);
        assert_eq!(event.ret, ret);
        let Payload::Namespace { path, flags: got } = &event.payload else {
            panic!("{event:?}")
        };
        assert_eq!(*got, flags as u64);
        // The namespace file's name, e.g. `uts:[4026531838]`.
        assert!(
            path.ends_with(uts_link.to_str().unwrap()),
            "{path} names {uts_link:?}"
        );
    }
}

#[test]
fn capset_setgid_and_setuid_report_the_new_ids_and_sets() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::Capset,
        EventKind::Setgid,
        EventKind::Setuid,
        EventKind::Setresuid,
    ];
    let mut sensor = start(KINDS);
    let (read_end, write_end) = std::io::pipe().unwrap();
    let child = in_child("pal-setid", move || {
        use std::io::Write;
        let mut header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
        let mut data = [0u32; 6]; // two {effective, permitted, inheritable}
        assert_eq!(
            sys(
                libc::SYS_capget,
                &[header.as_mut_ptr() as _, data.as_mut_ptr() as _]
            ),
            0
        );
        // Drop CAP_NET_RAW (13) from the effective set only, and make CAP_NET_BIND_SERVICE
        // (10) inheritable.
        data[0] &= !(1 << 13);
        data[2] |= 1 << 10;
        assert_eq!(
            sys(
                libc::SYS_capset,
                &[header.as_mut_ptr() as _, data.as_ptr() as _]
            ),
            0
        );
        writeln!(
            &write_end,
            "{} {} {}",
            data[0] as u64 | (data[3] as u64) << 32,
            data[1] as u64 | (data[4] as u64) << 32,
            data[2] as u64 | (data[5] as u64) << 32
        )
        .unwrap();
        assert_eq!(sys(libc::SYS_setgid, &[65534]), 0);
        assert_eq!(sys(libc::SYS_setuid, &[65534]), 0);
        assert_eq!(sys(libc::SYS_setresuid, &[-1, 65534, -1]), 0);
        // No longer root: going back is refused.
        assert_eq!(sys(libc::SYS_setuid, &[0]), -i64::from(libc::EPERM));
    });
    let sets: Vec<u64> = std::io::read_to_string(read_end)
        .unwrap()
        .split_whitespace()
        .map(|set| set.parse().unwrap())
        .collect();
    let events = collect_from(&mut sensor, child, |events| events.len() >= 5);
    assert_eq!(events.len(), 5, "{events:#?}");
    let summary: Vec<(EventKind, i64, Payload, u32)> = events
        .iter()
        .map(|e| (e.kind, e.ret, e.payload.clone(), e.process.uid))
        .collect();
    assert_eq!(
        summary,
        [
            (
                EventKind::Capset,
                0,
                // The sets after the call, as Falco's driver reads them.
                Payload::Capset {
                    inheritable: sets[2],
                    permitted: sets[1],
                    effective: sets[0],
                },
                0
            ),
            (
                EventKind::Setgid,
                0,
                Payload::SetId {
                    id: 65534,
                    name: "nogroup".into()
                },
                0
            ),
            // The event carries the credentials after the call.
            (
                EventKind::Setuid,
                0,
                Payload::SetId {
                    id: 65534,
                    name: "nobody".into()
                },
                65534
            ),
            (
                EventKind::Setresuid,
                0,
                Payload::SetId {
                    id: 65534,
                    name: "nobody".into()
                },
                65534
            ),
            (
                EventKind::Setuid,
                -i64::from(libc::EPERM),
                Payload::SetId {
                    id: 0,
                    name: "root".into()
                },
                65534
            ),
        ]
    );
    assert_eq!(sets[0] & (1 << 13), 0);
    assert_ne!(sets[1] & (1 << 13), 0);
    assert_eq!(events[1].process.gid, 65534);
    // The user's home and shell come from the same /etc/passwd entry as its name.
    let nobody = &events[2].process;
    assert_eq!(
        (
            nobody.user.as_str(),
            nobody.user_homedir.as_str(),
            nobody.user_shell.as_str()
        ),
        ("nobody", "/nonexistent", "/usr/sbin/nologin")
    );
    assert_eq!(events[0].process.user_homedir, "/root");
    // The parent (this test, in the host's pid namespace) with its pid there.
    assert_eq!(events[0].ancestors[0].vpid, std::process::id());
    for event in &events {
        assert_eq!(event.process.pid, child);
        assert_eq!(event.process.name, "pal-setid");
        assert_eq!(event.process.ppid, std::process::id());
    }
}

#[test]
fn memfd_create_bpf_and_chroot_report_their_arguments() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[EventKind::MemfdCreate, EventKind::Bpf, EventKind::Chroot];
    let mut sensor = start(KINDS);
    let dir = tempfile::tempdir().unwrap();
    let new_root = c(dir.path());
    let missing = c(&dir.path().join("missing"));
    let name = CString::new("palisade-payload").unwrap();
    let child = in_child("pal-priv", || {
        let memfd = sys(
            libc::SYS_memfd_create,
            &[ptr(&name), libc::MFD_CLOEXEC as _],
        );
        assert!(memfd >= 3, "{memfd}");
        // BPF_MAP_CREATE of a one-entry array, closed again.
        let mut attr = [0u32; 32];
        attr[0] = 2; // BPF_MAP_TYPE_ARRAY
        attr[1] = 4; // key size
        attr[2] = 8; // value size
        attr[3] = 1; // max entries
        let map = sys(libc::SYS_bpf, &[0, attr.as_ptr() as _, 128]);
        assert!(map >= 3, "{map}");
        unsafe { libc::close(map as i32) };
        assert_eq!(
            sys(libc::SYS_chroot, &[ptr(&missing)]),
            -i64::from(libc::ENOENT)
        );
        assert_eq!(sys(libc::SYS_chroot, &[ptr(&new_root)]), 0);
    });
    let events = collect_from(&mut sensor, child, |events| events.len() >= 4);
    assert_eq!(events.len(), 4, "{events:#?}");
    for event in &events {
        assert_child_process(event, child, "pal-priv");
    }
    assert_eq!(events[0].kind, EventKind::MemfdCreate);
    assert!(events[0].ret >= 3);
    assert_eq!(
        events[0].payload,
        Payload::Memfd {
            name: "palisade-payload".into(),
            flags: libc::MFD_CLOEXEC
        }
    );
    assert_eq!(events[1].kind, EventKind::Bpf);
    assert!(events[1].ret >= 3);
    assert_eq!(events[1].payload, Payload::Bpf { cmd: 0 });
    let chroot = |event: &Event| (event.kind, event.ret, event.payload.clone());
    let path = |path: String| Payload::Path {
        path,
        mode: 0,
        flags: 0,
    };
    assert_eq!(
        chroot(&events[2]),
        (
            EventKind::Chroot,
            -i64::from(libc::ENOENT),
            path(format!("{}/missing", canonical(dir.path())))
        )
    );
    assert_eq!(
        chroot(&events[3]),
        (EventKind::Chroot, 0, path(canonical(dir.path())))
    );
}

#[test]
fn module_calls_report_their_error_returns_without_loading_anything() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::InitModule,
        EventKind::FinitModule,
        EventKind::DeleteModule,
    ];
    let mut sensor = start(KINDS);
    let status = sensor.status();
    assert!(
        KINDS.iter().all(|kind| status.kinds.contains(kind)),
        "{status:?}"
    );
    // Per-call tracepoints where the kernel has them (CONFIG_MODULES), the dispatcher on
    // every call's exit otherwise.
    let has = |program: &str| status.sources.iter().any(|name| name == program);
    let per_call = has("exit_finit_module");
    let dispatched = has("exit_dispatch") && has("dispatched_finit_module");
    assert!(per_call != dispatched, "{status:?}");
    let params = CString::new("palisade=1").unwrap();
    let name = CString::new("palisade_no_such_module").unwrap();
    let not_a_module = CString::new("/etc/hostname").unwrap();
    let (read_end, write_end) = std::io::pipe().unwrap();
    let child = in_child("pal-modules", move || {
        use std::io::Write;
        // None of these can load anything: a 4-byte "image", a bad fd, a text file, and the
        // removal of a module that does not exist.
        let image = *b"\x7fELF";
        let init = sys(
            libc::SYS_init_module,
            &[image.as_ptr() as _, 4, ptr(&params)],
        );
        let bad_fd = sys(libc::SYS_finit_module, &[-1, ptr(&params), 0]);
        let text = unsafe { libc::open(not_a_module.as_ptr(), libc::O_RDONLY) };
        let from_text = sys(libc::SYS_finit_module, &[text as _, ptr(&params), 0]);
        let delete = sys(
            libc::SYS_delete_module,
            &[ptr(&name), libc::O_NONBLOCK as _],
        );
        for ret in [init, bad_fd, from_text, delete] {
            assert!(ret < 0, "nothing may load: {ret}");
        }
        writeln!(&write_end, "{init} {bad_fd} {from_text} {delete}").unwrap();
    });
    let rets: Vec<i64> = std::io::read_to_string(read_end)
        .unwrap()
        .split_whitespace()
        .map(|ret| ret.parse().unwrap())
        .collect();
    let events = collect_from(&mut sensor, child, |events| events.len() >= 4);
    assert_eq!(events.len(), 4, "{events:#?}");
    for event in &events {
        assert_child_process(event, child, "pal-modules");
    }
    let summary: Vec<(EventKind, i64, Payload)> = events
        .iter()
        .map(|e| (e.kind, e.ret, e.payload.clone()))
        .collect();
    let module = |name: &str| Payload::Module { name: name.into() };
    assert_eq!(
        summary,
        [
            (EventKind::InitModule, rets[0], module("palisade=1")),
            (EventKind::FinitModule, rets[1], module("")),
            (EventKind::FinitModule, rets[2], module("/etc/hostname")),
            (
                EventKind::DeleteModule,
                rets[3],
                module("palisade_no_such_module")
            ),
        ]
    );
}

#[test]
fn a_module_call_refused_by_seccomp_is_reported_with_its_arguments() {
    if !can_run_ebpf() {
        return;
    }
    let mut sensor = start(&[EventKind::FinitModule]);
    let params = CString::new("palisade=1").unwrap();
    let not_a_module = CString::new("/etc/hostname").unwrap();
    let (read_end, write_end) = std::io::pipe().unwrap();
    let child = in_child("pal-seccomp", move || {
        use std::io::Write;
        // What a container runtime's default profile does: finit_module fails with EPERM
        // before the kernel's system call entry tracepoints run.
        let filter = [
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: 0, // seccomp_data.nr
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: libc::SYS_finit_module as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            },
        ];
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at a valid filter that outlives the call.
        let installed = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        assert_eq!(installed, 0, "{}", std::io::Error::last_os_error());
        let text = unsafe { libc::open(not_a_module.as_ptr(), libc::O_RDONLY) };
        let refused = sys(libc::SYS_finit_module, &[text as _, ptr(&params), 0]);
        writeln!(&write_end, "{refused}").unwrap();
    });
    let refused: i64 = std::io::read_to_string(read_end)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(refused, -i64::from(libc::EPERM), "seccomp refused the call");
    let events = collect_from(&mut sensor, child, |events| !events.is_empty());
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_child_process(&events[0], child, "pal-seccomp");
    assert_eq!(
        (events[0].kind, events[0].ret, events[0].payload.clone()),
        (
            EventKind::FinitModule,
            refused,
            Payload::Module {
                name: "/etc/hostname".into()
            }
        )
    );
}

/// Where a wanted module call has no tracepoint of its own (this kernel), one program on every
/// system call's exit reports every observed call; elsewhere each call's own tracepoint does.
/// The events must not tell them apart: two sensors watch the same child, one per way, and
/// every event but its timestamps is the same.
#[test]
fn dispatched_and_per_call_tracepoint_events_are_identical() {
    if !can_run_ebpf() {
        return;
    }
    const KINDS: &[EventKind] = &[
        EventKind::Openat,
        EventKind::Fchmod,
        EventKind::Mkdirat,
        EventKind::Renameat,
        EventKind::Unlinkat,
        EventKind::Socket,
        EventKind::Connect,
        EventKind::Dup3,
    ];
    let mut per_call = start(KINDS);
    let mut dispatched = start(&[KINDS, &[EventKind::InitModule]].concat());
    let uses = |sensor: &palisade_sensor::Sensor, program: &str| {
        sensor.status().sources.iter().any(|name| name == program)
    };
    assert!(uses(&per_call, "exit_openat"), "{:?}", per_call.status());
    let module_tracepoints =
        Path::new("/sys/kernel/tracing/events/syscalls/sys_exit_init_module").exists();
    assert_eq!(
        uses(&dispatched, "exit_dispatch"),
        !module_tracepoints,
        "{:?}",
        dispatched.status()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = c(&dir.path().join("file"));
    let renamed = c(&dir.path().join("renamed"));
    let subdir = c(&dir.path().join("subdir"));
    let missing = c(&dir.path().join("missing/file"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = in_child("pal-dispatch", move || {
        let at = libc::AT_FDCWD as libc::c_long;
        let fd = sys(
            libc::SYS_openat,
            &[at, ptr(&file), (libc::O_CREAT | libc::O_WRONLY) as _, 0o640],
        );
        assert!(fd >= 0);
        assert_eq!(sys(libc::SYS_openat, &[at, ptr(&missing), 0]), -2);
        assert_eq!(sys(libc::SYS_fchmod, &[fd, 0o600]), 0);
        assert_eq!(sys(libc::SYS_mkdirat, &[at, ptr(&subdir), 0o750]), 0);
        assert_eq!(
            sys(libc::SYS_renameat, &[at, ptr(&file), at, ptr(&renamed)]),
            0
        );
        assert_eq!(sys(libc::SYS_unlinkat, &[at, ptr(&renamed), 0]), 0);
        let socket = sys(
            libc::SYS_socket,
            &[libc::AF_INET as _, libc::SOCK_STREAM as _, 0],
        );
        assert!(socket >= 0);
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as _,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::c_long;
        let address = &address as *const libc::sockaddr_in as libc::c_long;
        assert_eq!(sys(libc::SYS_connect, &[socket, address, size]), 0);
        assert_eq!(sys(libc::SYS_dup3, &[socket, fd, 0]), fd);
    });
    drop(listener);
    // One event of each kind, and a second openat (the failed one).
    let n_events = KINDS.len() + 1;
    let complete = |events: &[Event]| events.len() >= n_events;
    let expected = collect_from(&mut per_call, child, complete);
    let seen = collect_from(&mut dispatched, child, complete);
    assert_eq!(expected.len(), n_events, "{expected:#?}");
    for kind in KINDS {
        assert!(
            expected.iter().any(|event| event.kind == *kind),
            "{kind:?}: {expected:#?}"
        );
    }
    assert_eq!(without_times(&seen), without_times(&expected));
}

/// `events` as JSON without their times: each sensor reads the clock in its own programs and
/// converts boot time to wall time with the offset it measured at start.
fn without_times(events: &[Event]) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(fields) => {
                for time in [
                    "timestamp_ns",
                    "capture_start_ns",
                    "start_time_ns",
                    "pidns_init_start_ns",
                ] {
                    fields.remove(time);
                }
                fields.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(events).unwrap();
    strip(&mut value);
    value
}
