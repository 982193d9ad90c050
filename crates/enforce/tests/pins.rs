//! Pinned connect enforcement, as root: a process that pins its filter and dies without
//! cleaning up (SIGKILL) leaves the cgroup's connects refused; the next process adopts the
//! filter and takes every attempt counted meanwhile, exactly; a clean drop, or `reset` after
//! a crash, leaves no pin and no program behind.
//!
//! The dying process is this test binary itself, run again with the test's name and the
//! environment variable [`CHILD`] set: it pins and enforces, connects, and kills itself —
//! right away, or after it took the counts ([`CrashPoint`]).

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use palisade_enforce::{
    ConnectCount, ConnectReports, ConnectReportsRing, Delivered, Delivery, FirewallPins, NetRule,
    WorkloadIdentity, cgroup2_root, reset,
};
use palisade_firewall::{Protocol, RuleAction};

/// Set in the child run: `<pin root>,<cgroup>,<port>,<crash point>`.
const CHILD: &str = "PALISADE_PINS_TEST_CHILD";

/// Where the child kills itself, after its refused connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    /// At once: nobody took the counts.
    Enforced,
    /// After it took the counts, before it delivered them (as an agent killed between a
    /// tick's take and its outbox write).
    Taken,
    /// After it took the counts and wrote the take's epoch to a file (as
    /// an agent's outbox holds it: see [`epoch_file`]), before it said they were delivered.
    Delivered,
    /// With a one-page ring (counters for 56 matches), after [`KEPT_CONNECTS`] refused
    /// connects to as many ports, whose reports it read off the ring (as an agent's reader
    /// does before the tick that alerts them); nobody took the counts.
    ReportsRead,
    /// Named `outbox-a` ([`ConnectReports::deliver_as`]), after it took and delivered the
    /// counts (epoch E), then took the [`LATER_CONNECTS`] made since (E + 1) without
    /// delivering them.
    DeliveredAs,
    /// With a one-page ring, blocking [`KEPT_CONNECTS`] ports, after refused connects to as
    /// many of them as its counters hold matches (56), whose reports it read off the ring:
    /// the counters are full, the ring is empty, nobody took the counts.
    CountersFull,
}

/// Refused connects the child makes after its delivery at [`CrashPoint::DeliveredAs`].
const LATER_CONNECTS: u64 = 2;

/// Refused connects to distinct ports the child makes at [`CrashPoint::ReportsRead`]: more
/// matches than a one-page ring's counters hold.
const KEPT_CONNECTS: u16 = 80;

impl CrashPoint {
    fn name(self) -> &'static str {
        match self {
            CrashPoint::Enforced => "enforced",
            CrashPoint::Taken => "taken",
            CrashPoint::Delivered => "delivered",
            CrashPoint::ReportsRead => "reports-read",
            CrashPoint::DeliveredAs => "delivered-as",
            CrashPoint::CountersFull => "counters-full",
        }
    }

    fn from_name(name: &str) -> CrashPoint {
        [
            CrashPoint::Enforced,
            CrashPoint::Taken,
            CrashPoint::Delivered,
            CrashPoint::ReportsRead,
            CrashPoint::DeliveredAs,
            CrashPoint::CountersFull,
        ]
        .into_iter()
        .find(|point| point.name() == name)
        .unwrap()
    }
}

/// Where the child of `root` writes the epoch it delivered (outside the bpf file system,
/// which holds no plain files).
fn epoch_file(root: &Path) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{}.epoch",
        root.file_name().unwrap().to_string_lossy()
    ))
}

/// Takes the counts of `stream`'s last epoch and says they are delivered; none when there
/// was nothing to take.
fn take_delivered(stream: &ConnectReports) -> Vec<ConnectCount> {
    let Some(taken) = stream.take_counted().unwrap() else {
        return Vec::new();
    };
    assert!(stream.delivered(taken.epoch).unwrap().deleted());
    taken.counts
}
/// Refused connects the child makes before it dies.
const CHILD_CONNECTS: u64 = 3;
const TAG: u32 = 7;
const RULE_ID: u32 = 5;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A cgroup2 directory of the test's own, removed on drop (its processes moved out first).
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let path = cgroup2_root()
            .unwrap()
            .join(format!("palisade-pins-{name}-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        TestCgroup(path)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

/// A pin root of the test's own in the bpf file system, removed on drop whatever is left.
struct PinRoot(PathBuf);

impl PinRoot {
    fn new(name: &str) -> PinRoot {
        PinRoot(PathBuf::from(format!(
            "/sys/fs/bpf/palisade-test-{name}-{}",
            std::process::id()
        )))
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        let _ = reset(&self.0);
    }
}

/// Connects with bash's /dev/tcp from a shell that first moves itself into `cgroup`;
/// returns whether it connected.
fn connects_from(cgroup: &Path, port: u16) -> bool {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "echo 0 > {}/cgroup.procs && exec 3<>/dev/tcp/127.0.0.1/{port}",
            cgroup.display()
        ))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A listener on 127.0.0.1 that accepts in the background; its port.
fn listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut accepted = Vec::new();
        for stream in listener.incoming() {
            accepted.push(stream);
        }
    });
    port
}

