//! A small read-only reader for bbolt databases (containerd's `meta.db`, podman's
//! `bolt_state.db`).
//!
//! Only what metadata look-ups need: find the newest valid meta page, walk B+tree pages,
//! and read nested buckets (inline or not). Every offset is bounds-checked, a page cycle is
//! cut by a depth limit, and a corrupt file yields [`Error::Metadata`], never a panic.

use std::path::{Path, PathBuf};

use crate::error::Error;

const MAGIC: u32 = 0xED0C_DAED;
const PAGE_HEADER: usize = 16;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const BUCKET_LEAF_FLAG: u32 = 0x01;
const ELEMENT_SIZE: usize = 16;
const MAX_TREE_DEPTH: usize = 32;
/// Metadata databases are small; a larger file is not what we think it is.
pub(crate) const MAX_FILE_SIZE: u64 = 512 * 1024 * 1024;

/// An opened database, read fully into memory (a consistent snapshot of the file).
pub(crate) struct Bolt {
    path: PathBuf,
    data: Vec<u8>,
    page_size: usize,
    root: u64,
}

/// A value in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// Plain bytes.
    Data(&'a [u8]),
    /// A nested bucket.
    Bucket(Bucket<'a>),
}

/// A bucket: its root page, or its inline page bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bucket<'a> {
    Page(u64),
    Inline(&'a [u8]),
}

impl Bolt {
    /// Reads the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Bolt, Error> {
        let corrupt = |reason: &str| Error::Metadata {
            path: path.to_owned(),
            reason: reason.into(),
        };
        let metadata = std::fs::metadata(path)
            .map_err(|error| Error::kernel(format!("reading {}", path.display()), error))?;
        if metadata.len() > MAX_FILE_SIZE {
            return Err(corrupt(
                "larger than 512 MiB; not a runtime metadata database",
            ));
        }
        let data = std::fs::read(path)
            .map_err(|error| Error::kernel(format!("reading {}", path.display()), error))?;
        let first = read_meta(&data, 0).ok_or_else(|| corrupt("not a bbolt database"))?;
        let mut best = first;
        if let Some(second) = read_meta(&data, first.page_size)
            && (second.txid > best.txid || !best.valid)
        {
            best = second;
        }
        if !best.valid {
            return Err(corrupt("both meta pages fail their checksum"));
        }
        Ok(Bolt {
            path: path.to_owned(),
            data,
            page_size: best.page_size,
            root: best.root,
        })
    }

    /// The root bucket.
    pub(crate) fn root(&self) -> Bucket<'_> {
        Bucket::Page(self.root)
    }

    /// Walks `names` from the root; `None` if any is missing or not a bucket.
    pub(crate) fn bucket_path(&self, names: &[&[u8]]) -> Result<Option<Bucket<'_>>, Error> {
        let mut bucket = self.root();
        for name in names {
            match self.get(&bucket, name)? {
                Some(Value::Bucket(child)) => bucket = child,
                _ => return Ok(None),
            }
        }
        Ok(Some(bucket))
    }

    /// The value under `key` in `bucket`.
    pub(crate) fn get<'a>(
        &'a self,
        bucket: &Bucket<'a>,
        key: &[u8],
    ) -> Result<Option<Value<'a>>, Error> {
        Ok(self
            .entries(bucket)?
            .into_iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value))
    }

    /// Every key and value of `bucket`, in key order.
    pub(crate) fn entries<'a>(
        &'a self,
        bucket: &Bucket<'a>,
    ) -> Result<Vec<(&'a [u8], Value<'a>)>, Error> {
        let mut out = Vec::new();
        match bucket {
            Bucket::Page(page) => self.walk(*page, 0, &mut out)?,
            Bucket::Inline(bytes) => self.leaf(bytes, &mut out)?,
        }
        Ok(out)
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Metadata {
            path: self.path.clone(),
            reason,
        }
    }

    fn page(&self, id: u64) -> Result<&[u8], Error> {
        let start = usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_mul(self.page_size))
            .filter(|start| start + PAGE_HEADER <= self.data.len())
            .ok_or_else(|| self.corrupt(format!("page {id} lies outside the file")))?;
        let overflow = u32_at(&self.data, start + 12).unwrap_or(0) as usize;
        let end = (overflow + 1)
            .checked_mul(self.page_size)
            .and_then(|len| start.checked_add(len))
            .map(|end| end.min(self.data.len()))
            .ok_or_else(|| self.corrupt(format!("page {id} has an impossible overflow count")))?;
        Ok(&self.data[start..end])
    }

    fn walk<'a>(
        &'a self,
        page_id: u64,
        depth: usize,
        out: &mut Vec<(&'a [u8], Value<'a>)>,
    ) -> Result<(), Error> {
        if depth > MAX_TREE_DEPTH {
            return Err(self.corrupt(format!(
                "B+tree deeper than {MAX_TREE_DEPTH} at page {page_id}"
            )));
        }
        let page = self.page(page_id)?;
        let flags = u16_at(page, 8).unwrap_or(0);
        if flags & LEAF_PAGE != 0 {
            return self.leaf(page, out);
        }
        if flags & BRANCH_PAGE == 0 {
            return Err(self.corrupt(format!(
                "page {page_id} is neither branch nor leaf (flags {flags:#x})"
            )));
        }
        let count = u16_at(page, 10).unwrap_or(0) as usize;
        for index in 0..count {
            let element = PAGE_HEADER + index * ELEMENT_SIZE;
            let child = u64_at(page, element + 8)
                .ok_or_else(|| self.corrupt(format!("branch page {page_id} is truncated")))?;
            self.walk(child, depth + 1, out)?;
        }
        Ok(())
    }

    /// Reads a leaf page (or an inline bucket's page image).
    fn leaf<'a>(
        &'a self,
        page: &'a [u8],
        out: &mut Vec<(&'a [u8], Value<'a>)>,
    ) -> Result<(), Error> {
        let truncated = || self.corrupt("leaf page is truncated".to_owned());
        let count = u16_at(page, 10).ok_or_else(truncated)? as usize;
        for index in 0..count {
            let element = PAGE_HEADER + index * ELEMENT_SIZE;
            let flags = u32_at(page, element).ok_or_else(truncated)?;
            let pos = u32_at(page, element + 4).ok_or_else(truncated)? as usize;
            let key_size = u32_at(page, element + 8).ok_or_else(truncated)? as usize;
            let value_size = u32_at(page, element + 12).ok_or_else(truncated)? as usize;
            let key_start = element.checked_add(pos).ok_or_else(truncated)?;
            let key = page
                .get(key_start..key_start + key_size)
                .ok_or_else(truncated)?;
            let value_start = key_start + key_size;
            let value = page
                .get(value_start..value_start + value_size)
                .ok_or_else(truncated)?;
            if flags & BUCKET_LEAF_FLAG != 0 {
                let root = u64_at(value, 0).ok_or_else(truncated)?;
                let bucket = if root == 0 {
                    Bucket::Inline(&value[16.min(value.len())..])
                } else {
                    Bucket::Page(root)
                };
                out.push((key, Value::Bucket(bucket)));
            } else {
                out.push((key, Value::Data(value)));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    page_size: usize,
    root: u64,
    txid: u64,
    valid: bool,
}

fn read_meta(data: &[u8], offset: usize) -> Option<Meta> {
    let meta = offset + PAGE_HEADER;
    if u32_at(data, meta)? != MAGIC {
        return None;
    }
    let page_size = u32_at(data, meta + 8)? as usize;
    if !(512..=1 << 20).contains(&page_size) {
        return None;
    }
    let root = u64_at(data, meta + 16)?;
    let txid = u64_at(data, meta + 48)?;
    let checksum = u64_at(data, meta + 56)?;
    let valid = fnv1a_64(data.get(meta..meta + 56)?) == checksum;
    Some(Meta {
        page_size,
        root,
        txid,
        valid,
    })
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use crate::bolt::Bolt;

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        std::fs::write(&path, b"not a database").unwrap();
        let error = Bolt::open(&path).err().expect("garbage is rejected");
        assert!(
            error.to_string().contains("not a bbolt database"),
            "{error}"
        );

        // A valid-looking meta page whose root points past the end of the file.
        let mut page = vec![0u8; 8192];
        page[16..20].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
        page[24..28].copy_from_slice(&4096u32.to_le_bytes());
        page[32..40].copy_from_slice(&999_999u64.to_le_bytes());
        let checksum = super::fnv1a_64(&page[16..72]);
        page[72..80].copy_from_slice(&checksum.to_le_bytes());
        std::fs::write(&path, &page).unwrap();
        let bolt = Bolt::open(&path).unwrap();
        let error = bolt
            .entries(&bolt.root())
            .expect_err("root outside the file");
        assert!(error.to_string().contains("outside the file"), "{error}");
    }
}
