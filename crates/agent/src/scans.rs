//! Scans on the node: the vulnerabilities of the host and of the images of running
//! containers, and the host baseline checks, reported through the outbox and closed on the
//! server by scan snapshots.
//!
//! Inventories are kept in memory, keyed by asset (the host, or an image by digest), so an
//! image is inventoried once however many containers run it, and a new vulnerability database
//! (its file changed) is matched against the kept inventories without walking a root again;
//! only the files the advisories' checks of file contents name (a booted kernel's grubenv)
//! are read, inside the host's root, when a package's version needs one
//! ([`palisade_inventory::LazyFiles`], as `palisade scan` does), and the running kernel's
//! release from the agent's own `/proc` when the host's root is `/` (another root, such as
//! `--scan-root /mnt/x`, has no running kernel of its own). An image's checks of file contents never hold: the
//! container root it was read from (`/proc/<pid>/root`) may be gone, or be another
//! process's, by the time a new database is matched. Its files are not copied while the
//! container runs either: the feeds' checks of file contents are of the host's boot entry and
//! running kernel (Red Hat's kpatch advisories), which a container does not have (it boots
//! nothing and runs the host's kernel), so an image loses no advisory that applies to it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use palisade_inventory::{Cancel, LazyFiles, Limits, Package, RootFs, RunningKernel, Target};
use palisade_model::{
    AffectedAsset, Details, FindingKind, FindingReport, FixVerdict, ScanSnapshot, Severity,
    Timestamp, VerifyFixSpec, VulnerabilityDetails,
};
use palisade_vulndb::{Database, FileCheck, Index, MatchReport};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::containers::running_containers;

/// Scheduled scans. Tasks from the server (host checks, rescans, fix verifications) run
/// whatever these say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Run the scans on a schedule.
    pub enabled: bool,
    /// The host's root; `/` is the running host (`/proc`, `/sys`, `/dev`, `/run` and
    /// container storage are skipped, and the host checks read the running kernel's state).
    pub host_root: PathBuf,
    /// The vulnerability database; `None` means `<data_dir>/vulndb.sqlite`, which
    /// `palisade db import --db <data_dir>/vulndb.sqlite FEED...` creates. Without a database
    /// the agent still runs the host checks.
    pub vulndb: Option<PathBuf>,
    /// Seconds between inventories of the host and of the running containers' images.
    pub inventory_interval_secs: u64,
    /// Seconds between runs of the host checks.
    pub host_checks_interval_secs: u64,
    /// Seconds after start before the first scheduled scan.
    pub start_delay_secs: u64,
    /// Also inventory the images of running containers (podman, runc, containerd).
    pub container_images: bool,
    /// Also check the services (Redis, MySQL/MariaDB, PostgreSQL, MongoDB, nginx) of running
    /// containers, reading their configuration through the container's root.
    pub container_services: bool,
    /// Probe the servers found on loopback (the live host's, and each container's inside its
    /// network namespace) with the read-only, rate-limited service probes.
    pub service_probes: bool,
    /// containerd's root directory (`--root`), where its metadata database lives.
    pub containerd_root: PathBuf,
    /// containerd's state directory (`--state`), where its running tasks are listed.
    pub containerd_state: PathBuf,
}

impl Default for ScanConfig {
    fn default() -> ScanConfig {
        ScanConfig {
            enabled: true,
            host_root: PathBuf::from("/"),
            vulndb: None,
            inventory_interval_secs: 6 * 3600,
            host_checks_interval_secs: 6 * 3600,
            // Start-up is busy enough (enrollment, the sensor); a scan a minute later costs
            // nothing in coverage.
            start_delay_secs: 60,
            container_images: true,
            container_services: true,
            service_probes: true,
            containerd_root: PathBuf::from("/var/lib/containerd"),
            containerd_state: PathBuf::from("/run/containerd"),
        }
    }
}

