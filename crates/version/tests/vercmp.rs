//! Data-driven tests: comparison vectors in `a<TAB>b<TAB>-1|0|1` files, and a fuzz loop.
//!
//! The crate's own vectors live in `tests/data/<scheme>.tsv` and always run. The reference
//! vectors from each project's test suite live in `../shared/data/vercmp/vercmp_<scheme>.tsv`
//! and run when that folder exists (always in CI, see `palisade_testdata`).

use std::cmp::Ordering;
use std::path::Path;

use palisade_version::{ApkVersion, Scheme, Version, compare};

/// Reference rows where this crate deliberately differs, with the ordering it gives.
///
/// The Maven scheme is OSV's order (osv.dev's `osv.ecosystems.maven`, osv-scanner's
/// `semantic`), and both OSV implementations (`osv` 0.0.22, and osv-scalibr's
/// `version-maven.go` transcribed) give exactly these six orderings of `vercmp_maven.tsv`
/// (Maven 3.0's own unit test): a letter glued to a number reads as `-a`, one after a dot as
/// `.a`, and `.qualifier < -qualifier`. No order passes every row: rows 1073-1076 make
/// `1.0.a = 1.0a = 1.0-a = 1a = 1.0.0-a = 1.0.0a = 1.0.0.a` (a digit/letter switch counts as
/// `-`), while row 558 has `2.0.a < 2.0.0.a`, the same shape one number up. Maven 3.8.7 and
/// 3.9 themselves pass these six and fail six others (lines 512-515 and 558-559: `2-1 <
/// 2.0.a`, `2.0.a < 2.0.0.a`), which both OSV implementations pass.
const KNOWN_DIVERGENCES: &[(&str, &str, &str, Ordering)] = &[
    ("vercmp/vercmp_maven", "1a", "1.a", Ordering::Greater),
    ("vercmp/vercmp_maven", "1.0a", "1.0.a", Ordering::Less),
    ("vercmp/vercmp_maven", "1.0.0a", "1.0.0.a", Ordering::Less),
    ("vercmp/vercmp_maven", "1x", "1.x", Ordering::Greater),
    ("vercmp/vercmp_maven", "1.0x", "1.0.x", Ordering::Less),
    ("vercmp/vercmp_maven", "1.0.0x", "1.0.0.x", Ordering::Less),
    // `maven_osv` is osv.dev's Python library, which pads `.SP1` with `.0` and ranks `sp`
    // below it; osv-scanner (osv-scalibr `semantic`) and Maven 3.8/3.9 put the service pack
    // above the release here, as this crate does.
    ("reference/maven_osv", "1.0.SP1", "1.0", Ordering::Greater),
];

/// Versions that a reference corpus's tool rejects and this crate reads, per file.
///
/// `reference/composer`: Debian ships composer/semver 3.3.2, whose date pattern allows one
/// trailing group (`(?:[.:-]?\d{1,3})?`); Composer 2 bundles composer/semver 3.4, which allows
/// two (`{0,2}`), so these long numeric versions normalise there (as dates) and here.
const ACCEPTED_BEYOND_REFERENCE: &[(&str, &str)] = &[
    ("reference/composer", "18446744073709551616"),
    ("reference/composer", "99999999999999999999"),
    ("reference/composer", "9007199254740991.0.0"),
    ("reference/composer", "9007199254740992.0.0"),
];

/// A vector file's name for the divergence lists: its folder and stem (`vercmp/vercmp_maven`).
fn file_label(path: &Path) -> String {
    let name = |path: Option<&Path>| {
        path.and_then(|path| path.file_stem())
            .and_then(|stem| stem.to_str())
            .unwrap_or("")
            .to_owned()
    };
    format!("{}/{}", name(path.parent()), name(Some(path)))
}

/// The outcome of running one vector file.
struct FileReport {
    rows: usize,
    diverging: usize,
    failures: Vec<String>,
}