fn block(port: u16) -> NetRule {
    NetRule {
        id: RULE_ID,
        remote: "127.0.0.1/32".parse().unwrap(),
        ports: (port, port),
        protocol: Some(Protocol::Tcp),
        action: RuleAction::Block,
    }
}

/// Runs this test again as a child that pins a filter blocking `port` on `cgroup` under
/// `root`, makes [`CHILD_CONNECTS`] refused connects and kills itself at `point`; waits for
/// it.
fn crash_after_enforcing(test: &str, root: &Path, cgroup: &Path, port: u16, point: CrashPoint) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(
            CHILD,
            format!(
                "{},{},{port},{}",
                root.display(),
                cgroup.display(),
                point.name()
            ),
        )
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

/// The child's part (see [`crash_after_enforcing`]), when this run is the child.
fn run_child_if_asked() {
    let Ok(args) = std::env::var(CHILD) else {
        return;
    };
    let mut fields = args.split(',');
    let (root, cgroup, port, point) = (
        PathBuf::from(fields.next().unwrap()),
        PathBuf::from(fields.next().unwrap()),
        fields.next().unwrap().parse::<u16>().unwrap(),
        CrashPoint::from_name(fields.next().unwrap()),
    );
    let pins = FirewallPins::open(&root).unwrap();
    let ring = if matches!(point, CrashPoint::ReportsRead | CrashPoint::CountersFull) {
        ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap()
    } else {
        ConnectReportsRing::DEFAULT
    };
    let adopted = pins.adopt(ring).unwrap();
    let identity = WorkloadIdentity {
        name: "shop/web".to_owned(),
        cgroup: Some(cgroup.clone()),
        netns: None,
        netns_inode: 0,
    };
    let pin = pins.record_workload(TAG, identity).unwrap();
    let filter = pin.attach_filter(&cgroup, &adopted.reports).unwrap();
    if matches!(point, CrashPoint::ReportsRead | CrashPoint::CountersFull) {
        let mut ports = block(port);
        ports.ports = (port, port + KEPT_CONNECTS - 1);
        filter.set_rules(&[ports]).unwrap();
        let connects = if point == CrashPoint::ReportsRead {
            KEPT_CONNECTS
        } else {
            ring.capacity() as u16
        };
        for offset in 0..connects {
            assert!(!connects_from(&cgroup, port + offset));
        }
        let reports = adopted.reports.take().unwrap();
        assert_eq!(reports.len(), usize::from(connects), "one per match");
        let standing_for_attempts = reports.iter().filter(|report| !report.counted).count();
        assert_eq!(
            standing_for_attempts,
            usize::from(connects) - ring.capacity() as usize,
            "the counters hold {} matches",
            ring.capacity()
        );
    } else {
        filter.set_rules(&[block(port)]).unwrap();
        for _ in 0..CHILD_CONNECTS {
            assert!(!connects_from(&cgroup, port));
        }
    }
    if point == CrashPoint::Taken || point == CrashPoint::Delivered {
        let taken = adopted.reports.take_counted().unwrap().unwrap();
        assert_eq!(taken.attempts(), CHILD_CONNECTS);
        if point == CrashPoint::Delivered {
            std::fs::write(epoch_file(&root), taken.epoch.to_string()).unwrap();
        }
    }
    if point == CrashPoint::DeliveredAs {
        adopted.reports.deliver_as("outbox-a").unwrap();
        let taken = adopted.reports.take_counted().unwrap().unwrap();
        assert_eq!(taken.attempts(), CHILD_CONNECTS);
        assert!(adopted.reports.delivered(taken.epoch).unwrap().deleted());
        std::fs::write(epoch_file(&root), taken.epoch.to_string()).unwrap();
        for _ in 0..LATER_CONNECTS {
            assert!(!connects_from(&cgroup, port));
        }
        let later = adopted.reports.take_counted().unwrap().unwrap();
        assert_eq!(later.attempts(), LATER_CONNECTS);
    }
    // As `kill -9` would: no destructor runs.
    // SAFETY: kill on this process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("killed");
}

