//! Refuse connects from a cgroup2 subtree: `cgroup/connect4` and `cgroup/connect6` programs
//! (and `cgroup/sendmsg4`/`sendmsg6` for datagrams sent to an address without a connect)
//! with a live-updated rule table, reporting into one stream shared by every filter.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapType, Object};
use palisade_firewall::{Protocol, RuleAction};

use crate::bpf::{self, BackgroundReader, Record, Reports};
use crate::error::{Error, ErrorKind};
use crate::pins::PinnedFiles;
use crate::rule::{NetRule, protocol_from_number, protocol_number};

/// The most rules one [`ConnectFilter`] holds (each port range counts as one rule).
pub const MAX_CONNECT_RULES: usize = 256;

const RULES_MAP: &str = "connect_rules";
const CONFIG_MAP: &str = "connect_config";
const HITS_MAP: &str = "connect_hits";
pub(crate) const REPORTS_MAP: &str = "connect_reports";
pub(crate) const LOST_MAP: &str = "lost_reports";
pub(crate) const ATTEMPTS_MAP: &str = "connect_attempts";
const GENERATION_MAP: &str = "connect_generation";
/// The reports that stand for an attempt (the counters had no room for its match), kept by
/// the stream's reader until their take is delivered: written by user space only.
pub(crate) const KEPT_MAP: &str = "kept_reports";
/// A kept report: the record, then the epoch of the take that holds it ([`UNTAKEN`] until a
/// take does).
pub(crate) const KEPT_VALUE_SIZE: usize = CONNECT_EVENT_SIZE + 8;
/// The epoch label of a kept report no take holds yet (epochs start below 2^62).
const UNTAKEN: u64 = u64::MAX;
/// The last delivery of the stream's counts: the epoch and who delivered it
/// ([`Delivery`]), written by user space only, so that a taker of another outbox knows what
/// was delivered (see [`ConnectReports::last_delivery`]).
pub(crate) const DELIVERY_MAP: &str = "last_delivery";
/// A [`Delivery`]'s record: the epoch, the taker's length, then the taker.
const DELIVERY_VALUE_SIZE: usize = 4096;
/// Where the taker starts in a [`Delivery`]'s record.
const DELIVERY_TAKER_OFFSET: usize = 12;
/// A kept report's key (its ring position) and value (the record, then its epoch label).
type KeptReport = (Vec<u8>, Vec<u8>);
/// The offset of `counted` in a `struct connect_event`.
pub(crate) const EVENT_COUNTED_OFFSET: usize = 41;
/// The maps every filter shares with its [`ConnectReports`] stream.
const SHARED_MAPS: [&str; 4] = [REPORTS_MAP, LOST_MAP, ATTEMPTS_MAP, GENERATION_MAP];
/// The stream's maps that only user space writes, pinned beside those.
const OWN_MAPS: [&str; 2] = [KEPT_MAP, DELIVERY_MAP];
/// Each filter's own maps: its rule table, its configuration and its rules' hits.
const FILTER_MAPS: [&str; 3] = [RULES_MAP, CONFIG_MAP, HITS_MAP];
/// The programs a filter attaches, in the order of its links.
const PROGRAMS: [&str; 4] = [
    "refuse_connect4",
    "refuse_connect6",
    "refuse_sendmsg4",
    "refuse_sendmsg6",
];
pub(crate) const CONNECT_EVENT_SIZE: usize = 64;
const CONNECT_KEY_SIZE: usize = 40;
/// The offset of `generation` in a `struct connect_key`.
const KEY_GENERATION_OFFSET: usize = 37;
/// `connect_generation`'s indexes (see `bpf/enforce.h`).
const GENERATION_CURRENT: u32 = 0;
const GENERATION_WRITERS: u32 = 1;
/// How long [`ConnectReports::take_counted`] waits for the programs still counting into the
/// generation it takes (they take microseconds) before leaving it to its next call.
const WRITERS_WAIT: Duration = Duration::from_millis(20);
const CONNECT_CONFIG_SIZE: usize = 16;
/// What one report takes in the ring buffer: the record and the ring's 8-byte header.
const CONNECT_REPORT_RING_BYTES: u32 = CONNECT_EVENT_SIZE as u32 + 8;

/// Connect programs attached to one cgroup2 directory; they apply to every process in it
/// and its descendants: to each `connect()`, and to each datagram sent to an address without
/// one (UDP `sendto`, which reaches its peer with no connect), judged alike. Dropping the
/// filter detaches them (and removes its pins, when it is pinned: see
/// [`FirewallPins`](crate::FirewallPins)).
pub struct ConnectFilter {
    // Field order is drop order: the pins (a pinned link outlives its descriptor), then
    // detach, unload.
    _pins: Option<PinnedFiles>,
    _links: [Link; 4],
    object: Object,
    cgroup: PathBuf,
    tag: u32,
    /// The half of the double-buffered rule table the programs read; the lock serialises
    /// rule updates.
    active_half: Mutex<u32>,
}

/// The report stream of connect programs: one ring buffer ([`ConnectReportsRing`], 1 MiB by
/// default), one map of attempt counters and one lost-report counter that every
/// [`ConnectFilter`] attached with it writes to, read here by one reader. A node with many
/// enforced workloads thus has one queue to drain and one drop count, however many cgroups
/// carry programs.
///
/// The programs count the connects their rules match per [`ConnectMatch`] (cgroup,
/// destination, port, protocol, rule, verdict) and report only a match's first connect since
/// the last [`ConnectReports::take_counted`]; its later ones are counted in the kernel, and
/// that call returns their counts, which [`ConnectReports::delivered`] then deletes (a taker
/// that dies in between loses none). So a flood of identical connects costs one
/// report and counter updates, and loses nothing; reports are lost only when more distinct
/// matches arrive between two takes than the counters and the ring hold together.
///
/// The stream reads its ring on a thread of its own, woken by the ring's descriptor when a
/// report lands (not by a timer), into a bounded queue
/// ([`ConnectReportsRing::queue_capacity`]) that [`ConnectReports::take`] empties. So the
/// ring never waits for the taker: a taker busy elsewhere (the agent's detection thread
/// re-reading `/proc` after a sensor loss, or judging a burst of events) delays the reports'
/// alerts, and loses reports only when more than the queue holds arrive meanwhile.
pub struct ConnectReports {
    // Field order is drop order: the reader thread, then the reader, then the maps it reads
    // (and their pins, when the stream is pinned).
    _background: BackgroundReader,
    reader: Arc<Reports<ConnectReport>>,
    ring: MapHandle,
    lost: MapHandle,
    attempts: MapHandle,
    generation: MapHandle,
    kept: MapHandle,
    delivery: MapHandle,
    /// Reports standing for an attempt that found the kept reports full (lost).
    unkept: Arc<AtomicU64>,
    /// The epoch the programs count into, and what became of the one before.
    epochs: Mutex<Epochs>,
    /// Who delivers the takes ([`ConnectReports::deliver_as`]), recorded with each delivery.
    taker: Mutex<Option<String>>,
    /// The maps' pins, removed with the stream.
    _pins: Option<PinnedFiles>,
}

/// The attempt counters' epochs, as the loader switched them. The programs count epoch
/// `current` into generation `current & 1` (they read the generation off the serial pinned
/// in `connect_generation`); the other generation holds epoch `current - 1`, in the state
/// `previous` tells.
#[derive(Debug)]
struct Epochs {
    current: u64,
    previous: PreviousEpoch,
}

/// What became of the epoch before the current one, in the generation the programs do not
/// count into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreviousEpoch {
    /// Delivered and deleted (or never counted into): the next take may switch the
    /// programs to its generation.
    Cleared,
    /// Switched away from and not read yet: programs may still be counting into it, or (in
    /// a stream adopted from pins) a dead process may have read and delivered it.
    Ended,
    /// Read and returned by [`ConnectReports::take_counted`]; its counts stay in the kernel
    /// until [`ConnectReports::delivered`].
    Taken,
}

impl Epochs {
    /// A new stream's: counting into epoch `first`, nothing before it.
    fn starting_at(first: u64) -> Epochs {
        Epochs {
            current: first,
            previous: PreviousEpoch::Cleared,
        }
    }

    /// The epoch before the current one.
    fn previous_epoch(&self) -> u64 {
        self.current.wrapping_sub(1)
    }
}

/// The generation (0 or 1) epoch `epoch` is counted into.
fn generation_of(epoch: u64) -> u8 {
    (epoch & 1) as u8
}

/// Switches the programs writing into `generation` (a `connect_generation` map) to counting
/// into epoch `epoch`: the serial is pinned with the map, the programs read its low bit.
fn switch_epoch(generation: &MapHandle, epoch: u64) -> Result<(), Error> {
    generation
        .update(
            &GENERATION_CURRENT.to_ne_bytes(),
            &epoch.to_ne_bytes(),
            MapFlags::ANY,
        )
        .map_err(|error| Error::bpf("switching the epoch of", GENERATION_MAP, error))
}

