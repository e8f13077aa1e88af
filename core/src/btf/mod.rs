//! Zero-copy BTF: open and validate once, then borrow views.
//!
//! [`Btf::parse`] checks a blob in one pass (header, sections, every record's
//! bounds and kind rules, type ids and string offsets in range) and keeps one
//! `u32` offset per type; nothing else is allocated per type. Split BTF
//! (module BTF over vmlinux) is opened with [`Btf::parse_split`] and
//! continues its base's type ids and string offsets.

pub mod dump;
mod elf;
pub mod encode;

mod index;
pub mod layout;
mod lookup;
pub mod raw;
mod sort;
mod strings;
mod types;
mod validate;

use alloc::vec::Vec;

use once_cell::race::OnceBox;
use scroll::Pread;

pub use self::index::NameIndex;
use self::raw::*;
pub use self::sort::sort_by_name;
pub use self::strings::{essential_name, essential_name_len};
pub use self::types::{
    Array, DatasecEntries, DatasecEntry, Enumerator, Enumerators, Int, Kind, Member, Members,
    Param, Params, Type,
};
use crate::bytes::{Endian, u16_at, u32_at};
use crate::error::{Error, ErrorKind, Result, Section};
pub use crate::id::{StrOffset, TypeId};
use crate::limits;

/// A validated BTF blob borrowed from its bytes.
pub struct Btf<'a> {
    data: &'a [u8],
    endian: Endian,
    hdr_len: u32,
    /// Absolute offset and length of the type section.
    types: (usize, usize),
    /// The string section.
    strs: &'a [u8],
    /// The kind-layout section, if any.
    layout: &'a [u8],
    /// Absolute offset of each own type's record; entry 0 is `start_id`.
    offsets: Vec<u32>,
    /// Raw kind of each own type, beside `offsets`: filters by kind read
    /// one byte per type instead of each record's header.
    kinds: Vec<u8>,
    start_id: u32,
    start_str_off: u32,
    base: Option<&'a Btf<'a>>,
    ptr_size: u32,
    /// Own index of the first named type when own types are sorted by
    /// name with the anonymous ones first (binary search applies).
    sorted: Option<u32>,
    index: OnceBox<NameIndex>,
    prefetched: OnceBox<lookup::Prefetched>,
}

impl core::fmt::Debug for Btf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Btf")
            .field("endian", &self.endian)
            .field("start_id", &self.start_id)
            .field("types", &self.offsets.len())
            .field("str_len", &self.strs.len())
            .field("split", &self.base.is_some())
            .finish()
    }
}

/// Header facts needed by the type walk.
struct Sections<'a> {
    endian: Endian,
    hdr_len: u32,
    types: (usize, usize),
    strs: &'a [u8],
    strs_at: usize,
    layout: &'a [u8],
}

fn err<T>(kind: ErrorKind, at: usize) -> Result<T> {
    Err(Error::new(kind, at))
}

fn usz(v: u32) -> usize {
    v as usize
}

