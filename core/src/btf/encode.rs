//! BTF encoder: typed records in, a BTF blob out, in either byte order.
//!
//! [`Encoder`] takes one [`TypeRecord`] per type (ids are handed out in the
//! order types are added, from 1, or after the base for split BTF) and a
//! deduplicated string table, and [`Encoder::finish`] writes the blob.
//! [`reencode`] runs a parsed [`Btf`] through the same typed path.
//!
//! # Canonical BTF
//! A blob is *canonical* when [`reencode`] gives back the same bytes. That
//! holds exactly when:
//! - the header is 24 bytes, or 32 with a non-empty kind-layout section;
//! - the sections tile the data after the header with no gap and nothing
//!   after them, in the order types (at offset 0), layout, strings;
//! - no record has bits set that its kind does not use (the parser rejects
//!   most: vlen and kind flag on kinds without them; INT's word bits 8..15
//!   are the one exception it lets through).
//!
//! Re-encoding keeps the input's string section byte for byte (so every
//! `name_off` stays valid). Strings added through [`Encoder::add_str`] are
//! appended once each, in the order first added. Every kernel's vmlinux and
//! module BTF, and clang's `.BTF`, are canonical.
//!
//! # Example
//! ```
//! use ember_core::Endian;
//! use ember_core::btf::encode::{Body, Encoder, TypeRecord, reencode};
//! use ember_core::btf::{Btf, Kind, Member, TypeId};
//! let mut e = Encoder::new(Endian::Big);
//! let int = e.add_str("int")?;
//! let i = e.add(&TypeRecord::named(int, Body::Int { size: 4, encoding: 1, offset: 0, bits: 32 }))?;
//! let (s, x) = (e.add_str("s")?, e.add_str("x")?);
//! let m = [Member { name_off: x, type_id: i, bit_offset: 0, bitfield_size: 0 }];
//! e.add(&TypeRecord::named(s, Body::Struct { size: 4, members: &m }))?;
//! let blob = e.finish()?;
//! let btf = Btf::parse(&blob)?;
//! assert_eq!(btf.find_by_name_kind("s", Kind::Struct), Some(TypeId(2)));
//! assert_eq!(reencode(&btf)?, blob);
//! # Ok::<(), ember_core::Error>(())
//! ```

mod record;

use alloc::vec::Vec;

use hashbrown::HashTable;

pub use self::record::{Body, Scratch, TypeRecord};
use super::raw::*;
use super::{Btf, StrOffset, TypeId};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};
use crate::limits;

fn oom() -> Error {
    Error::new(ErrorKind::OutOfMemory, 0)
}

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

