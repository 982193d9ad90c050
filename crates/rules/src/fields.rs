//! The field table: every field a condition or output may use, its type, which event kinds
//! supply it, and how to extract it from a [`palisade_event::Event`].
//!
//! The table is data, not code paths: adding a field (or a source such as Kubernetes audit
//! `ka.*`) is one more [`FieldDef`] row. A field that no event kind supplies yet is still
//! listed, so that Falco rules using it load; it then extracts as absent, and a check on an
//! absent field is false, as in Falco.

use std::borrow::Cow;
use std::net::IpAddr;

use palisade_event::{
    Event, EventKind, Fd, FdKind, K8sMeta, K8sObject, OverlayLayer, Payload, Protocol, Socket,
    TaskResources,
};

/// The type of a field's values, which decides how literal values are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    /// Text.
    Str,
    /// A signed integer (pids, ports, times in nanoseconds, ...).
    Int,
    /// A floating-point number (libsinsp's `PT_DOUBLE`: `proc.fdusage`).
    Double,
    /// `true` / `false`.
    Bool,
    /// An IP address; literals may also be CIDR networks (matching addresses inside).
    Ip,
    /// An IP address compared against CIDR networks (`fd.net = 10.0.0.0/8`).
    IpNet,
}

/// Whether and how a field takes a `[argument]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgSpec {
    /// No argument.
    None,
    /// An optional numeric index (`proc.aname`, `proc.aname[2]`).
    OptionalIndex,
    /// A required key, which may also follow a dot (`evt.arg.flags`, `evt.arg[flags]`).
    Key,
    /// An optional key (`proc.env` is the whole environment, `proc.env[HOME]` one variable).
    OptionalKey,
    /// A required key that is a number (an index) or else a path glob, compiled once with the
    /// rule (`container.mount[0]`, `container.mount.dest[/var/lib/*]`).
    IndexOrGlob,
}

/// A field argument after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum FieldArg {
    None,
    Index(usize),
    Key(String),
    Glob(PathGlob),
}

/// A glob over paths as libsinsp's `glob_match` reads one (fnmatch without `FNM_PATHNAME`:
/// `*` crosses `/`), compiled when the rule is; a pattern globset cannot compile (an
/// unclosed `[`) matches itself literally, as fnmatch takes such a bracket.
#[derive(Debug, Clone)]
pub(crate) struct PathGlob {
    pattern: String,
    matcher: globset::GlobMatcher,
}

impl PathGlob {
    pub(crate) fn new(pattern: &str) -> PathGlob {
        let build = |pattern: &str| {
            globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
        };
        let glob = build(pattern)
            .or_else(|_| build(&globset::escape(pattern)))
            .unwrap_or_else(|_| globset::Glob::new("").expect("the empty glob compiles"));
        PathGlob {
            pattern: pattern.to_owned(),
            matcher: glob.compile_matcher(),
        }
    }

    pub(crate) fn is_match(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

/// Two globs are the same argument when their patterns are.
impl PartialEq for PathGlob {
    fn eq(&self, other: &PathGlob) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for PathGlob {}

impl std::hash::Hash for PathGlob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
    }
}

/// An extracted value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'e> {
    Str(Cow<'e, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    Ip(IpAddr),
    /// Several values; a check holds when it holds for any of them.
    Strs(Vec<Cow<'e, str>>),
    /// Several addresses; a check holds when it holds for any of them.
    Ips(Vec<IpAddr>),
}

impl Value<'_> {
    /// The value as output templates print it.
    pub fn render(&self) -> String {
        match self {
            Value::Str(text) => text.to_string(),
            Value::Int(number) => number.to_string(),
            // libsinsp prints a double with one decimal ("%.1lf").
            Value::Double(number) => format!("{number:.1}"),
            Value::Bool(flag) => flag.to_string(),
            Value::Ip(address) => address.to_string(),
            Value::Strs(items) => items.join(","),
            Value::Ips(addresses) => addresses
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// A set of event kinds as a bit mask indexed by [`EventKind::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KindSet(pub u64);

impl KindSet {
    pub const ALL: KindSet = KindSet(u64::MAX);
    pub const NONE: KindSet = KindSet(0);

    pub const fn of(kinds: &[EventKind]) -> KindSet {
        let mut bits = 0u64;
        let mut index = 0;
        while index < kinds.len() {
            bits |= 1 << (kinds[index] as usize);
            index += 1;
        }
        KindSet(bits)
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    pub fn union(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    pub fn intersect(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    pub fn complement(self) -> KindSet {
        KindSet(!self.0 & KindSet::every_kind().0)
    }

    pub fn every_kind() -> KindSet {
        KindSet(if EventKind::ALL.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << EventKind::ALL.len()) - 1
        })
    }

    pub fn kinds(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL
            .iter()
            .copied()
            .filter(move |kind| self.contains(*kind))
    }
}

use EventKind as K;

const OPEN: KindSet = KindSet::of(&[K::Open, K::Openat, K::Openat2, K::Creat]);
/// The observed calls libsinsp flags as writing through a descriptor (`EF_WRITES_TO_FD`).
const IO_WRITES: KindSet = KindSet::of(&[K::Sendto, K::Sendmsg]);
/// The observed calls libsinsp flags as reading through a descriptor (`EF_READS_FROM_FD`):
/// `finit_module` reads the module file.
const IO_READS: KindSet = KindSet::of(&[K::FinitModule]);
const O_CREAT: u32 = 0o100;
/// `__O_TMPFILE`, the bit that makes `O_TMPFILE` (with `O_DIRECTORY`): it creates a file too.
const O_TMPFILE_BIT: u32 = 0o20000000;
const NET: KindSet = KindSet::of(&[
    K::Connect,
    K::Accept,
    K::Accept4,
    K::Bind,
    K::Listen,
    K::Sendto,
    K::Sendmsg,
]);
const DUP: KindSet = KindSet::of(&[K::Dup, K::Dup2, K::Dup3]);
const SOCK: KindSet = KindSet(NET.0 | DUP.0);
const FD: KindSet = KindSet(OPEN.0 | NET.0 | DUP.0 | KindSet::of(&[K::MemfdCreate]).0);
const FS_PATH: KindSet = KindSet::of(&[
    K::Unlink,
    K::Unlinkat,
    K::Mkdir,
    K::Mkdirat,
    K::Chmod,
    K::Fchmod,
    K::Fchmodat,
    K::Chown,
    K::Lchown,
    K::Fchown,
    K::Fchownat,
    K::Rename,
    K::Renameat,
    K::Renameat2,
    K::Link,
    K::Linkat,
    K::Symlink,
    K::Symlinkat,
    K::Chroot,
    K::Umount,
    K::Umount2,
    K::Mount,
]);

/// One row of the field table.
pub(crate) struct FieldDef {
    /// The Falco field name.
    pub name: &'static str,
    /// Type of the values.
    pub ty: FieldType,
    /// Argument form.
    pub arg: ArgSpec,
    /// Event kinds that supply the field; others extract it as absent.
    pub kinds: KindSet,
    /// What the field means.
    pub desc: &'static str,
    /// Extracts the value.
    pub extract: for<'e> fn(&'e Event, &FieldArg) -> Option<Value<'e>>,
}

macro_rules! field {
    ($name:literal, $ty:ident, $arg:ident, $kinds:expr, $desc:literal, $extract:expr) => {
        FieldDef {
            name: $name,
            ty: FieldType::$ty,
            arg: ArgSpec::$arg,
            kinds: $kinds,
            desc: $desc,
            extract: $extract,
        }
    };
}

/// A libsinsp field the sensor does not observe: rules using it load as in Falco, and every
/// check on it is false (an absent field fails every check).
const fn not_observed(
    name: &'static str,
    ty: FieldType,
    arg: ArgSpec,
    desc: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        ty,
        arg,
        kinds: KindSet::NONE,
        desc,
        extract: |_, _| None,
    }
}

mod absent_classes;
mod container_config;
mod event_class;
pub(crate) use event_class::time_since_previous_part;
#[cfg(test)]
mod falco_reference;

/// `<container id>:<text>`, as libsinsp's `fd.containername` and `fd.containerdirectory`
/// chain them (`host` outside containers).
fn in_container<'e>(event: &'e Event, text: &str) -> Option<Value<'e>> {
    let id = match &event.container {
        Some(container) => container.id.get(..12).unwrap_or(&container.id),
        None => "host",
    };
    owned(format!("{id}:{text}"))
}

fn s(text: &str) -> Option<Value<'_>> {
    Some(Value::Str(Cow::Borrowed(text)))
}

fn owned<'e>(text: String) -> Option<Value<'e>> {
    Some(Value::Str(Cow::Owned(text)))
}

fn int<'e>(number: impl Into<i64>) -> Option<Value<'e>> {
    Some(Value::Int(number.into()))
}

fn non_empty(text: &str) -> Option<Value<'_>> {
    (!text.is_empty()).then_some(Value::Str(Cow::Borrowed(text)))
}

fn index(arg: &FieldArg) -> Option<usize> {
    match arg {
        FieldArg::Index(index) => Some(*index),
        _ => None,
    }
}

/// The process itself (generation 0) or an ancestor (generation 1 is the parent).
struct Generation<'e> {
    pid: u32,
    name: &'e str,
    exe: &'e str,
    exepath: &'e str,
    args: &'e [String],
    start_time_ns: u64,
}

fn generation(event: &Event, generation: usize) -> Option<Generation<'_>> {
    if generation == 0 {
        let process = &event.process;
        return Some(Generation {
            pid: process.pid,
            name: &process.name,
            exe: &process.exe,
            exepath: &process.exepath,
            args: &process.args,
            start_time_ns: process.start_time_ns,
        });
    }
    let ancestor = event.ancestors.get(generation - 1)?;
    Some(Generation {
        pid: ancestor.pid,
        name: &ancestor.name,
        exe: &ancestor.exe,
        exepath: &ancestor.exepath,
        args: &ancestor.args,
        start_time_ns: ancestor.start_time_ns,
    })
}

fn cmdline(name: &str, args: &[String]) -> String {
    let mut line = name.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

/// `proc.aname`-style fields: with an index, one generation; without, every ancestor.
fn ancestry<'e>(
    event: &'e Event,
    arg: &FieldArg,
    pick: fn(&Generation<'e>) -> Value<'e>,
) -> Option<Value<'e>> {
    match index(arg) {
        Some(generation_index) => generation(event, generation_index).map(|g| pick(&g)),
        None => {
            let mut values = Vec::new();
            for generation_index in 1..=event.ancestors.len() {
                let Some(g) = generation(event, generation_index) else {
                    break;
                };
                match pick(&g) {
                    Value::Str(text) => values.push(text),
                    Value::Int(number) => values.push(Cow::Owned(number.to_string())),
                    _ => {}
                }
            }
            (!values.is_empty()).then_some(Value::Strs(values))
        }
    }
}

/// An environment as Falco's `proc.env` shows it: the entries joined by spaces; `None` when
/// none was captured.
fn joined_environment(env: &[String]) -> Option<Cow<'_, str>> {
    match env {
        [] => None,
        [only] => Some(Cow::Borrowed(only)),
        entries => Some(Cow::Owned(entries.join(" "))),
    }
}

/// The value of variable `name` (empty when the environment lacks it, as in Falco); `None`
/// when no environment was captured.
fn environment_variable<'e>(env: &'e [String], name: &str) -> Option<Cow<'e, str>> {
    (!env.is_empty()).then(|| Cow::Borrowed(variable(env, name).unwrap_or_default()))
}

/// The value of `name` in `env`, when it is set.
fn variable<'e>(env: &'e [String], name: &str) -> Option<&'e str> {
    env.iter()
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
}

/// How many ancestors `proc.aenv[NAME]` searches, as libsinsp does.
const AENV_MAX_DEPTH: usize = 20;

/// `proc.aenv`: Falco's three forms (see the field's description).
fn ancestor_environment<'e>(event: &'e Event, arg: &FieldArg) -> Option<Value<'e>> {
    let ancestors = event.ancestors.iter().map(|ancestor| &ancestor.env);
    match arg {
        FieldArg::Key(key) => match key.parse::<usize>() {
            Ok(0) => joined_environment(&event.process.env).map(Value::Str),
            Ok(generation) => {
                joined_environment(event.ancestors.get(generation - 1)?.env.as_slice())
                    .map(Value::Str)
            }
            Err(_) => {
                let mut captured = false;
                for env in ancestors.take(AENV_MAX_DEPTH) {
                    captured |= !env.is_empty();
                    if let Some(value) = variable(env, key) {
                        return s(value);
                    }
                }
                captured.then_some(Value::Str(Cow::Borrowed("")))
            }
        },
        _ => {
            let values: Vec<Cow<'e, str>> = ancestors
                .filter_map(|env| joined_environment(env.as_slice()))
                .collect();
            (!values.is_empty()).then_some(Value::Strs(values))
        }
    }
}

