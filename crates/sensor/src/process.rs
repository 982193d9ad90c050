//! The process table: what Palisade knows about every live process, and about exited ones
//! for as long as their descendants need them for ancestry.
//!
//! Entries are keyed by a generation number rather than by pid, so a reused pid never
//! grafts a new process onto an old one's ancestry. The table is seeded from `/proc` and
//! then kept by fork, exec and exit events.
//!
//! Memory follows the host's live processes: a live process has one entry, and an exited
//! one keeps its entry only while a live process descends from it, since the table itself
//! reads it for nothing else (events are enriched as they arrive and ask for live processes
//! only; a process's exit is its last event, and its children's forks come before it). So
//! the table holds the live processes and their exited ancestors, and every exited entry
//! stays reachable from a live process that needs it.
//!
//! One reader outlives an entry: an event held while its cgroup's container is looked up
//! carries the ancestry built when it came, whose exited ancestors may have left the table
//! before the answer (`sh` runs `cat` and both exit within the hold). For a cgroup the
//! sensor says it holds events of ([`ProcessTable::await_container`]), the table therefore
//! notes each entry of that cgroup removed without a container, and the cgroup's answer
//! ([`ProcessTable::attribute_cgroup`]) names them with the entries it attributes. The notes
//! of all such cgroups hold at most the table's bound; a process past it is counted
//! ([`TableEvictions::held_ancestors_unattributed`]) and stays without its container in the
//! ancestries built before the answer.
//!
//! The table also has a bound ([`ProcessTable::with_max_entries`], 32,768 entries by
//! default), for a host that runs more processes than that: a new process then takes the
//! place of the earliest created exited ancestor (the ancestries of its descendants end
//! below it, and descendants that exit later no longer keep it), or, when every entry is a
//! live process, is not recorded (its events carry what they say themselves, without
//! ancestry). Both are counted ([`ProcessTable::evictions`]).
//!
//! A process's ancestry is built once and shared by all its events (a [`SharedSlice`]): it
//! is rebuilt only after a change of a chain, which is an exec or a container change of an
//! entry with children in the table, or the bound's removal of an entry (parents are fixed
//! at fork, and an entry with descendants is removed only by the bound: its descendants'
//! ancestries end below it from then on, and the entries above it no longer count that
//! branch among their children). An entry without children is therefore on no ancestry built
//! since the last such change, so its exec, the common one (a shell's or a service's child
//! that just forked), leaves every built ancestry valid: its own ancestry does not contain
//! it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use palisade_event::{Ancestor, SharedSlice, SharedStr, TaskResources};

/// A map hashed with foldhash, seeded once per sensor process (see `ProcessTable::live`).
type SeededHashMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The user names ancestries show, as known now (read by the look-up workers: asking never
/// reads a file).
pub trait UserNames {
    /// A number that changes whenever a name given before may have changed (names read for
    /// the first time or again), so that ancestries built before are built again.
    fn generation(&self) -> u64;
    /// The name of `process`'s user in its own root file system; empty when unknown.
    fn user_name(&self, process: &ProcessInfo) -> SharedStr;
}

/// What the table knows about one process. The strings are shared with the events and
/// ancestries built from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id at the time the process started.
    pub ppid: u32,
    /// Command name.
    pub name: SharedStr,
    /// `argv[0]`.
    pub exe: SharedStr,
    /// Full path of the executable.
    pub exepath: SharedStr,
    /// Arguments after `argv[0]`.
    pub args: SharedSlice<String>,
    /// The arguments were longer than the sensor keeps (4,095 bytes with `argv[0]`): `args`
    /// ends with the one the limit cut.
    pub args_truncated: bool,
    /// Working directory at the last exec.
    pub cwd: SharedStr,
    /// Environment at the last exec (`NAME=value`), when the sensor captures it.
    pub env: SharedSlice<String>,
    /// The environment had more than the sensor keeps.
    pub env_truncated: bool,
    /// Real user id.
    pub uid: u32,
    /// Real group id, as of the last exec (the probes report it with every event; the
    /// fallback has only this).
    pub gid: u32,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    /// Container id; empty on the host, and while the container of a cgroup whose name does
    /// not say it is looked up ([`ProcessTable::attribute_cgroup`] fills it in then).
    pub container_id: SharedStr,
    /// The cgroup the process was in at its last exec or fork: the kernel's cgroup id, or
    /// for a process read from `/proc` a key made from its cgroup path; 0 when unknown.
    pub cgroup_id: u64,
    /// Executable details from the last exec (dev, inode, times, layer flags).
    pub exe_file: ExeFile,
    /// Terminal, session and process group, as of the last exec or the fork.
    pub session: SessionIds,
    /// Memory, page faults and descriptor limit as of the last exec or the fork.
    pub resources: Option<TaskResources>,
    /// `subsystem=path` cgroups as of the last exec or the fork (empty when not read).
    pub cgroups: SharedSlice<String>,
    /// Capability sets as of the last exec or the fork; the kernel probes read them again
    /// with every event, so only the fallback's events carry these.
    pub capabilities: Capabilities,
}

/// A new process, as the kernel reported it at its fork.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForkedChild {
    /// Process id.
    pub pid: u32,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    /// Terminal, session and process group the kernel gave it.
    pub session: SessionIds,
    /// Its memory, page faults and descriptor limit; `None` keeps the parent's.
    pub resources: Option<TaskResources>,
    /// Its cgroups; empty keeps the parent's.
    pub cgroups: SharedSlice<String>,
    /// The cgroup it was forked in (see [`ProcessInfo::cgroup_id`]); 0 keeps the parent's.
    pub cgroup_id: u64,
}

