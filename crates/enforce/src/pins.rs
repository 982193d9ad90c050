//! The firewall's eBPF state pinned in a bpf file system, so that enforcement outlives the
//! process that installed it: a crashed agent's connect programs stay attached with their
//! rules, and its attempt counters and report ring keep counting, until the next agent adopts
//! them ([`FirewallPins::adopt`]) or [`reset`] removes them. A clean stop removes the pins
//! (dropping the values that own them), which detaches the programs.
//!
//! # Layout
//!
//! ```text
//! <root>/                       locked (flock) by the process that uses it
//!   layout-<N>/                 this build's layout of maps and pins
//!     connect/                  the shared report stream's maps (ConnectReports)
//!     workloads/<tag>/          one enforced workload:
//!       identity                its WorkloadIdentity (JSON in an array map)
//!       link_refuse_connect4 …  its connect programs' links and own maps, if any
//! ```
//!
//! A `layout-<M>` directory of another build is one whose maps this build cannot take over:
//! its workloads are handed over without a filter, and its shared maps are let go. Their
//! counts are lost, but not silently: the attempts its counters and kept reports hold are
//! counted first, as far as their format can be read ([`Adopted::lost_attempts`]), with the
//! reports in its ring that stood for an attempt nobody kept, and what its programs count
//! after that, until they are replaced, is read off its counters, lost count and ring, which
//! stay open ([`RemovedStream::newly_lost`]). Its maps stay pinned until the caller lets the
//! [`RemovedStream`] go (once its programs are gone and what it counted was raised as lost),
//! so that a process that dies before it raised them leaves its counters, lost count and
//! kept reports to the next one, which counts them again. Two things this does not cover:
//! the ring's reports a dying process had read off and not yet raised are lost (the read
//! moved the ring's consumer position, and nothing beside the pins records them), and what
//! a process raised is raised again by the next when it dies after writing a raise and
//! before the let-go (the next start counts the counters again, whatever was raised from
//! them). That window spans from the first raise to the let-go, which waits for the
//! server's first policy and for the last handed-over pod's programs to go: it may be long.
//! The caller replaces their programs by its own
//! in their links, its own already holding the workload's rules
//! ([`WorkloadPin::take_over_filter`]), so that every connect is judged by one set of
//! programs or the other, never by none (no gap in refusal) and never by both (no attempt
//! counted twice). Only when their links cannot be taken over does it attach its own beside
//! them, give them their rules, and then drop theirs ([`PinnedWorkload`]): a connect passes
//! only when every program attached to the cgroup allows it, and one made while both have
//! rules is counted by both. The identity map's format is the same in every layout.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use serde_json::{Value, json};

use crate::bpf::{RecordHook, Reports};
use crate::connect::{
    ATTEMPTS_MAP, CONNECT_EVENT_SIZE, ConnectFilter, ConnectReports, ConnectReportsRing,
    EVENT_COUNTED_OFFSET, KEPT_MAP, KEPT_VALUE_SIZE, LOST_MAP, REPORTS_MAP,
};
use crate::error::{Error, ErrorKind};
use crate::nft::NftFirewall;
use crate::rule::NetRule;

/// Where the agent pins its firewall state by default.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/palisade/firewall";
/// This build's layout of pinned maps; a change of any shared map's or filter map's kind,
/// size or meaning takes a new number.
const LAYOUT: u32 = 1;
const LAYOUT_PREFIX: &str = "layout-";
const CONNECT_DIR: &str = "connect";
const WORKLOADS_DIR: &str = "workloads";
const IDENTITY_MAP: &str = "identity";
/// The identity map's value: a 4-byte length and that much JSON.
const IDENTITY_BYTES: u32 = 4096;
/// Where bpf file systems are mounted by convention.
const BPF_FS_MOUNT: &str = "/sys/fs/bpf";
/// `statfs`'s `f_type` of a bpf file system.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Pin files removed when the value is dropped (or by [`PinnedFiles::remove`]).
pub(crate) struct PinnedFiles(Vec<PathBuf>);

