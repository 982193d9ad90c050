//! Enforcement primitives against the real kernel, as root: every test cleans up what it
//! creates through guards whose `Drop` runs also when an assertion fails.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use palisade_enforce::{
    Binary, BinaryId, Capabilities, ConnectCount, ConnectFilter, ConnectReports,
    ConnectReportsRing, DefenseMode, ExecDenier, ExecKiller, MarkScope, NetRule, WorkloadFirewall,
    cgroup2_root, close_tcp_connections_of_cgroup, open_tcp_connections_of_cgroup, workload_rules,
    would_refuse,
};
use palisade_firewall::{Protocol, RuleAction};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
    })
}

/// Copies an executable into `dir` under `name`.
fn copy_executable(from: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

#[test]
fn kill_at_exec_kills_the_denied_copy_and_not_the_original() {
    if !palisade_testdata::capability("root (eBPF)", is_root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let denied_copy = copy_executable("/bin/true", dir.path(), "denied-true");
    let other_copy = copy_executable("/bin/true", dir.path(), "other-true");
    let killer = ExecKiller::load().unwrap();
    let binary_id = killer.deny(Binary::path(&denied_copy)).unwrap();

    let status = Command::new(&denied_copy).status().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "denied copy: {status:?}"
    );
    assert!(Command::new(&other_copy).status().unwrap().success());
    assert!(Command::new("/bin/true").status().unwrap().success());

    let kills = killer.poll_kills(Duration::from_secs(2)).unwrap();
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0].binary, binary_id);
    assert!(kills[0].signal_sent);
    assert_eq!(kills[0].comm, "denied-true");
    assert_eq!(kills[0].filename, denied_copy.to_str().unwrap());

    assert!(killer.allow(Binary::path(&denied_copy)).unwrap());
    assert!(Command::new(&denied_copy).status().unwrap().success());
    assert_eq!(killer.lost_reports().unwrap(), 0);
}

/// A binary denied by its device and inode is killed under every name of that file (a hard
/// link made after the rule), while a byte-identical copy (another inode) runs.
#[test]
fn kill_at_exec_by_device_and_inode_kills_every_link_of_the_file() {
    if !palisade_testdata::capability("root (eBPF)", is_root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let denied = copy_executable("/bin/true", dir.path(), "denied-true");
    let copy = copy_executable("/bin/true", dir.path(), "copy-true");
    let identity = BinaryId::of_path(&denied).unwrap();
    let killer = ExecKiller::load().unwrap();
    assert_eq!(killer.deny(Binary::Inode(identity)).unwrap(), identity);
    let link = dir.path().join("linked-true");
    std::fs::hard_link(&denied, &link).unwrap();

    let status = Command::new(&link).status().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "hard link: {status:?}"
    );
    assert!(Command::new(&copy).status().unwrap().success());

    let kills = killer.poll_kills(Duration::from_secs(2)).unwrap();
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0].binary, identity);
    assert_eq!(kills[0].filename, link.to_str().unwrap());
    assert!(killer.allow(Binary::Inode(identity)).unwrap());
    assert!(Command::new(&link).status().unwrap().success());
}

/// A tmpfs mounted on a temporary directory, unmounted (lazily) on drop.
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new() -> TmpfsMount {
        let dir = tempfile::tempdir().unwrap();
        let target = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let mounted = unsafe {
            libc::mount(
                c"palisade-test".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=16m".as_ptr().cast(),
            )
        };
        assert_eq!(
            mounted,
            0,
            "mount tmpfs: {}",
            std::io::Error::last_os_error()
        );
        TmpfsMount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.dir.path().to_str().unwrap()).unwrap();
        // SAFETY: NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn fanotify_denies_exec_with_eperm_on_the_watched_mount_only() {
    if !palisade_testdata::capability("root (fanotify)", is_root()) {
        return;
    }
    let mount = TmpfsMount::new();
    let denied_copy = copy_executable("/bin/true", mount.path(), "denied-true");
    let other_copy = copy_executable("/bin/true", mount.path(), "other-true");
    let denier = ExecDenier::watch(mount.path(), MarkScope::Mount).unwrap();
    let binary_id = denier.deny(Binary::path(&denied_copy)).unwrap();

    let error = Command::new(&denied_copy).status().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
    assert!(Command::new(&other_copy).status().unwrap().success());

    let denials = denier.take_denials();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].binary, binary_id);
    assert_eq!(denials[0].path.as_deref(), Some(denied_copy.as_path()));
    let stats = denier.stats();
    assert_eq!((stats.answered, stats.denied, stats.failed_open), (2, 1, 0));
    assert!(stats.slowest < Duration::from_millis(100), "{stats:?}");

    assert!(denier.allow(Binary::path(&denied_copy)).unwrap());
    assert!(Command::new(&denied_copy).status().unwrap().success());

    // Fail-open: with the group closed, the binary runs again even if re-denied first.
    denier.deny(Binary::path(&denied_copy)).unwrap();
    drop(denier);
    assert!(Command::new(&denied_copy).status().unwrap().success());
}