/// The ancestor (or the process itself) with a given pid.
fn by_pid(event: &Event, pid: u32) -> Option<Generation<'_>> {
    (0..=event.ancestors.len())
        .filter_map(|index| generation(event, index))
        .find(|g| g.pid == pid)
}

fn event_fd(event: &Event) -> Option<&Fd> {
    match &event.payload {
        Payload::Open { fd, .. } | Payload::Network { fd } | Payload::Dup { fd, .. } => Some(fd),
        _ => None,
    }
}

fn socket(event: &Event) -> Option<&Socket> {
    event_fd(event).and_then(|fd| fd.socket.as_ref())
}

/// Whether the process is the server side of the socket (accepted, bound or listening).
fn is_server(event: &Event) -> bool {
    matches!(event.kind, K::Accept | K::Accept4 | K::Bind | K::Listen)
}

fn ip_value<'e>(address: Option<IpAddr>) -> Option<Value<'e>> {
    address.map(Value::Ip)
}

fn local_remote(event: &Event, local: bool) -> (Option<IpAddr>, u16) {
    match socket(event) {
        Some(socket) if local => (socket.local_addr, socket.local_port),
        Some(socket) => (socket.remote_addr, socket.remote_port),
        None => (None, 0),
    }
}

fn client_server(event: &Event, server: bool) -> (Option<IpAddr>, u16) {
    // The server side is local when this process accepted or bound the socket.
    local_remote(event, server == is_server(event))
}

fn port<'e>(address: (Option<IpAddr>, u16)) -> Option<Value<'e>> {
    address.0.map(|_| Value::Int(i64::from(address.1)))
}

/// `fd.port`, `fd.proto`: both ends' ports; a check holds when it holds for either.
fn either_port(event: &Event) -> Option<Value<'_>> {
    let socket = socket(event)?;
    Some(Value::Strs(vec![
        socket.local_port.to_string().into(),
        socket.remote_port.to_string().into(),
    ]))
}

/// `fd.cproto` and friends: libsinsp's `port_to_string` without resolution, the port as
/// text. A bound or listening socket is a server socket there: its client and server
/// protocols are empty text, its local and remote ones absent.
fn proto_text<'e>(
    event: &Event,
    address: (Option<IpAddr>, u16),
    empty_for_server_socket: bool,
) -> Option<Value<'e>> {
    if matches!(event.kind, K::Bind | K::Listen) {
        return empty_for_server_socket.then_some(Value::Str(Cow::Borrowed("")));
    }
    address
        .0
        .map(|_| Value::Str(Cow::Owned(address.1.to_string())))
}

/// The type of descriptor `fd` (0, 1 or 2) when the event happened; absent for other
/// descriptors, one not open, and events without them.
fn std_fd_type<'e>(event: &Event, fd: usize) -> Option<Value<'e>> {
    let kind = (*event.process.std_fds.as_ref()?.get(fd)?)?;
    Some(Value::Str(fd_type_name(kind).into()))
}

fn fd_type_name(kind: FdKind) -> &'static str {
    match kind {
        FdKind::File => "file",
        FdKind::Directory => "directory",
        FdKind::Ipv4 => "ipv4",
        FdKind::Ipv6 => "ipv6",
        FdKind::Unix => "unix",
        FdKind::Pipe => "pipe",
        FdKind::Netlink => "netlink",
        FdKind::Memfd => "memfd",
        FdKind::Other => "other",
    }
}

fn fd_type_char(kind: FdKind) -> &'static str {
    match kind {
        FdKind::File => "f",
        FdKind::Directory => "d",
        FdKind::Ipv4 => "4",
        FdKind::Ipv6 => "6",
        FdKind::Unix => "u",
        FdKind::Pipe => "p",
        FdKind::Netlink => "n",
        FdKind::Memfd => "m",
        FdKind::Other => "o",
    }
}

fn fd_name(event: &Event) -> Option<Cow<'_, str>> {
    let fd = event_fd(event)?;
    if let Some(socket) = &fd.socket
        && fd.name.is_empty()
    {
        if !socket.unix_path.is_empty() {
            return Some(Cow::Borrowed(&socket.unix_path));
        }
        let (client, server) = (client_server(event, false), client_server(event, true));
        let render = |(address, port): (Option<IpAddr>, u16)| match address {
            Some(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            Some(address) => format!("{address}:{port}"),
            None => format!(":{port}"),
        };
        return Some(Cow::Owned(format!(
            "{}->{}",
            render(client),
            render(server)
        )));
    }
    (!fd.name.is_empty()).then_some(Cow::Borrowed(fd.name.as_str()))
}

fn path_of(event: &Event) -> Option<&str> {
    match &event.payload {
        Payload::Path { path, .. } | Payload::Chown { path, .. } => Some(path),
        Payload::Link { target, .. } => Some(target),
        Payload::Mount { target, .. } => Some(target),
        _ => None,
    }
}

fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(index) => &path[..index],
        None => path,
    }
}

/// `basename`, as the `basename()` transformer and `fd.filename` compute it.
pub(crate) fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(index) => &path[index + 1..],
        None => path,
    }
}

fn image_parts(image: &str) -> (&str, &str, &str) {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, digest),
        None => (image, ""),
    };
    // A tag follows the last ':' only if that ':' comes after the last '/' (a registry
    // port such as `host:5000/x` is not a tag).
    match name.rfind(':') {
        Some(colon) if name.rfind('/').is_none_or(|slash| colon > slash) => {
            (&name[..colon], &name[colon + 1..], digest)
        }
        _ => (name, "", digest),
    }
}

fn container_str(event: &Event, pick: fn(&palisade_event::Container) -> &str) -> Option<Value<'_>> {
    match &event.container {
        Some(container) => non_empty(pick(container)),
        None => None,
    }
}

/// The pod sandbox a CRI runtime put the container in, from its annotation (kept among the
/// container's labels).
fn sandbox_id(event: &Event) -> Option<&str> {
    let container = event.container.as_ref()?;
    container
        .labels
        .iter()
        .find(|(name, _)| {
            name == "io.kubernetes.cri.sandbox-id" || name == "io.kubernetes.cri-o.SandboxID"
        })
        .map(|(_, id)| id.as_str())
        .filter(|id| !id.is_empty())
}

fn host_namespaces(event: &Event) -> Option<palisade_event::HostNamespaces> {
    event.container.as_ref()?.host_namespaces
}

fn k8s_str(event: &Event, pick: fn(&palisade_event::K8sPod) -> &str) -> Option<Value<'_>> {
    let pod = event.container.as_ref()?.k8s.as_ref()?;
    non_empty(pick(pod))
}

/// One Kubernetes object of the event's pod (`pick`), read by `read`; absent without the API
/// server's metadata or without that object.
fn k8s_object<'e>(
    event: &'e Event,
    arg: &FieldArg,
    pick: fn(&K8sMeta) -> Option<&K8sObject>,
    read: fn(&'e K8sObject, &FieldArg) -> Option<Value<'e>>,
) -> Option<Value<'e>> {
    read(pick(event.k8s_meta.as_deref()?)?, arg)
}

/// `read` of every service that selects the event's pod, one value each.
fn k8s_services<'e>(
    event: &'e Event,
    arg: &FieldArg,
    read: fn(&'e K8sObject, &FieldArg) -> Option<Value<'e>>,
) -> Option<Value<'e>> {
    let values: Vec<Cow<'e, str>> = event
        .k8s_meta
        .as_deref()?
        .services
        .iter()
        .filter_map(|service| read(service, arg))
        .flat_map(|value| match value {
            Value::Str(text) => vec![text],
            Value::Strs(items) => items,
            _ => Vec::new(),
        })
        .collect();
    (!values.is_empty()).then_some(Value::Strs(values))
}

fn object_name<'e>(object: &'e K8sObject, _: &FieldArg) -> Option<Value<'e>> {
    non_empty(&object.name)
}

fn object_uid<'e>(object: &'e K8sObject, _: &FieldArg) -> Option<Value<'e>> {
    non_empty(&object.uid)
}

fn object_label<'e>(object: &'e K8sObject, arg: &FieldArg) -> Option<Value<'e>> {
    let FieldArg::Key(key) = arg else { return None };
    object.label(key).map(|value| Value::Str(value.into()))
}

fn object_labels<'e>(object: &'e K8sObject, _: &FieldArg) -> Option<Value<'e>> {
    owned(joined_labels(&object.labels))
}

/// Labels as the k8smeta plugin gives them: a list of `key:value`, absent when empty.
fn object_label_list<'e>(object: &'e K8sObject, _: &FieldArg) -> Option<Value<'e>> {
    (!object.labels.is_empty()).then(|| {
        Value::Strs(
            object
                .labels
                .iter()
                .map(|(key, value)| Cow::Owned(format!("{key}:{value}")))
                .collect(),
        )
    })
}

/// Labels as libsinsp prints them: `key:value` (the key alone when the value is empty),
/// joined by ", ".
fn joined_labels<'a>(labels: impl IntoIterator<Item = &'a (String, String)>) -> String {
    let mut joined = String::new();
    for (name, value) in labels {
        if !joined.is_empty() {
            joined.push_str(", ");
        }
        joined.push_str(name);
        if !value.is_empty() {
            joined.push(':');
            joined.push_str(value);
        }
    }
    joined
}

fn elapsed<'e>(event: &Event, since_ns: u64) -> Option<Value<'e>> {
    (since_ns != 0 && event.timestamp_ns >= since_ns)
        .then(|| Value::Int((event.timestamp_ns - since_ns) as i64))
}

/// Nanoseconds from the start of the capture to the event (Falco's `evt.reltime`).
fn since_capture_start(event: &Event) -> Option<u64> {
    (event.capture_start_ns != 0 && event.timestamp_ns >= event.capture_start_ns)
        .then(|| event.timestamp_ns - event.capture_start_ns)
}

fn resources(event: &Event) -> Option<&TaskResources> {
    event.process.resources.as_ref()
}

/// `proc.fdlimit`: the limit when the event happened, or else the one of the last exec or fork.
fn fd_limit(event: &Event) -> Option<i64> {
    event
        .process
        .fd_limit
        .or_else(|| resources(event).map(|resources| resources.fd_limit))
}

/// `proc.fdusage` as libsinsp's `get_fd_usage_pct_d`: open descriptors per hundred of the
/// limit, at most 100, and 0 for a limit that is not positive (unlimited reads -1).
fn fd_usage(event: &Event) -> Option<f64> {
    let open = event.process.open_fds?;
    let limit = fd_limit(event)?;
    if limit <= 0 {
        return Some(0.0);
    }
    let limit = limit as u64;
    Some(if open <= limit {
        open as f64 * 100.0 / limit as f64
    } else {
        100.0
    })
}

/// The process's resources when the event's thread is its main one: per-thread values of
/// other threads are not kept.
fn main_thread_resources(event: &Event) -> Option<&TaskResources> {
    resources(event).filter(|_| event.process.tid == event.process.pid)
}

/// `thread.vmsize`, `thread.vmrss`: the process's value for its main thread, 0 for the others,
/// as libsinsp gives them.
fn thread_memory<'e>(event: &Event, pick: fn(&TaskResources) -> u64) -> Option<Value<'e>> {
    let resources = resources(event)?;
    let kb = if event.process.tid == event.process.pid {
        pick(resources)
    } else {
        0
    };
    Some(Value::Int(kb as i64))
}

/// The event's `(subsystem, path)` cgroups with the controller names libsinsp gives them
/// when it reads the driver's list: `io` is `blkio`, a `_cgroup` suffix is dropped, `perf`
/// is `perf_event`, `mem` is `memory`.
fn controller_cgroups(event: &Event) -> impl Iterator<Item = (String, &str)> {
    event.process.cgroups.iter().filter_map(|entry| {
        let (subsystem, path) = entry.split_once('=')?;
        let subsystem = subsystem.replacen("_cgroup", "", 1);
        let subsystem = match subsystem.as_str() {
            "io" => "blkio".to_owned(),
            "perf" => "perf_event".to_owned(),
            "mem" => "memory".to_owned(),
            _ => subsystem,
        };
        Some((subsystem, path))
    })
}

fn nonzero_time<'e>(nanoseconds: u64) -> Option<Value<'e>> {
    (nanoseconds != 0).then_some(Value::Int(nanoseconds as i64))
}

