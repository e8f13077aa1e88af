//! The `BPF_MAP_TYPE_PERF_EVENT_ARRAY` reader: one mapped perf ring per
//! CPU behind one epoll instance (libbpf's `perf_buffer`).

use alloc::vec::Vec;
use core::time::Duration;

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;

use super::{PerfEvent, PerfEventAttr, fail, perf_event_open};
use crate::cmd::MapFd;
use crate::epoll::{self, Events};
use crate::error::{Result, SysError, read_every};
use crate::mmap::{Access, Mmap, page_size};

use super::{PERF_RECORD_LOST, PERF_RECORD_SAMPLE};

/// One record from a perf buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PerfRecord<'a> {
    /// `PERF_RECORD_SAMPLE` with `PERF_SAMPLE_RAW`: what the program passed
    /// to `bpf_perf_event_output`, followed by the kernel's zero padding
    /// (the raw size is rounded so that `4 + size` is a multiple of 8).
    Sample {
        /// The CPU whose ring it came from.
        cpu: u32,
        /// The raw data.
        data: &'a [u8],
    },
    /// `PERF_RECORD_LOST`: samples dropped because the ring was full.
    Lost {
        /// The CPU whose ring overflowed.
        cpu: u32,
        /// How many were lost.
        count: u64,
    },
}

/// `offsetof(struct perf_event_mmap_page, data_head)`.
const DATA_HEAD: usize = 1024;
/// `offsetof(struct perf_event_mmap_page, data_tail)`.
const DATA_TAIL: usize = 1032;
/// `offsetof(struct perf_event_mmap_page, data_offset)`.
const DATA_OFFSET: usize = 1040;
/// `offsetof(struct perf_event_mmap_page, data_size)`.
const DATA_SIZE: usize = 1048;

/// The command name in errors about a ring's contents.
const RECORD: &str = "perf buffer record";

fn corrupt() -> SysError {
    SysError {
        cmd: RECORD,
        errno: Errno::BADMSG,
    }
}

/// One CPU's mapped perf ring.
#[derive(Debug)]
struct Ring {
    cpu: u32,
    /// `None` only in unit tests over synthetic memory.
    event: Option<PerfEvent>,
    map: Mmap,
    data_off: usize,
    data_size: usize,
}

impl Ring {
    fn new(cpu: u32, event: Option<PerfEvent>, map: Mmap) -> Result<Ring> {
        let page = page_size();
        let len = map.len();
        // data_offset/data_size exist since Linux 4.1; before, data starts
        // after the first page and fills the rest.
        let off = map.load_u64(DATA_OFFSET).map_err(|_| corrupt())?;
        let size = map.load_u64(DATA_SIZE).map_err(|_| corrupt())?;
        let (data_off, data_size) = if size == 0 {
            (page, len.saturating_sub(page))
        } else {
            (
                usize::try_from(off).map_err(|_| corrupt())?,
                usize::try_from(size).map_err(|_| corrupt())?,
            )
        };
        let fits = data_off
            .checked_add(data_size)
            .is_some_and(|end| end <= len);
        if !data_size.is_power_of_two() || !fits {
            return Err(corrupt());
        }
        Ok(Ring {
            cpu,
            event,
            map,
            data_off,
            data_size,
        })
    }

    /// Copies `out.len()` bytes at ring position `pos`, wrapping.
    fn copy(&self, pos: u64, out: &mut [u8]) -> Result<()> {
        let mask = self.data_size.wrapping_sub(1);
        // Truncating to usize keeps the low bits, which is all the mask
        // looks at.
        let start = (pos as usize) & mask;
        let first = out.len().min(self.data_size.wrapping_sub(start));
        let (a, b) = out.split_at_mut(first);
        self.map
            .read(self.data_off.wrapping_add(start), a)
            .map_err(|_| corrupt())?;
        self.map.read(self.data_off, b).map_err(|_| corrupt())
    }

