//! Reading feeds from files, directories, zip archives and downloaded bytes.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use palisade_version::Scheme;

use crate::decode::{self, Bounded, Compression};
use crate::distro::{self, AlpineSecdb, DebianTracker};
use crate::ecosystem::{normalize_ecosystem, scheme_of};
use crate::error::{Error, ErrorKind};
use crate::model::Record;
use crate::spill::SpillError;
use crate::xml::{self, Element, Handler};
use crate::{osv, oval, updateinfo};

/// Size limits that protect an import from hostile or broken input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest single feed file (or zip entry) read whole (JSON, YAML, text lists),
    /// decompressed, in bytes.
    pub max_file_bytes: u64,
    /// The largest total uncompressed size of a zip archive, in bytes.
    pub max_zip_uncompressed_bytes: u64,
    /// The largest XML feed (updateinfo, OVAL), decompressed, in bytes. XML is read
    /// streaming and records are stored as they come, so memory does not grow with the
    /// document; the bound stops compression bombs and runaway input.
    pub max_xml_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 64 << 20,
            max_zip_uncompressed_bytes: 2 << 30,
            max_xml_bytes: 4 << 30,
        }
    }
}

/// What an import is given besides its input: the size limits and, for a feed whose
/// records do not name their release (yum/dnf `updateinfo.xml`), the release they are for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The size limits.
    pub limits: Limits,
    /// An rpm distribution release (`Amazon Linux:2`, `Oracle Linux:9`, `Fedora:40`) that
    /// every update of an updateinfo document is for, instead of the one its id and package
    /// release tags tell. Other formats name their releases themselves and ignore it.
    pub release: Option<String>,
}

impl From<Limits> for ImportOptions {
    fn from(limits: Limits) -> ImportOptions {
        ImportOptions {
            limits,
            release: None,
        }
    }
}

impl ImportOptions {
    /// The release, normalised, after checking that it names an rpm distribution's release.
    fn checked_release(&self) -> Result<Option<String>, Error> {
        let Some(release) = &self.release else {
            return Ok(None);
        };
        let normalized = normalize_ecosystem(release);
        let has_release = normalized
            .split_once(':')
            .is_some_and(|(_, release)| !release.is_empty());
        if scheme_of(&normalized) != Some(Scheme::Rpm) || !has_release {
            return Err(ErrorKind::InvalidRelease {
                release: release.clone(),
            }
            .into());
        }
        Ok(Some(normalized))
    }
}

/// Receives progress of a long import, counted in feed files.
pub trait Progress {
    /// The number of files the import will read.
    fn start(&self, total_files: u64);
    /// `n_files` more files were read.
    fn advance(&self, n_files: u64);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total_files: u64) {}
    fn advance(&self, _n_files: u64) {}
}

/// A record that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The file (and zip entry or line) it came from.
    pub location: String,
    /// Why it was skipped.
    pub reason: String,
}

/// What reading one source sends to the store as it goes.
#[derive(Debug)]
pub(crate) enum Message {
    /// The number of files the import will read ([`Progress::start`]).
    Start(u64),
    /// One more file was read ([`Progress::advance`]).
    Advance,
    /// Records read, to be stored.
    Records(Vec<Record>),
    /// Whether the records that follow, until the next such message, are merged by id:
    /// one OVAL document's (Azure Linux's definitions of one CVE, one per package), each
    /// `true` starting a new document's ids. Records of other documents or formats that
    /// share an id (rhel-8's and rhel-9's CVE, a GHSA id in several ecosystems' files) stay
    /// records of their own.
    MergeIds(bool),
}

/// How many records go to the store at once.
const RECORDS_PER_MESSAGE: usize = 256;

/// What reading one source produced: records go to the store in batches as they are read;
/// the formats and warnings are returned at the end.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// To the store; `None` once the store stopped listening (it failed, and says why).
    store: Option<tokio::sync::mpsc::Sender<Message>>,
    batch: Vec<Record>,
    pub(crate) formats: BTreeSet<&'static str>,
    pub(crate) warnings: Vec<Warning>,
}

impl Parsed {
    /// Reading that sends to `store`.
    pub(crate) fn new(store: tokio::sync::mpsc::Sender<Message>) -> Parsed {
        Parsed {
            store: Some(store),
            batch: Vec::with_capacity(RECORDS_PER_MESSAGE),
            formats: BTreeSet::new(),
            warnings: Vec::new(),
        }
    }

