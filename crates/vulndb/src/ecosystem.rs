//! Ecosystem names: normalisation, distributions and their releases, fix suggestions.

use palisade_version::Scheme;

/// OSV ecosystem names as OSV spells them (every ecosystem of OSV schema 1.7.5, and those
/// the inventory names beside them); input is matched case-insensitively.
const CANONICAL: &[&str] = &[
    "Go",
    "crates.io",
    "PyPI",
    "npm",
    "Maven",
    "NuGet",
    "RubyGems",
    "Packagist",
    "Pub",
    "Hex",
    "Hackage",
    "GHC",
    "CRAN",
    "Bioconductor",
    "ConanCenter",
    "Julia",
    "opam",
    "SwiftURL",
    "GitHub Actions",
    "VSCode",
    "Bitnami",
    "Kubernetes",
    "Android",
    "Linux",
    "OSS-Fuzz",
    "Debian",
    "Ubuntu",
    "Alpine",
    "Wolfi",
    "Chainguard",
    "MinimOS",
    "Alpaquita",
    "BellSoft Hardened Containers",
    "Echo",
    "CleanStart",
    "Docker Hardened Images",
    "TuxCare",
    "Red Hat",
    "Rocky Linux",
    "AlmaLinux",
    "SUSE",
    "openSUSE",
    "Photon OS",
    "Mageia",
    "openEuler",
    "Azure Linux",
    "FreeBSD",
    // Root's patched packages: `Root:<ecosystem>[:<release>]`, the rest an ecosystem of
    // its own, normalised as such.
    "Root",
    // Not OSV ecosystems: the inventory names these rpm distributions' releases so; their
    // advisories come from their updateinfo.xml or OVAL (Oracle Linux, Azure Linux and
    // Mariner).
    "Mariner",
    "Amazon Linux",
    "Oracle Linux",
    "Fedora",
];

/// Other spellings users and tools write, with the OSV name they mean.
const SYNONYMS: &[(&str, &str)] = &[
    ("golang", "Go"),
    ("cargo", "crates.io"),
    ("crates", "crates.io"),
    ("rust", "crates.io"),
    ("pip", "PyPI"),
    ("python", "PyPI"),
    ("deb", "Debian"),
    ("apk", "Alpine"),
    ("gem", "RubyGems"),
    ("composer", "Packagist"),
];

/// Debian codenames and their release numbers, as OSV names Debian releases.
const DEBIAN_RELEASES: &[(&str, &str)] = &[
    ("buzz", "1.1"),
    ("rex", "1.2"),
    ("bo", "1.3"),
    ("hamm", "2.0"),
    ("slink", "2.1"),
    ("potato", "2.2"),
    ("woody", "3.0"),
    ("sarge", "3.1"),
    ("etch", "4"),
    ("lenny", "5"),
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
];

/// Normalises an ecosystem name: OSV's spelling of the base, and for Debian and Alpine a
/// canonical release (`debian:bookworm` → `Debian:12`, `alpine:3.19.1` → `Alpine:v3.19`).
pub fn normalize_ecosystem(text: &str) -> String {
    let text = text.trim();
    let (base, release) = match text.split_once(':') {
        Some((base, release)) => (base.trim(), Some(release.trim())),
        None => (text, None),
    };
    let base = CANONICAL
        .iter()
        .copied()
        .find(|name| name.eq_ignore_ascii_case(base))
        .or_else(|| {
            SYNONYMS
                .iter()
                .find(|(synonym, _)| synonym.eq_ignore_ascii_case(base))
                .map(|(_, name)| *name)
        })
        .unwrap_or(base);
    match release.filter(|release| !release.is_empty()) {
        None => base.to_owned(),
        Some(release) => match base {
            "Debian" => format!("Debian:{}", debian_release(release)),
            "Alpine" => format!("Alpine:{}", alpine_release(release)),
            "Ubuntu" => format!("Ubuntu:{}", ubuntu_release(release)),
            "Red Hat" => format!("Red Hat:{}", red_hat_release(release)),
            "SUSE" | "openSUSE" => format!("{base}:{}", suse_release(release)),
            "Root" => format!("Root:{}", normalize_ecosystem(release)),
            _ => format!("{base}:{release}"),
        },
    }
}