/// Every field, sorted by name within each class.
pub(crate) static FIELDS: &[FieldDef] = &[
    // evt.*
    field!(
        "evt.type",
        Str,
        None,
        KindSet::ALL,
        "System call name",
        |e, _| s(e.kind.as_str())
    ),
    field!(
        "evt.dir",
        Str,
        None,
        KindSet::ALL,
        "Direction: '<' (each call is reported once, on exit; a check for '>' or '<' selects it)",
        |_, _| s("<")
    ),
    field!(
        "evt.num",
        Int,
        None,
        KindSet::NONE,
        "Event number (absent: a field reads one event; the engine evaluates live and recorded streams alike and numbers neither)",
        |_, _| None
    ),
    field!(
        "evt.rawtime",
        Int,
        None,
        KindSet::ALL,
        "Time in nanoseconds since the epoch",
        |e, _| int(e.timestamp_ns as i64)
    ),
    field!(
        "evt.time",
        Str,
        None,
        KindSet::ALL,
        "Time of day, UTC",
        |e, _| owned(time_of_day(e.timestamp_ns))
    ),
    field!(
        "evt.rawtime.s",
        Int,
        None,
        KindSet::ALL,
        "Whole seconds of evt.rawtime",
        |e, _| int((e.timestamp_ns / 1_000_000_000) as i64)
    ),
    field!(
        "evt.rawtime.ns",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds part of evt.rawtime",
        |e, _| int((e.timestamp_ns % 1_000_000_000) as i64)
    ),
    field!(
        "evt.time.s",
        Str,
        None,
        KindSet::ALL,
        "Time of day to the second, UTC",
        |e, _| {
            let mut time = time_of_day(e.timestamp_ns);
            time.truncate("HH:MM:SS".len());
            owned(time)
        }
    ),
    field!(
        "evt.datetime.s",
        Str,
        None,
        KindSet::ALL,
        "Date and time to the second, UTC, as libsinsp prints it (2026-11-29 10:00:00)",
        |e, _| {
            let mut time = iso8601(e.timestamp_ns).replacen('T', " ", 1);
            time.truncate("YYYY-MM-DD HH:MM:SS".len());
            owned(time)
        }
    ),
    field!(
        "evt.is_async",
        Bool,
        None,
        KindSet::ALL,
        "Asynchronous (meta) event: none of the observed events is one",
        |_, _| Some(Value::Bool(false))
    ),
    field!(
        "evt.pluginname",
        Str,
        None,
        KindSet::of(&[K::K8sAudit]),
        "Plugin whose source the event comes from (k8saudit for audit events)",
        |e, _| (e.kind == K::K8sAudit).then(|| Value::Str("k8saudit".into()))
    ),
    not_observed(
        "evt.asynctype",
        FieldType::Str,
        ArgSpec::None,
        "Type of an asynchronous event; absent, as no observed event is one",
    ),
    not_observed(
        "evt.plugininfo",
        FieldType::Str,
        ArgSpec::None,
        "A plugin's summary of its event (absent: the one plugin source here, k8saudit, is evaluated natively)",
    ),
    field!(
        "evt.reltime",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds since the capture began: since the first event the sensor read, as libsinsp counts from its first event (the start travels with each event, so a recording replays the same value); absent when unknown",
        |e, _| since_capture_start(e).map(|ns| Value::Int(ns as i64))
    ),
    field!(
        "evt.reltime.s",
        Int,
        None,
        KindSet::ALL,
        "Whole seconds of evt.reltime",
        |e, _| since_capture_start(e).map(|ns| Value::Int((ns / 1_000_000_000) as i64))
    ),
    field!(
        "evt.reltime.ns",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds part of evt.reltime",
        |e, _| since_capture_start(e).map(|ns| Value::Int((ns % 1_000_000_000) as i64))
    ),
    field!(
        "evt.time.iso8601",
        Str,
        None,
        KindSet::ALL,
        "Time, ISO 8601",
        |e, _| owned(iso8601(e.timestamp_ns))
    ),
    field!(
        "evt.datetime",
        Str,
        None,
        KindSet::ALL,
        "Date and time, UTC",
        |e, _| owned(iso8601(e.timestamp_ns))
    ),
    field!(
        "evt.hostname",
        Str,
        None,
        KindSet::ALL,
        "Host name",
        |e, _| non_empty(&e.hostname)
    ),
    field!(
        "evt.res",
        Str,
        None,
        KindSet::ALL,
        "SUCCESS or the errno name",
        |e, _| owned(result_name(e.ret))
    ),
    field!(
        "evt.rawres",
        Int,
        None,
        KindSet::ALL,
        "Return value",
        |e, _| int(e.ret)
    ),
    field!(
        "evt.failed",
        Bool,
        None,
        KindSet::ALL,
        "The call failed",
        |e, _| Some(Value::Bool(e.ret < 0))
    ),
    field!(
        "evt.source",
        Str,
        None,
        KindSet::ALL,
        "Event source (syscall or k8s_audit)",
        |e, _| s(if e.kind == K::K8sAudit {
            "k8s_audit"
        } else {
            "syscall"
        })
    ),
    field!(
        "evt.is_open_read",
        Bool,
        None,
        OPEN,
        "Opened for reading (O_RDONLY or O_RDWR); false for creat, whose flags libsinsp does \
         not read",
        |e, _| open_flags(e).map(|f| Value::Bool(e.kind != K::Creat && (f & 3 == 0 || f & 3 == 2)))
    ),
    field!(
        "evt.is_open_write",
        Bool,
        None,
        OPEN,
        "Opened for writing (O_WRONLY or O_RDWR); false for creat, whose flags libsinsp does \
         not read",
        |e, _| open_flags(e).map(|f| Value::Bool(e.kind != K::Creat && (f & 3 == 1 || f & 3 == 2)))
    ),
    field!(
        "evt.arg",
        Str,
        Key,
        KindSet::ALL,
        "A system call argument by name, rendered",
        |e, a| event_arg(e, a, false)
    ),
    field!(
        "evt.rawarg",
        Str,
        Key,
        KindSet::ALL,
        "A system call argument by name, raw",
        |e, a| event_arg(e, a, true)
    ),
    field!(
        "evt.args",
        Str,
        None,
        KindSet::ALL,
        "All arguments, rendered",
        |e, _| owned(all_args(e))
    ),
    // proc.*
    field!("proc.pid", Int, None, KindSet::ALL, "Process id", |e, _| {
        int(e.process.pid)
    }),
    field!(
        "proc.ppid",
        Int,
        None,
        KindSet::ALL,
        "Parent process id",
        |e, _| int(e.process.ppid)
    ),
    field!(
        "proc.vpid",
        Int,
        None,
        KindSet::ALL,
        "Process id in its pid namespace",
        |e, _| int(e.process.vpid)
    ),
    field!("proc.sid", Int, None, KindSet::ALL, "Session id", |e, _| {
        int(e.process.sid)
    }),
    field!(
        "proc.vpgid",
        Int,
        None,
        KindSet::ALL,
        "Process group id",
        |e, _| int(e.process.vpgid)
    ),
    field!(
        "proc.tty",
        Int,
        None,
        KindSet::ALL,
        "Controlling terminal, 0 if none",
        |e, _| int(e.process.tty)
    ),
    field!(
        "proc.name",
        Str,
        None,
        KindSet::ALL,
        "Command name",
        |e, _| s(&e.process.name)
    ),
    field!("proc.exe", Str, None, KindSet::ALL, "argv[0]", |e, _| s(&e
        .process
        .exe)),
    field!(
        "proc.exepath",
        Str,
        None,
        KindSet::ALL,
        "Executable path",
        |e, _| s(&e.process.exepath)
    ),
    field!(
        "proc.args",
        Str,
        None,
        KindSet::ALL,
        "Arguments after argv[0]",
        |e, _| owned(e.process.args.join(" "))
    ),
    field!(
        "proc.cmdline",
        Str,
        None,
        KindSet::ALL,
        "Name and arguments",
        |e, _| owned(cmdline(&e.process.name, &e.process.args))
    ),
    field!(
        "proc.cmdnargs",
        Int,
        None,
        KindSet::ALL,
        "Number of arguments",
        |e, _| int(e.process.args.len() as i64)
    ),
    field!(
        "proc.cmdlenargs",
        Int,
        None,
        KindSet::ALL,
        "Total length of the arguments",
        |e, _| int(e.process.args.iter().map(String::len).sum::<usize>() as i64)
    ),
    field!(
        "proc.cwd",
        Str,
        None,
        KindSet::ALL,
        "Working directory",
        |e, _| non_empty(&e.process.cwd)
    ),
    field!(
        "proc.pname",
        Str,
        None,
        KindSet::ALL,
        "Parent command name",
        |e, _| generation(e, 1).map(|g| Value::Str(g.name.into()))
    ),
    field!(
        "proc.pexe",
        Str,
        None,
        KindSet::ALL,
        "Parent argv[0]",
        |e, _| generation(e, 1).map(|g| Value::Str(g.exe.into()))
    ),
    field!(
        "proc.pexepath",
        Str,
        None,
        KindSet::ALL,
        "Parent executable path",
        |e, _| generation(e, 1).map(|g| Value::Str(g.exepath.into()))
    ),
    field!(
        "proc.pcmdline",
        Str,
        None,
        KindSet::ALL,
        "Parent command line",
        |e, _| generation(e, 1).map(|g| Value::Str(cmdline(g.name, g.args).into()))
    ),
    field!(
        "proc.aname",
        Str,
        OptionalIndex,
        KindSet::ALL,
        "Ancestor name; [0] is the process, [1] the parent",
        |e, a| ancestry(e, a, |g| Value::Str(g.name.into()))
    ),
    field!(
        "proc.aexe",
        Str,
        OptionalIndex,
        KindSet::ALL,
        "Ancestor argv[0]",
        |e, a| ancestry(e, a, |g| Value::Str(g.exe.into()))
    ),
    field!(
        "proc.aexepath",
        Str,
        OptionalIndex,
        KindSet::ALL,
        "Ancestor executable path",
        |e, a| ancestry(e, a, |g| Value::Str(g.exepath.into()))
    ),
    field!(
        "proc.acmdline",
        Str,
        OptionalIndex,
        KindSet::ALL,
        "Ancestor command line",
        |e, a| ancestry(e, a, |g| Value::Str(cmdline(g.name, g.args).into()))
    ),
    field!(
        "proc.apid",
        Int,
        OptionalIndex,
        KindSet::ALL,
        "Ancestor pid",
        |e, a| ancestry(e, a, |g| Value::Int(i64::from(g.pid)))
    ),
    field!(
        "proc.sname",
        Str,
        None,
        KindSet::ALL,
        "Session leader name",
        |e, _| by_pid(e, e.process.sid).map(|g| Value::Str(g.name.into()))
    ),
    field!(
        "proc.sid.exe",
        Str,
        None,
        KindSet::ALL,
        "Session leader argv[0]",
        |e, _| by_pid(e, e.process.sid).map(|g| Value::Str(g.exe.into()))
    ),
    field!(
        "proc.sid.exepath",
        Str,
        None,
        KindSet::ALL,
        "Session leader executable path",
        |e, _| by_pid(e, e.process.sid).map(|g| Value::Str(g.exepath.into()))
    ),
    field!(
        "proc.vpgid.name",
        Str,
        None,
        KindSet::ALL,
        "Process group leader name",
        |e, _| by_pid(e, e.process.vpgid).map(|g| Value::Str(g.name.into()))
    ),
    field!(
        "proc.vpgid.exe",
        Str,
        None,
        KindSet::ALL,
        "Process group leader argv[0]",
        |e, _| by_pid(e, e.process.vpgid).map(|g| Value::Str(g.exe.into()))
    ),
    field!(
        "proc.vpgid.exepath",
        Str,
        None,
        KindSet::ALL,
        "Process group leader executable path",
        |e, _| by_pid(e, e.process.vpgid).map(|g| Value::Str(g.exepath.into()))
    ),
    field!(
        "proc.is_vpgid_leader",
        Bool,
        None,
        KindSet::ALL,
        "The process leads its process group",
        |e, _| Some(Value::Bool(
            e.process.vpgid != 0 && e.process.vpid == e.process.vpgid
        ))
    ),
    field!(
        "proc.is_sid_leader",
        Bool,
        None,
        KindSet::ALL,
        "The process leads its session",
        |e, _| Some(Value::Bool(
            e.process.sid != 0 && e.process.vpid == e.process.sid
        ))
    ),
    field!(
        "proc.duration",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds since the process started",
        |e, _| elapsed(e, e.process.start_time_ns)
    ),
    field!(
        "proc.ppid.duration",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds since the parent started",
        |e, _| generation(e, 1).and_then(|g| elapsed(e, g.start_time_ns))
    ),
    field!(
        "proc.is_exe_upper_layer",
        Bool,
        None,
        KindSet::ALL,
        "Executable is in an overlay upper layer",
        |e, _| Some(Value::Bool(e.process.exe_upper_layer))
    ),
    field!(
        "proc.is_exe_from_memfd",
        Bool,
        None,
        KindSet::ALL,
        "Executable is a memfd",
        |e, _| Some(Value::Bool(e.process.exe_from_memfd))
    ),
    field!(
        "proc.is_exe_writable",
        Bool,
        None,
        KindSet::ALL,
        "Executable is writable by the user",
        |e, _| Some(Value::Bool(e.process.exe_writable))
    ),
    field!(
        "proc.is_container_runtime",
        Bool,
        None,
        KindSet::ALL,
        "Executable is one of the host's container runtime binaries, by device and inode (Palisade)",
        |e, _| Some(Value::Bool(e.process.exe_container_runtime))
    ),
    field!(
        "proc.exe_ino",
        Int,
        None,
        KindSet::ALL,
        "Executable inode",
        |e, _| nonzero_time(e.process.exe_ino)
    ),
    field!(
        "proc.exe_ino.ctime",
        Int,
        None,
        KindSet::ALL,
        "Executable inode change time",
        |e, _| nonzero_time(e.process.exe_ctime_ns)
    ),
    field!(
        "proc.exe_ino.mtime",
        Int,
        None,
        KindSet::ALL,
        "Executable modification time",
        |e, _| nonzero_time(e.process.exe_mtime_ns)
    ),
    field!(
        "proc.exe_ino.ctime_duration_proc_start",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds between the executable's ctime and the process start",
        |e, _| {
            let process = &e.process;
            (process.exe_ctime_ns != 0 && process.start_time_ns >= process.exe_ctime_ns)
                .then(|| Value::Int((process.start_time_ns - process.exe_ctime_ns) as i64))
        }
    ),
    // thread.*
    field!(
        "thread.tid",
        Int,
        None,
        KindSet::ALL,
        "Thread id",
        |e, _| int(e.process.tid)
    ),
    field!(
        "thread.ismain",
        Bool,
        None,
        KindSet::ALL,
        "The thread is its process's main thread (tid = pid)",
        |e, _| Some(Value::Bool(e.process.tid == e.process.pid))
    ),
    field!(
        "proc.aenv",
        Str,
        OptionalKey,
        KindSet::ALL,
        "Ancestors' environments: without argument every ancestor's (as proc.env), \
         proc.aenv[N] generation N's (0 is the process), proc.aenv[NAME] the variable's value \
         in the nearest ancestor that has it (20 levels at most; empty when none has it)",
        |e, arg| ancestor_environment(e, arg)
    ),
    field!(
        "proc.fdopencount",
        Int,
        None,
        KindSet::ALL,
        "Open descriptors of the process when the event happened: counted by the kernel probes from the descriptor table's bitmap (tables of at most 16,384 descriptors), or by the fallback from /proc/<pid>/fd while the process lives; read only when a loaded rule uses proc.fdopencount, proc.fdlimit or proc.fdusage; absent otherwise, for a larger table and for recordings without it (Falco counts the entries of the table it keeps from every open, close and dup)",
        |e, _| e.process.open_fds.map(|open| Value::Int(open as i64))
    ),
    field!(
        "proc.fdlimit",
        Int,
        None,
        KindSet::ALL,
        "Soft limit on open descriptors (RLIMIT_NOFILE), -1 when unlimited: read when the event happened (so a setrlimit or prlimit since the exec is seen, as Falco follows them) when a loaded rule uses proc.fdopencount, proc.fdlimit or proc.fdusage; otherwise, and for sources that read it only then, as of the process's last exec or fork, as Falco's driver sends it with its execve and clone events (or from /proc for processes found at start); absent when the source reads neither",
        |e, _| fd_limit(e).map(Value::Int)
    ),
    field!(
        "proc.fdusage",
        Double,
        None,
        KindSet::ALL,
        "Open descriptors as a percentage of the limit, as libsinsp computes it: proc.fdopencount * 100 / proc.fdlimit, at most 100, and 0 when the limit is not positive (unlimited); absent when either is (printed with one decimal)",
        |e, _| fd_usage(e).map(Value::Double)
    ),
    field!(
        "proc.vmsize",
        Int,
        None,
        KindSet::ALL,
        "Virtual memory of the process, kB, as of the process's last exec or fork, read by the kernel probes then as Falco's driver reads it with its execve and clone events (or from /proc for processes found at start); absent when the source does not read it",
        |e, _| resources(e).map(|r| Value::Int(r.vm_size_kb as i64))
    ),
    field!(
        "proc.vmrss",
        Int,
        None,
        KindSet::ALL,
        "Resident memory of the process (file, anonymous and shared pages), kB, as of the process's last exec or fork, read by the kernel probes then as Falco's driver reads it with its execve and clone events (or from /proc for processes found at start); absent when the source does not read it; the kernel's counters are folded in per-CPU batches, so a new process can read low, as in Falco",
        |e, _| resources(e).map(|r| Value::Int(r.vm_rss_kb as i64))
    ),
    field!(
        "proc.vmswap",
        Int,
        None,
        KindSet::ALL,
        "Swapped-out memory of the process, kB, as of the process's last exec or fork, read by the kernel probes then as Falco's driver reads it with its execve and clone events (or from /proc for processes found at start); absent when the source does not read it",
        |e, _| resources(e).map(|r| Value::Int(r.vm_swap_kb as i64))
    ),
    field!(
        "proc.nthreads",
        Int,
        None,
        KindSet::ALL,
        "Live threads of the process when the event happened, the leader counted until it has exited (read in the kernel with every event); absent when the source does not say",
        |e, _| (e.process.live_threads > 0).then(|| Value::Int(i64::from(e.process.live_threads)))
    ),
    field!(
        "proc.nchilds",
        Int,
        None,
        KindSet::ALL,
        "Live threads of the process other than its leader (equal to proc.nthreads once the leader has exited); absent as proc.nthreads",
        |e, _| {
            let process = &e.process;
            (process.live_threads > 0).then(|| {
                Value::Int(i64::from(process.live_threads) - i64::from(!process.leader_exited))
            })
        }
    ),
    field!(
        "thread.pfmajor",
        Int,
        None,
        KindSet::ALL,
        "Major page faults of the thread, as of the process's last exec or fork, read by the kernel probes then as Falco's driver reads it with its execve and clone events (or from /proc for processes found at start); absent when the source does not read it; for a thread other than the main one absent (the sensor keeps processes, not threads)",
        |e, _| main_thread_resources(e).map(|r| Value::Int(r.major_faults as i64))
    ),
    field!(
        "thread.pfminor",
        Int,
        None,
        KindSet::ALL,
        "Minor page faults of the thread, as thread.pfmajor",
        |e, _| main_thread_resources(e).map(|r| Value::Int(r.minor_faults as i64))
    ),
    field!(
        "thread.cgroups",
        Str,
        None,
        KindSet::ALL,
        "The thread's cgroups for Falco's five controllers as 'cpuset=/a cpu=/b cpuacct=/c blkio=/d memory=/e' (each the path in the hierarchy the controller is bound to: a v1 hierarchy, or the unified one on a cgroup v2 host), as of the process's last exec or fork, read by the kernel probes then as Falco's driver reads it with its execve and clone events (or from /proc for processes found at start); absent when the source does not read it",
        |e, _| {
            let cgroups: Vec<String> = controller_cgroups(e)
                .map(|(subsystem, path)| format!("{subsystem}={path}"))
                .collect();
            (!cgroups.is_empty()).then(|| Value::Str(cgroups.join(" ").into()))
        }
    ),
    field!(
        "thread.cgroup",
        Str,
        Key,
        KindSet::ALL,
        "The thread's cgroup for one controller, thread.cgroup.memory (the names as thread.cgroups shows them: blkio, not io); absent for a controller it does not list",
        |e, arg| match arg {
            FieldArg::Key(wanted) => controller_cgroups(e)
                .find(|(subsystem, _)| subsystem == wanted)
                .map(|(_, path)| Value::Str(path.into())),
            _ => None,
        }
    ),
    not_observed(
        "thread.cpu",
        FieldType::Double,
        ArgSpec::None,
        "CPU used in the last second (absent, as in Falco: libsinsp computes it only on the procinfo events its kernel module emits for sysdig, never on a system call event)",
    ),
    not_observed(
        "thread.cpu.user",
        FieldType::Double,
        ArgSpec::None,
        "User CPU used in the last second (absent, as thread.cpu)",
    ),
    not_observed(
        "thread.cpu.system",
        FieldType::Double,
        ArgSpec::None,
        "System CPU used in the last second (absent, as thread.cpu)",
    ),
    field!(
        "thread.vmsize",
        Int,
        None,
        KindSet::ALL,
        "proc.vmsize for the process's main thread, 0 for its other threads",
        |e, _| thread_memory(e, |r| r.vm_size_kb)
    ),
    field!(
        "thread.vmrss",
        Int,
        None,
        KindSet::ALL,
        "proc.vmrss for the process's main thread, 0 for its other threads",
        |e, _| thread_memory(e, |r| r.vm_rss_kb)
    ),
    field!(
        "thread.vtid",
        Int,
        None,
        KindSet::ALL,
        "Thread id",
        |e, _| int(e.process.tid)
    ),
    field!(
        "thread.cap_effective",
        Str,
        None,
        KindSet::ALL,
        "Effective capabilities of the thread when the event happened (read by the kernel probes with every event; Falco's driver sends them with execve, clone and capset), names separated by spaces; from the fallback, as /proc/<pid>/status showed them when it handled the process's last exec",
        |e, _| owned(capability_names(e.process.cap_effective))
    ),
    field!(
        "thread.cap_permitted",
        Str,
        None,
        KindSet::ALL,
        "Permitted capabilities, as thread.cap_effective",
        |e, _| owned(capability_names(e.process.cap_permitted))
    ),
    // user.*, group.*
    field!("user.uid", Int, None, KindSet::ALL, "User id", |e, _| int(
        e.process.uid
    )),
    field!("user.name", Str, None, KindSet::ALL, "User name", |e, _| {
        non_empty(&e.process.user)
    }),
    field!(
        "user.loginuid",
        Int,
        None,
        KindSet::ALL,
        "Audit login uid, -1 when unset",
        |e, _| int(e.process.loginuid.map_or(-1, i64::from))
    ),
    field!(
        "user.loginname",
        Str,
        None,
        KindSet::ALL,
        "Audit login user name",
        |e, _| non_empty(&e.process.loginname)
    ),
    field!(
        "group.gid",
        Int,
        None,
        KindSet::ALL,
        "Group id",
        |e, _| int(e.process.gid)
    ),
    field!(
        "group.name",
        Str,
        None,
        KindSet::ALL,
        "Group name",
        |e, _| non_empty(&e.process.group)
    ),
    // fd.*
    field!("fd.num", Int, None, FD, "Descriptor number", |e, _| {
        event_fd(e).map(|fd| Value::Int(fd.num))
    }),
    field!(
        "fd.type",
        Str,
        None,
        FD,
        "Descriptor type: file, directory, ipv4, ipv6, unix, ...",
        |e, _| event_fd(e).map(|fd| Value::Str(fd_type_name(fd.kind).into()))
    ),
    field!(
        "fd.typechar",
        Str,
        None,
        FD,
        "Descriptor type as one character",
        |e, _| event_fd(e).map(|fd| Value::Str(fd_type_char(fd.kind).into()))
    ),
    field!(
        "fd.name",
        Str,
        None,
        FD,
        "Path, or client->server for sockets",
        |e, _| fd_name(e).map(Value::Str)
    ),
    field!(
        "fd.containername",
        Str,
        None,
        FD,
        "Container id and fd.name, joined by ':'",
        |e, _| in_container(e, &fd_name(e)?)
    ),
    field!(
        "fd.containerdirectory",
        Str,
        None,
        OPEN,
        "Container id and fd.directory, joined by ':'",
        |e, _| {
            let fd = event_fd(e).filter(|fd| fd.socket.is_none() && !fd.name.is_empty())?;
            in_container(e, dirname(&fd.name))
        }
    ),
    field!(
        "fd.uid",
        Str,
        None,
        FD,
        "Thread id and descriptor number chained as text (tid 42, fd 3: '423'), as libsinsp builds it",
        |e, _| event_fd(e).and_then(|fd| owned(format!("{}{}", e.process.tid, fd.num)))
    ),
    field!(
        "fd.dev.major",
        Int,
        None,
        OPEN,
        "Major device number of the opened file's file system; absent for other calls and failed opens",
        |e, _| e
            .opened_file
            .map(|file| Value::Int(i64::from((file.dev & 0xfff00) >> 8)))
    ),
    field!(
        "fd.dev.minor",
        Int,
        None,
        OPEN,
        "Minor device number of the opened file's file system; absent as fd.dev.major",
        |e, _| e
            .opened_file
            .map(|file| Value::Int(i64::from((file.dev & 0xff) | ((file.dev >> 12) & 0xfff00))))
    ),
    field!(
        "fd.is_upper_layer",
        Bool,
        None,
        OPEN,
        "The opened file is in the upper (writable) layer of an overlay file system: written or copied up since the overlay was mounted (false off overlays); absent as fd.dev.major",
        |e, _| e
            .opened_file
            .map(|file| Value::Bool(file.layer == OverlayLayer::Upper))
    ),
    field!(
        "fd.is_lower_layer",
        Bool,
        None,
        OPEN,
        "The opened file is in a lower (image) layer of an overlay file system (false off overlays); absent as fd.dev.major",
        |e, _| e
            .opened_file
            .map(|file| Value::Bool(file.layer == OverlayLayer::Lower))
    ),
    field!(
        "fd.nameraw",
        Str,
        None,
        FD,
        "Path as given to the call",
        |e, _| fd_name(e).map(Value::Str)
    ),
    field!(
        "fd.directory",
        Str,
        None,
        OPEN,
        "Directory of the path",
        |e, _| event_fd(e)
            .filter(|fd| fd.socket.is_none() && !fd.name.is_empty())
            .map(|fd| Value::Str(dirname(&fd.name).into()))
    ),
    field!(
        "fd.filename",
        Str,
        None,
        OPEN,
        "File name of the path",
        |e, _| event_fd(e)
            .filter(|fd| fd.socket.is_none() && !fd.name.is_empty())
            .map(|fd| Value::Str(basename(&fd.name).into()))
    ),
    field!(
        "fd.name_changed",
        Bool,
        None,
        KindSet::NONE,
        "Name changed by the call (absent: Falco reads it from its descriptor table, which the sensor does not keep)",
        |_, _| None
    ),
    field!(
        "fd.sip.name",
        Str,
        None,
        KindSet::NONE,
        "Server domain name (absent: Falco answers it from its own DNS cache of the names the host resolved; the sensor does not watch DNS)",
        |_, _| None
    ),
    field!(
        "fd.cip.name",
        Str,
        None,
        KindSet::NONE,
        "Client domain name (absent: Falco answers it from its own DNS cache of the names the host resolved; the sensor does not watch DNS)",
        |_, _| None
    ),
    field!(
        "fd.ip",
        Ip,
        None,
        SOCK,
        "Either address of the socket",
        |e, _| {
            let socket = socket(e)?;
            let addresses: Vec<IpAddr> = [socket.local_addr, socket.remote_addr]
                .into_iter()
                .flatten()
                .collect();
            (!addresses.is_empty()).then_some(Value::Ips(addresses))
        }
    ),
    field!("fd.cip", Ip, None, SOCK, "Client address", |e, _| ip_value(
        client_server(e, false).0
    )),
    field!("fd.sip", Ip, None, SOCK, "Server address", |e, _| ip_value(
        client_server(e, true).0
    )),
    field!("fd.lip", Ip, None, SOCK, "Local address", |e, _| ip_value(
        local_remote(e, true).0
    )),
    field!("fd.rip", Ip, None, SOCK, "Remote address", |e, _| ip_value(
        local_remote(e, false).0
    )),
    field!(
        "fd.net",
        IpNet,
        None,
        SOCK,
        "Either address, for network comparisons",
        |e, _| {
            let socket = socket(e)?;
            let addresses: Vec<IpAddr> = [socket.local_addr, socket.remote_addr]
                .into_iter()
                .flatten()
                .collect();
            (!addresses.is_empty()).then_some(Value::Ips(addresses))
        }
    ),
    field!(
        "fd.cnet",
        IpNet,
        None,
        SOCK,
        "Client address, for network comparisons",
        |e, _| ip_value(client_server(e, false).0)
    ),
    field!(
        "fd.snet",
        IpNet,
        None,
        SOCK,
        "Server address, for network comparisons",
        |e, _| ip_value(client_server(e, true).0)
    ),
    field!(
        "fd.lnet",
        IpNet,
        None,
        SOCK,
        "Local address, for network comparisons",
        |e, _| ip_value(local_remote(e, true).0)
    ),
    field!(
        "fd.rnet",
        IpNet,
        None,
        SOCK,
        "Remote address, for network comparisons",
        |e, _| ip_value(local_remote(e, false).0)
    ),
    field!("fd.port", Int, None, SOCK, "Either port", |e, _| {
        either_port(e)
    }),
    field!(
        "fd.proto",
        Int,
        None,
        SOCK,
        "Either end's protocol, compared as libsinsp compares fd.port (Falco does not resolve ports to service names)",
        |e, _| either_port(e)
    ),
    field!("fd.cport", Int, None, SOCK, "Client port", |e, _| port(
        client_server(e, false)
    )),
    field!("fd.sport", Int, None, SOCK, "Server port", |e, _| port(
        client_server(e, true)
    )),
    field!("fd.lport", Int, None, SOCK, "Local port", |e, _| port(
        local_remote(e, true)
    )),
    field!("fd.rport", Int, None, SOCK, "Remote port", |e, _| port(
        local_remote(e, false)
    )),
    field!(
        "fd.l4proto",
        Str,
        None,
        SOCK,
        "tcp, udp, icmp or raw",
        |e, _| socket(e).map(|socket| Value::Str(
            match socket.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Icmp => "icmp",
                Protocol::Raw => "raw",
                Protocol::Unknown => "unknown",
            }
            .into()
        ))
    ),
    field!("fd.sockfamily", Str, None, SOCK, "ip or unix", |e, _| {
        event_fd(e).and_then(|fd| match fd.kind {
            FdKind::Ipv4 | FdKind::Ipv6 => s("ip"),
            FdKind::Unix => s("unix"),
            _ => None,
        })
    }),
    field!(
        "fd.connected",
        Bool,
        None,
        SOCK,
        "The socket is connected",
        |e, _| socket(e).map(|socket| Value::Bool(socket.connected))
    ),
    field!(
        "fd.is_server",
        Bool,
        None,
        SOCK,
        "The process is the server side",
        |e, _| socket(e).map(|_| Value::Bool(is_server(e)))
    ),
    field!(
        "fd.types",
        Str,
        OptionalIndex,
        FD,
        "The type of descriptor N of the process (fd.types[N]) on the calls with a descriptor, as fd.type names it: for N = 0, 1, 2 as proc.stdin.type and its kin; absent for larger N and without an index (every descriptor's type: Falco lists its descriptor table of the process, which the sensor does not keep)",
        |e, a| match a {
            FieldArg::Index(fd) => std_fd_type(e, *fd),
            _ => None,
        }
    ),
    // fs.path.*
    field!(
        "fs.path.name",
        Str,
        None,
        FS_PATH,
        "Path the call acted on",
        |e, _| path_of(e).map(|path| Value::Str(path.into()))
    ),
    field!(
        "fs.path.nameraw",
        Str,
        None,
        FS_PATH,
        "Path the call acted on, as given",
        |e, _| path_of(e).map(|path| Value::Str(path.into()))
    ),
    field!(
        "fs.path.source",
        Str,
        None,
        FS_PATH,
        "Source path of rename, link, symlink or mount",
        |e, _| match &e.payload {
            Payload::Link { source, .. } => s(source),
            Payload::Mount { source, .. } => s(source),
            _ => None,
        }
    ),
    field!(
        "fs.path.sourceraw",
        Str,
        None,
        FS_PATH,
        "Source path, as given",
        |e, _| match &e.payload {
            Payload::Link { source, .. } => s(source),
            Payload::Mount { source, .. } => s(source),
            _ => None,
        }
    ),
    field!(
        "fs.path.target",
        Str,
        None,
        FS_PATH,
        "Target path of rename, link, symlink or mount",
        |e, _| match &e.payload {
            Payload::Link { target, .. } | Payload::Mount { target, .. } => s(target),
            _ => None,
        }
    ),
    field!(
        "fs.path.targetraw",
        Str,
        None,
        FS_PATH,
        "Target path, as given",
        |e, _| match &e.payload {
            Payload::Link { target, .. } | Payload::Mount { target, .. } => s(target),
            _ => None,
        }
    ),
    // container.*
    field!(
        "container.id",
        Str,
        None,
        KindSet::ALL,
        "Container id (12 characters), 'host' on the host",
        |e, _| match &e.container {
            Some(container) => s(container.id.get(..12).unwrap_or(&container.id)),
            None => s("host"),
        }
    ),
    field!(
        "container.full_id",
        Str,
        None,
        KindSet::ALL,
        "Full container id, 'host' on the host",
        |e, _| match &e.container {
            Some(container) => s(&container.id),
            None => s("host"),
        }
    ),
    field!(
        "container.name",
        Str,
        None,
        KindSet::ALL,
        "Container name, 'host' on the host",
        |e, _| match &e.container {
            Some(container) => s(&container.name),
            None => s("host"),
        }
    ),
    field!(
        "container.image",
        Str,
        None,
        KindSet::ALL,
        "Image reference",
        |e, _| container_str(e, |c| &c.image)
    ),
    field!(
        "container.image.repository",
        Str,
        None,
        KindSet::ALL,
        "Image repository",
        |e, _| container_str(e, |c| image_parts(&c.image).0)
    ),
    field!(
        "container.image.tag",
        Str,
        None,
        KindSet::ALL,
        "Image tag",
        |e, _| container_str(e, |c| image_parts(&c.image).1)
    ),
    field!(
        "container.image.digest",
        Str,
        None,
        KindSet::ALL,
        "Image digest",
        |e, _| container_str(e, |c| if c.image_digest.is_empty() {
            image_parts(&c.image).2
        } else {
            &c.image_digest
        })
    ),
    field!(
        "container.privileged",
        Bool,
        None,
        KindSet::ALL,
        "The container is privileged",
        |e, _| e.container.as_ref().map(|c| Value::Bool(c.privileged))
    ),
    field!(
        "container.label",
        Str,
        Key,
        KindSet::ALL,
        "A container label",
        |e, a| {
            let FieldArg::Key(key) = a else { return None };
            let container = e.container.as_ref()?;
            container
                .labels
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| Value::Str(value.as_str().into()))
        }
    ),
    field!(
        "container.labels",
        Str,
        None,
        KindSet::ALL,
        "The container's labels as 'key:value, key:value', without annotations and io.kubernetes.* labels, as the container plugin prints them",
        |e, _| {
            let container = e.container.as_ref()?;
            owned(joined_labels(container.labels.iter().filter(
                |(name, _)| !name.starts_with("annotation.") && !name.starts_with("io.kubernetes."),
            )))
        }
    ),
    field!(
        "container.host_pid",
        Bool,
        None,
        KindSet::ALL,
        "The container shares the host's pid namespace, from its runtime's (runc's) configuration; absent on the host and when that configuration was not found",
        |e, _| host_namespaces(e).map(|shared| Value::Bool(shared.pid))
    ),
    field!(
        "container.host_network",
        Bool,
        None,
        KindSet::ALL,
        "The container shares the host's network namespace, from its runtime's (runc's) configuration; absent on the host and when that configuration was not found",
        |e, _| host_namespaces(e).map(|shared| Value::Bool(shared.network))
    ),
    field!(
        "container.host_ipc",
        Bool,
        None,
        KindSet::ALL,
        "The container shares the host's IPC namespace, from its runtime's (runc's) configuration; absent on the host and when that configuration was not found",
        |e, _| host_namespaces(e).map(|shared| Value::Bool(shared.ipc))
    ),
    not_observed(
        "container.cni.json",
        FieldType::Str,
        ArgSpec::None,
        "The pod's CNI result (absent: Falco reads it from the CRI runtime's pod sandbox, which the sensor does not query)",
    ),
    field!(
        "k8s.pod.sandbox_id",
        Str,
        None,
        KindSet::ALL,
        "Pod sandbox id, its first 12 characters, from the sandbox-id annotation the CRI runtime gives the container (containerd's io.kubernetes.cri.sandbox-id, CRI-O's io.kubernetes.cri-o.SandboxID; runc keeps annotations as labels); absent without one",
        |e, _| sandbox_id(e).map(|id| Value::Str(id.get(..12).unwrap_or(id).into()))
    ),
    field!(
        "k8s.pod.full_sandbox_id",
        Str,
        None,
        KindSet::ALL,
        "Pod sandbox id, whole, as k8s.pod.sandbox_id",
        |e, _| sandbox_id(e).map(|id| Value::Str(id.into()))
    ),
    not_observed(
        "k8s.pod.cni.json",
        FieldType::Str,
        ArgSpec::None,
        "The pod's CNI result (absent: Falco reads it from the CRI runtime's pod sandbox, which the sensor does not query)",
    ),
    field!(
        "k8s.pod.label",
        Str,
        Key,
        KindSet::ALL,
        "A pod label (k8s.pod.label[key] or k8s.pod.label.key), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| Some(&m.pod), object_label)
    ),
    field!(
        "k8s.pod.labels",
        Str,
        None,
        KindSet::ALL,
        "Pod labels as 'key:value, key:value', from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| Some(&m.pod), object_labels)
    ),
    field!(
        "k8s.pod.ip",
        Str,
        None,
        KindSet::ALL,
        "Pod IP address (status.podIP), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed",
        |e, _| non_empty(&e.k8s_meta.as_deref()?.pod_ip)
    ),
    field!(
        "k8s.ns.id",
        Str,
        None,
        KindSet::ALL,
        "Namespace UID, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_uid)
    ),
    field!(
        "k8s.ns.label",
        Str,
        Key,
        KindSet::ALL,
        "A namespace label (k8s.ns.label[key] or k8s.ns.label.key), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_label)
    ),
    field!(
        "k8s.ns.labels",
        Str,
        None,
        KindSet::ALL,
        "Namespace labels as 'key:value, key:value', from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_labels)
    ),
    field!(
        "k8s.rs.name",
        Str,
        None,
        KindSet::ALL,
        "Replica set name, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_name)
    ),
    field!(
        "k8s.rs.id",
        Str,
        None,
        KindSet::ALL,
        "Replica set UID, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_uid)
    ),
    field!(
        "k8s.rs.label",
        Str,
        Key,
        KindSet::ALL,
        "A replica set label (k8s.rs.label[key] or k8s.rs.label.key), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_label)
    ),
    field!(
        "k8s.rs.labels",
        Str,
        None,
        KindSet::ALL,
        "Replica set labels as 'key:value, key:value', from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_labels)
    ),
    field!(
        "k8s.deployment.name",
        Str,
        None,
        KindSet::ALL,
        "Deployment name, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the owner of the pod's replica set)",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_name)
    ),
    field!(
        "k8s.deployment.id",
        Str,
        None,
        KindSet::ALL,
        "Deployment UID, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the owner of the pod's replica set)",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_uid)
    ),
    field!(
        "k8s.deployment.label",
        Str,
        Key,
        KindSet::ALL,
        "A deployment label (k8s.deployment.label[key] or k8s.deployment.label.key), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the owner of the pod's replica set)",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_label)
    ),
    field!(
        "k8s.deployment.labels",
        Str,
        None,
        KindSet::ALL,
        "Deployment labels as 'key:value, key:value', from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the owner of the pod's replica set)",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_labels)
    ),
    field!(
        "k8s.rc.name",
        Str,
        None,
        KindSet::ALL,
        "Replication controller name, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_name)
    ),
    field!(
        "k8s.rc.id",
        Str,
        None,
        KindSet::ALL,
        "Replication controller UID, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_uid)
    ),
    field!(
        "k8s.rc.label",
        Str,
        Key,
        KindSet::ALL,
        "A replication controller label (k8s.rc.label[key] or k8s.rc.label.key), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_label)
    ),
    field!(
        "k8s.rc.labels",
        Str,
        None,
        KindSet::ALL,
        "Replication controller labels as 'key:value, key:value', from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (the pod's controller owner reference)",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_labels)
    ),
    field!(
        "k8s.svc.name",
        Str,
        None,
        KindSet::ALL,
        "Service name, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (one value per service of the pod's namespace whose selector matches its labels; a check holds when it holds for any)",
        |e, a| k8s_services(e, a, object_name)
    ),
    field!(
        "k8s.svc.id",
        Str,
        None,
        KindSet::ALL,
        "Service UID, from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (one value per service of the pod's namespace whose selector matches its labels; a check holds when it holds for any)",
        |e, a| k8s_services(e, a, object_uid)
    ),
    field!(
        "k8s.svc.label",
        Str,
        Key,
        KindSet::ALL,
        "A service label (k8s.svc.label[key] or k8s.svc.label.key), from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (one value per service of the pod's namespace whose selector matches its labels; a check holds when it holds for any)",
        |e, a| k8s_services(e, a, object_label)
    ),
    field!(
        "k8s.svc.labels",
        Str,
        None,
        KindSet::ALL,
        "Service labels as 'key:value, key:value', from the Kubernetes API server through the agent's cache (in-cluster or --kubeconfig); absent without it or before the pod was listed (one value per service of the pod's namespace whose selector matches its labels; a check holds when it holds for any)",
        |e, a| k8s_services(e, a, object_labels)
    ),
    // The k8smeta plugin's names for the same metadata (Falco 0.37+).
    field!(
        "k8smeta.pod.name",
        Str,
        None,
        KindSet::ALL,
        "Pod name, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| Some(&m.pod), object_name)
    ),
    field!(
        "k8smeta.pod.uid",
        Str,
        None,
        KindSet::ALL,
        "Pod UID, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| Some(&m.pod), object_uid)
    ),
    field!(
        "k8smeta.pod.label",
        Str,
        Key,
        KindSet::ALL,
        "A pod label (k8smeta.pod.label[key]), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| Some(&m.pod), object_label)
    ),
    field!(
        "k8smeta.pod.labels",
        Str,
        None,
        KindSet::ALL,
        "Pod labels, a list of key:value (absent when none), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| Some(&m.pod), object_label_list)
    ),
    field!(
        "k8smeta.pod.ip",
        Str,
        None,
        KindSet::ALL,
        "Pod IP address (status.podIP), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, _| non_empty(&e.k8s_meta.as_deref()?.pod_ip)
    ),
    field!(
        "k8smeta.ns.name",
        Str,
        None,
        KindSet::ALL,
        "Namespace name, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_name)
    ),
    field!(
        "k8smeta.ns.uid",
        Str,
        None,
        KindSet::ALL,
        "Namespace UID, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_uid)
    ),
    field!(
        "k8smeta.ns.label",
        Str,
        Key,
        KindSet::ALL,
        "A namespace label (k8smeta.ns.label[key]), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_label)
    ),
    field!(
        "k8smeta.ns.labels",
        Str,
        None,
        KindSet::ALL,
        "Namespace labels, a list of key:value (absent when none), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.namespace.as_ref(), object_label_list)
    ),
    field!(
        "k8smeta.deployment.name",
        Str,
        None,
        KindSet::ALL,
        "Deployment name, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_name)
    ),
    field!(
        "k8smeta.deployment.uid",
        Str,
        None,
        KindSet::ALL,
        "Deployment UID, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_uid)
    ),
    field!(
        "k8smeta.deployment.label",
        Str,
        Key,
        KindSet::ALL,
        "A deployment label (k8smeta.deployment.label[key]), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_label)
    ),
    field!(
        "k8smeta.deployment.labels",
        Str,
        None,
        KindSet::ALL,
        "Deployment labels, a list of key:value (absent when none), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.deployment.as_ref(), object_label_list)
    ),
    field!(
        "k8smeta.rs.name",
        Str,
        None,
        KindSet::ALL,
        "Replica set name, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_name)
    ),
    field!(
        "k8smeta.rs.uid",
        Str,
        None,
        KindSet::ALL,
        "Replica set UID, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_uid)
    ),
    field!(
        "k8smeta.rs.label",
        Str,
        Key,
        KindSet::ALL,
        "A replica set label (k8smeta.rs.label[key]), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_label)
    ),
    field!(
        "k8smeta.rs.labels",
        Str,
        None,
        KindSet::ALL,
        "Replica set labels, a list of key:value (absent when none), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replica_set.as_ref(), object_label_list)
    ),
    field!(
        "k8smeta.rc.name",
        Str,
        None,
        KindSet::ALL,
        "Replication controller name, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_name)
    ),
    field!(
        "k8smeta.rc.uid",
        Str,
        None,
        KindSet::ALL,
        "Replication controller UID, from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_uid)
    ),
    field!(
        "k8smeta.rc.label",
        Str,
        Key,
        KindSet::ALL,
        "A replication controller label (k8smeta.rc.label[key]), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(e, a, |m| m.replication_controller.as_ref(), object_label)
    ),
    field!(
        "k8smeta.rc.labels",
        Str,
        None,
        KindSet::ALL,
        "Replication controller labels, a list of key:value (absent when none), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_object(
            e,
            a,
            |m| m.replication_controller.as_ref(),
            object_label_list
        )
    ),
    field!(
        "k8smeta.svc.name",
        Str,
        None,
        KindSet::ALL,
        "Service names (a list, one entry per service of the pod's namespace whose selector matches its labels), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_services(e, a, object_name)
    ),
    field!(
        "k8smeta.svc.uid",
        Str,
        None,
        KindSet::ALL,
        "Service UIDs (a list, one entry per service of the pod's namespace whose selector matches its labels), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_services(e, a, object_uid)
    ),
    field!(
        "k8smeta.svc.label",
        Str,
        Key,
        KindSet::ALL,
        "The values of a service label (k8smeta.svc.label[key]) (a list, one entry per service of the pod's namespace whose selector matches its labels), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_services(e, a, object_label)
    ),
    field!(
        "k8smeta.svc.labels",
        Str,
        None,
        KindSet::ALL,
        "Service labels, key:value (a list, one entry per service of the pod's namespace whose selector matches its labels), from the Kubernetes API server through the agent's cache, as Falco's k8smeta plugin gives it; absent without it or before the pod was listed",
        |e, a| k8s_services(e, a, object_label_list)
    ),
    field!(
        "container.start_ts",
        Int,
        None,
        KindSet::ALL,
        "Container start time, nanoseconds since the epoch",
        |e, _| e
            .container
            .as_ref()
            .and_then(|c| nonzero_time(c.start_time_ns))
    ),
    field!(
        "container.duration",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds since the container started",
        |e, _| e
            .container
            .as_ref()
            .and_then(|c| elapsed(e, c.start_time_ns))
    ),
    // k8s.*
    field!(
        "k8s.pod.name",
        Str,
        None,
        KindSet::ALL,
        "Pod name",
        |e, _| k8s_str(e, |p| &p.pod_name)
    ),
    field!("k8s.pod.uid", Str, None, KindSet::ALL, "Pod UID", |e, _| {
        k8s_str(e, |p| &p.pod_uid)
    }),
    field!(
        "k8s.ns.name",
        Str,
        None,
        KindSet::ALL,
        "Pod namespace",
        |e, _| k8s_str(e, |p| &p.namespace)
    ),
    field!(
        "k8s.pod.container.name",
        Str,
        None,
        KindSet::ALL,
        "Container name in the pod spec",
        |e, _| k8s_str(e, |p| &p.container_name)
    ),
    field!(
        "syscall.type",
        Str,
        None,
        KindSet::ALL,
        "System call name",
        |e, _| s(e.kind.as_str())
    ),
    field!(
        "proc.exeline",
        Str,
        None,
        KindSet::ALL,
        "argv[0] and arguments",
        |e, _| owned(cmdline(&e.process.exe, &e.process.args))
    ),
    field!("k8s.pod.id", Str, None, KindSet::ALL, "Pod UID", |e, _| {
        k8s_str(e, |p| &p.pod_uid)
    }),
    field!(
        "proc.pid.ts",
        Int,
        None,
        KindSet::ALL,
        "Process start time, nanoseconds since the epoch",
        |e, _| nonzero_time(e.process.start_time_ns)
    ),
    field!(
        "proc.ppid.ts",
        Int,
        None,
        KindSet::ALL,
        "Parent start time, nanoseconds since the epoch",
        |e, _| generation(e, 1).and_then(|g| nonzero_time(g.start_time_ns))
    ),
    field!(
        "evt.abspath",
        Str,
        None,
        FS_PATH,
        "Absolute path the call acted on",
        |e, _| path_of(e).map(|path| Value::Str(path.into()))
    ),
    field!(
        "evt.abspath.src",
        Str,
        None,
        FS_PATH,
        "Absolute source path of rename or link",
        |e, _| match &e.payload {
            Payload::Link { source, .. } => s(source),
            _ => None,
        }
    ),
    field!(
        "evt.abspath.dst",
        Str,
        None,
        FS_PATH,
        "Absolute destination path of rename or link",
        |e, _| match &e.payload {
            Payload::Link { target, .. } => s(target),
            _ => None,
        }
    ),
    // Event-class fields Falco rules use. Those whose description says "absent" (and why)
    // are not observed by the sensor: they load, and every check on them is false (an absent
    // field fails every check); the others derive from the call and its arguments.
    field!(
        "evt.buffer",
        Str,
        None,
        KindSet::NONE,
        "Data buffer of I/O events (absent: the sensor does not copy read or written data)",
        |_, _| None
    ),
    field!(
        "evt.is_open_exec",
        Bool,
        None,
        OPEN,
        "Creates a file with execute permission (O_CREAT or O_TMPFILE, or creat, with an x bit \
         in the mode)",
        |e, _| match &e.payload {
            Payload::Open { flags, mode, .. } => Some(Value::Bool(
                (e.kind == K::Creat || flags & (O_CREAT | O_TMPFILE_BIT) != 0) && mode & 0o111 != 0,
            )),
            _ => None,
        }
    ),
    field!(
        "evt.cpu",
        Int,
        None,
        KindSet::ALL,
        "Number of the CPU the event happened on; absent when the source does not say (recordings made before the sensor read it, the fallback)",
        |e, _| e.cpu.map(|cpu| Value::Int(i64::from(cpu)))
    ),
    field!(
        "evt.info",
        Str,
        None,
        KindSet::ALL,
        "Event description: the rendered arguments, as libsinsp for events other than syslog writes",
        |e, _| owned(all_args(e))
    ),
    field!(
        "evt.is_io",
        Bool,
        None,
        KindSet::ALL,
        "Event reads or writes through a descriptor (of the observed calls: sendto, sendmsg, \
         finit_module)",
        |e, _| Some(Value::Bool(IO_WRITES.union(IO_READS).contains(e.kind)))
    ),
    field!(
        "evt.is_io_read",
        Bool,
        None,
        KindSet::ALL,
        "Event reads through a descriptor (of the observed calls: finit_module, which the \
         driver flags as reading the module file)",
        |e, _| Some(Value::Bool(IO_READS.contains(e.kind)))
    ),
    field!(
        "evt.is_io_write",
        Bool,
        None,
        KindSet::ALL,
        "Event writes through a descriptor (of the observed calls: sendto, sendmsg)",
        |e, _| Some(Value::Bool(IO_WRITES.contains(e.kind)))
    ),
    field!(
        "evt.is_wait",
        Bool,
        None,
        KindSet::ALL,
        "Event waits (sleep, poll, futex...; none of the observed calls does)",
        |_, _| Some(Value::Bool(false))
    ),
    field!(
        "evt.is_syslog",
        Bool,
        None,
        KindSet::ALL,
        "Event writes to /dev/log",
        |e, _| Some(Value::Bool(
            IO_WRITES.contains(e.kind) && fd_name(e).is_some_and(|name| name == "/dev/log")
        ))
    ),
    field!(
        "proc.env",
        Str,
        OptionalKey,
        KindSet::ALL,
        "The environment at the last exec as 'NAME=value NAME1=value1', or proc.env[NAME] one \
         variable's value (empty when unset); absent when no environment was captured (the \
         sensor captures it only when a loaded rule reads proc.env or proc.aenv)",
        |e, arg| match arg {
            FieldArg::Key(name) => environment_variable(&e.process.env, name).map(Value::Str),
            _ => joined_environment(&e.process.env).map(Value::Str),
        }
    ),
    field!(
        "proc.loginshellid",
        Int,
        None,
        KindSet::ALL,
        "Pid of the oldest process, of the process and its recorded ancestors, whose name ends in 'sh' (libsinsp's definition); absent when none does",
        |e, _| (0..=e.ancestors.len())
            .rev()
            .filter_map(|index| generation(e, index))
            .find(|g| g.name.ends_with("sh"))
            .map(|g| Value::Int(i64::from(g.pid)))
    ),
    field!(
        "thread.cap_inheritable",
        Str,
        None,
        KindSet::ALL,
        "Inheritable capabilities, as thread.cap_effective",
        |e, _| owned(capability_names(e.process.cap_inheritable))
    ),
    field!(
        "user.shell",
        Str,
        None,
        KindSet::ALL,
        "Login shell of the user, from /etc/passwd in the process's root; absent when the user has no entry there",
        |e, _| non_empty(&e.process.user_shell)
    ),
    field!(
        "user.homedir",
        Str,
        None,
        KindSet::ALL,
        "Home directory of the user, from /etc/passwd in the process's root; absent when the user has no entry there",
        |e, _| non_empty(&e.process.user_homedir)
    ),
    field!(
        "fd.rip.name",
        Str,
        None,
        KindSet::NONE,
        "Remote domain name (absent: Falco answers it from its own DNS cache of the names the host resolved; the sensor does not watch DNS)",
        |_, _| None
    ),
    field!(
        "fd.lip.name",
        Str,
        None,
        KindSet::NONE,
        "Local domain name (absent: Falco answers it from its own DNS cache of the names the host resolved; the sensor does not watch DNS)",
        |_, _| None
    ),
    field!(
        "fd.cproto",
        Str,
        None,
        SOCK,
        "Client protocol: the port as decimal text, as libsinsp prints it without port resolution (Falco's default) (empty for a bound or listening socket)",
        |e, _| proto_text(e, client_server(e, false), true)
    ),
    field!(
        "fd.sproto",
        Str,
        None,
        SOCK,
        "Server protocol: the port as decimal text, as libsinsp prints it without port resolution (Falco's default) (empty for a bound or listening socket)",
        |e, _| proto_text(e, client_server(e, true), true)
    ),
    field!(
        "fd.lproto",
        Str,
        None,
        SOCK,
        "Local protocol: the port as decimal text, as libsinsp prints it without port resolution (Falco's default); absent for a bound or listening socket",
        |e, _| proto_text(e, local_remote(e, true), false)
    ),
    field!(
        "fd.rproto",
        Str,
        None,
        SOCK,
        "Remote protocol: the port as decimal text, as libsinsp prints it without port resolution (Falco's default); absent for a bound or listening socket",
        |e, _| proto_text(e, local_remote(e, false), false)
    ),
    field!(
        "fd.dev",
        Int,
        None,
        OPEN,
        "Device of the opened file's file system as stat's st_dev encodes it (major << 8 | minor for small numbers); absent as fd.dev.major",
        |e, _| e.opened_file.map(|file| Value::Int(i64::from(file.dev)))
    ),
    field!(
        "fd.ino",
        Int,
        None,
        OPEN,
        "Inode number of the opened file; absent as fd.dev.major",
        |e, _| e.opened_file.map(|file| Value::Int(file.ino as i64))
    ),
    field!(
        "container.type",
        Str,
        None,
        KindSet::ALL,
        "Container runtime: podman, docker, containerd or cri-o; absent on the host and for a plain runc container, which no Falco engine knows",
        |e, _| container_str(e, |c| &c.runtime)
    ),
    field!(
        "container.image.id",
        Str,
        None,
        KindSet::ALL,
        "Image id as the runtime keeps it (podman's 64 hex digits); absent where the runtime keeps none",
        |e, _| container_str(e, |c| &c.image_id)
    ),
    field!(
        "container.ip",
        Str,
        None,
        KindSet::NONE,
        "Container IP address (absent: Falco reads it from Docker or the CRI's pod sandbox, which the sensor does not query)",
        |_, _| None
    ),
    field!(
        "proc.pvpid",
        Int,
        None,
        KindSet::ALL,
        "Parent's pid in its own pid namespace",
        |e, _| e
            .ancestors
            .first()
            .map(|parent| Value::Int(i64::from(parent.vpid)))
    ),
    field!(
        "proc.stdin.type",
        Str,
        None,
        KindSet::ALL,
        "Type of descriptor 0 (stdin) when the event happened, as fd.type names it, read only when a loaded rule uses proc.stdin.type, proc.stdout.type, proc.stderr.type or fd.types (by the kernel probes, or from /proc/<pid>/fd when the fallback handles the event); absent when it is not open, otherwise, and for a process that exited before the fallback read it",
        |e, _| std_fd_type(e, 0)
    ),
    field!(
        "proc.stdout.type",
        Str,
        None,
        KindSet::ALL,
        "Type of descriptor 1 (stdout) when the event happened, as fd.type names it, read only when a loaded rule uses proc.stdin.type, proc.stdout.type, proc.stderr.type or fd.types (by the kernel probes, or from /proc/<pid>/fd when the fallback handles the event); absent when it is not open, otherwise, and for a process that exited before the fallback read it",
        |e, _| std_fd_type(e, 1)
    ),
    field!(
        "proc.stderr.type",
        Str,
        None,
        KindSet::ALL,
        "Type of descriptor 2 (stderr) when the event happened, as fd.type names it, read only when a loaded rule uses proc.stdin.type, proc.stdout.type, proc.stderr.type or fd.types (by the kernel probes, or from /proc/<pid>/fd when the fallback handles the event); absent when it is not open, otherwise, and for a process that exited before the fallback read it",
        |e, _| std_fd_type(e, 2)
    ),
    field!(
        "proc.stdin.name",
        Str,
        None,
        KindSet::NONE,
        "Name of the descriptor on stdin (absent: Falco keeps every descriptor's name, a path, socket tuple or pipe inode, in its descriptor table of the process; the kernel probes read the types of descriptors 0 to 2 only, as a name would cost a walk of the dentry tree per descriptor and event)",
        |_, _| None
    ),
    field!(
        "proc.stdout.name",
        Str,
        None,
        KindSet::NONE,
        "Name of the descriptor on stdout (absent: Falco keeps every descriptor's name, a path, socket tuple or pipe inode, in its descriptor table of the process; the kernel probes read the types of descriptors 0 to 2 only, as a name would cost a walk of the dentry tree per descriptor and event)",
        |_, _| None
    ),
    field!(
        "proc.stderr.name",
        Str,
        None,
        KindSet::NONE,
        "Name of the descriptor on stderr (absent: Falco keeps every descriptor's name, a path, socket tuple or pipe inode, in its descriptor table of the process; the kernel probes read the types of descriptors 0 to 2 only, as a name would cost a walk of the dentry tree per descriptor and event)",
        |_, _| None
    ),
    field!(
        "proc.pidns_init_start_ts",
        Int,
        None,
        KindSet::ALL,
        "Start of the process's pid namespace: the start time of the namespace's init (its child reaper), nanoseconds since the epoch, read by the kernel probes at the process's last exec or fork as Falco's driver reads it with its execve and clone events (on the boot clock, as proc start times; the driver reads the monotonic one, which differs only after a suspend); for processes found at start and not executed since, and from the fallback, the start of the process the namespace numbers 1 as /proc shows it, to the clock tick; absent when /proc does not show that process",
        |e, _| nonzero_time(e.process.pidns_init_start_ns)
    ),
    field!(
        "proc.exe_ino.ctime_duration_pidns_start",
        Int,
        None,
        KindSet::ALL,
        "Nanoseconds from the pid namespace's start (proc.pidns_init_start_ts) to the executable's ctime, when the executable changed after the namespace started (as libsinsp); absent otherwise and when either is unknown",
        |e, _| {
            let process = &e.process;
            (process.pidns_init_start_ns != 0 && process.exe_ctime_ns > process.pidns_init_start_ns)
                .then(|| Value::Int((process.exe_ctime_ns - process.pidns_init_start_ns) as i64))
        }
    ),
    field!(
        "thread.exectime",
        Int,
        None,
        KindSet::ALL,
        "CPU time of the last scheduled slice: 0, as libsinsp gives it on every event but a scheduler switch (it measures slices between switch events, which the sensor does not report)",
        |_, _| Some(Value::Int(0))
    ),
    field!(
        "thread.totexectime",
        Int,
        None,
        KindSet::ALL,
        "Total CPU time of the thread summed over switch events: 0 without them, as in libsinsp (see thread.exectime)",
        |_, _| Some(Value::Int(0))
    ),
];