/// A random first epoch below 2^62 (so that serials never wrap in practice and fit a signed
/// 64-bit column).
fn random_epoch() -> Result<u64, Error> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer it is given.
    let read = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if read != bytes.len() as isize {
        return Err(Error::io(
            "choosing the first epoch of",
            ATTEMPTS_MAP,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(u64::from_ne_bytes(bytes) >> 2)
}

/// What a connect program matched: the connect without its process, as the programs count
/// attempts by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectMatch {
    /// The connecting process's cgroup2 id.
    pub cgroup_id: u64,
    /// The destination address (a v4-mapped IPv6 destination is reported as IPv4).
    pub remote: IpAddr,
    /// The destination port.
    pub port: u16,
    /// The protocol, if TCP, UDP or SCTP.
    pub protocol: Option<Protocol>,
    /// The id of the matching rule.
    pub rule_id: u32,
    /// `Alert` (the connect went on) or `Block` (it failed with `EPERM`).
    pub action: RuleAction,
    /// The tag of the [`ConnectFilter`] that reported it (see [`ConnectFilter::attach`]).
    pub filter_tag: u32,
}

/// The report of a connect an `Alert` or `Block` rule matched: the first one of its
/// [`ConnectMatch`] since the counts were last taken (or one the counters had no room for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectReport {
    /// The connecting process (thread group id).
    pub pid: u32,
    /// Its uid.
    pub uid: u32,
    /// Its command name.
    pub comm: String,
    /// What it matched.
    pub matched: ConnectMatch,
    /// Whether the attempt is in the counters; `false` when the counters had no room for the
    /// match and the report stood for the attempt: the stream's reader then kept it in a map
    /// that outlives the process until a take holds it ([`TakenCounts::kept`]). Either way
    /// [`ConnectReports::take_counted`] returns the attempt, and the report only announces
    /// its match.
    pub counted: bool,
}

/// The counts of one epoch of a [`ConnectReports`] stream ([`ConnectReports::take_counted`]):
/// every attempt the programs counted from one switch of the counters to the next, per
/// match. They stay in the kernel until the taker says it delivered them
/// ([`ConnectReports::delivered`] with `epoch`), so that a taker that dies in between loses
/// none: the next process that adopts the stream takes the same epoch again, unless it knows
/// the epoch was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenCounts {
    /// The epoch's serial: the take's id, unique to the stream (a new stream starts at a
    /// random one), which a taker stores with what it made of the counts and hands back to
    /// [`ConnectReports::delivered`].
    pub epoch: u64,
    /// The attempts per match (at least one): counted by the programs, or reported one by
    /// one (the counters had no room for their match) and kept by the reader.
    pub counts: Vec<ConnectCount>,
    /// How many of those attempts were reported one by one and kept.
    pub kept: u64,
}

impl TakenCounts {
    /// The attempts taken, over every match.
    pub fn attempts(&self) -> u64 {
        self.counts.iter().map(|count| count.attempts).sum()
    }
}

/// Who takes a [`ConnectReports`] stream's counts and the last epoch it delivered, recorded
/// with the stream (pinned with it), so that whoever takes the stream over knows it even
/// when it keeps its takes elsewhere than the one named (another agent's outbox, or the same
/// agent re-installed with a new one): [`ConnectReports::last_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The taker, as it named itself ([`ConnectReports::deliver_as`]): where it keeps its
    /// takes.
    pub taker: String,
    /// The last epoch delivered from the stream ([`TakenCounts::epoch`]), by this taker or
    /// (before its first delivery) the one before it; `None` before the stream's first
    /// delivery.
    pub epoch: Option<u64>,
}

impl Delivery {
    /// The longest taker name a record holds, in bytes.
    pub const MAX_TAKER_BYTES: usize = DELIVERY_VALUE_SIZE - DELIVERY_TAKER_OFFSET;
    /// The epoch field of a record without a delivery (epochs start below 2^62).
    const NONE: u64 = u64::MAX;

    fn encode(&self) -> [u8; DELIVERY_VALUE_SIZE] {
        let mut value = [0u8; DELIVERY_VALUE_SIZE];
        value[..8].copy_from_slice(&self.epoch.unwrap_or(Self::NONE).to_ne_bytes());
        value[8..DELIVERY_TAKER_OFFSET].copy_from_slice(&(self.taker.len() as u32).to_ne_bytes());
        value[DELIVERY_TAKER_OFFSET..DELIVERY_TAKER_OFFSET + self.taker.len()]
            .copy_from_slice(self.taker.as_bytes());
        value
    }

    /// `None` for the record of a stream no taker named itself for yet (all zeros) or one
    /// that does not read.
    fn decode(value: &[u8]) -> Option<Delivery> {
        let record = Record(value.get(..DELIVERY_TAKER_OFFSET)?);
        let length = record.u32(8) as usize;
        let taker = value.get(DELIVERY_TAKER_OFFSET..DELIVERY_TAKER_OFFSET + length)?;
        (length > 0).then(|| Delivery {
            taker: String::from_utf8_lossy(taker).into_owned(),
            epoch: Some(record.u64(0)).filter(|&epoch| epoch != Self::NONE),
        })
    }
}

/// What [`ConnectReports::delivered`] made of an epoch said to be delivered.
#[derive(Debug)]
pub enum Delivered {
    /// Not the epoch before the current one (delivered already, or never taken): nothing
    /// changed.
    Stale,
    /// Its counts and kept reports were deleted, and the delivery recorded with the stream
    /// ([`ConnectReports::last_delivery`]).
    Deleted,
    /// Its counts and kept reports were deleted, and the delivery could not be recorded with
    /// the stream (the error): the epoch is delivered (a call again finds it stale), and the
    /// record names the delivery before it until the next one. Only a crash before the next
    /// delivery, with the taker's outbox then gone, takes that epoch again.
    DeletedUnrecorded(Error),
}

impl Delivered {
    /// Whether the epoch's counts were deleted by this call.
    pub fn deleted(&self) -> bool {
        !matches!(self, Delivered::Stale)
    }
}

/// Connects of one [`ConnectMatch`] that the programs counted in one epoch of the counters
/// ([`TakenCounts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectCount {
    /// What they matched.
    pub matched: ConnectMatch,
    /// How many there were (at least one).
    pub attempts: u64,
}

/// The size of a [`ConnectReports`] ring buffer, in bytes: a power of two from
/// [`ConnectReportsRing::MIN_BYTES`] (one page) to [`ConnectReportsRing::MAX_BYTES`], as the
/// kernel requires of a ring buffer. A report takes 72 bytes of it, so the ring holds
/// [`ConnectReportsRing::capacity`] reports (14,563 for the default 1 MiB) until the stream's
/// reader thread moves them to its queue, which holds
/// [`ConnectReportsRing::queue_capacity`] (four rings' worth) until they are taken. The
/// attempt counters beside it hold as many distinct matches ([`ConnectMatch`]) as the ring
/// holds reports; a connect of a new match that finds them full is reported one by one, and
/// the reader keeps such a report (as many as the queue holds) until a delivered take.
/// Only a connect that finds a new match with both the counters and the ring full is lost
/// (counted by the programs), or a report standing for an attempt that finds the kept
/// reports full (counted by the reader): [`ConnectReports::lost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectReportsRing(u32);

impl ConnectReportsRing {
    /// The smallest ring: one page.
    pub const MIN_BYTES: u32 = 4096;
    /// The largest ring: 256 MiB (3.7 million reports).
    pub const MAX_BYTES: u32 = 256 * 1024 * 1024;
    /// 1 MiB: 14,563 reports in the ring and 58,252 in the queue behind it, and counters
    /// for 14,563 matches, so the agent, taking the queue every 200 ms, keeps up with a
    /// node's pods until they make about 290,000 connects of new matches per second, or
    /// 70,000 a second across a 0.6 s stall of its detection thread; repeated connects of a
    /// match only count.
    pub const DEFAULT: ConnectReportsRing = ConnectReportsRing(1024 * 1024);
    /// How many rings' worth of reports the reader's queue holds.
    const QUEUED_RINGS: u32 = 4;

    /// A ring of `bytes`; fails with [`ErrorKind::InvalidInput`] naming the bounds when
    /// `bytes` is not a power of two between them.
    pub fn new(bytes: u32) -> Result<ConnectReportsRing, Error> {
        if bytes.is_power_of_two() && (Self::MIN_BYTES..=Self::MAX_BYTES).contains(&bytes) {
            return Ok(ConnectReportsRing(bytes));
        }
        // The bounds are in the message itself: command-line parsers show no error sources.
        Err(Error::new(
            ErrorKind::InvalidInput,
            "sizing the connect report ring buffer at",
            format!(
                "{bytes} bytes (it takes a power of two from {} to {})",
                Self::MIN_BYTES,
                Self::MAX_BYTES
            ),
        ))
    }

