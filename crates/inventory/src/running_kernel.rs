//! The running kernel among the kernels an rpm system has installed.
//!
//! dnf keeps several kernels installed side by side (its `installonlypkgs`: `kernel`,
//! `kernel-core`, `kernel-modules*`, `kernel-devel` and the same for the `debug`, `rt`,
//! `rt-debug`, `64k`, `64k-debug`, `rt-64k`, `rt-64k-debug`, `16k`, `zfcpdump` and Oracle's
//! `uek` variants), three by
//! default, and boots one of them. A vulnerability of a kernel that is installed but not
//! running does not affect the running system, so a scan of the running host matches only
//! the running kernel's packages, which are told by `uname -r` (the kernel's
//! `version-release.arch`, then `+variant` from RHEL 9 on, or `.debug` on RHEL 7):
//!
//! | `uname -r` | packages |
//! |---|---|
//! | `5.14.0-427.13.1.el9_4.x86_64` | `kernel-core-5.14.0-427.13.1.el9_4.x86_64`, ... |
//! | `5.14.0-427.13.1.el9_4.x86_64+debug` | `kernel-debug-core-...`, ... |
//! | `5.14.0-503.23.1.el9_5.x86_64+rt` / `+rt-debug` | `kernel-rt-core-...` / `kernel-rt-debug-core-...` |
//! | `5.14.0-427.13.1.el9_4.aarch64+64k` | `kernel-64k-core-...` |
//! | `5.14.0-687.el9.aarch64+rt-64k` (RHEL 9.3 on) | `kernel-rt-64k-core-...` |
//! | `5.14.0-284.11.1.rt14.296.el9_2.x86_64` (RHEL 9.0-9.2's rt) | `kernel-rt-core-5.14.0-284.11.1.rt14.296.el9_2`, ... |
//! | `4.18.0-513.5.1.el8_9.x86_64` | `kernel-core-4.18.0-513.5.1.el8_9.x86_64`, ... |
//! | `4.18.0-513.5.1.rt7.307.el8_9.x86_64` (RHEL 8's rt: no suffix) | `kernel-rt-core-4.18.0-513.5.1.rt7.307.el8_9`, ... |
//! | `3.10.0-1160.rt56.1131.el7.x86_64` (RHEL 7's rt) | `kernel-rt-3.10.0-1160.rt56.1131.el7`, ... |
//! | `5.15.0-200.131.27.el9uek.x86_64` | `kernel-uek-core-5.15.0-200.131.27.el9uek`, ... |
//! | `3.10.0-1160.119.1.el7.x86_64.debug` | `kernel-debug-3.10.0-1160.119.1.el7`, ... |
//! | `6.12.0-55.9.1.el10_0.x86_64_v2` (AlmaLinux 10's x86-64-v2 build) | `kernel-core-6.12.0-55.9.1.el10_0`, ... |
//!
//! These forms were checked against published ones: Red Hat's leapp upgrade tool's tests
//! (`+rt`, `+64k`, `+rt-64k`, and the `.rt` releases of RHEL 7, 8 and 9.0-9.2), vuls's
//! running-kernel tests (`+debug`, `.rt7.355.el8_10`, `.el9uek`), the `kernel-rt-64k*`
//! package names CentOS Stream publishes, and an AlmaLinux 10 host's `uname -a`. RHEL 4 and
//! 5's releases with the variant glued on (`2.6.18-419.el5debug`, `el5PAE`, `el5xen`, no
//! architecture) are not read as variants: all their installed kernels are matched.
//!
//! The other installed kernels' packages are left out of matching. Packages that are not
//! installed once per kernel (`kernel-headers`, `kernel-tools`, `kernel-srpm-macros`,
//! `kernel-firmware`) are matched as any package. When no installed kernel package is the
//! running kernel (a kernel built outside rpm, or a release `uname -r` prints otherwise),
//! which of them runs is unknown and all are matched.

use crate::Package;

/// The architectures rpm builds kernels for, as `uname -r` ends with them.
const ARCHES: [&str; 10] = [
    "x86_64",
    "x86_64_v2",
    "aarch64",
    "ppc64le",
    "ppc64",
    "s390x",
    "i686",
    "i586",
    "armv7hl",
    "riscv64",
];

