//! USDT probes (SystemTap SDT notes): each `.note.stapsdt` note of a
//! binary names a provider, a probe, the probe's address and its argument
//! locations (`-4@-20(%rbp) 8@%rax 4@$5`). Attaching puts a uprobe on
//! every site of the probe and describes its arguments, for the program,
//! in the map `__bpf_usdt_specs` that libbpf's `usdt.bpf.h` reads
//! (`struct __bpf_usdt_spec` of libbpf 1.1: 12 arguments of 16 bytes,
//! the USDT cookie, the argument count), found through the attach cookie
//! (`bpf_get_attach_cookie`), which carries the spec's index.
//!
//! Argument locations are read for x86-64 only (constants, registers,
//! register + offset); others are refused with the reason.

use core::fmt;
use std::sync::Mutex;

use ember_sys::{AsFd, id::MapId};

use object::{Object, ObjectSection, ObjectSegment};

use super::elf_sym::file_offset;
use super::link::{Detach, Inner};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism};
use super::{UprobeTarget, libpath, probe};
use crate::maps::Map;
use crate::{Ebpf, Program};

/// `NT_STAPSDT`.
const NT_STAPSDT: u32 = 3;
/// Arguments a spec holds (`BPF_USDT_MAX_ARG_CNT`).
pub const MAX_ARGS: usize = 12;
/// Size of `struct __bpf_usdt_spec` (libbpf 1.1 layout).
pub const SPEC_SIZE: usize = MAX_ARGS * 16 + 16;
/// The map of specs `usdt.bpf.h` declares.
pub const SPECS_MAP: &str = "__bpf_usdt_specs";

/// One SDT note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsdtNote<'a> {
    /// Provider (`libc`).
    pub provider: &'a str,
    /// Probe name (`setjmp`).
    pub name: &'a str,
    /// Argument locations as the assembler wrote them.
    pub args: &'a str,
    /// The probe's address (link time).
    pub pc: u64,
    /// `.stapsdt.base`'s address as recorded (for prelink adjustment).
    pub base: u64,
    /// The semaphore's address, or 0.
    pub semaphore: u64,
}

/// Reads the notes of a `.note.stapsdt` section (`is_64`: ELFCLASS64;
/// `little`: byte order). Notes of other types or owners are skipped.
///
/// # Errors
/// A note running past the section, or an SDT note without its three
/// addresses and three strings.
pub fn parse_notes(sec: &[u8], is_64: bool, little: bool) -> Result<Vec<UsdtNote<'_>>, String> {
    let u32_at = |o: usize| -> Option<u32> {
        let b: [u8; 4] = sec.get(o..o.checked_add(4)?)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let word = if is_64 { 8 } else { 4 };
    let addr_at = |d: &[u8], o: usize| -> Option<u64> {
        let b = d.get(o..o.checked_add(word)?)?;
        let mut v = [0u8; 8];
        if little {
            v.get_mut(..word)?.copy_from_slice(b);
            Some(u64::from_le_bytes(v))
        } else {
            v.get_mut(8 - word..)?.copy_from_slice(b);
            Some(u64::from_be_bytes(v))
        }
    };
    let pad4 = |n: usize| n.checked_next_multiple_of(4);
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < sec.len() {
        let bad = || format!("note at {at:#x} runs past the section");
        let (Some(namesz), Some(descsz), Some(ty)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8))
        else {
            return Err(bad());
        };
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        let name_at = at + 12;
        let desc_at = pad4(namesz)
            .and_then(|n| name_at.checked_add(n))
            .ok_or_else(bad)?;
        let next = pad4(descsz)
            .and_then(|d| desc_at.checked_add(d))
            .ok_or_else(bad)?;
        let owner = sec.get(name_at..name_at + namesz).ok_or_else(bad)?;
        let desc = sec.get(desc_at..desc_at + descsz).ok_or_else(bad)?;
        if next > sec.len() && next.saturating_sub(sec.len()) >= 4 {
            return Err(bad());
        }
        if ty == NT_STAPSDT && owner == b"stapsdt\0" {
            let malformed = || format!("SDT note at {at:#x} is malformed");
            let pc = addr_at(desc, 0).ok_or_else(malformed)?;
            let base = addr_at(desc, word).ok_or_else(malformed)?;
            let semaphore = addr_at(desc, 2 * word).ok_or_else(malformed)?;
            let strs = desc.get(3 * word..).ok_or_else(malformed)?;
            let mut parts = strs.split(|&c| c == 0);
            let mut s = || {
                parts
                    .next()
                    .and_then(|p| core::str::from_utf8(p).ok())
                    .ok_or_else(malformed)
            };
            let (provider, name, args) = (s()?, s()?, s()?);
            if provider.is_empty() || name.is_empty() {
                return Err(malformed());
            }
            out.push(UsdtNote {
                provider,
                name,
                args,
                pc,
                base,
                semaphore,
            });
        }
        at = next;
    }
    Ok(out)
}

