//! rpm: the sqlite database (`rpmdb.sqlite`, RHEL 9, Fedora 33+), whose `Packages` table
//! holds one rpm header blob per package; the blob is parsed here, for every backend (the
//! Berkeley DB `Packages` of older releases in `rpm_bdb`, NDB's `Packages.db` of SUSE in
//! `rpm_ndb`).

use std::io::Write;

use crate::cancel::Cancel;
use crate::catalog::{Cataloger, Extracted, Found};

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
/// `RPMTAG_MODULARITYLABEL`: `name:stream:version:context` of a module build.
const TAG_MODULARITYLABEL: u32 = 5096;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Index entries one header may declare; rpm itself allows 0xffff.
const MAX_HEADER_ENTRIES: usize = 0xffff;

/// Packages and owned files of an sqlite rpm database. SQLite needs a file, so the bytes
/// are copied to a private temporary file that is removed when this returns. `cancel` is
/// looked at between pieces of the copy and between packages (`Err` once cancelled): an
/// rpmdb holds thousands of them.
pub(crate) fn parse_sqlite(bytes: &[u8], cancel: &Cancel) -> Result<Extracted, String> {
    let mut temp = tempfile::NamedTempFile::new()
        .map_err(|error| format!("cannot create a temporary copy ({error})"))?;
    for piece in bytes.chunks(Cancel::MAX_READ_BYTES) {
        cancel.checkpoint()?;
        temp.write_all(piece)
            .map_err(|error| format!("cannot write a temporary copy ({error})"))?;
    }
    let connection = rusqlite::Connection::open_with_flags(
        temp.path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|error| format!("not an sqlite database ({error})"))?;
    let mut statement = connection
        .prepare("SELECT blob FROM Packages")
        .map_err(|error| format!("no Packages table ({error})"))?;
    let mut rows = statement
        .query([])
        .map_err(|error| format!("cannot read Packages ({error})"))?;
    let mut extracted = Extracted::packages(Cataloger::Rpm, Vec::new());
    loop {
        cancel.checkpoint()?;
        let Some(row) = rows
            .next()
            .map_err(|error| format!("cannot read a package ({error})"))?
        else {
            break;
        };
        let blob = row
            .get_ref(0)
            .and_then(|value| value.as_blob().map_err(Into::into))
            .map_err(|error| format!("cannot read a package ({error})"))?;
        add_header(&mut extracted, blob);
    }
    Ok(extracted)
}

/// The packages and owned files of rpm header blobs, whatever database held them; blobs that
/// are not package headers (malformed, or the `gpg-pubkey` pseudo-packages) are skipped.
/// `cancel` is looked at before each blob (`Err` once cancelled).
pub(crate) fn extract_headers<'a>(
    blobs: impl IntoIterator<Item = &'a [u8]>,
    cancel: &Cancel,
) -> Result<Extracted, String> {
    let mut extracted = Extracted::packages(Cataloger::Rpm, Vec::new());
    for blob in blobs {
        cancel.checkpoint()?;
        add_header(&mut extracted, blob);
    }
    Ok(extracted)
}

/// Adds the package and files of one header blob, unless it is not a package's.
fn add_header(extracted: &mut Extracted, blob: &[u8]) {
    let Some(header) = parse_header(blob) else {
        return;
    };
    if header.found.name == "gpg-pubkey" {
        return;
    }
    extracted.owned_files.extend(header.files);
    extracted.packages.push((Cataloger::Rpm, header.found));
}

struct Header {
    found: Found,
    files: Vec<String>,
}

