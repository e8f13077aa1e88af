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

use alloc::vec::Vec;

use super::Keep;
use crate::btf::{Btf, Kind, TypeId};
use crate::error::{Error, ErrorKind, Result};
use crate::object::Object;
use crate::reloc::{CoreError, RelocKind, Spec, Targets, find_candidates, solve, spec_match};

/// Collects what objects' CO-RE relocations need of one target BTF.
#[derive(Debug)]
pub struct Minimizer<'t> {
    keep: Keep<'t>,
    relocs: usize,
}

impl<'t> Minimizer<'t> {
    /// A minimizer over `target` (vmlinux or any base BTF).
    ///
    /// # Errors
    /// When the per-type table cannot be allocated.
    pub fn new(target: &'t Btf<'t>) -> Result<Minimizer<'t>> {
        Ok(Minimizer {
            keep: Keep::new(target)?,
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
        let target = self.keep.btf();
        let targets = Targets::single(target);
        let plan = solve(obj, &targets)?;
        let Some(local) = obj.btf.as_ref() else {
            return Ok(0);
        };
        for r in &plan {
            if r.kind == RelocKind::TypeIdLocal || r.target.is_none() {
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
            for c in cands {
                if let Some(ts) = spec_match(&r.local, local, target, c.id).map_err(fail)? {
                    self.keep_spec(&ts).map_err(fail)?;
                }
            }
        }
        self.relocs = self.relocs.saturating_add(plan.len());
        Ok(plan.len())
    }

    fn keep_spec(&mut self, ts: &Spec<'_>) -> Result<()> {
        let root = ts.root_type_id;
        let k = &mut self.keep;
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

    /// Relocations seen so far, over all objects.
    pub fn relocations(&self) -> usize {
        self.relocs
    }

    /// The kept set so far.
    pub fn keep(&self) -> &Keep<'t> {
        &self.keep
    }

    /// Writes the minimized BTF. If no kept type tells the pointer size
    /// (an INT spelled `long`), one is kept, so sizes of pointers resolve
    /// as against the full target.
    ///
    /// # Errors
    /// As [`Keep::emit`].
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        const LONG: [&str; 4] = ["long", "long int", "unsigned long", "long unsigned int"];
        let btf = self.keep.btf();
        let is_long = |id: TypeId| {
            btf.get(id).is_some_and(|t| {
                t.kind() == Kind::Int && btf.name(&t).is_ok_and(|n| LONG.contains(&n))
            })
        };
        let has = btf
            .types()
            .any(|t| self.keep.has(t.id()) && is_long(t.id()));
        if !has {
            if let Some(t) = btf.types().find(|t| is_long(t.id())) {
                self.keep.keep_type(t.id(), false)?;
            }
        }
        self.keep.emit()
    }
}
