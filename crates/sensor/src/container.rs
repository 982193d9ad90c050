//! Container attribution: cgroup path → container id → the runtime's metadata.
//!
//! The kernel reports each event's cgroup v2 path (read from the task at event time, since
//! the directory is gone after the container exits). [`container_id_from_cgroup`] recognises
//! the naming schemes of podman (`libpod-<id>.scope`), docker (`docker-<id>.scope`),
//! containerd under systemd (`cri-containerd-<id>.scope`), cri-o (`crio-<id>.scope`),
//! the cgroupfs layouts of kubelet (`/kubepods/.../pod<uid>/<id>`), `ctr` (`/<namespace>/<id>`)
//! and plain runc (any directory named after a container in runc's state directory). The
//! [`ContainerResolver`] then reads the runtime's own metadata: runc's `state.json`,
//! containers-storage and libpod's bolt database for podman, containerd's bolt `meta.db`.
//! Kubernetes identity comes from the CRI labels on the container.

use std::path::{Path, PathBuf};

use palisade_event::{Container, HostNamespaces, K8sPod};
use serde_json::Value as Json;

use crate::bolt::{Bolt, Bucket, Value};
use crate::engine_config;

/// Which runtime's naming scheme identified a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// podman (`libpod-<id>`).
    Podman,
    /// docker (`docker-<id>`).
    Docker,
    /// containerd (`cri-containerd-<id>`, or `/<namespace>/<id>` from `ctr`).
    Containerd,
    /// cri-o (`crio-<id>`).
    CriO,
    /// A runc container known by its state directory, or a bare id whose runtime is found
    /// from the metadata stores.
    Runc,
}

/// Where the runtimes keep their metadata; the defaults are the runtimes' own defaults.
#[derive(Debug, Clone)]
pub struct MetadataRoots {
    /// runc state directories (`<dir>/<id>/state.json`), including containerd's runc shims.
    pub runc_state_dirs: Vec<PathBuf>,
    /// containers-storage root (podman).
    pub podman_storage: PathBuf,
    /// containerd's metadata database.
    pub containerd_db: PathBuf,
    /// containerd's task state directory (`<dir>/<namespace>/<id>` exists while a task runs).
    pub containerd_tasks: PathBuf,
}

impl Default for MetadataRoots {
    fn default() -> MetadataRoots {
        MetadataRoots {
            runc_state_dirs: vec![PathBuf::from("/run/runc")],
            podman_storage: PathBuf::from("/var/lib/containers/storage"),
            containerd_db: PathBuf::from(
                "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
            ),
            containerd_tasks: PathBuf::from("/run/containerd/io.containerd.runtime.v2.task"),
        }
    }
}

/// Extracts the container id (and the runtime whose naming scheme matched) from a cgroup
/// path; `None` for host cgroups. Directories named freely by the caller of the runtime
/// (runc's `cgroupsPath`, `ctr`'s `/<namespace>/<id>`) are recognised only when `known`
/// (given the parent directory's name and the leaf's) says which runtime has such a container.
pub fn container_id_from_cgroup(
    cgroup_path: &str,
    known: impl Fn(Option<&str>, &str) -> Option<Runtime>,
) -> Option<(Runtime, String)> {
    let components: Vec<&str> = cgroup_path
        .split('/')
        .filter(|part| !part.is_empty())
        .collect();
    for component in components.iter().rev() {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        let prefixed = [
            ("libpod-", Runtime::Podman),
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
        ];
        for (prefix, runtime) in prefixed {
            if let Some(id) = name
                .strip_prefix(prefix)
                .filter(|id| is_container_hex_id(id))
            {
                return Some((runtime, id.to_owned()));
            }
        }
        if is_container_hex_id(name) {
            return Some((Runtime::Runc, name.to_owned()));
        }
    }
    let (leaf, parents) = components.split_last()?;
    let runtime = known(parents.last().copied(), leaf)?;
    Some((runtime, (*leaf).to_owned()))
}

/// A single path component that cannot escape the directory it is joined to.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

impl Runtime {
    /// The runtime's name as Falco's `container.type` names it, when the cgroup's naming
    /// scheme names one (`""` for a plain runc container or a bare id, whose store says).
    pub(crate) fn engine_name(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Runc => "",
        }
    }
}

fn is_container_hex_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// How much of a container's metadata a store had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metadata {
    /// The store does not know the container (yet).
    Missing,
    /// The store knows the container but part of its metadata could not be read (podman's
    /// database lacks the container while podman is still creating it, or was read while
    /// podman wrote it): looked up again.
    Partial,
    /// Everything the store keeps.
    Complete,
}

