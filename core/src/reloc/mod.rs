//! CO-RE: solving an object's relocations against target BTF.
//!
//! [`solve`] turns every `.BTF.ext` CO-RE record of an [`Object`] into a
//! [`Resolution`]: the local and target access specs, the candidate that
//! matched, and the original and new value (or poison). [`apply`] then
//! patches a copy of the code. Candidates come from the target's name
//! index (essential name + kind), never from a scan of all target types;
//! they are cached per local root type and pruned to the ones that
//! matched, as libbpf does.

mod compat;
mod compute;
mod kind;
mod patch;
pub mod report;
mod scan;
pub mod spec;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

pub(crate) use self::compat::spec_match;
pub use self::compat::{types_compat, types_match};
pub use self::compute::RelocRes;
pub use self::kind::RelocKind;
pub use self::patch::{POISON_IMM, Patched, patch, poison_insn};
pub use self::report::{
    LineTable, Outcome, PoisonReason, RelocReport, SourceLine, SpecPath, TextContext, TypeName,
    relocate,
};
pub use self::scan::scan_candidates;
pub use self::spec::{Accessor, Spec, parse_spec};
use crate::btf::{Btf, Kind, StrOffset, TypeId, essential_name};
use crate::error::{Error, ErrorKind, Result};
use crate::ext::CoreRelo;
use crate::id::{CodeIndex, FuncIndex, FuncInsn, SectionByteOffset, SectionInsn};
use crate::object::Object;

/// A module's split BTF among the targets.
#[derive(Debug, Clone, Copy)]
pub struct Module<'t> {
    /// Module name (`nf_conntrack`).
    pub name: &'t str,
    /// Its BTF, split over the main target.
    pub btf: &'t Btf<'t>,
}

/// Where candidates come from.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'t> {
    /// vmlinux BTF, or an external (btfhub-style) BTF.
    pub main: &'t Btf<'t>,
    /// Module BTFs; searched only when `main` has no candidate.
    pub modules: &'t [Module<'t>],
    /// `main` is an override (external file): modules are not searched.
    pub is_override: bool,
}

impl<'t> Targets<'t> {
    /// One BTF, no modules.
    pub fn single(main: &'t Btf<'t>) -> Targets<'t> {
        Targets {
            main,
            modules: &[],
            is_override: false,
        }
    }

    /// The BTF of target `i` (0 = main, then modules).
    pub fn btf(&self, i: usize) -> Option<&'t Btf<'t>> {
        match i.checked_sub(1) {
            None => Some(self.main),
            Some(m) => self.modules.get(m).map(|m| m.btf),
        }
    }

    /// The name of target `i` (`vmlinux` or the module's).
    pub fn name(&self, i: usize) -> &'t str {
        match i.checked_sub(1) {
            None => "vmlinux",
            Some(m) => self.modules.get(m).map_or("?", |m| m.name),
        }
    }
}

/// A target type a local type may relocate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Which target (0 = main, then modules).
    pub target: usize,
    /// Its id there.
    pub id: TypeId,
}

/// The outcome of one relocation.
#[derive(Debug, Clone)]
pub struct Resolution<'a, 't> {
    /// Index of the record among the object's CO-RE records.
    pub index: usize,
    /// The record.
    pub relo: CoreRelo,
    /// Its kind.
    pub kind: RelocKind,
    /// Its code section.
    pub section: CodeIndex,
    /// Instruction index within the section.
    pub sec_insn: SectionInsn,
    /// The function holding it.
    pub func: FuncIndex,
    /// Instruction index within that function.
    pub insn: FuncInsn,
    /// The local access spec.
    pub local: Spec<'a>,
    /// The matching candidate and target spec, if any matched.
    pub target: Option<(Candidate, Spec<'t>)>,
    /// How many candidates the target BTFs offered (0 for
    /// [`RelocKind::TypeIdLocal`], which needs none).
    pub candidates: usize,
    /// Values and decision.
    pub res: RelocRes,
}

/// A relocation that could not be solved, with where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreError {
    /// Index of the record among the object's CO-RE records.
    pub index: usize,
    /// The function holding it, when known.
    pub func: Option<FuncIndex>,
    /// Instruction index within the function.
    pub insn: FuncInsn,
    /// The local root type.
    pub local_type: TypeId,
    /// The access string.
    pub access: StrOffset,
    /// The raw relocation kind.
    pub kind: u32,
    /// What went wrong (also the error's [`source`](core::error::Error::source)).
    pub error: ErrorKind,
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause is the source, not part of this message.
        write!(
            f,
            "CO-RE relocation #{} (kind {}, insn {}, local type [{}])",
            self.index,
            RelocKind::from_u32(self.kind).map_or("unknown", RelocKind::name),
            self.insn,
            self.local_type
        )
    }
}