fn hash(s: &[u8]) -> u64 {
    let mut h = (s.len() as u64).wrapping_mul(SEED);
    for c in s.chunks(8) {
        let w = c.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
        h = (h.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
    h ^ (h >> 29)
}

/// A string section with whole-string deduplication.
struct Strings {
    bytes: Vec<u8>,
    /// Local offsets of the strings in `bytes`, keyed by content.
    table: HashTable<u32>,
    /// Offsets below `indexed` are in `table`.
    indexed: usize,
    /// First offset of this section (a split BTF continues its base's).
    start: u32,
}

impl Strings {
    fn cstr(bytes: &[u8], at: u32) -> &[u8] {
        let tail = bytes.get(at as usize..).unwrap_or(&[]);
        tail.get(..tail.iter().position(|&b| b == 0).unwrap_or(tail.len()))
            .unwrap_or(&[])
    }

    /// Indexes the strings not yet in the table (those from a verbatim
    /// section), each at its first occurrence.
    fn catch_up(&mut self) -> Result<()> {
        let bytes = &self.bytes;
        let mut at = self.indexed;
        while at < bytes.len() {
            let s = Self::cstr(bytes, at as u32);
            let h = hash(s);
            let found = self.table.find(h, |&o| Self::cstr(bytes, o) == s).is_some();
            if !found {
                self.table
                    .try_reserve(1, |&o| hash(Self::cstr(bytes, o)))
                    .map_err(|_| oom())?;
                self.table
                    .insert_unique(h, at as u32, |&o| hash(Self::cstr(bytes, o)));
            }
            at = at.saturating_add(s.len()).saturating_add(1);
        }
        self.indexed = at;
        Ok(())
    }

    fn add(&mut self, s: &[u8]) -> Result<StrOffset> {
        if s.contains(&0) {
            return Err(Error::new(ErrorKind::InvalidUtf8(0), 0));
        }
        if s.is_empty() && self.start == 0 {
            return Ok(StrOffset::EMPTY);
        }
        self.catch_up()?;
        let h = hash(s);
        let bytes = &self.bytes;
        if let Some(&o) = self.table.find(h, |&o| Self::cstr(bytes, o) == s) {
            return Ok(StrOffset(self.start.saturating_add(o)));
        }
        let at = self.bytes.len();
        let end = at.saturating_add(s.len()).saturating_add(1);
        if end > limits::MAX_STR_LEN as usize {
            return Err(Error::new(ErrorKind::StringsTooLarge(end as u32), 0));
        }
        self.bytes
            .try_reserve(s.len().saturating_add(1))
            .map_err(|_| oom())?;
        self.bytes.extend_from_slice(s);
        self.bytes.push(0);
        self.indexed = end;
        let bytes = &self.bytes;
        self.table
            .try_reserve(1, |&o| hash(Self::cstr(bytes, o)))
            .map_err(|_| oom())?;
        self.table
            .insert_unique(h, at as u32, |&o| hash(Self::cstr(bytes, o)));
        Ok(StrOffset(self.start.saturating_add(at as u32)))
    }
}

/// Builds a BTF blob type by type.
pub struct Encoder {
    endian: Endian,
    types: Vec<u8>,
    next_id: u32,
    strs: Strings,
    layout: Vec<u8>,
}

impl core::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encoder")
            .field("endian", &self.endian)
            .field("next_id", &self.next_id)
            .field("type_bytes", &self.types.len())
            .field("str_bytes", &self.strs.bytes.len())
            .finish()
    }
}

impl Encoder {
    /// An empty base BTF (string section holding just the empty string).
    pub fn new(endian: Endian) -> Encoder {
        Encoder {
            endian,
            types: Vec::new(),
            next_id: 1,
            strs: Strings {
                bytes: alloc::vec![0],
                table: HashTable::new(),
                indexed: 1,
                start: 0,
            },
            layout: Vec::new(),
        }
    }

    /// An empty split BTF over `base`: ids and string offsets continue
    /// the base's. Names found in the base are not copied (use the
    /// base's offsets for them).
    pub fn new_split(base: &Btf<'_>) -> Encoder {
        Encoder {
            endian: base.endian(),
            types: Vec::new(),
            next_id: base.type_count(),
            strs: Strings {
                bytes: Vec::new(),
                table: HashTable::new(),
                indexed: 0,
                start: base
                    .start_str_off()
                    .0
                    .saturating_add(base.strings().len() as u32),
            },
            layout: Vec::new(),
        }
    }

    /// An encoder primed with `btf`'s string section (verbatim) and its
    /// kind-layout section, with no types yet: add them to re-encode.
    pub fn with_strings_of(btf: &Btf<'_>) -> Encoder {
        let mut e = match btf.base() {
            Some(b) => Encoder::new_split(b),
            None => Encoder::new(btf.endian()),
        };
        e.strs.bytes = btf.strings().to_vec();
        e.strs.indexed = 0;
        e.layout = btf.layout.to_vec();
        e
    }

    /// The id the next added type gets.
    pub fn next_id(&self) -> TypeId {
        TypeId(self.next_id)
    }

    /// Byte order of the output.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// Adds a string (once: an equal string already present is reused).
    ///
    /// # Errors
    /// A string with a NUL byte, a string section past its size limit, or
    /// no memory.
    pub fn add_str(&mut self, s: &str) -> Result<StrOffset> {
        self.strs.add(s.as_bytes())
    }