/// Every supported field as `(name, description)`, in table order.
pub fn supported_fields() -> impl Iterator<Item = (&'static str, &'static str)> {
    all_fields().map(|def| (def.name, def.desc))
}

/// The syscall rows (this table, the rest of the `evt` class, the classes the sensor cannot
/// supply), then the Kubernetes audit rows.
fn all_fields() -> impl Iterator<Item = &'static FieldDef> {
    FIELDS
        .iter()
        .chain(event_class::FIELDS)
        .chain(container_config::FIELDS)
        .chain(absent_classes::FIELDS)
        .chain(crate::k8saudit::FIELDS)
}

/// Fields whose dotted suffix is their key argument (`evt.arg.flags` is `evt.arg[flags]`).
const KEYED_PREFIXES: [&str; 13] = [
    "evt.arg.",
    "evt.rawarg.",
    "evt.type.is.",
    "mesos.task.label.",
    "marathon.app.label.",
    "container.label.",
    "k8s.pod.label.",
    "k8s.ns.label.",
    "k8s.rc.label.",
    "k8s.rs.label.",
    "k8s.svc.label.",
    "k8s.deployment.label.",
    "thread.cgroup.",
];

/// The length of a `k8s.*.label.KEY` placeholder at the start of `text` when its dotted key
/// holds '/' or '-', which libsinsp's k8s filtercheck reads in an output
/// (`%k8s.pod.label.app.kubernetes.io/name`: letters, digits, '/', '_', '-' and '.');
/// `None` for every other text, whose field name ends at the first other character.
pub(crate) fn dotted_k8s_label_len(text: &str) -> Option<usize> {
    let prefix = KEYED_PREFIXES
        .iter()
        .filter(|prefix| prefix.starts_with("k8s."))
        .find(|prefix| text.starts_with(**prefix))?;
    let key = &text[prefix.len()..];
    let key_len = key
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.')))
        .unwrap_or(key.len());
    key[..key_len]
        .contains(['/', '-'])
        .then_some(prefix.len() + key_len)
}

