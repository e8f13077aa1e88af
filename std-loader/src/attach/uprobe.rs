//! Uprobes and uretprobes (a perf event of the uprobe PMU, or a tracefs
//! `uprobe_events` probe where the PMU is missing or
//! [`AttachMode::Legacy`] asks for it), and `uprobe.multi` links (6.6).
//!
//! The target is a binary (a path, a library name resolved by
//! [`libpath`]) and a place in it: a function symbol
//! (resolved to a file offset by [`elf_sym`]) plus an
//! offset, or a raw file offset. Sleepable programs (`uprobe.s`) attach
//! the same way: the kernel reads sleepability from the loaded program.

use core::fmt;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use ember_core::object::{AttachType, ProgType};
use ember_sys::cmd::link::F_UPROBE_MULTI_RETURN;
use ember_sys::{
    LinkCreate, LinkExtra, LinkTarget, PerfEventAttr, ProbeAttr, ProbeKind, ProbePmu, link_create,
    perf_event_open, perf_event_open_probe,
};

use super::elf_sym::{self, Lookup};
use super::link::{Inner, cpath};
use super::tracefs::{self, ProbeFile, TracefsProbe};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism, libpath};
use crate::Program;

/// Where in the binary a uprobe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UprobeLocation {
    /// A function symbol (`.symtab` or `.dynsym`), plus `offset` bytes.
    Symbol {
        /// The function.
        name: String,
        /// Bytes past its start.
        offset: u64,
    },
    /// A file offset.
    Offset(u64),
}

/// What [`Program::attach_uprobe`] attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UprobeTarget {
    /// A path (`/usr/bin/bash`), a library name (`libc.so.6`, or `c`)
    /// or an executable on `$PATH`.
    pub binary: String,
    /// The place in it.
    pub location: UprobeLocation,
    /// A uretprobe (fires when the function returns).
    pub retprobe: bool,
    /// Only this process (`None`: every process).
    pub pid: Option<u32>,
    /// File offset of the USDT semaphore the kernel counts up while the
    /// probe exists (0: none).
    pub ref_ctr_offset: u64,
}

impl UprobeTarget {
    /// Function `name` of `binary`.
    pub fn symbol(binary: impl Into<String>, name: impl Into<String>) -> UprobeTarget {
        UprobeTarget {
            binary: binary.into(),
            location: UprobeLocation::Symbol {
                name: name.into(),
                offset: 0,
            },
            retprobe: false,
            pid: None,
            ref_ctr_offset: 0,
        }
    }

    /// File offset `offset` of `binary`.
    pub fn offset(binary: impl Into<String>, offset: u64) -> UprobeTarget {
        UprobeTarget {
            location: UprobeLocation::Offset(offset),
            ..UprobeTarget::symbol(binary, "")
        }
    }

    /// Parses libbpf's section form `binary:function[+offset]` or
    /// `binary:offset` (offsets decimal or `0x` hex).
    ///
    /// # Errors
    /// What is malformed.
    pub fn parse(spec: &str) -> Result<UprobeTarget, String> {
        let (binary, place) = spec
            .split_once(':')
            .filter(|(b, p)| !b.is_empty() && !p.is_empty())
            .ok_or_else(|| format!("'{spec}' is not binary:function[+offset] or binary:offset"))?;
        if let Some(off) = parse_num(place) {
            return Ok(UprobeTarget::offset(binary, off));
        }
        let (name, offset) = match place.rsplit_once('+') {
            Some((n, o)) => (
                n,
                parse_num(o).ok_or_else(|| format!("'{o}' in '{spec}' is not an offset"))?,
            ),
            None => (place, 0),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("'{name}' in '{spec}' is not a function name"));
        }
        Ok(UprobeTarget {
            location: UprobeLocation::Symbol {
                name: name.into(),
                offset,
            },
            ..UprobeTarget::symbol(binary, "")
        })
    }

    /// Makes it a uretprobe (or not).
    pub fn retprobe(mut self, on: bool) -> UprobeTarget {
        self.retprobe = on;
        self
    }

    /// Limits it to one process.
    pub fn pid(mut self, pid: Option<u32>) -> UprobeTarget {
        self.pid = pid;
        self
    }

    /// Sets the USDT semaphore offset.
    pub fn ref_ctr_offset(mut self, off: u64) -> UprobeTarget {
        self.ref_ctr_offset = off;
        self
    }
}

