//! [`Object::parse`], in named phases:
//!
//! 1. [`sections`](Object::read_sections): code, global data, `license`,
//!    `version`, and where `.maps`/`maps` are;
//! 2. [`symbols`](Object::read_symbols): functions (programs and
//!    subprograms) and data symbols;
//! 3. [`externs`]: undefined symbols typed from
//!    `.ksyms`/`.kconfig` BTF (`externs.rs`);
//! 4. [`maps`](Object::read_maps): BTF-defined, legacy, internal, then the
//!    `.maps` slot initializers;
//! 5. [`relocations`](Object::read_relocs) of each code section
//!    (`relocs.rs`);
//! 6. [`.BTF.ext` func_info](Object::attach_func_info) onto functions;
//! 7. [struct_ops maps](Object::read_struct_ops) (`struct_ops.rs`).
//!
//! The invariants of a parsed object are listed on [`Object::parse`].

use alloc::borrow::Cow;
use alloc::vec::Vec;

use object::read::elf::{ElfFile64, ElfSection64, Sym as _};
use object::{
    Endianness, Object as _, ObjectSection as _, ObjectSymbol as _, SectionKind, SymbolKind,
    SymbolSection,
};

use super::btf_maps;
use super::error::{ObjectError, ObjectErrorKind};
use super::externs::{externs, kconfig_size};
use super::legacy_maps;
use super::maps::{Map, MapValues};
use super::{
    CodeSection, DataSection, DataSymbol, Function, Object, RelocTarget, is_data_section, section,
};
use crate::btf::{Btf, Kind};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind};
use crate::ext::BtfExt;
use crate::id::{CodeIndex, SectionIndex, SectionInsn};
use crate::insn::INSN_SIZE_U64;

/// The ELF reader this module works on.
pub(super) type Elf<'a> = ElfFile64<'a, Endianness, &'a [u8]>;

/// `Result` of a parse phase.
pub(super) type PResult<'a, T> = Result<T, ObjectError<'a>>;

/// An error in section `sec`.
#[cold]
pub(super) fn err<'a>(sec: &'a str, kind: ObjectErrorKind<'a>) -> ObjectError<'a> {
    ObjectError::new(Some(sec).filter(|s| !s.is_empty()), kind)
}

/// `v` as a `u32`, or [`ObjectErrorKind::TooLarge`] naming `what` in `sec`.
pub(super) fn fit<'a>(v: u64, sec: &'a str, what: &'static str) -> PResult<'a, u32> {
    u32::try_from(v).map_err(|_| err(sec, ObjectErrorKind::TooLarge { what, value: v }))
}

pub(super) fn try_push<'a, T>(v: &mut Vec<T>, x: T) -> PResult<'a, ()> {
    v.try_reserve(1)
        .map_err(|_| ObjectError::new(None, ObjectErrorKind::OutOfMemory))?;
    v.push(x);
    Ok(())
}

/// `STV_HIDDEN` or `STV_INTERNAL` in a symbol's `st_other`.
fn hidden(st_other: u8) -> bool {
    matches!(st_other & 3, 1 | 2)
}

fn file_offset<'a>(s: &ElfSection64<'a, '_, Endianness, &'a [u8]>) -> usize {
    s.file_range()
        .and_then(|(o, _)| usize::try_from(o).ok())
        .unwrap_or(0)
}

/// A section's bytes, or a malformed-ELF error naming it.
fn section_data<'a>(
    s: &ElfSection64<'a, '_, Endianness, &'a [u8]>,
    name: &'a str,
) -> PResult<'a, &'a [u8]> {
    s.data().map_err(|_| {
        err(
            name,
            ObjectErrorKind::Malformed(Error::new(
                ErrorKind::Elf("section data lies outside the file"),
                file_offset(s),
            )),
        )
    })
}

/// Where the map sections are, from phase 1.
#[derive(Default)]
struct MapSections {
    btf: Option<SectionIndex>,
    legacy: Option<SectionIndex>,
}

