//! Reading feeds from files, directories, zip archives and downloaded bytes.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use palisade_version::Scheme;

use crate::distro::{self, AlpineSecdb, DebianTracker};
use crate::ecosystem::{normalize_ecosystem, scheme_of};
use crate::error::{Error, ErrorKind};
use crate::model::Record;
use crate::{osv, updateinfo};

/// Size limits that protect an import from hostile or broken input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest single feed file (or zip entry) read, in bytes.
    pub max_file_bytes: u64,
    /// The largest total uncompressed size of a zip archive, in bytes.
    pub max_zip_uncompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 64 << 20,
            max_zip_uncompressed_bytes: 2 << 30,
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

/// What reading one source produced.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) records: Vec<Record>,
    pub(crate) formats: BTreeSet<&'static str>,
    pub(crate) warnings: Vec<Warning>,
}

impl Parsed {
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
    progress: &dyn Progress,
) -> Result<Parsed, Error> {
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
    progress.start(files.len() as u64);
    let mut parsed = Parsed::default();
    for file in files {
        let bytes = read_file(&file, feed.limits)?;
        read_bytes_into(&file.display().to_string(), &bytes, &feed, &mut parsed)?;
        progress.advance(1);
    }
    Ok(parsed)
}

/// Reads downloaded or in-memory bytes; `name` locates them in warnings.
pub(crate) fn read_bytes(
    name: &str,
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<Parsed, Error> {
    let feed = Feed::new(options)?;
    let mut parsed = Parsed::default();
    read_bytes_into(name, bytes, &feed, &mut parsed)?;
    Ok(parsed)
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
        // Repository metadata directories name it `<checksum>-updateinfo.xml.gz`.
        || (name.contains("updateinfo")
            && [".xml", ".xml.gz", ".xml.xz", ".xml.zst"]
                .iter()
                .any(|ext| name.ends_with(ext)))
}

fn read_file(path: &Path, limits: Limits) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
    let size = file
        .metadata()
        .map_err(|source| io_error(path, source))?
        .len();
    let is_zip = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("zip"));
    // A zip is bounded by its uncompressed total instead, checked entry by entry.
    let limit = if is_zip {
        limits.max_zip_uncompressed_bytes
    } else {
        limits.max_file_bytes
    };
    if size > limit {
        return Err(ErrorKind::TooLarge {
            what: path.display().to_string(),
            size,
            limit,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error(path, source))?;
    Ok(bytes)
}

fn read_bytes_into(
    name: &str,
    bytes: &[u8],
    feed: &Feed,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let limits = feed.limits;
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        parsed.formats.insert("osv-zip");
        return read_zip(name, bytes, limits, parsed);
    }
    if let Some(compression) = Compression::of(bytes) {
        let inflated = match decompress(name, compression, bytes, limits.max_file_bytes)? {
            Ok(inflated) => inflated,
            Err(reason) => {
                parsed.warn(name, reason);
                return Ok(());
            }
        };
        if Compression::of(&inflated).is_some() {
            parsed.warn(name, "compressed twice; only one layer is read");
            return Ok(());
        }
        // Warnings name the file as it is stored, compressed.
        return read_bytes_into(name, &inflated, feed, parsed);
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ErrorKind::TooLarge {
            what: name.to_owned(),
            size: bytes.len() as u64,
            limit: limits.max_file_bytes,
        }
        .into());
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        parsed.warn(name, "not UTF-8 text");
        return Ok(());
    };
    let lower = name.to_ascii_lowercase();
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        parsed.formats.insert("osv");
        match osv::from_yaml(text) {
            Ok(record) => parsed.records.push(record),
            Err(reason) => parsed.warn(name, reason),
        }
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        read_json(name, trimmed, parsed);
    } else if trimmed.starts_with('<') {
        read_updateinfo(name, trimmed, feed.release.as_deref(), parsed);
    } else if trimmed.is_empty() {
        parsed.warn(name, "empty file");
    } else {
        parsed.warn(name, "unknown feed format");
    }
    Ok(())
}