impl fmt::Display for UprobeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retprobe { "uretprobe" } else { "uprobe" };
        write!(f, "{kind} '{}:", self.binary)?;
        match &self.location {
            UprobeLocation::Symbol { name, offset: 0 } => write!(f, "{name}'")?,
            UprobeLocation::Symbol { name, offset } => write!(f, "{name}+{offset:#x}'")?,
            UprobeLocation::Offset(o) => write!(f, "{o:#x}'")?,
        }
        if let Some(p) = self.pid {
            write!(f, " (pid {p})")?;
        }
        Ok(())
    }
}

/// `0x` hex or decimal.
fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// Which functions a [`UprobeMultiTarget`] probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiFunctions {
    /// Every function whose name matches the glob (`*`, `?`).
    Pattern(String),
    /// These functions.
    Symbols(Vec<String>),
    /// These file offsets.
    Offsets(Vec<u64>),
}

/// What [`Program::attach_uprobe_multi`] attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UprobeMultiTarget {
    /// As [`UprobeTarget::binary`].
    pub binary: String,
    /// The probes.
    pub functions: MultiFunctions,
    /// Return probes.
    pub retprobe: bool,
    /// Only this process (`None`: every process).
    pub pid: Option<u32>,
    /// One `bpf_get_attach_cookie()` value per probe, in the order the
    /// probes resolve (pattern matches sort by offset); empty: the
    /// options' cookie for every probe.
    pub cookies: Vec<u64>,
}

impl UprobeMultiTarget {
    /// The functions of `binary` matching `pattern`.
    pub fn pattern(binary: impl Into<String>, pattern: impl Into<String>) -> UprobeMultiTarget {
        UprobeMultiTarget {
            binary: binary.into(),
            functions: MultiFunctions::Pattern(pattern.into()),
            retprobe: false,
            pid: None,
            cookies: Vec::new(),
        }
    }

    /// Functions `names` of `binary`, in this order (for
    /// [`UprobeMultiTarget::cookies`]).
    pub fn symbols<S: Into<String>>(
        binary: impl Into<String>,
        names: impl IntoIterator<Item = S>,
    ) -> UprobeMultiTarget {
        UprobeMultiTarget {
            functions: MultiFunctions::Symbols(names.into_iter().map(Into::into).collect()),
            ..UprobeMultiTarget::pattern(binary, "")
        }
    }

    /// File offsets `offsets` of `binary`.
    pub fn offsets(binary: impl Into<String>, offsets: Vec<u64>) -> UprobeMultiTarget {
        UprobeMultiTarget {
            functions: MultiFunctions::Offsets(offsets),
            ..UprobeMultiTarget::pattern(binary, "")
        }
    }

    /// One cookie per probe, in the probes' order.
    pub fn cookies(mut self, cookies: Vec<u64>) -> UprobeMultiTarget {
        self.cookies = cookies;
        self
    }

    /// Makes them return probes (or not).
    pub fn retprobe(mut self, on: bool) -> UprobeMultiTarget {
        self.retprobe = on;
        self
    }

    /// Limits them to one process.
    pub fn pid(mut self, pid: Option<u32>) -> UprobeMultiTarget {
        self.pid = pid;
        self
    }
}

impl fmt::Display for UprobeMultiTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retprobe {
            "uretprobe.multi"
        } else {
            "uprobe.multi"
        };
        write!(f, "{kind} '{}:", self.binary)?;
        match &self.functions {
            MultiFunctions::Pattern(p) => write!(f, "{p}'")?,
            MultiFunctions::Symbols(s) => write!(f, "{}'", s.join(","))?,
            MultiFunctions::Offsets(o) => {
                let o: Vec<String> = o.iter().map(|o| format!("{o:#x}")).collect();
                write!(f, "{}'", o.join(","))?;
            }
        }
        if let Some(p) = self.pid {
            write!(f, " (pid {p})")?;
        }
        Ok(())
    }
}

impl Program {
    fn uprobe_type_check(&self, target: &str, multi: bool) -> Result<(), AttachError> {
        if self.prog_type() != ProgType::KPROBE {
            return Err(self.attach_err(
                target,
                K::WrongType(format!(
                    "a {} program cannot attach as a uprobe",
                    self.prog_type()
                )),
            ));
        }
        let is_multi = self.attach_type() == Some(AttachType::TRACE_UPROBE_MULTI);
        if is_multi != multi {
            let why = if multi {
                "only a program loaded for uprobe.multi (BPF_TRACE_UPROBE_MULTI) attaches as one"
            } else {
                "a uprobe.multi program attaches with attach_uprobe_multi"
            };
            return Err(self.attach_err(target, K::WrongType(why.into())));
        }
        Ok(())
    }