    fn word(&mut self, v: u32) {
        let b = match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        self.types.extend_from_slice(&b);
    }

    /// Appends one type and returns its id.
    ///
    /// # Errors
    /// More than [`limits::MAX_TYPES`] types, a vlen over 24 bits, or no
    /// memory.
    pub fn add(&mut self, r: &TypeRecord<'_>) -> Result<TypeId> {
        if self.next_id > limits::MAX_TYPES {
            return Err(Error::new(ErrorKind::TooManyTypes, 0));
        }
        let (kind, vlen, st, elems) = match r.body {
            Body::Int { size, .. } => (BTF_KIND_INT, 0, size, 1),
            Body::Ptr(t) => (BTF_KIND_PTR, 0, t.0, 0),
            Body::Array(_) => (BTF_KIND_ARRAY, 0, 0, 3),
            Body::Struct { size, members } => (BTF_KIND_STRUCT, members.len(), size, 0),
            Body::Union { size, members } => (BTF_KIND_UNION, members.len(), size, 0),
            Body::Enum { size, values } => (BTF_KIND_ENUM, values.len(), size, 0),
            Body::Fwd => (BTF_KIND_FWD, 0, 0, 0),
            Body::Typedef(t) => (BTF_KIND_TYPEDEF, 0, t.0, 0),
            Body::Volatile(t) => (BTF_KIND_VOLATILE, 0, t.0, 0),
            Body::Const(t) => (BTF_KIND_CONST, 0, t.0, 0),
            Body::Restrict(t) => (BTF_KIND_RESTRICT, 0, t.0, 0),
            Body::Func { proto, linkage } => (BTF_KIND_FUNC, linkage as usize, proto.0, 0),
            Body::FuncProto { ret, params } => (BTF_KIND_FUNC_PROTO, params.len(), ret.0, 0),
            Body::Var { type_id, .. } => (BTF_KIND_VAR, 0, type_id.0, 1),
            Body::Datasec { size, entries } => (BTF_KIND_DATASEC, entries.len(), size, 0),
            Body::Float(size) => (BTF_KIND_FLOAT, 0, size, 0),
            Body::DeclTag { type_id, .. } => (BTF_KIND_DECL_TAG, 0, type_id.0, 1),
            Body::TypeTag(t) => (BTF_KIND_TYPE_TAG, 0, t.0, 0),
            Body::Enum64 { size, values } => (BTF_KIND_ENUM64, values.len(), size, 0),
            Body::Raw {
                kind,
                size_or_type,
                vlen,
                tail,
            } => (kind, vlen as usize, size_or_type, tail.len().div_ceil(4)),
        };
        if vlen > 0x00ff_ffff {
            return Err(Error::new(ErrorKind::TooMany("vlen"), 0));
        }
        let per = vlen_elem_size(kind).checked_div(4).unwrap_or(0);
        let words = 3usize
            .saturating_add(elems)
            .saturating_add(vlen.saturating_mul(per));
        self.types
            .try_reserve(words.saturating_mul(4))
            .map_err(|_| oom())?;
        let info = (u32::from(r.kflag) << 31) | (u32::from(kind & 0x7f) << 24) | vlen as u32;
        self.word(r.name.0);
        self.word(info);
        self.word(st);
        match r.body {
            Body::Int {
                encoding,
                offset,
                bits,
                ..
            } => {
                self.word((u32::from(encoding) << 24) | (u32::from(offset) << 16) | u32::from(bits))
            }
            Body::Array(a) => {
                self.word(a.elem_type.0);
                self.word(a.index_type.0);
                self.word(a.nelems);
            }
            Body::Struct { members, .. } | Body::Union { members, .. } => {
                for m in members {
                    self.word(m.name_off.0);
                    self.word(m.type_id.0);
                    self.word(if r.kflag {
                        (m.bitfield_size << 24) | (m.bit_offset & 0x00ff_ffff)
                    } else {
                        m.bit_offset
                    });
                }
            }
            Body::Enum { values, .. } => {
                for v in values {
                    self.word(v.name_off.0);
                    self.word(v.value as u32);
                }
            }
            Body::Enum64 { values, .. } => {
                for v in values {
                    self.word(v.name_off.0);
                    self.word(v.value as u32);
                    self.word((v.value >> 32) as u32);
                }
            }
            Body::FuncProto { params, .. } => {
                for p in params {
                    self.word(p.name_off.0);
                    self.word(p.type_id.0);
                }
            }
            Body::Var { linkage, .. } => self.word(linkage),
            Body::Datasec { entries, .. } => {
                for e in entries {
                    self.word(e.type_id.0);
                    self.word(e.offset);
                    self.word(e.size);
                }
            }
            Body::DeclTag { component, .. } => self.word(component as u32),
            Body::Raw { tail, .. } => {
                self.types.extend_from_slice(tail);
                let pad = tail.len().wrapping_neg() & 3;
                self.types
                    .extend_from_slice([0u8; 3].get(..pad).unwrap_or(&[]));
            }
            _ => {}
        }
        let id = TypeId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        Ok(id)
    }

