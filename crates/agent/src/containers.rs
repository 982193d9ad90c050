//! The containers running on this node, from every runtime the agent can read without a
//! daemon's API: podman (`podman ps`), runc's state directories (`/run/runc/<id>/state.json`,
//! which podman's and plain runc's containers share) and containerd's runc shims
//! (`/run/containerd/runc/<namespace>/<id>/state.json`).
//!
//! A container is found by its init process; its name, image and image digest come from the
//! runtimes' own metadata through the sensor's [`ContainerResolver`] (containers-storage and
//! libpod for podman, containerd's bolt `meta.db`), so there is one reader of those formats.
//! A state file whose pid now belongs to another process (the container stopped and the pid
//! was reused) is recognised by the process start time runc recorded, and skipped.
//!
//! The same metadata says where a stopped container's files are on the host
//! ([`stopped_container_root`]), for restoring a quarantined file into it.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use palisade_malware::StoppedRoot;
use palisade_model::AffectedAsset;
use palisade_sensor::{ContainerResolver, MetadataRoots};

use crate::ScanConfig;

/// Where containerd's runc shims keep their state (`<dir>/<namespace>/<id>/state.json`).
const CONTAINERD_RUNC_STATE: &str = "/run/containerd/runc";
/// The largest runc state file read.
const MAX_STATE_FILE: u64 = 4 * 1024 * 1024;

/// A running container, by its init process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunningContainer {
    /// The runtime's id.
    pub(crate) id: String,
    /// The runtime's name (the id when the runtime has no names).
    pub(crate) name: String,
    /// The image reference; empty for a plain runc container.
    pub(crate) image: String,
    /// The image digest (`sha256:...`); empty when unknown.
    pub(crate) image_digest: String,
    /// The host pid of the container's init process.
    pub(crate) pid: u32,
}

impl RunningContainer {
    /// The container's root file system, seen through its init process.
    pub(crate) fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The container as an affected asset of node `host`.
    pub(crate) fn asset(&self, host: &AffectedAsset) -> AffectedAsset {
        let known = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        AffectedAsset {
            container_id: Some(self.id.clone()),
            container_name: Some(self.name.clone()),
            image: known(&self.image),
            image_digest: known(&self.image_digest),
            ..host.clone()
        }
    }

    /// The asset of the container's image (what a vulnerability is found in): the image by
    /// digest, or the container itself when its image is unknown (a plain runc bundle).
    pub(crate) fn image_asset(&self, host: &AffectedAsset) -> AffectedAsset {
        if self.image_digest.is_empty() {
            self.asset(host)
        } else {
            AffectedAsset {
                image: Some(if self.image.is_empty() {
                    self.image_digest.clone()
                } else {
                    self.image.clone()
                }),
                image_digest: Some(self.image_digest.clone()),
                ..host.clone()
            }
        }
    }

    /// The key of the container's image among kept inventories: the digest, so an image is
    /// inventoried once however many containers run it; `container:<id>` without one.
    pub(crate) fn inventory_key(&self) -> String {
        if self.image_digest.is_empty() {
            format!("container:{}", self.id)
        } else {
            self.image_digest.clone()
        }
    }
}

/// Every running container this agent can find (none when no runtime is installed).
pub(crate) async fn running_containers(config: &ScanConfig) -> Vec<RunningContainer> {
    let roots = MetadataRoots {
        containerd_db: config
            .containerd_root
            .join("io.containerd.metadata.v1.bolt/meta.db"),
        containerd_tasks: config
            .containerd_state
            .join("io.containerd.runtime.v2.task"),
        ..MetadataRoots::default()
    };
    tokio::task::spawn_blocking(move || {
        let podman = podman_ps();
        let state_dirs = runc_state_dirs(&roots.runc_state_dirs, Path::new(CONTAINERD_RUNC_STATE));
        let resolver = ContainerResolver::new(roots);
        discover(&podman, &state_dirs, &resolver, Path::new("/proc"))
    })
    .await
    .unwrap_or_default()
}

/// The running podman containers (`podman ps --format json`); none when podman is absent.
fn podman_ps() -> Vec<RunningContainer> {
    let output = std::process::Command::new("podman")
        .args(["ps", "--format", "json", "--no-trunc"])
        .stdin(std::process::Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => parse_podman_ps(&output.stdout),
        Ok(output) => {
            tracing::warn!(stderr = %String::from_utf8_lossy(&output.stderr).trim(), "podman ps failed; podman's containers are found through runc's state only.");
            Vec::new()
        }
        // No podman on this host.
        Err(_) => Vec::new(),
    }
}

