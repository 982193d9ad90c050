//! The live runner: the scenario image, containers, and a sensor thread that evaluates the
//! default rules on every event.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palisade_event::Event;
use palisade_rules::{
    ContainerSetup, Engine, EngineConfig, Place, RuleSet, Scenario, default_rule_sources,
};
use palisade_sensor::{BackendChoice, SensorConfig};

/// How long a scenario's expected rules may take to fire after its steps ended.
const FIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this machine can run the live tests (root, eBPF, podman, clang, busybox-static).
pub fn available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let runs = |program: &str| {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    };
    palisade_testdata::capability(
        "root, eBPF, podman, clang and busybox-static",
        is_root
            && Path::new("/sys/kernel/btf/vmlinux").exists()
            && Path::new("/bin/busybox").exists()
            && runs("podman")
            && runs("clang"),
    )
}

/// Runs `command` and returns its stdout; panics with its stderr when it fails.
fn run(command: &mut Command) -> String {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The scenario image: busybox with every applet linked, a few files the scenarios touch,
/// and `scenario-helper`. Removed on drop.
pub struct Image {
    tag: String,
}

impl Image {
    /// Builds and imports the image under `dir`.
    pub fn build(dir: &Path) -> Image {
        let rootfs = dir.join("rootfs");
        for sub in [
            "bin",
            "etc",
            "proc",
            "dev",
            "sys",
            "tmp",
            "run",
            "root/.ssh",
            "usr/bin",
            "usr/local/bin",
            "var/log",
            "var/spool/cron/crontabs",
        ] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let applets = run(Command::new("/bin/busybox").arg("--list"));
        for applet in applets.lines().filter(|name| *name != "busybox") {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        for (path, text) in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
            ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
            (
                "var/log/auth.log",
                "Nov 29 02:00:00 host sshd[1]: Accepted publickey\n",
            ),
            ("root/.bash_history", "id\n"),
        ] {
            std::fs::write(rootfs.join(path), text).unwrap();
        }
        run(Command::new("clang")
            .args(["-static", "-O1", "-o"])
            .arg(rootfs.join("usr/local/bin/scenario-helper"))
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/live/helper.c")));
        let tar = dir.join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        let tag = format!("localhost/palisade-scenarios:{}", std::process::id());
        run(Command::new("podman").arg("import").arg(&tar).arg(&tag));
        Image { tag }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// A running podman container (`sleep` as its init); removed with its background steps on
/// drop.
struct Container {
    name: String,
    id: String,
    background: Vec<Child>,
}

impl Container {
    fn start(image: &Image, setup: &ContainerSetup, name: &str) -> Container {
        let mut command = Command::new("podman");
        command.args([
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--runtime",
            "runc",
            "--cgroupns",
            "private",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]);
        if setup.privileged {
            command.arg("--privileged");
        }
        if setup.host_pid {
            command.args(["--pid", "host"]);
        }
        for capability in &setup.cap_add {
            command.args(["--cap-add", capability]);
        }
        for mount in &setup.mounts {
            command.args(["-v", mount]);
        }
        for path in &setup.tmpfs {
            command.args(["--tmpfs", &format!("{path}:rw,exec,mode=1777")]);
        }
        command.args([&image.tag, "sleep", "600"]);
        let id = run(&mut command).trim().to_owned();
        assert_eq!(id.len(), 64, "podman printed the container id: {id:?}");
        Container {
            name: name.to_owned(),
            id,
            background: Vec::new(),
        }
    }

    /// Runs a step's command with `sh -c`, with a terminal when the step asks for one
    /// (`script` provides it), and waits for it unless it runs in the background.
    fn exec(&mut self, run: &str, tty: bool, background: bool) {
        let mut command = if tty {
            let quoted = format!("'{}'", run.replace('\'', r"'\''"));
            let mut command = Command::new("script");
            command.args([
                "-qec",
                &format!("podman exec -it {} sh -c {quoted}", self.name),
                "/dev/null",
            ]);
            command
        } else {
            let mut command = Command::new("podman");
            command.args(["exec", &self.name, "sh", "-c", run]);
            command
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if background {
            self.background.push(command.spawn().unwrap());
        } else {
            // The steps' own exit status is not the point (`|| true`, an applet that is not
            // there): what the rules see is.
            let _ = command.status().unwrap();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
        for mut child in self.background.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An alert the watcher saw, with what identifies where it came from.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The rule.
    pub rule: String,
    /// The rendered output.
    pub output: String,
    container_id: Option<String>,
    /// The process and its ancestors, nearest first.
    pids: Vec<u32>,
}

/// The sensor and the default rules on a thread of their own, so that the ring buffer is
/// drained while podman and the steps run.
pub struct Watcher {
    seen: Arc<Mutex<Vec<Seen>>>,
    polls: Arc<AtomicU64>,
    /// Events the kernel dropped (a full ring buffer): reported with a failure, since a lost
    /// event can explain a missing alert.
    lost: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the eBPF sensor with the probes the default rules need.
    pub fn start() -> Watcher {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (seen, polls, lost, stop) =
                (seen.clone(), polls.clone(), lost.clone(), stop.clone());
            std::thread::spawn(move || {
                let rule_set = RuleSet::load(&default_rule_sources());
                assert!(rule_set.errors().is_empty(), "the default rules load");
                let mut engine = Engine::new(rule_set, &EngineConfig::default());
                let config = SensorConfig {
                    kinds: Some(engine.event_kinds().collect()),
                    backend: BackendChoice::Ebpf,
                    // A cargo build on a loaded machine outruns the default 8 MiB.
                    ring_buffer_bytes: 64 << 20,
                    ..SensorConfig::default()
                };
                let mut sensor = config.build().expect("the eBPF sensor starts");
                ready_tx.send(()).unwrap();
                let mut events: Vec<Event> = Vec::new();
                let mut alerts = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    sensor
                        .poll(Duration::from_millis(50), &mut events)
                        .expect("poll the sensor");
                    for event in events.drain(..) {
                        engine.process(&event, &mut alerts);
                        for alert in alerts.drain(..) {
                            seen.lock().unwrap().push(Seen {
                                rule: alert.rule,
                                output: alert.output,
                                container_id: event.container.as_ref().map(|c| c.id.clone()),
                                pids: std::iter::once(event.process.pid)
                                    .chain(event.ancestors.iter().map(|a| a.pid))
                                    .collect(),
                            });
                        }
                    }
                    lost.fetch_add(sensor.health().newly_lost, Ordering::SeqCst);
                    polls.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the sensor thread starts");
        Watcher {
            seen,
            polls,
            lost,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until the thread has finished two more polls: every event of what ran before
    /// the call has been evaluated.
    fn settle(&self) {
        let target = self.polls.load(Ordering::SeqCst) + 2;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.polls.load(Ordering::SeqCst) < target {
            assert!(
                !self.thread.as_ref().unwrap().is_finished(),
                "the sensor thread died"
            );
            assert!(Instant::now() < deadline, "the sensor thread is stuck");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The alerts seen so far that match `filter`.
    fn matching(&self, filter: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| filter(seen))
            .cloned()
            .collect()
    }

    /// Events lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops the thread (propagating its panic).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Runs a scenario's steps in a fresh container and returns the rules that fired for that
/// container: once every expected rule fired, or after [`FIRE_TIMEOUT`].
pub fn run_scenario(scenario: &Scenario, image: &Image, watcher: &mut Watcher) -> BTreeSet<String> {
    let setup = scenario
        .setup
        .container
        .as_ref()
        .unwrap_or_else(|| panic!("'{}' has no container to run in", scenario.name));
    let name = format!(
        "palisade-scenario-{}-{}",
        std::process::id(),
        scenario
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let mut container = Container::start(image, setup, &name);
    for step in &scenario.steps {
        assert_eq!(
            step.on,
            Place::Container,
            "'{}': live steps run in the container, never on the host",
            scenario.name
        );
        container.exec(&step.run, step.tty, step.background);
    }
    let expected: BTreeSet<&str> = scenario.expect.fire.iter().map(String::as_str).collect();
    let deadline = Instant::now() + FIRE_TIMEOUT;
    let fired = loop {
        watcher.settle();
        let fired: BTreeSet<String> = watcher
            .matching(|seen| seen.container_id.as_deref() == Some(container.id.as_str()))
            .into_iter()
            .map(|seen| seen.rule)
            .collect();
        if expected.iter().all(|rule| fired.contains(*rule)) || Instant::now() > deadline {
            break fired;
        }
    };
    drop(container);
    fired
}

/// Builds a small crate with cargo and installs and purges a small package with dpkg, and
/// returns the alerts raised by those commands' process trees.
pub fn host_command_alerts(watcher: &mut Watcher, dir: &Path) -> Vec<Seen> {
    let krate = dir.join("tuning-probe");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"tuning-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        krate.join("src/main.rs"),
        "fn main() {\n    println!(\"{}\", std::env::args().count());\n}\n",
    )
    .unwrap();
    let package = dir.join("package");
    std::fs::create_dir_all(package.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(package.join("usr/share/palisade-tuning-probe")).unwrap();
    std::fs::write(
        package.join("DEBIAN/control"),
        "Package: palisade-tuning-probe\nVersion: 1.0\nArchitecture: all\n\
         Maintainer: Palisade tests <tests@palisade.invalid>\n\
         Description: package installed by Palisade's tuning test\n",
    )
    .unwrap();
    let postinst = package.join("DEBIAN/postinst");
    std::fs::write(&postinst, "#!/bin/sh\nset -e\ntrue\n").unwrap();
    std::fs::set_permissions(
        &postinst,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        package.join("usr/share/palisade-tuning-probe/README"),
        "installed by a test\n",
    )
    .unwrap();
    let deb = dir.join("palisade-tuning-probe.deb");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut commands: Vec<Command> = Vec::new();
    let mut build = Command::new(cargo);
    build
        .args(["build", "--offline", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", dir.join("target"));
    commands.push(build);
    let mut pack = Command::new("dpkg-deb");
    pack.args(["--build", "--root-owner-group"])
        .arg(&package)
        .arg(&deb);
    commands.push(pack);
    let mut install = Command::new("dpkg");
    install.arg("-i").arg(&deb);
    commands.push(install);
    let mut purge = Command::new("dpkg");
    purge.args(["--purge", "palisade-tuning-probe"]);
    commands.push(purge);
    let mut roots = Vec::new();
    for mut command in commands {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        roots.push(child.id());
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    watcher.settle();
    watcher.matching(|seen| seen.pids.iter().any(|pid| roots.contains(pid)))
}
