//! The live runner: the scenario image, containers, and a sensor thread that evaluates the
//! default rules on every event.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind, EventSink};
use palisade_rules::{
    Alert, ContainerSetup, Engine, EngineConfig, Place, RuleSet, Scenario, Step,
    default_rule_sources,
};
use palisade_sensor::{BackendChoice, SensorConfig};

/// How long a scenario's expected rules may take to fire after its steps ended.
const FIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this machine can run the live tests (root, eBPF, podman, clang, busybox-static,
/// and the host programs some scenarios run: debugfs, gdb, logrotate).
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
        "root, eBPF, podman, clang, busybox-static, debugfs, gdb and logrotate",
        is_root
            && Path::new("/sys/kernel/btf/vmlinux").exists()
            && Path::new("/bin/busybox").exists()
            && Path::new("/usr/sbin/debugfs").exists()
            && runs("gdb")
            && runs("logrotate")
            && runs("podman")
            && runs("clang"),
    )
}

/// Copies a dynamically linked host program into `rootfs` at the same path, with the shared
/// libraries `ldd` names for it (the image has busybox only, and no registry to get a
/// distribution image from).
fn copy_with_libraries(program: &Path, rootfs: &Path) {
    let libraries = run(Command::new("ldd").arg(program));
    let paths = libraries
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(Path::new)
        .chain([program]);
    for path in paths {
        let target = rootfs.join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(path, &target)
            .unwrap_or_else(|error| panic!("copy {} into the image: {error}", path.display()));
    }
}