/// Looks a field up by name; returns the row and the argument from a dotted suffix.
pub(crate) fn lookup(name: &str) -> Option<(&'static FieldDef, Option<String>)> {
    if let Some(def) = all_fields().find(|def| def.name == name) {
        return Some((def, None));
    }
    for prefix in KEYED_PREFIXES {
        if let Some(key) = name.strip_prefix(prefix) {
            let base = &prefix[..prefix.len() - 1];
            let def = all_fields().find(|def| def.name == base)?;
            return Some((def, Some(key.to_owned())));
        }
    }
    None
}

fn open_flags(event: &Event) -> Option<u32> {
    match &event.payload {
        Payload::Open { flags, .. } => Some(*flags),
        _ => None,
    }
}

const OPEN_FLAGS: [(u32, &str); 14] = [
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o20000000, "O_TMPFILE"),
];

fn open_flag_names(flags: u32) -> String {
    let mut names = vec![match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    }];
    for (bit, name) in OPEN_FLAGS {
        if flags & bit == bit {
            names.push(name);
        }
    }
    names.join("|")
}

fn exe_flag_names(event: &Event) -> String {
    let process = &event.process;
    let mut names = Vec::new();
    for (set, name) in [
        (process.exe_writable, "EXE_WRITABLE"),
        (process.exe_upper_layer, "EXE_UPPER_LAYER"),
        (process.exe_from_memfd, "EXE_FROM_MEMFD"),
    ] {
        if set {
            names.push(name);
        }
    }
    names.join("|")
}