/// What a row expects: an ordering, or that the reference rejects either version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Order(Ordering),
    Invalid,
}

fn expected_verdict(text: &str) -> Option<Expected> {
    match text.trim() {
        "-1" => Some(Expected::Order(Ordering::Less)),
        "0" => Some(Expected::Order(Ordering::Equal)),
        "1" => Some(Expected::Order(Ordering::Greater)),
        "invalid" => Some(Expected::Invalid),
        _ => None,
    }
}

/// Checks every `a<TAB>b<TAB>cmp` row of `path` (comments and blank lines skipped).
fn check_comparisons(path: &Path, scheme: Scheme) -> FileReport {
    let label = file_label(path);
    let text = std::fs::read_to_string(path).expect("vector file is readable");
    let mut report = FileReport {
        rows: 0,
        diverging: 0,
        failures: Vec::new(),
    };
    for (line_idx, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        report.rows += 1;
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(a), Some(b), Some(expected)) = (
            fields.first(),
            fields.get(1),
            fields.get(2).and_then(|field| expected_verdict(field)),
        ) else {
            report
                .failures
                .push(format!("line {}: malformed row {line:?}", line_idx + 1));
            continue;
        };
        let divergence = KNOWN_DIVERGENCES
            .iter()
            .find(|(file, x, y, _)| *file == label && x == a && y == b);
        if let Some((_, _, _, ours)) = divergence {
            report.diverging += 1;
            if compare(scheme, a, b).ok() != Some(*ours) {
                report.failures.push(format!(
                    "line {}: known divergence {a:?} vs {b:?} no longer gives {ours:?}",
                    line_idx + 1
                ));
            }
            continue;
        }
        let beyond_reference = |version: &str| {
            ACCEPTED_BEYOND_REFERENCE
                .iter()
                .any(|(file, accepted)| *file == label && *accepted == version)
        };
        if expected == Expected::Invalid && (beyond_reference(a) || beyond_reference(b)) {
            report.diverging += 1;
            continue;
        }
        match (compare(scheme, a, b), expected) {
            (Ok(actual), Expected::Order(expected)) if actual == expected => {}
            (Err(_), Expected::Invalid) => {}
            (Ok(actual), expected) => report.failures.push(format!(
                "line {}: {scheme} {a:?} vs {b:?}: expected {expected:?}, got {actual:?}",
                line_idx + 1
            )),
            (Err(error), _) => report
                .failures
                .push(format!("line {}: {error}", line_idx + 1)),
        }
    }
    report
}

/// Checks every `version<TAB>1|0` row of apk's validity vectors.
fn check_apk_validity(path: &Path) -> FileReport {
    let text = std::fs::read_to_string(path).expect("vector file is readable");
    let mut report = FileReport {
        rows: 0,
        diverging: 0,
        failures: Vec::new(),
    };
    for (line_idx, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        report.rows += 1;
        let Some((version, expected)) = line.split_once('\t') else {
            report
                .failures
                .push(format!("line {}: malformed row {line:?}", line_idx + 1));
            continue;
        };
        let expected = expected.trim() == "1";
        let actual = ApkVersion::parse(version).is_ok_and(|version| version.is_valid());
        if actual != expected {
            report.failures.push(format!(
                "line {}: apk validity of {version:?}: expected {expected}, got {actual}",
                line_idx + 1
            ));
        }
    }
    report
}