/// A scan that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No vulnerability database where the agent looks for it.
    #[error(
        "no vulnerability database at {0}: create it with `palisade db import --db {0} FEED...` or set scans.vulndb"
    )]
    NoDatabase(String),
    /// The vulnerability database could not be read.
    #[error("cannot read the vulnerability database {path}")]
    Database {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: palisade_vulndb::Error,
    },
    /// Inventory failed.
    #[error("cannot inventory {target}")]
    Inventory {
        /// What was inventoried.
        target: String,
        /// Why.
        #[source]
        source: palisade_inventory::Error,
    },
    /// The host root cannot be checked.
    #[error("cannot run the host checks")]
    HostChecks(#[from] palisade_baseline::Error),
    /// The asset of a fix verification is not scanned by this agent.
    #[error(
        "this agent does not scan {0}: it is neither this node nor the image of a running container"
    )]
    UnknownAsset(String),
    /// A blocking scan thread panicked or was cancelled.
    #[error("the scan thread failed: {0}")]
    Thread(String),
}

/// The database file's identity: a rewrite or an import changes it.
type DatabaseStamp = Vec<(u64, Option<SystemTime>)>;

/// One inventoried asset.
#[derive(Debug)]
struct Inventoried {
    asset: AffectedAsset,
    packages: Vec<Package>,
    /// The host's root, where advisories' checks of file contents are answered when it is
    /// matched (the host's boot entry may change without its packages changing); none for
    /// an image (see the module's doc).
    root: Option<KeptRoot>,
}

/// The host's root, kept for the checks of its files and, when it is `/`, of its running
/// kernel.
#[derive(Debug)]
struct KeptRoot {
    target: Target,
    /// The limits its inventory was taken with, which its files are read within too.
    limits: Limits,
    /// Never cancelled: a match runs to its end on the scanner's thread, and the reads it
    /// asks are a few bounded files.
    cancel: Cancel,
    /// Whether it is `/`, the system the agent runs on, whose running kernel is the
    /// scanner's own; another root (`--scan-root /mnt/x`, a fixture) has none to answer.
    running_host: bool,
}

impl Inventoried {
    /// The packages matched: all of them, except, on the running host, the packages of the
    /// installed kernels it does not run ([`RunningKernel`]).
    fn matched_packages(&self) -> Vec<&Package> {
        let running = self
            .root
            .as_ref()
            .filter(|root| root.running_host)
            .and_then(|_| RunningKernel::of_this_system());
        match running {
            Some(running) => running.without_other_kernels(&self.packages),
            None => self.packages.iter().collect(),
        }
    }

    /// The files of its root that the checks of `index` name, read on the first check a
    /// package's version needs, the running system's (the running kernel) from the host's
    /// `/proc` when the root is the running host's; none for an image.
    fn root_files<'a>(&'a self, index: &'a Index) -> Option<LazyFiles<'a>> {
        let root = self.root.as_ref()?;
        let paths = index.file_checks().into_iter().map(FileCheck::path);
        Some(if root.running_host {
            LazyFiles::of_running_host(&root.target, paths, &root.limits, &root.cancel)
        } else {
            LazyFiles::new(&root.target, paths, &root.limits, &root.cancel)
        })
    }
}

/// What a vulnerability scan produced for one asset.
#[derive(Debug)]
pub(crate) struct AssetScan {
    /// The findings.
    pub(crate) reports: Vec<FindingReport>,
    /// The snapshot that closes what is no longer found.
    pub(crate) snapshot: ScanSnapshot,
}

/// The scanner's state: the database index and the kept inventories.
#[derive(Debug)]
pub(crate) struct Scanner {
    config: ScanConfig,
    vulndb: PathBuf,
    cluster: String,
    node: String,
    database: Option<(DatabaseStamp, Arc<Index>)>,
    inventories: BTreeMap<String, Inventoried>,
}

/// The key of the host in the inventories (image keys are digests, `sha256:...`).
const HOST_KEY: &str = "host";