impl PinnedFiles {
    pub(crate) fn new(paths: Vec<PathBuf>) -> PinnedFiles {
        PinnedFiles(paths)
    }

    pub(crate) fn push(&mut self, path: PathBuf) {
        self.0.push(path);
    }

    /// Removes the pins (one that is gone already is no error).
    pub(crate) fn remove(&self) -> Result<(), Error> {
        for path in &self.0 {
            remove_pin(path)?;
        }
        Ok(())
    }
}

impl Drop for PinnedFiles {
    fn drop(&mut self) {
        // Best effort: a pin that cannot be removed is found and removed by the next start
        // or by `reset`.
        let _ = self.remove();
    }
}

/// Removes one pin file; one that is gone already is no error.
fn remove_pin(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::io("removing pin", path.display(), error)),
    }
}

/// A workload's enforcement as recorded with its pins: enough for the next process to know
/// whose programs they are, and where its nftables table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    /// The workload's name (the agent's `namespace/pod`).
    pub name: String,
    /// Its cgroup2 directory, when connect programs are attached there.
    pub cgroup: Option<PathBuf>,
    /// Its network namespace, when Palisade's nftables table is there.
    pub netns: Option<PathBuf>,
    /// The inode of that namespace when it was recorded: a path that names another
    /// namespace by now (a `/proc/PID/ns/net` whose process is gone, its PID reused) is not
    /// used.
    pub netns_inode: u64,
}

impl WorkloadIdentity {
    /// The workload's network namespace, when the recorded path still names it.
    pub fn live_netns(&self) -> Option<&Path> {
        let netns = self.netns.as_deref()?;
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(netns).ok()?);
        (inode == self.netns_inode).then_some(netns)
    }

    fn encode(&self) -> Result<Vec<u8>, Error> {
        let path = |path: &Option<PathBuf>| {
            path.as_ref()
                .map(|path| Value::from(path.to_string_lossy().into_owned()))
        };
        let text = json!({
            "name": self.name,
            "cgroup": path(&self.cgroup),
            "netns": path(&self.netns),
            "netns_inode": self.netns_inode,
        })
        .to_string();
        let length = u32::try_from(text.len())
            .ok()
            .filter(|&length| length <= IDENTITY_BYTES - 4)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "recording the identity (at most 4092 bytes of JSON) of workload",
                    &self.name,
                )
            })?;
        let mut value = vec![0u8; IDENTITY_BYTES as usize];
        value[..4].copy_from_slice(&length.to_ne_bytes());
        value[4..4 + text.len()].copy_from_slice(text.as_bytes());
        Ok(value)
    }

    fn decode(value: &[u8]) -> Option<WorkloadIdentity> {
        let length = u32::from_ne_bytes(value.get(..4)?.try_into().ok()?) as usize;
        let record: Value = serde_json::from_slice(value.get(4..4 + length)?).ok()?;
        let path = |key: &str| record.get(key)?.as_str().map(PathBuf::from);
        Some(WorkloadIdentity {
            name: record.get("name")?.as_str()?.to_owned(),
            cgroup: path("cgroup"),
            netns: path("netns"),
            netns_inode: record.get("netns_inode")?.as_u64()?,
        })
    }
}

/// The pinned record of one enforced workload: a directory with its identity, where its
/// connect filter's pins go too. Dropping it removes the directory and everything pinned in
/// it (so a filter pinned there is detached once its own value is dropped too).
pub struct WorkloadPin {
    dir: PathBuf,
    tag: u32,
    identity: WorkloadIdentity,
}

impl WorkloadPin {
    /// The tag of the workload's connect filter.
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// The workload, as recorded.
    pub fn identity(&self) -> &WorkloadIdentity {
        &self.identity
    }

