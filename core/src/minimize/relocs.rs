//! What CO-RE relocations need of a target BTF (SPEC-CORE §8).
//!
//! Each object is solved against the full target with the normal solver;
//! then, for every relocation that found a match, every candidate that
//! matches it (not only the first: later relocations of the same root may
//! be solved by another one after pruning) is walked along its target spec:
//! - field relocations keep the root, each member on the path (with its
//!   type, pointees not followed) and each array's element and index type;
//! - TYPE_EXISTS, TYPE_SIZE and TYPE_ID_TARGET keep the root and what it
//!   refers to, pointees included (composites without members);
//! - TYPE_MATCHES keeps the root whole, recursively, except composites
//!   reached through a pointer;
//! - enum value relocations keep the whole enum.
//!
//! Removing members or types only makes matching harder, so a candidate
//! that did not match against the full BTF does not match against the
//! minimized one either; the ones that did match keep all they used.
//!
//! With module BTF, candidates are searched as the loader searches them
//! (a module only for roots vmlinux has no candidate for), and a module
//! type is kept in that module's split BTF; the base types it refers to are
//! kept in the minimized vmlinux, which the module pieces are split over.
//! A root whose vmlinux candidates all failed keeps one of them (without
//! members), so the minimized vmlinux still has a candidate and the
//! modules are still not searched for it.

use alloc::vec::Vec;

use super::Keep;
use crate::btf::{Btf, Kind, TypeId};
use crate::error::{Error, ErrorKind, Result};
use crate::object::Object;
use crate::reloc::{CoreError, RelocKind, Spec, Targets, find_candidates, solve, spec_match};

/// Collects what objects' CO-RE relocations need of a target BTF (and
/// of module split BTF over it).
#[derive(Debug)]
pub struct Minimizer<'t> {
    targets: Targets<'t>,
    /// Kept in the main target.
    main: Keep<'t>,
    /// Kept in each module (and, through them, in the main target).
    mods: Vec<Keep<'t>>,
    relocs: usize,
}

/// Minimized BTF: a base, and split BTF over it for each module that
/// contributed types.
#[derive(Debug)]
pub struct Minimized {
    /// The minimized main (vmlinux) BTF.
    pub base: Vec<u8>,
    /// For each module, in the order given: its minimized split BTF over
    /// `base`, or `None` when none of its own types is needed.
    pub modules: Vec<Option<Vec<u8>>>,
}