impl Scanner {
    pub(crate) fn new(config: &ScanConfig, data_dir: &Path, cluster: &str, node: &str) -> Scanner {
        Scanner {
            vulndb: config
                .vulndb
                .clone()
                .unwrap_or_else(|| data_dir.join("vulndb.sqlite")),
            config: config.clone(),
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            database: None,
            inventories: BTreeMap::new(),
        }
    }

    pub(crate) fn config(&self) -> &ScanConfig {
        &self.config
    }

    pub(crate) fn has_inventories(&self) -> bool {
        !self.inventories.is_empty()
    }

    fn host_asset(&self) -> AffectedAsset {
        palisade_baseline::host_asset(&self.cluster, &self.node)
    }

    fn database_stamp(&self) -> Option<DatabaseStamp> {
        let main = std::fs::metadata(&self.vulndb).ok()?;
        let mut wal = self.vulndb.clone().into_os_string();
        wal.push("-wal");
        let mut stamp = vec![(main.len(), main.modified().ok())];
        if let Ok(wal) = std::fs::metadata(wal) {
            stamp.push((wal.len(), wal.modified().ok()));
        }
        Some(stamp)
    }

    /// Loads the database when it appeared or changed since the last load; true when it did.
    pub(crate) async fn refresh_database(&mut self) -> Result<bool, ScanError> {
        let Some(stamp) = self.database_stamp() else {
            self.database = None;
            return Err(ScanError::NoDatabase(self.vulndb.display().to_string()));
        };
        if self
            .database
            .as_ref()
            .is_some_and(|(loaded, _)| *loaded == stamp)
        {
            return Ok(false);
        }
        let path = self.vulndb.display().to_string();
        let fail = |source| ScanError::Database {
            path: path.clone(),
            source,
        };
        let database = Database::open(&self.vulndb).await.map_err(fail)?;
        let index = Index::load(&database).await.map_err(fail);
        database.close().await;
        self.database = Some((stamp, Arc::new(index?)));
        tracing::info!(path = %self.vulndb.display(), "Vulnerability database loaded.");
        Ok(true)
    }

    /// Inventories the host and the images of running containers not inventoried yet.
    pub(crate) async fn inventory_all(&mut self) -> Result<(), ScanError> {
        self.inventory_host().await?;
        if self.config.container_images {
            let running = running_containers(&self.config).await;
            self.forget_images_not_run_by(
                running.iter().map(|container| container.inventory_key()),
            );
            for container in running {
                let key = container.inventory_key();
                if self.inventories.contains_key(&key) {
                    continue;
                }
                let asset = container.image_asset(&self.host_asset());
                match inventory(container.root(), asset).await {
                    Ok(inventoried) => {
                        self.inventories.insert(key, inventoried);
                    }
                    // A container that stopped meanwhile is not an error of the scan.
                    Err(error) => {
                        tracing::warn!(container = %container.name, image = %container.image, error = %error, "Cannot inventory a running container's image.")
                    }
                }
            }
        }
        Ok(())
    }

    /// Forgets the image inventories no running container (`running`: their inventory keys)
    /// uses any more, so that the kept inventories stay as many as the images that run (and
    /// the host). A forgotten image is neither matched nor reported again, and no snapshot is
    /// sent for it: its open findings stay as its last scan left them, as a stopped
    /// container's service findings do (an image that stopped running was not rescanned, so
    /// nothing says its vulnerabilities are gone). It is inventoried again if it runs again.
    fn forget_images_not_run_by(&mut self, running: impl IntoIterator<Item = String>) {
        let running: BTreeSet<String> = running.into_iter().collect();
        self.inventories
            .retain(|key, _| key == HOST_KEY || running.contains(key));
    }

    async fn inventory_host(&mut self) -> Result<(), ScanError> {
        let inventoried = inventory(self.config.host_root.clone(), self.host_asset()).await?;
        self.inventories.insert(HOST_KEY.to_owned(), inventoried);
        Ok(())
    }

