//! Catalogers: the package databases and metadata files of every supported ecosystem, read
//! during one walk of a [`Target`], and the rules that turn what they found into
//! [`Package`]s (visibility in the flattened image, distribution release, file ownership).

mod apk;
mod dnf_module;
mod dotnet;
mod dpkg;
mod elf;
mod fields;
mod golang;
mod ini;
mod java;
mod npm;
mod os_release;
mod php;
mod purl;
mod python;
mod red_hat;
mod rpm;
mod rpm_bdb;
mod rpm_ndb;
mod ruby;
mod rust;
mod suse;

use std::collections::HashSet;
use std::io::Read;

use serde::Serialize;

use crate::cancel::Cancel;
use crate::error::{Error, Warning};
use crate::limits::Limits;
use crate::path::{file_name, parent};
use crate::target::Target;
use crate::walk::FileVisit;

pub use crate::catalog::os_release::Distro;

/// Everything installed in a target.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// The distribution, from `etc/os-release` (or `usr/lib/os-release`; without either,
    /// `etc/redhat-release` and its kin), with Red Hat's update stream from the content
    /// manifests and enabled repositories.
    pub distro: Option<Distro>,
    /// The packages, sorted by ecosystem, name, version and location.
    pub packages: Vec<Package>,
    /// Entries skipped and package databases read only partly, with the reason.
    pub warnings: Vec<Warning>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Package {
    /// The OSV ecosystem the vulnerability database indexes it under: `Debian:12`,
    /// `Alpine:v3.19`, `PyPI`, `npm`, `crates.io`, `Go`, `Maven`, `RubyGems`, `Packagist`,
    /// `NuGet`, ...
    pub ecosystem: String,
    /// The name as the ecosystem spells it (`group:artifact` for Maven, `@scope/name` for
    /// npm, the module path for Go, `stdlib` for the Go standard library).
    pub name: String,
    /// The installed version as recorded (with epoch and release for distributions).
    pub version: String,
    /// The source package, for distribution packages built from a differently named source.
    pub source_name: Option<String>,
    /// The source package's version, for distribution packages whose source version differs
    /// from [`Package::version`] (a dpkg `Source: name (version)`, a binNMU `+bN`, an rpm
    /// `SOURCERPM` with its own version); `None` when they are the same.
    pub source_version: Option<String>,
    /// The dnf module streams (`container-tools:rhel8`) an rpm may be of: its modularity
    /// label's stream, else, for a module build (`.module+el8` in its release), the
    /// streams `etc/dnf/modules.d` enables (sorted); empty for other packages, for rpms
    /// built outside any module and where neither is known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub module_streams: Vec<String>,
    /// The package URL, with the `distro` qualifier for distribution packages.
    pub purl: String,
    /// Which cataloger found it.
    pub cataloger: Cataloger,
    /// Where it was found.
    pub location: Location,
}

/// Where a package was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file (package database, metadata file, lock file or binary), `/`-rooted.
    pub path: String,
    /// The layer's position in the image; `None` for root filesystems.
    pub layer_index: Option<usize>,
    /// The layer's digest (diff id); `None` for root filesystems.
    pub layer_digest: Option<String>,
}

/// The catalogers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cataloger {
    /// `var/lib/dpkg/status` and distroless `var/lib/dpkg/status.d/*`.
    Dpkg,
    /// `lib/apk/db/installed`.
    Apk,
    /// The rpm database: sqlite (`rpmdb.sqlite`), Berkeley DB (`Packages`) or NDB
    /// (`Packages.db`).
    Rpm,
    /// Python `*.dist-info/METADATA` and `*.egg-info/PKG-INFO`.
    Python,
    /// `node_modules/*/package.json`.
    NpmPackage,
    /// `package-lock.json` versions 1 to 3.
    NpmLock,
    /// `Cargo.lock`.
    CargoLock,
    /// Rust executables built with cargo-auditable (the `.dep-v0` section).
    CargoAuditable,
    /// Go executables' build information (modules and the Go version).
    GoBinary,
    /// Java archives: `pom.properties`, `MANIFEST.MF`, nested jars.
    Java,
    /// Ruby `specifications/*.gemspec`.
    Gem,
    /// PHP `vendor/composer/installed.json`.
    Composer,
    /// .NET `*.deps.json`.
    DotNet,
}

