//! `perf_event_open(2)`, its ioctls, and a `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
//! reader (libbpf's `perf_buffer`).
//!
//! [`PerfEventAttr`] builds `struct perf_event_attr` (layout checked at
//! compile time against `uapi/linux/perf_event.h`, `PERF_ATTR_SIZE_VER7`);
//! [`perf_event_open`] returns a [`PerfEvent`], the only kind of fd the
//! `PERF_EVENT_IOC_*` ioctls are issued on.
//!
//! [`PerfBuffer`] opens one `PERF_COUNT_SW_BPF_OUTPUT` event per CPU,
//! maps `1 + 2^n` pages of each, stores each fd in the map at its CPU
//! index (what `bpf_perf_event_output` with `BPF_F_CURRENT_CPU` looks up),
//! and reads `PERF_RECORD_SAMPLE` (raw data) and `PERF_RECORD_LOST`
//! records, copying a record that wraps around the end of the ring.
//!
//! The CPUs come from the caller; [`online_cpus`] reads
//! `/sys/devices/system/cpu/online` and [`parse_cpu_list`] parses that
//! format (`0-3,5`).
//!
//! # References
//! perf_event_open(2); libbpf `src/libbpf.c` (`perf_buffer__new`,
//! `perf_event_read_simple`); `kernel/events/ring_buffer.c`.

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};
use core::time::Duration;

use rustix::event::epoll;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::cmd::MapFd;
use crate::error::{Result, SysError};
use crate::mmap::{Access, Mmap, page_size};
use crate::raw::{self, PerfEventFd, PerfIoctl, Syscall};
use crate::ringbuf::Events;

