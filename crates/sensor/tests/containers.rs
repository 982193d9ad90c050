//! Container attribution against real runtimes: runc, podman and containerd (`ctr`), each
//! running a busybox rootfs built from the host's `/bin/busybox` (busybox-static).
//!
//! Each test needs root, eBPF and its runtime (skipped with a reason outside CI, required in
//! CI) and removes every container, image, cgroup and daemon it created.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind};
use palisade_sensor::{BackendChoice, ContainerResolver, MetadataRoots, Sensor, SensorConfig};

fn available(runtime: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let has_runtime = Command::new(runtime)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    palisade_testdata::capability(
        &format!("root, eBPF, {runtime} and busybox-static"),
        is_root
            && has_runtime
            && Path::new("/bin/busybox").exists()
            && Path::new("/sys/kernel/btf/vmlinux").exists(),
    )
}

fn start(metadata: MetadataRoots) -> Sensor {
    let config = SensorConfig {
        kinds: Some([EventKind::Execve].into_iter().collect::<BTreeSet<_>>()),
        backend: BackendChoice::Ebpf,
        metadata,
        ..SensorConfig::default()
    };
    config.build().expect("the eBPF sensor starts")
}

/// Polls until an exec with `marker` as first argument shows up.
fn wait_for_exec(sensor: &mut Sensor, marker: &str) -> Option<Event> {
    wait_for_execs(sensor, &[marker]).pop()
}

/// Polls until there is an exec with each of `markers` as first argument (or 30 s passed);
/// returns them in the order they were found. Other events of those processes (from a
/// sensor observing more than execs) are left out.
fn wait_for_execs(sensor: &mut Sensor, markers: &[&str]) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found: Vec<Event> = Vec::new();
    let mut events = Vec::new();
    while Instant::now() < deadline && found.len() < markers.len() {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
        found.extend(events.drain(..).filter(|event| {
            event.kind == EventKind::Execve
                && event
                    .process
                    .args
                    .first()
                    .is_some_and(|arg| markers.contains(&arg.as_str()))
        }));
    }
    found
}

/// A rootfs with busybox as `/bin/sh`, `/bin/true`, `/bin/sleep`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for sub in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "true", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    rootfs
}

fn run(command: &mut Command) -> String {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Removes a cgroup directory (and its empty parents up to `depth` levels) from every
/// hierarchy; missing directories are fine.
fn remove_cgroup(relative: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let mut path = hierarchy.path().join(relative.trim_start_matches('/'));
        while path.starts_with(hierarchy.path()) && path != hierarchy.path() {
            let _ = std::fs::remove_dir(&path);
            path.pop();
        }
    }
}

