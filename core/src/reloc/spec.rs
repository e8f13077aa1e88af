//! Access specs: the local spec parsed from an access string, and the
//! target spec found by walking a candidate type the same way.

use heapless::Vec as HVec;

use super::RelocKind;
use crate::btf::{Btf, Kind, TypeId, essential_name_len};
use crate::error::{Error, ErrorKind, Result};

/// Longest access spec (libbpf's `BPF_CORE_SPEC_MAX_LEN`).
pub const MAX_SPEC_LEN: usize = 64;

/// One high-level step: a named member, an array index, or the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accessor<'a> {
    /// The composite holding the member, or the (element) type indexed.
    pub type_id: TypeId,
    /// Member, element or enumerator index.
    pub idx: u32,
    /// Member or enumerator name; `None` for array steps.
    pub name: Option<&'a str>,
}

/// A parsed access spec against one BTF.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The root type (as the relocation names it, modifiers kept).
    pub root_type_id: TypeId,
    /// Relocation kind.
    pub kind: RelocKind,
    /// Raw indices (`0:1:2`), anonymous members included.
    pub raw: HVec<u32, MAX_SPEC_LEN>,
    /// High-level accessors: root, named members, array indices.
    pub accessors: HVec<Accessor<'a>, MAX_SPEC_LEN>,
    /// Bit offset of the accessed field from the root.
    pub bit_offset: u64,
}

fn bad() -> Error {
    Error::new(ErrorKind::CoreBadAccess, 0)
}

fn too_long() -> Error {
    Error::new(ErrorKind::CoreSpecTooLong, 0)
}

impl<'a> Spec<'a> {
    pub(super) fn empty(root: TypeId, kind: RelocKind) -> Spec<'a> {
        Spec {
            root_type_id: root,
            kind,
            raw: HVec::new(),
            accessors: HVec::new(),
            bit_offset: 0,
        }
    }

    /// The last high-level accessor.
    pub fn last(&self) -> Option<&Accessor<'a>> {
        self.accessors.last()
    }

    pub(super) fn push_raw(&mut self, v: u32) -> Result<()> {
        self.raw.push(v).map_err(|_| too_long())
    }

    pub(super) fn push_acc(&mut self, a: Accessor<'a>) -> Result<()> {
        self.accessors.push(a).map_err(|_| too_long())
    }
}

fn size_bits(btf: &Btf<'_>, id: TypeId, idx: u32) -> Result<u64> {
    let sz = btf.resolve_size(id)?;
    Ok(u64::from(idx)
        .saturating_mul(u64::from(sz))
        .saturating_mul(8))
}

/// Whether an array reached through `acc` is flexible: zero elements and
/// the last member of its struct.
pub(super) fn is_flex_arr(btf: &Btf<'_>, acc: Option<&Accessor<'_>>, nelems: u32) -> bool {
    let Some(acc) = acc else { return false };
    if acc.name.is_none() || nelems > 0 {
        return false;
    }
    btf.get(acc.type_id)
        .is_some_and(|t| t.vlen().checked_sub(1) == Some(acc.idx))
}

/// Parses an access string (`0:1:2`) of a relocation on `type_id`.
///
/// # Errors
/// [`ErrorKind::CoreBadAccess`] for a malformed string or an index out of
/// range, [`ErrorKind::CoreSpecTooLong`] past 64 steps, and BTF errors.
pub fn parse_spec<'a>(
    btf: &Btf<'a>,
    type_id: TypeId,
    access: &str,
    kind: RelocKind,
) -> Result<Spec<'a>> {
    if access.is_empty() || access.starts_with(':') {
        return Err(bad());
    }
    let mut spec = Spec::empty(type_id, kind);
    for part in access.split(':') {
        let v: u32 = part.parse().map_err(|_| bad())?;
        spec.push_raw(v)?;
    }
    if kind.is_type() {
        if access != "0" {
            return Err(bad());
        }
        return Ok(spec);
    }
    let mut id = btf.skip_mods_and_typedefs(type_id)?;
    let first = *spec.raw.first().ok_or(bad())?;
    if kind.is_enumval() {
        let t = btf.type_by_id(id)?;
        if !t.kind().is_any_enum() || spec.raw.len() != 1 || first >= t.vlen() {
            return Err(bad());
        }
        let e = t.enumerators().nth(first as usize).ok_or(bad())?;
        spec.push_acc(Accessor {
            type_id: id,
            idx: first,
            name: Some(btf.str_at(e.name_off)?),
        })?;
        return Ok(spec);
    }
    if !kind.is_field() {
        return Err(Error::new(ErrorKind::CoreUnknownKind(kind as u32), 0));
    }
    spec.push_acc(Accessor {
        type_id: id,
        idx: first,
        name: None,
    })?;
    spec.bit_offset = size_bits(btf, id, first)?;
    let raw = spec.raw.clone();
    for &idx in raw.iter().skip(1) {
        id = btf.skip_mods_and_typedefs(id)?;
        let t = btf.type_by_id(id)?;
        match t.kind() {
            Kind::Struct | Kind::Union => {
                if idx >= t.vlen() {
                    return Err(bad());
                }
                let m = t.members().nth(idx as usize).ok_or(bad())?;
                spec.bit_offset = spec.bit_offset.saturating_add(u64::from(m.bit_offset));
                if m.name_off.0 != 0 {
                    let name = btf.str_at(m.name_off)?;
                    if name.is_empty() {
                        return Err(bad());
                    }
                    spec.push_acc(Accessor {
                        type_id: id,
                        idx,
                        name: Some(name),
                    })?;
                }
                id = m.type_id;
            }
            Kind::Array => {
                let a = t.as_array().ok_or(bad())?;
                let elem = btf.skip_mods_and_typedefs(a.elem_type)?;
                let flex = is_flex_arr(btf, spec.accessors.last(), a.nelems);
                if !flex && idx >= a.nelems {
                    return Err(bad());
                }
                spec.push_acc(Accessor {
                    type_id: elem,
                    idx,
                    name: None,
                })?;
                spec.bit_offset = spec.bit_offset.saturating_add(size_bits(btf, elem, idx)?);
                id = elem;
            }
            _ => return Err(bad()),
        }
    }
    Ok(spec)
}

/// Whether two names are the same once flavors are stripped; an anonymous
/// target matches only an anonymous local (libbpf's `bpf_core_names_match`).
pub(super) fn names_match(local: &str, targ: &str) -> bool {
    if targ.is_empty() {
        return local.is_empty();
    }
    essential(local) == essential(targ)
}

/// The essential part of a name as bytes.
pub(super) fn essential(name: &str) -> &[u8] {
    let b = name.as_bytes();
    b.get(..essential_name_len(b)).unwrap_or(b)
}