/// Reads the runtimes' metadata stores: what container a cgroup path is, and its metadata.
/// Reads files on every call; the sensor calls it from its look-up workers
/// ([`crate::ContainerAttribution`]), never from the thread that drains events.
#[derive(Debug)]
pub struct ContainerResolver {
    roots: MetadataRoots,
}

impl ContainerResolver {
    /// A resolver reading the given metadata locations.
    pub fn new(roots: MetadataRoots) -> ContainerResolver {
        ContainerResolver { roots }
    }

    /// The id of the container a cgroup path names, without its metadata (`None`: the
    /// host). Reads no metadata file, but a cgroup named freely (runc's `cgroupsPath`,
    /// `ctr`'s `/<namespace>/<id>`) costs a look for runc's state and containerd's task.
    pub(crate) fn container_id(&self, cgroup_path: &str) -> Option<String> {
        self.id_for(cgroup_path).map(|(_, id)| id)
    }

    fn id_for(&self, cgroup_path: &str) -> Option<(Runtime, String)> {
        container_id_from_cgroup(cgroup_path, |parent, leaf| {
            if self.runc_state(leaf).is_some() {
                return Some(Runtime::Runc);
            }
            let namespace = parent.filter(|name| is_safe_name(name))?;
            let task = self.roots.containerd_tasks.join(namespace).join(leaf);
            (is_safe_name(leaf) && task.is_dir()).then_some(Runtime::Containerd)
        })
    }

    fn runc_state(&self, id: &str) -> Option<PathBuf> {
        if !is_safe_name(id) {
            return None;
        }
        self.roots
            .runc_state_dirs
            .iter()
            .map(|dir| dir.join(id).join("state.json"))
            .find(|path| path.is_file())
    }

    /// Looks a cgroup path up in every metadata store; a container whose metadata is not
    /// (yet) found is still reported with its id.
    pub fn lookup(&self, cgroup_path: &str) -> Option<Container> {
        self.lookup_with_metadata(cgroup_path)
            .map(|(container, _)| container)
    }

    /// [`ContainerResolver::lookup`], and how much of the runtime's metadata was found.
    pub(crate) fn lookup_with_metadata(&self, cgroup_path: &str) -> Option<(Container, Metadata)> {
        let (runtime, id) = self.id_for(cgroup_path)?;
        let mut container = Container {
            id: id.clone(),
            ..Container::default()
        };
        // Which store had the container's metadata, named as Falco's container.type names
        // runtimes ("" for runc's own state: a plain runc container has no engine there).
        type Fill = fn(&ContainerResolver, &mut Container) -> Metadata;
        let stores: &[(&str, Fill)] = match runtime {
            Runtime::Podman => &[("podman", Self::fill_podman)],
            Runtime::Containerd => &[("containerd", Self::fill_containerd)],
            _ => &[
                ("containerd", Self::fill_containerd),
                ("podman", Self::fill_podman),
                ("", Self::fill_runc),
            ],
        };
        let (answered, metadata) = stores
            .iter()
            .map(|(store, fill)| (Some(*store), fill(self, &mut container)))
            .find(|(_, metadata)| *metadata != Metadata::Missing)
            .unwrap_or((None, Metadata::Missing));
        // A cgroup named by an engine names the runtime even before its metadata exists
        // (docker's and CRI-O's containers are read through runc's or containerd's state).
        container.runtime = match runtime {
            Runtime::Runc => answered.unwrap_or_default(),
            named => named.engine_name(),
        }
        .to_owned();
        container.metadata_missing = metadata != Metadata::Complete;
        if container.metadata_missing {
            tracing::debug!(%id, cgroup_path, ?metadata, "Runtime metadata for container incomplete.");
        }
        container.labels.sort();
        container.k8s = k8s_identity(&container.labels);
        container.host_namespaces = self.host_namespaces_of(&container.id);
        Some((container, metadata))
    }

    /// The host namespaces container `id` shares, from runc's state: every runtime here starts
    /// its containers with runc (podman's state is runc's too).
    pub(crate) fn host_namespaces_of(&self, id: &str) -> Option<HostNamespaces> {
        self.runc_state(id)
            .and_then(|path| read_json(&path))
            .and_then(|state| host_namespaces(&state["config"]["namespaces"]))
    }

