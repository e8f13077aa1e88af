//! Typed relocation outcomes: one [`RelocReport`] per CO-RE record, built
//! from [`solve`] and [`apply`], and the
//! pieces to print one (type names, access paths, source lines).
//!
//! Everything here is data first: callers match [`Outcome`] and
//! [`PoisonReason`], never the text. The [`Display`](fmt::Display)
//! helpers ([`TypeName`], [`SpecPath`], [`SourceLine`],
//! [`RelocReport::text`]) give the one human form that the loader's
//! notes, its verifier-failure causes and `ember core explain` share.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use super::{Candidate, CoreError, Patched, RelocKind, Resolution, Spec, Targets, apply, solve};
use crate::btf::{Btf, Kind, TypeId};
use crate::error::{Error, ErrorKind};
use crate::ext::LineInfo;
use crate::id::{CodeIndex, FuncIndex, FuncInsn, SectionInsn};
use crate::object::Object;

/// Why an instruction was poisoned (made a call to an invalid helper, so
/// the verifier rejects it if it is reachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonReason {
    /// No target type has the local root type's essential name and kind.
    NoCandidate,
    /// Candidates exist, but none has the field or enumerator the access
    /// path names (or a compatible one).
    FieldMissing,
    /// The field changed size and the load or store cannot be resized
    /// safely (only pointers and unsigned integers can).
    SizeChanged,
    /// Any other reason the relocation cannot be satisfied.
    Unsatisfiable,
}

impl fmt::Display for PoisonReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoisonReason::NoCandidate => "no type in the target BTF has this name and kind",
            PoisonReason::FieldMissing => {
                "no candidate in the target BTF has this field/enumerator"
            }
            PoisonReason::SizeChanged => {
                "the field changed size and the load cannot be resized safely"
            }
            PoisonReason::Unsatisfiable => "the relocation cannot be satisfied",
        })
    }
}

/// What happened to a relocation's instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The instruction's value was rewritten (it may be unchanged when the
    /// target agrees with the local BTF).
    Patched {
        /// The value the instruction held.
        old: u64,
        /// The value it holds now.
        new: u64,
    },
    /// The instruction was poisoned.
    Poisoned(PoisonReason),
}

impl Outcome {
    /// Whether the instruction was poisoned.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Outcome::Poisoned(_))
    }
}

/// One CO-RE relocation: where it is, what it accesses, what it matched
/// and what was done to its instruction.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelocReport<'a, 't> {
    /// Index of the record among the object's CO-RE records.
    pub index: usize,
    /// The function (program or subprogram) holding the instruction.
    pub func: FuncIndex,
    /// Index into [`Object::code`].
    pub section: CodeIndex,
    /// Instruction index within the function.
    pub insn: FuncInsn,
    /// Instruction index within the section.
    pub sec_insn: SectionInsn,
    /// The relocation kind.
    pub kind: RelocKind,
    /// The local root type.
    pub local_type: TypeId,
    /// The raw access string (`0:1:2`), from the local BTF.
    pub access: &'a str,
    /// The local access spec.
    pub local: Spec<'a>,
    /// The matching candidate (which target BTF, which type) and the
    /// target access spec, if a candidate matched.
    pub target: Option<(Candidate, Spec<'t>)>,
    /// What was done.
    pub outcome: Outcome,
}

fn poison_reason(r: &Resolution<'_, '_>) -> PoisonReason {
    if r.target.is_none() {
        if r.candidates == 0 {
            PoisonReason::NoCandidate
        } else {
            PoisonReason::FieldMissing
        }
    } else if r.res.fail_memsz_adjust {
        PoisonReason::SizeChanged
    } else {
        PoisonReason::Unsatisfiable
    }
}

