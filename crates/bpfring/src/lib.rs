//! One reader of BPF ring buffer maps (`BPF_MAP_TYPE_RINGBUF`), shared by the sensor (its
//! event ring) and enforcement (the connect programs' report ring and the kill-at-exec
//! ring), through one mapping of the ring's data.
//!
//! libbpf's reader maps the ring's data pages twice in a row, so that a record wrapping past
//! the end reads as one slice. The kernel populates ring mappings at `mmap`, so that second
//! copy doubled the ring in the process's resident memory (8 MiB of RSS for a 4 MiB ring)
//! without holding anything. This reader maps the consumer page read-write and the producer
//! page with the data pages read-only, once each (the kernel accepts any length up to its
//! area), and copies the rare record that wraps into a scratch buffer.
//!
//! The protocol is the kernel's (`kernel/bpf/ringbuf.c`) as libbpf's `ringbuf_process_ring`
//! follows it: the producer position is loaded with acquire ordering; each record starts at
//! an 8-byte aligned position with a header, its length in the low 30 bits with a BUSY bit
//! (reserved, not committed yet: reading stops there) and a DISCARD bit (skipped), loaded with
//! acquire ordering; the consumer position is stored with release ordering after each record,
//! so the kernel may reuse its space from then on.
//!
//! Each record is handed over with its position (its header's byte offset since the ring was
//! created): unique to the record, and the same when a record a dead process left unread (or
//! read and not yet advanced past) is read again by the next process that maps the ring, since
//! the consumer position lives in the ring itself.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// A committed record's header: its length in the low bits, then these flags.
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
/// The header's size: the length word and the kernel's page offset word.
const HEADER_BYTES: u64 = 8;

/// Why a ring could not be mapped or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The map's description could not be read from the kernel.
    #[error("reading ring buffer `{name}`'s size")]
    Info {
        /// The map's name.
        name: String,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The map is not a ring buffer, or not of a size the kernel gives rings.
    #[error("map `{name}` is not a ring buffer of a power of two pages: {found}")]
    NotARing {
        /// The map's name.
        name: String,
        /// What it is instead.
        found: String,
    },
    /// A system call on the ring failed (mapping it, waiting on it).
    #[error("{what} failed")]
    Kernel {
        /// The operation, with the ring's name.
        what: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The ring holds a record header no kernel writes: reading stops rather than reading
    /// past the ring.
    #[error(
        "the ring buffer's record at position {position} claims {length} bytes, more than its {ring_bytes}-byte ring holds"
    )]
    Record {
        /// The record's position (the consumer position).
        position: u64,
        /// The length its header gives.
        length: u64,
        /// The ring's data size.
        ring_bytes: u64,
    },
}

/// A reader of one ring buffer map: the records the kernel committed, in order.
pub struct RingReader {
    /// A duplicate of the map's descriptor: what the reader waits on, and what keeps the
    /// map alive while its pages are mapped.
    map: OwnedFd,
    /// The consumer position's page, the only one the kernel lets user space write.
    consumer: Mapping,
    /// The producer position's page, then the data pages, once.
    producer_and_data: Mapping,
    page_bytes: usize,
    data_bytes: u64,
    /// Where a record that wraps past the end of the data pages is put together.
    scratch: Vec<u8>,
}

// SAFETY: the mappings are shared memory the reader owns, valid until it is dropped; the
// kernel expects a ring's consumer on any thread, and `consume` takes `&mut self`.
unsafe impl Send for RingReader {}

