//! The fields the kernel probes read at exec, fork and open and with every event, with
//! libsinsp's types and its absent-versus-zero rules: memory, page faults and descriptor limit
//! (`proc.vmsize`, `thread.pfmajor`, `proc.fdlimit`), the descriptors when the event happened
//! (`proc.fdopencount`, `proc.fdlimit`, `proc.fdusage`), cgroups (`thread.cgroups`,
//! `thread.cgroup.<controller>`), thread counts, `evt.cpu`, `evt.reltime`, the opened file
//! (`fd.dev`, `fd.ino`, overlay layers), the capability sets (`thread.cap_*`) and the pid
//! namespace's start (`proc.pidns_init_start_ts`). Events without them (older recordings, the fallback)
//! leave them absent, so every check on them is false.

use palisade_rules::{Engine, EngineConfig};

use crate::support::{check_fires, ev, load, rule, run};

/// An exec on CPU 1, 2.5 s after the capture began, by a single-threaded process whose
/// resources and cgroups the kernel reported.
const EXEC: &str = r#"{"kind":"execve","timestamp_ns":1700000002500000000,
  "capture_start_ns":1700000000000000000,"cpu":1,
  "process":{"pid":42,"tid":42,"name":"miner","live_threads":1,
    "resources":{"vm_size_kb":9000,"vm_rss_kb":2100,"vm_swap_kb":16,"major_faults":3,
                 "minor_faults":250,"fd_limit":1024},
    "cgroups":["cpuset=/","cpu=/user.slice","cpuacct=/user.slice","io=/","memory=/pods/x"]}}"#;

/// An open by the second thread of a process whose leader has exited, of a file copied up to
/// an overlay's upper layer on device 0:51 (`st_dev` 51), inode 1234.
const OPEN_BY_A_THREAD: &str = r#"{"kind":"openat","cpu":0,
  "process":{"pid":42,"tid":43,"name":"worker","live_threads":2,"leader_exited":true,
    "resources":{"vm_size_kb":9000,"vm_rss_kb":2100,"vm_swap_kb":0,"major_faults":3,
                 "minor_faults":250,"fd_limit":-1}},
  "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/shadow"},"flags":0,"mode":0},
  "opened_file":{"dev":51,"ino":1234,"layer":"upper"}}"#;

/// The same kinds of event recorded without any of it.
const EXEC_WITHOUT: &str = r#"{"kind":"execve","process":{"pid":42,"tid":42}}"#;
const OPEN_WITHOUT: &str = r#"{"kind":"openat","process":{"pid":7,"tid":7},
  "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/shadow"},"flags":0,"mode":0}}"#;

#[test]
fn memory_faults_and_descriptor_limit_as_of_the_last_exec_or_fork() {
    check_fires(&[
        ("proc.vmsize = 9000", EXEC, true),
        ("proc.vmrss = 2100", EXEC, true),
        ("proc.vmswap = 16", EXEC, true),
        ("proc.vmrss > 2000 and proc.vmrss < 3000", EXEC, true),
        ("thread.vmsize = 9000 and thread.vmrss = 2100", EXEC, true),
        // Another thread of the process: libsinsp gives the main thread's value, 0 here.
        (
            "thread.vmsize = 0 and thread.vmrss = 0",
            OPEN_BY_A_THREAD,
            true,
        ),
        ("proc.vmsize = 9000", OPEN_BY_A_THREAD, true),
        ("thread.pfmajor = 3 and thread.pfminor = 250", EXEC, true),
        // Page faults are per thread, and only the main thread's are known.
        ("thread.pfmajor exists", OPEN_BY_A_THREAD, false),
        ("proc.fdlimit = 1024", EXEC, true),
        ("proc.fdlimit = -1", OPEN_BY_A_THREAD, true),
        // Not read: absent, so comparisons with zero fail too.
        ("proc.vmsize = 0", EXEC_WITHOUT, false),
        ("proc.vmsize exists", EXEC_WITHOUT, false),
        ("thread.vmrss = 0", EXEC_WITHOUT, false),
        ("proc.fdlimit exists", EXEC_WITHOUT, false),
        // Descriptors not counted for this event (no rule asked the sensor for them).
        ("proc.fdopencount exists", EXEC, false),
        ("proc.fdusage exists", EXEC, false),
        // Kept absent, with its reason in the field table.
        ("thread.cpu exists", EXEC, false),
    ]);
}

