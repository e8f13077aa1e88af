//! Compatibility rules between a local and a target type: field
//! compatibility, type-based compatibility and TYPE_MATCHES, and the
//! target-spec walk (libbpf's `bpf_core_spec_match`).

use super::RelocKind;
use super::spec::{Accessor, Spec, essential, is_flex_arr, names_match};
use crate::btf::{Btf, Kind, Type, TypeId};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::MAX_RESOLVE_DEPTH;

fn chain_err(id: TypeId) -> Error {
    Error::new(ErrorKind::TypeChainTooDeep(id), 0)
}

/// Kind with void as `None`.
fn kind_of<'b>(btf: &Btf<'b>, id: TypeId) -> Result<Option<(Kind, Type<'b>)>> {
    if id == TypeId::VOID {
        return Ok(None);
    }
    let t = btf.type_by_id(id)?;
    Ok(Some((t.kind(), t)))
}

/// Same kind, ENUM and ENUM64 interchangeable (`btf_kind_core_compat`).
fn kinds_compat(a: Kind, b: Kind) -> bool {
    a == b || (a.is_any_enum() && b.is_any_enum())
}

fn int_offset(t: &Type<'_>) -> u32 {
    t.as_int().map_or(0, |i| i.offset())
}

/// Field compatibility (`bpf_core_fields_are_compat`): composites match
/// composites, pointers and floats match regardless of target, ints
/// unless a legacy bit offset is set, enums and fwds by essential name,
/// arrays by element.
pub(super) fn fields_compat(lb: &Btf<'_>, lid: TypeId, tb: &Btf<'_>, tid: TypeId) -> Result<bool> {
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_RESOLVE_DEPTH {
        lid = lb.skip_mods_and_typedefs(lid)?;
        tid = tb.skip_mods_and_typedefs(tid)?;
        let (Some((lk, lt)), Some((tk, tt))) = (kind_of(lb, lid)?, kind_of(tb, tid)?) else {
            return Ok(lid == TypeId::VOID && tid == TypeId::VOID);
        };
        if lk.is_composite() && tk.is_composite() {
            return Ok(true);
        }
        if !kinds_compat(lk, tk) {
            return Ok(false);
        }
        return Ok(match lk {
            Kind::Ptr | Kind::Float => true,
            Kind::Fwd | Kind::Enum | Kind::Enum64 => {
                let (ln, tn) = (lb.name(&lt)?, tb.name(&tt)?);
                let (le, te) = (essential(ln), essential(tn));
                le.is_empty() || te.is_empty() || le == te
            }
            Kind::Int => int_offset(&lt) == 0 && int_offset(&tt) == 0,
            Kind::Array => {
                lid = lt.as_array().map_or(TypeId::VOID, |a| a.elem_type);
                tid = tt.as_array().map_or(TypeId::VOID, |a| a.elem_type);
                continue;
            }
            _ => false,
        });
    }
    Err(chain_err(lid))
}

/// Type-based compatibility (`bpf_core_types_are_compat`), for
/// TYPE_EXISTS, TYPE_SIZE, TYPE_ID_TARGET and typed ksyms.
pub fn types_compat(lb: &Btf<'_>, lid: TypeId, tb: &Btf<'_>, tid: TypeId) -> Result<bool> {
    types_compat_level(lb, lid, tb, tid, MAX_RESOLVE_DEPTH)
}

fn types_compat_level(
    lb: &Btf<'_>,
    lid: TypeId,
    tb: &Btf<'_>,
    tid: TypeId,
    level: u32,
) -> Result<bool> {
    let Some(next) = level.checked_sub(1) else {
        return Err(chain_err(lid));
    };
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_RESOLVE_DEPTH {
        lid = lb.skip_mods_and_typedefs(lid)?;
        tid = tb.skip_mods_and_typedefs(tid)?;
        let (l, t) = (kind_of(lb, lid)?, kind_of(tb, tid)?);
        let (Some((lk, lt)), Some((tk, tt))) = (l, t) else {
            return Ok(lid == TypeId::VOID && tid == TypeId::VOID);
        };
        if !kinds_compat(lk, tk) {
            return Ok(false);
        }
        match lk {
            Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd => return Ok(true),
            Kind::Int => return Ok(int_offset(&lt) == 0 && int_offset(&tt) == 0),
            Kind::Ptr => {
                lid = lt.type_id();
                tid = tt.type_id();
            }
            Kind::Array => {
                lid = lt.as_array().map_or(TypeId::VOID, |a| a.elem_type);
                tid = tt.as_array().map_or(TypeId::VOID, |a| a.elem_type);
            }
            Kind::FuncProto => {
                if lt.vlen() != tt.vlen() {
                    return Ok(false);
                }
                for (lp, tp) in lt.params().zip(tt.params()) {
                    let (lpi, tpi) = (
                        lb.skip_mods_and_typedefs(lp.type_id)?,
                        tb.skip_mods_and_typedefs(tp.type_id)?,
                    );
                    if !types_compat_level(lb, lpi, tb, tpi, next)? {
                        return Ok(false);
                    }
                }
                lid = lt.type_id();
                tid = tt.type_id();
            }
            _ => return Ok(false),
        }
    }
    Err(chain_err(lid))
}