    /// The size in bytes.
    pub fn bytes(self) -> u32 {
        self.0
    }

    /// How many reports fit in the ring at once; as many distinct matches fit in the
    /// attempt counters.
    pub fn capacity(self) -> u32 {
        self.0 / CONNECT_REPORT_RING_BYTES
    }

    /// How many reports the stream's reader queues for its taker at most: four rings' worth
    /// (about 100 bytes of the agent's memory each, allocated only while they wait), so that
    /// a taker that stops for four drain intervals loses nothing the ring alone would have
    /// kept between two.
    pub fn queue_capacity(self) -> usize {
        (self.capacity() * Self::QUEUED_RINGS) as usize
    }
}

impl Default for ConnectReportsRing {
    fn default() -> ConnectReportsRing {
        ConnectReportsRing::DEFAULT
    }
}

impl std::str::FromStr for ConnectReportsRing {
    type Err = Error;

    fn from_str(text: &str) -> Result<ConnectReportsRing, Error> {
        let bytes = text.trim().parse::<u32>().map_err(|error| {
            Error::new(
                ErrorKind::InvalidInput,
                "reading the connect report ring buffer size",
                format!("{text:?}"),
            )
            .with_source(error)
        })?;
        ConnectReportsRing::new(bytes)
    }
}

impl std::fmt::Display for ConnectReportsRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest time between two takes of a [`ConnectReports`] stream's queue by the agent:
/// from [`ConnectReportsDrain::MIN`] (10 ms) to [`ConnectReportsDrain::MAX`] (200 ms, the
/// default), how late a report's alert may be. The ring itself is emptied by the stream's
/// reader thread as reports arrive, whatever this interval; a taker this regular keeps up
/// with [`ConnectReportsDrain::reports_per_second`] reports (connects of new matches) a
/// second before the queue ([`ConnectReportsRing::queue_capacity`]) fills, and with any
/// number of repeated connects (counted). (Not longer than 200 ms: the
/// agent's detection thread wakes that often anyway, and reports waiting longer only delay
/// their alerts.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnectReportsDrain(Duration);

impl ConnectReportsDrain {
    /// The shortest interval: 10 ms (a hundred wake-ups a second).
    pub const MIN: Duration = Duration::from_millis(10);
    /// The longest interval, and the default: 200 ms.
    pub const MAX: Duration = Duration::from_millis(200);
    /// 200 ms: with the default ring, about 290,000 reports a second.
    pub const DEFAULT: ConnectReportsDrain = ConnectReportsDrain(Self::MAX);

    /// Drains every `interval`; fails with [`ErrorKind::InvalidInput`] naming the bounds when
    /// it is not between them.
    pub fn new(interval: Duration) -> Result<ConnectReportsDrain, Error> {
        if (Self::MIN..=Self::MAX).contains(&interval) {
            return Ok(ConnectReportsDrain(interval));
        }
        // The bounds are in the message itself: command-line parsers show no error sources.
        Err(Error::new(
            ErrorKind::InvalidInput,
            "setting the connect report drain interval to",
            format!(
                "{} ms (it takes {} to {} ms)",
                interval.as_millis(),
                Self::MIN.as_millis(),
                Self::MAX.as_millis()
            ),
        ))
    }

    /// The interval.
    pub fn interval(self) -> Duration {
        self.0
    }

    /// The most reports (connects of new matches) a second that a taker of a stream with
    /// `ring` this often keeps up with, without losing reports: the queue's capacity per
    /// interval.
    pub fn reports_per_second(self, ring: ConnectReportsRing) -> u64 {
        let per_second = ring.queue_capacity() as u128 * 1_000_000 / self.0.as_micros().max(1);
        u64::try_from(per_second).unwrap_or(u64::MAX)
    }
}

impl Default for ConnectReportsDrain {
    fn default() -> ConnectReportsDrain {
        ConnectReportsDrain::DEFAULT
    }
}

/// Parses whole milliseconds (`--firewall-reports-drain-ms`).
impl std::str::FromStr for ConnectReportsDrain {
    type Err = Error;

    fn from_str(text: &str) -> Result<ConnectReportsDrain, Error> {
        let millis = text.trim().parse::<u64>().map_err(|error| {
            Error::new(
                ErrorKind::InvalidInput,
                "reading the connect report drain interval (whole milliseconds)",
                format!("{text:?}"),
            )
            .with_source(error)
        })?;
        ConnectReportsDrain::new(Duration::from_millis(millis))
    }
}

/// Whole milliseconds, as [`FromStr`](std::str::FromStr) reads them.
impl std::fmt::Display for ConnectReportsDrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.as_millis().fmt(f)
    }
}

/// The maps a [`ConnectReports`] stream shares with its filters, and those only user space
/// writes: the reports its reader keeps and the record of its last delivery.
struct SharedMaps {
    ring: MapHandle,
    lost: MapHandle,
    attempts: MapHandle,
    generation: MapHandle,
    kept: MapHandle,
    delivery: MapHandle,
}

/// The options `bpf_map_create` takes by default.
fn map_create_options() -> libbpf_rs::libbpf_sys::bpf_map_create_opts {
    libbpf_rs::libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    }
}

/// Creates map `name`; hash maps are allocated as keys arrive rather than all at start (a
/// node without floods keeps a few keys).
fn create_map(
    kind: MapType,
    name: &'static str,
    key: u32,
    value: u32,
    entries: u32,
) -> Result<MapHandle, Error> {
    let mut options = map_create_options();
    if kind == MapType::Hash {
        options.map_flags = libbpf_rs::libbpf_sys::BPF_F_NO_PREALLOC;
    }
    MapHandle::create(kind, Some(name), key, value, entries, &options)
        .map_err(|error| Error::bpf("creating eBPF map", name, error))
}

/// A new map of kept reports for a stream whose ring is `ring`: room for as many as the
/// reader queues.
fn create_kept_map(ring: ConnectReportsRing) -> Result<MapHandle, Error> {
    create_map(
        MapType::Hash,
        KEPT_MAP,
        8,
        KEPT_VALUE_SIZE as u32,
        ring.queue_capacity() as u32,
    )
}

/// A new record of a stream's last delivery: none yet.
fn create_delivery_map() -> Result<MapHandle, Error> {
    create_map(
        MapType::Array,
        DELIVERY_MAP,
        4,
        DELIVERY_VALUE_SIZE as u32,
        1,
    )
}

/// The map pinned at `path` (checked as [`open_pinned_map`] does), or, when none is pinned
/// there (a stream of an earlier build, which had no such map), the one `create` makes,
/// pinned there.
fn open_or_pin_map(
    path: &Path,
    kind: MapType,
    value: u32,
    create: impl FnOnce() -> Result<MapHandle, Error>,
) -> Result<MapHandle, Error> {
    let key = if kind == MapType::Array { 4 } else { 8 };
    if path.exists() {
        return open_pinned_map(path, kind, key, value);
    }
    let mut map = create()?;
    map.pin(path)
        .map_err(|error| Error::bpf("pinning eBPF map at", path.display(), error))?;
    Ok(map)
}

/// Opens the map pinned at `path`, checked to be of `kind` with `key`- and `value`-byte keys
/// and values.
fn open_pinned_map(path: &Path, kind: MapType, key: u32, value: u32) -> Result<MapHandle, Error> {
    let map = MapHandle::from_pinned_path(path)
        .map_err(|error| Error::bpf("opening pinned eBPF map", path.display(), error))?;
    if map.map_type() != kind || map.key_size() != key || map.value_size() != value {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "adopting pinned eBPF map",
            path.display(),
        )
        .with_source(
            "its kind or sizes are not this build's; `palisade firewall reset` removes it",
        ));
    }
    Ok(map)
}

impl SharedMaps {
    /// New maps: a ring of `ring` bytes and counters for as many matches as it holds
    /// reports, counting into a random first epoch (so that one stream's take ids are not
    /// taken for another's: see [`TakenCounts::epoch`]).
    fn create(ring: ConnectReportsRing) -> Result<(SharedMaps, Epochs), Error> {
        let maps = SharedMaps {
            ring: create_map(MapType::RingBuf, REPORTS_MAP, 0, 0, ring.bytes())?,
            lost: create_map(MapType::Array, LOST_MAP, 4, 8, 1)?,
            attempts: create_map(
                MapType::Hash,
                ATTEMPTS_MAP,
                CONNECT_KEY_SIZE as u32,
                8,
                ring.capacity(),
            )?,
            generation: create_map(MapType::Array, GENERATION_MAP, 4, 8, 3)?,
            kept: create_kept_map(ring)?,
            delivery: create_delivery_map()?,
        };
        let epochs = Epochs::starting_at(random_epoch()?);
        switch_epoch(&maps.generation, epochs.current)?;
        Ok((maps, epochs))
    }