/// Runs every `.tsv` in `dir`, naming the scheme with `scheme_of(file stem)`.
fn check_dir(dir: &Path, scheme_of: impl Fn(&str) -> Option<String>) {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("vector folder is readable")
        .map(|entry| entry.expect("vector folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tsv"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no vector files in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("");
        let report = if stem.ends_with("apk_validity") {
            check_apk_validity(path)
        } else {
            let name = scheme_of(stem)
                .unwrap_or_else(|| panic!("cannot tell the scheme of {}", path.display()));
            let scheme: Scheme = name
                .parse()
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            check_comparisons(path, scheme)
        };
        eprintln!(
            "{}: {}/{} rows pass, {} known divergences, {} failures",
            path.display(),
            report.rows - report.failures.len() - report.diverging,
            report.rows,
            report.diverging,
            report.failures.len()
        );
        assert!(report.rows > 0, "{} has no rows", path.display());
        failures.extend(
            report
                .failures
                .into_iter()
                .map(|failure| format!("{}: {failure}", path.display())),
        );
    }
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn own_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    check_dir(&dir, |stem| Some(stem.to_owned()));
}

/// Pairs ordered by each scheme's reference implementation, made by
/// `scripts/vercmp-reference` (which names the tool and version in each file's header);
/// `maven_osv` holds pairs ordered by OSV's own Maven implementation (its header says how).
#[test]
fn reference_implementation_corpora() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference");
    check_dir(&dir, |stem| {
        Some(stem.strip_suffix("_osv").unwrap_or(stem).to_owned())
    });
}

#[test]
fn reference_vectors() {
    let Some(dir) = palisade_testdata::shared_data("vercmp") else {
        return;
    };
    // `vercmp_dpkg` is dpkg; `vercmp_osv_maven` (OSV's generated vectors) is maven.
    check_dir(&dir, |stem| {
        let name = stem.strip_prefix("vercmp_")?;
        Some(name.strip_prefix("osv_").unwrap_or(name).to_owned())
    });
}

/// A small deterministic xorshift generator, so the fuzz loop needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random strings: half raw bytes (lossily made UTF-8), half version-like characters.
fn random_version(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] =
        b"0123456789000111..--__~~^^++::!!abcdefrvpgxzRCABSNAPSHOTalphabetadevpostrc \t@#*";
    let len = rng.below(24);
    if rng.below(2) == 0 {
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        (0..len)
            .map(|_| char::from(ALPHABET[rng.below(ALPHABET.len())]))
            .collect()
    }
}

#[test]
fn random_input_never_panics_and_orders_antisymmetrically() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let a = random_version(&mut rng);
        let b = random_version(&mut rng);
        for &scheme in Scheme::all() {
            let parsed_a = Version::parse(scheme, &a);
            let parsed_b = Version::parse(scheme, &b);
            if let (Ok(parsed_a), Ok(parsed_b)) = (&parsed_a, &parsed_b) {
                let forward = parsed_a.partial_cmp(parsed_b);
                let backward = parsed_b.partial_cmp(parsed_a);
                assert_eq!(
                    forward,
                    backward.map(Ordering::reverse),
                    "{scheme}: {a:?} vs {b:?}"
                );
                assert_eq!(parsed_a.partial_cmp(parsed_a), Some(Ordering::Equal));
                let _ = parsed_a.to_string();
            }
            if let Err(error) = parsed_a {
                assert!(error.to_string().contains(scheme.name()), "{error}");
            }
        }
    }
}