/// A Debian release number from a codename or a number (`bookworm`, `12`, `12.4` → `12`).
pub fn debian_release(release: &str) -> String {
    let lower = release.to_ascii_lowercase();
    if let Some((_, number)) = DEBIAN_RELEASES.iter().find(|(name, _)| *name == lower) {
        return (*number).to_owned();
    }
    match lower.split_once('.') {
        // Point releases (12.4) share their major release's data; 1.x to 3.x are whole names.
        Some((major, _)) if major.parse::<u32>().is_ok_and(|major| major >= 4) => major.to_owned(),
        _ => lower,
    }
}

/// An Alpine release as secdb and OSV name it (`3.19.1`, `v3.19` → `v3.19`).
fn alpine_release(release: &str) -> String {
    let release = release.trim_start_matches(['v', 'V']);
    let mut parts = release.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("v{major}.{minor}"),
        _ => format!("v{release}"),
    }
}

/// An Ubuntu release without OSV's `:LTS` mark (`22.04:LTS` → `22.04`, `Pro:18.04:LTS` →
/// `Pro:18.04`), as `os-release` names it.
fn ubuntu_release(release: &str) -> &str {
    release.strip_suffix(":LTS").unwrap_or(release)
}

/// A Red Hat Enterprise Linux release from OSV's CPE-like suffix, which names the product
/// stream, its version and the repository: every repository of a stream is one release for
/// matching, since a host's packages come from several. The main stream is its major
/// release (`enterprise_linux:9::appstream`, RHEL 10's `enterprise_linux:10.0` → `9`, `10`);
/// the update streams (EUS, AUS, E4S, TUS, ELS) get their own fixes for one minor release
/// (ELS: one major) and stay apart, named as the inventory names them
/// (`rhel_eus:9.2::baseos`, RHEL 10's `enterprise_linux_eus:10.0` → `rhel_eus:9.2`,
/// `rhel_eus:10.0`). Other products (`openshift:4.16::el9`) stay as they are.
fn red_hat_release(release: &str) -> String {
    let mut parts = release.split(':');
    match (parts.next(), parts.next()) {
        (Some("enterprise_linux"), Some(version)) if !version.is_empty() => {
            version.split('.').next().unwrap_or(version).to_owned()
        }
        (Some(product), Some(version)) if !version.is_empty() => {
            match product
                .strip_prefix("rhel_")
                .or_else(|| product.strip_prefix("enterprise_linux_"))
            {
                Some(stream @ ("eus" | "aus" | "e4s" | "tus" | "els")) => {
                    format!("rhel_{stream}:{version}")
                }
                _ => release.to_owned(),
            }
        }
        _ => release.to_owned(),
    }
}

