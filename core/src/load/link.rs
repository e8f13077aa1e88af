//! Turning one program of an object into the instruction stream the kernel
//! loads: its own instructions, then every subprogram it reaches (each
//! once, depth-first in call order, as libbpf lays them out), with calls, function addresses, map
//! and global-data references resolved, and `.BTF.ext` func/line records
//! moved to where their instructions ended up.

use alloc::vec::Vec;

use crate::error::{Error, ErrorKind, Result};
use crate::id::{CodeIndex, FuncIndex, FuncInsn, MapIndex, Pc, SectionInsn, StrOffset};
use crate::insn::{
    CALL, INSN_SIZE, Insn, LD_IMM64, PSEUDO_CALL, PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE,
    read_at, write_at,
};
use crate::object::{ExternKind, MapKind, Object, RelocTarget};

/// One function's copy inside a linked program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The function.
    pub func: FuncIndex,
    /// Its first instruction in the linked program.
    pub start: Pc,
}

impl Piece {
    /// Where instruction `insn` of the function landed.
    pub fn pc(&self, insn: FuncInsn) -> Pc {
        Pc::at(self.start, insn)
    }
}

/// A program ready for `BPF_PROG_LOAD`.
#[derive(Debug, Clone, Default)]
pub struct Linked {
    /// Instructions, in the object's (= this machine's) byte order.
    pub insns: Vec<u8>,
    /// `struct bpf_func_info` records (8 bytes; offsets in instructions).
    pub func_info: Vec<u8>,
    /// `struct bpf_line_info` records (16 bytes; offsets in instructions).
    pub line_info: Vec<u8>,
    /// Where each function landed; the program itself is first.
    pub pieces: Vec<Piece>,
}

/// Size of a kernel `bpf_func_info` record.
pub const FUNC_INFO_SIZE: u32 = 8;
/// Size of a kernel `bpf_line_info` record.
pub const LINE_INFO_SIZE: u32 = 16;

impl Linked {
    /// The function and its instruction index for linked instruction `pc`.
    pub fn origin(&self, pc: Pc) -> Option<(FuncIndex, FuncInsn)> {
        self.pieces
            .iter()
            .filter(|p| p.start <= pc)
            .max_by_key(|p| p.start)
            .and_then(|p| Some((p.func, pc.since(p.start)?)))
    }

    /// The line_info record covering `pc`: file name and line text (offsets
    /// in the object's BTF strings) and `line << 10 | column`.
    pub fn line_at(&self, pc: Pc) -> Option<(StrOffset, StrOffset, u32)> {
        self.line_info
            .chunks_exact(LINE_INFO_SIZE as usize)
            .map(|r| (ne(r, 0), ne(r, 4), ne(r, 8), ne(r, 12)))
            .rfind(|&(off, ..)| off <= pc.0)
            .map(|(_, f, l, c)| (StrOffset(f), StrOffset(l), c))
    }
}

fn ne(b: &[u8], off: usize) -> u32 {
    b.get(off..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |w| u32::from_ne_bytes(*w))
}

fn oom() -> Error {
    Error::new(ErrorKind::OutOfMemory, 0)
}