    /// The maps pinned at `paths` (in [`SHARED_MAPS`] order), with the kept reports and the
    /// delivery record pinned at `own` (each created and pinned there when missing: a stream
    /// of an earlier build had neither), checked to be of this build's kinds and sizes.
    fn open_pinned(paths: &[PathBuf; 4], own: &[PathBuf; 2]) -> Result<SharedMaps, Error> {
        let ring = open_pinned_map(&paths[0], MapType::RingBuf, 0, 0)?;
        let ring_size = ConnectReportsRing(ring.max_entries());
        Ok(SharedMaps {
            ring,
            lost: open_pinned_map(&paths[1], MapType::Array, 4, 8)?,
            attempts: open_pinned_map(&paths[2], MapType::Hash, CONNECT_KEY_SIZE as u32, 8)?,
            generation: open_pinned_map(&paths[3], MapType::Array, 4, 8)?,
            kept: open_or_pin_map(&own[0], MapType::Hash, KEPT_VALUE_SIZE as u32, || {
                create_kept_map(ring_size)
            })?,
            delivery: open_or_pin_map(
                &own[1],
                MapType::Array,
                DELIVERY_VALUE_SIZE as u32,
                create_delivery_map,
            )?,
        })
    }
}

impl ConnectReports {
    /// Creates the shared ring buffer, of the default size, attempt counters and lost-report
    /// counter.
    pub fn new() -> Result<ConnectReports, Error> {
        ConnectReports::with_ring(ConnectReportsRing::DEFAULT)
    }

    /// Creates the shared ring buffer, of `ring` bytes, attempt counters (for
    /// [`ConnectReportsRing::capacity`] matches) and lost-report counter, and starts the
    /// thread that reads the ring. (Objects that share the maps take their sizes, whatever
    /// their own definitions say.)
    pub fn with_ring(ring: ConnectReportsRing) -> Result<ConnectReports, Error> {
        let (maps, epochs) = SharedMaps::create(ring)?;
        ConnectReports::start(maps, epochs, None)
    }

    /// The stream whose maps are pinned in directory `dir` (on a bpf file system): the ones
    /// pinned there when all of them are (a stream a crashed agent left, with the attempts
    /// its programs counted since its last take, the reports in its ring and those its
    /// reader kept; `ring` is then the size of that ring, whatever was asked), else new ones
    /// of `ring` bytes, pinned there. Dropping the stream removes the pins. Returns whether
    /// the maps were adopted.
    pub(crate) fn pinned(
        dir: &Path,
        ring: ConnectReportsRing,
    ) -> Result<(ConnectReports, bool), Error> {
        let paths = SHARED_MAPS.map(|name| dir.join(name));
        let own_paths = OWN_MAPS.map(|name| dir.join(name));
        let pins = PinnedFiles::new(paths.iter().chain(&own_paths).cloned().collect());
        let found = paths.iter().filter(|path| path.exists()).count();
        if found == SHARED_MAPS.len() {
            // Maps that are there but do not fit this build are an error naming them, not
            // replaced: their counts would be lost (`palisade firewall reset` removes them).
            let maps = SharedMaps::open_pinned(&paths, &own_paths)?;
            // The dead process's epoch before the current one may be untaken, or taken and
            // not delivered, or delivered: it is taken first unless its taker says it
            // delivered it (`delivered`).
            let epochs = Epochs {
                current: bpf::read_counter_at(
                    &maps.generation,
                    GENERATION_CURRENT,
                    GENERATION_MAP,
                )?,
                previous: PreviousEpoch::Ended,
            };
            return Ok((ConnectReports::start(maps, epochs, Some(pins))?, true));
        }
        pins.remove()?;
        let (mut maps, epochs) = SharedMaps::create(ring)?;
        for (map, path) in [
            &mut maps.ring,
            &mut maps.lost,
            &mut maps.attempts,
            &mut maps.generation,
            &mut maps.kept,
            &mut maps.delivery,
        ]
        .into_iter()
        .zip(paths.iter().chain(&own_paths))
        {
            map.pin(path)
                .map_err(|error| Error::bpf("pinning eBPF map at", path.display(), error))?;
        }
        Ok((ConnectReports::start(maps, epochs, Some(pins))?, false))
    }

    /// Starts the reader thread of `maps`' ring, which keeps each report that stands for an
    /// attempt in `maps.kept` before it queues it.
    fn start(
        maps: SharedMaps,
        epochs: Epochs,
        pins: Option<PinnedFiles>,
    ) -> Result<ConnectReports, Error> {
        let ring = ConnectReportsRing(maps.ring.max_entries());
        let unkept = Arc::new(AtomicU64::new(0));
        let reader = Arc::new(Reports::new(
            &maps.ring,
            REPORTS_MAP,
            decode_report,
            ring.queue_capacity(),
            Some(keep_uncounted_reports(&maps.kept, Arc::clone(&unkept))?),
        )?);
        Ok(ConnectReports {
            _background: BackgroundReader::start(Arc::clone(&reader))?,
            reader,
            ring: maps.ring,
            lost: maps.lost,
            attempts: maps.attempts,
            generation: maps.generation,
            kept: maps.kept,
            delivery: maps.delivery,
            unkept,
            epochs: Mutex::new(epochs),
            taker: Mutex::new(None),
            _pins: pins,
        })
    }

    /// The size of the stream's ring buffer.
    pub fn ring(&self) -> ConnectReportsRing {
        ConnectReportsRing(self.ring.max_entries())
    }

    /// The shared maps' descriptors, by name, for the objects that write to them.
    fn shared_fds(&self) -> [(&'static str, BorrowedFd<'_>); 4] {
        [
            (REPORTS_MAP, self.ring.as_fd()),
            (LOST_MAP, self.lost.as_fd()),
            (ATTEMPTS_MAP, self.attempts.as_fd()),
            (GENERATION_MAP, self.generation.as_fd()),
        ]
    }

    /// Returns every report received since the last call, of every filter attached with this
    /// stream, in the order the programs wrote them: the reader thread's queue and what is in
    /// the ring buffer now (read without waiting and without a system call). Cheap enough to
    /// call before judging each connect another source saw, so that the report of the same
    /// connect (written before the connect returned) is in hand. Fails when the reader
    /// thread stopped on an error (once; the ring is still read here).
    pub fn take(&self) -> Result<Vec<ConnectReport>, Error> {
        self.reader.consume()
    }

    /// Takes the attempts the programs counted, per match, in the epoch that ended last: the
    /// counters switch epochs here, so each take holds what was counted since the one
    /// before (for a stream adopted from pins, first the dead process's last epoch, unless
    /// [`ConnectReports::delivered`] said it was delivered). Each match's next connect is
    /// reported again. `None` when nothing was counted. The counts stay in the kernel until
    /// [`ConnectReports::delivered`] with the take's [`TakenCounts::epoch`]: until then the
    /// next call takes nothing and returns `None` (the programs go on counting into the
    /// current epoch, and lose nothing but room: the counters hold at most
    /// [`ConnectReportsRing::capacity`] matches).
    ///
    /// The counters have two generations: a take switches the programs to the other one
    /// (cleared by the delivery of the take before), waits (up to 20 ms) until no program is
    /// still counting into the old one, then reads it, so that no attempt is counted twice
    /// or lost between reading a count and resetting it. A program still counting after
    /// that wait (preempted in the middle) leaves the old generation to the next call
    /// (`None` now).
    pub fn take_counted(&self) -> Result<Option<TakenCounts>, Error> {
        let mut epochs = self.epochs.lock().unwrap_or_else(PoisonError::into_inner);
        match epochs.previous {
            PreviousEpoch::Taken => return Ok(None),
            // An adopted stream's last epoch, or one a busy program held up: taken before the
            // counters switch again.
            PreviousEpoch::Ended => {
                let taken = self.take_ended(&mut epochs)?;
                if taken.is_some() || epochs.previous == PreviousEpoch::Ended {
                    return Ok(taken);
                }
            }
            PreviousEpoch::Cleared => {}
        }
        let next = epochs.current.wrapping_add(1);
        switch_epoch(&self.generation, next)?;
        // The switch is visible to every CPU before the writers are read (the programs' side
        // of this is their fully ordered increment).
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        *epochs = Epochs {
            current: next,
            previous: PreviousEpoch::Ended,
        };
        self.take_ended(&mut epochs)
    }