/// Runs `command` and returns its pid and stdout; panics with its stderr when it fails.
fn spawn_checked(command: &mut Command) -> (u32, String) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (pid, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` and returns its stdout; panics with its stderr when it fails.
fn run(command: &mut Command) -> String {
    spawn_checked(command).1
}

/// The scenario image: busybox with every applet linked, a few files the scenarios touch,
/// and `scenario-helper`. Removed on drop.
pub struct Image {
    /// The image's name in podman's store.
    pub tag: String,
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
        copy_with_libraries(Path::new("/usr/sbin/debugfs"), &rootfs);
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

    /// Gives the image the name `name` until the returned guard is dropped. Panics when an
    /// image of that name exists already: a test must not take over (and then remove) a name
    /// the machine uses.
    fn tag_as(&self, name: &str) -> ImageName {
        let exists = Command::new("podman")
            .args(["image", "exists", name])
            .status()
            .unwrap();
        assert!(
            !exists.success(),
            "an image named {name} exists on this machine; the live run will not retag it"
        );
        run(Command::new("podman").args(["tag", &self.tag, name]));
        ImageName(name.to_owned())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// A name given to the scenario image; removed (the name only) on drop.
struct ImageName(String);

impl Drop for ImageName {
    fn drop(&mut self) {
        // `podman untag NAME` alone would strip every name of the image.
        let _ = Command::new("podman")
            .args(["untag", &self.0, &self.0])
            .output();
    }
}

/// A running podman container (`sleep` as its init); removed with its background steps on
/// drop.
struct Container {
    name: String,
    id: String,
    /// The podman commands run for it: the runtime's processes for the container (conmon,
    /// runc) descend from them, and do part of their work outside its cgroup.
    roots: Vec<u32>,
    background: Vec<Child>,
}

impl Container {
    fn start(image: &str, setup: &ContainerSetup, name: &str) -> Container {
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
        if let Some(check) = &setup.healthcheck {
            // Run when the scenario says so, not by a timer.
            command.args(["--health-cmd", check, "--health-interval", "disable"]);
        }
        command.args([image, "sleep", "600"]);
        let (root, output) = spawn_checked(&mut command);
        let id = output.trim().to_owned();
        assert_eq!(id.len(), 64, "podman printed the container id: {id:?}");
        Container {
            name: name.to_owned(),
            id,
            roots: vec![root],
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
        let mut child = command.spawn().unwrap();
        self.roots.push(child.id());
        if background {
            self.background.push(child);
        } else {
            // The steps' own exit status is not the point (`|| true`, an applet that is not
            // there): what the rules see is.
            let _ = child.wait().unwrap();
        }
    }
}

impl Container {
    /// Runs the container's health check once, as the runtime's timer would.
    fn health_check(&mut self) {
        let (root, _) =
            spawn_checked(Command::new("podman").args(["healthcheck", "run", &self.name]));
        self.roots.push(root);
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

/// An event of a kind some scenario must observe, with what identifies where it came from.
#[derive(Debug, Clone)]
struct Observed {
    kind: EventKind,
    container_id: Option<String>,
    /// The process and its ancestors, nearest first.
    pids: Vec<u32>,
}

/// The sensor and the default rules on a thread of their own, so that the ring buffer is
/// drained while podman and the steps run.
pub struct Watcher {
    seen: Arc<Mutex<Vec<Seen>>>,
    observed: Arc<Mutex<Vec<Observed>>>,
    polls: Arc<AtomicU64>,
    /// Events evaluated so far: what the thread does within one long poll.
    evaluated: Arc<AtomicU64>,
    /// Events the kernel dropped (a full ring buffer): reported with a failure, since a lost
    /// event can explain a missing alert.
    lost: Arc<AtomicU64>,
    /// The longest poll so far and the events it handed over, for a failure's message.
    slowest_poll: Arc<Mutex<(Duration, u64)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long the watcher's thread may go without finishing a poll or evaluating an event
/// before it counts as stuck.
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// The sink the sensor hands each event to: evaluates the rules on it at once and keeps what
/// the scenarios look at, counting the events, so that a thread busy with a long poll is told
/// from a stuck one.
struct Evaluator {
    engine: Engine,
    alerts: Vec<Alert>,
    observe: BTreeSet<EventKind>,
    seen: Arc<Mutex<Vec<Seen>>>,
    observed: Arc<Mutex<Vec<Observed>>>,
    evaluated: Arc<AtomicU64>,
}

impl EventSink for Evaluator {
    fn send(&mut self, event: Event) {
        self.engine.process(&event, &mut self.alerts);
        let container_id = event.container.as_ref().map(|c| c.id.clone());
        let pids: Vec<u32> = std::iter::once(event.process.pid)
            .chain(event.ancestors.iter().map(|a| a.pid))
            .collect();
        if self.observe.contains(&event.kind) {
            self.observed.lock().unwrap().push(Observed {
                kind: event.kind,
                container_id: container_id.clone(),
                pids: pids.clone(),
            });
        }
        for alert in self.alerts.drain(..) {
            self.seen.lock().unwrap().push(Seen {
                rule: alert.rule,
                output: alert.output,
                container_id: container_id.clone(),
                pids: pids.clone(),
            });
        }
        self.evaluated.fetch_add(1, Ordering::SeqCst);
    }
}

impl Watcher {
    /// Starts the eBPF sensor with the probes the default rules need, keeping the events of
    /// the kinds in `observe` (what scenarios must be seen doing).
    pub fn start(observe: BTreeSet<EventKind>) -> Watcher {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let observed = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicU64::new(0));
        let evaluated = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let slowest_poll = Arc::new(Mutex::new((Duration::ZERO, 0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (seen, observed, polls, evaluated, lost, slowest_poll, stop) = (
                seen.clone(),
                observed.clone(),
                polls.clone(),
                evaluated.clone(),
                lost.clone(),
                slowest_poll.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let rule_set = RuleSet::load(&default_rule_sources());
                assert!(rule_set.errors().is_empty(), "the default rules load");
                let engine = Engine::new(rule_set, &EngineConfig::default());
                let config = SensorConfig {
                    kinds: Some(
                        engine
                            .event_kinds()
                            .chain(observe.iter().copied())
                            .collect(),
                    ),
                    backend: BackendChoice::Ebpf,
                    // A cargo build on a loaded machine outruns the default 8 MiB.
                    ring_buffer_bytes: 64 << 20,
                    ..SensorConfig::default()
                };
                let mut sensor = config.build().expect("the eBPF sensor starts");
                ready_tx.send(()).unwrap();
                let mut evaluator = Evaluator {
                    engine,
                    alerts: Vec::new(),
                    observe,
                    seen,
                    observed,
                    evaluated,
                };
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let delivered = sensor
                        .poll(Duration::from_millis(50), &mut evaluator)
                        .expect("poll the sensor");
                    let mut slowest = slowest_poll.lock().unwrap();
                    if started.elapsed() > slowest.0 {
                        *slowest = (started.elapsed(), delivered as u64);
                    }
                    drop(slowest);
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
            observed,
            polls,
            evaluated,
            lost,
            slowest_poll,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until the thread has finished two more polls: every event of what ran before
    /// the call has been evaluated. On a busy machine one poll can hand over the tens of
    /// thousands of events the host's builds made meanwhile, which this unoptimised build
    /// evaluates for many seconds, so the limit is on a stall, not on the wait: the thread is
    /// stuck when it has neither finished a poll nor evaluated an event for [`STALL_LIMIT`].
    fn settle(&self) {
        let progress = || {
            (
                self.polls.load(Ordering::SeqCst),
                self.evaluated.load(Ordering::SeqCst),
            )
        };
        let target = progress().0 + 2;
        let (mut last, mut since) = (progress(), Instant::now());
        while progress().0 < target {
            assert!(
                !self.thread.as_ref().unwrap().is_finished(),
                "the sensor thread died"
            );
            if progress() != last {
                (last, since) = (progress(), Instant::now());
            }
            let (slowest, events) = *self.slowest_poll.lock().unwrap();
            assert!(
                since.elapsed() < STALL_LIMIT,
                "the sensor thread is stuck: no poll finished and no event evaluated for {:?} \
                 ({} polls and {} events so far; the slowest finished poll took {slowest:?} \
                 for {events} events)",
                STALL_LIMIT,
                last.0,
                last.1,
            );
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

/// What a scenario's live run raised and showed.
pub struct Outcome {
    /// The rules that fired for the scenario's container or host steps.
    pub fired: BTreeSet<String>,
    /// The kinds of [`palisade_rules::Expect::seen`] that were observed from them.
    pub seen: BTreeSet<EventKind>,
}

/// Host steps' processes, each run with `sh -c`; background ones are killed on drop.
#[derive(Default)]
struct HostSteps {
    /// `$SCENARIO_DIR`.
    dir: Option<std::path::PathBuf>,
    roots: Vec<u32>,
    background: Vec<Child>,
}

impl HostSteps {
    fn run(&mut self, step: &Step) {
        let mut command = Command::new("sh");
        command.args(["-c", &step.run]);
        if let Some(dir) = &self.dir {
            command.env("SCENARIO_DIR", dir);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.roots.push(child.id());
        if step.background {
            self.background.push(child);
        } else {
            // As in containers, what the rules see matters, not the exit status.
            let _ = child.wait().unwrap();
        }
    }
}

impl Drop for HostSteps {
    fn drop(&mut self) {
        for mut child in self.background.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a scenario's steps, in a fresh container or on the host, and returns what fired and
/// was seen from them (from the container, or from the processes the scenario's commands
/// started, such as the runtime's): once every expected rule fired and every expected kind was seen, or
/// after [`FIRE_TIMEOUT`].
pub fn run_scenario(scenario: &Scenario, image: &Image, watcher: &mut Watcher) -> Outcome {
    let Some(setup) = &scenario.setup.container else {
        let dir = scenario.setup.host_dir.as_ref().map(|parent| {
            tempfile::Builder::new()
                .prefix("palisade-scenario.")
                .tempdir_in(parent)
                .unwrap()
        });
        let mut host = HostSteps::default();
        host.dir = dir.as_ref().map(|dir| dir.path().to_owned());
        for step in &scenario.steps {
            assert_eq!(
                step.on,
                Place::Host,
                "'{}' has no container for its steps",
                scenario.name
            );
            host.run(step);
        }
        let roots = host.roots.clone();
        let outcome = wait_for_outcome(scenario, watcher, |_, pids| {
            pids.iter().any(|pid| roots.contains(pid))
        });
        drop(host);
        drop(dir);
        return outcome;
    };
    let name = format!(
        "palisade-scenario-{}-{}",
        std::process::id(),
        scenario
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let image_name = setup.tag_image.then(|| image.tag_as(&setup.image));
    let image_ref = image_name
        .as_ref()
        .map_or(image.tag.as_str(), |name| &name.0);
    let mut container = Container::start(image_ref, setup, &name);
    for step in &scenario.steps {
        assert_eq!(
            step.on,
            Place::Container,
            "'{}': steps of a scenario with a container run in it",
            scenario.name
        );
        container.exec(&step.run, step.tty, step.background);
    }
    if setup.healthcheck.is_some() {
        container.health_check();
    }
    let id = container.id.clone();
    let roots = container.roots.clone();
    let outcome = wait_for_outcome(scenario, watcher, |container_id, pids| {
        container_id == Some(id.as_str()) || pids.iter().any(|pid| roots.contains(pid))
    });
    // The container goes before the image name it was started from.
    drop(container);
    drop(image_name);
    outcome
}

fn wait_for_outcome(
    scenario: &Scenario,
    watcher: &Watcher,
    from_scenario: impl Fn(Option<&str>, &[u32]) -> bool,
) -> Outcome {
    let deadline = Instant::now() + FIRE_TIMEOUT;
    loop {
        watcher.settle();
        let fired: BTreeSet<String> = watcher
            .matching(|seen| from_scenario(seen.container_id.as_deref(), &seen.pids))
            .into_iter()
            .map(|seen| seen.rule)
            .collect();
        let seen: BTreeSet<EventKind> = watcher
            .observed
            .lock()
            .unwrap()
            .iter()
            .filter(|event| from_scenario(event.container_id.as_deref(), &event.pids))
            .map(|event| event.kind)
            .collect();
        let complete = scenario.expect.fire.iter().all(|rule| fired.contains(rule))
            && scenario.expect.seen.iter().all(|kind| seen.contains(kind));
        if complete || Instant::now() > deadline {
            return Outcome { fired, seen };
        }
    }
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
    let roots: Vec<u32> = commands
        .iter_mut()
        .map(|command| spawn_checked(command).0)
        .collect();
    watcher.settle();
    watcher.matching(|seen| seen.pids.iter().any(|pid| roots.contains(pid)))
}
