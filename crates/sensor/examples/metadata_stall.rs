//! Benchmark driver: does a slow container metadata store stall the draining of the ring
//! buffer? (docs/benchmarks.md, "Container metadata off the event path".)
//!
//! `metadata_stall run STORE_ENTRIES CONTAINERS RING_KIB`: builds a podman storage root in a
//! temporary folder whose `containers.json` lists `STORE_ENTRIES` containers (none of them
//! the ones started here, so each of their look-ups reads and parses the whole file and
//! finds nothing, as for a container podman has not written yet), starts the eBPF sensor on
//! it with a `RING_KIB` ring buffer, and then, while a host process opens a file in a loop
//! (the burst), starts `CONTAINERS` processes, each in a new cgroup named like a podman
//! container (`libpod-<id>`, under the cgroup2 hierarchy) that executes `/bin/true` 8 times.
//! Prints one JSON line: events delivered, events the kernel lost, the longest
//! `Sensor::poll` call and the wall time.
//!
//! `metadata_stall lookup STORE_ENTRIES`: the time of one look-up of an unknown podman
//! container in such a store (what the event path did on each cache miss before look-ups
//! moved to the resolver's workers), and of what the event path does now on a miss
//! (`ContainerAttribution::resolve`: the cache, and a look-up queued), each the median of 20.
//!
//! `metadata_stall open N`: the burst workload (N open+close of one file).
//!
//! `metadata_stall names USERS PASSWD_KIB`: the event path on user-name cache misses. A
//! process in a new cgroup named like a podman container, chrooted into a temporary root
//! whose `/etc/passwd` is `PASSWD_KIB` KiB of users none of which is asked for, starts
//! `USERS` children, each with its own uid, that each open a file and stay until all did;
//! the eBPF sensor (openat) reads their events. Every event is a miss of the user-name cache
//! (a new container user): before names moved to the look-up workers, each read and parsed the
//! container's `/etc/passwd` on the draining thread. Prints the events seen, the time spent
//! in `Sensor::poll` per event and the longest poll.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_event::{Event, EventKind, EventSink};
use palisade_sensor::{
    BackendChoice, ContainerAttribution, ContainerResolver, MetadataRoots, SensorConfig,
};

#[path = "../src/container/test_roots.rs"]
mod test_roots;
use test_roots::metadata_roots_in;

struct Counter(u64);
impl EventSink for Counter {
    fn send(&mut self, event: Event) {
        std::hint::black_box(&event);
        self.0 += 1;
    }
}

/// A 64-digit hex id made from a number.
fn hex_id(seed: u64) -> String {
    format!("{:064x}", u128::from(seed) * 0x9e37_79b9_7f4a_7c15 + 1)
}

/// A podman storage root whose `containers.json` lists `entries` containers.
fn podman_store(dir: &Path, entries: u64) -> MetadataRoots {
    let roots = metadata_roots_in(dir);
    let storage = &roots.podman_storage;
    std::fs::create_dir_all(storage.join("overlay-containers")).unwrap();
    std::fs::create_dir_all(storage.join("overlay-images")).unwrap();
    let mut containers = std::io::BufWriter::new(
        std::fs::File::create(storage.join("overlay-containers/containers.json")).unwrap(),
    );
    containers.write_all(b"[").unwrap();
    for n in 0..entries {
        let id = hex_id(1_000_000 + n);
        let metadata = serde_json::json!({
            "image-name": "docker.io/library/nginx:latest",
            "name": format!("stored-{n}"),
            "created-at": 1_764_000_000,
        });
        let entry = serde_json::json!({
            "id": id,
            "names": [format!("stored-{n}")],
            "image": hex_id(n),
            "layer": hex_id(2_000_000 + n),
            "metadata": metadata.to_string(),
            "created": "2026-11-29T12:00:00.123456789Z",
            "flags": {"MountLabel": "", "ProcessLabel": ""},
        });
        if n > 0 {
            containers.write_all(b",").unwrap();
        }
        serde_json::to_writer(&mut containers, &entry).unwrap();
    }
    containers.write_all(b"]").unwrap();
    containers.flush().unwrap();
    std::fs::write(storage.join("overlay-images/images.json"), "[]").unwrap();
    roots
}