    /// Reads every record between `data_tail` and `data_head`, then
    /// publishes the new tail (also when a malformed record stops it, so
    /// records already delivered are not delivered again).
    fn read(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(PerfRecord<'_>)) -> Result<usize> {
        let head = self.map.load_u64(DATA_HEAD).map_err(|_| corrupt())?;
        let mut tail = self.map.load_u64(DATA_TAIL).map_err(|_| corrupt())?;
        let size = u64::try_from(self.data_size).map_err(|_| corrupt())?;
        if head.wrapping_sub(tail) > size {
            return Err(corrupt());
        }
        let mut n = 0usize;
        let walk = Walk {
            cpu: self.cpu,
            copy: &|pos, out| self.copy(pos, out),
        };
        let r = walk.records(head, &mut tail, &mut n, scratch, f);
        self.map.store_u64(DATA_TAIL, tail).map_err(|_| corrupt())?;
        r.map(|()| n)
    }
}

/// The record walk between a tail and a head, over any way of copying
/// ring bytes: the mapped ring's, or [`PerfData`]'s.
struct Walk<'c> {
    cpu: u32,
    copy: &'c dyn Fn(u64, &mut [u8]) -> Result<()>,
}

impl Walk<'_> {
    fn records(
        &self,
        head: u64,
        tail: &mut u64,
        n: &mut usize,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(PerfRecord<'_>),
    ) -> Result<()> {
        while *tail != head {
            let pos = *tail;
            let mut hdr = [0u8; 8];
            (self.copy)(pos, &mut hdr)?;
            let [t0, t1, t2, t3, _, _, s0, s1] = hdr;
            let kind = u32::from_ne_bytes([t0, t1, t2, t3]);
            let len = u16::from_ne_bytes([s0, s1]);
            if len < 8 || u64::from(len) > head.wrapping_sub(pos) {
                return Err(corrupt());
            }
            scratch.clear();
            scratch.resize(usize::from(len), 0);
            (self.copy)(pos, scratch)?;
            let body = scratch.get(8..).unwrap_or_default();
            match kind {
                PERF_RECORD_SAMPLE => {
                    let (sz, rest) = body.split_first_chunk::<4>().ok_or_else(corrupt)?;
                    let sz = usize::try_from(u32::from_ne_bytes(*sz)).map_err(|_| corrupt())?;
                    let data = rest.get(..sz).ok_or_else(corrupt)?;
                    f(PerfRecord::Sample {
                        cpu: self.cpu,
                        data,
                    });
                    *n = n.saturating_add(1);
                }
                PERF_RECORD_LOST => {
                    // struct { u64 id; u64 lost; }
                    let lost = body.get(8..16).ok_or_else(corrupt)?;
                    let mut c = [0u8; 8];
                    c.copy_from_slice(lost);
                    f(PerfRecord::Lost {
                        cpu: self.cpu,
                        count: u64::from_ne_bytes(c),
                    });
                    *n = n.saturating_add(1);
                }
                _ => {}
            }
            *tail = pos.wrapping_add(u64::from(len));
        }
        Ok(())
    }
}

/// A perf ring's data area held in memory (a copy of one, or bytes a test
/// or fuzzer made), read with the same record walk as the mapped rings of
/// [`PerfBuffer`].
#[derive(Debug, Clone, Copy)]
pub struct PerfData<'a> {
    data: &'a [u8],
}