impl core::error::Error for CoreError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Candidates for local type `local_id`: same kind (ENUM and ENUM64
/// interchangeable) and essential name, in id order; modules only when
/// the main target has none and is not an override.
pub fn find_candidates(
    local: &Btf<'_>,
    local_id: TypeId,
    targets: &Targets<'_>,
) -> Result<Vec<Candidate>> {
    let lt = local.type_by_id(local_id)?;
    let name = local.name(&lt)?;
    let ess = essential_name(name);
    let own = [lt.kind()];
    let kinds: &[Kind] = if lt.kind().is_any_enum() {
        &[Kind::Enum, Kind::Enum64]
    } else {
        &own
    };
    let mut out = Vec::new();
    let collect = |out: &mut Vec<Candidate>, target: usize, btf: &Btf<'_>| -> Result<()> {
        let start = out.len();
        for &k in kinds {
            for id in btf.find_essential(ess, k)? {
                out.try_reserve(1)
                    .map_err(|_| Error::new(ErrorKind::OutOfMemory, 0))?;
                out.push(Candidate { target, id });
            }
        }
        if let Some(tail) = out.get_mut(start..) {
            tail.sort_unstable_by_key(|c| c.id);
        }
        Ok(())
    };
    collect(&mut out, 0, targets.main)?;
    if out.is_empty() && !targets.is_override {
        for (i, m) in targets.modules.iter().enumerate() {
            collect(&mut out, i.saturating_add(1), m.btf)?;
        }
    }
    Ok(out)
}

/// One solved relocation: its kind, the local spec, the matching candidate
/// with its target spec, and the values.
pub type Solved<'a, 't> = (RelocKind, Spec<'a>, Option<(Candidate, Spec<'t>)>, RelocRes);

/// Solves one relocation given its (cached, prunable) candidates.
pub fn solve_one<'a, 't>(
    local: &Btf<'a>,
    relo: &CoreRelo,
    targets: &Targets<'t>,
    cands: &mut Vec<Candidate>,
) -> Result<Solved<'a, 't>> {
    let kind = RelocKind::from_u32(relo.kind)
        .ok_or(Error::new(ErrorKind::CoreUnknownKind(relo.kind), 0))?;
    let access = local.str_at(relo.access_str_off)?;
    let lspec = parse_spec(local, relo.type_id, access, kind)?;
    if kind == RelocKind::TypeIdLocal {
        let id = u64::from(relo.type_id.0);
        let res = RelocRes {
            orig: id,
            new: id,
            validate: false,
            ..RelocRes::default()
        };
        return Ok((kind, lspec, None, res));
    }
    if local.name(&local.type_by_id(relo.type_id)?)?.is_empty() {
        return Err(Error::new(ErrorKind::CoreAnonymousType, 0));
    }
    let mut first: Option<(Candidate, Spec<'t>, RelocRes)> = None;
    let mut kept = Vec::new();
    for &c in cands.iter() {
        let Some(tb) = targets.btf(c.target) else {
            continue;
        };
        let Some(ts) = compat::spec_match(&lspec, local, tb, c.id)? else {
            continue;
        };
        let r = compute::calc(kind, (&lspec, local), Some((&ts, tb)))?;
        match &first {
            None => first = Some((c, ts, r)),
            Some((_, fs, fr)) => {
                if ts.bit_offset != fs.bit_offset {
                    return Err(Error::new(
                        ErrorKind::CoreOffsetAmbiguity(fs.bit_offset as u32, ts.bit_offset as u32),
                        0,
                    ));
                }
                if r.poison != fr.poison || r.new != fr.new {
                    return Err(Error::new(
                        ErrorKind::CoreDecisionAmbiguity(fr.new, r.new),
                        0,
                    ));
                }
            }
        }
        kept.try_reserve(1)
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, 0))?;
        kept.push(c);
    }
    if !kept.is_empty() {
        *cands = kept;
    }
    Ok(match first {
        Some((c, ts, r)) => (kind, lspec, Some((c, ts)), r),
        None => {
            let r = compute::calc(kind, (&lspec, local), None)?;
            (kind, lspec, None, r)
        }
    })
}

/// How candidates are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateSearch {
    /// Through each target's name index (built on first use; best when one
    /// target BTF serves many objects).
    Index,
    /// One pass over each target's types for all of the object's root
    /// types at once (best for one object against a fresh BTF).
    Scan,
}

/// Solves every CO-RE relocation of `obj` against `targets`, through the
/// main target's name index when it is already built, else with one scan.
///
/// # Errors
/// As [`solve_with`].
pub fn solve<'a, 't>(
    obj: &Object<'a>,
    targets: &Targets<'t>,
) -> core::result::Result<Vec<Resolution<'a, 't>>, CoreError> {
    let search = if targets.main.has_index() {
        CandidateSearch::Index
    } else {
        CandidateSearch::Scan
    };
    solve_with(obj, targets, search)
}

