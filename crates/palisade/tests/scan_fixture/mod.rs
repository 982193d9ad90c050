//! What the `palisade scan` test files share: the built binary run with arguments, its JSON
//! output read, a root filesystem with known-vulnerable Python, Rust and Go packages, and the
//! shared databases' records for a few packages imported into a fresh vulnerability database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env("PALISADE_LOG", "error")
        .output()
        .expect("the palisade binary runs")
}

/// `palisade scan rootfs ROOT ARGS...`.
pub fn scan_rootfs(root: &str, args: &[&str]) -> Output {
    let mut all = vec!["scan", "rootfs", root];
    all.extend_from_slice(args);
    palisade(&all)
}

/// `palisade db import FEED... --db DB`, which must succeed; what it printed.
pub fn import_feeds(db: &str, feeds: &[&str]) -> String {
    let mut args = vec!["db", "import"];
    args.extend_from_slice(feeds);
    args.extend(["--db", db]);
    let output = palisade(&args);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A root with Jinja2 2.10 (PYSEC-2019-217 and others), smallvec 0.6.9 in a Cargo.lock
/// (RUSTSEC-2019-0009, RUSTSEC-2019-0012, ...) and Debian's runc, built with Go 1.19.8.
pub fn vulnerable_root(root: &Path) {
    write(
        root,
        "usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n",
    );
    write(
        root,
        "srv/app/Cargo.lock",
        "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"0.6.9\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    );
    if Path::new("/usr/sbin/runc").exists() {
        std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
        std::fs::copy("/usr/sbin/runc", root.join("usr/sbin/runc")).unwrap();
    }
}

/// Copies the records of the shared `feeds` that name one of `packages` (a quoted name in
/// JSON, a `name:` line in YAML) into `dir`, one sub-directory per feed, so the test imports
/// tens of records instead of eight thousand.
fn select_shared_records(dir: &Path, feeds: &[&str], packages: &[&str]) -> Option<Vec<PathBuf>> {
    let mut selected = Vec::new();
    for feed in feeds {
        let source = palisade_testdata::shared_data(feed)?;
        let target = dir.join(feed.replace('/', "-"));
        std::fs::create_dir_all(&target).unwrap();
        let mut pending = vec![source];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let names_one = packages.iter().any(|package| {
                    text.contains(&format!("\"name\": \"{package}\""))
                        || text.lines().any(|line| {
                            line.trim()
                                .eq_ignore_ascii_case(&format!("name: {package}"))
                        })
                });
                if names_one {
                    std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
                }
            }
        }
        selected.push(target);
    }
    Some(selected)
}

pub fn import_shared_records(db: &Path, feeds: &[&str], packages: &[&str]) -> Option<()> {
    let feeds = select_shared_records(&db.with_extension("feeds"), feeds, packages)?;
    let feeds: Vec<&str> = feeds.iter().map(|feed| feed.to_str().unwrap()).collect();
    let stdout = import_feeds(db.to_str().unwrap(), &feeds);
    assert!(
        !stdout.contains(": 0 records"),
        "a feed had no matching records: {stdout}"
    );
    Some(())
}

/// [`vulnerable_root`] in `dir/root`, and the shared PyPI, RustSec and Go records of its
/// packages imported into `dir/vulndb.sqlite`: (root, database); none when the shared data is
/// absent (a failure under CI).
pub fn vulnerable_root_and_db(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let db = dir.join("vulndb.sqlite");
    import_shared_records(
        &db,
        &["vulndb/pypi", "vulndb/crates", "vulndb/go"],
        &["Jinja2", "jinja2", "smallvec", "stdlib"],
    )?;
    let root = dir.join("root");
    vulnerable_root(&root);
    Some((root, db))
}