/// TYPE_MATCHES (`bpf_core_types_match`): names must agree at every level,
/// ints by size and sign, enums and composites by member names, arrays by
/// length, pointers recursively with forward declarations allowed.
pub fn types_match(lb: &Btf<'_>, lid: TypeId, tb: &Btf<'_>, tid: TypeId) -> Result<bool> {
    types_match_level(lb, lid, tb, tid, false, MAX_RESOLVE_DEPTH)
}

fn types_match_level(
    lb: &Btf<'_>,
    lid: TypeId,
    tb: &Btf<'_>,
    tid: TypeId,
    behind_ptr: bool,
    level: u32,
) -> Result<bool> {
    let Some(next) = level.checked_sub(1) else {
        return Err(chain_err(lid));
    };
    let (mut lid, mut tid, mut behind_ptr) = (lid, tid, behind_ptr);
    for _ in 0..MAX_RESOLVE_DEPTH {
        lid = lb.skip_mods_and_typedefs(lid)?;
        tid = tb.skip_mods_and_typedefs(tid)?;
        let (l, t) = (kind_of(lb, lid)?, kind_of(tb, tid)?);
        let (lname, tname) = (
            l.as_ref().map_or(Ok(""), |(_, t)| lb.name(t))?,
            t.as_ref().map_or(Ok(""), |(_, t)| tb.name(t))?,
        );
        if !names_match(lname, tname) {
            return Ok(false);
        }
        let Some((lk, lt)) = l else {
            return Ok(t.is_none());
        };
        let Some((tk, tt)) = t else {
            return Ok(false);
        };
        match lk {
            Kind::Fwd => {
                let lf = lt.kflag();
                return Ok(if behind_ptr && lk != tk {
                    (tk == Kind::Struct && !lf) || (tk == Kind::Union && lf)
                } else {
                    lk == tk && lf == tt.kflag()
                });
            }
            Kind::Enum | Kind::Enum64 => {
                if !tk.is_any_enum() || lt.size() != tt.size() || lt.vlen() > tt.vlen() {
                    return Ok(false);
                }
                for le in lt.enumerators() {
                    let ln = lb.str_at(le.name_off)?;
                    let mut found = false;
                    for te in tt.enumerators() {
                        if names_match(ln, tb.str_at(te.name_off)?) {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            Kind::Struct | Kind::Union => {
                if behind_ptr {
                    if lk == tk {
                        return Ok(true);
                    }
                    return Ok(tk == Kind::Fwd && (lk == Kind::Union) == tt.kflag());
                }
                if lk != tk || lt.vlen() > tt.vlen() {
                    return Ok(false);
                }
                for lm in lt.members() {
                    let ln = lb.str_at(lm.name_off)?;
                    let mut matched = false;
                    for tm in tt.members() {
                        if !names_match(ln, tb.str_at(tm.name_off)?) {
                            continue;
                        }
                        if types_match_level(lb, lm.type_id, tb, tm.type_id, behind_ptr, next)? {
                            matched = true;
                            break;
                        }
                    }
                    if !matched {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            Kind::Int => {
                let (li, ti) = (lt.as_int(), tt.as_int());
                return Ok(tk == Kind::Int
                    && lt.size() == tt.size()
                    && li.map(|i| i.is_signed()) == ti.map(|i| i.is_signed()));
            }
            Kind::Ptr => {
                if tk != lk {
                    return Ok(false);
                }
                behind_ptr = true;
                lid = lt.type_id();
                tid = tt.type_id();
            }
            Kind::Array => {
                let (Some(la), Some(ta)) = (lt.as_array(), tt.as_array()) else {
                    return Ok(false);
                };
                if la.nelems != ta.nelems {
                    return Ok(false);
                }
                lid = la.elem_type;
                tid = ta.elem_type;
            }
            Kind::FuncProto => {
                if tk != lk || lt.vlen() != tt.vlen() {
                    return Ok(false);
                }
                for (lp, tp) in lt.params().zip(tt.params()) {
                    if !types_match_level(lb, lp.type_id, tb, tp.type_id, behind_ptr, next)? {
                        return Ok(false);
                    }
                }
                lid = lt.type_id();
                tid = tt.type_id();
            }
            _ => return Ok(false),
        }
    }
    Err(chain_err(lid))
}

/// Finds the member a named local accessor names inside target composite
/// `targ_id`, descending into anonymous members; pushes the raw steps
/// onto `spec`. Returns the member's type when it matches.
fn match_member<'t>(
    lb: &Btf<'_>,
    local_acc: &Accessor<'_>,
    tb: &Btf<'t>,
    targ_id: TypeId,
    spec: &mut Spec<'t>,
) -> Result<Option<TypeId>> {
    let targ_id = tb.skip_mods_and_typedefs(targ_id)?;
    let Some((tk, tt)) = kind_of(tb, targ_id)? else {
        return Ok(None);
    };
    if !tk.is_composite() {
        return Ok(None);
    }
    let lt = lb.type_by_id(local_acc.type_id)?;
    let lm = lt
        .members()
        .nth(local_acc.idx as usize)
        .ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
    let lname = lb.str_at(lm.name_off)?;
    for (i, m) in tt.members().enumerate() {
        spec.bit_offset = spec.bit_offset.saturating_add(u64::from(m.bit_offset));
        spec.push_raw(i as u32)?;
        let tname = tb.str_at(m.name_off)?;
        if tname.is_empty() {
            if let Some(found) = match_member(lb, local_acc, tb, m.type_id, spec)? {
                return Ok(Some(found));
            }
        } else if tname == lname {
            spec.push_acc(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(tname),
            })?;
            if fields_compat(lb, lm.type_id, tb, m.type_id)? {
                return Ok(Some(m.type_id));
            }
            spec.accessors.pop();
            spec.bit_offset = spec.bit_offset.saturating_sub(u64::from(m.bit_offset));
            spec.raw.pop();
            return Ok(None);
        }
        spec.bit_offset = spec.bit_offset.saturating_sub(u64::from(m.bit_offset));
        spec.raw.pop();
    }
    Ok(None)
}

/// Walks candidate `targ_id` the way `local` walks its root; `Some` with
/// the target spec when the candidate matches.
pub(crate) fn spec_match<'t>(
    local: &Spec<'_>,
    lb: &Btf<'_>,
    tb: &Btf<'t>,
    targ_id: TypeId,
) -> Result<Option<Spec<'t>>> {
    let mut ts = Spec::empty(targ_id, local.kind);
    if local.kind.is_type() {
        let ok = if local.kind == RelocKind::TypeMatches {
            types_match(lb, local.root_type_id, tb, targ_id)?
        } else {
            types_compat(lb, local.root_type_id, tb, targ_id)?
        };
        return Ok(ok.then_some(ts));
    }
    let first = local
        .accessors
        .first()
        .ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
    if local.kind.is_enumval() {
        let id = tb.skip_mods_and_typedefs(targ_id)?;
        let Some((tk, tt)) = kind_of(tb, id)? else {
            return Ok(None);
        };
        if !tk.is_any_enum() {
            return Ok(None);
        }
        let want = essential(first.name.unwrap_or(""));
        for (i, e) in tt.enumerators().enumerate() {
            let n = tb.str_at(e.name_off)?;
            if essential(n) == want {
                ts.push_acc(Accessor {
                    type_id: id,
                    idx: i as u32,
                    name: Some(n),
                })?;
                return Ok(Some(ts));
            }
        }
        return Ok(None);
    }
    let mut tid = targ_id;
    for (i, la) in local.accessors.iter().enumerate() {
        tid = tb.skip_mods_and_typedefs(tid)?;
        if la.name.is_some() {
            match match_member(lb, la, tb, tid, &mut ts)? {
                Some(next) => tid = next,
                None => return Ok(None),
            }
            continue;
        }
        if i > 0 {
            let Some((Kind::Array, tt)) = kind_of(tb, tid)? else {
                return Ok(None);
            };
            let a = tt
                .as_array()
                .ok_or(Error::new(ErrorKind::CoreBadAccess, 0))?;
            if !is_flex_arr(tb, ts.accessors.last(), a.nelems) && la.idx >= a.nelems {
                return Ok(None);
            }
            tid = tb.skip_mods_and_typedefs(a.elem_type)?;
        }
        ts.push_acc(Accessor {
            type_id: tid,
            idx: la.idx,
            name: None,
        })?;
        ts.push_raw(la.idx)?;
        let sz = tb.resolve_size(tid)?;
        ts.bit_offset = ts.bit_offset.saturating_add(
            u64::from(la.idx)
                .saturating_mul(u64::from(sz))
                .saturating_mul(8),
        );
    }
    Ok(Some(ts))
}