/// Links program `prog` from `code`,
/// the object's code sections after CO-RE and ksym patching. `map_fd`
/// gives the fd of each map of [`Object::maps`] that was created.
///
/// # Errors
/// [`ErrorKind::BadCallTarget`] for a call that lands on no function;
/// [`ErrorKind::CoreBadInsn`] where a map reference is not an LD_IMM64;
/// lookups failing show as
/// [`ErrorKind::OutOfMemory`] only when allocation fails.
pub fn link_program(
    obj: &Object<'_>,
    code: &[Vec<u8>],
    prog: FuncIndex,
    map_fd: &dyn Fn(MapIndex) -> Option<i32>,
) -> Result<Linked> {
    let mut out = Linked::default();
    let kconfig_map = obj
        .maps
        .iter()
        .position(|m| m.kind == MapKind::Kconfig)
        .map(MapIndex);
    append(obj, code, prog, &mut out)?;
    // Depth-first, as libbpf's bpf_object__reloc_code: each piece's
    // instructions in order, and a subprogram called for the first time
    // is appended and linked before the caller's next instruction. The
    // kernel's program tag hashes this layout. `stack` holds the callers
    // being linked (piece, next instruction): at most one per piece.
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let (mut cur, mut k) = (0usize, 0u32);
    while let Some(&piece) = out.pieces.get(cur) {
        let Some(f) = obj.function(piece.func) else {
            break;
        };
        let Some(sec) = obj.code_section(f.section) else {
            break;
        };
        if k >= f.len {
            match stack.pop() {
                Some((p, next)) => (cur, k) = (p, next),
                None => break,
            }
            continue;
        }
        let fi = FuncInsn(k);
        k = k.saturating_add(1);
        let si = f.section_insn(fi);
        let src = code_of(code, f.section);
        let end = f.end();
        let pieces_before = out.pieces.len();
        // Relocations are sorted by instruction (Object::parse).
        match sec.relocs.binary_search_by_key(&si, |r| r.insn) {
            Ok(ri) => {
                let Some(r) = sec.relocs.get(ri) else {
                    continue;
                };
                let pc = piece.pc(fi);
                let at = pc.byte_offset();
                let pc = pc.index();
                let mut insn = read_at(&out.insns, pc, obj.endian)
                    .ok_or(Error::new(ErrorKind::BadCodeLayout(f.section), at))?;
                let ld = |insn: &Insn| {
                    if insn.code == LD_IMM64 {
                        Ok(())
                    } else {
                        Err(Error::new(ErrorKind::CoreBadInsn(insn.code), at))
                    }
                };
                let (src_reg, imm, hi) = match r.target {
                    RelocTarget::Function(g) => {
                        let start = callee(obj, code, g, &mut out)?;
                        let rel = jump(start, piece.pc(fi), at)?;
                        if insn.code == CALL {
                            insn.src = PSEUDO_CALL;
                            insn.imm = rel;
                            write_at(&mut out.insns, pc, obj.endian, &insn);
                            descend(&mut stack, &mut cur, &mut k, pieces_before, &out)?;
                            continue;
                        }
                        ld(&insn)?;
                        (PSEUDO_FUNC, rel, 0)
                    }
                    RelocTarget::Map(m) => {
                        ld(&insn)?;
                        (PSEUDO_MAP_FD, map_fd(m).unwrap_or(-1), 0)
                    }
                    RelocTarget::Data { map, offset } => {
                        ld(&insn)?;
                        (
                            PSEUDO_MAP_VALUE,
                            map_fd(map).unwrap_or(-1),
                            offset.cast_signed(),
                        )
                    }
                    RelocTarget::Extern(x) => match obj.extern_(x).map(|x| x.kind) {
                        Some(ExternKind::Kconfig { offset, .. }) => {
                            ld(&insn)?;
                            let fd = kconfig_map.and_then(map_fd).unwrap_or(-1);
                            (PSEUDO_MAP_VALUE, fd, offset.cast_signed())
                        }
                        // ksyms were patched before linking.
                        _ => continue,
                    },
                };
                // Both halves of the LD_IMM64 must be this function's.
                if r.insn.plus(1) >= end {
                    return Err(Error::new(ErrorKind::CoreBadInsn(insn.code), at));
                }
                insn.src = src_reg;
                insn.imm = imm;
                write_at(&mut out.insns, pc, obj.endian, &insn);
                let mut second = read_at(&out.insns, pc.saturating_add(1), obj.endian)
                    .ok_or(Error::new(ErrorKind::CoreBadInsn(insn.code), at))?;
                second.imm = hi;
                write_at(&mut out.insns, pc.saturating_add(1), obj.endian, &second);
                descend(&mut stack, &mut cur, &mut k, pieces_before, &out)?;
            }
            // A call inside one section that clang resolved without a
            // relocation.
            Err(_) => {
                let Some(insn) = read_at(src, si.index(), obj.endian) else {
                    continue;
                };
                if insn.code != CALL || insn.src != PSEUDO_CALL {
                    continue;
                }
                let target = i64::from(si.0)
                    .saturating_add(i64::from(insn.imm))
                    .saturating_add(1);
                let g = u32::try_from(target)
                    .ok()
                    .and_then(|t| obj.function_starting_at(f.section, SectionInsn(t)))
                    .ok_or(Error::new(ErrorKind::BadCallTarget(si), 0))?;
                let start = callee(obj, code, g, &mut out)?;
                let pc = piece.pc(fi);
                let mut patched = insn;
                patched.imm = jump(start, pc, pc.byte_offset())?;
                write_at(&mut out.insns, pc.index(), obj.endian, &patched);
                descend(&mut stack, &mut cur, &mut k, pieces_before, &out)?;
            }
        }
    }
    ext_records(obj, &mut out)?;
    Ok(out)
}

