//! The container fields read from the engine's configuration of the container rather than its
//! identity: its mounts (`container.mounts`, `container.mount*`), its health check and its
//! Kubernetes probes (`container.healthcheck`, `container.liveness_probe`,
//! `container.readiness_probe`, `proc.is_container_healthcheck` and the two probe kinds), as
//! libsinsp's `sinsp_filter_check_container` and its process categories give them. The sensor
//! attaches what the engine lists ([`palisade_event::Container::mounts`] and `health_probes`),
//! the agent what the API server's pod spec says ([`palisade_event::K8sMeta::probes`]); where
//! neither was read the fields are absent, as for a container libsinsp has no information on.

use std::borrow::Cow;

use palisade_event::{Ancestor, Container, ContainerMount, Event, HealthProbe, ProbeKind};

use super::{ArgSpec, FieldArg, FieldDef, FieldType, KindSet, Value};

/// The container's mounts; `None` on the host and where the engine's list was not read.
fn mounts(event: &Event) -> Option<&[ContainerMount]> {
    event.container.as_ref()?.mounts.as_deref()
}

/// libsinsp's form of a mount: `source:dest:mode:rdwr:propagation`.
fn mount_text(mount: &ContainerMount) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        mount.source, mount.dest, mount.mode, mount.rdwr, mount.propagation
    )
}

/// Which path a mount is looked up by when the argument is not a number.
#[derive(Clone, Copy)]
enum By {
    Source,
    Dest,
}

/// The mount a field's argument names: a number is an index into the list, anything else a
/// glob (as libsinsp's `glob_match`, `*` crossing `/`, compiled with the rule) matched against
/// the source or the destination; the first that matches.
fn mount_at<'e>(event: &'e Event, arg: &FieldArg, by: By) -> Option<&'e ContainerMount> {
    let mounts = mounts(event)?;
    let glob = match arg {
        FieldArg::Glob(glob) => glob,
        FieldArg::Index(index) => return mounts.get(*index),
        FieldArg::Key(_) | FieldArg::None => return None,
    };
    mounts.iter().find(|mount| {
        glob.is_match(match by {
            By::Source => &mount.source,
            By::Dest => &mount.dest,
        })
    })
}

fn owned(text: String) -> Option<Value<'static>> {
    Some(Value::Str(Cow::Owned(text)))
}

/// A mount field: the part `pick` gives of the mount the argument names.
fn mount_part<'e>(
    event: &'e Event,
    arg: &FieldArg,
    by: By,
    pick: fn(&ContainerMount) -> Cow<'_, str>,
) -> Option<Value<'e>> {
    mount_at(event, arg, by).map(|mount| Value::Str(pick(mount)))
}

/// The container's probes: the engine's health check and the `exec` probes its pod's spec
/// gives the container (libsinsp reads the same three kinds, the probes from a Docker
/// container's kubectl annotation; the pod spec the API server holds is that annotation's
/// source). `None` on the host and when neither the engine's configuration nor the pod was
/// read.
fn probes(event: &Event) -> Option<Vec<&HealthProbe>> {
    let container = event.container.as_ref()?;
    let pod_probes = match (&container.k8s, &event.k8s_meta) {
        (Some(pod), Some(meta)) => Some(
            meta.probes
                .iter()
                .filter(move |k8s_probe| k8s_probe.container == pod.container_name)
                .map(|k8s_probe| &k8s_probe.probe),
        ),
        _ => None,
    };
    if container.health_probes.is_none() && pod_probes.is_none() {
        return None;
    }
    Some(
        container
            .health_probes
            .iter()
            .flatten()
            .chain(pod_probes.into_iter().flatten())
            .collect(),
    )
}