/// Parses an rpm header blob: entry count and data length (big-endian), the index entries
/// (tag, type, offset, count), then the data store. `None` when malformed.
fn parse_header(blob: &[u8]) -> Option<Header> {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(blob.get(at..at + 4)?.try_into().ok()?))
    };
    let n_entries = usize::try_from(be32(0)?).ok()?;
    let data_length = usize::try_from(be32(4)?).ok()?;
    if n_entries > MAX_HEADER_ENTRIES {
        return None;
    }
    let data_start = 8 + n_entries * 16;
    let data = blob.get(data_start..data_start.checked_add(data_length)?)?;
    let mut entries = Vec::with_capacity(n_entries);
    for index in 0..n_entries {
        let base = 8 + index * 16;
        entries.push((
            be32(base)?,
            be32(base + 4)?,
            usize::try_from(be32(base + 8)?).ok()?,
            usize::try_from(be32(base + 12)?).ok()?,
        ));
    }
    let entry = |tag: u32| entries.iter().find(|entry| entry.0 == tag);
    let strings = |tag: u32| -> Vec<String> {
        let Some(&(_, kind, offset, count)) = entry(tag) else {
            return Vec::new();
        };
        if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Vec::new();
        }
        let mut strings = Vec::new();
        let mut rest = data.get(offset..).unwrap_or_default();
        for _ in 0..count.min(rest.len()) {
            let Some(end) = memchr::memchr(0, rest) else {
                break;
            };
            strings.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            rest = &rest[end + 1..];
        }
        strings
    };
    let int32s = |tag: u32| -> Vec<u32> {
        let Some(&(_, TYPE_INT32, offset, count)) = entry(tag) else {
            return Vec::new();
        };
        (0..count)
            .map_while(|index| {
                let at = offset.checked_add(index.checked_mul(4)?)?;
                Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
            })
            .collect()
    };
    let first = |tag: u32| strings(tag).into_iter().next();
    let name = first(TAG_NAME)?;
    let version = first(TAG_VERSION)?;
    let release = first(TAG_RELEASE)?;
    let epoch = int32s(TAG_EPOCH).first().copied();
    let full_version = match epoch {
        Some(epoch) if epoch > 0 => format!("{epoch}:{version}-{release}"),
        _ => format!("{version}-{release}"),
    };
    let source_rpm = first(TAG_SOURCERPM);
    let (source_name, source_version) = source_rpm.as_deref().and_then(parse_source_rpm).map_or(
        (None, None),
        |(source, source_version)| {
            // A source rpm's file name has no epoch; its binaries share the spec's epoch.
            let source_version = match epoch {
                Some(epoch) if epoch > 0 => format!("{epoch}:{source_version}"),
                _ => source_version.to_owned(),
            };
            (
                (source != name).then(|| source.to_owned()),
                (source_version != full_version).then_some(source_version),
            )
        },
    );
    let dir_names = strings(TAG_DIRNAMES);
    let files = strings(TAG_BASENAMES)
        .into_iter()
        .zip(int32s(TAG_DIRINDEXES))
        .filter_map(|(base, dir_index)| {
            let dir = dir_names.get(usize::try_from(dir_index).ok()?)?;
            Some(format!("{dir}{base}").trim_start_matches('/').to_owned())
        })
        .collect();
    Some(Header {
        found: Found {
            name,
            version: full_version,
            source_name,
            source_version,
            arch: first(TAG_ARCH),
            epoch: epoch
                .filter(|epoch| *epoch > 0)
                .map(|epoch| epoch.to_string()),
            modularity_label: first(TAG_MODULARITYLABEL).filter(|label| !label.is_empty()),
        },
        files,
    })
}

