//! As root: an agent takes over from a dead agent of another build, whose pins it cannot
//! take over (another layout), or from a dead agent of this build that wrote its alerts into
//! another outbox. The dead agent is this test binary run again as a child ([`CHILD`],
//! [`OUTBOX_CHILD`]): it enforces pod shop/web with pins, makes refused connects, and kills
//! itself (SIGKILL, as a crash); its pins are then renamed to another layout's, or kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use palisade_enforce::DefenseMode;
use palisade_model::{FindingReport, FirewallAction, Timestamp};

use super::{CgroupDir, alerts_by_rule, config, enforced_policy, tick_delivered, web_connect_from};
use crate::firewall_watch::{
    FirewallWatch, FirewallWatchConfig, LOST_CONNECT_REPORTS_RULE, PolicyUpdates,
};
use crate::{EventObserver, Outbox};

/// Set in the child run: `<pin dir>,<pod cgroup>,<pod pid>`.
const CHILD: &str = "PALISADE_AGENT_HANDOVER_CHILD";
/// The refused connects the dead agent's programs counted and nobody took.
const UNTAKEN: u64 = 3;
/// Where the pod's connects go: shop/db's address, which both rules of
/// [`enforced_policy`] block.
const DB: &str = "127.0.0.20:5432";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A watch in block mode pinning in `pin_dir` (taking over what is pinned there).
fn pinned_watch(pin_dir: &Path) -> (FirewallWatch, PolicyUpdates) {
    FirewallWatch::new(FirewallWatchConfig {
        pin_dir: Some(pin_dir.to_path_buf()),
        ..config(DefenseMode::Block)
    })
    .unwrap()
}

/// Set in the child run of the outbox test: `<pin dir>,<pod cgroup>,<pod pid>,<outbox
/// dir>,<written>`.
const OUTBOX_CHILD: &str = "PALISADE_AGENT_OUTBOX_CHILD";

/// A runtime for the outboxes of a test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The outbox test's child, when this run is it: an agent with the outbox in the given
/// directory enforces the pod, makes [`UNTAKEN`] refused connects, and takes them at a
/// tick; it writes the tick's alerts with their receipt into its outbox when asked, and
/// dies before it tells the watch (or before the write).
fn run_outbox_child_if_asked() {
    let Ok(args) = std::env::var(OUTBOX_CHILD) else {
        return;
    };
    let fields: Vec<&str> = args.split(',').collect();
    let (pin_dir, cgroup, pid, outbox_dir, written) = (
        PathBuf::from(fields[0]),
        PathBuf::from(fields[1]),
        fields[2].parse::<u32>().unwrap(),
        PathBuf::from(fields[3]),
        fields[4] == "written",
    );
    let runtime = runtime();
    let outbox = runtime.block_on(Outbox::open(&outbox_dir)).unwrap();
    let (mut watch, updates) = FirewallWatch::new(FirewallWatchConfig {
        pin_dir: Some(pin_dir),
        outbox: Some(outbox.identity().clone()),
        ..config(DefenseMode::Block)
    })
    .unwrap();
    enforce_the_pod_and_make_untaken_connects(&mut watch, &updates, pid, &cgroup);
    let mut reports = Vec::new();
    watch.tick(Timestamp::now(), &mut reports);
    let receipt = watch.take_receipt().expect("the take's receipt");
    if written {
        runtime
            .block_on(outbox.push_with_receipts(&reports, &[receipt]))
            .unwrap();
    }
    die_as_a_crash()
}

/// The dead agent's last steps before it dies: gives `watch` its first policy, lets it see
/// the pod's process `pid` (in `cgroup`), and makes [`UNTAKEN`] connects its programs refuse
/// and count.
fn enforce_the_pod_and_make_untaken_connects(
    watch: &mut FirewallWatch,
    updates: &PolicyUpdates,
    pid: u32,
    cgroup: &Path,
) {
    first_policy(watch, updates);
    watch.observe(&web_connect_from(pid), &mut Vec::new());
    assert_eq!(watch.enforced_pods(), ["shop/web"]);
    assert_eq!(connects_refused_in(cgroup, UNTAKEN), UNTAKEN);
}