/// The container's probe of `kind` as libsinsp prints it (the program and its arguments,
/// space-separated), `NONE` when the container has none of that kind.
fn probe_text(event: &Event, kind: ProbeKind) -> Option<Value<'static>> {
    let probes = probes(event)?;
    owned(probes.iter().find(|probe| probe.kind == kind).map_or_else(
        || "NONE".to_owned(),
        |probe| {
            std::iter::once(probe.exe.as_str())
                .chain(probe.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        },
    ))
}

/// One process of an event's ancestry, as the category rule reads it.
struct Lineage<'e> {
    vpid: u32,
    exe: &'e str,
    args: &'e [String],
    container_id: &'e str,
}

impl Lineage<'_> {
    fn runs(&self, probe: &HealthProbe) -> bool {
        probe.exe == self.exe && probe.args.as_slice() == self.args
    }

    /// A container's init: the process numbered 1 in a container's pid namespace.
    fn is_container_init(&self) -> bool {
        self.vpid == 1 && !self.container_id.is_empty()
    }

    /// A host process: what starts a container, so no container's init is above it (short of
    /// a container's process moving its child into a host cgroup, which takes the host's
    /// root).
    fn is_on_host(&self) -> bool {
        self.container_id.is_empty()
    }
}

/// A process's command category, as libsinsp's `sinsp_threadinfo::m_category`.
#[derive(Clone, Copy, PartialEq)]
enum Category {
    /// `CAT_NONE`: it may still become a probe's when it runs a probe's command.
    None,
    /// `CAT_CONTAINER`: a container's init, and what it starts.
    Container,
    /// One of the container's health probes, and what it starts.
    Probe(ProbeKind),
    /// Decided by processes the event's ancestry does not show: any of the others.
    Unknown,
}

/// The category libsinsp's `identify_category` gives `member` of `container` at its exec,
/// from its parent's category and whether a container's init is above it (`None`: not known,
/// the ancestry shown ends inside a container and shows no container init).
fn member_category(
    member: &Lineage<'_>,
    parent: Category,
    init_above: Option<bool>,
    container: &Container,
    probes: &[&HealthProbe],
) -> Category {
    if member.container_id.is_empty() {
        // libsinsp leaves host processes without a category.
        return Category::None;
    }
    if member.vpid == 1 {
        return Category::Container;
    }
    if parent != Category::None {
        return parent;
    }
    if member.container_id != container.id {
        // Another container's process, tested against that container's probes, which the
        // event does not carry.
        return Category::Unknown;
    }
    let Some(probe) = probes.iter().find(|probe| member.runs(probe)) else {
        return Category::None;
    };
    match init_above {
        Some(false) => Category::Probe(probe.kind),
        Some(true) => Category::None,
        None => Category::Unknown,
    }
}

/// The category of the event's process by libsinsp's command categories
/// (`sinsp_container_manager::identify_category`, decided at each exec): a container's
/// process numbered 1 in its pid namespace is the container's, and so is everything it
/// starts; a process that takes no category from its parent and whose program and arguments
/// equal one of its container's probes, with no container's init above it (the runtime
/// started it from outside, as `podman healthcheck run` and the kubelet do), is that probe's,
/// and so is everything it starts; other processes have none. The categories are recomputed
/// from the oldest ancestor down. Where the ancestry ends inside a container (deeper than
/// the sensor's ancestry depth, or a parent it does not know) without a container init, what
/// is above is unknown and no probe category is given: libsinsp, with the whole thread table,
/// would find the init there, and a missing ancestor must not make a process a health check.
/// `None` on the host and while the container's metadata is incomplete (libsinsp leaves the
/// category unset then).
fn probe_category(event: &Event) -> Option<ProbeKind> {
    let container: &Container = event.container.as_ref()?;
    let probes = probes(event)?;
    if container.metadata_missing || probes.is_empty() {
        return None;
    }
    let process = &event.process;
    let own = Lineage {
        vpid: process.vpid,
        exe: &process.exe,
        args: &process.args,
        container_id: &container.id,
    };
    let ancestors = event.ancestors.iter().map(|ancestor: &Ancestor| Lineage {
        vpid: ancestor.vpid,
        exe: &ancestor.exe,
        args: &ancestor.args,
        container_id: &ancestor.container_id,
    });
    let lineage: Vec<Lineage<'_>> = std::iter::once(own).chain(ancestors).collect();
    let oldest = lineage.last()?;
    let (mut category, mut init_above) = if oldest.is_on_host() {
        (Category::None, Some(false))
    } else {
        (Category::Unknown, None)
    };
    // From the oldest known ancestor down to the process, as the categories were decided.
    for member in lineage.iter().rev() {
        category = member_category(member, category, init_above, container, &probes);
        if member.is_container_init() {
            init_above = Some(true);
        }
    }
    match category {
        Category::Probe(kind) => Some(kind),
        Category::None | Category::Container | Category::Unknown => None,
    }
}

