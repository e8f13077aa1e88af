//! `Kind` and the borrowed per-type views.
//!
//! A [`Type`] is a validated record: its accessors cannot fail. Trailing
//! arrays (members, enumerators, params, DATASEC entries) are decoded lazily
//! by iterators that read straight from the input bytes.

use core::fmt;

use super::raw::*;
use crate::bytes::{Endian, u32_at};
use crate::id::{StrOffset, TypeId};
pub use crate::kind::Kind;

impl Kind {
    /// The kind for a raw `BTF_KIND_*` value; kinds past `ENUM64` map to
    /// [`Kind::Unknown`] and 0 to `None`.
    #[inline]
    pub fn from_raw(k: u8) -> Option<Kind> {
        Some(match k {
            BTF_KIND_INT => Kind::Int,
            BTF_KIND_PTR => Kind::Ptr,
            BTF_KIND_ARRAY => Kind::Array,
            BTF_KIND_STRUCT => Kind::Struct,
            BTF_KIND_UNION => Kind::Union,
            BTF_KIND_ENUM => Kind::Enum,
            BTF_KIND_FWD => Kind::Fwd,
            BTF_KIND_TYPEDEF => Kind::Typedef,
            BTF_KIND_VOLATILE => Kind::Volatile,
            BTF_KIND_CONST => Kind::Const,
            BTF_KIND_RESTRICT => Kind::Restrict,
            BTF_KIND_FUNC => Kind::Func,
            BTF_KIND_FUNC_PROTO => Kind::FuncProto,
            BTF_KIND_VAR => Kind::Var,
            BTF_KIND_DATASEC => Kind::Datasec,
            BTF_KIND_FLOAT => Kind::Float,
            BTF_KIND_DECL_TAG => Kind::DeclTag,
            BTF_KIND_TYPE_TAG => Kind::TypeTag,
            BTF_KIND_ENUM64 => Kind::Enum64,
            0 => return None,
            _ => Kind::Unknown,
        })
    }
}

/// One type record, validated, borrowed from the BTF bytes.
#[derive(Clone, Copy)]
pub struct Type<'a> {
    pub(crate) id: TypeId,
    /// The whole record: `btf_type` plus its tail.
    pub(crate) rec: &'a [u8],
    pub(crate) endian: Endian,
}

impl fmt::Debug for Type<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Type")
            .field("id", &self.id)
            .field("kind", &self.kind())
            .field("name_off", &self.name_off())
            .field("vlen", &self.vlen())
            .finish()
    }
}

impl<'a> Type<'a> {
    #[inline(always)]
    fn word(&self, off: usize) -> u32 {
        // Records were bounds-checked when the BTF was opened.
        u32_at(self.rec, off, self.endian).unwrap_or(0)
    }

    /// This type's id.
    #[inline]
    pub fn id(&self) -> TypeId {
        self.id
    }

    /// Length of the whole record (`btf_type` plus its tail) in bytes.
    #[inline]
    pub fn record_len(&self) -> usize {
        self.rec.len()
    }

    /// The raw `info` word.
    #[inline]
    pub fn info(&self) -> u32 {
        self.word(4)
    }

    /// The kind.
    #[inline]
    pub fn kind(&self) -> Kind {
        Kind::from_raw(self.raw_kind()).unwrap_or(Kind::Unknown)
    }

    /// The raw `BTF_KIND_*` value.
    #[inline]
    pub fn raw_kind(&self) -> u8 {
        info_kind(self.info())
    }

    /// `name_off`; resolve it with [`Btf::str_at`](super::Btf::str_at).
    #[inline]
    pub fn name_off(&self) -> StrOffset {
        StrOffset(self.word(0))
    }

    /// Number of trailing elements (members, enumerators, params, entries);
    /// for FUNC it is the linkage.
    #[inline]
    pub fn vlen(&self) -> u32 {
        info_vlen(self.info())
    }

    /// The kind flag (bitfield mode, enum signedness, fwd union, raw tag).
    #[inline]
    pub fn kflag(&self) -> bool {
        info_kflag(self.info())
    }

    /// The `size` half of the `size`/`type` union (INT, composites, enums,
    /// DATASEC, FLOAT).
    #[inline]
    pub fn size(&self) -> u32 {
        self.word(8)
    }

    /// The `type` half of the union: pointee, aliased or modified type,
    /// FUNC's prototype, FUNC_PROTO's return type, VAR's type, tag target.
    #[inline]
    pub fn type_id(&self) -> TypeId {
        TypeId(self.word(8))
    }

    /// Whether the record is one of the kinds whose `size_or_type` is a type.
    pub fn refers_to_type(&self) -> bool {
        matches!(
            self.kind(),
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag
        )
    }

