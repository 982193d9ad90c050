//! rpm's NDB backend (`Packages.db`, SUSE since 15 SP3): read-only, from the layout of rpm's
//! `lib/backend/ndb/rpmpkg.c`.
//!
//! The file is a header (magic `RpmP`, version 0, generation, number of slot pages), slot
//! pages of 16-byte slots (magic `Slot`, package index, offset and length in 16-byte blocks;
//! the header takes the first two slots) and blobs. A blob is a head (magic `BlbS`, package
//! index, generation, length), the rpm header, zero padding and a tail (Adler-32 of head,
//! data and padding, length, magic `BlbE`). Everything is little-endian. Every offset is
//! checked against the file before it is read, and the checksum is verified, so a corrupt
//! file gives an error naming what is wrong and never a wrong package. A walk's stop request
//! is looked at before every slot, every [`Cancel::MAX_READ_BYTES`] of a blob's checksum and
//! every package's header.

use crate::cancel::Cancel;
use crate::catalog::Extracted;

const MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_HEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOB_TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const HEADER_SIZE: usize = 32;
const SLOT_SIZE: usize = 16;
const BLOCK_SIZE: usize = 16;
const PAGE_SIZE: usize = 4096;
const BLOB_HEAD_SIZE: usize = 16;
const BLOB_TAIL_SIZE: usize = 12;

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Adler-32 (RFC 1950), as rpm checksums its blobs; `Err("cancelled")` once `cancel` is.
fn adler32(data: &[u8], cancel: &Cancel) -> Result<u32, String> {
    const MOD: u32 = 65_521;
    let (mut low, mut high) = (1u32, 0u32);
    for piece in data.chunks(Cancel::MAX_READ_BYTES) {
        cancel.checkpoint()?;
        // 5552 bytes is the most that can be summed before the 32-bit sums may overflow.
        for chunk in piece.chunks(5552) {
            for &byte in chunk {
                low += u32::from(byte);
                high += low;
            }
            low %= MOD;
            high %= MOD;
        }
    }
    Ok((high << 16) | low)
}

/// The packages of an NDB `Packages.db`; `Err("cancelled")` once `cancel` is.
pub(crate) fn parse(bytes: &[u8], cancel: &Cancel) -> Result<Extracted, String> {
    if bytes.len() < HEADER_SIZE {
        return Err(format!(
            "not an rpm NDB database: {} bytes, shorter than its {HEADER_SIZE}-byte header",
            bytes.len()
        ));
    }
    if le32(bytes, 0) != Some(MAGIC) {
        return Err("not an rpm NDB database (no RpmP magic)".to_owned());
    }
    let version = le32(bytes, 4).unwrap_or_default();
    if version != 0 {
        return Err(format!(
            "rpm NDB database version {version} is not supported (only 0)"
        ));
    }
    if !bytes.len().is_multiple_of(BLOCK_SIZE) {
        return Err(format!(
            "truncated rpm NDB database: {} bytes is not a whole number of {BLOCK_SIZE}-byte blocks",
            bytes.len()
        ));
    }
    let slot_pages = le32(bytes, 12).unwrap_or_default() as usize;
    let slot_area = slot_pages
        .checked_mul(PAGE_SIZE)
        .filter(|area| *area >= PAGE_SIZE && *area <= bytes.len())
        .ok_or_else(|| {
            format!(
                "corrupt rpm NDB database: {slot_pages} slot pages do not fit in {} bytes",
                bytes.len()
            )
        })?;
    let file_blocks = bytes.len() / BLOCK_SIZE;
    let first_blob_block = slot_area / BLOCK_SIZE;
    let mut blobs = Vec::new();
    for (index, slot) in bytes[HEADER_SIZE..slot_area]
        .chunks_exact(SLOT_SIZE)
        .enumerate()
    {
        cancel.checkpoint()?;
        let slot_number = index + HEADER_SIZE / SLOT_SIZE;
        if le32(slot, 0) != Some(SLOT_MAGIC) {
            return Err(format!(
                "corrupt rpm NDB database: slot {slot_number} has no Slot magic"
            ));
        }
        let block_offset = le32(slot, 8).unwrap_or_default() as usize;
        if block_offset == 0 {
            continue; // a free slot
        }
        let package = le32(slot, 4).unwrap_or_default();
        let block_count = le32(slot, 12).unwrap_or_default() as usize;
        if package == 0 || block_count == 0 || block_offset < first_blob_block {
            return Err(format!(
                "corrupt rpm NDB database: slot {slot_number} (package {package}) points at block {block_offset}+{block_count}, inside the slot pages or empty"
            ));
        }
        if block_offset
            .checked_add(block_count)
            .is_none_or(|end| end > file_blocks)
        {
            return Err(format!(
                "truncated rpm NDB database: package {package}'s blob (blocks {block_offset}+{block_count}) ends past the file's {file_blocks} blocks"
            ));
        }
        let start = block_offset * BLOCK_SIZE;
        blobs.push(read_blob(
            &bytes[start..start + block_count * BLOCK_SIZE],
            package,
            cancel,
        )?);
    }
    super::rpm::extract_headers(blobs, cancel)
}