impl Cataloger {
    /// True for catalogers that read an operating system's package database.
    pub fn is_os(self) -> bool {
        matches!(self, Cataloger::Dpkg | Cataloger::Apk | Cataloger::Rpm)
    }

    /// The OSV ecosystem of a language cataloger's packages (`PyPI`, `Go`, ...); `None` for
    /// the OS catalogers, whose ecosystem is the distribution's release.
    pub fn language_ecosystem(self) -> Option<&'static str> {
        Some(match self {
            Cataloger::Dpkg | Cataloger::Apk | Cataloger::Rpm => return None,
            Cataloger::Python => "PyPI",
            Cataloger::NpmPackage | Cataloger::NpmLock => "npm",
            Cataloger::CargoLock | Cataloger::CargoAuditable => "crates.io",
            Cataloger::GoBinary => "Go",
            Cataloger::Java => "Maven",
            Cataloger::Gem => "RubyGems",
            Cataloger::Composer => "Packagist",
            Cataloger::DotNet => "NuGet",
        })
    }

    /// True for catalogers whose packages are compiled into a binary: an OS package owning
    /// the binary does not list them, so they are reported even for owned files.
    fn is_embedded(self) -> bool {
        matches!(self, Cataloger::GoBinary | Cataloger::CargoAuditable)
    }
}

/// A package as a cataloger read it, before the distribution and location are known.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) source_name: Option<String>,
    /// The source version when it differs from `version`.
    pub(crate) source_version: Option<String>,
    /// The architecture of a distribution package, the platform of a gem (`java`,
    /// `x86_64-linux`).
    pub(crate) arch: Option<String>,
    pub(crate) epoch: Option<String>,
    /// An rpm's modularity label (`container-tools:rhel8:8090020231201131346:d7b6f4b7`).
    pub(crate) modularity_label: Option<String>,
}

/// What one file yielded.
#[derive(Debug, Default)]
pub(crate) struct Extracted {
    pub(crate) packages: Vec<(Cataloger, Found)>,
    /// Files an OS package database says its packages own (`/`-less paths).
    pub(crate) owned_files: Vec<String>,
    pub(crate) distro: Option<Distro>,
    /// Repositories the packages were installed from (content manifests, `.repo` files).
    pub(crate) repositories: Option<red_hat::Repositories>,
    /// An installed SUSE product (`etc/products.d/*.prod`).
    pub(crate) product: Option<suse::Product>,
    /// The module streams an `etc/dnf/modules.d/*.module` file enables.
    pub(crate) module_streams: Vec<String>,
}

impl Extracted {
    pub(crate) fn packages(cataloger: Cataloger, packages: Vec<Found>) -> Extracted {
        Extracted {
            packages: packages
                .into_iter()
                .map(|found| (cataloger, found))
                .collect(),
            ..Extracted::default()
        }
    }
}

/// Which reader a file needs, decided from its path (and execute bit) alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OsRelease,
    /// `etc/redhat-release`, the same file of CentOS, Rocky and AlmaLinux, and
    /// `etc/openEuler-release`.
    ReleaseFile,
    ContentManifest,
    RepoFile,
    ProductFile,
    DnfModuleFile,
    DpkgStatus,
    DpkgFileList,
    ApkInstalled,
    RpmSqlite,
    RpmBerkeleyDb,
    RpmNdb,
    PythonMetadata,
    NpmPackage,
    NpmLock,
    CargoLock,
    Executable,
    JavaArchive,
    Gemspec,
    ComposerInstalled,
    DotNetDeps,
}

impl Kind {
    fn is_binary(self) -> bool {
        matches!(
            self,
            Kind::Executable
                | Kind::JavaArchive
                | Kind::RpmSqlite
                | Kind::RpmBerkeleyDb
                | Kind::RpmNdb
        )
    }
}

