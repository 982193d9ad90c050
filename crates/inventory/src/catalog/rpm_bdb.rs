//! rpm's Berkeley DB backend (`/var/lib/rpm/Packages`, RHEL/CentOS 7 and 8, Amazon Linux 2,
//! older SUSE): a read-only reader of Berkeley DB hash databases, from the page layouts of
//! Berkeley DB's `dbinc/db_page.h` and `dbinc/db.in`.
//!
//! Page 0 is the hash metadata page (magic 0x061561, page size, last page number). Every
//! other page starts with a 26-byte header (page number, previous and next page, entry
//! count, free-area offset, level, type). Hash pages (types 2 and 13) list their items'
//! offsets after the header; items alternate key and data, each starting with a type byte:
//! 1 is data in place, 3 is data on a chain of overflow pages (type 7, its length and first
//! page in the item). rpm stores one header per record, keyed by its package number.
//!
//! Byte order is the writer's: read from the magic. Page numbers, item offsets and chain
//! lengths are checked against the file before use, and an overflow chain may visit each
//! page at most once, so a corrupt file gives an error naming the page, never a panic or a
//! hang. A walk's stop request is looked at before every page, including each page of an
//! overflow chain, and before every package's header is parsed: the work between two looks is
//! one page (at most 64 KiB) or one header.

use crate::cancel::Cancel;
use crate::catalog::Extracted;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER_SIZE: usize = 26;
const PAGE_HASH_UNSORTED: u8 = 2;
const PAGE_OVERFLOW: u8 = 7;
const PAGE_HASH_META: u8 = 8;
const PAGE_HASH: u8 = 13;
const ITEM_KEYDATA: u8 = 1;
const ITEM_OFFPAGE: u8 = 3;
/// Bytes of an off-page item: type, 3 unused, first page, total length.
const OFFPAGE_ITEM_SIZE: usize = 12;

/// The writer's byte order.
#[derive(Clone, Copy)]
struct Order {
    big_endian: bool,
}

impl Order {
    fn u32(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    }

    fn u16(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        })
    }
}

/// The packages of a Berkeley DB `Packages` file; `Err("cancelled")` once `cancel` is.
pub(crate) fn parse(bytes: &[u8], cancel: &Cancel) -> Result<Extracted, String> {
    let database = Database::open(bytes, cancel)?;
    let mut blobs = Vec::new();
    for page_number in 1..database.n_pages {
        cancel.checkpoint()?;
        let page = database.page(page_number)?;
        if matches!(page[25], PAGE_HASH | PAGE_HASH_UNSORTED) {
            database.hash_page_values(page_number, page, &mut blobs)?;
        }
    }
    super::rpm::extract_headers(blobs.iter().map(Vec::as_slice), cancel)
}

struct Database<'a> {
    bytes: &'a [u8],
    order: Order,
    page_size: usize,
    n_pages: usize,
    cancel: &'a Cancel,
}

