//! Engine throughput on a 1,000,000-event exec/open/connect stream with the Falco stable rule
//! set and with Palisade's default rules, rule load time, and the memory a loaded engine
//! retains. Results are recorded in `docs/benchmarks/rules.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use palisade_event::{
    Ancestor, Container, Event, EventKind, Fd, FdKind, Payload, Process, Protocol, Socket,
};
use palisade_rules::{Engine, EngineConfig, RuleSet, RuleSource, default_rule_sources};

/// Counts the bytes currently allocated, to report what a loaded engine retains.
struct CountingAllocator;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// CPU time of the benchmark thread, from `/proc/thread-self/schedstat` (nanoseconds on
/// the CPU). On a shared machine wall time also counts time spent waiting for a core; CPU
/// time is what one core actually spends, which is what "events per second on one core"
/// means.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns().saturating_sub(start))
    }

    fn add(&self, first: &Duration, second: &Duration) -> Duration {
        *first + *second
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WallTime.formatter()
    }
}

/// Number of distinct events generated.
const POOL_LEN: usize = 10_000;

/// Number of events in the stream: the pool's events in a pseudo-random order, each about
/// 100 times (a host's stream repeats the same programs and files; holding a million distinct
/// events would need a gigabyte on a shared 2-core VM).
const STREAM_LEN: usize = 1_000_000;

const BINARIES: [(&str, &str); 8] = [
    ("nginx", "/usr/sbin/nginx"),
    ("python3", "/usr/bin/python3"),
    ("java", "/usr/lib/jvm/java-17/bin/java"),
    ("bash", "/bin/bash"),
    ("node", "/usr/local/bin/node"),
    ("postgres", "/usr/lib/postgresql/15/bin/postgres"),
    ("curl", "/usr/bin/curl"),
    ("sh", "/bin/sh"),
];

/// Paths opened by the stream; the sensitive one is rare, as in real workloads.
const PATHS: [&str; 11] = [
    "/etc/ld.so.cache",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/share/zoneinfo/UTC",
    "/var/log/nginx/access.log",
    "/proc/self/status",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/app/node_modules/express/index.js",
    "/var/lib/postgresql/15/main/base/16384/2619",
    "/tmp/upload-3829.tmp",
    "/usr/lib/python3.11/json/__init__.py",
];

/// One open in 256 reads `/etc/shadow` (and alerts); the rest are ordinary files.
fn open_path(random: u64) -> &'static str {
    if (random >> 16).is_multiple_of(256) {
        "/etc/shadow"
    } else {
        PATHS[(random >> 8) as usize % PATHS.len()]
    }
}

/// The stream's order: indexes into the pool.
fn stream_order() -> Vec<u32> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..STREAM_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % POOL_LEN as u64) as u32
        })
        .collect()
}