/// An open by a process whose descriptors the sensor read when it happened: 45 open, and a
/// limit raised to 300 since its exec (1024 then).
const OPEN_WITH_FDS: &str = r#"{"kind":"openat",
  "process":{"pid":42,"tid":42,"name":"server","open_fds":45,"fd_limit":300,
    "resources":{"vm_size_kb":9000,"vm_rss_kb":2100,"vm_swap_kb":0,"major_faults":0,
                 "minor_faults":1,"fd_limit":1024}},
  "payload":{"type":"open","fd":{"num":44,"kind":"file","name":"/etc/hosts"},"flags":0,"mode":0}}"#;

/// The same process with the given descriptor state (JSON members of `process`).
fn open_with(state: &str) -> String {
    format!(
        r#"{{"kind":"openat","process":{{"pid":42,"tid":42,"name":"server",{state}}},
        "payload":{{"type":"open","fd":{{"num":3,"kind":"file","name":"/x"}},"flags":0,"mode":0}}}}"#
    )
}

#[test]
fn descriptors_and_their_limit_when_the_event_happened() {
    let unlimited = open_with(r#""open_fds":7,"fd_limit":-1"#);
    let over_the_limit = open_with(r#""open_fds":500,"fd_limit":300"#);
    let none_open = open_with(r#""open_fds":0,"fd_limit":300"#);
    // A table too large to count: the limit is known, the count absent.
    let uncounted = open_with(r#""fd_limit":70000"#);
    check_fires(&[
        ("proc.fdopencount = 45", OPEN_WITH_FDS, true),
        ("proc.fdopencount >= 40", OPEN_WITH_FDS, true),
        ("proc.fdopencount > 45", OPEN_WITH_FDS, false),
        // The limit at the event wins over the exec's.
        ("proc.fdlimit = 300", OPEN_WITH_FDS, true),
        ("proc.fdlimit = 1024", OPEN_WITH_FDS, false),
        // 45 of 300: 15 %, a double.
        ("proc.fdusage = 15", OPEN_WITH_FDS, true),
        (
            "proc.fdusage > 14.9 and proc.fdusage < 15.1",
            OPEN_WITH_FDS,
            true,
        ),
        ("proc.fdusage in (10, 15.0)", OPEN_WITH_FDS, true),
        ("proc.fdusage >= 15.5", OPEN_WITH_FDS, false),
        // libsinsp: 0 when the limit is not positive, 100 at most.
        ("proc.fdusage = 0", &unlimited, true),
        ("proc.fdusage = 100", &over_the_limit, true),
        // Zero open descriptors is a value, not an absence.
        (
            "proc.fdopencount = 0 and proc.fdusage = 0",
            &none_open,
            true,
        ),
        ("proc.fdopencount exists", &uncounted, false),
        ("proc.fdusage exists", &uncounted, false),
        ("proc.fdlimit = 70000", &uncounted, true),
        // Only the exec's limit: proc.fdlimit has it, proc.fdusage has no count to divide.
        (
            "proc.fdlimit = 1024 and not proc.fdusage exists",
            EXEC,
            true,
        ),
    ]);
}

#[test]
fn a_fdusage_value_must_be_a_number() {
    let error = crate::support::fires("proc.fdusage > lots", OPEN_WITH_FDS).unwrap_err();
    assert!(error.contains("expected a number or a field"), "{error}");
    let error = crate::support::fires("proc.fdusage = lots", OPEN_WITH_FDS).unwrap_err();
    assert!(
        error.contains("value 'lots' is not valid for field 'proc.fdusage'"),
        "{error}"
    );
    let error = crate::support::fires("proc.fdusage contains 1", OPEN_WITH_FDS).unwrap_err();
    assert!(
        error.contains("operator 'contains' is not supported"),
        "{error}"
    );
}

#[test]
fn descriptor_outputs_print_as_libsinsp_does() {
    let rules = "- rule: Many descriptors\n  desc: d\n  condition: evt.type = openat and \
                 proc.fdopencount >= 40\n  output: \"open=%proc.fdopencount \
                 limit=%proc.fdlimit usage=%proc.fdusage\"\n  priority: WARNING\n";
    let out = run(
        &[rules],
        &EngineConfig::default(),
        &[
            ev(OPEN_WITH_FDS),
            ev(&open_with(r#""open_fds":3,"fd_limit":300"#)),
        ],
    );
    assert_eq!(
        out,
        "0: Many descriptors: open=45 limit=300 usage=15.0\n1: -"
    );
}

#[test]
fn cgroups_use_libsinsp_controller_names() {
    check_fires(&[
        (
            "thread.cgroups = 'cpuset=/ cpu=/user.slice cpuacct=/user.slice blkio=/ memory=/pods/x'",
            EXEC,
            true,
        ),
        ("thread.cgroup.memory = /pods/x", EXEC, true),
        ("thread.cgroup[cpu] = /user.slice", EXEC, true),
        // The kernel's `io` controller is `blkio` in libsinsp.
        ("thread.cgroup.blkio = /", EXEC, true),
        ("thread.cgroup.io exists", EXEC, false),
        ("thread.cgroup.pids exists", EXEC, false),
        ("thread.cgroups exists", EXEC_WITHOUT, false),
        ("thread.cgroup.memory exists", EXEC_WITHOUT, false),
    ]);
}

/// A sensor reads the cgroups at exec and fork only for a rule that reads them, in its
/// condition or its output, by either field.
#[test]
fn the_engine_says_whether_a_rule_reads_cgroups() {
    let engine = |rules: &[&str]| Engine::new(load(rules), &EngineConfig::default());
    assert!(!engine(&[&rule("proc.name = sh and container.id != host")]).reads_cgroups());
    assert!(engine(&[&rule("thread.cgroups contains kubepods")]).reads_cgroups());
    assert!(engine(&[&rule("thread.cgroup.memory startswith /pods")]).reads_cgroups());
    let in_output = engine(&["- rule: R\n  desc: d\n  condition: proc.name = sh\n  \
                              output: \"%thread.cgroup[cpu]\"\n  priority: WARNING\n"]);
    assert!(in_output.reads_cgroups());
    let disabled = engine(&[
        "- rule: R\n  desc: d\n  condition: thread.cgroups exists\n  \
                             output: o\n  priority: WARNING\n  enabled: false\n",
    ]);
    assert!(
        !disabled.reads_cgroups(),
        "a disabled rule needs nothing read"
    );
}

#[test]
fn threads_are_counted_at_event_time() {
    check_fires(&[
        ("proc.nthreads = 1 and proc.nchilds = 0", EXEC, true),
        // The leader has exited: both count only the remaining threads, as libsinsp does.
        (
            "proc.nthreads = 2 and proc.nchilds = 2",
            OPEN_BY_A_THREAD,
            true,
        ),
        ("proc.nthreads exists", EXEC_WITHOUT, false),
        ("proc.nchilds exists", EXEC_WITHOUT, false),
    ]);
}

#[test]
fn cpu_and_time_since_the_capture_began() {
    check_fires(&[
        ("evt.cpu = 1", EXEC, true),
        ("evt.cpu = 0", OPEN_BY_A_THREAD, true),
        ("evt.cpu exists", EXEC_WITHOUT, false),
        ("evt.reltime = 2500000000", EXEC, true),
        (
            "evt.reltime.s = 2 and evt.reltime.ns = 500000000",
            EXEC,
            true,
        ),
        ("evt.reltime exists", EXEC_WITHOUT, false),
        // libsinsp without scheduler switch events: 0, not absent.
        ("thread.exectime = 0 and thread.totexectime = 0", EXEC, true),
    ]);
}

#[test]
fn opened_files_carry_device_inode_and_layer() {
    check_fires(&[
        ("fd.dev = 51", OPEN_BY_A_THREAD, true),
        (
            "fd.dev.major = 0 and fd.dev.minor = 51",
            OPEN_BY_A_THREAD,
            true,
        ),
        ("fd.ino = 1234", OPEN_BY_A_THREAD, true),
        ("fd.is_upper_layer = true", OPEN_BY_A_THREAD, true),
        ("fd.is_lower_layer = false", OPEN_BY_A_THREAD, true),
        ("fd.ino exists", OPEN_WITHOUT, false),
        ("fd.is_upper_layer = false", OPEN_WITHOUT, false),
        ("fd.dev exists", EXEC, false),
        (
            "fd.dev.major = 259 and fd.dev.minor = 65536",
            // Major 259 (block extended), minor 65536: st_dev spreads the minor over bits 0-7 and 20-31.
            r#"{"kind":"openat","payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/x"},
              "flags":0,"mode":0},"opened_file":{"dev":268501760,"ino":1}}"#,
            true,
        ),
    ]);
}

#[test]
fn outputs_print_the_values() {
    let rules = "- rule: Big process\n  desc: d\n  condition: evt.type = execve and \
                 proc.vmrss > 1000\n  output: \"rss=%proc.vmrss limit=%proc.fdlimit \
                 mem=%thread.cgroup.memory cpu=%evt.cpu\"\n  priority: WARNING\n";
    let out = run(
        &[rules],
        &EngineConfig::default(),
        &[ev(EXEC), ev(EXEC_WITHOUT)],
    );
    assert_eq!(
        out,
        "0: Big process: rss=2100 limit=1024 mem=/pods/x cpu=1\n1: -"
    );
}

/// A process of a pid namespace that started at 1,700,000,000 s, running a program changed
/// 5 s later, with CAP_NET_RAW inheritable and CAP_CHOWN and CAP_KILL permitted and effective.
const IN_A_NAMESPACE: &str = r#"{"kind":"execve","process":{"pid":42,"tid":42,
    "start_time_ns":1700000010000000000,"pidns_init_start_ns":1700000000000000000,
    "exe_ctime_ns":1700000005000000000,"cap_inheritable":8192,"cap_permitted":33,
    "cap_effective":33}}"#;

#[test]
fn capability_sets_and_the_pid_namespace_start() {
    let changed_before_the_namespace = IN_A_NAMESPACE.replace(
        r#""exe_ctime_ns":1700000005000000000"#,
        r#""exe_ctime_ns":1600000000000000000"#,
    );
    check_fires(&[
        ("thread.cap_inheritable = CAP_NET_RAW", IN_A_NAMESPACE, true),
        (
            "thread.cap_permitted = \"CAP_CHOWN CAP_KILL\" and thread.cap_effective contains CAP_KILL",
            IN_A_NAMESPACE,
            true,
        ),
        ("thread.cap_inheritable = \"\"", EXEC_WITHOUT, true),
        (
            "proc.pidns_init_start_ts = 1700000000000000000",
            IN_A_NAMESPACE,
            true,
        ),
        (
            "proc.exe_ino.ctime_duration_pidns_start = 5000000000",
            IN_A_NAMESPACE,
            true,
        ),
        // libsinsp gives the duration only for a program changed after the namespace began.
        (
            "proc.exe_ino.ctime_duration_pidns_start exists",
            &changed_before_the_namespace,
            false,
        ),
        ("proc.pidns_init_start_ts exists", EXEC_WITHOUT, false),
        (
            "proc.exe_ino.ctime_duration_pidns_start exists",
            EXEC_WITHOUT,
            false,
        ),
    ]);
}

/// A capset that left CAP_NET_BIND_SERVICE inheritable, CAP_CHOWN and CAP_KILL permitted, and
/// CAP_KILL effective.
const CAPSET: &str = r#"{"kind":"capset","process":{"pid":42,"tid":42},
  "payload":{"type":"capset","inheritable":1024,"permitted":33,"effective":32}}"#;

#[test]
fn capset_carries_the_three_sets_as_the_drivers_exit_event() {
    check_fires(&[
        (
            "evt.arg.cap_inheritable = CAP_NET_BIND_SERVICE",
            CAPSET,
            true,
        ),
        (
            "evt.arg[cap_permitted] = \"CAP_CHOWN CAP_KILL\"",
            CAPSET,
            true,
        ),
        ("evt.arg.cap_effective = CAP_KILL", CAPSET, true),
        (
            "evt.args = \"cap_inheritable=CAP_NET_BIND_SERVICE cap_permitted=CAP_CHOWN CAP_KILL \
             cap_effective=CAP_KILL\"",
            CAPSET,
            true,
        ),
        // Recordings made before the sensor read the inheritable set: none.
        (
            "evt.arg.cap_inheritable = \"\"",
            r#"{"kind":"capset","payload":{"type":"capset","permitted":33,"effective":32}}"#,
            true,
        ),
    ]);
}