const PTRACE_REQUESTS: [(u64, &str); 22] = [
    (0, "PTRACE_TRACEME"),
    (1, "PTRACE_PEEKTEXT"),
    (2, "PTRACE_PEEKDATA"),
    (3, "PTRACE_PEEKUSR"),
    (4, "PTRACE_POKETEXT"),
    (5, "PTRACE_POKEDATA"),
    (6, "PTRACE_POKEUSR"),
    (7, "PTRACE_CONT"),
    (8, "PTRACE_KILL"),
    (9, "PTRACE_SINGLESTEP"),
    (12, "PTRACE_GETREGS"),
    (13, "PTRACE_SETREGS"),
    (14, "PTRACE_GETFPREGS"),
    (15, "PTRACE_SETFPREGS"),
    (16, "PTRACE_ATTACH"),
    (17, "PTRACE_DETACH"),
    (24, "PTRACE_SYSCALL"),
    (0x4200, "PTRACE_SETOPTIONS"),
    (0x4206, "PTRACE_SEIZE"),
    (0x4207, "PTRACE_INTERRUPT"),
    (0x4208, "PTRACE_LISTEN"),
    (0x4201, "PTRACE_GETEVENTMSG"),
];

const SOCKET_DOMAINS: [(u32, &str); 6] = [
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (10, "AF_INET6"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (0, "AF_UNSPEC"),
];

const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn capability_names(mask: u64) -> String {
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(" ")
}

const ERRNO_NAMES: [&str; 41] = [
    "SUCCESS",
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
];

fn result_name(ret: i64) -> String {
    if ret >= 0 {
        return "SUCCESS".to_owned();
    }
    let errno = ret.unsigned_abs();
    match errno {
        111 => "ECONNREFUSED".to_owned(),
        115 => "EINPROGRESS".to_owned(),
        110 => "ETIMEDOUT".to_owned(),
        113 => "EHOSTUNREACH".to_owned(),
        101 => "ENETUNREACH".to_owned(),
        98 => "EADDRINUSE".to_owned(),
        _ => match ERRNO_NAMES.get(errno as usize) {
            Some(name) => (*name).to_owned(),
            None => format!("E{errno}"),
        },
    }
}

/// The named arguments of an event, in Falco's names, rendered (or raw).
fn named_args(event: &Event, raw: bool) -> Vec<(&'static str, String)> {
    let mut args = Vec::new();
    match &event.payload {
        Payload::None => {
            if matches!(event.kind, K::Execve | K::Execveat) {
                args.push(("exe", event.process.exe.to_string()));
                args.push(("args", event.process.args.join(" ")));
                args.push(("cwd", event.process.cwd.to_string()));
                args.push(("flags", exe_flag_names(event)));
            }
        }
        Payload::Spawn { child_pid, flags } => {
            args.push(("res", child_pid.to_string()));
            args.push(("flags", flags.to_string()));
        }
        Payload::Exit { status, signal } => {
            args.push(("status", status.to_string()));
            args.push(("sig", signal.to_string()));
        }
        Payload::Open { fd, flags, mode } => {
            args.push(("fd", fd.num.to_string()));
            args.push(("name", fd.name.clone()));
            let flags = if raw {
                flags.to_string()
            } else {
                open_flag_names(*flags)
            };
            args.push(("flags", flags));
            args.push(("mode", format!("0{mode:o}")));
        }
        Payload::Path { path, mode, flags } => {
            let path_name = match event.kind {
                K::Chmod | K::Fchmodat => "filename",
                K::Umount | K::Umount2 => "name",
                K::Unlinkat | K::Mkdirat => "name",
                _ => "path",
            };
            args.push((path_name, path.clone()));
            args.push(("mode", format!("0{mode:o}")));
            args.push(("flags", flags.to_string()));
        }
        Payload::Chown { path, uid, gid } => {
            args.push(("path", path.clone()));
            args.push(("uid", uid.to_string()));
            args.push(("gid", gid.to_string()));
        }
        Payload::Link { source, target } => {
            if matches!(event.kind, K::Symlink | K::Symlinkat) {
                args.push(("target", source.clone()));
                args.push(("linkpath", target.clone()));
            } else {
                args.push(("oldpath", source.clone()));
                args.push(("newpath", target.clone()));
            }
        }
        Payload::SocketCreate {
            domain,
            socket_type,
            protocol,
        } => {
            let domain = match SOCKET_DOMAINS.iter().find(|(number, _)| number == domain) {
                Some((_, name)) if !raw => (*name).to_owned(),
                _ => domain.to_string(),
            };
            args.push(("domain", domain));
            args.push(("type", socket_type.to_string()));
            args.push(("proto", protocol.to_string()));
        }
        Payload::Network { fd } => {
            args.push(("fd", fd.num.to_string()));
            if let Some(name) = fd_name(event) {
                args.push(("tuple", name.into_owned()));
            }
        }
        Payload::Dup { fd, new_fd } => {
            args.push(("oldfd", fd.num.to_string()));
            args.push(("newfd", new_fd.to_string()));
        }
        Payload::Ptrace {
            request,
            target_pid,
        } => {
            let request = match PTRACE_REQUESTS.iter().find(|(number, _)| number == request) {
                Some((_, name)) if !raw => (*name).to_owned(),
                _ => request.to_string(),
            };
            args.push(("request", request));
            args.push(("pid", target_pid.to_string()));
        }
        Payload::Module { name } => args.push(("name", name.clone())),
        Payload::Mount {
            source,
            target,
            fstype,
            flags,
        } => {
            args.push(("dev", source.clone()));
            args.push(("dir", target.clone()));
            args.push(("type", fstype.clone()));
            args.push(("flags", flags.to_string()));
        }
        Payload::Namespace { path, flags } => {
            if !path.is_empty() {
                args.push(("fd", path.clone()));
            }
            args.push((
                if event.kind == K::Setns {
                    "nstype"
                } else {
                    "flags"
                },
                flags.to_string(),
            ));
        }
        Payload::SetId { id, name } => {
            let arg_name = if matches!(event.kind, K::Setgid | K::Setresgid) {
                "gid"
            } else {
                "uid"
            };
            args.push((arg_name, id_arg(*id, name, raw)));
        }
        // In the order of the driver's capset exit event.
        Payload::Capset {
            inheritable,
            permitted,
            effective,
        } => {
            args.push(("cap_inheritable", capability_names(*inheritable)));
            args.push(("cap_permitted", capability_names(*permitted)));
            args.push(("cap_effective", capability_names(*effective)));
        }
        Payload::Memfd { name, flags } => {
            args.push(("name", name.clone()));
            args.push(("flags", flags.to_string()));
        }
        Payload::Bpf { cmd } => args.push(("cmd", cmd.to_string())),
        // Audit events have no system call arguments; rules read them through `ka.*`.
        Payload::K8sAudit { .. } => {}
    }
    args
}

/// A `PT_UID`/`PT_GID` argument as libsinsp prints it: raw, the number (`-1` for the
/// "unchanged" id `(uid_t)-1`); rendered, the name in the process's root, `<NA>` when the id
/// has none there, `<NONE>` for `(uid_t)-1`.
fn id_arg(id: u32, name: &str, raw: bool) -> String {
    match (id, raw) {
        (u32::MAX, true) => "-1".to_owned(),
        (u32::MAX, false) => "<NONE>".to_owned(),
        (_, true) => id.to_string(),
        (_, false) if name.is_empty() => "<NA>".to_owned(),
        (_, false) => name.to_owned(),
    }
}

fn event_arg<'e>(event: &'e Event, arg: &FieldArg, raw: bool) -> Option<Value<'e>> {
    if let FieldArg::Key(key) = arg {
        if key == "res" {
            return owned(if raw {
                event.ret.to_string()
            } else {
                result_name(event.ret)
            });
        }
        // `evt.arg[N]` addresses arguments by position.
        if let Ok(position) = key.parse::<usize>() {
            return named_args(event, raw)
                .into_iter()
                .nth(position)
                .map(|(_, value)| Value::Str(value.into()));
        }
        return named_args(event, raw)
            .into_iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| Value::Str(value.into()));
    }
    None
}