/// A process's controlling terminal, its ids inside its own pid namespace and that
/// namespace's start, with the meaning of Falco's `proc.tty`, `proc.sid`, `proc.vpgid`,
/// `proc.vpid` and `proc.pidns_init_start_ts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionIds {
    /// Device number of the controlling terminal as `/proc/<pid>/stat`'s `tty_nr` encodes
    /// it (major << 8 | minor for small minors: 34816 is `/dev/pts/0`); 0 when none.
    pub tty: u32,
    /// Session id.
    pub sid: u32,
    /// Process group id.
    pub vpgid: u32,
    /// Process id.
    pub vpid: u32,
    /// Start time of the namespace's init process (its child reaper), nanoseconds since the
    /// Unix epoch; 0 when unknown. The kernel probes read it at exec and fork; for the
    /// processes read from `/proc` it is the start of the process the namespace numbers 1
    /// (`crate::pid_namespace`), to the clock tick.
    pub pidns_init_start_ns: u64,
}

/// A thread's capability sets, bit N for capability N (`CAP_CHOWN` is bit 0), as the
/// kernel's cred and `/proc/<pid>/status` (`CapInh`, `CapPrm`, `CapEff`) give them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Inheritable set.
    pub inheritable: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Effective set.
    pub effective: u64,
}

/// A process's descriptor limit and open descriptors when one of its events happened (Falco's
/// `proc.fdlimit` and `proc.fdopencount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdState {
    /// The `RLIMIT_NOFILE` soft limit, -1 when unlimited.
    pub limit: i64,
    /// Open descriptors; `None` when the table was too large to count.
    pub open: Option<u64>,
}

/// Facts about the executable a process runs, as the kernel saw them at exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExeFile {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Change time, ns since the epoch.
    pub ctime_ns: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: u64,
    /// Lives on an overlay upper layer.
    pub upper_layer: bool,
    /// Is a memfd.
    pub from_memfd: bool,
    /// Was deleted.
    pub deleted: bool,
    /// Is one of the host's container runtime binaries (matched by device and inode).
    pub container_runtime: bool,
}

#[derive(Debug)]
struct Entry {
    info: Arc<ProcessInfo>,
    parent: Option<u64>,
    /// Entries in the table whose parent is this one.
    n_children: u32,
    exited: bool,
    /// The ancestry last built for this entry.
    ancestry: Option<CachedAncestry>,
}

/// An ancestry as built when the table had seen `n_chain_changes` changes of an entry that
/// may be on a chain and the user names were those of generation `names_generation`.
#[derive(Debug)]
struct CachedAncestry {
    n_chain_changes: u64,
    names_generation: u64,
    max_depth: usize,
    ancestors: SharedSlice<Ancestor>,
}

/// The most entries a [`ProcessTable`] holds unless told otherwise: the traditional default
/// `pid_max`, far above the live processes of a node (a few hundred to a few thousand),
/// at roughly half a kilobyte to a few kilobytes each.
pub const DEFAULT_MAX_PROCESSES: usize = 32_768;

/// What keeping the table within its bound cost, as counts since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableEvictions {
    /// Exited ancestors removed to make room for a new process: the ancestries of their
    /// live descendants end below them.
    pub ancestors: u64,
    /// Insertions refused because every entry was a live process (a process is counted again
    /// at each of its execs while unrecorded): their events carry only what the event itself
    /// says, and no ancestry.
    pub processes: u64,
    /// Processes that left the table while their cgroup awaited its container
    /// ([`ProcessTable::await_container`]) and were not noted for the answer because the
    /// notes already held the table's bound: an ancestry built before the answer names
    /// such a process without its container.
    pub held_ancestors_unattributed: u64,
}

/// Live processes and their exited ancestors, with ancestry.
#[derive(Debug)]
pub struct ProcessTable {
    /// Every event looks up its process here, several times (its cgroup, its fields, its
    /// ancestry), so the hash is a multiplicative one: SipHash was a tenth of the reader's
    /// CPU in a fork+exec loop.
    entries: SeededHashMap<u64, Entry>,
    /// Keyed by the kernel's pids (the init namespace's tgids), which a process that sees
    /// them can steer: it forks until its children's pids fall in one bucket window of an
    /// unseeded hash (FxHash's multiplier is public) and keeps them, and the look-ups of
    /// pids near them then probe a long run of groups (at worst a scan of the table, at most
    /// its bound). foldhash mixes every key with a secret seeded from the sensor process's
    /// address-space layout, the time and a heap address, which another process does not
    /// see, at the cost of FxHash (one widening multiply per key). It does not resist an
    /// attacker who can time the table's look-ups precisely enough to recover the seed
    /// (foldhash claims no more); the bound above holds either way.
    live: SeededHashMap<u32, u64>,
    /// The exited entries (kept as ancestors), earliest created first: the first to make room.
    exited: BTreeSet<u64>,
    /// Cgroups whose events wait for their container's look-up, each with the processes
    /// (pid, start time) of the cgroup recorded without a container that left the table
    /// since: held events' ancestries may still name them. At most `max_entries` in all;
    /// those past it are counted ([`TableEvictions::held_ancestors_unattributed`]).
    awaiting_container: HashMap<u64, Vec<(u32, u64)>>,
    /// Processes in the lists of `awaiting_container`.
    n_awaiting_removed: usize,
    max_entries: usize,
    evictions: TableEvictions,
    next_generation: u64,
    /// Execs and container changes of entries with children (on some chain), and the
    /// bound's removals: a cached ancestry built before the last one may name an image or a
    /// container its ancestor no longer has, or an ancestor no longer in the table.
    n_chain_changes: u64,
}

