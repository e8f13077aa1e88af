//! The BPF ELF object: programs and subprograms, maps, global data,
//! externs, relocations and `.BTF.ext` records, read with the `object`
//! crate's zero-copy ELF reader.
//!
//! [`Object::parse`] borrows everything from the file's bytes; only the
//! tables (functions, maps, relocations) are allocated, each bounded by the
//! number of symbols or relocation entries in the file.

mod kinds;
pub mod maps;
pub mod section;

use alloc::vec::Vec;

use object::read::elf::{ElfFile64, Sym as _};
use object::{
    Endianness, Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags,
    RelocationTarget, SectionIndex, SectionKind, SymbolIndex, SymbolKind, SymbolSection,
};

pub use self::kinds::{AttachType, MapType, ProgType};
pub use self::maps::{Map, MapKind, MapValues, Pinning};
pub use self::section::SecDef;
use crate::btf::{Btf, Kind, TypeId};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};
use crate::ext::BtfExt;
use crate::insn::{self, INSN_SIZE, INSN_SIZE_I64, INSN_SIZE_U32, INSN_SIZE_U64, Insn};

/// `R_BPF_64_64`: an LD_IMM64 of a map, data or extern address.
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_ABS64`: data pointing at data (map-in-map initializers).
pub const R_BPF_64_ABS64: u32 = 2;
/// `R_BPF_64_ABS32`: 32-bit data pointer (DWARF, `.BTF`), ignored.
pub const R_BPF_64_ABS32: u32 = 3;
/// `R_BPF_64_NODYLD32`: `.BTF`/`.BTF.ext` offsets, ignored.
pub const R_BPF_64_NODYLD32: u32 = 4;
/// `R_BPF_64_32`: a call to a BPF function.
pub const R_BPF_64_32: u32 = 10;

/// An executable section and what relocates its instructions.
#[derive(Debug, Clone)]
pub struct CodeSection<'a> {
    /// ELF section index.
    pub index: usize,
    /// Section name (`kprobe/do_unlinkat`, `.text`).
    pub name: &'a str,
    /// The raw instruction bytes.
    pub bytes: &'a [u8],
    /// Relocations, by instruction index within the section.
    pub relocs: Vec<Reloc>,
}

impl CodeSection<'_> {
    /// Number of instruction slots.
    pub fn insn_count(&self) -> u32 {
        (self.bytes.len() / INSN_SIZE) as u32
    }
}

/// What one relocated instruction refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocTarget {
    /// A call to, or the address of, a function: index into
    /// [`Object::functions`].
    Function(usize),
    /// A map: index into [`Object::maps`].
    Map(usize),
    /// A byte inside a global-data map.
    Data {
        /// Index into [`Object::maps`] (an internal map).
        map: usize,
        /// Byte offset inside the section.
        offset: u32,
    },
    /// An extern: index into [`Object::externs`].
    Extern(usize),
}

/// One relocated instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    /// Instruction index within its section.
    pub insn: u32,
    /// What it refers to.
    pub target: RelocTarget,
}

/// A BPF function: an entry program, or a subprogram in `.text`.
#[derive(Debug, Clone)]
pub struct Function<'a> {
    /// Symbol name.
    pub name: &'a str,
    /// Index into [`Object::code`].
    pub section: usize,
    /// First instruction within the section.
    pub start: u32,
    /// Number of instruction slots.
    pub len: u32,
    /// Global (or weak) binding; static functions are subprograms only.
    pub global: bool,
    /// Weak binding.
    pub weak: bool,
    /// Hidden or internal visibility (`__hidden`): global to the linker,
    /// but verified as a static function, as libbpf does.
    pub hidden: bool,
    /// Whether this is a program (a function outside `.text`).
    pub is_program: bool,
    /// For programs: what the section name means, `None` when libbpf's
    /// conventions do not know the name.
    pub sec_def: Option<&'static SecDef>,
    /// For programs: the attach target spelled in the section name.
    pub attach_target: Option<&'a str>,
    /// The function's BTF FUNC, from `.BTF.ext` func_info.
    pub btf_func: Option<TypeId>,
}

/// A global-data section backing an internal map.
#[derive(Debug, Clone)]
pub struct DataSection<'a> {
    /// Section name (`.data`, `.rodata.str1.1`, `.bss`).
    pub name: &'a str,
    /// ELF section index.
    pub index: usize,
    /// Initial bytes (`None` for `.bss`, which is zero-filled).
    pub init: Option<&'a [u8]>,
    /// Section size.
    pub size: u32,
    /// The DATASEC describing its variables, when BTF has one.
    pub datasec: Option<TypeId>,
}

/// The kind of an extern symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    /// A `.kconfig` value (`CONFIG_*`, `LINUX_KERNEL_VERSION`), placed at
    /// `offset` in the `.kconfig` map.
    Kconfig {
        /// Byte offset in the `.kconfig` map.
        offset: u32,
        /// Size in bytes.
        size: u32,
    },
    /// A kernel function or kfunc (`.ksyms` FUNC).
    Kfunc,
    /// A typed kernel variable (`.ksyms` VAR of a real type).
    TypedVar,
    /// An untyped kernel variable (`.ksyms` VAR of `void`), resolved from
    /// kallsyms.
    UntypedVar,
}

/// An extern symbol the loader must resolve.
#[derive(Debug, Clone)]
pub struct Extern<'a> {
    /// Symbol name (may carry a `___flavor`).
    pub name: &'a str,
    /// What it is.
    pub kind: ExternKind,
    /// Weak: resolves to zero (or a poisoned call) when absent.
    pub weak: bool,
    /// Its BTF VAR or FUNC.
    pub btf_id: TypeId,
    /// Every instruction that refers to it: (index into
    /// [`Object::code`], instruction index).
    pub refs: Vec<(usize, u32)>,
}

/// A parsed BPF object.
#[derive(Debug)]
pub struct Object<'a> {
    /// Byte order of the object.
    pub endian: Endian,
    /// The object's `.BTF`.
    pub btf: Option<Btf<'a>>,
    /// The object's `.BTF.ext`.
    pub btf_ext: Option<BtfExt<'a>>,
    /// `SEC("license")`.
    pub license: Option<&'a str>,
    /// `SEC("version")`.
    pub kern_version: Option<u32>,
    /// Executable sections.
    pub code: Vec<CodeSection<'a>>,
    /// Programs and subprograms, by section then offset.
    pub functions: Vec<Function<'a>>,
    /// Maps: BTF-defined, legacy, then internal ones in section order.
    pub maps: Vec<Map<'a>>,
    /// Global-data sections.
    pub data: Vec<DataSection<'a>>,
    /// Externs, in libbpf's order (kconfig by alignment, then ksyms by name).
    pub externs: Vec<Extern<'a>>,
    /// Allocated non-code sections (name, size): what DATASEC sizes are
    /// fixed up from before the BTF goes to the kernel.
    pub sections: Vec<(&'a str, u32)>,
    /// Defined data symbols (section name, symbol name, offset): what
    /// DATASEC variable offsets are fixed up from.
    pub data_symbols: Vec<DataSymbol<'a>>,
}

/// `STV_HIDDEN` or `STV_INTERNAL` in a symbol's `st_other`.
fn hidden(st_other: u8) -> bool {
    matches!(st_other & 3, 1 | 2)
}

/// A defined variable symbol in a data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSymbol<'a> {
    /// The section holding it.
    pub section: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its offset in the section.
    pub offset: u32,
    /// Hidden or internal visibility: its VAR is given static linkage.
    pub hidden: bool,
}

fn e(kind: ErrorKind, at: usize) -> Error {
    Error::new(kind, at)
}

/// Object-name prefix libbpf gives internal maps: the file name up to its
/// first dot.
pub fn object_name(file_name: &str) -> &str {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    base.split('.').next().unwrap_or(base)
}

impl<'a> Object<'a> {
    /// Parses a BPF ELF object. `name` is the object name used for
    /// internal map names (libbpf uses the file name up to its first dot;
    /// see [`object_name`]).
    ///
    /// # Errors
    /// A malformed ELF file, `.BTF` or `.BTF.ext`; a section or symbol not
    /// laid out in whole instructions; a relocation this loader does not
    /// understand; BTF-defined maps or externs without `.BTF`.
    pub fn parse(data: &'a [u8], name: &str) -> Result<Object<'a>> {
        let elf = ElfFile64::<Endianness, &'a [u8]>::parse(data)
            .map_err(|_| e(ErrorKind::Elf("not a 64-bit ELF object"), 0))?;
        let endian = if elf.is_little_endian() {
            Endian::Little
        } else {
            Endian::Big
        };
        let sec_at = |s: &object::read::elf::ElfSection64<'a, '_, Endianness, &'a [u8]>| {
            s.file_range().map_or(0, |(o, _)| o as usize)
        };
        let btf = match elf.section_by_name(".BTF") {
            Some(s) => {
                let d = s
                    .data()
                    .map_err(|_| e(ErrorKind::Elf("bad .BTF"), sec_at(&s)))?;
                // Errors inside the section are reported at file offsets.
                Some(Btf::parse(d).map_err(|x| x.with_base(sec_at(&s)))?)
            }
            None => None,
        };
        let btf_ext = match elf.section_by_name(".BTF.ext") {
            Some(s) => {
                let d = s
                    .data()
                    .map_err(|_| e(ErrorKind::Elf("bad .BTF.ext"), sec_at(&s)))?;
                Some(BtfExt::parse(d).map_err(|x| x.with_base(sec_at(&s)))?)
            }
            None => None,
        };
        let mut obj = Object {
            endian,
            btf,
            btf_ext,
            license: None,
            kern_version: None,
            code: Vec::new(),
            functions: Vec::new(),
            maps: Vec::new(),
            data: Vec::new(),
            externs: Vec::new(),
            sections: Vec::new(),
            data_symbols: Vec::new(),
        };

        // Sections: code, data, license/version.
        let mut legacy_maps = None;
        let mut maps_sec = None;
        let mut kconfig_sec = None;
        for s in elf.sections() {
            let sname = s.name().unwrap_or("");
            let at = sec_at(&s);
            let idx = s.index().0;
            let is_exec = matches!(s.flags(), object::SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0);
            let is_alloc = matches!(s.flags(), object::SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0);
            if !is_exec && (is_alloc || sname == "license" || sname == "version") {
                try_push(&mut obj.sections, (sname, s.size() as u32))?;
            }
            if is_exec && s.size() > 0 {
                let bytes = s
                    .data()
                    .map_err(|_| e(ErrorKind::Elf("section data"), at))?;
                if bytes.len() % INSN_SIZE != 0 {
                    return Err(e(ErrorKind::BadCodeLayout(idx as u32), at));
                }
                try_push(
                    &mut obj.code,
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
                obj.license = core::str::from_utf8(b).ok();
            } else if sname == "version" {
                let b = s.data().unwrap_or(&[]);
                obj.kern_version = crate::bytes::u32_at(b, 0, endian);
            } else if sname == ".maps" {
                maps_sec = Some(idx);
            } else if sname == "maps" {
                legacy_maps = Some(idx);
            } else if sname == ".kconfig" {
                kconfig_sec = Some(idx);
            } else if is_data_section(sname) && s.size() > 0 {
                let nobits = s.kind() == SectionKind::UninitializedData;
                let init = if nobits {
                    None
                } else {
                    Some(
                        s.data()
                            .map_err(|_| e(ErrorKind::Elf("section data"), at))?,
                    )
                };
                let datasec = obj
                    .btf
                    .as_ref()
                    .and_then(|b| b.find_by_name_kind(sname, Kind::Datasec));
                try_push(
                    &mut obj.data,
                    DataSection {
                        name: sname,
                        index: idx,
                        init,
                        size: s.size() as u32,
                        datasec,
                    },
                )?;
            }
        }
        let _ = kconfig_sec;

        // Functions from symbols; data symbols for DATASEC offsets.
        for sym in elf.symbols() {
            if sym.kind() == SymbolKind::Data {
                if let SymbolSection::Section(si) = sym.section() {
                    if let Ok(sec) = elf.section_by_index(si) {
                        try_push(
                            &mut obj.data_symbols,
                            DataSymbol {
                                section: sec.name().unwrap_or(""),
                                name: sym.name().unwrap_or(""),
                                offset: sym.address() as u32,
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
            let SymbolSection::Section(SectionIndex(si)) = sym.section() else {
                continue;
            };
            let Some(ci) = obj.code.iter().position(|c| c.index == si) else {
                continue;
            };
            let sname = sym.name().unwrap_or("");
            let addr = sym.address();
            let size = sym.size();
            let code = obj
                .code
                .get(ci)
                .ok_or(e(ErrorKind::BadCodeLayout(si as u32), 0))?;
            if !addr.is_multiple_of(INSN_SIZE_U64)
                || !size.is_multiple_of(INSN_SIZE_U64)
                || addr.saturating_add(size) > code.bytes.len() as u64
            {
                return Err(e(ErrorKind::BadCodeLayout(sym.index().0 as u32), 0));
            }
            let is_text = code.name == ".text";
            let global = sym.is_global() || sym.is_weak();
            if !is_text && !global {
                return Err(e(ErrorKind::StaticProgram(sym.index().0 as u32), 0));
            }
            let sec_def = if is_text {
                None
            } else {
                section::lookup(code.name)
            };
            try_push(
                &mut obj.functions,
                Function {
                    name: sname,
                    section: ci,
                    start: (addr / INSN_SIZE_U64) as u32,
                    len: (size / INSN_SIZE_U64) as u32,
                    global,
                    weak: sym.is_weak(),
                    hidden: hidden(sym.elf_symbol().st_other()),
                    is_program: !is_text,
                    sec_def,
                    attach_target: sec_def.and_then(|d| section::attach_target(d, code.name)),
                    btf_func: None,
                },
            )?;
        }
        obj.functions.sort_by_key(|f| (f.section, f.start));

        // Maps: BTF-defined, legacy, internal.
        if let Some(ms) = maps_sec {
            let btf = obj.btf.as_ref().ok_or(e(ErrorKind::MissingBtf, 0))?;
            maps::btf_maps(&elf, ms, btf, &mut obj.maps)?;
        }
        if let Some(ls) = legacy_maps {
            maps::legacy_maps(&elf, ls, endian, &mut obj.maps)?;
        }
        obj.externs = externs(&elf, obj.btf.as_ref())?;
        for (i, d) in obj.data.iter().enumerate() {
            try_push(&mut obj.maps, Map::internal(name, d, i))?;
        }
        if let Some(size) = kconfig_size(&obj.externs) {
            let mut m = Map::kconfig(name, size);
            // Described by its DATASEC, as libbpf does (sized to match when
            // the BTF goes to the kernel).
            m.btf_id = obj
                .btf
                .as_ref()
                .and_then(|b| b.find_by_name_kind(".kconfig", Kind::Datasec));
            try_push(&mut obj.maps, m)?;
        }
        maps::link_inner_and_initializers(
            &elf,
            maps_sec,
            &mut obj.maps,
            &obj.functions,
            &obj.code,
        )?;

        obj.collect_relocs(&elf)?;
        obj.attach_func_info();
        Ok(obj)
    }

    /// Resolves each code section's relocations.
    fn collect_relocs(&mut self, elf: &ElfFile64<'a, Endianness, &'a [u8]>) -> Result<()> {
        for ci in 0..self.code.len() {
            let Some(code) = self.code.get(ci) else {
                continue;
            };
            let Ok(sec) = elf.section_by_index(SectionIndex(code.index)) else {
                continue;
            };
            let mut relocs = Vec::new();
            for (off, r) in sec.relocations() {
                let RelocationFlags::Elf { r_type } = r.flags() else {
                    continue;
                };
                if matches!(r_type, R_BPF_64_ABS32 | R_BPF_64_NODYLD32) {
                    continue;
                }
                if !off.is_multiple_of(INSN_SIZE_U64) || off >= code.bytes.len() as u64 {
                    return Err(e(ErrorKind::BadInsnOffset(off as u32), 0));
                }
                let insn_idx = (off / INSN_SIZE_U64) as u32;
                let RelocationTarget::Symbol(si) = r.target() else {
                    return Err(e(ErrorKind::UnsupportedReloc(r_type), 0));
                };
                let target = self.reloc_target(elf, si, ci, insn_idx, r_type)?;
                try_push(
                    &mut relocs,
                    Reloc {
                        insn: insn_idx,
                        target,
                    },
                )?;
            }
            // Sorted by instruction, so a function's relocations are one run.
            relocs.sort_by_key(|r| r.insn);
            for rl in &relocs {
                if let RelocTarget::Extern(x) = rl.target {
                    if let Some(ext) = self.externs.get_mut(x) {
                        try_push(&mut ext.refs, (ci, rl.insn))?;
                    }
                }
            }
            if let Some(c) = self.code.get_mut(ci) {
                c.relocs = relocs;
            }
        }
        Ok(())
    }

    fn reloc_target(
        &self,
        elf: &ElfFile64<'a, Endianness, &'a [u8]>,
        si: SymbolIndex,
        ci: usize,
        insn_idx: u32,
        r_type: u32,
    ) -> Result<RelocTarget> {
        let sym = elf
            .symbol_by_index(si)
            .map_err(|_| e(ErrorKind::BadCodeLayout(si.0 as u32), 0))?;
        let name = sym.name().unwrap_or("");
        let code = self
            .code
            .get(ci)
            .ok_or(e(ErrorKind::BadCodeLayout(ci as u32), 0))?;
        let insn = code
            .bytes
            .get((insn_idx as usize).saturating_mul(INSN_SIZE)..)
            .and_then(|b| b.first_chunk::<8>())
            .map(|b| Insn::decode(*b, self.endian))
            .unwrap_or_default();
        if sym.is_undefined() {
            let x = self
                .externs
                .iter()
                .position(|x| x.name == name)
                .ok_or(e(ErrorKind::BadExtern(si.0 as u32), 0))?;
            return Ok(RelocTarget::Extern(x));
        }
        let SymbolSection::Section(SectionIndex(target_sec)) = sym.section() else {
            return Err(e(ErrorKind::UnsupportedReloc(r_type), 0));
        };
        // Calls and function addresses: into a code section.
        if let Some(tc) = self.code.iter().position(|c| c.index == target_sec) {
            // libbpf's rule: a call lands on symbol/8 + imm + 1 (a named
            // function carries imm -1, a section symbol the distance); an
            // address load on symbol/8 + imm/8.
            let base = (sym.address() / INSN_SIZE_U64) as i64;
            let target = if insn.code == insn::CALL {
                base.saturating_add(i64::from(insn.imm)).saturating_add(1)
            } else {
                base.saturating_add(i64::from(insn.imm) / INSN_SIZE_I64)
            };
            let f = self
                .functions
                .iter()
                .position(|f| f.section == tc && i64::from(f.start) == target)
                .ok_or(e(ErrorKind::BadCodeLayout(si.0 as u32), 0))?;
            return Ok(RelocTarget::Function(f));
        }
        if let Some(m) = self
            .maps
            .iter()
            .position(|m| m.section == Some(target_sec) && m.name == name && !m.kind.is_internal())
        {
            return Ok(RelocTarget::Map(m));
        }
        if let Some(m) = self
            .maps
            .iter()
            .position(|m| m.section == Some(target_sec) && m.kind.is_internal())
        {
            let offset = if sym.kind() == SymbolKind::Section {
                insn.imm as u32
            } else {
                (sym.address() as u32).wrapping_add(insn.imm as u32)
            };
            return Ok(RelocTarget::Data { map: m, offset });
        }
        Err(e(ErrorKind::UnsupportedReloc(r_type), 0))
    }

    /// Attaches each function's BTF FUNC from func_info.
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
                let insn = r.insn_off / INSN_SIZE_U32;
                if let Some(f) = self
                    .functions
                    .iter_mut()
                    .find(|f| f.section == ci && f.start == insn)
                {
                    f.btf_func = Some(r.type_id);
                }
            }
        }
    }

    /// The programs (functions outside `.text`).
    pub fn programs(&self) -> impl Iterator<Item = &Function<'a>> {
        self.functions.iter().filter(|f| f.is_program)
    }

    /// The instructions of a function.
    pub fn insns(&self, f: &Function<'a>) -> &'a [u8] {
        let Some(code) = self.code.get(f.section) else {
            return &[];
        };
        let start = (f.start as usize).saturating_mul(INSN_SIZE);
        let end = start.saturating_add((f.len as usize).saturating_mul(INSN_SIZE));
        code.bytes.get(start..end).unwrap_or(&[])
    }

    /// The function containing instruction `insn` of code section `section`.
    pub fn function_at(&self, section: usize, insn: u32) -> Option<&Function<'a>> {
        self.functions.iter().find(|f| {
            f.section == section && insn >= f.start && insn < f.start.saturating_add(f.len)
        })
    }

    /// Records of one `.BTF.ext` subsection resolved to functions: for each
    /// record, the index into [`Object::functions`] and the instruction
    /// index within that function.
    ///
    /// # Errors
    /// [`ErrorKind::BadInsnOffset`] for an offset that is not a multiple of
    /// 8 or lies in no function of its section.
    pub fn resolve<R: crate::ext::ExtRecord + InsnOff>(
        &self,
        blocks: crate::ext::Blocks<'a, R>,
    ) -> Result<Vec<(usize, u32, R)>> {
        let mut out = Vec::new();
        let Some(btf) = self.btf.as_ref() else {
            return Ok(out);
        };
        for block in blocks {
            let sec = btf.str_at(block.sec_name_off)?;
            let Some(ci) = self.code.iter().position(|c| c.name == sec) else {
                continue;
            };
            for r in block.records() {
                let off = r.insn_off();
                if !off.is_multiple_of(INSN_SIZE_U32) {
                    return Err(e(ErrorKind::BadInsnOffset(off), 0));
                }
                let insn = off / INSN_SIZE_U32;
                let fi = self
                    .functions
                    .iter()
                    .position(|f| {
                        f.section == ci && insn >= f.start && insn < f.start.saturating_add(f.len)
                    })
                    .ok_or(e(ErrorKind::BadInsnOffset(off), 0))?;
                let start = self.functions.get(fi).map_or(0, |f| f.start);
                try_push(&mut out, (fi, insn.saturating_sub(start), r))?;
            }
        }
        Ok(out)
    }

    /// Number of CO-RE relocations whose instruction lies in `f`.
    pub fn core_relo_count(&self, f: &Function<'a>) -> usize {
        let (Some(ext), Some(btf), Some(code)) =
            (self.btf_ext, self.btf.as_ref(), self.code.get(f.section))
        else {
            return 0;
        };
        ext.core_relos()
            .filter(|b| btf.str_at(b.sec_name_off).is_ok_and(|n| n == code.name))
            .flat_map(|b| b.records())
            .filter(|r| {
                let i = r.insn_off / INSN_SIZE_U32;
                i >= f.start && i < f.start.saturating_add(f.len)
            })
            .count()
    }
}

/// `.BTF.ext` records that point at an instruction.
pub trait InsnOff {
    /// Byte offset of the instruction in its ELF section.
    fn insn_off(&self) -> u32;
}

impl InsnOff for crate::ext::FuncInfo {
    fn insn_off(&self) -> u32 {
        self.insn_off
    }
}

impl InsnOff for crate::ext::LineInfo {
    fn insn_off(&self) -> u32 {
        self.insn_off
    }
}

impl InsnOff for crate::ext::CoreRelo {
    fn insn_off(&self) -> u32 {
        self.insn_off
    }
}

/// `.data`, `.data.*`, `.rodata`, `.rodata.*`, `.bss`, `.bss.*`.
pub fn is_data_section(name: &str) -> bool {
    [".data", ".rodata", ".bss"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

fn try_push<T>(v: &mut Vec<T>, x: T) -> Result<()> {
    v.try_reserve(1).map_err(|_| e(ErrorKind::OutOfMemory, 0))?;
    v.push(x);
    Ok(())
}

/// Externs from undefined symbols, typed from `.ksyms`/`.kconfig` BTF,
/// ordered as libbpf orders them (kconfig first, by descending alignment,
/// ascending size, then name; then ksyms by name).
fn externs<'a>(
    elf: &ElfFile64<'a, Endianness, &'a [u8]>,
    btf: Option<&Btf<'a>>,
) -> Result<Vec<Extern<'a>>> {
    let mut out: Vec<(u32, u32, Extern<'a>)> = Vec::new();
    for sym in elf.symbols() {
        if !sym.is_undefined() || !(sym.is_global() || sym.is_weak()) {
            continue;
        }
        let name = sym.name().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        let btf = btf.ok_or(e(ErrorKind::MissingBtf, 0))?;
        let (sec, id) =
            extern_btf(btf, name).ok_or(e(ErrorKind::BadExtern(sym.index().0 as u32), 0))?;
        let t = btf.type_by_id(id)?;
        let (kind, align, size) = if sec == ".kconfig" {
            let size = btf.resolve_size(t.type_id())?;
            let align = btf.align_of(t.type_id())?;
            (ExternKind::Kconfig { offset: 0, size }, align, size)
        } else if t.kind() == Kind::Func {
            (ExternKind::Kfunc, 0, 0)
        } else if btf.skip_mods_and_typedefs(t.type_id())? == TypeId::VOID {
            (ExternKind::UntypedVar, 0, 0)
        } else {
            (ExternKind::TypedVar, 0, 0)
        };
        try_push(
            &mut out,
            (
                align,
                size,
                Extern {
                    name,
                    kind,
                    weak: sym.is_weak(),
                    btf_id: id,
                    refs: Vec::new(),
                },
            ),
        )?;
    }
    out.sort_by(|(aa, asz, a), (ba, bsz, b)| {
        let ak = matches!(a.kind, ExternKind::Kconfig { .. });
        let bk = matches!(b.kind, ExternKind::Kconfig { .. });
        bk.cmp(&ak)
            .then_with(|| {
                if ak {
                    ba.cmp(aa).then(asz.cmp(bsz))
                } else {
                    core::cmp::Ordering::Equal
                }
            })
            .then_with(|| a.name.cmp(b.name))
    });
    let mut off = 0u32;
    let mut res = Vec::new();
    res.try_reserve(out.len())
        .map_err(|_| e(ErrorKind::OutOfMemory, 0))?;
    for (align, size, mut x) in out {
        if let ExternKind::Kconfig { .. } = x.kind {
            let a = align.max(1);
            off = off.div_ceil(a).saturating_mul(a);
            x.kind = ExternKind::Kconfig { offset: off, size };
            off = off.saturating_add(size);
        }
        res.push(x);
    }
    Ok(res)
}

/// The `.ksyms`/`.kconfig` DATASEC entry naming `name`.
fn extern_btf(btf: &Btf<'_>, name: &str) -> Option<(&'static str, TypeId)> {
    for sec in [".ksyms", ".kconfig"] {
        let Some(ds) = btf.find_by_name_kind(sec, Kind::Datasec) else {
            continue;
        };
        let t = btf.get(ds)?;
        for entry in t.datasec_entries() {
            let v = btf.get(entry.type_id)?;
            if btf.name(&v).ok() == Some(name) {
                return Some((sec, entry.type_id));
            }
        }
    }
    None
}

/// Size of the `.kconfig` map, when there are kconfig externs.
fn kconfig_size(externs: &[Extern<'_>]) -> Option<u32> {
    externs
        .iter()
        .filter_map(|x| match x.kind {
            ExternKind::Kconfig { offset, size } => Some(offset.saturating_add(size)),
            _ => None,
        })
        .max()
}