/// The bytes of code section `ci` after patching.
fn code_of(code: &[Vec<u8>], ci: CodeIndex) -> &[u8] {
    code.get(ci.index()).map_or(&[][..], Vec::as_slice)
}

/// The `imm` of a call or function address at `from` that lands on `to`.
fn jump(to: Pc, from: Pc, at: usize) -> Result<i32> {
    let rel = i64::from(to.0)
        .saturating_sub(i64::from(from.0))
        .saturating_sub(1);
    i32::try_from(rel)
        .map_err(|_| Error::new(ErrorKind::TooMany("instructions in one program"), at))
}

/// When the instruction just linked appended a piece (a first call), links
/// that piece next and comes back to the caller's next instruction after.
fn descend(
    stack: &mut Vec<(usize, u32)>,
    cur: &mut usize,
    k: &mut u32,
    pieces_before: usize,
    out: &Linked,
) -> Result<()> {
    if out.pieces.len() > pieces_before {
        stack.try_reserve(1).map_err(|_| oom())?;
        stack.push((*cur, *k));
        (*cur, *k) = (pieces_before, 0);
    }
    Ok(())
}

/// Where function `g` starts in `out`, appending it on first use.
fn callee(obj: &Object<'_>, code: &[Vec<u8>], g: FuncIndex, out: &mut Linked) -> Result<Pc> {
    if let Some(p) = out.pieces.iter().find(|p| p.func == g) {
        return Ok(p.start);
    }
    append(obj, code, g, out)
}

fn append(obj: &Object<'_>, code: &[Vec<u8>], g: FuncIndex, out: &mut Linked) -> Result<Pc> {
    let f = obj
        .function(g)
        .ok_or(Error::new(ErrorKind::BadCallTarget(SectionInsn(0)), 0))?;
    let start = Pc(u32::try_from(out.insns.len() / INSN_SIZE)
        .map_err(|_| Error::new(ErrorKind::TooMany("instructions in one program"), 0))?);
    let bytes = code_of(code, f.section)
        .get(f.start.byte_offset()..f.end().byte_offset())
        .ok_or(Error::new(ErrorKind::BadCodeLayout(f.section), 0))?;
    out.insns.try_reserve(bytes.len()).map_err(|_| oom())?;
    out.insns.extend_from_slice(bytes);
    out.pieces.try_reserve(1).map_err(|_| oom())?;
    out.pieces.push(Piece { func: g, start });
    Ok(start)
}

/// Copies each piece's func_info and line_info records, rebased.
fn ext_records(obj: &Object<'_>, out: &mut Linked) -> Result<()> {
    let (Some(ext), Some(btf)) = (obj.btf_ext, obj.btf.as_ref()) else {
        return Ok(());
    };
    for p in &out.pieces {
        let Some(f) = obj.function(p.func) else {
            continue;
        };
        let Some(sec) = obj.code_section(f.section) else {
            continue;
        };
        let here = |off| {
            let i = SectionInsn::from_byte_offset(off)?;
            Some(p.pc(f.func_insn(i)?).0)
        };
        for b in ext.func_info() {
            if btf.str_at(b.sec_name_off).ok() != Some(sec.name) {
                continue;
            }
            for r in b.records() {
                if let Some(pc) = here(r.insn_off) {
                    out.func_info.try_reserve(8).map_err(|_| oom())?;
                    out.func_info.extend_from_slice(&pc.to_ne_bytes());
                    out.func_info.extend_from_slice(&r.type_id.0.to_ne_bytes());
                }
            }
        }
        for b in ext.line_info() {
            if btf.str_at(b.sec_name_off).ok() != Some(sec.name) {
                continue;
            }
            for r in b.records() {
                if let Some(pc) = here(r.insn_off) {
                    out.line_info.try_reserve(16).map_err(|_| oom())?;
                    for w in [pc, r.file_name_off.0, r.line_off.0, r.line_col] {
                        out.line_info.extend_from_slice(&w.to_ne_bytes());
                    }
                }
            }
        }
    }
    Ok(())
}
