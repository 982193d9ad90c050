//! Container attribution on the event path, without file I/O: a cache of each cgroup's
//! container, filled by look-up workers that read the runtimes' metadata stores.
//!
//! The thread that drains the ring buffer must never wait for a metadata store: podman's
//! `containers.json` grows with every container on the host and libpod's database can be
//! held by podman, so one look-up can take milliseconds or much longer, and the kernel drops
//! what it cannot put into a ring nobody drains. [`ContainerAttribution::resolve`] answers
//! from the cache only. A cgroup it has not looked up yet, or one whose look-up should be
//! repeated (a container whose metadata was not complete, or whose host namespaces runc
//! had not written yet), gets a look-up queued for the workers ([`LOOKUP_WORKERS`] threads,
//! at most one look-up per cgroup in flight, at most [`MAX_QUEUED_LOOKUPS`] waiting; a
//! look-up that finds the queue full is counted and asked for again by a later event), and
//! the answer says the look-up is pending, so the caller can hold the event until
//! [`ContainerAttribution::take_answers`] brings it. Meanwhile the best answer is what the
//! cgroup's name says (a container's id and runtime, `metadata_missing`), or the host.
//!
//! Look-ups are repeated on the same schedule as before they moved off the event path: a
//! container whose runtime metadata is missing (or partial, such as podman's labels before
//! libpod's database has the container) and a host cgroup (which could be a container whose
//! runtime has not written its state yet) on each of the first [`EAGER_EXEC_LOOKUPS`]
//! execs, otherwise after [`NEGATIVE_CACHE`] doubling up to [`MAX_RETRY_DELAY`].
//!
//! The workers also read the user and group names of each container's root file system
//! ([`crate::names`]) when they find the container, and the host's at start, so a
//! [`Resolution`] carries the names the event's root defines and a held event leaves with
//! them. The names are read again when an exec, or an id without a name, meets names read
//! at least [`NAMES_REFRESH`] ago: the worker compares the files' identities and reads only a
//! changed file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_event::{Container, HostNamespaces, SharedStr};

use crate::container::{ContainerResolver, Metadata, MetadataRoots, container_id_from_cgroup};
use crate::names::{NamesRoot, RootNames};
use crate::process::{ProcessInfo, UserNames};

/// How many threads look metadata up: one slow store (a huge `containers.json`, a database
/// podman holds) delays the look-ups of other cgroups only when every worker waits for it.
pub const LOOKUP_WORKERS: usize = 2;

/// How many look-ups may wait for a worker; more are counted
/// ([`ContainerAttribution::lookups_dropped`]) and asked for again by the cgroup's next event.
pub const MAX_QUEUED_LOOKUPS: usize = 1024;

/// How long an unattributed cgroup, or a container whose runtime metadata was not (fully)
/// found, is remembered before its metadata is looked up again (a runtime may write its
/// metadata just after the first process starts); the wait doubles with every further miss
/// up to [`MAX_RETRY_DELAY`].
pub const NEGATIVE_CACHE: Duration = Duration::from_secs(1);

/// The longest wait between two look-ups of a cgroup whose metadata is still missing: a
/// container whose runtime keeps its metadata where the resolver does not look (or a busy
/// host cgroup) costs one look-up per cgroup per this time, not one per event.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(32);

/// How many look-ups an exec may trigger at once, without waiting for the delay: a runtime's
/// first execs can precede its metadata by milliseconds, and the exec is the event rules
/// read the container of most.
pub const EAGER_EXEC_LOOKUPS: u32 = 8;

/// How old a root's names must be before an exec, or an id they do not name, has them read
/// again (only a changed file is): a user added in a container (`useradd`, then `su` to it)
/// is named from its next exec, with at most one re-read per root per this time.
pub const NAMES_REFRESH: Duration = Duration::from_secs(2);

/// How long a cgroup's entry is kept without an event of the cgroup: a node whose pods come
/// and go would otherwise keep every container it ever ran, with its labels and its root's
/// names. A quiet cgroup that was forgotten is looked up again at its next event.
pub const FORGET_UNUSED: Duration = Duration::from_secs(600);

/// How often the cache looks for entries to forget: each event marks its entry with the
/// current sweep's number, so the event path reads no clock for this.
const FORGET_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// When one kind of look-up is due again for a cgroup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetrySchedule {
    /// Look-ups so far that found no complete answer.
    pub(crate) misses: u32,
    /// When the last one was answered.
    pub(crate) looked_up: Instant,
}

impl RetrySchedule {
    fn new() -> RetrySchedule {
        RetrySchedule {
            misses: 0,
            looked_up: Instant::now(),
        }
    }

