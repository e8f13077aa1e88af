//! Reordering a BTF's own types by name, anonymous types first, as a
//! sorting `resolve_btfids` lays out vmlinux BTF (so that lookups can
//! binary-search).

use alloc::vec::Vec;

use super::raw::*;
use super::{Btf, TypeId};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};

/// Byte offsets of the type-id fields in one record of `kind` with `vlen`
/// elements (the layout of `uapi/linux/btf.h`).
fn ref_offsets(kind: u8, vlen: usize, out: &mut Vec<usize>) -> Result<()> {
    out.clear();
    let oom = || Error::new(ErrorKind::OutOfMemory, 0);
    out.try_reserve(vlen.saturating_add(2)).map_err(|_| oom())?;
    match kind {
        BTF_KIND_PTR | BTF_KIND_TYPEDEF | BTF_KIND_VOLATILE | BTF_KIND_CONST
        | BTF_KIND_RESTRICT | BTF_KIND_FUNC | BTF_KIND_VAR | BTF_KIND_TYPE_TAG
        | BTF_KIND_DECL_TAG => out.push(8),
        BTF_KIND_ARRAY => out.extend([12, 16]),
        BTF_KIND_STRUCT | BTF_KIND_UNION => {
            out.extend((0..vlen).map(|i| i.saturating_mul(12).saturating_add(16)));
        }
        BTF_KIND_FUNC_PROTO => {
            out.push(8);
            out.extend((0..vlen).map(|i| i.saturating_mul(8).saturating_add(16)));
        }
        BTF_KIND_DATASEC => {
            out.extend((0..vlen).map(|i| i.saturating_mul(12).saturating_add(12)));
        }
        _ => {}
    }
    Ok(())
}

/// `btf`'s bytes with its own types reordered: anonymous types first in
/// their original order, then named ones by name (byte order, as
/// `strcmp`), ties in their original order; every type reference is
/// renumbered. Strings and header are unchanged. A split BTF keeps its
/// base's ids.
///
/// # Errors
/// [`ErrorKind::UnknownKind`] for a kind only a layout section describes
/// (its references are unknown), [`ErrorKind::OutOfMemory`].
pub fn sort_by_name(btf: &Btf<'_>) -> Result<Vec<u8>> {
    let oom = || Error::new(ErrorKind::OutOfMemory, 0);
    let start = btf.start_id().0;
    let n = btf.record_offsets().len();
    let name = |i: u32| -> &[u8] {
        btf.get(TypeId(start.saturating_add(i)))
            .and_then(|t| btf.bytes_at(t.name_off()))
            .unwrap_or(&[])
    };
    // order[new] = old (own indices), and its inverse.
    let mut order: Vec<u32> = Vec::new();
    order.try_reserve(n).map_err(|_| oom())?;
    order.extend(0..n as u32);
    // The standard sort: vmlinux-sized, and not in the CLI (`crate::order`).
    order.sort_by(|&a, &b| name(a).cmp(name(b)).then(a.cmp(&b)));
    let mut new_of: Vec<u32> = Vec::new();
    new_of.try_reserve(n).map_err(|_| oom())?;
    new_of.resize(n, 0);
    for (new, &old) in order.iter().enumerate() {
        if let Some(slot) = new_of.get_mut(old as usize) {
            *slot = new as u32;
        }
    }
    let remap = |id: u32| match id.checked_sub(start) {
        Some(i) => new_of
            .get(i as usize)
            .map_or(id, |&v| v.saturating_add(start)),
        None => id,
    };
    let mut out = Vec::new();
    out.try_reserve(btf.data().len()).map_err(|_| oom())?;
    out.extend_from_slice(btf.data());
    let (at, len) = btf.type_section();
    let mut w = at;
    let mut refs = Vec::new();
    let e = btf.endian();
    for &old in &order {
        let Some(t) = btf.get(TypeId(start.saturating_add(old))) else {
            continue;
        };
        let rec = t.rec;
        let kind = t.raw_kind();
        if kind > BTF_KIND_MAX {
            return Err(Error::new(
                ErrorKind::UnknownKind(kind),
                btf.record_offset(t.id()),
            ));
        }
        let Some(dst) = out.get_mut(w..w.saturating_add(rec.len())) else {
            return Err(Error::new(ErrorKind::Truncated, w));
        };
        dst.copy_from_slice(rec);
        ref_offsets(kind, t.vlen() as usize, &mut refs)?;
        for &r in &refs {
            let Some(field) = dst.get_mut(r..r.saturating_add(4)) else {
                continue;
            };
            let mut b = [0u8; 4];
            b.copy_from_slice(field);
            let v = match e {
                Endian::Little => u32::from_le_bytes(b),
                Endian::Big => u32::from_be_bytes(b),
            };
            let nv = remap(v);
            field.copy_from_slice(&match e {
                Endian::Little => nv.to_le_bytes(),
                Endian::Big => nv.to_be_bytes(),
            });
        }
        w = w.saturating_add(rec.len());
    }
    debug_assert_eq!(w, at.saturating_add(len));
    Ok(out)
}