    /// Whether the record holds the links of connect programs in force (a record made just
    /// before its programs were attached or taken over holds none).
    pub fn holds_links(&self) -> bool {
        crate::connect::holds_pinned_links(&self.dir)
    }

    /// Attaches connect programs to `cgroup` with their links and maps pinned beside the
    /// identity, reporting into `reports` under the workload's tag.
    pub fn attach_filter(
        &self,
        cgroup: &Path,
        reports: &ConnectReports,
    ) -> Result<ConnectFilter, Error> {
        ConnectFilter::attach_pinned_in(cgroup, reports, self.tag, Some(&self.dir))
    }

    /// Takes over the connect programs that `superseded` (a record of a build of another
    /// layout, found by [`FirewallPins::adopt`] without a filter) has on `cgroup`: this
    /// build's programs, already holding `rules`, replace theirs in their links, which are
    /// pinned beside this record's identity, reporting into `reports` under this record's
    /// tag. No connect is judged by both sets of programs or by neither, so each attempt is
    /// counted once: lost with the removed stream before the switch, in `reports` after it.
    /// Dropping `superseded` afterwards removes only its own pins. See
    /// [`ConnectFilter::take_over_links`] for how it fails.
    pub fn take_over_filter(
        &self,
        superseded: &WorkloadPin,
        cgroup: &Path,
        reports: &ConnectReports,
        rules: &[NetRule],
    ) -> Result<ConnectFilter, Error> {
        ConnectFilter::take_over_links(
            &superseded.dir,
            cgroup,
            reports,
            self.tag,
            Some(&self.dir),
            rules,
        )
    }
}

impl Drop for WorkloadPin {
    fn drop(&mut self) {
        // Best effort, as for any pin: what stays is removed by the next start or `reset`.
        let _ = remove_pin_dir(&self.dir);
    }
}

/// A workload found pinned at start: its record, and its connect filter taken over with
/// this build's programs, or `None` when it has none, when it was pinned by a build of
/// another layout, or when it cannot be taken over (programs pinned there stay attached
/// until the record is dropped: attach new ones under a new record and set their rules
/// first, then drop this one).
pub struct PinnedWorkload {
    /// Its record.
    pub pin: WorkloadPin,
    /// Its filter, adopted.
    pub filter: Option<ConnectFilter>,
}

/// What [`FirewallPins::adopt`] found.
pub struct Adopted {
    /// The shared report stream: the pinned one (with the attempts counted while no process
    /// took them) or a new one.
    pub reports: ConnectReports,
    /// Whether the stream's maps were found pinned.
    pub reports_adopted: bool,
    /// The workloads found.
    pub workloads: Vec<PinnedWorkload>,
    /// What was found and could not be adopted as it was (one line each): records that
    /// cannot be read (removed), filters that cannot be taken over (their workload is handed
    /// over without one), another layout's report stream (let go: see [`RemovedStream`]).
    pub notes: Vec<String>,
    /// The attempts another layout's report stream held untaken when it was removed (its
    /// counters' counts, its kept reports and the reports in its ring that stood for an
    /// attempt and were not kept, as far as they could be read): lost, to be reported as
    /// such.
    pub lost_attempts: u64,
    /// Those streams, still counted into by their programs until the workloads handed over
    /// drop them: what they count meanwhile is lost too. Each stays pinned until it is
    /// dropped.
    pub removed_streams: Vec<RemovedStream>,
}

