//! Phase 5 of [`Object::parse`]: each code section's relocations, resolved
//! to the function, map, global data or extern they name.

use alloc::vec::Vec;

use object::{
    Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags, RelocationTarget,
    SymbolIndex, SymbolKind, SymbolSection,
};

use super::error::ObjectErrorKind;
use super::maps::Map;
use super::parse::{Elf, PResult, err, fit, try_push};
use super::{Object, R_BPF_64_ABS32, R_BPF_64_NODYLD32, Reloc, RelocTarget};
use crate::id::{CodeIndex, ExternIndex, MapIndex, SectionIndex, SectionInsn};
use crate::insn::{self, INSN_SIZE_U64};

impl<'a> Object<'a> {
    /// Phase 5: each code section's relocations, sorted by instruction.
    pub(super) fn read_relocs(&mut self, elf: &Elf<'a>) -> PResult<'a, ()> {
        for i in 0..self.code.len() {
            let ci = CodeIndex(i);
            let Some(code) = self.code_section(ci) else {
                continue;
            };
            let Ok(sec) = elf.section_by_index(object::SectionIndex(code.index.0)) else {
                continue;
            };
            let sname = code.name;
            let code_len = u64::try_from(code.bytes.len()).unwrap_or(u64::MAX);
            let mut relocs = Vec::new();
            for (off, r) in sec.relocations() {
                let RelocationFlags::Elf { r_type } = r.flags() else {
                    continue;
                };
                if matches!(r_type, R_BPF_64_ABS32 | R_BPF_64_NODYLD32) {
                    continue;
                }
                let insn = SectionInsn::from_elf_offset(off)
                    .filter(|_| off < code_len)
                    .ok_or(err(sname, ObjectErrorKind::BadRelocOffset { offset: off }))?;
                let RelocationTarget::Symbol(si) = r.target() else {
                    return Err(err(
                        sname,
                        ObjectErrorKind::UnsupportedReloc {
                            r_type,
                            symbol: "",
                            insn,
                        },
                    ));
                };
                let target = self
                    .reloc_target(elf, si, ci, insn, r_type)
                    .map_err(|mut e| {
                        e.function = self.function_at(ci, insn).map(|f| f.name);
                        e
                    })?;
                try_push(&mut relocs, Reloc { insn, target })?;
            }
            // Sorted by instruction, so a function's relocations are one run.
            crate::order::sort_by_key(&mut relocs, |r| r.insn);
            for rl in &relocs {
                if let RelocTarget::Extern(x) = rl.target {
                    if let Some(ext) = self.externs.get_mut(x.index()) {
                        try_push(&mut ext.refs, (ci, rl.insn))?;
                    }
                }
            }
            if let Some(c) = self.code.get_mut(i) {
                c.relocs = relocs;
            }
        }
        Ok(())
    }

    /// What the relocation at instruction `insn` of code section `ci`,
    /// against symbol `si`, refers to.
    fn reloc_target(
        &self,
        elf: &Elf<'a>,
        si: SymbolIndex,
        ci: CodeIndex,
        insn_idx: SectionInsn,
        r_type: u32,
    ) -> PResult<'a, RelocTarget> {
        let sname = self.code_section(ci).map_or("", |c| c.name);
        let unsupported = |symbol| {
            err(
                sname,
                ObjectErrorKind::UnsupportedReloc {
                    r_type,
                    symbol,
                    insn: insn_idx,
                },
            )
        };
        let sym = elf.symbol_by_index(si).map_err(|_| unsupported(""))?;
        let name = sym.name().unwrap_or("");
        let insn = self
            .code_section(ci)
            .and_then(|c| insn::read_at(c.bytes, insn_idx.index(), self.endian))
            .unwrap_or_default();
        if sym.is_undefined() {
            let x = self.externs.iter().position(|x| x.name == name).ok_or(err(
                sname,
                ObjectErrorKind::BadExtern {
                    name,
                    insn: Some(insn_idx),
                },
            ))?;
            return Ok(RelocTarget::Extern(ExternIndex(x)));
        }
        let SymbolSection::Section(target_sec) = sym.section() else {
            return Err(unsupported(name));
        };
        let target_sec = SectionIndex(target_sec.0);
        // Calls and function addresses: into a code section.
        if let Some(tc) = self.code_index(target_sec) {
            // libbpf's rule: a call lands on symbol/8 + imm + 1 (a named
            // function carries imm -1, a section symbol the distance); an
            // address load on symbol/8 + imm/8.
            let base = i64::try_from(sym.address() / INSN_SIZE_U64).unwrap_or(i64::MAX);
            let target = if insn.code == insn::CALL {
                base.saturating_add(i64::from(insn.imm)).saturating_add(1)
            } else {
                base.saturating_add(i64::from(insn.imm) / insn::INSN_SIZE_I64)
            };
            let f = u32::try_from(target)
                .ok()
                .and_then(|t| self.function_starting_at(tc, SectionInsn(t)))
                .ok_or(err(
                    sname,
                    ObjectErrorKind::BadCallTarget {
                        symbol: name,
                        insn: insn_idx,
                    },
                ))?;
            return Ok(RelocTarget::Function(f));
        }
        let in_sec = |m: &Map<'_>| m.section == Some(target_sec);
        let is_section_sym = sym.kind() == SymbolKind::Section;
        if !is_section_sym {
            if let Some(m) = self
                .maps
                .iter()
                .position(|m| in_sec(m) && m.name == name && !m.kind.is_internal())
            {
                return Ok(RelocTarget::Map(MapIndex(m)));
            }
        }
        if let Some(m) = self
            .maps
            .iter()
            .position(|m| in_sec(m) && m.kind.is_internal())
        {
            let offset = if is_section_sym {
                insn.imm as u32
            } else {
                fit(sym.address(), sname, "symbol offset")?.wrapping_add(insn.imm as u32)
            };
            return Ok(RelocTarget::Data {
                map: MapIndex(m),
                offset,
            });
        }
        if is_section_sym {
            // A map without a symbol of its own (a static map in the legacy
            // `maps` section), referred to through the section symbol plus
            // the offset in the instruction: resolved by offset, as libbpf
            // resolves legacy map references.
            let offset = sym.address().saturating_add_signed(i64::from(insn.imm));
            if let Some(m) = self.maps.iter().position(|m| {
                in_sec(m) && !m.kind.is_internal() && u64::from(m.sec_offset) == offset
            }) {
                return Ok(RelocTarget::Map(MapIndex(m)));
            }
            if self.maps.iter().any(in_sec) {
                let map_section = elf
                    .section_by_index(object::SectionIndex(target_sec.0))
                    .ok()
                    .and_then(|s| s.name().ok())
                    .unwrap_or("");
                return Err(err(
                    sname,
                    ObjectErrorKind::MapRefWithoutSymbol {
                        map_section,
                        offset,
                        insn: insn_idx,
                    },
                ));
            }
        }
        Err(unsupported(name))
    }
}