/// The name and `version-release` of a `SOURCERPM` file name
/// (`openssl-3.0.7-24.el9.src.rpm` → `openssl`, `3.0.7-24.el9`).
fn parse_source_rpm(source_rpm: &str) -> Option<(&str, &str)> {
    let stem = source_rpm
        .strip_suffix(".src.rpm")
        .or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (source, _version) = rest.rsplit_once('-')?;
    (!source.is_empty()).then(|| (source, &stem[source.len() + 1..]))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant};

    pub(crate) use palisade_testdata::rpm::header_blob;

    use super::parse_header;
    use crate::cancel::Cancel;

    /// A package header with epoch 1, a source rpm and two owned files.
    pub(crate) fn package_header(
        name: &str,
        version: &str,
        release: &str,
        source: &str,
    ) -> Vec<u8> {
        let text = |value: &str| format!("{value}\0").into_bytes();
        header_blob(&[
            (1000, 6, text(name), 1),
            (1001, 6, text(version), 1),
            (1002, 6, text(release), 1),
            (1003, 4, 1u32.to_be_bytes().to_vec(), 1),
            (1022, 6, b"x86_64\0".to_vec(), 1),
            (1044, 6, text(source), 1),
            (
                1116,
                4,
                [0u32.to_be_bytes(), 0u32.to_be_bytes()].concat(),
                2,
            ),
            (1117, 8, b"libssl.so.3\0libcrypto.so.3\0".to_vec(), 2),
            (1118, 8, b"/usr/lib64/\0".to_vec(), 1),
        ])
    }

    /// `count` package headers, `pkg0` to `pkg{count - 1}`.
    pub(crate) fn package_headers(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|index| {
                package_header(
                    &format!("pkg{index}"),
                    "1.0",
                    "1.el9",
                    "src-1.0-1.el9.src.rpm",
                )
            })
            .collect()
    }

    /// The bytes of an sqlite rpmdb holding `count` package headers.
    fn sqlite_rpmdb(count: usize) -> Vec<u8> {
        let temp = tempfile::NamedTempFile::new().unwrap();
        let connection = rusqlite::Connection::open(temp.path()).unwrap();
        connection
            .execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);")
            .unwrap();
        for blob in package_headers(count) {
            connection
                .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .unwrap();
        }
        drop(connection);
        std::fs::read(temp.path()).unwrap()
    }

    /// Checks that `parse` of a database that `build` makes of n package headers looks at the
    /// stop request while it works: read to its end, it lists every package (n doubles from
    /// 10,000 until the read takes long enough for a request to land inside, whatever the
    /// build profile); asked to stop before it starts, or by another thread a quarter of the
    /// way through, it returns "cancelled", the latter within [`STOP_WITHIN`].
    pub(crate) fn assert_parse_stops_when_cancelled(
        build: impl Fn(&[Vec<u8>]) -> Vec<u8>,
        parse: impl Fn(&[u8], &Cancel) -> Result<super::Extracted, String>,
    ) {
        let mut n_packages = 10_000;
        let (bytes, duration) = loop {
            let bytes = build(&package_headers(n_packages));
            let started = Instant::now();
            let complete = parse(&bytes, &Cancel::new()).unwrap();
            let duration = started.elapsed();
            assert_eq!(complete.packages.len(), n_packages);
            if duration >= Duration::from_millis(40) || n_packages >= 640_000 {
                break (bytes, duration);
            }
            n_packages *= 2;
        };
        assert!(
            duration >= Duration::from_millis(40),
            "{n_packages} packages are read in {duration:?}, too fast to cancel halfway"
        );
        let bytes = bytes.as_slice();
        let cancelled = Cancel::new();
        cancelled.cancel();
        assert_eq!(parse(bytes, &cancelled).unwrap_err(), "cancelled");

        let cancel = Cancel::new();
        let (result, stopped) = std::thread::scope(|scope| {
            let canceller = cancel.clone();
            scope.spawn(move || {
                std::thread::sleep(duration / 4);
                canceller.cancel();
            });
            let result = parse(bytes, &cancel);
            let stopped = cancel.requested_at().map(|requested| requested.elapsed());
            (result, stopped)
        });
        assert_eq!(
            result.map(|read| read.packages.len()),
            Err("cancelled".to_owned())
        );
        let stopped = stopped.expect("the parse returned before it was cancelled");
        assert!(
            stopped < STOP_WITHIN,
            "stopped {stopped:?} after the request"
        );
    }

    /// How long a parse may take to stop once cancelled: a generous bound for a loaded
    /// machine, when the work between two looks at the request is one page or one header.
    const STOP_WITHIN: Duration = Duration::from_millis(250);

    #[test]
    fn an_sqlite_rpmdb_read_stops_once_cancelled() {
        let bytes = sqlite_rpmdb(500);
        let read = super::parse_sqlite(&bytes, &Cancel::new()).unwrap();
        assert_eq!(read.packages.len(), 500);
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(
            super::parse_sqlite(&bytes, &cancel).unwrap_err(),
            "cancelled"
        );
        assert!(super::parse_sqlite(b"not sqlite", &Cancel::new()).is_err());
    }

    #[test]
    fn header() {
        let blob = header_blob(&[
            (1000, 6, b"openssl-libs\0".to_vec(), 1),
            (1001, 6, b"3.0.7\0".to_vec(), 1),
            (1002, 6, b"24.el9\0".to_vec(), 1),
            (1003, 4, 1u32.to_be_bytes().to_vec(), 1),
            (1022, 6, b"x86_64\0".to_vec(), 1),
            (1044, 6, b"openssl-3.0.7-24.el9.src.rpm\0".to_vec(), 1),
            (
                1116,
                4,
                [0u32.to_be_bytes(), 0u32.to_be_bytes()].concat(),
                2,
            ),
            (1117, 8, b"libssl.so.3\0libcrypto.so.3\0".to_vec(), 2),
            (1118, 8, b"/usr/lib64/\0".to_vec(), 1),
        ]);
        let header = parse_header(&blob).unwrap();
        assert_eq!(header.found.version, "1:3.0.7-24.el9");
        assert_eq!(header.found.source_name.as_deref(), Some("openssl"));
        assert_eq!(
            header.found.source_version, None,
            "same version as its source"
        );
        assert_eq!(
            header.files,
            ["usr/lib64/libssl.so.3", "usr/lib64/libcrypto.so.3"]
        );
        assert!(parse_header(&blob[..20]).is_none());
        // A subpackage with its own version: `perl-Carp` 1.50 built from perl 5.32.1.
        let subpackage = parse_header(&package_header(
            "perl-Carp",
            "1.50",
            "460.el9",
            "perl-5.32.1-480.el9.src.rpm",
        ))
        .unwrap();
        assert_eq!(
            (
                subpackage.found.source_name.as_deref(),
                subpackage.found.source_version.as_deref()
            ),
            (Some("perl"), Some("1:5.32.1-480.el9"))
        );
        assert_eq!(header.found.modularity_label, None);
        let mut module_entries = vec![
            (1000, 6, b"podman\0".to_vec(), 1),
            (1001, 6, b"4.6.1\0".to_vec(), 1),
            (1002, 6, b"5.module+el8.9.0+20326+387084d0\0".to_vec(), 1),
            (
                5096,
                6,
                b"container-tools:rhel8:8090020231201131346:d7b6f4b7\0".to_vec(),
                1,
            ),
        ];
        assert_eq!(
            parse_header(&header_blob(&module_entries))
                .unwrap()
                .found
                .modularity_label
                .as_deref(),
            Some("container-tools:rhel8:8090020231201131346:d7b6f4b7")
        );
        // A label that is not a string, or runs past the data, is no label.
        module_entries[3] = (5096, 4, 7u32.to_be_bytes().to_vec(), 1);
        let header = parse_header(&header_blob(&module_entries)).unwrap();
        assert_eq!(header.found.modularity_label, None);
        module_entries[3] = (5096, 6, b"unterminated".to_vec(), 1);
        let header = parse_header(&header_blob(&module_entries)).unwrap();
        assert_eq!(header.found.modularity_label, None);
        assert_eq!(super::parse_source_rpm("garbage.src.rpm"), None);
        assert_eq!(super::parse_source_rpm("x-1-2.rpm"), None);
        assert!(parse_header(&[0xff; 16]).is_none());
    }
}