/// A filter pinned by a process killed with SIGKILL stays in force: connects from its cgroup
/// are still refused (and counted), others pass. The next process adopts it: the workload's
/// record and tag, its rules, its hits, and the attempts its programs counted before and
/// after the death, exactly, which nobody had taken; rules change on the adopted filter
/// without a gap. Dropping everything removes every pin and detaches the programs.
#[test]
fn a_pinned_filter_outlives_its_killed_process_and_is_adopted_with_its_counts() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("adopt");
    let root = PinRoot::new("adopt");
    let port = listener();
    let open_port = listener();
    crash_after_enforcing(
        "a_pinned_filter_outlives_its_killed_process_and_is_adopted_with_its_counts",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::Enforced,
    );
    // Dead, and still refused; another port passes.
    let while_dead = 4;
    for _ in 0..while_dead {
        assert!(!connects_from(&cgroup.0, port), "fails closed");
    }
    assert!(connects_from(&cgroup.0, open_port));
    assert!(palisade_testdata::cgroup_programs(&cgroup.0).contains("connect4"));

    let pins = FirewallPins::open(&root.0).unwrap();
    let adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    assert!(adopted.reports_adopted);
    assert!(adopted.notes.is_empty(), "{:?}", adopted.notes);
    assert_eq!(adopted.workloads.len(), 1);
    let workload = &adopted.workloads[0];
    assert_eq!(workload.pin.tag(), TAG);
    assert_eq!(workload.pin.identity().name, "shop/web");
    assert_eq!(workload.pin.identity().cgroup.as_deref(), Some(&*cgroup.0));
    let filter = workload.filter.as_ref().expect("the filter is adopted");
    assert_eq!(filter.tag(), TAG);
    let attempts = CHILD_CONNECTS + while_dead;
    assert_eq!(filter.hits(RULE_ID).unwrap(), attempts);
    let counted = take_delivered(&adopted.reports);
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].attempts, attempts, "{counted:?}");
    assert_eq!(
        (counted[0].matched.filter_tag, counted[0].matched.rule_id),
        (TAG, RULE_ID)
    );
    assert_eq!(adopted.reports.lost().unwrap(), 0);

    // The adopted filter's rules change live; the programs are this process's now.
    filter.set_rules(&[]).unwrap();
    assert!(connects_from(&cgroup.0, port));
    filter.set_rules(&[block(port)]).unwrap();
    assert!(!connects_from(&cgroup.0, port));
    let counted = take_delivered(&adopted.reports);
    assert_eq!(counted.iter().map(|count| count.attempts).sum::<u64>(), 1);

    drop(adopted);
    drop(pins);
    assert!(!root.0.exists(), "a clean stop leaves no pin");
    assert!(connects_from(&cgroup.0, port), "and no program");
    assert!(!palisade_testdata::cgroup_programs(&cgroup.0).contains("connect4"));
}

/// `reset` removes what a killed process left: its pins and programs (the cgroup's connects
/// pass again), and nothing is left in the pin root. A second reset finds nothing; a reset
/// of a root a live process holds is refused.
#[test]
fn reset_removes_what_a_killed_process_pinned() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("reset");
    let root = PinRoot::new("reset");
    let port = listener();
    crash_after_enforcing(
        "reset_removes_what_a_killed_process_pinned",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::Enforced,
    );
    assert!(!connects_from(&cgroup.0, port), "fails closed");

    let held = FirewallPins::open(&root.0).unwrap();
    let error = reset(&root.0).unwrap_err();
    let reason = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        reason
            .as_deref()
            .is_some_and(|reason| reason.contains("a running agent")),
        "{error}: {reason:?}"
    );
    drop(held);

    let summary = reset(&root.0).unwrap();
    assert_eq!(summary.workloads.len(), 1, "{summary:?}");
    assert_eq!(summary.workloads[0].name, "shop/web");
    assert!(summary.tables.is_empty(), "no table was recorded");
    assert!(summary.pins >= 8, "{summary:?}");
    assert!(!root.0.exists());
    // The kernel detaches a link whose last pin is gone a moment later (deferred work).
    let started = std::time::Instant::now();
    while !connects_from(&cgroup.0, port) {
        assert!(started.elapsed() < Duration::from_secs(5), "still refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!palisade_testdata::cgroup_programs(&cgroup.0).contains("connect4"));
    let again = reset(&root.0).unwrap();
    assert!(again.workloads.is_empty() && again.pins == 0, "{again:?}");
}

/// A process killed after it took the counts and before it delivered them loses none: the
/// counts stay in the kernel, and the next process takes the same epoch (same id, same
/// attempts) before the attempts made since. Killed after its outbox held the take's epoch
/// and before it said so, it delivers none twice: the next process, told the epoch is
/// delivered, deletes its counts instead of taking them; a stale epoch changes nothing.
#[test]
fn a_take_killed_before_its_delivery_is_taken_again_and_a_delivered_one_is_not() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    for point in [CrashPoint::Taken, CrashPoint::Delivered] {
        let cgroup = TestCgroup::new(point.name());
        let root = PinRoot::new(point.name());
        let port = listener();
        crash_after_enforcing(
            "a_take_killed_before_its_delivery_is_taken_again_and_a_delivered_one_is_not",
            &root.0,
            &cgroup.0,
            port,
            point,
        );
        let while_dead = 2;
        for _ in 0..while_dead {
            assert!(!connects_from(&cgroup.0, port), "fails closed");
        }
        let pins = FirewallPins::open(&root.0).unwrap();
        let adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
        assert!(adopted.reports_adopted);
        let stream = &adopted.reports;
        let mut takes = Vec::new();
        if point == CrashPoint::Delivered {
            let epoch: u64 = std::fs::read_to_string(epoch_file(&root.0))
                .unwrap()
                .parse()
                .unwrap();
            std::fs::remove_file(epoch_file(&root.0)).unwrap();
            assert!(
                !stream.delivered(epoch + 2).unwrap().deleted(),
                "a stale epoch"
            );
            assert!(stream.delivered(epoch).unwrap().deleted(), "{point:?}");
            takes.push((epoch, 0));
        }
        while let Some(taken) = stream.take_counted().unwrap() {
            assert!(
                stream.take_counted().unwrap().is_none(),
                "nothing more is taken before the take is delivered"
            );
            takes.push((taken.epoch, taken.attempts()));
            assert!(stream.delivered(taken.epoch).unwrap().deleted());
        }
        let attempts: Vec<u64> = takes.iter().map(|(_, attempts)| *attempts).collect();
        // The child's take, again (or delivered already: none), then the attempts made
        // while it was dead, then nothing.
        let child_take = if point == CrashPoint::Taken {
            CHILD_CONNECTS
        } else {
            0
        };
        assert_eq!(attempts, [child_take, while_dead], "{point:?}");
        assert!(
            takes.windows(2).all(|pair| pair[1].0 == pair[0].0 + 1),
            "one epoch after the other: {takes:?}"
        );
        assert_eq!(stream.lost().unwrap(), 0);
        drop(adopted);
        drop(pins);
        assert!(!root.0.exists(), "a clean stop leaves no pin");
    }
}