/// The report stream of a build of another layout, let go at adoption: its workloads'
/// programs stay attached until the caller's own have their rules, and count their matches
/// into its attempt counters, its ring buffer (a match's report when the counters have no
/// room for it) or its lost count meanwhile, where no process takes them. Those maps stay
/// open here, and the ring is read, so that those attempts are counted as lost rather than
/// silently gone; once every handed-over workload's record is dropped (its programs
/// detached, or switched to this build's: [`WorkloadPin::take_over_filter`]), one last
/// [`RemovedStream::newly_lost`] reads what they counted up to then. (Programs attached
/// beside theirs instead, when their links cannot be taken over, count a connect made while
/// both have rules twice: alerted, and counted here as lost as well.) Its pins are removed
/// when it is dropped, not before: until the caller raised what it counted, a process that
/// dies finds it pinned at its next start, whole (except the reports read off its ring).
pub struct RemovedStream {
    // Field order is drop order: the ring's reader before the maps.
    ring: Option<RemovedRing>,
    counters: Option<MapHandle>,
    lost: Option<MapHandle>,
    /// What the maps and the ring held at the last read.
    counted: u64,
    /// Where its maps are pinned, removed on drop.
    dir: PathBuf,
}

impl RemovedStream {
    /// The stream pinned in `dir`, as far as its maps read as they do in every layout so
    /// far (attempt counters: a hash map of 8-byte counts by match; lost count: an array of
    /// one 8-byte count; kept reports: a hash map of reports by ring position; ring: reports
    /// of 64 bytes with `counted` at byte 41), and the attempts held in it that nobody took:
    /// the counts in its counters, the reports its reader kept (one attempt each), and the
    /// reports in its ring that stood for an attempt and were not kept (read now; see
    /// [`RemovedRing`]). Counts an earlier process took and delivered without deleting them
    /// are in there too (none is known of: they cannot be told apart). The counters are read
    /// once, for both, so that every attempt is in those held now or in a later
    /// [`RemovedStream::newly_lost`]. The stream is `None` when none of its counters, lost
    /// count and ring reads; the attempts are `None` when none of its counters, kept reports
    /// and ring reads, 0 when there is no stream.
    fn open(dir: &Path) -> (Option<RemovedStream>, Option<u64>) {
        if !dir.exists() {
            return (None, Some(0));
        }
        let open = |name: &str, kind: MapType, value_size: usize| {
            MapHandle::from_pinned_path(dir.join(name))
                .ok()
                .filter(|map| map.map_type() == kind && map.value_size() as usize == value_size)
        };
        let counters = open(ATTEMPTS_MAP, MapType::Hash, 8);
        let lost = open(LOST_MAP, MapType::Array, 8);
        let kept = open(KEPT_MAP, MapType::Hash, KEPT_VALUE_SIZE);
        let ring = open(REPORTS_MAP, MapType::RingBuf, 0)
            .and_then(|ring| RemovedRing::open(ring, kept.as_ref()));
        let counted = counters.as_ref().map_or(0, summed_counts);
        let unkept = ring.as_ref().map_or(0, RemovedRing::unkept);
        let untaken = (counters.is_some() || kept.is_some() || ring.is_some())
            .then(|| counted + unkept + kept.as_ref().map_or(0, |map| map.keys().count() as u64));
        let stream =
            (counters.is_some() || lost.is_some() || ring.is_some()).then(|| RemovedStream {
                counted: counted + unkept + read_lost(lost.as_ref()),
                ring,
                counters,
                lost,
                dir: dir.to_path_buf(),
            });
        (stream, untaken)
    }

    /// The attempts the stream's programs counted (or lost) since the last call (the first:
    /// since the adoption).
    pub fn newly_lost(&mut self) -> u64 {
        let counted = self.count();
        let newly = counted.saturating_sub(self.counted);
        self.counted = self.counted.max(counted);
        newly
    }

    /// The counts in the attempt counters and the lost count, and the reports read off the
    /// ring that stood for an attempt nobody kept, summed.
    fn count(&self) -> u64 {
        self.counters.as_ref().map_or(0, summed_counts)
            + read_lost(self.lost.as_ref())
            + self.ring.as_ref().map_or(0, RemovedRing::unkept)
    }
}

impl Drop for RemovedStream {
    fn drop(&mut self) {
        // Best effort, as for any pin: what stays is found again by the next start (and
        // counted lost again) or removed by `reset`.
        let _ = remove_pin_dir(&self.dir);
    }
}