/// A cgroup2 directory, removed on drop after moving any process left in it to the root.
struct TestCgroup {
    path: std::path::PathBuf,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let path = cgroup2_root()
            .unwrap()
            .join(format!("palisade-test-{name}-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        TestCgroup { path }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Ok(procs) = std::fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(cgroup2_root().unwrap().join("cgroup.procs"), pid);
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.path.display());
    }
}

/// Connects with bash's /dev/tcp from a shell that first moves itself into `cgroup` (when
/// given); returns the exit status and stderr.
fn bash_connect(cgroup: Option<&Path>, host: &str, port: u16) -> (bool, String) {
    let enter = cgroup
        .map(|cgroup| format!("echo 0 > {}/cgroup.procs && ", cgroup.display()))
        .unwrap_or_default();
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{enter}exec 3<>/dev/tcp/{host}/{port}"))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A child process killed and reaped on drop.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A listener that accepts connections in the background and keeps them open.
fn listener(address: &str) -> u16 {
    let listener = std::net::TcpListener::bind(address).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut accepted = Vec::new();
        for stream in listener.incoming() {
            accepted.push(stream);
        }
    });
    port
}

fn tcp_rule(id: u32, remote: &str, port: u16, action: RuleAction) -> NetRule {
    NetRule {
        id,
        remote: remote.parse().unwrap(),
        ports: (port, port),
        protocol: Some(Protocol::Tcp),
        action,
    }
}

