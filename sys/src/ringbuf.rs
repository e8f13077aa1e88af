//! A `BPF_MAP_TYPE_RINGBUF` consumer, like libbpf's `ring_buffer`.
//!
//! The map is shared as three areas: the consumer page (mapped read-write;
//! we publish `consumer_pos` there), the producer page (read-only;
//! `producer_pos`), and the data area, which the kernel maps twice in a row
//! so that a record never wraps. Each record starts on an 8-byte boundary
//! with an 8-byte header whose first `u32` is the length plus two flags:
//! `BUSY` (still being written: stop here) and `DISCARD` (skip it).
//!
//! [`RingBuf::next`] copies the next committed record into a buffer owned
//! by the [`RingBuf`] and then advances `consumer_pos` with a release
//! store, so the producer may reuse that space at once; records are
//! therefore never lent out of shared memory. [`RingBufPoller`] waits on
//! several rings with one epoll instance.
//!
//! # References
//! `Documentation/bpf/ringbuf.rst`; libbpf `src/ringbuf.c`;
//! `kernel/bpf/ringbuf.c`.

use alloc::vec::Vec;
use core::time::Duration;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::epoll::{self, Events};
use crate::error::{Result, SysError, read_every};
use crate::mmap::{Access, Mmap, page_size};

/// `BPF_RINGBUF_BUSY_BIT`.
pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`.
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`.
pub const BPF_RINGBUF_HDR_SZ: usize = 8;

/// The command name in errors about the ring's contents.
const RECORD: &str = "BPF_MAP_TYPE_RINGBUF record";

fn err(cmd: &'static str) -> impl Fn(Errno) -> SysError {
    move |errno| SysError { cmd, errno }
}

fn corrupt() -> SysError {
    SysError {
        cmd: RECORD,
        errno: Errno::BADMSG,
    }
}

/// One consumer of one `BPF_MAP_TYPE_RINGBUF` map.
#[derive(Debug)]
pub struct RingBuf {
    /// A dup of the map fd, for epoll; the mappings keep the map alive
    /// anyway.
    fd: OwnedFd,
    /// Consumer page, read-write.
    consumer: Mmap,
    /// Producer page followed by the data area twice, read-only.
    producer: Mmap,
    /// Offset of the data area in `producer` (one page).
    data_off: usize,
    /// Data size (`max_entries`), a power of two.
    size: usize,
    /// The last record read.
    scratch: Vec<u8>,
}

impl RingBuf {
    /// Maps the ring buffer map `map_fd`, created with `max_entries` (its
    /// data size in bytes: a power of two and a multiple of the page size).
    ///
    /// # Errors
    /// `EINVAL` for a `max_entries` the kernel could not have accepted, or
    /// when the kernel says `map_fd` is not a ring buffer of exactly
    /// `max_entries` bytes (a wrong size would mask positions wrongly, and
    /// an mmapable array maps as well); the kernel's errno from
    /// `BPF_OBJ_GET_INFO_BY_FD`, `fcntl` or `mmap`.
    pub fn new(map_fd: BorrowedFd<'_>, max_entries: u32) -> Result<RingBuf> {
        const N: &str = "BPF_MAP_TYPE_RINGBUF mmap";
        /// `BPF_MAP_TYPE_RINGBUF`.
        const RINGBUF: u32 = 27;
        let page = page_size();
        let size = usize::try_from(max_entries).map_err(|_| err(N)(Errno::INVAL))?;
        if !size.is_power_of_two() || !size.is_multiple_of(page) {
            return Err(err(N)(Errno::INVAL));
        }
        let info = crate::cmd::info::map_info(map_fd)?;
        if info.map_type != RINGBUF || info.max_entries != max_entries {
            return Err(err(N)(Errno::INVAL));
        }
        let fd = rustix::io::fcntl_dupfd_cloexec(map_fd, 3).map_err(err("fcntl"))?;
        let consumer = Mmap::map(fd.as_fd(), 0, page, Access::ReadWrite)?;
        let len = size
            .checked_mul(2)
            .and_then(|d| d.checked_add(page))
            .ok_or(err(N)(Errno::INVAL))?;
        let page64 = u64::try_from(page).map_err(|_| err(N)(Errno::INVAL))?;
        let producer = Mmap::map(fd.as_fd(), page64, len, Access::ReadOnly)?;
        Ok(RingBuf {
            fd,
            consumer,
            producer,
            data_off: page,
            size,
            scratch: Vec::new(),
        })
    }