fn sections(data: &[u8]) -> Result<Sections<'_>> {
    let magic = u16_at(data, 0, Endian::Little).ok_or(Error::new(ErrorKind::Truncated, 0))?;
    let endian = match magic {
        BTF_MAGIC => Endian::Little,
        BTF_MAGIC_SWAPPED => Endian::Big,
        m => return err(ErrorKind::BadMagic(m), 0),
    };
    let hdr: BtfHeader = data
        .pread_with(0, endian.scroll())
        .map_err(|_| Error::new(ErrorKind::Truncated, 0))?;
    if hdr.version != BTF_VERSION {
        return err(ErrorKind::BadVersion(hdr.version), 2);
    }
    if hdr.flags != 0 {
        return err(ErrorKind::BadFlags(hdr.flags), 3);
    }
    if hdr.hdr_len < HEADER_LEN_V1 || usz(hdr.hdr_len) > data.len() {
        return err(ErrorKind::BadHeaderLen(hdr.hdr_len), 4);
    }
    let (mut layout_off, mut layout_len) = (0u32, 0u32);
    let mut known = HEADER_LEN_V1;
    if hdr.hdr_len >= HEADER_LEN_LAYOUT {
        layout_off = u32_at(data, 24, endian).unwrap_or(0);
        layout_len = u32_at(data, 28, endian).unwrap_or(0);
        known = HEADER_LEN_LAYOUT;
    }
    let tail = data.get(usz(known)..usz(hdr.hdr_len)).unwrap_or(&[]);
    if tail.iter().any(|&b| b != 0) {
        return err(ErrorKind::NonZeroHeaderTail, usz(known));
    }
    let hdr_len = usz(hdr.hdr_len);
    let body = data.len().saturating_sub(hdr_len);
    let end_of = |off: u32, len: u32| usz(off).checked_add(usz(len));

    if !hdr.type_off.is_multiple_of(4) {
        return err(ErrorKind::Misaligned(Section::Types), 8);
    }
    let types_end = end_of(hdr.type_off, hdr.type_len)
        .filter(|&e| e <= body)
        .ok_or(Error::new(ErrorKind::SectionOutOfBounds(Section::Types), 8))?;
    let strs_end = end_of(hdr.str_off, hdr.str_len)
        .filter(|&e| e <= body)
        .ok_or(Error::new(
            ErrorKind::SectionOutOfBounds(Section::Strings),
            16,
        ))?;
    if types_end > usz(hdr.str_off) {
        return err(ErrorKind::SectionsOverlap, 16);
    }
    let mut layout: &[u8] = &[];
    if layout_len != 0 {
        let lend = end_of(layout_off, layout_len)
            .filter(|&e| e <= body)
            .ok_or(Error::new(
                ErrorKind::SectionOutOfBounds(Section::Layout),
                24,
            ))?;
        if !layout_off.is_multiple_of(4) {
            return err(ErrorKind::Misaligned(Section::Layout), 24);
        }
        if !layout_len.is_multiple_of(4) {
            return err(ErrorKind::BadLayout, 28);
        }
        if usz(layout_off) < types_end || lend > usz(hdr.str_off) {
            return err(ErrorKind::SectionsOverlap, 24);
        }
        layout = data
            .get(hdr_len.saturating_add(usz(layout_off))..hdr_len.saturating_add(lend))
            .unwrap_or(&[]);
        // Each entry: u8 info_sz, u8 elem_sz, u16 flags; sizes multiples of 4.
        for (i, e) in layout.chunks_exact(4).enumerate() {
            if let [info_sz, elem_sz, ..] = *e {
                if !info_sz.is_multiple_of(4) || !elem_sz.is_multiple_of(4) {
                    return err(
                        ErrorKind::BadLayout,
                        hdr_len
                            .saturating_add(usz(layout_off))
                            .saturating_add(i.saturating_mul(4)),
                    );
                }
            }
        }
    }
    if hdr.str_len > limits::MAX_STR_LEN {
        return err(ErrorKind::StringsTooLarge(hdr.str_len), 20);
    }
    let strs_at = hdr_len.saturating_add(usz(hdr.str_off));
    let strs = data
        .get(strs_at..hdr_len.saturating_add(strs_end))
        .ok_or(Error::new(
            ErrorKind::SectionOutOfBounds(Section::Strings),
            16,
        ))?;
    let types_at = hdr_len.saturating_add(usz(hdr.type_off));
    Ok(Sections {
        endian,
        hdr_len: hdr.hdr_len,
        types: (types_at, usz(hdr.type_len)),
        strs,
        strs_at,
        layout,
    })
}

impl<'a> Btf<'a> {
    /// Opens a base BTF blob (e.g. `/sys/kernel/btf/vmlinux` or a `.BTF`
    /// section), validating it completely.
    ///
    /// # Errors
    /// Any malformed header, section, record or reference, with its offset.
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>> {
        Self::open(data, None)
    }

