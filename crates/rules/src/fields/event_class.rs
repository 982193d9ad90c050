//! The rest of libsinsp's syscall `evt.*` class: the event's category, `evt.type.is`, the
//! I/O direction and buffer lengths, the chisel counters (`evt.count*`), the creation test of
//! an open, and the timing fields libsinsp keeps only for compatibility. Each follows
//! `sinsp_filtercheck_event.cpp` and the driver's event table (categories and I/O flags) for
//! the calls the sensor reports; what it cannot know extracts as absent, with the reason in
//! the row's description.

use std::borrow::Cow;

use palisade_event::{Event, EventKind, FdKind};

use super::{
    ArgSpec, FieldArg, FieldDef, FieldType, IO_READS, IO_WRITES, K, KindSet, O_CREAT, OPEN, Value,
    event_fd, open_flags, thread_memory, time_of_day,
};

/// Every system call kind: these fields belong to the syscall source, not to audit events.
const SYSCALLS: KindSet = KindSet(KindSet::of(&[K::K8sAudit]).0 ^ u64::MAX);
/// Calls whose exit record has no return value (libsinsp's procexit is an enter event).
const NO_RETURN: KindSet = KindSet::of(&[K::Procexit]);
/// The observed calls of the event table's I/O categories: `EC_IO_WRITE` (sendto, sendmsg)
/// and `EC_IO_OTHER` (the dups).
const IO_CATEGORY: KindSet = KindSet::of(&[K::Sendto, K::Sendmsg, K::Dup, K::Dup2, K::Dup3]);
/// Opens libsinsp reads flags from for `evt.is_open_*` (creat is not one of them).
const FLAGGED_OPENS: KindSet = KindSet::of(&[K::Open, K::Openat, K::Openat2]);
/// `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`).
const O_TMPFILE: u32 = 0o20200000;

/// The `evt.deltatime` fields' values depend on the check that reads them, which keeps the
/// previous event's time (`compile::FieldRef`); the event alone gives none.
fn time_read_by_the_check<'e>(_: &'e Event, _: &FieldArg) -> Option<Value<'e>> {
    None
}

/// For an `evt.deltatime` field, the part of the time since the previous event it gives
/// (whole, seconds, nanoseconds within the second, as libsinsp); `None` for other fields.
pub(crate) fn time_since_previous_part(name: &str) -> Option<fn(u64) -> u64> {
    match name {
        "evt.deltatime" => Some(|elapsed_ns| elapsed_ns),
        "evt.deltatime.s" => Some(|elapsed_ns| elapsed_ns / 1_000_000_000),
        "evt.deltatime.ns" => Some(|elapsed_ns| elapsed_ns % 1_000_000_000),
        _ => None,
    }
}

/// The event's category as libsinsp names it (`evt.category`), from the driver's event table;
/// `None` for the I/O calls on a descriptor whose kind the sensor does not tell apart.
fn category(event: &Event) -> Option<&'static str> {
    Some(match event.kind {
        K::Execve
        | K::Execveat
        | K::Clone
        | K::Clone3
        | K::Fork
        | K::Vfork
        | K::Procexit
        | K::Ptrace
        | K::Setns
        | K::Unshare
        | K::Capset
        | K::Chroot => "process",
        K::Open
        | K::Openat
        | K::Openat2
        | K::Creat
        | K::Unlink
        | K::Unlinkat
        | K::Rename
        | K::Renameat
        | K::Renameat2
        | K::Chmod
        | K::Fchmod
        | K::Fchmodat
        | K::Chown
        | K::Lchown
        | K::Fchown
        | K::Fchownat
        | K::Link
        | K::Linkat
        | K::Symlink
        | K::Symlinkat
        | K::Mkdir
        | K::Mkdirat
        | K::Mount
        | K::Umount
        | K::Umount2 => "file",
        K::Socket | K::Connect | K::Accept | K::Accept4 | K::Bind | K::Listen => "net",
        K::Setuid | K::Setgid | K::Setresuid | K::Setresgid => "user",
        K::MemfdCreate => "memory",
        K::InitModule | K::FinitModule | K::DeleteModule | K::Bpf => "other",
        // EC_IO_*: the subcategory of the descriptor's type.
        K::Sendto | K::Sendmsg | K::Dup | K::Dup2 | K::Dup3 => match event_fd(event) {
            None => "unknown",
            Some(fd) => match fd.kind {
                FdKind::File | FdKind::Directory => "file",
                FdKind::Ipv4 | FdKind::Ipv6 => "net",
                FdKind::Unix | FdKind::Pipe => "ipc",
                FdKind::Netlink | FdKind::Memfd => "unknown",
                // eventfd, signalfd and inotify are "ipc", eventpoll and timerfd "unknown":
                // the sensor's kind does not say which.
                FdKind::Other => return None,
            },
        },
        // Audit events, and kinds this table does not know yet (the unit test lists them).
        _ => return None,
    })
}