    /// The data size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The (duplicated) map fd, for callers with their own event loop: it
    /// polls readable when records are waiting.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes between the consumer and producer positions (committed,
    /// busy and discarded records alike).
    pub fn pending(&self) -> usize {
        let cons = self.consumer.load_usize(0).unwrap_or(0);
        let prod = self.producer.load_usize(0).unwrap_or(0);
        prod.wrapping_sub(cons)
    }

    /// The next committed record, copied out of the ring; `None` when the
    /// ring is empty or the next record is still being written. Discarded
    /// records are skipped. The consumer position is advanced (with
    /// release ordering) before this returns, as libbpf does after each
    /// callback.
    ///
    /// # Errors
    /// `EBADMSG` (`cmd` = `"BPF_MAP_TYPE_RINGBUF record"`) for a record
    /// whose length does not fit the ring or runs past the producer
    /// position; the ring is left where it was, so every later call fails
    /// the same way.
    #[expect(
        clippy::should_implement_trait,
        reason = "fallible and lending: not an Iterator"
    )]
    pub fn next(&mut self) -> Result<Option<&[u8]>> {
        loop {
            let cons = self.consumer.load_usize(0).ok_or_else(corrupt)?;
            let prod = self.producer.load_usize(0).ok_or_else(corrupt)?;
            let at = self.data_off.wrapping_add(cons & self.size.wrapping_sub(1));
            let producer = &self.producer;
            let hdr = || producer.load_u32(at).map_err(|_| corrupt());
            match step(cons, prod, self.size, hdr)? {
                Step::Stop => return Ok(None),
                Step::Discard { next } => {
                    self.consumer.store_usize(0, next).ok_or_else(corrupt)?;
                }
                Step::Record { len, next } => {
                    self.scratch.clear();
                    self.scratch.resize(len, 0);
                    self.producer
                        .read(at.wrapping_add(BPF_RINGBUF_HDR_SZ), &mut self.scratch)
                        .map_err(|_| corrupt())?;
                    self.consumer.store_usize(0, next).ok_or_else(corrupt)?;
                    return Ok(Some(&self.scratch));
                }
            }
        }
    }

    /// Hands every committed record to `f`, in order, and returns how many
    /// there were (discarded ones not counted). Never blocks.
    ///
    /// # Errors
    /// As [`RingBuf::next`]; records before the bad one were consumed.
    pub fn consume(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize> {
        let mut n = 0usize;
        while let Some(r) = self.next()? {
            f(r);
            n = n.saturating_add(1);
        }
        Ok(n)
    }
}

/// What the consumer finds at its position.
enum Step {
    /// Nothing to read: the ring is empty or the record is busy.
    Stop,
    /// A discarded record; the consumer moves to `next`.
    Discard { next: usize },
    /// A committed record of `len` bytes; the consumer moves to `next`.
    Record { len: usize, next: usize },
}

/// One step of the record walk, shared by the mapped ring and
/// [`RingData`]: `hdr` reads the header at the consumer position (only
/// when the ring is not empty).
fn step(cons: usize, prod: usize, size: usize, hdr: impl FnOnce() -> Result<u32>) -> Result<Step> {
    let avail = prod.wrapping_sub(cons);
    if avail == 0 {
        return Ok(Step::Stop);
    }
    // The kernel writes records at 8-byte steps: a consumer position off
    // that grid is corrupt (the mapped reader's aligned header load would
    // refuse it too; checking here keeps the two walks identical).
    if avail > size || !cons.is_multiple_of(8) {
        return Err(corrupt());
    }
    let hdr = hdr()?;
    if hdr & BPF_RINGBUF_BUSY_BIT != 0 {
        return Ok(Step::Stop);
    }
    let len = usize::try_from(hdr & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT))
        .map_err(|_| corrupt())?;
    let total = len
        .checked_add(BPF_RINGBUF_HDR_SZ)
        .and_then(|t| t.checked_next_multiple_of(8))
        .ok_or_else(corrupt)?;
    if total > size || total > avail {
        return Err(corrupt());
    }
    let next = cons.wrapping_add(total);
    Ok(if hdr & BPF_RINGBUF_DISCARD_BIT != 0 {
        Step::Discard { next }
    } else {
        Step::Record { len, next }
    })
}