    /// Resolves the binary and reads its function symbols.
    fn uprobe_binary(
        &self,
        target: &str,
        binary: &str,
        pid: Option<u32>,
    ) -> Result<(PathBuf, CString), AttachError> {
        let path =
            libpath::resolve(binary, pid).map_err(|w| self.attach_err(target, K::NotFound(w)))?;
        let c = cpath(&path);
        if c.as_bytes().is_empty() {
            return Err(self.attach_err(target, K::BadTarget("the path holds a NUL byte".into())));
        }
        Ok((path, c))
    }

    fn uprobe_symbols(
        &self,
        target: &str,
        path: &Path,
    ) -> Result<Vec<elf_sym::FuncSym>, AttachError> {
        let data = std::fs::read(path).map_err(|source| {
            self.attach_err(
                target,
                K::Io {
                    path: path.to_owned(),
                    source,
                },
            )
        })?;
        elf_sym::functions(&data)
            .map_err(|w| self.attach_err(target, K::BadTarget(format!("{}: {w}", path.display()))))
    }

    fn lookup_err(&self, target: &str, name: &str, path: &Path, e: Lookup) -> AttachError {
        self.attach_err(
            target,
            match e {
                Lookup::NotFound => K::NotFound(format!("function '{name}' in {}", path.display())),
                Lookup::Ambiguous(c) => K::Ambiguous(c),
                Lookup::Malformed(w) => K::BadTarget(format!("{}: {w}", path.display())),
            },
        )
    }

    /// Attaches this kprobe-type program as a uprobe or uretprobe: through
    /// the uprobe PMU (`perf_event_open` with the path and file offset),
    /// or, where the kernel has no such PMU or with
    /// [`AttachMode::Legacy`], a tracefs `uprobe_events` probe; the perf
    /// event is then held by a perf-event link or carries the program by
    /// ioctl, as [`AttachMode`] and the kernel allow.
    ///
    /// # Errors
    /// [`K::NotFound`] naming the binary or the function, [`K::Ambiguous`]
    /// listing the definitions when a name has several, [`K::WrongType`]
    /// for other program types, [`K::BadTarget`] for a binary that is no
    /// readable ELF, the kernel's error otherwise.
    pub fn attach_uprobe(&self, t: &UprobeTarget, opts: AttachOpts) -> Result<Link, AttachError> {
        let target = t.to_string();
        self.uprobe_type_check(&target, false)?;
        let (path, cpath) = self.uprobe_binary(&target, &t.binary, t.pid)?;
        let offset = match &t.location {
            UprobeLocation::Offset(o) => *o,
            UprobeLocation::Symbol { name, offset } => {
                let syms = self.uprobe_symbols(&target, &path)?;
                elf_sym::find(&syms, name)
                    .map_err(|e| self.lookup_err(&target, name, &path, e))?
                    .checked_add(*offset)
                    .ok_or_else(|| {
                        self.attach_err(&target, K::BadTarget("the offset overflows".into()))
                    })?
            }
        };
        let pid = t
            .pid
            .map(i32::try_from)
            .transpose()
            .map_err(|_| self.attach_err(&target, K::BadTarget("pid out of range".into())))?;
        let pmu = match opts.mode {
            AttachMode::Legacy => None,
            _ => ProbePmu::read(ProbeKind::Uprobe).ok(),
        };
        let (perf, probe) = match pmu {
            Some(pmu) => {
                let attr = ProbeAttr::uprobe(&pmu, &cpath, offset)
                    .retprobe(&pmu, t.retprobe)
                    .ref_ctr_offset(&pmu, t.ref_ctr_offset);
                let perf = perf_event_open_probe(&attr, pid, None)
                    .map_err(|e| self.attach_err(&target, K::Sys(e)))?;
                (perf, None)
            }
            None => self.tracefs_uprobe(&target, &path, offset, t, pid)?,
        };
        self.attach_perf(perf, probe, target, opts)
    }

