//! A light load generator for the console benchmark, run as its own process beside the
//! server: CONCURRENCY keep-alive HTTP/1.1 connections, each a blocking thread that asks for
//! the pages in turn (connection `i` starts at page `i`) for SECONDS seconds, so that every
//! connection's requests mix cheap and costly pages as browsers' would. Prints each page's
//! latency distribution and the generator's own CPU time.
//!
//! `console_load HOST:PORT COOKIE SECONDS CONCURRENCY NAME=PATH...` (see
//! `scripts/bench/console`, which starts the server with the `console_bench` example).
//!
//! Plain `std::net` and a hand-written response reader instead of an HTTP client library: the
//! generator's CPU time competes with the server's on the same cores, and a blocking thread
//! per connection costs a read and a write system call per request and nothing else.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

/// Reads one response from `reader`: its status code, after reading the body it announces
/// by `Content-Length` (the console's pages always do).
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<u16, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|error| format!("reading the status line: {error}"))?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let mut length = None;
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|error| format!("reading a header: {error}"))?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<u64>().ok();
        }
    }
    let length = length.ok_or("a response without Content-Length")?;
    std::io::copy(&mut reader.take(length), &mut std::io::sink())
        .map_err(|error| format!("reading the body: {error}"))?;
    Ok(status)
}

/// One connection's loop: the latencies it measured, per page.
fn connection(
    address: &str,
    cookie: &str,
    paths: &[String],
    first_page: usize,
    deadline: Instant,
) -> Result<Vec<Vec<Duration>>, String> {
    let stream = TcpStream::connect(address).map_err(|error| format!("connect: {error}"))?;
    stream
        .set_nodelay(true)
        .map_err(|error| format!("TCP_NODELAY: {error}"))?;
    let mut writer = stream
        .try_clone()
        .map_err(|error| format!("cloning the socket: {error}"))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let requests: Vec<Vec<u8>> = paths
        .iter()
        .map(|path| {
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\r\n")
                .into_bytes()
        })
        .collect();
    let mut latencies = vec![Vec::new(); paths.len()];
    let mut page = first_page % paths.len();
    while Instant::now() < deadline {
        let started = Instant::now();
        writer
            .write_all(&requests[page])
            .map_err(|error| format!("sending: {error}"))?;
        let status = read_response(&mut reader)?;
        if status != 200 {
            return Err(format!("{} answered {status}", paths[page]));
        }
        latencies[page].push(started.elapsed());
        page = (page + 1) % paths.len();
    }
    Ok(latencies)
}

fn percentile_ms(sorted: &[Duration], percent: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((percent / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank].as_secs_f64() * 1000.0
}

/// This process's user plus system CPU time, from `/proc/self/stat` (clock ticks of 1/100 s,
/// Linux's USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields of the line, the 12th and 13th after it.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: console_load HOST:PORT COOKIE SECONDS CONCURRENCY NAME=PATH...";
    let (Some(address), Some(cookie), Some(seconds), Some(concurrency)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|value| value.parse::<u64>().ok()),
        args.get(3).and_then(|value| value.parse::<usize>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let pages: Vec<(String, String)> = args[4..]
        .iter()
        .filter_map(|page| page.split_once('='))
        .map(|(name, path)| (name.to_owned(), path.to_owned()))
        .collect();
    if pages.is_empty() || concurrency == 0 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let paths: Vec<String> = pages.iter().map(|(_, path)| path.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let results: Vec<Result<Vec<Vec<Duration>>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency)
            .map(|index| {
                let paths = &paths;
                scope.spawn(move || connection(address, cookie, paths, index, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a connection thread panicked"))
            .collect()
    });
    let mut all = vec![Vec::new(); pages.len()];
    for result in results {
        match result {
            Ok(latencies) => {
                for (page, measured) in latencies.into_iter().enumerate() {
                    all[page].extend(measured);
                }
            }
            Err(error) => {
                eprintln!("console_load: a connection failed: {error}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "{:<34} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "page (ms)", "requests", "req/s", "p50", "p90", "p99", "max"
    );
    for ((name, _), latencies) in pages.iter().zip(&mut all) {
        latencies.sort();
        println!(
            "{name:<34} {:>8} {:>7.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            latencies.len(),
            latencies.len() as f64 / seconds as f64,
            percentile_ms(latencies, 50.0),
            percentile_ms(latencies, 90.0),
            percentile_ms(latencies, 99.0),
            percentile_ms(latencies, 100.0),
        );
    }
    println!(
        "load generator CPU: {:.2} s over {seconds} s ({:.1} % of one core)",
        cpu_seconds(),
        100.0 * cpu_seconds() / seconds as f64
    );
}
