//! Loading the embedded eBPF objects and reading their maps and ring buffers.

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libbpf_rs::{Map, MapCore, MapFlags, Object, ObjectBuilder, RingBuffer, RingBufferBuilder};

use crate::error::Error;

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
    let value = counter
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|error| Error::bpf("reading eBPF map", name, error))?;
    Ok(value
        .and_then(|bytes| bytes.get(..8)?.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0))
}

/// The most decoded records a [`Reports`] queue holds between two polls; more are counted
/// as [`Reports::overflowed`] and dropped, so a flood cannot grow the reader's memory.
pub(crate) const MAX_QUEUED_REPORTS: usize = 65_536;

/// A ring buffer whose records are decoded into a bounded queue the owner drains.
pub(crate) struct Reports<T> {
    ring_buffer: RingBuffer<'static>,
    queue: Arc<Mutex<VecDeque<T>>>,
    overflowed: Arc<AtomicU64>,
}

impl<T: Send + 'static> Reports<T> {
    /// Subscribes to ring buffer map `ring_map` (called `name` in errors). A record that
    /// `decode` rejects (wrong size) stops the poll with an error rather than being dropped
    /// silently. The map's file descriptor must stay open as long as the reader.
    pub(crate) fn new(
        ring_map: &dyn MapCore,
        name: &'static str,
        decode: fn(&[u8]) -> Option<T>,
    ) -> Result<Reports<T>, Error> {
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let overflowed = Arc::new(AtomicU64::new(0));
        let sink = Arc::clone(&queue);
        let sink_overflowed = Arc::clone(&overflowed);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(ring_map, move |record: &[u8]| {
                // A record of the wrong size means the object and this loader disagree on
                // the layout; stop consuming and surface it to the poller as an error.
                let Some(decoded) = decode(record) else {
                    return -libc::EBADMSG;
                };
                let mut queue = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.len() >= MAX_QUEUED_REPORTS {
                    sink_overflowed.fetch_add(1, Ordering::Relaxed);
                } else {
                    queue.push_back(decoded);
                }
                0
            })
            .map_err(|error| Error::bpf("subscribing to ring buffer", name, error))?;
        let ring_buffer = builder
            .build()
            .map_err(|error| Error::bpf("subscribing to ring buffer", name, error))?;
        Ok(Reports {
            ring_buffer,
            queue,
            overflowed,
        })
    }

    /// Records dropped because the queue held [`MAX_QUEUED_REPORTS`] undrained ones.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for records, then returns every record received so far.
    pub(crate) fn poll(&self, timeout: Duration) -> Result<Vec<T>, Error> {
        self.ring_buffer
            .poll(timeout)
            .map_err(|error| Error::bpf("polling ring buffer", "reports", error))?;
        Ok(self.take_queued())
    }

    /// Returns every record in the ring buffer now, without a system call (the ring is
    /// read from shared memory).
    pub(crate) fn consume(&self) -> Result<Vec<T>, Error> {
        self.ring_buffer
            .consume()
            .map_err(|error| Error::bpf("reading ring buffer", "reports", error))?;
        Ok(self.take_queued())
    }

    fn take_queued(&self) -> Vec<T> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
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