    /// Adds a record, sending a batch when it is full.
    pub(crate) fn push(&mut self, record: Record) {
        self.batch.push(record);
        if self.batch.len() >= RECORDS_PER_MESSAGE {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(RECORDS_PER_MESSAGE));
            self.send(Message::Records(batch));
        }
    }

    fn extend(&mut self, records: impl IntoIterator<Item = Record>) {
        for record in records {
            self.push(record);
        }
    }

    /// Sends what is left; the reading is done.
    pub(crate) fn finish(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        if !batch.is_empty() {
            self.send(Message::Records(batch));
        }
        self.store = None;
    }

    /// Whether the store stopped listening (it failed): reading on is useless.
    pub(crate) fn store_failed(&self) -> bool {
        self.store.as_ref().is_none_or(|store| store.is_closed())
    }

    /// Whether the records pushed from now on are merged by id ([`Message::MergeIds`]).
    fn merge_ids(&mut self, merge: bool) {
        let batch = std::mem::take(&mut self.batch);
        if !batch.is_empty() {
            self.send(Message::Records(batch));
        }
        self.send(Message::MergeIds(merge));
    }

    fn send(&mut self, message: Message) {
        // The reading runs on a blocking thread; the store awaits the other end.
        if let Some(store) = &self.store
            && store.blocking_send(message).is_err()
        {
            self.store = None;
        }
    }

    fn warn(&mut self, location: impl Into<String>, reason: impl Into<String>) {
        let warning = Warning {
            location: location.into(),
            reason: reason.into(),
        };
        tracing::warn!(location = %warning.location, reason = %warning.reason, "Skipped a record.");
        self.warnings.push(warning);
    }
}

/// Reads a file or, recursively, a directory.
pub(crate) fn read_path(
    path: &Path,
    options: &ImportOptions,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let feed = Feed::new(options)?;
    let metadata = std::fs::metadata(path).map_err(|source| io_error(path, source))?;
    let files = if metadata.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    parsed.send(Message::Start(files.len() as u64));
    for file in files {
        if parsed.store_failed() {
            break;
        }
        read_file(&file, &feed, parsed)?;
        parsed.send(Message::Advance);
    }
    Ok(())
}

/// Reads downloaded or in-memory bytes; `name` locates them in warnings.
pub(crate) fn read_bytes(
    name: &str,
    bytes: &[u8],
    options: &ImportOptions,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let feed = Feed::new(options)?;
    if is_zip(bytes) {
        parsed.formats.insert("osv-zip");
        read_zip(name, bytes, feed.limits, parsed)
    } else {
        read_feed(name, bytes, &feed, parsed)
    }
}

/// The checked [`ImportOptions`] every file of an import is read with.
struct Feed {
    limits: Limits,
    /// The release updateinfo documents are for, normalised.
    release: Option<String>,
}