/// A SUSE release as the inventory names it, from an OSV product name. SLES and the
/// modules and extensions a SLES system adds are one release per service pack
/// (`Linux Enterprise Server 15 SP5`, `Linux Enterprise Module for Basesystem 15 SP5` →
/// `15.5`; `Leap 15.5` → `15.5`; SLE 16's `Linux Enterprise Server 16.0` → `16.0`), since a
/// host's packages come from several of them. The products built from a service pack that
/// keep getting fixes of their own after its general support are releases of their own, as
/// the inventory names them (see [`matched_releases`] for what they are matched against):
/// SLES's Long Term Service Pack Support (`Linux Enterprise Server 15 SP4-LTSS`, SUSE's CSAF
/// spelling `... 15 SP4 LTSS` and the product's own name `Linux Enterprise Server LTSS 15
/// SP4`, also of 12 SP2 → `15.4-LTSS`, `12.2-LTSS`) and Extended Service Pack Overlap
/// Support (`Linux Enterprise Server 15 SP4-ESPOS` → `15.4-ESPOS`), SLES for SAP
/// Applications, which includes ESPOS
/// (`Linux Enterprise Server for SAP Applications 15 SP4`, SLE 16's `... for SAP
/// applications 16.0` → `15.4-SAP`, `16.0-SAP`), with its LTSS stream (`... for SAP
/// Applications 12 SP5-LTSS` → `12.5-SAP-LTSS`), and SLE High Performance Computing with its
/// LTSS and ESPOS streams (`Linux Enterprise High Performance Computing 15 SP4`, `... 15
/// SP4-LTSS` or `... Computing LTSS 15 SP4`, `... 15 SP4-ESPOS` or `... Computing ESPOS 15
/// SP4` → `15.4-HPC`, `15.4-HPC-LTSS`, `15.4-HPC-ESPOS`). Live Patching, an extension of
/// SLES, writes its service pack `15-SP3` (→ `15.3`). Other
/// products and suffixes (Micro, Business Critical Linux, Teradata, LTSS Extended Security,
/// Tumbleweed, `-LTSS-EXTENDED-SECURITY`) stay as they are, matched by no SLES system.
fn suse_release(release: &str) -> String {
    let (product_release, stream) = match release
        .rsplit_once('-')
        .or_else(|| release.rsplit_once(' '))
    {
        Some((product_release, stream @ ("LTSS" | "ESPOS"))) => (product_release, Some(stream)),
        _ => (release, None),
    };
    // Live Patching's service pack is written `15-SP3`.
    let words: Vec<&str> = product_release
        .split_whitespace()
        .flat_map(|word| match word.split_once("-SP") {
            Some((major, _)) if is_version(major) => vec![major, &word[major.len() + 1..]],
            _ => vec![word],
        })
        .collect();
    let (mut product, version) = match words.as_slice() {
        ["Leap", version] if is_version(version) && stream.is_none() => {
            return (*version).to_owned();
        }
        ["Linux", "Enterprise", product @ .., major, pack]
            if is_version(major) && pack.starts_with("SP") =>
        {
            match pack[2..].parse::<u32>() {
                Ok(service_pack) => (product, format!("{major}.{service_pack}")),
                Err(_) => return release.to_owned(),
            }
        }
        ["Linux", "Enterprise", product @ .., version] if is_version(version) => {
            (product, (*version).to_owned())
        }
        _ => return release.to_owned(),
    };
    // The stream before the version: SUSE's current product names (`Linux Enterprise
    // Server LTSS 15 SP4`, `Linux Enterprise High Performance Computing LTSS 15 SP3`, `...
    // ESPOS 15 SP4`) and the older `Linux Enterprise Server LTSS 12 SP2`.
    let mut stream = stream;
    if let [rest @ .., last @ ("LTSS" | "ESPOS")] = product
        && stream.is_none()
    {
        stream = Some(*last);
        product = rest;
    }
    let product = product.join(" ").to_ascii_lowercase();
    let (line, stream) = match product.as_str() {
        "server for sap applications" => (SuseLine::Sap, stream),
        "high performance computing" => (SuseLine::Hpc, stream),
        _ if [
            "micro",
            "business critical",
            "teradata",
            "ltss",
            "espos",
            "extended",
        ]
        .iter()
        .any(|own_line| product.contains(own_line)) =>
        {
            return release.to_owned();
        }
        _ => (SuseLine::Sles, stream),
    };
    match (line, stream) {
        (SuseLine::Sles, None) => version,
        (SuseLine::Sles, Some(stream)) => format!("{version}-{stream}"),
        (SuseLine::Sap, None) => format!("{version}-SAP"),
        (SuseLine::Sap, Some("LTSS")) => format!("{version}-SAP-LTSS"),
        (SuseLine::Hpc, None) => format!("{version}-HPC"),
        (SuseLine::Hpc, Some(stream)) => format!("{version}-HPC-{stream}"),
        _ => release.to_owned(),
    }
}

/// The SUSE Linux Enterprise product lines whose releases are named apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuseLine {
    /// SLES, its modules and extensions, and the products sharing its packages.
    Sles,
    /// SLES for SAP Applications.
    Sap,
    /// SLE High Performance Computing.
    Hpc,
}

