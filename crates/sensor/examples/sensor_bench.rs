//! Benchmark driver for `scripts/bench/sensor`.
//!
//! `sensor_bench monitor SECONDS_FILE`: runs the sensor with every probe attached, decoding
//! and enriching every event into a counting sink, until the file named by its argument
//! appears; then prints `events lost cpu_seconds wall_seconds` as one JSON line.
//!
//! `sensor_bench exec N` / `open N` / `connect N`: the workloads — N fork+exec of
//! `/bin/true`, N open+close of one file, N loopback TCP connect+accept — printing the
//! elapsed seconds.

use std::net::{TcpListener, TcpStream};
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

fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or_default();
    let arg = args.get(2).cloned().unwrap_or_default();
    match mode {
        "monitor" => {
            let config = SensorConfig {
                backend: BackendChoice::Ebpf,
                ..SensorConfig::default()
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
        "exec" | "open" | "connect" => {
            let n: u64 = arg.parse().expect("a count");
            let started = Instant::now();
            match mode {
                "exec" => {
                    for _ in 0..n {
                        Command::new("/bin/true").status().expect("spawn /bin/true");
                    }
                }
                "open" => {
                    let path = std::env::temp_dir().join("palisade-bench-open");
                    std::fs::write(&path, b"x").unwrap();
                    for _ in 0..n {
                        drop(std::fs::File::open(&path).unwrap());
                    }
                }
                _ => {
                    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                    let address = listener.local_addr().unwrap();
                    let acceptor = std::thread::spawn(move || {
                        for _ in 0..n {
                            drop(listener.accept().unwrap());
                        }
                    });
                    for _ in 0..n {
                        drop(TcpStream::connect(address).unwrap());
                    }
                    acceptor.join().unwrap();
                }
            }
            println!("{:.4}", started.elapsed().as_secs_f64());
        }
        _ => {
            eprintln!("usage: sensor_bench monitor STOP_FILE | exec N | open N | connect N");
            std::process::exit(2);
        }
    }
}
