//! BPF instructions: decode, encode, and a disassembly in the verifier's
//! notation (`r1 = *(u32 *)(r6 +8)`) for diagnostics.

use core::fmt;

use crate::bytes::Endian;

/// Instruction classes (`BPF_CLASS`).
pub mod class {
    /// `BPF_LD`.
    pub const LD: u8 = 0x00;
    /// `BPF_LDX`.
    pub const LDX: u8 = 0x01;
    /// `BPF_ST`.
    pub const ST: u8 = 0x02;
    /// `BPF_STX`.
    pub const STX: u8 = 0x03;
    /// `BPF_ALU`.
    pub const ALU: u8 = 0x04;
    /// `BPF_JMP`.
    pub const JMP: u8 = 0x05;
    /// `BPF_JMP32`.
    pub const JMP32: u8 = 0x06;
    /// `BPF_ALU64`.
    pub const ALU64: u8 = 0x07;
}

/// `BPF_LD | BPF_IMM | BPF_DW`: the two-slot 64-bit immediate load.
pub const LD_IMM64: u8 = 0x18;
/// `BPF_JMP | BPF_CALL`.
pub const CALL: u8 = 0x85;
/// `BPF_JMP | BPF_EXIT`.
pub const EXIT: u8 = 0x95;
/// `src_reg` of a call to a BPF-to-BPF function (`BPF_PSEUDO_CALL`).
pub const PSEUDO_CALL: u8 = 1;
/// `src_reg` of a kfunc call (`BPF_PSEUDO_KFUNC_CALL`).
pub const PSEUDO_KFUNC_CALL: u8 = 2;
/// `src_reg` of an LD_IMM64 of a map fd (`BPF_PSEUDO_MAP_FD`).
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an LD_IMM64 of a map value address (`BPF_PSEUDO_MAP_VALUE`).
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of an LD_IMM64 of a kernel variable (`BPF_PSEUDO_BTF_ID`).
pub const PSEUDO_BTF_ID: u8 = 3;
/// `src_reg` of an LD_IMM64 of a function address (`BPF_PSEUDO_FUNC`).
pub const PSEUDO_FUNC: u8 = 4;
/// Size of one instruction slot.
pub const INSN_SIZE: usize = 8;
// The same in the widths of ELF addresses, `.BTF.ext` offsets and `imm`:
// named constants, so dividing by them is visibly by a non-zero value.
pub(crate) const INSN_SIZE_U64: u64 = INSN_SIZE as u64;
pub(crate) const INSN_SIZE_I64: i64 = INSN_SIZE as i64;

/// One 8-byte instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register, or a pseudo marker for calls and LD_IMM64.
    pub src: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes one slot. In big-endian objects the register nibbles are
    /// swapped (dst in the high nibble).
    pub fn decode(b: [u8; 8], e: Endian) -> Insn {
        let [code, regs, o0, o1, i0, i1, i2, i3] = b;
        let (dst, src, off, imm) = match e {
            Endian::Little => (
                regs & 0x0f,
                regs >> 4,
                i16::from_le_bytes([o0, o1]),
                i32::from_le_bytes([i0, i1, i2, i3]),
            ),
            Endian::Big => (
                regs >> 4,
                regs & 0x0f,
                i16::from_be_bytes([o0, o1]),
                i32::from_be_bytes([i0, i1, i2, i3]),
            ),
        };
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Encodes back to the slot `decode` read.
    pub fn encode(&self, e: Endian) -> [u8; 8] {
        let (regs, o, i) = match e {
            Endian::Little => (
                (self.src << 4) | (self.dst & 0x0f),
                self.off.to_le_bytes(),
                self.imm.to_le_bytes(),
            ),
            Endian::Big => (
                (self.dst << 4) | (self.src & 0x0f),
                self.off.to_be_bytes(),
                self.imm.to_be_bytes(),
            ),
        };
        [self.code, regs, o[0], o[1], i[0], i[1], i[2], i[3]]
    }

    /// The class bits.
    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// Whether this is the first slot of an LD_IMM64.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == LD_IMM64
    }

    /// Whether this is a call to another BPF function.
    pub fn is_pseudo_call(&self) -> bool {
        self.code == CALL && self.src == PSEUDO_CALL
    }

    /// Whether this is a helper call (`src` 0).
    pub fn is_helper_call(&self) -> bool {
        self.code == CALL && self.src == 0
    }
}

/// Decodes the instructions of a byte slice (a trailing partial slot is
/// ignored; object parsing rejects it earlier).
pub fn decode_all(bytes: &[u8], e: Endian) -> impl ExactSizeIterator<Item = Insn> + '_ {
    bytes.chunks_exact(INSN_SIZE).map(move |c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        Insn::decode(b, e)
    })
}

const SIZE: [&str; 4] = ["u32", "u16", "u8", "u64"];

fn alu_op(op: u8) -> Option<&'static str> {
    Some(match op {
        0x00 => "+=",
        0x10 => "-=",
        0x20 => "*=",
        0x30 => "/=",
        0x40 => "|=",
        0x50 => "&=",
        0x60 => "<<=",
        0x70 => ">>=",
        0x90 => "%=",
        0xa0 => "^=",
        0xb0 => "=",
        0xc0 => "s>>=",
        _ => return None,
    })
}

fn jmp_op(op: u8) -> Option<&'static str> {
    Some(match op {
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        0xd0 => "s<=",
        _ => return None,
    })
}

/// Disassembly of one instruction; `next` is the following slot, needed to
/// show an LD_IMM64's full value.
#[derive(Debug, Clone, Copy)]
pub struct Disasm {
    /// The instruction.
    pub insn: Insn,
    /// The next slot, for LD_IMM64.
    pub next: Option<Insn>,
}