/// The kernel variants of installonly packages' names (`kernel-<variant>-<subpackage>`),
/// longest first, so that `rt-debug` is not read as `rt`.
const VARIANTS: [&str; 12] = [
    "rt-64k-debug",
    "rt-debug",
    "64k-debug",
    "16k-debug",
    "uek-debug",
    "debug",
    "rt-64k",
    "rt",
    "64k",
    "16k",
    "uek",
    "zfcpdump",
];

/// The subpackages dnf installs once per kernel (`kernel-<variant>-<subpackage>`); the
/// kernel's own package has none.
const SUBPACKAGES: [&str; 11] = [
    "",
    "-core",
    "-modules",
    "-modules-core",
    "-modules-extra",
    "-modules-internal",
    "-modules-partner",
    "-devel",
    "-devel-matched",
    "-uki-virt",
    "-kvm",
];

/// The running kernel, as `uname -r` (`/proc/sys/kernel/osrelease`) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningKernel {
    /// The package's `version-release` (`5.14.0-427.13.1.el9_4`).
    version_release: String,
    /// The architecture, when the release names one.
    arch: Option<String>,
    /// The variant after `+` (`debug`, `rt`, `rt-debug`, `64k`, `rt-64k`), or `debug` for RHEL 7's
    /// `.debug`; empty for the default kernel.
    variant: String,
}

impl RunningKernel {
    /// Reads a `uname -r` release; `None` when it is empty.
    pub fn parse(release: &str) -> Option<RunningKernel> {
        let release = release.trim();
        let (rest, variant) = match release.split_once('+') {
            Some((rest, variant)) => (rest, variant),
            None => match release.strip_suffix(".debug") {
                Some(rest) => (rest, "debug"),
                None => (release, ""),
            },
        };
        let (version_release, arch) = match rest.rsplit_once('.') {
            Some((version_release, arch)) if ARCHES.contains(&arch) => {
                (version_release, Some(arch.to_owned()))
            }
            _ => (rest, None),
        };
        (!version_release.is_empty()).then(|| RunningKernel {
            version_release: version_release.to_owned(),
            arch,
            variant: variant.to_owned(),
        })
    }

    /// The kernel this process runs on (`/proc/sys/kernel/osrelease`); `None` when it
    /// cannot be read.
    pub fn of_this_system() -> Option<RunningKernel> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        RunningKernel::parse(&release)
    }

    /// The positions in `packages` of the installed kernels' packages that are not this
    /// kernel's: none when no installed kernel package is this kernel's, since which one
    /// runs is then unknown.
    pub fn other_kernels(&self, packages: &[Package]) -> Vec<usize> {
        let mut others = Vec::new();
        let mut running_found = false;
        for (position, package) in packages.iter().enumerate() {
            let Some(variant) = kernel_variant(package) else {
                continue;
            };
            if self.is(package, variant) {
                running_found = true;
            } else {
                others.push(position);
            }
        }
        if running_found { others } else { Vec::new() }
    }

    /// `packages` without [`RunningKernel::other_kernels`].
    pub fn without_other_kernels<'a>(&self, packages: &'a [Package]) -> Vec<&'a Package> {
        let others = self.other_kernels(packages);
        if !others.is_empty() {
            tracing::info!(
                running = %self.version_release,
                left_out = others.len(),
                "The packages of installed kernels that are not running are not matched."
            );
        }
        packages
            .iter()
            .enumerate()
            .filter(|(position, _)| others.binary_search(position).is_err())
            .map(|(_, package)| package)
            .collect()
    }

    /// Whether the kernel package `package` of variant `variant` is this kernel's.
    fn is(&self, package: &Package, variant: &str) -> bool {
        // rpm's epoch is not in `uname -r`; kernels have none.
        let version = package
            .version
            .split_once(':')
            .map_or(package.version.as_str(), |(_, version)| version);
        let arch_agrees = match (&self.arch, purl_arch(&package.purl)) {
            (Some(running), Some(installed)) => running == installed,
            _ => true,
        };
        version == self.version_release && arch_agrees && self.variant_agrees(variant)
    }

    /// Whether a package of `variant` can be this kernel's: the same variant, or RHEL 8's
    /// real-time and Oracle's UEK kernels, whose `uname -r` has no `+rt` or `+uek` and
    /// whose own releases (`.rt7.307.el8_9`, `.el9uek`) tell them apart (so do RHEL 7's and
    /// RHEL 9.0-9.2's real-time kernels); from RHEL 9.3 on the real-time kernel shares the
    /// default kernel's release and says `+rt` (`+rt-64k` on aarch64's 64k pages).
    fn variant_agrees(&self, variant: &str) -> bool {
        let (base, debug) = match variant.strip_suffix("-debug") {
            Some(base) => (base, "debug"),
            None => (variant, ""),
        };
        let named_by_release = match base {
            "rt" => self.version_release.contains(".rt"),
            "uek" => self.version_release.contains("uek"),
            _ => false,
        };
        variant == self.variant || (named_by_release && self.variant == debug)
    }
}