    /// Reads the ended epoch before `epochs.current`: its counts and the reports kept since
    /// the last delivered take (labelled with the epoch), then `Taken`; `None` when there
    /// was nothing (then `Cleared`: nothing to deliver) or when a program still counts into
    /// the epoch after [`WRITERS_WAIT`] (left `Ended`).
    fn take_ended(&self, epochs: &mut Epochs) -> Result<Option<TakenCounts>, Error> {
        let epoch = epochs.previous_epoch();
        if !self.wait_for_writers(generation_of(epoch))? {
            return Ok(None);
        }
        let mut counts = self.read_generation(generation_of(epoch))?;
        let kept = self.take_kept(epoch)?;
        let kept_attempts = kept.len() as u64;
        for matched in kept {
            match counts.iter_mut().find(|count| count.matched == matched) {
                Some(count) => count.attempts += 1,
                None => counts.push(ConnectCount {
                    matched,
                    attempts: 1,
                }),
            }
        }
        if counts.is_empty() {
            epochs.previous = PreviousEpoch::Cleared;
            return Ok(None);
        }
        epochs.previous = PreviousEpoch::Taken;
        Ok(Some(TakenCounts {
            epoch,
            counts,
            kept: kept_attempts,
        }))
    }

    /// Labels every kept report with `epoch` (those of a take of `epoch` that was not
    /// delivered, and those kept since) and returns their matches. Done after the ring is
    /// read to its end and while the reader reads no record, so that a report is never kept
    /// after this and read again: a record a dead process kept and did not advance past is
    /// read (and found kept) before, not after its take's delivery deleted it, which would
    /// keep it a second time.
    fn take_kept(&self, epoch: u64) -> Result<Vec<ConnectMatch>, Error> {
        self.reader.after_reading_all(|| {
            let mut matches = Vec::new();
            for (key, mut value) in self.kept_reports()? {
                if let Some(report) = decode_report(&value[..CONNECT_EVENT_SIZE]) {
                    matches.push(report.matched);
                }
                if Record(&value).u64(CONNECT_EVENT_SIZE) != epoch {
                    value[CONNECT_EVENT_SIZE..].copy_from_slice(&epoch.to_ne_bytes());
                    self.kept
                        .update(&key, &value, MapFlags::EXIST)
                        .map_err(|error| Error::bpf("taking the reports in", KEPT_MAP, error))?;
                }
            }
            Ok(matches)
        })
    }

    /// Deletes the kept reports of the take of `epoch`.
    fn delete_kept(&self, epoch: u64) -> Result<(), Error> {
        let delivered = self
            .kept_reports()?
            .into_iter()
            .filter(|(_, value)| Record(value).u64(CONNECT_EVENT_SIZE) == epoch)
            .map(|(key, _)| key);
        delete_keys(
            &self.kept,
            delivered,
            "deleting the delivered reports in",
            KEPT_MAP,
        )
    }

    /// Every kept report, by key, with its epoch label. (The keys are listed first: an update
    /// moves its key within the map, so iterating while updating would visit some twice.)
    fn kept_reports(&self) -> Result<Vec<KeptReport>, Error> {
        let keys: Vec<Vec<u8>> = self.kept.keys().collect();
        let mut reports = Vec::with_capacity(keys.len());
        for key in keys {
            let value = self
                .kept
                .lookup(&key, MapFlags::ANY)
                .map_err(|error| Error::bpf("reading the reports in", KEPT_MAP, error))?;
            if let Some(value) = value.filter(|value| value.len() == KEPT_VALUE_SIZE) {
                reports.push((key, value));
            }
        }
        Ok(reports)
    }

