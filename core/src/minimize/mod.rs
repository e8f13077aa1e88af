//! Minimized BTF (bpftool's `gen min_core_btf`): keep only the types and
//! members that CO-RE relocations use.
//!
//! [`Keep`] is the set of kept types and, per struct or union, of kept
//! members; [`Keep::emit`] writes it as a new BTF in the target's byte
//! order: kept types in their original order with ids renumbered, each
//! STRUCT/UNION with only its kept members (original bit offsets, bitfield
//! sizes and total size), every other kind whole. A reference to a type
//! that is not kept (a pointee, which field relocations never need)
//! becomes `void`. [`Minimizer`] fills a [`Keep`] from objects' CO-RE
//! relocations, following SPEC-CORE §8.

mod relocs;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

pub use self::relocs::Minimizer;
use crate::btf::encode::{Body, Encoder, Scratch, TypeRecord};
use crate::btf::{Btf, Kind, Member, TypeId};
use crate::error::{Error, ErrorKind, Result};
use crate::limits;

fn oom() -> Error {
    Error::new(ErrorKind::OutOfMemory, 0)
}

/// Sets `id`'s flag in a per-type table; `false` if it was set already
/// (or `id` is out of range).
fn mark(table: &mut [bool], id: TypeId) -> bool {
    match table.get_mut(id.index()) {
        Some(f) if !*f => {
            *f = true;
            true
        }
        _ => false,
    }
}

/// Kept types and members of one BTF.
#[derive(Debug)]
pub struct Keep<'t> {
    btf: &'t Btf<'t>,
    types: Vec<bool>,
    /// Types already walked with their pointees followed: a type kept
    /// first without them (a member's type) and later for a type-based
    /// relocation is walked again, or the pointee the second use needs
    /// would depend on the order of the relocations.
    followed: Vec<bool>,
    members: BTreeMap<TypeId, Vec<bool>>,
    /// Types already kept for TYPE_MATCHES, and whether behind a pointer.
    matched: BTreeSet<(TypeId, bool)>,
}

