//! The in-memory cache of the API server's objects, what it resolves for a pod (namespace,
//! owners, services), and the counters of what went wrong.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use palisade_event::{Event, K8sMeta, K8sObject};

use crate::objects::{Limits, Object, ResourceKind};

/// Objects of one kind by namespace and name (unique at any time).
type Objects = BTreeMap<(String, String), Object>;

/// The cache the watchers fill and the detection thread reads.
pub(crate) struct Store {
    objects: RwLock<[Objects; 6]>,
    /// Bumped whenever a change could alter what a pod resolves to; readers keep what they
    /// resolved until it moves.
    generation: AtomicU64,
    /// Per kind: a list has been read (since the start).
    listed: [AtomicBool; 6],
    pub stats: Stats,
    pub limits: Limits,
}

impl Store {
    pub fn new(limits: Limits) -> Store {
        Store {
            objects: RwLock::new(Default::default()),
            generation: AtomicU64::new(0),
            listed: Default::default(),
            stats: Stats::default(),
            limits,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, [Objects; 6]> {
        // A panic while holding the lock cannot leave a map half-changed in a way that
        // matters (every change is one insert or remove), so a poisoned lock is used as is.
        self.objects
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, [Objects; 6]> {
        self.objects
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces every object of `kind` with a fresh list's (objects deleted while no watch
    /// ran disappear).
    pub fn replace(&self, kind: ResourceKind, listed: Vec<Object>) {
        let mut objects = Objects::new();
        let mut refused = 0u64;
        for object in listed {
            if objects.len() >= self.limits.max_objects_per_kind {
                refused += 1;
                continue;
            }
            objects.insert((object.namespace.clone(), object.name.clone()), object);
        }
        if refused > 0 {
            self.stats
                .over_capacity
                .fetch_add(refused, Ordering::Relaxed);
            self.stats.record_error(format!(
                "{refused} {}s beyond the limit of {} per kind were not kept",
                kind.kind_name(),
                self.limits.max_objects_per_kind
            ));
        }
        let mut all = self.write();
        if all[kind.index()] != objects {
            all[kind.index()] = objects;
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Adds or changes one object (a watch's ADDED or MODIFIED).
    pub fn upsert(&self, kind: ResourceKind, object: Object) {
        let key = (object.namespace.clone(), object.name.clone());
        let mut all = self.write();
        let objects = &mut all[kind.index()];
        if let Some(existing) = objects.get_mut(&key) {
            if *existing != object {
                *existing = object;
                self.generation.fetch_add(1, Ordering::Release);
            }
        } else if objects.len() >= self.limits.max_objects_per_kind {
            drop(all);
            self.stats.over_capacity.fetch_add(1, Ordering::Relaxed);
            self.stats.record_error(format!(
                "{} {}/{} not kept: the limit of {} per kind is reached",
                kind.kind_name(),
                key.0,
                key.1,
                self.limits.max_objects_per_kind
            ));
        } else {
            objects.insert(key, object);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Removes one object (a watch's DELETED).
    pub fn remove(&self, kind: ResourceKind, object: &Object) {
        let key = (object.namespace.clone(), object.name.clone());
        if self.write()[kind.index()].remove(&key).is_some() {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    pub fn mark_listed(&self, kind: ResourceKind) {
        self.listed[kind.index()].store(true, Ordering::Release);
    }

    /// Every kind has been listed at least once.
    pub fn synced(&self) -> bool {
        self.listed
            .iter()
            .all(|listed| listed.load(Ordering::Acquire))
    }

    /// The watchers' counters, the objects kept per kind and whether every kind was listed.
    pub fn snapshot(&self) -> StatsSnapshot {
        let all = self.read();
        let objects = ResourceKind::ALL.map(|kind| (kind, all[kind.index()].len()));
        drop(all);
        self.stats.snapshot(objects, self.synced())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What the API server says about the pod `namespace/name` with `uid`: `None` when the
    /// cache holds no such pod (not yet listed, deleted, or a pod of that name with another
    /// uid).
    pub fn resolve(&self, namespace: &str, name: &str, uid: &str) -> Option<K8sMeta> {
        let all = self.read();
        let in_namespace = |kind: ResourceKind, name: &str| {
            all[kind.index()].get(&(namespace.to_owned(), name.to_owned()))
        };
        let pod = in_namespace(ResourceKind::Pod, name).filter(|pod| pod.uid == uid)?;
        let owned = |object: &Object, kind: ResourceKind| {
            let owner = object.owner(kind)?;
            in_namespace(kind, &owner.name).filter(|found| found.uid == owner.uid)
        };
        let replica_set = owned(pod, ResourceKind::ReplicaSet);
        let deployment = replica_set.and_then(|rs| owned(rs, ResourceKind::Deployment));
        let services = all[ResourceKind::Service.index()]
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((service_namespace, _), _)| service_namespace == namespace)
            .map(|(_, service)| service)
            .filter(|service| selects(&service.selector, &pod.labels))
            .map(identity)
            .collect();
        Some(K8sMeta {
            pod: identity(pod),
            pod_ip: pod.pod_ip.clone(),
            namespace: all[ResourceKind::Namespace.index()]
                .get(&(String::new(), namespace.to_owned()))
                .map(identity),
            replica_set: replica_set.map(identity),
            deployment: deployment.map(identity),
            replication_controller: owned(pod, ResourceKind::ReplicationController).map(identity),
            services,
            probes: pod.probes.clone(),
        })
    }
}

fn identity(object: &Object) -> K8sObject {
    K8sObject {
        name: object.name.clone(),
        uid: object.uid.clone(),
        labels: object.labels.clone(),
    }
}

/// A service selects a pod when its selector is not empty and every entry is among the pod's
/// labels (an empty selector selects nothing: such a service's endpoints are managed by hand).
fn selects(selector: &[(String, String)], labels: &[(String, String)]) -> bool {
    !selector.is_empty()
        && selector.iter().all(|(key, value)| {
            labels
                .binary_search_by(|(label, _)| label.cmp(key))
                .is_ok_and(|index| labels[index].1 == *value)
        })
}

/// What the watchers did and what went wrong, since the start.
#[derive(Default)]
pub(crate) struct Stats {
    pub lists: AtomicU64,
    pub watch_events: AtomicU64,
    pub bookmarks: AtomicU64,
    pub relists_after_gone: AtomicU64,
    pub failures: AtomicU64,
    pub malformed: AtomicU64,
    pub oversized: AtomicU64,
    pub over_capacity: AtomicU64,
    /// Per kind: the API server answered since the start, and the kind's last request
    /// failed.
    answered: [AtomicBool; 6],
    failing: [AtomicBool; 6],
    /// When a request last answered, in milliseconds after the Unix epoch (0: never).
    last_sync_unix_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    /// The API server answered a list or watch of `kind`: the kind's reflector is in step
    /// with it now.
    pub fn record_contact(&self, kind: ResourceKind) {
        self.answered[kind.index()].store(true, Ordering::Relaxed);
        self.failing[kind.index()].store(false, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        self.last_sync_unix_ms.store(now, Ordering::Relaxed);
    }

    /// A request for `kind` failed (no answer, refused credentials, an error status, a
    /// broken stream): counted, kept as the last error, logged, and the kind is failing until
    /// its next answer.
    pub fn record_failure(&self, kind: ResourceKind, message: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.failing[kind.index()].store(true, Ordering::Relaxed);
        self.record_error(message);
    }

    /// Keeps `message` as the last error and logs it.
    pub fn record_error(&self, message: String) {
        tracing::warn!(error = %message, "Kubernetes metadata: an error.");
        *self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(message);
    }

    fn snapshot(&self, objects: [(ResourceKind, usize); 6], synced: bool) -> StatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let last_sync_ms = load(&self.last_sync_unix_ms);
        let failing: Vec<ResourceKind> = ResourceKind::ALL
            .into_iter()
            .filter(|kind| self.failing[kind.index()].load(Ordering::Relaxed))
            .collect();
        StatsSnapshot {
            reachable: failing.is_empty()
                && self
                    .answered
                    .iter()
                    .any(|answered| answered.load(Ordering::Relaxed)),
            failing,
            synced,
            last_sync: (last_sync_ms > 0)
                .then(|| UNIX_EPOCH + std::time::Duration::from_millis(last_sync_ms)),
            objects: objects.to_vec(),
            lists: load(&self.lists),
            watch_events: load(&self.watch_events),
            bookmarks: load(&self.bookmarks),
            relists_after_gone: load(&self.relists_after_gone),
            failures: load(&self.failures),
            malformed: load(&self.malformed),
            oversized: load(&self.oversized),
            over_capacity: load(&self.over_capacity),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

/// The watchers' counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// The API server answered, and no kind's last request failed; false before the first
    /// answer and while any kind fails (a role that may not list one kind, too).
    pub reachable: bool,
    /// The kinds whose last request failed.
    pub failing: Vec<ResourceKind>,
    /// Every kind has been listed at least once since the start.
    pub synced: bool,
    /// When the API server last answered a list or a watch (an event, a bookmark, the end
    /// of a watch); `None` before the first answer.
    pub last_sync: Option<SystemTime>,
    /// Objects kept in the cache, per kind (in [`ResourceKind::ALL`] order).
    pub objects: Vec<(ResourceKind, usize)>,
    /// Complete lists read (every page of one).
    pub lists: u64,
    /// ADDED, MODIFIED and DELETED events applied.
    pub watch_events: u64,
    /// BOOKMARK events.
    pub bookmarks: u64,
    /// Lists read again because a resource version was gone (410).
    pub relists_after_gone: u64,
    /// Requests that failed (no answer, an error status, a broken stream).
    pub failures: u64,
    /// Objects or watch events that were not valid JSON of their kind (skipped).
    pub malformed: u64,
    /// Objects or watch events larger than [`Limits::max_object_bytes`] (skipped).
    pub oversized: u64,
    /// Objects not kept because their kind held [`Limits::max_objects_per_kind`] already.
    pub over_capacity: u64,
    /// The last error, as logged.
    pub last_error: Option<String>,
}

/// Attaches the cache's metadata to events, remembering what it resolved per pod until the
/// cache changes: an event of a known pod costs one hash lookup. Owned by the thread that
/// evaluates events.
pub struct PodMetaLookup {
    store: Arc<Store>,
    resolved: HashMap<String, Option<Arc<K8sMeta>>>,
    generation: u64,
}

/// Pods remembered at most; the memory is cleared when full (a node runs ~110 pods).
const MAX_REMEMBERED_PODS: usize = 4096;

impl PodMetaLookup {
    pub(crate) fn new(store: Arc<Store>) -> PodMetaLookup {
        PodMetaLookup {
            generation: store.generation(),
            store,
            resolved: HashMap::new(),
        }
    }

    /// Sets `event.k8s_meta` from the pod the container runtime named (its namespace, name
    /// and UID), or leaves it `None` when the cache does not know the pod.
    pub fn attach(&mut self, event: &mut Event) {
        let Some(pod) = event
            .container
            .as_ref()
            .and_then(|container| container.k8s.as_ref())
            .filter(|pod| !pod.pod_uid.is_empty())
        else {
            return;
        };
        let generation = self.store.generation();
        if generation != self.generation || self.resolved.len() >= MAX_REMEMBERED_PODS {
            self.resolved.clear();
            self.generation = generation;
        }
        let meta = match self.resolved.get(&pod.pod_uid) {
            Some(meta) => meta.clone(),
            None => {
                let meta = self
                    .store
                    .resolve(&pod.namespace, &pod.pod_name, &pod.pod_uid)
                    .map(Arc::new);
                self.resolved.insert(pod.pod_uid.clone(), meta.clone());
                meta
            }
        };
        event.k8s_meta = meta;
    }
}
