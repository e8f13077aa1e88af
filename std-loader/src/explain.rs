//! `ember core explain`: every CO-RE relocation of an object, solved
//! against target BTF, with what it reads and what changes.
//!
//! This module only renders: ember-core's [`relocate`] returns one typed
//! [`RelocReport`] per relocation, and [`Explained`] is its `--json` form
//! (names, paths and source lines as strings) plus the text line.

use core::fmt::Write as _;

use ember_core::btf::{Btf, TypeId};
use ember_core::insn::{Disasm, Insn, decode_all};
use ember_core::object::Object;
use ember_core::reloc::{
    CoreError, LineTable, Outcome, RelocReport, Spec, SpecPath, Targets, TextContext, TypeName,
    relocate,
};
use serde::Serialize;

/// One relocation as `--json` prints it (one object per line).
#[derive(Debug, Serialize)]
pub struct Explained {
    /// The function holding the instruction (program or subprogram).
    pub program: String,
    /// Its ELF section.
    pub section: String,
    /// Instruction index within that function.
    pub insn: u32,
    /// snake_case of libbpf's kind name.
    pub kind: &'static str,
    /// The local root type (`struct task_struct`).
    pub local_type: String,
    /// The raw access string (`0:1:2`).
    pub access: String,
    /// The access as a path (`struct task_struct.real_parent`).
    pub path: String,
    /// `patched` or `poisoned`: the typed [`Outcome`], spelled for JSON.
    pub outcome: &'static str,
    /// Value the instruction held (absent when poisoned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<u64>,
    /// Value written (absent when poisoned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<u64>,
    /// The matched target type's id (in its own BTF's id space), if any.
    pub target_type_id: Option<u32>,
    /// Which BTF it came from: `vmlinux`, a module, or the path of an
    /// external target BTF (`--btf FILE`), which is not the kernel's.
    pub target_btf: Option<String>,
    /// The target access path, when a candidate matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_path: Option<String>,
    /// Why the instruction was poisoned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The source line, from `.BTF.ext` line info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The human line ([`RelocReport::text`]).
    #[serde(skip)]
    pub text: String,
}

/// `struct foo`, `union bar`, `enum baz`, `typedef_name`, `int`.
pub fn type_name(btf: &Btf<'_>, id: TypeId) -> String {
    TypeName { btf, id }.to_string()
}

/// An access spec as a C-like path: `struct task_struct.comm[3]`, or
/// `enum pid_type::PIDTYPE_SID`.
pub fn spec_path(btf: &Btf<'_>, spec: &Spec<'_>) -> String {
    SpecPath { btf, spec }.to_string()
}

impl Explained {
    /// Renders one report; `main` names the main target BTF (`vmlinux`,
    /// or an external file's path).
    pub fn new<'a, 't>(
        r: &RelocReport<'a, 't>,
        obj: &Object<'a>,
        targets: &Targets<'t>,
        main: &str,
        lines: &LineTable<'a>,
    ) -> Explained {
        let (old, new, outcome, reason) = match r.outcome {
            Outcome::Patched { old, new } => (Some(old), Some(new), "patched", None),
            Outcome::Poisoned(why) => (None, None, "poisoned", Some(why.to_string())),
            _ => (None, None, "other", None),
        };
        let local = obj.btf.as_ref();
        Explained {
            program: r.func_name(obj).to_owned(),
            section: obj
                .code_section(r.section)
                .map_or_else(String::new, |c| c.name.to_owned()),
            insn: r.insn.0,
            kind: r.kind.name(),
            local_type: local.map_or_else(String::new, |b| type_name(b, r.local_type)),
            access: r.access.to_owned(),
            path: r
                .local_path(obj)
                .map_or_else(String::new, |p| p.to_string()),
            outcome,
            old,
            new,
            target_type_id: r.target.as_ref().map(|(c, _)| c.id.0),
            target_btf: r.target.as_ref().map(|(c, _)| match c.target {
                0 => main.to_owned(),
                t => targets.name(t).to_owned(),
            }),
            target_path: r.target_path(targets).map(|p| p.to_string()),
            reason,
            line: lines.source_line(r.func, r.insn).map(|l| l.to_string()),
            text: r
                .text(TextContext {
                    obj,
                    targets,
                    lines: Some(lines),
                })
                .to_string(),
        }
    }

    /// The human line: `prog: insn 12: field offset of struct t.f: 16 -> 24`.
    pub fn to_text(&self) -> String {
        self.text.clone()
    }
}

/// Everything explain prints, computed once.
#[derive(Debug)]
pub struct Explanation {
    /// One entry per relocation, in `.BTF.ext` order.
    pub relocs: Vec<Explained>,
    /// The code after patching, one vector per code section.
    pub code: Vec<Vec<u8>>,
}

/// Solves and applies `obj`'s relocations against `targets`, and renders
/// each; `main` names `targets.main` in the output (`vmlinux`, or the path
/// of an external BTF, which is not the kernel's). Line info records that
/// cannot be placed are skipped (and logged at debug); the others still
/// give source lines.
///
/// # Errors
/// The first relocation that cannot be solved or applied.
pub fn explain(
    obj: &Object<'_>,
    targets: &Targets<'_>,
    main: &str,
) -> Result<Explanation, CoreError> {
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    let reports = relocate(obj, targets, &mut code)?;
    let lines = LineTable::new(obj);
    for e in lines.skipped() {
        log::debug!("line info record skipped: {e}");
    }
    let relocs = reports
        .iter()
        .map(|r| Explained::new(r, obj, targets, main, &lines))
        .collect();
    Ok(Explanation { relocs, code })
}

/// The relocated instructions of every program and subprogram, as text.
pub fn insns_text(obj: &Object<'_>, code: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for f in &obj.functions {
        let Some(bytes) = code.get(f.section.index()) else {
            continue;
        };
        let Some(body) = bytes.get(f.start.byte_offset()..f.end().byte_offset()) else {
            continue;
        };
        let _ = writeln!(s, "{}:", f.name);
        let insns: Vec<Insn> = decode_all(body, obj.endian).collect();
        let mut i = 0;
        while let Some(&insn) = insns.get(i) {
            let next = insns.get(i + 1).copied();
            let _ = writeln!(s, "  {i:4}: {}", Disasm { insn, next });
            i += if insn.is_ld_imm64() { 2 } else { 1 };
        }
    }
    s
}