    /// Opens a split BTF blob (module BTF) on top of `base`.
    ///
    /// # Errors
    /// As [`Btf::parse`]; also when `base` has the other byte order.
    pub fn parse_split(data: &'a [u8], base: &'a Btf<'a>) -> Result<Btf<'a>> {
        Self::open(data, Some(base))
    }

    /// Opens the `.BTF` section of an ELF file (a BPF object, a vmlinux
    /// image or a kernel module), with an optional base for module BTF.
    ///
    /// # Errors
    /// When the ELF file cannot be read or has no `.BTF`, or as [`Btf::parse`].
    pub fn parse_elf(data: &'a [u8], base: Option<&'a Btf<'a>>) -> Result<Btf<'a>> {
        let sec = elf::section_data(data, ".BTF")?;
        Self::open(sec, base)
    }

    /// Opens raw BTF or, if `data` starts with the ELF magic, its `.BTF`.
    ///
    /// # Errors
    /// As [`Btf::parse_elf`] or [`Btf::parse`].
    pub fn parse_any(data: &'a [u8], base: Option<&'a Btf<'a>>) -> Result<Btf<'a>> {
        if elf::is_elf(data) {
            Self::parse_elf(data, base)
        } else {
            Self::open(data, base)
        }
    }

    fn open(data: &'a [u8], base: Option<&'a Btf<'a>>) -> Result<Btf<'a>> {
        let s = sections(data)?;
        if let Some(b) = base {
            if b.endian != s.endian {
                return err(ErrorKind::BaseEndianMismatch, 0);
            }
        } else {
            // A base string section starts with the empty string.
            if s.strs.first() != Some(&0) {
                return err(ErrorKind::StringsNoLeadingNul, s.strs_at);
            }
        }
        if !s.strs.is_empty() && s.strs.last() != Some(&0) {
            return err(ErrorKind::StringsNotTerminated, s.strs_at);
        }
        let (start_id, start_str_off) = match base {
            Some(b) => (
                b.type_count(),
                b.start_str_off
                    .checked_add(b.strs.len() as u32)
                    .ok_or(Error::new(ErrorKind::BadSplitBase, 0))?,
            ),
            None => (1, 0),
        };
        let mut btf = Btf {
            data,
            endian: s.endian,
            hdr_len: s.hdr_len,
            types: s.types,
            strs: s.strs,
            layout: s.layout,
            offsets: Vec::new(),
            kinds: Vec::new(),
            start_id,
            start_str_off,
            base,
            ptr_size: base.map_or(8, |b| b.ptr_size),
            sorted: None,
            index: OnceBox::new(),
            prefetched: OnceBox::new(),
        };
        match btf.endian {
            Endian::Little => btf.walk::<false>()?,
            Endian::Big => btf.walk::<true>()?,
        }
        btf.sorted = btf.detect_sorted();
        if base.is_none() {
            btf.ptr_size = btf.find_ptr_size().unwrap_or(Self::HOST_PTR_SIZE);
        }
        Ok(btf)
    }

    const HOST_PTR_SIZE: u32 = core::mem::size_of::<usize>() as u32;

    /// Record sizes `(info_sz, elem_sz)` for a kind from the layout section
    /// (a split BTF without one uses its base's).
    pub(crate) fn layout_for(&self, kind: u8) -> Option<(u32, u32)> {
        let own = if self.layout.is_empty() {
            self.base.map_or(&[][..], |b| b.layout)
        } else {
            self.layout
        };
        let at = usz(u32::from(kind)).checked_mul(4)?;
        match own.get(at..at.checked_add(4)?)? {
            &[info_sz, elem_sz, _, _] => Some((u32::from(info_sz), u32::from(elem_sz))),
            _ => None,
        }
    }

    /// Re-checks the cross-type rules of one record once all types are known.
    fn check_refs(&self, t: Type<'a>) -> Result<()> {
        let off = self.record_offset(t.id);
        match t.kind() {
            Kind::Array => {
                let a = t.as_array().unwrap_or(Array {
                    elem_type: TypeId::VOID,
                    index_type: TypeId::VOID,
                    nelems: 0,
                });
                if self.get(a.index_type).map(|x| x.kind()) != Some(Kind::Int) {
                    return err(ErrorKind::BadArray, off);
                }
            }
            Kind::Func if self.get(t.type_id()).map(|x| x.kind()) != Some(Kind::FuncProto) => {
                return err(ErrorKind::FuncNotProto(t.type_id()), off);
            }
            Kind::Datasec => {
                for e in t.datasec_entries() {
                    if !matches!(
                        self.get(e.type_id).map(|x| x.kind()),
                        Some(Kind::Var | Kind::Func)
                    ) {
                        return err(ErrorKind::BadDatasecEntry(e.type_id), off);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn record_offset(&self, id: TypeId) -> usize {
        id.0.checked_sub(self.start_id)
            .and_then(|i| self.offsets.get(usz(i)))
            .map_or(0, |&o| usz(o))
    }

    fn find_ptr_size(&self) -> Option<u32> {
        const LONG: [&str; 11] = [
            "long",
            "long int",
            "int long",
            "unsigned long",
            "long unsigned",
            "unsigned long int",
            "unsigned int long",
            "long unsigned int",
            "long int unsigned",
            "int unsigned long",
            "int long unsigned",
        ];
        self.types().find_map(|t| {
            let int = t.as_int()?;
            let name = self.str_at(t.name_off()).ok()?;
            (LONG.contains(&name) && matches!(int.size, 4 | 8)).then_some(int.size)
        })
    }

    /// Byte order of the blob.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The raw bytes this BTF was opened from.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Header length (24, or 32 with a layout section).
    pub fn header_len(&self) -> u32 {
        self.hdr_len
    }

    /// The string section.
    pub fn strings(&self) -> &'a [u8] {
        self.strs
    }

    /// The base of a split BTF.
    pub fn base(&self) -> Option<&'a Btf<'a>> {
        self.base
    }

    /// Number of type ids, including void and a split BTF's base types
    /// (libbpf's `btf__type_cnt`).
    pub fn type_count(&self) -> u32 {
        self.start_id.saturating_add(self.offsets.len() as u32)
    }

    /// First id that belongs to this BTF (1, or the base's type count).
    pub fn start_id(&self) -> TypeId {
        TypeId(self.start_id)
    }

    /// First string offset that belongs to this BTF (0 for a base).
    pub fn start_str_off(&self) -> StrOffset {
        StrOffset(self.start_str_off)
    }

    /// Pointer size: from the `long` INT, inherited by split BTF, else the host's.
    pub fn pointer_size(&self) -> u32 {
        self.ptr_size
    }

    /// The type with `id` (own or, for split BTF, the base's); `None` for
    /// void and ids past the end.
    #[inline]
    pub fn get(&self, id: TypeId) -> Option<Type<'a>> {
        let Some(own) = id.0.checked_sub(self.start_id) else {
            return self.base?.get(id);
        };
        let off = usz(*self.offsets.get(usz(own))?);
        let info = u32_at(self.data, off.saturating_add(4), self.endian)?;
        let kind = info_kind(info);
        let len = if let Some(&(fixed, elem)) = raw::RECORD_SIZES.get(usize::from(kind)) {
            TYPE_LEN
                .saturating_add(usize::from(fixed))
                .saturating_add(usz(info_vlen(info)).saturating_mul(usize::from(elem)))
        } else {
            let (i, e) = self.layout_for(kind)?;
            TYPE_LEN
                .saturating_add(usz(i))
                .saturating_add(usz(info_vlen(info)).saturating_mul(usz(e)))
        };
        Some(Type {
            id,
            rec: self.data.get(off..off.saturating_add(len))?,
            endian: self.endian,
        })
    }

    /// Absolute offset in [`Btf::data`] of each own type's record, in id
    /// order from [`Btf::start_id`].
    pub fn record_offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// Number of own types with a name (a nonzero name offset): one pass
    /// over the records (it sizes the name index). Not counted by the
    /// validation walk: one more live register there costs the walk more
    /// than this pass costs the index.
    pub fn named_count(&self) -> u32 {
        let n = self.own_headers().filter(|&(_, name, _)| name != 0).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The type section: absolute (offset, length) in [`Btf::data`].
    pub fn type_section(&self) -> (usize, usize) {
        self.types
    }

    /// Like [`Btf::get`], with an error naming the bad id.
    ///
    /// # Errors
    /// [`ErrorKind::BadTypeId`] for void and ids past the end.
    pub fn type_by_id(&self, id: TypeId) -> Result<Type<'a>> {
        self.get(id).ok_or(Error::new(ErrorKind::BadTypeId(id), 0))
    }

    /// This BTF's own types in id order (not the base's).
    pub fn types(&self) -> impl ExactSizeIterator<Item = Type<'a>> + '_ {
        (self.start_id..self.type_count()).map(move |i| {
            // Every own id resolves; the fallback is unreachable.
            self.get(TypeId(i)).unwrap_or(Type {
                id: TypeId(i),
                rec: &[],
                endian: self.endian,
            })
        })
    }

    /// `(id, name_off, info)` of each own type, read straight from the
    /// records (cheaper than building [`Type`] views).
    pub fn own_headers(&self) -> impl Iterator<Item = (TypeId, u32, u32)> + '_ {
        let e = self.endian;
        self.offsets
            .iter()
            .zip(self.start_id..)
            .map(move |(&off, id)| {
                let off = usz(off);
                let name = u32_at(self.data, off, e).unwrap_or(0);
                let info = u32_at(self.data, off.saturating_add(4), e).unwrap_or(0);
                (TypeId(id), name, info)
            })
    }

    /// Own types of the raw kinds in `mask` (bit per raw kind), ascending,
    /// with their name offsets: reads a type's record only when its kind
    /// is wanted.
    pub(crate) fn own_headers_of_kinds(
        &self,
        mask: u64,
    ) -> impl Iterator<Item = (TypeId, u32, u8)> + '_ {
        let e = self.endian;
        self.kinds
            .iter()
            .zip(self.offsets.iter())
            .zip(self.start_id..)
            .filter(move |&((&k, _), _)| mask & (1u64 << (k & 63)) != 0)
            .map(move |((&k, &off), id)| {
                let name = u32_at(self.data, usz(off), e).unwrap_or(0);
                (TypeId(id), name, k)
            })
    }

    /// The string at `off` (own or the base's).
    ///
    /// # Errors
    /// When `off` is out of range or the string is not UTF-8.
    #[inline]
    pub fn str_at(&self, off: StrOffset) -> Result<&'a str> {
        match off.0.checked_sub(self.start_str_off) {
            Some(local) => strings::str_at(self.strs, usz(local), off.0, 0),
            None => match self.base {
                Some(b) => b.str_at(off),
                None => err(ErrorKind::BadStrOffset(off.0), 0),
            },
        }
    }

    /// The string at `off` as raw bytes (no UTF-8 check).
    #[inline]
    pub fn bytes_at(&self, off: StrOffset) -> Option<&'a [u8]> {
        match off.0.checked_sub(self.start_str_off) {
            Some(local) => strings::cstr_at(self.strs, usz(local)),
            None => self.base?.bytes_at(off),
        }
    }

    /// The string section from `off` to its end, without finding where the
    /// string ends: for filters that look at a name's first bytes only (a
    /// NUL among them reads as the end, as in [`Btf::bytes_at`]).
    #[inline]
    pub(crate) fn bytes_from(&self, off: StrOffset) -> Option<&'a [u8]> {
        match off.0.checked_sub(self.start_str_off) {
            Some(local) => self.strs.get(usz(local)..),
            None => self.base?.bytes_from(off),
        }
    }

    /// A type's name, `""` when anonymous.
    ///
    /// # Errors
    /// As [`Btf::str_at`].
    pub fn name(&self, t: &Type<'_>) -> Result<&'a str> {
        self.str_at(t.name_off())
    }

    /// Follows CONST, VOLATILE, RESTRICT and TYPE_TAG from `id`.
    ///
    /// # Errors
    /// On a bad id or a chain longer than the resolution limit.
    pub fn skip_mods(&self, id: TypeId) -> Result<TypeId> {
        self.skip(id, false)
    }

    /// Follows modifiers and typedefs from `id`.
    ///
    /// # Errors
    /// On a bad id or a chain longer than the resolution limit.
    pub fn skip_mods_and_typedefs(&self, id: TypeId) -> Result<TypeId> {
        self.skip(id, true)
    }

    fn skip(&self, mut id: TypeId, typedefs: bool) -> Result<TypeId> {
        let start = id;
        for _ in 0..limits::MAX_RESOLVE_DEPTH {
            if id == TypeId::VOID {
                return Ok(id);
            }
            let t = self.type_by_id(id)?;
            let k = t.kind();
            if k.is_modifier() || (typedefs && k == Kind::Typedef) {
                id = t.type_id();
            } else {
                return Ok(id);
            }
        }
        err(ErrorKind::TypeChainTooDeep(start), 0)
    }

    /// Heap bytes this BTF holds beyond its input: the offset table, plus
    /// the name index once built.
    pub fn heap_bytes(&self) -> usize {
        let index = self.index.get().map_or(0, |i| {
            i.heap_bytes()
                .saturating_add(core::mem::size_of::<NameIndex>())
        });
        self.offsets
            .capacity()
            .saturating_mul(4)
            .saturating_add(index)
    }

    /// Whether the name index has been built already.
    pub fn has_index(&self) -> bool {
        self.index.get().is_some()
    }

    /// The name index over this BTF's own types, built on first use.
    pub fn index(&self) -> &NameIndex {
        self.index
            .get_or_init(|| alloc::boxed::Box::new(NameIndex::build(self)))
    }
}

#[cfg(test)]
mod lookup_tests;
#[cfg(test)]
pub(crate) mod test_util;
#[cfg(test)]
mod tests;
