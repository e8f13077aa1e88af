//! `.BTF.ext`: func_info, line_info and CO-RE relocation records.
//!
//! [`BtfExt::parse`] validates the header and the framing of every
//! subsection (record sizes, per-section counts, bounds) without
//! allocating; records are then decoded lazily. Record sizes larger than
//! this crate knows are strided over, reading only the known prefix.

use core::fmt;
use core::marker::PhantomData;

use crate::btf::{StrOffset, TypeId};
use crate::bytes::{Endian, u16_at, u32_at};
use crate::error::{Error, ErrorKind, Result};
use crate::id::SectionByteOffset;

const MAGIC: u16 = 0xeb9f;

/// A record kind of `.BTF.ext`.
pub trait ExtRecord: Sized + Copy {
    /// Smallest record size the format allows.
    const MIN_SIZE: u32;
    /// Decodes the known prefix of one record.
    fn decode(rec: &[u8], e: Endian) -> Self;
}

fn w(rec: &[u8], at: usize, e: Endian) -> u32 {
    u32_at(rec, at, e).unwrap_or(0)
}

/// `struct bpf_func_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfo {
    /// Byte offset of the function in its ELF section.
    pub insn_off: SectionByteOffset,
    /// Its BTF FUNC.
    pub type_id: TypeId,
}

impl ExtRecord for FuncInfo {
    const MIN_SIZE: u32 = 8;
    fn decode(r: &[u8], e: Endian) -> Self {
        FuncInfo {
            insn_off: SectionByteOffset(w(r, 0, e)),
            type_id: TypeId(w(r, 4, e)),
        }
    }
}

/// `struct bpf_line_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfo {
    /// Byte offset of the instruction in its ELF section.
    pub insn_off: SectionByteOffset,
    /// Source file name.
    pub file_name_off: StrOffset,
    /// Source line text.
    pub line_off: StrOffset,
    /// `line << 10 | column`.
    pub line_col: u32,
}

impl LineInfo {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }

    /// The column.
    pub fn column(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

impl ExtRecord for LineInfo {
    const MIN_SIZE: u32 = 16;
    fn decode(r: &[u8], e: Endian) -> Self {
        LineInfo {
            insn_off: SectionByteOffset(w(r, 0, e)),
            file_name_off: StrOffset(w(r, 4, e)),
            line_off: StrOffset(w(r, 8, e)),
            line_col: w(r, 12, e),
        }
    }
}

/// `struct bpf_core_relo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreRelo {
    /// Byte offset of the instruction in its ELF section.
    pub insn_off: SectionByteOffset,
    /// The local root type.
    pub type_id: TypeId,
    /// The access string (`0:1:2`).
    pub access_str_off: StrOffset,
    /// The relocation kind (`enum bpf_core_relo_kind`).
    pub kind: u32,
}

impl ExtRecord for CoreRelo {
    const MIN_SIZE: u32 = 16;
    fn decode(r: &[u8], e: Endian) -> Self {
        CoreRelo {
            insn_off: SectionByteOffset(w(r, 0, e)),
            type_id: TypeId(w(r, 4, e)),
            access_str_off: StrOffset(w(r, 8, e)),
            kind: w(r, 12, e),
        }
    }
}

/// One validated subsection: `u32 rec_size` then `{sec_name_off,
/// num_info, records}` blocks.
#[derive(Clone, Copy)]
struct Sub<'a> {
    blocks: &'a [u8],
    rec_size: u32,
}

impl Sub<'_> {
    const EMPTY: Sub<'static> = Sub {
        blocks: &[],
        rec_size: 1,
    };
}

/// A validated `.BTF.ext` blob borrowed from its bytes.
#[derive(Clone, Copy)]
pub struct BtfExt<'a> {
    endian: Endian,
    func: Sub<'a>,
    line: Sub<'a>,
    core: Sub<'a>,
}

impl fmt::Debug for BtfExt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BtfExt")
            .field("endian", &self.endian)
            .field("func_info_bytes", &self.func.blocks.len())
            .field("line_info_bytes", &self.line.blocks.len())
            .field("core_relo_bytes", &self.core.blocks.len())
            .finish()
    }
}

fn err<T>(kind: ErrorKind, at: usize) -> Result<T> {
    Err(Error::new(kind, at))
}