/// The descriptor libsinsp attaches to the event (`sinsp_evt::get_fd_info`): the one the
/// call used, or the one it created when it succeeded. The module file of `finit_module`
/// and the target of `fchmod`, `fchown` and `setns` are files.
fn fd_info_kind(event: &Event) -> Option<FdKind> {
    match event.kind {
        K::Open | K::Openat | K::Openat2 | K::Creat | K::Accept | K::Accept4 => {
            (event.ret >= 0).then(|| event_fd(event).map(|fd| fd.kind))?
        }
        K::MemfdCreate => (event.ret >= 0).then_some(FdKind::Memfd),
        K::Fchmod | K::Fchown | K::Setns | K::FinitModule => Some(FdKind::File),
        _ => event_fd(event).map(|fd| fd.kind),
    }
}

fn is_file(kind: FdKind) -> bool {
    matches!(kind, FdKind::File | FdKind::Directory)
}

fn is_network(kind: FdKind) -> bool {
    matches!(kind, FdKind::Ipv4 | FdKind::Ipv6 | FdKind::Unix)
}

/// libsinsp's `extract_error_count`: 1 when the call failed, 0 when it did not, absent
/// without a return value.
fn error_count<'e>(event: &Event) -> Option<Value<'e>> {
    (!NO_RETURN.contains(event.kind)).then_some(Value::Int(i64::from(event.ret < 0)))
}

/// `evt.count.error.file`, `.net`, `.other`: the error count of the events of one family,
/// decided by the attached descriptor's type or, without one, by the call.
fn family_error_count<'e>(event: &Event, family: ErrorFamily) -> Option<Value<'e>> {
    let belongs = match (fd_info_kind(event), family) {
        (Some(kind), ErrorFamily::File) => is_file(kind),
        (Some(kind), ErrorFamily::Net) => is_network(kind),
        (Some(kind), ErrorFamily::Other) => !is_file(kind) && !is_network(kind),
        (None, ErrorFamily::File) => OPEN.contains(event.kind),
        (None, ErrorFamily::Net) => {
            matches!(event.kind, K::Accept | K::Accept4 | K::Connect)
        }
        (None, ErrorFamily::Other) => {
            !OPEN.contains(event.kind)
                && !matches!(
                    event.kind,
                    K::Accept | K::Accept4 | K::Connect | K::MemfdCreate
                )
        }
    };
    if belongs { error_count(event) } else { None }
}

#[derive(Clone, Copy)]
enum ErrorFamily {
    File,
    Net,
    Other,
}

/// Which I/O events a buffer length is reported for.
#[derive(Clone, Copy)]
enum BufferScope {
    Any,
    Out,
    File,
    FileOut,
    Net,
    NetOut,
}