/// A deterministic mix of 20% exec, 60% open and 20% connect events, half in containers.
fn pool() -> Vec<Event> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..POOL_LEN)
        .map(|index| {
            let random = next();
            let (name, exepath) = BINARIES[(random % BINARIES.len() as u64) as usize];
            let kind = match random % 10 {
                0 | 1 => EventKind::Execve,
                2 | 3 => EventKind::Connect,
                4 => EventKind::Open,
                _ => EventKind::Openat,
            };
            let mut event = Event::new(kind);
            event.timestamp_ns = 1_700_000_000_000_000_000 + index as u64 * 1_000;
            event.process = Process {
                pid: 1000 + (random % 500) as u32,
                tid: 1000 + (random % 500) as u32,
                ppid: 900,
                name: name.into(),
                exe: exepath.into(),
                exepath: exepath.into(),
                args: vec!["-c".to_owned(), "/etc/app/config.yaml".to_owned()].into(),
                cwd: "/app".into(),
                uid: (random % 2) as u32 * 1000,
                user: if random % 2 == 0 { "root" } else { "app" }.into(),
                start_time_ns: event.timestamp_ns - 60_000_000_000,
                ..Process::default()
            };
            event.ancestors = vec![
                Ancestor {
                    pid: 900,
                    name: "containerd-shim".into(),
                    exepath: "/usr/bin/containerd-shim-runc-v2".into(),
                    ..Ancestor::default()
                },
                Ancestor {
                    pid: 1,
                    name: "systemd".into(),
                    exepath: "/lib/systemd/systemd".into(),
                    ..Ancestor::default()
                },
            ]
            .into();
            if random % 4 < 2 {
                event.container = Some(Arc::new(Container {
                    id: format!("{:064x}", random),
                    image: "docker.io/library/app:1.4.2".to_owned(),
                    ..Container::default()
                }));
            }
            event.payload = match kind {
                EventKind::Connect => Payload::Network {
                    fd: Fd {
                        num: 7,
                        kind: FdKind::Ipv4,
                        name: String::new(),
                        socket: Some(Socket {
                            protocol: Protocol::Tcp,
                            local_addr: Some("10.244.1.17".parse().expect("address")),
                            local_port: 40000 + (random % 20000) as u16,
                            remote_addr: Some(
                                if random % 3 == 0 {
                                    "10.96.0.1"
                                } else {
                                    "93.184.216.34"
                                }
                                .parse()
                                .expect("address"),
                            ),
                            remote_port: [443, 80, 5432, 53][(random % 4) as usize],
                            connected: true,
                            unix_path: String::new(),
                        }),
                    },
                },
                EventKind::Open | EventKind::Openat => Payload::Open {
                    fd: Fd {
                        num: 5,
                        kind: FdKind::File,
                        name: open_path(random).to_owned(),
                        socket: None,
                    },
                    flags: if random % 5 == 0 { 0o1101 } else { 0 },
                    mode: 0,
                },
                _ => Payload::None,
            };
            event.ret = match kind {
                EventKind::Open | EventKind::Openat => 5,
                _ => 0,
            };
            event
        })
        .collect()
}

fn wall(criterion: &mut Criterion) {
    benches(criterion, "wall");
}

fn cpu(criterion: &mut Criterion<ThreadCpuTime>) {
    benches(criterion, "cpu");
}

fn benches<M: Measurement>(criterion: &mut Criterion<M>, clock: &str) {
    let Some(path) = palisade_testdata::shared_data("falco/falco_rules.yaml") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read the Falco rules");
    let falco = vec![RuleSource {
        name: path.display().to_string(),
        text,
    }];
    let rule_sets = [
        ("falco_stable", falco),
        ("palisade_default", default_rule_sources()),
    ];

    let mut load = criterion.benchmark_group(format!("{clock}/load"));
    for (name, sources) in &rule_sets {
        load.bench_function(*name, |bencher| {
            bencher.iter(|| RuleSet::load(black_box(sources)))
        });
    }
    load.finish();

    let pool = pool();
    let order = stream_order();
    let mut group = criterion.benchmark_group(format!("{clock}/engine"));
    group.throughput(Throughput::Elements(order.len() as u64));
    // One pass over the stream takes about a second: ten samples of one pass each.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for (name, sources) in &rule_sets {
        let before = ALLOCATED.load(Ordering::Relaxed);
        let rule_set = RuleSet::load(sources);
        assert!(rule_set.errors().is_empty());
        let n_rules = rule_set.n_active_rules();
        let mut engine = Engine::new(rule_set, &EngineConfig::default());
        let retained = ALLOCATED.load(Ordering::Relaxed).saturating_sub(before);
        let mut alerts = Vec::new();
        let mut alerts_per_pass = 0;
        for &index in &order {
            alerts.clear();
            engine.process(&pool[index as usize], &mut alerts);
            alerts_per_pass += alerts.len();
        }
        let mut n_alerts = 0;
        group.bench_function(format!("{name}_1m_mixed_stream"), |bencher| {
            bencher.iter(|| {
                for &index in &order {
                    alerts.clear();
                    engine.process(black_box(&pool[index as usize]), &mut alerts);
                    n_alerts += alerts.len();
                }
                black_box(n_alerts)
            })
        });
        eprintln!(
            "{clock}/{name}: {n_rules} active rules; the loaded engine retains {} KiB; \
             {alerts_per_pass} alerts per pass",
            retained / 1024
        );
    }
    group.finish();
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