    /// The legacy path: a probe in tracefs `uprobe_events`, opened as a
    /// tracepoint.
    fn tracefs_uprobe(
        &self,
        target: &str,
        path: &Path,
        offset: u64,
        t: &UprobeTarget,
        pid: Option<i32>,
    ) -> Result<(ember_sys::PerfEvent, Option<TracefsProbe>), AttachError> {
        if !tracefs::has_probe_file(ProbeFile::Uprobe) {
            return Err(self.attach_err(
                target,
                K::Unsupported("neither the uprobe PMU nor tracefs uprobe_events exists".into()),
            ));
        }
        // tracefs resolves the path itself, not from our directory.
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let p = abs
            .to_str()
            .filter(|p| !p.contains(char::is_whitespace))
            .ok_or_else(|| {
                self.attach_err(
                    target,
                    K::BadTarget(
                        "tracefs cannot name a path with spaces or non-UTF-8 bytes".into(),
                    ),
                )
            })?;
        let mut def = format!("{p}:{offset:#x}");
        if t.ref_ctr_offset != 0 {
            def.push_str(&format!("({:#x})", t.ref_ctr_offset));
        }
        let base = path.file_name().and_then(|b| b.to_str()).unwrap_or("bin");
        let hint = format!("{base}_{offset:x}");
        let probe = TracefsProbe::create(ProbeFile::Uprobe, &hint, t.retprobe, None, &def)
            .map_err(|w| {
                self.attach_err(
                    target,
                    K::Unsupported(format!("tracefs refused the probe: {w}")),
                )
            })?;
        let id = probe
            .id()
            .map_err(|w| self.attach_err(target, K::Unsupported(w)))?;
        // Process-wide events need a CPU; a pid filter takes any.
        let cpu = if pid.is_some() { None } else { Some(0) };
        let perf = perf_event_open(&PerfEventAttr::tracepoint(id), pid, cpu, None)
            .map_err(|e| self.attach_err(target, K::Sys(e)))?;
        Ok((perf, Some(probe)))
    }

