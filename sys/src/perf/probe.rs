//! kprobe / uprobe PMU events: `perf_event_open` with `config1` pointing
//! at a function name or a binary path (libbpf's `perf_event_open_probe`).
//!
//! The kernel registers dynamic PMUs `kprobe` and `uprobe` (4.17+) under
//! `/sys/bus/event_source/devices/`; [`ProbePmu::read`] finds their type
//! number and the `config` bits of the `format/` files (`retprobe`,
//! `ref_ctr_offset`). A [`ProbeAttr`] borrows the name for as long as it
//! lives, so the pointer the kernel follows is always live: it is written
//! into the attr by the syscall funnel right before the call.
//!
//! | field     | kprobe                 | uprobe                          |
//! |-----------|------------------------|---------------------------------|
//! | `config`  | retprobe bit           | retprobe bit, ref_ctr_offset<<32 |
//! | `config1` | `kprobe_func` (name)   | `uprobe_path` (binary)          |
//! | `config2` | offset, or address     | file offset                     |
//!
//! # References
//! perf_event_open(2); `kernel/trace/trace_event_perf.c`
//! (`perf_kprobe_init`, `perf_uprobe_init`); libbpf `src/libbpf.c`
//! (`perf_event_open_probe`, `determine_uprobe_retprobe_bit`).

use core::ffi::CStr;

use rustix::io::Errno;

use super::{PerfEvent, PerfEventAttr, fail};
use crate::error::{Result, SysError};
use crate::raw;

/// Which probe PMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `/sys/bus/event_source/devices/kprobe`.
    Kprobe,
    /// `/sys/bus/event_source/devices/uprobe`.
    Uprobe,
}

impl ProbeKind {
    fn paths(self) -> [&'static str; 3] {
        match self {
            ProbeKind::Kprobe => [
                "/sys/bus/event_source/devices/kprobe/type",
                "/sys/bus/event_source/devices/kprobe/format/retprobe",
                "/sys/bus/event_source/devices/kprobe/format/ref_ctr_offset",
            ],
            ProbeKind::Uprobe => [
                "/sys/bus/event_source/devices/uprobe/type",
                "/sys/bus/event_source/devices/uprobe/format/retprobe",
                "/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset",
            ],
        }
    }
}

/// A probe PMU as sysfs describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePmu {
    /// Which one.
    pub kind: ProbeKind,
    /// `perf_event_attr.type` for its events.
    pub pmu_type: u32,
    /// The `config` bit that makes a return probe (`format/retprobe`,
    /// `config:0`), if the PMU has one.
    pub retprobe_bit: Option<u32>,
    /// The first `config` bit of the USDT semaphore offset
    /// (`format/ref_ctr_offset`, `config:32-63`), if the PMU has one.
    pub ref_ctr_shift: Option<u32>,
}