/// `PERF_TYPE_HARDWARE`.
pub const PERF_TYPE_HARDWARE: u32 = 0;
/// `PERF_TYPE_SOFTWARE`.
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_TYPE_TRACEPOINT`.
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_COUNT_SW_CPU_CLOCK`.
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `PERF_COUNT_SW_TASK_CLOCK`.
pub const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
/// `PERF_COUNT_SW_BPF_OUTPUT`.
pub const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
/// `PERF_SAMPLE_RAW`.
pub const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `PERF_RECORD_LOST`.
pub const PERF_RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`.
pub const PERF_RECORD_SAMPLE: u32 = 9;

/// `struct perf_event_attr` as of `PERF_ATTR_SIZE_VER7` (128 bytes), C
/// field names; unions named by their first member, the bitfield word as
/// `flags`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PerfEventAttrLayout {
    /// `type`.
    pub type_: u32,
    /// `size`.
    pub size: u32,
    /// `config`.
    pub config: u64,
    /// `sample_period` / `sample_freq`.
    pub sample_period: u64,
    /// `sample_type`.
    pub sample_type: u64,
    /// `read_format`.
    pub read_format: u64,
    /// `disabled`, `inherit`, ... (bit 0 first).
    pub flags: u64,
    /// `wakeup_events` / `wakeup_watermark`.
    pub wakeup_events: u32,
    /// `bp_type`.
    pub bp_type: u32,
    /// `config1` / `bp_addr` / `kprobe_func` / `uprobe_path`.
    pub config1: u64,
    /// `config2` / `bp_len` / `kprobe_addr` / `probe_offset`.
    pub config2: u64,
    /// `branch_sample_type`.
    pub branch_sample_type: u64,
    /// `sample_regs_user`.
    pub sample_regs_user: u64,
    /// `sample_stack_user`.
    pub sample_stack_user: u32,
    /// `clockid`.
    pub clockid: i32,
    /// `sample_regs_intr`.
    pub sample_regs_intr: u64,
    /// `aux_watermark`.
    pub aux_watermark: u32,
    /// `sample_max_stack`.
    pub sample_max_stack: u16,
    /// `__reserved_2`.
    pub reserved_2: u16,
    /// `aux_sample_size`.
    pub aux_sample_size: u32,
    /// `__reserved_3`.
    pub reserved_3: u32,
    /// `sig_data`.
    pub sig_data: u64,
}
const _: () = assert!(size_of::<PerfEventAttrLayout>() == 128);
const _: () = assert!(offset_of!(PerfEventAttrLayout, config) == 8);
const _: () = assert!(offset_of!(PerfEventAttrLayout, flags) == 40);
const _: () = assert!(offset_of!(PerfEventAttrLayout, wakeup_events) == 48);
const _: () = assert!(offset_of!(PerfEventAttrLayout, config1) == 56);
const _: () = assert!(offset_of!(PerfEventAttrLayout, branch_sample_type) == 72);
const _: () = assert!(offset_of!(PerfEventAttrLayout, sample_regs_user) == 80); // VER3 = 96 ends at clockid
const _: () = assert!(offset_of!(PerfEventAttrLayout, sample_regs_intr) == 96); // VER4 = 104
const _: () = assert!(offset_of!(PerfEventAttrLayout, aux_sample_size) == 112); // VER6 = 120
const _: () = assert!(offset_of!(PerfEventAttrLayout, sig_data) == 120); // VER7 = 128

/// Bits of `perf_event_attr.flags`.
mod bit {
    pub(super) const DISABLED: u64 = 1 << 0;
    pub(super) const INHERIT: u64 = 1 << 1;
    pub(super) const EXCLUDE_USER: u64 = 1 << 4;
    pub(super) const EXCLUDE_KERNEL: u64 = 1 << 5;
    pub(super) const EXCLUDE_HV: u64 = 1 << 6;
    pub(super) const FREQ: u64 = 1 << 10;
    pub(super) const WATERMARK: u64 = 1 << 14;
}

/// A typed builder for `struct perf_event_attr`.
///
/// Pointer-carrying fields (`config1`/`config2` as `kprobe_func`,
/// `uprobe_path`) are not settable, so an attr built here never makes the
/// kernel read user memory.
#[derive(Debug, Default, Clone, Copy)]
pub struct PerfEventAttr {
    raw: PerfEventAttrLayout,
}

impl PerfEventAttr {
    /// An event of `type_` (`PERF_TYPE_*`, or a dynamic PMU type from
    /// sysfs) with `config`.
    pub fn new(type_: u32, config: u64) -> PerfEventAttr {
        PerfEventAttr {
            raw: PerfEventAttrLayout {
                type_,
                config,
                ..PerfEventAttrLayout::default()
            },
        }
    }

    /// A software event (`PERF_TYPE_SOFTWARE`, `PERF_COUNT_SW_*`).
    pub fn software(config: u64) -> PerfEventAttr {
        PerfEventAttr::new(PERF_TYPE_SOFTWARE, config)
    }

    /// What BPF perf buffers use (libbpf's `perf_buffer__new`):
    /// `PERF_COUNT_SW_BPF_OUTPUT`, `PERF_SAMPLE_RAW`, sample period 1,
    /// wake up on every event.
    pub fn bpf_output() -> PerfEventAttr {
        PerfEventAttr::software(PERF_COUNT_SW_BPF_OUTPUT)
            .sample_type(PERF_SAMPLE_RAW)
            .sample_period(1)
            .wakeup_events(1)
    }

    /// `PERF_COUNT_SW_CPU_CLOCK`, sampling every `period_ns` nanoseconds
    /// (what `perf_event` BPF programs attach to for profiling).
    pub fn cpu_clock(period_ns: u64) -> PerfEventAttr {
        PerfEventAttr::software(PERF_COUNT_SW_CPU_CLOCK).sample_period(period_ns)
    }

    /// The tracepoint with this id (from tracefs
    /// `events/<category>/<name>/id`), sampling every hit, as libbpf
    /// attaches tracepoint programs.
    pub fn tracepoint(id: u64) -> PerfEventAttr {
        PerfEventAttr::new(PERF_TYPE_TRACEPOINT, id)
            .sample_period(1)
            .wakeup_events(1)
    }

    fn flag(mut self, bit: u64, on: bool) -> PerfEventAttr {
        if on {
            self.raw.flags |= bit;
        } else {
            self.raw.flags &= !bit;
        }
        self
    }

    /// Sample every `n` events (clears `freq`).
    pub fn sample_period(mut self, n: u64) -> PerfEventAttr {
        self.raw.sample_period = n;
        self.flag(bit::FREQ, false)
    }

    /// Sample `hz` times a second (sets `freq`).
    pub fn sample_freq(mut self, hz: u64) -> PerfEventAttr {
        self.raw.sample_period = hz;
        self.flag(bit::FREQ, true)
    }

    /// `sample_type` (`PERF_SAMPLE_*` bits).
    pub fn sample_type(mut self, bits: u64) -> PerfEventAttr {
        self.raw.sample_type = bits;
        self
    }

    /// Wake pollers every `n` samples (clears `watermark`).
    pub fn wakeup_events(mut self, n: u32) -> PerfEventAttr {
        self.raw.wakeup_events = n;
        self.flag(bit::WATERMARK, false)
    }

    /// Wake pollers once `bytes` are waiting (sets `watermark`).
    pub fn wakeup_watermark(mut self, bytes: u32) -> PerfEventAttr {
        self.raw.wakeup_events = bytes;
        self.flag(bit::WATERMARK, true)
    }

    /// Start disabled (enable with [`PerfEvent::enable`]).
    pub fn disabled(self, on: bool) -> PerfEventAttr {
        self.flag(bit::DISABLED, on)
    }

    /// Children inherit the event.
    pub fn inherit(self, on: bool) -> PerfEventAttr {
        self.flag(bit::INHERIT, on)
    }

    /// Do not count user space.
    pub fn exclude_user(self, on: bool) -> PerfEventAttr {
        self.flag(bit::EXCLUDE_USER, on)
    }

    /// Do not count the kernel.
    pub fn exclude_kernel(self, on: bool) -> PerfEventAttr {
        self.flag(bit::EXCLUDE_KERNEL, on)
    }

    /// Do not count the hypervisor.
    pub fn exclude_hv(self, on: bool) -> PerfEventAttr {
        self.flag(bit::EXCLUDE_HV, on)
    }

    /// The fields as built (`size` is filled in when opening).
    pub fn layout(&self) -> &PerfEventAttrLayout {
        &self.raw
    }

    /// The attr's bytes, field by field (padding-free layout, so no
    /// transmute is needed).
    pub fn to_bytes(&self) -> [u8; size_of::<PerfEventAttrLayout>()] {
        type L = PerfEventAttrLayout;
        let r = &self.raw;
        let mut b = [0u8; size_of::<L>()];
        put(&mut b, offset_of!(L, type_), &r.type_.to_ne_bytes());
        put(
            &mut b,
            offset_of!(L, size),
            &(size_of::<L>() as u32).to_ne_bytes(),
        );
        put(&mut b, offset_of!(L, config), &r.config.to_ne_bytes());
        put(
            &mut b,
            offset_of!(L, sample_period),
            &r.sample_period.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, sample_type),
            &r.sample_type.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, read_format),
            &r.read_format.to_ne_bytes(),
        );
        put(&mut b, offset_of!(L, flags), &r.flags.to_ne_bytes());
        put(
            &mut b,
            offset_of!(L, wakeup_events),
            &r.wakeup_events.to_ne_bytes(),
        );
        put(&mut b, offset_of!(L, bp_type), &r.bp_type.to_ne_bytes());
        put(&mut b, offset_of!(L, config1), &r.config1.to_ne_bytes());
        put(&mut b, offset_of!(L, config2), &r.config2.to_ne_bytes());
        put(
            &mut b,
            offset_of!(L, branch_sample_type),
            &r.branch_sample_type.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, sample_regs_user),
            &r.sample_regs_user.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, sample_stack_user),
            &r.sample_stack_user.to_ne_bytes(),
        );
        put(&mut b, offset_of!(L, clockid), &r.clockid.to_ne_bytes());
        put(
            &mut b,
            offset_of!(L, sample_regs_intr),
            &r.sample_regs_intr.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, aux_watermark),
            &r.aux_watermark.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, sample_max_stack),
            &r.sample_max_stack.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(L, aux_sample_size),
            &r.aux_sample_size.to_ne_bytes(),
        );
        put(&mut b, offset_of!(L, sig_data), &r.sig_data.to_ne_bytes());
        b
    }
}

fn put(buf: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = buf.get_mut(off..off.saturating_add(v.len())) {
        d.copy_from_slice(v);
    }
}

fn fail(cmd: &'static str) -> impl Fn(Errno) -> SysError {
    move |errno| SysError { cmd, errno }
}

/// An open perf event.
#[derive(Debug)]
pub struct PerfEvent {
    fd: PerfEventFd,
}

/// `perf_event_open(attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC)`—Opens a
/// perf event. `pid`: `None` for every process (then `cpu` is required),
/// `Some(0)` for the calling thread; `cpu`: `None` for any CPU. The fd is
/// close-on-exec and above 2.
///
/// # Errors
/// The kernel's errno (`E2BIG` for an attr it does not know, `ENOENT` for
/// an unknown event, `EACCES` without the privileges).
///
/// # References
/// perf_event_open(2).
pub fn perf_event_open(
    attr: &PerfEventAttr,
    pid: Option<i32>,
    cpu: Option<u32>,
    group: Option<&PerfEvent>,
) -> Result<PerfEvent> {
    const N: &str = "perf_event_open";
    let cpu = match cpu {
        Some(c) => i32::try_from(c).map_err(|_| fail(N)(Errno::INVAL))?,
        None => -1,
    };
    let mut bytes = attr.to_bytes();
    raw::perf_event_open(&mut bytes, pid.unwrap_or(-1), cpu, group.map(|g| &g.fd))
        .map(|fd| PerfEvent { fd })
        .map_err(fail(N))
}

impl PerfEvent {
    fn ioctl(&self, op: PerfIoctl<'_>, name: &'static str) -> Result<()> {
        raw::syscall(Syscall::PerfIoctl { fd: &self.fd, op })
            .map(drop)
            .map_err(fail(name))
    }

    /// `PERF_EVENT_IOC_ENABLE`—Starts counting / sampling.
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "PERF_EVENT_IOC_ENABLE")]
    pub fn enable(&self) -> Result<()> {
        self.ioctl(PerfIoctl::Enable, "PERF_EVENT_IOC_ENABLE")
    }

    /// `PERF_EVENT_IOC_DISABLE`—Stops counting / sampling.
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "PERF_EVENT_IOC_DISABLE")]
    pub fn disable(&self) -> Result<()> {
        self.ioctl(PerfIoctl::Disable, "PERF_EVENT_IOC_DISABLE")
    }

    /// `PERF_EVENT_IOC_SET_BPF`—Attaches a BPF program (tracepoint, kprobe,
    /// perf_event) to this event.
    ///
    /// # Errors
    /// `EINVAL` for a program type that does not fit the event, `EEXIST`
    /// when one is attached already, or another errno.
    #[doc(alias = "PERF_EVENT_IOC_SET_BPF")]
    pub fn set_bpf(&self, prog: BorrowedFd<'_>) -> Result<()> {
        self.ioctl(PerfIoctl::SetBpf(prog), "PERF_EVENT_IOC_SET_BPF")
    }
}

impl AsFd for PerfEvent {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }
}

impl From<PerfEvent> for OwnedFd {
    fn from(e: PerfEvent) -> OwnedFd {
        e.fd.into_owned()
    }
}

/// Largest CPU number [`parse_cpu_list`] accepts (bounds the allocation).
pub const MAX_CPU: u32 = 1 << 16;

/// Parses a kernel CPU list such as `0-3,5` (trailing newline allowed)
/// into CPU numbers, in the order written.
///
/// # Errors
/// `EINVAL` (`cmd` = `"cpu list"`) for malformed text, a reversed range or
/// a CPU above [`MAX_CPU`].
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>> {
    let bad = SysError {
        cmd: "cpu list",
        errno: Errno::INVAL,
    };
    let num = |t: &str| {
        t.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_CPU)
            .ok_or(bad)
    };
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad);
        }
        if out.len() > usize::try_from(MAX_CPU).unwrap_or(usize::MAX) {
            return Err(bad);
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// The online CPUs, from `/sys/devices/system/cpu/online`.
///
/// # Errors
/// The errno from opening or reading the file, or a malformed list.
pub fn online_cpus() -> Result<Vec<u32>> {
    const N: &str = "/sys/devices/system/cpu/online";
    use rustix::fs::{Mode, OFlags};
    let fd =
        rustix::fs::open(N, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(fail(N))?;
    let mut buf = [0u8; 4096];
    let mut len = 0usize;
    loop {
        let rest = buf.get_mut(len..).unwrap_or_default();
        if rest.is_empty() {
            return Err(fail(N)(Errno::TOOBIG));
        }
        match rustix::io::read(&fd, rest) {
            Ok(0) => break,
            Ok(n) => len = len.saturating_add(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(fail(N)(e)),
        }
    }
    let text = buf
        .get(..len)
        .and_then(|b| core::str::from_utf8(b).ok())
        .ok_or(fail(N)(Errno::INVAL))?;
    parse_cpu_list(text)
}

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
        let r = self.records(head, &mut tail, &mut n, scratch, f);
        self.map.store_u64(DATA_TAIL, tail).map_err(|_| corrupt())?;
        r.map(|()| n)
    }

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
            self.copy(pos, &mut hdr)?;
            let [t0, t1, t2, t3, _, _, s0, s1] = hdr;
            let kind = u32::from_ne_bytes([t0, t1, t2, t3]);
            let len = u16::from_ne_bytes([s0, s1]);
            if len < 8 || u64::from(len) > head.wrapping_sub(pos) {
                return Err(corrupt());
            }
            scratch.clear();
            scratch.resize(usize::from(len), 0);
            self.copy(pos, scratch)?;
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
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(fail("epoll_create1"))?;
        let mut pb = PerfBuffer {
            map: MapFd::new(dup, 4, 4)?,
            epoll,
            rings: Vec::new(),
            events: Events::default(),
            scratch: Vec::new(),
        };
        for &cpu in cpus {
            let ev = perf_event_open(&PerfEventAttr::bpf_output(), None, Some(cpu), None)?;
            let mmap = Mmap::map(ev.as_fd(), 0, len, Access::ReadWrite)?;
            ev.enable()?;
            let token = u64::try_from(pb.rings.len()).map_err(|_| fail(N)(Errno::NOSPC))?;
            epoll::add(
                &pb.epoll,
                ev.as_fd(),
                epoll::EventData::new_u64(token),
                epoll::EventFlags::IN,
            )
            .map_err(fail("epoll_ctl"))?;
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
    /// a malformed ring.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(PerfRecord<'_>),
    ) -> Result<usize> {
        if self.rings.is_empty() {
            return Ok(0);
        }
        let mut n = 0usize;
        for token in self.events.wait(&self.epoll, timeout)? {
            let idx = usize::try_from(token).unwrap_or(usize::MAX);
            if let Some(ring) = self.rings.get(idx) {
                n = n.saturating_add(ring.read(&mut self.scratch, &mut f)?);
            }
        }
        Ok(n)
    }

    /// Reads every ring without waiting; returns how many records.
    ///
    /// # Errors
    /// `EBADMSG` for a malformed ring.
    pub fn consume(&mut self, mut f: impl FnMut(PerfRecord<'_>)) -> Result<usize> {
        let mut n = 0usize;
        for ring in &self.rings {
            n = n.saturating_add(ring.read(&mut self.scratch, &mut f)?);
        }
        Ok(n)
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

    #[test]
    fn attr_bytes() {
        let a = PerfEventAttr::bpf_output().disabled(true);
        let b = a.to_bytes();
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(u32_at(0), PERF_TYPE_SOFTWARE);
        assert_eq!(u32_at(4), 128);
        assert_eq!(u64_at(8), PERF_COUNT_SW_BPF_OUTPUT);
        assert_eq!(u64_at(16), 1);
        assert_eq!(u64_at(24), PERF_SAMPLE_RAW);
        assert_eq!(u64_at(40), 1); // disabled
        assert_eq!(u32_at(48), 1);
        let f = PerfEventAttr::cpu_clock(0)
            .sample_freq(99)
            .wakeup_watermark(4096);
        assert_eq!(f.layout().flags, (1 << 10) | (1 << 14));
        assert_eq!(f.sample_period(5).layout().flags, 1 << 14);
        let t = PerfEventAttr::tracepoint(321);
        assert_eq!((t.layout().type_, t.layout().config), (2, 321));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5\n").unwrap(), [0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("0").unwrap(), [0]);
        assert_eq!(parse_cpu_list("").unwrap(), [] as [u32; 0]);
        assert_eq!(parse_cpu_list("2,0-1").unwrap(), [2, 0, 1]);
        for bad in ["3-1", "a", "1,", "-", "0-99999999", "1--2"] {
            assert_eq!(
                parse_cpu_list(bad).unwrap_err().errno,
                Errno::INVAL,
                "{bad}"
            );
        }
        assert!(!online_cpus().unwrap().is_empty());
    }

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
}
