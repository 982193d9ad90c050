//! Loading the embedded eBPF objects and reading their maps and ring buffers.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::{Map, MapCore, MapFlags, Object, ObjectBuilder};
use palisade_bpfring::RingReader;

use crate::error::Error;
use crate::stop_signal::{StopSignal, Wake};

/// The compiled `exec_kill.bpf.c`.
pub(crate) const EXEC_KILL_OBJECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/exec_kill.bpf.o"));
/// The compiled `connect.bpf.c`.
pub(crate) const CONNECT_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/connect.bpf.o"));
/// The compiled `lsm_probe.bpf.c`.
pub(crate) const LSM_PROBE_OBJECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lsm_probe.bpf.o"));

/// Opens and loads (verifies) an embedded object; `name` is used in errors.
pub(crate) fn load_object(name: &'static str, bytes: &[u8]) -> Result<Object, Error> {
    load_object_sharing(name, bytes, &[])
}

/// Like [`load_object`], but the maps named in `shared` are not created: the object uses the
/// given existing maps instead (same type and sizes), so several objects can write to one.
pub(crate) fn load_object_sharing(
    name: &'static str,
    bytes: &[u8],
    shared: &[(&'static str, BorrowedFd<'_>)],
) -> Result<Object, Error> {
    let mut open_object = ObjectBuilder::default()
        .open_memory(bytes)
        .map_err(|error| Error::bpf("opening eBPF object", name, error))?;
    for (map_name, fd) in shared {
        open_object
            .maps_mut()
            .find(|map| map.name() == *map_name)
            .ok_or_else(|| Error::new(crate::ErrorKind::System, "finding eBPF map", map_name))?
            .reuse_fd(*fd)
            .map_err(|error| Error::bpf("sharing eBPF map", map_name, error))?;
    }
    open_object
        .load()
        .map_err(|error| Error::bpf("loading eBPF object", name, error))
}

/// The map called `name` in `object`.
pub(crate) fn map<'obj>(object: &'obj Object, name: &'static str) -> Result<Map<'obj>, Error> {
    object
        .maps()
        .find(|map| map.name() == name)
        .ok_or_else(|| Error::new(crate::ErrorKind::System, "finding eBPF map", name))
}

/// Reads the `u64` at index 0 of array map `counter` (the lost-report counters); `name` is
/// used in errors.
pub(crate) fn read_counter(counter: &dyn MapCore, name: &'static str) -> Result<u64, Error> {
    read_counter_at(counter, 0, name)
}

/// Reads the `u64` at `index` of array map `counter`; `name` is used in errors.
pub(crate) fn read_counter_at(
    counter: &dyn MapCore,
    index: u32,
    name: &'static str,
) -> Result<u64, Error> {
    let value = counter
        .lookup(&index.to_ne_bytes(), MapFlags::ANY)
        .map_err(|error| Error::bpf("reading eBPF map", name, error))?;
    Ok(value
        .and_then(|bytes| bytes.get(..8)?.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0))
}

/// The most decoded records an [`ExecKiller`](crate::ExecKiller)'s [`Reports`] queue holds
/// between two polls; more are counted as [`Reports::overflowed`] and dropped, so a flood
/// cannot grow the reader's memory.
pub(crate) const MAX_QUEUED_REPORTS: usize = 65_536;

/// What a ring's reader does with each record before it queues it, given the record's
/// position in the ring (its byte offset since the ring was created: unique to the record,
/// and the same when a record left unread by a dead process is read again by the next one):
/// the connect report stream keeps the reports that stand for an attempt in a map that
/// outlives the process ([`ConnectReports`](crate::ConnectReports)).
pub(crate) type RecordHook = Box<dyn Fn(u64, &[u8]) + Send>;

/// A [`Reports`] ring with the hook that sees its records: read by one thread at a time.
struct LockedRing {
    reader: RingReader,
    hook: Option<RecordHook>,
}