/// True for a release number: digits and dots (`15`, `15.4`, `16.0`).
fn is_version(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The index keys a distribution package of the index key `key` is matched under, its own
/// release first, then the releases it is built from, most specific first. A SUSE system on
/// a product or stream of its own keeps its service pack's update repositories and adds
/// the product's, so it receives both (`SUSE:15.4-LTSS` → `SUSE:15.4-LTSS`, `SUSE:15.4`;
/// `SUSE:15.4-SAP` → `SUSE:15.4-SAP`, `SUSE:15.4`; `SUSE:15.4-HPC-LTSS` →
/// `SUSE:15.4-HPC-LTSS`, `SUSE:15.4-HPC`, `SUSE:15.4`); every other release only its own.
pub(crate) fn matched_releases(key: &str) -> Vec<String> {
    let mut releases = vec![key.to_owned()];
    let Some(mut release) = key.strip_prefix("SUSE:") else {
        return releases;
    };
    while let Some((base, suffix)) = release.rsplit_once('-') {
        let service_pack = base.split('-').next().unwrap_or_default();
        if !matches!(suffix, "LTSS" | "ESPOS" | "SAP" | "HPC") || !is_version(service_pack) {
            break;
        }
        releases.push(format!("SUSE:{base}"));
        release = base;
    }
    releases
}

/// The version scheme of a normalised ecosystem, if this crate can compare its versions.
pub(crate) fn scheme_of(ecosystem: &str) -> Option<Scheme> {
    ecosystem.parse().ok()
}

/// True for distributions, whose packages match only their own release's data, by source
/// package.
pub(crate) fn is_distro(ecosystem: &str) -> bool {
    matches!(
        scheme_of(ecosystem),
        Some(Scheme::Dpkg | Scheme::Apk | Scheme::Rpm)
    )
}

/// The key packages are indexed under: the whole ecosystem for distributions (release
/// included), the base name otherwise, since OSV suffixes such as `Maven:repo` do not change
/// which package is meant.
pub(crate) fn index_ecosystem(ecosystem: &str) -> String {
    let normalized = normalize_ecosystem(ecosystem);
    if is_distro(&normalized) {
        normalized
    } else {
        normalized.split(':').next().unwrap_or_default().to_owned()
    }
}

/// A package name as the ecosystem compares names: PyPI per PEP 503, others unchanged.
pub(crate) fn normalize_name(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" {
        let mut normalized = String::with_capacity(name.len());
        let mut last_was_separator = false;
        for c in name.trim().chars() {
            if matches!(c, '-' | '_' | '.') {
                if !last_was_separator {
                    normalized.push('-');
                }
                last_was_separator = true;
            } else {
                normalized.push(c.to_ascii_lowercase());
                last_was_separator = false;
            }
        }
        normalized
    } else {
        name.trim().to_owned()
    }
}

/// A version string as the scheme's parser wants it: Go bounds in OSV lack the `v`.
pub(crate) fn scheme_version(scheme: Scheme, version: &str) -> String {
    if scheme == Scheme::Go && !version.starts_with('v') {
        format!("v{version}")
    } else {
        version.to_owned()
    }
}

/// The command that upgrades packages of an rpm distribution using dnf or yum (normalised
/// ecosystem): `yum update` on releases that ship no dnf (RHEL and Oracle Linux 7 and
/// older, Amazon Linux 1 and 2), `dnf upgrade` on the others; `None` for other ecosystems
/// (SUSE's zypper among them).
pub(crate) fn rpm_upgrade_command(ecosystem: &str) -> Option<&'static str> {
    let (base, release) = ecosystem.split_once(':').unwrap_or((ecosystem, ""));
    // The major release: the last `:`-separated part that starts with a number
    // (`Red Hat:rhel_eus:7.6` → 7, `Amazon Linux:2018.03` → 2018).
    let major = release
        .rsplit(':')
        .find_map(|part| part.split('.').next()?.parse::<u32>().ok());
    let yum = match base {
        "Red Hat" | "Oracle Linux" => major.is_some_and(|major| major <= 7),
        // Amazon Linux 1 is numbered by year (2018.03), 2023 and its 2022 preview use dnf.
        "Amazon Linux" => major.is_some_and(|major| major < 2022),
        "Rocky Linux" | "AlmaLinux" | "openEuler" | "Fedora" => false,
        _ => return None,
    };
    Some(if yum { "yum update" } else { "dnf upgrade" })
}