/// A ring buffer's data area held in memory (a copy of one, or bytes a
/// test or fuzzer made), read with the same record walk as
/// [`RingBuf::next`]. The kernel maps the area twice in a row so records
/// never wrap; here reads wrap around the end instead.
#[derive(Debug, Clone, Copy)]
pub struct RingData<'a> {
    data: &'a [u8],
}

impl<'a> RingData<'a> {
    /// The data area `data`, whose length (`max_entries`) must be a
    /// power of two.
    ///
    /// # Errors
    /// `EINVAL` for any other length.
    pub fn new(data: &'a [u8]) -> Result<RingData<'a>> {
        if !data.len().is_power_of_two() {
            return Err(err("BPF_MAP_TYPE_RINGBUF data")(Errno::INVAL));
        }
        Ok(RingData { data })
    }

    /// Copies `out.len()` bytes from ring position `pos`, wrapping.
    fn copy(&self, pos: usize, out: &mut [u8]) {
        let mask = self.data.len().wrapping_sub(1);
        for (i, o) in out.iter_mut().enumerate() {
            *o = self
                .data
                .get(pos.wrapping_add(i) & mask)
                .copied()
                .unwrap_or(0);
        }
    }

    /// The next committed record at consumer position `*cons` (the
    /// producer at `prod`), copied into `scratch`; `None` when the ring is
    /// empty or the record is busy. Discarded records are skipped, and
    /// `*cons` is moved past everything read, as [`RingBuf::next`] moves
    /// the shared consumer position.
    ///
    /// # Errors
    /// `EBADMSG` as in [`RingBuf::next`]; `*cons` then stays at the bad
    /// record.
    pub fn next<'s>(
        &self,
        cons: &mut usize,
        prod: usize,
        scratch: &'s mut Vec<u8>,
    ) -> Result<Option<&'s [u8]>> {
        loop {
            let mut h = [0u8; 4];
            let hdr = || {
                self.copy(*cons, &mut h);
                Ok(u32::from_ne_bytes(h))
            };
            match step(*cons, prod, self.data.len(), hdr)? {
                Step::Stop => return Ok(None),
                Step::Discard { next } => *cons = next,
                Step::Record { len, next } => {
                    scratch.clear();
                    scratch.resize(len, 0);
                    self.copy(cons.wrapping_add(BPF_RINGBUF_HDR_SZ), scratch);
                    *cons = next;
                    return Ok(Some(scratch));
                }
            }
        }
    }
}

/// Several ring buffers behind one epoll instance, like libbpf's
/// `ring_buffer` manager.
#[derive(Debug)]
pub struct RingBufPoller {
    epoll: OwnedFd,
    rings: Vec<RingBuf>,
    events: Events,
}

impl RingBufPoller {
    /// An empty poller.
    ///
    /// # Errors
    /// The kernel's errno from `epoll_create1`.
    pub fn new() -> Result<RingBufPoller> {
        let epoll = epoll::create()?;
        Ok(RingBufPoller {
            epoll,
            rings: Vec::new(),
            events: Events::default(),
        })
    }

    /// Adds a ring; its index is the first argument of the callbacks.
    ///
    /// # Errors
    /// The kernel's errno from `epoll_ctl`.
    pub fn add(&mut self, ring: RingBuf) -> Result<usize> {
        let idx = self.rings.len();
        epoll::add(&self.epoll, ring.as_fd(), idx)?;
        self.rings.push(ring);
        self.events.grow();
        Ok(idx)
    }