/// Pins of a build of another layout (`layout-0`: maps this build cannot take over) are not
/// adopted: their report stream is removed, its untaken attempts counted as lost first (the
/// child's 3; they went unnoticed before), and their workload is handed over without a
/// filter while its programs stay attached and refusing (a connect then is counted lost).
/// This build's programs, given their rules first, then take the old programs' place in
/// their links: one set of programs at every moment, refusing at every step, and each
/// connect after the switch counted once, by the new stream alone (when new programs were
/// attached beside the old ones, each connect while both had rules was also counted lost).
/// A clean stop then leaves no pin, old or new.
#[test]
fn another_layouts_pins_are_replaced_with_no_gap_in_refusal() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("layout");
    let root = PinRoot::new("layout");
    let port = listener();
    crash_after_enforcing(
        "another_layouts_pins_are_replaced_with_no_gap_in_refusal",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::Enforced,
    );
    // As a build of layout 0 would have left it.
    std::fs::rename(root.0.join("layout-1"), root.0.join("layout-0")).unwrap();

    let pins = FirewallPins::open(&root.0).unwrap();
    let mut adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    assert!(
        !adopted.reports_adopted,
        "another layout's stream is not read"
    );
    assert!(
        adopted.notes.iter().any(|note| note.contains("layout-0")
            && note.contains("another layout")
            && note.contains("3 attempts it counted and nobody took are lost")),
        "{:?}",
        adopted.notes
    );
    assert_eq!(
        adopted.lost_attempts, CHILD_CONNECTS,
        "the untaken counts are counted before the stream goes"
    );
    assert_eq!(adopted.workloads.len(), 1);
    let old = adopted.workloads.remove(0);
    let mut removed = adopted.removed_streams.remove(0);
    assert!(old.filter.is_none(), "not taken over");
    assert_eq!(old.pin.identity().name, "shop/web");
    assert!(
        !connects_from(&cgroup.0, port),
        "the old programs refuse on"
    );
    assert_eq!(removed.newly_lost(), 1, "and count into the removed stream");

    let pin = pins
        .record_workload(TAG + 1, old.pin.identity().clone())
        .unwrap();
    let filter = pin
        .take_over_filter(&old.pin, &cgroup.0, &adopted.reports, &[block(port)])
        .unwrap();
    let programs = palisade_testdata::cgroup_programs(&cgroup.0);
    assert_eq!(programs.matches("connect4").count(), 1, "{programs}");
    for _ in 0..2 {
        assert!(!connects_from(&cgroup.0, port), "the new programs refuse");
    }
    drop(old);
    assert!(
        !root
            .0
            .join("layout-0/workloads")
            .join(TAG.to_string())
            .exists()
    );
    assert!(
        !connects_from(&cgroup.0, port),
        "the links stay, pinned with the new record"
    );
    let programs = palisade_testdata::cgroup_programs(&cgroup.0);
    assert_eq!(programs.matches("connect4").count(), 1, "{programs}");
    assert_eq!(
        removed.newly_lost(),
        0,
        "the old programs counted nothing after the switch"
    );
    let counted = take_delivered(&adopted.reports);
    assert_eq!(
        counted.iter().map(|count| count.attempts).sum::<u64>(),
        3,
        "the new programs count each refusal after the switch once: {counted:?}"
    );
    assert!(
        counted
            .iter()
            .all(|count| count.matched.filter_tag == TAG + 1)
    );

    drop(filter);
    drop(pin);
    drop(removed);
    drop(adopted);
    drop(pins);
    assert!(!root.0.exists(), "a clean stop leaves no pin, old or new");
    let started = std::time::Instant::now();
    while !connects_from(&cgroup.0, port) {
        assert!(started.elapsed() < Duration::from_secs(5), "still refused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Another layout's report ring is read until its programs go: with its counters full (a
/// dead process's 56 matches, untaken), each refused connect of a new match is a report of
/// its own in the ring, which nobody read; at adoption those are counted lost with the
/// counts (66, not the counters' 56 alone), and what the old programs count after that —
/// reports in the ring and counts of matches in the counters alike — is counted lost at the
/// next read, exactly once. (When the ring was not read, the 10 and the 7 were neither
/// alerted nor counted lost.)
#[test]
fn another_layouts_ring_is_read_until_its_programs_go() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("oldring");
    let root = PinRoot::new("oldring");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    crash_after_enforcing(
        "another_layouts_ring_is_read_until_its_programs_go",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::CountersFull,
    );
    let counted = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES)
        .unwrap()
        .capacity() as u16;
    let unread = 10;
    refused_connects_from(&cgroup.0, port + counted, unread);
    std::fs::rename(root.0.join("layout-1"), root.0.join("layout-0")).unwrap();

    let pins = FirewallPins::open(&root.0).unwrap();
    let mut adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    assert!(!adopted.reports_adopted);
    assert_eq!(
        adopted.lost_attempts,
        u64::from(counted + unread),
        "the counts, and the reports in the ring that stood for an attempt"
    );
    assert_eq!(adopted.removed_streams.len(), 1);
    let removed = &mut adopted.removed_streams[0];
    assert_eq!(removed.newly_lost(), 0);
    let later = 7;
    refused_connects_from(&cgroup.0, port + counted + unread, later);
    refused_connects_from(&cgroup.0, port, 2);
    assert_eq!(
        removed.newly_lost(),
        u64::from(later) + 2,
        "reports of their own in the ring, and counts of matches in the counters"
    );
    assert_eq!(removed.newly_lost(), 0, "each once");

    drop(adopted);
    drop(pins);
    assert!(!root.0.exists(), "a clean stop leaves no pin, old or new");
}

