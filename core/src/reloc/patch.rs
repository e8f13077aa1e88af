//! Instruction patching and poisoning (libbpf's `bpf_core_patch_insn`).

use super::compute::RelocRes;
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};
use crate::insn::{CALL, INSN_SIZE, Insn, LD_IMM64, class};

/// The helper id a poisoned instruction calls ("bad relo"); the verifier
/// reports it as `invalid func unknown#195896080`.
pub const POISON_IMM: i32 = 0x0bad_2310;

/// What patching did to one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patched {
    /// The value was rewritten (the instruction's old and new value).
    Value {
        /// The value the instruction held.
        old: u64,
        /// The value it holds now.
        new: u64,
    },
    /// The instruction was replaced by a call to an invalid helper.
    Poisoned,
}

fn read(code: &[u8], idx: usize, e: Endian) -> Option<Insn> {
    let b = code
        .get(idx.checked_mul(INSN_SIZE)?..)?
        .first_chunk::<8>()?;
    Some(Insn::decode(*b, e))
}

fn write(code: &mut [u8], idx: usize, e: Endian, insn: &Insn) {
    if let Some(dst) = idx
        .checked_mul(INSN_SIZE)
        .and_then(|at| code.get_mut(at..at.saturating_add(INSN_SIZE)))
    {
        dst.copy_from_slice(&insn.encode(e));
    }
}

/// The poisoned form of any instruction.
pub fn poison_insn() -> Insn {
    Insn {
        code: CALL,
        dst: 0,
        src: 0,
        off: 0,
        imm: POISON_IMM,
    }
}

fn poison(code: &mut [u8], idx: usize, e: Endian, first: &Insn) {
    if first.code == LD_IMM64 {
        write(code, idx.saturating_add(1), e, &poison_insn());
    }
    write(code, idx, e, &poison_insn());
}

fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn size_bits(bytes: u32) -> Option<u8> {
    Some(match bytes {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

/// Applies `res` to instruction `idx` of `code` (a section's bytes).
///
/// # Errors
/// The instruction is missing or of a class that cannot take the value,
/// holds a different value than the local BTF predicts, or would need an
/// offset past 32767 or an impossible memory size.
pub fn patch(code: &mut [u8], idx: usize, e: Endian, res: &RelocRes) -> Result<Patched> {
    let bad = |c: u8| Error::new(ErrorKind::CoreBadInsn(c), idx.saturating_mul(INSN_SIZE));
    let mut insn = read(code, idx, e).ok_or(bad(0))?;
    if res.poison {
        poison(code, idx, e, &insn);
        return Ok(Patched::Poisoned);
    }
    let at = idx.saturating_mul(INSN_SIZE);
    match insn.class() {
        class::ALU | class::ALU64 => {
            if insn.code & 0x08 != 0 {
                return Err(bad(insn.code));
            }
            let old = i64::from(insn.imm) as u64;
            if res.validate && old != res.orig {
                return Err(Error::new(ErrorKind::CoreValueMismatch(old, res.orig), at));
            }
            insn.imm = res.new as i32;
            write(code, idx, e, &insn);
            Ok(Patched::Value { old, new: res.new })
        }
        class::LDX | class::ST | class::STX => {
            let old = i64::from(insn.off) as u64;
            if res.validate && old != res.orig {
                return Err(Error::new(ErrorKind::CoreValueMismatch(old, res.orig), at));
            }
            if res.new > i16::MAX as u64 {
                return Err(Error::new(ErrorKind::CoreOffsetRange(res.new), at));
            }
            if res.fail_memsz_adjust {
                poison(code, idx, e, &insn);
                return Ok(Patched::Poisoned);
            }
            insn.off = res.new as i16;
            if res.new_sz != res.orig_sz {
                if size_bytes(insn.code) != res.orig_sz {
                    return Err(Error::new(ErrorKind::CoreMemSize(res.orig_sz), at));
                }
                let sz = size_bits(res.new_sz)
                    .ok_or(Error::new(ErrorKind::CoreMemSize(res.new_sz), at))?;
                insn.code = (insn.code & 0xe0) | sz | insn.class();
            }
            write(code, idx, e, &insn);
            Ok(Patched::Value { old, new: res.new })
        }
        class::LD => {
            let next = read(code, idx.saturating_add(1), e).ok_or(bad(insn.code))?;
            if insn.code != LD_IMM64
                || insn.src != 0
                || insn.off != 0
                || next.code != 0
                || next.dst != 0
                || next.src != 0
                || next.off != 0
            {
                return Err(bad(insn.code));
            }
            let old = u64::from(insn.imm as u32) | (u64::from(next.imm as u32) << 32);
            if res.validate && old != res.orig {
                return Err(Error::new(ErrorKind::CoreValueMismatch(old, res.orig), at));
            }
            insn.imm = res.new as u32 as i32;
            let hi = Insn {
                imm: (res.new >> 32) as u32 as i32,
                ..next
            };
            write(code, idx, e, &insn);
            write(code, idx.saturating_add(1), e, &hi);
            Ok(Patched::Value { old, new: res.new })
        }
        _ => Err(bad(insn.code)),
    }
}