impl RingReader {
    /// Maps ring buffer map `map`. `name` is the map's name, for errors.
    pub fn new(map: BorrowedFd<'_>, name: &str) -> Result<RingReader, Error> {
        let info = libbpf_rs::MapInfo::new(map).map_err(|source| Error::Info {
            name: name.to_owned(),
            source,
        })?;
        if info.map_type() != libbpf_rs::MapType::RingBuf {
            return Err(Error::NotARing {
                name: name.to_owned(),
                found: format!("a {:?} map", info.map_type()),
            });
        }
        let data_bytes = u64::from(info.info.max_entries);
        // SAFETY: sysconf has no preconditions.
        let page_bytes =
            usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        // The kernel only creates rings of a power of two pages; anything else would break
        // the position arithmetic below.
        if !data_bytes.is_power_of_two() || data_bytes < page_bytes as u64 {
            return Err(Error::NotARing {
                name: name.to_owned(),
                found: format!("{data_bytes} bytes"),
            });
        }
        let map = map.try_clone_to_owned().map_err(|source| Error::Kernel {
            what: format!("duplicating ring buffer `{name}`'s descriptor"),
            source,
        })?;
        let consumer = Mapping::new(&map, page_bytes, true, 0, name)?;
        let producer_and_data = Mapping::new(
            &map,
            page_bytes + data_bytes as usize,
            false,
            page_bytes,
            name,
        )?;
        Ok(RingReader {
            map,
            consumer,
            producer_and_data,
            page_bytes,
            data_bytes,
            scratch: Vec::new(),
        })
    }

    /// The ring's descriptor: readable (`poll`) while the ring holds records, for a caller
    /// that waits on it beside other descriptors.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.map.as_fd()
    }

    /// Waits up to `timeout` (`Duration::MAX`: without limit) until the ring holds records.
    /// A signal that cuts the wait short is no failure: the caller reads what arrived.
    pub fn wait(&self, timeout: Duration) -> Result<(), Error> {
        let timeout_ms = if timeout == Duration::MAX {
            -1
        } else {
            i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
        };
        let mut ready = libc::pollfd {
            fd: self.map.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // One descriptor: poll(2) is epoll's wait without an epoll instance to keep.
        // SAFETY: `ready` is one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut ready, 1, timeout_ms) } < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::Kernel {
                    what: "waiting on the ring buffer".to_owned(),
                    source: error,
                });
            }
        }
        Ok(())
    }

    /// Hands each committed record to `each` with its position, in order, advancing past it
    /// once `each` returns; returns how many. Stops at a record not committed yet, when the
    /// ring is empty, or after one ring's worth of bytes (so that a producer as fast as the
    /// reader does not keep it here forever).
    pub fn consume(&mut self, each: impl FnMut(u64, &[u8])) -> Result<usize, Error> {
        let base = self.producer_and_data.at.as_ptr();
        // SAFETY: the first page of `producer_and_data` holds the kernel's producer position
        // and the consumer page the consumer position, both 8-byte aligned u64s that live as
        // long as the mappings (as long as `self`); the data pages follow the producer page.
        let view = unsafe {
            RingView {
                consumer_pos: AtomicU64::from_ptr(self.consumer.at.as_ptr().cast()),
                producer_pos: AtomicU64::from_ptr(base.cast()),
                data: base.add(self.page_bytes),
                data_bytes: self.data_bytes,
            }
        };
        // SAFETY: `view` describes a live ring mapped as the kernel lays it out.
        unsafe { view.consume(&mut self.scratch, each) }
    }
}

/// One ring as the kernel lays it out: its two positions and its data pages.
struct RingView<'a> {
    consumer_pos: &'a AtomicU64,
    producer_pos: &'a AtomicU64,
    /// `data_bytes` bytes, a power of two, 8-byte aligned.
    data: *const u8,
    data_bytes: u64,
}