/// The cgroup2 hierarchy's mount point.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&"cgroup2"))
        .map(|fields| PathBuf::from(fields[1]))
        .expect("a cgroup2 hierarchy")
}

fn run(store_entries: u64, containers: u64, ring_kib: u32) {
    let dir = tempfile::tempdir().unwrap();
    let metadata = podman_store(dir.path(), store_entries);
    let parent = cgroup2_root().join(format!("palisade-stall-{}", std::process::id()));
    let config = SensorConfig {
        kinds: Some([EventKind::Execve, EventKind::Openat].into()),
        backend: BackendChoice::Ebpf,
        ring_buffer_bytes: ring_kib * 1024,
        metadata,
        ..SensorConfig::default()
    };
    let mut sensor = config.build().expect("sensor starts");
    let workload = {
        let parent = parent.clone();
        std::thread::spawn(move || {
            let burst = Command::new(std::env::current_exe().unwrap())
                .args(["open", "400000"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            for n in 0..containers {
                let cgroup = parent.join(format!("libpod-{}", hex_id(n)));
                std::fs::create_dir_all(&cgroup).unwrap();
                let script = format!(
                    "echo $$ > {}/cgroup.procs && exec /bin/sh -c 'for i in 1 2 3 4 5 6 7 8; do /bin/true; done'",
                    cgroup.display()
                );
                let status = Command::new("/bin/sh")
                    .args(["-c", &script])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            burst.wait_with_output().unwrap();
        })
    };
    let mut counter = Counter(0);
    let started = Instant::now();
    let mut longest_poll = Duration::ZERO;
    while !workload.is_finished() {
        let poll_started = Instant::now();
        sensor
            .poll(Duration::from_millis(20), &mut counter)
            .expect("poll");
        longest_poll = longest_poll.max(poll_started.elapsed());
    }
    let wall = started.elapsed();
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until {
        sensor
            .poll(Duration::from_millis(20), &mut counter)
            .expect("poll");
    }
    workload.join().unwrap();
    for n in 0..containers {
        let _ = std::fs::remove_dir(parent.join(format!("libpod-{}", hex_id(n))));
    }
    let _ = std::fs::remove_dir(&parent);
    let health = sensor.health();
    println!(
        "{{\"store_entries\":{store_entries},\"containers\":{containers},\"ring_kib\":{ring_kib},\"delivered\":{},\"kernel_sent\":{},\"lost\":{},\"longest_poll_ms\":{:.1},\"wall_seconds\":{:.3}}}",
        counter.0,
        health.events_sent,
        health.events_lost,
        longest_poll.as_secs_f64() * 1e3,
        wall.as_secs_f64()
    );
}

fn lookup(store_entries: u64) {
    let dir = tempfile::tempdir().unwrap();
    let roots = podman_store(dir.path(), store_entries);
    let resolver = ContainerResolver::new(roots.clone());
    let path = |n: u64| format!("/machine.slice/libpod-{}.scope", hex_id(n));
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64()
    };
    let lookup = median(
        (0..20)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(resolver.lookup(&path(0)));
                started.elapsed()
            })
            .collect(),
    );
    let mut attribution = ContainerAttribution::new(roots);
    let miss = median(
        (0..20)
            .map(|n| {
                let cgroup_path = path(n);
                let started = Instant::now();
                std::hint::black_box(attribution.resolve(n, 0, || cgroup_path, true));
                started.elapsed()
            })
            .collect(),
    );
    println!(
        "{{\"store_entries\":{store_entries},\"lookup_median_ms\":{:.2},\"event_path_miss_median_us\":{:.2}}}",
        lookup * 1e3,
        miss * 1e6
    );
}