    /// Names who takes and delivers this stream's counts from now on, as it will know itself
    /// when it takes the stream over again (the agent: its outbox), and records it with the
    /// stream at once (before it takes anything, keeping the stream's last delivered
    /// epoch), then with each [`ConnectReports::delivered`] epoch
    /// ([`ConnectReports::last_delivery`]). Fails when
    /// `taker` is empty or longer than [`Delivery::MAX_TAKER_BYTES`], or the record cannot be
    /// written.
    pub fn deliver_as(&self, taker: &str) -> Result<(), Error> {
        if taker.is_empty() || taker.len() > Delivery::MAX_TAKER_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "naming the taker of the connect attempt counts",
                format!(
                    "{} bytes (1 to {} allowed)",
                    taker.len(),
                    Delivery::MAX_TAKER_BYTES
                ),
            ));
        }
        let mut named = self.taker.lock().unwrap_or_else(PoisonError::into_inner);
        // The last delivered epoch is the stream's, whoever delivered it: kept.
        let epoch = self.last_delivery()?.and_then(|last| last.epoch);
        self.record_delivery(&Delivery {
            taker: taker.to_owned(),
            epoch,
        })?;
        *named = Some(taker.to_owned());
        Ok(())
    }

    /// The taker recorded with the stream and the last epoch it delivered (for a stream
    /// adopted from pins, the dead process's, as it named itself with
    /// [`ConnectReports::deliver_as`]); `None` when no taker named itself yet. A taker that
    /// is not the one named learns from it what was delivered elsewhere: that epoch, when it
    /// is the one before the current one, is deleted by [`ConnectReports::delivered`] with
    /// it rather than taken twice; a later one the named taker may have delivered and died
    /// before recording it, which the named taker's own record of its deliveries (its
    /// outbox's receipt) tells.
    pub fn last_delivery(&self) -> Result<Option<Delivery>, Error> {
        let value = self
            .delivery
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|error| Error::bpf("reading", DELIVERY_MAP, error))?;
        Ok(value.as_deref().and_then(Delivery::decode))
    }

    fn record_delivery(&self, delivery: &Delivery) -> Result<(), Error> {
        self.delivery
            .update(&0u32.to_ne_bytes(), &delivery.encode(), MapFlags::ANY)
            .map_err(|error| Error::bpf("recording the delivery in", DELIVERY_MAP, error))
    }

    /// Says that the counts of epoch `epoch` (a [`TakenCounts::epoch`]) are delivered — kept
    /// where a crash of the taker does not lose them — so that they are deleted from the
    /// kernel, and the next take counts into their generation again. For a stream adopted
    /// from pins, it also says that the dead process delivered its last epoch (the taker
    /// kept the epoch with what it made of the counts), which is then deleted rather than
    /// taken a second time. Returns what became of the epoch ([`Delivered`]): deleted (and
    /// recorded, or not), or stale (not the epoch before the current one, taken or (adopted)
    /// not yet: nothing changed).
    ///
    /// Fails only when the counts (or the reports kept with them) cannot all be deleted:
    /// then the epoch stays taken, and calling again deletes what is left. A delivery that
    /// deleted them and could not be recorded with the stream is no failure of the delivery
    /// but [`Delivered::DeletedUnrecorded`], so that a caller never takes it for one to
    /// repeat.
    pub fn delivered(&self, epoch: u64) -> Result<Delivered, Error> {
        let mut epochs = self.epochs.lock().unwrap_or_else(PoisonError::into_inner);
        if epochs.previous == PreviousEpoch::Cleared || epoch != epochs.previous_epoch() {
            return Ok(Delivered::Stale);
        }
        // Recorded before the counts go: a process that dies in between leaves the record,
        // and the next one deletes what is left instead of taking it. A record that cannot
        // be written does not hold the delivery up (the counts are delivered: keeping them
        // would stop the takes): the record stays stale until the next delivery, and once the
        // counts are deleted nothing is taken again (only a crash between the failed write and
        // the deletes, with this outbox then gone, takes them again).
        let taker = self
            .taker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let recorded = match taker {
            Some(taker) => self.record_delivery(&Delivery {
                taker,
                epoch: Some(epoch),
            }),
            None => Ok(()),
        };
        // Not waited for when `Ended`: a dead process delivered the epoch only after its
        // writers were done, and a program joining it since leaves without counting.
        self.delete_generation(generation_of(epoch))?;
        self.delete_kept(epoch)?;
        epochs.previous = PreviousEpoch::Cleared;
        Ok(match recorded {
            Ok(()) => Delivered::Deleted,
            Err(error) => Delivered::DeletedUnrecorded(error),
        })
    }

    /// The counts of generation `generation`, which no program writes, per match.
    fn read_generation(&self, generation: u8) -> Result<Vec<ConnectCount>, Error> {
        let mut counted = Vec::new();
        for key in self.keys_of_generation(generation) {
            let value = self.attempts.lookup(&key, MapFlags::ANY).map_err(|error| {
                Error::bpf("reading the attempts counted in", ATTEMPTS_MAP, error)
            })?;
            let attempts = value.map_or(0, |bytes| Record(&bytes).u64(0));
            if attempts > 0
                && let Some(matched) = decode_key(&key)
            {
                counted.push(ConnectCount { matched, attempts });
            }
        }
        Ok(counted)
    }

    /// Deletes the counts of generation `generation`, which no program writes.
    fn delete_generation(&self, generation: u8) -> Result<(), Error> {
        delete_keys(
            &self.attempts,
            self.keys_of_generation(generation),
            "deleting the delivered attempts in",
            ATTEMPTS_MAP,
        )
    }

    /// The keys of generation `generation` in the attempt counters.
    fn keys_of_generation(&self, generation: u8) -> Vec<Vec<u8>> {
        self.attempts
            .keys()
            .filter(|key| key.get(KEY_GENERATION_OFFSET) == Some(&generation))
            .collect()
    }

    /// Whether no program counts into generation `generation` any more, waiting up to
    /// [`WRITERS_WAIT`] for it.
    fn wait_for_writers(&self, generation: u8) -> Result<bool, Error> {
        let index = GENERATION_WRITERS + u32::from(generation);
        let started = std::time::Instant::now();
        loop {
            if bpf::read_counter_at(&self.generation, index, GENERATION_MAP)? == 0 {
                return Ok(true);
            }
            if started.elapsed() >= WRITERS_WAIT {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Attempts lost: connects of a new match that found both the attempt counters and the
    /// ring buffer full (since the stream was created), and reports standing for an attempt
    /// that found the kept reports full (since this process started reading them); their
    /// hits were still counted. (A report that finds the reader's queue full is only an
    /// announcement lost: its attempt is in the counters or the kept reports.)
    pub fn lost(&self) -> Result<u64, Error> {
        Ok(bpf::read_counter(&self.lost, LOST_MAP)? + self.unkept.load(Ordering::Relaxed))
    }

    /// Reports that found the reader's queue full (since the stream was created): no
    /// attempt is lost with them, but the connects they announced have no report, so a
    /// connect without one may have been refused.
    pub fn announcements_dropped(&self) -> u64 {
        self.reader.overflowed()
    }
}

impl ConnectFilter {
    /// Loads the programs and attaches them to the cgroup2 directory `cgroup` (for example
    /// `/sys/fs/cgroup/unified/palisade/pod-x`), reporting into `reports` with `tag` in each
    /// report. No rule is set, so every connect passes.
    pub fn attach(
        cgroup: &Path,
        reports: &ConnectReports,
        tag: u32,
    ) -> Result<ConnectFilter, Error> {
        ConnectFilter::attach_pinned_in(cgroup, reports, tag, None)
    }

    /// Like [`ConnectFilter::attach`], with the links and the filter's own maps pinned in
    /// directory `pin_dir` (when given), so that the programs stay attached, with their
    /// rules, when the process dies; [`ConnectFilter::adopt`] takes them over.
    pub(crate) fn attach_pinned_in(
        cgroup: &Path,
        reports: &ConnectReports,
        tag: u32,
        pin_dir: Option<&Path>,
    ) -> Result<ConnectFilter, Error> {
        let cgroup_dir = File::open(cgroup)
            .map_err(|error| Error::io("opening cgroup2 directory", cgroup.display(), error))?;
        let mut object =
            bpf::load_object_sharing("connect", bpf::CONNECT_OBJECT, &reports.shared_fds())?;
        let mut links = Vec::with_capacity(PROGRAMS.len());
        for program_name in PROGRAMS {
            let link = object
                .progs_mut()
                .find(|program| program.name() == program_name)
                .ok_or_else(|| Error::new(ErrorKind::System, "finding program", program_name))?
                .attach_cgroup(cgroup_dir.as_raw_fd())
                .map_err(|error| {
                    Error::bpf("attaching connect program to", cgroup.display(), error)
                })?;
            links.push(link);
        }
        let pins = match pin_dir {
            Some(dir) => Some(pin_filter(dir, &mut object, &links)?),
            None => None,
        };
        // Until the first `set_rules` (which writes the tag too) the programs hold no rule,
        // so they report nothing.
        Ok(ConnectFilter {
            _pins: pins,
            _links: links.try_into().map_err(|_| {
                Error::new(
                    ErrorKind::System,
                    "attaching connect programs to",
                    cgroup.display(),
                )
            })?,
            object,
            cgroup: cgroup.to_path_buf(),
            tag,
            active_half: Mutex::new(0),
        })
    }

    /// Takes over the filter a process pinned in `pin_dir` with
    /// [`ConnectFilter::attach_pinned_in`] (on `cgroup`), reporting into `reports`: this
    /// build's programs are loaded with the pinned rule table, configuration and hits, and
    /// each pinned link is switched to them in one update, so the cgroup is never without
    /// its programs or its rules. The filter keeps its tag (in the pinned configuration).
    pub(crate) fn adopt(
        pin_dir: &Path,
        cgroup: &Path,
        reports: &ConnectReports,
    ) -> Result<ConnectFilter, Error> {
        let own_maps = FILTER_MAPS
            .iter()
            .map(|name| {
                let path = pin_dir.join(name);
                MapHandle::from_pinned_path(&path)
                    .map_err(|error| Error::bpf("opening pinned eBPF map", path.display(), error))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut shared: Vec<(&'static str, BorrowedFd<'_>)> = reports.shared_fds().to_vec();
        shared.extend(
            FILTER_MAPS
                .iter()
                .copied()
                .zip(own_maps.iter().map(AsFd::as_fd)),
        );
        let object = bpf::load_object_sharing("connect", bpf::CONNECT_OBJECT, &shared)?;
        let mut links = open_pinned_links(pin_dir)?;
        switch_links(pin_dir, &mut links, &object)?;
        let config = bpf::map(&object, CONFIG_MAP)?
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|error| Error::bpf("reading", CONFIG_MAP, error))?
            .ok_or_else(|| Error::new(ErrorKind::System, "reading", CONFIG_MAP))?;
        let record = Record(&config);
        let mut pinned: Vec<PathBuf> = PROGRAMS
            .iter()
            .map(|name| pin_dir.join(link_pin_name(name)))
            .collect();
        pinned.extend(FILTER_MAPS.iter().map(|name| pin_dir.join(name)));
        Ok(ConnectFilter {
            _pins: Some(PinnedFiles::new(pinned)),
            _links: links.try_into().map_err(|_| {
                Error::new(
                    ErrorKind::System,
                    "adopting connect programs of",
                    cgroup.display(),
                )
            })?,
            object,
            cgroup: cgroup.to_path_buf(),
            tag: record.u32(12),
            active_half: Mutex::new(record.u32(0) & 1),
        })
    }

    /// Takes over the connect programs a build of another layout attached to `cgroup` and
    /// pinned in `old_dir` (whose maps this build cannot adopt): this build's programs are
    /// loaded, reporting into `reports` under `tag`, given `rules`, and only then put in
    /// place of theirs in each pinned link (`bpf_link_update`), so that every connect is
    /// judged by one set of programs — theirs, with their rules, or these, with `rules` —
    /// never by both and never by none: each attempt is counted once, in their counters
    /// before the switch and in `reports` after it. The links are pinned in `pin_dir` (when
    /// given) with the filter's own maps *before* any is switched, so that a crash at any
    /// point leaves the new record complete (links, rules, counters: the next start adopts
    /// it, and the attempts the switched links count are under its `tag`); the old pins can
    /// go once this returns. Fails, before any link changes, when the old record lacks one
    /// of the links or the pins cannot be made; a link that refuses the switch fails it with
    /// the ones before put back on the old programs ([`switch_links`]), and the new pins are
    /// removed again.
    pub(crate) fn take_over_links(
        old_dir: &Path,
        cgroup: &Path,
        reports: &ConnectReports,
        tag: u32,
        pin_dir: Option<&Path>,
        rules: &[NetRule],
    ) -> Result<ConnectFilter, Error> {
        let mut object =
            bpf::load_object_sharing("connect", bpf::CONNECT_OBJECT, &reports.shared_fds())?;
        let active_half = write_rules(&object, 0, tag, cgroup, rules)?;
        let mut links = open_pinned_links(old_dir)?;
        let pins = match pin_dir {
            Some(dir) => Some(pin_filter(dir, &mut object, &links)?),
            None => None,
        };
        switch_links(old_dir, &mut links, &object)?;
        Ok(ConnectFilter {
            _pins: pins,
            _links: links.try_into().map_err(|_| {
                Error::new(
                    ErrorKind::System,
                    "taking over connect programs of",
                    cgroup.display(),
                )
            })?,
            object,
            cgroup: cgroup.to_path_buf(),
            tag,
            active_half: Mutex::new(active_half),
        })
    }

    /// The tag in the filter's reports.
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Replaces the rule list. The new list is written beside the one in force and switched
    /// to in one map update, so a connect sees either the old list or the new one; the
    /// programs stay attached and no connect is let through unchecked meanwhile.
    pub fn set_rules(&self, rules: &[NetRule]) -> Result<(), Error> {
        let mut active_half = self
            .active_half
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *active_half = write_rules(&self.object, *active_half, self.tag, &self.cgroup, rules)?;
        self.forget_hits_of_removed_rules(rules)
    }

    /// Deletes the hit counters of rule ids the new list no longer has, so that the counter
    /// map never fills up with ids of rules edited away; ids that stay keep their counts.
    fn forget_hits_of_removed_rules(&self, rules: &[NetRule]) -> Result<(), Error> {
        let kept: std::collections::HashSet<u32> = rules.iter().map(|rule| rule.id).collect();
        let hits = bpf::map(&self.object, HITS_MAP)?;
        let removed: Vec<Vec<u8>> = hits
            .keys()
            .filter(|key| {
                key.get(..4)
                    .and_then(|bytes| bytes.try_into().ok())
                    .is_some_and(|bytes| !kept.contains(&u32::from_ne_bytes(bytes)))
            })
            .collect();
        // A connect still reading the old list may have deleted or re-created one.
        delete_keys(
            &hits,
            removed,
            "removing the hits of an old rule in",
            HITS_MAP,
        )
    }

    /// How many connects rule `rule_id` matched as `Alert` or `Block` (the attempts count),
    /// kept across rule lists that keep the id.
    pub fn hits(&self, rule_id: u32) -> Result<u64, Error> {
        let hits = bpf::map(&self.object, HITS_MAP)?
            .lookup(&rule_id.to_ne_bytes(), MapFlags::ANY)
            .map_err(|error| Error::bpf("reading hits of rule", rule_id, error))?;
        Ok(hits.map(|bytes| Record(&bytes).u64(0)).unwrap_or(0))
    }

    /// The cgroup2 directory the programs are attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }
}

/// Writes `rules` into the half of `object`'s double-buffered rule table that the programs
/// do not read (the other one than `active_half`), then switches them to it with the
/// filter's `tag` in one map update; returns the half now in force. `cgroup` names the
/// filter in errors.
fn write_rules(
    object: &Object,
    active_half: u32,
    tag: u32,
    cgroup: &Path,
    rules: &[NetRule],
) -> Result<u32, Error> {
    if rules.len() > MAX_CONNECT_RULES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "setting connect rules (at most 256) for",
            format!("{} ({} rules)", cgroup.display(), rules.len()),
        ));
    }
    let next_half = 1 - active_half;
    let rule_table = bpf::map(object, RULES_MAP)?;
    for (rule_idx, rule) in rules.iter().enumerate() {
        let slot = next_half * MAX_CONNECT_RULES as u32 + rule_idx as u32;
        rule_table
            .update(&slot.to_ne_bytes(), &encode_rule(rule), MapFlags::ANY)
            .map_err(|error| Error::bpf("writing connect rule", rule.id, error))?;
    }
    let config = bpf::map(object, CONFIG_MAP)?;
    let mut counts = [0u32; 2];
    if let Some(current) = config
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|error| Error::bpf("reading", CONFIG_MAP, error))?
    {
        let record = Record(&current);
        counts = [record.u32(4), record.u32(8)];
    }
    counts[next_half as usize] = rules.len() as u32;
    // The `struct connect_config`: the active half, the rule count of each half and the
    // filter's tag, in one map update.
    let mut value = [0u8; CONNECT_CONFIG_SIZE];
    value[..4].copy_from_slice(&next_half.to_ne_bytes());
    value[4..8].copy_from_slice(&counts[0].to_ne_bytes());
    value[8..12].copy_from_slice(&counts[1].to_ne_bytes());
    value[12..].copy_from_slice(&tag.to_ne_bytes());
    config
        .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
        .map_err(|error| Error::bpf("switching to the new rules in", CONFIG_MAP, error))?;
    Ok(next_half)
}