impl fmt::Display for Disasm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.insn;
        let (d, s) = (i.dst, i.src);
        let size = SIZE
            .get(usize::from((i.code >> 3) & 3))
            .copied()
            .unwrap_or("?");
        let off = i.off;
        match i.class() {
            class::ALU | class::ALU64 => {
                let r = if i.class() == class::ALU64 { "r" } else { "w" };
                let op = i.code & 0xf0;
                let from_reg = i.code & 0x08 != 0;
                match (op, alu_op(op)) {
                    (0x80, _) => write!(f, "{r}{d} = -{r}{d}"),
                    (0xd0, _) => {
                        let end = if from_reg { "be" } else { "le" };
                        write!(f, "r{d} = {end}{} r{d}", i.imm)
                    }
                    (_, Some(o)) if from_reg => write!(f, "{r}{d} {o} {r}{s}"),
                    (_, Some(o)) => write!(f, "{r}{d} {o} {}", i.imm),
                    _ => write!(f, "(alu {:#04x})", i.code),
                }
            }
            class::LDX => write!(f, "r{d} = *({size} *)(r{s} {off:+})"),
            class::STX if i.code & 0xe0 == 0xc0 => {
                write!(f, "lock *({size} *)(r{d} {off:+}) op {:#x} r{s}", i.imm)
            }
            class::STX => write!(f, "*({size} *)(r{d} {off:+}) = r{s}"),
            class::ST => write!(f, "*({size} *)(r{d} {off:+}) = {}", i.imm),
            class::LD if i.code == LD_IMM64 => {
                let hi = self.next.map_or(0, |n| n.imm as u32);
                let v = (u64::from(hi) << 32) | u64::from(i.imm as u32);
                match s {
                    PSEUDO_MAP_FD => write!(f, "r{d} = map[fd {}] ll", i.imm),
                    PSEUDO_MAP_VALUE => write!(f, "r{d} = map[fd {}] + {hi} ll", i.imm),
                    PSEUDO_BTF_ID => write!(f, "r{d} = ksym[btf_id {}] ll", i.imm),
                    PSEUDO_FUNC => write!(f, "r{d} = func[pc{:+}] ll", i.imm),
                    _ => write!(f, "r{d} = {v:#x} ll"),
                }
            }
            class::LD => write!(f, "(ld {:#04x})", i.code),
            class::JMP | class::JMP32 => {
                let op = i.code & 0xf0;
                let r = if i.class() == class::JMP32 { "w" } else { "r" };
                match op {
                    0x00 => write!(f, "goto pc{off:+}"),
                    0x80 => match s {
                        PSEUDO_CALL => write!(f, "call pc{:+}", i.imm),
                        PSEUDO_KFUNC_CALL => write!(f, "call kfunc[btf_id {}]", i.imm),
                        _ => write!(f, "call #{}", i.imm),
                    },
                    0x90 => f.write_str("exit"),
                    _ => match jmp_op(op) {
                        Some(o) if i.code & 0x08 != 0 => {
                            write!(f, "if {r}{d} {o} {r}{s} goto pc{off:+}")
                        }
                        Some(o) => write!(f, "if {r}{d} {o} {:#x} goto pc{off:+}", i.imm),
                        None => write!(f, "(jmp {:#04x})", i.code),
                    },
                }
            }
            _ => write!(f, "({:#04x})", i.code),
        }
    }
}

/// The instruction in slot `i` of `code`, `None` past the end.
pub fn read_at(code: &[u8], i: usize, e: Endian) -> Option<Insn> {
    let b = code.get(i.checked_mul(INSN_SIZE)?..)?.first_chunk::<8>()?;
    Some(Insn::decode(*b, e))
}

/// Writes `insn` into slot `i` of `code` (nothing past the end).
pub fn write_at(code: &mut [u8], i: usize, e: Endian, insn: &Insn) {
    if let Some(d) = i
        .checked_mul(INSN_SIZE)
        .and_then(|a| code.get_mut(a..a.saturating_add(INSN_SIZE)))
    {
        d.copy_from_slice(&insn.encode(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn round_trips_both_orders() {
        let i = Insn {
            code: 0x61,
            dst: 1,
            src: 6,
            off: -8,
            imm: 0x1234_5678,
        };
        for e in [Endian::Little, Endian::Big] {
            assert_eq!(Insn::decode(i.encode(e), e), i);
        }
        assert_eq!(i.encode(Endian::Little)[1], 0x61);
        assert_eq!(i.encode(Endian::Big)[1], 0x16);
    }

    #[test]
    fn disassembles_like_the_verifier() {
        let d = |code, dst, src, off, imm| {
            Disasm {
                insn: Insn {
                    code,
                    dst,
                    src,
                    off,
                    imm,
                },
                next: None,
            }
            .to_string()
        };
        assert_eq!(d(0x61, 1, 6, 8, 0), "r1 = *(u32 *)(r6 +8)");
        assert_eq!(d(0x7b, 10, 1, -8, 0), "*(u64 *)(r10 -8) = r1");
        assert_eq!(d(0x07, 1, 0, 0, -8), "r1 += -8");
        assert_eq!(d(0xbf, 2, 10, 0, 0), "r2 = r10");
        assert_eq!(d(0x25, 1, 0, 3, 5), "if r1 > 0x5 goto pc+3");
        assert_eq!(d(0x85, 0, 0, 0, 1), "call #1");
        assert_eq!(d(0x85, 0, 1, 0, 7), "call pc+7");
        assert_eq!(d(0x95, 0, 0, 0, 0), "exit");
        assert_eq!(d(0xb4, 0, 0, 0, 0), "w0 = 0");
    }
}
