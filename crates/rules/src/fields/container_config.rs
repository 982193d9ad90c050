//! The container fields read from the engine's configuration of the container rather than its
//! identity: its mounts (`container.mounts`, `container.mount*`) and its health check
//! (`container.healthcheck`, `proc.is_container_healthcheck`), as libsinsp's
//! `sinsp_filter_check_container` and its process categories give them. The sensor attaches
//! what the engine lists ([`palisade_event::Container::mounts`] and `health_probes`);
//! where it read no list the fields are absent, as for a container libsinsp has no
//! information on.

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
/// glob (as libsinsp's `glob_match`, `*` crossing `/`) matched against the source or the
/// destination; the first that matches.
fn mount_at<'e>(event: &'e Event, arg: &FieldArg, by: By) -> Option<&'e ContainerMount> {
    let mounts = mounts(event)?;
    let key = match arg {
        FieldArg::Key(key) => key.as_str(),
        FieldArg::Index(index) => return mounts.get(*index),
        FieldArg::None => return None,
    };
    if let Ok(index) = key.parse::<u32>() {
        return mounts.get(index as usize);
    }
    let glob = globset::GlobBuilder::new(key)
        .literal_separator(false)
        .build()
        .ok()?
        .compile_matcher();
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

/// The container's probe of `kind` as libsinsp prints it (the program and its arguments,
/// space-separated), `NONE` when the container has none of that kind.
fn probe_text(event: &Event, kind: ProbeKind) -> Option<Value<'static>> {
    let probes = event.container.as_ref()?.health_probes.as_ref()?;
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
}

/// The probe the event's process belongs to, by libsinsp's command categories
/// (`identify_category`, decided at each exec and inherited by children): a container's
/// process numbered 1 in its pid namespace is the container's own, and so is everything it
/// starts; a process whose program and arguments equal one of the container's probes, with
/// no container init above it (the runtime started it from outside, as `podman healthcheck
/// run` and the kubelet do), is that probe, and so is everything it starts. `None` for the
/// rest, on the host, and while the container's metadata is incomplete (libsinsp leaves the
/// category unset then).
fn probe_category(event: &Event) -> Option<ProbeKind> {
    let container: &Container = event.container.as_ref()?;
    let probes = container.health_probes.as_ref()?;
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
    // From the oldest known ancestor down to the process, as the categories were decided.
    let mut category = None;
    let mut under_container_init = false;
    for member in lineage.iter().rev() {
        if member.container_id != container.id {
            // Another container's or a host process: libsinsp gives it no category here.
            category = None;
            continue;
        }
        if member.vpid == 1 {
            under_container_init = true;
            category = None;
            continue;
        }
        if category.is_none() && !under_container_init {
            category = probes
                .iter()
                .find(|probe| member.runs(probe))
                .map(|probe| probe.kind);
        }
    }
    category
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
        Key,
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
        Key,
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
        Key,
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
        Key,
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
        Key,
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
        Key,
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
        "The container's health check as the program and its arguments, space-separated \
         (a CMD-SHELL check is /bin/sh -c and its command, as libsinsp reads Docker's form), \
         NONE when it has none; from podman's configuration of the container; absent on the \
         host and for containers whose engine's configuration the sensor does not read",
        |e, _| probe_text(e, ProbeKind::Healthcheck)
    ),
    row!(
        "proc.is_container_healthcheck",
        Bool,
        None,
        "The process runs the container's health check, as libsinsp decides it at each exec: \
         its program and arguments equal the check's (container.healthcheck), no process \
         numbered 1 in the container is above it (the runtime started it from outside, as \
         podman healthcheck run does), or it descends from such a process; false otherwise, \
         on the host, and while the container's metadata is incomplete",
        |e, _| is_probe(e, ProbeKind::Healthcheck)
    ),
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use palisade_event::EventKind;

    use super::*;
    use crate::fields::lookup;

    const ID: &str = "c0ffee";

    /// The value of `name` or `name[key]` for the event.
    fn field<'e>(event: &'e Event, reference: &str) -> Option<Value<'e>> {
        let (name, key) = match reference.split_once('[') {
            Some((name, key)) => (name, Some(key.trim_end_matches(']').to_owned())),
            None => (reference, None),
        };
        let (def, _) = lookup(name).unwrap_or_else(|| panic!("{name} is a field"));
        (def.extract)(event, &key.map_or(FieldArg::None, FieldArg::Key))
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

    const CHECK: [&str; 2] = ["-c", "wget -q -O- http://localhost/"];

    #[test]
    fn the_health_check_is_the_checks_command_started_from_outside_the_container() {
        let is_check = |event: &Event| text(field(event, "proc.is_container_healthcheck"));
        // podman healthcheck run: conmon and runc on the host start the check's command.
        let mut check = in_container(with_check());
        process(&mut check, 12, "/bin/sh", &CHECK);
        check.ancestors = vec![
            ancestor(4100, "runc", &["exec"], ""),
            ancestor(4000, "/usr/bin/conmon", &[], ""),
        ]
        .into();
        assert_eq!(
            text(field(&check, "container.healthcheck")).as_deref(),
            Some("/bin/sh -c wget -q -O- http://localhost/")
        );
        assert_eq!(is_check(&check).as_deref(), Some("true"));
        // What the check starts is the check too.
        let mut child = check.clone();
        process(&mut child, 13, "wget", &["-q", "-O-", "http://localhost/"]);
        child.ancestors = std::iter::once(ancestor(12, "/bin/sh", &CHECK, ID))
            .chain(check.ancestors.iter().cloned())
            .collect::<Vec<_>>()
            .into();
        assert_eq!(is_check(&child).as_deref(), Some("true"));
        // The same command run by the container's own init is not.
        let mut inside = check.clone();
        inside.ancestors = vec![
            ancestor(1, "sleep", &["600"], ID),
            ancestor(3900, "/usr/bin/conmon", &[], ""),
        ]
        .into();
        assert_eq!(is_check(&inside).as_deref(), Some("false"));
        // Another command from outside (podman exec) is not.
        let mut exec = check.clone();
        process(&mut exec, 14, "sh", &["-c", "id"]);
        assert_eq!(is_check(&exec).as_deref(), Some("false"));
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
}