/// Joins a plan from [`solve`] with what [`apply`] did to each of its
/// instructions (`patched`, in plan order), one report per relocation.
/// Resolutions without a patch result (a shorter `patched`) are left out.
pub fn report<'a, 't>(
    obj: &Object<'a>,
    plan: Vec<Resolution<'a, 't>>,
    patched: &[Patched],
) -> Vec<RelocReport<'a, 't>> {
    let local = obj.btf.as_ref();
    plan.into_iter()
        .zip(patched)
        .map(|(r, p)| {
            let outcome = match *p {
                Patched::Value { old, new } => Outcome::Patched { old, new },
                Patched::Poisoned => Outcome::Poisoned(poison_reason(&r)),
            };
            RelocReport {
                index: r.index,
                func: r.func,
                section: r.section,
                insn: r.insn,
                sec_insn: r.sec_insn,
                kind: r.kind,
                local_type: r.relo.type_id,
                access: local
                    .and_then(|b| b.str_at(r.relo.access_str_off).ok())
                    .unwrap_or(""),
                local: r.local,
                target: r.target,
                outcome,
            }
        })
        .collect()
}

/// Solves every CO-RE relocation of `obj` against `targets`, patches
/// `code` (one byte vector per [`Object::code`] section) and reports what
/// happened to each relocation, in `.BTF.ext` order.
///
/// # Errors
/// As [`solve`] and [`apply`]: the first relocation that cannot be solved
/// or applied.
pub fn relocate<'a, 't>(
    obj: &Object<'a>,
    targets: &Targets<'t>,
    code: &mut [Vec<u8>],
) -> Result<Vec<RelocReport<'a, 't>>, CoreError> {
    let plan = solve(obj, targets)?;
    let patched = apply(obj, &plan, code)?;
    Ok(report(obj, plan, &patched))
}

/// A type as C spells it: `struct foo`, `union bar`, `enum baz`,
/// `typedef_name`, `int`; `void` for id 0, `[id]` for an unknown id and
/// `(anon)` for a missing name.
#[derive(Debug, Clone, Copy)]
pub struct TypeName<'b> {
    /// The BTF the id belongs to.
    pub btf: &'b Btf<'b>,
    /// The type.
    pub id: TypeId,
}

impl fmt::Display for TypeName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(t) = self.btf.get(self.id) else {
            return if self.id == TypeId::VOID {
                f.write_str("void")
            } else {
                write!(f, "[{}]", self.id)
            };
        };
        let name = self.btf.name(&t).unwrap_or("");
        let name = if name.is_empty() { "(anon)" } else { name };
        let tag = match t.kind() {
            Kind::Struct => "struct ",
            Kind::Union => "union ",
            Kind::Enum | Kind::Enum64 => "enum ",
            Kind::Fwd if t.kflag() => "union ",
            Kind::Fwd => "struct ",
            _ => "",
        };
        write!(f, "{tag}{name}")
    }
}

/// An access spec as a C-like path: `struct task_struct.comm[3]`, or
/// `enum pid_type::PIDTYPE_SID`.
#[derive(Debug, Clone, Copy)]
pub struct SpecPath<'b, 's> {
    /// The BTF the spec was built against.
    pub btf: &'b Btf<'b>,
    /// The spec.
    pub spec: &'s Spec<'s>,
}

impl fmt::Display for SpecPath<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec;
        TypeName {
            btf: self.btf,
            id: spec.root_type_id,
        }
        .fmt(f)?;
        if spec.kind.is_enumval() {
            if let Some(n) = spec.accessors.first().and_then(|a| a.name) {
                write!(f, "::{n}")?;
            }
            return Ok(());
        }
        for (i, a) in spec.accessors.iter().enumerate() {
            match a.name {
                Some(n) => write!(f, ".{n}")?,
                None if i == 0 && a.idx == 0 => {}
                None => write!(f, "[{}]", a.idx)?,
            }
        }
        Ok(())
    }
}

/// A source line from `.BTF.ext` line info: `file.c:42: the code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLine<'a> {
    /// The file's base name.
    pub file: &'a str,
    /// The line number.
    pub line: u32,
    /// The line's text, trimmed.
    pub text: &'a str,
}

impl fmt::Display for SourceLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.text)
    }
}

/// An object's line info, by function and instruction. Built leniently: a
/// record that points at no function (or at no whole instruction), or a
/// block whose section name is unreadable, is skipped and kept in
/// [`LineTable::skipped`], and the other records stay usable.
#[derive(Debug, Clone, Default)]
pub struct LineTable<'a> {
    /// (function, instruction in it, record), sorted by the first two.
    lines: Vec<(FuncIndex, FuncInsn, LineInfo)>,
    btf: Option<&'a Btf<'a>>,
    skipped: Vec<Error>,
}