    /// Matches every kept inventory against the database.
    pub(crate) fn vulnerability_scans(&self) -> Result<Vec<AssetScan>, ScanError> {
        let index = self.index()?;
        let scanned_at = Timestamp::now();
        Ok(self
            .inventories
            .values()
            .map(|inventoried| {
                let root_files = inventoried.root_files(index);
                let reports =
                    vulnerability_reports(index, inventoried, root_files.as_ref(), scanned_at);
                AssetScan {
                    snapshot: ScanSnapshot {
                        asset: inventoried.asset.clone(),
                        kind: FindingKind::Vulnerability,
                        present: reports.iter().map(FindingReport::dedupe_key).collect(),
                        scanned_at,
                    },
                    reports,
                }
            })
            .collect())
    }

    fn index(&self) -> Result<&Index, ScanError> {
        self.database
            .as_ref()
            .map(|(_, index)| index.as_ref())
            .ok_or_else(|| ScanError::NoDatabase(self.vulndb.display().to_string()))
    }

    /// Runs the host checks and the service checks of the host and of every running
    /// container: per asset, the failures and the snapshot that closes the passed ones. The
    /// host's servers are probed only when the host root is the live host (`/`); a
    /// container's in its own network namespace.
    pub(crate) async fn host_checks(&self) -> Result<Vec<AssetScan>, ScanError> {
        let root = self.config.host_root.clone();
        let asset = self.host_asset();
        let probe = self.config.service_probes;
        let scanned_at = Timestamp::now();
        let host_reports = tokio::task::spawn_blocking(move || {
            let host = palisade_baseline::HostRoot::new(&root)?;
            let probe_host = probe && host.is_live();
            palisade_baseline::host_findings(
                &host,
                &palisade_baseline::HostOptions::default(),
                probe_host,
                &asset,
                scanned_at,
            )
        })
        .await
        .map_err(|error| ScanError::Thread(error.to_string()))??;
        let mut scans = vec![baseline_scan(self.host_asset(), host_reports, scanned_at)];
        if self.config.container_services {
            for container in running_containers(&self.config).await {
                let asset = container.asset(&self.host_asset());
                let target = palisade_baseline::ServiceTarget::process(container.pid);
                let for_reports = asset.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    palisade_baseline::service_findings(&target, probe, &for_reports, scanned_at)
                })
                .await
                .map_err(|error| ScanError::Thread(error.to_string()))?;
                match checked {
                    Ok(reports) => scans.push(baseline_scan(asset, reports, scanned_at)),
                    // A container that stopped meanwhile is not an error of the run.
                    Err(error) => {
                        tracing::warn!(container = %container.name, error = %error, "Cannot check a running container's services.")
                    }
                }
            }
        }
        Ok(scans)
    }

    /// Inventories the verification's asset again and says whether the vulnerability is gone
    /// from it; also returns the asset's fresh scan, for the server.
    pub(crate) async fn verify_fix(
        &mut self,
        spec: &VerifyFixSpec,
    ) -> Result<(FixVerdict, AssetScan), ScanError> {
        self.refresh_database().await?;
        let key = match &spec.asset.image_digest {
            None if spec.asset.container_id.is_none()
                && spec.asset.node.as_deref() == Some(self.node.as_str()) =>
            {
                self.inventory_host().await?;
                HOST_KEY.to_owned()
            }
            digest => {
                let container = running_containers(&self.config)
                    .await
                    .into_iter()
                    .find(|container| match digest {
                        Some(digest) => &container.image_digest == digest,
                        None => {
                            container.image_digest.is_empty()
                                && spec.asset.container_id.as_ref() == Some(&container.id)
                        }
                    })
                    .ok_or_else(|| ScanError::UnknownAsset(spec.asset.label()))?;
                let key = container.inventory_key();
                let asset = self
                    .inventories
                    .get(&key)
                    .map_or_else(|| spec.asset.clone(), |kept| kept.asset.clone());
                let inventoried = inventory(container.root(), asset).await?;
                self.inventories.insert(key.clone(), inventoried);
                key
            }
        };
        let index = self.index()?;
        let inventoried = &self.inventories[&key];
        let root_files = inventoried.root_files(index);
        let installed: Vec<&Package> = inventoried
            .matched_packages()
            .into_iter()
            .filter(|package| {
                package.name == spec.package
                    && palisade_vulndb::normalize_ecosystem(&package.ecosystem)
                        == palisade_vulndb::normalize_ecosystem(&spec.ecosystem)
            })
            .collect();
        let still_affected: Vec<String> = installed
            .iter()
            .filter(|package| {
                match_inventory_package(index, package, root_files.as_ref())
                    .map(|report| {
                        report.findings.iter().any(|finding| {
                            finding.id == spec.vulnerability
                                || finding.aliases.contains(&spec.vulnerability)
                        })
                    })
                    .unwrap_or(false)
            })
            .map(|package| package.version.clone())
            .collect();
        let installed_versions: Vec<String> = installed
            .iter()
            .map(|package| package.version.clone())
            .collect();
        let verdict = if installed.is_empty() {
            FixVerdict {
                fixed: true,
                installed_versions,
                reason: format!(
                    "{} is no longer installed on {}",
                    spec.package,
                    inventoried.asset.label()
                ),
            }
        } else if still_affected.is_empty() {
            FixVerdict {
                fixed: true,
                reason: format!(
                    "{} {} is past the fix of {}",
                    spec.package,
                    installed_versions.join(", "),
                    spec.vulnerability
                ),
                installed_versions,
            }
        } else {
            FixVerdict {
                fixed: false,
                reason: format!(
                    "still vulnerable: {} {} is affected by {}",
                    spec.package,
                    still_affected.join(", "),
                    spec.vulnerability
                ),
                installed_versions,
            }
        };
        let scanned_at = Timestamp::now();
        let reports = vulnerability_reports(index, inventoried, root_files.as_ref(), scanned_at);
        let scan = AssetScan {
            snapshot: ScanSnapshot {
                asset: inventoried.asset.clone(),
                kind: FindingKind::Vulnerability,
                present: reports.iter().map(FindingReport::dedupe_key).collect(),
                scanned_at,
            },
            reports,
        };
        Ok((verdict, scan))
    }
}