    /// Whether another look-up is due: on the first [`EAGER_EXEC_LOOKUPS`] execs at once,
    /// otherwise after the doubling delay.
    pub(crate) fn due(&self, exec: bool) -> bool {
        if exec && self.misses < EAGER_EXEC_LOOKUPS {
            return true;
        }
        let doublings = self.misses.saturating_sub(1).min(5);
        let delay = NEGATIVE_CACHE
            .saturating_mul(1 << doublings)
            .min(MAX_RETRY_DELAY);
        self.looked_up.elapsed() >= delay
    }

    fn missed(&mut self) {
        self.misses += 1;
        self.looked_up = Instant::now();
    }
}

/// What the event path knows of a cgroup's container now.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The best answer now (`None`: the host, as far as known): the cached container, or
    /// before the cgroup's first look-up answered, the container its name says (id and
    /// runtime only, `metadata_missing`).
    pub container: Option<Arc<Container>>,
    /// Whether a look-up this event should wait for is in flight: the cgroup's first, or
    /// for an exec, any look-up of the cgroup (a repeat for missing metadata or host
    /// namespaces, which the exec, the event rules read the container of most, would carry).
    pub pending: bool,
    /// The user and group names of the event's root file system: the container's, or the
    /// host's; `None` until they were read (or when they cannot be).
    pub(crate) names: Option<Arc<RootNames>>,
}

/// One root's names and the last time they were read.
#[derive(Debug)]
struct NamesSlot {
    names: Option<Arc<RootNames>>,
    read_at: Instant,
    in_flight: bool,
}

impl NamesSlot {
    fn new(names: Option<Arc<RootNames>>) -> NamesSlot {
        NamesSlot {
            names,
            read_at: Instant::now(),
            in_flight: false,
        }
    }

    /// Whether a re-read may be asked for now.
    fn refresh_due(&self) -> bool {
        !self.in_flight && self.read_at.elapsed() >= NAMES_REFRESH
    }

    /// Takes a read's result: new names, or (`None`) the old ones kept.
    fn answered(&mut self, names: Option<Arc<RootNames>>) {
        if names.is_some() {
            self.names = names;
        }
        self.read_at = Instant::now();
        self.in_flight = false;
    }
}

/// What the cache keeps for one cgroup.
#[derive(Debug)]
struct CgroupEntry {
    /// The best answer now (see [`Resolution::container`]).
    container: Option<Arc<Container>>,
    /// Whether a worker answered a look-up of this cgroup yet.
    answered: bool,
    /// Whether the answer is final: a container with all its runtime metadata. The host, or
    /// a container without (all) its metadata, is looked up again: labels such as the
    /// Kubernetes identity come with the metadata.
    complete: bool,
    /// Whether a look-up is queued or running.
    in_flight: bool,
    metadata_retry: RetrySchedule,
    /// Repeats of the host namespaces' look-up for a complete container without them: runc
    /// saves its state only after the container's first process (runc init) ran in the
    /// cgroup, so a container resolved from that process's events has its engine's metadata
    /// but not yet the host namespaces.
    namespaces_retry: RetrySchedule,
    /// Events that went out with the container while its metadata was missing.
    sent_without_metadata: u64,
    /// The names of the container's root (unused while the cgroup is the host's).
    names: NamesSlot,
    /// The sweep during which the cgroup's last event came ([`FORGET_UNUSED`]).
    used_in_sweep: u64,
}

/// What a worker is asked.
#[derive(Debug)]
enum Request {
    /// The container and its metadata for a cgroup path, and the names of its root as
    /// process `pid` (of the cgroup) sees it, unless unchanged since `previous_names` (a
    /// repeated look-up's).
    Container {
        cgroup_id: u64,
        cgroup_path: String,
        pid: u32,
        previous_names: Option<Arc<RootNames>>,
    },
    /// The host namespaces of a known container.
    HostNamespaces {
        cgroup_id: u64,
        container_id: String,
    },
    /// The names of a root again (`cgroup_id` `None`: the host's), unless unchanged since
    /// `previous`.
    Names {
        cgroup_id: Option<u64>,
        root: NamesRoot,
        previous: Option<Arc<RootNames>>,
    },
}

/// What a worker answers.
#[derive(Debug)]
enum Answer {
    Container {
        cgroup_id: u64,
        found: Option<Box<(Container, Metadata)>>,
        names: Option<Arc<RootNames>>,
    },
    HostNamespaces {
        cgroup_id: u64,
        found: Option<HostNamespaces>,
    },
    Names {
        cgroup_id: Option<u64>,
        names: Option<Arc<RootNames>>,
    },
}

