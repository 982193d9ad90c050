//! What tests and benchmarks share: the reference data that lives beside the repository in
//! `../shared/data`, the capability gate of tests that need root or real tools, and guards that
//! clean up the processes and containers a test starts.
//!
//! [`k8s_api`] is a Kubernetes API server stand-in for the tests of the API client and of
//! the agent's `k8s.*` metadata. [`rpm`] builds rpm root file systems (an os-release and an
//! sqlite rpm database) for tests of inventories and scans.
//! [`findings`] has reports as an agent sends them, for tests that push and count them.
//!
//! It also starts the `palisade` binary under test as a server ([`Palisade::start`]): on a
//! free port, with a known admin token, waiting until it answers, and stopping it on drop.
//!
//! The data is not part of the repository (see `../shared/data/README.md`). Tests that read it
//! call [`shared_data`]: outside CI a missing folder makes the test skip with a printed reason;
//! with `CI` set, a missing folder is a failure, because CI always has the data and a silent
//! skip there would hide a broken test.
//!
//! ```no_run
//! let Some(dir) = palisade_testdata::shared_data("vercmp") else { return };
//! assert!(dir.join("vercmp_dpkg.tsv").exists());
//! ```
#![deny(missing_docs)]

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub mod findings;
pub mod k8s_api;
pub mod rpm;
pub mod slow_file;

/// Environment variable that overrides where the shared data folder is.
pub const DATA_DIR_ENV: &str = "PALISADE_SHARED_DATA";

/// Returns `<shared data>/<relative>` when it exists.
///
/// When it does not exist, prints why the caller skips and returns `None`; when the `CI`
/// environment variable is set, panics instead, since CI must run every data-driven test.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let root = std::env::var_os(DATA_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout_crate_dir().join("../../../shared/data"));
    let path = root.join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "shared test data {} is missing, and CI must run every data-driven test",
        path.display()
    );
    eprintln!(
        "skipping: shared test data {} is absent (set {DATA_DIR_ENV} to its folder)",
        path.display()
    );
    None
}

/// The directory of the crate under test, in the checkout the test runs from: the
/// `CARGO_MANIFEST_DIR` cargo and nextest set when they run a test (every crate sits at
/// `crates/<name>`), else this crate's own directory when it was built.
///
/// Read at run time because a build directory shared by two checkouts of the same commit
/// reuses this crate's build from either: a path fixed at build time can name the other
/// checkout, beside which the shared data may not be.
fn checkout_crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// True when running under CI, where capabilities and data must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false")
}

/// Decides whether a test that needs a capability of the machine (root, eBPF, a container
/// runtime, Chromium, ...) runs: returns `true` when `available`.
///
/// When the capability is missing, prints why the caller skips and returns `false`; under CI
/// it panics instead, because CI runs as root with every tool installed and a silent skip
/// there would hide a broken test.
///
/// ```
/// let is_root = unsafe_free_is_root();
/// # fn unsafe_free_is_root() -> bool { std::fs::metadata("/proc/self").is_ok() }
/// if !palisade_testdata::capability("root", is_root) {
///     return;
/// }
/// ```
pub fn capability(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    assert!(
        !in_ci(),
        "this test needs {what}, which CI must provide (it runs as root with every tool installed)"
    );
    eprintln!("skipping: this test needs {what}, which is not available here");
    false
}

/// A child process that is killed (and reaped) when dropped, so that a failing test leaves no
/// process behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `work` with this whole process moved into the cgroup2 directory `cgroup` (under the
/// cgroup2 mount `cgroup2_root`), then moves the process back to its own cgroup, also when
/// `work` panics: for tests whose many connects must come from inside a cgroup, without a
/// process per connect.
pub fn in_cgroup<T>(cgroup2_root: &Path, cgroup: &Path, work: impl FnOnce() -> T) -> T {
    struct MoveBack(PathBuf);
    impl Drop for MoveBack {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, std::process::id().to_string());
        }
    }
    let listing = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    let own = listing
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map_or("", |path| path.trim().trim_start_matches('/'));
    let _back = MoveBack(cgroup2_root.join(own).join("cgroup.procs"));
    std::fs::write(cgroup.join("cgroup.procs"), std::process::id().to_string())
        .unwrap_or_else(|error| panic!("moving this process into {}: {error}", cgroup.display()));
    work()
}