/// Kills and reaps a child when dropped.
struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn runc_container_is_attributed_by_its_cgroup() {
    if !available("runc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    busybox_rootfs(dir.path());
    let id = format!("palisade-runc-{}", std::process::id());
    let parent = format!("palisade-test-{}", std::process::id());
    let marker = format!("{id}-marker");
    run(Command::new("runc").arg("spec").current_dir(dir.path()));
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["args"] =
        serde_json::json!(["/bin/sh", "-c", format!("/bin/true {marker}; sleep 2")]);
    config["process"]["terminal"] = false.into();
    config["linux"]["cgroupsPath"] = format!("/{parent}/{id}").into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let mut sensor = start(MetadataRoots::default());
    let runtime = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(dir.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = Reaper(runtime);
    let event = wait_for_exec(&mut sensor, &marker);
    drop(runtime);
    let _ = Command::new("runc").args(["delete", "-f", &id]).output();
    remove_cgroup(&format!("{parent}/{id}"));

    let event = event.expect("the container's exec");
    let container = event.container.expect("attributed to a container");
    assert_eq!(container.id, id);
    assert_eq!(container.name, id);
    let bundle = std::fs::canonicalize(dir.path()).unwrap();
    assert!(
        container
            .labels
            .contains(&("bundle".to_owned(), bundle.to_str().unwrap().to_owned())),
        "runc records the bundle as a label: {:?}",
        container.labels
    );
    assert!(container.start_time_ns > 0);
    assert_eq!(
        event.process.exepath, "/bin/busybox",
        "the path inside the container"
    );
    assert_eq!(
        event.process.user, "root",
        "the user name from the container's /etc/passwd"
    );
    assert_eq!(event.ancestors.first().map(|a| a.name.as_str()), Some("sh"));
    assert_eq!(event.ancestors[0].container_id, id);
    assert_eq!(
        event.process.cgroups.as_slice(),
        ["cpuset", "cpu", "cpuacct", "io", "memory"]
            .map(|controller| format!("{controller}=/{parent}/{id}")),
        "runc puts the container at cgroupsPath in every hierarchy (Falco's thread.cgroups)"
    );
}

/// Imports the busybox rootfs as a podman image; removed on drop.
struct PodmanImage(String);
impl PodmanImage {
    fn import(dir: &Path, tag: &str) -> PodmanImage {
        let rootfs = busybox_rootfs(dir);
        let tar = dir.join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        run(Command::new("podman").arg("import").arg(&tar).arg(tag));
        PodmanImage(tag.to_owned())
    }
}
impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn podman_container_has_name_image_digest_and_labels() {
    if !available("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("localhost/palisade-busybox:podman-{}", std::process::id());
    let image = PodmanImage::import(dir.path(), &tag);
    let name = format!("palisade-podman-{}", std::process::id());
    let marker = format!("{name}-marker");
    let dropped_marker = format!("{name}-dropped");
    let cidfile = dir.path().join("cid");

    let image_id = String::from_utf8(
        Command::new("podman")
            .args(["image", "inspect", "--format", "{{.Id}}", &tag])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let mut sensor = start(MetadataRoots::default());
    let runtime = Command::new("podman")
        .args(["run", "--rm", "--network", "none", "--runtime", "runc"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args([
            "--label",
            "palisade.test=podman",
            "--name",
            &name,
            "--cidfile",
        ])
        .arg(&cidfile)
        .arg(&image.0)
        // A program from the image, then one written into the container at run time
        // (busybox named `true`, on the overlay's upper layer).
        .args([
            "/bin/sh",
            "-c",
            &format!(
                "/bin/true {marker}; mkdir /dropped && cp /bin/busybox /dropped/true && \
                 /dropped/true {dropped_marker}; sleep 2"
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut runtime = Reaper(runtime);
    let mut execs = wait_for_execs(&mut sensor, &[&marker, &dropped_marker]).into_iter();
    let (event, dropped) = (execs.next(), execs.next());
    let _ = runtime.0.wait();
    let cid = std::fs::read_to_string(&cidfile)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();

    let event = event.expect("the container's exec");
    let container = event.container.expect("attributed to a container");
    assert_eq!(container.id, cid);
    assert_eq!(container.name, name);
    assert_eq!(container.image, tag);
    assert_eq!((container.runtime.as_str(), image_id.len()), ("podman", 64));
    assert_eq!(container.image_id, image_id);
    // --network none: its own network namespace; pid and IPC are podman's defaults.
    assert_eq!(
        container.host_namespaces,
        Some(palisade_event::HostNamespaces {
            pid: false,
            network: false,
            ipc: false
        })
    );
    assert!(
        container.image_digest.starts_with("sha256:"),
        "{container:?}"
    );
    assert!(
        container
            .labels
            .contains(&("palisade.test".into(), "podman".into())),
        "{:?}",
        container.labels
    );
    assert!(container.k8s.is_none());
    assert!(
        !event.process.exe_upper_layer,
        "/bin/true comes from the image: {:?}",
        event.process
    );

    let dropped = dropped.expect("the exec of the program written at run time");
    assert_eq!(dropped.process.exepath, "/dropped/true");
    assert!(dropped.process.exe_upper_layer, "{:?}", dropped.process);
    assert_eq!(
        dropped.container.map(|container| container.id.clone()),
        Some(cid)
    );
}

/// A containerd daemon of our own, with its root, state and socket in a temporary folder.
struct Containerd {
    daemon: Reaper,
    dir: PathBuf,
}
impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.toml");
        // No CRI plugin: it would configure host networking.
        std::fs::write(
            &config,
            "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )
        .unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--address")
            .arg(dir.join("containerd.sock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let containerd = Containerd {
            daemon: Reaper(daemon),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if containerd
                .ctr()
                .arg("version")
                .output()
                .is_ok_and(|out| out.status.success())
            {
                return containerd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd did not start");
    }

    fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.dir.join("containerd.sock"));
        command
    }

    fn metadata(&self) -> MetadataRoots {
        MetadataRoots {
            containerd_db: self.dir.join("root/io.containerd.metadata.v1.bolt/meta.db"),
            containerd_tasks: self.dir.join("state/io.containerd.runtime.v2.task"),
            ..MetadataRoots::default()
        }
    }
}
impl Drop for Containerd {
    fn drop(&mut self) {
        // Unmount anything the daemon left under its folder before it goes.
        let _ = &self.daemon;
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            for mount_point in mounts
                .lines()
                .filter_map(|line| line.split_whitespace().nth(1))
            {
                if Path::new(mount_point).starts_with(&self.dir) {
                    let _ = Command::new("umount").arg("-l").arg(mount_point).output();
                }
            }
        }
    }
}

#[test]
fn containerd_container_carries_kubernetes_identity_from_cri_labels() {
    if !(available("containerd") && available("podman") && available("skopeo")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("localhost/palisade-busybox:ctr-{}", std::process::id());
    let image = PodmanImage::import(dir.path(), &tag);
    let reference = format!(
        "docker.io/library/palisade-busybox:ctr-{}",
        std::process::id()
    );
    let archive = dir.path().join("image.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("containers-storage:{}", image.0))
        .arg(format!("docker-archive:{}:{reference}", archive.display())));
    let containerd = Containerd::start(&dir.path().join("containerd"));
    run(containerd.ctr().args(["image", "import"]).arg(&archive));

    let id = format!("palisade-ctr-{}", std::process::id());
    let marker = format!("{id}-marker");
    let mut sensor = start(containerd.metadata());
    let runtime = containerd
        .ctr()
        .args(["run", "--rm"])
        .args(["--label", "io.kubernetes.pod.name=web-0"])
        .args(["--label", "io.kubernetes.pod.namespace=shop"])
        .args([
            "--label",
            "io.kubernetes.pod.uid=5a3c6f0e-1111-2222-3333-444455556666",
        ])
        .args(["--label", "io.kubernetes.container.name=app"])
        .arg(&reference)
        .arg(&id)
        .args(["/bin/sh", "-c", &format!("/bin/true {marker}; sleep 2")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut runtime = Reaper(runtime);
    let event = wait_for_exec(&mut sensor, &marker);
    let _ = runtime.0.wait();
    let _ = containerd
        .ctr()
        .args(["task", "kill", "-s", "KILL", &id])
        .output();
    let _ = containerd.ctr().args(["container", "rm", &id]).output();
    let _ = containerd.ctr().args(["image", "rm", &reference]).output();
    drop(containerd);
    remove_cgroup(&format!("default/{id}"));

    let event = event.expect("the container's exec");
    let container = event.container.expect("attributed to a container");
    assert_eq!(container.id, id);
    assert_eq!(container.image, reference);
    assert_eq!(container.runtime, "containerd");
    assert!(
        container.image_digest.starts_with("sha256:"),
        "{container:?}"
    );
    let pod = container
        .k8s
        .as_ref()
        .expect("Kubernetes identity from the CRI labels");
    assert_eq!(pod.pod_name, "web-0");
    assert_eq!(pod.namespace, "shop");
    assert_eq!(pod.pod_uid, "5a3c6f0e-1111-2222-3333-444455556666");
    assert_eq!(pod.container_name, "app");
}

/// A podman container seen while podman is still creating it: containers-storage already
/// lists it (name, image) but libpod's database, which holds its labels, does not yet (podman
/// adds it there after the storage container; a read while podman writes the database fails
/// the same way). Its events carry the container without labels, and the next exec's lookup
/// finds them: the partial answer is not cached as final (it was, and every later event of
/// the container went without its labels and Kubernetes identity).
#[test]
fn podman_labels_missing_at_first_lookup_are_read_later() {
    // Needs only podman's metadata, no eBPF.
    if !available("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("localhost/palisade-busybox:late-{}", std::process::id());
    let image = PodmanImage::import(dir.path(), &tag);
    let name = format!("palisade-late-labels-{}", std::process::id());
    let id = run(Command::new("podman")
        .args(["create", "--network", "none", "--runtime", "runc"])
        .args([
            "--label",
            "io.kubernetes.pod.name=web-late",
            "--name",
            &name,
        ])
        .args([&image.0, "/bin/true"]))
    .trim()
    .to_owned();
    let real = MetadataRoots::default().podman_storage;
    let storage = dir.path().join("storage");
    for file in [
        "overlay-containers/containers.json",
        "overlay-images/images.json",
    ] {
        std::fs::create_dir_all(storage.join(file).parent().unwrap()).unwrap();
        std::fs::copy(real.join(file), storage.join(file)).unwrap();
    }
    let mut resolver = ContainerResolver::new(MetadataRoots {
        runc_state_dirs: vec![dir.path().join("runc")],
        podman_storage: storage.clone(),
        ..MetadataRoots::default()
    });
    let cgroup = format!("/libpod_parent/libpod-{id}");
    let first = resolver.resolve(11, &cgroup, true).expect("a container");

    std::fs::create_dir_all(storage.join("libpod")).unwrap();
    let copied = std::fs::copy(
        real.join("libpod/bolt_state.db"),
        storage.join("libpod/bolt_state.db"),
    );
    let later = resolver.resolve(11, &cgroup, true).expect("a container");
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    copied.unwrap();

    assert_eq!(
        (first.id.as_str(), first.name.as_str()),
        (id.as_str(), name.as_str())
    );
    assert_eq!(first.runtime, "podman");
    assert!(first.k8s.is_none(), "no labels without libpod's database");
    assert!(
        first.metadata_missing,
        "an event without the metadata says so"
    );
    assert!(!later.metadata_missing, "{later:?}");
    assert_eq!(
        later.k8s.as_ref().map(|pod| pod.pod_name.as_str()),
        Some("web-late"),
        "{later:?}"
    );
}

/// The first exec in a container that was already running when the sensor started (the
/// sensor has never seen its cgroup; `podman exec` starts it through conmon and runc), and
/// the first execs of a container started just after the sensor, carry the container with
/// its runtime metadata, like every later one. All probes are attached, as under
/// `palisade monitor` with the default rules, so that runc's own records in the cgroup come
/// first.
#[test]
fn first_execs_in_a_container_are_attributed() {
    if !available("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("localhost/palisade-busybox:first-{}", std::process::id());
    let image = PodmanImage::import(dir.path(), &tag);
    let name = format!("palisade-first-exec-{}", std::process::id());
    let podman_run = |name: &str| {
        let mut command = Command::new("podman");
        command
            .args(["run", "--network", "none", "--runtime", "runc"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .args(["--label", "palisade.test=first-exec", "--name", name]);
        command
    };
    let running = run(podman_run(&name).args(["--detach", &image.0, "/bin/sleep", "120"]))
        .trim()
        .to_owned();
    let attributed = |event: Option<&Event>, id: &str, name: &str| {
        event
            .and_then(|event| event.container.as_ref())
            .is_some_and(|container| {
                container.id == id
                    && container.name == name
                    && container
                        .labels
                        .contains(&("palisade.test".into(), "first-exec".into()))
            })
    };
    let mut failures = Vec::new();
    for round in 0..2 {
        let mut sensor = SensorConfig {
            backend: BackendChoice::Ebpf,
            ..SensorConfig::default()
        }
        .build()
        .expect("the eBPF sensor starts");
        let marker = format!("{name}-{round}");
        run(Command::new("podman").args(["exec", &name, "/bin/true", &marker]));
        let event = wait_for_exec(&mut sensor, &marker);
        if !attributed(event.as_ref(), &running, &name) {
            failures.push(format!("exec into the running container: {event:?}"));
        }

        let fresh = format!("{name}-new-{round}");
        let cidfile = dir.path().join(format!("cid-{round}"));
        let first = format!("{fresh}-first");
        let second = format!("{fresh}-second");
        let script = format!("/bin/true {first}; /bin/true {second}");
        let container = podman_run(&fresh)
            .arg("--rm")
            .arg("--cidfile")
            .arg(&cidfile)
            .args([&image.0, "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut container = Reaper(container);
        let execs = wait_for_execs(&mut sensor, &[&first, &second]);
        let _ = container.0.wait();
        let cid = std::fs::read_to_string(&cidfile).unwrap_or_default();
        let _ = Command::new("podman").args(["rm", "-f", &fresh]).output();
        if execs.len() != 2
            || !execs
                .iter()
                .all(|event| attributed(Some(event), cid.trim(), &fresh))
        {
            failures.push(format!("first execs of a new container: {execs:?}"));
        }
    }
    let _ = Command::new("podman")
        .args(["rm", "-f", "-t", "0", &name])
        .output();
    assert!(failures.is_empty(), "{failures:#?}");
}
