//! The one validation pass over a BTF type section.
//!
//! Hot: it touches every byte of every record of vmlinux BTF. It is generic
//! over byte order so reads compile to plain loads, reads fixed-size
//! records as arrays (no per-field bounds checks), and checks each
//! reference against a running maximum instead of looking it up.

use super::raw::*;
use super::{Btf, Kind, TypeId};
use crate::error::{Error, ErrorKind, Result};
use crate::limits;

#[inline(always)]
fn word<const BE: bool>(b: [u8; 4]) -> u32 {
    if BE {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Splits a 12-byte element into three words (chunk references, not
/// byte-by-byte array copies, so each word is one load).
#[inline(always)]
fn words3<const BE: bool>(c: &[u8]) -> (u32, u32, u32) {
    let Some((a, r)) = c.split_first_chunk::<4>() else {
        return (0, 0, 0);
    };
    let Some((b, r)) = r.split_first_chunk::<4>() else {
        return (0, 0, 0);
    };
    let Some((d, _)) = r.split_first_chunk::<4>() else {
        return (0, 0, 0);
    };
    (word::<BE>(*a), word::<BE>(*b), word::<BE>(*d))
}

/// Splits an 8-byte element into two words.
#[inline(always)]
fn words2<const BE: bool>(c: &[u8]) -> (u32, u32) {
    let Some((a, r)) = c.split_first_chunk::<4>() else {
        return (0, 0);
    };
    let Some((b, _)) = r.split_first_chunk::<4>() else {
        return (0, 0);
    };
    (word::<BE>(*a), word::<BE>(*b))
}

#[inline(always)]
fn rd<const BE: bool>(d: &[u8], off: usize) -> u32 {
    match d.get(off..).and_then(<[u8]>::first_chunk::<4>) {
        Some(w) => word::<BE>(*w),
        None => 0,
    }
}

#[cold]
fn fail<T>(kind: ErrorKind, at: usize) -> Result<T> {
    Err(Error::new(kind, at))
}

/// Cross-record facts gathered during the walk.
struct Refs {
    /// Highest type id referenced by any record, and that record's offset.
    max: u32,
    max_at: usize,
    /// Records with forward references whose target kind is checked after
    /// the walk (usually few).
    deferred: alloc::vec::Vec<u32>,
    /// Kind of each own type walked so far: a 1-byte-per-type table so
    /// FUNC and ARRAY references are checked in cache instead of chasing
    /// records across the blob; kept as `Btf::kinds` after the walk.
    kinds: alloc::vec::Vec<u8>,
}

impl Refs {
    #[inline(always)]
    fn see(&mut self, t: u32, at: usize) {
        if t > self.max {
            self.max = t;
            self.max_at = at;
        }
    }

    fn defer(&mut self, id: u32, at: usize) -> Result<()> {
        self.deferred
            .try_reserve(1)
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, at))?;
        self.deferred.push(id);
        Ok(())
    }
}

impl<'a> Btf<'a> {
    /// Walks and validates every record, filling the offset table.
    pub(super) fn walk<const BE: bool>(&mut self) -> Result<()> {
        let (types_at, types_len) = self.types;
        let data = self.data;
        let types_end = types_at.saturating_add(types_len);
        let types = data.get(..types_end).unwrap_or(&[]);
        // vmlinux BTF averages ~25 bytes a record; grow from there.
        self.offsets
            .try_reserve((types_len / 24).saturating_add(16))
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, types_at))?;
        let str_end = self.start_str_off.saturating_add(self.strs.len() as u32);
        let max_own = limits::MAX_TYPES
            .saturating_sub(self.start_id)
            .saturating_add(1) as usize;
        let mut refs = Refs {
            max: 0,
            max_at: 0,
            deferred: alloc::vec::Vec::new(),
            kinds: alloc::vec::Vec::new(),
        };
        refs.kinds
            .try_reserve((types_len / 24).saturating_add(16))
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, types_at))?;
        let mut off = types_at;
        while off < types_end {
            let n = self.offsets.len();
            let id = self.start_id.saturating_add(n as u32);
            if n >= max_own {
                return fail(ErrorKind::TooManyTypes, off);
            }
            let (name_off, info, size_or_type) = match types.get(off..off.saturating_add(TYPE_LEN))
            {
                Some(h) => words3::<BE>(h),
                None => return fail(ErrorKind::RecordOutOfBounds(TypeId(id)), off),
            };
            let kind = info_kind(info);
            // One dispatch on the kind sizes the record and checks it: a
            // separate size lookup first mispredicts a second time.
            let rec_end = self.check::<BE>(
                id,
                kind,
                info,
                name_off,
                size_or_type,
                types,
                off,
                str_end,
                &mut refs,
            )?;
            if self.offsets.len() == self.offsets.capacity() {
                let more = (self.offsets.len() / 2).saturating_add(16);
                self.offsets
                    .try_reserve(more)
                    .and_then(|()| refs.kinds.try_reserve(more))
                    .map_err(|_| Error::new(ErrorKind::OutOfMemory, off))?;
            }
            self.offsets.push(off as u32);
            refs.kinds.push(kind);
            off = rec_end;
        }
        if refs.max >= self.type_count() {
            return fail(ErrorKind::BadTypeId(TypeId(refs.max)), refs.max_at);
        }
        for &id in &refs.deferred {
            let t = self.type_by_id(TypeId(id))?;
            self.check_refs(t)?;
        }
        // Shrink only a clearly oversized table: shrinking reallocates
        // and copies, which costs more than the slack saves.
        if self.offsets.capacity() > self.offsets.len().saturating_mul(2).saturating_add(64) {
            self.offsets.shrink_to_fit();
            refs.kinds.shrink_to_fit();
        }
        self.kinds = refs.kinds;
        Ok(())
    }

    /// The kind of an already-walked type, cheaply.
    #[inline(always)]
    fn walked_kind(&self, kinds: &[u8], id: u32) -> Option<u8> {
        match id.checked_sub(self.start_id) {
            Some(i) => kinds.get(i as usize).copied(),
            None => Some(self.base?.get(TypeId(id))?.raw_kind()),
        }
    }

    /// Kind-specific rules for one record, in the spirit of the kernel's
    /// `btf_check_meta` but accepting what clang writes into BPF objects
    /// (extern linkage, FUNCs in `.ksyms`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one hot call site; all borrowed state"
    )]
    #[inline(always)]
    fn check<const BE: bool>(
        &self,
        id: u32,
        kind: u8,
        info: u32,
        name_off: u32,
        size_or_type: u32,
        types: &'a [u8],
        off: usize,
        str_end: u32,
        refs: &mut Refs,
    ) -> Result<usize> {
        let k = Kind::from_raw(kind).unwrap_or(Kind::Unknown);
        let vlen = info_vlen(info);
        let id_ = id;
        // The record's tail of `fixed` bytes plus `vlen` elements of
        // `elem`, bounds-checked; its name offset is checked after it.
        let tail_of = |fixed: usize, elem: usize| -> Result<&'a [u8]> {
            let start = off.saturating_add(TYPE_LEN);
            let end = start
                .saturating_add(fixed)
                .saturating_add((vlen as usize).saturating_mul(elem));
            let Some(t) = types.get(start..end) else {
                return fail(ErrorKind::RecordOutOfBounds(TypeId(id_)), off);
            };
            if name_off >= str_end {
                return fail(ErrorKind::BadStrOffset(name_off), off);
            }
            Ok(t)
        };
        let kflag = info_kflag(info);
        let no_vlen = || {
            if vlen != 0 {
                fail(ErrorKind::NonZeroVlen(k), off)
            } else {
                Ok(())
            }
        };
        let no_kflag = || {
            if kflag {
                fail(ErrorKind::KindFlagSet(k), off)
            } else {
                Ok(())
            }
        };
        // Only the offset is checked: reading the string would cost a cache
        // miss per named record, and an empty name is harmless to readers.
        let needs_name = || {
            if name_off == 0 {
                fail(ErrorKind::NameRequired(k), off)
            } else {
                Ok(())
            }
        };
        let tail: &[u8];
        match kind {
            BTF_KIND_INT => {
                tail = tail_of(4, 0)?;
                no_vlen()?;
                no_kflag()?;
                let v = rd::<BE>(tail, 0);
                let bits = v & 0xff;
                let boff = (v >> 16) & 0xff;
                let enc = (v >> 24) & 0x0f;
                if !matches!(size_or_type, 1 | 2 | 4 | 8 | 16) {
                    return fail(ErrorKind::BadSize(k, size_or_type), off);
                }
                if v >> 28 != 0
                    || bits > 128
                    || bits.saturating_add(boff) > size_or_type.saturating_mul(8)
                    || !matches!(enc, 0 | 1 | 2 | 4)
                {
                    return fail(ErrorKind::BadInt(v), off);
                }
            }
            BTF_KIND_PTR | BTF_KIND_VOLATILE | BTF_KIND_CONST | BTF_KIND_RESTRICT => {
                tail = tail_of(0, 0)?;
                no_vlen()?;
                no_kflag()?;
                refs.see(size_or_type, off);
            }
            BTF_KIND_TYPEDEF => {
                tail = tail_of(0, 0)?;
                no_vlen()?;
                no_kflag()?;
                needs_name()?;
                refs.see(size_or_type, off);
            }
            BTF_KIND_TYPE_TAG => {
                tail = tail_of(0, 0)?;
                no_vlen()?;
                needs_name()?;
                refs.see(size_or_type, off);
            }
            BTF_KIND_ARRAY => {
                tail = tail_of(12, 0)?;
                no_vlen()?;
                no_kflag()?;
                let (elem, index, _) = words3::<BE>(tail);
                if elem == 0 || index == 0 {
                    return fail(ErrorKind::BadArray, off);
                }
                refs.see(elem, off);
                refs.see(index, off);
                if index < id {
                    if self.walked_kind(&refs.kinds, index) != Some(BTF_KIND_INT) {
                        return fail(ErrorKind::BadArray, off);
                    }
                } else {
                    refs.defer(id, off)?;
                }
            }
            BTF_KIND_STRUCT | BTF_KIND_UNION => {
                tail = tail_of(0, 12)?;
                let size_bits = u64::from(size_or_type) * 8;
                let union = kind == BTF_KIND_UNION;
                let mut last = 0u32;
                for (i, m) in tail.chunks_exact(12).enumerate() {
                    let (mn, mt, mo) = words3::<BE>(m);
                    let (bit_off, bsz) = if kflag {
                        (mo & 0x00ff_ffff, mo >> 24)
                    } else {
                        (mo, 0)
                    };
                    refs.see(mt, off);
                    if mn >= str_end {
                        return fail(ErrorKind::BadStrOffset(mn), off);
                    }
                    if union && bit_off != 0 {
                        return fail(ErrorKind::UnionMemberOffset, off);
                    }
                    if bit_off < last
                        || u64::from(bit_off) > size_bits
                        || (kflag && bsz == 0 && bit_off % 8 != 0)
                    {
                        return fail(ErrorKind::BadMember(i as u32), off);
                    }
                    last = bit_off;
                }
            }
            BTF_KIND_ENUM | BTF_KIND_ENUM64 => {
                tail = tail_of(0, if kind == BTF_KIND_ENUM { 8 } else { 12 })?;
                if !matches!(size_or_type, 1 | 2 | 4 | 8) {
                    return fail(ErrorKind::BadSize(k, size_or_type), off);
                }
                let step = if kind == BTF_KIND_ENUM { 8 } else { 12 };
                for e in tail.chunks_exact(step) {
                    let n = rd::<BE>(e, 0);
                    if n >= str_end {
                        return fail(ErrorKind::BadStrOffset(n), off);
                    }
                }
            }
            BTF_KIND_FWD => {
                tail = tail_of(0, 0)?;
                no_vlen()?;
                needs_name()?;
            }
            BTF_KIND_FUNC => {
                tail = tail_of(0, 0)?;
                needs_name()?;
                no_kflag()?;
                if vlen > LINKAGE_EXTERN {
                    return fail(ErrorKind::BadLinkage(vlen), off);
                }
                refs.see(size_or_type, off);
                if size_or_type < id {
                    if self.walked_kind(&refs.kinds, size_or_type) != Some(BTF_KIND_FUNC_PROTO) {
                        return fail(ErrorKind::FuncNotProto(TypeId(size_or_type)), off);
                    }
                } else {
                    refs.defer(id, off)?;
                }
            }
            BTF_KIND_FUNC_PROTO => {
                tail = tail_of(0, 8)?;
                no_kflag()?;
                refs.see(size_or_type, off);
                let n = vlen as usize;
                for (i, p) in tail.chunks_exact(8).enumerate() {
                    let (pn, pt) = words2::<BE>(p);
                    if pn >= str_end {
                        return fail(ErrorKind::BadStrOffset(pn), off);
                    }
                    refs.see(pt, off);
                    if pt == 0 && (pn != 0 || i.saturating_add(1) != n) {
                        return fail(ErrorKind::BadVarargs, off);
                    }
                }
            }
            BTF_KIND_VAR => {
                tail = tail_of(4, 0)?;
                no_vlen()?;
                no_kflag()?;
                needs_name()?;
                refs.see(size_or_type, off);
                let l = rd::<BE>(tail, 0);
                if l > LINKAGE_EXTERN {
                    return fail(ErrorKind::BadLinkage(l), off);
                }
            }
            BTF_KIND_DATASEC => {
                tail = tail_of(0, 12)?;
                no_kflag()?;
                needs_name()?;
                for e in tail.chunks_exact(12) {
                    refs.see(rd::<BE>(e, 0), off);
                }
                if vlen != 0 {
                    refs.defer(id, off)?;
                }
            }
            BTF_KIND_FLOAT => {
                tail = tail_of(0, 0)?;
                no_vlen()?;
                no_kflag()?;
                if !matches!(size_or_type, 2 | 4 | 8 | 12 | 16) {
                    return fail(ErrorKind::BadSize(k, size_or_type), off);
                }
            }
            BTF_KIND_DECL_TAG => {
                tail = tail_of(4, 0)?;
                no_vlen()?;
                needs_name()?;
                refs.see(size_or_type, off);
                let c = rd::<BE>(tail, 0) as i32;
                if c < -1 {
                    return fail(ErrorKind::BadComponentIdx(c), off);
                }
            }
            _ => {
                // Kinds past this crate's, sized by the layout section.
                let Some((i, e)) = self.layout_for(kind).filter(|_| kind != 0) else {
                    return fail(ErrorKind::UnknownKind(kind), off);
                };
                tail = tail_of(i as usize, e as usize)?;
            }
        }
        Ok(off.saturating_add(TYPE_LEN).saturating_add(tail.len()))
    }
}