impl<'a> Database<'a> {
    fn open(bytes: &'a [u8], cancel: &'a Cancel) -> Result<Database<'a>, String> {
        if bytes.len() < 512 {
            return Err(format!(
                "not a Berkeley DB database: {} bytes, shorter than its metadata page",
                bytes.len()
            ));
        }
        let order = [false, true]
            .into_iter()
            .map(|big_endian| Order { big_endian })
            .find(|order| order.u32(bytes, 12) == Some(HASH_MAGIC))
            .ok_or("not a Berkeley DB hash database (no 0x061561 magic)")?;
        if bytes[25] != PAGE_HASH_META {
            return Err(format!(
                "not a Berkeley DB hash database: page 0 has type {}, not hash metadata",
                bytes[25]
            ));
        }
        if bytes[24] != 0 {
            return Err("the Berkeley DB database is encrypted; it cannot be read".to_owned());
        }
        let page_size = order.u32(bytes, 20).unwrap_or_default() as usize;
        if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
            return Err(format!(
                "corrupt Berkeley DB database: page size {page_size} is not a power of two from 512 to 65536"
            ));
        }
        let last_page = order.u32(bytes, 32).unwrap_or_default() as usize;
        let n_pages = last_page + 1;
        if n_pages
            .checked_mul(page_size)
            .is_none_or(|size| size > bytes.len())
        {
            return Err(format!(
                "truncated Berkeley DB database: {n_pages} pages of {page_size} bytes do not fit in {} bytes",
                bytes.len()
            ));
        }
        Ok(Database {
            bytes,
            order,
            page_size,
            n_pages,
            cancel,
        })
    }

    fn page(&self, number: usize) -> Result<&'a [u8], String> {
        if number == 0 || number >= self.n_pages {
            return Err(format!(
                "corrupt Berkeley DB database: page {number} is outside pages 1 to {}",
                self.n_pages - 1
            ));
        }
        let start = number * self.page_size;
        Ok(&self.bytes[start..start + self.page_size])
    }

    /// Appends the data items of a hash page (every second item) to `values`.
    fn hash_page_values(
        &self,
        number: usize,
        page: &[u8],
        values: &mut Vec<Vec<u8>>,
    ) -> Result<(), String> {
        let corrupt = |what: String| format!("corrupt Berkeley DB database: page {number}: {what}");
        let entries = usize::from(self.order.u16(page, 20).unwrap_or_default());
        if PAGE_HEADER_SIZE + entries * 2 > self.page_size {
            return Err(corrupt(format!(
                "{entries} item offsets do not fit in the page"
            )));
        }
        let offsets: Vec<usize> = (0..entries)
            .map(|index| {
                usize::from(
                    self.order
                        .u16(page, PAGE_HEADER_SIZE + index * 2)
                        .unwrap_or_default(),
                )
            })
            .collect();
        for index in (1..entries).step_by(2) {
            let start = offsets[index];
            // Items are packed from the end of the page down: each ends where the one before
            // it in the offset list starts.
            let end = offsets[index - 1];
            if start < PAGE_HEADER_SIZE + entries * 2 || end <= start || end > self.page_size {
                return Err(corrupt(format!(
                    "item {index} spans bytes {start}..{end}, outside the page's item area"
                )));
            }
            let item = &page[start..end];
            match item[0] {
                ITEM_KEYDATA => values.push(item[1..].to_vec()),
                ITEM_OFFPAGE if item.len() >= OFFPAGE_ITEM_SIZE => {
                    let first = self.order.u32(item, 4).unwrap_or_default() as usize;
                    let length = self.order.u32(item, 8).unwrap_or_default() as usize;
                    values.push(self.overflow(number, first, length)?);
                }
                // Duplicates are not used by rpm; anything else is not a package.
                _ => {}
            }
        }
        Ok(())
    }

    /// The `length` bytes of an overflow chain starting at page `first`, referenced from
    /// hash page `item_page`.
    fn overflow(&self, item_page: usize, first: usize, length: usize) -> Result<Vec<u8>, String> {
        let corrupt =
            |what: String| format!("corrupt Berkeley DB database: page {item_page}: {what}");
        if length > self.bytes.len() {
            return Err(corrupt(format!(
                "an overflow item of {length} bytes is larger than the whole file"
            )));
        }
        let mut data = Vec::with_capacity(length);
        let mut number = first;
        let mut visited = 0;
        while data.len() < length {
            self.cancel.checkpoint()?;
            visited += 1;
            if visited > self.n_pages {
                return Err(corrupt(format!(
                    "the overflow chain from page {first} loops"
                )));
            }
            let page = self.page(number)?;
            if page[25] != PAGE_OVERFLOW {
                return Err(corrupt(format!(
                    "overflow chain from page {first} reaches page {number} of type {}",
                    page[25]
                )));
            }
            let on_page = usize::from(self.order.u16(page, 22).unwrap_or_default());
            if PAGE_HEADER_SIZE + on_page > self.page_size || on_page == 0 {
                return Err(corrupt(format!(
                    "overflow page {number} claims {on_page} bytes"
                )));
            }
            let wanted = on_page.min(length - data.len());
            data.extend_from_slice(&page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + wanted]);
            number = self.order.u32(page, 16).unwrap_or_default() as usize;
            if data.len() < length && number == 0 {
                return Err(corrupt(format!(
                    "the overflow chain from page {first} ends after {} of {length} bytes",
                    data.len()
                )));
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::rpm::tests::{assert_parse_stops_when_cancelled, package_header};

    const PAGE: usize = 512;

    fn page_header(page: &mut [u8], number: u32, next: u32, entries: u16, hf: u16, kind: u8) {
        page[8..12].copy_from_slice(&number.to_le_bytes());
        page[16..20].copy_from_slice(&next.to_le_bytes());
        page[20..22].copy_from_slice(&entries.to_le_bytes());
        page[22..24].copy_from_slice(&hf.to_le_bytes());
        page[25] = kind;
    }

    /// Writes hash page `number` holding `items` (key, data, key, data, ...), packed from
    /// the end of the page.
    fn hash_page(page: &mut [u8], number: u32, items: &[Vec<u8>]) {
        let mut end = PAGE;
        for (index, item) in items.iter().enumerate() {
            let start = end - item.len();
            page[start..end].copy_from_slice(item);
            let at = PAGE_HEADER_SIZE + index * 2;
            page[at..at + 2].copy_from_slice(&(start as u16).to_le_bytes());
            end = start;
        }
        page_header(page, number, 0, items.len() as u16, end as u16, PAGE_HASH);
    }

    /// The metadata page of a little-endian hash database with 512-byte pages and one
    /// bucket, followed by `n_pages - 1` empty pages.
    fn empty_file(n_pages: usize) -> Vec<u8> {
        let mut file = vec![0u8; n_pages * PAGE];
        file[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        file[16..20].copy_from_slice(&9u32.to_le_bytes());
        file[20..24].copy_from_slice(&(PAGE as u32).to_le_bytes());
        file[25] = PAGE_HASH_META;
        file[32..36].copy_from_slice(&((n_pages - 1) as u32).to_le_bytes());
        // One bucket (max_bucket 0), on page 0 + spares[0] = 1.
        file[96..100].copy_from_slice(&1u32.to_le_bytes());
        file
    }

    fn with_type(data: &[u8]) -> Vec<u8> {
        [&[ITEM_KEYDATA][..], data].concat()
    }

    /// A database holding each of `headers` in place on a hash page of its own (each must
    /// fit in one page): the shape of a large rpm database, for cancellation tests.
    pub(crate) fn bdb_file_of(headers: &[Vec<u8>]) -> Vec<u8> {
        let mut file = empty_file(1 + headers.len());
        for (index, header) in headers.iter().enumerate() {
            let number = index + 1;
            let items = [with_type(&(number as u32).to_le_bytes()), with_type(header)];
            hash_page(
                &mut file[number * PAGE..(number + 1) * PAGE],
                number as u32,
                &items,
            );
        }
        file
    }

    /// A little-endian hash database with 512-byte pages: page 1 is a hash page holding the
    /// counter record, `inline` in place and `large` off-page on overflow pages 2, 3, ...
    fn bdb_file(inline: &[u8], large: &[u8]) -> Vec<u8> {
        let per_page = PAGE - PAGE_HEADER_SIZE;
        let n_overflow = large.len().div_ceil(per_page);
        let mut file = empty_file(2 + n_overflow);
        // Items, packed from the end of page 1: key 0 → counter, key 1 → inline, key 2 → large.
        let mut offpage = vec![ITEM_OFFPAGE, 0, 0, 0];
        offpage.extend_from_slice(&2u32.to_le_bytes());
        offpage.extend_from_slice(&(large.len() as u32).to_le_bytes());
        let items = [
            with_type(&0u32.to_le_bytes()),
            with_type(&3u32.to_le_bytes()),
            with_type(&1u32.to_le_bytes()),
            with_type(inline),
            with_type(&2u32.to_le_bytes()),
            offpage,
        ];
        hash_page(&mut file[PAGE..2 * PAGE], 1, &items);
        for (index, chunk) in large.chunks(per_page).enumerate() {
            let number = 2 + index;
            let next = if index + 1 < n_overflow {
                number + 1
            } else {
                0
            };
            let page = &mut file[number * PAGE..(number + 1) * PAGE];
            page_header(
                page,
                number as u32,
                next as u32,
                1,
                chunk.len() as u16,
                PAGE_OVERFLOW,
            );
            page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + chunk.len()].copy_from_slice(chunk);
        }
        file
    }

    /// The same database as written on a big-endian machine: every number of the metadata
    /// and page headers, the item offsets and the off-page references byte-swapped.
    fn big_endian(little: &[u8]) -> Vec<u8> {
        let mut file = little.to_vec();
        let swap = |bytes: &mut [u8], at: usize, width: usize| bytes[at..at + width].reverse();
        for at in [12, 16, 20, 32, 96] {
            swap(&mut file, at, 4);
        }
        for page in file.chunks_mut(PAGE).skip(1) {
            let entries = usize::from(u16::from_le_bytes([page[20], page[21]]));
            let kind = page[25];
            for at in [8, 12, 16] {
                swap(page, at, 4);
            }
            swap(page, 20, 2);
            swap(page, 22, 2);
            if kind != PAGE_HASH {
                continue;
            }
            for index in 0..entries {
                let at = PAGE_HEADER_SIZE + index * 2;
                let offset = usize::from(u16::from_le_bytes([page[at], page[at + 1]]));
                swap(page, at, 2);
                if page[offset] == ITEM_OFFPAGE {
                    swap(page, offset + 4, 4);
                    swap(page, offset + 8, 4);
                }
            }
        }
        file
    }

    fn small_header() -> Vec<u8> {
        crate::catalog::rpm::tests::header_blob(&[
            (1000, 6, b"zlib\0".to_vec(), 1),
            (1001, 6, b"1.2.11\0".to_vec(), 1),
            (1002, 6, b"40.el9\0".to_vec(), 1),
        ])
    }

    #[test]
    fn inline_and_overflow_records_are_read() {
        let large = package_header(
            "openssl-libs",
            "3.0.7",
            "24.el9",
            "openssl-3.0.7-24.el9.src.rpm",
        );
        let mut padded = large.clone();
        // Make the record span three overflow pages.
        padded.resize(large.len().max(3 * PAGE - 100), 0);
        let file = bdb_file(&small_header(), &padded);
        let extracted = parse(&file, &Cancel::new()).unwrap();
        let names: Vec<(&str, &str)> = extracted
            .packages
            .iter()
            .map(|(_, found)| (found.name.as_str(), found.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("zlib", "1.2.11-40.el9"),
                ("openssl-libs", "1:3.0.7-24.el9")
            ]
        );
        // Written on a big-endian machine, the same database reads the same.
        let big = parse(&big_endian(&file), &Cancel::new()).unwrap();
        let big_names: Vec<(&str, &str)> = big
            .packages
            .iter()
            .map(|(_, found)| (found.name.as_str(), found.version.as_str()))
            .collect();
        assert_eq!(big_names, names);
        // The magic decides the byte order: a little-endian file with a big-endian magic has
        // a page size that makes no sense, and says so.
        let mut mixed = file.clone();
        mixed[12..16].copy_from_slice(&HASH_MAGIC.to_be_bytes());
        assert!(
            parse(&mixed, &Cancel::new())
                .unwrap_err()
                .contains("page size")
        );
    }

    /// rpm itself (Debian's rpm 4.18, whose `bdb_ro` backend reads Berkeley DB) lists the
    /// same packages from the database these tests build, overflow record included: the
    /// hand-built file is a real rpm database, not just one this reader agrees with.
    #[test]
    fn rpm_reads_the_test_database_the_same_way() {
        let rpm = std::process::Command::new("rpm")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if !palisade_testdata::capability("rpm (Debian package rpm)", rpm) {
            return;
        }
        // A header that spans three overflow pages: a long URL.
        let url = format!("https://example.org/{}\0", "x".repeat(3 * PAGE));
        let large = crate::catalog::rpm::tests::header_blob(&[
            (1000, 6, b"openssl-libs\0".to_vec(), 1),
            (1001, 6, b"3.0.7\0".to_vec(), 1),
            (1002, 6, b"24.el9\0".to_vec(), 1),
            (1003, 4, 1u32.to_be_bytes().to_vec(), 1),
            (1020, 6, url.into_bytes(), 1),
        ]);
        assert!(large.len() > 2 * (PAGE - PAGE_HEADER_SIZE));
        let file = bdb_file(&small_header(), &large);
        for file in [file.clone(), big_endian(&file)] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("Packages"), &file).unwrap();
            let output = std::process::Command::new("rpm")
                .arg("--dbpath")
                .arg(dir.path())
                .args(["--define", "_db_backend bdb_ro", "-qa", "--qf"])
                .arg("%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n")
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&output.stdout);
            let mut by_rpm: Vec<String> = listed.lines().map(str::to_owned).collect();
            by_rpm.sort();
            let mut ours: Vec<String> = parse(&file, &Cancel::new())
                .unwrap()
                .packages
                .iter()
                .map(|(_, found)| {
                    let (epoch, version) = found
                        .version
                        .split_once(':')
                        .unwrap_or(("0", &found.version));
                    format!("{} {epoch}:{version}", found.name)
                })
                .collect();
            ours.sort();
            assert_eq!(
                by_rpm,
                ours,
                "rpm says: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(ours.len(), 2);
        }
    }

    #[test]
    fn a_parse_stops_between_pages_once_cancelled() {
        assert_parse_stops_when_cancelled(bdb_file_of, parse);
        // Inside one long overflow chain too.
        let chain = bdb_file(&small_header(), &vec![0u8; 2_000 * PAGE]);
        let cancel = Cancel::new();
        cancel.cancel();
        let database = Database::open(&chain, &cancel).unwrap();
        assert_eq!(
            database.overflow(1, 2, 2_000 * (PAGE - PAGE_HEADER_SIZE)),
            Err("cancelled".to_owned())
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_damage() {
        let large = package_header("bash", "5.1.8", "9.el9", "bash-5.1.8-9.el9.src.rpm");
        let good = bdb_file(&small_header(), &large);
        let overflow_start = 2 * PAGE;
        let expect = |bytes: &[u8], words: &str| {
            let error = parse(bytes, &Cancel::new()).unwrap_err();
            assert!(error.contains(words), "{error} (expected {words:?})");
        };
        expect(&good[..100], "shorter than its metadata page");
        expect(&vec![0u8; 1024], "no 0x061561 magic");
        expect(&good[..good.len() - PAGE], "truncated");
        let mut bad = good.clone();
        bad[20..24].copy_from_slice(&1000u32.to_le_bytes());
        expect(&bad, "page size 1000");
        let mut bad = good.clone();
        bad[24] = 1;
        expect(&bad, "encrypted");
        // The off-page item points past the last page.
        let mut bad = good.clone();
        let offsets = PAGE + PAGE_HEADER_SIZE;
        let item = usize::from(u16::from_le_bytes([bad[offsets + 10], bad[offsets + 11]]));
        bad[PAGE + item + 4..PAGE + item + 8].copy_from_slice(&99u32.to_le_bytes());
        expect(&bad, "page 99 is outside");
        // An item offset outside the page.
        let mut bad = good.clone();
        bad[offsets + 2..offsets + 4].copy_from_slice(&600u16.to_le_bytes());
        expect(&bad, "outside the page's item area");
        // An overflow chain that loops onto itself.
        let mut bad = good.clone();
        bad[overflow_start + 16..overflow_start + 20].copy_from_slice(&2u32.to_le_bytes());
        bad[overflow_start + 22..overflow_start + 24].copy_from_slice(&10u16.to_le_bytes());
        expect(&bad, "loops");
        // A chain that ends early.
        let mut bad = good.clone();
        bad[overflow_start + 22..overflow_start + 24].copy_from_slice(&10u16.to_le_bytes());
        expect(&bad, "ends after 10 of");
        // A chain through a page that is not an overflow page.
        let mut bad = good;
        bad[overflow_start + 25] = PAGE_HASH;
        expect(&bad, "of type 13");
    }
}
