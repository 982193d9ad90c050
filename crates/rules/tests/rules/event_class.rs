//! libsinsp's `evt` syscall class beyond the call and its arguments, and the classes the
//! sensor cannot supply, on recorded events: `evt.category` and `evt.type.is` from the
//! driver's event table, the I/O direction and buffer lengths, the chisel counters
//! (`evt.count*`), `evt.is_open_*` with libsinsp's flag rules, the deprecated timing fields
//! (0, as libsinsp gives them), the table-only thread fields, and the always-absent ones
//! (`syslog.*`, `fdlist.*`, `mesos.*`), on which every check is false. `evt.around` and
//! `evt.deltatime` are in `timing`.

use crate::support::check_fires;

const EXEC: &str = r#"{"kind":"execve","timestamp_ns":1700000002500000000,
  "process":{"pid":42,"tid":42,"name":"miner",
    "resources":{"vm_size_kb":9000,"vm_rss_kb":2100,"vm_swap_kb":0,"major_faults":0,
                 "minor_faults":1,"fd_limit":1024}}}"#;
const FAILED_EXEC: &str = r#"{"kind":"execve","ret":-2,"process":{"pid":42,"tid":42}}"#;
const EXIT: &str = r#"{"kind":"procexit","process":{"pid":42,"tid":42},
  "payload":{"type":"exit","status":0,"signal":0}}"#;
/// A thread other than the main one (tid 43 of process 42).
const THREAD_OPEN: &str = r#"{"kind":"openat","process":{"pid":42,"tid":43,"name":"worker",
    "resources":{"vm_size_kb":9000,"vm_rss_kb":2100,"vm_swap_kb":0,"major_faults":0,
                 "minor_faults":1,"fd_limit":1024}},
  "payload":{"type":"open","fd":{"num":3,"kind":"file","name":"/etc/hosts"},"flags":0,"mode":0}}"#;
const FAILED_OPEN: &str = r#"{"kind":"openat","ret":-2,"process":{"pid":7,"tid":7},
  "payload":{"type":"open","fd":{"num":-1,"kind":"file","name":"/nope"},"flags":0,"mode":0}}"#;
const SEND_IPV4: &str = r#"{"kind":"sendto","ret":42,"process":{"pid":7,"tid":7},
  "payload":{"type":"network","fd":{"num":5,"kind":"ipv4","socket":{"protocol":"udp",
    "local_addr":"10.0.0.1","local_port":5000,"remote_addr":"10.0.0.2","remote_port":53}}}}"#;
const SEND_UNIX: &str = r#"{"kind":"sendmsg","ret":12,"process":{"pid":7,"tid":7},
  "payload":{"type":"network","fd":{"num":4,"kind":"unix","name":"/dev/log"}}}"#;
const FAILED_SEND: &str = r#"{"kind":"sendto","ret":-32,"process":{"pid":7,"tid":7},
  "payload":{"type":"network","fd":{"num":5,"kind":"ipv4","socket":{"protocol":"tcp",
    "local_addr":"10.0.0.1","local_port":5000,"remote_addr":"10.0.0.2","remote_port":80}}}}"#;
const FAILED_CONNECT: &str = r#"{"kind":"connect","ret":-111,"process":{"pid":7,"tid":7},
  "payload":{"type":"network","fd":{"num":5,"kind":"ipv4","socket":{"protocol":"tcp",
    "local_addr":"10.0.0.1","local_port":5000,"remote_addr":"10.0.0.2","remote_port":80}}}}"#;
const DUP_FILE: &str = r#"{"kind":"dup2","ret":9,"process":{"pid":7,"tid":7},
  "payload":{"type":"dup","new_fd":9,"fd":{"num":3,"kind":"file","name":"/tmp/x"}}}"#;
const DUP_OTHER: &str = r#"{"kind":"dup","ret":10,"process":{"pid":7,"tid":7},
  "payload":{"type":"dup","new_fd":10,"fd":{"num":3,"kind":"other","name":"anon_inode:[eventfd]"}}}"#;