/// The cache of cgroups' containers and the workers that fill it. The workers end when this
/// is dropped (one waiting for a store finishes that look-up first).
#[derive(Debug)]
pub struct ContainerAttribution {
    resolver: Arc<ContainerResolver>,
    by_cgroup: HashMap<u64, CgroupEntry>,
    requests: SyncSender<Request>,
    answers: Receiver<Answer>,
    in_flight: usize,
    lookups_dropped: u64,
    /// User or group files the workers read only up to their size limit (counted at each
    /// read, and a file unchanged since its last read is not read again).
    names_files_cut: Arc<AtomicU64>,
    /// The host's names, for the cgroups that are no container's.
    host_names: NamesSlot,
    /// Counts the names answered (a root's read for the first time or again): ancestries
    /// built before show the names of an older count ([`UserNames::generation`]).
    names_generation: u64,
    /// Sweeps for unused entries so far, and when the last one ran ([`FORGET_UNUSED`]).
    sweeps: u64,
    swept_at: Instant,
}

impl ContainerAttribution {
    /// A cache whose workers read the given metadata locations.
    pub fn new(roots: MetadataRoots) -> ContainerAttribution {
        let resolver = Arc::new(ContainerResolver::new(roots));
        let (requests, queued) = mpsc::sync_channel(MAX_QUEUED_LOOKUPS);
        let (answer_sender, answers) = mpsc::channel();
        let queued = Arc::new(Mutex::new(queued));
        let names_files_cut = Arc::new(AtomicU64::new(0));
        for n in 0..LOOKUP_WORKERS {
            let resolver = Arc::clone(&resolver);
            let queued = Arc::clone(&queued);
            let answer_sender = answer_sender.clone();
            let files_cut = Arc::clone(&names_files_cut);
            let spawned = std::thread::Builder::new()
                .name(format!("palisade-meta-{n}"))
                .spawn(move || {
                    look_up_until_closed(&resolver, &queued, &answer_sender, &files_cut);
                });
            if let Err(error) = spawned {
                // Fewer workers only make look-ups wait longer; with none, every look-up is
                // counted as dropped and events go out with what the cgroup's name says.
                tracing::error!(%error, "Cannot start a container metadata worker.");
            }
        }
        let mut attribution = ContainerAttribution {
            resolver,
            by_cgroup: HashMap::new(),
            requests,
            answers,
            in_flight: 0,
            lookups_dropped: 0,
            names_files_cut,
            host_names: NamesSlot::new(None),
            names_generation: 0,
            sweeps: 0,
            swept_at: Instant::now(),
        };
        attribution.request_names(None, || NamesRoot::Host);
        attribution
    }

    /// The container of cgroup `cgroup_id` from the cache, queuing a look-up when one is due
    /// (`cgroup_path` is called only then; `pid`, the event's process, is in the cgroup and
    /// shows the container's root). `exec` says the event is an exec, which repeats the
    /// look-ups of missing metadata eagerly and waits for them, and has names read at least
    /// [`NAMES_REFRESH`] ago read again. Never reads a file.
    pub fn resolve(
        &mut self,
        cgroup_id: u64,
        pid: u32,
        cgroup_path: impl FnOnce() -> String,
        exec: bool,
    ) -> Resolution {
        let sweep = self.sweeps;
        let Some(entry) = self.by_cgroup.get_mut(&cgroup_id) else {
            let path = cgroup_path();
            let container = container_named_by(&path);
            self.by_cgroup.insert(
                cgroup_id,
                CgroupEntry {
                    container: container.clone(),
                    answered: false,
                    complete: false,
                    in_flight: false,
                    metadata_retry: RetrySchedule::new(),
                    namespaces_retry: RetrySchedule::new(),
                    sent_without_metadata: 0,
                    names: NamesSlot::new(None),
                    used_in_sweep: sweep,
                },
            );
            self.request(Request::Container {
                cgroup_id,
                cgroup_path: path,
                pid,
                previous_names: None,
            });
            return Resolution {
                names: self.names_of(cgroup_id),
                container,
                pending: self.in_flight(cgroup_id),
            };
        };
        entry.used_in_sweep = sweep;
        // Called at most once, by whichever request needs it.
        let mut cgroup_path = Some(cgroup_path);
        let mut path = || cgroup_path.take().map(|path| path()).unwrap_or_default();
        let request = if entry.in_flight {
            None
        } else if !entry.answered || (!entry.complete && entry.metadata_retry.due(exec)) {
            Some(Request::Container {
                cgroup_id,
                cgroup_path: path(),
                pid,
                previous_names: entry.names.names.clone(),
            })
        } else if exec
            && entry.complete
            && let Some(known) = entry
                .container
                .as_ref()
                .filter(|known| known.host_namespaces.is_none())
            && entry.namespaces_retry.due(exec)
        {
            Some(Request::HostNamespaces {
                cgroup_id,
                container_id: known.id.clone(),
            })
        } else {
            None
        };
        let answered = entry.answered;
        let container = entry.container.clone();
        if !entry.complete && answered && container.is_some() {
            entry.sent_without_metadata += 1;
        }
        if let Some(request) = request {
            self.request(request);
        } else if exec {
            // No file read now: the path is asked for only when the re-read is due.
            self.names_missed(Some(cgroup_id), pid, path);
        }
        Resolution {
            names: self.names_of(cgroup_id),
            container,
            pending: self.in_flight(cgroup_id) && (exec || !answered),
        }
    }

