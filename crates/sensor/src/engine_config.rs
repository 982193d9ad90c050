//! What a container engine's configuration says about a container beyond its identity: the
//! mounts and the health check, in the form Falco's `container.mount*` and
//! `container.healthcheck` fields give them.
//!
//! Falco asks the engine (Docker's API, which podman also serves) and gets its inspect data:
//! `Mounts` lists only the volumes and binds the user asked for, not the runtime's own
//! `/proc`, `/dev` or `/etc/hosts`; `Healthcheck.Test` is the check's command. The sensor
//! reads the same from podman's own files: libpod's container configuration (named volumes,
//! user volumes, the health check) and the OCI spec podman handed the runtime (each bind's
//! source and options as mounted).

use palisade_event::{ContainerMount, HealthProbe, ProbeKind};
use serde_json::Value as Json;

/// The mounts podman's inspect lists for a container, in its order: the named volumes, then
/// the other user volumes in the order they were asked for (tmpfs ones left out), each with
/// the options it was mounted with. `runtime_spec` is the OCI spec podman gave the runtime
/// (`userdata/config.json`), `None` before the container started (the configuration's own
/// spec then says). `volume_source` names the host path of a named volume the runtime spec
/// does not show.
pub(crate) fn podman_mounts(
    config: &Json,
    runtime_spec: Option<&Json>,
    volume_source: impl Fn(&str) -> String,
) -> Vec<ContainerMount> {
    let Some(user_volumes) = config["userVolumes"].as_array() else {
        return Vec::new();
    };
    let spec_mount = |dest: &str| {
        [runtime_spec, Some(&config["spec"])]
            .into_iter()
            .flatten()
            .filter_map(|spec| spec["mounts"].as_array())
            .find_map(|mounts| mounts.iter().find(|mount| mount["destination"] == dest))
    };
    let named_volumes = config["namedVolumes"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let mut mounts: Vec<ContainerMount> = named_volumes
        .iter()
        .filter_map(|volume| {
            let dest = volume["dest"].as_str()?;
            let source = spec_mount(dest)
                .and_then(|mount| mount["source"].as_str())
                .map_or_else(
                    || volume_source(volume["volumeName"].as_str().unwrap_or_default()),
                    str::to_owned,
                );
            Some(mount_with_options(source, dest, &volume["options"]))
        })
        .collect();
    for dest in user_volumes.iter().filter_map(Json::as_str) {
        let is_named = named_volumes.iter().any(|volume| volume["dest"] == dest);
        let Some(mount) = spec_mount(dest).filter(|mount| mount["type"] != "tmpfs") else {
            continue;
        };
        if !is_named {
            let source = mount["source"].as_str().unwrap_or_default().to_owned();
            mounts.push(mount_with_options(source, dest, &mount["options"]));
        }
    }
    mounts
}

/// A mount's read-write flag, propagation and relabelling from its options, as podman's
/// inspect reads them (the last of conflicting options wins; `rw` is the default).
fn mount_with_options(source: String, dest: &str, options: &Json) -> ContainerMount {
    let mut mount = ContainerMount {
        source,
        dest: dest.to_owned(),
        rdwr: true,
        ..ContainerMount::default()
    };
    for option in options
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        match option {
            "ro" => mount.rdwr = false,
            "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" | "unbindable"
            | "runbindable" => mount.propagation = option.to_owned(),
            "z" | "Z" => mount.mode = option.to_owned(),
            _ => {}
        }
    }
    mount
}

/// The health check of a Docker-style `Healthcheck` object (`{"Test": [...]}`), as libsinsp
/// reads it: `["CMD", exe, args...]` runs the program, `["CMD-SHELL", command]` runs
/// `/bin/sh -c command`, `["NONE"]` or no test is no check. Arguments of a `CMD` lose pairs
/// of surrounding quotes, as libsinsp normalises them.
pub(crate) fn docker_health_probes(healthcheck: &Json) -> Vec<HealthProbe> {
    let Some(test) = healthcheck["Test"].as_array() else {
        return Vec::new();
    };
    let words: Vec<&str> = test.iter().filter_map(Json::as_str).collect();
    let (exe, args) = match words.as_slice() {
        ["CMD", exe, args @ ..] => (
            unquote(exe).to_owned(),
            args.iter().map(|arg| unquote(arg).to_owned()).collect(),
        ),
        ["CMD-SHELL", command, ..] => (
            "/bin/sh".to_owned(),
            vec!["-c".to_owned(), (*command).to_owned()],
        ),
        _ => return Vec::new(),
    };
    vec![HealthProbe {
        kind: ProbeKind::Healthcheck,
        exe,
        args,
    }]
}