/// The rpm header inside one blob (`area` is exactly the slot's blocks).
fn read_blob<'a>(area: &'a [u8], package: u32, cancel: &Cancel) -> Result<&'a [u8], String> {
    let corrupt = |what: &str| format!("corrupt rpm NDB database: package {package}'s blob {what}");
    if area.len() < BLOB_HEAD_SIZE + BLOB_TAIL_SIZE {
        return Err(corrupt("is shorter than its head and tail"));
    }
    if le32(area, 0) != Some(BLOB_HEAD_MAGIC) {
        return Err(corrupt("has no BlbS magic"));
    }
    if le32(area, 4) != Some(package) {
        return Err(corrupt("belongs to another package"));
    }
    let length = le32(area, 12).unwrap_or_default() as usize;
    let blocks = (BLOB_HEAD_SIZE + length + BLOB_TAIL_SIZE).div_ceil(BLOCK_SIZE);
    if blocks * BLOCK_SIZE != area.len() {
        return Err(corrupt(&format!(
            "says {length} bytes, which does not fill its {} blocks",
            area.len() / BLOCK_SIZE
        )));
    }
    let tail = area.len() - BLOB_TAIL_SIZE;
    if le32(area, tail + 8) != Some(BLOB_TAIL_MAGIC) || le32(area, tail + 4) != Some(length as u32)
    {
        return Err(corrupt("has a damaged tail"));
    }
    if le32(area, tail) != Some(adler32(&area[..tail], cancel)?) {
        return Err(corrupt("fails its Adler-32 checksum"));
    }
    Ok(&area[BLOB_HEAD_SIZE..BLOB_HEAD_SIZE + length])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::rpm::tests::{
        assert_parse_stops_when_cancelled, header_blob, package_header,
    };

    /// An NDB file holding `headers` (built as rpmpkg.c writes one: slot pages, blobs after
    /// them).
    pub(crate) fn ndb_file(headers: &[Vec<u8>]) -> Vec<u8> {
        let slot_pages = (HEADER_SIZE + headers.len() * SLOT_SIZE).div_ceil(PAGE_SIZE);
        let mut file = vec![0u8; slot_pages * PAGE_SIZE];
        file[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        file[8..12].copy_from_slice(&7u32.to_le_bytes());
        file[12..16].copy_from_slice(&(slot_pages as u32).to_le_bytes());
        file[16..20].copy_from_slice(&(headers.len() as u32 + 1).to_le_bytes());
        for slot in (HEADER_SIZE..file.len()).step_by(SLOT_SIZE) {
            file[slot..slot + 4].copy_from_slice(&SLOT_MAGIC.to_le_bytes());
        }
        for (index, header) in headers.iter().enumerate() {
            let package = index as u32 + 1;
            let block_offset = file.len() / BLOCK_SIZE;
            let mut blob = Vec::new();
            blob.extend_from_slice(&BLOB_HEAD_MAGIC.to_le_bytes());
            blob.extend_from_slice(&package.to_le_bytes());
            blob.extend_from_slice(&7u32.to_le_bytes());
            blob.extend_from_slice(&(header.len() as u32).to_le_bytes());
            blob.extend_from_slice(header);
            let blocks = (BLOB_HEAD_SIZE + header.len() + BLOB_TAIL_SIZE).div_ceil(BLOCK_SIZE);
            blob.resize(blocks * BLOCK_SIZE - BLOB_TAIL_SIZE, 0);
            let checksum = adler32(&blob, &Cancel::new()).unwrap();
            blob.extend_from_slice(&checksum.to_le_bytes());
            blob.extend_from_slice(&(header.len() as u32).to_le_bytes());
            blob.extend_from_slice(&BLOB_TAIL_MAGIC.to_le_bytes());
            let slot = HEADER_SIZE + index * SLOT_SIZE;
            file[slot + 4..slot + 8].copy_from_slice(&package.to_le_bytes());
            file[slot + 8..slot + 12].copy_from_slice(&(block_offset as u32).to_le_bytes());
            file[slot + 12..slot + 16].copy_from_slice(&(blocks as u32).to_le_bytes());
            file.extend_from_slice(&blob);
        }
        file
    }

    #[test]
    fn adler32_matches_rfc_1950() {
        let cancel = Cancel::new();
        assert_eq!(adler32(b"Wikipedia", &cancel), Ok(0x11E6_0398));
        assert_eq!(
            adler32(&[0xff; 20_000], &cancel),
            Ok({
                let (mut low, mut high) = (1u64, 0u64);
                for _ in 0..20_000 {
                    low = (low + 0xff) % 65_521;
                    high = (high + low) % 65_521;
                }
                ((high << 16) | low) as u32
            })
        );
    }

    #[test]
    fn packages_are_read_from_their_blobs() {
        let file = ndb_file(&[
            package_header(
                "openssl-libs",
                "3.0.7",
                "24.el9",
                "openssl-3.0.7-24.el9.src.rpm",
            ),
            header_blob(&[(1000, 6, b"gpg-pubkey\0".to_vec(), 1)]),
            package_header("bash", "5.1.8", "9.el9", "bash-5.1.8-9.el9.src.rpm"),
        ]);
        let extracted = parse(&file, &Cancel::new()).unwrap();
        let names: Vec<(&str, &str)> = extracted
            .packages
            .iter()
            .map(|(_, found)| (found.name.as_str(), found.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("openssl-libs", "1:3.0.7-24.el9"),
                ("bash", "1:5.1.8-9.el9")
            ]
        );
        assert!(
            extracted
                .owned_files
                .contains(&"usr/lib64/libssl.so.3".to_owned())
        );
    }

    /// A root file system with an NDB database under /usr/lib/sysimage/rpm: the inventory
    /// finds and reads it, and reports a corrupt one as a warning.
    #[test]
    fn the_inventory_reads_an_ndb_database() {
        let root = tempfile::tempdir().unwrap();
        let sysimage = root.path().join("usr/lib/sysimage/rpm");
        std::fs::create_dir_all(&sysimage).unwrap();
        std::fs::write(
            sysimage.join("Packages.db"),
            ndb_file(&[package_header(
                "bash",
                "5.1.8",
                "9.el9",
                "bash-5.1.8-9.el9.src.rpm",
            )]),
        )
        .unwrap();
        let found = crate::inventory(
            &crate::Target::RootFs(crate::RootFs::new(root.path())),
            &crate::Limits::default(),
        )
        .unwrap();
        let bash = found
            .packages
            .iter()
            .find(|package| package.name == "bash")
            .unwrap_or_else(|| panic!("{:?}", found.packages));
        assert_eq!(bash.version, "1:5.1.8-9.el9");
        assert_eq!(bash.location.path, "/usr/lib/sysimage/rpm/Packages.db");
        // A corrupt database is a warning naming the file, not a failed inventory.
        std::fs::write(
            sysimage.join("Packages.db"),
            b"RpmP and then nothing useful",
        )
        .unwrap();
        let found = crate::inventory(
            &crate::Target::RootFs(crate::RootFs::new(root.path())),
            &crate::Limits::default(),
        )
        .unwrap();
        assert!(found.packages.is_empty());
        assert!(
            found
                .warnings
                .iter()
                .any(|warning| warning.location.contains("Packages.db")),
            "{:?}",
            found.warnings
        );
    }

    #[test]
    fn a_parse_stops_between_slots_once_cancelled() {
        assert_parse_stops_when_cancelled(ndb_file, parse);
        // Inside the checksum of one huge blob too.
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(
            adler32(&vec![0u8; 3 * Cancel::MAX_READ_BYTES], &cancel),
            Err("cancelled".to_owned())
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_damage() {
        let good = ndb_file(&[package_header("bash", "5.1.8", "9.el9", "bash.src.rpm")]);
        let expect = |bytes: &[u8], words: &str| {
            let error = parse(bytes, &Cancel::new()).unwrap_err();
            assert!(error.contains(words), "{error} (expected {words:?})");
        };
        expect(&good[..20], "shorter than its 32-byte header");
        expect(&[0u8; 4096], "no RpmP magic");
        expect(&good[..good.len() - 16], "ends past the file");
        expect(&good[..good.len() - 3], "whole number of 16-byte blocks");
        let mut bad = good.clone();
        bad[4] = 9;
        expect(&bad, "version 9");
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&1000u32.to_le_bytes());
        expect(&bad, "slot pages do not fit");
        let mut bad = good.clone();
        bad[HEADER_SIZE + SLOT_SIZE] = b'X';
        expect(&bad, "slot 3 has no Slot magic");
        let mut bad = good.clone();
        bad[HEADER_SIZE + 8..HEADER_SIZE + 12].copy_from_slice(&10u32.to_le_bytes());
        expect(&bad, "inside the slot pages");
        let mut bad = good.clone();
        bad[PAGE_SIZE + 40] ^= 1;
        expect(&bad, "Adler-32");
        let mut bad = good.clone();
        bad[PAGE_SIZE + 4] = 2;
        expect(&bad, "belongs to another package");
        let mut bad = good.clone();
        bad[PAGE_SIZE + 12..PAGE_SIZE + 16].copy_from_slice(&u32::MAX.to_le_bytes());
        expect(&bad, "does not fill its");
        let mut bad = good;
        let last = bad.len() - 1;
        bad[last] = 0;
        expect(&bad, "damaged tail");
    }
}