/// Of `count` connects to [`DB`] made from `cgroup`, how many its programs refused.
fn connects_refused_in(cgroup: &Path, count: u64) -> u64 {
    let root = palisade_enforce::cgroup2_root().unwrap();
    palisade_testdata::in_cgroup(&root, cgroup, || {
        (0..count).filter(|_| refused_by_programs()).count() as u64
    })
}

/// Ends a child run as `kill -9` would: no destructor runs, its pins and links stay.
fn die_as_a_crash() -> ! {
    // SAFETY: kill on this process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("killed");
}

/// Runs the test `test` of this binary again as a child with `variable` set to `value`
/// (which makes it that test's dying agent), and waits until it died of SIGKILL.
fn run_dying_child(test: &str, variable: &str, value: String) {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(variable, value)
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

/// A dead agent of another build (another layout) that enforced pod shop/web (`pod` in
/// `cgroup`) pinning in `pin_dir` and left [`UNTAKEN`] refused connects untaken: the
/// [`CHILD`] run of `test`, its pins then renamed to another layout's.
fn dead_agent_of_another_layout(
    test: &str,
    pin_dir: &PinDir,
    cgroup: &CgroupDir,
    pod: &palisade_testdata::KillOnDrop,
) {
    run_dying_child(
        test,
        CHILD,
        format!(
            "{},{},{}",
            pin_dir.0.display(),
            cgroup.0.display(),
            pod.0.id()
        ),
    );
    // As a build of another layout would have left it.
    std::fs::rename(pin_dir.0.join("layout-1"), pin_dir.0.join("layout-0")).unwrap();
}

/// A cgroup of the test's own with a process of "the pod" in it (sleeping), removed on drop,
/// and the pin directory `/sys/fs/bpf/palisade-agent-<name>-<pid>` for the test's agents.
fn pod_and_pin_dir(name: &str) -> (CgroupDir, palisade_testdata::KillOnDrop, PinDir) {
    let root = palisade_enforce::cgroup2_root().unwrap();
    let cgroup = CgroupDir(root.join(format!("palisade-agent-{name}-{}", std::process::id())));
    std::fs::create_dir(&cgroup.0).unwrap();
    let pod = palisade_testdata::KillOnDrop(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "echo $$ > '{}/cgroup.procs' && exec sleep 120",
                cgroup.0.display()
            ))
            .spawn()
            .unwrap(),
    );
    let pod_pid = pod.0.id();
    while !std::fs::read_to_string(format!("/proc/{pod_pid}/cgroup"))
        .is_ok_and(|listing| listing.contains(&format!("palisade-agent-{name}-")))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pin_dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/palisade-agent-{name}-{}",
        std::process::id()
    )));
    (cgroup, pod, pin_dir)
}

/// Stops `watch` as a clean stop does and checks that it leaves no pin in `pin_dir` and no
/// connect program on `cgroup` (`what` names the case in the failure).
fn stop_cleanly(watch: FirewallWatch, pin_dir: &PinDir, cgroup: &CgroupDir, what: &str) {
    drop(watch);
    assert!(!pin_dir.0.exists(), "{what}: a clean stop leaves no pin");
    wait_until_no_connect_program(cgroup, &format!("{what}: and no program"));
}

