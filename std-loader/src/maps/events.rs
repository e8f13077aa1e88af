//! Maps that carry events to user space: ring buffers, perf event arrays
//! and stack traces.

use core::ops::{Deref, DerefMut};

use ember_core::object::MapType;
use ember_sys::{AsFd, BorrowedFd, PerfBuffer, RingBuf};

use super::{Map, MapError};

/// A consumer of a `BPF_MAP_TYPE_RINGBUF` map: ember-sys's [`RingBuf`],
/// made from a [`Map`]. It owns its mappings and a dup of the map fd, so
/// it outlives the `Map` and can move to another thread.
#[derive(Debug)]
pub struct RingBuffer(RingBuf);

impl RingBuffer {
    /// Maps the ring buffer `map`.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) when it
    /// is not a ring buffer; the kernel's error mapping it.
    pub fn new(map: &Map) -> Result<Self, MapError> {
        map.expect(&[MapType::RINGBUF], 0, 0)?;
        RingBuf::new(map.fd(), map.max_entries)
            .map(RingBuffer)
            .map_err(|e| map.sys("map ring", e))
    }

    /// The ember-sys consumer, e.g. to add to a [`ember_sys::RingBufPoller`].
    pub fn into_inner(self) -> RingBuf {
        self.0
    }
}

impl Deref for RingBuffer {
    type Target = RingBuf;
    fn deref(&self) -> &RingBuf {
        &self.0
    }
}

impl DerefMut for RingBuffer {
    fn deref_mut(&mut self) -> &mut RingBuf {
        &mut self.0
    }
}

impl AsFd for RingBuffer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A reader of a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` map: ember-sys's
/// [`PerfBuffer`] with one ring on every online CPU. Dropping it takes its
/// events out of the map.
#[derive(Debug)]
pub struct PerfEventArray(PerfBuffer);

impl PerfEventArray {
    /// Opens a `bpf_output` event with `page_count` data pages (a power of
    /// two) on each online CPU and stores it in `map` at that CPU.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) when it
    /// is not a perf event array; the first failing call's error.
    pub fn open(map: &Map, page_count: usize) -> Result<Self, MapError> {
        map.expect(&[MapType::PERF_EVENT_ARRAY], 4, 4)?;
        let cpus = ember_sys::cpu::online_cpus().map_err(|e| map.sys("open", e))?;
        PerfBuffer::new(map.map_fd(), &cpus, page_count)
            .map(PerfEventArray)
            .map_err(|e| map.sys("open", e))
    }
}

impl Deref for PerfEventArray {
    type Target = PerfBuffer;
    fn deref(&self) -> &PerfBuffer {
        &self.0
    }
}

impl DerefMut for PerfEventArray {
    fn deref_mut(&mut self) -> &mut PerfBuffer {
        &mut self.0
    }
}

/// A `BPF_MAP_TYPE_STACK_TRACE` map: stack ids (from `bpf_get_stackid`)
/// to instruction pointers, innermost first.
#[derive(Debug)]
pub struct StackTraceMap<'m> {
    map: &'m Map,
}

/// `BPF_F_STACK_BUILD_ID`: entries are build-id records, not addresses.
const STACK_BUILD_ID: u32 = 1 << 5;

impl<'m> StackTraceMap<'m> {
    /// A view over `map`, which must be a stack trace map of addresses
    /// (not of build ids).
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming
    /// what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        let value = map.value_size as usize;
        map.expect(&[MapType::STACK_TRACE], 4, value.max(8))?;
        if map.flags & STACK_BUILD_ID != 0 || !value.is_multiple_of(8) {
            return Err(map.error(
                "view",
                super::MapErrorKind::Mismatch(
                    "holds build-id records, not 8-byte addresses".into(),
                ),
            ));
        }
        Ok(StackTraceMap { map })
    }

    /// The addresses of stack `id`, innermost first, up to the first zero
    /// (the kernel zero-fills the rest of the entry).
    ///
    /// # Errors
    /// The kernel's error other than "no such stack".
    pub fn get(&self, id: u32) -> Result<Option<Vec<u64>>, MapError> {
        Ok(self.map.lookup(&id.to_ne_bytes())?.map(|v| {
            v.chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
                .take_while(|&ip| ip != 0)
                .collect()
        }))
    }

    /// Frees stack `id`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, id: u32) -> Result<bool, MapError> {
        self.map.delete(&id.to_ne_bytes())
    }

    /// Every stored stack id.
    pub fn ids(&self) -> impl Iterator<Item = Result<u32, MapError>> + '_ {
        self.map.keys().map(|k| k.map(|k| super::pod(&k)))
    }
}