impl RingView<'_> {
    /// The consumer's loop (see the module doc).
    ///
    /// # Safety
    /// `data` points to `data_bytes` readable bytes that live as long as `self`, into which
    /// only committed records below the consumer position are written meanwhile.
    unsafe fn consume(
        &self,
        scratch: &mut Vec<u8>,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<usize, Error> {
        let mask = self.data_bytes - 1;
        // Only this reader writes it.
        let mut consumer = self.consumer_pos.load(Ordering::Acquire);
        let stop_after = consumer.wrapping_add(self.data_bytes);
        let mut records = 0;
        loop {
            let producer = self.producer_pos.load(Ordering::Acquire);
            if consumer >= producer {
                return Ok(records);
            }
            while consumer < producer {
                let offset = consumer & mask;
                // SAFETY: `offset` is 8-byte aligned inside the data, so the header does not
                // wrap; the kernel writes it atomically.
                let header = unsafe {
                    AtomicU32::from_ptr(self.data.add(offset as usize).cast_mut().cast())
                }
                .load(Ordering::Acquire);
                if header & BUSY_BIT != 0 {
                    return Ok(records);
                }
                let length = u64::from(header & !(BUSY_BIT | DISCARD_BIT));
                if length > self.data_bytes - HEADER_BYTES {
                    return Err(Error::Record {
                        position: consumer,
                        length,
                        ring_bytes: self.data_bytes,
                    });
                }
                if header & DISCARD_BIT == 0 {
                    let start = (offset + HEADER_BYTES) & mask;
                    let first = length.min(self.data_bytes - start) as usize;
                    // SAFETY: both parts lie inside the data and belong to this committed
                    // record, which the kernel does not touch until the consumer passes it.
                    let record = unsafe {
                        let head = std::slice::from_raw_parts(self.data.add(start as usize), first);
                        if first as u64 == length {
                            head
                        } else {
                            let tail =
                                std::slice::from_raw_parts(self.data, length as usize - first);
                            scratch.clear();
                            scratch.extend_from_slice(head);
                            scratch.extend_from_slice(tail);
                            scratch.as_slice()
                        }
                    };
                    each(consumer, record);
                    records += 1;
                }
                consumer += (length + HEADER_BYTES).next_multiple_of(8);
                self.consumer_pos.store(consumer, Ordering::Release);
                if consumer >= stop_after {
                    return Ok(records);
                }
            }
        }
    }
}

