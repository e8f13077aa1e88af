//! Kprobes and kretprobes: a perf event of the kprobe PMU (4.17), or a
//! tracefs `kprobe_events` probe where the PMU is missing, with
//! [`AttachMode::Legacy`], for a kretprobe's `maxactive`, or when the PMU
//! refuses a `module:function` name; then held by a perf-event link or
//! carrying the program by ioctl.
//!
//! A function name is checked against `/proc/kallsyms` first: a name with
//! several definitions (static functions of several files or modules) is
//! [`K::Ambiguous`] with the `module:address` candidates,
//! which the kernel would refuse or resolve to the first; attach by
//! address ([`KprobeTarget::address`]) to pick one.

use core::fmt;
use std::ffi::CString;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{
    Errno, PerfEvent, PerfEventAttr, ProbeAttr, ProbeKind, ProbePmu, perf_event_open,
    perf_event_open_probe,
};

use super::tracefs::{self, ProbeFile, TracefsProbe};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link};
use crate::Program;
use crate::kallsyms;

/// Where a kprobe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KprobeLocation {
    /// A kernel function, plus `offset` bytes.
    Function {
        /// The module that defines it (`None`: any, vmlinux first).
        module: Option<String>,
        /// The function.
        name: String,
        /// Bytes past its start (0 for kretprobes).
        offset: u64,
    },
    /// A kernel address (from `/proc/kallsyms`).
    Address(u64),
}

/// What [`Program::attach_kprobe`] attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KprobeTarget {
    /// The place.
    pub location: KprobeLocation,
    /// A kretprobe (fires when the function returns).
    pub retprobe: bool,
    /// How many instances of the function a kretprobe can follow at once
    /// (`r<N>:` in tracefs; the PMU cannot say it, so this makes the
    /// probe a tracefs one). `None`: the kernel's default.
    pub maxactive: Option<u32>,
}

impl KprobeTarget {
    /// Kernel function `name` (`module:name` names one of a module).
    pub fn function(name: impl Into<String>) -> KprobeTarget {
        let name = name.into();
        let (module, name) = match name.split_once(':') {
            Some((m, n)) => (Some(m.to_owned()), n.to_owned()),
            None => (None, name),
        };
        KprobeTarget {
            location: KprobeLocation::Function {
                module,
                name,
                offset: 0,
            },
            retprobe: false,
            maxactive: None,
        }
    }

    /// Kernel address `addr`.
    pub fn address(addr: u64) -> KprobeTarget {
        KprobeTarget {
            location: KprobeLocation::Address(addr),
            retprobe: false,
            maxactive: None,
        }
    }

    /// Parses libbpf's section form: `function`, `function+offset`,
    /// `module:function[+offset]`, or an address `0xffff...` (offsets
    /// decimal or `0x` hex).
    ///
    /// # Errors
    /// What is malformed.
    pub fn parse(spec: &str) -> Result<KprobeTarget, String> {
        let bad = |why: &str| format!("'{spec}': {why}");
        if let Some(h) = spec.strip_prefix("0x") {
            let a = u64::from_str_radix(h, 16).map_err(|_| bad("not a hex address"))?;
            return Ok(KprobeTarget::address(a));
        }
        let (module, rest) = match spec.split_once(':') {
            Some((m, r)) => {
                if !valid_module(m) {
                    return Err(bad("not a module name before ':'"));
                }
                (Some(m), r)
            }
            None => (None, spec),
        };
        let (name, offset) = match rest.split_once('+') {
            Some((n, o)) => (
                n,
                parse_num(o).ok_or_else(|| bad("the offset is not a number"))?,
            ),
            None => (rest, 0),
        };
        if !valid_function(name) {
            return Err(bad(
                "not a kernel function name (letters, digits, '_' and '.')",
            ));
        }
        Ok(KprobeTarget {
            location: KprobeLocation::Function {
                module: module.map(str::to_owned),
                name: name.to_owned(),
                offset,
            },
            retprobe: false,
            maxactive: None,
        })
    }

    /// Sets the offset into the function (no effect on an address).
    pub fn offset(mut self, off: u64) -> KprobeTarget {
        if let KprobeLocation::Function { offset, .. } = &mut self.location {
            *offset = off;
        }
        self
    }

    /// Makes it a kretprobe (or not).
    pub fn retprobe(mut self, on: bool) -> KprobeTarget {
        self.retprobe = on;
        self
    }

    /// Sets a kretprobe's `maxactive`.
    pub fn maxactive(mut self, n: Option<u32>) -> KprobeTarget {
        self.maxactive = n;
        self
    }

