//! [`Scheme`]: which comparison rules apply, and how names map onto them.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A version comparison scheme: one set of parsing and ordering rules.
///
/// Several package ecosystems share a scheme (Debian and Ubuntu both use [`Scheme::Dpkg`]).
/// [`Scheme::from_str`] accepts the short names below and the OSV ecosystem names, including
/// suffixed forms such as `Debian:12` or `Alpine:v3.20`, whose suffix does not change the
/// rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    /// Debian policy versions, as dpkg compares them (`dpkg`; Debian, Ubuntu).
    Dpkg,
    /// Alpine package versions, as apk-tools compares them (`apk`; Alpine, Wolfi, Chainguard).
    Apk,
    /// RPM `epoch:version-release`, compared with rpmvercmp (`rpm`; Red Hat, SUSE, ...).
    Rpm,
    /// Python versions per PEP 440, as pypa/packaging compares them (`pep440`; PyPI).
    Pep440,
    /// Semantic versions as node-semver parses them, loose mode (`semver`; npm, Hex, SwiftURL).
    Semver,
    /// Semantic versions as Cargo parses them, strictly (`cargo`; crates.io).
    Cargo,
    /// Go module versions: `v`-prefixed semver with `+incompatible` (`go`).
    Go,
    /// Dart package versions as pub_semver orders them, build metadata included (`pub`).
    Pub,
    /// Maven `ComparableVersion` (`maven`).
    Maven,
    /// RubyGems `Gem::Version` (`rubygems`).
    RubyGems,
    /// NuGet versions: SemVer 2 with legacy four-part versions (`nuget`).
    NuGet,
    /// Composer versions as composer/semver normalises them (`composer`; Packagist).
    Composer,
    /// Haskell package versions per the PVP, as Cabal orders them (`pvp`; Hackage, GHC).
    Pvp,
    /// R package versions, as `package_version` orders them (`cran`; CRAN, Bioconductor).
    Cran,
    /// FreeBSD package versions, as pkg(8) orders them (`freebsd`; FreeBSD).
    FreeBsd,
}

/// Every scheme, in declaration order.
const ALL: [Scheme; 15] = [
    Scheme::Dpkg,
    Scheme::Apk,
    Scheme::Rpm,
    Scheme::Pep440,
    Scheme::Semver,
    Scheme::Cargo,
    Scheme::Go,
    Scheme::Pub,
    Scheme::Maven,
    Scheme::RubyGems,
    Scheme::NuGet,
    Scheme::Composer,
    Scheme::Pvp,
    Scheme::Cran,
    Scheme::FreeBsd,
];

/// Names accepted besides the short ones, with the scheme each selects.
///
/// These are the OSV ecosystem names, spelled as OSV does, plus a few common aliases; all are
/// compared case-insensitively.
const ALIASES: &[(&str, Scheme)] = &[
    ("Debian", Scheme::Dpkg),
    ("Ubuntu", Scheme::Dpkg),
    ("deb", Scheme::Dpkg),
    // Echo is a Debian derivative and its OSV records carry Debian versions.
    ("Echo", Scheme::Dpkg),
    ("Alpine", Scheme::Apk),
    ("Wolfi", Scheme::Apk),
    ("Chainguard", Scheme::Apk),
    ("MinimOS", Scheme::Apk),
    ("Alpaquita", Scheme::Apk),
    ("BellSoft Hardened Containers", Scheme::Apk),
    ("postmarketOS", Scheme::Apk),
    ("Red Hat", Scheme::Rpm),
    ("RedHat", Scheme::Rpm),
    ("Rocky Linux", Scheme::Rpm),
    ("AlmaLinux", Scheme::Rpm),
    ("SUSE", Scheme::Rpm),
    ("openSUSE", Scheme::Rpm),
    ("Photon OS", Scheme::Rpm),
    ("Mariner", Scheme::Rpm),
    ("Azure Linux", Scheme::Rpm),
    ("openEuler", Scheme::Rpm),
    ("Mageia", Scheme::Rpm),
    ("Fedora", Scheme::Rpm),
    ("CentOS", Scheme::Rpm),
    ("Oracle Linux", Scheme::Rpm),
    ("Amazon Linux", Scheme::Rpm),
    ("PyPI", Scheme::Pep440),
    ("Python", Scheme::Pep440),
    ("npm", Scheme::Semver),
    ("Hex", Scheme::Semver),
    ("SwiftURL", Scheme::Semver),
    ("Bitnami", Scheme::Semver),
    ("GitHub Actions", Scheme::Semver),
    ("VSCode", Scheme::Semver),
    ("crates.io", Scheme::Cargo),
    ("golang", Scheme::Go),
    ("gem", Scheme::RubyGems),
    ("Packagist", Scheme::Composer),
    ("Hackage", Scheme::Pvp),
    ("GHC", Scheme::Pvp),
    ("CRAN", Scheme::Cran),
    ("Bioconductor", Scheme::Cran),
    ("FreeBSD", Scheme::FreeBsd),
];