const MODULE_LOAD: &str = r#"{"kind":"finit_module","process":{"pid":7,"tid":7},
  "payload":{"type":"module","name":"/lib/modules/x.ko"}}"#;
const FAILED_MEMFD: &str = r#"{"kind":"memfd_create","ret":-24,"process":{"pid":7,"tid":7},
  "payload":{"type":"memfd","name":"x","flags":0}}"#;
const SETUID: &str = r#"{"kind":"setuid","process":{"pid":7,"tid":7},
  "payload":{"type":"set_id","id":0}}"#;
const BPF: &str = r#"{"kind":"bpf","ret":3,"process":{"pid":7,"tid":7},
  "payload":{"type":"bpf","cmd":5}}"#;

/// An open of `kind` with `flags` and `mode` returning `ret`.
fn open(kind: &str, flags: u32, mode: u32, ret: i64) -> String {
    format!(
        r#"{{"kind":"{kind}","ret":{ret},"process":{{"pid":7,"tid":7}},
  "payload":{{"type":"open","fd":{{"num":{ret},"kind":"file","name":"/tmp/f"}},
    "flags":{flags},"mode":{mode}}}}}"#
    )
}

/// A successful openat with `flags` whose file the kernel did or did not mark created.
fn created_open(flags: u32, created: bool) -> String {
    format!(
        r#"{{"kind":"openat","ret":3,"process":{{"pid":7,"tid":7}},
  "opened_file":{{"dev":2049,"ino":12,"created":{created}}},
  "payload":{{"type":"open","fd":{{"num":3,"kind":"file","name":"/tmp/f"}},
    "flags":{flags},"mode":420}}}}"#
    )
}

#[test]
fn category_and_type_is_follow_the_event_table() {
    check_fires(&[
        ("evt.category = process", EXEC, true),
        ("evt.category = process", EXIT, true),
        ("evt.category = file", THREAD_OPEN, true),
        ("evt.category = net", FAILED_CONNECT, true),
        ("evt.category = user", SETUID, true),
        ("evt.category = memory", FAILED_MEMFD, true),
        ("evt.category = other", BPF, true),
        ("evt.category = other", MODULE_LOAD, true),
        // I/O calls take the descriptor's subcategory.
        ("evt.category = net", SEND_IPV4, true),
        ("evt.category = ipc", SEND_UNIX, true),
        ("evt.category = file", DUP_FILE, true),
        // An 'other' descriptor may be ipc (eventfd) or unknown (eventpoll): absent.
        ("evt.category exists", DUP_OTHER, false),
        ("evt.type.is.execve = 1", EXEC, true),
        ("evt.type.is.open = 0", THREAD_OPEN, true),
        ("evt.type.is.openat = 1", THREAD_OPEN, true),
        ("evt.type.is[openat] = 1", THREAD_OPEN, true),
    ]);
}

#[test]
fn io_direction_and_buffer_lengths() {
    check_fires(&[
        ("evt.io_dir = write", SEND_IPV4, true),
        ("evt.io_dir = read", MODULE_LOAD, true),
        ("evt.io_dir exists", EXEC, false),
        (
            "evt.is_io_read = true and evt.is_io = true",
            MODULE_LOAD,
            true,
        ),
        ("evt.is_io_read = false", SEND_IPV4, true),
        ("evt.buflen = 42", SEND_IPV4, true),
        ("evt.buflen.out = 42", SEND_IPV4, true),
        (
            "evt.buflen.net = 42 and evt.buflen.net.out = 42",
            SEND_IPV4,
            true,
        ),
        ("evt.buflen.file exists", SEND_IPV4, false),
        // A Unix socket is neither a file nor an IP socket.
        ("evt.buflen = 12", SEND_UNIX, true),
        (
            "evt.buflen.net exists or evt.buflen.file exists",
            SEND_UNIX,
            false,
        ),
        // A dup reports its new descriptor; it writes nothing.
        ("evt.buflen = 9 and evt.buflen.file = 9", DUP_FILE, true),
        (
            "evt.buflen.out exists or evt.buflen.file.out exists",
            DUP_FILE,
            false,
        ),
        // Negative returns and calls outside the I/O categories have none.
        ("evt.buflen exists", FAILED_SEND, false),
        ("evt.buflen exists", THREAD_OPEN, false),
        // No observed call reads into a buffer.
        ("evt.buflen.in exists", SEND_IPV4, false),
    ]);
}