impl ProbePmu {
    /// Reads the PMU's type and format bits from sysfs.
    ///
    /// # Errors
    /// `ENOENT` when the kernel has no such PMU (`cmd` is the path),
    /// `EINVAL` for a malformed file.
    ///
    /// # References
    /// `Documentation/ABI/testing/sysfs-bus-event_source-devices-format`.
    pub fn read(kind: ProbeKind) -> Result<ProbePmu> {
        let [ty, ret, refc] = kind.paths();
        let mut buf = [0u8; 4096];
        let pmu_type = crate::cpu::read_small(ty, &mut buf)?
            .trim()
            .parse::<u32>()
            .map_err(|_| fail(ty)(Errno::INVAL))?;
        let bit = |path: &'static str| -> Result<Option<u32>> {
            let mut buf = [0u8; 4096];
            match crate::cpu::read_small(path, &mut buf) {
                Ok(s) => parse_config_bit(s)
                    .map(Some)
                    .ok_or(fail(path)(Errno::INVAL)),
                Err(SysError {
                    errno: Errno::NOENT,
                    ..
                }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        Ok(ProbePmu {
            kind,
            pmu_type,
            retprobe_bit: bit(ret)?,
            ref_ctr_shift: bit(refc)?,
        })
    }
}

/// The first bit of a sysfs PMU format line `config:N` or `config:N-M`
/// (other fields, `config1:`, ..., are not `config`).
pub fn parse_config_bit(s: &str) -> Option<u32> {
    let bits = s.trim().strip_prefix("config:")?;
    let first = bits.split_once('-').map_or(bits, |(a, _)| a);
    first.parse::<u32>().ok().filter(|b| *b < 64)
}

/// A probe event to open: the attr fields of a kprobe or uprobe PMU
/// event, borrowing the name `config1` points to.
#[derive(Debug, Clone, Copy)]
pub struct ProbeAttr<'a> {
    pmu_type: u32,
    config: u64,
    name: Option<&'a CStr>,
    offset: u64,
    /// A field that could not be encoded (reported when opening).
    bad: bool,
}

impl<'a> ProbeAttr<'a> {
    /// A uprobe on `path` (the binary or library) at file offset
    /// `offset` (`config1` = `uprobe_path`, `config2` = `probe_offset`).
    pub fn uprobe(pmu: &ProbePmu, path: &'a CStr, offset: u64) -> ProbeAttr<'a> {
        ProbeAttr {
            pmu_type: pmu.pmu_type,
            config: 0,
            name: Some(path),
            offset,
            bad: pmu.kind != ProbeKind::Uprobe,
        }
    }

    /// A kprobe on kernel function `func` plus `offset` bytes
    /// (`config1` = `kprobe_func`, `config2` = `probe_offset`).
    pub fn kprobe(pmu: &ProbePmu, func: &'a CStr, offset: u64) -> ProbeAttr<'a> {
        ProbeAttr {
            pmu_type: pmu.pmu_type,
            config: 0,
            name: Some(func),
            offset,
            bad: pmu.kind != ProbeKind::Kprobe,
        }
    }

    /// A kprobe at kernel address `addr` (`config1` = 0, `config2` =
    /// `kprobe_addr`).
    pub fn kprobe_addr(pmu: &ProbePmu, addr: u64) -> ProbeAttr<'a> {
        ProbeAttr {
            pmu_type: pmu.pmu_type,
            config: 0,
            name: None,
            offset: addr,
            bad: pmu.kind != ProbeKind::Kprobe,
        }
    }

    /// A return probe (sets the PMU's `retprobe` bit; an error at open
    /// when the PMU has none).
    pub fn retprobe(mut self, pmu: &ProbePmu, on: bool) -> ProbeAttr<'a> {
        match (on, pmu.retprobe_bit) {
            (false, _) => {}
            (true, Some(b)) => self.config |= 1u64 << b,
            (true, None) => self.bad = true,
        }
        self
    }

    /// The USDT semaphore (reference counter) at file offset `off` of the
    /// same binary, which the kernel increments while the probe exists
    /// (uprobes only; must fit the PMU's `ref_ctr_offset` field).
    pub fn ref_ctr_offset(mut self, pmu: &ProbePmu, off: u64) -> ProbeAttr<'a> {
        if off == 0 {
            return self;
        }
        match pmu.ref_ctr_shift {
            Some(s) if pmu.kind == ProbeKind::Uprobe && s < 64 && off >> (64 - s) == 0 => {
                self.config |= off << s;
            }
            _ => self.bad = true,
        }
        self
    }

    /// The attr bytes without `config1` (the funnel writes it).
    fn to_bytes(self) -> [u8; 128] {
        let mut a = PerfEventAttr::new(self.pmu_type, self.config).to_bytes();
        if let Some(d) = a.get_mut(64..72) {
            d.copy_from_slice(&self.offset.to_ne_bytes());
        }
        a
    }
}