impl<'a> Object<'a> {
    /// Parses a BPF ELF object. `name` is the object name used for
    /// internal map names (libbpf uses the file name up to its first dot;
    /// see [`object_name`](super::object_name)).
    ///
    /// # Errors
    /// An [`ObjectError`] naming the section and the symbol, function or
    /// map at fault: a malformed ELF file, `.BTF` or `.BTF.ext`; a section
    /// or symbol not laid out in whole instructions; a static program; a
    /// map definition libbpf would not accept; an undefined symbol that is
    /// no extern; a relocation that refers to nothing this loader knows;
    /// BTF-defined maps or externs without `.BTF`.
    ///
    /// # Invariants
    /// - [`Object::functions`] is sorted by `(section, start, len)`, and the
    ///   functions of one section do not overlap (except empty symbols and
    ///   aliases sharing a start, which sort before the longest function
    ///   there);
    /// - each [`CodeSection::relocs`] is sorted by instruction;
    /// - every index in a [`RelocTarget`], [`Extern::refs`](super::Extern::refs) and
    ///   [`Map::init`] is in range;
    /// - instruction counts, section sizes and offsets fit `u32`.
    ///
    /// [`Object::check_invariants`] checks them (tests and fuzz targets).
    pub fn parse(data: &'a [u8], name: &str) -> PResult<'a, Object<'a>> {
        let elf = Elf::parse(data).map_err(|_| {
            ObjectError::from(Error::new(ErrorKind::Elf("not a 64-bit ELF object"), 0))
        })?;
        let endian = if elf.is_little_endian() {
            Endian::Little
        } else {
            Endian::Big
        };
        let mut obj = Object {
            endian,
            btf: btf_section(&elf, ".BTF", Btf::parse)?,
            btf_ext: btf_section(&elf, ".BTF.ext", BtfExt::parse)?,
            license: None,
            kern_version: None,
            code: Vec::new(),
            functions: Vec::new(),
            maps: Vec::new(),
            data: Vec::new(),
            externs: Vec::new(),
            sections: Vec::new(),
            data_symbols: Vec::new(),
            struct_ops: Vec::new(),
        };
        let map_secs = obj.read_sections(&elf)?;
        obj.read_symbols(&elf)?;
        let (externs, unknown) = externs(&elf, obj.btf.as_ref())?;
        obj.externs = externs;
        obj.read_maps(&elf, &map_secs, name)?;
        // An unknown extern that code refers to is reported with where.
        obj.read_relocs(&elf)?;
        if let Some(name) = unknown {
            return Err(ObjectError::new(
                None,
                ObjectErrorKind::BadExtern { name, insn: None },
            ));
        }
        obj.attach_func_info();
        obj.read_struct_ops(&elf)?;
        Ok(obj)
    }

    /// Phase 1: code and data sections, `license`, `version`, and the map
    /// sections.
    fn read_sections(&mut self, elf: &Elf<'a>) -> PResult<'a, MapSections> {
        let mut map_secs = MapSections::default();
        for s in elf.sections() {
            let sname = s.name().unwrap_or("");
            let idx = SectionIndex(s.index().0);
            let sh_flags = match s.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags,
                _ => 0,
            };
            let is_exec = sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0;
            let is_alloc = sh_flags & u64::from(object::elf::SHF_ALLOC) != 0;
            if !is_exec && (is_alloc || sname == "license" || sname == "version") {
                let size = fit(s.size(), sname, "section size")?;
                try_push(&mut self.sections, (sname, size))?;
            }
            if is_exec && s.size() > 0 {
                let bytes = section_data(&s, sname)?;
                let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                if !len.is_multiple_of(INSN_SIZE_U64) {
                    return Err(err(sname, ObjectErrorKind::CodeSize { size: len }));
                }
                // The instruction count fits u32 (CodeSection::insn_count).
                fit(len / INSN_SIZE_U64, sname, "instruction count")?;
                try_push(
                    &mut self.code,
                    CodeSection {
                        index: idx,
                        name: sname,
                        bytes,
                        relocs: Vec::new(),
                    },
                )?;
            } else if sname == "license" {
                let b = s.data().unwrap_or(&[]);
                let b = b.split(|&c| c == 0).next().unwrap_or(&[]);
                self.license = core::str::from_utf8(b).ok();
            } else if sname == "version" {
                let b = s.data().unwrap_or(&[]);
                self.kern_version = crate::bytes::u32_at(b, 0, self.endian);
            } else if sname == ".maps" {
                map_secs.btf = Some(idx);
            } else if sname == "maps" {
                map_secs.legacy = Some(idx);
            } else if sname == ".addr_space.1" && s.size() > 0 {
                // libbpf copies it into the arena map (arena_data); refuse
                // it rather than load programs whose globals are missing.
                return Err(err(
                    sname,
                    ObjectErrorKind::Unsupported {
                        what: "global data in a BPF arena (__arena variables)",
                    },
                ));
            } else if is_data_section(sname) && s.size() > 0 {
                let init = if s.kind() == SectionKind::UninitializedData {
                    None
                } else {
                    Some(section_data(&s, sname)?)
                };
                let datasec = self
                    .btf
                    .as_ref()
                    .and_then(|b| b.find_by_name_kind(sname, Kind::Datasec));
                try_push(
                    &mut self.data,
                    DataSection {
                        name: sname,
                        index: idx,
                        init,
                        size: fit(s.size(), sname, "section size")?,
                        datasec,
                    },
                )?;
            }
        }
        Ok(map_secs)
    }