/// The variant of an rpm installed once per kernel (`kernel-rt-debug-core` → `rt-debug`,
/// `kernel-devel` → empty); `None` for any other package.
fn kernel_variant(package: &Package) -> Option<&str> {
    if !package.purl.starts_with("pkg:rpm/") {
        return None;
    }
    let rest = package.name.strip_prefix("kernel")?;
    let (variant, subpackage) = VARIANTS
        .iter()
        .find_map(|variant| {
            let after = rest.strip_prefix('-')?.strip_prefix(variant)?;
            SUBPACKAGES.contains(&after).then_some((*variant, after))
        })
        .unwrap_or(("", rest));
    SUBPACKAGES.contains(&subpackage).then_some(variant)
}

/// The `arch` qualifier of a package URL.
fn purl_arch(purl: &str) -> Option<&str> {
    let (_, qualifiers) = purl.split_once('?')?;
    qualifiers
        .split('&')
        .find_map(|qualifier| qualifier.strip_prefix("arch="))
}

#[cfg(test)]
mod tests {
    use super::RunningKernel;
    use crate::{Cataloger, Location, Package};

    fn rpm(name: &str, version_release: &str, arch: &str) -> Package {
        Package {
            ecosystem: "Red Hat:9".to_owned(),
            name: name.to_owned(),
            version: version_release.to_owned(),
            source_name: Some("kernel".to_owned()),
            source_version: None,
            module_streams: Vec::new(),
            purl: format!("pkg:rpm/redhat/{name}@{version_release}?arch={arch}&distro=rhel-9.4"),
            cataloger: Cataloger::Rpm,
            location: Location {
                path: "/var/lib/rpm/rpmdb.sqlite".to_owned(),
                layer_index: None,
                layer_digest: None,
            },
        }
    }