    fn fill_runc(&self, container: &mut Container) -> Metadata {
        let Some(path) = self.runc_state(&container.id) else {
            return Metadata::Missing;
        };
        let Some(state) = read_json(&path) else {
            return Metadata::Missing;
        };
        container.name = container.id.clone();
        container.start_time_ns = state["created"]
            .as_str()
            .and_then(parse_rfc3339_ns)
            .unwrap_or(0);
        if let Some(labels) = state["config"]["labels"].as_array() {
            container.labels = labels
                .iter()
                .filter_map(|label| label.as_str()?.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
        }
        Metadata::Complete
    }

    /// podman's metadata: name and image from containers-storage, labels and privilege from
    /// libpod's database. Partial while the database lacks the container (podman adds it
    /// after creating the storage container) or cannot be read (read while podman writes it).
    fn fill_podman(&self, container: &mut Container) -> Metadata {
        let storage = &self.roots.podman_storage;
        let Some(containers) = read_json(&storage.join("overlay-containers/containers.json"))
        else {
            return Metadata::Missing;
        };
        let Some(entry) = containers.as_array().and_then(|all| {
            all.iter()
                .find(|entry| entry["id"] == container.id.as_str())
        }) else {
            return Metadata::Missing;
        };
        let metadata: Json = entry["metadata"]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Json::Null);
        container.name = metadata["name"]
            .as_str()
            .or_else(|| entry["names"][0].as_str())
            .unwrap_or_default()
            .to_owned();
        container.image = metadata["image-name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        container.start_time_ns = entry["created"]
            .as_str()
            .and_then(parse_rfc3339_ns)
            .unwrap_or(0);
        let image_id = entry["image"].as_str().unwrap_or_default();
        container.image_id = image_id.to_owned();
        if let Some(images) = read_json(&storage.join("overlay-images/images.json"))
            && let Some(image) = images
                .as_array()
                .and_then(|all| all.iter().find(|image| image["id"] == image_id))
        {
            container.image_digest = image["digest"].as_str().unwrap_or_default().to_owned();
        }
        // Labels and privilege live in libpod's own database.
        let libpod_db = storage.join("libpod/bolt_state.db");
        if let Ok(bolt) = Bolt::open(&libpod_db)
            && let Ok(Some(Value::Data(config))) = bolt
                .bucket_path(&[b"ctr", container.id.as_bytes()])
                .and_then(|bucket| match bucket {
                    Some(bucket) => bolt.get(&bucket, b"config"),
                    None => Ok(None),
                })
            && let Ok(config) = serde_json::from_slice::<Json>(config)
        {
            container.labels = json_labels(&config["labels"]);
            container.privileged = config["privileged"].as_bool().unwrap_or(false);
            // The spec podman handed the runtime: each bind as mounted.
            let runtime_spec = is_safe_name(&container.id)
                .then(|| {
                    read_json(
                        &storage
                            .join("overlay-containers")
                            .join(&container.id)
                            .join("userdata/config.json"),
                    )
                })
                .flatten();
            container.mounts = Some(engine_config::podman_mounts(
                &config,
                runtime_spec.as_ref(),
                |volume| {
                    // podman's local driver's path; a name that could leave it gives none.
                    if !is_safe_name(volume) {
                        return String::new();
                    }
                    let path = storage.join("volumes").join(volume).join("_data");
                    path.to_string_lossy().into_owned()
                },
            ));
            container.health_probes =
                Some(engine_config::docker_health_probes(&config["healthcheck"]));
            return Metadata::Complete;
        }
        Metadata::Partial
    }

    fn fill_containerd(&self, container: &mut Container) -> Metadata {
        let db = &self.roots.containerd_db;
        if !db.is_file() {
            return Metadata::Missing;
        }
        let bolt = match Bolt::open(db) {
            Ok(bolt) => bolt,
            Err(error) => {
                tracing::warn!(%error, "Cannot read containerd metadata.");
                return Metadata::Missing;
            }
        };
        let Ok(Some(v1)) = bolt.bucket_path(&[b"v1"]) else {
            return Metadata::Missing;
        };
        let Ok(namespaces) = bolt.entries(&v1) else {
            return Metadata::Missing;
        };
        for (_, value) in namespaces {
            let Value::Bucket(namespace_bucket) = value else {
                continue;
            };
            let Ok(Some(Value::Bucket(containers))) = bolt.get(&namespace_bucket, b"containers")
            else {
                continue;
            };
            let Ok(Some(Value::Bucket(entry))) = bolt.get(&containers, container.id.as_bytes())
            else {
                continue;
            };
            container.name = container.id.clone();
            if let Ok(Some(Value::Data(image))) = bolt.get(&entry, b"image") {
                container.image = String::from_utf8_lossy(image).into_owned();
            }
            if let Ok(Some(Value::Bucket(labels))) = bolt.get(&entry, b"labels") {
                container.labels = bolt
                    .entries(&labels)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(key, value)| match value {
                        Value::Data(value) => Some((
                            String::from_utf8_lossy(key).into_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        )),
                        Value::Bucket(_) => None,
                    })
                    .collect();
            }
            container.image_digest =
                containerd_image_digest(&bolt, &namespace_bucket, &container.image);
            return Metadata::Complete;
        }
        Metadata::Missing
    }
}