impl<'a> LineTable<'a> {
    /// The line info of `obj` (empty without `.BTF` or `.BTF.ext`).
    pub fn new(obj: &'a Object<'a>) -> LineTable<'a> {
        let mut t = LineTable::default();
        let (Some(ext), Some(btf)) = (obj.btf_ext, obj.btf.as_ref()) else {
            return t;
        };
        t.btf = Some(btf);
        for block in ext.line_info() {
            let sec = match btf.str_at(block.sec_name_off) {
                Ok(s) => s,
                Err(e) => {
                    t.skip(e);
                    continue;
                }
            };
            let Some(ci) = obj.code.iter().position(|c| c.name == sec).map(CodeIndex) else {
                continue;
            };
            for r in block.records() {
                match SectionInsn::from_byte_offset(r.insn_off).and_then(|i| obj.locate(ci, i)) {
                    Some((fi, insn)) => {
                        if t.lines.try_reserve(1).is_err() {
                            t.skip(Error::new(ErrorKind::OutOfMemory, 0));
                            return t;
                        }
                        t.lines.push((fi, insn, r));
                    }
                    None => t.skip(Error::new(ErrorKind::BadInsnOffset(r.insn_off), 0)),
                }
            }
        }
        crate::order::sort_by_key(&mut t.lines, |&(f, i, _)| (f, i));
        t
    }

    fn skip(&mut self, e: Error) {
        if self.skipped.try_reserve(1).is_ok() {
            self.skipped.push(e);
        }
    }

    /// The records that were skipped, and why.
    pub fn skipped(&self) -> &[Error] {
        &self.skipped
    }

    /// Number of usable records.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no record is usable.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The record covering instruction `insn` of function `func`: the last
    /// one at or before it in that function.
    pub fn info(&self, func: FuncIndex, insn: FuncInsn) -> Option<&LineInfo> {
        let end = self
            .lines
            .partition_point(|&(f, i, _)| (f, i) <= (func, insn));
        let (f, _, l) = self.lines.get(end.checked_sub(1)?)?;
        (*f == func).then_some(l)
    }

    /// The source line of instruction `insn` of function `func`, when its
    /// record's strings are readable.
    pub fn source_line(&self, func: FuncIndex, insn: FuncInsn) -> Option<SourceLine<'a>> {
        let btf = self.btf?;
        let l = self.info(func, insn)?;
        let text = btf.str_at(l.line_off).ok()?.trim();
        let file = btf.str_at(l.file_name_off).ok()?;
        let file = file.rsplit('/').next().unwrap_or(file);
        Some(SourceLine {
            file,
            line: l.line(),
            text,
        })
    }
}

/// Everything [`RelocReport::text`] needs besides the report.
#[derive(Debug, Clone, Copy)]
pub struct TextContext<'r, 'a, 't> {
    /// The object the report is about.
    pub obj: &'r Object<'a>,
    /// The targets it was solved against.
    pub targets: &'r Targets<'t>,
    /// Its line info, for the source line (none when `None`).
    pub lines: Option<&'r LineTable<'a>>,
}

/// The human form of a [`RelocReport`]; see [`RelocReport::text`].
#[derive(Debug, Clone, Copy)]
pub struct ReportText<'r, 'a, 't> {
    report: &'r RelocReport<'a, 't>,
    cx: TextContext<'r, 'a, 't>,
}

impl<'a, 't> RelocReport<'a, 't> {
    /// The name of the function holding the instruction (empty if unknown).
    pub fn func_name(&self, obj: &Object<'a>) -> &'a str {
        obj.function(self.func).map_or("", |f| f.name)
    }

    /// The local access path (`struct task_struct.__state`).
    pub fn local_path<'r>(&'r self, obj: &'r Object<'a>) -> Option<SpecPath<'r, 'r>> {
        Some(SpecPath {
            btf: obj.btf.as_ref()?,
            spec: &self.local,
        })
    }