    /// The names of `packages` left out for the running kernel `uname`.
    fn left_out<'a>(uname: &str, packages: &'a [Package]) -> Vec<&'a str> {
        let running = RunningKernel::parse(uname).unwrap();
        running
            .other_kernels(packages)
            .into_iter()
            .map(|position| packages[position].name.as_str())
            .collect()
    }

    #[test]
    fn uname_releases_are_read_as_version_release_arch_and_variant() {
        let read = |uname: &str| {
            let kernel = RunningKernel::parse(uname).unwrap();
            (kernel.version_release, kernel.arch, kernel.variant)
        };
        let of = |version_release: &str, arch: Option<&str>, variant: &str| {
            (
                version_release.to_owned(),
                arch.map(str::to_owned),
                variant.to_owned(),
            )
        };
        assert_eq!(
            read("5.14.0-427.13.1.el9_4.x86_64\n"),
            of("5.14.0-427.13.1.el9_4", Some("x86_64"), "")
        );
        assert_eq!(
            read("4.18.0-513.5.1.el8_9.x86_64+debug"),
            of("4.18.0-513.5.1.el8_9", Some("x86_64"), "debug")
        );
        assert_eq!(
            read("5.14.0-503.23.1.el9_5.x86_64+rt-debug"),
            of("5.14.0-503.23.1.el9_5", Some("x86_64"), "rt-debug")
        );
        assert_eq!(
            read("5.14.0-427.13.1.el9_4.aarch64+64k"),
            of("5.14.0-427.13.1.el9_4", Some("aarch64"), "64k")
        );
        assert_eq!(
            read("4.18.0-513.5.1.rt7.307.el8_9.x86_64"),
            of("4.18.0-513.5.1.rt7.307.el8_9", Some("x86_64"), "")
        );
        assert_eq!(
            read("3.10.0-1160.119.1.el7.x86_64.debug"),
            of("3.10.0-1160.119.1.el7", Some("x86_64"), "debug")
        );
        assert_eq!(
            read("5.15.0-200.131.27.el9uek.x86_64"),
            of("5.15.0-200.131.27.el9uek", Some("x86_64"), "")
        );
        assert_eq!(
            read("5.14.0-687.el9.aarch64+rt-64k"),
            of("5.14.0-687.el9", Some("aarch64"), "rt-64k")
        );
        assert_eq!(
            read("6.12.0-55.9.1.el10_0.x86_64_v2"),
            of("6.12.0-55.9.1.el10_0", Some("x86_64_v2"), "")
        );
        // A kernel built outside rpm.
        assert_eq!(read("6.1.0-custom"), of("6.1.0-custom", None, ""));
        assert_eq!(RunningKernel::parse(" \n"), None);
    }

    /// A RHEL 9.4 host with three kernels installed (dnf's default), each with its core
    /// and modules, plus kernel-headers and kernel-tools, which are installed once.
    #[test]
    fn only_the_running_kernels_packages_of_a_rhel_9_host_are_kept() {
        let kernels = [
            "5.14.0-362.24.1.el9_3",
            "5.14.0-427.13.1.el9_4",
            "5.14.0-427.18.1.el9_4",
        ];
        let mut packages = Vec::new();
        for kernel in kernels {
            for name in [
                "kernel",
                "kernel-core",
                "kernel-modules",
                "kernel-modules-core",
            ] {
                packages.push(rpm(name, kernel, "x86_64"));
            }
        }
        packages.push(rpm("kernel-headers", "5.14.0-427.18.1.el9_4", "x86_64"));
        packages.push(rpm("kernel-tools", "5.14.0-427.18.1.el9_4", "x86_64"));
        packages.push(rpm("kernel-debug-core", "5.14.0-427.13.1.el9_4", "x86_64"));
        packages.push(rpm("kernel-rt-core", "5.14.0-427.13.1.el9_4", "x86_64"));
        packages.push(rpm("bash", "5.1.8-9.el9", "x86_64"));

        let running = RunningKernel::parse("5.14.0-427.13.1.el9_4.x86_64").unwrap();
        let kept: Vec<String> = running
            .without_other_kernels(&packages)
            .into_iter()
            .map(|package| format!("{}-{}", package.name, package.version))
            .collect();
        assert_eq!(
            kept,
            [
                "kernel-5.14.0-427.13.1.el9_4",
                "kernel-core-5.14.0-427.13.1.el9_4",
                "kernel-modules-5.14.0-427.13.1.el9_4",
                "kernel-modules-core-5.14.0-427.13.1.el9_4",
                "kernel-headers-5.14.0-427.18.1.el9_4",
                "kernel-tools-5.14.0-427.18.1.el9_4",
                "bash-5.1.8-9.el9",
            ]
        );
        // The debug and real-time kernels of the same release run under their own names.
        let debug = left_out("5.14.0-427.13.1.el9_4.x86_64+debug", &packages);
        assert!(!debug.contains(&"kernel-debug-core"), "{debug:?}");
        assert_eq!(debug.len(), 13, "{debug:?}");
        let rt = left_out("5.14.0-427.13.1.el9_4.x86_64+rt", &packages);
        assert!(!rt.contains(&"kernel-rt-core"), "{rt:?}");
        assert_eq!(rt.len(), 13, "{rt:?}");
        // Another architecture's build of the release is not the running kernel.
        assert_eq!(
            left_out("5.14.0-427.13.1.el9_4.aarch64", &packages),
            Vec::<&str>::new(),
            "no installed kernel runs: all are kept"
        );
        // A kernel rpm did not install: all kept.
        assert_eq!(left_out("6.12.0-custom", &packages), Vec::<&str>::new());
    }

    #[test]
    fn rhel_8_real_time_oracle_uek_and_rhel_7_debug_kernels_are_told_apart() {
        let packages = [
            rpm("kernel-core", "4.18.0-513.5.1.el8_9", "x86_64"),
            rpm("kernel-rt-core", "4.18.0-513.5.1.rt7.307.el8_9", "x86_64"),
            rpm(
                "kernel-rt-debug-core",
                "4.18.0-513.5.1.rt7.307.el8_9",
                "x86_64",
            ),
            rpm("kernel-uek-core", "5.15.0-200.131.27.el9uek", "x86_64"),
            rpm("kernel-uek-debug", "5.15.0-200.131.27.el9uek", "x86_64"),
            rpm("kernel-debug", "3.10.0-1160.119.1.el7", "x86_64"),
            rpm("kernel-devel", "4.18.0-513.5.1.el8_9", "x86_64"),
        ];
        let kept = |uname: &str| -> Vec<&str> {
            let left_out = left_out(uname, &packages);
            packages
                .iter()
                .map(|package| package.name.as_str())
                .filter(|name| !left_out.contains(name))
                .collect()
        };
        assert_eq!(
            kept("4.18.0-513.5.1.el8_9.x86_64"),
            ["kernel-core", "kernel-devel"]
        );
        assert_eq!(
            kept("4.18.0-513.5.1.rt7.307.el8_9.x86_64"),
            ["kernel-rt-core"]
        );
        assert_eq!(
            kept("4.18.0-513.5.1.rt7.307.el8_9.x86_64+debug"),
            ["kernel-rt-debug-core"]
        );
        assert_eq!(kept("5.15.0-200.131.27.el9uek.x86_64"), ["kernel-uek-core"]);
        assert_eq!(kept("3.10.0-1160.119.1.el7.x86_64.debug"), ["kernel-debug"]);
    }

    /// The published forms of the real-time kernels on 64k pages (RHEL 9.3 on), of RHEL 7's
    /// and RHEL 9.0-9.2's real-time kernels (their own `.rt` releases) and of AlmaLinux 10's
    /// x86-64-v2 builds: each keeps exactly its own kernel's packages.
    #[test]
    fn real_time_64k_older_real_time_and_x86_64_v2_kernels_are_told_apart() {
        let packages = [
            rpm("kernel-64k-core", "5.14.0-687.el9", "aarch64"),
            rpm("kernel-rt-64k-core", "5.14.0-687.el9", "aarch64"),
            rpm("kernel-rt-64k-modules-core", "5.14.0-687.el9", "aarch64"),
            rpm("kernel-rt-64k-debug-core", "5.14.0-687.el9", "aarch64"),
            rpm("kernel-rt-core", "5.14.0-687.el9", "aarch64"),
            rpm("kernel-core", "5.14.0-284.11.1.el9_2", "x86_64"),
            rpm("kernel-rt-core", "5.14.0-284.11.1.rt14.296.el9_2", "x86_64"),
            rpm("kernel-rt", "3.10.0-1160.rt56.1131.el7", "x86_64"),
            rpm("kernel", "3.10.0-1160.el7", "x86_64"),
            rpm("kernel-core", "6.12.0-55.9.1.el10_0", "x86_64_v2"),
            rpm("kernel-core", "6.12.0-55.9.1.el10_0", "x86_64"),
        ];
        // Each kept package as `name version arch`.
        let kept = |uname: &str| -> Vec<String> {
            let left_out = RunningKernel::parse(uname)
                .unwrap()
                .other_kernels(&packages);
            (0..packages.len())
                .filter(|position| !left_out.contains(position))
                .map(|position| {
                    let package = &packages[position];
                    let arch = super::purl_arch(&package.purl).unwrap();
                    format!("{} {} {arch}", package.name, package.version)
                })
                .collect()
        };
        assert_eq!(
            kept("5.14.0-687.el9.aarch64+rt-64k"),
            [
                "kernel-rt-64k-core 5.14.0-687.el9 aarch64",
                "kernel-rt-64k-modules-core 5.14.0-687.el9 aarch64"
            ]
        );
        assert_eq!(
            kept("5.14.0-687.el9.aarch64+rt-64k-debug"),
            ["kernel-rt-64k-debug-core 5.14.0-687.el9 aarch64"]
        );
        assert_eq!(
            kept("5.14.0-687.el9.aarch64+64k"),
            ["kernel-64k-core 5.14.0-687.el9 aarch64"]
        );
        assert_eq!(
            kept("5.14.0-284.11.1.rt14.296.el9_2.x86_64"),
            ["kernel-rt-core 5.14.0-284.11.1.rt14.296.el9_2 x86_64"]
        );
        assert_eq!(
            kept("3.10.0-1160.rt56.1131.el7.x86_64"),
            ["kernel-rt 3.10.0-1160.rt56.1131.el7 x86_64"]
        );
        assert_eq!(
            kept("6.12.0-55.9.1.el10_0.x86_64_v2"),
            ["kernel-core 6.12.0-55.9.1.el10_0 x86_64_v2"]
        );
    }
}