/// `evt.buflen*`: the exit's return value (bytes written; the new descriptor of a dup) for
/// the I/O calls with a descriptor, when it is not negative and the scope holds.
fn buffer_length<'e>(event: &Event, scope: BufferScope) -> Option<Value<'e>> {
    if !IO_CATEGORY.contains(event.kind) || event.ret < 0 {
        return None;
    }
    let kind = event_fd(event)?.kind;
    let writes = IO_WRITES.contains(event.kind);
    let file = kind == FdKind::File;
    let net = matches!(kind, FdKind::Ipv4 | FdKind::Ipv6);
    let holds = match scope {
        BufferScope::Any => true,
        BufferScope::Out => writes,
        BufferScope::File => file,
        BufferScope::FileOut => file && writes,
        BufferScope::Net => net,
        BufferScope::NetOut => net && writes,
    };
    holds.then_some(Value::Int(event.ret))
}

/// `evt.is_open_create`: true when the open created the file, as libsinsp decides it. A
/// successful `O_TMPFILE` open always does and an open without `O_CREAT` never does; with
/// `O_CREAT` a successful open did when the kernel marked its file `FMODE_CREATED` (the
/// driver's `PPM_O_F_CREATED`), which the sensor reads from the new descriptor's file: absent
/// when the source did not read it.
fn open_created<'e>(event: &Event) -> Option<Value<'e>> {
    if !FLAGGED_OPENS.contains(event.kind) {
        return Some(Value::Bool(false));
    }
    let flags = open_flags(event)?;
    if flags & O_TMPFILE == O_TMPFILE {
        return Some(Value::Bool(event.ret >= 0));
    }
    if flags & O_CREAT == 0 || event.ret < 0 {
        return Some(Value::Bool(false));
    }
    event.opened_file?.created.map(Value::Bool)
}

fn times_1024<'e>(value: Option<Value<'e>>) -> Option<Value<'e>> {
    match value? {
        Value::Int(kb) => Some(Value::Int(kb * 1024)),
        other => Some(other),
    }
}

macro_rules! constant {
    ($name:literal, $desc:literal, $value:expr) => {
        field!($name, Int, None, SYSCALLS, $desc, |_, _| Some($value))
    };
}

macro_rules! buflen {
    ($name:literal, $desc:literal, $scope:expr) => {
        field!($name, Int, None, IO_CATEGORY, $desc, |e, _| buffer_length(
            e, $scope
        ))
    };
}

macro_rules! absent {
    ($name:literal, $ty:ident, $arg:ident, $desc:literal) => {
        super::not_observed($name, FieldType::$ty, ArgSpec::$arg, $desc)
    };
}