#[test]
fn connect_refusal_applies_inside_the_cgroup_only_and_rules_change_live() {
    if !palisade_testdata::capability("root (eBPF, cgroup2)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("connect");
    let port_v4 = listener("127.0.0.1:0");
    let port_v6 = listener("[::1]:0");
    let stream = ConnectReports::new().unwrap();
    let filter = ConnectFilter::attach(&cgroup.path, &stream, 41).unwrap();
    assert!(
        bash_connect(Some(&cgroup.path), "127.0.0.1", port_v4).0,
        "no rules yet"
    );
    // A process in the cgroup holds a connection open across the rule change.
    let holder = KillOnDrop(
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "echo 0 > {}/cgroup.procs && exec 3<>/dev/tcp/127.0.0.1/{port_v4} && exec sleep 60",
                cgroup.path.display()
            ))
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let held = loop {
        let open = open_tcp_connections_of_cgroup(&cgroup.path).unwrap();
        if !open.is_empty() || std::time::Instant::now() > deadline {
            break open;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(held.len(), 1, "{held:?}");

    filter
        .set_rules(&[
            tcp_rule(7, "127.0.0.1/32", port_v4, RuleAction::Block),
            tcp_rule(8, "::1/128", port_v6, RuleAction::Block),
        ])
        .unwrap();
    let (connected, stderr) = bash_connect(Some(&cgroup.path), "127.0.0.1", port_v4);
    assert!(
        !connected && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    let (connected, stderr) = bash_connect(Some(&cgroup.path), "::1", port_v6);
    assert!(
        !connected && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    assert!(
        bash_connect(None, "127.0.0.1", port_v4).0,
        "outside the cgroup"
    );
    assert!(bash_connect(None, "::1", port_v6).0, "outside the cgroup");
    assert_eq!((filter.hits(7).unwrap(), filter.hits(8).unwrap()), (1, 1));

    // The connection opened before the rule is listed as one the rule would refuse.
    let block_v4 = [tcp_rule(7, "127.0.0.1/32", port_v4, RuleAction::Block)];
    let open = open_tcp_connections_of_cgroup(&cgroup.path).unwrap();
    assert_eq!(open, held, "the connection is still open");
    let listed = would_refuse(&open, &block_v4, &[]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].connection.remote.port(), port_v4);
    assert_eq!(listed[0].rule.id, 7);
    // Closing it, in the holder's network namespace: it is gone from the cgroup's list.
    let closing = close_tcp_connections_of_cgroup(&cgroup.path, &open).unwrap();
    assert_eq!(closing.closed, held);
    assert!(
        closing.left_open.is_empty() && closing.errors.is_empty(),
        "{closing:?}"
    );
    assert!(
        open_tcp_connections_of_cgroup(&cgroup.path)
            .unwrap()
            .is_empty()
    );
    assert!(
        close_tcp_connections_of_cgroup(&cgroup.path, &open)
            .unwrap()
            .closed
            .is_empty(),
        "a connection closed already is not closed twice"
    );
    drop(holder);

    // An allow rule before the block rule lets the same connect through.
    filter
        .set_rules(&[
            tcp_rule(9, "127.0.0.0/8", port_v4, RuleAction::Allow),
            tcp_rule(7, "127.0.0.1/32", port_v4, RuleAction::Block),
        ])
        .unwrap();
    assert!(bash_connect(Some(&cgroup.path), "127.0.0.1", port_v4).0);

    // Alert mode: the connect passes, and is counted and reported.
    filter
        .set_rules(&[tcp_rule(10, "127.0.0.1/32", port_v4, RuleAction::Alert)])
        .unwrap();
    for _ in 0..3 {
        assert!(bash_connect(Some(&cgroup.path), "127.0.0.1", port_v4).0);
    }
    assert_eq!(filter.hits(10).unwrap(), 3);
    // Every attempt is counted, per match: the two refused connects and the three identical
    // alerted ones; each match's first connect is also reported (below).
    let mut counted: Vec<(u32, u64)> = take_delivered(&stream)
        .iter()
        .map(|count| (count.matched.rule_id, count.attempts))
        .collect();
    counted.sort_unstable();
    assert_eq!(counted, [(7, 1), (8, 1), (10, 3)]);
    // A second filter on another cgroup reports into the same stream, under its own tag.
    let other_cgroup = TestCgroup::new("connect-other");
    let other_filter = ConnectFilter::attach(&other_cgroup.path, &stream, 42).unwrap();
    other_filter
        .set_rules(&[tcp_rule(11, "127.0.0.1/32", port_v4, RuleAction::Block)])
        .unwrap();
    assert!(!bash_connect(Some(&other_cgroup.path), "127.0.0.1", port_v4).0);
    let all_reports = stream.take().unwrap();
    let (reports, other_reports): (Vec<_>, Vec<_>) = all_reports
        .into_iter()
        .partition(|report| report.matched.filter_tag == 41);
    assert_eq!(other_reports.len(), 1, "{other_reports:?}");
    let other = &other_reports[0].matched;
    assert_eq!((other.filter_tag, other.rule_id), (42, 11));
    assert_eq!(other.action, RuleAction::Block);
    drop(other_filter);
    let blocked: Vec<_> = reports
        .iter()
        .filter(|r| r.matched.action == RuleAction::Block)
        .collect();
    let alerted: Vec<_> = reports
        .iter()
        .filter(|r| r.matched.action == RuleAction::Alert)
        .collect();
    assert_eq!((blocked.len(), alerted.len()), (2, 1), "{reports:?}");
    assert_eq!(
        alerted[0].matched.remote,
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(alerted[0].matched.port, port_v4);
    assert_eq!(alerted[0].matched.protocol, Some(Protocol::Tcp));
    assert_eq!(alerted[0].comm, "bash");
    assert!(
        reports.iter().all(|report| report.counted),
        "each report announces a counted attempt: {reports:?}"
    );
    assert_eq!(
        blocked[1].matched.remote,
        "::1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(stream.lost().unwrap(), 0);
}

#[test]
fn capabilities_report_what_loads_and_bpf_lsm_honestly() {
    if !palisade_testdata::capability("root (eBPF)", is_root()) {
        return;
    }
    let capabilities = Capabilities::detect();
    assert!(capabilities.kill_at_exec.is_available(), "{capabilities:?}");
    assert!(
        capabilities.connect_refusal.is_available(),
        "{capabilities:?}"
    );
    // BPF-LSM must be reported exactly as the kernel's LSM list says, never assumed.
    let bpf_in_lsm_list = capabilities
        .active_lsms
        .as_deref()
        .is_some_and(|list| list.split(',').any(|lsm| lsm == "bpf"));
    if !bpf_in_lsm_list {
        assert!(!capabilities.bpf_lsm.is_available(), "{capabilities:?}");
    }
}

#[test]
fn errors_name_what_failed_and_where() {
    let missing = Path::new("/nonexistent/palisade/binary");
    let error = Binary::path(missing).resolve().unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/palisade/binary"),
        "{error}"
    );
    let error = palisade_enforce::NftFirewall::new(Path::new("/run/netns/palisade-absent"))
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("/run/netns/palisade-absent"),
        "{error}"
    );
    if !palisade_testdata::capability("root (eBPF, cgroup2)", is_root()) {
        return;
    }
    let stream = ConnectReports::new().unwrap();
    let error = ConnectFilter::attach(Path::new("/nonexistent/cgroup"), &stream, 0)
        .err()
        .unwrap();
    assert!(error.to_string().contains("/nonexistent/cgroup"), "{error}");
    let cgroup = TestCgroup::new("limits");
    let filter = ConnectFilter::attach(&cgroup.path, &stream, 0).unwrap();
    let too_many = vec![tcp_rule(1, "10.0.0.0/8", 80, RuleAction::Block); 257];
    let error = filter.set_rules(&too_many).unwrap_err();
    assert_eq!(error.kind(), palisade_enforce::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("at most 256"), "{error}");
    let killer = ExecKiller::load().unwrap();
    let error = killer.deny(Binary::path(missing)).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/palisade/binary"),
        "{error}"
    );
}

#[test]
fn firewall_rules_compiled_for_a_workload_are_enforced_on_its_cgroup() {
    if !palisade_testdata::capability("root (eBPF, cgroup2)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("workload");
    let guarded_port = listener("127.0.0.1:0");
    let other_port = listener("127.0.0.1:0");
    let state = |action: &str| {
        palisade_firewall::State::from_yaml(&format!(
            r#"
kind: Pod
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
status: {{podIP: 10.99.0.1}}
---
kind: NetworkObject
metadata: {{name: client}}
spec: {{namespace: shop, labels: {{matchLabels: {{app: client}}}}}}
---
kind: NetworkObject
metadata: {{name: admin-endpoint}}
spec: {{cidrs: [127.0.0.1/32]}}
---
kind: FirewallRule
metadata: {{name: client-to-admin}}
spec: {{source: client, destination: admin-endpoint, ports: [{{port: {guarded_port}}}], protocol: TCP, action: {action}}}
---
kind: FirewallRule
metadata: {{name: admin-to-client}}
spec: {{source: admin-endpoint, destination: client, action: block}}
"#
        ))
        .unwrap()
    };
    let block_state = state("block");
    let client = block_state.pod_id("shop", "client").unwrap();
    let rules = workload_rules(&block_state, client, DefenseMode::Block);
    let rule_id = rules.egress[0].id;
    let stream = ConnectReports::new().unwrap();
    let firewall =
        WorkloadFirewall::Cgroup(ConnectFilter::attach(&cgroup.path, &stream, 7).unwrap());
    let not_enforced = firewall.apply(&rules).unwrap();
    // The ingress rule is reported, not silently dropped.
    assert_eq!(not_enforced.len(), 1, "{not_enforced:?}");
    assert!(
        not_enforced[0].contains("incoming connections"),
        "{not_enforced:?}"
    );

    let (connected, stderr) = bash_connect(Some(&cgroup.path), "127.0.0.1", guarded_port);
    assert!(
        !connected && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    assert!(bash_connect(Some(&cgroup.path), "127.0.0.1", other_port).0);
    assert_eq!(firewall.hits(rule_id).unwrap(), 1);

    // Alert mode: passes, and the attempts count (kept across the edit) rises.
    firewall
        .apply(&workload_rules(&block_state, client, DefenseMode::Alert))
        .unwrap();
    assert!(bash_connect(Some(&cgroup.path), "127.0.0.1", guarded_port).0);
    assert_eq!(firewall.hits(rule_id).unwrap(), 2);

    // An edit of the rule to allow: passes; the rule's id stays the same.
    let allow_state = state("allow");
    firewall
        .apply(&workload_rules(&allow_state, client, DefenseMode::Block))
        .unwrap();
    assert!(bash_connect(Some(&cgroup.path), "127.0.0.1", guarded_port).0);
    assert_eq!(
        firewall.hits(rule_id).unwrap(),
        2,
        "allow matches are not counted"
    );
}

/// Refused connects made on `threads` threads, each in a network namespace of its own (so
/// that nothing could leave the machine were one let through), from inside `cgroup`: thread
/// `thread` connects `per_thread` times to `destination(thread, n)`. Returns how many were
/// refused with `EPERM`; `during` runs on this thread meanwhile, until the connects are done.
fn refused_connects_in_netns(
    cgroup: &Path,
    threads: u64,
    per_thread: u64,
    destination: fn(u64, u64) -> std::net::SocketAddr,
    mut during: impl FnMut(),
) -> u64 {
    palisade_testdata::in_cgroup(&cgroup2_root().unwrap(), cgroup, || {
        let done = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|thread| {
                    let done = &done;
                    scope.spawn(move || {
                        // SAFETY: unshare only changes this thread's network namespace.
                        let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
                        assert_eq!(unshared, 0, "{}", std::io::Error::last_os_error());
                        let refused = (0..per_thread)
                            .filter(|&n| {
                                std::net::TcpStream::connect(destination(thread, n)).is_err_and(
                                    |error| error.kind() == std::io::ErrorKind::PermissionDenied,
                                )
                            })
                            .count() as u64;
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        refused
                    })
                })
                .collect();
            while done.load(std::sync::atomic::Ordering::SeqCst) < threads {
                during();
            }
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap())
                .sum()
        })
    })
}