/// A report another layout's dead reader kept (it stood for an attempt) and did not advance
/// past is read again off its ring at adoption, and found kept: counted lost once, with the
/// kept reports. The dead reader's state is made by moving the ring's consumer position back
/// over the last 56 of the 80 records it read, the 24 kept among them. (Without the look-up
/// in the kept reports, 104 attempts were counted lost.)
#[test]
fn another_layouts_kept_report_read_again_is_counted_lost_once() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("oldkept");
    let root = PinRoot::new("oldkept");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    crash_after_enforcing(
        "another_layouts_kept_report_read_again_is_counted_lost_once",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::ReportsRead,
    );
    let capacity = u64::from(
        ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES)
            .unwrap()
            .capacity(),
    );
    {
        let consumer = ConsumerPage::open(&root.0.join("layout-1/connect/connect_reports"));
        consumer.set_position(consumer.position() - capacity * 72);
    }
    std::fs::rename(root.0.join("layout-1"), root.0.join("layout-0")).unwrap();

    let pins = FirewallPins::open(&root.0).unwrap();
    let adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    assert_eq!(
        adopted.lost_attempts,
        u64::from(KEPT_CONNECTS),
        "each attempt once: {capacity} counted, the rest kept"
    );
    drop(adopted);
    drop(pins);
    assert!(!root.0.exists());
}

/// Reports that stand for an attempt (their match found the counters full) are as durable
/// as the counts: a process killed after its reader took them off the ring, before any take,
/// loses none. The next process's takes hold every attempt, the counted ones and the ones
/// reported one by one, exactly once. (When such a report left the kernel as it was read,
/// the 24 reported one by one were lost here.)
#[test]
fn reports_read_off_the_ring_by_a_killed_process_are_taken_by_the_next() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("kept");
    let root = PinRoot::new("kept");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    crash_after_enforcing(
        "reports_read_off_the_ring_by_a_killed_process_are_taken_by_the_next",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::ReportsRead,
    );
    let pins = FirewallPins::open(&root.0).unwrap();
    let adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    assert!(adopted.reports_adopted);
    let stream = &adopted.reports;
    let ring = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    assert_eq!(stream.ring(), ring, "the pinned ring keeps its size");
    assert!(stream.take().unwrap().is_empty(), "the ring was read");
    // The dead process's last epoch (with the kept reports), then the epoch it counted into.
    let (mut ports, mut kept) = (Vec::new(), 0);
    while let Some(taken) = stream.take_counted().unwrap() {
        kept += taken.kept;
        for count in &taken.counts {
            assert_eq!(count.attempts, 1, "{taken:?}");
            ports.push(count.matched.port);
        }
        assert!(stream.delivered(taken.epoch).unwrap().deleted());
    }
    assert_eq!(
        kept,
        u64::from(KEPT_CONNECTS) - u64::from(ring.capacity()),
        "the counters had room for {} matches",
        ring.capacity()
    );
    ports.sort_unstable();
    assert_eq!(
        ports,
        (port..port + KEPT_CONNECTS).collect::<Vec<_>>(),
        "each attempt once"
    );
    assert_eq!(stream.lost().unwrap(), 0);
    drop(adopted);
    drop(pins);
    assert!(!root.0.exists(), "a clean stop leaves no pin");
}