/// The baseline scan of one asset: its failed checks and the snapshot that closes the rest.
fn baseline_scan(
    asset: AffectedAsset,
    reports: Vec<FindingReport>,
    scanned_at: Timestamp,
) -> AssetScan {
    AssetScan {
        snapshot: ScanSnapshot {
            asset,
            kind: FindingKind::BaselineRisk,
            present: reports.iter().map(FindingReport::dedupe_key).collect(),
            scanned_at,
        },
        reports,
    }
}

/// Inventories a root directory on a blocking thread. Dropping the returned future (a task
/// whose claim was lost) stops the walk within one bounded read, and nothing is kept.
async fn inventory(root: PathBuf, asset: AffectedAsset) -> Result<Inventoried, ScanError> {
    let cancel = Cancel::new();
    let _stop_when_dropped = cancel.on_drop();
    tokio::task::spawn_blocking(move || {
        let failed = |source| ScanError::Inventory {
            target: root.display().to_string(),
            source,
        };
        // `/` and container roots are live systems: skip /proc, /sys, /dev, /run and
        // container storage. A fixture directory is read whole.
        let in_container = root.starts_with("/proc");
        let running_host = root == Path::new("/");
        let root_fs = if running_host {
            RootFs::host()
        } else if in_container {
            RootFs::container(&root.display().to_string()).map_err(failed)?
        } else {
            RootFs::new(&root)
        };
        // The image a container's root stands for: one inventory per digest, however many
        // containers run the image.
        let image_digest = asset.image_digest.clone().unwrap_or_default();
        tracing::info!(root = %root.display(), image_digest = %image_digest, "Taking an inventory.");
        let (mut files, mut bytes) = (0u64, 0u64);
        let target = Target::RootFs(root_fs);
        let limits = Limits::default();
        let found = palisade_inventory::inventory_cancellable(
            &target,
            &limits,
            &cancel,
            &mut |size| {
                files += 1;
                bytes += size;
            },
        );
        let found = match found {
            Ok(found) => found,
            Err(error) if error.is_cancelled() => {
                let stopped_ms = cancel
                    .requested_at()
                    .map_or(0, |requested| requested.elapsed().as_millis() as u64);
                tracing::warn!(root = %root.display(), files, bytes, stopped_ms, "Inventory stopped: the scan was abandoned.");
                return Err(failed(error));
            }
            Err(error) => return Err(failed(error)),
        };
        for warning in &found.warnings {
            tracing::debug!(location = %warning.location, reason = %warning.reason, "Skipped during inventory.");
        }
        tracing::info!(root = %root.display(), image_digest = %image_digest, files, bytes, packages = found.packages.len(), "Inventory taken.");
        Ok(Inventoried {
            asset,
            packages: found.packages,
            root: (!in_container).then(|| KeptRoot {
                target,
                limits,
                cancel: Cancel::new(),
                running_host,
            }),
        })
    })
    .await
    .map_err(|error| ScanError::Thread(error.to_string()))?
}

