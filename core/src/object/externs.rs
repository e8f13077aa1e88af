//! Phase 3 of [`Object::parse`](super::Object::parse): externs from
//! undefined symbols, typed from `.ksyms`/`.kconfig` BTF, and the size of
//! the `.kconfig` map they need (`read_maps` makes the map).

use alloc::vec::Vec;

use object::{Object as _, ObjectSymbol as _};

use super::error::{ObjectError, ObjectErrorKind};
use super::parse::{Elf, PResult, err, try_push};
use super::{Extern, ExternKind};
use crate::btf::{Btf, Kind, TypeId};
use crate::error::Error;

/// Phase 3: externs from undefined symbols, typed from `.ksyms`/`.kconfig`
/// BTF, ordered as libbpf orders them (kconfig first, by descending
/// alignment, ascending size, then name; then ksyms by name). Also returns
/// the first undefined symbol that BTF does not declare, reported once the
/// relocations say where it is used.
pub(super) fn externs<'a>(
    elf: &Elf<'a>,
    btf: Option<&Btf<'a>>,
) -> PResult<'a, (Vec<Extern<'a>>, Option<&'a str>)> {
    let mut out: Vec<(u32, u32, Extern<'a>)> = Vec::new();
    let mut unknown = None;
    for sym in elf.symbols() {
        if !sym.is_undefined() || !(sym.is_global() || sym.is_weak()) {
            continue;
        }
        let name = sym.name().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        let btf = btf.ok_or(ObjectError::new(
            None,
            ObjectErrorKind::MissingBtf {
                needed_by: "extern",
                name,
            },
        ))?;
        let Some((sec, id)) = extern_btf(btf, name) else {
            unknown = unknown.or(Some(name));
            continue;
        };
        let in_btf = |e: Error| err(sec, e.into());
        let t = btf.type_by_id(id).map_err(in_btf)?;
        let (kind, align, size) = if sec == ".kconfig" {
            let size = btf.resolve_size(t.type_id()).map_err(in_btf)?;
            let align = btf.align_of(t.type_id()).map_err(in_btf)?;
            (ExternKind::Kconfig { offset: 0, size }, align, size)
        } else if t.kind() == Kind::Func {
            (ExternKind::Kfunc, 0, 0)
        } else if btf.skip_mods_and_typedefs(t.type_id()).map_err(in_btf)? == TypeId::VOID {
            (ExternKind::UntypedVar, 0, 0)
        } else {
            (ExternKind::TypedVar, 0, 0)
        };
        let x = Extern {
            name,
            kind,
            weak: sym.is_weak(),
            btf_id: id,
            refs: Vec::new(),
        };
        try_push(&mut out, (align, size, x))?;
    }
    crate::order::sort_by(&mut out, |(aa, asz, a), (ba, bsz, b)| {
        let ak = matches!(a.kind, ExternKind::Kconfig { .. });
        let bk = matches!(b.kind, ExternKind::Kconfig { .. });
        bk.cmp(&ak)
            .then_with(|| {
                if ak {
                    ba.cmp(aa).then(asz.cmp(bsz))
                } else {
                    core::cmp::Ordering::Equal
                }
            })
            .then_with(|| a.name.cmp(b.name))
    });
    let mut off = 0u32;
    let mut res = Vec::new();
    res.try_reserve(out.len())
        .map_err(|_| ObjectError::new(None, ObjectErrorKind::OutOfMemory))?;
    for (align, size, mut x) in out {
        if let ExternKind::Kconfig { .. } = x.kind {
            let a = align.max(1);
            off = off.div_ceil(a).saturating_mul(a);
            x.kind = ExternKind::Kconfig { offset: off, size };
            off = off.saturating_add(size);
        }
        res.push(x);
    }
    Ok((res, unknown))
}

/// The `.ksyms`/`.kconfig` DATASEC entry naming `name`.
fn extern_btf(btf: &Btf<'_>, name: &str) -> Option<(&'static str, TypeId)> {
    for sec in [".ksyms", ".kconfig"] {
        let Some(ds) = btf.find_by_name_kind(sec, Kind::Datasec) else {
            continue;
        };
        let t = btf.get(ds)?;
        for entry in t.datasec_entries() {
            let v = btf.get(entry.type_id)?;
            if btf.name(&v).ok() == Some(name) {
                return Some((sec, entry.type_id));
            }
        }
    }
    None
}

/// Size of the `.kconfig` map, when there are kconfig externs.
pub(super) fn kconfig_size(externs: &[Extern<'_>]) -> Option<u32> {
    externs
        .iter()
        .filter_map(|x| match x.kind {
            ExternKind::Kconfig { offset, size } => Some(offset.saturating_add(size)),
            _ => None,
        })
        .max()
}