fn is_probe(event: &Event, kind: ProbeKind) -> Option<Value<'static>> {
    Some(Value::Bool(probe_category(event) == Some(kind)))
}

macro_rules! row {
    ($name:literal, $ty:ident, $arg:ident, $desc:expr, $extract:expr) => {
        FieldDef {
            name: $name,
            ty: FieldType::$ty,
            arg: ArgSpec::$arg,
            kinds: KindSet::ALL,
            desc: $desc,
            extract: $extract,
        }
    };
}

/// Where the mounts come from, for every mount row.
macro_rules! mounts_from {
    () => {
        "; from the mounts the container's engine lists (podman's: its named volumes, then the \
         other volumes and binds in the order asked, tmpfs ones left out, as its inspect \
         shows them); absent on the host and for containers whose engine's list the sensor \
         does not read (docker, containerd, CRI-O, plain runc)"
    };
}

/// Where the probes come from, for every probe text row.
macro_rules! probes_from {
    () => {
        "; absent on the host and for containers of which neither the engine's configuration \
         (podman's) nor the pod (through the agent's Kubernetes API cache) was read"
    };
}

/// What names a single mount.
macro_rules! mount_argument {
    ($by:literal) => {
        concat!(
            ": the mount numbered N (from 0) or the first whose ",
            $by,
            " matches the glob given (container.mount.dest[/var/lib/*]; '*' crosses '/', as \
             libsinsp's glob match); absent when none does"
        )
    };
}