/// The command that upgrades `package` to `version` in `ecosystem` (normalised).
pub fn fix_suggestion(ecosystem: &str, package: &str, version: &str) -> Option<String> {
    if let Some(command) = rpm_upgrade_command(ecosystem) {
        return Some(format!("{command} {package}-{version}"));
    }
    let base = ecosystem.split(':').next().unwrap_or_default();
    Some(match base {
        "Debian" | "Ubuntu" | "Echo" => {
            format!("apt-get install --only-upgrade {package}={version}")
        }
        "Alpine" | "Wolfi" | "Chainguard" | "MinimOS" => format!("apk add {package}={version}"),
        "SUSE" | "openSUSE" => format!("zypper install '{package}>={version}'"),
        // Azure Linux and CBL-Mariner ship tdnf, which installs a named version-release.
        "Azure Linux" | "Mariner" => format!("tdnf install {package}-{version}"),
        "PyPI" => format!("pip install '{package}>={version}'"),
        "crates.io" => format!("cargo update -p {package} --precise {version}"),
        // The standard library and the toolchain come with Go itself, not from `go get`.
        "Go" if matches!(package, "stdlib" | "toolchain") => {
            format!("upgrade Go to go{}", version.trim_start_matches('v'))
        }
        "Go" => format!("go get {package}@v{}", version.trim_start_matches('v')),
        "npm" => format!("npm install {package}@{version}"),
        "RubyGems" => format!("gem install {package} -v {version}"),
        "Packagist" => format!("composer require {package}:^{version}"),
        "NuGet" => format!("dotnet add package {package} --version {version}"),
        // OSV names a Maven package `groupId:artifactId`, as the versions plugin's
        // `includes` does; the plugin sets the dependency's version in the pom.
        "Maven" => format!(
            "mvn versions:use-dep-version -Dincludes={package} -DdepVersion={version} -DforceVersion=true"
        ),
        "Pub" => format!("dart pub add '{package}:^{version}'"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{
        fix_suggestion, index_ecosystem, matched_releases, normalize_ecosystem, normalize_name,
    };

    #[test]
    fn names() {
        assert_eq!(normalize_ecosystem("debian:bookworm"), "Debian:12");
        assert_eq!(normalize_ecosystem("Debian:12.4"), "Debian:12");
        assert_eq!(normalize_ecosystem("alpine:3.19.1"), "Alpine:v3.19");
        assert_eq!(normalize_ecosystem("golang"), "Go");
        assert_eq!(normalize_ecosystem("PYPI"), "PyPI");
        // The ecosystems of OSV schema 1.7.5, in any case, are spelled as OSV does.
        for osv in [
            "AlmaLinux",
            "Alpaquita",
            "Alpine",
            "Android",
            "Azure Linux",
            "BellSoft Hardened Containers",
            "Bioconductor",
            "Bitnami",
            "Chainguard",
            "CleanStart",
            "ConanCenter",
            "CRAN",
            "crates.io",
            "Debian",
            "Docker Hardened Images",
            "Echo",
            "FreeBSD",
            "GHC",
            "GitHub Actions",
            "Go",
            "Hackage",
            "Hex",
            "Julia",
            "Kubernetes",
            "Linux",
            "Mageia",
            "Maven",
            "MinimOS",
            "npm",
            "NuGet",
            "opam",
            "openEuler",
            "openSUSE",
            "OSS-Fuzz",
            "Packagist",
            "Photon OS",
            "Pub",
            "PyPI",
            "Red Hat",
            "Rocky Linux",
            "Root",
            "RubyGems",
            "SUSE",
            "SwiftURL",
            "TuxCare",
            "Ubuntu",
            "VSCode",
            "Wolfi",
        ] {
            assert_eq!(normalize_ecosystem(&osv.to_uppercase()), osv);
            assert_eq!(normalize_ecosystem(&osv.to_lowercase()), osv);
        }
        assert_eq!(normalize_ecosystem("freebsd:14.1"), "FreeBSD:14.1");
        // Root's second part is an ecosystem of its own.
        assert_eq!(normalize_ecosystem("root:alpine:3.18"), "Root:Alpine:v3.18");
        assert_eq!(normalize_ecosystem("Root:pypi"), "Root:PyPI");
        assert_eq!(
            normalize_ecosystem("Root:debian:bookworm"),
            "Root:Debian:12"
        );
        assert_eq!(index_ecosystem("cargo"), "crates.io");
        assert_eq!(index_ecosystem("Maven:https://repo"), "Maven");
        assert_eq!(index_ecosystem("Debian:11"), "Debian:11");
        // OSV's distribution suffixes, as os-release names the same releases.
        assert_eq!(normalize_ecosystem("Ubuntu:22.04:LTS"), "Ubuntu:22.04");
        assert_eq!(normalize_ecosystem("Ubuntu:23.10"), "Ubuntu:23.10");
        assert_eq!(
            normalize_ecosystem("Ubuntu:Pro:18.04:LTS"),
            "Ubuntu:Pro:18.04"
        );
        assert_eq!(
            normalize_ecosystem("Red Hat:enterprise_linux:9::appstream"),
            "Red Hat:9"
        );
        assert_eq!(
            normalize_ecosystem("Red Hat:enterprise_linux:8::baseos"),
            "Red Hat:8"
        );
        // Update streams: one release per stream and minor release, whatever the repository.
        for (osv, release) in [
            ("Red Hat:rhel_eus:9.2::baseos", "Red Hat:rhel_eus:9.2"),
            ("Red Hat:rhel_eus:9.2::appstream", "Red Hat:rhel_eus:9.2"),
            ("Red Hat:rhel_aus:8.4::appstream", "Red Hat:rhel_aus:8.4"),
            ("Red Hat:rhel_e4s:8.2", "Red Hat:rhel_e4s:8.2"),
            ("Red Hat:rhel_tus:8.6::appstream", "Red Hat:rhel_tus:8.6"),
            ("Red Hat:rhel_els:7", "Red Hat:rhel_els:7"),
            ("Red Hat:enterprise_linux_eus:10.0", "Red Hat:rhel_eus:10.0"),
            ("Red Hat:rhel_eus:9.2", "Red Hat:rhel_eus:9.2"),
            ("Red Hat:enterprise_linux:10.0", "Red Hat:10"),
            ("Red Hat:openshift:4.16::el9", "Red Hat:openshift:4.16::el9"),
        ] {
            assert_eq!(normalize_ecosystem(osv), release, "{osv}");
        }
        // SUSE's Micro products are releases of their own, as the inventory names them.
        for micro in [
            "SUSE:Linux Micro 6.0",
            "SUSE:Linux Enterprise Micro 5.5",
            "SUSE:Linux Enterprise Micro for Rancher 5.4",
            "openSUSE:Leap Micro 5.5",
        ] {
            assert_eq!(normalize_ecosystem(micro), micro);
        }
        assert_eq!(
            normalize_ecosystem("SUSE:Linux Enterprise Server 15 SP5"),
            "SUSE:15.5"
        );
        assert_eq!(
            normalize_ecosystem("SUSE:Linux Enterprise Module for Basesystem 15 SP5"),
            "SUSE:15.5"
        );
        assert_eq!(
            normalize_ecosystem("SUSE:Linux Enterprise Server 12"),
            "SUSE:12"
        );
        assert_eq!(
            normalize_ecosystem("SUSE:Linux Enterprise Micro 5.4"),
            "SUSE:Linux Enterprise Micro 5.4"
        );
        // LTSS streams, in OSV's and CSAF's spellings; other suffixes stay apart.
        for (osv, release) in [
            ("SUSE:Linux Enterprise Server 15 SP4-LTSS", "SUSE:15.4-LTSS"),
            ("SUSE:Linux Enterprise Server 15-LTSS", "SUSE:15-LTSS"),
            ("SUSE:Linux Enterprise Server 11 SP1 LTSS", "SUSE:11.1-LTSS"),
            ("SUSE:15.4-LTSS", "SUSE:15.4-LTSS"),
            (
                "SUSE:Linux Enterprise Server 12 SP5-LTSS-EXTENDED-SECURITY",
                "SUSE:Linux Enterprise Server 12 SP5-LTSS-EXTENDED-SECURITY",
            ),
            (
                "SUSE:Linux Enterprise Server 15 SP4-ESPOS",
                "SUSE:15.4-ESPOS",
            ),
            (
                "SUSE:Linux Enterprise Server 15 SP4 ESPOS",
                "SUSE:15.4-ESPOS",
            ),
            ("SUSE:Linux Micro 6.0-LTSS", "SUSE:Linux Micro 6.0-LTSS"),
        ] {
            assert_eq!(normalize_ecosystem(osv), release, "{osv}");
        }
        assert_eq!(
            matched_releases("SUSE:15.4-LTSS"),
            ["SUSE:15.4-LTSS", "SUSE:15.4"]
        );
        assert_eq!(matched_releases("SUSE:15.4"), ["SUSE:15.4"]);
        assert_eq!(matched_releases("Debian:12"), ["Debian:12"]);
        assert_eq!(
            matched_releases("SUSE:Linux Micro 6.0-LTSS"),
            ["SUSE:Linux Micro 6.0-LTSS"]
        );
        assert_eq!(normalize_ecosystem("openSUSE:Leap 15.5"), "openSUSE:15.5");
        assert_eq!(
            normalize_ecosystem("openSUSE:Tumbleweed"),
            "openSUSE:Tumbleweed"
        );
        assert_eq!(normalize_name("PyPI", "Jinja2__x.y"), "jinja2-x-y");
        assert_eq!(
            fix_suggestion("Go", "golang.org/x/net", "0.7.0").as_deref(),
            Some("go get golang.org/x/net@v0.7.0")
        );
        assert_eq!(
            fix_suggestion("Go", "stdlib", "1.20.3").as_deref(),
            Some("upgrade Go to go1.20.3")
        );
        assert_eq!(fix_suggestion("Hex", "x", "1"), None);
        // Every language ecosystem a cataloger reads has its package manager's command.
        for (ecosystem, package, version, command) in [
            ("PyPI", "jinja2", "2.10.1", "pip install 'jinja2>=2.10.1'"),
            ("npm", "lodash", "4.17.21", "npm install lodash@4.17.21"),
            (
                "crates.io",
                "smallvec",
                "0.6.10",
                "cargo update -p smallvec --precise 0.6.10",
            ),
            ("RubyGems", "rack", "2.2.6", "gem install rack -v 2.2.6"),
            (
                "Packagist",
                "guzzlehttp/guzzle",
                "7.4.5",
                "composer require guzzlehttp/guzzle:^7.4.5",
            ),
            (
                "NuGet",
                "Newtonsoft.Json",
                "13.0.1",
                "dotnet add package Newtonsoft.Json --version 13.0.1",
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.17.1",
                "mvn versions:use-dep-version -Dincludes=org.apache.logging.log4j:log4j-core -DdepVersion=2.17.1 -DforceVersion=true",
            ),
            ("Pub", "http", "0.13.3", "dart pub add 'http:^0.13.3'"),
            (
                "Debian:12",
                "libssl3",
                "3.0.11-1~deb12u2",
                "apt-get install --only-upgrade libssl3=3.0.11-1~deb12u2",
            ),
            (
                "Alpine:v3.19",
                "busybox",
                "1.36.1-r16",
                "apk add busybox=1.36.1-r16",
            ),
        ] {
            assert_eq!(
                fix_suggestion(ecosystem, package, version).as_deref(),
                Some(command),
                "{ecosystem}"
            );
        }
        assert_eq!(
            fix_suggestion("MinimOS", "openssl", "3.3.2-r1").as_deref(),
            Some("apk add openssl=3.3.2-r1")
        );
        assert_eq!(normalize_ecosystem("mageia:9"), "Mageia:9");
        assert_eq!(
            normalize_ecosystem("openEuler:22.03-LTS-SP3"),
            "openEuler:22.03-LTS-SP3"
        );
        assert_eq!(
            index_ecosystem("openEuler:22.03-LTS-SP3"),
            "openEuler:22.03-LTS-SP3"
        );
        for (ecosystem, command) in [
            (
                "openEuler:22.03-LTS-SP3",
                "dnf upgrade booth-1.0-7.oe2203sp3",
            ),
            ("Amazon Linux:2023", "dnf upgrade booth-1.0-7.oe2203sp3"),
            ("Amazon Linux:2", "yum update booth-1.0-7.oe2203sp3"),
            ("Amazon Linux:2018.03", "yum update booth-1.0-7.oe2203sp3"),
            ("Oracle Linux:7", "yum update booth-1.0-7.oe2203sp3"),
            ("Oracle Linux:9", "dnf upgrade booth-1.0-7.oe2203sp3"),
            ("Red Hat:rhel_els:7", "yum update booth-1.0-7.oe2203sp3"),
            ("Red Hat:rhel_eus:9.2", "dnf upgrade booth-1.0-7.oe2203sp3"),
            ("Fedora:40", "dnf upgrade booth-1.0-7.oe2203sp3"),
            ("Azure Linux:3.0", "tdnf install booth-1.0-7.oe2203sp3"),
            ("Mariner:2.0", "tdnf install booth-1.0-7.oe2203sp3"),
        ] {
            assert_eq!(
                fix_suggestion(ecosystem, "booth", "1.0-7.oe2203sp3").as_deref(),
                Some(command),
                "{ecosystem}"
            );
        }
        assert_eq!(
            fix_suggestion("Rocky Linux:9", "openssl-libs", "1:3.0.7-25.el9_3").as_deref(),
            Some("dnf upgrade openssl-libs-1:3.0.7-25.el9_3")
        );
    }

    /// SLES for SAP Applications and SLE HPC as SUSE's OSV records and CSAF documents name
    /// them: releases of their own, apart from plain SLES, matched with the service pack
    /// they are built from.
    #[test]
    fn sap_and_hpc_products_are_releases_of_their_own() {
        for (osv, release) in [
            (
                "SUSE:Linux Enterprise Server for SAP Applications 15 SP4",
                "SUSE:15.4-SAP",
            ),
            (
                "SUSE:Linux Enterprise Server for SAP Applications 12 SP5",
                "SUSE:12.5-SAP",
            ),
            (
                "SUSE:Linux Enterprise Server for SAP applications 16.0",
                "SUSE:16.0-SAP",
            ),
            (
                "SUSE:Linux Enterprise Server for SAP Applications 15",
                "SUSE:15-SAP",
            ),
            (
                "SUSE:Linux Enterprise Server for SAP Applications 12 SP5-LTSS",
                "SUSE:12.5-SAP-LTSS",
            ),
            (
                "SUSE:Linux Enterprise Server for SAP Applications 15 SP4 LTSS",
                "SUSE:15.4-SAP-LTSS",
            ),
            (
                "SUSE:Linux Enterprise High Performance Computing 15 SP4",
                "SUSE:15.4-HPC",
            ),
            (
                "SUSE:Linux Enterprise High Performance Computing 15 SP4-LTSS",
                "SUSE:15.4-HPC-LTSS",
            ),
            (
                "SUSE:Linux Enterprise High Performance Computing 15 SP3-ESPOS",
                "SUSE:15.3-HPC-ESPOS",
            ),
            (
                "SUSE:Linux Enterprise High Performance Computing 15-LTSS",
                "SUSE:15-HPC-LTSS",
            ),
            // Modules, extensions and SLES itself stay one release per service pack.
            (
                "SUSE:Linux Enterprise Module for SAP Applications 15 SP4",
                "SUSE:15.4",
            ),
            ("SUSE:Linux Enterprise Module for HPC 15 SP4", "SUSE:15.4"),
            (
                "SUSE:Linux Enterprise High Availability Extension 15 SP4",
                "SUSE:15.4",
            ),
            ("SUSE:Linux Enterprise Server 16.0", "SUSE:16.0"),
            // Other product lines with fixes of their own are matched by no SLES system.
            (
                "SUSE:Linux Enterprise Server Business Critical Linux 15 SP1",
                "SUSE:Linux Enterprise Server Business Critical Linux 15 SP1",
            ),
            (
                "SUSE:Linux Enterprise Server 12 SP2-BCL",
                "SUSE:Linux Enterprise Server 12 SP2-BCL",
            ),
            (
                "SUSE:Linux Enterprise Server LTSS Extended Security 12 SP5",
                "SUSE:Linux Enterprise Server LTSS Extended Security 12 SP5",
            ),
            ("SUSE:Linux Enterprise Server LTSS 12 SP2", "SUSE:12.2-LTSS"),
            // The product names of SUSE-SU-2025:4530-1 (the kernel of 15 SP3): the streams
            // named before the version, Live Patching's `15-SP3`.
            (
                "SUSE:Linux Enterprise High Performance Computing LTSS 15 SP3",
                "SUSE:15.3-HPC-LTSS",
            ),
            ("SUSE:Linux Enterprise Server 15 SP3 LTSS", "SUSE:15.3-LTSS"),
            ("SUSE:Linux Enterprise Server LTSS 15 SP4", "SUSE:15.4-LTSS"),
            (
                "SUSE:Linux Enterprise High Performance Computing ESPOS 15 SP4",
                "SUSE:15.4-HPC-ESPOS",
            ),
            ("SUSE:Linux Enterprise Live Patching 15-SP3", "SUSE:15.3"),
            (
                "SUSE:Linux Enterprise Server 15 SP3 Business Critical Linux",
                "SUSE:Linux Enterprise Server 15 SP3 Business Critical Linux",
            ),
            (
                "SUSE:Linux Enterprise Server for SAP Applications 15 SP3",
                "SUSE:15.3-SAP",
            ),
            // The inventory's names are already normalised.
            ("SUSE:15.4-SAP", "SUSE:15.4-SAP"),
            ("SUSE:15.4-HPC-LTSS", "SUSE:15.4-HPC-LTSS"),
        ] {
            assert_eq!(normalize_ecosystem(osv), release, "{osv}");
        }
        assert_eq!(
            matched_releases("SUSE:15.4-SAP"),
            ["SUSE:15.4-SAP", "SUSE:15.4"]
        );
        assert_eq!(
            matched_releases("SUSE:15.4-HPC"),
            ["SUSE:15.4-HPC", "SUSE:15.4"]
        );
        assert_eq!(
            matched_releases("SUSE:15.4-HPC-LTSS"),
            ["SUSE:15.4-HPC-LTSS", "SUSE:15.4-HPC", "SUSE:15.4"]
        );
        assert_eq!(
            matched_releases("SUSE:15-HPC-ESPOS"),
            ["SUSE:15-HPC-ESPOS", "SUSE:15-HPC", "SUSE:15"]
        );
        assert_eq!(
            matched_releases("SUSE:12.5-SAP-LTSS"),
            ["SUSE:12.5-SAP-LTSS", "SUSE:12.5-SAP", "SUSE:12.5"]
        );
        assert_eq!(
            matched_releases("SUSE:15.4-ESPOS"),
            ["SUSE:15.4-ESPOS", "SUSE:15.4"]
        );
    }
}