impl Feed {
    fn new(options: &ImportOptions) -> Result<Feed, Error> {
        Ok(Feed {
            limits: options.limits,
            release: options.checked_release()?,
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// Feed files in a directory tree: JSON, YAML, zip, and Debian `list` files. Symbolic links
/// to directories are not followed, so a link cycle cannot loop.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| io_error(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|source| io_error(&path, source))?;
        if file_type.is_dir() {
            collect_files(&path, files)?;
        } else if is_feed_file(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_feed_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    [".json", ".yaml", ".yml", ".zip"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || name == "list"
        || name.ends_with("-list")
        // Repository metadata directories name it `<checksum>-updateinfo.xml.gz`; OVAL
        // feeds are `com.oracle.elsa-2024.xml.bz2`, `azurelinux-3.0-oval.xml`.
        || ((name.contains("updateinfo") || name.contains("oval") || name.starts_with("com.oracle.elsa"))
            && [".xml", ".xml.gz", ".xml.bz2", ".xml.xz", ".xml.zst"]
                .iter()
                .any(|ext| name.ends_with(ext)))
}

/// Reads one file: a zip archive whole (its entries are bounded one by one), anything
/// else as a stream.
fn read_file(path: &Path, feed: &Feed, parsed: &mut Parsed) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
    let size = file
        .metadata()
        .map_err(|source| io_error(path, source))?
        .len();
    let name = path.display().to_string();
    let mut input = std::io::BufReader::new(file);
    let head = input.fill_buf().map_err(|source| io_error(path, source))?;
    // A plain file read whole is refused before it is read.
    let read_whole = Compression::of(head).is_none() && !starts_xml(head);
    if read_whole && !is_zip(head) && size > feed.limits.max_file_bytes {
        return Err(ErrorKind::TooLarge {
            what: name,
            size,
            limit: feed.limits.max_file_bytes,
        }
        .into());
    }
    if !is_zip(head) {
        return read_feed(&name, input, feed, parsed);
    }
    let limit = feed.limits.max_zip_uncompressed_bytes;
    if size > limit {
        return Err(ErrorKind::TooLarge {
            what: name,
            size,
            limit,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    input
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error(path, source))?;
    parsed.formats.insert("osv-zip");
    read_zip(&name, &bytes, feed.limits, parsed)
}

/// Whether a feed's first bytes open an XML document (after a byte order mark and space).
fn starts_xml(head: &[u8]) -> bool {
    let start = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
    start.trim_ascii_start().starts_with(b"<")
}

fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Reads one feed from `input`, decompressing it as it is read when it is compressed.
fn read_feed(
    name: &str,
    mut input: impl BufRead + Send,
    feed: &Feed,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let head = input
        .fill_buf()
        .map_err(|source| io_error(Path::new(name), source))?;
    let Some(compression) = Compression::of(head) else {
        return read_decompressed(name, &mut input, None, feed, parsed);
    };
    let read = |decompressed: &mut dyn BufRead| {
        read_decompressed(name, decompressed, Some(compression), feed, parsed)
    };
    match decode::with_decompressed(compression, input, read) {
        Ok(outcome) => outcome,
        Err(error) => {
            parsed.warn(
                name,
                format!("corrupt {} data: {error}", compression.name()),
            );
            Ok(())
        }
    }
}

/// Reads a feed's (decompressed) bytes: XML streaming, other formats whole. `compression`
/// is the compression they came in, if any.
fn read_decompressed(
    name: &str,
    input: &mut dyn BufRead,
    compression: Option<Compression>,
    feed: &Feed,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    // A read error of decompressed data is corrupt data (a warning); of a file, an error.
    let failed = |parsed: &mut Parsed, source: std::io::Error| match compression {
        Some(_) => {
            parsed.warn(name, source.to_string());
            Ok(())
        }
        None => Err(io_error(Path::new(name), source)),
    };
    let head = match input.fill_buf() {
        Ok(head) => head,
        Err(source) => return failed(parsed, source),
    };
    if compression.is_some() && Compression::of(head).is_some() {
        parsed.warn(name, "compressed twice; only one layer is read");
        return Ok(());
    }
    if starts_xml(head) {
        return read_xml(name, input, compression.is_some(), feed, parsed);
    }
    let limit = feed.limits.max_file_bytes;
    let mut bytes = Vec::new();
    if let Err(source) = input.take(limit + 1).read_to_end(&mut bytes) {
        return failed(parsed, source);
    }
    if bytes.len() as u64 > limit {
        let what = match compression {
            Some(_) => format!("{name} (decompressed)"),
            None => name.to_owned(),
        };
        return Err(ErrorKind::TooLarge {
            what,
            size: bytes.len() as u64,
            limit,
        }
        .into());
    }
    read_text(name, &bytes, compression.is_some(), feed, parsed)
}

/// Reads a feed held whole: OSV YAML or JSON, Alpine secdb, the Debian tracker's JSON or
/// lists (and XML whose start the stream's first buffer did not show).
fn read_text(
    name: &str,
    bytes: &[u8],
    compressed: bool,
    feed: &Feed,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        parsed.warn(name, "not UTF-8 text");
        return Ok(());
    };
    let lower = name.to_ascii_lowercase();
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        parsed.formats.insert("osv");
        match osv::from_yaml(text) {
            Ok(record) => parsed.push(record),
            Err(reason) => parsed.warn(name, reason),
        }
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        read_json(name, trimmed, parsed);
    } else if trimmed.starts_with('<') {
        read_xml(name, &mut trimmed.as_bytes(), compressed, feed, parsed)?;
    } else if trimmed.is_empty() {
        parsed.warn(name, "empty file");
    } else {
        parsed.warn(name, "unknown feed format");
    }
    Ok(())
}

/// How many update ids a grouped warning names before it says "and N more".
const IDS_PER_WARNING: usize = 5;

/// Reads an XML feed streaming, telling updateinfo from OVAL by its root element; at most
/// [`Limits::max_xml_bytes`] are read.
fn read_xml(
    name: &str,
    input: &mut dyn BufRead,
    compressed: bool,
    feed: &Feed,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let limit = feed.limits.max_xml_bytes;
    let mut bounded = Bounded::new(input, limit);
    let mut document = XmlFeed::Undecided {
        name: name.to_owned(),
        release: feed.release.clone(),
    };
    let outcome = xml::read(
        &mut bounded,
        &mut WhileStored {
            feed: &mut document,
            parsed,
        },
    );
    if parsed.store_failed() {
        return Err(ErrorKind::StoreStopped.into());
    }
    if bounded.exceeded() {
        let what = if compressed {
            format!("{name} (decompressed)")
        } else {
            name.to_owned()
        };
        return Err(ErrorKind::TooLarge {
            what,
            size: bounded.consumed(),
            limit,
        }
        .into());
    }
    let stopped = match outcome {
        Ok(()) => None,
        Err(xml::Stop::Malformed(reason) | xml::Stop::Input(reason)) => Some(reason),
    };
    document.report(name, stopped, parsed)
}

/// An XML feed read while the store takes its records: an updateinfo document's records
/// go to the store as each update ends, and the reading stops once the store failed,
/// rather than parse the rest of a document of hundreds of MB for nothing.
struct WhileStored<'a> {
    feed: &'a mut XmlFeed,
    parsed: &'a mut Parsed,
}

impl Handler for WhileStored<'_> {
    fn open(&mut self, element: &Element, stack: &[String]) -> Result<(), String> {
        if self.parsed.store_failed() {
            return Err(ErrorKind::StoreStopped.to_string());
        }
        self.feed.open(element, stack)
    }

    fn close(&mut self, name: &str, text: &str, stack: &[String]) {
        self.feed.close(name, text, stack);
        if let XmlFeed::Updateinfo(reading) = self.feed {
            for record in reading.take_records() {
                self.parsed.push(record);
            }
        }
    }

    fn position(&self) -> String {
        self.feed.position()
    }
}

/// An XML feed being read: undecided until its root element names the format.
enum XmlFeed {
    Undecided {
        name: String,
        release: Option<String>,
    },
    Updateinfo(Box<updateinfo::Reading>),
    Oval(Box<oval::Reading>),
    /// An OVAL document whose temporary database could not be made.
    OvalFailed(SpillError),
}

/// The error of an OVAL document whose temporary database failed: the import stops
/// rather than store part of the document in place of an earlier import.
fn spill_failed(name: &str, error: &SpillError) -> Error {
    ErrorKind::TemporaryStore {
        what: name.to_owned(),
        reason: error.to_string(),
    }
    .into()
}

impl Handler for XmlFeed {
    fn open(&mut self, element: &Element, stack: &[String]) -> Result<(), String> {
        if let XmlFeed::Undecided { name, release } = self {
            *self = match element.name() {
                "updates" => {
                    XmlFeed::Updateinfo(Box::new(updateinfo::Reading::new(release.as_deref())))
                }
                "oval_definitions" => match oval::Reading::new(name, release.as_deref()) {
                    Ok(reading) => XmlFeed::Oval(Box::new(reading)),
                    Err(error) => {
                        let reason = format!("the temporary database failed: {error}");
                        *self = XmlFeed::OvalFailed(error);
                        return Err(reason);
                    }
                },
                other => {
                    return Err(format!(
                        "not an updateinfo or OVAL document (root element <{other}>)"
                    ));
                }
            };
        }
        match self {
            XmlFeed::Undecided { .. } | XmlFeed::OvalFailed(_) => Ok(()),
            XmlFeed::Updateinfo(reading) => reading.open(element, stack),
            XmlFeed::Oval(reading) => reading.open(element, stack),
        }
    }

    fn close(&mut self, name: &str, text: &str, stack: &[String]) {
        match self {
            XmlFeed::Undecided { .. } | XmlFeed::OvalFailed(_) => {}
            XmlFeed::Updateinfo(reading) => reading.close(name, text, stack),
            XmlFeed::Oval(reading) => reading.close(name, text, stack),
        }
    }

    fn position(&self) -> String {
        match self {
            XmlFeed::Undecided { .. } | XmlFeed::OvalFailed(_) => {
                "before the root element".to_owned()
            }
            XmlFeed::Updateinfo(reading) => reading.position(),
            XmlFeed::Oval(reading) => reading.position(),
        }
    }
}

impl XmlFeed {
    /// Adds what the document gave to `parsed`, with a warning per reason for skipping
    /// (naming the first few ids, since a feed can skip thousands alike) and for why the
    /// reading stopped early (`stopped`), if it did; an error when an OVAL document's
    /// temporary database failed.
    fn report(self, name: &str, stopped: Option<String>, parsed: &mut Parsed) -> Result<(), Error> {
        let (record_count, skipped, kind, not_counted) = match self {
            XmlFeed::Undecided { .. } => {
                parsed.warn(
                    name,
                    stopped.unwrap_or_else(|| "no root element".to_owned()),
                );
                return Ok(());
            }
            XmlFeed::OvalFailed(error) => return Err(spill_failed(name, &error)),
            XmlFeed::Updateinfo(reading) => {
                parsed.formats.insert("updateinfo");
                let document = reading.into_result();
                let not_counted = (document.not_security > 0).then(|| {
                    format!(
                        "{} updates that are not security updates (bug fixes, enhancements) skipped",
                        document.not_security
                    )
                });
                (
                    document.record_count as usize,
                    document.skipped,
                    ("update", "security updates"),
                    not_counted,
                )
            }
            XmlFeed::Oval(reading) => {
                parsed.formats.insert("oval");
                parsed.merge_ids(true);
                let document = reading.into_result(&mut |record| {
                    parsed.push(record);
                    !parsed.store_failed()
                });
                parsed.merge_ids(false);
                let document = match document {
                    Ok(document) => document,
                    Err(oval::Stopped::Spill(error)) => return Err(spill_failed(name, &error)),
                    Err(oval::Stopped::StoreFailed) => return Err(ErrorKind::StoreStopped.into()),
                };
                let not_counted = (document.not_vulnerability > 0).then(|| {
                    format!(
                        "{} definitions that are not patch or vulnerability definitions (or are Red Hat's unaffected ones) skipped",
                        document.not_vulnerability
                    )
                });
                (
                    document.record_count as usize,
                    document.skipped,
                    ("definition", "definitions' records"),
                    not_counted,
                )
            }
        };
        let (item, kept) = kind;
        skipped.warn(name, item, parsed);
        if let Some(reason) = not_counted {
            parsed.warn(name, reason);
        }
        if let Some(reason) = stopped {
            parsed.warn(
                name,
                format!("{reason}; the {record_count} {kept} before it were kept"),
            );
        }
        Ok(())
    }
}

/// The most distinct reasons [`Skipped`] keeps; the skips of later reasons are counted
/// together.
const MAX_SKIP_REASONS: usize = 1000;

/// The longest skip reason [`Skipped`] keeps, in bytes; a longer one is cut there.
const MAX_REASON_BYTES: usize = 512;

/// What a document's reading skipped, grouped by reason: the first [`IDS_PER_WARNING`] ids
/// of each and how many, for at most [`MAX_SKIP_REASONS`] reasons, so that a feed skipping
/// thousands of items neither floods the warnings nor holds every id.
#[derive(Debug, Default)]
pub(crate) struct Skipped {
    /// Each reason with its first ids and its count, in the order first seen.
    reasons: Vec<(String, Vec<String>, usize)>,
    at: HashMap<String, usize>,
    /// The skips of reasons past the bound: the first ids and the count.
    others: (Vec<String>, usize),
}

impl Skipped {
    /// The item `id` was skipped for `reason` (its first [`MAX_REASON_BYTES`] told: a
    /// reason can quote a feed's pattern or value of any length).
    pub(crate) fn add(&mut self, id: &str, mut reason: String) {
        if reason.len() > MAX_REASON_BYTES {
            let mut end = MAX_REASON_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str("...");
        }
        let at = match self.at.get(&reason) {
            Some(&at) => Some(at),
            None if self.reasons.len() < MAX_SKIP_REASONS => {
                self.at.insert(reason.clone(), self.reasons.len());
                self.reasons.push((reason, Vec::new(), 0));
                Some(self.reasons.len() - 1)
            }
            None => None,
        };
        let (ids, count) = match at.and_then(|at| self.reasons.get_mut(at)) {
            Some((_, ids, count)) => (ids, count),
            None => (&mut self.others.0, &mut self.others.1),
        };
        if ids.len() < IDS_PER_WARNING {
            ids.push(id.to_owned());
        }
        *count += 1;
    }

    /// One warning per reason, naming the first ids of `item`s of the document `name`.
    fn warn(self, name: &str, item: &str, parsed: &mut Parsed) {
        let others = (self.others.1 > 0).then(|| {
            let reason = format!(
                "other reasons (only the first {MAX_SKIP_REASONS} distinct reasons are told)"
            );
            (reason, self.others.0, self.others.1)
        });
        for (reason, ids, count) in self.reasons.into_iter().chain(others) {
            let named = ids.join(", ");
            let location = match count {
                1 => format!("{name}: {item} {named}"),
                n if n <= IDS_PER_WARNING => format!("{name}: {item}s {named}"),
                n => format!("{name}: {item}s {named} and {} more", n - IDS_PER_WARNING),
            };
            parsed.warn(location, reason);
        }
    }
}

fn read_debian_list(name: &str, text: &str, parsed: &mut Parsed) {
    parsed.formats.insert("debian-list");
    let (records, problems) = distro::from_debian_list(text);
    parsed.extend(records);
    for (line_number, reason) in problems {
        parsed.warn(format!("{name}:{line_number}"), reason);
    }
}

/// JSON is an OSV record, an array of them, Alpine secdb, or the Debian tracker's dump.
fn read_json(name: &str, text: &str, parsed: &mut Parsed) {
    // A Debian list also opens with `[`; JSON that does not parse but looks like one is one.
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_)
            if text.starts_with("[")
                && text.lines().next().is_some_and(|line| line.contains("] D")) =>
        {
            read_debian_list(name, text, parsed);
            return;
        }
        Err(error) => {
            parsed.warn(name, format!("malformed JSON: {error}"));
            return;
        }
    };
    let object = value.as_object();
    if object.is_some_and(|object| {
        object.contains_key("distroversion") && object.contains_key("packages")
    }) {
        parsed.formats.insert("alpine-secdb");
        match serde_json::from_value::<AlpineSecdb>(value) {
            Ok(secdb) => parsed.extend(distro::from_alpine(secdb)),
            Err(error) => parsed.warn(name, format!("malformed Alpine secdb: {error}")),
        }
    } else if object.is_some_and(|object| {
        !object.contains_key("id") && object.values().all(serde_json::Value::is_object)
    }) {
        parsed.formats.insert("debian-tracker");
        match serde_json::from_value::<DebianTracker>(value) {
            Ok(tracker) => parsed.extend(distro::from_debian_tracker(tracker)),
            Err(error) => parsed.warn(name, format!("malformed Debian tracker JSON: {error}")),
        }
    } else {
        parsed.formats.insert("osv");
        for (record_idx, result) in osv::from_json_value(value).into_iter().enumerate() {
            match result {
                Ok(record) => parsed.push(record),
                Err(reason) if record_idx == 0 => parsed.warn(name, reason),
                Err(reason) => parsed.warn(format!("{name}[{record_idx}]"), reason),
            }
        }
    }
}