impl Default for ProcessTable {
    fn default() -> ProcessTable {
        ProcessTable::with_max_entries(DEFAULT_MAX_PROCESSES)
    }
}

impl ProcessTable {
    /// An empty table that holds at most `max_entries` (at least one).
    pub fn with_max_entries(max_entries: usize) -> ProcessTable {
        ProcessTable {
            entries: SeededHashMap::default(),
            live: SeededHashMap::default(),
            exited: BTreeSet::new(),
            awaiting_container: HashMap::new(),
            n_awaiting_removed: 0,
            max_entries: max_entries.max(1),
            evictions: TableEvictions::default(),
            next_generation: 0,
            n_chain_changes: 0,
        }
    }

    /// What the bound cost so far.
    pub fn evictions(&self) -> TableEvictions {
        self.evictions
    }

    /// Number of entries (live processes and their exited ancestors).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The live process with this pid.
    pub fn get(&self, pid: u32) -> Option<&Arc<ProcessInfo>> {
        self.live
            .get(&pid)
            .and_then(|generation| self.entries.get(generation))
            .map(|entry| &entry.info)
    }

    /// Records a process that started (fork) or was found in `/proc`; its parent is the live
    /// process `info.ppid`. A live entry with the same pid (whose exit was missed) is retired.
    /// In a full table it takes the earliest created exited ancestor's place, and is not
    /// recorded when there is none (both counted in [`ProcessTable::evictions`]).
    pub fn insert(&mut self, info: ProcessInfo) {
        let pid = info.pid;
        if let Some(&old) = self.live.get(&pid) {
            self.exit(pid);
            debug_assert!(
                !self.live.contains_key(&pid),
                "exit removes {old} from live"
            );
        }
        if self.entries.len() >= self.max_entries && !self.evict_oldest_ancestor() {
            self.evictions.processes += 1;
            return;
        }
        let parent = self
            .live
            .get(&info.ppid)
            .copied()
            .filter(|_| info.ppid != pid);
        if let Some(parent) = parent.and_then(|generation| self.entries.get_mut(&generation)) {
            parent.n_children += 1;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.entries.insert(
            generation,
            Entry {
                info: Arc::new(info),
                parent,
                n_children: 0,
                exited: false,
                ancestry: None,
            },
        );
        self.live.insert(pid, generation);
    }

    /// A fork: the child starts as a copy of the parent's image, in the session and with the
    /// resources the kernel gave it.
    pub fn fork(&mut self, parent_pid: u32, child: ForkedChild) {
        let mut info = self
            .get(parent_pid)
            .map(|parent| ProcessInfo::clone(parent))
            .unwrap_or_default();
        info.pid = child.pid;
        info.ppid = parent_pid;
        info.start_time_ns = child.start_time_ns;
        info.session = child.session;
        if child.resources.is_some() {
            info.resources = child.resources;
        }
        if !child.cgroups.is_empty() {
            info.cgroups = child.cgroups;
        }
        if child.cgroup_id != 0 {
            info.cgroup_id = child.cgroup_id;
        }
        self.insert(info);
    }

    /// An exec: replaces the image of the live process `info.pid` (inserting it if unknown),
    /// keeping its place in the tree.
    pub fn exec(&mut self, info: ProcessInfo) {
        match self
            .live
            .get(&info.pid)
            .and_then(|generation| self.entries.get_mut(generation))
        {
            Some(entry) => {
                let start_time_ns = entry.info.start_time_ns;
                let ppid = entry.info.ppid;
                entry.info = Arc::new(ProcessInfo {
                    start_time_ns,
                    ppid,
                    ..info
                });
                if entry.n_children > 0 {
                    self.n_chain_changes += 1;
                }
            }
            None => self.insert(info),
        }
    }

    /// Gives container `container_id` to every process (live, or exited and kept for
    /// ancestry) of cgroup `cgroup_id` recorded without a container: what was executed or
    /// forked there before the cgroup's look-up answered (a runtime's freely named cgroup).
    /// Returns those processes' pids and start times, with those of the cgroup that left the
    /// table while it awaited the answer ([`ProcessTable::await_container`]), for the
    /// ancestries built before.
    pub fn attribute_cgroup(
        &mut self,
        cgroup_id: u64,
        container_id: &SharedStr,
    ) -> Vec<(u32, u64)> {
        let mut attributed = self.stop_awaiting_container(cgroup_id);
        for entry in self.entries.values_mut() {
            if entry.info.cgroup_id == cgroup_id && entry.info.container_id.is_empty() {
                attributed.push((entry.info.pid, entry.info.start_time_ns));
                entry.info = Arc::new(ProcessInfo {
                    container_id: container_id.clone(),
                    ..ProcessInfo::clone(&entry.info)
                });
            }
        }
        if !attributed.is_empty() {
            // A cached ancestry may name the container it had before.
            self.n_chain_changes += 1;
        }
        attributed
    }

    /// An event of live process `pid` came from cgroup `cgroup_id`, whose container is
    /// `container_id` as far as known now: when the entry records another cgroup or container
    /// (a child created straight into another cgroup by `clone3(CLONE_INTO_CGROUP)`, which
    /// the fork records in its parent's; a process moved since its exec or fork; a process
    /// read from `/proc`, keyed by its path), the entry takes these, so that its descendants'
    /// ancestries name the container it runs in.
    pub fn observed_in_cgroup(&mut self, pid: u32, cgroup_id: u64, container_id: &str) {
        let Some(entry) = self
            .live
            .get(&pid)
            .and_then(|generation| self.entries.get_mut(generation))
        else {
            return;
        };
        if entry.info.cgroup_id == cgroup_id && entry.info.container_id.as_str() == container_id {
            return;
        }
        if entry.n_children > 0 && entry.info.container_id.as_str() != container_id {
            // A cached ancestry may name the container it had before.
            self.n_chain_changes += 1;
        }
        entry.info = Arc::new(ProcessInfo {
            cgroup_id,
            container_id: container_id.into(),
            ..ProcessInfo::clone(&entry.info)
        });
    }

    /// Events of cgroup `cgroup_id` are held until its container's look-up answers: from now
    /// until [`ProcessTable::attribute_cgroup`] or [`ProcessTable::stop_awaiting_container`],
    /// the processes of the cgroup without a container that leave the table are noted, for
    /// the held events' ancestries.
    pub fn await_container(&mut self, cgroup_id: u64) {
        self.awaiting_container.entry(cgroup_id).or_default();
    }

    /// The events of cgroup `cgroup_id` no longer wait (released without an answer, or its
    /// answer was no container): forgets the processes noted for it, and returns them.
    pub fn stop_awaiting_container(&mut self, cgroup_id: u64) -> Vec<(u32, u64)> {
        let removed = self
            .awaiting_container
            .remove(&cgroup_id)
            .unwrap_or_default();
        self.n_awaiting_removed -= removed.len();
        removed
    }

    /// An exit: the entry stays, for ancestry, while a live process descends from it.
    pub fn exit(&mut self, pid: u32) {
        let Some(generation) = self.live.remove(&pid) else {
            return;
        };
        if let Some(entry) = self.entries.get_mut(&generation) {
            entry.exited = true;
            // Only a live process's events read its ancestry; an exited entry is kept for its
            // descendants' ancestries, which do not read its own.
            entry.ancestry = None;
            self.exited.insert(generation);
        }
        self.remove_if_unneeded(generation);
    }

    /// Retires every live process whose pid is not among `running` (the pids `/proc` lists
    /// now) as if its exit had been seen: after the kernel lost events, some of them were
    /// exits. Returns how many were retired.
    pub fn retire_gone(&mut self, running: impl IntoIterator<Item = u32>) -> usize {
        let running: HashSet<u32> = running.into_iter().collect();
        let gone: Vec<u32> = self
            .live
            .keys()
            .copied()
            .filter(|pid| !running.contains(pid))
            .collect();
        for &pid in &gone {
            self.exit(pid);
        }
        gone.len()
    }

    /// Removes the earliest created exited entry, whose descendants' ancestries then end
    /// below it (a child's link to it finds nothing). False when every entry is a live
    /// process.
    fn evict_oldest_ancestor(&mut self) -> bool {
        let Some(oldest) = self.exited.pop_first() else {
            return false;
        };
        self.evictions.ancestors += 1;
        // A chain change (an exited entry is kept only while a live process descends from
        // it): the ancestries cached below it name it and the entries above, whose child
        // counts no longer include that branch, so their later execs would not be counted.
        // In a table kept at its bound every new process evicts one, and each live process
        // then builds its ancestry again at its next event: a walk of its requested depth,
        // the price of never showing an ancestor's old image.
        self.n_chain_changes += 1;
        let parent = self.remove_entry(oldest).and_then(|entry| entry.parent);
        if let Some(parent) = parent
            && let Some(parent_entry) = self.entries.get_mut(&parent)
        {
            parent_entry.n_children -= 1;
            self.remove_if_unneeded(parent);
        }
        true
    }

    /// Removes an exited entry with no children left, then its parent if that leaves it
    /// unneeded too, and so on up the chain (a loop: a chain of exited ancestors can be as
    /// long as the table).
    fn remove_if_unneeded(&mut self, mut generation: u64) {
        loop {
            let Some(entry) = self.entries.get(&generation) else {
                return;
            };
            if !entry.exited || entry.n_children > 0 {
                return;
            }
            let parent = entry.parent;
            self.remove_entry(generation);
            self.exited.remove(&generation);
            let Some(parent) = parent else { return };
            let Some(parent_entry) = self.entries.get_mut(&parent) else {
                return;
            };
            parent_entry.n_children -= 1;
            generation = parent;
        }
    }

    /// Removes an entry from the table, noting it when its cgroup awaits its container (or
    /// counting it when the notes are full).
    fn remove_entry(&mut self, generation: u64) -> Option<Entry> {
        let entry = self.entries.remove(&generation)?;
        let info = &entry.info;
        if info.container_id.is_empty()
            && let Some(removed) = self.awaiting_container.get_mut(&info.cgroup_id)
        {
            if self.n_awaiting_removed < self.max_entries {
                removed.push((info.pid, info.start_time_ns));
                self.n_awaiting_removed += 1;
            } else {
                self.evictions.held_ancestors_unattributed += 1;
            }
        }
        Some(entry)
    }

    /// The ancestors of the live process `pid`, parent first, at most `max_depth`, including
    /// ancestors that already exited, each with its user's name from `user_names`. Shared
    /// with the previous call's result for the same process when no entry with children
    /// executed or changed container, the table's bound removed no entry and no names were
    /// read in between.
    pub fn ancestors(
        &mut self,
        pid: u32,
        max_depth: usize,
        user_names: &impl UserNames,
    ) -> SharedSlice<Ancestor> {
        let Some(&generation) = self.live.get(&pid) else {
            return SharedSlice::default();
        };
        let n_chain_changes = self.n_chain_changes;
        let names_generation = user_names.generation();
        let Some(entry) = self.entries.get(&generation) else {
            return SharedSlice::default();
        };
        if let Some(cached) = &entry.ancestry
            && cached.n_chain_changes == n_chain_changes
            && cached.names_generation == names_generation
            && cached.max_depth == max_depth
        {
            return cached.ancestors.clone();
        }
        let mut ancestors = Vec::new();
        let mut parent = entry.parent;
        while ancestors.len() < max_depth {
            let Some(parent_entry) = parent.and_then(|generation| self.entries.get(&generation))
            else {
                break;
            };
            let info = &parent_entry.info;
            ancestors.push(Ancestor {
                pid: info.pid,
                vpid: info.session.vpid,
                name: info.name.clone(),
                exe: info.exe.clone(),
                exepath: info.exepath.clone(),
                args: info.args.clone(),
                uid: info.uid,
                user: user_names.user_name(info),
                start_time_ns: info.start_time_ns,
                container_id: info.container_id.clone(),
                env: info.env.clone(),
            });
            parent = parent_entry.parent;
        }
        let ancestors = SharedSlice::from(ancestors);
        if let Some(entry) = self.entries.get_mut(&generation) {
            entry.ancestry = Some(CachedAncestry {
                n_chain_changes,
                names_generation,
                max_depth,
                ancestors: ancestors.clone(),
            });
        }
        ancestors
    }
}

#[cfg(test)]
mod tests {
    use palisade_event::{Ancestor, SharedSlice, TaskResources};

