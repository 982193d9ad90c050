//! Loading the embedded eBPF objects and reading their maps and ring buffers.

use std::collections::VecDeque;
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
    let open_object = ObjectBuilder::default()
        .open_memory(bytes)
        .map_err(|error| Error::bpf("opening eBPF object", name, error))?;
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

/// Reads the `u64` at index 0 of an array map (the lost-report counters).
pub(crate) fn read_counter(object: &Object, name: &'static str) -> Result<u64, Error> {
    let counter = map(object, name)?;
    let value = counter
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|error| Error::bpf("reading eBPF map", name, error))?;
    Ok(value
        .and_then(|bytes| bytes.get(..8)?.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0))
}

/// A ring buffer whose records are decoded into a queue the owner drains.
pub(crate) struct Reports<T> {
    ring_buffer: RingBuffer<'static>,
    queue: Arc<Mutex<VecDeque<T>>>,
}

impl<T: Send + 'static> Reports<T> {
    /// Subscribes to ring buffer map `name`; records that `decode` rejects (wrong size) are
    /// counted in `malformed` rather than dropped silently.
    pub(crate) fn new(
        object: &Object,
        name: &'static str,
        decode: fn(&[u8]) -> Option<T>,
    ) -> Result<Reports<T>, Error> {
        let ring_map = map(object, name)?;
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&queue);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&ring_map, move |record: &[u8]| {
                // A record of the wrong size means the object and this loader disagree on
                // the layout; stop consuming and surface it to the poller as an error.
                let Some(decoded) = decode(record) else {
                    return -libc::EBADMSG;
                };
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(decoded);
                0
            })
            .map_err(|error| Error::bpf("subscribing to ring buffer", name, error))?;
        let ring_buffer = builder
            .build()
            .map_err(|error| Error::bpf("subscribing to ring buffer", name, error))?;
        Ok(Reports { ring_buffer, queue })
    }

    /// Waits up to `timeout` for records, then returns every record received so far.
    pub(crate) fn poll(&self, timeout: Duration) -> Result<Vec<T>, Error> {
        self.ring_buffer
            .poll(timeout)
            .map_err(|error| Error::bpf("polling ring buffer", "reports", error))?;
        Ok(self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect())
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