/// A ring buffer whose records are decoded into a bounded queue the owner drains, read
/// either by the owner ([`Reports::poll`], [`Reports::consume`]) or also, as they arrive, by
/// a [`BackgroundReader`]'s thread: the ring is behind a lock so that one of them at a time
/// consumes it, in order, into the one queue. The ring is read by the workspace's one ring
/// consumer ([`palisade_bpfring::RingReader`]: its data mapped once, a wrapped record
/// copied), which hands each record over with its position.
pub(crate) struct Reports<T> {
    ring: Mutex<LockedRing>,
    /// A duplicate of the ring buffer map's descriptor, readable while the ring holds
    /// records: what a background reader sleeps on.
    ring_fd: OwnedFd,
    name: &'static str,
    decode: fn(&[u8]) -> Option<T>,
    max_queued: usize,
    queue: Mutex<VecDeque<T>>,
    overflowed: AtomicU64,
    /// Why a background reader stopped, kept until the owner's next read returns it.
    reader_failure: Mutex<Option<Error>>,
}

impl<T: Send + 'static> Reports<T> {
    /// Maps ring buffer map `ring_map` (called `name` in errors); the queue holds at most
    /// `max_queued` records. A record that `decode` rejects (wrong size) is passed over and
    /// makes the read fail, naming it, rather than being dropped silently. `hook`, when
    /// given, sees each record with its position before it is queued, and the ring's
    /// consumer position moves past the record only after that. The map's file descriptor
    /// must stay open as long as the reader.
    pub(crate) fn new(
        ring_map: &dyn MapCore,
        name: &'static str,
        decode: fn(&[u8]) -> Option<T>,
        max_queued: usize,
        hook: Option<RecordHook>,
    ) -> Result<Reports<T>, Error> {
        let reader = RingReader::new(ring_map.as_fd(), name).map_err(|error| {
            Error::new(crate::ErrorKind::System, "mapping ring buffer", name).with_source(error)
        })?;
        let ring_fd = reader
            .fd()
            .try_clone_to_owned()
            .map_err(|error| Error::io("duplicating the descriptor of ring buffer", name, error))?;
        Ok(Reports {
            ring: Mutex::new(LockedRing { reader, hook }),
            ring_fd,
            name,
            decode,
            max_queued,
            queue: Mutex::new(VecDeque::new()),
            overflowed: AtomicU64::new(0),
            reader_failure: Mutex::new(None),
        })
    }

    /// Reads every record in the ring into the queue, then runs `work` while no record is
    /// being read (the ring stays locked): a record's hook and the advance of the consumer
    /// position past it are never on either side of it, and no record the ring held before
    /// `work` (one a dead process's hook saw and did not advance past, found again) is read
    /// after it.
    pub(crate) fn after_reading_all<R>(
        &self,
        work: impl FnOnce() -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        self.read_into_queue(&mut ring)?;
        work()
    }

    /// Records dropped because the queue was full.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for records, then returns every record received so far.
    pub(crate) fn poll(&self, timeout: Duration) -> Result<Vec<T>, Error> {
        self.take_reader_failure()?;
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.reader.wait(timeout).map_err(|error| {
            Error::new(crate::ErrorKind::System, "polling ring buffer", self.name)
                .with_source(error)
        })?;
        self.read_into_queue(&mut ring)?;
        drop(ring);
        Ok(self.take_queued())
    }

    /// Returns every record in the ring buffer now (read from shared memory, without a
    /// system call) and every one a background reader queued.
    pub(crate) fn consume(&self) -> Result<Vec<T>, Error> {
        self.take_reader_failure()?;
        self.consume_into_queue()?;
        Ok(self.take_queued())
    }

    fn consume_into_queue(&self) -> Result<(), Error> {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        self.read_into_queue(&mut ring)
    }

    /// Reads the ring (locked by the caller) to its end into the queue: each record through
    /// the hook, then decoded and queued (counted as overflowed when the queue is full). A
    /// record that does not decode means the object and this loader disagree on the layout:
    /// it is passed over and the read fails, naming its size.
    fn read_into_queue(&self, ring: &mut LockedRing) -> Result<(), Error> {
        let mut undecodable = None;
        let hook = &ring.hook;
        let read = ring.reader.consume(|position, record| {
            if let Some(hook) = hook {
                hook(position, record);
            }
            let Some(decoded) = (self.decode)(record) else {
                undecodable.get_or_insert(record.len());
                return;
            };
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= self.max_queued {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            } else {
                queue.push_back(decoded);
            }
        });
        read.map_err(|error| {
            Error::new(crate::ErrorKind::System, "reading ring buffer", self.name)
                .with_source(error)
        })?;
        match undecodable {
            Some(bytes) => {
                Err(
                    Error::new(crate::ErrorKind::System, "reading ring buffer", self.name)
                        .with_source(format!(
                            "a record of {bytes} bytes, not of this build's layout"
                        )),
                )
            }
            None => Ok(()),
        }
    }

    /// The queued records. The queue's memory goes with them, so that a burst's peak is not
    /// kept for good.
    fn take_queued(&self) -> Vec<T> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner)).into()
    }

    fn take_reader_failure(&self) -> Result<(), Error> {
        match self
            .reader_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// A background reader's loop: sleeps until the ring holds records, queues them, until
    /// `stop` is raised. A failure ends it and is kept for the owner's next read (which then
    /// reads the ring itself).
    fn read_until_stopped(&self, stop: &StopSignal) {
        let failure = loop {
            match stop.wait_readable(self.ring_fd.as_fd()) {
                Ok(Wake::Stopped) => return,
                Ok(Wake::Readable) => {}
                Err(error) => {
                    break Error::io("waiting for records in ring buffer", self.name, error);
                }
            }
            if let Err(error) = self.consume_into_queue() {
                break error;
            }
        };
        *self
            .reader_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(failure);
    }
}