    /// Phase 2: functions from text symbols (sorted by section, then
    /// start; checked not to overlap), and data symbols for DATASEC
    /// offsets.
    fn read_symbols(&mut self, elf: &Elf<'a>) -> PResult<'a, ()> {
        for sym in elf.symbols() {
            if sym.kind() == SymbolKind::Data {
                if let SymbolSection::Section(si) = sym.section() {
                    if let Ok(sec) = elf.section_by_index(si) {
                        let section = sec.name().unwrap_or("");
                        try_push(
                            &mut self.data_symbols,
                            DataSymbol {
                                section,
                                name: sym.name().unwrap_or(""),
                                offset: fit(sym.address(), section, "symbol offset")?,
                                size: fit(sym.size(), section, "symbol size")?,
                                hidden: hidden(sym.elf_symbol().st_other()),
                            },
                        )?;
                    }
                }
                continue;
            }
            if sym.kind() != SymbolKind::Text {
                continue;
            }
            let SymbolSection::Section(si) = sym.section() else {
                continue;
            };
            let Some(ci) = self.code_index(SectionIndex(si.0)) else {
                continue;
            };
            let Some(code) = self.code_section(ci) else {
                continue;
            };
            let name = sym.name().unwrap_or("");
            let (addr, size) = (sym.address(), sym.size());
            let bad = || {
                err(
                    code.name,
                    ObjectErrorKind::BadFunction {
                        name,
                        offset: addr,
                        size,
                    },
                )
            };
            let code_len = u64::try_from(code.bytes.len()).unwrap_or(u64::MAX);
            if !size.is_multiple_of(INSN_SIZE_U64) || addr.saturating_add(size) > code_len {
                return Err(bad());
            }
            let start = SectionInsn::from_elf_offset(addr).ok_or_else(bad)?;
            // In range of a section whose instruction count fits u32.
            let len = u32::try_from(size / INSN_SIZE_U64).map_err(|_| bad())?;
            let is_text = code.name == ".text";
            let global = sym.is_global() || sym.is_weak();
            if !is_text && !global {
                return Err(err(code.name, ObjectErrorKind::StaticProgram { name }));
            }
            let sec_def = if is_text {
                None
            } else {
                section::lookup(code.name)
            };
            let f = Function {
                name,
                section: ci,
                start,
                len,
                global,
                weak: sym.is_weak(),
                hidden: hidden(sym.elf_symbol().st_other()),
                is_program: !is_text,
                sec_def,
                attach_target: sec_def.and_then(|d| section::attach_target(d, code.name)),
                btf_func: None,
            };
            try_push(&mut self.functions, f)?;
        }
        // Zero-length symbols and aliases sort before the longest function
        // at their start, which Object::locate finds.
        crate::order::sort_by_key(&mut self.functions, |f| (f.section, f.start, f.len));
        // Otherwise functions of one section must not overlap:
        // Object::locate relies on it.
        for w in self.functions.windows(2) {
            if let [a, b] = w {
                if a.section == b.section && !disjoint_or_alias(a, b) {
                    let sec = self.code_section(b.section).map_or("", |c| c.name);
                    return Err(err(
                        sec,
                        ObjectErrorKind::BadFunction {
                            name: b.name,
                            offset: b.start.byte_offset() as u64,
                            size: u64::from(b.len).saturating_mul(INSN_SIZE_U64),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// Phase 4: BTF-defined, legacy, then internal maps, and the `.maps`
    /// slot initializers.
    fn read_maps(&mut self, elf: &Elf<'a>, secs: &MapSections, name: &str) -> PResult<'a, ()> {
        let mut starts = Vec::new();
        if let Some(ms) = secs.btf {
            let btf = self.btf.as_ref().ok_or(ObjectError::new(
                Some(".maps"),
                ObjectErrorKind::MissingBtf {
                    needed_by: "BTF-defined maps",
                    name: "",
                },
            ))?;
            starts = btf_maps::btf_maps(elf, ms, btf, &mut self.maps)?;
        }
        if let Some(ls) = secs.legacy {
            legacy_maps::legacy_maps(elf, ls, self.endian, &mut self.maps)?;
        }
        for (i, d) in self.data.iter().enumerate() {
            try_push(&mut self.maps, Map::internal(name, d, i, self.btf.as_ref()))?;
        }
        if let Some(size) = kconfig_size(&self.externs) {
            // Described by its DATASEC, as libbpf does (sized to match when
            // the BTF goes to the kernel).
            let ds = self
                .btf
                .as_ref()
                .and_then(|b| b.find_by_name_kind(".kconfig", Kind::Datasec));
            let m = Map::kconfig(name, size, self.btf.as_ref(), ds);
            try_push(&mut self.maps, m)?;
        }
        if let Some(ms) = secs.btf {
            btf_maps::link_initializers(elf, ms, &starts, &mut self.maps, &self.functions)?;
        }
        Ok(())
    }

    /// Phase 6: each function's BTF FUNC from `.BTF.ext` func_info.
    fn attach_func_info(&mut self) {
        let (Some(ext), Some(btf)) = (self.btf_ext, self.btf.as_ref()) else {
            return;
        };
        for block in ext.func_info() {
            let Ok(sec) = btf.str_at(block.sec_name_off) else {
                continue;
            };
            let Some(ci) = self.code.iter().position(|c| c.name == sec) else {
                continue;
            };
            for r in block.records() {
                let Some(insn) = SectionInsn::from_byte_offset(r.insn_off) else {
                    continue;
                };
                if let Some(f) = self.function_starting_at(CodeIndex(ci), insn) {
                    if let Some(f) = self.functions.get_mut(f.index()) {
                        f.btf_func = Some(r.type_id);
                    }
                }
            }
        }
    }

    /// Checks the invariants listed on [`Object::parse`]: functions
    /// sorted and non-overlapping, relocations sorted, indices in range.
    pub fn check_invariants(&self) -> bool {
        let funcs_ok = self.functions.windows(2).all(|w| match w {
            [a, b] => {
                (a.section, a.start, a.len) <= (b.section, b.start, b.len)
                    && (a.section < b.section || disjoint_or_alias(a, b))
            }
            _ => true,
        });
        let in_code = self.functions.iter().all(|f| {
            self.code_section(f.section)
                .is_some_and(|c| f.end().0 <= c.insn_count())
        });
        let relocs_ok = self.code.iter().all(|c| {
            c.relocs.windows(2).all(|w| match w {
                [a, b] => a.insn <= b.insn,
                _ => true,
            }) && c.relocs.iter().all(|r| {
                r.insn.0 < c.insn_count()
                    && match r.target {
                        RelocTarget::Function(f) => f.index() < self.functions.len(),
                        RelocTarget::Map(m) | RelocTarget::Data { map: m, .. } => {
                            m.index() < self.maps.len()
                        }
                        RelocTarget::Extern(x) => x.index() < self.externs.len(),
                    }
            })
        });
        let refs_ok = self.externs.iter().all(|x| {
            x.refs
                .iter()
                .all(|&(ci, i)| self.code_section(ci).is_some_and(|c| i.0 < c.insn_count()))
        });
        let init_ok = self.maps.iter().all(|m| {
            m.init.iter().all(|&(_, v)| match v {
                MapValues::Map(t) => t.index() < self.maps.len(),
                MapValues::Program(f) => f.index() < self.functions.len(),
            })
        });
        let struct_ops_ok = self.struct_ops.iter().all(|m| {
            m.progs
                .iter()
                .all(|p| p.func.index() < self.functions.len())
        });
        funcs_ok && in_code && relocs_ok && refs_ok && init_ok && struct_ops_ok
    }
}

/// Whether `b`, sorted after `a` in the same section, starts after `a`
/// ends, or `a` is empty or an alias of `b`'s start.
fn disjoint_or_alias(a: &Function<'_>, b: &Function<'_>) -> bool {
    a.end() <= b.start || a.len == 0 || a.start == b.start
}

/// A `.BTF`/`.BTF.ext` section parsed by `parse`, errors moved to file
/// offsets and named after the section.
fn btf_section<'a, T>(
    elf: &Elf<'a>,
    name: &'static str,
    parse: impl Fn(&'a [u8]) -> crate::error::Result<T>,
) -> PResult<'a, Option<T>> {
    let Some(s) = elf.section_by_name(name) else {
        return Ok(None);
    };
    let d = section_data(&s, name)?;
    parse(d)
        .map(Some)
        .map_err(|x| err(name, x.with_base(file_offset(&s)).into()))
}

/// A map name borrowed from the input, for errors (internal maps have
/// owned names and are never at fault in a definition).
pub(super) fn borrowed<'a>(name: &Cow<'a, str>) -> &'a str {
    match name {
        Cow::Borrowed(s) => s,
        Cow::Owned(_) => "",
    }
}