impl<'a> PerfData<'a> {
    /// The data area `data`, whose length must be a power of two (as the
    /// kernel's `data_size`).
    ///
    /// # Errors
    /// `EBADMSG` for any other length, as for a mapped ring.
    pub fn new(data: &'a [u8]) -> Result<PerfData<'a>> {
        if !data.len().is_power_of_two() {
            return Err(corrupt());
        }
        Ok(PerfData { data })
    }

    /// Calls `f` with every record between `*tail` and `head`, as CPU
    /// `cpu`'s, and returns how many samples and lost-counts there were.
    /// `*tail` ends past the last record read, also when a malformed one
    /// stops the walk, as the mapped ring publishes it.
    ///
    /// # Errors
    /// `EBADMSG` (`cmd` = `"perf buffer record"`) for a head more than a
    /// ring ahead of the tail, or a record too short, longer than what the
    /// head says is there, or whose inner size runs past it.
    pub fn read(
        &self,
        cpu: u32,
        head: u64,
        tail: &mut u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(PerfRecord<'_>),
    ) -> Result<usize> {
        let size = u64::try_from(self.data.len()).map_err(|_| corrupt())?;
        if head.wrapping_sub(*tail) > size {
            return Err(corrupt());
        }
        let mask = self.data.len().wrapping_sub(1);
        let copy = |pos: u64, out: &mut [u8]| {
            for (i, o) in out.iter_mut().enumerate() {
                // Truncating keeps the low bits, all the mask looks at.
                let at = (pos as usize).wrapping_add(i) & mask;
                *o = self.data.get(at).copied().unwrap_or(0);
            }
            Ok(())
        };
        let mut n = 0usize;
        Walk { cpu, copy: &copy }.records(head, tail, &mut n, scratch, f)?;
        Ok(n)
    }
}

/// A reader of a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` map: one
/// `PERF_COUNT_SW_BPF_OUTPUT` ring per CPU, behind one epoll instance.
///
/// Dropping it removes its fds from the map (as libbpf does), closes them
/// and unmaps the rings.
#[derive(Debug)]
pub struct PerfBuffer {
    /// A dup of the map fd (key and value 4 bytes).
    map: MapFd,
    epoll: OwnedFd,
    rings: Vec<Ring>,
    events: Events,
    scratch: Vec<u8>,
}

impl PerfBuffer {
    /// Opens a `PERF_COUNT_SW_BPF_OUTPUT` event on each CPU in `cpus`,
    /// maps `1 + page_count` pages of it (`page_count` a power of two),
    /// enables it and stores its fd in `map` at key = CPU.
    ///
    /// # Errors
    /// `EINVAL` for a `page_count` that is not a power of two, or the
    /// first failing call's errno (`perf_event_open`, `mmap`,
    /// `PERF_EVENT_IOC_ENABLE`, `BPF_MAP_UPDATE_ELEM` — `E2BIG` for a CPU
    /// beyond the map's `max_entries`); what was set up is undone.
    ///
    /// # References
    /// perf_event_open(2); libbpf `perf_buffer__new`.
    pub fn new(map: &MapFd, cpus: &[u32], page_count: usize) -> Result<PerfBuffer> {
        const N: &str = "perf buffer";
        if !page_count.is_power_of_two() {
            return Err(fail(N)(Errno::INVAL));
        }
        let len = page_count
            .checked_add(1)
            .and_then(|p| p.checked_mul(page_size()))
            .ok_or(fail(N)(Errno::INVAL))?;
        let dup = rustix::io::fcntl_dupfd_cloexec(map.fd(), 3).map_err(fail("fcntl"))?;
        let epoll = epoll::create()?;
        let mut pb = PerfBuffer {
            map: MapFd::new(dup, 4, 4)?,
            epoll,
            rings: Vec::new(),
            events: Events::default(),
            scratch: Vec::new(),
        };
        for &cpu in cpus {
            let ev = perf_event_open(&PerfEventAttr::bpf_output(), None, Some(cpu), None)?;
            let mmap = Mmap::map_fd(ev.as_fd(), 0, len, Access::ReadWrite)?;
            ev.enable()?;
            epoll::add(&pb.epoll, ev.as_fd(), pb.rings.len())?;
            let fd = u32::try_from(ev.as_fd().as_raw_fd()).map_err(|_| fail(N)(Errno::BADF))?;
            // Pushed before the update so that Drop deletes the entry even
            // if a later CPU fails.
            pb.rings.push(Ring::new(cpu, Some(ev), mmap)?);
            pb.events.grow();
            pb.map.update(&cpu.to_ne_bytes(), &fd.to_ne_bytes(), 0)?;
        }
        Ok(pb)
    }

    /// The CPUs, in ring order.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.rings.iter().map(|r| r.cpu)
    }

    /// The event of the ring for `cpu`.
    pub fn event(&self, cpu: u32) -> Option<&PerfEvent> {
        self.rings
            .iter()
            .find(|r| r.cpu == cpu)
            .and_then(|r| r.event.as_ref())
    }

    /// Waits up to `timeout` (`None`: for ever) for a ring to have records,
    /// then reads the ready rings, calling `f` for each sample and lost
    /// record. Returns how many records were read: 0 when the timeout
    /// passed.
    ///
    /// # Errors
    /// The errno from `epoll_wait` (`EINTR` on a signal), or `EBADMSG` for
    /// a malformed ring: the first, after every other ready ring was read.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(PerfRecord<'_>),
    ) -> Result<usize> {
        if self.rings.is_empty() {
            return Ok(0);
        }
        let ready = self.events.wait(&self.epoll, timeout)?;
        let (rings, scratch) = (&self.rings, &mut self.scratch);
        read_every(ready, |idx| match rings.get(idx) {
            Some(ring) => ring.read(scratch, &mut f),
            None => Ok(0),
        })
    }