/// `evt.args`: each argument as `name=raw`, or `name=raw(rendered)` when rendering changes it
/// (flag names, user names), as libsinsp joins an argument's string and resolved forms.
fn all_args(event: &Event) -> String {
    named_args(event, true)
        .into_iter()
        .zip(named_args(event, false))
        .map(|((name, raw), (_, rendered))| {
            if raw == rendered {
                format!("{name}={raw}")
            } else {
                format!("{name}={raw}({rendered})")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn time_of_day(nanoseconds: u64) -> String {
    let seconds = nanoseconds / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        (seconds / 3600) % 24,
        (seconds / 60) % 60,
        seconds % 60,
        nanoseconds % 1_000_000_000
    )
}

fn iso8601(nanoseconds: u64) -> String {
    let seconds = nanoseconds / 1_000_000_000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{}Z",
        time_of_day(nanoseconds)
    )
}

#[cfg(test)]
mod tests {
    use crate::fields::*;

    #[test]
    fn table_is_consistent() {
        for (index, def) in FIELDS.iter().enumerate() {
            assert!(!def.desc.is_empty(), "{} has no description", def.name);
            assert!(
                FIELDS[index + 1..]
                    .iter()
                    .all(|other| other.name != def.name),
                "{} is listed twice",
                def.name
            );
            // Extraction must not panic on an empty event of any kind.
            for kind in EventKind::ALL {
                let event = Event::new(*kind);
                let arg = match def.arg {
                    ArgSpec::Key => FieldArg::Key("x".into()),
                    ArgSpec::IndexOrGlob => FieldArg::Glob(PathGlob::new("x")),
                    _ => FieldArg::None,
                };
                let _ = (def.extract)(&event, &arg);
            }
        }
        assert!(
            lookup("evt.arg.flags")
                .is_some_and(|(def, key)| def.name == "evt.arg" && key.as_deref() == Some("flags"))
        );
        assert!(lookup("proc.nope").is_none());
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            iso8601(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123000000Z"
        );
        assert_eq!(open_flag_names(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(capability_names((1 << 21) | 1), "CAP_CHOWN CAP_SYS_ADMIN");
        assert_eq!(result_name(-2), "ENOENT");
        assert_eq!(result_name(-115), "EINPROGRESS");
        assert_eq!(
            image_parts("host:5000/a/b:1.2@sha256:ab"),
            ("host:5000/a/b", "1.2", "sha256:ab")
        );
        assert_eq!(image_parts("host:5000/a"), ("host:5000/a", "", ""));
        assert_eq!(dirname("/etc/shadow"), "/etc");
        assert_eq!(dirname("/x"), "/");
        assert_eq!(basename("/etc/shadow"), "shadow");
    }
}
