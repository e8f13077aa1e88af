//! The BPF ELF object: programs and subprograms, maps, global data,
//! externs, relocations and `.BTF.ext` records, read with the `object`
//! crate's zero-copy ELF reader.
//!
//! [`Object::parse`] borrows everything from the file's bytes; only the
//! tables (functions, maps, relocations) are allocated, each bounded by the
//! number of symbols or relocation entries in the file.
//!
//! Files: `parse.rs` reads the ELF file in phases (and documents the
//! invariants of a parsed [`Object`]), with `externs.rs` (undefined
//! symbols), `relocs.rs` (each code section's relocations),
//! `btf_maps.rs` (`.maps` definitions), `legacy_maps.rs` (`maps`
//! definitions) and `struct_ops.rs` (struct_ops maps); `maps.rs` holds the
//! map model and the internal maps; `error.rs` names what is wrong with a
//! rejected object; this file holds the model and the queries on it.
#![cfg_attr(not(test), deny(clippy::cast_possible_truncation))]

mod btf_maps;
pub mod error;
mod externs;
mod kinds;
mod legacy_maps;
pub mod maps;
mod parse;
mod relocs;
pub mod section;
pub mod struct_ops;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub use self::error::{Found, ObjectError, ObjectErrorKind};
pub use self::kinds::{AttachType, LinkType, MapType, ProgType};
pub use self::maps::{Map, MapKind, MapValues, Pinning};
pub use self::section::SecDef;
pub use self::struct_ops::{StructOps, StructOpsProg};
use crate::btf::{Btf, TypeId};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};
use crate::ext::BtfExt;
pub use crate::id::{
    CodeIndex, ExternIndex, FuncIndex, FuncInsn, MapIndex, SectionByteOffset, SectionIndex,
    SectionInsn,
};
use crate::insn::INSN_SIZE;

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
    pub index: SectionIndex,
    /// Section name (`kprobe/do_unlinkat`, `.text`).
    pub name: &'a str,
    /// The raw instruction bytes.
    pub bytes: &'a [u8],
    /// Relocations, by instruction index within the section.
    pub relocs: Vec<Reloc>,
}

impl CodeSection<'_> {
    /// Number of instruction slots (checked to fit `u32` by
    /// [`Object::parse`]).
    pub fn insn_count(&self) -> u32 {
        u32::try_from(self.bytes.len() / INSN_SIZE).unwrap_or(u32::MAX)
    }
}

/// What one relocated instruction refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocTarget {
    /// A call to, or the address of, a function.
    Function(FuncIndex),
    /// A map.
    Map(MapIndex),
    /// A byte inside a global-data map.
    Data {
        /// The internal map.
        map: MapIndex,
        /// Byte offset inside the section.
        offset: u32,
    },
    /// An extern.
    Extern(ExternIndex),
}

/// One relocated instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    /// The relocated instruction.
    pub insn: SectionInsn,
    /// What it refers to.
    pub target: RelocTarget,
}

/// A BPF function: an entry program, or a subprogram in `.text`.
#[derive(Debug, Clone)]
pub struct Function<'a> {
    /// Symbol name.
    pub name: &'a str,
    /// Its code section.
    pub section: CodeIndex,
    /// Its first instruction.
    pub start: SectionInsn,
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
    pub index: SectionIndex,
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
    /// Every instruction that refers to it.
    pub refs: Vec<(CodeIndex, SectionInsn)>,
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
    /// Programs and subprograms, sorted by section, start and length, not
    /// overlapping (see the invariants of [`Object::parse`]).
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
    /// struct_ops maps (`.struct_ops`, `.struct_ops.link`), in section
    /// then variable order; apart from [`Object::maps`], as their value
    /// takes the running kernel's layout only at load.
    pub struct_ops: Vec<StructOps<'a>>,
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
    /// Its size (`st_size`; 0 when the compiler gave none).
    pub size: u32,
    /// Hidden or internal visibility: its VAR is given static linkage.
    pub hidden: bool,
}

/// Object-name prefix libbpf gives internal maps: the file name up to its
/// first dot.
pub fn object_name(file_name: &str) -> &str {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    base.split('.').next().unwrap_or(base)
}

impl Function<'_> {
    /// The instruction just past its last.
    pub fn end(&self) -> SectionInsn {
        self.start.plus(self.len)
    }

    /// Whether instruction `insn` of its section lies in this function.
    pub fn contains(&self, insn: SectionInsn) -> bool {
        insn >= self.start && insn < self.end()
    }

    /// Instruction `insn` of this function, counted in its section.
    pub fn section_insn(&self, insn: FuncInsn) -> SectionInsn {
        self.start.plus(insn.0)
    }

    /// Section instruction `insn` counted from this function's start, or
    /// `None` when it lies outside the function.
    pub fn func_insn(&self, insn: SectionInsn) -> Option<FuncInsn> {
        insn.since(self.start).filter(|_| insn < self.end())
    }
}