/// The vulnerabilities of an inventoried `package`, advisories' checks of file contents
/// (and of the running kernel) answered on `root_files`, its target's (none: no such check
/// holds). `palisade scan` matches with it too.
pub fn match_inventory_package(
    index: &Index,
    package: &Package,
    root_files: Option<&LazyFiles<'_>>,
) -> Result<MatchReport, palisade_vulndb::Error> {
    let package = palisade_vulndb::Package {
        ecosystem: package.ecosystem.clone(),
        name: package.name.clone(),
        version: package.version.clone(),
        source_name: package.source_name.clone(),
        source_version: package.source_version.clone(),
        module_streams: package.module_streams.clone(),
    };
    match root_files {
        Some(root_files) => index.matches_on_root(&package, &|check| {
            check.holds(root_files.content(check.path()))
        }),
        None => index.matches(&package),
    }
}

fn vulnerability_reports(
    index: &Index,
    inventoried: &Inventoried,
    root_files: Option<&LazyFiles<'_>>,
    observed_at: Timestamp,
) -> Vec<FindingReport> {
    let mut reports = Vec::new();
    for package in inventoried.matched_packages() {
        let matched = match match_inventory_package(index, package, root_files) {
            Ok(matched) => matched,
            Err(error) => {
                tracing::warn!(package = %package.name, version = %package.version, %error, "Cannot match a package.");
                continue;
            }
        };
        for finding in matched.findings {
            reports.push(FindingReport {
                id: Uuid::now_v7(),
                observed_at,
                severity: severity(finding.severity.as_deref(), finding.cvss_score),
                title: format!(
                    "{} {} in {}",
                    finding.id,
                    package.name,
                    inventoried.asset.label()
                ),
                rule: finding.id,
                asset: inventoried.asset.clone(),
                details: Details::Vulnerability(VulnerabilityDetails {
                    aliases: finding.aliases,
                    package: package.name.clone(),
                    ecosystem: finding.ecosystem,
                    installed_version: package.version.clone(),
                    fixed_versions: finding.fixed_versions,
                    source_package: finding.source_package,
                    source_version: finding.source_version,
                    source_fixed_versions: finding.source_fixed_versions,
                    cvss_score: finding.cvss_score,
                    cvss_vector: finding.cvss_vector,
                    purl: package.purl.clone(),
                    location: package.location.path.clone(),
                    fix: finding.fix.unwrap_or_default(),
                    description: finding.summary,
                }),
                demo: false,
            });
        }
    }
    reports
}