pub(super) static FIELDS: &[FieldDef] = &[
    field!(
        "evt.category",
        Str,
        None,
        SYSCALLS,
        "Event category from the driver's event table (file, net, process, user, memory, \
         other); for I/O calls (sendto, sendmsg, dup*) the descriptor's: file, net, ipc or \
         unknown. Absent for a descriptor the sensor types only as 'other' (eventfd, signalfd \
         and inotify are ipc in libsinsp, eventpoll and timerfd unknown)",
        |e, _| category(e).map(|name| Value::Str(Cow::Borrowed(name)))
    ),
    field!(
        "evt.type.is",
        Int,
        Key,
        SYSCALLS,
        "1 when the event is of the named type (evt.type.is.open), else 0",
        |e, a| match a {
            FieldArg::Key(name) => Some(Value::Int(i64::from(e.kind.as_str() == name))),
            _ => None,
        }
    ),
    field!(
        "evt.io_dir",
        Str,
        None,
        KindSet(IO_WRITES.0 | IO_READS.0),
        "'write' for calls that write through a descriptor (sendto, sendmsg), 'read' for \
         those that read through one (finit_module reads the module file); absent for others",
        |e, _| Some(Value::Str(Cow::Borrowed(if IO_WRITES.contains(e.kind) {
            "write"
        } else if IO_READS.contains(e.kind) {
            "read"
        } else {
            return None;
        })))
    ),
    buflen!(
        "evt.buflen",
        "Return value of an I/O call with a descriptor (sendto, sendmsg: bytes sent; dup*: \
         the new descriptor), as libsinsp reports it; absent when negative",
        BufferScope::Any
    ),
    buflen!(
        "evt.buflen.out",
        "evt.buflen of the calls that write (sendto, sendmsg)",
        BufferScope::Out
    ),
    buflen!(
        "evt.buflen.file",
        "evt.buflen when the descriptor is a file",
        BufferScope::File
    ),
    buflen!(
        "evt.buflen.file.out",
        "evt.buflen of a write to a file",
        BufferScope::FileOut
    ),
    buflen!(
        "evt.buflen.net",
        "evt.buflen when the descriptor is an IPv4 or IPv6 socket",
        BufferScope::Net
    ),
    buflen!(
        "evt.buflen.net.out",
        "evt.buflen of a write to an IPv4 or IPv6 socket",
        BufferScope::NetOut
    ),
    absent!(
        "evt.buflen.in",
        Int,
        None,
        "evt.buflen of the calls that read (absent: none of the observed calls is in the \
         driver's read category)"
    ),
    absent!(
        "evt.buflen.file.in",
        Int,
        None,
        "evt.buflen of a read from a file (absent, as evt.buflen.in)"
    ),
    absent!(
        "evt.buflen.net.in",
        Int,
        None,
        "evt.buflen of a read from a socket (absent, as evt.buflen.in)"
    ),
    constant!("evt.count", "Always 1", Value::Int(1)),
    field!(
        "evt.count.error",
        Int,
        None,
        SYSCALLS,
        "1 when the call failed, 0 when not; absent for procexit, which has no return value",
        |e, _| error_count(e)
    ),
    field!(
        "evt.count.error.file",
        Int,
        None,
        SYSCALLS,
        "evt.count.error for file events: a file or directory descriptor, or an open without \
         one (it failed); absent for other events",
        |e, _| family_error_count(e, ErrorFamily::File)
    ),
    field!(
        "evt.count.error.net",
        Int,
        None,
        SYSCALLS,
        "evt.count.error for network events: an IP or Unix socket descriptor, or accept and \
         connect without one; absent for other events",
        |e, _| family_error_count(e, ErrorFamily::Net)
    ),
    field!(
        "evt.count.error.memory",
        Int,
        None,
        SYSCALLS,
        "evt.count.error for the memory category (memfd_create); absent for other events",
        |e, _| (e.kind == EventKind::MemfdCreate)
            .then(|| error_count(e))
            .flatten()
    ),
    field!(
        "evt.count.error.other",
        Int,
        None,
        SYSCALLS,
        "evt.count.error for the events that are neither file, network nor memory events; \
         absent for those",
        |e, _| family_error_count(e, ErrorFamily::Other)
    ),
    field!(
        "evt.count.exit",
        Int,
        None,
        SYSCALLS,
        "1 for exit events: every report but procexit, which libsinsp reads as an enter \
         event (absent there)",
        |e, _| (!NO_RETURN.contains(e.kind)).then_some(Value::Int(1))
    ),
    constant!(
        "evt.count.procinfo",
        "0: libsinsp counts only its procinfo events, which are not system calls",
        Value::Int(0)
    ),
    constant!(
        "evt.count.threadinfo",
        "0, as evt.count.procinfo",
        Value::Int(0)
    ),
    constant!(
        "evt.latency",
        "0, as libsinsp gives this deprecated field since it stopped pairing enter and exit \
         events",
        Value::Int(0)
    ),
    constant!("evt.latency.s", "0, as evt.latency", Value::Int(0)),
    constant!("evt.latency.ns", "0, as evt.latency", Value::Int(0)),
    constant!("evt.latency.quantized", "0, as evt.latency", Value::Int(0)),
    field!(
        "evt.latency.human",
        Str,
        None,
        SYSCALLS,
        "'0ns', as libsinsp gives this deprecated field",
        |_, _| Some(Value::Str(Cow::Borrowed("0ns")))
    ),
    constant!(
        "evt.wait_latency",
        "0, as libsinsp gives this deprecated field",
        Value::Int(0)
    ),
    field!(
        "evt.deltatime",
        Int,
        None,
        SYSCALLS,
        "Nanoseconds since the previous event that the same check read, 0 for its first, \
         as libsinsp keeps the previous time in each filter check: a check of a condition \
         reads the events of the rule's types that reach it (a rule's checks are evaluated \
         in the order written, each rule its own), an output placeholder the rule's alerts; \
         0 for an event older than the previous one",
        time_read_by_the_check
    ),
    field!(
        "evt.deltatime.s",
        Int,
        None,
        SYSCALLS,
        "Whole seconds of evt.deltatime",
        time_read_by_the_check
    ),
    field!(
        "evt.deltatime.ns",
        Int,
        None,
        SYSCALLS,
        "Nanoseconds part of evt.deltatime",
        time_read_by_the_check
    ),
    field!(
        "evt.around",
        Int,
        Key,
        SYSCALLS,
        "evt.around[T]=D holds for the events within D milliseconds of the time T \
         (nanoseconds since the epoch, as evt.rawtime), both ends included, as libsinsp; \
         '=' is its only operator. A filter field: as an output placeholder it prints <NA>, \
         as in Falco",
        |_, _| None
    ),
    field!(
        "evt.outputtime",
        Str,
        None,
        SYSCALLS,
        "The event time as Falco prints it by default: evt.time",
        |e, _| Some(Value::Str(Cow::Owned(time_of_day(e.timestamp_ns))))
    ),
    field!(
        "evt.is_open_create",
        Bool,
        None,
        OPEN,
        "The open created the file: true for a successful O_TMPFILE open and for a \
         successful O_CREAT open whose file the kernel marked FMODE_CREATED (read by the \
         kernel probes from the new descriptor, as Falco's driver sets PPM_O_F_CREATED); \
         false otherwise, for failed opens and for creat (as libsinsp); absent for an \
         O_CREAT open in recordings made before the sensor read it",
        |e, _| open_created(e)
    ),
    absent!(
        "evt.infra.docker.name",
        Str,
        None,
        "Docker infrastructure event name (absent: those are sysdig's events, not system calls)"
    ),
    absent!(
        "evt.infra.docker.container.id",
        Str,
        None,
        "Container of a docker infrastructure event (absent, as evt.infra.docker.name)"
    ),
    absent!(
        "evt.infra.docker.container.name",
        Str,
        None,
        "Container name of a docker infrastructure event (absent, as evt.infra.docker.name)"
    ),
    absent!(
        "evt.infra.docker.container.image",
        Str,
        None,
        "Container image of a docker infrastructure event (absent, as evt.infra.docker.name)"
    ),
    field!(
        "thread.nametid",
        Str,
        None,
        SYSCALLS,
        "proc.name followed by thread.tid, as libsinsp chains them",
        |e, _| Some(Value::Str(Cow::Owned(format!(
            "{}{}",
            e.process.name, e.process.tid
        ))))
    ),
    field!(
        "thread.vmsize.b",
        Int,
        None,
        SYSCALLS,
        "thread.vmsize in bytes",
        |e, _| times_1024(thread_memory(e, |r| r.vm_size_kb))
    ),
    field!(
        "thread.vmrss.b",
        Int,
        None,
        SYSCALLS,
        "thread.vmrss in bytes",
        |e, _| times_1024(thread_memory(e, |r| r.vm_rss_kb))
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_event::{Fd, Payload};

    #[test]
    fn every_observed_call_has_a_category_row() {
        for kind in EventKind::ALL {
            let event = Event::new(*kind);
            if *kind != K::K8sAudit && !IO_CATEGORY.contains(*kind) {
                assert!(category(&event).is_some(), "{kind:?}");
            }
        }
        let mut send = Event::new(K::Sendto);
        send.payload = Payload::Network {
            fd: Fd {
                num: 3,
                kind: FdKind::Ipv4,
                name: String::new(),
                socket: None,
            },
        };
        assert_eq!(category(&send), Some("net"));
    }
}
