//! CO-RE during a load: ember-core's typed reports, kept with their text.

use ember_core::object::Object;
use ember_core::reloc::{
    Candidate, CoreError, LineTable, Outcome, RelocKind, Targets, TextContext, relocate,
};

/// One CO-RE relocation a load applied: the typed outcome, where it is,
/// and its human line (for notes and verifier-failure causes).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Relocation {
    /// Index into the object's functions of the function holding it.
    pub func: ember_core::id::FuncIndex,
    /// That function's name.
    pub program: String,
    /// Instruction index within the function.
    pub insn: ember_core::id::FuncInsn,
    /// The relocation kind.
    pub kind: RelocKind,
    /// What was done to the instruction.
    pub outcome: Outcome,
    /// The target type it matched (which target BTF, which id), if any.
    pub target: Option<Candidate>,
    /// The human line, with the source line when known
    /// ([`ember_core::reloc::RelocReport::text`]).
    pub text: String,
}

/// Solves and applies `obj`'s relocations against `targets`: the patched
/// code (one vector per code section) and one [`Relocation`] each.
///
/// # Errors
/// The solver's [`CoreError`] for relocations it cannot read.
pub fn relocate_all(
    obj: &Object<'_>,
    targets: &Targets<'_>,
) -> Result<(Vec<Vec<u8>>, Vec<Relocation>), CoreError> {
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    let reports = relocate(obj, targets, &mut code)?;
    let lines = LineTable::new(obj);
    for e in lines.skipped() {
        log::debug!("line info record skipped: {e}");
    }
    let mut out: Vec<Relocation> = reports
        .iter()
        .map(|r| Relocation {
            func: r.func,
            program: r.func_name(obj).to_owned(),
            insn: r.insn,
            kind: r.kind,
            outcome: r.outcome,
            target: r.target.as_ref().map(|(c, _)| *c),
            text: r
                .text(TextContext {
                    obj,
                    targets,
                    lines: Some(&lines),
                })
                .to_string(),
        })
        .collect();
    // The running kernel's BTF: a missing type may be in a module that
    // has none.
    if !targets.is_override {
        let searched: Vec<&str> = targets.modules.iter().map(|m| m.name).collect();
        crate::absent_module_btf::annotate(
            out.iter_mut().map(|r| (r.outcome, &mut r.text)),
            &searched,
        );
    }
    Ok((code, out))
}