/// Where the cgroup2 hierarchy is mounted: `/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones (v1 controllers beside it).
pub fn cgroup2_root() -> Result<PathBuf, Error> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|error| Error::io("reading", "/proc/self/mounts", error))?;
    cgroup2_mount_point(&mounts).ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            "finding the cgroup2 mount in",
            "/proc/self/mounts",
        )
        .with_source(
            "no cgroup2 file system is mounted; mount one with `mount -t cgroup2 none DIR`",
        )
    })
}

/// The mount point of the first `cgroup2` entry of a mounts table.
fn cgroup2_mount_point(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_source, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
        // Spaces in mount points are octal-escaped; cgroup2 mount points have none in practice,
        // and an escaped one would not name an existing directory.
        (kind == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// The program called `name` in `object`.
fn program<'obj>(
    object: &'obj Object,
    name: &'static str,
) -> Result<libbpf_rs::Program<'obj>, Error> {
    object
        .progs()
        .find(|program| program.name() == name)
        .ok_or_else(|| Error::new(ErrorKind::System, "finding program", name))
}

/// Opens the links pinned in `dir` (one per program, as [`pin_filter`] pins them), all of
/// them before any is switched ([`switch_links`]), so that a record lacking one fails with
/// nothing changed.
fn open_pinned_links(dir: &Path) -> Result<Vec<Link>, Error> {
    PROGRAMS
        .iter()
        .map(|name| {
            let path = dir.join(link_pin_name(name));
            Link::open(&path)
                .map_err(|error| Error::bpf("opening pinned link", path.display(), error))
        })
        .collect()
}

/// Switches each of `links` (opened from `dir` by [`open_pinned_links`]) to `object`'s
/// program of the same name in one update (`bpf_link_update`: the cgroup is never without a
/// program there). A link that refuses the switch fails it with nothing changed: the links
/// switched before it are put back on the programs they ran, so that every hook is judged
/// by one set of programs, the one it had (new programs may then go beside them, and a
/// connect on a hook is never judged by the new ones twice); a link that cannot be put back
/// is named in the error (it runs this build's program).
fn switch_links(dir: &Path, links: &mut [Link], object: &Object) -> Result<(), Error> {
    let link_path = |index: usize| dir.join(link_pin_name(PROGRAMS[index]));
    let previous = links
        .iter()
        .enumerate()
        .map(|(index, link)| {
            link.info()
                .and_then(|info| libbpf_rs::Program::fd_from_id(info.prog_id))
                .map_err(|error| {
                    Error::bpf(
                        "finding the program of the pinned link",
                        link_path(index).display(),
                        error,
                    )
                })
        })
        .collect::<Result<Vec<OwnedFd>, Error>>()?;
    for index in 0..links.len() {
        let switched = program(object, PROGRAMS[index]).and_then(|program| {
            links[index].update_prog(&program).map_err(|error| {
                Error::bpf(
                    "switching the pinned link to this build's program",
                    link_path(index).display(),
                    error,
                )
            })
        });
        if let Err(error) = switched {
            let not_put_back: Vec<String> = links[..index]
                .iter()
                .zip(&previous)
                .enumerate()
                .filter(|(_, (link, program))| !put_back(link, program))
                .map(|(switched, _)| link_path(switched).display().to_string())
                .collect();
            if not_put_back.is_empty() {
                return Err(error);
            }
            return Err(Error::new(
                ErrorKind::System,
                "putting the previous programs back in pinned links",
                not_put_back.join(", "),
            )
            .with_source(error));
        }
    }
    Ok(())
}

/// Puts `program` (the one it ran) back in `link` in one update; whether it went.
fn put_back(link: &Link, program: &OwnedFd) -> bool {
    // SAFETY: both descriptors are valid while `link` and `program` are; no options.
    let updated = unsafe {
        libbpf_rs::libbpf_sys::bpf_link_update(
            link.as_fd().as_raw_fd(),
            program.as_raw_fd(),
            std::ptr::null(),
        )
    };
    updated == 0
}

/// Whether `dir` holds a pinned link of every program (the record of a filter in force).
pub(crate) fn holds_pinned_links(dir: &Path) -> bool {
    PROGRAMS
        .iter()
        .all(|name| dir.join(link_pin_name(name)).exists())
}

/// The name of the pin of the link of program `program`.
fn link_pin_name(program: &str) -> String {
    format!("link_{program}")
}

/// Pins a filter's links and own maps in `dir`. (On a failure the pins made are removed
/// again, with the returned value's drop.)
fn pin_filter(dir: &Path, object: &mut Object, links: &[Link]) -> Result<PinnedFiles, Error> {
    let mut pinned = PinnedFiles::new(Vec::new());
    for (link, program_name) in links.iter().zip(PROGRAMS) {
        let path = dir.join(link_pin_name(program_name));
        pin_link(link, &path)?;
        pinned.push(path);
    }
    for name in FILTER_MAPS {
        let path = dir.join(name);
        object
            .maps_mut()
            .find(|map| map.name() == name)
            .ok_or_else(|| Error::new(ErrorKind::System, "finding eBPF map", name))?
            .pin(&path)
            .map_err(|error| Error::bpf("pinning eBPF map at", path.display(), error))?;
        pinned.push(path);
    }
    Ok(pinned)
}