/// Takes the counts of `stream`'s last epoch and says they are delivered (the agent does so
/// once its outbox holds them), so that the next take switches epochs again; none when the
/// take found programs still counting into it.
fn take_delivered(stream: &ConnectReports) -> Vec<ConnectCount> {
    take_delivered_with_kept(stream).0
}

/// [`take_delivered`], with how many of the attempts were reported one by one and kept.
fn take_delivered_with_kept(stream: &ConnectReports) -> (Vec<ConnectCount>, u64) {
    let Some(taken) = stream.take_counted().unwrap() else {
        return (Vec::new(), 0);
    };
    assert!(stream.delivered(taken.epoch).unwrap().deleted());
    (taken.counts, taken.kept)
}

/// What a stream accounts for: attempts reported one by one and kept (the counters had no
/// room for their match), attempts taken in all. Its reports are taken too (announcements).
fn accounted(stream: &ConnectReports, kept: &mut u64, taken: &mut u64) {
    stream.take().unwrap();
    let (counts, kept_now) = take_delivered_with_kept(stream);
    *kept += kept_now;
    *taken += counts.iter().map(|count| count.attempts).sum::<u64>();
}

/// A flood of 100,000 identical refused connects (two threads, each in a network namespace
/// of its own, one destination) into a one-page ring (56 reports, 224 queued): the programs
/// count every connect (and report a match's first), so every connect is accounted for,
/// exactly, by the counts alone, and none is lost, whether nobody takes the counts until the end or a taker
/// switches generations every millisecond while the connects are counted (the race between
/// reading a count and resetting it). Before the programs counted, this lost all but 280.
#[test]
fn a_flood_of_identical_connects_is_counted_exactly_and_loses_nothing() {
    if !palisade_testdata::capability("root (eBPF, cgroup2, network namespaces)", is_root()) {
        return;
    }
    let one_page = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    for take_during_flood in [false, true] {
        let cgroup = TestCgroup::new("identical-flood");
        let stream = ConnectReports::with_ring(one_page).unwrap();
        let filter = ConnectFilter::attach(&cgroup.path, &stream, 3).unwrap();
        filter
            .set_rules(&[tcp_rule(5, "10.66.0.1/32", 80, RuleAction::Block)])
            .unwrap();
        let (mut reports, mut counted) = (0, 0);
        let threads = 2;
        let attempts = 100_000;
        let refused = refused_connects_in_netns(
            &cgroup.path,
            threads,
            attempts / threads,
            |_, _| "10.66.0.1:80".parse().unwrap(),
            || {
                if take_during_flood {
                    accounted(&stream, &mut reports, &mut counted);
                }
                std::thread::sleep(Duration::from_millis(1));
            },
        );
        assert_eq!(refused, attempts);
        assert_eq!(filter.hits(5).unwrap(), attempts);
        accounted(&stream, &mut reports, &mut counted);
        println!(
            "taking during the flood: {take_during_flood}: {reports} reported, {counted} counted"
        );
        assert_eq!(
            stream.lost().unwrap(),
            0,
            "taking during the flood: {take_during_flood}"
        );
        assert_eq!(
            counted, attempts,
            "taking during the flood: {take_during_flood}: {reports} kept, {counted} taken"
        );
        assert_eq!(reports, 0, "every attempt is in the counters");
    }
}