    /// Attaches this `uprobe.multi` program to many places of one binary
    /// with one link (`BPF_TRACE_UPROBE_MULTI`, 6.6).
    ///
    /// # Errors
    /// [`K::NotFound`] naming the binary, a function, or a pattern that
    /// matches none; [`K::Unsupported`] for [`AttachMode::Legacy`] (there
    /// is no legacy form); the kernel's error otherwise.
    pub fn attach_uprobe_multi(
        &self,
        t: &UprobeMultiTarget,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let target = t.to_string();
        self.uprobe_type_check(&target, true)?;
        if opts.mode == AttachMode::Legacy {
            return Err(self.attach_err(
                &target,
                K::Unsupported("uprobe.multi exists only as a link".into()),
            ));
        }
        let (path, cpath) = self.uprobe_binary(&target, &t.binary, t.pid)?;
        let offsets: Vec<u64> = match &t.functions {
            MultiFunctions::Offsets(o) => o.clone(),
            MultiFunctions::Pattern(p) => {
                let syms = self.uprobe_symbols(&target, &path)?;
                let m = elf_sym::matching(&syms, p);
                if m.is_empty() {
                    return Err(self.attach_err(
                        &target,
                        K::NotFound(format!("a function matching '{p}' in {}", path.display())),
                    ));
                }
                m.into_iter().map(|(o, _)| o).collect()
            }
            MultiFunctions::Symbols(names) => {
                let syms = self.uprobe_symbols(&target, &path)?;
                names
                    .iter()
                    .map(|n| {
                        elf_sym::find(&syms, n).map_err(|e| self.lookup_err(&target, n, &path, e))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        if offsets.is_empty() {
            return Err(self.attach_err(&target, K::NoTarget));
        }
        let cookies = match (t.cookies.len(), opts.cookie) {
            (0, 0) => Vec::new(),
            (0, c) => vec![c; offsets.len()],
            (n, _) if n == offsets.len() => t.cookies.clone(),
            (n, _) => {
                return Err(self.attach_err(
                    &target,
                    K::BadTarget(format!("{n} cookies for {} probes", offsets.len())),
                ));
            }
        };
        let pid = t.pid.unwrap_or(0);
        let link = link_create(&LinkCreate {
            prog: self.fd(),
            target: LinkTarget::None,
            attach_type: AttachType::TRACE_UPROBE_MULTI.0,
            flags: 0,
            extra: LinkExtra::UprobeMulti {
                path: &cpath,
                offsets: &offsets,
                ref_ctr_offsets: &[],
                cookies: &cookies,
                flags: if t.retprobe { F_UPROBE_MULTI_RETURN } else { 0 },
                pid,
            },
        })
        .map_err(|e| self.attach_err(&target, K::Sys(e)))?;
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::BpfLink,
            Inner::Fd {
                link,
                perf: None,
                probe: None,
            },
        ))
    }

    /// For a program of a uprobe section (`uprobe`, `uretprobe.s`,
    /// `uprobe.multi`, ...): (multi, return probe).
    pub(crate) fn uprobe_kind(&self) -> Option<(bool, bool)> {
        let def = ember_core::object::section::lookup(self.section())?;
        let base = def.pattern.trim_end_matches(['+', '/']);
        let base = base.strip_suffix(".s").unwrap_or(base);
        match base {
            "uprobe" => Some((false, false)),
            "uretprobe" => Some((false, true)),
            "uprobe.multi" => Some((true, false)),
            "uretprobe.multi" => Some((true, true)),
            _ => None,
        }
    }

    /// [`Program::attach_to`]'s arm for uprobe programs: the text is what
    /// the section would say after `uprobe/` (`binary:function[+offset]`,
    /// `binary:offset`; `binary:pattern` for `uprobe.multi`).
    pub(crate) fn attach_uprobe_text(
        &self,
        text: &str,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let Some((multi, ret)) = self.uprobe_kind() else {
            return Err(self.attach_err(
                format!("'{text}'"),
                K::WrongType("not a uprobe program".into()),
            ));
        };
        let label = format!("'{text}'");
        if multi {
            self.attach_uprobe_multi_spec(label, Some(text), ret, opts)
        } else {
            self.attach_uprobe_spec(label, Some(text), ret, opts)
        }
    }

    /// The auto-attach arm for `uprobe[.s]/`, `uretprobe[.s]/` sections:
    /// `binary:function[+offset]` or `binary:offset`.
    pub(crate) fn attach_uprobe_section(
        &self,
        sec: &str,
        rest: Option<&str>,
        retprobe: bool,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        self.attach_uprobe_spec(format!("section '{sec}'"), rest, retprobe, opts)
    }

    /// The auto-attach arm for `uprobe.multi[.s]/`,
    /// `uretprobe.multi[.s]/` sections: `binary:pattern`.
    pub(crate) fn attach_uprobe_multi_section(
        &self,
        sec: &str,
        rest: Option<&str>,
        retprobe: bool,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        self.attach_uprobe_multi_spec(format!("section '{sec}'"), rest, retprobe, opts)
    }

    /// A uprobe from text; `label` names the text in errors.
    fn attach_uprobe_spec(
        &self,
        label: String,
        rest: Option<&str>,
        retprobe: bool,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let rest = rest.ok_or_else(|| self.attach_err(&label, K::NoTarget))?;
        let t = UprobeTarget::parse(rest)
            .map_err(|w| self.attach_err(&label, K::BadTarget(w)))?
            .retprobe(retprobe);
        if retprobe && matches!(t.location, UprobeLocation::Symbol { offset, .. } if offset != 0) {
            return Err(self.attach_err(
                &label,
                K::BadTarget("a uretprobe takes no offset into the function (as libbpf)".into()),
            ));
        }
        self.attach_uprobe(&t, opts)
    }

    /// A uprobe.multi from text `binary:pattern`.
    fn attach_uprobe_multi_spec(
        &self,
        label: String,
        rest: Option<&str>,
        retprobe: bool,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let rest = rest.ok_or_else(|| self.attach_err(&label, K::NoTarget))?;
        let (bin, pat) = rest
            .split_once(':')
            .filter(|(b, p)| !b.is_empty() && !p.is_empty())
            .ok_or_else(|| {
                self.attach_err(
                    &label,
                    K::BadTarget("a uprobe.multi target is '<binary>:<pattern>'".into()),
                )
            })?;
        self.attach_uprobe_multi(
            &UprobeMultiTarget::pattern(bin, pat).retprobe(retprobe),
            opts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_targets_parse() {
        let t = UprobeTarget::parse("/usr/bin/bash:readline+0x4").unwrap();
        assert_eq!(t.binary, "/usr/bin/bash");
        assert_eq!(
            t.location,
            UprobeLocation::Symbol {
                name: "readline".into(),
                offset: 4
            }
        );
        assert_eq!(t.to_string(), "uprobe '/usr/bin/bash:readline+0x4'");
        let t = UprobeTarget::parse("libc.so.6:malloc").unwrap();
        assert_eq!(t.binary, "libc.so.6");
        assert_eq!(
            t.clone().retprobe(true).pid(Some(7)).to_string(),
            "uretprobe 'libc.so.6:malloc' (pid 7)"
        );
        assert_eq!(
            UprobeTarget::parse("/bin/sh:0x1f0").unwrap().location,
            UprobeLocation::Offset(0x1f0)
        );
        assert_eq!(
            UprobeTarget::parse("/bin/sh:496").unwrap().location,
            UprobeLocation::Offset(496)
        );
        for bad in [
            "",
            ":",
            "/bin/sh",
            "/bin/sh:",
            ":main",
            "/bin/sh:main+x",
            "/bin/sh:+4",
            "/bin/sh:a b",
        ] {
            assert!(UprobeTarget::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_num("0x"), None);
        assert_eq!(parse_num("99999999999999999999"), None);
    }
}