impl<'a> Object<'a> {
    /// The code section `i`.
    pub fn code_section(&self, i: CodeIndex) -> Option<&CodeSection<'a>> {
        self.code.get(i.index())
    }

    /// The code section with ELF section index `sec`.
    pub fn code_index(&self, sec: SectionIndex) -> Option<CodeIndex> {
        self.code.iter().position(|c| c.index == sec).map(CodeIndex)
    }

    /// Function `i`.
    pub fn function(&self, i: FuncIndex) -> Option<&Function<'a>> {
        self.functions.get(i.index())
    }

    /// Map `i`.
    pub fn map(&self, i: MapIndex) -> Option<&Map<'a>> {
        self.maps.get(i.index())
    }

    /// Extern `i`.
    pub fn extern_(&self, i: ExternIndex) -> Option<&Extern<'a>> {
        self.externs.get(i.index())
    }

    /// The programs (functions outside `.text`).
    pub fn programs(&self) -> impl Iterator<Item = &Function<'a>> {
        self.functions.iter().filter(|f| f.is_program)
    }

    /// The instructions of a function.
    pub fn insns(&self, f: &Function<'a>) -> &'a [u8] {
        let Some(code) = self.code_section(f.section) else {
            return &[];
        };
        code.bytes
            .get(f.start.byte_offset()..f.end().byte_offset())
            .unwrap_or(&[])
    }

    /// Which function holds instruction `insn` of code section `section`,
    /// and where in it: the one lookup every caller uses (functions are
    /// sorted and do not overlap, so this is a binary search).
    pub fn locate(&self, section: CodeIndex, insn: SectionInsn) -> Option<(FuncIndex, FuncInsn)> {
        let i = self
            .functions
            .partition_point(|f| (f.section, f.start) <= (section, insn))
            .checked_sub(1)?;
        let f = self.functions.get(i)?;
        if f.section != section {
            return None;
        }
        Some((FuncIndex(i), f.func_insn(insn)?))
    }

    /// The function starting exactly at instruction `insn` of `section`
    /// (a call or function-address target).
    pub fn function_starting_at(&self, section: CodeIndex, insn: SectionInsn) -> Option<FuncIndex> {
        self.functions
            .binary_search_by_key(&(section, insn), |f| (f.section, f.start))
            .ok()
            .map(FuncIndex)
    }

    /// The function containing instruction `insn` of code section `section`.
    pub fn function_at(&self, section: CodeIndex, insn: SectionInsn) -> Option<&Function<'a>> {
        self.locate(section, insn)
            .and_then(|(f, _)| self.function(f))
    }

    /// Records of one `.BTF.ext` subsection resolved to functions: for each
    /// record, the function holding its instruction and the instruction's
    /// index within that function.
    ///
    /// # Errors
    /// [`ErrorKind::BadInsnOffset`] for an offset that is not a multiple of
    /// 8 or lies in no function of its section.
    pub fn resolve<R: crate::ext::ExtRecord + InsnOff>(
        &self,
        blocks: crate::ext::Blocks<'a, R>,
    ) -> Result<Vec<(FuncIndex, FuncInsn, R)>> {
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
                let (fi, insn) = SectionInsn::from_byte_offset(off)
                    .and_then(|i| self.locate(CodeIndex(ci), i))
                    .ok_or(Error::new(ErrorKind::BadInsnOffset(off), 0))?;
                out.try_reserve(1)
                    .map_err(|_| Error::new(ErrorKind::OutOfMemory, 0))?;
                out.push((fi, insn, r));
            }
        }
        Ok(out)
    }

    /// Number of CO-RE relocations whose instruction lies in `f`.
    pub fn core_relo_count(&self, f: &Function<'a>) -> usize {
        let (Some(ext), Some(btf), Some(code)) = (
            self.btf_ext,
            self.btf.as_ref(),
            self.code_section(f.section),
        ) else {
            return 0;
        };
        ext.core_relos()
            .filter(|b| btf.str_at(b.sec_name_off).is_ok_and(|n| n == code.name))
            .flat_map(|b| b.records())
            .filter(|r| SectionInsn::from_byte_offset(r.insn_off).is_some_and(|i| f.contains(i)))
            .count()
    }
}

/// `.BTF.ext` records that point at an instruction.
pub trait InsnOff {
    /// Byte offset of the instruction in its ELF section.
    fn insn_off(&self) -> SectionByteOffset;
}

impl InsnOff for crate::ext::FuncInfo {
    fn insn_off(&self) -> SectionByteOffset {
        self.insn_off
    }
}

impl InsnOff for crate::ext::LineInfo {
    fn insn_off(&self) -> SectionByteOffset {
        self.insn_off
    }
}

impl InsnOff for crate::ext::CoreRelo {
    fn insn_off(&self) -> SectionByteOffset {
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