/// OSV ecosystems whose versions are not ordered here: OSV defines no order for the first
/// ones (git tags and release names), and no scheme here reproduces the others' order exactly
/// (Conan's and Julia's versions only look like SemVer: `1.1.1t`, `1.2`; opam runs Debian's
/// algorithm with its own parsing). Records of these match by their `versions` lists only.
const UNORDERED: &[&str] = &[
    "GIT",
    "Android",
    "Linux",
    "OSS-Fuzz",
    "ConanCenter",
    "Julia",
    "opam",
    "Kubernetes",
    "CleanStart",
    "Docker Hardened Images",
    "TuxCare",
];

/// The OSV ecosystem that names its sub-ecosystem in its second part (`Root:Alpine:3.18`,
/// `Root:PyPI`): Root's patched packages follow the ordering of the ecosystem they patch.
const HIERARCHICAL: &str = "Root";

impl Scheme {
    /// The short name, which [`Scheme::from_str`] accepts and [`fmt::Display`] prints.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Apk => "apk",
            Scheme::Rpm => "rpm",
            Scheme::Pep440 => "pep440",
            Scheme::Semver => "semver",
            Scheme::Cargo => "cargo",
            Scheme::Go => "go",
            Scheme::Pub => "pub",
            Scheme::Maven => "maven",
            Scheme::RubyGems => "rubygems",
            Scheme::NuGet => "nuget",
            Scheme::Composer => "composer",
            Scheme::Pvp => "pvp",
            Scheme::Cran => "cran",
            Scheme::FreeBsd => "freebsd",
        }
    }

    /// Every scheme.
    pub fn all() -> &'static [Scheme] {
        &ALL
    }

    /// Every name [`Scheme::from_str`] accepts (case-insensitively), short names first.
    pub fn accepted_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = ALL.iter().map(|scheme| scheme.name()).collect();
        names.extend(ALIASES.iter().map(|(alias, _)| *alias));
        names
    }

    fn from_name(name: &str) -> Option<Scheme> {
        ALL.iter()
            .copied()
            .find(|scheme| scheme.name().eq_ignore_ascii_case(name))
            .or_else(|| {
                ALIASES
                    .iter()
                    .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
                    .map(|(_, scheme)| *scheme)
            })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = Error;

    /// Parses a short name (`dpkg`) or an OSV ecosystem name (`Debian`, `Debian:12`,
    /// `Root:Alpine:3.18`). An OSV ecosystem whose versions are not ordered here (`Android`,
    /// `ConanCenter`, ...) is an error of its own kind.
    fn from_str(name: &str) -> Result<Scheme, Error> {
        // OSV suffixes a release after a colon (`Debian:12`, `Ubuntu:Pro:22.04:LTS`); the
        // suffix picks the distribution release, never the comparison rules.
        let mut parts = name.split(':').map(str::trim);
        let mut ecosystem = parts.next().unwrap_or_default();
        if ecosystem.eq_ignore_ascii_case(HIERARCHICAL) {
            ecosystem = parts.next().unwrap_or_default();
        }
        if let Some(scheme) = Scheme::from_name(ecosystem) {
            return Ok(scheme);
        }
        match UNORDERED
            .iter()
            .find(|unordered| unordered.eq_ignore_ascii_case(ecosystem))
        {
            Some(unordered) => Err(Error::unordered_ecosystem(unordered)),
            None => Err(Error::unknown_scheme(name)),
        }
    }
}