#[test]
fn counters_count_failures_by_family() {
    check_fires(&[
        ("evt.count = 1", EXEC, true),
        ("evt.count.error = 0", EXEC, true),
        ("evt.count.error = 1", FAILED_EXEC, true),
        // procexit has no return value.
        ("evt.count.error exists", EXIT, false),
        ("evt.count.exit = 1", EXEC, true),
        ("evt.count.exit exists", EXIT, false),
        (
            "evt.count.procinfo = 0 and evt.count.threadinfo = 0",
            EXEC,
            true,
        ),
        // A failed open has no descriptor: a file error by its call.
        ("evt.count.error.file = 1", FAILED_OPEN, true),
        (
            "evt.count.error.net exists or evt.count.error.other exists",
            FAILED_OPEN,
            false,
        ),
        ("evt.count.error.file = 0", THREAD_OPEN, true),
        // A socket's errors are network errors.
        ("evt.count.error.net = 1", FAILED_CONNECT, true),
        ("evt.count.error.net = 1", FAILED_SEND, true),
        ("evt.count.error.file exists", FAILED_CONNECT, false),
        ("evt.count.error.net = 0", SEND_UNIX, true),
        // memfd_create is the memory category, not 'other'.
        ("evt.count.error.memory = 1", FAILED_MEMFD, true),
        ("evt.count.error.other exists", FAILED_MEMFD, false),
        ("evt.count.error.memory exists", EXEC, false),
        // Calls without a descriptor of another family.
        ("evt.count.error.other = 1", FAILED_EXEC, true),
        ("evt.count.error.other = 0", DUP_OTHER, true),
        ("evt.count.error.other exists", DUP_FILE, false),
    ]);
}

#[test]
fn open_flags_as_libsinsp_reads_them() {
    const O_WRONLY_CREAT: u32 = 0o101;
    const O_TMPFILE_RDWR: u32 = 0o20200002;
    check_fires(&[
        // O_TMPFILE always creates when it succeeds.
        (
            "evt.is_open_create = true",
            &open("openat", O_TMPFILE_RDWR, 0o600, 3),
            true,
        ),
        (
            "evt.is_open_create = false",
            &open("openat", O_TMPFILE_RDWR, 0o600, -95),
            true,
        ),
        (
            "evt.is_open_exec = true",
            &open("openat", O_TMPFILE_RDWR, 0o755, 3),
            true,
        ),
        // Without O_CREAT nothing is created.
        ("evt.is_open_create = false", &open("open", 0, 0, 3), true),
        // With O_CREAT it is the kernel's FMODE_CREATED, which the sensor reads from the new
        // descriptor's file; a recording without it does not say.
        (
            "evt.is_open_create exists",
            &open("openat", O_WRONLY_CREAT, 0o644, 3),
            false,
        ),
        (
            "evt.is_open_create = true",
            &created_open(O_WRONLY_CREAT, true),
            true,
        ),
        (
            "evt.is_open_create = false",
            &created_open(O_WRONLY_CREAT, false),
            true,
        ),
        // A failed open created nothing.
        (
            "evt.is_open_create = false",
            &open("openat", O_WRONLY_CREAT, 0o644, -13),
            true,
        ),
        // libsinsp does not read creat's flags: neither a read, a write nor a create.
        (
            "evt.is_open_create = false",
            &open("creat", O_WRONLY_CREAT, 0o644, 3),
            true,
        ),
        (
            "evt.is_open_write = false",
            &open("creat", O_WRONLY_CREAT, 0o644, 3),
            true,
        ),
        (
            "evt.is_open_exec = true",
            &open("creat", O_WRONLY_CREAT, 0o700, 3),
            true,
        ),
        (
            "evt.is_open_write = true",
            &open("openat", O_WRONLY_CREAT, 0o644, 3),
            true,
        ),
        ("evt.is_open_create exists", EXEC, false),
    ]);
}