    /// INT details; `None` for other kinds.
    pub fn as_int(&self) -> Option<Int> {
        (self.kind() == Kind::Int).then(|| Int {
            size: self.size(),
            word: self.word(12),
        })
    }

    /// ARRAY details; `None` for other kinds.
    pub fn as_array(&self) -> Option<Array> {
        (self.kind() == Kind::Array).then(|| Array {
            elem_type: TypeId(self.word(12)),
            index_type: TypeId(self.word(16)),
            nelems: self.word(20),
        })
    }

    /// VAR linkage (0 static, 1 global, 2 extern); `None` for other kinds.
    pub fn var_linkage(&self) -> Option<u32> {
        (self.kind() == Kind::Var).then(|| self.word(12))
    }

    /// FUNC linkage (0 static, 1 global, 2 extern); `None` for other kinds.
    pub fn func_linkage(&self) -> Option<u32> {
        (self.kind() == Kind::Func).then(|| self.vlen())
    }

    /// DECL_TAG `component_idx` (-1 for the whole type); `None` for other kinds.
    pub fn decl_tag_component(&self) -> Option<i32> {
        (self.kind() == Kind::DeclTag).then(|| self.word(12) as i32)
    }

    fn tail(&self, elem: usize) -> Tail<'a> {
        let start = TYPE_LEN.saturating_add(fixed_tail_size(self.raw_kind()));
        Tail {
            bytes: self.rec.get(start..).unwrap_or(&[]),
            elem,
            endian: self.endian,
        }
    }

    /// Members of a STRUCT or UNION (empty for other kinds).
    pub fn members(&self) -> Members<'a> {
        let is = self.kind().is_composite();
        Members {
            tail: if is { self.tail(12) } else { Tail::EMPTY },
            kflag: self.kflag(),
        }
    }

    /// Enumerators of an ENUM or ENUM64, values widened to 64 bits (ENUM
    /// values sign- or zero-extended by the kind flag); empty for other kinds.
    pub fn enumerators(&self) -> Enumerators<'a> {
        let (tail, is64) = match self.kind() {
            Kind::Enum => (self.tail(8), false),
            Kind::Enum64 => (self.tail(12), true),
            _ => (Tail::EMPTY, false),
        };
        Enumerators {
            tail,
            is64,
            signed: self.kflag(),
        }
    }

    /// Parameters of a FUNC_PROTO (empty for other kinds).
    pub fn params(&self) -> Params<'a> {
        Params {
            tail: if self.kind() == Kind::FuncProto {
                self.tail(8)
            } else {
                Tail::EMPTY
            },
        }
    }

    /// Entries of a DATASEC (empty for other kinds).
    pub fn datasec_entries(&self) -> DatasecEntries<'a> {
        DatasecEntries {
            tail: if self.kind() == Kind::Datasec {
                self.tail(12)
            } else {
                Tail::EMPTY
            },
        }
    }
}

/// INT encoding details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    /// Storage size in bytes.
    pub size: u32,
    word: u32,
}

impl Int {
    /// `BTF_INT_ENCODING`: `BTF_INT_SIGNED`, `_CHAR`, `_BOOL` or 0.
    pub fn encoding(&self) -> u8 {
        ((self.word >> 24) & 0x0f) as u8
    }

    /// Legacy bit offset (`BTF_INT_OFFSET`).
    pub fn offset(&self) -> u32 {
        (self.word >> 16) & 0xff
    }

    /// Number of value bits (`BTF_INT_BITS`).
    pub fn bits(&self) -> u32 {
        self.word & 0xff
    }

    /// Whether the SIGNED bit is set.
    pub fn is_signed(&self) -> bool {
        self.encoding() & BTF_INT_SIGNED != 0
    }

    /// Whether the CHAR bit is set.
    pub fn is_char(&self) -> bool {
        self.encoding() & BTF_INT_CHAR != 0
    }

    /// Whether the BOOL bit is set.
    pub fn is_bool(&self) -> bool {
        self.encoding() & BTF_INT_BOOL != 0
    }
}

/// ARRAY details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array {
    /// Element type.
    pub elem_type: TypeId,
    /// Index type (an INT).
    pub index_type: TypeId,
    /// Number of elements (0 for flexible arrays).
    pub nelems: u32,
}

#[derive(Clone, Copy)]
struct Tail<'a> {
    bytes: &'a [u8],
    elem: usize,
    endian: Endian,
}