#[test]
fn scheme_names() {
    for (name, scheme) in [
        ("dpkg", Scheme::Dpkg),
        ("Debian:12", Scheme::Dpkg),
        ("Ubuntu:Pro:22.04:LTS", Scheme::Dpkg),
        ("Alpine:v3.20", Scheme::Apk),
        ("Wolfi", Scheme::Apk),
        ("Red Hat:enterprise_linux:9::appstream", Scheme::Rpm),
        ("Rocky Linux:9", Scheme::Rpm),
        ("openSUSE:Tumbleweed", Scheme::Rpm),
        ("Photon OS:5.0", Scheme::Rpm),
        ("PyPI", Scheme::Pep440),
        ("npm", Scheme::Semver),
        ("Hex", Scheme::Semver),
        ("Pub", Scheme::Pub),
        ("crates.io", Scheme::Cargo),
        ("Go", Scheme::Go),
        ("Maven", Scheme::Maven),
        ("RubyGems", Scheme::RubyGems),
        ("NuGet", Scheme::NuGet),
        ("Packagist", Scheme::Composer),
        ("composer", Scheme::Composer),
        ("Hackage", Scheme::Pvp),
        ("GHC", Scheme::Pvp),
        ("CRAN", Scheme::Cran),
        ("Bioconductor", Scheme::Cran),
        ("Mageia:9", Scheme::Rpm),
        ("openEuler:24.03-LTS", Scheme::Rpm),
        ("Azure Linux:3", Scheme::Rpm),
        ("Echo", Scheme::Dpkg),
        ("VSCode", Scheme::Semver),
        ("Alpaquita:stream", Scheme::Apk),
        ("MinimOS", Scheme::Apk),
        ("Ubuntu:22.04:LTS", Scheme::Dpkg),
        ("SUSE:Linux Enterprise Server 15 SP5", Scheme::Rpm),
        ("FreeBSD:ports", Scheme::FreeBsd),
        ("FreeBSD:base:14.3", Scheme::FreeBsd),
        // Root names the ecosystem it patches in its second part.
        ("Root:Alpine:3.18", Scheme::Apk),
        ("Root:Debian:12", Scheme::Dpkg),
        ("Root:PyPI", Scheme::Pep440),
        ("root:npm", Scheme::Semver),
    ] {
        assert_eq!(name.parse::<Scheme>(), Ok(scheme), "{name}");
    }
    for &scheme in Scheme::all() {
        assert_eq!(scheme.name().parse::<Scheme>(), Ok(scheme));
    }
    // Ecosystems without one version order (GIT, OSS-Fuzz, Android, Linux) or whose order
    // no scheme here reproduces exactly (ConanCenter, opam, Julia) are refused, saying so.
    for name in [
        "GIT",
        "OSS-Fuzz",
        "Android",
        "Linux",
        "ConanCenter",
        "opam",
        "Julia:General",
        "Root:Android",
    ] {
        let error = name.parse::<Scheme>().unwrap_err();
        assert!(
            matches!(
                error.kind(),
                palisade_version::ErrorKind::UnorderedEcosystem { ecosystem }
                    if name.to_lowercase().contains(&ecosystem.to_lowercase())
            ),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("`versions` lists"), "{error}");
    }
    for name in ["Root", "Root:", "Nonsense", "Root:Nonsense:1"] {
        let error = name.parse::<Scheme>().unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(
                error.kind(),
                palisade_version::ErrorKind::UnknownScheme { name: given } if given == name
            ),
            "{message}"
        );
        assert!(
            message.contains("dpkg, apk, rpm, pep440, semver"),
            "{message}"
        );
    }
}

#[test]
fn invalid_version_errors_name_scheme_and_version() {
    let error = compare(Scheme::Pep440, "1.0", "not a version").unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pep440 version \"not a version\": does not match the PEP 440 version pattern"
    );
    assert!(matches!(
        error.kind(),
        palisade_version::ErrorKind::InvalidVersion { scheme: Scheme::Pep440, version, .. }
            if version == "not a version"
    ));
}

#[test]
fn every_module_opens_with_docs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).expect("src is readable") {
        let path = entry.expect("src entry").path();
        let text = std::fs::read_to_string(&path).expect("source is readable");
        assert!(
            text.starts_with("//!"),
            "{} must open with a `//!` module doc",
            path.display()
        );
    }
}

#[test]
fn pathological_input_never_overflows() {
    let inputs = [
        "1-a".repeat(20_000),
        "1.".repeat(20_000),
        "9".repeat(20_000),
        "1-".repeat(20_000),
        "a1".repeat(20_000),
        "~".repeat(20_000),
        format!("1{}", "_p1".repeat(10_000)),
    ];
    for &scheme in Scheme::all() {
        for a in &inputs {
            for b in &inputs {
                let _ = compare(scheme, a, b);
            }
        }
    }
}
