//! Exact version comparison for the package ecosystems a vulnerability scanner meets.
//!
//! Each [`Scheme`] reproduces one reference implementation, read from that project's code:
//!
//! | scheme | reference | ecosystems |
//! |---|---|---|
//! | [`Scheme::Dpkg`] | dpkg `verrevcmp` | Debian, Ubuntu, Echo |
//! | [`Scheme::Apk`] | apk-tools `version.c` | Alpine, Wolfi, Chainguard |
//! | [`Scheme::Rpm`] | rpm `rpmvercmp` | Red Hat, Rocky, AlmaLinux, SUSE, Photon, Mariner, Mageia, openEuler |
//! | [`Scheme::Pep440`] | pypa/packaging `Version` | PyPI |
//! | [`Scheme::Semver`] | node-semver (loose) | npm, Hex, SwiftURL, Bitnami, GitHub Actions, VSCode |
//! | [`Scheme::Cargo`] | the `semver` crate | crates.io |
//! | [`Scheme::Go`] | golang.org/x/mod/semver | Go |
//! | [`Scheme::Pub`] | Dart pub_semver | Pub |
//! | [`Scheme::Maven`] | Maven `ComparableVersion` | Maven |
//! | [`Scheme::RubyGems`] | `Gem::Version` | RubyGems |
//! | [`Scheme::NuGet`] | NuGet.Versioning | NuGet |
//! | [`Scheme::Composer`] | composer/semver + PHP `version_compare` | Packagist |
//! | [`Scheme::Pvp`] | Cabal `Version` | Hackage, GHC |
//! | [`Scheme::Cran`] | R `package_version` | CRAN, Bioconductor |
//! | [`Scheme::FreeBsd`] | pkg(8) `pkg_version_cmp` | FreeBSD |
//!
//! [`compare`] parses two strings and orders them. A matcher that compares one installed
//! version against many ranges should parse once with [`Version::parse`] (or a scheme's own
//! type such as [`DpkgVersion`]) and compare the parsed values, which allocates nothing.
//!
//! Design decision: the parsed types implement `Eq` and `Ord` from the scheme's ordering, not
//! from their text, so `1.0` and `1.00` are equal wherever the scheme says so; that keeps
//! sorting, deduplication and binary search consistent with [`compare`]. Parsing never
//! panics: every string either parses or yields an [`Error`] naming the scheme and the
//! version.
//!
//! ```
//! use std::cmp::Ordering;
//!
//! use palisade_version::{Scheme, Version, compare};
//!
//! let scheme: Scheme = "Debian:12".parse()?;
//! assert_eq!(compare(scheme, "1.2~rc1-1", "1.2-1")?, Ordering::Less);
//!
//! let installed = Version::parse(Scheme::Pep440, "2.0.0rc1")?;
//! let fixed = Version::parse(Scheme::Pep440, "2.0")?;
//! assert!(installed < fixed);
//!
//! assert!(compare(Scheme::Semver, "1.2", "1.2.3").is_err());
//! # Ok::<(), palisade_version::Error>(())
//! ```
#![deny(missing_docs)]

mod apk;
mod composer;
mod dpkg;
mod error;
mod freebsd;
mod maven;
mod nuget;
mod numeric;
mod pep440;
mod rpm;
mod rubygems;
mod scheme;
mod semver;
mod util;

use std::cmp::Ordering;
use std::fmt;

pub use crate::apk::ApkVersion;
pub use crate::composer::ComposerVersion;
pub use crate::dpkg::DpkgVersion;
pub use crate::error::{Error, ErrorKind};
pub use crate::freebsd::FreeBsdVersion;
pub use crate::maven::MavenVersion;
pub use crate::nuget::NugetVersion;
pub use crate::numeric::{CranVersion, PvpVersion};
pub use crate::pep440::Pep440Version;
pub use crate::rpm::{RpmVersion, module_stream, parse_module_stream, rpmvercmp};
pub use crate::rubygems::RubyGemsVersion;
pub use crate::scheme::Scheme;
pub use crate::semver::{CargoVersion, GoVersion, PubVersion, SemverVersion};

/// Compares two version strings under `scheme`.
///
/// Fails when either string is not a valid version in that scheme.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, Error> {
    fn both<T: Ord>(
        parse: fn(&str) -> Result<T, Error>,
        a: &str,
        b: &str,
    ) -> Result<Ordering, Error> {
        Ok(parse(a)?.cmp(&parse(b)?))
    }
    match scheme {
        Scheme::Dpkg => both(DpkgVersion::parse, a, b),
        Scheme::Apk => both(ApkVersion::parse, a, b),
        Scheme::Rpm => both(RpmVersion::parse, a, b),
        Scheme::Pep440 => both(Pep440Version::parse, a, b),
        Scheme::Semver => both(SemverVersion::parse, a, b),
        Scheme::Cargo => both(CargoVersion::parse, a, b),
        Scheme::Go => both(GoVersion::parse, a, b),
        Scheme::Pub => both(PubVersion::parse, a, b),
        Scheme::Maven => both(MavenVersion::parse, a, b),
        Scheme::RubyGems => both(RubyGemsVersion::parse, a, b),
        Scheme::NuGet => both(NugetVersion::parse, a, b),
        Scheme::Composer => both(ComposerVersion::parse, a, b),
        Scheme::Pvp => both(PvpVersion::parse, a, b),
        Scheme::Cran => both(CranVersion::parse, a, b),
        Scheme::FreeBsd => both(FreeBsdVersion::parse, a, b),
    }
}