    use palisade_event::SharedStr;

    use crate::process::{ForkedChild, ProcessInfo, ProcessTable, TableEvictions, UserNames};

    /// User names by uid, as read at `generation`.
    struct NamesByUid {
        generation: u64,
        names: &'static [(u32, &'static str)],
    }

    impl UserNames for NamesByUid {
        fn generation(&self) -> u64 {
            self.generation
        }
        fn user_name(&self, process: &ProcessInfo) -> SharedStr {
            self.names
                .iter()
                .find(|(uid, _)| *uid == process.uid)
                .map(|(_, name)| SharedStr::from(*name))
                .unwrap_or_default()
        }
    }

    /// No names read yet.
    const NO_NAMES: NamesByUid = NamesByUid {
        generation: 0,
        names: &[],
    };

    fn process(pid: u32, ppid: u32, name: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            name: name.into(),
            ..ProcessInfo::default()
        }
    }

    fn child(pid: u32) -> ForkedChild {
        ForkedChild {
            pid,
            ..ForkedChild::default()
        }
    }

    /// init (1) → `parent_name` (10) → a fork of it (11).
    fn table_with_grandchild(parent_name: &str) -> ProcessTable {
        let mut table = ProcessTable::default();
        table.insert(process(1, 0, "init"));
        table.fork(1, child(10));
        table.exec(process(10, 1, parent_name));
        table.fork(10, child(11));
        table
    }

    #[test]
    fn exited_processes_stay_only_as_ancestors_of_live_ones() {
        let mut table = table_with_grandchild("bash");
        table.exec(process(11, 10, "python"));
        table.fork(11, child(12));
        table.exit(10);
        table.exit(11);
        // Churn: a process that exits with no descendant leaves nothing behind.
        for pid in 100..200 {
            table.fork(1, child(pid));
            table.exec(process(pid, 1, "cc"));
            table.exit(pid);
        }
        assert_eq!(names(&mut table, 12), ["python", "bash", "init"]);
        assert_eq!(
            table.len(),
            4,
            "init, bash and python (exited ancestors of 12) and 12"
        );
        // Once their last live descendant exits, the exited ancestors go with it.
        table.exit(12);
        assert_eq!(table.len(), 1, "init alone");
    }

    #[test]
    fn a_full_table_makes_room_from_its_oldest_exited_ancestor_and_counts_what_it_drops() {
        let mut table = ProcessTable::with_max_entries(3);
        table.insert(process(1, 0, "init"));
        table.fork(1, child(10));
        table.exec(process(10, 1, "bash"));
        table.fork(10, child(11));
        table.exec(process(11, 10, "python"));
        table.exit(10);
        assert_eq!(
            table.len(),
            3,
            "full: init, bash (exited, 11's parent), python"
        );
        // A new process takes the place of bash, the oldest exited ancestor: the ancestries
        // below it now end at python.
        table.fork(11, child(12));
        assert_eq!(names(&mut table, 12), ["python"]);
        assert_eq!(
            table.evictions(),
            TableEvictions {
                ancestors: 1,
                processes: 0,
                held_ancestors_unattributed: 0,
            }
        );
        // Full of live processes: the next one is not recorded, and counted.
        table.fork(1, child(20));
        assert!(table.get(20).is_none());
        assert_eq!(table.len(), 3);
        assert_eq!(
            table.evictions(),
            TableEvictions {
                ancestors: 1,
                processes: 1,
                held_ancestors_unattributed: 0,
            }
        );
        // Room again once a process exits with nothing below it.
        table.exit(12);
        table.fork(1, child(21));
        assert_eq!(table.get(21).map(|info| info.pid), Some(21));
        assert_eq!(table.evictions().processes, 1);
    }

    /// The bound's removal of an exited ancestor changes its descendants' chains: their
    /// ancestries are built again, ending below it. Otherwise the ancestries cached below it
    /// would keep naming the entries above, whose child counts no longer include that branch:
    /// the exec of one left without children (at once, or when its last other child exits)
    /// would not be counted, and those ancestries would keep its old image.
    #[test]
    fn an_eviction_rebuilds_the_ancestries_below_the_evicted_entry() {
        for sh_has_another_child in [false, true] {
            // init (1) → sh (10) → env (11, exited) → 12, and sh → 13 in the second case:
            // a full table.
            let mut table =
                ProcessTable::with_max_entries(if sh_has_another_child { 5 } else { 4 });
            table.insert(process(1, 0, "init"));
            table.fork(1, child(10));
            table.exec(process(10, 1, "sh"));
            table.fork(10, child(11));
            table.exec(process(11, 10, "env"));
            table.fork(11, child(12));
            if sh_has_another_child {
                table.fork(10, child(13));
            }
            table.exit(11);
            assert_eq!(names(&mut table, 12), ["env", "sh", "init"]);
            // A new process takes the place of env, the oldest exited ancestor.
            table.fork(1, child(20));
            assert_eq!(table.evictions().ancestors, 1);
            if sh_has_another_child {
                table.exit(13);
            }
            table.exec(process(10, 1, "nc"));
            assert_eq!(
                names(&mut table, 12),
                Vec::<String>::new(),
                "12's ancestry ends below the evicted env and does not name sh's old image \
                 (sh had another child: {sh_has_another_child})"
            );
        }
    }

    #[test]
    fn processes_whose_exit_was_lost_are_retired_when_proc_no_longer_lists_them() {
        let mut table = table_with_grandchild("bash");
        for pid in 100..200 {
            table.fork(1, child(pid));
        }
        assert_eq!(table.len(), 3 + 100);
        // The exits of 10 and of 100..200 were lost; /proc lists init and 11 only.
        assert_eq!(table.retire_gone([1, 11]), 1 + 100);
        assert!(table.get(10).is_none() && table.get(150).is_none());
        assert_eq!(
            names(&mut table, 11),
            ["bash", "init"],
            "11 still descends from bash"
        );
        assert_eq!(table.len(), 3, "init, bash (an ancestor of 11) and 11");
        assert_eq!(table.retire_gone([1, 11]), 0);
    }

    #[test]
    fn an_exited_process_keeps_no_ancestry_of_its_own() {
        let mut table = table_with_grandchild("bash");
        assert_eq!(names(&mut table, 10), ["init"]);
        let cached = |table: &ProcessTable, pid: u32| {
            table
                .entries
                .values()
                .any(|entry| entry.info.pid == pid && entry.ancestry.is_some())
        };
        assert!(cached(&table, 10));
        // bash exits; its entry stays as 11's ancestor.
        table.exit(10);
        assert_eq!(names(&mut table, 11), ["bash", "init"]);
        assert!(!cached(&table, 10), "an exited entry holds its ancestry");
    }

    #[test]
    fn a_fork_takes_the_kernels_resources_and_keeps_the_parents_cgroups_when_unread() {
        let mut table = ProcessTable::default();
        table.insert(ProcessInfo {
            cgroups: vec!["memory=/a".to_owned()].into(),
            ..process(1, 0, "init")
        });
        let resources = TaskResources {
            vm_size_kb: 100,
            ..TaskResources::default()
        };
        table.fork(
            1,
            ForkedChild {
                resources: Some(resources),
                ..child(2)
            },
        );
        let forked = table.get(2).unwrap();
        assert_eq!(forked.resources, Some(resources));
        assert_eq!(forked.cgroups.as_ref(), ["memory=/a".to_owned()]);
    }

    #[test]
    fn reused_pid_does_not_inherit_old_ancestry() {
        let mut table = ProcessTable::default();
        table.insert(process(1, 0, "init"));
        table.fork(1, child(50));
        table.exec(process(50, 1, "old"));
        table.fork(50, child(51));
        // pid 50's exit was missed; a new pid 50 appears under init.
        table.insert(process(50, 1, "new"));
        assert_eq!(table.get(50).unwrap().name, "new");
        assert_eq!(
            names(&mut table, 51),
            ["old", "init"],
            "51 keeps its real parent"
        );
    }

    #[test]
    fn shared_ancestry_follows_an_ancestors_exec() {
        let mut table = table_with_grandchild("sh");
        let first = table.ancestors(11, 8, &NO_NAMES);
        let again = table.ancestors(11, 8, &NO_NAMES);
        assert!(
            std::ptr::eq(&first[0], &again[0]),
            "one ancestry for the process's events while nothing execs"
        );
        assert_eq!(names(&mut table, 11), ["sh", "init"]);
        table.exec(process(10, 1, "python"));
        assert_eq!(names(&mut table, 11), ["python", "init"]);
        assert_eq!(names(&mut table, 11).len(), 2);
        assert_eq!(
            table.ancestors(11, 1, &NO_NAMES).len(),
            1,
            "a shallower request"
        );
        assert!(
            table.ancestors(99, 8, &NO_NAMES).is_empty(),
            "unknown process"
        );
    }

    /// The exec of a process without children (a forked child running its program, most
    /// execs) or its move to another container changes no chain: every ancestry built before
    /// stays shared. The same from a process with children rebuilds them.
    #[test]
    fn only_a_change_of_an_entry_with_children_rebuilds_ancestries() {
        let mut table = table_with_grandchild("sh");
        table.fork(1, child(20));
        let built = table.ancestors(11, 8, &NO_NAMES);
        let shared = |table: &mut ProcessTable, built: &SharedSlice<Ancestor>| {
            std::ptr::eq(&table.ancestors(11, 8, &NO_NAMES)[0], &built[0])
        };
        table.exec(process(20, 1, "true"));
        table.observed_in_cgroup(20, 7, "c0ffee");
        table.fork(11, child(12));
        table.exec(process(12, 11, "cat"));
        assert!(shared(&mut table, &built), "execs and a move of leaves");
        table.observed_in_cgroup(10, 7, "c0ffee");
        assert!(!shared(&mut table, &built), "a move of 11's parent");
        assert_eq!(
            table
                .ancestors(11, 8, &NO_NAMES)
                .iter()
                .map(|ancestor| ancestor.container_id.to_string())
                .collect::<Vec<_>>(),
            ["c0ffee", ""]
        );
        let built_12 = table.ancestors(12, 8, &NO_NAMES);
        assert_eq!(built_12[0].name, "sh");
        table.exec(process(11, 10, "python"));
        let rebuilt_12 = table.ancestors(12, 8, &NO_NAMES);
        assert_eq!(rebuilt_12[0].name, "python", "12's parent executed");
        assert!(!std::ptr::eq(&rebuilt_12[0], &built_12[0]));
    }

    /// A cgroup's look-up answering gives its container to every process recorded there
    /// without one, exited ancestors and children forked before the answer included, and
    /// not to another cgroup's or to one already attributed; ancestries built before follow.
    #[test]
    fn a_cgroups_answer_attributes_its_processes_recorded_without_a_container() {
        let mut table = ProcessTable::default();
        table.insert(process(1, 0, "init"));
        let in_cgroup = |pid, ppid, name| ProcessInfo {
            cgroup_id: 42,
            ..process(pid, ppid, name)
        };
        table.exec(in_cgroup(10, 1, "sh"));
        table.fork(
            10,
            ForkedChild {
                cgroup_id: 42,
                ..child(11)
            },
        );
        table.fork(11, child(12));
        table.exec(ProcessInfo {
            container_id: "other".into(),
            ..in_cgroup(13, 1, "known")
        });
        table.exec(ProcessInfo {
            cgroup_id: 7,
            ..process(14, 1, "host")
        });
        let before = table.ancestors(12, 8, &NO_NAMES);
        assert!(
            before
                .iter()
                .all(|ancestor| ancestor.container_id.is_empty())
        );
        table.exit(10);

        let mut attributed = table.attribute_cgroup(42, &"c0ffee".into());
        attributed.sort();
        assert_eq!(
            attributed.iter().map(|(pid, _)| *pid).collect::<Vec<_>>(),
            [10, 11, 12],
            "the fork of a fork keeps the cgroup"
        );
        let containers: Vec<String> = table
            .ancestors(12, 8, &NO_NAMES)
            .iter()
            .map(|ancestor| ancestor.container_id.to_string())
            .collect();
        assert_eq!(
            containers,
            ["c0ffee", "c0ffee", ""],
            "11, the exited 10, init"
        );
        assert_eq!(table.get(13).unwrap().container_id.as_str(), "other");
        assert!(table.get(14).unwrap().container_id.is_empty());
        assert!(
            table.attribute_cgroup(42, &"c0ffee".into()).is_empty(),
            "once"
        );
    }

    /// While a cgroup awaits its container, its processes without one that leave the table
    /// (an exited ancestor of a held event among them) are noted, and named by the answer
    /// with the entries it attributes, once; another cgroup's are not noted, and a cgroup
    /// that stops awaiting without an answer forgets them.
    #[test]
    fn a_cgroups_answer_names_its_processes_that_left_the_table_meanwhile() {
        let mut table = ProcessTable::default();
        table.insert(process(1, 0, "init"));
        let in_cgroup = |cgroup_id, pid, ppid, name| ProcessInfo {
            cgroup_id,
            ..process(pid, ppid, name)
        };
        table.exec(in_cgroup(42, 10, 1, "sh"));
        table.fork(
            10,
            ForkedChild {
                cgroup_id: 42,
                ..child(11)
            },
        );
        table.exec(in_cgroup(42, 11, 10, "cat"));
        table.exec(in_cgroup(7, 20, 1, "host"));
        table.await_container(42);
        // sh exits first (kept as cat's ancestor), then cat: both leave the table.
        table.exit(10);
        table.exit(11);
        table.exit(20);
        assert_eq!(table.len(), 1, "init alone");
        let mut attributed = table.attribute_cgroup(42, &"c0ffee".into());
        attributed.sort();
        assert_eq!(attributed, [(10, 0), (11, 0)]);
        assert!(
            table.attribute_cgroup(42, &"c0ffee".into()).is_empty(),
            "once"
        );
        assert!(
            table.attribute_cgroup(7, &"other".into()).is_empty(),
            "a cgroup not awaited"
        );

        table.await_container(43);
        table.exec(in_cgroup(43, 30, 1, "sh"));
        table.exit(30);
        assert_eq!(table.stop_awaiting_container(43), [(30, 0)]);
        assert!(table.attribute_cgroup(43, &"late".into()).is_empty());
        assert_eq!(table.n_awaiting_removed, 0);
    }

    /// The notes of awaiting cgroups hold at most the table's bound, over all cgroups: the
    /// processes that leave past it are counted, not noted, and are missing from the
    /// answer; the room comes back once a cgroup's notes are taken.
    #[test]
    fn processes_past_the_notes_bound_are_counted_and_not_named() {
        let mut table = ProcessTable::with_max_entries(4);
        table.insert(process(1, 0, "init"));
        let in_cgroup = |cgroup_id, pid| ProcessInfo {
            cgroup_id,
            ..process(pid, 1, "true")
        };
        table.await_container(42);
        table.await_container(43);
        // Six short-lived processes in two awaited cgroups: four are noted, two counted.
        for (cgroup_id, pid) in [(42, 10), (43, 11), (42, 12), (42, 13), (43, 14), (42, 15)] {
            table.exec(in_cgroup(cgroup_id, pid));
            table.exit(pid);
        }
        assert_eq!(table.n_awaiting_removed, 4);
        assert_eq!(table.evictions().held_ancestors_unattributed, 2);
        assert_eq!(
            (table.evictions().ancestors, table.evictions().processes),
            (0, 0),
            "nothing evicted from the table itself"
        );
        let mut attributed = table.attribute_cgroup(42, &"c0ffee".into());
        attributed.sort();
        assert_eq!(attributed, [(10, 0), (12, 0), (13, 0)], "15 was not noted");
        // 42's notes are taken: room for 43's next ones again.
        table.exec(in_cgroup(43, 16));
        table.exit(16);
        assert_eq!(table.evictions().held_ancestors_unattributed, 2);
        assert_eq!(table.stop_awaiting_container(43), [(11, 0), (16, 0)]);
        assert_eq!(table.n_awaiting_removed, 0);
    }

    /// Each ancestor carries its user's name; an ancestry built before the names were read
    /// is built again once they are.
    #[test]
    fn ancestors_carry_their_users_names_once_read() {
        let mut table = ProcessTable::default();
        table.insert(process(1, 0, "init"));
        table.fork(1, child(10));
        table.exec(ProcessInfo {
            uid: 1000,
            ..process(10, 1, "sh")
        });
        table.fork(10, child(11));
        let users = |table: &mut ProcessTable, names: &NamesByUid| -> Vec<String> {
            table
                .ancestors(11, 8, names)
                .iter()
                .map(|ancestor| ancestor.user.to_string())
                .collect()
        };
        assert_eq!(users(&mut table, &NO_NAMES), ["", ""], "not read yet");
        let read = NamesByUid {
            generation: 1,
            names: &[(0, "root"), (1000, "alice")],
        };
        assert_eq!(users(&mut table, &read), ["alice", "root"]);
    }

    /// A process whose event comes from another cgroup than the one recorded at its fork (a
    /// child created straight into a cgroup by `clone3(CLONE_INTO_CGROUP)`) takes that
    /// cgroup and its container; its descendants' ancestries, built before or after, follow.
    #[test]
    fn a_process_seen_in_another_cgroup_takes_it_and_its_container() {
        let mut table = ProcessTable::default();
        table.insert(ProcessInfo {
            cgroup_id: 42,
            ..process(1, 0, "init")
        });
        table.fork(
            1,
            ForkedChild {
                cgroup_id: 42,
                ..child(10)
            },
        );
        table.fork(10, child(11));
        let containers = |table: &mut ProcessTable| -> Vec<String> {
            table
                .ancestors(11, 8, &NO_NAMES)
                .iter()
                .map(|ancestor| ancestor.container_id.to_string())
                .collect()
        };
        assert_eq!(containers(&mut table), ["", ""]);
        table.observed_in_cgroup(10, 77, "c0ffee");
        let moved = table.get(10).unwrap();
        assert_eq!(
            (moved.cgroup_id, moved.container_id.as_str()),
            (77, "c0ffee")
        );
        assert_eq!(
            containers(&mut table),
            ["c0ffee", ""],
            "the ancestry built before"
        );
        table.fork(10, child(12));
        assert_eq!(table.get(12).unwrap().container_id.as_str(), "c0ffee");
        assert_eq!(table.get(1).unwrap().cgroup_id, 42, "the parent stays");
        let unchanged = table.get(10).unwrap().clone();
        table.observed_in_cgroup(10, 77, "c0ffee");
        assert!(
            std::sync::Arc::ptr_eq(&unchanged, table.get(10).unwrap()),
            "the same cgroup leaves the entry as it is"
        );
    }

    fn names(table: &mut ProcessTable, pid: u32) -> Vec<String> {
        table
            .ancestors(pid, 8, &NO_NAMES)
            .iter()
            .map(|ancestor| ancestor.name.to_string())
            .collect()
    }
}