    /// The ring at `idx`.
    pub fn ring_mut(&mut self, idx: usize) -> Option<&mut RingBuf> {
        self.rings.get_mut(idx)
    }

    /// Waits up to `timeout` (`None`: for ever) until a ring has records,
    /// then consumes the ready rings, calling `f(ring index, record)`.
    /// Returns the number of records consumed: 0 when the timeout passed.
    ///
    /// # Errors
    /// The kernel's errno from `epoll_wait` (`EINTR` when a signal
    /// arrived), or a corrupt record as in [`RingBuf::next`]: the first
    /// one, after every other ready ring was read.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(usize, &[u8]),
    ) -> Result<usize> {
        if self.rings.is_empty() {
            return Ok(0);
        }
        let ready = self.events.wait(&self.epoll, timeout)?;
        let rings = &mut self.rings;
        read_every(ready, |idx| match rings.get_mut(idx) {
            Some(ring) => ring.consume(|r| f(idx, r)),
            None => Ok(0),
        })
    }

    /// Consumes every ring without waiting, calling `f(ring index,
    /// record)`; returns the number of records.
    ///
    /// # Errors
    /// A corrupt record as in [`RingBuf::next`]: the first one, after
    /// every other ring was read.
    pub fn consume(&mut self, mut f: impl FnMut(usize, &[u8])) -> Result<usize> {
        read_every(self.rings.iter_mut().enumerate(), |(idx, ring)| {
            ring.consume(|r| f(idx, r))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A ring laid out by hand in anonymous memory: consumer page, then
    /// producer page and data (mapped once here; records below do not
    /// wrap).
    fn ring(size: usize) -> RingBuf {
        let page = page_size();
        // Any fd will do: this ring is never polled.
        let fd = epoll::create().unwrap();
        RingBuf {
            fd,
            consumer: Mmap::anonymous(page),
            producer: Mmap::anonymous(page + 2 * size),
            data_off: page,
            size,
            scratch: Vec::new(),
        }
    }

    fn put(r: &RingBuf, pos: usize, hdr: u32, data: &[u8]) -> usize {
        let at = r.data_off + pos;
        r.producer.store_u32(at, hdr).unwrap();
        r.producer.write(at + 8, data).unwrap();
        pos + (8 + data.len()).next_multiple_of(8)
    }

    #[test]
    fn records_discard_busy_and_corrupt() {
        let mut r = ring(page_size());
        let mut p = put(&r, 0, 3, b"abc");
        p = put(&r, p, 5 | BPF_RINGBUF_DISCARD_BIT, b"zzzzz");
        p = put(&r, p, 9, b"123456789");
        let busy_at = p;
        p = put(&r, p, 4 | BPF_RINGBUF_BUSY_BIT, b"wxyz");
        r.producer.store_usize(0, p).unwrap();
        let mut got = Vec::new();
        assert_eq!(r.consume(|d| got.push(d.to_vec())).unwrap(), 2);
        assert_eq!(got, [b"abc".to_vec(), b"123456789".to_vec()]);
        // Stopped at the busy record.
        assert_eq!(r.consumer.load_usize(0), Some(busy_at));
        assert_eq!(r.pending(), p - busy_at);
        // Committed now.
        r.producer.store_u32(r.data_off + busy_at, 4).unwrap();
        assert_eq!(r.next().unwrap(), Some(&b"wxyz"[..]));
        assert_eq!(r.next().unwrap(), None);
        // A length larger than the data area is an error, not a panic,
        // and the consumer position stays put.
        let big = u32::try_from(r.size()).unwrap();
        let q = put(&r, p, big, b"");
        r.producer.store_usize(0, q + r.size()).unwrap();
        let e = r.next().unwrap_err();
        assert_eq!((e.cmd, e.errno), (RECORD, Errno::BADMSG));
        assert_eq!(r.consumer.load_usize(0), Some(p));
        // So is a record running past the producer position.
        r.producer.store_u32(r.data_off + p, 64).unwrap();
        r.producer.store_usize(0, p + 16).unwrap();
        assert_eq!(r.next().unwrap_err().errno, Errno::BADMSG);
    }

    #[test]
    fn the_in_memory_walk_matches_the_mapped_one() {
        let size = page_size();
        let mut data = vec![0u8; size];
        // Writes a record at `pos`, wrapping as the double mapping hides.
        let mut put_in = |pos: usize, hdr: u32, body: &[u8]| {
            let rec = [&hdr.to_ne_bytes()[..], &[0; 4], body].concat();
            for (i, b) in rec.iter().enumerate() {
                data[(pos + i) & (size - 1)] = *b;
            }
            pos + (8 + body.len()).next_multiple_of(8)
        };
        // The first record's header sits in the last 8 bytes, its data at
        // the start.
        let start = size - 8;
        let mut p = put_in(start, 3, b"abc");
        p = put_in(p, 2 | BPF_RINGBUF_DISCARD_BIT, b"zz");
        p = put_in(p, 10, b"0123456789");
        let busy = p;
        let prod = put_in(p, 1 | BPF_RINGBUF_BUSY_BIT, b"q");
        let rd = RingData::new(&data).unwrap();
        let (mut cons, mut scratch, mut got) = (start, Vec::new(), Vec::new());
        while let Some(rec) = rd.next(&mut cons, prod, &mut scratch).unwrap() {
            got.push(rec.to_vec());
        }
        assert_eq!(got, [b"abc".to_vec(), b"0123456789".to_vec()]);
        assert_eq!(cons, busy);
        // The mapped reader over the same ring rotated to start at 0 (the
        // test mapping is not doubled) reads the same records.
        let mut m = ring(size);
        m.producer.write(m.data_off, &data[start..]).unwrap();
        m.producer.write(m.data_off + 8, &data[..start]).unwrap();
        m.producer.store_usize(0, prod - start).unwrap();
        let mut mapped = Vec::new();
        m.consume(|d| mapped.push(d.to_vec())).unwrap();
        assert_eq!(mapped, got);
        assert_eq!(m.consumer.load_usize(0), Some(busy - start));
        // A length past the producer is an error, and `cons` stays.
        let mut c = 0;
        let mut bad = vec![0u8; 64];
        bad[..4].copy_from_slice(&40u32.to_ne_bytes());
        let e = RingData::new(&bad)
            .unwrap()
            .next(&mut c, 16, &mut scratch)
            .unwrap_err();
        assert_eq!((e.cmd, e.errno), (RECORD, Errno::BADMSG));
        assert_eq!(c, 0);
        assert_eq!(RingData::new(&[0; 24]).unwrap_err().errno, Errno::INVAL);
    }

    #[test]
    fn a_corrupt_ring_does_not_starve_the_others_of_a_poller() {
        let bad = ring(page_size());
        let q = put(&bad, 0, u32::try_from(bad.size()).unwrap(), b"");
        bad.producer.store_usize(0, q + bad.size()).unwrap();
        let good = ring(page_size());
        let p = put(&good, 0, 2, b"ok");
        good.producer.store_usize(0, p).unwrap();
        let mut poller = RingBufPoller {
            epoll: epoll::create().unwrap(),
            rings: vec![bad, good],
            events: Events::default(),
        };
        let mut got = Vec::new();
        let e = poller
            .consume(|i, d| got.push((i, d.to_vec())))
            .unwrap_err();
        assert_eq!((e.cmd, e.errno), (RECORD, Errno::BADMSG));
        assert_eq!(
            got,
            [(1, b"ok".to_vec())],
            "the good ring after the bad one was read"
        );
    }

    #[test]
    fn a_consumer_position_off_the_8_byte_grid_is_corrupt() {
        let data = vec![0u8; 64];
        let mut scratch = Vec::new();
        let mut c = 4;
        let e = RingData::new(&data)
            .unwrap()
            .next(&mut c, 20, &mut scratch)
            .unwrap_err();
        assert_eq!((e.cmd, e.errno), (RECORD, Errno::BADMSG));
        assert_eq!(c, 4);
    }
}