/// The compressions repository metadata comes in, by their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    fn of(bytes: &[u8]) -> Option<Compression> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// Decompresses `bytes`, refusing output over `limit` bytes (an error: a compression bomb
/// or a feed over the import limit); corrupt data is the inner error, a warning.
fn decompress(
    name: &str,
    compression: Compression,
    bytes: &[u8],
    limit: u64,
) -> Result<Result<Vec<u8>, String>, Error> {
    let mut output = Vec::new();
    let outcome = match compression {
        Compression::Gzip => flate2::read::MultiGzDecoder::new(bytes)
            .take(limit + 1)
            .read_to_end(&mut output)
            .map(drop)
            .map_err(|error| error.to_string()),
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(bytes)
            .and_then(|decoder| decoder.take(limit + 1).read_to_end(&mut output))
            .map(drop)
            .map_err(|error| error.to_string()),
        Compression::Xz => {
            let mut bounded = BoundedWriter {
                bytes: &mut output,
                limit,
            };
            match lzma_rs::xz_decompress(&mut std::io::BufReader::new(bytes), &mut bounded) {
                Ok(()) => Ok(()),
                // Stopped by the bound: reported below as too large.
                Err(_) if bounded.bytes.len() as u64 > limit => Ok(()),
                Err(error) => Err(error.to_string()),
            }
        }
    };
    if output.len() as u64 > limit {
        return Err(ErrorKind::TooLarge {
            what: format!("{name} (decompressed)"),
            size: output.len() as u64,
            limit,
        }
        .into());
    }
    Ok(outcome
        .map(|()| output)
        .map_err(|error| format!("corrupt {} data: {error}", compression.name())))
}

/// A writer that fails once more than `limit` bytes were written (keeping one past it, so
/// that the caller sees the limit was crossed).
struct BoundedWriter<'a> {
    bytes: &'a mut Vec<u8>,
    limit: u64,
}

impl std::io::Write for BoundedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = (self.limit + 1).saturating_sub(self.bytes.len() as u64) as usize;
        if room == 0 {
            return Err(std::io::Error::other("decompressed data over the limit"));
        }
        let taken = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many update ids a grouped warning names before it says "and N more".
const IDS_PER_WARNING: usize = 5;

/// Reads a yum/dnf updateinfo document. Skipped updates are warned about once per reason,
/// naming the first few ids, since a repository's document can skip thousands alike.
fn read_updateinfo(name: &str, text: &str, release: Option<&str>, parsed: &mut Parsed) {
    parsed.formats.insert("updateinfo");
    let document = updateinfo::parse(text, release);
    let record_count = document.records.len();
    parsed.records.extend(document.records);
    let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
    for (id, reason) in document.skipped {
        match by_reason.iter_mut().find(|(known, _)| *known == reason) {
            Some((_, ids)) => ids.push(id),
            None => by_reason.push((reason, vec![id])),
        }
    }
    for (reason, ids) in by_reason {
        let named = ids
            .iter()
            .take(IDS_PER_WARNING)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let location = match ids.len() {
            1 => format!("{name}: update {named}"),
            n if n <= IDS_PER_WARNING => format!("{name}: updates {named}"),
            n => format!("{name}: updates {named} and {} more", n - IDS_PER_WARNING),
        };
        parsed.warn(location, reason);
    }
    if document.not_security > 0 {
        parsed.warn(
            name,
            format!(
                "{} updates that are not security updates (bug fixes, enhancements) skipped",
                document.not_security
            ),
        );
    }
    if let Some(reason) = document.fatal {
        parsed.warn(
            name,
            format!("{reason}; the {record_count} security updates before it were kept"),
        );
    }
}

fn read_debian_list(name: &str, text: &str, parsed: &mut Parsed) {
    parsed.formats.insert("debian-list");
    let (records, problems) = distro::from_debian_list(text);
    parsed.records.extend(records);
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
            Ok(secdb) => parsed.records.extend(distro::from_alpine(secdb)),
            Err(error) => parsed.warn(name, format!("malformed Alpine secdb: {error}")),
        }
    } else if object.is_some_and(|object| {
        !object.contains_key("id") && object.values().all(serde_json::Value::is_object)
    }) {
        parsed.formats.insert("debian-tracker");
        match serde_json::from_value::<DebianTracker>(value) {
            Ok(tracker) => parsed.records.extend(distro::from_debian_tracker(tracker)),
            Err(error) => parsed.warn(name, format!("malformed Debian tracker JSON: {error}")),
        }
    } else {
        parsed.formats.insert("osv");
        for (record_idx, result) in osv::from_json_value(value).into_iter().enumerate() {
            match result {
                Ok(record) => parsed.records.push(record),
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
