//! Relocation values from a spec (libbpf's `bpf_core_calc_*_relo`).

use core::num::NonZeroU32;

use super::RelocKind;
use super::spec::Spec;
use crate::btf::{Btf, Kind, TypeId};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};

/// The outcome for one relocation: original (local) and new (target)
/// values, or poison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelocRes {
    /// Value the instruction should hold now (from the local BTF).
    pub orig: u64,
    /// Value for the target.
    pub new: u64,
    /// The instruction must be poisoned.
    pub poison: bool,
    /// Whether the instruction's current value is checked against `orig`.
    pub validate: bool,
    /// A load/store whose memory size cannot be adjusted safely.
    pub fail_memsz_adjust: bool,
    /// Local field size (for load/store size adjustment).
    pub orig_sz: u32,
    /// Target field size.
    pub new_sz: u32,
    /// Local field type.
    pub orig_type: TypeId,
    /// Target field type.
    pub new_type: TypeId,
}

/// A computed value, or a request to poison.
enum Val {
    Of {
        val: u64,
        sz: u32,
        ty: TypeId,
        validate: bool,
    },
    Poison,
}

fn val(v: u64) -> Val {
    Val::Of {
        val: v,
        sz: 0,
        ty: TypeId::VOID,
        validate: true,
    }
}

fn field(kind: RelocKind, spec: Option<(&Spec<'_>, &Btf<'_>)>, endian: Endian) -> Result<Val> {
    if kind == RelocKind::FieldExists {
        return Ok(val(u64::from(spec.is_some())));
    }
    let Some((spec, btf)) = spec else {
        return Ok(Val::Poison);
    };
    let acc = spec.last().ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
    if acc.name.is_none() {
        // The last step indexes an array.
        let sz = btf.resolve_size(acc.type_id)?;
        return match kind {
            RelocKind::FieldByteOffset => Ok(Val::Of {
                val: spec.bit_offset / 8,
                sz,
                ty: acc.type_id,
                validate: true,
            }),
            RelocKind::FieldByteSize => Ok(val(u64::from(sz))),
            _ => Err(Error::new(ErrorKind::CoreArrayAccess, 0)),
        };
    }
    let t = btf.type_by_id(acc.type_id)?;
    let m = t
        .members()
        .nth(acc.idx as usize)
        .ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
    let field_ty = btf.skip_mods_and_typedefs(m.type_id)?;
    let mt = btf.type_by_id(field_ty)?;
    // libbpf computes these in 32-bit unsigned arithmetic; wrapping keeps
    // its results on absurd input instead of panicking.
    let bit_off = spec.bit_offset as u32;
    let mut bit_sz = m.bitfield_size;
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz) = if bitfield {
        // Never zero (a zero-sized type counts as one byte), so dividing
        // by it cannot fault.
        let mut byte_sz = NonZeroU32::new(mt.size()).unwrap_or(NonZeroU32::MIN);
        let align_down = |sz: NonZeroU32| (bit_off / 8 / sz).wrapping_mul(sz.get());
        let mut byte_off = align_down(byte_sz);
        while bit_off
            .wrapping_add(bit_sz)
            .wrapping_sub(byte_off.wrapping_mul(8))
            > byte_sz.get().wrapping_mul(8)
        {
            if byte_sz.get() >= 8 {
                return Err(Error::new(ErrorKind::CoreBitfieldTooBig, 0));
            }
            byte_sz = byte_sz.saturating_add(byte_sz.get());
            byte_off = align_down(byte_sz);
        }
        (byte_off, byte_sz.get())
    } else {
        let sz = btf.resolve_size(field_ty)?;
        bit_sz = sz.wrapping_mul(8);
        (bit_off / 8, sz)
    };
    // Bitfield offsets and sizes may legitimately differ from what clang
    // wrote, so only signedness and right shifts are validated for them.
    let validate = !bitfield;
    let out = |v: u64, validate: bool| Val::Of {
        val: v,
        sz: 0,
        ty: TypeId::VOID,
        validate,
    };
    Ok(match kind {
        RelocKind::FieldByteOffset => Val::Of {
            val: u64::from(byte_off),
            sz: if bitfield { 0 } else { byte_sz },
            ty: if bitfield { TypeId::VOID } else { field_ty },
            validate,
        },
        RelocKind::FieldByteSize => out(u64::from(byte_sz), validate),
        RelocKind::FieldSigned => {
            let signed = (mt.kind().is_any_enum() && mt.kflag())
                || mt.as_int().is_some_and(|i| i.is_signed());
            out(u64::from(signed), true)
        }
        RelocKind::FieldLShiftU64 => {
            let in_load = bit_off.wrapping_sub(byte_off.wrapping_mul(8));
            let v = match endian {
                Endian::Little => 64u32.wrapping_sub(in_load.wrapping_add(bit_sz)),
                Endian::Big => 8u32
                    .wrapping_sub(byte_sz)
                    .wrapping_mul(8)
                    .wrapping_add(in_load),
            };
            out(u64::from(v), validate)
        }
        RelocKind::FieldRShiftU64 => out(u64::from(64u32.wrapping_sub(bit_sz)), true),
        _ => return Err(Error::new(ErrorKind::CoreUnknownKind(kind as u32), 0)),
    })
}