/// `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)` of a
/// kprobe/uprobe PMU event—Creates the probe; it is removed when the
/// event's last fd closes. `pid`: `None` for every process (uprobes
/// only filter by it; kprobes take `None`); `cpu`: `None` for any, which
/// with `pid` `None` opens on CPU 0 as libbpf does (the kernel wants a CPU
/// for a process-wide event; a program attached to it runs on every CPU
/// that hits the probe).
///
/// # Errors
/// `EINVAL` (nothing reaches the kernel) for a retprobe or semaphore the
/// PMU cannot encode, or a probe built for the other PMU; otherwise the
/// kernel's errno: `ENOENT` for an unknown function or a missing file,
/// `EINVAL` for an offset it refuses.
///
/// # References
/// perf_event_open(2); `kernel/trace/trace_event_perf.c`.
#[doc(alias = "perf_event_open")]
pub fn perf_event_open_probe(
    attr: &ProbeAttr<'_>,
    pid: Option<i32>,
    cpu: Option<u32>,
) -> Result<PerfEvent> {
    const N: &str = "perf_event_open";
    if attr.bad {
        return Err(fail(N)(Errno::INVAL));
    }
    let cpu = match (pid, cpu) {
        (_, Some(c)) => i32::try_from(c).map_err(|_| fail(N)(Errno::INVAL))?,
        (None, None) => 0,
        (Some(_), None) => -1,
    };
    let mut bytes = attr.to_bytes();
    raw::perf_event_open_probe(&mut bytes, attr.name, pid.unwrap_or(-1), cpu)
        .map(|fd| PerfEvent { fd })
        .map_err(fail(N))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::fake::{Call, Fake, Reply};

    fn pmu(kind: ProbeKind) -> ProbePmu {
        ProbePmu {
            kind,
            pmu_type: 8,
            retprobe_bit: Some(0),
            ref_ctr_shift: Some(32),
        }
    }

    #[test]
    fn format_lines() {
        assert_eq!(parse_config_bit("config:0\n"), Some(0));
        assert_eq!(parse_config_bit("config:32-63\n"), Some(32));
        assert_eq!(parse_config_bit("config1:0-63"), None);
        assert_eq!(parse_config_bit("config:64"), None);
        assert_eq!(parse_config_bit("config:x"), None);
        assert_eq!(parse_config_bit(""), None);
    }

    #[test]
    fn uprobe_attr_reaches_the_kernel_with_the_path() {
        let f = Fake::install();
        let up = pmu(ProbeKind::Uprobe);
        let path = c"/usr/bin/true";
        let a = ProbeAttr::uprobe(&up, path, 0x1234)
            .retprobe(&up, true)
            .ref_ctr_offset(&up, 0x99);
        let ev = perf_event_open_probe(&a, None, None).unwrap();
        drop(ev);
        let c = f.only();
        let Call::PerfEventOpen { pid, cpu, .. } = &c else {
            panic!("{c:?}")
        };
        assert_eq!((*pid, *cpu), (-1, 0));
        assert_eq!(c.u32(0), 8);
        assert_eq!(c.u32(4), 128);
        assert_eq!(c.u64(8), 1 | (0x99 << 32));
        assert_eq!(c.u64(56), path.as_ptr().addr() as u64);
        assert_eq!(c.u64(64), 0x1234);
    }

    #[test]
    fn kprobe_by_address_has_no_name_and_a_pid_has_any_cpu() {
        let f = Fake::install();
        let kp = pmu(ProbeKind::Kprobe);
        perf_event_open_probe(&ProbeAttr::kprobe_addr(&kp, 0xffff_8000), Some(7), None).unwrap();
        let c = f.only();
        assert!(matches!(
            c,
            Call::PerfEventOpen {
                pid: 7,
                cpu: -1,
                ..
            }
        ));
        assert_eq!((c.u64(8), c.u64(56), c.u64(64)), (0, 0, 0xffff_8000));
    }

    #[test]
    fn unencodable_probes_never_reach_the_kernel() {
        let f = Fake::install();
        let up = pmu(ProbeKind::Uprobe);
        let kp = pmu(ProbeKind::Kprobe);
        let none = ProbePmu {
            retprobe_bit: None,
            ref_ctr_shift: None,
            ..up
        };
        let p = c"/bin/sh";
        for a in [
            ProbeAttr::uprobe(&none, p, 0).retprobe(&none, true),
            ProbeAttr::uprobe(&none, p, 0).ref_ctr_offset(&none, 8),
            ProbeAttr::uprobe(&up, p, 0).ref_ctr_offset(&up, 1 << 40),
            ProbeAttr::kprobe(&kp, c"f", 0).ref_ctr_offset(&kp, 8),
            ProbeAttr::kprobe(&up, c"f", 0),
            ProbeAttr::uprobe(&kp, p, 0),
        ] {
            let e = perf_event_open_probe(&a, None, None).unwrap_err();
            assert_eq!(e.errno, Errno::INVAL);
        }
        assert!(f.calls().is_empty());
        f.push([Reply::Err(Errno::NOENT)]);
        let e = perf_event_open_probe(&ProbeAttr::kprobe(&kp, c"nope", 0), None, None);
        assert_eq!(e.unwrap_err().errno, Errno::NOENT);
    }
}
