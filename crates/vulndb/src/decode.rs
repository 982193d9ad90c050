//! Compressed feeds read as streams: gzip, bzip2, xz and zstd, told apart by their magic
//! numbers, decompressed while they are read (never whole in memory), and a reader that
//! stops a stream past a byte limit (compression bombs, feeds over the import's limit).

use std::io::{BufRead, Read};

/// The compressions feeds come in: repository metadata (`updateinfo.xml.gz`, `.xz`,
/// `.zst`) and OVAL (Oracle's `com.oracle.elsa-all.xml.bz2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// The compression whose magic number `bytes` start with.
    pub(crate) fn of(bytes: &[u8]) -> Option<Compression> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if bytes.starts_with(b"BZh") && bytes.get(3).is_some_and(u8::is_ascii_digit) {
            Some(Compression::Bzip2)
        } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// Runs `read` on the decompressed stream of `input`. Errors of the compressed data reach
/// `read` as I/O errors saying `corrupt <compression> data: ...`.
///
/// xz is decompressed on a thread of its own that hands its output over in chunks, since
/// its decoder (lzma-rs) writes rather than being read; at most [`XZ_CHUNKS_IN_FLIGHT`]
/// chunks wait, and the thread ends when the stream does or when `read` stops reading.
pub(crate) fn with_decompressed<R: Read + Send, T>(
    compression: Compression,
    input: R,
    read: impl FnOnce(&mut dyn BufRead) -> T,
) -> std::io::Result<T> {
    let labelled = |inner| std::io::BufReader::new(Labelled { inner, compression });
    match compression {
        Compression::Gzip => Ok(read(&mut labelled(Box::new(
            flate2::read::MultiGzDecoder::new(input),
        )))),
        Compression::Bzip2 => Ok(read(&mut labelled(Box::new(
            bzip2::read::MultiBzDecoder::new(input),
        )))),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(input)?;
            Ok(read(&mut labelled(Box::new(decoder))))
        }
        Compression::Xz => Ok(std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel(XZ_CHUNKS_IN_FLIGHT);
            scope.spawn(move || {
                let mut input = std::io::BufReader::new(input);
                let mut output = ChunkSender {
                    sender: sender.clone(),
                };
                if let Err(error) = lzma_rs::xz_decompress(&mut input, &mut output) {
                    // Nobody listens any more when the reader stopped first.
                    let _ = sender.send(Err(format!("corrupt xz data: {error}")));
                }
            });
            let mut chunks = std::io::BufReader::new(ChunkReceiver {
                receiver,
                chunk: Vec::new(),
                at: 0,
            });
            read(&mut chunks)
        })),
    }
}

/// How many decompressed xz chunks of [`XZ_CHUNK_BYTES`] wait for the reader at most.
const XZ_CHUNKS_IN_FLIGHT: usize = 4;

/// The size of a decompressed xz chunk handed to the reader.
const XZ_CHUNK_BYTES: usize = 64 << 10;

/// The xz decoder's output, sent in chunks; fails once the reader is gone.
struct ChunkSender {
    sender: std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>,
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let taken = buf.len().min(XZ_CHUNK_BYTES);
        self.sender
            .send(Ok(buf[..taken].to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The reading end of [`ChunkSender`]: the chunks in order, then the decoder's error if it
/// failed.
struct ChunkReceiver {
    receiver: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChunkReceiver {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(reason)) => return Err(std::io::Error::other(reason)),
                // The decoder finished.
                Err(_) => return Ok(0),
            }
        }
        let taken = (self.chunk.len() - self.at).min(buf.len());
        buf[..taken].copy_from_slice(&self.chunk[self.at..self.at + taken]);
        self.at += taken;
        Ok(taken)
    }
}

/// A decoder whose errors say which compression's data is corrupt.
struct Labelled<'a> {
    inner: Box<dyn Read + 'a>,
    compression: Compression,
}

impl Read for Labelled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("corrupt {} data: {error}", self.compression.name()),
            )
        })
    }
}

/// A [`BufRead`] that fails once more than `limit` bytes were consumed from it, and says
/// so in [`Bounded::exceeded`].
pub(crate) struct Bounded<R> {
    inner: R,
    consumed: u64,
    limit: u64,
}

impl<R: BufRead> Bounded<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Bounded<R> {
        Bounded {
            inner,
            consumed: 0,
            limit,
        }
    }

    /// Whether reading stopped at the limit.
    pub(crate) fn exceeded(&self) -> bool {
        self.consumed > self.limit
    }

    /// The bytes consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }
}

impl<R: BufRead> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let taken = available.len().min(buf.len());
        buf[..taken].copy_from_slice(&available[..taken]);
        self.consume(taken);
        Ok(taken)
    }
}

impl<R: BufRead> BufRead for Bounded<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.exceeded() {
            return Err(std::io::Error::other("over the size limit"));
        }
        // One byte past the limit may be consumed, so that crossing it is seen.
        let room = (self.limit + 1 - self.consumed).min(usize::MAX as u64) as usize;
        let available = self.inner.fill_buf()?;
        Ok(&available[..available.len().min(room)])
    }

    fn consume(&mut self, amount: usize) {
        self.consumed += amount as u64;
        self.inner.consume(amount);
    }
}