/// Files naming a Red Hat family release, for roots without `os-release`, in order of
/// preference (`redhat-release` is a link to the others in CentOS, Rocky and AlmaLinux).
const RELEASE_FILES: [&str; 5] = [
    "etc/redhat-release",
    "etc/centos-release",
    "etc/rocky-release",
    "etc/almalinux-release",
    "etc/openEuler-release",
];

/// Executables smaller than this cannot carry Go build information or a dependency list
/// worth reading (they are scripts and tiny tools).
const MIN_EXECUTABLE_BYTES: u64 = 16 << 10;

fn classify(path: &str, file: &FileVisit<'_>) -> Option<Kind> {
    let name = file_name(path);
    let kind = match path {
        "etc/os-release" | "usr/lib/os-release" => Kind::OsRelease,
        _ if RELEASE_FILES.contains(&path) => Kind::ReleaseFile,
        _ if (parent(path) == "root/buildinfo/content_manifests"
            || parent(path) == "usr/share/buildinfo")
            && name.ends_with(".json") =>
        {
            Kind::ContentManifest
        }
        _ if parent(path) == "etc/yum.repos.d" && name.ends_with(".repo") => Kind::RepoFile,
        _ if parent(path) == "etc/products.d" && name.ends_with(".prod") => Kind::ProductFile,
        _ if parent(path) == "etc/dnf/modules.d" && name.ends_with(".module") => {
            Kind::DnfModuleFile
        }
        "var/lib/dpkg/status" => Kind::DpkgStatus,
        "lib/apk/db/installed" => Kind::ApkInstalled,
        "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" => Kind::RpmSqlite,
        "var/lib/rpm/Packages" | "usr/lib/sysimage/rpm/Packages" => Kind::RpmBerkeleyDb,
        "var/lib/rpm/Packages.db" | "usr/lib/sysimage/rpm/Packages.db" => Kind::RpmNdb,
        _ if path.starts_with("var/lib/dpkg/status.d/") => {
            if name.ends_with(".md5sums") {
                Kind::DpkgFileList
            } else {
                Kind::DpkgStatus
            }
        }
        _ if path.starts_with("var/lib/dpkg/info/") && name.ends_with(".list") => {
            Kind::DpkgFileList
        }
        _ if path.ends_with(".dist-info/METADATA")
            || path.ends_with(".egg-info/PKG-INFO")
            || name.ends_with(".egg-info") =>
        {
            Kind::PythonMetadata
        }
        _ if name == "package.json" && npm::is_installed_package_json(path) => Kind::NpmPackage,
        _ if name == "package-lock.json" && !path.contains("node_modules/") => Kind::NpmLock,
        _ if name == "Cargo.lock" => Kind::CargoLock,
        _ if java::is_archive_name(name) => Kind::JavaArchive,
        _ if name.ends_with(".gemspec") && path.contains("specifications/") => Kind::Gemspec,
        _ if path.ends_with("vendor/composer/installed.json") => Kind::ComposerInstalled,
        _ if name.ends_with(".deps.json") => Kind::DotNetDeps,
        _ if file.is_executable() && file.size >= MIN_EXECUTABLE_BYTES => Kind::Executable,
        _ => return None,
    };
    Some(kind)
}

/// A file's yield together with where it came from.
struct Harvest {
    path: String,
    layer_index: usize,
    layer_digest: Option<String>,
    extracted: Extracted,
}

/// Inventories a target: one walk, every cataloger.
///
/// Packages from files an upper layer replaced or deleted are dropped; distribution packages
/// get the release from `os-release`; language packages whose metadata file an OS package
/// owns are dropped, since the OS package reports them (binaries' embedded Go modules and
/// Rust crates are kept: the OS package does not name them).
pub fn inventory(target: &Target, limits: &Limits) -> Result<Inventory, Error> {
    inventory_cancellable(target, limits, &Cancel::new(), &mut |_| {})
}

