//! The Cargo reference for `scripts/vercmp-reference`: reads `a<TAB>b` lines on stdin and
//! prints, per line, how the `semver` crate orders them by precedence (`-1`, `0`, `1`), or
//! `invalid` when it rejects either version.

use std::cmp::Ordering;
use std::io::{BufRead, Write};

fn main() -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (a, b) = line.split_once('\t').unwrap_or((&line, ""));
        let verdict = match (semver::Version::parse(a), semver::Version::parse(b)) {
            (Ok(a), Ok(b)) => match a.cmp_precedence(&b) {
                Ordering::Less => "-1",
                Ordering::Equal => "0",
                Ordering::Greater => "1",
            },
            _ => "invalid",
        };
        writeln!(out, "{verdict}")?;
    }
    out.flush()
}