/// Reads the `.json` entries of an OSV zip (as published per ecosystem), refusing unsafe
/// names and archives that would inflate beyond the limit.
fn read_zip(name: &str, bytes: &[u8], limits: Limits, parsed: &mut Parsed) -> Result<(), Error> {
    let zip_error = |source| -> Error {
        ErrorKind::Zip {
            archive: name.to_owned(),
            source,
        }
        .into()
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_error)?;
    let mut declared_total: u64 = 0;
    for entry_idx in 0..archive.len() {
        let entry = archive.by_index_raw(entry_idx).map_err(zip_error)?;
        if !is_safe_entry_name(entry.name_raw()) || entry.enclosed_name().is_none() {
            return Err(ErrorKind::UnsafeZipEntry {
                archive: name.to_owned(),
                entry: String::from_utf8_lossy(entry.name_raw()).into_owned(),
            }
            .into());
        }
        declared_total = declared_total.saturating_add(entry.size());
    }
    if declared_total > limits.max_zip_uncompressed_bytes {
        return Err(ErrorKind::TooLarge {
            what: format!("{name} (uncompressed)"),
            size: declared_total,
            limit: limits.max_zip_uncompressed_bytes,
        }
        .into());
    }
    let mut inflated_total: u64 = 0;
    for entry_idx in 0..archive.len() {
        if parsed.store_failed() {
            return Err(ErrorKind::StoreStopped.into());
        }
        let entry = archive.by_index(entry_idx).map_err(zip_error)?;
        let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let entry_name = format!("{name}!{raw_name}");
        if entry.is_dir() || !raw_name.to_ascii_lowercase().ends_with(".json") {
            continue;
        }
        // Declared sizes can lie, so the reads are bounded too.
        let mut content = Vec::new();
        entry
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut content)
            .map_err(|source| io_error(Path::new(&entry_name), source))?;
        let size = content.len() as u64;
        inflated_total = inflated_total.saturating_add(size);
        if size > limits.max_file_bytes || inflated_total > limits.max_zip_uncompressed_bytes {
            return Err(ErrorKind::TooLarge {
                what: entry_name,
                size,
                limit: limits.max_file_bytes,
            }
            .into());
        }
        match std::str::from_utf8(&content) {
            Ok(text) => read_json(&entry_name, text.trim_start(), parsed),
            Err(_) => parsed.warn(entry_name, "not UTF-8 text"),
        }
    }
    Ok(())
}