fn containerd_image_digest(bolt: &Bolt, namespace: &Bucket<'_>, image: &str) -> String {
    let digest = (|| {
        let Value::Bucket(images) = bolt.get(namespace, b"images").ok()?? else {
            return None;
        };
        let Value::Bucket(entry) = bolt.get(&images, image.as_bytes()).ok()?? else {
            return None;
        };
        let Value::Bucket(target) = bolt.get(&entry, b"target").ok()?? else {
            return None;
        };
        let Value::Data(digest) = bolt.get(&target, b"digest").ok()?? else {
            return None;
        };
        Some(String::from_utf8_lossy(digest).into_owned())
    })();
    digest.unwrap_or_default()
}

fn json_labels(labels: &Json) -> Vec<(String, String)> {
    labels
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The host namespaces a runc (libcontainer) configuration shares: a namespace type it does
/// not list is not created, so the container keeps the runtime's, the host's; one it joins by
/// path (a Kubernetes pod's sandbox) is the host's only when that path is the namespace the
/// sensor runs in: the agent runs in the host's namespaces, and those of the host's init
/// (`/proc/1/ns`) may be closed even to root (they are on the project's build machine).
fn host_namespaces(namespaces: &Json) -> Option<HostNamespaces> {
    let namespaces = namespaces.as_array()?;
    let shared_with_host = |config_type: &str, proc_name: &str| match namespaces
        .iter()
        .find(|entry| entry["type"] == config_type)
    {
        None => true,
        Some(entry) => entry["path"]
            .as_str()
            .filter(|path| !path.is_empty())
            .is_some_and(|path| {
                same_file(Path::new(path), &Path::new("/proc/self/ns").join(proc_name))
            }),
    };
    Some(HostNamespaces {
        pid: shared_with_host("NEWPID", "pid"),
        network: shared_with_host("NEWNET", "net"),
        ipc: shared_with_host("NEWIPC", "ipc"),
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Metadata files are small; anything larger is refused rather than read.
const MAX_METADATA_JSON: u64 = 64 * 1024 * 1024;

fn read_json(path: &Path) -> Option<Json> {
    let size = std::fs::metadata(path).ok()?.len();
    if size > MAX_METADATA_JSON {
        tracing::warn!(path = %path.display(), size, "Runtime metadata file too large; ignored.");
        return None;
    }
    let text = std::fs::read(path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(json) => Some(json),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "Malformed runtime metadata; ignored.");
            None
        }
    }
}

/// The Kubernetes identity the CRI records in container labels.
fn k8s_identity(labels: &[(String, String)]) -> Option<K8sPod> {
    let label = |key: &str| {
        labels
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    };
    let pod_name = label("io.kubernetes.pod.name")?;
    Some(K8sPod {
        pod_name,
        namespace: label("io.kubernetes.pod.namespace").unwrap_or_default(),
        pod_uid: label("io.kubernetes.pod.uid").unwrap_or_default(),
        container_name: label("io.kubernetes.container.name").unwrap_or_default(),
    })
}

/// Parses `2026-11-28T23:33:59.123456789Z` (or with a `+hh:mm` offset) to ns since the epoch.
fn parse_rfc3339_ns(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let (clock, offset_seconds) = match time.find(['Z', '+', '-']) {
        Some(at) => {
            let (clock, zone) = time.split_at(at);
            let offset = if zone == "Z" {
                0
            } else {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (hours, minutes) = zone[1..].split_once(':')?;
                sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60)
            };
            (clock, offset)
        }
        None => (time, 0),
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms_parts = hms.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (hms_parts.next()??, hms_parts.next()??, hms_parts.next()??);
    let nanos: i64 = format!("{fraction:0<9}").get(..9)?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let year_adjusted = if month <= 2 { year - 1 } else { year };
    let era = year_adjusted.div_euclid(400);
    let year_of_era = year_adjusted - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    u64::try_from(seconds * 1_000_000_000 + nanos).ok()
}

#[cfg(test)]
pub(crate) mod test_roots;

#[cfg(test)]
mod tests {
    use palisade_event::HostNamespaces;

    use crate::container::test_roots::metadata_roots_in;
    use crate::container::{
        ContainerResolver, Runtime, container_id_from_cgroup, parse_rfc3339_ns,
    };

    const ID: &str = "3f5bd9c0e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

    /// The host namespaces come from runc's configuration: a type it does not create is the
    /// host's; one joined by path is the host's only when the path is the host's namespace.
    #[test]
    fn host_namespaces_from_runc_state() {
        let dir = tempfile::tempdir().unwrap();
        let roots = metadata_roots_in(dir.path());
        let runc = roots.runc_state_dirs[0].clone();
        let resolver = ContainerResolver::new(roots);
        let cgroup = format!("/machine.slice/libpod-{ID}.scope");
        let unknown = resolver.lookup(&cgroup).unwrap();
        assert_eq!(unknown.host_namespaces, None);
        // The cgroup's naming scheme names the runtime even without its metadata.
        assert_eq!(unknown.runtime, "podman");
        std::fs::create_dir_all(runc.join(ID)).unwrap();
        let with = |namespaces: serde_json::Value| {
            let state = serde_json::json!({"config": {"namespaces": namespaces}});
            std::fs::write(runc.join(ID).join("state.json"), state.to_string()).unwrap();
            resolver.lookup(&cgroup).unwrap().host_namespaces.unwrap()
        };
        // podman run --network host --pid host: only IPC, UTS and mount are created.
        assert_eq!(
            with(serde_json::json!([
                {"type": "NEWIPC", "path": ""},
                {"type": "NEWUTS", "path": ""},
                {"type": "NEWNS", "path": ""},
            ])),
            HostNamespaces {
                pid: true,
                network: true,
                ipc: false
            }
        );
        // A pod container joins its sandbox's namespaces by path; the host's only by the
        // host's own.
        assert_eq!(
            with(serde_json::json!([
                {"type": "NEWPID", "path": ""},
                {"type": "NEWNET", "path": "/proc/self/ns/net"},
                {"type": "NEWIPC", "path": "/proc/2147483647/ns/ipc"},
            ])),
            HostNamespaces {
                pid: false,
                network: true,
                ipc: false
            }
        );
    }

    #[test]
    fn cgroup_naming_schemes() {
        let none = |_: Option<&str>, _: &str| None;
        let cases = [
            (format!("/libpod_parent/libpod-{ID}"), Some(Runtime::Podman)),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                Some(Runtime::Podman),
            ),
            (
                format!("/system.slice/docker-{ID}.scope"),
                Some(Runtime::Docker),
            ),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/cri-containerd-{ID}.scope"),
                Some(Runtime::Containerd),
            ),
            (
                format!("/kubepods/burstable/pod1234/{ID}"),
                Some(Runtime::Runc),
            ),
            (format!("/crio-{ID}"), Some(Runtime::CriO)),
        ];
        for (path, runtime) in cases {
            let found = container_id_from_cgroup(&path, none);
            assert_eq!(
                found.as_ref().map(|(runtime, _)| *runtime),
                runtime,
                "{path}"
            );
            assert_eq!(found.unwrap().1, ID, "{path}");
        }
        assert_eq!(
            container_id_from_cgroup("/user.slice/user-0.slice/session-1.scope", none),
            None
        );
        assert_eq!(container_id_from_cgroup("/", none), None);
        assert_eq!(
            container_id_from_cgroup("/system.slice/cron.service", none),
            None
        );
        let ctr = |parent: Option<&str>, leaf: &str| {
            (parent == Some("default") && leaf == "web").then_some(Runtime::Containerd)
        };
        assert_eq!(
            container_id_from_cgroup("/default/web", ctr),
            Some((Runtime::Containerd, "web".into())),
            "ctr's /<namespace>/<id>"
        );
        let runc = |_: Option<&str>, leaf: &str| (leaf == "mybox").then_some(Runtime::Runc);
        assert_eq!(
            container_id_from_cgroup("/palisade/a/b/mybox", runc),
            Some((Runtime::Runc, "mybox".into()))
        );
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(
            parse_rfc3339_ns("1970-01-01T00:00:01Z"),
            Some(1_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2000-03-01T01:00:00+01:00"),
            Some(951_868_800_000_000_000)
        );
        assert_eq!(parse_rfc3339_ns("garbage"), None);
    }
}