/// One place a probe fires, as file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtSite {
    /// File offset of the probe's instruction.
    pub offset: u64,
    /// File offset of its semaphore (0: none).
    pub semaphore: u64,
    /// Argument locations.
    pub args: String,
}

/// The sites of probe `provider:name` in ELF `data`.
///
/// # Errors
/// Why the file or its notes cannot be read, or a site outside every
/// loaded segment.
pub fn sites(data: &[u8], provider: &str, name: &str) -> Result<Vec<UsdtSite>, String> {
    let file = object::File::parse(data).map_err(|e| format!("not a readable ELF file: {e}"))?;
    let Some(sec) = file.section_by_name(".note.stapsdt") else {
        return Ok(Vec::new());
    };
    let notes = sec.data().map_err(|e| format!(".note.stapsdt: {e}"))?;
    let base_sec = file.section_by_name(".stapsdt.base").map(|s| s.address());
    let loads: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let mut out = Vec::new();
    for n in parse_notes(notes, file.is_64(), file.is_little_endian())? {
        if n.provider != provider || n.name != name {
            continue;
        }
        // Prelink moves the binary; the note keeps .stapsdt.base's old
        // address, so the distance is the shift.
        let pc = match base_sec {
            Some(b) if n.base != 0 => n.pc.wrapping_add(b).wrapping_sub(n.base),
            _ => n.pc,
        };
        let offset = file_offset(&loads, pc)
            .ok_or_else(|| format!("{provider}:{name} at {pc:#x} is in no loaded segment"))?;
        let semaphore = match n.semaphore {
            0 => 0,
            s => file_offset(&loads, s).ok_or_else(|| {
                format!("{provider}:{name}'s semaphore at {s:#x} is in no loaded segment")
            })?,
        };
        out.push(UsdtSite {
            offset,
            semaphore,
            args: n.args.to_owned(),
        });
    }
    Ok(out)
}

/// How an argument is found (`enum __bpf_usdt_arg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// The value itself (`$5`).
    Const,
    /// A register (`%rax`).
    Reg,
    /// Memory at a register plus an offset (`-20(%rbp)`).
    RegDeref,
}

/// One argument's location (`struct __bpf_usdt_arg_spec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    /// The constant, or the offset from the register.
    pub val_off: u64,
    /// How to read it.
    pub kind: ArgKind,
    /// `offsetof(struct pt_regs, reg)`.
    pub reg_off: i16,
    /// A negative size: sign-extend.
    pub signed: bool,
    /// 64 minus the size in bits.
    pub bitshift: u8,
}

/// `offsetof(struct pt_regs, ...)` on x86-64 for a register name and its
/// narrower aliases.
fn x86_64_reg(r: &str) -> Option<i16> {
    Some(match r {
        "r15" | "r15d" | "r15w" | "r15b" => 0,
        "r14" | "r14d" | "r14w" | "r14b" => 8,
        "r13" | "r13d" | "r13w" | "r13b" => 16,
        "r12" | "r12d" | "r12w" | "r12b" => 24,
        "rbp" | "ebp" | "bp" | "bpl" => 32,
        "rbx" | "ebx" | "bx" | "bl" | "bh" => 40,
        "r11" | "r11d" | "r11w" | "r11b" => 48,
        "r10" | "r10d" | "r10w" | "r10b" => 56,
        "r9" | "r9d" | "r9w" | "r9b" => 64,
        "r8" | "r8d" | "r8w" | "r8b" => 72,
        "rax" | "eax" | "ax" | "al" | "ah" => 80,
        "rcx" | "ecx" | "cx" | "cl" | "ch" => 88,
        "rdx" | "edx" | "dx" | "dl" | "dh" => 96,
        "rsi" | "esi" | "si" | "sil" => 104,
        "rdi" | "edi" | "di" | "dil" => 112,
        "rip" | "eip" | "ip" => 128,
        "rsp" | "esp" | "sp" | "spl" => 152,
        _ => return None,
    })
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, m) = match s.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match m.strip_prefix("0x").or_else(|| m.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16).ok()?,
        None if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => m.parse().ok()?,
        None => return None,
    };
    Some(if neg { v.checked_neg()? } else { v })
}