pub(super) const FIELDS: &[FieldDef] = &[
    row!(
        "container.mounts",
        Str,
        None,
        concat!(
            "The container's mounts, each as source:dest:mode:rdwr:propagation (mode the \
             relabelling asked for, z or Z, or empty; rdwr true or false), comma-separated; \
             empty for a container without any",
            mounts_from!()
        ),
        |e, _| owned(
            mounts(e)?
                .iter()
                .map(mount_text)
                .collect::<Vec<_>>()
                .join(",")
        )
    ),
    row!(
        "container.mount",
        Str,
        IndexOrGlob,
        concat!(
            "One mount as source:dest:mode:rdwr:propagation",
            mount_argument!("source"),
            mounts_from!()
        ),
        |e, arg| mount_at(e, arg, By::Source).and_then(|mount| owned(mount_text(mount)))
    ),
    row!(
        "container.mount.source",
        Str,
        IndexOrGlob,
        concat!(
            "Source (host path) of one mount",
            mount_argument!("destination"),
            mounts_from!()
        ),
        |e, arg| mount_part(e, arg, By::Dest, |mount| Cow::Borrowed(&mount.source))
    ),
    row!(
        "container.mount.dest",
        Str,
        IndexOrGlob,
        concat!(
            "Destination (path in the container) of one mount",
            mount_argument!("source"),
            mounts_from!()
        ),
        |e, arg| mount_part(e, arg, By::Source, |mount| Cow::Borrowed(&mount.dest))
    ),
    row!(
        "container.mount.mode",
        Str,
        IndexOrGlob,
        concat!(
            "Mode (the relabelling asked for, z or Z, or empty) of one mount",
            mount_argument!("source"),
            mounts_from!()
        ),
        |e, arg| mount_part(e, arg, By::Source, |mount| Cow::Borrowed(&mount.mode))
    ),
    row!(
        "container.mount.rdwr",
        Str,
        IndexOrGlob,
        concat!(
            "'true' when one mount is read-write, else 'false'",
            mount_argument!("source"),
            mounts_from!()
        ),
        |e, arg| mount_part(e, arg, By::Source, |mount| {
            Cow::Borrowed(if mount.rdwr { "true" } else { "false" })
        })
    ),
    row!(
        "container.mount.propagation",
        Str,
        IndexOrGlob,
        concat!(
            "Propagation (rprivate, rslave, ...; empty when not set) of one mount",
            mount_argument!("source"),
            mounts_from!()
        ),
        |e, arg| mount_part(e, arg, By::Source, |mount| Cow::Borrowed(
            &mount.propagation
        ))
    ),
    row!(
        "container.healthcheck",
        Str,
        None,
        concat!(
            "The container's health check as the program and its arguments, space-separated \
             (a CMD-SHELL check is /bin/sh -c and its command, as libsinsp reads Docker's \
             form), NONE when it has none; from podman's configuration of the container",
            probes_from!()
        ),
        |e, _| probe_text(e, ProbeKind::Healthcheck)
    ),
    row!(
        "container.liveness_probe",
        Str,
        None,
        concat!(
            "The container's exec liveness probe as the program and its arguments, \
             space-separated (the pod spec's command, which the kubelet runs without a \
             shell), NONE when it has none; from the pod spec the Kubernetes API server holds \
             (libsinsp reads the same spec from a Docker container's kubectl annotation)",
            probes_from!()
        ),
        |e, _| probe_text(e, ProbeKind::LivenessProbe)
    ),
    row!(
        "container.readiness_probe",
        Str,
        None,
        concat!(
            "The container's exec readiness probe, as container.liveness_probe",
            probes_from!()
        ),
        |e, _| probe_text(e, ProbeKind::ReadinessProbe)
    ),
    row!(
        "proc.is_container_healthcheck",
        Bool,
        None,
        "The process runs the container's health check, as libsinsp decides it at each exec: \
         it takes no category from its parent, its program and arguments equal the check's \
         (container.healthcheck) and no container's process numbered 1 is above it (the \
         runtime started it from outside, as podman healthcheck run does), or it descends \
         from such a process with no container init between; as in libsinsp, a command run \
         by podman exec (or started by one) that equals the check's counts too. False \
         otherwise, on the host, while the container's metadata is incomplete, and where the \
         process's known ancestry neither reaches the host's init nor shows a container init \
         (deeper than the sensor's ancestry depth, or an unknown parent)",
        |e, _| is_probe(e, ProbeKind::Healthcheck)
    ),
    row!(
        "proc.is_container_liveness_probe",
        Bool,
        None,
        "The process runs the container's exec liveness probe (container.liveness_probe), \
         decided as proc.is_container_healthcheck is (the kubelet has the runtime start the \
         probe's command from outside the container)",
        |e, _| is_probe(e, ProbeKind::LivenessProbe)
    ),
    row!(
        "proc.is_container_readiness_probe",
        Bool,
        None,
        "The process runs the container's exec readiness probe (container.readiness_probe), \
         decided as proc.is_container_healthcheck is",
        |e, _| is_probe(e, ProbeKind::ReadinessProbe)
    ),
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use palisade_event::{EventKind, K8sMeta, K8sPod, K8sProbe};

    use super::*;
    use crate::fields::{PathGlob, lookup};

    const ID: &str = "c0ffee";

    /// The value of `name` or `name[key]` for the event.
    fn field<'e>(event: &'e Event, reference: &str) -> Option<Value<'e>> {
        let (name, key) = match reference.split_once('[') {
            Some((name, key)) => (name, Some(key.trim_end_matches(']').to_owned())),
            None => (reference, None),
        };
        let (def, _) = lookup(name).unwrap_or_else(|| panic!("{name} is a field"));
        // As the compiler resolves the argument.
        let arg = match (def.arg, key) {
            (_, None) => FieldArg::None,
            (ArgSpec::IndexOrGlob, Some(key)) => key
                .parse()
                .map_or_else(|_| FieldArg::Glob(PathGlob::new(&key)), FieldArg::Index),
            (_, Some(key)) => FieldArg::Key(key),
        };
        (def.extract)(event, &arg)
    }

    fn text(value: Option<Value<'_>>) -> Option<String> {
        value.map(|value| value.render())
    }

    fn in_container(container: Container) -> Event {
        let mut event = Event::new(EventKind::Execve);
        event.container = Some(Arc::new(Container {
            id: ID.into(),
            ..container
        }));
        event
    }

    fn mount(
        source: &str,
        dest: &str,
        mode: &str,
        rdwr: bool,
        propagation: &str,
    ) -> ContainerMount {
        ContainerMount {
            source: source.into(),
            dest: dest.into(),
            mode: mode.into(),
            rdwr,
            propagation: propagation.into(),
        }
    }

    #[test]
    fn mounts_read_as_libsinsp_prints_and_finds_them() {
        let event = in_container(Container {
            mounts: Some(vec![
                mount(
                    "/var/lib/containers/storage/volumes/v/_data",
                    "/vol",
                    "",
                    true,
                    "rprivate",
                ),
                mount("/srv/data", "/data", "Z", false, "rslave"),
            ]),
            ..Container::default()
        });
        let get = |name: &str| text(field(&event, name));
        assert_eq!(
            get("container.mounts").as_deref(),
            Some(
                "/var/lib/containers/storage/volumes/v/_data:/vol::true:rprivate,\
                 /srv/data:/data:Z:false:rslave"
            )
        );
        assert_eq!(
            get("container.mount[1]").as_deref(),
            Some("/srv/data:/data:Z:false:rslave")
        );
        assert_eq!(get("container.mount[2]"), None, "no third mount");
        // By source, a glob whose '*' crosses '/'.
        assert_eq!(
            get("container.mount[/var/*]").as_deref(),
            Some("/var/lib/containers/storage/volumes/v/_data:/vol::true:rprivate")
        );
        assert_eq!(get("container.mount[/etc]"), None);
        // The source by destination, the others by source.
        assert_eq!(
            get("container.mount.source[/data]").as_deref(),
            Some("/srv/data")
        );
        assert_eq!(get("container.mount.source[/srv/data]"), None);
        assert_eq!(
            get("container.mount.dest[/srv/*]").as_deref(),
            Some("/data")
        );
        assert_eq!(get("container.mount.mode[/srv/data]").as_deref(), Some("Z"));
        assert_eq!(get("container.mount.mode[0]").as_deref(), Some(""));
        assert_eq!(
            get("container.mount.rdwr[/srv/data]").as_deref(),
            Some("false")
        );
        assert_eq!(get("container.mount.rdwr[0]").as_deref(), Some("true"));
        assert_eq!(
            get("container.mount.propagation[1]").as_deref(),
            Some("rslave")
        );

        let none = in_container(Container {
            mounts: Some(Vec::new()),
            ..Container::default()
        });
        assert_eq!(text(field(&none, "container.mounts")).as_deref(), Some(""));
        assert_eq!(text(field(&none, "container.mount[0]")), None);
        // A pattern globset cannot compile matches itself, as fnmatch takes an unclosed '['.
        let bracket = in_container(Container {
            mounts: Some(vec![mount("/srv/a[b", "/data", "", true, "")]),
            ..Container::default()
        });
        assert_eq!(
            text(field(&bracket, "container.mount.dest[/srv/a[b]")).as_deref(),
            Some("/data")
        );
        assert_eq!(text(field(&bracket, "container.mount.dest[/srv/ab]")), None);
        let unread = in_container(Container::default());
        assert_eq!(text(field(&unread, "container.mounts")), None);
        let host = Event::new(EventKind::Execve);
        assert_eq!(text(field(&host, "container.mounts")), None);
    }

    /// A container whose health check is a CMD-SHELL check.
    fn with_check() -> Container {
        Container {
            health_probes: Some(vec![HealthProbe {
                kind: ProbeKind::Healthcheck,
                exe: "/bin/sh".into(),
                args: CHECK.iter().map(|arg| arg.to_string()).collect(),
            }]),
            ..Container::default()
        }
    }

    fn process(event: &mut Event, vpid: u32, exe: &str, args: &[&str]) {
        event.process.vpid = vpid;
        event.process.exe = exe.into();
        event.process.args = args
            .iter()
            .map(|arg| arg.to_string())
            .collect::<Vec<_>>()
            .into();
    }

    /// An ancestor numbered `vpid` in its pid namespace: the host's when `container_id` is
    /// empty, else the container's.
    fn ancestor(vpid: u32, exe: &str, args: &[&str], container_id: &str) -> Ancestor {
        Ancestor {
            vpid,
            exe: exe.into(),
            args: args
                .iter()
                .map(|arg| arg.to_string())
                .collect::<Vec<_>>()
                .into(),
            container_id: container_id.into(),
            ..Ancestor::default()
        }
    }

    /// The host's init, where every complete ancestry ends.
    fn host_init() -> Ancestor {
        ancestor(1, "/sbin/init", &[], "")
    }

    /// `ancestors`, parent first, as the event's ancestry.
    fn with_ancestors(event: &mut Event, ancestors: Vec<Ancestor>) {
        event.ancestors = ancestors.into();
    }

    /// `event`'s process as its child's parent, followed by its own ancestors.
    fn under(event: &Event, container_id: &str) -> Vec<Ancestor> {
        let process = &event.process;
        let args: Vec<&str> = process.args.iter().map(String::as_str).collect();
        std::iter::once(ancestor(process.vpid, &process.exe, &args, container_id))
            .chain(event.ancestors.iter().cloned())
            .collect()
    }

    const CHECK: [&str; 2] = ["-c", "wget -q -O- http://localhost/"];

    fn is_check(event: &Event) -> Option<String> {
        text(field(event, "proc.is_container_healthcheck"))
    }

    #[test]
    fn the_health_check_is_the_checks_command_started_from_outside_the_container() {
        // podman healthcheck run: conmon and runc on the host start the check's command.
        let mut check = in_container(with_check());
        process(&mut check, 12, "/bin/sh", &CHECK);
        with_ancestors(
            &mut check,
            vec![
                ancestor(4100, "runc", &["exec"], ""),
                ancestor(4000, "/usr/bin/conmon", &[], ""),
                host_init(),
            ],
        );
        assert_eq!(
            text(field(&check, "container.healthcheck")).as_deref(),
            Some("/bin/sh -c wget -q -O- http://localhost/")
        );
        assert_eq!(is_check(&check).as_deref(), Some("true"));
        // What the check starts is the check too.
        let mut child = check.clone();
        process(&mut child, 13, "wget", &["-q", "-O-", "http://localhost/"]);
        with_ancestors(&mut child, under(&check, ID));
        assert_eq!(is_check(&child).as_deref(), Some("true"));
        // The same command run by the container's own init is not.
        let mut inside = check.clone();
        with_ancestors(
            &mut inside,
            vec![
                ancestor(1, "sleep", &["600"], ID),
                ancestor(3900, "/usr/bin/conmon", &[], ""),
                host_init(),
            ],
        );
        assert_eq!(is_check(&inside).as_deref(), Some("false"));
        // Nor is anything under another container's init (podman run inside a container).
        let mut nested = check.clone();
        with_ancestors(
            &mut nested,
            vec![
                ancestor(40, "/usr/bin/conmon", &[], "outer"),
                ancestor(1, "/usr/bin/podman", &["system", "service"], "outer"),
                ancestor(3800, "/usr/bin/conmon", &[], ""),
                host_init(),
            ],
        );
        assert_eq!(is_check(&nested).as_deref(), Some("false"));
        // Another command from outside (podman exec) is not.
        let mut exec = check.clone();
        process(&mut exec, 14, "sh", &["-c", "id"]);
        assert_eq!(is_check(&exec).as_deref(), Some("false"));
        // A shell from outside (podman exec c sh) is not; the check's command run from it is,
        // as libsinsp decides it: the shell gets no category (only a container's init gets
        // one without a probe's command) and no container init is above either.
        let mut shell = check.clone();
        process(&mut shell, 20, "sh", &[]);
        let mut from_shell = check.clone();
        process(&mut from_shell, 21, "/bin/sh", &CHECK);
        with_ancestors(&mut from_shell, under(&shell, ID));
        assert_eq!(is_check(&shell).as_deref(), Some("false"));
        assert_eq!(is_check(&from_shell).as_deref(), Some("true"));
        // An ancestry that ends inside the container (deeper than the sensor follows, a parent
        // it does not know) without its init: what is above is unknown, so not the check.
        let mut deep = check.clone();
        with_ancestors(
            &mut deep,
            (2..10)
                .rev()
                .map(|vpid| ancestor(vpid, "sh", &[], ID))
                .collect(),
        );
        assert_eq!(is_check(&deep).as_deref(), Some("false"));
        let mut exec_cut_short = from_shell.clone();
        with_ancestors(
            &mut exec_cut_short,
            under(&shell, ID).into_iter().take(1).collect(),
        );
        assert_eq!(is_check(&exec_cut_short).as_deref(), Some("false"));
        // One that ends on the host is whole: runtimes on the host start containers' inits.
        let mut from_runtime = check.clone();
        with_ancestors(
            &mut from_runtime,
            vec![
                ancestor(4100, "runc", &["exec"], ""),
                ancestor(4000, "/usr/bin/conmon", &[], ""),
            ],
        );
        assert_eq!(is_check(&from_runtime).as_deref(), Some("true"));
        let mut no_ancestors = check.clone();
        with_ancestors(&mut no_ancestors, Vec::new());
        assert_eq!(is_check(&no_ancestors).as_deref(), Some("false"));
        // A check whose container init is among the ancestors shown is decided without the
        // rest: the container's.
        let mut deep_under_init = check.clone();
        with_ancestors(
            &mut deep_under_init,
            vec![
                ancestor(2, "sh", &[], ID),
                ancestor(1, "sleep", &["600"], ID),
            ],
        );
        assert_eq!(is_check(&deep_under_init).as_deref(), Some("false"));
        // Unknown metadata, no check, the host: false.
        let mut incomplete = check.clone();
        incomplete.container = Some(Arc::new(Container {
            metadata_missing: true,
            ..Container::clone(check.container.as_ref().unwrap())
        }));
        assert_eq!(is_check(&incomplete).as_deref(), Some("false"));
        let mut no_check = check.clone();
        no_check.container = Some(Arc::new(Container {
            id: ID.into(),
            health_probes: Some(Vec::new()),
            ..Container::default()
        }));
        assert_eq!(is_check(&no_check).as_deref(), Some("false"));
        assert_eq!(
            text(field(&no_check, "container.healthcheck")).as_deref(),
            Some("NONE")
        );
        let mut host = check.clone();
        host.container = None;
        assert_eq!(is_check(&host).as_deref(), Some("false"));
        assert_eq!(text(field(&host, "container.healthcheck")), None);
    }

    fn k8s_probe(container: &str, kind: ProbeKind, command: &[&str]) -> K8sProbe {
        K8sProbe {
            container: container.into(),
            probe: HealthProbe {
                kind,
                exe: command[0].into(),
                args: command[1..].iter().map(|arg| arg.to_string()).collect(),
            },
        }
    }

    #[test]
    fn kubernetes_probes_come_from_the_pod_spec_of_the_events_container() {
        // A containerd container of pod shop/web, container "app": the engine's configuration
        // is not read, the pod spec is, through the agent's cache.
        let mut probe = in_container(Container {
            runtime: "containerd".into(),
            k8s: Some(K8sPod {
                pod_name: "web".into(),
                namespace: "shop".into(),
                pod_uid: "p-1".into(),
                container_name: "app".into(),
            }),
            ..Container::default()
        });
        let meta = K8sMeta {
            probes: vec![
                k8s_probe(
                    "proxy",
                    ProbeKind::ReadinessProbe,
                    &["/bin/sh", "-c", "true"],
                ),
                k8s_probe("app", ProbeKind::LivenessProbe, &["cat", "/tmp/healthy"]),
            ],
            ..K8sMeta::default()
        };
        probe.k8s_meta = Some(Arc::new(meta));
        // The kubelet's ExecSync: containerd's shim and runc on the host start the command.
        process(&mut probe, 30, "cat", &["/tmp/healthy"]);
        with_ancestors(
            &mut probe,
            vec![
                ancestor(5100, "runc", &["exec"], ""),
                ancestor(5000, "/usr/bin/containerd-shim-runc-v2", &[], ""),
                host_init(),
            ],
        );
        let get = |event: &Event, name: &str| text(field(event, name));
        assert_eq!(
            get(&probe, "container.liveness_probe").as_deref(),
            Some("cat /tmp/healthy")
        );
        // The sidecar's readiness probe is not this container's.
        assert_eq!(
            get(&probe, "container.readiness_probe").as_deref(),
            Some("NONE")
        );
        assert_eq!(
            get(&probe, "container.healthcheck").as_deref(),
            Some("NONE")
        );
        assert_eq!(
            get(&probe, "proc.is_container_liveness_probe").as_deref(),
            Some("true")
        );
        assert_eq!(
            get(&probe, "proc.is_container_readiness_probe").as_deref(),
            Some("false")
        );
        assert_eq!(is_check(&probe).as_deref(), Some("false"));
        // The sidecar's command in this container is nobody's probe.
        let mut other = probe.clone();
        process(&mut other, 31, "/bin/sh", &["-c", "true"]);
        assert_eq!(
            get(&other, "proc.is_container_readiness_probe").as_deref(),
            Some("false")
        );
        // The probe's command run under the container's init is not the probe.
        let mut inside = probe.clone();
        with_ancestors(
            &mut inside,
            vec![
                ancestor(1, "nginx", &[], ID),
                ancestor(5000, "/usr/bin/containerd-shim-runc-v2", &[], ""),
                host_init(),
            ],
        );
        assert_eq!(
            get(&inside, "proc.is_container_liveness_probe").as_deref(),
            Some("false")
        );
        // Without the pod's metadata nothing is known: absent texts, false checks.
        let mut unresolved = probe.clone();
        unresolved.k8s_meta = None;
        assert_eq!(get(&unresolved, "container.liveness_probe"), None);
        assert_eq!(
            get(&unresolved, "proc.is_container_liveness_probe").as_deref(),
            Some("false")
        );
        // A podman container's engine check and the pod's probes are both its probes.
        let mut both = probe.clone();
        both.container = Some(Arc::new(Container {
            health_probes: with_check().health_probes,
            ..Container::clone(probe.container.as_ref().unwrap())
        }));
        assert_eq!(
            get(&both, "container.healthcheck").as_deref(),
            Some("/bin/sh -c wget -q -O- http://localhost/")
        );
        assert_eq!(
            get(&both, "proc.is_container_liveness_probe").as_deref(),
            Some("true")
        );
    }
}