    /// The names of cgroup `cgroup_id`'s root as known now: its container's once read, the
    /// host's for a cgroup that is no container's (or never seen).
    pub(crate) fn names_of(&self, cgroup_id: u64) -> Option<Arc<RootNames>> {
        match self.by_cgroup.get(&cgroup_id) {
            Some(entry) if entry.container.is_some() => entry.names.names.clone(),
            _ => self.host_names.names.clone(),
        }
    }

    /// The host's names, for a process no cgroup attributes (the fallback's host processes).
    pub(crate) fn host_names(&self) -> Option<Arc<RootNames>> {
        self.host_names.names.clone()
    }

    /// An event met an id its root's names do not have (or the names were not read): reads
    /// them again when they are at least [`NAMES_REFRESH`] old, through process `pid` of
    /// cgroup `cgroup_id` (`None`: a host process). Never reads a file.
    pub(crate) fn names_missed(
        &mut self,
        cgroup_id: Option<u64>,
        pid: u32,
        cgroup_path: impl FnOnce() -> String,
    ) {
        let container_cgroup = cgroup_id.filter(|id| {
            self.by_cgroup
                .get(id)
                .is_some_and(|entry| entry.container.is_some())
        });
        let slot = match container_cgroup.and_then(|id| self.by_cgroup.get(&id)) {
            Some(entry) => &entry.names,
            None => &self.host_names,
        };
        if !slot.refresh_due() {
            return;
        }
        self.request_names(container_cgroup, || match container_cgroup {
            Some(_) => NamesRoot::Process {
                pid,
                cgroup_path: cgroup_path(),
            },
            None => NamesRoot::Host,
        });
    }

    fn request_names(&mut self, cgroup_id: Option<u64>, root: impl FnOnce() -> NamesRoot) {
        let slot = match cgroup_id.and_then(|id| self.by_cgroup.get(&id)) {
            Some(entry) => &entry.names,
            None => &self.host_names,
        };
        self.request(Request::Names {
            cgroup_id,
            previous: slot.names.clone(),
            root: root(),
        });
    }

    /// The best answer now for a cgroup seen before (`None`: the host, or never seen).
    pub fn container(&self, cgroup_id: u64) -> Option<Arc<Container>> {
        self.by_cgroup
            .get(&cgroup_id)
            .and_then(|entry| entry.container.clone())
    }

    /// Whether a look-up of the cgroup is queued or running.
    pub fn in_flight(&self, cgroup_id: u64) -> bool {
        self.by_cgroup
            .get(&cgroup_id)
            .is_some_and(|entry| entry.in_flight)
    }

    /// Forgets the cgroups without an event for [`FORGET_UNUSED`] (checked every
    /// [`FORGET_SWEEP_INTERVAL`] of `now`) and without a look-up in flight; returns how many.
    pub fn forget_unused(&mut self, now: Instant) -> usize {
        if now.saturating_duration_since(self.swept_at) < FORGET_SWEEP_INTERVAL {
            return 0;
        }
        self.swept_at = now;
        self.sweeps += 1;
        let idle_sweeps = (FORGET_UNUSED.as_secs() / FORGET_SWEEP_INTERVAL.as_secs()).max(1);
        let sweeps = self.sweeps;
        let before = self.by_cgroup.len();
        self.by_cgroup.retain(|_, entry| {
            entry.in_flight || entry.names.in_flight || sweeps - entry.used_in_sweep < idle_sweeps
        });
        before - self.by_cgroup.len()
    }

    /// How many cgroups the cache holds.
    pub fn cached_cgroups(&self) -> usize {
        self.by_cgroup.len()
    }

    /// Takes the workers' answers into the cache, appending the cgroups answered to
    /// `answered`. Never blocks.
    pub fn take_answers(&mut self, answered: &mut Vec<u64>) {
        if self.in_flight == 0 {
            return;
        }
        while let Ok(answer) = self.answers.try_recv() {
            answered.extend(self.apply(answer));
        }
    }