/// Waits until no connect program is attached to `cgroup`; fails the test with `failure`
/// when one still is after 5 s.
fn wait_until_no_connect_program(cgroup: &CgroupDir, failure: &str) {
    let started = std::time::Instant::now();
    while palisade_testdata::cgroup_programs(&cgroup.0).contains("connect4") {
        assert!(started.elapsed() < Duration::from_secs(5), "{failure}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Same pins, another outbox (a second agent, or this one re-installed with a new data
/// directory): a dead agent that wrote its last take's alerts into its outbox and died
/// before it deleted the counts is not taken again by the next agent, whose outbox has no
/// receipt of it (the pins name the dead agent's outbox, whose receipt says so); one that
/// died before the write is taken again whole. Neither doubled nor lost. (Without the pins
/// naming the outbox, the written take was alerted a second time: 3 attempts.)
#[test]
fn a_take_written_into_another_outbox_is_not_taken_again_and_an_unwritten_one_is() {
    run_outbox_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let runtime = runtime();
    for written in [true, false] {
        let (cgroup, pod, pin_dir) = pod_and_pin_dir("outboxes");
        let (dead_dir, next_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        run_dying_child(
            "firewall_watch::tests::handover::a_take_written_into_another_outbox_is_not_taken_again_and_an_unwritten_one_is",
            OUTBOX_CHILD,
            format!(
                "{},{},{},{},{}",
                pin_dir.0.display(),
                cgroup.0.display(),
                pod.0.id(),
                dead_dir.path().display(),
                if written { "written" } else { "not" }
            ),
        );
        let dead_outbox = runtime.block_on(Outbox::open(dead_dir.path())).unwrap();
        let dead_alerts = runtime.block_on(dead_outbox.len()).unwrap();
        assert_eq!(dead_alerts > 0, written);

        let next_outbox = runtime.block_on(Outbox::open(next_dir.path())).unwrap();
        assert_ne!(next_outbox.identity(), dead_outbox.identity());
        assert!(runtime.block_on(next_outbox.receipts()).unwrap().is_empty());
        let (mut watch, updates) = FirewallWatch::new(FirewallWatchConfig {
            pin_dir: Some(pin_dir.0.clone()),
            outbox: Some(next_outbox.identity().clone()),
            ..config(DefenseMode::Block)
        })
        .unwrap();
        assert!(watch.took_over_enforcement());
        let reports = first_policy(&mut watch, &updates);
        let (alerted, lost) = alerts_by_rule(&reports);
        let alerted: u64 = alerted.values().sum();
        assert_eq!(lost, 0);
        assert_eq!(
            alerted,
            if written { 0 } else { UNTAKEN },
            "written: {written}: {reports:?}"
        );
        stop_cleanly(watch, &pin_dir, &cgroup, &format!("written: {written}"));
        drop(pod);
    }
}

/// Gives `watch` its first policy, both of [`enforced_policy`]'s rules `block`, and ticks
/// it; the reports of that tick.
fn first_policy(watch: &mut FirewallWatch, updates: &PolicyUpdates) -> Vec<FindingReport> {
    updates
        .send(enforced_policy([FirewallAction::Block; 2]))
        .unwrap();
    let mut reports = Vec::new();
    tick_delivered(watch, Timestamp::now(), &mut reports);
    reports
}

/// Whether a connect to [`DB`] from this process was refused by connect programs (`EPERM`);
/// any other outcome (nobody listens there: refused by the peer) passed them.
fn refused_by_programs() -> bool {
    std::net::TcpStream::connect(DB)
        .is_err_and(|error| error.kind() == std::io::ErrorKind::PermissionDenied)
}

/// The child's part, when this run is the child: the dying agent.
fn run_child_if_asked() {
    let Ok(args) = std::env::var(CHILD) else {
        return;
    };
    let fields: Vec<&str> = args.split(',').collect();
    let (pin_dir, cgroup, pid) = (
        PathBuf::from(fields[0]),
        PathBuf::from(fields[1]),
        fields[2].parse::<u32>().unwrap(),
    );
    let (mut watch, updates) = pinned_watch(&pin_dir);
    enforce_the_pod_and_make_untaken_connects(&mut watch, &updates, pid, &cgroup);
    die_as_a_crash()
}

/// Resets the pin directory on drop, whatever a failing test left there.
struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = palisade_enforce::reset(&self.0);
    }
}

/// The dead agent's programs stay on the pod's cgroup, refusing, until the new agent's have
/// the pod's rules: a thread of the pod connects all through the hand-over at the first
/// policy (new programs loaded with their rules, then put in the old ones' place in their
/// links), and every one of its connects is refused by programs, none passes. Afterwards
/// one set of programs is attached. The attempts the dead agent's programs counted and
/// nobody took, which the new agent cannot take (another layout), are raised as lost (the
/// node alert and the watch's lost count), not dropped silently, and every refused connect
/// is alerted or counted lost, exactly once. A clean stop leaves no pin and no program.
#[test]
fn a_dead_agent_of_another_layout_is_replaced_with_no_gap_and_its_untaken_attempts_raised_lost() {
    run_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let root = palisade_enforce::cgroup2_root().unwrap();
    let (cgroup, pod, pin_dir) = pod_and_pin_dir("handover");
    let pod_pid = pod.0.id();
    dead_agent_of_another_layout(
        "firewall_watch::tests::handover::a_dead_agent_of_another_layout_is_replaced_with_no_gap_and_its_untaken_attempts_raised_lost",
        &pin_dir,
        &cgroup,
        &pod,
    );
    assert!(palisade_testdata::cgroup_programs(&cgroup.0).contains("connect4"));

    // Taken over before the pod connects again: the untaken attempts are the dead agent's.
    let (mut watch, updates) = pinned_watch(&pin_dir.0);
    assert!(
        !watch.took_over_enforcement(),
        "another layout's stream is not taken over"
    );
    // The untaken attempts are raised lost at the first tick, before any policy.
    let mut before_policy = Vec::new();
    tick_delivered(&mut watch, Timestamp::now(), &mut before_policy);
    let (alerted_before_policy, lost_before_policy) = alerts_by_rule(&before_policy);
    assert!(alerted_before_policy.is_empty(), "{before_policy:?}");
    assert_eq!(lost_before_policy, UNTAKEN, "{before_policy:?}");
    let connecting = AtomicBool::new(true);
    let refused_so_far = AtomicU64::new(0);
    let ((refused, passed), reports) = palisade_testdata::in_cgroup(&root, &cgroup.0, || {
        std::thread::scope(|scope| {
            let connects = scope.spawn(|| {
                let (mut refused, mut passed) = (0u64, 0u64);
                while connecting.load(Ordering::Relaxed) {
                    if refused_by_programs() {
                        refused += 1;
                        refused_so_far.store(refused, Ordering::Relaxed);
                    } else {
                        passed += 1;
                    }
                }
                (refused, passed)
            });
            // At least one connect refused by the dead agent's programs alone before the
            // new ones get rules (a fixed sleep is not enough on a busy machine).
            let waiting_since = std::time::Instant::now();
            while refused_so_far.load(Ordering::Relaxed) == 0
                && waiting_since.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut reports = first_policy(&mut watch, &updates);
            // The sensor's view of the pod's connects reads the lost counts before each is
            // judged; those reads never let the removed stream go, only a tick does.
            for _ in 0..2 {
                watch.observe(&sensor_view_outside(pod_pid, &cgroup.0), &mut reports);
            }
            assert_eq!(watch.enforcement.removed_streams.len(), 1);
            std::thread::sleep(Duration::from_millis(20));
            connecting.store(false, Ordering::Relaxed);
            (connects.join().unwrap(), reports)
        })
    });
    // The attempts counted since the first policy's tick, by the new programs (and by the
    // old ones until they went).
    std::thread::sleep(Duration::from_millis(50));
    let mut later = Vec::new();
    tick_delivered(&mut watch, Timestamp::now(), &mut later);
    // Let go a tick after the first tick that found its programs gone, when nothing came
    // into it meanwhile (a connect in flight at the switch may have come: then one more).
    for _ in 0..2 {
        if !watch.enforcement.removed_streams.is_empty() {
            tick_delivered(&mut watch, Timestamp::now(), &mut later);
        }
    }
    assert!(watch.enforcement.removed_streams.is_empty());
    assert_eq!(
        passed, 0,
        "connects passed during the take-over ({refused} refused)"
    );
    assert!(refused > 0);
    assert_eq!(watch.enforced_pods(), ["shop/web"]);
    let programs = palisade_testdata::cgroup_programs(&cgroup.0);
    assert_eq!(programs.matches("connect4").count(), 1, "{programs}");
    let (_, lost_at_policy) = alerts_by_rule(&reports);
    assert!(
        lost_at_policy > 0,
        "the attempts the dead agent's programs counted until the new ones had rules are \
         raised as lost: {reports:?}"
    );
    assert_eq!(
        reports
            .iter()
            .filter(|report| report.rule == LOST_CONNECT_REPORTS_RULE)
            .count(),
        1
    );
    let all: Vec<FindingReport> = before_policy
        .iter()
        .chain(&reports)
        .chain(&later)
        .cloned()
        .collect();
    let (alerted, lost) = alerts_by_rule(&all);
    let alerted: u64 = alerted.values().sum();
    assert_eq!(watch.reports_lost(), lost);
    // Each refused connect is alerted (the new programs counted it) or counted lost (the old
    // ones did), exactly once: the new programs take the old ones' place in their links, so
    // no connect is judged by both. (Before the old programs' counts after the adoption were
    // read, the connects until the first policy were neither; while new programs went on
    // beside the old ones, a connect in the moment both had rules was both.)
    assert_eq!(
        alerted + (lost - UNTAKEN),
        refused,
        "{refused} refused, {alerted} alerted, {} lost after the adoption",
        lost - UNTAKEN
    );

    stop_cleanly(watch, &pin_dir, &cgroup, "handover");
    drop(pod);
}

/// Set in the child run that takes over in place and dies mid-swap: `<pin dir>,<pod
/// cgroup>`.
const SWAP_CHILD: &str = "PALISADE_AGENT_SWAP_CHILD";
/// The refused connects the switched links count before the take-over's agent dies.
const SWAPPED: u64 = 2;
/// The refused connects made while no agent runs, after that.
const WHILE_DEAD: u64 = 3;

/// The mid-swap child's part, when this run is it: an agent of this layout that takes over
/// the dead agent's programs of another layout in place, as the watch does at the first
/// policy (the pod's new record written, this build's programs given the
/// pod's rules and put in the old ones' links), makes [`SWAPPED`] refused connects, and
/// dies before it drops the old record (as in the install's `apply_rules`, before the
/// superseded record goes).
fn run_swap_child_if_asked() {
    let Ok(args) = std::env::var(SWAP_CHILD) else {
        return;
    };
    let (pin_dir, cgroup) = args.split_once(',').unwrap();
    let (pin_dir, cgroup) = (PathBuf::from(pin_dir), PathBuf::from(cgroup));
    let pins = palisade_enforce::FirewallPins::open(&pin_dir).unwrap();
    let mut adopted = pins
        .adopt(palisade_enforce::ConnectReportsRing::DEFAULT)
        .unwrap();
    assert_eq!(adopted.workloads.len(), 1);
    let old = adopted.workloads.remove(0);
    assert!(
        old.filter.is_none(),
        "another layout's filter is not adopted"
    );
    let state = enforced_policy([FirewallAction::Block; 2]);
    let pod_id = state.pod_id("shop", "web").unwrap();
    let rules = palisade_enforce::workload_rules(&state, pod_id, DefenseMode::Block);
    let pin = pins
        .record_workload(old.pin.tag() + 1, old.pin.identity().clone())
        .unwrap();
    let filter = pin
        .take_over_filter(&old.pin, &cgroup, &adopted.reports, &rules.egress)
        .unwrap();
    assert_eq!(connects_refused_in(&cgroup, SWAPPED), SWAPPED);
    let _kept_until_the_kill = (filter, pin, old, adopted, pins);
    die_as_a_crash()
}

/// An agent that crashed in the middle of a take-over in place (the pod's new record
/// complete, the old programs' links switched to its programs, the old layout's record not
/// yet removed) leaves the pod recorded twice; the next agent keeps the record whose
/// programs run, although the old layout's (`layout-0`) sorts first, so the attempts the
/// switched links counted (before the crash and while no agent ran) carry the tag of the
/// pod they are alerted for: every one is alerted, none dropped, none counted lost. (When
/// the first record stood, the pod got a new tag and those counts matched no pod: neither
/// alerted nor counted lost.) The attempts the first dead agent's stream held untaken,
/// which the crashed agent took over and died before raising, are raised lost by the next
/// one, whole: the old layout's stream stays pinned until an agent lets it go. (When the
/// take-over removed its pins at once, they were gone silently: 0 raised.) The old record
/// goes, the links stay: one set of programs, refusing; a clean stop leaves no pin and no
/// program.
#[test]
fn a_take_over_in_place_that_crashed_mid_swap_is_resumed_under_the_new_record() {
    const TEST: &str = "firewall_watch::tests::handover::a_take_over_in_place_that_crashed_mid_swap_is_resumed_under_the_new_record";
    run_child_if_asked();
    run_swap_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let (cgroup, pod, pin_dir) = pod_and_pin_dir("midswap");
    dead_agent_of_another_layout(TEST, &pin_dir, &cgroup, &pod);
    run_dying_child(
        TEST,
        SWAP_CHILD,
        format!("{},{}", pin_dir.0.display(), cgroup.0.display()),
    );
    let records = |layout: &str| {
        std::fs::read_dir(pin_dir.0.join(layout).join("workloads"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    assert_eq!(
        (records("layout-0"), records("layout-1")),
        (1, 1),
        "the pod recorded twice"
    );
    let while_dead = connects_refused_in(&cgroup.0, WHILE_DEAD);
    assert_eq!(while_dead, WHILE_DEAD, "fails closed");

    let (mut watch, updates) = pinned_watch(&pin_dir.0);
    assert!(watch.took_over_enforcement(), "this layout's stream");
    let mut reports = first_policy(&mut watch, &updates);
    let after_policy = connects_refused_in(&cgroup.0, 1);
    assert_eq!(after_policy, 1, "still refused");
    tick_delivered(&mut watch, Timestamp::now(), &mut reports);
    let (alerted, lost) = alerts_by_rule(&reports);
    assert_eq!(
        lost, UNTAKEN,
        "the first dead agent's untaken attempts: {reports:?}"
    );
    assert_eq!(
        alerted.values().sum::<u64>(),
        SWAPPED + WHILE_DEAD + after_policy,
        "every attempt the switched links counted is alerted: {reports:?}"
    );
    assert_eq!(watch.enforced_pods(), ["shop/web"]);
    assert_eq!(
        (records("layout-0"), records("layout-1")),
        (0, 1),
        "the old record goes"
    );
    let programs = palisade_testdata::cgroup_programs(&cgroup.0);
    assert_eq!(programs.matches("connect4").count(), 1, "{programs}");

    stop_cleanly(watch, &pin_dir, &cgroup, "midswap");
    drop(pod);
}

/// Set in the child run that dies between recording pod shop/web in the pins and pinning its
/// connect programs' links: `<pin dir>,<pod cgroup>,<stage>`, the stage `recorded` (the
/// record alone) or `attached` (the programs attached too, their links not yet pinned), as
/// the watch's install leaves it when the agent dies there.
const RECORD_CHILD: &str = "PALISADE_AGENT_RECORD_CHILD";

/// The dying child's part, when this run is it (see [`RECORD_CHILD`]).
fn run_record_child_if_asked() {
    let Ok(args) = std::env::var(RECORD_CHILD) else {
        return;
    };
    let fields: Vec<&str> = args.split(',').collect();
    let (pin_dir, cgroup, attached) = (
        PathBuf::from(fields[0]),
        PathBuf::from(fields[1]),
        fields[2] == "attached",
    );
    let pins = palisade_enforce::FirewallPins::open(&pin_dir).unwrap();
    let adopted = pins
        .adopt(palisade_enforce::ConnectReportsRing::DEFAULT)
        .unwrap();
    let pin = pins
        .record_workload(
            0,
            palisade_enforce::WorkloadIdentity {
                name: "shop/web".to_owned(),
                cgroup: Some(cgroup.clone()),
                netns: None,
                netns_inode: 0,
            },
        )
        .unwrap();
    let filter = attached.then(|| {
        palisade_enforce::ConnectFilter::attach(&cgroup, &adopted.reports, pin.tag()).unwrap()
    });
    let _kept_until_the_kill = (filter, pin, adopted, pins);
    die_as_a_crash()
}

/// An agent that dies after recording a pod in its pins and before its connect programs'
/// links are pinned (programs not attached yet, or attached: their links go with the
/// process, and they held no rule yet, so nothing was refused or counted) leaves a record
/// without programs. The next agent takes the record over as one whose programs it cannot
/// adopt: at the first policy the pod gets programs of its own, holding the rules, under a
/// new record, and the old record goes. Nothing is lost or counted twice: every refused
/// connect after that is alerted once, no loss is raised, one set of programs is attached,
/// one record is left, and a clean stop leaves no pin and no program.
#[test]
fn a_pod_recorded_before_its_programs_were_pinned_is_enforced_anew_after_a_crash() {
    const TEST: &str = "firewall_watch::tests::handover::a_pod_recorded_before_its_programs_were_pinned_is_enforced_anew_after_a_crash";
    run_record_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    for stage in ["recorded", "attached"] {
        let (cgroup, pod, pin_dir) = pod_and_pin_dir(&format!("record-{stage}"));
        run_dying_child(
            TEST,
            RECORD_CHILD,
            format!("{},{},{stage}", pin_dir.0.display(), cgroup.0.display()),
        );
        let records = || {
            std::fs::read_dir(pin_dir.0.join("layout-1/workloads"))
                .map(|entries| entries.count())
                .unwrap_or(0)
        };
        assert_eq!(records(), 1, "{stage}: the record is left");
        wait_until_no_connect_program(
            &cgroup,
            &format!("{stage}: unpinned programs go with their process"),
        );

        let (mut watch, updates) = pinned_watch(&pin_dir.0);
        assert!(watch.took_over_enforcement(), "{stage}");
        let mut reports = first_policy(&mut watch, &updates);
        assert_eq!(watch.enforced_pods(), ["shop/web"], "{stage}");
        let refused = connects_refused_in(&cgroup.0, UNTAKEN);
        assert_eq!(refused, UNTAKEN, "{stage}: enforced from the first policy");
        tick_delivered(&mut watch, Timestamp::now(), &mut reports);
        let (alerted, lost) = alerts_by_rule(&reports);
        assert_eq!(lost, 0, "{stage}: {reports:?}");
        assert_eq!(
            alerted.values().sum::<u64>(),
            UNTAKEN,
            "{stage}: each refused connect alerted once: {reports:?}"
        );
        let programs = palisade_testdata::cgroup_programs(&cgroup.0);
        assert_eq!(
            programs.matches("connect4").count(),
            1,
            "{stage}: {programs}"
        );
        assert_eq!(records(), 1, "{stage}: the old record went");

        stop_cleanly(watch, &pin_dir, &cgroup, stage);
        drop(pod);
    }
}

/// Set in the child run that takes over a dead agent's pins of another layout and dies
/// before its first tick, so before it raised what that layout's stream held: `<pin dir>`.
const ADOPT_CHILD: &str = "PALISADE_AGENT_ADOPT_CHILD";

/// The child's part, when this run is it (see [`ADOPT_CHILD`]): the watch takes the pins
/// over (another layout's stream let go, its untaken attempts known only in memory) and the
/// agent dies.
fn run_adopt_child_if_asked() {
    let Ok(pin_dir) = std::env::var(ADOPT_CHILD) else {
        return;
    };
    let (watch, _updates) = pinned_watch(Path::new(&pin_dir));
    assert!(!watch.took_over_enforcement(), "another layout's stream");
    let _kept_until_the_kill = watch;
    die_as_a_crash()
}

/// An agent that takes over a dead agent of another layout and dies before its first tick
/// has not raised the attempts that layout's stream held untaken: they are not lost with it.
/// The stream stays pinned until an agent lets it go (after raising them), so the next agent
/// finds it again and raises them as lost at its first tick. (When the stream's pins were
/// removed at the take-over, they were gone silently: the next agent raised 0.)
#[test]
fn an_agent_dying_right_after_taking_over_another_layout_leaves_its_untaken_attempts_to_the_next() {
    const TEST: &str = "firewall_watch::tests::handover::an_agent_dying_right_after_taking_over_another_layout_leaves_its_untaken_attempts_to_the_next";
    run_child_if_asked();
    run_adopt_child_if_asked();
    if !palisade_testdata::capability("root (eBPF, cgroup2, bpffs)", is_root()) {
        return;
    }
    let (cgroup, pod, pin_dir) = pod_and_pin_dir("adoptdies");
    dead_agent_of_another_layout(TEST, &pin_dir, &cgroup, &pod);
    run_dying_child(TEST, ADOPT_CHILD, pin_dir.0.display().to_string());
    assert!(
        pin_dir.0.join("layout-0/connect").exists(),
        "the dead agent of another layout's stream is still pinned"
    );

    let (mut watch, updates) = pinned_watch(&pin_dir.0);
    let mut reports = Vec::new();
    tick_delivered(&mut watch, Timestamp::now(), &mut reports);
    let (alerted, lost) = alerts_by_rule(&reports);
    assert!(alerted.is_empty(), "{reports:?}");
    assert_eq!(lost, UNTAKEN, "raised by the next agent: {reports:?}");
    // The policy replaces the old programs; the stream is let go a tick after they went.
    reports.extend(first_policy(&mut watch, &updates));
    for _ in 0..3 {
        if !watch.enforcement.removed_streams.is_empty() {
            tick_delivered(&mut watch, Timestamp::now(), &mut reports);
        }
    }
    assert!(watch.enforcement.removed_streams.is_empty());
    assert!(
        !pin_dir.0.join("layout-0/connect").exists(),
        "let go once raised: its pins are removed"
    );
    assert_eq!(
        alerts_by_rule(&reports).1,
        UNTAKEN,
        "raised once: {reports:?}"
    );
    stop_cleanly(watch, &pin_dir, &cgroup, "adoptdies");
    drop(pod);
}

/// What the sensor sees, now, of a refused connect of pod shop/web's process `pid` in
/// `cgroup` to 10.9.9.9:5432 (outside, which [`enforced_policy`]'s second rule blocks: its
/// programs decide it).
fn sensor_view_outside(pid: u32, cgroup: &Path) -> palisade_event::Event {
    use std::os::unix::fs::MetadataExt;
    let mut event = web_connect_from(pid);
    event.timestamp_ns = u64::try_from(Timestamp::now().0).unwrap() * 1_000_000;
    event.cgroup_id = std::fs::metadata(cgroup).unwrap().ino();
    if let palisade_event::Payload::Network { fd } = &mut event.payload {
        fd.socket.as_mut().unwrap().remote_addr = Some("10.9.9.9".parse().unwrap());
    }
    event.ret = -1;
    event
}