/// The taker of a pinned stream and its last delivery are recorded with the stream: a
/// process named `outbox-a` that delivered epoch E, took E + 1 and was killed leaves that
/// record; the next process, of another name, finds it (so it knows E went into outbox-a's
/// keeping, and E + 1 is to be asked of outbox-a or taken again), names itself at once,
/// and records its own deliveries. E is stale for it (deleted already), E + 1 is taken again
/// whole.
#[test]
fn the_taker_and_its_last_delivery_are_recorded_with_the_stream() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("taker");
    let root = PinRoot::new("taker");
    let port = listener();
    crash_after_enforcing(
        "the_taker_and_its_last_delivery_are_recorded_with_the_stream",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::DeliveredAs,
    );
    let delivered: u64 = std::fs::read_to_string(epoch_file(&root.0))
        .unwrap()
        .parse()
        .unwrap();
    std::fs::remove_file(epoch_file(&root.0)).unwrap();
    let pins = FirewallPins::open(&root.0).unwrap();
    let adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    let stream = &adopted.reports;
    assert_eq!(
        stream.last_delivery().unwrap(),
        Some(Delivery {
            taker: "outbox-a".to_owned(),
            epoch: Some(delivered),
        })
    );
    stream.deliver_as("outbox-b").unwrap();
    assert_eq!(
        stream.last_delivery().unwrap(),
        Some(Delivery {
            taker: "outbox-b".to_owned(),
            epoch: Some(delivered),
        }),
        "named before it takes anything, the stream's last delivered epoch kept"
    );
    assert!(
        !stream.delivered(delivered).unwrap().deleted(),
        "deleted already"
    );
    let taken = stream.take_counted().unwrap().unwrap();
    assert_eq!(
        (taken.epoch, taken.attempts()),
        (delivered + 1, LATER_CONNECTS)
    );
    assert!(stream.delivered(taken.epoch).unwrap().deleted());
    assert_eq!(
        stream.last_delivery().unwrap(),
        Some(Delivery {
            taker: "outbox-b".to_owned(),
            epoch: Some(delivered + 1),
        })
    );
    assert!(stream.take_counted().unwrap().is_none());
    let error = stream.deliver_as("").unwrap_err().to_string();
    assert!(
        error.contains(&format!(
            "0 bytes (1 to {} allowed)",
            Delivery::MAX_TAKER_BYTES
        )),
        "{error}"
    );
    let error = stream
        .deliver_as(&"x".repeat(Delivery::MAX_TAKER_BYTES + 1))
        .unwrap_err()
        .to_string();
    assert!(error.contains("4085 bytes"), "{error}");

    // A record that cannot be written (its map frozen: the kernel refuses writes from user
    // space) does not hold the delivery up: the counts go, the call fails, and the next call
    // finds the epoch stale.
    for _ in 0..LATER_CONNECTS {
        assert!(!connects_from(&cgroup.0, port));
    }
    let record =
        libbpf_rs::MapHandle::from_pinned_path(root.0.join("layout-1/connect/last_delivery"))
            .unwrap();
    // SAFETY: freezing a map by a descriptor this process holds open.
    let frozen = unsafe { libbpf_rs::libbpf_sys::bpf_map_freeze(record.as_fd().as_raw_fd()) };
    assert_eq!(frozen, 0, "{}", std::io::Error::last_os_error());
    let taken = stream.take_counted().unwrap().unwrap();
    assert_eq!(taken.attempts(), LATER_CONNECTS);
    match stream.delivered(taken.epoch).unwrap() {
        Delivered::DeletedUnrecorded(error) => {
            let error = error.to_string();
            assert!(error.contains("recording the delivery"), "{error}");
        }
        other => panic!("deleted, then not recorded: {other:?}"),
    }
    assert!(
        !stream.delivered(taken.epoch).unwrap().deleted(),
        "delivered already"
    );
    assert_eq!(
        stream.last_delivery().unwrap().unwrap().epoch,
        Some(delivered + 1),
        "the record as it was"
    );
    assert!(
        stream.take_counted().unwrap().is_none(),
        "the counts were deleted"
    );
    drop(adopted);
    drop(pins);
    assert!(
        !root.0.exists(),
        "a clean stop leaves no pin, the record's either"
    );
}

