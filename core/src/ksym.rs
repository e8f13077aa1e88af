//! Resolving `__ksym` externs against kernel BTF (typed variables and
//! kfuncs) or kallsyms addresses (untyped variables), and patching every
//! instruction that uses them, as libbpf does.

use alloc::vec::Vec;

use crate::btf::{Btf, Kind, TypeId, essential_name};
use crate::error::{Error, ErrorKind, Result};
use crate::id::ExternIndex;
use crate::insn::{CALL, INSN_SIZE, LD_IMM64, PSEUDO_BTF_ID, PSEUDO_KFUNC_CALL, read_at, write_at};
use crate::object::{ExternKind, Object};
use crate::reloc::{Targets, types_compat};

/// Poisoned calls to absent weak kfuncs call helper `2002000000 + index`.
pub const POISON_KFUNC_BASE: i32 = 2_002_000_000;

/// How one extern resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// An untyped variable's address (from kallsyms).
    Address(u64),
    /// A typed variable: its VAR in target `target` (0 = vmlinux).
    Var {
        /// Target index (0 = main BTF, then modules).
        target: usize,
        /// The VAR's id there.
        id: TypeId,
    },
    /// A kfunc: its FUNC in target `target`.
    Kfunc {
        /// Target index (0 = main BTF, then modules).
        target: usize,
        /// The FUNC's id there.
        id: TypeId,
    },
    /// A weak extern the kernel lacks.
    Absent,
    /// A `.kconfig` extern (values live in the `.kconfig` map).
    Kconfig,
}

fn find_in<'t>(
    targets: &Targets<'t>,
    name: &str,
    kind: Kind,
) -> Option<(usize, &'t Btf<'t>, TypeId)> {
    if let Some(id) = targets.main.find_by_name_kind(name, kind) {
        return Some((0, targets.main, id));
    }
    targets.modules.iter().enumerate().find_map(|(i, m)| {
        let id = m.btf.find_own_by_name_kind(name, kind)?;
        Some((i.saturating_add(1), m.btf, id))
    })
}

/// Resolves every extern of `obj`; `kallsyms` gives untyped addresses.
///
/// # Errors
/// [`ErrorKind::ExternUnresolved`] for a strong extern the kernel lacks,
/// [`ErrorKind::ExternTypeMismatch`] when types disagree.
pub fn resolve(
    obj: &Object<'_>,
    targets: &Targets<'_>,
    kallsyms: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<Resolved>> {
    let Some(local) = obj.btf.as_ref() else {
        return Ok(Vec::new());
    };
    // One pass over the kernel's names for all externs, not a full index.
    let wanted: Vec<(&str, Kind)> = obj
        .externs
        .iter()
        .filter_map(|x| match x.kind {
            ExternKind::Kfunc => Some((essential_name(x.name), Kind::Func)),
            ExternKind::TypedVar => Some((essential_name(x.name), Kind::Var)),
            _ => None,
        })
        .collect();
    targets.main.prefetch(&wanted)?;
    let mut out = Vec::new();
    out.try_reserve(obj.externs.len())
        .map_err(|_| Error::new(ErrorKind::OutOfMemory, 0))?;
    for (i, x) in obj.externs.iter().enumerate() {
        let idx = ExternIndex(i);
        // Flavors (`name___v2`) name the same kernel symbol.
        let name = essential_name(x.name);
        let r = match x.kind {
            ExternKind::Kconfig { .. } => Resolved::Kconfig,
            ExternKind::UntypedVar => match kallsyms(name) {
                Some(a) => Resolved::Address(a),
                None => Resolved::Absent,
            },
            ExternKind::TypedVar => match find_in(targets, name, Kind::Var) {
                Some((t, btf, id)) => {
                    let lt = local.type_by_id(x.btf_id)?.type_id();
                    let kt = btf.type_by_id(id)?.type_id();
                    if !types_compat(local, lt, btf, kt)? {
                        return Err(Error::new(ErrorKind::ExternTypeMismatch(idx), 0));
                    }
                    Resolved::Var { target: t, id }
                }
                None => Resolved::Absent,
            },
            ExternKind::Kfunc => match find_in(targets, name, Kind::Func) {
                Some((t, btf, id)) => {
                    let lp = local.type_by_id(x.btf_id)?.type_id();
                    let kp = btf.type_by_id(id)?.type_id();
                    if !types_compat(local, lp, btf, kp)? {
                        return Err(Error::new(ErrorKind::ExternTypeMismatch(idx), 0));
                    }
                    Resolved::Kfunc { target: t, id }
                }
                None => Resolved::Absent,
            },
        };
        if r == Resolved::Absent && !x.weak {
            return Err(Error::new(ErrorKind::ExternUnresolved(idx), 0));
        }
        out.push(r);
    }
    Ok(out)
}

/// Patches every instruction that refers to an extern. `btf_fd(target)`
/// gives the module BTF fd to embed in typed-variable loads (0 for
/// vmlinux); `fd_slot(target)` the fd_array index for kfunc calls (0 for
/// vmlinux).
///
/// # Errors
/// An instruction that is neither an LD_IMM64 nor a call where an extern
/// is used.
pub fn patch(
    obj: &Object<'_>,
    resolved: &[Resolved],
    code: &mut [Vec<u8>],
    btf_fd: &dyn Fn(usize) -> i32,
    fd_slot: &dyn Fn(usize) -> i16,
) -> Result<()> {
    for (xi, (x, r)) in obj.externs.iter().zip(resolved).enumerate() {
        for &(ci, i) in &x.refs {
            let Some(c) = code.get_mut(ci.index()) else {
                continue;
            };
            let i = i.index();
            let Some(mut insn) = read_at(c, i, obj.endian) else {
                continue;
            };
            let bad = || {
                Error::new(
                    ErrorKind::CoreBadInsn(insn.code),
                    i.saturating_mul(INSN_SIZE),
                )
            };
            if insn.code == LD_IMM64 {
                let mut hi = read_at(c, i.saturating_add(1), obj.endian).ok_or_else(bad)?;
                let (src, lo_v, hi_v) = match *r {
                    Resolved::Address(a) => (0, a as u32 as i32, (a >> 32) as u32 as i32),
                    Resolved::Var { target, id } | Resolved::Kfunc { target, id } => {
                        (PSEUDO_BTF_ID, id.0 as i32, btf_fd(target))
                    }
                    Resolved::Absent => (0, 0, 0),
                    // `.kconfig` loads go through the `.kconfig` map.
                    Resolved::Kconfig => continue,
                };
                insn.src = src;
                insn.imm = lo_v;
                hi.imm = hi_v;
                write_at(c, i, obj.endian, &insn);
                write_at(c, i.saturating_add(1), obj.endian, &hi);
            } else if insn.code == CALL {
                match *r {
                    Resolved::Kfunc { target, id } => {
                        insn.src = PSEUDO_KFUNC_CALL;
                        insn.imm = id.0 as i32;
                        insn.off = fd_slot(target);
                    }
                    Resolved::Absent => {
                        insn.src = 0;
                        insn.off = 0;
                        insn.imm = POISON_KFUNC_BASE.saturating_add(xi as i32);
                    }
                    _ => return Err(bad()),
                }
                write_at(c, i, obj.endian, &insn);
            } else {
                return Err(bad());
            }
        }
    }
    Ok(())
}