/// Pins `link` at `path`, also a link opened from another pin (which libbpf refuses to pin
/// again, EBUSY: the kernel pins any link at a second path, and the first pin can then go).
fn pin_link(link: &Link, path: &Path) -> Result<(), Error> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "pinning link at", path.display()))?;
    // SAFETY: pins the link's descriptor, valid while `link` is, at a NUL-terminated path.
    let pinned =
        unsafe { libbpf_rs::libbpf_sys::bpf_obj_pin(link.as_fd().as_raw_fd(), c_path.as_ptr()) };
    if pinned != 0 {
        return Err(Error::io(
            "pinning link at",
            path.display(),
            std::io::Error::from_raw_os_error(-pinned),
        ));
    }
    Ok(())
}

/// Deletes `keys` from `map` (called `name` in errors, where `operation` fails); a key gone
/// already is no error.
fn delete_keys(
    map: &dyn MapCore,
    keys: impl IntoIterator<Item = Vec<u8>>,
    operation: &'static str,
    name: &'static str,
) -> Result<(), Error> {
    for key in keys {
        match map.delete(&key) {
            Ok(()) => {}
            Err(error) if error.kind() == libbpf_rs::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::bpf(operation, name, error)),
        }
    }
    Ok(())
}

/// Encodes a `struct connect_rule` (see `bpf/enforce.h`).
fn encode_rule(rule: &NetRule) -> [u8; 28] {
    let mut bytes = [0u8; 28];
    let family = match rule.remote.network() {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            4
        }
        IpAddr::V6(v6) => {
            bytes[..16].copy_from_slice(&v6.octets());
            6
        }
    };
    bytes[16..20].copy_from_slice(&rule.id.to_ne_bytes());
    bytes[20..22].copy_from_slice(&rule.ports.0.to_ne_bytes());
    bytes[22..24].copy_from_slice(&rule.ports.1.to_ne_bytes());
    bytes[24] = family;
    bytes[25] = rule.remote.prefix();
    bytes[26] = rule.protocol.map(protocol_number).unwrap_or(0);
    bytes[27] = match rule.action {
        RuleAction::Allow => 1,
        RuleAction::Alert => 2,
        RuleAction::Block => 3,
    };
    bytes
}

/// The reader's hook that keeps each report standing for an attempt (`counted` 0: the
/// counters had no room for its match) in `kept`, by its position in the ring, until a
/// delivered take deletes it: so it outlives the process from the moment it leaves the
/// ring. A report read again after a crash (left unread, or read and not yet past) finds its
/// position kept already. One that finds `kept` full is counted in `unkept` (lost).
fn keep_uncounted_reports(
    kept: &MapHandle,
    unkept: Arc<AtomicU64>,
) -> Result<bpf::RecordHook, Error> {
    let kept = MapHandle::try_from(kept)
        .map_err(|error| Error::bpf("sharing eBPF map", KEPT_MAP, error))?;
    Ok(Box::new(move |position: u64, record: &[u8]| {
        if record.get(EVENT_COUNTED_OFFSET) != Some(&0) {
            return;
        }
        let mut value = [0u8; KEPT_VALUE_SIZE];
        value[..CONNECT_EVENT_SIZE].copy_from_slice(record);
        value[CONNECT_EVENT_SIZE..].copy_from_slice(&UNTAKEN.to_ne_bytes());
        match kept.update(&position.to_ne_bytes(), &value, MapFlags::NO_EXIST) {
            Ok(()) => {}
            Err(error) if error.kind() == libbpf_rs::ErrorKind::AlreadyExists => {}
            Err(_) => {
                unkept.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
}

/// Decodes a `struct connect_event` (see `bpf/enforce.h`).
fn decode_report(bytes: &[u8]) -> Option<ConnectReport> {
    if bytes.len() != CONNECT_EVENT_SIZE {
        return None;
    }
    let record = Record(bytes);
    Some(ConnectReport {
        pid: record.u32(24),
        uid: record.u32(28),
        comm: bpf::c_string(record.bytes(44, 16)),
        matched: ConnectMatch {
            cgroup_id: record.u64(0),
            remote: decode_address(record.bytes(8, 16), record.bytes(38, 1)[0])?,
            rule_id: record.u32(32),
            port: record.u16(36),
            protocol: protocol_from_number(record.bytes(39, 1)[0]),
            action: decode_action(record.bytes(40, 1)[0]),
            filter_tag: record.u32(60),
        },
        counted: record.bytes(EVENT_COUNTED_OFFSET, 1)[0] != 0,
    })
}

/// Decodes a `struct connect_key` (see `bpf/enforce.h`).
fn decode_key(bytes: &[u8]) -> Option<ConnectMatch> {
    if bytes.len() != CONNECT_KEY_SIZE {
        return None;
    }
    let record = Record(bytes);
    Some(ConnectMatch {
        cgroup_id: record.u64(0),
        remote: decode_address(record.bytes(8, 16), record.bytes(34, 1)[0])?,
        rule_id: record.u32(24),
        filter_tag: record.u32(28),
        port: record.u16(32),
        protocol: protocol_from_number(record.bytes(35, 1)[0]),
        action: decode_action(record.bytes(36, 1)[0]),
    })
}

/// An address as the programs write it: network byte order, IPv4 in the first 4 bytes.
fn decode_address(address: &[u8], family: u8) -> Option<IpAddr> {
    Some(match family {
        4 => IpAddr::V4(Ipv4Addr::new(
            address[0], address[1], address[2], address[3],
        )),
        _ => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(address).ok()?)),
    })
}

/// The programs report `alert` (2) and `block` (3) matches only.
fn decode_action(action: u8) -> RuleAction {
    match action {
        3 => RuleAction::Block,
        _ => RuleAction::Alert,
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectReportsDrain, ConnectReportsRing, cgroup2_mount_point};
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn a_report_ring_is_a_power_of_two_within_its_bounds() {
        for bytes in [4096, 65_536, 1 << 20, 1 << 28] {
            let ring: ConnectReportsRing = bytes.to_string().parse().unwrap();
            assert_eq!(ring.bytes(), bytes);
        }
        assert_eq!(ConnectReportsRing::DEFAULT.capacity(), 14_563);
        assert_eq!(ConnectReportsRing::DEFAULT.queue_capacity(), 58_252);
        assert_eq!(ConnectReportsRing::new(4096).unwrap().capacity(), 56);
        assert_eq!(ConnectReportsRing::new(4096).unwrap().queue_capacity(), 224);
        for bad in ["0", "2048", "5000", "536870912", "-4096", "1MiB", ""] {
            let error = bad.parse::<ConnectReportsRing>().unwrap_err().to_string();
            assert!(
                error.contains("connect report ring buffer"),
                "{bad}: {error}"
            );
        }
        let error = ConnectReportsRing::new(5000).unwrap_err().to_string();
        assert!(
            error.contains("5000 bytes (it takes a power of two from 4096 to 268435456)"),
            "{error}"
        );
    }

    #[test]
    fn a_drain_interval_is_within_its_bounds_and_sets_the_rate_a_ring_keeps_up_with() {
        for millis in [10, 20, 200] {
            let drain: ConnectReportsDrain = millis.to_string().parse().unwrap();
            assert_eq!(drain.interval(), Duration::from_millis(millis));
            assert_eq!(drain.to_string(), millis.to_string());
        }
        assert_eq!(
            ConnectReportsDrain::default().interval(),
            Duration::from_millis(200)
        );
        let ring = ConnectReportsRing::DEFAULT;
        assert_eq!(
            ConnectReportsDrain::DEFAULT.reports_per_second(ring),
            291_260
        );
        let every_10_ms = ConnectReportsDrain::new(Duration::from_millis(10)).unwrap();
        assert_eq!(every_10_ms.reports_per_second(ring), 5_825_200);
        for bad in ["0", "9", "201", "1000", "-5", "0.5", "20ms", ""] {
            let error = bad.parse::<ConnectReportsDrain>().unwrap_err().to_string();
            assert!(
                error.contains("connect report drain interval"),
                "{bad}: {error}"
            );
        }
        let error = "201"
            .parse::<ConnectReportsDrain>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("201 ms (it takes 10 to 200 ms)"), "{error}");
    }

    #[test]
    fn finds_the_cgroup2_mount_on_hybrid_and_unified_hosts() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
        assert_eq!(
            cgroup2_mount_point(hybrid).as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        assert_eq!(
            cgroup2_mount_point(unified).as_deref(),
            Some(Path::new("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup2_mount_point("proc /proc proc rw 0 0\n\ngarbage\n"),
            None
        );
    }
}