/// The ring buffer of a [`RemovedStream`], read from where its dead reader stopped: each
/// report in it that stood for an attempt (its match found the counters full, or no
/// generation to count into: `counted` 0) is an attempt in no counter, and, unless the dead
/// reader kept it already (a record read and not yet advanced past when it died is found by
/// its ring position in the kept reports, which are counted at adoption), counted here. A
/// report that announces a counted match holds no attempt of its own. A record of another
/// size than every layout's so far cannot be read and is counted as an attempt (at most it
/// was an announcement, and a loss is never silent).
struct RemovedRing {
    // Field order is drop order: the reader before the map it reads.
    reader: Reports<()>,
    /// The reports read so far that stood for an attempt nobody kept.
    unkept: Arc<AtomicU64>,
    _ring: MapHandle,
}

impl RemovedRing {
    /// A reader of `ring`, checking the dead reader's `kept` reports; `None` when the ring
    /// cannot be read (mapped) here.
    fn open(ring: MapHandle, kept: Option<&MapHandle>) -> Option<RemovedRing> {
        let kept = kept.and_then(|kept| MapHandle::try_from(kept).ok());
        let unkept = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&unkept);
        let hook: RecordHook = Box::new(move |position: u64, record: &[u8]| {
            let stood_for_an_attempt =
                record.len() != CONNECT_EVENT_SIZE || record.get(EVENT_COUNTED_OFFSET) == Some(&0);
            let kept_already = kept.as_ref().is_some_and(|kept| {
                kept.lookup(&position.to_ne_bytes(), MapFlags::ANY)
                    .ok()
                    .flatten()
                    .is_some()
            });
            if stood_for_an_attempt && !kept_already {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Nothing is queued that takes memory: the hook counts, the queue holds units.
        let reader = Reports::new(&ring, REPORTS_MAP, |_| Some(()), usize::MAX, Some(hook)).ok()?;
        Some(RemovedRing {
            reader,
            unkept,
            _ring: ring,
        })
    }

    /// Reads the ring to its end, and returns how many reports read so far stood for an
    /// attempt nobody kept.
    fn unkept(&self) -> u64 {
        // The read fails only when a record's callback does, and this one never does.
        let _ = self.reader.consume();
        self.unkept.load(Ordering::Relaxed)
    }
}

/// The count in a removed stream's lost count, as far as it reads.
fn read_lost(lost: Option<&MapHandle>) -> u64 {
    lost.map_or(0, |map| {
        crate::bpf::read_counter(map, LOST_MAP).unwrap_or(0)
    })
}

/// A directory of pinned firewall state in a bpf file system, locked by this process.
pub struct FirewallPins {
    layout_dir: PathBuf,
    root: PathBuf,
    // Released when dropped, after the pins.
    _lock: File,
}

impl FirewallPins {
    /// Opens (creating it) the pin directory `root`, which must be on a bpf file system;
    /// one is mounted at `/sys/fs/bpf` when `root` is below it and none is there. Fails
    /// when another process holds the directory (another agent pins there).
    pub fn open(root: &Path) -> Result<FirewallPins, Error> {
        if root
            .file_name()
            .is_some_and(|name| name.as_encoded_bytes().contains(&b'.'))
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "pinning firewall state in",
                root.display(),
            )
            .with_source("a bpf file system refuses names with a dot"));
        }
        ensure_bpf_fs(root)?;
        let layout_dir = root.join(format!("{LAYOUT_PREFIX}{LAYOUT}"));
        for dir in [layout_dir.join(CONNECT_DIR), layout_dir.join(WORKLOADS_DIR)] {
            std::fs::create_dir_all(&dir)
                .map_err(|error| Error::io("creating pin directory", dir.display(), error))?;
        }
        let lock = lock_dir(root)?;
        Ok(FirewallPins {
            layout_dir,
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The pin directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes over what a process that died left pinned: the report stream (a new one of
    /// `ring` bytes when none is pinned) and every workload with its filter, switched to
    /// this build's programs. A workload whose record or filter cannot be read is removed
    /// (its programs detached) and named in [`Adopted::notes`]; another layout's stream is
    /// named there too, and handed over to be read until its programs go
    /// ([`Adopted::removed_streams`]).
    pub fn adopt(&self, ring: ConnectReportsRing) -> Result<Adopted, Error> {
        let (reports, reports_adopted) =
            ConnectReports::pinned(&self.layout_dir.join(CONNECT_DIR), ring)?;
        let mut adopted = Adopted {
            reports,
            reports_adopted,
            workloads: Vec::new(),
            notes: Vec::new(),
            lost_attempts: 0,
            removed_streams: Vec::new(),
        };
        for layout_dir in layout_dirs(&self.root)? {
            let ours = layout_dir == self.layout_dir;
            if !ours {
                let stream_dir = layout_dir.join(CONNECT_DIR);
                let (stream, untaken) = RemovedStream::open(&stream_dir);
                // Kept pinned while it is read: dropping it (when its caller lets it go, once
                // what it counted was raised) removes it.
                match stream {
                    Some(stream) => adopted.removed_streams.push(stream),
                    None => remove_pin_dir(&stream_dir)?,
                }
                let counts = match untaken {
                    Some(attempts) => {
                        adopted.lost_attempts += attempts;
                        format!("{attempts} attempts it counted and nobody took are lost")
                    }
                    None => "its counts could not be read and are lost".to_owned(),
                };
                adopted.notes.push(format!(
                    "{}: the report stream of a build of another layout was let go ({counts})",
                    layout_dir.display()
                ));
            }
            for dir in subdirectories(&layout_dir.join(WORKLOADS_DIR))? {
                let pin = match read_workload_pin(&dir) {
                    Ok(pin) => pin,
                    Err(error) => {
                        remove_pin_dir(&dir)?;
                        adopted
                            .notes
                            .push(format!("{} (removed): {error}", dir.display()));
                        continue;
                    }
                };
                let filter = match (&pin.identity.cgroup, ours) {
                    (Some(cgroup), true) => {
                        match ConnectFilter::adopt(&dir, cgroup, &adopted.reports) {
                            Ok(filter) => Some(filter),
                            Err(error) => {
                                adopted.notes.push(format!("{}: {error}", dir.display()));
                                None
                            }
                        }
                    }
                    _ => None,
                };
                adopted.workloads.push(PinnedWorkload { pin, filter });
            }
            if !ours {
                // Empty once the handed-over records are dropped.
                let _ = std::fs::remove_dir(layout_dir.join(WORKLOADS_DIR));
            }
        }
        Ok(adopted)
    }

    /// Records workload `identity` with connect filter tag `tag` (replacing a record of the
    /// same tag).
    pub fn record_workload(
        &self,
        tag: u32,
        identity: WorkloadIdentity,
    ) -> Result<WorkloadPin, Error> {
        let dir = self.layout_dir.join(WORKLOADS_DIR).join(tag.to_string());
        remove_pin_dir(&dir)?;
        std::fs::create_dir(&dir)
            .map_err(|error| Error::io("creating pin directory", dir.display(), error))?;
        let pin = WorkloadPin { dir, tag, identity };
        let value = pin.identity.encode()?;
        let options = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let mut map = MapHandle::create(
            MapType::Array,
            Some(IDENTITY_MAP),
            4,
            IDENTITY_BYTES,
            1,
            &options,
        )
        .map_err(|error| Error::bpf("creating eBPF map", IDENTITY_MAP, error))?;
        map.update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(|error| Error::bpf("writing", IDENTITY_MAP, error))?;
        let path = pin.dir.join(IDENTITY_MAP);
        map.pin(&path)
            .map_err(|error| Error::bpf("pinning eBPF map at", path.display(), error))?;
        Ok(pin)
    }
}

impl Drop for FirewallPins {
    fn drop(&mut self) {
        // Everything pinned was removed by its owner before (field and drop order of the
        // holder); the empty directories go now — this layout's and those another layout's
        // handed-over workloads left —, the root too when nothing else is in it.
        let mut layouts = layout_dirs(&self.root).unwrap_or_default();
        if !layouts.contains(&self.layout_dir) {
            layouts.push(self.layout_dir.clone());
        }
        for layout_dir in layouts {
            for dir in [
                layout_dir.join(CONNECT_DIR),
                layout_dir.join(WORKLOADS_DIR),
                layout_dir,
            ] {
                let _ = std::fs::remove_dir(dir);
            }
        }
        let _ = std::fs::remove_dir(&self.root);
    }
}

/// What [`reset`] removed.
#[derive(Debug, Default)]
pub struct ResetSummary {
    /// The workloads whose programs were detached or whose table was deleted.
    pub workloads: Vec<WorkloadIdentity>,
    /// The network namespaces whose Palisade table was deleted.
    pub tables: Vec<PathBuf>,
    /// Pin files removed.
    pub pins: usize,
}

/// Removes everything pinned in `root` by an agent that will not come back: every
/// workload's connect programs (their links' pins: the kernel detaches them), its nftables
/// table (in the network namespace its record names, when that still exists), the report
/// stream, and the directory itself. Fails when a process holds the directory (a running
/// agent: stop it instead, which removes all of it). Nothing there is no error.
pub fn reset(root: &Path) -> Result<ResetSummary, Error> {
    let mut summary = ResetSummary::default();
    if !root.exists() {
        return Ok(summary);
    }
    let lock = lock_dir(root)?;
    for layout_dir in layout_dirs(root)? {
        for dir in subdirectories(&layout_dir.join(WORKLOADS_DIR))? {
            if let Ok((_, identity)) = read_identity(&dir) {
                if let Some(netns) = identity.live_netns() {
                    NftFirewall::new(netns)?.remove()?;
                    summary.tables.push(netns.to_path_buf());
                }
                summary.workloads.push(identity);
            }
        }
    }
    summary.pins = remove_pin_tree(root)?;
    drop(lock);
    Ok(summary)
}

/// The sum of the 8-byte counts in hash map `map`, as far as they read.
fn summed_counts(map: &MapHandle) -> u64 {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    keys.iter()
        .filter_map(|key| map.lookup(key, MapFlags::ANY).ok().flatten())
        .filter_map(|value| Some(u64::from_ne_bytes(value.get(..8)?.try_into().ok()?)))
        .sum()
}

/// Mounts a bpf file system at `/sys/fs/bpf` when `root` is below it and it is not one yet;
/// fails when `root` is elsewhere and not on one.
fn ensure_bpf_fs(root: &Path) -> Result<(), Error> {
    let existing = root
        .ancestors()
        .find(|dir| dir.exists())
        .unwrap_or(Path::new("/"));
    if is_bpf_fs(existing)? {
        return Ok(());
    }
    let mount_point = Path::new(BPF_FS_MOUNT);
    if !root.starts_with(mount_point) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "pinning firewall state in",
            root.display(),
        )
        .with_source(format!(
            "{} is not on a bpf file system (mount one with `mount -t bpf bpf DIR`)",
            existing.display()
        )));
    }
    std::fs::create_dir_all(mount_point)
        .map_err(|error| Error::io("creating", mount_point.display(), error))?;
    // SAFETY: plain mount(2) with NUL-terminated literals and no data.
    let mounted = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c"/sys/fs/bpf".as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if mounted != 0 {
        return Err(Error::io(
            "mounting a bpf file system at",
            BPF_FS_MOUNT,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn is_bpf_fs(path: &Path) -> Result<bool, Error> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "reading the file system of",
            path.display(),
        )
    })?;
    // SAFETY: statfs writes into the zeroed struct it is given.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(Error::io(
            "reading the file system of",
            path.display(),
            io::Error::last_os_error(),
        ));
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(stat.f_type as i64 == BPF_FS_MAGIC)
}