/// A version parsed under some scheme.
///
/// Versions of the same scheme are totally ordered; versions of different schemes are not
/// comparable (`partial_cmp` returns `None` and `==` is false).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Version {
    /// A Debian version.
    Dpkg(DpkgVersion),
    /// An Alpine version.
    Apk(ApkVersion),
    /// An RPM version.
    Rpm(RpmVersion),
    /// A PEP 440 version.
    Pep440(Pep440Version),
    /// A node-semver version.
    Semver(SemverVersion),
    /// A Cargo version.
    Cargo(CargoVersion),
    /// A Go module version.
    Go(GoVersion),
    /// A Dart package version.
    Pub(PubVersion),
    /// A Maven version.
    Maven(MavenVersion),
    /// A RubyGems version.
    RubyGems(RubyGemsVersion),
    /// A NuGet version.
    NuGet(NugetVersion),
    /// A Composer version.
    Composer(ComposerVersion),
    /// A Haskell package version.
    Pvp(PvpVersion),
    /// An R package version.
    Cran(CranVersion),
    /// A FreeBSD package version.
    FreeBsd(FreeBsdVersion),
}

impl Version {
    /// Parses `text` under `scheme`.
    pub fn parse(scheme: Scheme, text: &str) -> Result<Version, Error> {
        Ok(match scheme {
            Scheme::Dpkg => Version::Dpkg(DpkgVersion::parse(text)?),
            Scheme::Apk => Version::Apk(ApkVersion::parse(text)?),
            Scheme::Rpm => Version::Rpm(RpmVersion::parse(text)?),
            Scheme::Pep440 => Version::Pep440(Pep440Version::parse(text)?),
            Scheme::Semver => Version::Semver(SemverVersion::parse(text)?),
            Scheme::Cargo => Version::Cargo(CargoVersion::parse(text)?),
            Scheme::Go => Version::Go(GoVersion::parse(text)?),
            Scheme::Pub => Version::Pub(PubVersion::parse(text)?),
            Scheme::Maven => Version::Maven(MavenVersion::parse(text)?),
            Scheme::RubyGems => Version::RubyGems(RubyGemsVersion::parse(text)?),
            Scheme::NuGet => Version::NuGet(NugetVersion::parse(text)?),
            Scheme::Composer => Version::Composer(ComposerVersion::parse(text)?),
            Scheme::Pvp => Version::Pvp(PvpVersion::parse(text)?),
            Scheme::Cran => Version::Cran(CranVersion::parse(text)?),
            Scheme::FreeBsd => Version::FreeBsd(FreeBsdVersion::parse(text)?),
        })
    }

    /// The scheme the version was parsed under.
    pub fn scheme(&self) -> Scheme {
        match self {
            Version::Dpkg(_) => Scheme::Dpkg,
            Version::Apk(_) => Scheme::Apk,
            Version::Rpm(_) => Scheme::Rpm,
            Version::Pep440(_) => Scheme::Pep440,
            Version::Semver(_) => Scheme::Semver,
            Version::Cargo(_) => Scheme::Cargo,
            Version::Go(_) => Scheme::Go,
            Version::Pub(_) => Scheme::Pub,
            Version::Maven(_) => Scheme::Maven,
            Version::RubyGems(_) => Scheme::RubyGems,
            Version::NuGet(_) => Scheme::NuGet,
            Version::Composer(_) => Scheme::Composer,
            Version::Pvp(_) => Scheme::Pvp,
            Version::Cran(_) => Scheme::Cran,
            Version::FreeBsd(_) => Scheme::FreeBsd,
        }
    }

    /// Orders two versions; `None` when their schemes differ.
    fn try_compare(&self, other: &Version) -> Option<Ordering> {
        Some(match (self, other) {
            (Version::Dpkg(a), Version::Dpkg(b)) => a.cmp(b),
            (Version::Apk(a), Version::Apk(b)) => a.cmp(b),
            (Version::Rpm(a), Version::Rpm(b)) => a.cmp(b),
            (Version::Pep440(a), Version::Pep440(b)) => a.cmp(b),
            (Version::Semver(a), Version::Semver(b)) => a.cmp(b),
            (Version::Cargo(a), Version::Cargo(b)) => a.cmp(b),
            (Version::Go(a), Version::Go(b)) => a.cmp(b),
            (Version::Pub(a), Version::Pub(b)) => a.cmp(b),
            (Version::Maven(a), Version::Maven(b)) => a.cmp(b),
            (Version::RubyGems(a), Version::RubyGems(b)) => a.cmp(b),
            (Version::NuGet(a), Version::NuGet(b)) => a.cmp(b),
            (Version::Composer(a), Version::Composer(b)) => a.cmp(b),
            (Version::Pvp(a), Version::Pvp(b)) => a.cmp(b),
            (Version::Cran(a), Version::Cran(b)) => a.cmp(b),
            (Version::FreeBsd(a), Version::FreeBsd(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.try_compare(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        self.try_compare(other)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Dpkg(version) => version.fmt(f),
            Version::Apk(version) => version.fmt(f),
            Version::Rpm(version) => version.fmt(f),
            Version::Pep440(version) => version.fmt(f),
            Version::Semver(version) => version.fmt(f),
            Version::Cargo(version) => version.fmt(f),
            Version::Go(version) => version.fmt(f),
            Version::Pub(version) => version.fmt(f),
            Version::Maven(version) => version.fmt(f),
            Version::RubyGems(version) => version.fmt(f),
            Version::NuGet(version) => version.fmt(f),
            Version::Composer(version) => version.fmt(f),
            Version::Pvp(version) => version.fmt(f),
            Version::Cran(version) => version.fmt(f),
            Version::FreeBsd(version) => version.fmt(f),
        }
    }
}
