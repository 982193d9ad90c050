//! Container attribution against real runtimes: runc, podman and containerd (`ctr`), each
//! running a busybox rootfs built from the host's `/bin/busybox` (busybox-static).
//!
//! Each test needs root, eBPF and its runtime (skipped with a reason outside CI, required in
//! CI) and removes every container, image, cgroup and daemon it created.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_event::{ContainerMount, Event, EventKind, HealthProbe, ProbeKind};
use palisade_sensor::{
    BackendChoice, ContainerAttribution, ContainerResolver, HoldLimits, MetadataRoots, Sensor,
    SensorConfig,
};

#[path = "../src/container/test_roots.rs"]
mod test_roots;
use test_roots::metadata_roots_in;

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
    start_holding(metadata, HoldLimits::default())
}

/// [`start`] with other limits on how long events wait for their container's metadata.
fn start_holding(metadata: MetadataRoots, hold: HoldLimits) -> Sensor {
    let config = SensorConfig {
        kinds: Some([EventKind::Execve].into_iter().collect::<BTreeSet<_>>()),
        backend: BackendChoice::Ebpf,
        metadata,
        // A runc container's exec is checked for its cgroups (thread.cgroups).
        read_cgroups: true,
        hold,
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
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
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

/// A runc bundle of the test's in a temporary directory (removed when dropped) for the
/// container `<name>-<pid>` in the freely named cgroup `/palisade-test-<pid>/<id>`, whose
/// name does not say its container.
struct RuncBundle {
    dir: tempfile::TempDir,
    id: String,
    cgroups_path: String,
}

impl RuncBundle {
    /// The names of the bundle of container `<name>-<pid>`; [`RuncBundle::write`] writes it.
    fn new(name: &str) -> RuncBundle {
        let id = format!("{name}-{}", std::process::id());
        RuncBundle {
            dir: tempfile::tempdir().unwrap(),
            cgroups_path: format!("/palisade-test-{}/{id}", std::process::id()),
            id,
        }
    }

    /// Writes the bundle: a [`busybox_rootfs`] and `runc spec`'s configuration, running
    /// `/bin/sh -c script` in the bundle's cgroup.
    fn write(&self, script: &str) {
        busybox_rootfs(self.dir.path());
        run(Command::new("runc")
            .arg("spec")
            .current_dir(self.dir.path()));
        self.edit_config(|config| {
            config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
            config["process"]["terminal"] = false.into();
            config["linux"]["cgroupsPath"] = self.cgroups_path.as_str().into();
        });
    }

    /// Changes the bundle's `config.json` with `edit`.
    fn edit_config(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let config_path = self.dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        edit(&mut config);
        std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    }

    /// The path of `relative` in the bundle's root file system.
    fn rootfs(&self, relative: &str) -> PathBuf {
        self.dir.path().join("rootfs").join(relative)
    }

    /// Runs the bundle's container with runc, its state in the first runc state directory of
    /// `metadata` (where the sensor looks it up).
    fn run(&self, metadata: &MetadataRoots) -> RuncContainer {
        let state_root = &metadata.runc_state_dirs[0];
        let runtime = Command::new("runc")
            .arg("--root")
            .arg(state_root)
            .args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        RuncContainer {
            runtime: Reaper(runtime),
            id: self.id.clone(),
            state_root: state_root.to_owned(),
            cgroups_path: self.cgroups_path.clone(),
        }
    }
}

/// A runc container of a [`RuncBundle`] (its state under `state_root`), deleted with its
/// cgroup `cgroups_path` when dropped.
struct RuncContainer {
    runtime: Reaper,
    id: String,
    state_root: PathBuf,
    cgroups_path: String,
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = self.runtime.0.kill();
        let _ = self.runtime.0.wait();
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.state_root)
            .args(["delete", "-f", &self.id])
            .output();
        remove_cgroup(&self.cgroups_path);
    }
}