/// Locks directory `dir` for this process (until the returned file is closed); fails when
/// another process holds it.
fn lock_dir(dir: &Path) -> Result<File, Error> {
    let file = File::open(dir).map_err(|error| Error::io("opening", dir.display(), error))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = io::Error::last_os_error();
        let held = error.raw_os_error() == Some(libc::EWOULDBLOCK);
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "locking pin directory",
            dir.display(),
        )
        .with_source(if held {
            "another process (a running agent) uses it".to_owned()
        } else {
            error.to_string()
        }));
    }
    Ok(file)
}

/// The `layout-<N>` directories in `root`.
fn layout_dirs(root: &Path) -> Result<Vec<PathBuf>, Error> {
    Ok(subdirectories(root)?
        .into_iter()
        .filter(|dir| {
            dir.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(LAYOUT_PREFIX))
        })
        .collect())
}

/// The directories in `dir`, sorted; none when it does not exist.
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Error::io("listing", dir.display(), error)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The workload record pinned in `dir` (named after its tag).
fn read_workload_pin(dir: &Path) -> Result<WorkloadPin, Error> {
    let (tag, identity) = read_identity(dir)?;
    Ok(WorkloadPin {
        dir: dir.to_path_buf(),
        tag,
        identity,
    })
}

/// The tag and identity of the workload recorded in `dir`.
fn read_identity(dir: &Path) -> Result<(u32, WorkloadIdentity), Error> {
    let tag = dir
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.parse::<u32>().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "reading the workload tag of",
                dir.display(),
            )
        })?;
    let path = dir.join(IDENTITY_MAP);
    let map = MapHandle::from_pinned_path(&path)
        .map_err(|error| Error::bpf("opening pinned eBPF map", path.display(), error))?;
    let value = map
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|error| Error::bpf("reading", path.display(), error))?;
    let identity = value
        .as_deref()
        .and_then(WorkloadIdentity::decode)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "reading the workload identity in",
                path.display(),
            )
        })?;
    Ok((tag, identity))
}

