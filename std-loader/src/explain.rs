//! `ember core explain`: every CO-RE relocation of an object, solved
//! against target BTF, with what it reads and what changes.

use core::fmt::Write as _;

use ember_core::btf::{Btf, Kind, TypeId};
use ember_core::ext::LineInfo;
use ember_core::id::{FuncIndex, FuncInsn};
use ember_core::insn::{Disasm, Insn, decode_all};
use ember_core::object::Object;
use ember_core::reloc::{CoreError, Patched, Resolution, Spec, Targets, apply, solve};
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
    /// The kind as a phrase, for the text form.
    #[serde(skip)]
    pub phrase: &'static str,
    /// The local root type (`struct task_struct`).
    pub local_type: String,
    /// The raw access string (`0:1:2`).
    pub access: String,
    /// The access as a path (`struct task_struct.real_parent`).
    pub path: String,
    /// `patched` or `poisoned`.
    pub outcome: &'static str,
    /// Value the instruction held (absent when poisoned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<u64>,
    /// Value written (absent when poisoned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<u64>,
    /// The matched target type's id (in its own BTF's id space), if any.
    pub target_type_id: Option<u32>,
    /// Which BTF it came from (`vmlinux` or a module).
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
}

/// `struct foo`, `union bar`, `enum baz`, `typedef_name`, `int`.
pub fn type_name(btf: &Btf<'_>, id: TypeId) -> String {
    let Some(t) = btf.get(id) else {
        return if id == TypeId::VOID {
            "void".into()
        } else {
            format!("[{id}]")
        };
    };
    let name = btf.name(&t).unwrap_or("");
    let name = if name.is_empty() { "(anon)" } else { name };
    match t.kind() {
        Kind::Struct => format!("struct {name}"),
        Kind::Union => format!("union {name}"),
        Kind::Enum | Kind::Enum64 => format!("enum {name}"),
        Kind::Fwd if t.kflag() => format!("union {name}"),
        Kind::Fwd => format!("struct {name}"),
        _ => name.to_owned(),
    }
}

/// An access spec as a C-like path: `struct task_struct.comm[3]`, or
/// `enum pid_type::PIDTYPE_SID`.
pub fn spec_path(btf: &Btf<'_>, spec: &Spec<'_>) -> String {
    let mut s = type_name(btf, spec.root_type_id);
    if spec.kind.is_enumval() {
        if let Some(n) = spec.accessors.first().and_then(|a| a.name) {
            let _ = write!(s, "::{n}");
        }
        return s;
    }
    for (i, a) in spec.accessors.iter().enumerate() {
        match a.name {
            Some(n) => {
                let _ = write!(s, ".{n}");
            }
            None if i == 0 && a.idx == 0 => {}
            None => {
                let _ = write!(s, "[{}]", a.idx);
            }
        }
    }
    s
}

fn source_line(
    obj: &Object<'_>,
    lines: &[(FuncIndex, FuncInsn, LineInfo)],
    func: FuncIndex,
    insn: FuncInsn,
) -> Option<String> {
    let btf = obj.btf.as_ref()?;
    let l = lines
        .iter()
        .filter(|(f, i, _)| *f == func && *i <= insn)
        .max_by_key(|(_, i, _)| *i)?;
    let text = btf.str_at(l.2.line_off).ok()?.trim();
    let file = btf.str_at(l.2.file_name_off).ok()?;
    let file = file.rsplit('/').next().unwrap_or(file);
    Some(format!("{file}:{}: {text}", l.2.line()))
}

fn reason(r: &Resolution<'_, '_>) -> String {
    if r.target.is_none() {
        "no candidate in the target BTF has this field/enumerator".into()
    } else if r.res.fail_memsz_adjust {
        "the field changed size and the load cannot be resized safely".into()
    } else {
        "the relocation cannot be satisfied".into()
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

/// Solves and applies `obj`'s relocations against `targets`.
///
/// # Errors
/// The first relocation that cannot be solved or applied.
pub fn explain(obj: &Object<'_>, targets: &Targets<'_>) -> Result<Explanation, CoreError> {
    let plan = solve(obj, targets)?;
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    let patched = apply(obj, &plan, &mut code)?;
    let lines = match (obj.btf_ext, obj.btf.as_ref()) {
        (Some(ext), Some(_)) => obj.resolve(ext.line_info()).unwrap_or_default(),
        _ => Vec::new(),
    };
    let Some(local) = obj.btf.as_ref() else {
        return Ok(Explanation {
            relocs: Vec::new(),
            code,
        });
    };
    let relocs = plan
        .iter()
        .zip(patched)
        .map(|(r, p)| {
            let f = obj.function(r.func);
            let (old, new, outcome) = match p {
                Patched::Value { old, new } => (Some(old), Some(new), "patched"),
                Patched::Poisoned => (None, None, "poisoned"),
            };
            let target_btf = r
                .target
                .as_ref()
                .and_then(|(c, _)| targets.btf(c.target).map(|b| (c, b)));
            Explained {
                program: f.map_or_else(String::new, |f| f.name.to_owned()),
                section: obj
                    .code_section(r.section)
                    .map_or_else(String::new, |c| c.name.to_owned()),
                insn: r.insn.0,
                kind: r.kind.name(),
                phrase: r.kind.phrase(),
                local_type: type_name(local, r.relo.type_id),
                access: local.str_at(r.relo.access_str_off).unwrap_or("").to_owned(),
                path: spec_path(local, &r.local),
                outcome,
                old,
                new,
                target_type_id: r.target.as_ref().map(|(c, _)| c.id.0),
                target_btf: r
                    .target
                    .as_ref()
                    .map(|(c, _)| targets.name(c.target).to_owned()),
                target_path: r
                    .target
                    .as_ref()
                    .zip(target_btf)
                    .map(|((_, s), (_, b))| spec_path(b, s)),
                reason: (outcome == "poisoned").then(|| reason(r)),
                line: source_line(obj, &lines, r.func, r.insn),
            }
        })
        .collect();
    Ok(Explanation { relocs, code })
}

impl Explained {
    /// The human line: `prog: insn 12: field offset of struct t.f: 16 -> 24`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: insn {}: {} of {}: ",
            self.program, self.insn, self.phrase, self.path
        );
        match (self.old, self.new) {
            (Some(o), Some(n)) => {
                let _ = write!(s, "{o} -> {n}");
            }
            _ => {
                let _ = write!(s, "POISONED ({})", self.reason.as_deref().unwrap_or(""));
            }
        }
        if let (Some(tp), Some(tb)) = (&self.target_path, &self.target_btf) {
            if tp != &self.path || tb != "vmlinux" {
                let _ = write!(s, " [{tb}: {tp}]");
            }
        }
        if let Some(l) = &self.line {
            let _ = write!(s, "\n    {l}");
        }
        s
    }
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