    /// Reads every ring without waiting; returns how many records.
    ///
    /// # Errors
    /// `EBADMSG` for a malformed ring: the first, after every other ring
    /// was read.
    pub fn consume(&mut self, mut f: impl FnMut(PerfRecord<'_>)) -> Result<usize> {
        let scratch = &mut self.scratch;
        read_every(&self.rings, |ring| ring.read(scratch, &mut f))
    }
}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        for r in &self.rings {
            if r.event.is_some() {
                // Best effort, as libbpf: the entry may be gone already.
                let _ = self.map.delete(&r.cpu.to_ne_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, vec};

    /// A synthetic ring: header page, then `pages` data pages.
    fn ring(pages: usize) -> Ring {
        let page = page_size();
        let map = Mmap::anonymous(page * (1 + pages));
        map.store_u64(DATA_OFFSET, page as u64).unwrap();
        map.store_u64(DATA_SIZE, (page * pages) as u64).unwrap();
        Ring::new(7, None, map).unwrap()
    }

    /// Writes a record at ring position `pos` (wrapping), returns the next.
    fn put(r: &Ring, pos: u64, kind: u32, body: &[u8]) -> u64 {
        let len = 8 + body.len();
        let mut rec = vec![];
        rec.extend_from_slice(&kind.to_ne_bytes());
        rec.extend_from_slice(&0u16.to_ne_bytes());
        rec.extend_from_slice(&(len as u16).to_ne_bytes());
        rec.extend_from_slice(body);
        for (i, b) in rec.iter().enumerate() {
            let at = (pos as usize + i) & (r.data_size - 1);
            r.map.write(r.data_off + at, &[*b]).unwrap();
        }
        pos + len as u64
    }

    fn sample(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    fn lost(id: u64, n: u64) -> Vec<u8> {
        let mut v = id.to_ne_bytes().to_vec();
        v.extend_from_slice(&n.to_ne_bytes());
        v
    }

    #[derive(Debug, PartialEq)]
    enum Got {
        S(u32, Vec<u8>),
        L(u32, u64),
    }

    fn collect(r: &Ring) -> Result<Vec<Got>> {
        let mut got = vec![];
        let mut scratch = vec![];
        r.read(&mut scratch, &mut |rec| match rec {
            PerfRecord::Sample { cpu, data } => got.push(Got::S(cpu, data.to_vec())),
            PerfRecord::Lost { cpu, count } => got.push(Got::L(cpu, count)),
        })?;
        Ok(got)
    }

    #[test]
    fn samples_lost_and_wraparound() {
        let r = ring(1);
        let size = r.data_size as u64;
        // Start 16 bytes before the end: the first sample (24 bytes) wraps
        // in the middle of its data.
        let start = size - 16;
        r.map.store_u64(DATA_TAIL, start).unwrap();
        let mut p = put(&r, start, PERF_RECORD_SAMPLE, &sample(b"wrapped!xyz\0"));
        p = put(&r, p, PERF_RECORD_LOST, &lost(1, 42));
        p = put(&r, p, 3 /* PERF_RECORD_COMM: skipped */, &[0; 8]);
        p = put(&r, p, PERF_RECORD_SAMPLE, &sample(b"1234"));
        r.map.store_u64(DATA_HEAD, p).unwrap();
        assert_eq!(
            collect(&r).unwrap(),
            [
                Got::S(7, b"wrapped!xyz\0".to_vec()),
                Got::L(7, 42),
                Got::S(7, b"1234".to_vec()),
            ]
        );
        assert_eq!(r.map.load_u64(DATA_TAIL), Ok(p));
        assert_eq!(collect(&r).unwrap(), []);
        // Second lap: the header wraps (kernel records never do, but the
        // reader copes).
        let mid = size * 2 - 4;
        r.map.store_u64(DATA_TAIL, mid).unwrap();
        let e = put(&r, mid, PERF_RECORD_SAMPLE, &sample(b"abcdefghijkl"));
        r.map.store_u64(DATA_HEAD, e).unwrap();
        assert_eq!(collect(&r).unwrap(), [Got::S(7, b"abcdefghijkl".to_vec())]);
    }

    /// The in-memory walk over a copy of `r`'s data area: records, and
    /// the tail it ends at.
    fn collect_copy(r: &Ring, cpu: u32) -> (Result<Vec<Got>>, u64) {
        let mut data = vec![0u8; r.data_size];
        r.map.read(r.data_off, &mut data).unwrap();
        let head = r.map.load_u64(DATA_HEAD).unwrap();
        let mut tail = r.map.load_u64(DATA_TAIL).unwrap();
        let mut got = vec![];
        let res =
            PerfData::new(&data)
                .unwrap()
                .read(cpu, head, &mut tail, &mut vec![], &mut |rec| match rec {
                    PerfRecord::Sample { cpu, data } => got.push(Got::S(cpu, data.to_vec())),
                    PerfRecord::Lost { cpu, count } => got.push(Got::L(cpu, count)),
                });
        (res.map(|_| got), tail)
    }

    #[test]
    fn the_in_memory_walk_matches_the_mapped_one() {
        let r = ring(1);
        let size = r.data_size as u64;
        let start = size - 16;
        r.map.store_u64(DATA_TAIL, start).unwrap();
        let mut p = put(&r, start, PERF_RECORD_SAMPLE, &sample(b"wrapped!xyz\0"));
        p = put(&r, p, PERF_RECORD_LOST, &lost(1, 42));
        p = put(&r, p, 3, &[0; 8]);
        let good_end = put(&r, p, PERF_RECORD_SAMPLE, &sample(b"1234"));
        // Then one too short to hold a lost count.
        let end = put(&r, good_end, PERF_RECORD_LOST, &[0; 4]);
        r.map.store_u64(DATA_HEAD, end).unwrap();
        let (copy, tail) = collect_copy(&r, 7);
        assert_eq!(copy.unwrap_err().errno, Errno::BADMSG);
        assert_eq!(tail, good_end);
        let mut mapped = vec![];
        let e = r.read(&mut vec![], &mut |rec| mapped.push(format!("{rec:?}")));
        assert_eq!(e.unwrap_err().errno, Errno::BADMSG);
        assert_eq!(r.map.load_u64(DATA_TAIL), Ok(good_end));
        // Without the bad record both walks give the same three.
        r.map.store_u64(DATA_TAIL, start).unwrap();
        r.map.store_u64(DATA_HEAD, good_end).unwrap();
        let (copy, tail) = collect_copy(&r, 7);
        assert_eq!(copy.unwrap(), collect(&r).unwrap());
        assert_eq!(tail, good_end);
        assert_eq!(mapped.len(), 3);
        // A length that is not a power of two is refused.
        assert_eq!(PerfData::new(&[0; 24]).unwrap_err().errno, Errno::BADMSG);
    }

    #[test]
    fn a_bad_record_keeps_the_good_ones_consumed() {
        let r = ring(1);
        let mut p = put(&r, 0, PERF_RECORD_SAMPLE, &sample(b"good"));
        let bad_at = p;
        p = put(&r, p, PERF_RECORD_LOST, &[0; 4]); // too short for a count
        r.map.store_u64(DATA_HEAD, p).unwrap();
        let mut got = vec![];
        let e = r.read(&mut vec![], &mut |rec| got.push(format!("{rec:?}")));
        assert_eq!(e.unwrap_err().errno, Errno::BADMSG);
        assert_eq!(got.len(), 1);
        assert_eq!(r.map.load_u64(DATA_TAIL), Ok(bad_at));
    }

    #[test]
    fn corrupt_rings_are_errors() {
        let r = ring(1);
        // A zero-length header would loop for ever.
        r.map.store_u64(DATA_HEAD, 8).unwrap();
        assert_eq!(collect(&r).unwrap_err().errno, Errno::BADMSG);
        // A record longer than what the head says is there.
        put(&r, 0, PERF_RECORD_SAMPLE, &sample(&[1; 20]));
        assert_eq!(collect(&r).unwrap_err().errno, Errno::BADMSG);
        // A raw size past the record.
        let mut s = sample(&[1; 4]);
        s[0] = 200;
        let e = put(&r, 0, PERF_RECORD_SAMPLE, &s);
        r.map.store_u64(DATA_HEAD, e).unwrap();
        assert_eq!(collect(&r).unwrap_err().errno, Errno::BADMSG);
        // A head more than a ring ahead of the tail.
        r.map.store_u64(DATA_HEAD, r.data_size as u64 + 8).unwrap();
        assert_eq!(collect(&r).unwrap_err().errno, Errno::BADMSG);
        // The tail never moved.
        assert_eq!(r.map.load_u64(DATA_TAIL), Ok(0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmaps an eventfd")]
    fn new_goes_through_the_funnel_and_undoes_on_failure() {
        use crate::attr::{BpfMapInfo, InfoAttr};
        use crate::raw::fake::{self, Call, Fake, Reply};
        use core::mem::offset_of;
        let info = || {
            Reply::attr(|a| {
                let i = fake::nested(a, offset_of!(InfoAttr, info));
                i.put_u32(offset_of!(BpfMapInfo, type_), 4);
                i.put_u32(offset_of!(BpfMapInfo, key_size), 4);
                i.put_u32(offset_of!(BpfMapInfo, value_size), 4);
                Ok(0)
            })
        };
        let f = Fake::install();
        f.push([info(), info()]);
        let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let map = MapFd::from_fd(fd).unwrap();
        assert_eq!(
            PerfBuffer::new(&map, &[2], 3).unwrap_err().errno,
            Errno::INVAL
        );
        assert_eq!(f.calls().len(), 1, "a bad page count makes no call");
        // The fake's perf event is an eventfd, which cannot be mapped: the
        // setup stops there, before any map update.
        let e = PerfBuffer::new(&map, &[2], 1).unwrap_err();
        assert_eq!(e.cmd, "mmap");
        let calls = f.calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(matches!(
            calls[2],
            Call::PerfEventOpen {
                pid: -1,
                cpu: 2,
                group: None,
                ..
            }
        ));
    }
}