/// Removes directory `dir` with every pin in it; gone already is no error.
fn remove_pin_dir(dir: &Path) -> Result<(), Error> {
    remove_pin_tree(dir).map(|_| ())
}

/// Removes `dir`, its subdirectories and every pin in them; returns how many pins. Gone
/// already is no error.
fn remove_pin_tree(dir: &Path) -> Result<usize, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(Error::io("listing", dir.display(), error)),
    };
    let mut pins = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            pins += remove_pin_tree(&path)?;
        } else {
            remove_pin(&path)?;
            pins += 1;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(pins),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(pins),
        Err(error) => Err(Error::io("removing pin directory", dir.display(), error)),
    }
}

#[cfg(test)]
mod tests {
    use super::WorkloadIdentity;
    use std::path::PathBuf;

    #[test]
    fn a_workload_identity_reads_back_as_written_and_a_long_one_is_refused() {
        let identity = WorkloadIdentity {
            name: "shop/web-7d9f".to_owned(),
            cgroup: Some(PathBuf::from("/sys/fs/cgroup/kubepods/pod1234")),
            netns: Some(PathBuf::from("/run/netns/cni-1")),
            netns_inode: 4026532301,
        };
        let value = identity.encode().unwrap();
        assert_eq!(value.len(), 4096);
        assert_eq!(WorkloadIdentity::decode(&value), Some(identity));
        assert_eq!(WorkloadIdentity::decode(&[9, 0, 0, 0, b'{']), None);
        let long = WorkloadIdentity {
            name: "x".repeat(5000),
            cgroup: None,
            netns: None,
            netns_inode: 0,
        };
        let error = long.encode().unwrap_err().to_string();
        assert!(error.contains("at most 4092 bytes"), "{error}");
    }
}