    /// Writes the blob: header, types, layout (if any), strings.
    ///
    /// # Errors
    /// When a section outgrows 32-bit offsets, or no memory.
    pub fn finish(self) -> Result<Vec<u8>> {
        let big =
            |n: usize| u32::try_from(n).map_err(|_| Error::new(ErrorKind::TooMany("bytes"), 0));
        let type_len = big(self.types.len())?;
        let layout_len = big(self.layout.len())?;
        let str_len = big(self.strs.bytes.len())?;
        let hdr_len = if self.layout.is_empty() {
            HEADER_LEN_V1
        } else {
            HEADER_LEN_LAYOUT
        };
        let total = (hdr_len as usize)
            .saturating_add(self.types.len())
            .saturating_add(self.layout.len())
            .saturating_add(self.strs.bytes.len());
        let mut out = Vec::new();
        out.try_reserve_exact(total).map_err(|_| oom())?;
        let w = |v: u32| match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        out.extend_from_slice(&match self.endian {
            Endian::Little => BTF_MAGIC.to_le_bytes(),
            Endian::Big => BTF_MAGIC.to_be_bytes(),
        });
        out.extend_from_slice(&[BTF_VERSION, 0]);
        let str_off = type_len.saturating_add(layout_len);
        for v in [hdr_len, 0, type_len, str_off, str_len] {
            out.extend_from_slice(&w(v));
        }
        if !self.layout.is_empty() {
            out.extend_from_slice(&w(type_len));
            out.extend_from_slice(&w(layout_len));
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.layout);
        out.extend_from_slice(&self.strs.bytes);
        Ok(out)
    }
}

/// Re-encodes a parsed BTF through [`TypeRecord`]s: the same bytes when
/// the input is canonical (see the module docs), an equivalent canonical
/// blob otherwise.
///
/// # Errors
/// As [`Encoder::add`] and [`Encoder::finish`].
pub fn reencode(btf: &Btf<'_>) -> Result<Vec<u8>> {
    reencode_as(btf, btf.endian())
}

/// Like [`reencode`], in the given byte order.
///
/// # Errors
/// As [`reencode`]; and [`ErrorKind::UnknownKind`] for a kind this crate
/// cannot byte-swap.
pub fn reencode_as(btf: &Btf<'_>, endian: Endian) -> Result<Vec<u8>> {
    let mut enc = Encoder::with_strings_of(btf);
    enc.endian = endian;
    if endian != btf.endian() {
        // Layout entries are {u8, u8, u16 flags}: swap the flags.
        for e in enc.layout.chunks_exact_mut(4) {
            e.swap(2, 3);
        }
    }
    let mut scratch = Scratch::default();
    for t in btf.types() {
        let r = t.to_record(&mut scratch)?;
        if let Body::Raw { kind, .. } = r.body {
            if endian != btf.endian() {
                return Err(Error::new(ErrorKind::UnknownKind(kind), 0));
            }
        }
        enc.add(&r)?;
    }
    enc.finish()
}

#[cfg(test)]
mod tests;