/// Checks that every `.rs` file under `crate_dir/src` (its subfolders too) opens with a `//!`
/// doc comment, as rust-analyzer's `TidyDocs` does; fails the test naming the first that does
/// not. Returns how many files it checked, so that a caller can see it found its modules.
pub fn assert_every_module_documented(crate_dir: &str) -> usize {
    fn check(dir: &Path) -> usize {
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                checked += check(&path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    text.starts_with("//!"),
                    "{} has no module docs",
                    path.display()
                );
                checked += 1;
            }
        }
        checked
    }
    check(&Path::new(crate_dir).join("src"))
}

/// The BPF programs attached to `cgroup`, as `bpftool cgroup show` lists them (empty when
/// bpftool cannot show it, e.g. once the cgroup is gone).
pub fn cgroup_programs(cgroup: &Path) -> String {
    let output = Command::new("bpftool")
        .args(["cgroup", "show"])
        .arg(cgroup)
        .output()
        .unwrap_or_else(|error| panic!("cannot run bpftool: {error}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `program` with `args` (stdin closed) and returns its trimmed stdout; fails the test
/// with the program's stderr when it cannot run or exits unsuccessfully.
pub fn run_checked(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A loopback TCP port that was free a moment ago (for a server the test starts next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding a loopback port")
}

/// What [`Palisade::start`] waits for before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The server answers `GET /healthz`.
    Healthy,
    /// The server answers and the agent's sensor started: its status file
    /// (`<data dir>/agent/sensor-status.json`) exists (`palisade up` with a sensor).
    SensorStarted,
}

/// A `palisade server` or `palisade up` process a test started, serving plain HTTP on a
/// loopback port. Stopped when dropped: SIGINT first, so that its agent removes what it
/// installed (nftables tables, connect programs) and writes its final status, then SIGKILL
/// when it has not exited after 10 s.
pub struct Palisade {
    /// The process.
    pub process: Child,
    /// Its URL, `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Palisade {
    /// How long a start may take until it is [`Ready`].
    const START_DEADLINE: Duration = Duration::from_secs(60);

    /// Spawns `command` (the test's `palisade up …` or `palisade server …` with its own
    /// arguments and environment) with `--insecure-http`, `--listen` on a free loopback port,
    /// `--data-dir data_dir`, `PALISADE_ADMIN_TOKEN=admin_token` and stdout discarded, and
    /// waits until it is `ready`. Fails the test when the process exits first (naming its exit
    /// status) or is not ready within 60 s.
    pub fn start(
        mut command: Command,
        data_dir: &Path,
        admin_token: &str,
        ready: Ready,
    ) -> Palisade {
        let port = free_port();
        let process = command
            .arg("--insecure-http")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("PALISADE_ADMIN_TOKEN", admin_token)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        // Built before the wait, so that a failed start still stops the process.
        let mut palisade = Palisade {
            process,
            base: format!("http://127.0.0.1:{port}"),
        };
        let sensor_status = data_dir.join("agent/sensor-status.json");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = palisade.process.try_wait() {
                panic!("{command:?} exited with {status} before it was ready");
            }
            if answers_health_check(port) && (ready == Ready::Healthy || sensor_status.exists()) {
                return palisade;
            }
            assert!(
                started.elapsed() < Self::START_DEADLINE,
                "{command:?} was not {ready:?} within {:?}",
                Self::START_DEADLINE
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Palisade {
    fn drop(&mut self) {
        // A process the test already reaped is not signalled: its pid may be another's now.
        if let Ok(Some(_)) = self.process.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.process.id()) {
            // SAFETY: kill has no memory preconditions; the pid is our own unreaped child's.
            unsafe { libc::kill(pid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.process.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Whether a server on loopback `port` answers `GET /healthz` with 200.
fn answers_health_check(port: u16) -> bool {
    let answer = (|| -> std::io::Result<String> {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut status_line = [0u8; 12];
        stream.read_exact(&mut status_line)?;
        Ok(String::from_utf8_lossy(&status_line).into_owned())
    })();
    answer.is_ok_and(|status_line| status_line == "HTTP/1.1 200")
}

/// An exclusive lock across every test process of the machine (nextest runs each test in a
/// process of its own, so a `Mutex` would not do), held until dropped: `flock` on
/// `<temp dir>/<name>.lock`, which the kernel releases even when the test process dies.
pub struct MachineLock {
    _locked: std::fs::File,
}

/// The [`MachineLock`] of the tests that run an executable carrying EICAR and of the tests
/// that run an agent with the malware quarantine on: that agent scans every exec on the host
/// and moves what is malicious out of its directory, the other tests' files included.
pub const MALWARE_EXEC_LOCK: &str = "palisade-malware-exec";

impl MachineLock {
    /// Takes the lock `name`, waiting for as long as another process holds it.
    pub fn take(name: &str) -> MachineLock {
        let path = std::env::temp_dir().join(format!("{name}.lock"));
        let file = std::fs::File::create(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        // SAFETY: flock on a descriptor owned by `file`, which outlives the call.
        let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        assert_eq!(
            locked,
            0,
            "flock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        MachineLock { _locked: file }
    }
}

/// A runc container that is deleted when dropped, with the parent cgroup its test put it in
/// (`cgroup_parent`, under every controller of `/sys/fs/cgroup`).
pub struct RuncContainer {
    /// The container id.
    pub id: String,
    /// The parent cgroup the test gave runc (`linux.cgroupsPath`), removed with it.
    pub cgroup_parent: &'static str,
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .args(["delete", "--force", &self.id])
            .status();
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for controller in controllers.flatten() {
                let _ = std::fs::remove_dir(controller.path().join(self.cgroup_parent));
            }
        }
    }
}

/// A podman container and the image it was made from, both removed (the container killed
/// first) when dropped, so that a failing test leaves neither behind.
pub struct PodmanContainer {
    /// The container's name (or id).
    pub container: String,
    /// The image reference (`localhost/<name>:<tag>`).
    pub image: String,
}

impl PodmanContainer {
    /// Imports the directory `rootfs` as image `localhost/<name>:<tag>` and runs `command` in
    /// a detached container of it named `<name>-<tag>` ([`PodmanContainer::import`], then
    /// [`PodmanContainer::start`]): the guard and the container's 64-hex id.
    pub fn run(
        rootfs: &Path,
        archive: &Path,
        name: &str,
        tag: &str,
        command: &[&str],
    ) -> (PodmanContainer, String) {
        let podman = PodmanContainer::import(rootfs, archive, name, tag);
        let id = podman.start(command);
        (podman, id)
    }

    /// Imports the directory `rootfs` (through the tar archive `archive`) as image
    /// `localhost/<name>:<tag>`; the guard removes it, and the container `<name>-<tag>` if one
    /// was started. Fails the test when podman refuses.
    pub fn import(rootfs: &Path, archive: &Path, name: &str, tag: &str) -> PodmanContainer {
        tar_directory(rootfs, archive);
        let podman = PodmanContainer {
            container: format!("{name}-{tag}"),
            image: format!("localhost/{name}:{tag}"),
        };
        run_checked(
            "podman",
            &["import", archive.to_str().unwrap(), &podman.image],
        );
        podman
    }

    /// Runs `command` in a detached container of the image named `<name>-<tag>`, with runc,
    /// without a network (a bridge would change the host's networking) and with the ulimits
    /// this machine needs; the container's 64-hex id. Fails the test when podman refuses.
    pub fn start(&self, command: &[&str]) -> String {
        self.start_labelled(&[], command)
    }

    /// [`PodmanContainer::start`] with container labels (`key=value`, e.g. the CRI's
    /// `io.kubernetes.pod.name=...`).
    pub fn start_labelled(&self, labels: &[String], command: &[&str]) -> String {
        let mut args = vec![
            "run",
            "--detach",
            "--network",
            "none",
            "--runtime",
            "runc",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--name",
            &self.container,
        ];
        for label in labels {
            args.extend(["--label", label.as_str()]);
        }
        args.push(&self.image);
        args.extend_from_slice(command);
        run_checked("podman", &args)
    }
}

/// Writes the tree under `root` into the tar archive `archive` (an image for `podman import`
/// or `ctr image import`); fails the test when tar does.
pub fn tar_directory(root: &Path, archive: &Path) {
    run_checked(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            archive.to_str().unwrap(),
            ".",
        ],
    );
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.container])
            .output();
        let _ = Command::new("podman")
            .args(["rmi", "--force", &self.image])
            .output();
    }
}

/// Two network namespaces, `client` (`10.<network>.<subnet>.1/24`) and `server` (`.2`), joined
/// by a veth pair, with loopback up in both; deleted when dropped (and with them the veth pair
/// and any nftables table in them). The names carry `tag` and the process id, so that tests in
/// parallel processes never share one.
pub struct NetnsPair {
    /// The client namespace's name (under `/run/netns`).
    pub client: String,
    /// The server namespace's name.
    pub server: String,
}

impl NetnsPair {
    /// Creates the pair; panics naming the `ip` command that failed.
    pub fn new(tag: &str, network: u8, subnet: u8) -> NetnsPair {
        let pid = std::process::id();
        let pair = NetnsPair {
            client: format!("pal-{tag}-c-{pid}"),
            server: format!("pal-{tag}-s-{pid}"),
        };
        ip(&["netns", "add", &pair.client]);
        ip(&["netns", "add", &pair.server]);
        ip(&[
            "link",
            "add",
            "veth-c",
            "netns",
            &pair.client,
            "type",
            "veth",
            "peer",
            "name",
            "veth-s",
            "netns",
            &pair.server,
        ]);
        for (netns, link, host) in [(&pair.client, "veth-c", 1), (&pair.server, "veth-s", 2)] {
            let address = format!("10.{network}.{subnet}.{host}/24");
            ip(&["-n", netns, "address", "add", &address, "dev", link]);
            ip(&["-n", netns, "link", "set", link, "up"]);
            // Resets that refuse a local connect are delivered over loopback.
            ip(&["-n", netns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// The path of the namespace `name` (one of the pair's).
    pub fn path(name: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(name)
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for name in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (iproute2)");
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::{NetnsPair, Palisade, Ready};

    #[test]
    #[should_panic(expected = "before it was ready")]
    fn a_process_that_exits_before_it_is_ready_fails_the_start_naming_its_exit() {
        let dir = std::env::temp_dir();
        Palisade::start(
            std::process::Command::new("false"),
            &dir,
            "token",
            Ready::Healthy,
        );
    }

    /// A dropped pair leaves nothing behind: both network namespaces are gone, not only their
    /// names (no process, open descriptor or bind mount holds a namespace with their inodes
    /// any more), and with them the veth pair and the nftables table made inside one (the
    /// E2E firewall tests' cleanup); neither ever was on the host's own namespace.
    #[test]
    fn a_dropped_netns_pair_leaves_no_namespace_veth_or_table() {
        // SAFETY: geteuid has no preconditions.
        if !super::capability("root (network namespaces)", unsafe { libc::geteuid() } == 0)
            || !super::capability(
                "nft (nftables), to make a table inside a namespace",
                std::process::Command::new("nft")
                    .arg("--version")
                    .output()
                    .is_ok_and(|output| output.status.success()),
            )
        {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let run = |args: &[&str]| {
            let output = std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .unwrap();
            assert!(output.status.success(), "{args:?}: {output:?}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let pair = NetnsPair::new("tdclean", 231, 7);
        let names = [pair.client.clone(), pair.server.clone()];
        let inodes: Vec<u64> = names
            .iter()
            .map(|name| std::fs::metadata(NetnsPair::path(name)).unwrap().ino())
            .collect();
        let host_inode = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert!(!inodes.contains(&host_inode), "{inodes:?}");
        run(&[
            "ip",
            "netns",
            "exec",
            &pair.client,
            "nft",
            "add",
            "table",
            "inet",
            "tdclean",
        ]);
        assert!(
            run(&["ip", "netns", "exec", &pair.client, "nft", "list", "tables"])
                .contains("tdclean")
        );
        assert!(run(&["ip", "-n", &pair.client, "link", "show", "veth-c"]).contains("veth-c"));
        assert!(run(&["ip", "-n", &pair.server, "link", "show", "veth-s"]).contains("veth-s"));
        // What the namespaces are held by while they live: their bind mounts.
        assert_eq!(net_namespaces_held(&inodes).len(), 2);
        drop(pair);
        for name in &names {
            assert!(!NetnsPair::path(name).exists(), "{name}");
        }
        let held = net_namespaces_held(&inodes);
        assert!(held.is_empty(), "namespaces still held: {held:?}");
        assert!(!run(&["nft", "list", "tables"]).contains("tdclean"));
        let links = run(&["ip", "-o", "link", "show"]);
        assert!(
            !links.contains("veth-c") && !links.contains("veth-s"),
            "{links}"
        );
    }

    /// What holds a network namespace with one of `inodes`: a process's namespace, an open
    /// descriptor (`/proc/*/ns/net`, `/proc/*/fd/*` read `net:[INODE]`) or a bind mount (an
    /// `nsfs` mount of this mount namespace); one line each.
    fn net_namespaces_held(inodes: &[u64]) -> Vec<String> {
        let names: Vec<String> = inodes
            .iter()
            .map(|inode| format!("net:[{inode}]"))
            .collect();
        let mut held = Vec::new();
        for process in std::fs::read_dir("/proc").unwrap().flatten() {
            let process = process.path();
            let fds = std::fs::read_dir(process.join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|fd| fd.path());
            for path in std::iter::once(process.join("ns/net")).chain(fds) {
                if let Ok(target) = std::fs::read_link(&path)
                    && names.iter().any(|name| target.as_os_str() == name.as_str())
                {
                    held.push(format!("{}: {}", path.display(), target.display()));
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        held.extend(
            mounts
                .lines()
                .filter(|line| names.iter().any(|name| line.contains(name.as_str())))
                .map(str::to_owned),
        );
        held
    }
}