/// Parses an SDT argument string (x86-64 AT&T operands).
///
/// # Errors
/// The first argument that is malformed or of a form not handled (a
/// scaled index, a symbol, another architecture), or more than
/// [`MAX_ARGS`].
pub fn parse_args(s: &str) -> Result<Vec<ArgSpec>, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("USDT arguments are read on x86-64 only".into());
    }
    let mut out = Vec::new();
    for a in s.split_whitespace() {
        let bad = || format!("USDT argument '{a}' is not one ember reads");
        let (size, loc) = a.split_once('@').ok_or_else(bad)?;
        let size = parse_int(size).ok_or_else(bad)?;
        let bytes = size.unsigned_abs();
        if !matches!(bytes, 1 | 2 | 4 | 8) {
            return Err(bad());
        }
        let bitshift = u8::try_from(64 - bytes * 8).map_err(|_| bad())?;
        let (kind, val_off, reg_off) = if let Some(c) = loc.strip_prefix('$') {
            (ArgKind::Const, parse_int(c).ok_or_else(bad)?, 0)
        } else if let Some(r) = loc.strip_prefix('%') {
            (ArgKind::Reg, 0, x86_64_reg(r).ok_or_else(bad)?)
        } else {
            let (off, rest) = loc.split_once('(').ok_or_else(bad)?;
            let reg = rest
                .strip_suffix(')')
                .and_then(|r| r.strip_prefix('%'))
                .filter(|r| !r.contains(','))
                .ok_or_else(bad)?;
            let off = if off.is_empty() {
                0
            } else {
                parse_int(off).ok_or_else(bad)?
            };
            (ArgKind::RegDeref, off, x86_64_reg(reg).ok_or_else(bad)?)
        };
        out.push(ArgSpec {
            val_off: val_off as u64,
            kind,
            reg_off,
            signed: size < 0,
            bitshift,
        });
        if out.len() > MAX_ARGS {
            return Err(format!("more than {MAX_ARGS} USDT arguments in '{s}'"));
        }
    }
    Ok(out)
}

/// `struct __bpf_usdt_spec` (libbpf 1.1 layout, this machine's byte
/// order).
pub fn encode_spec(args: &[ArgSpec], usdt_cookie: u64) -> [u8; SPEC_SIZE] {
    let mut b = [0u8; SPEC_SIZE];
    for (a, d) in args.iter().zip(b.chunks_exact_mut(16)) {
        let kind: u32 = match a.kind {
            ArgKind::Const => 0,
            ArgKind::Reg => 1,
            ArgKind::RegDeref => 2,
        };
        d[..8].copy_from_slice(&a.val_off.to_ne_bytes());
        d[8..12].copy_from_slice(&kind.to_ne_bytes());
        d[12..14].copy_from_slice(&a.reg_off.to_ne_bytes());
        d[14] = u8::from(a.signed);
        d[15] = a.bitshift;
    }
    let n = MAX_ARGS * 16;
    b[n..n + 8].copy_from_slice(&usdt_cookie.to_ne_bytes());
    let cnt = i16::try_from(args.len().min(MAX_ARGS)).unwrap_or(0);
    b[n + 8..n + 10].copy_from_slice(&cnt.to_ne_bytes());
    b
}

/// Spec indexes in use, per specs map (by map id), so that attachments
/// of one object do not overwrite each other's specs.
static SPEC_IDS: Mutex<Vec<(u32, Vec<bool>)>> = Mutex::new(Vec::new());

fn take_ids(map_id: u32, n: usize, cap: usize) -> Option<Vec<u32>> {
    let mut all = SPEC_IDS.lock().unwrap_or_else(|p| p.into_inner());
    let used = match all.iter().position(|(m, _)| *m == map_id) {
        Some(i) => &mut all[i].1,
        None => {
            all.push((map_id, vec![false; cap]));
            &mut all.last_mut()?.1
        }
    };
    let free: Vec<usize> = used
        .iter()
        .enumerate()
        .filter(|(_, u)| !**u)
        .map(|(i, _)| i)
        .take(n)
        .collect();
    if free.len() < n {
        return None;
    }
    for &i in &free {
        used[i] = true;
    }
    free.into_iter().map(|i| u32::try_from(i).ok()).collect()
}

