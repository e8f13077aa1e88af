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
//! The CPUs come from the caller ([`crate::cpu::online_cpus`]).
//!
//! # References
//! perf_event_open(2); libbpf `src/libbpf.c` (`perf_buffer__new`,
//! `perf_event_read_simple`); `kernel/events/ring_buffer.c`.

use core::mem::{offset_of, size_of};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::error::{Result, SysError};
use crate::raw::{self, PerfEventFd, PerfIoctl, Syscall};

mod buffer;
mod probe;

pub use buffer::{PerfBuffer, PerfData, PerfRecord};
pub use probe::{ProbeAttr, ProbeKind, ProbePmu, parse_config_bit, perf_event_open_probe};

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

pub(crate) fn fail(cmd: &'static str) -> impl Fn(Errno) -> SysError {
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
    ///
    /// # References
    /// perf_event_open(2) (`PERF_EVENT_IOC_ENABLE`).
    #[doc(alias = "PERF_EVENT_IOC_ENABLE")]
    pub fn enable(&self) -> Result<()> {
        self.ioctl(PerfIoctl::Enable, "PERF_EVENT_IOC_ENABLE")
    }

    /// `PERF_EVENT_IOC_DISABLE`—Stops counting / sampling.
    ///
    /// # Errors
    /// The kernel's errno.
    ///
    /// # References
    /// perf_event_open(2) (`PERF_EVENT_IOC_DISABLE`).
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
    ///
    /// # References
    /// perf_event_open(2) (`PERF_EVENT_IOC_SET_BPF`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsRawFd;

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
    fn open_and_ioctls_go_through_the_funnel() {
        use crate::raw::fake::{Call, Fake, Reply};
        let f = Fake::install();
        let leader = perf_event_open(&PerfEventAttr::cpu_clock(1000), Some(0), None, None).unwrap();
        let ev =
            perf_event_open(&PerfEventAttr::bpf_output(), None, Some(3), Some(&leader)).unwrap();
        assert!(ev.as_fd().as_raw_fd() > 2);
        let calls = f.calls();
        let Call::PerfEventOpen {
            attr,
            pid,
            cpu,
            group,
        } = &calls[1]
        else {
            panic!("{calls:?}");
        };
        assert_eq!((*pid, *cpu), (-1, 3));
        assert_eq!(*group, Some(leader.as_fd().as_raw_fd()));
        assert_eq!(attr[..], PerfEventAttr::bpf_output().to_bytes()[..]);
        assert!(matches!(
            calls[0],
            Call::PerfEventOpen {
                pid: 0,
                cpu: -1,
                group: None,
                ..
            }
        ));

        let prog = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        ev.enable().unwrap();
        ev.disable().unwrap();
        ev.set_bpf(prog.as_fd()).unwrap();
        f.push([Reply::Err(Errno::EXIST)]);
        let e = ev.set_bpf(prog.as_fd()).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("PERF_EVENT_IOC_SET_BPF", Errno::EXIST));
        let calls = f.calls();
        assert_eq!(calls[2], Call::PerfIoctl("ENABLE", None));
        assert_eq!(calls[3], Call::PerfIoctl("DISABLE", None));
        assert_eq!(
            calls[4],
            Call::PerfIoctl("SET_BPF", Some(prog.as_fd().as_raw_fd()))
        );
        // A CPU number that is no i32 never reaches the kernel.
        let e = perf_event_open(&PerfEventAttr::bpf_output(), None, Some(u32::MAX), None);
        assert_eq!(e.unwrap_err().errno, Errno::INVAL);
        assert_eq!(f.calls().len(), 6);
    }
}
