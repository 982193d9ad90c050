//! `palisade db vercmp`, run as a built binary.
//!
//! The reference vectors live in `../shared/data/vercmp` (located by `palisade-testdata`:
//! skipped with a printed reason when absent, a failure under CI).

use std::cmp::Ordering;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Rows of the Maven fixture that no single order satisfies, with the result OSV's own
/// Maven library and `palisade-version` give (see `crates/version/tests/vercmp.rs`).
const KNOWN_DIVERGENCES: &[(&str, &str, &str, Ordering)] = &[
    ("vercmp_maven", "1a", "1.a", Ordering::Greater),
    ("vercmp_maven", "1.0a", "1.0.a", Ordering::Less),
    ("vercmp_maven", "1.0.0a", "1.0.0.a", Ordering::Less),
    ("vercmp_maven", "1x", "1.x", Ordering::Greater),
    ("vercmp_maven", "1.0x", "1.0.x", Ordering::Less),
    ("vercmp_maven", "1.0.0x", "1.0.0.x", Ordering::Less),
];

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("the palisade binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

#[test]
fn every_reference_file() {
    let Some(dir) = palisade_testdata::shared_data("vercmp") else {
        return;
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("vercmp folder is readable")
        .map(|entry| entry.expect("vercmp folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tsv"))
        .collect();
    paths.sort();
    let mut n_files = 0;
    for path in &paths {
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("");
        // The apk validity file lists single versions, not pairs; the library tests cover it.
        if stem.ends_with("apk_validity") {
            continue;
        }
        let name = stem.strip_prefix("vercmp_").unwrap_or(stem);
        let scheme = name.strip_prefix("osv_").unwrap_or(name);
        let output = palisade(&[
            "db",
            "vercmp",
            "--scheme",
            scheme,
            "--file",
            path.to_str().expect("UTF-8 path"),
        ]);
        assert!(
            output.status.success(),
            "{}: exit {:?}, stderr:\n{}",
            path.display(),
            output.status.code(),
            stderr(&output)
        );
        let text = std::fs::read_to_string(path).expect("vercmp file is readable");
        let rows: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .collect();
        let printed = stdout(&output);
        let printed: Vec<&str> = printed.lines().collect();
        assert_eq!(
            printed.len(),
            rows.len(),
            "{}: one line per pair",
            path.display()
        );
        for (row, line) in rows.iter().zip(&printed) {
            let fields: Vec<&str> = row.split('\t').collect();
            let (a, b, expected) = (fields[0], fields[1], fields[2]);
            let expected = KNOWN_DIVERGENCES
                .iter()
                .find(|(file, x, y, _)| *file == stem && *x == a && *y == b)
                .map_or_else(
                    || expected.to_owned(),
                    |(.., ours)| (*ours as i8).to_string(),
                );
            assert_eq!(*line, format!("{a}\t{b}\t{expected}"), "{}", path.display());
        }
        eprintln!("{}: {} pairs match", path.display(), rows.len());
        n_files += 1;
    }
    assert!(n_files > 0, "no vercmp files in {}", dir.display());
}

#[test]
fn two_versions() {
    for (scheme, a, b, expected) in [
        ("dpkg", "1.0~rc1-1", "1.0-1", "-1"),
        ("Debian:12", "1:0.9", "1.0", "1"),
        ("rpm", "1.0-1.el9", "1.0-1.el9", "0"),
        ("PyPI", "2.0rc1", "2.0", "-1"),
        ("maven", "1.0-SNAPSHOT", "1.0", "-1"),
        ("apk", "1.2.3-r1", "1.2.3_rc1-r9", "1"),
        ("CRAN", "1.3-2", "1.3.10", "-1"),
        ("Bioconductor", "1.0", "1.0-0", "0"),
        ("Hackage", "1.0", "1.0.0", "-1"),
        ("Mageia:9", "1.0-1.mga9", "1.0-2.mga9", "-1"),
    ] {
        let output = palisade(&["db", "vercmp", "--scheme", scheme, a, b]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("{expected}\n"), "{scheme} {a} {b}");
    }
}

#[test]
fn errors_exit_with_2() {
    let output = palisade(&["db", "vercmp", "--scheme", "pep440", "1.0", "not a version"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid pep440 version \"not a version\""));

    let output = palisade(&["db", "vercmp", "--scheme", "Nonsense", "1", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("accepted names: dpkg"),
        "{}",
        stderr(&output)
    );

    // An OSV ecosystem without an order here says so instead of listing names.
    let output = palisade(&["db", "vercmp", "--scheme", "ConanCenter", "1", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("\"ConanCenter\" are not ordered here"),
        "{}",
        stderr(&output)
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let pairs = dir.path().join("pairs.tsv");
    std::fs::write(
        &pairs,
        "# comment\n1.0\t2.0\n\nno tab here\n1.0\tnot a version\t-1\n2.0\t1.0\tignored\n",
    )
    .expect("write pairs");
    let output = palisade(&[
        "db",
        "vercmp",
        "--scheme",
        "pep440",
        "--file",
        pairs.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "1.0\t2.0\t-1\n2.0\t1.0\t1\n");
    let errors = stderr(&output);
    assert!(errors.contains("pairs.tsv:4:"), "{errors}");
    assert!(errors.contains("pairs.tsv:5:"), "{errors}");
    assert_eq!(errors.lines().count(), 2, "{errors}");
}