/// A zip entry name that stays inside the archive: relative, with no `..` component, no
/// drive letter and no NUL. Checked on the raw bytes, before any library sanitising.
fn is_safe_entry_name(raw: &[u8]) -> bool {
    let name = String::from_utf8_lossy(raw);
    let absolute = name.starts_with(['/', '\\']) || name.as_bytes().get(1) == Some(&b':');
    !absolute && !name.contains('\0') && !name.split(['/', '\\']).any(|component| component == "..")
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Read};

    use super::{
        Feed, IDS_PER_WARNING, ImportOptions, MAX_REASON_BYTES, MAX_SKIP_REASONS, Message, Parsed,
        RECORDS_PER_MESSAGE, Skipped, read_xml,
    };
    use crate::error::ErrorKind;

    /// A document read from memory that counts, once the reading passed its middle, the
    /// records the store had been sent by then.
    struct HalfwayCount<'a> {
        rest: &'a [u8],
        consumed: usize,
        middle: usize,
        store: tokio::sync::mpsc::Receiver<Message>,
        /// The records received, counted once the reading passed the middle.
        received: usize,
        received_at_middle: Option<usize>,
    }

    impl HalfwayCount<'_> {
        fn receive(&mut self) {
            while let Ok(message) = self.store.try_recv() {
                if let Message::Records(records) = message {
                    self.received += records.len();
                }
            }
        }
    }

    impl Read for HalfwayCount<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let n = self.fill_buf()?.read(buffer)?;
            self.consume(n);
            Ok(n)
        }
    }

    impl BufRead for HalfwayCount<'_> {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            Ok(self.rest)
        }

        fn consume(&mut self, amount: usize) {
            self.rest = &self.rest[amount..];
            self.consumed += amount;
            if self.received_at_middle.is_none() && self.consumed >= self.middle {
                self.receive();
                self.received_at_middle = Some(self.received);
            }
        }
    }

    /// An updateinfo document's records go to the store in batches as its updates end,
    /// not when the document ends: once half of a document of 2,000 security updates was
    /// read, the store had been sent at least the full batches of its first 1,000 records.
    #[test]
    fn updateinfo_records_are_stored_as_their_updates_end() {
        let n_updates = 2_000;
        let mut document = String::from("<updates>");
        for n in 0..n_updates {
            document.push_str(&format!(
                "<update type=\"security\"><id>ALAS2023-2024-{n}</id><pkglist><collection>\
                 <package name=\"pkg{n}\" epoch=\"0\" version=\"1.0\" release=\"1.amzn2023\"/>\
                 </collection></pkglist></update>"
            ));
        }
        document.push_str("</updates>");
        let (sender, receiver) = tokio::sync::mpsc::channel(n_updates);
        let mut parsed = Parsed::new(sender);
        let feed = Feed::new(&ImportOptions::default()).unwrap();
        let mut input = HalfwayCount {
            rest: document.as_bytes(),
            consumed: 0,
            middle: document.len() / 2,
            store: receiver,
            received: 0,
            received_at_middle: None,
        };
        read_xml("updateinfo.xml", &mut input, false, &feed, &mut parsed).unwrap();
        parsed.finish();
        let at_middle = input
            .received_at_middle
            .expect("the reading passed the middle");
        let full_batches = (n_updates / 2) / RECORDS_PER_MESSAGE * RECORDS_PER_MESSAGE;
        assert!(
            (full_batches..=full_batches + RECORDS_PER_MESSAGE).contains(&at_middle),
            "{at_middle} records stored at the middle"
        );
        input.receive();
        assert_eq!(input.received, n_updates);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    /// A reason past [`MAX_REASON_BYTES`] is cut there, at a character boundary.
    #[test]
    fn long_skip_reasons_are_cut() {
        let mut skipped = Skipped::default();
        let reason = format!("pattern {}", "é".repeat(400));
        skipped.add("def:1", reason.clone());
        let (sender, _receiver) = tokio::sync::mpsc::channel(1);
        let mut parsed = Parsed::new(sender);
        skipped.warn("feed.xml", "definition", &mut parsed);
        let told = &parsed.warnings[0].reason;
        let kept = told.strip_suffix("...").unwrap();
        assert!(kept.len() <= MAX_REASON_BYTES && kept.len() > MAX_REASON_BYTES - 2);
        assert!(reason.starts_with(kept));
    }

    /// Once the store stopped taking records (it failed), an XML document is read no
    /// further: the reading stops at its next element with the store's stop, not after
    /// parsing the rest of the document.
    #[test]
    fn reading_stops_once_the_store_failed() {
        let mut document = String::from("<oval_definitions><definitions>");
        for n in 0..20_000 {
            document.push_str(&format!(
                "<definition class=\"vulnerability\" id=\"oval:x:def:{n}\"><metadata><title>t</title></metadata></definition>"
            ));
        }
        document.push_str("</definitions></oval_definitions>");
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        receiver.close();
        let mut parsed = Parsed::new(sender);
        let feed = Feed::new(&ImportOptions::default()).unwrap();
        let mut input = document.as_bytes();
        let error = read_xml("feed.xml", &mut input, false, &feed, &mut parsed).unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::StoreStopped), "{error}");
        // Stopped within the first buffer, far from the end of the ~2 MB document.
        assert!(input.len() > document.len() / 2, "{} left", input.len());
    }

    #[test]
    fn skips_are_told_per_reason_with_their_first_ids_and_bounded() {
        let mut skipped = Skipped::default();
        for n in 0..8 {
            skipped.add(&format!("def:{n}"), "negated criteria".to_owned());
        }
        skipped.add("def:once", "a definition without criteria".to_owned());
        for n in 0..MAX_SKIP_REASONS + 3 {
            skipped.add(&format!("def:r{n}"), format!("test tst:{n} is not defined"));
        }
        let (sender, _receiver) = tokio::sync::mpsc::channel(1);
        let mut parsed = Parsed::new(sender);
        skipped.warn("feed.xml", "definition", &mut parsed);
        let warnings = &parsed.warnings;
        // Two reasons, then MAX_SKIP_REASONS - 2 of the distinct ones, then the others.
        assert_eq!(warnings.len(), MAX_SKIP_REASONS + 1);
        assert_eq!(warnings[0].reason, "negated criteria");
        assert_eq!(
            warnings[0].location,
            format!(
                "feed.xml: definitions def:0, def:1, def:2, def:3, def:4 and {} more",
                8 - IDS_PER_WARNING
            )
        );
        assert_eq!(warnings[1].location, "feed.xml: definition def:once");
        let others = &warnings[MAX_SKIP_REASONS];
        assert!(others.reason.starts_with("other reasons"), "{others:?}");
        assert_eq!(
            others.location,
            "feed.xml: definitions def:r998, def:r999, def:r1000, def:r1001, def:r1002"
        );
    }
}