/// Candidates for every named root in `roots` by scanning: the main target
/// first, modules for the roots it lacks (unless it is an override).
fn scan_all(
    local: &Btf<'_>,
    roots: &[TypeId],
    targets: &Targets<'_>,
) -> Result<BTreeMap<TypeId, Vec<Candidate>>> {
    let mut found = scan_candidates(local, roots, targets.main, 0)?;
    if targets.is_override {
        return Ok(found);
    }
    // Like libbpf, every module is searched for the roots vmlinux lacks.
    let missing: Vec<TypeId> = roots
        .iter()
        .copied()
        .filter(|r| !found.contains_key(r))
        .collect();
    if missing.is_empty() {
        return Ok(found);
    }
    for (i, m) in targets.modules.iter().enumerate() {
        let more = scan_candidates(local, &missing, m.btf, i.saturating_add(1))?;
        for (r, c) in more {
            found.entry(r).or_default().extend(c);
        }
    }
    Ok(found)
}

/// Stands in for the record in errors that belong to no single relocation.
const NO_RELO: CoreRelo = CoreRelo {
    insn_off: SectionByteOffset(0),
    type_id: TypeId::VOID,
    access_str_off: StrOffset(0),
    kind: 0,
};

/// Solves every CO-RE relocation of `obj` against `targets`, finding
/// candidates as `search` says.
///
/// # Errors
/// The first relocation that cannot be solved (malformed access string,
/// ambiguity, an unreadable bitfield, an anonymous root type), with where
/// it is.
pub fn solve_with<'a, 't>(
    obj: &Object<'a>,
    targets: &Targets<'t>,
    search: CandidateSearch,
) -> core::result::Result<Vec<Resolution<'a, 't>>, CoreError> {
    let (Some(ext), Some(local)) = (obj.btf_ext, obj.btf.as_ref()) else {
        return Ok(Vec::new());
    };
    let wrap =
        |index: usize, func: Option<FuncIndex>, insn: FuncInsn, r: &CoreRelo, error: Error| {
            CoreError {
                index,
                func,
                insn,
                local_type: r.type_id,
                access: r.access_str_off,
                kind: r.kind,
                error: error.kind(),
            }
        };
    let relos = obj
        .resolve(ext.core_relos())
        .map_err(|e| wrap(0, None, FuncInsn(0), &NO_RELO, e))?;
    let mut cache: BTreeMap<TypeId, Vec<Candidate>> = BTreeMap::new();
    if search == CandidateSearch::Scan {
        let mut roots: Vec<TypeId> = relos
            .iter()
            .filter(|(_, _, r)| r.kind != RelocKind::TypeIdLocal as u32)
            .map(|(_, _, r)| r.type_id)
            .collect();
        roots.sort_unstable();
        roots.dedup();
        cache = scan_all(local, &roots, targets)
            .map_err(|e| wrap(0, None, FuncInsn(0), &NO_RELO, e))?;
        // Roots without candidates still get an (empty) entry.
        for r in roots {
            cache.entry(r).or_default();
        }
    }
    let mut out = Vec::new();
    out.try_reserve(relos.len()).map_err(|_| {
        wrap(
            0,
            None,
            FuncInsn(0),
            &NO_RELO,
            Error::new(ErrorKind::OutOfMemory, 0),
        )
    })?;
    for (index, (func, insn, relo)) in relos.into_iter().enumerate() {
        let fail = |e: Error| wrap(index, Some(func), insn, &relo, e);
        let needs_cands = relo.kind != RelocKind::TypeIdLocal as u32;
        let mut cands = match cache.remove(&relo.type_id) {
            Some(c) => c,
            None if needs_cands => {
                // Anonymous roots are rejected by solve_one; give them no candidates.
                let named = local
                    .get(relo.type_id)
                    .and_then(|t| local.name(&t).ok())
                    .is_some_and(|n| !n.is_empty());
                if named {
                    find_candidates(local, relo.type_id, targets).map_err(fail)?
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        };
        let candidates = cands.len();
        let solved = solve_one(local, &relo, targets, &mut cands);
        if needs_cands {
            cache.insert(relo.type_id, cands);
        }
        let (kind, lspec, target, res) = solved.map_err(fail)?;
        let f = obj.function(func);
        out.push(Resolution {
            index,
            relo,
            kind,
            section: f.map_or(CodeIndex(0), |f| f.section),
            sec_insn: f.map_or(SectionInsn(0), |f| f.section_insn(insn)),
            func,
            insn,
            local: lspec,
            target,
            candidates,
            res,
        });
    }
    Ok(out)
}

/// Patches `code` (one byte vector per [`Object::code`] section) with the
/// resolutions, returning what happened to each.
///
/// # Errors
/// The first instruction that cannot take its relocation.
pub fn apply(
    obj: &Object<'_>,
    plan: &[Resolution<'_, '_>],
    code: &mut [Vec<u8>],
) -> core::result::Result<Vec<Patched>, CoreError> {
    let mut out = Vec::new();
    for r in plan {
        let bytes = code
            .get_mut(r.section.index())
            .map(Vec::as_mut_slice)
            .unwrap_or(&mut []);
        let p =
            patch(bytes, r.sec_insn.index(), obj.endian, &r.res).map_err(|error| CoreError {
                index: r.index,
                func: Some(r.func),
                insn: r.insn,
                local_type: r.relo.type_id,
                access: r.relo.access_str_off,
                kind: r.relo.kind,
                error: error.kind(),
            })?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