    /// The target access path, when a candidate matched and its BTF is
    /// among `targets`.
    pub fn target_path<'r>(&'r self, targets: &Targets<'t>) -> Option<SpecPath<'t, 'r>> {
        let (c, s) = self.target.as_ref()?;
        Some(SpecPath {
            btf: targets.btf(c.target)?,
            spec: s,
        })
    }

    /// The human line, one per relocation, with the source line indented
    /// below it when known:
    ///
    /// ```text
    /// prog: insn 12: field offset of struct t.f: 16 -> 24 [vmlinux: struct t___v2.f]
    ///     prog.bpf.c:30: return t->f;
    /// ```
    ///
    /// A poisoned one reads `POISONED (reason)` instead of the values; the
    /// target path is shown when it differs from the local one or comes
    /// from a module.
    pub fn text<'r>(&'r self, cx: TextContext<'r, 'a, 't>) -> ReportText<'r, 'a, 't> {
        ReportText { report: self, cx }
    }
}

impl fmt::Display for ReportText<'_, '_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        let TextContext {
            obj,
            targets,
            lines,
        } = self.cx;
        let mut path = String::new();
        if let Some(p) = r.local_path(obj) {
            write!(path, "{p}")?;
        }
        write!(
            f,
            "{}: insn {}: {} of {path}: ",
            r.func_name(obj),
            r.insn,
            r.kind.phrase()
        )?;
        match r.outcome {
            Outcome::Patched { old, new } => write!(f, "{old} -> {new}")?,
            Outcome::Poisoned(why) => write!(f, "POISONED ({why})")?,
        }
        if let (Some(tp), Some((c, _))) = (r.target_path(targets), &r.target) {
            let mut tpath = String::new();
            write!(tpath, "{tp}")?;
            let tb = targets.name(c.target);
            if tpath != path || tb != "vmlinux" {
                write!(f, " [{tb}: {tpath}]")?;
            }
        }
        if let Some(l) = lines.and_then(|t| t.source_line(r.func, r.insn)) {
            write!(f, "\n    {l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec::Vec;

    use object::read::elf::ElfFile64;
    use object::read::{Object as _, ObjectSection as _};

    use super::*;
    use crate::btf::test_util::Builder;
    use crate::bytes::Endian;

    const REJECT_EL: &[u8] = include_bytes!("../../../tests/fixtures/reject.bpf-el.o");
    const REJECT_EB: &[u8] = include_bytes!("../../../tests/fixtures/reject.bpf-eb.o");
    const KERNEL_EL: &[u8] = include_bytes!("../../../tests/fixtures/core_kernel.bpf-el.o");
    const KERNEL_EB: &[u8] = include_bytes!("../../../tests/fixtures/core_kernel.bpf-eb.o");

    fn native(el: &'static [u8], eb: &'static [u8]) -> &'static [u8] {
        if Endian::NATIVE == Endian::Little {
            el
        } else {
            eb
        }
    }

    fn code(obj: &Object<'_>) -> Vec<Vec<u8>> {
        obj.code.iter().map(|c| c.bytes.to_vec()).collect()
    }

    /// `reject`'s one relocation reads a field no kernel has: against a
    /// `struct task_struct` without it, the load is poisoned because the
    /// field is missing, and the text names the path and the source line.
    #[test]
    fn missing_field_poisons_with_a_typed_reason() {
        let obj = Object::parse(native(REJECT_EL, REJECT_EB), "reject").unwrap();
        let kobj = Object::parse(native(KERNEL_EL, KERNEL_EB), "core_kernel").unwrap();
        let target = kobj.btf.as_ref().unwrap();
        let targets = Targets::single(target);
        let mut code = code(&obj);
        let reports = relocate(&obj, &targets, &mut code).unwrap();
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(r.func_name(&obj), "poisoned");
        assert_eq!(r.kind, RelocKind::FieldByteOffset);
        assert_eq!(r.outcome, Outcome::Poisoned(PoisonReason::FieldMissing));
        assert!(r.outcome.is_poisoned());
        assert!(r.target.is_none());
        assert_eq!(
            r.local_path(&obj).unwrap().to_string(),
            "struct task_struct.ember_field_that_does_not_exist"
        );
        let lines = LineTable::new(&obj);
        assert!(lines.skipped().is_empty());
        let text = r
            .text(TextContext {
                obj: &obj,
                targets: &targets,
                lines: Some(&lines),
            })
            .to_string();
        assert_eq!(
            text,
            "poisoned: insn 1: field offset of struct task_struct.ember_field_that_does_not_exist: \
             POISONED (no candidate in the target BTF has this field/enumerator)\n    \
             reject.bpf.c:23: return t->ember_field_that_does_not_exist;"
        );
    }

    /// Against BTF with no `struct task_struct` at all, the reason is that
    /// there was no candidate.
    #[test]
    fn absent_type_poisons_for_want_of_a_candidate() {
        let obj = Object::parse(native(REJECT_EL, REJECT_EB), "reject").unwrap();
        let mut b = Builder::new(Endian::NATIVE);
        b.int("int", 4, 1, 32);
        let blob = b.build();
        let target = Btf::parse(&blob).unwrap();
        let mut code = code(&obj);
        let reports = relocate(&obj, &Targets::single(&target), &mut code).unwrap();
        assert_eq!(
            reports[0].outcome,
            Outcome::Poisoned(PoisonReason::NoCandidate)
        );
    }

    /// The object's own BTF as target: the relocation is patched to the
    /// value it already held, from the main target.
    #[test]
    fn own_btf_patches_to_the_same_value() {
        let obj = Object::parse(native(REJECT_EL, REJECT_EB), "reject").unwrap();
        let own = obj.btf.as_ref().unwrap();
        let mut code = code(&obj);
        let reports = relocate(&obj, &Targets::single(own), &mut code).unwrap();
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        match r.outcome {
            Outcome::Patched { old, new } => assert_eq!(old, new, "{r:?}"),
            Outcome::Poisoned(_) => panic!("poisoned: {r:?}"),
        }
        assert_eq!(r.access, "0:0");
        let (c, _) = r.target.as_ref().unwrap();
        assert_eq!((c.target, c.id), (0, r.local_type));
    }

    /// A line info record that points at no whole instruction is skipped,
    /// with the error kept; every other record still gives its line.
    #[test]
    fn a_bad_line_record_is_skipped_and_the_rest_kept() {
        let bytes = native(REJECT_EL, REJECT_EB);
        let good = Object::parse(bytes, "reject").unwrap();
        let all = LineTable::new(&good);
        assert!(all.len() > 2, "fixture has too few line records");
        assert!(all.skipped().is_empty());

        // The first line_info record: .BTF.ext header, then the subsection
        // (record size, then blocks of name, count, records).
        let elf = ElfFile64::<object::Endianness>::parse(bytes).unwrap();
        let (ext_off, _) = elf
            .section_by_name(".BTF.ext")
            .unwrap()
            .file_range()
            .unwrap();
        let e = Endian::NATIVE;
        let rd = |at: usize| {
            let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            match e {
                Endian::Little => u32::from_le_bytes(b),
                Endian::Big => u32::from_be_bytes(b),
            }
        };
        let ext = ext_off as usize;
        let hdr_len = rd(ext + 4) as usize;
        let line_off = rd(ext + 16) as usize;
        let first = ext + hdr_len + line_off + 4 + 8;
        let mut bad = bytes.to_vec();
        let odd = rd(first) + 3;
        bad[first..first + 4].copy_from_slice(&match e {
            Endian::Little => odd.to_le_bytes(),
            Endian::Big => odd.to_be_bytes(),
        });
        let obj = Object::parse(&bad, "reject").unwrap();
        // The all-or-nothing reader gives up on the whole subsection.
        assert!(obj.resolve(obj.btf_ext.unwrap().line_info()).is_err());
        let some = LineTable::new(&obj);
        assert_eq!(some.len(), all.len() - 1);
        assert_eq!(
            some.skipped(),
            &[Error::new(
                ErrorKind::BadInsnOffset(crate::id::SectionByteOffset(odd)),
                0
            )]
        );
        // The poisoned relocation's line is still found.
        let f = obj
            .functions
            .iter()
            .position(|f| f.name == "poisoned")
            .map(FuncIndex)
            .unwrap();
        assert_eq!(
            some.source_line(f, FuncInsn(1)).unwrap().to_string(),
            "reject.bpf.c:23: return t->ember_field_that_does_not_exist;"
        );
    }
}