impl<'t> Keep<'t> {
    /// Nothing kept yet.
    ///
    /// # Errors
    /// When the per-type table cannot be allocated.
    pub fn new(btf: &'t Btf<'t>) -> Result<Keep<'t>> {
        let n = btf.type_count() as usize;
        let table = || -> Result<Vec<bool>> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| oom())?;
            v.resize(n, false);
            Ok(v)
        };
        Ok(Keep {
            btf,
            types: table()?,
            followed: table()?,
            members: BTreeMap::new(),
            matched: BTreeSet::new(),
        })
    }

    /// The BTF this set is over.
    pub fn btf(&self) -> &'t Btf<'t> {
        self.btf
    }

    /// Whether `id` is kept.
    pub fn has(&self, id: TypeId) -> bool {
        self.types.get(id.index()).copied().unwrap_or(false)
    }

    /// Number of kept types.
    pub fn len(&self) -> usize {
        self.types.iter().filter(|&&k| k).count()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        !self.types.contains(&true)
    }

    /// Keeps `id` alone; `false` if it was kept already (or is void).
    fn set(&mut self, id: TypeId) -> bool {
        id != TypeId::VOID && mark(&mut self.types, id)
    }

    /// Keeps `id` and what its layout needs: the targets of modifiers and
    /// typedefs, array element and index types, prototype return and
    /// parameter types, and pointees only if `follow_ptrs`. Members of
    /// structs and unions are not kept by this.
    ///
    /// # Errors
    /// A bad type id, or a chain deeper than the resolution limit.
    pub fn keep_type(&mut self, id: TypeId, follow_ptrs: bool) -> Result<()> {
        self.keep_type_at(id, follow_ptrs, 0)
    }

    fn keep_type_at(&mut self, id: TypeId, follow_ptrs: bool, depth: u32) -> Result<()> {
        if depth > limits::MAX_RESOLVE_DEPTH.saturating_mul(2) {
            return Err(Error::new(ErrorKind::TypeChainTooDeep(id), 0));
        }
        if id == TypeId::VOID {
            return Ok(());
        }
        let fresh = self.set(id);
        let newly_followed = follow_ptrs && mark(&mut self.followed, id);
        if !fresh && !newly_followed {
            return Ok(());
        }
        let d = depth.saturating_add(1);
        let t = self.btf.type_by_id(id)?;
        match t.kind() {
            Kind::Ptr if follow_ptrs => self.keep_type_at(t.type_id(), true, d)?,
            Kind::Typedef
            | Kind::Const
            | Kind::Volatile
            | Kind::Restrict
            | Kind::TypeTag
            | Kind::Func
            | Kind::Var => self.keep_type_at(t.type_id(), follow_ptrs, d)?,
            Kind::Array => {
                let a = t.as_array().ok_or(Error::new(ErrorKind::BadArray, 0))?;
                self.keep_type_at(a.elem_type, follow_ptrs, d)?;
                self.keep_type_at(a.index_type, follow_ptrs, d)?;
            }
            Kind::FuncProto => {
                self.keep_type_at(t.type_id(), follow_ptrs, d)?;
                for p in t.params() {
                    self.keep_type_at(p.type_id, follow_ptrs, d)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Keeps member `idx` of composite `id` (and `id` itself), and the
    /// member's type as [`Keep::keep_type`] does without pointees.
    ///
    /// A zero-length array member that is not its struct's last stays
    /// not-last: the struct's last member is kept too, so an index that
    /// is out of bounds in the full BTF is out of bounds here as well.
    ///
    /// # Errors
    /// A bad id or member index.
    pub fn keep_member(&mut self, id: TypeId, idx: u32) -> Result<()> {
        let t = self.btf.type_by_id(id)?;
        let vlen = t.vlen();
        let m = t
            .members()
            .nth(idx as usize)
            .ok_or(Error::new(ErrorKind::BadMember(idx), 0))?;
        self.keep_type(id, false)?;
        let bits = match self.members.entry(id) {
            alloc::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            alloc::collections::btree_map::Entry::Vacant(e) => {
                let mut v = Vec::new();
                v.try_reserve_exact(vlen as usize).map_err(|_| oom())?;
                v.resize(vlen as usize, false);
                e.insert(v)
            }
        };
        let Some(b) = bits.get_mut(idx as usize) else {
            return Err(Error::new(ErrorKind::BadMember(idx), 0));
        };
        if *b {
            return Ok(());
        }
        *b = true;
        self.keep_type(m.type_id, false)?;
        let last = vlen.saturating_sub(1);
        if idx != last {
            let under = self.btf.skip_mods_and_typedefs(m.type_id)?;
            let zero_arr = self
                .btf
                .get(under)
                .and_then(|u| u.as_array())
                .is_some_and(|a| a.nelems == 0);
            if zero_arr {
                self.keep_member(id, last)?;
            }
        }
        Ok(())
    }

    /// Keeps `id` with every member, recursively, as TYPE_MATCHES needs:
    /// a struct or union reached through a pointer keeps only its name
    /// and kind.
    ///
    /// # Errors
    /// A bad id, or nesting deeper than the resolution limit.
    pub fn keep_for_match(&mut self, id: TypeId) -> Result<()> {
        self.keep_match_at(id, false, 0)
    }

    fn keep_match_at(&mut self, id: TypeId, behind_ptr: bool, depth: u32) -> Result<()> {
        if depth > limits::MAX_RESOLVE_DEPTH.saturating_mul(2) {
            return Err(Error::new(ErrorKind::TypeChainTooDeep(id), 0));
        }
        if id == TypeId::VOID || !self.matched.insert((id, behind_ptr)) {
            return Ok(());
        }
        let t = self.btf.type_by_id(id)?;
        let d = depth.saturating_add(1);
        match t.kind() {
            Kind::Struct | Kind::Union if !behind_ptr => {
                self.set(id);
                for (i, m) in t.members().enumerate() {
                    self.keep_member(id, i as u32)?;
                    self.keep_match_at(m.type_id, false, d)?;
                }
            }
            Kind::Ptr => {
                self.set(id);
                self.keep_match_at(t.type_id(), true, d)?;
            }
            Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                self.set(id);
                self.keep_match_at(t.type_id(), behind_ptr, d)?;
            }
            Kind::Array => {
                self.set(id);
                let a = t.as_array().ok_or(Error::new(ErrorKind::BadArray, 0))?;
                self.keep_match_at(a.elem_type, behind_ptr, d)?;
                self.keep_type(a.index_type, false)?;
            }
            Kind::FuncProto => {
                self.set(id);
                self.keep_match_at(t.type_id(), behind_ptr, d)?;
                for p in t.params() {
                    self.keep_match_at(p.type_id, behind_ptr, d)?;
                }
            }
            _ => {
                self.set(id);
            }
        }
        Ok(())
    }

    /// Old id → new id for this BTF's own kept types, numbered from
    /// `first`; 0 (void) for every other id.
    fn id_map(&self, first: u32) -> Result<Vec<u32>> {
        let own = self.btf.start_id().0 as usize;
        let mut map: Vec<u32> = Vec::new();
        map.try_reserve_exact(self.types.len()).map_err(|_| oom())?;
        let mut next = first;
        for (i, &k) in self.types.iter().enumerate() {
            map.push(if k && i >= own {
                next = next.saturating_add(1);
                next.saturating_sub(1)
            } else {
                0
            });
        }
        Ok(map)
    }

    /// Keeps every base type and member that `split` (a keep set over a
    /// split BTF on this one) kept.
    pub fn absorb_base(&mut self, split: &Keep<'_>) {
        let n = self.types.len();
        for (mine, &theirs) in self.types.iter_mut().zip(&split.types) {
            *mine |= theirs;
        }
        for (&id, bits) in split.members.range(..TypeId(n as u32)) {
            let mine = self
                .members
                .entry(id)
                .or_insert_with(|| alloc::vec![false; bits.len()]);
            for (m, &b) in mine.iter_mut().zip(bits) {
                *m |= b;
            }
        }
    }

    /// Writes the kept types as a new base BTF in the input's byte order.
    ///
    /// # Errors
    /// As [`Encoder`].
    pub fn emit(&self) -> Result<Vec<u8>> {
        let map = self.id_map(1)?;
        let remap = |id: TypeId| TypeId(map.get(id.index()).copied().unwrap_or(0));
        let mut enc = Encoder::new(self.btf.endian());
        self.emit_own(&mut enc, &remap)?;
        enc.finish()
    }

    /// Writes this split BTF's kept own types as split BTF over `min_base`,
    /// the base emitted by `base` (which must have absorbed this set).
    ///
    /// # Errors
    /// As [`Encoder`].
    pub fn emit_split(&self, base: &Keep<'_>, min_base: &Btf<'_>) -> Result<Vec<u8>> {
        let base_map = base.id_map(1)?;
        let map = self.id_map(min_base.type_count())?;
        let own = self.btf.start_id();
        let remap = |id: TypeId| {
            let m = if id < own { &base_map } else { &map };
            TypeId(m.get(id.index()).copied().unwrap_or(0))
        };
        let mut enc = Encoder::new_split(min_base);
        self.emit_own(&mut enc, &remap)?;
        enc.finish()
    }

    /// Whether any of this BTF's own types is kept (for a split BTF: not
    /// counting its base's).
    pub fn has_own(&self) -> bool {
        let own = self.btf.start_id().0 as usize;
        self.types.iter().skip(own).any(|&k| k)
    }

    fn emit_own(&self, enc: &mut Encoder, remap: &dyn Fn(TypeId) -> TypeId) -> Result<()> {
        let btf = self.btf;
        let mut scratch = Scratch::default();
        let mut kept: Vec<Member> = Vec::new();
        let mut names: Vec<crate::btf::Enumerator> = Vec::new();
        let mut params: Vec<crate::btf::Param> = Vec::new();
        let name = |enc: &mut Encoder, off| -> Result<crate::btf::StrOffset> {
            let s = btf.str_at(off)?;
            enc.add_str(s)
        };
        for t in btf.types() {
            if !self.has(t.id()) {
                continue;
            }
            let r = t.to_record(&mut scratch)?;
            let new_name = name(enc, r.name)?;
            let body = match r.body {
                Body::Struct { .. } | Body::Union { .. } => {
                    kept.clear();
                    let bits = self.members.get(&t.id());
                    for (i, m) in t.members().enumerate() {
                        if bits.and_then(|b| b.get(i)).copied().unwrap_or(false) {
                            kept.push(Member {
                                name_off: name(enc, m.name_off)?,
                                type_id: remap(m.type_id),
                                ..m
                            });
                        }
                    }
                    if t.kind() == Kind::Struct {
                        Body::Struct {
                            size: t.size(),
                            members: &kept,
                        }
                    } else {
                        Body::Union {
                            size: t.size(),
                            members: &kept,
                        }
                    }
                }
                Body::Enum { size, values } | Body::Enum64 { size, values } => {
                    names.clear();
                    for v in values {
                        names.push(crate::btf::Enumerator {
                            name_off: name(enc, v.name_off)?,
                            value: v.value,
                        });
                    }
                    if t.kind() == Kind::Enum {
                        Body::Enum {
                            size,
                            values: &names,
                        }
                    } else {
                        Body::Enum64 {
                            size,
                            values: &names,
                        }
                    }
                }
                Body::FuncProto { ret, params: ps } => {
                    params.clear();
                    for p in ps {
                        params.push(crate::btf::Param {
                            name_off: name(enc, p.name_off)?,
                            type_id: remap(p.type_id),
                        });
                    }
                    Body::FuncProto {
                        ret: remap(ret),
                        params: &params,
                    }
                }
                Body::Array(mut a) => {
                    a.elem_type = remap(a.elem_type);
                    a.index_type = remap(a.index_type);
                    Body::Array(a)
                }
                Body::Ptr(x) => Body::Ptr(remap(x)),
                Body::Typedef(x) => Body::Typedef(remap(x)),
                Body::Volatile(x) => Body::Volatile(remap(x)),
                Body::Const(x) => Body::Const(remap(x)),
                Body::Restrict(x) => Body::Restrict(remap(x)),
                Body::TypeTag(x) => Body::TypeTag(remap(x)),
                Body::Func { proto, linkage } => Body::Func {
                    proto: remap(proto),
                    linkage,
                },
                Body::Var { type_id, linkage } => Body::Var {
                    type_id: remap(type_id),
                    linkage,
                },
                Body::Int { .. } | Body::Fwd | Body::Float(_) => r.body,
                _ => return Err(Error::new(ErrorKind::UnsanitizableKind(t.raw_kind()), 0)),
            };
            enc.add(&TypeRecord {
                name: new_name,
                kflag: r.kflag,
                body,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
