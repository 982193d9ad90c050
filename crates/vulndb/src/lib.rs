//! The vulnerability database: feed import, a compact SQLite index, and exact matching.
//!
//! Feeds come in as OSV records (JSON or YAML files, directories of them, or the `.zip`
//! archives OSV publishes per ecosystem), the Debian security tracker's JSON dump and its
//! `DSA/list` / `DLA/list` text files, Alpine secdb JSON, yum/dnf `updateinfo.xml`
//! repository metadata, which carries Amazon Linux's ALAS, Oracle Linux's ELSA and Fedora's
//! security updates: one record per security update, its CVEs as aliases, each listed rpm
//! affected below its epoch:version-release, for the release the update's id and packages'
//! release tags name (or [`ImportOptions::release`]), and OVAL definitions (Oracle Linux's
//! ELSA feed, Azure Linux's and CBL-Mariner's), whose criteria, tests, objects and states
//! are evaluated into the same kind of records. XML feeds, plain or gzip, bzip2, xz or zstd
//! compressed, are read streaming, bounded by [`Limits::max_xml_bytes`] rather than held
//! whole. [`Database`] imports each path
//! or URL as one *source*: re-importing a source replaces its records, and
//! [`Database::status`] lists sources with their record counts and import times. Only the
//! fields matching and reporting need are stored (ids, aliases, a summary, severity and CVSS,
//! publication and modification dates, affected packages with ranges and version lists,
//! distro status).
//!
//! [`Index`] is what matching runs on: it loads every record once, parses every range bound
//! once with the ecosystem's [`palisade_version::Scheme`], and answers [`Index::matches`] for
//! a [`Package`] with one [`Finding`] per vulnerability, advisories that alias each other
//! merged (OSV's `upstream` ids count as aliases: a USN, DSA or RHSA merges with its CVEs).
//! Ranges follow the OSV evaluation rules (`introduced`, `fixed`, `last_affected`, `limit`,
//! unsorted events); `GIT` ranges and withdrawn advisories are skipped and counted
//! in [`MatchStats`]. Distribution packages match only their own release's data, by source
//! package, and keep the distribution's [`DistroStatus`].
//!
//! Distribution rule: Debian's security tracker and OSV's `Debian:*` and `Ubuntu:*` records
//! name source packages and give source versions (OSV indexes Ubuntu "by source package
//! name rather than binary package name"), so a dpkg package is looked up by
//! [`Package::source_name`] and compared by [`Package::source_version`] (binNMUs, binary-only
//! epochs, signed kernels and other binaries with their own versions), as Trivy and Grype
//! do; a signed kernel's source (`linux-signed-amd64 6.1.76+1`, Ubuntu's `linux-signed-hwe-*`)
//! is looked up as the kernel source it signs (`linux 6.1.76-1`), which is what advisories
//! name. Alpine's secdb is keyed by origin ([`Package::source_name`]) and compared by the
//! package's version, which every package of an origin shares. rpm advisories (OSV's Red
//! Hat, AlmaLinux, Rocky Linux and SUSE records) list binary rpms, while Red Hat's CVE data
//! names source rpms, as do openEuler's (OESA, `openEuler:22.03-LTS-SP3`, one release per
//! LTS and service pack, none matched against another's): an rpm package is looked up by
//! its own name and version and by its source rpm's name and version.
//! Oracle Linux's Ksplice builds (`.ksplice1` in the release) are compared only with
//! Ksplice fixes, and other builds only with other fixes. [`Index::has_advisories_for`]
//! tells a release no imported source covers (Amazon Linux, Oracle Linux, Fedora, Azure
//! Linux and CBL-Mariner without their updateinfo or OVAL imported, since OSV does not carry
//! them) from one without findings. OSV's release suffixes are read as `os-release` names
//! releases (`Ubuntu:22.04:LTS`, `Red Hat:enterprise_linux:9::appstream`, `SUSE:Linux
//! Enterprise Server 15 SP5` → `Ubuntu:22.04`, `Red Hat:9`, `SUSE:15.5`). Red Hat's update
//! streams get fixes of their own and are releases of their own (`Red Hat:rhel_eus:9.2::baseos`,
//! RHEL 10's `Red Hat:enterprise_linux_eus:10.0` → `Red Hat:rhel_eus:9.2`,
//! `Red Hat:rhel_eus:10.0`; AUS, E4S, TUS and ELS alike), as are SUSE's Micro products
//! (`SUSE:Linux Micro 6.0`, `openSUSE:Leap Micro 5.5`): the inventory names a package's
//! release that way, and it is matched against that stream's advisories only, so that a
//! later main-stream build is never reported as a fix an EUS host lacks. SUSE's Long Term
//! Service Pack Support is the other way round: an LTSS system keeps its service pack's
//! update repositories and adds the LTSS one, so a package of `SUSE:15.4-LTSS` (OSV's
//! `SUSE:Linux Enterprise Server 15 SP4-LTSS`, the inventory's name for SLES 15 SP4 with
//! `etc/products.d/SLES-LTSS.prod`) is matched against both releases' advisories, merged per
//! vulnerability as aliases are; where the LTSS stream has an advisory for the vulnerability
//! and package, it alone decides whether the package is affected and by which fix (the
//! service pack's advisories only add their ids), since that is the stream the system
//! updates from. A system without LTSS (`SUSE:15.4`) never matches the LTSS advisories,
//! whose fixes it cannot install. (Trivy folds LTSS into the service pack for every
//! system; Vunnel's CSAF-based SLES data keeps LTSS apart as `sles:15.4+ltss`.) The other
//! products built from a service pack with fixes of their own work the same way: SLES for
//! SAP Applications (`SUSE:15.4-SAP`, OSV's `SUSE:Linux Enterprise Server for SAP
//! Applications 15 SP4`), SLE HPC and its LTSS and ESPOS streams (`SUSE:15.4-HPC`,
//! `SUSE:15.4-HPC-LTSS`, `SUSE:15.4-HPC-ESPOS`, matched against the stream's, HPC's and the
//! service pack's advisories, the most specific one with an advisory deciding); plain SLES
//! never matches them, nor does SLES LTSS match HPC's LTSS stream. The [`Finding`]
//! still names the binary package and its installed version; its fixed versions and fix
//! are the binary versions the fixed source versions give, and the advisory's source
//! versions are kept in [`Finding::source_fixed_versions`].
//!
//! Design decision: matching runs in memory, not in SQL. Version order is per ecosystem and
//! cannot be expressed as SQL comparisons, and parsing bounds once per load instead of once
//! per query is what makes scanning thousands of packages fast.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use palisade_vulndb::{Database, Index, Limits, Package};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("GO-2099-0001.json");
//! std::fs::write(&path, r#"{"id": "GO-2099-0001", "aliases": ["CVE-2099-1"],
//!     "summary": "Example", "affected": [{"package": {"ecosystem": "Go",
//!     "name": "example.com/m"}, "ranges": [{"type": "SEMVER",
//!     "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#)?;
//!
//! let database = Database::open_in_memory().await?;
//! let report = database.import_path(&path, Limits::default()).await?;
//! assert_eq!(report.record_count, 1);
//!
//! let index = Index::load(&database).await?;
//! let package = Package {
//!     ecosystem: "Go".into(),
//!     name: "example.com/m".into(),
//!     version: "v1.1.0".into(),
//!     source_name: None,
//!     source_version: None,
//!     module_streams: Vec::new(),
//! };
//! let findings = index.matches(&package)?.findings;
//! assert_eq!(findings[0].id, "GO-2099-0001");
//! assert_eq!(findings[0].fix.as_deref(), Some("go get example.com/m@v1.2.0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]

mod decode;
mod distro;
mod download;
mod ecosystem;
mod error;
mod import;
mod index;
mod model;
mod osv;
mod oval;
mod source;
mod spill;
mod store;
mod textfile;
mod updateinfo;
mod xml;

pub use crate::download::{DownloadOptions, Downloader};
pub use crate::ecosystem::{fix_suggestion, normalize_ecosystem};
pub use crate::error::{Error, ErrorKind};
pub use crate::import::{ImportOptions, Limits, NoProgress, Progress, Warning};
pub use crate::index::{Finding, Index, MatchReport, MatchStats, Package};
pub use crate::model::DistroStatus;
pub use crate::store::{Database, ImportReport, SourceStatus, Status};
pub use crate::textfile::{FileCheck, RUNNING_KERNEL_RELEASE};