/// [`inventory`], calling `progress` with the size of every regular file met (for progress
/// bars: the walk's own pace, not only the files catalogers read), and stopping with
/// [`crate::ErrorKind::Cancelled`] soon after `cancel` is cancelled (see [`Cancel`] for how
/// soon).
pub fn inventory_cancellable(
    target: &Target,
    limits: &Limits,
    cancel: &Cancel,
    progress: &mut dyn FnMut(u64),
) -> Result<Inventory, Error> {
    inventory_observed(target, limits, cancel, progress, &mut |_| {})
}

/// [`inventory_cancellable`], also calling `ecosystem_found` with each language ecosystem
/// ([`Cataloger::language_ecosystem`]) as soon as a cataloger reads a first package of it,
/// while the walk goes on: a caller can prepare what it needs for that ecosystem (load its
/// advisories) beside the walk. An ecosystem is announced once, possibly for packages the
/// final inventory leaves out (files an upper layer replaced, metadata an OS package owns);
/// the distribution's ecosystem is known only at the end, from the release and its stream.
pub fn inventory_observed(
    target: &Target,
    limits: &Limits,
    cancel: &Cancel,
    progress: &mut dyn FnMut(u64),
    ecosystem_found: &mut dyn FnMut(&'static str),
) -> Result<Inventory, Error> {
    let mut announced: Vec<&'static str> = Vec::new();
    let mut harvests: Vec<Harvest> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let walk = target.for_each_file(limits, cancel, |file| {
        progress(file.size);
        let Some(kind) = classify(file.path, file) else {
            return Ok(());
        };
        let (path, layer_index, layer_digest) = (file.path, file.layer_index, file.layer_digest);
        let location = || match layer_digest {
            Some(digest) => format!("layer {layer_index} ({digest}): {path}"),
            None => format!("/{path}"),
        };
        let limit = if kind.is_binary() {
            limits.max_binary_bytes
        } else {
            limits.max_metadata_bytes
        };
        if file.size > limit {
            warnings.push(Warning {
                location: location(),
                reason: format!("{} bytes, over the cataloger limit of {limit}", file.size),
            });
            return Ok(());
        }
        buffer.clear();
        if kind == Kind::Executable {
            // Most executables are neither Go nor Rust: look at the magic before reading.
            let mut magic = [0u8; 4];
            if file.read(&mut magic)? < 4 || magic != *b"\x7fELF" {
                return Ok(());
            }
            buffer.extend_from_slice(&magic);
        }
        Read::by_ref(file).take(limit).read_to_end(&mut buffer)?;
        let extracted = extract(kind, path, &buffer, limits, cancel);
        // A cataloger stopped by the request leaves neither a partial harvest nor a warning.
        cancel.check()?;
        match extracted {
            Ok(extracted) => {
                for (cataloger, _) in &extracted.packages {
                    if let Some(ecosystem) = cataloger.language_ecosystem()
                        && !announced.contains(&ecosystem)
                    {
                        announced.push(ecosystem);
                        ecosystem_found(ecosystem);
                    }
                }
                harvests.push(Harvest {
                    path: path.to_owned(),
                    layer_index,
                    layer_digest: layer_digest.map(str::to_owned),
                    extracted,
                });
            }
            Err(reason) => warnings.push(Warning {
                location: location(),
                reason,
            }),
        }
        Ok(())
    })?;
    let filesystem = &walk.filesystem;
    harvests.retain(|harvest| filesystem.is_visible(&harvest.path, harvest.layer_index));

    let os_release_path = ["etc/os-release", "usr/lib/os-release"]
        .into_iter()
        .filter_map(|path| filesystem.resolve(path))
        .next();
    let release_file_path = RELEASE_FILES
        .into_iter()
        .filter_map(|path| filesystem.resolve(path))
        .next();
    let named_by = |path: Option<&String>| {
        harvests
            .iter()
            .filter(|harvest| path == Some(&harvest.path))
            .find_map(|harvest| harvest.extracted.distro.clone())
    };
    let mut distro =
        named_by(os_release_path.as_ref()).or_else(|| named_by(release_file_path.as_ref()));
    if let Some(distro) = &mut distro {
        // What the release files named (openEuler's support label) unless a vendor's
        // repositories or product files name a stream.
        let named = distro.stream.take();
        distro.stream = red_hat::stream(
            distro,
            harvests.iter().filter_map(|harvest| {
                let repositories = harvest.extracted.repositories.as_ref()?;
                Some((harvest.layer_index, repositories))
            }),
        )
        .or_else(|| {
            suse::stream(
                distro,
                harvests
                    .iter()
                    .filter_map(|harvest| harvest.extracted.product.as_ref()),
            )
        })
        .or(named);
    }

    let mut owned: HashSet<String> = HashSet::new();
    for harvest in &harvests {
        for path in &harvest.extracted.owned_files {
            let path = path.trim_start_matches('/');
            // Packages name files by their path before usrmerge-style symlinks
            // (`/lib/x` for `/usr/lib/x`); the metadata is found by its real path.
            if let Some(resolved) = filesystem.resolve(path) {
                owned.insert(resolved);
            }
            owned.insert(path.to_owned());
        }
    }

    let mut enabled_modules: Vec<String> = harvests
        .iter()
        .flat_map(|harvest| harvest.extracted.module_streams.iter().cloned())
        .collect();
    enabled_modules.sort();
    enabled_modules.dedup();

    let installed_npm = installed_npm_packages(&harvests);
    let mut packages = Vec::new();
    for harvest in harvests {
        let location = Location {
            path: format!("/{}", harvest.path),
            layer_index: harvest.layer_digest.as_ref().map(|_| harvest.layer_index),
            layer_digest: harvest.layer_digest.clone(),
        };
        for (cataloger, found) in harvest.extracted.packages {
            if !cataloger.is_os() && !cataloger.is_embedded() && owned.contains(&harvest.path) {
                continue;
            }
            // A lock file entry that its project's `node_modules` holds installed is the same
            // package: reported once, from the installed `package.json`.
            if cataloger == Cataloger::NpmLock
                && installed_npm.contains(&(
                    parent(&harvest.path).to_owned(),
                    found.name.clone(),
                    found.version.clone(),
                ))
            {
                continue;
            }
            packages.push(package(
                cataloger,
                found,
                distro.as_ref(),
                &enabled_modules,
                location.clone(),
            ));
        }
    }
    packages.sort();
    packages.dedup();
    warnings.extend(walk.warnings);
    Ok(Inventory {
        distro,
        packages,
        warnings,
    })
}

/// `(project directory, name, version)` of each installed npm package: the project is
/// where the path's first `node_modules/` starts (`app` for
/// `app/node_modules/a/node_modules/b/package.json`), as in the project's lock file.
fn installed_npm_packages(harvests: &[Harvest]) -> HashSet<(String, String, String)> {
    let mut installed = HashSet::new();
    for harvest in harvests {
        let Some((project, _)) = harvest.path.split_once("node_modules/") else {
            continue;
        };
        for (cataloger, found) in &harvest.extracted.packages {
            if *cataloger == Cataloger::NpmPackage {
                installed.insert((
                    project.trim_end_matches('/').to_owned(),
                    found.name.clone(),
                    found.version.clone(),
                ));
            }
        }
    }
    installed
}

fn extract(
    kind: Kind,
    path: &str,
    bytes: &[u8],
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Extracted, String> {
    let text = || std::str::from_utf8(bytes).map_err(|error| format!("not UTF-8 text ({error})"));
    match kind {
        Kind::OsRelease => Ok(Extracted {
            distro: Some(os_release::parse(&String::from_utf8_lossy(bytes))),
            ..Extracted::default()
        }),
        Kind::ReleaseFile => Ok(Extracted {
            distro: red_hat::parse_release_file(&String::from_utf8_lossy(bytes)),
            ..Extracted::default()
        }),
        Kind::ContentManifest => Ok(Extracted {
            repositories: Some(red_hat::parse_content_manifest(bytes)?),
            ..Extracted::default()
        }),
        Kind::RepoFile => Ok(Extracted {
            repositories: Some(red_hat::parse_repo_file(&String::from_utf8_lossy(bytes))),
            ..Extracted::default()
        }),
        Kind::DnfModuleFile => Ok(Extracted {
            module_streams: dnf_module::parse_modules_file(&String::from_utf8_lossy(bytes)),
            ..Extracted::default()
        }),
        Kind::ProductFile => Ok(Extracted {
            product: Some(suse::parse_product(&String::from_utf8_lossy(bytes))?),
            ..Extracted::default()
        }),
        Kind::DpkgStatus => Ok(dpkg::parse_status(&String::from_utf8_lossy(bytes))),
        Kind::DpkgFileList => Ok(dpkg::parse_file_list(&String::from_utf8_lossy(bytes))),
        Kind::ApkInstalled => Ok(apk::parse_installed(&String::from_utf8_lossy(bytes))),
        Kind::RpmSqlite => rpm::parse_sqlite(bytes, cancel),
        Kind::RpmBerkeleyDb => rpm_bdb::parse(bytes, cancel),
        Kind::RpmNdb => rpm_ndb::parse(bytes, cancel),
        Kind::PythonMetadata => python::parse_metadata(&String::from_utf8_lossy(bytes)),
        Kind::NpmPackage => npm::parse_package_json(bytes),
        Kind::NpmLock => npm::parse_lock(bytes),
        Kind::CargoLock => rust::parse_cargo_lock(text()?),
        Kind::Executable => executable(bytes, cancel),
        Kind::JavaArchive => java::parse_archive(bytes, file_name(path), limits, cancel),
        Kind::Gemspec => ruby::parse_gemspec(&String::from_utf8_lossy(bytes), file_name(path)),
        Kind::ComposerInstalled => php::parse_installed(bytes),
        Kind::DotNetDeps => dotnet::parse_deps(bytes),
    }
}

/// Go build information or a cargo-auditable dependency list, if the ELF file has either;
/// `Err` when cancelled during the search.
fn executable(bytes: &[u8], cancel: &Cancel) -> Result<Extracted, String> {
    let Some(elf) = elf::Elf::parse(bytes) else {
        return Ok(Extracted::default());
    };
    if let Some(packages) = golang::parse_build_info(&elf, bytes, cancel)? {
        return Ok(Extracted::packages(Cataloger::GoBinary, packages));
    }
    if let Some(packages) = rust::parse_auditable(&elf) {
        return Ok(Extracted::packages(Cataloger::CargoAuditable, packages));
    }
    Ok(Extracted::default())
}

/// The ecosystem of a language cataloger's package.
fn language_ecosystem(cataloger: Cataloger) -> String {
    cataloger
        .language_ecosystem()
        .unwrap_or_default()
        .to_owned()
}

fn package(
    cataloger: Cataloger,
    found: Found,
    distro: Option<&Distro>,
    enabled_modules: &[String],
    location: Location,
) -> Package {
    // A distribution's release applies only to packages of its own package format; an rpm
    // database on a distribution this crate does not map is that distribution's.
    let distro = distro.filter(|distro| {
        distro.package_format() == Some(cataloger)
            || (cataloger == Cataloger::Rpm && distro.ecosystem().is_none())
    });
    let distro_qualifier = distro.map(Distro::purl_qualifier).unwrap_or_default();
    let distro_namespace = distro.map(Distro::purl_namespace);
    let arch = found.arch.as_deref().unwrap_or_default();
    // Syft's `upstream` qualifier: the source name, with `@version` when the source's version
    // differs from the binary's.
    let upstream = match (&found.source_name, &found.source_version) {
        (source_name, Some(source_version)) => format!(
            "{}@{source_version}",
            source_name.as_deref().unwrap_or(&found.name)
        ),
        (Some(source_name), None) => source_name.clone(),
        (None, None) => String::new(),
    };
    let (ecosystem, purl) = match cataloger {
        Cataloger::Dpkg => (
            distro
                .and_then(Distro::ecosystem)
                .unwrap_or_else(|| "Debian".to_owned()),
            purl::purl(
                "deb",
                Some(distro_namespace.unwrap_or("debian")),
                &found.name,
                &found.version,
                &[
                    ("arch", arch),
                    ("distro", &distro_qualifier),
                    ("upstream", &upstream),
                ],
            ),
        ),
        Cataloger::Apk => (
            distro
                .and_then(Distro::ecosystem)
                .unwrap_or_else(|| "Alpine".to_owned()),
            purl::purl(
                "apk",
                Some(distro_namespace.unwrap_or("alpine")),
                &found.name,
                &found.version,
                &[
                    ("arch", arch),
                    ("distro", &distro_qualifier),
                    ("upstream", &upstream),
                ],
            ),
        ),
        Cataloger::Rpm => (
            distro.map_or_else(|| "Red Hat".to_owned(), Distro::own_ecosystem),
            purl::purl(
                "rpm",
                Some(distro_namespace.unwrap_or("redhat")),
                &found.name,
                found
                    .version
                    .split_once(':')
                    .map_or(found.version.as_str(), |(_, version)| version),
                &[
                    ("arch", arch),
                    ("distro", &distro_qualifier),
                    ("epoch", found.epoch.as_deref().unwrap_or_default()),
                    // Trivy's qualifier for a module build's label.
                    (
                        "modularitylabel",
                        found.modularity_label.as_deref().unwrap_or_default(),
                    ),
                    ("upstream", &upstream),
                ],
            ),
        ),
        Cataloger::Python => (
            language_ecosystem(cataloger),
            purl::purl(
                "pypi",
                None,
                &python::purl_name(&found.name),
                &found.version,
                &[],
            ),
        ),
        Cataloger::NpmPackage | Cataloger::NpmLock => {
            let (scope, name) = match found.name.split_once('/') {
                Some((scope, name)) if scope.starts_with('@') => (Some(scope), name),
                _ => (None, found.name.as_str()),
            };
            (
                language_ecosystem(cataloger),
                purl::purl("npm", scope, name, &found.version, &[]),
            )
        }
        Cataloger::CargoLock | Cataloger::CargoAuditable => (
            language_ecosystem(cataloger),
            purl::purl("cargo", None, &found.name, &found.version, &[]),
        ),
        Cataloger::GoBinary => {
            let lowered = found.name.to_ascii_lowercase();
            let (namespace, name) = match lowered.rsplit_once('/') {
                Some((namespace, name)) => (Some(namespace), name),
                None => (None, lowered.as_str()),
            };
            (
                language_ecosystem(cataloger),
                purl::purl("golang", namespace, name, &found.version, &[]),
            )
        }
        Cataloger::Java => {
            let (group, artifact) = found
                .name
                .split_once(':')
                .map_or((None, found.name.as_str()), |(group, artifact)| {
                    (Some(group), artifact)
                });
            (
                language_ecosystem(cataloger),
                purl::purl("maven", group, artifact, &found.version, &[]),
            )
        }
        Cataloger::Gem => (
            language_ecosystem(cataloger),
            purl::purl(
                "gem",
                None,
                &found.name,
                &found.version,
                &[("platform", arch)],
            ),
        ),
        Cataloger::Composer => {
            // Composer names are case-insensitive; the purl spec asks for lowercase.
            let lowered = found.name.to_ascii_lowercase();
            let (vendor, name) = lowered
                .split_once('/')
                .map_or((None, lowered.as_str()), |(vendor, name)| {
                    (Some(vendor), name)
                });
            (
                language_ecosystem(cataloger),
                purl::purl("composer", vendor, name, &found.version, &[]),
            )
        }
        Cataloger::DotNet => (
            language_ecosystem(cataloger),
            purl::purl("nuget", None, &found.name, &found.version, &[]),
        ),
    };
    let module_streams = match found
        .modularity_label
        .as_deref()
        .and_then(dnf_module::stream_of_label)
    {
        Some(own) => vec![own],
        // An rpm without a label that is a module build (its label lost, or Oracle
        // Linux's default streams, which set none) may be of any enabled stream; one
        // without the module tag was provided by none.
        None if cataloger == Cataloger::Rpm && dnf_module::is_module_build(&found.version) => {
            enabled_modules.to_vec()
        }
        None => Vec::new(),
    };
    Package {
        ecosystem,
        name: found.name,
        version: found.version,
        source_name: found.source_name,
        source_version: found.source_version,
        module_streams,
        purl,
        cataloger,
        location,
    }
}