fn type_based(kind: RelocKind, spec: Option<(&Spec<'_>, &Btf<'_>)>) -> Result<Val> {
    let Some((spec, btf)) = spec else {
        return Ok(val(0));
    };
    Ok(match kind {
        RelocKind::TypeIdTarget => Val::Of {
            val: u64::from(spec.root_type_id.0),
            sz: 0,
            ty: TypeId::VOID,
            validate: false,
        },
        RelocKind::TypeExists | RelocKind::TypeMatches => val(1),
        RelocKind::TypeSize => val(u64::from(btf.resolve_size(spec.root_type_id)?)),
        _ => return Err(Error::new(ErrorKind::CoreUnknownKind(kind as u32), 0)),
    })
}

fn enumval(kind: RelocKind, spec: Option<(&Spec<'_>, &Btf<'_>)>) -> Result<Val> {
    match kind {
        RelocKind::EnumvalExists => Ok(val(u64::from(spec.is_some()))),
        RelocKind::EnumvalValue => {
            let Some((spec, btf)) = spec else {
                return Ok(Val::Poison);
            };
            let acc = spec
                .accessors
                .first()
                .ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
            let t = btf.type_by_id(acc.type_id)?;
            let e = t
                .enumerators()
                .nth(acc.idx as usize)
                .ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
            // 32-bit values are sign-extended whatever the enum's sign.
            Ok(val(if t.kind() == Kind::Enum {
                i64::from(e.value as u32 as i32) as u64
            } else {
                e.value
            }))
        }
        _ => Err(Error::new(ErrorKind::CoreUnknownKind(kind as u32), 0)),
    }
}

/// Computes the relocation from the local spec and the target spec
/// (`None` when no candidate matched).
pub(super) fn calc(
    kind: RelocKind,
    local: (&Spec<'_>, &Btf<'_>),
    target: Option<(&Spec<'_>, &Btf<'_>)>,
) -> Result<RelocRes> {
    let endian = local.1.endian();
    let compute = |s: Option<(&Spec<'_>, &Btf<'_>)>| -> Result<Val> {
        if kind.is_field() {
            field(kind, s, endian)
        } else if kind.is_type() {
            type_based(kind, s)
        } else {
            enumval(kind, s)
        }
    };
    let mut res = RelocRes {
        validate: true,
        ..RelocRes::default()
    };
    match compute(Some(local))? {
        Val::Of {
            val,
            sz,
            ty,
            validate,
        } => {
            res.orig = val;
            res.orig_sz = sz;
            res.orig_type = ty;
            res.validate = validate;
        }
        Val::Poison => res.poison = true,
    }
    match compute(target)? {
        Val::Of { val, sz, ty, .. } => {
            res.new = val;
            res.new_sz = sz;
            res.new_type = ty;
        }
        Val::Poison => res.poison = true,
    }
    if kind.is_field() && !res.poison && res.orig_sz != res.new_sz {
        // Changing a load's size is safe only for pointers and unsigned ints.
        let (ot, nt) = (
            local.1.get(res.orig_type),
            target.and_then(|(_, b)| b.get(res.new_type)),
        );
        let ok = match (ot, nt) {
            (Some(o), Some(n)) => {
                (o.kind() == Kind::Ptr && n.kind() == Kind::Ptr)
                    || (o.as_int().is_some_and(|i| !i.is_signed())
                        && n.as_int().is_some_and(|i| !i.is_signed()))
            }
            _ => false,
        };
        res.fail_memsz_adjust = !ok;
    }
    Ok(res)
}