/// A flood of refused connects to 2,000 distinct destinations (each a match of its own) into
/// a one-page ring, with nobody taking: more matches than the counters (56) and the ring with
/// its reader's queue (56 + 224) hold. Every connect is refused and counted on the rule, and
/// each is reported, counted or counted as lost, none silently dropped; once taken, the
/// stream reports and counts again.
#[test]
fn a_flood_of_distinct_connects_beyond_capacity_counts_every_loss() {
    if !palisade_testdata::capability("root (eBPF, cgroup2, network namespaces)", is_root()) {
        return;
    }
    let ring = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    let cgroup = TestCgroup::new("distinct-flood");
    let stream = ConnectReports::with_ring(ring).unwrap();
    let filter = ConnectFilter::attach(&cgroup.path, &stream, 3).unwrap();
    filter
        .set_rules(&[tcp_rule(5, "10.67.0.0/16", 80, RuleAction::Block)])
        .unwrap();
    let destination = |_, n: u64| {
        std::net::SocketAddr::from(([10, 67, (n / 250) as u8, (n % 250) as u8 + 1], 80))
    };
    let attempts = 2_000;
    let refused = refused_connects_in_netns(&cgroup.path, 1, attempts, destination, || {
        std::thread::sleep(Duration::from_millis(1))
    });
    assert_eq!(refused, attempts);
    assert_eq!(filter.hits(5).unwrap(), attempts);
    let reports = stream.take().unwrap();
    let (counted, kept) = take_delivered_with_kept(&stream);
    let lost = stream.lost().unwrap();
    let bound = u64::from(ring.capacity()) + ring.queue_capacity() as u64;
    assert!(reports.len() as u64 <= bound, "{}", reports.len());
    assert!(
        counted.len() as u64 <= u64::from(ring.capacity()) + kept,
        "{}",
        counted.len()
    );
    let counted: u64 = counted.iter().map(|count| count.attempts).sum();
    assert!(lost > 0);
    assert!(kept > 0, "the counters had no room for some matches");
    assert_eq!(
        counted + lost,
        attempts,
        "{counted} taken ({kept} of them reported one by one and kept), {lost} lost"
    );
    assert!(reports.iter().all(|report| {
        report.matched.filter_tag == 3
            && report.matched.rule_id == 5
            && report.matched.action == RuleAction::Block
    }));
    // Taken, the stream reports and counts again, and loses no more.
    let again = refused_connects_in_netns(&cgroup.path, 1, 3, destination, || {
        std::thread::sleep(Duration::from_millis(1))
    });
    assert_eq!(again, 3);
    assert_eq!(stream.take().unwrap().len(), 3);
    let counted: u64 = take_delivered(&stream)
        .iter()
        .map(|count| count.attempts)
        .sum();
    assert_eq!(counted, 3);
    assert_eq!(stream.lost().unwrap(), lost);
}

