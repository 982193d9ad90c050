//! Streaming one layer: decompression (gzip, zstd or none, by magic bytes) under the
//! [`Limits`], the tar entries, whiteouts, and the callback for each regular file.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

use crate::cancel::{Cancel, bounded};
use crate::error::{Error, Warning};
use crate::filesystem::NodeKind;
use crate::limits::Limits;
use crate::path::{UnsafePath, normalize_entry};
use crate::walk::{Content, FileVisit, Walk};

/// Which layer is being read, for locations and messages, and the walk's stop request.
pub(crate) struct LayerContext<'a> {
    pub(crate) index: usize,
    pub(crate) digest: &'a str,
    pub(crate) cancel: &'a Cancel,
}

/// Why a layer stream stopped: a limit, or an I/O error of the stream or the callback.
pub(crate) enum LayerFailure {
    Limit(Error),
    Stream(std::io::Error),
    Visit {
        path: String,
        source: std::io::Error,
    },
}

/// Reads one layer blob (compressed or not) and visits its regular files, recording every
/// entry in `walk`'s tree.
pub(crate) fn walk_layer(
    blob: impl Read + 'static,
    layer: &LayerContext<'_>,
    limits: &Limits,
    walk: &mut Walk,
    visit: &mut dyn FnMut(&mut FileVisit<'_>) -> std::io::Result<()>,
) -> Result<(), LayerFailure> {
    let compressed_bytes = Rc::new(Cell::new(0u64));
    let counted_blob = Counting {
        inner: blob,
        count: Rc::clone(&compressed_bytes),
    };
    let mut buffered = BufReader::with_capacity(256 << 10, counted_blob);
    let magic = buffered.fill_buf().map_err(LayerFailure::Stream)?;
    let decompressed: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(LayerFailure::Stream)?)
    } else {
        Box::new(buffered)
    };
    let guarded = Guarded {
        inner: decompressed,
        produced: 0,
        compressed: compressed_bytes,
        limits: *limits,
        exceeded: None,
        cancel: layer.cancel.clone(),
    };
    let mut archive = tar::Archive::new(guarded);
    let result = walk_entries(&mut archive, layer, limits, walk, visit);
    // A limit trips inside `read`, which can only return an `io::Error`; the precise reason
    // is kept aside and reported instead of the generic I/O failure it caused.
    if let Some(exceeded) = archive.into_inner().exceeded {
        return Err(LayerFailure::Limit(Error::limit(
            format!("layer {} ({})", layer.index, layer.digest),
            exceeded,
        )));
    }
    result
}

fn walk_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    layer: &LayerContext<'_>,
    limits: &Limits,
    walk: &mut Walk,
    visit: &mut dyn FnMut(&mut FileVisit<'_>) -> std::io::Result<()>,
) -> Result<(), LayerFailure> {
    let mut n_entries = 0u64;
    let warn = |walk: &mut Walk, path: &str, reason: &str| {
        tracing::warn!(layer = layer.index, path, reason, "Skipped a layer entry.");
        walk.warnings.push(Warning {
            location: format!("layer {} ({}): {path}", layer.index, layer.digest),
            reason: reason.to_owned(),
        });
    };
    for entry in archive.entries().map_err(LayerFailure::Stream)? {
        layer.cancel.check().map_err(LayerFailure::Stream)?;
        let mut entry = entry.map_err(LayerFailure::Stream)?;
        n_entries += 1;
        if n_entries > limits.max_entries {
            return Err(LayerFailure::Limit(Error::limit(
                format!("layer {} ({})", layer.index, layer.digest),
                format!("more than {} entries (max_entries)", limits.max_entries),
            )));
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw_path.len() > limits.max_path_bytes {
            let shortened: String = raw_path.chars().take(64).collect();
            warn(walk, &shortened, "path longer than max_path_bytes");
            continue;
        }
        let path = match normalize_entry(&raw_path) {
            Ok(path) => path,
            // `./`, the root directory itself, which layer tools write first.
            Err(UnsafePath::Empty) => continue,
            Err(unsafe_path) => {
                warn(walk, &raw_path, unsafe_path.reason());
                continue;
            }
        };
        if walk.filesystem.apply_whiteout(&path, layer.index) {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let entry_type = header.entry_type();
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                NodeKind::File { size: entry.size() }
            }
            tar::EntryType::Directory => NodeKind::Directory,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                if entry_type == tar::EntryType::Symlink {
                    NodeKind::Symlink { target }
                } else {
                    match normalize_entry(&target) {
                        Ok(target) => NodeKind::Hardlink { target },
                        Err(unsafe_path) => {
                            warn(
                                walk,
                                &path,
                                &format!(
                                    "hard link to {target:?} refused: {}",
                                    unsafe_path.reason()
                                ),
                            );
                            continue;
                        }
                    }
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                warn(walk, &path, "device or FIFO entry skipped");
                continue;
            }
            // Pax and GNU long-name headers are consumed by the tar reader; anything else is
            // an entry type no image tool writes.
            other => {
                warn(walk, &path, &format!("unsupported entry type {other:?}"));
                continue;
            }
        };
        let size = match kind {
            NodeKind::File { size } => Some(size),
            _ => None,
        };
        walk.filesystem.insert(path.clone(), layer.index, kind);
        if let Some(size) = size {
            let mut file = FileVisit {
                path: &path,
                layer_index: layer.index,
                layer_digest: Some(layer.digest),
                size,
                mode,
                content: Content::Stream(&mut entry),
                cancel: layer.cancel,
            };
            if let Err(source) = visit(&mut file) {
                // A read error inside the callback is the stream's failure (truncation,
                // corruption); anything else is the callback's own.
                return Err(LayerFailure::Visit { path, source });
            }
        }
    }
    Ok(())
}

/// Counts the bytes read through it into a shared cell.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The decompressed stream, checked against the size and ratio limits and the walk's stop
/// request as it is read, in reads of at most [`Cancel::MAX_READ_BYTES`] (the tar reader
/// skips the content of files nobody reads through here too).
struct Guarded {
    inner: Box<dyn Read>,
    produced: u64,
    compressed: Rc<Cell<u64>>,
    limits: Limits,
    exceeded: Option<String>,
    cancel: Cancel,
}

impl Read for Guarded {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.cancel.check()?;
        let n = self.inner.read(bounded(buffer))?;
        self.produced += n as u64;
        let compressed = self.compressed.get().max(1);
        let exceeded = if self.produced > self.limits.max_layer_bytes {
            Some(format!(
                "more than {} uncompressed bytes (max_layer_bytes)",
                self.limits.max_layer_bytes
            ))
        } else if self.produced > self.limits.ratio_grace_bytes
            && self.produced / compressed > self.limits.max_compression_ratio
        {
            Some(format!(
                "{} uncompressed bytes from {compressed} compressed bytes, a ratio over {} \
                 (max_compression_ratio): a decompression bomb",
                self.produced, self.limits.max_compression_ratio
            ))
        } else {
            None
        };
        if let Some(exceeded) = exceeded {
            let error = std::io::Error::other(exceeded.clone());
            self.exceeded = Some(exceeded);
            return Err(error);
        }
        Ok(n)
    }
}