    /// Waits up to `timeout` for at least one answer (when a look-up is in flight), then
    /// takes every answer there is, like [`ContainerAttribution::take_answers`].
    pub fn wait_for_answers(&mut self, timeout: Duration, answered: &mut Vec<u64>) {
        if self.in_flight == 0 {
            return;
        }
        if let Ok(answer) = self.answers.recv_timeout(timeout) {
            answered.extend(self.apply(answer));
        }
        self.take_answers(answered);
    }

    /// The id of the container a cgroup path names, for the processes read from `/proc`
    /// (see [`ContainerResolver::container_id`]).
    pub(crate) fn container_id(&self, cgroup_path: &str) -> Option<String> {
        self.resolver.container_id(cgroup_path)
    }

    /// Look-ups not queued because [`MAX_QUEUED_LOOKUPS`] were waiting.
    pub fn lookups_dropped(&self) -> u64 {
        self.lookups_dropped
    }

    /// User or group files (the host's, the containers') read only up to their size limit,
    /// 1 MiB: the users and groups listed past it have no names in events.
    pub fn names_files_cut(&self) -> u64 {
        self.names_files_cut.load(Ordering::Relaxed)
    }

    fn request(&mut self, request: Request) {
        // Which flag the request sets: a cgroup's look-up, or a root's names.
        let (cgroup_id, names) = match &request {
            Request::Container { cgroup_id, .. } | Request::HostNamespaces { cgroup_id, .. } => {
                (Some(*cgroup_id), false)
            }
            Request::Names { cgroup_id, .. } => (*cgroup_id, true),
        };
        match self.requests.try_send(request) {
            Ok(()) => {
                self.in_flight += 1;
                match (cgroup_id.and_then(|id| self.by_cgroup.get_mut(&id)), names) {
                    (Some(entry), false) => entry.in_flight = true,
                    (Some(entry), true) => entry.names.in_flight = true,
                    (None, _) => self.host_names.in_flight = true,
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.lookups_dropped += 1;
                if self.lookups_dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.lookups_dropped,
                        "Container metadata look-ups queue full: events go out with the \
                         container's id only until a later look-up."
                    );
                }
            }
        }
    }

    /// Applies one answer to the cache; returns its cgroup, or `None` for a re-read of
    /// names (events do not wait for those).
    fn apply(&mut self, answer: Answer) -> Option<u64> {
        self.in_flight = self.in_flight.saturating_sub(1);
        let cgroup_id = match &answer {
            Answer::Container { cgroup_id, .. } | Answer::HostNamespaces { cgroup_id, .. } => {
                *cgroup_id
            }
            Answer::Names { cgroup_id, names } => {
                self.names_generation += u64::from(names.is_some());
                match cgroup_id {
                    Some(id) => {
                        if let Some(entry) = self.by_cgroup.get_mut(id) {
                            entry.names.answered(names.clone());
                        }
                    }
                    None => self.host_names.answered(names.clone()),
                }
                return None;
            }
        };
        let Some(entry) = self.by_cgroup.get_mut(&cgroup_id) else {
            return Some(cgroup_id);
        };
        entry.in_flight = false;
        match answer {
            Answer::Names { .. } => {}
            Answer::Container { found, names, .. } => {
                let first = !entry.answered;
                entry.answered = true;
                let (container, complete) = match found.map(|found| *found) {
                    Some((container, metadata)) => {
                        (Some(Arc::new(container)), metadata == Metadata::Complete)
                    }
                    None => (None, false),
                };
                if let Some(found) = container.as_ref().filter(|_| complete)
                    && entry.sent_without_metadata > 0
                {
                    tracing::info!(
                        id = %found.id,
                        sent_without_metadata = entry.sent_without_metadata,
                        "Container's runtime metadata found; earlier events carried only its id."
                    );
                } else if let Some(partial) = container.as_ref().filter(|_| first && !complete) {
                    tracing::info!(
                        id = %partial.id,
                        "Container seen before its runtime metadata: its events carry only its \
                         id until the metadata is found."
                    );
                }
                if !complete {
                    entry.metadata_retry.missed();
                }
                if container.is_some() {
                    self.names_generation += u64::from(names.is_some());
                    entry.names.answered(names);
                }
                entry.container = container;
                entry.complete = complete;
            }
            Answer::HostNamespaces { found, .. } => match (found, &entry.container) {
                (Some(host_namespaces), Some(known)) => {
                    entry.container = Some(Arc::new(Container {
                        host_namespaces: Some(host_namespaces),
                        ..Container::clone(known)
                    }));
                }
                _ => entry.namespaces_retry.missed(),
            },
        }
        Some(cgroup_id)
    }
}