    /// The place as tracefs and the PMU name it: `[module:]function[+off]`
    /// or `0xaddr`.
    fn spec(&self) -> String {
        match &self.location {
            KprobeLocation::Function {
                module,
                name,
                offset,
            } => {
                let m = module
                    .as_deref()
                    .map(|m| format!("{m}:"))
                    .unwrap_or_default();
                match offset {
                    0 => format!("{m}{name}"),
                    o => format!("{m}{name}+{o:#x}"),
                }
            }
            KprobeLocation::Address(a) => format!("{a:#x}"),
        }
    }
}

impl fmt::Display for KprobeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retprobe { "kretprobe" } else { "kprobe" };
        write!(f, "{kind} '{}'", self.spec())
    }
}

/// `0x` hex or decimal.
pub(crate) fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// A kernel function name as kallsyms and tracefs accept it.
pub(crate) fn valid_function(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 512
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// A module name (`nf_conntrack`; `-` is `_` to the kernel).
fn valid_module(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 56
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why a kprobe cannot be made here, or `None` when it can: the
/// interfaces `mode` may use, by what exists.
fn support(pmu: bool, tracefs: bool, mode: AttachMode, maxactive: bool) -> Option<&'static str> {
    match (pmu, tracefs) {
        (false, false) => Some(
            "neither the kprobe PMU (/sys/bus/event_source/devices/kprobe) nor tracefs kprobe_events exists on this kernel",
        ),
        (_, false) if mode == AttachMode::Legacy => {
            Some("tracefs kprobe_events (the legacy interface) does not exist on this kernel")
        }
        (_, false) if maxactive => {
            Some("a kretprobe's maxactive needs tracefs kprobe_events, which this kernel lacks")
        }
        _ => None,
    }
}

/// Checks a function name against kallsyms `text`: one definition (in
/// the module, when named), else why not. Ok: the module defining it
/// (`None`: vmlinux).
pub(crate) fn check_unique(
    text: &str,
    module: Option<&str>,
    name: &str,
) -> Result<Option<String>, K> {
    let mut defs = kallsyms::definitions(text, name, module);
    match defs.len() {
        0 => Err(K::NotFound(match module {
            Some(m) => format!("kernel function '{name}' in module '{m}'"),
            None => format!("kernel function '{name}'"),
        })),
        1 => Ok(defs.pop().and_then(|k| k.module)),
        _ => Err(K::Ambiguous(
            defs.iter()
                .map(|k| format!("{}:{:#x}", k.module.as_deref().unwrap_or("vmlinux"), k.addr))
                .collect(),
        )),
    }
}

impl Program {
    pub(crate) fn kprobe_type_check(&self, target: &str, multi: bool) -> Result<(), AttachError> {
        if self.prog_type() != ProgType::KPROBE {
            return Err(self.attach_err(
                target,
                K::WrongType(format!(
                    "a {} program cannot attach as a kprobe",
                    self.prog_type()
                )),
            ));
        }
        let is_multi = matches!(
            self.attach_type(),
            Some(AttachType::TRACE_KPROBE_MULTI | AttachType::TRACE_KPROBE_SESSION)
        );
        if is_multi != multi {
            let why = if multi {
                "only a program loaded for kprobe.multi or kprobe.session attaches as one"
            } else {
                "a kprobe.multi or kprobe.session program attaches with attach_kprobe_multi"
            };
            return Err(self.attach_err(target, K::WrongType(why.into())));
        }
        Ok(())
    }

    /// Attaches this kprobe-type program as a kprobe or kretprobe: through
    /// the kprobe PMU (`perf_event_open` with the function name and
    /// offset, or the address), or through a tracefs `kprobe_events`
    /// probe where the kernel has no PMU, with [`AttachMode::Legacy`], for
    /// [`KprobeTarget::maxactive`], or when the PMU refuses a
    /// `module:function` name. The perf event is then held by a
    /// perf-event link or carries the program by ioctl, as the mode and
    /// the kernel allow.
    ///
    /// # Errors
    /// [`K::Unsupported`] when the kernel has neither interface (no
    /// `CONFIG_KPROBES`); [`K::NotFound`] / [`K::Ambiguous`] (with
    /// `module:address` candidates) from kallsyms; [`K::WrongType`] for
    /// other program types; [`K::BadTarget`] for a kretprobe with an
    /// offset or an unnameable function; the kernel's error otherwise.
    pub fn attach_kprobe(&self, t: &KprobeTarget, opts: AttachOpts) -> Result<Link, AttachError> {
        self.attach_kprobe_as(t, t.to_string(), opts)
    }

    /// [`Program::attach_kprobe`] with the target described as `target`
    /// in errors and the link (ksyscall names the syscall).
    pub(crate) fn attach_kprobe_as(
        &self,
        t: &KprobeTarget,
        target: String,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let fail = |k| self.attach_err(&target, k);
        self.kprobe_type_check(&target, false)?;
        let (module, name, offset) = match &t.location {
            KprobeLocation::Function {
                module,
                name,
                offset,
            } => (module.as_deref(), Some(name.as_str()), *offset),
            KprobeLocation::Address(_) => (None, None, 0),
        };
        if let Some(n) = name.filter(|n| !valid_function(n)) {
            return Err(fail(K::BadTarget(format!(
                "'{n}' is not a kernel function name"
            ))));
        }
        if module.is_some_and(|m| !valid_module(m)) {
            return Err(fail(K::BadTarget("not a module name before ':'".into())));
        }
        if t.retprobe && offset != 0 {
            return Err(fail(K::BadTarget(
                "a kretprobe goes on a function's entry; it takes no offset".into(),
            )));
        }
        if t.maxactive.is_some() && !t.retprobe {
            return Err(fail(K::BadTarget("maxactive is for kretprobes".into())));
        }
        let pmu = ProbePmu::read(ProbeKind::Kprobe).ok();
        let has_tracefs = tracefs::has_probe_file(ProbeFile::Kprobe);
        if let Some(why) = support(pmu.is_some(), has_tracefs, opts.mode, t.maxactive.is_some()) {
            return Err(fail(K::Unsupported(why.into())));
        }
        if let Some(name) = name {
            // Unreadable or restricted kallsyms: the kernel decides.
            if let Ok(text) = std::fs::read_to_string("/proc/kallsyms") {
                if kallsyms::Kallsyms::parse(&text, &[]).is_ok() {
                    if let Some(m) = check_unique(&text, module, name).map_err(&fail)? {
                        crate::absent_module_btf::note_absent(
                            &m,
                            "the kprobe attaches by name, but CO-RE, kfuncs and typed ksyms \
                             cannot see the types it defines",
                        );
                    }
                }
            }
        }
        let use_pmu = opts.mode != AttachMode::Legacy && t.maxactive.is_none();
        let pmu = pmu.filter(|_| use_pmu);
        let (perf, probe) = match pmu {
            Some(pmu) => match self.pmu_kprobe(&pmu, t) {
                Ok(perf) => (perf, None),
                // The PMU may not know `module:function`; tracefs does.
                Err(e) if module.is_some() && has_tracefs => {
                    log::debug!("kprobe PMU refused {target} ({e}); trying tracefs");
                    self.tracefs_kprobe(&target, t)?
                }
                Err(e) => return Err(fail(pmu_error(e, t))),
            },
            None => self.tracefs_kprobe(&target, t)?,
        };
        self.attach_perf(perf, probe, target, opts)
    }

    fn pmu_kprobe(
        &self,
        pmu: &ProbePmu,
        t: &KprobeTarget,
    ) -> Result<PerfEvent, ember_sys::SysError> {
        let attr_for = |name: Option<&CString>, offset: u64| -> Result<PerfEvent, _> {
            let attr = match name {
                Some(n) => ProbeAttr::kprobe(pmu, n, offset),
                None => ProbeAttr::kprobe_addr(pmu, offset),
            }
            .retprobe(pmu, t.retprobe);
            perf_event_open_probe(&attr, None, None)
        };
        match &t.location {
            KprobeLocation::Function {
                module,
                name,
                offset,
            } => {
                let full = match module {
                    Some(m) => format!("{m}:{name}"),
                    None => name.clone(),
                };
                // valid_function/valid_module exclude NUL.
                let c = CString::new(full).unwrap_or_default();
                attr_for(Some(&c), *offset)
            }
            KprobeLocation::Address(a) => attr_for(None, *a),
        }
    }

    /// The legacy path: a probe in tracefs `kprobe_events`, opened as a
    /// tracepoint on CPU 0 (it fires on every CPU).
    fn tracefs_kprobe(
        &self,
        target: &str,
        t: &KprobeTarget,
    ) -> Result<(PerfEvent, Option<TracefsProbe>), AttachError> {
        let fail = |k| self.attach_err(target, k);
        let spec = t.spec();
        // Event names start with a letter or '_' (tracefs `is_good_name`).
        let hint = match &t.location {
            KprobeLocation::Function { name, .. } => name.clone(),
            KprobeLocation::Address(a) => format!("kaddr_{a:x}"),
        };
        let probe = TracefsProbe::create(ProbeFile::Kprobe, &hint, t.retprobe, t.maxactive, &spec)
            .map_err(|w| fail(K::Unsupported(format!("tracefs refused the probe: {w}"))))?;
        let id = probe.id().map_err(|w| fail(K::Unsupported(w)))?;
        let perf = perf_event_open(&PerfEventAttr::tracepoint(id), None, Some(0), None)
            .map_err(|e| fail(K::Sys(e)))?;
        Ok((perf, Some(probe)))
    }
}

/// The PMU's refusal, explained where the errno says what it means.
fn pmu_error(e: ember_sys::SysError, t: &KprobeTarget) -> K {
    match (e.errno, &t.location) {
        (Errno::NOENT, KprobeLocation::Function { name, .. }) => {
            K::NotFound(format!("kernel function '{name}'"))
        }
        (Errno::ADDRNOTAVAIL, KprobeLocation::Function { name, .. }) => {
            K::Ambiguous(vec![format!(
                "'{name}' has several definitions; attach by address (see /proc/kallsyms)"
            )])
        }
        _ => K::Sys(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(m: Option<&str>, n: &str, o: u64) -> KprobeLocation {
        KprobeLocation::Function {
            module: m.map(str::to_owned),
            name: n.to_owned(),
            offset: o,
        }
    }

    #[test]
    fn targets_parse() {
        let p = |s| KprobeTarget::parse(s).map(|t| t.location);
        assert_eq!(p("do_sys_openat2"), Ok(func(None, "do_sys_openat2", 0)));
        assert_eq!(
            p("do_sys_openat2+0x10"),
            Ok(func(None, "do_sys_openat2", 16))
        );
        assert_eq!(p("vfs_read+8"), Ok(func(None, "vfs_read", 8)));
        assert_eq!(
            p("nf_conntrack:nf_ct_delete"),
            Ok(func(Some("nf_conntrack"), "nf_ct_delete", 0))
        );
        assert_eq!(p("m:f.cold+0x1"), Ok(func(Some("m"), "f.cold", 1)));
        assert_eq!(
            p("0xffffffff816b52b0"),
            Ok(KprobeLocation::Address(0xffff_ffff_816b_52b0))
        );
        for bad in [
            "",
            "+0x10",
            "f+",
            "f+x",
            "f+0x",
            "f+-1",
            ":f",
            "m:",
            "a b",
            "f/g",
            "0xzz",
            "1abc",
            "m:n:f",
            "f\0",
            "mod space:f",
            "f+1+2",
        ] {
            assert!(KprobeTarget::parse(bad).is_err(), "{bad:?} parsed");
        }
        let t = KprobeTarget::parse("m:f+0x10").unwrap();
        assert_eq!(t.to_string(), "kprobe 'm:f+0x10'");
        let t = KprobeTarget::function("vfs_read").retprobe(true);
        assert_eq!(t.to_string(), "kretprobe 'vfs_read'");
        assert_eq!(KprobeTarget::address(0x10).to_string(), "kprobe '0x10'");
        assert_eq!(
            KprobeTarget::function("m:f").location,
            func(Some("m"), "f", 0)
        );
    }

    #[test]
    fn support_needs_one_interface() {
        let auto = AttachMode::Auto;
        let why = support(false, false, auto, false).unwrap();
        assert!(why.contains("neither the kprobe PMU") && why.contains("kprobe_events"));
        assert!(
            support(false, false, AttachMode::Legacy, false)
                .unwrap()
                .contains("neither")
        );
        assert!(support(true, false, auto, false).is_none());
        assert!(support(false, true, auto, false).is_none());
        assert!(support(true, false, AttachMode::Legacy, false).is_some());
        assert!(support(true, false, auto, true).is_some());
        assert!(support(true, true, AttachMode::Legacy, true).is_none());
    }

    #[test]
    fn names_with_several_definitions_are_ambiguous() {
        let text = "\
ffffffff81000100 t helper
ffffffff81000200 t helper
ffffffffc0001000 t helper [mod_a]
ffffffff81000300 T unique
ffffffffc0002000 t only_mod [mod_b]
";
        match check_unique(text, None, "helper") {
            Err(K::Ambiguous(c)) => assert_eq!(
                c,
                [
                    "vmlinux:0xffffffff81000100",
                    "vmlinux:0xffffffff81000200",
                    "mod_a:0xffffffffc0001000"
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_unique(text, Some("mod_a"), "helper").ok(),
            Some(Some("mod_a".into()))
        );
        assert_eq!(check_unique(text, None, "unique").ok(), Some(None));
        assert_eq!(
            check_unique(text, None, "only_mod").ok(),
            Some(Some("mod_b".into()))
        );
        assert!(matches!(
            check_unique(text, Some("mod_a"), "only_mod"),
            Err(K::NotFound(w)) if w.contains("mod_a")
        ));
        assert!(matches!(
            check_unique(text, None, "absent"),
            Err(K::NotFound(_))
        ));
    }
}