impl<'a> BtfExt<'a> {
    /// Opens and validates a `.BTF.ext` section.
    ///
    /// # Errors
    /// Bad header, a subsection outside the data or misaligned, a record
    /// size below the minimum or not a multiple of 4 (or, for foreign
    /// byte order, not exactly the minimum), an empty or truncated block.
    pub fn parse(data: &'a [u8]) -> Result<BtfExt<'a>> {
        let endian = match u16_at(data, 0, Endian::Little) {
            Some(MAGIC) => Endian::Little,
            Some(m) if m == MAGIC.swap_bytes() => Endian::Big,
            Some(m) => return err(ErrorKind::BadMagic(m), 0),
            None => return err(ErrorKind::Truncated, 0),
        };
        match data.get(2..4) {
            Some([1, 0]) => {}
            Some([1, f]) => return err(ErrorKind::BadFlags(*f), 3),
            Some([v, _]) => return err(ErrorKind::BadVersion(*v), 2),
            _ => return err(ErrorKind::Truncated, 0),
        }
        let hdr_len = u32_at(data, 4, endian).ok_or(Error::new(ErrorKind::Truncated, 4))?;
        if hdr_len < 24 || hdr_len as usize > data.len() {
            return err(ErrorKind::BadHeaderLen(hdr_len), 4);
        }
        let word = |at: usize| u32_at(data, at, endian).unwrap_or(0);
        let h = hdr_len as usize;
        let func = Self::sub::<FuncInfo>(data, h, word(8), word(12), endian, 8)?;
        let line = Self::sub::<LineInfo>(data, h, word(16), word(20), endian, 16)?;
        let core = if hdr_len >= 32 {
            Self::sub::<CoreRelo>(data, h, word(24), word(28), endian, 24)?
        } else {
            Sub::EMPTY
        };
        Ok(BtfExt {
            endian,
            func,
            line,
            core,
        })
    }

    fn sub<R: ExtRecord>(
        data: &'a [u8],
        hdr_len: usize,
        off: u32,
        len: u32,
        e: Endian,
        hdr_field: usize,
    ) -> Result<Sub<'a>> {
        if len == 0 {
            return Ok(Sub::EMPTY);
        }
        let start = hdr_len.saturating_add(off as usize);
        let end = start.saturating_add(len as usize);
        if !off.is_multiple_of(4) {
            return err(
                ErrorKind::Misaligned(crate::error::Section::Types),
                hdr_field,
            );
        }
        let Some(bytes) = data.get(start..end) else {
            return err(
                ErrorKind::SectionOutOfBounds(crate::error::Section::Types),
                hdr_field,
            );
        };
        let rec_size = u32_at(bytes, 0, e).ok_or(Error::new(ErrorKind::Truncated, start))?;
        let bad_size = rec_size < R::MIN_SIZE
            || !rec_size.is_multiple_of(4)
            || (e != Endian::NATIVE && rec_size != R::MIN_SIZE);
        if bad_size {
            return err(ErrorKind::BadExtRecordSize(rec_size), start);
        }
        let blocks = bytes.get(4..).unwrap_or(&[]);
        // Validate the framing once so iteration cannot fail.
        let mut at = 0usize;
        while at < blocks.len() {
            let abs = start.saturating_add(4).saturating_add(at);
            let num = u32_at(blocks, at.saturating_add(4), e)
                .ok_or(Error::new(ErrorKind::Truncated, abs))?;
            if num == 0 {
                return err(ErrorKind::EmptyExtBlock, abs);
            }
            let size = (num as usize)
                .checked_mul(rec_size as usize)
                .and_then(|n| n.checked_add(8))
                .ok_or(Error::new(ErrorKind::Truncated, abs))?;
            let next = at.saturating_add(size);
            if next > blocks.len() {
                return err(ErrorKind::Truncated, abs);
            }
            at = next;
        }
        Ok(Sub { blocks, rec_size })
    }

    /// Byte order of the blob.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// func_info, one block per ELF section.
    pub fn func_info(&self) -> Blocks<'a, FuncInfo> {
        Blocks::new(self.func, self.endian)
    }

    /// line_info, one block per ELF section.
    pub fn line_info(&self) -> Blocks<'a, LineInfo> {
        Blocks::new(self.line, self.endian)
    }

    /// CO-RE relocations, one block per ELF section.
    pub fn core_relos(&self) -> Blocks<'a, CoreRelo> {
        Blocks::new(self.core, self.endian)
    }
}

/// Iterator over the per-section blocks of one subsection.
pub struct Blocks<'a, R> {
    rest: &'a [u8],
    rec_size: usize,
    endian: Endian,
    _r: PhantomData<R>,
}

impl<R> fmt::Debug for Blocks<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocks")
            .field("left_bytes", &self.rest.len())
            .finish()
    }
}

impl<'a, R> Blocks<'a, R> {
    fn new(sub: Sub<'a>, endian: Endian) -> Self {
        Blocks {
            rest: sub.blocks,
            rec_size: sub.rec_size as usize,
            endian,
            _r: PhantomData,
        }
    }
}

/// The records of one ELF section.
pub struct Block<'a, R> {
    /// The ELF section's name (a `.BTF` string).
    pub sec_name_off: StrOffset,
    records: &'a [u8],
    rec_size: usize,
    endian: Endian,
    _r: PhantomData<R>,
}

impl<R> fmt::Debug for Block<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("sec_name_off", &self.sec_name_off)
            .field("bytes", &self.records.len())
            .finish()
    }
}

impl<'a, R: ExtRecord> Block<'a, R> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len().checked_div(self.rec_size).unwrap_or(0)
    }

    /// Whether the block is empty (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, decoded.
    pub fn records(&self) -> impl ExactSizeIterator<Item = R> + use<'a, R> {
        let e = self.endian;
        self.records
            .chunks_exact(self.rec_size.max(1))
            .map(move |r| R::decode(r, e))
    }
}

impl<'a, R: ExtRecord> Iterator for Blocks<'a, R> {
    type Item = Block<'a, R>;
    fn next(&mut self) -> Option<Block<'a, R>> {
        let name = u32_at(self.rest, 0, self.endian)?;
        let num = u32_at(self.rest, 4, self.endian)? as usize;
        let len = num.checked_mul(self.rec_size)?;
        let records = self.rest.get(8..8usize.checked_add(len)?)?;
        self.rest = self.rest.get(8usize.saturating_add(len)..).unwrap_or(&[]);
        Some(Block {
            sec_name_off: StrOffset(name),
            records,
            rec_size: self.rec_size,
            endian: self.endian,
            _r: PhantomData,
        })
    }
}