/// A shared mapping of part of a ring buffer map, unmapped on drop.
struct Mapping {
    at: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(
        map: &OwnedFd,
        len: usize,
        writable: bool,
        offset: usize,
        name: &str,
    ) -> Result<Mapping, Error> {
        let protection = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let offset_arg = libc::off_t::try_from(offset).map_err(|_| Error::NotARing {
            name: name.to_owned(),
            found: format!("a mapping offset of {offset} bytes"),
        })?;
        // SAFETY: a new shared mapping of the map's descriptor; no existing memory changes.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                protection,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                offset_arg,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(Error::Kernel {
                what: format!("mapping {len} bytes of ring buffer `{name}` at {offset}"),
                source: std::io::Error::last_os_error(),
            });
        }
        let at = NonNull::new(at.cast()).expect("mmap succeeded with a non-null address");
        Ok(Mapping { at, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; nothing refers to it after `self`.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in ordinary memory, written the way the kernel writes (`bpf_ringbuf_reserve`,
    /// `_submit`, `_discard`): the reader's loop sees the same layout as in the mapping.
    struct FakeRing {
        consumer: AtomicU64,
        producer: AtomicU64,
        /// u64s so that the data is 8-byte aligned, as the kernel's pages are.
        data: Vec<u64>,
    }

    impl FakeRing {
        fn new(data_bytes: usize) -> FakeRing {
            FakeRing {
                consumer: AtomicU64::new(0),
                producer: AtomicU64::new(0),
                data: vec![0; data_bytes / 8],
            }
        }

        fn bytes(&self) -> u64 {
            (self.data.len() * 8) as u64
        }

        fn view(&self) -> RingView<'_> {
            RingView {
                consumer_pos: &self.consumer,
                producer_pos: &self.producer,
                data: self.data.as_ptr().cast(),
                data_bytes: self.bytes(),
            }
        }

        /// Free bytes, as the kernel's reserve computes them.
        fn free(&self) -> u64 {
            self.bytes()
                - (self.producer.load(Ordering::Relaxed) - self.consumer.load(Ordering::Relaxed))
        }

        /// Reserves a record of `payload`'s length with `flags` in its header and writes
        /// `payload` (wrapping as the kernel's double mapping would); `None` when full.
        fn write(&mut self, payload: &[u8], flags: u32) -> Option<u64> {
            let needed = (payload.len() as u64 + HEADER_BYTES).next_multiple_of(8);
            if needed > self.free() {
                return None;
            }
            let position = self.producer.load(Ordering::Relaxed);
            let mask = self.bytes() - 1;
            let bytes: &mut [u8] = bytemuck_bytes(&mut self.data);
            let offset = (position & mask) as usize;
            let header = payload.len() as u32 | flags;
            bytes[offset..offset + 4].copy_from_slice(&header.to_ne_bytes());
            bytes[offset + 4..offset + 8].copy_from_slice(&0u32.to_ne_bytes());
            for (index, byte) in payload.iter().enumerate() {
                bytes[(offset + 8 + index) & mask as usize] = *byte;
            }
            self.producer.store(position + needed, Ordering::Release);
            Some(position)
        }

        /// Commits the record reserved at `position` (clears its BUSY bit).
        fn commit(&mut self, position: u64) {
            let mask = self.bytes() - 1;
            let bytes = bytemuck_bytes(&mut self.data);
            let offset = (position & mask) as usize;
            let header = u32::from_ne_bytes(bytes[offset..offset + 4].try_into().unwrap());
            bytes[offset..offset + 4].copy_from_slice(&(header & !BUSY_BIT).to_ne_bytes());
        }

        fn read(&self, scratch: &mut Vec<u8>) -> Result<Vec<Vec<u8>>, Error> {
            let mut records = Vec::new();
            // SAFETY: the view is over `self.data`, which outlives the call.
            let n = unsafe {
                self.view()
                    .consume(scratch, |_, record| records.push(record.to_vec()))
            }?;
            assert_eq!(n, records.len());
            Ok(records)
        }
    }

    fn bytemuck_bytes(words: &mut [u64]) -> &mut [u8] {
        // SAFETY: u8 has no alignment or validity requirements; the length covers the words.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
    }

    fn payload(length: usize, seed: usize) -> Vec<u8> {
        (0..length).map(|index| (index * 7 + seed) as u8).collect()
    }

    #[test]
    fn records_of_every_size_are_read_whole_across_the_wrap_point() {
        const RING: u64 = 4096;
        let mut scratch = Vec::new();
        // Each length starts at every 8-byte position of the ring's last 320 bytes (in the
        // ring's second lap, so positions are masked), so that the header is the ring's last
        // word, or its first byte or any later byte is the one that wraps.
        for length in 1..=300 {
            for start in ((2 * RING - 320)..2 * RING).step_by(8) {
                let mut ring = FakeRing::new(RING as usize);
                ring.consumer.store(start, Ordering::Relaxed);
                ring.producer.store(start, Ordering::Relaxed);
                let record = payload(length, start as usize);
                let next = payload(length / 2 + 1, length);
                ring.write(&record, 0).expect("room in an empty ring");
                ring.write(&next, 0).expect("room for a second record");
                assert_eq!(
                    ring.read(&mut scratch).unwrap(),
                    vec![record, next],
                    "length {length} at {start}"
                );
                assert_eq!(
                    ring.consumer.load(Ordering::Relaxed),
                    ring.producer.load(Ordering::Relaxed)
                );
            }
        }
    }

    #[test]
    fn a_full_ring_is_read_whole_and_its_space_given_back() {
        const RING: usize = 4096;
        let mut ring = FakeRing::new(RING);
        let mut scratch = Vec::new();
        // Start off the beginning so that the full ring also wraps.
        ring.write(&payload(1000, 0), 0).unwrap();
        ring.read(&mut scratch).unwrap();
        let mut written = Vec::new();
        while ring.write(&payload(56, written.len()), 0).is_some() {
            written.push(payload(56, written.len()));
        }
        assert_eq!(ring.free(), 0, "64-byte records fill a 4 KiB ring exactly");
        assert_eq!(written.len(), RING / 64);
        assert_eq!(ring.read(&mut scratch).unwrap(), written);
        assert_eq!(ring.free(), RING as u64, "all of it is the kernel's again");
        assert!(ring.write(&payload(4000, 9), 0).is_some());
        assert_eq!(ring.read(&mut scratch).unwrap(), vec![payload(4000, 9)]);
    }

    #[test]
    fn discarded_records_are_passed_over_and_an_uncommitted_one_stops_the_read() {
        let mut ring = FakeRing::new(4096);
        let mut scratch = Vec::new();
        ring.write(b"first", 0).unwrap();
        ring.write(b"thrown away", DISCARD_BIT).unwrap();
        ring.write(b"second", 0).unwrap();
        let reserved = ring.write(b"not yet", BUSY_BIT).unwrap();
        ring.write(b"after it", 0).unwrap();
        assert_eq!(
            ring.read(&mut scratch).unwrap(),
            vec![b"first".to_vec(), b"second".to_vec()]
        );
        assert_eq!(
            ring.consumer.load(Ordering::Relaxed),
            reserved,
            "the consumer waits at the record still being written"
        );
        assert!(ring.read(&mut scratch).unwrap().is_empty());
        ring.commit(reserved);
        assert_eq!(
            ring.read(&mut scratch).unwrap(),
            vec![b"not yet".to_vec(), b"after it".to_vec()]
        );
    }

    #[test]
    fn one_read_stops_after_a_rings_worth_of_bytes() {
        const RING: usize = 4096;
        let mut ring = FakeRing::new(RING);
        let mut scratch = Vec::new();
        for seed in 0..RING / 64 {
            ring.write(&payload(56, seed), 0).unwrap();
        }
        // A producer as fast as the reader: another ring's worth committed (the same records'
        // headers, a lap later) by the time the first lap is read; the read returns after
        // one ring's worth and leaves the rest for the next.
        let producer = ring.producer.load(Ordering::Relaxed);
        ring.producer
            .store(producer + RING as u64, Ordering::Relaxed);
        let read = ring.read(&mut scratch).unwrap();
        assert_eq!(read.len(), RING / 64);
        assert_eq!(ring.consumer.load(Ordering::Relaxed), RING as u64);
    }

    /// Each record comes with its header's position, the one the kernel reserved it at (a
    /// ring's positions run on across laps, so they are unique to a record), and a record is
    /// passed over only once its callback returned: a reader that stops inside a callback
    /// (a process killed there) leaves the record to the next one, at the same position.
    #[test]
    fn each_record_comes_with_its_position_and_is_passed_over_only_after_its_callback() {
        const RING: u64 = 4096;
        let mut ring = FakeRing::new(RING as usize);
        let mut scratch = Vec::new();
        // Into the second lap, across the wrap point.
        ring.consumer.store(RING - 40, Ordering::Relaxed);
        ring.producer.store(RING - 40, Ordering::Relaxed);
        let written: Vec<u64> = (0..3)
            .map(|seed| ring.write(&payload(60, seed), 0).unwrap())
            .collect();
        let mut seen = Vec::new();
        // SAFETY: the view is over `ring.data`, which outlives the call.
        unsafe {
            ring.view().consume(&mut scratch, |position, record| {
                seen.push((position, record.to_vec()));
            })
        }
        .unwrap();
        let expected: Vec<(u64, Vec<u8>)> = written
            .iter()
            .zip(0..)
            .map(|(&position, seed)| (position, payload(60, seed)))
            .collect();
        assert_eq!(seen, expected);
        assert!(
            written[2] > RING,
            "the positions run on past the ring's size"
        );

        // Inside the callback the consumer position is still the record's own.
        let at = ring.write(&payload(8, 9), 0).unwrap();
        let consumer = &ring.consumer;
        let mut during = Vec::new();
        // SAFETY: as above.
        unsafe {
            ring.view().consume(&mut scratch, |position, _| {
                during.push((position, consumer.load(Ordering::Relaxed)));
            })
        }
        .unwrap();
        assert_eq!(during, [(at, at)]);
        assert_eq!(
            consumer.load(Ordering::Relaxed),
            at + 16,
            "passed over after it"
        );
    }

    #[test]
    fn a_record_longer_than_the_ring_is_an_error_not_a_read_past_it() {
        let mut ring = FakeRing::new(4096);
        let bytes = bytemuck_bytes(&mut ring.data);
        bytes[..4].copy_from_slice(&5000u32.to_ne_bytes());
        ring.producer.store(5008, Ordering::Relaxed);
        let error = ring.read(&mut Vec::new()).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Record {
                    position: 0,
                    length: 5000,
                    ring_bytes: 4096
                }
            ),
            "{error:?}"
        );
    }
}