#[test]
fn deprecated_timing_fields_are_libsinsp_constants() {
    check_fires(&[
        (
            "evt.latency = 0 and evt.latency.s = 0 and evt.latency.ns = 0",
            EXEC,
            true,
        ),
        (
            "evt.latency.quantized = 0 and evt.wait_latency = 0",
            EXEC,
            true,
        ),
        ("evt.latency.human = 0ns", EXEC, true),
        ("evt.outputtime = 22:13:22.500000000", EXEC, true),
    ]);
}

#[test]
fn table_only_thread_fields() {
    check_fires(&[
        ("thread.nametid = miner42", EXEC, true),
        ("thread.nametid = worker43", THREAD_OPEN, true),
        (
            "thread.vmsize.b = 9216000 and thread.vmrss.b = 2150400",
            EXEC,
            true,
        ),
        // Not the main thread: 0, as thread.vmsize.
        ("thread.vmsize.b = 0", THREAD_OPEN, true),
        ("thread.vmsize.b exists", FAILED_EXEC, false),
    ]);
}

#[test]
fn classes_the_sensor_cannot_supply_load_and_are_absent() {
    check_fires(&[
        (
            "syslog.message exists or syslog.severity exists",
            SEND_UNIX,
            false,
        ),
        ("syslog.facility.str = auth", SEND_UNIX, false),
        ("not syslog.message contains x", SEND_UNIX, true),
        (
            "fdlist.nums exists or fdlist.names exists",
            SEND_IPV4,
            false,
        ),
        (
            "fdlist.cports exists or fdlist.sips exists",
            SEND_IPV4,
            false,
        ),
        (
            "mesos.task.name exists or mesos.task.label.app exists",
            EXEC,
            false,
        ),
        (
            "marathon.app.label.team = x or marathon.group.id exists",
            EXEC,
            false,
        ),
        ("evt.infra.docker.name exists", EXEC, false),
    ]);
}

/// `fd.types` lists the types of the process's whole descriptor table, which the sensor does
/// not keep: absent, never just the event's own descriptor. `fd.types[N]` for the standard
/// descriptors is what the probes read of them, on calls with a descriptor.
#[test]
fn the_descriptor_table_list_is_absent_and_the_standard_descriptors_are_read() {
    // A dup2 of a connected socket onto descriptor 1 (a reverse shell's redirection), with
    // descriptor 0 a pipe and 2 closed when the kernel reported it.
    let redirected = r#"{"kind":"dup2","ret":1,"process":{"pid":7,"tid":7,
      "std_fds":["pipe","ipv4",null]},
      "payload":{"type":"dup","fd":{"num":5,"kind":"ipv4"},"new_fd":1}}"#;
    let exec = r#"{"kind":"execve","process":{"pid":7,"tid":7,"std_fds":["ipv6","unix","file"]}}"#;
    check_fires(&[
        ("fd.types exists or fd.types[0] exists", SEND_IPV4, false),
        ("fd.types intersects (ipv4)", SEND_IPV4, false),
        ("fd.type = ipv4", SEND_IPV4, true),
        (
            "fd.types[1] in (ipv4, ipv6) and fd.types[0] = pipe",
            redirected,
            true,
        ),
        (
            "fd.types[2] exists or fd.types[3] exists or fd.types exists",
            redirected,
            false,
        ),
        // fd.types needs a call with a descriptor; proc.std*.type does not.
        ("fd.types[0] exists", exec, false),
        (
            "proc.stdin.type = ipv6 and proc.stdout.type = unix and proc.stderr.type = file",
            exec,
            true,
        ),
        ("proc.stderr.type exists", redirected, false),
        ("proc.stdin.type exists", SEND_IPV4, false),
        ("proc.stdin.name exists", exec, false),
    ]);
}