/// The consumer position of the ring buffer pinned at `ring`, mapped writable as a reader's
/// is: what a process that dies between a record's hook and the advance past it leaves.
struct ConsumerPage {
    _map: libbpf_rs::MapHandle,
    page: *mut u64,
}

impl ConsumerPage {
    fn open(ring: &Path) -> ConsumerPage {
        use std::os::fd::{AsFd, AsRawFd};
        let map = libbpf_rs::MapHandle::from_pinned_path(ring).unwrap();
        // SAFETY: maps the ring's consumer page read-write, as libbpf's reader does; the
        // kernel checks the descriptor and the range.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        assert_ne!(
            page,
            libc::MAP_FAILED,
            "{}",
            std::io::Error::last_os_error()
        );
        ConsumerPage {
            _map: map,
            page: page.cast(),
        }
    }

    fn position(&self) -> u64 {
        // SAFETY: the page is mapped; its first word is the consumer position.
        unsafe { std::ptr::read_volatile(self.page) }
    }

    fn set_position(&self, position: u64) {
        // SAFETY: as above.
        unsafe { std::ptr::write_volatile(self.page, position) }
    }
}

impl Drop for ConsumerPage {
    fn drop(&mut self) {
        // SAFETY: unmaps the page `open` mapped.
        unsafe { libc::munmap(self.page.cast(), 4096) };
    }
}