/// The `names` run (see the module's doc).
fn names(users: u64, passwd_kib: u64) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let mut passwd =
        std::io::BufWriter::new(std::fs::File::create(root.join("etc/passwd")).unwrap());
    let mut written = 0;
    let mut uid = 1_000_000u64;
    while written < passwd_kib * 1024 {
        let line = format!("stored{uid}:x:{uid}:{uid}:Stored user:/home/stored{uid}:/bin/sh\n");
        passwd.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        uid += 1;
    }
    passwd.flush().unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("etc/hostname"), "names\n").unwrap();
    let cgroup = cgroup2_root().join(format!(
        "palisade-names-{}/libpod-{}",
        std::process::id(),
        hex_id(u64::from(std::process::id()))
    ));
    std::fs::create_dir_all(&cgroup).unwrap();
    let config = SensorConfig {
        kinds: Some([EventKind::Openat].into()),
        backend: BackendChoice::Ebpf,
        ..SensorConfig::default()
    };
    let mut sensor = config.build().expect("sensor starts");
    let mut workload = Command::new(std::env::current_exe().unwrap())
        .arg("names-workload")
        .arg(&root)
        .arg(&cgroup)
        .arg(users.to_string())
        .spawn()
        .unwrap();
    let workload_pid = workload.id();
    let mut seen = 0u64;
    let mut polling = Duration::ZERO;
    let mut longest_poll = Duration::ZERO;
    let mut events: Vec<Event> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < users && Instant::now() < deadline {
        let poll_started = Instant::now();
        sensor
            .poll(Duration::from_millis(20), &mut events)
            .expect("poll");
        let took = poll_started.elapsed();
        polling += took;
        longest_poll = longest_poll.max(took);
        seen += events
            .drain(..)
            .filter(|event| {
                event.process.ppid == workload_pid
                    && matches!(&event.payload, palisade_event::Payload::Open { fd, .. } if fd.name == "/etc/hostname")
            })
            .count() as u64;
    }
    let _ = workload.wait();
    let _ = std::fs::remove_dir(&cgroup);
    let _ = std::fs::remove_dir(cgroup.parent().unwrap());
    println!(
        "{{\"users\":{users},\"passwd_kib\":{passwd_kib},\"events_seen\":{seen},\"poll_us_per_event\":{:.1},\"longest_poll_ms\":{:.1}}}",
        polling.as_secs_f64() * 1e6 / seen.max(1) as f64,
        longest_poll.as_secs_f64() * 1e3
    );
}

/// The `names` run's workload: moves into `cgroup`, chroots into `root`, then forks `users`
/// children with uids 2000.. that each open `/etc/hostname` and wait until all did.
fn names_workload(root: &Path, cgroup: &Path, users: u64) {
    std::fs::write(cgroup.join("cgroup.procs"), std::process::id().to_string()).unwrap();
    std::os::unix::fs::chroot(root).unwrap();
    std::env::set_current_dir("/").unwrap();
    let mut pipe = [0; 2];
    // SAFETY: `pipe` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let mut children = Vec::new();
    for n in 0..users as u32 {
        // SAFETY: the child only calls async-signal-safe functions before it exits.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: plain system calls on values owned here; the child never returns.
            unsafe {
                libc::close(pipe[1]);
                libc::setresgid(2000 + n, 2000 + n, 2000 + n);
                libc::setresuid(2000 + n, 2000 + n, 2000 + n);
                let fd = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY);
                let mut byte = 0u8;
                // Stays, its root readable, until the parent is done.
                libc::read(pipe[0], (&raw mut byte).cast(), 1);
                libc::close(fd);
                libc::_exit(0);
            }
        }
        children.push(child);
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: closing our own descriptors ends the children's reads.
    unsafe {
        libc::close(pipe[1]);
        libc::close(pipe[0]);
    }
    for child in children {
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |at: usize| -> u64 {
        args.get(at)
            .and_then(|arg| arg.parse().ok())
            .unwrap_or_else(|| panic!("argument {at} must be a number"))
    };
    match args.get(1).map(String::as_str) {
        Some("run") => run(number(2), number(3), number(4) as u32),
        Some("lookup") => lookup(number(2)),
        Some("names") => names(number(2), number(3)),
        Some("names-workload") => {
            names_workload(Path::new(&args[2]), Path::new(&args[3]), number(4))
        }
        Some("open") => {
            let path = std::env::temp_dir().join("palisade-stall-open");
            std::fs::write(&path, b"x").unwrap();
            for _ in 0..number(2) {
                drop(std::fs::File::open(&path).unwrap());
            }
        }
        _ => {
            eprintln!(
                "usage: metadata_stall run STORE_ENTRIES CONTAINERS RING_KIB | lookup STORE_ENTRIES | open N | names USERS PASSWD_KIB"
            );
            std::process::exit(2);
        }
    }
}