/// How many distinct matches one take of the default-sized stream holds: 40,000 refused
/// connects to distinct destinations (each a match of its own), nobody taking meanwhile (as
/// within one 200 ms tick, or longer). The counters hold exactly their capacity (14,563, the
/// ring's report count) whatever the reader does: those attempts are never lost. The rest
/// are reported one by one into the ring and the reader's queue (58,252 more, less the
/// counted matches' announcements), or counted as lost when those are full; every attempt is
/// accounted for, exactly. The printed split is the measurement in docs/benchmarks.md.
#[test]
fn a_take_of_the_default_stream_holds_its_capacity_of_distinct_matches_and_accounts_for_all() {
    if !palisade_testdata::capability("root (eBPF, cgroup2, network namespaces)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("default-distinct");
    let stream = ConnectReports::new().unwrap();
    let filter = ConnectFilter::attach(&cgroup.path, &stream, 3).unwrap();
    filter
        .set_rules(&[tcp_rule(5, "10.70.0.0/16", 80, RuleAction::Block)])
        .unwrap();
    let destination =
        |_, n: u64| std::net::SocketAddr::from(([10, 70, (n >> 8) as u8, n as u8], 80));
    let attempts = 40_000;
    let started = std::time::Instant::now();
    let refused = refused_connects_in_netns(&cgroup.path, 1, attempts, destination, || {
        std::thread::sleep(Duration::from_millis(1))
    });
    let elapsed = started.elapsed();
    assert_eq!(refused, attempts);
    let reports = stream.take().unwrap();
    let (counts, kept) = take_delivered_with_kept(&stream);
    let lost = stream.lost().unwrap();
    let capacity = ConnectReportsRing::DEFAULT.capacity() as u64;
    assert!(counts.iter().all(|count| count.attempts == 1));
    assert_eq!(
        counts.len() as u64 - kept,
        capacity,
        "the counters hold their capacity"
    );
    println!(
        "{attempts} distinct refused connects in {elapsed:?}: {capacity} counted, {kept} reported \
         one by one and kept, {lost} lost ({} reports taken)",
        reports.len()
    );
    assert_eq!(counts.len() as u64 + lost, attempts);
}

/// A datagram sent to an address without a connect (UDP `sendto`) is judged like a connect:
/// from a thread of the cgroup in a network namespace of its own, sends to a blocked address
/// fail with `EPERM`, sends an alert rule matches pass the programs (and fail later, with no
/// route there), and each is counted on its rule and in the stream, the repeats of a match
/// as counts.
#[test]
fn a_datagram_sent_without_a_connect_is_judged_like_a_connect() {
    if !palisade_testdata::capability("root (eBPF, cgroup2, network namespaces)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("sendmsg");
    let stream = ConnectReports::new().unwrap();
    let filter = ConnectFilter::attach(&cgroup.path, &stream, 9).unwrap();
    let udp_rule = |id, remote: &str, action| NetRule {
        id,
        remote: remote.parse().unwrap(),
        ports: (53, 53),
        protocol: Some(Protocol::Udp),
        action,
    };
    filter
        .set_rules(&[
            udp_rule(1, "10.68.0.1/32", RuleAction::Block),
            udp_rule(2, "10.68.0.2/32", RuleAction::Alert),
        ])
        .unwrap();
    let sends = 50;
    let errors = palisade_testdata::in_cgroup(&cgroup2_root().unwrap(), &cgroup.path, || {
        std::thread::spawn(move || {
            // SAFETY: unshare only changes this thread's network namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            let mut errors = Vec::new();
            for _ in 0..sends {
                for target in ["10.68.0.1:53", "10.68.0.2:53"] {
                    errors.push(socket.send_to(b"q", target).unwrap_err().kind());
                }
            }
            errors
        })
        .join()
        .unwrap()
    });
    let refused = errors
        .iter()
        .filter(|kind| **kind == std::io::ErrorKind::PermissionDenied)
        .count();
    assert_eq!(refused, sends, "{errors:?}");
    assert_eq!((filter.hits(1).unwrap(), filter.hits(2).unwrap()), (50, 50));
    let reports = stream.take().unwrap();
    assert_eq!(reports.len(), 2, "one report per match: {reports:?}");
    assert!(reports.iter().all(|report| {
        report.matched.protocol == Some(Protocol::Udp) && report.matched.filter_tag == 9
    }));
    let counted: u64 = take_delivered(&stream)
        .iter()
        .map(|count| count.attempts)
        .sum();
    assert_eq!(counted, 2 * 50);
    assert_eq!(stream.lost().unwrap(), 0);
}