/// The names ancestries show: those of each ancestor's root as last read, like the names of
/// an event's own process ([`ContainerAttribution::names_of`]), except that an ancestor
/// recorded in a container whose cgroup is not (yet) known as one gets none rather than the
/// host's.
impl UserNames for ContainerAttribution {
    fn generation(&self) -> u64 {
        self.names_generation
    }

    fn user_name(&self, process: &ProcessInfo) -> SharedStr {
        let names = match self.by_cgroup.get(&process.cgroup_id) {
            Some(entry) if entry.container.is_some() => entry.names.names.as_ref(),
            _ if process.container_id.is_empty() => self.host_names.names.as_ref(),
            _ => None,
        };
        names
            .and_then(|names| names.user(process.uid))
            .map(|entry| entry.name.clone())
            .unwrap_or_default()
    }
}

/// What a cgroup's name alone says, without reading anything: a container's id and the
/// runtime its naming scheme names, its metadata missing.
fn container_named_by(cgroup_path: &str) -> Option<Arc<Container>> {
    let (runtime, id) = container_id_from_cgroup(cgroup_path, |_, _| None)?;
    Some(Arc::new(Container {
        id,
        runtime: runtime.engine_name().to_owned(),
        metadata_missing: true,
        ..Container::default()
    }))
}

/// A worker: answers requests until the cache is dropped.
fn look_up_until_closed(
    resolver: &ContainerResolver,
    queued: &Mutex<Receiver<Request>>,
    answers: &Sender<Answer>,
    names_files_cut: &AtomicU64,
) {
    loop {
        // Only the waiting for a request holds the lock, not the look-up.
        let request = match queued.lock() {
            Ok(queued) => queued.recv(),
            Err(_) => return,
        };
        let Ok(request) = request else {
            return;
        };
        let answer = match request {
            Request::Container {
                cgroup_id,
                cgroup_path,
                pid,
                previous_names,
            } => {
                let found = resolver.lookup_with_metadata(&cgroup_path).map(Box::new);
                // A container's root has its own users; the host's are read apart.
                let names = found.as_ref().and_then(|_| {
                    let root = NamesRoot::Process { pid, cgroup_path };
                    read_names(&root, previous_names.as_ref(), names_files_cut)
                });
                Answer::Container {
                    cgroup_id,
                    found,
                    names,
                }
            }
            Request::HostNamespaces {
                cgroup_id,
                container_id,
            } => Answer::HostNamespaces {
                cgroup_id,
                found: resolver.host_namespaces_of(&container_id),
            },
            Request::Names {
                cgroup_id,
                root,
                previous,
            } => Answer::Names {
                cgroup_id,
                names: read_names(&root, previous.as_ref(), names_files_cut),
            },
        };
        if answers.send(answer).is_err() {
            return;
        }
    }
}