fn parse_podman_ps(json: &[u8]) -> Vec<RunningContainer> {
    let Ok(serde_json::Value::Array(containers)) = serde_json::from_slice(json) else {
        return Vec::new();
    };
    containers
        .iter()
        .filter_map(|container| {
            let pid = container.get("Pid")?.as_u64().filter(|pid| *pid > 0)?;
            let id = container.get("Id")?.as_str()?.to_owned();
            let image_id = container
                .get("ImageID")
                .and_then(|image| image.as_str())
                .unwrap_or_default();
            let image_digest = match image_id {
                "" => String::new(),
                id if id.contains(':') => id.to_owned(),
                id => format!("sha256:{id}"),
            };
            Some(RunningContainer {
                name: container
                    .get("Names")
                    .and_then(|names| names.get(0)?.as_str())
                    .unwrap_or(&id)
                    .to_owned(),
                image: container
                    .get("Image")
                    .and_then(|image| image.as_str())
                    .unwrap_or(image_id)
                    .to_owned(),
                image_digest,
                pid: u32::try_from(pid).ok()?,
                id,
            })
        })
        .collect()
}

/// runc's own state directories and one per containerd namespace (containerd's runc shims
/// keep their state there whatever containerd's `--state` is).
fn runc_state_dirs(runc: &[PathBuf], containerd: &Path) -> Vec<PathBuf> {
    let mut dirs = runc.to_vec();
    if let Ok(namespaces) = std::fs::read_dir(containerd) {
        let mut found: Vec<PathBuf> = namespaces
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        found.sort();
        dirs.extend(found);
    }
    dirs
}

/// What a runc `state.json` says about a container's init process.
#[derive(Debug, PartialEq, Eq)]
struct RuncState {
    id: String,
    pid: u32,
    /// The process start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    start_ticks: u64,
}

fn read_runc_state(path: &Path) -> Option<RuncState> {
    let state = read_metadata(path)
        .inspect_err(|reason| tracing::warn!(path = %path.display(), %reason, "Unreadable runc state; ignored."))
        .ok()??;
    Some(RuncState {
        id: state.get("id")?.as_str()?.to_owned(),
        pid: u32::try_from(state.get("init_process_pid")?.as_u64()?)
            .ok()
            .filter(|pid| *pid > 0)?,
        start_ticks: state.get("init_process_start")?.as_u64()?,
    })
}

/// A runtime's JSON metadata file, at most [`MAX_STATE_FILE`] bytes; `None` when it does not
/// exist, and why when it cannot be read.
fn read_metadata(path: &Path) -> Result<Option<serde_json::Value>, String> {
    let size = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    if size > MAX_STATE_FILE {
        return Err(format!(
            "{size} bytes, over the {MAX_STATE_FILE}-byte limit of runtime metadata"
        ));
    }
    let text = std::fs::read(path).map_err(|error| error.to_string())?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|error| format!("malformed JSON: {error}"))
}

/// Where the files of container `id` are on the host while no process of it runs, from the
/// runtimes' metadata: a stopped runc container's bundle `rootfs` (its state is kept until
/// `runc delete`), or a podman container's overlay layer in containers-storage — the merged
/// directory when it is still mounted, else the writable upper layer. A containerd
/// container's snapshots are mounted only by its daemon, so it is refused, as is anything the
/// metadata does not name, with what to do instead.
pub(crate) fn stopped_container_root(
    id: &str,
    roots: &MetadataRoots,
) -> Result<StoppedRoot, palisade_malware::Error> {
    let refuse = |reason: String| {
        palisade_malware::Error::Quarantine(format!(
            "container {id} has no running process, and {reason}; start the container and restore again"
        ))
    };
    // Ids name directories below the runtimes' roots: nothing but the runtimes' own
    // characters may reach a path.
    if id.is_empty()
        || id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(refuse(format!("{id:?} is not a container id")));
    }
    // A runc state whose rootfs a runtime mounted (podman's, containerd's) names an empty or
    // missing directory once the container stopped: writing there would put the file where
    // the container never looks, so such a state is passed over for the runtime's storage.
    let mut unmounted = None;
    for dir in runc_state_dirs(&roots.runc_state_dirs, Path::new(CONTAINERD_RUNC_STATE)) {
        let path = dir.join(id).join("state.json");
        let state = read_metadata(&path).map_err(|reason| {
            refuse(format!(
                "its runc state {} is unreadable: {reason}",
                path.display()
            ))
        })?;
        let Some(state) = state else { continue };
        let Some(rootfs) = state["config"]["rootfs"].as_str().map(PathBuf::from) else {
            return Err(refuse(format!(
                "its runc state {} names no rootfs",
                path.display()
            )));
        };
        let populated =
            std::fs::read_dir(&rootfs).is_ok_and(|mut entries| entries.next().is_some());
        if rootfs.is_absolute() && populated {
            return Ok(StoppedRoot::Directory(rootfs));
        }
        unmounted = Some(format!(
            "its root file system {} (from {}) is not mounted",
            rootfs.display(),
            path.display()
        ));
    }
    let containers_json = roots
        .podman_storage
        .join("overlay-containers/containers.json");
    let containers = read_metadata(&containers_json).map_err(|reason| {
        refuse(format!(
            "podman's {} is unreadable: {reason}",
            containers_json.display()
        ))
    })?;
    let layer = containers
        .as_ref()
        .and_then(|containers| containers.as_array())
        .and_then(|all| all.iter().find(|entry| entry["id"] == id))
        .and_then(|entry| entry["layer"].as_str());
    let Some(layer) = layer else {
        return Err(refuse(unmounted.unwrap_or_else(|| {
            "neither runc's state nor podman's storage knows it (containerd's stopped containers cannot be reached without its daemon)".to_owned()
        })));
    };
    if layer.is_empty() || !layer.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(refuse(format!(
            "podman's storage names the layer {layer:?}, which is not a layer id"
        )));
    }
    let layer_dir = roots.podman_storage.join("overlay").join(layer);
    let merged = layer_dir.join("merged");
    if is_mount_point(&merged, &layer_dir) {
        return Ok(StoppedRoot::Directory(merged));
    }
    let upper = layer_dir.join("diff");
    if !upper.is_dir() {
        return Err(refuse(format!(
            "its writable layer {} is missing",
            upper.display()
        )));
    }
    Ok(StoppedRoot::OverlayUpper(upper))
}