#[test]
fn runc_container_is_attributed_by_its_cgroup() {
    if !available("runc") {
        return;
    }
    let bundle = RuncBundle::new("palisade-runc");
    let id = &bundle.id;
    let parent = format!("palisade-test-{}", std::process::id());
    let marker = format!("{id}-marker");
    bundle.write(&format!("/bin/true {marker}; sleep 2"));

    let metadata = MetadataRoots::default();
    let mut sensor = start(metadata.clone());
    let container = bundle.run(&metadata);
    let event = wait_for_exec(&mut sensor, &marker);
    drop(container);

    let event = event.expect("the container's exec");
    let container = event.container.expect("attributed to a container");
    assert_eq!(&container.id, id);
    assert_eq!(&container.name, id);
    let bundle_path = std::fs::canonicalize(bundle.dir.path()).unwrap();
    assert!(
        container.labels.contains(&(
            "bundle".to_owned(),
            bundle_path.to_str().unwrap().to_owned()
        )),
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
    assert_eq!(
        event.process.group, "root",
        "the group name from the container's /etc/group"
    );
    assert_eq!(event.ancestors.first().map(|a| a.name.as_str()), Some("sh"));
    assert_eq!(&event.ancestors[0].container_id, id);
    assert_eq!(
        event.process.cgroups.as_slice(),
        ["cpuset", "cpu", "cpuacct", "io", "memory"]
            .map(|controller| format!("{controller}=/{parent}/{id}")),
        "runc puts the container at cgroupsPath in every hierarchy (Falco's thread.cgroups)"
    );
}

/// `podman run` of the container `name`, as every podman container of these tests runs: no
/// network (a bridge would change the host's networking), the runc runtime and the ulimits
/// this machine needs (as `palisade_testdata::PodmanContainer` starts its containers); the
/// caller adds its options, the image and the command.
fn podman_run(name: &str) -> Command {
    let mut command = Command::new("podman");
    command
        .args(["run", "--network", "none", "--runtime", "runc"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--name", name]);
    command
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
    let runtime = podman_run(&name)
        .args(["--rm", "--label", "palisade.test=podman", "--cidfile"])
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
    let mut attribution = ContainerAttribution::new(MetadataRoots {
        runc_state_dirs: vec![dir.path().join("runc")],
        podman_storage: storage.clone(),
        ..MetadataRoots::default()
    });
    let cgroup = format!("/libpod_parent/libpod-{id}");
    // An exec's look-up, waited for as the sensor holds the exec.
    let mut exec_lookup = || {
        assert!(attribution.resolve(11, 0, || cgroup.clone(), true).pending);
        let deadline = Instant::now() + Duration::from_secs(10);
        while attribution.in_flight(11) && Instant::now() < deadline {
            attribution.wait_for_answers(Duration::from_millis(100), &mut Vec::new());
        }
        attribution.container(11).expect("a container")
    };
    let first = exec_lookup();

    std::fs::create_dir_all(storage.join("libpod")).unwrap();
    let copied = std::fs::copy(
        real.join("libpod/bolt_state.db"),
        storage.join("libpod/bolt_state.db"),
    );
    let later = exec_lookup();
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

/// A podman container's mounts and health check are read from podman's configuration as its
/// inspect (what Falco asks podman's Docker API for) shows them: its named volume, a
/// read-only relabelled bind and a bind with slave propagation, in inspect's order and with
/// inspect's values, its tmpfs and the runtime's own mounts left out; the health check as
/// libsinsp reads a CMD-SHELL test.
#[test]
fn podman_mounts_and_health_check_are_read_as_its_inspect_shows_them() {
    // Needs only podman's metadata, no eBPF.
    if !available("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("localhost/palisade-busybox:mounts-{}", std::process::id());
    let image = PodmanImage::import(dir.path(), &tag);
    let name = format!("palisade-mounts-{}", std::process::id());
    let volume = format!("palisade-volume-{}", std::process::id());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = data.to_str().unwrap();
    run(Command::new("podman").args(["volume", "create", &volume]));
    let started = podman_run(&name)
        .arg("--detach")
        .args(["-v", &format!("{data}:/data:ro,Z")])
        .args(["-v", &format!("{volume}:/vol")])
        .args([
            "--mount",
            &format!("type=bind,src={data},dst=/data2,bind-propagation=rslave"),
        ])
        .args(["--tmpfs", "/scratch"])
        .args([
            "--health-cmd",
            "cat /etc/hostname",
            "--health-interval",
            "disable",
        ])
        .args([&image.0, "/bin/sleep", "120"])
        .output()
        .unwrap();
    let inspected = Command::new("podman")
        .args(["inspect", "--format", "{{json .Mounts}}", &name])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    let container = ContainerResolver::new(MetadataRoots::default())
        .lookup(&format!("/machine.slice/libpod-{id}.scope"));
    let _ = Command::new("podman")
        .args(["rm", "-f", "-t", "0", &name])
        .output();
    let _ = Command::new("podman")
        .args(["volume", "rm", "-f", &volume])
        .output();
    assert!(
        started.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let container = container.expect("the container is found");
    assert!(!container.metadata_missing, "{container:?}");

    let inspected: Vec<serde_json::Value> = serde_json::from_slice(&inspected.stdout).unwrap();
    let expected: Vec<ContainerMount> = inspected
        .iter()
        .map(|mount| ContainerMount {
            source: mount["Source"].as_str().unwrap().to_owned(),
            dest: mount["Destination"].as_str().unwrap().to_owned(),
            mode: mount["Mode"].as_str().unwrap().to_owned(),
            rdwr: mount["RW"].as_bool().unwrap(),
            propagation: mount["Propagation"].as_str().unwrap().to_owned(),
        })
        .collect();
    let mounts = container.mounts.expect("podman's mounts are read");
    assert_eq!(mounts, expected);
    let destinations: Vec<&str> = mounts.iter().map(|mount| mount.dest.as_str()).collect();
    assert_eq!(destinations.len(), 3, "{mounts:?}");
    for dest in ["/vol", "/data", "/data2"] {
        assert!(destinations.contains(&dest), "{dest} in {mounts:?}");
    }
    let read_only = mounts.iter().find(|mount| mount.dest == "/data").unwrap();
    assert!(!read_only.rdwr);
    let slave = mounts.iter().find(|mount| mount.dest == "/data2").unwrap();
    assert_eq!(
        (slave.source.as_str(), slave.propagation.as_str()),
        (data, "rslave")
    );
    assert_eq!(
        container.health_probes,
        Some(vec![HealthProbe {
            kind: ProbeKind::Healthcheck,
            exe: "/bin/sh".into(),
            args: vec!["-c".into(), "cat /etc/hostname".into()],
        }])
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
    let labelled_run = |name: &str| {
        let mut command = podman_run(name);
        command.args(["--label", "palisade.test=first-exec"]);
        command
    };
    let running = run(labelled_run(&name).args(["--detach", &image.0, "/bin/sleep", "120"]))
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
        let container = labelled_run(&fresh)
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

/// The first exec of a new podman container (its entrypoint, the first program runc starts
/// in the container's cgroup) and the next one carry the container's name, image and
/// labels: the sensor holds them while the container's metadata is looked up off the event
/// path, rather than sending them with the id alone.
#[test]
fn the_first_exec_in_a_new_podman_container_carries_its_metadata() {
    if !available("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!(
        "localhost/palisade-busybox:first-meta-{}",
        std::process::id()
    );
    let image = PodmanImage::import(dir.path(), &tag);
    let name = format!("palisade-first-meta-{}", std::process::id());
    let marker = format!("{name}-marker");
    let cidfile = dir.path().join("cid");
    let mut sensor = start(MetadataRoots::default());
    let runtime = podman_run(&name)
        .args(["--rm", "--label", "palisade.test=first-meta"])
        .arg("--cidfile")
        .arg(&cidfile)
        .args([&image.0, "/bin/sh", "-c", &format!("/bin/true {marker}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut runtime = Reaper(runtime);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events: Vec<Event> = Vec::new();
    let is_marker = |event: &Event| {
        event.kind == EventKind::Execve
            && event.process.args.first().map(|arg| arg.as_str()) == Some(marker.as_str())
    };
    while Instant::now() < deadline && !events.iter().any(is_marker) {
        sensor
            .poll(Duration::from_millis(50), &mut events)
            .expect("poll");
    }
    let _ = runtime.0.wait();
    let cid = std::fs::read_to_string(&cidfile)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();

    let first = events
        .iter()
        .find(|event| {
            event
                .container
                .as_ref()
                .is_some_and(|container| container.id == cid)
        })
        .expect("an exec in the container");
    let marked = events.iter().find(|event| is_marker(event));
    for event in [Some(first), marked] {
        let event = event.expect("the container's execs");
        let container = event.container.as_ref().expect("attributed to a container");
        assert!(!container.metadata_missing, "{container:?}");
        assert_eq!(container.name, name);
        assert_eq!(container.image, tag);
        assert!(
            container
                .labels
                .contains(&("palisade.test".into(), "first-meta".into())),
            "{container:?}"
        );
    }
    assert!(
        sensor.health().events_held > 0,
        "the new cgroup's first events waited for its look-up: {:?}",
        sensor.health()
    );
}

/// The cgroup2 hierarchy's mount point.
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&"cgroup2"))
        .map(|fields| PathBuf::from(fields[1]))
}

/// [`cgroup2_root`] when the test can run: as root, with eBPF and a cgroup2 hierarchy;
/// `None`, and the test skips (with the reason; required in CI), otherwise.
fn ebpf_and_cgroup2_root() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let cgroup2 = cgroup2_root();
    if !palisade_testdata::capability(
        "root, eBPF and a cgroup2 hierarchy",
        is_root && cgroup2.is_some() && Path::new("/sys/kernel/btf/vmlinux").exists(),
    ) {
        return None;
    }
    cgroup2
}

/// A cgroup2 directory of the test's, removed (with its parent) when dropped; the processes
/// in it must have exited.
struct TestCgroup(PathBuf);
impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Runs `script` with `/bin/sh` in cgroup `cgroup` (the shell moves itself there first).
fn sh_in_cgroup(cgroup: &Path, script: &str) -> Reaper {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec /bin/sh -c '{script}'",
        cgroup.display()
    );
    Reaper(
        Command::new("/bin/sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Runtime metadata roots in a temporary folder whose podman `containers.json` is a FIFO
/// nobody writes (a store that does not answer until `store.release()`), and the cgroup2
/// root; `None`, and the test skips, without root, eBPF or a cgroup2 hierarchy.
struct SilentPodmanStore {
    roots: MetadataRoots,
    store: palisade_testdata::slow_file::SlowFile,
    cgroup2: PathBuf,
    /// Holds the store: declared after it, so removed after the store's drop released it.
    _dir: tempfile::TempDir,
}

impl SilentPodmanStore {
    fn set_up() -> Option<SilentPodmanStore> {
        let cgroup2 = ebpf_and_cgroup2_root()?;
        let dir = tempfile::tempdir().unwrap();
        let roots = metadata_roots_in(dir.path());
        let store = palisade_testdata::slow_file::SlowFile::new(
            &roots
                .podman_storage
                .join("overlay-containers/containers.json"),
            b"[]",
        );
        Some(SilentPodmanStore {
            roots,
            store,
            cgroup2,
            _dir: dir,
        })
    }
}

/// A metadata store that does not answer (podman's `containers.json` as a FIFO nobody writes)
/// holds the events of its container for the short wait only: they leave in their order,
/// with the id the cgroup's name gives and `metadata_missing`, counted; meanwhile the events
/// of the host and of another container, made after the held one, are delivered before it.
#[test]
fn a_slow_metadata_store_delays_neither_the_host_nor_other_containers() {
    let Some(silent) = SilentPodmanStore::set_up() else {
        return;
    };
    let parent = silent
        .cgroup2
        .join(format!("palisade-slow-store-{}", std::process::id()));
    let slow_id = format!("{:064x}", 0x51_0e_u64 + u64::from(std::process::id()));
    let other_id = format!("{:064x}", 0x07_4e_u64 + u64::from(std::process::id()));
    let slow = TestCgroup(parent.join(format!("libpod-{slow_id}")));
    let other = TestCgroup(parent.join(format!("cri-containerd-{other_id}.scope")));
    for cgroup in [&slow.0, &other.0] {
        std::fs::create_dir_all(cgroup).unwrap();
    }
    let tag = format!("slow-store-{}", std::process::id());
    // A longer wait than the default's 50 ms: on a busy machine the loops below may not exec
    // within 50 ms of the held exec, and the test needs some of theirs made while it waits.
    let hold = HoldLimits::new(Duration::from_secs(1), HoldLimits::default().max_events())
        .expect("valid limits");
    let mut sensor = start_holding(silent.roots.clone(), hold);

    // The host and the other container exec all along; the slow container execs twice.
    let loop_script =
        |who: &str| format!("while true; do /bin/true {tag}-{who}; sleep 0.002; done");
    let host = Reaper(
        Command::new("/bin/sh")
            .args(["-c", &loop_script("host")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let other_loop = sh_in_cgroup(&other.0, &loop_script("other"));
    std::thread::sleep(Duration::from_millis(200));
    let slow_run = sh_in_cgroup(
        &slow.0,
        &format!("/bin/true {tag}-slow-1; /bin/true {tag}-slow-2"),
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut delivered: Vec<Event> = Vec::new();
    let mut events = Vec::new();
    let marker = |event: &Event| {
        event
            .process
            .args
            .first()
            .filter(|arg| arg.starts_with(&tag))
            .map(|arg| arg[tag.len() + 1..].to_owned())
    };
    while Instant::now() < deadline
        && !delivered
            .iter()
            .any(|event| marker(event).as_deref() == Some("slow-2"))
    {
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
        delivered.extend(events.drain(..).filter(|event| marker(event).is_some()));
    }
    // Some more of the loops, then everything stops.
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
        delivered.extend(events.drain(..).filter(|event| marker(event).is_some()));
    }
    drop((host, other_loop, slow_run));
    let health = sensor.health().clone();
    drop(sensor);
    silent.store.release();

    let position = |name: &str| {
        delivered
            .iter()
            .position(|event| marker(event).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name} exec among {} events", delivered.len()))
    };
    let (first, second) = (position("slow-1"), position("slow-2"));
    assert!(first < second, "a cgroup's held events keep their order");
    for held in [&delivered[first], &delivered[second]] {
        let container = held.container.as_ref().expect("the container by its name");
        assert_eq!(container.id, slow_id);
        assert_eq!(container.runtime, "podman");
        assert!(container.metadata_missing, "{container:?}");
    }
    assert!(health.events_released_unresolved >= 1, "{health:?}");
    // Execs of the host and of the other container made after the held one went out before it.
    let held_at = delivered[first].timestamp_ns;
    let overtaking = |who: &str| {
        delivered[..first]
            .iter()
            .filter(|event| marker(event).as_deref() == Some(who) && event.timestamp_ns > held_at)
            .count()
    };
    assert!(
        overtaking("host") > 0,
        "host execs made meanwhile went first"
    );
    assert!(
        overtaking("other") > 0,
        "the other container's execs made meanwhile went first"
    );
    let other_container = delivered
        .iter()
        .find(|event| marker(event).as_deref() == Some("other"))
        .and_then(|event| event.container.clone())
        .expect("the other container");
    assert_eq!(other_container.id, other_id);
}

/// Events held for a metadata store that does not answer go out at `Sensor::flush` at once,
/// before their wait ends (an agent stopping loses none of them), with the id the cgroup's
/// name gives and `metadata_missing`, counted as released unresolved.
#[test]
fn held_events_go_out_at_flush_without_waiting() {
    let Some(silent) = SilentPodmanStore::set_up() else {
        return;
    };
    let parent = silent
        .cgroup2
        .join(format!("palisade-flush-{}", std::process::id()));
    let id = format!("{:064x}", 0xf1_u64 + u64::from(std::process::id()));
    let cgroup = TestCgroup(parent.join(format!("libpod-{id}")));
    std::fs::create_dir_all(&cgroup.0).unwrap();
    let marker = format!("flush-{}", std::process::id());
    // Events wait up to 5 s for the store that never answers: far longer than this test
    // takes to see the exec run, so the exec is still held at the flush however slowly the
    // machine runs. (Other tests' containers may hold events meanwhile; nothing here counts
    // held events.)
    let hold = HoldLimits::new(Duration::from_secs(5), HoldLimits::DEFAULT_MAX_EVENTS).unwrap();
    let mut sensor = start_holding(silent.roots.clone(), hold);
    let started = Instant::now();
    // The shell starts on the host and only after a pause moves itself into the container's
    // cgroup, where the exec of /bin/true is its first event.
    let mut run = Reaper(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "sleep 0.5; echo $$ > {}/cgroup.procs && exec /bin/true {marker}",
                cgroup.0.display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let is_marker = |event: &Event| event.process.args.first().is_some_and(|arg| *arg == marker);
    let mut events = Vec::new();
    let mut exited_at = None;
    // /bin/true exits at once, so once the shell is gone its exec has run; polls for 100 ms
    // more read it from the ring buffer into the held events.
    while exited_at.is_none_or(|at: Instant| at.elapsed() < Duration::from_millis(100)) {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the shell never ran its exec"
        );
        sensor
            .poll(Duration::from_millis(5), &mut events)
            .expect("poll");
        assert!(
            !events.iter().any(is_marker),
            "the exec left before its wait ended"
        );
        events.clear();
        if exited_at.is_none() && run.0.try_wait().unwrap().is_some() {
            exited_at = Some(Instant::now());
        }
    }
    let released_before = sensor.health().events_released_unresolved;
    let sent = sensor.flush(&mut events);
    drop(run);
    let health = sensor.health().clone();
    drop(sensor);
    silent.store.release();

    assert_eq!(sent, events.len());
    let exec = events
        .iter()
        .find(|event| is_marker(event))
        .unwrap_or_else(|| {
            let seen: Vec<_> = events
                .iter()
                .map(|event| {
                    (
                        event.kind,
                        event.process.args.clone(),
                        event.container.clone(),
                    )
                })
                .collect();
            panic!("the held exec did not leave at the flush: {seen:?} {health:?}")
        });
    let container = exec.container.as_ref().expect("the container by its name");
    assert_eq!(container.id, id);
    assert!(container.metadata_missing, "{container:?}");
    assert!(
        health.events_released_unresolved > released_before,
        "{health:?}"
    );
}

/// A runc container's bundle in a freely named cgroup ([`RuncBundle`]) beside a
/// [`SilentPodmanStore`], so that the container's events wait for a look-up that answers only
/// at `store.release()`; `None`, and the test skips, without runc or what the store needs.
struct FreelyNamedRunc {
    silent: SilentPodmanStore,
    bundle: RuncBundle,
}

impl FreelyNamedRunc {
    fn set_up(name: &str) -> Option<FreelyNamedRunc> {
        if !available("runc") {
            return None;
        }
        Some(FreelyNamedRunc {
            silent: SilentPodmanStore::set_up()?,
            bundle: RuncBundle::new(name),
        })
    }
}

/// A child forked in a runc container's freely named cgroup before the cgroup's look-up
/// answered (a metadata store that does not answer: the shell's first exec waits its 50 ms
/// and leaves without the container) gets the container once the look-up answers: the
/// ancestry of a later exec names the container for the child, which never executed
/// anything, and for the shell, and the exec and those ancestors carry the names of the
/// container's root (its uid 0 is not named root there).
#[test]
fn processes_forked_before_a_freely_named_cgroups_answer_get_its_container() {
    let Some(FreelyNamedRunc { silent, bundle }) = FreelyNamedRunc::set_up("palisade-early-fork")
    else {
        return;
    };
    let id = &bundle.id;
    let (early, late) = (format!("{id}-early"), format!("{id}-late"));
    // The subshell is forked right after the early exec and waits for the test's go.
    bundle.write(&format!(
        "/bin/true {early}; (while [ ! -e /tmp/go ]; do sleep 0.05; done; \
         /bin/true {late}; /bin/true); sleep 1"
    ));
    std::fs::write(
        bundle.rootfs("etc/passwd"),
        "toor:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(bundle.rootfs("etc/group"), "wheel:x:0:\n").unwrap();
    let mut sensor = start(silent.roots.clone());
    let container = bundle.run(&silent.roots);

    let early_exec = wait_for_exec(&mut sensor, &early);
    let held = sensor.health().clone();
    // The look-up answers; a few polls take the answer in.
    silent.store.release();
    let until = Instant::now() + Duration::from_millis(500);
    let mut events = Vec::new();
    while Instant::now() < until {
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
    }
    std::fs::write(bundle.rootfs("tmp/go"), "").unwrap();
    let late_exec = wait_for_exec(&mut sensor, &late);
    drop(container);

    let early_exec = early_exec.expect("the early exec");
    assert!(
        early_exec.container.is_none(),
        "sent before the answer: {:?} {held:?}",
        early_exec.container
    );
    assert!(held.events_released_unresolved >= 1, "{held:?}");
    let late_exec = late_exec.expect("the late exec");
    assert_eq!(
        late_exec.container.as_ref().map(|known| known.id.as_str()),
        Some(id.as_str())
    );
    let ancestry: Vec<(&str, &str, &str)> = late_exec
        .ancestors
        .iter()
        .take(2)
        .map(|ancestor| {
            (
                ancestor.name.as_str(),
                ancestor.container_id.as_str(),
                ancestor.user.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ancestry,
        [("sh", id.as_str(), "toor"), ("sh", id.as_str(), "toor")],
        "the subshell forked before the answer, then the shell, with the container's names"
    );
    assert_eq!(late_exec.ancestors[0].pid, late_exec.process.ppid);
    assert_eq!(
        (
            late_exec.process.user.as_str(),
            late_exec.process.group.as_str()
        ),
        ("toor", "wheel"),
        "the names of the container's root"
    );
}

/// Events held until a freely named cgroup's look-up answers name the container for their
/// ancestors that exited, and left the process table, before the answer: a shell runs
/// `/bin/true` and both exit while the store does not answer, and the held exec's ancestry
/// then names the container for the exited shell and the container's first process.
#[test]
fn held_events_name_the_container_of_ancestors_that_exited_before_the_answer() {
    let Some(FreelyNamedRunc { silent, bundle }) =
        FreelyNamedRunc::set_up("palisade-gone-ancestor")
    else {
        return;
    };
    let id = &bundle.id;
    let marker = format!("{id}-exec");
    // The inner shell and its /bin/true are gone within milliseconds; the container's first
    // process stays (so the look-up finds the container) until the test is done.
    bundle.write(&format!(
        "/bin/sh -c \"/bin/true {marker}; /bin/true\"; sleep 30"
    ));
    // Events wait up to 5 s (the ceiling): longer than the test takes to see the inner shell
    // exit.
    let hold =
        HoldLimits::new(HoldLimits::MAX_WAIT_CEILING, HoldLimits::DEFAULT_MAX_EVENTS).unwrap();
    let mut sensor = start_holding(silent.roots.clone(), hold);
    let container = bundle.run(&silent.roots);

    // The exec is held while the store does not answer; a second of polls reads the exits
    // of the inner shell and of /bin/true.
    let is_marker = |event: &Event| event.process.args.first().is_some_and(|arg| *arg == marker);
    let until = Instant::now() + Duration::from_secs(1);
    let mut events = Vec::new();
    while Instant::now() < until {
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
        assert!(
            !events.iter().any(is_marker),
            "the exec left before the answer"
        );
        events.clear();
    }
    silent.store.release();
    let exec = wait_for_exec(&mut sensor, &marker);
    drop(container);

    let exec = exec.expect("the held exec");
    assert_eq!(
        exec.container.as_ref().map(|known| known.id.as_str()),
        Some(id.as_str())
    );
    let ancestry: Vec<(&str, &str)> = exec
        .ancestors
        .iter()
        .take(2)
        .map(|ancestor| (ancestor.name.as_str(), ancestor.container_id.as_str()))
        .collect();
    assert_eq!(
        ancestry,
        [("sh", id.as_str()), ("sh", id.as_str())],
        "the exited inner shell, then the container's first process"
    );
}

/// The processes a held cgroup loses from the process table while its look-up is in flight
/// are noted for the answer up to the table's bound, and those past it are counted: a
/// container whose store does not answer runs `/bin/true` in a loop, with a process table
/// bounded a little above the host's processes, until more of its processes have exited than
/// the bound while its first exec waits.
#[test]
fn held_ancestors_past_the_notes_bound_are_counted() {
    let Some(FreelyNamedRunc { silent, bundle }) = FreelyNamedRunc::set_up("palisade-notes-bound")
    else {
        return;
    };
    let id = &bundle.id;
    let marker = format!("{id}-exec");
    bundle.write(&format!(
        "/bin/true {marker}; while true; do /bin/true; done"
    ));
    // Room for the host's processes and those it starts meanwhile (other tests, builds), so
    // that the container's are recorded and then leave the table.
    let host_processes = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    let max_processes = host_processes + 128;
    let config = SensorConfig {
        kinds: Some([EventKind::Execve].into_iter().collect::<BTreeSet<_>>()),
        backend: BackendChoice::Ebpf,
        metadata: silent.roots.clone(),
        max_processes,
        // The cgroup's events wait as long as the ceiling allows: the loop's processes leave
        // the table while its look-up is in flight.
        hold: HoldLimits::new(HoldLimits::MAX_WAIT_CEILING, HoldLimits::DEFAULT_MAX_EVENTS)
            .unwrap(),
        ..SensorConfig::default()
    };
    let mut sensor = config.build().expect("the eBPF sensor starts");
    let container = bundle.run(&silent.roots);

    let until = Instant::now() + HoldLimits::MAX_WAIT_CEILING - Duration::from_millis(500);
    let mut events = Vec::new();
    while Instant::now() < until && sensor.health().held_ancestors_unattributed == 0 {
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
        events.clear();
    }
    let counted = sensor.health().clone();
    silent.store.release();
    let exec = wait_for_exec(&mut sensor, &marker);
    drop(container);

    assert!(
        counted.held_ancestors_unattributed > 0,
        "more than {max_processes} of the container's processes exited within the hold \
         (the table refused {} insertions): {counted:?}",
        counted.processes_untracked
    );
    assert!(exec.is_some(), "the held exec leaves at last");
}

/// A container whose `/etc/passwd` becomes a FIFO nobody writes (the container replaces
/// it; runc's own start-up reads the file, so it is a regular file until then) and whose
/// `/etc/group` is far larger than the read limit stalls nothing: an exec after the names are
/// due for a re-read (which meets the FIFO) arrives at once, with the names read before kept
/// and the group named from the start of the file, and the draining never waits; the cut
/// group file is counted in the sensor's health.
#[test]
fn a_hostile_passwd_or_group_file_stalls_nothing() {
    if !available("runc") {
        return;
    }
    let bundle = RuncBundle::new("palisade-hostile-names");
    let id = &bundle.id;
    let marker = format!("{id}-marker");
    let refresh = palisade_sensor::NAMES_REFRESH.as_secs_f64() + 0.5;
    bundle.write(&format!(
        "sleep 0.5; rm /etc/passwd && mkfifo /etc/passwd && sleep {refresh} && \
         /bin/true {marker}; sleep 1"
    ));
    bundle.edit_config(|config| config["root"]["readonly"] = false.into());
    for applet in ["rm", "mkfifo"] {
        std::os::unix::fs::symlink("busybox", bundle.rootfs("bin").join(applet)).unwrap();
    }
    let mut group = String::from("staff:x:0:\n");
    while group.len() < 8 << 20 {
        group.push_str(&format!("g{0}:x:{0}:a,b,c\n", group.len()));
    }
    std::fs::write(bundle.rootfs("etc/group"), group).unwrap();

    let metadata = MetadataRoots::default();
    let mut sensor = start(metadata.clone());
    let container = bundle.run(&metadata);
    let started = Instant::now();
    let mut longest_poll = Duration::ZERO;
    let mut events = Vec::new();
    let mut exec = None;
    while exec.is_none() && started.elapsed() < Duration::from_secs(30) {
        let poll = Instant::now();
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
        longest_poll = longest_poll.max(poll.elapsed());
        exec = events.drain(..).find(|event| {
            event.kind == EventKind::Execve
                && event.process.args.first().is_some_and(|arg| *arg == marker)
        });
    }
    // The re-read the exec asked for meets the FIFO (refused without waiting).
    std::thread::sleep(Duration::from_millis(200));
    let fifo_is_there = std::fs::symlink_metadata(bundle.rootfs("etc/passwd"))
        .map(|metadata| std::os::unix::fs::FileTypeExt::is_fifo(&metadata.file_type()));
    drop(container);

    assert!(matches!(fifo_is_there, Ok(true)), "{fifo_is_there:?}");
    let exec = exec.expect("the container's exec, delivered");
    assert_eq!(
        exec.container.as_ref().map(|known| known.id.as_str()),
        Some(id.as_str())
    );
    assert_eq!(
        (exec.process.uid, exec.process.user.as_str()),
        (0, "root"),
        "the names read before the FIFO"
    );
    assert_eq!(
        exec.process.group, "staff",
        "the group file up to the limit"
    );
    assert!(
        longest_poll < Duration::from_secs(1),
        "the draining waited {longest_poll:?}"
    );
    // The group file cut at the limit is counted once: by the first read of the container's
    // names, not by the re-read that met the FIFO (the same group file), nor by the host's.
    sensor
        .poll(Duration::from_millis(20), &mut events)
        .expect("poll");
    assert_eq!(sensor.health().names_files_cut, 1, "{:?}", sensor.health());
}

/// clone3's flag to start the child in the cgroup2 directory `CloneArgs::cgroup` refers to
/// (the libc crate declares it as a 32-bit int, which cannot hold it).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to its `cgroup` field (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3` with `CLONE_INTO_CGROUP` starts a child in another cgroup than its parent's; the
/// fork is recorded in the parent's, so the child takes its own cgroup (and the container it
/// names) at its first event: the fork of a grandchild that execs `/bin/true` with no exec of
/// its own in between, whose ancestry then names the child's container, not the parent's.
#[test]
fn a_child_cloned_into_a_cgroup_is_recorded_in_it() {
    let Some(cgroup2) = ebpf_and_cgroup2_root() else {
        return;
    };
    // No runtime's store knows the container: its id is the one the cgroup's name gives.
    let metadata = tempfile::tempdir().unwrap();
    let roots = metadata_roots_in(metadata.path());
    let id = format!("{:064x}", 0xc10e_u64 + u64::from(std::process::id()));
    let cgroup = TestCgroup(
        cgroup2
            .join(format!("palisade-into-cgroup-{}", std::process::id()))
            .join(format!("libpod-{id}")),
    );
    std::fs::create_dir_all(&cgroup.0).unwrap();
    let directory = std::fs::File::open(&cgroup.0).unwrap();
    let marker = format!("into-cgroup-{}", std::process::id());
    let path = std::ffi::CString::new("/bin/true").unwrap();
    let argument = std::ffi::CString::new(marker.as_str()).unwrap();
    let argv = [path.as_ptr(), argument.as_ptr(), std::ptr::null()];
    let mut sensor = start(roots);

    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: std::os::fd::AsRawFd::as_raw_fd(&directory) as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size given; without CLONE_VM the child has
    // its own copy of memory and, like after fork, only calls async-signal-safe functions
    // (fork, execv, waitpid, _exit) on data prepared before.
    let child = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    assert!(child >= 0, "clone3: {}", std::io::Error::last_os_error());
    if child == 0 {
        // SAFETY: see above.
        unsafe {
            let grandchild = libc::fork();
            if grandchild == 0 {
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
            let mut status = 0;
            let waited = libc::waitpid(grandchild, &mut status, 0);
            let ok = grandchild > 0 && waited == grandchild && status == 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: `status` is valid for writes.
    let waited = unsafe { libc::waitpid(child as i32, &mut status, 0) };
    assert_eq!(waited, child as i32);
    assert_eq!(
        status, 0,
        "the child's fork and its grandchild's exec succeeded"
    );
    let exec = wait_for_exec(&mut sensor, &marker).expect("the grandchild's exec");
    drop(sensor);

    assert_eq!(
        exec.container.as_ref().map(|known| known.id.as_str()),
        Some(id.as_str()),
        "the exec's own cgroup"
    );
    let ancestry: Vec<(u32, &str)> = exec
        .ancestors
        .iter()
        .map(|ancestor| (ancestor.pid, ancestor.container_id.as_str()))
        .collect();
    assert_eq!(
        ancestry.first(),
        Some(&(child as u32, id.as_str())),
        "the cloned child, in the cgroup it was cloned into: {ancestry:?}"
    );
    assert_eq!(
        ancestry.get(1),
        Some(&(std::process::id(), "")),
        "this test, on the host: {ancestry:?}"
    );
}

/// Whether this process's `cgroup_reported` map (sensor.bpf.c) holds `cgroup_id`, asked of
/// bpftool by the map's id (from the descriptor's fdinfo: other sensors on the host have
/// maps of that name too).
fn kernel_reported_cgroup(cgroup_id: u64) -> bool {
    let map_ids = std::fs::read_dir("/proc/self/fdinfo")
        .unwrap()
        .filter_map(|fd| {
            let fdinfo = std::fs::read_to_string(fd.ok()?.path()).ok()?;
            fdinfo
                .lines()
                .find_map(|line| line.strip_prefix("map_id:"))
                .map(|id| id.trim().to_owned())
        });
    let bpftool = |args: &[&str]| {
        Command::new("bpftool")
            .args(args)
            .stdin(Stdio::null())
            .output()
    };
    let key: Vec<String> = cgroup_id
        .to_ne_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    for id in map_ids {
        let shown = bpftool(&["map", "show", "id", &id]).expect("bpftool runs");
        if !String::from_utf8_lossy(&shown.stdout).contains(" name cgroup_reported ") {
            continue;
        }
        let mut lookup = vec!["map", "lookup", "id", &id, "key", "hex"];
        lookup.extend(key.iter().map(String::as_str));
        return bpftool(&lookup).expect("bpftool runs").status.success();
    }
    panic!("this process has no cgroup_reported map");
}

/// The sensor keeps a cgroup's path while the cgroup lives and forgets it once it is
/// removed (checked at every poll here); the kernel's record of the reported cgroup goes with
/// it, and a live cgroup's later events keep their path.
#[test]
fn the_path_of_a_removed_cgroup_is_forgotten_and_a_live_ones_kept() {
    let Some(cgroup2) = ebpf_and_cgroup2_root() else {
        return;
    };
    let parent = format!("palisade-cgroup-check-{}", std::process::id());
    let cgroup2 = cgroup2.join(&parent);
    let live = TestCgroup(cgroup2.join("live"));
    let removed = TestCgroup(cgroup2.join("removed"));
    for cgroup in [&live.0, &removed.0] {
        std::fs::create_dir_all(cgroup).unwrap();
    }
    let config = SensorConfig {
        kinds: Some([EventKind::Execve].into()),
        backend: BackendChoice::Ebpf,
        cgroup_check_interval: Duration::ZERO,
        ..SensorConfig::default()
    };
    let mut sensor = config.build().expect("the eBPF sensor starts");
    let tag = format!("cgroup-check-{}", std::process::id());
    let exec_in = |sensor: &mut Sensor, cgroup: &Path, name: &str| {
        let marker = format!("{tag}-{name}");
        let mut run = sh_in_cgroup(cgroup, &format!("/bin/true {marker}"));
        let event = wait_for_exec(sensor, &marker).expect("the exec in the cgroup");
        run.0.wait().unwrap();
        event.cgroup_id
    };
    let live_id = exec_in(&mut sensor, &live.0, "live");
    let removed_id = exec_in(&mut sensor, &removed.0, "removed");
    assert_ne!(live_id, removed_id);
    // The probes' paths start with the root's slash and each level's.
    let path_of = |sensor: &Sensor, id| sensor.cgroup_path(id).map(str::to_owned);
    assert_eq!(
        path_of(&sensor, removed_id),
        Some(format!("//{parent}/removed"))
    );

    let bpftool = palisade_testdata::capability(
        "bpftool",
        Command::new("bpftool")
            .arg("version")
            .output()
            .is_ok_and(|out| out.status.success()),
    );
    if bpftool {
        assert!(kernel_reported_cgroup(removed_id), "reported before");
    }

    std::fs::remove_dir(&removed.0).unwrap();
    sensor.poll(Duration::ZERO, &mut Vec::new()).unwrap();
    assert_eq!(path_of(&sensor, removed_id), None, "forgotten once removed");
    if bpftool {
        assert!(
            !kernel_reported_cgroup(removed_id),
            "the kernel's record of the reported cgroup is deleted"
        );
        assert!(kernel_reported_cgroup(live_id), "a live cgroup's is kept");
    }
    assert_eq!(
        path_of(&sensor, live_id),
        Some(format!("//{parent}/live")),
        "a live cgroup's path is kept"
    );
    assert!(sensor.health().cgroups_known >= 1);
    // Checked at every poll since: still kept, and its next exec is in it.
    assert_eq!(exec_in(&mut sensor, &live.0, "live-again"), live_id);
    assert_eq!(path_of(&sensor, live_id), Some(format!("//{parent}/live")));
}