/// A root's names, `None` (logged) when they cannot be read.
/// A root's names, `None` (logged) when they cannot be read; the files a new read cut at
/// their size limit are added to `files_cut`.
fn read_names(
    root: &NamesRoot,
    previous: Option<&Arc<RootNames>>,
    files_cut: &AtomicU64,
) -> Option<Arc<RootNames>> {
    let names = crate::names::load(root, previous)
        .inspect_err(|error| tracing::debug!(%error, "User and group names not read."))
        .ok()?;
    if !previous.is_some_and(|previous| Arc::ptr_eq(previous, &names)) {
        files_cut.fetch_add(names.files_cut(), Ordering::Relaxed);
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use palisade_testdata::slow_file::SlowFile;

    use crate::attribution::{
        ContainerAttribution, EAGER_EXEC_LOOKUPS, FORGET_SWEEP_INTERVAL, FORGET_UNUSED,
        LOOKUP_WORKERS, MAX_QUEUED_LOOKUPS, RetrySchedule,
    };
    use crate::container::MetadataRoots;
    use crate::container::test_roots::metadata_roots_in;

    const ID: &str = "3f5bd9c0e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

    /// Waits (at most 10 s) until none of `cgroups` has a look-up in flight.
    fn settle(attribution: &mut ContainerAttribution, cgroups: &[u64]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answered = Vec::new();
        while cgroups.iter().any(|id| attribution.in_flight(*id)) {
            assert!(Instant::now() < deadline, "no answer for {cgroups:?}");
            attribution.wait_for_answers(Duration::from_millis(100), &mut answered);
        }
    }

    /// A podman store whose every look-up waits until the test releases it (empty).
    fn slow_store(roots: &MetadataRoots) -> SlowFile {
        let path = roots
            .podman_storage
            .join("overlay-containers/containers.json");
        SlowFile::new(&path, b"[]")
    }

    /// A cgroup without an event for FORGET_UNUSED is forgotten (a node whose pods come and
    /// go keeps no entry per container it ever ran); one with events is kept; a forgotten
    /// cgroup's next event looks it up again.
    #[test]
    fn cgroups_without_events_are_forgotten_and_looked_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut attribution = ContainerAttribution::new(metadata_roots_in(dir.path()));
        let quiet = format!("/kubepods/pod0b1c2d3e/{ID}");
        let busy = "/system.slice/busy.service".to_owned();
        attribution.resolve(1, 0, || quiet.clone(), false);
        attribution.resolve(2, 0, || busy.clone(), false);
        settle(&mut attribution, &[1, 2]);
        assert_eq!(attribution.container(1).unwrap().id, ID);

        let start = Instant::now();
        let sweeps = FORGET_UNUSED.as_secs() / FORGET_SWEEP_INTERVAL.as_secs();
        let mut forgotten = 0;
        for sweep in 1..=sweeps {
            let now = start + (FORGET_SWEEP_INTERVAL + Duration::from_secs(1)) * sweep as u32;
            // A second call within the interval sweeps nothing.
            assert_eq!(attribution.forget_unused(now - Duration::from_secs(30)), 0);
            forgotten += attribution.forget_unused(now);
            attribution.resolve(2, 0, || busy.clone(), false);
            settle(&mut attribution, &[2]);
            if sweep < sweeps {
                assert_eq!(forgotten, 0, "forgotten after {sweep} sweeps");
            }
        }
        assert_eq!(forgotten, 1);
        assert_eq!(attribution.cached_cgroups(), 1);
        assert!(
            attribution.container(1).is_none(),
            "the quiet cgroup is forgotten"
        );

        let again = attribution.resolve(1, 0, || quiet.clone(), false);
        assert!(again.pending, "a forgotten cgroup is looked up again");
        assert_eq!(again.container.unwrap().id, ID);
        settle(&mut attribution, &[1]);
        assert_eq!(attribution.cached_cgroups(), 2);
    }

    /// A container seen before its runtime wrote its metadata is known by its id at first,
    /// and gets its labels (here its Kubernetes identity) once they exist: it is not cached
    /// without them for good. A container with its metadata is cached.
    #[test]
    fn a_container_seen_before_its_metadata_gets_it_later() {
        let dir = tempfile::tempdir().unwrap();
        let roots = metadata_roots_in(dir.path());
        let runc = roots.runc_state_dirs[0].clone();
        let mut attribution = ContainerAttribution::new(roots);
        let cgroup = format!("/kubepods/pod0b1c2d3e/{ID}");
        let mut pod_of = |exec: bool| {
            let resolution = attribution.resolve(7, 0, || cgroup.clone(), exec);
            let pending = resolution.pending;
            settle(&mut attribution, &[7]);
            let container = attribution.container(7).expect("a container");
            assert_eq!(container.id, ID);
            (
                container.k8s.as_ref().map(|pod| pod.pod_name.clone()),
                pending,
            )
        };
        let first = attribution_first(&cgroup);
        assert!(
            first.metadata_missing,
            "the name gives only the id: {first:?}"
        );
        assert_eq!(pod_of(false), (None, true), "the first event waits");

        std::fs::create_dir_all(runc.join(ID)).unwrap();
        let state = serde_json::json!({
            "created": "2026-11-29T12:00:00.5Z",
            "config": {"labels": [
                "io.kubernetes.pod.name=web-0",
                "io.kubernetes.pod.namespace=shop",
                "io.kubernetes.pod.uid=0b1c2d3e",
            ]},
        });
        std::fs::write(runc.join(ID).join("state.json"), state.to_string()).unwrap();
        // Within a second, only an exec looks again, and waits for the answer.
        assert_eq!(pod_of(false), (None, false));
        assert_eq!(pod_of(true), (Some("web-0".into()), true));

        std::fs::remove_dir_all(runc.join(ID)).unwrap();
        assert_eq!(pod_of(false), (Some("web-0".into()), false), "cached");
    }

    /// What a cgroup's name says before any look-up answered.
    fn attribution_first(cgroup: &str) -> std::sync::Arc<palisade_event::Container> {
        let dir = tempfile::tempdir().unwrap();
        let mut attribution = ContainerAttribution::new(metadata_roots_in(dir.path()));
        let resolution = attribution.resolve(1, 0, || cgroup.to_owned(), true);
        assert!(resolution.pending);
        resolution.container.expect("a container by its name")
    }

    /// A cgroup whose metadata stays missing is looked up again on each of the first execs,
    /// then at most once per doubling delay, capped: a busy host cgroup, or a container whose
    /// runtime keeps its metadata elsewhere, does not cost a look-up per event.
    #[test]
    fn retries_of_missing_metadata_are_bounded() {
        let ago = |seconds: f64| {
            Instant::now()
                .checked_sub(Duration::from_secs_f64(seconds))
                .unwrap()
        };
        let schedule = |misses: u32, looked_up: Instant| RetrySchedule { misses, looked_up };
        let now = ago(0.0);
        assert!(schedule(1, now).due(true));
        assert!(schedule(EAGER_EXEC_LOOKUPS - 1, now).due(true));
        assert!(!schedule(EAGER_EXEC_LOOKUPS, now).due(true));
        assert!(!schedule(1, ago(0.5)).due(false));
        assert!(schedule(1, ago(1.1)).due(false));
        assert!(!schedule(3, ago(3.5)).due(false), "4 s after 3 misses");
        assert!(schedule(3, ago(4.1)).due(false));
        assert!(!schedule(1000, ago(31.0)).due(true), "capped at 32 s");
        assert!(schedule(1000, ago(32.5)).due(true));
    }

    /// While a look-up waits for a slow store, other cgroups' look-ups are answered by the
    /// other worker, and the cache answers at once for everything it knows.
    #[test]
    fn a_slow_store_delays_only_the_lookups_that_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let roots = metadata_roots_in(dir.path());
        let store = slow_store(&roots);
        let mut attribution = ContainerAttribution::new(roots);
        let podman = format!("/machine.slice/libpod-{ID}.scope");
        let other = format!(
            "/kubepods.slice/cri-containerd-{}.scope",
            ID.replace('3', "4")
        );
        assert!(attribution.resolve(1, 0, || podman.clone(), true).pending);
        let started = Instant::now();
        assert!(attribution.resolve(2, 0, || other.clone(), true).pending);
        assert!(
            attribution
                .resolve(3, 0, || "/system.slice/cron.service".into(), false)
                .pending
        );
        settle(&mut attribution, &[2, 3]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(attribution.in_flight(1), "still reading the slow store");
        let container = attribution.container(2).expect("the containerd container");
        assert!(container.metadata_missing);
        assert_eq!(attribution.container(3), None, "the host");
        // Answered cgroups resolve from the cache, without waiting.
        let resolution = attribution.resolve(2, 0, || unreachable!("cached"), false);
        assert!(!resolution.pending);
        assert!(
            !attribution
                .resolve(3, 0, || unreachable!("cached"), false)
                .pending
        );
        // The slow cgroup's events wait; what its name says is there meanwhile.
        let waiting = attribution.resolve(1, 0, || unreachable!("in flight"), false);
        assert!(waiting.pending);
        assert_eq!(
            waiting
                .container
                .map(|known| known.runtime.clone())
                .as_deref(),
            Some("podman")
        );

        store.release();
        settle(&mut attribution, &[1]);
        assert!(
            attribution
                .container(1)
                .is_some_and(|known| known.metadata_missing)
        );
    }

    /// Look-ups past the queue's bound are counted, their events not held, and asked for
    /// again by the cgroup's next event.
    #[test]
    fn lookups_past_the_queue_bound_are_counted_and_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let roots = metadata_roots_in(dir.path());
        let store = slow_store(&roots);
        let mut attribution = ContainerAttribution::new(roots);
        let podman = |n: usize| format!("/machine.slice/libpod-{n:064x}.scope");
        for n in 0..LOOKUP_WORKERS {
            assert!(
                attribution
                    .resolve(n as u64, 0, || podman(n), false)
                    .pending
            );
        }
        // The workers take theirs and wait for the store.
        std::thread::sleep(Duration::from_millis(300));
        let queued = LOOKUP_WORKERS..LOOKUP_WORKERS + MAX_QUEUED_LOOKUPS;
        for n in queued.clone() {
            assert!(
                attribution
                    .resolve(n as u64, 0, || podman(n), false)
                    .pending
            );
        }
        let over = (LOOKUP_WORKERS + MAX_QUEUED_LOOKUPS) as u64;
        assert_eq!(attribution.lookups_dropped(), 0);
        let dropped = attribution.resolve(over, 0, || podman(over as usize), false);
        assert_eq!(attribution.lookups_dropped(), 1);
        assert!(!dropped.pending, "nothing to wait for");
        assert!(
            dropped
                .container
                .is_some_and(|known| known.metadata_missing)
        );

        store.release();
        let all: Vec<u64> = (0..over).collect();
        settle(&mut attribution, &all);
        assert!(
            attribution
                .resolve(over, 0, || podman(over as usize), false)
                .pending,
            "asked again"
        );
        settle(&mut attribution, &[over]);
    }
}