impl<'a> Tail<'a> {
    const EMPTY: Tail<'static> = Tail {
        bytes: &[],
        elem: 1,
        endian: Endian::Little,
    };

    #[inline]
    fn next_elem(&mut self) -> Option<(u32, u32, u32)> {
        let e = self.bytes.get(..self.elem)?;
        let a = u32_at(e, 0, self.endian)?;
        let b = u32_at(e, 4, self.endian)?;
        let c = u32_at(e, 8, self.endian).unwrap_or(0);
        self.bytes = self.bytes.get(self.elem..).unwrap_or(&[]);
        Some((a, b, c))
    }

    fn len(&self) -> usize {
        self.bytes.len().checked_div(self.elem).unwrap_or(0)
    }
}

/// A STRUCT or UNION member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Name (offset 0 for anonymous members).
    pub name_off: StrOffset,
    /// Member type.
    pub type_id: TypeId,
    /// Offset from the start of the composite, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits when the struct's kind flag is set; 0 otherwise
    /// (a kflag=0 bitfield shows in its INT's `bits`).
    pub bitfield_size: u32,
}

/// Iterator over members.
#[derive(Clone)]
pub struct Members<'a> {
    tail: Tail<'a>,
    kflag: bool,
}

impl fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Members")
            .field("left", &self.len())
            .finish()
    }
}

impl Iterator for Members<'_> {
    type Item = Member;
    #[inline]
    fn next(&mut self) -> Option<Member> {
        let (name, ty, off) = self.tail.next_elem()?;
        let (bit_offset, bitfield_size) = if self.kflag {
            (off & 0x00ff_ffff, off >> 24)
        } else {
            (off, 0)
        };
        Some(Member {
            name_off: StrOffset(name),
            type_id: TypeId(ty),
            bit_offset,
            bitfield_size,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.tail.len(), Some(self.tail.len()))
    }
}
impl ExactSizeIterator for Members<'_> {}

/// An ENUM or ENUM64 enumerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enumerator {
    /// Name.
    pub name_off: StrOffset,
    /// Value as the 64 bits the enum holds: ENUM values are sign-extended
    /// when the enum is signed, zero-extended otherwise.
    pub value: u64,
}

/// Iterator over enumerators.
#[derive(Clone)]
pub struct Enumerators<'a> {
    tail: Tail<'a>,
    is64: bool,
    signed: bool,
}

impl fmt::Debug for Enumerators<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enumerators")
            .field("left", &self.len())
            .finish()
    }
}

impl Iterator for Enumerators<'_> {
    type Item = Enumerator;
    #[inline]
    fn next(&mut self) -> Option<Enumerator> {
        let (name, lo, hi) = self.tail.next_elem()?;
        let value = if self.is64 {
            (u64::from(hi) << 32) | u64::from(lo)
        } else if self.signed {
            i64::from(lo as i32) as u64
        } else {
            u64::from(lo)
        };
        Some(Enumerator {
            name_off: StrOffset(name),
            value,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.tail.len(), Some(self.tail.len()))
    }
}
impl ExactSizeIterator for Enumerators<'_> {}

/// A FUNC_PROTO parameter; `{0, void}` as the last one means `...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Name (may be 0).
    pub name_off: StrOffset,
    /// Type (void for the varargs marker).
    pub type_id: TypeId,
}

/// Iterator over FUNC_PROTO parameters.
#[derive(Clone)]
pub struct Params<'a> {
    tail: Tail<'a>,
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params").field("left", &self.len()).finish()
    }
}

impl Iterator for Params<'_> {
    type Item = Param;
    #[inline]
    fn next(&mut self) -> Option<Param> {
        let (name, ty, _) = self.tail.next_elem()?;
        Some(Param {
            name_off: StrOffset(name),
            type_id: TypeId(ty),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.tail.len(), Some(self.tail.len()))
    }
}
impl ExactSizeIterator for Params<'_> {}

/// A DATASEC entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasecEntry {
    /// The VAR (or FUNC, for `.ksyms`).
    pub type_id: TypeId,
    /// Offset within the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// Iterator over DATASEC entries.
#[derive(Clone)]
pub struct DatasecEntries<'a> {
    tail: Tail<'a>,
}

impl fmt::Debug for DatasecEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatasecEntries")
            .field("left", &self.len())
            .finish()
    }
}

impl Iterator for DatasecEntries<'_> {
    type Item = DatasecEntry;
    #[inline]
    fn next(&mut self) -> Option<DatasecEntry> {
        let (ty, offset, size) = self.tail.next_elem()?;
        Some(DatasecEntry {
            type_id: TypeId(ty),
            offset,
            size,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.tail.len(), Some(self.tail.len()))
    }
}
impl ExactSizeIterator for DatasecEntries<'_> {}