/// The feed's severity word, else the CVSS rating; unknown counts as medium so that it is
/// not hidden below the default filters.
fn severity(word: Option<&str>, cvss_score: Option<f64>) -> Severity {
    match word
        .unwrap_or_default()
        .trim_end_matches('*')
        .to_ascii_lowercase()
        .as_str()
    {
        "critical" => Severity::Critical,
        "high" | "important" => Severity::High,
        "medium" | "moderate" => Severity::Medium,
        "low" => Severity::Low,
        "negligible" | "unimportant" => Severity::Info,
        _ => match cvss_score {
            Some(score) if score >= 9.0 => Severity::Critical,
            Some(score) if score >= 7.0 => Severity::High,
            Some(score) if score >= 4.0 => Severity::Medium,
            Some(score) if score > 0.0 => Severity::Low,
            _ => Severity::Medium,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_and_scores() {
        assert_eq!(severity(Some("Important"), None), Severity::High);
        assert_eq!(severity(Some("unimportant"), Some(9.8)), Severity::Info);
        assert_eq!(severity(None, Some(9.8)), Severity::Critical);
        assert_eq!(severity(Some("not yet assigned"), None), Severity::Medium);
    }

    /// An inventory of `packages` for `asset`, without a root (an image's).
    fn inventoried(asset: AffectedAsset, packages: Vec<Package>) -> Inventoried {
        Inventoried {
            asset,
            packages,
            root: None,
        }
    }

    #[test]
    fn images_no_running_container_uses_are_forgotten() {
        let config = ScanConfig::default();
        let mut scanner = Scanner::new(&config, Path::new("/nonexistent"), "cluster", "node");
        let host = scanner.host_asset();
        scanner
            .inventories
            .insert(HOST_KEY.to_owned(), inventoried(host.clone(), Vec::new()));
        for digest in ["sha256:aaaa", "sha256:bbbb", "sha256:cccc"] {
            scanner
                .inventories
                .insert(digest.to_owned(), inventoried(host.clone(), Vec::new()));
        }
        // Two containers run the same image, another image stopped, a third was never seen.
        scanner.forget_images_not_run_by(
            ["sha256:bbbb", "sha256:bbbb", "sha256:dddd"].map(str::to_owned),
        );
        let kept: Vec<&str> = scanner.inventories.keys().map(String::as_str).collect();
        assert_eq!(kept, ["host", "sha256:bbbb"]);
        // No container at all: only the host is left.
        scanner.forget_images_not_run_by(Vec::new());
        let kept: Vec<&str> = scanner.inventories.keys().map(String::as_str).collect();
        assert_eq!(kept, ["host"]);
    }

    /// The host's vulnerabilities, as the agent reports them, of a Red Hat root whose
    /// kpatch-patch package applies only while the old kernel it patches is set to boot
    /// (an OVAL textfilecontent54 test of `/boot/grub2/grubenv`).
    async fn host_vulnerabilities(root: &Path, db: &Path) -> Vec<(String, Vec<String>)> {
        vulnerabilities_of(root, db, false).await
    }

    /// [`host_vulnerabilities`], with the root taken as the running host's when
    /// `running_host` (as the inventory of `/` takes it: a test cannot inventory the machine's
    /// own root, so the flag is set on the fixture's) and its running kernel the scanner's.
    async fn vulnerabilities_of(
        root: &Path,
        db: &Path,
        running_host: bool,
    ) -> Vec<(String, Vec<String>)> {
        let config = ScanConfig {
            host_root: root.to_owned(),
            vulndb: Some(db.to_owned()),
            container_images: false,
            ..ScanConfig::default()
        };
        let mut scanner = Scanner::new(&config, root, "cluster", "node");
        scanner.refresh_database().await.unwrap();
        scanner.inventory_all().await.unwrap();
        let host_root = scanner.inventories.get_mut(HOST_KEY).unwrap().root.as_mut();
        assert!(
            !host_root.as_ref().unwrap().running_host,
            "{root:?} is not /"
        );
        host_root.unwrap().running_host = running_host;
        let scans = scanner.vulnerability_scans().unwrap();
        assert_eq!(scans.len(), 1, "{scans:?}");
        scans[0]
            .reports
            .iter()
            .map(|report| match &report.details {
                Details::Vulnerability(details) => {
                    (report.rule.clone(), details.fixed_versions.clone())
                }
                other => panic!("not a vulnerability: {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn file_content_checks_are_evaluated_on_the_host_root() {
        let temp = tempfile::tempdir().unwrap();
        let db = temp.path().join("vulndb.sqlite");
        let database = Database::open(&db).await.unwrap();
        let feed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vulndb/tests/data/oval/rhel-8-kpatch.oval.xml");
        database
            .import_path(&feed, palisade_vulndb::Limits::default())
            .await
            .unwrap();
        database.close().await;
        let grubenv = |kernel: &str| {
            format!(
                "# GRUB Environment Block\nsaved_entry=0123456789abcdef0123456789abcdef-{kernel}.x86_64\nkernelopts=root=/dev/mapper/rhel-root ro\n"
            )
        };
        let root = |name: &str, boots: Option<&str>| {
            let root = temp.path().join(name);
            palisade_testdata::rpm::rpm_root(
                &root,
                "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.0 (Ootpa)\"\nID=\"rhel\"\n\
                 VERSION_ID=\"8.0\"\nPLATFORM_ID=\"platform:el8\"\n",
                &[("kpatch-patch-4_18_0-80", None, "1", "1.el8")],
            );
            if let Some(kernel) = boots {
                std::fs::create_dir_all(root.join("boot/grub2")).unwrap();
                std::fs::write(root.join("boot/grub2/grubenv"), grubenv(kernel)).unwrap();
            }
            root
        };
        let old_kernel = root("old_kernel", Some("4.18.0-80.el8"));
        assert_eq!(
            host_vulnerabilities(&old_kernel, &db).await,
            [("RHSA-2024:9201".to_owned(), vec!["1-2.el8".to_owned()])]
        );
        let fixed_kernel = root("fixed_kernel", Some("4.18.0-80.1.2.el8_0"));
        assert_eq!(host_vulnerabilities(&fixed_kernel, &db).await, []);
        let no_grubenv = root("no_grubenv", None);
        assert_eq!(host_vulnerabilities(&no_grubenv, &db).await, []);
        // A grubenv linked out of the root is looked for inside it, where there is none.
        let outside = temp.path().join("outside-grubenv");
        std::fs::write(&outside, grubenv("4.18.0-80.el8")).unwrap();
        let escaping = root("escaping", None);
        std::fs::create_dir_all(escaping.join("boot/grub2")).unwrap();
        std::os::unix::fs::symlink(&outside, escaping.join("boot/grub2/grubenv")).unwrap();
        assert_eq!(host_vulnerabilities(&escaping, &db).await, []);
        // The "currently running" alternative is asked of the running host's kernel (the
        // scanner's own, not the root's files): with the fix above any kernel, the running
        // host that boots none is affected; another root (`--scan-root /mnt/x`, this
        // fixture as it is) has no running kernel of its own, and is not.
        let running_db = temp.path().join("running.sqlite");
        let running_feed = temp.path().join("rhel-8-kpatch-running.oval.xml");
        let fixture = std::fs::read_to_string(&feed).unwrap();
        let fixed_in = ">0:4.18.0-80.1.2.el8_0</unix-def:os_release>";
        assert!(fixture.contains(fixed_in));
        std::fs::write(
            &running_feed,
            fixture.replace(fixed_in, ">0:99999.0-1</unix-def:os_release>"),
        )
        .unwrap();
        let database = Database::open(&running_db).await.unwrap();
        database
            .import_path(&running_feed, palisade_vulndb::Limits::default())
            .await
            .unwrap();
        database.close().await;
        assert_eq!(
            vulnerabilities_of(&no_grubenv, &running_db, true).await,
            [("RHSA-2024:9201".to_owned(), vec!["1-2.el8".to_owned()])]
        );
        assert_eq!(host_vulnerabilities(&no_grubenv, &running_db).await, []);
    }
}