impl<'t> Minimizer<'t> {
    /// A minimizer over `target` (vmlinux or any base BTF).
    ///
    /// # Errors
    /// When the per-type table cannot be allocated.
    pub fn new(target: &'t Btf<'t>) -> Result<Minimizer<'t>> {
        Self::with_targets(Targets::single(target))
    }

    /// A minimizer over vmlinux and module BTF, searched as the loader
    /// searches them (modules only for types vmlinux lacks; none when
    /// `targets.is_override`).
    ///
    /// # Errors
    /// When the per-type tables cannot be allocated.
    pub fn with_targets(targets: Targets<'t>) -> Result<Minimizer<'t>> {
        let mut mods = Vec::new();
        for m in targets.modules {
            mods.push(Keep::new(m.btf)?);
        }
        Ok(Minimizer {
            targets,
            main: Keep::new(targets.main)?,
            mods,
            relocs: 0,
        })
    }

    /// Adds what `obj`'s relocations use; returns how many relocations
    /// the object has.
    ///
    /// # Errors
    /// A relocation that cannot be solved against the full target (the
    /// same error loading would give).
    pub fn add_object(&mut self, obj: &Object<'_>) -> core::result::Result<usize, CoreError> {
        let targets = self.targets;
        let plan = solve(obj, &targets)?;
        let Some(local) = obj.btf.as_ref() else {
            return Ok(0);
        };
        for r in &plan {
            let matched = r.target.is_some();
            if r.kind == RelocKind::TypeIdLocal || (!matched && self.mods.is_empty()) {
                continue;
            }
            let fail = |e: Error| CoreError {
                index: r.index,
                func: Some(r.func),
                insn: r.insn,
                local_type: r.relo.type_id,
                access: r.relo.access_str_off,
                kind: r.relo.kind,
                error: e.kind(),
            };
            let cands = find_candidates(local, r.relo.type_id, &targets).map_err(fail)?;
            if !matched {
                // vmlinux had candidates, none matched: keep one (without
                // members, so it still does not match), or the minimized
                // vmlinux would have none and modules would be searched.
                if let Some(c) = cands.first().filter(|c| c.target == 0) {
                    self.main.keep_type(c.id, false).map_err(fail)?;
                }
                continue;
            }
            for c in cands {
                let keep = match c.target.checked_sub(1) {
                    None => Some(&mut self.main),
                    Some(m) => self.mods.get_mut(m),
                };
                let (Some(tb), Some(keep)) = (targets.btf(c.target), keep) else {
                    continue;
                };
                if let Some(ts) = spec_match(&r.local, local, tb, c.id).map_err(fail)? {
                    keep_spec(keep, &ts).map_err(fail)?;
                }
            }
        }
        self.relocs = self.relocs.saturating_add(plan.len());
        Ok(plan.len())
    }

    /// Relocations seen so far, over all objects.
    pub fn relocations(&self) -> usize {
        self.relocs
    }

    /// The kept set of the main target so far.
    pub fn keep(&self) -> &Keep<'t> {
        &self.main
    }

    /// The kept sets of the modules so far.
    pub fn module_keeps(&self) -> &[Keep<'t>] {
        &self.mods
    }

    /// Writes the minimized main BTF. If no kept type tells the pointer
    /// size (an INT spelled `long`), one is kept, so sizes of pointers
    /// resolve as against the full target. Base types that modules need
    /// are included.
    ///
    /// # Errors
    /// As [`Keep::emit`].
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        const LONG: [&str; 4] = ["long", "long int", "unsigned long", "long unsigned int"];
        for m in &self.mods {
            self.main.absorb_base(m);
        }
        let btf = self.main.btf();
        let is_long = |id: TypeId| {
            btf.get(id).is_some_and(|t| {
                t.kind() == Kind::Int && btf.name(&t).is_ok_and(|n| LONG.contains(&n))
            })
        };
        let has = btf
            .types()
            .any(|t| self.main.has(t.id()) && is_long(t.id()));
        if !has {
            if let Some(t) = btf.types().find(|t| is_long(t.id())) {
                self.main.keep_type(t.id(), false)?;
            }
        }
        self.main.emit()
    }

    /// Writes the minimized base and, for each module, split BTF over it
    /// (a base plus pieces, as the kernel's `/sys/kernel/btf` lays out).
    ///
    /// # Errors
    /// As [`Keep::emit`].
    pub fn finish_split(&mut self) -> Result<Minimized> {
        let base = self.finish()?;
        let min_base = Btf::parse(&base)?;
        let mut modules = Vec::new();
        for m in &self.mods {
            modules.push(if m.has_own() {
                Some(m.emit_split(&self.main, &min_base)?)
            } else {
                None
            });
        }
        Ok(Minimized { base, modules })
    }
}

fn keep_spec(k: &mut Keep<'_>, ts: &Spec<'_>) -> Result<()> {
    let root = ts.root_type_id;
    match ts.kind {
        RelocKind::TypeMatches => k.keep_for_match(root),
        kind if kind.is_type() => k.keep_type(root, true),
        kind if kind.is_enumval() => k.keep_type(root, false),
        _ => {
            k.keep_type(root, false)?;
            let btf = k.btf();
            let mut id = root;
            for &idx in ts.raw.iter().skip(1) {
                id = btf.skip_mods_and_typedefs(id)?;
                let t = btf.type_by_id(id)?;
                match t.kind() {
                    Kind::Struct | Kind::Union => {
                        k.keep_member(id, idx)?;
                        id = t
                            .members()
                            .nth(idx as usize)
                            .ok_or(Error::new(ErrorKind::BadMember(idx), 0))?
                            .type_id;
                    }
                    Kind::Array => {
                        k.keep_type(id, false)?;
                        id = t.as_array().map_or(TypeId::VOID, |a| a.elem_type);
                    }
                    _ => return Err(Error::new(ErrorKind::CoreBadAccess, 0)),
                }
            }
            Ok(())
        }
    }
}