/// `arg` without pairs of matching quotes around it (`'"x"'` is `x`).
fn unquote(mut arg: &str) -> &str {
    while arg.len() >= 2
        && let Some(quote) = arg
            .chars()
            .next()
            .filter(|first| matches!(first, '"' | '\''))
        && arg.ends_with(quote)
    {
        arg = &arg[1..arg.len() - 1];
    }
    arg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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

    /// podman 4.3's configuration and runtime spec for `-v /d:/data:ro,Z -v vol:/vol
    /// --mount type=bind,src=/d,dst=/data2,bind-propagation=rslave --tmpfs /t`, and what its
    /// inspect lists: the named volume first, the binds in the order asked, the tmpfs left out,
    /// the relabelling as mounted (podman strips Z once applied).
    #[test]
    fn podman_lists_named_volumes_then_user_binds_as_inspect_does() {
        let config = json!({
            "userVolumes": ["/data2", "/data", "/vol", "/t"],
            "namedVolumes": [{"volumeName": "vol", "dest": "/vol",
                              "options": ["rw", "rprivate", "nosuid", "nodev", "rbind"]}],
            "spec": {"mounts": [
                {"destination": "/data2", "type": "bind", "source": "/d", "options": ["rslave", "rw", "rbind"]},
                {"destination": "/data", "type": "bind", "source": "/d", "options": ["ro", "Z", "rprivate", "rbind"]},
                {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]},
                {"destination": "/proc", "type": "proc", "source": "proc", "options": []},
            ]},
        });
        let runtime = json!({"mounts": [
            {"destination": "/data", "type": "bind", "source": "/d", "options": ["ro", "rprivate", "rbind"]},
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data2", "type": "bind", "source": "/d", "options": ["rslave", "rw", "rbind"]},
            {"destination": "/vol", "type": "bind", "source": "/var/lib/containers/storage/volumes/vol/_data",
             "options": ["rw", "rprivate", "nosuid", "nodev", "rbind"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/run/hosts", "options": ["bind"]},
        ]});
        let expected = vec![
            mount(
                "/var/lib/containers/storage/volumes/vol/_data",
                "/vol",
                "",
                true,
                "rprivate",
            ),
            mount("/d", "/data2", "", true, "rslave"),
            mount("/d", "/data", "", false, "rprivate"),
        ];
        assert_eq!(
            podman_mounts(&config, Some(&runtime), |_| unreachable!()),
            expected
        );
        // Before the start: the configuration's spec, the relabelling still asked for, the
        // volume's path from its name.
        let before = podman_mounts(&config, None, |name| format!("/volumes/{name}/_data"));
        assert_eq!(before[0].source, "/volumes/vol/_data");
        assert_eq!(before[2], mount("/d", "/data", "Z", false, "rprivate"));
        assert_eq!(
            podman_mounts(&json!({"spec": {}}), None, |_| unreachable!()),
            vec![]
        );
    }

    #[test]
    fn health_checks_are_read_as_libsinsp_reads_them() {
        let probe = |test: Json| docker_health_probes(&json!({ "Test": test }));
        assert_eq!(
            probe(json!(["CMD-SHELL", "curl -f http://localhost/ || exit 1"])),
            vec![HealthProbe {
                kind: ProbeKind::Healthcheck,
                exe: "/bin/sh".into(),
                args: vec!["-c".into(), "curl -f http://localhost/ || exit 1".into()],
            }]
        );
        assert_eq!(
            probe(json!([
                "CMD",
                "/usr/bin/pg_isready",
                "'-U'",
                "\"'postgres'\""
            ])),
            vec![HealthProbe {
                kind: ProbeKind::Healthcheck,
                exe: "/usr/bin/pg_isready".into(),
                args: vec!["-U".into(), "postgres".into()],
            }]
        );
        assert_eq!(probe(json!(["NONE"])), vec![]);
        assert_eq!(probe(json!(["CMD"])), vec![]);
        assert_eq!(docker_health_probes(&Json::Null), vec![]);
        assert_eq!(unquote("\"unbalanced"), "\"unbalanced");
        assert_eq!(unquote("'"), "'");
    }
}