/// Releases spec indexes when the USDT link goes.
#[derive(Debug)]
struct SpecIds {
    map_id: u32,
    ids: Vec<u32>,
}

impl Detach for SpecIds {
    fn detach(&mut self) -> Result<(), K> {
        let mut all = SPEC_IDS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, used)) = all.iter_mut().find(|(m, _)| *m == self.map_id) {
            for &i in &self.ids {
                if let Some(u) = used.get_mut(i as usize) {
                    *u = false;
                }
            }
        }
        self.ids.clear();
        Ok(())
    }
}

/// What [`Ebpf::attach_usdt`] attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtTarget {
    /// As [`UprobeTarget::binary`].
    pub binary: String,
    /// Provider.
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Only this process (`None`: every process).
    pub pid: Option<u32>,
    /// What `bpf_usdt_cookie()` returns.
    pub usdt_cookie: u64,
}

impl Ebpf {
    /// [`Program::attach_usdt`] of the program named `program`.
    ///
    /// # Errors
    /// [`K::NotFound`] for a missing program; what
    /// [`Program::attach_usdt`] returns.
    pub fn attach_usdt(
        &self,
        program: &str,
        t: &UsdtTarget,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        self.program(program)
            .ok_or_else(|| {
                AttachError::new(
                    program,
                    t.to_string(),
                    K::NotFound(format!("program '{program}'")),
                )
            })?
            .attach_usdt(t, opts)
    }
}

impl fmt::Display for UsdtTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "usdt '{}:{}:{}'", self.binary, self.provider, self.name)?;
        if let Some(p) = self.pid {
            write!(f, " (pid {p})")?;
        }
        Ok(())
    }
}

impl UsdtTarget {
    /// Parses libbpf's section form `binary:provider:name`.
    ///
    /// # Errors
    /// What is malformed.
    pub fn parse(spec: &str) -> Result<UsdtTarget, String> {
        let mut it = spec.rsplitn(3, ':');
        match (it.next(), it.next(), it.next()) {
            (Some(name), Some(provider), Some(binary))
                if !name.is_empty() && !provider.is_empty() && !binary.is_empty() =>
            {
                Ok(UsdtTarget {
                    binary: binary.into(),
                    provider: provider.into(),
                    name: name.into(),
                    pid: None,
                    usdt_cookie: 0,
                })
            }
            _ => Err(format!("'{spec}' is not binary:provider:name")),
        }
    }
}

/// The kernel's name for [`SPECS_MAP`] (cut to `BPF_OBJ_NAME_LEN - 1`).
const SPECS_KERNEL_NAME: &str = "__bpf_usdt_spec";

impl Program {
    /// The `__bpf_usdt_specs` map this program uses, found among the maps
    /// the kernel says it references.
    fn usdt_specs(&self) -> Result<Map, K> {
        let mut ids = [MapId(0); 64];
        let n = ember_sys::prog_map_ids(self.fd(), &mut ids).map_err(K::Sys)?;
        for id in ids.iter().take(n as usize) {
            let Ok(fd) = ember_sys::get_fd_by_id(*id, 0) else {
                continue;
            };
            let Ok(info) = ember_sys::map_info(fd.as_fd()) else {
                continue;
            };
            if info.name() == SPECS_KERNEL_NAME {
                if info.value_size as usize != SPEC_SIZE {
                    return Err(K::WrongType(format!(
                        "{SPECS_MAP} holds {}-byte values; ember writes libbpf 1.1's \
                         {SPEC_SIZE}-byte spec",
                        info.value_size
                    )));
                }
                return Map::from_fd(SPECS_MAP.into(), fd, true)
                    .map_err(|e| K::Unsupported(e.to_string()));
            }
        }
        Err(K::NotFound(format!(
            "map '{SPECS_MAP}' among the program's maps (include usdt.bpf.h and read the \
             arguments)"
        )))
    }

