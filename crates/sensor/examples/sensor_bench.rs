//! Benchmark driver for `scripts/bench/sensor`.
//!
//! `sensor_bench monitor SECONDS_FILE`: runs the sensor with every probe attached, decoding
//! and enriching every event into a counting sink, until the file named by its argument
//! appears; then prints `events lost cpu_seconds wall_seconds` as one JSON line. With
//! `SENSOR_READ_CGROUPS=1` it reads each exec's and fork's cgroups; with
//! `SENSOR_CAPTURE_ENVIRONMENT=1` it also captures each exec's environment; with
//! `SENSOR_READ_FD_STATE=1` it reads every event's descriptor limit and open descriptors;
//! `SENSOR_READER_NICE=N` or `off` sets the reading thread's priority (default -10).
//!
//! `sensor_bench exec N` / `spawn N` / `open N` / `connect N`: the workloads — N fork+exec of
//! `/bin/true` (issue 4's (a): `fork()`, `execve` in the child, `waitpid`), N spawns of
//! `/bin/true` through `std::process::Command` (glibc's `posix_spawn`: a `CLONE_VM |
//! CLONE_VFORK` child that resets every signal handler before its `execve`, the way Rust
//! programs start processes), N open+close of one file, N loopback TCP connect+accept (client and server
//! pinned to CPU 0, one connection at a time, the server resetting each on close so that
//! none lingers in TIME_WAIT) — printing the elapsed seconds and the CPU seconds the workload
//! used (its own and its reaped children's, user and system: what the probes that run in its
//! calls add to, and what other work on a shared machine disturbs far less than the elapsed
//! time). With `SENSOR_BENCH_HELD_FDS=K`
//! the open workload first opens K more descriptors (raising its limit), so that the probes
//! count a table of that size at every event.
//!
//! `sensor_bench syscalls N`: N `getppid` calls, which no probe reports, printing the CPU
//! time per call in nanoseconds: what observing some calls costs every other call.

use std::ffi::CString;
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use palisade_event::{Event, EventSink};
use palisade_sensor::{BackendChoice, SensorConfig};

struct Counter(u64);
impl EventSink for Counter {
    fn send(&mut self, event: Event) {
        std::hint::black_box(&event);
        self.0 += 1;
    }
}