/// A thread that moves a [`Reports`] ring's records into its queue as they arrive: woken by
/// the ring buffer's descriptor (the kernel's wake-up when a record lands in an empty ring),
/// not by a timer, so the ring is emptied however long the owner takes between two reads,
/// and what waits for the owner is bounded by the queue, not by the ring. Dropping it stops
/// and joins the thread.
pub(crate) struct BackgroundReader {
    stop: StopSignal,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundReader {
    /// Starts reading `reports` on a thread of its own (named after the ring).
    pub(crate) fn start<T: Send + 'static>(
        reports: Arc<Reports<T>>,
    ) -> Result<BackgroundReader, Error> {
        let name = reports.name;
        let stop = StopSignal::new().map_err(|error| {
            Error::io(
                "creating the stop signal of the reader of ring buffer",
                name,
                error,
            )
        })?;
        let stop_for_thread = stop.try_clone().map_err(|error| {
            Error::io(
                "duplicating the stop signal of the reader of ring buffer",
                name,
                error,
            )
        })?;
        let thread = std::thread::Builder::new()
            .name(format!("palisade-{name}"))
            .spawn(move || reports.read_until_stopped(&stop_for_thread))
            .map_err(|error| Error::io("starting the reader thread of ring buffer", name, error))?;
        Ok(BackgroundReader {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for BackgroundReader {
    fn drop(&mut self) {
        self.stop.raise();
        if let Some(thread) = self.thread.take() {
            // A panic in the reader only stopped the background reads; the owner's own reads
            // go on, so there is nothing more to do with it.
            let _ = thread.join();
        }
    }
}

/// Reads a little helper: the NUL-terminated string in `bytes`.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Decodes fixed-width native-endian fields from a record by offset.
pub(crate) struct Record<'a>(pub(crate) &'a [u8]);

impl Record<'_> {
    pub(crate) fn u64(&self, offset: usize) -> u64 {
        u64::from_ne_bytes(self.0[offset..offset + 8].try_into().expect("8 bytes"))
    }

    pub(crate) fn u32(&self, offset: usize) -> u32 {
        u32::from_ne_bytes(self.0[offset..offset + 4].try_into().expect("4 bytes"))
    }

    pub(crate) fn u16(&self, offset: usize) -> u16 {
        u16::from_ne_bytes(self.0[offset..offset + 2].try_into().expect("2 bytes"))
    }

    pub(crate) fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        &self.0[offset..offset + len]
    }
}