/// Whether `dir` is on another file system than `parent` (something is mounted on it).
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(dir), std::fs::metadata(parent)) {
        (Ok(dir), Ok(parent)) => dir.is_dir() && dir.dev() != parent.dev(),
        _ => false,
    }
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command, which may hold spaces).
fn process_start_ticks(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let after_command = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; the start time is field 22.
    after_command.split_whitespace().nth(19)?.parse().ok()
}

/// The process's cgroup v2 path (the `0::` line).
fn cgroup_path(proc: &Path, pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(proc.join(pid.to_string()).join("cgroup")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// podman's containers, then every live runc state not already found, with metadata from
/// the resolver.
fn discover(
    podman: &[RunningContainer],
    state_dirs: &[PathBuf],
    resolver: &ContainerResolver,
    proc: &Path,
) -> Vec<RunningContainer> {
    let mut containers = podman.to_vec();
    let mut pids: BTreeSet<u32> = containers.iter().map(|container| container.pid).collect();
    for dir in state_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut states: Vec<RuncState> = entries
            .flatten()
            .filter_map(|entry| read_runc_state(&entry.path().join("state.json")))
            .collect();
        states.sort_by(|a, b| a.id.cmp(&b.id));
        for state in states {
            if pids.contains(&state.pid)
                || process_start_ticks(proc, state.pid) != Some(state.start_ticks)
            {
                continue;
            }
            let metadata = cgroup_path(proc, state.pid)
                .and_then(|path| resolver.lookup(&path))
                .filter(|container| container.id == state.id);
            let (name, image, image_digest) = match metadata {
                Some(container) if !container.name.is_empty() => {
                    (container.name, container.image, container.image_digest)
                }
                Some(container) => (state.id.clone(), container.image, container.image_digest),
                None => (state.id.clone(), String::new(), String::new()),
            };
            pids.insert(state.pid);
            containers.push(RunningContainer {
                id: state.id,
                name,
                image,
                image_digest,
                pid: state.pid,
            });
        }
    }
    containers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_ps_gives_ids_names_image_digests_and_pids() {
        let json = br#"[{"Id":"abc","Names":["web"],"Image":"localhost/web:1","ImageID":"1234","Pid":42,"State":"running"},
            {"Id":"def","Image":"x","ImageID":"sha256:99","Pid":0,"State":"exited"}]"#;
        let containers = parse_podman_ps(json);
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0].image_digest, "sha256:1234");
        assert_eq!(containers[0].image, "localhost/web:1");
        assert_eq!(containers[0].name, "web");
        assert_eq!(containers[0].root(), Path::new("/proc/42/root"));
        assert!(parse_podman_ps(b"not json").is_empty());
    }

    /// A fake `/proc` and state directory: the live container is found, the one whose pid
    /// was reused by another process and the corrupt state file are skipped.
    #[test]
    fn runc_states_are_checked_against_the_process_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        for (pid, start) in [(100, 5555), (200, 7777)] {
            std::fs::create_dir_all(proc.join(pid.to_string())).unwrap();
            std::fs::write(
                proc.join(format!("{pid}/stat")),
                format!("{pid} (sleep (x) y) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 {start} 1000 10"),
            )
            .unwrap();
            std::fs::write(proc.join(format!("{pid}/cgroup")), format!("0::/c{pid}\n")).unwrap();
        }
        let states = dir.path().join("runc");
        for (id, pid, start) in [("live", 100, 5555), ("reused", 200, 1)] {
            std::fs::create_dir_all(states.join(id)).unwrap();
            std::fs::write(
                states.join(id).join("state.json"),
                serde_json::json!({"id": id, "init_process_pid": pid, "init_process_start": start})
                    .to_string(),
            )
            .unwrap();
        }
        std::fs::create_dir_all(states.join("corrupt")).unwrap();
        std::fs::write(states.join("corrupt/state.json"), "{\"id\": ").unwrap();
        let resolver = ContainerResolver::new(MetadataRoots {
            runc_state_dirs: vec![states.clone()],
            podman_storage: dir.path().join("none"),
            containerd_db: dir.path().join("none"),
            containerd_tasks: dir.path().join("none"),
        });
        let found = discover(&[], &[states], &resolver, &proc);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, "live");
        assert_eq!(found[0].pid, 100);
        assert_eq!(found[0].name, "live");
        assert_eq!(found[0].inventory_key(), "container:live");
        let host = palisade_model::AffectedAsset {
            cluster: "c".into(),
            node: Some("n".into()),
            ..Default::default()
        };
        let asset = found[0].image_asset(&host);
        assert_eq!(asset.container_id.as_deref(), Some("live"));
        assert_eq!(asset.image, None);
    }

    #[test]
    fn start_ticks_are_read_after_the_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("7")).unwrap();
        std::fs::write(
            dir.path().join("7/stat"),
            "7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0",
        )
        .unwrap();
        assert_eq!(process_start_ticks(dir.path(), 7), Some(987654));
        assert_eq!(process_start_ticks(dir.path(), 8), None);
    }

    /// Fake runtime metadata: a stopped runc container's populated rootfs; a podman container
    /// whose runc state names its unmounted merged directory, found by its writable layer;
    /// and the refusals, each saying why.
    #[test]
    fn a_stopped_containers_files_are_found_from_its_runtimes_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let states = dir.path().join("runc");
        let storage = dir.path().join("storage");
        let roots = MetadataRoots {
            runc_state_dirs: vec![states.clone()],
            podman_storage: storage.clone(),
            containerd_db: dir.path().join("none"),
            containerd_tasks: dir.path().join("none"),
        };
        let bundle_rootfs = dir.path().join("bundle/rootfs");
        std::fs::create_dir_all(bundle_rootfs.join("bin")).unwrap();
        let layer = "a1b2c3";
        let merged = storage.join("overlay").join(layer).join("merged");
        let upper = storage.join("overlay").join(layer).join("diff");
        std::fs::create_dir_all(&upper).unwrap();
        for (id, rootfs) in [("plain", &bundle_rootfs), ("podman", &merged)] {
            std::fs::create_dir_all(states.join(id)).unwrap();
            std::fs::write(
                states.join(id).join("state.json"),
                serde_json::json!({"id": id, "config": {"rootfs": rootfs}}).to_string(),
            )
            .unwrap();
        }
        std::fs::create_dir_all(storage.join("overlay-containers")).unwrap();
        std::fs::write(
            storage.join("overlay-containers/containers.json"),
            serde_json::json!([
                {"id": "podman", "layer": layer},
                {"id": "tampered", "layer": "../../etc"},
            ])
            .to_string(),
        )
        .unwrap();

        assert_eq!(
            stopped_container_root("plain", &roots).unwrap(),
            StoppedRoot::Directory(bundle_rootfs)
        );
        assert_eq!(
            stopped_container_root("podman", &roots).unwrap(),
            StoppedRoot::OverlayUpper(upper)
        );
        let refusal = |id: &str| stopped_container_root(id, &roots).unwrap_err().to_string();
        assert!(
            refusal("tampered").contains("not a layer id"),
            "{}",
            refusal("tampered")
        );
        assert!(
            refusal("../x").contains("not a container id"),
            "{}",
            refusal("../x")
        );
        let unknown = refusal("unknown-4f1e");
        assert!(
            unknown.contains("neither runc's state nor podman's storage knows it")
                && unknown.contains("start the container"),
            "{unknown}"
        );
        std::fs::write(states.join("plain/state.json"), "{\"id\": ").unwrap();
        assert!(
            refusal("plain").contains("malformed JSON"),
            "{}",
            refusal("plain")
        );
    }
}