/// User and system CPU seconds of `who` (`RUSAGE_SELF` or `RUSAGE_CHILDREN`).
fn cpu_seconds_of(who: libc::c_int) -> f64 {
    // SAFETY: rusage is plain data written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes.
    unsafe { libc::getrusage(who, &mut usage) };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn cpu_seconds() -> f64 {
    cpu_seconds_of(libc::RUSAGE_SELF)
}

/// This process's CPU seconds and those of its children that were waited for.
fn cpu_seconds_with_children() -> f64 {
    cpu_seconds_of(libc::RUSAGE_SELF) + cpu_seconds_of(libc::RUSAGE_CHILDREN)
}

/// Names the connect workload's server CPU (default 0, the client's). On one CPU the
/// lockstep exchange hands over without cross-CPU wake-ups, which on this virtual machine
/// cost 150–390 µs a connection against 17–39 µs and would measure wake-up latency rather
/// than the calls' cost; the monitors' readers have the other CPU.
const SERVER_CPU_VAR: &str = "SENSOR_BENCH_SERVER_CPU";

/// Keeps the calling thread on one CPU (when the machine has it), so that the client and
/// the server of the connect workload run alike in every run.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity get valid
    // pointers to it.
    unsafe {
        if cpu >= libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) as usize {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// SO_LINGER with a zero timeout: closing sends a reset, so no connection of the 100,000
/// waits in TIME_WAIT on either side and the loop never runs short of ports.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open for the call and `linger` is a valid option value.
    let result = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// The program the exec and spawn workloads start.
const TRUE_PATH: &str = "/bin/true";

/// `n` times: `fork()`, `execve("/bin/true")` in the child with this process's environment,
/// `waitpid` for it in the parent, which fails unless it exited with status 0. Everything the
/// child uses is built before the first fork: between fork and execve it only calls execve
/// and, if that fails, `_exit(127)` (both async-signal-safe).
fn fork_exec_true(n: u64) {
    let path = CString::new(TRUE_PATH).expect("no NUL in the path");
    let environment: Vec<CString> = std::env::vars_os()
        .map(|(name, value)| {
            let mut entry = name.into_vec();
            entry.push(b'=');
            entry.extend(value.into_vec());
            CString::new(entry).expect("an environment entry holds no NUL")
        })
        .collect();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp: Vec<*const libc::c_char> = environment
        .iter()
        .map(|entry| entry.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    for _ in 0..n {
        // SAFETY: this process has one thread; the child calls only execve and _exit on
        // memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: path, argv and envp are NUL-terminated and outlive the call.
            unsafe {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: `status` is valid for writes; pid is our child.
        while unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            let error = std::io::Error::last_os_error();
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::Interrupted,
                "waitpid: {error}"
            );
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{TRUE_PATH} ended with wait status {status:#x} (exit 127: execve failed)"
        );
    }
}

/// `SENSOR_BENCH_HELD_FDS` more open descriptors (none when unset), the limit raised to fit.
fn hold_descriptors() -> Vec<std::fs::File> {
    let held: u64 = std::env::var("SENSOR_BENCH_HELD_FDS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    let limit = libc::rlimit {
        rlim_cur: held + 64,
        rlim_max: held + 64,
    };
    // SAFETY: `limit` is a valid rlimit.
    if held > 0 && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        panic!("setrlimit: {}", std::io::Error::last_os_error());
    }
    let null = std::fs::File::open("/dev/null").unwrap();
    (0..held).map(|_| null.try_clone().unwrap()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or_default();
    let arg = args.get(2).cloned().unwrap_or_default();
    match mode {
        "monitor" => {
            let defaults = SensorConfig::default();
            // SENSOR_RING_BUFFER_BYTES measures another ring size (`palisade up
            // --sensor-ring-buffer-bytes`).
            let ring_buffer_bytes = std::env::var("SENSOR_RING_BUFFER_BYTES")
                .ok()
                .and_then(|bytes| bytes.parse().ok())
                .unwrap_or(defaults.ring_buffer_bytes);
            // SENSOR_READ_CGROUPS=1 reads the five controllers' cgroups at exec and fork, as
            // the sensor does when a loaded rule reads thread.cgroups or thread.cgroup.
            let read_cgroups = std::env::var("SENSOR_READ_CGROUPS").is_ok_and(|value| value == "1");
            // SENSOR_CAPTURE_ENVIRONMENT=1 copies each exec's environment, as the sensor
            // does when a loaded rule reads proc.env or proc.aenv.
            let capture_environment =
                std::env::var("SENSOR_CAPTURE_ENVIRONMENT").is_ok_and(|value| value == "1");
            // SENSOR_READ_FD_STATE=1 reads the descriptor limit and counts the open
            // descriptors at every event, as the sensor does when a loaded rule reads
            // proc.fdopencount or proc.fdusage; SENSOR_READ_FD_STATE=limit reads the limit
            // only, as for proc.fdlimit alone.
            let fd_state = std::env::var("SENSOR_READ_FD_STATE").unwrap_or_default();
            let read_fd_state = fd_state == "1" || fd_state == "limit";
            let count_open_fds = fd_state == "1";
            // SENSOR_READER_NICE=N reads at nice N, =off at the priority the monitor was
            // started with (`palisade agent --sensor-reader-nice`); the sensor's -10 by
            // default.
            let reader_nice = match std::env::var("SENSOR_READER_NICE").as_deref() {
                Err(_) => defaults.reader_nice,
                Ok("off") => None,
                Ok(nice) => Some(
                    nice.parse()
                        .expect("SENSOR_READER_NICE: a nice value or off"),
                ),
            };
            let config = SensorConfig {
                backend: BackendChoice::Ebpf,
                ring_buffer_bytes,
                read_cgroups,
                capture_environment,
                read_fd_state,
                count_open_fds,
                reader_nice,
                ..defaults
            };
            let mut sensor = config.build().expect("sensor starts");
            println!("ready {} probes", sensor.status().sources.len());
            let stop = Path::new(&arg);
            let mut counter = Counter(0);
            let started = Instant::now();
            let cpu_start = cpu_seconds();
            while !stop.exists() {
                sensor
                    .poll(Duration::from_millis(100), &mut counter)
                    .expect("poll");
            }
            sensor
                .poll(Duration::from_millis(10), &mut counter)
                .expect("poll");
            let health = sensor.health();
            println!(
                "{{\"events\":{},\"kernel_sent\":{},\"lost\":{},\"cpu_seconds\":{:.3},\"wall_seconds\":{:.3}}}",
                counter.0,
                health.events_sent,
                health.events_lost,
                cpu_seconds() - cpu_start,
                started.elapsed().as_secs_f64()
            );
        }
        "syscalls" => {
            let n: u64 = arg.parse().expect("a count");
            let cpu_start = cpu_seconds();
            for _ in 0..n {
                // SAFETY: getppid has no arguments and cannot fail.
                std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
            }
            println!("{:.1}", (cpu_seconds() - cpu_start) * 1e9 / n as f64);
        }
        "exec" | "spawn" | "open" | "connect" => {
            let n: u64 = arg.parse().expect("a count");
            let started = Instant::now();
            let cpu_start = cpu_seconds_with_children();
            match mode {
                "exec" => fork_exec_true(n),
                "spawn" => {
                    for _ in 0..n {
                        let status = Command::new(TRUE_PATH).status().expect("spawn /bin/true");
                        assert!(status.success(), "{TRUE_PATH} ended with {status}");
                    }
                }
                "open" => {
                    let path = std::env::temp_dir().join("palisade-bench-open");
                    std::fs::write(&path, b"x").unwrap();
                    let held = hold_descriptors();
                    for _ in 0..n {
                        drop(std::fs::File::open(&path).unwrap());
                    }
                    drop(held);
                }
                _ => {
                    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                    let address = listener.local_addr().unwrap();
                    let server_cpu = std::env::var(SERVER_CPU_VAR)
                        .ok()
                        .and_then(|cpu| cpu.parse().ok())
                        .unwrap_or(0);
                    let acceptor = std::thread::spawn(move || {
                        pin_to_cpu(server_cpu);
                        for _ in 0..n {
                            let (stream, _) = listener.accept().unwrap();
                            reset_on_close(&stream);
                        }
                    });
                    pin_to_cpu(0);
                    for _ in 0..n {
                        // Waits for the server's reset: one connection at a time, so the
                        // listen backlog never overflows (a dropped SYN is retried after a
                        // second, which made earlier runs' times jump).
                        match TcpStream::connect(address) {
                            Ok(mut stream) => {
                                let _ = std::io::Read::read(&mut stream, &mut [0u8; 1]);
                            }
                            // Established, accepted and reset before connect returned.
                            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
                            Err(error) => panic!("connect to {address}: {error}"),
                        }
                    }
                    acceptor.join().unwrap();
                }
            }
            println!(
                "{:.4} {:.4}",
                started.elapsed().as_secs_f64(),
                cpu_seconds_with_children() - cpu_start
            );
        }
        _ => {
            eprintln!(
                "usage: sensor_bench monitor STOP_FILE | exec N | spawn N | open N | connect N | syscalls N"
            );
            std::process::exit(2);
        }
    }
}