/// Makes `count` refused connects to ports from `first` from this process, moved into
/// `cgroup` meanwhile, a millisecond apart (so that the stream's reader thread keeps its
/// one-page ring from filling up even on a busy machine).
fn refused_connects_from(cgroup: &Path, first: u16, count: u16) {
    palisade_testdata::in_cgroup(&cgroup2_root().unwrap(), cgroup, || {
        for port in first..first + count {
            let error = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied, "{port}");
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A stream with a one-page ring (counters for 56 matches) pinned in `root`, with a filter on
/// `cgroup` blocking `count` ports from `first`; the filter and the pins' holders.
fn one_page_stream(
    root: &Path,
    cgroup: &Path,
    first: u16,
    count: u16,
) -> (
    FirewallPins,
    palisade_enforce::Adopted,
    palisade_enforce::WorkloadPin,
    palisade_enforce::ConnectFilter,
) {
    let pins = FirewallPins::open(root).unwrap();
    let adopted = pins
        .adopt(ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap())
        .unwrap();
    let identity = WorkloadIdentity {
        name: "shop/web".to_owned(),
        cgroup: Some(cgroup.to_path_buf()),
        netns: None,
        netns_inode: 0,
    };
    let pin = pins.record_workload(TAG, identity).unwrap();
    let filter = pin.attach_filter(cgroup, &adopted.reports).unwrap();
    let mut rule = block(first);
    rule.ports = (first, first + count - 1);
    filter.set_rules(&[rule]).unwrap();
    (pins, adopted, pin, filter)
}

/// Keeping a report and advancing past it are one step for the takes: a reader that dies
/// after it kept reports (their match found the counters full) and before the ring's
/// consumer position moved past them leaves them in the ring to be read again, and the
/// next take reads them first (found kept: kept once), so that its delivery deletes them
/// for good. The dead reader's state is made here by moving the consumer position back
/// over the last 56 of 80 records read, the 24 kept among them, while the reader thread
/// sleeps. (When a take did not read the ring first, its delivery deleted the 24 and the
/// next read kept them again: 104 attempts taken.)
#[test]
fn a_report_kept_and_read_again_is_taken_once() {
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("reread");
    let root = PinRoot::new("reread");
    let first = 20_000 + (std::process::id() % 20_000) as u16;
    let (pins, adopted, pin, filter) = one_page_stream(&root.0, &cgroup.0, first, KEPT_CONNECTS);
    let stream = &adopted.reports;
    let consumer = ConsumerPage::open(&root.0.join("layout-1/connect/connect_reports"));
    let before = consumer.position();
    refused_connects_from(&cgroup.0, first, KEPT_CONNECTS);
    let read = stream.take().unwrap();
    assert_eq!(read.len(), usize::from(KEPT_CONNECTS));
    let capacity = u64::from(stream.ring().capacity());
    assert_eq!(
        read.iter().filter(|report| !report.counted).count() as u64,
        u64::from(KEPT_CONNECTS) - capacity
    );
    // Back over the last ring's worth of records (older ones' room in the ring was written
    // over since, as a dead reader's unread records never are), which holds the kept 24.
    // The reader thread sleeps until a record lands: it does not see this.
    let rewound = capacity * 72;
    assert!(consumer.position() - before >= rewound);
    consumer.set_position(consumer.position() - rewound);

    // Taken before anything reads the ring again (as a new process's first take may be),
    // then again after reads of the ring, until nothing is left.
    let (mut attempts, mut kept) = (0, 0);
    while let Some(taken) = stream.take_counted().unwrap() {
        attempts += taken.attempts();
        kept += taken.kept;
        assert!(stream.delivered(taken.epoch).unwrap().deleted());
        stream.take().unwrap();
    }
    assert_eq!(attempts, u64::from(KEPT_CONNECTS), "each attempt once");
    assert_eq!(kept, u64::from(KEPT_CONNECTS) - capacity);
    assert_eq!(stream.lost().unwrap(), 0);
    drop((filter, pin, adopted, pins));
    assert!(!root.0.exists());
}

/// The kept reports' bound is exact: the map holds as many as the reader queues (224 for a
/// one-page ring), although the kernel counts a hash map this large per CPU (its check
/// sums them near the limit, and the reader thread is the map's only inserter): of 290
/// refused connects to distinct ports, the counters take 56, the kept reports 224, and
/// exactly 10 are lost.
#[test]
fn the_kept_reports_hold_exactly_their_bound() {
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("bound");
    let root = PinRoot::new("bound");
    let ring = ConnectReportsRing::new(ConnectReportsRing::MIN_BYTES).unwrap();
    let (counted, kept, beyond) = (ring.capacity() as u16, ring.queue_capacity() as u16, 10u16);
    let total = counted + kept + beyond;
    let first = 20_000 + (std::process::id() % 20_000) as u16;
    let (pins, adopted, pin, filter) = one_page_stream(&root.0, &cgroup.0, first, total);
    let stream = &adopted.reports;
    refused_connects_from(&cgroup.0, first, total);
    // The take reads the ring to its end first: every report is kept or counted lost.
    let taken = stream.take_counted().unwrap().unwrap();
    assert_eq!(taken.kept, u64::from(kept));
    assert_eq!(taken.attempts(), u64::from(counted + kept));
    assert_eq!(stream.lost().unwrap(), u64::from(beyond));
    assert!(stream.delivered(taken.epoch).unwrap().deleted());
    drop((filter, pin, adopted, pins));
    assert!(!root.0.exists());
}

/// A take-over in place whose switch fails part-way changes nothing: here the old record's
/// second link (IPv6 connects) was detached, so the first link is switched and the second
/// refuses the update (ENOLINK); the first is put back on the old program, so every hook is judged by the old programs alone (a connect is
/// counted once, in the removed stream, and not in the new one), and the new record holds
/// no link. (When the first link stayed switched, new programs attached beside the old ones
/// judged a connect on that hook twice.)
#[test]
fn a_take_over_whose_switch_fails_part_way_puts_the_switched_links_back() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let cgroup = TestCgroup::new("partial");
    let root = PinRoot::new("partial");
    let port = listener();
    crash_after_enforcing(
        "a_take_over_whose_switch_fails_part_way_puts_the_switched_links_back",
        &root.0,
        &cgroup.0,
        port,
        CrashPoint::Enforced,
    );
    std::fs::rename(root.0.join("layout-1"), root.0.join("layout-0")).unwrap();
    // The second link detached (as `bpftool link detach` does): it refuses any update.
    let second = root
        .0
        .join("layout-0/workloads")
        .join(TAG.to_string())
        .join("link_refuse_connect6");
    libbpf_rs::Link::open(&second).unwrap().detach().unwrap();

    let pins = FirewallPins::open(&root.0).unwrap();
    let mut adopted = pins.adopt(ConnectReportsRing::DEFAULT).unwrap();
    let old = adopted.workloads.remove(0);
    let mut removed = adopted.removed_streams.remove(0);
    assert!(old.filter.is_none());
    let pin = pins
        .record_workload(TAG + 1, old.pin.identity().clone())
        .unwrap();
    let error = pin
        .take_over_filter(&old.pin, &cgroup.0, &adopted.reports, &[block(port)])
        .err()
        .expect("the second link refuses the switch");
    assert!(
        error.to_string().contains("link_refuse_connect6"),
        "names the link that refused, and no link left switched: {error}"
    );
    assert!(!pin.holds_links(), "the new pins are removed again");
    assert!(old.pin.holds_links());
    let programs = palisade_testdata::cgroup_programs(&cgroup.0);
    assert_eq!(programs.matches("connect4").count(), 1, "{programs}");
    assert!(!connects_from(&cgroup.0, port), "the old programs refuse");
    assert_eq!(
        removed.newly_lost(),
        1,
        "the connect4 hook runs the old program again: counted in the removed stream"
    );
    assert!(
        take_delivered(&adopted.reports).is_empty(),
        "and not by the new programs"
    );

    drop(pin);
    drop(old);
    drop(removed);
    drop(adopted);
    drop(pins);
    assert!(!root.0.exists(), "a clean stop leaves no pin, old or new");
}
