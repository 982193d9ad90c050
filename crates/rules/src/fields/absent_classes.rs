//! Field classes of libsinsp's syscall source that the sensor cannot supply, kept as known
//! names so that users' rules load unchanged: every check on them is false, as on an absent
//! field in Falco. Each row's description says why.
//!
//! - `syslog.*` decode the message a process writes to `/dev/log`, which needs the written
//!   data; the sensor does not copy I/O buffers (`evt.buffer` is absent for the same reason).
//! - `fdlist.*` list the descriptors of a `poll`/`ppoll` call, which the sensor does not
//!   observe (libsinsp extracts them for no other call).
//! - `mesos.*` and `marathon.*` are deprecated libsinsp fields read from a Mesos master,
//!   which Palisade does not query (Falco itself no longer builds them).

use super::{ArgSpec, FieldDef, FieldType, not_observed};

/// Why each class is absent.
macro_rules! reason {
    (syslog) => {
        "absent: decoding a syslog message needs the data written to /dev/log, which the \
         sensor does not copy"
    };
    (fdlist) => {
        "absent: poll and ppoll, the only calls that carry a descriptor list, are not observed"
    };
    (mesos) => {
        "absent: deprecated, read from a Mesos master, which Palisade does not query"
    };
}

macro_rules! absent {
    ($name:literal, $ty:ident, $arg:ident, $what:literal, $class:ident) => {
        not_observed(
            $name,
            FieldType::$ty,
            ArgSpec::$arg,
            concat!($what, " (", reason!($class), ")"),
        )
    };
}

pub(super) static FIELDS: &[FieldDef] = &[
    absent!(
        "syslog.facility.str",
        Str,
        None,
        "Syslog facility as text",
        syslog
    ),
    absent!(
        "syslog.facility",
        Int,
        None,
        "Syslog facility, 0-23",
        syslog
    ),
    absent!(
        "syslog.severity.str",
        Str,
        None,
        "Syslog severity as text (emerg ... debug)",
        syslog
    ),
    absent!("syslog.severity", Int, None, "Syslog severity, 0-7", syslog),
    absent!("syslog.message", Str, None, "Syslog message", syslog),
    absent!(
        "fdlist.nums",
        Str,
        None,
        "Descriptor numbers of a poll call, comma-separated",
        fdlist
    ),
    absent!(
        "fdlist.names",
        Str,
        None,
        "Descriptor names of a poll call, comma-separated",
        fdlist
    ),
    absent!(
        "fdlist.cips",
        Str,
        None,
        "Client addresses of a poll call's sockets",
        fdlist
    ),
    absent!(
        "fdlist.sips",
        Str,
        None,
        "Server addresses of a poll call's sockets",
        fdlist
    ),
    absent!(
        "fdlist.cports",
        Str,
        None,
        "Client ports of a poll call's sockets",
        fdlist
    ),
    absent!(
        "fdlist.sports",
        Str,
        None,
        "Server ports of a poll call's sockets",
        fdlist
    ),
    absent!("mesos.task.name", Str, None, "Mesos task name", mesos),
    absent!("mesos.task.id", Str, None, "Mesos task id", mesos),
    absent!(
        "mesos.task.label",
        Str,
        Key,
        "A Mesos task label (mesos.task.label.KEY)",
        mesos
    ),
    absent!("mesos.task.labels", Str, None, "Mesos task labels", mesos),
    absent!(
        "mesos.framework.name",
        Str,
        None,
        "Mesos framework name",
        mesos
    ),
    absent!("mesos.framework.id", Str, None, "Mesos framework id", mesos),
    absent!("marathon.app.name", Str, None, "Marathon app name", mesos),
    absent!("marathon.app.id", Str, None, "Marathon app id", mesos),
    absent!(
        "marathon.app.label",
        Str,
        Key,
        "A Marathon app label (marathon.app.label.KEY)",
        mesos
    ),
    absent!(
        "marathon.app.labels",
        Str,
        None,
        "Marathon app labels",
        mesos
    ),
    absent!(
        "marathon.group.name",
        Str,
        None,
        "Marathon group name",
        mesos
    ),
    absent!("marathon.group.id", Str, None, "Marathon group id", mesos),
];