    /// Attaches this program to every site of USDT probe `provider:name`
    /// of the binary: a uprobe per site (with its semaphore), each
    /// carrying as cookie the index of its argument spec in the
    /// program's `__bpf_usdt_specs` map.
    ///
    /// # Errors
    /// [`K::NotFound`] for a missing binary or probe, or a program that
    /// uses no `__bpf_usdt_specs`; [`K::BadTarget`] for argument locations
    /// ember cannot describe; [`K::Unsupported`] without perf-event links
    /// (cookies) or with [`AttachMode::Legacy`]; what
    /// [`Program::attach_uprobe`] returns.
    pub fn attach_usdt(&self, t: &UsdtTarget, opts: AttachOpts) -> Result<Link, AttachError> {
        let target = t.to_string();
        let err = |k| self.attach_err(&target, k);
        if opts.mode == AttachMode::Legacy || !probe::perf_link() {
            return Err(err(K::Unsupported(
                "USDT specs are found by attach cookie, which needs perf-event links".into(),
            )));
        }
        let specs = self.usdt_specs().map_err(err)?;
        let path = libpath::resolve(&t.binary, t.pid).map_err(|w| err(K::NotFound(w)))?;
        let data = std::fs::read(&path).map_err(|source| {
            err(K::Io {
                path: path.clone(),
                source,
            })
        })?;
        let found = sites(&data, &t.provider, &t.name)
            .map_err(|w| err(K::BadTarget(format!("{}: {w}", path.display()))))?;
        if found.is_empty() {
            return Err(err(K::NotFound(format!(
                "USDT probe {}:{} in {}",
                t.provider,
                t.name,
                path.display()
            ))));
        }
        let encoded: Vec<[u8; SPEC_SIZE]> = found
            .iter()
            .map(|s| {
                parse_args(&s.args)
                    .map(|a| encode_spec(&a, t.usdt_cookie))
                    .map_err(|w| err(K::BadTarget(w)))
            })
            .collect::<Result<_, _>>()?;
        let map_id = ember_sys::map_info(specs.fd())
            .map(|i| i.id.0)
            .map_err(|e| err(K::Sys(e)))?;
        let ids = take_ids(map_id, found.len(), specs.max_entries() as usize).ok_or_else(|| {
            err(K::Unsupported(format!(
                "{SPECS_MAP} has no {} free specs left",
                found.len()
            )))
        })?;
        // Released when the group drops (also on an error below): last,
        // after every uprobe is gone.
        let release = Link::new(
            self.name(),
            target.clone(),
            Mechanism::PerfEventLink,
            Inner::Custom(Box::new(SpecIds {
                map_id,
                ids: ids.clone(),
            })),
        );
        let mut links = Vec::with_capacity(found.len() + 1);
        for ((site, spec), id) in found.iter().zip(&encoded).zip(&ids) {
            specs
                .update(&id.to_ne_bytes(), spec, 0)
                .map_err(|e| err(K::Unsupported(format!("writing {SPECS_MAP}: {e}"))))?;
            let u = UprobeTarget::offset(path.to_string_lossy(), site.offset)
                .pid(t.pid)
                .ref_ctr_offset(site.semaphore);
            let link = self
                .attach_uprobe(
                    &u,
                    AttachOpts {
                        cookie: u64::from(*id),
                        ..opts
                    },
                )
                .map_err(|e| err(e.kind))?;
            links.push(link);
        }
        links.push(release);
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::PerfEventLink,
            Inner::Group(links),
        ))
    }

    /// Whether the program's section is `usdt` or `usdt.s`.
    pub(crate) fn is_usdt(&self) -> bool {
        ember_core::object::section::lookup(self.section())
            .is_some_and(|d| matches!(d.pattern.trim_end_matches(['+', '/']), "usdt" | "usdt.s"))
    }

    /// [`Program::attach_to`]'s arm for USDT programs:
    /// `binary:provider:name`.
    pub(crate) fn attach_usdt_text(
        &self,
        text: &str,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let t = UsdtTarget::parse(text)
            .map_err(|w| self.attach_err(format!("'{text}'"), K::BadTarget(w)))?;
        self.attach_usdt(&t, opts)
    }

    /// The auto-attach arm for `usdt[.s]/binary:provider:name` sections.
    pub(crate) fn attach_usdt_section(
        &self,
        sec: &str,
        rest: Option<&str>,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let label = format!("section '{sec}'");
        let rest = rest.ok_or_else(|| self.attach_err(&label, K::NoTarget))?;
        let t = UsdtTarget::parse(rest).map_err(|w| self.attach_err(&label, K::BadTarget(w)))?;
        self.attach_usdt(&t, opts)
    }
}

#[cfg(test)]
mod tests;
